#include "train/init.h"

#include <cmath>
#include <string_view>

#include "train/rng.h"

namespace causeway::train {

void init_gpt2(ModelWeights& w, const ModelConfig& cfg, uint64_t seed, double std) {
  Rng rng(seed);
  const double residual_std = std / std::sqrt(2.0 * cfg.n_layer);
  const Arena& a = w.arena();
  for (size_t i = 0; i < a.specs().size(); ++i) {
    const std::string_view name = a.specs()[i].name;
    const Tensor t = a.at(i);
    const bool norm = name.find("ln") != std::string_view::npos;  // ln1, ln2, ln_final
    const bool gain = norm && name.ends_with(".w");
    if (t.shape.rank == 1) {
      const float v = gain ? 1.0f : 0.0f;
      for (int64_t j = 0; j < t.numel(); ++j) t.data[j] = v;
      continue;
    }
    const bool residual = name.ends_with("attn.W_O") || name.ends_with("mlp.W_out");
    const double s = residual ? residual_std : std;
    for (int64_t j = 0; j < t.numel(); ++j) t.data[j] = static_cast<float>(s * rng.normal());
  }
}

}  // namespace causeway::train
