// Tensor = a non-owning view: pointer + shape + device. Storage belongs to an Arena (or an
// mmap, or a cache); views are cheap to copy and never free anything.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

namespace causeway {

enum class DType { F32, F16, BF16, I32 };
enum class Device { CPU, CUDA };

const char* dtype_name(DType d);
size_t dtype_size(DType d);

struct Shape {
  static constexpr int kMaxRank = 4;
  std::array<int64_t, kMaxRank> dims{};
  int rank = 0;

  Shape() = default;
  Shape(std::initializer_list<int64_t> d);

  int64_t operator[](int i) const { return dims[i]; }
  int64_t numel() const;
  bool operator==(const Shape& o) const;
  std::string str() const;  // "[2, 3, 4]"
};

struct Tensor {
  float* data = nullptr;
  Shape shape;
  Device device = Device::CPU;

  int64_t numel() const { return shape.numel(); }
  int64_t size(int i) const { return shape[i]; }
  size_t bytes() const { return static_cast<size_t>(numel()) * sizeof(float); }
  bool empty() const { return data == nullptr; }
};

}  // namespace causeway
