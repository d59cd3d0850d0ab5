// Graph passes: rewrites of the IR that keep its meaning. Each throws q8::Error naming the node
// when the graph is malformed in a way only that pass can see.
#pragma once

#include "ir/graph.h"
#include "ir/shape_inference.h"  // the passes run and check shapes

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
// An op whose traits absorb activations (Conv, Gemm, Add) followed by Relu or Clip (the only reader) takes the
// activation as float attributes "act_min"/"act_max"; the activation node disappears.
void fuse_activations(Graph& g);
// A residual block's fp32 Add (Conv(x) + z, then usually Relu) becomes the Conv's fourth input,
// z, added to its sums before its clamp: the Conv adds each block of output pixels while it is
// still in cache instead of a separate pass over two tensors (kernels/f32.h, F32Epilogue). It
// fuses when the Conv's result is read only by the Add, z is computed before the Conv runs, and
// both operands have the output's shape; the bits are those of the Conv followed by the Add. It
// runs before fuse_activations, which then gives the Conv the clamp of a Relu after the Add.
void fuse_residual_add(Graph& g);
// An element-wise activation (an op whose int8 role is TableLookup: Silu, HardSwish, Sigmoid,
// LeakyRelu...) that alone reads an fp32 Conv's result becomes the Conv's "act_unary" (the op, with
// its alpha/beta as "act_unary_alpha"/"act_unary_beta"), applied after the Conv's residual and
// clamp to each block of output pixels while it is in cache (kernels/f32.h, F32Epilogue): one pass
// over the tensor instead of two, the bits of the separate step. It runs after fuse_activations,
// so a Relu or Clip between the Conv and the activation is the Conv's clamp, and one after it
// stays a step of its own.
void fuse_unary_activation(Graph& g);
// Every QuantizedDense and QuantizedDenseFloat gets "rows": the rows of its product at batch 1 (1
// for a classifier, 3136 for ConvNeXt's MLPs over 56x56 pixels), from shapes inferred once on a
// copy. The runtime picks the kernel table's weights by it (runtime/ops/quantized_dense.cpp), so
// packing and planning read one decision. A graph whose shapes cannot be inferred at batch 1
// before its inputs are given gets no attribute.
void mark_dense_rows(Graph& g);
// In an int8 graph, x * f(x) (SiLU, HardSwish as opset 13 exports it: a QuantizedMul of x and an
// element-wise activation of x that only the Mul reads) becomes the activation node alone with
// "gate" set: its 256-entry table then gives the Mul's result for each code of x, one lookup
// instead of a lookup and a multiply. The activation's own output quantization and clamp, which
// the table still goes through, move to "gate_scale", "gate_zero_point", "gate_qmin" and
// "gate_qmax"; the Mul's clamp becomes the node's, and "gate_of" names the Mul. The bytes are
// those of the two steps.
void fuse_quantized_gate(Graph& g);
// SiLU as exported (x * Sigmoid(x), the Sigmoid read only by the Mul, float) becomes one Silu node:
// one pass over the tensor instead of two. Silu has no ONNX form, so this runs after simplify().
void fuse_silu(Graph& g);
// GELU as PyTorch exports nn.GELU (Div by sqrt(2), Erf, Add 1, Mul by x, Mul by 0.5, each result
// read only by the next) becomes one Gelu node, bit for bit the same result in fp32. The
// quantizer runs it too, so the whole activation is one 256-entry table in int8.
void fuse_gelu(Graph& g);
// LayerNorm over the last axis as PyTorch exports it before opset 17 (ReduceMean, Sub, Pow 2,
// ReduceMean, Add eps, Sqrt, Div, Mul by a [C] weight, Add a [C] bias) becomes one
// LayerNormalization: one pass over each row instead of nine. It runs after simplify(), so a saved
// model keeps the opset it was written at.
void fuse_layer_norm(Graph& g);

// QDQ patterns and QOperator nodes become q8's integer ops (QuantizedConv, QuantizedDense,
// QuantizedAdd, pools and reshapes on uint8), with every uint8 value's scale and zero point
// set; dequantized constants left over become float constants. A no-op on float graphs.
void lower_quantized(Graph& g);

// The load-time pipeline, in two halves. simplify() keeps the graph expressible in standard
// ONNX (what the quantizer rewrites and Model::save writes): constants folded, identities gone,
// Clip canonical, BatchNormalization folded. lower_for_runtime() then makes q8's own form:
// quantized patterns lowered to integer ops, residual adds and activations fused. optimize()
// runs both.
void simplify(Graph& g);
void lower_for_runtime(Graph& g);
void optimize(Graph& g);

}  // namespace q8::ir
