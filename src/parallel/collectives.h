// The collectives one tensor-parallel replica runs inside a forward pass, over float buffers:
// the interface the model calls, so that MPI serves it on CPU ranks and NCCL on GPUs. Every
// rank of the group calls each collective in the same order with the same n.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <memory>

namespace causeway {

class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // data (n) = elementwise sum / max over the group, in place.
  virtual void allreduce_sum(float* data, int64_t n) const = 0;
  virtual void allreduce_max(float* data, int64_t n) const = 0;
  // Sums of estimates accumulated in double (attribution per cell), which float would round.
  virtual void allreduce_sum(double* data, int64_t n) const = 0;
  // recv (size() * n) = every rank's send (n), in rank order.
  virtual void allgather(const float* send, int64_t n, float* recv) const = 0;
  // data (n) = rank root's data.
  virtual void broadcast(float* data, int64_t n, int root) const = 0;
};

// Collectives over an MPI communicator (the tensor-parallel group of a Topology).
std::unique_ptr<Collectives> make_mpi_collectives(MPI_Comm comm);

}  // namespace causeway
