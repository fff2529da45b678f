// GPT-2 byte-level BPE tokenizer, equal to Hugging Face's GPT2Tokenizer (transformers 5, i.e.
// the `tokenizers` BPE model with the ByteLevel pre-tokenizer) on every valid UTF-8 input.
//
// Pipeline: split off added tokens (<|endoftext|>, ...) -> split the rest with GPT-2's regex
// -> map each piece's bytes to GPT-2's printable characters -> merge by BPE rank.
//
// Choices where HF has no exact counterpart (details in tokenizer.cpp):
// - Invalid UTF-8 input is decoded as Python's bytes.decode("utf-8", errors="replace") does
//   (each maximal invalid subsequence becomes U+FFFD), so encode() equals HF on that str.
// - Character classes (\p{L}, \p{N}, whitespace) follow the Unicode 16 tables HF's regex
//   engine uses, not whatever Unicode version the system PCRE2 was built with.
// - A vocab.json without <|endoftext|> gets no eos token (HF would append one at id = size).
// - A vocab.json entry whose id is not an integer is an InputError (HF skips it silently).
//
// A Tokenizer is immutable after construction: encode/decode are const and thread-safe, and
// copies share the loaded tables.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace causeway {

class Tokenizer {
 public:
  static Tokenizer from_files(const std::filesystem::path& vocab_json,
                              const std::filesystem::path& merges_txt);
  // HF fast-tokenizer format: model.vocab, model.merges ("a b" strings or ["a", "b"] pairs),
  // added_tokens (lstrip / rstrip / normalized honoured; numbered as HF numbers them: the
  // vocabulary id of their text, else the next free id, whatever their "id" field says),
  // pre_tokenizer ByteLevel (add_prefix_space, use_regex), model.unk_token / ignore_merges.
  // Anything else that changes ids (a normalizer, another pre-tokenizer, single_word tokens,
  // byte_fallback, dropout) is an InputError rather than silently different ids. The
  // post_processor is ignored: encode() never adds BOS/EOS.
  static Tokenizer from_tokenizer_json(const std::filesystem::path& tokenizer_json);
  // vocab.json + merges.txt when both exist, else tokenizer.json.
  static Tokenizer from_model_dir(const std::filesystem::path& dir);

  // The same as the file loaders, from file contents; the names appear in error messages.
  // Used by the fuzz target, and by anyone holding the files in memory.
  static Tokenizer from_strings(std::string_view vocab_json_text, std::string_view merges_text,
                                const std::string& vocab_name = "vocab.json",
                                const std::string& merges_name = "merges.txt");
  static Tokenizer from_tokenizer_json_string(std::string_view json_text,
                                              const std::string& name = "tokenizer.json");

  std::vector<int32_t> encode(std::string_view utf8) const;
  // Token bytes joined; may be invalid UTF-8 when a multi-byte character spans tokens.
  std::string decode(std::span<const int32_t> ids) const;
  // Decoded bytes of one token, e.g. " Mary"; InputError for an id not in the vocabulary.
  std::string token_text(int32_t id) const;
  // Largest token id + 1: the number of embedding rows a model needs (50257 for GPT-2).
  int32_t vocab_size() const;
  // Exact single-token lookup of decoded text: " Mary" -> 5335, "<|endoftext|>" -> 50256.
  std::optional<int32_t> token_id(std::string_view token_text) const;
  std::optional<int32_t> eos_id() const;

  // The pieces BPE runs on, in order, as raw bytes; an added token is one piece. For tests and
  // debugging (HF's pre_tokenize_str, plus added-token splitting).
  std::vector<std::string> pretokenize(std::string_view utf8) const;

  struct Impl;  // the loaded tables; defined in tokenizer.cpp only

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// GPT-2's byte-level alphabet (bytes_to_unicode in encoder.py): each byte with the printable
// text a vocabulary uses for it, in the order GPT-2 numbers them (printable bytes first).
std::vector<std::pair<uint8_t, std::string>> gpt2_byte_alphabet();

}  // namespace causeway
