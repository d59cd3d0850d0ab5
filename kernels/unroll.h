// Q8_UNROLL, before a loop whose trip count is a small constant (the rows, vectors or taps of a
// register tile): GCC unrolls it completely, so the arrays it indexes stay in registers.
#pragma once

#if defined(__GNUC__)
#define Q8_UNROLL _Pragma("GCC unroll 32")
#else
#define Q8_UNROLL
#endif
