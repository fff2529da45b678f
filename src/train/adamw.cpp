#include "train/adamw.h"

#include <cmath>
#include <stdexcept>

namespace causeway::train {

AdamW::AdamW(const Arena& params, const AdamWOptions& options, std::vector<bool> decay)
    : o_(options), decay_(std::move(decay)) {
  const size_t n = params.specs().size();
  if (decay_.size() != n) throw std::invalid_argument("AdamW: one decay flag per tensor");
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    offset_.push_back(total);
    total += static_cast<size_t>(params.at(i).numel());
  }
  m_.assign(total, 0.0f);
  v_.assign(total, 0.0f);
}

std::vector<bool> AdamW::decay_all(const Arena& params) {
  return std::vector<bool>(params.specs().size(), true);
}

std::vector<bool> AdamW::decay_matrices(const Arena& params) {
  std::vector<bool> d;
  for (const TensorSpec& s : params.specs()) d.push_back(s.shape.rank >= 2);
  return d;
}

void AdamW::step(const Arena& params, const Arena& grads, double lr) {
  if (grads.specs().size() != offset_.size() || params.specs().size() != offset_.size())
    throw std::invalid_argument("AdamW::step: parameters and gradients differ from the table");
  ++t_;
  // In float like torch's single-tensor path; the scalars are computed in double first.
  const float b1 = static_cast<float>(o_.beta1), b2 = static_cast<float>(o_.beta2);
  const double bc1 = 1.0 - std::pow(o_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(o_.beta2, static_cast<double>(t_));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float eps = static_cast<float>(o_.eps);
  for (size_t i = 0; i < offset_.size(); ++i) {
    const Tensor p = params.at(i), g = grads.at(i);
    if (p.numel() != g.numel()) throw std::invalid_argument("AdamW::step: tensor sizes differ");
    const float keep = decay_[i] ? static_cast<float>(1.0 - lr * o_.weight_decay) : 1.0f;
    float* m = m_.data() + offset_[i];
    float* v = v_.data() + offset_[i];
    const int64_t n = p.numel();
#pragma omp parallel for simd schedule(static)
    for (int64_t j = 0; j < n; ++j) {
      const float gj = g.data[j];
      float pj = p.data[j] * keep;
      m[j] += (1.0f - b1) * (gj - m[j]);  // torch: exp_avg.lerp_(grad, 1 - beta1)
      v[j] = v[j] * b2 + (1.0f - b2) * gj * gj;
      const float denom = std::sqrt(v[j]) / bc2_sqrt + eps;
      pj -= step_size * (m[j] / denom);  // torch: addcdiv_(exp_avg, denom, -step_size)
      p.data[j] = pj;
    }
  }
}

double grad_norm(const Arena& grads) {
  double sum = 0.0;
  for (size_t i = 0; i < grads.specs().size(); ++i) {
    const Tensor g = grads.at(i);
    for (int64_t j = 0; j < g.numel(); ++j) sum += static_cast<double>(g.data[j]) * g.data[j];
  }
  return std::sqrt(sum);
}

double clip_grad_norm(const Arena& grads, double max_norm) {
  const double norm = grad_norm(grads);
  if (max_norm > 0 && norm > max_norm) {
    // torch: clip_coef = max_norm / (total_norm + 1e-6)
    const float scale = static_cast<float>(max_norm / (norm + 1e-6));
    for (size_t i = 0; i < grads.specs().size(); ++i) {
      const Tensor g = grads.at(i);
      for (int64_t j = 0; j < g.numel(); ++j) g.data[j] *= scale;
    }
  }
  return norm;
}

}  // namespace causeway::train
