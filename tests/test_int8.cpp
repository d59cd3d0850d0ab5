// INT8 end to end: ONNX Runtime's QDQ and QOperator files run on q8's integer kernels, give the
// same bytes on every kernel path and thread count, agree with ONNX Runtime's own int8 output,
// and corrupt quantization parameters are refused naming the node.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "onnx.pb.h"
#include "q8/q8.h"
#include "test_util.h"

namespace {

const std::string kSrc = Q8_SOURCE_DIR;
const std::string kShared = kSrc + "/../shared/";

using q8::test::exists;
using q8::test::rel_l2;
using q8::test::same_bytes;

struct RefCase {
  const char* model;
  const char* ort_output;
  const char* input = "imagenet_input_2x3x224x224.npy";
};

class SharedInt8 : public testing::TestWithParam<RefCase> {};

TEST_P(SharedInt8, EveryPathSameBytesAndCloseToOnnxRuntime) {
  const RefCase& c = GetParam();
  const std::string model = kShared + "models/" + c.model, in = kShared + "reference/" + c.input,
                    out = kShared + "reference/" + c.ort_output;
  if (!exists(model) || !exists(in) || !exists(out)) GTEST_SKIP() << "../shared is absent: " << model;
  q8::Model m = q8::Model::load(model);
  // The graph runs on integer kernels: no float compute node is left.
  for (const auto& r : m.describe(1)) {
    EXPECT_EQ(r.kernel.find("fallback"), std::string::npos) << r.name << " runs in fp32";
    if (r.op == "QuantizedConv") {
      EXPECT_EQ(r.kernel.rfind("qu8_", 0), 0u) << r.kernel;
    }
  }
  const q8::Tensor x = q8::load_npy(in), want = q8::load_npy(out);
  const q8::Tensor ref = q8::Session(m, {1, "scalar"}).run({x})[0];
  ASSERT_EQ(ref.shape(), want.shape());
  EXPECT_LT(rel_l2(ref, want), 2e-2) << c.model;
  for (const std::string& isa : q8::supported_isas())
    for (int threads : {1, 2}) {
      q8::Session s(m, {threads, isa});
      EXPECT_TRUE(same_bytes(ref, s.run({x})[0])) << c.model << " on " << isa << " with " << threads << " threads";
    }
}

INSTANTIATE_TEST_SUITE_P(OnnxRuntimeFiles, SharedInt8,
                         testing::Values(RefCase{"seed.qdq.onnx", "seed_qdq_ort_output.npy"},
                                         RefCase{"seed.qop.onnx", "seed_qop_ort_output.npy"},
                                         RefCase{"resnet18.qdq.onnx", "resnet18_qdq_ort_output.npy"},
                                         RefCase{"mobilenet_v2.qdq.onnx", "mobilenet_v2_qdq_ort_output.npy"},
                                         RefCase{"fashion_seed.qdq.onnx", "fashion_seed_qdq_ort_output.npy",
                                                 "fashion_input_64x1x28x28.npy"}),
                         [](const testing::TestParamInfo<RefCase>& i) {
                           std::string n = i.param.model;
                           for (char& ch : n)
                             if (ch == '.') ch = '_';
                           return n;
                         });

// ---- A small QDQ model built here, so these tests need no ../shared -------------------------

void add_tensor(onnx::GraphProto& g, const std::string& name, int type, std::vector<int64_t> dims, const void* data,
                size_t bytes) {
  onnx::TensorProto* t = g.add_initializer();
  t->set_name(name);
  t->set_data_type(type);
  for (int64_t d : dims) t->add_dims(d);
  t->set_raw_data(std::string(static_cast<const char*>(data), bytes));
}
void add_float(onnx::GraphProto& g, const std::string& name, std::vector<int64_t> dims, std::vector<float> v) {
  add_tensor(g, name, onnx::TensorProto::FLOAT, dims, v.data(), v.size() * 4);
}
void add_u8(onnx::GraphProto& g, const std::string& name, std::vector<int64_t> dims, std::vector<uint8_t> v) {
  add_tensor(g, name, onnx::TensorProto::UINT8, dims, v.data(), v.size());
}
void add_i8(onnx::GraphProto& g, const std::string& name, std::vector<int64_t> dims, std::vector<int8_t> v) {
  add_tensor(g, name, onnx::TensorProto::INT8, dims, v.data(), v.size());
}
void add_i32(onnx::GraphProto& g, const std::string& name, std::vector<int64_t> dims, std::vector<int32_t> v) {
  add_tensor(g, name, onnx::TensorProto::INT32, dims, v.data(), v.size() * 4);
}
onnx::NodeProto* add_node(onnx::GraphProto& g, const std::string& op, const std::string& name,
                          std::vector<std::string> in, std::vector<std::string> out) {
  onnx::NodeProto* n = g.add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (auto& s : in) n->add_input(s);
  for (auto& s : out) n->add_output(s);
  return n;
}
void set_ints(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

// x[1,C,H,W] -> Q -> DQ -> Conv(DQ(w int8 per-channel), DQ(b int32)) -> Q -> DQ -> y.
struct QdqConv {
  int C = 8, K = 16, H = 9, W = 9;
  onnx::ModelProto m;
  QdqConv() {
    m.set_ir_version(8);
    auto* op = m.add_opset_import();
    op->set_version(13);
    onnx::GraphProto& g = *m.mutable_graph();
    auto* in = g.add_input();
    in->set_name("x");
    auto* tt = in->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    for (int64_t d : {1, C, H, W}) tt->mutable_shape()->add_dim()->set_dim_value(d);
    g.add_output()->set_name("y");
    g.mutable_output(0)->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    std::mt19937 rng(3);
    std::vector<int8_t> w(static_cast<size_t>(K * C * 9));
    for (auto& v : w) v = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
    std::vector<float> ws(K);
    for (int k = 0; k < K; ++k) ws[k] = 0.001f * (1 + k);
    std::vector<int32_t> b(K);
    for (auto& v : b) v = static_cast<int32_t>(rng() % 2001) - 1000;
    std::vector<float> bs(K);
    for (int k = 0; k < K; ++k) bs[k] = 0.05f * ws[k];
    add_float(g, "x_scale", {}, {0.05f});
    add_u8(g, "x_zp", {}, {128});
    add_i8(g, "w_q", {K, C, 3, 3}, w);
    add_float(g, "w_scale", {K}, ws);
    add_i8(g, "w_zp", {K}, std::vector<int8_t>(K, 0));
    add_i32(g, "b_q", {K}, b);
    add_float(g, "b_scale", {K}, bs);
    add_i32(g, "b_zp", {K}, std::vector<int32_t>(K, 0));
    add_float(g, "y_scale", {}, {0.02f});
    add_u8(g, "y_zp", {}, {3});
    add_node(g, "QuantizeLinear", "q_x", {"x", "x_scale", "x_zp"}, {"xq"});
    add_node(g, "DequantizeLinear", "dq_x", {"xq", "x_scale", "x_zp"}, {"xd"});
    auto* dqw = add_node(g, "DequantizeLinear", "dq_w", {"w_q", "w_scale", "w_zp"}, {"wd"});
    auto* axis = dqw->add_attribute();
    axis->set_name("axis");
    axis->set_type(onnx::AttributeProto::INT);
    axis->set_i(0);
    auto* dqb = add_node(g, "DequantizeLinear", "dq_b", {"b_q", "b_scale", "b_zp"}, {"bd"});
    *dqb->add_attribute() = *axis;
    auto* conv = add_node(g, "Conv", "conv", {"xd", "wd", "bd"}, {"yf"});
    set_ints(conv, "pads", {1, 1, 1, 1});
    set_ints(conv, "kernel_shape", {3, 3});
    add_node(g, "QuantizeLinear", "q_y", {"yf", "y_scale", "y_zp"}, {"yq"});
    add_node(g, "DequantizeLinear", "dq_y", {"yq", "y_scale", "y_zp"}, {"y"});
  }
  onnx::TensorProto* init(const std::string& name) {
    for (auto& t : *m.mutable_graph()->mutable_initializer())
      if (t.name() == name) return &t;
    return nullptr;
  }
  q8::Model load() const {
    const std::string bytes = m.SerializeAsString();
    return q8::Model::load_from_memory(bytes.data(), bytes.size(), "qdq_conv.onnx");
  }
  q8::Tensor input() const {
    q8::Tensor x({1, C, H, W});
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.f, 2.f);
    for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = nd(rng);
    return x;
  }
};

std::string error_of(const QdqConv& q) {
  try {
    q8::Model m = q.load();
    q8::Session(m).run({q.input()});
  } catch (const q8::Error& e) {
    return e.what();
  }
  return "";
}

TEST(Int8Qdq, ConvIsLoweredAndMatchesItsFloatSemantics) {
  QdqConv q;
  q8::Model m = q.load();
  const auto rows = m.describe(1);
  ASSERT_EQ(rows.size(), 3u);  // quantize, integer conv, dequantize
  EXPECT_EQ(rows[1].op, "QuantizedConv");
  // The float semantics of the QDQ graph, computed here in double: fake-quantized input,
  // dequantized weights and bias, then quantize-dequantize of the output.
  const q8::Tensor x = q.input();
  std::vector<double> xd(x.numel());
  for (int64_t i = 0; i < x.numel(); ++i)
    xd[i] = (std::min(std::max(std::nearbyint(x.data()[i] / 0.05f) + 128, 0.f), 255.f) - 128) * 0.05;
  const auto* w = reinterpret_cast<const int8_t*>(q.m.graph().initializer(2).raw_data().data());
  const auto* b = reinterpret_cast<const int32_t*>(q.m.graph().initializer(5).raw_data().data());
  const q8::Tensor y = q8::Session(m).run({x})[0];
  int off_by_more_than_one_step = 0;
  for (int k = 0; k < q.K; ++k)
    for (int h = 0; h < q.H; ++h)
      for (int ww = 0; ww < q.W; ++ww) {
        double acc = b[k] * 0.05 * 0.001 * (1 + k);
        for (int c = 0; c < q.C; ++c)
          for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) {
              const int hh = h + i - 1, wj = ww + j - 1;
              if (hh < 0 || hh >= q.H || wj < 0 || wj >= q.W) continue;
              acc += xd[(c * q.H + hh) * q.W + wj] * w[((k * q.C + c) * 3 + i) * 3 + j] * 0.001 * (1 + k);
            }
        const double yq = (std::min(std::max(std::nearbyint(acc / 0.02) + 3, 0.0), 255.0) - 3) * 0.02;
        const double got = y.data()[(k * q.H + h) * q.W + ww];
        off_by_more_than_one_step += std::fabs(got - yq) > 0.02 * 1.001;
      }
  EXPECT_EQ(off_by_more_than_one_step, 0);
}

TEST(Int8Qdq, CorruptParametersAreRefusedNamingTheNode) {
  {
    QdqConv q;
    float zero = 0.f;
    q.init("y_scale")->set_raw_data(std::string(reinterpret_cast<char*>(&zero), 4));
    const std::string e = error_of(q);
    EXPECT_NE(e.find("q_y"), std::string::npos) << e;
    EXPECT_NE(e.find("scale"), std::string::npos) << e;
  }
  {
    QdqConv q;
    float nan = std::nanf("");
    q.init("x_scale")->set_raw_data(std::string(reinterpret_cast<char*>(&nan), 4));
    EXPECT_NE(error_of(q).find("q_x"), std::string::npos) << error_of(q);
  }
  {
    // A zero point of a type that cannot hold a uint8/int8 value.
    QdqConv q;
    onnx::TensorProto* zp = q.init("y_zp");
    zp->set_data_type(onnx::TensorProto::INT32);
    int32_t v = 300;
    zp->set_raw_data(std::string(reinterpret_cast<char*>(&v), 4));
    const std::string e = error_of(q);
    EXPECT_NE(e.find("q_y"), std::string::npos) << e;
    EXPECT_NE(e.find("zero point"), std::string::npos) << e;
  }
  {
    // Per-channel scales whose length does not match the output channels.
    QdqConv q;
    onnx::TensorProto* s = q.init("w_scale");
    s->set_dims(0, 5);
    s->set_raw_data(s->raw_data().substr(0, 20));
    const std::string e = error_of(q);
    EXPECT_NE(e.find("dq_w"), std::string::npos) << e;
    EXPECT_NE(e.find("channels"), std::string::npos) << e;
  }
  {
    QdqConv q;
    onnx::TensorProto* s = q.init("w_scale");
    std::string raw = s->raw_data();
    float neg = -0.5f;
    std::memcpy(&raw[4], &neg, 4);
    s->set_raw_data(raw);
    const std::string e = error_of(q);
    EXPECT_NE(e.find("dq_w"), std::string::npos) << e;
  }
}

TEST(Int8Qdq, WeightsWhoseZeroPointLeavesInt8StayFloat) {
  // w - z_w outside [-128, 127] cannot feed the u8 x s8 kernels: the node keeps float semantics.
  QdqConv q;
  onnx::TensorProto* zp = q.init("w_zp");
  zp->set_raw_data(std::string(static_cast<size_t>(q.K), static_cast<char>(100)));
  q8::Model m = q.load();
  bool fallback = false;
  for (const auto& r : m.describe(1))
    fallback |= r.op == "Conv" && r.fp32_fallback && r.kernel.find("fp32 fallback") != std::string::npos;
  EXPECT_TRUE(fallback);
  EXPECT_NO_THROW(q8::Session(m).run({q.input()}));
}

TEST(Int8Qdq, UnknownIsaIsRefused) {
  QdqConv q;
  q8::Model m = q.load();
  EXPECT_THROW(q8::Session(m, {1, "sse9"}), q8::Error);
}

}  // namespace
