// What an fp32 Conv does to its output blocks (kernels/f32.h, F32Epilogue): a residual block's Add
// fused into the Conv before it (passes.h, fuse_residual_add) and an activation after it
// (fuse_unary_activation). The fused model gives the bits of the same model run as separate steps,
// on every conv path (GEMM, grouped, depthwise, kernel rows, the blocked reduction of deep
// layers), at 1, 2 and 3 threads; the Add fuses only where the operands have the output's shape.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "q8/q8.h"
#include "tests/onnx_model_builder.h"
#include "tests/test_util.h"

namespace {

using q8::test::random_floats;
using q8::test::same_bytes;
using q8test::OnnxModelBuilder;
using q8test::set_int;
using q8test::set_ints;

struct Block {
  int64_t N = 1, C = 8, H = 9, W = 9, K = 8, kernel = 3, group = 1;
  bool residual = true;         // x -> Conv -> Add x, else no Add
  bool residual_first = false;  // Add(x, conv) rather than Add(conv, x)
  bool relu = true;             // then a Relu
  std::string act;              // then this activation: "Silu" (as Sigmoid and Mul), or an ONNX op
  bool dynamic_batch = false;
};

// x -> Conv (same padding) -> [Add x] -> [Relu] -> [activation] -> y; with `observe_conv`, the
// Conv's result is a graph output too, which keeps what follows it steps of their own.
std::string block_model(const Block& b, bool observe_conv) {
  OnnxModelBuilder mb;
  mb.input("x", {b.dynamic_batch ? -1 : b.N, b.C, b.H, b.W});
  mb.init_f("w", {b.K, b.C / b.group, b.kernel, b.kernel},
            random_floats(static_cast<size_t>(b.K * (b.C / b.group) * b.kernel * b.kernel), 7));
  mb.init_f("b", {b.K}, random_floats(static_cast<size_t>(b.K), 8));
  auto& conv = mb.node("Conv", {"x", "w", "b"}, {"c"}, "conv");
  const int64_t pad = b.kernel / 2;
  set_ints(conv, "pads", {pad, pad, pad, pad});
  set_int(conv, "group", b.group);
  std::string last = "c";
  if (b.residual) {
    mb.node("Add", b.residual_first ? std::vector<std::string>{"x", "c"} : std::vector<std::string>{"c", "x"}, {"s"},
            "add");
    last = "s";
  }
  if (b.relu) {
    mb.node("Relu", {last}, {"r"}, "relu");
    last = "r";
  }
  if (b.act == "Silu") {
    mb.node("Sigmoid", {last}, {"sig"}, "sigmoid");
    mb.node("Mul", {last, "sig"}, {"a"}, "mul");
    last = "a";
  } else if (!b.act.empty()) {
    auto& act = mb.node(b.act, {last}, {"a"}, "act");
    if (b.act == "LeakyRelu" || b.act == "HardSigmoid") q8test::set_float(act, "alpha", 0.125f);
    last = "a";
  }
  mb.node("Identity", {last}, {"y"}, "id");
  mb.output("y");
  if (observe_conv) mb.output("c");
  return mb.bytes();
}

q8::Model load(const std::string& bytes, const char* name) {
  return q8::Model::load_from_memory(bytes.data(), bytes.size(), name);
}

void expect_fused_matches_two_steps(const Block& b) {
  const q8::Model fused = load(block_model(b, false), "fused.onnx");
  const q8::Model steps = load(block_model(b, true), "steps.onnx");
  const std::vector<q8::NodeInfo> info = fused.describe(b.N);
  ASSERT_EQ(info.size(), 1u) << "the Add and the activations are part of the Conv";
  const std::string want_params =
      std::string(b.residual ? " +Add(x)" : "") + (b.relu ? " +Relu" : "") + (b.act.empty() ? "" : " +" + b.act);
  EXPECT_NE((" " + info[0].params).find(want_params), std::string::npos) << info[0].params;
  EXPECT_GT(steps.describe(b.N).size(), 1u);
  q8::Tensor x({b.N, b.C, b.H, b.W});
  const std::vector<float> v = random_floats(static_cast<size_t>(x.numel()), 9, -2.f, 2.f);
  std::copy(v.begin(), v.end(), x.data());
  const q8::Tensor want = q8::Session(steps, {1}).run({x}).at(0);
  for (int threads : {1, 2, 3}) {
    const q8::Tensor got = q8::Session(fused, {threads}).run({x}).at(0);
    EXPECT_TRUE(same_bytes(got, want)) << threads << " thread(s)";
  }
}

TEST(ConvEpilogue, FusedConvGivesTheBitsOfConvThenAdd) {
  expect_fused_matches_two_steps({});
  Block first;
  first.residual_first = true;
  expect_fused_matches_two_steps(first);
}

TEST(ConvEpilogue, EveryConvPath) {
  Block pointwise;  // 1x1, many pixels: several pixel blocks, panels split across threads
  pointwise.C = pointwise.K = 96, pointwise.H = pointwise.W = 30, pointwise.kernel = 1;
  expect_fused_matches_two_steps(pointwise);
  Block grouped;  // one channel range per group: rows that are not contiguous
  grouped.C = grouped.K = 24, grouped.group = 3;
  expect_fused_matches_two_steps(grouped);
  Block depthwise;
  depthwise.C = depthwise.K = depthwise.group = 40, depthwise.H = depthwise.W = 17;
  expect_fused_matches_two_steps(depthwise);
  Block deep;  // a 3x3x512 reduction on 7x7 pixels: the blocked order
  deep.C = deep.K = 512, deep.H = deep.W = 7;
  expect_fused_matches_two_steps(deep);
  Block rows;  // three channels: a first layer, run over kernel rows
  rows.C = rows.K = 3, rows.H = 11, rows.W = 10, rows.kernel = 5;
  expect_fused_matches_two_steps(rows);
  Block batch;
  batch.N = 2, batch.dynamic_batch = true;
  expect_fused_matches_two_steps(batch);
}

// Activations after the Conv, with and without the residual and the Relu, on every conv path.
TEST(ConvEpilogue, FusedActivationGivesTheBitsOfTheSeparateStep) {
  for (const char* act : {"Silu", "HardSwish", "LeakyRelu", "HardSigmoid", "Sigmoid", "Tanh"}) {
    SCOPED_TRACE(act);
    Block plain;
    plain.residual = false, plain.relu = false, plain.act = act;
    expect_fused_matches_two_steps(plain);
    Block after_add = plain;
    after_add.residual = after_add.relu = true;
    expect_fused_matches_two_steps(after_add);
  }
  for (bool residual : {false, true}) {
    SCOPED_TRACE(residual ? "after a residual" : "alone");
    Block b;
    b.residual = residual, b.relu = false, b.act = "Silu";
    Block pointwise = b;  // several pixel blocks, panels split across threads
    pointwise.C = pointwise.K = 96, pointwise.H = pointwise.W = 30, pointwise.kernel = 1;
    expect_fused_matches_two_steps(pointwise);
    Block grouped = b;
    grouped.C = grouped.K = 24, grouped.group = 3;
    expect_fused_matches_two_steps(grouped);
    Block depthwise = b;
    depthwise.C = depthwise.K = depthwise.group = 40, depthwise.H = depthwise.W = 17;
    expect_fused_matches_two_steps(depthwise);
    Block deep = b;
    deep.C = deep.K = 512, deep.H = deep.W = 7;
    expect_fused_matches_two_steps(deep);
    Block rows = b;
    rows.C = rows.K = 3, rows.H = 11, rows.W = 10, rows.kernel = 5;
    expect_fused_matches_two_steps(rows);
  }
}

// A bottleneck's last Conv, with the block's input h as its residual, writes its output over h
// when nothing reads h after it (runtime/plan_builder.h, may_overwrite). Where h is still read
// later (by another node, or through a view of it) it must not: each way the fused model gives
// the bits of the model whose Conv output is observed (no fused Add, nothing written over).
//   x -> conv_a -> h -> conv_b -> h1 -> conv_c -> c; Add(c, h) -> s -> Relu -> y
//   later = "reader": y2 = Add(y, h) after it; "view": hv = Reshape(h) before conv_c (a view of
//   h's buffer where the layouts agree), y2 = Relu(hv) after it
std::string bottleneck_model(const std::string& later, int64_t C, int64_t HW, int64_t kernel, bool observe_conv) {
  OnnxModelBuilder mb;
  mb.input("x", {1, C, HW, HW});
  const size_t wn = static_cast<size_t>(C * C * kernel * kernel);
  const int64_t pad = kernel / 2;
  std::string in = "x";
  const char* names[] = {"a", "b", "c"};
  const char* outs[] = {"h", "h1", "c"};
  for (int i = 0; i < 3; ++i) {
    mb.init_f(std::string("w") + names[i], {C, C, kernel, kernel}, random_floats(wn, 20 + i));
    mb.init_f(std::string("b") + names[i], {C}, random_floats(static_cast<size_t>(C), 30 + i));
    if (i == 2 && later == "view") {
      mb.init_i64("hv_shape", {4}, {1, C, HW, HW});
      mb.node("Reshape", {"h", "hv_shape"}, {"hv"}, "view");
    }
    auto& conv = mb.node("Conv", {in, std::string("w") + names[i], std::string("b") + names[i]}, {outs[i]},
                         std::string("conv_") + names[i]);
    set_ints(conv, "pads", {pad, pad, pad, pad});
    in = outs[i];
  }
  mb.node("Add", {"c", "h"}, {"s"}, "add");
  mb.node("Relu", {"s"}, {"y"}, "relu");
  mb.output("y");
  if (later == "reader") {
    mb.node("Add", {"y", "h"}, {"y2"}, "later_add");
    mb.output("y2");
  } else if (later == "view") {
    mb.node("Relu", {"hv"}, {"y2"}, "later_relu");
    mb.output("y2");
  }
  if (observe_conv) mb.output("c");
  return mb.bytes();
}

TEST(ConvEpilogue, ResidualIsWrittenOverOnlyWhenNothingReadsItLater) {
  struct Shape {
    int64_t C, HW, kernel;
  };
  // 3x3 over 16 channels (one pass), 1x1 over 96 (several pixel blocks, panels across threads),
  // and one pixel, where NHWC and C order are the same bytes, so the Reshape shares h's buffer.
  for (const Shape sh : {Shape{16, 9, 3}, Shape{96, 30, 1}, Shape{32, 1, 1}}) {
    for (const char* later : {"", "reader", "view"}) {
      SCOPED_TRACE(std::string("later: '") + later + "', C " + std::to_string(sh.C));
      const q8::Model m = load(bottleneck_model(later, sh.C, sh.HW, sh.kernel, false), "bottleneck.onnx");
      const q8::Model steps = load(bottleneck_model(later, sh.C, sh.HW, sh.kernel, true), "steps.onnx");
      q8::Tensor x({1, sh.C, sh.HW, sh.HW});
      const std::vector<float> v = random_floats(static_cast<size_t>(x.numel()), 11, -2.f, 2.f);
      std::copy(v.begin(), v.end(), x.data());
      const std::vector<q8::Tensor> want = q8::Session(steps, {1}).run({x});
      for (int threads : {1, 2, 3}) {
        const std::vector<q8::Tensor> got = q8::Session(m, {threads}).run({x});
        ASSERT_EQ(got.size() + 1, want.size());
        for (size_t o = 0; o < got.size(); ++o)
          EXPECT_TRUE(same_bytes(got[o], want[o])) << "output " << o << ", " << threads << " thread(s)";
      }
    }
  }
}

// An operand that broadcasts (a per-channel term) stays a separate Add.
TEST(ConvEpilogue, BroadcastOperandIsNotFused) {
  OnnxModelBuilder mb;
  mb.input("x", {1, 4, 5, 5});
  mb.init_f("w", {4, 4, 1, 1}, random_floats(16, 3));
  mb.node("Conv", {"x", "w"}, {"c"}, "conv");
  mb.node("GlobalAveragePool", {"x"}, {"m"}, "pool");
  mb.node("Add", {"c", "m"}, {"y"}, "add");
  mb.output("y");
  const q8::Model m = load(mb.bytes(), "broadcast.onnx");
  const std::vector<q8::NodeInfo> info = m.describe(1);
  ASSERT_EQ(info.size(), 3u);
  EXPECT_EQ(info[2].op, "Add");
}

}  // namespace
