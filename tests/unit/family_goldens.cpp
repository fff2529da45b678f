#include "family_goldens.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include "core/error.h"

namespace causeway::fixtures {

std::filesystem::path families_dir() {
  return std::filesystem::path(CAUSEWAY_SOURCE_DIR) / "tests/data/families";
}

bool family_goldens_present() { return std::filesystem::is_directory(families_dir()); }

std::filesystem::path family_model_dir(const std::string& family) {
  return families_dir() / family;
}

GoldenTensors::GoldenTensors(const std::filesystem::path& path)
    : file_(SafetensorsFile::open(path)) {}

const TensorInfo& GoldenTensors::info(const std::string& key) const {
  const TensorInfo* t = file_.find(key);
  if (!t) throw InputError(file_.path(), key, "missing tensor");
  return *t;
}

std::vector<float> GoldenTensors::floats(const std::string& key) const {
  const TensorInfo& t = info(key);
  std::vector<float> out(static_cast<size_t>(t.numel()));
  if (t.dtype == DType::I32) {
    const auto ids = ints(key);
    std::transform(ids.begin(), ids.end(), out.begin(),
                   [](int64_t v) { return static_cast<float>(v); });
  } else {
    convert_to_f32(t.dtype, file_.data(t), t.numel(), out.data());
  }
  return out;
}

std::vector<int64_t> GoldenTensors::ints(const std::string& key) const {
  const TensorInfo& t = info(key);
  if (t.dtype != DType::I32)
    throw InputError(file_.path(), key,
                     std::string("is ") + dtype_name(t.dtype) + "; expected an I32 tensor");
  std::vector<int32_t> raw(static_cast<size_t>(t.numel()));
  // memcpy: a header length that is not a multiple of 4 leaves the data unaligned.
  std::memcpy(raw.data(), file_.data(t), raw.size() * sizeof(int32_t));
  return {raw.begin(), raw.end()};
}

std::vector<int64_t> GoldenTensors::shape(const std::string& key) const { return info(key).shape; }

std::vector<std::string> GoldenTensors::keys_with_prefix(const std::string& prefix) const {
  std::vector<std::string> keys;
  for (const TensorInfo& t : file_.tensors())
    if (t.name.starts_with(prefix)) keys.push_back(t.name);
  std::sort(keys.begin(), keys.end());
  return keys;
}

namespace {

std::string golden_stem(const std::string& family, const std::string& kind) {
  if (kind.empty()) return family + "-goldens";
  if (kind == "gradient" || kind == "patching") return family + "-" + kind + "-goldens";
  throw InputError(families_dir().string(), "kind",
                   "'" + kind + "' is not a golden kind (\"\", \"gradient\" or \"patching\")");
}

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path.string(), "", "cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw InputError(path.string(), "", e.what());
  }
}

}  // namespace

FamilyGoldens::FamilyGoldens(const std::string& family, const std::string& kind)
    : GoldenTensors(families_dir() / (golden_stem(family, kind) + ".safetensors")),
      family_(family),
      json_(read_json(families_dir() / (golden_stem(family, kind) + ".json"))) {}

GoldenTensors family_weights(const std::string& family) {
  return GoldenTensors(family_model_dir(family) / "model.safetensors");
}

}  // namespace causeway::fixtures
