// Clean/corrupted prompt pairs with their answer tokens, read from and written to JSONL.
//
// One pair per non-empty line:
//   {"clean": "When Mary and John went to the store, John gave a drink to",
//    "corrupted": "When Mary and John went to the store, Mary gave a drink to",
//    "answer": " Mary", "wrong": " John", "answer_pos": -1}
// - clean, corrupted: a string (tokenized once with the tokenizer, BOS first when the tokenizer
//   prepends it: Tokenizer::encode_for_model) or an array of token ids (used as given).
//   clean_ids / corrupted_ids, when present, give the ids of a text prompt (the writer stores
//   both, so a file reads back without a tokenizer); with a tokenizer the text must encode to them.
// - answer, wrong: a string that is exactly one token, an int id, or an array of either; the
//   logit difference averages over each set.
// - answer_pos (optional): the position whose logits are read; negative counts from the end
//   (-1, the default, is the last token).
// - positions (optional): named token positions of the pair, e.g. {"IO": 2, "S1": 4, "END": -1}
//   (negative counts from the end), in both prompts. A sweep with positions = "named" indexes
//   its position axis by these names, so the same cell means the same role in every pair.
// Other keys are ignored. Every error names the file, "line N" and the key.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace causeway {

class Tokenizer;

// A token position with a role in the prompt ("IO", "S2", "END", ...); index counts from 0.
struct NamedPosition {
  std::string name;
  int index = 0;
  bool operator==(const NamedPosition&) const = default;
};

struct PromptPair {
  std::string clean_text, corrupted_text;  // empty when the line gave token ids
  std::vector<int32_t> clean, corrupted;   // token ids
  std::vector<int32_t> answers, wrongs;    // one or more single tokens each
  int answer_pos = -1;                     // position whose logits are read; -1 = last token
  int line = 0;                            // 1-based line in the source file (0 if generated)
  std::vector<NamedPosition> positions;    // in the order the line gives them; may be empty
};

struct PairDataset {
  std::vector<PromptPair> pairs;
  std::string source;  // file name, for error messages

  // Throws InputError naming source and line when a pair's clean and corrupted token counts
  // differ (needed wherever positions are patched one by one).
  void require_aligned() const;
  // Longest prompt (clean or corrupted) in tokens; 0 when there are no pairs.
  int max_length() const;
  // The position names every pair shares, in the first pair's order. Throws InputError naming
  // the line of a pair without names, or whose names differ from the first pair's.
  std::vector<std::string> position_names() const;
};

// `tok` may be null if every prompt and answer is given as token ids.
PairDataset load_pairs_jsonl(const std::filesystem::path& path, const Tokenizer* tok);
PairDataset parse_pairs_jsonl(std::string_view text, const std::string& source,
                              const Tokenizer* tok);
// Writes through a temporary file and a rename, so a failed write leaves no partial file.
void write_pairs_jsonl(const std::filesystem::path& path, const std::vector<PromptPair>& pairs);

}  // namespace causeway
