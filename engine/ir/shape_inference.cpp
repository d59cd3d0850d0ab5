#include "ir/shape_inference.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "ir/op_traits.h"
#include "ir/shape_rules.h"
#include "q8/error.h"

namespace q8::ir {

namespace {

[[noreturn]] void fail(const Graph& g, const Node& n, const std::string& what) {
  throw Error(g.source + ": " + n.describe() + ": " + what);
}

const Value* input_value(const Graph& g, const Node& n, size_t i) {
  if (i >= n.inputs.size() || n.inputs[i] == kNoValue) return nullptr;
  return &g.values[n.inputs[i]];
}

const ConstTensor* const_input(const Graph& g, const Node& n, size_t i) {
  const Value* v = input_value(g, n, i);
  return v && v->constant ? v->constant.get() : nullptr;
}

// Spatial attributes shared by Conv and the pools, resolved against a concrete input.
struct Window {
  int64_t kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
};

Window resolve_window(Graph& g, Node& n, const Shape& x, int64_t kh, int64_t kw, bool ceil_mode) {
  std::vector<int64_t> s = n.attr_ints("strides", {1, 1});
  std::vector<int64_t> d = n.attr_ints("dilations", {1, 1});
  std::vector<int64_t> p = n.attr_ints("pads", {0, 0, 0, 0});
  if (s.size() != 2 || d.size() != 2 || p.size() != 4)
    fail(g, n, "strides/dilations/pads must describe 2 spatial axes");
  for (int64_t v : s)
    if (v < 1) fail(g, n, "strides must be >= 1");
  for (int64_t v : d)
    if (v < 1) fail(g, n, "dilations must be >= 1");
  for (int64_t v : p)
    if (v < 0) fail(g, n, "pads must be >= 0");
  const std::string ap = n.attr_string("auto_pad", "NOTSET");
  if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
    // Output = ceil(in / stride); the odd pixel of padding goes at the end (UPPER) or start.
    const int64_t ks[2] = {kh, kw};
    for (int a = 0; a < 2; ++a) {
      const int64_t in = x[2 + a];
      const int64_t out = (in + s[a] - 1) / s[a];
      const int64_t total = std::max<int64_t>(0, (out - 1) * s[a] + (ks[a] - 1) * d[a] + 1 - in);
      const int64_t small = total / 2, big = total - small;
      p[a] = ap == "SAME_UPPER" ? small : big;
      p[a + 2] = ap == "SAME_UPPER" ? big : small;
    }
  } else if (ap == "VALID") {
    p = {0, 0, 0, 0};
  } else if (ap != "NOTSET") {
    fail(g, n, "auto_pad '" + ap + "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
  }
  Window w{kh, kw, s[0], s[1], d[0], d[1], p[0], p[1], p[2], p[3]};
  n.attrs["pads"] = Attribute{Attribute::Kind::Ints, 0, 0.f, p, {}, {}, {}};
  n.attrs.erase("auto_pad");
  const int64_t oh = pooled_extent(x[2], kh, w.sh, w.dh, w.pt, w.pb, ceil_mode);
  const int64_t ow = pooled_extent(x[3], kw, w.sw, w.dw, w.pl, w.pr, ceil_mode);
  if (oh < 1 || ow < 1) fail(g, n, "kernel does not fit the input " + shape_str(x));
  return w;
}

Shape broadcast(const Graph& g, const Node& n, const Shape& a, const Shape& b) {
  Shape r(std::max(a.size(), b.size()));
  for (size_t i = 0; i < r.size(); ++i) {
    const int64_t da = i < r.size() - a.size() ? 1 : a[i - (r.size() - a.size())];
    const int64_t db = i < r.size() - b.size() ? 1 : b[i - (r.size() - b.size())];
    if (da != db && da != 1 && db != 1) fail(g, n, "cannot broadcast " + shape_str(a) + " with " + shape_str(b));
    r[i] = da == 1 ? db : da;
  }
  return r;
}

// Whether a node can be evaluated now: its inputs are constants (Shape needs only its input's
// shape).
bool evaluable(const Graph& g, const Node& n) { return n.op == Op::Shape || g.inputs_const(n); }

}  // namespace

const Value* ShapeContext::value(size_t i) const { return input_value(g, n, i); }
const ConstTensor* ShapeContext::constant(size_t i) const { return const_input(g, n, i); }
void ShapeContext::fail(const std::string& what) const { ir::fail(g, n, what); }

const Shape& ShapeContext::in(size_t i) const {
  const Value* v = input_value(g, n, i);
  if (!v) fail("input " + std::to_string(i) + " is missing");
  if (!v->has_shape) fail("input '" + v->name + "' has no known shape");
  return v->shape;
}

void ShapeContext::rank_is(size_t i, size_t r) const {
  if (in(i).size() != r)
    fail("input '" + g.values[n.inputs[i]].name + "' has shape " + shape_str(in(i)) + ", expected rank " +
         std::to_string(r));
}

int64_t pooled_extent(int64_t in, int64_t k, int64_t stride, int64_t dilation, int64_t pad_begin, int64_t pad_end,
                      bool ceil_mode) {
  const int64_t span = (k - 1) * dilation + 1;
  const int64_t room = in + pad_begin + pad_end - span;
  if (room < 0) return 0;
  int64_t out = (ceil_mode ? (room + stride - 1) / stride : room / stride) + 1;
  // With ceil_mode, a last window that would start inside the end padding is dropped
  // (PyTorch and ONNX Runtime agree on this).
  if (ceil_mode && (out - 1) * stride >= in + pad_begin) --out;
  return out;
}

// Resolves a Reshape target shape (0 = copy unless allowzero, -1 = infer) against `in`.
Shape reshape_target(const Graph& g, const Node& n, const Shape& in, const ConstTensor& spec) {
  if (spec.dims.size() != 1) fail(g, n, "shape input must be 1-D");
  const bool allowzero = n.attr_int("allowzero", 0) != 0;
  Shape out(static_cast<size_t>(spec.numel()));
  int infer_at = -1;
  int64_t known = 1;
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t d = spec.as_int64(static_cast<int64_t>(i));
    if (d == 0 && !allowzero) {
      if (i >= in.size()) fail(g, n, "shape copies dimension " + std::to_string(i) + " the input lacks");
      d = in[i];
    }
    if (d == -1) {
      if (infer_at >= 0) fail(g, n, "shape has more than one -1");
      infer_at = static_cast<int>(i);
      d = 1;
    } else if (d < 0) {
      fail(g, n, "shape has a negative dimension " + std::to_string(d));
    }
    out[i] = d;
    if (i != static_cast<size_t>(infer_at)) known = d == 0 ? 0 : (known > INT64_MAX / d ? -1 : known * d);
    if (known < 0) fail(g, n, "shape overflows");
  }
  const int64_t total = shape_numel(in);
  if (infer_at >= 0) {
    if (known == 0 || total % known != 0)
      fail(g, n, "cannot reshape " + shape_str(in) + " with a -1 into " + std::to_string(known) + "-element blocks");
    out[infer_at] = total / known;
  } else if (known != total) {
    fail(g, n, "cannot reshape " + shape_str(in) + " (" + std::to_string(total) + " elements) to " + shape_str(out));
  }
  return out;
}

Shape flatten_shape(const Graph& g, const Node& n, const Shape& in) {
  const int64_t r = static_cast<int64_t>(in.size());
  int64_t axis = n.attr_int("axis", 1);
  if (axis < -r || axis > r) fail(g, n, "axis " + std::to_string(axis) + " out of range for rank " + std::to_string(r));
  if (axis < 0) axis += r;
  Shape a(in.begin(), in.begin() + axis), b(in.begin() + axis, in.end());
  return {shape_numel(a), shape_numel(b)};
}

// A Pad's constant padding value (0 when omitted); NaN if the Pad is not of constant mode.
float pad_value(const Graph& g, const Node& n) {
  if (n.attr_string("mode", "constant") != "constant") return NAN;
  const ConstTensor* v = n.inputs.size() > 2 ? const_input(g, n, 2) : nullptr;
  if (n.inputs.size() > 2 && n.inputs[2] != kNoValue && !v) fail(g, n, "constant_value must be a constant");
  if (v && v->numel() != 1) fail(g, n, "constant_value must be a scalar");
  return v ? static_cast<float>(v->as_double(0)) : 0.f;
}

// The pads (begin for every axis, then end), checked against the rank.
std::vector<int64_t> pad_amounts(const Graph& g, const Node& n, size_t rank) {
  const ConstTensor* p = const_input(g, n, 1);
  if (!p || p->dtype != DType::Int64) fail(g, n, "pads must be a constant int64 tensor");
  if (n.inputs.size() > 3 && n.inputs[3] != kNoValue) fail(g, n, "the axes input is not supported");
  if (p->numel() != static_cast<int64_t>(2 * rank))
    fail(g, n, "pads has " + std::to_string(p->numel()) + " values for rank " + std::to_string(rank));
  std::vector<int64_t> r(static_cast<size_t>(p->numel()));
  for (size_t i = 0; i < r.size(); ++i) r[i] = p->as_int64(static_cast<int64_t>(i));
  return r;
}

ResizeGeometry resize_geometry(const Graph& g, const Node& n, const Shape& x) {
  if (x.size() != 4) fail(g, n, "only 4-D (NCHW) inputs are supported, got " + shape_str(x));
  ResizeGeometry r;
  const std::string mode = n.attr_string("mode", "nearest");
  if (mode != "nearest" && mode != "linear")
    fail(g, n, "mode '" + mode + "' is not supported (only nearest and linear)");
  r.linear = mode == "linear";
  r.coord = n.attr_string("coordinate_transformation_mode", "half_pixel");
  if (r.coord != "half_pixel" && r.coord != "pytorch_half_pixel" && r.coord != "align_corners" &&
      r.coord != "asymmetric")
    fail(g, n,
         "coordinate_transformation_mode '" + r.coord +
             "' is not supported (only half_pixel, pytorch_half_pixel, align_corners, asymmetric)");
  r.nearest_mode = n.attr_string("nearest_mode", "round_prefer_floor");
  if (r.nearest_mode != "round_prefer_floor" && r.nearest_mode != "round_prefer_ceil" && r.nearest_mode != "floor" &&
      r.nearest_mode != "ceil")
    fail(g, n,
         "nearest_mode '" + r.nearest_mode + "' is not one of round_prefer_floor, round_prefer_ceil, floor, ceil");
  if (n.attr_int("antialias", 0) != 0) fail(g, n, "antialias is not supported");
  if (n.has_attr("axes")) fail(g, n, "the axes attribute is not supported (scales or sizes must cover all 4 axes)");
  const std::string policy = n.attr_string("keep_aspect_ratio_policy", "stretch");
  if (policy != "stretch") fail(g, n, "keep_aspect_ratio_policy '" + policy + "' is not supported (only stretch)");
  for (int64_t d : x)
    if (d < 1) fail(g, n, "input " + shape_str(x) + " has an empty axis");
  // Either scales (input 2, possibly given as an empty tensor) or sizes (input 3).
  const Value* sv = input_value(g, n, 2);
  const Value* zv = input_value(g, n, 3);
  if ((sv && !sv->constant) || (zv && !zv->constant)) fail(g, n, "scales and sizes must be constants");
  const ConstTensor* sc = sv && sv->constant->numel() > 0 ? sv->constant.get() : nullptr;
  const ConstTensor* sz = zv && zv->constant->numel() > 0 ? zv->constant.get() : nullptr;
  if (!sc == !sz) fail(g, n, "exactly one of scales and sizes must be given");
  // The output's extent is floor(scale * in), computed in float as ONNX Runtime does.
  constexpr int64_t kMaxExtent = int64_t{1} << 31;
  if (sc) {
    if (sc->dtype != DType::Float32 || sc->numel() != 4)
      fail(g, n,
           "scales must hold 4 float32 values, got " + std::string(dtype_name(sc->dtype)) + " " + shape_str(sc->dims));
    const float* s = sc->data<float>();
    if (s[0] != 1.f || s[1] != 1.f) fail(g, n, "scales for N and C must be 1 (only the 2 spatial axes of NCHW resize)");
    float e[2];
    for (int a = 0; a < 2; ++a) {
      if (!(s[2 + a] > 0.f) || !std::isfinite(s[2 + a])) fail(g, n, "scales must be positive and finite");
      e[a] = std::floor(s[2 + a] * static_cast<float>(x[2 + a]));
      if (!(e[a] >= 1.f && e[a] < static_cast<float>(kMaxExtent)))
        fail(g, n, "scales give an empty or oversized output for input " + shape_str(x));
    }
    r.oh = static_cast<int64_t>(e[0]), r.ow = static_cast<int64_t>(e[1]);
    r.sh = s[2], r.sw = s[3];
    r.rh = s[2] * static_cast<float>(x[2]), r.rw = s[3] * static_cast<float>(x[3]);
  } else {
    if (sz->dtype != DType::Int64 || sz->numel() != 4)
      fail(g, n,
           "sizes must hold 4 int64 values, got " + std::string(dtype_name(sz->dtype)) + " " + shape_str(sz->dims));
    if (sz->as_int64(0) != x[0] || sz->as_int64(1) != x[1])
      fail(g, n, "sizes for N and C must equal the input's " + shape_str(x) + " (only the 2 spatial axes resize)");
    r.oh = sz->as_int64(2), r.ow = sz->as_int64(3);
    if (r.oh < 1 || r.ow < 1 || r.oh >= kMaxExtent || r.ow >= kMaxExtent)
      fail(g, n, "sizes give an empty or oversized output");
    r.sh = static_cast<float>(r.oh) / static_cast<float>(x[2]);
    r.sw = static_cast<float>(r.ow) / static_cast<float>(x[3]);
    r.rh = static_cast<float>(r.oh), r.rw = static_cast<float>(r.ow);
  }
  return r;
}

ConvTransposeWindow conv_transpose_window(const Graph& g, const Node& n, const Shape& x, int64_t kh, int64_t kw) {
  const std::vector<int64_t> s = n.attr_ints("strides", {1, 1}), d = n.attr_ints("dilations", {1, 1}),
                             p = n.attr_ints("pads", {0, 0, 0, 0}), op = n.attr_ints("output_padding", {0, 0});
  std::vector<int64_t> os = n.attr_ints("output_shape", {});
  if (os.size() == 4) os.erase(os.begin(), os.begin() + 2);  // given with N and C
  if (s.size() != 2 || d.size() != 2 || p.size() != 4 || op.size() != 2 || (!os.empty() && os.size() != 2))
    fail(g, n, "strides/dilations/pads/output_padding/output_shape must describe 2 spatial axes");
  constexpr int64_t kMax = int64_t{1} << 24;  // keeps every extent below well inside int64
  for (int a = 0; a < 2; ++a) {
    if (s[a] < 1 || s[a] > kMax || d[a] < 1 || d[a] > kMax) fail(g, n, "strides and dilations must be in [1, 2^24]");
    if (op[a] < 0 || op[a] > kMax) fail(g, n, "output_padding must be in [0, 2^24]");
    if (p[a] < 0 || p[a + 2] < 0 || p[a] > kMax || p[a + 2] > kMax) fail(g, n, "pads must be in [0, 2^24]");
    if (!os.empty() && (os[a] < 1 || os[a] > kMax)) fail(g, n, "output_shape must be in [1, 2^24]");
  }
  for (int a = 0; a < 2; ++a)
    if (x[2 + a] < 1 || x[2 + a] > kMax) fail(g, n, "input " + shape_str(x) + " has an empty or oversized axis");
  const std::string ap = n.attr_string("auto_pad", "NOTSET");
  if (ap != "NOTSET" && ap != "VALID" && ap != "SAME_UPPER" && ap != "SAME_LOWER")
    fail(g, n, "auto_pad '" + ap + "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
  const int64_t k[2] = {kh, kw};
  int64_t out[2], head[2];
  for (int a = 0; a < 2; ++a) {
    // The full transposed result, before any padding is cut away.
    const int64_t full = s[a] * (x[2 + a] - 1) + op[a] + (k[a] - 1) * d[a] + 1;
    if (!os.empty() || ap == "SAME_UPPER" || ap == "SAME_LOWER") {
      out[a] = !os.empty() ? os[a] : x[2 + a] * s[a];
      const int64_t total = std::max<int64_t>(0, full - out[a]);
      // The odd pixel is cut from the top/left for SAME_LOWER, from the bottom/right otherwise.
      head[a] = ap == "SAME_LOWER" ? total - total / 2 : total / 2;
    } else {
      const bool valid = ap == "VALID";
      head[a] = valid ? 0 : p[a];
      out[a] = full - head[a] - (valid ? 0 : p[a + 2]);
    }
    if (out[a] < 1) fail(g, n, "pads leave an empty output for input " + shape_str(x));
  }
  return {out[0], out[1], head[0], head[1]};
}

bool conv_transpose_phase_strides(const Node& n) {
  const std::vector<int64_t> s = n.attr_ints("strides", {1, 1});
  const auto fits = [](int64_t v) { return v >= 1 && v <= kConvTransposeMaxPhaseStride; };
  return s.size() == 2 && fits(s[0]) && fits(s[1]);
}

std::vector<bool> reduced_axes(const Graph& g, const Node& n, size_t rank) {
  std::vector<int64_t> axes;
  if (n.inputs.size() > 1 && n.inputs[1] != kNoValue) {  // opset 18: axes as an input
    const ConstTensor* a = const_input(g, n, 1);
    if (!a || a->dtype != DType::Int64 || a->dims.size() > 1) fail(g, n, "axes must be a constant 1-D int64 tensor");
    for (int64_t i = 0; i < a->numel(); ++i) axes.push_back(a->as_int64(i));
  } else {
    axes = n.attr_ints("axes");
  }
  if (axes.empty() && n.attr_int("noop_with_empty_axes", 0) != 0)
    fail(g, n, "noop_with_empty_axes=1 with no axes is not supported");
  std::vector<bool> red(rank, axes.empty());
  const int64_t r = static_cast<int64_t>(rank);
  for (int64_t a : axes) {
    if (a < -r || a >= r) fail(g, n, "axis " + std::to_string(a) + " is out of range for rank " + std::to_string(r));
    const size_t k = static_cast<size_t>(a < 0 ? a + r : a);
    if (red[k]) fail(g, n, "axis " + std::to_string(a) + " is listed twice");
    red[k] = true;
  }
  return red;
}

bool is_spatial_mean(const Graph& g, const Node& n, size_t rank) {
  return rank == 4 && reduced_axes(g, n, rank) == std::vector<bool>{false, false, true, true};
}

bool is_per_channel_term(const Shape& full, const Shape& term) {
  if (full.size() != 4 || term.size() > 4) return false;
  Shape t(4 - term.size(), 1);
  t.insert(t.end(), term.begin(), term.end());
  return t[1] == full[1] && t[2] == 1 && t[3] == 1 && (t[0] == 1 || t[0] == full[0]);
}

bool is_column_term(int64_t N, const Shape& term) {
  for (size_t d = 0; d + 1 < term.size(); ++d)
    if (term[d] != 1) return false;
  return term.empty() || term.back() == N || term.back() == 1;
}

// ---- Shape rules, one per op family (the `shape` column of op_traits.cpp) -------------------

namespace shape_rules {

Shape conv(ShapeContext& c) {
  Graph& g = c.g;
  Node& n = c.n;
  c.rank_is(0, 4);
  const bool q = n.op == Op::QuantizedConv || n.op == Op::QuantizedConvFloat;
  const ConstTensor* w = c.constant(1);
  if (!w) c.fail("weights must be a constant initializer");
  if (w->dtype != (q ? DType::Int8 : DType::Float32)) c.fail(q ? "weights must be int8" : "weights must be float32");
  if (w->dims.size() != 4) c.fail("weights have shape " + shape_str(w->dims) + ", expected rank 4");
  const Shape& x = c.in(0);
  const int64_t group = n.attr_int("group", 1);
  const int64_t K = w->dims[0];
  if (group < 1 || x[1] % group != 0 || K % group != 0)
    c.fail("group " + std::to_string(group) + " does not divide channels " + std::to_string(x[1]) + " -> " +
           std::to_string(K));
  if (w->dims[1] != x[1] / group)
    c.fail("weights " + shape_str(w->dims) + " expect " + std::to_string(w->dims[1] * group) +
           " input channels, input has " + std::to_string(x[1]));
  std::vector<int64_t> ks = n.attr_ints("kernel_shape", {w->dims[2], w->dims[3]});
  if (ks.size() != 2 || ks[0] != w->dims[2] || ks[1] != w->dims[3])
    c.fail("kernel_shape does not match the weights " + shape_str(w->dims));
  if (const Value* b = c.value(2)) {
    if (!b->constant) c.fail("bias must be a constant initializer");
    if (b->constant->dtype != (q ? DType::Int32 : DType::Float32) || b->constant->numel() != K)
      c.fail("bias must be " + std::to_string(K) + (q ? " int32" : " float32") + " values");
  }
  Window win = resolve_window(g, n, x, ks[0], ks[1], false);
  const Shape y = {x[0], K, pooled_extent(x[2], win.kh, win.sh, win.dh, win.pt, win.pb, false),
                   pooled_extent(x[3], win.kw, win.sw, win.dw, win.pl, win.pr, false)};
  // A fused residual (fuse_residual_add) is added element by element: it has the output's shape.
  if (n.inputs.size() > 3 && c.in(3) != y)
    c.fail("residual input has shape " + shape_str(c.in(3)) + ", expected the output's " + shape_str(y));
  return y;
}

Shape pool(ShapeContext& c) {
  c.rank_is(0, 4);
  std::vector<int64_t> ks = c.n.attr_ints("kernel_shape");
  if (ks.size() != 2) c.fail("kernel_shape must have 2 values");
  for (int64_t k : ks)
    if (k < 1) c.fail("kernel_shape must be >= 1");
  const bool ceil_mode = c.n.attr_int("ceil_mode", 0) != 0;
  const Shape& x = c.in(0);
  Window win = resolve_window(c.g, c.n, x, ks[0], ks[1], ceil_mode);
  return {x[0], x[1], pooled_extent(x[2], win.kh, win.sh, win.dh, win.pt, win.pb, ceil_mode),
          pooled_extent(x[3], win.kw, win.sw, win.dw, win.pl, win.pr, ceil_mode)};
}

Shape global_pool(ShapeContext& c) {
  c.rank_is(0, 4);
  return {c.in(0)[0], c.in(0)[1], 1, 1};
}

Shape flatten(ShapeContext& c) { return flatten_shape(c.g, c.n, c.in(0)); }

Shape reshape(ShapeContext& c) {
  const ConstTensor* s = c.constant(1);
  if (!s) c.fail("shape must be a constant");
  if (s->dtype != DType::Int64) c.fail("shape must be int64");
  return reshape_target(c.g, c.n, c.in(0), *s);
}

Shape gemm(ShapeContext& c) {
  c.rank_is(0, 2);
  c.rank_is(1, 2);
  const Shape &a = c.in(0), &b = c.in(1);
  const bool ta = c.n.attr_int("transA", 0) != 0, tb = c.n.attr_int("transB", 0) != 0;
  const int64_t M = ta ? a[1] : a[0], Ka = ta ? a[0] : a[1];
  const int64_t Kb = tb ? b[1] : b[0], N = tb ? b[0] : b[1];
  if (Ka != Kb) c.fail("A " + shape_str(a) + " and B " + shape_str(b) + " do not multiply");
  Shape out = {M, N};
  if (c.value(2) && broadcast(c.g, c.n, out, c.in(2)) != out)
    c.fail("C " + shape_str(c.in(2)) + " does not broadcast to " + shape_str(out));
  return out;
}

Shape matmul(ShapeContext& c) {
  Shape a = c.in(0), b = c.in(1);
  if (a.empty() || b.empty()) c.fail("inputs must have rank >= 1");
  const bool a1 = a.size() == 1, b1 = b.size() == 1;
  if (a1) a.insert(a.begin(), 1);
  if (b1) b.push_back(1);
  if (a.back() != b[b.size() - 2]) c.fail(shape_str(c.in(0)) + " and " + shape_str(c.in(1)) + " do not multiply");
  Shape ba(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  Shape out = broadcast(c.g, c.n, ba, bb);
  if (!a1) out.push_back(a[a.size() - 2]);
  if (!b1) out.push_back(b.back());
  return out;
}

Shape broadcast_binary(ShapeContext& c) {
  // Constant operands too: the fp32 kernels read both as float32. Integer arithmetic (shape
  // computations) is only supported on constants, where the op's evaluation computes it.
  const bool known = c.value(0)->is_const() && c.value(1)->is_const();
  for (size_t i = 0; i < 2; ++i)
    if (const Value* v = c.value(i); v && v->dtype != DType::Float32 && !known)
      c.fail("input '" + v->name + "' is " + dtype_name(v->dtype) + ": " + op_name(c.n.op) +
             " runs on float32 tensors only");
  return broadcast(c.g, c.n, c.in(0), c.in(1));
}

Shape same_shape_binary(ShapeContext& c) {
  if (c.in(0) != c.in(1))
    c.fail("int8 " + std::string(op_name(c.n.op)) + " of " + shape_str(c.in(0)) + " and " + shape_str(c.in(1)) +
           ": broadcasting is not supported");
  return c.in(0);
}

Shape per_channel_binary(ShapeContext& c) {
  const Shape &a = c.in(0), &b = c.in(1);
  if (a == b || is_per_channel_term(a, b)) return a;
  if (is_per_channel_term(b, a)) return b;
  c.fail("int8 " + std::string(op_name(c.n.op)) + " of " + shape_str(a) + " and " + shape_str(b) +
         ": only equal shapes or a per-channel term are supported");
}

Shape dense(ShapeContext& c) {
  const ConstTensor* w = c.constant(1);
  if (!w || w->dtype != DType::Int8 || w->dims.size() != 2) c.fail("weights must be a constant int8 matrix");
  const Shape& a = c.in(0);
  if (a.empty() || a.back() != w->dims[1])
    c.fail("input " + shape_str(a) + " does not multiply weights " + shape_str(w->dims));
  Shape out = a;
  out.back() = w->dims[0];
  return out;
}

Shape unary(ShapeContext& c) { return c.in(0); }

Shape channel_shuffle(ShapeContext& c) {
  c.rank_is(0, 4);
  const Shape& x = c.in(0);
  const int64_t g = c.n.attr_int("group", 0);
  if (g < 1 || x[1] % g != 0)
    c.fail("group " + std::to_string(g) + " does not divide the " + std::to_string(x[1]) + " channels");
  return x;
}

Shape pad(ShapeContext& c) {
  const std::string mode = c.n.attr_string("mode", "constant");
  if (mode != "constant") c.fail("mode '" + mode + "' is not supported (only constant padding)");
  pad_value(c.g, c.n);
  const Shape& x = c.in(0);
  const std::vector<int64_t> p = pad_amounts(c.g, c.n, x.size());
  Shape out = x;
  for (size_t a = 0; a < x.size(); ++a) {
    out[a] = x[a] + p[a] + p[a + x.size()];
    if (out[a] < 1) c.fail("pads leave axis " + std::to_string(a) + " of " + shape_str(x) + " empty");
  }
  return out;
}

Shape batch_norm(ShapeContext& c) {
  const Shape& x = c.in(0);
  if (x.size() < 2) c.fail("input must have rank >= 2");
  for (size_t i = 1; i < 5; ++i) {
    const ConstTensor* p = c.constant(i);
    if (!p) c.fail("scale, bias, mean and var must be constants");
    if (p->dtype != DType::Float32 || p->numel() != x[1])
      c.fail("parameter " + std::to_string(i) + " must hold " + std::to_string(x[1]) + " float32 values");
  }
  return x;
}

Shape concat(ShapeContext& c) {
  if (!c.n.has_attr("axis")) c.fail("missing required attribute 'axis'");
  const Shape& first = c.in(0);
  const int64_t rank = static_cast<int64_t>(first.size());
  int64_t axis = c.n.attr_int("axis", 0);
  if (rank == 0) c.fail("inputs must have rank >= 1");
  if (axis < -rank || axis >= rank)
    c.fail("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  if (axis < 0) axis += rank;
  Shape out = first;
  out[axis] = 0;
  for (size_t i = 0; i < c.n.inputs.size(); ++i) {
    const Shape& s = c.in(i);
    bool fits = s.size() == first.size();
    for (int64_t a = 0; fits && a < rank; ++a) fits = a == axis || s[a] == first[a];
    if (!fits)
      c.fail("input " + std::to_string(i) + " " + shape_str(s) + " does not join " + shape_str(first) + " along axis " +
             std::to_string(axis));
    if (__builtin_add_overflow(out[axis], s[axis], &out[axis])) c.fail("the joined axis overflows");
  }
  c.n.attrs["axis"].i = axis;  // normalised: the runtime reads a non-negative axis
  return out;
}

Shape resize(ShapeContext& c) {
  const Shape& x = c.in(0);
  const ResizeGeometry r = resize_geometry(c.g, c.n, x);
  return {x[0], x[1], r.oh, r.ow};
}

Shape conv_transpose(ShapeContext& c) {
  c.rank_is(0, 4);
  const Shape& x = c.in(0);
  const ConstTensor* w = c.constant(1);
  if (!w) c.fail("weights must be a constant initializer");
  const bool q = c.n.op == Op::QuantizedConvTranspose;
  if (w->dtype != (q ? DType::Int8 : DType::Float32)) c.fail(q ? "weights must be int8" : "weights must be float32");
  if (w->dims.size() != 4) c.fail("weights have shape " + shape_str(w->dims) + ", expected rank 4");
  const int64_t group = c.n.attr_int("group", 1);
  if (group < 1 || x[1] % group != 0)
    c.fail("group " + std::to_string(group) + " does not divide channels " + std::to_string(x[1]));
  if (w->dims[0] != x[1])
    c.fail("weights " + shape_str(w->dims) + " expect " + std::to_string(w->dims[0]) + " input channels, input has " +
           std::to_string(x[1]));
  const int64_t K = w->dims[1] * group;
  std::vector<int64_t> ks = c.n.attr_ints("kernel_shape", {w->dims[2], w->dims[3]});
  if (ks.size() != 2 || ks[0] != w->dims[2] || ks[1] != w->dims[3])
    c.fail("kernel_shape does not match the weights " + shape_str(w->dims));
  if (const Value* b = c.value(2)) {
    if (!b->constant) c.fail("bias must be a constant initializer");
    if (b->constant->dtype != (q ? DType::Int32 : DType::Float32) || b->constant->numel() != K)
      c.fail("bias must be " + std::to_string(K) + (q ? " int32" : " float32") + " values");
  }
  const ConvTransposeWindow win = conv_transpose_window(c.g, c.n, x, ks[0], ks[1]);
  return {x[0], K, win.oh, win.ow};
}

namespace {
// An axis in [-rank, rank) made non-negative.
int64_t normalized_axis(const ShapeContext& c, int64_t axis, size_t rank) {
  const int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r)
    c.fail("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + r : axis;
}
}  // namespace

Shape reduce(ShapeContext& c) {
  const Shape& x = c.in(0);
  const std::vector<bool> red = reduced_axes(c.g, c.n, x.size());
  const Value* in = c.value(0);
  if (in && in->dtype == DType::Uint8 && !is_spatial_mean(c.g, c.n, x.size()))
    c.fail("a uint8 ReduceMean must average H and W of a 4-D tensor (a global average pool)");
  const bool keep = c.n.attr_int("keepdims", 1) != 0;
  Shape out;
  for (size_t i = 0; i < x.size(); ++i)
    if (!red[i])
      out.push_back(x[i]);
    else if (keep)
      out.push_back(1);
  return out;
}

Shape softmax(ShapeContext& c) {
  const Shape& x = c.in(0);
  if (x.empty()) c.fail("input must have rank >= 1");
  const int64_t axis = c.n.attr_int("axis", c.g.opset < 13 ? 1 : -1);
  c.n.attrs["axis"] = Attribute{Attribute::Kind::Int, normalized_axis(c, axis, x.size()), 0.f, {}, {}, {}, {}};
  return x;
}

Shape layer_norm(ShapeContext& c) {
  const Shape& x = c.in(0);
  if (x.empty()) c.fail("input must have rank >= 1");
  const int64_t axis = normalized_axis(c, c.n.attr_int("axis", -1), x.size());
  c.n.attrs["axis"] = Attribute{Attribute::Kind::Int, axis, 0.f, {}, {}, {}, {}};
  int64_t n = 1;
  for (size_t i = static_cast<size_t>(axis); i < x.size(); ++i) n *= x[i];
  for (size_t i = 1; i < 3; ++i) {
    const Value* v = c.value(i);
    if (!v) continue;
    if (v->dtype != DType::Float32) c.fail(std::string(i == 1 ? "scale" : "bias") + " must be float32");
    if (!v->has_shape || shape_numel(v->shape) != n)
      c.fail(std::string(i == 1 ? "scale" : "bias") + " must hold the " + std::to_string(n) +
             " values of the normalized axes");
  }
  // Mean and InvStdDev: x's shape with the normalized axes set to 1.
  Shape stat = x;
  for (size_t i = static_cast<size_t>(axis); i < x.size(); ++i) stat[i] = 1;
  for (size_t i = 1; i < c.n.outputs.size(); ++i) {
    Value& o = c.g.values[c.n.outputs[i]];
    o.shape = stat;
    o.has_shape = true;
    o.dtype = DType::Float32;
  }
  return x;
}

Shape not_lowered(ShapeContext& c) { c.fail("quantized op was not lowered"); }

Shape not_folded(ShapeContext& c) { c.fail("Constant should have been folded"); }

}  // namespace shape_rules

// ---- Inference --------------------------------------------------------------------------------

std::vector<Shape> input_shapes_for_batch(const Graph& g, int64_t batch) {
  std::vector<Shape> r;
  for (int v : g.inputs) {
    Shape s = g.values[v].shape;
    for (size_t i = 0; i < s.size(); ++i)
      if (s[i] == kUnknownDim) {
        if (i != 0)
          throw Error(g.source + ": input '" + g.values[v].name + "' has a dynamic dimension at axis " +
                      std::to_string(i) + "; give an input to fix it");
        s[i] = batch;
      }
    r.push_back(std::move(s));
  }
  return r;
}

void infer_shapes(Graph& g, const std::vector<Shape>& input_shapes) {
  if (input_shapes.size() != g.inputs.size())
    throw Error(g.source + ": model has " + std::to_string(g.inputs.size()) + " inputs, got " +
                std::to_string(input_shapes.size()));
  for (Value& v : g.values) {
    if (v.derived) v.constant.reset(), v.derived = false;  // computed for other input shapes
    if (!v.is_const()) v.has_shape = false;
  }
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    Value& v = g.values[g.inputs[i]];
    const Shape& s = input_shapes[i];
    for (int64_t d : s)
      if (d == 0)
        throw Error(g.source + ": input '" + v.name + "' has shape " + shape_str(s) +
                    ": empty tensors are not supported");
    bool ok = s.size() == v.shape.size();
    for (size_t k = 0; ok && k < s.size(); ++k) ok = s[k] >= 1 && (v.shape[k] == kUnknownDim || v.shape[k] == s[k]);
    if (!ok)
      throw Error(g.source + ": input '" + v.name + "' has shape " + shape_str(s) + ", the model expects " +
                  shape_str(v.shape));
    shape_numel(s);  // overflow check
    v.shape = s;
    v.has_shape = true;
  }
  for (Node& n : g.nodes) {
    const OpTraits& t = op_traits(n.op);
    if (n.inputs.size() < static_cast<size_t>(t.min_inputs) || n.inputs.size() > static_cast<size_t>(t.max_inputs))
      fail(g, n,
           "has " + std::to_string(n.inputs.size()) + " inputs, expected " + std::to_string(t.min_inputs) +
               (t.max_inputs == t.min_inputs ? "" : " to " + std::to_string(t.max_inputs)));
    if (n.outputs.empty()) fail(g, n, "has no output");
    ShapeContext c(g, n);
    Shape out = t.shape(c);
    Value& o = g.values[n.outputs[0]];
    shape_numel(out);
    // One check here for every op: no kernel or plan step sees a tensor with no elements.
    for (int64_t d : out)
      if (d == 0) fail(g, n, "output shape " + shape_str(out) + " is empty: empty tensors are not supported");
    o.shape = std::move(out);
    o.has_shape = true;
    // Element types (the op's dtype rule): activations, i.e. non-constant inputs, must have the
    // type the op reads; constant ones (weights, bounds, shapes) are checked by its shape rule.
    const DType x = g.values[n.inputs[0]].dtype;
    DType want_in = DType::Float32;
    bool any_in = false;
    switch (t.dtype) {
      case DTypeRule::Int64: any_in = true, o.dtype = DType::Int64; break;
      case DTypeRule::Float: o.dtype = DType::Float32; break;
      case DTypeRule::Uint8: want_in = o.dtype = DType::Uint8; break;
      case DTypeRule::SameAsInput: want_in = o.dtype = x == DType::Uint8 ? DType::Uint8 : DType::Float32; break;
      case DTypeRule::Quantize: o.dtype = DType::Uint8; break;
      case DTypeRule::Dequantize: want_in = DType::Uint8, o.dtype = DType::Float32; break;
    }
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const Value* v = input_value(g, n, i);
      if (v && !v->is_const() && !any_in && v->dtype != want_in)
        fail(g, n, "input '" + v->name + "' is " + dtype_name(v->dtype) + ", expected " + dtype_name(want_in));
    }
    if (t.eval && !o.is_const() && evaluable(g, n)) {
      o.constant = t.eval(g, n, o.shape);
      o.dtype = o.constant->dtype;
      o.derived = true;
    }
    if (t.int8 == Int8Role::ShapeOnly && !o.is_const())
      fail(g, n,
           "computes on values known only at run time; q8 runs " + std::string(t.name) +
               " on shapes and constants only");
    if (o.dtype == DType::Uint8 && !(o.scale > 0.f))
      fail(g, n, "output '" + o.name + "' is uint8 without a quantization scale");
  }
}

}  // namespace q8::ir
