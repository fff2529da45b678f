// Errors carry where they happened (file, field or tensor) and what was wrong, so the CLI can
// print one line and exit non-zero. InputError = the user's input is bad (exit code 2).
#pragma once

#include <stdexcept>
#include <string>

namespace causeway {

inline constexpr int kExitInputError = 2;
inline constexpr int kExitInternalError = 1;

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Bad user input. `file` is the file (or "--flag" / "config") the value came from, `field` the
// tensor, key or option inside it; either may be empty.
class InputError : public Error {
 public:
  InputError(std::string file, std::string field, std::string detail)
      : Error(format(file, field, detail)),
        file_(std::move(file)),
        field_(std::move(field)),
        detail_(std::move(detail)) {}

  const std::string& file() const { return file_; }
  const std::string& field() const { return field_; }
  const std::string& detail() const { return detail_; }

 private:
  static std::string format(const std::string& file, const std::string& field,
                            const std::string& detail) {
    std::string s;
    if (!file.empty()) s += file + ": ";
    if (!field.empty()) s += field + ": ";
    return s + detail;
  }
  std::string file_, field_, detail_;
};

// Megatron's divide(): integer division that states which numbers do not divide.
inline int divide_exact(int n, int parts, const std::string& what) {
  if (parts <= 0 || n % parts != 0)
    throw InputError("", what,
                     std::to_string(n) + " is not divisible by " + std::to_string(parts));
  return n / parts;
}

}  // namespace causeway
