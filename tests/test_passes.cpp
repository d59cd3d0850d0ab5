// Graph passes: constant folding, identity removal, BatchNorm folding, activation fusion, shape
// inference. Graphs are built directly in the IR, so these tests need no ONNX file.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "ir/graph.h"
#include "passes/passes.h"
#include "q8/error.h"

namespace q8::ir {
namespace {

ConstTensorPtr floats(Shape dims, std::vector<float> v) {
  auto t = std::make_shared<ConstTensor>();
  t->dtype = DType::Float32;
  t->dims = std::move(dims);
  t->bytes.resize(v.size() * 4);
  std::memcpy(t->bytes.data(), v.data(), t->bytes.size());
  return t;
}

ConstTensorPtr int64s(Shape dims, std::vector<int64_t> v) {
  auto t = std::make_shared<ConstTensor>();
  t->dtype = DType::Int64;
  t->dims = std::move(dims);
  t->bytes.resize(v.size() * 8);
  std::memcpy(t->bytes.data(), v.data(), t->bytes.size());
  return t;
}

struct GraphBuilder {
  Graph g;
  GraphBuilder() { g.source = "test.onnx", g.opset = 13; }
  int input(const std::string& name, Shape s) {
    int v = g.add_value({name, DType::Float32, s, true, nullptr});
    g.inputs.push_back(v);
    return v;
  }
  int constant(const std::string& name, ConstTensorPtr t) { return g.add_value({name, t->dtype, t->dims, true, t}); }
  int node(Op op, const std::string& name, std::vector<int> ins, std::map<std::string, Attribute> attrs = {}) {
    int out = g.add_value({name + "_out", DType::Float32, {}, false, nullptr});
    Node n;
    n.op = op, n.name = name, n.inputs = std::move(ins), n.outputs = {out}, n.attrs = std::move(attrs);
    g.nodes.push_back(std::move(n));
    return out;
  }
  void output(int v) { g.outputs.push_back(v); }
};

Attribute ints(std::vector<int64_t> v) {
  Attribute a;
  a.kind = Attribute::Kind::Ints;
  a.ints = std::move(v);
  return a;
}
Attribute integer(int64_t v) {
  Attribute a;
  a.kind = Attribute::Kind::Int;
  a.i = v;
  return a;
}

TEST(Passes, FoldBatchNormIntoConv) {
  GraphBuilder b;
  int x = b.input("x", {1, 2, 4, 4});
  int w = b.constant("w", floats({2, 2, 1, 1}, {1, 2, 3, 4}));
  int bias = b.constant("b", floats({2}, {0.5f, -1}));
  int c = b.node(Op::Conv, "conv", {x, w, bias});
  int gamma = b.constant("g", floats({2}, {2, 3})), beta = b.constant("be", floats({2}, {1, 1}));
  int mean = b.constant("m", floats({2}, {0.5f, 1})), var = b.constant("v", floats({2}, {3, 8}));
  Node bn;
  int y = b.node(Op::BatchNormalization, "bn", {c, gamma, beta, mean, var});
  b.g.nodes.back().attrs["epsilon"] = Attribute{Attribute::Kind::Float, 0, 1.f, {}, {}, {}, {}};
  b.output(y);
  optimize(b.g);
  ASSERT_EQ(b.g.nodes.size(), 1u);
  const Node& n = b.g.nodes[0];
  EXPECT_EQ(n.op, Op::Conv);
  const ConstTensor& nw = *b.g.values[n.inputs[1]].constant;
  const ConstTensor& nb = *b.g.values[n.inputs[2]].constant;
  // scale = g / sqrt(v + eps) = {2/2, 3/3}
  EXPECT_FLOAT_EQ(nw.data<float>()[0], 1.f);
  EXPECT_FLOAT_EQ(nw.data<float>()[3], 4.f);
  EXPECT_FLOAT_EQ(nb.data<float>()[0], (0.5f - 0.5f) * 1.f + 1.f);
  EXPECT_FLOAT_EQ(nb.data<float>()[1], (-1.f - 1.f) * 1.f + 1.f);
  EXPECT_EQ(b.g.values[n.outputs[0]].name, "bn_out");
}

// A ConvTranspose whose input channels are not a multiple of its groups is malformed: the fold
// leaves it alone (shape inference refuses it by name) instead of dividing by C / group = 0.
TEST(Passes, FoldBatchNormSkipsMalformedConvTranspose) {
  GraphBuilder b;
  int x = b.input("x", {1, 1, 4, 4});
  int w = b.constant("w", floats({1, 2, 1, 1}, {1, 2}));
  int c = b.node(Op::ConvTranspose, "deconv", {x, w}, {{"group", integer(2)}});
  int gamma = b.constant("g", floats({4}, {1, 1, 1, 1})), beta = b.constant("be", floats({4}, {0, 0, 0, 0}));
  int mean = b.constant("m", floats({4}, {0, 0, 0, 0})), var = b.constant("v", floats({4}, {1, 1, 1, 1}));
  b.output(b.node(Op::BatchNormalization, "bn", {c, gamma, beta, mean, var}));
  optimize(b.g);
  ASSERT_EQ(b.g.nodes.size(), 2u);
  EXPECT_EQ(b.g.nodes[1].op, Op::BatchNormalization);
}

TEST(Passes, FuseReluAndClipIntoConvAndDropIdentity) {
  GraphBuilder b;
  int x = b.input("x", {1, 1, 3, 3});
  int w = b.constant("w", floats({1, 1, 1, 1}, {1}));
  int c = b.node(Op::Conv, "conv", {x, w});
  int i = b.node(Op::Identity, "id", {c});
  int lo = b.constant("lo", floats({}, {0})), hi = b.constant("hi", floats({}, {6}));
  int y = b.node(Op::Clip, "clip", {i, lo, hi});
  b.output(y);
  optimize(b.g);
  ASSERT_EQ(b.g.nodes.size(), 1u);
  EXPECT_FLOAT_EQ(b.g.nodes[0].attr_float("act_min", -1), 0.f);
  EXPECT_FLOAT_EQ(b.g.nodes[0].attr_float("act_max", -1), 6.f);
  EXPECT_EQ(b.g.values[b.g.outputs[0]].name, "clip_out");
}

TEST(Passes, ReluFeedingTwoReadersIsNotFused) {
  GraphBuilder b;
  int x = b.input("x", {1, 1, 3, 3});
  int w = b.constant("w", floats({1, 1, 1, 1}, {1}));
  int c = b.node(Op::Conv, "conv", {x, w});
  int r = b.node(Op::Relu, "relu", {c});
  b.output(c);
  b.output(r);
  optimize(b.g);
  EXPECT_EQ(b.g.nodes.size(), 2u);
}

// Conv -> Add -> Relu: the Add's other operand becomes the Conv's fourth input, the Relu its clamp.
TEST(Passes, ResidualAddFusesIntoTheConvBeforeIt) {
  GraphBuilder b;
  int x = b.input("x", {1, 2, 3, 3});
  int w = b.constant("w", floats({2, 2, 1, 1}, {1, 2, 3, 4}));
  int c = b.node(Op::Conv, "conv", {x, w});
  int s = b.node(Op::Add, "add", {x, c});
  b.output(b.node(Op::Relu, "relu", {s}));
  optimize(b.g);
  ASSERT_EQ(b.g.nodes.size(), 1u);
  const Node& n = b.g.nodes[0];
  EXPECT_EQ(n.op, Op::Conv);
  ASSERT_EQ(n.inputs.size(), 4u);
  EXPECT_EQ(n.inputs[2], kNoValue);
  EXPECT_EQ(b.g.values[n.inputs[3]].name, "x");
  EXPECT_FLOAT_EQ(n.attr_float("act_min", -1), 0.f);
  EXPECT_EQ(b.g.values[b.g.outputs[0]].name, "relu_out");
}

// An activation alone reading an fp32 Conv's result becomes the Conv's "act_unary", after a Relu
// between them (the clamp) and after a residual Add; its alpha and beta go with it.
TEST(Passes, ActivationAfterAConvFusesIntoIt) {
  {
    GraphBuilder b;
    int x = b.input("x", {1, 2, 3, 3});
    int w = b.constant("w", floats({2, 2, 1, 1}, {1, 2, 3, 4}));
    int c = b.node(Op::Conv, "conv", {x, w});
    int s = b.node(Op::Sigmoid, "sig", {c});
    b.output(b.node(Op::Mul, "mul", {c, s}));  // SiLU as PyTorch exports it
    optimize(b.g);
    ASSERT_EQ(b.g.nodes.size(), 1u);
    EXPECT_EQ(b.g.nodes[0].attr_int("act_unary", -1), static_cast<int64_t>(Op::Silu));
    EXPECT_FALSE(b.g.nodes[0].has_attr("act_min"));
    EXPECT_EQ(b.g.values[b.g.outputs[0]].name, "mul_out");
  }
  {
    GraphBuilder b;
    int x = b.input("x", {1, 2, 3, 3});
    int w = b.constant("w", floats({2, 2, 1, 1}, {1, 2, 3, 4}));
    int c = b.node(Op::Conv, "conv", {x, w});
    int r = b.node(Op::Relu, "relu", {b.node(Op::Add, "add", {x, c})});
    b.output(b.node(Op::LeakyRelu, "leaky", {r}));
    b.g.nodes.back().attrs["alpha"] = Attribute{Attribute::Kind::Float, 0, 0.25f, {}, {}, {}, {}};
    optimize(b.g);
    ASSERT_EQ(b.g.nodes.size(), 1u);
    const Node& n = b.g.nodes[0];
    EXPECT_EQ(n.inputs.size(), 4u);
    EXPECT_FLOAT_EQ(n.attr_float("act_min", -1), 0.f);
    EXPECT_EQ(n.attr_int("act_unary", -1), static_cast<int64_t>(Op::LeakyRelu));
    EXPECT_FLOAT_EQ(n.attr_float("act_unary_alpha", -1), 0.25f);
    EXPECT_FALSE(n.has_attr("act_unary_beta"));
  }
}

// A Conv whose result is read elsewhere too, or is a graph output, keeps its activation as a step;
// so does a Gemm (only Convs take one); and a Clip after the activation stays a step (the Conv's
// clamp comes before its activation).
TEST(Passes, ActivationStaysAStepWhereItCannotFuse) {
  {
    GraphBuilder b;
    int x = b.input("x", {1, 2, 3, 3});
    int w = b.constant("w", floats({2, 2, 1, 1}, {1, 2, 3, 4}));
    int c = b.node(Op::Conv, "conv", {x, w});
    b.output(b.node(Op::HardSwish, "hs", {c}));
    b.output(c);
    optimize(b.g);
    ASSERT_EQ(b.g.nodes.size(), 2u);
    EXPECT_FALSE(b.g.nodes[0].has_attr("act_unary"));
  }
  {
    GraphBuilder b;
    int x = b.input("x", {1, 4});
    int w = b.constant("w", floats({3, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
    int m = b.node(Op::Gemm, "gemm", {x, w});
    b.g.nodes.back().attrs["transB"] = Attribute{Attribute::Kind::Int, 1, 0.f, {}, {}, {}, {}};
    b.output(b.node(Op::Tanh, "tanh", {m}));
    optimize(b.g);
    EXPECT_EQ(b.g.nodes.size(), 2u);
  }
  {
    GraphBuilder b;
    int x = b.input("x", {1, 2, 3, 3});
    int w = b.constant("w", floats({2, 2, 1, 1}, {1, 2, 3, 4}));
    int c = b.node(Op::Conv, "conv", {x, w});
    b.output(b.node(Op::Relu, "relu", {b.node(Op::HardSwish, "hs", {c})}));
    optimize(b.g);
    ASSERT_EQ(b.g.nodes.size(), 2u);
    EXPECT_EQ(b.g.nodes[0].attr_int("act_unary", -1), static_cast<int64_t>(Op::HardSwish));
    EXPECT_FALSE(b.g.nodes[0].has_attr("act_min"));
    EXPECT_EQ(b.g.nodes[1].op, Op::Relu);
  }
}

// In an int8 graph, QuantizedMul(x, f(x)) becomes f's node with "gate", taking the Mul's output and
// clamp, and keeping f's own quantization for its table; a product of x with an activation of
// something else (squeeze-excitation), or with one that is read elsewhere too, stays.
TEST(Passes, QuantizedActivationTimesItsInputBecomesOneGatedTable) {
  auto quantized = [](Graph& g, int v, float scale, int32_t zp) {
    g.values[v].dtype = DType::Uint8, g.values[v].scale = scale, g.values[v].zero_point = zp;
  };
  {
    GraphBuilder b;
    int x = b.input("x", {1, 4, 3, 3});
    quantized(b.g, x, 0.1f, 128);
    int f = b.node(Op::Sigmoid, "sig", {x}, {{"qmin", integer(3)}});
    quantized(b.g, f, 1.f / 256, 0);
    int y = b.node(Op::QuantizedMul, "mul", {f, x}, {{"qmax", integer(200)}});
    quantized(b.g, y, 0.05f, 10);
    b.output(y);
    fuse_quantized_gate(b.g);
    ASSERT_EQ(b.g.nodes.size(), 1u);
    const Node& n = b.g.nodes[0];
    EXPECT_EQ(n.op, Op::Sigmoid);
    EXPECT_EQ(b.g.values[n.outputs[0]].name, "mul_out");
    EXPECT_EQ(n.attr_int("gate", 0), 1);
    EXPECT_FLOAT_EQ(n.attr_float("gate_scale", 0), 1.f / 256);
    EXPECT_EQ(n.attr_int("gate_zero_point", -1), 0);
    EXPECT_EQ(n.attr_int("gate_qmin", -1), 3);
    EXPECT_EQ(n.attr_int("gate_qmax", -1), 255);
    EXPECT_EQ(n.attr_int("qmin", -1), 0);
    EXPECT_EQ(n.attr_int("qmax", -1), 200);
  }
  {
    GraphBuilder b;
    int x = b.input("x", {1, 4, 3, 3});
    int se = b.input("se", {1, 4, 3, 3});
    quantized(b.g, x, 0.1f, 128);
    quantized(b.g, se, 0.1f, 128);
    int f = b.node(Op::Sigmoid, "sig", {se});
    quantized(b.g, f, 1.f / 256, 0);
    int y = b.node(Op::QuantizedMul, "mul", {x, f});
    quantized(b.g, y, 0.05f, 10);
    b.output(y);
    int h = b.node(Op::HardSigmoid, "hs", {x});
    quantized(b.g, h, 1.f / 256, 0);
    int z = b.node(Op::QuantizedMul, "mul2", {x, h});
    quantized(b.g, z, 0.05f, 10);
    b.output(z);
    b.output(h);
    fuse_quantized_gate(b.g);
    EXPECT_EQ(b.g.nodes.size(), 4u);
    for (const Node& n : b.g.nodes) EXPECT_FALSE(n.has_attr("gate")) << n.name;
  }
}

// Of two Convs feeding the Add, the later one takes the other's result as its residual (it is
// computed by then); a Conv whose result is read elsewhere, an operand that broadcasts, and one
// whose batch is fixed while the Conv's follows a dynamic input keep the Add.
TEST(Passes, ResidualAddFusesOnlyWhereTheOperandIsReadyAndShapedLikeTheOutput) {
  {
    GraphBuilder b;
    int x = b.input("x", {1, 2, 3, 3});
    int w = b.constant("w", floats({2, 2, 1, 1}, {1, 2, 3, 4}));
    int c1 = b.node(Op::Conv, "conv1", {x, w});
    int c2 = b.node(Op::Conv, "conv2", {x, w});
    b.output(b.node(Op::Add, "add", {c2, c1}));
    optimize(b.g);
    ASSERT_EQ(b.g.nodes.size(), 2u);
    EXPECT_EQ(b.g.nodes[1].name, "conv2");
    ASSERT_EQ(b.g.nodes[1].inputs.size(), 4u);
    EXPECT_EQ(b.g.values[b.g.nodes[1].inputs[3]].name, "conv1_out");
  }
  {
    GraphBuilder b;
    int x = b.input("x", {1, 2, 3, 3});
    int w = b.constant("w", floats({2, 2, 1, 1}, {1, 2, 3, 4}));
    int c = b.node(Op::Conv, "conv", {x, w});
    b.output(b.node(Op::Add, "add", {c, x}));
    b.output(c);
    optimize(b.g);
    EXPECT_EQ(b.g.nodes.size(), 2u);
  }
  {
    GraphBuilder b;
    int x = b.input("x", {1, 2, 3, 3});
    int w = b.constant("w", floats({2, 2, 1, 1}, {1, 2, 3, 4}));
    int c = b.node(Op::Conv, "conv", {x, w});
    int m = b.node(Op::GlobalAveragePool, "pool", {x});
    b.output(b.node(Op::Add, "add", {c, m}));
    optimize(b.g);
    EXPECT_EQ(b.g.nodes.size(), 3u);
  }
  {
    GraphBuilder b;
    int x = b.input("x", {kUnknownDim, 2, 3, 3});
    int r = b.input("r", {1, 2, 3, 3});
    int w = b.constant("w", floats({2, 2, 1, 1}, {1, 2, 3, 4}));
    int c = b.node(Op::Conv, "conv", {x, w});
    b.output(b.node(Op::Add, "add", {c, r}));
    optimize(b.g);
    EXPECT_EQ(b.g.nodes.size(), 2u);
  }
}

// A graph whose dynamic batch only runs at batch 1 (a Reshape fixes it) still loads: the probe at
// batch 2 fails, and the Add stays a step of its own.
TEST(Passes, ResidualAddProbeAtAnotherBatchFailingKeepsTheGraph) {
  GraphBuilder b;
  int x = b.input("x", {kUnknownDim, 2, 3, 3});
  int w = b.constant("w", floats({2, 2, 1, 1}, {1, 2, 3, 4}));
  int c = b.node(Op::Conv, "conv", {x, w});
  int s = b.node(Op::Add, "add", {c, x});
  b.output(b.node(Op::Reshape, "flat", {s, b.constant("shape", int64s({2}, {1, 18}))}));
  ASSERT_NO_THROW(optimize(b.g));
  EXPECT_EQ(b.g.nodes.size(), 3u);
}

// The residual is added element by element: a Conv given one of another shape is refused by name.
TEST(Passes, ConvResidualOfAnotherShapeIsRefusedNamingTheNode) {
  GraphBuilder b;
  int x = b.input("x", {1, 2, 3, 3});
  int r = b.input("r", {1, 2, 3, 4});
  int w = b.constant("w", floats({2, 2, 1, 1}, {1, 2, 3, 4}));
  b.output(b.node(Op::Conv, "conv", {x, w, kNoValue, r}));
  try {
    infer_shapes(b.g, {{1, 2, 3, 3}, {1, 2, 3, 4}});
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("conv"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("residual"), std::string::npos) << e.what();
  }
}

TEST(Passes, ShapeInferenceConvPoolFlattenGemm) {
  GraphBuilder b;
  int x = b.input("x", {kUnknownDim, 3, 9, 9});
  int w = b.constant("w", floats({4, 3, 3, 3}, std::vector<float>(108, 0.1f)));
  int c = b.node(Op::Conv, "conv", {x, w}, {{"strides", ints({2, 2})}, {"pads", ints({1, 1, 1, 1})}});
  int p = b.node(Op::MaxPool, "pool", {c},
                 {{"kernel_shape", ints({2, 2})}, {"strides", ints({2, 2})}, {"ceil_mode", integer(1)}});
  int f = b.node(Op::Flatten, "flat", {p});
  int gw = b.constant("gw", floats({5, 36}, std::vector<float>(180, 0.f)));
  int y = b.node(Op::Gemm, "fc", {f, gw}, {{"transB", integer(1)}});
  b.output(y);
  optimize(b.g);
  infer_shapes(b.g, input_shapes_for_batch(b.g, 2));
  EXPECT_EQ(b.g.values[c].shape, (Shape{2, 4, 5, 5}));
  EXPECT_EQ(b.g.values[p].shape, (Shape{2, 4, 3, 3}));
  EXPECT_EQ(b.g.values[y].shape, (Shape{2, 5}));
}

TEST(Passes, ShapeInferenceRefusesChannelMismatchNamingTheNode) {
  GraphBuilder b;
  int x = b.input("x", {1, 4, 8, 8});
  int w = b.constant("w", floats({2, 3, 1, 1}, std::vector<float>(6, 1.f)));
  b.output(b.node(Op::Conv, "my_conv", {x, w}));
  optimize(b.g);
  try {
    infer_shapes(b.g, input_shapes_for_batch(b.g, 1));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("my_conv"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Conv"), std::string::npos) << e.what();
  }
}

// The shape rules of the binary, reduction and normalisation ops: broadcast shapes, normalised
// axes, keepdims, and refusals naming the node.
TEST(Passes, ShapeInferenceBinaryReduceSoftmaxLayerNorm) {
  GraphBuilder b;
  int x = b.input("x", {kUnknownDim, 4, 6, 5});
  int s = b.constant("s", floats({4, 1, 1}, std::vector<float>(4, 2.f)));
  int m = b.node(Op::Mul, "mul", {x, s});
  int r = b.node(Op::ReduceMean, "mean", {m}, {{"axes", ints({-1, 2})}, {"keepdims", integer(0)}});
  int k = b.node(Op::ReduceMean, "mean_all", {m});
  int sm = b.node(Op::Softmax, "softmax", {m}, {{"axis", integer(-3)}});
  int sc = b.constant("scale", floats({5}, std::vector<float>(5, 1.f)));
  int ln = b.node(Op::LayerNormalization, "ln", {m, sc});
  for (int v : {r, k, sm, ln}) b.output(v);
  optimize(b.g);
  infer_shapes(b.g, input_shapes_for_batch(b.g, 3));
  EXPECT_EQ(b.g.values[m].shape, (Shape{3, 4, 6, 5}));
  EXPECT_EQ(b.g.values[r].shape, (Shape{3, 4}));
  EXPECT_EQ(b.g.values[k].shape, (Shape{1, 1, 1, 1}));
  EXPECT_EQ(b.g.values[sm].shape, (Shape{3, 4, 6, 5}));
  EXPECT_EQ(b.g.nodes[3].attr_int("axis", 0), 1);
  EXPECT_EQ(b.g.values[ln].shape, (Shape{3, 4, 6, 5}));
}

TEST(Passes, ShapeInferenceRefusesBadAxesScalesAndIntegerOperandsByNode) {
  struct Bad {
    const char* what;
    std::function<void(GraphBuilder&, int)> build;
  };
  const Bad cases[] = {
      {"out of range",
       [](GraphBuilder& b, int x) {
         b.output(b.node(Op::ReduceMean, "bad", {x}, {{"axes", ints({4})}}));
       }},
      {"listed twice",
       [](GraphBuilder& b, int x) {
         b.output(b.node(Op::ReduceMean, "bad", {x}, {{"axes", ints({1, -3})}}));
       }},
      {"out of range",
       [](GraphBuilder& b, int x) {
         b.output(b.node(Op::LogSoftmax, "bad", {x}, {{"axis", integer(-5)}}));
       }},
      {"normalized axes",
       [](GraphBuilder& b, int x) {
         int sc = b.constant("scale", floats({4}, std::vector<float>(4, 1.f)));
         b.output(b.node(Op::LayerNormalization, "bad", {x, sc}));
       }},
      {"int64",
       [](GraphBuilder& b, int x) {
         int k = b.constant("k", int64s({1}, {2}));
         b.output(b.node(Op::Div, "bad", {x, k}));
       }},
      {"cannot broadcast",
       [](GraphBuilder& b, int x) {
         int k = b.constant("k", floats({3}, {1.f, 2.f, 3.f}));
         b.output(b.node(Op::Sub, "bad", {x, k}));
       }},
  };
  for (const Bad& c : cases) {
    GraphBuilder b;
    c.build(b, b.input("x", {1, 4, 6, 5}));
    optimize(b.g);
    try {
      infer_shapes(b.g, input_shapes_for_batch(b.g, 1));
      ADD_FAILURE() << "expected an error: " << c.what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("bad"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(c.what), std::string::npos) << e.what();
    }
  }
}

TEST(Passes, WrongInputShapeIsRefused) {
  GraphBuilder b;
  int x = b.input("x", {kUnknownDim, 3, 8, 8});
  b.output(b.node(Op::Relu, "r", {x}));
  optimize(b.g);
  EXPECT_THROW(infer_shapes(b.g, {{1, 3, 8, 9}}), Error);
  EXPECT_THROW(infer_shapes(b.g, {{1, 3, 8}}), Error);
  EXPECT_NO_THROW(infer_shapes(b.g, {{5, 3, 8, 8}}));
}

TEST(Passes, SameUpperAutoPadBecomesExplicitPads) {
  GraphBuilder b;
  int x = b.input("x", {1, 1, 5, 5});
  Attribute ap;
  ap.kind = Attribute::Kind::String;
  ap.s = "SAME_UPPER";
  int p = b.node(Op::MaxPool, "pool", {x}, {{"kernel_shape", ints({2, 2})}, {"auto_pad", ap}});
  b.output(p);
  infer_shapes(b.g, {{1, 1, 5, 5}});
  EXPECT_EQ(b.g.values[p].shape, (Shape{1, 1, 5, 5}));
  EXPECT_EQ(b.g.nodes[0].attr_ints("pads"), (std::vector<int64_t>{0, 0, 1, 1}));
}

TEST(Passes, ReshapeAndFlattenOfConstantsFold) {
  GraphBuilder b;
  int x = b.input("x", {2, 6});
  int c = b.constant("c", floats({6}, {1, 2, 3, 4, 5, 6}));
  int s = b.constant("s", int64s({2}, {1, -1}));
  int r = b.node(Op::Reshape, "reshape", {c, s});
  b.output(b.node(Op::Add, "add", {x, r}));
  optimize(b.g);
  ASSERT_EQ(b.g.nodes.size(), 1u);
  EXPECT_EQ(b.g.values[b.g.nodes[0].inputs[1]].constant->dims, (Shape{1, 6}));
}

TEST(Passes, PooledExtentCeilModeDropsWindowStartingInPadding) {
  EXPECT_EQ(pooled_extent(4, 3, 2, 1, 0, 0, true), 2);
  EXPECT_EQ(pooled_extent(5, 2, 2, 1, 0, 0, false), 2);
  EXPECT_EQ(pooled_extent(5, 2, 2, 1, 0, 0, true), 3);
  EXPECT_EQ(pooled_extent(4, 2, 2, 1, 0, 1, true), 2);  // a window starting at 4 would be all padding
}

// The element-wise activations keep their input's shape and type: float in, float out; uint8 in
// (an int8 graph) only with both sides quantized, else refused naming the node.
TEST(Passes, ActivationsKeepShapeAndRefuseAnUnquantizedUint8Output) {
  for (Op op : {Op::Sigmoid, Op::Tanh, Op::HardSigmoid, Op::HardSwish, Op::LeakyRelu, Op::Elu, Op::Erf, Op::Sqrt,
                Op::Exp, Op::Silu}) {
    GraphBuilder b;
    const int x = b.input("x", {kUnknownDim, 3, 5, 7});
    const int y = b.node(op, "act", {x});
    b.output(y);
    infer_shapes(b.g, {{2, 3, 5, 7}});
    EXPECT_EQ(b.g.values[y].shape, (Shape{2, 3, 5, 7})) << op_name(op);
    EXPECT_EQ(b.g.values[y].dtype, DType::Float32) << op_name(op);

    b.g.values[x].dtype = DType::Uint8;  // a uint8 input, its output given no quantization
    b.g.values[x].scale = 0.1f;
    try {
      infer_shapes(b.g, {{2, 3, 5, 7}});
      ADD_FAILURE() << op_name(op) << ": accepted";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("'act'"), std::string::npos) << m;
      EXPECT_NE(m.find("without a quantization scale"), std::string::npos) << m;
    }
    b.g.values[y].scale = 0.02f;  // quantized on both sides: uint8 out
    infer_shapes(b.g, {{2, 3, 5, 7}});
    EXPECT_EQ(b.g.values[y].dtype, DType::Uint8) << op_name(op);
  }
}

// A uint8 ReduceMean is a global average pool: over H and W of a 4-D tensor (either sign of the
// axes, either keepdims), and refused by name over any other axes.
TEST(Passes, Uint8ReduceMeanOnlyOverHeightAndWidth) {
  struct Case {
    std::vector<int64_t> axes;
    int64_t keepdims;
    Shape x, y;
    bool ok;
  };
  for (const Case& c :
       {Case{{2, 3}, 1, {2, 3, 5, 7}, {2, 3, 1, 1}, true}, Case{{-1, -2}, 0, {2, 3, 5, 7}, {2, 3}, true},
        Case{{1, 2}, 1, {2, 3, 5, 7}, {}, false}, Case{{-2, -1}, 1, {2, 5, 7}, {}, false}}) {
    GraphBuilder b;
    const int x = b.input("x", c.x);
    b.g.values[x].dtype = DType::Uint8;
    b.g.values[x].scale = 0.1f;
    const int y = b.node(Op::ReduceMean, "mean", {x}, {{"axes", ints(c.axes)}, {"keepdims", integer(c.keepdims)}});
    b.g.values[y].scale = 0.05f;
    b.output(y);
    if (c.ok) {
      infer_shapes(b.g, {c.x});
      EXPECT_EQ(b.g.values[y].shape, c.y);
      EXPECT_EQ(b.g.values[y].dtype, DType::Uint8);
      continue;
    }
    try {
      infer_shapes(b.g, {c.x});
      ADD_FAILURE() << "axes " << c.axes[0] << "," << c.axes[1] << " accepted";
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("'mean'"), std::string::npos) << m;
      EXPECT_NE(m.find("global average pool"), std::string::npos) << m;
    }
  }
}

// A node is unread when no graph output depends on it: a dangling branch of the file, and what
// only feeds it, is left out of plans and `q8 info`; what the outputs depend on is not.
TEST(Graph, UnreadNodesAreThoseNoOutputDependsOn) {
  GraphBuilder b;
  const int x = b.input("x", {1, 4});
  const int a = b.node(Op::Relu, "kept", {x});
  const int d1 = b.node(Op::Relu, "dangling", {x});
  b.node(Op::Sigmoid, "after_dangling", {d1});
  const int y = b.node(Op::Add, "output", {a, x});
  b.output(y);
  EXPECT_EQ(b.g.unread_nodes(), (std::vector<bool>{false, true, true, false}));
}

}  // namespace
}  // namespace q8::ir
