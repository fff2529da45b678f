// An exclusive claim on a job's output file, so two jobs never write one file. FILE.lock beside
// the output holds "pid@host" of its holder and is held with flock(2) by the one process that
// writes the file's metadata (rank 0). The kernel drops a flock when its process dies, SIGKILL
// included, so a lock file whose flock is free is stale and is simply taken over.
#pragma once

#include <filesystem>
#include <string>

namespace causeway {

class OutputLock {
 public:
  // Takes the lock, or throws InputError "FILE is in use by another causeway job (pid N on
  // HOST)". On a file system without flock (Lustre mounted noflock) it holds nothing and
  // warning() says so.
  explicit OutputLock(const std::filesystem::path& output);
  // Releases the lock and deletes the lock file.
  ~OutputLock();
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

  static std::filesystem::path lock_path(const std::filesystem::path& output);
  const std::string& warning() const { return warning_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::string warning_;
};

}  // namespace causeway
