// ONNX importer: small ModelProtos built here, serialized and imported; the IR they give and
// every refusal path. Also the real models in ../shared/models when that folder exists.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "onnx.pb.h"
#include "onnx/onnx_importer.h"
#include "q8/error.h"
#include "tests/onnx_model_builder.h"

namespace {

using q8::ir::Attribute;
using q8::ir::DType;
using q8::ir::Graph;
using q8::ir::Op;

// The shared builder, plus an import through the ONNX importer.
struct ModelBuilder : q8test::OnnxModelBuilder {
  using OnnxModelBuilder::OnnxModelBuilder;
  Graph import(const q8::onnx::ImportLimits& lim = {}) const {
    std::string b = bytes();
    return q8::onnx::import_model(b.data(), b.size(), "m.onnx", lim);
  }
};
using q8test::add_attr;
using q8test::set_float;
using q8test::set_int;
using q8test::set_ints;
using q8test::set_str;

std::string import_error(const std::string& bytes, const q8::onnx::ImportLimits& lim = {}) {
  try {
    q8::onnx::import_model(bytes.data(), bytes.size(), "m.onnx", lim);
  } catch (const q8::Error& e) {
    std::string w = e.what();
    EXPECT_EQ(w.find('\n'), std::string::npos) << "multi-line error: " << w;
    EXPECT_EQ(w.rfind("m.onnx: ", 0), 0u) << "error does not start with the source: " << w;
    return w;
  }
  ADD_FAILURE() << "import did not throw";
  return "";
}
std::string import_error(const ModelBuilder& b, const q8::onnx::ImportLimits& lim = {}) {
  return import_error(b.bytes(), lim);
}

#define EXPECT_HAS(haystack, needle)                                                      \
  do {                                                                                    \
    const std::string h_ = (haystack);                                                    \
    EXPECT_NE(h_.find(needle), std::string::npos) << "message: " << h_ << "\n"            \
                                                  << "expected to contain: " << (needle); \
  } while (0)

// x[N,3,8,8] -> Conv(w,b) -> Relu -> y
ModelBuilder conv_relu(int64_t opset = 13) {
  ModelBuilder b(opset);
  b.input("x", {-1, 3, 8, 8}).output("y");
  std::vector<float> w(4 * 3 * 3 * 3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.01f * static_cast<float>(i);
  b.init_f("w", {4, 3, 3, 3}, w);
  b.init_f("b", {4}, {1, 2, 3, 4});
  auto& c = b.node("Conv", {"x", "w", "b"}, {"c"}, "conv1");
  set_ints(c, "kernel_shape", {3, 3});
  set_ints(c, "strides", {2, 2});
  set_ints(c, "pads", {1, 1, 1, 1});
  set_ints(c, "dilations", {1, 1});
  set_int(c, "group", 1);
  b.node("Relu", {"c"}, {"y"}, "relu1");
  return b;
}

const q8::ir::Node* find_node(const Graph& g, const std::string& name) {
  for (const auto& n : g.nodes)
    if (n.name == name) return &n;
  return nullptr;
}

// ----------------------------------------------------------------------------------------------

TEST(Importer, ConvReluGraph) {
  Graph g = conv_relu().import();
  EXPECT_EQ(g.source, "m.onnx");
  EXPECT_EQ(g.opset, 13);
  ASSERT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[0].op, Op::Conv);
  EXPECT_EQ(g.nodes[0].name, "conv1");
  EXPECT_EQ(g.nodes[1].op, Op::Relu);
  EXPECT_EQ(g.nodes[0].attr_ints("strides"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(g.nodes[0].attr_ints("pads"), (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(g.nodes[0].attr_int("group", 0), 1);

  ASSERT_EQ(g.inputs.size(), 1u);
  const auto& x = g.values[g.inputs[0]];
  EXPECT_EQ(x.name, "x");
  EXPECT_EQ(x.dtype, DType::Float32);
  EXPECT_TRUE(x.has_shape);
  EXPECT_EQ(x.shape, (q8::ir::Shape{q8::ir::kUnknownDim, 3, 8, 8}));
  EXPECT_FALSE(x.is_const());

  ASSERT_EQ(g.nodes[0].inputs.size(), 3u);
  const auto& w = g.values[g.nodes[0].inputs[1]];
  ASSERT_TRUE(w.is_const());
  EXPECT_EQ(w.constant->dtype, DType::Float32);
  EXPECT_EQ(w.constant->dims, (q8::ir::Shape{4, 3, 3, 3}));
  EXPECT_FLOAT_EQ(w.constant->data<float>()[5], 0.05f);
  const auto& bias = g.values[g.nodes[0].inputs[2]];
  EXPECT_FLOAT_EQ(bias.constant->data<float>()[3], 4.f);

  const auto& c = g.values[g.nodes[0].outputs[0]];
  EXPECT_EQ(c.dtype, DType::Float32);
  EXPECT_FALSE(c.has_shape);
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.values[g.outputs[0]].name, "y");
  EXPECT_EQ(g.nodes[1].outputs[0], g.outputs[0]);
}

TEST(Importer, ImportFileAndMissingFile) {
  const std::string path = ::testing::TempDir() + "q8_importer_test.onnx";
  {
    std::ofstream f(path, std::ios::binary);
    std::string b = conv_relu().bytes();
    f.write(b.data(), static_cast<std::streamsize>(b.size()));
  }
  Graph g = q8::onnx::import_file(path);
  EXPECT_EQ(g.source, path);
  EXPECT_EQ(g.nodes.size(), 2u);
  std::remove(path.c_str());
  try {
    q8::onnx::import_file(path);
    FAIL() << "no throw";
  } catch (const q8::Error& e) {
    EXPECT_HAS(e.what(), path);
    EXPECT_HAS(e.what(), "cannot open");
  }
}

TEST(Importer, SortsNodesStably) {
  ModelBuilder b;
  b.input("x", {1, 4}).output("y");
  // File order: d (needs c), a, c (needs a), b2 (independent of c), y = Add(d, b2)
  b.node("Relu", {"c"}, {"d"}, "D");
  b.node("Relu", {"x"}, {"a"}, "A");
  b.node("Relu", {"a"}, {"c"}, "C");
  b.node("Relu", {"x"}, {"b2"}, "B");
  b.node("Add", {"d", "b2"}, {"y"}, "Y");
  Graph g = b.import();
  std::vector<std::string> names;
  for (const auto& n : g.nodes) names.push_back(n.name);
  EXPECT_EQ(names, (std::vector<std::string>{"A", "C", "D", "B", "Y"}));
}

TEST(Importer, UnnamedNodesGetOpAndIndex) {
  ModelBuilder b;
  b.input("x", {1, 4}).output("y");
  b.node("Relu", {"x"}, {"r"});
  b.node("Identity", {"r"}, {"y"});
  Graph g = b.import();
  EXPECT_EQ(g.nodes[0].name, "Relu_0");
  EXPECT_EQ(g.nodes[1].name, "Identity_1");
  ModelBuilder u;
  u.input("x", {1, 4}).output("y");
  u.node("Relu", {"x"}, {"r"});
  u.node("Det", {"r"}, {"y"});
  EXPECT_EQ(import_error(u), "m.onnx: node 'Det_1' (Det): unsupported op 'Det'");
}

TEST(Importer, UnsupportedOpNamesOpAndNode) {
  ModelBuilder b;
  b.input("x", {1, 2, 3}).output("y");
  b.node("LSTM", {"x", "W", "R"}, {"y"}, "lstm1");
  EXPECT_EQ(import_error(b), "m.onnx: node 'lstm1' (LSTM): unsupported op 'LSTM'");
}

TEST(Importer, Opset) {
  EXPECT_HAS(import_error(conv_relu(10)), "opset 10 is not supported");
  EXPECT_HAS(import_error(conv_relu(22)), "opset 22 is not supported");
  EXPECT_EQ(conv_relu(11).import().opset, 11);
  EXPECT_EQ(conv_relu(21).import().opset, 21);
  ModelBuilder none = conv_relu();
  none.m.mutable_opset_import(0)->set_domain("com.microsoft");
  EXPECT_HAS(import_error(none), "no default-domain");
  ModelBuilder aionnx = conv_relu();
  aionnx.m.mutable_opset_import(0)->set_domain("ai.onnx");
  EXPECT_EQ(aionnx.import().opset, 13);
}

TEST(Importer, NonDefaultDomainNode) {
  ModelBuilder b = conv_relu();
  auto* o = b.m.add_opset_import();
  o->set_domain("org.example");
  o->set_version(1);
  b.g().mutable_node(1)->set_domain("org.example");
  std::string e = import_error(b);
  EXPECT_HAS(e, "node 'relu1' (Relu)");
  EXPECT_HAS(e, "domain 'org.example'");
}

TEST(Importer, OnnxRuntimeDomainAcceptsOnlyItsQuantizedOps) {
  ModelBuilder b = conv_relu();
  auto* o = b.m.add_opset_import();
  o->set_domain("com.microsoft");
  o->set_version(1);
  b.g().mutable_node(1)->set_domain("com.microsoft");
  std::string e = import_error(b);
  EXPECT_HAS(e, "node 'relu1' (Relu)");
  EXPECT_HAS(e, "unsupported op 'com.microsoft.Relu'");
}

TEST(Importer, MissingInput) {
  ModelBuilder b;
  b.input("x", {1, 4}).output("y");
  b.node("Add", {"x", "nowhere"}, {"y"}, "add1");
  EXPECT_EQ(
      import_error(b),
      "m.onnx: node 'add1' (Add): input 'nowhere' is not a graph input, an initializer or the output of any node");
}

TEST(Importer, Cycle) {
  ModelBuilder b;
  b.input("x", {1, 4}).output("y");
  b.node("Add", {"x", "c"}, {"a"}, "n_a");
  b.node("Relu", {"a"}, {"c"}, "n_c");
  b.node("Relu", {"c"}, {"y"}, "n_y");
  std::string e = import_error(b);
  EXPECT_HAS(e, "cycle");
  EXPECT_TRUE(e.find("n_a") != std::string::npos || e.find("n_c") != std::string::npos) << e;
  ModelBuilder self;
  self.input("x", {1, 4}).output("y");
  self.node("Add", {"x", "y"}, {"y"}, "selfloop");
  EXPECT_HAS(import_error(self), "node 'selfloop' (Add): the graph has a cycle");
}

TEST(Importer, OutputsMustBeUniqueAndProduced) {
  ModelBuilder twice;
  twice.input("x", {1, 4}).output("y");
  twice.node("Relu", {"x"}, {"y"}, "r1");
  twice.node("Relu", {"x"}, {"y"}, "r2");
  EXPECT_HAS(import_error(twice), "node 'r2' (Relu): output 'y' is produced by more than one node");
  ModelBuilder shadow;
  shadow.input("x", {1, 4}).output("y");
  shadow.node("Relu", {"x"}, {"x"}, "r1");
  EXPECT_HAS(import_error(shadow), "has the name of a graph input");
  ModelBuilder missing;
  missing.input("x", {1, 4}).output("zzz");
  missing.node("Relu", {"x"}, {"y"}, "r1");
  EXPECT_HAS(import_error(missing), "graph output 'zzz' is not produced by any node");
  ModelBuilder noout;
  noout.input("x", {1, 4});
  noout.node("Relu", {"x"}, {"y"}, "r1");
  EXPECT_HAS(import_error(noout), "no outputs");
}

TEST(Importer, GraphInputs) {
  ModelBuilder i64;
  i64.input("x", {1, 4}, ::onnx::TensorProto_DataType_INT64).output("y");
  i64.node("Relu", {"x"}, {"y"});
  EXPECT_HAS(import_error(i64), "graph input 'x': has type INT64");
  ModelBuilder noshape;
  noshape.input("x", {1, 4}).output("y");
  noshape.g().mutable_input(0)->mutable_type()->mutable_tensor_type()->clear_shape();
  noshape.node("Relu", {"x"}, {"y"});
  EXPECT_HAS(import_error(noshape), "graph input 'x': has no shape");
  ModelBuilder missing_dim;
  missing_dim.input("x", {-2, 4}).output("y");
  missing_dim.node("Relu", {"x"}, {"y"});
  Graph g = missing_dim.import();
  EXPECT_EQ(g.values[g.inputs[0]].shape, (q8::ir::Shape{q8::ir::kUnknownDim, 4}));
  ModelBuilder zero;  // an empty extent is legal ONNX
  zero.input("x", {0, 4}).output("y");
  zero.node("Relu", {"x"}, {"y"});
  Graph gz = zero.import();
  EXPECT_EQ(gz.values[gz.inputs[0]].shape, (q8::ir::Shape{0, 4}));
  ModelBuilder negative;
  negative.input("x", {1, 4}).output("y");
  negative.g().mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(0)->set_dim_value(
      -3);
  negative.node("Relu", {"x"}, {"y"});
  EXPECT_HAS(import_error(negative), "graph input 'x': negative dimension -3");
}

TEST(Importer, InputWithInitializerIsConstant) {
  ModelBuilder b = conv_relu();
  auto* vi = b.g().add_input();  // older exporters list initializers as inputs too
  vi->set_name("w");
  vi->mutable_type()->mutable_tensor_type()->set_elem_type(::onnx::TensorProto_DataType_FLOAT);
  Graph g = b.import();
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.values[g.inputs[0]].name, "x");
  int w = g.find_value("w");
  ASSERT_NE(w, q8::ir::kNoValue);
  EXPECT_TRUE(g.values[w].is_const());
}

TEST(Importer, Initializers) {
  {  // raw_data size mismatch
    ModelBuilder b = conv_relu();
    b.g().mutable_initializer(1)->mutable_raw_data()->append("xx");
    std::string e = import_error(b);
    EXPECT_HAS(e, "m.onnx: initializer 'b': raw_data holds 18 bytes, expected 16");
  }
  {  // typed data count mismatch
    ModelBuilder b = conv_relu();
    auto* t = b.g().mutable_initializer(1);
    t->clear_raw_data();
    t->add_float_data(1.f);
    EXPECT_HAS(import_error(b), "initializer 'b': holds 1 elements, expected 4");
    t->add_float_data(2.f);
    t->add_float_data(3.f);
    t->add_float_data(4.f);
    Graph g = b.import();
    EXPECT_FLOAT_EQ(g.values[g.find_value("b")].constant->data<float>()[2], 3.f);
  }
  {  // negative dims
    ModelBuilder b = conv_relu();
    b.g().mutable_initializer(1)->set_dims(0, -4);
    EXPECT_HAS(import_error(b), "initializer 'b': negative dimension");
  }
  {  // overflowing dims
    ModelBuilder b = conv_relu();
    auto* t = b.g().mutable_initializer(1);
    t->set_dims(0, int64_t{1} << 40);
    t->add_dims(int64_t{1} << 40);
    EXPECT_HAS(import_error(b), "overflows");
  }
  {  // unsupported dtype
    ModelBuilder b = conv_relu();
    b.g().mutable_initializer(1)->set_data_type(::onnx::TensorProto_DataType_DOUBLE);
    EXPECT_HAS(import_error(b), "initializer 'b': unsupported data type DOUBLE");
  }
  {  // external data
    ModelBuilder b = conv_relu();
    auto* t = b.g().mutable_initializer(0);
    t->clear_raw_data();
    t->set_data_location(::onnx::TensorProto_DataLocation_EXTERNAL);
    auto* kv = t->add_external_data();
    kv->set_key("location");
    kv->set_value("weights.bin");
    EXPECT_HAS(import_error(b), "initializer 'w': external data is not supported");
  }
  {  // both raw and typed
    ModelBuilder b = conv_relu();
    b.g().mutable_initializer(1)->add_float_data(1.f);
    EXPECT_HAS(import_error(b), "both raw_data and typed data");
  }
  {  // wrong typed field
    ModelBuilder b = conv_relu();
    auto* t = b.g().mutable_initializer(1);
    t->clear_raw_data();
    for (int i = 0; i < 4; ++i) t->add_int64_data(i);
    EXPECT_HAS(import_error(b), "does not match float32");
  }
  {  // duplicate initializer
    ModelBuilder b = conv_relu();
    b.init_f("b", {1}, {0.f});
    EXPECT_HAS(import_error(b), "initializer 'b' is defined twice");
  }
}

TEST(Importer, IntegerInitializers) {
  ModelBuilder b;
  b.input("x", {1, 4}).output("y");
  b.node("Relu", {"x"}, {"y"});
  auto* t8 = b.g().add_initializer();
  t8->set_name("i8");
  t8->set_data_type(::onnx::TensorProto_DataType_INT8);
  t8->add_dims(3);
  t8->add_int32_data(-128);
  t8->add_int32_data(0);
  t8->add_int32_data(127);
  auto* u8 = b.g().add_initializer();
  u8->set_name("u8");
  u8->set_data_type(::onnx::TensorProto_DataType_UINT8);
  u8->add_dims(2);
  u8->set_raw_data(std::string("\x05\xff", 2));
  auto* i32 = b.g().add_initializer();
  i32->set_name("i32");
  i32->set_data_type(::onnx::TensorProto_DataType_INT32);
  i32->add_int32_data(-7);  // 0-d
  b.init_i64("i64", {2}, {int64_t{1} << 40, -3});
  Graph g = b.import();
  const auto& ci8 = *g.values[g.find_value("i8")].constant;
  EXPECT_EQ(ci8.dtype, DType::Int8);
  EXPECT_EQ(ci8.data<int8_t>()[0], -128);
  EXPECT_EQ(ci8.data<int8_t>()[2], 127);
  const auto& cu8 = *g.values[g.find_value("u8")].constant;
  EXPECT_EQ(cu8.data<uint8_t>()[1], 255);
  const auto& ci32 = *g.values[g.find_value("i32")].constant;
  EXPECT_TRUE(ci32.dims.empty());
  EXPECT_EQ(ci32.data<int32_t>()[0], -7);
  const auto& ci64 = *g.values[g.find_value("i64")].constant;
  EXPECT_EQ(ci64.dtype, DType::Int64);
  EXPECT_EQ(ci64.as_int64(0), int64_t{1} << 40);
  EXPECT_EQ(ci64.as_int64(1), -3);

  t8 = b.g().mutable_initializer(0);
  t8->set_int32_data(2, 128);
  EXPECT_HAS(import_error(b), "initializer 'i8': int8 element 2 is out of range: 128");
}

TEST(Importer, AttributeKindsAndValues) {
  struct Case {
    const char* what;
    std::function<void(::onnx::NodeProto&)> edit;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"strides as INT", [](auto& n) { n.mutable_attribute(1)->set_type(::onnx::AttributeProto::INT); },
       "attribute 'strides' must be INTS, got INT"},
      {"zero stride", [](auto& n) { n.mutable_attribute(1)->set_ints(0, 0); },
       "attribute 'strides' value 0 is out of range"},
      {"negative pad", [](auto& n) { n.mutable_attribute(2)->set_ints(3, -1); }, "attribute 'pads' value -1"},
      {"short pads", [](auto& n) { n.mutable_attribute(2)->mutable_ints()->RemoveLast(); },
       "attribute 'pads' has 3 values, expected 4"},
      {"zero dilation", [](auto& n) { n.mutable_attribute(3)->set_ints(1, 0); }, "attribute 'dilations' value 0"},
      {"group 0", [](auto& n) { n.mutable_attribute(4)->set_i(0); }, "attribute 'group' is 0"},
      {"3-D kernel", [](auto& n) { n.mutable_attribute(0)->add_ints(3); },
       "only 2-D convolution is supported (kernel_shape has 3 values)"},
      {"1-D kernel", [](auto& n) { n.mutable_attribute(0)->mutable_ints()->RemoveLast(); }, "only 2-D convolution"},
      {"unknown attr", [](auto& n) { set_int(n, "foo", 1); }, "unknown attribute 'foo' for Conv"},
      {"duplicate attr", [](auto& n) { set_int(n, "group", 1); }, "attribute 'group' is given twice"},
      {"bad auto_pad", [](auto& n) { set_str(n, "auto_pad", "SAME"); }, "attribute 'auto_pad' is 'SAME'"},
      {"auto_pad with pads", [](auto& n) { set_str(n, "auto_pad", "SAME_UPPER"); }, "cannot be combined with auto_pad"},
      {"graph attr",
       [](auto& n) {
         add_attr(n, "group", ::onnx::AttributeProto::GRAPH);
         n.mutable_attribute()->SwapElements(4, 5);
         n.mutable_attribute()->RemoveLast();
       },
       "attribute 'group' has type GRAPH"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ModelBuilder b = conv_relu();
    c.edit(*b.g().mutable_node(0));
    std::string e = import_error(b);
    EXPECT_HAS(e, "m.onnx: node 'conv1' (Conv): ");
    EXPECT_HAS(e, c.expect);
  }
  // auto_pad without explicit pads is fine
  ModelBuilder ok = conv_relu();
  ok.g().mutable_node(0)->mutable_attribute()->SwapElements(2, 4);
  ok.g().mutable_node(0)->mutable_attribute()->RemoveLast();  // drop pads
  set_str(*ok.g().mutable_node(0), "auto_pad", "SAME_LOWER");
  Graph g = ok.import();
  EXPECT_EQ(g.nodes[0].attr_string("auto_pad", ""), "SAME_LOWER");
  EXPECT_FALSE(g.nodes[0].has_attr("pads"));
}

TEST(Importer, PoolAttributes) {
  auto pool = [](const std::string& op, std::function<void(::onnx::NodeProto&)> edit) {
    ModelBuilder b;
    b.input("x", {1, 2, 8, 8}).output("y");
    auto& n = b.node(op, {"x"}, {"y"}, "pool");
    set_ints(n, "kernel_shape", {2, 2});
    set_ints(n, "strides", {2, 2});
    edit(n);
    return b;
  };
  Graph g = pool("MaxPool", [](auto& n) { set_int(n, "ceil_mode", 1); }).import();
  EXPECT_EQ(g.nodes[0].op, Op::MaxPool);
  EXPECT_EQ(g.nodes[0].attr_int("ceil_mode", 0), 1);
  EXPECT_EQ(pool("AveragePool", [](auto& n) { set_int(n, "count_include_pad", 1); }).import().nodes[0].op,
            Op::AveragePool);
  EXPECT_HAS(import_error(pool("MaxPool", [](auto& n) { set_int(n, "ceil_mode", 2); })), "'ceil_mode' is 2");
  EXPECT_HAS(import_error(pool("MaxPool", [](auto& n) { set_int(n, "storage_order", 1); })),
             "'storage_order' is 1, only 0 is supported");
  EXPECT_HAS(import_error(pool("MaxPool", [](auto& n) { n.add_output("idx"); })), "Indices output is not supported");
  EXPECT_HAS(import_error(pool("AveragePool", [](auto& n) { n.mutable_attribute(0)->add_ints(2); })),
             "node 'pool' (AveragePool): only 2-D pooling is supported");
  EXPECT_HAS(import_error(pool("MaxPool",
                               [](auto& n) {
                                 n.mutable_attribute()->SwapElements(0, 1);
                                 n.mutable_attribute()->RemoveLast();
                               })),
             "missing required attribute 'kernel_shape'");
  // AveragePool's dilations exist from opset 19 on
  EXPECT_HAS(import_error(pool("AveragePool",
                               [](auto& n) {
                                 set_ints(n, "dilations", {1, 1});
                               })),
             "unknown attribute 'dilations' for AveragePool in opset 13");
}

TEST(Importer, InputOutputCounts) {
  ModelBuilder conv1;
  conv1.input("x", {1, 3, 8, 8}).output("y");
  conv1.node("Conv", {"x"}, {"y"}, "c");
  EXPECT_EQ(import_error(conv1), "m.onnx: node 'c' (Conv): expects 2 to 3 inputs, got 1");
  ModelBuilder relu2;
  relu2.input("x", {1, 4}).output("y");
  relu2.node("Relu", {"x", "x"}, {"y"}, "r");
  EXPECT_EQ(import_error(relu2), "m.onnx: node 'r' (Relu): expects 1 input, got 2");
  ModelBuilder empty_req;
  empty_req.input("x", {1, 4}).output("y");
  empty_req.node("Add", {"x", ""}, {"y"}, "a");
  EXPECT_HAS(import_error(empty_req), "required input 1 is empty");
  ModelBuilder drop2;
  drop2.input("x", {1, 4}).output("y");
  drop2.node("Dropout", {"x"}, {"y", "mask"}, "d");
  EXPECT_HAS(import_error(drop2), "node 'd' (Dropout): the mask output is not supported");
  ModelBuilder drop_empty_mask;  // an omitted optional output is fine
  drop_empty_mask.input("x", {1, 4}).output("y");
  drop_empty_mask.node("Dropout", {"x"}, {"y", ""}, "d");
  EXPECT_EQ(drop_empty_mask.import().nodes[0].outputs.size(), 1u);
}

ModelBuilder batchnorm(int64_t opset = 13) {
  ModelBuilder b(opset);
  b.input("x", {1, 2, 4, 4}).output("y");
  for (const char* n : {"s", "bb", "m", "v"}) b.init_f(n, {2}, {1.f, 1.f});
  auto& n = b.node("BatchNormalization", {"x", "s", "bb", "m", "v"}, {"y"}, "bn");
  set_float(n, "epsilon", 1e-5f);
  return b;
}

TEST(Importer, BatchNormalization) {
  Graph g = batchnorm().import();
  EXPECT_EQ(g.nodes[0].op, Op::BatchNormalization);
  EXPECT_FLOAT_EQ(g.nodes[0].attr_float("epsilon", 0), 1e-5f);
  ModelBuilder train = batchnorm(15);  // training_mode exists from opset 14 on
  set_int(*train.g().mutable_node(0), "training_mode", 1);
  EXPECT_HAS(import_error(train), "node 'bn' (BatchNormalization): training_mode=1 is not supported");
  ModelBuilder infer = batchnorm(15);
  set_int(*infer.g().mutable_node(0), "training_mode", 0);
  EXPECT_EQ(infer.import().nodes.size(), 1u);
  ModelBuilder outs = batchnorm();
  outs.g().mutable_node(0)->add_output("rm");
  outs.g().mutable_node(0)->add_output("rv");
  EXPECT_HAS(import_error(outs), "training outputs");
  ModelBuilder four = batchnorm();
  four.g().mutable_node(0)->mutable_input()->RemoveLast();
  EXPECT_HAS(import_error(four), "expects 5 inputs, got 4");
  ModelBuilder nan = batchnorm();
  nan.g().mutable_node(0)->mutable_attribute(0)->set_f(std::numeric_limits<float>::quiet_NaN());
  EXPECT_HAS(import_error(nan), "'epsilon' is not finite");
}

TEST(Importer, GemmAndFlatten) {
  ModelBuilder b;
  b.input("x", {1, 4, 1, 1}).output("y");
  b.init_f("W", {3, 4}, std::vector<float>(12, 0.5f));
  auto& f = b.node("Flatten", {"x"}, {"f"}, "flat");
  set_int(f, "axis", 1);
  auto& gm = b.node("Gemm", {"f", "W"}, {"y"}, "fc");
  set_float(gm, "alpha", 1.f);
  set_int(gm, "transB", 1);
  Graph g = b.import();
  EXPECT_EQ(g.nodes[1].op, Op::Gemm);
  EXPECT_EQ(g.nodes[1].inputs.size(), 2u);
  EXPECT_EQ(g.nodes[1].attr_int("transB", 0), 1);

  ModelBuilder t2 = b;
  t2.g().mutable_node(1)->mutable_attribute(1)->set_i(2);
  EXPECT_HAS(import_error(t2), "node 'fc' (Gemm): attribute 'transB' is 2, expected 0 or 1");
  ModelBuilder inf = b;
  inf.g().mutable_node(1)->mutable_attribute(0)->set_f(std::numeric_limits<float>::infinity());
  EXPECT_HAS(import_error(inf), "'alpha' is not finite");
  ModelBuilder axis = b;
  axis.g().mutable_node(0)->mutable_attribute(0)->set_i(99);
  EXPECT_HAS(import_error(axis), "node 'flat' (Flatten): attribute 'axis' is 99");
  ModelBuilder axis_kind = b;
  axis_kind.g().mutable_node(0)->mutable_attribute(0)->set_type(::onnx::AttributeProto::FLOAT);
  EXPECT_HAS(import_error(axis_kind), "attribute 'axis' must be INT, got FLOAT");
}

TEST(Importer, ConstantClipReshape) {
  ModelBuilder b;
  b.input("x", {1, 2, 2, 2}).output("y");
  auto& lo = b.node("Constant", {}, {"lo"}, "c_lo");
  auto* a = add_attr(lo, "value", ::onnx::AttributeProto::TENSOR);
  a->mutable_t()->set_data_type(::onnx::TensorProto_DataType_FLOAT);
  a->mutable_t()->add_float_data(0.f);
  auto& hi = b.node("Constant", {}, {"hi"}, "c_hi");
  set_float(hi, "value_float", 6.f);
  b.node("Clip", {"x", "lo", "hi"}, {"c"}, "clip");
  b.node("Clip", {"c", "", "hi"}, {"c2"}, "clip_max_only");
  auto& shp = b.node("Constant", {}, {"shape"}, "c_shape");
  set_ints(shp, "value_ints", {1, -1});
  b.node("Reshape", {"c2", "shape"}, {"y"}, "reshape");
  Graph g = b.import();
  ASSERT_EQ(g.nodes.size(), 6u);
  const auto& chi = *find_node(g, "c_hi");
  ASSERT_TRUE(chi.has_attr("value"));
  EXPECT_EQ(chi.attrs.size(), 1u);
  const Attribute& v = chi.attrs.at("value");
  EXPECT_EQ(v.kind, Attribute::Kind::Tensor);
  EXPECT_TRUE(v.t->dims.empty());
  EXPECT_FLOAT_EQ(v.t->data<float>()[0], 6.f);
  const auto& cs = *find_node(g, "c_shape");
  EXPECT_EQ(cs.attrs.at("value").t->dtype, DType::Int64);
  EXPECT_EQ(cs.attrs.at("value").t->dims, (q8::ir::Shape{2}));
  EXPECT_EQ(g.values[cs.outputs[0]].dtype, DType::Int64);
  const auto& clip2 = *find_node(g, "clip_max_only");
  EXPECT_EQ(clip2.inputs[1], q8::ir::kNoValue);
  EXPECT_EQ(find_node(g, "reshape")->op, Op::Reshape);

  ModelBuilder bad_shape = b;
  bad_shape.g().mutable_node(4)->mutable_attribute(0)->set_name("value_floats");
  bad_shape.g().mutable_node(4)->mutable_attribute(0)->set_type(::onnx::AttributeProto::FLOATS);
  bad_shape.g().mutable_node(4)->mutable_attribute(0)->add_floats(1.f);
  EXPECT_HAS(import_error(bad_shape), "node 'reshape' (Reshape): shape must be a 1-D int64 tensor, got float32");

  ModelBuilder two_values = b;
  set_int(*two_values.g().mutable_node(1), "value_int", 1);
  EXPECT_HAS(import_error(two_values), "node 'c_hi' (Constant): expects exactly one value attribute");
  ModelBuilder str_const = b;
  set_str(*str_const.g().mutable_node(1), "value_string", "hello");
  str_const.g().mutable_node(1)->mutable_attribute()->SwapElements(0, 1);
  str_const.g().mutable_node(1)->mutable_attribute()->RemoveLast();
  EXPECT_HAS(import_error(str_const), "attribute 'value_string' is not supported");
  ModelBuilder bad_clip = b;
  auto* t = bad_clip.g().mutable_node(0)->mutable_attribute(0)->mutable_t();
  t->add_float_data(1.f);
  t->add_dims(2);
  EXPECT_HAS(import_error(bad_clip), "node 'clip' (Clip): min must be a float32 scalar");
  ModelBuilder bad_tensor = b;
  bad_tensor.g().mutable_node(0)->mutable_attribute(0)->mutable_t()->add_float_data(1.f);
  EXPECT_HAS(import_error(bad_tensor), "node 'c_lo' (Constant): attribute 'value': holds 2 elements, expected 1");
}

TEST(Importer, DropoutAcrossOpsets) {
  ModelBuilder d11(11);
  d11.input("x", {1, 4}).output("y");
  set_float(d11.node("Dropout", {"x"}, {"y"}, "d"), "ratio", 0.5f);
  EXPECT_EQ(d11.import().nodes[0].op, Op::Dropout);
  ModelBuilder d13(13);
  d13.input("x", {1, 4}).output("y");
  set_float(d13.node("Dropout", {"x"}, {"y"}, "d"), "ratio", 0.5f);
  EXPECT_HAS(import_error(d13), "unknown attribute 'ratio' for Dropout in opset 13");
  ModelBuilder train(13);
  train.input("x", {1, 4}).output("y");
  train.init_f("r", {}, {0.5f});
  auto* tm = train.g().add_initializer();
  tm->set_name("tm");
  tm->set_data_type(::onnx::TensorProto_DataType_INT8);  // stands in for bool (not an imported dtype)
  tm->add_int32_data(1);
  train.node("Dropout", {"x", "r", "tm"}, {"y"}, "d");
  EXPECT_HAS(import_error(train), "training_mode must be a constant false");
}

TEST(Importer, TruncatedAndGarbageBytes) {
  std::string good = conv_relu().bytes();
  for (size_t cut : {size_t{1}, size_t{7}, good.size() / 2, good.size() - 1}) {
    SCOPED_TRACE(cut);
    EXPECT_HAS(import_error(good.substr(0, cut)), "not an ONNX model");
  }
  EXPECT_HAS(import_error(std::string("\xff\xff\xff\xff\xff\xff\xff\xff", 8)),
             "not an ONNX model (protobuf parse failed)");
  EXPECT_HAS(import_error(std::string()), "not an ONNX model");
  // A valid protobuf that is not a model: no graph.
  ::onnx::ModelProto empty;
  empty.set_ir_version(7);
  EXPECT_HAS(import_error(empty.SerializeAsString()), "no graph");
}

TEST(Importer, Limits) {
  q8::onnx::ImportLimits lim;
  lim.max_file_bytes = 16;
  EXPECT_HAS(import_error(conv_relu(), lim), "exceeds the limit of 16 bytes");
  lim = {};
  lim.max_nodes = 1;
  EXPECT_HAS(import_error(conv_relu(), lim), "2 nodes, more than the limit of 1");
  lim = {};
  lim.max_rank = 3;
  EXPECT_HAS(import_error(conv_relu(), lim), "rank 4 exceeds the limit of 3");
  lim = {};
  lim.max_tensor_bytes = 100;
  EXPECT_HAS(import_error(conv_relu(), lim), "initializer 'w': tensor of 432 bytes exceeds the limit of 100 bytes");
}

TEST(Importer, HostileAmplificationIsRefusedBeforeParsing) {
  // One node with 3 million empty attributes: 6 MB on the wire, hundreds of MB once parsed.
  ModelBuilder b;
  b.input("x", {1, 4}).output("y");
  b.node("Relu", {"x"}, {"y"}, "r");
  ::onnx::ModelProto head = b.m;
  std::string node_bytes = head.graph().node(0).SerializeAsString();
  node_bytes.reserve(node_bytes.size() + 6000000);
  for (int i = 0; i < 3000000; ++i) node_bytes += std::string("\x2a\x00", 2);  // field 5, empty
  head.mutable_graph()->clear_node();
  std::string graph_bytes = head.graph().SerializeAsString();
  auto varint = [](uint64_t v) {
    std::string s;
    while (v >= 0x80) {
      s += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    s += static_cast<char>(v);
    return s;
  };
  graph_bytes += "\x0a" + varint(node_bytes.size()) + node_bytes;  // GraphProto.node = 1
  head.clear_graph();
  std::string model = head.SerializeAsString() + "\x3a" + varint(graph_bytes.size()) + graph_bytes;  // graph = 7
  EXPECT_HAS(import_error(model), "MiB to parse");
  // Many empty nodes trip max_nodes before parsing.
  std::string many;
  for (int i = 0; i < 200000; ++i) many += std::string("\x0a\x00", 2);
  head = b.m;
  head.clear_graph();
  std::string m2 = head.SerializeAsString() + "\x3a" + varint(many.size()) + many;
  EXPECT_HAS(import_error(m2), "200000 nodes, more than the limit of 100000");
}

TEST(Importer, NamesInErrorsAreOneLine) {
  ModelBuilder b;
  b.input("x", {1, 4}).output("y");
  b.node("Foo", {"x"}, {"y"}, "evil\nname\x01");
  std::string e = import_error(b);
  EXPECT_HAS(e, "evil\\x0aname\\x01");
}

// ----------------------------------------------------------------------------------------------
// Real files

std::string shared_model(const std::string& name) { return std::string(Q8_SOURCE_DIR) + "/../shared/models/" + name; }

bool exists(const std::string& path) { return std::ifstream(path).good(); }

int count_op(const Graph& g, Op op) {
  int n = 0;
  for (const auto& node : g.nodes) n += node.op == op;
  return n;
}

TEST(ImporterModels, SharedModels) {
  struct M {
    const char* file;
    size_t nodes;
    int conv;
  };
  const M models[] = {
      {"seed.onnx", 8, 2}, {"fashion_seed.onnx", 8, 2}, {"resnet18.onnx", 65, 20}, {"mobilenet_v2.onnx", 209, 52}};
  if (!exists(shared_model("seed.onnx")))
    GTEST_SKIP() << "../shared/models not found next to the source tree; skipping";
  for (const M& m : models) {
    SCOPED_TRACE(m.file);
    Graph g = q8::onnx::import_file(shared_model(m.file));
    EXPECT_EQ(g.nodes.size(), m.nodes);
    EXPECT_EQ(count_op(g, Op::Conv), m.conv);
    ASSERT_EQ(g.inputs.size(), 1u);
    ASSERT_EQ(g.outputs.size(), 1u);
    const auto& in = g.values[g.inputs[0]];
    EXPECT_EQ(in.shape.size(), 4u);
    EXPECT_EQ(in.shape[0], q8::ir::kUnknownDim) << "dynamic batch axis";
    EXPECT_EQ(g.opset, 13);
    EXPECT_EQ(g.nodes.back().op, Op::Gemm);
  }
  Graph mb = q8::onnx::import_file(shared_model("mobilenet_v2.onnx"));
  EXPECT_EQ(count_op(mb, Op::Clip), 35);
  EXPECT_EQ(count_op(mb, Op::Constant), 70);
  Graph rn = q8::onnx::import_file(shared_model("resnet18.onnx"));
  EXPECT_EQ(count_op(rn, Op::Add), 8);
}

TEST(ImporterModels, OnnxTestDataLstmIsRefused) {
  const std::string path = "/usr/share/libonnx-testdata/data/node/test_lstm_defaults/model.onnx";
  if (!exists(path)) GTEST_SKIP() << path << " not found (install libonnx-testdata); skipping";
  try {
    q8::onnx::import_file(path);
    FAIL() << "LSTM model imported";
  } catch (const q8::Error& e) {
    EXPECT_HAS(e.what(), path);
    EXPECT_HAS(e.what(), "(LSTM): unsupported op 'LSTM'");
  }
}

}  // namespace
