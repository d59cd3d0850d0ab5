// Resize: nearest (a copy of whole NHWC pixels, so fp32 and uint8 alike, the uint8 form keeping
// its input's quantization) and bilinear (fp32) on the spatial axes of NHWC tensors, so no layout
// change is needed around it. The source indices and weights of each axis are computed at plan time.
#include "runtime/ops/ops.h"

#include "ir/shape_inference.h"
#include "kernels/upsample.h"

namespace q8::rt {

using ir::Graph;
using ir::Node;
using ir::Shape;

namespace {

kern::ResizeCoord coord_of(const std::string& m) {
  if (m == "half_pixel") return kern::ResizeCoord::HalfPixel;
  if (m == "pytorch_half_pixel") return kern::ResizeCoord::PytorchHalfPixel;
  if (m == "align_corners") return kern::ResizeCoord::AlignCorners;
  return kern::ResizeCoord::Asymmetric;  // resize_geometry() admits no other
}

kern::ResizeRound round_of(const std::string& m) {
  if (m == "round_prefer_ceil") return kern::ResizeRound::RoundPreferCeil;
  if (m == "floor") return kern::ResizeRound::Floor;
  if (m == "ceil") return kern::ResizeRound::Ceil;
  return kern::ResizeRound::RoundPreferFloor;
}

// Taps of one axis in memory the plan keeps.
kern::LinearTaps taps_in(AlignedBuffer& b, size_t len) {
  int32_t* i = b.as<int32_t>();
  float* w = reinterpret_cast<float*>(i + 2 * len);
  return {i, i + len, w, w + len};
}

void plan_resize(Plan::Builder& pb, size_t, const Node& n) {
  const Graph& g = pb.g;
  const Shape& xs = shape_of(g, n.inputs[0]);
  const ir::ResizeGeometry r = ir::resize_geometry(g, n, xs);
  const bool u8 = pb.is_u8(n.inputs[0]);
  if (u8) {
    if (r.linear) fail(g, n, "linear Resize of uint8 tensors is not supported");
    const ir::Value &X = g.values[n.inputs[0]], &Y = g.values[n.outputs[0]];
    if (X.scale != Y.scale || X.zero_point != Y.zero_point)
      fail(g, n, "uint8 nearest Resize needs the same quantization on its input and output");
  }
  kern::ResizeGeometry rg;
  rg.N = xs[0], rg.IH = xs[2], rg.IW = xs[3], rg.OH = r.oh, rg.OW = r.ow;
  const size_t C = xs[1];
  const kern::ResizeCoord coord = coord_of(r.coord);
  const kern::ResizeAxis ah{rg.IH, rg.OH, r.sh, r.rh}, aw{rg.IW, rg.OW, r.sw, r.rw};
  const int x = pb.get(n.inputs[0], Layout::NHWC);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], Layout::NHWC, y);
  if (r.linear) {
    const kern::LinearTaps ty = taps_in(pb.own(rg.OH * 16), rg.OH), tx = taps_in(pb.own(rg.OW * 16), rg.OW);
    kern::resize_linear_taps(coord, ah, ty);
    kern::resize_linear_taps(coord, aw, tx);
    Step& s = pb.add_step(n.name, rg.N * rg.OH * rg.OW, 1, {x}, {y});
    s.fn = [&A = pb.addresses(), rg, C, ty, tx, x, y](size_t p0, size_t p1) {
      kern::f32_resize_bilinear_nhwc(rg, C, ty, tx, A.f32(x), A.f32(y), p0, p1);
    };
    return;
  }
  int32_t* iy = pb.own(rg.OH * sizeof(int32_t)).as<int32_t>();
  int32_t* ix = pb.own(rg.OW * sizeof(int32_t)).as<int32_t>();
  kern::resize_nearest_index(coord, round_of(r.nearest_mode), ah, iy);
  kern::resize_nearest_index(coord, round_of(r.nearest_mode), aw, ix);
  const size_t pixel_bytes = C * ir::dtype_size(g.values[n.inputs[0]].dtype);
  Step& s = pb.add_step(n.name, rg.N * rg.OH * rg.OW, 1, {x}, {y});
  s.fn = [&A = pb.addresses(), rg, pixel_bytes, iy, ix, x, y](size_t p0, size_t p1) {
    kern::resize_nearest_nhwc(rg, pixel_bytes, iy, ix, A.u8(x), A.u8(y), p0, p1);
  };
}

std::string resize_kernel(const Graph& g, const Node& n, const Dispatch&) {
  return n.attr_string("mode", "nearest") == "linear"      ? "f32_resize_bilinear_nhwc"
         : g.values[n.inputs[0]].dtype == ir::DType::Uint8 ? "resize_nearest_nhwc (uint8)"
                                                           : "resize_nearest_nhwc";
}

}  // namespace

const OpRuntime kResizeRuntime = {nullptr, plan_resize, resize_kernel, nullptr};

}  // namespace q8::rt
