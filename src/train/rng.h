// Seeded random numbers for training, identical on every compiler and standard library:
// std::mt19937_64 is specified bit for bit, but std::uniform_int_distribution and
// std::normal_distribution are not, so draws are made here from the raw 64-bit stream.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "core/random.h"

namespace causeway::train {

// splitmix64 (Steele et al.): derives independent seeds from (seed, stream) pairs, e.g. one
// stream per training step, so step k's batch does not depend on how many draws earlier
// steps made.
inline uint64_t mix_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}

  uint64_t next() { return gen_(); }
  // Uniform in [0, n), n >= 1, by rejection (no modulo bias).
  uint64_t below(uint64_t n) { return uniform_below(gen_, n); }
  // Uniform in [lo, hi], inclusive.
  int64_t between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
  }
  // Uniform in (0, 1) from the top 53 bits.
  double uniform() { return (static_cast<double>(gen_() >> 11) + 0.5) * 0x1.0p-53; }
  // Standard normal by Box-Muller (both values used).
  double normal() {
    if (have_spare_) {
      have_spare_ = false;
      return spare_;
    }
    const double r = std::sqrt(-2.0 * std::log(uniform()));
    const double a = 2.0 * 3.14159265358979323846 * uniform();
    spare_ = r * std::sin(a);
    have_spare_ = true;
    return r * std::cos(a);
  }

 private:
  std::mt19937_64 gen_;
  double spare_ = 0.0;
  bool have_spare_ = false;
};

}  // namespace causeway::train
