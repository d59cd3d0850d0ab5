// The ONNX ops q8 maps (see onnx_ops.cpp): the importer accepts exactly these, the writer
// writes exactly these.
#pragma once

#include <climits>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace q8::onnx {

struct AttrSpec {
  const char* name;
  ir::Attribute::Kind kind;
  int min_opset = 1;  // the attribute exists in opsets [min_opset, max_opset]
  int max_opset = INT_MAX;
};

struct OpSpec {
  const char* onnx;  // op_type
  ir::Op op;
  int min_in, max_in, min_out, max_out;
  std::vector<AttrSpec> attrs;
  const char* domain = "";            // "" is ONNX's default domain; ONNX Runtime's ops are com.microsoft
  std::vector<int> optional_in = {};  // inputs below min_in that may be left empty (zero points)
};

const std::vector<OpSpec>& op_table();
// By ONNX name and domain ("" for the default), or null.
const OpSpec* find_op(const std::string& op_type, const std::string& domain);
// By q8 op, or null (q8's internal ops have no ONNX form).
const OpSpec* find_op(ir::Op op);

}  // namespace q8::onnx
