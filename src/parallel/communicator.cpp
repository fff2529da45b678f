#include "parallel/communicator.h"

#include <algorithm>
#include <cstdlib>

#include "core/error.h"

namespace causeway {

namespace {
void mpi_check(int status, const char* call) {
  if (status != MPI_SUCCESS) throw Error(std::string("MPI call failed: ") + call);
}
}  // namespace

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;
  int provided = 0;
  mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  // Errors come back as codes that causeway turns into exceptions with context.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

Communicator::Communicator(MPI_Comm comm) : comm_(comm) {
  mpi_check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  mpi_check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
}

void Communicator::barrier() const { mpi_check(MPI_Barrier(comm_), "MPI_Barrier"); }

double Communicator::sum(double value) const {
  double out = 0.0;
  mpi_check(MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, MPI_SUM, comm_), "MPI_Allreduce");
  return out;
}

int64_t Communicator::sum(int64_t value) const {
  int64_t out = 0;
  mpi_check(MPI_Allreduce(&value, &out, 1, MPI_INT64_T, MPI_SUM, comm_), "MPI_Allreduce");
  return out;
}

double Communicator::max(double value) const {
  double out = 0.0;
  mpi_check(MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, MPI_MAX, comm_), "MPI_Allreduce");
  return out;
}

void Communicator::broadcast(std::vector<uint8_t>& bytes, int root) const {
  int64_t n = static_cast<int64_t>(bytes.size());
  mpi_check(MPI_Bcast(&n, 1, MPI_INT64_T, root, comm_), "MPI_Bcast");
  bytes.resize(static_cast<size_t>(n));
  // Counts are int in MPI 3: send in pieces so large buffers work.
  constexpr int64_t kPiece = int64_t{1} << 30;
  for (int64_t off = 0; off < n; off += kPiece)
    mpi_check(MPI_Bcast(bytes.data() + off, static_cast<int>(std::min(kPiece, n - off)), MPI_BYTE,
                        root, comm_),
              "MPI_Bcast");
}

void Communicator::broadcast(std::string& text, int root) const {
  std::vector<uint8_t> bytes(text.begin(), text.end());
  broadcast(bytes, root);
  text.assign(bytes.begin(), bytes.end());
}

void Communicator::abort(int code) const {
  MPI_Abort(comm_, code);
  std::_Exit(code);
}

}  // namespace causeway
