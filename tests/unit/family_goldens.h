// The golden files of the tiny model families (tests/data/families, written by
// tests/reference/make_family_goldens.py; keys in tests/reference/FAMILIES.md and PATCHING.md),
// read one way for every test: tensors by key converted to float or int64, their shapes, and
// the JSON written beside them.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/safetensors.h"

namespace causeway::fixtures {

// Every family with committed goldens.
inline constexpr std::array<std::string_view, 7> kFamilies = {
    "llama3", "llama2", "mistral", "qwen2", "qwen3", "gpt_neox", "gemma2"};

// tests/data/families under the source tree (CAUSEWAY_SOURCE_DIR, set by tests/CMakeLists.txt).
std::filesystem::path families_dir();
// False when families_dir() is missing: tests then skip (CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS)
// rather than fail on a checkout made without the data.
bool family_goldens_present();
// The Hugging Face folder of a family: config.json, model.safetensors, tokenizer.json.
std::filesystem::path family_model_dir(const std::string& family);

// Tensors of one .safetensors file by key. Floats come from F32, F16 and BF16 (and I32, exact
// below 2^24); ints only from I32, so an id tensor stored as floats is caught, not rounded.
// F64 and I64 files cannot be read: SafetensorsFile::open rejects those dtypes.
class GoldenTensors {
 public:
  explicit GoldenTensors(const std::filesystem::path& path);

  const std::string& path() const { return file_.path(); }
  bool has(const std::string& key) const { return file_.find(key) != nullptr; }
  std::vector<float> floats(const std::string& key) const;
  std::vector<int64_t> ints(const std::string& key) const;
  std::vector<int64_t> shape(const std::string& key) const;
  // Sorted; every key for an empty prefix.
  std::vector<std::string> keys_with_prefix(const std::string& prefix) const;

 private:
  // InputError naming the file and key when absent.
  const TensorInfo& info(const std::string& key) const;

  SafetensorsFile file_;
};

// One golden set of a family: F-goldens (kind ""), F-gradient-goldens ("gradient") or
// F-patching-goldens ("patching"), the .safetensors and its .json.
class FamilyGoldens : public GoldenTensors {
 public:
  explicit FamilyGoldens(const std::string& family, const std::string& kind = "");

  const std::string& family() const { return family_; }
  const nlohmann::json& json() const { return json_; }

 private:
  std::string family_;
  nlohmann::json json_;
};

// model.safetensors of family_model_dir(family), HF names and layouts.
GoldenTensors family_weights(const std::string& family);

}  // namespace causeway::fixtures

// First statement of a test that reads family goldens: skips, saying where it looked, when the
// data folder is absent. A present folder with a missing file still fails.
#define CAUSEWAY_SKIP_WITHOUT_FAMILY_GOLDENS()                                             \
  if (!::causeway::fixtures::family_goldens_present())                                     \
  GTEST_SKIP() << "family goldens not found at " << ::causeway::fixtures::families_dir()   \
               << " (tests/reference/make_family_goldens.py writes them)"
