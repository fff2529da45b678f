// The [[circuit]] tables of a run, once every experiment's items are done: each circuit is
// found (ACDC, or the top edges of an edge experiment's mean), its faithfulness curve measured
// over a doubling number of kept edges, and everything written to /circuits/<name>.
//
// Each circuit is computed with the result file closed, then written in one open and close that
// ends with its `complete` attribute set to 1, so a job stopped (SIGTERM) or killed in the step
// keeps every circuit it finished: --resume keeps those and redoes the others. A new file lays
// out every circuit's group with complete = 0, so the file itself says which are missing.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "cli/run_config.h"
#include "io/hdf5_file.h"
#include "model/transformer_model.h"
#include "parallel/communicator.h"
#include "parallel/job_stop.h"

namespace causeway {

// How far the step got: what the summary and an interrupt message say.
struct CircuitStep {
  std::vector<std::string> lines;  // one summary line per circuit done (or kept)
  int complete = 0;                // circuits complete in the file
  std::string current;             // the circuit being computed; empty between circuits
};

// Every [[circuit]]'s group in a new file, marked complete = 0.
void lay_out_circuits(H5File& f, const RunConfig& cfg);

// Every rank of `world`, with `file` closed (tp = 1: each rank is a replica). Each circuit's
// edge-patched rows are split over the ranks and reduced exactly (CircuitRuns::set_group), so
// the circuit is the same on any number of ranks; rank 0 alone reads and writes the file, each
// step through together(), so a failure or signal on any rank ends every rank there.
// `check` runs on every rank before every round of batches and throws Interrupted to stop the
// step; the ranks agree at each round, so all stop at the same one. A stopped ACDC search
// writes its state (the receiver it was on, the edges removed so far, the scores) to its
// group, and --resume continues from it to the same circuit; another stopped circuit is redone.
// A circuit whose clean and all-ablated metrics agree within rounding has no `recovered`:
// refused (InputError), or stored as NaN under allow_nonfinite.
void write_circuits(TransformerModel& model, const PairDataset& data, const RunConfig& cfg,
                    const std::filesystem::path& file, bool progress,
                    const std::function<void()>& check, CircuitStep& step, JobStop& stop,
                    const Communicator& world);

}  // namespace causeway
