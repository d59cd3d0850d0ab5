// ONNX writer: q8 graph IR -> ModelProto bytes, the inverse of onnx_importer.cpp.
//
// What is written:
//   - opset_import: the default domain at max(13, g.opset) (13: per-channel QDQ "axis"; Clip's
//     bounds and Dropout's ratio are inputs); com.microsoft 1 only when a QOperator op needs it;
//   - initializers: every constant value a node reads (raw_data, little-endian, its own dtype);
//   - graph inputs: float32 with their shapes (unknown dims as dim_param "batch" / "d<i>");
//   - graph outputs: float32, with shapes where known;
//   - nodes in the IR's (topological) order, names kept, attributes copied by kind.
// The IR's canonical Clip (float attributes "min"/"max") goes back to ONNX's opset-11 form with
// scalar initializer inputs, infinite bounds omitted. Anything the importer would not read back
// (q8-internal ops and attributes, clashing names, unknown attributes) is refused here instead,
// with one-line messages in the importer's style: "<source>: node '<name>' (<Op>): <what>".

#include "onnx/onnx_writer.h"
#include "ir/op_traits.h"
#include "onnx/onnx_ops.h"
#include "onnx/onnx_text.h"

#include "io/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "onnx.pb.h"
#include "q8/error.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "q8's ONNX writer copies ConstTensor bytes into raw_data as is: a little-endian host is required"
#endif

namespace q8::onnx {
namespace {

using ir::Attribute;
using ir::ConstTensor;
using ir::DType;
using Kind = ir::Attribute::Kind;

constexpr int64_t kIrVersion = 8;
constexpr int64_t kMinWriteOpset = 13;
constexpr const char* kMsDomain = "com.microsoft";

bool is_internal_op(ir::Op op) { return ir::op_traits(op).int8 == ir::Int8Role::Integer; }

bool is_internal_attr(const std::string& k) {
  return k == "act_min" || k == "act_max" || k == "act_op" || k == "qmin" || k == "qmax" || k == "w_scale";
}

// An attribute newer than the written opset may be dropped when it holds its default value.
bool holds_default(const std::string& k, const Attribute& a) {
  if (k == "dilations") return std::all_of(a.ints.begin(), a.ints.end(), [](int64_t d) { return d == 1; });
  if (k == "training_mode" || k == "allowzero") return a.i == 0;
  if (k == "saturate") return a.i == 1;
  return false;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Int: return "INT";
    case Kind::Float: return "FLOAT";
    case Kind::Ints: return "INTS";
    case Kind::Floats: return "FLOATS";
    case Kind::String: return "STRING";
    case Kind::Tensor: return "TENSOR";
  }
  return "?";
}

bool onnx_dtype(DType t, int& out) {
  switch (t) {
    case DType::Float32: out = ::onnx::TensorProto_DataType_FLOAT; return true;
    case DType::Uint8: out = ::onnx::TensorProto_DataType_UINT8; return true;
    case DType::Int8: out = ::onnx::TensorProto_DataType_INT8; return true;
    case DType::Int32: out = ::onnx::TensorProto_DataType_INT32; return true;
    case DType::Int64: out = ::onnx::TensorProto_DataType_INT64; return true;
    default: return false;
  }
}

// ---------------------------------------------------------------------------------------------
// The writer

class Writer {
 public:
  explicit Writer(const ir::Graph& g)
      : g_(g), src_(g.source.empty() ? std::string("graph") : g.source), opset_(std::max(kMinWriteOpset, g.opset)) {}

  std::string run();

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error(src_ + ": " + what); }
  [[noreturn]] void node_fail(const ir::Node& n, const std::string& what) const {
    throw Error(src_ + ": node " + quote(n.name) + " (" + ir::op_name(n.op) + "): " + what);
  }

  void check_names();
  std::string fresh_name(const std::string& base);
  void fill_tensor(::onnx::TensorProto* t, const ConstTensor& c, const std::string& what) const;
  void set_shape(::onnx::TypeProto_Tensor* tt, const ir::Shape& s) const;
  std::string value_name(int v) const;
  std::string float_initializer(const std::string& base, float x);
  void write_node(const ir::Node& n);
  void write_attr(const ir::Node& n, const std::string& k, const Attribute& a, ::onnx::NodeProto* np) const;

  const ir::Graph& g_;
  const std::string src_;
  const int64_t opset_;
  ::onnx::ModelProto model_;
  ::onnx::GraphProto* gp_ = nullptr;
  std::unordered_set<std::string> names_;                                // every tensor name in the written graph
  std::vector<char> produced_;                                           // value id -> written as some node's output
  std::vector<char> initialized_;                                        // value id -> written as an initializer
  std::map<std::pair<std::string, uint32_t>, std::string> float_inits_;  // (base, bits) -> shared scalar
  bool uses_ms_domain_ = false;
};

std::string Writer::value_name(int v) const {
  if (v < 0 || v >= static_cast<int>(g_.values.size())) fail("value id " + std::to_string(v) + " is out of range");
  return g_.values[v].name;
}

// Value names are ONNX tensor names: every value the graph references needs its own.
void Writer::check_names() {
  std::unordered_map<std::string, int> owner;
  auto claim = [&](int v) {
    if (v == ir::kNoValue) return;
    const std::string& name = value_name(v);
    if (name.empty()) fail("value " + std::to_string(v) + " has no name; ONNX tensors need one");
    auto ins = owner.emplace(name, v);
    if (!ins.second && ins.first->second != v)
      fail("two values share the name " + quote(name) + "; ONNX tensor names must be unique");
  };
  for (int v : g_.inputs) claim(v);
  for (const ir::Node& n : g_.nodes) {
    for (int v : n.inputs) claim(v);
    for (int v : n.outputs) claim(v);
  }
  for (int v : g_.outputs) claim(v);
  for (const auto& kv : owner) names_.insert(kv.first);
}

std::string Writer::fresh_name(const std::string& base) {
  std::string name = base;
  for (int i = 1; names_.count(name); ++i) name = base + "_" + std::to_string(i);
  names_.insert(name);
  return name;
}

void Writer::fill_tensor(::onnx::TensorProto* t, const ConstTensor& c, const std::string& what) const {
  int type = 0;
  if (!onnx_dtype(c.dtype, type))
    fail(what + " has data type " + ir::dtype_name(c.dtype) + ", which ONNX files cannot hold here");
  for (int64_t d : c.dims)
    if (d < 0) fail(what + " has a negative dimension in " + ir::shape_str(c.dims));
  const int64_t numel = c.numel();
  if (static_cast<uint64_t>(numel) * ir::dtype_size(c.dtype) != c.bytes.size())
    fail(what + " holds " + std::to_string(c.bytes.size()) + " bytes, expected " +
         std::to_string(static_cast<uint64_t>(numel) * ir::dtype_size(c.dtype)) + " for " + ir::dtype_name(c.dtype) +
         " " + ir::shape_str(c.dims));
  t->set_data_type(type);
  for (int64_t d : c.dims) t->add_dims(d);
  t->set_raw_data(c.bytes.data(), c.bytes.size());
}

void Writer::set_shape(::onnx::TypeProto_Tensor* tt, const ir::Shape& s) const {
  ::onnx::TensorShapeProto* sp = tt->mutable_shape();
  for (size_t i = 0; i < s.size(); ++i) {
    auto* d = sp->add_dim();
    if (s[i] >= 0)
      d->set_dim_value(s[i]);
    else
      d->set_dim_param(i == 0 ? std::string("batch") : "d" + std::to_string(i));
  }
}

std::string Writer::float_initializer(const std::string& base, float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  auto it = float_inits_.find({base, bits});
  if (it != float_inits_.end()) return it->second;
  const std::string name = fresh_name(base);
  ::onnx::TensorProto* t = gp_->add_initializer();
  t->set_name(name);
  t->set_data_type(::onnx::TensorProto_DataType_FLOAT);
  t->set_raw_data(&x, 4);
  float_inits_.emplace(std::make_pair(base, bits), name);
  return name;
}

void Writer::write_attr(const ir::Node& n, const std::string& k, const Attribute& a, ::onnx::NodeProto* np) const {
  using AP = ::onnx::AttributeProto;
  AP* ap = np->add_attribute();
  ap->set_name(k);
  switch (a.kind) {
    case Kind::Int:
      ap->set_type(AP::INT);
      ap->set_i(a.i);
      break;
    case Kind::Float:
      ap->set_type(AP::FLOAT);
      ap->set_f(a.f);
      break;
    case Kind::Ints:
      ap->set_type(AP::INTS);
      for (int64_t x : a.ints) ap->add_ints(x);
      break;
    case Kind::Floats:
      ap->set_type(AP::FLOATS);
      for (float x : a.floats) ap->add_floats(x);
      break;
    case Kind::String:
      ap->set_type(AP::STRING);
      ap->set_s(a.s);
      break;
    case Kind::Tensor:
      if (!a.t) node_fail(n, "attribute " + quote(k) + " holds no tensor");
      ap->set_type(AP::TENSOR);
      fill_tensor(ap->mutable_t(), *a.t,
                  "node " + quote(n.name) + " (" + ir::op_name(n.op) + "): attribute " + quote(k));
      break;
  }
}

void Writer::write_node(const ir::Node& n) {
  if (is_internal_op(n.op))
    node_fail(n, "q8-internal op cannot be written to ONNX; export the graph before fusion/lowering");
  const OpSpec* rule = find_op(n.op);
  if (!rule) node_fail(n, "op cannot be written to ONNX");
  if (n.outputs.empty()) node_fail(n, "node has no outputs");

  ::onnx::NodeProto* np = gp_->add_node();
  np->set_name(n.name);
  np->set_op_type(rule->onnx);
  if (*rule->domain) {
    np->set_domain(rule->domain);
    uses_ms_domain_ = true;
  }

  std::vector<std::string> inputs;
  for (int v : n.inputs) {
    if (v == ir::kNoValue) {
      inputs.emplace_back();
      continue;
    }
    const ir::Value& val = g_.values[v];
    if (val.is_const() && !produced_[v] && !initialized_[v]) {
      initialized_[v] = 1;
      ::onnx::TensorProto* t = gp_->add_initializer();
      t->set_name(val.name);
      fill_tensor(t, *val.constant, "initializer " + quote(val.name));
    }
    inputs.push_back(val.name);
  }

  // Attributes, checked against what the importer reads back at the written opset.
  for (const auto& kv : n.attrs) {
    const std::string& k = kv.first;
    const Attribute& a = kv.second;
    if (is_internal_attr(k))
      node_fail(n, "q8-internal attribute " + quote(k) +
                       " cannot be written to ONNX; export the graph before fusion/lowering");
    if (n.op == ir::Op::Clip && (k == "min" || k == "max")) continue;  // below
    if (n.op == ir::Op::Slice && k == "split_total") continue;         // a check of the import
    if (n.op == ir::Op::Dropout && k == "ratio") continue;             // below
    const AttrSpec* ar = nullptr;
    for (const AttrSpec& r : rule->attrs)
      if (k == r.name) ar = &r;
    if (!ar) node_fail(n, "attribute " + quote(k) + " is not an ONNX attribute of " + rule->onnx);
    if (a.kind != ar->kind)
      node_fail(n, "attribute " + quote(k) + " is " + kind_name(a.kind) + ", expected " + kind_name(ar->kind));
    if (opset_ < ar->min_opset || opset_ > ar->max_opset) {
      if (holds_default(k, a)) continue;
      node_fail(n, "attribute " + quote(k) + " needs opset " + std::to_string(ar->min_opset) +
                       " or later, the graph has opset " + std::to_string(opset_));
    }
    write_attr(n, k, a, np);
  }

  if (n.op == ir::Op::Clip && (n.has_attr("min") || n.has_attr("max"))) {
    // Canonical form (passes.h canonicalize_clip) -> opset-11 form: bounds as scalar inputs.
    if (n.inputs.size() != 1) node_fail(n, "has both bound attributes and bound inputs");
    const float lo = n.attr_float("min", -INFINITY), hi = n.attr_float("max", INFINITY);
    if (std::isnan(lo) || std::isnan(hi)) node_fail(n, "min/max is NaN");
    std::string lo_name, hi_name;
    if (!std::isinf(lo))
      lo_name = float_initializer("clip_min", lo);
    else if (lo > 0)
      node_fail(n, "min is +inf");
    if (!std::isinf(hi))
      hi_name = float_initializer("clip_max", hi);
    else if (hi < 0)
      node_fail(n, "max is -inf");
    if (!lo_name.empty() || !hi_name.empty()) inputs.push_back(lo_name);
    if (!hi_name.empty()) inputs.push_back(hi_name);
  }
  if (n.op == ir::Op::Dropout && n.has_attr("ratio")) {
    // Up to opset 11 the ratio was an attribute; from 12 it is the optional second input.
    const float ratio = n.attr_float("ratio", 0.5f);
    if (n.inputs.size() == 1) inputs.push_back(float_initializer("dropout_ratio", ratio));
  }

  while (!inputs.empty() && inputs.back().empty()) inputs.pop_back();  // trailing omitted inputs
  for (const std::string& s : inputs) np->add_input(s);
  for (int v : n.outputs) {
    if (v == ir::kNoValue) node_fail(n, "an output is missing");
    if (g_.values[v].is_const()) node_fail(n, "output " + quote(g_.values[v].name) + " is also a constant");
    if (produced_[v]) node_fail(n, "output " + quote(g_.values[v].name) + " is produced more than once");
    produced_[v] = 1;
    np->add_output(g_.values[v].name);
  }
}

std::string Writer::run() {
  g_.validate();
  check_names();
  produced_.assign(g_.values.size(), 0);
  initialized_.assign(g_.values.size(), 0);

  model_.set_ir_version(kIrVersion);
  model_.set_producer_name("q8");
  model_.set_producer_version("0.1.0");
  gp_ = model_.mutable_graph();
  gp_->set_name("q8");

  for (int v : g_.inputs) {
    const ir::Value& val = g_.values[v];
    if (val.dtype != DType::Float32 && val.dtype != DType::Undefined)
      fail("graph input " + quote(val.name) + " is " + ir::dtype_name(val.dtype) +
           "; only float32 inputs can be written");
    if (!val.has_shape) fail("graph input " + quote(val.name) + " has no shape");
    ::onnx::ValueInfoProto* vi = gp_->add_input();
    vi->set_name(val.name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(::onnx::TensorProto_DataType_FLOAT);
    set_shape(tt, val.shape);
  }

  // A folded constant as a graph output: a Constant node produces it (the importer does not
  // accept initializers as graph outputs); nodes that read it read that node's output.
  for (int v : g_.outputs) {
    const ir::Value& val = g_.values[v];
    if (!val.is_const() || produced_[v]) continue;
    ::onnx::NodeProto* np = gp_->add_node();
    np->set_name(val.name + "/Constant");
    np->set_op_type("Constant");
    np->add_output(val.name);
    auto* ap = np->add_attribute();
    ap->set_name("value");
    ap->set_type(::onnx::AttributeProto::TENSOR);
    fill_tensor(ap->mutable_t(), *val.constant, "graph output " + quote(val.name));
    produced_[v] = 1;
  }

  for (const ir::Node& n : g_.nodes) write_node(n);

  std::unordered_set<int> listed;
  for (int v : g_.outputs) {
    const ir::Value& val = g_.values[v];
    if (!listed.insert(v).second) fail("graph output " + quote(val.name) + " is listed twice");
    if (std::find(g_.inputs.begin(), g_.inputs.end(), v) != g_.inputs.end())
      fail("graph output " + quote(val.name) + " is a graph input; ONNX files q8 reads need a node in between");
    if (val.dtype != DType::Float32 && val.dtype != DType::Undefined)
      fail("graph output " + quote(val.name) + " is " + ir::dtype_name(val.dtype) +
           "; only float32 outputs can be written");
    if (!produced_[v]) fail("graph output " + quote(val.name) + " is never produced");
    ::onnx::ValueInfoProto* vi = gp_->add_output();
    vi->set_name(val.name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(::onnx::TensorProto_DataType_FLOAT);
    if (val.has_shape) set_shape(tt, val.shape);
  }

  auto* os = model_.add_opset_import();
  os->set_domain("");
  os->set_version(opset_);
  if (uses_ms_domain_) {
    auto* ms = model_.add_opset_import();
    ms->set_domain(kMsDomain);
    ms->set_version(1);
  }

  const size_t size = model_.ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX))
    fail("the model would take " + std::to_string(size) + " bytes, more than protobuf's 2 GiB limit");
  std::string out;
  if (!model_.SerializeToString(&out)) fail("protobuf could not serialize the model");
  return out;
}

}  // namespace

std::string serialize_model(const ir::Graph& g) {
  Writer w(g);
  return w.run();
}

void save_model(const ir::Graph& g, const std::string& path) {
  write_file_atomic(path, serialize_model(g));  // nothing touches the disk if serializing throws
}

}  // namespace q8::onnx
