#include "parallel/exact_sum.h"

#include <vector>

namespace causeway {

void allreduce_sum_exact(const Collectives& group, double* data, int64_t n) {
  std::vector<float> mine(static_cast<size_t>(2 * n));
  for (int64_t i = 0; i < n; ++i) {
    mine[2 * i] = static_cast<float>(data[i]);
    mine[2 * i + 1] = static_cast<float>(data[i] - mine[2 * i]);
  }
  std::vector<float> all(static_cast<size_t>(2 * n * group.size()));
  group.allgather(mine.data(), 2 * n, all.data());
  for (int64_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (int r = 0; r < group.size(); ++r) {
      const float* p = all.data() + (static_cast<int64_t>(r) * n + i) * 2;
      s += static_cast<double>(p[0]) + p[1];
    }
    data[i] = s;
  }
}

}  // namespace causeway
