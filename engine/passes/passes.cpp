#include "passes/passes.h"

#include <cmath>
#include <limits>
#include <memory>

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

std::shared_ptr<ConstTensor> float_tensor(Shape dims) {
  auto t = std::make_shared<ConstTensor>();
  t->dtype = DType::Float32;
  t->dims = std::move(dims);
  t->bytes.assign(static_cast<size_t>(shape_numel(t->dims)) * 4, 0);
  return t;
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

}  // namespace

void fold_constants(Graph& g) {
  std::vector<bool> dead(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    Value& out = g.values[n.outputs.at(0)];
    if (n.op == Op::Constant) {
      auto it = n.attrs.find("value");
      if (it == n.attrs.end() || !it->second.t) fail(g, n, "Constant without a tensor value");
      out.constant = it->second.t;
    } else if ((n.op == Op::Identity || n.op == Op::Dropout) && const_input(g, n, 0)) {
      out.constant = g.values[n.inputs[0]].constant;
    } else if (n.op == Op::Reshape && const_input(g, n, 0) && const_input(g, n, 1)) {
      const ConstTensor& x = *const_input(g, n, 0);
      auto t = std::make_shared<ConstTensor>(x);
      t->dims = reshape_target(g, n, x.dims, *const_input(g, n, 1));
      out.constant = t;
    } else if (n.op == Op::Flatten && const_input(g, n, 0)) {
      const ConstTensor& x = *const_input(g, n, 0);
      auto t = std::make_shared<ConstTensor>(x);
      t->dims = flatten_shape(g, n, x.dims);
      out.constant = t;
    } else {
      continue;
    }
    out.dtype = out.constant->dtype;
    out.shape = out.constant->dims;
    out.has_shape = true;
    dead[i] = true;
    if (n.outputs.size() > 1) fail(g, n, "folded node has more than one output");
  }
  g.compact(dead);
}

namespace {
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
}  // namespace

void fold_pad(Graph& g) {
  std::vector<bool> dead(g.nodes.size(), false);
  ConsumerIndex index(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& pad = g.nodes[i];
    if (pad.op != Op::Pad || pad_value(g, pad) != 0.f || !const_input(g, pad, 1)) continue;
    if (pad.inputs.size() > 3 && pad.inputs[3] != kNoValue) continue;
    if (const_input(g, pad, 1)->numel() != 8) continue;
    const std::vector<int64_t> p = pad_amounts(g, pad, 4);
    // NCHW: only H and W padded, never cropped.
    if (p[0] || p[1] || p[4] || p[5] || p[2] < 0 || p[3] < 0 || p[6] < 0 || p[7] < 0) continue;
    const int c = index.sole_reader(g, pad.outputs[0]);
    if (c < 0) continue;
    Node& r = g.nodes[c];
    if (r.inputs[0] != pad.outputs[0] || r.attr_string("auto_pad", "NOTSET") != "NOTSET") continue;
    std::vector<int64_t> own = r.attr_ints("pads", {0, 0, 0, 0});
    if (own.size() != 4) continue;
    if (r.op == Op::AveragePool) {
      // Pad-then-average counts the padded zeros; so does count_include_pad=1. ceil_mode's
      // extra windows differ between the two forms, so those are left alone.
      const bool counts = r.attr_int("count_include_pad", 0) != 0;
      if (r.attr_int("ceil_mode", 0) != 0 || (!counts && own != std::vector<int64_t>{0, 0, 0, 0})) continue;
      r.attrs["count_include_pad"] = Attribute{Attribute::Kind::Int, 1, 0.f, {}, {}, {}, {}};
    } else if (r.op != Op::Conv) {
      continue;
    }
    own[0] += p[2], own[1] += p[3], own[2] += p[6], own[3] += p[7];
    r.attrs["pads"] = Attribute{Attribute::Kind::Ints, 0, 0.f, own, {}, {}, {}};
    r.inputs[0] = pad.inputs[0];
    index.add(g, c);
    dead[i] = true;
  }
  g.compact(dead);
}

void remove_identities(Graph& g) {
  std::vector<bool> dead(g.nodes.size(), false);
  ConsumerIndex index(g);
  std::vector<int> producer(g.values.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int o : g.nodes[i].outputs) producer[o] = static_cast<int>(i);
  std::vector<bool> graph_input(g.values.size(), false);
  for (int v : g.inputs) graph_input[v] = true;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    if (n.op != Op::Identity && n.op != Op::Dropout) continue;
    const int in = n.inputs.at(0), out = n.outputs.at(0);
    // An identity between a graph input and a graph output must stay: both names are API.
    if (g.is_graph_output(out)) {
      if (g.is_graph_output(in) || g.values[in].is_const() || graph_input[in] || producer[in] < 0) continue;
      // Let the producer of `in` write `out` directly, keeping the output's name.
      for (int& o : g.nodes[producer[in]].outputs)
        if (o == in) o = out;
      producer[out] = producer[in];
      index.redirect(g, in, out);
    } else {
      index.redirect(g, out, in);
    }
    dead[i] = true;
  }
  g.compact(dead);
}

void canonicalize_clip(Graph& g) {
  for (Node& n : g.nodes) {
    if (n.op != Op::Clip) continue;
    float lo = n.attr_float("min", -std::numeric_limits<float>::infinity());
    float hi = n.attr_float("max", std::numeric_limits<float>::infinity());
    for (size_t i = 1; i < n.inputs.size() && i < 3; ++i) {
      if (n.inputs[i] == kNoValue) continue;
      const ConstTensor* c = const_input(g, n, i);
      if (!c) fail(g, n, std::string(i == 1 ? "min" : "max") + " must be a constant");
      if (c->numel() != 1) fail(g, n, std::string(i == 1 ? "min" : "max") + " must be a scalar");
      (i == 1 ? lo : hi) = static_cast<float>(c->as_double(0));
    }
    if (std::isnan(lo) || std::isnan(hi)) fail(g, n, "min/max is NaN");
    n.inputs.resize(1);
    n.attrs["min"] = Attribute{Attribute::Kind::Float, 0, lo, {}, {}, {}, {}};
    n.attrs["max"] = Attribute{Attribute::Kind::Float, 0, hi, {}, {}, {}, {}};
  }
}

void fold_batch_norm(Graph& g) {
  std::vector<bool> dead(g.nodes.size(), false);
  ConsumerIndex index(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& conv = g.nodes[i];
    if (conv.op != Op::Conv) continue;
    const int bn_id = index.sole_reader(g, conv.outputs[0]);
    if (bn_id < 0 || g.nodes[bn_id].op != Op::BatchNormalization) continue;
    Node& bn = g.nodes[bn_id];
    if (bn.inputs[0] != conv.outputs[0]) continue;
    const ConstTensor* w = const_input(g, conv, 1);
    const ConstTensor* b = const_input(g, conv, 2);
    const ConstTensor *gamma = const_input(g, bn, 1), *beta = const_input(g, bn, 2), *mean = const_input(g, bn, 3),
                      *var = const_input(g, bn, 4);
    if (!w || w->dtype != DType::Float32 || w->dims.empty() || !gamma || !beta || !mean || !var) continue;
    if (conv.inputs.size() > 2 && conv.inputs[2] != kNoValue && (!b || b->dtype != DType::Float32)) continue;
    const int64_t K = w->dims[0];
    auto ok = [K](const ConstTensor* t) { return t->dtype == DType::Float32 && t->numel() == K; };
    if (!ok(gamma) || !ok(beta) || !ok(mean) || !ok(var) || (b && !ok(b)))
      fail(g, bn, "parameters do not match the channels of the Conv before it");
    const float eps = bn.attr_float("epsilon", 1e-5f);
    auto nw = std::make_shared<ConstTensor>(*w);
    auto nb = float_tensor({K});
    const int64_t per = K ? w->numel() / K : 0;
    for (int64_t k = 0; k < K; ++k) {
      const float s = gamma->data<float>()[k] / std::sqrt(var->data<float>()[k] + eps);
      for (int64_t j = 0; j < per; ++j) nw->mutable_data<float>()[k * per + j] *= s;
      const float bias = b ? b->data<float>()[k] : 0.f;
      nb->mutable_data<float>()[k] = (bias - mean->data<float>()[k]) * s + beta->data<float>()[k];
    }
    Value wv{conv.name + "/folded_weight", DType::Float32, nw->dims, true, nw};
    Value bv{conv.name + "/folded_bias", DType::Float32, nb->dims, true, nb};
    const int wid = g.add_value(std::move(wv));
    const int bid = g.add_value(std::move(bv));
    Node& c2 = g.nodes[i];  // add_value does not move nodes, but keep references honest
    c2.inputs.resize(3);
    c2.inputs[1] = wid;
    c2.inputs[2] = bid;
    c2.outputs[0] = g.nodes[bn_id].outputs[0];
    index.add(g, static_cast<int>(i));
    dead[bn_id] = true;
  }
  g.compact(dead);
}

void fuse_activations(Graph& g) {
  // A chain of Relu/Clip (PyTorch's F.relu6 exports as Relu then Clip) is one clamp to the
  // intersection of their ranges.
  constexpr float kInf = std::numeric_limits<float>::infinity();
  std::vector<bool> dead(g.nodes.size(), false);
  const ConsumerIndex index(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    if (n.op != Op::Conv && n.op != Op::Gemm && n.op != Op::Add) continue;
    if (n.has_attr("act_min")) continue;
    float lo = -kInf, hi = kInf;
    std::string ops;
    for (int a_id = index.sole_reader(g, n.outputs[0]); a_id >= 0; a_id = index.sole_reader(g, n.outputs[0])) {
      const Node& act = g.nodes[a_id];
      if (act.op == Op::Relu) {
        lo = std::max(lo, 0.f);
      } else if (act.op == Op::Clip && act.inputs.size() == 1) {
        lo = std::max(lo, act.attr_float("min", -kInf));
        hi = std::min(hi, act.attr_float("max", kInf));
      } else {
        break;
      }
      ops += (ops.empty() ? "" : "+") + std::string(op_name(act.op));
      n.outputs[0] = act.outputs[0];
      dead[a_id] = true;
    }
    if (ops.empty()) continue;
    n.attrs["act_min"] = Attribute{Attribute::Kind::Float, 0, lo, {}, {}, {}, {}};
    n.attrs["act_max"] = Attribute{Attribute::Kind::Float, 0, std::max(lo, hi), {}, {}, {}, {}};
    n.attrs["act_op"] = Attribute{Attribute::Kind::String, 0, 0.f, {}, {}, ops, {}};
  }
  g.compact(dead);
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

namespace {

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

}  // namespace

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
  for (Value& v : g.values)
    if (!v.is_const()) v.has_shape = false;
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
    auto in = [&](size_t i) -> const Shape& {
      const Value* v = input_value(g, n, i);
      if (!v) fail(g, n, "input " + std::to_string(i) + " is missing");
      if (!v->has_shape) fail(g, n, "input '" + v->name + "' has no known shape");
      return v->shape;
    };
    auto rank_is = [&](size_t i, size_t r) {
      if (in(i).size() != r)
        fail(g, n,
             "input '" + g.values[n.inputs[i]].name + "' has shape " + shape_str(in(i)) + ", expected rank " +
                 std::to_string(r));
    };
    Shape out;
    switch (n.op) {
      case Op::Conv:
      case Op::QuantizedConv: {
        rank_is(0, 4);
        const bool q = n.op == Op::QuantizedConv;
        const ConstTensor* w = const_input(g, n, 1);
        if (!w) fail(g, n, "weights must be a constant initializer");
        if (w->dtype != (q ? DType::Int8 : DType::Float32))
          fail(g, n, q ? "weights must be int8" : "weights must be float32");
        if (w->dims.size() != 4) fail(g, n, "weights have shape " + shape_str(w->dims) + ", expected rank 4");
        const Shape& x = in(0);
        const int64_t group = n.attr_int("group", 1);
        const int64_t K = w->dims[0];
        if (group < 1 || x[1] % group != 0 || K % group != 0)
          fail(g, n,
               "group " + std::to_string(group) + " does not divide channels " + std::to_string(x[1]) + " -> " +
                   std::to_string(K));
        if (w->dims[1] != x[1] / group)
          fail(g, n,
               "weights " + shape_str(w->dims) + " expect " + std::to_string(w->dims[1] * group) +
                   " input channels, input has " + std::to_string(x[1]));
        std::vector<int64_t> ks = n.attr_ints("kernel_shape", {w->dims[2], w->dims[3]});
        if (ks.size() != 2 || ks[0] != w->dims[2] || ks[1] != w->dims[3])
          fail(g, n, "kernel_shape does not match the weights " + shape_str(w->dims));
        if (const Value* b = input_value(g, n, 2)) {
          if (!b->constant) fail(g, n, "bias must be a constant initializer");
          if (b->constant->dtype != (q ? DType::Int32 : DType::Float32) || b->constant->numel() != K)
            fail(g, n, "bias must be " + std::to_string(K) + (q ? " int32" : " float32") + " values");
        }
        Window win = resolve_window(g, n, x, ks[0], ks[1], false);
        out = {x[0], K, pooled_extent(x[2], win.kh, win.sh, win.dh, win.pt, win.pb, false),
               pooled_extent(x[3], win.kw, win.sw, win.dw, win.pl, win.pr, false)};
        break;
      }
      case Op::MaxPool:
      case Op::AveragePool: {
        rank_is(0, 4);
        std::vector<int64_t> ks = n.attr_ints("kernel_shape");
        if (ks.size() != 2) fail(g, n, "kernel_shape must have 2 values");
        for (int64_t k : ks)
          if (k < 1) fail(g, n, "kernel_shape must be >= 1");
        const bool ceil_mode = n.attr_int("ceil_mode", 0) != 0;
        const Shape& x = in(0);
        Window win = resolve_window(g, n, x, ks[0], ks[1], ceil_mode);
        out = {x[0], x[1], pooled_extent(x[2], win.kh, win.sh, win.dh, win.pt, win.pb, ceil_mode),
               pooled_extent(x[3], win.kw, win.sw, win.dw, win.pl, win.pr, ceil_mode)};
        break;
      }
      case Op::GlobalAveragePool: {
        rank_is(0, 4);
        out = {in(0)[0], in(0)[1], 1, 1};
        break;
      }
      case Op::Flatten: out = flatten_shape(g, n, in(0)); break;
      case Op::Reshape: {
        const ConstTensor* s = const_input(g, n, 1);
        if (!s) fail(g, n, "shape must be a constant");
        if (s->dtype != DType::Int64) fail(g, n, "shape must be int64");
        out = reshape_target(g, n, in(0), *s);
        break;
      }
      case Op::Gemm: {
        rank_is(0, 2);
        rank_is(1, 2);
        const bool ta = n.attr_int("transA", 0) != 0, tb = n.attr_int("transB", 0) != 0;
        const int64_t M = ta ? in(0)[1] : in(0)[0], Ka = ta ? in(0)[0] : in(0)[1];
        const int64_t Kb = tb ? in(1)[1] : in(1)[0], N = tb ? in(1)[0] : in(1)[1];
        if (Ka != Kb) fail(g, n, "A " + shape_str(in(0)) + " and B " + shape_str(in(1)) + " do not multiply");
        out = {M, N};
        if (input_value(g, n, 2) && broadcast(g, n, out, in(2)) != out)
          fail(g, n, "C " + shape_str(in(2)) + " does not broadcast to " + shape_str(out));
        break;
      }
      case Op::MatMul: {
        Shape a = in(0), b = in(1);
        if (a.empty() || b.empty()) fail(g, n, "inputs must have rank >= 1");
        const bool a1 = a.size() == 1, b1 = b.size() == 1;
        if (a1) a.insert(a.begin(), 1);
        if (b1) b.push_back(1);
        if (a.back() != b[b.size() - 2]) fail(g, n, shape_str(in(0)) + " and " + shape_str(in(1)) + " do not multiply");
        Shape ba(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
        out = broadcast(g, n, ba, bb);
        if (!a1) out.push_back(a[a.size() - 2]);
        if (!b1) out.push_back(b.back());
        break;
      }
      case Op::Add: out = broadcast(g, n, in(0), in(1)); break;
      case Op::QuantizedAdd:
        if (in(0) != in(1))
          fail(g, n,
               "int8 Add of " + shape_str(in(0)) + " and " + shape_str(in(1)) + ": broadcasting is not supported");
        out = in(0);
        break;
      case Op::QuantizedDense: {
        const ConstTensor* w = const_input(g, n, 1);
        if (!w || w->dtype != DType::Int8 || w->dims.size() != 2) fail(g, n, "weights must be a constant int8 matrix");
        const Shape& a = in(0);
        if (a.empty() || a.back() != w->dims[1])
          fail(g, n, "input " + shape_str(a) + " does not multiply weights " + shape_str(w->dims));
        out = a;
        out.back() = w->dims[0];
        break;
      }
      case Op::QuantizeLinear:
      case Op::DequantizeLinear: out = in(0); break;
      case Op::Pad: {
        const std::string mode = n.attr_string("mode", "constant");
        if (mode != "constant") fail(g, n, "mode '" + mode + "' is not supported (only constant padding)");
        pad_value(g, n);
        const Shape& x = in(0);
        const std::vector<int64_t> p = pad_amounts(g, n, x.size());
        out = x;
        for (size_t a = 0; a < x.size(); ++a) {
          out[a] = x[a] + p[a] + p[a + x.size()];
          if (out[a] < 1) fail(g, n, "pads leave axis " + std::to_string(a) + " of " + shape_str(x) + " empty");
        }
        break;
      }
      case Op::QLinearConv:
      case Op::QLinearMatMul:
      case Op::QLinearAdd:
      case Op::QLinearGlobalAveragePool:
      case Op::QGemm: fail(g, n, "quantized op was not lowered");
      case Op::BatchNormalization: {
        const Shape& x = in(0);
        if (x.size() < 2) fail(g, n, "input must have rank >= 2");
        for (size_t i = 1; i < 5; ++i) {
          const ConstTensor* c = const_input(g, n, i);
          if (!c) fail(g, n, "scale, bias, mean and var must be constants");
          if (c->dtype != DType::Float32 || c->numel() != x[1])
            fail(g, n, "parameter " + std::to_string(i) + " must hold " + std::to_string(x[1]) + " float32 values");
        }
        out = x;
        break;
      }
      case Op::Relu:
      case Op::Clip:
      case Op::Identity:
      case Op::Dropout: out = in(0); break;
      case Op::Constant: fail(g, n, "Constant should have been folded");
    }
    Value& o = g.values[n.outputs[0]];
    shape_numel(out);
    // One check here for every op: no kernel or plan step sees a tensor with no elements.
    for (int64_t d : out)
      if (d == 0) fail(g, n, "output shape " + shape_str(out) + " is empty: empty tensors are not supported");
    o.shape = std::move(out);
    o.has_shape = true;
    // Element types: the integer ops read and write uint8 activations; pools and reshapes run on
    // either type; everything else is float32.
    const DType x = g.values[n.inputs[0]].dtype;
    DType want_in = DType::Float32;
    switch (n.op) {
      case Op::QuantizedConv:
      case Op::QuantizedDense:
      case Op::QuantizedAdd: want_in = DType::Uint8, o.dtype = DType::Uint8; break;
      case Op::QuantizeLinear: o.dtype = DType::Uint8; break;
      case Op::DequantizeLinear: want_in = DType::Uint8, o.dtype = DType::Float32; break;
      case Op::MaxPool:
      case Op::AveragePool:
      case Op::GlobalAveragePool:
      case Op::Flatten:
      case Op::Reshape:
      case Op::Pad:
      case Op::Identity:
      case Op::Dropout: want_in = x == DType::Uint8 ? DType::Uint8 : DType::Float32, o.dtype = want_in; break;
      default: o.dtype = DType::Float32; break;
    }
    // Non-constant inputs are activations; constant ones (weights, bounds, shapes) are checked
    // by the op's own rules above and by the runtime.
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const Value* v = input_value(g, n, i);
      if (v && !v->is_const() && v->dtype != want_in)
        fail(g, n, "input '" + v->name + "' is " + dtype_name(v->dtype) + ", expected " + dtype_name(want_in));
    }
    if (o.dtype == DType::Uint8 && !(o.scale > 0.f))
      fail(g, n, "output '" + o.name + "' is uint8 without a quantization scale");
  }
}

void simplify(Graph& g) {
  fold_constants(g);
  remove_identities(g);
  fold_pad(g);
  canonicalize_clip(g);
  fold_batch_norm(g);
  g.validate();
}

void lower_for_runtime(Graph& g) {
  lower_quantized(g);
  fuse_activations(g);
  g.validate();
}

void optimize(Graph& g) {
  simplify(g);
  lower_for_runtime(g);
}

}  // namespace q8::ir
