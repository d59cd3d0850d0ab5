// A small ModelProto builder for tests, benchmarks and the hostile-file generator: the model is
// written field by field, so a test can make exactly the file it needs, hostile ones included.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "onnx.pb.h"

namespace q8test {

struct OnnxModelBuilder {
  ::onnx::ModelProto m;

  explicit OnnxModelBuilder(int64_t opset = 13) {
    m.set_ir_version(7);
    m.set_producer_name("q8-test");
    auto* o = m.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
    m.mutable_graph()->set_name("g");
  }
  ::onnx::GraphProto& g() { return *m.mutable_graph(); }

  // dims: -1 -> a symbolic dim "N"; -2 -> a dim with neither value nor param.
  OnnxModelBuilder& input(const std::string& name, const std::vector<int64_t>& dims,
                          int elem = ::onnx::TensorProto_DataType_FLOAT) {
    auto* vi = g().add_input();
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(elem);
    auto* shape = tt->mutable_shape();
    for (int64_t d : dims) {
      auto* dim = shape->add_dim();
      if (d == -1)
        dim->set_dim_param("N");
      else if (d >= 0)
        dim->set_dim_value(d);
    }
    return *this;
  }
  OnnxModelBuilder& output(const std::string& name) {
    auto* vi = g().add_output();
    vi->set_name(name);
    vi->mutable_type()->mutable_tensor_type()->set_elem_type(::onnx::TensorProto_DataType_FLOAT);
    return *this;
  }
  ::onnx::TensorProto& init_f(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& v) {
    auto* t = g().add_initializer();
    t->set_name(name);
    t->set_data_type(::onnx::TensorProto_DataType_FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
    return *t;
  }
  ::onnx::TensorProto& init_i64(const std::string& name, const std::vector<int64_t>& dims,
                                const std::vector<int64_t>& v) {
    auto* t = g().add_initializer();
    t->set_name(name);
    t->set_data_type(::onnx::TensorProto_DataType_INT64);
    for (int64_t d : dims) t->add_dims(d);
    for (int64_t x : v) t->add_int64_data(x);
    return *t;
  }
  // An 8-bit tensor (elem: UINT8 or INT8) from raw bytes.
  ::onnx::TensorProto& init_8bit(const std::string& name, int elem, const std::vector<int64_t>& dims,
                                 const std::vector<int8_t>& v) {
    auto* t = g().add_initializer();
    t->set_name(name);
    t->set_data_type(elem);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size()));
    return *t;
  }
  ::onnx::TensorProto& init_i32(const std::string& name, const std::vector<int64_t>& dims,
                                const std::vector<int32_t>& v) {
    auto* t = g().add_initializer();
    t->set_name(name);
    t->set_data_type(::onnx::TensorProto_DataType_INT32);
    for (int64_t d : dims) t->add_dims(d);
    for (int32_t x : v) t->add_int32_data(x);
    return *t;
  }
  ::onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& ins,
                          const std::vector<std::string>& outs, const std::string& name = "") {
    auto* n = g().add_node();
    n->set_op_type(op);
    if (!name.empty()) n->set_name(name);
    for (auto& s : ins) n->add_input(s);
    for (auto& s : outs) n->add_output(s);
    return *n;
  }
  std::string bytes() const { return m.SerializeAsString(); }
};

inline ::onnx::AttributeProto* add_attr(::onnx::NodeProto& n, const std::string& name,
                                        ::onnx::AttributeProto_AttributeType t) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(t);
  return a;
}
inline void set_int(::onnx::NodeProto& n, const std::string& k, int64_t v) {
  add_attr(n, k, ::onnx::AttributeProto::INT)->set_i(v);
}
inline void set_float(::onnx::NodeProto& n, const std::string& k, float v) {
  add_attr(n, k, ::onnx::AttributeProto::FLOAT)->set_f(v);
}
inline void set_str(::onnx::NodeProto& n, const std::string& k, const std::string& v) {
  add_attr(n, k, ::onnx::AttributeProto::STRING)->set_s(v);
}
inline void set_ints(::onnx::NodeProto& n, const std::string& k, const std::vector<int64_t>& v) {
  auto* a = add_attr(n, k, ::onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

}  // namespace q8test
