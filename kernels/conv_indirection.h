// The indirection buffer of an indirect GEMM, for any element type: for every output pixel and
// kernel tap, a pointer to the first channel (of one group) of the input pixel the tap reads,
// or to `zero` when the tap falls in the padding. Layout [out_pixel][tap]. Internal to
// kernels/ (f32 and uint8 convolutions share it).
#pragma once

#include <cstddef>

#include "kernels/f32.h"  // ConvGeometry

namespace q8::kern {

template <class T>
void fill_conv_indirection(const ConvGeometry& g, size_t group, const T* input, const T* zero, const T** indirection) {
  const size_t taps = g.taps();
  const T* in_g = input + group * g.Cg();
  for (size_t n = 0; n < g.N; ++n)
    for (size_t oy = 0; oy < g.OH; ++oy)
      for (size_t ox = 0; ox < g.OW; ++ox) {
        const T** row = indirection + ((n * g.OH + oy) * g.OW + ox) * taps;
        for (size_t ky = 0; ky < g.KH; ++ky) {
          // Unsigned wrap-around makes taps above/left of the input huge, so one comparison
          // catches padding on both sides, whatever the pads and the output size are.
          const size_t iy = oy * g.SH + ky * g.DH - g.PT;
          for (size_t kx = 0; kx < g.KW; ++kx) {
            const size_t ix = ox * g.SW + kx * g.DW - g.PL;
            row[ky * g.KW + kx] = iy < g.IH && ix < g.IW ? in_g + ((n * g.IH + iy) * g.IW + ix) * g.C : zero;
          }
        }
      }
}

}  // namespace q8::kern
