// .npy reading and writing: round trips, conversions, each refusal, and the
// temporary-file-and-rename behaviour of save_npy.

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "io/npy.h"
#include "q8/q8.h"

namespace {

// Builds a .npy byte string: magic, version, header length, `dict` padded to 64 bytes + '\n', data.
std::string make_npy(const std::string& dict, const std::string& data, int major = 1, bool pad = true) {
  std::string header = dict;
  const size_t pre = major == 1 ? 10 : 12;
  if (pad) header.append((64 - (pre + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string s("\x93NUMPY", 6);
  s += static_cast<char>(major);
  s += '\0';
  const uint32_t len = static_cast<uint32_t>(header.size());
  s += static_cast<char>(len & 0xff);
  s += static_cast<char>((len >> 8) & 0xff);
  if (major != 1) {
    s += static_cast<char>((len >> 16) & 0xff);
    s += static_cast<char>((len >> 24) & 0xff);
  }
  return s + header + data;
}

template <class T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

q8::Tensor parse(const std::string& b) { return q8::parse_npy(b.data(), b.size(), "x.npy"); }

std::string parse_error(const std::string& b) {
  try {
    parse(b);
  } catch (const q8::Error& e) {
    std::string w = e.what();
    EXPECT_EQ(w.rfind("x.npy: ", 0), 0u) << w;
    EXPECT_EQ(w.find('\n'), std::string::npos) << w;
    return w;
  }
  ADD_FAILURE() << "parse_npy did not throw";
  return "";
}

#define EXPECT_HAS(haystack, needle)                                                                  \
  do {                                                                                                \
    const std::string h_ = (haystack);                                                                \
    EXPECT_NE(h_.find(needle), std::string::npos) << "message: " << h_ << "\nexpected: " << (needle); \
  } while (0)

std::string temp_dir() {
  std::string tmpl = ::testing::TempDir() + "q8_npy_XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  const char* d = ::mkdtemp(buf.data());
  EXPECT_NE(d, nullptr);
  return std::string(d ? d : "/tmp");
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
  }
  return names;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

TEST(Npy, RoundTrip) {
  const std::string dir = temp_dir();
  const std::vector<std::vector<int64_t>> shapes = {{2, 3}, {}, {5}, {0, 4}, {1, 2, 3, 4}};
  for (const auto& shape : shapes) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (size_t i = 0; i < v.size(); ++i) v[i] = 0.5f * static_cast<float>(i) - 3.f;
    q8::Tensor t(shape, v);
    const std::string path = dir + "/t.npy";
    q8::save_npy(path, t);
    const std::string raw = read_file(path);
    ASSERT_GE(raw.size(), 10u);
    EXPECT_EQ(raw.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
    const size_t hlen = static_cast<uint8_t>(raw[8]) | static_cast<uint8_t>(raw[9]) << 8;
    EXPECT_EQ((10 + hlen) % 64, 0u);
    EXPECT_EQ(raw[10 + hlen - 1], '\n');
    EXPECT_NE(raw.find("'descr': '<f4'"), std::string::npos);
    EXPECT_EQ(raw.size(), 10 + hlen + v.size() * 4);
    q8::Tensor back = q8::load_npy(path);
    EXPECT_EQ(back.shape(), shape);
    EXPECT_EQ(back.values(), v);
    EXPECT_EQ(list_dir(dir), std::vector<std::string>{"t.npy"}) << "temporary file left behind";
    std::remove(path.c_str());
  }
  ::rmdir(dir.c_str());
}

TEST(Npy, HeaderSpellings) {
  const std::string data = bytes_of(std::vector<float>{1, 2, 3});
  // numpy's own spelling, shape first, double quotes, no trailing comma, versions 2 and 3.
  EXPECT_EQ(parse(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", data)).shape(),
            (std::vector<int64_t>{3}));
  EXPECT_EQ(parse(make_npy("{\"shape\": (3,), \"fortran_order\": False, \"descr\": \"<f4\"}", data)).shape(),
            (std::vector<int64_t>{3}));
  EXPECT_EQ(parse(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }", data, 2)).shape(),
            (std::vector<int64_t>{1, 3}));
  q8::Tensor t = parse(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1), }", data, 3));
  EXPECT_EQ(t.shape(), (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(t.values(), (std::vector<float>{1, 2, 3}));
  q8::Tensor scalar =
      parse(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", bytes_of(std::vector<float>{7})));
  EXPECT_TRUE(scalar.shape().empty());
  EXPECT_EQ(scalar.values(), std::vector<float>{7});
  // Unpadded header is fine too.
  EXPECT_EQ(parse(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", data, 1, false)).numel(), 3);
}

TEST(Npy, Conversions) {
  const std::string h1 = "{'descr': '", h2 = "', 'fortran_order': False, 'shape': (3,), }";
  EXPECT_EQ(parse(make_npy(h1 + "<f8" + h2, bytes_of(std::vector<double>{1.5, -2, 1e10}))).values(),
            (std::vector<float>{1.5f, -2.f, 1e10f}));
  EXPECT_EQ(parse(make_npy(h1 + "<i8" + h2, bytes_of(std::vector<int64_t>{0, -9, 1 << 20}))).values(),
            (std::vector<float>{0.f, -9.f, 1048576.f}));
  EXPECT_EQ(parse(make_npy(h1 + "<i4" + h2, bytes_of(std::vector<int32_t>{3, -1, 9}))).values(),
            (std::vector<float>{3.f, -1.f, 9.f}));
  EXPECT_EQ(parse(make_npy(h1 + "|u1" + h2, std::string("\x00\x07\xff", 3))).values(),
            (std::vector<float>{0.f, 7.f, 255.f}));
  EXPECT_EQ(parse(make_npy(h1 + "|i1" + h2, std::string("\x80\x01\xff", 3))).values(),
            (std::vector<float>{-128.f, 1.f, -1.f}));
}

TEST(Npy, Refusals) {
  const std::string f4 = bytes_of(std::vector<float>{1, 2, 3, 4, 5, 6});
  auto hdr = [](const std::string& descr, const std::string& fortran, const std::string& shape) {
    return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
  };
  EXPECT_HAS(parse_error("hello world, not npy"), "not a .npy file");
  EXPECT_HAS(parse_error(std::string("\x93NUMPY", 6)), "not a .npy file");
  std::string v4 = make_npy(hdr("<f4", "False", "(2, 3)"), f4);
  v4[6] = 4;
  EXPECT_HAS(parse_error(v4), "unsupported .npy version 4.0");
  EXPECT_HAS(parse_error(make_npy(hdr(">f4", "False", "(2, 3)"), f4)), "big-endian");
  EXPECT_HAS(parse_error(make_npy(hdr("<f4", "True", "(2, 3)"), f4)), "Fortran-order");
  EXPECT_HAS(parse_error(make_npy(hdr("|O", "False", "(2, 3)"), f4)), "object arrays");
  EXPECT_HAS(parse_error(make_npy(hdr("<c8", "False", "(3,)"), f4)), "unsupported dtype '<c8'");
  EXPECT_HAS(parse_error(make_npy(hdr("<f4", "False", "(2, 3)"), f4.substr(0, 20))), "truncated data");
  EXPECT_HAS(parse_error(make_npy(hdr("<f4", "False", "(2, 3)"), f4 + "junk")), "4 trailing bytes");
  EXPECT_HAS(parse_error(make_npy(hdr("<f4", "False", "(4294967296, 4294967296, 4294967296)"), f4)), "overflows");
  EXPECT_HAS(parse_error(make_npy(hdr("<f4", "False", "(99999999999999999999,)"), f4)), "overflows");
  EXPECT_HAS(parse_error(make_npy(hdr("<f4", "False", "(-1, 6)"), f4)), "negative dimension");
  EXPECT_HAS(parse_error(make_npy(hdr("<f4", "False", "(6)"), f4)), "trailing comma");
  EXPECT_HAS(parse_error(make_npy("{'descr': '<f4', 'shape': (6,), }", f4)), "missing key 'fortran_order'");
  EXPECT_HAS(parse_error(make_npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", f4)),
             "appears twice");
  EXPECT_HAS(parse_error(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", f4)),
             "unexpected key 'x'");
  EXPECT_HAS(parse_error(make_npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (6,)}", f4)), "True or False");
  EXPECT_HAS(parse_error(make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} x", f4)), "after the dict");
  EXPECT_HAS(parse_error(make_npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,)}", f4)),
             "structured dtypes");
  // Header longer than 64 KiB (version 2 allows up to 4 GiB).
  std::string big = make_npy(hdr("<f4", "False", "(6,)") + std::string(70000, ' '), f4, 2);
  EXPECT_HAS(parse_error(big), "exceeds the 64 KiB limit");
  // Header length pointing past the end.
  std::string cut = make_npy(hdr("<f4", "False", "(6,)"), "");
  EXPECT_HAS(parse_error(cut.substr(0, 40)), "truncated .npy header");
}

TEST(Npy, LoadErrorsNameTheFile) {
  const std::string missing = ::testing::TempDir() + "q8_no_such_file.npy";
  try {
    q8::load_npy(missing);
    FAIL() << "no throw";
  } catch (const q8::Error& e) {
    EXPECT_HAS(e.what(), missing);
    EXPECT_HAS(e.what(), "cannot open");
  }
  const std::string dir = temp_dir();
  const std::string bad = dir + "/bad.npy";
  { std::ofstream(bad, std::ios::binary) << "garbage"; }
  try {
    q8::load_npy(bad);
    FAIL() << "no throw";
  } catch (const q8::Error& e) {
    EXPECT_HAS(e.what(), bad + ": not a .npy file");
  }
  std::remove(bad.c_str());
  ::rmdir(dir.c_str());
}

TEST(Npy, SaveReplacesWholeFileOrNothing) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/out.npy";
  { std::ofstream(path, std::ios::binary) << "old contents"; }
  q8::save_npy(path, q8::Tensor({2}, {1.f, 2.f}));
  EXPECT_EQ(q8::load_npy(path).values(), (std::vector<float>{1.f, 2.f}));
  EXPECT_EQ(list_dir(dir), std::vector<std::string>{"out.npy"});

  // Destination is a directory: the temporary file is written, the rename fails, and nothing is
  // left behind.
  const std::string sub = dir + "/sub";
  ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
  try {
    q8::save_npy(sub, q8::Tensor({2}, {1.f, 2.f}));
    FAIL() << "no throw";
  } catch (const q8::Error& e) {
    EXPECT_HAS(e.what(), sub + ": cannot write file");
  }
  auto names = list_dir(dir);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"out.npy", "sub"})) << "temporary file left behind";
  EXPECT_TRUE(list_dir(sub).empty());

  // Destination folder missing.
  const std::string nowhere = dir + "/missing/out.npy";
  try {
    q8::save_npy(nowhere, q8::Tensor({1}, {1.f}));
    FAIL() << "no throw";
  } catch (const q8::Error& e) {
    EXPECT_HAS(e.what(), nowhere + ": cannot write file");
  }
  // An inconsistent tensor (default-constructed: shape () but no value) is refused, old file kept.
  EXPECT_THROW(q8::save_npy(path, q8::Tensor()), q8::Error);
  EXPECT_EQ(q8::load_npy(path).values(), (std::vector<float>{1.f, 2.f}));

  ::rmdir(sub.c_str());
  std::remove(path.c_str());
  ::rmdir(dir.c_str());
}

}  // namespace
