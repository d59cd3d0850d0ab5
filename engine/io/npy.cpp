// .npy reading and writing (NumPy's format, versions 1.0-3.0).
//
//   "\x93NUMPY" major minor | header length (u16 LE for 1.x, u32 LE for 2.x/3.x) |
//   header: a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//   padded with spaces and ending in '\n' | data, C order.
//
// Reading is strict: the header is parsed as the small dict grammar numpy writes, not guessed at,
// and the data must be exactly numel * itemsize bytes. Integer and float64 data (label files,
// float64 arrays saved by default) is converted to float32. Writing always produces version 1.0
// '<f4' with the header padded to a multiple of 64 bytes, through a temporary file and a rename,
// so the destination is whole or untouched.

#include "io/npy.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>
#include <vector>
#include "io/file_io.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.cpp reads and writes little-endian data with memcpy: a little-endian host is required"
#endif

namespace q8 {
namespace {

constexpr size_t kMaxHeader = 64 * 1024;
constexpr int64_t kMaxNpyBytes = int64_t{64} << 30;
constexpr size_t kMaxRank = 32;
const char kMagic[] = "\x93NUMPY";  // 6 bytes

[[noreturn]] void fail(const std::string& name, const std::string& what) { throw Error(name + ": " + what); }

std::string shape_text(const std::vector<int64_t>& shape) {
  // Python's tuple repr: (), (3,), (2, 3)
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) s += ",";
  return s + ")";
}

// The dict grammar numpy writes: {'key': value, ...} with string, bool and int-tuple values.
class HeaderParser {
 public:
  HeaderParser(const std::string& h, const std::string& name) : h_(h), name_(name) {}

  void parse(std::string& descr, bool& fortran, std::vector<int64_t>& shape) {
    std::set<std::string> seen;
    expect('{');
    for (;;) {
      if (eat('}')) break;
      std::string key = str();
      if (!seen.insert(key).second) bad("key '" + printable(key, 40) + "' appears twice");
      expect(':');
      if (key == "descr") {
        ws();
        if (i_ < h_.size() && h_[i_] == '[') bad("structured dtypes are not supported");
        descr = str();
      } else if (key == "fortran_order") {
        fortran = boolean();
      } else if (key == "shape") {
        shape = tuple();
      } else {
        bad("unexpected key '" + printable(key, 40) + "'");
      }
      if (eat(',')) continue;
      expect('}');
      break;
    }
    ws();
    if (i_ != h_.size()) bad("unexpected text after the dict");
    for (const char* k : {"descr", "fortran_order", "shape"})
      if (!seen.count(k)) bad(std::string("missing key '") + k + "'");
  }

 private:
  [[noreturn]] void bad(const std::string& what) const { fail(name_, "malformed .npy header: " + what); }
  void ws() {
    while (i_ < h_.size() && (h_[i_] == ' ' || h_[i_] == '\t' || h_[i_] == '\n' || h_[i_] == '\r')) ++i_;
  }
  bool eat(char c) {
    ws();
    if (i_ < h_.size() && h_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) bad(std::string("expected '") + c + "' at offset " + std::to_string(i_));
  }
  std::string str() {
    ws();
    if (i_ >= h_.size() || (h_[i_] != '\'' && h_[i_] != '"')) bad("expected a string at offset " + std::to_string(i_));
    const char q = h_[i_++];
    std::string s;
    while (i_ < h_.size() && h_[i_] != q) {
      if (h_[i_] == '\\' || h_[i_] == '\n') bad("unsupported character in a string");
      s += h_[i_++];
    }
    if (i_ >= h_.size()) bad("unterminated string");
    ++i_;
    return s;
  }
  bool boolean() {
    ws();
    if (h_.compare(i_, 4, "True") == 0) {
      i_ += 4;
      return true;
    }
    if (h_.compare(i_, 5, "False") == 0) {
      i_ += 5;
      return false;
    }
    bad("expected True or False at offset " + std::to_string(i_));
  }
  int64_t integer() {
    ws();
    if (i_ < h_.size() && h_[i_] == '-') bad("negative dimension in the shape");
    if (i_ >= h_.size() || h_[i_] < '0' || h_[i_] > '9') bad("expected an integer at offset " + std::to_string(i_));
    int64_t v = 0;
    while (i_ < h_.size() && h_[i_] >= '0' && h_[i_] <= '9') {
      const int d = h_[i_++] - '0';
      if (v > (std::numeric_limits<int64_t>::max() - d) / 10) fail(name_, "shape dimension overflows int64");
      v = v * 10 + d;
    }
    return v;
  }
  std::vector<int64_t> tuple() {
    expect('(');
    std::vector<int64_t> dims;
    if (eat(')')) return dims;
    for (;;) {
      dims.push_back(integer());
      if (dims.size() > kMaxRank) fail(name_, "array rank exceeds " + std::to_string(kMaxRank));
      if (eat(',')) {
        if (eat(')')) break;
        continue;
      }
      if (dims.size() == 1) bad("shape is not a tuple (a 1-element tuple needs a trailing comma)");
      expect(')');
      break;
    }
    return dims;
  }

  const std::string& h_;
  const std::string& name_;
  size_t i_ = 0;
};

enum class Src { F4, F8, I8, I4, U1, I1 };

template <class T>
void convert(const uint8_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, src + i * sizeof(T), sizeof(T));
    dst[i] = static_cast<float>(v);
  }
}

}  // namespace

Tensor parse_npy(const void* data, size_t size, const std::string& name) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  if (size < 10 || std::memcmp(p, kMagic, 6) != 0) fail(name, "not a .npy file (bad magic)");
  const int major = p[6], minor = p[7];
  if (major < 1 || major > 3 || minor != 0)
    fail(name, "unsupported .npy version " + std::to_string(major) + "." + std::to_string(minor));
  size_t header_len, header_start;
  if (major == 1) {
    header_len = static_cast<size_t>(p[8]) | static_cast<size_t>(p[9]) << 8;
    header_start = 10;
  } else {
    if (size < 12) fail(name, "truncated .npy header");
    header_len = static_cast<size_t>(p[8]) | static_cast<size_t>(p[9]) << 8 | static_cast<size_t>(p[10]) << 16 |
                 static_cast<size_t>(p[11]) << 24;
    header_start = 12;
  }
  if (header_len > kMaxHeader)
    fail(name, ".npy header of " + std::to_string(header_len) + " bytes exceeds the 64 KiB limit");
  if (size - header_start < header_len) fail(name, "truncated .npy header");
  const std::string header(reinterpret_cast<const char*>(p + header_start), header_len);

  std::string descr;
  bool fortran = false;
  std::vector<int64_t> shape;
  HeaderParser(header, name).parse(descr, fortran, shape);

  Src src;
  size_t item;
  if (descr == "<f4") {
    src = Src::F4;
    item = 4;
  } else if (descr == "<f8") {
    src = Src::F8;
    item = 8;
  } else if (descr == "<i8") {
    src = Src::I8;
    item = 8;
  } else if (descr == "<i4") {
    src = Src::I4;
    item = 4;
  } else if (descr == "|u1" || descr == "<u1") {
    src = Src::U1;
    item = 1;
  } else if (descr == "|i1" || descr == "<i1") {
    src = Src::I1;
    item = 1;
  } else if (!descr.empty() && descr[0] == '>')
    fail(name, "big-endian data ('" + printable(descr, 40) + "') is not supported");
  else if (descr == "|O" || descr == "O" || descr == "<O" || descr == ">O")
    fail(name, "object arrays are not supported");
  else
    fail(name,
         "unsupported dtype '" + printable(descr, 40) + "' (supported: float32, float64, int64, int32, uint8, int8)");
  if (fortran) fail(name, "Fortran-order arrays are not supported (save with np.ascontiguousarray)");

  uint64_t numel = 1;
  bool zero = false;
  for (int64_t d : shape) zero = zero || d == 0;
  if (zero) {
    numel = 0;
  } else {
    for (int64_t d : shape)
      if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel) || numel > (uint64_t{1} << 62))
        fail(name, "shape " + shape_text(shape) + " overflows");
  }
  uint64_t nbytes;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(item), &nbytes))
    fail(name, "shape " + shape_text(shape) + " overflows");
  const size_t data_start = header_start + header_len;
  const uint64_t avail = size - data_start;
  if (avail < nbytes)
    fail(name, "truncated data: shape " + shape_text(shape) + " needs " + std::to_string(nbytes) +
                   " bytes, the file holds " + std::to_string(avail));
  if (avail > nbytes) fail(name, std::to_string(avail - nbytes) + " trailing bytes after the array data");

  std::vector<float> out(static_cast<size_t>(numel));
  const uint8_t* d = p + data_start;
  const size_t n = static_cast<size_t>(numel);
  switch (src) {
    case Src::F4:
      if (n) std::memcpy(out.data(), d, n * 4);
      break;
    case Src::F8: convert<double>(d, out.data(), n); break;
    case Src::I8: convert<int64_t>(d, out.data(), n); break;
    case Src::I4: convert<int32_t>(d, out.data(), n); break;
    case Src::U1: convert<uint8_t>(d, out.data(), n); break;
    case Src::I1: convert<int8_t>(d, out.data(), n); break;
  }
  return Tensor(std::move(shape), std::move(out));
}

Tensor load_npy(const std::string& path) {
  const std::string bytes = read_regular_file(path, kMaxNpyBytes);
  return parse_npy(bytes.data(), bytes.size(), path);
}

namespace {
// The bytes of `t` as a .npy 1.0 file; `path` names it in errors.
std::string npy_bytes(const std::string& path, const Tensor& t) {
  // A default-constructed Tensor has shape () and no data: refuse rather than write a bad file.
  uint64_t numel = 1;
  for (int64_t d : t.shape()) {
    if (d < 0) fail(path, "cannot save a tensor with a negative dimension");
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel)) fail(path, "tensor shape overflows");
  }
  if (numel != static_cast<uint64_t>(t.numel()))
    fail(path, "cannot save a tensor whose shape " + shape_text(t.shape()) + " does not match its " +
                   std::to_string(t.numel()) + " values");

  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_text(t.shape()) + ", }";
  const size_t unpadded = 10 + header.size() + 1;  // magic, version, u16 length, header, '\n'
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 0xffff) fail(path, "tensor rank too large for a .npy 1.0 header");
  std::string prefix(kMagic, 6);
  prefix += '\x01';
  prefix += '\x00';
  prefix += static_cast<char>(header.size() & 0xff);
  prefix += static_cast<char>(header.size() >> 8);
  prefix += header;

  std::string bytes = prefix;
  bytes.append(reinterpret_cast<const char*>(t.data()), static_cast<size_t>(t.numel()) * sizeof(float));
  return bytes;
}
}  // namespace

void save_npy(const std::string& path, const Tensor& t) { write_file_atomic(path, npy_bytes(path, t)); }

void save_npy(const std::vector<std::string>& paths, const std::vector<Tensor>& tensors) {
  if (paths.size() != tensors.size())
    throw Error("save_npy: " + std::to_string(paths.size()) + " paths for " + std::to_string(tensors.size()) +
                " tensors");
  std::vector<std::pair<std::string, std::string>> files;
  for (size_t i = 0; i < paths.size(); ++i) files.emplace_back(paths[i], npy_bytes(paths[i], tensors[i]));
  write_files_atomic(files);
}

}  // namespace q8
