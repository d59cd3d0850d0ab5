#include "passes/passes.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "ir/op_traits.h"
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

// An element-wise activation of one input (Silu, HardSwish, Sigmoid, LeakyRelu...): the ops whose
// int8 role is a 256-entry table.
bool is_elementwise_activation(const Node& n) {
  return op_traits(n.op).int8 == Int8Role::TableLookup && n.inputs.size() == 1;
}

}  // namespace

void fold_constants(Graph& g) {
  std::vector<bool> dead(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    Value& out = g.values[n.outputs.at(0)];
    const OpTraits& t = op_traits(n.op);
    if (n.op == Op::Constant) {
      auto it = n.attrs.find("value");
      if (it == n.attrs.end() || !it->second.t) fail(g, n, "Constant without a tensor value");
      out.constant = it->second.t;
    } else if (t.eval) {
      if (!g.inputs_const(n)) continue;  // Shape too: declared shapes may hold the dynamic batch
      for (int v : n.inputs)
        if (v != kNoValue) g.values[v].shape = g.values[v].constant->dims, g.values[v].has_shape = true;
      ShapeContext c(g, n);
      out.constant = t.eval(g, n, t.shape(c));
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
  std::vector<int> producer = g.producers();
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
    if (conv.op != Op::Conv && conv.op != Op::ConvTranspose) continue;
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
    // Output channel of weight element e: Conv's weights are [K][C/group][KH][KW], ConvTranspose's
    // [C][K/group][KH][KW] (channel (c / (C/group)) * K/group + kg).
    const bool transposed = conv.op == Op::ConvTranspose;
    const int64_t group = transposed ? conv.attr_int("group", 1) : 1;
    // A malformed ConvTranspose (C not a multiple of group) is left to shape inference to refuse.
    if (transposed && (w->dims.size() != 4 || group < 1 || w->dims[0] < group || w->dims[0] % group != 0)) continue;
    const int64_t K = transposed ? w->dims[1] * group : w->dims[0];
    const int64_t taps = transposed ? w->dims[2] * w->dims[3] : 1, Kg = transposed ? w->dims[1] : 1;
    const int64_t Cg = transposed && group > 0 ? w->dims[0] / group : 1;
    auto channel_of = [&](int64_t e) {
      return transposed ? (e / (Kg * taps)) / Cg * Kg + (e / taps) % Kg : e / (K ? w->numel() / K : 1);
    };
    auto ok = [K](const ConstTensor* t) { return t->dtype == DType::Float32 && t->numel() == K; };
    if (!ok(gamma) || !ok(beta) || !ok(mean) || !ok(var) || (b && !ok(b)))
      fail(g, bn, "parameters do not match the channels of the Conv before it");
    auto nw = std::make_shared<ConstTensor>(*w);
    auto nb = float_tensor({K});
    const std::vector<float> scale = ir::batch_norm_scale(bn, *gamma, *var);
    for (int64_t e = 0; e < w->numel(); ++e) nw->mutable_data<float>()[e] *= scale[channel_of(e)];
    for (int64_t k = 0; k < K; ++k) {
      const float s = scale[k];
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
    if (!op_traits(n.op).absorbs_activation) continue;
    if (n.has_attr("act_min") || n.has_attr("act_unary")) continue;  // a clamp after the activation is not its own
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

void fuse_residual_add(Graph& g) {
  const std::vector<int> producer = g.producers();
  const ConsumerIndex index(g);
  // Candidates by structure: an fp32 Add of two non-constant operands, one of them the result of
  // a Conv read by nothing else, the other computed before that Conv runs (the later of two Convs).
  struct Candidate {
    int add, conv, residual;
  };
  std::vector<Candidate> found;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& add = g.nodes[i];
    if (add.op != Op::Add || add.has_attr("act_min") || add.inputs[0] == add.inputs[1]) continue;
    if (g.values[add.outputs[0]].dtype != DType::Float32) continue;
    Candidate best{-1, -1, -1};
    for (int k = 0; k < 2; ++k) {
      const int y = add.inputs[k], z = add.inputs[1 - k];
      const int c = producer[y];
      if (c < 0 || g.values[z].is_const() || g.values[z].dtype != DType::Float32) continue;
      const Node& conv = g.nodes[c];
      if (conv.op != Op::Conv || conv.inputs.size() > 3 || conv.has_attr("act_min")) continue;
      if (index.sole_reader(g, y) != static_cast<int>(i) || producer[z] >= c) continue;
      if (c > best.conv) best = {static_cast<int>(i), c, z};
    }
    if (best.add >= 0) found.push_back(best);
  }
  if (found.empty()) return;
  // The residual must have the Conv's output shape (an operand broadcast over the output stays a
  // separate Add). Shapes are known up to the batch: check at batch 1, and at batch 2 when the
  // batch is dynamic, so an operand fixed at batch 1 is told apart from one that follows it.
  bool dynamic = false;
  for (int v : g.inputs)
    for (size_t a = 0; a < g.values[v].shape.size(); ++a)
      if (g.values[v].shape[a] == kUnknownDim) {
        if (a != 0) return;  // shapes known only once inputs are given: no fusion
        dynamic = true;
      }
  std::vector<bool> same(found.size(), true);
  for (int64_t batch : {1, 2}) {
    if (batch == 2 && !dynamic) break;
    Graph probe = g;
    // A graph that only runs at some batches (a Reshape that fixes the batch) or that shape
    // inference refuses keeps its Adds: the error, if any, is for planning to report.
    try {
      infer_shapes(probe, input_shapes_for_batch(probe, batch));
    } catch (const Error&) {
      return;
    }
    for (size_t f = 0; f < found.size(); ++f) {
      const Node& add = probe.nodes[found[f].add];
      const Shape& out = probe.values[add.outputs[0]].shape;
      same[f] = same[f] && probe.values[add.inputs[0]].shape == out && probe.values[add.inputs[1]].shape == out;
    }
  }
  std::vector<bool> dead(g.nodes.size(), false);
  for (size_t f = 0; f < found.size(); ++f) {
    if (!same[f]) continue;
    Node& conv = g.nodes[found[f].conv];
    // The Conv writes the Add's result where it stood, before every reader of that result.
    conv.inputs.resize(3, kNoValue);
    conv.inputs.push_back(found[f].residual);
    conv.outputs[0] = g.nodes[found[f].add].outputs[0];
    dead[found[f].add] = true;
  }
  g.compact(dead);
}

void fuse_unary_activation(Graph& g) {
  std::vector<bool> dead(g.nodes.size(), false);
  const ConsumerIndex index(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& conv = g.nodes[i];
    if (conv.op != Op::Conv || conv.has_attr("act_unary")) continue;
    if (g.values[conv.outputs[0]].dtype != DType::Float32) continue;
    const int a = index.sole_reader(g, conv.outputs[0]);
    if (a < 0) continue;
    const Node& act = g.nodes[a];
    if (!is_elementwise_activation(act)) continue;
    if (g.values[act.outputs[0]].dtype != DType::Float32) continue;
    conv.attrs["act_unary"] = Attribute{Attribute::Kind::Int, static_cast<int64_t>(act.op), 0.f, {}, {}, {}, {}};
    for (const char* key : {"alpha", "beta"})
      if (act.has_attr(key))
        conv.attrs[std::string("act_unary_") + key] =
            Attribute{Attribute::Kind::Float, 0, act.attr_float(key, 0.f), {}, {}, {}, {}};
    conv.outputs[0] = act.outputs[0];
    dead[a] = true;
  }
  g.compact(dead);
}

void fuse_quantized_gate(Graph& g) {
  std::vector<bool> dead(g.nodes.size(), false);
  const ConsumerIndex index(g);
  const std::vector<int> producer = g.producers();
  auto u8 = [&g](int v) { return g.values[v].dtype == DType::Uint8; };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& mul = g.nodes[i];
    if (mul.op != Op::QuantizedMul || mul.inputs[0] == mul.inputs[1]) continue;
    for (int k = 0; k < 2; ++k) {
      const int x = mul.inputs[k], y = mul.inputs[1 - k];
      const int u = producer[y];
      if (u < 0 || dead[u]) continue;
      Node& act = g.nodes[u];
      if (!is_elementwise_activation(act) || act.inputs[0] != x) continue;
      if (act.has_attr("gate") || !u8(x) || !u8(y) || !u8(mul.outputs[0])) continue;
      if (index.sole_reader(g, y) != static_cast<int>(i)) continue;
      // (x - z_x)(f - z_f) is the same integer either way round, so which input x was is not kept.
      const Value& gate = g.values[y];
      auto set_int = [&act](const char* key, int64_t v) {
        act.attrs[key] = Attribute{Attribute::Kind::Int, v, 0.f, {}, {}, {}, {}};
      };
      act.attrs["gate_scale"] = Attribute{Attribute::Kind::Float, 0, gate.scale, {}, {}, {}, {}};
      set_int("gate_zero_point", gate.zero_point);
      set_int("gate_qmin", act.attr_int("qmin", 0));
      set_int("gate_qmax", act.attr_int("qmax", 255));
      set_int("qmin", mul.attr_int("qmin", 0));
      set_int("qmax", mul.attr_int("qmax", 255));
      set_int("gate", 1);
      // The Mul it also runs, for tools that look at nodes one by one (q8 analyze).
      act.attrs["gate_of"] = Attribute{Attribute::Kind::String, 0, 0.f, {}, {}, mul.name, {}};
      act.outputs[0] = mul.outputs[0];  // the activation follows x's producer and precedes the Mul's readers
      dead[i] = true;
      break;
    }
  }
  g.compact(dead);
}

void fuse_silu(Graph& g) {
  std::vector<bool> dead(g.nodes.size(), false);
  const ConsumerIndex index(g);
  const std::vector<int> producer = g.producers();
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& mul = g.nodes[i];
    if (mul.op != Op::Mul || mul.has_attr("act_min")) continue;
    for (int k = 0; k < 2; ++k) {
      const int x = mul.inputs[k], s = mul.inputs[1 - k];
      const int p = producer[s];
      if (p < 0 || g.nodes[p].op != Op::Sigmoid || g.nodes[p].inputs[0] != x) continue;
      if (g.values[x].dtype != DType::Float32 || index.sole_reader(g, s) != static_cast<int>(i)) continue;
      // The Sigmoid becomes the Silu and writes the Mul's result; it still follows x's producer
      // and precedes every reader of that result.
      g.nodes[p].op = Op::Silu;
      g.nodes[p].outputs[0] = mul.outputs[0];
      dead[i] = true;
      break;
    }
  }
  g.compact(dead);
}

void fuse_gelu(Graph& g) {
  // The constants of PyTorch's export of nn.GELU: x / float(sqrt(2)), + 1, * 0.5. The fused op
  // (kern::UnaryKind::Gelu) does exactly these float steps, so only these constants match.
  constexpr float kSqrt2 = 1.41421353816986083984375f;
  auto is_scalar = [&g](int v, float want) {
    const ConstTensor* c = v == kNoValue ? nullptr : g.values[v].constant.get();
    return c && c->dtype == DType::Float32 && c->numel() == 1 && c->data<float>()[0] == want;
  };
  std::vector<bool> dead(g.nodes.size(), false);
  const ConsumerIndex index(g);
  const std::vector<int> producer = g.producers();
  // The sole reader of node n's result if it has op `op` and its other input is `other` (or, with
  // other == kNoValue, a scalar constant `c`); else -1.
  auto next = [&](int n, Op op, int other, float c) {
    const int r = index.sole_reader(g, g.nodes[n].outputs[0]);
    if (r < 0 || g.nodes[r].op != op || g.nodes[r].inputs.size() != 2) return -1;
    const Node& rn = g.nodes[r];
    const int o = rn.inputs[0] == g.nodes[n].outputs[0] ? rn.inputs[1] : rn.inputs[0];
    return (other != kNoValue ? o == other : is_scalar(o, c)) ? r : -1;
  };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (g.nodes[i].op != Op::Erf) continue;
    const int div = producer[g.nodes[i].inputs[0]];
    if (div < 0 || g.nodes[div].op != Op::Div || !is_scalar(g.nodes[div].inputs[1], kSqrt2)) continue;
    const int x = g.nodes[div].inputs[0];
    if (g.values[x].dtype != DType::Float32 || index.sole_reader(g, g.nodes[div].outputs[0]) != static_cast<int>(i))
      continue;
    const int add = next(static_cast<int>(i), Op::Add, kNoValue, 1.f);
    const int mul = add < 0 ? -1 : next(add, Op::Mul, x, 0.f);
    const int half = mul < 0 ? -1 : next(mul, Op::Mul, kNoValue, 0.5f);
    if (half < 0) continue;
    // The Erf becomes the Gelu and writes the last Mul's result: it follows x's producer and
    // precedes every reader of that result.
    Node& gelu = g.nodes[i];
    gelu.op = Op::Gelu;
    gelu.inputs = {x};
    gelu.outputs = {g.nodes[half].outputs[0]};
    dead[div] = dead[add] = dead[mul] = dead[half] = true;
  }
  g.compact(dead);
}

void fuse_layer_norm(Graph& g) {
  auto scalar = [&g](int v, float& out) {
    const ConstTensor* c = v == kNoValue ? nullptr : g.values[v].constant.get();
    if (!c || c->dtype != DType::Float32 || c->numel() != 1) return false;
    out = c->data<float>()[0];
    return true;
  };
  // One float per position of the last axis (PyTorch's weight and bias, shaped [C], C > 1).
  auto per_last_axis = [&g](int v) {
    const ConstTensor* c = v == kNoValue ? nullptr : g.values[v].constant.get();
    return c && c->dtype == DType::Float32 && c->dims.size() == 1 && c->dims[0] > 1;
  };
  auto mean_of_last_axis = [&g](const Node& n) {
    if (n.op != Op::ReduceMean || n.attr_int("keepdims", 1) != 1 || n.inputs.size() > 1) return false;
    return n.attr_ints("axes") == std::vector<int64_t>{-1};
  };
  std::vector<bool> dead(g.nodes.size(), false);
  const ConsumerIndex index(g);
  // The sole reader of node n's result if it has op `op`, or -1.
  auto next = [&](int n, Op op) {
    const int r = index.sole_reader(g, g.nodes[n].outputs[0]);
    return r >= 0 && g.nodes[r].op == op && !dead[r] ? r : -1;
  };
  // The input of binary node n other than `v`.
  auto other = [&g](int n, int v) { return g.nodes[n].inputs[0] == v ? g.nodes[n].inputs[1] : g.nodes[n].inputs[0]; };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (dead[i] || !mean_of_last_axis(g.nodes[i])) continue;
    const int x = g.nodes[i].inputs[0], mean = static_cast<int>(i);
    const int sub = next(mean, Op::Sub);
    if (sub < 0 || g.nodes[sub].inputs[0] != x || g.values[x].dtype != DType::Float32) continue;
    const int centred = g.nodes[sub].outputs[0];
    const std::vector<int> readers = index.readers(g, centred);
    if (readers.size() != 2 || g.is_graph_output(centred)) continue;
    const int pow = g.nodes[readers[0]].op == Op::Pow ? readers[0] : readers[1];
    const int div = pow == readers[0] ? readers[1] : readers[0];
    float two = 0.f, eps = 0.f;
    if (g.nodes[pow].op != Op::Pow || g.nodes[pow].inputs[0] != centred || !scalar(g.nodes[pow].inputs[1], two) ||
        two != 2.f)
      continue;
    const int var = next(pow, Op::ReduceMean);
    if (var < 0 || !mean_of_last_axis(g.nodes[var])) continue;
    const int add_eps = next(var, Op::Add);
    if (add_eps < 0 || !scalar(other(add_eps, g.nodes[var].outputs[0]), eps) || !(eps >= 0.f)) continue;
    const int root = next(add_eps, Op::Sqrt);
    if (root < 0 || next(root, Op::Div) != div || g.nodes[div].inputs[0] != centred) continue;
    const int scale = next(div, Op::Mul);
    if (scale < 0 || !per_last_axis(other(scale, g.nodes[div].outputs[0]))) continue;
    const int shift = next(scale, Op::Add);
    if (shift < 0 || !per_last_axis(other(shift, g.nodes[scale].outputs[0]))) continue;
    // The first ReduceMean becomes the LayerNormalization writing the last Add's result: it
    // follows x's producer and precedes every reader of that result.
    Node& ln = g.nodes[i];
    const int w = other(scale, g.nodes[div].outputs[0]), b = other(shift, g.nodes[scale].outputs[0]);
    ln.op = Op::LayerNormalization;
    ln.inputs = {x, w, b};
    ln.outputs = {g.nodes[shift].outputs[0]};
    ln.attrs.clear();
    ln.attrs["axis"] = Attribute{Attribute::Kind::Int, -1, 0.f, {}, {}, {}, {}};
    ln.attrs["epsilon"] = Attribute{Attribute::Kind::Float, 0, eps, {}, {}, {}, {}};
    for (int d : {sub, pow, var, add_eps, root, div, scale, shift}) dead[d] = true;
  }
  g.compact(dead);
}

void simplify(Graph& g) {
  fold_constants(g);
  remove_identities(g);
  fold_pad(g);
  canonicalize_clip(g);
  fold_batch_norm(g);
  g.validate();
}

void mark_dense_rows(Graph& g) {
  auto dense = [](const Node& n) { return n.op == Op::QuantizedDense || n.op == Op::QuantizedDenseFloat; };
  if (std::none_of(g.nodes.begin(), g.nodes.end(), dense)) return;
  Graph probe = g;
  try {
    infer_shapes(probe, input_shapes_for_batch(probe, 1));
  } catch (const Error&) {
    return;  // shapes known only once inputs are given (or refused: planning reports that)
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!dense(g.nodes[i])) continue;
    const Node& n = probe.nodes[i];
    const int64_t N = probe.values[n.inputs[1]].constant->dims[0];
    const int64_t rows = N > 0 ? shape_numel(probe.values[n.outputs[0]].shape) / N : 0;
    g.nodes[i].attrs["rows"] = Attribute{Attribute::Kind::Int, rows, 0.f, {}, {}, {}, {}};
  }
}

void lower_for_runtime(Graph& g) {
  lower_quantized(g);
  fuse_quantized_gate(g);
  fuse_silu(g);
  fuse_gelu(g);
  fuse_layer_norm(g);
  fuse_residual_add(g);
  fuse_activations(g);
  fuse_unary_activation(g);
  mark_dense_rows(g);
  g.validate();
}

void optimize(Graph& g) {
  simplify(g);
  lower_for_runtime(g);
}

}  // namespace q8::ir
