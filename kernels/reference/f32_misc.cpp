#include "kernels/f32_misc.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace q8::kern {

namespace {
// Pixels [p0, p1) of N images of HW pixels, one image's run at a time (no division per pixel),
// in blocks of kLayoutBlock pixels: each channel's run of a block is one contiguous read (or
// write), and for moderate C the block's other side, kLayoutBlock * C elements, stays in cache
// across channels.
constexpr size_t kLayoutBlock = 64;

template <class T, bool kToNhwc>
void change_layout(size_t C, size_t HW, const T* in, T* out, size_t p0, size_t p1) {
  for (size_t p = p0; p < p1;) {
    const size_t n = p / HW, s0 = p % HW, s1 = std::min(HW, s0 + (p1 - p));
    const T* planar = kToNhwc ? in + n * C * HW : nullptr;
    T* planar_out = kToNhwc ? nullptr : out + n * C * HW;
    for (size_t b0 = s0; b0 < s1; b0 += kLayoutBlock) {
      const size_t b1 = std::min(s1, b0 + kLayoutBlock);
      for (size_t c = 0; c < C; ++c)
        for (size_t s = b0; s < b1; ++s) {
          if constexpr (kToNhwc)
            out[(n * HW + s) * C + c] = planar[c * HW + s];
          else
            planar_out[c * HW + s] = in[(n * HW + s) * C + c];
        }
    }
    p += s1 - s0;
  }
}
template <class T>
void nchw_to_nhwc(size_t C, size_t HW, const T* in, T* out, size_t p0, size_t p1) {
  change_layout<T, true>(C, HW, in, out, p0, p1);
}
template <class T>
void nhwc_to_nchw(size_t C, size_t HW, const T* in, T* out, size_t p0, size_t p1) {
  change_layout<T, false>(C, HW, in, out, p0, p1);
}

// Row by row over the output: each output row is [value..., a slice of one input row, value...],
// or all value when the row's outer coordinates fall outside the input.
template <class T>
void pad_constant(size_t rank, const int64_t* in_dims, const int64_t* begin, const int64_t* out_dims, const T* in,
                  T value, T* out) {
  if (rank == 0) {
    out[0] = in[0];
    return;
  }
  int64_t in_stride[8], idx[8] = {0};
  in_stride[rank - 1] = 1;
  for (size_t a = rank - 1; a-- > 0;) in_stride[a] = in_stride[a + 1] * in_dims[a + 1];
  int64_t rows = 1;
  for (size_t a = 0; a + 1 < rank; ++a) rows *= out_dims[a];
  const int64_t ow = out_dims[rank - 1], iw = in_dims[rank - 1], b = begin[rank - 1];
  // Output columns [c0, c1) come from input columns [c0 - b, c1 - b).
  const int64_t c0 = std::min(std::max<int64_t>(b, 0), ow), c1 = std::max(std::min(iw + b, ow), c0);
  for (int64_t r = 0; r < rows; ++r) {
    T* o = out + r * ow;
    int64_t src = 0;
    bool inside = true;
    for (size_t a = 0; a + 1 < rank; ++a) {
      const int64_t i = idx[a] - begin[a];
      inside = inside && i >= 0 && i < in_dims[a];
      src += i * in_stride[a];
    }
    for (int64_t c = 0; c < ow; ++c) o[c] = value;
    if (inside && c1 > c0) std::memcpy(o + c0, in + src + (c0 - b), static_cast<size_t>(c1 - c0) * sizeof(T));
    for (size_t a = rank - 1; a-- > 0;) {
      if (++idx[a] < out_dims[a]) break;
      idx[a] = 0;
    }
  }
}

}  // namespace

void f32_pad(size_t rank, const int64_t* in_dims, const int64_t* begin, const int64_t* out_dims, const float* in,
             float value, float* out) {
  pad_constant(rank, in_dims, begin, out_dims, in, value, out);
}
void u8_pad(size_t rank, const int64_t* in_dims, const int64_t* begin, const int64_t* out_dims, const uint8_t* in,
            uint8_t value, uint8_t* out) {
  pad_constant(rank, in_dims, begin, out_dims, in, value, out);
}

void f32_nchw_to_nhwc(size_t C, size_t HW, const float* in, float* out, size_t p0, size_t p1) {
  nchw_to_nhwc(C, HW, in, out, p0, p1);
}
void f32_nhwc_to_nchw(size_t C, size_t HW, const float* in, float* out, size_t p0, size_t p1) {
  nhwc_to_nchw(C, HW, in, out, p0, p1);
}
void u8_nchw_to_nhwc(size_t C, size_t HW, const uint8_t* in, uint8_t* out, size_t p0, size_t p1) {
  nchw_to_nhwc(C, HW, in, out, p0, p1);
}
void u8_nhwc_to_nchw(size_t C, size_t HW, const uint8_t* in, uint8_t* out, size_t p0, size_t p1) {
  nhwc_to_nchw(C, HW, in, out, p0, p1);
}

namespace {

// Walks the output in C order with an odometer, the strides of a and b being 0 on their
// broadcast axes, and stores f(a element, b element) clamped to [lo, hi].
template <class F>
void broadcast_walk(size_t rank, const int64_t* out_dims, const int64_t* a_dims, const float* a, const int64_t* b_dims,
                    const float* b, float* out, float lo, float hi, F f) {
  int64_t as[8], bs[8], idx[8] = {0};
  int64_t sa = 1, sb = 1, total = 1;
  for (size_t i = rank; i-- > 0;) {
    as[i] = a_dims[i] == 1 ? 0 : sa;
    bs[i] = b_dims[i] == 1 ? 0 : sb;
    sa *= a_dims[i];
    sb *= b_dims[i];
    total *= out_dims[i];
  }
  int64_t ao = 0, bo = 0;
  for (int64_t e = 0; e < total; ++e) {
    out[e] = std::min(std::max(f(a[ao], b[bo]), lo), hi);
    for (size_t i = rank; i-- > 0;) {
      ao += as[i];
      bo += bs[i];
      if (++idx[i] < out_dims[i]) break;
      ao -= as[i] * out_dims[i];
      bo -= bs[i] * out_dims[i];
      idx[i] = 0;
    }
  }
}

}  // namespace

void f32_broadcast_add(size_t rank, const int64_t* out_dims, const int64_t* a_dims, const float* a,
                       const int64_t* b_dims, const float* b, float b_scale, float* out, float lo, float hi) {
  broadcast_walk(rank, out_dims, a_dims, a, b_dims, b, out, lo, hi,
                 [b_scale](float x, float y) { return x + b_scale * y; });
}

void f32_broadcast_binary(BinaryOp op, size_t rank, const int64_t* out_dims, const int64_t* a_dims, const float* a,
                          const int64_t* b_dims, const float* b, float* out, float lo, float hi) {
  auto walk = [&](auto f) { broadcast_walk(rank, out_dims, a_dims, a, b_dims, b, out, lo, hi, f); };
  switch (op) {
    case BinaryOp::Add: walk([](float x, float y) { return x + y; }); break;
    case BinaryOp::Sub: walk([](float x, float y) { return x - y; }); break;
    case BinaryOp::Mul: walk([](float x, float y) { return x * y; }); break;
    case BinaryOp::Div: walk([](float x, float y) { return x / y; }); break;
    case BinaryOp::Pow:
      walk([](float x, float y) { return y == 2.f ? x * x : y == 3.f ? x * x * x : std::pow(x, y); });
      break;
  }
}

void f32_reduce_mean(size_t rank, const int64_t* in_dims, const bool* reduced, const float* in, float* out) {
  // Output strides (0 on reduced axes); the input is walked in C order, so every output sums its
  // inputs in row-major order.
  int64_t os[8], idx[8] = {0};
  int64_t so = 1, total = 1, count = 1;
  for (size_t i = rank; i-- > 0;) {
    os[i] = reduced[i] ? 0 : so;
    so *= reduced[i] ? 1 : in_dims[i];
    total *= in_dims[i];
    count *= reduced[i] ? in_dims[i] : 1;
  }
  for (int64_t o = 0; o < so; ++o) out[o] = 0.0f;
  int64_t oo = 0;
  for (int64_t e = 0; e < total; ++e) {
    out[oo] = out[oo] + in[e];
    for (size_t i = rank; i-- > 0;) {
      oo += os[i];
      if (++idx[i] < in_dims[i]) break;
      oo -= os[i] * in_dims[i];
      idx[i] = 0;
    }
  }
  const float fc = static_cast<float>(count);
  for (int64_t o = 0; o < so; ++o) out[o] = out[o] / fc;
}

float portable_logf(float xf) {
  if (xf != xf || xf < 0.0f) return std::numeric_limits<float>::quiet_NaN();
  if (xf == 0.0f) return -std::numeric_limits<float>::infinity();
  if (xf == std::numeric_limits<float>::infinity()) return xf;
  // x = m 2^e with m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(f), f = (m - 1) / (m + 1), |f| < 0.172,
  // by its series to f^23 (error < 1e-18).
  int e = 0;
  double m = std::frexp(static_cast<double>(xf), &e);
  if (m < 0.7071067811865476) {
    m *= 2.0;
    --e;
  }
  const double f = (m - 1.0) / (m + 1.0), f2 = f * f;
  double t = 0.0;
  for (int k = 23; k >= 1; k -= 2) t = 1.0 / k + f2 * t;
  return static_cast<float>(e * 0.6931471805599453 + 2.0 * f * t);
}

void f32_softmax(const F32Kernels& k, size_t len, size_t inner, const float* in, float* out, size_t o0, size_t o1,
                 bool log_softmax) {
  const UnaryParams exp_params{UnaryKind::Exp, 0.f, 0.f};
  // Lanes j are taken kBlock at a time, so that each axis step i is one contiguous run of
  // (up to) kBlock lanes: x - m and exp run over it as a vector through the table, and the
  // sums stay per lane, in axis order. A single lane (inner == 1) runs over its axis instead.
  constexpr size_t kBlock = 256;
  float m[kBlock], s[kBlock], e[kBlock];
  for (size_t o = o0; o < o1; ++o) {
    const float* xo = in + o * len * inner;
    float* yo = out + o * len * inner;
    if (inner == 1) {
      float mx = -std::numeric_limits<float>::infinity();
      for (size_t i = 0; i < len; ++i) mx = xo[i] > mx || xo[i] != xo[i] ? xo[i] : mx;
      for (size_t i = 0; i < len; ++i) yo[i] = xo[i] - mx;
      float sum = 0.0f;
      for (size_t i0 = 0; i0 < len; i0 += kBlock) {
        const size_t n = std::min(kBlock, len - i0);
        float* ei = log_softmax ? e : yo + i0;  // Softmax keeps exp(x - m) in the output
        k.unary(n, yo + i0, ei, exp_params);
        for (size_t i = 0; i < n; ++i) sum = sum + ei[i];
      }
      if (log_softmax) {
        const float ls = portable_logf(sum);
        for (size_t i = 0; i < len; ++i) yo[i] = yo[i] - ls;
      } else {
        for (size_t i = 0; i < len; ++i) yo[i] = yo[i] / sum;
      }
      continue;
    }
    for (size_t j0 = 0; j0 < inner; j0 += kBlock) {
      const size_t nj = std::min(kBlock, inner - j0);
      for (size_t j = 0; j < nj; ++j) m[j] = -std::numeric_limits<float>::infinity(), s[j] = 0.0f;
      for (size_t i = 0; i < len; ++i) {
        const float* x = xo + i * inner + j0;
        for (size_t j = 0; j < nj; ++j) m[j] = x[j] > m[j] || x[j] != x[j] ? x[j] : m[j];
      }
      for (size_t i = 0; i < len; ++i) {
        const float* x = xo + i * inner + j0;
        float* y = yo + i * inner + j0;
        for (size_t j = 0; j < nj; ++j) y[j] = x[j] - m[j];
        float* ei = log_softmax ? e : y;
        k.unary(nj, y, ei, exp_params);
        for (size_t j = 0; j < nj; ++j) s[j] = s[j] + ei[j];
      }
      if (log_softmax)
        for (size_t j = 0; j < nj; ++j) s[j] = portable_logf(s[j]);
      for (size_t i = 0; i < len; ++i) {
        float* y = yo + i * inner + j0;
        for (size_t j = 0; j < nj; ++j) y[j] = log_softmax ? y[j] - s[j] : y[j] / s[j];
      }
    }
  }
}

namespace {

// A row's sums run in kSumLanes partial sums, element i into partial i % kSumLanes, combined in a
// fixed tree: one order on every CPU (this function is every table's LayerNormalization), which
// the compiler vectorises and which does not wait on one add's latency per element (in element
// order, ConvNeXt's 96-channel rows took about 0.65 ms per 56x56 layer).
constexpr size_t kSumLanes = 8;
float lane_total(const float (&p)[kSumLanes]) {
  return ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
}
template <class F>
float lane_sum(size_t n, F&& term) {
  float p[kSumLanes] = {};
  size_t i = 0;
  for (; i + kSumLanes <= n; i += kSumLanes)
    for (size_t j = 0; j < kSumLanes; ++j) p[j] = p[j] + term(i + j);
  for (size_t j = 0; i + j < n; ++j) p[j] = p[j] + term(i + j);
  return lane_total(p);
}

}  // namespace

void f32_layer_norm(size_t n, const float* in, const float* scale, const float* bias, float eps, float* out,
                    float* mean_out, float* inv_std_out, size_t r0, size_t r1) {
  const float fn = static_cast<float>(n);
  for (size_t r = r0; r < r1; ++r) {
    const float* x = in + r * n;
    float* y = out + r * n;
    const float mean = lane_sum(n, [x](size_t i) { return x[i]; }) / fn;
    const float sq = lane_sum(n, [x, mean](size_t i) {
      const float d = x[i] - mean;
      return d * d;
    });
    const float inv = 1.0f / std::sqrt(sq / fn + eps);
    for (size_t i = 0; i < n; ++i) {
      const float v = (x[i] - mean) * inv * scale[i];
      y[i] = bias ? v + bias[i] : v;
    }
    if (mean_out) mean_out[r] = mean;
    if (inv_std_out) inv_std_out[r] = inv;
  }
}

void f32_matmul_strided(const MatMulGeometry& g, const float* a, const float* b, float* out) {
  for (size_t t = 0; t < g.batch; ++t) {
    const float* at = a + t * g.a_batch_stride;
    const float* bt = b + t * g.b_batch_stride;
    float* o = out + t * g.M * g.N;
    for (size_t m = 0; m < g.M; ++m)
      for (size_t n = 0; n < g.N; ++n) {
        float acc = 0.f;
        for (size_t k = 0; k < g.K; ++k) acc += at[m * g.a_rs + k * g.a_cs] * bt[k * g.b_rs + n * g.b_cs];
        o[m * g.N + n] = g.alpha * acc;
      }
  }
}

void f32_channel_affine(size_t outer, size_t C, size_t inner, const float* in, const float* scale, const float* shift,
                        float* out) {
  if (inner == 1) {  // NHWC pixels: the loop over channels is the one to vectorise
    for (size_t i = 0; i < outer; ++i)
      for (size_t c = 0; c < C; ++c) out[i * C + c] = in[i * C + c] * scale[c] + shift[c];
    return;
  }
  for (size_t i = 0; i < outer; ++i)
    for (size_t c = 0; c < C; ++c) {
      const size_t base = (i * C + c) * inner;
      for (size_t j = 0; j < inner; ++j) out[base + j] = in[base + j] * scale[c] + shift[c];
    }
}

void concat_rows(size_t r0, size_t r1, size_t inputs, const uint8_t* const* in, const size_t* in_row, uint8_t* out,
                 size_t out_row) {
  for (size_t r = r0; r < r1; ++r) {
    uint8_t* dst = out + r * out_row;
    for (size_t i = 0; i < inputs; ++i) {
      std::memcpy(dst, in[i] + r * in_row[i], in_row[i]);
      dst += in_row[i];
    }
  }
}

void strided_copy(size_t rank, const int64_t* out_dims, const int64_t* in_strides, size_t elem, const uint8_t* in,
                  uint8_t* out, size_t r0, size_t r1) {
  const size_t inner = static_cast<size_t>(out_dims[rank - 1]);
  const int64_t step = in_strides[rank - 1];
  // Row r0's index over the outer axes (last axis fastest) and source; later rows step it on like
  // an odometer.
  int64_t idx[8] = {}, src = 0;
  for (size_t k = rank - 1, rest = r0; k-- > 0;) {
    const size_t d = static_cast<size_t>(out_dims[k]);
    idx[k] = static_cast<int64_t>(rest % d);
    src += idx[k] * in_strides[k];
    rest /= d;
  }
  for (size_t r = r0; r < r1; ++r) {
    uint8_t* dst = out + r * inner * elem;
    if (step == 1) {
      std::memcpy(dst, in + src * static_cast<int64_t>(elem), inner * elem);
    } else {
      int64_t s = src;
      for (size_t i = 0; i < inner; ++i, s += step)
        std::memcpy(dst + i * elem, in + s * static_cast<int64_t>(elem), elem);
    }
    for (size_t k = rank - 1; k-- > 0;) {
      src += in_strides[k];
      if (++idx[k] < out_dims[k]) break;
      src -= idx[k] * in_strides[k];
      idx[k] = 0;
    }
  }
}

namespace {

// One-element channels, T being uint8_t or float (the 4-byte elements a plan moves are float32's;
// copying them through float registers keeps every bit). Each block is a group x per_group matrix
// transposed, which nchw_to_nhwc above does too, but channel by channel with strided stores: 8x
// this loop's time on ShuffleNetV2's 16 shuffles (0.30 against 0.035 ms int8, Zen 3). Two groups
// are each block's halves interleaved, which the compiler vectorises with unpack instructions.
template <class T>
void shuffle_elements(size_t group, size_t per_group, const uint8_t* in, uint8_t* out, size_t o0, size_t o1) {
  const size_t block = group * per_group;
  for (size_t o = o0; o < o1; ++o) {
    const T* x = reinterpret_cast<const T*>(in) + o * block;
    T* y = reinterpret_cast<T*>(out) + o * block;
    if (group == 2) {
      const T* b = x + per_group;
      for (size_t i = 0; i < per_group; ++i) {
        y[2 * i] = x[i];
        y[2 * i + 1] = b[i];
      }
      continue;
    }
    for (size_t i = 0; i < per_group; ++i)
      for (size_t j = 0; j < group; ++j) *y++ = x[j * per_group + i];
  }
}

}  // namespace

void channel_shuffle(size_t group, size_t per_group, size_t bytes, const uint8_t* in, uint8_t* out, size_t o0,
                     size_t o1) {
  if (bytes == 1) return shuffle_elements<uint8_t>(group, per_group, in, out, o0, o1);
  if (bytes == 4) return shuffle_elements<float>(group, per_group, in, out, o0, o1);
  const size_t block = group * per_group * bytes;
  for (size_t o = o0; o < o1; ++o) {
    const uint8_t* x = in + o * block;
    uint8_t* y = out + o * block;
    for (size_t i = 0; i < per_group; ++i)
      for (size_t j = 0; j < group; ++j, y += bytes) std::memcpy(y, x + (j * per_group + i) * bytes, bytes);
  }
}

}  // namespace q8::kern
