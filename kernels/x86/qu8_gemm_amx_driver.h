// The AMX int8 GEMM / indirect GEMM micro-kernel, written once over a "tile ops" policy `Ops`:
// kernels/x86/qu8_gemm_amx.cpp instantiates it with the AMX intrinsics and an AVX-512 epilogue,
// kernels/x86/qu8_gemm_amx_model.cpp with the scalar tile model (amx_tile_model.h) and a scalar
// epilogue, so everything here (gathering A rows, the K tail, which B rows each tile load takes,
// the epilogue's order) is tested byte for byte on CPUs without AMX.
//
// Tile of 16 rows x 32 output channels (mr = 16, nr = 32). Tile registers (palette 1):
//   tmm0, tmm1  C: 16 rows x 16 int32, output channels 0-15 and 16-31
//   tmm2        A: 16 rows x 64 uint8, 64 input channels of 16 rows
//   tmm3, tmm4  B: 16 rows x 64 int8, one K block (4 channels x 16 lanes) per row
//   tmm5-7      the same three for the K tail (kc not a multiple of 64): A 16 x 4tb bytes, B tb rows
// The packed panel (qu8.h) stores K block b as 32 lanes x 4 int8 = 128 bytes: lanes 0-15 are the
// first 64 bytes, which is exactly one B tile row, so 16 consecutive blocks load straight from the
// panel as B tiles with stride 128 (lanes 16-31 at +64). No repacking.
//
// K tail: with blocks = ceil(kc / 4) and tb = blocks % 16, the last step uses tiles 5-7 configured
// for tb blocks (A colsb = 4 tb, B rows = tb): loads never pass the panel or 4 tb bytes of a row,
// i.e. the row's kc bytes plus the up to 3 bytes of slack qu8.h allows, which meet zero weights.
// The configuration thus depends on tb only, so a thread loads it once per tb (once per layer
// shape) and keeps it across calls (State below).
//
// A rows: a tile load takes 16 rows at one stride. The gemm with 16 rows, and an igemm tap whose 16
// row pointers are equally spaced (consecutive output pixels of a stride-s conv away from the
// padding), load straight from the activations; otherwise the rows of each 64-channel step are
// copied into a 64-byte aligned 1 KiB buffer on the stack (rows past mr stay zero).
//
// Everything here has internal linkage on purpose: this header is compiled once with AMX and
// AVX-512 flags and once for the baseline CPU, and an inline function with external linkage
// would be merged across the two, letting the linker hand the model an AVX-512 copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>

#include "kernels/qu8.h"
#include "kernels/x86/amx_tile_model.h"  // TileConfig

namespace q8::kern {
namespace {  // NOLINT(build/namespaces): see above
namespace amx {

using amx_model::TileConfig;

constexpr size_t kMR = 16, kNR = 32;
constexpr size_t kStepBlocks = 16;                       // K blocks (of 4 channels) per A tile: 64 channels
constexpr size_t kBlockBytes = kNR * 4;                  // one packed K block of the panel
enum : int { kC0, kC1, kA, kB0, kB1, kAt, kB0t, kB1t };  // tile registers, see above

// Palette 1 configuration for a K tail of tb blocks (0 <= tb < 16).
inline TileConfig make_config(size_t tb) {
  TileConfig c;
  c.palette_id = 1;
  for (int t : {kC0, kC1, kA, kB0, kB1}) {
    c.rows[t] = 16;
    c.colsb[t] = 64;
  }
  if (tb) {
    c.rows[kAt] = 16;
    c.colsb[kAt] = static_cast<uint16_t>(4 * tb);
    for (int t : {kB0t, kB1t}) {
      c.rows[t] = static_cast<uint8_t>(tb);
      c.colsb[t] = 64;
    }
  }
  return c;
}

// Which configuration this thread's tile registers hold: -1 none (never loaded, or released),
// else tb. Per thread because tile registers are (the OS saves them with the thread), so any
// number of threads and sessions run these kernels at once. It assumes nothing else loads a tile
// configuration on the thread between two of these kernels; code that does must call
// qu8_amx_release_thread() first (kernels/qu8.h).
template <class Ops>
thread_local int tl_config = -1;

template <class Ops>
inline void ensure_config(size_t tb) {
  if (tl_config<Ops> == static_cast<int>(tb)) return;
  const TileConfig c = make_config(tb);
  Ops::configure(c);
  tl_config<Ops> = static_cast<int>(tb);
}

template <class Ops>
inline void release() {
  if (tl_config<Ops> < 0) return;
  Ops::release();
  tl_config<Ops> = -1;
}

// `bytes` (a multiple of 4) of a row; constant 64 for whole steps, 4 tb for the tail.
inline void copy_row(uint8_t* dst, const uint8_t* src, size_t bytes) {
  if (bytes == 64) {
    std::memcpy(dst, src, 64);
  } else {
    for (size_t i = 0; i < bytes; i += 4) std::memcpy(dst + i, src + i, 4);
  }
}

// Row r of tap t is rows[r * ks + t] (igemm), or base + r * stride for every tap (gemm: ks == 1).
struct Rows {
  const uint8_t* const* ptrs = nullptr;
  const uint8_t* base = nullptr;
  size_t stride = 0;
};

// One A step: K blocks [b0, b0 + nb) of the 16 rows into tile A (or At for the tail), loaded straight
// from the rows when they are evenly spaced (`direct`), else through `buf`.
template <class Ops, int ATile>
inline void load_a(size_t mr, bool direct, const uint8_t* first, ptrdiff_t spacing, const uint8_t* const* rows,
                   size_t ks, size_t b0, size_t nb, uint8_t* buf) {
  if (direct) {
    Ops::template load<ATile>(first + 4 * b0, spacing);
    return;
  }
  for (size_t r = 0; r < mr; ++r) copy_row(buf + 64 * r, rows[r * ks] + 4 * b0, 4 * nb);
  Ops::template load<ATile>(buf, 64);
}

template <class Ops>
void kernel(size_t mr, size_t nc, size_t kc, size_t ks, const Rows& rows, const void* w, uint8_t* c, size_t c_stride,
            const QU8Requant& p) {
  const size_t blocks = (kc + 3) / 4, steps = blocks / kStepBlocks, tb = blocks % kStepBlocks;
  const bool two = nc > 16;  // channels 16-31 exist in this call
  ensure_config<Ops>(tb);

  alignas(64) uint8_t buf[kMR * 64];
  if (mr < kMR) std::memset(buf + 64 * mr, 0, 64 * (kMR - mr));  // rows past mr: zero, results unused
  const uint8_t* pw = static_cast<const uint8_t*>(w);
  const uint8_t* wk = pw + kNR * sizeof(int32_t);  // the packed K blocks, after the biases

  Ops::template zero<kC0>();
  if (two) Ops::template zero<kC1>();
  for (size_t t = 0; t < ks; ++t) {
    // Where tap t's 16 rows start and whether one stride reaches them all.
    const uint8_t* first;
    ptrdiff_t spacing = 0;
    bool direct = false;
    const uint8_t* const* tap_rows = rows.ptrs ? rows.ptrs + t : nullptr;
    if (!rows.ptrs) {
      first = rows.base;
      spacing = static_cast<ptrdiff_t>(rows.stride);
      direct = mr == kMR;
    } else {
      first = tap_rows[0];
      if (mr == kMR) {
        const uintptr_t a0 = reinterpret_cast<uintptr_t>(tap_rows[0]);
        const uintptr_t d = reinterpret_cast<uintptr_t>(tap_rows[ks]) - a0;
        direct = true;
        for (size_t r = 2; r < kMR && direct; ++r) direct = reinterpret_cast<uintptr_t>(tap_rows[r * ks]) == a0 + r * d;
        spacing = static_cast<ptrdiff_t>(d);
      }
    }
    const uint8_t* base_rows[kMR];  // the gather's row pointers for the gemm (rows.ptrs == null)
    if (!rows.ptrs && !direct) {
      for (size_t r = 0; r < mr; ++r) base_rows[r] = rows.base + r * rows.stride;
      tap_rows = base_rows;
    }
    const size_t row_ks = rows.ptrs ? ks : 1;

    const uint8_t* wt = wk + t * blocks * kBlockBytes;
    for (size_t s = 0; s < steps; ++s) {
      load_a<Ops, kA>(mr, direct, first, spacing, tap_rows, row_ks, s * kStepBlocks, kStepBlocks, buf);
      const uint8_t* ws = wt + s * kStepBlocks * kBlockBytes;
      Ops::template load<kB0>(ws, kBlockBytes);
      Ops::template dpbusd<kC0, kA, kB0>();
      if (two) {
        Ops::template load<kB1>(ws + 64, kBlockBytes);
        Ops::template dpbusd<kC1, kA, kB1>();
      }
    }
    if (tb) {
      load_a<Ops, kAt>(mr, direct, first, spacing, tap_rows, row_ks, steps * kStepBlocks, tb, buf);
      const uint8_t* ws = wt + steps * kStepBlocks * kBlockBytes;
      Ops::template load<kB0t>(ws, kBlockBytes);
      Ops::template dpbusd<kC0, kAt, kB0t>();
      if (two) {
        Ops::template load<kB1t>(ws + 64, kBlockBytes);
        Ops::template dpbusd<kC1, kAt, kB1t>();
      }
    }
  }

  // acc[r][n] = sum of a * w; the epilogue adds bias' (integer sums wrap, so the order does not
  // matter) and requantizes row by row, in qu8.h's float order.
  alignas(64) int32_t acc[kMR][kNR];
  Ops::template store<kC0>(&acc[0][0], kNR * sizeof(int32_t));
  if (two) Ops::template store<kC1>(&acc[0][16], kNR * sizeof(int32_t));
  const uint8_t* bias = pw;                              // nr int32
  const uint8_t* mult = wk + ks * blocks * kBlockBytes;  // nr float
  for (size_t r = 0; r < mr; ++r) Ops::requantize_row(acc[r], bias, mult, nc, c + r * c_stride, p);
}

template <class Ops>
void igemm(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w, uint8_t* c,
           size_t c_stride, const QU8Requant& p) {
  Rows rows;
  rows.ptrs = a;
  kernel<Ops>(mr, nc, kc, ks, rows, w, c, c_stride, p);
}

template <class Ops>
void gemm(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w, uint8_t* c,
          size_t c_stride, const QU8Requant& p) {
  Rows rows;
  rows.base = a;
  rows.stride = a_stride;
  kernel<Ops>(mr, nc, kc, 1, rows, w, c, c_stride, p);
}

}  // namespace amx
}  // namespace
}  // namespace q8::kern
