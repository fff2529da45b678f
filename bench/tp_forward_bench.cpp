// Times one model replica's forward, whole on one rank or tensor-parallel over every rank of
// the job (tp = the world size, under mpiexec): tokens/s of B x T random tokens, the share of
// the forward's wall time spent inside the replica's collectives (allreduce after the
// row-parallel layers, the vocabulary-parallel embedding and logits), each rank's peak RSS and
// its CPU seconds per forward outside the collectives. Rank 0 prints one JSON object;
// bench/tp_speed.sh runs tp = 1 and 2 side by side.
#include <mpi.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "backend/backend.h"
#include "model/transformer_model.h"
#include "parallel/collectives.h"
#include "parallel/communicator.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU seconds of this process (all threads), or of the calling thread: on a machine other jobs
// share, CPU time outside the collectives is the figure their load does not inflate.
double cpu_seconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// The replica's collectives with the wall time spent in them added up: waiting for the slowest
// rank counts too, as it is time the forward does not compute.
class TimedCollectives final : public causeway::Collectives {
 public:
  explicit TimedCollectives(std::unique_ptr<causeway::Collectives> inner) : inner_(std::move(inner)) {}
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  void allreduce_sum(float* d, int64_t n) const override { timed([&] { inner_->allreduce_sum(d, n); }); }
  void allreduce_max(float* d, int64_t n) const override { timed([&] { inner_->allreduce_max(d, n); }); }
  void allreduce_sum(double* d, int64_t n) const override { timed([&] { inner_->allreduce_sum(d, n); }); }
  void allgather(const float* s, int64_t n, float* r) const override {
    timed([&] { inner_->allgather(s, n, r); });
  }
  void broadcast(float* d, int64_t n, int root) const override {
    timed([&] { inner_->broadcast(d, n, root); });
  }
  double seconds = 0.0, cpu = 0.0;  // wall and CPU time inside the collectives

 private:
  // Only the main thread calls MPI (OpenMP workers never do), so its CPU clock covers the call.
  template <typename Fn>
  void timed(Fn&& fn) const {
    const auto t0 = Clock::now();
    const double c0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
    fn();
    auto* self = const_cast<TimedCollectives*>(this);
    self->seconds += seconds_since(t0);
    self->cpu += cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - c0;
  }
  std::unique_ptr<causeway::Collectives> inner_;
};

// VmHWM of this process in GiB: its peak resident memory.
double peak_rss_gib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / (1024.0 * 1024.0);
  return 0.0;
}

}  // namespace

int main(int argc, char** argv) {
  causeway::MpiSession session(&argc, &argv);
  CLI::App app{"Tensor-parallel forward benchmark (tp = the number of MPI ranks)"};
  std::string model_dir, rows = "last";
  int batch = 1, seq = 128, repeats = 3, threads = 1;
  app.add_option("--model", model_dir, "checkpoint folder")->required();
  app.add_option("--batch", batch)->capture_default_str();
  app.add_option("--seq", seq)->capture_default_str();
  app.add_option("--repeats", repeats, "timed forwards after one warm-up")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads per rank")->capture_default_str();
  app.add_option("--rows", rows, "logits of: last (each row's last token, as patching reads "
                                 "them) or all positions")
      ->check(CLI::IsMember({"last", "all"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const causeway::Communicator world;
  causeway::set_cpu_threads(threads);
  std::unique_ptr<TimedCollectives> tp;
  if (world.size() > 1)
    tp = std::make_unique<TimedCollectives>(causeway::make_mpi_collectives(MPI_COMM_WORLD));
  const auto t_load = Clock::now();
  causeway::TransformerModel model =
      causeway::TransformerModel::load(model_dir, causeway::DType::F32, tp.get());
  const double load_s = seconds_since(t_load);

  std::mt19937 rng(0);  // the same tokens on every rank
  std::uniform_int_distribution<int32_t> id(0, model.config().vocab_size - 1);
  std::vector<std::vector<int32_t>> ids(batch, std::vector<int32_t>(seq));
  for (auto& row : ids)
    for (int32_t& t : row) t = id(rng);
  const causeway::TokenBatch tokens = causeway::TokenBatch::padded(ids);
  const causeway::LogitRows which =
      rows == "all" ? causeway::LogitRows::All : causeway::LogitRows::Last;

  model.forward(tokens, which);  // warm-up: workspace, page faults
  if (tp) tp->seconds = tp->cpu = 0.0;
  world.barrier();
  const auto t0 = Clock::now();
  const double cpu0 = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
  for (int r = 0; r < repeats; ++r) model.forward(tokens, which);
  const double wall = seconds_since(t0);
  const double compute_cpu = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0 - (tp ? tp->cpu : 0.0);

  // Per rank: collective seconds, peak RSS, CPU seconds outside the collectives; to rank 0.
  double mine[3] = {tp ? tp->seconds : 0.0, peak_rss_gib(), compute_cpu / repeats};
  std::vector<double> all(3 * world.size());
  MPI_Gather(mine, 3, MPI_DOUBLE, all.data(), 3, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  const double slowest = world.max(wall);
  if (world.rank() != 0) return 0;
  std::string rss = "[", comm = "[", cpu = "[";
  for (int r = 0; r < world.size(); ++r) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%.3f", r ? ", " : "", all[3 * r + 1]);
    rss += buf;
    std::snprintf(buf, sizeof buf, "%s%.3f", r ? ", " : "", all[3 * r] / slowest);
    comm += buf;
    std::snprintf(buf, sizeof buf, "%s%.4f", r ? ", " : "", all[3 * r + 2]);
    cpu += buf;
  }
  std::printf(
      "{\"tp\": %d, \"threads\": %d, \"batch\": %d, \"seq\": %d, \"rows\": \"%s\", "
      "\"repeats\": %d, \"tokens_per_s\": %.2f, \"seconds_per_forward\": %.4f, "
      "\"collective_share\": %s], \"peak_rss_gib\": %s], \"compute_cpu_s_per_forward\": %s], "
      "\"load_s\": %.2f}\n",
      world.size(), threads, batch, seq, rows.c_str(), repeats,
      static_cast<double>(batch) * seq * repeats / slowest, slowest / repeats, comm.c_str(),
      rss.c_str(), cpu.c_str(), load_s);
  return 0;
}
