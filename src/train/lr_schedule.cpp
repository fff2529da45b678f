#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace causeway::train {

double LrSchedule::at(int step) const {
  if (step < warmup) return peak * (step + 1) / warmup;
  if (kind == Kind::Constant) return peak;
  const int decay_steps = std::max(1, total - warmup - 1);
  const double progress = std::clamp(static_cast<double>(step - warmup) / decay_steps, 0.0, 1.0);
  const double cosine = 0.5 * (1.0 + std::cos(3.14159265358979323846 * progress));
  return peak * (min_ratio + (1.0 - min_ratio) * cosine);
}

}  // namespace causeway::train
