// Indirect Object Identification prompts (Wang et al. 2022, "Interpretability in the Wild"):
//   clean:     "When Mary and John went to the store, John gave a drink to"   -> " Mary"
// The name not repeated is the indirect object (IO, the answer); the repeated one is the
// subject (S, the wrong answer); its second occurrence is S2. The corrupted prompt changes only
// the S2 name, so clean and corrupted have the same number of tokens:
//   SubjectSwap: S2 := IO ("..., Mary gave a drink to" -> the answer flips to " John");
//   ThirdName:   S2 := a third name C ("..., Carol gave a drink to"; no IO is left).
// Names, places and objects come from the built-in lists below, filtered to those that are one
// token in the given tokenizer, so the generator works with any GPT-2-style vocabulary.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "data/prompt_pairs.h"

namespace causeway {

class Tokenizer;

struct IoiOptions {
  int n = 100;
  uint64_t seed = 0;
  enum class Corruption { SubjectSwap, ThirdName } corruption = Corruption::SubjectSwap;
  // -1: draw a template for each pair. Otherwise use only this template: every prompt then
  // has one length, which mean ablation and position-labelled plots need.
  int template_index = -1;
  // With template_index = -1: draw only among the templates of the most common token length
  // (ties: the shorter), so that a position index means the same token in every pair. false
  // mixes every template and length; align those with named positions.
  bool same_length = true;
};

// Templates in ABBA order: [A] is the IO, [B] the subject; the second [B] is S2 and the prompt
// ends just before the IO would be said. BABA prompts swap the first [A] and [B]. Every
// placeholder follows a space, so it encodes as the " Word" token.
std::span<const std::string_view> ioi_templates();
// Candidates without the leading space; only those where " " + word is one token are used.
std::span<const std::string_view> ioi_names();
std::span<const std::string_view> ioi_places();
std::span<const std::string_view> ioi_objects();

// The named positions every generated pair carries, in this order: the IO name, the first
// subject name, the token after it, the second subject name, and the last token (where the
// answer is read).
std::span<const std::string_view> ioi_position_names();

// A generated pair and the choices behind it.
struct IoiPair {
  PromptPair pair;
  int template_index = 0;
  bool abba = false;      // true: IO named first ("When Mary and John ..., John ..."); false: BABA
  std::string io, s, c;   // names with their leading space; c is the ThirdName name, else empty
  int io_pos = 0, s1_pos = 0, s2_pos = 0;  // token positions in the clean prompt
};

// Deterministic for a seed (std::mt19937_64 and its own integer draws, so the same on every
// standard library). Half the pairs are ABBA, half BABA. Each pair's `positions` holds
// ioi_position_names(). The clean prompts do not depend on
// the corruption kind. Throws InputError when fewer than 3 names are single tokens.
std::vector<IoiPair> generate_ioi_detailed(const Tokenizer& tok, const IoiOptions& opt);
std::vector<PromptPair> generate_ioi(const Tokenizer& tok, const IoiOptions& opt);

}  // namespace causeway
