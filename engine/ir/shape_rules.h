// The shape rules of op_traits.cpp's rows (defined in shape_inference.cpp).
#pragma once

#include "ir/shape_inference.h"

namespace q8::ir::shape_rules {

Shape conv(ShapeContext& c);         // Conv, QuantizedConv
Shape pool(ShapeContext& c);         // MaxPool, AveragePool
Shape global_pool(ShapeContext& c);  // GlobalAveragePool
Shape flatten(ShapeContext& c);
Shape reshape(ShapeContext& c);
Shape gemm(ShapeContext& c);
Shape matmul(ShapeContext& c);
Shape broadcast_binary(ShapeContext& c);    // NumPy broadcasting of two inputs
Shape same_shape_binary(ShapeContext& c);   // two inputs of one shape
Shape per_channel_binary(ShapeContext& c);  // QuantizedMul: one shape, or a per-channel term (is_per_channel_term)
Shape dense(ShapeContext& c);               // QuantizedDense
Shape unary(ShapeContext& c);               // the first input's shape
Shape pad(ShapeContext& c);
Shape batch_norm(ShapeContext& c);
Shape concat(ShapeContext& c);          // inputs of one rank, equal but along "axis"
Shape resize(ShapeContext& c);          // NCHW, spatial axes scaled (resize_geometry)
Shape conv_transpose(ShapeContext& c);  // ConvTranspose, QuantizedConvTranspose: NCHW
Shape not_lowered(ShapeContext& c);     // QOperator ops: lower_quantized() rewrites them first
Shape not_folded(ShapeContext& c);      // Constant: folded at load
// shape_ops.cpp
Shape shape_of(ShapeContext& c);  // Shape
Shape gather(ShapeContext& c);
Shape constant_of_shape(ShapeContext& c);
Shape unsqueeze(ShapeContext& c);
Shape squeeze(ShapeContext& c);
Shape slice(ShapeContext& c);
Shape transpose(ShapeContext& c);
Shape channel_shuffle(ShapeContext& c);  // ChannelShuffle: 4-D, "group" dividing the channels
Shape reduce(ShapeContext& c);           // ReduceMean (reduced_axes, shape_inference.h)
Shape softmax(ShapeContext& c);          // Softmax, LogSoftmax: "axis" normalised
Shape layer_norm(ShapeContext& c);       // LayerNormalization (also shapes the mean and inv_std_dev outputs)

}  // namespace q8::ir::shape_rules

// The ops' evaluations on constants (op_traits.h's ConstEval), in shape_ops.cpp.
namespace q8::ir::const_evals {

// Views (Reshape, Flatten, Identity, Dropout, Unsqueeze, Squeeze): the input's bytes, new dims.
ConstTensorPtr view(const Graph& g, const Node& n, const Shape& out);
ConstTensorPtr concat(const Graph& g, const Node& n, const Shape& out);
ConstTensorPtr arithmetic(const Graph& g, const Node& n, const Shape& out);  // Add/Sub/Mul/Div: int64, float32
ConstTensorPtr shape_of(const Graph& g, const Node& n, const Shape& out);
ConstTensorPtr gather(const Graph& g, const Node& n, const Shape& out);
ConstTensorPtr cast(const Graph& g, const Node& n, const Shape& out);
ConstTensorPtr constant_of_shape(const Graph& g, const Node& n, const Shape& out);
ConstTensorPtr slice(const Graph& g, const Node& n, const Shape& out);
ConstTensorPtr transpose(const Graph& g, const Node& n, const Shape& out);

}  // namespace q8::ir::const_evals
