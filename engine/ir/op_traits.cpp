#include "ir/op_traits.h"

#include "ir/shape_rules.h"

namespace q8::ir {

namespace {

using D = DTypeRule;
using R = Int8Role;
namespace s = shape_rules;

// One row per op, in the order of the Op enum (checked below). Columns: op, name, min and max
// inputs, dtype rule, shape rule, int8 role, absorbs a following Relu/Clip, is a view.
constexpr OpTraits kTraits[] = {
    {Op::Conv, "Conv", 2, 3, D::Float, s::conv, R::Weighted, true, false},
    {Op::Relu, "Relu", 1, 1, D::Float, s::unary, R::Clamp, false, false},
    {Op::Clip, "Clip", 1, 3, D::Float, s::unary, R::Clamp, false, false},
    {Op::MaxPool, "MaxPool", 1, 1, D::SameAsInput, s::pool, R::PassThrough, false, false},
    {Op::AveragePool, "AveragePool", 1, 1, D::SameAsInput, s::pool, R::Requantizing, false, false},
    {Op::GlobalAveragePool, "GlobalAveragePool", 1, 1, D::SameAsInput, s::global_pool, R::Requantizing, false, false},
    {Op::Flatten, "Flatten", 1, 1, D::SameAsInput, s::flatten, R::PassThrough, false, true},
    {Op::Gemm, "Gemm", 2, 3, D::Float, s::gemm, R::Weighted, true, false},
    {Op::MatMul, "MatMul", 2, 2, D::Float, s::matmul, R::Weighted, false, false},
    {Op::Add, "Add", 2, 2, D::Float, s::broadcast_binary, R::Requantizing, true, false},
    {Op::BatchNormalization, "BatchNormalization", 5, 5, D::Float, s::batch_norm, R::Fp32Only, false, false},
    {Op::Identity, "Identity", 1, 1, D::SameAsInput, s::unary, R::PassThrough, false, true},
    {Op::Dropout, "Dropout", 1, 3, D::SameAsInput, s::unary, R::PassThrough, false, true},
    {Op::Constant, "Constant", 0, 0, D::Float, s::not_folded, R::ShapeOnly, false, false},
    {Op::Reshape, "Reshape", 2, 2, D::SameAsInput, s::reshape, R::PassThrough, false, true},
    {Op::Pad, "Pad", 2, 4, D::SameAsInput, s::pad, R::PassThrough, false, false},
    {Op::QuantizeLinear, "QuantizeLinear", 2, 3, D::Quantize, s::unary, R::Quantize, false, false},
    {Op::DequantizeLinear, "DequantizeLinear", 2, 3, D::Dequantize, s::unary, R::Dequantize, false, false},
    {Op::QLinearConv, "QLinearConv", 8, 9, D::Uint8, s::not_lowered, R::QuantizedFormat, false, false},
    {Op::QLinearMatMul, "QLinearMatMul", 8, 8, D::Uint8, s::not_lowered, R::QuantizedFormat, false, false},
    {Op::QLinearAdd, "QLinearAdd", 7, 8, D::Uint8, s::not_lowered, R::QuantizedFormat, false, false},
    {Op::QLinearGlobalAveragePool, "QLinearGlobalAveragePool", 5, 5, D::Uint8, s::not_lowered, R::QuantizedFormat,
     false, false},
    {Op::QGemm, "QGemm", 6, 9, D::Uint8, s::not_lowered, R::QuantizedFormat, false, false},
    {Op::QuantizedConv, "QuantizedConv", 2, 3, D::Uint8, s::conv, R::Integer, false, false},
    {Op::QuantizedDense, "QuantizedDense", 2, 3, D::Uint8, s::dense, R::Integer, false, false},
    {Op::QuantizedAdd, "QuantizedAdd", 2, 2, D::Uint8, s::same_shape_binary, R::Integer, false, false},
    {Op::Concat, "Concat", 1, kVariadic, D::Float, s::concat, R::Fp32Only, false, false},
    {Op::Sigmoid, "Sigmoid", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false},
    {Op::Tanh, "Tanh", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false},
    {Op::HardSigmoid, "HardSigmoid", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false},
    {Op::HardSwish, "HardSwish", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false},
    {Op::LeakyRelu, "LeakyRelu", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false},
    {Op::Elu, "Elu", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false},
    {Op::Erf, "Erf", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false},
    {Op::Sqrt, "Sqrt", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false},
    {Op::Exp, "Exp", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false},
    {Op::Silu, "Silu", 1, 1, D::SameAsInput, s::unary, R::TableLookup, false, false},
    {Op::QLinearSigmoid, "QLinearSigmoid", 4, 5, D::Uint8, s::not_lowered, R::QuantizedFormat, false, false},
    {Op::QLinearLeakyRelu, "QLinearLeakyRelu", 4, 5, D::Uint8, s::not_lowered, R::QuantizedFormat, false, false},
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
