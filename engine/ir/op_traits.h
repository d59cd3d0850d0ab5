// What each op is, in one row per op: its name, how many inputs it takes, the element types it
// reads and writes, its shape rule, its role in an int8 graph, and whether a following Relu/Clip
// may fuse into it. Every pass, the quantizer, the importer and the runtime ask this table instead
// of keeping lists of ops of their own.
#pragma once

#include <climits>
#include <cstdint>

#include "ir/graph.h"

namespace q8::ir {

// The part an op plays when a graph runs in int8.
enum class Int8Role : uint8_t {
  Weighted,         // Conv, Gemm, MatMul: int8 weights, int32 sums, a requantized uint8 output
  Requantizing,     // Add, AveragePool, GlobalAveragePool, Concat: uint8 in, uint8 out at a new scale
  TableLookup,      // unary ops that run in int8 as a 256-entry table from input to output byte
  PassThrough,      // MaxPool, Flatten, Reshape, Pad (zero), Identity, Dropout: the input's
                    // scale and zero point carry over to the output unchanged
  Clamp,            // Relu, Clip: absorbed into the producer's output range
  Quantize,         // QuantizeLinear: float -> uint8
  Dequantize,       // DequantizeLinear: uint8 -> float
  QuantizedFormat,  // QLinearConv, QGemm, ...: an int8 op as ONNX files carry it, lowered on load
  Integer,          // QuantizedConv, QuantizedDense, QuantizedAdd, QuantizedMul: q8's own int8 ops
  ShapeOnly,        // Constant, Shape, Gather, Cast, ConstantOfShape: evaluated at load or by
                    // infer_shapes() (their inputs are constants or shapes), never run
  Fp32Only,         // BatchNormalization (folded into the Conv before it): no int8 form
};

// Element types of an op's activations (non-constant inputs) and of its output.
enum class DTypeRule : uint8_t {
  Float,        // float32 in, float32 out
  Uint8,        // uint8 in, uint8 out (the integer ops)
  SameAsInput,  // either, the output's type being the first input's
  Quantize,     // float32 in, uint8 out
  Dequantize,   // uint8 in, float32 out
  Int64,        // any type in, int64 out (Shape)
};

class ShapeContext;
// Computes a node's output shape from its inputs' shapes (and may resolve attributes such as
// auto_pad into explicit pads); throws q8::Error naming the node when the inputs do not fit.
using ShapeRule = Shape (*)(ShapeContext& c);
// Computes a node's output from constant inputs (and, for Shape, its input's shape), given the
// output shape its shape rule found; null for ops that are never evaluated before run time.
using ConstEval = ConstTensorPtr (*)(const Graph& g, const Node& n, const Shape& out);

constexpr int kVariadic = INT_MAX;  // max_inputs of an op that takes any number of inputs

struct OpTraits {
  Op op;
  const char* name;
  int min_inputs, max_inputs;  // counting omitted optional inputs (kNoValue) that precede given ones
  DTypeRule dtype;
  ShapeRule shape;
  Int8Role int8;
  bool absorbs_activation;  // a Relu/Clip reading only its output fuses into it (as a clamp)
  bool view;                // the output is the input's bytes, unchanged (no step runs)
  ConstEval eval;           // folds the op when its inputs are known before run time, or null
};

const OpTraits& op_traits(Op op);

}  // namespace q8::ir
