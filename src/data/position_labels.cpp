#include "data/position_labels.h"

#include <algorithm>

#include "core/utf8.h"
#include "model/tokenizer.h"

namespace causeway {

std::vector<std::string> position_labels(const PairDataset& data, const Tokenizer* tok) {
  size_t T = 0;
  for (const PromptPair& p : data.pairs) T = std::max(T, p.clean.size());
  std::vector<std::string> labels;
  labels.reserve(T);
  for (size_t t = 0; t < T; ++t) {
    const int32_t first = data.pairs.front().clean.size() > t ? data.pairs.front().clean[t] : -1;
    const bool shared = tok && first >= 0 &&
                        std::all_of(data.pairs.begin(), data.pairs.end(), [&](const PromptPair& p) {
                          return p.clean.size() > t && p.clean[t] == first;
                        });
    labels.push_back(shared ? escape_invalid_utf8(tok->display_text(first)) : "pos " + std::to_string(t));
  }
  return labels;
}

}  // namespace causeway
