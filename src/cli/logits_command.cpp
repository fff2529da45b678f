// `causeway logits`: one forward pass; prints the top-k next tokens and optionally writes the
// logits and cached hooks to HDF5.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <numeric>
#include <optional>
#include <sstream>

#include "backend/backend.h"
#include "cli/commands.h"
#include "cli/output_guard.h"
#include "core/error.h"
#include "core/utf8.h"
#include "io/hdf5_file.h"
#include "io/output_lock.h"
#include "model/hook_gather.h"
#include "model/model_weights.h"
#include "model/tokenizer.h"
#include "model/transformer_model.h"
#include "parallel/collectives.h"
#include "parallel/communicator.h"
#include "parallel/topology.h"

namespace causeway::cli {

namespace {

struct LogitsOptions {
  std::string model;
  std::string text;
  std::string tokens;
  int top = 10;
  std::vector<std::string> cache;
  std::string out;
  bool overwrite = false;
  int threads = 0;
  std::optional<bool> prepend_bos;  // --prepend-bos / --no-prepend-bos; unset: the tokenizer's default
  std::string dtype = "f32";
  int tp = 1;
};

std::vector<int32_t> parse_token_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::string item;
  // Accept "1,2,3", "1 2 3" and "[1, 2, 3]".
  std::string cleaned = s;
  for (char& c : cleaned)
    if (c == ',' || c == '[' || c == ']') c = ' ';
  std::stringstream in(cleaned);
  while (in >> item) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < INT32_MIN || v > INT32_MAX)
      throw InputError("--tokens", "", "'" + item + "' is not an integer token id");
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) throw InputError("--tokens", "", "no token ids given");
  return ids;
}

// Printable form of a token: quoted and valid UTF-8. Bytes of a partial character (GPT-2's
// byte tokens, e.g. the lead byte of U+2019) print as <0xE2>; newline, tab and return as \n \t \r;
// other control bytes as <0x1B>, so a token cannot move the cursor or recolour the terminal.
std::string show(const std::string& token) {
  std::string out = "'";
  for (char c : escape_invalid_utf8(token)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (u < 0x20 || u == 0x7F) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "<0x%02X>", u);
      out += hex;
    } else {
      out += c;
    }
  }
  return out + "'";
}

// `s` padded with spaces to `width` characters (printf's %-20s counts bytes, which misaligns
// columns after a multi-byte character).
std::string pad_right(const std::string& s, size_t width) {
  size_t chars = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++chars;
  return chars >= width ? s : s + std::string(width - chars, ' ');
}

int run_logits(const LogitsOptions& o) {
  set_cpu_threads(o.threads);
  // --tp N: the world's ranks form replicas of N shards; every replica computes the same
  // logits and world rank 0 prints and writes them.
  MpiSession session(nullptr, nullptr);
  const Communicator world;
  const bool writer = world.rank() == 0;
  const std::filesystem::path dir(o.model);
  if (!o.out.empty()) refuse_output_over_inputs(o.out, {{dir, "the model folder"}}, "--out");
  // Held until the file is written: a run job on the same path is refused, and vice versa.
  std::unique_ptr<OutputLock> lock =
      o.out.empty() || !writer ? nullptr : std::make_unique<OutputLock>(o.out);
  if (!o.out.empty() && std::filesystem::exists(o.out) && !o.overwrite)
    throw InputError(o.out, "", "output file exists; pass --overwrite to replace it");

  std::unique_ptr<Collectives> tp;
  Topology topo;
  if (o.tp > 1) {
    topo = Topology::make(world, o.tp, ModelConfig::from_json_file(dir / "config.json").n_head, "--tp");
    tp = make_mpi_collectives(topo.tp_comm);
  }
  TransformerModel model =
      TransformerModel::load(dir, parse_weight_dtype(o.dtype, "--dtype", ""), tp.get());
  std::unique_ptr<Tokenizer> tok;
  const bool has_tokenizer = std::filesystem::exists(dir / "vocab.json") ||
                             std::filesystem::exists(dir / "tokenizer.json");
  if (has_tokenizer) tok = std::make_unique<Tokenizer>(Tokenizer::from_model_dir(dir));
  else if (!o.text.empty())
    throw InputError(dir.string(), "vocab.json",
                     "--text needs a tokenizer (vocab.json + merges.txt or tokenizer.json) in "
                     "the model folder; pass --tokens instead");

  std::vector<int32_t> ids = o.text.empty() ? parse_token_ids(o.tokens) : tok->encode_for_model(o.text, o.prepend_bos);
  if (ids.empty()) throw InputError("--text", "", "the text encodes to no tokens");
  TokenBatch batch = TokenBatch::single(ids);
  model.validate(batch, o.text.empty() ? "--tokens" : "--text");

  HookPlan plan(model.config().n_layer);
  std::vector<HookPoint> cached;
  for (const std::string& name : o.cache) {
    if (name == "all") {
      for (HookPoint p : all_hook_points(model.config())) cached.push_back(p);
    } else {
      cached.push_back(HookPoint::parse(name, model.config(), "--cache"));
    }
  }
  for (HookPoint p : cached) plan.cache(p);

  const Tensor logits = model.forward(batch, plan, LogitRows::All);
  // Hooks a tensor-parallel rank holds a block of (heads, MLP units) are gathered into the
  // model's whole tensor: a collective, so every rank takes part before the writer goes on.
  std::vector<std::vector<float>> gathered(tp ? cached.size() : 0);
  for (size_t i = 0; i < gathered.size(); ++i)
    gather_hook(cached[i].kind, model.config(), model.shard(), tp.get(),
                plan.activations().at(cached[i]), batch.B, batch.T, gathered[i]);
  if (!writer) return 0;
  const int T = batch.T, V = model.config().vocab_size;
  const float* last = logits.data + static_cast<int64_t>(T - 1) * V;

  // Softmax of the last position in double for readable probabilities.
  const float mx = *std::max_element(last, last + V);
  double z = 0.0;
  for (int i = 0; i < V; ++i) z += std::exp(static_cast<double>(last[i]) - mx);
  const int k = std::clamp(o.top, 1, V);
  std::vector<int> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int a, int b) { return last[a] > last[b]; });

  const ModelConfig& mc = model.config();
  std::printf("model: %s (%s, %d layers, d_model %d, %d heads", dir.string().c_str(),
              mc.model_type.c_str(), mc.n_layer, mc.n_embd, mc.n_head);
  if (mc.kv_heads() != mc.n_head) std::printf(", %d key/value heads", mc.kv_heads());
  std::printf(", vocab %d, weights %s", V, dtype_name(model.weights().dtype()));
  if (o.tp > 1) std::printf(", %d tensor-parallel shards", o.tp);
  std::printf(")\n");
  std::printf("input: %d tokens:", T);
  for (int32_t id : ids) {
    if (tok) std::printf(" %d:%s", id, show(tok->token_text(id)).c_str());
    else std::printf(" %d", id);
  }
  std::printf("\n\n  rank  token id  token                 prob      logit\n");
  for (int r = 0; r < k; ++r) {
    const int id = order[r];
    const double p = std::exp(static_cast<double>(last[id]) - mx) / z;
    const std::string text = pad_right(tok ? show(tok->token_text(id)) : "", 20);
    std::printf("  %4d  %8d  %s %8.5f  %9.4f\n", r + 1, id, text.c_str(), p, last[id]);
  }

  if (!o.out.empty()) {
    H5File f(o.out, H5Mode::Create);
    f.write_floats("logits", logits.data, {T, V});
    f.write_ints("tokens", ids.data(), {T});
    if (tok) {
      std::vector<std::string> strs;
      // HDF5 strings are read as UTF-8 (h5py fails on invalid bytes); the ids keep the bytes.
      for (int32_t id : ids) strs.push_back(escape_invalid_utf8(tok->token_text(id)));
      f.write_strings("token_strings", strs);
    }
    for (size_t i = 0; i < cached.size(); ++i) {
      const HookPoint p = cached[i];
      const Shape whole = p.shape(model.config(), batch.B, batch.T);
      std::vector<int64_t> shape(whole.dims.begin() + 1, whole.dims.begin() + whole.rank);
      f.write_floats(p.name(), tp ? gathered[i].data() : plan.activations().at(p).data, shape);
    }
    f.set_attribute("/", "model", dir.string());
    f.set_attribute("/", "causeway_version", CAUSEWAY_VERSION);
    if (!o.text.empty()) f.set_attribute("/", "text", o.text);
    f.close();
    std::printf("\nwrote %s (logits [%d, %d]%s)\n", o.out.c_str(), T, V,
                cached.empty() ? "" : (" and " + std::to_string(cached.size()) + " hooks").c_str());
  }
  return 0;
}

}  // namespace

Command add_logits_command(CLI::App& app) {
  auto o = std::make_shared<LogitsOptions>();
  CLI::App* cmd = app.add_subcommand(
      "logits", "Run the model once and print the most likely next tokens; optionally save the "
                "logits and any hook activations to HDF5.");
  cmd->add_option("--model", o->model,
                  "Hugging Face checkpoint folder of a GPT-2, Llama, Mistral, Qwen2/3, GPT-NeoX "
                  "or Gemma 2 model (config.json, model.safetensors or "
                  "model.safetensors.index.json, and vocab.json + merges.txt or tokenizer.json)")
      ->required()
      ->check(CLI::ExistingDirectory);
  auto* text = cmd->add_option("--text", o->text, "Prompt text, tokenized with the model's tokenizer");
  auto* tokens = cmd->add_option("--tokens", o->tokens,
                                 "Prompt as token ids instead of text: \"464,3290,318\" or "
                                 "\"464 3290 318\"");
  text->excludes(tokens);
  tokens->excludes(text);
  cmd->add_flag_callback("--prepend-bos", [o]() { o->prepend_bos = true; },
                        "Put the tokenizer's BOS token before --text (default: as the model's "
                        "tokenizer files say: Llama, Mistral, Gemma yes; GPT-2, Qwen, Pythia no)");
  cmd->add_flag_callback("--no-prepend-bos", [o]() { o->prepend_bos = false; },
                         "Do not put BOS before --text");
  cmd->add_option("--top", o->top, "How many next-token candidates to print")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--cache", o->cache,
                  "Hook points to save with --out, by TransformerLens name (e.g. "
                  "blocks.0.attn.hook_z, ln_final.hook_scale), repeatable; 'all' saves every hook")
      ->expected(1, -1);
  cmd->add_option("--out", o->out,
                  "HDF5 file to write: 'logits' [pos, vocab], 'tokens', and one dataset per "
                  "cached hook named by its hook name (batch axis dropped)");
  cmd->add_flag("--overwrite", o->overwrite, "Replace --out if it already exists");
  cmd->add_option("--dtype", o->dtype,
                  "How weight matrices are held: f32 (default), bf16 or f16 (kept as the "
                  "checkpoint stores them, or rounded; compute is fp32 either way)");
  cmd->add_option("--tp", o->tp,
                  "Tensor-parallel shards per model replica (run under mpiexec with a multiple "
                  "of this many ranks; each rank holds and reads only its slices of the weights)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--threads", o->threads, "CPU threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([text, tokens]() {
    if (text->count() == 0 && tokens->count() == 0)
      throw CLI::RequiredError("--text or --tokens");
  });
  return [o]() { return run_logits(*o); };
}

}  // namespace causeway::cli
