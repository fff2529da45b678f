#include "model/stored_dtype.h"

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "model/safetensors.h"

namespace causeway {

const char* weight_dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "f32";
    case DType::BF16: return "bf16";
    case DType::F16: return "f16";
    case DType::I32: return "i32";
  }
  return "?";
}

StoredDtype stored_dtype(const Checkpoint& ckpt) {
  std::set<DType> seen;
  for (const std::string& name : ckpt.names()) {
    const TensorInfo& t = ckpt.info(name);
    if (t.shape.size() >= 2) seen.insert(t.dtype);
  }
  StoredDtype s;
  if (seen.size() == 1) s.dtype = *seen.begin();
  for (DType d : seen) s.text += (s.text.empty() ? "" : " and ") + std::string(weight_dtype_name(d));
  if (s.text.empty()) s.text = "unknown";
  return s;
}

namespace {

// What config.json says the checkpoint was saved in; unknown when it says nothing usable.
StoredDtype claimed_dtype(const std::filesystem::path& config) {
  StoredDtype s{std::nullopt, "unknown"};
  std::ifstream in(config);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return s;
  for (const char* key : {"dtype", "torch_dtype"}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) continue;
    const std::string v = it->get<std::string>();
    if (v == "float32") s.dtype = DType::F32;
    else if (v == "bfloat16") s.dtype = DType::BF16;
    else if (v == "float16") s.dtype = DType::F16;
    else continue;
    s.text = std::string(weight_dtype_name(*s.dtype)) + " (config.json)";
    return s;
  }
  return s;
}

}  // namespace

StoredDtype stored_dtype(const std::filesystem::path& model_dir) {
  if (Checkpoint::present(model_dir)) return stored_dtype(Checkpoint::open(model_dir));
  return claimed_dtype(model_dir / "config.json");
}

std::string weights_dtype_text(const StoredDtype& stored, DType held) {
  return stored.text + ", held as " + weight_dtype_name(held);
}

}  // namespace causeway
