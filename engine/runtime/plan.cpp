#include "runtime/plan.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>

#include "kernels/f32_misc.h"
#include "q8/error.h"

namespace q8::rt {

using ir::ConstTensor;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

AlignedBuffer::AlignedBuffer(size_t bytes) : n_(bytes) {
  const size_t rounded = std::max<size_t>(64, (bytes + 63) / 64 * 64);
  p_ = static_cast<uint8_t*>(std::aligned_alloc(64, rounded));
  if (!p_) throw Error("out of memory allocating " + std::to_string(rounded) + " bytes of working memory");
  std::memset(p_, 0, rounded);
}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& o) noexcept {
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
  const auto s = n.attr_ints("strides", {1, 1}), d = n.attr_ints("dilations", {1, 1}),
             p = n.attr_ints("pads", {0, 0, 0, 0});
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

// Every multiplier an integer kernel applies (s_in * s_w[c] / s_out, s_a / s_out, s_in / s_out)
// is computed once in double, rounded to float once, and must be a normal float in
// [2^-126, 2^24]: scales that each pass validation can still multiply to infinity (then 0 * M is
// a NaN, which the scalar and SIMD clamps order differently) or to a subnormal, and past 2^24
// every non-zero accumulator saturates, so the scales are corrupt. The node is refused by name.
float checked_multiplier(const Graph& g, const Node& n, double m, const char* what) {
  const float f = static_cast<float>(m);
  if (!std::isnormal(f) || f < 0.f || f > 16777216.f)
    fail(g, n,
         std::string("requantization multiplier ") + what + " = " + std::to_string(m) +
             " is out of range (the quantization scales are inconsistent)");
  return f;
}

std::vector<float> requant_multipliers(const Graph& g, const Node& n) {
  const float s_in = g.values[n.inputs[0]].scale, s_out = g.values[n.outputs[0]].scale;
  std::vector<float> m;
  for (float sw : n.attr_floats("w_scale"))
    m.push_back(checked_multiplier(g, n, static_cast<double>(s_in) * sw / s_out, "s_in * s_w / s_out"));
  return m;
}

kern::QU8Requant requant_of(const Graph& g, const Node& n) {
  kern::QU8Requant r;
  r.out_zero_point = g.values[n.outputs[0]].zero_point;
  r.out_min = static_cast<uint8_t>(n.attr_int("qmin", 0));
  r.out_max = static_cast<uint8_t>(n.attr_int("qmax", 255));
  return r;
}

// Gemm runs on packed weights when B is a constant matrix and A needs no transpose; the bias C,
// when present, must then be a constant broadcast along rows (shape [N], [1,N] or a scalar).
bool gemm_packed_path(const Graph& g, const Node& n) {
  // Decided from constants and attributes only: weights are packed before shapes are known.
  if (n.op == Op::MatMul) {
    const ConstTensor* b = const_input(g, n, 1);
    return b && b->dims.size() == 2;
  }
  if (n.attr_int("transA", 0) != 0) return false;
  const ConstTensor* b = const_input(g, n, 1);
  if (!b || b->dims.size() != 2) return false;
  if (n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue) {
    const ConstTensor* c = const_input(g, n, 2);
    if (!c) return false;
    const int64_t N = n.attr_int("transB", 0) ? b->dims[0] : b->dims[1];
    const bool row =
        c->numel() == 1 || (c->numel() == N && (c->dims.size() == 1 || (c->dims.size() == 2 && c->dims[0] == 1)));
    if (!row) return false;
  }
  return true;
}

}  // namespace

PackedWeights pack_weights(const Graph& g, const Dispatch& d) {
  PackedWeights pw;
  pw.per_node.resize(g.nodes.size());
  const kern::F32Kernels& k = *d.f32;
  const kern::QU8Kernels& q = *d.qu8;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (n.op == Op::QuantizedConv) {
      const kern::ConvGeometry c = conv_geometry(g, n);
      const ConstTensor* b = const_input(g, n, 2);
      const int8_t* w = const_input(g, n, 1)->data<int8_t>();
      const std::vector<float> m = requant_multipliers(g, n);
      const uint8_t za = static_cast<uint8_t>(g.values[n.inputs[0]].zero_point);
      if (is_depthwise(c)) {
        AlignedBuffer buf(kern::qu8_dwconv_packed_bytes(c));
        kern::qu8_dwconv_pack(c, w, b ? b->data<int32_t>() : nullptr, m.data(), za, buf.data());
        pw.per_node[i] = std::move(buf);
      } else {
        AlignedBuffer buf(kern::qu8_conv_packed_bytes(c, q.nr, q.kr));
        kern::qu8_conv_pack(c, q.nr, q.kr, w, b ? b->data<int32_t>() : nullptr, m.data(), za, buf.data());
        pw.per_node[i] = std::move(buf);
      }
    } else if (n.op == Op::QuantizedDense) {
      const ConstTensor& w = *const_input(g, n, 1);  // [N][Kd]
      const ConstTensor* b = const_input(g, n, 2);
      const size_t N = static_cast<size_t>(w.dims[0]), Kd = static_cast<size_t>(w.dims[1]);
      const std::vector<float> m = requant_multipliers(g, n);
      AlignedBuffer buf(kern::qu8_gemm_packed_bytes(Kd, N, q.nr, q.kr));
      kern::qu8_gemm_pack(Kd, N, q.nr, q.kr, w.data<int8_t>(), 1, Kd, b ? b->data<int32_t>() : nullptr, m.data(),
                          static_cast<uint8_t>(g.values[n.inputs[0]].zero_point), buf.data());
      pw.per_node[i] = std::move(buf);
    } else if (n.op == Op::Conv) {
      const kern::ConvGeometry c = conv_geometry(g, n);
      const ConstTensor* b = const_input(g, n, 2);
      const float* w = const_input(g, n, 1)->data<float>();
      if (is_depthwise(c)) {
        AlignedBuffer buf(kern::f32_dwconv_packed_floats(c) * sizeof(float));
        kern::f32_dwconv_pack(c, w, b ? b->data<float>() : nullptr, buf.as<float>());
        pw.per_node[i] = std::move(buf);
      } else {
        AlignedBuffer buf(kern::f32_conv_packed_floats(c, k.conv.nr) * sizeof(float));
        kern::f32_conv_pack(c, k.conv.nr, w, b ? b->data<float>() : nullptr, buf.as<float>());
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
      AlignedBuffer buf(kern::f32_gemm_packed_floats(Kd, N, k.conv.nr) * sizeof(float));
      kern::f32_gemm_pack(Kd, N, k.conv.nr, scaled.data(), tb ? 1 : N, tb ? Kd : 1, bias.data(), buf.as<float>());
      pw.per_node[i] = std::move(buf);
    } else if (n.op == Op::BatchNormalization) {
      // y = (x - mean) / sqrt(var + eps) * gamma + beta = x * scale + shift
      const int64_t C = const_input(g, n, 1)->numel();
      const float eps = n.attr_float("epsilon", 1e-5f);
      AlignedBuffer buf(2 * C * sizeof(float));
      float* ss = buf.as<float>();
      for (int64_t c = 0; c < C; ++c) {
        const float s =
            const_input(g, n, 1)->data<float>()[c] / std::sqrt(const_input(g, n, 4)->data<float>()[c] + eps);
        ss[c] = s;
        ss[C + c] = const_input(g, n, 2)->data<float>()[c] - const_input(g, n, 3)->data<float>()[c] * s;
      }
      pw.per_node[i] = std::move(buf);
    }
  }
  return pw;
}

std::string kernel_name(const Graph& g, const Node& n, const Dispatch& d) {
  const kern::F32Kernels& f = *d.f32;
  const kern::QU8Kernels& q = *d.qu8;
  const bool u8 = !n.inputs.empty() && n.inputs[0] != ir::kNoValue && g.values[n.inputs[0]].dtype == ir::DType::Uint8;
  switch (n.op) {
    case Op::QuantizedConv: return is_depthwise(conv_geometry(g, n)) ? q.dwconv.name : q.igemm.name;
    case Op::QuantizedDense: return q.gemm.name;
    case Op::QuantizedAdd: return q.add.name;
    case Op::QuantizeLinear: return q.quantize.name;
    case Op::DequantizeLinear: return q.dequantize.name;
    case Op::MaxPool: return u8 ? q.maxpool.name : f.maxpool.name;
    case Op::AveragePool: return u8 ? q.avgpool.name : f.avgpool.name;
    case Op::GlobalAveragePool: return u8 ? q.global_avgpool.name : f.global_avgpool.name;
    case Op::Conv: return is_depthwise(conv_geometry(g, n)) ? f.dwconv.name : f.conv.igemm.name;
    case Op::Gemm:
    case Op::MatMul: return gemm_packed_path(g, n) ? f.gemm.name : "f32_matmul_strided";
    case Op::Add: return f.add.name;
    case Op::Relu:
    case Op::Clip: return f.clamp.name;
    case Op::BatchNormalization: return "f32_channel_affine";
    case Op::Flatten:
    case Op::Reshape: return "view (no copy)";
    case Op::Pad: return u8 ? "u8_pad" : "f32_pad";
    default: return "copy";
  }
}

int64_t node_macs(const Graph& g, const Node& n) {
  if (n.op == Op::Conv || n.op == Op::QuantizedConv) {
    const kern::ConvGeometry c = conv_geometry(g, n);
    return static_cast<int64_t>(c.out_pixels() * c.K * c.Cg() * c.taps());
  }
  if (n.op == Op::QuantizedDense) {
    return ir::shape_numel(shape_of(g, n.outputs[0])) * g.values[n.inputs[1]].constant->dims[1];
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
  std::vector<const void*> indirection;
};

namespace {
// Kernels may read a few bytes past the end of an activation row (int8 GEMMs read channels in
// K groups of up to kern::kQu8MaxKr); every arena buffer is followed by this much readable slack.
constexpr size_t kBufferSlack = 64;
static_assert(kBufferSlack >= kern::kQu8MaxKr - 1, "int8 GEMMs read up to kr - 1 bytes past a row");
}  // namespace

struct Plan::Builder {
  enum class Layout { Plain, NHWC };
  struct Buf {
    size_t bytes = 0;
    int first = 0, last = 0;
    const uint8_t* fixed = nullptr;  // constants live outside the arena
  };

  const Graph& g;
  const PackedWeights& w;
  const Dispatch& d;
  Plan& p;
  size_t side_bytes = 0;  // working memory outside the arena (indirection buffers), for the limit
  std::vector<Buf> bufs;
  std::vector<int> plain, nhwc;  // value id -> buffer id per layout, -1 if not materialised
  std::vector<Layout> native;    // the layout a value's producer writes

  Builder(const Graph& g_, const PackedWeights& w_, const Dispatch& d_, Plan& p_)
      : g(g_),
        w(w_),
        d(d_),
        p(p_),
        plain(g_.values.size(), -1),
        nhwc(g_.values.size(), -1),
        native(g_.values.size(), Layout::Plain) {}

  int step_index() const { return static_cast<int>(p.steps_.size()); }
  size_t bytes_of(int v) const { return numel(shape_of(g, v)) * ir::dtype_size(g.values[v].dtype); }
  bool is_u8(int v) const { return g.values[v].dtype == ir::DType::Uint8; }
  int new_buf(size_t bytes) {
    bufs.push_back({bytes, step_index(), step_index(), nullptr});
    return static_cast<int>(bufs.size()) - 1;
  }
  int fixed_buf(const void* data, size_t bytes) {
    bufs.push_back({bytes, 0, 0, static_cast<const uint8_t*>(data)});
    return static_cast<int>(bufs.size()) - 1;
  }
  // Lifetimes are marked here, by the step that reads or writes a buffer, so conversion steps
  // added while fetching a node's inputs never shorten the life of an input read later.
  Step& add_step(const std::string& name, size_t work, size_t align, std::initializer_list<int> reads,
                 std::initializer_list<int> writes) {
    const int at = step_index();
    for (int b : reads)
      if (b >= 0) bufs[b].last = std::max(bufs[b].last, at);
    for (int b : writes) bufs[b].first = at, bufs[b].last = std::max(bufs[b].last, at);
    p.steps_.push_back(std::make_unique<Step>());
    Step& s = *p.steps_.back();
    s.node = name;
    s.work = work;
    s.align = align;
    return s;
  }

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
      plain[v] = fixed_buf(c.data<float>(), c.bytes.size());
      if (layouts_agree(s)) nhwc[v] = plain[v];
    }
    int& slot = l == Layout::NHWC ? nhwc[v] : plain[v];
    if (slot >= 0) return slot;
    const int src = l == Layout::NHWC ? plain[v] : nhwc[v];
    if (src < 0) throw Error(g.source + ": value '" + g.values[v].name + "' is used before it is computed");
    const size_t C = s[1], HW = s[2] * s[3];
    const bool to_nhwc = l == Layout::NHWC, u8 = is_u8(v);
    if (bufs[src].fixed) {  // a float constant: convert now, once
      p.owned_.emplace_back(bytes_of(v));
      kern::f32_nchw_to_nhwc(C, HW, reinterpret_cast<const float*>(bufs[src].fixed), p.owned_.back().as<float>(), 0,
                             s[0] * HW);
      slot = fixed_buf(p.owned_.back().data(), bytes_of(v));
      return slot;
    }
    const int dst = new_buf(bytes_of(v));
    Step& st = add_step(g.values[v].name + (to_nhwc ? " (to NHWC)" : " (to NCHW)"), s[0] * HW, 64, {src}, {dst});
    st.fn = [&P = p, src, dst, C, HW, to_nhwc, u8](size_t n0, size_t n1) {  // pixel range
      const uint8_t* in = P.buffers_[src];
      uint8_t* out = P.buffers_[dst];
      if (u8) {
        if (to_nhwc)
          kern::u8_nchw_to_nhwc(C, HW, in, out, n0, n1);
        else
          kern::u8_nhwc_to_nchw(C, HW, in, out, n0, n1);
      } else {
        if (to_nhwc)
          kern::f32_nchw_to_nhwc(C, HW, reinterpret_cast<const float*>(in), reinterpret_cast<float*>(out), n0, n1);
        else
          kern::f32_nhwc_to_nchw(C, HW, reinterpret_cast<const float*>(in), reinterpret_cast<float*>(out), n0, n1);
      }
    };
    slot = dst;
    return slot;
  }

  void build();
  // An indirect convolution's buffer: a pointer per output pixel, tap and group, allocated when
  // the plan binds; counted here so the working-memory limit covers it. Saturates on overflow.
  void count_indirection(const kern::ConvGeometry& c) {
    size_t n = 0;
    if (__builtin_mul_overflow(c.out_pixels(), c.taps(), &n) ||
        __builtin_mul_overflow(n, c.groups * sizeof(void*), &n) || __builtin_add_overflow(side_bytes, n, &side_bytes))
      side_bytes = SIZE_MAX;
  }
  void conv(size_t i, const Node& n);
  void qconv(size_t i, const Node& n);
  void gemm(size_t i, const Node& n);
  void qdense(size_t i, const Node& n);
  void add(const Node& n);
  void qadd(const Node& n);
  void pool(const Node& n);
  void elementwise(const Node& n);
  void pad(const Node& n);
  void assign_arena(size_t limit);  // limit: the working-memory cap (workspace_limit)
};

// Typed views of a plan's buffers, for the step lambdas (addresses are fixed after layout).
#define Q8_F32(id) reinterpret_cast<float*>(P.buffers_[id])
#define Q8_U8(id) (P.buffers_[id])

void Plan::Builder::conv(size_t i, const Node& n) {
  const kern::ConvGeometry c = conv_geometry(g, n);
  const Activation act = activation_of(n);
  const int x = get(n.inputs[0], Layout::NHWC);
  const int y = new_buf(bytes_of(n.outputs[0]));
  define(n.outputs[0], Layout::NHWC, y);
  const float* packed = w.per_node[i].as<float>();
  p.owned_.emplace_back(c.C * sizeof(float));  // the zero row that padding taps point at
  const float* zero = p.owned_.back().as<float>();
  const kern::F32Kernels* k = d.f32;
  if (is_depthwise(c)) {
    Step& s = add_step(n.name, c.out_pixels(), 1, {x}, {y});
    s.fn = [&P = p, k, c, x, y, packed, zero, act](size_t p0, size_t p1) {
      k->dwconv(c, Q8_F32(x), packed, zero, Q8_F32(y), p0, p1, act.lo, act.hi);
    };
    return;
  }
  Step& s = add_step(n.name, c.out_pixels(), k->conv.mr, {x}, {y});
  Step* sp = &s;
  count_indirection(c);
  s.bind = [&P = p, sp, c, x, zero] {
    const size_t per_group = c.out_pixels() * c.taps();
    sp->indirection.resize(per_group * c.groups);
    for (size_t grp = 0; grp < c.groups; ++grp)
      kern::conv_indirection_init(c, grp, Q8_F32(x), zero,
                                  reinterpret_cast<const float**>(sp->indirection.data()) + grp * per_group);
  };
  const size_t packed_per_group = kern::f32_conv_packed_floats(c, k->conv.nr) / c.groups;
  s.fn = [&P = p, sp, k, c, y, packed, packed_per_group, act](size_t p0, size_t p1) {
    const size_t per_group = c.out_pixels() * c.taps();
    const float* const* ind = reinterpret_cast<const float* const*>(sp->indirection.data());
    for (size_t grp = 0; grp < c.groups; ++grp)
      kern::f32_conv_run(k->conv, c, grp, ind + grp * per_group, packed + grp * packed_per_group, Q8_F32(y), p0, p1,
                         act.lo, act.hi);
  };
}

void Plan::Builder::qconv(size_t i, const Node& n) {
  const kern::ConvGeometry c = conv_geometry(g, n);
  const kern::QU8Requant rq = requant_of(g, n);
  const int x = get(n.inputs[0], Layout::NHWC);
  const int y = new_buf(bytes_of(n.outputs[0]));
  define(n.outputs[0], Layout::NHWC, y);
  const void* packed = w.per_node[i].data();
  // Padding taps read the input zero point: (z_a - z_a) * w = 0 (see qu8.h's algebra).
  p.owned_.emplace_back(c.C + kBufferSlack);
  std::memset(p.owned_.back().data(), g.values[n.inputs[0]].zero_point, c.C + kBufferSlack);
  const uint8_t* zero = p.owned_.back().data();
  const kern::QU8Kernels* k = d.qu8;
  if (is_depthwise(c)) {
    Step& s = add_step(n.name, c.out_pixels(), 1, {x}, {y});
    s.fn = [&P = p, k, c, x, y, packed, zero, rq](size_t p0, size_t p1) {
      k->dwconv(c, Q8_U8(x), packed, zero, Q8_U8(y), p0, p1, rq);
    };
    return;
  }
  Step& s = add_step(n.name, c.out_pixels(), k->mr, {x}, {y});
  Step* sp = &s;
  count_indirection(c);
  s.bind = [&P = p, sp, c, x, zero] {
    const size_t per_group = c.out_pixels() * c.taps();
    sp->indirection.resize(per_group * c.groups);
    for (size_t grp = 0; grp < c.groups; ++grp)
      kern::qu8_conv_indirection_init(c, grp, Q8_U8(x), zero,
                                      reinterpret_cast<const uint8_t**>(sp->indirection.data()) + grp * per_group);
  };
  const size_t packed_per_group = kern::qu8_conv_packed_bytes(c, k->nr, k->kr) / c.groups;
  s.fn = [&P = p, sp, k, c, y, packed, packed_per_group, rq](size_t p0, size_t p1) {
    const size_t per_group = c.out_pixels() * c.taps();
    const uint8_t* const* ind = reinterpret_cast<const uint8_t* const*>(sp->indirection.data());
    for (size_t grp = 0; grp < c.groups; ++grp)
      kern::qu8_conv_run(*k, c, grp, ind + grp * per_group,
                         static_cast<const uint8_t*>(packed) + grp * packed_per_group, Q8_U8(y), p0, p1, rq);
  };
}

void Plan::Builder::qdense(size_t i, const Node& n) {
  const ConstTensor& wt = *const_input(g, n, 1);
  const size_t N = static_cast<size_t>(wt.dims[0]), Kd = static_cast<size_t>(wt.dims[1]);
  const size_t M = numel(shape_of(g, n.outputs[0])) / N;
  const kern::QU8Requant rq = requant_of(g, n);
  const int a = get(n.inputs[0], Layout::Plain);
  const int y = new_buf(bytes_of(n.outputs[0]));
  define(n.outputs[0], Layout::Plain, y);
  const void* packed = w.per_node[i].data();
  const kern::QU8Kernels* k = d.qu8;
  Step& s = add_step(n.name, M, k->mr, {a}, {y});
  s.fn = [&P = p, k, a, y, packed, M, N, Kd, rq](size_t m0, size_t m1) {
    kern::qu8_gemm_run(*k, N, Kd, Q8_U8(a), Kd, packed, Q8_U8(y), N, m0, m1, rq);
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
    const int y = new_buf(bytes_of(n.outputs[0]));
    define(n.outputs[0], Layout::Plain, y);
    const float* packed = w.per_node[i].as<float>();
    Step& s = add_step(n.name, M, k->conv.mr, {a}, {y});
    s.fn = [&P = p, k, a, y, packed, M, N, Kd, act](size_t m0, size_t m1) {
      kern::f32_gemm_run(*k, N, Kd, Q8_F32(a), Kd, packed, Q8_F32(y), N, m0, m1, act.lo, act.hi);
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
  const int y = new_buf(bytes_of(n.outputs[0]));
  define(n.outputs[0], Layout::Plain, y);
  Step& s = add_step(n.name, 1, 1, {a, b, c}, {y});
  const std::vector<int64_t> ydims = {static_cast<int64_t>(mg.M), static_cast<int64_t>(mg.N)};
  s.fn = [&P = p, k, mg, a, b, c, y, cdims, ydims, beta, act](size_t, size_t) {
    float* out = Q8_F32(y);
    kern::f32_matmul_strided(mg, Q8_F32(a), Q8_F32(b), out);
    if (c >= 0)
      kern::f32_broadcast_add(2, ydims.data(), ydims.data(), out, cdims.data(), Q8_F32(c), beta, out, act.lo, act.hi);
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
    const int y = new_buf(bytes_of(n.outputs[0]));
    define(n.outputs[0], l, y);
    Step& s = add_step(n.name, total, 64, {a, b}, {y});
    s.fn = [&P = p, k, a, b, y, act](size_t i0, size_t i1) {
      k->add(i1 - i0, Q8_F32(a) + i0, Q8_F32(b) + i0, Q8_F32(y) + i0, act.lo, act.hi);
    };
    return;
  }
  if ((as == ys && per_channel(bs)) || (bs == ys && per_channel(as))) {
    // A per-channel term on NHWC is a row broadcast: C contiguous values added to every pixel.
    const int big = get(as == ys ? va : vb, Layout::NHWC), small = get(as == ys ? vb : va, Layout::Plain);
    const int y = new_buf(bytes_of(n.outputs[0]));
    define(n.outputs[0], Layout::NHWC, y);
    const size_t C = ys[1], rows = total / C;
    Step& s = add_step(n.name, rows, 1, {big, small}, {y});
    s.fn = [&P = p, k, big, small, y, C, act](size_t r0, size_t r1) {
      k->add_row(r1 - r0, C, Q8_F32(big) + r0 * C, Q8_F32(small), Q8_F32(y) + r0 * C, act.lo, act.hi);
    };
    return;
  }
  if (ys.size() > 8) fail(g, n, "broadcasting above rank 8 is not supported");
  const int a = get(va, Layout::Plain), b = get(vb, Layout::Plain);
  const int y = new_buf(bytes_of(n.outputs[0]));
  define(n.outputs[0], Layout::Plain, y);
  auto padded = [&](const Shape& s) {
    std::vector<int64_t> r(ys.size() - s.size(), 1);
    r.insert(r.end(), s.begin(), s.end());
    return r;
  };
  Step& s = add_step(n.name, 1, 1, {a, b}, {y});
  s.fn = [&P = p, a, b, y, yd = std::vector<int64_t>(ys), ad = padded(as), bd = padded(bs), act](size_t, size_t) {
    kern::f32_broadcast_add(yd.size(), yd.data(), ad.data(), Q8_F32(a), bd.data(), Q8_F32(b), 1.f, Q8_F32(y), act.lo,
                            act.hi);
  };
}

void Plan::Builder::qadd(const Node& n) {
  const int va = n.inputs[0], vb = n.inputs[1];
  const ir::Value &A = g.values[va], &B = g.values[vb], &Y = g.values[n.outputs[0]];
  kern::QU8AddParams ap;
  ap.a_zero_point = A.zero_point;
  ap.b_zero_point = B.zero_point;
  ap.a_multiplier = checked_multiplier(g, n, static_cast<double>(A.scale) / Y.scale, "s_a / s_out");
  ap.b_multiplier = checked_multiplier(g, n, static_cast<double>(B.scale) / Y.scale, "s_b / s_out");
  ap.out = requant_of(g, n);
  const Layout l = native[va];
  const int a = get(va, l), b = get(vb, l);
  const int y = new_buf(bytes_of(n.outputs[0]));
  define(n.outputs[0], l, y);
  const kern::QU8Kernels* k = d.qu8;
  Step& s = add_step(n.name, bytes_of(n.outputs[0]), 64, {a, b}, {y});
  s.fn = [&P = p, k, a, b, y, ap](size_t i0, size_t i1) {
    k->add(i1 - i0, Q8_U8(a) + i0, Q8_U8(b) + i0, Q8_U8(y) + i0, ap);
  };
}

void Plan::Builder::pool(const Node& n) {
  const Shape& xs = shape_of(g, n.inputs[0]);
  const Shape& ys = shape_of(g, n.outputs[0]);
  const bool u8 = is_u8(n.inputs[0]);
  const int x = get(n.inputs[0], Layout::NHWC);
  const int y = new_buf(bytes_of(n.outputs[0]));
  define(n.outputs[0], Layout::NHWC, y);
  const kern::F32Kernels* k = d.f32;
  const kern::QU8Kernels* q = d.qu8;
  kern::QU8PoolParams pp;
  if (u8) {
    const ir::Value &X = g.values[n.inputs[0]], &Y = g.values[n.outputs[0]];
    if (n.op == Op::MaxPool && (X.scale != Y.scale || X.zero_point != Y.zero_point))
      fail(g, n, "uint8 MaxPool needs the same quantization on its input and output");
    pp.in_zero_point = X.zero_point;
    pp.in_over_out = checked_multiplier(g, n, static_cast<double>(X.scale) / Y.scale, "s_in / s_out");
    pp.out.out_zero_point = Y.zero_point;
  }
  if (n.op == Op::GlobalAveragePool) {
    const size_t HW = xs[2] * xs[3], C = xs[1];
    Step& s = add_step(n.name, xs[0], 1, {x}, {y});
    s.fn = [&P = p, k, q, x, y, HW, C, u8, pp](size_t n0, size_t n1) {
      if (u8)
        q->global_avgpool(HW, C, Q8_U8(x), Q8_U8(y), n0, n1, pp);
      else
        k->global_avgpool(HW, C, Q8_F32(x), Q8_F32(y), n0, n1);
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
  Step& s = add_step(n.name, pg.N * pg.OH * pg.OW, 1, {x}, {y});
  s.fn = [&P = p, k, q, pg, x, y, is_max, u8, pp](size_t p0, size_t p1) {
    if (u8) {
      if (is_max)
        q->maxpool(pg, Q8_U8(x), Q8_U8(y), p0, p1);
      else
        q->avgpool(pg, Q8_U8(x), Q8_U8(y), p0, p1, pp);
    } else {
      (is_max ? k->maxpool : k->avgpool)(pg, Q8_F32(x), Q8_F32(y), p0, p1);
    }
  };
}

// Constant Pad, in the input's own layout (an NHWC tensor is padded as NHWC). On uint8 the
// padding value is quantized with the tensor's own scale and zero point.
void Plan::Builder::pad(const Node& n) {
  const int v = n.inputs[0];
  const Shape& xs = shape_of(g, v);
  const Shape& ys = shape_of(g, n.outputs[0]);
  const size_t r = xs.size();
  if (r > 8) fail(g, n, "padding above rank 8 is not supported");
  const ConstTensor* pads = const_input(g, n, 1);
  std::vector<int64_t> begin(r), in_dims(xs), out_dims(ys);
  for (size_t a = 0; a < r; ++a) begin[a] = pads->as_int64(static_cast<int64_t>(a));
  const Layout l = r == 4 && !g.values[v].constant ? native[v] : Layout::Plain;
  if (l == Layout::NHWC) {  // [N,C,H,W] -> [N,H,W,C]
    auto nhwc = [](std::vector<int64_t> d) { return std::vector<int64_t>{d[0], d[2], d[3], d[1]}; };
    begin = nhwc(begin), in_dims = nhwc(in_dims), out_dims = nhwc(out_dims);
  }
  const ConstTensor* cv = n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue ? const_input(g, n, 2) : nullptr;
  const float value = cv ? static_cast<float>(cv->as_double(0)) : 0.f;
  const bool u8 = is_u8(v);
  uint8_t qvalue = 0;
  if (u8) {
    const ir::Value& X = g.values[v];
    const double q = std::nearbyint(value / X.scale) + X.zero_point;
    qvalue = static_cast<uint8_t>(std::min(std::max(q, 0.0), 255.0));
  }
  const int x = get(v, l);
  const int y = new_buf(bytes_of(n.outputs[0]));
  define(n.outputs[0], l, y);
  Step& s = add_step(n.name, 1, 1, {x}, {y});
  s.fn = [&P = p, x, y, r, begin, in_dims, out_dims, value, qvalue, u8](size_t, size_t) {
    if (u8)
      kern::u8_pad(r, in_dims.data(), begin.data(), out_dims.data(), Q8_U8(x), qvalue, Q8_U8(y));
    else
      kern::f32_pad(r, in_dims.data(), begin.data(), out_dims.data(), Q8_F32(x), value, Q8_F32(y));
  };
}

// Element-wise single-input ops: work in whatever layout the input already has.
void Plan::Builder::elementwise(const Node& n) {
  const int v = n.inputs[0];
  const Layout l = g.values[v].constant ? Layout::Plain : native[v];
  const int x = get(v, l);
  const size_t count = numel(shape_of(g, v));
  const int y = new_buf(bytes_of(n.outputs[0]));
  define(n.outputs[0], l, y);
  const kern::F32Kernels* k = d.f32;
  const kern::QU8Kernels* q = d.qu8;
  Step& s = add_step(n.name, count, 64, {x}, {y});
  if (n.op == Op::QuantizeLinear || n.op == Op::DequantizeLinear) {
    const ir::Value& qv = g.values[n.op == Op::QuantizeLinear ? n.outputs[0] : v];
    const float scale = qv.scale;
    const int32_t zp = qv.zero_point;
    if (n.op == Op::QuantizeLinear)
      s.fn = [&P = p, q, x, y, scale, zp](size_t i0, size_t i1) {
        q->quantize(i1 - i0, Q8_F32(x) + i0, Q8_U8(y) + i0, scale, zp);
      };
    else
      s.fn = [&P = p, q, x, y, scale, zp](size_t i0, size_t i1) {
        q->dequantize(i1 - i0, Q8_U8(x) + i0, Q8_F32(y) + i0, scale, zp);
      };
    return;
  }
  if (is_u8(v)) {  // a uint8 Identity/Dropout: a copy
    s.fn = [&P = p, x, y](size_t i0, size_t i1) { std::memcpy(Q8_U8(y) + i0, Q8_U8(x) + i0, i1 - i0); };
    return;
  }
  float lo = 0.f, hi = kInf;
  if (n.op == Op::Clip) lo = n.attr_float("min", -kInf), hi = n.attr_float("max", kInf);
  if (n.op == Op::Identity || n.op == Op::Dropout) lo = -kInf, hi = kInf;
  s.fn = [&P = p, k, x, y, lo, hi](size_t i0, size_t i1) { k->clamp(i1 - i0, Q8_F32(x) + i0, Q8_F32(y) + i0, lo, hi); };
}

void Plan::Builder::build() {
  // Graph inputs arrive as C-order float data and are copied into the arena.
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    const int v = g.inputs[i];
    const int b = new_buf(bytes_of(v));
    define(v, Layout::Plain, b);
    p.input_buffers_.push_back(b);
    p.input_sizes_.push_back(bytes_of(v));
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    switch (n.op) {
      case Op::Conv: conv(i, n); break;
      case Op::QuantizedConv: qconv(i, n); break;
      case Op::Gemm:
      case Op::MatMul: gemm(i, n); break;
      case Op::QuantizedDense: qdense(i, n); break;
      case Op::Add: add(n); break;
      case Op::QuantizedAdd: qadd(n); break;
      case Op::MaxPool:
      case Op::AveragePool:
      case Op::GlobalAveragePool: pool(n); break;
      case Op::Relu:
      case Op::Clip:
      case Op::Identity:
      case Op::Dropout:
      case Op::QuantizeLinear:
      case Op::DequantizeLinear: elementwise(n); break;
      case Op::Pad: pad(n); break;
      case Op::Flatten:
      case Op::Reshape: {
        // A reshape of a C-order tensor moves no data: the output shares the buffer.
        define(n.outputs[0], Layout::Plain, get(n.inputs[0], Layout::Plain));
        break;
      }
      case Op::BatchNormalization: {
        const Shape& xs = shape_of(g, n.inputs[0]);
        const int x = get(n.inputs[0], Layout::Plain);
        const int y = new_buf(bytes_of(n.outputs[0]));
        define(n.outputs[0], Layout::Plain, y);
        const size_t C = xs[1], outer = xs[0], inner = numel(xs) / (outer * C);
        const float* ss = w.per_node[i].as<float>();
        Step& s = add_step(n.name, outer, 1, {x}, {y});
        s.fn = [&P = p, x, y, C, inner, ss](size_t n0, size_t n1) {
          kern::f32_channel_affine(n1 - n0, C, inner, Q8_F32(x) + n0 * C * inner, ss, ss + C,
                                   Q8_F32(y) + n0 * C * inner);
        };
        break;
      }
      case Op::Constant:
      case Op::QLinearConv:
      case Op::QLinearMatMul:
      case Op::QLinearAdd:
      case Op::QLinearGlobalAveragePool:
      case Op::QGemm: fail(g, n, "internal: op should have been rewritten before planning");
    }
  }
  for (int v : g.outputs) {
    int b = get(v, Layout::Plain);
    if (is_u8(v)) {
      // A uint8 tensor asked for as an output (an intermediate, for analysis): dequantize it.
      const int y = new_buf(numel(shape_of(g, v)) * sizeof(float));
      const float scale = g.values[v].scale;
      const int32_t zp = g.values[v].zero_point;
      const kern::QU8Kernels* q = d.qu8;
      Step& s = add_step(g.values[v].name + " (dequantized output)", numel(shape_of(g, v)), 64, {b}, {y});
      s.fn = [&P = p, q, b, y, scale, zp](size_t i0, size_t i1) {
        q->dequantize(i1 - i0, P.buffers_[b] + i0, reinterpret_cast<float*>(P.buffers_[y]) + i0, scale, zp);
      };
      b = y;
    }
    p.output_buffers_.push_back(b);
    p.output_sizes_.push_back(numel(shape_of(g, v)) * sizeof(float));
  }
  // Outputs are read after the last step: keep their buffers alive to the end.
  for (int b : p.output_buffers_) bufs[b].last = step_index();
  for (int b : p.input_buffers_) bufs[b].first = 0;
}

#undef Q8_F32
#undef Q8_U8

namespace {

// Bounded memory (issue #7): a hostile or mistaken model (huge pads, widths or a huge declared
// batch) must be refused with an error, not exhaust the machine or overflow size arithmetic.
// The cap on the working memory of one plan: Q8_MAX_WORKSPACE_MB when set; otherwise 256 times
// what the model and its inputs hold (weights and input tensors), and at least 1 GiB, at most
// 16 GiB. Networks need far less than 256 times (ResNet-50 at batch 1: under a third of its
// weights), so only a small file that declares enormous intermediate tensors (huge pads, pools
// or kernels) meets the cap, and is refused rather than allowed gigabytes.
size_t workspace_limit(const Graph& g) {
  static const size_t env_mb = [] {
    if (const char* e = std::getenv("Q8_MAX_WORKSPACE_MB")) {
      char* end = nullptr;
      const unsigned long long v = std::strtoull(e, &end, 10);
      if (end != e && *end == '\0' && v > 0 && v < (size_t{1} << 40)) return static_cast<size_t>(v);
    }
    return size_t{0};
  }();
  if (env_mb) return env_mb << 20;
  double held = 0;
  for (const ir::Value& v : g.values)
    if (v.is_const()) held += static_cast<double>(v.constant->bytes.size());
  for (int v : g.inputs)
    if (g.values[v].has_shape) held += static_cast<double>(ir::shape_numel(g.values[v].shape)) * 4;
  const double limit = std::min(std::max(256 * held, double(size_t{1} << 30)), double(size_t{16} << 30));
  return static_cast<size_t>(limit);
}

std::string mib(size_t bytes) { return std::to_string((bytes >> 20) + ((bytes & ((1 << 20) - 1)) != 0)) + " MiB"; }

}  // namespace

void Plan::Builder::assign_arena(size_t limit) {
  // Buffers that live to the last step (graph outputs, and every observed tensor when
  // calibrating) all overlap one another, so they are stacked at the bottom of the arena. The
  // rest are placed greedily, largest first, at the lowest 64-byte aligned offset above that
  // stack that overlaps no placed buffer whose lifetime [first, last] intersects its own. The
  // placed buffers alive at each step are listed per step, so a placement looks only at the
  // buffers of its own steps: linear in the plan's length for the short lifetimes of a chain.
  auto span = [&](int b) { return (bufs[b].bytes + kBufferSlack + 63) / 64 * 64; };
  int end = 0;
  for (const Buf& b : bufs)
    if (!b.fixed) end = std::max(end, b.last);
  std::vector<size_t> offset(bufs.size(), 0);
  std::vector<int> order;
  size_t stack = 0;
  for (size_t b = 0; b < bufs.size(); ++b) {
    if (bufs[b].fixed) continue;
    if (bufs[b].last == end) {
      offset[b] = stack;
      stack += span(static_cast<int>(b));
    } else {
      order.push_back(static_cast<int>(b));
    }
  }
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return bufs[a].bytes > bufs[b].bytes; });
  std::vector<std::vector<int>> alive(static_cast<size_t>(end) + 1);
  std::vector<int> seen(bufs.size(), -1);
  size_t total = stack;
  std::vector<std::pair<size_t, size_t>> busy;
  for (int b : order) {
    const size_t size = span(b);
    busy.clear();
    for (int t = bufs[b].first; t <= bufs[b].last; ++t)
      for (int o : alive[t])
        if (seen[o] != b) {
          seen[o] = b;
          busy.push_back({offset[o], offset[o] + span(o)});
        }
    std::sort(busy.begin(), busy.end());
    size_t at = stack;
    for (const auto& [lo, hi] : busy) {
      if (at + size <= lo) break;
      at = std::max(at, hi);
    }
    offset[b] = at;
    total = std::max(total, at + size);
    for (int t = bufs[b].first; t <= bufs[b].last; ++t) alive[t].push_back(b);
  }
  size_t need = 0;
  if (__builtin_add_overflow(total, side_bytes, &need)) need = SIZE_MAX;
  if (need > limit)
    throw Error(g.source + ": these input shapes need " + mib(need) +
                " of working memory, more than the working-memory limit of " + mib(limit) +
                " (Q8_MAX_WORKSPACE_MB raises it)");
  try {
    p.arena_ = AlignedBuffer(total);
  } catch (const Error&) {
    throw Error(g.source + ": out of memory allocating " + mib(total) + " of working memory for these input shapes");
  }
  p.buffers_.resize(bufs.size());
  for (size_t b = 0; b < bufs.size(); ++b)
    p.buffers_[b] = bufs[b].fixed ? const_cast<uint8_t*>(bufs[b].fixed) : p.arena_.data() + offset[b];
}

Plan::Plan(const Graph& g, const PackedWeights& w, const Dispatch& d) {
  // Every value at most limit/8 elements (8 bytes: the widest type), so no buffer size below
  // can overflow; then the arena as a whole against the limit.
  const size_t limit = workspace_limit(g);
  for (const ir::Value& v : g.values) {
    if (!v.has_shape || v.is_const()) continue;
    const int64_t n = ir::shape_numel(v.shape);
    if (static_cast<uint64_t>(n) > limit / 8)
      throw Error(g.source + ": tensor '" + v.name + "' of shape " + ir::shape_str(v.shape) +
                  " needs more than the working-memory limit of " + mib(limit) + " (Q8_MAX_WORKSPACE_MB raises it)");
  }
  Builder b(g, w, d, *this);
  b.build();
  b.assign_arena(limit);
  for (auto& s : steps_)
    if (s->bind) s->bind();
}

Plan::~Plan() = default;

void Plan::run(ThreadPool& pool, const std::vector<const float*>& inputs, const std::vector<float*>& outputs,
               double* step_ms) {
  // Empty tensors (a 0 extent) may have null data, and memcpy(nullptr, ..., 0) is undefined
  // behaviour: skip empty copies (sanitizer builds).
  for (size_t i = 0; i < inputs.size(); ++i)
    if (input_sizes_[i]) std::memcpy(buffers_[input_buffers_[i]], inputs[i], input_sizes_[i]);
  for (size_t k = 0; k < steps_.size(); ++k) {
    const Step& s = *steps_[k];
    if (!step_ms) {
      pool.parallel_for(s.work, s.align, s.fn);
      continue;
    }
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(s.work, s.align, s.fn);
    step_ms[k] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  for (size_t i = 0; i < outputs.size(); ++i)
    if (output_sizes_[i]) std::memcpy(outputs[i], buffers_[output_buffers_[i]], output_sizes_[i]);
}

std::vector<std::string> Plan::step_names() const {
  std::vector<std::string> r;
  for (const auto& s : steps_) r.push_back(s->node);
  return r;
}

}  // namespace q8::rt
