// ConvTranspose in int8, end to end:
//   - a QDQ file (DequantizeLinear -> ConvTranspose [-> Relu] -> QuantizeLinear, weights per
//     channel along axis 1 as ONNX Runtime's quantize_static writes them) lowers to
//     QuantizedConvTranspose and gives, on every kernel path and thread count, exactly the bytes
//     of the int8 arithmetic computed here from its definition (strides, kernels, pads,
//     output_padding, groups, dilations, a fused Relu);
//   - a BatchNormalization after a ConvTranspose folds into its weights (one int8 step less);
//   - q8's quantizer puts float ConvTranspose nodes (and a Relu after them) in int8, close to fp32,
//     and the file it writes loads back to the same bytes.
//   - analyze() measures a ConvTranspose's weight range per output channel of its
//     [C_in][K/group][kH][kW] weights.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "q8/q8.h"
#include "tests/onnx_model_builder.h"

namespace {

namespace fs = std::filesystem;
using q8test::OnnxModelBuilder;
using q8test::set_int;
using q8test::set_ints;

struct Config {
  const char* name;
  int64_t N, C, IH, IW, Kg, KH, KW, group;
  std::vector<int64_t> s, d, p, op;
  bool relu;
};

const Config kConfigs[] = {
    {"unet_k2s2", 2, 8, 5, 6, 8, 2, 2, 1, {2, 2}, {1, 1}, {0, 0, 0, 0}, {0, 0}, false},
    {"k3s1_pads_relu", 1, 5, 6, 5, 7, 3, 3, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}, {0, 0}, true},
    {"k3s2_outpad", 1, 6, 4, 5, 5, 3, 3, 1, {2, 2}, {1, 1}, {1, 0, 1, 2}, {1, 1}, false},
    {"k4s3_groups_dilation", 2, 6, 3, 4, 3, 4, 2, 2, {3, 2}, {2, 3}, {2, 1, 0, 3}, {2, 1}, true},
    {"k2s3_uncovered_phases", 1, 3, 3, 3, 4, 2, 2, 1, {3, 3}, {1, 1}, {0, 0, 0, 0}, {2, 1}, false},
};

class QdqConvTranspose : public testing::TestWithParam<Config> {};

TEST_P(QdqConvTranspose, RunsTheIntegerArithmeticExactlyOnEveryPath) {
  const Config& c = GetParam();
  const int64_t K = c.Kg * c.group, Cg = c.C / c.group;
  const int64_t OH = c.s[0] * (c.IH - 1) + c.op[0] + (c.KH - 1) * c.d[0] + 1 - c.p[0] - c.p[2];
  const int64_t OW = c.s[1] * (c.IW - 1) + c.op[1] + (c.KW - 1) * c.d[1] + 1 - c.p[1] - c.p[3];
  // Powers of two for the activations' scales make the float input and output exact integers.
  const float sx = 1.f / 16, so = 1.f / 8;
  const int za = 100, zo = 90;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> u8(0, 255), s8(-127, 127), b32(-3000, 3000);
  std::uniform_real_distribution<float> ws(0.0005f, 0.004f);
  std::vector<int8_t> w(static_cast<size_t>(c.C * c.Kg * c.KH * c.KW));
  for (auto& v : w) v = static_cast<int8_t>(s8(rng));
  std::vector<float> s_w(static_cast<size_t>(c.Kg)), s_bias(static_cast<size_t>(K));
  for (auto& v : s_w) v = ws(rng);
  std::vector<int32_t> bias(static_cast<size_t>(K));
  for (int64_t o = 0; o < K; ++o) bias[o] = b32(rng), s_bias[o] = sx * s_w[o % c.Kg];
  std::vector<int> xq(static_cast<size_t>(c.N * c.C * c.IH * c.IW));
  std::vector<float> x(xq.size());
  for (size_t i = 0; i < xq.size(); ++i) xq[i] = u8(rng), x[i] = static_cast<float>(xq[i] - za) * sx;

  OnnxModelBuilder mb;
  mb.input("x", {-1, c.C, c.IH, c.IW});
  mb.init_f("sx", {}, {sx});
  mb.init_8bit("zx", ::onnx::TensorProto_DataType_UINT8, {}, {static_cast<int8_t>(za)});
  mb.init_f("so", {}, {so});
  mb.init_8bit("zo", ::onnx::TensorProto_DataType_UINT8, {}, {static_cast<int8_t>(zo)});
  mb.init_8bit("wq", ::onnx::TensorProto_DataType_INT8, {c.C, c.Kg, c.KH, c.KW}, w);
  mb.init_f("sw", {c.Kg}, s_w);
  mb.init_8bit("zw", ::onnx::TensorProto_DataType_INT8, {c.Kg}, std::vector<int8_t>(c.Kg, 0));
  mb.init_i32("bq", {K}, bias);
  mb.init_f("sb", {K}, s_bias);
  mb.init_i32("zb", {K}, std::vector<int32_t>(K, 0));
  mb.node("QuantizeLinear", {"x", "sx", "zx"}, {"xq"}, "qx");
  mb.node("DequantizeLinear", {"xq", "sx", "zx"}, {"xd"}, "dqx");
  set_int(mb.node("DequantizeLinear", {"wq", "sw", "zw"}, {"wd"}, "dqw"), "axis", 1);
  set_int(mb.node("DequantizeLinear", {"bq", "sb", "zb"}, {"bd"}, "dqb"), "axis", 0);
  auto& n = mb.node("ConvTranspose", {"xd", "wd", "bd"}, {"y"}, "up");
  set_int(n, "group", c.group);
  set_ints(n, "strides", c.s);
  set_ints(n, "dilations", c.d);
  set_ints(n, "pads", c.p);
  set_ints(n, "output_padding", c.op);
  if (c.relu) mb.node("Relu", {"y"}, {"yr"}, "relu");
  mb.node("QuantizeLinear", {c.relu ? "yr" : "y", "so", "zo"}, {"yq"}, "qy");
  mb.node("DequantizeLinear", {"yq", "so", "zo"}, {"out"}, "dqy");
  mb.output("out");
  const std::string bytes = mb.bytes();
  const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "qdq_convt.onnx");
  bool lowered = false;
  for (const q8::NodeInfo& r : m.describe(1)) {
    EXPECT_NE(r.op, "Relu") << "the Relu fuses into the clamp";
    if (r.name != "up") continue;
    lowered = true;
    EXPECT_EQ(r.op, "QuantizedConvTranspose");
    EXPECT_NE(r.kernel.find("igemm"), std::string::npos) << r.kernel;
  }
  EXPECT_TRUE(lowered);

  // The int8 arithmetic by its definition: int64 sums, then qu8.h's requantization.
  std::vector<float> want(static_cast<size_t>(c.N * K * OH * OW));
  const float lo = static_cast<float>((c.relu ? zo : 0) - zo), hi = static_cast<float>(255 - zo);
  for (int64_t b = 0; b < c.N; ++b)
    for (int64_t o = 0; o < K; ++o)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          const int64_t grp = o / c.Kg, kg = o % c.Kg;
          int64_t acc = bias[o];
          for (int64_t ci = grp * Cg; ci < (grp + 1) * Cg; ++ci)
            for (int64_t iy = 0; iy < c.IH; ++iy)
              for (int64_t ky = 0; ky < c.KH; ++ky) {
                if (iy * c.s[0] + ky * c.d[0] - c.p[0] != oy) continue;
                for (int64_t ix = 0; ix < c.IW; ++ix)
                  for (int64_t kx = 0; kx < c.KW; ++kx) {
                    if (ix * c.s[1] + kx * c.d[1] - c.p[1] != ox) continue;
                    acc += static_cast<int64_t>(xq[((b * c.C + ci) * c.IH + iy) * c.IW + ix] - za) *
                           w[((ci * c.Kg + kg) * c.KH + ky) * c.KW + kx];
                  }
              }
          const float mult = static_cast<float>(static_cast<double>(sx) * s_w[kg] / so);
          const float v = std::min(std::max(static_cast<float>(acc) * mult, lo), hi);
          const int32_t q = static_cast<int32_t>(std::nearbyintf(v)) + zo;
          want[((b * K + o) * OH + oy) * OW + ox] = static_cast<float>(q - zo) * so;
        }
  const q8::Tensor input({c.N, c.C, c.IH, c.IW}, x);
  size_t inside = 0;
  for (float v : want) inside += v > lo * so && v < hi * so;
  EXPECT_GT(inside * 4, want.size()) << "a case whose outputs mostly saturate tests little";
  for (const std::string& isa : q8::supported_isas())
    for (int threads : {1, 2, 3}) {
      const q8::Tensor y = q8::Session(m, q8::SessionOptions{threads, isa}).run({input}).at(0);
      ASSERT_EQ(y.shape(), (std::vector<int64_t>{c.N, K, OH, OW}));
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_EQ(y.data()[i], want[i]) << isa << ", " << threads << " threads, element " << i;
    }
}

INSTANTIATE_TEST_SUITE_P(Configs, QdqConvTranspose, testing::ValuesIn(kConfigs),
                         [](const testing::TestParamInfo<Config>& i) { return std::string(i.param.name); });

double sqnr_db(const q8::Tensor& got, const q8::Tensor& ref) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const double d = static_cast<double>(got.data()[i]) - ref.data()[i];
    num += d * d;
    den += static_cast<double>(ref.data()[i]) * ref.data()[i];
  }
  return 10 * std::log10(den / std::max(num, 1e-30));
}

// A float Conv -> ConvTranspose (groups 2, stride 2, pads) -> Relu -> Conv chain, quantized by q8.
TEST(QuantizeConvTranspose, RunsInInt8CloseToFp32AndSavesAndLoadsBack) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 0.3f);
  auto randn = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = nd(rng);
    return v;
  };
  OnnxModelBuilder mb;
  mb.input("x", {-1, 4, 9, 7});
  mb.init_f("w1", {8, 4, 3, 3}, randn(8 * 4 * 9));
  mb.init_f("b1", {8}, randn(8));
  mb.init_f("wt", {8, 3, 3, 3}, randn(8 * 3 * 9));
  mb.init_f("bt", {6}, randn(6));
  mb.init_f("w2", {5, 6, 1, 1}, randn(30));
  auto& c1 = mb.node("Conv", {"x", "w1", "b1"}, {"a"}, "conv1");
  set_ints(c1, "pads", {1, 1, 1, 1});
  auto& t = mb.node("ConvTranspose", {"a", "wt", "bt"}, {"u"}, "up");
  set_int(t, "group", 2);
  set_ints(t, "strides", {2, 2});
  set_ints(t, "pads", {1, 1, 1, 1});
  set_ints(t, "output_padding", {1, 1});
  mb.node("Relu", {"u"}, {"ur"}, "relu");
  mb.node("Conv", {"ur", "w2"}, {"y"}, "conv2");
  mb.output("y");
  const std::string bytes = mb.bytes();
  const q8::Model fp32 = q8::Model::load_from_memory(bytes.data(), bytes.size(), "convt_chain.onnx");
  const q8::Model int8 = q8::quantize(fp32, {q8::Tensor({8, 4, 9, 7}, randn(8 * 4 * 9 * 7))});
  bool up = false;
  for (const q8::NodeInfo& r : int8.describe(1)) {
    EXPECT_NE(r.op, "Relu") << "the Relu fuses into the ConvTranspose's clamp";
    if (r.name != "up") continue;
    up = true;
    EXPECT_EQ(r.op, "QuantizedConvTranspose");
    EXPECT_TRUE(r.int8);
  }
  EXPECT_TRUE(up);
  const q8::Tensor x({2, 4, 9, 7}, randn(2 * 4 * 9 * 7));
  const q8::Tensor ref = q8::Session(fp32).run({x}).at(0);
  const q8::Tensor y = q8::Session(int8).run({x}).at(0);
  const double db = sqnr_db(y, ref);
  std::printf("[convt] int8 Conv-ConvTranspose-Relu-Conv SQNR vs fp32: %.1f dB\n", db);
  EXPECT_GT(db, 25.0);
  const fs::path path = fs::path(testing::TempDir()) / ("q8_convt_" + std::to_string(::getpid()) + ".onnx");
  int8.save(path.string());
  const q8::Model back = q8::Model::load(path.string());
  std::error_code ec;
  fs::remove(path, ec);
  const q8::Tensor yb = q8::Session(back).run({x}).at(0);
  ASSERT_EQ(yb.shape(), y.shape());
  EXPECT_TRUE(std::equal(y.data(), y.data() + y.numel(), yb.data()));
}

// ConvTranspose (groups 2) -> BatchNormalization equals the ConvTranspose alone, normalized here,
// with the BatchNormalization folded away.
TEST(ConvTransposeBatchNorm, FoldsIntoTheWeightsPerOutputChannel) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> ud(-1.f, 1.f), pos(0.5f, 2.f);
  auto rand = [&](size_t n, bool positive = false) {
    std::vector<float> v(n);
    for (float& x : v) x = positive ? pos(rng) : ud(rng);
    return v;
  };
  const std::vector<float> w = rand(4 * 3 * 3 * 2), b = rand(6), gamma = rand(6), beta = rand(6), mean = rand(6),
                           var = rand(6, true);
  auto model = [&](bool bn) {
    OnnxModelBuilder mb;
    mb.input("x", {-1, 4, 5, 4});
    mb.init_f("w", {4, 3, 3, 2}, w);
    mb.init_f("b", {6}, b);
    auto& t = mb.node("ConvTranspose", {"x", "w", "b"}, {bn ? "t" : "y"}, "up");
    set_int(t, "group", 2);
    set_ints(t, "strides", {2, 1});
    if (bn) {
      mb.init_f("gamma", {6}, gamma);
      mb.init_f("beta", {6}, beta);
      mb.init_f("mean", {6}, mean);
      mb.init_f("var", {6}, var);
      mb.node("BatchNormalization", {"t", "gamma", "beta", "mean", "var"}, {"y"}, "bn");
    }
    mb.output("y");
    const std::string bytes = mb.bytes();
    return q8::Model::load_from_memory(bytes.data(), bytes.size(), "convt_bn.onnx");
  };
  const q8::Model with_bn = model(true), plain = model(false);
  for (const q8::NodeInfo& r : with_bn.describe(1)) EXPECT_NE(r.op, "BatchNormalization");
  const q8::Tensor x({2, 4, 5, 4}, rand(2 * 4 * 5 * 4));
  const q8::Tensor y = q8::Session(with_bn).run({x}).at(0), t = q8::Session(plain).run({x}).at(0);
  ASSERT_EQ(y.shape(), t.shape());
  const int64_t K = 6, HW = t.shape()[2] * t.shape()[3];
  double num = 0, den = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int64_t k = i / HW % K;
    const double want = (t.data()[i] - mean[k]) * gamma[k] / std::sqrt(var[k] + 1e-5) + beta[k];
    num += (y.data()[i] - want) * (y.data()[i] - want);
    den += want * want;
  }
  EXPECT_LE(std::sqrt(num / den), 1e-6);
}

// ONNX ConvTranspose weights are [C_in][K/group][kH][kW]: analyze() measures their range per
// output channel (c / Cg) * Kg + kk. Output channels 1 (group 0, kk 1) and 3 (group 1, kk 0) get
// 100x the others' range: per output channel that is a ratio near 100, while per input channel,
// per kk (ignoring groups) or over the whole tensor the median channel is a large one (ratio ~1).
TEST(AnalyzeConvTranspose, WeightRangeRatioIsPerOutputChannel) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 0.3f);
  auto randn = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = nd(rng);
    return v;
  };
  const int64_t C = 4, Kg = 3, group = 2, Cg = C / group, taps = 9;
  std::vector<float> w = randn(C * Kg * taps);
  for (int64_t big : {1, 3})
    for (int64_t c = (big / Kg) * Cg; c < (big / Kg + 1) * Cg; ++c)
      for (int64_t t = 0; t < taps; ++t) w[(c * Kg + big % Kg) * taps + t] *= 100.f;
  OnnxModelBuilder mb;
  mb.input("x", {-1, C, 6, 5});
  mb.init_f("w", {C, Kg, 3, 3}, w);
  mb.init_f("b", {Kg * group}, randn(Kg * group));
  auto& t = mb.node("ConvTranspose", {"x", "w", "b"}, {"y"}, "up");
  set_int(t, "group", group);
  set_ints(t, "strides", {2, 2});
  mb.output("y");
  const std::string bytes = mb.bytes();
  const q8::Model fp32 = q8::Model::load_from_memory(bytes.data(), bytes.size(), "convt_range.onnx");
  const q8::Tensor calib({8, C, 6, 5}, randn(8 * C * 6 * 5));
  q8::AnalyzeOptions ao;
  ao.iterations = 1;
  for (bool per_channel : {false, true}) {
    q8::QuantizeOptions qo;
    qo.per_channel = per_channel;
    const q8::Analysis a = q8::analyze(fp32, {calib}, {}, qo, ao);
    ASSERT_EQ(a.layers.size(), 1u) << a.to_text();
    EXPECT_EQ(a.layers[0].name, "up");
    if (per_channel) {
      EXPECT_EQ(a.layers[0].weight_range_ratio, 1.0) << "per-channel weights have no range to advise on";
    } else {
      EXPECT_GT(a.layers[0].weight_range_ratio, 30.0) << a.to_text();
      std::printf("[convt] per-tensor weight_range_ratio: %.1f\n", a.layers[0].weight_range_ratio);
    }
  }
}

}  // namespace
