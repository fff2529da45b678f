// Safetensors checkpoints: an 8-byte little-endian header length N, N bytes of JSON
// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}), then the data.
// The header is checked completely before any byte of data is trusted, as strictly as the
// reference implementation does (offsets in range and contiguous, sizes matching shapes), so
// reads afterwards need no checks. Files are mmapped and each tensor's pages can be released
// once it is copied, so loading costs about one fp32 copy of the model, not two.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"  // the InputError and Error these functions throw
#include "core/tensor.h"

namespace causeway {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // any rank, dims >= 0; numel() fits in int64
  uint64_t begin = 0, end = 0;  // byte offsets in the data section (after the header)

  int64_t numel() const;
};

// Parses and validates a header. `data_bytes` is the size of the data section. Tensors come
// back in data order. Throws InputError(file, tensor name or "header", detail).
std::vector<TensorInfo> parse_safetensors_header(std::string_view header_json, uint64_t data_bytes,
                                                 const std::string& file);

struct SafetensorsLayout {
  uint64_t data_offset = 0;  // 8 + header length
  std::vector<TensorInfo> tensors;
};

// Validates a whole file image: the length prefix, then the header. Pure (no I/O), so the
// fuzzer runs exactly what SafetensorsFile::open runs on the mapped bytes.
SafetensorsLayout parse_safetensors_image(std::span<const std::byte> image, const std::string& file);

// Conversions to fp32, exact for every input (subnormals, infinities, NaN; NaN payloads may be
// quieted). convert_to_f32 rejects I32 with a logic_error: callers check the dtype first.
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t b);
void convert_to_f32(DType src_dtype, const std::byte* src, int64_t n, float* dst);

// One mmapped .safetensors file (read-only). Move-only; unmaps on destruction.
class SafetensorsFile {
 public:
  // Throws InputError naming the path for unreadable, truncated or malformed files.
  static SafetensorsFile open(const std::filesystem::path& path);

  SafetensorsFile(SafetensorsFile&& o) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& o) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const TensorInfo* find(std::string_view name) const;  // nullptr when absent
  const std::vector<TensorInfo>& tensors() const { return layout_.tensors; }
  const std::byte* data(const TensorInfo& t) const;  // t must come from this file
  // Drops the mapped pages of `t` (MADV_DONTNEED); a later data() access reads them again.
  void release(const TensorInfo& t) const;

 private:
  SafetensorsFile() = default;
  void unmap();

  std::string path_;
  std::byte* base_ = nullptr;
  size_t size_ = 0;
  SafetensorsLayout layout_;
  std::map<std::string, size_t, std::less<>> by_name_;  // name -> index in layout_.tensors
};

// All tensors of a checkpoint folder: model.safetensors, or the shards listed by
// model.safetensors.index.json. Reads convert to fp32 and can take a slice (dim 0 or the last
// dim), which is how a tensor-parallel rank reads only its part. Every error is an InputError
// naming the file and the tensor.
class Checkpoint {
 public:
  static Checkpoint open(const std::filesystem::path& model_dir);
  // Whether the folder has model.safetensors or model.safetensors.index.json.
  static bool present(const std::filesystem::path& model_dir);

  bool has(std::string_view name) const;
  const TensorInfo& info(std::string_view name) const;  // InputError "missing tensor" if absent
  std::vector<std::string> names() const;               // sorted
  std::string file_of(std::string_view name) const;     // the path of the file holding it

  // The whole tensor as fp32 (F32, F16, BF16); dst holds numel() floats.
  void read(std::string_view name, float* dst) const;
  // Rows [begin, end) of dim 0 of a tensor of any rank >= 1; dst holds (end-begin) * row size.
  void read_rows(std::string_view name, int64_t begin, int64_t end, float* dst) const;
  // Columns [begin, end) of the last dim of a 1-D or 2-D tensor; dst is [rows, end-begin].
  void read_columns(std::string_view name, int64_t begin, int64_t end, float* dst) const;
  // An I32 tensor (token ids in goldens); dst holds numel() ints.
  void read_i32(std::string_view name, int32_t* dst) const;

  // InputError "shape [..] disagrees with <why> (expected [..])" unless the shapes match;
  // `why` names what the expectation came from, e.g. "config.json".
  void expect_shape(std::string_view name, const std::vector<int64_t>& expected,
                    const std::string& why) const;

  void release(std::string_view name) const;

  // Bytes of tensor data read so far (each read's stored bytes: a slice counts only its
  // elements), so a test can check that a tensor-parallel rank reads only its slices.
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  struct Entry {
    size_t file;    // index into files_
    size_t tensor;  // index into files_[file].tensors()
  };
  const Entry& entry(std::string_view name) const;
  const std::byte* bytes(const Entry& e) const;
  void read_float_range(std::string_view name, const TensorInfo& t, int64_t first, int64_t n,
                        float* dst) const;

  std::string source_;  // the file to name when a tensor is missing
  std::vector<SafetensorsFile> files_;
  std::map<std::string, Entry, std::less<>> entries_;
  mutable uint64_t bytes_read_ = 0;
};

// One tensor to write: `data` points at numel * dtype_size bytes in the dtype's layout.
struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
};

// Writes a safetensors file that Hugging Face's library reads: header padded with spaces to a
// multiple of 8 bytes (so 4-byte data starts aligned), tensors in the given order with no gaps.
// Writes to a temporary name and renames, so a failed write never leaves a partial file.
// Throws causeway::Error on bad entries (duplicate or reserved names) or I/O failure.
void write_safetensors(const std::filesystem::path& path, const std::vector<SafetensorsEntry>& entries,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace causeway
