// What a batch job tells its user: errors from any rank with the rank named, and on rank 0
// progress over all ranks (items done / total, rate, ETA) redrawn in place on a terminal or
// as plain periodic lines in a batch log. Levels: error < warn < info < debug.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace causeway::cli {

enum class LogLevel { Error, Warn, Info, Debug };
LogLevel parse_log_level(const std::string& name);

class JobLog {
 public:
  JobLog(int rank, int world, LogLevel level);
  bool enabled(LogLevel l) const { return l <= level_; }
  // Lines from rank 0 only (job-wide facts), or from every rank with its number.
  void info(const std::string& line) const;
  void debug(const std::string& line) const;  // every rank, prefixed "[rank r]"
  void error(const std::string& line) const;  // every rank, prefixed with the rank when > 1

  // Rank 0: items done over the whole job. Rate-limited; `force` prints regardless.
  void progress(int64_t done, int64_t total, bool force = false);
  void end_progress();

 private:
  int rank_, world_;
  LogLevel level_;
  bool tty_;
  bool drawn_ = false;
  int64_t first_done_ = -1;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace causeway::cli
