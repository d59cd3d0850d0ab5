// Byte-for-byte testers of the int8 GEMM / indirect GEMM micro-kernels and of convolution through
// them (shared by test_qu8_gemm.cpp, which runs them on every table, and test_qu8_amx.cpp).
//
// XNNPACK-style testers: a builder describes one case (sizes, strides, zero points, clamps,
// multipliers, value ranges), runs it on one table and compares EVERY output byte with ASSERT_EQ
// against (1) a naive reference written here from the math (int64 sum of (a - z_a) * w + bias,
// then qu8.h's float requantization) and (2) the scalar table (the oracle) on the same problem.
// Inputs end at a PROT_NONE guard page, exactly after the bytes a kernel may read (kc rounded up
// to the table's kr: qu8.h allows up to kr - 1 bytes of over-read), and outputs end exactly at one, so any overrun
// faults.
#pragma once

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/conv_rows.h"
#include "kernels/qu8.h"

namespace q8_test {

using q8::kern::ConvGeometry;
using q8::kern::QU8Kernels;
using q8::kern::QU8Requant;

// Bytes a table's kernels read of a row of n channels: whole K groups of kr (qu8.h).
inline size_t round_up(size_t n, size_t kr) { return (n + kr - 1) / kr * kr; }

// `size` bytes that end exactly where a PROT_NONE page begins.
class GuardedBuffer {
 public:
  explicit GuardedBuffer(size_t size) : size_(size) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t pages = std::max<size_t>(1, (size + page - 1) / page);
    total_ = (pages + 1) * page;
    void* p = mmap(nullptr, total_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
    base_ = static_cast<uint8_t*>(p);
    if (mprotect(base_ + pages * page, page, PROT_NONE) != 0) throw std::runtime_error("mprotect");
    data_ = base_ + pages * page - size;
  }
  ~GuardedBuffer() { munmap(base_, total_); }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;
  uint8_t* data() { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* base_ = nullptr;
  uint8_t* data_ = nullptr;
  size_t size_ = 0, total_ = 0;
};

// qu8.h's requantization, written from the formula. The true accumulator must fit in int32.
inline uint8_t requantize(int64_t acc, float m, const QU8Requant& p) {
  EXPECT_TRUE(acc >= INT32_MIN && acc <= INT32_MAX) << "test case overflows int32: " << acc;
  float x = static_cast<float>(static_cast<int32_t>(acc)) * m;
  x = std::max(x, static_cast<float>(int32_t{p.out_min} - p.out_zero_point));
  x = std::min(x, static_cast<float>(int32_t{p.out_max} - p.out_zero_point));
  return static_cast<uint8_t>(static_cast<int32_t>(std::nearbyintf(x)) + p.out_zero_point);
}

inline std::vector<uint8_t> packed_storage(size_t bytes) { return std::vector<uint8_t>(bytes + 64); }
inline void* aligned64(std::vector<uint8_t>& v) {
  return reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t{63});
}

// Per-channel multipliers, log-uniform in [lo, hi].
inline std::vector<float> multipliers(size_t n, double lo, double hi, std::mt19937& rng) {
  std::uniform_real_distribution<double> d(std::log(lo), std::log(hi));
  std::vector<float> m(n);
  for (float& x : m) x = static_cast<float>(std::exp(d(rng)));
  return m;
}

// ---- GEMM / IGEMM tester ---------------------------------------------------------------------
//
// ks == 0: dense GEMM (rows a_stride apart). ks >= 1: indirect GEMM with ks taps per output row,
// each tap a pointer to a row of k bytes (distinct rows, in scrambled order) or, with probability
// zero_fraction, to the zero row (all z_a). m <= mr and n <= nr call the micro-kernel directly
// unless driver(true); larger cases go through qu8_gemm_run / qu8_conv_run.
class GemmTester {
 public:
  GemmTester& m(size_t v) {
    m_ = v;
    return *this;
  }
  GemmTester& n(size_t v) {
    n_ = v;
    return *this;
  }
  GemmTester& k(size_t v) {
    k_ = v;
    return *this;
  }
  GemmTester& ks(size_t v) {
    ks_ = v;
    return *this;
  }
  GemmTester& a_stride(size_t v) {
    a_stride_ = v;
    return *this;
  }
  GemmTester& c_stride(size_t v) {
    c_stride_ = v;
    return *this;
  }
  GemmTester& a_zero_point(uint8_t v) {
    za_ = v;
    return *this;
  }
  GemmTester& out_zero_point(uint8_t v) {
    zo_ = v;
    return *this;
  }
  GemmTester& qmin(uint8_t v) {
    qmin_ = v;
    return *this;
  }
  GemmTester& qmax(uint8_t v) {
    qmax_ = v;
    return *this;
  }
  GemmTester& a_range(uint8_t lo, uint8_t hi) {
    amin_ = lo;
    amax_ = hi;
    return *this;
  }
  GemmTester& w_range(int8_t lo, int8_t hi) {
    wmin_ = lo;
    wmax_ = hi;
    return *this;
  }
  GemmTester& multiplier_range(double lo, double hi) {
    mlo_ = lo;
    mhi_ = hi;
    return *this;
  }
  GemmTester& bias(bool v) {
    bias_ = v;
    return *this;
  }
  GemmTester& zero_fraction(double v) {
    zero_fraction_ = v;
    return *this;
  }
  GemmTester& transpose_b(bool v) {
    transpose_b_ = v;
    return *this;
  }
  // igemm rows in order (row i of tap t at a + (i * ks + t) * a_stride: every tap's rows evenly
  // spaced, as for consecutive output pixels of a conv) instead of scrambled.
  GemmTester& in_order(bool v) {
    in_order_ = v;
    return *this;
  }
  GemmTester& driver(bool v) {
    driver_ = v;
    return *this;
  }
  GemmTester& seed(uint32_t v) {
    seed_ = v;
    return *this;
  }

  std::string describe() const {
    std::ostringstream s;
    s << "m=" << m_ << " n=" << n_ << " k=" << k_ << " ks=" << ks_ << " a_stride=" << a_stride()
      << " c_stride=" << c_stride() << " z_a=" << int(za_) << " z_out=" << int(zo_) << " q=[" << int(qmin_) << ","
      << int(qmax_) << "] seed=" << seed_;
    return s.str();
  }

  void test(const QU8Kernels& kern) const {
    SCOPED_TRACE(std::string(kern.isa) + " " + describe());
    std::mt19937 rng(seed_);
    const size_t taps = std::max<size_t>(ks_, 1), rows = m_ * taps, as = a_stride();
    const size_t cs = c_stride();

    // Activation rows (garbage between rows and in the 0-3 bytes of read slack after k).
    GuardedBuffer a((rows - 1) * as + round_up(k_, kern.kr));
    std::uniform_int_distribution<int> byte(0, 255), av(amin_, amax_), wv(wmin_, wmax_);
    for (size_t i = 0; i < a.size(); ++i) a.data()[i] = static_cast<uint8_t>(byte(rng));
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < k_; ++c) a.data()[r * as + c] = static_cast<uint8_t>(av(rng));
    GuardedBuffer zero(round_up(k_, kern.kr));
    for (size_t i = 0; i < zero.size(); ++i) zero.data()[i] = i < k_ ? za_ : static_cast<uint8_t>(byte(rng));

    // Weights w[n][c][t] (ONNX [K][Cg][1][ks]), bias, multipliers.
    std::vector<int8_t> w(n_ * k_ * taps);
    for (int8_t& x : w) x = static_cast<int8_t>(wv(rng));
    std::vector<int32_t> bias(n_, 0);
    std::uniform_int_distribution<int32_t> bd(-20000, 20000);
    if (bias_)
      for (int32_t& b : bias) b = bd(rng);
    double lo = mlo_, hi = mhi_;
    if (lo <= 0) {  // spread typical outputs over the whole range, with per-channel variation
      const double typical = std::sqrt(double(k_ * taps)) * 70.0 * 70.0 + 1.0;
      lo = 30.0 / typical;
      hi = 240.0 / typical;
    }
    const std::vector<float> mult = multipliers(n_, lo, hi, rng);

    // Indirection (igemm): rows in a scrambled order, some taps at the zero row.
    std::vector<size_t> order(rows);
    for (size_t i = 0; i < rows; ++i) order[i] = i;
    if (!in_order_) std::shuffle(order.begin(), order.end(), rng);
    std::bernoulli_distribution is_zero(zero_fraction_);
    std::vector<const uint8_t*> ind(rows);
    for (size_t i = 0; i < rows; ++i) ind[i] = is_zero(rng) ? zero.data() : a.data() + order[i] * as;

    const QU8Requant p{zo_, qmin_, qmax_};

    // Naive reference.
    std::vector<uint8_t> want(m_ * n_);
    for (size_t i = 0; i < m_; ++i)
      for (size_t j = 0; j < n_; ++j) {
        int64_t acc = bias[j];
        for (size_t t = 0; t < taps; ++t) {
          const uint8_t* row = ks_ ? ind[i * taps + t] : a.data() + i * as;
          for (size_t c = 0; c < k_; ++c) acc += (int64_t{row[c]} - za_) * int64_t{w[(j * k_ + c) * taps + t]};
        }
        want[i * n_ + j] = requantize(acc, mult[j], p);
      }

    const std::vector<uint8_t> got = run(kern, a.data(), ind, w, bias, mult, p, cs);
    for (size_t i = 0; i < m_; ++i)
      for (size_t j = 0; j < n_; ++j)
        ASSERT_EQ(int(got[i * n_ + j]), int(want[i * n_ + j])) << "vs naive at row " << i << " col " << j;

    const QU8Kernels* scalar = q8::kern::qu8_kernels_scalar();
    if (&kern != scalar) {
      const std::vector<uint8_t> ref = run(*scalar, a.data(), ind, w, bias, mult, p, cs);
      for (size_t i = 0; i < m_ * n_; ++i)
        ASSERT_EQ(int(got[i]), int(ref[i])) << "vs scalar at row " << i / n_ << " col " << i % n_;
    }
  }

 private:
  size_t a_stride() const { return a_stride_ ? a_stride_ : k_; }
  size_t c_stride() const { return c_stride_ ? c_stride_ : n_; }

  // Packs for kern.nr, runs, checks the bytes between output rows, returns m x n outputs.
  std::vector<uint8_t> run(const QU8Kernels& kern, const uint8_t* a, const std::vector<const uint8_t*>& ind,
                           const std::vector<int8_t>& w, const std::vector<int32_t>& bias,
                           const std::vector<float>& mult, const QU8Requant& p, size_t cs) const {
    const size_t taps = std::max<size_t>(ks_, 1);
    ConvGeometry g;  // the igemm problem as a 1 x ks convolution over m output pixels
    g.IH = 1;
    g.IW = 1;
    g.C = k_;
    g.OH = 1;
    g.OW = m_;
    g.K = n_;
    g.KH = 1;
    g.KW = taps;
    std::vector<uint8_t> storage;
    void* packed = nullptr;
    if (ks_) {
      storage = packed_storage(q8::kern::qu8_conv_packed_bytes(g, kern.nr, kern.kr, kern.weight_bytes));
      packed = aligned64(storage);
      q8::kern::qu8_conv_pack(g, kern.nr, kern.kr, kern.weight_bytes, w.data(), bias_ ? bias.data() : nullptr,
                              mult.data(), za_, packed);
    } else {
      // B is k x n: b(c, j) = w[j * k + c] (b_row_stride 1, b_col_stride k), or a transposed copy.
      std::vector<int8_t> bt(k_ * n_);
      for (size_t c = 0; c < k_; ++c)
        for (size_t j = 0; j < n_; ++j) bt[c * n_ + j] = w[j * k_ + c];
      storage = packed_storage(q8::kern::qu8_gemm_packed_bytes(k_, n_, kern.nr, kern.kr, kern.weight_bytes));
      packed = aligned64(storage);
      if (transpose_b_)
        q8::kern::qu8_gemm_pack(k_, n_, kern.nr, kern.kr, kern.weight_bytes, bt.data(), n_, 1,
                                bias_ ? bias.data() : nullptr, mult.data(), za_, packed);
      else
        q8::kern::qu8_gemm_pack(k_, n_, kern.nr, kern.kr, kern.weight_bytes, w.data(), 1, k_,
                                bias_ ? bias.data() : nullptr, mult.data(), za_, packed);
    }
    constexpr uint8_t kFill = 0xA5;
    const bool direct = !driver_ && m_ <= kern.mr && n_ <= kern.nr;
    if (ks_ && !direct) cs = n_;  // qu8_conv_run writes NHWC rows of g.K = n
    GuardedBuffer c((m_ - 1) * cs + n_);
    std::memset(c.data(), kFill, c.size());
    if (ks_) {
      if (direct)
        kern.igemm(m_, n_, k_, taps, ind.data(), packed, c.data(), cs, p);
      else
        q8::kern::qu8_conv_run(kern, g, 0, ind.data(), packed, c.data(), 0, m_, p);  // c_stride = n
    } else {
      if (direct)
        kern.gemm(m_, n_, k_, a, a_stride(), packed, c.data(), cs, p);
      else
        q8::kern::qu8_gemm_run(kern, n_, k_, a, a_stride(), packed, c.data(), cs, 0, m_, p);
    }
    std::vector<uint8_t> out(m_ * n_);
    for (size_t i = 0; i < m_; ++i) {
      std::memcpy(&out[i * n_], c.data() + i * cs, n_);
      for (size_t j = n_; j < cs && i + 1 < m_; ++j)
        EXPECT_EQ(int(c.data()[i * cs + j]), kFill) << kern.isa << ": wrote between rows at row " << i;
    }
    return out;
  }

  size_t m_ = 1, n_ = 1, k_ = 1, ks_ = 0, a_stride_ = 0, c_stride_ = 0;
  uint8_t za_ = 128, zo_ = 128, qmin_ = 0, qmax_ = 255, amin_ = 0, amax_ = 255;
  int8_t wmin_ = -127, wmax_ = 127;
  double mlo_ = 0, mhi_ = 0, zero_fraction_ = 0.0;
  bool bias_ = true, transpose_b_ = false, driver_ = false, in_order_ = false;
  uint32_t seed_ = 1;
};

// ---- Convolution tester (qu8_conv_indirection_init + qu8_conv_run) -------------------------

class ConvTester {
 public:
  ConvTester& input(size_t n, size_t h, size_t w, size_t c) {
    g_.N = n;
    g_.IH = h;
    g_.IW = w;
    g_.C = c;
    return *this;
  }
  ConvTester& out_channels(size_t k) {
    g_.K = k;
    return *this;
  }
  ConvTester& kernel(size_t kh, size_t kw) {
    g_.KH = kh;
    g_.KW = kw;
    return *this;
  }
  ConvTester& stride(size_t sh, size_t sw) {
    g_.SH = sh;
    g_.SW = sw;
    return *this;
  }
  ConvTester& dilation(size_t dh, size_t dw) {
    g_.DH = dh;
    g_.DW = dw;
    return *this;
  }
  ConvTester& pads(size_t t, size_t l, size_t b, size_t r) {
    g_.PT = t;
    g_.PL = l;
    g_.PB = b;
    g_.PR = r;
    return *this;
  }
  ConvTester& groups(size_t n) {
    g_.groups = n;
    return *this;
  }
  ConvTester& a_zero_point(uint8_t v) {
    za_ = v;
    return *this;
  }
  ConvTester& out_zero_point(uint8_t v) {
    zo_ = v;
    return *this;
  }
  ConvTester& qmin(uint8_t v) {
    qmin_ = v;
    return *this;
  }
  ConvTester& qmax(uint8_t v) {
    qmax_ = v;
    return *this;
  }
  ConvTester& seed(uint32_t v) {
    seed_ = v;
    return *this;
  }

  void test(const QU8Kernels& kern) const {
    ConvGeometry g = g_;
    g.OH = (g.IH + g.PT + g.PB - (g.KH - 1) * g.DH - 1) / g.SH + 1;
    g.OW = (g.IW + g.PL + g.PR - (g.KW - 1) * g.DW - 1) / g.SW + 1;
    std::ostringstream d;
    d << kern.isa << " conv N" << g.N << " " << g.IH << "x" << g.IW << "x" << g.C << " -> " << g.OH << "x" << g.OW
      << "x" << g.K << " k" << g.KH << "x" << g.KW << " s" << g.SH << "," << g.SW << " d" << g.DH << "," << g.DW << " p"
      << g.PT << g.PL << g.PB << g.PR << " groups " << g.groups << " z_a=" << int(za_);
    SCOPED_TRACE(d.str());
    std::mt19937 rng(seed_);
    std::uniform_int_distribution<int> byte(0, 255), wv(-127, 127);
    const size_t Cg = g.Cg(), Kg = g.Kg(), taps = g.taps(), P = g.out_pixels();
    // The last pixel's last group may read round_up(Cg, kr) - Cg bytes past the tensor.
    GuardedBuffer in(g.N * g.IH * g.IW * g.C + round_up(Cg, kern.kr) - Cg);
    for (size_t i = 0; i < in.size(); ++i) in.data()[i] = static_cast<uint8_t>(byte(rng));
    GuardedBuffer zero(std::max(g.C, round_up(Cg, kern.kr)));
    for (size_t i = 0; i < zero.size(); ++i) zero.data()[i] = i < g.C ? za_ : static_cast<uint8_t>(byte(rng));
    std::vector<int8_t> w(g.K * Cg * taps);
    for (int8_t& x : w) x = static_cast<int8_t>(wv(rng));
    std::vector<int32_t> bias(g.K);
    std::uniform_int_distribution<int32_t> bd(-20000, 20000);
    for (int32_t& b : bias) b = bd(rng);
    const double typical = std::sqrt(double(Cg * taps)) * 70.0 * 70.0 + 1.0;
    const std::vector<float> mult = multipliers(g.K, 30.0 / typical, 240.0 / typical, rng);
    const QU8Requant p{zo_, qmin_, qmax_};

    // Naive NHWC convolution; padding taps contribute (z_a - z_a) * w = 0.
    std::vector<uint8_t> want(P * g.K);
    for (size_t n = 0; n < g.N; ++n)
      for (size_t oy = 0; oy < g.OH; ++oy)
        for (size_t ox = 0; ox < g.OW; ++ox)
          for (size_t oc = 0; oc < g.K; ++oc) {
            const size_t grp = oc / Kg;
            int64_t acc = bias[oc];
            for (size_t ky = 0; ky < g.KH; ++ky)
              for (size_t kx = 0; kx < g.KW; ++kx) {
                const long iy = long(oy * g.SH + ky * g.DH) - long(g.PT);
                const long ix = long(ox * g.SW + kx * g.DW) - long(g.PL);
                if (iy < 0 || ix < 0 || iy >= long(g.IH) || ix >= long(g.IW)) continue;
                const uint8_t* px = in.data() + ((n * g.IH + size_t(iy)) * g.IW + size_t(ix)) * g.C + grp * Cg;
                for (size_t c = 0; c < Cg; ++c)
                  acc += (int64_t{px[c]} - za_) * w[((oc * Cg) + c) * taps + ky * g.KW + kx];
              }
            want[((n * g.OH + oy) * g.OW + ox) * g.K + oc] = requantize(acc, mult[oc], p);
          }

    const std::vector<uint8_t> got = run(kern, g, in.data(), zero.data(), w, bias, mult, p, {0, P});
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_EQ(int(got[i]), int(want[i])) << "vs naive at pixel " << i / g.K << " channel " << i % g.K;
    // Uneven splits of the pixel range (as threads would) give the same bytes.
    const std::vector<uint8_t> split =
        run(kern, g, in.data(), zero.data(), w, bias, mult, p, {0, P / 3 + 1, P / 3 + 2, (2 * P) / 3 + 5, P});
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(int(split[i]), int(got[i])) << "split run, byte " << i;
    // Rectangles of pixels by output-channel panels (how threads split deep layers), the same bytes.
    const size_t panels = (Kg + kern.nr - 1) / kern.nr;
    const std::vector<uint8_t> rects = run(kern, g, in.data(), zero.data(), w, bias, mult, p, {0, P / 2 + 1, P},
                                           {0, panels / 2, panels / 2 + 1, panels});
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(int(rects[i]), int(got[i])) << "rectangles, byte " << i;
    const QU8Kernels* scalar = q8::kern::qu8_kernels_scalar();
    if (&kern != scalar) {
      const std::vector<uint8_t> ref = run(*scalar, g, in.data(), zero.data(), w, bias, mult, p, {0, P});
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_EQ(int(got[i]), int(ref[i])) << "vs scalar at pixel " << i / g.K << " channel " << i % g.K;
    }
    if (g.groups != 1 || g.DW != 1) return;
    // And as an igemm over kernel rows (conv_rows.h), whole and split; like every igemm input,
    // readable for kQu8MaxKr - 1 bytes past its end.
    const size_t in_bytes = g.N * g.IH * g.IW * g.C;
    GuardedBuffer slack_in(in_bytes + q8::kern::kQu8MaxKr - 1);
    std::memcpy(slack_in.data(), in.data(), in_bytes);
    for (const std::vector<size_t>& bounds : {std::vector<size_t>{0, P}, std::vector<size_t>{0, 1, P / 2 + 3, P}}) {
      const std::vector<uint8_t> rows = run_rows(kern, g, slack_in.data(), w, bias, mult, p, bounds);
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_EQ(int(rows[i]), int(got[i])) << "rows vs igemm at pixel " << i / g.K << " channel " << i % g.K;
    }
  }

 private:
  std::vector<uint8_t> run(const QU8Kernels& kern, const ConvGeometry& g, const uint8_t* in, const uint8_t* zero,
                           const std::vector<int8_t>& w, const std::vector<int32_t>& bias,
                           const std::vector<float>& mult, const QU8Requant& p, std::vector<size_t> bounds,
                           const std::vector<size_t>& panel_bounds = {0, q8::kern::kAllPanels}) const {
    const size_t P = g.out_pixels(), taps = g.taps();
    for (size_t& b : bounds) b = std::min(b, P);
    const size_t bytes = q8::kern::qu8_conv_packed_bytes(g, kern.nr, kern.kr, kern.weight_bytes);
    std::vector<uint8_t> storage = packed_storage(bytes);
    uint8_t* packed = static_cast<uint8_t*>(aligned64(storage));
    q8::kern::qu8_conv_pack(g, kern.nr, kern.kr, kern.weight_bytes, w.data(), bias.data(), mult.data(), za_, packed);
    GuardedBuffer out(P * g.K);
    std::memset(out.data(), 0xA5, out.size());
    std::vector<const uint8_t*> ind(P * taps);
    for (size_t grp = 0; grp < g.groups; ++grp) {
      q8::kern::qu8_conv_indirection_init(g, grp, in, zero, ind.data());
      for (size_t j = 0; j + 1 < panel_bounds.size(); ++j)
        for (size_t i = 0; i + 1 < bounds.size(); ++i)
          if (bounds[i] < bounds[i + 1])
            q8::kern::qu8_conv_run(kern, g, grp, ind.data(), packed + grp * (bytes / g.groups), out.data(), bounds[i],
                                   bounds[i + 1], p, panel_bounds[j], panel_bounds[j + 1]);
    }
    return std::vector<uint8_t>(out.data(), out.data() + out.size());
  }

  std::vector<uint8_t> run_rows(const QU8Kernels& kern, const ConvGeometry& g, const uint8_t* in,
                                const std::vector<int8_t>& w, const std::vector<int32_t>& bias,
                                const std::vector<float>& mult, const QU8Requant& p, std::vector<size_t> bounds) const {
    const size_t P = g.out_pixels();
    for (size_t& b : bounds) b = std::min(b, P);
    const ConvGeometry r = q8::kern::conv_rows_geometry(g);
    const size_t bytes = q8::kern::qu8_conv_packed_bytes(r, kern.nr, kern.kr, kern.weight_bytes);
    std::vector<uint8_t> storage = packed_storage(bytes);
    uint8_t* packed = static_cast<uint8_t*>(aligned64(storage));
    q8::kern::qu8_conv_rows_pack(g, kern.nr, kern.kr, kern.weight_bytes, w.data(), bias.data(), mult.data(), za_,
                                 packed);
    // The zero row: KW * C bytes of z_a, then bytes the igemm may read (they meet zero weights).
    GuardedBuffer zero(r.C + q8::kern::kQu8MaxKr - 1);
    for (size_t i = 0; i < zero.size(); ++i) zero.data()[i] = i < r.C ? za_ : uint8_t(i * 37);
    GuardedBuffer edges(std::max<size_t>(1, q8::kern::conv_rows_edge_elements<uint8_t>(g)));
    std::memset(edges.data(), 0x5A, edges.size());
    std::vector<const uint8_t*> ind(P * r.taps());
    q8::kern::conv_rows_indirection_init<uint8_t>(g, in, zero.data(), edges.data(), ind.data());
    GuardedBuffer out(P * g.K);
    std::memset(out.data(), 0xA5, out.size());
    for (size_t i = 0; i + 1 < bounds.size(); ++i) {
      if (bounds[i] >= bounds[i + 1]) continue;
      q8::kern::conv_rows_gather_edges<uint8_t>(g, in, za_, edges.data(), bounds[i], bounds[i + 1]);
      q8::kern::qu8_conv_run(kern, r, 0, ind.data(), packed, out.data(), bounds[i], bounds[i + 1], p);
    }
    return std::vector<uint8_t>(out.data(), out.data() + out.size());
  }

  ConvGeometry g_;
  uint8_t za_ = 128, zo_ = 128, qmin_ = 0, qmax_ = 255;
  uint32_t seed_ = 7;
};

}  // namespace q8_test
