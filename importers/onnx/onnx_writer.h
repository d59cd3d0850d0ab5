// q8 graph IR -> ONNX ModelProto: the inverse of onnx_importer.h, so `q8 quantize` writes a
// standard QDQ ONNX file that q8 and ONNX Runtime both run.
#pragma once
#include <string>
#include "ir/graph.h"
namespace q8::onnx {
// Serializes `g` as an ONNX model (default-domain opset max(13, g.opset), IR version 8,
// producer "q8"). Supported: every op the importer maps from the default domain (Conv, Relu,
// Clip, MaxPool, AveragePool, GlobalAveragePool, Flatten, Gemm, MatMul, Add, BatchNormalization,
// Identity, Dropout, Reshape, QuantizeLinear, DequantizeLinear; also Constant, QLinearConv,
// QLinearMatMul, and com.microsoft's QLinearAdd, QLinearGlobalAveragePool, QGemm). q8-internal ops
// (QuantizedConv, QuantizedDense, QuantizedAdd) and internal attributes (act_min, act_max,
// act_op, qmin, qmax, w_scale) are refused with q8::Error naming the node: export a graph
// before fusion/lowering.
std::string serialize_model(const ir::Graph& g);
// Writes serialize_model(g) to `path` through a temporary file in the same folder and a rename,
// so `path` is written whole or not at all; q8::Error naming the path on failure.
void save_model(const ir::Graph& g, const std::string& path);
}  // namespace q8::onnx
