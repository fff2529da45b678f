#include "cli/job_log.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "core/error.h"

namespace causeway::cli {

LogLevel parse_log_level(const std::string& name) {
  if (name == "error") return LogLevel::Error;
  if (name == "warn") return LogLevel::Warn;
  if (name == "info") return LogLevel::Info;
  if (name == "debug") return LogLevel::Debug;
  throw InputError("--log-level", "", "'" + name + "' is not one of: error, warn, info, debug");
}

JobLog::JobLog(int rank, int world, LogLevel level)
    : rank_(rank), world_(world), level_(level), tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

void JobLog::info(const std::string& line) const {
  if (rank_ != 0 || !enabled(LogLevel::Info)) return;
  std::fprintf(stderr, "%s%s\n", drawn_ ? "\n" : "", line.c_str());
}

void JobLog::debug(const std::string& line) const {
  if (!enabled(LogLevel::Debug)) return;
  std::fprintf(stderr, "[rank %d] %s\n", rank_, line.c_str());
}

void JobLog::error(const std::string& line) const {
  if (world_ > 1) std::fprintf(stderr, "causeway: error (rank %d): %s\n", rank_, line.c_str());
  else std::fprintf(stderr, "causeway: error: %s\n", line.c_str());
  std::fflush(stderr);
}

void JobLog::progress(int64_t done, int64_t total, bool force) {
  if (rank_ != 0 || !enabled(LogLevel::Info) || total <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (first_done_ < 0) first_done_ = done;  // items found done by --resume do not count in the rate
  const double since = std::chrono::duration<double>(now - last_).count();
  if (!force && since < (tty_ ? 0.25 : 10.0)) return;
  last_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = (done - first_done_) / std::max(elapsed, 1e-9);
  const double eta = rate > 0 ? (total - done) / rate : 0.0;
  std::fprintf(stderr, "%sprogress: %lld/%lld items (%.0f%%), %.2f items/s, elapsed %.0fs, ETA %.0fs%s",
               tty_ ? "\r\033[K" : "", static_cast<long long>(done), static_cast<long long>(total),
               100.0 * done / total, rate, elapsed, eta, tty_ ? "" : "\n");
  std::fflush(stderr);
  drawn_ = tty_;
}

void JobLog::end_progress() {
  if (drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

}  // namespace causeway::cli
