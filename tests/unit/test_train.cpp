// Training: AdamW against hand-computed steps (and PyTorch goldens where they exist), the
// learning-rate schedule, reproducibility, the synthetic tasks and their tokenizers, the
// Hugging Face checkpoint writer, `causeway train` configs, and the committed model organisms
// (models/induction-2l, models/ioi-toy).
#include <gtest/gtest.h>

#include "cli_support.h"
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "cli/train_config.h"
#include "core/error.h"
#include "data/ioi.h"
#include "model/checkpoint_writer.h"
#include "model/transformer_model.h"
#include "model/safetensors.h"
#include "train/adamw.h"
#include "train/head_scores.h"
#include "train/induction_task.h"
#include "train/ioi_task.h"
#include "train/lr_schedule.h"
#include "train/trainer.h"
#include "train/word_tokenizer.h"

namespace causeway::train {
namespace {

namespace fs = std::filesystem;
const fs::path kRoot = CAUSEWAY_SOURCE_DIR;
const fs::path kData = kRoot / "tests/data";

using fixtures::TempDir;

// ------------------------------------------------------------------------------------------
// AdamW and the schedule

TEST(AdamW, MatchesHandComputedSteps) {
  // One decayed matrix and one vector, which decay_matrices leaves undecayed.
  Arena params({{"w", {1, 2}}, {"b", {1}}});
  Arena grads({{"w", {1, 2}}, {"b", {1}}});
  params.at(0).data[0] = 1.0f, params.at(0).data[1] = -2.0f, params.at(1).data[0] = 0.5f;
  AdamWOptions o;
  o.weight_decay = 0.1;
  AdamW opt(params, o, AdamW::decay_matrices(params));
  const double lr = 0.1;
  const float g1[3] = {0.5f, 1e-3f, -4.0f}, g2[3] = {-0.25f, 1e-3f, 2.0f};

  grads.at(0).data[0] = g1[0], grads.at(0).data[1] = g1[1], grads.at(1).data[0] = g1[2];
  opt.step(params, grads, lr);
  // By hand, step 1: p = 1 * (1 - 0.1 * 0.1) = 0.99; m = 0.05, v = 2.5e-4; m_hat = 0.5,
  // v_hat = 0.25; p -= 0.1 * 0.5 / (0.5 + 1e-8) -> 0.89. Adam's first step is lr * sign(g)
  // whatever |g| is (here 1e-3 and -4 too).
  EXPECT_NEAR(params.at(0).data[0], 0.89, 1e-6);
  EXPECT_NEAR(params.at(0).data[1], -2.0 * 0.99 - 0.1, 1e-6);
  EXPECT_NEAR(params.at(1).data[0], 0.5 + 0.1, 1e-6);  // no decay on the vector

  grads.at(0).data[0] = g2[0], grads.at(0).data[1] = g2[1], grads.at(1).data[0] = g2[2];
  opt.step(params, grads, lr);
  // Step 2 of element 0 by hand: p = 0.89 * 0.99 = 0.8811; m = 0.02, v = 3.1225e-4;
  // m_hat = 0.02 / 0.19, v_hat = 3.1225e-4 / 0.001999; p -= 0.1 * m_hat / (sqrt(v_hat) + eps).
  const double m_hat = 0.02 / 0.19, v_hat = 3.1225e-4 / (1.0 - 0.999 * 0.999);
  EXPECT_NEAR(params.at(0).data[0], 0.8811 - 0.1 * m_hat / (std::sqrt(v_hat) + 1e-8), 2e-6);
  // Element 1: the same gradient twice, so m_hat / sqrt(v_hat) = 1 exactly (up to eps).
  EXPECT_NEAR(params.at(0).data[1], (-2.0 * 0.99 - 0.1) * 0.99 - 0.1, 2e-6);
  // The vector: m = 0.9 * -0.4 + 0.1 * 2 = -0.16, v = 0.999 * 0.016 + 0.001 * 4 = 0.019984.
  const double mb = -0.16 / 0.19, vb = 0.019984 / (1.0 - 0.999 * 0.999);
  EXPECT_NEAR(params.at(1).data[0], 0.6 - 0.1 * mb / (std::sqrt(vb) + 1e-8), 2e-6);
  EXPECT_EQ(opt.steps_taken(), 2);
}

TEST(AdamW, ClipGradNormScalesLikeTorch) {
  Arena grads({{"a", {2}}, {"b", {1, 1}}});
  grads.at(0).data[0] = 3.0f, grads.at(0).data[1] = 0.0f, grads.at(1).data[0] = 4.0f;
  EXPECT_DOUBLE_EQ(clip_grad_norm(grads, 10.0), 5.0);  // below max: unchanged
  EXPECT_FLOAT_EQ(grads.at(0).data[0], 3.0f);
  EXPECT_DOUBLE_EQ(clip_grad_norm(grads, 1.0), 5.0);
  EXPECT_NEAR(grad_norm(grads), 1.0, 1e-6);
  EXPECT_NEAR(grads.at(1).data[0], 0.8, 1e-6);
}

// 3 torch.optim.AdamW steps on the tiny model (tests/reference/make_gradient_goldens.py), when
// that script's output is present. torch decays every parameter, so decay_all here.
TEST(AdamW, MatchesTorchGoldensOnTheTinyModel) {
  const fs::path file = kData / "tiny-gpt2-gradient-goldens.safetensors";
  // Committed with the repository: a missing file is a failure, not a skip.
  ASSERT_TRUE(fs::exists(file)) << file << " missing (tests/reference/make_gradient_goldens.py)";
  const fs::path dir = fs::temp_directory_path() / ("causeway-goldens-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(file, dir / "model.safetensors", fs::copy_options::overwrite_existing);
  const Checkpoint g = Checkpoint::open(dir);
  if (!g.has("train.adamw_losses")) {
    fs::remove_all(dir);
    FAIL() << "no train.adamw3.* goldens in " << file;
  }
  TransformerModel model = TransformerModel::load(kData / "tiny-gpt2");
  const ModelConfig& cfg = model.config();
  const TensorInfo& ti = g.info("train.tokens");
  const int B = static_cast<int>(ti.shape[0]), T = static_cast<int>(ti.shape[1]);
  TokenBatch batch;
  batch.B = B, batch.T = T;
  batch.ids.resize(static_cast<size_t>(B) * T);
  batch.lengths.assign(B, T);
  g.read_i32("train.tokens", batch.ids.data());
  std::vector<int32_t> targets(batch.ids.size(), -1);
  for (int b = 0; b < B; ++b)
    for (int t = 0; t + 1 < T; ++t) targets[b * T + t] = batch.ids[b * T + t + 1];
  std::vector<float> losses(3);
  g.read("train.adamw_losses", losses.data());

  const Arena& params = model.weights().arena();
  AdamWOptions o;  // betas (0.9, 0.999), eps 1e-8
  o.weight_decay = 0.01;
  AdamW opt(params, o, AdamW::decay_all(params));
  ModelWeights grads(cfg);
  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < grads.arena().specs().size(); ++i)
      std::memset(grads.arena().at(i).data, 0, grads.arena().at(i).bytes());
    const double loss = model.loss_and_gradients(batch, targets, grads);
    EXPECT_NEAR(loss, losses[step], 1e-5) << "loss before step " << step + 1;
    opt.step(params, grads.arena(), 1e-3);
  }
  struct Stored {
    const char* name;
    const Tensor* ours;
  } stored[] = {{"transformer.h.0.mlp.c_fc.weight", &model.weights().blocks[0].W_in},
                {"transformer.wte.weight", &model.weights().W_E}};
  for (const Stored& s : stored) {
    const std::string key = std::string("train.adamw3.") + s.name;
    std::vector<float> want(static_cast<size_t>(s.ours->numel())), grad(want.size());
    g.read(key, want.data());
    g.read(std::string("train.grad.") + s.name, grad.data());
    // Adam normalizes each gradient, so an element's step inherits the gradient's relative
    // rounding error: summation order (threads, SIMD width) moves a gradient by ~1e-5 of the
    // tensor's largest one. Small gradients get that much slack on their 3 steps of at most lr,
    // capped at a sign flip (2 * 3 * lr); elements with large gradients must agree to 1e-5.
    double g_max = 0.0;
    for (float x : grad) g_max = std::max(g_max, static_cast<double>(std::abs(x)));
    int strict = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const double d = std::abs(static_cast<double>(s.ours->data[i]) - want[i]);
      const double rel_noise = 1e-4 * g_max / std::max(static_cast<double>(std::abs(grad[i])), 1e-30);
      const double slack = std::min(6e-3, 3e-3 * rel_noise);
      if (slack <= 1e-5) ++strict;
      EXPECT_LE(d, 1e-5 + slack) << key << " element " << i << " grad " << grad[i];
    }
    // Every element with a clear gradient is held to at most 2e-5 (1/50 of one step), so a
    // wrong update rule cannot pass.
    EXPECT_GT(strict, static_cast<int>(want.size()) / 50) << key;
  }
  fs::remove_all(dir);
}

TEST(LrSchedule, WarmupThenCosineOrConstant) {
  LrSchedule s;
  s.peak = 1.0, s.warmup = 4, s.total = 14, s.min_ratio = 0.1;
  EXPECT_DOUBLE_EQ(s.at(0), 0.25);
  EXPECT_DOUBLE_EQ(s.at(3), 1.0);
  EXPECT_DOUBLE_EQ(s.at(4), 1.0);           // cosine starts at the peak
  EXPECT_NEAR(s.at(13), 0.1, 1e-12);        // and ends at min_ratio * peak on the last step
  EXPECT_NEAR(s.at(8) + s.at(9), 1.1, 0.2);  // symmetric around the middle
  EXPECT_GT(s.at(6), s.at(7));
  s.kind = LrSchedule::Kind::Constant;
  EXPECT_DOUBLE_EQ(s.at(13), 1.0);
}

// ------------------------------------------------------------------------------------------
// Tasks and tokenizers

TEST(WordTokenizer, EveryWordIsOneTokenAndAnyTextStillEncodes) {
  const std::vector<std::string> words = {" Mary", " Marymount", " Maria", "When", "Whenever",
                                          " the", ",", " went"};
  const Tokenizer tok = make_word_tokenizer(words).load();
  for (const std::string& w : words) {
    const std::vector<int32_t> ids = tok.encode(w);
    ASSERT_EQ(ids.size(), 1u) << "'" << w << "'";
    EXPECT_EQ(tok.token_text(ids[0]), w);
  }
  EXPECT_EQ(tok.encode("When Mary went").size(), 3u);
  const std::string any = "Zoë's naïve café, 日本語 \t\n and \x01 bytes";
  EXPECT_EQ(tok.decode(tok.encode(any)), any);
  EXPECT_EQ(tok.token_text(*tok.eos_id()), "<|endoftext|>");
  EXPECT_EQ(*tok.eos_id(), tok.vocab_size() - 1);
  EXPECT_EQ(*tok.token_id("!"), 0);  // GPT-2's byte order: '!' is id 0
}

TEST(WordTokenizer, RefusesWordsWhoseMergesCollide) {
  // "ab" merges a+b before "cabd" can merge c+a, so "cabd" would be c|ab|d.
  EXPECT_THROW(make_word_tokenizer({"ab", "cabd"}), std::invalid_argument);
  EXPECT_THROW(make_word_tokenizer({" two words"}), std::invalid_argument);
}

TEST(IoiTask, NamesAreSingleTokensAndTheGeneratorUsesThem) {
  IoiTaskOptions o;
  o.names = {"Mary", "John", "Michael", "Jessica", "Joseph"};
  const IoiTask task(o);
  const Tokenizer& tok = task.tokenizer();
  for (const std::string& n : o.names) EXPECT_TRUE(tok.token_id(" " + n)) << n;
  for (std::string_view p : ioi_places()) EXPECT_TRUE(tok.token_id(" " + std::string(p))) << p;
  // Every template encodes word by word, so all prompts of a template have one length.
  IoiOptions io;
  io.n = 40;
  for (const IoiPair& p : generate_ioi_detailed(tok, io)) {
    EXPECT_EQ(p.pair.clean.size(), tok.encode(p.pair.clean_text).size());
    EXPECT_LE(static_cast<int>(p.pair.clean.size()), task.max_length());
  }
  const TrainBatch b = task.batch(7, 6);
  int with_target = 0;
  for (int r = 0; r < b.tokens.B; ++r)
    for (int t = 0; t < b.tokens.T; ++t) {
      const size_t i = static_cast<size_t>(r) * b.tokens.T + t;
      if (b.targets[i] < 0) continue;
      ++with_target;
      EXPECT_EQ(t, b.tokens.lengths[r] - 1);  // only the last position
      EXPECT_NE(b.wrongs[i], b.targets[i]);
    }
  EXPECT_EQ(with_target, 6);
  IoiTaskOptions bad;
  bad.names = {"Mary", "John", "Zaphod"};
  EXPECT_THROW(IoiTask{bad}, std::invalid_argument);
}

TEST(InductionTask, SecondCopiesAreTheOnlyTargetsAndEachTokenHasOneEarlierOccurrence) {
  InductionOptions o;
  o.seq_len = 40, o.min_repeat = 2, o.max_repeat = 6, o.segments = 3;
  const InductionTask task(o);
  const TrainBatch b = task.eval_batch(3, 20);
  ASSERT_EQ(b.tokens.T, 40);
  int targets = 0;
  for (int r = 0; r < b.tokens.B; ++r) {
    const int32_t* row = b.tokens.ids.data() + r * 40;
    EXPECT_EQ(row[0], task.bos());
    for (int t = 1; t + 1 < 40; ++t) {
      const int32_t target = b.targets[r * 40 + t];
      if (target < 0) continue;
      ++targets;
      EXPECT_EQ(target, row[t + 1]);
      int earlier = -1, count = 0;
      for (int s = 0; s < t; ++s)
        if (row[s] == row[t]) earlier = s, ++count;
      ASSERT_EQ(count, 1) << "row " << r << " position " << t;
      EXPECT_EQ(row[earlier + 1], target);  // induction predicts it
    }
  }
  EXPECT_GT(targets, 20);
  // The same seed gives the same batch; training batches vary in length.
  EXPECT_EQ(task.batch(5, 4).tokens.ids, task.batch(5, 4).tokens.ids);
  std::set<int> lengths;
  for (uint64_t s = 0; s < 20; ++s) lengths.insert(task.batch(s, 2).tokens.T);
  EXPECT_GT(lengths.size(), 5u);
}

// ------------------------------------------------------------------------------------------
// Training

ModelConfig tiny_config(int vocab, int positions) {
  ModelConfig c;
  c.model_type = "gpt2";
  c.n_layer = 2, c.n_embd = 32, c.n_head = 2, c.n_inner = 64;
  c.vocab_size = vocab, c.n_positions = positions;
  return c;
}

TEST(Train, SameSeedsGiveBitIdenticalWeights) {
  InductionOptions io;
  io.seq_len = 24, io.min_repeat = 2, io.max_repeat = 4;
  const InductionTask task(io);
  const ModelConfig cfg = tiny_config(task.vocab_size(), 24);
  TrainOptions o;
  o.steps = 15, o.batch = 8, o.init_seed = 3, o.data_seed = 4;
  auto weights = [&](const TrainOptions& opt) {
    TransformerModel m = make_initialized_model(cfg, opt.init_seed, 0.1);
    train(m, task, opt);
    const Arena& a = m.weights().arena();
    std::vector<float> all;
    for (size_t i = 0; i < a.specs().size(); ++i)
      all.insert(all.end(), a.at(i).data, a.at(i).data + a.at(i).numel());
    return all;
  };
  const std::vector<float> a = weights(o), b = weights(o);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  TrainOptions other = o;
  other.data_seed = 5;
  EXPECT_NE(weights(other), a);
}

TEST(Train, LossFallsOnTheInductionTask) {
  InductionOptions io;
  io.seq_len = 24, io.min_repeat = 2, io.max_repeat = 4;
  const InductionTask task(io);
  TransformerModel m = make_initialized_model(tiny_config(task.vocab_size(), 24), 1, 0.1);
  TrainOptions o;
  o.steps = 50, o.batch = 16, o.schedule.peak = 3e-3, o.schedule.warmup = 5;
  int reports = 0;
  const TrainResult r = train(m, task, o, [&](const StepLog& s) {
    ++reports;
    EXPECT_GT(s.tokens_per_s, 0.0);
  });
  ASSERT_EQ(r.losses.size(), 50u);
  double last = 0.0;
  for (int i = 40; i < 50; ++i) last += r.losses[i] / 10;
  // From ~ln(257) (uniform over the vocabulary) to below ~ln(62) (only the symbols left).
  EXPECT_GT(r.losses[0], 5.0);
  EXPECT_LT(last, 4.3);
  EXPECT_EQ(reports, 1);  // log_every 100 > steps: only the final report
  const EvalResult ev = evaluate(m, task, 0, 16);
  EXPECT_EQ(ev.sequences, 16);
  EXPECT_GT(ev.predictions, 16);
  EXPECT_EQ(ev.logit_diff_count, 0);
}

// ------------------------------------------------------------------------------------------
// Checkpoints

TEST(CheckpointWriter, SavedModelReloadsWithIdenticalLogits) {
  TempDir tmp;
  const TokenizerFiles tok = make_word_tokenizer({" alpha", " beta"});
  const ModelConfig cfg = tiny_config(tok.load().vocab_size(), 16);
  TransformerModel model = make_initialized_model(cfg, 9, 0.1);
  const fs::path dir = tmp.path() / "out" / "model";
  save_gpt2_checkpoint(dir, cfg, model.weights(),
                       {{"vocab.json", tok.vocab_json}, {"merges.txt", tok.merges_txt}}, false,
                       {{"eos_token_id", cfg.vocab_size - 1}});
  TransformerModel loaded = TransformerModel::load(dir);
  EXPECT_EQ(loaded.config().to_json(), cfg.to_json());
  const TokenBatch batch = TokenBatch::padded({{1, 5, 200, 257, 258}, {7, 3}});
  const Tensor a = model.forward(batch);
  std::vector<float> want(a.data, a.data + a.numel());
  const Tensor b = loaded.forward(batch);
  ASSERT_EQ(b.numel(), a.numel());
  EXPECT_EQ(std::memcmp(want.data(), b.data, want.size() * sizeof(float)), 0);
  // Hugging Face's layout: c_attn = [W_Q | W_K | W_V] by columns, "transformer." names.
  const Checkpoint ck = Checkpoint::open(dir);
  EXPECT_FALSE(ck.has("lm_head.weight"));
  const int C = cfg.n_embd;
  std::vector<float> k(static_cast<size_t>(C) * C);
  ck.read_columns("transformer.h.1.attn.c_attn.weight", C, 2 * C, k.data());
  EXPECT_EQ(std::memcmp(k.data(), model.weights().blocks[1].W_K.data, k.size() * sizeof(float)), 0);
  EXPECT_EQ(Tokenizer::from_model_dir(dir).encode(" beta").size(), 1u);
  std::ifstream cj(dir / "config.json");
  const nlohmann::json j = nlohmann::json::parse(cj);
  EXPECT_EQ(j["eos_token_id"], cfg.vocab_size - 1);
  EXPECT_EQ(j["tie_word_embeddings"], true);

  // An existing folder needs overwrite; a folder that is not a model is never replaced.
  EXPECT_THROW(save_gpt2_checkpoint(dir, cfg, model.weights(), {}, false), InputError);
  save_gpt2_checkpoint(dir, cfg, model.weights(), {}, true);
  EXPECT_FALSE(fs::exists(dir / "vocab.json"));
  fs::create_directories(tmp.path() / "notes");
  std::ofstream(tmp.path() / "notes" / "keep.txt") << "x";
  EXPECT_THROW(save_gpt2_checkpoint(tmp.path() / "notes", cfg, model.weights(), {}, true),
               InputError);
  EXPECT_TRUE(fs::exists(tmp.path() / "notes" / "keep.txt"));
  for (const auto& e : fs::directory_iterator(tmp.path() / "out"))
    EXPECT_EQ(e.path().filename(), "model");  // no temporary folder left behind
}

// ------------------------------------------------------------------------------------------
// Config

TrainConfig parse(const std::string& text) { return TrainConfig::parse(text, "t.toml"); }

const std::string kGood = R"(
[model]
n_layer = 2
n_embd = 32
n_head = 2
[task]
kind = "induction"
[train]
steps = 10
[output]
path = "out"
)";

std::string field_of(const std::string& text) {
  try {
    parse(text);
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), "t.toml");
    return e.field();
  }
  return "(no error)";
}

std::string with(std::string text, const std::string& from, const std::string& to) {
  text.replace(text.find(from), from.size(), to);
  return text;
}

TEST(TrainConfig, ParsesAndResolvesTheOutputBesideTheConfig) {
  const TrainConfig c = TrainConfig::parse(kGood, "configs/t.toml");
  EXPECT_EQ(c.model.n_inner, 128);
  EXPECT_EQ(c.model.n_positions, 0);  // the task's length, filled in by the command
  EXPECT_EQ(c.task, "induction");
  EXPECT_EQ(c.train.steps, 10);
  EXPECT_EQ(c.output, fs::path("configs/out"));
  EXPECT_EQ(c.text, kGood);
  const TrainConfig ioi = parse(with(with(kGood, "\"induction\"", "\"ioi\"\nnames = 5"), "", ""));
  EXPECT_EQ(ioi.ioi.names.size(), 5u);
  const TrainConfig listed =
      parse(with(kGood, "\"induction\"", "\"ioi\"\nnames = [\"Mary\", \"John\", \"Kyle\"]"));
  EXPECT_EQ(listed.ioi.names, (std::vector<std::string>{"Mary", "John", "Kyle"}));
}

TEST(TrainConfig, ErrorsNameTableAndKey) {
  EXPECT_EQ(field_of("[task]\nkind = \"ioi\"\n[train]\nsteps = 1\n"), "[model]");
  EXPECT_EQ(field_of(with(kGood, "n_head = 2", "n_head = 3")), "model.n_head");
  EXPECT_EQ(field_of(with(kGood, "n_layer = 2", "n_layer = \"two\"")), "model.n_layer");
  EXPECT_EQ(field_of(with(kGood, "n_layer = 2\n", "")), "model.n_layer");
  EXPECT_EQ(field_of(with(kGood, "\"induction\"", "\"sorting\"")), "task.kind");
  EXPECT_EQ(field_of(with(kGood, "\"induction\"", "\"induction\"\nmax_repeat = 30")),
            "task.max_repeat");
  EXPECT_EQ(field_of(with(kGood, "\"induction\"", "\"induction\"\nnames = 4")), "task.names");
  EXPECT_EQ(field_of(with(kGood, "\"induction\"", "\"ioi\"\nnames = [\"Mary\", \"Zaphod\", \"Al\"]")),
            "task.names");
  EXPECT_EQ(field_of(with(kGood, "steps = 10", "steps = 0")), "train.steps");
  EXPECT_EQ(field_of(with(kGood, "steps = 10", "steps = 10\nlr = -1")), "train.lr");
  EXPECT_EQ(field_of(with(kGood, "steps = 10", "steps = 10\nschedule = \"linear\"")),
            "train.schedule");
  EXPECT_EQ(field_of(with(kGood, "steps = 10", "steps = 10\nwarmup = 11")), "train.warmup");
  EXPECT_EQ(field_of(with(kGood, "steps = 10", "steps = 10\nmomentum = 0.9")), "train.momentum");
  EXPECT_EQ(field_of(with(kGood, "path = \"out\"", "path = 3")), "output.path");
  EXPECT_EQ(field_of(kGood + "[extra]\nx = 1\n"), "extra");
  EXPECT_EQ(field_of(with(kGood, "[train]", "[train\n")).substr(0, 5), "line ");
}

// ------------------------------------------------------------------------------------------
// The command

using CommandResult = fixtures::CliResult;
const auto run = fixtures::run_causeway;

TEST(TrainCommand, TrainsSavesAndRefusesToOverwrite) {
  TempDir tmp;
  const fs::path config = tmp.path() / "train.toml";
  std::ofstream(config) << with(with(kGood, "steps = 10", "steps = 3\nbatch = 4"), "\"induction\"",
                                "\"induction\"\nseq_len = 16\nmax_repeat = 4\neval_sequences = 8");
  const CommandResult ok = run("train " + config.string() + " --threads 1");
  ASSERT_EQ(ok.code, 0) << ok.output;
  EXPECT_NE(ok.output.find("step 3/3"), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("eval: accuracy"), std::string::npos) << ok.output;
  for (const char* f : {"config.json", "model.safetensors", "vocab.json", "merges.txt",
                        "train.toml", "training.json"})
    EXPECT_TRUE(fs::exists(tmp.path() / "out" / f)) << f;
  EXPECT_EQ(TransformerModel::load(tmp.path() / "out").config().n_positions, 16);

  const CommandResult again = run("train " + config.string() + " --threads 1");
  EXPECT_EQ(again.code, 2);
  EXPECT_NE(again.output.find("--overwrite"), std::string::npos) << again.output;

  std::ofstream(config) << with(kGood, "n_head = 2", "n_head = 5");
  const CommandResult bad = run("train " + config.string() + " --out " + (tmp.path() / "o2").string());
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.output.find("model.n_head"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(tmp.path() / "o2"));
}

// ------------------------------------------------------------------------------------------
// The committed organisms

// Previous-token and induction scores of models/induction-2l on [BOS] A A, |A| = 23 (see
// models/README.md). Measured at training: L0H0 previous-token 0.59, L1H0 induction 0.97,
// accuracy on the repeat 0.994.
TEST(Organisms, InductionModelHasPreviousTokenAndInductionHeads) {
  const fs::path dir = kRoot / "models/induction-2l";
  TransformerModel model = TransformerModel::load(dir);
  const InductionTask task(InductionOptions{});  // its tokenizer: bytes + <|endoftext|>
  ASSERT_EQ(model.config().vocab_size, task.vocab_size());
  std::vector<int32_t> symbols;
  for (int i = 0; i < 62; ++i) symbols.push_back(task.symbol_ids()[i]);
  const HeadScores s = head_scores(model, task.bos(), symbols, 23, 50, 2024);
  const auto [pl, ph] = s.best_prev();
  const auto [il, ih] = s.best_induction();
  EXPECT_EQ(pl, 0);
  EXPECT_GT(s.prev(pl, ph), 0.5);
  EXPECT_EQ(il, 1);
  EXPECT_GT(s.ind(il, ih), 0.9);
  EXPECT_GT(s.repeat_accuracy, 0.95);
}

// models/ioi-toy on fresh prompts from the IOI generator with its own tokenizer. Measured at
// training: accuracy 1.000, mean logit difference 9.4.
TEST(Organisms, IoiModelPredictsTheIndirectObject) {
  const fs::path dir = kRoot / "models/ioi-toy";
  TransformerModel model = TransformerModel::load(dir);
  const Tokenizer tok = Tokenizer::from_model_dir(dir);
  IoiOptions io;
  io.n = 200;
  io.seed = 99;
  const std::vector<PromptPair> pairs = generate_ioi(tok, io);
  std::vector<std::vector<int32_t>> rows;
  for (const PromptPair& p : pairs) rows.push_back(p.clean);
  const TokenBatch batch = TokenBatch::padded(rows);
  const Tensor logits = model.forward(batch, LogitRows::Last);
  const int V = model.config().vocab_size;
  int correct = 0;
  double diff = 0.0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const float* row = logits.data + static_cast<int64_t>(i) * V;
    correct += std::max_element(row, row + V) - row == pairs[i].answers[0];
    diff += row[pairs[i].answers[0]] - row[pairs[i].wrongs[0]];
  }
  EXPECT_GE(correct, 196);
  EXPECT_GT(diff / pairs.size(), 5.0);
}

}  // namespace
}  // namespace causeway::train
