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
  const int64_t C = cfg.n_embd, NH = cfg.n_head, M = cfg.n_inner;
  switch (kind) {
    case HookKind::Q:
    case HookKind::K:
    case HookKind::V:
    case HookKind::Z: return Tq * C;
    case HookKind::AttnScores:
    case HookKind::Pattern: return NH * Tq * T;
    case HookKind::Result: return Tq * NH * C;
    case HookKind::MlpPre:
    case HookKind::MlpPost: return Tq * M;
    case HookKind::Ln1Scale:
    case HookKind::Ln2Scale:
    case HookKind::LnFinalScale: return Tq;
    default: return Tq * C;
  }
}

int first_affected_position(const PatchCell& c) { return c.pos < 0 ? 0 : c.pos; }

void apply_patch(const PatchCell& c, const float* src, float* dst, const ModelConfig& cfg, int T,
                 int rb) {
  const int Tq = T - rb;
  const int64_t C = cfg.n_embd, NH = cfg.n_head, HS = cfg.d_head(), M = cfg.n_inner;
  // Positions patched, in source coordinates; the destination index is t - rb.
  const int t0 = c.pos < 0 ? rb : c.pos, t1 = c.pos < 0 ? T : c.pos + 1;
  if (t0 < rb) throw std::logic_error("apply_patch: patch before the recomputed rows");
  switch (c.kind) {
    case HookKind::Q:
    case HookKind::K:
    case HookKind::V:
    case HookKind::Z:
      for (int t = t0; t < t1; ++t) {
        const int64_t s = (static_cast<int64_t>(t) * NH + (c.head < 0 ? 0 : c.head)) * HS;
        const int64_t d = (static_cast<int64_t>(t - rb) * NH + (c.head < 0 ? 0 : c.head)) * HS;
        put(dst + d, at(src, s), c.head < 0 ? C : HS);
      }
      return;
    case HookKind::AttnScores:
    case HookKind::Pattern: {
      const int h0 = c.head < 0 ? 0 : c.head, h1 = c.head < 0 ? static_cast<int>(NH) : c.head + 1;
      for (int h = h0; h < h1; ++h)
        for (int t = t0; t < t1; ++t) {
          const int64_t s = (static_cast<int64_t>(h) * T + t) * T;
          const int64_t d = (static_cast<int64_t>(h) * Tq + (t - rb)) * T;
          if (c.src < 0) put(dst + d, at(src, s), T);
          else put(dst + d + c.src, at(src, s + c.src), 1);
        }
      return;
    }
    case HookKind::Result:
      for (int t = t0; t < t1; ++t) {
        const int64_t s = (static_cast<int64_t>(t) * NH + (c.head < 0 ? 0 : c.head)) * C;
        const int64_t d = (static_cast<int64_t>(t - rb) * NH + (c.head < 0 ? 0 : c.head)) * C;
        put(dst + d, at(src, s), c.head < 0 ? NH * C : C);
      }
      return;
    case HookKind::MlpPre:
    case HookKind::MlpPost:
      for (int t = t0; t < t1; ++t) {
        const int64_t s = static_cast<int64_t>(t) * M + (c.neuron < 0 ? 0 : c.neuron);
        const int64_t d = static_cast<int64_t>(t - rb) * M + (c.neuron < 0 ? 0 : c.neuron);
        put(dst + d, at(src, s), c.neuron < 0 ? M : 1);
      }
      return;
    case HookKind::Ln1Scale:
    case HookKind::Ln2Scale:
    case HookKind::LnFinalScale:
      for (int t = t0; t < t1; ++t) put(dst + (t - rb), at(src, t), 1);
      return;
    default:  // residual-stream shaped: (T, C)
      for (int t = t0; t < t1; ++t)
        put(dst + static_cast<int64_t>(t - rb) * C, at(src, static_cast<int64_t>(t) * C), C);
      return;
  }
}

double slice_sum(const PatchCell& c, const float* x, const ModelConfig& cfg, int T) {
  const int64_t C = cfg.n_embd, NH = cfg.n_head, HS = cfg.d_head(), M = cfg.n_inner;
  const int t0 = c.pos < 0 ? 0 : c.pos, t1 = c.pos < 0 ? T : c.pos + 1;
  auto sum = [](const float* p, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += p[i];
    return s;
  };
  double total = 0.0;
  switch (c.kind) {
    case HookKind::Q:
    case HookKind::K:
    case HookKind::V:
    case HookKind::Z:
      for (int t = t0; t < t1; ++t)
        total += sum(x + (static_cast<int64_t>(t) * NH + (c.head < 0 ? 0 : c.head)) * HS,
                     c.head < 0 ? C : HS);
      return total;
    case HookKind::AttnScores:
    case HookKind::Pattern: {
      const int h0 = c.head < 0 ? 0 : c.head, h1 = c.head < 0 ? static_cast<int>(NH) : c.head + 1;
      for (int h = h0; h < h1; ++h)
        for (int t = t0; t < t1; ++t) {
          const float* row = x + (static_cast<int64_t>(h) * T + t) * T;
          total += c.src < 0 ? sum(row, T) : row[c.src];
        }
      return total;
    }
    case HookKind::Result:
      for (int t = t0; t < t1; ++t)
        total += sum(x + (static_cast<int64_t>(t) * NH + (c.head < 0 ? 0 : c.head)) * C,
                     c.head < 0 ? NH * C : C);
      return total;
    case HookKind::MlpPre:
    case HookKind::MlpPost:
      for (int t = t0; t < t1; ++t)
        total += sum(x + static_cast<int64_t>(t) * M + (c.neuron < 0 ? 0 : c.neuron), c.neuron < 0 ? M : 1);
      return total;
    case HookKind::Ln1Scale:
    case HookKind::Ln2Scale:
    case HookKind::LnFinalScale:
      for (int t = t0; t < t1; ++t) total += x[t];
      return total;
    default:
      for (int t = t0; t < t1; ++t) total += sum(x + static_cast<int64_t>(t) * C, C);
      return total;
  }
}

}  // namespace causeway
