// q8's graph IR: values (tensors) and nodes (ops) in topological order.
//
// The IR knows nothing of ONNX protobufs, the quantizer, the runtime or the kernels. The
// importer fills it; passes (passes.h) rewrite it; the runtime compiles it into a plan.
// Node attributes keep ONNX's names and meanings so the importer stays a thin, checkable map.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace q8::ir {

enum class DType : uint8_t { Undefined, Float32, Uint8, Int8, Int32, Int64 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);

// A tensor shape. kUnknownDim marks a dimension only known at run time (a dynamic batch axis).
using Shape = std::vector<int64_t>;
constexpr int64_t kUnknownDim = -1;

// Product of the dims; throws q8::Error on overflow past int64 or on unknown/negative dims.
int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);

// An immutable tensor whose contents are known before run time (initializer, Constant, folded).
struct ConstTensor {
  DType dtype = DType::Undefined;
  Shape dims;
  std::vector<uint8_t> bytes;  // little-endian, C order, exactly numel * dtype_size bytes

  int64_t numel() const { return shape_numel(dims); }
  template <class T>
  const T* data() const {
    return reinterpret_cast<const T*>(bytes.data());
  }
  template <class T>
  T* mutable_data() {
    return reinterpret_cast<T*>(bytes.data());
  }
  // Element i converted to double / int64 (for small parameter tensors: shapes, clip bounds).
  double as_double(int64_t i) const;
  int64_t as_int64(int64_t i) const;
};
using ConstTensorPtr = std::shared_ptr<const ConstTensor>;

struct Attribute {
  enum class Kind : uint8_t { Int, Float, Ints, Floats, String, Tensor };
  Kind kind = Kind::Int;
  int64_t i = 0;
  float f = 0.f;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  std::string s;
  ConstTensorPtr t;
};

// The ops q8 knows. The importer refuses anything else with the op's name and the node's name.
// What each op is and does is one row of op_traits.h.
enum class Op : uint16_t {
  Conv,
  Relu,
  Clip,
  MaxPool,
  AveragePool,
  GlobalAveragePool,
  Flatten,
  Gemm,
  MatMul,
  Add,
  BatchNormalization,
  Identity,
  Dropout,
  Constant,
  Reshape,
  Pad,  // constant mode; zero padding of the spatial axes folds into the next Conv/AveragePool
  // Quantization as ONNX files carry it (QDQ and QOperator formats).
  QuantizeLinear,    // float -> uint8 (also the runtime op at a float/int8 border)
  DequantizeLinear,  // uint8 -> float (also the runtime op at an int8/float border)
  QLinearConv,
  QLinearMatMul,
  QLinearAdd,                // com.microsoft
  QLinearGlobalAveragePool,  // com.microsoft
  QGemm,                     // com.microsoft
  // q8's integer ops, made by lower_quantized() from either format. Inputs and outputs are
  // uint8 values whose Value::scale/zero_point give their quantization; weights are constant
  // int8 already centred on zero, biases int32 with scale s_in * s_w[c].
  QuantizedConv,   // inputs: x, w [K][Cg][KH][KW] int8, bias [K] int32 (optional); attrs as Conv
                   // plus "w_scale" (floats, K) and "qmin"/"qmax" (ints, the fused clamp)
  QuantizedDense,  // inputs: a [M][Kd], w [N][Kd] int8, bias [N] int32 (optional); "w_scale" (N)
  QuantizedAdd,    // inputs: a, b (same shape or per-channel broadcast); "qmin"/"qmax"
  Concat,          // any number of inputs joined along "axis"
  // Ops on shapes: exported models compute Reshape targets and Slice bounds from Shape(x) at run
  // time. infer_shapes() evaluates them once the input shapes are known, so they never run.
  Shape,            // the input's dims as int64 ("start"/"end" from opset 15)
  Gather,           // "axis"; on constants and computed shapes only
  Cast,             // "to"; on constants and computed shapes only
  ConstantOfShape,  // "value" repeated over the shape its input gives
  Unsqueeze,        // a view: unit axes inserted ("axes" attribute, an input from opset 13)
  Squeeze,          // a view: unit axes removed (likewise)
  Slice,            // starts, ends, axes, steps inputs (opset 10 and later)
  Transpose,        // "perm"
  Resize,           // inputs: x, roi (unused), scales, sizes (one of the two, constant); ONNX Resize-11+ attrs
  ConvTranspose,    // inputs: x, w [C][K/group][KH][KW], bias [K] (optional); ONNX ConvTranspose attrs
  Mul,              // NumPy broadcasting, like Add
  Sub,
  Div,
  Pow,
  ReduceMean,          // "axes" (attribute, or a constant input from opset 18), "keepdims"
  Softmax,             // along "axis" (before opset 13: over the axes from "axis" on, flattened)
  LogSoftmax,          // as Softmax
  LayerNormalization,  // inputs: x, scale, bias (optional); outputs: y, mean and inv_std_dev (optional)
  QuantizedMul,        // inputs: a, b (same shape, or one a per-channel [1|N,C,1,1] term of the other,
                       // 4-D); "qmin"/"qmax"
  // Element-wise activations (runtime/ops/unary.cpp; in int8, a 256-entry table).
  Sigmoid,
  Tanh,
  HardSigmoid,  // "alpha", "beta"
  HardSwish,
  LeakyRelu,  // "alpha"
  Elu,        // "alpha"
  Erf,
  Sqrt,
  Exp,
  Silu,              // x * sigmoid(x): q8's own fusion, no ONNX op
  QLinearSigmoid,    // com.microsoft: x, x_scale, x_zero_point, y_scale, y_zero_point
  QLinearLeakyRelu,  // com.microsoft: the same inputs; "alpha"
  // A QuantizedDense whose result is float32 (a quantized network's classifier): inputs a (uint8),
  // w [N][K] int8, bias [N] int32 (optional, in the accumulator's scale); "w_scale" [N].
  QuantizedDenseFloat,
  // inputs: x, w [C][K/group][KH][KW] int8, bias [K] int32 (optional); ConvTranspose's attrs and
  // "w_scale" (K), "qmin"/"qmax"
  QuantizedConvTranspose,
  // x * Phi(x), the Erf form (kern::UnaryKind::Gelu): q8's fusion of the pattern PyTorch exports
  // for nn.GELU (fuse_gelu), written as com.microsoft's Gelu; in int8, a 256-entry table.
  Gelu,
  // com.microsoft's QOperator forms that lower_quantized() first rewrites as DequantizeLinear ->
  // float op -> QuantizeLinear, then lowers like any QDQ pattern.
  QLinearConcat,       // Y_scale, Y_zero_point, then X, X_scale, X_zero_point per input; "axis"
  QLinearMul,          // A, A_scale, A_zero_point, B, B_scale, B_zero_point, C_scale, C_zero_point
  QLinearAveragePool,  // X, x_scale, x_zero_point, y_scale, y_zero_point; AveragePool's attrs
  // A 1x1, stride-1, unpadded, ungrouped QuantizedConv whose result is float32 (the output Conv of
  // a UNet or a detection head): inputs x (uint8), w [K][C][1][1] int8, bias [K] int32 (optional,
  // in the accumulator's scale); Conv's attrs and "w_scale" (K). A GEMM over the NHWC pixels.
  QuantizedConvFloat,
  // ShuffleNet's channel shuffle of a 4-D tensor, [N,C,H,W] -> Reshape [N,g,C/g,H,W] ->
  // Transpose(0,2,1,3,4) -> Reshape [N,C,H,W] as one node (rt::graph_for_shapes, once shapes are
  // known): "group" g; output channel i * g + j is input channel j * (C / g) + i.
  ChannelShuffle,
  // A new op goes above this line, with its row in op_traits.cpp (a static_assert checks both).
};
constexpr size_t kOpCount = static_cast<size_t>(Op::ChannelShuffle) + 1;
// The op's name (its ONNX op_type where it has one): op_traits(op).name.
const char* op_name(Op op);

struct Value {
  std::string name;
  DType dtype = DType::Undefined;
  Shape shape;  // empty with has_shape == false when not yet inferred
  bool has_shape = false;
  ConstTensorPtr constant;  // non-null for initializers and folded constants
  bool derived = false;     // computed by infer_shapes() from the input shapes (which sets `constant`)
  // Quantization of a uint8 activation: real = (q - zero_point) * scale.
  float scale = 0.f;
  int32_t zero_point = 0;
  bool is_const() const { return constant != nullptr; }
};

constexpr int kNoValue = -1;  // an omitted optional input

struct Node {
  Op op = Op::Identity;
  std::string name;          // the ONNX node name, or "<op>_<index>" when the file gave none
  std::vector<int> inputs;   // value ids; kNoValue for an omitted optional input
  std::vector<int> outputs;  // value ids
  std::map<std::string, Attribute> attrs;

  bool has_attr(const std::string& k) const { return attrs.count(k) != 0; }
  // Typed getters. They throw q8::Error naming the node if the attribute has another kind.
  int64_t attr_int(const std::string& k, int64_t def) const;
  float attr_float(const std::string& k, float def) const;
  std::vector<int64_t> attr_ints(const std::string& k, std::vector<int64_t> def = {}) const;
  std::vector<float> attr_floats(const std::string& k, std::vector<float> def = {}) const;
  std::string attr_string(const std::string& k, const std::string& def) const;
  // "node 'conv1' (Conv)" for error messages.
  std::string describe() const;
};

class Graph {
 public:
  std::string source;  // file the graph came from, for error messages
  int64_t opset = 0;   // default-domain opset
  std::vector<Value> values;
  std::vector<Node> nodes;  // topologically sorted
  std::vector<int> inputs;  // non-constant graph inputs, in the file's order
  std::vector<int> outputs;

  int add_value(Value v);
  // Value id by name, or kNoValue.
  int find_value(const std::string& name) const;
  // `base`, or `base_1`, `base_2`, ...: the first that names no value yet (for values a pass adds).
  std::string unused_value_name(const std::string& base) const;
  // Ids of the nodes reading value v: a scan of every node, for one-off questions. Passes that
  // ask for each node use a ConsumerIndex instead, so they stay linear in the graph's size.
  std::vector<int> consumers(int v) const;
  // The node writing each value (by value id), or -1 for graph inputs and constants.
  std::vector<int> producers() const;
  bool is_graph_output(int v) const;
  // Nodes whose results nothing uses: no output is a graph output or read by a node that is
  // used. Plans and `q8 info` leave them out (a branch a pass bypassed, a dangling one in a file).
  std::vector<bool> unread_nodes() const;
  // Whether every input node n gives (omitted optional ones aside) is a constant.
  bool inputs_const(const Node& n) const;
  // Drops nodes marked dead and values nobody references; keeps ids dense and order intact.
  void compact(const std::vector<bool>& dead_nodes);
  // Checks the invariants the passes and the runtime rely on (ids in range, each value produced
  // once, topological order, graph outputs produced); throws q8::Error naming what is wrong.
  void validate() const;
};

// Who reads each value, built in one pass over a graph. Passes that edit the graph keep it
// current: redirect() moves every reader of one value to another, add() records a node's new
// inputs. Entries that edits made stale (a node that no longer reads the value, or is dead) are
// skipped by the queries, so they never need removing.
class ConsumerIndex {
 public:
  explicit ConsumerIndex(const Graph& g);
  // The nodes that read v, each once, in node order.
  std::vector<int> readers(const Graph& g, int v, const std::vector<bool>* dead = nullptr) const;
  // The node that is the only reader of v, when v is not a graph output; else -1. With data_only,
  // Shape nodes (which read only v's shape) are not counted.
  int sole_reader(const Graph& g, int v, const std::vector<bool>* dead = nullptr, bool data_only = false) const;
  // Records node `n`'s current inputs.
  void add(const Graph& g, int n);
  // Every reader of `from`, and the graph's outputs, read `to` instead.
  void redirect(Graph& g, int from, int to);

 private:
  bool reads(const Graph& g, int n, int v, const std::vector<bool>* dead) const;
  std::vector<std::vector<int>> readers_;  // by value id; may hold stale entries (see above)
  std::vector<bool> output_;
};

// A BatchNormalization's per-channel scale, gamma[c] / sqrt(var[c] + epsilon): one rule for the
// fp32 kernel, the fold into a Conv and the int8 depthwise form, so all three scale alike.
// gamma and var are the node's float inputs 1 and 4, of one value per channel.
std::vector<float> batch_norm_scale(const Node& bn, const ConstTensor& gamma, const ConstTensor& var);

}  // namespace q8::ir
