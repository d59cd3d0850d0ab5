// Which OpRuntime runs each op: one row per Op, in the enum's order (checked at compile time).
#include "runtime/ops/ops.h"

namespace q8::rt {

namespace {

void plan_not_planned(Plan::Builder& pb, size_t, const ir::Node& n) {
  fail(pb.g, n, "internal: op should have been rewritten before planning");
}
std::string not_planned_kernel(const ir::Graph&, const ir::Node&, const Dispatch&) { return "(not run)"; }

struct Row {
  ir::Op op;
  const OpRuntime* runtime;
};

using ir::Op;
constexpr Row kRows[] = {
    {Op::Conv, &kConvRuntime},
    {Op::Relu, &kClampRuntime},
    {Op::Clip, &kClampRuntime},
    {Op::MaxPool, &kPoolRuntime},
    {Op::AveragePool, &kPoolRuntime},
    {Op::GlobalAveragePool, &kPoolRuntime},
    {Op::Flatten, &kViewRuntime},
    {Op::Gemm, &kGemmRuntime},
    {Op::MatMul, &kGemmRuntime},
    {Op::Add, &kBinaryRuntime},
    {Op::BatchNormalization, &kBatchNormRuntime},
    {Op::Identity, &kCopyRuntime},
    {Op::Dropout, &kCopyRuntime},
    {Op::Constant, &kNotPlannedRuntime},  // folded at load
    {Op::Reshape, &kViewRuntime},
    {Op::Pad, &kPadRuntime},
    {Op::QuantizeLinear, &kQuantizeRuntime},
    {Op::DequantizeLinear, &kDequantizeRuntime},
    // QOperator ops: lower_quantized() rewrites them into q8's integer ops.
    {Op::QLinearConv, &kNotPlannedRuntime},
    {Op::QLinearMatMul, &kNotPlannedRuntime},
    {Op::QLinearAdd, &kNotPlannedRuntime},
    {Op::QLinearGlobalAveragePool, &kNotPlannedRuntime},
    {Op::QGemm, &kNotPlannedRuntime},
    {Op::QuantizedConv, &kQuantizedConvRuntime},
    {Op::QuantizedDense, &kQuantizedDenseRuntime},
    {Op::QuantizedAdd, &kQuantizedAddRuntime},
    {Op::Concat, &kConcatRuntime},
    // Evaluated by infer_shapes() (their inputs are shapes and constants), never planned.
    {Op::Shape, &kNotPlannedRuntime},
    {Op::Gather, &kNotPlannedRuntime},
    {Op::Cast, &kNotPlannedRuntime},
    {Op::ConstantOfShape, &kNotPlannedRuntime},
    {Op::Unsqueeze, &kViewRuntime},
    {Op::Squeeze, &kViewRuntime},
    {Op::Slice, &kSliceRuntime},
    {Op::Transpose, &kTransposeRuntime},
    {Op::Resize, &kResizeRuntime},
    {Op::ConvTranspose, &kConvTransposeRuntime},
    {Op::Mul, &kBinaryRuntime},
    {Op::Sub, &kBinaryRuntime},
    {Op::Div, &kBinaryRuntime},
    {Op::Pow, &kBinaryRuntime},
    {Op::ReduceMean, &kReduceMeanRuntime},
    {Op::Softmax, &kSoftmaxRuntime},
    {Op::LogSoftmax, &kSoftmaxRuntime},
    {Op::LayerNormalization, &kLayerNormRuntime},
    {Op::QuantizedMul, &kQuantizedMulRuntime},
    {Op::Sigmoid, &kUnaryRuntime},
    {Op::Tanh, &kUnaryRuntime},
    {Op::HardSigmoid, &kUnaryRuntime},
    {Op::HardSwish, &kUnaryRuntime},
    {Op::LeakyRelu, &kUnaryRuntime},
    {Op::Elu, &kUnaryRuntime},
    {Op::Erf, &kUnaryRuntime},
    {Op::Sqrt, &kUnaryRuntime},
    {Op::Exp, &kUnaryRuntime},
    {Op::Silu, &kUnaryRuntime},
    {Op::QLinearSigmoid, &kNotPlannedRuntime},    // lowered to Sigmoid on uint8
    {Op::QLinearLeakyRelu, &kNotPlannedRuntime},  // lowered to LeakyRelu on uint8
    {Op::QuantizedDenseFloat, &kQuantizedDenseFloatRuntime},
    {Op::QuantizedConvTranspose, &kQuantizedConvTransposeRuntime},
    {Op::Gelu, &kUnaryRuntime},
    {Op::QLinearConcat, &kNotPlannedRuntime},       // rewritten as DequantizeLinear -> Concat -> QuantizeLinear
    {Op::QLinearMul, &kNotPlannedRuntime},          // ... -> Mul -> ...
    {Op::QLinearAveragePool, &kNotPlannedRuntime},  // ... -> AveragePool -> ...
    {Op::QuantizedConvFloat, &kQuantizedConvFloatRuntime},
    {Op::ChannelShuffle, &kChannelShuffleRuntime},
};

constexpr bool rows_in_enum_order() {
  for (size_t i = 0; i < sizeof(kRows) / sizeof(kRows[0]); ++i)
    if (static_cast<size_t>(kRows[i].op) != i) return false;
  return true;
}
static_assert(sizeof(kRows) / sizeof(kRows[0]) == ir::kOpCount, "one row per Op");
static_assert(rows_in_enum_order(), "rows in the order of the Op enum");

}  // namespace

const OpRuntime kNotPlannedRuntime = {nullptr, plan_not_planned, not_planned_kernel, nullptr};

const OpRuntime& op_runtime(ir::Op op) { return *kRows[static_cast<size_t>(op)].runtime; }

}  // namespace q8::rt
