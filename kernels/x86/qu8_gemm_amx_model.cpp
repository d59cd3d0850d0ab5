// The AMX micro-kernel driver (qu8_gemm_amx_driver.h) over the scalar tile model
// (amx_tile_model.h), with a scalar epilogue: the same loop the real AMX kernels run, testable on
// any x86 CPU. Compiled without ISA flags (and with -ffp-contract=off, like the reference), so
// nothing in it needs more than the baseline CPU. For tests only; dispatch never chooses it.
#include <algorithm>
#include <cmath>

#include "kernels/qu8_internal.h"
#include "kernels/x86/amx_tile_model.h"
#include "kernels/x86/qu8_gemm_amx_driver.h"

namespace q8::kern {
namespace {

struct ModelTiles {
  static void configure(const amx_model::TileConfig& c) { amx_model::ldtilecfg(c); }
  static void release() { amx_model::tilerelease(); }
  template <int T>
  static void zero() {
    amx_model::tilezero(T);
  }
  template <int T>
  static void load(const void* base, ptrdiff_t stride) {
    amx_model::tileloadd(T, base, stride);
  }
  template <int T>
  static void store(void* base, ptrdiff_t stride) {
    amx_model::tilestored(T, base, stride);
  }
  template <int C, int A, int B>
  static void dpbusd() {
    amx_model::tdpbusd(C, A, B);
  }
  // qu8.h's requantization of acc + bias' for channels [0, nc), as the scalar reference does it.
  static void requantize_row(const int32_t* acc, const uint8_t* bias, const uint8_t* mult, size_t nc, uint8_t* out,
                             const QU8Requant& p) {
    const float lo = static_cast<float>(int32_t{p.out_min} - p.out_zero_point);
    const float hi = static_cast<float>(int32_t{p.out_max} - p.out_zero_point);
    for (size_t n = 0; n < nc; ++n) {
      int32_t b;
      float m;
      std::memcpy(&b, bias + 4 * n, 4);
      std::memcpy(&m, mult + 4 * n, 4);
      const int32_t sum = static_cast<int32_t>(static_cast<uint32_t>(acc[n]) + static_cast<uint32_t>(b));
      float x = static_cast<float>(sum) * m;
      x = std::min(std::max(x, lo), hi);
      out[n] = static_cast<uint8_t>(static_cast<int32_t>(std::nearbyintf(x)) + p.out_zero_point);
    }
  }
};

}  // namespace

void qu8_igemm_16x32c4__amx_model(size_t mr, size_t nc, size_t kc, size_t ks, const uint8_t* const* a, const void* w,
                                  uint8_t* c, size_t c_stride, const QU8Requant& p) {
  amx::igemm<ModelTiles>(mr, nc, kc, ks, a, w, c, c_stride, p);
}

void qu8_gemm_16x32c4__amx_model(size_t mr, size_t nc, size_t kc, const uint8_t* a, size_t a_stride, const void* w,
                                 uint8_t* c, size_t c_stride, const QU8Requant& p) {
  amx::gemm<ModelTiles>(mr, nc, kc, a, a_stride, w, c, c_stride, p);
}

void qu8_amx_model_release_thread() { amx::release<ModelTiles>(); }

const QU8Kernels* qu8_kernels_amx_model() {
  static const QU8Kernels table = [] {
    QU8Kernels t = *qu8_kernels_scalar();  // the non-GEMM entries: scalar, they run anywhere
    t.isa = "amx_model";
    t.mr = kQu8AmxMR;
    t.nr = kQu8AmxNR;
    t.kr = 4;
    t.weight_bytes = 1;
    t.igemm = Q8_KERNEL(qu8_igemm_16x32c4__amx_model);
    t.gemm = Q8_KERNEL(qu8_gemm_16x32c4__amx_model);
    t.gemm_dequantize = Q8_KERNEL(qu8_gemm_dequantize_16x32c4__scalar);  // the amx table's packing
    return t;
  }();
  return &table;
}

}  // namespace q8::kern
