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
#include "cli/compute_choice.h"
#include "cli/number_options.h"
#include "cli/output_guard.h"
#include "core/error.h"
#include "core/utf8.h"
#include "io/hdf5_file.h"
#include "io/output_lock.h"
#include "io/result_store.h"
#include "model/hook_gather.h"
#include "model/model_weights.h"
#include "model/stored_dtype.h"
#include "model/tokenizer.h"
#include "model/transformer_model.h"
#include "parallel/collectives.h"
#include "parallel/communicator.h"
#include "parallel/job_stop.h"
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
  bool text_given = false;         // --text, even an empty one
  std::optional<bool> prepend_bos;  // --prepend-bos / --no-prepend-bos; unset: the tokenizer's default
  std::string dtype = "f32";
  std::string compute = "f32";
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

// Token `id` as shown: quoted text, or <id 1011> unquoted for a padded vocabulary row the
// tokenizer has no text for (it is not a string the model could spell).
std::string show_token(const Tokenizer& tok, int32_t id) {
  return tok.has_token(id) ? show(tok.token_text(id)) : tok.display_text(id);
}

// `s` padded with spaces to `width` characters (printf's %-20s counts bytes, which misaligns
// columns after a multi-byte character).
std::string pad_right(const std::string& s, size_t width) {
  size_t chars = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++chars;
  return chars >= width ? s : s + std::string(width - chars, ' ');
}

// The hooks `names` (TransformerLens names or "all") save, each once: a hook named twice
// would be written twice into one file.
std::vector<HookPoint> hooks_to_cache(const std::vector<std::string>& names, const ModelConfig& mc) {
  std::vector<HookPoint> cached;
  auto add = [&](HookPoint p, const std::string& given) {
    for (const HookPoint& q : cached)
      if (q.name() == p.name())
        throw InputError("--cache", "", "'" + given + "' names " + p.name() + ", which is listed twice");
    cached.push_back(p);
  };
  for (const std::string& name : names) {
    if (name == "all") {
      for (HookPoint p : all_hook_points(mc)) add(p, name);
    } else {
      add(HookPoint::parse(name, mc, "--cache"), name);
    }
  }
  return cached;
}

// Everything a logits job holds from one step to the next.
struct LogitsJob {
  std::unique_ptr<OutputLock> lock;  // the writer's, until the file is written
  std::unique_ptr<Collectives> tp;   // outlives the model that holds it
  Topology topo;
  std::unique_ptr<TransformerModel> model;
  std::unique_ptr<Tokenizer> tok;
  std::vector<int32_t> ids;
  TokenBatch batch;
  std::vector<HookPoint> cached;
  std::unique_ptr<HookPlan> plan;
  Tensor logits;
  std::vector<std::vector<float>> gathered;
};

// Every rank: the checks, the model (this rank's shard) and the prompt, before any forward.
void set_up(LogitsJob& job, const LogitsOptions& o, const Communicator& world) {
  const std::filesystem::path dir(o.model);
  // Before anything is opened for writing (the lock file included).
  if (!o.out.empty()) guard_output_file(o.out, {{dir, "the model folder"}}, "--out");
  // Held until the file is written: a run job on the same path is refused, and vice versa.
  if (!o.out.empty() && world.rank() == 0) job.lock = std::make_unique<OutputLock>(o.out);
  if (!o.out.empty() && std::filesystem::exists(o.out) && !o.overwrite)
    throw InputError(o.out, "", "output file exists; pass --overwrite to replace it");

  if (o.tp > 1) {
    job.topo = Topology::make(world, o.tp, ModelConfig::from_json_file(dir / "config.json").n_head, "--tp");
    job.tp = make_mpi_collectives(job.topo.tp_comm);
  }
  const DType held = parse_weight_dtype(o.dtype, "--dtype", "");
  const cpu::SixteenBitCompute chosen = parse_compute(o.compute, "--compute", "");
  check_compute_fits_dtype(chosen, held, "--compute", "");
  cpu::set_sixteen_bit_compute(chosen);
  job.model = std::make_unique<TransformerModel>(TransformerModel::load(dir, held, job.tp.get()));
  const bool has_tokenizer = std::filesystem::exists(dir / "vocab.json") ||
                             std::filesystem::exists(dir / "tokenizer.json");
  if (has_tokenizer) job.tok = std::make_unique<Tokenizer>(Tokenizer::from_model_dir(dir));
  else if (o.text_given)
    throw InputError(dir.string(), "vocab.json",
                     "--text needs a tokenizer (vocab.json + merges.txt or tokenizer.json) in "
                     "the model folder; pass --tokens instead");

  if (!o.text_given) {
    job.ids = parse_token_ids(o.tokens);
  } else {
    // An empty text is the tokenizer's BOS alone where it puts one first.
    job.ids = job.tok->encode_for_model(o.text, o.prepend_bos);
    if (job.ids.empty())
      throw InputError("--text", "",
                       o.text.empty() ? "is empty, and this tokenizer puts no BOS first; give some "
                                        "text (or --prepend-bos to run on BOS alone)"
                                      : "the text encodes to no tokens");
  }
  job.batch = TokenBatch::single(job.ids);
  job.model->validate(job.batch, o.text_given ? "--text" : "--tokens");
  job.cached = hooks_to_cache(o.cache, job.model->config());
  job.plan = std::make_unique<HookPlan>(job.model->config().n_layer);
  for (HookPoint p : job.cached) job.plan->cache(p);
}

// Every rank: the forward (collective under --tp), and the hooks a tensor-parallel rank holds
// a block of (heads, MLP units) gathered into the model's whole tensor.
void compute(LogitsJob& job) {
  job.logits = job.model->forward(job.batch, *job.plan, LogitRows::All);
  job.gathered.resize(job.tp ? job.cached.size() : 0);
  for (size_t i = 0; i < job.gathered.size(); ++i)
    gather_hook(job.cached[i].kind, job.model->config(), job.model->shard(), job.tp.get(),
                job.plan->activations().at(job.cached[i]), job.batch.B, job.batch.T, job.gathered[i]);
}

// World rank 0: the table, and the file, written under a temporary name and renamed into
// place, so a failure leaves an older file at --out as it was.
void report(const LogitsJob& job, const LogitsOptions& o) {
  const std::filesystem::path dir(o.model);
  const TransformerModel& model = *job.model;
  const Tokenizer* tok = job.tok.get();
  const std::vector<int32_t>& ids = job.ids;
  const int T = job.batch.T, V = model.config().vocab_size;
  const float* last = job.logits.data + static_cast<int64_t>(T - 1) * V;

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
  if (mc.kv_heads() != mc.n_head)
    std::printf(", %d key/value head%s", mc.kv_heads(), mc.kv_heads() == 1 ? "" : "s");
  // Stored as the checkpoint has them, held as --dtype says (16-bit ones widened under f32).
  const std::string weights = weights_dtype_text(stored_dtype(dir), model.weights().dtype());
  std::printf(", vocab %d, weights %s", V, weights.c_str());
  const std::string compute_line = compute_text(cpu::sixteen_bit_compute());
  if (!compute_line.empty()) std::printf(", %s", compute_line.c_str());
  if (o.tp > 1) std::printf(", %d tensor-parallel shards", o.tp);
  std::printf(")\n");
  std::printf("input: %d tokens:", T);
  for (int32_t id : ids) {
    if (tok) std::printf(" %d:%s", id, show_token(*tok, id).c_str());
    else std::printf(" %d", id);
  }
  std::printf("\n\n  rank  token id  token                 prob      logit\n");
  for (int r = 0; r < k; ++r) {
    const int id = order[r];
    const double p = std::exp(static_cast<double>(last[id]) - mx) / z;
    const std::string text = pad_right(tok ? show_token(*tok, id) : "", 20);
    std::printf("  %4d  %8d  %s %8.5f  %9.4f\n", r + 1, id, text.c_str(), p, last[id]);
  }
  if (o.out.empty()) return;

  ResultStore staged = ResultStore::create_staged(o.out);
  H5File& f = staged.file();
  f.write_floats("logits", job.logits.data, {T, V});
  f.write_ints("tokens", ids.data(), {T});
  if (tok) {
    std::vector<std::string> strs;
    // HDF5 strings are read as UTF-8 (h5py fails on invalid bytes); the ids keep the bytes.
    for (int32_t id : ids) strs.push_back(escape_invalid_utf8(tok->display_text(id)));
    f.write_strings("token_strings", strs);
  }
  for (size_t i = 0; i < job.cached.size(); ++i) {
    const HookPoint p = job.cached[i];
    const Shape whole = p.shape(model.config(), job.batch.B, job.batch.T);
    std::vector<int64_t> shape(whole.dims.begin() + 1, whole.dims.begin() + whole.rank);
    f.write_floats(p.name(), job.tp ? job.gathered[i].data() : job.plan->activations().at(p).data, shape);
  }
  f.set_attribute("/", "model", dir.string());
  f.set_attribute("/", "weights_dtype", std::string(weight_dtype_name(model.weights().dtype())));
  f.set_attribute("/", "weights_stored_dtype", stored_dtype(dir).text);
  f.set_attribute("/", "compute", std::string(compute_name(cpu::sixteen_bit_compute())));
  f.set_attribute("/", "causeway_version", CAUSEWAY_VERSION);
  if (o.text_given) f.set_attribute("/", "text", o.text);
  staged.publish();
  std::printf("\nwrote %s (logits [%d, %d]%s)\n", o.out.c_str(), T, V,
              job.cached.empty() ? "" : (" and " + std::to_string(job.cached.size()) + " hooks").c_str());
}

int run_logits(const LogitsOptions& o) {
  set_cpu_threads(o.threads);
  // --tp N: the world's ranks form replicas of N shards; every replica computes the same
  // logits and world rank 0 prints and writes them.
  MpiSession session(nullptr, nullptr);
  const Communicator world;
  // The ranks fail together, and the error prints once (rank 0), as in `run`.
  JobStop stop(world);
  try {
    LogitsJob job;
    together(stop, false, [&] { set_up(job, o, world); });
    together(stop, false, [&] { compute(job); });
    together(stop, true, [&] { report(job, o); });
  } catch (const JobFailure& f) {
    const JobOutcome& r = f.outcome;
    if (world.rank() == 0) {
      if (r.rank == 0 || world.size() == 1) std::fprintf(stderr, "causeway: error: %s\n", r.message.c_str());
      else std::fprintf(stderr, "causeway: error (rank %d): %s\n", r.rank, r.message.c_str());
    }
    return r.code;
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
      ->check(positive_integer());
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
                  "checkpoint stores them, or rounded)");
  cmd->add_option("--compute", o->compute,
                  "How bf16 weights are multiplied: f32 (default: widened, equal to fp32 on the "
                  "rounded weights) or bf16 (the CPU's bf16 dot products where it has them; "
                  "activations rounded to bf16 too; needs --dtype bf16)");
  cmd->add_option("--tp", o->tp,
                  "Tensor-parallel shards per model replica (run under mpiexec with a multiple "
                  "of this many ranks; each rank holds and reads only its slices of the weights)")
      ->check(positive_integer());
  cmd->add_option("--threads", o->threads, "CPU threads (default: all cores)")
      ->check(non_negative_integer());
  cmd->callback([o, text, tokens]() {
    if (text->count() == 0 && tokens->count() == 0)
      throw CLI::RequiredError("--text or --tokens");
    o->text_given = text->count() > 0;
  });
  return [o]() { return run_logits(*o); };
}

}  // namespace causeway::cli
