// The mechanisms behind the program's reliability promises, tested one by one: printable names,
// JSON strings, the consumer index that keeps graph passes linear, image header checks, output
// files (device nodes, FIFOs, modes, several files all or nothing), quantization multipliers
// validated per node, and empty tensors refused in one place. tests/robustness/ drives the same
// through the q8 program with generated hostile files.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <stb/stb_image_write.h>

#include "io/file_io.h"
#include "io/image.h"
#include "ir/graph.h"
#include "q8/q8.h"
#include "tests/onnx_model_builder.h"

namespace {

using q8test::OnnxModelBuilder;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const q8::Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_HAS(haystack, needle)                                                                \
  do {                                                                                              \
    const std::string h_ = (haystack);                                                              \
    EXPECT_NE(h_.find(needle), std::string::npos) << "message: " << h_ << "\nwanted: " << (needle); \
  } while (0)

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/q8_reliability_XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// ---- printable names and JSON strings --------------------------------------------------------

TEST(Printable, EscapesEverythingATerminalActsOn) {
  EXPECT_EQ(q8::printable("conv1"), "conv1");
  EXPECT_EQ(q8::printable("a\nq8: error: forged"), "a\\x0aq8: error: forged");
  EXPECT_EQ(q8::printable("\x1b[2J"), "\\x1b[2J");
  EXPECT_EQ(q8::printable(std::string("\x07\x08\x7f\x00", 4)), "\\x07\\x08\\x7f\\x00");
  EXPECT_EQ(q8::printable("c1\xc2\x9b"
                          "31m"),
            "c1\\xc2\\x9b31m");                     // CSI as U+009B
  EXPECT_EQ(q8::printable("raw\x9b"), "raw\\x9b");  // CSI as a raw byte
  EXPECT_EQ(q8::printable("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(q8::printable("\xe0\x80\x80"), "\\xe0\\x80\\x80");  // overlong
  EXPECT_EQ(q8::printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
  // Well-formed UTF-8 past the C1 range stays as it is.
  EXPECT_EQ(q8::printable("caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80");
  EXPECT_EQ(q8::printable("abcdef", 3), "abc...");
  EXPECT_EQ(q8::printable("ab\xc3\xa9", 3), "ab\\xc3...");  // a sequence cut by the cap is escaped
}

TEST(Printable, EveryErrorIsOnePrintableLine) {
  const q8::Error e("m.onnx: node 'x\ny\x1b[31m' (Conv): bad");
  EXPECT_EQ(std::string(e.what()), "m.onnx: node 'x\\x0ay\\x1b[31m' (Conv): bad");
}

TEST(JsonEscape, ValidPrintableJson) {
  EXPECT_EQ(q8::json_escape("a\"b\\c"), "a\\\"b\\\\c");
  EXPECT_EQ(q8::json_escape("x\ny\x1b"), "x\\u000ay\\u001b");
  EXPECT_EQ(q8::json_escape("\x7f"), "\\u007f");
  EXPECT_EQ(q8::json_escape("\xc2\x9b"), "\\u009b");
  EXPECT_EQ(q8::json_escape("\xff"), "\\ufffd");
  EXPECT_EQ(q8::json_escape("caf\xc3\xa9"), "caf\xc3\xa9");
}

// ---- the consumer index -------------------------------------------------------------------------

TEST(ConsumerIndex, SoleReaderRedirectAndStaleEntries) {
  q8::ir::Graph g;
  for (const char* name : {"x", "a", "b", "c"}) {
    q8::ir::Value v;
    v.name = name;
    g.add_value(v);
  }
  g.inputs = {0};
  auto node = [&](q8::ir::Op op, std::vector<int> in, int out) {
    q8::ir::Node n;
    n.op = op;
    n.inputs = std::move(in);
    n.outputs = {out};
    g.nodes.push_back(n);
  };
  node(q8::ir::Op::Relu, {0}, 1);    // 0: a = relu(x)
  node(q8::ir::Op::Add, {1, 1}, 2);  // 1: b = a + a   (one reader, read twice)
  node(q8::ir::Op::Add, {0, 2}, 3);  // 2: c = x + b
  g.outputs = {3};
  q8::ir::ConsumerIndex index(g);
  EXPECT_EQ(index.sole_reader(g, 1), 1);
  EXPECT_EQ(index.sole_reader(g, 0), -1);  // two readers
  EXPECT_EQ(index.sole_reader(g, 3), -1);  // a graph output
  EXPECT_EQ(index.readers(g, 0), (std::vector<int>{0, 2}));
  const std::vector<bool> dead{true, false, false};
  EXPECT_EQ(index.sole_reader(g, 0, &dead), 2);
  // Everything reading b now reads a; node 1 then reads nothing of b.
  index.redirect(g, 2, 1);
  EXPECT_EQ(g.nodes[2].inputs, (std::vector<int>{0, 1}));
  EXPECT_EQ(index.readers(g, 1), (std::vector<int>{1, 2}));
  EXPECT_TRUE(index.readers(g, 2).empty());
  index.redirect(g, 3, 2);  // the graph output moves too
  EXPECT_EQ(g.outputs, (std::vector<int>{2}));
  // A node rewired by hand and recorded.
  g.nodes[1].inputs = {0, 0};
  index.add(g, 1);
  EXPECT_EQ(index.readers(g, 0), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(index.readers(g, 1), (std::vector<int>{2}));
}

// ---- images -------------------------------------------------------------------------------------

void append(void* ctx, void* data, int size) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), size); }

std::vector<unsigned char> gradient(int w, int h, int c) {
  std::vector<unsigned char> px(static_cast<size_t>(w * h * c));
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<unsigned char>(i * 13 % 256);
  return px;
}

TEST(Images, RealImagesDecodeToTheirPixels) {
  const auto px = gradient(9, 7, 3);
  std::string png, bmp, jpg;
  stbi_write_png_to_func(append, &png, 9, 7, 3, px.data(), 27);
  stbi_write_bmp_to_func(append, &bmp, 9, 7, 3, px.data());
  stbi_write_jpg_to_func(append, &jpg, 9, 7, 3, px.data(), 95);
  for (const std::string* f : {&png, &bmp}) {
    const q8::Image img = q8::decode_image(*f, "a.png", 3);
    EXPECT_EQ(img.width, 9);
    EXPECT_EQ(img.height, 7);
    EXPECT_EQ(img.pixels, px);  // lossless formats: exactly the pixels written
  }
  const q8::Image j = q8::decode_image(jpg, "a.jpg", 1);  // to one channel
  EXPECT_EQ(j.width, 9);
  EXPECT_EQ(j.pixels.size(), 63u);
}

TEST(Images, HeadersThatLieAreRefusedBeforeDecoding) {
  const auto px = gradient(40, 30, 1);
  std::string png, bmp, jpg;
  stbi_write_png_to_func(append, &png, 40, 30, 1, px.data(), 40);
  stbi_write_bmp_to_func(append, &bmp, 40, 30, 1, px.data());
  stbi_write_jpg_to_func(append, &jpg, 40, 30, 1, px.data(), 90);
  // Every cut of a BMP or JPEG is refused; a cut PNG fails in the decoder's own checks.
  for (size_t cut = 1; cut < bmp.size(); cut += 97)
    EXPECT_NE(error_of([&] { q8::decode_image(bmp.substr(0, cut), "a.bmp", 1); }), "") << "BMP cut at " << cut;
  for (size_t cut = 1; cut < jpg.size(); cut += 31)
    EXPECT_NE(error_of([&] { q8::decode_image(jpg.substr(0, cut), "a.jpg", 1); }), "") << "JPEG cut at " << cut;
  for (size_t cut = 1; cut < png.size(); cut += 17)
    EXPECT_NE(error_of([&] { q8::decode_image(png.substr(0, cut), "a.png", 1); }), "") << "PNG cut at " << cut;
  // A BMP header grown to 30000 x 30000 pixels: refused by the pixel cap, not decoded.
  std::string big = bmp;
  const uint32_t side = 30000;
  std::memcpy(&big[18], &side, 4);
  std::memcpy(&big[22], &side, 4);
  EXPECT_HAS(error_of([&] { q8::decode_image(big, "a.bmp", 1); }),
             "a.bmp: the image header declares 30000x30000 pixels");
  EXPECT_HAS(error_of([&] { q8::decode_image("P5\n2 2\n255\nabcd", "a.png", 1); }),
             "a.png: not a PNG, JPEG or BMP image");
}

// ---- output files ----------------------------------------------------------------------------

TEST(OutputFiles, RegularFilesReplacedWholeKeepingTheirMode) {
  TempDir t;
  const std::string p = t.path + "/out.bin";
  q8::write_file_atomic(p, "one");
  ASSERT_EQ(::chmod(p.c_str(), 0600), 0);
  q8::write_file_atomic(p, "two");
  EXPECT_EQ(read_all(p), "two");
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // A name of 250 characters: the temporary's short name still fits.
  const std::string longname = t.path + "/" + std::string(246, 'n') + ".npy";
  q8::write_file_atomic(longname, "x");
  EXPECT_EQ(read_all(longname), "x");
}

TEST(OutputFiles, DevicesAndFifosAreWrittenInPlace) {
  TempDir t;
  struct stat st {};
  // Private device nodes (those of /dev/null and /dev/full), never the system's own: a
  // regression must not be able to replace the machine's /dev/null.
  const std::string null_dev = t.path + "/null", full_dev = t.path + "/full";
  if (::mknod(null_dev.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0 &&
      ::mknod(full_dev.c_str(), S_IFCHR | 0666, makedev(1, 7)) == 0) {
    q8::write_file_atomic(null_dev, "discarded");
    ASSERT_EQ(::stat(null_dev.c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    EXPECT_HAS(error_of([&] { q8::write_file_atomic(full_dev, "x"); }),
               "/full: cannot write file (No space left on device)");
    ASSERT_EQ(::stat(full_dev.c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode));
  } else {
    std::printf("[ SKIPPED  ] device nodes: mknod needs root\n");
  }
  const std::string fifo = t.path + "/pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  EXPECT_HAS(error_of([&] { q8::write_file_atomic(fifo, "x"); }), "a FIFO with no reader");
  ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_HAS(error_of([&] { q8::write_file_atomic(t.path, "x"); }), "it is a folder");
}

TEST(OutputFiles, SeveralFilesAllOrNothing) {
  TempDir t;
  const std::string a = t.path + "/a.bin", b = t.path + "/b.bin";
  q8::write_file_atomic(a, "old");
  EXPECT_HAS(error_of([&] {
               q8::write_files_atomic({{a, "new"}, {t.path + "/missing/b.bin", "new"}});
             }),
             "missing/b.bin");
  if (::mknod((t.path + "/full").c_str(), S_IFCHR | 0666, makedev(1, 7)) == 0) {
    EXPECT_HAS(error_of([&] { q8::write_files_atomic({{a, "new"}, {t.path + "/full", "new"}}); }), "/full");
    ::unlink((t.path + "/full").c_str());
  }
  EXPECT_EQ(read_all(a), "old");
  q8::write_files_atomic({{a, "new"}, {b, "new"}});
  EXPECT_EQ(read_all(a) + read_all(b), "newnew");
  // No temporary is left behind by any of it.
  EXPECT_EQ(std::system(("test -z \"$(ls -A '" + t.path + "' | grep '^\\.q8-')\"").c_str()), 0);
}

TEST(InputFiles, OnlyRegularFilesAreRead) {
  TempDir t;
  const std::string fifo = t.path + "/in.npy";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  EXPECT_HAS(error_of([&] { q8::load_npy(fifo); }), "in.npy: not a regular file (it is a FIFO)");
  EXPECT_HAS(error_of([&] { q8::Model::load(fifo); }), "in.npy: not a regular file (it is a FIFO)");
  EXPECT_HAS(error_of([&] { q8::load_npy("/dev/zero"); }), "not a regular file (it is a character device)");
  EXPECT_HAS(error_of([&] { q8::read_regular_file(t.path, 100); }), "not a regular file (it is a folder)");
}

// ---- quantization multipliers and empty tensors --------------------------------------------------

// x -> Q/DQ(s_x) -> Conv(DQ(w, s_w)) -> Q/DQ(s_y) -> y
std::string qdq_conv(float s_x, float s_w, float s_y) {
  OnnxModelBuilder b;
  b.input("x", {1, 2, 4, 4}).output("y");
  b.init_f("sx", {}, {s_x});
  b.init_f("sy", {}, {s_y});
  b.init_f("sw", {}, {s_w});
  b.init_8bit("z", ::onnx::TensorProto_DataType_UINT8, {}, {static_cast<int8_t>(128)});
  b.init_8bit("zw", ::onnx::TensorProto_DataType_INT8, {}, {0});
  b.init_8bit("wq", ::onnx::TensorProto_DataType_INT8, {2, 2, 1, 1}, {1, 0, 0, 1});
  b.node("QuantizeLinear", {"x", "sx", "z"}, {"xq"}, "qx");
  b.node("DequantizeLinear", {"xq", "sx", "z"}, {"xd"}, "dqx");
  b.node("DequantizeLinear", {"wq", "sw", "zw"}, {"wd"}, "dqw");
  b.node("Conv", {"xd", "wd"}, {"c"}, "the_conv");
  b.node("QuantizeLinear", {"c", "sy", "z"}, {"cq"}, "qc");
  b.node("DequantizeLinear", {"cq", "sy", "z"}, {"y"}, "dqc");
  return b.bytes();
}

TEST(Multipliers, OutOfRangeIsRefusedNamingTheNodeOnEveryPath) {
  for (const auto& [sx, sw, sy] : std::vector<std::array<float, 3>>{
           {1e20f, 1e20f, 1e-20f}, {1e-30f, 1e-20f, 1e20f}, {1e-20f, 1.f, 1e20f}, {1.f, 1.f, 1e-8f}}) {
    const std::string bytes = qdq_conv(sx, sw, sy);
    const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "m.onnx");
    for (const std::string& isa : q8::supported_isas())
      EXPECT_HAS(error_of([&] { q8::Session s(m, {1, isa}); }), "m.onnx: node 'the_conv'");
  }
  // In range, it runs, and every path gives the same bytes.
  const std::string bytes = qdq_conv(0.05f, 0.01f, 0.02f);
  const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "m.onnx");
  q8::Tensor x({1, 2, 4, 4});
  for (int i = 0; i < 32; ++i) x.data()[i] = static_cast<float>(i % 7) - 3.f;
  std::vector<float> first;
  for (const std::string& isa : q8::supported_isas()) {
    q8::Session s(m, {1, isa});
    const std::vector<float> y = s.run({x})[0].values();
    if (first.empty()) first = y;
    EXPECT_EQ(y, first) << isa;
  }
}

TEST(EmptyTensors, RefusedAtLoadNamingTheNode) {
  OnnxModelBuilder b;
  b.input("x", {1, 8}).output("y");
  b.init_f("w", {8, 0}, {});
  b.node("Gemm", {"x", "w"}, {"y"}, "no_columns");
  const std::string bytes = b.bytes();
  EXPECT_HAS(error_of([&] { q8::Model::load_from_memory(bytes.data(), bytes.size(), "m.onnx"); }),
             "m.onnx: node 'no_columns' (Gemm): output shape [1,0] is empty: empty tensors are not supported");
}

TEST(Quantize, DenormalWeightsQuantizeAsZeros) {
  OnnxModelBuilder b;
  b.input("x", {-1, 1, 4, 4}).output("y");
  std::vector<float> w(2 * 9, 1e-40f);
  for (int i = 9; i < 18; ++i) w[i] = 0.5f;  // channel 1 is ordinary
  b.init_f("w", {2, 1, 3, 3}, w);
  b.node("Conv", {"x", "w"}, {"y"}, "tiny");
  const std::string bytes = b.bytes();
  const q8::Model m = q8::Model::load_from_memory(bytes.data(), bytes.size(), "m.onnx");
  q8::Tensor calib({4, 1, 4, 4});
  for (int i = 0; i < 64; ++i) calib.data()[i] = static_cast<float>(i % 9) / 4.f - 1.f;
  q8::Model q;
  EXPECT_EQ(error_of([&] { q = q8::quantize(m, {calib}); }), "");
  q8::Session s(q);
  const q8::Tensor y = s.run({q8::Tensor({1, 1, 4, 4}, std::vector<float>(16, 1.f))})[0];
  ASSERT_EQ(y.numel(), 2 * 2 * 2);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y.data()[i], 0.f, 1e-6f);  // the denormal channel
  for (int i = 4; i < 8; ++i) EXPECT_NEAR(y.data()[i], 4.5f, 0.1f);  // 9 taps of 0.5
}

}  // namespace
