// Device arena and host <-> device copies (device_memory.h).
#include <algorithm>
#include <string>
#include <utility>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/device_memory.h"

namespace causeway::cuda {

namespace {
constexpr size_t kAlignment = 256;
}  // namespace

void copy_to_device(void* device_dst, const void* host_src, size_t bytes, const char* what) {
  if (bytes == 0) return;
  check(cudaMemcpy(device_dst, host_src, bytes, cudaMemcpyHostToDevice), what);
}

void copy_to_host(void* host_dst, const void* device_src, size_t bytes, const char* what) {
  if (bytes == 0) return;
  check(cudaMemcpy(host_dst, device_src, bytes, cudaMemcpyDeviceToHost), what);
}

void synchronize(const char* what) { check(cudaDeviceSynchronize(), what); }

DeviceArena::DeviceArena(size_t bytes) : capacity_(bytes) {
  if (bytes == 0) return;
  void* p = nullptr;
  check(cudaMalloc(&p, bytes), ("DeviceArena of " + std::to_string(bytes) + " bytes").c_str());
  base_ = static_cast<char*>(p);
}

DeviceArena::~DeviceArena() { release(); }

DeviceArena::DeviceArena(DeviceArena&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)),
      capacity_(std::exchange(other.capacity_, 0)),
      used_(std::exchange(other.used_, 0)) {}

DeviceArena& DeviceArena::operator=(DeviceArena&& other) noexcept {
  if (this != &other) {
    release();
    base_ = std::exchange(other.base_, nullptr);
    capacity_ = std::exchange(other.capacity_, 0);
    used_ = std::exchange(other.used_, 0);
  }
  return *this;
}

void DeviceArena::release() noexcept {
  // A failure to free at teardown has no one left to report to.
  if (base_) cudaFree(base_);
  base_ = nullptr;
}

void* DeviceArena::allocate(size_t bytes, const char* what) {
  const size_t start = (used_ + kAlignment - 1) / kAlignment * kAlignment;
  if (start + bytes > capacity_)
    throw Error(std::string("cuda DeviceArena: ") + what + " needs " + std::to_string(bytes) +
                " bytes, " + std::to_string(capacity_ - std::min(start, capacity_)) + " of " +
                std::to_string(capacity_) + " left");
  used_ = start + bytes;
  return base_ + start;
}

}  // namespace causeway::cuda
