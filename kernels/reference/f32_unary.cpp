// Element-wise activations: the scalar reference of kernels/f32_math.h's algorithms. The SIMD
// tables (kernels/f32_simd.h) run the same template on batches, so every table gives these bits.
// Built with -ffp-contract=off (kernels/CMakeLists.txt): the only fused multiply-adds are the
// explicit ones.
#include "kernels/f32.h"
#include "kernels/f32_math.h"
#include "kernels/f32_misc.h"

namespace q8::kern {
namespace {

using O = f32_math::ScalarOps;

template <class F>
void map(size_t n, const float* x, float* out, F f) {
  for (size_t i = 0; i < n; ++i) out[i] = f(x[i]);
}

}  // namespace

void f32_unary__scalar(size_t n, const float* x, float* out, const UnaryParams& p) {
  const float alpha = p.alpha, beta = p.beta;
  switch (p.kind) {
    case UnaryKind::Sigmoid: map(n, x, out, [](float v) { return f32_math::sigmoid<O>(v); }); return;
    case UnaryKind::Tanh: map(n, x, out, [](float v) { return f32_math::tanh<O>(v); }); return;
    case UnaryKind::HardSigmoid:
      map(n, x, out, [=](float v) { return f32_math::hard_sigmoid<O>(v, alpha, beta); });
      return;
    case UnaryKind::HardSwish: map(n, x, out, [](float v) { return f32_math::hard_swish<O>(v); }); return;
    case UnaryKind::LeakyRelu: map(n, x, out, [=](float v) { return f32_math::leaky_relu<O>(v, alpha); }); return;
    case UnaryKind::Elu: map(n, x, out, [=](float v) { return f32_math::elu<O>(v, alpha); }); return;
    case UnaryKind::Erf: map(n, x, out, [](float v) { return f32_math::erf<O>(v); }); return;
    case UnaryKind::Sqrt: map(n, x, out, [](float v) { return O::sqrt(v); }); return;
    case UnaryKind::Exp: map(n, x, out, [](float v) { return f32_math::exp<O>(v); }); return;
    case UnaryKind::Silu: map(n, x, out, [](float v) { return f32_math::silu<O>(v); }); return;
    case UnaryKind::Gelu: map(n, x, out, [](float v) { return f32_math::gelu<O>(v); }); return;
  }
}

// The one exp of the project, for Softmax and LogSoftmax (kernels/f32_misc.h).
float portable_expf(float x) { return f32_math::exp<O>(x); }

}  // namespace q8::kern
