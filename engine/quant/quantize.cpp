#include "quant/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>

#include "ir/op_traits.h"
#include "ir/shape_inference.h"
#include "passes/passes.h"
#include "q8/error.h"
#include "runtime/dispatch.h"
#include "runtime/plan.h"
#include "runtime/runner.h"
#include "runtime/thread_pool.h"

namespace q8::quant {

using ir::ConstTensor;
using ir::ConstTensorPtr;
using ir::DType;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

namespace {

const ConstTensor* const_of(const Graph& g, int v) { return v == ir::kNoValue ? nullptr : g.values[v].constant.get(); }
// A float tensor computed at run time (not a weight, nor an int64 shape computation).
bool is_activation(const Graph& g, int v) {
  return v != ir::kNoValue && !g.values[v].is_const() && !g.values[v].derived && g.values[v].dtype == DType::Float32;
}

// Whether input k of an int8 node is data that runs in uint8: every activation of a
// requantizing op (Add, Mul, Concat), the first input of the others (a Slice's bounds or a
// Reshape's target are parameters, even when computed from shapes at run time).
bool is_data_input(const Graph& g, const Node& n, size_t k) {
  if (!is_activation(g, n.inputs[k])) return false;
  return k == 0 || ir::op_traits(n.op).int8 == ir::Int8Role::Requantizing;
}

enum class Role {
  None,         // stays fp32
  Compute,      // Conv, Gemm, MatMul, Add: integer op, output requantized
  Pool,         // AveragePool, GlobalAveragePool: requantized on uint8
  PassThrough,  // MaxPool, Flatten, Reshape: uint8 in, uint8 out with the input's quantization
  Absorbed,     // Relu/Clip folded into the clamp of the Compute node before it
};

struct Selection {
  std::vector<Role> role;
  std::vector<int> out;  // per node: the value carrying its (quantized) result, after an absorbed Relu/Clip
};

// A weighted op's constant weights (and bias) are float32 tensors of the shape its int8 kernel takes.
bool weights_quantizable(const Graph& g, const Node& n, const std::vector<Shape>& shapes) {
  switch (n.op) {
    case Op::Conv: {
      const ConstTensor* w = const_of(g, n.inputs[1]);
      const ConstTensor* b = n.inputs.size() > 2 ? const_of(g, n.inputs[2]) : nullptr;
      return is_activation(g, n.inputs[0]) && w && w->dtype == DType::Float32 && w->dims.size() == 4 &&
             (n.inputs.size() < 3 || n.inputs[2] == ir::kNoValue || (b && b->dtype == DType::Float32));
    }
    case Op::Gemm: {
      const ConstTensor* b = const_of(g, n.inputs[1]);
      if (!is_activation(g, n.inputs[0]) || !b || b->dtype != DType::Float32 || b->dims.size() != 2) return false;
      if (n.attr_int("transA", 0) != 0) return false;
      if (n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue) {
        const ConstTensor* c = const_of(g, n.inputs[2]);
        const int64_t N = n.attr_int("transB", 0) ? b->dims[0] : b->dims[1];
        if (!c || c->dtype != DType::Float32 || (c->numel() != N && c->numel() != 1)) return false;
      }
      return std::isfinite(n.attr_float("alpha", 1.f)) && n.attr_float("alpha", 1.f) > 0.f;
    }
    case Op::MatMul: {
      const ConstTensor* b = const_of(g, n.inputs[1]);
      return is_activation(g, n.inputs[0]) && b && b->dtype == DType::Float32 && b->dims.size() == 2 &&
             shapes[n.inputs[0]].size() >= 2;
    }
    case Op::Relu:
    case Op::Clip:
    case Op::MaxPool:
    case Op::AveragePool:
    case Op::GlobalAveragePool:
    case Op::Flatten:
    case Op::Add:
    case Op::BatchNormalization:
    case Op::Identity:
    case Op::Dropout:
    case Op::Constant:
    case Op::Reshape:
    case Op::Pad:
    case Op::QuantizeLinear:
    case Op::DequantizeLinear:
    case Op::QLinearConv:
    case Op::QLinearMatMul:
    case Op::QLinearAdd:
    case Op::QLinearGlobalAveragePool:
    case Op::QGemm:
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
    case Op::Transpose: return false;  // not weighted ops
    case Op::Resize: return false;     // not a weighted op
    case Op::ConvTranspose: {          // weights [C][K/group][KH][KW]
      const ConstTensor* w = const_of(g, n.inputs[1]);
      const ConstTensor* b = n.inputs.size() > 2 ? const_of(g, n.inputs[2]) : nullptr;
      return is_activation(g, n.inputs[0]) && w && w->dtype == DType::Float32 && w->dims.size() == 4 &&
             ir::conv_transpose_phase_strides(n) &&
             (n.inputs.size() < 3 || n.inputs[2] == ir::kNoValue || (b && b->dtype == DType::Float32));
    }
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
    case Op::QLinearSigmoid:
    case Op::QLinearLeakyRelu:
    case Op::QuantizedDenseFloat:
    case Op::QuantizedConvTranspose:
    case Op::Gelu:
    case Op::QLinearConcat:
    case Op::QLinearMul:
    case Op::QLinearAveragePool:
    case Op::QuantizedConvFloat:
    case Op::ChannelShuffle: return false;  // not weighted ops
  }
  return false;
}

// Whether the quantizer can give node n uint8 inputs: its op has an int8 form (op_traits) and this
// node's operands fit it.
bool quantizable(const Graph& g, const Node& n, const std::vector<Shape>& shapes) {
  switch (ir::op_traits(n.op).int8) {
    case ir::Int8Role::Weighted: return weights_quantizable(g, n, shapes);
    case ir::Int8Role::Requantizing:
    case ir::Int8Role::TableLookup:
      for (int v : n.inputs)
        if (!is_activation(g, v)) return false;
      if (n.op == Op::ReduceMean) return ir::is_spatial_mean(g, n, shapes[n.inputs[0]].size());
      // Add's integer kernel takes two activations of one shape; Mul's also a per-channel term
      // (squeeze-excitation's x * s[N,C,1,1]); no other broadcasting.
      if (n.op != Op::Add && n.op != Op::Mul) return true;
      if (shapes[n.inputs[0]] == shapes[n.inputs[1]]) return true;
      return n.op == Op::Mul && (ir::is_per_channel_term(shapes[n.inputs[0]], shapes[n.inputs[1]]) ||
                                 ir::is_per_channel_term(shapes[n.inputs[1]], shapes[n.inputs[0]]));
    case ir::Int8Role::PassThrough:
      if (!is_activation(g, n.inputs[0])) return false;
      if (n.op == Op::Pad) {  // zero padding only: the zero point represents it exactly
        if (n.attr_string("mode", "constant") != "constant") return false;
        const ConstTensor* v = n.inputs.size() > 2 ? const_of(g, n.inputs[2]) : nullptr;
        if (n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue && (!v || v->numel() != 1 || v->as_double(0) != 0.0))
          return false;
      }
      // Nearest Resize copies bytes; linear Resize interpolates and stays fp32.
      if (n.op == Op::Resize && n.attr_string("mode", "nearest") != "nearest") return false;
      return true;
    case ir::Int8Role::Clamp:      // absorbed by the op before it (select())
    case ir::Int8Role::Fp32Only:   // folded away before quantization, or no int8 form
    case ir::Int8Role::ShapeOnly:  // folded at load
    case ir::Int8Role::Quantize:   // already quantized models are not quantized again
    case ir::Int8Role::Dequantize:
    case ir::Int8Role::QuantizedFormat:
    case ir::Int8Role::Integer: return false;
  }
  return false;
}

// The Add after MatMul n that adds a constant bias of one value per output column (its sole
// reader), or -1.
int matmul_bias_add(const Graph& g, const Node& n, const ir::ConsumerIndex& index) {
  if (n.op != Op::MatMul) return -1;
  const ConstTensor* w = const_of(g, n.inputs[1]);
  const int r = index.sole_reader(g, n.outputs[0]);
  if (!w || w->dtype != DType::Float32 || w->dims.size() != 2 || r < 0 || g.nodes[r].op != Op::Add) return -1;
  const Node& add = g.nodes[r];
  const ConstTensor* b = const_of(g, add.inputs[0] == n.outputs[0] ? add.inputs[1] : add.inputs[0]);
  return b && b->dtype == DType::Float32 && ir::is_column_term(w->dims[1], b->dims) ? r : -1;
}

bool is_int8(Role r) { return r == Role::Compute || r == Role::Pool || r == Role::PassThrough; }

Selection select(const Graph& g, const std::vector<Shape>& shapes, const Options& o) {
  Selection s;
  s.role.assign(g.nodes.size(), Role::None);
  s.out.assign(g.nodes.size(), ir::kNoValue);
  const ir::ConsumerIndex index(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (o.exclude.count(n.name) || s.role[i] == Role::Absorbed || !quantizable(g, n, shapes)) continue;
    s.out[i] = n.outputs[0];
    const ir::OpTraits& t = ir::op_traits(n.op);
    if (t.int8 == ir::Int8Role::PassThrough) {
      s.role[i] = Role::PassThrough;
    } else if (t.int8 == ir::Int8Role::Requantizing && !t.absorbs_activation) {
      s.role[i] = Role::Pool;
    } else {
      s.role[i] = Role::Compute;
      // A MatMul's bias Add (a Linear on a rank > 2 input) stays a float Add in the file; the
      // lowering folds it into the integer op's int32 bias.
      if (const int b = matmul_bias_add(g, n, index); b >= 0 && !o.exclude.count(g.nodes[b].name)) {
        s.role[b] = Role::Absorbed;
        s.out[i] = g.nodes[b].outputs[0];
      }
      // A chain of Relu/Clip after the op (F.relu6 exports as Relu then Clip) becomes its clamp.
      for (int r = index.sole_reader(g, s.out[i]);
           r >= 0 && !o.exclude.count(g.nodes[r].name) && ir::op_traits(g.nodes[r].op).int8 == ir::Int8Role::Clamp &&
           g.nodes[r].inputs.size() == 1;
           r = index.sole_reader(g, s.out[i])) {
        s.role[r] = Role::Absorbed;
        s.out[i] = g.nodes[r].outputs[0];
      }
    }
  }
  // A table lookup whose result no int8 node reads would only round its input to uint8 on the way
  // to fp32 ops (a decomposed LayerNorm's Sqrt): it stays fp32. Readers follow in node order, so
  // one backward pass settles chains of them.
  for (size_t i = g.nodes.size(); i-- > 0;) {
    if (s.role[i] != Role::Compute || ir::op_traits(g.nodes[i].op).int8 != ir::Int8Role::TableLookup) continue;
    bool int8_reader = false;
    for (int r : index.readers(g, s.out[i])) int8_reader |= is_int8(s.role[r]);
    if (!int8_reader) s.role[i] = Role::None;
  }
  return s;
}

std::shared_ptr<ConstTensor> make_tensor(DType t, Shape dims) {
  auto c = std::make_shared<ConstTensor>();
  c->dtype = t;
  c->dims = std::move(dims);
  c->bytes.assign(static_cast<size_t>(ir::shape_numel(c->dims)) * ir::dtype_size(t), 0);
  return c;
}

class Rewriter {
 public:
  explicit Rewriter(Graph& g) : g_(g) {
    for (const ir::Value& v : g_.values) names_.insert(v.name);
    for (const Node& n : g_.nodes) node_names_.insert(n.name);
  }

  // `base`, or base_K with the smallest K that is free. Every K below the one remembered per base
  // is taken already, so the search resumes there: names stay the same, and a model whose nodes
  // share one name (or one weight) costs linear time, not quadratic.
  std::string unique(const std::string& base, bool node = false) {
    std::set<std::string>& used = node ? node_names_ : names_;
    int& k = (node ? node_next_ : next_)[base];
    std::string n = k == 0 ? base : base + "_" + std::to_string(k);
    while (used.count(n)) n = base + "_" + std::to_string(++k);
    ++k;
    used.insert(n);
    return n;
  }
  int constant(std::string base, ConstTensorPtr t) {
    ir::Value v;
    v.name = unique(base);
    v.dtype = t->dtype;
    v.shape = t->dims;
    v.has_shape = true;
    v.constant = std::move(t);
    return g_.add_value(std::move(v));
  }
  int activation(std::string base, DType t) {
    ir::Value v;
    v.name = unique(base);
    v.dtype = t;
    return g_.add_value(std::move(v));
  }
  void node(Op op, const std::string& base, std::vector<int> in, int out, int64_t axis = -999) {
    Node n;
    n.op = op;
    n.name = unique(base, true);
    n.inputs = std::move(in);
    n.outputs = {out};
    if (axis != -999) {
      ir::Attribute a;
      a.kind = ir::Attribute::Kind::Int;
      a.i = axis;
      n.attrs["axis"] = a;
    }
    g_.nodes.push_back(std::move(n));
  }

  // x -> QuantizeLinear -> DequantizeLinear; returns the dequantized value.
  int fake_quantize(int x, calib::QuantParams qp) {
    const std::string name = g_.values[x].name;  // a copy: add_value may move the values
    auto s = make_tensor(DType::Float32, {});
    s->mutable_data<float>()[0] = qp.scale;
    auto z = make_tensor(DType::Uint8, {});
    z->mutable_data<uint8_t>()[0] = qp.zero_point;
    const int sv = constant(name + "_scale", s), zv = constant(name + "_zero_point", z);
    const int q = activation(name + "_quantized", DType::Uint8);
    const int dq = activation(name + "_dequantized", DType::Float32);
    node(Op::QuantizeLinear, name + "_QuantizeLinear", {x, sv, zv}, q);
    node(Op::DequantizeLinear, name + "_DequantizeLinear", {q, sv, zv}, dq);
    return dq;
  }

  // Symmetric int8 weights, per channel along `axis` (or per tensor): s = max|w| / 127,
  // q = clamp(round(w / s), -127, 127). Returns the dequantized value and the scales.
  int quantize_weights(std::string base, const ConstTensor& w, int64_t axis, bool per_channel, float extra_scale,
                       std::vector<float>& scales) {
    const int64_t C = per_channel ? w.dims[axis] : 1;
    int64_t inner = 1;
    for (size_t d = axis + 1; d < w.dims.size(); ++d) inner *= w.dims[d];
    const int64_t total = w.numel();
    auto channel = [&](int64_t e) { return per_channel ? (e / inner) % C : 0; };
    std::vector<float> amax(static_cast<size_t>(C), 0.f);
    for (int64_t e = 0; e < total; ++e) {
      const float v = w.data<float>()[e] * extra_scale;
      if (!std::isfinite(v))
        throw Error(g_.source + ": weights '" + base + "' hold " + (std::isnan(v) ? "NaN" : "an infinity") +
                    ", which int8 cannot represent");
      amax[channel(e)] = std::max(amax[channel(e)], std::fabs(v));
    }
    scales.resize(static_cast<size_t>(C));
    // A channel whose largest weight is zero or so small that amax / 127 is not a normal float
    // quantizes to zeros with scale 1: its weights are below anything int8 can hold anyway.
    for (int64_t c = 0; c < C; ++c) scales[c] = std::isnormal(amax[c] / 127.f) ? amax[c] / 127.f : 1.f;
    auto q = make_tensor(DType::Int8, w.dims);
    for (int64_t e = 0; e < total; ++e) {
      const float v = std::nearbyint(w.data<float>()[e] * extra_scale / scales[channel(e)]);
      q->mutable_data<int8_t>()[e] = static_cast<int8_t>(std::min(std::max(v, -127.f), 127.f));
    }
    auto s = make_tensor(DType::Float32, per_channel ? Shape{C} : Shape{});
    std::memcpy(s->mutable_data<float>(), scales.data(), scales.size() * 4);
    auto z = make_tensor(DType::Int8, per_channel ? Shape{C} : Shape{});
    const int qv = constant(base + "_quantized", q), sv = constant(base + "_scale", s),
              zv = constant(base + "_zero_point", z);
    const int dq = activation(base + "_dequantized", DType::Float32);
    node(Op::DequantizeLinear, base + "_DequantizeLinear", {qv, sv, zv}, dq, per_channel ? axis : -999);
    return dq;
  }

  // int32 bias in the accumulator's scale s_in * s_w[c] (stored as that float product).
  int quantize_bias(std::string base, const float* b, size_t bn, float b_mul, float s_in, const std::vector<float>& s_w,
                    size_t channels) {
    auto q = make_tensor(DType::Int32, {static_cast<int64_t>(channels)});
    auto s = make_tensor(DType::Float32, {static_cast<int64_t>(channels)});
    for (size_t c = 0; c < channels; ++c) {
      const float acc_scale = s_in * s_w[s_w.size() == 1 ? 0 : c];
      const double v = std::nearbyint(static_cast<double>(b[bn == 1 ? 0 : c]) * b_mul / acc_scale);
      q->mutable_data<int32_t>()[c] = static_cast<int32_t>(std::min(std::max(v, -2147483647.0), 2147483647.0));
      s->mutable_data<float>()[c] = acc_scale;
    }
    auto z = make_tensor(DType::Int32, {static_cast<int64_t>(channels)});
    const int qv = constant(base + "_quantized", q), sv = constant(base + "_scale", s),
              zv = constant(base + "_zero_point", z);
    const int dq = activation(base + "_dequantized", DType::Float32);
    node(Op::DequantizeLinear, base + "_DequantizeLinear", {qv, sv, zv}, dq, 0);
    return dq;
  }

 private:
  Graph& g_;
  std::set<std::string> names_, node_names_;
  std::map<std::string, int> next_, node_next_;  // per base: the next suffix to try
};

// Reorders nodes so every node follows the producers of its inputs (new nodes were appended).
void topological_sort(Graph& g) {
  const std::vector<int> producer = g.producers();
  std::vector<int> state(g.nodes.size(), 0), order;
  std::function<void(int)> visit = [&](int i) {
    if (state[i] == 2) return;
    if (state[i] == 1) throw Error(g.source + ": internal: cycle while quantizing");
    state[i] = 1;
    for (int v : g.nodes[i].inputs)
      if (v != ir::kNoValue && producer[v] >= 0) visit(producer[v]);
    state[i] = 2;
    order.push_back(i);
  };
  for (size_t i = 0; i < g.nodes.size(); ++i) visit(static_cast<int>(i));
  std::vector<Node> sorted;
  for (int i : order) sorted.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(sorted);
}

}  // namespace

std::vector<std::string> quantizable_nodes(const Graph& g, const Options& o) {
  Graph s = g;
  ir::infer_shapes(s, ir::input_shapes_for_batch(s, 1));
  std::vector<Shape> shapes;
  for (const ir::Value& v : s.values) shapes.push_back(v.shape);
  const Selection sel = select(s, shapes, o);
  std::vector<std::string> r;
  for (size_t i = 0; i < s.nodes.size(); ++i)
    if (is_int8(sel.role[i])) r.push_back(s.nodes[i].name);
  return r;
}

namespace {

// x @ W + b, as PyTorch exports a Linear on a flattened input, is Gemm(x, W, b) when x is a
// matrix: one integer op with an int32 bias instead of an int8 MatMul and a float Add.
Graph fuse_matmul_bias(const Graph& src, const std::vector<Shape>& input_shapes) {
  Graph g = src;
  Graph shaped = src;
  ir::infer_shapes(shaped, input_shapes);
  std::vector<bool> dead(g.nodes.size(), false);
  ir::ConsumerIndex index(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    if (n.op != Op::MatMul || shaped.values[n.inputs[0]].shape.size() != 2) continue;
    const int r = matmul_bias_add(g, n, index);
    if (r < 0) continue;
    const Node& add = g.nodes[r];
    const int other = add.inputs[0] == n.outputs[0] ? add.inputs[1] : add.inputs[0];
    // Gemm's C: one value per column, of rank 2 at most.
    const ConstTensor* b = const_of(g, other);
    if (b->dims.size() > 2 || b->numel() != const_of(g, n.inputs[1])->dims[1]) continue;
    n.op = Op::Gemm;
    n.inputs.push_back(other);
    n.outputs[0] = add.outputs[0];
    index.add(g, static_cast<int>(i));
    dead[r] = true;
  }
  g.compact(dead);
  return g;
}

// ConvNeXt's layer scale, MatMul(x, W) + b -> [Transpose(0,3,1,2)] -> Mul(gamma), with gamma one
// constant per output column of W (shaped [N], or [N,1,1] after the Transpose to NCHW), is
// MatMul(x, W * gamma) + b * gamma: the Mul folds into the weights, and the Transpose's result is
// the Mul's. Only with per-column weight scales: one scale for the whole W * gamma would be set by
// its largest column.
Graph fold_layer_scale(const Graph& src, bool per_channel) {
  Graph g = src;
  if (!per_channel) return g;
  std::vector<bool> dead(g.nodes.size(), false);
  ir::ConsumerIndex index(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (g.nodes[i].op != Op::MatMul) continue;
    const int add = matmul_bias_add(g, g.nodes[i], index);
    if (add < 0) continue;
    int last = add;  // the node whose result the Mul scales
    int r = index.sole_reader(g, g.nodes[add].outputs[0]);
    bool nchw = false;
    if (r >= 0 && g.nodes[r].op == Op::Transpose && g.nodes[r].attr_ints("perm") == std::vector<int64_t>{0, 3, 1, 2}) {
      nchw = true;
      last = r;
      r = index.sole_reader(g, g.nodes[r].outputs[0]);
    }
    if (r < 0 || g.nodes[r].op != Op::Mul) continue;
    const Node& mul = g.nodes[r];
    const int gv = mul.inputs[0] == g.nodes[last].outputs[0] ? mul.inputs[1] : mul.inputs[0];
    const ConstTensor* gamma = const_of(g, gv);
    const ConstTensor* w = const_of(g, g.nodes[i].inputs[1]);
    const int64_t K = w->dims[0], N = w->dims[1];
    if (!gamma || gamma->dtype != DType::Float32 || gamma->numel() != N || gamma->dims.empty()) continue;
    // Along the output columns: the last axis, or after the Transpose the channel axis. No more axes
    // than the scaled tensor has (a broadcast that adds axes would change the result's shape): [N]
    // on the MatMul's result, [N,1,1] or [1,N,1,1] on the Transpose's 4-D one.
    if (nchw ? gamma->dims.size() < 3 || gamma->dims.size() > 4 : gamma->dims.size() != 1) continue;
    const size_t axis = gamma->dims.size() - (nchw ? 3 : 1);
    bool along = true;
    for (size_t d = 0; d < gamma->dims.size(); ++d) along &= d == axis || gamma->dims[d] == 1;
    if (!along) continue;
    const Node& a = g.nodes[add];
    const int bv = a.inputs[0] == g.nodes[i].outputs[0] ? a.inputs[1] : a.inputs[0];
    const ConstTensor* b = const_of(g, bv);
    auto nw = std::make_shared<ConstTensor>(*w);
    auto nb = make_tensor(DType::Float32, {N});
    for (int64_t n = 0; n < N; ++n) {
      const float s = gamma->data<float>()[n];
      for (int64_t k = 0; k < K; ++k) nw->mutable_data<float>()[k * N + n] *= s;
      nb->mutable_data<float>()[n] = b->data<float>()[b->numel() == 1 ? 0 : n] * s;
    }
    const std::string name = g.nodes[i].name;
    const int wid = g.add_value({g.unused_value_name(name + "/scaled_weight"), DType::Float32, nw->dims, true, nw});
    const int bid = g.add_value({g.unused_value_name(name + "/scaled_bias"), DType::Float32, nb->dims, true, nb});
    g.nodes[i].inputs[1] = wid;
    Node& an = g.nodes[add];
    (an.inputs[0] == g.nodes[i].outputs[0] ? an.inputs[1] : an.inputs[0]) = bid;
    g.nodes[last].outputs[0] = g.nodes[r].outputs[0];
    dead[r] = true;
    index.add(g, static_cast<int>(i));
    index.add(g, add);
  }
  g.compact(dead);
  return g;
}

// A BatchNormalization that no Conv absorbed (DenseNet's, after each Concat) is y = a[c] * x + b[c]
// per channel, a = gamma / sqrt(var + eps), b = beta - mean * a: the depthwise 1x1 Conv with those
// weights and bias. As one, it runs in int8 (a single weight per channel quantizes to +-127 at
// scale |a| / 127, so a[c] itself) and the Relu after it becomes its clamp, so the tensors on both
// sides stay uint8. The node keeps its name.
Graph batch_norm_as_depthwise_conv(const Graph& src, const std::vector<Shape>& shapes) {
  Graph g = src;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    if (n.op != Op::BatchNormalization || n.outputs.size() != 1 || shapes[n.inputs[0]].size() != 4) continue;
    const int64_t C = shapes[n.inputs[0]][1];
    const ConstTensor *gamma = const_of(g, n.inputs[1]), *beta = const_of(g, n.inputs[2]),
                      *mean = const_of(g, n.inputs[3]), *var = const_of(g, n.inputs[4]);
    auto fits = [C](const ConstTensor* t) { return t && t->dtype == DType::Float32 && t->numel() == C; };
    if (!fits(gamma) || !fits(beta) || !fits(mean) || !fits(var)) continue;
    const std::vector<float> a = ir::batch_norm_scale(n, *gamma, *var);
    auto w = std::make_shared<ConstTensor>();
    w->dtype = DType::Float32;
    w->dims = {C, 1, 1, 1};
    w->bytes.resize(static_cast<size_t>(C) * 4);
    auto b = std::make_shared<ConstTensor>();
    b->dtype = DType::Float32;
    b->dims = {C};
    b->bytes.resize(static_cast<size_t>(C) * 4);
    for (int64_t c = 0; c < C; ++c) {
      w->mutable_data<float>()[c] = a[c];
      b->mutable_data<float>()[c] = beta->data<float>()[c] - mean->data<float>()[c] * a[c];
    }
    const std::string name = n.name;
    const int x = n.inputs[0];
    const int wv = g.add_value({g.unused_value_name(name + "/depthwise_weight"), DType::Float32, w->dims, true, w});
    const int bv = g.add_value({g.unused_value_name(name + "/depthwise_bias"), DType::Float32, b->dims, true, b});
    Node& conv = g.nodes[i];
    conv.op = Op::Conv;
    conv.inputs = {x, wv, bv};
    conv.attrs.clear();
    conv.attrs["group"] = ir::Attribute{ir::Attribute::Kind::Int, C, 0.f, {}, {}, {}, {}};
    conv.attrs["kernel_shape"] = ir::Attribute{ir::Attribute::Kind::Ints, 0, 0.f, {1, 1}, {}, {}, {}};
  }
  return g;
}

// Every --exclude name must name a node of the model as given.
void check_excludes(const Graph& original, const Graph& src, const Options& o) {
  for (const std::string& name : o.exclude) {
    bool found = false;
    for (const Node& n : original.nodes) found |= n.name == name;
    if (!found) throw Error(src.source + ": --exclude names node '" + name + "', which the model does not have");
  }
}

// The tensors to observe during calibration, and which tensors share another's quantization.
struct Observed {
  std::vector<int> alias;   // value -> value whose quantization it shares, or -1
  std::vector<int> values;  // the observed values, in value order: each root, and each tensor
                            // joined by a Concat (whose root's range is the union of theirs)

  // The value whose quantization v uses.
  int root(int v) const {
    while (alias[v] >= 0) v = alias[v];
    return v;
  }
};

// Tensors that need a quantization: activation inputs of int8 nodes and the results of
// Compute/Pool nodes that int8 nodes read. A pass-through result shares its input's.
Observed observed_tensors(const Graph& src, const Selection& sel) {
  Observed ob;
  ob.alias.assign(src.values.size(), -1);
  std::vector<bool> needed(src.values.size(), false);
  for (size_t i = 0; i < src.nodes.size(); ++i) {
    if (!is_int8(sel.role[i])) continue;
    const Node& n = src.nodes[i];
    for (size_t k = 0; k < n.inputs.size(); ++k)
      if (is_data_input(src, n, k)) needed[n.inputs[k]] = true;
    if (sel.role[i] == Role::PassThrough) ob.alias[n.outputs[0]] = n.inputs[0];
  }
  // A Concat read by int8 nodes gives its inputs its own quantization, so joining them is a copy
  // of bytes, and their producers requantize straight to it. A tensor joined by two Concats ties
  // both (DenseNet's blocks share one scale). A Concat of int8 results that is a model output
  // (a detector's heads) is joined the same way and dequantized once (rewrite()).
  std::vector<bool> joined(src.values.size(), false);
  for (size_t i = 0; i < src.nodes.size(); ++i) {
    const Node& n = src.nodes[i];
    if (n.op == Op::Concat && is_int8(sel.role[i]) && src.is_graph_output(n.outputs[0])) needed[n.outputs[0]] = true;
    if (n.op != Op::Concat || !is_int8(sel.role[i]) || !needed[n.outputs[0]]) continue;
    const int out = ob.root(n.outputs[0]);
    for (int v : n.inputs) {
      const int r = ob.root(v);
      if (r != out) ob.alias[r] = out;
      joined[r] = joined[v] = true;
    }
  }
  // Only results read by int8 nodes are quantized; others (e.g. the logits) stay float.
  for (size_t v = 0; v < needed.size(); ++v)
    if (needed[v] && (ob.alias[v] < 0 || joined[v])) ob.values.push_back(static_cast<int>(v));
  return ob;
}

// Calibration: run the fp32 graph with every observed tensor as an extra output, twice over the
// samples (pass 1: extremes, pass 2: histograms), and derive each tensor's range.
std::map<int, calib::Range> calibrate(const Graph& src, const std::vector<int>& observed,
                                      const std::vector<Sample>& samples, const Options& o) {
  Graph cg = src;
  const size_t first_extra = cg.outputs.size();
  for (int v : observed) cg.outputs.push_back(v);
  ir::lower_for_runtime(cg);
  const rt::Dispatch& d = rt::dispatch();
  rt::Runner runner(cg, d);
  rt::ThreadPool pool(std::max(1, o.threads));
  std::vector<calib::Observer> obs(observed.size());
  std::vector<std::vector<float>> outs;
  const size_t runs = 2 * samples.size();
  size_t done = 0;
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t k = 0; k < samples.size(); ++k) {
      const Sample& s = samples[k];
      if (runner.prepare(s.shapes)) {
        outs.clear();
        for (size_t v = 0; v < runner.planned().outputs.size(); ++v) outs.emplace_back(runner.output_numel(v));
      }
      std::vector<float*> out_ptrs;
      for (auto& b : outs) out_ptrs.push_back(b.data());
      runner.run(pool, s.data, out_ptrs);
      for (size_t t = 0; t < observed.size(); ++t) {
        const std::vector<float>& x = outs[first_extra + t];
        try {
          if (pass == 0)
            obs[t].observe_sample(x.data(), x.size());
          else
            obs[t].observe_histogram(x.data(), x.size());
        } catch (const Error& e) {
          throw Error(src.source + ": calibration sample " + std::to_string(k) + ", tensor '" +
                      src.values[observed[t]].name + "': " + e.what());
        }
      }
      if (o.progress) o.progress(++done, runs);
    }
    if (pass == 0)
      for (auto& ob : obs) ob.begin_histogram();
  }
  std::map<int, calib::Range> ranges;
  for (size_t t = 0; t < observed.size(); ++t) ranges[observed[t]] = obs[t].range(o.method, o.percentile);
  return ranges;
}

// The weights (and bias) of int8 node n, whose activation input has scale s_in, replaced in
// `in` by their quantized and dequantized forms.
void quantize_operands(Rewriter& rw, const Graph& q, const Node& n, float s_in, const Options& o,
                       std::vector<int>& in) {
  std::vector<float> s_w;
  if (n.op == Op::Conv) {
    const ConstTensor& w = *const_of(q, n.inputs[1]);
    in[1] = rw.quantize_weights(q.values[n.inputs[1]].name, w, 0, o.per_channel, 1.f, s_w);
    if (const ConstTensor* b = n.inputs.size() > 2 ? const_of(q, n.inputs[2]) : nullptr)
      in[2] = rw.quantize_bias(q.values[n.inputs[2]].name, b->data<float>(), b->numel(), 1.f, s_in, s_w, w.dims[0]);
  } else if (n.op == Op::ConvTranspose) {
    // Output channel grp * Kg + kk has the scale of weight index kk along axis 1 (ONNX's layout
    // [C][Kg][KH][KW]; ONNX Runtime's quantize_static uses axis 1 too), shared by the groups.
    const ConstTensor& w = *const_of(q, n.inputs[1]);
    in[1] = rw.quantize_weights(q.values[n.inputs[1]].name, w, 1, o.per_channel, 1.f, s_w);
    const size_t Kg = static_cast<size_t>(w.dims[1]), K = Kg * static_cast<size_t>(n.attr_int("group", 1));
    std::vector<float> s_k(K);
    for (size_t c = 0; c < K; ++c) s_k[c] = s_w[s_w.size() == 1 ? 0 : c % Kg];
    if (const ConstTensor* b = n.inputs.size() > 2 ? const_of(q, n.inputs[2]) : nullptr)
      in[2] = rw.quantize_bias(q.values[n.inputs[2]].name, b->data<float>(), b->numel(), 1.f, s_in, s_k, K);
  } else if (n.op == Op::Gemm || n.op == Op::MatMul) {
    const ConstTensor& w = *const_of(q, n.inputs[1]);
    const bool tb = n.op == Op::Gemm && n.attr_int("transB", 0) != 0;
    // alpha * A * B + beta * C = A * (alpha * B) + (beta * C): both folded, attributes reset.
    const float alpha = n.op == Op::Gemm ? n.attr_float("alpha", 1.f) : 1.f;
    in[1] = rw.quantize_weights(q.values[n.inputs[1]].name, w, tb ? 0 : 1, o.per_channel, alpha, s_w);
    const size_t N = static_cast<size_t>(tb ? w.dims[0] : w.dims[1]);
    if (const ConstTensor* c = n.inputs.size() > 2 ? const_of(q, n.inputs[2]) : nullptr)
      in[2] = rw.quantize_bias(q.values[n.inputs[2]].name, c->data<float>(), c->numel(), n.attr_float("beta", 1.f),
                               s_in, s_w, N);
  }
}

// Rewrite: fake-quantize each needed tensor for its int8 readers; quantize weights and biases.
Graph rewrite(const Graph& src, const Selection& sel, const Observed& ob,
              const std::map<int, calib::QuantParams>& params, const Options& o) {
  Graph q = src;
  Rewriter rw(q);
  std::map<int, int> dq_of;  // value -> its dequantized twin
  auto dequantized = [&](int v) {
    auto it = dq_of.find(v);
    if (it != dq_of.end()) return it->second;
    const int dq = rw.fake_quantize(v, params.at(ob.root(v)));
    dq_of[v] = dq;
    return dq;
  };
  const ir::ConsumerIndex src_readers(src);
  for (size_t i = 0; i < src.nodes.size(); ++i) {
    if (!is_int8(sel.role[i])) continue;
    const Node n = q.nodes[i];  // copy: the rewriter appends to q.nodes
    std::vector<int> in = n.inputs;
    for (size_t k = 0; k < in.size(); ++k)
      if (is_data_input(src, n, k)) in[k] = dequantized(n.inputs[k]);
    const float s_in = params.at(ob.root(n.inputs[0])).scale;
    quantize_operands(rw, q, n, s_in, o, in);
    Node& target = q.nodes[i];
    target.inputs = in;
    if (n.op == Op::Gemm) {
      target.attrs.erase("alpha");
      target.attrs.erase("beta");
    }
    // The result (after an absorbed Relu/Clip) is fake-quantized for its int8 readers.
    if (sel.role[i] != Role::PassThrough && sel.role[i] != Role::None) {
      const int out = sel.out[i];
      bool int8_reader = false;
      for (int c : src_readers.readers(src, out)) int8_reader |= is_int8(sel.role[c]);
      if (int8_reader && !params.count(ob.root(out))) {
        // A result read by int8 nodes was observed above (it is one of their inputs).
        throw Error(src.source + ": internal: unobserved tensor '" + src.values[out].name + "'");
      }
    }
  }
  // An int8 Concat that is a model output: the output is its dequantized result, under the
  // model's name for it.
  for (size_t i = 0; i < src.nodes.size(); ++i) {
    const int out = src.nodes[i].outputs[0];
    if (src.nodes[i].op != Op::Concat || !is_int8(sel.role[i]) || !src.is_graph_output(out)) continue;
    const int dq = dequantized(out);
    const std::string name = q.values[out].name;
    q.values[out].name = rw.unique(name + "_joined");
    q.values[dq].name = name;
    for (int& v : q.outputs)
      if (v == out) v = dq;
  }
  // Int8 readers of a Compute/Pool result must read it through Q/DQ even when the result
  // feeds only pass-throughs; the loop above already routed every int8 node's inputs.
  topological_sort(q);
  return q;
}

}  // namespace

Graph quantize(const Graph& original, const std::vector<Sample>& samples, const Options& o) {
  if (samples.empty()) throw Error(original.source + ": the calibration set is empty");
  Graph src = fold_layer_scale(fuse_matmul_bias(original, samples[0].shapes), o.per_channel);
  ir::fuse_gelu(src);
  check_excludes(original, src, o);
  // Shapes (for the same-shape test of Add) at the calibration samples' shapes.
  Graph shaped = src;
  ir::infer_shapes(shaped, samples[0].shapes);
  std::vector<Shape> shapes;
  for (const ir::Value& v : shaped.values) shapes.push_back(v.shape);
  // Values computed from shapes (a Reshape target, a Slice bound) are never activations, whatever
  // element type the file declares for them.
  for (size_t v = 0; v < src.values.size(); ++v) src.values[v].derived = shaped.values[v].derived;
  src = batch_norm_as_depthwise_conv(src, shapes);
  shapes.resize(src.values.size());
  const Selection sel = select(src, shapes, o);

  const Observed ob = observed_tensors(src, sel);
  bool any_compute = false;
  for (size_t i = 0; i < src.nodes.size(); ++i) any_compute |= sel.role[i] == Role::Compute;
  if (!any_compute) {
    // Say whether the model has nothing q8 runs in int8, or the exclusions took all of it (the
    // options' exclude list, which `q8 quantize --fallback auto` extends too).
    std::vector<std::string> excluded;
    if (!o.exclude.empty()) {
      Options all = o;
      all.exclude.clear();
      const Selection every = select(src, shapes, all);
      for (size_t i = 0; i < src.nodes.size(); ++i)
        if (every.role[i] == Role::Compute) excluded.push_back(src.nodes[i].name);
    }
    if (excluded.empty())
      throw Error(src.source +
                  ": nothing to quantize: the model has no Conv, Gemm, MatMul or Add that q8 can run in int8");
    std::string names;
    for (size_t i = 0; i < excluded.size() && i < 4; ++i) names += (i ? ", " : "") + excluded[i];
    if (excluded.size() > 4) names += ", ...";
    throw Error(src.source + ": nothing left to quantize: all " + std::to_string(excluded.size()) +
                " nodes q8 can run in int8 are excluded (" + names + ")");
  }

  // Each root's quantization covers the ranges of every tensor sharing it.
  std::map<int, calib::Range> root_range;
  for (const auto& [v, r] : calibrate(src, ob.values, samples, o)) {
    auto [it, first] = root_range.emplace(ob.root(v), r);
    if (!first) it->second = {std::min(it->second.lo, r.lo), std::max(it->second.hi, r.hi)};
  }
  std::map<int, calib::QuantParams> params;
  for (const auto& [v, r] : root_range) params[v] = calib::uint8_params(r);
  Graph q = rewrite(src, sel, ob, params, o);
  q.validate();
  return q;
}

}  // namespace q8::quant
