// Learning rate by step: linear warmup from 0 over `warmup` steps, then either constant or a
// cosine decay to min_ratio * peak at the last step (the GPT-2 / nanoGPT recipe).
#pragma once

namespace causeway::train {

struct LrSchedule {
  enum class Kind { Constant, Cosine };
  Kind kind = Kind::Cosine;
  double peak = 1e-3;
  int warmup = 0;        // steps of linear warmup
  int total = 1;         // steps in the run
  double min_ratio = 0.1;  // cosine: final lr / peak

  // lr for step `step` (0-based): warmup gives peak * (step + 1) / warmup, so step 0 is not 0.
  double at(int step) const;
};

}  // namespace causeway::train
