// A residual block's fp32 Add fused into the Conv before it (passes.h, fuse_residual_add): the
// fused model gives the bits of the same model run as two steps, on every conv path (GEMM,
// grouped, depthwise, kernel rows, the blocked reduction of deep layers), at 1, 2 and 3 threads,
// and only where the operands have the output's shape.
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
  bool residual_first = false;  // Add(x, conv) rather than Add(conv, x)
  bool dynamic_batch = false;
};

// x -> Conv (same padding) -> Add x -> Relu -> y; with `observe_conv`, the Conv's result is a
// graph output too, which keeps the Add a step of its own.
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
  mb.node("Add", b.residual_first ? std::vector<std::string>{"x", "c"} : std::vector<std::string>{"c", "x"}, {"s"},
          "add");
  mb.node("Relu", {"s"}, {"y"}, "relu");
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
  ASSERT_EQ(info.size(), 1u) << "the Add and the Relu are part of the Conv";
  EXPECT_NE(info[0].params.find("+Add(x) +Relu"), std::string::npos) << info[0].params;
  EXPECT_EQ(steps.describe(b.N).size(), 2u);
  q8::Tensor x({b.N, b.C, b.H, b.W});
  const std::vector<float> v = random_floats(static_cast<size_t>(x.numel()), 9, -2.f, 2.f);
  std::copy(v.begin(), v.end(), x.data());
  const q8::Tensor want = q8::Session(steps, {1}).run({x}).at(0);
  for (int threads : {1, 2, 3}) {
    const q8::Tensor got = q8::Session(fused, {threads}).run({x}).at(0);
    EXPECT_TRUE(same_bytes(got, want)) << threads << " thread(s)";
  }
}

TEST(ResidualAdd, FusedConvGivesTheBitsOfConvThenAdd) {
  expect_fused_matches_two_steps({});
  Block first;
  first.residual_first = true;
  expect_fused_matches_two_steps(first);
}

TEST(ResidualAdd, EveryConvPath) {
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

// An operand that broadcasts (a per-channel term) stays a separate Add.
TEST(ResidualAdd, BroadcastOperandIsNotFused) {
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
