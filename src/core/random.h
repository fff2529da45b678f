// Seeded draws that give the same numbers with every standard library:
// std::uniform_int_distribution's algorithm is implementation-defined, so data sets and
// trained weights made through it would depend on the compiler.
#pragma once

#include <cstdint>
#include <limits>
#include <random>

namespace causeway {

// Uniform in [0, n), n >= 1, by rejection (no modulo bias).
inline uint64_t uniform_below(std::mt19937_64& gen, uint64_t n) {
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  const uint64_t limit = max - max % n;
  uint64_t x;
  do x = gen();
  while (x >= limit);
  return x % n;
}

}  // namespace causeway
