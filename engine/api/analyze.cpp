// q8::analyze: measures, node by node, what int8 costs in precision and what it saves in time.
//
// Method
//   The model is quantized once with the caller's options (q8::quantize). Then, per analysed
//   sample (batch 1):
//   - one "shadow" graph runs: the fp32 graph plus, for every node the quantizer runs in int8, a
//     copy of that node in its QDQ form (int8 weights, int32 bias) reading the fp32 network's
//     values (a graph input is read through its QuantizeLinear/DequantizeLinear, which belongs
//     to no other node); its result is then quantized with the scale and zero point the int8
//     model gives it. Against the fp32 result this is the node's own error ("sqnr_db"): each
//     quantization is counted once, at the node that introduces it.
//   - the int8 model runs with every row's result as an extra output: against the fp32 result
//     this is the error accumulated through the network ("sqnr_cumulative_db").
//   SQNR = 10 log10(sum x^2 / sum (x - y)^2) over all analysed samples, capped to [-99, 99] dB.
//   Times are Session::profile medians of both models at batch 1 on the first sample.
//
// Advice, first rule that applies (thresholds below, as constants):
//   own SQNR < min_sqnr_db (default 20 dB):
//     - weights per tensor and one output channel's max|w| > kChannelRatio x the median channel's
//       -> "per-channel weights needed"
//     - the result's range >= kOutlierRatio x the 99.99th percentile of |fp32 result|
//       -> "outliers: try percentile" (with --method percentile: "outliers: lower --percentile or try mse")
//     - more than kClippedShare of the fp32 results fall outside the range
//       -> "clipped: widen the range (--method mse or a higher --percentile)"
//     - otherwise -> "sensitive: consider --exclude NAME"
//   int8 slower than fp32 plus the conversions that keeping it fp32 would add (fp32_conversions_ms,
//   q8/analyze.h) by more than 10 % and 2 us, both plans running the node as a step of its own
//   -> "keep fp32: int8 is slower here". Following the advice then makes the model faster, not only
//   the node: MobileNetV2's first Conv can be 10 % slower in int8 on an AVX2 core, but in fp32 its
//   result, 4x the input's size, must be quantized.
//   otherwise -> "fine"; a node the quantizer keeps fp32 -> "fp32 (not quantized)".
#include "q8/analyze.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "api/model_impl.h"
#include "ir/graph.h"
#include "ir/op_traits.h"
#include "ir/shape_inference.h"
#include "kernels/qu8.h"
#include "passes/passes.h"
#include "q8/q8.h"
#include "runtime/dispatch.h"
#include "runtime/plan.h"
#include "runtime/runner.h"
#include "runtime/thread_pool.h"

namespace q8 {

namespace {

using ir::Graph;
using ir::Node;
using ir::Op;

constexpr double kCap = 99.0;
constexpr double kChannelRatio = 10.0;
constexpr double kOutlierRatio = 8.0;
constexpr double kClippedShare = 0.01;
constexpr size_t kPercentileSamples = 1 << 20;

// Whether the node would run faster in fp32, its conversions included (both times in ms).
bool slower(const LayerAnalysis& a) { return a.timed && a.int8_ms > 1.1 * (a.fp32_ms + a.fp32_conversions_ms) + 0.002; }

// This CPU's one-thread cost of quantizing and of dequantizing one element (ms), through the
// dispatched kernels on 64 Ki elements, the best of five runs each. With more threads the
// conversions cost less than this, which only makes the advice to keep fp32 rarer.
struct ConversionRates {
  double quantize_ms = 0, dequantize_ms = 0;
};
ConversionRates conversion_rates() {
  const kern::QU8Kernels& k = *rt::dispatch().qu8;
  constexpr size_t n = size_t{1} << 16;
  std::vector<float> x(n);
  std::vector<uint8_t> q(n);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(i % 509) * 0.01f - 2.5f;
  auto best_ms = [&](auto&& run) {
    double best = 1e30;
    for (int r = 0; r < 6; ++r) {  // the first run only warms up
      const auto t0 = std::chrono::steady_clock::now();
      run();
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (r > 0) best = std::min(best, ms);
    }
    return best / static_cast<double>(n);
  };
  ConversionRates r;
  r.quantize_ms = best_ms([&] { k.quantize.fn(n, x.data(), q.data(), 0.02f, 128); });
  r.dequantize_ms = best_ms([&] { k.dequantize.fn(n, q.data(), x.data(), 0.02f, 128); });
  return r;
}

// LayerAnalysis::fp32_conversions_ms of node n of the int8 runtime graph R (shapes at batch 1):
// the elements keeping it fp32 would quantize and dequantize, less those it would no longer
// convert, at `rates`. A model input's quantization is counted as removed though another node
// may still read it.
double fp32_conversions_ms(const Graph& R, const Node& n, const std::vector<int>& producer,
                           const ConversionRates& rates) {
  int64_t quantize = 0, dequantize = 0;
  for (int v : n.inputs) {
    if (v == ir::kNoValue || R.values[v].is_const() || R.values[v].dtype != ir::DType::Uint8) continue;
    const int64_t count = ir::shape_numel(R.values[v].shape);
    const int p = producer[v];
    const bool model_input = p >= 0 && R.nodes[p].op == Op::QuantizeLinear &&
                             std::count(R.inputs.begin(), R.inputs.end(), R.nodes[p].inputs[0]) > 0;
    if (model_input)
      quantize -= count;
    else
      dequantize += count;
  }
  const int y = n.outputs[0];
  if (R.values[y].dtype == ir::DType::Uint8) {
    bool int8_reader = false, float_reader = false;
    for (int c : R.consumers(y)) (R.nodes[c].op == Op::DequantizeLinear ? float_reader : int8_reader) = true;
    const int64_t count = ir::shape_numel(R.values[y].shape);
    if (int8_reader) quantize += count;
    if (float_reader) dequantize -= count;
  }
  return static_cast<double>(quantize) * rates.quantize_ms + static_cast<double>(dequantize) * rates.dequantize_ms;
}

struct Sqnr {
  double signal = 0, noise = 0;
  void add(const float* x, const float* y, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(x[i]) - y[i];
      signal += static_cast<double>(x[i]) * x[i];
      noise += d * d;
    }
  }
  double db() const {
    if (noise <= 0) return kCap;
    if (signal <= 0) return -kCap;
    const double v = 10.0 * std::log10(signal / noise);
    return std::isfinite(v) ? std::min(kCap, std::max(-kCap, v)) : kCap;
  }
};

float fake_quant(float x, float s, int32_t z) {
  const float q = std::min(255.f, std::max(0.f, std::nearbyint(x / s) + static_cast<float>(z)));
  return (q - static_cast<float>(z)) * s;
}

// An op whose int8 output keeps its input's scale and zero point (the quantizer's pass-through).
bool is_view(Op op) { return ir::op_traits(op).int8 == ir::Int8Role::PassThrough; }

// One row being measured.
struct Row {
  LayerAnalysis a;
  int f_node = -1;       // node id in the fp32 source graph
  std::string out_name;  // fp32 result (after a fused Relu/Clip)
  std::string int8_out;  // the int8 model's value for it ("<t>_quantized" or t)
  bool out_quantized = false;
  float scale = 1.f;
  int32_t zero_point = 0;
  int m_ref = -1, m_own = -1;  // outputs of the shadow graph
  Sqnr own, cum, out_only;
  int64_t total = 0, clipped = 0;
  std::vector<float> abs_sub;  // strided subsample of |fp32 result| for the percentile
  int64_t stride = 1;
};

// Per output channel max|w| of a node's weights: largest / median.
double weight_range_ratio(const Graph& g, const Node& n) {
  if (n.inputs.size() < 2 || n.inputs[1] == ir::kNoValue) return 1;
  const ir::ConstTensor* w = g.values[n.inputs[1]].constant.get();
  if (!w || w->dtype != ir::DType::Float32 || w->dims.empty()) return 1;
  const float* v = w->data<float>();
  std::vector<double> amax;
  if (n.op == Op::ConvTranspose) {
    // ONNX ConvTranspose weights are [C_in][K/group][kH][kW]: element (c, kk, ..) feeds output
    // channel (c / Cg) * Kg + kk, with Cg = C_in / group and Kg = K / group.
    const int64_t group = n.attr_int("group", 1);
    if (w->dims.size() < 2 || group < 1 || w->dims[0] % group != 0) return 1;
    const int64_t Cg = w->dims[0] / group, Kg = w->dims[1];
    int64_t inner = 1;
    for (size_t d = 2; d < w->dims.size(); ++d) inner *= w->dims[d];
    amax.assign(static_cast<size_t>(group * Kg), 0.0);
    for (int64_t e = 0; e < w->numel(); ++e) {
      const int64_t c = e / (Kg * inner), kk = (e / inner) % Kg;
      double& a = amax[static_cast<size_t>(c / Cg * Kg + kk)];
      a = std::max(a, static_cast<double>(std::fabs(v[e])));
    }
  } else {
    int64_t axis = 0;
    if (n.op == Op::Gemm)
      axis = n.attr_int("transB", 0) ? 0 : 1;
    else if (n.op == Op::MatMul)
      axis = 1;
    else if (n.op != Op::Conv)
      return 1;
    if (axis >= static_cast<int64_t>(w->dims.size())) return 1;
    const int64_t C = w->dims[axis];
    int64_t inner = 1;
    for (size_t d = axis + 1; d < w->dims.size(); ++d) inner *= w->dims[d];
    amax.assign(static_cast<size_t>(C), 0.0);
    for (int64_t e = 0; e < w->numel(); ++e) {
      double& a = amax[static_cast<size_t>((e / inner) % C)];
      a = std::max(a, static_cast<double>(std::fabs(v[e])));
    }
  }
  if (amax.empty()) return 1;
  const double mx = *std::max_element(amax.begin(), amax.end());
  std::nth_element(amax.begin(), amax.begin() + amax.size() / 2, amax.end());
  const double med = amax[amax.size() / 2];
  if (mx <= 0) return 1;
  return med > 0 ? mx / med : 1e6;
}

// Builds the shadow graph: `f` (fp32) plus a QDQ copy of each int8 row reading fp32 values.
class ShadowBuilder {
 public:
  ShadowBuilder(const Graph& f, const Graph& q) : m_(f), q_(q), producer_(q.producers()) {
    for (size_t i = 0; i < q.nodes.size(); ++i) q_node_[q.nodes[i].name] = static_cast<int>(i);
    for (int v : q.inputs) q_inputs_.insert(q.values[v].name);
  }
  Graph& graph() { return m_; }

  // Adds the QDQ copy of node `name` and returns the value holding its result named `out`
  // (after a Relu/Clip the quantizer absorbed), or kNoValue if it cannot be built.
  int add_row(const std::string& name, const std::string& out) {
    auto it = q_node_.find(name);
    if (it == q_node_.end()) return ir::kNoValue;
    const Node& qn = q_.nodes[it->second];
    Node copy = qn;
    copy.name = name + "@q8own";
    for (int& v : copy.inputs)
      if (v != ir::kNoValue) v = need(v);
    const int y = fresh(q_.values[qn.outputs[0]], "@q8own");
    copy.outputs = {y};
    m_.nodes.push_back(copy);
    if (q_.values[qn.outputs[0]].name == out) return y;
    // The absorbed Relu/Clip: the only reader of the node's output in the QDQ graph.
    for (const Node& r : q_.nodes)
      if ((r.op == Op::Relu || r.op == Op::Clip) && r.inputs[0] == qn.outputs[0] &&
          q_.values[r.outputs[0]].name == out) {
        Node act = r;
        act.name = r.name + "@q8own";
        act.inputs[0] = y;
        const int z = fresh(q_.values[r.outputs[0]], "@q8own");
        act.outputs = {z};
        m_.nodes.push_back(act);
        return z;
      }
    return ir::kNoValue;
  }

 private:
  Graph m_;
  const Graph& q_;
  std::vector<int> producer_;
  std::map<std::string, int> q_node_;
  std::set<std::string> q_inputs_;
  std::map<int, int> copied_;  // q value -> m value

  int fresh(const ir::Value& like, const std::string& suffix) {
    ir::Value v;
    v.name = like.name + suffix;
    v.dtype = like.dtype;
    return m_.add_value(std::move(v));
  }

  // The shadow graph's value for the QDQ graph's value `qv`.
  int need(int qv) {
    auto c = copied_.find(qv);
    if (c != copied_.end()) return c->second;
    const ir::Value& val = q_.values[qv];
    int r = ir::kNoValue;
    const int p = producer_[qv];
    if (val.is_const()) {
      r = m_.find_value(val.name);
      if (r == ir::kNoValue || !m_.values[r].is_const()) {
        ir::Value v = val;
        v.name = val.name + "@q8";
        r = m_.add_value(std::move(v));
      }
    } else if (p >= 0 && q_.nodes[p].op == Op::DequantizeLinear) {
      const Node& dq = q_.nodes[p];
      const int src = dq.inputs[0];
      const int qp = producer_[src];
      const bool from_graph_input =
          qp >= 0 && q_.nodes[qp].op == Op::QuantizeLinear && q_inputs_.count(q_.values[q_.nodes[qp].inputs[0]].name);
      if (q_.values[src].is_const() || from_graph_input) {
        Node copy = dq;
        copy.name = dq.name + "@q8";
        for (int& v : copy.inputs)
          if (v != ir::kNoValue) v = need(v);
        r = fresh(val, "@q8");
        copy.outputs = {r};
        m_.nodes.push_back(copy);
      } else if (qp >= 0 && q_.nodes[qp].op == Op::QuantizeLinear) {
        r = m_.find_value(q_.values[q_.nodes[qp].inputs[0]].name);  // the fp32 value itself
      }
    } else if (p >= 0 && q_.nodes[p].op == Op::QuantizeLinear &&
               q_inputs_.count(q_.values[q_.nodes[p].inputs[0]].name)) {
      Node copy = q_.nodes[p];
      copy.name = copy.name + "@q8";
      for (int& v : copy.inputs)
        if (v != ir::kNoValue) v = need(v);
      r = fresh(val, "@q8");
      copy.outputs = {r};
      m_.nodes.push_back(copy);
    } else {
      r = m_.find_value(val.name);  // a graph input or an fp32 value of the same name
    }
    if (r == ir::kNoValue) throw Error(q_.source + ": analyze: cannot trace '" + val.name + "' to the fp32 graph");
    copied_[qv] = r;
    return r;
  }
};

// Time per node name (summed over steps of the same name).
std::map<std::string, double> times_by_node(const std::vector<LayerTime>& steps) {
  std::map<std::string, double> r;
  for (const LayerTime& s : steps) r[s.node] += s.ms;
  return r;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// A finite JSON number.
std::string num(double v, const char* f = "%.6g") { return fmt(f, std::isfinite(v) ? v : 0.0); }

// JSON strings go through q8::json_escape; the HTML report escapes its own markup characters.
std::string esc(const std::string& s, bool html = false) {
  if (!html) return json_escape(s);
  std::string r;
  for (char c : s) {
    if (c == '<')
      r += "&lt;";
    else if (c == '>')
      r += "&gt;";
    else if (c == '&')
      r += "&amp;";
    else if (c == '"')
      r += "&quot;";
    else
      r += c;
  }
  return r;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

std::string macs_str(int64_t m) {
  if (m >= 1000000000) return fmt("%.2fG", m / 1e9);
  if (m >= 1000000) return fmt("%.2fM", m / 1e6);
  if (m >= 1000) return fmt("%.1fK", m / 1e3);
  return std::to_string(m);
}

std::string db_str(double v) { return v >= kCap ? std::string("inf") : fmt("%.1f", v); }

}  // namespace

namespace {

// The samples: one tensor per model input, samples along axis 0, run `chunk` at a time.
struct SampleSet {
  const std::vector<Tensor>* data = nullptr;
  int64_t n = 0, chunk = 1, runs = 0;
  std::vector<Tensor> sample(int64_t k) const {
    std::vector<Tensor> r;
    for (const Tensor& t : *data) {
      std::vector<int64_t> s = t.shape();
      s[0] = chunk;
      const int64_t per = t.numel() / n * chunk;
      r.emplace_back(s, std::vector<float>(t.data() + k * per, t.data() + (k + 1) * per));
    }
    return r;
  }
};

SampleSet make_samples(const Model& fp32, const Graph& F, const std::vector<Tensor>& calibration,
                       const std::vector<Tensor>& inputs, const AnalyzeOptions& ao) {
  const std::vector<Tensor>& data = inputs.empty() ? calibration : inputs;
  if (data.size() != fp32.inputs().size())
    throw Error(F.source + ": analyze: " + std::to_string(data.size()) + " input tensor(s) for a model with " +
                std::to_string(fp32.inputs().size()) + " input(s)");
  const int64_t fixed = fp32.inputs()[0].shape.empty() ? 1 : fp32.inputs()[0].shape[0];
  const int64_t chunk = fixed > 0 ? fixed : 1;
  int64_t n = -1;
  for (const Tensor& t : data) {
    if (t.shape().empty() || t.shape()[0] < 1) throw Error(F.source + ": analyze: no samples along axis 0");
    if (n >= 0 && t.shape()[0] != n) throw Error(F.source + ": analyze: inputs hold different sample counts");
    n = t.shape()[0];
    for (int64_t e = 0; e < t.numel(); ++e)
      if (!std::isfinite(t.data()[e])) throw Error(F.source + ": analyze: input data contains NaN or Inf");
  }
  int64_t runs = n / chunk;
  if (runs < 1)
    throw Error(F.source + ": analyze: the model's batch is fixed at " + std::to_string(chunk) +
                "; give at least that many samples");
  if (inputs.empty()) runs = std::min<int64_t>(runs, std::max<int64_t>(1, ao.max_samples / chunk));
  SampleSet set;
  set.data = &data;
  set.n = n;
  set.chunk = chunk;
  set.runs = runs;
  return set;
}

// Rows: every Conv/Gemm/MatMul, and the other nodes that run in int8 with a requantized result.
std::vector<Row> select_rows(const Model& fp32, const Model& int8, const QuantizeOptions& options,
                             const ConversionRates& rates) {
  const Graph& F = fp32.impl()->source;
  const Graph& Q = int8.impl()->source;
  const Graph& R = int8.impl()->graph;
  const Graph& RF = fp32.impl()->graph;
  // R with its shapes at batch 1, for the conversions each int8 row would need in fp32.
  Graph RS = R;
  ir::infer_shapes(RS, ir::input_shapes_for_batch(RS, 1));
  const std::vector<int> rs_producer = RS.producers();
  std::map<std::string, int> r_node, rf_node;
  for (size_t i = 0; i < R.nodes.size(); ++i) {
    r_node[R.nodes[i].name] = static_cast<int>(i);
    // x * f(x) as one table (passes.h, fuse_quantized_gate): the node also runs the Mul.
    if (R.nodes[i].attr_int("gate", 0)) r_node[R.nodes[i].attr_string("gate_of", "")] = static_cast<int>(i);
  }
  for (size_t i = 0; i < RF.nodes.size(); ++i) rf_node[RF.nodes[i].name] = static_cast<int>(i);
  std::map<std::string, int> q_node;
  const std::vector<int> q_producer = Q.producers();
  for (size_t i = 0; i < Q.nodes.size(); ++i) q_node[Q.nodes[i].name] = static_cast<int>(i);
  std::map<std::string, NodeInfo> info;
  for (NodeInfo& ni : fp32.describe(1)) info[ni.name] = ni;
  std::vector<Row> rows;
  for (size_t i = 0; i < F.nodes.size(); ++i) {
    const Node& fn = F.nodes[i];
    // The role of the op the node runs as: the quantizer may give it another op with the same
    // result (a BatchNormalization no Conv absorbed becomes a depthwise 1x1 Conv).
    const auto qi = q_node.find(fn.name);
    const ir::Int8Role role = ir::op_traits(qi != q_node.end() ? Q.nodes[qi->second].op : fn.op).int8;
    const bool compute = role == ir::Int8Role::Weighted;
    // In int8: the quantizer gave the node dequantized inputs (it then runs as an integer op,
    // or, where the runtime has none, in float on int8 weights and uint8 inputs).
    auto it = r_node.find(fn.name);
    bool in_int8 = false;
    if (qi != q_node.end() && it != r_node.end())
      for (int v : Q.nodes[qi->second].inputs)
        in_int8 |= v != ir::kNoValue && q_producer[v] >= 0 && Q.nodes[q_producer[v]].op == Op::DequantizeLinear;
    const bool requantizing = role == ir::Int8Role::Requantizing || role == ir::Int8Role::TableLookup;
    if (!compute && !(in_int8 && requantizing)) continue;
    // The activation of a gated table (x * f(x) as one lookup) has no int8 result of its own: the
    // error of its quantized f(x) shows in the Mul's row, which the table also runs.
    if (in_int8 && R.nodes[it->second].attr_int("gate", 0) && R.nodes[it->second].name == fn.name) continue;
    Row row;
    row.f_node = static_cast<int>(i);
    row.a.name = fn.name;
    row.a.op = ir::op_name(fn.op);
    row.a.int8 = in_int8;
    if (in_int8) {
      const Node& rn = R.nodes[it->second];
      row.a.fp32_fallback =
          ir::op_traits(rn.op).int8 != ir::Int8Role::Integer && R.values[rn.inputs[0]].dtype != ir::DType::Uint8;
      row.a.fp32_conversions_ms = fp32_conversions_ms(RS, RS.nodes[it->second], rs_producer, rates);
    }
    if (auto d = info.find(fn.name); d != info.end()) {
      row.a.macs = d->second.macs;
      if (!d->second.output_shapes.empty()) row.a.output_shape = d->second.output_shapes[0];
    }
    // The fp32 result after a fused activation, as the runtime graphs name it.
    auto rf = rf_node.find(fn.name);
    row.out_name = rf != rf_node.end() ? RF.values[RF.nodes[rf->second].outputs[0]].name : F.values[fn.outputs[0]].name;
    row.int8_out = row.out_name;
    if (in_int8) {
      const Node& rn = R.nodes[it->second];
      const ir::Value& ov = R.values[rn.outputs[0]];
      if (ov.dtype == ir::DType::Uint8) {
        row.out_quantized = true;
        row.scale = ov.scale;
        row.zero_point = ov.zero_point;
        row.int8_out = ov.name;
        const std::string suffix = "_quantized";
        if (ov.name.size() > suffix.size() &&
            ov.name.compare(ov.name.size() - suffix.size(), suffix.size(), suffix) == 0)
          row.out_name = ov.name.substr(0, ov.name.size() - suffix.size());
        // int8 readers of the result, through views that share its quantization.
        std::vector<int> todo = {rn.outputs[0]};
        std::set<std::string> readers;
        while (!todo.empty()) {
          const int v = todo.back();
          todo.pop_back();
          for (int c : R.consumers(v)) {
            const Node& cn = R.nodes[c];
            if (cn.op == Op::DequantizeLinear) continue;
            readers.insert(cn.name);
            if (is_view(cn.op) && R.values[cn.outputs[0]].dtype == ir::DType::Uint8) todo.push_back(cn.outputs[0]);
          }
        }
        row.a.output_readers.assign(readers.begin(), readers.end());
      } else {
        row.out_name = ov.name;
        row.int8_out = ov.name;
      }
    } else if (R.find_value(row.int8_out) == ir::kNoValue) {
      row.int8_out = F.values[fn.outputs[0]].name;
    }
    row.a.weight_range_ratio = options.per_channel ? 1.0 : weight_range_ratio(F, fn);
    rows.push_back(std::move(row));
  }

  return rows;
}

// One sample's errors of a row: `ref` the fp32 result, `own` the node alone in int8 (null when it
// stays fp32), `y8` the int8 network's result; `fq` is scratch.
void accumulate(Row& row, const std::vector<float>& ref, const std::vector<float>* own_out, const float* y8,
                std::vector<float>& fq) {
  row.cum.add(ref.data(), y8, ref.size());
  if (!own_out) return;
  const std::vector<float>& own = *own_out;
  if (row.out_quantized) {
    const float lo = (0.f - row.zero_point) * row.scale, hi = (255.f - row.zero_point) * row.scale;
    fq.resize(own.size());
    for (size_t i = 0; i < own.size(); ++i) fq[i] = fake_quant(own[i], row.scale, row.zero_point);
    row.own.add(ref.data(), fq.data(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) fq[i] = fake_quant(ref[i], row.scale, row.zero_point);
    row.out_only.add(ref.data(), fq.data(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      row.clipped += ref[i] < lo || ref[i] > hi;
      if ((row.total + static_cast<int64_t>(i)) % row.stride == 0) row.abs_sub.push_back(std::fabs(ref[i]));
    }
  } else {
    row.own.add(ref.data(), own.data(), ref.size());
  }
  row.total += static_cast<int64_t>(ref.size());
}

// Runs the shadow graph (the fp32 network, plus each row's node alone in int8 reading fp32
// values) and the int8 model over the samples, accumulating every row's errors; returns the
// end-to-end SQNR.
Sqnr measure(std::vector<Row>& rows, const Model& int8, const Graph& F, const Graph& Q, const Graph& R,
             const SampleSet& samples, const QuantizeOptions& options) {
  const int64_t runs = samples.runs;
  auto sample = [&](int64_t k) { return samples.sample(k); };
  // The shadow graph.
  ShadowBuilder sb(F, Q);
  Graph& M = sb.graph();
  const size_t n_out = M.outputs.size();
  for (Row& row : rows) {
    const int ref = M.find_value(row.out_name);
    if (ref == ir::kNoValue) throw Error(F.source + ": analyze: no fp32 tensor '" + row.out_name + "'");
    row.m_ref = static_cast<int>(M.outputs.size());
    M.outputs.push_back(ref);
    if (row.a.int8) {
      const int own = sb.add_row(row.a.name, row.out_name);
      if (own == ir::kNoValue) throw Error(F.source + ": analyze: cannot isolate node '" + row.a.name + "'");
      row.m_own = static_cast<int>(M.outputs.size());
      M.outputs.push_back(own);
    }
  }
  M.validate();
  ir::lower_for_runtime(M);
  const rt::Dispatch& d = rt::dispatch();
  rt::Runner fp32_runner(M, d);
  rt::ThreadPool pool(std::max(1, options.threads));

  SessionOptions so(std::max(1, options.threads));
  for (const Row& row : rows) {
    if (R.find_value(row.int8_out) == ir::kNoValue)
      throw Error(F.source + ": analyze: the int8 model has no tensor '" + row.int8_out + "'");
    so.extra_outputs.push_back(row.int8_out);
  }
  Session s8(int8, so);

  Sqnr end_to_end;
  std::vector<std::vector<float>> outs;
  std::vector<Tensor> outs8;
  std::vector<float> fq;
  for (int64_t k = 0; k < runs; ++k) {
    const std::vector<Tensor> x = sample(k);
    if (!fp32_runner.prepared()) {
      std::vector<ir::Shape> shapes;
      for (const Tensor& t : x) shapes.push_back(t.shape());
      fp32_runner.prepare(shapes);
      for (size_t o = 0; o < fp32_runner.planned().outputs.size(); ++o) outs.emplace_back(fp32_runner.output_numel(o));
      for (Row& row : rows) {
        const int64_t per = static_cast<int64_t>(outs[row.m_ref].size()) * runs;
        row.stride = std::max<int64_t>(1, per / static_cast<int64_t>(kPercentileSamples));
      }
    }
    std::vector<const float*> in_ptrs;
    for (const Tensor& t : x) in_ptrs.push_back(t.data());
    std::vector<float*> out_ptrs;
    for (auto& b : outs) out_ptrs.push_back(b.data());
    fp32_runner.run(pool, in_ptrs, out_ptrs);
    s8.run(x, outs8);
    for (size_t o = 0; o < n_out; ++o) {
      if (static_cast<size_t>(outs8[o].numel()) != outs[o].size())
        throw Error(F.source + ": analyze: output sizes of the fp32 and int8 models differ");
      end_to_end.add(outs[o].data(), outs8[o].data(), outs[o].size());
    }
    for (size_t r = 0; r < rows.size(); ++r) {
      const Tensor& y8 = outs8[n_out + r];
      if (static_cast<size_t>(y8.numel()) != outs[rows[r].m_ref].size())
        throw Error(F.source + ": analyze: '" + rows[r].a.name + "' has different sizes in the fp32 and int8 models");
      accumulate(rows[r], outs[rows[r].m_ref], rows[r].a.int8 ? &outs[rows[r].m_own] : nullptr, y8.data(), fq);
    }
  }

  return end_to_end;
}

// A row's figures from its accumulated errors and the two profiles, and its advice.
void finish_row(Row& row, const std::map<std::string, double>& mf, const std::map<std::string, double>& mi,
                const QuantizeOptions& options, const AnalyzeOptions& ao) {
  LayerAnalysis& a = row.a;
  a.sqnr_db = a.int8 ? row.own.db() : kCap;
  a.sqnr_cumulative_db = row.cum.db();
  a.output_sqnr_db = row.out_quantized ? row.out_only.db() : kCap;
  a.clipped = row.total > 0 ? static_cast<double>(row.clipped) / static_cast<double>(row.total) : 0.0;
  if (row.out_quantized && !row.abs_sub.empty()) {
    const size_t at =
        std::min(row.abs_sub.size() - 1, static_cast<size_t>(0.9999 * static_cast<double>(row.abs_sub.size())));
    std::nth_element(row.abs_sub.begin(), row.abs_sub.begin() + at, row.abs_sub.end());
    const double p = row.abs_sub[at];
    const double top =
        std::max(std::fabs((0.0 - row.zero_point) * row.scale), std::fabs((255.0 - row.zero_point) * row.scale));
    a.outlier_ratio = p > 0 ? std::min(1e6, top / p) : 1.0;
  }
  a.fp32_ms = mf.count(a.name) ? mf.at(a.name) : 0.0;
  a.int8_ms = mi.count(a.name) ? mi.at(a.name) : 0.0;
  a.timed = mf.count(a.name) && mi.count(a.name);
  if (!a.int8) {
    a.advice = "fp32 (not quantized)";
  } else if (a.fp32_fallback) {
    a.advice = "fp32 (no int8 kernel here: float output)";
  } else if (a.sqnr_db < ao.min_sqnr_db) {
    if (!options.per_channel && a.weight_range_ratio > kChannelRatio)
      a.advice = "per-channel weights needed";
    else if (a.outlier_ratio >= kOutlierRatio)
      a.advice = options.method == Calibration::Percentile ? "outliers: lower --percentile or try mse"
                                                           : "outliers: try percentile";
    else if (a.clipped > kClippedShare)
      a.advice = "clipped: widen the range (--method mse or a higher --percentile)";
    else
      a.advice = "sensitive: consider --exclude " + a.name;
  } else if (slower(a)) {
    a.advice = "keep fp32: int8 is slower here";
  } else {
    a.advice = "fine";
  }
}

AnalysisSummary summarize(const Analysis& an, Sqnr end_to_end, const std::vector<LayerTime>& tf,
                          const std::vector<LayerTime>& ti, const SampleSet& samples, const QuantizeOptions& options) {
  std::set<std::string> row_names;
  for (const LayerAnalysis& a : an.layers) row_names.insert(a.name);
  AnalysisSummary s;
  s.sqnr_db = end_to_end.db();
  for (const LayerTime& t : tf) s.fp32_ms += t.ms;
  for (const LayerTime& t : ti) {
    s.int8_ms += t.ms;
    if (!row_names.count(t.node) && (t.op.empty() || t.op == "QuantizeLinear" || t.op == "DequantizeLinear"))
      s.conversions_ms += t.ms;
  }
  std::vector<const LayerAnalysis*> order;
  for (const LayerAnalysis& a : an.layers)
    if (a.sqnr_db < kCap) order.push_back(&a);
  std::stable_sort(order.begin(), order.end(),
                   [](const LayerAnalysis* x, const LayerAnalysis* y) { return x->sqnr_db < y->sqnr_db; });
  for (size_t i = 0; i < order.size() && i < 3; ++i) s.worst.push_back(order[i]->name);
  s.samples = samples.runs * samples.chunk;
  s.method = calibration_name(options.method);
  s.per_channel = options.per_channel;
  s.isa = active_isa();
  s.threads = std::max(1, options.threads);
  return s;
}

}  // namespace

Analysis analyze(const Model& fp32, const std::vector<Tensor>& calibration, const std::vector<Tensor>& inputs,
                 const QuantizeOptions& options, const AnalyzeOptions& ao) {
  if (!fp32.impl()) throw Error("analyze: the model is empty");
  if (fp32.is_quantized()) throw Error(fp32.source() + ": analyze needs the fp32 model; this one is already quantized");
  if (ao.iterations < 1) throw Error("analyze: iterations must be >= 1");
  const Model int8 = quantize(fp32, calibration, options);
  const Graph& F = fp32.impl()->source;
  const SampleSet samples = make_samples(fp32, F, calibration, inputs, ao);
  std::vector<Row> rows = select_rows(fp32, int8, options, conversion_rates());
  const Sqnr end_to_end = measure(rows, int8, F, int8.impl()->source, int8.impl()->graph, samples, options);

  // Times at batch 1 (chunk) on the first sample.
  const std::vector<Tensor> x0 = samples.sample(0);
  Session sf(fp32, SessionOptions(std::max(1, options.threads)));
  Session si(int8, SessionOptions(std::max(1, options.threads)));
  const std::vector<LayerTime> tf = sf.profile(x0, ao.iterations), ti = si.profile(x0, ao.iterations);
  const std::map<std::string, double> mf = times_by_node(tf);
  std::map<std::string, double> mi = times_by_node(ti);
  // A gated table's step (x * f(x), named after f) is the time of the Mul's row, which it runs.
  for (const Node& n : int8.impl()->graph.nodes)
    if (n.attr_int("gate", 0) && mi.count(n.name)) mi[n.attr_string("gate_of", "")] = mi.at(n.name);

  Analysis an;
  for (Row& row : rows) {
    finish_row(row, mf, mi, options, ao);
    an.layers.push_back(row.a);
  }
  an.summary = summarize(an, end_to_end, tf, ti, samples, options);
  return an;
}

std::vector<std::string> fallback_nodes(const Analysis& analysis, double min_sqnr_db) {
  std::set<std::string> keep;
  for (const LayerAnalysis& a : analysis.layers) {
    if (!a.int8) continue;
    if (a.sqnr_db < min_sqnr_db || slower(a)) keep.insert(a.name);
    if (a.output_sqnr_db < min_sqnr_db) {
      keep.insert(a.name);
      keep.insert(a.output_readers.begin(), a.output_readers.end());
    }
  }
  return {keep.begin(), keep.end()};
}

QuantizeOptions with_auto_fallback(const Model& fp32, const std::vector<Tensor>& calibration,
                                   const QuantizeOptions& options, double min_sqnr_db, std::vector<std::string>* kept,
                                   Analysis* analysis) {
  AnalyzeOptions ao;
  ao.min_sqnr_db = min_sqnr_db;
  QuantizeOptions quiet = options;
  quiet.progress = nullptr;
  Analysis a = analyze(fp32, calibration, {}, quiet, ao);
  const std::vector<std::string> extra = fallback_nodes(a, min_sqnr_db);
  QuantizeOptions r = options;
  for (const std::string& name : extra)
    if (std::find(r.exclude.begin(), r.exclude.end(), name) == r.exclude.end()) r.exclude.push_back(name);
  if (kept) *kept = extra;
  if (analysis) *analysis = std::move(a);
  return r;
}

// ---- Reports -----------------------------------------------------------------------------------

std::string Analysis::to_json() const {
  std::ostringstream o;
  o << "{\"layers\": [";
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerAnalysis& a = layers[i];
    o << (i ? ", " : "") << "{\"name\": \"" << esc(a.name) << "\", \"op\": \"" << esc(a.op)
      << "\", \"output_shape\": [";
    for (size_t k = 0; k < a.output_shape.size(); ++k) o << (k ? ", " : "") << a.output_shape[k];
    o << "], \"macs\": " << a.macs << ", \"int8\": " << (a.int8 ? "true" : "false")
      << ", \"fp32_fallback\": " << (a.fp32_fallback ? "true" : "false") << ", \"sqnr_db\": " << num(a.sqnr_db)
      << ", \"sqnr_cumulative_db\": " << num(a.sqnr_cumulative_db) << ", \"output_sqnr_db\": " << num(a.output_sqnr_db)
      << ", \"clipped\": " << num(a.clipped) << ", \"outlier_ratio\": " << num(a.outlier_ratio)
      << ", \"weight_range_ratio\": " << num(a.weight_range_ratio) << ", \"int8_ms\": " << num(a.int8_ms)
      << ", \"fp32_ms\": " << num(a.fp32_ms) << ", \"fp32_conversions_ms\": " << num(a.fp32_conversions_ms)
      << ", \"timed\": " << (a.timed ? "true" : "false") << ", \"advice\": \"" << esc(a.advice) << "\"}";
  }
  const AnalysisSummary& s = summary;
  o << "], \"summary\": {\"sqnr_db\": " << num(s.sqnr_db) << ", \"int8_ms\": " << num(s.int8_ms)
    << ", \"fp32_ms\": " << num(s.fp32_ms) << ", \"conversions_ms\": " << num(s.conversions_ms) << ", \"worst\": [";
  for (size_t i = 0; i < s.worst.size(); ++i) o << (i ? ", " : "") << "\"" << esc(s.worst[i]) << "\"";
  o << "], \"samples\": " << s.samples << ", \"method\": \"" << esc(s.method)
    << "\", \"per_channel\": " << (s.per_channel ? "true" : "false") << ", \"isa\": \"" << esc(s.isa)
    << "\", \"threads\": " << s.threads << "}}";
  return o.str();
}

std::string Analysis::to_text() const {
  // Names come from the model: printed through q8::printable, capped so a row fits the buffer.
  auto name_of = [](const std::string& n) { return printable(n, 200); };
  size_t wn = 4, wo = 2, ws = 5;
  for (const LayerAnalysis& a : layers) {
    wn = std::max(wn, name_of(a.name).size());
    wo = std::max(wo, a.op.size());
    ws = std::max(ws, shape_str(a.output_shape).size());
  }
  std::ostringstream o;
  std::vector<char> buffer(wn + 1024);
  char* buf = buffer.data();
  const size_t bufsize = buffer.size();
  std::snprintf(buf, bufsize, "%-*s  %-*s  %-*s  %8s  %7s  %7s  %8s  %9s  %9s  %s\n", (int)wn, "node", (int)wo, "op",
                (int)ws, "output", "MACs", "own dB", "cum dB", "clipped", "int8 ms", "fp32 ms", "advice");
  o << buf;
  for (const LayerAnalysis& a : layers) {
    std::snprintf(buf, bufsize, "%-*s  %-*s  %-*s  %8s  %7s  %7s  %7.3f%%  %9.4f  %9.4f  %s\n", (int)wn,
                  name_of(a.name).c_str(), (int)wo, a.op.c_str(), (int)ws, shape_str(a.output_shape).c_str(),
                  a.macs ? macs_str(a.macs).c_str() : "-", db_str(a.sqnr_db).c_str(),
                  db_str(a.sqnr_cumulative_db).c_str(), 100.0 * a.clipped, a.int8_ms, a.fp32_ms, a.advice.c_str());
    o << buf;
  }
  const AnalysisSummary& s = summary;
  o << "\nend-to-end SQNR: " << db_str(s.sqnr_db) << " dB over " << s.samples << " sample(s) (method " << s.method
    << (s.per_channel ? ", per-channel weights" : ", per-tensor weights") << ")\n";
  o << "worst layers:   ";
  if (s.worst.empty()) o << "none (no quantization error)";
  for (size_t i = 0; i < s.worst.size(); ++i) {
    for (const LayerAnalysis& a : layers)
      if (a.name == s.worst[i]) o << (i ? ", " : "") << name_of(a.name) << " (" << db_str(a.sqnr_db) << " dB)";
  }
  std::snprintf(
      buf, bufsize,
      "\ntime:           int8 %.3f ms (of which conversions %.3f ms), fp32 %.3f ms: %.2fx (%s, %d thread%s, batch 1)\n",
      s.int8_ms, s.conversions_ms, s.fp32_ms, s.int8_ms > 0 ? s.fp32_ms / s.int8_ms : 0.0, s.isa.c_str(), s.threads,
      s.threads == 1 ? "" : "s");
  o << buf;
  return o.str();
}

std::string Analysis::to_html() const {
  std::ostringstream o;
  const AnalysisSummary& s = summary;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>q8 analyze</title>\n<style>\n"
       "body{font-family:sans-serif;margin:24px;color:#222;background:#fff}\n"
       "h1{font-size:22px}h2{font-size:17px;margin-top:28px}\n"
       "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\n"
       "td.l,th.l{text-align:left}tr.bad td{background:#fde2e2}tr.slow td{background:#fff3cd}\n"
       ".legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 14px;vertical-align:middle}\n"
       "svg text{font-family:sans-serif;font-size:11px}\n"
       "</style></head><body>\n<h1>q8 analyze: where int8 loses precision and time</h1>\n";
  o << "<p>End-to-end SQNR <b>" << db_str(s.sqnr_db) << " dB</b> over " << s.samples << " sample(s); method "
    << esc(s.method, true) << ", " << (s.per_channel ? "per-channel" : "per-tensor") << " weights. Time (batch 1, "
    << s.threads << " thread(s), " << esc(s.isa, true) << "): int8 <b>" << fmt("%.3f", s.int8_ms)
    << " ms</b> (conversions " << fmt("%.3f", s.conversions_ms) << " ms), fp32 <b>" << fmt("%.3f", s.fp32_ms)
    << " ms</b>.";
  if (!s.worst.empty()) {
    o << " Worst layers:";
    for (size_t i = 0; i < s.worst.size(); ++i) o << (i ? ", " : " ") << "<b>" << esc(s.worst[i], true) << "</b>";
    o << ".";
  }
  o << "</p>\n";

  // Horizontal bar charts, one row per layer.
  const int label_w = 220, bar_w = 520, row_h = 18, pad = 30;
  const int h = pad + static_cast<int>(layers.size()) * row_h * 2 + 10;
  auto chart = [&](const char* title, const char* c1, const char* n1, const char* c2, const char* n2, double max_v,
                   const char* unit, auto v1, auto v2) {
    o << "<h2>" << title << "</h2>\n<div class=\"legend\"><span style=\"background:" << c1 << "\"></span>" << n1
      << "<span style=\"background:" << c2 << "\"></span>" << n2 << "</div>\n";
    o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << label_w + bar_w + 90 << "\" height=\"" << h << "\">\n";
    for (int t = 0; t <= 4; ++t) {
      const double x = label_w + bar_w * t / 4.0;
      o << "<line x1=\"" << x << "\" y1=\"" << pad - 8 << "\" x2=\"" << x << "\" y2=\"" << h - 6
        << "\" stroke=\"#ddd\"/><text x=\"" << x << "\" y=\"" << pad - 12 << "\" text-anchor=\"middle\">"
        << fmt("%.3g", max_v * t / 4.0) << unit << "</text>\n";
    }
    for (size_t i = 0; i < layers.size(); ++i) {
      const int y = pad + static_cast<int>(i) * row_h * 2;
      std::string label = layers[i].name;
      if (label.size() > 32) label = "..." + label.substr(label.size() - 29);
      o << "<text x=\"" << label_w - 6 << "\" y=\"" << y + row_h << "\" text-anchor=\"end\">" << esc(label, true)
        << "</text>\n";
      const double a = std::max(0.0, v1(layers[i])), b = std::max(0.0, v2(layers[i]));
      const double wa = max_v > 0 ? bar_w * std::min(1.0, a / max_v) : 0,
                   wb = max_v > 0 ? bar_w * std::min(1.0, b / max_v) : 0;
      o << "<rect x=\"" << label_w << "\" y=\"" << y + 2 << "\" width=\"" << fmt("%.1f", wa) << "\" height=\""
        << row_h - 4 << "\" fill=\"" << c1 << "\"/><text x=\"" << label_w + wa + 4 << "\" y=\"" << y + row_h - 5
        << "\">" << fmt("%.3g", a) << "</text>\n";
      o << "<rect x=\"" << label_w << "\" y=\"" << y + row_h << "\" width=\"" << fmt("%.1f", wb) << "\" height=\""
        << row_h - 4 << "\" fill=\"" << c2 << "\"/><text x=\"" << label_w + wb + 4 << "\" y=\"" << y + 2 * row_h - 7
        << "\">" << fmt("%.3g", b) << "</text>\n";
    }
    o << "</svg>\n";
  };
  double max_db = 10, max_ms = 0;
  for (const LayerAnalysis& a : layers) {
    max_db = std::max({max_db, std::min(a.sqnr_db, 60.0), std::min(a.sqnr_cumulative_db, 60.0)});
    max_ms = std::max({max_ms, a.int8_ms, a.fp32_ms});
  }
  max_db = std::ceil(max_db / 10) * 10;
  chart(
      "SQNR per layer (higher is better; capped at 60 dB in the chart)", "#2b7bba", "own", "#9ecae1", "cumulative",
      max_db, " dB", [](const LayerAnalysis& a) { return std::min(a.sqnr_db, 60.0); },
      [](const LayerAnalysis& a) { return std::min(a.sqnr_cumulative_db, 60.0); });
  chart(
      "Time per layer (lower is better)", "#e6550d", "int8", "#a1a1a1", "fp32", max_ms > 0 ? max_ms : 1.0, " ms",
      [](const LayerAnalysis& a) { return a.int8_ms; }, [](const LayerAnalysis& a) { return a.fp32_ms; });

  o << "<h2>Layers</h2>\n<table><tr><th class=\"l\">node</th><th class=\"l\">op</th><th "
       "class=\"l\">output</th><th>MACs</th>"
       "<th>own SQNR dB</th><th>cumulative dB</th><th>clipped</th><th>int8 ms</th><th>fp32 ms</th><th "
       "class=\"l\">advice</th></tr>\n";
  for (const LayerAnalysis& a : layers) {
    const bool bad = a.advice != "fine" && a.advice.rfind("keep fp32", 0) != 0 && a.advice.rfind("fp32 (", 0) != 0;
    const bool slow = a.advice.rfind("keep fp32", 0) == 0;
    o << "<tr"
      << (bad    ? " class=\"bad\""
          : slow ? " class=\"slow\""
                 : "")
      << "><td class=\"l\">" << esc(a.name, true) << "</td><td class=\"l\">" << esc(a.op, true)
      << "</td><td class=\"l\">" << shape_str(a.output_shape) << "</td><td>" << (a.macs ? macs_str(a.macs) : "-")
      << "</td><td>" << db_str(a.sqnr_db) << "</td><td>" << db_str(a.sqnr_cumulative_db) << "</td><td>"
      << fmt("%.3f%%", 100.0 * a.clipped) << "</td><td>" << fmt("%.4f", a.int8_ms) << "</td><td>"
      << fmt("%.4f", a.fp32_ms) << "</td><td class=\"l\">" << esc(a.advice, true) << "</td></tr>\n";
  }
  o << "</table>\n<p style=\"font-size:12px;color:#666\">Own SQNR: the node alone in int8, fed the fp32 network's "
       "values. "
       "Cumulative: the whole int8 network up to this node. SQNR = 10 log10(&Sigma;x&sup2; / "
       "&Sigma;(x&minus;y)&sup2;).</p>\n"
       "</body></html>\n";
  return o.str();
}

}  // namespace q8
