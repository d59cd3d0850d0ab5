// lower_quantized: turns the two ways ONNX files carry int8 (QDQ: DequantizeLinear -> float op
// -> QuantizeLinear; QOperator: QLinearConv, QLinearMatMul, QGemm, QLinearAdd, ...) into q8's
// integer ops. Values between integer ops stay uint8: no dequantize/quantize round trips.
// What cannot be lowered keeps its float semantics: its DequantizeLinear/QuantizeLinear nodes
// stay and run as conversions at its edges.
//
// int8 activations (signed zero points) are carried as uint8 with zero point + 128: q_u8 =
// q_s8 + 128 represents the same real value, and the clamp ranges map one to one.
#include <cmath>
#include <limits>

#include "ir/op_traits.h"
#include "ir/shape_inference.h"
#include "passes/passes.h"
#include "q8/error.h"

namespace q8::ir {

namespace {

[[noreturn]] void fail(const Graph& g, const Node& n, const std::string& what) {
  throw Error(g.source + ": " + n.describe() + ": " + what);
}

Attribute int_attr(int64_t i) {
  Attribute a;
  a.kind = Attribute::Kind::Int;
  a.i = i;
  return a;
}
Attribute floats_attr(std::vector<float> v) {
  Attribute a;
  a.kind = Attribute::Kind::Floats;
  a.floats = std::move(v);
  return a;
}
Attribute string_attr(std::string v) {
  Attribute a;
  a.kind = Attribute::Kind::String;
  a.s = std::move(v);
  return a;
}

struct QParams {
  float scale = 0.f;
  int32_t zero_point = 0;  // in the uint8 domain (signed zero points shifted by 128)
};

class Lowering {
 public:
  explicit Lowering(Graph& g) : g_(g), dead_(g.nodes.size(), false), readers_(g) {}
  void run();

 private:
  Graph& g_;
  std::vector<bool> dead_;
  std::vector<int> producer_;
  ir::ConsumerIndex readers_;  // kept current: run() records each rewritten node's new inputs

  const ConstTensor* constant(int v) const { return v == kNoValue ? nullptr : g_.values[v].constant.get(); }
  int input(const Node& n, size_t i) const { return i < n.inputs.size() ? n.inputs[i] : kNoValue; }

  void index_producers() {
    producer_.assign(g_.values.size(), -1);
    for (size_t i = 0; i < g_.nodes.size(); ++i)
      if (!dead_[i])
        for (int o : g_.nodes[i].outputs) producer_[o] = static_cast<int>(i);
  }
  // Node i was rewritten: its outputs and inputs go into the indexes (values may have been added).
  void record(size_t i) {
    producer_.resize(g_.values.size(), -1);
    for (int o : g_.nodes[i].outputs) producer_[o] = static_cast<int>(i);
    readers_.add(g_, static_cast<int>(i));
  }
  void kill(int node) {
    dead_[node] = true;
    for (int o : g_.nodes[node].outputs)
      if (producer_[o] == node) producer_[o] = -1;
  }

  // A per-tensor scale: a finite, positive float32 scalar.
  float scale_of(const Node& n, int v, const char* what) const {
    const ConstTensor* c = constant(v);
    if (!c) fail(g_, n, std::string(what) + " must be a constant");
    if (c->dtype != DType::Float32) fail(g_, n, std::string(what) + " must be float32");
    if (c->numel() != 1)
      fail(g_, n, std::string(what) + " must be a scalar, has " + std::to_string(c->numel()) + " values");
    const float s = c->data<float>()[0];
    if (!(s > 0.f) || !std::isfinite(s))
      fail(g_, n, std::string(what) + " must be finite and > 0, is " + std::to_string(s));
    return s;
  }
  // A per-tensor activation zero point, uint8 or int8 (shifted into the uint8 domain).
  int32_t zero_point_of(const Node& n, int v, const char* what) const {
    if (v == kNoValue) return 0;  // omitted: uint8 zero
    const ConstTensor* c = constant(v);
    if (!c) fail(g_, n, std::string(what) + " must be a constant");
    if (c->numel() != 1) fail(g_, n, std::string(what) + " must be a scalar");
    if (c->dtype == DType::Uint8) return c->data<uint8_t>()[0];
    if (c->dtype == DType::Int8) return c->data<int8_t>()[0] + 128;
    fail(g_, n, std::string(what) + " must be uint8 or int8, is " + dtype_name(c->dtype));
  }
  QParams qparams(const Node& n, size_t scale_in, size_t zp_in, const char* what) const {
    return {scale_of(n, input(n, scale_in), (std::string(what) + " scale").c_str()),
            zero_point_of(n, input(n, zp_in), (std::string(what) + " zero point").c_str())};
  }

  // Gives uint8 value v its quantization, or checks it agrees with what it already has.
  void set_qparams(const Node& n, int v, QParams q) {
    Value& val = g_.values[v];
    if (val.dtype == DType::Uint8 && val.scale > 0.f) {
      if (val.scale != q.scale || val.zero_point != q.zero_point)
        fail(g_, n, "tensor '" + val.name + "' is used with two different quantizations");
      return;
    }
    val.dtype = DType::Uint8;
    val.scale = q.scale;
    val.zero_point = q.zero_point;
  }

  // Weights: int8 or uint8 constant with per-tensor or per-channel (along `axis`) scale and
  // zero point. Returns the centred int8 weights [channels along axis first] and the scales, or
  // false if w - z_w leaves the int8 range (then the node keeps its float form).
  bool centred_weights(const Node& n, int w_v, int s_v, int z_v, int64_t axis, std::vector<int8_t>& w,
                       std::vector<float>& scales) const {
    const ConstTensor* wt = constant(w_v);
    if (!wt || (wt->dtype != DType::Int8 && wt->dtype != DType::Uint8)) return false;
    if (axis < 0) axis += static_cast<int64_t>(wt->dims.size());
    if (axis < 0 || axis >= static_cast<int64_t>(wt->dims.size())) fail(g_, n, "weight quantization axis out of range");
    const int64_t C = wt->dims[axis];
    const ConstTensor* st = constant(s_v);
    if (!st || st->dtype != DType::Float32) fail(g_, n, "weight scale must be a float32 constant");
    if (st->numel() != 1 && st->numel() != C)
      fail(g_, n, "weight scale has " + std::to_string(st->numel()) + " values for " + std::to_string(C) + " channels");
    const ConstTensor* zt = constant(z_v);
    if (z_v != kNoValue && !zt) fail(g_, n, "weight zero point must be a constant");
    if (zt && zt->numel() != 1 && zt->numel() != C)
      fail(g_, n,
           "weight zero point has " + std::to_string(zt->numel()) + " values for " + std::to_string(C) + " channels");
    if (zt && zt->dtype != wt->dtype) fail(g_, n, "weight zero point type differs from the weights'");
    scales.resize(C);
    for (int64_t c = 0; c < C; ++c) {
      scales[c] = st->data<float>()[st->numel() == 1 ? 0 : c];
      if (!(scales[c] > 0.f) || !std::isfinite(scales[c]))
        fail(g_, n, "weight scale of channel " + std::to_string(c) + " must be finite and > 0");
    }
    // inner = product of dims after axis; outer = before.
    int64_t inner = 1, outer = 1;
    for (size_t d = 0; d < wt->dims.size(); ++d)
      (static_cast<int64_t>(d) < axis ? outer : inner) *= static_cast<int64_t>(d) == axis ? 1 : wt->dims[d];
    w.resize(static_cast<size_t>(wt->numel()));
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t src = (o * C + c) * inner + i;
          const int32_t z = zt ? static_cast<int32_t>(zt->as_int64(zt->numel() == 1 ? 0 : c)) : 0;
          const int32_t v = static_cast<int32_t>(wt->as_int64(src)) - z;
          if (v < -128 || v > 127) return false;
          w[src] = static_cast<int8_t>(v);
        }
    return true;
  }

  // Bias in the accumulator's scale s_in * s_w[c]: from int32 data with its own scale (QDQ
  // DequantizeLinear or QOperator, where the scale is s_in * s_w by definition) or from floats.
  ConstTensorPtr accumulator_bias(const Node& n, const ConstTensor* ints, float int_scale, int32_t int_zero,
                                  const ConstTensor* floats, float s_in, const std::vector<float>& s_w) const {
    auto t = std::make_shared<ConstTensor>();
    t->dtype = DType::Int32;
    t->dims = {static_cast<int64_t>(s_w.size())};
    t->bytes.resize(s_w.size() * 4);
    const ConstTensor* src = ints ? ints : floats;
    if (src->numel() != static_cast<int64_t>(s_w.size()) && src->numel() != 1)
      fail(g_, n,
           "bias has " + std::to_string(src->numel()) + " values for " + std::to_string(s_w.size()) + " channels");
    for (size_t c = 0; c < s_w.size(); ++c) {
      const int64_t i = src->numel() == 1 ? 0 : static_cast<int64_t>(c);
      const double acc_scale = static_cast<double>(s_in) * s_w[c];
      const double real = ints ? (src->as_double(i) - int_zero) * int_scale : src->as_double(i);
      double q = std::nearbyint(real / acc_scale);
      if (!std::isfinite(q)) fail(g_, n, "bias is not finite");
      q = std::min(std::max(q, -2147483648.0), 2147483647.0);
      t->mutable_data<int32_t>()[c] = static_cast<int32_t>(q);
    }
    return t;
  }

  int add_const(const std::string& name, ConstTensorPtr t) {
    Value v;
    v.name = name;
    v.dtype = t->dtype;
    v.shape = t->dims;
    v.has_shape = true;
    v.constant = std::move(t);
    return g_.add_value(std::move(v));
  }
  ConstTensorPtr int8_tensor(Shape dims, std::vector<int8_t> w) const {
    auto t = std::make_shared<ConstTensor>();
    t->dtype = DType::Int8;
    t->dims = std::move(dims);
    t->bytes.assign(reinterpret_cast<const uint8_t*>(w.data()), reinterpret_cast<const uint8_t*>(w.data()) + w.size());
    return t;
  }

  // QDQ helpers. The DequantizeLinear producing v from a uint8 activation, or -1.
  int dq_activation(int v) const {
    const int p = producer_[v];
    if (p < 0 || g_.nodes[p].op != Op::DequantizeLinear) return -1;
    const Node& dq = g_.nodes[p];
    const int x = dq.inputs[0];
    if (constant(x)) return -1;
    const ConstTensor* s = constant(input(dq, 1));
    if (!s || s->numel() != 1) return -1;
    return p;
  }
  // The DequantizeLinear producing v from a constant (weights or bias), or -1.
  int dq_constant(int v) const {
    const int p = v == kNoValue ? -1 : producer_[v];
    if (p < 0 || g_.nodes[p].op != Op::DequantizeLinear || !constant(g_.nodes[p].inputs[0])) return -1;
    return p;
  }
  // The live node that is the only reader of v's data (v not a graph output), or -1. Shape nodes
  // read only v's shape, which the uint8 value replacing v in a lowering has too: lowering moves
  // them to it (move_shape_readers), so they do not keep an op in fp32 (ShuffleNet reshapes the
  // result of each Concat by its own Shape).
  int sole_reader(int v) const { return readers_.sole_reader(g_, v, &dead_, true); }
  // The Shape nodes reading any of `from` read `to` instead (a lowered op's uint8 result).
  void move_shape_readers(const std::vector<int>& from, int to) {
    for (int v : from)
      for (int r : readers_.readers(g_, v, &dead_)) {
        if (g_.nodes[r].op != Op::Shape) continue;
        g_.nodes[r].inputs[0] = to;
        readers_.add(g_, r);
      }
  }
  // The per-tensor QuantizeLinear that is the only reader of v, or -1.
  int sole_quantize(int v) const {
    const int r = sole_reader(v);
    if (r < 0 || g_.nodes[r].op != Op::QuantizeLinear) return -1;
    const ConstTensor* s = constant(input(g_.nodes[r], 1));
    return s && s->numel() == 1 ? r : -1;
  }

  // Narrows [qmin, qmax] by a float Relu/Clip sitting between the op and its QuantizeLinear.
  static void clamp_range(const Node& act, QParams out, int64_t& qmin, int64_t& qmax) {
    float lo = 0.f, hi = std::numeric_limits<float>::infinity();
    if (act.op == Op::Clip) lo = act.attr_float("min", -INFINITY), hi = act.attr_float("max", INFINITY);
    if (std::isfinite(lo))
      qmin = std::max<int64_t>(qmin, std::llround(std::nearbyint(lo / out.scale)) + out.zero_point);
    if (std::isfinite(hi))
      qmax = std::min<int64_t>(qmax, std::llround(std::nearbyint(hi / out.scale)) + out.zero_point);
    qmin = std::min<int64_t>(std::max<int64_t>(qmin, 0), 255);
    qmax = std::min<int64_t>(std::max<int64_t>(qmax, qmin), 255);
  }

  // What surrounds an op in QDQ form: the DequantizeLinear of its activation input, the Relu/Clip
  // nodes after it and the QuantizeLinear of its result.
  struct QdqEdges {
    std::vector<int> acts;           // Relu/Clip nodes between the op and its QuantizeLinear
    int q = -1;                      // the QuantizeLinear
    QParams in, out;                 // the quantization of the op's input and of its result
    int x = kNoValue, y = kNoValue;  // the uint8 values the lowered op reads and writes
    int64_t qmin = 0, qmax = 255;    // the clamp of the Relu/Clip nodes, in output integers
    bool float_out = false;          // no QuantizeLinear: y is the op's float32 result
  };

  int matmul_bias_add(const Node& n) const;
  void lower_qoperator(size_t i);
  bool lower_qdq(size_t i);
  bool match_qdq(const Node& n, bool absorb_acts, QdqEdges& e) const;
  bool lower_qdq_add(Node& n, const QdqEdges& e);
  bool lower_qdq_concat(Node& n);
  bool lower_qdq_binary(Node& n, const QdqEdges& e);
  bool lower_qdq_weighted(Node& n, const QdqEdges& e);
  bool qdq_bias(const Node& n, const ConstTensor* wt, int64_t axis, const std::vector<float>& s_w, float s_in,
                ConstTensorPtr& bias) const;
  // n becomes `op` (QuantizedConv, QuantizedConvTranspose or QuantizedConvFloat), keeping its
  // geometry attributes; s_w: one scale per output channel. A QuantizedConvFloat's y is float32
  // (`out`, qmin and qmax unused).
  void make_conv(Node& n, Op op, int x, QParams in, QParams out, const std::vector<int8_t>& w, const Shape& wdims,
                 const std::vector<float>& s_w, ConstTensorPtr bias, int y, int64_t qmin, int64_t qmax);
  // With float_out, a QuantizedDenseFloat (y float32; `out`, qmin and qmax unused).
  void make_dense(Node& n, int a, QParams in, QParams out, std::vector<int8_t> w_nk, int64_t N, int64_t K,
                  std::vector<float> s_w, ConstTensorPtr bias, int y, int64_t qmin, int64_t qmax,
                  bool float_out = false);
  void sweep();
};

void Lowering::make_conv(Node& n, Op op, int x, QParams in, QParams out, const std::vector<int8_t>& w,
                         const Shape& wdims, const std::vector<float>& s_w, ConstTensorPtr bias, int y, int64_t qmin,
                         int64_t qmax) {
  std::map<std::string, Attribute> attrs;
  for (const char* k :
       {"strides", "pads", "dilations", "group", "kernel_shape", "auto_pad", "output_padding", "output_shape"})
    if (n.has_attr(k)) attrs[k] = n.attrs.at(k);
  const bool float_out = op == Op::QuantizedConvFloat;
  attrs["w_scale"] = floats_attr(s_w);
  if (!float_out) {
    attrs["qmin"] = int_attr(qmin);
    attrs["qmax"] = int_attr(qmax);
  }
  const int wv = add_const(n.name + "/weight_int8", int8_tensor(wdims, w));
  const int bv = bias ? add_const(n.name + "/bias_int32", bias) : kNoValue;
  set_qparams(n, x, in);
  if (!float_out) set_qparams(n, y, out);
  n.op = op;
  n.inputs = {x, wv, bv};
  n.outputs = {y};
  n.attrs = std::move(attrs);
}

void Lowering::make_dense(Node& n, int a, QParams in, QParams out, std::vector<int8_t> w_nk, int64_t N, int64_t K,
                          std::vector<float> s_w, ConstTensorPtr bias, int y, int64_t qmin, int64_t qmax,
                          bool float_out) {
  if (s_w.size() == 1) s_w.assign(static_cast<size_t>(N), s_w[0]);
  std::map<std::string, Attribute> attrs;
  attrs["w_scale"] = floats_attr(s_w);
  if (!float_out) {
    attrs["qmin"] = int_attr(qmin);
    attrs["qmax"] = int_attr(qmax);
  }
  const int wv = add_const(n.name + "/weight_int8", int8_tensor({N, K}, std::move(w_nk)));
  const int bv = bias ? add_const(n.name + "/bias_int32", bias) : kNoValue;
  set_qparams(n, a, in);
  if (!float_out) set_qparams(n, y, out);
  n.op = float_out ? Op::QuantizedDenseFloat : Op::QuantizedDense;
  n.inputs = {a, wv, bv};
  n.outputs = {y};
  n.attrs = std::move(attrs);
}

// Why the float-result GEMM (QuantizedConvFloat: NHWC pixels times [K][C] weights) cannot run Conv
// n with weights `wdims`, or "" when it can: a 1x1 kernel, stride 1, no padding, one group (a
// dilation does nothing to a 1x1 kernel; auto_pad adds no padding at 1x1 stride 1).
static std::string float_result_conv_refusal(const Node& n, const Shape& wdims) {
  std::vector<std::string> not_;
  if (wdims[2] != 1 || wdims[3] != 1) not_.push_back(std::to_string(wdims[2]) + "x" + std::to_string(wdims[3]));
  for (int64_t s : n.attr_ints("strides"))
    if (s != 1) {
      not_.push_back("strided");
      break;
    }
  for (int64_t p : n.attr_ints("pads"))
    if (p != 0) {
      not_.push_back("padded");
      break;
    }
  if (n.attr_int("group", 1) != 1) not_.push_back("grouped");
  if (not_.empty()) return "";
  std::string what;
  for (const std::string& w : not_) what += (what.empty() ? "" : ", ") + w;
  return "a " + what + " Conv with a float result; int8 takes 1x1, stride-1, unpadded, ungrouped ones";
}

// Transposes weights stored [K][N] (per-channel along axis 1) into [N][K].
static std::vector<int8_t> transpose_kn(const std::vector<int8_t>& w, int64_t K, int64_t N) {
  std::vector<int8_t> r(w.size());
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) r[n * K + k] = w[k * N + n];
  return r;
}

void Lowering::lower_qoperator(size_t i) {
  Node& n = g_.nodes[i];
  switch (n.op) {
    case Op::QLinearConv: {
      const QParams in = qparams(n, 1, 2, "x"), out = qparams(n, 6, 7, "y");
      std::vector<int8_t> w;
      std::vector<float> s_w;
      const ConstTensor* wt = constant(n.inputs[3]);
      if (!wt || wt->dims.size() != 4) fail(g_, n, "weights must be a constant 4-D tensor");
      if (!centred_weights(n, n.inputs[3], n.inputs[4], input(n, 5), 0, w, s_w))
        fail(g_, n, "weights minus their zero point do not fit int8; q8 cannot run this node");
      ConstTensorPtr bias;
      if (const ConstTensor* b = constant(input(n, 8))) {
        if (b->dtype != DType::Int32) fail(g_, n, "bias must be int32");
        std::vector<float> acc_scales(s_w.size());
        bias = accumulator_bias(n, b, 1.f, 0, nullptr, 1.f, std::vector<float>(s_w.size(), 1.f));
      } else if (input(n, 8) != kNoValue) {
        fail(g_, n, "bias must be a constant");
      }
      make_conv(n, Op::QuantizedConv, n.inputs[0], in, out, w, wt->dims, s_w, bias, n.outputs[0], 0, 255);
      break;
    }
    case Op::QLinearMatMul:
    case Op::QGemm: {
      const bool gemm = n.op == Op::QGemm;
      const QParams in = qparams(n, 1, 2, "a");
      const bool float_out = gemm && input(n, 7) == kNoValue;  // QGemm without y_scale: a float result
      const QParams out = float_out ? QParams{} : gemm ? qparams(n, 7, 8, "y") : qparams(n, 6, 7, "y");
      if (gemm && n.attr_int("transA", 0) != 0) fail(g_, n, "transA=1 is not supported");
      const bool tb = gemm && n.attr_int("transB", 0) != 0;
      const ConstTensor* bt = constant(n.inputs[3]);
      if (!bt || bt->dims.size() != 2) fail(g_, n, "B must be a constant matrix");
      const int64_t K = tb ? bt->dims[1] : bt->dims[0], N = tb ? bt->dims[0] : bt->dims[1];
      std::vector<int8_t> w;
      std::vector<float> s_w;
      if (!centred_weights(n, n.inputs[3], n.inputs[4], n.inputs[5], tb ? 0 : 1, w, s_w))
        fail(g_, n, "B minus its zero point does not fit int8; q8 cannot run this node");
      if (!tb) w = transpose_kn(w, K, N);
      if (s_w.size() == 1) s_w.assign(static_cast<size_t>(N), s_w[0]);
      ConstTensorPtr bias;
      if (gemm && input(n, 6) != kNoValue) {
        const ConstTensor* c = constant(n.inputs[6]);
        if (!c || c->dtype != DType::Int32) fail(g_, n, "C must be a constant int32 tensor");
        bias = accumulator_bias(n, c, 1.f, 0, nullptr, 1.f, std::vector<float>(s_w.size(), 1.f));
      }
      // alpha scales the product: fold it into the weight scales (so into M).
      const float alpha = gemm ? n.attr_float("alpha", 1.f) : 1.f;
      if (!(alpha > 0.f) || !std::isfinite(alpha)) fail(g_, n, "alpha must be finite and > 0");
      if (alpha != 1.f) {
        if (bias) fail(g_, n, "alpha != 1 with a bias is not supported");
        for (float& s : s_w) s *= alpha;
      }
      make_dense(n, n.inputs[0], in, out, std::move(w), N, K, std::move(s_w), bias, n.outputs[0], 0, 255, float_out);
      break;
    }
    case Op::QLinearAdd: {
      const QParams a = qparams(n, 1, 2, "A"), b = qparams(n, 4, 5, "B"), c = qparams(n, 6, 7, "C");
      set_qparams(n, n.inputs[0], a);
      set_qparams(n, n.inputs[3], b);
      set_qparams(n, n.outputs[0], c);
      n.op = Op::QuantizedAdd;
      n.inputs = {n.inputs[0], n.inputs[3]};
      n.attrs = {{"qmin", int_attr(0)}, {"qmax", int_attr(255)}};
      break;
    }
    case Op::QLinearGlobalAveragePool: {
      if (n.attr_int("channels_last", 0) != 0) fail(g_, n, "channels_last=1 is not supported");
      set_qparams(n, n.inputs[0], qparams(n, 1, 2, "x"));
      set_qparams(n, n.outputs[0], qparams(n, 3, 4, "y"));
      n.op = Op::GlobalAveragePool;
      n.inputs = {n.inputs[0]};
      n.attrs.clear();
      break;
    }
    case Op::QLinearSigmoid:
    case Op::QLinearLeakyRelu: {
      // The float op on uint8 tensors: a 256-entry table (runtime/ops/unary.cpp).
      set_qparams(n, n.inputs[0], qparams(n, 1, 2, "X"));
      set_qparams(n, n.outputs[0], qparams(n, 3, 4, "Y"));
      n.op = n.op == Op::QLinearSigmoid ? Op::Sigmoid : Op::LeakyRelu;
      n.inputs = {n.inputs[0]};
      break;
    }
    case Op::Conv:
    case Op::Relu:
    case Op::Clip:
    case Op::MaxPool:
    case Op::AveragePool:
    case Op::GlobalAveragePool:
    case Op::Flatten:
    case Op::Gemm:
    case Op::MatMul:
    case Op::Add:
    case Op::BatchNormalization:
    case Op::Identity:
    case Op::Dropout:
    case Op::Constant:
    case Op::Reshape:
    case Op::Pad:
    case Op::QuantizeLinear:
    case Op::DequantizeLinear:
    case Op::QuantizedConv:
    case Op::QuantizedDense:
    case Op::QuantizedAdd:
    case Op::Concat:
    case Op::Shape:
    case Op::Gather:
    case Op::Cast:
    case Op::ConstantOfShape:
    case Op::Unsqueeze:
    case Op::Squeeze:
    case Op::Slice:
    case Op::Transpose:
    case Op::Resize:
    case Op::ConvTranspose:
    case Op::Mul:
    case Op::Sub:
    case Op::Div:
    case Op::Pow:
    case Op::ReduceMean:
    case Op::Softmax:
    case Op::LogSoftmax:
    case Op::LayerNormalization:
    case Op::QuantizedMul:
    case Op::Sigmoid:
    case Op::Tanh:
    case Op::HardSigmoid:
    case Op::HardSwish:
    case Op::LeakyRelu:
    case Op::Elu:
    case Op::Erf:
    case Op::Sqrt:
    case Op::Exp:
    case Op::Silu:
    case Op::QuantizedDenseFloat:
    case Op::QuantizedConvTranspose:
    case Op::QuantizedConvFloat:
    case Op::ChannelShuffle:
    case Op::Gelu: fail(g_, n, "internal: lower_qoperator called on an op of another role");
    case Op::QLinearConcat:
    case Op::QLinearMul:
    case Op::QLinearAveragePool: fail(g_, n, "internal: expand_qoperator_to_qdq rewrites this op");
  }
}

bool Lowering::lower_qdq(size_t i) {
  Node& n = g_.nodes[i];
  const bool weighted = n.op == Op::Conv || n.op == Op::Gemm || n.op == Op::MatMul || n.op == Op::ConvTranspose;
  // Pad passes uint8 through when it pads with zero, which the zero point represents exactly.
  const bool zero_pad =
      n.op == Op::Pad && n.attr_string("mode", "constant") == "constant" &&
      (n.inputs.size() < 3 || n.inputs[2] == kNoValue ||
       (constant(n.inputs[2]) && constant(n.inputs[2])->numel() == 1 && constant(n.inputs[2])->as_double(0) == 0.0));
  // Nearest Resize copies bytes, so it commutes with quantization like MaxPool; linear does not.
  const bool nearest_resize = n.op == Op::Resize && n.attr_string("mode", "nearest") == "nearest";
  const bool passthrough = op_traits(n.op).int8 == Int8Role::PassThrough && (n.op != Op::Pad || zero_pad) &&
                           (n.op != Op::Resize || nearest_resize);
  // A ReduceMean runs in int8 as a global average pool, so its axes must be H and W. Shapes are
  // not known here: axes 2,3 or -2,-1 are those of a 4-D tensor, which shape inference checks.
  const std::vector<int64_t> axes =
      n.op == Op::ReduceMean && input(n, 1) == kNoValue ? n.attr_ints("axes") : std::vector<int64_t>{};
  const bool spatial_mean = axes.size() == 2 && std::min(axes[0], axes[1]) == (axes[0] < 0 ? -2 : 2) &&
                            std::max(axes[0], axes[1]) == (axes[0] < 0 ? -1 : 3) && (axes[0] < 0) == (axes[1] < 0);
  const bool pool = n.op == Op::AveragePool || n.op == Op::GlobalAveragePool || spatial_mean;
  if (n.op == Op::Concat) return lower_qdq_concat(n);
  const bool binary = n.op == Op::Add || n.op == Op::Mul;  // two quantized activations
  const bool lookup = op_traits(n.op).int8 == Int8Role::TableLookup;
  if (!weighted && !passthrough && !pool && !binary && !lookup) return false;
  // A MatMul's bias Add (a Linear on a rank > 2 input) becomes the integer op's bias: the MatMul
  // takes it as a third input, as Gemm has one.
  const int bias_add = n.op == Op::MatMul ? matmul_bias_add(n) : -1;
  if (bias_add >= 0) {
    const Node& a = g_.nodes[bias_add];
    const int result = n.outputs[0];
    n.inputs.push_back(a.inputs[0] == result ? a.inputs[1] : a.inputs[0]);
    n.outputs[0] = a.outputs[0];
    if (lower_qdq(i)) {  // once: a MatMul with three inputs has no bias Add to take
      kill(bias_add);
      move_shape_readers({result}, g_.nodes[i].outputs[0]);
      return true;
    }
    Node& m = g_.nodes[i];
    m.inputs.pop_back();
    m.outputs[0] = result;
  }
  QdqEdges e;
  if (!match_qdq(n, weighted || binary || lookup, e)) {
    // A Gemm, MatMul or 1x1 Conv whose result stays float (the classifier ending a network, the
    // output Conv of a UNet or detection head) still multiplies in int8: dequantizing its int32
    // sums is exact in the accumulator's scale.
    if (!weighted || n.op == Op::ConvTranspose) return false;
    const int dqa = dq_activation(n.inputs[0]);
    if (dqa < 0) return false;
    e.in = qparams(g_.nodes[dqa], 1, 2, "x");
    e.x = g_.nodes[dqa].inputs[0];
    e.y = n.outputs[0];
    e.float_out = true;
    return lower_qdq_weighted(n, e);
  }
  std::vector<int> replaced = {n.outputs[0]};  // the fp32 values the uint8 result e.y replaces
  for (int act : e.acts) replaced.push_back(g_.nodes[act].outputs[0]);

  if (passthrough) {
    // Max pooling and reshapes commute with quantization only when both sides share it.
    if (e.in.scale != e.out.scale || e.in.zero_point != e.out.zero_point) return false;
    set_qparams(n, e.x, e.in);
    set_qparams(n, e.y, e.out);
    n.inputs[0] = e.x;
    n.outputs[0] = e.y;
  } else if (pool) {
    set_qparams(n, e.x, e.in);
    set_qparams(n, e.y, e.out);
    n.inputs[0] = e.x;
    n.outputs[0] = e.y;
  } else if (binary) {
    if (!lower_qdq_binary(n, e)) return false;
  } else if (lookup) {
    // The op keeps its name and runs on uint8 as a 256-entry table (runtime/ops/unary.cpp), a
    // following Relu/Clip folded into the table's output range.
    set_qparams(n, e.x, e.in);
    set_qparams(n, e.y, e.out);
    n.inputs[0] = e.x;
    n.outputs[0] = e.y;
    n.attrs["qmin"] = int_attr(e.qmin);
    n.attrs["qmax"] = int_attr(e.qmax);
  } else {
    if (!lower_qdq_weighted(n, e)) return false;
  }
  kill(e.q);
  for (int act : e.acts) kill(act);
  move_shape_readers(replaced, e.y);
  return true;
}

// Finds the DequantizeLinear before node n and the QuantizeLinear after it (past Relu/Clip
// nodes when absorb_acts), or returns false.
bool Lowering::match_qdq(const Node& n, bool absorb_acts, QdqEdges& e) const {
  const int dqa = dq_activation(n.inputs[0]);
  if (dqa < 0) return false;
  // The op's output may pass through Relu/Clip nodes before its QuantizeLinear.
  int out_v = n.outputs[0];
  if (absorb_acts)
    for (int r = sole_reader(out_v);
         r >= 0 && (g_.nodes[r].op == Op::Relu || (g_.nodes[r].op == Op::Clip && g_.nodes[r].inputs.size() == 1));
         r = sole_reader(out_v)) {
      e.acts.push_back(r);
      out_v = g_.nodes[r].outputs[0];
    }
  e.q = sole_quantize(out_v);
  if (e.q < 0) return false;
  const Node& qn = g_.nodes[e.q];
  if (qn.has_attr("axis") && constant(input(qn, 1))->numel() != 1) return false;
  e.in = qparams(g_.nodes[dqa], 1, 2, "x");
  e.out = qparams(qn, 1, 2, "y");
  e.x = g_.nodes[dqa].inputs[0];
  e.y = qn.outputs[0];
  for (int act : e.acts) clamp_range(g_.nodes[act], e.out, e.qmin, e.qmax);
  return true;
}

// The Add after MatMul n that adds a constant (or dequantized constant) bias of one value per
// output column, broadcast along the last axis, or -1.
int Lowering::matmul_bias_add(const Node& n) const {
  const int dqw = dq_constant(n.inputs[1]);
  if (n.inputs.size() != 2 || dqw < 0) return -1;
  const ConstTensor* wt = constant(g_.nodes[dqw].inputs[0]);
  const int r = sole_reader(n.outputs[0]);
  if (wt->dims.size() != 2 || r < 0 || g_.nodes[r].op != Op::Add) return -1;
  const Node& add = g_.nodes[r];
  const int bv = add.inputs[0] == n.outputs[0] ? add.inputs[1] : add.inputs[0];
  const int dqb = dq_constant(bv);
  const ConstTensor* b = constant(dqb >= 0 ? g_.nodes[dqb].inputs[0] : bv);
  if (!b || (dqb < 0 && b->dtype != DType::Float32)) return -1;
  return ir::is_column_term(wt->dims[1], b->dims) ? r : -1;
}

bool Lowering::lower_qdq_binary(Node& n, const QdqEdges& e) {
  const int dqb = dq_activation(n.inputs[1]);
  if (dqb < 0) return false;
  // QuantizedAdd takes equal shapes; QuantizedMul also a per-channel term (squeeze-excitation).
  const ir::Value &va = g_.values[n.inputs[0]], &vb = g_.values[n.inputs[1]];
  if (va.has_shape && vb.has_shape && va.shape != vb.shape &&
      (n.op == Op::Add ||
       !(ir::is_per_channel_term(va.shape, vb.shape) || ir::is_per_channel_term(vb.shape, va.shape))))
    return false;
  const QParams bq = qparams(g_.nodes[dqb], 1, 2, "b");
  set_qparams(n, e.x, e.in);
  set_qparams(n, g_.nodes[dqb].inputs[0], bq);
  set_qparams(n, e.y, e.out);
  n.op = n.op == Op::Add ? Op::QuantizedAdd : Op::QuantizedMul;
  n.inputs = {e.x, g_.nodes[dqb].inputs[0]};
  n.outputs = {e.y};
  n.attrs = {{"qmin", int_attr(e.qmin)}, {"qmax", int_attr(e.qmax)}};
  return true;
}

// A Concat whose inputs are all dequantized, and whose result is quantized, like the result,
// joins the uint8 tensors: a copy of bytes.
bool Lowering::lower_qdq_concat(Node& n) {
  const int q = sole_quantize(n.outputs[0]);
  if (q < 0) return false;
  const QParams out = qparams(g_.nodes[q], 1, 2, "y");
  std::vector<int> dqs;
  for (int v : n.inputs) {
    const int dq = dq_activation(v);
    if (dq < 0) return false;
    const QParams in = qparams(g_.nodes[dq], 1, 2, "x");
    if (in.scale != out.scale || in.zero_point != out.zero_point) return false;
    dqs.push_back(dq);
  }
  for (int i = 0; i < static_cast<int>(dqs.size()); ++i) {
    const Node& dq = g_.nodes[dqs[i]];
    set_qparams(n, dq.inputs[0], qparams(dq, 1, 2, "x"));
    n.inputs[i] = dq.inputs[0];
  }
  set_qparams(n, g_.nodes[q].outputs[0], out);
  const int replaced = n.outputs[0];
  n.outputs[0] = g_.nodes[q].outputs[0];
  kill(q);
  move_shape_readers({replaced}, n.outputs[0]);
  return true;
}

bool Lowering::lower_qdq_weighted(Node& n, const QdqEdges& e) {
  const int dqw = dq_constant(n.inputs[1]);
  if (dqw < 0) return false;
  const Node& wn = g_.nodes[dqw];
  const ConstTensor* wt = constant(wn.inputs[0]);
  const bool tb = n.op == Op::Gemm && n.attr_int("transB", 0) != 0;
  if (n.op == Op::Gemm && n.attr_int("transA", 0) != 0) return false;
  const bool spatial = n.op == Op::Conv || n.op == Op::ConvTranspose;
  if (spatial && wt->dims.size() != 4) return false;
  if (n.op == Op::Conv && e.float_out) {
    // Said by `q8 info` and `q8 quantize` for the Conv that stays fp32.
    const std::string why = float_result_conv_refusal(n, wt->dims);
    if (!why.empty()) {
      n.attrs["fp32_reason"] = string_attr(why);
      return false;
    }
  }
  if (n.op == Op::ConvTranspose && !conv_transpose_phase_strides(n)) return false;
  if (!spatial && wt->dims.size() != 2) return false;
  // The output channel's axis: ConvTranspose's weights are [C][K/group][KH][KW].
  const int64_t axis = n.op == Op::Conv || tb ? 0 : 1;
  const ConstTensor* ws = constant(input(wn, 1));
  if (ws && ws->numel() != 1 && wn.attr_int("axis", 1) != axis &&
      wn.attr_int("axis", 1) != axis - static_cast<int64_t>(wt->dims.size()))
    return false;  // per-channel along an axis that is not the output channel
  std::vector<int8_t> w;
  std::vector<float> s_w;
  if (!centred_weights(wn, wn.inputs[0], input(wn, 1), input(wn, 2), axis, w, s_w)) return false;
  if (n.op == Op::ConvTranspose) {
    // One scale per output channel grp * Kg + kk: index kk's along axis 1, shared by the groups.
    const size_t Kg = static_cast<size_t>(wt->dims[1]), K = Kg * static_cast<size_t>(n.attr_int("group", 1));
    std::vector<float> s_k(K);
    for (size_t c = 0; c < K; ++c) s_k[c] = s_w[s_w.size() == 1 ? 0 : c % Kg];
    s_w = std::move(s_k);
  }
  ConstTensorPtr bias;
  if (!qdq_bias(n, wt, axis, s_w, e.in.scale, bias)) return false;
  if (n.op == Op::ConvTranspose) {
    make_conv(n, Op::QuantizedConvTranspose, e.x, e.in, e.out, w, wt->dims, s_w, bias, e.y, e.qmin, e.qmax);
  } else if (n.op == Op::Conv) {
    make_conv(n, e.float_out ? Op::QuantizedConvFloat : Op::QuantizedConv, e.x, e.in, e.out, w, wt->dims,
              s_w.size() == 1 ? std::vector<float>(wt->dims[0], s_w[0]) : s_w, bias, e.y, e.qmin, e.qmax);
  } else {
    const int64_t K = tb ? wt->dims[1] : wt->dims[0], N = tb ? wt->dims[0] : wt->dims[1];
    if (!tb) w = transpose_kn(w, K, N);
    const float alpha = n.op == Op::Gemm ? n.attr_float("alpha", 1.f) : 1.f;
    if (alpha != 1.f) return false;
    make_dense(n, e.x, e.in, e.out, std::move(w), N, K, std::move(s_w), bias, e.y, e.qmin, e.qmax, e.float_out);
  }
  return true;
}

// The bias of weighted node n (weights wt, output channels along `axis`, scales s_w) in the
// accumulator's scale, left empty when n has none; false if it cannot be lowered.
bool Lowering::qdq_bias(const Node& n, const ConstTensor* wt, int64_t axis, const std::vector<float>& s_w, float s_in,
                        ConstTensorPtr& bias) const {
  const int bias_in = input(n, 2);
  if (bias_in == kNoValue) return true;
  const int K = static_cast<int>(n.op == Op::ConvTranspose ? s_w.size() : axis == 0 ? wt->dims[0] : wt->dims[1]);
  std::vector<float> sw = s_w.size() == 1 ? std::vector<float>(K, s_w[0]) : s_w;
  if (n.op == Op::Gemm && n.attr_float("beta", 1.f) != 1.f) return false;
  // One bias per output channel or one for all; any other C (a Gemm's [M,N]) stays fp32.
  const int dq_bias = dq_constant(bias_in);
  const ConstTensor* raw = constant(dq_bias >= 0 ? g_.nodes[dq_bias].inputs[0] : bias_in);
  if (raw && raw->numel() != K && raw->numel() != 1) return false;
  if (dq_bias >= 0) {
    const Node& bn = g_.nodes[dq_bias];
    const ConstTensor* bs = constant(input(bn, 1));
    if (!bs || bs->numel() != 1) {
      // Per-channel bias scales: convert through real values channel by channel.
      auto t = std::make_shared<ConstTensor>();
      t->dtype = DType::Float32;
      t->dims = {static_cast<int64_t>(sw.size())};
      t->bytes.resize(sw.size() * 4);
      const ConstTensor* bz = constant(input(bn, 2));
      const ConstTensor* bi = constant(bn.inputs[0]);
      if (!bs || !bi || bi->numel() != static_cast<int64_t>(sw.size()) || bs->numel() != bi->numel()) return false;
      if (bz && bz->numel() != 1 && bz->numel() != bs->numel())
        fail(g_, bn,
             "bias zero point has " + std::to_string(bz->numel()) + " values for " + std::to_string(bs->numel()) +
                 " scales");
      for (size_t c = 0; c < sw.size(); ++c)
        t->mutable_data<float>()[c] = static_cast<float>(
            (bi->as_double(c) - (bz ? bz->as_double(bz->numel() == 1 ? 0 : c) : 0)) * bs->as_double(c));
      bias = accumulator_bias(n, nullptr, 0.f, 0, t.get(), s_in, sw);
    } else {
      const ConstTensor* bz = constant(input(bn, 2));
      if (bz && bz->numel() != 1)
        fail(g_, bn, "bias zero point has " + std::to_string(bz->numel()) + " values for one scale");
      bias = accumulator_bias(n, constant(bn.inputs[0]), static_cast<float>(bs->as_double(0)),
                              bz ? static_cast<int32_t>(bz->as_int64(0)) : 0, nullptr, s_in, sw);
    }
  } else if (const ConstTensor* bf = constant(bias_in); bf && bf->dtype == DType::Float32) {
    bias = accumulator_bias(n, nullptr, 0.f, 0, bf, s_in, sw);
  } else {
    return false;
  }
  return true;
}

// Drops nodes whose outputs nobody reads (the DequantizeLinear nodes the lowering consumed), and
// then the nodes only those fed: reader counts drop as nodes die, so each node is seen once or
// twice.
void Lowering::sweep() {
  std::vector<int> readers(g_.values.size(), 0);
  for (size_t i = 0; i < g_.nodes.size(); ++i)
    if (!dead_[i])
      for (int v : g_.nodes[i].inputs)
        if (v != kNoValue) ++readers[v];
  for (int v : g_.outputs) ++readers[v];
  index_producers();
  auto unused = [&](int n) {
    for (int o : g_.nodes[n].outputs)
      if (readers[o] > 0) return false;
    return true;
  };
  std::vector<int> work;
  for (size_t i = 0; i < g_.nodes.size(); ++i)
    if (!dead_[i] && unused(static_cast<int>(i))) work.push_back(static_cast<int>(i));
  while (!work.empty()) {
    const int n = work.back();
    work.pop_back();
    if (dead_[n]) continue;
    dead_[n] = true;
    for (int v : g_.nodes[n].inputs) {
      if (v == kNoValue || --readers[v] > 0) continue;
      const int p = producer_[v];
      if (p >= 0 && !dead_[p] && unused(p)) work.push_back(p);
    }
  }
}

void Lowering::run() {
  index_producers();
  for (size_t i = 0; i < g_.nodes.size(); ++i) {
    if (dead_[i]) continue;
    Node& n = g_.nodes[i];
    switch (op_traits(n.op).int8) {
      case Int8Role::QuantizedFormat: lower_qoperator(i); break;
      case Int8Role::Quantize: {
        const ConstTensor* s = constant(input(n, 1));
        if (s && s->numel() == 1)
          set_qparams(n, n.outputs[0], qparams(n, 1, 2, "y"));
        else
          fail(g_, n, "per-axis quantization of activations is not supported");
        break;
      }
      case Int8Role::Dequantize: {
        if (constant(n.inputs[0])) break;  // weights and biases: consumed below or folded
        const ConstTensor* s = constant(input(n, 1));
        if (!s || s->numel() != 1) fail(g_, n, "per-axis dequantization of activations is not supported");
        set_qparams(n, n.inputs[0], qparams(n, 1, 2, "x"));
        break;
      }
      case Int8Role::PassThrough: {
        // QOperator files run these directly on uint8 tensors: the output shares the quantization.
        const Value& x = g_.values[n.inputs[0]];
        if (x.dtype == DType::Uint8 && x.scale > 0.f) {
          set_qparams(n, n.outputs[0], {x.scale, x.zero_point});
          break;
        }
        lower_qdq(i);
        break;
      }
      case Int8Role::Weighted:
      case Int8Role::Requantizing:
      case Int8Role::TableLookup:
      case Int8Role::Clamp:
      case Int8Role::Integer:
      case Int8Role::ShapeOnly:
      case Int8Role::Fp32Only: lower_qdq(i); break;
    }
    record(i);
  }
  sweep();
  g_.compact(dead_);
}

// DequantizeLinear of constants still feeding float ops (weights of a node that kept its float
// form) becomes a float constant: y = (x - z) * s, per tensor or along `axis`.
void fold_dequantized_constants(Graph& g) {
  std::vector<bool> dead(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    if (n.op != Op::DequantizeLinear) continue;
    const ConstTensor* x = g.values[n.inputs[0]].constant.get();
    const ConstTensor* s = g.values[n.inputs.at(1)].constant.get();
    const ConstTensor* z =
        n.inputs.size() > 2 && n.inputs[2] != kNoValue ? g.values[n.inputs[2]].constant.get() : nullptr;
    if (!x || !s || (n.inputs.size() > 2 && n.inputs[2] != kNoValue && !z)) continue;
    if (s->dtype != DType::Float32) fail(g, n, "scale must be float32");
    int64_t axis = n.attr_int("axis", 1);
    const int64_t r = static_cast<int64_t>(x->dims.size());
    if (axis < 0) axis += r;
    int64_t C = 1, inner = 1;
    if (s->numel() != 1) {
      if (axis < 0 || axis >= r) fail(g, n, "axis out of range");
      C = x->dims[axis];
      if (s->numel() != C || (z && z->numel() != C))
        fail(g, n,
             "scale has " + std::to_string(s->numel()) + " values for " + std::to_string(C) + " channels along axis " +
                 std::to_string(axis));
      for (int64_t d = axis + 1; d < r; ++d) inner *= x->dims[d];
    } else if (z && z->numel() != 1) {
      fail(g, n, "zero point length does not match the scale's");
    }
    auto t = std::make_shared<ConstTensor>();
    t->dtype = DType::Float32;
    t->dims = x->dims;
    t->bytes.resize(static_cast<size_t>(x->numel()) * 4);
    for (int64_t e = 0; e < x->numel(); ++e) {
      const int64_t c = s->numel() == 1 ? 0 : (e / inner) % C;
      const float sc = s->data<float>()[c];
      if (!(sc > 0.f) || !std::isfinite(sc)) fail(g, n, "scale must be finite and > 0");
      const double zp = z ? z->as_double(z->numel() == 1 ? 0 : c) : 0.0;
      t->mutable_data<float>()[e] = static_cast<float>((x->as_double(e) - zp) * sc);
    }
    Value& out = g.values[n.outputs[0]];
    out.constant = t;
    out.dtype = DType::Float32;
    out.shape = t->dims;
    out.has_shape = true;
    dead[i] = true;
  }
  g.compact(dead);
}

// com.microsoft's QLinearConcat, QLinearMul and QLinearAveragePool compute what their QDQ forms
// compute: every uint8 input dequantized, the float op, its result quantized. They are rewritten as
// that form here, and the QDQ lowering decides how each runs: an int8 Concat when every input
// shares the output's quantization (else the float Concat between a DequantizeLinear per input and
// a QuantizeLinear), a QuantizedMul, the int8 AveragePool. One lowering serves both forms.
void expand_qoperator_to_qdq(Graph& g) {
  std::vector<Node> nodes;
  nodes.reserve(g.nodes.size());
  auto float_value = [&g](const std::string& base) {
    Value v;
    v.name = g.unused_value_name(base);
    v.dtype = DType::Float32;
    return g.add_value(std::move(v));
  };
  for (Node& n : g.nodes) {
    if (n.op != Op::QLinearConcat && n.op != Op::QLinearMul && n.op != Op::QLinearAveragePool) {
      nodes.push_back(std::move(n));
      continue;
    }
    auto in = [&n](size_t k) { return k < n.inputs.size() ? n.inputs[k] : kNoValue; };
    // The (x, scale, zero point) of each input, and where the output's scale and zero point are.
    std::vector<size_t> firsts;
    size_t y_at = 0;
    Node f;
    f.name = n.name;
    f.attrs = n.attrs;
    if (n.op == Op::QLinearConcat) {
      if ((n.inputs.size() - 2) % 3 != 0)
        fail(g, n, "expects Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) per input");
      for (size_t k = 2; k < n.inputs.size(); k += 3) firsts.push_back(k);
      f.op = Op::Concat;
    } else if (n.op == Op::QLinearMul) {
      firsts = {0, 3};
      y_at = 6;
      f.op = Op::Mul;
    } else {
      if (n.attr_int("channels_last", 0) != 0) fail(g, n, "channels_last=1 is not supported");
      f.attrs.erase("channels_last");
      firsts = {0};
      y_at = 3;
      f.op = Op::AveragePool;
    }
    for (size_t k : firsts) {
      const int x = in(k);
      if (x == kNoValue || in(k + 1) == kNoValue) fail(g, n, "every input needs its tensor and scale");
      Node dq;
      dq.op = Op::DequantizeLinear;
      dq.name = n.name + "/dequantize_" + std::to_string(f.inputs.size());
      dq.inputs = {x, in(k + 1), in(k + 2)};
      dq.outputs = {float_value(g.values[x].name + "/dequantized")};
      f.inputs.push_back(dq.outputs[0]);
      nodes.push_back(std::move(dq));
    }
    if (in(y_at) == kNoValue) fail(g, n, "the output's scale is missing");
    const int y = n.outputs.at(0);
    f.outputs = {float_value(g.values[y].name + "/float")};
    Node q;
    q.op = Op::QuantizeLinear;
    q.name = n.name + "/quantize";
    q.inputs = {f.outputs[0], in(y_at), in(y_at + 1)};
    q.outputs = {y};
    nodes.push_back(std::move(f));
    nodes.push_back(std::move(q));
  }
  g.nodes = std::move(nodes);
}

}  // namespace

void lower_quantized(Graph& g) {
  bool any = false;
  for (const Node& n : g.nodes) {
    const Int8Role r = op_traits(n.op).int8;
    any |= r == Int8Role::Quantize || r == Int8Role::Dequantize || r == Int8Role::QuantizedFormat ||
           r == Int8Role::Integer;
  }
  if (!any) return;
  expand_qoperator_to_qdq(g);
  Lowering(g).run();
  fold_dequantized_constants(g);
}

}  // namespace q8::ir
