// `causeway run CONFIG --dry-run [--ranks N --tp T]`: what a job would cost before it runs,
// from config.json, the run config and the pairs (of the weights only the safetensors
// headers, for their shapes and stored dtype; no tensor data is read), so a 70B job
// can be sized on a laptop: grid sizes, work items per replica, memory per rank (weight
// shard, forward workspace, run caches, runtime) and the FLOPs of the job.
#pragma once

#include <cstdint>
#include <cstdio>
#include <vector>

#include "cli/run_config.h"
#include "model/model_config.h"
#include "patching/sweep_grid.h"

namespace causeway::cli {

struct DryRunJob {
  const RunConfig* cfg = nullptr;
  const ModelConfig* model = nullptr;
  int pairs = 0;
  int T = 0;                       // the longest prompt
  std::vector<SweepGrid> grids;    // one per experiment, in config order
  int64_t work_items = 0;
  std::vector<int64_t> items_of;   // work items per experiment; activation items follow them
  int ranks = 1, tp = 1;
};

// Memory of one rank, in bytes, and the job's floating-point operations (upper bounds: prefix
// reuse and cone restriction recompute fewer rows).
struct JobSizing {
  int64_t weights = 0, workspace = 0, caches = 0, runtime = 0;
  double flops = 0.0;
  // The busiest rank's share under static contiguous shares of the items (a dynamic schedule
  // balances at least as well), and the ranks whose replica gets no item at all.
  double busiest_rank_flops = 0.0;
  int idle_ranks = 0;
  int64_t per_rank() const { return weights + workspace + caches + runtime; }
};

JobSizing size_job(const DryRunJob& job);
void print_dry_run(const DryRunJob& job, std::FILE* out);

}  // namespace causeway::cli
