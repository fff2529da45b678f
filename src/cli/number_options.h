// Checks for numeric command-line options that say what was expected in the option's terms
// ("--tp: must be a positive integer, got 0"), where CLI11's own range checks print a double
// range ("Value 0 not in range 0.000000 to 1.797e308") and an unsigned option takes "-1" as
// 18446744073709551615 without a word. They run on the text, before CLI11 converts it.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>

namespace causeway::cli {

CLI::Validator positive_integer();      // 1 .. INT_MAX
CLI::Validator non_negative_integer();  // 0 .. INT_MAX
CLI::Validator integer_from(int lo, int hi);
CLI::Validator unsigned_64();           // 0 .. 2^64 - 1, decimal digits only (seeds)

}  // namespace causeway::cli
