// --resume continues a file only for a job that would write the same numbers into the same
// places (issue 10, A3): changed pairs, weights, model config or pairs_per_item are refused
// before any work, naming what changed; a missing file starts a new run (A9).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli_support.h"
#include "io/hdf5_file.h"
#include "model/weights_fingerprint.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
const fs::path kData = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data";

using fixtures::read_text;
using fixtures::write_text;

// A job on its own copies of the model and the pairs, which a test may then change.
class ResumeJob {
 public:
  ResumeJob() : tmp_("resume") {
    fs::create_directories(model());
    for (const auto& e : fs::directory_iterator(kData / "tiny-gpt2")) fs::copy(e.path(), model() / e.path().filename());
    fs::copy(kData / "tiny-gpt2-patching-pairs.jsonl", pairs());
    write_config(3);
  }
  fs::path dir() const { return tmp_.path(); }
  fs::path model() const { return dir() / "model"; }
  fs::path pairs() const { return dir() / "pairs.jsonl"; }
  fs::path out() const { return dir() / "r.h5"; }
  void write_config(int pairs_per_item) const {
    std::ofstream(dir() / "run.toml") << "[model]\npath = \"model\"\nthreads = 1\n[data]\nfile = \"pairs.jsonl\"\n"
                                      << "[output]\npath = \"r.h5\"\n[parallel]\npairs_per_item = " << pairs_per_item
                                      << "\n[[experiment]]\nname = \"layers\"\nsweep = \"resid_pre\"\npositions = \"all\"\n";
  }
  fixtures::CliResult run(const std::string& flags) const {
    return fixtures::run_causeway("run " + (dir() / "run.toml").string() + " --quiet " + flags);
  }

 private:
  fixtures::TempDir tmp_;
};

void expect_refused(const fixtures::CliResult& r, const std::string& must_mention) {
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("causeway: error: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(must_mention), std::string::npos) << r.output;
}

TEST(ResumeIdentity, AnUnchangedJobResumes) {
  ResumeJob job;
  ASSERT_EQ(job.run("").code, 0);
  const auto r = job.run("--resume");
  EXPECT_EQ(r.code, 0) << r.output;
}

TEST(ResumeIdentity, ChangedPairsAreRefused) {
  ResumeJob job;
  ASSERT_EQ(job.run("").code, 0);
  // Pair 3 (line 4) keeps its length; one clean token changes.
  std::string text = read_text(job.pairs());
  const size_t line4 = text.find("[732, 282");
  ASSERT_NE(line4, std::string::npos);
  text.replace(line4, 9, "[733, 282");
  write_text(job.pairs(), text);
  expect_refused(job.run("--resume"), "--resume: the pairs differ from the file's (pair 3 (line 4) clean tokens)");
}

TEST(ResumeIdentity, ChangedAnswerIsRefused) {
  ResumeJob job;
  ASSERT_EQ(job.run("").code, 0);
  std::string text = read_text(job.pairs());
  const size_t a = text.find("\"answer\": 577");
  ASSERT_NE(a, std::string::npos);
  text.replace(a, 13, "\"answer\": 578");
  write_text(job.pairs(), text);
  expect_refused(job.run("--resume"), "(pair 2 (line 3) answer)");
}

TEST(ResumeIdentity, ChangedWeightBytesAreRefused) {
  ResumeJob job;
  ASSERT_EQ(job.run("").code, 0);
  // Same header, same size: only the last float of the last tensor changes.
  std::string bytes = read_text(job.model() / "model.safetensors");
  bytes[bytes.size() - 2] ^= 0x10;
  write_text(job.model() / "model.safetensors", bytes);
  expect_refused(job.run("--resume"), "--resume: the weights differ from the file's (model.safetensors contents)");
}

// Files past the whole-file limit are fingerprinted through evenly spaced blocks. A checkpoint
// with one tensor of 72 MB (more than kSampledBlocks blocks) and a limit of 1 KB: a change
// inside a block is seen, a change only in bytes between blocks is knowingly missed, and the
// whole-file mode sees both.
TEST(ResumeIdentity, LargeFilesAreFingerprintedFromSampledBlocks) {
  fixtures::TempDir tmp("fingerprint");
  const fs::path st = tmp.path() / "model.safetensors";
  const uint64_t floats = 18u << 20;
  std::string header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(floats) +
                       "],\"data_offsets\":[0," + std::to_string(floats * 4) + "]}}";
  header.resize((header.size() + 7) / 8 * 8, ' ');
  std::string original(8, '\0');
  for (int i = 0; i < 8; ++i) original[i] = static_cast<char>(header.size() >> (8 * i) & 0xff);
  original += header;
  const uint64_t start = original.size();
  original.resize(start + floats * 4, '\0');
  write_text(st, original);
  const std::string sampled = weights_fingerprint(tmp.path(), 1024), whole = weights_fingerprint(tmp.path());
  ASSERT_NE(sampled.find("data=sampled:"), std::string::npos) << sampled;
  EXPECT_EQ(whole.find("sampled:"), std::string::npos) << whole;

  const uint64_t span = floats * 4 - kSampledBlockBytes;
  const uint64_t in_last_block = original.size() - 2;
  const uint64_t between = start + span / (kSampledBlocks - 1) + kSampledBlockBytes + 16;  // after block 0
  ASSERT_LT(between, start + span * 2 / (kSampledBlocks - 1));
  for (const auto& [at, seen_by_sample] : {std::pair{in_last_block, true}, std::pair{between, false}}) {
    std::string bytes = original;
    bytes[at] ^= 0x10;
    write_text(st, bytes);
    EXPECT_EQ(fingerprint_difference(sampled, weights_fingerprint(tmp.path(), 1024)),
              seen_by_sample ? "model.safetensors contents" : "") << "byte " << at;
    EXPECT_EQ(fingerprint_difference(whole, weights_fingerprint(tmp.path())), "model.safetensors contents");
  }
}

TEST(ResumeIdentity, ChangedWeightHeaderIsRefused) {
  ResumeJob job;
  ASSERT_EQ(job.run("").code, 0);
  std::string bytes = read_text(job.model() / "model.safetensors");
  const size_t meta = bytes.find("\"format\":\"pt\"");
  ASSERT_NE(meta, std::string::npos);
  bytes.replace(meta, 13, "\"format\":\"tp\"");
  write_text(job.model() / "model.safetensors", bytes);
  expect_refused(job.run("--resume"), "--resume: the weights differ from the file's (model.safetensors header)");
}

TEST(ResumeIdentity, ChangedModelConfigIsRefused) {
  ResumeJob job;
  ASSERT_EQ(job.run("").code, 0);
  std::ifstream in(job.model() / "config.json");
  auto cfg = nlohmann::json::parse(in);
  cfg["layer_norm_epsilon"] = 1e-3;
  std::ofstream(job.model() / "config.json") << cfg.dump();
  expect_refused(job.run("--resume"), "--resume: the model's config.json differs from the file's");
}

// 6 pairs make 2 work items with 3 or with 4 pairs each: the item counts agree, the items do not.
TEST(ResumeIdentity, ChangedPairsPerItemIsRefused) {
  ResumeJob job;
  ASSERT_EQ(job.run("").code, 0);
  job.write_config(4);
  expect_refused(job.run("--resume"), "--resume: pairs_per_item is 4, the file was laid out with 3");
}

TEST(ResumeIdentity, ResumeWithoutAFileStartsANewRun) {
  ResumeJob job;
  const auto r = fixtures::run_causeway("run " + (job.dir() / "run.toml").string() + " --resume");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("does not exist; starting a new run"), std::string::npos) << r.output;
  {
    H5File f(job.out(), H5Mode::ReadOnly);
    for (uint8_t d : f.read_bytes("/experiments/layers/done")) EXPECT_EQ(d, 1);
  }
  // The new file can itself be resumed.
  EXPECT_EQ(job.run("--resume").code, 0);
}

// Files written before issue 19 hold text attributes as fixed-length strings (causeway now
// writes variable-length UTF-8): --resume reads both, so such a file still resumes, and its
// checks still refuse a changed job.
void make_text_attributes_fixed_length(const fs::path& file, const std::string& object) {
  H5File f(file, H5Mode::ReadWrite);
  std::vector<std::string> names;
  H5Aiterate_by_name(f.id(), object.c_str(), H5_INDEX_NAME, H5_ITER_INC, nullptr,
                     [](hid_t, const char* name, const H5A_info_t*, void* out) -> herr_t {
                       static_cast<std::vector<std::string>*>(out)->push_back(name);
                       return 0;
                     },
                     &names, H5P_DEFAULT);
  int rewritten = 0;
  for (const std::string& key : names) {
    H5Handle a(H5Aopen_by_name(f.id(), object.c_str(), key.c_str(), H5P_DEFAULT, H5P_DEFAULT));
    H5Handle t(H5Aget_type(a.get()));
    if (H5Tget_class(t.get()) != H5T_STRING || H5Tis_variable_str(t.get()) <= 0) continue;
    a.close();
    const std::string value = f.read_string_attribute(object, key);
    ASSERT_GE(H5Adelete_by_name(f.id(), object.c_str(), key.c_str(), H5P_DEFAULT), 0);
    H5Handle fixed(H5Tcopy(H5T_C_S1));
    H5Tset_size(fixed.get(), value.empty() ? 1 : value.size());
    H5Tset_cset(fixed.get(), H5T_CSET_UTF8);
    H5Handle space(H5Screate(H5S_SCALAR));
    H5Handle created(H5Acreate_by_name(f.id(), object.c_str(), key.c_str(), fixed.get(), space.get(),
                                       H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    ASSERT_GE(H5Awrite(created.get(), fixed.get(), value.c_str()), 0) << object << "@" << key;
    ++rewritten;
  }
  EXPECT_GT(rewritten, 0) << object;
  f.close();
}

TEST(ResumeIdentity, AFileWithFixedLengthTextResumes) {
  ResumeJob job;
  ASSERT_EQ(job.run("").code, 0);
  for (const char* object : {"/", "/meta", "/experiments/layers"}) make_text_attributes_fixed_length(job.out(), object);
  {
    H5File f(job.out(), H5Mode::ReadWrite);
    const uint8_t not_done = 0;
    f.write_block("/experiments/layers/done", {0}, {1}, &not_done);
    f.close();
  }
  const auto r = job.run("--resume");
  ASSERT_EQ(r.code, 0) << r.output;
  {
    H5File f(job.out(), H5Mode::ReadOnly);
    for (uint8_t d : f.read_bytes("/experiments/layers/done")) EXPECT_EQ(d, 1);
  }
  make_text_attributes_fixed_length(job.out(), "/meta");
  std::ifstream in(job.model() / "config.json");
  auto cfg = nlohmann::json::parse(in);
  cfg["layer_norm_epsilon"] = 1e-3;
  std::ofstream(job.model() / "config.json") << cfg.dump();
  expect_refused(job.run("--resume"), "--resume: the model's config.json differs from the file's");
}

}  // namespace
}  // namespace causeway
