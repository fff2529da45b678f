// UTF-8 checks for text that reaches a terminal or an HDF5 string: byte-level tokens
// (GPT-2's 'â' is the lone byte 0xE2) are not valid UTF-8 on their own.
#pragma once

#include <string>
#include <string_view>

namespace causeway {

// Length of the well-formed UTF-8 sequence starting at s[i] (1 to 4), or 0 when s[i] does not
// start one: a stray continuation byte, a truncated sequence, an overlong form, a surrogate
// or a code point above U+10FFFF (Unicode's table 3-7).
int utf8_sequence_length(std::string_view s, size_t i);

bool is_valid_utf8(std::string_view s);

// `s` with each byte that is not part of a well-formed sequence written as "<0xE2>"; valid
// text passes through unchanged, so the result is always valid UTF-8.
std::string escape_invalid_utf8(std::string_view s);

}  // namespace causeway
