// The public API: ties the importer, the passes and the runtime together.
#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "api/model_impl.h"
#include "ir/graph.h"
#include "ir/op_traits.h"
#include "onnx/onnx_importer.h"
#include "onnx/onnx_writer.h"
#include "passes/passes.h"
#include "q8/q8.h"
#include "quant/quantize.h"
#include "runtime/dispatch.h"
#include "runtime/plan.h"
#include "runtime/runner.h"

namespace q8 {

namespace detail {

struct SessionImpl {
  std::shared_ptr<const ModelImpl> model;
  SessionOptions options;
  rt::ThreadPool pool;
  std::unique_ptr<rt::Runner> runner;  // the model's graph, packed, planned for the last shapes
  std::vector<ir::Shape> shapes;
  std::vector<const float*> in_ptrs;
  std::vector<float*> out_ptrs;

  SessionImpl(std::shared_ptr<const ModelImpl> m, SessionOptions o)
      : model(std::move(m)), options(o), pool(o.threads) {}
  // `In` is Tensor or TensorView: both give shape() and data().
  template <class In>
  void run(const In* inputs, size_t count, std::vector<Tensor>& outputs, double* step_ms);
};

}  // namespace detail

namespace {

Model make_model(ir::Graph g) {
  ir::simplify(g);
  auto impl = std::make_shared<detail::ModelImpl>();
  impl->source = g;
  ir::lower_for_runtime(g);
  for (const ir::Value& v : g.values) impl->quantized |= v.dtype == ir::DType::Uint8;
  for (int v : g.inputs) impl->inputs.push_back({g.values[v].name, g.values[v].shape});
  // Output shapes: inferred at batch 1 where only the batch is dynamic; the batch axis of an
  // output whose input had a dynamic batch is reported as dynamic too.
  ir::Graph probe = g;
  bool dynamic = false;
  for (int v : g.inputs)
    for (int64_t d : g.values[v].shape) dynamic |= d == ir::kUnknownDim;
  ir::infer_shapes(probe, ir::input_shapes_for_batch(probe, 1));
  for (int v : probe.outputs) {
    std::vector<int64_t> s = probe.values[v].shape;
    if (dynamic && !s.empty()) s[0] = ir::kUnknownDim;
    impl->outputs.push_back({probe.values[v].name, s});
  }
  impl->graph = std::move(g);
  return Model(std::move(impl));
}

}  // namespace

Model Model::load(const std::string& path) { return make_model(onnx::import_file(path)); }

Model Model::load_from_memory(const void* data, size_t size, const std::string& name) {
  return make_model(onnx::import_model(data, size, name));
}

void Model::save(const std::string& path) const { onnx::save_model(impl_->source, path); }
bool Model::is_quantized() const { return impl_->quantized; }

const std::vector<TensorInfo>& Model::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo>& Model::outputs() const { return impl_->outputs; }
const std::string& Model::source() const { return impl_->graph.source; }

std::vector<NodeInfo> Model::describe(int64_t batch) const {
  const ir::Graph g = rt::graph_for_shapes(impl_->graph, ir::input_shapes_for_batch(impl_->graph, batch));
  const std::vector<bool> unread = g.unread_nodes();
  const rt::Dispatch& d = rt::dispatch();
  bool quantized_model = false;
  for (const ir::Value& v : g.values) quantized_model |= v.dtype == ir::DType::Uint8;
  std::vector<NodeInfo> rows;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (g.values[n.outputs[0]].is_const() || unread[i]) continue;  // computed from shapes, or unused: never run
    NodeInfo r;
    r.name = n.name;
    r.op = ir::op_name(n.op);
    for (int v : n.inputs)
      if (v != ir::kNoValue && !g.values[v].is_const()) r.input_shapes.push_back(g.values[v].shape);
    for (int v : n.outputs) r.output_shapes.push_back(g.values[v].shape);
    std::ostringstream p;
    auto ints = [&](const char* key, const char* label) {
      if (!n.has_attr(key)) return;
      p << (p.tellp() > 0 ? " " : "") << label << "=";
      const auto v = n.attr_ints(key);
      for (size_t i = 0; i < v.size(); ++i) p << (i ? "," : "") << v[i];
    };
    const bool conv = n.op == ir::Op::Conv || n.op == ir::Op::QuantizedConv || n.op == ir::Op::QuantizedConvFloat;
    if (conv) {
      const auto& w = g.values[n.inputs[1]].constant->dims;
      p << "out=" << w[0] << " k=" << w[2] << "," << w[3];
      if (n.attr_int("group", 1) != 1) p << " group=" << n.attr_int("group", 1);
    }
    if (!conv) ints("kernel_shape", "k");
    ints("strides", "s");
    ints("pads", "p");
    if (n.has_attr("dilations") && n.attr_ints("dilations") != std::vector<int64_t>{1, 1}) ints("dilations", "d");
    if (n.op == ir::Op::Gemm) p << "transB=" << n.attr_int("transB", 0);
    if (n.op == ir::Op::ChannelShuffle) p << "group=" << n.attr_int("group", 1);
    if (n.op == ir::Op::QuantizedDense || n.op == ir::Op::QuantizedDenseFloat)
      p << "out=" << g.values[n.inputs[1]].constant->dims[0];
    if (n.has_attr("qmin") && (n.attr_int("qmin", 0) != 0 || n.attr_int("qmax", 255) != 255))
      p << (p.tellp() > 0 ? " " : "") << "clamp=[" << n.attr_int("qmin", 0) << "," << n.attr_int("qmax", 255) << "]";
    const ir::Value& out = g.values[n.outputs[0]];
    if (out.dtype == ir::DType::Uint8)
      p << (p.tellp() > 0 ? " " : "") << "out_q=(" << out.scale << "," << out.zero_point << ")";
    if (conv && n.inputs.size() > 3)  // a residual Add fused into the Conv (passes.h)
      p << (p.tellp() > 0 ? " " : "") << "+Add(" << g.values[n.inputs[3]].name << ")";
    if (n.has_attr("act_op")) p << (p.tellp() > 0 ? " " : "") << "+" << n.attr_string("act_op", "");
    if (n.op == ir::Op::Clip || n.has_attr("act_min"))
      if (n.op == ir::Op::Clip || n.attr_string("act_op", "").find("Clip") != std::string::npos) {
        const char* lo = n.op == ir::Op::Clip ? "min" : "act_min";
        const char* hi = n.op == ir::Op::Clip ? "max" : "act_max";
        p << " [" << n.attr_float(lo, 0) << "," << n.attr_float(hi, 0) << "]";
      }
    if (n.attr_int("gate", 0))  // x * f(x) in one table (passes.h, fuse_quantized_gate)
      p << (p.tellp() > 0 ? " " : "") << "times " << g.values[n.inputs[0]].name;
    if (n.has_attr("act_unary"))  // an activation fused after the clamp (passes.h)
      p << (p.tellp() > 0 ? " " : "") << "+" << ir::op_name(static_cast<ir::Op>(n.attr_int("act_unary", 0)));
    r.params = p.str();
    r.macs = rt::node_macs(g, n) / std::max<int64_t>(batch, 1);
    r.kernel = rt::kernel_name(g, n, d);
    // In a quantized model, a compute op that stayed float runs between conversions: say so.
    const ir::OpTraits& t = ir::op_traits(n.op);
    const bool computes = t.int8 == ir::Int8Role::Weighted || t.int8 == ir::Int8Role::Requantizing ||
                          t.int8 == ir::Int8Role::TableLookup || (t.int8 == ir::Int8Role::PassThrough && !t.view);
    // The lowering names why where it knows (a Conv whose float result int8 cannot produce).
    if (quantized_model && computes && out.dtype == ir::DType::Float32) {
      r.fp32_fallback = true;
      r.fp32_reason = n.attr_string("fp32_reason", "");
      r.kernel += " (fp32 fallback)" + (r.fp32_reason.empty() ? "" : ": " + r.fp32_reason);
    }
    const bool u8_in =
        !n.inputs.empty() && n.inputs[0] != ir::kNoValue && g.values[n.inputs[0]].dtype == ir::DType::Uint8;
    r.int8 = t.int8 == ir::Int8Role::Integer || (t.int8 != ir::Int8Role::Dequantize && u8_in);
    rows.push_back(std::move(r));
  }
  return rows;
}

Session::Session(const Model& model, SessionOptions options) {
  if (!model.impl()) throw Error("session: the model is empty (load one first)");
  if (options.threads < 1 || options.threads > 1024)
    throw Error("session: threads must be between 1 and 1024, got " + std::to_string(options.threads));
  impl_ = std::make_unique<detail::SessionImpl>(model.impl(), options);
  if (!options.extra_outputs.empty()) {
    // Extra outputs: a graph of our own, whose output list is extended by the named tensors.
    auto m = std::make_shared<detail::ModelImpl>(*model.impl());
    for (const std::string& name : options.extra_outputs) {
      const int v = m->graph.find_value(name);
      if (v == ir::kNoValue || m->graph.values[v].is_const())
        throw Error(m->graph.source + ": no intermediate tensor named '" + name + "'");
      m->graph.outputs.push_back(v);
    }
    impl_->model = std::move(m);
  }
  const rt::Dispatch& d = options.isa.empty() ? rt::dispatch() : rt::dispatch_for(options.isa);
  impl_->runner = std::make_unique<rt::Runner>(impl_->model->graph, d);
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

const SessionOptions& Session::options() const { return impl_->options; }

std::vector<Tensor> Session::run(const std::vector<Tensor>& inputs) {
  std::vector<Tensor> out;
  run(inputs, out);
  return out;
}

void Session::run(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) {
  impl_->run(inputs.data(), inputs.size(), outputs, nullptr);
}

void Session::run(const TensorView* inputs, size_t count, std::vector<Tensor>& outputs) {
  if (count > 0 && !inputs) throw Error("session: null inputs");
  impl_->run(inputs, count, outputs, nullptr);
}

std::vector<LayerTime> Session::profile(const std::vector<Tensor>& inputs, int iterations) {
  if (iterations < 1) throw Error("profile: iterations must be >= 1");
  std::vector<Tensor> out;
  impl_->run(inputs.data(), inputs.size(), out, nullptr);  // plans for these shapes, warms caches
  const std::vector<std::string> names = impl_->runner->plan().step_names();
  std::vector<std::vector<double>> ms(static_cast<size_t>(iterations), std::vector<double>(names.size()));
  for (int i = 0; i < iterations; ++i) impl_->run(inputs.data(), inputs.size(), out, ms[i].data());
  std::map<std::string, std::string> op_of;
  const ir::Graph& pg = impl_->runner->planned();
  const std::vector<bool> unread = pg.unread_nodes();  // not run (a fused node may carry their name)
  for (size_t i = 0; i < pg.nodes.size(); ++i)
    if (!unread[i]) op_of[pg.nodes[i].name] = ir::op_name(pg.nodes[i].op);
  std::vector<LayerTime> r;
  for (size_t k = 0; k < names.size(); ++k) {
    std::vector<double> t;
    for (const auto& run : ms) t.push_back(run[k]);
    std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
    r.push_back({names[k], op_of.count(names[k]) ? op_of[names[k]] : "", t[t.size() / 2]});
  }
  return r;
}

namespace detail {
template <class In>
void SessionImpl::run(const In* inputs, size_t count, std::vector<Tensor>& outputs, double* step_ms) {
  SessionImpl& s = *this;
  const ir::Graph& g = s.model->graph;
  if (count != g.inputs.size())
    throw Error(g.source + ": model takes " + std::to_string(g.inputs.size()) + " input(s), got " +
                std::to_string(count));
  s.shapes.resize(count);
  for (size_t i = 0; i < count; ++i) s.shapes[i] = inputs[i].shape();
  if (s.runner->prepare(s.shapes)) {
    s.in_ptrs.resize(count);
    s.out_ptrs.resize(g.outputs.size());
  }
  const ir::Graph& pg = s.runner->planned();
  if (outputs.size() != pg.outputs.size()) outputs.resize(pg.outputs.size());
  for (size_t i = 0; i < pg.outputs.size(); ++i) {
    const ir::Shape& want = pg.values[pg.outputs[i]].shape;
    // A default Tensor has shape [] but no storage, so a scalar output (shape [], 1 element)
    // must be compared by size too, or the plan writes through a null pointer (found by
    // fuzz_onnx_importer; tests/fuzz/regressions/onnx/scalar_output.onnx).
    if (outputs[i].shape() != want || outputs[i].numel() != ir::shape_numel(want)) outputs[i] = Tensor(want);
    s.out_ptrs[i] = outputs[i].data();
  }
  for (size_t i = 0; i < count; ++i) s.in_ptrs[i] = inputs[i].data();
  s.runner->run(s.pool, s.in_ptrs, s.out_ptrs, step_ms);
}
}  // namespace detail

TensorView::TensorView(const float* data, std::vector<int64_t> shape) : data_(data), shape_(std::move(shape)) {
  for (int64_t d : shape_)
    if (d < 0) throw Error("tensor view of shape " + ir::shape_str(shape_) + ": dimensions must be >= 0");
  if (!data_ && numel() > 0) throw Error("tensor view of shape " + ir::shape_str(shape_) + " has no data");
}

int64_t TensorView::numel() const { return ir::shape_numel(shape_); }

std::string active_isa() { return rt::isa_name(rt::dispatch().isa); }
std::vector<std::string> supported_isas() {
  std::vector<std::string> r;
  for (rt::Isa i : rt::supported_isas()) r.push_back(rt::isa_name(i));
  return r;
}
std::vector<std::pair<std::string, std::string>> unsupported_isas() { return rt::unsupported_isas(); }
std::string cpu_description() { return rt::cpu_summary(); }

}  // namespace q8

namespace q8 {

const char* calibration_name(Calibration c) {
  switch (c) {
    case Calibration::MinMax: return "minmax";
    case Calibration::Percentile: return "percentile";
    case Calibration::Entropy: return "entropy";
    case Calibration::Mse: return "mse";
  }
  return "?";
}

Calibration parse_calibration(const std::string& name) {
  for (Calibration c : {Calibration::MinMax, Calibration::Percentile, Calibration::Entropy, Calibration::Mse})
    if (name == calibration_name(c)) return c;
  throw Error("calibration method '" + name + "' is not one of minmax, percentile, entropy, mse");
}

Model quantize(const Model& fp32, const std::vector<Tensor>& calibration, const QuantizeOptions& options) {
  if (!fp32.impl()) throw Error("quantize: the model is empty");
  const detail::ModelImpl& m = *fp32.impl();
  const std::string& src = m.source.source;
  if (m.quantized) throw Error(src + ": the model is already quantized");
  if (calibration.size() != m.inputs.size())
    throw Error(src + ": calibration has " + std::to_string(calibration.size()) + " tensor(s), the model has " +
                std::to_string(m.inputs.size()) + " input(s)");
  // Every input's samples lie along axis 0; the rest of each shape must fit the model.
  int64_t n = -1;
  for (size_t i = 0; i < calibration.size(); ++i) {
    const Tensor& t = calibration[i];
    const std::vector<int64_t>& want = m.inputs[i].shape;
    bool fits = t.shape().size() == want.size() && !want.empty();
    for (size_t d = 1; fits && d < want.size(); ++d) fits = want[d] == ir::kUnknownDim || want[d] == t.shape()[d];
    if (!fits)
      throw Error(src + ": calibration data of shape " + ir::shape_str(t.shape()) + " does not fit input '" +
                  m.inputs[i].name + "' " + ir::shape_str(want) + " (samples along axis 0)");
    if (t.shape()[0] < 1) throw Error(src + ": the calibration set is empty");
    if (n >= 0 && t.shape()[0] != n) throw Error(src + ": calibration inputs hold different sample counts");
    n = t.shape()[0];
    for (int64_t e = 0; e < t.numel(); ++e)
      if (!std::isfinite(t.data()[e]))
        throw Error(src + ": calibration sample " + std::to_string(e / (t.numel() / n)) + " of input '" +
                    m.inputs[i].name + "' contains NaN or Inf");
  }
  // One run per sample (batch 1), so per-sample results do not depend on how the data was
  // batched; a model whose batch axis is fixed runs chunks of exactly that size.
  const int64_t fixed = m.inputs[0].shape[0];
  const int64_t chunk = fixed > 0 ? fixed : 1;
  if (n % chunk != 0)
    throw Error(src + ": the model's batch is fixed at " + std::to_string(chunk) + "; give a multiple of " +
                std::to_string(chunk) + " calibration samples, not " + std::to_string(n));
  std::vector<quant::Sample> samples(static_cast<size_t>(n / chunk));
  for (int64_t k = 0; k < n / chunk; ++k)
    for (const Tensor& t : calibration) {
      std::vector<int64_t> shape = t.shape();
      shape[0] = chunk;
      samples[k].shapes.push_back(shape);
      samples[k].data.push_back(t.data() + k * chunk * (t.numel() / n));
    }
  quant::Options o;
  o.method = calib::parse_method(calibration_name(options.method));
  o.percentile = options.percentile;
  if (!(options.percentile > 50.0 && options.percentile <= 100.0))
    throw Error("percentile must be in (50, 100], got " + std::to_string(options.percentile));
  o.per_channel = options.per_channel;
  o.exclude.insert(options.exclude.begin(), options.exclude.end());
  o.threads = options.threads;
  o.progress = options.progress;
  return make_model(quant::quantize(m.source, samples, o));
}

}  // namespace q8
