// The q8 program. Its interface is a contract (DESIGN.md): scripts and users depend on the
// subcommands, flags, output formats and exit codes (0 ok, 1 error, 2 usage).
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "cli_common.h"
#include "commands.h"
#include "q8/q8.h"

namespace {

using namespace q8cli;

const char* kMainHelp =
    "usage: q8 <command> [options]\n"
    "\n"
    "commands:\n"
    "  run       run a model on .npy inputs and write .npy outputs\n"
    "  analyze   per-layer SQNR, clipping and int8/fp32 time, with advice\n"
    "  quantize  calibrate an fp32 model and write it as int8 (QDQ ONNX)\n"
    "  info      show a model's nodes, shapes, parameters, MACs and kernels, and this CPU\n"
    "  bench     time a model on this CPU\n"
    "  eval      top-1 accuracy of a classifier on labelled .npy data\n"
    "\n"
    "'q8 <command> --help' describes each command. Q8_ISA=scalar|avx2|avxvnni|avx512|avx512vnni|amx|neon|\n"
    "neondot|neoni8mm forces a kernel path.\n";

#define Q8_QUANT_OPTIONS                                                                             \
  "  --calib CALIB       an .npy with N samples along axis 0, a folder of .npy files, or a folder\n" \
  "                      of PNG/JPEG images (with --size H,W --mean M[,M,M] --std S[,S,S])\n"        \
  "  --method M          minmax | percentile (default) | entropy | mse\n"                            \
  "  --percentile P      for --method percentile (default 99.99)\n"                                  \
  "  --per-tensor        one weight scale per tensor instead of per output channel\n"                \
  "  --exclude N1,N2     keep these nodes in fp32\n"                                                 \
  "  --max-samples N     use at most N calibration samples\n"

const char* kRunHelp =
    "usage: q8 run MODEL.onnx --input X.npy [--input ...] --output Y.npy [--output ...]\n"
    "              [--precision fp32|int8] [--calib CALIB] [--threads N]\n"
    "\n"
    "Runs MODEL on float32 .npy inputs (C order, in the graph's input order) and writes each\n"
    "output as float32 .npy. An output file is written whole or not at all.\n"
    "  --precision P       fp32 or int8; a quantized model runs in int8, an fp32 model in fp32\n"
    "                      unless --precision int8 --calib CALIB quantizes it in memory\n"
    "  --threads N         worker threads (default 1)\n" Q8_QUANT_OPTIONS;

const char* kInfoHelp =
    "usage: q8 info MODEL.onnx [--batch N]\n"
    "\n"
    "Prints the model's inputs and outputs, then one row per node: op, input and output shapes,\n"
    "parameters, multiply-accumulates per batch item, and the kernel it runs with on this CPU;\n"
    "then the total MACs and the CPU's features as cpuinfo reports them.\n";

const char* kQuantizeHelp =
    "usage: q8 quantize MODEL.onnx --calib CALIB --output MODEL.int8.onnx [--method M] [--percentile P]\n"
    "                   [--per-tensor] [--exclude NODE,...] [--max-samples N] [--size H,W] [--mean ...]\n"
    "                   [--std ...] [--fallback none|auto] [--min-sqnr DB] [--threads N]\n"
    "\n"
    "Calibrates MODEL on CALIB and writes a QDQ ONNX file (int8 weights per channel, uint8\n"
    "activations per tensor, int32 biases) that q8 runs in int8 and ONNX Runtime also loads.\n" Q8_QUANT_OPTIONS
    "  --fallback auto     keep in fp32 the nodes where int8 is slower here or own SQNR < --min-sqnr\n"
    "  --min-sqnr DB       threshold for --fallback auto (default 20)\n";

const char* kEvalHelp =
    "usage: q8 eval MODEL.onnx --input X.npy --labels Y.npy [--precision fp32|int8] [--calib CALIB]\n"
    "               [--threads N] [--batch N]\n"
    "\n"
    "Runs a classifier on the N samples of X.npy (axis 0), --batch at a time (default 100), and\n"
    "prints the share whose highest-scoring class equals the label in Y.npy (N integers).\n"
    "--precision and the quantization options are as for q8 run.\n";

const char* kBenchHelp =
    "usage: q8 bench MODEL.onnx [--precision fp32|int8] [--calib CALIB] [--threads N]\n"
    "                [--iterations N] [--warmup N] [--batch N] [--json]\n"
    "\n"
    "Runs MODEL on random standard-normal inputs and reports the median, min and max latency of\n"
    "--iterations runs (default 30) after --warmup runs (default 5).\n"
    "  --json       one JSON object: median_ms, min_ms, max_ms, mean_ms, iterations, threads, batch, isa\n"
    "  --per-layer  also time every step of the plan (median over the iterations); with --json\n"
    "               as \"layers\": [{\"name\", \"op\", \"ms\"}]\n"
    "--precision and the quantization options are as for q8 run.\n";

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + (s[i] < 0 ? std::string("?") : std::to_string(s[i]));
  return r + "]";
}

std::string shapes_str(const std::vector<std::vector<int64_t>>& v) {
  std::string r;
  for (size_t i = 0; i < v.size(); ++i) r += (i ? " " : "") + shape_str(v[i]);
  return r;
}

std::string macs_str(int64_t m) {
  char buf[32];
  if (m >= 1000000000)
    std::snprintf(buf, sizeof buf, "%.3f G", m / 1e9);
  else if (m >= 1000000)
    std::snprintf(buf, sizeof buf, "%.3f M", m / 1e6);
  else if (m >= 1000)
    std::snprintf(buf, sizeof buf, "%.3f K", m / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(m));
  return buf;
}

// The model at the requested precision. A file that already holds quantization runs in int8;
// an fp32 model runs in fp32 unless --precision int8 and --calib are given.
q8::Model load_for_precision(const Args& a, int threads) {
  const std::string p = a.get("precision", "");
  if (!p.empty() && p != "fp32" && p != "int8") throw UsageError{"--precision must be fp32 or int8, got '" + p + "'"};
  q8::Model model = q8::Model::load(a.model);
  if (model.is_quantized()) {
    if (p == "fp32") throw q8::Error(a.model + ": the model is already quantized; it runs in int8 only");
    if (a.has("calib")) throw UsageError{"--calib is for fp32 models; this one is already quantized"};
    return model;
  }
  if (p != "int8") {
    if (a.has("calib")) throw UsageError{"--calib is only used with --precision int8"};
    return model;
  }
  return quantize_from_flags(a, model, threads);
}

int cmd_run(int argc, char** argv) {
  Args a = parse(argc, argv, with_quant_flags({"input", "output", "precision", "threads"}), {"per-tensor"});
  const auto ins = a.all("input"), outs = a.all("output");
  if (ins.empty()) throw UsageError{"run needs --input X.npy"};
  if (outs.empty()) throw UsageError{"run needs --output Y.npy"};
  const int threads = threads_from_flags(a);
  q8::Model model = load_for_precision(a, threads);
  if (ins.size() != model.inputs().size())
    throw q8::Error(a.model + ": model takes " + std::to_string(model.inputs().size()) + " input(s), got " +
                    std::to_string(ins.size()) + " --input");
  if (outs.size() > model.outputs().size())
    throw q8::Error(a.model + ": model has " + std::to_string(model.outputs().size()) + " output(s), got " +
                    std::to_string(outs.size()) + " --output");
  std::vector<q8::Tensor> inputs;
  for (const std::string& f : ins) inputs.push_back(q8::load_npy(f));
  q8::Session session(model, {threads});
  std::vector<q8::Tensor> outputs = session.run(inputs);
  outputs.resize(outs.size());
  q8::save_npy(outs, outputs);  // all or none
  return 0;
}

int cmd_info(int argc, char** argv) {
  Args a = parse(argc, argv, {"batch"}, {});
  const long batch = a.get_int("batch", 1, 1, 1 << 20);
  q8::Model model = q8::Model::load(a.model);
  std::printf("model: %s\n", q8::printable(a.model).c_str());
  for (const auto& t : model.inputs())
    std::printf("input:  %s %s float32\n", q8::printable(t.name).c_str(), shape_str(t.shape).c_str());
  for (const auto& t : model.outputs())
    std::printf("output: %s %s float32\n", q8::printable(t.name).c_str(), shape_str(t.shape).c_str());
  // Names come from the file: printed through q8::printable, widths measured on what is printed.
  auto rows = model.describe(batch);
  for (auto& r : rows) r.name = q8::printable(r.name), r.params = q8::printable(r.params);
  size_t wn = 4, wo = 2, wi = 5, wout = 6, wp = 6, wk = 6;
  for (const auto& r : rows) {
    wn = std::max(wn, r.name.size());
    wo = std::max(wo, r.op.size());
    wi = std::max(wi, shapes_str(r.input_shapes).size());
    wout = std::max(wout, shapes_str(r.output_shapes).size());
    wp = std::max(wp, r.params.size());
    wk = std::max(wk, r.kernel.size());
  }
  std::printf("\n%-*s  %-*s  %-*s  %-*s  %-*s  %12s  %s\n", (int)wn, "node", (int)wo, "op", (int)wi, "input", (int)wout,
              "output", (int)wp, "params", "MACs", "kernel");
  int64_t total = 0;
  for (const auto& r : rows) {
    total += r.macs;
    std::printf("%-*s  %-*s  %-*s  %-*s  %-*s  %12s  %s\n", (int)wn, r.name.c_str(), (int)wo, r.op.c_str(), (int)wi,
                shapes_str(r.input_shapes).c_str(), (int)wout, shapes_str(r.output_shapes).c_str(), (int)wp,
                r.params.c_str(), r.macs ? macs_str(r.macs).c_str() : "-", r.kernel.c_str());
  }
  std::printf("\nnodes: %zu   total MACs per batch item: %s (%lld)\n", rows.size(), macs_str(total).c_str(),
              static_cast<long long>(total));
  std::printf("cpu: %s\nkernel path: %s\n", q8::cpu_description().c_str(), q8::active_isa().c_str());
  // Why the faster paths are not taken (an AMX Xeon whose kernel refuses the tile permission, say).
  for (const auto& [isa, why] : q8::unsupported_isas()) std::printf("  not %s: %s\n", isa.c_str(), why.c_str());
  return 0;
}

int cmd_eval(int argc, char** argv) {
  Args a = parse(argc, argv, with_quant_flags({"input", "labels", "precision", "threads", "batch"}), {"per-tensor"});
  if (!a.has("input")) throw UsageError{"eval needs --input X.npy"};
  if (!a.has("labels")) throw UsageError{"eval needs --labels Y.npy"};
  const int threads = threads_from_flags(a);
  const long batch = a.get_int("batch", 100, 1, 1 << 20);
  q8::Model model = load_for_precision(a, threads);
  if (model.inputs().size() != 1) throw q8::Error(a.model + ": eval needs a model with one input");
  const q8::Tensor x = q8::load_npy(a.get("input", ""));
  const q8::Tensor y = q8::load_npy(a.get("labels", ""));
  if (x.shape().empty() || x.shape()[0] < 1) throw q8::Error(a.get("input", "") + ": no samples along axis 0");
  const int64_t n = x.shape()[0];
  if (y.numel() != n)
    throw q8::Error(a.get("labels", "") + ": " + std::to_string(y.numel()) + " labels for " + std::to_string(n) +
                    " samples");
  const int64_t per = x.numel() / n;
  q8::Session session(model, {threads});
  int64_t correct = 0;
  std::vector<q8::Tensor> out;
  for (int64_t first = 0; first < n; first += batch) {
    const int64_t b = std::min<int64_t>(batch, n - first);
    std::vector<int64_t> shape = x.shape();
    shape[0] = b;
    q8::Tensor chunk(shape, std::vector<float>(x.data() + first * per, x.data() + (first + b) * per));
    session.run({chunk}, out);
    const q8::Tensor& logits = out.at(0);
    const int64_t classes = logits.numel() / b;
    for (int64_t i = 0; i < b; ++i) {
      const float* row = logits.data() + i * classes;
      const int64_t best = std::max_element(row, row + classes) - row;
      const float label = y.data()[first + i];
      if (label < 0 || label >= classes || label != std::floor(label))
        throw q8::Error(a.get("labels", "") + ": label " + std::to_string(label) + " of sample " +
                        std::to_string(first + i) + " is not a class index in [0, " + std::to_string(classes) + ")");
      correct += best == static_cast<int64_t>(label);
    }
  }
  std::printf("top-1 %.2f %% (%lld / %lld)\n", 100.0 * correct / n, static_cast<long long>(correct),
              static_cast<long long>(n));
  return 0;
}

int cmd_quantize(int argc, char** argv) {
  Args a = parse(argc, argv, with_quant_flags({"output", "threads", "fallback", "min-sqnr"}), {"per-tensor"});
  if (!a.has("calib")) throw UsageError{"quantize needs --calib CALIB"};
  if (!a.has("output")) throw UsageError{"quantize needs --output MODEL.int8.onnx"};
  const int threads = threads_from_flags(a);
  const std::string fallback = a.get("fallback", "none");
  if (fallback != "none" && fallback != "auto")
    throw UsageError{"--fallback must be none or auto, got '" + fallback + "'"};
  if (a.has("min-sqnr") && fallback != "auto") throw UsageError{"--min-sqnr goes with --fallback auto"};
  const double min_sqnr = a.get_double("min-sqnr", 20.0, -99.0, 99.0);
  q8::Model model = q8::Model::load(a.model);
  if (model.is_quantized()) throw q8::Error(a.model + ": the model is already quantized");
  q8::QuantizeOptions qo = quant_options_from_flags(a, threads);
  const std::vector<q8::Tensor> calib = calibration_from_flags(a, model);
  std::vector<std::string> kept;
  if (fallback == "auto") qo = q8::with_auto_fallback(model, calib, qo, min_sqnr, &kept);
  q8::Model int8 = q8::quantize(model, calib, qo);
  int8.save(a.get("output", ""));
  // A node runs in int8 when it has an integer kernel, or is a view of a uint8 tensor; the
  // conversions at the borders (Quantize/DequantizeLinear) are not counted.
  int quantized = 0, total = 0;
  std::vector<std::string> fp32_nodes;
  for (const auto& r : int8.describe(1)) {
    if (r.op == "QuantizeLinear" || r.op == "DequantizeLinear") continue;
    ++total;
    if (r.int8) {
      ++quantized;
      continue;
    }
    // "NAME (OP, fallback: why)", with the reason where the quantizer gives one.
    fp32_nodes.push_back(q8::printable(r.name) + " (" + r.op + (r.fp32_fallback ? ", fallback" : "") +
                         (r.fp32_reason.empty() ? "" : ": " + q8::printable(r.fp32_reason)) + ")");
  }
  std::printf("wrote %s: %d of %d nodes run in int8 (method %s)\n", q8::printable(a.get("output", "")).c_str(),
              quantized, total, a.get("method", "percentile").c_str());
  if (fallback == "auto") {
    std::printf("--fallback auto (min SQNR %.1f dB): kept %zu node(s) in fp32\n", min_sqnr, kept.size());
    for (const auto& n : kept) std::printf("  fp32 (fallback): %s\n", q8::printable(n).c_str());
  }
  for (const std::string& n : fp32_nodes) std::printf("  fp32: %s\n", n.c_str());
  return 0;
}

int cmd_bench(int argc, char** argv) {
  Args a = parse(argc, argv, with_quant_flags({"precision", "threads", "iterations", "warmup", "batch"}),
                 {"json", "per-tensor", "per-layer"});
  const int threads = threads_from_flags(a);
  const long iters = a.get_int("iterations", 30, 1, 1000000);
  const long warmup = a.get_int("warmup", 5, 0, 1000000);
  const long batch = a.get_int("batch", 1, 1, 1 << 16);
  q8::Model model = load_for_precision(a, threads);
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal;
  std::vector<q8::Tensor> inputs;
  for (const auto& t : model.inputs()) {
    std::vector<int64_t> s = t.shape;
    for (size_t i = 0; i < s.size(); ++i)
      if (s[i] < 0) {
        if (i != 0) throw q8::Error(a.model + ": input '" + t.name + "' has a dynamic non-batch axis");
        s[i] = batch;
      }
    q8::Tensor x;
    try {
      x = q8::Tensor(s);
    } catch (const std::exception&) {  // std::bad_alloc or std::length_error
      throw q8::Error(a.model + ": out of memory allocating the random input '" + t.name + "' of shape " +
                      shape_str(s));
    }
    for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = normal(rng);
    inputs.push_back(std::move(x));
  }
  q8::Session session(model, {threads});
  std::vector<q8::Tensor> outputs;
  for (long i = 0; i < warmup; ++i) session.run(inputs, outputs);
  std::vector<double> ms;
  for (long i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    session.run(inputs, outputs);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double median =
      sorted.size() % 2 ? sorted[sorted.size() / 2] : 0.5 * (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]);
  double mean = 0;
  for (double v : ms) mean += v / ms.size();
  std::vector<q8::LayerTime> layers;
  if (a.flag("per-layer")) layers = session.profile(inputs, static_cast<int>(iters));
  if (!a.flag("json"))
    for (auto& l : layers) l.node = q8::printable(l.node);
  double layers_total = 0;
  for (const auto& l : layers) layers_total += l.ms;
  if (a.flag("json")) {
    std::string per_layer;
    for (size_t i = 0; i < layers.size(); ++i) {
      const std::string name = q8::json_escape(layers[i].node);
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.4f", layers[i].ms);
      per_layer += std::string(i ? ", " : "") + "{\"name\": \"" + name + "\", \"op\": \"" + layers[i].op +
                   "\", \"ms\": " + buf + "}";
    }
    if (!layers.empty()) per_layer = ", \"layers\": [" + per_layer + "]";
    std::printf(
        "{\"model\": \"%s\", \"precision\": \"%s\", \"median_ms\": %.4f, \"min_ms\": %.4f, \"max_ms\": %.4f, "
        "\"mean_ms\": %.4f, \"iterations\": %ld, \"warmup\": %ld, \"threads\": %d, \"batch\": %ld, \"isa\": "
        "\"%s\"%s}\n",
        q8::json_escape(a.model).c_str(), model.is_quantized() ? "int8" : "fp32", median, sorted.front(), sorted.back(),
        mean, iters, warmup, threads, batch, q8::active_isa().c_str(), per_layer.c_str());
  } else {
    std::printf(
        "model      %s\nprecision  %s\nisa        %s\nthreads    %d\nbatch      %ld\niterations %ld (warmup %ld)\n"
        "median     %.3f ms\nmin        %.3f ms\nmax        %.3f ms\nmean       %.3f ms\n",
        q8::printable(a.model).c_str(), model.is_quantized() ? "int8" : "fp32", q8::active_isa().c_str(), threads,
        batch, iters, warmup, median, sorted.front(), sorted.back(), mean);
    if (!layers.empty()) {
      size_t w = 4;
      for (const auto& l : layers) w = std::max(w, l.node.size());
      std::printf("\n%-*s  %-18s %10s %7s\n", static_cast<int>(w), "step", "op", "ms", "share");
      for (const auto& l : layers)
        std::printf("%-*s  %-18s %10.4f %6.1f%%\n", static_cast<int>(w), l.node.c_str(),
                    l.op.empty() ? "-" : l.op.c_str(), l.ms, layers_total > 0 ? 100.0 * l.ms / layers_total : 0.0);
      std::printf("%-*s  %-18s %10.4f\n", static_cast<int>(w), "sum of steps", "", layers_total);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A file-size limit (ulimit -f) then fails the write with EFBIG, reported and cleaned up like
  // any other write error, instead of killing q8 with a temporary file left behind.
  std::signal(SIGXFSZ, SIG_IGN);
  const std::string cmd = argc > 1 ? argv[1] : "";
  const char* help = cmd == "run"        ? kRunHelp
                     : cmd == "info"     ? kInfoHelp
                     : cmd == "bench"    ? kBenchHelp
                     : cmd == "eval"     ? kEvalHelp
                     : cmd == "quantize" ? kQuantizeHelp
                     : cmd == "analyze"  ? q8cli::kAnalyzeHelp
                                         : nullptr;
  try {
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::fputs(kMainHelp, stdout);
      return 0;
    }
    if (!help) throw UsageError{cmd.empty() ? "missing command" : "unknown command '" + cmd + "'"};
    for (int i = 2; i < argc; ++i)
      if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
        std::fputs(help, stdout);
        return 0;
      }
    if (cmd == "run") return cmd_run(argc, argv);
    if (cmd == "info") return cmd_info(argc, argv);
    if (cmd == "eval") return cmd_eval(argc, argv);
    if (cmd == "quantize") return cmd_quantize(argc, argv);
    if (cmd == "analyze") return q8cli::cmd_analyze(argc, argv);
    return cmd_bench(argc, argv);
  } catch (const UsageError& e) {
    // The message may quote the command line, which is the user's: printable like any name.
    std::fprintf(stderr, "q8: usage error: %s\n%s", q8::printable(e.what).c_str(), help ? help : kMainHelp);
    return 2;
  } catch (const q8::Error& e) {
    std::fprintf(stderr, "q8: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    // Allocations that can be large name what they were for where they happen; this is the rest.
    std::fprintf(stderr, "q8: error: out of memory in 'q8 %s'\n", q8::printable(cmd).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "q8: error: %s\n", e.what());
    return 1;
  }
}
