// One allocation for a set of tensors, laid out from a single table of {name, shape}
// (llm.c's parameter/activation blocks, without two lists kept in step by hand).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"

namespace causeway {

struct TensorSpec {
  std::string name;
  Shape shape;
};

class Arena {
 public:
  Arena() = default;
  explicit Arena(std::vector<TensorSpec> specs);

  // Lookup by the name given in the table; throws std::out_of_range naming it.
  Tensor get(std::string_view name) const;
  // As get, or an empty Tensor when the table has no such name.
  Tensor find(std::string_view name) const;
  Tensor at(size_t index) const { return tensors_[index]; }
  const std::vector<TensorSpec>& specs() const { return specs_; }
  size_t bytes() const { return bytes_; }

 private:
  struct FreeDeleter {
    void operator()(float* p) const;
  };
  std::vector<TensorSpec> specs_;
  std::vector<Tensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::unique_ptr<float, FreeDeleter> storage_;
  size_t bytes_ = 0;
};

}  // namespace causeway
