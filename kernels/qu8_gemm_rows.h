// The dense GEMM entries of a table (QU8Kernels::gemm and ::gemm_dequantize) through the tiles
// of its indirect GEMM, which take one pointer per row and tap: a dense A is the case of one tap
// (ks = 1) with row i at a + i * a_stride. Inside an anonymous namespace: each GEMM file compiles
// its own copy with its own ISA flags (a shared inline copy could be one built for another ISA).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/qu8.h"

namespace q8::kern {
namespace {  // NOLINT: per-translation-unit instantiations

// A tile of a GEMM file: nc (<= NR) output channels of its rows, kc input channels, ks taps; row
// r's tap t is a[r * ks + t]. Out is uint8_t (requantized by p) or float (dequantized; p unused).
template <class Out>
using TileFn = void (*)(size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w, Out* c,
                        size_t c_stride, const QU8Requant& p);

// Rows [0, mr) of a dense A, MR at a time (so any mr): select(rows, nc) is the file's tile for
// `rows` (1..MR) rows and nc channels.
template <size_t MR, class Out, class Select>
inline void gemm_rows(Select select, size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                      Out* c, size_t c_stride, const QU8Requant& p) {
  for (size_t i0 = 0; i0 < mr; i0 += MR) {
    const size_t rows_here = mr - i0 < MR ? mr - i0 : MR;
    const uint8_t* rows[MR];
    for (size_t i = 0; i < rows_here; ++i) rows[i] = a + (i0 + i) * a_stride;
    select(rows_here, nc)(nc, kc, 1, rows, w, c + i0 * c_stride, c_stride, p);
  }
}

}  // namespace
}  // namespace q8::kern
