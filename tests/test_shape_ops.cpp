// Shape computations and the layout ops. torch.onnx.export with a dynamic batch writes Reshape
// targets as Shape -> Gather/Slice -> Unsqueeze -> Concat chains: q8 evaluates them for each
// batch size, never at run time. Slice and Transpose on activations are strided copies; a Slice
// of an NHWC convolution output stays NHWC. Each is checked against the same tensor computed
// here, on every kernel path, and bad uses are refused by name.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "q8/q8.h"
#include "tests/onnx_model_builder.h"
#include "tests/test_util.h"

namespace {

using q8test::OnnxModelBuilder;
using q8test::set_int;
using q8test::set_ints;

using q8::test::random_floats;

q8::Model load(const OnnxModelBuilder& b, const std::string& name) {
  const std::string bytes = b.bytes();
  return q8::Model::load_from_memory(bytes.data(), bytes.size(), name);
}

// x [N,3,4,5] -> Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) and, in the same
// graph, Reshape(x, Concat(Slice(Shape(x), 0, 2), [20])): PyTorch's x.flatten(1) and
// x.flatten(2) with a dynamic batch.
TEST(ShapeOps, DynamicBatchReshapeTargetsAreEvaluatedPerBatch) {
  OnnxModelBuilder b(13);
  b.input("x", {-1, 3, 4, 5});
  b.node("Shape", {"x"}, {"s"}, "shape");
  b.init_i64("zero", {}, {0});
  set_int(b.node("Gather", {"s", "zero"}, {"n"}, "batch"), "axis", 0);
  b.init_i64("axes0", {1}, {0});
  b.node("Unsqueeze", {"n", "axes0"}, {"n1"}, "unsqueeze");
  b.init_i64("minus1", {1}, {-1});
  set_int(b.node("Concat", {"n1", "minus1"}, {"t1"}, "target1"), "axis", 0);
  b.node("Reshape", {"x", "t1"}, {"y1"}, "flatten1");
  b.init_i64("s0", {1}, {0});
  b.init_i64("s2", {1}, {2});
  b.node("Slice", {"s", "s0", "s2"}, {"nc"}, "lead");
  b.init_i64("hw", {1}, {20});
  set_int(b.node("Concat", {"nc", "hw"}, {"t2"}, "target2"), "axis", 0);
  b.node("Reshape", {"x", "t2"}, {"y2"}, "flatten2");
  b.output("y1").output("y2");
  const q8::Model m = load(b, "dynamic_flatten");
  for (int64_t n : {1, 3}) {
    const q8::Tensor x({n, 3, 4, 5}, random_floats(n * 60, 7));
    const std::vector<q8::Tensor> y = q8::Session(m).run({x});
    ASSERT_EQ(y[0].shape(), (std::vector<int64_t>{n, 60}));
    ASSERT_EQ(y[1].shape(), (std::vector<int64_t>{n, 3, 20}));
    for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(y[0].data()[i], x.data()[i]);
    for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(y[1].data()[i], x.data()[i]);
  }
}

// x [2,4,5,3] -> identity 1x1 Conv (so its output is NHWC and equals x) -> Slice of channels
// 1..3, of every other row, and Transpose(0,2,3,1); the same slices made by hand.
TEST(ShapeOps, SliceAndTransposeOfConvOutputsMatchTheDefinition) {
  const int64_t N = 2, C = 4, H = 5, W = 3;
  std::vector<float> eye(C * C, 0.f);
  for (int64_t c = 0; c < C; ++c) eye[c * C + c] = 1.f;
  OnnxModelBuilder b(13);
  b.input("x", {N, C, H, W});
  b.init_f("w", {C, C, 1, 1}, eye);
  b.node("Conv", {"x", "w"}, {"c"}, "same");
  b.init_i64("st", {2}, {1, 1});
  b.init_i64("en", {2}, {3, 100});
  b.init_i64("ax", {2}, {1, -2});
  b.init_i64("sp", {2}, {1, 2});
  b.node("Slice", {"c", "st", "en", "ax", "sp"}, {"s"}, "slice");
  b.init_i64("rst", {1}, {-1});
  b.init_i64("ren", {1}, {-100});
  b.init_i64("rax", {1}, {3});
  b.init_i64("rsp", {1}, {-1});
  b.node("Slice", {"c", "rst", "ren", "rax", "rsp"}, {"r"}, "reverse_w");
  set_ints(b.node("Transpose", {"c"}, {"t"}, "to_nhwc"), "perm", {0, 2, 3, 1});
  b.output("s").output("r").output("t");
  const q8::Model m = load(b, "slices");
  const q8::Tensor x({N, C, H, W}, random_floats(N * C * H * W, 3));
  auto at = [&](int64_t n, int64_t c, int64_t h, int64_t w) { return x.data()[((n * C + c) * H + h) * W + w]; };
  for (const std::string& isa : q8::supported_isas())
    for (int threads : {1, 2, 3}) {
      SCOPED_TRACE(isa + ", " + std::to_string(threads) + " thread(s)");
      q8::SessionOptions o(threads);
      o.isa = isa;
      const std::vector<q8::Tensor> y = q8::Session(m, o).run({x});
      ASSERT_EQ(y[0].shape(), (std::vector<int64_t>{N, 2, 2, W}));  // channels 1, 2; rows 1, 3
      ASSERT_EQ(y[1].shape(), (std::vector<int64_t>{N, C, H, W}));
      ASSERT_EQ(y[2].shape(), (std::vector<int64_t>{N, H, W, C}));
      const float* s = y[0].data();
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < 2; ++c)
          for (int64_t h = 0; h < 2; ++h)
            for (int64_t w = 0; w < W; ++w) ASSERT_EQ(*s++, at(n, 1 + c, 1 + 2 * h, w));
      const float* r = y[1].data();
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t h = 0; h < H; ++h)
            for (int64_t w = 0; w < W; ++w) ASSERT_EQ(*r++, at(n, c, h, W - 1 - w));
      const float* t = y[2].data();
      for (int64_t n = 0; n < N; ++n)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w)
            for (int64_t c = 0; c < C; ++c) ASSERT_EQ(*t++, at(n, c, h, w));
    }
}

// ShuffleNetV2's unit as torch.onnx.export writes it, batch dynamic: x -> Conv (6 channels) ->
// Reshape [N,g,6/g,H,W] -> Transpose(0,2,1,3,4) -> Reshape [N,6,H,W] (targets computed from Shape)
// -> Slices of channels 0..2 and 3..5 -> a Conv on each. With `observe`, the transposed tensor is
// a graph output too, which keeps the three nodes apart; otherwise the plan runs them as one
// ChannelShuffle.
std::string shuffle_unit(int64_t groups, bool observe) {
  const int64_t C = 6;
  OnnxModelBuilder b(13);
  b.input("x", {-1, 4, 5, 3});
  b.init_f("w1", {C, 4, 1, 1}, random_floats(C * 4, 11));
  b.node("Conv", {"x", "w1"}, {"c"}, "conv1");
  b.node("Shape", {"c"}, {"s"}, "shape");
  b.init_i64("i0", {1}, {0});
  b.init_i64("i23", {2}, {2, 3});
  set_int(b.node("Gather", {"s", "i0"}, {"n"}, "batch"), "axis", 0);
  set_int(b.node("Gather", {"s", "i23"}, {"hw"}, "spatial"), "axis", 0);
  b.init_i64("groups", {2}, {groups, C / groups});
  b.init_i64("channels", {1}, {C});
  set_int(b.node("Concat", {"n", "groups", "hw"}, {"t5"}, "target5"), "axis", 0);
  set_int(b.node("Concat", {"n", "channels", "hw"}, {"t4"}, "target4"), "axis", 0);
  b.node("Reshape", {"c", "t5"}, {"g"}, "split_groups");
  set_ints(b.node("Transpose", {"g"}, {"t"}, "swap"), "perm", {0, 2, 1, 3, 4});
  b.node("Reshape", {"t", "t4"}, {"sh"}, "join_groups");
  b.init_i64("zero", {1}, {0});
  b.init_i64("three", {1}, {3});
  b.init_i64("six", {1}, {6});
  b.init_i64("ax", {1}, {1});
  b.node("Slice", {"sh", "zero", "three", "ax"}, {"h0"}, "first_half");
  b.node("Slice", {"sh", "three", "six", "ax"}, {"h1"}, "second_half");
  b.init_f("w2", {2, 3, 1, 1}, random_floats(2 * 3, 12));
  b.init_f("w3", {2, 3, 1, 1}, random_floats(2 * 3, 13));
  b.node("Conv", {"h0", "w2"}, {"y"}, "conv2");
  b.node("Conv", {"h1", "w3"}, {"z"}, "conv3");
  b.output("y").output("z");
  if (observe) b.output("t");
  return b.bytes();
}

// The fused shuffle gives the bytes of the three nodes it replaces, fp32 and int8, at two batch
// sizes, on every kernel path and thread count; it runs as one channel_shuffle step and keeps the
// tensors NHWC (no layout change but the input's and the outputs'); and channel c' of the
// transposed tensor is channel (c' % g) * (6 / g) + c' / g of the first Conv's output.
void expect_shuffle_fused_and_exact(int64_t groups) {
  SCOPED_TRACE(std::to_string(groups) + " groups");
  const std::string fused_bytes = shuffle_unit(groups, false), apart_bytes = shuffle_unit(groups, true);
  const q8::Model fused_f32 = q8::Model::load_from_memory(fused_bytes.data(), fused_bytes.size(), "fused");
  const q8::Model apart_f32 = q8::Model::load_from_memory(apart_bytes.data(), apart_bytes.size(), "apart");
  const q8::Tensor calib({8, 4, 5, 3}, random_floats(8 * 60, 13));
  const q8::Model fused_int8 = q8::quantize(fused_f32, {calib}), apart_int8 = q8::quantize(apart_f32, {calib});
  for (const q8::Model* m : {&fused_f32, &fused_int8}) {
    int shuffles = 0;
    for (const q8::NodeInfo& ni : m->describe()) {
      EXPECT_NE(ni.op, "Transpose") << ni.name;
      if (ni.op != "ChannelShuffle") continue;
      ++shuffles;
      EXPECT_EQ(ni.name, "swap");
      EXPECT_EQ(ni.kernel, "channel_shuffle");
    }
    EXPECT_EQ(shuffles, 1);
    const q8::Tensor x({1, 4, 5, 3}, random_floats(60, 14));
    for (const q8::LayerTime& t : q8::Session(*m).profile({x}, 1))
      EXPECT_TRUE(t.node.find("(to ") == std::string::npos || t.node.rfind("x", 0) == 0 || t.node.rfind("y", 0) == 0 ||
                  t.node.rfind("z", 0) == 0)
          << t.node;
  }
  for (const q8::Model* m : {&apart_f32, &apart_int8}) {  // what the comparison below is against
    bool transpose = false;
    for (const q8::NodeInfo& ni : m->describe()) transpose |= ni.op == "Transpose";
    EXPECT_TRUE(transpose) << "an observed transposed tensor keeps the three nodes apart";
  }
  for (const auto& [fused, apart] : {std::pair{&fused_f32, &apart_f32}, std::pair{&fused_int8, &apart_int8}})
    for (int64_t n : {1, 3}) {
      const q8::Tensor x({n, 4, 5, 3}, random_floats(n * 60, 15));
      const std::vector<q8::Tensor> want = q8::Session(*apart).run({x});
      for (const std::string& isa : q8::supported_isas())
        for (int threads : {1, 2, 3}) {
          SCOPED_TRACE(isa + ", " + std::to_string(threads) + " thread(s), batch " + std::to_string(n));
          q8::SessionOptions o(threads);
          o.isa = isa;
          const std::vector<q8::Tensor> got = q8::Session(*fused, o).run({x});
          ASSERT_EQ(got.size(), 2u);
          for (size_t i = 0; i < 2; ++i) {
            ASSERT_EQ(got[i].shape(), want[i].shape());
            for (int64_t k = 0; k < got[i].numel(); ++k)
              ASSERT_EQ(got[i].data()[k], want[i].data()[k]) << i << " " << k;
          }
        }
    }
  // The definition, on the fp32 model's transposed tensor [2,6/g,g,5,3] (C order: channel i * g + j)
  // and its first Conv's output (recomputed by a model that outputs it).
  const q8::Tensor x({2, 4, 5, 3}, random_floats(120, 16));
  OnnxModelBuilder b(13);
  b.input("x", {2, 4, 5, 3});
  b.init_f("w1", {6, 4, 1, 1}, random_floats(24, 11));
  b.node("Conv", {"x", "w1"}, {"c"}, "conv1");
  b.output("c");
  const q8::Tensor conv = q8::Session(load(b, "conv")).run({x})[0];
  const q8::Tensor t = q8::Session(apart_f32).run({x})[2];
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 6; ++c)
      for (int64_t p = 0; p < 15; ++p)
        ASSERT_EQ(t.data()[(n * 6 + c) * 15 + p],
                  conv.data()[(n * 6 + (c % groups) * (6 / groups) + c / groups) * 15 + p]);
}

TEST(ShapeOps, ChannelShuffleRunsAsOneStepWithTheBytesOfThreeNodes) {
  for (int64_t groups : {2, 3}) expect_shuffle_fused_and_exact(groups);
}

// A shuffle of a model input (C order, not a kernel's NHWC output) moves whole planes: channel c'
// of the output is channel (c' % 2) * 3 + c' / 2 of the input, at 1 to 3 threads on every path.
TEST(ShapeOps, ChannelShuffleOfAPlainTensorMovesPlanes) {
  const int64_t N = 2, C = 6, H = 2, W = 3;
  OnnxModelBuilder b(13);
  b.input("x", {N, C, H, W});
  b.init_i64("five", {5}, {N, 2, C / 2, H, W});
  b.node("Reshape", {"x", "five"}, {"g"}, "split_groups");
  set_ints(b.node("Transpose", {"g"}, {"t"}, "swap"), "perm", {0, 2, 1, 3, 4});
  b.init_i64("four", {4}, {N, C, H, W});
  b.node("Reshape", {"t", "four"}, {"y"}, "join_groups");
  b.output("y");
  const q8::Model m = load(b, "shuffle");
  std::vector<std::string> ops;
  for (const q8::NodeInfo& ni : m.describe()) ops.push_back(ni.op);
  EXPECT_EQ(ops, std::vector<std::string>{"ChannelShuffle"});
  const q8::Tensor x({N, C, H, W}, random_floats(N * C * H * W, 5));
  for (const std::string& isa : q8::supported_isas())
    for (int threads : {1, 2, 3}) {
      SCOPED_TRACE(isa + ", " + std::to_string(threads) + " thread(s)");
      q8::SessionOptions o(threads);
      o.isa = isa;
      const q8::Tensor y = q8::Session(m, o).run({x})[0];
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t p = 0; p < H * W; ++p)
            ASSERT_EQ(y.data()[(n * C + c) * H * W + p], x.data()[(n * C + (c % 2) * (C / 2) + c / 2) * H * W + p]);
    }
}

// x [N,4,5,3] -> 1x1 Conv to C channels (NHWC inside q8) -> Split along the channels, in the
// form of the given opset: sizes as the "split" attribute (11), as a constant input (13, from an
// initializer or a Constant node), or none (13: equal parts; 18: num_outputs, ceil(C / k) each).
// The parts are the outputs; with `heads`, each part feeds a 1x1 Conv of its own whose output is
// (as a detector's heads read the parts); with `conv_only`, the first Conv alone.
enum class SplitForm { Attribute, Initializer, ConstantNode, Equal, NumOutputs };

std::string split_model(SplitForm form, int64_t C, const std::vector<int64_t>& sizes, size_t outputs,
                        bool heads = false, bool conv_only = false) {
  const int opset = form == SplitForm::Attribute ? 11 : form == SplitForm::NumOutputs ? 18 : 13;
  OnnxModelBuilder b(opset);
  b.input("x", {-1, 4, 5, 3});
  b.init_f("w", {C, 4, 1, 1}, random_floats(static_cast<size_t>(C) * 4, 21));
  b.node("Conv", {"x", "w"}, {"c"}, "conv");
  if (conv_only) {
    b.output("c");
    return b.bytes();
  }
  std::vector<std::string> ins = {"c"}, outs;
  for (size_t i = 0; i < outputs; ++i) outs.push_back("y" + std::to_string(i));
  if (form == SplitForm::Initializer) {
    b.init_i64("sizes", {static_cast<int64_t>(sizes.size())}, sizes);
    ins.push_back("sizes");
  } else if (form == SplitForm::ConstantNode) {
    auto& k = b.node("Constant", {}, {"sizes"}, "sizes_node");
    auto* a = k.add_attribute();
    a->set_name("value");
    a->set_type(::onnx::AttributeProto_AttributeType_TENSOR);
    auto* t = a->mutable_t();
    t->set_data_type(::onnx::TensorProto_DataType_INT64);
    t->add_dims(static_cast<int64_t>(sizes.size()));
    for (int64_t v : sizes) t->add_int64_data(v);
    ins.push_back("sizes");
  }
  auto& n = b.node("Split", ins, outs, "split");
  set_int(n, "axis", form == SplitForm::Equal ? -3 : 1);
  if (form == SplitForm::Attribute) set_ints(n, "split", sizes);
  if (form == SplitForm::NumOutputs) set_int(n, "num_outputs", static_cast<int64_t>(outputs));
  for (size_t i = 0; i < outputs; ++i) {
    if (!heads) {
      b.output(outs[i]);
      continue;
    }
    const std::string w = "wh" + std::to_string(i), o = "h" + std::to_string(i);
    b.init_f(w, {2, sizes[i], 1, 1}, random_floats(2 * static_cast<size_t>(sizes[i]), 30 + static_cast<uint32_t>(i)));
    b.node("Conv", {outs[i], w}, {o}, "head" + std::to_string(i));
    b.output(o);
  }
  return b.bytes();
}

// Output i of the Split is channels [start_i, start_i + size_i) of the Conv's output, exactly, at
// batch 1 and 3, on every kernel path and at 1 and 3 threads. With heads after the parts, q8
// quantize runs the Slices in int8 on the Conv's uint8 output: every path gives the same bytes,
// within 20 dB of fp32 (a tiny net, 8 calibration samples; a wrong part would be near 0 dB), and the saved model
// (Slices, no Split) reloads to the same bytes.
void expect_split(SplitForm form, int64_t C, const std::vector<int64_t>& sizes) {
  SCOPED_TRACE("form " + std::to_string(static_cast<int>(form)) + ", " + std::to_string(C) + " channels");
  const size_t k = sizes.size();
  const std::string bytes = split_model(form, C, sizes, k), conv_bytes = split_model(form, C, sizes, k, false, true);
  const q8::Model fp32 = q8::Model::load_from_memory(bytes.data(), bytes.size(), "split.onnx");
  const q8::Model conv = q8::Model::load_from_memory(conv_bytes.data(), conv_bytes.size(), "conv.onnx");
  for (int64_t n : {1, 3}) {
    const q8::Tensor x({n, 4, 5, 3}, random_floats(static_cast<size_t>(n) * 60, 23));
    const q8::Tensor c = q8::Session(conv).run({x})[0];
    for (const std::string& isa : q8::supported_isas())
      for (int threads : {1, 3}) {
        SCOPED_TRACE(isa + ", " + std::to_string(threads) + " thread(s), batch " + std::to_string(n));
        q8::SessionOptions o(threads);
        o.isa = isa;
        const std::vector<q8::Tensor> y = q8::Session(fp32, o).run({x});
        ASSERT_EQ(y.size(), k);
        int64_t start = 0;
        for (size_t i = 0; i < k; ++i) {
          ASSERT_EQ(y[i].shape(), (std::vector<int64_t>{n, sizes[i], 5, 3})) << i;
          for (int64_t b = 0; b < n; ++b)
            for (int64_t ch = 0; ch < sizes[i]; ++ch)
              for (int64_t p = 0; p < 15; ++p)
                ASSERT_EQ(y[i].data()[(b * sizes[i] + ch) * 15 + p], c.data()[(b * C + start + ch) * 15 + p])
                    << i << " " << ch;
          start += sizes[i];
        }
      }
  }

  const std::string heads_bytes = split_model(form, C, sizes, k, true);
  const q8::Model heads = q8::Model::load_from_memory(heads_bytes.data(), heads_bytes.size(), "heads.onnx");
  const q8::Model int8 = q8::quantize(heads, {q8::Tensor({8, 4, 5, 3}, random_floats(8 * 60, 22))});
  int slices = 0;
  for (const q8::NodeInfo& ni : int8.describe()) {
    if (ni.op != "Slice") continue;
    EXPECT_TRUE(ni.int8) << ni.name << " runs " << ni.kernel;
    EXPECT_EQ(ni.name, k > 1 ? "split:" + std::to_string(slices) : "split");
    ++slices;
  }
  EXPECT_EQ(slices, static_cast<int>(k));
  const std::string saved = ::testing::TempDir() + "/split.int8.onnx";
  int8.save(saved);
  const q8::Model reloaded = q8::Model::load(saved);
  for (int64_t n : {1, 3}) {
    const q8::Tensor x({n, 4, 5, 3}, random_floats(static_cast<size_t>(n) * 60, 24));
    const std::vector<q8::Tensor> want = q8::Session(heads).run({x}), ref = q8::Session(int8).run({x});
    for (size_t i = 0; i < k; ++i) EXPECT_GT(q8::test::sqnr_db(ref[i], want[i]), 20.0) << i;
    for (const q8::Model* m : {&int8, &reloaded})
      for (const std::string& isa : q8::supported_isas())
        for (int threads : {1, 3}) {
          SCOPED_TRACE(isa + ", " + std::to_string(threads) + " thread(s), int8 batch " + std::to_string(n));
          q8::SessionOptions o(threads);
          o.isa = isa;
          const std::vector<q8::Tensor> y = q8::Session(*m, o).run({x});
          ASSERT_EQ(y.size(), k);
          for (size_t i = 0; i < k; ++i) ASSERT_TRUE(q8::test::same_bytes(y[i], ref[i])) << i;
        }
  }
}

TEST(ShapeOps, SplitIsOneSliceAnOutput) {
  expect_split(SplitForm::Attribute, 7, {2, 4, 1});
  expect_split(SplitForm::Initializer, 7, {2, 4, 1});
  expect_split(SplitForm::Initializer, 40, {16, 24});  // a YOLO head's (box, class)
  expect_split(SplitForm::Initializer, 5, {5});        // one output: a copy
  expect_split(SplitForm::ConstantNode, 6, {3, 3});
  expect_split(SplitForm::Equal, 6, {2, 2, 2});
  expect_split(SplitForm::NumOutputs, 7, {3, 3, 1});
}

// Each way a Split can be wrong is refused with the file, the node and the problem.
TEST(ShapeOps, BadSplitsAreRefusedByName) {
  auto refused = [](const std::string& bytes, const std::string& node, const std::string& what) {
    SCOPED_TRACE(what);
    try {
      const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "split.onnx");
      q8::Session(m).run({q8::Tensor({1, 4, 5, 3}, random_floats(60, 24))});
      FAIL() << "ran";
    } catch (const q8::Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("split.onnx"), std::string::npos) << m;
      EXPECT_NE(m.find(node), std::string::npos) << m;
      EXPECT_NE(m.find(what), std::string::npos) << m;
    }
  };
  refused(split_model(SplitForm::Initializer, 7, {2, 4}, 3), "'split' (Split)", "2 split sizes for 3 outputs");
  refused(split_model(SplitForm::Initializer, 7, {2, 4, -1}, 3), "'split' (Split)", "split size -1 is out of range");
  refused(split_model(SplitForm::Initializer, 7, {2, 4, 2}, 3), "'split:2' (Slice)",
          "the Split sizes add up to 8, but axis 1 has 7");
  refused(split_model(SplitForm::Attribute, 7, {2, 2, 2}, 3), "'split:2' (Slice)",
          "the Split sizes add up to 6, but axis 1 has 7");
  {
    OnnxModelBuilder b(13);  // sizes computed from the input's shape: not a constant
    b.input("x", {1, 4, 5, 3});
    b.node("Shape", {"x"}, {"s"}, "shape");
    b.init_i64("i11", {2}, {0, 0});
    set_int(b.node("Gather", {"s", "i11"}, {"k"}, "sizes"), "axis", 0);
    b.node("Split", {"x", "k"}, {"a", "b"}, "split");
    b.output("a").output("b");
    refused(b.bytes(), "'split' (Split)", "the split sizes 'k' must be a constant");
  }
  refused(split_model(SplitForm::Initializer, 7, {7, 0}, 2), "'split:1' (Slice)", "is empty");
  {
    OnnxModelBuilder b(18);
    b.input("x", {1, 4, 5, 3});
    set_int(b.node("Split", {"x"}, {"a", "b"}, "split"), "num_outputs", 3);
    b.output("a").output("b");
    refused(b.bytes(), "'split' (Split)", "num_outputs is 3 but the node has 2 outputs");
  }
  {
    OnnxModelBuilder b(13);
    b.input("x", {1, 4, 5, 3});
    set_ints(b.node("Split", {"x"}, {"a", "b"}, "split"), "split", {2, 2});
    b.output("a").output("b");
    refused(b.bytes(), "'split' (Split)", "unknown attribute 'split' for Split in opset 13");
  }
  {
    OnnxModelBuilder b(13);
    b.input("x", {1, 4, 5, 3});
    set_int(b.node("Split", {"x"}, {"a", "b"}, "split"), "axis", 4);  // the axis's size, from Shape
    b.output("a").output("b");
    refused(b.bytes(), "'split:dim' (Gather)", "index 4 is out of range for 4");
  }
}

TEST(ShapeOps, ComputingOnRunTimeDataIsRefusedByName) {
  OnnxModelBuilder b(13);
  b.input("x", {1, 4});
  b.init_i64("i", {1}, {2});
  set_int(b.node("Gather", {"x", "i"}, {"y"}, "embedding"), "axis", 1);
  b.output("y");
  try {
    load(b, "gather_model");
    FAIL() << "a Gather of run-time data should be refused";
  } catch (const q8::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("gather_model"), std::string::npos) << m;
    EXPECT_NE(m.find("'embedding' (Gather)"), std::string::npos) << m;
    EXPECT_NE(m.find("shapes and constants"), std::string::npos) << m;
  }
}

TEST(ShapeOps, BadPermutationIsRefusedByName) {
  OnnxModelBuilder b(13);
  b.input("x", {1, 2, 3});
  set_ints(b.node("Transpose", {"x"}, {"y"}, "bad_perm"), "perm", {0, 0, 1});
  b.output("y");
  try {
    load(b, "perm_model");
    FAIL() << "a perm that is not a permutation should be refused";
  } catch (const q8::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'bad_perm' (Transpose)"), std::string::npos) << m;
    EXPECT_NE(m.find("not a permutation"), std::string::npos) << m;
  }
}

}  // namespace
