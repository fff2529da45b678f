// NaN and inf are errors, not results (issue 10, A8): non-finite weights are refused at load,
// a non-finite baseline or metric stops `causeway run` naming the pair and the experiment
// unless allow_nonfinite is set, and then the file counts them; identical clean and corrupted
// prompts under metric "normalized" are named as the division by zero they are.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "cli_support.h"
#include "model/transformer_model.h"
#include "model/safetensors.h"
#include "patching/nonfinite.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
const fs::path kData = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data";
const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

// A copy of the tiny model in `dir` with `values` written over the first elements of `tensor`.
fs::path model_with(const fs::path& dir, const std::string& tensor, const std::vector<float>& values) {
  const fs::path d = dir / "model";
  fs::create_directories(d);
  for (const auto& e : fs::directory_iterator(kData / "tiny-gpt2")) fs::copy(e.path(), d / e.path().filename());
  const fs::path file = d / "model.safetensors";
  std::vector<char> bytes(fs::file_size(file));
  std::ifstream(file, std::ios::binary).read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  const SafetensorsLayout layout = parse_safetensors_image(
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()), file.string());
  for (const TensorInfo& t : layout.tensors)
    if (t.name == tensor) std::memcpy(bytes.data() + layout.data_offset + t.begin, values.data(), values.size() * 4);
  std::ofstream(file, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return d;
}

// A one-experiment config over `pairs` (a JSONL file), per-position residual patching.
fs::path write_config(const fs::path& dir, const fs::path& model, const fs::path& pairs,
                      const std::string& metric, const std::string& output_extra = "") {
  const fs::path cfg = dir / "run.toml";
  std::ofstream(cfg) << "[model]\npath = \"" << model.string() << "\"\nthreads = 1\n\n[data]\nfile = \""
                     << pairs.string() << "\"\n\n[output]\npath = \"" << (dir / "out.h5").string() << "\"\n"
                     << output_extra << "\n[parallel]\npairs_per_item = 1\n\n[[experiment]]\nname = \"resid\"\n"
                     << "sweep = \"resid_pre\"\npositions = \"each\"\nmetric = \"" << metric << "\"\n";
  return cfg;
}

const fs::path kPairs = kData / "tiny-gpt2-patching-pairs.jsonl";

int64_t int_attribute(const fs::path& file, const std::string& object, const std::string& key) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  EXPECT_GE(f, 0) << file;
  int64_t v = -1;
  const hid_t a = H5Aopen_by_name(f, object.c_str(), key.c_str(), H5P_DEFAULT, H5P_DEFAULT);
  EXPECT_GE(a, 0) << object << " has no attribute " << key;
  if (a >= 0) {
    H5Aread(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
  }
  H5Fclose(f);
  return v;
}

// Sets an environment variable for the lifetime of the object (the CLI inherits it).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) { ::setenv(name, value.c_str(), 1); }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(NonfiniteWeights, NanInOneTensorIsRefusedAtLoadNamingTensorAndFile) {
  fixtures::TempDir dir("nonfinite");
  const fs::path model = model_with(dir.path(), "transformer.h.1.mlp.c_fc.weight", {0.1f, 0.2f, kNaN});
  try {
    TransformerModel::load(model);
    FAIL() << "a NaN weight was accepted";
  } catch (const InputError& e) {
    EXPECT_TRUE(has(e.what(), "transformer.h.1.mlp.c_fc.weight")) << e.what();
    EXPECT_TRUE(has(e.what(), "model.safetensors")) << e.what();
    EXPECT_TRUE(has(e.what(), "nan at element 2")) << e.what();
  }
  const auto r = fixtures::run_causeway("run " + write_config(dir.path(), model, kPairs, "logit_diff").string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "causeway: error: ")) << r.output;
  EXPECT_TRUE(has(r.output, "transformer.h.1.mlp.c_fc.weight")) << r.output;
  EXPECT_FALSE(fs::exists(dir.path() / "out.h5"));
}

TEST(NonfiniteWeights, InfInTheKeySliceOfCAttnIsNamedAtItsStoredIndex) {
  fixtures::TempDir dir("nonfinite");
  // c_attn.bias is [Q | K | V] of 64 each: element 70 is the 7th key bias.
  std::vector<float> bias(71, 0.0f);
  bias[70] = kInf;
  const fs::path model = model_with(dir.path(), "transformer.h.0.attn.c_attn.bias", bias);
  try {
    TransformerModel::load(model);
    FAIL() << "an inf weight was accepted";
  } catch (const InputError& e) {
    EXPECT_TRUE(has(e.what(), "transformer.h.0.attn.c_attn.bias: holds inf at element 70")) << e.what();
  }
}

TEST(NonfiniteResults, IdenticalPromptsUnderNormalizedAreRefusedNamingThePair) {
  fixtures::TempDir dir("nonfinite");
  const fs::path pairs = dir.path() / "pairs.jsonl";
  std::ofstream(pairs) << R"({"clean": [763, 890, 970, 680], "corrupted": [828, 890, 970, 680], "answer": 657, "wrong": 355})"
                       << "\n"
                       << R"({"clean": [308, 984, 715, 601], "corrupted": [308, 984, 715, 601], "answer": 766, "wrong": 677})"
                       << "\n";
  const fs::path model = kData / "tiny-gpt2";
  auto r = fixtures::run_causeway("run " + write_config(dir.path(), model, pairs, "normalized").string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "pair 1 (line 2)")) << r.output;
  EXPECT_TRUE(has(r.output, "experiment 'resid'")) << r.output;
  EXPECT_TRUE(has(r.output, "divide by zero")) << r.output;
  EXPECT_FALSE(fs::exists(dir.path() / "out.h5"));
  // The raw logit difference of the same pairs is well defined.
  r = fixtures::run_causeway("run " + write_config(dir.path(), model, pairs, "logit_diff").string() + " -q");
  EXPECT_EQ(r.code, 0) << r.output;
}

TEST(NonfiniteResults, EqualBaselinesUnderNormalizedNameTheDivisionByZero) {
  // Different tokens whose logit differences happen to be equal: found once they are computed.
  PairDataset data;
  data.source = "pairs.jsonl";
  data.pairs.resize(2);
  data.pairs[1].line = 2;
  data.pairs[1].clean = data.pairs[1].corrupted = {1, 2};
  SweepGrid grid;
  grid.cells.resize(1);
  SweepBaselines b;
  b.clean_ld = {1.0, 2.5};
  b.corrupted_ld = {0.0, 2.5};
  b.clean_metric = {1.0, kNaN};
  b.corrupted_metric = {0.0, kNaN};
  const float effect[1] = {0.5f};
  try {
    require_finite({"ioi", MetricKind::Normalized, data, grid, 1, 2, 0, 1, effect, b},
                   [](int64_t) { return std::string("c"); });
    FAIL() << "equal baselines were accepted";
  } catch (const InputError& e) {
    EXPECT_TRUE(has(e.what(), "pairs.jsonl: pair 1 (line 2): experiment 'ioi'")) << e.what();
    EXPECT_TRUE(has(e.what(), "equal (2.5)")) << e.what();
    EXPECT_TRUE(has(e.what(), "divides by zero")) << e.what();
  }
}

TEST(NonfiniteResults, PaddingCellsAreNotCountedButRealNaNsAre) {
  PairDataset data;
  data.pairs.resize(2);
  data.pairs[0].clean = {1, 2, 3};
  data.pairs[1].clean = {1, 2};
  SweepGrid grid;
  for (int pos = 0; pos < 3; ++pos) grid.cells.push_back(PatchCell{HookKind::ResidPre, 0, pos});
  SweepBaselines b;
  b.clean_ld = b.corrupted_ld = b.clean_metric = b.corrupted_metric = {1.0, 1.0};
  b.corrupted_ld = b.corrupted_metric = {0.0, 0.0};
  // Pair 1 has 2 tokens: its position 2 is padding (NaN by design).
  std::vector<float> effect = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, kNaN};
  EXPECT_EQ(count_nonfinite(data, grid, effect, b).cells, 0);
  EXPECT_NO_THROW(require_finite({"x", MetricKind::LogitDiff, data, grid, 0, 2, 0, 3, effect.data(), b},
                                 [](int64_t c) { return std::to_string(c); }));
  effect[4] = kInf;
  EXPECT_EQ(count_nonfinite(data, grid, effect, b).cells, 1);
  try {
    require_finite({"x", MetricKind::LogitDiff, data, grid, 0, 2, 0, 3, effect.data(), b},
                   [](int64_t c) { return "pos " + std::to_string(c); });
    FAIL() << "inf accepted";
  } catch (const InputError& e) {
    EXPECT_TRUE(has(e.what(), "pair 1: experiment 'x': metric \"logit_diff\" of cell pos 1 is inf")) << e.what();
  }
  b.clean_metric[0] = kNaN;
  EXPECT_EQ(count_nonfinite(data, grid, effect, b).baselines, 1);
}

// ln_f.bias of 3e38 makes logits overflow to inf, and so the baselines of most pairs.
TEST(NonfiniteResults, OverflowingBaselinesStopTheJobUnlessAllowedThenTheFileCountsThem) {
  fixtures::TempDir dir("nonfinite");
  const fs::path model = model_with(dir.path(), "transformer.ln_f.bias", std::vector<float>(64, 3e38f));
  const fs::path cfg = write_config(dir.path(), model, kPairs, "logit_diff");
  auto r = fixtures::run_causeway("run " + cfg.string());
  EXPECT_EQ(r.code, 2) << r.output;
  // Which pairs overflow depends on their answer tokens' embeddings; the first one is named.
  EXPECT_TRUE(has(r.output, "tiny-gpt2-patching-pairs.jsonl: pair ")) << r.output;
  EXPECT_TRUE(has(r.output, "experiment 'resid': the clean run's logit difference is")) << r.output;
  EXPECT_TRUE(has(r.output, "--allow-nonfinite")) << r.output;
  EXPECT_FALSE(has(r.output, "wrote ")) << r.output;

  r = fixtures::run_causeway("run " + cfg.string() + " --overwrite --allow-nonfinite");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(has(r.output, "resid: ")) << r.output;
  EXPECT_TRUE(has(r.output, "are NaN or inf")) << r.output;
  const fs::path out = dir.path() / "out.h5";
  EXPECT_GT(int_attribute(out, "/experiments/resid", "nonfinite_baselines"), 0);
  EXPECT_GT(int_attribute(out, "/experiments/resid", "nonfinite_cells"), 0);
}

TEST(NonfiniteResults, ANanCellStopsTheJobNamingPairAndCellAndResumeMayOptIn) {
  fixtures::TempDir dir("nonfinite");
  const fs::path model = kData / "tiny-gpt2";
  const fs::path out = dir.path() / "out.h5";
  {
    ScopedEnv fault("CAUSEWAY_FAULT_NONFINITE_PAIR", "2");
    auto r = fixtures::run_causeway("run " + write_config(dir.path(), model, kPairs, "logit_diff").string());
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_TRUE(has(r.output, "tiny-gpt2-patching-pairs.jsonl: pair 2 (line 3): experiment 'resid': metric "
                              "\"logit_diff\" of cell layer 0")) << r.output;
    EXPECT_TRUE(has(r.output, " is nan; NaN and inf are errors")) << r.output;
    // The opt-in in the config does not make the stored config differ for --resume.
    const fs::path cfg = write_config(dir.path(), model, kPairs, "logit_diff", "allow_nonfinite = true\n");
    r = fixtures::run_causeway("run " + cfg.string() + " --resume -q");
    ASSERT_EQ(r.code, 0) << r.output;
  }
  // One NaN per item of pair 2 (one item per layer), and nothing else.
  EXPECT_EQ(int_attribute(out, "/experiments/resid", "nonfinite_cells"), 2);
  EXPECT_EQ(int_attribute(out, "/experiments/resid", "nonfinite_baselines"), 0);
  // A clean run says so too.
  auto r = fixtures::run_causeway("run " + write_config(dir.path(), model, kPairs, "logit_diff").string() +
                                  " --overwrite -q");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(int_attribute(out, "/experiments/resid", "nonfinite_cells"), 0);
}

TEST(NonfiniteResults, AllowNonfiniteMustBeABoolean) {
  fixtures::TempDir dir("nonfinite");
  const auto r = fixtures::run_causeway(
      "run " + write_config(dir.path(), kData / "tiny-gpt2", kPairs, "logit_diff", "allow_nonfinite = 1\n").string());
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_TRUE(has(r.output, "output.allow_nonfinite: must be true or false")) << r.output;
}

}  // namespace
}  // namespace causeway
