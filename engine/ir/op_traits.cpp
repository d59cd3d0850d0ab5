#include "ir/op_traits.h"

#include "ir/shape_rules.h"

namespace q8::ir {

namespace {

using D = DTypeRule;
using R = Int8Role;
namespace s = shape_rules;
namespace e = const_evals;

// One row per op, in the order of the Op enum (checked below). Columns: op, name, min and max
// inputs, dtype rule, shape rule, int8 role, absorbs a following Relu/Clip, is a view, evaluation
// on constants.
constexpr OpTraits kTraits[] = {
    // Conv's fourth input is q8's own: a residual added before the clamp (fuse_residual_add).
    {Op::Conv, "Conv", 2, 4, D::Float, s::conv, R::Weighted, true, false, nullptr},
    {Op::Relu, "Relu", 1, 1, D::Float, s::unary, R::Clamp, false, false, nullptr},
    {Op::Clip, "Clip", 1, 3, D::Float, s::unary, R::Clamp, false, false, nullptr},
    {Op::MaxPool, "MaxPool", 1, 1, D::SameAsInput, s::pool, R::PassThrough, false, false, nullptr},
    {Op::AveragePool, "AveragePool", 1, 1, D::SameAsInput, s::pool, R::Requantizing, false, false, nullptr},
    {Op::GlobalAveragePool, "GlobalAveragePool", 1, 1, D::SameAsInput, s::global_pool, R::Requantizing, false, false,
     nullptr},
    {Op::Flatten, "Flatten", 1, 1, D::SameAsInput, s::flatten, R::PassThrough, false, true, e::view},
    {Op::Gemm, "Gemm", 2, 3, D::Float, s::gemm, R::Weighted, true, false, nullptr},
    {Op::MatMul, "MatMul", 2, 2, D::Float, s::matmul, R::Weighted, false, false, nullptr},
    {Op::Add, "Add", 2, 2, D::Float, s::broadcast_binary, R::Requantizing, true, false, e::arithmetic},
    {Op::BatchNormalization, "BatchNormalization", 5, 5, D::Float, s::batch_norm, R::Fp32Only, false, false, nullptr},
    {Op::Identity, "Identity", 1, 1, D::SameAsInput, s::unary, R::PassThrough, false, true, e::view},
    {Op::Dropout, "Dropout", 1, 3, D::SameAsInput, s::unary, R::PassThrough, false, true, e::view},
    {Op::Constant, "Constant", 0, 0, D::Float, s::not_folded, R::ShapeOnly, false, false, nullptr},
    {Op::Reshape, "Reshape", 2, 2, D::SameAsInput, s::reshape, R::PassThrough, false, true, e::view},
    {Op::Pad, "Pad", 2, 4, D::SameAsInput, s::pad, R::PassThrough, false, false, nullptr},
    {Op::QuantizeLinear, "QuantizeLinear", 2, 3, D::Quantize, s::unary, R::Quantize, false, false, nullptr},
    {Op::DequantizeLinear, "DequantizeLinear", 2, 3, D::Dequantize, s::unary, R::Dequantize, false, false, nullptr},
    {Op::QLinearConv, "QLinearConv", 8, 9, D::Uint8, s::not_lowered, R::QuantizedFormat, false, false, nullptr},
    {Op::QLinearMatMul, "QLinearMatMul", 8, 8, D::Uint8, s::not_lowered, R::QuantizedFormat, false, false, nullptr},
    {Op::QLinearAdd, "QLinearAdd", 7, 8, D::Uint8, s::not_lowered, R::QuantizedFormat, false, false, nullptr},
    {Op::QLinearGlobalAveragePool, "QLinearGlobalAveragePool", 5, 5, D::Uint8, s::not_lowered, R::QuantizedFormat,
     false, false, nullptr},
    {Op::QGemm, "QGemm", 6, 9, D::Uint8, s::not_lowered, R::QuantizedFormat, false, false, nullptr},
    {Op::QuantizedConv, "QuantizedConv", 2, 3, D::Uint8, s::conv, R::Integer, false, false, nullptr},
    {Op::QuantizedDense, "QuantizedDense", 2, 3, D::Uint8, s::dense, R::Integer, false, false, nullptr},
    {Op::QuantizedAdd, "QuantizedAdd", 2, 2, D::Uint8, s::same_shape_binary, R::Integer, false, false, nullptr},
    {Op::Concat, "Concat", 1, kVariadic, D::SameAsInput, s::concat, R::Requantizing, false, false, e::concat},
    {Op::Shape, "Shape", 1, 1, D::Int64, s::shape_of, R::ShapeOnly, false, false, e::shape_of},
    {Op::Gather, "Gather", 2, 2, D::SameAsInput, s::gather, R::ShapeOnly, false, false, e::gather},
    {Op::Cast, "Cast", 1, 1, D::SameAsInput, s::unary, R::ShapeOnly, false, false, e::cast},
    {Op::ConstantOfShape, "ConstantOfShape", 1, 1, D::Float, s::constant_of_shape, R::ShapeOnly, false, false,
     e::constant_of_shape},
    {Op::Unsqueeze, "Unsqueeze", 1, 2, D::SameAsInput, s::unsqueeze, R::PassThrough, false, true, e::view},
    {Op::Squeeze, "Squeeze", 1, 2, D::SameAsInput, s::squeeze, R::PassThrough, false, true, e::view},
    {Op::Slice, "Slice", 3, 5, D::SameAsInput, s::slice, R::PassThrough, false, false, e::slice},
    {Op::Transpose, "Transpose", 1, 1, D::SameAsInput, s::transpose, R::PassThrough, false, false, e::transpose},
    // Resize: nearest copies bytes, so its int8 form keeps the input's quantization; the quantizer
    // leaves linear Resize in fp32 (quantize.cpp's quantizable()).
    {Op::Resize, "Resize", 1, 4, D::SameAsInput, s::resize, R::PassThrough, false, false, nullptr},
    {Op::ConvTranspose, "ConvTranspose", 2, 3, D::Float, s::conv_transpose, R::Weighted, true, false, nullptr},
    {Op::Mul, "Mul", 2, 2, D::Float, s::broadcast_binary, R::Requantizing, true, false, e::arithmetic},
    {Op::Sub, "Sub", 2, 2, D::Float, s::broadcast_binary, R::Fp32Only, true, false, e::arithmetic},
    {Op::Div, "Div", 2, 2, D::Float, s::broadcast_binary, R::Fp32Only, true, false, e::arithmetic},
    {Op::Pow, "Pow", 2, 2, D::Float, s::broadcast_binary, R::Fp32Only, true, false, nullptr},
    {Op::ReduceMean, "ReduceMean", 1, 2, D::SameAsInput, s::reduce, R::Requantizing, false, false, nullptr},
    {Op::Softmax, "Softmax", 1, 1, D::Float, s::softmax, R::Fp32Only, false, false, nullptr},
    {Op::LogSoftmax, "LogSoftmax", 1, 1, D::Float, s::softmax, R::Fp32Only, false, false, nullptr},
    {Op::LayerNormalization, "LayerNormalization", 2, 3, D::Float, s::layer_norm, R::Fp32Only, false, false, nullptr},
    {Op::QuantizedMul, "QuantizedMul", 2, 2, D::Uint8, s::per_channel_binary, R::Integer, false, false, nullptr},
    {Op::Sigmoid, "Sigmoid", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false, nullptr},
    {Op::Tanh, "Tanh", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false, nullptr},
    {Op::HardSigmoid, "HardSigmoid", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false, nullptr},
    {Op::HardSwish, "HardSwish", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false, nullptr},
    {Op::LeakyRelu, "LeakyRelu", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false, nullptr},
    {Op::Elu, "Elu", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false, nullptr},
    {Op::Erf, "Erf", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false, nullptr},
    {Op::Sqrt, "Sqrt", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false, nullptr},
    {Op::Exp, "Exp", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false, nullptr},
    {Op::Silu, "Silu", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false, nullptr},
    {Op::QLinearSigmoid, "QLinearSigmoid", 4, 5, D::Uint8, s::not_lowered, R::QuantizedFormat, false, false, nullptr},
    {Op::QLinearLeakyRelu, "QLinearLeakyRelu", 4, 5, D::Uint8, s::not_lowered, R::QuantizedFormat, false, false,
     nullptr},
    {Op::QuantizedDenseFloat, "QuantizedDenseFloat", 2, 3, D::Dequantize, s::dense, R::Integer, false, false, nullptr},
    {Op::QuantizedConvTranspose, "QuantizedConvTranspose", 2, 3, D::Uint8, s::conv_transpose, R::Integer, false, false,
     nullptr},
    {Op::Gelu, "Gelu", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false, nullptr},
    {Op::QLinearConcat, "QLinearConcat", 5, kVariadic, D::Uint8, s::not_lowered, R::QuantizedFormat, false, false,
     nullptr},
    {Op::QLinearMul, "QLinearMul", 7, 8, D::Uint8, s::not_lowered, R::QuantizedFormat, false, false, nullptr},
    {Op::QLinearAveragePool, "QLinearAveragePool", 4, 5, D::Uint8, s::not_lowered, R::QuantizedFormat, false, false,
     nullptr},
    {Op::QuantizedConvFloat, "QuantizedConvFloat", 2, 3, D::Dequantize, s::conv, R::Integer, false, false, nullptr},
    {Op::ChannelShuffle, "ChannelShuffle", 1, 1, D::SameAsInput, s::channel_shuffle, R::PassThrough, false, false,
     nullptr},
};

constexpr bool rows_in_enum_order() {
  for (size_t i = 0; i < sizeof(kTraits) / sizeof(kTraits[0]); ++i)
    if (static_cast<size_t>(kTraits[i].op) != i) return false;
  return true;
}
static_assert(sizeof(kTraits) / sizeof(kTraits[0]) == kOpCount, "one row per Op");
static_assert(rows_in_enum_order(), "rows in the order of the Op enum");

}  // namespace

const OpTraits& op_traits(Op op) { return kTraits[static_cast<size_t>(op)]; }

const char* op_name(Op op) { return static_cast<size_t>(op) < kOpCount ? op_traits(op).name : "?"; }

}  // namespace q8::ir
