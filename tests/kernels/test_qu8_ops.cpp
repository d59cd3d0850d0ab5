// int8 depthwise conv, pools, add, quantize and dequantize: every table against a naive formula
// written here and against the scalar table, byte for byte (kernels/qu8.h promises identical
// bytes on every path). Outputs and inputs sit right before a PROT_NONE page, so a read or write
// past the end faults; splitting the pixel range into pieces must give the same bytes as the whole.
// A table this build or CPU lacks is skipped, never passed.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cpu_support.h"
#include "kernel_tables.h"
#include "kernels/qu8.h"
#include "naive_window.h"

namespace {

using q8_test::AxisTap;
using q8_test::naive_axis_padded_count;
using q8_test::naive_axis_taps;

using q8::kern::ConvGeometry;
using q8::kern::PoolGeometry;
using q8::kern::QU8AddParams;
using q8::kern::QU8Kernels;
using q8::kern::QU8MulParams;
using q8::kern::QU8PoolParams;
using q8::kern::QU8Requant;

const uint8_t kZeroPoints[] = {0, 1, 127, 128, 255};

// n elements ending right before a PROT_NONE page: touching element n faults.
template <class T>
class Guarded {
 public:
  explicit Guarded(size_t n, T fill = T()) : n_(n) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t bytes = (n * sizeof(T) + page - 1) / page * page;
    total_ = bytes + page;
    void* m = mmap(nullptr, total_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) std::abort();
    base_ = static_cast<uint8_t*>(m);
    if (mprotect(base_ + bytes, page, PROT_NONE) != 0) std::abort();
    data_ = reinterpret_cast<T*>(base_ + bytes - n * sizeof(T));
    std::fill(data_, data_ + n, fill);
  }
  Guarded(const std::vector<T>& v) : Guarded(v.size()) { std::copy(v.begin(), v.end(), data_); }
  ~Guarded() { munmap(base_, total_); }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;
  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  std::vector<T> vec() const { return std::vector<T>(data_, data_ + n_); }

 private:
  size_t n_, total_;
  uint8_t* base_;
  T* data_;
};

std::vector<uint8_t> random_u8(size_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> d(0, 255);
  std::vector<uint8_t> v(n);
  for (auto& x : v) x = static_cast<uint8_t>(d(rng));
  return v;
}

// Boundaries splitting [0, n) into `pieces` uneven ranges.
std::vector<size_t> split(size_t n, size_t pieces) {
  std::vector<size_t> b{0};
  for (size_t i = 1; i < pieces; ++i) b.push_back(std::max(b.back(), std::min(n, i * n / pieces + i % 2)));
  b.push_back(n);
  return b;
}

// The naive requantization, written the other way round from the kernels (round, then add z and
// clamp to [qmin, qmax] in integers; qu8.h says the two agree because the bounds are integers).
uint8_t naive_requant(int64_t acc, float m, const QU8Requant& r) {
  const float x = static_cast<float>(acc) * m;
  const double q = std::nearbyint(static_cast<double>(x)) + r.out_zero_point;
  return static_cast<uint8_t>(std::min<double>(std::max<double>(q, r.out_min), r.out_max));
}

// Output quantization settings: (z_out, qmin, qmax), incl. a fused ReLU and a narrow clip.
const QU8Requant kRequants[] = {
    {0, 0, 255}, {128, 0, 255}, {3, 3, 255}, {100, 20, 200}, {255, 0, 255}, {77, 77, 78},
};

class QU8Ops : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string isa = GetParam();
    if (!q8_test::cpu_supports(isa)) GTEST_SKIP() << "this CPU cannot run " << isa << q8_test::why_not(isa);
    table_ = q8_test::qu8_table_for(isa);
    if (!table_) GTEST_SKIP() << isa << " kernels are not in this build";
    scalar_ = q8::kern::qu8_kernels_scalar();
    ASSERT_NE(scalar_, nullptr);
    ASSERT_STREQ(table_->isa, isa.c_str());
  }
  const QU8Kernels* table_ = nullptr;
  const QU8Kernels* scalar_ = nullptr;
};

// --- Depthwise ------------------------------------------------------------------------------

std::string describe(const ConvGeometry& g) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "N%zu %zux%zux%zu -> %zux%zu k%zux%zu s%zu,%zu d%zu,%zu p%zu,%zu,%zu,%zu", g.N, g.IH,
                g.IW, g.C, g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, g.DH, g.DW, g.PT, g.PL, g.PB, g.PR);
  return buf;
}

// XNNPACK-style builder for one depthwise case.
struct DwconvTester {
  ConvGeometry g;
  size_t extra_h = 0, extra_w = 0;
  uint8_t a_zero = 0;
  QU8Requant rq;
  bool with_bias = true;
  uint32_t seed = 1;
  // Extreme operands: every weight (every input byte) set to one value instead of random;
  // kWeightsAlternate alternates -128 and 127 over channels and taps.
  int weight_fill = kRandom, input_fill = kRandom;
  static constexpr int kRandom = 1000, kWeightsAlternate = 1001;
  DwconvTester& weights(int v) {
    weight_fill = v;
    return *this;
  }
  DwconvTester& inputs(int v) {
    input_fill = v;
    return *this;
  }
  DwconvTester& input(size_t n, size_t h, size_t w, size_t c) {
    g.N = n;
    g.IH = h;
    g.IW = w;
    g.C = g.K = g.groups = c;
    return *this;
  }
  DwconvTester& kernel(size_t kh, size_t kw) {
    g.KH = kh;
    g.KW = kw;
    return *this;
  }
  DwconvTester& stride(size_t sh, size_t sw) {
    g.SH = sh;
    g.SW = sw;
    return *this;
  }
  DwconvTester& dilation(size_t dh, size_t dw) {
    g.DH = dh;
    g.DW = dw;
    return *this;
  }
  DwconvTester& pads(size_t t, size_t l, size_t b, size_t r) {
    g.PT = t;
    g.PL = l;
    g.PB = b;
    g.PR = r;
    return *this;
  }
  DwconvTester& extra(size_t h, size_t w) {
    extra_h = h;
    extra_w = w;
    return *this;
  }  // ceil-style
  DwconvTester& zero_point(uint8_t z) {
    a_zero = z;
    return *this;
  }
  DwconvTester& requant(const QU8Requant& r) {
    rq = r;
    return *this;
  }
  DwconvTester& bias(bool b) {
    with_bias = b;
    return *this;
  }
  DwconvTester& rng_seed(uint32_t s) {
    seed = s;
    return *this;
  }
  // Multipliers this many times the usual (large: requantized values far past int16 and int32).
  DwconvTester& multiplier_scale(float s) {
    mult_scale = s;
    return *this;
  }
  float mult_scale = 1.0f;

  ConvGeometry geometry() const {
    ConvGeometry r = g;
    r.OH = (g.IH + g.PT + g.PB - g.DH * (g.KH - 1) - 1) / g.SH + 1 + extra_h;
    r.OW = (g.IW + g.PL + g.PR - g.DW * (g.KW - 1) - 1) / g.SW + 1 + extra_w;
    return r;
  }

  void test(const QU8Kernels& t, const QU8Kernels& scalar) const {
    ASSERT_GE(g.IH + g.PT + g.PB, g.DH * (g.KH - 1) + 1) << "no window fits: " << describe(g);
    ASSERT_GE(g.IW + g.PL + g.PR, g.DW * (g.KW - 1) + 1) << "no window fits: " << describe(g);
    const ConvGeometry g = geometry();
    const size_t C = g.C, taps = g.taps(), P = g.out_pixels();
    std::mt19937 rng(seed);
    std::vector<uint8_t> in_values = random_u8(g.N * g.IH * g.IW * C, rng);
    if (input_fill != kRandom) std::fill(in_values.begin(), in_values.end(), static_cast<uint8_t>(input_fill));
    const Guarded<uint8_t> in(in_values);
    std::vector<int8_t> w(C * taps);  // ONNX [C][1][KH][KW], full int8 range incl. -128
    std::uniform_int_distribution<int> dw(-128, 127);
    for (size_t i = 0; i < w.size(); ++i)
      w[i] = static_cast<int8_t>(weight_fill == kRandom             ? dw(rng)
                                 : weight_fill == kWeightsAlternate ? (i % 2 ? 127 : -128)
                                                                    : weight_fill);
    std::vector<int32_t> bias(C);
    std::uniform_int_distribution<int32_t> db(-40000, 40000);
    for (auto& x : bias) x = db(rng);
    // Per channel, spread so outputs both saturate and do not; scaled by the taps a window can
    // have inside the input, so huge kernels over a small input still give varied outputs.
    std::vector<float> mult(C);
    std::uniform_real_distribution<float> dm(0.02f, 2.0f);
    const size_t reach = std::min(taps, g.IH * g.IW);
    for (auto& x : mult) x = dm(rng) / (64.0f * static_cast<float>(reach)) * mult_scale;
    const int32_t* b = with_bias ? bias.data() : nullptr;

    const size_t packed_bytes = q8::kern::qu8_dwconv_packed_bytes(g);
    Guarded<uint8_t> packed(packed_bytes, 0xA5);
    q8::kern::qu8_dwconv_pack(g, w.data(), b, mult.data(), a_zero, packed.data());
    const Guarded<uint8_t> zero(std::vector<uint8_t>(C, a_zero));

    // Naive: acc = bias + sum over taps inside the input of (a - z_a) * w (taps outside add 0),
    // the taps found by scanning the input (naive_window.h), so huge kernels stay cheap here.
    std::vector<std::vector<AxisTap>> rows(g.OH), cols(g.OW);
    for (size_t oy = 0; oy < g.OH; ++oy) rows[oy] = naive_axis_taps(oy, g.SH, g.DH, g.PT, g.IH, g.KH);
    for (size_t ox = 0; ox < g.OW; ++ox) cols[ox] = naive_axis_taps(ox, g.SW, g.DW, g.PL, g.IW, g.KW);
    std::vector<uint8_t> want(P * C);
    for (size_t n = 0; n < g.N; ++n)
      for (size_t oy = 0; oy < g.OH; ++oy)
        for (size_t ox = 0; ox < g.OW; ++ox)
          for (size_t c = 0; c < C; ++c) {
            int64_t acc = b ? b[c] : 0;
            for (const AxisTap& y : rows[oy])
              for (const AxisTap& x : cols[ox])
                acc += (int64_t(in[((n * g.IH + y.i) * g.IW + x.i) * C + c]) - a_zero) * w[c * taps + y.k * g.KW + x.k];
            want[((n * g.OH + oy) * g.OW + ox) * C + c] = naive_requant(acc, mult[c], rq);
          }

    char z[64];
    std::snprintf(z, sizeof z, " z_a=%d z_out=%d [%d,%d]%s", a_zero, rq.out_zero_point, rq.out_min, rq.out_max,
                  with_bias ? "" : " no bias");
    const std::string what = std::string(t.isa) + " dwconv " + describe(g) + z;
    auto run = [&](const QU8Kernels& k, size_t pieces) {
      Guarded<uint8_t> out(P * C, 0xCC);
      const auto bounds = split(P, pieces);
      for (size_t i = 0; i + 1 < bounds.size(); ++i)
        k.dwconv(g, in.data(), packed.data(), zero.data(), out.data(), bounds[i], bounds[i + 1], rq);
      return out.vec();
    };
    const auto got = run(t, 1);
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(int(got[i]), int(want[i])) << what << ": pixel " << i / C << " channel " << i % C;
    }
    if (&t != &scalar) {
      ASSERT_EQ(got, run(scalar, 1)) << what << " vs scalar";
    }
    ASSERT_EQ(got, run(t, 4)) << what << ": ranges split in 4 differ from the whole range";
    ASSERT_EQ(got, run(t, 7)) << what << ": ranges split in 7 differ from the whole range";
  }
};

TEST_P(QU8Ops, DepthwiseChannels1To70) {
  uint32_t seed = 1;
  for (size_t C = 1; C <= 70; ++C) {
    const uint8_t z = kZeroPoints[C % 5];
    const QU8Requant& r = kRequants[C % 6];
    DwconvTester()
        .input(1, 6, 7, C)
        .kernel(3, 3)
        .pads(1, 1, 1, 1)
        .zero_point(z)
        .requant(r)
        .rng_seed(seed++)
        .test(*table_, *scalar_);
    DwconvTester()
        .input(1, 7, 6, C)
        .kernel(3, 3)
        .stride(2, 2)
        .pads(0, 0, 1, 1)
        .zero_point(z)
        .requant(r)
        .rng_seed(seed++)
        .test(*table_, *scalar_);
    DwconvTester()
        .input(1, 6, 6, C)
        .kernel(5, 5)
        .stride(1 + C % 2, 1 + C % 2)
        .pads(2, 2, 2, 2)
        .zero_point(z)
        .requant(r)
        .rng_seed(seed++)
        .test(*table_, *scalar_);
  }
}

TEST_P(QU8Ops, DepthwiseShapes) {
  uint32_t seed = 1000;
  size_t i = 0;
  for (size_t C : {1, 8, 15, 16, 17, 32, 33, 48, 64, 65, 96, 144}) {
    auto dw = [&]() {
      ++i;
      return DwconvTester()
          .input(1 + i % 2, 9, 8, C)
          .zero_point(kZeroPoints[i % 5])
          .requant(kRequants[i % 6])
          .rng_seed(seed++);
    };
    dw().kernel(3, 3).pads(1, 1, 1, 1).test(*table_, *scalar_);
    dw().kernel(3, 3).stride(2, 2).pads(1, 1, 1, 1).test(*table_, *scalar_);
    dw().kernel(3, 3).stride(2, 2).pads(0, 0, 1, 1).bias(false).test(*table_, *scalar_);
    dw().kernel(5, 5).pads(2, 2, 2, 2).test(*table_, *scalar_);
    dw().kernel(5, 5).stride(2, 2).pads(1, 2, 2, 1).test(*table_, *scalar_);
    dw().kernel(3, 3).dilation(2, 2).pads(2, 2, 2, 2).test(*table_, *scalar_);
    dw().kernel(3, 3).dilation(2, 3).stride(1, 2).pads(0, 3, 1, 2).test(*table_, *scalar_);
    dw().kernel(3, 3).stride(2, 2).extra(1, 1).test(*table_, *scalar_);  // taps past the pads
    dw().kernel(1, 1).test(*table_, *scalar_);
    dw().kernel(2, 4).stride(1, 3).pads(1, 3, 0, 2).test(*table_, *scalar_);
    dw().kernel(7, 7).pads(3, 3, 3, 3).test(*table_, *scalar_);
    dw().kernel(3, 3).pads(4, 4, 4, 4).test(*table_, *scalar_);  // windows wholly in the pads
  }
  // More taps than one window list (64) holds.
  DwconvTester()
      .input(1, 11, 10, 40)
      .kernel(9, 9)
      .pads(4, 4, 4, 4)
      .zero_point(128)
      .rng_seed(seed++)
      .test(*table_, *scalar_);
  DwconvTester()
      .input(1, 12, 12, 5)
      .kernel(11, 7)
      .pads(5, 3, 5, 3)
      .zero_point(255)
      .requant(kRequants[3])
      .rng_seed(seed++)
      .test(*table_, *scalar_);
  DwconvTester()
      .input(1, 10, 10, 33)
      .kernel(9, 8)
      .stride(2, 2)
      .pads(0, 3, 4, 1)
      .zero_point(1)
      .rng_seed(seed++)
      .test(*table_, *scalar_);
}

// 3x3 rows wide enough for runs of output pixels whose windows lie inside the input
// horizontally (the AVX-512 kernels slide along them, in 1, 2 or 4 streams per vector by channel
// block), at stride 1 and 2, with borders, vertical dilation, runs that do not divide into the
// streams, and channel counts that leave 64-, 32-, 16- and partial blocks.
TEST_P(QU8Ops, DepthwiseRowRuns) {
  uint32_t seed = 1700;
  size_t i = 0;
  for (size_t C : {1, 5, 16, 24, 32, 48, 63, 64, 96, 144, 200}) {
    auto dw = [&](size_t w) {
      ++i;
      return DwconvTester()
          .input(1 + i % 2, 5, w, C)
          .kernel(3, 3)
          .zero_point(kZeroPoints[i % 5])
          .requant(kRequants[i % 6])
          .rng_seed(seed++);
    };
    for (size_t w : {9, 22, 31}) {
      dw(w).pads(1, 1, 1, 1).test(*table_, *scalar_);
      dw(w).stride(2, 2).pads(0, 0, 1, 1).test(*table_, *scalar_);
      dw(w).stride(2, 2).pads(1, 1, 1, 1).test(*table_, *scalar_);
      dw(w).stride(1, 2).pads(2, 0, 0, 3).test(*table_, *scalar_);
      dw(w).dilation(2, 1).pads(2, 1, 2, 1).test(*table_, *scalar_);
      dw(w).pads(0, 0, 0, 0).test(*table_, *scalar_);
      dw(w).stride(2, 1).pads(1, 1, 1, 1).test(*table_, *scalar_);
    }
  }
  // Kernels whose taps group by column other than 3x3 (3x2, 4x3, 4x1, 2x5), wide rows.
  for (const auto& [kh, kw] : std::vector<std::pair<size_t, size_t>>{{3, 2}, {4, 3}, {4, 1}, {2, 5}})
    for (size_t C : {16, 64, 96}) {
      ++i;
      DwconvTester()
          .input(1, 7, 23, C)
          .kernel(kh, kw)
          .pads(1, 1, 1, 1)
          .zero_point(kZeroPoints[i % 5])
          .requant(kRequants[i % 6])
          .rng_seed(seed++)
          .test(*table_, *scalar_);
    }
}

// The channel-block kernels' edges: channel counts around 16 and 32 (a partial last block), both
// strides, a pad on each side alone and all together, odd and even tap counts (an odd last tap
// pairs with a zero weight) up to the 64-tap limit of the short path and past it, dilation.
TEST_P(QU8Ops, DepthwiseBlockEdges) {
  uint32_t seed = 1500;
  size_t i = 0;
  for (size_t C : {1, 7, 15, 16, 17, 31, 33, 47, 144}) {
    auto dw = [&]() {
      ++i;
      return DwconvTester()
          .input(1 + i % 2, 7, 9, C)
          .zero_point(kZeroPoints[i % 5])
          .requant(kRequants[i % 6])
          .rng_seed(seed++);
    };
    for (size_t s : {1, 2}) {
      dw().kernel(3, 3).stride(s, s).pads(1, 0, 0, 0).test(*table_, *scalar_);
      dw().kernel(3, 3).stride(s, s).pads(0, 1, 0, 0).test(*table_, *scalar_);
      dw().kernel(3, 3).stride(s, s).pads(0, 0, 1, 0).test(*table_, *scalar_);
      dw().kernel(3, 3).stride(s, s).pads(0, 0, 0, 1).test(*table_, *scalar_);
      dw().kernel(3, 3).stride(s, s).pads(2, 1, 0, 3).test(*table_, *scalar_);
      dw().kernel(5, 5).stride(s, s).pads(2, 2, 2, 2).test(*table_, *scalar_);
      dw().kernel(3, 3).stride(s, s).dilation(2, 2).pads(2, 2, 2, 2).test(*table_, *scalar_);
    }
    dw().kernel(1, 3).pads(0, 1, 0, 1).test(*table_, *scalar_);
    dw().kernel(3, 1).stride(2, 1).pads(1, 0, 1, 0).test(*table_, *scalar_);
    dw().kernel(2, 2).pads(1, 1, 0, 0).test(*table_, *scalar_);
    dw().kernel(4, 4).stride(2, 2).pads(1, 1, 2, 2).test(*table_, *scalar_);
    dw().kernel(7, 9).pads(3, 4, 3, 4).test(*table_, *scalar_);   // 63 taps
    dw().kernel(8, 8).pads(3, 4, 4, 3).test(*table_, *scalar_);   // 64 taps
    dw().kernel(5, 13).pads(2, 6, 2, 6).test(*table_, *scalar_);  // 65 taps
  }
}

// Products and sums at their extremes: weights all -128, all 127 or alternating, inputs all 0 or
// all 255, input zero points 0 and 255 (so a - z_a spans -255..255), with and without pads.
TEST_P(QU8Ops, DepthwiseExtremeValues) {
  uint32_t seed = 1800;
  size_t i = 0;
  for (int wv : {-128, 127, int(DwconvTester::kWeightsAlternate)})
    for (int iv : {0, 255, int(DwconvTester::kRandom)})
      for (uint8_t z : {uint8_t{0}, uint8_t{255}})
        for (size_t C : {15, 33}) {
          ++i;
          DwconvTester()
              .input(1, 6, 6, C)
              .kernel(3, 3)
              .stride(1 + i % 2, 1 + i % 2)
              .pads(1, 1, 1, 1)
              .weights(wv)
              .inputs(iv)
              .zero_point(z)
              .requant(kRequants[i % 6])
              .bias(i % 3 != 0)
              .rng_seed(seed++)
              .test(*table_, *scalar_);
          DwconvTester()
              .input(1, 7, 7, C)
              .kernel(5, 5)
              .stride(1 + i % 2, 1 + i % 2)
              .pads(2, 0, 1, 2)
              .weights(wv)
              .inputs(iv)
              .zero_point(z)
              .requant(kRequants[(i + 3) % 6])
              .rng_seed(seed++)
              .test(*table_, *scalar_);
        }
}

// The channel-block sections exist only for kernels the block kernels run (at most 64 taps): a
// long kernel's packing stays its bias', weights, M and bias, not five times its weights.
TEST(QU8DwconvPack, LongKernelsPackNoChannelBlocks) {
  ConvGeometry g;
  g.C = g.K = g.groups = 40;
  g.KH = g.KW = 9;  // 81 taps
  EXPECT_EQ(q8::kern::qu8_dwconv_packed_bytes(g), g.C * (2 * sizeof(int32_t) + sizeof(float) + 81));
  g.KH = g.KW = 8;  // 64 taps: blocks of 16 and of 32 channels follow
  EXPECT_GT(q8::kern::qu8_dwconv_packed_bytes(g), g.C * (2 * sizeof(int32_t) + sizeof(float) + 64));
}

TEST_P(QU8Ops, DepthwiseZeroPointsAndRequant) {
  uint32_t seed = 2000;
  for (uint8_t z : kZeroPoints)
    for (const QU8Requant& r : kRequants)
      for (size_t C : {24, 37}) {
        DwconvTester()
            .input(1, 5, 5, C)
            .kernel(3, 3)
            .pads(1, 1, 1, 1)
            .zero_point(z)
            .requant(r)
            .rng_seed(seed++)
            .test(*table_, *scalar_);
        DwconvTester()
            .input(1, 8, 8, C)
            .kernel(5, 5)
            .stride(2, 2)
            .pads(2, 2, 2, 2)
            .zero_point(z)
            .requant(r)
            .rng_seed(seed++)
            .test(*table_, *scalar_);
      }
}

// Multipliers up to 2^22 (scales that pass validation can multiply to that): requantized values
// far below -32768 and past -2^31 before the clamp, which kernels that clamp late or leave the low
// clamp to saturating packs (AVX2 where out_min is 0) must still bring to out_min, and far above
// out_max. Every requantization, both signs of bias and every zero point.
TEST_P(QU8Ops, DepthwiseHugeMultipliers) {
  uint32_t seed = 2500;
  for (float scale : {1e3f, 1e6f, 1e9f})
    for (const QU8Requant& r : kRequants)
      for (size_t C : {16, 32, 47}) {
        const uint32_t s = seed++;
        DwconvTester()
            .input(1, 5, 6, C)
            .kernel(3, 3)
            .stride(1 + s % 2, 1)
            .pads(1, 1, 1, 1)
            .zero_point(kZeroPoints[s % 5])
            .requant(r)
            .multiplier_scale(scale)
            .rng_seed(s)
            .test(*table_, *scalar_);
      }
}

// MobileNetV2-sized layers (the shapes the benchmarks time), trimmed in height.
TEST_P(QU8Ops, DepthwiseMobileNetShapes) {
  uint32_t seed = 3000;
  struct S {
    size_t hw, c, s;
  };
  for (const S& s : {S{112, 32, 1}, S{112, 96, 2}, S{56, 144, 1}, S{56, 144, 2}, S{28, 192, 1}, S{14, 576, 1},
                     S{14, 576, 2}, S{7, 960, 1}}) {
    const uint8_t z = kZeroPoints[seed % 5];
    DwconvTester()
        .input(1, std::min<size_t>(s.hw, 9), s.hw, s.c)
        .kernel(3, 3)
        .stride(s.s, s.s)
        .pads(s.s == 1 ? 1 : 0, s.s == 1 ? 1 : 0, 1, 1)
        .zero_point(z)
        .requant(kRequants[2])
        .rng_seed(seed++)
        .test(*table_, *scalar_);
  }
}

// Kernels, pads, strides and dilations up to 2^20 (what the importer admits) over an 8x8 input.
// Every path must visit only a window's taps inside the input: these kernels have up to 2^20 taps
// and the first two cases ~130k output pixels, so a path that walked every tap of a pixel would
// run ~10^12 multiply-adds and never finish (ctest's timeout fails it), where visiting only the
// taps inside the input takes milliseconds.
TEST_P(QU8Ops, DepthwiseHugeWindows) {
  const size_t M = size_t{1} << 20;
  uint32_t seed = 3500;
  size_t i = 0;
  auto dw = [&](size_t C) {
    ++i;
    return DwconvTester().input(1, 8, 8, C).zero_point(kZeroPoints[i % 5]).requant(kRequants[i % 6]).rng_seed(seed++);
  };
  dw(9).kernel(1, M / 2).stride(1, 32).pads(0, M / 2, 0, M / 2).test(*table_, *scalar_);  // 8 x 16385 pixels
  dw(3).kernel(M / 2, 1).stride(32, 1).pads(M / 2, 1, M / 2 - 5, 2).test(*table_, *scalar_);
  dw(17).kernel(1024, 1024).dilation(1024, 1024).stride(M / 4, M / 4).pads(M, M, M, M).test(*table_, *scalar_);
  dw(5)
      .kernel(1024, 1024)
      .dilation(1023, 1025)
      .stride(M / 4 + 3, M / 4 - 1)
      .pads(M - 7, M / 2, M, M)
      .extra(1, 0)
      .test(*table_, *scalar_);
  for (size_t C : {1, 16, 33}) {
    dw(C).kernel(3, 3).stride(M / 2, M / 2).pads(M, M, M, M).test(*table_, *scalar_);  // windows in the pads
    dw(C).kernel(5, 5).stride(M / 2 - 1, 3).pads(M, 2, M, 2).test(*table_, *scalar_);
    dw(C).kernel(9, 9).stride(M / 2, M / 2).pads(M, M - 3, M, M).test(*table_, *scalar_);  // > 64 taps
    dw(C).kernel(9, 9).dilation(3, M / 8).stride(2, M / 4).pads(10, M, 12, M).test(*table_, *scalar_);
    dw(C).kernel(300, 2).stride(M / 2, 1).pads(M, 1, M, 0).extra(1, 1).test(*table_, *scalar_);
  }
}

// Random geometries: kernels of 1..9 taps per axis (up to 81, past one 64-tap list), strides,
// dilations, pads from none to 2^20, ceil-style extra outputs, channel counts around every
// vector width: every path against the naive formula and the scalar table.
TEST_P(QU8Ops, DepthwiseRandomGeometries) {
  std::mt19937 rng(3600);
  for (int rep = 0; rep < 150; ++rep) {
    const q8_test::AxisGeometry h = q8_test::random_axis(rng), w = q8_test::random_axis(rng);
    const size_t C = std::uniform_int_distribution<size_t>(1, 40)(rng);
    DwconvTester()
        .input(1 + rng() % 2, h.I, w.I, C)
        .kernel(h.K, w.K)
        .stride(h.S, w.S)
        .dilation(h.D, w.D)
        .pads(h.P, w.P, h.Pe, w.Pe)
        .extra(rng() % 4 == 0, rng() % 4 == 0)
        .zero_point(kZeroPoints[rng() % 5])
        .requant(kRequants[rng() % 6])
        .bias(rng() % 8 != 0)
        .rng_seed(rng())
        .test(*table_, *scalar_);
    if (HasFatalFailure()) return;
  }
}

// --- Pools ----------------------------------------------------------------------------------

struct PoolTester {
  PoolGeometry g;
  bool ceil_mode = false;
  QU8PoolParams params;
  uint32_t seed = 1;
  PoolTester& input(size_t n, size_t h, size_t w, size_t c) {
    g.N = n;
    g.IH = h;
    g.IW = w;
    g.C = c;
    return *this;
  }
  PoolTester& kernel(size_t kh, size_t kw) {
    g.KH = kh;
    g.KW = kw;
    return *this;
  }
  PoolTester& stride(size_t sh, size_t sw) {
    g.SH = sh;
    g.SW = sw;
    return *this;
  }
  PoolTester& dilation(size_t dh, size_t dw) {
    g.DH = dh;
    g.DW = dw;
    return *this;
  }
  PoolTester& pads(size_t t, size_t l, size_t b, size_t r) {
    g.PT = t;
    g.PL = l;
    g.PB = b;
    g.PR = r;
    return *this;
  }
  PoolTester& ceil() {
    ceil_mode = true;
    return *this;
  }
  PoolTester& rng_seed(uint32_t s) {
    seed = s;
    return *this;
  }
  // ONNX output size (ceil_mode: the last window must start inside the input or left pad).
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

  static std::string describe(const PoolGeometry& g) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "N%zu %zux%zux%zu -> %zux%zu k%zux%zu s%zu,%zu d%zu,%zu p%zu,%zu,%zu,%zu incl_pad=%d", g.N, g.IH,
                  g.IW, g.C, g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, g.DH, g.DW, g.PT, g.PL, g.PB, g.PR,
                  int(g.count_include_pad));
    return buf;
  }

  void test(const QU8Kernels& t, const QU8Kernels& scalar) const {
    ASSERT_GE(g.IH + g.PT + g.PB, g.DH * (g.KH - 1) + 1) << "no window fits: " << describe(g);
    ASSERT_GE(g.IW + g.PL + g.PR, g.DW * (g.KW - 1) + 1) << "no window fits: " << describe(g);
    std::mt19937 rng(seed);
    for (bool include_pad : {false, true}) {
      const PoolGeometry g = geometry(include_pad);
      const size_t C = g.C, P = g.N * g.OH * g.OW;
      const Guarded<uint8_t> in(random_u8(g.N * g.IH * g.IW * C, rng));
      QU8PoolParams pp;
      pp.in_zero_point = kZeroPoints[rng() % 5];
      pp.in_over_out = std::uniform_real_distribution<float>(0.3f, 3.0f)(rng);
      pp.out = kRequants[rng() % 6];

      // Naive, per axis (naive_window.h): the taps inside the input, and the divisor, which
      // counts the taps inside the input or, with count_include_pad, inside the padded input
      // [-PT, IH+PB) x [-PL, IW+PR) (ceil_mode's positions past the end pad do not count).
      std::vector<std::vector<AxisTap>> rows(g.OH), cols(g.OW);
      std::vector<int64_t> count_h(g.OH), count_w(g.OW);
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
      std::vector<uint8_t> want_max(P * C), want_avg(P * C);
      for (size_t n = 0; n < g.N; ++n)
        for (size_t oy = 0; oy < g.OH; ++oy)
          for (size_t ox = 0; ox < g.OW; ++ox)
            for (size_t c = 0; c < C; ++c) {
              int m = 0;  // a window with nothing inside gives 0
              int64_t sum = 0;
              const int64_t count = count_h[oy] * count_w[ox];
              for (const AxisTap& y : rows[oy])
                for (const AxisTap& x : cols[ox]) {
                  const int v = in[((n * g.IH + y.i) * g.IW + x.i) * C + c];
                  m = std::max(m, v);
                  sum += v - pp.in_zero_point;  // a counted pad tap holds z_in: adds 0
                }
              const size_t o = ((n * g.OH + oy) * g.OW + ox) * C + c;
              want_max[o] = static_cast<uint8_t>(m);
              // Empty window: mean 0, i.e. z_out (clamped).
              const float scale = count ? pp.in_over_out / static_cast<float>(count) : 0.0f;
              want_avg[o] = naive_requant(sum, scale, pp.out);
            }

      for (bool is_max : {true, false}) {
        if (is_max && include_pad) continue;  // count_include_pad is AveragePool only
        const std::string what = std::string(t.isa) + (is_max ? " maxpool " : " avgpool ") + describe(g) +
                                 " z_in=" + std::to_string(pp.in_zero_point);
        auto run = [&](const QU8Kernels& k, size_t pieces) {
          Guarded<uint8_t> out(P * C, 0xCC);
          const auto bounds = split(P, pieces);
          for (size_t i = 0; i + 1 < bounds.size(); ++i) {
            if (is_max)
              k.maxpool(g, in.data(), out.data(), bounds[i], bounds[i + 1]);
            else
              k.avgpool(g, in.data(), out.data(), bounds[i], bounds[i + 1], pp);
          }
          return out.vec();
        };
        const auto got = run(t, 1);
        const auto& want = is_max ? want_max : want_avg;
        for (size_t i = 0; i < got.size(); ++i) {
          ASSERT_EQ(int(got[i]), int(want[i])) << what << ": pixel " << i / C << " channel " << i % C;
        }
        if (&t != &scalar) {
          ASSERT_EQ(got, run(scalar, 1)) << what << " vs scalar";
        }
        ASSERT_EQ(got, run(t, 3)) << what << ": ranges split in 3 differ from the whole range";
      }
    }
  }
};

TEST_P(QU8Ops, Pools) {
  uint32_t seed = 4000;
  for (size_t C : {1, 5, 16, 17, 24, 31, 32, 33, 63, 64, 65, 100, 130, 200}) {
    PoolTester().input(1, 8, 8, C).kernel(3, 3).stride(2, 2).pads(1, 1, 1, 1).rng_seed(seed++).test(*table_, *scalar_);
    PoolTester().input(2, 6, 6, C).kernel(2, 2).stride(2, 2).rng_seed(seed++).test(*table_, *scalar_);
    PoolTester()
        .input(1, 7, 9, C)
        .kernel(2, 2)
        .stride(2, 2)
        .rng_seed(seed++)
        .test(*table_, *scalar_);  // odd sizes: last row/column unused
    PoolTester().input(1, 8, 8, C).kernel(3, 3).stride(2, 2).ceil().rng_seed(seed++).test(*table_, *scalar_);
    PoolTester()
        .input(1, 6, 7, C)
        .kernel(3, 3)
        .stride(2, 2)
        .pads(1, 1, 1, 1)
        .ceil()
        .rng_seed(seed++)
        .test(*table_, *scalar_);
  }
  const std::vector<PoolTester> cases = {
      PoolTester().input(1, 9, 9, 33).kernel(3, 3).stride(2, 2).pads(0, 1, 2, 0).ceil(),
      PoolTester().input(1, 7, 7, 1).kernel(3, 3).stride(1, 1).pads(1, 1, 1, 1),
      PoolTester().input(1, 9, 9, 20).kernel(3, 3).dilation(2, 2).pads(2, 1, 2, 1),
      PoolTester().input(1, 5, 6, 130).kernel(5, 5).stride(1, 1).pads(2, 2, 2, 2),
      PoolTester().input(1, 5, 5, 3).kernel(5, 5),
      PoolTester().input(1, 13, 13, 64).kernel(3, 3).stride(2, 2).ceil(),
      PoolTester().input(1, 12, 11, 37).kernel(9, 9).stride(2, 2).pads(4, 4, 4, 4).ceil(),    // 81 taps
      PoolTester().input(1, 20, 20, 70).kernel(10, 10).stride(3, 3).pads(2, 3, 4, 5).ceil(),  // 100 taps
      PoolTester().input(1, 4, 4, 19).kernel(2, 2).stride(1, 1).pads(2, 2, 2, 2),             // empty windows
      PoolTester().input(3, 7, 7, 96).kernel(7, 7),
  };
  for (const PoolTester& pc : cases) PoolTester(pc).rng_seed(seed++).test(*table_, *scalar_);
}

// Windows, strides and pads of up to 2^20 over an 8x8 input (the importer admits them), with
// dilations, ceil_mode and count_include_pad both ways. A path that walked a window's taps
// instead of only those inside the input would run 2^40 (10^12) steps per output pixel, and one
// that walked a whole row or column of taps (2^20 per pixel) would run ~10^11 steps on the 2^17
// pixels of the last cases: either never finishes, and ctest's timeout fails the test.
TEST_P(QU8Ops, PoolsHugeWindows) {
  const size_t M = size_t{1} << 20;
  uint32_t seed = 4500;
  for (size_t C : {1, 17, 40}) {
    const std::vector<PoolTester> cases = {
        PoolTester().input(1, 8, 8, C).kernel(M, M).stride(M, M).pads(M, M, M, M),
        PoolTester().input(1, 8, 8, C).kernel(M, M).stride(M, M).pads(M, M, M, M).ceil(),
        PoolTester().input(2, 8, 8, C).kernel(M, M).stride(M / 2, 3 * M / 4).pads(M - 1, 5, M, M - 3).ceil(),
        PoolTester().input(1, 8, 8, C).kernel(M / 4, M / 4).dilation(4, 3).stride(M / 2, M / 2).pads(M, M, M, M),
        PoolTester()
            .input(1, 8, 8, C)
            .kernel(M / 4, M / 4)
            .dilation(4, 3)
            .stride(M / 2 + 1, M / 2 - 1)
            .pads(M, M / 2, M, M)
            .ceil(),
        PoolTester().input(1, 8, 8, C).kernel(2, 2).dilation(M, M).stride(M / 2, M / 2).pads(M, M, M, M),
        PoolTester().input(1, 8, 8, C).kernel(3, 3).stride(M / 2, M / 2).pads(M, M, M, M),  // windows in the pads
        PoolTester().input(1, 8, 8, C).kernel(M, 3).stride(M / 2, 1).pads(M, 1, M, 1).ceil(),
    };
    for (const PoolTester& pc : cases) {
      PoolTester(pc).rng_seed(seed++).test(*table_, *scalar_);
      if (HasFatalFailure()) return;
    }
  }
  PoolTester().input(1, 8, 8, 3).kernel(M, M).stride(M, 16).pads(M, M, M, M).rng_seed(seed++).test(*table_, *scalar_);
  PoolTester()
      .input(1, 8, 8, 2)
      .kernel(M, M)
      .stride(16, M)
      .pads(M, M, M, M)
      .ceil()
      .rng_seed(seed++)
      .test(*table_, *scalar_);
}

// Random geometries: kernels of 1..9 taps per axis, strides, dilations, pads from none to 2^20,
// ceil_mode, count_include_pad both ways, channel counts around every vector width.
TEST_P(QU8Ops, PoolsRandomGeometries) {
  std::mt19937 rng(4600);
  for (int rep = 0; rep < 150; ++rep) {
    const q8_test::AxisGeometry h = q8_test::random_axis(rng), w = q8_test::random_axis(rng);
    PoolTester t;
    t.input(1 + rng() % 2, h.I, w.I, std::uniform_int_distribution<size_t>(1, 70)(rng))
        .kernel(h.K, w.K)
        .stride(h.S, w.S)
        .dilation(h.D, w.D)
        .pads(h.P, w.P, h.Pe, w.Pe)
        .rng_seed(rng());
    if (rng() % 2) t.ceil();
    t.test(*table_, *scalar_);
    if (HasFatalFailure()) return;
  }
}

TEST_P(QU8Ops, GlobalAvgPool) {
  std::mt19937 rng(5000);
  struct S {
    size_t hw, c;
  };
  for (const S& s : {S{1, 1}, S{1, 1280}, S{2, 3}, S{7, 17}, S{49, 64}, S{49, 100}, S{49, 1280}, S{49, 1024},
                     S{196, 65}, S{256, 33}, S{300, 16}, S{3136, 64}, S{3136, 3}, S{1000, 130}, S{64, 2048}})
    for (int rep = 0; rep < 2; ++rep) {
      const size_t N = 3, HW = s.hw, C = s.c;
      const Guarded<uint8_t> in(random_u8(N * HW * C, rng));
      QU8PoolParams pp;
      pp.in_zero_point = kZeroPoints[rng() % 5];
      pp.in_over_out = std::uniform_real_distribution<float>(0.3f, 3.0f)(rng);
      pp.out = kRequants[rng() % 6];
      std::vector<uint8_t> want(N * C);
      for (size_t n = 0; n < N; ++n)
        for (size_t c = 0; c < C; ++c) {
          int64_t sum = 0;
          for (size_t i = 0; i < HW; ++i) sum += int64_t(in[(n * HW + i) * C + c]) - pp.in_zero_point;
          want[n * C + c] = naive_requant(sum, pp.in_over_out / static_cast<float>(HW), pp.out);
        }
      const std::string what = std::string(table_->isa) + " global_avgpool HW" + std::to_string(HW) + " C" +
                               std::to_string(C) + " z_in=" + std::to_string(pp.in_zero_point);
      Guarded<uint8_t> out(N * C, 0xCC);
      table_->global_avgpool(HW, C, in.data(), out.data(), 1, N, pp);
      for (size_t c = 0; c < C; ++c) ASSERT_EQ(out[c], 0xCC) << what << ": wrote outside [n0, n1)";
      table_->global_avgpool(HW, C, in.data(), out.data(), 0, 1, pp);
      for (size_t i = 0; i < N * C; ++i) ASSERT_EQ(int(out[i]), int(want[i])) << what << " at " << i;
      if (table_ != scalar_) {
        Guarded<uint8_t> ref(N * C, 0xCC);
        scalar_->global_avgpool(HW, C, in.data(), ref.data(), 0, N, pp);
        ASSERT_EQ(out.vec(), ref.vec()) << what << " vs scalar";
      }
    }
}

// --- Add ------------------------------------------------------------------------------------

// x = (float)(a - z_a) * Ma and y likewise are stored through volatiles, so the naive sum x + y
// is three roundings even where the compiler may contract.
uint8_t naive_add(uint8_t a, uint8_t b, const QU8AddParams& p) {
  volatile float x = static_cast<float>(int(a) - p.a_zero_point) * p.a_multiplier;
  volatile float y = static_cast<float>(int(b) - p.b_zero_point) * p.b_multiplier;
  const float s = x + y;
  const double q = std::nearbyint(static_cast<double>(s)) + p.out.out_zero_point;
  return static_cast<uint8_t>(std::min<double>(std::max<double>(q, p.out.out_min), p.out.out_max));
}

void check_add(const QU8Kernels& t, const QU8Kernels& scalar, size_t n, const std::vector<uint8_t>& a,
               const std::vector<uint8_t>& b, const QU8AddParams& p, const std::string& what) {
  const Guarded<uint8_t> ga(a), gb(b);
  Guarded<uint8_t> out(n, 0xCC);
  t.add(n, ga.data(), gb.data(), out.data(), p);
  for (size_t i = 0; i < n; ++i)
    ASSERT_EQ(int(out[i]), int(naive_add(a[i], b[i], p)))
        << what << " at " << i << " (a=" << int(a[i]) << " b=" << int(b[i]) << ")";
  if (&t != &scalar) {
    Guarded<uint8_t> ref(n, 0xCC);
    scalar.add(n, ga.data(), gb.data(), ref.data(), p);
    ASSERT_EQ(out.vec(), ref.vec()) << what << " vs scalar";
  }
  // In place (out aliases a), as the engine may run it.
  Guarded<uint8_t> inplace(a);
  t.add(n, inplace.data(), gb.data(), inplace.data(), p);
  ASSERT_EQ(inplace.vec(), out.vec()) << what << " in place";
}

TEST_P(QU8Ops, Add) {
  std::mt19937 rng(6000);
  std::uniform_real_distribution<float> dm(0.05f, 2.0f);
  for (size_t n = 1; n <= 300; ++n) {
    QU8AddParams p;
    p.a_zero_point = kZeroPoints[n % 5];
    p.b_zero_point = kZeroPoints[(n / 5) % 5];
    p.a_multiplier = dm(rng);
    p.b_multiplier = dm(rng);
    p.out = kRequants[n % 6];
    check_add(*table_, *scalar_, n, random_u8(n, rng), random_u8(n, rng), p,
              std::string(table_->isa) + " add n=" + std::to_string(n));
  }
}

// Multipliers that make x + y land exactly on k + 0.5 for many (a, b): round half to even must
// agree on every path (and ties are really hit).
TEST_P(QU8Ops, AddTies) {
  const float mults[][2] = {{0.5f, 0.25f}, {0.5f, 0.5f}, {1.5f, 0.5f}, {0.25f, 0.75f}, {0.125f, 0.375f}};
  std::vector<uint8_t> a, b;
  for (int i = 0; i < 256; ++i)
    for (int j = 0; j < 256; j += 5) a.push_back(uint8_t(i)), b.push_back(uint8_t(j));
  const size_t n = a.size();
  for (const auto& m : mults)
    for (uint8_t za : {0, 128, 255})
      for (uint8_t zb : {0, 1, 127}) {
        QU8AddParams p;
        p.a_zero_point = za, p.b_zero_point = zb, p.a_multiplier = m[0], p.b_multiplier = m[1];
        p.out = {128, 0, 255};
        size_t ties = 0;
        for (size_t i = 0; i < n; ++i) {
          const float s = float(int(a[i]) - za) * m[0] + float(int(b[i]) - zb) * m[1];  // exact here
          ties += s - std::floor(s) == 0.5f;
        }
        ASSERT_GT(ties, 100u);
        check_add(*table_, *scalar_, n, a, b, p,
                  std::string(table_->isa) + " add ties Ma=" + std::to_string(m[0]) + " Mb=" + std::to_string(m[1]) +
                      " za=" + std::to_string(za) + " zb=" + std::to_string(zb));
      }
}

// Every (a, b) pair under multipliers whose products are inexact: the test counts the pairs where
// a fused x*Ma + y (one rounding) would round to another integer than qu8.h's three roundings,
// and requires such pairs to exist, so a path that contracts into an FMA fails here.
TEST_P(QU8Ops, AddNotFused) {
  std::vector<uint8_t> a, b;
  for (int i = 0; i < 256; ++i)
    for (int j = 0; j < 256; ++j) a.push_back(uint8_t(i)), b.push_back(uint8_t(j));
  const size_t n = a.size();
  const float mults[][2] = {{0.1f, 1.0f}, {0.3f, 0.7f}, {1.0f / 3.0f, 0.5f}, {0.0123f, 0.987f}, {2.2f, 1.1f}};
  size_t discriminating = 0;
  for (const auto& m : mults)
    for (uint8_t z : {0, 128}) {
      QU8AddParams p;
      p.a_zero_point = z, p.b_zero_point = 255 - z, p.a_multiplier = m[0], p.b_multiplier = m[1];
      p.out = {128, 0, 255};
      for (size_t i = 0; i < n; ++i) {
        const double fused = double(int(a[i]) - p.a_zero_point) * m[0] +
                             double(static_cast<float>(int(b[i]) - p.b_zero_point) * m[1]);  // exact
        const double q = std::nearbyint(double(static_cast<float>(fused))) + 128;
        discriminating += std::min(std::max(q, 0.0), 255.0) != naive_add(a[i], b[i], p);
      }
      check_add(*table_, *scalar_, n, a, b, p,
                std::string(table_->isa) + " add (fusion) Ma=" + std::to_string(m[0]) + " Mb=" + std::to_string(m[1]) +
                    " z=" + std::to_string(z));
    }
  EXPECT_GT(discriminating, 0u);
}

// Multipliers up to the 2^24 the engine accepts (plan.cpp's checked_multiplier): sums reach
// +-2^32, past where a float converts to int32, on both sides, under every clamp.
TEST_P(QU8Ops, AddLargeSums) {
  std::vector<uint8_t> a, b;
  for (int i = 0; i < 256; i += 3)
    for (int j = 0; j < 256; j += 7) a.push_back(uint8_t(i)), b.push_back(uint8_t(j));
  const size_t n = a.size();
  const float mults[][2] = {{16777216.f, 16777216.f}, {16777216.f, 0.5f}, {3.0e6f, 1.0e-3f}, {1.0e-3f, 9.0e6f}};
  for (const auto& m : mults)
    for (const QU8Requant& r : kRequants) {
      QU8AddParams p;
      p.a_zero_point = 128, p.b_zero_point = 3, p.a_multiplier = m[0], p.b_multiplier = m[1];
      p.out = r;
      check_add(*table_, *scalar_, n, a, b, p,
                std::string(table_->isa) + " add (large) Ma=" + std::to_string(m[0]) + " Mb=" + std::to_string(m[1]) +
                    " z_out=" + std::to_string(r.out_zero_point));
    }
}

// --- Mul ------------------------------------------------------------------------------------

// ONNX Runtime's QLinearMul: (float)(a - z_a) * (float)(b - z_b) (exact: |product| < 2^24) times
// M = s_a * s_b / s_out, one rounding; round half to even, + z_out, saturated.
uint8_t naive_mul(uint8_t a, uint8_t b, const QU8MulParams& p) {
  const float prod = static_cast<float>(int(a) - p.a_zero_point) * static_cast<float>(int(b) - p.b_zero_point);
  const float x = prod * p.multiplier;
  const double q = std::nearbyint(static_cast<double>(x)) + p.out.out_zero_point;
  return static_cast<uint8_t>(std::min<double>(std::max<double>(q, p.out.out_min), p.out.out_max));
}

// Rows of n with the row operand on either side (strides 0), as the engine runs squeeze-excitation.
void check_mul(const QU8Kernels& t, const QU8Kernels& scalar, size_t rows, size_t n, bool row_right,
               const std::vector<uint8_t>& big, const std::vector<uint8_t>& row, const QU8MulParams& p,
               const std::string& what) {
  const Guarded<uint8_t> gbig(big), grow(row);
  Guarded<uint8_t> out(rows * n, 0xCC), ref(rows * n, 0xCC);
  auto run = [&](const QU8Kernels& k, uint8_t* o) {
    if (row_right)
      k.mul_rows(rows, n, gbig.data(), n, grow.data(), 0, o, p);
    else
      k.mul_rows(rows, n, grow.data(), 0, gbig.data(), n, o, p);
  };
  run(t, out.data());
  for (size_t r = 0; r < rows; ++r)
    for (size_t i = 0; i < n; ++i) {
      const uint8_t x = big[r * n + i], y = row[i];
      ASSERT_EQ(int(out[r * n + i]), int(row_right ? naive_mul(x, y, p) : naive_mul(y, x, p)))
          << what << " at " << r << "," << i;
    }
  if (&t != &scalar) {
    run(scalar, ref.data());
    ASSERT_EQ(out.vec(), ref.vec()) << what << " vs scalar";
  }
}

TEST_P(QU8Ops, Mul) {
  std::mt19937 rng(6100);
  std::uniform_real_distribution<float> dm(1e-4f, 0.05f);
  for (size_t n = 1; n <= 150; ++n)
    for (size_t rows : {1, 3}) {
      QU8MulParams p;
      p.a_zero_point = kZeroPoints[n % 5];
      p.b_zero_point = kZeroPoints[(n / 5) % 5];
      p.multiplier = dm(rng);
      p.out = kRequants[n % 6];
      const std::string what =
          std::string(table_->isa) + " mul rows=" + std::to_string(rows) + " n=" + std::to_string(n);
      check_mul(*table_, *scalar_, rows, n, true, random_u8(rows * n, rng), random_u8(n, rng), p, what);
      check_mul(*table_, *scalar_, rows, n, false, random_u8(rows * n, rng), random_u8(n, rng), p, what + " row left");
    }
}

// Every (a, b) pair with multipliers that put many products exactly on k + 0.5: round half to
// even must agree on every path.
TEST_P(QU8Ops, MulEveryPairAndTies) {
  std::vector<uint8_t> a, b;
  for (int i = 0; i < 256; ++i)
    for (int j = 0; j < 256; ++j) a.push_back(uint8_t(i)), b.push_back(uint8_t(j));
  for (float m : {0.5f, 0.25f, 1.0f / 128, 0.0123f, 3.1e-5f})
    for (uint8_t z : {0, 128, 255}) {
      QU8MulParams p;
      p.a_zero_point = z, p.b_zero_point = 255 - z, p.multiplier = m;
      p.out = {128, 0, 255};
      check_mul(*table_, *scalar_, 1, a.size(), true, a, b, p,
                std::string(table_->isa) + " mul pairs M=" + std::to_string(m) + " z=" + std::to_string(z));
    }
}

// Multipliers up to the engine's 2^24: products times M pass int32 on both sides, under every clamp.
TEST_P(QU8Ops, MulLargeProducts) {
  std::vector<uint8_t> a, b;
  for (int i = 0; i < 256; i += 3)
    for (int j = 0; j < 256; j += 5) a.push_back(uint8_t(i)), b.push_back(uint8_t(j));
  for (float m : {16777216.f, 40000.f, 1.5f})
    for (const QU8Requant& r : kRequants) {
      QU8MulParams p;
      p.a_zero_point = 100, p.b_zero_point = 7, p.multiplier = m;
      p.out = r;
      check_mul(*table_, *scalar_, 1, a.size(), true, a, b, p,
                std::string(table_->isa) + " mul large M=" + std::to_string(m) +
                    " z_out=" + std::to_string(r.out_zero_point));
    }
}

// --- Quantize / dequantize --------------------------------------------------------------------

// t = x / s in float; NaN quantizes to 0 (qu8.h: it becomes -z before rounding); otherwise
// round half to even, add z, saturate to [0, 255] (clamping after rounding, the other way round
// from the kernels).
uint8_t naive_quantize(float x, float s, int32_t z) {
  const float t = x / s;
  if (std::isnan(t)) return 0;
  const double q = std::nearbyint(static_cast<double>(t)) + z;
  return static_cast<uint8_t>(std::min(std::max(q, 0.0), 255.0));
}

TEST_P(QU8Ops, Quantize) {
  std::mt19937 rng(7000);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float fmax = std::numeric_limits<float>::max(), tiny = std::numeric_limits<float>::denorm_min();
  const std::vector<float> specials = {
      inf,        -inf,    nan,    -nan,          fmax,           -fmax,        1e30f,       -1e30f,
      3e9f,       -3e9f,   0.0f,   -0.0f,         tiny,           -tiny,        0.5f,        -0.5f,
      1.5f,       -1.5f,   2.5f,   -2.5f,         3.5f,           126.5f,       127.5f,      128.5f,
      -127.5f,    -128.5f, 254.5f, 255.5f,        -254.5f,        -255.5f,      0.49999997f, 0.50000006f,
      2.4999998f, 1.25f,   -1.25f, 2147483520.0f, -2147483648.0f, 4294967296.0f};
  for (float scale : {1.0f, 0.5f, 0.25f, 0.1f, 3.0f, 1e-30f, 1e30f, 0.0078125f})
    for (int32_t z : {0, 1, 127, 128, 255})
      for (size_t n : {size_t(1), size_t(7), size_t(8), size_t(15), size_t(16), size_t(17), size_t(33), size_t(63),
                       size_t(64), size_t(65), size_t(100), size_t(257)}) {
        std::vector<float> x(n);
        std::uniform_real_distribution<float> d(-300.0f * scale, 300.0f * scale);
        for (size_t i = 0; i < n; ++i) x[i] = (rng() % 3 == 0) ? specials[rng() % specials.size()] * scale : d(rng);
        // Every special (scaled so x / s is the special) appears for the larger n.
        for (size_t i = 0; i < specials.size() && n >= 64 && i < n; ++i) x[i] = specials[i] * scale;
        const std::string what = std::string(table_->isa) + " quantize n=" + std::to_string(n) +
                                 " s=" + std::to_string(scale) + " z=" + std::to_string(z);
        const Guarded<float> gx(x);
        Guarded<uint8_t> q(n, 0xCC);
        table_->quantize(n, gx.data(), q.data(), scale, z);
        for (size_t i = 0; i < n; ++i)
          ASSERT_EQ(int(q[i]), int(naive_quantize(x[i], scale, z))) << what << " at " << i << " x=" << x[i];
        if (table_ != scalar_) {
          Guarded<uint8_t> ref(n, 0xCC);
          scalar_->quantize(n, gx.data(), ref.data(), scale, z);
          ASSERT_EQ(q.vec(), ref.vec()) << what << " vs scalar";
        }
      }
  // Exact ties: x / s = k + 0.5 for every k in range, both signs around z.
  for (int32_t z : {0, 1, 127, 128, 255}) {
    std::vector<float> x;
    for (int k = -300; k <= 300; ++k) x.push_back((float(k) + 0.5f) * 0.25f);
    const Guarded<float> gx(x);
    Guarded<uint8_t> q(x.size(), 0xCC);
    table_->quantize(x.size(), gx.data(), q.data(), 0.25f, z);
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(int(q[i]), int(naive_quantize(x[i], 0.25f, z))) << table_->isa << " tie x=" << x[i] << " z=" << z;
  }
}

// Float NCHW quantized straight into uint8 NHWC: the bytes of quantize-then-transpose (the naive
// quantize, pixel p channel c from plane c), for small and large C (past the kernel's buffer), an
// image size that is not a multiple of its blocks, batches, and pixel ranges split unevenly.
TEST_P(QU8Ops, QuantizeNchwToNhwc) {
  std::mt19937 rng(7500);
  for (size_t C : {1, 2, 3, 4, 5, 16, 64, 3000, 9000})
    for (size_t HW : {1, 7, 16, 17, 33, 100, 3001}) {
      if (C * HW > 3000000) continue;
      const size_t N = C > 100 ? 1 : 2, P = N * HW;
      const float scale = std::uniform_real_distribution<float>(0.005f, 0.1f)(rng);
      const int32_t z = kZeroPoints[rng() % 5];
      std::vector<float> x(N * C * HW);
      std::uniform_real_distribution<float> d(-300.0f * scale, 300.0f * scale);
      for (float& v : x) v = d(rng);
      if (x.size() > 4) x[1] = std::numeric_limits<float>::quiet_NaN(), x[3] = 2.5f * scale;
      const Guarded<float> gx(x);
      const std::string what =
          std::string(table_->isa) + " quantize NCHW->NHWC C=" + std::to_string(C) + " HW=" + std::to_string(HW);
      for (size_t pieces : {1, 3}) {
        Guarded<uint8_t> q(P * C, 0xCC);
        for (size_t i = 0; i < pieces; ++i)
          q8::kern::qu8_quantize_nchw_to_nhwc(*table_, C, HW, gx.data(), q.data(), scale, z, P * i / pieces,
                                              P * (i + 1) / pieces);
        for (size_t p = 0; p < P; ++p)
          for (size_t c = 0; c < C; ++c) {
            const float v = x[(p / HW) * C * HW + c * HW + p % HW];
            ASSERT_EQ(int(q[p * C + c]), int(naive_quantize(v, scale, z)))
                << what << " pieces=" << pieces << " pixel " << p << " channel " << c;
          }
      }
    }
}

TEST_P(QU8Ops, Dequantize) {
  std::mt19937 rng(8000);
  for (float scale : {1.0f, 0.1f, 0.0039215689f, 3.7e-5f, 12.5f})
    for (int32_t z : {0, 1, 127, 128, 255})
      for (size_t n = 1; n <= 70; n += (n < 20 ? 1 : 7)) {
        const auto qv = random_u8(n, rng);
        const Guarded<uint8_t> q(qv);
        Guarded<float> y(n, -1234.0f);
        table_->dequantize(n, q.data(), y.data(), scale, z);
        for (size_t i = 0; i < n; ++i) {
          const float want = static_cast<float>(int(qv[i]) - z) * scale;
          ASSERT_EQ(std::memcmp(&y[i], &want, sizeof want), 0)
              << table_->isa << " dequantize n=" << n << " at " << i << ": " << y[i] << " vs " << want;
        }
      }
}

// A unary op in int8: out[i] = table[in[i]], every byte value, lengths around vector widths, in
// place as the engine may run it; the bytes of the naive gather and of the scalar table.
void check_lookup(decltype(QU8Kernels::lookup) lookup, const QU8Kernels& scalar, const std::string& what,
                  uint32_t seed) {
  std::mt19937 rng(seed);
  for (size_t n : {1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 1000, 4099}) {
    const auto table = random_u8(256, rng);
    auto in = random_u8(n, rng);
    for (size_t i = 0; i < n && i < 256; ++i) in[i] = static_cast<uint8_t>(i);  // every code
    const Guarded<uint8_t> x(in);
    Guarded<uint8_t> y(n, 0x5a), ref(n, 0x5a);
    lookup(n, x.data(), y.data(), table.data());
    scalar.lookup(n, x.data(), ref.data(), table.data());
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(int(y[i]), int(table[in[i]])) << what << " lookup n=" << n << " at " << i;
      ASSERT_EQ(int(y[i]), int(ref[i])) << what << " lookup vs scalar n=" << n << " at " << i;
    }
    std::vector<uint8_t> inplace = in;
    lookup(n, inplace.data(), inplace.data(), table.data());
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(int(inplace[i]), int(table[in[i]])) << what << " in place " << i;
  }
}

TEST_P(QU8Ops, Lookup) { check_lookup(table_->lookup, *scalar_, table_->isa, 8100); }

// The VBMI lookup, which no table holds (the engine swaps it into the AVX-512 family's tables on
// CPUs with VBMI).
TEST(QU8OpsVbmi, Lookup) {
#if defined(Q8_ARCH_X86)
  if (!q8_test::cpu_supports("avx512vbmi")) GTEST_SKIP() << "this CPU cannot run avx512vbmi";
  using q8::kern::qu8_lookup__avx512vbmi;
  check_lookup(Q8_KERNEL(qu8_lookup__avx512vbmi), *q8::kern::qu8_kernels_scalar(), "avx512vbmi", 8101);
#else
  GTEST_SKIP() << "avx512vbmi is an x86 kernel";
#endif
}

INSTANTIATE_TEST_SUITE_P(Isa, QU8Ops,
                         ::testing::Values("scalar", "avx2", "avxvnni", "avx512", "avx512vnni", "amx", "neon",
                                           "neondot", "neoni8mm"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// Every table provides every entry point, and the ones this CPU can run report their ISA.
TEST(QU8OpsTables, Complete) {
  for (const char* isa : {"scalar", "avx2", "avxvnni", "avx512", "avx512vnni", "neon", "neondot", "neoni8mm"}) {
    if (!q8_test::cpu_supports(isa)) continue;
    const QU8Kernels* t = q8_test::qu8_table_for(isa);
    if (!t) continue;
    EXPECT_STREQ(t->isa, isa);
    EXPECT_GE(t->mr, 1u) << isa;
    EXPECT_GE(t->nr, 1u) << isa;
    EXPECT_TRUE(t->igemm && t->gemm && t->dwconv && t->maxpool && t->avgpool && t->global_avgpool && t->add &&
                t->quantize && t->dequantize && t->mul_rows && t->lookup)
        << isa;
  }
}

}  // namespace
