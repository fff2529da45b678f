// BPE tokenizer equal to Hugging Face `tokenizers` on the files the supported families ship:
// GPT-2's vocab.json + merges.txt, and tokenizer.json with byte-level BPE (GPT-2, GPT-NeoX,
// Llama 3 and Qwen2's Split regex) or SentencePiece-style BPE with byte fallback (Llama 2,
// Mistral, Gemma).
//
// Pipeline: split off added tokens (<|endoftext|>, ...) -> normalizer (NFC / Prepend / Replace) ->
// pre-tokenizer steps (Split regex, ByteLevel, Metaspace) -> merge by BPE rank, a character
// missing from the vocabulary becoming its <0xNN> tokens under byte_fallback.
//
// BOS: encode() never adds one; encode_for_model() prepends bos_id() when prepends_bos() (from
// the post_processor template and tokenizer_config.json's add_bos_token) or when asked.
//
// Choices where HF has no exact counterpart (details in tokenizer.cpp, tokenizer_text.cpp):
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
  // tokenizer_config.json, when given, sets bos_token / eos_token / add_bos_token.
  static Tokenizer from_files(const std::filesystem::path& vocab_json,
                              const std::filesystem::path& merges_txt,
                              const std::optional<std::filesystem::path>& config_json = std::nullopt);
  // HF fast-tokenizer format: model.vocab, model.merges ("a b" strings or ["a", "b"] pairs),
  // added_tokens (lstrip / rstrip / normalized honoured; numbered as HF numbers them: the
  // vocabulary id of their text, else the next free id, whatever their "id" field says),
  // normalizer NFC / Prepend / Replace (literal) / Sequence; pre_tokenizer ByteLevel
  // (add_prefix_space, use_regex), Split (regex or string, every behavior, invert), Metaspace,
  // Sequence; model.unk_token / ignore_merges / byte_fallback; decoder ByteLevel, Metaspace or
  // Replace / ByteFallback / Fuse / Strip;
  // post_processor TemplateProcessing (its leading special token is BOS), ByteLevel.
  // Anything else that changes ids (another normalizer or pre-tokenizer, single_word tokens,
  // dropout, a model type other than BPE) is an InputError naming the field rather than
  // silently different ids.
  static Tokenizer from_tokenizer_json(
      const std::filesystem::path& tokenizer_json,
      const std::optional<std::filesystem::path>& config_json = std::nullopt);
  // vocab.json + merges.txt when both exist, else tokenizer.json; tokenizer_config.json too if
  // the folder has one.
  static Tokenizer from_model_dir(const std::filesystem::path& dir);

  // The same as the file loaders, from file contents; the names appear in error messages.
  // Used by the fuzz target, and by anyone holding the files in memory.
  static Tokenizer from_strings(std::string_view vocab_json_text, std::string_view merges_text,
                                const std::string& vocab_name = "vocab.json",
                                const std::string& merges_name = "merges.txt",
                                std::string_view config_text = {},
                                const std::string& config_name = "tokenizer_config.json");
  static Tokenizer from_tokenizer_json_string(std::string_view json_text,
                                              const std::string& name = "tokenizer.json",
                                              std::string_view config_text = {},
                                              const std::string& config_name = "tokenizer_config.json");

  // The ids of the text alone, never BOS/EOS (HF's add_special_tokens=False).
  std::vector<int32_t> encode(std::string_view utf8) const;
  // The ids a model runs on: BOS first when prepend_bos says so, else when prepends_bos().
  // InputError if BOS is wanted and the tokenizer has none.
  std::vector<int32_t> encode_for_model(std::string_view utf8,
                                        std::optional<bool> prepend_bos = std::nullopt) const;
  // Token bytes joined, as HF's decoder gives them (SentencePiece: U+2581 -> " ", <0xNN> -> byte,
  // the leading space its Strip / Metaspace decoder removes); may be invalid UTF-8 when a
  // multi-byte character spans tokens. skip_special_tokens drops added tokens marked special.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;
  // decode() for showing a prompt: ids the tokenizer lacks appear as display_text's "<id N>".
  std::string decode_for_display(std::span<const int32_t> ids) const;
  // Decoded bytes of one token, e.g. " Mary"; InputError for an id not in the vocabulary.
  std::string token_text(int32_t id) const;
  // token_text, or "<id 1011>" for an id the tokenizer lacks (Qwen and Pythia checkpoints pad
  // the embedding past the tokenizer), so every id a model can put out can be shown.
  std::string display_text(int32_t id) const;
  bool has_token(int32_t id) const;
  // Largest token id + 1: the number of embedding rows a model needs (50257 for GPT-2).
  int32_t vocab_size() const;
  // Exact single-token lookup of decoded text: " Mary" -> 5335, "<|endoftext|>" -> 50256.
  std::optional<int32_t> token_id(std::string_view token_text) const;
  std::optional<int32_t> eos_id() const;
  // BOS token (tokenizer_config.json bos_token, else the post_processor's, else GPT-2's
  // <|endoftext|>) and whether encode_for_model prepends it by default (GPT-2: no).
  std::optional<int32_t> bos_id() const;
  bool prepends_bos() const;
  // The same tokenizer with encode_for_model's default set (`prepend_bos` in run configs,
  // --prepend-bos / --no-prepend-bos on the command line); shares the loaded tables.
  Tokenizer with_prepend_bos(bool prepend) const;

  // The pieces BPE runs on, in order, as raw bytes; an added token is one piece. For tests and
  // debugging (HF's pre_tokenize_str, plus added-token splitting).
  std::vector<std::string> pretokenize(std::string_view utf8) const;

  struct Impl;  // the loaded tables; defined in tokenizer.cpp only

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
  std::optional<bool> prepend_bos_;  // overrides the files' default when set
};

// GPT-2's byte-level alphabet (bytes_to_unicode in encoder.py): each byte with the printable
// text a vocabulary uses for it, in the order GPT-2 numbers them (printable bytes first).
std::vector<std::pair<uint8_t, std::string>> gpt2_byte_alphabet();

}  // namespace causeway
