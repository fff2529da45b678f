// `--compute` / `[model] compute` (README: bf16 compute): bf16 weights on bf16 dot products is a
// choice, shown on the `logits` model line, the `run` start line and the logits file, refused on
// weights not held in bf16, and close to the default's logits within what bf16 rounding allows;
// CAUSEWAY_CPU_BF16=0 turns the fast path off and the logits equal the default's.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "backend/cpu/bf16_dot_gemm.h"
#include "backend/ops_linear.h"
#include "cli_support.h"
#include "io/hdf5_file.h"
#include "model/safetensors.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
using fixtures::TempDir;
const fs::path kTiny = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data/tiny-gpt2";

// The tiny GPT-2 stored in bf16 under `dir`, with its tokenizer files.
fs::path tiny_bf16(const fs::path& dir) {
  const fs::path d = dir / "bf16";
  fs::create_directories(d);
  for (const char* f : {"vocab.json", "merges.txt", "config.json"}) fs::copy_file(kTiny / f, d / f);
  const Checkpoint ckpt = Checkpoint::open(kTiny);
  std::vector<std::vector<uint16_t>> words;
  std::vector<SafetensorsEntry> entries;
  for (const std::string& n : ckpt.names()) {
    const TensorInfo& t = ckpt.info(n);
    std::vector<float> v(static_cast<size_t>(t.numel()));
    ckpt.read(n, v.data());
    std::vector<uint16_t> w;
    for (float x : v) w.push_back(cpu::f32_to_bf16(x));
    words.push_back(std::move(w));
    entries.push_back({n, DType::BF16, t.shape, nullptr});
  }
  for (size_t i = 0; i < entries.size(); ++i) entries[i].data = words[i].data();
  write_safetensors(d / "model.safetensors", entries);
  return d;
}

std::vector<float> logits_of(const fs::path& file) {
  H5File f(file, H5Mode::ReadOnly);
  return f.read_floats("logits");
}

const char* kTokens = " --tokens 1,2,3,4,5,6,7,8,9,10,11,12";

TEST(CliCompute, Bf16ComputeIsShownAndStaysCloseToTheDefault) {
  TempDir dir("compute");
  const fs::path model = tiny_bf16(dir.path());
  const std::string base = "logits --model " + model.string() + kTokens + " --dtype bf16 --out ";
  const auto exact = fixtures::run_causeway(base + (dir.path() / "f32.h5").string());
  ASSERT_EQ(exact.code, 0) << exact.output;
  EXPECT_EQ(exact.output.find(", compute"), std::string::npos) << exact.output;  // the default says nothing
  const auto fast = fixtures::run_causeway(base + (dir.path() / "bf16.h5").string() + " --compute bf16");
  ASSERT_EQ(fast.code, 0) << fast.output;
  const bool native = cpu::bf16_dot_products_available();  // the same CPU and environment
  EXPECT_NE(fast.output.find(native ? ", weights bf16, held as bf16, compute bf16 (bf16 dot products))"
                                    : ", compute bf16 requested, computed in f32 (no bf16 dot products"),
            std::string::npos)
      << fast.output;
  H5File file(dir.path() / "bf16.h5", H5Mode::ReadOnly);
  EXPECT_EQ(file.read_string_attribute("/", "compute"), "bf16");

  const auto a = logits_of(dir.path() / "f32.h5"), b = logits_of(dir.path() / "bf16.h5");
  ASSERT_EQ(a.size(), b.size());
  double largest = 0.0, diff = 0.0;
  for (size_t k = 0; k < a.size(); ++k) {
    largest = std::max(largest, static_cast<double>(std::abs(a[k])));
    diff = std::max(diff, static_cast<double>(std::abs(a[k] - b[k])));
  }
  ASSERT_GT(largest, 0.1);
  if (native) {
    // Activations rounded to bf16 (2^-9 relative) at every matmul of two layers: a few 2^-8 of
    // the largest logit, and not zero (the fast path ran).
    EXPECT_LT(diff, 0x1p-5 * largest) << "largest |logit| " << largest;
    EXPECT_GT(diff, 1e-6 * largest);
  } else {
    EXPECT_LT(diff, 1e-5 * largest);
  }
}

TEST(CliCompute, EnvironmentSwitchForcesTheWideningPath) {
  TempDir dir("compute-off");
  const fs::path model = tiny_bf16(dir.path());
  const std::string args = "logits --model " + model.string() + kTokens + " --dtype bf16 --compute bf16 --out ";
  ::setenv("CAUSEWAY_CPU_BF16", "0", 1);  // for the child; unset before this process looks
  const auto off = fixtures::run_causeway(args + (dir.path() / "off.h5").string());
  ::unsetenv("CAUSEWAY_CPU_BF16");
  ASSERT_EQ(off.code, 0) << off.output;
  EXPECT_NE(off.output.find(", compute bf16 requested, computed in f32 (no bf16 dot products"), std::string::npos)
      << off.output;
  const auto exact = fixtures::run_causeway("logits --model " + model.string() + kTokens + " --dtype bf16 --out " +
                                            (dir.path() / "f32.h5").string());
  ASSERT_EQ(exact.code, 0) << exact.output;
  const auto a = logits_of(dir.path() / "f32.h5"), b = logits_of(dir.path() / "off.h5");
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) ASSERT_NEAR(a[k], b[k], 1e-5 * (1.0 + std::abs(a[k]))) << k;
}

TEST(CliCompute, Bf16ComputeNeedsBf16WeightsAndAKnownName) {
  TempDir dir("compute-refused");
  const fs::path model = tiny_bf16(dir.path());
  const auto wide = fixtures::run_causeway("logits --model " + model.string() + kTokens + " --compute bf16");
  EXPECT_EQ(wide.code, 2) << wide.output;
  EXPECT_NE(wide.output.find("--compute: \"bf16\" needs weights held in bf16 (dtype = \"bf16\"), not f32"),
            std::string::npos)
      << wide.output;
  const auto unknown = fixtures::run_causeway("logits --model " + model.string() + kTokens + " --dtype bf16 --compute f8");
  EXPECT_EQ(unknown.code, 2) << unknown.output;
  EXPECT_NE(unknown.output.find("--compute: \"f8\" is not a compute type (choices: f32, bf16)"), std::string::npos)
      << unknown.output;

  // `run`: [model] compute without dtype = "bf16" is refused naming the file and the key; with it
  // the start line says what the run computes in.
  fixtures::write_text(dir.path() / "pairs.jsonl",
                       "{\"clean\": [1, 2, 3, 4], \"corrupted\": [1, 5, 3, 4], \"answer\": 6, \"wrong\": 7}\n");
  auto config = [&](const std::string& extra) {
    const fs::path cfg = dir.path() / "run.toml";
    fixtures::write_text(cfg, "[model]\npath = \"" + model.string() + "\"\nthreads = 1\n" + extra +
                                  "[data]\nfile = \"pairs.jsonl\"\n[output]\npath = \"out.h5\"\n"
                                  "[[experiment]]\nname = \"resid\"\nsweep = \"resid_pre\"\npositions = \"each\"\n");
    return cfg;
  };
  const fs::path refused = config("compute = \"bf16\"\n");
  const auto no_dtype = fixtures::run_causeway("run " + refused.string() + " --overwrite");
  EXPECT_EQ(no_dtype.code, 2) << no_dtype.output;
  EXPECT_NE(no_dtype.output.find(refused.string() + ": model.compute: \"bf16\" needs weights held in bf16"),
            std::string::npos)
      << no_dtype.output;
  const auto run = fixtures::run_causeway("run " + config("dtype = \"bf16\"\ncompute = \"bf16\"\n").string() +
                                          " --overwrite");
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("(weights bf16, held as bf16, compute bf16"), std::string::npos) << run.output;
}

// bf16 compute rounds activations, so --resume continues a file only in what it was computed in
// (the file's /meta@compute; a file without it computed in f32). Where the CPU has no bf16 dot
// products a --compute bf16 job computes in f32 and resumes an f32 file.
TEST(CliCompute, ResumeRefusesAFileComputedInAnotherType) {
  TempDir dir("compute-resume");
  const fs::path model = tiny_bf16(dir.path());
  fixtures::write_text(dir.path() / "pairs.jsonl",
                       "{\"clean\": [1, 2, 3, 4], \"corrupted\": [1, 5, 3, 4], \"answer\": 6, \"wrong\": 7}\n");
  const fs::path cfg = dir.path() / "run.toml";
  fixtures::write_text(cfg, "[model]\npath = \"" + model.string() + "\"\nthreads = 1\ndtype = \"bf16\"\n"
                            "[data]\nfile = \"pairs.jsonl\"\n[output]\npath = \"out.h5\"\n"
                            "[[experiment]]\nname = \"resid\"\nsweep = \"resid_pre\"\npositions = \"each\"\n");
  const auto first = fixtures::run_causeway("run " + cfg.string() + " --overwrite");
  ASSERT_EQ(first.code, 0) << first.output;
  {
    H5File f(dir.path() / "out.h5", H5Mode::ReadOnly);
    EXPECT_EQ(f.read_string_attribute("/meta", "compute"), "f32");
  }
  const auto again = fixtures::run_causeway("run " + cfg.string() + " --resume --compute bf16");
  if (cpu::bf16_dot_products_available()) {
    EXPECT_EQ(again.code, 2) << again.output;
    EXPECT_NE(again.output.find("/meta@compute: --resume: this job computes in bf16, the file was written "
                                "computing in f32 (pass --compute f32)"),
              std::string::npos)
        << again.output;
  } else {
    EXPECT_EQ(again.code, 0) << again.output;
  }
  const auto same = fixtures::run_causeway("run " + cfg.string() + " --resume --compute f32");
  EXPECT_EQ(same.code, 0) << same.output;
}

}  // namespace
}  // namespace causeway
