#include "kernels/f32_misc.h"

#include <algorithm>
#include <cstring>

namespace q8::kern {

namespace {
template <class T>
void nchw_to_nhwc(size_t C, size_t HW, const T* in, T* out, size_t p0, size_t p1) {
  for (size_t p = p0; p < p1; ++p) {
    const T* src = in + (p / HW) * C * HW + p % HW;
    T* dst = out + p * C;
    for (size_t c = 0; c < C; ++c) dst[c] = src[c * HW];
  }
}
template <class T>
void nhwc_to_nchw(size_t C, size_t HW, const T* in, T* out, size_t p0, size_t p1) {
  for (size_t p = p0; p < p1; ++p) {
    const T* src = in + p * C;
    T* dst = out + (p / HW) * C * HW + p % HW;
    for (size_t c = 0; c < C; ++c) dst[c * HW] = src[c];
  }
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

void f32_broadcast_add(size_t rank, const int64_t* out_dims, const int64_t* a_dims, const float* a,
                       const int64_t* b_dims, const float* b, float b_scale, float* out, float lo, float hi) {
  // Strides of a and b in elements, 0 on broadcast axes, walked with an odometer.
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
    out[e] = std::min(std::max(a[ao] + b_scale * b[bo], lo), hi);
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
  for (size_t r = r0; r < r1; ++r) {
    // The row's source: its index over the outer axes, last axis fastest.
    int64_t src = 0;
    for (size_t k = rank - 1, rest = r; k-- > 0;) {
      const size_t d = static_cast<size_t>(out_dims[k]);
      src += static_cast<int64_t>(rest % d) * in_strides[k];
      rest /= d;
    }
    uint8_t* dst = out + r * inner * elem;
    if (step == 1) {
      std::memcpy(dst, in + src * static_cast<int64_t>(elem), inner * elem);
      continue;
    }
    for (size_t i = 0; i < inner; ++i, src += step)
      std::memcpy(dst + i * elem, in + src * static_cast<int64_t>(elem), elem);
  }
}

}  // namespace q8::kern
