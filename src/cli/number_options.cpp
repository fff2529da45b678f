#include "cli/number_options.h"

#include <charconv>
#include <climits>
#include <optional>
#include <string>

namespace causeway::cli {

namespace {

// The whole text as a decimal integer of type T; none when it has other characters or does
// not fit (from_chars neither skips spaces nor accepts a '+').
template <typename T>
std::optional<T> parse_whole(const std::string& text) {
  T v{};
  const char* end = text.data() + text.size();
  const auto [ptr, err] = std::from_chars(text.data(), end, v);
  if (err != std::errc() || ptr != end) return std::nullopt;
  return v;
}

CLI::Validator int_range(long long lo, long long hi, const std::string& expected, const std::string& name) {
  return CLI::Validator(
      [lo, hi, expected](std::string& text) -> std::string {
        const std::optional<long long> v = parse_whole<long long>(text);
        if (!v || *v < lo) return "must be " + expected + ", got " + text;
        if (*v > hi) return "must be at most " + std::to_string(hi) + ", got " + text;
        return "";
      },
      name, name);
}

}  // namespace

CLI::Validator positive_integer() { return int_range(1, INT_MAX, "a positive integer", "POSITIVE"); }

CLI::Validator non_negative_integer() {
  return int_range(0, INT_MAX, "a non-negative integer", "NONNEGATIVE");
}

CLI::Validator integer_from(int lo, int hi) {
  return CLI::Validator(
      [lo, hi](std::string& text) -> std::string {
        const std::optional<long long> v = parse_whole<long long>(text);
        if (!v || *v < lo || *v > hi)
          return "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " + text;
        return "";
      },
      "[" + std::to_string(lo) + " - " + std::to_string(hi) + "]", "RANGE");
}

CLI::Validator unsigned_64() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (!parse_whole<uint64_t>(text))
          return "must be an integer from 0 to " + std::to_string(UINT64_MAX) + ", got " + text;
        return "";
      },
      "UINT64", "UINT64");
}

}  // namespace causeway::cli
