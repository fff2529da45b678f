#include "model/checkpoint_writer.h"

#include <unistd.h>

#include <fstream>

#include "core/error.h"
#include "model/safetensors.h"

namespace causeway {

namespace {

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) throw InputError(path.string(), "", "cannot write (disk full or no permission?)");
}

std::vector<int64_t> dims(const Tensor& t) {
  return std::vector<int64_t>(t.shape.dims.begin(), t.shape.dims.begin() + t.shape.rank);
}

void write_weights(const std::filesystem::path& path, const ModelConfig& cfg,
                   const ModelWeights& w) {
  const int64_t C = cfg.n_embd;
  // attn.c_attn: (C, 3C), row r = [W_Q row r | W_K row r | W_V row r]; bias the same way.
  std::vector<std::vector<float>> qkv_w(cfg.n_layer), qkv_b(cfg.n_layer);
  std::vector<SafetensorsEntry> e;
  auto add = [&](const std::string& name, const Tensor& t) {
    e.push_back({"transformer." + name, DType::F32, dims(t), t.data});
  };
  add("wte.weight", w.W_E);
  add("wpe.weight", w.W_pos);
  for (int L = 0; L < cfg.n_layer; ++L) {
    const BlockWeights& b = w.blocks[L];
    const std::string h = "h." + std::to_string(L) + ".";
    std::vector<float>& cw = qkv_w[L];
    std::vector<float>& cb = qkv_b[L];
    cw.resize(static_cast<size_t>(C * 3 * C));
    cb.resize(static_cast<size_t>(3 * C));
    const Tensor* Ws[3] = {&b.W_Q, &b.W_K, &b.W_V};
    const Tensor* bs[3] = {&b.b_Q, &b.b_K, &b.b_V};
    for (int i = 0; i < 3; ++i) {
      for (int64_t r = 0; r < C; ++r)
        for (int64_t c = 0; c < C; ++c) cw[r * 3 * C + i * C + c] = Ws[i]->data[r * C + c];
      for (int64_t c = 0; c < C; ++c) cb[i * C + c] = bs[i]->data[c];
    }
    add(h + "ln_1.weight", b.ln1_w);
    add(h + "ln_1.bias", b.ln1_b);
    e.push_back({"transformer." + h + "attn.c_attn.weight", DType::F32, {C, 3 * C}, cw.data()});
    e.push_back({"transformer." + h + "attn.c_attn.bias", DType::F32, {3 * C}, cb.data()});
    add(h + "attn.c_proj.weight", b.W_O);
    add(h + "attn.c_proj.bias", b.b_O);
    add(h + "ln_2.weight", b.ln2_w);
    add(h + "ln_2.bias", b.ln2_b);
    add(h + "mlp.c_fc.weight", b.W_in);
    add(h + "mlp.c_fc.bias", b.b_in);
    add(h + "mlp.c_proj.weight", b.W_out);
    add(h + "mlp.c_proj.bias", b.b_out);
  }
  add("ln_f.weight", w.ln_final_w);
  add("ln_f.bias", w.ln_final_b);
  write_safetensors(path, e, {{"format", "pt"}});
}

}  // namespace

void save_gpt2_checkpoint(const std::filesystem::path& dir, const ModelConfig& cfg,
                          const ModelWeights& weights, const std::vector<CheckpointFile>& files,
                          bool overwrite, const nlohmann::json& extra_config) {
  namespace fs = std::filesystem;
  const bool exists = fs::exists(dir);
  if (exists && !overwrite)
    throw InputError(dir.string(), "", "output folder exists; pass --overwrite to replace it");
  if (exists && (!fs::is_directory(dir) ||
                 (!fs::is_empty(dir) && !fs::exists(dir / "config.json"))))
    throw InputError(dir.string(), "",
                     "exists and is not a model folder (no config.json); refusing to replace it");

  fs::path target = dir;
  if (target.filename().empty()) target = target.parent_path();  // "out/" -> "out"
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw InputError(parent.string(), "", "cannot create the folder: " + ec.message());
  const fs::path tmp = parent / (target.filename().string() + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  if (!fs::create_directory(tmp, ec) || ec)
    throw InputError(tmp.string(), "", "cannot create the folder: " + ec.message());
  try {
    nlohmann::json config = cfg.to_json();
    if (extra_config.is_object())
      for (const auto& [k, v] : extra_config.items()) config[k] = v;
    write_text(tmp / "config.json", config.dump(2) + "\n");
    write_weights(tmp / "model.safetensors", cfg, weights);
    for (const CheckpointFile& f : files) write_text(tmp / f.name, f.contents);
    if (fs::exists(target)) fs::remove_all(target);
    fs::rename(tmp, target);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace causeway
