#include "patching/logit_lens.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "backend/ops_linear.h"
#include "core/error.h"

namespace causeway {

SweepGrid logit_lens_grid(const ReadoutRequest& r, const ModelConfig& cfg, const PairDataset& data,
                          const std::string& file, const std::string& field) {
  GridAxis lead{"resid", cfg.n_layer + 1, {}};
  std::vector<PatchCell> cells;
  for (int L = 0; L < cfg.n_layer; ++L) {
    lead.labels.push_back(std::to_string(L) + "_pre");
    cells.push_back({HookKind::ResidPre, L});
  }
  lead.labels.push_back("final_post");
  cells.push_back({HookKind::ResidPost, cfg.n_layer - 1});
  return over_positions(lead, cells, r.spec, cfg, data, file, field);
}

std::unique_ptr<SweepEngine> make_logit_lens(TransformerModel& model, const PairDataset& data,
                                             const ReadoutRequest& r) {
  const ModelConfig& cfg = model.config();
  // The residual stream is whole on every rank: no sum over a tensor-parallel replica.
  CellReader read = [&cfg](const RunReadout& run, const PatchCell&, int row, int, const float* x) {
    const AnswerDirection& d = run.direction(row);
    double s = 0.0;
    for (int i = 0; i < cfg.n_embd; ++i) s += static_cast<double>(x[i]) * d.v[i];
    return s / final_norm_scale(cfg, x) + d.bias;
  };
  return std::make_unique<ReadoutRunner>(model, data, logit_lens_grid(r, cfg, data), std::move(read),
                                         r.corrupted, false);
}

LensTopTokens logit_lens_top_tokens(TransformerModel& model, const PairDataset& data, const ReadoutRequest& r) {
  const ModelConfig& cfg = model.config();
  if (model.shard().sharded())
    throw InputError("experiment", "top_k", "the lens's top tokens need whole vocabulary rows; run with tp = 1");
  const SweepGrid grid = logit_lens_grid(r, cfg, data);
  const PairPositions positions(grid, data);
  const int P = static_cast<int>(data.pairs.size()), K = std::min(r.top_k, cfg.vocab_size), C = cfg.n_embd;
  const int64_t n = static_cast<int64_t>(grid.cells.size());
  LensTopTokens out;
  out.shape.push_back(P);
  for (const GridAxis& a : grid.axes) out.shape.push_back(a.size);
  out.shape.push_back(K);
  out.ids.assign(static_cast<size_t>(P) * n * K, -1);
  out.logits.assign(out.ids.size(), std::numeric_limits<float>::quiet_NaN());
  const ModelWeights& W = model.weights();
  std::vector<float> y(C), logits(cfg.vocab_size);
  std::vector<int32_t> order(cfg.vocab_size);
  for (int b = 0; b < P; b += r.pairs_per_block) {
    const int e = std::min(P, b + r.pairs_per_block);
    std::vector<std::vector<int32_t>> rows;
    std::vector<int> read;
    std::vector<const PromptPair*> pairs;
    for (int i = b; i < e; ++i) {
      rows.push_back(r.corrupted ? data.pairs[i].corrupted : data.pairs[i].clean);
      read.push_back(read_position(data.pairs[i]));
      pairs.push_back(&data.pairs[i]);
    }
    RunReadout run;
    run.build(model, TokenBatch::padded(rows), read, pairs, {HookKind::ResidPre, HookKind::ResidPost});
    for (int p = b; p < e; ++p)
      for (int64_t c = 0; c < n; ++c) {
        const PatchCell cell = positions.in_pair(grid.cells[c], p);
        if (cell.pos >= static_cast<int>(data.pairs[p].clean.size())) continue;
        const int t = cell.pos >= 0 ? cell.pos : read[p - b];
        const float* x = run.row({cell.kind, cell.layer}, p - b) + static_cast<int64_t>(t) * C;
        double mean = 0.0;
        if (cfg.norm == NormKind::LayerNorm) mean = std::accumulate(x, x + C, 0.0) / C;
        const double s = final_norm_scale(cfg, x);
        for (int i = 0; i < C; ++i)
          y[i] = static_cast<float>((x[i] - mean) / s * W.ln_final_w.data[i] + (W.ln_final_b.data ? W.ln_final_b.data[i] : 0.0f));
        cpu::linear_forward(logits.data(), y.data(), W.W_U.matrix(), nullptr, 1);
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + K, order.end(),
                          [&](int32_t a, int32_t z) { return logits[a] > logits[z] || (logits[a] == logits[z] && a < z); });
        for (int k = 0; k < K; ++k) {
          out.ids[(p * n + c) * K + k] = order[k];
          out.logits[(p * n + c) * K + k] = logits[order[k]];
        }
      }
  }
  return out;
}

}  // namespace causeway
