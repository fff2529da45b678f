// Labels of a data set's token positions for plots and tables (/data/position_labels).
#pragma once

#include <string>
#include <vector>

#include "data/prompt_pairs.h"

namespace causeway {

class Tokenizer;

// One label per position 0..T-1 of the longest clean prompt: the token there when every pair's
// clean prompt has that same token (as text, bytes that are not valid UTF-8 escaped as
// "<0xE2>"; an id past the tokenizer as "<id 1011>"), otherwise "pos N", so a label never
// claims a token that some pair does not have.
// Without a tokenizer every label is "pos N".
std::vector<std::string> position_labels(const PairDataset& data, const Tokenizer* tok);

}  // namespace causeway
