// pin_registers(x): an empty asm that takes every vector in x (one register or a nested array of
// them, a tile's accumulators) as an in-out register operand. It emits no instruction.
//
// Why: when a tile's accumulators stay live from its loop over K into the epilogue, GCC 12's
// register allocator keeps some of them in stack slots, copies each through a scratch register
// and stores it on every step of the loop, and the epilogue reads them back from the stack (the
// 6x64 int8 tile stored 20 of its 24 zmm accumulators per step). Pinned where the loop ends, they
// get registers throughout: the loop has no stores and the epilogue reads registers. The array
// must already be scalarized for that, so every loop over its rows and vectors carries Q8_UNROLL.
#pragma once

#include <cstddef>

#include "kernels/unroll.h"

namespace q8::kern {
namespace {  // NOLINT: per-ISA instantiations, like the kernels that call it

template <class Register>
inline void pin_registers(Register& x) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  asm("" : "+v"(x));  // any xmm/ymm/zmm register
#elif defined(__GNUC__) && defined(__aarch64__)
  asm("" : "+w"(x));  // any SIMD register
#else
  (void)x;
#endif
}

template <class T, size_t N>
inline void pin_registers(T (&x)[N]) {
  Q8_UNROLL
  for (size_t i = 0; i < N; ++i) pin_registers(x[i]);
}

}  // namespace
}  // namespace q8::kern
