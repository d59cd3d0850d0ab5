// q8::analyze: every Conv/Gemm/MatMul gets finite numbers, the JSON is valid, deliberately broken
// layers are named as the worst with the matching advice, and with_auto_fallback recovers them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include "onnx.pb.h"
#include "q8/q8.h"
#include "tests/onnx_model_builder.h"
#include "tests/test_util.h"

namespace {

const std::string kSrc = Q8_SOURCE_DIR;
const std::string kModel = kSrc + "/models/fashion_cnn.onnx";

std::string read_all(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// ---- A minimal JSON validator (objects, arrays, strings, numbers, true/false/null) -------------
struct Json {
  const std::string& s;
  size_t i = 0;
  void ws() {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  }
  bool lit(const char* w) {
    const size_t n = std::strlen(w);
    if (s.compare(i, n, w) != 0) return false;
    i += n;
    return true;
  }
  bool str() {
    if (i >= s.size() || s[i] != '"') return false;
    for (++i; i < s.size(); ++i) {
      if (s[i] == '\\')
        ++i;
      else if (s[i] == '"')
        return ++i, true;
      else if (static_cast<unsigned char>(s[i]) < 0x20)
        return false;
    }
    return false;
  }
  bool number() {
    const size_t b = i;
    if (i < s.size() && s[i] == '-') ++i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.' || s[i] == 'e' ||
                            s[i] == 'E' || s[i] == '+' || s[i] == '-'))
      ++i;
    if (i == b) return false;
    char* end = nullptr;
    const std::string t = s.substr(b, i - b);
    const double v = std::strtod(t.c_str(), &end);
    return *end == 0 && std::isfinite(v) && std::isdigit(static_cast<unsigned char>(t.back()));
  }
  bool value() {
    ws();
    if (i >= s.size()) return false;
    if (s[i] == '{') {
      ++i, ws();
      if (i < s.size() && s[i] == '}') return ++i, true;
      for (;;) {
        ws();
        if (!str()) return false;
        ws();
        if (i >= s.size() || s[i++] != ':' || !value()) return false;
        ws();
        if (i < s.size() && s[i] == ',') {
          ++i;
          continue;
        }
        return i < s.size() && s[i++] == '}';
      }
    }
    if (s[i] == '[') {
      ++i, ws();
      if (i < s.size() && s[i] == ']') return ++i, true;
      for (;;) {
        if (!value()) return false;
        ws();
        if (i < s.size() && s[i] == ',') {
          ++i;
          continue;
        }
        return i < s.size() && s[i++] == ']';
      }
    }
    if (s[i] == '"') return str();
    if (lit("true") || lit("false") || lit("null")) return true;
    return number();
  }
  bool valid() {
    if (!value()) return false;
    ws();
    return i == s.size();
  }
};

// ---- Editing the embedded model's weights ----------------------------------------------------
struct Weights {
  onnx::ModelProto proto;
  explicit Weights(const std::string& path) { EXPECT_TRUE(proto.ParseFromString(read_all(path))); }

  onnx::TensorProto* init(const std::string& node, int input) {
    for (const auto& n : proto.graph().node())
      if (n.name() == node)
        for (auto& t : *proto.mutable_graph()->mutable_initializer())
          if (t.name() == n.input(input)) return &t;
    ADD_FAILURE() << "no initializer " << input << " of " << node;
    return nullptr;
  }
  std::vector<int64_t> dims(const std::string& node, int input) {
    const onnx::TensorProto* t = init(node, input);
    return {t->dims().begin(), t->dims().end()};
  }
  std::vector<float> get(const std::string& node, int input) {
    const onnx::TensorProto* t = init(node, input);
    int64_t n = 1;
    for (int64_t d : t->dims()) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    if (t->has_raw_data())
      std::memcpy(v.data(), t->raw_data().data(), v.size() * 4);
    else
      for (int64_t i = 0; i < n; ++i) v[i] = t->float_data(static_cast<int>(i));
    return v;
  }
  void set(const std::string& node, int input, const std::vector<float>& v) {
    onnx::TensorProto* t = init(node, input);
    t->clear_float_data();
    t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4));
  }
  q8::Model model() {
    const std::string bytes = proto.SerializeAsString();
    return q8::Model::load_from_memory(bytes.data(), bytes.size(), "broken_fashion_cnn.onnx");
  }
};

const q8::LayerAnalysis& row(const q8::Analysis& a, const std::string& name) {
  for (const auto& l : a.layers)
    if (l.name == name) return l;
  throw std::runtime_error("no row " + name);
}

const q8::LayerAnalysis& worst(const q8::Analysis& a) {
  return *std::min_element(
      a.layers.begin(), a.layers.end(),
      [](const q8::LayerAnalysis& x, const q8::LayerAnalysis& y) { return x.sqnr_db < y.sqnr_db; });
}

double top1(const q8::Model& m, const q8::Tensor& x, const q8::Tensor& labels) {
  q8::Session s(m);
  const q8::Tensor y = s.run({x})[0];
  const int64_t n = y.shape()[0], k = y.shape()[1];
  int64_t ok = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* r = y.data() + i * k;
    ok += std::max_element(r, r + k) - r == static_cast<int64_t>(labels.data()[i]);
  }
  return static_cast<double>(ok) / static_cast<double>(n);
}

void expect_complete(const q8::Analysis& a, const q8::Model& fp32) {
  int compute = 0;
  for (const auto& n : fp32.describe(1)) {
    if (n.op != "Conv" && n.op != "Gemm" && n.op != "MatMul") continue;
    ++compute;
    const q8::LayerAnalysis& l = row(a, n.name);
    EXPECT_TRUE(std::isfinite(l.sqnr_db)) << n.name;
    EXPECT_TRUE(std::isfinite(l.sqnr_cumulative_db)) << n.name;
    EXPECT_TRUE(std::isfinite(l.int8_ms) && l.int8_ms >= 0) << n.name;
    EXPECT_TRUE(std::isfinite(l.fp32_ms) && l.fp32_ms > 0) << n.name;
    EXPECT_GE(l.clipped, 0.0);
    EXPECT_LE(l.clipped, 1.0);
    EXPECT_FALSE(l.advice.empty());
  }
  EXPECT_GT(compute, 0);
  EXPECT_TRUE(std::isfinite(a.summary.sqnr_db));
  const std::string js = a.to_json();
  EXPECT_TRUE(Json{js}.valid()) << js;
  for (const char* key : {"\"layers\"", "\"summary\"", "\"sqnr_db\"", "\"sqnr_cumulative_db\"", "\"clipped\"",
                          "\"int8_ms\"", "\"fp32_ms\"", "\"advice\"", "\"macs\"", "\"worst\""})
    EXPECT_NE(js.find(key), std::string::npos) << key;
  const std::string html = a.to_html();
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // only the SVG namespace
  EXPECT_EQ(html.find("https://"), std::string::npos);
}

TEST(Analyze, EmbeddedModelEveryLayerFinite) {
  const q8::Model fp32 = q8::Model::load(kModel);
  const q8::Tensor calib = q8::load_npy(kSrc + "/models/fashion_calib_256.npy");
  const q8::Tensor test = q8::load_npy(kSrc + "/models/fashion_test_500.npy");
  q8::AnalyzeOptions ao;
  ao.iterations = 5;
  const q8::Analysis a = q8::analyze(fp32, {calib}, {test}, {}, ao);
  expect_complete(a, fp32);
  EXPECT_EQ(a.summary.samples, 500);
  EXPECT_GT(a.summary.sqnr_db, 25.0);
  for (const auto& l : a.layers) EXPECT_GT(l.sqnr_db, 25.0) << l.name;
  EXPECT_FALSE(a.to_text().empty());
  // Same inputs, same numbers (times aside).
  const q8::Analysis b = q8::analyze(fp32, {calib}, {test}, {}, ao);
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t i = 0; i < a.layers.size(); ++i) {
    EXPECT_EQ(a.layers[i].sqnr_db, b.layers[i].sqnr_db);
    EXPECT_EQ(a.layers[i].sqnr_cumulative_db, b.layers[i].sqnr_cumulative_db);
    EXPECT_EQ(a.layers[i].clipped, b.layers[i].clipped);
  }
  EXPECT_EQ(a.summary.sqnr_db, b.summary.sqnr_db);
}

// Models the analyzer was not written against (skipped where the shared models are absent).
TEST(Analyze, SharedModelsEveryLayerFinite) {
  int ran = 0;
  for (const char* name : {"resnet18.onnx", "mobilenet_v2.onnx"}) {
    const std::string path = kSrc + "/../shared/models/" + name;
    if (!std::ifstream(path).good()) continue;
    const q8::Model fp32 = q8::Model::load(path);
    std::vector<int64_t> shape = fp32.inputs()[0].shape;
    shape[0] = 2;
    q8::Tensor calib(shape);
    std::mt19937 rng(7);
    std::normal_distribution<float> normal;
    for (int64_t i = 0; i < calib.numel(); ++i) calib.data()[i] = normal(rng);
    q8::AnalyzeOptions ao;
    ao.iterations = 2;
    const q8::Analysis a = q8::analyze(fp32, {calib}, {}, {}, ao);
    SCOPED_TRACE(name);
    expect_complete(a, fp32);
    // What analyze says runs in int8 is what the runtime runs in int8 (q8 info): every layer, the
    // last Gemm (which writes the float output) included, as an int8 product dequantized.
    const q8::Model int8 = q8::quantize(fp32, {calib}, {});
    std::map<std::string, bool> runs_int8;
    for (const q8::NodeInfo& r : int8.describe(1)) runs_int8[r.name] = r.int8;
    int fallbacks = 0;
    for (const q8::LayerAnalysis& l : a.layers) {
      ASSERT_TRUE(runs_int8.count(l.name)) << l.name;
      EXPECT_EQ(l.int8 && !l.fp32_fallback, runs_int8[l.name]) << l.name;
      fallbacks += l.fp32_fallback;
    }
    EXPECT_EQ(fallbacks, 0);
    ++ran;
  }
  if (!ran) GTEST_SKIP() << "no models in ../shared/models";
}

// One output channel of /3/Conv gets weights 1000x the others' range, on an input channel that
// is always zero (so the fp32 model is unchanged by them): per-tensor weights crush every other
// channel of that layer.
TEST(Analyze, PerTensorWeightsBreakNamedAndRecovered) {
  Weights w(kModel);
  const int64_t k = 5, c = 7;
  std::vector<float> w0 = w.get("/0/Conv", 1), b0 = w.get("/0/Conv", 2);
  const int64_t per0 = static_cast<int64_t>(w0.size()) / w.dims("/0/Conv", 1)[0];
  std::fill(w0.begin() + k * per0, w0.begin() + (k + 1) * per0, 0.f);
  b0[k] = -1.f;  // channel k of /0/Conv is dead after its Relu
  w.set("/0/Conv", 1, w0);
  w.set("/0/Conv", 2, b0);
  std::vector<float> w3 = w.get("/3/Conv", 1);
  const std::vector<int64_t> d3 = w.dims("/3/Conv", 1);
  float amax = 0;
  for (float v : w3) amax = std::max(amax, std::fabs(v));
  const int64_t hw = d3[2] * d3[3];
  for (int64_t e = 0; e < hw; ++e) w3[(c * d3[1] + k) * hw + e] = 1000.f * amax * (e % 2 ? 1.f : -1.f);
  w.set("/3/Conv", 1, w3);
  const q8::Model fp32 = w.model();

  const q8::Tensor calib = q8::load_npy(kSrc + "/models/fashion_calib_256.npy");
  const q8::Tensor test = q8::load_npy(kSrc + "/models/fashion_test_500.npy");
  const q8::Tensor labels = q8::load_npy(kSrc + "/models/fashion_test_500_labels.npy");
  q8::QuantizeOptions qo;
  qo.per_channel = false;
  q8::AnalyzeOptions ao;
  ao.iterations = 5;
  const q8::Analysis a = q8::analyze(fp32, {calib}, {test}, qo, ao);
  expect_complete(a, fp32);
  EXPECT_EQ(worst(a).name, "/3/Conv") << a.to_text();
  EXPECT_EQ(row(a, "/3/Conv").advice, "per-channel weights needed") << a.to_text();
  EXPECT_LT(row(a, "/3/Conv").sqnr_db, 10.0);
  ASSERT_FALSE(a.summary.worst.empty());
  EXPECT_EQ(a.summary.worst[0], "/3/Conv");

  std::vector<std::string> kept;
  const q8::QuantizeOptions fixed = q8::with_auto_fallback(fp32, {calib}, qo, 20.0, &kept);
  EXPECT_NE(std::find(kept.begin(), kept.end(), "/3/Conv"), kept.end());
  const double acc_fp32 = top1(fp32, test, labels);
  const double acc_plain = top1(q8::quantize(fp32, {calib}, qo), test, labels);
  const double acc_fallback = top1(q8::quantize(fp32, {calib}, fixed), test, labels);
  for (const auto& n : kept) std::printf("kept fp32: %s\n", n.c_str());
  std::printf("top-1 on 500: fp32 %.3f, per-tensor int8 %.3f, --fallback auto %.3f\n", acc_fp32, acc_plain,
              acc_fallback);
  EXPECT_GT(acc_fallback, acc_plain + 0.2);
  EXPECT_GT(acc_fallback, acc_fp32 - 0.02);
}

// Rare calibration samples light up one channel of /0/Conv 1000x beyond its normal range: with
// --method minmax the range of /0/Conv's result is set by them.
TEST(Analyze, ActivationOutliersNamedAndRecovered) {
  const q8::Tensor calib0 = q8::load_npy(kSrc + "/models/fashion_calib_256.npy");
  const q8::Tensor test = q8::load_npy(kSrc + "/models/fashion_test_500.npy");
  const q8::Tensor labels = q8::load_npy(kSrc + "/models/fashion_test_500_labels.npy");
  float xmax = 0;
  for (float v : calib0.values()) xmax = std::max(xmax, v);
  for (float v : test.values()) xmax = std::max(xmax, v);
  const float threshold = xmax + 0.5f;

  Weights w(kModel);
  const int64_t k = 5;
  std::vector<float> w0 = w.get("/0/Conv", 1), b0 = w.get("/0/Conv", 2);
  const int64_t per0 = static_cast<int64_t>(w0.size()) / w.dims("/0/Conv", 1)[0];  // 1x3x3
  std::fill(w0.begin() + k * per0, w0.begin() + (k + 1) * per0, 0.f);
  w0[k * per0 + per0 / 2] = 1000.f;  // the centre tap: fires only on pixels above `threshold`
  b0[k] = -1000.f * threshold;
  w.set("/0/Conv", 1, w0);
  w.set("/0/Conv", 2, b0);
  std::vector<float> w3 = w.get("/3/Conv", 1);
  const std::vector<int64_t> d3 = w.dims("/3/Conv", 1);
  for (int64_t o = 0; o < d3[0]; ++o)  // /3/Conv ignores channel k: only /0/Conv's result sees it
    for (int64_t e = 0; e < d3[2] * d3[3]; ++e) w3[(o * d3[1] + k) * d3[2] * d3[3] + e] = 0.f;
  w.set("/3/Conv", 1, w3);
  const q8::Model fp32 = w.model();

  q8::Tensor calib = calib0;
  const int64_t per = calib.numel() / calib.shape()[0];
  for (int64_t s : {17, 131}) calib.data()[s * per + 14 * 28 + 14] = threshold + 1.f;  // one pixel, two samples

  q8::QuantizeOptions qo;
  qo.method = q8::Calibration::MinMax;
  q8::AnalyzeOptions ao;
  ao.iterations = 5;
  const q8::Analysis a = q8::analyze(fp32, {calib}, {test}, qo, ao);
  expect_complete(a, fp32);
  EXPECT_EQ(worst(a).name, "/0/Conv") << a.to_text();
  EXPECT_EQ(row(a, "/0/Conv").advice, "outliers: try percentile") << a.to_text();
  EXPECT_GT(row(a, "/0/Conv").outlier_ratio, 100.0);

  std::vector<std::string> kept;
  const q8::QuantizeOptions fixed = q8::with_auto_fallback(fp32, {calib}, qo, 20.0, &kept);
  EXPECT_NE(std::find(kept.begin(), kept.end(), "/0/Conv"), kept.end());
  const double acc_fp32 = top1(fp32, test, labels);
  const double acc_plain = top1(q8::quantize(fp32, {calib}, qo), test, labels);
  const double acc_fallback = top1(q8::quantize(fp32, {calib}, fixed), test, labels);
  for (const auto& n : kept) std::printf("kept fp32: %s\n", n.c_str());
  std::printf("top-1 on 500: fp32 %.3f, minmax int8 %.3f, --fallback auto %.3f\n", acc_fp32, acc_plain, acc_fallback);
  EXPECT_GT(acc_fallback, acc_plain + 0.05);
  EXPECT_GT(acc_fallback, acc_fp32 - 0.02);
}

// SiLU after a Conv: fp32 runs the Sigmoid and the Mul inside the Conv's step, int8 as one table
// that also runs the Mul (the Sigmoid's own int8 result no longer exists: its error is in the
// Mul's row, which carries the table's time). A row that one plan runs inside another node's step
// is not timed against the other plan, so no "keep fp32: int8 is slower here" for a time of 0.
TEST(Analyze, NodesFusedIntoAnotherStepAreNotComparedByTime) {
  q8test::OnnxModelBuilder b;
  b.input("x", {1, 8, 12, 12});
  b.init_f("w", {16, 8, 3, 3}, q8::test::random_floats(16 * 8 * 9, 1, -0.3f, 0.3f));
  auto& conv = b.node("Conv", {"x", "w"}, {"c"}, "conv");
  q8test::set_ints(conv, "pads", {1, 1, 1, 1});
  b.node("Sigmoid", {"c"}, {"s"}, "sig");
  b.node("Mul", {"c", "s"}, {"m"}, "mul");
  b.init_f("w2", {4, 16, 1, 1}, q8::test::random_floats(64, 2, -0.3f, 0.3f));
  b.node("Conv", {"m", "w2"}, {"y"}, "head");
  b.output("y");
  const std::string bytes = b.bytes();
  const q8::Model fp32 = q8::Model::load_from_memory(bytes.data(), bytes.size(), "silu.onnx");
  const q8::Tensor calib({16, 8, 12, 12}, q8::test::random_floats(16 * 8 * 144, 3, -2.f, 2.f));
  q8::AnalyzeOptions ao;
  ao.iterations = 3;
  const q8::Analysis a = q8::analyze(fp32, {calib}, {}, {}, ao);
  std::map<std::string, const q8::LayerAnalysis*> rows;
  for (const q8::LayerAnalysis& l : a.layers) rows[l.name] = &l;
  ASSERT_TRUE(rows.count("mul") && rows.count("conv") && rows.count("head"));
  EXPECT_FALSE(rows.count("sig"));
  EXPECT_FALSE(rows["mul"]->timed);  // fp32: inside the Conv
  EXPECT_GT(rows["mul"]->int8_ms, 0.0);
  EXPECT_TRUE(rows["conv"]->timed);
  EXPECT_NE(rows["mul"]->advice, "keep fp32: int8 is slower here");
  EXPECT_GT(rows["mul"]->sqnr_db, 25.0);
  EXPECT_NE(a.to_json().find("\"timed\": false"), std::string::npos);
}

// "keep fp32" weighs the node's int8 time against its fp32 time plus the conversions that keeping
// it fp32 would add, less those it would remove: a node between int8 nodes would have its input
// dequantized and its result quantized; the first node would no longer need the model input
// quantized, but its own result would be. The last Conv, which writes the model's float output,
// runs in fp32 on a dequantized input in the int8 model too (an fp32 fallback), so the node before
// it only moves a dequantization from its result to its input.
TEST(Analyze, KeepFp32CountsTheConversionsItWouldAddAndRemove) {
  auto conv = [](q8test::OnnxModelBuilder& b, const std::string& x, int cin, int cout, const std::string& y,
                 uint32_t seed) {
    b.init_f(y + "_w", {cout, cin, 3, 3}, q8::test::random_floats(size_t(cout * cin * 9), seed, -0.3f, 0.3f));
    q8test::set_ints(b.node("Conv", {x, y + "_w"}, {y}, y), "pads", {1, 1, 1, 1});
  };
  auto analyze = [](q8test::OnnxModelBuilder& b, int channels) {
    const std::string bytes = b.bytes();
    const q8::Model fp32 = q8::Model::load_from_memory(bytes.data(), bytes.size(), "chain.onnx");
    const q8::Tensor calib({4, channels, 16, 16}, q8::test::random_floats(size_t(4 * channels * 256), 9, -2.f, 2.f));
    q8::AnalyzeOptions ao;
    ao.iterations = 2;
    const q8::Analysis a = q8::analyze(fp32, {calib}, {}, {}, ao);
    EXPECT_NE(a.to_json().find("\"fp32_conversions_ms\""), std::string::npos);
    std::map<std::string, q8::LayerAnalysis> r;
    for (const q8::LayerAnalysis& l : a.layers) r[l.name] = l;
    return r;
  };
  q8test::OnnxModelBuilder chain;
  chain.input("x", {1, 4, 16, 16});
  conv(chain, "x", 4, 16, "c1", 1);
  conv(chain, "c1", 16, 16, "c2", 2);
  conv(chain, "c2", 16, 16, "c3", 3);
  conv(chain, "c3", 16, 2, "c4", 4);
  chain.output("c4");
  const auto c = analyze(chain, 4);
  ASSERT_TRUE(c.count("c1") && c.count("c2") && c.count("c3") && c.count("c4"));
  ASSERT_TRUE(c.at("c3").int8 && !c.at("c3").fp32_fallback);
  ASSERT_TRUE(c.at("c4").fp32_fallback);
  EXPECT_GT(c.at("c1").fp32_conversions_ms, 0.0);                             // quantize 16 channels instead of 4
  EXPECT_GT(c.at("c2").fp32_conversions_ms, c.at("c1").fp32_conversions_ms);  // dequantize 16, quantize 16
  EXPECT_EQ(c.at("c3").fp32_conversions_ms, 0.0);  // dequantize 16 before it instead of after it
  q8test::OnnxModelBuilder pair;
  pair.input("x", {1, 16, 16, 16});
  conv(pair, "x", 16, 2, "a", 5);
  conv(pair, "a", 2, 2, "b", 6);
  pair.output("b");
  const auto p = analyze(pair, 16);
  ASSERT_TRUE(p.count("a") && p.at("a").int8 && !p.at("a").fp32_fallback);
  EXPECT_LT(p.at("a").fp32_conversions_ms, 0.0);  // no model input to quantize, no result to dequantize
}

TEST(Analyze, Refusals) {
  const q8::Model fp32 = q8::Model::load(kModel);
  const q8::Tensor calib = q8::load_npy(kSrc + "/models/fashion_calib_256.npy");
  EXPECT_THROW(q8::analyze(fp32, {}, {}, {}), q8::Error);
  EXPECT_THROW(q8::analyze(fp32, {calib}, {q8::Tensor({1, 3, 28, 28})}, {}), q8::Error);
  q8::AnalyzeOptions ao;
  ao.iterations = 0;
  EXPECT_THROW(q8::analyze(fp32, {calib}, {}, {}, ao), q8::Error);
}

}  // namespace
