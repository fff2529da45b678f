#include "model/token_batch.h"

#include <algorithm>
#include <cstddef>

namespace causeway {

TokenBatch TokenBatch::single(const std::vector<int32_t>& tokens) { return padded({tokens}); }

TokenBatch TokenBatch::padded(const std::vector<std::vector<int32_t>>& rows, int32_t pad_id) {
  TokenBatch b;
  b.B = static_cast<int>(rows.size());
  for (const auto& r : rows) b.T = std::max(b.T, static_cast<int>(r.size()));
  b.ids.assign(static_cast<size_t>(b.B) * b.T, pad_id);
  for (int i = 0; i < b.B; ++i) {
    std::copy(rows[i].begin(), rows[i].end(), b.ids.begin() + static_cast<ptrdiff_t>(i) * b.T);
    b.lengths.push_back(static_cast<int>(rows[i].size()));
  }
  return b;
}

}  // namespace causeway
