// ConvNeXt's block as torch.onnx.export writes it: a depthwise 7x7 Conv, a Transpose to NHWC,
// LayerNormalization, a Linear C -> 4C (MatMul + Add on the rank-4 tensor), GELU (Div, Erf, Add,
// Mul, Mul), a Linear 4C -> C, the Transpose back, the layer scale (Mul by gamma[C,1,1]) and the
// residual Add. Here: GELU fuses into one Gelu op that gives the graph's bits on every path; q8's
// quantizer runs every Linear, the GELU, the layer scale and the residual Add in int8, and the int8
// model stays close to fp32 and survives a save and reload (com.microsoft's Gelu).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "q8/q8.h"
#include "tests/onnx_model_builder.h"
#include "tests/test_util.h"

namespace {

using q8test::OnnxModelBuilder;

using q8::test::random_floats;

double gelu(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }

// y = ((x * (Erf(x / sqrt_2) + 1)) * 0.5, the nodes PyTorch writes for nn.GELU, on input `x`.
void add_gelu(OnnxModelBuilder& b, const std::string& x, const std::string& y, float sqrt_2 = 1.4142135381698608f) {
  b.init_f(y + "_sqrt2", {}, {sqrt_2});
  b.init_f(y + "_one", {}, {1.f});
  b.init_f(y + "_half", {}, {0.5f});
  b.node("Div", {x, y + "_sqrt2"}, {y + "_d"}, y + "_div");
  b.node("Erf", {y + "_d"}, {y + "_e"}, y + "_erf");
  b.node("Add", {y + "_e", y + "_one"}, {y + "_a"}, y + "_add");
  b.node("Mul", {x, y + "_a"}, {y + "_m"}, y + "_mul");
  b.node("Mul", {y + "_m", y + "_half"}, {y}, y + "_mul_half");
}

// With `expose_sum`, Erf(..) + 1 is a second output as well: a value read outside the pattern
// keeps the fusion out, so the engine runs the five nodes one by one.
std::string gelu_model(float sqrt_2, bool expose_sum = false) {
  OnnxModelBuilder b(13);
  b.input("x", {2, 3, 5, 4});
  add_gelu(b, "x", "y", sqrt_2);
  b.output("y");
  if (expose_sum) b.output("y_a");
  return b.bytes();
}

TEST(Gelu, ErfPatternFusesIntoOneGeluWithTheUnfusedGraphsBitsOnEveryPath) {
  const std::string bytes = gelu_model(1.4142135381698608f), unfused_bytes = gelu_model(1.4142135381698608f, true);
  const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "gelu.onnx");
  const q8::Model unfused = q8::Model::load_from_memory(unfused_bytes.data(), unfused_bytes.size(), "unfused.onnx");
  const std::vector<q8::NodeInfo> nodes = m.describe();
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].op, "Gelu");
  ASSERT_EQ(unfused.describe().size(), 5u);
  const q8::Tensor x({2, 3, 5, 4}, random_floats(120, 5, -6.f, 6.f));
  std::vector<float> first;
  for (const std::string& isa : q8::supported_isas()) {
    q8::SessionOptions o(2);
    o.isa = isa;
    const q8::Tensor y = q8::Session(m, o).run({x})[0], want = q8::Session(unfused, o).run({x})[0];
    for (int64_t i = 0; i < x.numel(); ++i) {
      // The same float steps, fused or one node at a time: the same bits.
      ASSERT_EQ(y.data()[i], want.data()[i]) << isa << " at x = " << x.data()[i];
      // And they are GELU. Absolute slack for the negative tail, where 1 + erf cancels in float.
      const double exact = gelu(x.data()[i]);
      ASSERT_NEAR(y.data()[i], exact, 1e-6 * std::fabs(exact) + 2e-6) << isa << " at x = " << x.data()[i];
    }
    if (first.empty()) first.assign(y.data(), y.data() + y.numel());
    for (int64_t i = 0; i < y.numel(); ++i) ASSERT_EQ(y.data()[i], first[i]) << isa << " at " << i;
  }
}

TEST(Gelu, OtherConstantsStayUnfused) {
  const std::string bytes = gelu_model(1.5f);  // not GELU: the nodes stay as written
  const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "not_gelu.onnx");
  const std::vector<q8::NodeInfo> nodes = m.describe();
  ASSERT_EQ(nodes.size(), 5u);
  EXPECT_EQ(nodes[1].op, "Erf");
}

// x -> Conv -> [Transpose(0,2,3,1)] -> Sigmoid -> [Transpose(0,3,1,2)] -> Conv -> y
std::string transposed_model(bool transposes) {
  OnnxModelBuilder b(13);
  b.input("x", {2, 3, 5, 4});
  b.init_f("w1", {6, 3, 3, 3}, random_floats(6 * 27, 13, -0.5f, 0.5f));
  b.init_f("w2", {4, 6, 1, 1}, random_floats(24, 14, -0.5f, 0.5f));
  q8test::set_ints(b.node("Conv", {"x", "w1"}, {"c"}, "conv1"), "pads", {1, 1, 1, 1});
  if (transposes) {
    q8test::set_ints(b.node("Transpose", {"c"}, {"t"}, "to_nhwc"), "perm", {0, 2, 3, 1});
    b.node("Sigmoid", {"t"}, {"s"}, "act");
    q8test::set_ints(b.node("Transpose", {"s"}, {"u"}, "to_nchw"), "perm", {0, 3, 1, 2});
  } else {
    b.node("Sigmoid", {"c"}, {"u"}, "act");
  }
  b.node("Conv", {"u", "w2"}, {"y"}, "conv2");
  b.output("y");
  return b.bytes();
}

// The engine keeps 4-D tensors NHWC, so the Transposes to channels-last and back move no data.
TEST(ConvNextLayout, TransposesToNhwcAndBackAreViews) {
  const std::string with = transposed_model(true), without = transposed_model(false);
  const q8::Model m = q8::Model::load_from_memory(with.data(), with.size(), "t.onnx");
  const q8::Model ref = q8::Model::load_from_memory(without.data(), without.size(), "ref.onnx");
  int views = 0;
  for (const q8::NodeInfo& ni : m.describe())
    if (ni.op == "Transpose") views += ni.kernel == "view (no copy)";
  EXPECT_EQ(views, 2);
  const q8::Tensor x({2, 3, 5, 4}, random_floats(120, 15, -2.f, 2.f));
  const q8::Tensor y = q8::Session(m).run({x})[0], want = q8::Session(ref).run({x})[0];
  ASSERT_EQ(y.shape(), want.shape());
  for (int64_t i = 0; i < y.numel(); ++i) ASSERT_EQ(y.data()[i], want.data()[i]) << i;
}

constexpr int64_t kC = 8, kHW = 6;

// x [N,C,6,6] -> ConvNeXt block -> 1x1 Conv -> y [N,C,6,6]
std::string block_model() {
  OnnxModelBuilder b(17);
  b.input("x", {1, kC, kHW, kHW});
  b.init_f("dw_w", {kC, 1, 7, 7}, random_floats(kC * 49, 1, -0.2f, 0.2f));
  b.init_f("dw_b", {kC}, random_floats(kC, 2, -0.1f, 0.1f));
  auto& dw = b.node("Conv", {"x", "dw_w", "dw_b"}, {"c"}, "dwconv");
  q8test::set_ints(dw, "pads", {3, 3, 3, 3});
  q8test::set_int(dw, "group", kC);
  q8test::set_ints(b.node("Transpose", {"c"}, {"t"}, "to_nhwc"), "perm", {0, 2, 3, 1});
  b.init_f("ln_s", {kC}, random_floats(kC, 3, 0.5f, 1.5f));
  b.init_f("ln_b", {kC}, random_floats(kC, 4, -0.2f, 0.2f));
  b.node("LayerNormalization", {"t", "ln_s", "ln_b"}, {"n"}, "norm");
  b.init_f("w1", {kC, 4 * kC}, random_floats(4 * kC * kC, 5, -0.4f, 0.4f));
  b.init_f("b1", {4 * kC}, random_floats(4 * kC, 6, -0.2f, 0.2f));
  b.node("MatMul", {"n", "w1"}, {"h1"}, "fc1");
  b.node("Add", {"b1", "h1"}, {"h1b"}, "fc1_bias");
  add_gelu(b, "h1b", "g");
  b.init_f("w2", {4 * kC, kC}, random_floats(4 * kC * kC, 7, -0.3f, 0.3f));
  b.init_f("b2", {kC}, random_floats(kC, 8, -0.2f, 0.2f));
  b.node("MatMul", {"g", "w2"}, {"h2"}, "fc2");
  b.node("Add", {"b2", "h2"}, {"h2b"}, "fc2_bias");
  q8test::set_ints(b.node("Transpose", {"h2b"}, {"back"}, "to_nchw"), "perm", {0, 3, 1, 2});
  b.init_f("gamma", {kC, 1, 1}, random_floats(kC, 9, 0.2f, 0.8f));
  b.node("Mul", {"gamma", "back"}, {"scaled"}, "layer_scale");
  b.node("Add", {"scaled", "x"}, {"r"}, "residual");
  // The next stage's Conv reads the block's result, so the residual Add has an int8 reader.
  b.init_f("head_w", {kC, kC, 1, 1}, random_floats(kC * kC, 12, -0.5f, 0.5f));
  b.node("Conv", {"r", "head_w"}, {"y"}, "head");
  b.output("y");
  return b.bytes();
}

double sqnr_db(const q8::Tensor& got, const q8::Tensor& ref) {
  double s = 0, e = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    s += static_cast<double>(ref.data()[i]) * ref.data()[i];
    e += (static_cast<double>(got.data()[i]) - ref.data()[i]) * (got.data()[i] - ref.data()[i]);
  }
  return 10 * std::log10(s / e);
}

TEST(ConvNextInt8, EveryLinearTheGeluTheLayerScaleAndTheResidualRunInInt8) {
  const std::string bytes = block_model();
  const q8::Model fp32 = q8::Model::load_from_memory(bytes.data(), bytes.size(), "block.onnx");
  const q8::Tensor calib({16, kC, kHW, kHW}, random_floats(16 * kC * kHW * kHW, 10, -2.f, 2.f));
  const q8::Model int8 = q8::quantize(fp32, {calib});
  int dense = 0, gelu_tables = 0, adds = 0;
  for (const q8::NodeInfo& ni : int8.describe()) {
    SCOPED_TRACE(ni.name + " (" + ni.op + ", " + ni.kernel + ")");
    EXPECT_NE(ni.op, "Mul");  // the layer scale is folded into fc2
    EXPECT_NE(ni.op, "QuantizedDenseFloat");
    if (ni.name == "fc1" || ni.name == "fc2") {
      EXPECT_EQ(ni.op, "QuantizedDense");
      EXPECT_TRUE(ni.int8);
      EXPECT_EQ(ni.output_shapes[0], (std::vector<int64_t>{1, kHW, kHW, ni.name == "fc1" ? 4 * kC : kC}));
      // 36 rows: every weight serves them all, so the AVX2 tile runs on its own int16 weights,
      // not on the int8 ones a classifier's single row streams (runtime/ops/quantized_dense.cpp).
      if (q8::active_isa() == "avx2") {
        EXPECT_EQ(ni.kernel, "qu8_gemm_3x16c4__avx2");
      }
      ++dense;
    }
    if (ni.op == "Gelu") {
      EXPECT_TRUE(ni.int8);
      EXPECT_EQ(ni.kernel.rfind("qu8_lookup", 0), 0u);
      ++gelu_tables;
    }
    if (ni.name == "residual") {
      EXPECT_EQ(ni.op, "QuantizedAdd");
      ++adds;
    }
    if (ni.name == "to_nchw") {
      EXPECT_TRUE(ni.int8);
    }
    if (ni.op == "Add" || ni.op == "Div" || ni.op == "Erf") ADD_FAILURE() << "left in fp32";
  }
  EXPECT_EQ(dense, 2);
  EXPECT_EQ(gelu_tables, 1);
  EXPECT_EQ(adds, 1);

  const q8::Tensor x({1, kC, kHW, kHW}, random_floats(kC * kHW * kHW, 11, -2.f, 2.f));
  const q8::Tensor want = q8::Session(fp32).run({x})[0];
  const q8::Tensor got = q8::Session(int8).run({x})[0];
  EXPECT_GT(sqnr_db(got, want), 30.0);

  // The int8 file (MatMul + Add with Q/DQ, com.microsoft's Gelu) reads back to the same model.
  const std::string path = testing::TempDir() + "q8_convnext_block.int8.onnx";
  int8.save(path);
  const q8::Model back = q8::Model::load(path);
  const q8::Tensor again = q8::Session(back).run({x})[0];
  ASSERT_EQ(again.numel(), got.numel());
  for (int64_t i = 0; i < got.numel(); ++i) ASSERT_EQ(again.data()[i], got.data()[i]) << i;
}

// A classifier at batch 1 multiplies one row: it reads each weight once, so on AVX2 both of its
// dense layers run on int8 weights (the _w8 tiles), where ConvNeXt's many-row MLPs above run on the
// table's own int16 ones.
TEST(ConvNextInt8, OneRowDenseLayersStreamInt8Weights) {
  OnnxModelBuilder b(17);
  b.input("x", {1, 32});
  b.init_f("w1", {24, 32}, random_floats(24 * 32, 13, -0.3f, 0.3f));
  q8test::set_int(b.node("Gemm", {"x", "w1"}, {"h"}, "fc1"), "transB", 1);
  b.node("Relu", {"h"}, {"r"}, "relu");
  b.init_f("w2", {10, 24}, random_floats(10 * 24, 14, -0.3f, 0.3f));
  q8test::set_int(b.node("Gemm", {"r", "w2"}, {"y"}, "fc2"), "transB", 1);
  b.output("y");
  const std::string bytes = b.bytes();
  const q8::Model fp32 = q8::Model::load_from_memory(bytes.data(), bytes.size(), "mlp.onnx");
  const q8::Model int8 = q8::quantize(fp32, {q8::Tensor({8, 32}, random_floats(8 * 32, 15, -2.f, 2.f))});
  int dense = 0;
  for (const q8::NodeInfo& ni : int8.describe()) {
    SCOPED_TRACE(ni.name + " (" + ni.op + ", " + ni.kernel + ")");
    if (ni.name != "fc1" && ni.name != "fc2") continue;
    ++dense;
    EXPECT_EQ(ni.op, ni.name == "fc1" ? "QuantizedDense" : "QuantizedDenseFloat");
    if (q8::active_isa() == "avx2") {
      EXPECT_EQ(ni.kernel, ni.name == "fc1" ? "qu8_gemm_3x16c4__avx2_w8" : "qu8_gemm_dequantize_3x16c4__avx2_w8");
    }
  }
  EXPECT_EQ(dense, 2);
}

}  // namespace

namespace {

// A table lookup that only fp32 ops read (a decomposed LayerNorm's Sqrt) stays fp32: quantizing
// its input would only round it to uint8 on the way to float. x -> Conv -> Sqrt -> Softmax -> y.
TEST(ConvNextInt8, LookupReadOnlyByFp32OpsStaysFp32) {
  OnnxModelBuilder b(13);
  b.input("x", {1, 3, 5, 4});
  b.init_f("w", {4, 3, 1, 1}, random_floats(12, 16, 0.1f, 0.5f));
  b.node("Conv", {"x", "w"}, {"c"}, "conv");
  b.node("Sqrt", {"c"}, {"r"}, "root");
  b.node("Softmax", {"r"}, {"y"}, "softmax");
  b.output("y");
  const std::string bytes = b.bytes();
  const q8::Model fp32 = q8::Model::load_from_memory(bytes.data(), bytes.size(), "sqrt.onnx");
  const q8::Model int8 = q8::quantize(fp32, {q8::Tensor({8, 3, 5, 4}, random_floats(480, 17, 0.f, 2.f))});
  int quantizes = 0;
  for (const q8::NodeInfo& ni : int8.describe()) {
    quantizes += ni.op == "QuantizeLinear";
    if (ni.name == "root") {
      EXPECT_FALSE(ni.int8) << ni.kernel;
    }
  }
  EXPECT_EQ(quantizes, 1);  // the Conv's input only
}

}  // namespace

namespace {

constexpr int kU8 = ::onnx::TensorProto_DataType_UINT8;
constexpr int kI8 = ::onnx::TensorProto_DataType_INT8;

// A QDQ Linear on a rank-4 activation: x [1,3,4,6] -> Q -> DQ -> MatMul(DQ(w int8 [6,5], per
// column)) -> Add(bias) -> Q -> DQ -> y. The bias is float, or int32 in the accumulator's scale
// behind its own DequantizeLinear. Lowered to one QuantizedDense whose output codes are the
// integer arithmetic's: acc = sum (x_q - z_x) w_q, y_q = round(acc s_x s_w[n] / s_y + b[n] / s_y) + z_y.
TEST(ConvNextInt8, QdqMatMulWithBiasOnARank4InputIsOneQuantizedDense) {
  const int64_t K = 6, N = 5, M = 12;
  const float s_x = 0.05f, s_y = 0.04f;
  const int z_x = 120, z_y = 130;
  const std::vector<float> s_w = {0.01f, 0.02f, 0.015f, 0.03f, 0.005f};
  std::vector<int8_t> w(K * N);
  std::mt19937 rng(21);
  for (int8_t& v : w) v = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
  const std::vector<float> bias = {0.3f, -0.2f, 0.05f, 0.f, 0.7f};
  for (bool int_bias : {false, true}) {
    SCOPED_TRACE(int_bias ? "int32 bias" : "float bias");
    OnnxModelBuilder b(13);
    b.input("x", {1, 3, 4, K});
    b.init_f("s_x", {}, {s_x});
    b.init_8bit("z_x", kU8, {}, {static_cast<int8_t>(z_x)});
    b.init_f("s_y", {}, {s_y});
    b.init_8bit("z_y", kU8, {}, {static_cast<int8_t>(z_y)});
    b.init_8bit("w", kI8, {K, N}, w);
    b.init_f("s_w", {N}, s_w);
    b.init_8bit("z_w", kI8, {N}, std::vector<int8_t>(N, 0));
    b.node("QuantizeLinear", {"x", "s_x", "z_x"}, {"xq"}, "q_x");
    b.node("DequantizeLinear", {"xq", "s_x", "z_x"}, {"xd"}, "dq_x");
    q8test::set_int(b.node("DequantizeLinear", {"w", "s_w", "z_w"}, {"wd"}, "dq_w"), "axis", 1);
    b.node("MatMul", {"xd", "wd"}, {"h"}, "fc");
    if (int_bias) {
      std::vector<int32_t> bq(N);
      std::vector<float> bs(N);
      for (int64_t n = 0; n < N; ++n)
        bs[n] = s_x * s_w[n], bq[n] = static_cast<int32_t>(std::nearbyint(bias[n] / bs[n]));
      b.init_i32("bq", {N}, bq);
      b.init_f("bs", {N}, bs);
      b.init_i32("bz", {N}, std::vector<int32_t>(N, 0));
      q8test::set_int(b.node("DequantizeLinear", {"bq", "bs", "bz"}, {"bias"}, "dq_b"), "axis", 0);
    } else {
      b.init_f("bias", {N}, bias);
    }
    b.node("Add", {"h", "bias"}, {"hb"}, "fc_bias");
    b.node("QuantizeLinear", {"hb", "s_y", "z_y"}, {"yq"}, "q_y");
    b.node("DequantizeLinear", {"yq", "s_y", "z_y"}, {"y"}, "dq_y");
    b.output("y");
    const std::string bytes = b.bytes();
    const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "linear.onnx");
    int dense = 0;
    for (const q8::NodeInfo& ni : m.describe()) {
      dense += ni.op == "QuantizedDense";
      EXPECT_NE(ni.op, "Add") << ni.name;
      EXPECT_NE(ni.op, "MatMul") << ni.name;
    }
    EXPECT_EQ(dense, 1);
    // Inputs on the quantization grid, so QuantizeLinear gives back the codes chosen here.
    std::vector<int> xq(M * K);
    std::vector<float> x(M * K);
    for (size_t i = 0; i < x.size(); ++i) xq[i] = static_cast<int>(rng() % 256), x[i] = (xq[i] - z_x) * s_x;
    for (const std::string& isa : q8::supported_isas()) {
      q8::SessionOptions o(1);
      o.isa = isa;
      const q8::Tensor y = q8::Session(m, o).run({q8::Tensor({1, 3, 4, K}, x)})[0];
      ASSERT_EQ(y.shape(), (std::vector<int64_t>{1, 3, 4, N}));
      for (int64_t r = 0; r < M; ++r)
        for (int64_t n = 0; n < N; ++n) {
          int64_t acc = 0;
          for (int64_t k = 0; k < K; ++k) acc += static_cast<int64_t>(xq[r * K + k] - z_x) * w[k * N + n];
          const double acc_scale = static_cast<double>(s_x) * s_w[n];
          const double b_acc = std::nearbyint(bias[n] / acc_scale);
          const double v = (acc + b_acc) * acc_scale / s_y;
          const int want = static_cast<int>(std::fmin(std::fmax(std::nearbyint(v) + z_y, 0), 255));
          const int got = static_cast<int>(std::lround(y.data()[r * N + n] / s_y)) + z_y;
          const double frac = v - std::floor(v);
          if (got != want && !(std::fabs(frac - 0.5) < 1e-3 && std::abs(got - want) == 1))
            ADD_FAILURE() << isa << ": row " << r << ", column " << n << " gives " << got << ", expected " << want;
        }
    }
  }
}

}  // namespace

namespace {

// LayerNorm over the last axis as torch.onnx.export writes it before opset 17; `weight_dims` {8}
// is PyTorch's weight, {} a scalar (not a LayerNorm the fused op can take).
std::string decomposed_layer_norm(const std::vector<int64_t>& weight_dims) {
  OnnxModelBuilder b(13);
  b.input("x", {2, 5, 4, 8});
  b.init_f("two", {}, {2.f});
  b.init_f("eps", {}, {1e-6f});
  b.init_f("weight", weight_dims, random_floats(weight_dims.empty() ? 1 : 8, 31, 0.5f, 1.5f));
  b.init_f("bias", {8}, random_floats(8, 32, -0.5f, 0.5f));
  q8test::set_ints(b.node("ReduceMean", {"x"}, {"m"}, "mean"), "axes", {-1});
  b.node("Sub", {"x", "m"}, {"d"}, "sub");
  b.node("Pow", {"d", "two"}, {"p"}, "pow");
  q8test::set_ints(b.node("ReduceMean", {"p"}, {"v"}, "var"), "axes", {-1});
  b.node("Add", {"v", "eps"}, {"ve"}, "add_eps");
  b.node("Sqrt", {"ve"}, {"s"}, "sqrt");
  b.node("Div", {"d", "s"}, {"n"}, "div");
  b.node("Mul", {"n", "weight"}, {"nw"}, "scale");
  b.node("Add", {"nw", "bias"}, {"y"}, "shift");
  b.output("y");
  return b.bytes();
}

TEST(ConvNextLayout, DecomposedLayerNormFusesIntoOneLayerNormalization) {
  const std::string bytes = decomposed_layer_norm({8});
  const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "ln.onnx");
  const std::vector<q8::NodeInfo> nodes = m.describe();
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].op, "LayerNormalization");
  const std::vector<float> w = random_floats(8, 31, 0.5f, 1.5f), bias = random_floats(8, 32, -0.5f, 0.5f);
  const q8::Tensor x({2, 5, 4, 8}, random_floats(320, 33, -3.f, 3.f));
  const q8::Tensor y = q8::Session(m).run({x})[0];
  for (int64_t r = 0; r < 40; ++r) {
    double mean = 0, var = 0;
    for (int c = 0; c < 8; ++c) mean += x.data()[r * 8 + c] / 8.0;
    for (int c = 0; c < 8; ++c) var += (x.data()[r * 8 + c] - mean) * (x.data()[r * 8 + c] - mean) / 8.0;
    for (int c = 0; c < 8; ++c) {
      const double want = (x.data()[r * 8 + c] - mean) / std::sqrt(var + 1e-6) * w[c] + bias[c];
      ASSERT_NEAR(y.data()[r * 8 + c], want, 1e-5) << "row " << r << ", column " << c;
    }
  }
  // A scalar weight is not the op's [C] scale: the nodes stay as written.
  const std::string scalar = decomposed_layer_norm({});
  EXPECT_EQ(q8::Model::load_from_memory(scalar.data(), scalar.size(), "s.onnx").describe().size(), 9u);
}

}  // namespace
