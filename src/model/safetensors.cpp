#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <stdexcept>
#include <system_error>
#include <tuple>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace causeway {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; reads copy it as is");

namespace {

using json = nlohmann::json;

// The reference implementation's limit; it also bounds what a hostile header can make us parse.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kSupportedDtypes = "F32, F16, BF16 and I32";

// A value from the file, shortened so one bad field cannot flood the message.
std::string show(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

bool safetensors_dtype_exists(std::string_view s) {
  static constexpr std::string_view kAll[] = {
      "BOOL", "U8",  "I8",  "I16", "U16", "F16",     "BF16",    "I32",     "U32",
      "F32",  "F64", "I64", "U64", "C64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4",
      "F6_E2M3", "F6_E3M2"};
  return std::find(std::begin(kAll), std::end(kAll), s) != std::end(kAll);
}

DType parse_dtype(const json& v, const std::string& file, const std::string& tensor) {
  if (!v.is_string()) throw InputError(file, tensor, "dtype must be a string, got " + show(v));
  const std::string s = v.get<std::string>();
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  if (s == "I32") return DType::I32;
  if (safetensors_dtype_exists(s))
    throw InputError(file, tensor,
                     "unsupported dtype " + s + " (causeway reads " + kSupportedDtypes + ")");
  throw InputError(file, tensor,
                   "unsupported dtype " + show(v) + " (not a safetensors dtype; causeway reads " +
                       kSupportedDtypes + ")");
}

// JSON non-negative integer up to `max`, or nullopt-like failure reported by the caller.
bool as_u64(const json& v, uint64_t max, uint64_t* out) {
  if (!v.is_number_unsigned()) return false;  // negatives parse as number_integer
  *out = v.get<uint64_t>();
  return *out <= max;
}

TensorInfo parse_entry(const std::string& name, const json& v, uint64_t data_bytes,
                       const std::string& file) {
  if (!v.is_object())
    throw InputError(file, name,
                     "entry must be an object with dtype, shape and data_offsets, got " + show(v));
  TensorInfo t;
  t.name = name;
  auto field = [&](const char* key) -> const json& {
    auto it = v.find(key);
    if (it == v.end()) throw InputError(file, name, std::string("missing ") + key);
    return *it;
  };
  t.dtype = parse_dtype(field("dtype"), file, name);

  const json& shape = field("shape");
  if (!shape.is_array()) throw InputError(file, name, "shape must be an array, got " + show(shape));
  // The product of the non-zero dims must fit in int64, so any slice arithmetic on this
  // shape later is overflow-free even when a zero dim makes numel 0.
  uint64_t nonzero_product = 1;
  bool has_zero = false;
  const uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  for (const json& d : shape) {
    uint64_t x = 0;
    if (!as_u64(d, kMax, &x))
      throw InputError(file, name,
                       "shape must hold non-negative integers, got " + show(shape));
    t.shape.push_back(static_cast<int64_t>(x));
    if (x == 0) {
      has_zero = true;
      continue;
    }
    if (__builtin_mul_overflow(nonzero_product, x, &nonzero_product) || nonzero_product > kMax)
      throw InputError(file, name, "shape " + show(shape) + " has too many elements");
  }
  const uint64_t numel = has_zero ? 0 : nonzero_product;

  const json& offs = field("data_offsets");
  if (!offs.is_array() || offs.size() != 2 ||
      !as_u64(offs[0], std::numeric_limits<uint64_t>::max(), &t.begin) ||
      !as_u64(offs[1], std::numeric_limits<uint64_t>::max(), &t.end))
    throw InputError(file, name,
                     "data_offsets must be [begin, end] (non-negative integers), got " + show(offs));
  if (t.begin > t.end || t.end > data_bytes)
    throw InputError(file, name,
                     "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                         "] are out of range: the data section holds " +
                         std::to_string(data_bytes) + " bytes");
  uint64_t bytes = 0;
  const bool overflow =
      __builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(t.dtype)), &bytes);
  if (overflow || bytes != t.end - t.begin)
    throw InputError(file, name,
                     "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                         "] hold " + std::to_string(t.end - t.begin) + " bytes, but " +
                         dtype_name(t.dtype) + " shape " + shape_str(t.shape) + " needs " +
                         (overflow ? "more than 2^64" : std::to_string(bytes)));
  return t;
}

// Branch-free half -> float (the method of github.com/Maratyszcza/FP16), so loops over it
// vectorize: normals and inf/NaN by an exponent shift and one scaling multiply, subnormals
// (normal numbers in fp32) by a magic-number subtraction. Exact for all 65536 inputs.
inline float half_bits_to_float(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;  // exponent + mantissa, sign shifted out
  const float normalized = std::bit_cast<float>((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  const float denormalized = std::bit_cast<float>((two_w >> 17) | (126u << 23)) - 0.5f;
  const uint32_t magnitude = two_w < (1u << 27) ? std::bit_cast<uint32_t>(denormalized)
                                                : std::bit_cast<uint32_t>(normalized);
  return std::bit_cast<float>(sign | magnitude);
}

void convert_serial(DType dt, const std::byte* src, int64_t n, float* dst) {
  switch (dt) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = half_bits_to_float(h);
      }
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t b;
        std::memcpy(&b, src + 2 * i, 2);
        dst[i] = std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
      }
      return;
    case DType::I32:
      break;
  }
  throw std::logic_error("convert_to_f32: I32 is not a floating-point dtype");
}

// Big enough that a thread's share outweighs the fork/join; small enough to spread the
// page faults of a freshly mapped tensor over all threads.
constexpr int64_t kConvertBlock = int64_t{1} << 16;

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

float f16_to_f32(uint16_t h) { return half_bits_to_float(h); }
float bf16_to_f32(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

void convert_to_f32(DType dt, const std::byte* src, int64_t n, float* dst) {
  if (dt == DType::I32) throw std::logic_error("convert_to_f32: I32 is not a floating-point dtype");
  const int64_t blocks = (n + kConvertBlock - 1) / kConvertBlock;
  const size_t esize = dtype_size(dt);
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t first = b * kConvertBlock;
    const int64_t count = std::min(kConvertBlock, n - first);
    convert_serial(dt, src + first * esize, count, dst + first);
  }
}

std::vector<TensorInfo> parse_safetensors_header(std::string_view header, uint64_t data_bytes,
                                                 const std::string& file) {
  // nlohmann keeps the last of duplicate keys silently; a repeated tensor name or field is a
  // corrupt header, so the keys of each open object are recorded as they are parsed.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  int duplicate_depth = 0;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty() &&
               !open_objects.back().insert(parsed.get<std::string>()).second &&
               duplicate.empty()) {
      duplicate = parsed.get<std::string>();
      duplicate_depth = depth;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(header.begin(), header.end(), on_event);
  } catch (const json::exception& e) {
    throw InputError(file, "header", std::string("malformed JSON: ") + e.what());
  }
  if (!j.is_object()) throw InputError(file, "header", "must be a JSON object, got " + show(j));
  if (!duplicate.empty()) {
    if (duplicate_depth == 1) throw InputError(file, duplicate, "appears twice in the header");
    throw InputError(file, "header", "key \"" + duplicate + "\" appears twice in one object");
  }

  std::vector<TensorInfo> tensors;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      const json& m = it.value();
      bool ok = m.is_object();
      for (auto kv = m.begin(); ok && kv != m.end(); ++kv) ok = kv.value().is_string();
      if (!ok)
        throw InputError(file, "__metadata__",
                         "must be an object of string values, got " + show(m));
      continue;
    }
    tensors.push_back(parse_entry(it.key(), it.value(), data_bytes, file));
  }

  // Like the reference reader: tensors tile the data section exactly, with no overlap (which
  // would let one tensor alias another) and no gap or trailing bytes (a sign of corruption).
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t at = 0;
  for (const TensorInfo& t : tensors) {
    if (t.begin != at)
      throw InputError(file, t.name,
                       "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                           "] " + (t.begin < at ? "overlap" : "leave a gap after") +
                           " the previous tensor, which ends at byte " + std::to_string(at));
    at = t.end;
  }
  if (at != data_bytes)
    throw InputError(file, "header",
                     "the tensors cover " + std::to_string(at) + " bytes but the data section holds " +
                         std::to_string(data_bytes));
  return tensors;
}

SafetensorsLayout parse_safetensors_image(std::span<const std::byte> image, const std::string& file) {
  if (image.size() < 8)
    throw InputError(file, "header length",
                     "truncated: the file has " + std::to_string(image.size()) +
                         " bytes, fewer than the 8-byte header length");
  uint64_t n = 0;
  std::memcpy(&n, image.data(), 8);
  const uint64_t room = image.size() - 8;
  if (n > room)
    throw InputError(file, "header length",
                     "header length " + std::to_string(n) + " exceeds file size " +
                         std::to_string(image.size()));
  if (n > kMaxHeaderBytes)
    throw InputError(file, "header length",
                     "header length " + std::to_string(n) + " is above the limit of " +
                         std::to_string(kMaxHeaderBytes) + " bytes");
  SafetensorsLayout layout;
  layout.data_offset = 8 + n;
  const std::string_view header(reinterpret_cast<const char*>(image.data()) + 8, n);
  layout.tensors = parse_safetensors_header(header, room - n, file);
  return layout;
}

// ---------------------------------------------------------------------------------------------
// SafetensorsFile

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  SafetensorsFile f;
  f.path_ = path.string();
  const int fd = ::open(f.path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(f.path_, "", std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw InputError(f.path_, "", "not a regular file");
  }
  f.size_ = static_cast<size_t>(st.st_size);
  if (f.size_ > 0) {  // mmap rejects length 0; an empty file is reported as truncated below
    void* p = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    if (p == MAP_FAILED) throw InputError(f.path_, "", std::string("mmap failed: ") + std::strerror(err));
    f.base_ = static_cast<std::byte*>(p);
  } else {
    ::close(fd);
  }
  // f's destructor unmaps if parsing throws.
  f.layout_ = parse_safetensors_image({f.base_, f.size_}, f.path_);
  for (size_t i = 0; i < f.layout_.tensors.size(); ++i) f.by_name_.emplace(f.layout_.tensors[i].name, i);
  return f;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& o) noexcept
    : path_(std::move(o.path_)),
      base_(std::exchange(o.base_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      layout_(std::move(o.layout_)),
      by_name_(std::move(o.by_name_)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& o) noexcept {
  if (this != &o) {
    unmap();
    path_ = std::move(o.path_);
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
    layout_ = std::move(o.layout_);
    by_name_ = std::move(o.by_name_);
  }
  return *this;
}

SafetensorsFile::~SafetensorsFile() { unmap(); }

void SafetensorsFile::unmap() {
  if (base_) ::munmap(base_, size_);
  base_ = nullptr;
  size_ = 0;
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &layout_.tensors[it->second];
}

const std::byte* SafetensorsFile::data(const TensorInfo& t) const {
  return base_ + layout_.data_offset + t.begin;
}

void SafetensorsFile::release(const TensorInfo& t) const {
  if (!base_ || t.end == t.begin) return;
  // Whole pages, rounded outwards: a shared boundary page is only re-read from the page cache
  // if the neighbouring tensor is touched again, since the mapping is never written.
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t lo = reinterpret_cast<uintptr_t>(data(t)) & ~(page - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(data(t)) + (t.end - t.begin) + page - 1) &
                       ~(page - 1);
  ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);  // advisory: errors ignored
}

// ---------------------------------------------------------------------------------------------
// Checkpoint

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

bool exists_file(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}

}  // namespace

bool Checkpoint::present(const std::filesystem::path& dir) {
  return exists_file(dir / kSingleFile) || exists_file(dir / kIndexFile);
}

Checkpoint Checkpoint::open(const std::filesystem::path& dir) {
  Checkpoint c;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw InputError(dir.string(), "", "not a folder (expected a Hugging Face checkpoint folder)");
  const std::filesystem::path single = dir / kSingleFile, index = dir / kIndexFile;

  if (exists_file(single)) {
    c.source_ = single.string();
    c.files_.push_back(SafetensorsFile::open(single));
    const auto& ts = c.files_[0].tensors();
    for (size_t i = 0; i < ts.size(); ++i) c.entries_.emplace(ts[i].name, Entry{0, i});
    return c;
  }
  if (!exists_file(index))
    throw InputError(dir.string(), "",
                     std::string("no ") + kSingleFile + " or " + kIndexFile + " in this folder");

  c.source_ = index.string();
  std::ifstream in(index, std::ios::binary);
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw InputError(c.source_, "", std::string("malformed JSON: ") + e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw InputError(c.source_, "weight_map",
                     "missing: the index must be an object with a \"weight_map\" object");

  std::map<std::string, size_t> shard_index;  // shard file name -> index in files_
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    const std::string& tensor = it.key();
    if (!it.value().is_string())
      throw InputError(c.source_, tensor, "weight_map value must be a file name, got " + show(it.value()));
    const std::string shard = it.value().get<std::string>();
    const std::filesystem::path rel(shard);
    // Shards live in the checkpoint folder; an index must not point elsewhere.
    bool inside = !shard.empty() && rel.is_relative();
    for (const auto& part : rel) inside = inside && part != "..";
    if (!inside)
      throw InputError(c.source_, tensor,
                       "shard \"" + shard + "\" is not a file name inside the checkpoint folder");
    auto [pos, is_new] = shard_index.emplace(shard, c.files_.size());
    if (is_new) {
      if (!exists_file(dir / rel))
        throw InputError(c.source_, tensor, "shard " + shard + " does not exist in " + dir.string());
      c.files_.push_back(SafetensorsFile::open(dir / rel));
    }
    const SafetensorsFile& f = c.files_[pos->second];
    const TensorInfo* t = f.find(tensor);
    if (!t)
      throw InputError(c.source_, tensor,
                       "weight_map puts it in " + shard + ", which has no such tensor");
    c.entries_.emplace(tensor, Entry{pos->second, static_cast<size_t>(t - f.tensors().data())});
  }
  return c;
}

const Checkpoint::Entry& Checkpoint::entry(std::string_view name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw InputError(source_, std::string(name), "missing tensor");
  return it->second;
}

bool Checkpoint::has(std::string_view name) const { return entries_.find(name) != entries_.end(); }

const TensorInfo& Checkpoint::info(std::string_view name) const {
  const Entry& e = entry(name);
  return files_[e.file].tensors()[e.tensor];
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& [name, e] : entries_) out.push_back(name);
  return out;
}

std::string Checkpoint::file_of(std::string_view name) const { return files_[entry(name).file].path(); }

const std::byte* Checkpoint::bytes(const Entry& e) const {
  return files_[e.file].data(files_[e.file].tensors()[e.tensor]);
}

void Checkpoint::read_float_range(std::string_view name, const TensorInfo& t, int64_t first,
                                  int64_t n, float* dst) const {
  if (t.dtype == DType::I32)
    throw InputError(file_of(name), t.name, "is an I32 tensor; expected F32, F16 or BF16");
  const Entry& e = entry(name);
  bytes_read_ += static_cast<uint64_t>(n) * dtype_size(t.dtype);
  convert_to_f32(t.dtype, bytes(e) + first * static_cast<int64_t>(dtype_size(t.dtype)), n, dst);
}

void Checkpoint::read(std::string_view name, float* dst) const {
  const TensorInfo& t = info(name);
  read_float_range(name, t, 0, t.numel(), dst);
}

void Checkpoint::read_rows(std::string_view name, int64_t begin, int64_t end, float* dst) const {
  const TensorInfo& t = info(name);
  if (t.shape.empty()) throw InputError(file_of(name), t.name, "is a scalar; it has no rows");
  if (begin < 0 || begin > end || end > t.shape[0])
    throw InputError(file_of(name), t.name,
                     "rows [" + std::to_string(begin) + ", " + std::to_string(end) +
                         ") are outside its " + std::to_string(t.shape[0]) + " rows (shape " +
                         shape_str(t.shape) + ")");
  int64_t row = 1;  // bounded: the parser checked the product of non-zero dims fits
  for (size_t i = 1; i < t.shape.size(); ++i) row *= t.shape[i];
  read_float_range(name, t, begin * row, (end - begin) * row, dst);
}

void Checkpoint::read_columns(std::string_view name, int64_t begin, int64_t end, float* dst) const {
  const TensorInfo& t = info(name);
  if (t.shape.size() != 1 && t.shape.size() != 2)
    throw InputError(file_of(name), t.name,
                     "shape " + shape_str(t.shape) + ": column slices need a 1-D or 2-D tensor");
  const int64_t rows = t.shape.size() == 2 ? t.shape[0] : 1;
  const int64_t cols = t.shape.back();
  if (begin < 0 || begin > end || end > cols)
    throw InputError(file_of(name), t.name,
                     "columns [" + std::to_string(begin) + ", " + std::to_string(end) +
                         ") are outside its " + std::to_string(cols) + " columns (shape " +
                         shape_str(t.shape) + ")");
  if (t.dtype == DType::I32)
    throw InputError(file_of(name), t.name, "is an I32 tensor; expected F32, F16 or BF16");
  const int64_t width = end - begin;
  const std::byte* src = bytes(entry(name));
  const int64_t esize = static_cast<int64_t>(dtype_size(t.dtype));
  const DType dt = t.dtype;
  bytes_read_ += static_cast<uint64_t>(rows * width * esize);
#pragma omp parallel for schedule(static) if (rows * width > kConvertBlock)
  for (int64_t r = 0; r < rows; ++r)
    convert_serial(dt, src + (r * cols + begin) * esize, width, dst + r * width);
}

void Checkpoint::read_i32(std::string_view name, int32_t* dst) const {
  const TensorInfo& t = info(name);
  if (t.dtype != DType::I32)
    throw InputError(file_of(name), t.name,
                     std::string("is ") + dtype_name(t.dtype) + "; expected an I32 tensor");
  if (t.end > t.begin) std::memcpy(dst, bytes(entry(name)), t.end - t.begin);
  bytes_read_ += t.end - t.begin;
}

void Checkpoint::expect_shape(std::string_view name, const std::vector<int64_t>& expected,
                              const std::string& why) const {
  const TensorInfo& t = info(name);
  if (t.shape != expected)
    throw InputError(file_of(name), t.name,
                     "shape " + shape_str(t.shape) + " disagrees with " + why + " (expected " +
                         shape_str(expected) + ")");
}

void Checkpoint::release(std::string_view name) const {
  const Entry& e = entry(name);
  files_[e.file].release(files_[e.file].tensors()[e.tensor]);
}

// ---------------------------------------------------------------------------------------------
// Writer

void write_safetensors(const std::filesystem::path& path, const std::vector<SafetensorsEntry>& entries,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    h["__metadata__"] = std::move(m);
  }
  std::vector<uint64_t> sizes;
  uint64_t offset = 0;
  for (const SafetensorsEntry& e : entries) {
    if (e.name == "__metadata__" || h.contains(e.name))
      throw Error("write_safetensors: " + path.string() + ": tensor name \"" + e.name +
                  "\" is reserved or used twice");
    uint64_t numel = 1;
    for (int64_t d : e.shape)
      if (d < 0 || __builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel))
        throw Error("write_safetensors: " + path.string() + ": " + e.name + ": bad shape " +
                    shape_str(e.shape));
    uint64_t bytes = 0, next = 0;
    if (__builtin_mul_overflow(numel, dtype_size(e.dtype), &bytes) ||
        __builtin_add_overflow(offset, bytes, &next))
      throw Error("write_safetensors: " + path.string() + ": " + e.name + ": too large");
    if (bytes > 0 && !e.data)
      throw Error("write_safetensors: " + path.string() + ": " + e.name + ": no data");
    h[e.name] = {{"dtype", dtype_name(e.dtype)},
                 {"shape", e.shape},
                 {"data_offsets", {offset, next}}};
    sizes.push_back(bytes);
    offset = next;
  }
  std::string header;
  try {
    header = h.dump();
  } catch (const nlohmann::json::exception& e) {  // names that are not valid UTF-8
    throw Error("write_safetensors: " + path.string() + ": " + e.what());
  }
  header.append((8 - header.size() % 8) % 8, ' ');  // data starts 8-byte aligned

  const std::filesystem::path tmp = path.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw InputError(path.string(), "", std::string("cannot write: ") + std::strerror(errno));
    const uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (size_t i = 0; i < entries.size(); ++i)
      if (sizes[i]) out.write(static_cast<const char*>(entries[i].data), static_cast<std::streamsize>(sizes[i]));
    out.close();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      throw InputError(path.string(), "", "write failed (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw InputError(path.string(), "", "cannot write: " + ec.message());
  }
}

}  // namespace causeway
