// fp32 kernel tables against each other and against naive NHWC loops written here.
//
// Every table (scalar, avx2, avx512, neon) runs every case and is compared with a naive
// double-precision computation, with a tolerance relative to the sum of |terms| of each output
// (fp32 rounding against exact arithmetic). The SIMD tables must then give exactly the scalar
// table's bits: every table implements the same canonical arithmetic (one fma per term in the
// same order, the same clamp and max selects; see kernels/reference/f32_scalar.cpp), so any
// difference is a bug. Work split into ranges must give the same bits as the whole range. NaN
// payloads are not compared (ISAs create different default NaNs), only that both are NaN. A table
// this build or CPU lacks is skipped, never passed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cpu_support.h"
#include "kernel_tables.h"
#include "kernels/conv_rows.h"
#include "kernels/f32.h"
#include "kernels/f32_misc.h"
#include "naive_window.h"

namespace {

using q8_test::AxisTap;
using q8_test::naive_axis_padded_count;
using q8_test::naive_axis_taps;

using q8::kern::ConvGeometry;
using q8::kern::F32Kernels;
using q8::kern::kTableBinaryOps;
using q8::kern::PoolGeometry;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kSentinel = 12345.0f;  // marks output never written by a kernel
constexpr size_t kGuard = 64;          // floats after each output buffer that must stay untouched
// FNV-1a hashes of the unary kernel's outputs (UnaryBitsMatchRecordedHash), identical on every CPU.
constexpr const char* kUnaryHashes =
    "Sigmoid:98d761ac4d38b1c2 Tanh:5f33173b0016a9c2 HardSigmoid:9e1749889c120d04 HardSwish:9df74982371e583a "
    "LeakyRelu:ea56e0f09c7f39b0 Elu:0cc54db232baaf21 Erf:3173b3421179cd3b Sqrt:8287b736adfb957e "
    "Exp:801c131d68696a99 Silu:e23bd9327040fa29 Gelu:eff15012ef5cd7c6 ";

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Boundaries splitting [0, n) into `pieces` uneven ranges (first boundary nudged off any tile).
std::vector<size_t> split(size_t n, size_t pieces) {
  std::vector<size_t> b{0};
  for (size_t i = 1; i < pieces; ++i) b.push_back(std::max(b.back(), std::min(n, i * n / pieces + i % 2)));
  b.push_back(n);
  return b;
}

// An exact (double) result per output element and the sum of |terms| that produced it.
struct Expected {
  std::vector<double> value, abs_sum;
};

// Compares got with expected: |got - value| <= rel * abs_sum + 1e-6.
void expect_close(const std::vector<float>& got, const Expected& want, double rel, const std::string& what) {
  ASSERT_EQ(got.size(), want.value.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = rel * want.abs_sum[i] + 1e-6;
    if (!(std::fabs(got[i] - want.value[i]) <= tol)) {
      if (++bad <= 5)
        ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", expected " << want.value[i]
                      << " (tolerance " << tol << ")";
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " elements differ";
}

// got must equal the scalar table's output bit for bit (any NaN matches any NaN).
void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]) && std::isnan(want[i])) continue;
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0 && ++bad <= 5) {
      uint32_t gb, wb;
      std::memcpy(&gb, &got[i], 4);
      std::memcpy(&wb, &want[i], 4);
      char buf[160];
      std::snprintf(buf, sizeof buf, "element %zu is %.9g (0x%08x), scalar gives %.9g (0x%08x)", i, got[i], gb, want[i],
                    wb);
      ADD_FAILURE() << what << ": " << buf;
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " elements differ from scalar";
}

void expect_guard_intact(const std::vector<float>& buf, size_t used, const std::string& what) {
  for (size_t i = used; i < buf.size(); ++i)
    if (buf[i] != kSentinel) {
      ADD_FAILURE() << what << ": wrote past the end of the output (float " << i << ")";
      return;
    }
}

// The canonical clamp: x < lo ? lo : x, then > hi ? hi : x (NaN passes through).
float clampf(float x, float lo, float hi) { return std::min(std::max(x, lo), hi); }

// --- Convolution ----------------------------------------------------------------------------

// Builder for a conv case; output size follows the floor formula plus `extra` rows/columns
// (extra > 0 mimics ceil-style geometry where the last windows run past the input and pads).
struct ConvCase {
  ConvGeometry g;
  size_t extra_h = 0, extra_w = 0;
  ConvCase& input(size_t n, size_t h, size_t w, size_t c) {
    g.N = n;
    g.IH = h;
    g.IW = w;
    g.C = c;
    return *this;
  }
  ConvCase& out_channels(size_t k) {
    g.K = k;
    return *this;
  }
  ConvCase& kernel(size_t kh, size_t kw) {
    g.KH = kh;
    g.KW = kw;
    return *this;
  }
  ConvCase& stride(size_t sh, size_t sw) {
    g.SH = sh;
    g.SW = sw;
    return *this;
  }
  ConvCase& dilation(size_t dh, size_t dw) {
    g.DH = dh;
    g.DW = dw;
    return *this;
  }
  ConvCase& pads(size_t t, size_t l, size_t b, size_t r) {
    g.PT = t;
    g.PL = l;
    g.PB = b;
    g.PR = r;
    return *this;
  }
  ConvCase& groups(size_t n) {
    g.groups = n;
    return *this;
  }
  ConvCase& extra(size_t h, size_t w) {
    extra_h = h;
    extra_w = w;
    return *this;
  }
  ConvGeometry geometry() const {
    ConvGeometry r = g;
    r.OH = (g.IH + g.PT + g.PB - g.DH * (g.KH - 1) - 1) / g.SH + 1 + extra_h;
    r.OW = (g.IW + g.PL + g.PR - g.DW * (g.KW - 1) - 1) / g.SW + 1 + extra_w;
    return r;
  }
};

std::string describe(const ConvGeometry& g) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "N%zu %zux%zux%zu -> %zux%zux%zu k%zux%zu s%zu,%zu d%zu,%zu p%zu,%zu,%zu,%zu g%zu",
                g.N, g.IH, g.IW, g.C, g.OH, g.OW, g.K, g.KH, g.KW, g.SH, g.SW, g.DH, g.DW, g.PT, g.PL, g.PB, g.PR,
                g.groups);
  return buf;
}

// Direct NHWC convolution in double; weights ONNX [K][Cg][KH][KW]. Taps outside the input add 0,
// so only those inside are summed, found by scanning the input (naive_window.h): huge kernels
// stay cheap here.
Expected naive_conv(const ConvGeometry& g, const std::vector<float>& in, const std::vector<float>& w, const float* bias,
                    float lo, float hi) {
  const size_t Cg = g.Cg(), Kg = g.Kg();
  std::vector<std::vector<AxisTap>> rows(g.OH), cols(g.OW);
  for (size_t oy = 0; oy < g.OH; ++oy) rows[oy] = naive_axis_taps(oy, g.SH, g.DH, g.PT, g.IH, g.KH);
  for (size_t ox = 0; ox < g.OW; ++ox) cols[ox] = naive_axis_taps(ox, g.SW, g.DW, g.PL, g.IW, g.KW);
  Expected e;
  for (size_t n = 0; n < g.N; ++n)
    for (size_t oy = 0; oy < g.OH; ++oy)
      for (size_t ox = 0; ox < g.OW; ++ox)
        for (size_t oc = 0; oc < g.K; ++oc) {
          const size_t grp = oc / Kg;
          double sum = bias ? bias[oc] : 0.0, abs_sum = bias ? std::fabs(bias[oc]) : 0.0;
          for (const AxisTap& y : rows[oy])
            for (const AxisTap& x : cols[ox]) {
              for (size_t c = 0; c < Cg; ++c) {
                const double a = in[((n * g.IH + y.i) * g.IW + x.i) * g.C + grp * Cg + c];
                const double wv = w[((oc * Cg + c) * g.KH + y.k) * g.KW + x.k];
                sum += a * wv;
                abs_sum += std::fabs(a * wv);
              }
            }
          e.value.push_back(std::min<double>(std::max<double>(sum, lo), hi));
          e.abs_sum.push_back(abs_sum);
        }
  return e;
}

// Runs a conv through the GEMM path (pack, indirection, f32_conv_run on the tile that
// f32_conv_kernel_for picks: conv_narrow for layers it fits) in `pieces` pixel ranges by
// `panel_pieces` ranges of output-channel panels, adding `residual` (shaped like the output)
// before the clamp when one is given, then applying the activation `unary` when one is given.
std::vector<float> run_conv(const F32Kernels& t, const ConvGeometry& g, const std::vector<float>& in,
                            const std::vector<float>& w, const float* bias, float lo, float hi, size_t pieces,
                            size_t panel_pieces = 1, const std::vector<float>* residual = nullptr,
                            const q8::kern::UnaryParams* unary = nullptr) {
  const q8::kern::F32Epilogue res{residual ? residual->data() : nullptr,
                                  t.binary[static_cast<size_t>(q8::kern::BinaryOp::Add)].fn,
                                  unary ? t.unary.fn : nullptr, unary ? *unary : q8::kern::UnaryParams{}};
  const q8::kern::F32ConvKernel& kc = q8::kern::f32_conv_kernel_for(t, g.Kg());
  const size_t nr = kc.nr, P = g.out_pixels();
  const size_t packed_floats = q8::kern::f32_conv_packed_floats(g, nr);
  std::vector<float> packed(packed_floats + kGuard, kSentinel);
  q8::kern::f32_conv_pack(g, nr, w.data(), bias, packed.data());
  expect_guard_intact(packed, packed_floats, "f32_conv_pack");
  const std::vector<float> zero(g.Cg(), 0.0f);
  std::vector<const float*> indirection(P * g.taps());
  std::vector<float> out(P * g.K + kGuard, kSentinel);
  const std::vector<size_t> bounds = split(P, pieces), panels = split((g.Kg() + nr - 1) / nr, panel_pieces);
  for (size_t grp = 0; grp < g.groups; ++grp) {
    q8::kern::conv_indirection_init(g, grp, in.data(), zero.data(), indirection.data());
    const float* packed_group = packed.data() + grp * (packed_floats / g.groups);
    for (size_t j = 0; j + 1 < panels.size(); ++j)
      for (size_t i = 0; i + 1 < bounds.size(); ++i)
        q8::kern::f32_conv_run(kc, g, grp, indirection.data(), packed_group, out.data(), bounds[i], bounds[i + 1], lo,
                               hi, panels[j], panels[j + 1], res);
  }
  expect_guard_intact(out, P * g.K, std::string(t.isa) + " conv");
  out.resize(P * g.K);
  return out;
}

// The same conv over kernel rows (kernels/conv_rows.h, for layers conv_runs_kernel_rows takes), in
// `pieces` pixel ranges, each gathering its edge rows first, as the engine runs it.
std::vector<float> run_conv_rows(const F32Kernels& t, const ConvGeometry& g, const std::vector<float>& in,
                                 const std::vector<float>& w, const float* bias, float lo, float hi, size_t pieces) {
  const q8::kern::F32ConvKernel& kc = q8::kern::f32_conv_kernel_for(t, g.Kg());
  const ConvGeometry r = q8::kern::conv_rows_geometry(g);
  const size_t P = g.out_pixels(), packed_floats = q8::kern::f32_conv_packed_floats(r, kc.nr);
  std::vector<float> packed(packed_floats + kGuard, kSentinel);
  q8::kern::f32_conv_rows_pack(g, kc.nr, w.data(), bias, packed.data());
  expect_guard_intact(packed, packed_floats, "f32_conv_rows_pack");
  const std::vector<float> zero(r.C, 0.0f);
  const size_t edge_floats = q8::kern::conv_rows_edge_elements<float>(g);
  std::vector<float> edges(edge_floats + kGuard, kSentinel);
  std::vector<const float*> indirection(P * r.taps());
  q8::kern::conv_rows_indirection_init<float>(g, in.data(), zero.data(), edges.data(), indirection.data());
  std::vector<float> out(P * g.K + kGuard, kSentinel);
  const std::vector<size_t> bounds = split(P, pieces);
  for (size_t i = 0; i + 1 < bounds.size(); ++i) {
    q8::kern::conv_rows_gather_edges<float>(g, in.data(), 0.0f, edges.data(), bounds[i], bounds[i + 1]);
    q8::kern::f32_conv_run(kc, r, 0, indirection.data(), packed.data(), out.data(), bounds[i], bounds[i + 1], lo, hi);
  }
  expect_guard_intact(edges, edge_floats, std::string(t.isa) + " conv rows edges");
  expect_guard_intact(out, P * g.K, std::string(t.isa) + " conv rows");
  out.resize(P * g.K);
  return out;
}

// Depthwise through t.dwconv.
std::vector<float> run_dwconv(const F32Kernels& t, const ConvGeometry& g, const std::vector<float>& in,
                              const std::vector<float>& w, const float* bias, float lo, float hi, size_t pieces) {
  const size_t P = g.out_pixels();
  std::vector<float> packed(q8::kern::f32_dwconv_packed_floats(g));
  q8::kern::f32_dwconv_pack(g, w.data(), bias, packed.data());
  const std::vector<float> zero(g.C, 0.0f);
  std::vector<float> out(P * g.C + kGuard, kSentinel);
  const std::vector<size_t> bounds = split(P, pieces);
  for (size_t i = 0; i + 1 < bounds.size(); ++i)
    t.dwconv(g, in.data(), packed.data(), zero.data(), out.data(), bounds[i], bounds[i + 1], lo, hi);
  expect_guard_intact(out, P * g.C, std::string(t.isa) + " dwconv");
  out.resize(P * g.C);
  return out;
}

struct Clamp {
  float lo, hi;
};
const Clamp kClamps[] = {{-kInf, kInf}, {0.0f, 6.0f}, {-0.25f, 0.5f}};

class F32Kernels_ : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string isa = GetParam();
    if (!q8_test::cpu_supports(isa)) GTEST_SKIP() << "this CPU cannot run " << isa;
    table_ = q8_test::f32_table_for(isa);
    if (!table_) GTEST_SKIP() << isa << " kernels are not in this build";
    scalar_ = q8::kern::f32_kernels_scalar();
    ASSERT_NE(scalar_, nullptr);
    ASSERT_EQ(table_->isa, q8_test::isa_of_table(isa));
  }
  bool is_scalar() const { return table_ == scalar_; }

  // Checks the GEMM conv path on one case: against the naive conv, against scalar, and that
  // splitting the pixel range gives identical bits.
  void check_conv(const ConvCase& cc, uint32_t seed, bool with_bias = true) {
    const ConvGeometry g = cc.geometry();
    const auto in = random_floats(g.N * g.IH * g.IW * g.C, seed);
    const auto w = random_floats(g.K * g.Cg() * g.taps(), seed + 1);
    const auto bias = random_floats(g.K, seed + 2);
    const float* b = with_bias ? bias.data() : nullptr;
    for (const Clamp& cl : kClamps) {
      const std::string what = std::string(table_->isa) + " conv " + describe(g) + " clamp [" + std::to_string(cl.lo) +
                               ", " + std::to_string(cl.hi) + "]";
      const Expected want = naive_conv(g, in, w, b, cl.lo, cl.hi);
      const auto whole = run_conv(*table_, g, in, w, b, cl.lo, cl.hi, 1);
      expect_close(whole, want, 1e-5, what);
      if (!is_scalar()) expect_same_bits(whole, run_conv(*scalar_, g, in, w, b, cl.lo, cl.hi, 1), what + " vs scalar");
      for (size_t pieces : {2, 3, 7}) {
        const auto parts = run_conv(*table_, g, in, w, b, cl.lo, cl.hi, pieces);
        EXPECT_EQ(0, std::memcmp(whole.data(), parts.data(), whole.size() * sizeof(float)))
            << what << ": ranges split in " << pieces << " differ from the whole range";
      }
      // Rectangles of pixels by output-channel panels, as threads split deep layers.
      for (size_t panel_pieces : {2, 3}) {
        const auto parts = run_conv(*table_, g, in, w, b, cl.lo, cl.hi, 2, panel_pieces);
        EXPECT_EQ(0, std::memcmp(whole.data(), parts.data(), whole.size() * sizeof(float)))
            << what << ": rectangles of 2 pixel ranges by " << panel_pieces << " panel ranges differ";
      }
      // Over kernel rows, where the engine runs the layer so: the bits of the per-tap igemm.
      if (q8::kern::conv_runs_kernel_rows(g))
        for (size_t pieces : {1, 3})
          expect_same_bits(run_conv_rows(*table_, g, in, w, b, cl.lo, cl.hi, pieces), whole,
                           what + " over kernel rows in " + std::to_string(pieces) + " ranges");
      // A fused residual: the bits of the unclamped conv followed by the table's Add and clamp,
      // however the work is split.
      const auto residual = random_floats(whole.size(), seed + 3);
      std::vector<float> want_sum = run_conv(*table_, g, in, w, b, -kInf, kInf, 1);
      table_->binary[static_cast<size_t>(q8::kern::BinaryOp::Add)](want_sum.size(), want_sum.data(), residual.data(),
                                                                   want_sum.data(), cl.lo, cl.hi);
      for (size_t panel_pieces : {1, 2, 3})
        for (size_t pieces : {1, 3}) {
          const auto fused = run_conv(*table_, g, in, w, b, cl.lo, cl.hi, pieces, panel_pieces, &residual);
          expect_same_bits(fused, want_sum,
                           what + " with a residual, " + std::to_string(pieces) + " x " + std::to_string(panel_pieces));
        }
      // A fused activation after the clamp, with and without the residual: the bits of the table's
      // unary over the finished output.
      const q8::kern::UnaryParams silu{q8::kern::UnaryKind::Silu, 0.f, 0.f};
      std::vector<float> want_act = whole, want_sum_act = want_sum;
      table_->unary(want_act.size(), want_act.data(), want_act.data(), silu);
      table_->unary(want_sum_act.size(), want_sum_act.data(), want_sum_act.data(), silu);
      for (size_t panel_pieces : {1, 3}) {
        expect_same_bits(run_conv(*table_, g, in, w, b, cl.lo, cl.hi, 3, panel_pieces, nullptr, &silu), want_act,
                         what + " with a fused Silu, 3 x " + std::to_string(panel_pieces));
        expect_same_bits(run_conv(*table_, g, in, w, b, cl.lo, cl.hi, 3, panel_pieces, &residual, &silu), want_sum_act,
                         what + " with a residual and a fused Silu, 3 x " + std::to_string(panel_pieces));
      }
    }
  }

  void check_dwconv(const ConvCase& cc, uint32_t seed) {
    const ConvGeometry g = cc.geometry();
    ASSERT_TRUE(g.groups == g.C && g.K == g.C);
    ASSERT_GE(g.IH + g.PT + g.PB, g.DH * (g.KH - 1) + 1) << "no window fits: " << describe(g);
    ASSERT_GE(g.IW + g.PL + g.PR, g.DW * (g.KW - 1) + 1) << "no window fits: " << describe(g);
    const auto in = random_floats(g.N * g.IH * g.IW * g.C, seed);
    const auto w = random_floats(g.C * g.taps(), seed + 1);
    const auto bias = random_floats(g.C, seed + 2);
    for (const Clamp& cl : kClamps) {
      const std::string what = std::string(table_->isa) + " dwconv " + describe(g) + " clamp [" +
                               std::to_string(cl.lo) + ", " + std::to_string(cl.hi) + "]";
      const Expected want = naive_conv(g, in, w, bias.data(), cl.lo, cl.hi);
      const auto whole = run_dwconv(*table_, g, in, w, bias.data(), cl.lo, cl.hi, 1);
      expect_close(whole, want, 1e-5, what);
      if (!is_scalar())
        expect_same_bits(whole, run_dwconv(*scalar_, g, in, w, bias.data(), cl.lo, cl.hi, 1), what + " vs scalar");
      for (size_t pieces : {2, 4}) {
        const auto parts = run_dwconv(*table_, g, in, w, bias.data(), cl.lo, cl.hi, pieces);
        EXPECT_EQ(0, std::memcmp(whole.data(), parts.data(), whole.size() * sizeof(float)))
            << what << ": ranges split in " << pieces << " differ from the whole range";
      }
    }
  }

  const F32Kernels* table_ = nullptr;
  const F32Kernels* scalar_ = nullptr;
};

TEST_P(F32Kernels_, ConvPointwise) {
  check_conv(ConvCase().input(1, 5, 7, 16).out_channels(24), 1);
  check_conv(ConvCase().input(3, 4, 5, 67).out_channels(33), 2);
  check_conv(ConvCase().input(1, 3, 3, 1).out_channels(1), 3);
  check_conv(ConvCase().input(2, 6, 5, 40).out_channels(64).stride(2, 2), 4);
  check_conv(ConvCase().input(1, 4, 4, 8).out_channels(70), 5, /*with_bias=*/false);
}

TEST_P(F32Kernels_, ConvSpatial) {
  check_conv(ConvCase().input(1, 9, 9, 8).out_channels(40).kernel(3, 3).pads(1, 1, 1, 1), 10);
  check_conv(ConvCase().input(2, 10, 11, 5).out_channels(7).kernel(3, 3).stride(2, 2).pads(0, 1, 1, 0), 11);
  check_conv(ConvCase().input(1, 20, 20, 3).out_channels(16).kernel(7, 7).stride(2, 2).pads(3, 3, 3, 3), 12);
  check_conv(ConvCase().input(1, 12, 9, 6).out_channels(35).kernel(5, 5).dilation(2, 2).pads(2, 1, 3, 0), 13);
  // A UNet decoder's 16-channel layer (the narrow tile where a table has one) and one channel more.
  check_conv(ConvCase().input(1, 13, 14, 32).out_channels(16).kernel(3, 3).pads(1, 1, 1, 1), 19);
  check_conv(ConvCase().input(1, 13, 14, 32).out_channels(17).kernel(3, 3).pads(1, 1, 1, 1), 20);
  check_conv(ConvCase().input(1, 3, 3, 4).out_channels(9).kernel(5, 5).pads(2, 2, 2, 2), 14);
  check_conv(ConvCase().input(1, 6, 6, 1).out_channels(1).kernel(3, 3).pads(1, 1, 1, 1), 15);
  check_conv(ConvCase().input(1, 7, 5, 4).out_channels(5).kernel(3, 2).stride(1, 3).pads(0, 2, 1, 0), 16);
  check_conv(ConvCase().input(1, 28, 28, 32).out_channels(64).kernel(3, 3).pads(1, 1, 1, 1), 17);
  check_conv(ConvCase().input(1, 10, 10, 300).out_channels(20).kernel(3, 3).pads(1, 1, 1, 1), 18);
  check_conv(ConvCase().input(1, 5, 9, 2).out_channels(3).kernel(1, 4).pads(0, 3, 0, 2), 21, false);
  // First layers over kernel rows: two images, uneven strides and pads, an 11x11 stride-4 window.
  check_conv(ConvCase().input(2, 15, 13, 3).out_channels(33).kernel(5, 5).stride(2, 3).pads(2, 1, 2, 3), 22);
  check_conv(ConvCase().input(1, 35, 30, 3).out_channels(64).kernel(11, 11).stride(4, 4).pads(2, 2, 2, 2), 23);
}

// Taps beyond the input and beyond the pads (ceil-style output sizes, pads >= kernel) read zero.
TEST_P(F32Kernels_, ConvTapsOutsideInput) {
  check_conv(ConvCase().input(1, 8, 8, 4).out_channels(5).kernel(3, 3).stride(2, 2).extra(1, 1), 30);
  check_conv(ConvCase().input(1, 7, 6, 3).out_channels(6).kernel(3, 3).stride(2, 2).pads(1, 1, 1, 1).extra(1, 2), 31);
  check_conv(ConvCase().input(1, 4, 4, 3).out_channels(6).kernel(2, 2).pads(3, 3, 3, 3), 32);
}

TEST_P(F32Kernels_, ConvGrouped) {
  check_conv(ConvCase().input(1, 7, 7, 8).out_channels(12).kernel(3, 3).pads(1, 1, 1, 1).groups(4), 40);
  check_conv(ConvCase().input(1, 6, 5, 6).out_channels(70).kernel(3, 3).pads(1, 0, 1, 2).groups(2), 41);
  check_conv(ConvCase().input(2, 6, 6, 12).out_channels(12).stride(2, 2).groups(3), 42);
  // Depthwise and depthwise with a channel multiplier, through the GEMM path.
  check_conv(ConvCase().input(1, 6, 7, 16).out_channels(16).kernel(3, 3).pads(1, 1, 1, 1).groups(16), 43);
  check_conv(ConvCase().input(1, 5, 5, 4).out_channels(8).kernel(3, 3).stride(2, 2).pads(1, 1, 1, 1).groups(4), 44);
}

// Reductions long enough (taps * Cg * nr floats past 256 KiB, for every table's nr: scalar's 4 too)
// that f32_conv_run splits them into blocks, the partial sums passing through the output: runs of
// one tap's channels (Cg large), and whole taps with groups. The same bits as one pass must come
// out: the scalar table and the naive conv check them, and so do split pixel ranges. The third
// case has pixel blocks of several tiles: only panels past 256 KiB (32 or 64 channels) take the
// blocked order there, with a last panel of 6 channels.
TEST_P(F32Kernels_, ConvBlockedReduction) {
  check_conv(ConvCase().input(1, 3, 4, 2100).out_channels(37).kernel(3, 3).pads(1, 1, 1, 1), 50);
  check_conv(ConvCase().input(1, 4, 5, 800).out_channels(20).kernel(7, 7).pads(3, 3, 3, 3).groups(2), 51);
  check_conv(ConvCase().input(1, 10, 10, 256).out_channels(70).kernel(3, 3).pads(1, 1, 1, 1), 52);
}

TEST_P(F32Kernels_, Depthwise) {
  uint32_t seed = 100;
  for (size_t C : {1, 7, 16, 24, 37, 48, 69, 130}) {
    auto dw = [&](ConvCase cc) { check_dwconv(cc.input(1, 9, 8, C).out_channels(C).groups(C), seed++); };
    dw(ConvCase().kernel(3, 3).pads(1, 1, 1, 1));
    dw(ConvCase().kernel(3, 3).stride(2, 2).pads(1, 1, 1, 1));
    dw(ConvCase().kernel(3, 3).stride(2, 2).pads(0, 0, 1, 1));
    dw(ConvCase().kernel(5, 5).pads(2, 2, 2, 2));
    dw(ConvCase().kernel(5, 5).stride(2, 2).pads(1, 2, 2, 1));
    dw(ConvCase().kernel(3, 3).dilation(2, 2).pads(2, 2, 2, 2));
    dw(ConvCase().kernel(3, 3).stride(2, 2).extra(1, 1));
  }
  check_dwconv(ConvCase().input(2, 5, 4, 33).out_channels(33).groups(33).kernel(3, 3).pads(1, 1, 1, 1), 200);
  // MobileNet-sized rows: runs of interior pixels a row at a time, then the rest of the row.
  check_dwconv(ConvCase().input(1, 14, 14, 96).out_channels(96).groups(96).kernel(3, 3).pads(1, 1, 1, 1), 203);
  check_dwconv(ConvCase().input(1, 15, 13, 72).out_channels(72).groups(72).kernel(5, 5).stride(2, 2).pads(2, 2, 2, 2),
               204);
  // Stride-2 rows of four pixels over shared input columns (3x3 and 5x5; one or two vectors a step,
  // then a vector ending at C), and a stride-2 row too short for four.
  for (size_t C : {20, 48, 96})
    for (size_t k : {3, 5})
      check_dwconv(ConvCase()
                       .input(1, 13, 14, C)
                       .out_channels(C)
                       .groups(C)
                       .kernel(k, k)
                       .stride(2, 2)
                       .pads(k / 2, k / 2, k / 2, k / 2),
                   static_cast<uint32_t>(205 + C + k));
  check_dwconv(ConvCase().input(1, 9, 6, 32).out_channels(32).groups(32).kernel(3, 3).stride(2, 2).pads(1, 1, 1, 1),
               206);
  // More taps than one window list holds (81 > 64): partial sums pass through the output row.
  check_dwconv(ConvCase().input(1, 11, 10, 40).out_channels(40).groups(40).kernel(9, 9).pads(4, 4, 4, 4), 201);
  check_dwconv(ConvCase().input(1, 12, 12, 5).out_channels(5).groups(5).kernel(11, 7).pads(5, 3, 5, 3), 202);
}

// Kernels, pads, strides and dilations up to 2^20 (what the importer admits) over an 8x8 input.
// Every path visits only a window's taps inside the input: these kernels have up to 2^20 taps and
// the first two cases ~130k output pixels, so a path that walked every tap of a pixel would run
// ~10^12 multiply-adds and never finish (ctest's timeout fails it).
TEST_P(F32Kernels_, DepthwiseHugeWindows) {
  const size_t M = size_t{1} << 20;
  uint32_t seed = 220;
  auto dw = [&](size_t C, ConvCase cc) {
    check_dwconv(cc.input(1, 8, 8, C).out_channels(C).groups(C), seed);
    seed += 3;
  };
  dw(9, ConvCase().kernel(1, M / 2).stride(1, 32).pads(0, M / 2, 0, M / 2));  // 8 x 16385 pixels
  dw(3, ConvCase().kernel(M / 2, 1).stride(32, 1).pads(M / 2, 1, M / 2 - 5, 2));
  dw(5, ConvCase().kernel(1024, 1024).dilation(1024, 1024).stride(M / 4, M / 4).pads(M, M, M, M));
  dw(2, ConvCase()
            .kernel(1024, 1024)
            .dilation(1023, 1025)
            .stride(M / 4 + 3, M / 4 - 1)
            .pads(M - 7, M / 2, M, M)
            .extra(1, 0));
  for (size_t C : {1, 16, 33}) {
    dw(C, ConvCase().kernel(3, 3).stride(M / 2, M / 2).pads(M, M, M, M));  // windows in the pads
    dw(C, ConvCase().kernel(5, 5).stride(M / 2 - 1, 3).pads(M, 2, M, 2));
    dw(C, ConvCase().kernel(9, 9).stride(M / 2, M / 2).pads(M, M - 3, M, M));  // > 64 taps
    dw(C, ConvCase().kernel(9, 9).dilation(3, M / 8).stride(2, M / 4).pads(10, M, 12, M));
    dw(C, ConvCase().kernel(300, 2).stride(M / 2, 1).pads(M, 1, M, 0).extra(1, 1));
  }
}

// Random geometries: kernels of 1..9 taps per axis (up to 81, past one 64-tap list), strides,
// dilations, pads from none to 2^20, ceil-style extra outputs, channel counts around every vector
// width: every path against the naive convolution and the scalar table.
TEST_P(F32Kernels_, DepthwiseRandomGeometries) {
  std::mt19937 rng(240);
  for (int rep = 0; rep < 100; ++rep) {
    const q8_test::AxisGeometry h = q8_test::random_axis(rng), w = q8_test::random_axis(rng);
    const size_t C = std::uniform_int_distribution<size_t>(1, 40)(rng);
    ConvCase cc = ConvCase()
                      .input(1 + rng() % 2, h.I, w.I, C)
                      .out_channels(C)
                      .groups(C)
                      .kernel(h.K, w.K)
                      .stride(h.S, w.S)
                      .dilation(h.D, w.D)
                      .pads(h.P, w.P, h.Pe, w.Pe)
                      .extra(rng() % 4 == 0, rng() % 4 == 0);
    check_dwconv(cc, rng());
    if (HasFatalFailure()) return;
  }
}

// --- GEMM -----------------------------------------------------------------------------------

TEST_P(F32Kernels_, Gemm) {
  uint32_t seed = 300;
  for (size_t M : {1, 2, 5, 7, 13, 64})
    for (size_t N : {1, 5, 16, 33, 70})
      for (size_t Kd : {1, 3, 64, 100, 515})
        for (bool transposed : {false, true}) {
          const bool with_bias = (M + N) % 2 == 0;
          const Clamp cl = kClamps[(M + N + Kd) % 3];
          const size_t a_stride = Kd + 3, out_stride = N + 2;
          const auto a = random_floats(M * a_stride, seed++);
          const auto B = random_floats(Kd * N, seed++);  // [Kd][N], or [N][Kd] when transposed
          const auto bias = random_floats(N, seed++);
          const float* b = with_bias ? bias.data() : nullptr;
          const size_t rs = transposed ? 1 : N, cs = transposed ? Kd : 1;

          Expected want;
          for (size_t m = 0; m < M; ++m)
            for (size_t n = 0; n < N; ++n) {
              double sum = b ? b[n] : 0.0, abs_sum = b ? std::fabs(b[n]) : 0.0;
              for (size_t k = 0; k < Kd; ++k) {
                const double t = double(a[m * a_stride + k]) * B[k * rs + n * cs];
                sum += t;
                abs_sum += std::fabs(t);
              }
              want.value.push_back(std::min<double>(std::max<double>(sum, cl.lo), cl.hi));
              want.abs_sum.push_back(abs_sum);
            }

          auto run = [&](const F32Kernels& t, size_t pieces) {
            std::vector<float> packed(q8::kern::f32_gemm_packed_floats(Kd, N, t.conv.nr));
            q8::kern::f32_gemm_pack(Kd, N, t.conv.nr, B.data(), rs, cs, b, packed.data());
            std::vector<float> out(M * out_stride + kGuard, kSentinel);
            const auto bounds = split(M, pieces);
            for (size_t i = 0; i + 1 < bounds.size(); ++i)
              q8::kern::f32_gemm_run(t, N, Kd, a.data(), a_stride, packed.data(), out.data(), out_stride, bounds[i],
                                     bounds[i + 1], cl.lo, cl.hi);
            expect_guard_intact(out, M * out_stride, std::string(t.isa) + " gemm");
            std::vector<float> dense;
            for (size_t m = 0; m < M; ++m)
              for (size_t n = 0; n < out_stride; ++n) {
                if (n < N)
                  dense.push_back(out[m * out_stride + n]);
                else if (out[m * out_stride + n] != kSentinel)
                  ADD_FAILURE() << "gemm wrote past column N";
              }
            return dense;
          };
          const std::string what = std::string(table_->isa) + " gemm M" + std::to_string(M) + " N" + std::to_string(N) +
                                   " K" + std::to_string(Kd) + (transposed ? " B^T" : " B");
          const auto whole = run(*table_, 1);
          expect_close(whole, want, 1e-5, what);
          if (!is_scalar()) expect_same_bits(whole, run(*scalar_, 1), what + " vs scalar");
          for (size_t pieces : {2, 3, 5}) {
            const auto parts = run(*table_, pieces);
            EXPECT_EQ(0, std::memcmp(whole.data(), parts.data(), whole.size() * sizeof(float)))
                << what << " split in " << pieces;
          }
          // Split by output-channel panels instead (the batch-1 split): the same bits, and each call
          // writes only its own panels' columns.
          std::vector<float> packed(q8::kern::f32_gemm_packed_floats(Kd, N, table_->conv.nr));
          q8::kern::f32_gemm_pack(Kd, N, table_->conv.nr, B.data(), rs, cs, b, packed.data());
          const size_t panels = (N + table_->conv.nr - 1) / table_->conv.nr;
          for (size_t pieces : {1, 2, 3}) {
            std::vector<float> out(M * out_stride + kGuard, kSentinel);
            const auto bounds = split(panels, pieces);
            for (size_t i = 0; i + 1 < bounds.size(); ++i)
              q8::kern::f32_gemm_run(*table_, N, Kd, a.data(), a_stride, packed.data(), out.data(), out_stride, 0, M,
                                     cl.lo, cl.hi, bounds[i], bounds[i + 1]);
            expect_guard_intact(out, M * out_stride, what + " panels");
            for (size_t m = 0; m < M; ++m)
              for (size_t n = 0; n < out_stride; ++n) {
                const float got = out[m * out_stride + n];
                if (n >= N) {
                  EXPECT_EQ(got, kSentinel) << what << " panels wrote past column N";
                } else {
                  EXPECT_EQ(0, std::memcmp(&got, &whole[m * N + n], sizeof(float)))
                      << what << " panels in " << pieces << ": m " << m << " n " << n;
                }
              }
          }
        }
}

// --- Pools ----------------------------------------------------------------------------------

struct PoolCase {
  PoolGeometry g;
  bool ceil_mode = false;
  PoolCase& input(size_t n, size_t h, size_t w, size_t c) {
    g.N = n;
    g.IH = h;
    g.IW = w;
    g.C = c;
    return *this;
  }
  PoolCase& kernel(size_t kh, size_t kw) {
    g.KH = kh;
    g.KW = kw;
    return *this;
  }
  PoolCase& stride(size_t sh, size_t sw) {
    g.SH = sh;
    g.SW = sw;
    return *this;
  }
  PoolCase& dilation(size_t dh, size_t dw) {
    g.DH = dh;
    g.DW = dw;
    return *this;
  }
  PoolCase& pads(size_t t, size_t l, size_t b, size_t r) {
    g.PT = t;
    g.PL = l;
    g.PB = b;
    g.PR = r;
    return *this;
  }
  PoolCase& ceil() {
    ceil_mode = true;
    return *this;
  }
  // ONNX output size; with ceil_mode the last window may start past the padded input's end
  // only if it starts inside the input or left pad, as ONNX Runtime requires.
  static size_t out_size(size_t in, size_t pb, size_t pe, size_t k, size_t s, size_t d, bool ceil_mode) {
    const size_t span = in + pb + pe - d * (k - 1) - 1;
    size_t o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (o - 1) * s >= in + pb) --o;
    return o;
  }
  PoolGeometry geometry(bool include_pad) const {
    PoolGeometry r = g;
    r.OH = out_size(g.IH, g.PT, g.PB, g.KH, g.SH, g.DH, ceil_mode);
    r.OW = out_size(g.IW, g.PL, g.PR, g.KW, g.SW, g.DW, ceil_mode);
    r.count_include_pad = include_pad;
    return r;
  }
};

std::string describe(const PoolGeometry& g) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "N%zu %zux%zux%zu -> %zux%zu k%zux%zu s%zu,%zu d%zu,%zu p%zu,%zu,%zu,%zu incl_pad=%d",
                g.N, g.IH, g.IW, g.C, g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, g.DH, g.DW, g.PT, g.PL, g.PB, g.PR,
                int(g.count_include_pad));
  return buf;
}

// Naive pools, per axis (naive_window.h): max over the taps inside the input (positions outside
// are ignored); average divides by those taps, or with count_include_pad by the taps inside
// [-PT, IH+PB) x [-PL, IW+PR) (ceil_mode's positions past the end pad do not count).
Expected naive_pool(const PoolGeometry& g, const std::vector<float>& in, bool is_max) {
  std::vector<std::vector<AxisTap>> rows(g.OH), cols(g.OW);
  std::vector<size_t> count_h(g.OH), count_w(g.OW);
  for (size_t oy = 0; oy < g.OH; ++oy) {
    rows[oy] = naive_axis_taps(oy, g.SH, g.DH, g.PT, g.IH, g.KH);
    count_h[oy] =
        g.count_include_pad ? naive_axis_padded_count(oy, g.SH, g.DH, g.PT, g.IH, g.PB, g.KH) : rows[oy].size();
  }
  for (size_t ox = 0; ox < g.OW; ++ox) {
    cols[ox] = naive_axis_taps(ox, g.SW, g.DW, g.PL, g.IW, g.KW);
    count_w[ox] =
        g.count_include_pad ? naive_axis_padded_count(ox, g.SW, g.DW, g.PL, g.IW, g.PR, g.KW) : cols[ox].size();
  }
  Expected e;
  for (size_t n = 0; n < g.N; ++n)
    for (size_t oy = 0; oy < g.OH; ++oy)
      for (size_t ox = 0; ox < g.OW; ++ox)
        for (size_t c = 0; c < g.C; ++c) {
          double m = -kInf, sum = 0.0, abs_sum = 0.0;
          const size_t count = count_h[oy] * count_w[ox];
          for (const AxisTap& y : rows[oy])
            for (const AxisTap& x : cols[ox]) {
              const double v = in[((n * g.IH + y.i) * g.IW + x.i) * g.C + c];
              m = std::max(m, v);
              sum += v;
              abs_sum += std::fabs(v);
            }
          e.value.push_back(is_max ? m : count ? sum / double(count) : 0.0);
          e.abs_sum.push_back(is_max ? 0.0 : count ? abs_sum / double(count) : 0.0);
        }
  return e;
}

// One pool case on the table under test, count_include_pad both ways: MaxPool equal to the naive
// max, AveragePool close to the naive mean, both bit-equal to the scalar table, and ranges split
// into pieces equal to the whole range.
void check_pool(const F32Kernels& table, const F32Kernels& scalar, const PoolCase& pc, uint32_t seed) {
  ASSERT_GE(pc.g.IH + pc.g.PT + pc.g.PB, pc.g.DH * (pc.g.KH - 1) + 1) << "no window fits: " << describe(pc.g);
  ASSERT_GE(pc.g.IW + pc.g.PL + pc.g.PR, pc.g.DW * (pc.g.KW - 1) + 1) << "no window fits: " << describe(pc.g);
  for (bool include_pad : {false, true}) {
    const PoolGeometry g = pc.geometry(include_pad);
    const auto in = random_floats(g.N * g.IH * g.IW * g.C, seed++);
    const size_t P = g.N * g.OH * g.OW;
    for (bool is_max : {true, false}) {
      if (is_max && include_pad) continue;  // count_include_pad is AveragePool only
      const std::string what =
          std::string(table.isa) + (is_max ? " maxpool " : " avgpool ") + describe(g) + (pc.ceil_mode ? " ceil" : "");
      auto run = [&](const F32Kernels& t, size_t pieces) {
        std::vector<float> out(P * g.C + kGuard, kSentinel);
        const auto bounds = split(P, pieces);
        for (size_t i = 0; i + 1 < bounds.size(); ++i)
          (is_max ? t.maxpool : t.avgpool)(g, in.data(), out.data(), bounds[i], bounds[i + 1]);
        expect_guard_intact(out, P * g.C, what);
        out.resize(P * g.C);
        return out;
      };
      const Expected want = naive_pool(g, in, is_max);
      const auto whole = run(table, 1);
      if (is_max) {
        for (size_t i = 0; i < whole.size(); ++i) ASSERT_EQ(whole[i], float(want.value[i])) << what << " element " << i;
      } else {
        expect_close(whole, want, 1e-5, what);
      }
      if (&table != &scalar) expect_same_bits(whole, run(scalar, 1), what + " vs scalar");
      for (size_t pieces : {2, 3, 7}) {
        const auto parts = run(table, pieces);
        EXPECT_EQ(0, std::memcmp(whole.data(), parts.data(), whole.size() * sizeof(float)))
            << what << " split in " << pieces;
      }
    }
  }
}

TEST_P(F32Kernels_, Pools) {
  const std::vector<PoolCase> cases = {
      PoolCase().input(1, 8, 8, 17).kernel(3, 3).stride(2, 2).pads(1, 1, 1, 1),
      PoolCase().input(2, 6, 6, 64).kernel(2, 2).stride(2, 2),
      PoolCase().input(1, 8, 8, 67).kernel(3, 3).stride(2, 2).ceil(),
      PoolCase().input(1, 6, 7, 5).kernel(3, 3).stride(2, 2).pads(1, 1, 1, 1).ceil(),
      PoolCase().input(1, 9, 9, 33).kernel(3, 3).stride(2, 2).pads(0, 1, 2, 0).ceil(),
      PoolCase().input(1, 7, 7, 1).kernel(3, 3).stride(1, 1).pads(1, 1, 1, 1),
      PoolCase().input(1, 9, 9, 20).kernel(3, 3).dilation(2, 2).pads(2, 1, 2, 1),
      PoolCase().input(1, 5, 6, 130).kernel(5, 5).stride(1, 1).pads(2, 2, 2, 2),
      PoolCase().input(1, 5, 5, 3).kernel(5, 5),
      PoolCase().input(1, 12, 11, 37).kernel(9, 9).stride(2, 2).pads(4, 4, 4, 4).ceil(),  // 81 taps
  };
  uint32_t seed = 500;
  for (const PoolCase& pc : cases) {
    check_pool(*table_, *scalar_, pc, seed);
    seed += 2;
  }
}

// Windows, strides and pads of up to 2^20 over an 8x8 input (the importer admits them), with
// dilations, ceil_mode and count_include_pad both ways. A path that walked a window's taps
// instead of only those inside the input would run 2^40 (10^12) steps per output pixel, and one
// that walked a whole row or column of taps (2^20 per pixel) ~10^11 steps on the 2^17 pixels of
// the last cases: either never finishes, and ctest's timeout fails the test.
TEST_P(F32Kernels_, PoolsHugeWindows) {
  const size_t M = size_t{1} << 20;
  uint32_t seed = 520;
  for (size_t C : {1, 17, 40}) {
    const std::vector<PoolCase> cases = {
        PoolCase().input(1, 8, 8, C).kernel(M, M).stride(M, M).pads(M, M, M, M),
        PoolCase().input(1, 8, 8, C).kernel(M, M).stride(M, M).pads(M, M, M, M).ceil(),
        PoolCase().input(2, 8, 8, C).kernel(M, M).stride(M / 2, 3 * M / 4).pads(M - 1, 5, M, M - 3).ceil(),
        PoolCase().input(1, 8, 8, C).kernel(M / 4, M / 4).dilation(4, 3).stride(M / 2, M / 2).pads(M, M, M, M),
        PoolCase()
            .input(1, 8, 8, C)
            .kernel(M / 4, M / 4)
            .dilation(4, 3)
            .stride(M / 2 + 1, M / 2 - 1)
            .pads(M, M / 2, M, M)
            .ceil(),
        PoolCase().input(1, 8, 8, C).kernel(2, 2).dilation(M, M).stride(M / 2, M / 2).pads(M, M, M, M),
        PoolCase().input(1, 8, 8, C).kernel(3, 3).stride(M / 2, M / 2).pads(M, M, M, M),  // windows in the pads
        PoolCase().input(1, 8, 8, C).kernel(M, 3).stride(M / 2, 1).pads(M, 1, M, 1).ceil(),
    };
    for (const PoolCase& pc : cases) {
      check_pool(*table_, *scalar_, pc, seed);
      seed += 2;
      if (HasFatalFailure()) return;
    }
  }
  check_pool(*table_, *scalar_, PoolCase().input(1, 8, 8, 3).kernel(M, M).stride(M, 16).pads(M, M, M, M), seed);
  check_pool(*table_, *scalar_, PoolCase().input(1, 8, 8, 2).kernel(M, M).stride(16, M).pads(M, M, M, M).ceil(),
             seed + 2);
}

// Random geometries: kernels of 1..9 taps per axis (past one 64-tap list), strides, dilations,
// pads from none to 2^20, ceil_mode, count_include_pad both ways, channel counts around every
// vector width.
TEST_P(F32Kernels_, PoolsRandomGeometries) {
  std::mt19937 rng(540);
  for (int rep = 0; rep < 150; ++rep) {
    const q8_test::AxisGeometry h = q8_test::random_axis(rng), w = q8_test::random_axis(rng);
    PoolCase pc = PoolCase()
                      .input(1 + rng() % 2, h.I, w.I, std::uniform_int_distribution<size_t>(1, 70)(rng))
                      .kernel(h.K, w.K)
                      .stride(h.S, w.S)
                      .dilation(h.D, w.D)
                      .pads(h.P, w.P, h.Pe, w.Pe);
    if (rng() % 2) pc.ceil();
    check_pool(*table_, *scalar_, pc, rng());
    if (HasFatalFailure()) return;
  }
}

TEST_P(F32Kernels_, GlobalAvgPool) {
  uint32_t seed = 600;
  for (size_t HW : {1, 7, 49})
    for (size_t C : {1, 17, 64, 100, 2048}) {
      const size_t N = 3;
      const auto in = random_floats(N * HW * C, seed++);
      Expected want;
      for (size_t n = 0; n < N; ++n)
        for (size_t c = 0; c < C; ++c) {
          double sum = 0, abs_sum = 0;
          for (size_t i = 0; i < HW; ++i) {
            sum += in[(n * HW + i) * C + c];
            abs_sum += std::fabs(in[(n * HW + i) * C + c]);
          }
          want.value.push_back(sum / double(HW));
          want.abs_sum.push_back(abs_sum / double(HW));
        }
      const std::string what =
          std::string(table_->isa) + " global_avgpool HW" + std::to_string(HW) + " C" + std::to_string(C);
      std::vector<float> out(N * C + kGuard, kSentinel);
      table_->global_avgpool(HW, C, in.data(), out.data(), 1, N);  // batch 0 must stay untouched
      for (size_t c = 0; c < C; ++c) ASSERT_EQ(out[c], kSentinel) << what << ": wrote outside [n0, n1)";
      table_->global_avgpool(HW, C, in.data(), out.data(), 0, 1);
      expect_guard_intact(out, N * C, what);
      out.resize(N * C);
      expect_close(out, want, 1e-5, what);
      if (!is_scalar()) {
        std::vector<float> ref(N * C);
        scalar_->global_avgpool(HW, C, in.data(), ref.data(), 0, N);
        expect_same_bits(out, ref, what + " vs scalar");
      }
    }
}

// --- Elementwise: exactly rounded, so every table must match the naive result bit for bit ---

// The naive result of each table binary op, in the kernels' order BinaryOp.
float naive_binary(size_t op, float a, float b) {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    default: return a / b;
  }
}
const char* const kBinaryNames[kTableBinaryOps] = {"add", "sub", "mul", "div"};

TEST_P(F32Kernels_, Elementwise) {
  uint32_t seed = 700;
  for (size_t n : {0, 1, 7, 15, 16, 17, 33, 100, 1000})
    for (const Clamp& cl : kClamps) {
      const auto a = random_floats(n, seed++), b = random_floats(n, seed++);
      const std::string what = std::string(table_->isa) + " n=" + std::to_string(n) + " clamp [" +
                               std::to_string(cl.lo) + ", " + std::to_string(cl.hi) + "]";
      std::vector<float> out(n + kGuard, kSentinel);
      for (size_t op = 0; op < kTableBinaryOps; ++op) {
        std::fill(out.begin(), out.end(), kSentinel);
        table_->binary[op](n, a.data(), b.data(), out.data(), cl.lo, cl.hi);
        expect_guard_intact(out, n, what + " " + kBinaryNames[op]);
        for (size_t i = 0; i < n; ++i)
          ASSERT_EQ(out[i], clampf(naive_binary(op, a[i], b[i]), cl.lo, cl.hi))
              << what << " " << kBinaryNames[op] << " " << i;
      }

      std::fill(out.begin(), out.end(), kSentinel);
      table_->clamp(n, a.data(), out.data(), cl.lo, cl.hi);
      expect_guard_intact(out, n, what + " clamp");
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], clampf(a[i], cl.lo, cl.hi)) << what << " clamp " << i;

      // In place, as the engine may run it.
      std::vector<float> x = a;
      table_->clamp(n, x.data(), x.data(), cl.lo, cl.hi);
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(x[i], clampf(a[i], cl.lo, cl.hi)) << what << " clamp in place";
    }
  // Row broadcast with the row on either side of the op.
  for (size_t rows : {1, 3, 7})
    for (size_t n : {1, 5, 16, 24, 67})
      for (size_t op = 0; op < kTableBinaryOps; ++op)
        for (bool row_right : {true, false}) {
          const auto big = random_floats(rows * n, seed++), row = random_floats(n, seed++);
          std::vector<float> out(rows * n + kGuard, kSentinel);
          if (row_right)
            table_->binary_rows[op](rows, n, big.data(), n, row.data(), 0, out.data(), 0.0f, 0.75f);
          else
            table_->binary_rows[op](rows, n, row.data(), 0, big.data(), n, out.data(), 0.0f, 0.75f);
          const std::string what = std::string(table_->isa) + " " + kBinaryNames[op] +
                                   "_rows rows=" + std::to_string(rows) + " n=" + std::to_string(n) +
                                   (row_right ? "" : " row left");
          expect_guard_intact(out, rows * n, what);
          for (size_t r = 0; r < rows; ++r)
            for (size_t i = 0; i < n; ++i) {
              const float x = big[r * n + i], y = row[i];
              ASSERT_EQ(out[r * n + i],
                        clampf(row_right ? naive_binary(op, x, y) : naive_binary(op, y, x), 0.0f, 0.75f))
                  << what << " at " << r << "," << i;
            }
        }
}

// NaN, infinities, signed zeros, ties and subnormals: the places where min/max instructions and
// unfused arithmetic differ between ISAs. Every table must give the scalar table's bits (NaN
// positions must match; see expect_same_bits).
TEST_P(F32Kernels_, SpecialValuesSameBitsAsScalar) {
  if (is_scalar()) GTEST_SKIP() << "compares SIMD tables with scalar";
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float specials[] = {nan, -0.0f, 0.0f, kInf, -kInf, 1e-40f, -1e-40f, 0.5f, 0.5f, -0.5f, 1e30f, -1e30f};
  constexpr size_t kSpecials = sizeof(specials) / sizeof(specials[0]);
  // Random floats with about one element in `every` replaced by a special value.
  auto sprinkle = [&](size_t n, uint32_t seed, size_t every) {
    auto v = random_floats(n, seed);
    std::mt19937 rng(seed + 99);
    for (float& x : v)
      if (rng() % every == 0) x = specials[rng() % kSpecials];
    return v;
  };
  const Clamp clamps[] = {{-kInf, kInf}, {0.0f, 6.0f}, {-0.0f, 0.0f}, {0.0f, -0.0f}, {0.5f, 0.5f}};

  // Elementwise.
  for (size_t n : {1, 15, 16, 17, 100, 1000})
    for (const Clamp& cl : clamps) {
      const auto a = sprinkle(n, uint32_t(n), 3), b = sprinkle(n, uint32_t(n) + 7, 3);
      const std::string what = std::string(table_->isa) + " specials n=" + std::to_string(n) + " [" +
                               std::to_string(cl.lo) + ", " + std::to_string(cl.hi) + "]";
      std::vector<float> got(n), ref(n);
      table_->clamp(n, a.data(), got.data(), cl.lo, cl.hi);
      scalar_->clamp(n, a.data(), ref.data(), cl.lo, cl.hi);
      expect_same_bits(got, ref, what + " clamp");
      for (size_t i = 0; i < n; ++i) {
        const float want = clampf(a[i], cl.lo, cl.hi);  // NaN passes through
        ASSERT_TRUE(std::isnan(want) ? std::isnan(got[i]) : std::memcmp(&want, &got[i], 4) == 0)
            << what << " clamp element " << i << ": " << a[i] << " -> " << got[i];
      }
      for (size_t op = 0; op < kTableBinaryOps; ++op) {
        table_->binary[op](n, a.data(), b.data(), got.data(), cl.lo, cl.hi);
        scalar_->binary[op](n, a.data(), b.data(), ref.data(), cl.lo, cl.hi);
        expect_same_bits(got, ref, what + " " + kBinaryNames[op]);
        table_->binary_rows[op](1, n, a.data(), n, b.data(), n, got.data(), cl.lo, cl.hi);
        expect_same_bits(got, ref, what + " " + kBinaryNames[op] + "_rows");
      }
    }

  // Pools: NaN in a window gives NaN; ties (including -0 against +0) keep the earlier tap.
  for (bool include_pad : {false, true}) {
    PoolCase pc = PoolCase().input(2, 9, 8, 37).kernel(3, 3).stride(2, 2).pads(1, 1, 1, 1).ceil();
    const PoolGeometry g = pc.geometry(include_pad);
    const auto in = sprinkle(g.N * g.IH * g.IW * g.C, include_pad ? 901 : 902, 6);
    const size_t P = g.N * g.OH * g.OW;
    std::vector<float> got(P * g.C), ref(P * g.C);
    const std::string what = std::string(table_->isa) + " specials " + describe(g);
    table_->avgpool(g, in.data(), got.data(), 0, P);
    scalar_->avgpool(g, in.data(), ref.data(), 0, P);
    expect_same_bits(got, ref, what + " avgpool");
    table_->maxpool(g, in.data(), got.data(), 0, P);
    scalar_->maxpool(g, in.data(), ref.data(), 0, P);
    expect_same_bits(got, ref, what + " maxpool");
    EXPECT_TRUE(std::any_of(got.begin(), got.end(), [](float x) { return std::isnan(x); })) << what;
    table_->global_avgpool(g.IH * g.IW, g.C, in.data(), got.data(), 0, g.N);
    scalar_->global_avgpool(g.IH * g.IW, g.C, in.data(), ref.data(), 0, g.N);
    got.resize(g.N * g.C);
    ref.resize(g.N * g.C);
    expect_same_bits(got, ref, what + " global_avgpool");
  }
  {  // -0/+0 ties: a max window of only zeros returns its first tap's zero.
    PoolCase pc = PoolCase().input(1, 6, 6, 19).kernel(2, 2).stride(1, 1);
    const PoolGeometry g = pc.geometry(false);
    std::vector<float> in(g.IH * g.IW * g.C);
    std::mt19937 rng(5);
    for (float& x : in) x = rng() % 2 ? -0.0f : 0.0f;
    const size_t P = g.OH * g.OW;
    std::vector<float> got(P * g.C), ref(P * g.C);
    table_->maxpool(g, in.data(), got.data(), 0, P);
    scalar_->maxpool(g, in.data(), ref.data(), 0, P);
    expect_same_bits(got, ref, std::string(table_->isa) + " maxpool signed zeros");
    for (size_t p = 0; p < P; ++p)
      for (size_t c = 0; c < g.C; ++c) {
        const float first = in[((p / g.OW) * g.IW + p % g.OW) * g.C + c];
        ASSERT_EQ(std::signbit(got[p * g.C + c]), std::signbit(first)) << "pixel " << p << " channel " << c;
      }
  }

  // Conv, depthwise and GEMM with specials in the inputs and subnormal products.
  for (const Clamp& cl : clamps) {
    const ConvGeometry g = ConvCase().input(1, 7, 6, 21).out_channels(37).kernel(3, 3).pads(1, 1, 1, 1).geometry();
    const auto in = sprinkle(g.IH * g.IW * g.C, 910, 40);
    auto w = random_floats(g.K * g.Cg() * g.taps(), 911);
    for (size_t i = 0; i < w.size(); i += 5) w[i] *= 1e-38f;  // subnormal products and sums
    const auto bias = sprinkle(g.K, 912, 4);
    const std::string what = std::string(table_->isa) + " specials " + describe(g);
    expect_same_bits(run_conv(*table_, g, in, w, bias.data(), cl.lo, cl.hi, 1),
                     run_conv(*scalar_, g, in, w, bias.data(), cl.lo, cl.hi, 1), what + " conv");
    const ConvGeometry dg =
        ConvCase().input(1, 7, 6, 21).out_channels(21).groups(21).kernel(3, 3).pads(1, 1, 1, 1).geometry();
    const auto dw = std::vector<float>(w.begin(), w.begin() + long(dg.C * dg.taps()));
    expect_same_bits(run_dwconv(*table_, dg, in, dw, bias.data(), cl.lo, cl.hi, 1),
                     run_dwconv(*scalar_, dg, in, dw, bias.data(), cl.lo, cl.hi, 1), what + " dwconv");
    // Gemm: A = the input as [42][21], B = the first 21 x 37 weights.
    auto gemm = [&](const F32Kernels& t) {
      const size_t M = 42, Kd = 21, N = 37;
      std::vector<float> packed(q8::kern::f32_gemm_packed_floats(Kd, N, t.conv.nr));
      q8::kern::f32_gemm_pack(Kd, N, t.conv.nr, w.data(), N, 1, bias.data(), packed.data());
      std::vector<float> out(M * N);
      q8::kern::f32_gemm_run(t, N, Kd, in.data(), Kd, packed.data(), out.data(), N, 0, M, cl.lo, cl.hi);
      return out;
    };
    expect_same_bits(gemm(*table_), gemm(*scalar_), what + " gemm");
  }
}

// --- Element-wise activations ---------------------------------------------------------------

using q8::kern::UnaryKind;
using q8::kern::UnaryParams;

struct UnaryCase {
  const char* name;
  UnaryParams p;
  double max_ulps;  // the promised accuracy against the exact value (see ulps_from_exact)
};
// Bounds a little above the worst error measured over all floats; the formulas evaluated in float
// exactly as the oracle writes them (HardSigmoid, HardSwish, LeakyRelu) and IEEE's sqrt are exact.
const UnaryCase kUnaryCases[] = {
    {"Sigmoid", {UnaryKind::Sigmoid, 0.f, 0.f}, 3},
    {"Tanh", {UnaryKind::Tanh, 0.f, 0.f}, 3},
    {"HardSigmoid", {UnaryKind::HardSigmoid, 0.2f, 0.5f}, 0},
    {"HardSwish", {UnaryKind::HardSwish, 0.f, 0.f}, 0},
    {"LeakyRelu", {UnaryKind::LeakyRelu, 0.1f, 0.f}, 0},
    {"Elu", {UnaryKind::Elu, 1.5f, 0.f}, 3},
    {"Erf", {UnaryKind::Erf, 0.f, 0.f}, 4},
    {"Sqrt", {UnaryKind::Sqrt, 0.f, 0.f}, 0},
    {"Exp", {UnaryKind::Exp, 0.f, 0.f}, 2},
    {"Silu", {UnaryKind::Silu, 0.f, 0.f}, 4},
    {"Gelu", {UnaryKind::Gelu, 0.f, 0.f}, 0},
};

// a * x + b in float, a multiply and then an add as the kernel promises. The product goes through
// a volatile, so a compiler contracting a * x + b into an FMA (AArch64's default) cannot.
float float_affine(float a, float x, float b) {
  volatile float ax = a * x;
  return ax + b;
}

// GELU as the graph PyTorch exports computes it, ((x * (erf(x / sqrt2) + 1)) * 0.5 in float steps
// with the scalar table's Erf: the fused op promises exactly these bits (the Erf's own accuracy is
// tested above). volatile keeps the compiler from contracting any two steps into an FMA.
float gelu_graph(float x) {
  volatile float d = x / 1.41421353816986083984375f;
  const float dv = d;
  float e = 0.f;
  q8::kern::f32_unary__scalar(1, &dv, &e, {UnaryKind::Erf, 0.f, 0.f});
  volatile float a = e + 1.f;
  volatile float m = x * a;
  return m * 0.5f;
}

// The exact function, in long double through the C library (an oracle for the test only).
long double unary_exact(const UnaryParams& p, float xf) {
  const long double x = xf;
  switch (p.kind) {
    case UnaryKind::Sigmoid: return 1.0L / (1.0L + std::exp(-x));
    case UnaryKind::Tanh: return std::tanh(x);
    case UnaryKind::HardSigmoid: return std::min(1.0f, std::max(0.0f, float_affine(p.alpha, xf, p.beta)));
    case UnaryKind::HardSwish: return xf * std::min(1.0f, std::max(0.0f, float_affine(1.f / 6.f, xf, 0.5f)));
    case UnaryKind::LeakyRelu: return xf < 0 ? p.alpha * xf : xf;
    case UnaryKind::Elu: return xf < 0 ? p.alpha * std::expm1(x) : x;
    case UnaryKind::Erf: return std::erf(x);
    case UnaryKind::Sqrt: return std::sqrt(x);
    case UnaryKind::Exp: return std::exp(x);
    case UnaryKind::Silu: return x < -1000 ? 0.0L : x / (1.0L + std::exp(-x));
    case UnaryKind::Gelu: return gelu_graph(xf);
  }
  return 0;
}

// |got - exact| in units of the float spacing at the exact value, where the spacing never goes
// below the smallest subnormal's (so a tiny or subnormal result is judged in absolute terms:
// half a subnormal step is the best any float can do there). 0 when both are the same infinity.
double ulps_from_exact(float got, long double exact) {
  const float wf = static_cast<float>(exact);
  if (got == wf) return 0;
  if (std::isinf(wf) || std::isinf(got) || std::isnan(got)) return std::numeric_limits<double>::infinity();
  const float a = std::fabs(wf);
  const float spacing = std::max(std::nextafter(a, kInf) - a, std::numeric_limits<float>::denorm_min());
  return static_cast<double>(std::fabs(static_cast<long double>(got) - exact) / spacing);
}

// Inputs covering each function's range: a sweep over [-30, 30], small magnitudes down to
// subnormals, the ends of the float range where exp saturates, random values over [-120, 120]
// and over magnitudes 2^-149..2^14, and 64 floats either side of every threshold of the algorithms
// (kernels/f32_math.h) and of float's: exp's overflow (88.72) and clamps (-104, 89), the
// smallest normal and subnormal results (-87.34, -103.28), tanh's and erf's branch points (0.625,
// 0.875), erf's clamp (4), tanh's saturation (9), Elu's clamp (-30), and 0.
std::vector<float> unary_inputs() {
  std::vector<float> v;
  for (int i = -30000; i <= 30000; ++i) v.push_back(static_cast<float>(i) * 0.001f);
  for (float m = 1e-38f; m < 1.f; m *= 3.7f) v.insert(v.end(), {m, -m});
  for (float x = 80.f; x < 120.f; x += 0.25f) v.insert(v.end(), {x, -x});
  // The random values are made from integers only (a float formula could be contracted into an
  // FMA on one CPU and not another, and the recorded hash covers these inputs too).
  std::mt19937 rng(7);
  for (int i = 0; i < 50000; ++i)
    v.push_back(static_cast<float>(static_cast<int32_t>(rng() % 240001) - 120000) * 0.001f);
  for (int i = 0; i < 50000; ++i) {  // every exponent from 2^-149 (subnormals) to 2^14, either sign
    const uint32_t r = static_cast<uint32_t>(rng());
    const uint32_t bits = (r & 0x80000000u) | (((r >> 23) % 141u) << 23) | (r & 0x7fffffu);
    float f;
    std::memcpy(&f, &bits, 4);
    v.push_back(f);
  }
  for (float t :
       {0.f, 0.625f, 0.875f, 4.f, 9.f, 30.f, 88.7228394f, 89.f, 104.f, 87.3365479f, 103.278931f, 0.3465736f}) {
    for (float c : {t, -t}) {
      float up = c, down = c;
      for (int k = 0; k < 64; ++k) {
        v.insert(v.end(), {up, down});
        up = std::nextafter(up, kInf);
        down = std::nextafter(down, -kInf);
      }
    }
  }
  return v;
}

TEST_P(F32Kernels_, UnaryWithinStatedUlpsOfExactAndSameBitsAsScalar) {
  const std::vector<float> x = unary_inputs();
  for (const UnaryCase& c : kUnaryCases) {
    const std::string what = std::string(table_->isa) + " " + c.name;
    std::vector<float> out(x.size() + kGuard, kSentinel);
    table_->unary(x.size(), x.data(), out.data(), c.p);
    expect_guard_intact(out, x.size(), what);
    size_t bad = 0;
    double worst = 0;
    float worst_x = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const long double want = unary_exact(c.p, x[i]);
      if (std::isnan(static_cast<double>(want))) {
        if (!std::isnan(out[i]) && ++bad <= 5) ADD_FAILURE() << what << "(" << x[i] << ") = " << out[i] << ", not NaN";
        continue;
      }
      const double e = ulps_from_exact(out[i], want);
      if (e > worst) worst = e, worst_x = x[i];
      if (!(e <= c.max_ulps) && ++bad <= 5)
        ADD_FAILURE() << what << "(" << x[i] << ") = " << out[i] << ", exactly " << static_cast<double>(want) << " ("
                      << e << " ulps)";
    }
    EXPECT_EQ(bad, 0u) << what << ": worst " << worst << " ulps at " << worst_x << ", promised " << c.max_ulps;
    RecordProperty(std::string("max_ulps_") + c.name, std::to_string(worst));
    out.resize(x.size());
    if (!is_scalar()) {
      std::vector<float> ref(x.size());
      scalar_->unary(x.size(), x.data(), ref.data(), c.p);
      expect_same_bits(out, ref, what);
    }
    // In place, in uneven pieces, as the engine runs it.
    std::vector<float> y = x;
    const std::vector<size_t> b = split(y.size(), 7);
    for (size_t k = 0; k + 1 < b.size(); ++k) table_->unary(b[k + 1] - b[k], y.data() + b[k], y.data() + b[k], c.p);
    expect_same_bits(y, out, what + " in place, split");
  }
}

// Every bit pattern class (NaNs of every payload, infinities, subnormals, every exponent) and
// every tail length: the SIMD tables give the scalar bits, and NaN in gives NaN out everywhere.
TEST_P(F32Kernels_, UnaryRandomBitPatternsSameBitsAsScalar) {
  std::mt19937 rng(11);
  std::vector<float> x(100003);
  for (float& f : x) {
    const uint32_t b = static_cast<uint32_t>(rng());
    std::memcpy(&f, &b, 4);
  }
  for (const UnaryCase& c : kUnaryCases) {
    const std::string what = std::string(table_->isa) + " " + c.name + " random bits";
    std::vector<float> out(x.size());
    table_->unary(x.size(), x.data(), out.data(), c.p);
    size_t nan_lost = 0;
    for (size_t i = 0; i < x.size(); ++i)
      if (std::isnan(x[i]) && !std::isnan(out[i]) && ++nan_lost <= 3) ADD_FAILURE() << what << ": NaN in, " << out[i];
    if (!is_scalar()) {
      std::vector<float> ref(x.size());
      scalar_->unary(x.size(), x.data(), ref.data(), c.p);
      expect_same_bits(out, ref, what);
      for (size_t n = 1; n <= 4 * 16 + 17; ++n) {  // every tail length of every vector width, in groups and alone
        std::vector<float> tail(n), tail_ref(n);
        table_->unary(n, x.data() + n, tail.data(), c.p);
        scalar_->unary(n, x.data() + n, tail_ref.data(), c.p);
        expect_same_bits(tail, tail_ref, what + " n=" + std::to_string(n));
      }
    }
  }
}

TEST_P(F32Kernels_, UnarySpecialValues) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {nan,     -0.0f,  0.0f,   kInf,   -kInf,  1e-45f, -1e-45f, 3e38f,
                                -3e38f,  88.72f, 88.73f, -87.3f, -103.f, -104.f, -200.f,  1e-20f,
                                -1e-20f, 1e-6f,  -1e-6f, 0.625f, 0.875f, 4.f,    -4.f,    9.5f};
  for (const UnaryCase& c : kUnaryCases) {
    std::vector<float> out(x.size());
    table_->unary(x.size(), x.data(), out.data(), c.p);
    const std::string what = std::string(table_->isa) + " " + c.name;
    EXPECT_TRUE(std::isnan(out[0])) << what << "(NaN)";
    for (size_t i = 1; i < x.size(); ++i) {
      const long double want = unary_exact(c.p, x[i]);
      if (std::isnan(static_cast<double>(want))) {
        EXPECT_TRUE(std::isnan(out[i])) << what << "(" << x[i] << ") = " << out[i];
      } else {
        EXPECT_LE(ulps_from_exact(out[i], want), c.max_ulps)
            << what << "(" << x[i] << ") = " << out[i] << ", exactly " << static_cast<double>(want);
      }
    }
    // f(-0) and f(+0) keep the sign where the exact function is 0 there (odd functions, sqrt, ...).
    for (size_t i : {1, 2}) {
      if (unary_exact(c.p, x[i]) == 0) {
        EXPECT_EQ(std::signbit(out[i]), std::signbit(x[i])) << what << "(" << x[i] << ") = " << out[i];
      }
    }
  }
}

// Softmax and LogSoftmax take their exp from the table: the same bits as with the scalar table,
// over one lane (inner == 1, exp along the axis) and over lanes in blocks (inner > 1, across the
// 256-lane block edge), with extreme logits (exp underflows to 0) and a NaN lane.
TEST_P(F32Kernels_, SoftmaxSameBitsAsScalar) {
  for (const size_t len : {1u, 7u, 300u})
    for (const size_t inner : {1u, 5u, 300u}) {
      const size_t outer = 3;
      std::vector<float> x = random_floats(outer * len * inner, 17, -40.f, 40.f);
      x[x.size() / 2] = 150.f;
      x[x.size() / 3] = std::numeric_limits<float>::quiet_NaN();
      for (const bool log : {false, true}) {
        const std::string what = std::string(table_->isa) + (log ? " log" : " ") + "softmax len " +
                                 std::to_string(len) + " inner " + std::to_string(inner);
        std::vector<float> got(x.size()), want(x.size());
        q8::kern::f32_softmax(*table_, len, inner, x.data(), got.data(), 0, outer, log);
        q8::kern::f32_softmax(*scalar_, len, inner, x.data(), want.data(), 0, outer, log);
        expect_same_bits(got, want, what);
      }
    }
}

// The same bits on every CPU, not just on every table of this one: a hash of the outputs for
// fixed inputs, recorded on x86-64 and checked again on AArch64 (scripts/test_arm.sh).
TEST_P(F32Kernels_, UnaryBitsMatchRecordedHash) {
  const std::vector<float> x = unary_inputs();
  std::string got;
  for (const UnaryCase& c : kUnaryCases) {
    std::vector<float> out(x.size());
    table_->unary(x.size(), x.data(), out.data(), c.p);
    uint64_t h = 1469598103934665603ull;  // FNV-1a over the output bits (NaNs as one pattern)
    for (float f : out) {
      uint32_t b = 0x7fc00000u;
      if (!std::isnan(f)) std::memcpy(&b, &f, 4);
      for (int k = 0; k < 4; ++k) h = (h ^ ((b >> (8 * k)) & 0xffu)) * 1099511628211ull;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s:%016llx ", c.name, static_cast<unsigned long long>(h));
    got += buf;
  }
  EXPECT_EQ(got, kUnaryHashes) << table_->isa;
}

INSTANTIATE_TEST_SUITE_P(Isa, F32Kernels_, ::testing::Values("scalar", "avx2", "avx512", "avx512_6x64", "neon"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// Every table provides every entry point, and the ones this CPU can run report their ISA.
TEST(F32KernelTables, Complete) {
  for (const char* isa : {"scalar", "avx2", "avx512", "avx512_6x64", "neon"}) {
    if (!q8_test::cpu_supports(isa)) continue;
    const F32Kernels* t = q8_test::f32_table_for(isa);
    if (!t) continue;
    EXPECT_GE(t->conv.mr, 1u) << isa;
    EXPECT_GE(t->conv.nr, 1u) << isa;
    EXPECT_TRUE(t->conv.igemm && t->conv.igemm_block && t->gemm && t->dwconv && t->maxpool && t->avgpool &&
                t->global_avgpool && t->clamp && t->unary)
        << isa;
    for (size_t op = 0; op < kTableBinaryOps; ++op)
      EXPECT_TRUE(t->binary[op] && t->binary_rows[op]) << isa << " " << op;
  }
}

// A table's narrow tile serves the layers it fits and is narrower than the main tile; a table
// without one runs every layer on conv. (check_conv's cases run both sides of the boundary.)
TEST(F32KernelTables, NarrowLayersTakeTheNarrowTile) {
  for (const char* isa : {"scalar", "avx2", "avx512", "avx512_6x64", "neon"}) {
    const F32Kernels* t = q8_test::f32_table_for(isa);
    if (!t) continue;
    if (!t->conv_narrow.igemm) {
      EXPECT_EQ(&q8::kern::f32_conv_kernel_for(*t, 1), &t->conv) << isa;
      continue;
    }
    const size_t nr = t->conv_narrow.nr;
    EXPECT_LT(nr, t->conv.nr) << isa;
    EXPECT_GT(t->conv_narrow.mr, t->conv.mr) << isa;
    EXPECT_EQ(&q8::kern::f32_conv_kernel_for(*t, 1), &t->conv_narrow) << isa;
    EXPECT_EQ(&q8::kern::f32_conv_kernel_for(*t, nr), &t->conv_narrow) << isa;
    EXPECT_EQ(&q8::kern::f32_conv_kernel_for(*t, nr + 1), &t->conv) << isa;
  }
}

}  // namespace

// The layout changes between NCHW and NHWC (the plan's conversion steps), over any pixel range of
// a batch: every element lands where the index formula says, and nothing outside the range is
// written.
template <class T>
void check_layout_change(size_t N, size_t C, size_t HW, size_t p0, size_t p1) {
  const size_t total = N * C * HW;
  std::vector<T> nchw(total), nhwc(total);
  for (size_t i = 0; i < total; ++i) nchw[i] = static_cast<T>(i * 7 + 1);
  const T fill = static_cast<T>(0xEE);
  std::vector<T> got(total, fill), back(total, fill);
  if constexpr (std::is_same_v<T, float>) {
    q8::kern::f32_nchw_to_nhwc(C, HW, nchw.data(), got.data(), p0, p1);
  } else {
    q8::kern::u8_nchw_to_nhwc(C, HW, nchw.data(), got.data(), p0, p1);
  }
  for (size_t n = 0; n < N; ++n)
    for (size_t c = 0; c < C; ++c)
      for (size_t s = 0; s < HW; ++s) {
        const size_t p = n * HW + s;
        const T want = p >= p0 && p < p1 ? nchw[(n * C + c) * HW + s] : fill;
        ASSERT_EQ(got[p * C + c], want) << "to NHWC: N " << N << " C " << C << " HW " << HW << " range [" << p0 << ", "
                                        << p1 << ") pixel " << p << " channel " << c;
      }
  if constexpr (std::is_same_v<T, float>) {
    q8::kern::f32_nhwc_to_nchw(C, HW, got.data(), back.data(), p0, p1);
  } else {
    q8::kern::u8_nhwc_to_nchw(C, HW, got.data(), back.data(), p0, p1);
  }
  for (size_t n = 0; n < N; ++n)
    for (size_t c = 0; c < C; ++c)
      for (size_t s = 0; s < HW; ++s) {
        const size_t p = n * HW + s, i = (n * C + c) * HW + s;
        ASSERT_EQ(back[i], p >= p0 && p < p1 ? nchw[i] : fill)
            << "to NCHW: N " << N << " C " << C << " HW " << HW << " pixel " << p << " channel " << c;
      }
}

TEST(LayoutChange, EveryElementInItsPlaceOverAnyPixelRange) {
  for (size_t N : {1, 3})
    for (size_t C : {1, 3, 5, 64, 130})
      for (size_t HW : {1, 7, 49, 64, 65, 200}) {
        const size_t P = N * HW;
        for (const auto& r : std::vector<std::pair<size_t, size_t>>{{0, P}, {0, P / 2}, {P / 3, P}, {1, P}}) {
          if (r.first >= r.second) continue;
          check_layout_change<float>(N, C, HW, r.first, r.second);
          check_layout_change<uint8_t>(N, C, HW, r.first, r.second);
        }
      }
}
