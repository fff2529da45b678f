// JSONL prompt pairs: the file format is described in prompt_pairs.h. Parsing checks everything
// a run would trip over later (token ranges, single-token answers, answer_pos inside the prompt)
// so that the message can still name the line and key.
#include "data/prompt_pairs.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "model/tokenizer.h"

namespace causeway {

namespace {

// Ordered, so that named positions keep the order the line gives them.
using json = nlohmann::ordered_json;

// A JSON value as it appears in the file, shortened, for "got ..." messages.
std::string show(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

std::string describe(const json& v) { return std::string(v.type_name()) + " " + show(v); }

std::string show_ids(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i == 8 && ids.size() > 10) {
      s += ", ... (" + std::to_string(ids.size()) + " tokens)";
      break;
    }
    s += (i ? ", " : "") + std::to_string(ids[i]);
  }
  return s + "]";
}

// Parses one line's object; every failure names the file, the line and the key.
class LineParser {
 public:
  LineParser(const std::string& source, int line, const Tokenizer* tok)
      : source_(source), line_(line), tok_(tok) {}

  [[noreturn]] void fail(const std::string& key, const std::string& detail) const {
    throw InputError(source_, "line " + std::to_string(line_) + (key.empty() ? "" : ": " + key),
                     detail);
  }

  PromptPair parse(const json& obj) const {
    if (!obj.is_object()) fail("", "expected a JSON object, got " + describe(obj));
    PromptPair p;
    p.line = line_;
    parse_prompt(obj, "clean", p.clean_text, p.clean);
    parse_prompt(obj, "corrupted", p.corrupted_text, p.corrupted);
    p.answers = parse_answers(obj, "answer");
    p.wrongs = parse_answers(obj, "wrong");
    for (int32_t w : p.wrongs)
      if (std::find(p.answers.begin(), p.answers.end(), w) != p.answers.end())
        fail("wrong", "token " + std::to_string(w) +
                          " is also an answer; the logit difference would always be zero");
    if (auto it = obj.find("answer_pos"); it != obj.end()) p.answer_pos = parse_answer_pos(*it, p);
    if (auto it = obj.find("positions"); it != obj.end()) p.positions = parse_positions(*it, p);
    return p;
  }

 private:
  const json& require(const json& obj, const std::string& key) const {
    auto it = obj.find(key);
    if (it == obj.end())
      fail(key, "missing; every line needs clean, corrupted, answer and wrong");
    return *it;
  }

  int32_t parse_id(const json& v, const std::string& key) const {
    if (!v.is_number_integer()) fail(key, "expected an integer token id, got " + describe(v));
    if (!v.is_number_unsigned() && v.get<int64_t>() < 0) fail(key, "token id " + show(v) + " is negative");
    const uint64_t id = v.get<uint64_t>();
    if (tok_ && id >= static_cast<uint64_t>(tok_->vocab_size()))
      fail(key, "token id " + show(v) + " is outside the tokenizer's vocabulary (0.." +
                    std::to_string(tok_->vocab_size() - 1) + ")");
    if (id > static_cast<uint64_t>(std::numeric_limits<int32_t>::max()))
      fail(key, "token id " + show(v) + " is too large for a token id");
    return static_cast<int32_t>(id);
  }

  std::vector<int32_t> parse_ids(const json& arr, const std::string& key) const {
    std::vector<int32_t> ids;
    for (size_t i = 0; i < arr.size(); ++i)
      ids.push_back(parse_id(arr[i], key + "[" + std::to_string(i) + "]"));
    return ids;
  }

  // `key` is a text or an id array; `key`_ids optionally gives the ids of a text prompt.
  void parse_prompt(const json& obj, const std::string& key, std::string& text,
                    std::vector<int32_t>& ids) const {
    const json& v = require(obj, key);
    const std::string ids_key = key + "_ids";
    std::optional<std::vector<int32_t>> given;
    if (auto it = obj.find(ids_key); it != obj.end()) {
      if (!it->is_array()) fail(ids_key, "expected an array of token ids, got " + describe(*it));
      given = parse_ids(*it, ids_key);
    }
    if (v.is_array()) {
      ids = parse_ids(v, key);
      if (given && *given != ids)
        fail(ids_key, "gives " + show_ids(*given) + " but " + key + " gives " + show_ids(ids));
    } else if (v.is_string()) {
      text = v.get<std::string>();
      if (text.empty()) fail(key, "empty prompt");
      if (tok_) {
        ids = tok_->encode_for_model(text);  // BOS first when the tokenizer prepends it
        if (given && *given != ids)
          fail(ids_key, "gives " + show_ids(*given) + " but the text of " + key + " encodes to " +
                            show_ids(ids) + "; correct or remove " + ids_key);
      } else if (given) {
        ids = *given;
      } else {
        fail(key, "is text but no tokenizer is available; give token ids instead, or a model "
                  "folder with vocab.json + merges.txt or tokenizer.json");
      }
    } else {
      fail(key, "expected a string or an array of token ids, got " + describe(v));
    }
    if (ids.empty()) fail(key, "empty prompt");
  }

  int32_t parse_answer_token(const json& v, const std::string& key) const {
    if (v.is_number_integer()) return parse_id(v, key);
    if (!v.is_string())
      fail(key, "expected a single-token string or a token id, got " + describe(v));
    const std::string s = v.get<std::string>();
    if (s.empty()) fail(key, "empty string; answers must be single tokens");
    if (!tok_)
      fail(key, show(v) + " is text but no tokenizer is available; give the token id instead");
    if (std::optional<int32_t> id = tok_->token_id(s)) return *id;
    const std::vector<int32_t> ids = tok_->encode(s);
    if (ids.size() == 1) return ids[0];
    std::string parts;
    for (int32_t id : ids) parts += (parts.empty() ? "" : " + ") + show(json(tok_->token_text(id)));
    fail(key, show(v) + " is " + std::to_string(ids.size()) +
                  " tokens; answers must be single tokens (it splits into " + parts + ")");
  }

  std::vector<int32_t> parse_answers(const json& obj, const std::string& key) const {
    const json& v = require(obj, key);
    if (!v.is_array()) return {parse_answer_token(v, key)};
    if (v.empty()) fail(key, "empty array; give at least one token");
    std::vector<int32_t> ids;
    for (size_t i = 0; i < v.size(); ++i)
      ids.push_back(parse_answer_token(v[i], key + "[" + std::to_string(i) + "]"));
    return ids;
  }

  int parse_answer_pos(const json& v, const PromptPair& p) const {
    if (!v.is_number_integer()) fail("answer_pos", "expected an integer, got " + describe(v));
    // Python-style: -1 is the last token. Both prompts must contain the position.
    const int64_t n = static_cast<int64_t>(std::min(p.clean.size(), p.corrupted.size()));
    const bool in_range = v.is_number_unsigned() ? v.get<uint64_t>() < static_cast<uint64_t>(n)
                                                 : v.get<int64_t>() >= -n && v.get<int64_t>() < n;
    if (!in_range)
      fail("answer_pos", show(v) + " is outside the prompt (clean has " +
                             std::to_string(p.clean.size()) + " tokens, corrupted " +
                             std::to_string(p.corrupted.size()) + "; valid: " +
                             std::to_string(-n) + ".." + std::to_string(n - 1) + ")");
    return static_cast<int>(v.get<int64_t>());
  }

  // {"IO": 2, "S1": 4, "END": -1}: each index inside both prompts; negative counts from the end
  // of the clean prompt and is stored counted from the start.
  std::vector<NamedPosition> parse_positions(const json& v, const PromptPair& p) const {
    if (!v.is_object())
      fail("positions", "expected an object of name: token index, e.g. {\"IO\": 2, \"END\": -1}, got " +
                            describe(v));
    if (v.empty()) fail("positions", "empty object; name at least one position or leave the key out");
    const int64_t n = static_cast<int64_t>(p.clean.size());
    const int64_t shortest = static_cast<int64_t>(std::min(p.clean.size(), p.corrupted.size()));
    std::vector<NamedPosition> out;
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string& name = it.key();
      const json& idx = it.value();
      const std::string key = "positions." + name;
      if (name.empty()) fail("positions", "a position name is empty");
      if (!idx.is_number_integer()) fail(key, "expected an integer token index, got " + describe(idx));
      const bool negative = !idx.is_number_unsigned() && idx.get<int64_t>() < 0;
      const int64_t i = negative ? n + idx.get<int64_t>()
                                 : static_cast<int64_t>(std::min<uint64_t>(idx.get<uint64_t>(), std::numeric_limits<int64_t>::max()));
      if (i < 0 || i >= shortest)
        fail(key, show(idx) + " is outside the prompt (clean has " + std::to_string(p.clean.size()) +
                      " tokens, corrupted " + std::to_string(p.corrupted.size()) + ")");
      out.push_back({name, static_cast<int>(i)});
    }
    return out;
  }

  const std::string& source_;
  int line_;
  const Tokenizer* tok_;
};

// nlohmann's message without its "[json.exception.parse_error.101] parse error at line 1, "
// prefix: each JSONL line is parsed on its own, so its line number is always 1.
std::string parse_error_detail(const json::parse_error& e) {
  std::string s = e.what();
  if (size_t k = s.find("] "); k != std::string::npos) s = s.substr(k + 2);
  if (size_t k = s.find("at line 1, "); k != std::string::npos) s.erase(k + 3, 8);
  return s;
}

}  // namespace

void PairDataset::require_aligned() const {
  for (size_t i = 0; i < pairs.size(); ++i) {
    const PromptPair& p = pairs[i];
    if (p.clean.size() == p.corrupted.size()) continue;
    throw InputError(source,
                     p.line > 0 ? "line " + std::to_string(p.line) : "pair " + std::to_string(i + 1),
                     "clean has " + std::to_string(p.clean.size()) + " tokens but corrupted has " +
                         std::to_string(p.corrupted.size()) +
                         "; patching position by position needs prompts of equal length");
  }
}

std::vector<std::string> PairDataset::position_names() const {
  auto where = [&](size_t i) {
    const PromptPair& p = pairs[i];
    return p.line > 0 ? "line " + std::to_string(p.line) : "pair " + std::to_string(i + 1);
  };
  auto names_of = [](const PromptPair& p) {
    std::vector<std::string> n;
    for (const NamedPosition& np : p.positions) n.push_back(np.name);
    return n;
  };
  auto joined = [](const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  if (pairs.empty()) throw InputError(source, "", "no prompt pairs");
  const std::vector<std::string> first = names_of(pairs.front());
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (pairs[i].positions.empty())
      throw InputError(source, where(i) + ": positions",
                       "missing; named positions need every pair to name its positions, e.g. "
                       "\"positions\": {\"IO\": 2, \"S1\": 4, \"END\": -1} (causeway data ioi "
                       "writes them)");
    const std::vector<std::string> mine = names_of(pairs[i]);
    std::vector<std::string> a = mine, b = first;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (a != b)
      throw InputError(source, where(i) + ": positions",
                       "names " + joined(mine) + " but " + where(0) + " names " + joined(first) +
                           "; every pair must name the same positions");
  }
  return first;
}

int PairDataset::max_length() const {
  size_t n = 0;
  for (const PromptPair& p : pairs) n = std::max({n, p.clean.size(), p.corrupted.size()});
  return static_cast<int>(n);
}

PairDataset parse_pairs_jsonl(std::string_view text, const std::string& source,
                              const Tokenizer* tok) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte-order mark
  PairDataset data;
  data.source = source;
  int line = 0;
  while (!text.empty()) {
    ++line;
    const size_t end = text.find('\n');
    std::string_view s = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (s.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    LineParser parser(source, line, tok);
    json obj;
    try {
      obj = json::parse(s);
    } catch (const json::parse_error& e) {
      parser.fail("", "malformed JSON: " + parse_error_detail(e));
    }
    data.pairs.push_back(parser.parse(obj));
  }
  if (data.pairs.empty()) throw InputError(source, "", "no pairs (the file has no non-empty lines)");
  return data;
}

PairDataset load_pairs_jsonl(const std::filesystem::path& path, const Tokenizer* tok) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw InputError(path.string(), "",
                     std::filesystem::exists(path, ec) ? "not a regular file" : "no such file");
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (!in || in.bad()) throw InputError(path.string(), "", std::string("cannot read: ") + std::strerror(errno));
  return parse_pairs_jsonl(buf.str(), path.string(), tok);
}

void write_pairs_jsonl(const std::filesystem::path& path, const std::vector<PromptPair>& pairs) {
  using ordered = nlohmann::ordered_json;
  auto prompt = [](ordered& j, const char* key, const std::string& text,
                   const std::vector<int32_t>& ids) {
    if (text.empty()) {
      j[key] = ids;
    } else {
      j[key] = text;
      j[std::string(key) + "_ids"] = ids;
    }
  };
  auto tokens = [](const std::vector<int32_t>& ids) {
    return ids.size() == 1 ? ordered(ids[0]) : ordered(ids);
  };

  std::filesystem::path tmp = path;
  tmp += ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) throw InputError(path.string(), "", std::string("cannot write: ") + std::strerror(errno));
  for (const PromptPair& p : pairs) {
    ordered j;
    prompt(j, "clean", p.clean_text, p.clean);
    prompt(j, "corrupted", p.corrupted_text, p.corrupted);
    j["answer"] = tokens(p.answers);
    j["wrong"] = tokens(p.wrongs);
    if (p.answer_pos != -1) j["answer_pos"] = p.answer_pos;
    if (!p.positions.empty()) {
      ordered named = ordered::object();
      for (const NamedPosition& np : p.positions) named[np.name] = np.index;
      j["positions"] = named;
    }
    out << j.dump(-1, ' ', false, ordered::error_handler_t::replace) << '\n';
  }
  out.close();
  std::error_code ec;
  if (!out) {
    const std::string why = std::strerror(errno);
    std::filesystem::remove(tmp, ec);
    throw InputError(path.string(), "", "cannot write: " + why);
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();
    std::filesystem::remove(tmp, ec);
    throw InputError(path.string(), "", "cannot write: " + why);
  }
}

}  // namespace causeway
