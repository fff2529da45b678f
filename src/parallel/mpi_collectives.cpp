// Collectives over MPI. Counts go in pieces below 2^31 elements: MPI counts are int.
#include <algorithm>
#include <climits>
#include <string>

#include "core/error.h"
#include "parallel/collectives.h"

namespace causeway {

namespace {

void check(int status, const char* call) {
  if (status != MPI_SUCCESS) throw Error(std::string("MPI call failed: ") + call);
}

constexpr int64_t kPiece = INT_MAX / 2;

class MpiCollectives final : public Collectives {
 public:
  explicit MpiCollectives(MPI_Comm comm) : comm_(comm) {
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allreduce_sum(float* data, int64_t n) const override { allreduce(data, n, MPI_SUM); }
  void allreduce_max(float* data, int64_t n) const override { allreduce(data, n, MPI_MAX); }
  void allreduce_sum(double* data, int64_t n) const override {
    for (int64_t at = 0; at < n; at += kPiece)
      check(MPI_Allreduce(MPI_IN_PLACE, data + at, static_cast<int>(std::min(kPiece, n - at)),
                          MPI_DOUBLE, MPI_SUM, comm_),
            "MPI_Allreduce");
  }

  void allgather(const float* send, int64_t n, float* recv) const override {
    if (n <= kPiece) {
      check(MPI_Allgather(send, static_cast<int>(n), MPI_FLOAT, recv, static_cast<int>(n),
                          MPI_FLOAT, comm_),
            "MPI_Allgather");
      return;
    }
    // Large buffers: every rank's block broadcast from its owner.
    for (int r = 0; r < size_; ++r) {
      float* block = recv + r * n;
      if (r == rank_) std::copy(send, send + n, block);
      broadcast(block, n, r);
    }
  }

  void broadcast(float* data, int64_t n, int root) const override {
    for (int64_t at = 0; at < n; at += kPiece)
      check(MPI_Bcast(data + at, static_cast<int>(std::min(kPiece, n - at)), MPI_FLOAT, root,
                      comm_),
            "MPI_Bcast");
  }

 private:
  void allreduce(float* data, int64_t n, MPI_Op op) const {
    for (int64_t at = 0; at < n; at += kPiece)
      check(MPI_Allreduce(MPI_IN_PLACE, data + at, static_cast<int>(std::min(kPiece, n - at)),
                          MPI_FLOAT, op, comm_),
            "MPI_Allreduce");
  }
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Collectives> make_mpi_collectives(MPI_Comm comm) {
  return std::make_unique<MpiCollectives>(comm);
}

}  // namespace causeway
