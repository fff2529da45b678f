#include "parallel/scheduler.h"

#include "core/error.h"

namespace causeway {

namespace {

class StaticScheduler final : public Scheduler {
 public:
  StaticScheduler(const Communicator& dp, const std::vector<uint8_t>& done) : done_(done) {
    // Contiguous shares keep a group's items within few pair blocks.
    const int64_t n = static_cast<int64_t>(done.size());
    next_ = n * dp.rank() / dp.size();
    end_ = n * (dp.rank() + 1) / dp.size();
  }
  int64_t next() override {
    while (next_ < end_ && done_[next_]) ++next_;
    return next_ < end_ ? next_++ : -1;
  }

 private:
  const std::vector<uint8_t>& done_;
  int64_t next_ = 0, end_ = 0;
};

class DynamicScheduler final : public Scheduler {
 public:
  DynamicScheduler(const Communicator& dp, const std::vector<uint8_t>& done)
      : done_(done), counter_(dp) {}
  int64_t next() override {
    const int64_t n = static_cast<int64_t>(done_.size());
    for (;;) {
      const int64_t i = counter_.fetch_add(1);
      if (i >= n) return -1;
      if (!done_[i]) return i;
    }
  }

 private:
  const std::vector<uint8_t>& done_;
  SharedCounter counter_;
};

class ReplicaScheduler final : public Scheduler {
 public:
  ReplicaScheduler(std::unique_ptr<Scheduler> leader, const Communicator& tp)
      : leader_(std::move(leader)), tp_(tp) {}
  int64_t next() override {
    int64_t item = leader_ ? leader_->next() : -1;
    if (MPI_Bcast(&item, 1, MPI_INT64_T, 0, tp_.comm()) != MPI_SUCCESS)
      throw Error("MPI_Bcast of the next work item failed");
    return item;
  }

 private:
  std::unique_ptr<Scheduler> leader_;  // on tp rank 0 only
  Communicator tp_;
};

}  // namespace

Schedule parse_schedule(const std::string& name, const std::string& source) {
  if (name == "static") return Schedule::Static;
  if (name == "dynamic") return Schedule::Dynamic;
  throw InputError(source, "schedule", "'" + name + "' is not one of: static, dynamic");
}

std::string schedule_name(Schedule s) { return s == Schedule::Static ? "static" : "dynamic"; }

std::unique_ptr<Scheduler> make_scheduler(Schedule schedule, const Communicator& dp,
                                          const std::vector<uint8_t>& done) {
  if (schedule == Schedule::Static) return std::make_unique<StaticScheduler>(dp, done);
  return std::make_unique<DynamicScheduler>(dp, done);
}

SharedCounter::SharedCounter(const Communicator& comm) {
  const MPI_Aint bytes = comm.rank() == 0 ? sizeof(int64_t) : 0;
  if (MPI_Win_allocate(bytes, sizeof(int64_t), MPI_INFO_NULL, comm.comm(), &value_, &win_) !=
      MPI_SUCCESS)
    throw Error("MPI_Win_allocate failed for the shared work counter");
  if (comm.rank() == 0) *value_ = 0;
  // Everyone sees the zero before anyone adds; then a shared lock lets any rank update
  // the counter at any time without the owner taking part.
  MPI_Barrier(comm.comm());
  MPI_Win_lock_all(0, win_);
}

SharedCounter::~SharedCounter() {
  if (win_ == MPI_WIN_NULL) return;
  MPI_Win_unlock_all(win_);
  MPI_Win_free(&win_);
}

int64_t SharedCounter::fetch_add(int64_t delta) {
  int64_t before = 0;
  MPI_Fetch_and_op(&delta, &before, MPI_INT64_T, 0, 0, MPI_SUM, win_);
  MPI_Win_flush(0, win_);
  return before;
}

int64_t SharedCounter::read() {
  int64_t value = 0;
  MPI_Fetch_and_op(nullptr, &value, MPI_INT64_T, 0, 0, MPI_NO_OP, win_);
  MPI_Win_flush(0, win_);
  return value;
}

}  // namespace causeway

namespace causeway {

std::unique_ptr<Scheduler> make_replica_scheduler(Schedule schedule, const Communicator& dp,
                                                  const Communicator& tp,
                                                  const std::vector<uint8_t>& done) {
  if (tp.size() == 1) return make_scheduler(schedule, dp, done);
  // Only the leaders' dp group draws; the other ranks' dp groups stay idle.
  return std::make_unique<ReplicaScheduler>(
      tp.rank() == 0 ? make_scheduler(schedule, dp, done) : nullptr, tp);
}

}  // namespace causeway
