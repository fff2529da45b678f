#include "train/word_tokenizer.h"

#include <array>
#include <map>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace causeway::train {


Tokenizer TokenizerFiles::load() const {
  return Tokenizer::from_strings(vocab_json, merges_txt, "vocab.json (generated)",
                                 "merges.txt (generated)");
}

TokenizerFiles make_word_tokenizer(const std::vector<std::string>& words) {
  // Each byte's printable text, by byte value.
  std::array<std::string, 256> byte_text;
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  std::set<std::string> known;
  int next_id = 0;
  for (const auto& [byte, text] : gpt2_byte_alphabet()) {
    byte_text[byte] = text;
    vocab[text] = next_id++;
    known.insert(text);
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
    std::string prefix = byte_text[static_cast<unsigned char>(w[0])];
    for (size_t i = 1; i < w.size(); ++i) {
      const std::string& next = byte_text[static_cast<unsigned char>(w[i])];
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
