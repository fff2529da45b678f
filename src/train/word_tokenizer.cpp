#include "train/word_tokenizer.h"

#include <array>
#include <map>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace causeway::train {

namespace {

void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// GPT-2's bytes_to_unicode (encoder.py): printable bytes map to themselves, the rest to
// U+0100 onwards; the vocabulary numbers the bytes in this order (printable ones first).
struct ByteMap {
  std::array<std::string, 256> text;  // byte -> its printable character (UTF-8)
  std::array<int, 256> order;         // id -> byte
};

const ByteMap& byte_map() {
  static const ByteMap m = [] {
    ByteMap b;
    std::array<bool, 256> printable{};
    for (int c = '!'; c <= '~'; ++c) printable[c] = true;
    for (int c = 0xA1; c <= 0xAC; ++c) printable[c] = true;
    for (int c = 0xAE; c <= 0xFF; ++c) printable[c] = true;
    int id = 0, extra = 0;
    for (int c = 0; c < 256; ++c)
      if (printable[c]) {
        append_utf8(b.text[c], static_cast<uint32_t>(c));
        b.order[id++] = c;
      }
    for (int c = 0; c < 256; ++c)
      if (!printable[c]) {
        append_utf8(b.text[c], static_cast<uint32_t>(256 + extra++));
        b.order[id++] = c;
      }
    return b;
  }();
  return m;
}

}  // namespace

Tokenizer TokenizerFiles::load() const {
  return Tokenizer::from_strings(vocab_json, merges_txt, "vocab.json (generated)",
                                 "merges.txt (generated)");
}

TokenizerFiles make_word_tokenizer(const std::vector<std::string>& words) {
  const ByteMap& bm = byte_map();
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  std::set<std::string> known;
  int next_id = 0;
  for (int i = 0; i < 256; ++i) {
    vocab[bm.text[bm.order[i]]] = next_id++;
    known.insert(bm.text[bm.order[i]]);
  }
  // Space-led words first (see the header), each in the order given.
  std::vector<std::string> ordered;
  for (int pass = 0; pass < 2; ++pass)
    for (const std::string& w : words)
      if (!w.empty() && ((w[0] == ' ') == (pass == 0))) ordered.push_back(w);

  std::string merges = "#version: 0.2\n";
  for (const std::string& w : ordered) {
    if (w.find(' ', 1) != std::string::npos)
      throw std::invalid_argument("make_word_tokenizer: \"" + w + "\" has an inner space");
    std::string prefix = bm.text[static_cast<unsigned char>(w[0])];
    for (size_t i = 1; i < w.size(); ++i) {
      const std::string& next = bm.text[static_cast<unsigned char>(w[i])];
      const std::string merged = prefix + next;
      if (known.insert(merged).second) {
        merges += prefix + " " + next + "\n";
        vocab[merged] = next_id++;
      }
      prefix = merged;
    }
  }
  vocab["<|endoftext|>"] = next_id++;

  TokenizerFiles files{vocab.dump(), merges};
  const Tokenizer tok = files.load();
  for (const std::string& w : words)
    if (!w.empty() && tok.encode(w).size() != 1)
      throw std::invalid_argument("make_word_tokenizer: \"" + w +
                                  "\" does not encode as one token (a merge of another word "
                                  "breaks its chain)");
  return files;
}

}  // namespace causeway::train
