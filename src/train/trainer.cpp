#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "backend/backend.h"
#include "train/init.h"
#include "train/rng.h"

namespace causeway::train {

namespace {

void zero(const Arena& a) {
  for (size_t i = 0; i < a.specs().size(); ++i) {
    const Tensor t = a.at(i);
    std::memset(t.data, 0, t.bytes());
  }
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

TransformerModel make_initialized_model(const ModelConfig& cfg, uint64_t seed, double std) {
  ModelWeights w(cfg);
  init_gpt2(w, cfg, seed, std);
  return TransformerModel(cfg, std::move(w), make_cpu_backend());
}

uint64_t eval_seed(uint64_t data_seed) { return mix_seed(data_seed, ~0ULL); }

TrainResult train(TransformerModel& model, const Task& task, const TrainOptions& o,
                  const std::function<void(const StepLog&)>& on_log) {
  if (o.steps < 1 || o.batch < 1) throw std::invalid_argument("train: steps and batch must be >= 1");
  const ModelConfig& cfg = model.config();
  ModelWeights grads(cfg);
  const Arena& params = model.weights().arena();
  AdamW opt(params, o.adamw,
            o.decay_all ? AdamW::decay_all(params) : AdamW::decay_matrices(params));
  LrSchedule schedule = o.schedule;
  schedule.total = o.steps;

  TrainResult result;
  const double start = now_s();
  double since = start, loss_sum = 0.0;
  int64_t tokens = 0;
  int steps_since = 0;
  for (int step = 0; step < o.steps; ++step) {
    const TrainBatch b = task.batch(mix_seed(o.data_seed, static_cast<uint64_t>(step)), o.batch);
    zero(grads.arena());
    const double loss = model.loss_and_gradients(b.tokens, b.targets, grads);
    if (!std::isfinite(loss))
      throw std::runtime_error("training diverged: loss " + std::to_string(loss) + " at step " +
                               std::to_string(step + 1) + " (lower [train] lr?)");
    const double norm = clip_grad_norm(grads.arena(), o.grad_clip);
    const double lr = schedule.at(step);
    opt.step(params, grads.arena(), lr);
    result.losses.push_back(loss);
    loss_sum += loss;
    ++steps_since;
    for (int len : b.tokens.lengths) tokens += len;
    const bool last = step + 1 == o.steps;
    if (on_log && ((o.log_every > 0 && (step + 1) % o.log_every == 0) || last)) {
      const double t = now_s();
      on_log(StepLog{step + 1, loss_sum / steps_since, lr, norm,
                     tokens / std::max(t - since, 1e-9)});
      since = t;
      loss_sum = 0.0;
      steps_since = 0;
      tokens = 0;
    }
  }
  result.seconds = now_s() - start;
  return result;
}

EvalResult evaluate(TransformerModel& model, const Task& task, uint64_t data_seed, int sequences,
                    int batch) {
  EvalResult r;
  const int V = model.config().vocab_size;
  const uint64_t seed = eval_seed(data_seed);
  for (int done = 0, k = 0; done < sequences; ++k) {
    const int n = std::min(batch, sequences - done);
    const TrainBatch b = task.eval_batch(mix_seed(seed, static_cast<uint64_t>(k)), n);
    const Tensor logits = model.forward(b.tokens, LogitRows::All);
    for (size_t i = 0; i < b.targets.size(); ++i) {
      const int32_t target = b.targets[i];
      if (target < 0) continue;
      const float* row = logits.data + static_cast<int64_t>(i) * V;
      const float* best = std::max_element(row, row + V);
      double sum = 0.0;
      for (int v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v] - *best));
      r.loss += std::log(sum) + *best - row[target];
      r.correct += (best - row) == target;
      ++r.predictions;
      if (b.wrongs[i] >= 0) {
        r.logit_diff += row[target] - row[b.wrongs[i]];
        ++r.logit_diff_count;
      }
    }
    done += n;
    r.sequences = done;
  }
  if (r.predictions) r.loss /= static_cast<double>(r.predictions);
  if (r.logit_diff_count) r.logit_diff /= static_cast<double>(r.logit_diff_count);
  return r;
}

}  // namespace causeway::train
