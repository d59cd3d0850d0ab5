// q8::Error: every failure q8 reports (bad file, unsupported op, wrong input, unusable CPU path).
// what() is one line naming the file, the node and its op where they are known, e.g.
//   "model.onnx: node '/3/Conv' (Conv): weight has 2 dims, expected 4"
#pragma once

#include <stdexcept>
#include <string>

namespace q8 {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace q8
