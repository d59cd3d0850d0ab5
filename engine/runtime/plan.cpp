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
#include "runtime/ops/ops.h"
#include "runtime/plan_builder.h"

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

[[noreturn]] void fail(const Graph& g, const Node& n, const std::string& what) {
  throw Error(g.source + ": " + n.describe() + ": " + what);
}

const ConstTensor* const_input(const Graph& g, const Node& n, size_t i) {
  if (i >= n.inputs.size() || n.inputs[i] == ir::kNoValue) return nullptr;
  return g.values[n.inputs[i]].constant.get();
}

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

PackedWeights pack_weights(const Graph& g, const Dispatch& d) {
  PackedWeights pw;
  pw.per_node.resize(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (const auto pack = op_runtime(g.nodes[i].op).pack) pw.per_node[i] = pack(g, g.nodes[i], d);
  return pw;
}

std::string kernel_name(const Graph& g, const Node& n, const Dispatch& d) { return op_runtime(n.op).kernel(g, n, d); }

int64_t node_macs(const Graph& g, const Node& n) {
  const auto macs = op_runtime(n.op).macs;
  return macs ? macs(g, n) : 0;
}

// ---------------------------------------------------------------------------------------------

Plan::Builder::Builder(const Graph& g_, const PackedWeights& w_, const Dispatch& d_, Plan& p_)
    : g(g_),
      w(w_),
      d(d_),
      p(p_),
      plain(g_.values.size(), -1),
      nhwc(g_.values.size(), -1),
      native(g_.values.size(), Layout::Plain),
      consumers(g_) {}

int Plan::Builder::new_buf(size_t bytes) {
  bufs.push_back({bytes, step_index(), step_index(), nullptr});
  return static_cast<int>(bufs.size()) - 1;
}

int Plan::Builder::fixed_buf(const void* data, size_t bytes) {
  bufs.push_back({bytes, 0, 0, static_cast<const uint8_t*>(data)});
  return static_cast<int>(bufs.size()) - 1;
}

AlignedBuffer& Plan::Builder::own(size_t bytes) {
  p.owned_.emplace_back(bytes);
  return p.owned_.back();
}

Plan::Step& Plan::Builder::add_step(const std::string& name, size_t work, size_t align, const std::vector<int>& reads,
                                    const std::vector<int>& writes) {
  const int at = step_index();
  for (int b : reads)
    if (b >= 0) bufs[b].last = std::max(bufs[b].last, at);
  for (int b : writes)
    if (b >= 0) bufs[b].first = at, bufs[b].last = std::max(bufs[b].last, at);
  p.steps_.push_back(std::make_unique<Step>());
  Step& s = *p.steps_.back();
  s.node = name;
  s.work = work;
  s.align = align;
  return s;
}

void Plan::Builder::define(int v, Layout l, int b) {
  native[v] = l;
  (l == Layout::NHWC ? nhwc : plain)[v] = b;
  if (layouts_agree(shape_of(g, v))) plain[v] = nhwc[v] = b;
}

int Plan::Builder::get(int v, Layout l) {
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
  st.fn = [&A = p.buffers_, src, dst, C, HW, to_nhwc, u8](size_t n0, size_t n1) {  // pixel range
    const uint8_t* in = A[src];
    uint8_t* out = A[dst];
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
bool Plan::Builder::may_overwrite(int v, size_t node, int b) const {
  if (b < 0 || bufs[b].fixed || g.is_graph_output(v)) return false;
  if (std::find(g.inputs.begin(), g.inputs.end(), v) != g.inputs.end()) return false;
  const std::vector<int> readers = consumers.readers(g, v);
  if (readers.empty() || readers.back() != static_cast<int>(node)) return false;
  // Other values in b (a view of v; a value an earlier step wrote over) must all be read by now.
  for (size_t u = 0; u < plain.size(); ++u) {
    if (static_cast<int>(u) == v || (plain[u] != b && nhwc[u] != b)) continue;
    const std::vector<int> r = consumers.readers(g, static_cast<int>(u));
    if (g.is_graph_output(static_cast<int>(u)) || (!r.empty() && r.back() >= static_cast<int>(node))) return false;
  }
  return true;
}

void Plan::Builder::count_indirection(const kern::ConvGeometry& c) {
  size_t n = 0;
  if (__builtin_mul_overflow(c.out_pixels(), c.taps(), &n) || __builtin_mul_overflow(n, c.groups * sizeof(void*), &n) ||
      __builtin_add_overflow(side_bytes, n, &side_bytes))
    side_bytes = SIZE_MAX;
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
  const std::vector<bool> unread = g.unread_nodes();
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (g.values[n.outputs[0]].is_const() || unread[i]) continue;  // evaluated by infer_shapes(); unused
    op_runtime(n.op).plan(*this, i, n);
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
      s.fn = [&A = p.buffers_, q, b, y, scale, zp](size_t i0, size_t i1) {
        q->dequantize(i1 - i0, A.u8(b) + i0, A.f32(y) + i0, scale, zp);
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

namespace {

// Bounded memory: a hostile or mistaken model (huge pads, widths or a huge declared
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
