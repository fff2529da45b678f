// `causeway run CONFIG --dry-run [--ranks N --tp T]`: what a job would cost before it runs,
// from config.json, the run config and the pairs alone (no weights are read), so a 70B job
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
  int ranks = 1, tp = 1;
};

// Memory of one rank, in bytes, and the job's floating-point operations (upper bounds: prefix
// reuse and cone restriction recompute fewer rows).
struct JobSizing {
  int64_t weights = 0, workspace = 0, caches = 0, runtime = 0;
  double flops = 0.0;
  int64_t per_rank() const { return weights + workspace + caches + runtime; }
};

JobSizing size_job(const DryRunJob& job);
void print_dry_run(const DryRunJob& job, std::FILE* out);

}  // namespace causeway::cli
