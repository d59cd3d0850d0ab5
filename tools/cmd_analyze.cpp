// q8 analyze MODEL.onnx --calib CALIB [--input X.npy] [--json] [--report FILE.html] ...
#include <cstdio>
#include <string>
#include <vector>

#include "cli_common.h"
#include "commands.h"
#include "q8/q8.h"

namespace q8cli {

const char* const kAnalyzeHelp =
    "usage: q8 analyze MODEL.onnx --calib CALIB [--input X.npy ...] [--method M] [--percentile P]\n"
    "                  [--per-tensor] [--exclude NODE,...] [--max-samples N] [--threads N]\n"
    "                  [--iterations N] [--min-sqnr DB] [--json] [--report FILE.html]\n"
    "\n"
    "Quantizes MODEL as 'q8 quantize' would and explains, node by node, where int8 loses precision\n"
    "and time: one row per Conv, Gemm, MatMul (and Add or pool run in int8) with its output shape,\n"
    "MACs, own SQNR (the node alone in int8, fed the fp32 network's values), cumulative SQNR (the\n"
    "whole int8 network up to it), share of results clipped by the int8 range, int8 and fp32 time\n"
    "on this CPU (batch 1), and advice; then the end-to-end SQNR, the worst layers and total times.\n"
    "  --input X.npy       samples to measure on (N along axis 0, one file per model input);\n"
    "                      default: the first 16 calibration samples\n"
    "  --iterations N      profiled runs per model for the times (default 20)\n"
    "  --min-sqnr DB       own SQNR below which a row gets accuracy advice (default 20)\n"
    "  --json              print {\"layers\": [...], \"summary\": {...}} instead of the table\n"
    "  --report FILE.html  also write a self-contained HTML page with charts\n"
    "  --threads N         worker threads (default 1)\n"
    "  --calib CALIB       an .npy with N samples along axis 0, a folder of .npy files, or a folder\n"
    "                      of PNG/JPEG images (with --size H,W --mean M[,M,M] --std S[,S,S])\n"
    "  --method M          minmax | percentile (default) | entropy | mse\n"
    "  --percentile P      for --method percentile (default 99.99)\n"
    "  --per-tensor        one weight scale per tensor instead of per output channel\n"
    "  --exclude N1,N2     keep these nodes in fp32\n"
    "  --max-samples N     use at most N calibration samples\n";

int cmd_analyze(int argc, char** argv) {
  const Args a = parse(argc, argv, with_quant_flags({"input", "threads", "iterations", "report", "min-sqnr"}),
                       {"json", "per-tensor"});
  if (!a.has("calib")) throw UsageError{"analyze needs --calib CALIB"};
  const int threads = threads_from_flags(a);
  q8::AnalyzeOptions ao;
  ao.iterations = static_cast<int>(a.get_int("iterations", 20, 1, 100000));
  ao.min_sqnr_db = a.get_double("min-sqnr", 20.0, -99.0, 99.0);
  const std::string report = a.get("report", "");
  if (a.has("report") && report.empty()) throw UsageError{"--report needs a file name"};
  q8::QuantizeOptions qo = quant_options_from_flags(a, threads);
  const q8::Model model = q8::Model::load(a.model);
  if (model.is_quantized()) throw q8::Error(a.model + ": the model is already quantized; analyze needs the fp32 model");
  const std::vector<q8::Tensor> calib = calibration_from_flags(a, model);
  std::vector<q8::Tensor> inputs;
  for (const std::string& f : a.all("input")) inputs.push_back(q8::load_npy(f));
  if (!inputs.empty() && inputs.size() != model.inputs().size())
    throw q8::Error(a.model + ": model takes " + std::to_string(model.inputs().size()) + " input(s), got " +
                    std::to_string(inputs.size()) + " --input");
  const q8::Analysis an = q8::analyze(model, calib, inputs, qo, ao);
  if (!report.empty()) q8::write_file_atomic(report, an.to_html());
  if (a.flag("json"))
    std::printf("%s\n", an.to_json().c_str());
  else
    std::fputs(an.to_text().c_str(), stdout);
  if (!report.empty() && !a.flag("json")) std::printf("report: %s\n", q8::printable(report).c_str());
  return 0;
}

}  // namespace q8cli
