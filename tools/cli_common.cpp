#include "cli_common.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include <unistd.h>

namespace q8cli {

bool Args::flag(const std::string& k) const { return std::find(flags.begin(), flags.end(), k) != flags.end(); }

std::vector<std::string> Args::all(const std::string& k) const {
  std::vector<std::string> r;
  for (auto [a, b] = opts.equal_range(k); a != b; ++a) r.push_back(a->second);
  return r;
}

std::string Args::get(const std::string& k, const std::string& def) const {
  auto v = all(k);
  if (v.size() > 1) throw UsageError{"--" + k + " given more than once"};
  return v.empty() ? def : v[0];
}

long Args::get_int(const std::string& k, long def, long lo, long hi) const {
  if (!has(k)) return def;
  const std::string s = get(k, "");  // an empty value ("--threads ''") is refused below
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (errno || *end || end == s.c_str() || v < lo || v > hi)
    throw UsageError{"--" + k + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                     "], got '" + s + "'"};
  return v;
}

double Args::get_double(const std::string& k, double def, double lo, double hi) const {
  if (!has(k)) return def;
  const std::string s = get(k, "");  // an empty value ("--threads ''") is refused below
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (errno || *end || end == s.c_str() || !std::isfinite(v) || v < lo || v > hi)
    throw UsageError{"--" + k + " must be a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" +
                     s + "'"};
  return v;
}

int threads_from_flags(const Args& a) { return static_cast<int>(a.get_int("threads", 1, 1, 512)); }

Args parse(int argc, char** argv, const std::vector<std::string>& valued, const std::vector<std::string>& flags) {
  Args a;
  for (int i = 2; i < argc; ++i) {
    std::string s = argv[i];
    if (s.rfind("--", 0) == 0) {
      std::string name = s.substr(2), value;
      const size_t eq = name.find('=');
      const bool inline_value = eq != std::string::npos;
      if (inline_value) value = name.substr(eq + 1), name = name.substr(0, eq);
      if (std::find(flags.begin(), flags.end(), name) != flags.end() && !inline_value) {
        a.flags.push_back(name);
      } else if (std::find(valued.begin(), valued.end(), name) != valued.end()) {
        if (!inline_value) {
          if (i + 1 >= argc) throw UsageError{"--" + name + " needs a value"};
          value = argv[++i];
        }
        a.opts.emplace(name, value);
      } else {
        throw UsageError{"unknown option '" + s + "'"};
      }
    } else if (a.model.empty()) {
      a.model = s;
    } else {
      throw UsageError{"unexpected argument '" + s + "'"};
    }
  }
  if (a.model.empty()) throw UsageError{"missing MODEL.onnx"};
  return a;
}

const std::vector<std::string> kQuantFlags = {"calib",       "method", "percentile", "exclude",
                                              "max-samples", "size",   "mean",       "std"};

std::vector<std::string> with_quant_flags(std::vector<std::string> v) {
  v.insert(v.end(), kQuantFlags.begin(), kQuantFlags.end());
  return v;
}

std::vector<float> parse_floats(const std::string& flag, const std::string& s) {
  std::vector<float> r;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const float v = std::strtof(item.c_str(), &end);
    if (item.empty() || *end || !std::isfinite(v))
      throw UsageError{"--" + flag + " takes comma-separated numbers, got '" + s + "'"};
    r.push_back(v);
  }
  return r;
}

void progress_bar(size_t done, size_t total) {
  if (!isatty(2)) return;
  const int width = 30, filled = static_cast<int>(width * done / std::max<size_t>(total, 1));
  std::fprintf(stderr, "\rcalibrating [%s%s] %zu/%zu", std::string(filled, '#').c_str(),
               std::string(width - filled, ' ').c_str(), done, total);
  if (done == total) std::fputc('\n', stderr);
}

q8::QuantizeOptions quant_options_from_flags(const Args& a, int threads) {
  q8::QuantizeOptions qo;
  const std::string method = a.get("method", "percentile");
  if (method != "minmax" && method != "percentile" && method != "entropy" && method != "mse")
    throw UsageError{"--method must be minmax, percentile, entropy or mse, got '" + method + "'"};
  qo.method = q8::parse_calibration(method);
  if (a.has("percentile")) {
    const std::vector<float> p = parse_floats("percentile", a.get("percentile", ""));
    if (p.size() != 1 || !(p[0] > 50.f && p[0] <= 100.f))
      throw UsageError{"--percentile must be one number in (50, 100]"};
    qo.percentile = p[0];
  }
  qo.per_channel = !a.flag("per-tensor");
  for (const std::string& list : a.all("exclude")) {
    std::stringstream ss(list);
    std::string name;
    while (std::getline(ss, name, ','))
      if (!name.empty()) qo.exclude.push_back(name);
  }
  qo.threads = threads;
  qo.progress = progress_bar;
  return qo;
}

std::vector<q8::Tensor> calibration_from_flags(const Args& a, const q8::Model& model) {
  if (!a.has("calib")) throw UsageError{"int8 on an fp32 model needs --calib CALIB"};
  q8::CalibrationSource cs;
  cs.max_samples = a.get_int("max-samples", 0, 1, 1 << 30);
  if (a.has("size")) {
    const std::vector<float> hw = parse_floats("size", a.get("size", ""));
    if (hw.empty() || hw.size() > 2 || hw[0] < 1 || hw.back() < 1)
      throw UsageError{"--size takes H,W (or one value for both)"};
    cs.height = static_cast<int64_t>(hw[0]);
    cs.width = static_cast<int64_t>(hw.back());
  }
  if (a.has("mean")) cs.mean = parse_floats("mean", a.get("mean", ""));
  if (a.has("std")) cs.std = parse_floats("std", a.get("std", ""));
  return q8::load_calibration(a.get("calib", ""), model, cs);
}

q8::Model quantize_from_flags(const Args& a, const q8::Model& model, int threads) {
  if (!a.has("calib")) throw UsageError{"int8 on an fp32 model needs --calib CALIB"};
  const q8::QuantizeOptions qo = quant_options_from_flags(a, threads);
  return q8::quantize(model, calibration_from_flags(a, model), qo);
}

}  // namespace q8cli
