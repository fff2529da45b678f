// The backward pass against central finite differences of the forward (any hook, any weight)
// and, where tests/reference/make_gradient_goldens.py has written them, PyTorch autograd.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "model/transformer_model.h"
#include "tiny_model.h"

namespace causeway {
namespace {

TransformerModel& tiny() { return fixtures::tiny_model(); }

// Sum over rows of logit[answer] - logit[wrong] at each row's last position.
double metric(const TokenBatch& batch, HookPlan& plan, const std::vector<int>& answer,
              const std::vector<int>& wrong) {
  const Tensor logits = tiny().forward(batch, plan, LogitRows::Last);
  const int V = tiny().config().vocab_size;
  double m = 0.0;
  for (int b = 0; b < batch.B; ++b) m += logits.data[b * V + answer[b]] - logits.data[b * V + wrong[b]];
  return m;
}

struct Fixture {
  TokenBatch batch;
  std::vector<int> answer, wrong;
};

Fixture fixture() {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> tok(0, tiny().config().vocab_size - 1);
  std::vector<std::vector<int32_t>> rows = {std::vector<int32_t>(7), std::vector<int32_t>(5)};
  for (auto& r : rows)
    for (auto& t : r) t = tok(rng);
  Fixture f{TokenBatch::padded(rows), {tok(rng), tok(rng)}, {tok(rng), tok(rng)}};
  return f;
}

// d(metric)/d(final) for the metric above: W_U[answer] - W_U[wrong] at each last position.
std::vector<float> metric_seed(const Fixture& f) {
  const int C = tiny().config().n_embd;
  std::vector<float> d(static_cast<size_t>(f.batch.B) * f.batch.T * C, 0.0f);
  const float* W_U = tiny().weights().W_U.data;
  for (int b = 0; b < f.batch.B; ++b) {
    float* row = d.data() + (static_cast<int64_t>(b) * f.batch.T + f.batch.lengths[b] - 1) * C;
    for (int i = 0; i < C; ++i) row[i] = W_U[f.answer[b] * C + i] - W_U[f.wrong[b] * C + i];
  }
  return d;
}

TEST(Gradients, EveryHookMatchesFiniteDifferences) {
  const Fixture f = fixture();
  const ModelConfig& cfg = tiny().config();
  HookPlan cached(cfg.n_layer);
  tiny().cache_for_backward(cached);
  tiny().forward(f.batch, cached, LogitRows::All);
  BackwardRequest req;
  req.hooks = all_hook_points(cfg);
  const std::vector<float> seed = metric_seed(f);
  ActivationCache grads;
  tiny().backward(f.batch, cached.activations(), seed.data(), req, grads);

  std::mt19937 rng(5);
  int checked = 0;
  for (const HookPoint& p : req.hooks) {
    ASSERT_TRUE(grads.contains(p.name())) << p.name();
    const Tensor& g = grads.at(p);
    // A few elements of each hook, perturbed in place by a callback.
    for (int trial = 0; trial < 6; ++trial) {
      const int64_t i = std::uniform_int_distribution<int64_t>(0, g.numel() - 1)(rng);
      if (g.data[i] == 0.0f) continue;  // masked or padded entries
      // Small steps where the forward is strongly curved (1/scale, softmax).
      const bool curved = p.kind == HookKind::AttnScores || p.kind == HookKind::Pattern ||
                          p.kind == HookKind::Ln1Scale || p.kind == HookKind::Ln2Scale ||
                          p.kind == HookKind::LnFinalScale;
      const float h = curved ? 1e-3f : 1e-2f;
      auto value_with = [&](float delta) {
        HookPlan plan(cfg.n_layer);
        plan.add(p, [&](const HookContext&, Tensor& x) { x.data[i] += delta; });
        return metric(f.batch, plan, f.answer, f.wrong);
      };
      const double fd = (value_with(h) - value_with(-h)) / (2.0 * h);
      EXPECT_NEAR(g.data[i], fd, 2e-2 * std::max(1.0, std::abs(fd))) << p.name() << " element " << i;
      ++checked;
    }
  }
  EXPECT_GT(checked, 100);
}

TEST(Gradients, WeightGradientsMatchFiniteDifferencesOfTheLoss) {
  const Fixture f = fixture();
  std::vector<int32_t> targets(f.batch.ids.size(), -1);
  for (int b = 0; b < f.batch.B; ++b)
    for (int t = 0; t + 1 < f.batch.lengths[b]; ++t)
      targets[b * f.batch.T + t] = f.batch.ids[b * f.batch.T + t + 1];
  ModelWeights grads(tiny().config());
  const double loss = tiny().loss_and_gradients(f.batch, targets, grads);
  EXPECT_GT(loss, 0.0);
  ModelWeights& w = tiny().weights();
  struct Probe {
    Tensor* weight;
    const Tensor* grad;
    const char* name;
  };
  std::vector<Probe> probes = {{&w.W_E, &grads.W_E, "W_E"},
                               {&w.W_pos, &grads.W_pos, "W_pos"},
                               {&w.blocks[0].W_Q, &grads.blocks[0].W_Q, "W_Q"},
                               {&w.blocks[1].W_K, &grads.blocks[1].W_K, "W_K"},
                               {&w.blocks[0].b_V, &grads.blocks[0].b_V, "b_V"},
                               {&w.blocks[1].W_O, &grads.blocks[1].W_O, "W_O"},
                               {&w.blocks[0].W_in, &grads.blocks[0].W_in, "W_in"},
                               {&w.blocks[1].b_out, &grads.blocks[1].b_out, "b_out"},
                               {&w.blocks[0].ln1_w, &grads.blocks[0].ln1_w, "ln1_w"},
                               {&w.ln_final_b, &grads.ln_final_b, "ln_final_b"}};
  std::mt19937 rng(7);
  ModelWeights unused(tiny().config());
  for (const Probe& p : probes) {
    for (int trial = 0; trial < 4; ++trial) {
      // W_E rows of tokens in the batch have gradients; others are zero.
      const int64_t i = p.weight == &w.W_E
                            ? static_cast<int64_t>(f.batch.ids[trial]) * tiny().config().n_embd + trial
                            : std::uniform_int_distribution<int64_t>(0, p.weight->numel() - 1)(rng);
      const float keep = p.weight->data[i], h = 1e-2f;
      p.weight->data[i] = keep + h;
      const double up = tiny().loss_and_gradients(f.batch, targets, unused);
      p.weight->data[i] = keep - h;
      const double down = tiny().loss_and_gradients(f.batch, targets, unused);
      p.weight->data[i] = keep;
      const double fd = (up - down) / (2.0 * h);
      EXPECT_NEAR(p.grad->data[i], fd, 2e-3 + 2e-2 * std::abs(fd)) << p.name << " element " << i;
    }
  }
}

}  // namespace
}  // namespace causeway
