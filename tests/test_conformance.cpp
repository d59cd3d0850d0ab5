// ONNX's own operator conformance cases (Debian's libonnx-testdata) for every op q8 claims,
// compared at ONNX's node-test tolerances (rtol 1e-3, atol 1e-7). Cases q8 deliberately does not
// support are listed with the reason and must be refused with a q8::Error, never a crash.
#include <gtest/gtest.h>

#include <dirent.h>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "onnx.pb.h"
#include "q8/q8.h"

namespace {

const std::string kNodeDir = "/usr/share/libonnx-testdata/data/node/";

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

bool exists(const std::string& path) { return std::ifstream(path).good(); }

// A float TensorProto as a q8::Tensor (the test data are all float32, raw or typed).
q8::Tensor to_tensor(const onnx::TensorProto& t) {
  std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  if (t.has_raw_data()) {
    EXPECT_EQ(t.raw_data().size(), v.size() * 4);
    std::memcpy(v.data(), t.raw_data().data(), std::min(t.raw_data().size(), v.size() * 4));
  } else {
    for (int64_t i = 0; i < n && i < t.float_data_size(); ++i) v[i] = t.float_data(static_cast<int>(i));
  }
  return q8::Tensor(dims, v);
}

onnx::TensorProto read_tensor(const std::string& path) {
  onnx::TensorProto t;
  const std::string bytes = read_file(path);
  EXPECT_TRUE(t.ParseFromString(bytes)) << path;
  return t;
}

// The ops whose non-first inputs q8 takes at run time; for every other op, those inputs are
// weights or parameters that q8 requires to be constants (as exported CNNs have them), so the
// harness binds the case's data for them as initializers.
bool takes_runtime_operands(const std::string& op) {
  return op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Pow" || op == "MatMul" || op == "Gemm" ||
         op == "Concat";
}

struct Case {
  std::string name;
  std::string refused_because;  // empty: must match the expected output
};

// Every case of the ops q8 claims. The refused ones are outside what q8 supports, on purpose.
std::vector<Case> cases() {
  std::vector<Case> r;
  const std::map<std::string, std::string> refused = {
      {"test_add_uint8", "uint8 tensors at the graph's edges (q8 takes float32)"},
      {"test_averagepool_1d_default", "1-D pooling (q8 supports 2-D images)"},
      {"test_averagepool_3d_default", "3-D pooling (q8 supports 2-D images)"},
      {"test_maxpool_1d_default", "1-D pooling (q8 supports 2-D images)"},
      {"test_maxpool_3d_default", "3-D pooling (q8 supports 2-D images)"},
      {"test_maxpool_2d_uint8", "uint8 tensors at the graph's edges"},
      {"test_maxpool_with_argmax_2d_precomputed_pads", "MaxPool's Indices output"},
      {"test_maxpool_with_argmax_2d_precomputed_strides", "MaxPool's Indices output"},
      {"test_batchnorm_epsilon_training_mode", "training-mode BatchNormalization"},
      {"test_batchnorm_example_training_mode", "training-mode BatchNormalization"},
      {"test_clip_default_int8_inbounds", "int8 tensors at the graph's edges"},
      {"test_clip_default_int8_max", "int8 tensors at the graph's edges"},
      {"test_clip_default_int8_min", "int8 tensors at the graph's edges"},
      {"test_dropout_default_mask", "Dropout's mask output (training)"},
      {"test_dropout_default_mask_ratio", "Dropout's mask output (training)"},
      {"test_identity_opt", "optional types"},
      {"test_reshape_allowzero_reordered", "empty (zero-sized) tensors"},
      {"test_slice_start_out_of_bounds", "empty (zero-sized) tensors"},
      {"test_split_zero_size_splits", "empty (zero-sized) tensors"},
      {"test_edge_pad", "Pad modes other than constant"},
      {"test_reflect_pad", "Pad modes other than constant"},
      {"test_identity_sequence", "sequence types"},
      // Shape computations run on shapes and constants only; these feed them graph inputs, or
      // ask for int64 outputs (q8's outputs are float32).
      {"test_shape", "int64 outputs"},
      {"test_shape_clip_end", "int64 outputs"},
      {"test_shape_clip_start", "int64 outputs"},
      {"test_shape_end_1", "int64 outputs"},
      {"test_shape_end_negative_1", "int64 outputs"},
      {"test_shape_example", "int64 outputs"},
      {"test_shape_start_1", "int64 outputs"},
      {"test_shape_start_1_end_2", "int64 outputs"},
      {"test_shape_start_1_end_negative_1", "int64 outputs"},
      {"test_shape_start_negative_1", "int64 outputs"},
      {"test_gather_0", "Gather on run-time data"},
      {"test_gather_1", "Gather on run-time data"},
      {"test_gather_2d_indices", "Gather on run-time data"},
      {"test_gather_negative_indices", "Gather on run-time data"},
      {"test_gather_elements_0", "GatherElements"},
      {"test_gather_elements_1", "GatherElements"},
      {"test_gather_elements_negative_indices", "GatherElements"},
      {"test_cast_BFLOAT16_to_FLOAT", "Cast of run-time data"},
      {"test_cast_DOUBLE_to_FLOAT", "Cast of run-time data"},
      {"test_cast_DOUBLE_to_FLOAT16", "Cast of run-time data"},
      {"test_cast_FLOAT16_to_DOUBLE", "Cast of run-time data"},
      {"test_cast_FLOAT16_to_FLOAT", "Cast of run-time data"},
      {"test_cast_FLOAT_to_BFLOAT16", "Cast of run-time data"},
      {"test_cast_FLOAT_to_DOUBLE", "Cast of run-time data"},
      {"test_cast_FLOAT_to_FLOAT16", "Cast of run-time data"},
      {"test_cast_FLOAT_to_STRING", "Cast of run-time data"},
      {"test_cast_STRING_to_FLOAT", "Cast of run-time data"},
      {"test_constantofshape_float_ones", "a run-time shape input"},
      {"test_constantofshape_int_shape_zero", "a run-time shape input"},
      {"test_constantofshape_int_zeros", "a run-time shape input"},
      {"test_resize_downsample_scales_cubic", "cubic Resize (q8 has nearest and linear)"},
      {"test_resize_downsample_scales_cubic_A_n0p5_exclude_outside", "cubic Resize"},
      {"test_resize_downsample_scales_cubic_align_corners", "cubic Resize"},
      {"test_resize_downsample_sizes_cubic", "cubic Resize"},
      {"test_resize_upsample_scales_cubic", "cubic Resize"},
      {"test_resize_upsample_scales_cubic_A_n0p5_exclude_outside", "cubic Resize"},
      {"test_resize_upsample_scales_cubic_align_corners", "cubic Resize"},
      {"test_resize_upsample_scales_cubic_asymmetric", "cubic Resize"},
      {"test_resize_upsample_sizes_cubic", "cubic Resize"},
      {"test_resize_downsample_sizes_nearest_tf_half_pixel_for_nn", "coordinate mode tf_half_pixel_for_nn"},
      {"test_resize_tf_crop_and_resize", "coordinate mode tf_crop_and_resize"},
      {"test_upsample_nearest", "Upsample (deprecated since opset 10; at opsets 11+ exporters write Resize)"},
      {"test_convtranspose_1d", "1-D transposed convolution (q8 supports 2-D images)"},
      {"test_convtranspose_3d", "3-D transposed convolution (q8 supports 2-D images)"},
      {"test_sub_uint8", "uint8 tensors at the graph's edges"},
      {"test_mul_uint8", "uint8 tensors at the graph's edges"},
      {"test_div_uint8", "uint8 tensors at the graph's edges"},
      {"test_pow_types_float", "int64 tensors (q8's arithmetic is float32)"},
      {"test_pow_types_float32_int32", "int32 tensors (q8's arithmetic is float32)"},
      {"test_pow_types_float32_int64", "int64 tensors (q8's arithmetic is float32)"},
      {"test_pow_types_float32_uint32", "uint32 tensors (q8's arithmetic is float32)"},
      {"test_pow_types_float32_uint64", "uint64 tensors (q8's arithmetic is float32)"},
      {"test_pow_types_int", "int64 tensors (q8's arithmetic is float32)"},
      {"test_pow_types_int32_float32", "int32 tensors (q8's arithmetic is float32)"},
      {"test_pow_types_int32_int32", "int32 tensors (q8's arithmetic is float32)"},
      {"test_pow_types_int64_float32", "int64 tensors (q8's arithmetic is float32)"},
      {"test_pow_types_int64_int64", "int64 tensors (q8's arithmetic is float32)"},
  };
  const char* prefixes[] = {"test_conv_with_",
                            "test_basic_conv_",
                            "test_relu",
                            "test_clip",
                            "test_maxpool_",
                            "test_averagepool_",
                            "test_globalaveragepool",
                            "test_flatten_",
                            "test_gemm_",
                            "test_matmul_",
                            "test_add",
                            "test_batchnorm_",
                            "test_identity",
                            "test_dropout_",
                            "test_constant",
                            "test_reshape_",
                            "test_edge_pad",
                            "test_reflect_pad",
                            "test_concat_",
                            "test_slice",
                            "test_split_",
                            "test_transpose_",
                            "test_squeeze",
                            "test_unsqueeze_",
                            "test_shape",
                            "test_gather_",
                            "test_cast_",
                            "test_constantofshape_",
                            "test_resize_",
                            "test_upsample_",
                            "test_convtranspose_",
                            "test_mul",
                            "test_sub",
                            "test_div",
                            "test_pow",
                            "test_reduce_mean_",
                            "test_softmax_",
                            "test_logsoftmax_",
                            "test_layer_normalization_",
                            "test_sigmoid",
                            "test_tanh",
                            "test_hardsigmoid",
                            "test_hardswish",
                            "test_leakyrelu",
                            "test_elu",
                            "test_erf",
                            "test_sqrt",
                            "test_exp"};
  DIR* d = opendir(kNodeDir.c_str());
  if (!d) return r;
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) names.push_back(e->d_name);
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& n : names) {
    bool claimed = false;
    for (const char* p : prefixes) claimed |= n.rfind(p, 0) == 0;
    if (n.rfind("test_constantofshape", 0) == 0) claimed = false;
    // The _expanded cases spell an op through others (Exp, ReduceSum, Shape, ...): they test those.
    if (n.size() > 9 && n.compare(n.size() - 9, 9, "_expanded") == 0) claimed = false;
    // Same prefix, another op: Expand; and HardSwish spelled as its ONNX function body (with Mul).
    if (n.rfind("test_expand", 0) == 0 || n == "test_hardswish_expanded") claimed = false;
    if (!claimed) continue;
    auto it = refused.find(n);
    r.push_back({n, it == refused.end() ? "" : it->second});
  }
  return r;
}

class Conformance : public testing::TestWithParam<Case> {};

TEST_P(Conformance, MatchesOnnxOrIsRefusedCleanly) {
  const Case& c = GetParam();
  const std::string dir = kNodeDir + c.name + "/";
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(read_file(dir + "model.onnx")));
  // GlobalAveragePool's cases carry opset 1; the op is unchanged up to opset 21, so the harness
  // states the lowest opset q8 reads rather than skip the op's only conformance data.
  for (auto& op : *model.mutable_opset_import())
    if ((op.domain().empty() || op.domain() == "ai.onnx") && op.version() < 11) op.set_version(11);

  std::vector<q8::Tensor> inputs;
  const std::string op = model.graph().node_size() ? model.graph().node(0).op_type() : "";
  std::vector<int> bind;  // graph input indices turned into initializers
  for (int i = 0; i < model.graph().input_size(); ++i) {
    const std::string f = dir + "test_data_set_0/input_" + std::to_string(i) + ".pb";
    if (!exists(f)) break;
    onnx::TensorProto t = read_tensor(f);
    if (i > 0 && !takes_runtime_operands(op)) {
      t.set_name(model.graph().input(i).name());
      *model.mutable_graph()->add_initializer() = t;
      bind.push_back(i);
    } else {
      if (c.refused_because.empty()) inputs.push_back(to_tensor(t));
    }
  }
  for (auto it = bind.rbegin(); it != bind.rend(); ++it) model.mutable_graph()->mutable_input()->DeleteSubrange(*it, 1);
  const std::string bytes = model.SerializeAsString();

  if (!c.refused_because.empty()) {
    try {
      q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), c.name);
      q8::Session s(m);
      std::vector<q8::Tensor> in;
      for (int i = 0; i < model.graph().input_size(); ++i)
        in.push_back(to_tensor(read_tensor(dir + "test_data_set_0/input_" + std::to_string(i) + ".pb")));
      s.run(in);
      FAIL() << c.name << " should be refused (" << c.refused_because << ")";
    } catch (const q8::Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.name), std::string::npos) << "error should name the model: " << e.what();
    }
    return;
  }

  q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), c.name);
  q8::Session session(m);
  std::vector<q8::Tensor> out = session.run(inputs);
  for (size_t k = 0; k < out.size(); ++k) {
    const std::string f = dir + "test_data_set_0/output_" + std::to_string(k) + ".pb";
    ASSERT_TRUE(exists(f));
    q8::Tensor want = to_tensor(read_tensor(f));
    ASSERT_EQ(out[k].shape(), want.shape()) << c.name;
    for (int64_t i = 0; i < want.numel(); ++i) {
      const float g = out[k].data()[i], w = want.data()[i];
      ASSERT_LE(std::fabs(g - w), 1e-7 + 1e-3 * std::fabs(w)) << c.name << " output " << k << " element " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(OnnxNode, Conformance, testing::ValuesIn(cases()),
                         [](const testing::TestParamInfo<Case>& i) { return i.param.name; });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Conformance);

TEST(ConformanceData, IsInstalled) {
  if (!exists(kNodeDir + "test_relu/model.onnx")) GTEST_SKIP() << "libonnx-testdata is not installed";
  EXPECT_GT(cases().size(), 80u);
}

TEST(ConformanceData, LstmIsRefusedNamingOpAndNode) {
  const std::string f = kNodeDir + "test_lstm_defaults/model.onnx";
  if (!exists(f)) GTEST_SKIP() << "libonnx-testdata is not installed";
  try {
    q8::Model::load(f);
    FAIL() << "LSTM should be refused";
  } catch (const q8::Error& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("LSTM"), std::string::npos) << w;
    EXPECT_NE(w.find("node"), std::string::npos) << w;
  }
}

}  // namespace
