#include "kernels/f32_misc.h"

#include <algorithm>

namespace q8::kern {

namespace {
template <class T>
void nchw_to_nhwc(size_t C, size_t HW, const T* in, T* out, size_t n0, size_t n1) {
  for (size_t n = n0; n < n1; ++n) {
    const T* src = in + n * C * HW;
    T* dst = out + n * C * HW;
    for (size_t c = 0; c < C; ++c)
      for (size_t p = 0; p < HW; ++p) dst[p * C + c] = src[c * HW + p];
  }
}
template <class T>
void nhwc_to_nchw(size_t C, size_t HW, const T* in, T* out, size_t n0, size_t n1) {
  for (size_t n = n0; n < n1; ++n) {
    const T* src = in + n * C * HW;
    T* dst = out + n * C * HW;
    for (size_t p = 0; p < HW; ++p)
      for (size_t c = 0; c < C; ++c) dst[c * HW + p] = src[p * C + c];
  }
}
}  // namespace

void f32_nchw_to_nhwc(size_t C, size_t HW, const float* in, float* out, size_t n0, size_t n1) {
  nchw_to_nhwc(C, HW, in, out, n0, n1);
}
void f32_nhwc_to_nchw(size_t C, size_t HW, const float* in, float* out, size_t n0, size_t n1) {
  nhwc_to_nchw(C, HW, in, out, n0, n1);
}
void u8_nchw_to_nhwc(size_t C, size_t HW, const uint8_t* in, uint8_t* out, size_t n0, size_t n1) {
  nchw_to_nhwc(C, HW, in, out, n0, n1);
}
void u8_nhwc_to_nchw(size_t C, size_t HW, const uint8_t* in, uint8_t* out, size_t n0, size_t n1) {
  nhwc_to_nchw(C, HW, in, out, n0, n1);
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

void f32_channel_affine(size_t outer, size_t C, size_t inner, const float* in, const float* scale,
                        const float* shift, float* out) {
  for (size_t i = 0; i < outer; ++i)
    for (size_t c = 0; c < C; ++c) {
      const size_t base = (i * C + c) * inner;
      for (size_t j = 0; j < inner; ++j) out[base + j] = in[base + j] * scale[c] + shift[c];
    }
}

}  // namespace q8::kern
