// A batch of token sequences, right-padded to a common length T. Under causal attention the
// padding never reaches a valid position, so per-sequence results are exact.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace causeway {

struct TokenBatch {
  std::vector<int32_t> ids;   // (B, T) row-major
  std::vector<int> lengths;   // (B) valid positions of each row
  int B = 0, T = 0;

  static TokenBatch single(const std::vector<int32_t>& tokens);
  static TokenBatch padded(const std::vector<std::vector<int32_t>>& rows, int32_t pad_id = 0);
  int32_t at(int b, int t) const { return ids[static_cast<size_t>(b) * T + t]; }
};

}  // namespace causeway
