// ConvTranspose as one ordinary convolution per output phase (conv_transpose.h), run through
// f32_conv_run / qu8_conv_run and the tables' igemm micro-kernels.
#include "kernels/conv_transpose.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace q8::kern {

namespace {

ConvTransposePhaseAxis axis_y(const ConvTransposeGeometry& g, size_t ph) {
  return conv_transpose_phase_axis(ph / g.SW, g.SH, g.DH, g.PT, g.KH, g.OH);
}
ConvTransposePhaseAxis axis_x(const ConvTransposeGeometry& g, size_t ph) {
  return conv_transpose_phase_axis(ph % g.SW, g.SW, g.DW, g.PL, g.KW, g.OW);
}

// The phase as the convolution drivers see it: its taps (or the one zero tap), the channels.
ConvGeometry phase_conv(const ConvTransposeGeometry& g, size_t ph) {
  ConvGeometry c;
  c.N = g.N, c.C = g.C, c.K = g.K, c.groups = g.groups;
  const ConvTransposePhaseAxis ay = axis_y(g, ph), ax = axis_x(g, ph);
  const bool none = ay.taps * ax.taps == 0;
  c.KH = none ? 1 : ay.taps, c.KW = none ? 1 : ax.taps;
  c.OH = ay.out, c.OW = ax.out;
  return c;
}

// The phase that runs residue r's packing: the one with ((py + PT) mod SH, (px + PL) mod SW) =
// (r / SW, r mod SW). The run and the indirection walk the phases in this order, so each phase's
// packing follows the previous one's.
size_t phase_of_residue(const ConvTransposeGeometry& g, size_t r) {
  const size_t py = (r / g.SW + g.SH - g.PT % g.SH) % g.SH, px = (r % g.SW + g.SW - g.PL % g.SW) % g.SW;
  return py * g.SW + px;
}

// Residue r's taps: phase r of the geometry without pads.
ConvGeometry residue_conv(const ConvTransposeGeometry& g, size_t r) {
  ConvTransposeGeometry u = g;
  u.PT = u.PL = 0;
  return phase_conv(u, r);
}

template <typename T>
void indirection_init(const ConvTransposeGeometry& g, const T* input, const T* zero, const T** indirection) {
  const T** row = indirection;
  for (size_t r = 0; r < conv_transpose_phases(g); ++r)
    for (size_t grp = 0; grp < g.groups; ++grp) {
      const size_t ph = phase_of_residue(g, r);
      const ConvTransposePhaseAxis ay = axis_y(g, ph), ax = axis_x(g, ph);
      const bool none = ay.taps * ax.taps == 0;
      const T* in_g = input + grp * g.Cg();
      for (size_t n = 0; n < g.N; ++n)
        for (size_t jy = 0; jy < ay.out; ++jy)
          for (size_t jx = 0; jx < ax.out; ++jx) {
            if (none) {
              *row++ = zero;
              continue;
            }
            const size_t oy = ph / g.SW + jy * g.SH, ox = ph % g.SW + jx * g.SW;
            for (size_t ty = 0; ty < ay.taps; ++ty) {
              // oy + PT - ky*DH is a multiple of SH (the phase's taps); unsigned wrap-around makes a
              // negative one huge, so one comparison catches rows above and below the input.
              const size_t iy = (oy + g.PT - (ay.first + ty * ay.step) * g.DH) / g.SH;
              const bool below = oy + g.PT < (ay.first + ty * ay.step) * g.DH;
              for (size_t tx = 0; tx < ax.taps; ++tx) {
                const size_t kxd = (ax.first + tx * ax.step) * g.DW;
                const size_t ix = (ox + g.PL - kxd) / g.SW;
                const bool inside = !below && ox + g.PL >= kxd && iy < g.IH && ix < g.IW;
                *row++ = inside ? in_g + ((n * g.IH + iy) * g.IW + ix) * g.C : zero;
              }
            }
          }
    }
}

// Runs output pixels [p0, p1) of the phase order: conv(c, group, indirection, packed group, dst,
// b, e) for each phase's share, into `scratch` when there are several phases (then copied to their
// NHWC places) or straight into `out`. T is the element type; packed_size(c) is the size of one
// residue's packing in units of P.
template <typename T, typename P, typename PackedSize, typename Conv>
void run_phases(const ConvTransposeGeometry& g, const T* const* indirection, const P* packed, T* scratch, T* out,
                size_t p0, size_t p1, PackedSize packed_size, Conv conv) {
  const size_t phases = conv_transpose_phases(g);
  T* dst = phases == 1 ? out : scratch;
  const T* const* ind = indirection;
  const P* pk = packed;
  size_t start = 0;
  for (size_t r = 0; r < phases; ++r) {
    const ConvGeometry c = phase_conv(g, phase_of_residue(g, r));
    const size_t pixels = c.out_pixels(), size = packed_size(c);
    const size_t b = std::max(p0, start), e = std::min(p1, start + pixels);
    for (size_t grp = 0; grp < g.groups && b < e; ++grp)
      conv(c, grp, ind + grp * pixels * c.taps(), pk + grp * (size / g.groups), dst + start * g.K, b - start,
           e - start);
    ind += g.groups * pixels * c.taps();
    pk += size;
    start += pixels;
  }
  if (phases == 1) return;
  // Each phase's rows go to their NHWC places: output pixel (n, py + jy*SH, px + jx*SW).
  start = 0;
  for (size_t r = 0; r < phases; ++r) {
    const size_t ph = phase_of_residue(g, r);
    const ConvTransposePhaseAxis ay = axis_y(g, ph), ax = axis_x(g, ph);
    const size_t pixels = g.N * ay.out * ax.out;
    for (size_t v = std::max(p0, start); v < std::min(p1, start + pixels); ++v) {
      const size_t local = v - start, jx = local % ax.out, jy = local / ax.out % ay.out, n = local / (ax.out * ay.out);
      const size_t oy = ph / g.SW + jy * g.SH, ox = ph % g.SW + jx * g.SW;
      std::memcpy(out + ((n * g.OH + oy) * g.OW + ox) * g.K, scratch + v * g.K, g.K * sizeof(T));
    }
    start += pixels;
  }
}

}  // namespace

ConvTransposePhaseAxis conv_transpose_phase_axis(size_t phase, size_t S, size_t D, size_t P, size_t K, size_t O) {
  ConvTransposePhaseAxis a;
  a.out = phase < O ? (O - phase + S - 1) / S : 0;
  a.step = S / std::gcd(S, D);
  // (phase + P - k*D) mod S == 0 repeats with period `step` in k: the first solution, if any, is
  // below it.
  for (size_t k = 0; k < std::min(K, a.step); ++k)
    if ((phase + P) % S == (k * D) % S) {
      a.first = k;
      a.taps = (K - 1 - k) / a.step + 1;
      break;
    }
  return a;
}

size_t conv_transpose_phases(const ConvTransposeGeometry& g) { return g.SH * g.SW; }

size_t conv_transpose_phase_taps(const ConvTransposeGeometry& g, size_t ph) { return phase_conv(g, ph).taps(); }

size_t conv_transpose_phase_pixels(const ConvTransposeGeometry& g, size_t ph) { return phase_conv(g, ph).out_pixels(); }

size_t conv_transpose_indirection_size(const ConvTransposeGeometry& g) {
  size_t n = 0;
  for (size_t ph = 0; ph < conv_transpose_phases(g); ++ph)
    n += phase_conv(g, ph).out_pixels() * phase_conv(g, ph).taps();
  return n * g.groups;
}

void conv_transpose_indirection_init(const ConvTransposeGeometry& g, const uint8_t* input, const uint8_t* zero,
                                     const uint8_t** indirection) {
  indirection_init(g, input, zero, indirection);
}

void conv_transpose_indirection_init(const ConvTransposeGeometry& g, const float* input, const float* zero,
                                     const float** indirection) {
  indirection_init(g, input, zero, indirection);
}

size_t f32_conv_transpose_packed_floats(const ConvTransposeGeometry& g, size_t nr) {
  size_t floats = 0;
  for (size_t r = 0; r < conv_transpose_phases(g); ++r) floats += f32_conv_packed_floats(residue_conv(g, r), nr);
  return floats;
}

void f32_conv_transpose_run(const F32ConvKernel& k, const ConvTransposeGeometry& g, const float* const* indirection,
                            const float* packed, float* scratch, float* out, size_t p0, size_t p1, float out_min,
                            float out_max) {
  run_phases(
      g, indirection, packed, scratch, out, p0, p1,
      [&](const ConvGeometry& c) { return f32_conv_packed_floats(c, k.nr); },
      [&](const ConvGeometry& c, size_t grp, const float* const* ind, const float* pk, float* dst, size_t b, size_t e) {
        f32_conv_run(k, c, grp, ind, pk, dst, b, e, out_min, out_max);
      });
}

size_t qu8_conv_transpose_packed_bytes(const ConvTransposeGeometry& g, size_t nr, size_t kr, size_t weight_bytes) {
  size_t bytes = 0;
  for (size_t r = 0; r < conv_transpose_phases(g); ++r)
    bytes += qu8_conv_packed_bytes(residue_conv(g, r), nr, kr, weight_bytes);
  return bytes;
}

void qu8_conv_transpose_run(const QU8Kernels& k, const ConvTransposeGeometry& g, const uint8_t* const* indirection,
                            const void* packed, uint8_t* scratch, uint8_t* out, size_t p0, size_t p1,
                            const QU8Requant& p) {
  run_phases(
      g, indirection, static_cast<const uint8_t*>(packed), scratch, out, p0, p1,
      [&](const ConvGeometry& c) { return qu8_conv_packed_bytes(c, k.nr, k.kr, k.weight_bytes); },
      [&](const ConvGeometry& c, size_t grp, const uint8_t* const* ind, const uint8_t* pk, uint8_t* dst, size_t b,
          size_t e) { qu8_conv_run(k, c, grp, ind, pk, dst, b, e, p); });
}

}  // namespace q8::kern
