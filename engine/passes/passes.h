// Graph passes: rewrites of the IR that keep its meaning. Each throws q8::Error naming the node
// when the graph is malformed in a way only that pass can see.
#pragma once

#include "ir/graph.h"

namespace q8::ir {

// Constant nodes become constant values; Identity/Reshape/Flatten of constants are evaluated.
void fold_constants(Graph& g);
// A zero-valued constant Pad of the spatial axes whose only reader is a Conv (or an AveragePool
// without ceil_mode that counts padding) becomes that reader's own padding.
void fold_pad(Graph& g);
// Identity and inference-mode Dropout forward their input.
void remove_identities(Graph& g);
// Clip's min/max inputs (opset >= 11) become float attributes "min"/"max", so later passes and
// the runtime see one form. Non-constant bounds are refused.
void canonicalize_clip(Graph& g);
// Conv followed by BatchNormalization (whose only reader it is) becomes one Conv with scaled
// weights and shifted bias: w' = w * g/sqrt(v+eps), b' = (b - m) * g/sqrt(v+eps) + beta.
void fold_batch_norm(Graph& g);
// Conv/Gemm/Add followed by Relu or Clip (the only reader) takes the activation as float
// attributes "act_min"/"act_max"; the activation node disappears.
void fuse_activations(Graph& g);

// Computes every value's shape from concrete shapes for the graph inputs (each checked against
// the declared shape: known dims must match). Validates ranks, channel counts, kernel sizes and
// resolves auto_pad into explicit "pads". Writes shapes into g.values.
void infer_shapes(Graph& g, const std::vector<Shape>& input_shapes);
// The declared input shapes with unknown dims set to `batch` on axis 0; throws naming the input
// if another axis is unknown.
std::vector<Shape> input_shapes_for_batch(const Graph& g, int64_t batch);

// QDQ patterns and QOperator nodes become q8's integer ops (QuantizedConv, QuantizedDense,
// QuantizedAdd, pools and reshapes on uint8), with every uint8 value's scale and zero point
// set; dequantized constants left over become float constants. A no-op on float graphs.
void lower_quantized(Graph& g);

// The load-time pipeline, in two halves. simplify() keeps the graph expressible in standard
// ONNX (what the quantizer rewrites and Model::save writes): constants folded, identities gone,
// Clip canonical, BatchNormalization folded. lower_for_runtime() then makes q8's own form:
// quantized patterns lowered to integer ops and activations fused. optimize() runs both.
void simplify(Graph& g);
void lower_for_runtime(Graph& g);
void optimize(Graph& g);

// Conv/pool output extent along one axis (ONNX formula). Throws if the window never fits.
int64_t pooled_extent(int64_t in, int64_t k, int64_t stride, int64_t dilation, int64_t pad_begin, int64_t pad_end,
                      bool ceil_mode);

}  // namespace q8::ir
