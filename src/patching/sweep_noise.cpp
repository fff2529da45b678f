#include "patching/sweep_noise.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/ops_linear.h"
#include "model/transformer_model.h"

namespace causeway {

double embedding_noise_std(const TransformerModel& model) {
  // The table may be held as bf16/f16 words (Weight::data null): widen it a tile at a time.
  const WeightMatrix W = model.weights().W_E.matrix();
  const int64_t n = W.in * W.out;
  const size_t word = W.dtype == DType::F32 ? sizeof(float) : sizeof(uint16_t);
  constexpr int64_t kTile = 4096;
  std::vector<float> tile(kTile);
  double sum = 0.0, sq = 0.0;
  for (int64_t i = 0; i < n; i += kTile) {
    const int64_t m = std::min(kTile, n - i);
    cpu::widen_to_f32(tile.data(), static_cast<const char*>(W.data) + i * word, W.dtype, m);
    for (int64_t j = 0; j < m; ++j) sum += tile[j], sq += static_cast<double>(tile[j]) * tile[j];
  }
  const double mu = sum / n;
  return std::abs(static_cast<double>(model.config().embedding_scale)) *
         std::sqrt(std::max(0.0, sq / n - mu * mu));
}

}  // namespace causeway
