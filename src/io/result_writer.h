// Every rank's writes into the result file during a job: each work item's effect block,
// its pairs' baselines, cached activations, then its done bit. The block is made durable
// (fdatasync) before the bit is written, so a killed job never marks lost data as done. A write
// the file system refuses (full disk) throws IoError telling the user to --resume after freeing
// space; items whose bits were not set then run again.
#pragma once

#include <mpi.h>

#include <filesystem>
#include <string>
#include <vector>

#include "io/hdf5_file.h"
#include "parallel/work_plan.h"
#include "patching/sweep.h"

namespace causeway {

class ResultWriter {
 public:
  // Collective over `comm`: every rank of the job opens the file.
  ResultWriter(const std::filesystem::path& path, MPI_Comm comm);
  ~ResultWriter();
  ResultWriter(const ResultWriter&) = delete;
  ResultWriter& operator=(const ResultWriter&) = delete;

  // `effect` holds (pairs, cells) of the item; `grid` is the experiment's grid shape.
  void write_item(const std::string& experiment, const WorkItem& item,
                  const std::vector<int>& grid, const float* effect,
                  const SweepBaselines& baselines);
  // One hook's values for the item's pairs, clean and corrupted: (pairs, ...shape).
  void write_activations(const std::string& hook, const WorkItem& item,
                         const std::vector<int64_t>& shape, const float* clean,
                         const float* corrupted);
  // Makes everything written so far durable, then sets the item's done bit.
  void mark_done(const std::string& experiment, const WorkItem& item);
  // Collective: closes the file on every rank, checking that every write reached the disk.
  void close();

  double write_seconds() const { return seconds_; }

 private:
  H5File file_;
  int sync_fd_ = -1;
  double seconds_ = 0.0;
};

}  // namespace causeway
