// Kernel-row convolutions (conv_rows.h): geometry, edge slots and indirection, for fp32 and int8.
#include "kernels/conv_rows.h"

#include <algorithm>
#include <cstring>

#include "kernels/qu8.h"

namespace q8::kern {
namespace {

size_t round_up(size_t a, size_t b) { return (a + b - 1) / b * b; }

// A slot holds a row's KW * C elements; in int8 also the kQu8MaxKr - 1 bytes the igemm may read
// past them.
template <class T>
size_t slot_elements(const ConvGeometry& g) {
  if constexpr (sizeof(T) == 1)
    return round_up(g.KW * g.C, kQu8MaxKr) + kQu8MaxKr;
  else
    return g.KW * g.C;
}

// Output columns [0, left) and [right_start, OW) have kernel rows that overlap the left or right
// padding: ox is inside iff ox * SW >= PL and ox * SW - PL + (KW - 1) * DW < IW.
struct RowEdges {
  size_t left = 0, right_start = 0, per_row = 0;
};
RowEdges row_edges(const ConvGeometry& g) {
  RowEdges e;
  const size_t span_x = (g.KW - 1) * g.DW;
  e.left = std::min(g.OW, (g.PL + g.SW - 1) / g.SW);
  const size_t limit = g.IW + g.PL;  // ox * SW + span_x < limit
  e.right_start = limit <= span_x ? e.left : std::min(g.OW, std::max(e.left, (limit - span_x + g.SW - 1) / g.SW));
  e.per_row = e.left + (g.OW - e.right_start);
  return e;
}

}  // namespace

bool conv_runs_kernel_rows(const ConvGeometry& g) {
  return g.groups == 1 && g.C <= kConvRowsMaxChannels && g.DW == 1 && g.KW > 1;
}

ConvGeometry conv_rows_geometry(const ConvGeometry& g) {
  ConvGeometry r = g;
  r.C = g.KW * g.C;
  r.KW = 1;
  r.DW = 1;
  return r;
}

template <class T>
size_t conv_rows_edge_elements(const ConvGeometry& g) {
  return g.N * g.OH * row_edges(g).per_row * g.KH * slot_elements<T>(g);
}

template <class T>
void conv_rows_indirection_init(const ConvGeometry& g, const T* input, const T* zero, const T* edges,
                                const T** indirection) {
  const RowEdges e = row_edges(g);
  const size_t C = g.C, slot = slot_elements<T>(g);
  for (size_t n = 0; n < g.N; ++n)
    for (size_t oy = 0; oy < g.OH; ++oy)
      for (size_t ox = 0; ox < g.OW; ++ox) {
        const T** row = indirection + ((n * g.OH + oy) * g.OW + ox) * g.KH;
        const bool inside = ox >= e.left && ox < e.right_start;
        const size_t ei = ox < e.left ? ox : e.left + (ox - e.right_start);
        const size_t ix0 = ox * g.SW - g.PL;
        for (size_t ky = 0; ky < g.KH; ++ky) {
          const size_t iy = oy * g.SH + ky * g.DH - g.PT;  // wraps above the input: one test
          if (iy >= g.IH)
            row[ky] = zero;
          else if (inside)
            row[ky] = input + ((n * g.IH + iy) * g.IW + ix0) * C;
          else
            row[ky] = edges + (((n * g.OH + oy) * e.per_row + ei) * g.KH + ky) * slot;
        }
      }
}

template <class T>
void conv_rows_gather_edges(const ConvGeometry& g, const T* input, T pad, T* edges, size_t p0, size_t p1) {
  const RowEdges e = row_edges(g);
  const size_t C = g.C, OW = g.OW, slot = slot_elements<T>(g);
  for (size_t p = p0; p < p1; ++p) {
    const size_t ox = p % OW;
    if (ox >= e.left && ox < e.right_start) {  // an inside pixel: jump to the row's right edge
      p += e.right_start - ox - 1;
      continue;
    }
    const size_t n = p / (g.OH * OW), oy = p / OW % g.OH;
    const size_t ei = ox < e.left ? ox : e.left + (ox - e.right_start);
    const size_t ix0 = ox * g.SW - g.PL;
    for (size_t ky = 0; ky < g.KH; ++ky) {
      const size_t iy = oy * g.SH + ky * g.DH - g.PT;
      if (iy >= g.IH) continue;  // the indirection points at `zero`
      T* dst = edges + (((n * g.OH + oy) * e.per_row + ei) * g.KH + ky) * slot;
      const T* src = input + (n * g.IH + iy) * g.IW * C;
      for (size_t kx = 0; kx < g.KW; ++kx) {
        const size_t ix = ix0 + kx * g.DW;
        if (ix < g.IW)
          std::memcpy(dst + kx * C, src + ix * C, C * sizeof(T));
        else
          std::fill(dst + kx * C, dst + (kx + 1) * C, pad);
      }
    }
  }
}

template size_t conv_rows_edge_elements<float>(const ConvGeometry&);
template size_t conv_rows_edge_elements<uint8_t>(const ConvGeometry&);
template void conv_rows_indirection_init<float>(const ConvGeometry&, const float*, const float*, const float*,
                                                const float**);
template void conv_rows_indirection_init<uint8_t>(const ConvGeometry&, const uint8_t*, const uint8_t*, const uint8_t*,
                                                  const uint8_t**);
template void conv_rows_gather_edges<float>(const ConvGeometry&, const float*, float, float*, size_t, size_t);
template void conv_rows_gather_edges<uint8_t>(const ConvGeometry&, const uint8_t*, uint8_t, uint8_t*, size_t, size_t);

}  // namespace q8::kern
