// Fuzzes the tokenizer: loading vocab.json + merges.txt and tokenizer.json from arbitrary
// bytes, and encoding arbitrary bytes. InputError is the expected outcome for bad files; any
// other exception, crash, sanitizer report or broken invariant is a bug.
//
// The first input byte picks a mode; the rest is split at "\n--\n" into parts:
//   0  vocab.json, merges.txt, text
//   1  tokenizer.json, text
//   2  tokens (one per line, id = line number), merges.txt, text: the vocabulary is always
//      valid JSON, so time goes to merges parsing and BPE rather than to learning JSON syntax
//   3  text, with tests/data/tiny-gpt2's tokenizer; checks encode(decode(encode(s))) == encode(s)
//   4  text, with the same tokenizer as tokenizer.json plus add_prefix_space and added tokens
//      with lstrip / rstrip / normalized
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/tokenizer.h"

using namespace causeway;
using json = nlohmann::json;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::string kTinyDir = CAUSEWAY_SOURCE_DIR "/tests/data/tiny-gpt2/";

const Tokenizer& tiny() {
  static const Tokenizer tok = Tokenizer::from_files(kTinyDir + "vocab.json", kTinyDir + "merges.txt");
  return tok;
}

const Tokenizer& tiny_json_variant() {
  static const Tokenizer tok = [] {
    json merges = json::array();
    std::istringstream lines(slurp(kTinyDir + "merges.txt"));
    for (std::string line; std::getline(lines, line);)
      if (!line.starts_with("#version")) merges.push_back(line);
    auto added = [](int id, const char* content, bool lstrip, bool rstrip, bool normalized) {
      return json{{"id", id}, {"content", content}, {"lstrip", lstrip}, {"rstrip", rstrip},
                  {"normalized", normalized}, {"special", !normalized}};
    };
    const json spec = {
        {"model", {{"type", "BPE"}, {"vocab", json::parse(slurp(kTinyDir + "vocab.json"))}, {"merges", merges}}},
        {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", true}}},
        {"added_tokens",
         {added(999, "<|endoftext|>", false, false, false), added(1000, "<pad>", true, true, false),
          added(1001, "zz", false, false, true), added(1002, " <s>", true, false, false)}}};
    return Tokenizer::from_tokenizer_json_string(spec.dump());
  }();
  return tok;
}

std::vector<std::string_view> split_parts(std::string_view s) {
  std::vector<std::string_view> parts;
  for (size_t at; (at = s.find("\n--\n")) != std::string_view::npos;) {
    parts.push_back(s.substr(0, at));
    s.remove_prefix(at + 4);
  }
  parts.push_back(s);
  return parts;
}

std::string_view part(const std::vector<std::string_view>& parts, size_t i) {
  return i < parts.size() ? parts[i] : std::string_view();
}

void exercise(const Tokenizer& tok, std::string_view text) {
  const std::vector<int32_t> ids = tok.encode(text);
  const std::string decoded = tok.decode(ids);
  for (int32_t id : ids)
    if (id < 0 || id >= tok.vocab_size()) std::abort();
  tok.pretokenize(text);
  (void)tok.token_id(text);
  (void)tok.eos_id();
}

json vocab_from_lines(std::string_view lines) {
  json vocab = json::object();
  int id = 0;
  for (std::string_view line : split_parts(lines)) {
    for (size_t at; !line.empty(); line.remove_prefix(at == std::string_view::npos ? line.size() : at + 1)) {
      at = line.find('\n');
      vocab[std::string(line.substr(0, at))] = id++;
    }
  }
  return vocab;
}

void run(uint8_t mode, std::string_view rest) {
  const std::vector<std::string_view> parts = split_parts(rest);
  switch (mode % 5) {
    case 0:
      exercise(Tokenizer::from_strings(part(parts, 0), part(parts, 1)), part(parts, 2));
      break;
    case 1:
      exercise(Tokenizer::from_tokenizer_json_string(part(parts, 0)), part(parts, 1));
      break;
    case 2: {
      std::string_view tokens = part(parts, 0);
      const std::string vocab = vocab_from_lines(tokens).dump(-1, ' ', false, json::error_handler_t::replace);
      exercise(Tokenizer::from_strings(vocab, part(parts, 1)), part(parts, 2));
      break;
    }
    case 3: {
      const std::vector<int32_t> ids = tiny().encode(rest);
      if (tiny().encode(tiny().decode(ids)) != ids) std::abort();
      exercise(tiny(), rest);
      break;
    }
    default:
      exercise(tiny_json_variant(), rest);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  try {
    run(data[0], std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  } catch (const InputError&) {
  }
  return 0;
}
