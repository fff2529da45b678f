#include "io/output_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "io/hdf5_file.h"

namespace causeway {

namespace {

std::string holder_of(int fd) {
  char buf[256] = {};
  const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  std::string text = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  const size_t at = text.find('@');
  if (at == std::string::npos) return "holder not yet recorded";
  return "pid " + text.substr(0, at) + " on " + text.substr(at + 1);
}

std::string this_process() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "unknown-host");
  return std::to_string(::getpid()) + "@" + host + "\n";
}

// The path still names the inode we locked (its last holder may have deleted it meanwhile).
bool same_file(int fd, const std::filesystem::path& path) {
  struct stat held {}, named {};
  return ::fstat(fd, &held) == 0 && ::stat(path.c_str(), &named) == 0 &&
         held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

}  // namespace

std::filesystem::path OutputLock::lock_path(const std::filesystem::path& output) {
  return output.string() + ".lock";
}

OutputLock::OutputLock(const std::filesystem::path& output) : path_(lock_path(output)) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      const int err = errno;
      if (err == ENOENT || err == ENOTDIR)
        throw InputError(output.string(), "", "the output folder does not exist (or is not a folder)");
      throw InputError(path_.string(), "",
                       std::string("cannot create the lock file of the output: ") + std::strerror(err));
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      if (err == EWOULDBLOCK) {
        const std::string holder = holder_of(fd);
        ::close(fd);
        throw InputError("", "",
                         output.string() + " is in use by another causeway job (" + holder +
                             "); wait for it to end, or pick another output");
      }
      // Some cluster file systems refuse flock: run unprotected rather than not at all.
      ::close(fd);
      warning_ = "cannot lock " + path_.string() + " (" + std::strerror(err) +
                 "); nothing stops a second job from writing the same output";
      return;
    }
    if (!same_file(fd, path_)) {
      ::close(fd);
      continue;
    }
    const std::string me = this_process();
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
      const int err = errno;
      ::close(fd);
      throw_io_error(err, path_, "writing the lock file of the output");
    }
    fd_ = fd;
    return;
  }
  throw InputError(path_.string(), "", "the lock file keeps changing; is another job starting?");
}

OutputLock::~OutputLock() {
  if (fd_ < 0) return;
  // Unlinked while still held, so a job that opened it meanwhile sees a new inode and retries.
  ::unlink(path_.c_str());
  ::close(fd_);
}

}  // namespace causeway
