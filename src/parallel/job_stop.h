// How the ranks of a batch job stop together. Any rank may fail (an exception) or be
// interrupted (SIGTERM) while the others compute or wait; it raises a job-wide stop flag that
// the others read between pieces of work, and every rank then meets in one agreement that
// picks the outcome and its message, so the job ends within seconds with the message printed
// once. A rank that never arrives (stuck in a collective) cannot be waited for: the failed rank
// prints its message and aborts the job after a grace period.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "parallel/communicator.h"
#include "parallel/scheduler.h"

namespace causeway {

// What one rank (or, after agree(), the whole job) ended with.
struct JobOutcome {
  int code = 0;         // exit code of a failure, 0 when none
  int rank = -1;        // the rank whose failure this is
  int signal = 0;       // the interrupting signal, 0 when none
  std::string message;  // the failure's message
  bool failed() const { return code != 0; }
  bool interrupted() const { return code == 0 && signal != 0; }
  bool ok() const { return code == 0 && signal == 0; }
};

// Thrown on every rank once the ranks agreed that the job ends early.
struct JobFailure {
  JobOutcome outcome;
};

// Thrown by a step of together() that stopped because the job is interrupted: `signal` is the
// one this rank received, or 0 where another rank raised the stop.
struct Interrupted {
  int signal = 0;
};

class JobStop {
 public:
  // Collective over `world`: the flag lives in a one-sided window, the agreement runs on a
  // private copy of the communicator so it never matches another collective.
  explicit JobStop(const Communicator& world, std::chrono::milliseconds grace = std::chrono::seconds(10));
  ~JobStop();
  JobStop(const JobStop&) = delete;
  JobStop& operator=(const JobStop&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }

  // Any rank, any time: tell the others to stop at their next check.
  void raise_failure();
  void raise_interrupt();
  // Whether any rank raised a stop (one-sided read, no other rank takes part).
  bool stop_raised();

  // Collective: every rank brings its own outcome and gets the job's: the lowest failed rank's
  // failure with its message, else an interrupt if any rank brought one, else ok. While it
  // waits it calls `idle` every few milliseconds.
  JobOutcome agree(const JobOutcome& mine, const std::function<void()>& idle = nullptr);
  // Collective: returns once every rank has arrived, calling `idle` every few milliseconds.
  void meet(const std::function<void()>& idle);

  // Ends every rank now (the last resort when some rank cannot reach agree()).
  [[noreturn]] void abort(int code) const;

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  std::chrono::milliseconds grace_;
  std::unique_ptr<SharedCounter> flag_;  // failures add kFailure, interrupts add 1
};

// A failure of this rank from the exception in flight: InputError is bad input (exit 2),
// anything else an internal error (exit 1).
JobOutcome outcome_of_current_exception(int rank);

// Runs `f` on every rank (or on rank 0 only while the others wait); if any rank fails, every
// rank throws JobFailure with the lowest failed rank's outcome, so none is left waiting. `f`
// may throw Interrupted: the job then ends as interrupted. With `signal_seen` (rank0_only), the
// waiting ranks poll it and raise the job-wide stop for a signal it reports, so a long step of
// rank 0 that checks stop_raised() ends as soon as any rank is signalled.
void together(JobStop& stop, bool rank0_only, const std::function<void()>& f,
              const std::function<int()>& signal_seen = nullptr);

}  // namespace causeway
