// The ONNX ops q8 maps, with their input/output counts and attributes by opset: one table for
// the importer (what it accepts) and the writer (what it may write), so the two cannot drift.
#include "onnx/onnx_ops.h"

namespace q8::onnx {

using Kind = ir::Attribute::Kind;

namespace {
const std::vector<AttrSpec> kConvAttrs = {{"auto_pad", Kind::String}, {"dilations", Kind::Ints},
                                          {"group", Kind::Int},       {"kernel_shape", Kind::Ints},
                                          {"pads", Kind::Ints},       {"strides", Kind::Ints}};

}  // namespace

const std::vector<OpSpec>& op_table() {
  static const std::vector<OpSpec> table = {
      {"Conv",
       ir::Op::Conv,
       2,
       3,
       1,
       1,
       {{"auto_pad", Kind::String},
        {"dilations", Kind::Ints},
        {"group", Kind::Int},
        {"kernel_shape", Kind::Ints},
        {"pads", Kind::Ints},
        {"strides", Kind::Ints}}},
      {"Relu", ir::Op::Relu, 1, 1, 1, 1, {}},
      {"Clip", ir::Op::Clip, 1, 3, 1, 1, {}},
      {"MaxPool",
       ir::Op::MaxPool,
       1,
       1,
       1,
       2,
       {{"auto_pad", Kind::String},
        {"ceil_mode", Kind::Int},
        {"dilations", Kind::Ints},
        {"kernel_shape", Kind::Ints},
        {"pads", Kind::Ints},
        {"storage_order", Kind::Int},
        {"strides", Kind::Ints}}},
      {"AveragePool",
       ir::Op::AveragePool,
       1,
       1,
       1,
       1,
       {{"auto_pad", Kind::String},
        {"ceil_mode", Kind::Int},
        {"count_include_pad", Kind::Int},
        {"dilations", Kind::Ints, 19},
        {"kernel_shape", Kind::Ints},
        {"pads", Kind::Ints},
        {"strides", Kind::Ints}}},
      {"GlobalAveragePool", ir::Op::GlobalAveragePool, 1, 1, 1, 1, {}},
      {"Flatten", ir::Op::Flatten, 1, 1, 1, 1, {{"axis", Kind::Int}}},
      {"Gemm",
       ir::Op::Gemm,
       2,
       3,
       1,
       1,
       {{"alpha", Kind::Float}, {"beta", Kind::Float}, {"transA", Kind::Int}, {"transB", Kind::Int}}},
      {"MatMul", ir::Op::MatMul, 2, 2, 1, 1, {}},
      {"Add", ir::Op::Add, 2, 2, 1, 1, {}},
      {"BatchNormalization",
       ir::Op::BatchNormalization,
       5,
       5,
       1,
       5,
       {{"epsilon", Kind::Float}, {"momentum", Kind::Float}, {"training_mode", Kind::Int, 14}}},
      {"Identity", ir::Op::Identity, 1, 1, 1, 1, {}},
      {"Dropout", ir::Op::Dropout, 1, 3, 1, 2, {{"ratio", Kind::Float, 1, 11}, {"seed", Kind::Int, 12}}},
      {"Constant",
       ir::Op::Constant,
       0,
       0,
       1,
       1,
       {{"value", Kind::Tensor},
        {"value_float", Kind::Float},
        {"value_floats", Kind::Floats},
        {"value_int", Kind::Int},
        {"value_ints", Kind::Ints}}},
      {"Reshape", ir::Op::Reshape, 2, 2, 1, 1, {{"allowzero", Kind::Int, 14}}},
      // Pad-11 and later: pads (and constant_value, axes) are inputs.
      {"Pad", ir::Op::Pad, 2, 4, 1, 1, {{"mode", Kind::String}}},
      {"Concat", ir::Op::Concat, 1, INT_MAX, 1, 1, {{"axis", Kind::Int}}},
      // Shape computations (evaluated when the input shapes are known) and layout ops.
      {"Shape", ir::Op::Shape, 1, 1, 1, 1, {{"start", Kind::Int, 15}, {"end", Kind::Int, 15}}},
      {"Gather", ir::Op::Gather, 2, 2, 1, 1, {{"axis", Kind::Int}}},
      {"Cast", ir::Op::Cast, 1, 1, 1, 1, {{"to", Kind::Int}, {"saturate", Kind::Int, 19}}},
      {"ConstantOfShape", ir::Op::ConstantOfShape, 1, 1, 1, 1, {{"value", Kind::Tensor}}},
      // Unsqueeze/Squeeze: "axes" is an attribute up to opset 12, an input from 13.
      {"Unsqueeze", ir::Op::Unsqueeze, 1, 2, 1, 1, {{"axes", Kind::Ints, 1, 12}}},
      {"Squeeze", ir::Op::Squeeze, 1, 2, 1, 1, {{"axes", Kind::Ints, 1, 12}}},
      // Slice-10 and later: starts, ends, axes and steps are inputs.
      {"Slice", ir::Op::Slice, 3, 5, 1, 1, {}},
      {"Transpose", ir::Op::Transpose, 1, 1, 1, 1, {{"perm", Kind::Ints}}},
      // Resize-11 and later: (X, roi, scales, sizes).
      {"Resize",
       ir::Op::Resize,
       1,
       4,
       1,
       1,
       {{"mode", Kind::String},
        {"coordinate_transformation_mode", Kind::String},
        {"nearest_mode", Kind::String},
        {"cubic_coeff_a", Kind::Float},
        {"exclude_outside", Kind::Int},
        {"extrapolation_value", Kind::Float},
        {"antialias", Kind::Int, 18},
        {"axes", Kind::Ints, 18},
        {"keep_aspect_ratio_policy", Kind::String, 18}}},
      {"ConvTranspose",
       ir::Op::ConvTranspose,
       2,
       3,
       1,
       1,
       {{"auto_pad", Kind::String},
        {"dilations", Kind::Ints},
        {"group", Kind::Int},
        {"kernel_shape", Kind::Ints},
        {"output_padding", Kind::Ints},
        {"output_shape", Kind::Ints},
        {"pads", Kind::Ints},
        {"strides", Kind::Ints}}},
      {"Mul", ir::Op::Mul, 2, 2, 1, 1, {}},
      {"Sub", ir::Op::Sub, 2, 2, 1, 1, {}},
      {"Div", ir::Op::Div, 2, 2, 1, 1, {}},
      {"Pow", ir::Op::Pow, 2, 2, 1, 1, {}},
      // ReduceMean-18: axes became an input.
      {"ReduceMean",
       ir::Op::ReduceMean,
       1,
       2,
       1,
       1,
       {{"axes", Kind::Ints, 1, 17}, {"keepdims", Kind::Int}, {"noop_with_empty_axes", Kind::Int, 18}}},
      {"Softmax", ir::Op::Softmax, 1, 1, 1, 1, {{"axis", Kind::Int}}},
      {"LogSoftmax", ir::Op::LogSoftmax, 1, 1, 1, 1, {{"axis", Kind::Int}}},
      {"LayerNormalization",
       ir::Op::LayerNormalization,
       2,
       3,
       1,
       3,
       {{"axis", Kind::Int}, {"epsilon", Kind::Float}, {"stash_type", Kind::Int}}},
      // Quantization: QDQ (QuantizeLinear/DequantizeLinear around float ops) and QOperator.
      {"QuantizeLinear", ir::Op::QuantizeLinear, 2, 3, 1, 1, {{"axis", Kind::Int, 13}, {"saturate", Kind::Int, 19}}},
      {"DequantizeLinear", ir::Op::DequantizeLinear, 2, 3, 1, 1, {{"axis", Kind::Int, 13}}},
      {"QLinearConv", ir::Op::QLinearConv, 8, 9, 1, 1, kConvAttrs},
      {"QLinearMatMul", ir::Op::QLinearMatMul, 8, 8, 1, 1, {}},
      {"QLinearAdd", ir::Op::QLinearAdd, 7, 8, 1, 1, {}, "com.microsoft"},
      {"QLinearGlobalAveragePool",
       ir::Op::QLinearGlobalAveragePool,
       5,
       5,
       1,
       1,
       {{"channels_last", Kind::Int}},
       "com.microsoft"},
      {"QGemm",
       ir::Op::QGemm,
       6,
       9,
       1,
       1,
       {{"alpha", Kind::Float}, {"transA", Kind::Int}, {"transB", Kind::Int}},
       "com.microsoft"},
      // Element-wise activations (Silu is q8's own fusion and has no row: the writer refuses it).
      {"Sigmoid", ir::Op::Sigmoid, 1, 1, 1, 1, {}},
      {"Tanh", ir::Op::Tanh, 1, 1, 1, 1, {}},
      {"HardSigmoid", ir::Op::HardSigmoid, 1, 1, 1, 1, {{"alpha", Kind::Float}, {"beta", Kind::Float}}},
      {"HardSwish", ir::Op::HardSwish, 1, 1, 1, 1, {}},
      {"LeakyRelu", ir::Op::LeakyRelu, 1, 1, 1, 1, {{"alpha", Kind::Float}}},
      {"Elu", ir::Op::Elu, 1, 1, 1, 1, {{"alpha", Kind::Float}}},
      {"Erf", ir::Op::Erf, 1, 1, 1, 1, {}},
      {"Sqrt", ir::Op::Sqrt, 1, 1, 1, 1, {}},
      {"Exp", ir::Op::Exp, 1, 1, 1, 1, {}},
      {"QLinearSigmoid", ir::Op::QLinearSigmoid, 4, 5, 1, 1, {}, "com.microsoft"},
      {"QLinearLeakyRelu", ir::Op::QLinearLeakyRelu, 4, 5, 1, 1, {{"alpha", Kind::Float}}, "com.microsoft"},
      {"Gelu", ir::Op::Gelu, 1, 1, 1, 1, {}, "com.microsoft"},  // ONNX Runtime's contrib op: the Erf form
  };
  return table;
}

const OpSpec* find_op(const std::string& op_type, const std::string& domain) {
  for (const OpSpec& s : op_table())
    if (op_type == s.onnx && domain == s.domain) return &s;
  return nullptr;
}

const OpSpec* find_op(ir::Op op) {
  for (const OpSpec& s : op_table())
    if (op == s.op) return &s;
  return nullptr;
}

}  // namespace q8::onnx
