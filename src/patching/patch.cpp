#include "patching/patch.h"

#include <cstring>
#include <stdexcept>

#include "model/model_config.h"

namespace causeway {

namespace {

// Copies (or zeroes) `n` floats.
void put(float* dst, const float* src, int64_t n) {
  if (src) std::memcpy(dst, src, sizeof(float) * n);
  else std::memset(dst, 0, sizeof(float) * n);
}

const float* at(const float* p, int64_t off) { return p ? p + off : nullptr; }

}  // namespace

int64_t hook_row_size(HookKind kind, const ModelConfig& cfg, int Tq, int T) {
  const HookGeometry g = hook_geometry(kind, cfg);
  return g.head_major ? g.heads * Tq * T : Tq * g.heads * g.width;
}

int first_affected_position(const PatchCell& c) { return c.pos < 0 ? 0 : c.pos; }

std::optional<PatchCell> local_cell(const PatchCell& cell, const TensorShard& shard,
                                    const ModelConfig& cfg) {
  const ShardAxis axis = shard_axis(cell.kind, cfg);
  if (axis == ShardAxis::None || !shard.sharded()) return cell;
  PatchCell c = cell;
  int& index = axis == ShardAxis::MlpUnits ? c.neuron : c.head;
  if (index < 0) return c;
  const ShardBlock block = shard_block(shard, axis, cfg);
  if (!block.holds(index)) return std::nullopt;
  index -= block.begin;
  return c;
}

namespace {

// The contiguous runs of one sequence's hook value that cell `c` covers, as (offset, length)
// in a value of Tq rows starting at position rb (rb = 0, Tq = T: a whole cached run). Head-major
// hooks (scores, patterns) are [heads, Tq, T]; the rest [Tq, heads, width], where `head`
// picks a head and `neuron` one element of the width.
template <typename Fn>
void for_each_run(const PatchCell& c, const ModelConfig& cfg, int T, int rb, Fn&& fn) {
  const HookGeometry g = hook_geometry(c.kind, cfg);
  // A head the hook does not have (attn_head_every's k/v past the key/value heads): nothing.
  if (c.head >= g.heads) return;
  const int Tq = T - rb;
  const int t0 = c.pos < 0 ? rb : c.pos, t1 = c.pos < 0 ? T : c.pos + 1;
  if (g.head_major) {
    const int64_t h0 = c.head < 0 ? 0 : c.head, h1 = c.head < 0 ? g.heads : c.head + 1;
    for (int64_t h = h0; h < h1; ++h)
      for (int t = t0; t < t1; ++t) {
        const int64_t row = (h * Tq + (t - rb)) * T;
        if (c.src < 0) fn(row, int64_t{T}, t, h);
        else fn(row + c.src, int64_t{1}, t, h);
      }
    return;
  }
  for (int t = t0; t < t1; ++t) {
    const int64_t row = static_cast<int64_t>(t - rb) * g.heads * g.width;
    if (c.head >= 0) fn(row + c.head * g.width, g.width, t, int64_t{c.head});
    else if (c.neuron >= 0) fn(row + c.neuron, int64_t{1}, t, int64_t{0});
    else fn(row, g.heads * g.width, t, int64_t{0});
  }
}

}  // namespace

void apply_patch(const PatchCell& c, const float* src, float* dst, const ModelConfig& cfg, int T,
                 int rb) {
  if ((c.pos < 0 ? rb : c.pos) < rb)
    throw std::logic_error("apply_patch: patch before the recomputed rows");
  const HookGeometry g = hook_geometry(c.kind, cfg);
  // The source is a whole run (rows from position 0): its offset of (t, h) differs from the
  // destination's by rb rows.
  const int64_t shift = g.head_major ? 0 : static_cast<int64_t>(rb) * g.heads * g.width;
  for_each_run(c, cfg, T, rb, [&](int64_t off, int64_t n, int t, int64_t h) {
    int64_t s = off + shift;
    if (g.head_major) s = off + (h * T + t) * T - (h * (T - rb) + (t - rb)) * T;
    put(dst + off, at(src, s), n);
  });
}

double slice_sum(const PatchCell& c, const float* x, const ModelConfig& cfg, int T) {
  double total = 0.0;
  for_each_run(c, cfg, T, 0, [&](int64_t off, int64_t n, int, int64_t) {
    for (int64_t i = 0; i < n; ++i) total += x[off + i];
  });
  return total;
}

}  // namespace causeway
