// MPI for the rest of causeway: the process-wide session and a communicator with the few
// collectives a batch job needs. Later a NCCL communicator for tensor parallel shares the
// reduction calls.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace causeway {

// Initializes MPI once per process (threads funnelled: OpenMP runs inside a rank, only the
// main thread calls MPI) and finalizes it at exit. Also works for a program started
// without mpirun (a singleton world of one rank).
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
};

class Communicator {
 public:
  explicit Communicator(MPI_Comm comm = MPI_COMM_WORLD);
  MPI_Comm comm() const { return comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }

  void barrier() const;
  double sum(double value) const;
  int64_t sum(int64_t value) const;
  double max(double value) const;
  // Rank `root`'s bytes on every rank.
  void broadcast(std::vector<uint8_t>& bytes, int root = 0) const;
  void broadcast(std::string& text, int root = 0) const;
  // Ends every rank of the job (a rank that failed alone cannot wait for a collective).
  [[noreturn]] void abort(int code) const;

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

}  // namespace causeway
