// Resize and ConvTranspose. ONNX's own cases run in tests/test_conformance.cpp; here:
//   - a small UNet exported by torch.onnx.export at opsets 13 and 17 (scripts/make_upsample_models.py:
//     Conv, ConvTranspose, Concat, nearest and bilinear upsampling, a dynamic batch) matches ONNX
//     Runtime's output at batch 1 and 2, and gives the same bytes on every kernel path and thread
//     count; quantized, its nearest Resize runs on uint8 and the file saves and loads back;
//   - ConvTranspose with groups, strides, dilations, pads, output_padding and a bias matches a
//     direct evaluation of ONNX's definition;
//   - what is not supported is refused by file and node name.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "q8/q8.h"
#include "tests/onnx_model_builder.h"
#include "tests/test_util.h"

namespace {

namespace fs = std::filesystem;
using q8test::OnnxModelBuilder;
using q8test::set_int;
using q8test::set_ints;
using q8test::set_str;

fs::path data_dir() { return fs::path(Q8_SOURCE_DIR) / "tests" / "upsample"; }

double rel_l2(const q8::Tensor& got, const q8::Tensor& want) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double d = static_cast<double>(got.data()[i]) - want.data()[i];
    num += d * d;
    den += static_cast<double>(want.data()[i]) * want.data()[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

bool same_bytes(const q8::Tensor& a, const q8::Tensor& b) {
  return a.shape() == b.shape() && std::equal(a.data(), a.data() + a.numel(), b.data());
}

using q8::test::random_floats;

class UNet : public testing::TestWithParam<int> {};

TEST_P(UNet, Fp32MatchesOnnxRuntimeAtBatch1And2) {
  const std::string model = (data_dir() / ("unet_opset" + std::to_string(GetParam()) + ".onnx")).string();
  const q8::Model m = q8::Model::load(model);
  for (int batch : {1, 2}) {
    const q8::Tensor x = q8::load_npy((data_dir() / ("input_b" + std::to_string(batch) + ".npy")).string());
    const q8::Tensor want = q8::load_npy(
        (data_dir() / ("unet_opset" + std::to_string(GetParam()) + "_ort_b" + std::to_string(batch) + ".npy"))
            .string());
    const q8::Tensor got = q8::Session(m).run({x}).at(0);
    ASSERT_EQ(got.shape(), want.shape());
    const double e = rel_l2(got, want);
    std::printf("[upsample] unet opset %d batch %d: fp32 rel L2 vs ONNX Runtime = %.3g\n", GetParam(), batch, e);
    EXPECT_LE(e, 1e-5) << "batch " << batch;
    for (const std::string& isa : q8::supported_isas())
      for (int threads : {1, 2, 3}) {
        const q8::Tensor y = q8::Session(m, q8::SessionOptions{threads, isa}).run({x}).at(0);
        EXPECT_TRUE(same_bytes(y, got)) << isa << ", " << threads << " threads, batch " << batch;
      }
  }
}

TEST_P(UNet, QuantizedNearestResizeRunsOnUint8) {
  const std::string model = (data_dir() / ("unet_opset" + std::to_string(GetParam()) + ".onnx")).string();
  const q8::Model fp32 = q8::Model::load(model);
  const q8::Tensor x = q8::load_npy((data_dir() / "input_b2.npy").string());
  const q8::Model int8 = q8::quantize(fp32, {x});
  ASSERT_TRUE(int8.is_quantized());
  int nearest = 0, bilinear = 0;
  for (const q8::NodeInfo& r : int8.describe(1)) {
    if (r.op != "Resize") continue;
    if (r.kernel.find("bilinear") != std::string::npos) {
      ++bilinear;
      EXPECT_FALSE(r.int8) << r.name << " runs " << r.kernel;
    } else {
      ++nearest;
      EXPECT_TRUE(r.int8) << r.name << " runs " << r.kernel;
      EXPECT_EQ(r.kernel, "resize_nearest_nhwc (uint8)") << r.name;
    }
  }
  EXPECT_EQ(nearest, 1);
  EXPECT_EQ(bilinear, 2);
  const q8::Tensor y = q8::Session(int8).run({x}).at(0);
  for (const std::string& isa : q8::supported_isas())
    for (int threads : {1, 2})
      EXPECT_TRUE(same_bytes(q8::Session(int8, q8::SessionOptions{threads, isa}).run({x}).at(0), y))
          << isa << ", " << threads << " threads";
  // Written as QDQ ONNX (a file ONNX Runtime loads too) and read back, it runs the same.
  const fs::path path = fs::path(testing::TempDir()) /
                        ("q8_unet_" + std::to_string(GetParam()) + "_" + std::to_string(::getpid()) + ".onnx");
  int8.save(path.string());
  const q8::Model back = q8::Model::load(path.string());
  std::error_code ec;
  fs::remove(path, ec);
  EXPECT_TRUE(same_bytes(q8::Session(back).run({x}).at(0), y));
}

INSTANTIATE_TEST_SUITE_P(Opsets, UNet, testing::Values(13, 17),
                         [](const testing::TestParamInfo<int>& i) { return "opset" + std::to_string(i.param); });

// ONNX ConvTranspose by its definition: every input pixel scatters its taps into the full
// result, from which pads are cut. Double accumulation.
std::vector<double> conv_transpose_by_definition(const std::vector<int64_t>& xd, const std::vector<float>& x,
                                                 const std::vector<int64_t>& wd, const std::vector<float>& w,
                                                 const std::vector<float>& b, int64_t group,
                                                 const std::vector<int64_t>& s, const std::vector<int64_t>& d,
                                                 const std::vector<int64_t>& p, int64_t OH, int64_t OW) {
  const int64_t N = xd[0], C = xd[1], IH = xd[2], IW = xd[3], Kg = wd[1], KH = wd[2], KW = wd[3];
  const int64_t K = Kg * group, Cg = C / group;
  std::vector<double> y(N * K * OH * OW);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t i = 0; i < OH * OW; ++i) y[(n * K + k) * OH * OW + i] = b[k];
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t ih = 0; ih < IH; ++ih)
        for (int64_t iw = 0; iw < IW; ++iw)
          for (int64_t kg = 0; kg < Kg; ++kg)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                const int64_t oh = ih * s[0] + kh * d[0] - p[0], ow = iw * s[1] + kw * d[1] - p[1];
                if (oh < 0 || ow < 0 || oh >= OH || ow >= OW) continue;
                const int64_t k = (c / Cg) * Kg + kg;
                y[((n * K + k) * OH + oh) * OW + ow] +=
                    static_cast<double>(x[((n * C + c) * IH + ih) * IW + iw]) * w[((c * Kg + kg) * KH + kh) * KW + kw];
              }
  return y;
}

// A ConvTranspose [-> Relu] node with these attributes matches the definition (within 1e-6,
// relative) and gives the same bytes on every kernel path at 1-3 threads.
void expect_conv_transpose_matches_definition(const std::vector<int64_t>& xd, const std::vector<int64_t>& wd,
                                              int64_t group, const std::vector<int64_t>& s,
                                              const std::vector<int64_t>& d, const std::vector<int64_t>& p,
                                              const std::vector<int64_t>& op, bool relu) {
  const int64_t K = wd[1] * group;
  // Full extent s*(in-1) + op + (k-1)*d + 1, less the pads.
  const int64_t OH = s[0] * (xd[2] - 1) + op[0] + (wd[2] - 1) * d[0] + 1 - p[0] - p[2];
  const int64_t OW = s[1] * (xd[3] - 1) + op[1] + (wd[3] - 1) * d[1] + 1 - p[1] - p[3];
  const std::vector<float> x = random_floats(static_cast<size_t>(xd[0] * xd[1] * xd[2] * xd[3]), 11),
                           w = random_floats(static_cast<size_t>(wd[0] * wd[1] * wd[2] * wd[3]), 12),
                           b = random_floats(static_cast<size_t>(K), 13);
  OnnxModelBuilder mb;
  mb.input("x", {-1, xd[1], xd[2], xd[3]});
  mb.init_f("w", wd, w);
  mb.init_f("b", {K}, b);
  auto& n = mb.node("ConvTranspose", {"x", "w", "b"}, {relu ? "t" : "y"}, "up");
  set_int(n, "group", group);
  set_ints(n, "strides", s);
  set_ints(n, "dilations", d);
  set_ints(n, "pads", p);
  set_ints(n, "output_padding", op);
  if (relu) mb.node("Relu", {"t"}, {"y"}, "relu");
  mb.output("y");
  const std::string bytes = mb.bytes();
  const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "convt.onnx");
  std::vector<double> want = conv_transpose_by_definition(xd, x, wd, w, b, group, s, d, p, OH, OW);
  if (relu)
    for (double& v : want) v = std::max(v, 0.0);
  const q8::Tensor y = q8::Session(m).run({q8::Tensor(xd, x)}).at(0);
  ASSERT_EQ(y.shape(), (std::vector<int64_t>{xd[0], K, OH, OW}));
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (y.data()[i] - want[i]) * (y.data()[i] - want[i]);
    den += want[i] * want[i];
  }
  EXPECT_LE(std::sqrt(num / den), 1e-6);
  for (const std::string& isa : q8::supported_isas())
    for (int threads : {1, 2, 3})
      EXPECT_TRUE(same_bytes(q8::Session(m, q8::SessionOptions{threads, isa}).run({q8::Tensor(xd, x)}).at(0), y))
          << isa << ", " << threads << " threads";
}

TEST(ConvTranspose, GroupsStridesDilationsPadsMatchTheDefinition) {
  for (bool relu : {false, true}) {
    SCOPED_TRACE(relu ? "with a Relu" : "alone");
    expect_conv_transpose_matches_definition({2, 4, 5, 6}, {4, 3, 3, 2}, 2, {2, 3}, {2, 1}, {1, 0, 2, 1}, {1, 2}, relu);
  }
}

// The Relu after a ConvTranspose is its output clamp, not a step of its own.
TEST(ConvTranspose, AbsorbsTheReluAfterIt) {
  OnnxModelBuilder mb;
  mb.input("x", {1, 4, 5, 5});
  mb.init_f("w", {4, 3, 2, 2}, random_floats(48, 3));
  auto& n = mb.node("ConvTranspose", {"x", "w"}, {"t"}, "up");
  set_ints(n, "strides", {2, 2});
  mb.node("Relu", {"t"}, {"y"}, "relu");
  mb.output("y");
  const std::string bytes = mb.bytes();
  const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "convt.onnx");
  const std::vector<q8::NodeInfo> info = m.describe(1);
  ASSERT_EQ(info.size(), 1u);
  EXPECT_EQ(info[0].op, "ConvTranspose");
  EXPECT_NE(info[0].params.find("+Relu"), std::string::npos) << info[0].params;
}

// Strides past the phase decomposition's (8) gather instead: the same definition, every path.
TEST(ConvTranspose, LargeStridesMatchTheDefinition) {
  for (bool relu : {false, true}) {
    SCOPED_TRACE(relu ? "with a Relu" : "alone");
    expect_conv_transpose_matches_definition({1, 3, 3, 4}, {3, 2, 10, 3}, 1, {9, 2}, {1, 1}, {2, 1, 0, 1}, {3, 1},
                                             relu);
  }
}

// Loading `bytes` fails naming the file, the node and `what`.
void expect_refused(const std::string& bytes, const std::string& node, const std::string& what) {
  try {
    const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "bad.onnx");
    q8::Session(m).run({q8::Tensor({1, 2, 4, 4})});
    FAIL() << "accepted; expected: " << what;
  } catch (const q8::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad.onnx"), std::string::npos) << msg;
    EXPECT_NE(msg.find(node), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  }
}

std::string resize_model(const std::string& mode, const std::string& coord, const std::vector<float>& scales) {
  OnnxModelBuilder b;
  b.input("x", {1, 2, 4, 4});
  b.init_f("scales", {4}, scales);
  auto& n = b.node("Resize", {"x", "", "scales"}, {"y"}, "grow");
  set_str(n, "mode", mode);
  if (!coord.empty()) set_str(n, "coordinate_transformation_mode", coord);
  b.output("y");
  return b.bytes();
}

TEST(Resize, RefusesWhatItDoesNotSupportByName) {
  expect_refused(resize_model("cubic", "", {1, 1, 2, 2}), "grow", "mode 'cubic' is not supported");
  expect_refused(resize_model("linear", "tf_crop_and_resize", {1, 1, 2, 2}), "grow",
                 "coordinate_transformation_mode 'tf_crop_and_resize' is not supported");
  expect_refused(resize_model("linear", "", {1, 2, 2, 2}), "grow", "scales for N and C must be 1");
  expect_refused(resize_model("nearest", "", {1, 1, 0, 2}), "grow", "scales must be positive");
}

TEST(Resize, RefusesScalesAndSizesThatDoNotFitByName) {
  auto model = [](bool with_scales, const std::vector<int64_t>& sizes) {
    OnnxModelBuilder b;
    b.input("x", {1, 2, 4, 4});
    b.init_f("scales", {4}, {1, 1, 2, 2});
    b.init_i64("sizes", {4}, sizes);
    b.node("Resize", {"x", "", with_scales ? "scales" : "", "sizes"}, {"y"}, "grow");
    b.output("y");
    return b.bytes();
  };
  expect_refused(model(true, {1, 2, 8, 8}), "grow", "exactly one of scales and sizes");
  expect_refused(model(false, {1, 3, 8, 8}), "grow", "sizes for N and C must equal");
  expect_refused(model(false, {1, 2, 0, 8}), "grow", "empty or oversized");
}

TEST(ConvTranspose, RefusesWeightsAndBiasThatDoNotFitByName) {
  {
    OnnxModelBuilder b;
    b.input("x", {1, 2, 4, 4});
    b.init_f("w", {3, 1, 2, 2}, random_floats(12, 1));
    b.node("ConvTranspose", {"x", "w"}, {"y"}, "deconv");
    b.output("y");
    expect_refused(b.bytes(), "deconv", "expect 3 input channels");
  }
  {
    OnnxModelBuilder b;
    b.input("x", {1, 2, 4, 4});
    b.init_f("w", {2, 3, 2, 2}, random_floats(24, 1));
    b.init_f("b", {2}, {0, 0});
    b.node("ConvTranspose", {"x", "w", "b"}, {"y"}, "deconv");
    b.output("y");
    expect_refused(b.bytes(), "deconv", "bias must be 3 float32 values");
  }
}

TEST(ConvTranspose, RefusesAutoPadItDoesNotKnowByName) {
  OnnxModelBuilder b;
  b.input("x", {1, 2, 4, 4});
  b.init_f("w", {2, 1, 2, 2}, random_floats(8, 1));
  set_str(b.node("ConvTranspose", {"x", "w"}, {"y"}, "deconv"), "auto_pad", "SAME_MIDDLE");
  b.output("y");
  expect_refused(b.bytes(), "deconv", "auto_pad");
}

}  // namespace
