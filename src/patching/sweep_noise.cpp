#include "patching/sweep_noise.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/ops_linear.h"
#include "model/transformer_model.h"
#include "parallel/exact_sum.h"

namespace causeway {

double embedding_noise_std(const TransformerModel& model) {
  // The table may be held as bf16/f16 words (Weight::data null): widen it a tile at a time.
  // A tensor-parallel rank holds a block of vocabulary rows (V, C); the last block's padding
  // rows past V are not the model's.
  const WeightMatrix W = model.weights().W_E.matrix();
  const TensorShard& shard = model.shard();
  const int64_t C = model.config().n_embd;
  const int64_t n = shard.sharded()
                        ? C * std::clamp<int64_t>(model.config().vocab_size - shard.vocab_begin, 0,
                                                  shard.vocab_rows)
                        : W.in * W.out;
  const size_t word = W.dtype == DType::F32 ? sizeof(float) : sizeof(uint16_t);
  constexpr int64_t kTile = 4096;
  std::vector<float> tile(kTile);
  double sum = 0.0, sq = 0.0, count = static_cast<double>(n);
  for (int64_t i = 0; i < n; i += kTile) {
    const int64_t m = std::min(kTile, n - i);
    cpu::widen_to_f32(tile.data(), static_cast<const char*>(W.data) + i * word, W.dtype, m);
    for (int64_t j = 0; j < m; ++j) sum += tile[j], sq += static_cast<double>(tile[j]) * tile[j];
  }
  // Each rank holds a block of the vocabulary: the statistic is over every rank's rows, and
  // the same on each (the noise must be).
  if (const Collectives* tp = model.tp(); tp && shard.sharded()) {
    double totals[3] = {sum, sq, count};
    allreduce_sum_exact(*tp, totals, 3);
    sum = totals[0], sq = totals[1], count = totals[2];
  }
  const double mu = sum / count;
  return std::abs(static_cast<double>(model.config().embedding_scale)) *
         std::sqrt(std::max(0.0, sq / count - mu * mu));
}

}  // namespace causeway
