// Finding NaN and inf: they are errors in weights and results, never values to carry on with.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

namespace causeway {

// Index of the first NaN or inf among x[0..n), or -1 when all are finite.
inline int64_t first_nonfinite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return i;
  return -1;
}

// "nan", "inf" or "-inf".
inline std::string nonfinite_name(double v) { return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

}  // namespace causeway
