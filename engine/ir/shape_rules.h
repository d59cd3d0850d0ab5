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
Shape concat(ShapeContext& c);       // inputs of one rank, equal but along "axis"
Shape reduce(ShapeContext& c);       // ReduceMean (reduced_axes, shape_inference.h)
Shape softmax(ShapeContext& c);      // Softmax, LogSoftmax: "axis" normalised
Shape layer_norm(ShapeContext& c);   // LayerNormalization (also shapes the mean and inv_std_dev outputs)
Shape not_lowered(ShapeContext& c);  // QOperator ops: lower_quantized() rewrites them first
Shape not_folded(ShapeContext& c);   // Constant: folded at load

}  // namespace q8::ir::shape_rules
