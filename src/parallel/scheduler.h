// Which work items a data-parallel group runs. Static: a fixed contiguous share per group.
// Dynamic: the next item from a counter shared through MPI one-sided operations, so fast
// groups take more; no rank is a master. Items already done (resume) are skipped either way.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.h"

namespace causeway {

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // The next item to run, or -1 when there is none left for this group.
  virtual int64_t next() = 0;
};

enum class Schedule { Static, Dynamic };
Schedule parse_schedule(const std::string& name, const std::string& source);
std::string schedule_name(Schedule s);

// `done` has one entry per item (non-zero = already in the file). Collective over `dp`.
std::unique_ptr<Scheduler> make_scheduler(Schedule schedule, const Communicator& dp,
                                          const std::vector<uint8_t>& done);

// The scheduler of one tensor-parallel replica, whose ranks must always run the same item: its
// leader (tp rank 0) draws from `schedule` among the leaders (`dp`) and broadcasts each item
// over `tp`. Collective over `tp`, and over `dp` on the leaders; every rank of the replica
// calls next() equally often. With one rank per replica, make_scheduler's.
std::unique_ptr<Scheduler> make_replica_scheduler(Schedule schedule, const Communicator& dp,
                                                  const Communicator& tp,
                                                  const std::vector<uint8_t>& done);

// A job-wide count of finished items: every rank adds, any rank reads, nobody waits.
class SharedCounter {
 public:
  explicit SharedCounter(const Communicator& comm);  // collective
  ~SharedCounter();
  SharedCounter(const SharedCounter&) = delete;
  SharedCounter& operator=(const SharedCounter&) = delete;
  int64_t fetch_add(int64_t delta);  // returns the value before the add
  int64_t read();

 private:
  MPI_Win win_ = MPI_WIN_NULL;
  int64_t* value_ = nullptr;  // the counter lives on rank 0 of `comm`
};

}  // namespace causeway
