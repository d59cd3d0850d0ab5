// Robustness and security: ONNX external data (the good case and every escape
// attempt), the validation limits hostile files run into, and the replay of the fuzzers' saved
// regressions (tests/fuzz/regressions/) through the ordinary, non-fuzzer code.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "io/npy.h"
#include "onnx.pb.h"
#include "onnx/onnx_importer.h"
#include "q8/q8.h"
#include "tests/onnx_model_builder.h"

namespace {

const std::string kSrc = Q8_SOURCE_DIR;

#define EXPECT_HAS(haystack, needle)                                                                \
  do {                                                                                              \
    const std::string h_ = (haystack);                                                              \
    EXPECT_NE(h_.find(needle), std::string::npos) << "message: " << h_ << "\nwanted: " << (needle); \
  } while (0)

// ---- the shared ModelProto builder; nodes without a name are named after their op -----------

struct Builder : q8test::OnnxModelBuilder {
  using OnnxModelBuilder::OnnxModelBuilder;
  ::onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& ins,
                          const std::vector<std::string>& outs, const std::string& name = "") {
    return OnnxModelBuilder::node(op, ins, outs, name.empty() ? op : name);
  }
};
using q8test::set_float;
using q8test::set_int;
using q8test::set_ints;

// The error of loading `bytes` through the public API (import, passes, shape check), or "".
std::string load_error(const std::string& bytes) {
  try {
    q8::Model::load_from_memory(bytes.data(), bytes.size(), "m.onnx");
  } catch (const q8::Error& e) {
    const std::string w = e.what();
    EXPECT_EQ(w.find('\n'), std::string::npos) << "multi-line error: " << w;
    return w;
  }
  return "";
}

// Loads, then runs one zero input of the model's declared shape (dynamic dims = 1); returns the
// error or "".
std::string load_and_run_error(const std::string& bytes) {
  try {
    q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "m.onnx");
    std::vector<q8::Tensor> in;
    for (const auto& i : m.inputs()) {
      std::vector<int64_t> s;
      for (int64_t d : i.shape) s.push_back(d < 0 ? 1 : d);
      in.emplace_back(s);
    }
    q8::Session session(m);
    session.run(in);
  } catch (const q8::Error& e) {
    const std::string w = e.what();
    EXPECT_EQ(w.find('\n'), std::string::npos) << "multi-line error: " << w;
    return w;
  }
  return "";
}

// ---- external data -------------------------------------------------------------------------

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/q8_robust_XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string float_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// y = x + w, w [4] stored as external data at `location` (offset/length when >= 0).
Builder external_model(const std::string& location, int64_t offset = -1, int64_t length = -1) {
  Builder b;
  b.input("x", {1, 4}).output("y");
  auto& t = b.init_f("w", {4}, {});
  t.clear_raw_data();
  t.set_data_location(::onnx::TensorProto_DataLocation_EXTERNAL);
  auto add = [&](const std::string& k, const std::string& v) {
    auto* kv = t.add_external_data();
    kv->set_key(k);
    kv->set_value(v);
  };
  add("location", location);
  if (offset >= 0) add("offset", std::to_string(offset));
  if (length >= 0) add("length", std::to_string(length));
  b.node("Add", {"x", "w"}, {"y"}, "add");
  return b;
}

const std::vector<float> kW = {1.5f, -2.f, 3.25f, 100.f};

// Writes the model into `dir` and loads it with Model::load; returns the error or "".
std::string load_file_error(const std::string& dir, const Builder& b, q8::Model* out = nullptr) {
  write_file(dir + "/model.onnx", b.bytes());
  try {
    q8::Model m = q8::Model::load(dir + "/model.onnx");
    if (out) *out = m;
  } catch (const q8::Error& e) {
    const std::string w = e.what();
    EXPECT_EQ(w.find('\n'), std::string::npos) << "multi-line error: " << w;
    return w;
  }
  return "";
}

void expect_runs_with_w(const q8::Model& m) {
  q8::Session s(m);
  q8::Tensor x({1, 4}, {1.f, 2.f, 3.f, 4.f});
  const q8::Tensor y = s.run({x})[0];
  ASSERT_EQ(y.numel(), 4);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(y.data()[i], x.data()[i] + kW[i]);
}

TEST(ExternalData, LoadsFromAFileBesideTheModel) {
  TempDir d;
  write_file(d.path + "/weights.bin", float_bytes(kW));
  q8::Model m;
  ASSERT_EQ(load_file_error(d.path, external_model("weights.bin"), &m), "");
  expect_runs_with_w(m);
}

TEST(ExternalData, OffsetLengthAndSubfolders) {
  TempDir d;
  ASSERT_EQ(mkdir((d.path + "/data").c_str(), 0755), 0);
  // Several tensors share one file in ONNX's layout: the data sits at an offset, with a length.
  write_file(d.path + "/data/all.bin", "0123456789abcdef" + float_bytes(kW) + "trailing");
  q8::Model m;
  ASSERT_EQ(load_file_error(d.path, external_model("data/all.bin", 16, 16), &m), "");
  expect_runs_with_w(m);
  ASSERT_EQ(load_file_error(d.path, external_model("./data//all.bin", 16, 16), &m), "");
  expect_runs_with_w(m);
  // The model's folder given relatively works too.
  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof cwd), nullptr);
  ASSERT_EQ(chdir(d.path.c_str()), 0);
  std::string err;
  try {
    q8::Model::load("model.onnx");
  } catch (const q8::Error& e) {
    err = e.what();
  }
  ASSERT_EQ(chdir(cwd), 0);
  EXPECT_EQ(err, "");
}

TEST(ExternalData, EscapesAreRefusedNamingTheTensor) {
  TempDir outer;
  const std::string d = outer.path + "/model";
  ASSERT_EQ(mkdir(d.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((d + "/sub").c_str(), 0755), 0);
  write_file(outer.path + "/outside.bin", float_bytes(kW));  // a real file outside the folder
  write_file(d + "/inside.bin", float_bytes(kW));
  ASSERT_EQ(symlink((outer.path + "/outside.bin").c_str(), (d + "/link.bin").c_str()), 0);
  ASSERT_EQ(symlink("../outside.bin", (d + "/rel_link.bin").c_str()), 0);
  ASSERT_EQ(symlink(outer.path.c_str(), (d + "/up").c_str()), 0);
  ASSERT_EQ(symlink("inside.bin", (d + "/inner_link.bin").c_str()), 0);

  struct Case {
    std::string location, want;
  };
  const std::vector<Case> cases = {
      {"../outside.bin", "leaves the model's folder"},
      {"sub/../../outside.bin", "leaves the model's folder"},
      {"..", "leaves the model's folder"},
      {"/etc/passwd", "is an absolute path"},
      {outer.path + "/outside.bin", "is an absolute path"},
      {"link.bin", "symbolic link"},
      {"rel_link.bin", "symbolic link"},
      {"up/outside.bin", "symbolic link"},
      {"inner_link.bin", "symbolic link"},  // links are refused even when they stay inside
      {"sub", "is not a regular file"},
      {"missing.bin", "cannot open file"},
      {"", "has no location"},
      {".", "names no file"},
      {std::string("inside.bin\0/../../outside.bin", 28), "NUL byte"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.location);
    const std::string e = load_file_error(d, external_model(c.location));
    EXPECT_HAS(e, "initializer 'w': ");
    EXPECT_HAS(e, c.want);
    EXPECT_HAS(e, d + "/model.onnx: ");
  }
  // The file inside the folder is fine.
  EXPECT_EQ(load_file_error(d, external_model("inside.bin")), "");
}

TEST(ExternalData, SpecialFilesAndSizeMismatches) {
  TempDir t;
  const std::string& d = t.path;
  write_file(d + "/w.bin", float_bytes(kW));
  // A FIFO must be refused, not block the import.
  ASSERT_EQ(mkfifo((d + "/fifo").c_str(), 0644), 0);
  EXPECT_HAS(load_file_error(d, external_model("fifo")), "is not a regular file");
  EXPECT_HAS(load_file_error(d, external_model("w.bin", 0, 12)), "length 12 does not match the 16 bytes");
  EXPECT_HAS(load_file_error(d, external_model("w.bin", 4)), "holds 16 bytes, too few for 16 bytes at offset 4");
  EXPECT_HAS(load_file_error(d, external_model("w.bin", 8, 16)), "too few for 16 bytes at offset 8");
  EXPECT_HAS(load_file_error(d, external_model("w.bin", 1000, 16)), "too few");
  write_file(d + "/long.bin", float_bytes(kW) + "xx");
  EXPECT_HAS(load_file_error(d, external_model("long.bin")), "has 18 bytes after offset 0, expected 16");
  {
    Builder b = external_model("w.bin");
    b.g().mutable_initializer(0)->mutable_external_data(0)->set_value("w.bin");
    auto* kv = b.g().mutable_initializer(0)->add_external_data();
    kv->set_key("offset");
    kv->set_value("-4");
    EXPECT_HAS(load_file_error(d, b), "offset '-4' is not a byte count");
    kv->set_value("99999999999999999999999");
    EXPECT_HAS(load_file_error(d, b), "is not a byte count");
  }
  {  // external data and data in the file at once
    Builder b = external_model("w.bin");
    b.g().mutable_initializer(0)->set_raw_data(float_bytes(kW));
    EXPECT_HAS(load_file_error(d, b), "initializer 'w': holds both external data and data in the file");
  }
  {  // external_data entries without data_location = EXTERNAL
    Builder b = external_model("w.bin");
    b.g().mutable_initializer(0)->set_data_location(::onnx::TensorProto_DataLocation_DEFAULT);
    EXPECT_HAS(load_file_error(d, b), "data_location is not EXTERNAL");
  }
  {  // the total cap a user can raise
    write_file(d + "/model.onnx", external_model("w.bin").bytes());
    q8::onnx::ImportLimits lim;
    lim.max_external_bytes = 8;
    std::string e;
    try {
      q8::onnx::import_file(d + "/model.onnx", lim);
    } catch (const q8::Error& x) {
      e = x.what();
    }
    EXPECT_HAS(e, "exceeds the limit of 8 bytes");
    lim.max_external_bytes = 16;
    EXPECT_NO_THROW(q8::onnx::import_file(d + "/model.onnx", lim));
  }
}

// A hard link cannot be told from the file it names, which may lie outside the model's folder
// (a secret, a device-owned file): only files with one link are read.
TEST(ExternalData, HardLinksAreRefused) {
  TempDir outside, t;
  write_file(outside.path + "/secret.bin", float_bytes(kW));
  ASSERT_EQ(::link((outside.path + "/secret.bin").c_str(), (t.path + "/w.bin").c_str()), 0);
  EXPECT_HAS(load_file_error(t.path, external_model("w.bin")), "external data location 'w.bin' has 2 hard links");
  // The same bytes in a file of its own load.
  ASSERT_EQ(::unlink((outside.path + "/secret.bin").c_str()), 0);
  q8::Model m;
  EXPECT_EQ(load_file_error(t.path, external_model("w.bin"), &m), "");
  expect_runs_with_w(m);
}

TEST(ExternalData, RefusedForAModelInMemory) {
  const std::string bytes = external_model("weights.bin").bytes();
  EXPECT_HAS(load_error(bytes),
             "m.onnx: initializer 'w': external data is not supported for a model loaded from memory");
}

// ---- validation limits ---------------------------------------------------------------------

TEST(Validation, InputDimsWhoseProductOverflows) {
  Builder b;
  const int64_t big = int64_t{1} << 40;
  b.input("x", {big, big, big, big}).output("y");
  b.node("Relu", {"x"}, {"y"});
  const std::string e = load_and_run_error(b.bytes());
  EXPECT_NE(e, "");
}

TEST(Validation, InputRankCap) {
  Builder b;
  b.input("x", std::vector<int64_t>(9, 1)).output("y");
  b.node("Relu", {"x"}, {"y"});
  EXPECT_HAS(load_error(b.bytes()), "rank 9 exceeds the limit of 8");
}

TEST(Validation, InitializerDataDoesNotMatchDims) {
  Builder b;
  b.input("x", {1, 4}).output("y");
  b.init_f("w", {5}, {1, 2, 3, 4});
  b.node("Add", {"x", "w"}, {"y"});
  EXPECT_HAS(load_error(b.bytes()), "initializer 'w': raw_data holds 16 bytes, expected 20");
}

TEST(Validation, ConvAttributesOutOfRange) {
  auto conv = [](std::function<void(::onnx::NodeProto&)> edit) {
    Builder b;
    b.input("x", {1, 2, 8, 8}).output("y");
    b.init_f("w", {4, 2, 3, 3}, std::vector<float>(72, 0.5f));
    auto& n = b.node("Conv", {"x", "w"}, {"y"}, "conv");
    edit(n);
    return load_and_run_error(b.bytes());
  };
  EXPECT_EQ(conv([](::onnx::NodeProto&) {}), "");
  EXPECT_NE(conv([](::onnx::NodeProto& n) { set_ints(n, "strides", {0, 1}); }), "");
  EXPECT_NE(conv([](::onnx::NodeProto& n) { set_ints(n, "strides", {-1, 1}); }), "");
  EXPECT_NE(conv([](::onnx::NodeProto& n) { set_ints(n, "pads", {-1, 0, 0, 0}); }), "");
  EXPECT_NE(conv([](::onnx::NodeProto& n) { set_ints(n, "dilations", {0, 1}); }), "");
  EXPECT_NE(conv([](::onnx::NodeProto& n) { set_ints(n, "kernel_shape", {5, 5}); }), "");
  EXPECT_NE(conv([](::onnx::NodeProto& n) { set_ints(n, "strides", {1, 1, 1}); }), "");
  EXPECT_NE(conv([](::onnx::NodeProto& n) { set_int(n, "group", 0); }), "");
  EXPECT_NE(conv([](::onnx::NodeProto& n) { set_int(n, "group", 3); }), "");
  EXPECT_NE(conv([](::onnx::NodeProto& n) { set_int(n, "group", -2); }), "");
  EXPECT_NE(conv([](::onnx::NodeProto& n) { set_float(n, "group", 1.f); }), "");  // wrong type
  EXPECT_NE(conv([](::onnx::NodeProto& n) { set_ints(n, "pads", {int64_t{1} << 40, 0, 0, 0}); }), "");
  // Pads that keep every extent legal but make the output enormous from a tiny input must be
  // refused (bounded memory), not attempted.
  EXPECT_NE(conv([](::onnx::NodeProto& n) { set_ints(n, "pads", {1 << 19, 1 << 19, 1 << 19, 1 << 19}); }), "");
}

TEST(Validation, HugeDeclaredShapesAllocateNothingUntilRun) {
  // Loading and planning work from shapes only: a model declaring a 2^51-element input loads
  // (the caller would have to supply that input), and a huge intermediate from a tiny input is
  // refused by the working-memory cap instead of being allocated.
  Builder b;
  b.input("x", {int64_t{1} << 31, 1 << 20}).output("y");
  b.node("Relu", {"x"}, {"y"});
  const std::string bytes = b.bytes();
  EXPECT_NO_THROW({
    q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "m.onnx");
    q8::Session s(m);
  });
  Builder c;
  c.input("x", {1, 1, 2, 2}).output("y");
  c.init_f("w", {1, 1, 1, 1}, {1.f});
  set_ints(c.node("Conv", {"x", "w"}, {"y"}, "conv"), "pads", {60000, 60000, 60000, 60000});
  EXPECT_HAS(load_and_run_error(c.bytes()), "working-memory limit");
}

TEST(Validation, SessionRefusesWrongInputs) {
  q8::Model m = q8::Model::load(kSrc + "/models/fashion_cnn.onnx");
  q8::Session s(m);
  auto err = [&](const std::vector<q8::Tensor>& in) {
    try {
      s.run(in);
    } catch (const q8::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(err({}), "");
  EXPECT_NE(err({q8::Tensor({1, 1, 28, 28}), q8::Tensor({1, 1, 28, 28})}), "");
  EXPECT_NE(err({q8::Tensor({1, 28, 28})}), "");
  EXPECT_NE(err({q8::Tensor({1, 3, 28, 28})}), "");
  EXPECT_NE(err({q8::Tensor({1, 1, 27, 28})}), "");
  EXPECT_NE(err({q8::Tensor(std::vector<int64_t>{})}), "");
  // And the session still works afterwards.
  EXPECT_EQ(err({q8::Tensor({2, 1, 28, 28})}), "");
  EXPECT_NE(err({q8::Tensor({0, 1, 28, 28})}), "");  // empty batches are refused, not run
}

// ---- fuzz regressions, replayed through the normal build ------------------------------------

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> r;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string n = e->d_name;
      if (n == "." || n == ".." || (n.size() > 3 && n.compare(n.size() - 3, 3, ".md") == 0)) continue;
      r.push_back(dir + "/" + n);
    }
    closedir(d);
  }
  return r;
}

std::string read_all(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(FuzzRegressions, OnnxInputsLoadOrAreRefused) {
  const auto files = files_in(kSrc + "/tests/fuzz/regressions/onnx");
  for (const std::string& f : files) {
    SCOPED_TRACE(f);
    const std::string bytes = read_all(f);
    try {
      q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), f);
      std::vector<q8::Tensor> in;
      int64_t total = 0;
      for (const auto& i : m.inputs()) {
        std::vector<int64_t> s;
        int64_t n = 1;
        for (int64_t d : i.shape) {
          s.push_back(d < 0 ? 1 : d);
          if (__builtin_mul_overflow(n, s.back(), &n)) n = INT64_MAX;
        }
        total = n > (1 << 20) ? -1 : total + n;
        if (total < 0) break;
        in.emplace_back(s);
      }
      if (total < 0) continue;
      q8::Session session(m);
      const auto out = session.run(in);
      EXPECT_EQ(out.size(), m.outputs().size());
      for (const q8::Tensor& t : out) {
        volatile float sink = 0;
        for (int64_t i = 0; i < t.numel(); ++i) sink = sink + t.data()[i];
      }
    } catch (const q8::Error&) {
    }
  }
}

TEST(FuzzRegressions, NpyInputsParseOrAreRefused) {
  for (const std::string& f : files_in(kSrc + "/tests/fuzz/regressions/npy")) {
    SCOPED_TRACE(f);
    const std::string bytes = read_all(f);
    try {
      q8::Tensor t = q8::parse_npy(bytes.data(), bytes.size(), f);
      int64_t n = 1;
      for (int64_t d : t.shape()) n *= d;
      EXPECT_EQ(n, t.numel());
    } catch (const q8::Error&) {
    }
  }
}

}  // namespace
