// The prompt pairs the self-repair goldens of a tiny model were made with
// (tests/reference/make_self_repair_goldens.py writes them into <model>-self-repair-goldens.json
// in that model's token ids), for the golden and the invariant tests.
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tiny_model.h"

namespace causeway::fixtures {

inline PairDataset self_repair_golden_pairs(const std::string& model) {
  const nlohmann::json info =
      nlohmann::json::parse(std::ifstream(kDataDir / "self-repair" / (model + "-self-repair-goldens.json")));
  PairDataset d;
  d.source = model + " self-repair goldens";
  int line = 1;
  for (const auto& p : info["pairs"]) {
    PromptPair q;
    q.clean = p["clean"].get<std::vector<int32_t>>();
    q.corrupted = p["corrupted"].get<std::vector<int32_t>>();
    q.answers = {p["answer"].get<int>()};
    q.wrongs = {p["wrong"].get<int>()};
    q.line = line++;
    d.pairs.push_back(q);
  }
  return d;
}

}  // namespace causeway::fixtures
