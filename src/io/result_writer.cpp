#include "io/result_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "core/error.h"
#include "io/result_store.h"

namespace causeway {

namespace {

class Stopwatch {
 public:
  explicit Stopwatch(double& total) : total_(total), t0_(std::chrono::steady_clock::now()) {}
  ~Stopwatch() {
    total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  double& total_;
  std::chrono::steady_clock::time_point t0_;
};

// Runs a write; a refused one (full disk, I/O error) says how to continue.
template <class F>
void resumable(F&& write) {
  try {
    write();
  } catch (const IoError& e) {
    throw IoError(std::string(e.what()) +
                  "; work items not yet marked done will run again: free space, then continue "
                  "with --resume");
  }
}

}  // namespace

ResultWriter::ResultWriter(const std::filesystem::path& path, MPI_Comm comm) : file_(path, comm) {
  // Data reaches the file through MPI-IO; syncing any descriptor of the file makes it durable.
  sync_fd_ = ::open(path.c_str(), O_RDONLY);
  if (sync_fd_ < 0) throw InputError(path.string(), "", "cannot open the result file to sync it");
}

ResultWriter::~ResultWriter() {
  if (sync_fd_ >= 0) ::close(sync_fd_);
}

void ResultWriter::write_item(const std::string& experiment, const WorkItem& item,
                              const std::vector<int>& grid, const float* effect,
                              const SweepBaselines& baselines) {
  Stopwatch watch(seconds_);
  const std::string g = "/experiments/" + experiment;
  const int64_t pairs = item.pair_end - item.pair_begin;
  std::vector<int64_t> offset{item.pair_begin, item.lead_begin}, count{pairs, item.lead_end - item.lead_begin};
  for (size_t d = 1; d < grid.size(); ++d) {
    offset.push_back(0);
    count.push_back(grid[d]);
  }
  const std::vector<const std::vector<double>*> values = {
      &baselines.clean_ld, &baselines.corrupted_ld, &baselines.clean_metric,
      &baselines.corrupted_metric};
  resumable([&] {
    file_.write_block(g + "/effect", offset, count, effect);
    for (size_t i = 0; i < values.size(); ++i) {
      const std::vector<float> v(values[i]->begin() + item.pair_begin,
                                 values[i]->begin() + item.pair_end);
      file_.write_block(g + "/baselines/" + baseline_names()[i], {item.pair_begin}, {pairs}, v.data());
    }
  });
}

void ResultWriter::write_activations(const std::string& hook, const WorkItem& item,
                                     const std::vector<int64_t>& shape, const float* clean,
                                     const float* corrupted) {
  Stopwatch watch(seconds_);
  std::vector<int64_t> offset{item.pair_begin}, count{item.pair_end - item.pair_begin};
  for (int64_t d : shape) {
    offset.push_back(0);
    count.push_back(d);
  }
  resumable([&] {
    file_.write_block("/activations/" + hook + "/clean", offset, count, clean);
    file_.write_block("/activations/" + hook + "/corrupted", offset, count, corrupted);
  });
}

void ResultWriter::mark_done(const std::string& experiment, const WorkItem& item) {
  Stopwatch watch(seconds_);
  const uint8_t one = 1;
  const std::string path =
      experiment == "activations" ? "/activations/done" : "/experiments/" + experiment + "/done";
  resumable([&] {
    if (::fdatasync(sync_fd_) != 0) throw_io_error(errno, file_.path(), "fdatasync before a done bit");
    file_.write_block(path, {item.index}, {1}, &one);
  });
}

void ResultWriter::close() {
  Stopwatch watch(seconds_);
  resumable([&] { file_.close(); });
}

}  // namespace causeway
