#include "plan.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>

#include "kernels/f32_misc.h"
#include "q8/error.h"

namespace q8::rt {

using ir::ConstTensor;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

AlignedFloats::AlignedFloats(size_t n) : n_(n) {
  const size_t bytes = std::max<size_t>(64, (n * sizeof(float) + 63) / 64 * 64);
  p_ = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!p_) throw std::bad_alloc();
  std::memset(p_, 0, bytes);
}

AlignedFloats& AlignedFloats::operator=(AlignedFloats&& o) noexcept {
  if (this != &o) {
    std::free(p_);
    p_ = o.p_;
    n_ = o.n_;
    o.p_ = nullptr;
    o.n_ = 0;
  }
  return *this;
}

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

[[noreturn]] void fail(const Graph& g, const Node& n, const std::string& what) {
  throw Error(g.source + ": " + n.describe() + ": " + what);
}

const ConstTensor* const_input(const Graph& g, const Node& n, size_t i) {
  if (i >= n.inputs.size() || n.inputs[i] == ir::kNoValue) return nullptr;
  return g.values[n.inputs[i]].constant.get();
}
const Shape& shape_of(const Graph& g, int v) { return g.values[v].shape; }
size_t numel(const Shape& s) { return static_cast<size_t>(ir::shape_numel(s)); }

struct Activation {
  float lo = -kInf, hi = kInf;
};
Activation activation_of(const Node& n) { return {n.attr_float("act_min", -kInf), n.attr_float("act_max", kInf)}; }

// Conv geometry from the weights and attributes (spatial sizes from shapes when known).
kern::ConvGeometry conv_geometry(const Graph& g, const Node& n) {
  const ConstTensor& w = *const_input(g, n, 1);
  kern::ConvGeometry c;
  c.groups = static_cast<size_t>(n.attr_int("group", 1));
  c.K = static_cast<size_t>(w.dims[0]);
  c.C = static_cast<size_t>(w.dims[1]) * c.groups;
  c.KH = static_cast<size_t>(w.dims[2]);
  c.KW = static_cast<size_t>(w.dims[3]);
  const auto s = n.attr_ints("strides", {1, 1}), d = n.attr_ints("dilations", {1, 1}), p = n.attr_ints("pads", {0, 0, 0, 0});
  c.SH = s[0], c.SW = s[1], c.DH = d[0], c.DW = d[1];
  c.PT = p[0], c.PL = p[1], c.PB = p[2], c.PR = p[3];
  const ir::Value& x = g.values[n.inputs[0]];
  const ir::Value& y = g.values[n.outputs[0]];
  if (x.has_shape && y.has_shape) {
    c.N = x.shape[0], c.IH = x.shape[2], c.IW = x.shape[3];
    c.OH = y.shape[2], c.OW = y.shape[3];
  }
  return c;
}

bool is_depthwise(const kern::ConvGeometry& c) { return c.groups > 1 && c.Cg() == 1 && c.Kg() == 1; }

// Gemm runs on packed weights when B is a constant matrix and A needs no transpose; the bias C,
// when present, must then be a constant broadcast along rows (shape [N], [1,N] or a scalar).
bool gemm_packed_path(const Graph& g, const Node& n) {
  if (n.op == Op::MatMul) {
    const ConstTensor* b = const_input(g, n, 1);
    return b && b->dims.size() == 2 && g.values[n.inputs[0]].shape.size() >= 2;
  }
  if (n.attr_int("transA", 0) != 0) return false;
  const ConstTensor* b = const_input(g, n, 1);
  if (!b || b->dims.size() != 2) return false;
  if (n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue) {
    const ConstTensor* c = const_input(g, n, 2);
    if (!c) return false;
    const int64_t N = n.attr_int("transB", 0) ? b->dims[0] : b->dims[1];
    const bool row = c->numel() == 1 || (c->numel() == N && (c->dims.size() == 1 || (c->dims.size() == 2 && c->dims[0] == 1)));
    if (!row) return false;
  }
  return true;
}

}  // namespace

PackedWeights pack_weights(const Graph& g, const Dispatch& d) {
  PackedWeights pw;
  pw.per_node.resize(g.nodes.size());
  const kern::F32Kernels& k = *d.f32;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (n.op == Op::Conv) {
      const kern::ConvGeometry c = conv_geometry(g, n);
      const ConstTensor* b = const_input(g, n, 2);
      const float* w = const_input(g, n, 1)->data<float>();
      if (is_depthwise(c)) {
        AlignedFloats buf(kern::f32_dwconv_packed_floats(c));
        kern::f32_dwconv_pack(c, w, b ? b->data<float>() : nullptr, buf.data());
        pw.per_node[i] = std::move(buf);
      } else {
        AlignedFloats buf(kern::f32_conv_packed_floats(c, k.conv.nr));
        kern::f32_conv_pack(c, k.conv.nr, w, b ? b->data<float>() : nullptr, buf.data());
        pw.per_node[i] = std::move(buf);
      }
    } else if ((n.op == Op::Gemm || n.op == Op::MatMul) && gemm_packed_path(g, n)) {
      const ConstTensor& b = *const_input(g, n, 1);
      const bool tb = n.op == Op::Gemm && n.attr_int("transB", 0) != 0;
      const size_t Kd = static_cast<size_t>(tb ? b.dims[1] : b.dims[0]);
      const size_t N = static_cast<size_t>(tb ? b.dims[0] : b.dims[1]);
      // alpha scales B once here; beta scales the bias: alpha*A*B + beta*C = A*(alpha*B) + (beta*C).
      const float alpha = n.op == Op::Gemm ? n.attr_float("alpha", 1.f) : 1.f;
      const float beta = n.op == Op::Gemm ? n.attr_float("beta", 1.f) : 1.f;
      std::vector<float> scaled(b.data<float>(), b.data<float>() + b.numel());
      for (float& v : scaled) v *= alpha;
      std::vector<float> bias(N, 0.f);
      if (const ConstTensor* c = const_input(g, n, 2))
        for (size_t j = 0; j < N; ++j) bias[j] = beta * c->data<float>()[c->numel() == 1 ? 0 : j];
      AlignedFloats buf(kern::f32_gemm_packed_floats(Kd, N, k.conv.nr));
      kern::f32_gemm_pack(Kd, N, k.conv.nr, scaled.data(), tb ? 1 : N, tb ? Kd : 1, bias.data(), buf.data());
      pw.per_node[i] = std::move(buf);
    } else if (n.op == Op::BatchNormalization) {
      // y = (x - mean) / sqrt(var + eps) * gamma + beta = x * scale + shift
      const int64_t C = const_input(g, n, 1)->numel();
      const float eps = n.attr_float("epsilon", 1e-5f);
      AlignedFloats buf(2 * C);
      for (int64_t c = 0; c < C; ++c) {
        const float s = const_input(g, n, 1)->data<float>()[c] / std::sqrt(const_input(g, n, 4)->data<float>()[c] + eps);
        buf.data()[c] = s;
        buf.data()[C + c] = const_input(g, n, 2)->data<float>()[c] - const_input(g, n, 3)->data<float>()[c] * s;
      }
      pw.per_node[i] = std::move(buf);
    }
  }
  return pw;
}

std::string kernel_name(const Graph& g, const Node& n, const Dispatch& d) {
  const kern::F32Kernels& k = *d.f32;
  const std::string isa = std::string("__") + k.isa;
  switch (n.op) {
    case Op::Conv: {
      if (is_depthwise(conv_geometry(g, n))) return "f32_dwconv" + isa;
      return "f32_igemm_" + std::to_string(k.conv.mr) + "x" + std::to_string(k.conv.nr) + isa;
    }
    case Op::Gemm:
    case Op::MatMul:
      if (gemm_packed_path(g, n)) return "f32_gemm_" + std::to_string(k.conv.mr) + "x" + std::to_string(k.conv.nr) + isa;
      return "f32_matmul_strided__scalar";
    case Op::MaxPool: return "f32_maxpool" + isa;
    case Op::AveragePool: return "f32_avgpool" + isa;
    case Op::GlobalAveragePool: return "f32_global_avgpool" + isa;
    case Op::Add: return "f32_add" + isa;
    case Op::Relu:
    case Op::Clip: return "f32_clamp" + isa;
    case Op::BatchNormalization: return "f32_channel_affine__scalar";
    case Op::Flatten:
    case Op::Reshape: return "view (no copy)";
    default: return "copy";
  }
}

int64_t node_macs(const Graph& g, const Node& n) {
  if (n.op == Op::Conv) {
    const kern::ConvGeometry c = conv_geometry(g, n);
    return static_cast<int64_t>(c.out_pixels() * c.K * c.Cg() * c.taps());
  }
  if (n.op == Op::Gemm || n.op == Op::MatMul) {
    const Shape& a = shape_of(g, n.inputs[0]);
    const Shape& y = shape_of(g, n.outputs[0]);
    const bool ta = n.op == Op::Gemm && n.attr_int("transA", 0);
    const int64_t K = a.empty() ? 0 : (ta ? a[0] : a.back());
    return ir::shape_numel(y) * K;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------

struct Plan::Step {
  std::string node;
  size_t work = 1, align = 1;
  std::function<void(size_t, size_t)> fn;
  std::function<void()> bind;  // runs once buffers have addresses
  std::vector<const float*> indirection;
};

struct Plan::Builder {
  enum class Layout { Plain, NHWC };
  struct Buf {
    size_t floats = 0;
    int first = 0, last = 0;
    const float* fixed = nullptr;  // constants live outside the arena
  };

  const Graph& g;
  const PackedWeights& w;
  const Dispatch& d;
  Plan& p;
  std::vector<Buf> bufs;
  std::vector<int> plain, nhwc;  // value id -> buffer id per layout, -1 if not materialised
  std::vector<Layout> native;    // the layout a value's producer writes

  Builder(const Graph& g_, const PackedWeights& w_, const Dispatch& d_, Plan& p_)
      : g(g_), w(w_), d(d_), p(p_), plain(g_.values.size(), -1), nhwc(g_.values.size(), -1),
        native(g_.values.size(), Layout::Plain) {}

  int step_index() const { return static_cast<int>(p.steps_.size()); }
  int new_buf(size_t floats) {
    bufs.push_back({floats, step_index(), step_index(), nullptr});
    return static_cast<int>(bufs.size()) - 1;
  }
  // Lifetimes are marked here, by the step that reads or writes a buffer, so conversion steps
  // added while fetching a node's inputs never shorten the life of an input read later.
  int fixed_buf(const float* data, size_t floats) {
    bufs.push_back({floats, 0, 0, data});
    return static_cast<int>(bufs.size()) - 1;
  }
  Step& add_step(const Node* n, size_t work, size_t align, std::initializer_list<int> reads,
                 std::initializer_list<int> writes) {
    const int at = step_index();
    for (int b : reads)
      if (b >= 0) bufs[b].last = std::max(bufs[b].last, at);
    for (int b : writes) bufs[b].first = at, bufs[b].last = std::max(bufs[b].last, at);
    p.steps_.push_back(std::make_unique<Step>());
    Step& s = *p.steps_.back();
    s.node = n ? n->name : "";
    s.work = work;
    s.align = align;
    return s;
  }
  float* addr(int b) const { return p.buffers_[b]; }

  // NHWC and C-order agree byte for byte unless the tensor is 4-D with C > 1 and H*W > 1.
  static bool layouts_agree(const Shape& s) { return s.size() != 4 || s[1] == 1 || s[2] * s[3] == 1; }

  void define(int v, Layout l, int b) {
    native[v] = l;
    (l == Layout::NHWC ? nhwc : plain)[v] = b;
    if (layouts_agree(shape_of(g, v))) plain[v] = nhwc[v] = b;
  }

  // The buffer holding value v in layout l, converting (once) if needed.
  int get(int v, Layout l) {
    const Shape& s = shape_of(g, v);
    if (plain[v] < 0 && nhwc[v] < 0 && g.values[v].constant) {
      const ConstTensor& c = *g.values[v].constant;
      if (c.dtype != ir::DType::Float32) throw Error(g.source + ": constant '" + g.values[v].name + "' is not float32");
      plain[v] = fixed_buf(c.data<float>(), numel(s));
      if (layouts_agree(s)) nhwc[v] = plain[v];
    }
    int& slot = l == Layout::NHWC ? nhwc[v] : plain[v];
    if (slot < 0) {
      const int src = l == Layout::NHWC ? plain[v] : nhwc[v];
      if (src < 0) throw Error(g.source + ": value '" + g.values[v].name + "' is used before it is computed");
      const size_t C = s[1], HW = s[2] * s[3];
      if (bufs[src].fixed) {  // a constant: convert now, once
        p.owned_.emplace_back(numel(s));
        kern::f32_nchw_to_nhwc(C, HW, bufs[src].fixed, p.owned_.back().data(), 0, s[0]);
        slot = fixed_buf(p.owned_.back().data(), numel(s));
      } else {
        const int dst = new_buf(numel(s));
        Step& st = add_step(nullptr, s[0], 1, {src}, {dst});
        st.node = g.values[v].name + (l == Layout::NHWC ? " (to NHWC)" : " (to NCHW)");
        const bool to_nhwc = l == Layout::NHWC;
        st.fn = [this_p = &p, src, dst, C, HW, to_nhwc](size_t n0, size_t n1) {
          const float* in = this_p->buffers_[src];
          float* out = this_p->buffers_[dst];
          if (to_nhwc) kern::f32_nchw_to_nhwc(C, HW, in, out, n0, n1);
          else kern::f32_nhwc_to_nchw(C, HW, in, out, n0, n1);
        };
        slot = dst;
      }
    }
    return slot;
  }

  void build();
  void conv(size_t i, const Node& n);
  void gemm(size_t i, const Node& n);
  void add(const Node& n);
  void pool(const Node& n);
  void layout_free_unary(const Node& n);
  void assign_arena();
};

void Plan::Builder::conv(size_t i, const Node& n) {
  const kern::ConvGeometry c = conv_geometry(g, n);
  const Activation act = activation_of(n);
  const int x = get(n.inputs[0], Layout::NHWC);
  const int y = new_buf(numel(shape_of(g, n.outputs[0])));
  define(n.outputs[0], Layout::NHWC, y);
  const float* packed = w.per_node[i].data();
  p.owned_.emplace_back(c.C);  // the zero row that padding taps point at
  const float* zero = p.owned_.back().data();
  const kern::F32Kernels* k = d.f32;
  if (is_depthwise(c)) {
    Step& s = add_step(&n, c.out_pixels(), 1, {x}, {y});
    s.fn = [this_p = &p, k, c, x, y, packed, zero, act](size_t p0, size_t p1) {
      k->dwconv(c, this_p->buffers_[x], packed, zero, this_p->buffers_[y], p0, p1, act.lo, act.hi);
    };
    return;
  }
  Step& s = add_step(&n, c.out_pixels(), k->conv.mr, {x}, {y});
  Step* sp = &s;
  s.bind = [this_p = &p, sp, c, x, zero] {
    const size_t per_group = c.out_pixels() * c.taps();
    sp->indirection.resize(per_group * c.groups);
    for (size_t grp = 0; grp < c.groups; ++grp)
      kern::conv_indirection_init(c, grp, this_p->buffers_[x], zero, sp->indirection.data() + grp * per_group);
  };
  const size_t packed_per_group = kern::f32_conv_packed_floats(c, k->conv.nr) / c.groups;
  s.fn = [this_p = &p, sp, k, c, y, packed, packed_per_group, act](size_t p0, size_t p1) {
    const size_t per_group = c.out_pixels() * c.taps();
    for (size_t grp = 0; grp < c.groups; ++grp)
      kern::f32_conv_run(k->conv, c, grp, sp->indirection.data() + grp * per_group, packed + grp * packed_per_group,
                         this_p->buffers_[y], p0, p1, act.lo, act.hi);
  };
}

void Plan::Builder::gemm(size_t i, const Node& n) {
  const Activation act = activation_of(n);
  const Shape& ys = shape_of(g, n.outputs[0]);
  const kern::F32Kernels* k = d.f32;
  if (gemm_packed_path(g, n)) {
    const ConstTensor& b = *const_input(g, n, 1);
    const bool tb = n.op == Op::Gemm && n.attr_int("transB", 0) != 0;
    const size_t Kd = static_cast<size_t>(tb ? b.dims[1] : b.dims[0]);
    const size_t N = static_cast<size_t>(tb ? b.dims[0] : b.dims[1]);
    const size_t M = numel(ys) / N;
    const int a = get(n.inputs[0], Layout::Plain);
    const int y = new_buf(numel(ys));
    define(n.outputs[0], Layout::Plain, y);
    const float* packed = w.per_node[i].data();
    Step& s = add_step(&n, M, k->conv.mr, {a}, {y});
    s.fn = [this_p = &p, k, a, y, packed, M, N, Kd, act](size_t m0, size_t m1) {
      kern::f32_gemm_run(*k, N, Kd, this_p->buffers_[a], Kd, packed, this_p->buffers_[y], N, m0, m1, act.lo, act.hi);
    };
    return;
  }
  // General product: alpha * op(A) op(B) (+ beta * C), batched with broadcasting over leading axes.
  Shape as = shape_of(g, n.inputs[0]), bs = shape_of(g, n.inputs[1]);
  kern::MatMulGeometry mg;
  if (n.op == Op::Gemm) {
    const bool ta = n.attr_int("transA", 0) != 0, tb = n.attr_int("transB", 0) != 0;
    mg.M = ta ? as[1] : as[0];
    mg.K = ta ? as[0] : as[1];
    mg.N = tb ? bs[0] : bs[1];
    mg.a_rs = ta ? 1 : as[1];
    mg.a_cs = ta ? as[1] : 1;
    mg.b_rs = tb ? 1 : bs[1];
    mg.b_cs = tb ? bs[1] : 1;
    mg.alpha = n.attr_float("alpha", 1.f);
  } else {
    if (as.size() == 1) as.insert(as.begin(), 1);
    if (bs.size() == 1) bs.push_back(1);
    mg.M = as[as.size() - 2];
    mg.K = as.back();
    mg.N = bs.back();
    mg.a_rs = mg.K, mg.a_cs = 1, mg.b_rs = mg.N, mg.b_cs = 1;
    const size_t ab = numel(Shape(as.begin(), as.end() - 2)), bb = numel(Shape(bs.begin(), bs.end() - 2));
    mg.batch = numel(ys) / (mg.M * mg.N);
    // Each operand's batch axes either match the output's or are all 1 (broadcast whole).
    if ((ab != mg.batch && ab != 1) || (bb != mg.batch && bb != 1))
      fail(g, n, "batch broadcasting between " + ir::shape_str(as) + " and " + ir::shape_str(bs) + " is not supported");
    mg.a_batch_stride = ab == 1 ? 0 : mg.M * mg.K;
    mg.b_batch_stride = bb == 1 ? 0 : mg.K * mg.N;
  }
  const int a = get(n.inputs[0], Layout::Plain), b = get(n.inputs[1], Layout::Plain);
  int c = -1;
  std::vector<int64_t> cdims;
  float beta = 0.f;
  if (n.op == Op::Gemm && n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue) {
    c = get(n.inputs[2], Layout::Plain);
    const Shape& cs = shape_of(g, n.inputs[2]);
    cdims.assign(2 - std::min<size_t>(2, cs.size()), 1);
    cdims.insert(cdims.end(), cs.begin(), cs.end());
    beta = n.attr_float("beta", 1.f);
  }
  const int y = new_buf(numel(ys));
  define(n.outputs[0], Layout::Plain, y);
  Step& s = add_step(&n, 1, 1, {a, b, c}, {y});
  const std::vector<int64_t> ydims = {static_cast<int64_t>(mg.M), static_cast<int64_t>(mg.N)};
  s.fn = [this_p = &p, k, mg, a, b, c, y, cdims, ydims, beta, act](size_t, size_t) {
    float* out = this_p->buffers_[y];
    kern::f32_matmul_strided(mg, this_p->buffers_[a], this_p->buffers_[b], out);
    if (c >= 0)
      kern::f32_broadcast_add(2, ydims.data(), ydims.data(), out, cdims.data(), this_p->buffers_[c], beta, out, act.lo, act.hi);
    else if (act.lo > -kInf || act.hi < kInf)
      k->clamp(mg.batch * mg.M * mg.N, out, out, act.lo, act.hi);
  };
}

void Plan::Builder::add(const Node& n) {
  const Activation act = activation_of(n);
  const Shape& ys = shape_of(g, n.outputs[0]);
  const int va = n.inputs[0], vb = n.inputs[1];
  const Shape &as = shape_of(g, va), &bs = shape_of(g, vb);
  const kern::F32Kernels* k = d.f32;
  const size_t total = numel(ys);
  auto per_channel = [&](const Shape& s) {  // broadcasts as [1,C,1,1] against a 4-D output
    if (ys.size() != 4 || s.size() > 4 || numel(s) != static_cast<size_t>(ys[1])) return false;
    Shape full(4 - s.size(), 1);
    full.insert(full.end(), s.begin(), s.end());
    return full[0] == 1 && full[1] == ys[1] && full[2] == 1 && full[3] == 1;
  };
  if (as == ys && bs == ys) {
    // Same shape: work in the layout the first operand already has.
    const Layout l = g.values[va].constant ? native[vb] : native[va];
    const int a = get(va, l), b = get(vb, l);
    const int y = new_buf(total);
    define(n.outputs[0], l, y);
    Step& s = add_step(&n, total, 64, {a, b}, {y});
    s.fn = [this_p = &p, k, a, b, y, act](size_t i0, size_t i1) {
      k->add(i1 - i0, this_p->buffers_[a] + i0, this_p->buffers_[b] + i0, this_p->buffers_[y] + i0, act.lo, act.hi);
    };
    return;
  }
  if ((as == ys && per_channel(bs)) || (bs == ys && per_channel(as))) {
    // A per-channel term on NHWC is a row broadcast: C contiguous values added to every pixel.
    const int big = get(as == ys ? va : vb, Layout::NHWC), small = get(as == ys ? vb : va, Layout::Plain);
    const int y = new_buf(total);
    define(n.outputs[0], Layout::NHWC, y);
    const size_t C = ys[1], rows = total / C;
    Step& s = add_step(&n, rows, 1, {big, small}, {y});
    s.fn = [this_p = &p, k, big, small, y, C, act](size_t r0, size_t r1) {
      k->add_row(r1 - r0, C, this_p->buffers_[big] + r0 * C, this_p->buffers_[small], this_p->buffers_[y] + r0 * C, act.lo, act.hi);
    };
    return;
  }
  if (ys.size() > 8) fail(g, n, "broadcasting above rank 8 is not supported");
  const int a = get(va, Layout::Plain), b = get(vb, Layout::Plain);
  const int y = new_buf(total);
  define(n.outputs[0], Layout::Plain, y);
  auto padded = [&](const Shape& s) {
    std::vector<int64_t> r(ys.size() - s.size(), 1);
    r.insert(r.end(), s.begin(), s.end());
    return r;
  };
  Step& s = add_step(&n, 1, 1, {a, b}, {y});
  s.fn = [this_p = &p, a, b, y, yd = std::vector<int64_t>(ys), ad = padded(as), bd = padded(bs), act](size_t, size_t) {
    kern::f32_broadcast_add(yd.size(), yd.data(), ad.data(), this_p->buffers_[a], bd.data(), this_p->buffers_[b], 1.f,
                            this_p->buffers_[y], act.lo, act.hi);
  };
}

void Plan::Builder::pool(const Node& n) {
  const Shape& xs = shape_of(g, n.inputs[0]);
  const Shape& ys = shape_of(g, n.outputs[0]);
  const int x = get(n.inputs[0], Layout::NHWC);
  const int y = new_buf(numel(ys));
  define(n.outputs[0], Layout::NHWC, y);
  const kern::F32Kernels* k = d.f32;
  if (n.op == Op::GlobalAveragePool) {
    const size_t HW = xs[2] * xs[3], C = xs[1];
    Step& s = add_step(&n, xs[0], 1, {x}, {y});
    s.fn = [this_p = &p, k, x, y, HW, C](size_t n0, size_t n1) {
      k->global_avgpool(HW, C, this_p->buffers_[x], this_p->buffers_[y], n0, n1);
    };
    return;
  }
  kern::PoolGeometry pg;
  pg.N = xs[0], pg.C = xs[1], pg.IH = xs[2], pg.IW = xs[3], pg.OH = ys[2], pg.OW = ys[3];
  const auto ks = n.attr_ints("kernel_shape"), st = n.attr_ints("strides", {1, 1}),
             dl = n.attr_ints("dilations", {1, 1}), pd = n.attr_ints("pads", {0, 0, 0, 0});
  pg.KH = ks[0], pg.KW = ks[1], pg.SH = st[0], pg.SW = st[1], pg.DH = dl[0], pg.DW = dl[1];
  pg.PT = pd[0], pg.PL = pd[1], pg.PB = pd[2], pg.PR = pd[3];
  pg.count_include_pad = n.attr_int("count_include_pad", 0) != 0;
  const bool is_max = n.op == Op::MaxPool;
  Step& s = add_step(&n, pg.N * pg.OH * pg.OW, 1, {x}, {y});
  s.fn = [this_p = &p, k, pg, x, y, is_max](size_t p0, size_t p1) {
    (is_max ? k->maxpool : k->avgpool)(pg, this_p->buffers_[x], this_p->buffers_[y], p0, p1);
  };
}

void Plan::Builder::layout_free_unary(const Node& n) {
  const int v = n.inputs[0];
  const Layout l = g.values[v].constant ? Layout::Plain : native[v];
  const int x = get(v, l);
  const size_t total = numel(shape_of(g, v));
  const int y = new_buf(total);
  define(n.outputs[0], l, y);
  float lo = 0.f, hi = kInf;
  if (n.op == Op::Clip) lo = n.attr_float("min", -kInf), hi = n.attr_float("max", kInf);
  if (n.op == Op::Identity || n.op == Op::Dropout) lo = -kInf, hi = kInf;
  const kern::F32Kernels* k = d.f32;
  Step& s = add_step(&n, total, 64, {x}, {y});
  s.fn = [this_p = &p, k, x, y, lo, hi](size_t i0, size_t i1) {
    k->clamp(i1 - i0, this_p->buffers_[x] + i0, this_p->buffers_[y] + i0, lo, hi);
  };
}

void Plan::Builder::build() {
  // Graph inputs arrive as C-order float data and are copied into the arena.
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    const int v = g.inputs[i];
    const size_t count = numel(shape_of(g, v));
    const int b = new_buf(count);
    define(v, Layout::Plain, b);
    p.input_buffers_.push_back(b);
    p.input_sizes_.push_back(count);
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    switch (n.op) {
      case Op::Conv: conv(i, n); break;
      case Op::Gemm:
      case Op::MatMul: gemm(i, n); break;
      case Op::Add: add(n); break;
      case Op::MaxPool:
      case Op::AveragePool:
      case Op::GlobalAveragePool: pool(n); break;
      case Op::Relu:
      case Op::Clip:
      case Op::Identity:
      case Op::Dropout: layout_free_unary(n); break;
      case Op::Flatten:
      case Op::Reshape: {
        // A reshape of a C-order tensor moves no data: the output shares the buffer.
        define(n.outputs[0], Layout::Plain, get(n.inputs[0], Layout::Plain));
        break;
      }
      case Op::BatchNormalization: {
        const Shape& xs = shape_of(g, n.inputs[0]);
        const int x = get(n.inputs[0], Layout::Plain);
        const int y = new_buf(numel(xs));
        define(n.outputs[0], Layout::Plain, y);
        const size_t C = xs[1], outer = xs[0], inner = numel(xs) / (outer * C);
        const float* ss = w.per_node[i].data();
        Step& s = add_step(&n, outer, 1, {x}, {y});
        s.fn = [this_p = &p, x, y, C, inner, ss](size_t n0, size_t n1) {
          kern::f32_channel_affine(n1 - n0, C, inner, this_p->buffers_[x] + n0 * C * inner, ss, ss + C,
                                   this_p->buffers_[y] + n0 * C * inner);
        };
        break;
      }
      case Op::Constant: fail(g, n, "Constant should have been folded");
    }
  }
  for (int v : g.outputs) {
    p.output_buffers_.push_back(get(v, Layout::Plain));
    p.output_sizes_.push_back(numel(shape_of(g, v)));
  }
  // Outputs are read after the last step: keep their buffers alive to the end.
  for (int b : p.output_buffers_) bufs[b].last = step_index();
  for (int b : p.input_buffers_) bufs[b].first = 0;
}

void Plan::Builder::assign_arena() {
  // Greedy placement, largest first: each buffer goes at the lowest 64-byte aligned offset that
  // overlaps no placed buffer whose lifetime [first, last] intersects its own.
  std::vector<int> order;
  for (size_t b = 0; b < bufs.size(); ++b)
    if (!bufs[b].fixed) order.push_back(static_cast<int>(b));
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return bufs[a].floats > bufs[b].floats; });
  std::vector<size_t> offset(bufs.size(), 0);
  std::vector<int> placed;
  size_t total = 0;
  for (int b : order) {
    const size_t size = (bufs[b].floats + 15) / 16 * 16;
    std::vector<std::pair<size_t, size_t>> busy;
    for (int o : placed)
      if (bufs[o].first <= bufs[b].last && bufs[b].first <= bufs[o].last)
        busy.push_back({offset[o], offset[o] + (bufs[o].floats + 15) / 16 * 16});
    std::sort(busy.begin(), busy.end());
    size_t at = 0;
    for (const auto& [lo, hi] : busy) {
      if (at + size <= lo) break;
      at = std::max(at, hi);
    }
    offset[b] = at;
    total = std::max(total, at + size);
    placed.push_back(b);
  }
  p.arena_ = AlignedFloats(total);
  p.buffers_.resize(bufs.size());
  for (size_t b = 0; b < bufs.size(); ++b)
    p.buffers_[b] = bufs[b].fixed ? const_cast<float*>(bufs[b].fixed) : p.arena_.data() + offset[b];
}

Plan::Plan(const Graph& g, const PackedWeights& w, const Dispatch& d) {
  Builder b(g, w, d, *this);
  b.build();
  b.assign_arena();
  for (auto& s : steps_)
    if (s->bind) s->bind();
}

Plan::~Plan() = default;

void Plan::run(ThreadPool& pool, const std::vector<const float*>& inputs, const std::vector<float*>& outputs) {
  for (size_t i = 0; i < inputs.size(); ++i)
    std::memcpy(buffers_[input_buffers_[i]], inputs[i], input_sizes_[i] * sizeof(float));
  for (auto& s : steps_) pool.parallel_for(s->work, s->align, s->fn);
  for (size_t i = 0; i < outputs.size(); ++i)
    std::memcpy(outputs[i], buffers_[output_buffers_[i]], output_sizes_[i] * sizeof(float));
}

}  // namespace q8::rt
