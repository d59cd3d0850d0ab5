// How each op runs: one OpRuntime per op, defined in the op's own file in this folder, found by
// op through op_runtime() (registry.cpp, checked against the Op enum). The plan builder keeps
// buffers, layouts and the arena; an op file packs its weights, plans its steps, names its
// kernel and counts its multiply-accumulates.
#pragma once

#include <cstdint>
#include <string>

#include "ir/graph.h"
#include "kernels/f32.h"
#include "kernels/qu8.h"
#include "runtime/plan_builder.h"

namespace q8::rt {

struct OpRuntime {
  // Packs the node's constant weights for the dispatch's tables, once per session; null when the
  // op has nothing to pack.
  AlignedBuffer (*pack)(const ir::Graph& g, const ir::Node& n, const Dispatch& d);
  // Adds the node's steps to the plan (shapes are inferred; `node` indexes the packed weights).
  void (*plan)(Plan::Builder& b, size_t node, const ir::Node& n);
  // The kernel the node runs with: a table entry's name, or what it does without one.
  std::string (*kernel)(const ir::Graph& g, const ir::Node& n, const Dispatch& d);
  // Multiply-accumulates per run at the inferred shapes; null for ops that do none.
  int64_t (*macs)(const ir::Graph& g, const ir::Node& n);
};

const OpRuntime& op_runtime(ir::Op op);

// The requantization of a uint8 pool or global average (pool.cpp): s_in / s_out and the zero points.
kern::QU8PoolParams qu8_pool_params(const ir::Graph& g, const ir::Node& n);

// Multiply-accumulates of a Conv or QuantizedConv (conv.cpp).
int64_t conv_macs(const ir::Graph& g, const ir::Node& n);
// Int8 weights [N][Kd] (a Gemm's, or a 1x1 Conv's [N][Kd][1][1]) in table k's GEMM packing with
// the dequantization scales s_a * s_w[n] as multipliers, for k's gemm_dequantize
// (quantized_dense.cpp).
AlignedBuffer pack_gemm_dequantize(const ir::Graph& g, const ir::Node& n, const kern::QU8Kernels& k);
// The step of such a product: input 0 as [M][Kd] uint8 rows in `layout`, a float [M][N] output
// defined in the same layout, k's gemm_dequantize split by OutputGrid.
void plan_gemm_dequantize(Plan::Builder& pb, size_t i, const ir::Node& n, size_t M, size_t N, size_t Kd,
                          Plan::Builder::Layout layout, const kern::QU8Kernels& k);

// The element-wise activation fused into a Conv (passes.h, fuse_unary_activation: the op in
// "act_unary", its alpha/beta in "act_unary_alpha"/"act_unary_beta"), or kind-less params with
// `fused` false when there is none (unary.cpp, where each activation's kernel and defaults live).
struct FusedUnary {
  bool fused = false;
  kern::UnaryParams params;
};
FusedUnary fused_unary_of(const ir::Graph& g, const ir::Node& n);

// An element-wise step's input and output: input 0 in the layout it has (Plain for a constant),
// an output buffer of the node's size defined in that layout, and the element count.
struct ElementwiseIo {
  int x, y;
  size_t count;
};
ElementwiseIo plan_elementwise_io(Plan::Builder& pb, const ir::Node& n);  // elementwise.cpp

// The op files' rows (registry.cpp maps each Op to one of these).
extern const OpRuntime kConvRuntime;                 // conv.cpp
extern const OpRuntime kQuantizedConvRuntime;        // quantized_conv.cpp
extern const OpRuntime kGemmRuntime;                 // gemm.cpp: Gemm and MatMul
extern const OpRuntime kQuantizedDenseRuntime;       // quantized_dense.cpp
extern const OpRuntime kQuantizedDenseFloatRuntime;  // quantized_dense.cpp
extern const OpRuntime kBinaryRuntime;               // binary.cpp: Add, Sub, Mul, Div, Pow
extern const OpRuntime kQuantizedAddRuntime;         // quantized_add.cpp
extern const OpRuntime kPoolRuntime;                 // pool.cpp: MaxPool, AveragePool, GlobalAveragePool
extern const OpRuntime kClampRuntime;                // elementwise.cpp: Relu, Clip
extern const OpRuntime kCopyRuntime;                 // elementwise.cpp: Identity, Dropout
extern const OpRuntime kQuantizeRuntime;             // elementwise.cpp
extern const OpRuntime kDequantizeRuntime;           // elementwise.cpp
extern const OpRuntime kPadRuntime;                  // pad.cpp
extern const OpRuntime kViewRuntime;                 // view.cpp: Flatten, Reshape
extern const OpRuntime kBatchNormRuntime;            // batch_norm.cpp
extern const OpRuntime kConcatRuntime;               // concat.cpp
extern const OpRuntime kSliceRuntime;                // strided_copy.cpp
extern const OpRuntime kTransposeRuntime;            // strided_copy.cpp
extern const OpRuntime kChannelShuffleRuntime;       // strided_copy.cpp
extern const OpRuntime kResizeRuntime;               // resize.cpp
extern const OpRuntime kConvTransposeRuntime;        // conv_transpose.cpp
extern const OpRuntime kReduceMeanRuntime;           // reduce_mean.cpp
extern const OpRuntime kSoftmaxRuntime;              // softmax.cpp: Softmax, LogSoftmax
extern const OpRuntime kLayerNormRuntime;            // layer_norm.cpp
extern const OpRuntime kQuantizedMulRuntime;         // quantized_mul.cpp
extern const OpRuntime kUnaryRuntime;                // unary.cpp: Sigmoid, Tanh, HardSwish, ...
extern const OpRuntime kNotPlannedRuntime;           // registry.cpp: ops rewritten or evaluated before planning

// conv_transpose.cpp
extern const OpRuntime kQuantizedConvTransposeRuntime;

// quantized_conv_float.cpp
extern const OpRuntime kQuantizedConvFloatRuntime;

}  // namespace q8::rt
