// Seeded normal samples for the op tests: the same numbers on every machine and every run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace causeway::fixtures {

inline std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

}  // namespace causeway::fixtures
