// Device memory for the CUDA backend: an arena (one cudaMalloc per run, carved into aligned
// pieces, like core/arena.h on the host) and checked host <-> device copies. Plain C++: the
// CUDA runtime stays out of the headers the rest of the program includes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace causeway::cuda {

// Throws causeway::Error naming `what` when a copy fails. Both block until the copy is done
// (and so until queued ops on the default stream that it depends on have finished).
void copy_to_device(void* device_dst, const void* host_src, size_t bytes, const char* what);
void copy_to_host(void* host_dst, const void* device_src, size_t bytes, const char* what);
// Blocks until every op queued on the current device is done; a kernel fault surfaces here.
void synchronize(const char* what);

class DeviceArena {
 public:
  DeviceArena() = default;
  // One cudaMalloc of `bytes` on the current device; throws causeway::Error (with the CUDA
  // reason, e.g. out of memory) when it fails.
  explicit DeviceArena(size_t bytes);
  ~DeviceArena();
  DeviceArena(const DeviceArena&) = delete;
  DeviceArena& operator=(const DeviceArena&) = delete;
  DeviceArena(DeviceArena&& other) noexcept;
  DeviceArena& operator=(DeviceArena&& other) noexcept;

  // The next `bytes` of the arena, 256-byte aligned (cuBLAS' and coalescing's preference);
  // throws causeway::Error naming `what` when the arena is full.
  void* allocate(size_t bytes, const char* what);
  template <typename T>
  T* allocate_array(size_t count, const char* what) {
    return static_cast<T*>(allocate(sizeof(T) * count, what));
  }
  // Forgets every allocation (the memory is kept for the next run).
  void reset() { used_ = 0; }
  size_t capacity() const { return capacity_; }
  size_t used() const { return used_; }

 private:
  void release() noexcept;
  char* base_ = nullptr;
  size_t capacity_ = 0;
  size_t used_ = 0;
};

}  // namespace causeway::cuda
