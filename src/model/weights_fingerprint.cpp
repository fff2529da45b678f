#include "model/weights_fingerprint.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "model/safetensors.h"

namespace causeway {

namespace {

// A fast non-cryptographic 64-bit hash over a byte stream: four independent lanes of
// multiply-rotate over 8-byte words (so it runs near memory speed), a byte tail, and a final
// mix. It guards against accidents (another checkpoint), not against an adversary.
class StreamHash {
 public:
  // Every call but the last must pass a multiple of 32 bytes.
  void update(const unsigned char* p, size_t n) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
      for (int l = 0; l < 4; ++l) lane_[l] = step(lane_[l], word(p + i + 8 * l));
    for (; i < n; ++i) tail_ = step(tail_ ^ p[i], 0x100 + p[i]);
    length_ += n;
  }
  uint64_t finish() const {
    uint64_t h = length_ * kOdd1;
    for (int l = 0; l < 4; ++l) h = step(h ^ rotl(lane_[l], 8 * l + 1), lane_[l]);
    h = step(h, tail_);
    h ^= h >> 31;
    h *= kOdd2;
    return h ^ (h >> 29);
  }

 private:
  static constexpr uint64_t kOdd1 = 0x9E3779B97F4A7C15ull, kOdd2 = 0xD6E8FEB86659FD93ull;
  static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
  static uint64_t word(const unsigned char* p) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
  }
  static uint64_t step(uint64_t acc, uint64_t w) { return rotl(acc ^ (w * kOdd1), 31) * kOdd2; }
  uint64_t lane_[4] = {1, 2, 3, 4};
  uint64_t tail_ = 5, length_ = 0;
};

std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string fingerprint_of_file(const std::filesystem::path& path, uintmax_t full_hash_bytes) {
  std::ifstream in(path, std::ios::binary);
  unsigned char prefix[8];
  if (!in.read(reinterpret_cast<char*>(prefix), 8))
    throw InputError(path.string(), "", "cannot read the weights");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | prefix[i];
  // Checkpoint::open has validated the header length against the file's size.
  std::vector<unsigned char> buf(header_len);
  if (!in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(header_len)))
    throw InputError(path.string(), "header", "cannot read the weights");
  StreamHash header, data;
  header.update(buf.data(), buf.size());
  const uintmax_t size = std::filesystem::file_size(path), start = 8 + header_len;
  const uintmax_t payload = size - start;
  const bool sampled = payload > full_hash_bytes;
  if (sampled) {
    // Blocks at evenly spaced offsets, the last one ending at the end of the file.
    buf.assign(kSampledBlockBytes, 0);
    const uintmax_t span = payload - kSampledBlockBytes;
    for (int b = 0; b < kSampledBlocks && in; ++b) {
      in.seekg(static_cast<std::streamoff>(start + span * b / (kSampledBlocks - 1)));
      in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
      data.update(buf.data(), static_cast<size_t>(in.gcount()));
    }
  } else {
    buf.assign(size_t{4} << 20, 0);
    while (in) {
      in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
      data.update(buf.data(), static_cast<size_t>(in.gcount()));
    }
  }
  if (in.bad() || (sampled && !in))
    throw InputError(path.string(), "", "read error while fingerprinting the weights");
  return path.filename().string() + " bytes=" + std::to_string(size) + " header=" + hex(header.finish()) +
         " data=" + (sampled ? "sampled:" : "") + hex(data.finish());
}

// name -> {"bytes=..", "header=..", "data=.."} of one fingerprint text.
std::map<std::string, std::map<std::string, std::string>> parse(const std::string& text) {
  std::map<std::string, std::map<std::string, std::string>> files;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string name, field;
    if (!(words >> name)) continue;
    auto& f = files[name];
    while (words >> field) {
      const auto eq = field.find('=');
      if (eq != std::string::npos) f[field.substr(0, eq)] = field.substr(eq + 1);
    }
  }
  return files;
}

}  // namespace

std::string weights_fingerprint(const std::filesystem::path& model_dir, uintmax_t full_hash_bytes) {
  const Checkpoint ckpt = Checkpoint::open(model_dir);
  std::set<std::string> files;
  for (const std::string& name : ckpt.names()) files.insert(ckpt.file_of(name));
  std::string out;
  for (const std::string& f : files) out += fingerprint_of_file(f, full_hash_bytes) + "\n";
  return out;
}

std::string fingerprint_difference(const std::string& stored, const std::string& now) {
  const auto a = parse(stored), b = parse(now);
  for (const auto& [name, fa] : a) {
    auto it = b.find(name);
    if (it == b.end()) return name + " missing now";
    const auto& fb = it->second;
    for (const auto& [field, what] : {std::pair{"bytes", "size"}, std::pair{"header", "header"},
                                      std::pair{"data", "contents"}}) {
      auto x = fa.find(field), y = fb.find(field);
      if (x == fa.end() || y == fb.end() || x->second != y->second) return name + " " + what;
    }
  }
  for (const auto& [name, fb] : b)
    if (!a.count(name)) return name + " added now";
  return "";
}

}  // namespace causeway
