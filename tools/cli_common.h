// Helpers shared by the q8 program's commands: argument parsing, usage errors, JSON strings and
// the quantization flags (--calib, --method, --percentile, --per-tensor, --exclude, ...).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "q8/q8.h"

namespace q8cli {

// A usage error: main() prints "q8: usage error: WHAT" and the command's help, and exits 2.
struct UsageError {
  std::string what;
};

// Options of the form --name VALUE (repeatable) or --flag, after one positional MODEL.
struct Args {
  std::string model;
  std::multimap<std::string, std::string> opts;
  std::vector<std::string> flags;

  bool has(const std::string& k) const { return opts.count(k) != 0; }
  bool flag(const std::string& k) const;
  std::vector<std::string> all(const std::string& k) const;
  std::string get(const std::string& k, const std::string& def) const;  // at most once
  long get_int(const std::string& k, long def, long lo, long hi) const;
  double get_double(const std::string& k, double def, double lo, double hi) const;
};

// --threads N: 1 (the default) to 512; more is refused as a usage error rather than trying to
// start hundreds of threads.
int threads_from_flags(const Args& a);

// Parses argv[2..] (argv[1] is the command): `valued` options take a value, `flags` do not.
Args parse(int argc, char** argv, const std::vector<std::string>& valued, const std::vector<std::string>& flags);

// "1,2.5,3" -> numbers; a UsageError naming --flag otherwise.
std::vector<float> parse_floats(const std::string& flag, const std::string& s);
// A progress bar on stderr while calibrating, only when stderr is a terminal.
void progress_bar(size_t done, size_t total);

// Quantization flags shared by quantize, run, bench, eval and analyze (valued ones; the flag
// --per-tensor goes with them).
extern const std::vector<std::string> kQuantFlags;
std::vector<std::string> with_quant_flags(std::vector<std::string> v);
// --method, --percentile, --per-tensor, --exclude; threads for calibration, progress bar.
q8::QuantizeOptions quant_options_from_flags(const Args& a, int threads);
// --calib with --max-samples, --size, --mean, --std (a UsageError without --calib).
std::vector<q8::Tensor> calibration_from_flags(const Args& a, const q8::Model& model);
// Calibrates `model` on --calib with the method flags and returns the int8 model.
q8::Model quantize_from_flags(const Args& a, const q8::Model& model, int threads);

}  // namespace q8cli
