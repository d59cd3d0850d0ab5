// q8::analyze: where, layer by layer, int8 loses precision and time on this model and this CPU.
//
//   q8::Analysis a = q8::analyze(fp32, calibration, {}, {.per_channel = false});
//   std::puts(a.to_text().c_str());
//
// Included by q8.h; needs its Model, Tensor and QuantizeOptions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace q8 {

class Model;
class Tensor;
struct QuantizeOptions;

// One row per Conv, Gemm and MatMul of the model, and per other node the quantizer runs in
// int8 with a requantized result (Add, AveragePool, GlobalAveragePool).
struct LayerAnalysis {
  std::string name, op;               // the fp32 node's name and ONNX op
  std::vector<int64_t> output_shape;  // batch 1
  int64_t macs = 0;                   // per batch item
  // SQNR = 10 log10(sum x^2 / sum (x - y)^2) of the int8 result y against the fp32 result x,
  // over the analysed samples, capped to [-99, 99] dB (99: no error at all).
  double sqnr_db = 99;              // own: this node alone in int8 (weights and result quantized),
                                    // fed the fp32 network's values
  double sqnr_cumulative_db = 99;   // the whole int8 network up to and including this node
  double output_sqnr_db = 99;       // the quantization of the result tensor alone
  double clipped = 0;               // share (0..1) of fp32 results outside the representable range
  double outlier_ratio = 1;         // representable range / 99.99th percentile of |fp32 result|
  double weight_range_ratio = 1;    // largest / median per-output-channel max|w| (1: no weights)
  double int8_ms = 0, fp32_ms = 0;  // this node's step in the int8 / fp32 plan (median, batch 1)
  // What keeping this node fp32 would change in the int8 model's conversions: its uint8 inputs
  // from int8 nodes dequantized and its result quantized for its int8 readers (added), the
  // quantization of a model input it reads and the dequantization of its result for a float
  // reader (removed). Element counts at batch 1 times this CPU's one-thread quantize and
  // dequantize rates; negative where it removes more than it adds.
  double fp32_conversions_ms = 0;
  // Both plans run the node as a step of its own. False where one of them runs it inside another
  // node's step (fp32: an activation inside its Conv; int8: x * f(x) as one table), whose time
  // that step's row carries: its times are then not compared.
  bool timed = true;
  bool int8 = true;  // false: the quantizer keeps it fp32 (excluded or unsupported)
  // The quantizer gave it int8 operands, but the runtime has no integer kernel for this node (a
  // Gemm writing the model's float output): it runs in fp32 on dequantized values, as `q8 info`
  // shows, and its int8 time is that fp32 step.
  bool fp32_fallback = false;
  std::string advice;  // see analyze.cpp: "fine", "keep fp32: int8 is slower here", ...
  // int8 nodes that read this node's quantized result (directly or through MaxPool, Flatten or
  // Reshape): they must stay fp32 too for the result to stay fp32.
  std::vector<std::string> output_readers;
};

struct AnalysisSummary {
  double sqnr_db = 99;              // end to end: all model outputs, int8 against fp32
  double int8_ms = 0, fp32_ms = 0;  // sum of all plan steps
  double conversions_ms = 0;        // int8 plan steps that belong to no row (layout, Q/DQ)
  std::vector<std::string> worst;   // up to 3 rows with the lowest own SQNR (below 99 dB)
  int64_t samples = 0;              // samples analysed
  std::string method, isa;          // calibration method, kernel path
  bool per_channel = true;
  int threads = 1;
};

struct Analysis {
  std::vector<LayerAnalysis> layers;
  AnalysisSummary summary;
  // {"layers": [{"name", "op", "output_shape", "macs", "sqnr_db", "sqnr_cumulative_db", "clipped",
  //   "int8_ms", "fp32_ms", "advice", ...}], "summary": {...}}; every number finite.
  std::string to_json() const;
  // One self-contained page: inline CSS and SVG charts, no scripts, no external resources.
  std::string to_html() const;
  // The table and summary `q8 analyze` prints.
  std::string to_text() const;
};

struct AnalyzeOptions {
  int iterations = 20;       // profiled runs per model (median per step)
  int64_t max_samples = 16;  // analysed samples when `inputs` is empty (the first calibration ones)
  double min_sqnr_db = 20;   // below this own SQNR a row gets accuracy advice
};

// Quantizes `fp32` with `options` on `calibration` (as q8::quantize), then measures every row on
// `inputs` (one tensor per model input, samples along axis 0; empty: the first
// `analyze.max_samples` calibration samples) and times both models on the first sample.
// Results other than the times depend only on the data and options.
Analysis analyze(const Model& fp32, const std::vector<Tensor>& calibration, const std::vector<Tensor>& inputs,
                 const QuantizeOptions& options, const AnalyzeOptions& analyze = {});

// Nodes to keep in fp32: rows where int8 is slower (by more than 10 % and 2 us) or whose own
// SQNR is below `min_sqnr_db`, and, where the result's quantization alone is below it, the
// int8 readers of that result. Sorted, unique.
std::vector<std::string> fallback_nodes(const Analysis& analysis, double min_sqnr_db);

// `q8 quantize --fallback auto`: analyzes (on the first calibration samples) and returns
// `options` with fallback_nodes() added to its exclusions; `kept` receives those nodes.
QuantizeOptions with_auto_fallback(const Model& fp32, const std::vector<Tensor>& calibration,
                                   const QuantizeOptions& options, double min_sqnr_db,
                                   std::vector<std::string>* kept = nullptr, Analysis* analysis = nullptr);

}  // namespace q8
