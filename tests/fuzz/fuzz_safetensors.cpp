// Fuzzes the safetensors reader with whole file images: the input goes through the same
// parse_safetensors_image that SafetensorsFile::open runs on the mapped file, then every
// tensor it accepts is read and converted, so a header that passes validation but points
// outside the image shows up under ASan. InputError is the expected outcome for bad input;
// any other exception, crash or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "core/error.h"
#include "model/safetensors.h"

using namespace causeway;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A heap copy of exactly `size` bytes, so ASan flags any read past the image's end.
  std::vector<std::byte> image(size);
  if (size) std::memcpy(image.data(), data, size);
  try {
    const SafetensorsLayout layout = parse_safetensors_image(image, "fuzz.safetensors");
    std::vector<float> f32;
    std::vector<int32_t> i32;
    for (const TensorInfo& t : layout.tensors) {
      const std::byte* src = image.data() + layout.data_offset + t.begin;
      const int64_t n = t.numel();
      if (t.dtype == DType::I32) {
        i32.resize(static_cast<size_t>(n));
        if (n) std::memcpy(i32.data(), src, t.end - t.begin);
      } else {
        f32.resize(static_cast<size_t>(n));
        convert_to_f32(t.dtype, src, n, f32.data());
      }
    }
  } catch (const InputError&) {
  }
  return 0;
}
