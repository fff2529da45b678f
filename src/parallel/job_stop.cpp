#include "parallel/job_stop.h"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <thread>

#include "core/error.h"

namespace causeway {

namespace {
// Failures and interrupts share one counter: a failure adds this much, an interrupt 1.
constexpr int64_t kFailure = int64_t{1} << 32;
}  // namespace

JobStop::JobStop(const Communicator& world, std::chrono::milliseconds grace) : grace_(grace) {
  if (MPI_Comm_dup(world.comm(), &comm_) != MPI_SUCCESS) throw Error("MPI_Comm_dup failed");
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  flag_ = std::make_unique<SharedCounter>(Communicator(comm_));
}

JobStop::~JobStop() {
  flag_.reset();
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void JobStop::raise_failure() { flag_->fetch_add(kFailure); }
void JobStop::raise_interrupt() { flag_->fetch_add(1); }
bool JobStop::stop_raised() { return flag_->read() != 0; }

JobOutcome JobStop::agree(const JobOutcome& mine, const std::function<void()>& idle) {
  if (mine.failed()) raise_failure();
  // MIN over {failed rank (or size), -signal}: the lowest failed rank and any signal at once.
  int in[2] = {mine.failed() ? rank_ : size_, -mine.signal}, out[2] = {size_, 0};
  MPI_Request req;
  if (MPI_Iallreduce(in, out, 2, MPI_INT, MPI_MIN, comm_, &req) != MPI_SUCCESS) abort(kExitInternalError);
  const auto since = std::chrono::steady_clock::now();
  for (int done = 0;;) {
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (done) break;
    if (idle) idle();
    // This rank failed and some rank has not come within the grace period: it is stuck (in a
    // collective, or a long computation), so the message is printed here and the job ended.
    if (mine.failed() && std::chrono::steady_clock::now() - since > grace_) {
      std::fprintf(stderr, "causeway: error%s: %s\n",
                   size_ > 1 ? (" (rank " + std::to_string(rank_) + ")").c_str() : "",
                   mine.message.c_str());
      std::fflush(stderr);
      abort(mine.code);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  JobOutcome job;
  job.signal = -out[1];
  if (out[0] == size_) return job;
  job.rank = out[0];
  job.code = mine.code;
  job.message = mine.message;
  MPI_Bcast(&job.code, 1, MPI_INT, job.rank, comm_);
  int64_t n = static_cast<int64_t>(job.message.size());
  MPI_Bcast(&n, 1, MPI_INT64_T, job.rank, comm_);
  job.message.resize(static_cast<size_t>(n));
  MPI_Bcast(job.message.data(), static_cast<int>(n), MPI_CHAR, job.rank, comm_);
  return job;
}

void JobStop::meet(const std::function<void()>& idle) {
  MPI_Request req;
  if (MPI_Ibarrier(comm_, &req) != MPI_SUCCESS) abort(kExitInternalError);
  for (int done = 0;;) {
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (done) return;
    if (idle) idle();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void JobStop::abort(int code) const {
  MPI_Abort(comm_ == MPI_COMM_NULL ? MPI_COMM_WORLD : comm_, code);
  std::_Exit(code);
}

JobOutcome outcome_of_current_exception(int rank) {
  JobOutcome o;
  o.rank = rank;
  try {
    throw;
  } catch (const InputError& e) {
    o.code = kExitInputError;
    o.message = e.what();
  } catch (const std::exception& e) {
    o.code = kExitInternalError;
    o.message = std::string("internal error: ") + e.what();
  } catch (...) {
    o.code = kExitInternalError;
    o.message = "internal error: unknown exception";
  }
  return o;
}

void together(JobStop& stop, bool rank0_only, const std::function<void()>& f,
              const std::function<int()>& signal_seen) {
  JobOutcome mine;
  if (!rank0_only || stop.rank() == 0) {
    try {
      f();
    } catch (const Interrupted& i) {
      mine.signal = i.signal;
    } catch (...) {
      mine = outcome_of_current_exception(stop.rank());
    }
  }
  // The waiting ranks hold back from the agreement (which fixes their outcome) until rank 0 is
  // done, so a signal they get meanwhile still counts.
  if (rank0_only && signal_seen)
    stop.meet([&] {
      if (stop.rank() == 0 || mine.signal) return;
      if ((mine.signal = signal_seen()) != 0) stop.raise_interrupt();
    });
  const JobOutcome job = stop.agree(mine);
  if (!job.ok()) throw JobFailure{job};
}

}  // namespace causeway
