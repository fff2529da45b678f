// What the CLI says about the weights it loads (issue 19, B4, B8, B10, C): finite weights that
// overflow the 16-bit dtype asked for are refused naming the tensor, ids past the tokenizer
// (padded vocabulary rows) print as <id N>, sizes far past any model in config.json are
// refused before anything is allocated, and the stored and the held dtype are shown by
// `logits`, `run`, the dry run and the result files.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/ops_linear.h"
#include "cli_support.h"
#include "core/error.h"
#include "data/position_labels.h"
#include "io/hdf5_file.h"
#include "io/result_store.h"
#include "model/safetensors.h"
#include "model/tokenizer.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using fixtures::read_strings;
using fixtures::TempDir;
const fs::path kData = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data";
const fs::path kTiny = kData / "tiny-gpt2";

using TensorEdit = std::function<void(const std::string& name, std::vector<float>& values,
                                      std::vector<int64_t>& shape)>;

// The tiny GPT-2 written again under `dir`/`name`: each tensor through `edit`, stored as
// `dtype`, config.json through `edit_config`, the tokenizer files as they are.
fs::path tiny_copy(const fs::path& dir, const std::string& name, DType dtype, const TensorEdit& edit = {},
                   const std::function<void(json&)>& edit_config = {}) {
  const fs::path d = dir / name;
  fs::create_directories(d);
  for (const char* f : {"vocab.json", "merges.txt"}) fs::copy_file(kTiny / f, d / f);
  json cfg = json::parse(fixtures::read_text(kTiny / "config.json"));
  if (edit_config) edit_config(cfg);
  fixtures::write_text(d / "config.json", cfg.dump(2));
  const Checkpoint ckpt = Checkpoint::open(kTiny);
  std::vector<std::vector<float>> values;
  std::vector<std::vector<uint16_t>> halves;
  std::vector<SafetensorsEntry> entries;
  for (const std::string& n : ckpt.names()) {
    const TensorInfo& t = ckpt.info(n);
    std::vector<float> v(static_cast<size_t>(t.numel()));
    ckpt.read(n, v.data());
    std::vector<int64_t> shape = t.shape;
    if (edit) edit(n, v, shape);
    values.push_back(std::move(v));
    entries.push_back({n, dtype, shape, nullptr});
  }
  halves.resize(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::F32) {
      entries[i].data = values[i].data();
      continue;
    }
    for (float x : values[i]) halves[i].push_back(dtype == DType::BF16 ? cpu::f32_to_bf16(x) : cpu::f32_to_f16(x));
    entries[i].data = halves[i].data();
  }
  write_safetensors(d / "model.safetensors", entries);
  return d;
}

// `causeway ARGS` with its address space capped, so a size that is not refused fails with
// bad_alloc (exit 1) instead of taking the machine's memory.
fixtures::CliResult run_in_4gib(const std::string& args) {
  return fixtures::run_shell("ulimit -v 4000000; " + std::string(CAUSEWAY_BINARY) + " " + args + " 2>&1");
}

size_t lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

std::string string_attribute(const fs::path& file, const std::string& object, const std::string& key) {
  H5File f(file, H5Mode::ReadOnly);
  return f.read_string_attribute(object, key);
}

// A one-experiment run config over `pairs` (JSONL text) for `model`; returns its path.
fs::path write_run(const fs::path& dir, const fs::path& model, const std::string& pairs,
                   const std::string& model_extra = "") {
  fixtures::write_text(dir / "pairs.jsonl", pairs);
  const fs::path cfg = dir / "run.toml";
  fixtures::write_text(cfg, "[model]\npath = \"" + model.string() + "\"\nthreads = 1\n" + model_extra +
                                "[data]\nfile = \"pairs.jsonl\"\n[output]\npath = \"out.h5\"\n"
                                "[[experiment]]\nname = \"resid\"\nsweep = \"resid_pre\"\npositions = \"each\"\n");
  return cfg;
}

const std::string kPairs =
    "{\"clean\": [1, 2, 3, 4], \"corrupted\": [1, 5, 3, 4], \"answer\": 6, \"wrong\": 7}\n"
    "{\"clean\": [1, 2, 8, 4], \"corrupted\": [1, 5, 8, 4], \"answer\": 6, \"wrong\": 7}\n";

// B4: a 1e6 in fp32 weights is inf in f16: refused at load naming the file, the tensor, the
// value and the element, for `logits` and `run`; bf16 holds it.
TEST(CliWeights, F16OverflowIsRefusedNamingTheTensor) {
  TempDir dir("weights-f16");
  const std::string tensor = "transformer.h.0.mlp.c_fc.weight";
  const fs::path model = tiny_copy(dir.path(), "m", DType::F32,
                                    [&](const std::string& n, std::vector<float>& v, std::vector<int64_t>&) {
                                      if (n == tensor) v[3] = 1e6f;
                                    });
  const std::string line = "causeway: error: " + (model / "model.safetensors").string() + ": " + tensor +
                           ": 1e+06 overflows f16 (largest finite 65504) at element 3 (flat index); hold "
                           "the weights as f32 or bf16 (--dtype, [model] dtype)\n";
  const auto logits = fixtures::run_causeway("logits --model " + model.string() + " --tokens 1,2 --dtype f16");
  EXPECT_EQ(logits.code, 2) << logits.output;
  EXPECT_EQ(logits.output, line);
  const auto run = fixtures::run_causeway("run " + write_run(dir.path(), model, kPairs).string() + " --dtype f16 --quiet");
  EXPECT_EQ(run.code, 2) << run.output;
  EXPECT_NE(run.output.find(tensor + ": 1e+06 overflows f16"), std::string::npos) << run.output;
  EXPECT_FALSE(fs::exists(dir.path() / "out.h5"));
  const auto bf16 = fixtures::run_causeway("logits --model " + model.string() + " --tokens 1,2 --dtype bf16");
  EXPECT_EQ(bf16.code, 0) << bf16.output;
  EXPECT_EQ(bf16.output.find("nan"), std::string::npos) << bf16.output;
}

// B4: a 16-bit checkpoint that stores inf is refused as stored, naming the tensor.
TEST(CliWeights, SixteenBitCheckpointHoldingInfIsRefused) {
  TempDir dir("weights-inf");
  const std::string tensor = "transformer.h.1.attn.c_proj.weight";
  const fs::path model = tiny_copy(dir.path(), "m", DType::BF16,
                                    [&](const std::string& n, std::vector<float>& v, std::vector<int64_t>&) {
                                      if (n == tensor) v[5] = std::numeric_limits<float>::infinity();
                                    });
  for (const char* dtype : {"bf16", "f32"}) {
    const auto r = fixtures::run_causeway("logits --model " + model.string() + " --tokens 1,2 --dtype " + dtype);
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find(tensor + ": holds inf at element 5"), std::string::npos) << r.output;
    EXPECT_EQ(lines(r.output), 1u) << r.output;
  }
}

// A tiny GPT-2 whose vocabulary is padded past its 1000-token tokenizer to 1008 rows, with
// row 1005 three times the row of the top token after [1, 2] (286, ' of'), so it is the top.
fs::path padded_vocabulary_model(const fs::path& dir) {
  return tiny_copy(
      dir, "padded", DType::F32,
      [](const std::string& n, std::vector<float>& v, std::vector<int64_t>& shape) {
        if (n != "transformer.wte.weight") return;
        const int64_t C = shape[1];
        v.resize(static_cast<size_t>(1008 * C), 0.0f);
        for (int64_t c = 0; c < C; ++c) v[1005 * C + c] = 3.0f * v[286 * C + c];
        shape[0] = 1008;
      },
      [](json& c) { c["vocab_size"] = 1008; });
}

// B8: the top token is a padded row: `logits --top` shows it as <id 1005> (and so the input
// and the file's token_strings) instead of failing.
TEST(CliWeights, PaddedVocabularyRowsShowAsIds) {
  TempDir dir("weights-padded");
  const fs::path model = padded_vocabulary_model(dir.path());
  const fs::path out = dir.path() / "logits.h5";
  const auto r = fixtures::run_causeway("logits --model " + model.string() + " --tokens 1,2,1003 --top 3 --out " +
                                        out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("vocab 1008"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" 1003:<id 1003>"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" 2:'#'"), std::string::npos) << r.output;
  EXPECT_EQ(read_strings(out, "token_strings"), (std::vector<std::string>{"\"", "#", "<id 1003>"}));
  const auto top = fixtures::run_causeway("logits --model " + model.string() + " --tokens 1,2 --top 2");
  ASSERT_EQ(top.code, 0) << top.output;
  EXPECT_NE(top.output.find("     1      1005  <id 1005>  "), std::string::npos) << top.output;
  EXPECT_NE(top.output.find("     2       286  ' of'"), std::string::npos) << top.output;
}

// B8: padded rows in a data set (the pair loader refuses them in prompts, but position labels
// and the file's texts must not fail on any id a model has): <id N> in /data.
TEST(CliWeights, PaddedVocabularyRowsInDataLabels) {
  TempDir dir("weights-padded-data");
  const Tokenizer tok = Tokenizer::from_model_dir(kTiny);
  PairDataset d;
  d.source = "test";
  for (int32_t third : {3, 8}) {
    PromptPair p;
    p.clean = {1004, 2, third, 4};
    p.corrupted = {1004, 5, third, 4};
    p.answers = {1005};
    p.wrongs = {7};
    d.pairs.push_back(p);
  }
  const std::vector<std::string> labels = position_labels(d, &tok);
  ASSERT_EQ(labels.size(), 4u);
  EXPECT_EQ(labels[0], "<id 1004>");
  EXPECT_EQ(labels[1], "#");
  EXPECT_EQ(labels[2], "pos 2");
  EXPECT_EQ(tok.decode_for_display(d.pairs[0].clean), "<id 1004>#$%");
  EXPECT_THROW(tok.decode(d.pairs[0].clean), InputError);  // decode stays exact
  const fs::path out = dir.path() / "data.h5";
  ResultStore store = ResultStore::create_staged(out);
  store.write_data(d, &tok);
  store.publish();
  EXPECT_EQ(read_strings(out, "/data/position_labels")[0], "<id 1004>");
  EXPECT_EQ(read_strings(out, "/data/answer_text"), (std::vector<std::string>{"<id 1005>", "<id 1005>"}));
  EXPECT_EQ(read_strings(out, "/data/clean_text")[1], "<id 1004>#)%");
}

// B10: every size field of config.json at 2^31 - 1 is refused at once by `logits` and by
// `run --dry-run`, naming the field, with no allocation (the cap turns one into exit 1).
TEST(CliSizes, HugeSizesInConfigJsonAreRefusedBeforeAllocating) {
  TempDir dir("sizes");
  for (const char* field : {"n_layer", "n_embd", "n_head", "n_positions", "vocab_size", "n_inner"}) {
    SCOPED_TRACE(field);
    const fs::path model = dir.path() / field;
    fs::create_directories(model);
    for (const auto& e : fs::directory_iterator(kTiny)) fs::copy(e.path(), model / e.path().filename());
    json cfg = json::parse(fixtures::read_text(kTiny / "config.json"));
    cfg[field] = INT_MAX;
    fixtures::write_text(model / "config.json", cfg.dump());
    const auto logits = run_in_4gib("logits --model " + model.string() + " --tokens 1,2");
    EXPECT_EQ(logits.code, 2) << logits.output;
    EXPECT_NE(logits.output.find("causeway: error: " + (model / "config.json").string() + ": "), std::string::npos) << logits.output;
    EXPECT_NE(logits.output.find(field), std::string::npos) << logits.output;
    EXPECT_EQ(lines(logits.output), 1u) << logits.output;
    const fs::path job = dir.path() / (std::string(field) + "-job");
    fs::create_directories(job);
    const auto dry = run_in_4gib("run " + write_run(job, model, kPairs).string() + " --dry-run");
    EXPECT_EQ(dry.code, 2) << dry.output;
    EXPECT_NE(dry.output.find(field), std::string::npos) << dry.output;
    EXPECT_EQ(lines(dry.output), 1u) << dry.output;
  }
  // Within the limits but not the weights': the dry run reads the headers and refuses it too.
  const fs::path deep = dir.path() / "deep";
  fs::create_directories(deep);
  for (const auto& e : fs::directory_iterator(kTiny)) fs::copy(e.path(), deep / e.path().filename());
  json deep_cfg = json::parse(fixtures::read_text(kTiny / "config.json"));
  deep_cfg["n_layer"] = 4000;
  fixtures::write_text(deep / "config.json", deep_cfg.dump());
  fs::create_directories(dir.path() / "deep-job");
  const auto deep_dry = run_in_4gib("run " + write_run(dir.path() / "deep-job", deep, kPairs).string() + " --dry-run");
  EXPECT_EQ(deep_dry.code, 2) << deep_dry.output;
  EXPECT_EQ(deep_dry.output, "causeway: error: " + (deep / "config.json").string() +
                                 ": n_layer: 4000 disagrees with the weights: they hold 2 blocks (no "
                                 "transformer.h.2.ln_1.weight)\n");
  // A family's num_hidden_layers, the case first reported: refused, not a minute of growth.
  const fs::path llama = dir.path() / "llama";
  fs::create_directories(llama);
  for (const auto& e : fs::directory_iterator(kData / "families/llama2")) fs::copy(e.path(), llama / e.path().filename());
  json cfg = json::parse(fixtures::read_text(llama / "config.json"));
  cfg["num_hidden_layers"] = INT_MAX;
  fixtures::write_text(llama / "config.json", cfg.dump());
  const auto r = run_in_4gib("logits --model " + llama.string() + " --tokens 1,2");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("num_hidden_layers: 2147483647 is more layers than causeway allows (at most 4096)"),
            std::string::npos)
      << r.output;
}

// C: the stored and the held dtype, in `logits` (output and file), `run` (start line and
// /meta), and the dry run, which says what bf16 would save; --dtype overrides [model] dtype.
TEST(CliDtype, StoredAndHeldDtypeAreShownEverywhere) {
  TempDir dir("dtype");
  const fs::path model = tiny_copy(dir.path(), "bf16", DType::BF16);
  const auto wide = fixtures::run_causeway("logits --model " + model.string() + " --tokens 1,2");
  ASSERT_EQ(wide.code, 0) << wide.output;
  EXPECT_NE(wide.output.find(", weights bf16, held as f32)"), std::string::npos) << wide.output;
  const fs::path out = dir.path() / "logits.h5";
  const auto kept = fixtures::run_causeway("logits --model " + model.string() + " --tokens 1,2 --dtype bf16 --out " +
                                           out.string());
  ASSERT_EQ(kept.code, 0) << kept.output;
  EXPECT_NE(kept.output.find(", weights bf16, held as bf16)"), std::string::npos) << kept.output;
  EXPECT_EQ(string_attribute(out, "/", "weights_dtype"), "bf16");
  EXPECT_EQ(string_attribute(out, "/", "weights_stored_dtype"), "bf16");
  const auto f32 = fixtures::run_causeway("logits --model " + kTiny.string() + " --tokens 1,2");
  EXPECT_NE(f32.output.find(", weights f32, held as f32)"), std::string::npos) << f32.output;

  // The dry run: widened, and what bf16 would hold instead.
  const fs::path cfg = write_run(dir.path(), model, kPairs);
  const auto dry = fixtures::run_causeway("run " + cfg.string() + " --dry-run");
  ASSERT_EQ(dry.code, 0) << dry.output;
  EXPECT_NE(dry.output.find("), weights bf16, held as f32\n"), std::string::npos) << dry.output;
  EXPECT_NE(dry.output.find("weights: the checkpoint's bf16 matrices are widened to f32 on load (0.7 MiB per "
                            "rank); [model] dtype = \"bf16\" or --dtype bf16 would hold them as stored in 0.3 "
                            "MiB per rank"),
            std::string::npos)
      << dry.output;
  const auto dry16 = fixtures::run_causeway("run " + cfg.string() + " --dry-run --dtype bf16");
  ASSERT_EQ(dry16.code, 0) << dry16.output;
  EXPECT_NE(dry16.output.find("), weights bf16, held as bf16\n"), std::string::npos) << dry16.output;
  EXPECT_EQ(dry16.output.find("widened"), std::string::npos) << dry16.output;
  EXPECT_NE(dry16.output.find("memory per rank (estimate): weights 0.3 MiB"), std::string::npos) << dry16.output;

  // `run`: the start line and /meta; --dtype over [model] dtype.
  const auto run = fixtures::run_causeway("run " + cfg.string());
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("model " + model.string() + " (weights bf16, held as f32)"), std::string::npos)
      << run.output;
  EXPECT_EQ(string_attribute(dir.path() / "out.h5", "/meta", "weights_dtype"), "f32");
  EXPECT_EQ(string_attribute(dir.path() / "out.h5", "/meta", "weights_stored_dtype"), "bf16");
  // Resuming with the weights held otherwise would mix roundings in one file.
  const auto resume = fixtures::run_causeway("run " + cfg.string() + " --resume --dtype bf16");
  EXPECT_EQ(resume.code, 2) << resume.output;
  EXPECT_NE(resume.output.find("/meta@weights_dtype: --resume: the weights are held as bf16, the file was "
                               "written with f32 (pass --dtype f32)"),
            std::string::npos)
      << resume.output;
  const fs::path cfg16 = write_run(dir.path(), model, kPairs, "dtype = \"bf16\"\n");
  const auto over = fixtures::run_causeway("run " + cfg16.string() + " --overwrite --dtype f16 --quiet");
  ASSERT_EQ(over.code, 0) << over.output;
  EXPECT_EQ(string_attribute(dir.path() / "out.h5", "/meta", "weights_dtype"), "f16");
  const auto bad = fixtures::run_causeway("run " + cfg16.string() + " --overwrite --dtype f8");
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_NE(bad.output.find("--dtype: \"f8\" is not a weight dtype (choices: f32, bf16, f16)"), std::string::npos)
      << bad.output;
}

// C: a dry run without weights takes the dtype config.json claims, and says so.
TEST(CliDtype, DryRunWithoutWeightsUsesConfigJsonsDtype) {
  TempDir dir("dtype-config");
  const fs::path model = dir.path() / "m";
  fs::create_directories(model);
  for (const char* f : {"vocab.json", "merges.txt"}) fs::copy_file(kTiny / f, model / f);
  json cfg = json::parse(fixtures::read_text(kTiny / "config.json"));
  cfg.erase("dtype");
  cfg["torch_dtype"] = "bfloat16";
  fixtures::write_text(model / "config.json", cfg.dump());
  const auto dry = fixtures::run_causeway("run " + write_run(dir.path(), model, kPairs).string() + " --dry-run");
  ASSERT_EQ(dry.code, 0) << dry.output;
  EXPECT_NE(dry.output.find("), weights bf16 (config.json), held as f32\n"), std::string::npos) << dry.output;
  EXPECT_NE(dry.output.find("matrices are widened to f32 on load"), std::string::npos) << dry.output;
}

}  // namespace
}  // namespace causeway
