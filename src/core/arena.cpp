#include "core/arena.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

namespace causeway {

namespace {
constexpr size_t kAlign = 64;  // one cache line / one AVX-512 vector
size_t round_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
}  // namespace

void Arena::FreeDeleter::operator()(float* p) const { std::free(p); }

Arena::Arena(std::vector<TensorSpec> specs) : specs_(std::move(specs)) {
  std::vector<size_t> offsets;
  offsets.reserve(specs_.size());
  for (const auto& s : specs_) {
    offsets.push_back(bytes_);
    bytes_ += round_up(static_cast<size_t>(s.shape.numel()) * sizeof(float));
  }
  if (bytes_ > 0) {
    void* p = std::aligned_alloc(kAlign, bytes_);
    if (!p) throw std::bad_alloc();
    std::memset(p, 0, bytes_);
    storage_.reset(static_cast<float*>(p));
  }
  char* base = reinterpret_cast<char*>(storage_.get());
  for (size_t i = 0; i < specs_.size(); ++i) {
    tensors_.push_back(Tensor{reinterpret_cast<float*>(base + offsets[i]), specs_[i].shape});
    index_.emplace(specs_[i].name, i);
  }
}

Tensor Arena::get(std::string_view name) const {
  auto it = index_.find(std::string(name));
  if (it == index_.end()) throw std::out_of_range("arena has no tensor '" + std::string(name) + "'");
  return tensors_[it->second];
}

Tensor Arena::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? Tensor{} : tensors_[it->second];
}

}  // namespace causeway
