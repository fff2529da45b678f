#include "cli/launch_rank.h"

#include <cstdlib>
#include <initializer_list>

namespace causeway::cli {

int launch_rank() {
  // Open MPI, PMIx (Open MPI 5, Slurm), MPICH / Intel MPI (PMI), Slurm's srun.
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"})
    if (const char* v = std::getenv(name); v && *v) return std::atoi(v);
  return 0;
}

}  // namespace causeway::cli
