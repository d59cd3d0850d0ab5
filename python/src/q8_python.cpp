// q8._q8: the Python extension module, a thin pybind11 layer over the public C++ API (q8/q8.h).
//
// It converts between Python and the API and does nothing the API does not: every number,
// file and message comes from the library, so results are the q8 program's, byte for byte.
// What it adds is what a Python caller needs:
//   - arrays cross as the q8 program's .npy reader takes them: float32 as it is, float64, int64,
//     int32, uint8 and int8 converted to float32 (numpy's C cast, the reader's static_cast);
//     C order required. A C-contiguous float32 input is read in place (q8::TensorView), and each
//     output array owns the q8::Tensor the session wrote (no copy either way);
//   - the GIL is released while the library works (load, compile, quantize, analyze, run);
//   - one Session may be called from several Python threads: the API's Session is used by one
//     thread at a time, so each Session carries a mutex that serialises run() and profile();
//   - q8::Error becomes q8.Error (a RuntimeError) with the library's one-line message.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "q8/q8.h"

namespace py = pybind11;

namespace {

// ---- Small conversions ------------------------------------------------------------------------

// A path given as str, bytes or os.PathLike.
std::string path_arg(py::handle p) {
  py::object s = py::module_::import("os").attr("fspath")(p);
  return s.cast<std::string>();
}

// A shape as a tuple; a dimension fixed only at run time (-1 in the API) is None.
py::tuple shape_tuple(const std::vector<int64_t>& s) {
  py::tuple t(s.size());
  for (size_t i = 0; i < s.size(); ++i) t[i] = s[i] < 0 ? py::object(py::none()) : py::object(py::int_(s[i]));
  return t;
}

py::list shape_list(const std::vector<int64_t>& s) {
  py::list l;
  for (int64_t d : s) l.append(d < 0 ? py::object(py::none()) : py::object(py::int_(d)));
  return l;
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + (s[i] < 0 ? std::string("?") : std::to_string(s[i]));
  return r + "]";
}

std::string names_text(const std::vector<q8::TensorInfo>& v) {
  std::string r;
  for (size_t i = 0; i < v.size(); ++i) r += (i ? ", " : "") + v[i].name;
  return r;
}

// The input arrays' rules, with the messages of the q8 program's .npy reader (engine/io/npy.cpp)
// for the same problems: `what` names the array where the reader names the file.
// `what` is called only to name the array in an error; the checks read numpy's descriptor
// directly, so a valid array costs no Python calls.
template <class What>
py::array float32_array(py::handle obj, const What& what) {
  py::array a = py::isinstance<py::array>(obj) ? py::reinterpret_borrow<py::array>(obj)
                                               : py::array(py::module_::import("numpy").attr("asarray")(obj));
  const py::dtype dt = a.dtype();
  const char kind = dt.kind();
  const py::ssize_t size = dt.itemsize();
  auto descr = [&] { return py::str(dt.attr("str")).cast<std::string>(); };
  if (dt.has_fields()) throw q8::Error(what() + ": structured dtypes are not supported");
  if (kind == 'O') throw q8::Error(what() + ": object arrays are not supported");
  if (dt.byteorder() == '>') throw q8::Error(what() + ": big-endian data ('" + descr() + "') is not supported");
  const bool f32 = kind == 'f' && size == 4;
  const bool convertible = (kind == 'f' && size == 8) || (kind == 'i' && (size == 8 || size == 4 || size == 1)) ||
                           (kind == 'u' && size == 1);
  if (!f32 && !convertible)
    throw q8::Error(what() + ": unsupported dtype '" + descr() +
                    "' (supported: float32, float64, int64, int32, uint8, int8)");
  if (!(a.flags() & py::array::c_style)) {
    if (a.flags() & py::array::f_style)
      throw q8::Error(what() + ": Fortran-order arrays are not supported (use np.ascontiguousarray)");
    throw q8::Error(what() + ": non-contiguous arrays are not supported (use np.ascontiguousarray)");
  }
  if (!f32) a = a.attr("astype")("float32");
  return a;
}

std::vector<int64_t> array_shape(const py::array& a) { return std::vector<int64_t>(a.shape(), a.shape() + a.ndim()); }

// The arrays for the model's inputs, in its input order, from a dict {name: array}, a list or
// tuple (input order), or one array (a one-input model). Other counts are left to the API,
// which reports them as the q8 program does.
std::vector<py::array> input_arrays(const q8::Model& model, py::handle inputs) {
  const std::vector<q8::TensorInfo>& want = model.inputs();
  std::vector<py::array> r;
  if (py::isinstance<py::dict>(inputs)) {
    py::dict d = py::reinterpret_borrow<py::dict>(inputs);
    for (auto item : d) {
      const std::string key = py::str(item.first);
      bool known = false;
      for (const auto& t : want) known |= t.name == key;
      if (!known)
        throw q8::Error(model.source() + ": '" + key + "' is not an input of the model (inputs: " + names_text(want) +
                        ")");
    }
    for (const auto& t : want) {
      if (!d.contains(t.name))
        throw q8::Error(model.source() + ": input '" + t.name + "' is missing (inputs: " + names_text(want) + ")");
      r.push_back(float32_array(d[py::str(t.name)], [&] { return "input '" + t.name + "'"; }));
    }
  } else if (py::isinstance<py::list>(inputs) || py::isinstance<py::tuple>(inputs)) {
    py::sequence s = py::reinterpret_borrow<py::sequence>(inputs);
    for (size_t i = 0; i < s.size(); ++i)
      r.push_back(
          float32_array(s[i], [&] { return "input '" + (i < want.size() ? want[i].name : std::to_string(i)) + "'"; }));
  } else {
    r.push_back(
        float32_array(inputs, [&] { return "input '" + (want.empty() ? std::string("0") : want[0].name) + "'"; }));
  }
  return r;
}

q8::Tensor to_tensor(const py::array& a) {
  const float* p = static_cast<const float*>(a.data());
  return q8::Tensor(array_shape(a), std::vector<float>(p, p + a.size()));
}

// An output as a numpy array that owns the Tensor the session wrote (no copy).
py::array to_numpy(q8::Tensor&& t) {
  auto* owner = new q8::Tensor(std::move(t));
  py::capsule base(owner, [](void* p) { delete static_cast<q8::Tensor*>(p); });
  std::vector<py::ssize_t> shape(owner->shape().begin(), owner->shape().end());
  return py::array_t<float>(shape, owner->data(), base);
}

// ---- Model ------------------------------------------------------------------------------------

struct TensorInfo {
  std::string name;
  std::vector<int64_t> shape;
};

std::vector<TensorInfo> infos(const std::vector<q8::TensorInfo>& v) {
  std::vector<TensorInfo> r;
  for (const auto& t : v) r.push_back({t.name, t.shape});
  return r;
}

q8::Model load_model(py::handle path) {
  const std::string p = path_arg(path);
  py::gil_scoped_release nogil;
  return q8::Model::load(p);
}

// A Model, or a path to load one from.
q8::Model model_arg(py::handle m) {
  if (py::isinstance<q8::Model>(m)) return m.cast<q8::Model>();
  return load_model(m);
}

void require_loaded(const q8::Model& m) {
  if (!m.impl()) throw q8::Error("the model is empty (load one with q8.Model.load)");
}

py::dict info_dict(const q8::Model& m, int64_t batch) {
  require_loaded(m);
  if (batch < 1) throw q8::Error("info: batch must be >= 1, got " + std::to_string(batch));
  std::vector<q8::NodeInfo> rows;
  {
    py::gil_scoped_release nogil;
    rows = m.describe(batch);
  }
  auto tensors = [](const std::vector<q8::TensorInfo>& v) {
    py::list l;
    for (const auto& t : v) {
      py::dict d;
      d["name"] = t.name;
      d["shape"] = shape_list(t.shape);
      d["dtype"] = "float32";
      l.append(d);
    }
    return l;
  };
  py::list nodes;
  int64_t total = 0;
  for (const auto& r : rows) {
    py::dict d;
    d["name"] = r.name;
    d["op"] = r.op;
    py::list ins, outs;
    for (const auto& s : r.input_shapes) ins.append(shape_list(s));
    for (const auto& s : r.output_shapes) outs.append(shape_list(s));
    d["input_shapes"] = ins;
    d["output_shapes"] = outs;
    d["params"] = r.params;
    d["macs"] = r.macs;
    d["kernel"] = r.kernel;
    d["int8"] = r.int8;
    d["fp32_fallback"] = r.fp32_fallback;
    d["fp32_reason"] = r.fp32_reason;
    nodes.append(d);
    total += r.macs;
  }
  py::dict info;
  info["model"] = m.source();
  info["quantized"] = m.is_quantized();
  info["batch"] = batch;
  info["inputs"] = tensors(m.inputs());
  info["outputs"] = tensors(m.outputs());
  info["nodes"] = nodes;
  info["total_macs"] = total;
  info["cpu"] = q8::cpu_description();
  info["isa"] = q8::active_isa();
  return info;
}

// ---- Session ----------------------------------------------------------------------------------

struct PySession {
  q8::Model model;
  std::unique_ptr<q8::Session> session;
  std::vector<std::string> output_names;  // the model's outputs, then the extra outputs
  std::mutex mu;                          // q8::Session is used by one thread at a time
};

std::unique_ptr<PySession> make_session(py::handle model, int threads, const std::string& isa,
                                        const std::vector<std::string>& extra_outputs) {
  auto s = std::make_unique<PySession>();
  s->model = model_arg(model);
  require_loaded(s->model);
  q8::SessionOptions o(threads, isa);
  o.extra_outputs = extra_outputs;
  {
    py::gil_scoped_release nogil;
    s->session = std::make_unique<q8::Session>(s->model, o);
  }
  for (const auto& t : s->model.outputs()) s->output_names.push_back(t.name);
  for (const auto& n : extra_outputs) s->output_names.push_back(n);
  return s;
}

py::dict session_run(PySession& s, py::handle inputs) {
  const std::vector<py::array> arrays = input_arrays(s.model, inputs);  // hold them while the run reads them
  std::vector<q8::TensorView> views;
  views.reserve(arrays.size());
  for (const py::array& a : arrays) views.emplace_back(static_cast<const float*>(a.data()), array_shape(a));
  std::vector<q8::Tensor> out;
  {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(s.mu);
    s.session->run(views.data(), views.size(), out);
  }
  py::dict r;
  for (size_t i = 0; i < out.size(); ++i) r[py::str(s.output_names.at(i))] = to_numpy(std::move(out[i]));
  return r;
}

// The addresses session_run reads each input from (tests check that float32 C-order input is
// read in place).
py::list input_addresses(PySession& s, py::handle inputs) {
  py::list r;
  for (const py::array& a : input_arrays(s.model, inputs)) r.append(reinterpret_cast<uintptr_t>(a.data()));
  return r;
}

py::list session_profile(PySession& s, py::handle inputs, int iterations) {
  std::vector<q8::Tensor> tensors;
  for (const py::array& a : input_arrays(s.model, inputs)) tensors.push_back(to_tensor(a));
  std::vector<q8::LayerTime> times;
  {
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(s.mu);
    times = s.session->profile(tensors, iterations);
  }
  py::list r;
  for (const auto& t : times) {
    py::dict d;
    d["node"] = t.node;
    d["op"] = t.op;
    d["ms"] = t.ms;
    r.append(d);
  }
  return r;
}

// The C++ API's own loop, for the overhead benchmark: `iterations` calls of
// Session::run(inputs, outputs) on Tensors, as a C++ program makes them; returns each call's
// time in seconds.
std::vector<double> time_cpp_runs(PySession& s, py::handle inputs, int iterations) {
  std::vector<q8::Tensor> tensors;
  for (const py::array& a : input_arrays(s.model, inputs)) tensors.push_back(to_tensor(a));
  std::vector<double> r(static_cast<size_t>(std::max(iterations, 0)));
  py::gil_scoped_release nogil;
  std::lock_guard<std::mutex> lock(s.mu);
  std::vector<q8::Tensor> out;
  for (double& t : r) {
    const auto t0 = std::chrono::steady_clock::now();
    s.session->run(tensors, out);
    t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return r;
}

// ---- Calibration ------------------------------------------------------------------------------

// Calibration data, one float32 tensor per model input with the samples along axis 0, as
// q8::quantize takes it.
struct CalibrationSet {
  std::vector<q8::Tensor> tensors;
  int64_t samples = 0;
};

// Gathers calibration arrays batch by batch (from a list, an iterator, a DataLoader), each
// batch holding one sample (no batch axis) or several along axis 0, as the q8 program takes
// the files of a calibration folder; keeps the first `max_samples` (0: all).
class CalibrationBuilder {
 public:
  CalibrationBuilder(const q8::Model& model, int64_t max_samples) : model_(model), max_(max_samples) {
    require_loaded(model);
    if (max_samples < 0) throw q8::Error("max_samples must be >= 0, got " + std::to_string(max_samples));
    data_.resize(model.inputs().size());
    sample_shapes_.resize(model.inputs().size());
  }

  // Adds one batch (one array per model input); returns true once max_samples are held.
  bool add(const std::vector<py::object>& batch) {
    const auto& want = model_.inputs();
    const std::string where = "calibration batch " + std::to_string(batches_);
    if (batch.size() != want.size())
      throw q8::Error(model_.source() + ": " + where + " has " + std::to_string(batch.size()) +
                      " array(s), the model has " + std::to_string(want.size()) + " input(s)");
    if (full()) return true;
    std::vector<py::array> arrays;
    int64_t n = -1;
    for (size_t i = 0; i < batch.size(); ++i) {
      py::array a = float32_array(batch[i], [&] { return where + ", input '" + want[i].name + "'"; });
      std::vector<int64_t> s = array_shape(a);
      const std::vector<int64_t>& in = want[i].shape;
      if (s.size() + 1 == in.size()) s.insert(s.begin(), 1);  // one sample without its batch axis
      bool fits = s.size() == in.size() && !in.empty();
      for (size_t d = 1; fits && d < in.size(); ++d) fits = in[d] < 0 || in[d] == s[d];
      if (!fits)
        throw q8::Error(model_.source() + ": " + where + ": shape " + shape_text(array_shape(a)) +
                        " does not fit input '" + want[i].name + "' " + shape_text(in) + " (samples along axis 0)");
      const std::vector<int64_t> sample(s.begin() + 1, s.end());
      if (samples_ > 0 && sample != sample_shapes_[i])
        throw q8::Error(model_.source() + ": " + where + ": shape " + shape_text(array_shape(a)) +
                        " differs from the other calibration samples");
      if (n >= 0 && s[0] != n)
        throw q8::Error(model_.source() + ": " + where + ": the inputs hold different sample counts");
      n = s[0];
      sample_shapes_[i] = sample;
      arrays.push_back(std::move(a));
    }
    const int64_t take = max_ > 0 ? std::min(n, max_ - samples_) : n;
    for (size_t i = 0; i < arrays.size(); ++i) {
      const float* p = static_cast<const float*>(arrays[i].data());
      const int64_t per = n > 0 ? arrays[i].size() / n : 0;
      data_[i].insert(data_[i].end(), p, p + take * per);
    }
    samples_ += take;
    ++batches_;
    return full();
  }

  bool full() const { return max_ > 0 && samples_ >= max_; }
  int64_t samples() const { return samples_; }

  CalibrationSet finish() {
    if (samples_ == 0) throw q8::Error(model_.source() + ": the calibration set is empty");
    CalibrationSet c;
    for (size_t i = 0; i < data_.size(); ++i) {
      std::vector<int64_t> shape = sample_shapes_[i];
      shape.insert(shape.begin(), samples_);
      c.tensors.emplace_back(shape, std::move(data_[i]));
    }
    c.samples = samples_;
    data_.assign(data_.size(), {});
    samples_ = 0;
    return c;
  }

 private:
  q8::Model model_;
  int64_t max_;
  std::vector<std::vector<float>> data_;
  std::vector<std::vector<int64_t>> sample_shapes_;
  int64_t samples_ = 0;
  int64_t batches_ = 0;
};

CalibrationSet load_calibration(const q8::Model& model, py::handle path, int64_t max_samples,
                                const std::vector<int64_t>& size, const std::vector<float>& mean,
                                const std::vector<float>& std) {
  require_loaded(model);
  q8::CalibrationSource src;
  if (max_samples < 0) throw q8::Error("max_samples must be >= 0, got " + std::to_string(max_samples));
  src.max_samples = max_samples;
  if (size.size() > 2 || (!size.empty() && (size.front() < 1 || size.back() < 1)))
    throw q8::Error("size takes (H, W) or one value for both, each >= 1");
  if (!size.empty()) src.height = size.front(), src.width = size.back();
  src.mean = mean;
  src.std = std;
  const std::string p = path_arg(path);
  CalibrationSet c;
  {
    py::gil_scoped_release nogil;
    c.tensors = q8::load_calibration(p, model, src);
  }
  c.samples = c.tensors.empty() || c.tensors[0].shape().empty() ? 0 : c.tensors[0].shape()[0];
  return c;
}

// QuantizeOptions from the Python arguments. `progress` (None or callable(done, total)) is
// called with the GIL held; Ctrl-C during calibration raises KeyboardInterrupt.
q8::QuantizeOptions quantize_options(const std::string& method, py::handle percentile, bool per_channel,
                                     const std::vector<std::string>& exclude, int threads, py::handle progress) {
  q8::QuantizeOptions o;
  o.method = q8::parse_calibration(method);
  // None keeps the library's default (99.99). The q8 program reads --percentile as a float
  // (tools/cli_common.cpp), so a given value is rounded to float too: the same arguments give
  // the same bytes.
  if (!percentile.is_none()) o.percentile = static_cast<float>(percentile.cast<double>());
  o.per_channel = per_channel;
  o.exclude = exclude;
  if (threads < 1 || threads > 1024)
    throw q8::Error("threads must be between 1 and 1024, got " + std::to_string(threads));
  o.threads = threads;
  // A borrowed pointer: the caller's argument outlives the call, and the library may copy the
  // std::function on a thread without the GIL, which must not touch reference counts.
  PyObject* cb = progress.is_none() ? nullptr : progress.ptr();
  o.progress = [cb](size_t done, size_t total) {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (cb) py::handle{cb}(done, total);
  };
  return o;
}

q8::Model quantize(const q8::Model& model, const CalibrationSet& calib, const std::string& method,
                   py::object percentile, bool per_channel, const std::vector<std::string>& exclude, int threads,
                   const std::string& fallback, double min_sqnr, py::handle progress) {
  require_loaded(model);
  if (fallback != "none" && fallback != "auto")
    throw q8::Error("fallback must be None, 'none' or 'auto', got '" + fallback + "'");
  q8::QuantizeOptions o = quantize_options(method, percentile, per_channel, exclude, threads, progress);
  py::gil_scoped_release nogil;
  // `q8 quantize --fallback auto` does exactly this (tools/q8_main.cpp).
  if (fallback == "auto") o = q8::with_auto_fallback(model, calib.tensors, o, min_sqnr);
  return q8::quantize(model, calib.tensors, o);
}

// ---- Analysis ---------------------------------------------------------------------------------

py::dict layer_dict(const q8::LayerAnalysis& a) {
  py::dict d;  // the keys of Analysis::to_json(), then output_readers
  d["name"] = a.name;
  d["op"] = a.op;
  d["output_shape"] = a.output_shape;
  d["macs"] = a.macs;
  d["int8"] = a.int8;
  d["fp32_fallback"] = a.fp32_fallback;
  d["sqnr_db"] = a.sqnr_db;
  d["sqnr_cumulative_db"] = a.sqnr_cumulative_db;
  d["output_sqnr_db"] = a.output_sqnr_db;
  d["clipped"] = a.clipped;
  d["outlier_ratio"] = a.outlier_ratio;
  d["weight_range_ratio"] = a.weight_range_ratio;
  d["int8_ms"] = a.int8_ms;
  d["fp32_ms"] = a.fp32_ms;
  d["fp32_conversions_ms"] = a.fp32_conversions_ms;
  d["timed"] = a.timed;
  d["advice"] = a.advice;
  d["output_readers"] = a.output_readers;
  return d;
}

py::dict summary_dict(const q8::AnalysisSummary& s) {
  py::dict d;
  d["sqnr_db"] = s.sqnr_db;
  d["int8_ms"] = s.int8_ms;
  d["fp32_ms"] = s.fp32_ms;
  d["conversions_ms"] = s.conversions_ms;
  d["worst"] = s.worst;
  d["samples"] = s.samples;
  d["method"] = s.method;
  d["per_channel"] = s.per_channel;
  d["isa"] = s.isa;
  d["threads"] = s.threads;
  return d;
}

q8::Analysis analyze(const q8::Model& model, const CalibrationSet& calib, py::handle inputs, const std::string& method,
                     py::object percentile, bool per_channel, const std::vector<std::string>& exclude, int threads,
                     int iterations, double min_sqnr, int64_t max_samples) {
  require_loaded(model);
  if (model.is_quantized())
    throw q8::Error(model.source() + ": the model is already quantized; analyze needs the fp32 model");
  std::vector<q8::Tensor> in;
  if (!inputs.is_none())
    for (const py::array& a : input_arrays(model, inputs)) in.push_back(to_tensor(a));
  if (!in.empty() && in.size() != model.inputs().size())
    throw q8::Error(model.source() + ": model takes " + std::to_string(model.inputs().size()) + " input(s), got " +
                    std::to_string(in.size()));
  if (iterations < 1) throw q8::Error("iterations must be >= 1, got " + std::to_string(iterations));
  if (max_samples < 1) throw q8::Error("max_samples must be >= 1, got " + std::to_string(max_samples));
  q8::QuantizeOptions o = quantize_options(method, percentile, per_channel, exclude, threads, py::none());
  q8::AnalyzeOptions ao;
  ao.iterations = iterations;
  ao.min_sqnr_db = min_sqnr;
  ao.max_samples = max_samples;
  py::gil_scoped_release nogil;
  return q8::analyze(model, calib.tensors, in, o, ao);
}

}  // namespace

PYBIND11_MODULE(_q8, m) {
  m.doc() = "q8's C++ core (the public q8::* API). Import q8, not this module.";
  m.attr("__version__") = Q8_VERSION;

  // q8.Error: a RuntimeError whose message is the library's one line, as `q8: error: ...` prints it.
  py::register_exception<q8::Error>(m, "Error", PyExc_RuntimeError).attr("__doc__") =
      "Every failure q8 reports: a bad file, an unsupported op, data that does not fit the model,\n"
      "a kernel path this CPU cannot run. str(e) is the one line the q8 program prints after\n"
      "'q8: error: ', naming the file, the node and its op where they are known.";

  py::class_<TensorInfo>(m, "TensorInfo", "A model input or output: its name, shape and dtype.")
      .def_readonly("name", &TensorInfo::name, "The tensor's name in the graph.")
      .def_property_readonly(
          "shape", [](const TensorInfo& t) { return shape_tuple(t.shape); },
          "The shape, a tuple; None for a dimension fixed only at run time (a dynamic batch).")
      .def_property_readonly(
          "dtype", [](const TensorInfo&) { return py::dtype::of<float>(); },
          "numpy.float32: tensors cross q8's API as float32.")
      .def("__eq__", [](const TensorInfo& a, const TensorInfo& b) { return a.name == b.name && a.shape == b.shape; })
      .def("__repr__", [](const TensorInfo& t) {
        return "TensorInfo(name='" + t.name + "', shape=" + py::repr(shape_tuple(t.shape)).cast<std::string>() +
               ", dtype=float32)";
      });

  py::class_<q8::Model>(m, "Model",
                        "A loaded, validated and optimised ONNX model (fp32 or quantized). Immutable;\n"
                        "one Model may serve several Sessions on several threads.")
      .def_static("load", &load_model, py::arg("path"),
                  "Model.load(path) -> Model\n\n"
                  "Reads and validates an ONNX file (fp32, or QDQ / QOperator int8). Raises q8.Error\n"
                  "naming the file, node and problem.")
      .def_static(
          "load_from_memory",
          [](py::buffer data, const std::string& name) {
            py::buffer_info b = data.request();
            const size_t bytes = static_cast<size_t>(b.size * b.itemsize);
            py::gil_scoped_release nogil;
            return q8::Model::load_from_memory(b.ptr, bytes, name);
          },
          py::arg("data"), py::arg("name") = "<memory>",
          "Model.load_from_memory(data, name='<memory>') -> Model\n\n"
          "Same as load(), from the bytes of an ONNX file; `name` stands in for the file name in errors.")
      .def(
          "save",
          [](const q8::Model& model, py::handle path) {
            require_loaded(model);
            const std::string p = path_arg(path);
            py::gil_scoped_release nogil;
            model.save(p);
          },
          py::arg("path"),
          "save(path)\n\n"
          "Writes the model as ONNX (a quantized one as QDQ, which ONNX Runtime also runs): the same\n"
          "bytes `q8 quantize` writes. The file is written whole or not at all.")
      .def_property_readonly(
          "inputs",
          [](const q8::Model& model) {
            require_loaded(model);
            return infos(model.inputs());
          },
          "The graph's inputs, in order: a list of TensorInfo (name, shape, dtype).")
      .def_property_readonly(
          "outputs",
          [](const q8::Model& model) {
            require_loaded(model);
            return infos(model.outputs());
          },
          "The graph's outputs, in order: a list of TensorInfo (name, shape, dtype).")
      .def_property_readonly(
          "is_quantized",
          [](const q8::Model& model) {
            require_loaded(model);
            return model.is_quantized();
          },
          "True if (some of) the model's nodes run in int8.")
      .def_property_readonly(
          "source",
          [](const q8::Model& model) {
            require_loaded(model);
            return model.source();
          },
          "The file (or name) the model was loaded from, as errors name it.")
      .def("info", &info_dict, py::arg("batch") = 1,
           "info(batch=1) -> dict\n\n"
           "What `q8 info` prints, as data: {'model', 'quantized', 'batch', 'inputs', 'outputs',\n"
           "'nodes': [{'name', 'op', 'input_shapes', 'output_shapes', 'params', 'macs', 'kernel', 'int8',\n"
           "'fp32_fallback', 'fp32_reason'}], 'total_macs', 'cpu', 'isa'}. Shapes are for `batch` items\n"
           "where the batch is dynamic; 'macs' are per batch item; 'kernel' is the kernel the node runs\n"
           "on this CPU. A compute node of a quantized model that stayed fp32 has 'fp32_fallback' True\n"
           "and, where the quantizer knows why, the reason in 'fp32_reason'.")
      .def("__repr__", [](const q8::Model& model) {
        if (!model.impl()) return std::string("<q8.Model (empty)>");
        std::string ins;
        for (const auto& t : model.inputs()) ins += (ins.empty() ? "" : ", ") + t.name + " " + shape_text(t.shape);
        return "<q8.Model '" + model.source() + "' " + (model.is_quantized() ? "int8" : "fp32") + ", inputs: " + ins +
               ">";
      });

  py::class_<PySession>(
      m, "Session",
      "Session(model, threads=1, isa=None, extra_outputs=())\n\n"
      "Runs a model. Construction compiles it for this CPU once (kernel choice, packed\n"
      "weights, one memory arena); run() reuses that work, re-planning only when input\n"
      "shapes change. `model` is a Model or a path to an ONNX file; `isa` forces a kernel\n"
      "path ('scalar', 'avx2', 'avxvnni', 'avx512', 'avx512vnni', 'amx', 'neon', 'neondot', 'neoni8mm');\n"
      "`extra_outputs` names intermediate tensors to return too (dequantized to float32).\n\n"
      "Thread safety: one Session may be called from several threads; calls are serialised\n"
      "by a lock inside it, and the GIL is released while a call waits and runs, so other\n"
      "Python threads keep going. For parallel runs, use one Session per thread (they may\n"
      "share one Model) or threads=N inside one.")
      .def(py::init([](py::handle model, int threads, py::object isa, std::vector<std::string> extra) {
             return make_session(model, threads, isa.is_none() ? std::string() : isa.cast<std::string>(), extra);
           }),
           py::arg("model"), py::arg("threads") = 1, py::arg("isa") = py::none(),
           py::arg("extra_outputs") = std::vector<std::string>())
      .def("run", &session_run, py::arg("inputs"),
           "run(inputs) -> dict[str, numpy.ndarray]\n\n"
           "Runs the model and returns {output name: float32 array}. `inputs` is a dict {input name:\n"
           "array}, a list or tuple of arrays in the model's input order, or one array for a one-input\n"
           "model. Arrays are taken as the q8 program takes .npy files: float32 (float64, int64, int32,\n"
           "uint8 and int8 are converted), C order. A C-contiguous float32 array is read in place\n"
           "(no copy is made of it); it must not change while the call runs. Raises q8.Error for a wrong dtype, "
           "layout,\n"
           "shape or count, with the q8 program's message.")
      .def_property_readonly(
          "inputs", [](const PySession& s) { return infos(s.model.inputs()); }, "The model's inputs (TensorInfo).")
      .def_property_readonly(
          "outputs", [](const PySession& s) { return infos(s.model.outputs()); }, "The model's outputs (TensorInfo).")
      .def_property_readonly(
          "output_names", [](const PySession& s) { return s.output_names; },
          "The keys of run()'s result, in order: the model's outputs, then extra_outputs.")
      .def_property_readonly(
          "model", [](const PySession& s) { return s.model; }, "The Model this session runs.")
      .def_property_readonly(
          "threads", [](const PySession& s) { return s.session->options().threads; }, "Worker threads.")
      .def_property_readonly(
          "isa",
          [](const PySession& s) {
            return s.session->options().isa.empty() ? q8::active_isa() : s.session->options().isa;
          },
          "The kernel path this session runs on.")
      .def("profile", &session_profile, py::arg("inputs"), py::arg("iterations") = 20,
           "profile(inputs, iterations=20) -> list[dict]\n\n"
           "Runs `iterations` times after one warm-up, timing every step of the plan; returns each\n"
           "step's median as {'node', 'op', 'ms'}, in plan order (what `q8 bench --per-layer` prints).\n"
           "Layout changes and conversions appear as their own steps with op ''.")
      .def("_input_addresses", &input_addresses, py::arg("inputs"))
      .def("_time_cpp_runs", &time_cpp_runs, py::arg("inputs"), py::arg("iterations"));

  py::class_<CalibrationSet>(m, "_CalibrationSet")
      .def_readonly("samples", &CalibrationSet::samples)
      .def("__len__", [](const CalibrationSet& c) { return c.samples; });

  py::class_<CalibrationBuilder>(m, "_CalibrationBuilder")
      .def(py::init<const q8::Model&, int64_t>(), py::arg("model"), py::arg("max_samples") = 0)
      .def("add", &CalibrationBuilder::add, py::arg("batch"))
      .def_property_readonly("samples", &CalibrationBuilder::samples)
      .def("finish", &CalibrationBuilder::finish);

  m.def("_load_calibration", &load_calibration, py::arg("model"), py::arg("path"), py::arg("max_samples") = 0,
        py::arg("size") = std::vector<int64_t>(), py::arg("mean") = std::vector<float>(),
        py::arg("std") = std::vector<float>());
  m.def("_quantize", &quantize, py::arg("model"), py::arg("calib"), py::arg("method"), py::arg("percentile"),
        py::arg("per_channel"), py::arg("exclude"), py::arg("threads"), py::arg("fallback"), py::arg("min_sqnr"),
        py::arg("progress"));
  m.def("_analyze", &analyze, py::arg("model"), py::arg("calib"), py::arg("inputs"), py::arg("method"),
        py::arg("percentile"), py::arg("per_channel"), py::arg("exclude"), py::arg("threads"), py::arg("iterations"),
        py::arg("min_sqnr"), py::arg("max_samples"));

  py::class_<q8::Analysis>(m, "Analysis",
                           "What q8.analyze() found: per-layer records, a summary, and the text, JSON and HTML\n"
                           "that `q8 analyze` prints and writes.")
      .def_property_readonly(
          "layers",
          [](const q8::Analysis& a) {
            py::list l;
            for (const auto& r : a.layers) l.append(layer_dict(r));
            return l;
          },
          "One dict per quantized node, in graph order: name, op, output_shape, macs, int8, sqnr_db\n"
          "(own), sqnr_cumulative_db, output_sqnr_db, clipped, outlier_ratio, weight_range_ratio,\n"
          "int8_ms, fp32_ms, fp32_conversions_ms (what keeping it fp32 would add in conversions, which\n"
          "\"keep fp32\" counts), timed (both plans run the node as a step of its own), advice,\n"
          "output_readers.")
      .def_property_readonly(
          "summary", [](const q8::Analysis& a) { return summary_dict(a.summary); },
          "A dict: sqnr_db (end to end), int8_ms, fp32_ms, conversions_ms, worst, samples, method,\n"
          "per_channel, isa, threads.")
      .def_property_readonly("text", &q8::Analysis::to_text, "The table and summary `q8 analyze` prints.")
      .def_property_readonly("json", &q8::Analysis::to_json, "The JSON `q8 analyze --json` prints (one line).")
      .def("to_html", &q8::Analysis::to_html, "The self-contained HTML page `q8 analyze --report` writes.")
      .def(
          "save_html",
          [](const q8::Analysis& a, py::handle path) {
            const std::string p = path_arg(path);
            const std::string html = a.to_html();
            py::gil_scoped_release nogil;
            q8::write_file_atomic(p, html);
          },
          py::arg("path"), "save_html(path)\n\nWrites to_html() to `path`, whole or not at all.")
      .def("fallback_nodes", &q8::fallback_nodes, py::arg("min_sqnr") = 20.0,
           "fallback_nodes(min_sqnr=20.0) -> list[str]\n\n"
           "The nodes `q8 quantize --fallback auto --min-sqnr` keeps in fp32 after this analysis.")
      .def("__str__", &q8::Analysis::to_text)
      .def("__repr__", [](const q8::Analysis& a) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "<q8.Analysis: %zu layers, end-to-end SQNR %.2f dB, int8 %.3f ms, fp32 %.3f ms>",
                      a.layers.size(), a.summary.sqnr_db, a.summary.int8_ms, a.summary.fp32_ms);
        return std::string(buf);
      });

  m.def("active_isa", &q8::active_isa, "The kernel path chosen on this CPU (after Q8_ISA).");
  m.def("supported_isas", &q8::supported_isas, "Every kernel path this CPU and build can run, best first.");
  m.def("cpu_description", &q8::cpu_description, "The CPU as cpuinfo reports it, with the SIMD features q8 uses.");
}
