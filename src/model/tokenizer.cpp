// BPE tokenizers from vocab.json + merges.txt or tokenizer.json. The reference is Hugging Face
// `tokenizers` (what transformers 5 runs): BPE::merge_word / Word::merge_all for the merge order
// and byte fallback, AddedVocabulary for special tokens, the normalizers, pre-tokenizers,
// decoders and TemplateProcessing it names. Where this file follows a quirk of
// that code on purpose, the comment says so.
#include "model/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/tokenizer_text.h"

namespace causeway {

using namespace tokenizer_text;  // this file's own helpers, split out for size

namespace {

using json = nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Tables

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct Merge {
  uint32_t rank;
  int32_t new_id;
};
using MergeMap = std::unordered_map<uint64_t, Merge>;

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct AddedToken {
  std::string content;
  int32_t id;
  bool lstrip = false, rstrip = false, normalized = false, special = false;
};

// A value from a file, shortened so one bad entry cannot flood the message.
std::string show(std::string_view s) {
  std::string q(1, '"');
  q.append(s.substr(0, 60)).append(s.size() > 60 ? "...\"" : "\"");
  return q;
}

// Arrays and objects are named, not printed: a deeply nested value would recurse in dump().
std::string show(const json& v) {
  if (v.is_array()) return "an array of " + std::to_string(v.size());
  if (v.is_object()) return "an object";
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

constexpr int64_t kMaxTokenId = std::numeric_limits<int32_t>::max() - 1;

int32_t parse_token_id(const json& v, const std::string& file, const std::string& field) {
  if (!v.is_number_integer())
    throw InputError(file, field, "token id must be an integer, got " + show(v));
  const bool negative = v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0;
  if (negative || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(kMaxTokenId)))
    throw InputError(file, field,
                     "token id " + show(v) + " is outside [0, " + std::to_string(kMaxTokenId) + "]");
  return static_cast<int32_t>(v.get<int64_t>());
}

Vocab parse_vocab(const json& obj, const std::string& file, const std::string& prefix) {
  if (!obj.is_object())
    throw InputError(file, prefix.empty() ? "" : prefix,
                     "the vocabulary must be a JSON object {token: id}, got " + show(obj));
  Vocab vocab;
  vocab.reserve(obj.size());
  for (const auto& [token, id] : obj.items())
    vocab[token] = parse_token_id(id, file, prefix + show(std::string_view(token)));
  return vocab;
}

json parse_json(std::string_view text, const std::string& file) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw InputError(file, "", std::string("malformed JSON: ") + e.what());
  }
}

// Like HF's BpeBuilder: a merge whose parts or result are not tokens is an error, and a pair
// listed twice keeps its last rank (the merge map is built by inserting in order).
void add_merge(MergeMap& merges, const Vocab& vocab, std::string_view a, std::string_view b,
               uint32_t rank, const std::string& file, const std::string& field) {
  auto id_of = [&](std::string_view tok) {
    const auto it = vocab.find(tok);
    if (it == vocab.end())
      throw InputError(file, field, "merge token " + show(tok) + " is not in the vocabulary");
    return it->second;
  };
  const int32_t ia = id_of(a), ib = id_of(b);
  const int32_t merged = id_of(std::string(a) + std::string(b));
  merges[pair_key(ia, ib)] = Merge{rank, merged};
}

// merges.txt as HF reads it (BPE::read_file): lines split on '\n' with one "\r" before it
// dropped, lines starting with "#version" skipped, every other line exactly "a b".
MergeMap parse_merges_txt(std::string_view text, const Vocab& vocab, const std::string& file) {
  MergeMap merges;
  size_t line_no = 0;
  uint32_t rank = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    std::string_view line = text.substr(pos, end == std::string_view::npos ? end : end - pos);
    pos = end == std::string_view::npos ? text.size() : end + 1;
    ++line_no;
    if (end != std::string_view::npos && !line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.starts_with("#version")) continue;
    const std::string field = "line " + std::to_string(line_no);
    if (!is_valid_utf8(line)) throw InputError(file, field, "not valid UTF-8");
    const size_t sp = line.find(' ');
    if (sp == std::string_view::npos || line.find(' ', sp + 1) != std::string_view::npos)
      throw InputError(file, field,
                       "expected two tokens separated by one space, got " + show(line));
    add_merge(merges, vocab, line.substr(0, sp), line.substr(sp + 1), rank++, file, field);
  }
  return merges;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

// One normalizer step (HF normalizers NFC, Prepend and Replace with a literal pattern).
struct NormStep {
  enum class Kind { Nfc, Prepend, Replace } kind;
  std::string from, text;  // Prepend(text), Replace(from -> text)
};

// One pre-tokenizer step; each splits or rewrites every piece the previous steps made.
struct PreStep {
  enum class Kind { Split, ByteLevel, Metaspace } kind = Kind::Split;
  // Split: what happens to the matched text (HF's SplitDelimiterBehavior), and `invert`.
  enum class Behavior { Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous };
  Behavior behavior = Behavior::Isolated;
  bool invert = false;
  std::shared_ptr<const pcre2_code> regex;  // Split; ByteLevel with use_regex: GPT-2's
  bool add_prefix_space = false;            // ByteLevel
  std::string replacement;                  // Metaspace
  enum class Prepend { Never, First, Always } prepend = Prepend::Always;  // Metaspace
  bool split = false;                       // Metaspace: cut before each replacement
};

struct Tokenizer::Impl {
  Vocab vocab;                                     // token string -> id
  MergeMap merges;                                 // (left id, right id) -> rank, merged id
  std::array<int32_t, 256> byte_id{};              // the id of each single-byte token, or -1
  std::array<int32_t, 256> fallback_id{};          // the id of <0xNN>, or -1
  std::vector<AddedToken> added;                   // matched in the text before the regex
  std::unordered_map<int32_t, std::string> text_of_id;  // decoded bytes of every token
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> id_of_text;
  std::unordered_set<int32_t> special_ids;         // added tokens marked "special"
  std::optional<int32_t> unk_id;
  bool fuse_unk = false;
  bool ignore_merges = false;  // HF's option: a piece that is itself a token skips BPE
  bool byte_level = true;      // vocabulary in GPT-2's byte alphabet (else characters)
  bool byte_fallback = false;  // characters not in the vocabulary become <0xNN> tokens
  std::vector<NormStep> normalizer;
  std::vector<PreStep> pre;
  // Decoder: ByteLevel (byte_level_decoder) or the SentencePiece chain Replace / ByteFallback /
  // Fuse / Strip; strip_start leading copies of strip_text are cut from a decoded sequence.
  bool byte_level_decoder = true;
  bool decode_byte_fallback = false;
  std::vector<std::pair<std::string, std::string>> decode_replace;
  std::string strip_text;
  size_t strip_start = 0;
  int32_t size = 0;
  std::optional<int32_t> eos, bos;
  bool prepend_bos = false;

  void finish();
  std::string decode_token(const std::string& token) const;
};

namespace {

// <0xNN> -> NN, as HF's ByteFallback decoder reads it; -1 for any other text.
int byte_fallback_value(std::string_view tok) {
  if (tok.size() != 6 || !tok.starts_with("<0x") || tok[5] != '>') return -1;
  int v = 0;
  for (char c : tok.substr(3, 2)) {
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
}

std::string fallback_token(int b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", b);
  return buf;
}

}  // namespace

std::string Tokenizer::Impl::decode_token(const std::string& token) const {
  if (byte_level_decoder) return token_to_bytes(token);
  if (decode_byte_fallback) {
    const int b = byte_fallback_value(token);
    if (b >= 0) return std::string(1, static_cast<char>(b));
  }
  std::string out = token;
  for (const auto& [from, to] : decode_replace) replace_all(out, from, to);
  return out;
}

// Tables derived from vocab + added tokens. Decoding goes through the decoder for added tokens
// too, as HF's does.
void Tokenizer::Impl::finish() {
  const ByteMap& bm = byte_map();
  for (int b = 0; b < 256; ++b) {
    const auto it = vocab.find(bm.byte_to_utf8[b]);
    byte_id[b] = it == vocab.end() ? -1 : it->second;
    const auto fb = vocab.find(fallback_token(b));
    fallback_id[b] = fb == vocab.end() ? -1 : fb->second;
  }
  std::vector<std::pair<int32_t, const std::string*>> by_id;
  by_id.reserve(vocab.size() + added.size());
  for (const auto& [tok, id] : vocab) by_id.emplace_back(id, &tok);
  std::sort(by_id.begin(), by_id.end(),
            [](const auto& x, const auto& y) { return x.first != y.first ? x.first < y.first : *x.second < *y.second; });
  for (const AddedToken& t : added) by_id.emplace_back(t.id, &t.content);  // last wins below
  for (const auto& [id, tok] : by_id) text_of_id[id] = decode_token(*tok);
  std::unordered_set<int32_t> fallback_ids;
  if (decode_byte_fallback)
    for (int32_t id : fallback_id)
      if (id >= 0) fallback_ids.insert(id);
  for (const auto& [id, text] : text_of_id) {
    if (fallback_ids.contains(id)) continue;
    auto [it, fresh] = id_of_text.try_emplace(text, id);
    if (!fresh) it->second = std::min(it->second, id);  // lowest id for equal texts
  }
  // <0x61> decodes to "a" too; text lookups find the vocabulary's own "a" first.
  for (int32_t id : fallback_ids) {
    auto [it, fresh] = id_of_text.try_emplace(text_of_id[id], id);
    if (!fresh && fallback_ids.contains(it->second)) it->second = std::min(it->second, id);
  }
  for (const AddedToken& t : added) {
    id_of_text[decode_token(t.content)] = t.id;
    if (t.special) special_ids.insert(t.id);
  }
  for (const auto& entry : by_id) size = std::max(size, entry.first + 1);
  const auto eot = id_of_text.find(std::string_view("<|endoftext|>"));
  if (!eos && eot != id_of_text.end()) eos = eot->second;
}

namespace {

// ---------------------------------------------------------------------------------------------
// tokenizer.json

bool flag(const json& obj, const char* key, bool fallback, const std::string& file,
          const std::string& where) {
  if (!obj.contains(key) || obj[key].is_null()) return fallback;
  if (!obj[key].is_boolean())
    throw InputError(file, where + "." + key, "must be true or false, got " + show(obj[key]));
  return obj[key].get<bool>();
}

std::string string_or_empty(const json& obj, const char* key, const std::string& file,
                            const std::string& where) {
  if (!obj.contains(key) || obj[key].is_null()) return "";
  if (!obj[key].is_string())
    throw InputError(file, where + "." + key, "must be a string, got " + show(obj[key]));
  return obj[key].get<std::string>();
}

void check_supported_model(const json& model, const std::string& file) {
  if (string_or_empty(model, "type", file, "model") != "BPE" && model.contains("type"))
    throw InputError(file, "model.type", show(model["type"]) + " is not supported (BPE only)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (!string_or_empty(model, key, file, "model").empty())
      throw InputError(file, std::string("model.") + key, "must be empty for byte-level BPE");
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      !(model["dropout"].is_number() && model["dropout"].get<double>() == 0.0))
    throw InputError(file, "model.dropout", "BPE dropout is not supported, got " + show(model["dropout"]));
}

// A pipeline component by its "type", e.g. "NFC" for {"type": "NFC", ...}.
std::string component_name(const json& c) {
  if (c.is_object() && c.contains("type") && c["type"].is_string()) return show(c["type"]);
  return show(c);
}

const json* component(const json& root, const char* key) {
  return root.contains(key) && !root[key].is_null() ? &root[key] : nullptr;
}

// The steps of a component, a Sequence flattened: [c] for a single one.
std::vector<std::pair<const json*, std::string>> steps_of(const json& c, const char* list_key,
                                                          const std::string& where,
                                                          const std::string& file) {
  if (!c.is_object()) throw InputError(file, where, "must be an object, got " + show(c));
  if (string_or_empty(c, "type", file, where) != "Sequence") return {{&c, where}};
  if (!c.contains(list_key) || !c[list_key].is_array())
    throw InputError(file, where + "." + list_key, "must be an array");
  std::vector<std::pair<const json*, std::string>> out;
  for (size_t i = 0; i < c[list_key].size(); ++i) {
    auto inner = steps_of(c[list_key][i], list_key, where + "." + list_key + "[" + std::to_string(i) + "]", file);
    out.insert(out.end(), inner.begin(), inner.end());
  }
  return out;
}

// A literal {"String": s} pattern; a {"Regex": ...} one is named in the error.
std::string string_pattern(const json& step, const std::string& where, const std::string& file) {
  if (!step.contains("pattern") || !step["pattern"].is_object() || !step["pattern"].contains("String") ||
      !step["pattern"]["String"].is_string())
    throw InputError(file, where + ".pattern", "only {\"String\": ...} patterns are supported here");
  return step["pattern"]["String"].get<std::string>();
}

void read_normalizer(const json& root, Tokenizer::Impl& t, const std::string& file) {
  const json* norm = component(root, "normalizer");
  if (!norm) return;
  for (const auto& [step, where] : steps_of(*norm, "normalizers", "normalizer", file)) {
    const std::string type = string_or_empty(*step, "type", file, where);
    if (type == "NFC") {
      t.normalizer.push_back({NormStep::Kind::Nfc, "", ""});
    } else if (type == "Prepend") {
      t.normalizer.push_back({NormStep::Kind::Prepend, "", string_or_empty(*step, "prepend", file, where)});
    } else if (type == "Replace") {
      t.normalizer.push_back({NormStep::Kind::Replace, string_pattern(*step, where, file),
                              string_or_empty(*step, "content", file, where)});
    } else {
      throw InputError(file, where + ".type",
                       component_name(*step) + " is not supported (NFC, Prepend, Replace, Sequence)");
    }
  }
}

PreStep::Prepend prepend_scheme(const json& step, const std::string& where, const std::string& file) {
  if (!step.contains("prepend_scheme"))  // older files: add_prefix_space
    return flag(step, "add_prefix_space", true, file, where) ? PreStep::Prepend::Always
                                                              : PreStep::Prepend::Never;
  const std::string s = string_or_empty(step, "prepend_scheme", file, where);
  if (s == "first") return PreStep::Prepend::First;
  if (s == "always") return PreStep::Prepend::Always;
  if (s == "never") return PreStep::Prepend::Never;
  throw InputError(file, where + ".prepend_scheme", show(step["prepend_scheme"]) + " is not first, always or never");
}

void read_pre_tokenizer(const json& root, Tokenizer::Impl& t, const std::string& file) {
  const json* pre = component(root, "pre_tokenizer");
  t.byte_level = false;
  if (!pre) return;
  for (const auto& [step, where] : steps_of(*pre, "pretokenizers", "pre_tokenizer", file)) {
    const std::string type = string_or_empty(*step, "type", file, where);
    PreStep p;
    if (type == "ByteLevel") {
      p.kind = PreStep::Kind::ByteLevel;
      p.add_prefix_space = flag(*step, "add_prefix_space", true, file, where);
      if (flag(*step, "use_regex", true, file, where)) p.regex = gpt2_regex();
      t.byte_level = true;
    } else if (type == "Split") {
      p.kind = PreStep::Kind::Split;
      using B = PreStep::Behavior;
      static const std::pair<const char*, B> kBehaviors[] = {
          {"Isolated", B::Isolated}, {"Removed", B::Removed}, {"MergedWithPrevious", B::MergedWithPrevious},
          {"MergedWithNext", B::MergedWithNext}, {"Contiguous", B::Contiguous}};
      const std::string behavior = string_or_empty(*step, "behavior", file, where);
      const auto* known = std::find_if(std::begin(kBehaviors), std::end(kBehaviors),
                                       [&](const auto& b) { return behavior == b.first; });
      if (known == std::end(kBehaviors))
        throw InputError(file, where + ".behavior",
                         show((*step).value("behavior", json())) +
                             " is not supported (Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous)");
      p.behavior = known->second;
      p.invert = flag(*step, "invert", false, file, where);
      const json& pat = step->contains("pattern") ? (*step)["pattern"] : json();
      std::string error;
      if (pat.is_object() && pat.contains("Regex") && pat["Regex"].is_string())
        p.regex = compile_regex(translate_split_regex(pat["Regex"].get<std::string>()), 0, error);
      else if (pat.is_object() && pat.contains("String") && pat["String"].is_string())
        p.regex = compile_regex(pat["String"].get<std::string>(), PCRE2_LITERAL, error);
      else
        throw InputError(file, where + ".pattern", "expected {\"Regex\": ...} or {\"String\": ...}");
      if (!p.regex) throw InputError(file, where + ".pattern", "the regex " + error);
    } else if (type == "Metaspace") {
      p.kind = PreStep::Kind::Metaspace;
      p.replacement = string_or_empty(*step, "replacement", file, where);
      if (p.replacement.empty()) p.replacement = "\xE2\x96\x81";  // U+2581
      p.prepend = prepend_scheme(*step, where, file);
      p.split = flag(*step, "split", true, file, where);
    } else {
      throw InputError(file, where + ".type",
                       component_name(*step) + " is not supported (ByteLevel, Split, Metaspace, Sequence)");
    }
    // A ByteLevel step without prefix space or regex only marks the vocabulary as byte-level.
    if (p.kind == PreStep::Kind::ByteLevel && !p.add_prefix_space && !p.regex) continue;
    t.pre.push_back(std::move(p));
  }
}

void read_decoder(const json& root, Tokenizer::Impl& t, const std::string& file) {
  const json* dec = component(root, "decoder");
  t.byte_level_decoder = t.byte_level;
  if (!dec) return;
  for (const auto& [step, where] : steps_of(*dec, "decoders", "decoder", file)) {
    const std::string type = string_or_empty(*step, "type", file, where);
    if (type == "ByteLevel") {
      t.byte_level_decoder = true;
    } else if (type == "Replace") {
      t.decode_replace.emplace_back(string_pattern(*step, where, file),
                                    string_or_empty(*step, "content", file, where));
    } else if (type == "ByteFallback") {
      t.decode_byte_fallback = true;
    } else if (type == "Fuse") {
      // decode() joins tokens anyway
    } else if (type == "Strip") {
      t.strip_text = string_or_empty(*step, "content", file, where);
      if (!(*step).contains("start") || !(*step)["start"].is_number_unsigned())
        throw InputError(file, where + ".start", "must be a count");
      t.strip_start = (*step)["start"].get<size_t>();
      if ((*step).value("stop", 0) != 0)
        throw InputError(file, where + ".stop", "only stripping at the start is supported");
    } else if (type == "Metaspace") {
      std::string r = string_or_empty(*step, "replacement", file, where);
      t.decode_replace.emplace_back(r.empty() ? "\xE2\x96\x81" : r, " ");
      if (prepend_scheme(*step, where, file) != PreStep::Prepend::Never) t.strip_text = " ", t.strip_start = 1;
    } else {
      throw InputError(file, where + ".type",
                       component_name(*step) +
                           " is not supported (ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip)");
    }
  }
}

// BOS as the post_processor adds it: a TemplateProcessing whose "single" template starts with a
// special token. ByteLevel post-processors only trim offsets.
void read_post_processor(const json& root, Tokenizer::Impl& t, const std::string& file) {
  const json* post = component(root, "post_processor");
  if (!post) return;
  for (const auto& [step, where] : steps_of(*post, "processors", "post_processor", file)) {
    const std::string type = string_or_empty(*step, "type", file, where);
    if (type == "ByteLevel") continue;
    if (type != "TemplateProcessing")
      throw InputError(file, where + ".type",
                       component_name(*step) + " is not supported (TemplateProcessing, ByteLevel, Sequence)");
    const json& single = step->value("single", json());
    if (!single.is_array() || single.empty())
      throw InputError(file, where + ".single", "must be a non-empty array");
    const json& first = single[0];
    if (!first.is_object() || !first.contains("SpecialToken")) continue;
    const json& sp = first["SpecialToken"];
    if (!sp.is_object() || !sp.contains("id") || !sp["id"].is_string())
      throw InputError(file, where + ".single[0].SpecialToken.id", "must be a string");
    const std::string name = sp["id"].get<std::string>();
    const json& specials = step->value("special_tokens", json::object());
    if (!specials.contains(name) || !specials[name].contains("ids") || !specials[name]["ids"].is_array() ||
        specials[name]["ids"].size() != 1)
      throw InputError(file, where + ".special_tokens", show(std::string_view(name)) + " must have exactly one id");
    t.bos = parse_token_id(specials[name]["ids"][0], file, where + ".special_tokens." + name + ".ids[0]");
    t.prepend_bos = true;
  }
}

void read_merges_json(const json& model, Tokenizer::Impl& t, const std::string& file) {
  if (!model.contains("merges") || model["merges"].is_null()) return;
  const json& merges = model["merges"];
  if (!merges.is_array())
    throw InputError(file, "model.merges", "must be an array, got " + show(merges));
  t.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string field = "model.merges[" + std::to_string(i) + "]";
    const json& m = merges[i];
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        throw InputError(file, field, "expected two tokens separated by one space, got " + show(m));
      add_merge(t.merges, t.vocab, std::string_view(s).substr(0, sp),
                std::string_view(s).substr(sp + 1), static_cast<uint32_t>(i), file, field);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      add_merge(t.merges, t.vocab, m[0].get_ref<const std::string&>(),
                m[1].get_ref<const std::string&>(), static_cast<uint32_t>(i), file, field);
    } else {
      throw InputError(file, field, "expected \"a b\" or [\"a\", \"b\"], got " + show(m));
    }
  }
}

// The id HF gives an added token: its vocabulary id if its text is a token, else the next id
// after the vocabulary and the added tokens so far (AddedVocabulary::add_tokens). The file's
// "id" field is not used, only checked: HF ignores it too (and logs a warning if it differs).
int32_t added_token_id(const Tokenizer::Impl& t, const std::string& content, const std::string& file,
                       const std::string& where) {
  for (const AddedToken& a : t.added)
    if (a.content == content) return a.id;
  const auto it = t.vocab.find(content);
  if (it != t.vocab.end()) return it->second;
  const auto vocab_count = static_cast<int64_t>(t.vocab.size());
  int64_t id = vocab_count;
  if (!t.added.empty()) {
    int64_t max_id = 0;
    for (const AddedToken& a : t.added) max_id = std::max<int64_t>(max_id, a.id);
    if (max_id >= vocab_count || vocab_count == 0) id = max_id + 1;
  }
  if (id > kMaxTokenId) throw InputError(file, where, "too many tokens for 32-bit ids");
  return static_cast<int32_t>(id);
}

AddedToken read_added_token(const Tokenizer::Impl& t, const json& a, const std::string& file,
                            const std::string& where) {
  if (!a.is_object() || !a.contains("id") || !a.contains("content") || !a["content"].is_string())
    throw InputError(file, where, "expected {\"id\": int, \"content\": string, ...}, got " + show(a));
  parse_token_id(a["id"], file, where + ".id");
  if (flag(a, "single_word", false, file, where))
    throw InputError(file, where + ".single_word", "single_word added tokens are not supported");
  AddedToken tok{a["content"].get<std::string>(), 0};
  tok.id = added_token_id(t, tok.content, file, where);
  tok.lstrip = flag(a, "lstrip", false, file, where);
  tok.rstrip = flag(a, "rstrip", false, file, where);
  tok.special = flag(a, "special", false, file, where);
  tok.normalized = flag(a, "normalized", !tok.special, file, where);
  return tok;
}

void read_added_tokens(const json& root, Tokenizer::Impl& t, const std::string& file) {
  if (!root.contains("added_tokens") || root["added_tokens"].is_null()) return;
  const json& list = root["added_tokens"];
  if (!list.is_array())
    throw InputError(file, "added_tokens", "must be an array, got " + show(list));
  for (size_t i = 0; i < list.size(); ++i) {
    AddedToken tok = read_added_token(t, list[i], file, "added_tokens[" + std::to_string(i) + "]");
    if (tok.content.empty()) continue;  // HF skips these
    const auto same = std::find_if(t.added.begin(), t.added.end(),
                                   [&](const AddedToken& a) { return a.content == tok.content; });
    if (same != t.added.end())
      *same = std::move(tok);  // a repeated text keeps its id, takes the new flags
    else
      t.added.push_back(std::move(tok));
  }
}

void read_unk(const json& model, Tokenizer::Impl& t, const std::string& file) {
  const std::string unk = string_or_empty(model, "unk_token", file, "model");
  t.fuse_unk = flag(model, "fuse_unk", false, file, "model");
  if (unk.empty()) return;
  const auto it = t.vocab.find(unk);
  if (it == t.vocab.end())
    throw InputError(file, "model.unk_token", show(std::string_view(unk)) + " is not in the vocabulary");
  t.unk_id = it->second;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string(), "", "cannot open the file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw InputError(path.string(), "", "read error");
  return std::move(ss).str();
}

// ---------------------------------------------------------------------------------------------
// Encoding

// Start of the run of whitespace that ends at `end` (not before `floor`); text is valid UTF-8.
size_t white_space_start(std::string_view text, size_t floor, size_t end) {
  while (end > floor) {
    size_t b = end - 1;
    while (b > floor && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
    const Utf8Step st = utf8_step(text, b);
    if (st.len <= 0 || !is_white_space(st.cp)) break;
    end = b;
  }
  return end;
}

size_t white_space_end(std::string_view text, size_t begin) {
  while (begin < text.size()) {
    const Utf8Step st = utf8_step(text, begin);
    if (st.len <= 0 || !is_white_space(st.cp)) break;
    begin += st.len;
  }
  return begin;
}

struct Segment {
  size_t begin, end;
  int32_t added_id;  // -1: ordinary text
};

// HF's AddedVocabulary::find_matches over one text segment: leftmost-longest matches of the
// given tokens, widened by lstrip / rstrip over whitespace. As in HF, a token that starts in
// whitespace the previous token's rstrip took is still a match, cut to what is left of it,
// and dropped if nothing is.
void split_on_added(std::string_view text, Segment seg, std::span<const AddedToken* const> tokens,
                    std::vector<Segment>& out) {
  const std::string_view window = text.substr(0, seg.end);
  std::vector<size_t> next;  // next occurrence of each token at or after pos
  for (const AddedToken* tok : tokens) next.push_back(window.find(tok->content, seg.begin));
  size_t pos = seg.begin, done = seg.begin;
  for (;;) {
    size_t best = std::string_view::npos, best_k = 0;
    for (size_t k = 0; k < tokens.size(); ++k) {
      if (next[k] != std::string_view::npos && next[k] < pos)
        next[k] = window.find(tokens[k]->content, pos);
      if (next[k] == std::string_view::npos) continue;
      if (next[k] < best || (next[k] == best && tokens[k]->content.size() > tokens[best_k]->content.size()))
        best = next[k], best_k = k;
    }
    if (best == std::string_view::npos) break;
    const AddedToken& tok = *tokens[best_k];
    pos = best + tok.content.size();  // matches do not see the whitespace that rstrip takes
    size_t start = best, stop = pos;
    if (tok.lstrip) start = std::max(white_space_start(window, seg.begin, start), done);
    if (tok.rstrip) stop = white_space_end(window, stop);
    if (done < start) out.push_back({done, start, -1});
    if (start < stop) out.push_back({start, stop, tok.id});  // HF drops emptied splits
    done = stop;  // after an overlapping match this re-reads text, as HF does
  }
  if (done < seg.end) out.push_back({done, seg.end, -1});
}

// A piece of text on its way to BPE, or an added token.
struct Piece {
  std::string text;
  int32_t added_id;  // -1: ordinary text
  bool at_start;     // begins at offset 0 of the input (Metaspace prepend_scheme "first")
};

std::string normalize(const Tokenizer::Impl& t, std::string s) {
  for (const NormStep& n : t.normalizer) {
    switch (n.kind) {
      case NormStep::Kind::Nfc:
        s = nfc(s);
        break;
      case NormStep::Kind::Prepend:
        if (!s.empty()) s.insert(0, n.text);
        break;
      case NormStep::Kind::Replace:
        replace_all(s, n.from, n.text);
        break;
    }
  }
  return s;
}

// HF's split_off_matches by behaviour; spans are adjacent views of one string, in order.
std::vector<std::string_view> merge_split(const std::vector<std::pair<std::string_view, bool>>& spans,
                                          PreStep::Behavior behavior) {
  using B = PreStep::Behavior;
  auto join = [](std::string_view a, std::string_view b) {  // adjacent views of one string
    return std::string_view(a.data(), a.size() + b.size());
  };
  std::vector<std::string_view> out;
  bool previous_match = false;
  switch (behavior) {
    case B::Isolated:
      for (const auto& s : spans) out.push_back(s.first);
      break;
    case B::Removed:
      for (const auto& s : spans)
        if (!s.second) out.push_back(s.first);
      break;
    case B::MergedWithPrevious:
    case B::Contiguous:
      for (const auto& [piece, match] : spans) {
        const bool merge = behavior == B::Contiguous ? match == previous_match && !out.empty()
                                                     : match && !previous_match && !out.empty();
        if (merge)
          out.back() = join(out.back(), piece);
        else
          out.push_back(piece);
        previous_match = match;
      }
      break;
    case B::MergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->second && !previous_match && !out.empty())
          out.back() = join(it->first, out.back());
        else
          out.push_back(it->first);
        previous_match = it->second;
      }
      std::reverse(out.begin(), out.end());
      break;
  }
  return out;
}

void apply_pre_step(const PreStep& p, pcre2_match_data* md, Piece in, std::vector<Piece>& out) {
  switch (p.kind) {
    case PreStep::Kind::ByteLevel:
      if (p.add_prefix_space && !in.text.starts_with(' ')) in.text.insert(0, 1, ' ');
      [[fallthrough]];
    case PreStep::Kind::Split: {
      if (!p.regex) {
        out.push_back(std::move(in));
        return;
      }
      std::vector<std::pair<std::string_view, bool>> spans;
      for_each_regex_piece(p.regex.get(), md, in.text, [&](std::string_view piece, bool matched) {
        spans.emplace_back(piece, matched != p.invert);
      });
      bool first = in.at_start;
      for (std::string_view piece : merge_split(spans, p.behavior)) {
        out.push_back({std::string(piece), -1, first});
        first = false;
      }
      return;
    }
    case PreStep::Kind::Metaspace: {
      replace_all(in.text, " ", p.replacement);
      const bool prepend = p.prepend == PreStep::Prepend::Always ||
                           (p.prepend == PreStep::Prepend::First && in.at_start);
      if (prepend && !in.text.starts_with(p.replacement)) in.text.insert(0, p.replacement);
      if (!p.split) {
        out.push_back(std::move(in));
        return;
      }
      // MergedWithNext: every replacement starts a new piece
      size_t begin = 0;
      for (size_t pos = in.text.find(p.replacement, 1); pos != std::string::npos;
           pos = in.text.find(p.replacement, pos + 1)) {
        out.push_back({in.text.substr(begin, pos - begin), -1, in.at_start && begin == 0});
        begin = pos;
      }
      out.push_back({in.text.substr(begin), -1, in.at_start && begin == 0});
      return;
    }
  }
}

// A pre-tokenizer that is one regex split and changes no text (GPT-2's ByteLevel, or Llama 3's
// Split followed by a regex-less ByteLevel) can hand out views of the text: no copies.
const pcre2_code* plain_split(const Tokenizer::Impl& t) {
  if (t.pre.size() != 1 || !t.pre[0].regex) return nullptr;
  const PreStep& p = t.pre[0];
  const bool isolated = p.behavior == PreStep::Behavior::Isolated && !p.invert;
  return (p.kind == PreStep::Kind::Split && isolated) || (p.kind == PreStep::Kind::ByteLevel && !p.add_prefix_space)
             ? p.regex.get()
             : nullptr;
}

// HF's pipeline on valid UTF-8: added tokens that match the raw text, then the normalizer on
// each remaining segment, `normalized` added tokens in its result, then the pre-tokenizer steps.
// Calls fn(piece, added_id) for every piece in order, added_id -1 for BPE pieces.
template <typename Fn>
void for_each_piece(const Tokenizer::Impl& t, std::string_view text, Fn&& fn) {
  std::vector<const AddedToken*> raw, normalized;
  for (const AddedToken& a : t.added) (a.normalized ? normalized : raw).push_back(&a);
  std::vector<Segment> first;
  split_on_added(text, {0, text.size(), -1}, raw, first);
  const pcre2_code* fast = plain_split(t);
  MatchData match;
  std::vector<Piece> work, next;
  std::vector<Segment> second;
  std::string norm;
  for (const Segment& s : first) {
    const std::string_view seg = text.substr(s.begin, s.end - s.begin);
    if (s.added_id >= 0) {
      fn(seg, s.added_id);
      continue;
    }
    std::string_view ntext = seg;
    if (!t.normalizer.empty()) ntext = norm = normalize(t, std::string(seg));
    second.clear();
    split_on_added(ntext, {0, ntext.size(), -1}, normalized, second);
    for (const Segment& n : second) {
      const std::string_view sub = ntext.substr(n.begin, n.end - n.begin);
      if (n.added_id >= 0) {
        fn(sub, n.added_id);
        continue;
      }
      if (fast) {
        for_each_regex_piece(fast, match.md, sub, [&](std::string_view piece, bool) { fn(piece, -1); });
        continue;
      }
      work.assign(1, Piece{std::string(sub), -1, s.begin == 0 && n.begin == 0});
      for (const PreStep& p : t.pre) {
        next.clear();
        for (Piece& w : work) apply_pre_step(p, match.md, std::move(w), next);
        work.swap(next);
      }
      for (const Piece& w : work)
        if (!w.text.empty()) fn(std::string_view(w.text), -1);
    }
  }
}

// BPE of one piece, merge for merge as HF's Word::merge_all: a heap of candidate pairs ordered
// by (rank, position); a popped pair is applied only if its two symbols still merge into the
// same id. Scratch buffers and a word cache live for one encode() call.
class PieceEncoder {
 public:
  explicit PieceEncoder(const Tokenizer::Impl& t) : t_(t) {}

  void encode(std::string_view piece, std::vector<int32_t>& out) {
    const bool cacheable = piece.size() <= kMaxCachedBytes;
    if (cacheable) {
      const auto hit = cache_.find(piece);
      if (hit != cache_.end()) {
        out.insert(out.end(), hit->second.begin(), hit->second.end());
        return;
      }
    }
    const size_t first = out.size();
    if (!whole_token(piece, out)) {
      init_symbols(piece);
      merge_all();
      for (const Symbol& s : symbols_)
        if (s.len > 0) out.push_back(s.id);
    }
    if (cacheable) cache_.emplace(std::string(piece), std::vector<int32_t>(out.begin() + first, out.end()));
  }

 private:
  static constexpr size_t kMaxCachedBytes = 256;
  struct Symbol {
    int32_t id, prev, next, len;
  };
  struct Candidate {
    uint32_t rank;
    int32_t pos, new_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };

  bool whole_token(std::string_view piece, std::vector<int32_t>& out) const {
    if (!t_.ignore_merges) return false;
    const auto it = t_.byte_level ? t_.vocab.find(bytes_to_token(piece)) : t_.vocab.find(piece);
    if (it == t_.vocab.end()) return false;
    out.push_back(it->second);
    return true;
  }

  void add_symbol(int32_t id, int32_t len) {
    const auto n = static_cast<int32_t>(symbols_.size());
    if (n > 0) symbols_.back().next = n;
    symbols_.push_back({id, n - 1, -1, len});
  }

  // One symbol per byte (byte-level) or character whose token exists; a missing one becomes its
  // <0xNN> byte tokens under byte_fallback (when all exist), else the unk token if there is one
  // (runs fused under fuse_unk), else it is dropped, as in HF's merge_word.
  void init_symbols(std::string_view piece) {
    symbols_.clear();
    int32_t pending_unk = 0;
    auto known = [&](int32_t id, int32_t len) {
      if (pending_unk) add_symbol(*t_.unk_id, pending_unk), pending_unk = 0;
      add_symbol(id, len);
    };
    for (size_t i = 0; i < piece.size();) {
      int32_t id = -1, len = 1;
      if (t_.byte_level) {
        id = t_.byte_id[static_cast<unsigned char>(piece[i])];
      } else {
        len = std::max(utf8_step(piece, i).len, 1);
        const auto it = t_.vocab.find(piece.substr(i, len));
        if (it != t_.vocab.end()) id = it->second;
      }
      const std::string_view ch = piece.substr(i, len);
      i += len;
      if (id >= 0) {
        known(id, len);
        continue;
      }
      if (t_.byte_fallback &&
          std::all_of(ch.begin(), ch.end(), [&](char c) { return t_.fallback_id[static_cast<unsigned char>(c)] >= 0; })) {
        for (char c : ch) known(t_.fallback_id[static_cast<unsigned char>(c)], 1);
        continue;
      }
      if (t_.unk_id) {
        if (pending_unk && !t_.fuse_unk) add_symbol(*t_.unk_id, pending_unk), pending_unk = 0;
        pending_unk += len;
      }
    }
    if (pending_unk) add_symbol(*t_.unk_id, pending_unk);
  }

  void push_pair(int32_t left) {
    const Symbol& l = symbols_[left];
    if (l.next < 0) return;
    const auto it = t_.merges.find(pair_key(l.id, symbols_[l.next].id));
    if (it == t_.merges.end()) return;
    heap_.push_back({it->second.rank, left, it->second.new_id});
    std::push_heap(heap_.begin(), heap_.end(), std::greater<>{});
  }

  void merge_all() {
    heap_.clear();
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols_.size()); ++i) push_pair(i);
    while (!heap_.empty()) {
      std::pop_heap(heap_.begin(), heap_.end(), std::greater<>{});
      const Candidate top = heap_.back();
      heap_.pop_back();
      Symbol& l = symbols_[top.pos];
      if (l.len == 0 || l.next < 0) continue;
      Symbol& r = symbols_[l.next];
      const auto it = t_.merges.find(pair_key(l.id, r.id));
      if (it == t_.merges.end() || it->second.new_id != top.new_id) continue;
      l.id = top.new_id;
      l.len += r.len;
      l.next = r.next;
      r.len = 0;
      if (l.next >= 0) symbols_[l.next].prev = top.pos;
      if (l.prev >= 0) push_pair(l.prev);
      push_pair(top.pos);
    }
  }

  const Tokenizer::Impl& t_;
  std::vector<Symbol> symbols_;
  std::vector<Candidate> heap_;
  std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

// Text as HF would see it: valid UTF-8 as is, anything else through Python's errors="replace".
std::string_view usable_text(std::string_view utf8, std::string& storage) {
  if (is_valid_utf8(utf8)) return utf8;
  storage = replace_invalid_utf8(utf8);
  return storage;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Loading

namespace {

// The id of a token named in tokenizer_config.json: an added token's or the vocabulary's.
std::optional<int32_t> named_token(const Tokenizer::Impl& t, const json& v, const std::string& file,
                                   const std::string& field) {
  if (v.is_null()) return std::nullopt;
  const json* content = &v;
  if (v.is_object() && v.contains("content")) content = &v["content"];
  if (!content->is_string())
    throw InputError(file, field, "expected a token string or {\"content\": ...}, got " + show(v));
  const std::string& text = content->get_ref<const std::string&>();
  for (const AddedToken& a : t.added)
    if (a.content == text) return a.id;
  const auto it = t.vocab.find(text);
  if (it == t.vocab.end())
    throw InputError(file, field, show(std::string_view(text)) + " is not a token of the tokenizer");
  return it->second;
}

// tokenizer_config.json: bos_token / eos_token name the tokens, add_bos_token says whether
// encoding for a model prepends BOS (it overrides the post_processor, as transformers does).
void apply_tokenizer_config(Tokenizer::Impl& t, std::string_view text, const std::string& file) {
  const json root = parse_json(text, file);
  if (!root.is_object()) throw InputError(file, "", "must be a JSON object, got " + show(root));
  if (root.contains("bos_token")) t.bos = named_token(t, root["bos_token"], file, "bos_token");
  if (root.contains("eos_token")) t.eos = named_token(t, root["eos_token"], file, "eos_token");
  if (root.contains("add_bos_token") && !root["add_bos_token"].is_null()) {
    if (!root["add_bos_token"].is_boolean())
      throw InputError(file, "add_bos_token", "must be true or false, got " + show(root["add_bos_token"]));
    t.prepend_bos = root["add_bos_token"].get<bool>();
  }
  if (t.prepend_bos && !t.bos)
    throw InputError(file, "add_bos_token", "is true but the tokenizer has no BOS token (bos_token)");
}

}  // namespace

Tokenizer Tokenizer::from_strings(std::string_view vocab_json_text, std::string_view merges_text,
                                  const std::string& vocab_name, const std::string& merges_name,
                                  std::string_view config_text, const std::string& config_name) {
  auto t = std::make_shared<Impl>();
  t->vocab = parse_vocab(parse_json(vocab_json_text, vocab_name), vocab_name, "");
  t->merges = parse_merges_txt(merges_text, t->vocab, merges_name);
  PreStep gpt2_split;
  gpt2_split.kind = PreStep::Kind::ByteLevel;
  gpt2_split.regex = gpt2_regex();
  t->pre.push_back(std::move(gpt2_split));
  // HF registers <|endoftext|> as GPT-2's special token (eos, bos and unk of GPT2Tokenizer);
  // GPT-2 does not prepend it unless asked.
  const auto eot = t->vocab.find(std::string_view("<|endoftext|>"));
  if (eot != t->vocab.end()) {
    t->added.push_back({eot->first, eot->second});
    t->added.back().special = true;
    t->bos = eot->second;
  }
  if (!config_text.empty()) apply_tokenizer_config(*t, config_text, config_name);
  t->finish();
  return Tokenizer(std::move(t));
}

Tokenizer Tokenizer::from_tokenizer_json_string(std::string_view json_text, const std::string& name,
                                                std::string_view config_text,
                                                const std::string& config_name) {
  const json root = parse_json(json_text, name);
  if (!root.is_object()) throw InputError(name, "", "must be a JSON object, got " + show(root));
  if (!root.contains("model") || !root["model"].is_object())
    throw InputError(name, "model", "missing or not an object");
  const json& model = root["model"];
  check_supported_model(model, name);
  auto t = std::make_shared<Impl>();
  read_normalizer(root, *t, name);
  read_pre_tokenizer(root, *t, name);
  read_decoder(root, *t, name);
  if (!model.contains("vocab")) throw InputError(name, "model.vocab", "missing");
  t->vocab = parse_vocab(model["vocab"], name, "model.vocab.");
  read_merges_json(model, *t, name);
  read_added_tokens(root, *t, name);
  read_unk(model, *t, name);
  read_post_processor(root, *t, name);
  t->ignore_merges = flag(model, "ignore_merges", false, name, "model");
  t->byte_fallback = flag(model, "byte_fallback", false, name, "model");
  if (!config_text.empty()) {
    apply_tokenizer_config(*t, config_text, config_name);
  } else if (!t->bos) {  // no config: GPT-2's convention, <|endoftext|> is BOS when asked for
    const auto eot = t->vocab.find(std::string_view("<|endoftext|>"));
    if (eot != t->vocab.end()) t->bos = eot->second;
  }
  t->finish();
  return Tokenizer(std::move(t));
}

Tokenizer Tokenizer::from_files(const std::filesystem::path& vocab_json,
                                const std::filesystem::path& merges_txt,
                                const std::optional<std::filesystem::path>& config_json) {
  const std::string vocab = read_file(vocab_json);  // vocab first: its errors come first
  const std::string config = config_json ? read_file(*config_json) : std::string();
  return from_strings(vocab, read_file(merges_txt), vocab_json.string(), merges_txt.string(), config,
                      config_json ? config_json->string() : std::string("tokenizer_config.json"));
}

Tokenizer Tokenizer::from_tokenizer_json(const std::filesystem::path& tokenizer_json,
                                         const std::optional<std::filesystem::path>& config_json) {
  const std::string config = config_json ? read_file(*config_json) : std::string();
  return from_tokenizer_json_string(read_file(tokenizer_json), tokenizer_json.string(), config,
                                    config_json ? config_json->string() : std::string("tokenizer_config.json"));
}

Tokenizer Tokenizer::from_model_dir(const std::filesystem::path& dir) {
  const auto vocab = dir / "vocab.json", merges = dir / "merges.txt", tj = dir / "tokenizer.json";
  std::optional<std::filesystem::path> config;
  if (std::filesystem::is_regular_file(dir / "tokenizer_config.json")) config = dir / "tokenizer_config.json";
  if (std::filesystem::is_regular_file(vocab) && std::filesystem::is_regular_file(merges))
    return from_files(vocab, merges, config);
  if (std::filesystem::is_regular_file(tj)) return from_tokenizer_json(tj, config);
  throw InputError(dir.string(), "",
                   "no tokenizer: expected vocab.json + merges.txt or tokenizer.json in this folder");
}

// ---------------------------------------------------------------------------------------------
// Use

std::vector<int32_t> Tokenizer::encode(std::string_view utf8) const {
  std::string storage;
  const std::string_view text = usable_text(utf8, storage);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  PieceEncoder bpe(*impl_);
  for_each_piece(*impl_, text, [&](std::string_view piece, int32_t added_id) {
    if (added_id >= 0)
      ids.push_back(added_id);
    else
      bpe.encode(piece, ids);
  });
  return ids;
}

std::vector<int32_t> Tokenizer::encode_for_model(std::string_view utf8,
                                                 std::optional<bool> prepend_bos) const {
  std::vector<int32_t> ids = encode(utf8);
  if (prepend_bos.value_or(prepends_bos())) {
    if (!impl_->bos)
      throw InputError("", "prepend_bos", "the tokenizer has no BOS token; use prepend_bos = false");
    ids.insert(ids.begin(), *impl_->bos);
  }
  return ids;
}

std::vector<std::string> Tokenizer::pretokenize(std::string_view utf8) const {
  std::string storage;
  std::vector<std::string> pieces;
  for_each_piece(*impl_, usable_text(utf8, storage),
                 [&](std::string_view piece, int32_t) { pieces.emplace_back(piece); });
  return pieces;
}

std::string Tokenizer::token_text(int32_t id) const {
  const auto it = impl_->text_of_id.find(id);
  if (it == impl_->text_of_id.end())
    throw InputError("", "token id",
                     std::to_string(id) + " is not in the vocabulary (size " +
                         std::to_string(impl_->size) + ")");
  return it->second;
}

bool Tokenizer::has_token(int32_t id) const { return impl_->text_of_id.contains(id); }

std::string Tokenizer::display_text(int32_t id) const {
  const auto it = impl_->text_of_id.find(id);
  return it == impl_->text_of_id.end() ? "<id " + std::to_string(id) + ">" : it->second;
}

namespace {
// What the Strip decoder removes from the start of a decoded sequence.
std::string strip_leading(const std::string& out, const std::string& strip, size_t times) {
  size_t cut = 0;
  for (size_t k = 0; k < times && !strip.empty() && out.compare(cut, strip.size(), strip) == 0; ++k)
    cut += strip.size();
  return out.substr(cut);
}
}  // namespace

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string out;
  for (int32_t id : ids)
    if (!skip_special_tokens || !impl_->special_ids.contains(id)) out += token_text(id);
  return strip_leading(out, impl_->strip_text, impl_->strip_start);
}

std::string Tokenizer::decode_for_display(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) out += display_text(id);
  return strip_leading(out, impl_->strip_text, impl_->strip_start);
}

int32_t Tokenizer::vocab_size() const { return impl_->size; }

std::optional<int32_t> Tokenizer::token_id(std::string_view token_text) const {
  const auto it = impl_->id_of_text.find(token_text);
  if (it == impl_->id_of_text.end()) return std::nullopt;
  return it->second;
}

std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos; }

std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }

bool Tokenizer::prepends_bos() const { return prepend_bos_.value_or(impl_->prepend_bos); }

Tokenizer Tokenizer::with_prepend_bos(bool prepend) const {
  Tokenizer t(impl_);
  t.prepend_bos_ = prepend;
  return t;
}

std::vector<std::pair<uint8_t, std::string>> gpt2_byte_alphabet() {
  // Images in code-point order are exactly GPT-2's numbering.
  const ByteMap& bm = byte_map();
  std::vector<std::pair<uint8_t, std::string>> out;
  for (size_t cp = 0; cp < bm.cp_to_byte.size(); ++cp)
    if (bm.cp_to_byte[cp] >= 0) {
      const auto b = static_cast<uint8_t>(bm.cp_to_byte[cp]);
      out.emplace_back(b, bm.byte_to_utf8[b]);
    }
  return out;
}

}  // namespace causeway
