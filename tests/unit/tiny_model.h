// The committed tiny random GPT-2 (tests/data/tiny-gpt2) and its golden prompt pairs, loaded
// once per test binary: the model-level tests share them.
#pragma once

#include <filesystem>

#include "data/prompt_pairs.h"
#include "model/transformer_model.h"

namespace causeway::fixtures {

inline const std::filesystem::path kDataDir = std::filesystem::path(CAUSEWAY_SOURCE_DIR) / "tests/data";

inline TransformerModel& tiny_model() {
  static TransformerModel model = TransformerModel::load(kDataDir / "tiny-gpt2");
  return model;
}

inline const PairDataset& golden_pairs() {
  static const PairDataset pairs = load_pairs_jsonl(kDataDir / "tiny-gpt2-patching-pairs.jsonl", nullptr);
  return pairs;
}

}  // namespace causeway::fixtures
