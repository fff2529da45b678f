// Tokenizers for the model organisms: GPT-2 byte-level BPE files (vocab.json + merges.txt)
// in which each given word is exactly one token, so Tokenizer and the IOI generator work on
// the trained models unchanged.
//
// Layout: ids 0..255 are GPT-2's byte tokens in GPT-2's order (any text still encodes), then
// the tokens the merges make, then <|endoftext|> last. Each word gets a left-anchored chain
// of merges ("Ġ M" -> "ĠM", "ĠM a" -> "ĠMa", ...), sharing prefixes between words. A chain
// can only be broken by a merge whose left side also occurs inside another word; merges of
// words that start with a space come first, and a space never occurs inside a GPT-2
// pre-token, so those words are always safe. make_word_tokenizer checks every word with the
// Tokenizer itself and throws if one is not a single token.
#pragma once

#include <string>
#include <vector>

#include "model/tokenizer.h"

namespace causeway::train {

struct TokenizerFiles {
  std::string vocab_json;
  std::string merges_txt;
  Tokenizer load() const;  // Tokenizer::from_strings on these texts
};

// `words` are raw UTF-8 pieces as GPT-2's pre-tokenizer yields them (" Mary", "When", ",");
// each must be one pre-token (no inner space). Duplicates are ignored. Throws
// std::invalid_argument naming a word that would not be a single token.
TokenizerFiles make_word_tokenizer(const std::vector<std::string>& words);

}  // namespace causeway::train
