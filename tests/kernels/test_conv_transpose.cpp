// ConvTranspose (kernels/conv_transpose.h) on every table this build and CPU have, int8 and fp32,
// against references written here from the definition, byte for byte:
//   - int8: for each output pixel and channel, the int64 sum over every (input pixel, tap) that
//     reaches it of (x - z_a) * w plus the bias, then qu8.h's requantization;
//   - fp32: conv_transpose.h's contract, acc = bias, then fma(x, w, acc) over the output's phase
//     taps in (ky, kx) order and its input channels in order (zeros where the tap's input pixel
//     does not exist), then the clamp; and within 1e-5 of the double sum over the taps that reach
//     the output, so the contract is ONNX's ConvTranspose.
// The run is split into ranges that start and end inside phases, as threads split it. The output
// and the scratch are exactly their size between canaries and a PROT_NONE page, so a write
// outside either fails the test in any build.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cpu_support.h"
#include "kernel_tables.h"
#include "kernels/conv_transpose.h"
#include "kernels/f32.h"
#include "kernels/qu8.h"
#include "qu8_gemm_tester.h"  // requantize(), packed_storage()

namespace {

using q8::kern::ConvTransposeGeometry;
using q8::kern::F32Kernels;
using q8::kern::QU8Kernels;
using q8::kern::QU8Requant;

// `size` bytes between canary bytes and a PROT_NONE page (qu8_gemm_tester.h's GuardedBuffer): a
// write past the end faults, and one before the start changes a canary that intact() reports.
class GuardedOutput {
 public:
  GuardedOutput(size_t size, uint8_t fill) : buf_(kCanaryBytes + size) {
    std::fill(buf_.data(), buf_.data() + kCanaryBytes, kCanary);
    std::fill(data(), data() + size, fill);
  }
  uint8_t* data() { return buf_.data() + kCanaryBytes; }
  size_t size() const { return buf_.size() - kCanaryBytes; }
  bool intact() {
    return std::all_of(buf_.data(), data(), [](uint8_t b) { return b == kCanary; });
  }

 private:
  static constexpr size_t kCanaryBytes = 256;
  static constexpr uint8_t kCanary = 0xC3;
  q8_test::GuardedBuffer buf_;
};

struct Case {
  size_t N = 1, C = 4, IH = 5, IW = 5, K = 4, KH = 3, KW = 3, SH = 1, SW = 1, DH = 1, DW = 1;
  size_t PT = 0, PL = 0, PB = 0, PR = 0, OPH = 0, OPW = 0, groups = 1;
  int za = 7, zo = 128;
  uint8_t qmin = 0, qmax = 255;
  bool bias = true;

  ConvTransposeGeometry geometry() const {
    ConvTransposeGeometry g;
    g.N = N, g.C = C, g.IH = IH, g.IW = IW, g.K = K, g.KH = KH, g.KW = KW, g.SH = SH, g.SW = SW, g.DH = DH, g.DW = DW;
    g.PT = PT, g.PL = PL, g.groups = groups;
    // ONNX: O = S*(I-1) + output_padding + ((K-1)*D + 1) - pad_begin - pad_end.
    g.OH = SH * (IH - 1) + OPH + (KH - 1) * DH + 1 - PT - PB;
    g.OW = SW * (IW - 1) + OPW + (KW - 1) * DW + 1 - PL - PR;
    return g;
  }
  std::string describe() const {
    std::ostringstream s;
    s << "N" << N << " C" << C << " " << IH << "x" << IW << " K" << K << " k" << KH << "x" << KW << " s" << SH << "x"
      << SW << " d" << DH << "x" << DW << " pads " << PT << "," << PL << "," << PB << "," << PR << " outpad " << OPH
      << "," << OPW << " groups " << groups << " za " << za;
    return s.str();
  }
};

// Runs case c on int8 table k (split into `splits` ranges) and compares every byte with the reference.
void check_qu8(const Case& c, const QU8Kernels& k, size_t splits, uint32_t seed) {
  SCOPED_TRACE(c.describe() + " on " + k.isa);
  const ConvTransposeGeometry g = c.geometry();
  const size_t Cg = g.Cg(), Kg = g.Kg();
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u8(0, 255), s8(-127, 127), b32(-5000, 5000);
  const size_t slack = q8::kern::kQu8MaxKr;
  std::vector<uint8_t> x(g.N * g.IH * g.IW * g.C + slack), zero(g.C + slack, static_cast<uint8_t>(c.za));
  for (auto& v : x) v = static_cast<uint8_t>(u8(rng));
  std::vector<int8_t> w(g.C * Kg * g.KH * g.KW);
  for (auto& v : w) v = static_cast<int8_t>(s8(rng));
  std::vector<int32_t> bias(g.K);
  for (auto& v : bias) v = b32(rng);
  // Multipliers that map a typical accumulator (about 5400 * sqrt(terms)) to 2 .. 60 output steps,
  // so that outputs spread over the range and some saturate.
  const double spread = 5400 * std::sqrt(static_cast<double>(Cg) * g.KH * g.KW);
  std::vector<float> m = q8_test::multipliers(g.K, 2 / spread, 60 / spread, rng);
  QU8Requant rq;
  rq.out_zero_point = c.zo, rq.out_min = c.qmin, rq.out_max = c.qmax;

  std::vector<uint8_t> store =
      q8_test::packed_storage(q8::kern::qu8_conv_transpose_packed_bytes(g, k.nr, k.kr, k.weight_bytes));
  void* packed = q8_test::aligned64(store);
  q8::kern::qu8_conv_transpose_pack(g, k.nr, k.kr, k.weight_bytes, w.data(), c.bias ? bias.data() : nullptr, m.data(),
                                    static_cast<uint8_t>(c.za), packed);
  std::vector<const uint8_t*> ind(q8::kern::conv_transpose_indirection_size(g));
  q8::kern::conv_transpose_indirection_init(g, x.data(), zero.data(), ind.data());
  const size_t pixels = g.N * g.OH * g.OW;
  // Exactly pixels * K bytes each (conv_transpose.h: scratch needs no slack).
  GuardedOutput out(pixels * g.K, 0xA5), scratch(pixels * g.K, 0x5A);
  for (size_t s = 0; s < splits; ++s)
    q8::kern::qu8_conv_transpose_run(k, g, ind.data(), packed, scratch.data(), out.data(), pixels * s / splits,
                                     pixels * (s + 1) / splits, rq);
  EXPECT_TRUE(out.intact()) << "a write before the output";
  EXPECT_TRUE(scratch.intact()) << "a write before the scratch";

  size_t inside = 0;  // outputs strictly inside the clamp: a case that is not mostly saturation
  for (size_t i = 0; i < out.size(); ++i) inside += out.data()[i] > c.qmin && out.data()[i] < c.qmax;
  EXPECT_GT(inside * 4, out.size()) << "a case whose outputs mostly saturate tests little";
  for (size_t n = 0; n < g.N; ++n)
    for (size_t oy = 0; oy < g.OH; ++oy)
      for (size_t ox = 0; ox < g.OW; ++ox)
        for (size_t o = 0; o < g.K; ++o) {
          const size_t grp = o / Kg, kk = o % Kg;
          int64_t acc = c.bias ? bias[o] : 0;
          for (size_t iy = 0; iy < g.IH; ++iy)
            for (size_t ky = 0; ky < g.KH; ++ky) {
              if (iy * g.SH + ky * g.DH != oy + g.PT) continue;
              for (size_t ix = 0; ix < g.IW; ++ix)
                for (size_t kx = 0; kx < g.KW; ++kx) {
                  if (ix * g.SW + kx * g.DW != ox + g.PL) continue;
                  for (size_t ci = 0; ci < Cg; ++ci) {
                    const size_t cin = grp * Cg + ci;
                    const int64_t a = x[((n * g.IH + iy) * g.IW + ix) * g.C + cin] - c.za;
                    acc += a * w[((cin * Kg + kk) * g.KH + ky) * g.KW + kx];
                  }
                }
            }
          const uint8_t want = q8_test::requantize(acc, m[o], rq);
          const uint8_t got = out.data()[((n * g.OH + oy) * g.OW + ox) * g.K + o];
          ASSERT_EQ(int{want}, int{got}) << "pixel (" << n << "," << oy << "," << ox << ") channel " << o;
        }
}

// Whether tap k (kernel index) reaches output index o along an axis, and the input index it reads
// there (which may lie outside the input: then the tap reads zeros).
bool phase_tap(size_t o, size_t pad, size_t k, size_t dilation, size_t stride, ptrdiff_t* i) {
  const ptrdiff_t t = static_cast<ptrdiff_t>(o + pad) - static_cast<ptrdiff_t>(k * dilation);
  const ptrdiff_t s = static_cast<ptrdiff_t>(stride);
  if (((t % s) + s) % s != 0) return false;
  *i = t >= 0 ? t / s : -((-t) / s);
  return true;
}

// Runs case c on fp32 table k (split into `splits` ranges) and compares every output's bits with
// the contract, and its value with the double sum.
void check_f32(const Case& c, const F32Kernels& k, size_t splits, uint32_t seed) {
  SCOPED_TRACE(c.describe() + " on fp32 " + k.isa);
  const ConvTransposeGeometry g = c.geometry();
  const size_t Cg = g.Cg(), Kg = g.Kg();
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(g.N * g.IH * g.IW * g.C), w(g.C * Kg * g.KH * g.KW), bias(g.K), zero(g.C, 0.f);
  for (auto* v : {&x, &w, &bias})
    for (float& f : *v) f = u(rng);
  // A fused Relu6-like clamp where the int8 case clamps, none elsewhere.
  const bool clamped = c.qmin > 0 || c.qmax < 255;
  const float lo = clamped ? 0.f : -INFINITY, hi = clamped ? 0.75f : INFINITY;

  const q8::kern::F32ConvKernel& kc = q8::kern::f32_conv_kernel_for(k, Kg);
  std::vector<float> packed(q8::kern::f32_conv_transpose_packed_floats(g, kc.nr));
  q8::kern::f32_conv_transpose_pack(g, kc.nr, w.data(), c.bias ? bias.data() : nullptr, packed.data());
  std::vector<const float*> ind(q8::kern::conv_transpose_indirection_size(g));
  q8::kern::conv_transpose_indirection_init(g, x.data(), zero.data(), ind.data());
  const size_t pixels = g.N * g.OH * g.OW, bytes = pixels * g.K * sizeof(float);
  GuardedOutput out(bytes, 0xFF), scratch(bytes, 0xFF);  // NaN where nothing was written
  float* y = reinterpret_cast<float*>(out.data());
  for (size_t s = 0; s < splits; ++s)
    q8::kern::f32_conv_transpose_run(kc, g, ind.data(), packed.data(), reinterpret_cast<float*>(scratch.data()), y,
                                     pixels * s / splits, pixels * (s + 1) / splits, lo, hi);
  EXPECT_TRUE(out.intact()) << "a write before the output";
  EXPECT_TRUE(scratch.intact()) << "a write before the scratch";

  for (size_t n = 0; n < g.N; ++n)
    for (size_t oy = 0; oy < g.OH; ++oy)
      for (size_t ox = 0; ox < g.OW; ++ox)
        for (size_t o = 0; o < g.K; ++o) {
          const size_t grp = o / Kg, kk = o % Kg;
          float acc = c.bias ? bias[o] : 0.f;
          double sum = acc, mag = std::fabs(acc);
          bool any = false;
          for (size_t ky = 0; ky < g.KH; ++ky) {
            ptrdiff_t iy = 0;
            if (!phase_tap(oy, g.PT, ky, g.DH, g.SH, &iy)) continue;
            for (size_t kx = 0; kx < g.KW; ++kx) {
              ptrdiff_t ix = 0;
              if (!phase_tap(ox, g.PL, kx, g.DW, g.SW, &ix)) continue;
              any = true;
              const bool inside =
                  iy >= 0 && ix >= 0 && iy < static_cast<ptrdiff_t>(g.IH) && ix < static_cast<ptrdiff_t>(g.IW);
              for (size_t ci = 0; ci < Cg; ++ci) {
                const size_t cin = grp * Cg + ci;
                const float a =
                    inside ? x[((n * g.IH + static_cast<size_t>(iy)) * g.IW + static_cast<size_t>(ix)) * g.C + cin]
                           : 0.f;
                const float wv = w[((cin * Kg + kk) * g.KH + ky) * g.KW + kx];
                acc = std::fma(a, wv, acc);
                sum += static_cast<double>(a) * wv, mag += std::fabs(static_cast<double>(a) * wv);
              }
            }
          }
          if (!any) acc = std::fma(0.f, 0.f, acc);  // the zero tap of a phase no tap reaches
          float want = acc < lo ? lo : acc;
          want = want > hi ? hi : want;
          const float got = y[((n * g.OH + oy) * g.OW + ox) * g.K + o];
          ASSERT_EQ(0, std::memcmp(&want, &got, sizeof(float)))
              << "pixel (" << n << "," << oy << "," << ox << ") channel " << o << ": " << got << " want " << want;
          const double exact = std::min<double>(std::max<double>(sum, lo), hi);
          ASSERT_NEAR(got, exact, 1e-5 * (mag + 1)) << "pixel (" << n << "," << oy << "," << ox << ") channel " << o;
        }
}

// One ISA's int8 and fp32 tables (either may be absent: int8-only ISAs have no fp32 table).
class ConvTransposeTables : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!q8_test::cpu_supports(GetParam())) GTEST_SKIP() << "this CPU cannot run " << GetParam();
    q_ = q8_test::qu8_table_for(GetParam());
    f_ = q8_test::f32_table_for(GetParam());
    if (!q_ && !f_) GTEST_SKIP() << "build lacks " << GetParam();
  }
  // The tables' output tile width, for cases whose K is no multiple of it.
  size_t nr() const { return q_ ? q_->nr : f_->conv.nr; }
  void check(const Case& c, size_t splits, uint32_t seed) {
    if (q_) check_qu8(c, *q_, splits, seed);
    if (f_) check_f32(c, *f_, splits, seed);
  }

 private:
  const QU8Kernels* q_ = nullptr;
  const F32Kernels* f_ = nullptr;
};

TEST_P(ConvTransposeTables, UNetUpsample) {  // k = 2, s = 2: one tap per output pixel
  Case c;
  c.C = 32, c.K = 16, c.IH = 7, c.IW = 7, c.KH = c.KW = 2, c.SH = c.SW = 2;
  check(c, 3, 1);
  c.N = 2, c.C = 5, c.K = 3, c.IH = 3, c.IW = 4;
  check(c, 5, 2);
}

TEST_P(ConvTransposeTables, StridesAndKernels) {
  uint32_t seed = 10;
  for (size_t s : {1, 2, 3})
    for (size_t kk : {2, 3, 4}) {
      Case c;
      c.C = 9, c.K = 11, c.IH = 5, c.IW = 6, c.KH = c.KW = kk, c.SH = c.SW = s;
      check(c, 4, seed++);
      c.KW = kk == 2 ? 3 : 2, c.SW = s == 3 ? 1 : s + 1;  // unequal axes
      check(c, 3, seed++);
    }
}

TEST_P(ConvTransposeTables, PadsAndOutputPadding) {
  uint32_t seed = 40;
  for (size_t s : {1, 2, 3})
    for (size_t kk : {3, 4}) {
      Case c;
      c.C = 6, c.K = 7, c.IH = 4, c.IW = 5, c.KH = c.KW = kk, c.SH = c.SW = s;
      c.PT = 1, c.PL = kk - 1, c.PB = kk - 2, c.PR = 0;
      c.OPH = s - 1, c.OPW = s > 1 ? 1 : 0;
      check(c, 3, seed++);
    }
}

TEST_P(ConvTransposeTables, KernelSmallerThanStride) {  // phases no tap reaches output the bias
  Case c;
  c.C = 4, c.K = 5, c.IH = 3, c.IW = 3, c.KH = c.KW = 2, c.SH = c.SW = 3, c.OPH = 2, c.OPW = 1;
  check(c, 2, 70);
  c.KH = 1, c.KW = 1, c.SH = 2, c.SW = 3, c.OPH = 1, c.OPW = 2;
  check(c, 3, 71);
}

TEST_P(ConvTransposeTables, Dilations) {
  uint32_t seed = 80;
  for (size_t d : {2, 3})
    for (size_t s : {1, 2, 3}) {
      Case c;
      c.C = 5, c.K = 6, c.IH = 4, c.IW = 5, c.KH = 3, c.KW = 2, c.SH = c.SW = s, c.DH = d, c.DW = d == 2 ? 3 : 2;
      c.PT = 1, c.PB = 2, c.PL = 2, c.PR = 1;
      check(c, 3, seed++);
    }
}

TEST_P(ConvTransposeTables, Groups) {
  Case c;
  c.C = 8, c.K = 12, c.groups = 4, c.IH = 5, c.IW = 4, c.KH = c.KW = 3, c.SH = c.SW = 2, c.PT = c.PL = 1;
  c.PB = c.PR = 1, c.OPH = c.OPW = 1;
  check(c, 3, 90);
  c.C = c.K = c.groups = 6;  // depthwise
  check(c, 2, 91);
}

TEST_P(ConvTransposeTables, OddSizesZeroPointsClamps) {
  Case c;
  c.N = 2, c.C = 3, c.K = 2 * nr() + 3, c.IH = 7, c.IW = 1, c.KH = 3, c.KW = 1, c.SH = 2, c.SW = 1;
  c.za = 0, c.zo = 3, c.qmin = 3, c.qmax = 200;  // a fused Relu and a clip
  check(c, 7, 100);
  c.za = 255, c.zo = 250, c.qmin = 0, c.qmax = 255, c.bias = false, c.C = 37, c.IW = 3, c.KW = 2, c.SW = 3;
  check(c, 1, 101);
}

// DESIGN's input zero points, on a case with several phases, pads (taps that read the zero
// vector) and an output channel count that is no multiple of nr.
TEST_P(ConvTransposeTables, InputZeroPoints) {
  uint32_t seed = 110;
  for (int za : {0, 1, 127, 128, 255}) {
    Case c;
    c.C = 7, c.K = nr() + 5, c.IH = 4, c.IW = 5, c.KH = c.KW = 3, c.SH = c.SW = 2;
    c.PT = c.PL = 1, c.PB = 0, c.PR = 2, c.OPH = 1, c.za = za;
    check(c, 3, seed++);
  }
}

std::string isa_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

INSTANTIATE_TEST_SUITE_P(Tables, ConvTransposeTables,
                         ::testing::Values("scalar", "avx2", "avx2_w8", "avxvnni", "avx512", "avx512vnni",
                                           "avx512vnni_6x64", "amx", "amx_model", "neon", "neondot", "neoni8mm"),
                         isa_name);

}  // namespace
