// The [[circuit]] tables of a run, once every experiment's items are done: each circuit is
// found (ACDC, or the top edges of an edge experiment's mean), its faithfulness curve measured
// over a doubling number of kept edges, and everything written to /circuits/<name>. A circuit
// marked complete in the file (after --resume) is kept as it is.
#pragma once

#include <string>
#include <vector>

#include "cli/run_config.h"
#include "io/result_store.h"
#include "model/transformer_model.h"

namespace causeway {

// Returns one summary line per circuit. Rank 0 only (the file is open serially).
std::vector<std::string> write_circuits(TransformerModel& model, const PairDataset& data,
                                        const RunConfig& cfg, ResultStore& store, bool progress);

}  // namespace causeway
