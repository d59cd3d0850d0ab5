// Q8_UNROLL, before a loop whose trip count is a small constant (the rows, vectors or taps of a
// register tile): GCC unrolls it completely, so the arrays it indexes stay in registers.
#pragma once

// Q8_FLATTEN, on a function: every call in it is inlined, however deep, so values built of
// several vectors (f32_simd.h's Group) stay in registers instead of being passed through memory.
#if defined(__GNUC__)
#define Q8_UNROLL _Pragma("GCC unroll 32")
#define Q8_FLATTEN __attribute__((flatten))
#else
#define Q8_UNROLL
#define Q8_FLATTEN
#endif
