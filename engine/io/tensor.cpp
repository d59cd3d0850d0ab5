#include "ir/graph.h"
#include "q8/q8.h"

namespace q8 {

Tensor::Tensor(std::vector<int64_t> shape, std::vector<float> data) : shape_(std::move(shape)), data_(std::move(data)) {
  if (static_cast<int64_t>(data_.size()) != ir::shape_numel(shape_))
    throw Error("tensor of shape " + ir::shape_str(shape_) + " needs " + std::to_string(ir::shape_numel(shape_)) +
                " values, got " + std::to_string(data_.size()));
}

Tensor::Tensor(std::vector<int64_t> shape) : shape_(std::move(shape)) {
  data_.assign(static_cast<size_t>(ir::shape_numel(shape_)), 0.f);
}

}  // namespace q8
