// The ONNX writer: q8 graph -> ModelProto. Whole models round-trip through the public API with
// byte-identical outputs; small hand-built graphs are checked field by field in the ModelProto;
// what cannot be written is refused with the node's name; save_model is all-or-nothing.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "onnx.pb.h"
#include "onnx/onnx_importer.h"
#include "onnx/onnx_writer.h"
#include "passes/passes.h"
#include "q8/q8.h"

namespace {

using q8::ir::Attribute;
using q8::ir::ConstTensor;
using q8::ir::DType;
using q8::ir::Graph;
using q8::ir::Node;
using q8::ir::Op;
using q8::ir::Value;

const std::string kShared = std::string(Q8_SOURCE_DIR) + "/../shared/models/";

bool exists(const std::string& p) { return std::ifstream(p).good(); }

// The passes the API runs before an export (not fuse_activations / lower_quantized).
void export_passes(Graph& g) {
  q8::ir::fold_constants(g);
  q8::ir::remove_identities(g);
  q8::ir::canonicalize_clip(g);
}

std::vector<q8::Tensor> run_random(const q8::Model& m, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<q8::Tensor> in;
  for (const q8::TensorInfo& ti : m.inputs()) {
    std::vector<int64_t> shape = ti.shape;
    for (int64_t& d : shape)
      if (d < 0) d = 1;
    q8::Tensor t(shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = dist(rng);
    in.push_back(std::move(t));
  }
  q8::Session s(m);
  return s.run(in);
}

class OnnxWriterRoundTrip : public testing::TestWithParam<const char*> {};

TEST_P(OnnxWriterRoundTrip, SameOutputBytesThroughThePublicApi) {
  const std::string path = kShared + GetParam();
  if (!exists(path)) GTEST_SKIP() << "../shared is absent: " << path;
  Graph g = q8::onnx::import_file(path);
  export_passes(g);
  const std::string bytes = q8::onnx::serialize_model(g);

  q8::Model original = q8::Model::load(path);
  q8::Model written = q8::Model::load_from_memory(bytes.data(), bytes.size(), "written.onnx");
  ASSERT_EQ(original.inputs().size(), written.inputs().size());
  for (size_t i = 0; i < original.inputs().size(); ++i) {
    EXPECT_EQ(original.inputs()[i].name, written.inputs()[i].name);
    EXPECT_EQ(original.inputs()[i].shape, written.inputs()[i].shape);
  }
  ASSERT_EQ(original.outputs().size(), written.outputs().size());
  for (size_t i = 0; i < original.outputs().size(); ++i)
    EXPECT_EQ(original.outputs()[i].name, written.outputs()[i].name);

  const std::vector<q8::Tensor> a = run_random(original, 7), b = run_random(written, 7);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].shape(), b[i].shape());
    EXPECT_EQ(std::memcmp(a[i].data(), b[i].data(), a[i].numel() * sizeof(float)), 0) << "output " << i;
  }

  // Writing what was read back gives the same bytes: the mapping is a fixed point.
  Graph again = q8::onnx::import_model(bytes.data(), bytes.size(), "written.onnx");
  export_passes(again);
  EXPECT_EQ(q8::onnx::serialize_model(again), bytes);
}

INSTANTIATE_TEST_SUITE_P(Shared, OnnxWriterRoundTrip,
                         testing::Values("seed.onnx", "seed.qdq.onnx", "resnet18.onnx", "resnet18.qdq.onnx",
                                         "mobilenet_v2.onnx", "mobilenet_v2.qdq.onnx", "fashion_seed.onnx",
                                         "fashion_seed.qdq.onnx", "seed.qop.onnx"),
                         [](const testing::TestParamInfo<const char*>& i) {
                           std::string n = i.param;
                           n = n.substr(0, n.size() - 5);
                           for (char& c : n)
                             if (c == '.') c = '_';
                           return n;
                         });

// ---------------------------------------------------------------------------------------------
// Hand-built graphs

std::shared_ptr<ConstTensor> tensor(DType t, q8::ir::Shape dims, const void* data) {
  auto c = std::make_shared<ConstTensor>();
  c->dtype = t;
  c->dims = std::move(dims);
  c->bytes.resize(static_cast<size_t>(c->numel()) * q8::ir::dtype_size(t));
  if (!c->bytes.empty()) std::memcpy(c->bytes.data(), data, c->bytes.size());
  return c;
}

int add_input(Graph& g, const std::string& name, q8::ir::Shape shape) {
  Value v;
  v.name = name;
  v.dtype = DType::Float32;
  v.shape = std::move(shape);
  v.has_shape = true;
  const int id = g.add_value(v);
  g.inputs.push_back(id);
  return id;
}

int add_const(Graph& g, const std::string& name, std::shared_ptr<ConstTensor> c) {
  Value v;
  v.name = name;
  v.dtype = c->dtype;
  v.shape = c->dims;
  v.has_shape = true;
  v.constant = std::move(c);
  return g.add_value(v);
}

int add_act(Graph& g, const std::string& name) {
  Value v;
  v.name = name;
  v.dtype = DType::Float32;
  return g.add_value(v);
}

Node& add_node(Graph& g, Op op, const std::string& name, std::vector<int> in, std::vector<int> out) {
  Node n;
  n.op = op;
  n.name = name;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  g.nodes.push_back(std::move(n));
  return g.nodes.back();
}

Attribute attr_f(float f) {
  Attribute a;
  a.kind = Attribute::Kind::Float;
  a.f = f;
  return a;
}
Attribute attr_i(int64_t i) {
  Attribute a;
  a.kind = Attribute::Kind::Int;
  a.i = i;
  return a;
}

::onnx::ModelProto parse(const std::string& bytes) {
  ::onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(bytes));
  return m;
}

const ::onnx::TensorProto* find_init(const ::onnx::GraphProto& g, const std::string& name) {
  for (const auto& t : g.initializer())
    if (t.name() == name) return &t;
  return nullptr;
}

const ::onnx::AttributeProto* find_attr(const ::onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

float scalar_f(const ::onnx::TensorProto& t) {
  float f = 0;
  EXPECT_EQ(t.raw_data().size(), 4u);
  if (t.raw_data().size() == 4) std::memcpy(&f, t.raw_data().data(), 4);
  return f;
}

// x[N,4] -> Clip(max=6) -> y
Graph clip_max_only() {
  Graph g;
  g.source = "clip.onnx";
  g.opset = 11;
  const int x = add_input(g, "x", {q8::ir::kUnknownDim, 4});
  const int y = add_act(g, "y");
  Node& c = add_node(g, Op::Clip, "clip1", {x}, {y});
  c.attrs["min"] = attr_f(-std::numeric_limits<float>::infinity());
  c.attrs["max"] = attr_f(6.f);
  g.outputs.push_back(y);
  return g;
}

TEST(OnnxWriter, ClipWithOnlyMaxBecomesAnInputWithAnEmptyMin) {
  const Graph g = clip_max_only();
  const std::string bytes = q8::onnx::serialize_model(g);
  const ::onnx::ModelProto m = parse(bytes);
  EXPECT_EQ(m.ir_version(), 8);
  EXPECT_EQ(m.producer_name(), "q8");
  ASSERT_EQ(m.opset_import_size(), 1);
  EXPECT_EQ(m.opset_import(0).domain(), "");
  EXPECT_EQ(m.opset_import(0).version(), 13);  // max(13, 11)

  const ::onnx::GraphProto& gp = m.graph();
  ASSERT_EQ(gp.input_size(), 1);
  EXPECT_EQ(gp.input(0).name(), "x");
  const auto& tt = gp.input(0).type().tensor_type();
  EXPECT_EQ(tt.elem_type(), ::onnx::TensorProto_DataType_FLOAT);
  ASSERT_EQ(tt.shape().dim_size(), 2);
  EXPECT_EQ(tt.shape().dim(0).dim_param(), "batch");
  EXPECT_FALSE(tt.shape().dim(0).has_dim_value());
  EXPECT_EQ(tt.shape().dim(1).dim_value(), 4);
  ASSERT_EQ(gp.output_size(), 1);
  EXPECT_EQ(gp.output(0).name(), "y");
  EXPECT_EQ(gp.output(0).type().tensor_type().elem_type(), ::onnx::TensorProto_DataType_FLOAT);

  ASSERT_EQ(gp.node_size(), 1);
  const ::onnx::NodeProto& n = gp.node(0);
  EXPECT_EQ(n.op_type(), "Clip");
  EXPECT_EQ(n.name(), "clip1");
  EXPECT_EQ(n.attribute_size(), 0);
  ASSERT_EQ(n.input_size(), 3);
  EXPECT_EQ(n.input(0), "x");
  EXPECT_EQ(n.input(1), "");  // min omitted
  const ::onnx::TensorProto* hi = find_init(gp, n.input(2));
  ASSERT_NE(hi, nullptr);
  EXPECT_EQ(hi->data_type(), ::onnx::TensorProto_DataType_FLOAT);
  EXPECT_EQ(hi->dims_size(), 0);
  EXPECT_EQ(scalar_f(*hi), 6.f);
  EXPECT_EQ(gp.initializer_size(), 1);

  // The importer reads it back, and canonicalize_clip gives the same bounds.
  Graph back = q8::onnx::import_model(bytes.data(), bytes.size(), "back.onnx");
  q8::ir::canonicalize_clip(back);
  ASSERT_EQ(back.nodes.size(), 1u);
  EXPECT_EQ(back.nodes[0].attr_float("max", 0), 6.f);
  EXPECT_TRUE(std::isinf(back.nodes[0].attr_float("min", 0)));
  EXPECT_EQ(back.values[back.inputs[0]].shape, (q8::ir::Shape{q8::ir::kUnknownDim, 4}));
}

TEST(OnnxWriter, ClipBoundsAreSharedAndOmittedWhenInfinite) {
  Graph g = clip_max_only();
  // A second Clip, min 0 max 6 (ReLU6), and a third without bounds at all.
  const int y2 = add_act(g, "y2"), y3 = add_act(g, "y3");
  Node& c2 = add_node(g, Op::Clip, "clip2", {g.outputs[0]}, {y2});
  c2.attrs["min"] = attr_f(0.f);
  c2.attrs["max"] = attr_f(6.f);
  Node& c3 = add_node(g, Op::Clip, "clip3", {y2}, {y3});
  c3.attrs["min"] = attr_f(-INFINITY);
  c3.attrs["max"] = attr_f(INFINITY);
  g.outputs = {y3};
  const ::onnx::ModelProto m = parse(q8::onnx::serialize_model(g));
  const auto& gp = m.graph();
  ASSERT_EQ(gp.node_size(), 3);
  EXPECT_EQ(gp.node(0).input(2), gp.node(1).input(2));  // one initializer for max = 6
  ASSERT_EQ(gp.node(1).input_size(), 3);
  EXPECT_EQ(scalar_f(*find_init(gp, gp.node(1).input(1))), 0.f);
  EXPECT_EQ(gp.node(2).input_size(), 1);
  EXPECT_EQ(gp.initializer_size(), 2);
}

TEST(OnnxWriter, GemmAttributesAndInitializers) {
  Graph g;
  g.source = "gemm.onnx";
  g.opset = 17;
  const int x = add_input(g, "x", {2, 8});
  std::vector<float> w(4 * 8), b = {1, 2, 3, 4};
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.25f * static_cast<float>(i) - 3.f;
  const int wv = add_const(g, "fc.weight", tensor(DType::Float32, {4, 8}, w.data()));
  const int bv = add_const(g, "fc.bias", tensor(DType::Float32, {4}, b.data()));
  const int y = add_act(g, "y");
  Node& n = add_node(g, Op::Gemm, "fc", {x, wv, bv}, {y});
  n.attrs["alpha"] = attr_f(0.5f);
  n.attrs["beta"] = attr_f(2.f);
  n.attrs["transB"] = attr_i(1);
  g.outputs.push_back(y);
  g.values[y].shape = {2, 4};
  g.values[y].has_shape = true;

  const std::string bytes = q8::onnx::serialize_model(g);
  const ::onnx::ModelProto m = parse(bytes);
  EXPECT_EQ(m.opset_import(0).version(), 17);
  const auto& gp = m.graph();
  ASSERT_EQ(gp.node_size(), 1);
  const auto& np = gp.node(0);
  EXPECT_EQ(np.op_type(), "Gemm");
  EXPECT_EQ(np.domain(), "");
  ASSERT_EQ(np.input_size(), 3);
  EXPECT_EQ(np.input(1), "fc.weight");
  EXPECT_EQ(np.input(2), "fc.bias");
  EXPECT_EQ(np.attribute_size(), 3);
  const auto* alpha = find_attr(np, "alpha");
  const auto* beta = find_attr(np, "beta");
  const auto* tb = find_attr(np, "transB");
  ASSERT_TRUE(alpha && beta && tb);
  EXPECT_EQ(alpha->type(), ::onnx::AttributeProto::FLOAT);
  EXPECT_EQ(alpha->f(), 0.5f);
  EXPECT_EQ(beta->type(), ::onnx::AttributeProto::FLOAT);
  EXPECT_EQ(beta->f(), 2.f);
  EXPECT_EQ(tb->type(), ::onnx::AttributeProto::INT);
  EXPECT_EQ(tb->i(), 1);

  const auto* wt = find_init(gp, "fc.weight");
  ASSERT_NE(wt, nullptr);
  EXPECT_EQ(wt->data_type(), ::onnx::TensorProto_DataType_FLOAT);
  ASSERT_EQ(wt->dims_size(), 2);
  EXPECT_EQ(wt->dims(0), 4);
  EXPECT_EQ(wt->dims(1), 8);
  ASSERT_EQ(wt->raw_data().size(), w.size() * 4);
  EXPECT_EQ(std::memcmp(wt->raw_data().data(), w.data(), w.size() * 4), 0);
  EXPECT_EQ(find_init(gp, "fc.bias")->raw_data().size(), 16u);
  // Graph inputs are only the runtime input; the output carries its known shape.
  ASSERT_EQ(gp.input_size(), 1);
  const auto& os = gp.output(0).type().tensor_type().shape();
  ASSERT_EQ(os.dim_size(), 2);
  EXPECT_EQ(os.dim(0).dim_value(), 2);
  EXPECT_EQ(os.dim(1).dim_value(), 4);

  Graph back = q8::onnx::import_model(bytes.data(), bytes.size(), "back.onnx");
  ASSERT_EQ(back.nodes.size(), 1u);
  EXPECT_EQ(back.nodes[0].attr_float("alpha", 0), 0.5f);
  EXPECT_EQ(back.nodes[0].attr_int("transB", 0), 1);
  EXPECT_EQ(back.values[back.nodes[0].inputs[1]].constant->bytes, g.values[wv].constant->bytes);
}

TEST(OnnxWriter, PerChannelDequantizeLinearKeepsAxis) {
  Graph g;
  g.source = "dq.onnx";
  g.opset = 13;
  const int x = add_input(g, "x", {3, 2});
  const int8_t wq[6] = {-127, -1, 0, 1, 64, 127};
  const float scale[3] = {0.5f, 0.25f, 0.125f};
  const int8_t zp[3] = {0, 0, 0};
  const int w = add_const(g, "w_q", tensor(DType::Int8, {3, 2}, wq));
  const int s = add_const(g, "w_scale_t", tensor(DType::Float32, {3}, scale));
  const int z = add_const(g, "w_zp", tensor(DType::Int8, {3}, zp));
  const int wf = add_act(g, "w_f"), y = add_act(g, "y");
  Node& dq = add_node(g, Op::DequantizeLinear, "dq_w", {w, s, z}, {wf});
  dq.attrs["axis"] = attr_i(0);
  add_node(g, Op::Add, "add", {x, wf}, {y});
  g.outputs.push_back(y);

  const std::string bytes = q8::onnx::serialize_model(g);
  const ::onnx::ModelProto m = parse(bytes);
  const auto& gp = m.graph();
  ASSERT_EQ(gp.node_size(), 2);
  const auto& np = gp.node(0);
  EXPECT_EQ(np.op_type(), "DequantizeLinear");
  ASSERT_EQ(np.input_size(), 3);
  EXPECT_EQ(np.input(0), "w_q");
  EXPECT_EQ(np.input(1), "w_scale_t");
  EXPECT_EQ(np.input(2), "w_zp");
  const auto* axis = find_attr(np, "axis");
  ASSERT_NE(axis, nullptr);
  EXPECT_EQ(axis->type(), ::onnx::AttributeProto::INT);
  EXPECT_EQ(axis->i(), 0);
  const auto* wt = find_init(gp, "w_q");
  ASSERT_NE(wt, nullptr);
  EXPECT_EQ(wt->data_type(), ::onnx::TensorProto_DataType_INT8);
  EXPECT_EQ(wt->raw_data(), std::string(reinterpret_cast<const char*>(wq), 6));
  EXPECT_EQ(find_init(gp, "w_scale_t")->data_type(), ::onnx::TensorProto_DataType_FLOAT);
  EXPECT_EQ(find_init(gp, "w_zp")->data_type(), ::onnx::TensorProto_DataType_INT8);
  EXPECT_EQ(gp.initializer_size(), 3);

  Graph back = q8::onnx::import_model(bytes.data(), bytes.size(), "back.onnx");
  ASSERT_EQ(back.nodes.size(), 2u);
  EXPECT_EQ(back.nodes[0].op, Op::DequantizeLinear);
  EXPECT_EQ(back.nodes[0].attr_int("axis", 1), 0);
}

TEST(OnnxWriter, ConstantGraphOutputIsWrittenAsAConstantNode) {
  Graph g;
  g.source = "c.onnx";
  g.opset = 13;
  const int x = add_input(g, "x", {2});
  const float v[2] = {1.f, 2.f};
  const int c = add_const(g, "c", tensor(DType::Float32, {2}, v));
  const int y = add_act(g, "y");
  add_node(g, Op::Add, "add", {x, c}, {y});
  g.outputs = {y, c};
  const std::string bytes = q8::onnx::serialize_model(g);
  const ::onnx::ModelProto m = parse(bytes);
  ASSERT_EQ(m.graph().node_size(), 2);
  EXPECT_EQ(m.graph().node(0).op_type(), "Constant");
  EXPECT_EQ(m.graph().initializer_size(), 0);
  Graph back = q8::onnx::import_model(bytes.data(), bytes.size(), "back.onnx");
  EXPECT_EQ(back.outputs.size(), 2u);
}

TEST(OnnxWriter, Opset11DropoutRatioBecomesAnInput) {
  Graph g;
  g.source = "drop.onnx";
  g.opset = 11;
  const int x = add_input(g, "x", {1, 2});
  const int y = add_act(g, "y"), z = add_act(g, "z");
  Node& d = add_node(g, Op::Dropout, "drop", {x}, {y});
  d.attrs["ratio"] = attr_f(0.25f);
  add_node(g, Op::Relu, "relu", {y}, {z});
  g.outputs.push_back(z);
  const std::string bytes = q8::onnx::serialize_model(g);
  const ::onnx::ModelProto m = parse(bytes);
  const auto& np = m.graph().node(0);
  EXPECT_EQ(np.attribute_size(), 0);
  ASSERT_EQ(np.input_size(), 2);
  EXPECT_EQ(scalar_f(*find_init(m.graph(), np.input(1))), 0.25f);
  EXPECT_NO_THROW(q8::onnx::import_model(bytes.data(), bytes.size(), "back.onnx"));
}

// ---------------------------------------------------------------------------------------------
// Refusals

std::string write_error(const Graph& g) {
  try {
    q8::onnx::serialize_model(g);
  } catch (const q8::Error& e) {
    const std::string w = e.what();
    EXPECT_EQ(w.find('\n'), std::string::npos) << w;
    return w;
  }
  ADD_FAILURE() << "serialize_model did not throw";
  return "";
}

#define EXPECT_HAS(haystack, needle)                                                                  \
  do {                                                                                                \
    const std::string h_ = (haystack);                                                                \
    EXPECT_NE(h_.find(needle), std::string::npos) << "message: " << h_ << "\nexpected: " << (needle); \
  } while (0)

TEST(OnnxWriter, RefusesInternalOps) {
  Graph g;
  g.source = "int.onnx";
  const int x = add_input(g, "x", {1, 4});
  const int8_t w[8] = {};
  const int wv = add_const(g, "w", tensor(DType::Int8, {2, 4}, w));
  const int y = add_act(g, "y");
  Node& n = add_node(g, Op::QuantizedDense, "dense7", {x, wv}, {y});
  Attribute ws;
  ws.kind = Attribute::Kind::Floats;
  ws.floats = {1.f, 1.f};
  n.attrs["w_scale"] = ws;
  g.outputs.push_back(y);
  const std::string e = write_error(g);
  EXPECT_HAS(e, "int.onnx");
  EXPECT_HAS(e, "node 'dense7' (QuantizedDense)");
  EXPECT_HAS(e, "before fusion");
}

TEST(OnnxWriter, RefusesInternalAttributes) {
  for (const char* k : {"act_min", "act_max", "act_op", "qmin", "qmax", "w_scale"}) {
    Graph g;
    g.source = "attr.onnx";
    const int x = add_input(g, "x", {1, 2});
    const int y = add_act(g, "y");
    Node& n = add_node(g, Op::Add, "add3", {x, x}, {y});
    n.attrs[k] = attr_f(0.f);
    g.outputs.push_back(y);
    const std::string e = write_error(g);
    EXPECT_HAS(e, "node 'add3' (Add)");
    EXPECT_HAS(e, std::string("'") + k + "'");
  }
}

TEST(OnnxWriter, RefusesUnknownOrMistypedAttributes) {
  Graph g = clip_max_only();
  const int y2 = add_act(g, "y2");
  Node& n = add_node(g, Op::Flatten, "flat", {g.outputs[0]}, {y2});
  n.attrs["axis"] = attr_f(1.f);
  g.outputs = {y2};
  EXPECT_HAS(write_error(g), "node 'flat' (Flatten): attribute 'axis' is FLOAT, expected INT");
  g.nodes.back().attrs.clear();
  g.nodes.back().attrs["bogus"] = attr_i(1);
  EXPECT_HAS(write_error(g), "'bogus'");
}

TEST(OnnxWriter, RefusesDuplicateValueNames) {
  Graph g;
  g.source = "dup.onnx";
  const int x = add_input(g, "x", {1, 2});
  const int a = add_act(g, "t");
  const int b = add_act(g, "t");
  add_node(g, Op::Relu, "r1", {x}, {a});
  add_node(g, Op::Relu, "r2", {a}, {b});
  g.outputs.push_back(b);
  const std::string e = write_error(g);
  EXPECT_HAS(e, "dup.onnx");
  EXPECT_HAS(e, "'t'");
}

TEST(OnnxWriter, GeneratedNamesAvoidExistingOnes) {
  Graph g = clip_max_only();
  g.values[g.inputs[0]].name = "clip_max";  // the name the writer would pick for the bound
  const ::onnx::ModelProto m = parse(q8::onnx::serialize_model(g));
  EXPECT_EQ(m.graph().node(0).input(0), "clip_max");
  EXPECT_NE(m.graph().node(0).input(2), "clip_max");
  const std::string bytes = m.SerializeAsString();
  EXPECT_NO_THROW(q8::onnx::import_model(bytes.data(), bytes.size(), "back.onnx"));
}

// ---------------------------------------------------------------------------------------------
// save_model

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d))
      if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) names.push_back(e->d_name);
    ::closedir(d);
  }
  return names;
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/q8_writer_XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    for (const std::string& n : list_dir(path)) {
      const std::string p = path + "/" + n;
      if (::unlink(p.c_str()) != 0) ::rmdir(p.c_str());
    }
    ::rmdir(path.c_str());
  }
};

TEST(OnnxWriter, SaveModelWritesAWholeLoadableFile) {
  TempDir dir;
  const std::string path = dir.path + "/clip.onnx";
  const Graph g = clip_max_only();
  q8::onnx::save_model(g, path);
  EXPECT_EQ(list_dir(dir.path), std::vector<std::string>{"clip.onnx"});
  std::ifstream f(path, std::ios::binary);
  const std::string got((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, q8::onnx::serialize_model(g));
  q8::Model m = q8::Model::load(path);
  q8::Tensor x({1, 4}, {-1.f, 3.f, 6.f, 9.f});
  q8::Session s(m);
  EXPECT_EQ(s.run({x})[0].values(), (std::vector<float>{-1.f, 3.f, 6.f, 6.f}));
  // Overwriting replaces the file whole.
  q8::onnx::save_model(g, path);
  EXPECT_EQ(list_dir(dir.path), std::vector<std::string>{"clip.onnx"});
}

TEST(OnnxWriter, SaveModelToAnUnwritablePathLeavesNothingBehind) {
  TempDir dir;
  const Graph g = clip_max_only();
  // A missing folder: nothing can be created at all.
  const std::string missing = dir.path + "/no/such/folder/m.onnx";
  try {
    q8::onnx::save_model(g, missing);
    ADD_FAILURE() << "save_model did not throw";
  } catch (const q8::Error& e) {
    EXPECT_HAS(e.what(), missing);
  }
  EXPECT_TRUE(list_dir(dir.path).empty());
  // The path is a folder: the temporary file is written, the rename fails, and it is removed.
  const std::string folder = dir.path + "/taken";
  ASSERT_EQ(::mkdir(folder.c_str(), 0755), 0);
  try {
    q8::onnx::save_model(g, folder);
    ADD_FAILURE() << "save_model did not throw";
  } catch (const q8::Error& e) {
    EXPECT_HAS(e.what(), folder);
  }
  EXPECT_EQ(list_dir(dir.path), std::vector<std::string>{"taken"});
  EXPECT_TRUE(list_dir(folder).empty());
  // A graph that cannot be written touches nothing.
  Graph bad = g;
  bad.nodes[0].attrs["act_min"] = attr_f(0.f);
  EXPECT_THROW(q8::onnx::save_model(bad, dir.path + "/bad.onnx"), q8::Error);
  EXPECT_EQ(list_dir(dir.path), std::vector<std::string>{"taken"});
}

}  // namespace
