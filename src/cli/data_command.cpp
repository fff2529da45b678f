// `causeway data`: make prompt-pair datasets (JSONL) for `causeway run` ([data] file = ...).
// `data ioi` writes Indirect Object Identification pairs for a given tokenizer.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "cli/number_options.h"
#include "cli/output_guard.h"
#include "core/error.h"
#include "data/ioi.h"
#include "data/prompt_pairs.h"
#include "model/tokenizer.h"

namespace causeway::cli {

namespace {

struct IoiCommandOptions {
  IoiOptions ioi;
  std::string tokenizer;
  std::string corruption = "swap";
  std::string out;
  bool overwrite = false;
  bool mixed_lengths = false;
  std::optional<bool> prepend_bos;  // --prepend-bos / --no-prepend-bos
};

int run_ioi(const IoiCommandOptions& o) {
  // Refuse before any work, so nothing is half-done when the answer is no.
  guard_output_file(o.out, {{o.tokenizer, "the tokenizer folder"}}, "--out");
  if (std::filesystem::exists(o.out) && !o.overwrite)
    throw InputError(o.out, "", "output file exists; pass --overwrite to replace it");
  const Tokenizer tok = o.prepend_bos ? Tokenizer::from_model_dir(o.tokenizer).with_prepend_bos(*o.prepend_bos)
                                      : Tokenizer::from_model_dir(o.tokenizer);
  std::vector<IoiPair> pairs;
  try {
    pairs = generate_ioi_detailed(tok, o.ioi);
  } catch (const InputError& e) {
    // The generator cannot know where its tokenizer came from; here it is --tokenizer.
    if (e.file() != "tokenizer") throw;
    throw InputError(o.tokenizer, e.field(), e.detail());
  }
  std::vector<PromptPair> plain;
  for (const IoiPair& p : pairs) plain.push_back(p.pair);
  write_pairs_jsonl(o.out, plain);

  const bool swap = o.ioi.corruption == IoiOptions::Corruption::SubjectSwap;
  const IoiPair& ex = pairs.front();
  std::printf("wrote %zu IOI pairs (%s corruption, seed %llu, %zu tokens in the first) to %s\n",
              pairs.size(), swap ? "subject swap" : "third name",
              static_cast<unsigned long long>(o.ioi.seed), ex.pair.clean.size(), o.out.c_str());
  std::printf("example (%s, template %d):\n", ex.abba ? "ABBA" : "BABA", ex.template_index);
  std::printf("  clean:     %s\n", ex.pair.clean_text.c_str());
  std::printf("  corrupted: %s\n", ex.pair.corrupted_text.c_str());
  std::printf("  answer '%s' (%d), wrong '%s' (%d)\n", ex.io.c_str(), ex.pair.answers.front(),
              ex.s.c_str(), ex.pair.wrongs.front());
  return 0;
}

}  // namespace

Command add_data_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "data", "Make prompt-pair datasets (JSONL, one clean/corrupted pair with answer tokens a "
              "line) for `causeway run`.");
  auto o = std::make_shared<IoiCommandOptions>();
  CLI::App* ioi = cmd->add_subcommand(
      "ioi", "Indirect Object Identification pairs (Wang et al. 2022), e.g. \"When Mary and John "
             "went to the store, John gave a drink to\" -> answer ' Mary', wrong ' John'. Half "
             "the pairs name the IO first (ABBA), half the subject (BABA); clean and corrupted "
             "differ only in the second subject name, so they have equal token counts.");
  ioi->add_option("--n", o->ioi.n, "Number of pairs")->capture_default_str()->check(positive_integer());
  ioi->add_option("--seed", o->ioi.seed,
                  "Random seed; the same seed, tokenizer and options give the same file")
      ->capture_default_str()
      ->check(unsigned_64());
  ioi->add_option("--corruption", o->corruption,
                  "How the corrupted prompt differs: 'swap' puts the IO's name at the second "
                  "subject mention (the answer flips to the subject); 'abc' puts a third name "
                  "there (no indirect object left)")
      ->capture_default_str()
      ->check(CLI::IsMember({"swap", "abc"}));
  ioi->add_option("--template", o->ioi.template_index,
                  "Use only this template (0-" + std::to_string(ioi_templates().size() - 1) +
                      ") so that every prompt has the same length; -1 draws one per pair")
      ->capture_default_str()
      ->check(integer_from(-1, static_cast<int>(ioi_templates().size()) - 1));
  ioi->add_flag("--mixed-lengths", o->mixed_lengths,
                "Draw from every template, of any length (default: only the templates of the "
                "most common length, so that a position is the same token in every pair); the "
                "pairs' named positions (IO, S1, S1+1, S2, END) still align them");
  ioi->add_option("--tokenizer", o->tokenizer,
                  "Folder with the model's tokenizer: vocab.json + merges.txt or tokenizer.json "
                  "(a Hugging Face model folder works); names, places and objects are kept only "
                  "where they are single tokens in it")
      ->required()
      ->check(CLI::ExistingDirectory);
  ioi->add_option("--out", o->out, "JSONL file to write (read it with [data] file = ... in a run config)")
      ->required();
  ioi->add_flag("--overwrite", o->overwrite, "Replace --out if it already exists");
  ioi->add_flag_callback("--prepend-bos", [o]() { o->prepend_bos = true; },
                         "Put the tokenizer's BOS token first in every prompt (default: as the "
                         "tokenizer files say); a run reading the file must prepend it too");
  ioi->add_flag_callback("--no-prepend-bos", [o]() { o->prepend_bos = false; },
                         "Do not put BOS first");

  return [o, cmd, ioi]() {
    if (ioi->parsed()) {
      o->ioi.corruption = o->corruption == "abc" ? IoiOptions::Corruption::ThirdName
                                                 : IoiOptions::Corruption::SubjectSwap;
      o->ioi.same_length = !o->mixed_lengths;
      return run_ioi(*o);
    }
    std::cout << cmd->help("causeway");
    return 0;
  };
}

}  // namespace causeway::cli
