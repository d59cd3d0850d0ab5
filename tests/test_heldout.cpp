// Held-out models: small CNNs q8 was not developed against, exported from PyTorch the way users
// export them (scripts/make_heldout_models.py; tests/heldout/README.md lists what each covers).
// For every tests/heldout/NAME.onnx, through the public API only:
//   - fp32 matches PyTorch's output (relative L2 <= 1e-4), byte-identical at 1 and 2 threads;
//   - int8 (quantize() on NAME_calib.npy, default options) keeps SQNR >= kMinSqnrDb against the
//     fp32 output, gives the same bytes on every kernel path and thread count, and runs every
//     Conv/Gemm/MatMul on a qu8_ kernel (except a Gemm/MatMul producing the graph output, which
//     stays fp32 by design);
//   - the int8 model saved as ONNX and loaded back gives the same bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <unistd.h>

#include "q8/q8.h"

namespace {

namespace fs = std::filesystem;

// Measured on the committed models (avx512vnni, default Percentile 99.99 calibration on 16
// samples): see tests/heldout/README.md. The floor sits well below every model's measurement
// but far above what a broken requantization or a wrong zero point gives (< 10 dB).
constexpr double kMinSqnrDb = 25.0;
constexpr double kMaxFp32RelL2 = 1e-4;

fs::path heldout_dir() { return fs::path(Q8_SOURCE_DIR) / "tests" / "heldout"; }

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(heldout_dir(), ec))
    if (e.path().extension() == ".onnx") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string file(const std::string& name, const std::string& suffix) {
  return (heldout_dir() / (name + suffix)).string();
}

double rel_l2(const q8::Tensor& got, const q8::Tensor& want) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double d = static_cast<double>(got.data()[i]) - want.data()[i];
    num += d * d;
    den += static_cast<double>(want.data()[i]) * want.data()[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

double sqnr_db(const q8::Tensor& got, const q8::Tensor& ref) {
  double sig = 0, noise = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    const double d = static_cast<double>(got.data()[i]) - ref.data()[i];
    noise += d * d;
    sig += static_cast<double>(ref.data()[i]) * ref.data()[i];
  }
  return 10.0 * std::log10(sig / std::max(noise, 1e-30));
}

bool same_bytes(const q8::Tensor& a, const q8::Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), static_cast<size_t>(a.numel()) * sizeof(float)) == 0;
}

double max_abs_diff(const q8::Tensor& a, const q8::Tensor& b) {
  if (a.shape() != b.shape()) return INFINITY;
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(static_cast<double>(a.data()[i]) - b.data()[i]));
  return m;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

// The fp32 model, its quantized version and reference outputs, built once per model.
struct Held {
  q8::Model fp32, int8;
  q8::Tensor input, torch_output, fp32_output, int8_output;
};

Held& held(const std::string& name, bool want_int8) {
  static std::mutex mu;
  static std::map<std::string, Held> cache;
  static std::map<std::string, bool> quantized;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(name);
  if (it == cache.end()) {
    Held h;
    h.fp32 = q8::Model::load(file(name, ".onnx"));
    h.input = q8::load_npy(file(name, "_input.npy"));
    h.torch_output = q8::load_npy(file(name, "_output.npy"));
    q8::Session s(h.fp32, q8::SessionOptions{1});
    h.fp32_output = s.run({h.input}).at(0);
    it = cache.emplace(name, std::move(h)).first;
  }
  if (want_int8 && !quantized[name]) {
    Held& h = it->second;
    h.int8 = q8::quantize(h.fp32, {q8::load_npy(file(name, "_calib.npy"))});
    q8::Session s(h.int8, q8::SessionOptions{1});
    h.int8_output = s.run({h.input}).at(0);
    quantized[name] = true;
  }
  return it->second;
}

class Heldout : public ::testing::TestWithParam<std::string> {};

TEST(HeldoutModels, Present) {
  // The set is committed; an empty folder means a broken checkout, not a pass.
  EXPECT_GE(model_names().size(), 6u) << heldout_dir();
}

TEST_P(Heldout, Fp32MatchesPyTorch) {
  const std::string name = GetParam();
  Held& h = held(name, false);
  ASSERT_EQ(h.fp32_output.shape(), h.torch_output.shape())
      << name << ": q8 " << shape_str(h.fp32_output.shape()) << " vs PyTorch " << shape_str(h.torch_output.shape());
  const double e = rel_l2(h.fp32_output, h.torch_output);
  std::printf("[heldout] %-18s fp32 rel L2 vs PyTorch = %.3g\n", name.c_str(), e);
  RecordProperty("fp32_rel_l2", std::to_string(e));
  EXPECT_LE(e, kMaxFp32RelL2) << name;

  q8::Session s2(h.fp32, q8::SessionOptions{2});
  const q8::Tensor y2 = s2.run({h.input}).at(0);
  EXPECT_TRUE(same_bytes(y2, h.fp32_output)) << name << ": fp32 output differs between 1 and 2 threads";
}

TEST_P(Heldout, Int8Sqnr) {
  const std::string name = GetParam();
  Held& h = held(name, true);
  ASSERT_TRUE(h.int8.is_quantized()) << name;
  ASSERT_EQ(h.int8_output.shape(), h.fp32_output.shape()) << name;
  const double db = sqnr_db(h.int8_output, h.fp32_output);
  std::printf("[heldout] %-18s int8 SQNR vs fp32 = %.2f dB (%s)\n", name.c_str(), db, q8::active_isa().c_str());
  RecordProperty("int8_sqnr_db", std::to_string(db));
  EXPECT_GE(db, kMinSqnrDb) << name;
}

TEST_P(Heldout, Int8SameBytesOnEveryIsaAndThreadCount) {
  const std::string name = GetParam();
  Held& h = held(name, true);
  for (const std::string& isa : q8::supported_isas()) {
    for (int threads : {1, 2}) {
      q8::Session s(h.int8, q8::SessionOptions{threads, isa});
      const q8::Tensor y = s.run({h.input}).at(0);
      EXPECT_TRUE(same_bytes(y, h.int8_output))
          << name << ": isa " << isa << ", " << threads << " threads differs from " << q8::active_isa() << " by up to "
          << max_abs_diff(y, h.int8_output);
    }
  }
}

TEST_P(Heldout, Int8RunsConvGemmMatMulInInt8) {
  const std::string name = GetParam();
  Held& h = held(name, true);
  const std::vector<q8::NodeInfo> rows = h.int8.describe(1);
  ASSERT_FALSE(rows.empty());
  // The node producing the (single) graph output is the last row; a Gemm/MatMul there stays fp32.
  for (size_t i = 0; i < rows.size(); ++i) {
    const q8::NodeInfo& r = rows[i];
    const bool fallback = r.kernel.find("fallback") != std::string::npos;
    if (fallback)
      std::printf("[heldout] %-18s fp32 fallback: %s (%s) %s\n", name.c_str(), r.name.c_str(), r.op.c_str(),
                  r.kernel.c_str());
    const bool heavy =
        r.op == "Conv" || r.op == "Gemm" || r.op == "MatMul" || r.op == "QuantizedConv" || r.op == "QuantizedDense";
    if (!heavy) continue;
    const bool graph_output = i + 1 == rows.size() && (r.op == "Gemm" || r.op == "MatMul");
    if (graph_output) continue;
    EXPECT_EQ(r.kernel.rfind("qu8_", 0), 0u) << name << ": node '" << r.name << "' (" << r.op << ") runs " << r.kernel;
  }
}

TEST_P(Heldout, Int8SaveLoadRoundTrip) {
  const std::string name = GetParam();
  Held& h = held(name, true);
  const fs::path path =
      fs::path(::testing::TempDir()) / ("q8_heldout_" + name + "_" + std::to_string(::getpid()) + ".onnx");
  h.int8.save(path.string());
  const q8::Model back = q8::Model::load(path.string());
  std::error_code ec;
  fs::remove(path, ec);
  EXPECT_TRUE(back.is_quantized()) << name;
  q8::Session s(back, q8::SessionOptions{1});
  const q8::Tensor y = s.run({h.input}).at(0);
  EXPECT_TRUE(same_bytes(y, h.int8_output)) << name << ": reloaded int8 model gives different outputs";
}

INSTANTIATE_TEST_SUITE_P(HeldoutModels, Heldout, ::testing::ValuesIn(model_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
