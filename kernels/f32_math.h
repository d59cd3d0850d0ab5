// The fp32 exponential-family functions (exp, expm1, sigmoid, SiLU, tanh, erf) and the cheap
// activations, written once over an operations type O and instantiated for plain floats (the
// scalar reference, kernels/reference/f32_unary.cpp) and for every SIMD batch type
// (kernels/f32_simd.h). Only IEEE-754 single operations that every ISA has exactly are used: +, -,
// *, /, sqrt, fused multiply-add (O::fma, never a contracted a * b + c: the files that include
// this header are compiled with -ffp-contract=off), compare-and-select with the NaN behaviour
// spelled out, and integer bit manipulation to build 2^n. Every instantiation therefore performs
// the same operations in the same order and gives the same bits.
//
// O provides: F (float or batch), I (int32 or batch of int32), fma(a, b, c), select(mask, a, b),
// bits(F) -> I, from_bits(I) -> F, shift_to_exponent(k) = k << 23 (wrapping), and div(a, b) and
// sqrt(a), both correctly rounded. Comparisons are F's operators; a comparison with a NaN is
// false, so every clamp below (x < lo ? lo : x) passes a NaN through: NaN in gives NaN out.
//
// Lives in an unnamed namespace (see kernels/f32_simd.h): each translation unit, compiled with
// its own ISA flags, gets its own copy.
#pragma once

#include <cstdint>
#include <cstring>

namespace q8::kern {
namespace {  // NOLINT: per-translation-unit instantiations
namespace f32_math {

struct ScalarOps {
  using F = float;
  using I = int32_t;
  static F fma(F a, F b, F c) { return __builtin_fmaf(a, b, c); }
  static F select(bool m, F a, F b) { return m ? a : b; }
  static I bits(F x) {
    I i;
    std::memcpy(&i, &x, sizeof i);
    return i;
  }
  static F from_bits(I i) {
    F x;
    std::memcpy(&x, &i, sizeof x);
    return x;
  }
  static I shift_to_exponent(I k) { return static_cast<I>(static_cast<uint32_t>(k) << 23); }  // no signed overflow
  static F div(F a, F b) { return a / b; }
  static F sqrt(F x) { return __builtin_sqrtf(x); }
};

constexpr int32_t kSignBit = INT32_MIN;
constexpr int32_t kAbsMask = INT32_MAX;

// --- exp -------------------------------------------------------------------------------------
// x = n ln2 + r with n = round(x log2e) (ties to even) and |r| <= ln2/2 (a little more where the
// rounding of x log2e moves n). n comes from adding 1.5 * 2^23, which leaves n in the low
// mantissa bits of t and n exactly in t - 1.5 * 2^23. ln2 is split in two: kLn2Hi has 16
// significant bits, so x - n kLn2Hi is exact for |n| <= 256, and kLn2Lo carries the rest.
constexpr float kLog2e = 0x1.715476p+0f;
constexpr float kRoundShifter = 0x1.8p23f;
constexpr float kLn2Hi = 0x1.62e4p-1f;
constexpr float kLn2Lo = 0x1.7f7d1cp-20f;
// e^r - 1 - r = r^2 (c2 + c3 r + c4 r^2 + c5 r^3 + c6 r^4): a minimax fit of the relative error of
// e^r on |r| <= 0.35 (below 0.1 float ulp).
constexpr float kExpC2 = 0x1.fffffcp-2f, kExpC3 = 0x1.55548ap-3f, kExpC4 = 0x1.555916p-5f, kExpC5 = 0x1.123fd4p-7f,
                kExpC6 = 0x1.6a1a4ep-10f;
// Inputs are clamped to [kExpMin, kExpMax] first: e^-104 is below half the smallest subnormal
// (rounds to 0) and e^89 above the largest float (rounds to +inf), and the clamped range keeps n
// in [-150, 129], where 2^(n/2) is a normal float.
constexpr float kExpMin = -104.0f, kExpMax = 89.0f;

// n (as an integer and a float) and e^r - 1 for x (already clamped), |r| <= ln2/2 + a little.
template <class O>
inline typename O::F exp_reduce(typename O::F x, typename O::I& n) {
  using F = typename O::F;
  const F t = O::fma(x, F(kLog2e), F(kRoundShifter));
  const F nf = t - F(kRoundShifter);
  n = O::bits(t) - O::bits(F(kRoundShifter));
  F r = O::fma(nf, F(-kLn2Hi), x);
  r = O::fma(nf, F(-kLn2Lo), r);
  const F r2 = r * r;
  F q = F(kExpC6);
  q = O::fma(q, r, F(kExpC5));
  q = O::fma(q, r, F(kExpC4));
  q = O::fma(q, r, F(kExpC3));
  q = O::fma(q, r, F(kExpC2));
  return O::fma(q, r2, r);
}

// 2^k for k in [-126, 127].
template <class O>
inline typename O::F pow2(typename O::I k) {
  using I = typename O::I;
  return O::from_bits(O::shift_to_exponent(k + I(127)));
}

// e^x as (m, s) with e^x = m * s: m = e^r 2^(n/2 rounded down) is a normal float computed
// exactly from e^r; the single rounding of m * s gives the result, overflowing to +inf and
// rounding into the subnormals and to 0 as IEEE multiplication does. Callers that multiply e^x
// by something multiply m first, so a subnormal result is rounded once, at the end.
//
// x is clamped to [lo, kExpMax]: lo = kExpMin for e^x itself; a caller that scales e^x up by up to
// 2^7 before the last rounding (SiLU) passes -128, where n/2 is still a normal exponent. Callers
// whose x is never positive (e^-|x|, e^-x^2) pass kNonPositive and skip the upper clamp, which
// could not change such an x (nor a NaN).
template <class O, bool kNonPositive = false>
inline typename O::F exp_parts(typename O::F x, typename O::F& s, float lo = kExpMin) {
  using F = typename O::F;
  using I = typename O::I;
  x = O::select(x < F(lo), F(lo), x);
  if constexpr (!kNonPositive) x = O::select(x > F(kExpMax), F(kExpMax), x);
  I n;
  const F p = exp_reduce<O>(x, n) + F(1.0f);
  const I n1 = n >> 1;
  s = pow2<O>(n - n1);
  return p * pow2<O>(n1);
}

template <class O, bool kNonPositive = false>
inline typename O::F exp(typename O::F x) {
  typename O::F s;
  const typename O::F m = exp_parts<O, kNonPositive>(x, s);
  return m * s;
}

// e^x - 1 for x in [-30, 0] (callers clamp): 2^n (e^r - 1) + (2^n - 1) with one rounding, so
// there is no cancellation near 0 (n = 0 gives e^r - 1 itself).
template <class O>
inline typename O::F expm1_nonpositive(typename O::F x) {
  using F = typename O::F;
  typename O::I n;
  const F pm1 = exp_reduce<O>(x, n);
  const F s = pow2<O>(n);
  return O::fma(s, pm1, s - F(1.0f));
}

// --- functions of e^-|x| -----------------------------------------------------------------------
// sigmoid(x) = 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) for x < 0, both from e = e^-|x| in
// (0, 1], so nothing overflows and a tiny result keeps its relative accuracy.
template <class O>
inline typename O::F abs(typename O::F x) {
  using I = typename O::I;
  return O::from_bits(O::bits(x) & I(kAbsMask));
}

template <class O>
inline typename O::F sigmoid(typename O::F x) {
  using F = typename O::F;
  F s;
  const F m = exp_parts<O, true>(-abs<O>(x), s);
  const F e = m * s;
  return O::div(O::select(x < F(0.0f), e, F(1.0f)), e + F(1.0f));
}

// silu(x) = x / (1 + e^-x) for x >= 0 and x e^x / (1 + e^x) for x < 0. x e^x is (x m) s, so a
// subnormal e^x does not lose x e^x's accuracy; x e^x stays above half the smallest subnormal
// down to x = -110, so exp is clamped at -128 rather than -104, and x too (x e^x is -0 there, and
// -inf * 0 would be a NaN).
constexpr float kSiluMin = -128.0f;

template <class O>
inline typename O::F silu(typename O::F x) {
  using F = typename O::F;
  F s;
  const F m = exp_parts<O, true>(-abs<O>(x), s, kSiluMin);
  const F e = m * s;
  const F xc = O::select(x < F(kSiluMin), F(kSiluMin), x);
  return O::div(O::select(x < F(0.0f), (xc * m) * s, x), e + F(1.0f));
}

// tanh(x) = sign(x) t(|x|). Below 0.625, t(a) = a + a^3 P(a^2), an odd minimax polynomial (no
// cancellation for small a; relative error below 0.05 ulp). From 0.625 on, t = (1 - e) / (1 + e)
// with e = e^-2a <= 0.29, so 1 - e loses nothing; t reaches 1 in float near a = 9 by itself.
constexpr float kTanhSmall = 0.625f;
constexpr float kTanhP0 = -0x1.555554p-2f, kTanhP1 = 0x1.111066p-3f, kTanhP2 = -0x1.b9ee90p-5f,
                kTanhP3 = 0x1.638b52p-6f, kTanhP4 = -0x1.0bf4dep-7f, kTanhP5 = 0x1.18e174p-9f;

template <class O>
inline typename O::F tanh(typename O::F x) {
  using F = typename O::F;
  using I = typename O::I;
  const F a = abs<O>(x);
  const F u = a * a;
  F p = F(kTanhP5);
  p = O::fma(p, u, F(kTanhP4));
  p = O::fma(p, u, F(kTanhP3));
  p = O::fma(p, u, F(kTanhP2));
  p = O::fma(p, u, F(kTanhP1));
  p = O::fma(p, u, F(kTanhP0));
  const F small = O::fma(a * u, p, a);
  const F e = exp<O, true>(-(a + a));
  const F large = O::div(F(1.0f) - e, F(1.0f) + e);
  const F t = O::select(a < F(kTanhSmall), small, large);
  return O::from_bits(O::bits(t) | (O::bits(x) & I(kSignBit)));
}

// erf(x) = sign(x) t(|x|). Below 0.875, t(a) = a + a Q(a^2) with Q = erf(a)/a - 1 a minimax
// polynomial (Q(0) = 2/sqrt(pi) - 1, so the leading coefficient's rounding costs little). From
// 0.875 on, t = 1 - e^-a^2 G(a) where G = erfc(a) e^(a^2), a smooth function fitted by a
// polynomial in a - 2.4375 on [0.875, 4]; past 4, erf is 1 in float, and a is clamped to 4.
constexpr float kErfSmall = 0.875f, kErfMax = 4.0f, kErfCenter = 2.4375f;
constexpr float kErfQ0 = 0x1.06eba8p-3f, kErfQ1 = -0x1.812744p-2f, kErfQ2 = 0x1.ce2e84p-4f, kErfQ3 = -0x1.b819a6p-6f,
                kErfQ4 = 0x1.553abap-8f, kErfQ5 = -0x1.ae7f8cp-11f, kErfQ6 = 0x1.6bdf38p-14f;
constexpr float kErfG0 = 0x1.b97380p-3f, kErfG1 = -0x1.3db4dep-4f, kErfG2 = 0x1.b1ea5ep-6f, kErfG3 = -0x1.1afce2p-7f,
                kErfG4 = 0x1.70b164p-9f, kErfG5 = -0x1.66c2c8p-11f, kErfG6 = 0x1.e974e8p-13f, kErfG7 = -0x1.b38a9ep-13f,
                kErfG8 = -0x1.9743e0p-14f, kErfG9 = -0x1.4569b6p-15f;

template <class O>
inline typename O::F erf(typename O::F x) {
  using F = typename O::F;
  using I = typename O::I;
  const F a = abs<O>(x);
  const F u = a * a;
  F q = F(kErfQ6);
  q = O::fma(q, u, F(kErfQ5));
  q = O::fma(q, u, F(kErfQ4));
  q = O::fma(q, u, F(kErfQ3));
  q = O::fma(q, u, F(kErfQ2));
  q = O::fma(q, u, F(kErfQ1));
  q = O::fma(q, u, F(kErfQ0));
  const F small = O::fma(a, q, a);
  const F ac = O::select(a > F(kErfMax), F(kErfMax), a);
  const F v = ac - F(kErfCenter);
  F g = F(kErfG9);
  g = O::fma(g, v, F(kErfG8));
  g = O::fma(g, v, F(kErfG7));
  g = O::fma(g, v, F(kErfG6));
  g = O::fma(g, v, F(kErfG5));
  g = O::fma(g, v, F(kErfG4));
  g = O::fma(g, v, F(kErfG3));
  g = O::fma(g, v, F(kErfG2));
  g = O::fma(g, v, F(kErfG1));
  g = O::fma(g, v, F(kErfG0));
  const F e = exp<O, true>(-(ac * ac));
  const F large = O::fma(-e, g, F(1.0f));
  const F t = O::select(a < F(kErfSmall), small, large);
  return O::from_bits(O::bits(t) | (O::bits(x) & I(kSignBit)));
}

// gelu(x) = x Phi(x) in the form PyTorch exports nn.GELU as (Div, Erf, Add, Mul, Mul):
// ((x * (erf(x / sqrt2) + 1)) * 0.5, each step one float operation in that order, so the fused op
// gives the bits of the graph it replaces.
constexpr float kGeluSqrt2 = 1.41421353816986083984375f;  // float(sqrt(2)), the constant PyTorch writes

template <class O>
inline typename O::F gelu(typename O::F x) {
  using F = typename O::F;
  return (x * (erf<O>(O::div(x, F(kGeluSqrt2))) + F(1.0f))) * F(0.5f);
}

// ONNX's Elu: x < 0 ? alpha (e^x - 1) : x. Below -30, e^x - 1 is -1 in float.
template <class O>
inline typename O::F elu(typename O::F x, typename O::F alpha) {
  using F = typename O::F;
  F xe = O::select(x < F(-30.0f), F(-30.0f), x);
  xe = O::select(xe > F(0.0f), F(0.0f), xe);
  return O::select(x < F(0.0f), alpha * expm1_nonpositive<O>(xe), x);
}

// --- the cheap ones, in ONNX's float formulas ---------------------------------------------------
// HardSigmoid: max(0, min(1, alpha * x + beta)): a multiply, then an add; NaN passes through.
template <class O>
inline typename O::F hard_sigmoid(typename O::F x, typename O::F alpha, typename O::F beta) {
  using F = typename O::F;
  F v = alpha * x;
  v = v + beta;
  v = O::select(v < F(0.0f), F(0.0f), v);
  return O::select(v > F(1.0f), F(1.0f), v);
}

template <class O>
inline typename O::F hard_swish(typename O::F x) {
  using F = typename O::F;
  return x * hard_sigmoid<O>(x, F(1.0f / 6.0f), F(0.5f));
}

template <class O>
inline typename O::F leaky_relu(typename O::F x, typename O::F alpha) {
  using F = typename O::F;
  return O::select(x < F(0.0f), alpha * x, x);
}

}  // namespace f32_math
}  // namespace
}  // namespace q8::kern
