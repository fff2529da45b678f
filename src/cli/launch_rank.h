// The rank a launcher (mpirun, mpiexec, srun) gave this process, read from the variables the
// launcher sets, before MPI starts: a bad command line, which every rank sees alike, is then
// reported by rank 0 alone. 0 when the process was not launched as one of several.
#pragma once

namespace causeway::cli {

int launch_rank();

}  // namespace causeway::cli
