// q8: an INT8 inference engine for CNNs exported to ONNX.
//
//   q8::Model model = q8::Model::load("resnet18.onnx");    // throws q8::Error with context
//   q8::Session session(model, {.threads = 1});
//   std::vector<q8::Tensor> out = session.run({input});
//
// Tensors cross the API as float32, C order, NCHW for images, exactly as ONNX defines the
// model's inputs and outputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "q8/error.h"

namespace q8 {

// A dense float32 tensor in C order.
class Tensor {
 public:
  Tensor() = default;
  Tensor(std::vector<int64_t> shape, std::vector<float> data);  // throws if sizes disagree
  explicit Tensor(std::vector<int64_t> shape);                  // zero-filled

  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t numel() const { return static_cast<int64_t>(data_.size()); }
  const float* data() const { return data_.data(); }
  float* data() { return data_.data(); }
  const std::vector<float>& values() const { return data_; }

 private:
  std::vector<int64_t> shape_;
  std::vector<float> data_;
};

// A read-only view of float32 data in C order owned by someone else (a numpy array, another
// framework's tensor), so Session::run can read an input in place instead of copying it into a
// Tensor. The memory must stay valid and unchanged while a run reads it.
class TensorView {
 public:
  TensorView() = default;
  TensorView(const float* data, std::vector<int64_t> shape);  // throws on a negative dim, or null data with elements
  explicit TensorView(const Tensor& t) : data_(t.data()), shape_(t.shape()) {}

  const std::vector<int64_t>& shape() const { return shape_; }
  const float* data() const { return data_; }
  int64_t numel() const;

 private:
  const float* data_ = nullptr;
  std::vector<int64_t> shape_;
};

// .npy files (float32, little-endian, C order) as used by the q8 program.
Tensor load_npy(const std::string& path);
// Writes to a temporary file beside `path` and renames it, so `path` is whole or untouched. An
// existing character device or FIFO (/dev/null, a pipe) is written in place, never replaced.
void save_npy(const std::string& path, const Tensor& t);
// Several files, all or none: every temporary is written before any is renamed into place.
void save_npy(const std::vector<std::string>& paths, const std::vector<Tensor>& tensors);
// The same guarantee for any bytes (reports, models): whole or not at all.
void write_file_atomic(const std::string& path, const std::string& bytes);

struct TensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // -1 for a dimension fixed only at run time (dynamic batch)
};

// One row of Model::describe(): what a node computes and how.
struct NodeInfo {
  std::string name;
  std::string op;
  std::vector<std::vector<int64_t>> input_shapes;
  std::vector<std::vector<int64_t>> output_shapes;
  std::string params;  // "k=3x3 s=1 p=1,1,1,1 g=1 +relu"
  int64_t macs = 0;    // multiply-accumulates for one batch item
  std::string kernel;  // the kernel path the node runs on this CPU
  bool int8 = false;   // runs on uint8 data: an integer kernel, or a view or pool of a uint8 tensor
  // In a quantized model, a compute node that stayed float and runs between conversions; `kernel`
  // then ends in " (fp32 fallback)" and, where the quantizer knows why, ": " and `fp32_reason`.
  bool fp32_fallback = false;
  std::string fp32_reason;
};

namespace detail {
struct ModelImpl;
struct SessionImpl;
}  // namespace detail

// A loaded, validated and optimised model graph. Cheap to copy (shared, immutable).
class Model {
 public:
  Model() = default;
  explicit Model(std::shared_ptr<const detail::ModelImpl> impl) : impl_(std::move(impl)) {}

  // Reads and validates an ONNX file; throws q8::Error naming the file, node and problem.
  static Model load(const std::string& path);
  // Same, from bytes in memory; `name` stands in for the file name in errors.
  static Model load_from_memory(const void* data, size_t size, const std::string& name);

  // Writes the model as ONNX (a quantized model as QDQ, which ONNX Runtime also runs), through
  // a temporary file and a rename: `path` is written whole or not at all.
  void save(const std::string& path) const;
  // True if the model runs (some of) its nodes in int8.
  bool is_quantized() const;

  const std::vector<TensorInfo>& inputs() const;
  const std::vector<TensorInfo>& outputs() const;
  // Per node that runs: shapes (for `batch` items where the batch is dynamic), parameters, MACs,
  // kernel. Shape computations, evaluated before run time at that batch, are not listed.
  std::vector<NodeInfo> describe(int64_t batch = 1) const;
  const std::string& source() const;

  std::shared_ptr<const detail::ModelImpl> impl() const { return impl_; }

 private:
  std::shared_ptr<const detail::ModelImpl> impl_;
};

// ---- Quantization ----------------------------------------------------------------------------

// How the range of each activation tensor is chosen from the calibration data.
enum class Calibration {
  MinMax,      // the observed extremes
  Percentile,  // cut `percentile` % of the values' mass from the tails (see QuantizeOptions)
  Entropy,     // minimise the KL divergence between the float and quantized histograms
  Mse,         // minimise the mean squared quantization error
};
const char* calibration_name(Calibration c);
Calibration parse_calibration(const std::string& name);  // "minmax", ...; throws q8::Error

struct QuantizeOptions {
  Calibration method = Calibration::Percentile;
  double percentile = 99.99;
  bool per_channel = true;                                  // int8 weights per output channel; false: per tensor
  std::vector<std::string> exclude;                         // node names to keep in fp32
  int threads = 1;                                          // for calibration; results do not depend on it
  std::function<void(size_t done, size_t total)> progress;  // calibration runs
};

// Calibrates `fp32` on `calibration` (one tensor per model input, the N samples along axis 0)
// and returns the int8 model: weights int8 per channel, activations uint8 per tensor, biases
// int32, in QDQ form. Results do not depend on the order of the samples, how they are batched
// or the thread count. Throws q8::Error on empty or non-finite data, shapes that do not fit the
// model, or a model with nothing to quantize (none of its nodes runs in int8, or `exclude` names
// every one that would; the message says which).
Model quantize(const Model& fp32, const std::vector<Tensor>& calibration, const QuantizeOptions& options = {});

// Calibration data from a path: an .npy holding N samples along axis 0, a folder of .npy files
// (each one sample or a batch), or a folder of PNG/JPEG images (resized to `height` x `width`,
// scaled to [0, 1], then (x - mean[c]) / std[c]; channels from the model's input shape).
struct CalibrationSource {
  int64_t max_samples = 0;        // 0: all
  int64_t height = 0, width = 0;  // images: 0 takes the model's input size
  std::vector<float> mean, std;   // images: per channel (one value applies to all)
};
std::vector<Tensor> load_calibration(const std::string& path, const Model& model, const CalibrationSource& source = {});

struct SessionOptions {
  // SessionOptions{2} or SessionOptions{1, "avx2"}; the other fields are set by name.
  SessionOptions(int threads_ = 1, std::string isa_ = "") : threads(threads_), isa(std::move(isa_)) {}

  int threads = 1;
  // Kernel path: "" picks the best this CPU runs (or Q8_ISA's choice); otherwise one of
  // scalar, avx2, avxvnni, avx512, avx512vnni, amx, neon, neondot, neoni8mm, an error if the CPU
  // cannot run it. Every path gives the same bytes for quantized models.
  std::string isa;
  // Intermediate tensors (by name) to return after the model's outputs, as float32 (uint8
  // tensors are dequantized): for debugging and for `q8 analyze`.
  std::vector<std::string> extra_outputs;
};

// Time spent in one step of a session's plan.
struct LayerTime {
  std::string node;  // node name; layout changes appear as "<tensor> (to NHWC)" etc.
  std::string op;    // the node's op ("" for steps that belong to no node)
  double ms = 0;     // median over the profiled runs
};

// Runs a model. Construction compiles the plan (kernel choice, packed weights, memory arena);
// run() reuses it and does not allocate while input shapes stay the same. A session is used by
// one thread at a time; several sessions may share one Model.
class Session {
 public:
  explicit Session(const Model& model, SessionOptions options = {});
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // Inputs in the model's input order. Throws q8::Error on a wrong count or shape. A new batch
  // size (or other dynamic dimension) re-plans once; the same shapes again reuse the plan.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs);
  // Same, writing into `outputs`, whose storage is reused when the shapes already match: with
  // unchanged input shapes this performs no allocation at all.
  void run(const std::vector<Tensor>& inputs, std::vector<Tensor>& outputs);
  // Same, reading the `count` inputs in place through views: no input is copied.
  void run(const TensorView* inputs, size_t count, std::vector<Tensor>& outputs);
  const SessionOptions& options() const;
  // Runs `iterations` times (after one warm-up run) timing every step; returns each step's
  // median, in plan order.
  std::vector<LayerTime> profile(const std::vector<Tensor>& inputs, int iterations);

 private:
  std::unique_ptr<detail::SessionImpl> impl_;
};

// The kernel path chosen on this CPU ("amx", "avx512vnni", "avxvnni", "avx2", "neoni8mm", "neondot",
// "neon", "scalar"), after Q8_ISA.
std::string active_isa();
// Every kernel path this CPU and build can run, best first.
std::vector<std::string> supported_isas();
// The paths this CPU or build cannot run, each with the reason ("amx", "CPU has no AMX-TILE").
std::vector<std::pair<std::string, std::string>> unsupported_isas();
// The CPU as cpuinfo reports it: name and the SIMD features q8 cares about.
std::string cpu_description();

}  // namespace q8

#include "q8/analyze.h"
