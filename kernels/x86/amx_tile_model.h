// A scalar C++ model of the AMX tile instructions the int8 kernels use (palette 1: eight tiles of
// up to 16 rows x 64 bytes), over plain arrays, so the AMX micro-kernel driver
// (kernels/x86/qu8_gemm_amx_driver.h) runs and is tested on any x86 CPU. It follows the Intel SDM's
// pseudocode for LDTILECFG, TILELOADD, TILESTORED, TILEZERO, TDPBUSD and TILERELEASE, including
// the conditions under which the hardware raises #UD: a use the hardware would refuse aborts here
// with a message, so the model tests also check that the driver's tile configuration is legal.
// Loads and stores touch exactly rows x colsb bytes, as the hardware does, so the kernel testers'
// guard pages catch any over-read. The state is per thread, like the real tile registers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace q8::kern::amx_model {

// The 64-byte LDTILECFG operand (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette_id = 0;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};  // bytes per row of tile i (only 0..7 exist in palette 1)
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64, "LDTILECFG reads 64 bytes");

constexpr int kTiles = 8, kMaxRows = 16, kMaxColsb = 64;

// What the model executed on this thread, for tests of the driver's use of the tiles.
struct Counters {
  uint64_t configs = 0, releases = 0, loads = 0, stores = 0, dpbusd = 0;
  ptrdiff_t last_load_stride[kTiles] = {};
};

struct State {
  bool configured = false;
  TileConfig cfg;
  uint8_t t[kTiles][kMaxRows][kMaxColsb] = {};
  Counters n;
};

inline State& state() {
  static thread_local State s;
  return s;
}

[[noreturn]] inline void fault(const char* insn, const char* why) {
  std::fprintf(stderr, "AMX tile model: %s would raise #UD: %s\n", insn, why);
  std::abort();
}

inline void check_tile(const char* insn, int i) {
  const State& s = state();
  if (!s.configured) fault(insn, "tiles are not configured (no LDTILECFG since TILERELEASE)");
  if (i < 0 || i >= kTiles) fault(insn, "no such tile register");
  if (s.cfg.rows[i] == 0 || s.cfg.colsb[i] == 0) fault(insn, "tile is not configured (rows or colsb 0)");
}

// LDTILECFG: validates the palette, zeroes every tile.
inline void ldtilecfg(const TileConfig& c) {
  if (c.palette_id != 1) fault("LDTILECFG", "palette is not 1");
  for (uint8_t r : c.reserved)
    if (r) fault("LDTILECFG", "reserved bytes are not zero");
  for (int i = 0; i < 16; ++i) {
    const bool exists = i < kTiles;
    if (c.rows[i] > (exists ? kMaxRows : 0) || c.colsb[i] > (exists ? kMaxColsb : 0))
      fault("LDTILECFG", "rows or colsb beyond the palette");
    if ((c.rows[i] == 0) != (c.colsb[i] == 0)) fault("LDTILECFG", "a tile with rows but no colsb, or the reverse");
  }
  State& s = state();
  s.cfg = c;
  s.configured = true;
  std::memset(s.t, 0, sizeof s.t);
  ++s.n.configs;
}

inline void tilerelease() {
  State& s = state();
  s.configured = false;
  s.cfg = TileConfig{};
  std::memset(s.t, 0, sizeof s.t);
  ++s.n.releases;
}

inline void tilezero(int i) {
  check_tile("TILEZERO", i);
  std::memset(state().t[i], 0, sizeof state().t[i]);
}

// Rows [0, rows) of colsb bytes each from base + r * stride; the rest of the tile becomes zero.
inline void tileloadd(int i, const void* base, ptrdiff_t stride) {
  check_tile("TILELOADD", i);
  State& s = state();
  std::memset(s.t[i], 0, sizeof s.t[i]);
  for (int r = 0; r < s.cfg.rows[i]; ++r)
    std::memcpy(s.t[i][r], static_cast<const uint8_t*>(base) + r * stride, s.cfg.colsb[i]);
  ++s.n.loads;
  s.n.last_load_stride[i] = stride;
}

inline void tilestored(int i, void* base, ptrdiff_t stride) {
  check_tile("TILESTORED", i);
  State& s = state();
  for (int r = 0; r < s.cfg.rows[i]; ++r)
    std::memcpy(static_cast<uint8_t*>(base) + r * stride, s.t[i][r], s.cfg.colsb[i]);
  ++s.n.stores;
}

// TDPBUSD dst, a, b: for m < rows(dst), n < colsb(dst)/4, k < colsb(a)/4:
//   dst[m][n] += a[m][4k..4k+3] (uint8) . b[k][4n..4n+3] (int8), in int32 that wraps.
inline void tdpbusd(int dst, int a, int b) {
  check_tile("TDPBUSD", dst);
  check_tile("TDPBUSD", a);
  check_tile("TDPBUSD", b);
  State& s = state();
  const TileConfig& c = s.cfg;
  if (dst == a || dst == b || a == b) fault("TDPBUSD", "tile operands are not distinct");
  if (c.colsb[dst] % 4 || c.colsb[a] % 4) fault("TDPBUSD", "colsb not a multiple of 4");
  if (c.rows[dst] != c.rows[a]) fault("TDPBUSD", "rows(dst) != rows(a)");
  if (c.colsb[dst] != c.colsb[b]) fault("TDPBUSD", "colsb(dst) != colsb(b)");
  if (c.colsb[a] != 4 * c.rows[b]) fault("TDPBUSD", "colsb(a) != 4 * rows(b)");
  for (int m = 0; m < c.rows[dst]; ++m)
    for (int n = 0; n < c.colsb[dst] / 4; ++n) {
      uint32_t acc;
      std::memcpy(&acc, &s.t[dst][m][4 * n], 4);
      for (int k = 0; k < c.colsb[a] / 4; ++k)
        for (int j = 0; j < 4; ++j) {
          const int32_t prod = int32_t{s.t[a][m][4 * k + j]} * int32_t{static_cast<int8_t>(s.t[b][k][4 * n + j])};
          acc += static_cast<uint32_t>(prod);
        }
      std::memcpy(&s.t[dst][m][4 * n], &acc, 4);
    }
  ++s.n.dpbusd;
}

}  // namespace q8::kern::amx_model
