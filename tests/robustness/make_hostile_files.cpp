// Writes families of hostile files for tests/robustness/hostile_files_test.sh, and a manifest of
// what the q8 program must do with each. Every family is a generator over its parameters, not
// one hand-made file, so a fix at the mechanism is tested rather than a fix for one case.
//
//   make_hostile_files DIR
//
// DIR/manifest.tsv, one case a line, tab-separated:
//   KIND  PATH  EXIT  TEXT
// KIND says how the test runs it (info, run, bench, quantize, calib, paths, slow); EXIT is the
// exit code q8 must give and TEXT a piece of the one error line it must print ("-": none).
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <stb/stb_image_write.h>

#include "tests/onnx_model_builder.h"

namespace {

using q8test::OnnxModelBuilder;
using q8test::set_int;
using q8test::set_ints;

std::string g_dir;
std::ofstream g_manifest;

void write(const std::string& rel, const std::string& bytes) {
  std::ofstream f(g_dir + "/" + rel, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) {
    std::fprintf(stderr, "make_hostile_files: cannot write %s/%s\n", g_dir.c_str(), rel.c_str());
    std::exit(1);
  }
}

// PATH.input.npy beside a model: float32 values of the given shape, for `q8 run` and as
// calibration data.
void write_input(const std::string& model_rel, const std::vector<int64_t>& shape) {
  std::string dims;
  size_t n = 1;
  for (int64_t d : shape) dims += std::to_string(d) + ", ", n *= static_cast<size_t>(d);
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size() & 255) +
                      static_cast<char>(header.size() >> 8) + header;
  for (size_t i = 0; i < n; ++i) {
    const float v = static_cast<float>(static_cast<int>(i * 37 % 101) - 50) / 25.f;
    bytes.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  write(model_rel + ".input.npy", bytes);
}

void expect(const std::string& kind, const std::string& rel, int exit_code, const std::string& text) {
  g_manifest << kind << '\t' << rel << '\t' << exit_code << '\t' << (text.empty() ? "-" : text) << '\n';
}

// ---- Zero-sized outputs: a Gemm or MatMul with no output columns, a Conv with no channels -----

void empty_outputs() {
  struct Case {
    const char* name;
    const char* op;
    std::vector<int64_t> w;
    bool trans_b;
  };
  const Case cases[] = {
      {"empty_matmul_cols", "MatMul", {8, 0}, false},
      {"empty_gemm_cols", "Gemm", {8, 0}, false},
      {"empty_gemm_transb_cols", "Gemm", {0, 8}, true},
      {"empty_conv_channels", "Conv", {0, 2, 3, 3}, false},
  };
  for (const Case& c : cases) {
    OnnxModelBuilder b;
    const bool conv = std::strcmp(c.op, "Conv") == 0;
    b.input("x", conv ? std::vector<int64_t>{1, 2, 8, 8} : std::vector<int64_t>{1, 8}).output("y");
    b.init_f("w", c.w, {});
    auto& n = b.node(c.op, {"x", "w"}, {"y"}, c.name);
    if (c.trans_b) set_int(n, "transB", 1);
    const std::string rel = std::string("models/") + c.name + ".onnx";
    write(rel, b.bytes());
    write_input(rel, conv ? std::vector<int64_t>{1, 2, 8, 8} : std::vector<int64_t>{1, 8});
    for (const char* kind : {"info", "run", "bench", "quantize"})
      expect(kind, rel, 1, "empty tensors are not supported");
  }
}

// ---- Pools whose windows, pads and strides dwarf the input ------------------------------------

// x [1,3,8,8] -> (QuantizeLinear -> DequantizeLinear ->) POOL -> (QuantizeLinear ->
// DequantizeLinear ->) y: the int8 form runs the uint8 pool kernels.
std::string pool_model(const char* op, int64_t k, int64_t pad, int64_t stride, int64_t dilation, bool count_pad,
                       bool int8) {
  OnnxModelBuilder b(dilation > 1 ? 19 : 13);  // AveragePool has dilations from opset 19
  b.input("x", {1, 3, 8, 8}).output("y");
  std::string in = "x";
  if (int8) {
    b.init_f("s", {}, {0.05f});
    b.init_8bit("z", ::onnx::TensorProto_DataType_UINT8, {}, {static_cast<int8_t>(128)});
    b.node("QuantizeLinear", {"x", "s", "z"}, {"xq"}, "quant_x");
    b.node("DequantizeLinear", {"xq", "s", "z"}, {"xd"}, "dequant_x");
    in = "xd";
  }
  auto& n = b.node(op, {in}, {int8 ? "p" : "y"}, "pool");
  set_ints(n, "kernel_shape", {k, k});
  set_ints(n, "pads", {pad, pad, pad, pad});
  set_ints(n, "strides", {stride, stride});
  if (dilation > 1) set_ints(n, "dilations", {dilation, dilation});
  if (std::strcmp(op, "AveragePool") == 0) set_int(n, "count_include_pad", count_pad ? 1 : 0);
  if (int8) {
    b.node("QuantizeLinear", {"p", "s", "z"}, {"pq"}, "quant_p");
    b.node("DequantizeLinear", {"pq", "s", "z"}, {"y"}, "dequant_p");
  }
  return b.bytes();
}

void huge_pools() {
  const int64_t big = int64_t{1} << 20;
  struct Geometry {
    int64_t k, pad, stride, dilation;
  };
  // Each gives a handful of output pixels whose windows cover 2^40 taps, 64 of them inside.
  const Geometry geometries[] = {
      {big, big - 4, big, 1},  // the window straddles the input
      {big, big / 2, big / 2, 1},
      {big - 1, big - 1, big, 1},
      {3, big, big, 1},  // tiny window, every output pixel in the padding but one
      {big / 64, big / 2, big / 4, 3},
  };
  int i = 0;
  for (const Geometry& gm : geometries)
    for (const char* op : {"MaxPool", "AveragePool"})
      for (bool int8 : {false, true})
        for (bool count_pad : {false, true}) {
          if (std::strcmp(op, "MaxPool") == 0 && count_pad) continue;
          if (std::strcmp(op, "MaxPool") == 0 && gm.dilation > 1 && int8) continue;
          const std::string rel = "models/pool_" + std::to_string(i++) + "_" + op + (int8 ? "_int8" : "_f32") + ".onnx";
          write(rel, pool_model(op, gm.k, gm.pad, gm.stride, gm.dilation, count_pad, int8));
          write_input(rel, {1, 3, 8, 8});
          expect("pool", rel, 0, "");
        }
}

// ---- Small files that declare enormous intermediate tensors -------------------------------------
// Each was allowed gigabytes under a fixed 16 GiB cap; the working-memory limit now scales with
// what the model and its inputs hold, so each is refused before anything large is allocated.

void expansions() {
  const int64_t big = int64_t{1} << 13;
  {
    OnnxModelBuilder b;
    b.input("x", {1, 2, 8, 8}).output("y");
    b.init_i64("p", {8}, {0, 0, big, big, 0, 0, big, big});
    b.node("Pad", {"x", "p"}, {"y"}, "wide_pad");
    write("models/expand_pad.onnx", b.bytes());
  }
  {
    OnnxModelBuilder b;
    b.input("x", {1, 2, 8, 8}).output("y");
    auto& n = b.node("MaxPool", {"x"}, {"y"}, "padded_pool");
    set_ints(n, "kernel_shape", {1, 1});
    set_ints(n, "pads", {big, big, big, big});
    write("models/expand_pool.onnx", b.bytes());
  }
  {  // grouped conv: one pointer per output pixel and tap, 2^16 taps over 2^17 padded columns
    const int64_t k = int64_t{1} << 16;
    OnnxModelBuilder b;
    b.input("x", {1, 2, 8, 8}).output("y");
    b.init_f("w", {4, 1, 1, k}, std::vector<float>(static_cast<size_t>(4 * k), 0.5f));
    auto& n = b.node("Conv", {"x", "w"}, {"y"}, "wide_grouped_conv");
    set_int(n, "group", 2);
    set_ints(n, "pads", {0, k, 0, k});
    write("models/expand_grouped_conv.onnx", b.bytes());
  }
  for (const char* m : {"models/expand_pad.onnx", "models/expand_pool.onnx", "models/expand_grouped_conv.onnx"}) {
    write_input(m, {1, 2, 8, 8});
    expect("expand", m, 1, "working-memory limit");
  }
}

// ---- Names that would drive a terminal ----------------------------------------------------------

const char* const kEvilNames[] = {
    "line\nq8: error: forged",  // a second error line
    "\x1b[2Jcleared",           // clear screen
    "bell\x07\x08\x7f",         // BEL, backspace, DEL
    "c1\xc2\x9b"
    "31mred",  // CSI as a C1 control in UTF-8
    "raw\x9b"
    "31mred",           // CSI as a raw 8-bit byte (not UTF-8)
    "bad\xff\xfeutf8",  // not UTF-8 at all
};

void evil_names() {
  int i = 0;
  for (const char* evil : kEvilNames) {
    const std::string e = evil;
    {  // Loads and runs: names reach info's table, bench --per-layer and analyze.
      OnnxModelBuilder b;
      b.input("in_" + e, {1, 2, 4, 4}).output("out_" + e);
      b.init_f("w_" + e, {2, 2, 1, 1}, {1, 0, 0, 1});
      b.node("Conv", {"in_" + e, "w_" + e}, {"mid_" + e}, "conv_" + e);
      b.node("Relu", {"mid_" + e}, {"out_" + e}, "relu_" + e);
      const std::string rel = "models/names_ok_" + std::to_string(i) + ".onnx";
      write(rel, b.bytes());
      write_input(rel, {1, 2, 4, 4});
      expect("names", rel, 0, "");
    }
    {  // Refused after import (shape inference names the node).
      OnnxModelBuilder b;
      b.input("x", {1, 8}).output("y");
      b.init_f("w", {8, 0}, {});
      b.node("MatMul", {"x", "w"}, {"y"}, "matmul_" + e);
      const std::string rel = "models/names_err_" + std::to_string(i) + ".onnx";
      write(rel, b.bytes());
      write_input(rel, {1, 8});
      expect("info", rel, 1, "empty tensors are not supported");
      expect("run", rel, 1, "empty tensors are not supported");
    }
    {  // Refused at import (an unknown op).
      OnnxModelBuilder b;
      b.input("x", {1, 8}).output("y");
      b.node("Frobnicate_" + e, {"x"}, {"y"}, "node_" + e);
      const std::string rel = "models/names_import_" + std::to_string(i) + ".onnx";
      write(rel, b.bytes());
      expect("info", rel, 1, "Frobnicate");
    }
    ++i;
  }
}

// ---- Quantization scales whose products leave the float range ---------------------------------

// x -> Q/DQ(s_x) -> Conv(DQ(w, s_w)) -> Q/DQ(s_y) -> y, or the same around Add / AveragePool.
std::string qdq_model(const char* op, float s_x, float s_w, float s_y, const std::string& node_name) {
  OnnxModelBuilder b;
  b.input("x", {1, 2, 4, 4}).output("y");
  b.init_f("sx", {}, {s_x});
  b.init_f("sy", {}, {s_y});
  b.init_8bit("zx", ::onnx::TensorProto_DataType_UINT8, {}, {static_cast<int8_t>(128)});
  b.init_8bit("zy", ::onnx::TensorProto_DataType_UINT8, {}, {static_cast<int8_t>(128)});
  b.node("QuantizeLinear", {"x", "sx", "zx"}, {"xq"}, "quant_x");
  b.node("DequantizeLinear", {"xq", "sx", "zx"}, {"xd"}, "dequant_x");
  if (std::strcmp(op, "Conv") == 0) {
    b.init_8bit("wq", ::onnx::TensorProto_DataType_INT8, {2, 2, 1, 1}, {1, 0, 0, 1});
    b.init_f("sw", {}, {s_w});
    b.init_8bit("zw", ::onnx::TensorProto_DataType_INT8, {}, {0});
    b.node("DequantizeLinear", {"wq", "sw", "zw"}, {"wd"}, "dequant_w");
    b.node("Conv", {"xd", "wd"}, {"c"}, node_name);
  } else if (std::strcmp(op, "Add") == 0) {
    b.node("Add", {"xd", "xd"}, {"c"}, node_name);
  } else {
    auto& n = b.node("AveragePool", {"xd"}, {"c"}, node_name);
    set_ints(n, "kernel_shape", {2, 2});
  }
  b.node("QuantizeLinear", {"c", "sy", "zy"}, {"cq"}, "quant_c");
  b.node("DequantizeLinear", {"cq", "sy", "zy"}, {"y"}, "dequant_c");
  return b.bytes();
}

void overflowing_multipliers() {
  struct Scales {
    float x, w, y;
  };
  // Each is out of range both as s_x * s_w / s_y (Conv) and as s_x / s_y (Add, AveragePool).
  const Scales scales[] = {
      {1e20f, 1e20f, 1e-20f},                           // s_x * s_w / s_y = 1e60: infinity as a float
      {1e30f, 1.f, 1e-20f},   {1e-30f, 1e-20f, 1e20f},  // 1e-70: zero as a float
      {1e-20f, 1.f, 1e20f},                             // 1e-40: subnormal
      {1.f, 1.f, 1e-8f},                                // 1e8: every non-zero accumulator saturates
  };
  int i = 0;
  for (const Scales& s : scales)
    for (const char* op : {"Conv", "Add", "AveragePool"}) {
      const std::string node = std::string("scaled_") + op + "_" + std::to_string(i);
      const std::string rel = "models/multiplier_" + std::to_string(i++) + "_" + op + ".onnx";
      write(rel, qdq_model(op, s.x, s.w, s.y, node));
      write_input(rel, {1, 2, 4, 4});
      expect("run", rel, 1, "node '" + node + "'");
    }
}

// ---- Denormal weights: quantized as zeros, never an error about an internal node --------------

void denormal_weights() {
  OnnxModelBuilder b;
  b.input("x", {-1, 1, 28, 28}).output("y");
  std::vector<float> w(4 * 9, 1e-40f);
  w[0] = 0.f;
  b.init_f("w", {4, 1, 3, 3}, w);
  b.init_f("bias", {4}, {0.1f, 0.2f, 0.3f, 0.4f});
  b.node("Conv", {"x", "w", "bias"}, {"c"}, "tiny_conv");
  b.node("Relu", {"c"}, {"y"}, "relu");
  write("models/denormal_weights.onnx", b.bytes());
  write_input("models/denormal_weights.onnx", {4, 1, 28, 28});
  expect("quantize", "models/denormal_weights.onnx", 0, "");
}

// ---- A model with two outputs: `q8 run` writes both or neither ---------------------------------

void two_outputs() {
  OnnxModelBuilder b;
  b.input("x", {1, 8}).output("y1").output("y2");
  b.node("Relu", {"x"}, {"y1"}, "relu");
  b.node("Identity", {"x"}, {"y2"}, "copy");
  write("models/two_outputs.onnx", b.bytes());
  write_input("models/two_outputs.onnx", {1, 8});
  expect("paths", "models/two_outputs.onnx", 0, "");
}

// ---- An input too large to allocate: refused naming the model and the input -------------------

void huge_input() {
  OnnxModelBuilder b;
  b.input("x", {1, 1, 200000, 200000}).output("y");
  b.node("Relu", {"x"}, {"y"}, "relu");
  write("models/huge_input.onnx", b.bytes());
  expect("bench_memory", "models/huge_input.onnx", 1, "out of memory allocating the random input 'x'");
}

// ---- Long chains: load time must be linear in the node count ---------------------------------

void long_chains() {
  const int n = 100000;
  for (const char* op : {"Relu", "Identity"}) {
    OnnxModelBuilder b;
    b.input("t0", {1, 4}).output("t" + std::to_string(n));
    for (int i = 0; i < n; ++i)
      b.node(op, {"t" + std::to_string(i)}, {"t" + std::to_string(i + 1)}, "n" + std::to_string(i));
    const std::string rel = std::string("models/chain_100k_") + op + ".onnx";
    write(rel, b.bytes());
    expect("info", rel, 0, "");
  }
}

// ---- Calibration images that lie about their size, or are not images --------------------------

std::string le16(unsigned v) { return std::string{static_cast<char>(v & 255), static_cast<char>(v >> 8 & 255)}; }
std::string le32(unsigned v) { return le16(v & 0xffff) + le16(v >> 16); }
std::string be16(unsigned v) { return std::string{static_cast<char>(v >> 8 & 255), static_cast<char>(v & 255)}; }
std::string be32(unsigned v) { return be16(v >> 16) + be16(v & 0xffff); }

std::string bmp_header(int w, int h, int bpp) {
  const unsigned stride = (static_cast<unsigned>(w) * bpp + 31) / 32 * 4;
  return "BM" + le32(54 + stride * static_cast<unsigned>(h)) + le32(0) + le32(54) + le32(40) + le32(w) + le32(h) +
         le16(1) + le16(bpp) + le32(0) + le32(stride * h) + le32(2835) + le32(2835) + le32(0) + le32(0);
}

// A PNG signature and IHDR chunk (CRC not checked by the header reader), no image data.
std::string png_header(unsigned w, unsigned h) {
  return std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + "IHDR" + be32(w) + be32(h) +
         std::string("\x08\x00\x00\x00\x00", 5) + be32(0);
}

// SOI, a baseline SOF0 frame header of w x h (1 component), padded to `size` bytes.
std::string jpeg_header(unsigned w, unsigned h, size_t size) {
  std::string s("\xff\xd8", 2);
  s += std::string("\xff\xc0", 2) + be16(11) + '\x08' + be16(h) + be16(w) + '\x01' + std::string("\x01\x11\x00", 3);
  s.resize(std::max(size, s.size()), '\0');
  return s;
}

void to_string_writer(void* ctx, void* data, int size) {
  static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}

void image(const std::string& name, const std::string& file, const std::string& bytes, int exit_code,
           const std::string& text) {
  const std::string folder = "images/" + name;
  ::mkdir((g_dir + "/" + folder).c_str(), 0755);
  write(folder + "/" + file, bytes);
  expect("calib", folder, exit_code, text);
}

void lying_images() {
  for (int side : {23000, 30000}) {
    image("bmp_" + std::to_string(side), "a.bmp", bmp_header(side, side, 24), 1, "pixels, more than the limit");
    image("png_" + std::to_string(side), "a.png", png_header(side, side), 1, "pixels, more than the limit");
    image("jpeg_" + std::to_string(side), "a.jpg", jpeg_header(side, side, 333), 1, "pixels, more than the limit");
  }
  // Under the pixel cap, but more than the file can hold.
  image("bmp_no_pixels", "a.bmp", bmp_header(2000, 2000, 24), 1, "truncated BMP");
  image("bmp_short_pixels", "a.bmp", bmp_header(40, 40, 24) + std::string(100, '\x7f'), 1, "truncated BMP");
  image("png_no_data", "a.png", png_header(4000, 4000), 1, "cannot be encoded in");
  image("jpeg_no_data", "a.jpg", jpeg_header(4000, 4000, 333), 1, "cannot be encoded in");
  // Not PNG, JPEG or BMP, whatever the name says.
  image("tga_as_png", "a.png",
        std::string("\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00", 12) + le16(30000) + le16(30000) + "\x18\x00", 1,
        "not a PNG, JPEG or BMP image");
  image("psd_as_png", "a.png",
        "8BPS" + be16(1) + std::string(6, '\0') + be16(3) + be32(30000) + be32(30000) + be16(8) + be16(3) +
            std::string(14, '\0'),
        1, "not a PNG, JPEG or BMP image");
  image("pgm_as_png", "a.png", "P5\n1000 1000\n255\n", 1, "not a PNG, JPEG or BMP image");
  image("empty_png", "a.png", "", 1, "not a PNG, JPEG or BMP image");

  // Real images, written by stb: accepted whole, refused cut short.
  std::vector<unsigned char> px(28 * 28);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<unsigned char>(i * 7 % 251);
  std::string png, jpg, bmp;
  stbi_write_png_to_func(to_string_writer, &png, 28, 28, 1, px.data(), 28);
  stbi_write_jpg_to_func(to_string_writer, &jpg, 28, 28, 1, px.data(), 90);
  stbi_write_bmp_to_func(to_string_writer, &bmp, 28, 28, 1, px.data());
  image("good_png", "a.png", png, 0, "");
  image("good_jpeg", "a.jpg", jpg, 0, "");
  image("good_bmp", "a.bmp", bmp, 0, "");
  image("jpeg_named_png", "a.png", jpg, 0, "");
  image("cut_png", "a.png", png.substr(0, png.size() * 2 / 3), 1, "a.png");
  image("cut_jpeg", "a.jpg", jpg.substr(0, jpg.size() * 2 / 3), 1, "truncated JPEG");
  image("cut_bmp", "a.bmp", bmp.substr(0, bmp.size() - 10), 1, "truncated BMP");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_hostile_files DIR\n");
    return 2;
  }
  g_dir = argv[1];
  for (const char* sub : {"", "/models", "/images"}) ::mkdir((g_dir + sub).c_str(), 0755);
  g_manifest.open(g_dir + "/manifest.tsv");
  empty_outputs();
  huge_pools();
  expansions();
  evil_names();
  overflowing_multipliers();
  denormal_weights();
  two_outputs();
  huge_input();
  long_chains();
  lying_images();
  g_manifest.close();
  return g_manifest ? 0 : 1;
}
