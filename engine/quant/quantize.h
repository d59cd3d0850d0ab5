// The quantizer: calibrates an fp32 graph on sample inputs and rewrites it as a QDQ graph
// (QuantizeLinear/DequantizeLinear around the ops q8 runs in int8), which is standard ONNX:
// lower_quantized() turns it into integer ops, and Model::save writes it for other runtimes.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "quant/calibrate.h"

namespace q8::quant {

struct Options {
  calib::Method method = calib::Method::Percentile;
  double percentile = 99.99;
  bool per_channel = true;        // int8 weights per output channel (else per tensor)
  std::set<std::string> exclude;  // node names kept in fp32
  int threads = 1;                // for the calibration runs; results do not depend on it
  // Called after each calibration run: (runs done, runs in all).
  std::function<void(size_t, size_t)> progress;
};

// One calibration sample: a float tensor per graph input, C order, batch 1.
struct Sample {
  std::vector<std::vector<int64_t>> shapes;
  std::vector<const float*> data;
};

// `g` must be in simplify()'d form (see passes.h). Returns the QDQ graph; throws q8::Error if
// nothing in the graph can be quantized.
ir::Graph quantize(const ir::Graph& g, const std::vector<Sample>& samples, const Options& o);

// Names of the nodes quantize() would run in int8 (before calibration), for reporting.
std::vector<std::string> quantizable_nodes(const ir::Graph& g, const Options& o);

}  // namespace q8::quant
