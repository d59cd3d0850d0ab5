#include "ir/graph.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "q8/error.h"

namespace q8::ir {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Uint8: return 1;
    case DType::Int8: return 1;
    case DType::Int32: return 4;
    case DType::Int64: return 8;
    case DType::Undefined: break;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Uint8: return "uint8";
    case DType::Int8: return "int8";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::Undefined: break;
  }
  return "undefined";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) throw Error("shape " + shape_str(s) + " has an unknown or negative dimension");
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      throw Error("shape " + shape_str(s) + " has more elements than int64 can count");
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ",";
    r += s[i] == kUnknownDim ? std::string("?") : std::to_string(s[i]);
  }
  return r + "]";
}

// Callers index by shapes they validated; a malformed file that slips past them meets an Error
// here instead of a read past the tensor.
static void check_element(const ConstTensor& t, int64_t i) {
  const size_t size = dtype_size(t.dtype);
  if (i < 0 || i > (int64_t{1} << 56) || size == 0 || (static_cast<uint64_t>(i) + 1) * size > t.bytes.size())
    throw Error("constant of shape " + shape_str(t.dims) + " has no element " + std::to_string(i));
}

double ConstTensor::as_double(int64_t i) const {
  check_element(*this, i);
  switch (dtype) {
    case DType::Float32: return data<float>()[i];
    case DType::Uint8: return data<uint8_t>()[i];
    case DType::Int8: return data<int8_t>()[i];
    case DType::Int32: return data<int32_t>()[i];
    case DType::Int64: return static_cast<double>(data<int64_t>()[i]);
    case DType::Undefined: break;
  }
  throw Error("constant of undefined type");
}

int64_t ConstTensor::as_int64(int64_t i) const {
  check_element(*this, i);
  switch (dtype) {
    case DType::Int64: return data<int64_t>()[i];
    case DType::Int32: return data<int32_t>()[i];
    case DType::Uint8: return data<uint8_t>()[i];
    case DType::Int8: return data<int8_t>()[i];
    case DType::Float32: return static_cast<int64_t>(data<float>()[i]);
    case DType::Undefined: break;
  }
  throw Error("constant of undefined type");
}

static const char* attr_kind_name(Attribute::Kind k) {
  switch (k) {
    case Attribute::Kind::Int: return "int";
    case Attribute::Kind::Float: return "float";
    case Attribute::Kind::Ints: return "ints";
    case Attribute::Kind::Floats: return "floats";
    case Attribute::Kind::String: return "string";
    case Attribute::Kind::Tensor: return "tensor";
  }
  return "?";
}

std::string Node::describe() const { return "node '" + name + "' (" + op_name(op) + ")"; }

namespace {
const Attribute* find_attr(const Node& n, const std::string& k, Attribute::Kind kind) {
  auto it = n.attrs.find(k);
  if (it == n.attrs.end()) return nullptr;
  if (it->second.kind != kind)
    throw Error(n.describe() + ": attribute '" + k + "' is " + attr_kind_name(it->second.kind) + ", expected " +
                attr_kind_name(kind));
  return &it->second;
}
}  // namespace

int64_t Node::attr_int(const std::string& k, int64_t def) const {
  const Attribute* a = find_attr(*this, k, Attribute::Kind::Int);
  return a ? a->i : def;
}
float Node::attr_float(const std::string& k, float def) const {
  const Attribute* a = find_attr(*this, k, Attribute::Kind::Float);
  return a ? a->f : def;
}
std::vector<int64_t> Node::attr_ints(const std::string& k, std::vector<int64_t> def) const {
  const Attribute* a = find_attr(*this, k, Attribute::Kind::Ints);
  return a ? a->ints : def;
}
std::vector<float> Node::attr_floats(const std::string& k, std::vector<float> def) const {
  const Attribute* a = find_attr(*this, k, Attribute::Kind::Floats);
  return a ? a->floats : def;
}
std::string Node::attr_string(const std::string& k, const std::string& def) const {
  const Attribute* a = find_attr(*this, k, Attribute::Kind::String);
  return a ? a->s : def;
}

int Graph::add_value(Value v) {
  values.push_back(std::move(v));
  return static_cast<int>(values.size()) - 1;
}

int Graph::find_value(const std::string& name) const {
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i].name == name) return static_cast<int>(i);
  return kNoValue;
}

std::string Graph::unused_value_name(const std::string& base) const {
  std::string v = base;
  for (int k = 1; find_value(v) != kNoValue; ++k) v = base + "_" + std::to_string(k);
  return v;
}

std::vector<int> Graph::consumers(int v) const {
  std::vector<int> r;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (int in : nodes[i].inputs)
      if (in == v) {
        r.push_back(static_cast<int>(i));
        break;
      }
  return r;
}

ConsumerIndex::ConsumerIndex(const Graph& g) : readers_(g.values.size()), output_(g.values.size(), false) {
  for (int v : g.outputs) output_[v] = true;
  for (size_t i = 0; i < g.nodes.size(); ++i) add(g, static_cast<int>(i));
}

bool ConsumerIndex::reads(const Graph& g, int n, int v, const std::vector<bool>* dead) const {
  if (n < 0 || static_cast<size_t>(n) >= g.nodes.size() || (dead && (*dead)[n])) return false;
  for (int in : g.nodes[n].inputs)
    if (in == v) return true;
  return false;
}

std::vector<int> ConsumerIndex::readers(const Graph& g, int v, const std::vector<bool>* dead) const {
  std::vector<int> r;
  if (v < 0 || static_cast<size_t>(v) >= readers_.size()) return r;
  for (int n : readers_[v])
    if (reads(g, n, v, dead)) r.push_back(n);
  std::sort(r.begin(), r.end());
  r.erase(std::unique(r.begin(), r.end()), r.end());
  return r;
}

int ConsumerIndex::sole_reader(const Graph& g, int v, const std::vector<bool>* dead, bool data_only) const {
  if (v < 0 || static_cast<size_t>(v) >= readers_.size() || output_[v]) return -1;
  int found = -1;
  for (int n : readers_[v]) {
    if (n == found || !reads(g, n, v, dead) || (data_only && g.nodes[n].op == Op::Shape)) continue;
    if (found >= 0) return -1;
    found = n;
  }
  return found;
}

void ConsumerIndex::add(const Graph& g, int n) {
  for (int v : g.nodes[n].inputs) {
    if (v == kNoValue) continue;
    if (static_cast<size_t>(v) >= readers_.size()) readers_.resize(v + 1), output_.resize(v + 1, false);
    std::vector<int>& r = readers_[v];
    if (r.empty() || r.back() != n) r.push_back(n);
  }
}

void ConsumerIndex::redirect(Graph& g, int from, int to) {
  if (static_cast<size_t>(std::max(from, to)) >= readers_.size())
    readers_.resize(std::max(from, to) + 1), output_.resize(readers_.size(), false);
  for (int n : readers_[from]) {
    if (!reads(g, n, from, nullptr)) continue;
    for (int& v : g.nodes[n].inputs)
      if (v == from) v = to;
    readers_[to].push_back(n);
  }
  readers_[from].clear();
  if (output_[from]) {
    for (int& v : g.outputs)
      if (v == from) v = to;
    output_[from] = false;
    output_[to] = true;
  }
}

bool Graph::is_graph_output(int v) const {
  for (int o : outputs)
    if (o == v) return true;
  return false;
}

bool Graph::inputs_const(const Node& n) const {
  for (int v : n.inputs)
    if (v != kNoValue && !values[v].is_const()) return false;
  return true;
}

std::vector<int> Graph::producers() const {
  std::vector<int> p(values.size(), -1);
  for (size_t i = 0; i < nodes.size(); ++i)
    for (int o : nodes[i].outputs)
      if (o != kNoValue) p[o] = static_cast<int>(i);
  return p;
}

std::vector<bool> Graph::unread_nodes() const {
  std::vector<bool> read(values.size(), false), unread(nodes.size(), false);
  for (int v : outputs) read[v] = true;
  for (size_t i = nodes.size(); i-- > 0;) {  // readers come after what they read
    const Node& n = nodes[i];
    unread[i] = std::none_of(n.outputs.begin(), n.outputs.end(), [&](int v) { return v != kNoValue && read[v]; });
    if (unread[i]) continue;
    for (int v : n.inputs)
      if (v != kNoValue) read[v] = true;
  }
  return unread;
}

void Graph::compact(const std::vector<bool>& dead_nodes) {
  std::vector<Node> kept;
  kept.reserve(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i)
    if (i >= dead_nodes.size() || !dead_nodes[i]) kept.push_back(std::move(nodes[i]));
  nodes = std::move(kept);

  // Renumber the values still referenced by a node or the graph's interface.
  std::vector<bool> used(values.size(), false);
  for (const Node& n : nodes) {
    for (int v : n.inputs)
      if (v != kNoValue) used[v] = true;
    for (int v : n.outputs) used[v] = true;
  }
  for (int v : inputs) used[v] = true;
  for (int v : outputs) used[v] = true;
  std::vector<int> remap(values.size(), kNoValue);
  std::vector<Value> vals;
  for (size_t i = 0; i < values.size(); ++i)
    if (used[i]) {
      remap[i] = static_cast<int>(vals.size());
      vals.push_back(std::move(values[i]));
    }
  values = std::move(vals);
  auto fix = [&](std::vector<int>& ids) {
    for (int& v : ids)
      if (v != kNoValue) v = remap[v];
  };
  for (Node& n : nodes) {
    fix(n.inputs);
    fix(n.outputs);
  }
  fix(inputs);
  fix(outputs);
}

void Graph::validate() const {
  const int nv = static_cast<int>(values.size());
  std::vector<int> producer(values.size(), -1);
  std::vector<bool> available(values.size(), false);
  for (int i = 0; i < nv; ++i) available[i] = values[i].is_const();
  for (int v : inputs) {
    if (v < 0 || v >= nv) throw Error(source + ": graph input id out of range");
    available[v] = true;
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    for (int v : n.inputs) {
      if (v == kNoValue) continue;
      if (v < 0 || v >= nv) throw Error(source + ": " + n.describe() + ": input id out of range");
      if (!available[v])
        throw Error(source + ": " + n.describe() + ": input '" + values[v].name + "' is not produced before this node");
    }
    for (int v : n.outputs) {
      if (v < 0 || v >= nv) throw Error(source + ": " + n.describe() + ": output id out of range");
      if (available[v] || producer[v] >= 0)
        throw Error(source + ": " + n.describe() + ": output '" + values[v].name + "' is produced more than once");
      producer[v] = static_cast<int>(i);
      available[v] = true;
    }
  }
  for (int v : outputs) {
    if (v < 0 || v >= nv) throw Error(source + ": graph output id out of range");
    if (!available[v]) throw Error(source + ": graph output '" + values[v].name + "' is never produced");
  }
}

std::vector<float> batch_norm_scale(const Node& bn, const ConstTensor& gamma, const ConstTensor& var) {
  const float eps = bn.attr_float("epsilon", 1e-5f);
  std::vector<float> scale(static_cast<size_t>(gamma.numel()));
  for (size_t c = 0; c < scale.size(); ++c) scale[c] = gamma.data<float>()[c] / std::sqrt(var.data<float>()[c] + eps);
  return scale;
}

}  // namespace q8::ir
