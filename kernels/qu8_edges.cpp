// The int8 work at the edges of a CNN, around the big convolutions: the model input quantized
// straight into NHWC, and the first convolution (few input channels) as one GEMM over each output
// pixel's whole receptive field. ISA-independent drivers around the tables' kernels.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/qu8.h"

namespace q8::kern {
namespace {

// Pixels quantized per pass: the C planes' pieces (C x this many bytes) stay in L1.
constexpr size_t kQuantizeBlockBytes = 8 * 1024;

// dst[p * C + c] = planes[c * stride + p] for p < n: the interleave of C planes of bytes.
template <size_t C>
void interleave_fixed(const uint8_t* planes, size_t stride, size_t n, uint8_t* dst) {
  for (size_t p = 0; p < n; ++p)
    for (size_t c = 0; c < C; ++c) dst[p * C + c] = planes[c * stride + p];
}

void interleave(size_t C, const uint8_t* planes, size_t stride, size_t n, uint8_t* dst) {
  switch (C) {
    case 1: std::memcpy(dst, planes, n); return;
    case 2: interleave_fixed<2>(planes, stride, n, dst); return;
    case 3: interleave_fixed<3>(planes, stride, n, dst); return;
    case 4: interleave_fixed<4>(planes, stride, n, dst); return;
    default:
      for (size_t p = 0; p < n; ++p)
        for (size_t c = 0; c < C; ++c) dst[p * C + c] = planes[c * stride + p];
  }
}

// Copies n bytes with a few fixed-size moves (overlapping where n is not a multiple of their
// size) instead of a call to memcpy: a receptive-field row is 9 to 40 bytes, copied tens of
// thousands of times per layer. Reads and writes stay within [0, n).
inline void copy_short(uint8_t* dst, const uint8_t* src, size_t n) {
  if (n >= 16) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) std::memcpy(dst + i, src + i, 16);
    if (i < n) std::memcpy(dst + n - 16, src + n - 16, 16);
  } else if (n >= 8) {
    std::memcpy(dst, src, 8);
    std::memcpy(dst + n - 8, src + n - 8, 8);
  } else if (n >= 4) {
    std::memcpy(dst, src, 4);
    std::memcpy(dst + n - 4, src + n - 4, 4);
  } else {
    for (size_t i = 0; i < n; ++i) dst[i] = src[i];
  }
}

size_t round_up(size_t a, size_t b) { return (a + b - 1) / b * b; }

// Rows gathered per block of qu8_conv_im2col_run: the block's rows stay in L1 while every panel
// of weights passes over them.
constexpr size_t kIm2colBlockBytes = 16 * 1024;

}  // namespace

void qu8_quantize_nchw_to_nhwc(const QU8Kernels& k, size_t C, size_t HW, const float* in, uint8_t* out, float scale,
                               int32_t zero_point, size_t p0, size_t p1) {
  alignas(64) uint8_t planes[kQuantizeBlockBytes];
  const size_t block = std::max<size_t>(1, kQuantizeBlockBytes / std::max<size_t>(C, 1));
  if (block * C > kQuantizeBlockBytes) {  // C beyond the buffer: pixel by pixel, channel by channel
    for (size_t p = p0; p < p1; ++p) {
      const float* src = in + (p / HW) * C * HW + p % HW;
      for (size_t c = 0; c < C; ++c) k.quantize(1, src + c * HW, out + p * C + c, scale, zero_point);
    }
    return;
  }
  for (size_t p = p0; p < p1;) {
    // A block never crosses an image: within one, the pixels of a plane are contiguous.
    const size_t n = std::min({block, p1 - p, HW - p % HW});
    const float* src = in + (p / HW) * C * HW + p % HW;
    for (size_t c = 0; c < C; ++c) k.quantize(n, src + c * HW, planes + c * block, scale, zero_point);
    interleave(C, planes, block, n, out + p * C);
    p += n;
  }
}

size_t qu8_conv_im2col_row_bytes(const ConvGeometry& g) { return round_up(g.taps() * g.C, kQu8MaxKr); }

size_t qu8_conv_im2col_block_rows(const QU8Kernels& k, const ConvGeometry& g) {
  const size_t rows = kIm2colBlockBytes / qu8_conv_im2col_row_bytes(g) / k.mr * k.mr;
  return std::max(rows, k.mr);
}

size_t qu8_conv_im2col_scratch_bytes(const QU8Kernels& k, const ConvGeometry& g) {
  return qu8_conv_im2col_block_rows(k, g) * qu8_conv_im2col_row_bytes(g) + kQu8MaxKr;
}

// Row p - p0 of `rows` = output pixel p's receptive field, tap by tap in row-major order, the C
// channels of each tap together: k = (ky * KW + kx) * C + c, the order qu8_conv_im2col_pack
// stores the weights in. A tap in the padding holds z_a, so it adds (z_a - z_a) * w = 0.
void qu8_conv_im2col(const ConvGeometry& g, const uint8_t* in, uint8_t a_zero_point, uint8_t* rows, size_t row_stride,
                     size_t p0, size_t p1) {
  // Locals, not g's members: the byte stores below may alias g, which would make the compiler
  // reload every member after each of them.
  const size_t C = g.C, KH = g.KH, KW = g.KW, IH = g.IH, IW = g.IW, OH = g.OH, OW = g.OW;
  const size_t SH = g.SH, SW = g.SW, DH = g.DH, DW = g.DW, PT = g.PT, PL = g.PL;
  const size_t in_row = IW * C, seg = KW * C, span_x = (KW - 1) * DW, span_y = (KH - 1) * DH;
  // The pixel's coordinates advance with it (divisions per pixel would cost more than its copies).
  size_t n = p0 / (OH * OW), oy = p0 / OW % OH, ox = p0 % OW;
  for (size_t p = p0; p < p1; ++p) {
    uint8_t* dst = rows + (p - p0) * row_stride;
    const uint8_t* in_n = in + n * IH * in_row;
    // Unsigned wrap-around makes coordinates above or left of the input huge: one comparison
    // per side catches padding.
    const size_t iy0 = oy * SH - PT, ix0 = ox * SW - PL;
    const bool cols_inside = ix0 < IW && ix0 + span_x < IW;
    if (cols_inside && DW == 1 && iy0 < IH && iy0 + span_y < IH && in_row >= 16) {  // the whole field inside
      // Every row but the last is copied in whole 16-byte moves: up to 15 bytes past its segment
      // land where the next segment goes (written next), and are read from the rest of an input
      // row that has at least one more row after it (in_row >= 16). The last segment is copied
      // exactly, so nothing is written past the pixel's taps * C bytes.
      const uint8_t* src = in_n + iy0 * in_row + ix0 * C;
      for (size_t ky = 0; ky + 1 < KH; ++ky, src += DH * in_row, dst += seg)
        for (size_t i = 0; i < seg; i += 16) std::memcpy(dst + i, src + i, 16);
      copy_short(dst, src, seg);
    } else {
      for (size_t ky = 0; ky < KH; ++ky, dst += seg) {
        const size_t iy = iy0 + ky * DH;
        if (iy >= IH) {
          std::memset(dst, a_zero_point, seg);
          continue;
        }
        const uint8_t* src = in_n + iy * in_row;
        if (cols_inside && DW == 1) {
          copy_short(dst, src + ix0 * C, seg);
          continue;
        }
        for (size_t kx = 0; kx < KW; ++kx) {
          const size_t ix = ix0 + kx * DW;
          if (ix < IW)
            copy_short(dst + kx * C, src + ix * C, C);
          else
            for (size_t c = 0; c < C; ++c) dst[kx * C + c] = a_zero_point;
        }
      }
    }
    if (++ox == OW) {
      ox = 0;
      if (++oy == OH) oy = 0, ++n;
    }
  }
}

void qu8_conv_im2col_run(const QU8Kernels& k, const ConvGeometry& g, const uint8_t* in, uint8_t a_zero_point,
                         const void* packed, uint8_t* scratch, uint8_t* out, size_t p0, size_t p1,
                         const QU8Requant& p) {
  const size_t stride = qu8_conv_im2col_row_bytes(g), block = qu8_conv_im2col_block_rows(k, g);
  const size_t kc = g.taps() * g.C;
  for (size_t b0 = p0; b0 < p1; b0 += block) {
    const size_t b1 = std::min(p1, b0 + block);
    qu8_conv_im2col(g, in, a_zero_point, scratch, stride, b0, b1);
    qu8_gemm_run(k, g.K, kc, scratch, stride, packed, out + b0 * g.K, g.K, 0, b1 - b0, p);
  }
}

}  // namespace q8::kern
