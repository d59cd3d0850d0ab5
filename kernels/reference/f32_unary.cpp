// Element-wise activations, one portable implementation that every fp32 table points to.
//
// libm's exp, tanh and erf differ between C libraries and CPUs in the last bit, so the functions
// here are q8's own: exp as 2^k * P(r) with a Taylor polynomial on |r| <= ln2/2, erf as its
// Maclaurin series, everything in double and rounded to float once, so the float result is within
// about one ulp of the exact value. Only IEEE-exact operations are used (+, -, *, /, sqrt, int/float
// conversions), and the file is built with -ffp-contract=off (kernels/CMakeLists.txt),
// so every CPU gives the same bits.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/f32.h"

namespace q8::kern {
namespace {

// 1/n! for n = 0..13, each rounded once (the compiler folds the divisions exactly).
struct InvFactorials {
  double v[14];
  constexpr InvFactorials() : v() {
    double f = 1.0;
    for (int n = 0; n < 14; ++n) {
      if (n > 1) f *= n;  // exact: 13! < 2^53
      v[n] = 1.0 / f;
    }
  }
};
constexpr InvFactorials kInvFactorial;

// 2^k as a double, for k in [-1022, 1023].
double pow2(int k) {
  const uint64_t bits = static_cast<uint64_t>(k + 1023) << 52;
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// e^x for finite x in [-700, 700]: x = k ln2 + r, |r| <= ln2/2, e^r by Taylor to r^13 (the
// remainder is below 2^-60 relative). ln2 is split so that k * kLn2Hi is exact for |k| < 2^20.
double exp_d(double x) {
  constexpr double kLog2e = 1.4426950408889634;
  constexpr double kLn2Hi = 0x1.62e42fefa0000p-1;
  constexpr double kLn2Lo = 0x1.cf79abc9e3b3ap-40;
  // k: x / ln2 rounded to an integer (half away from zero; truncating conversions are exact).
  const double t = x * kLog2e;
  const int ki = static_cast<int>(t < 0 ? t - 0.5 : t + 0.5);
  const double k = ki;
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;
  double p = kInvFactorial.v[13];
  for (int i = 12; i >= 0; --i) p = p * r + kInvFactorial.v[i];
  return p * pow2(ki);
}

// e^x - 1, accurate also near 0 (where e^x - 1 would cancel).
double expm1_d(double x) {
  if (std::fabs(x) < 1e-5) return x + x * x * 0.5 + x * x * x * (1.0 / 6.0);
  return exp_d(x) - 1.0;
}

// Float inputs are clamped where the float result no longer changes, so exp_d stays in range.
double clamp_d(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

double sigmoid_d(double x) { return 1.0 / (1.0 + exp_d(-clamp_d(x, -120.0, 120.0))); }

double tanh_d(double x) {
  const double a = std::fabs(x);
  double t;
  if (a < 1e-4) {
    t = a - a * a * a * (1.0 / 3.0);
  } else {
    const double e = expm1_d(2.0 * clamp_d(a, 0.0, 20.0));
    t = e / (e + 2.0);
  }
  return x < 0 ? -t : t;
}

// erf by its Maclaurin series, 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1)), summed until a
// term no longer changes the sum (at most kErfTerms terms: |x| < 4 needs about 65); past |x| = 4
// the float result is +-1. The largest term (about 1e5 at |x| = 4) leaves an absolute error near
// 1e-11, far below a float ulp of the result. The divisions by n and 2n + 1 are multiplications
// by reciprocals from a table folded at compile time.
constexpr int kErfTerms = 100;
struct ErfReciprocals {
  double inv_n[kErfTerms], inv_odd[kErfTerms];  // 1/n and 1/(2n + 1)
  constexpr ErfReciprocals() : inv_n(), inv_odd() {
    for (int n = 1; n < kErfTerms; ++n) inv_n[n] = 1.0 / n, inv_odd[n] = 1.0 / (2 * n + 1);
  }
};
constexpr ErfReciprocals kErfReciprocals;

double erf_d(double x) {
  const double a = std::fabs(x);
  if (a >= 4.0) return x < 0 ? -1.0 : 1.0;
  const double x2 = a * a;
  double term = a, sum = a;
  for (int n = 1; n < kErfTerms; ++n) {
    term = term * -x2 * kErfReciprocals.inv_n[n];
    const double next = sum + term * kErfReciprocals.inv_odd[n];
    if (next == sum) break;
    sum = next;
  }
  constexpr double kTwoOverSqrtPi = 1.1283791670955126;
  const double r = sum * kTwoOverSqrtPi;
  return x < 0 ? -r : r;
}

// ONNX's HardSigmoid: max(0, min(1, alpha * x + beta)), in float; NaN passes through.
float hard_sigmoid(float x, float alpha, float beta) {
  float v = alpha * x;
  v = v + beta;
  v = v < 0.f ? 0.f : v;
  return v > 1.f ? 1.f : v;
}

template <class F>
void map(size_t n, const float* x, float* out, F f) {
  for (size_t i = 0; i < n; ++i) out[i] = x[i] != x[i] ? x[i] : f(x[i]);
}

}  // namespace

void f32_unary__portable(size_t n, const float* x, float* out, const UnaryParams& p) {
  const float alpha = p.alpha, beta = p.beta;
  switch (p.kind) {
    case UnaryKind::Sigmoid: map(n, x, out, [](float v) { return static_cast<float>(sigmoid_d(v)); }); return;
    case UnaryKind::Tanh: map(n, x, out, [](float v) { return static_cast<float>(tanh_d(v)); }); return;
    case UnaryKind::HardSigmoid: map(n, x, out, [=](float v) { return hard_sigmoid(v, alpha, beta); }); return;
    case UnaryKind::HardSwish: map(n, x, out, [](float v) { return v * hard_sigmoid(v, 1.f / 6.f, 0.5f); }); return;
    case UnaryKind::LeakyRelu: map(n, x, out, [=](float v) { return v < 0.f ? alpha * v : v; }); return;
    case UnaryKind::Elu:
      map(n, x, out,
          [=](float v) { return v < 0.f ? static_cast<float>(alpha * expm1_d(clamp_d(v, -120.0, 0.0))) : v; });
      return;
    case UnaryKind::Erf: map(n, x, out, [](float v) { return static_cast<float>(erf_d(v)); }); return;
    case UnaryKind::Sqrt: map(n, x, out, [](float v) { return std::sqrt(v); }); return;
    case UnaryKind::Exp:
      map(n, x, out, [](float v) { return static_cast<float>(exp_d(clamp_d(v, -120.0, 100.0))); });
      return;
    case UnaryKind::Silu:  // below -120 the product is -0 in float (and -inf * 0 would be a NaN)
      map(n, x, out, [](float v) { return static_cast<float>(clamp_d(v, -120.0, INFINITY) * sigmoid_d(v)); });
      return;
  }
}

}  // namespace q8::kern
