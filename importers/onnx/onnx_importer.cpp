// ONNX importer: ModelProto bytes -> validated q8 graph IR.
//
// Order of work:
//   1. size limits, then a schema-aware pre-scan of the protobuf wire format that bounds what the
//      parser will allocate (a hostile file of empty sub-messages would otherwise cost ~100x its
//      size), then ParseFromArray;
//   2. opset, initializers, graph inputs;
//   3. nodes: domain, op, input/output counts, attributes (kinds and values), output uniqueness;
//   4. a stable topological sort (file order wherever the dependencies allow), cycle detection;
//   5. values and nodes into the IR, a few checks that need constant operands, graph outputs;
//   6. Graph::validate().
// Every error is one line: "<source>: <what>" or "<source>: node '<name>' (<OpType>): <what>".

#include "onnx/onnx_importer.h"
#include "io/file_io.h"
#include "ir/op_traits.h"
#include "onnx/onnx_ops.h"
#include "onnx/onnx_text.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "onnx.pb.h"
#include "q8/error.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "q8's ONNX importer copies little-endian raw_data as is: a little-endian host is required"
#endif

namespace q8::onnx {
namespace {

using ir::Attribute;
using ir::ConstTensor;
using ir::ConstTensorPtr;
using ir::DType;
using Kind = ir::Attribute::Kind;

// ---------------------------------------------------------------------------------------------
// Message helpers

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? "," : "") + std::to_string(d[i]);
  return s + "]";
}

std::string onnx_dtype_name(int t) {
  if (::onnx::TensorProto_DataType_IsValid(t)) {
    const std::string& n = ::onnx::TensorProto_DataType_Name(static_cast<::onnx::TensorProto_DataType>(t));
    if (!n.empty()) return n;
  }
  return "data type " + std::to_string(t);
}

std::string attr_type_name(int t) {
  if (::onnx::AttributeProto_AttributeType_IsValid(t)) {
    const std::string& n =
        ::onnx::AttributeProto_AttributeType_Name(static_cast<::onnx::AttributeProto_AttributeType>(t));
    if (!n.empty()) return n;
  }
  return "type " + std::to_string(t);
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Int: return "INT";
    case Kind::Float: return "FLOAT";
    case Kind::Ints: return "INTS";
    case Kind::Floats: return "FLOATS";
    case Kind::String: return "STRING";
    case Kind::Tensor: return "TENSOR";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Pre-scan of the wire format. It walks the messages ONNX defines (unknown fields count as the
// bytes they occupy) and estimates the memory ParseFromArray will allocate: ~kMsgCost per
// sub-message, a string header plus payload per string, 8 bytes per packed varint byte. A file
// whose estimate is far beyond its size (millions of empty nodes, attributes or dims) is refused
// before anything is allocated. Malformed wire data is left for the parser to refuse.

enum class M : uint8_t {
  None,
  Str,
  PackedVarint,
  PackedFixed,
  Model,
  Graph,
  Node,
  Attr,
  Tensor,
  Sparse,
  ValueInfo,
  Type,
  TypeTensor,
  TypeElem,
  TypeMap,
  Shape,
  Dim,
  Training,
  StrStr,
  Annotation,
  Function,
  Opset,
  Segment
};

M child_kind(M parent, uint32_t field) {
  switch (parent) {
    case M::Model:
      switch (field) {
        case 7: return M::Graph;
        case 8: return M::Opset;
        case 14: return M::StrStr;
        case 20: return M::Training;
        case 25: return M::Function;
        case 2:
        case 3:
        case 4:
        case 6: return M::Str;
      }
      break;
    case M::Graph:
      switch (field) {
        case 1: return M::Node;
        case 5: return M::Tensor;
        case 15: return M::Sparse;
        case 11:
        case 12:
        case 13: return M::ValueInfo;
        case 14: return M::Annotation;
        case 2:
        case 10: return M::Str;
      }
      break;
    case M::Node:
      if (field == 5) return M::Attr;
      if (field == 1 || field == 2 || field == 3 || field == 4 || field == 6 || field == 7) return M::Str;
      break;
    case M::Attr:
      switch (field) {
        case 5:
        case 10: return M::Tensor;
        case 6:
        case 11: return M::Graph;
        case 22:
        case 23: return M::Sparse;
        case 14:
        case 15: return M::Type;
        case 7: return M::PackedFixed;
        case 8: return M::PackedVarint;
        case 1:
        case 4:
        case 9:
        case 13:
        case 21: return M::Str;
      }
      break;
    case M::Tensor:
      switch (field) {
        case 1:
        case 5:
        case 7:
        case 11: return M::PackedVarint;
        case 4:
        case 10: return M::PackedFixed;
        case 3: return M::Segment;
        case 13: return M::StrStr;
        case 6:
        case 8:
        case 9:
        case 12: return M::Str;
      }
      break;
    case M::Sparse:
      if (field == 1 || field == 2) return M::Tensor;
      if (field == 3) return M::PackedVarint;
      break;
    case M::ValueInfo:
      if (field == 2) return M::Type;
      if (field == 1 || field == 3) return M::Str;
      break;
    case M::Type:
      if (field == 1 || field == 8) return M::TypeTensor;
      if (field == 4 || field == 9) return M::TypeElem;
      if (field == 5) return M::TypeMap;
      if (field == 6) return M::Str;
      break;
    case M::TypeTensor:
      if (field == 2) return M::Shape;
      break;
    case M::TypeElem:
      if (field == 1) return M::Type;
      break;
    case M::TypeMap:
      if (field == 2) return M::Type;
      break;
    case M::Shape:
      if (field == 1) return M::Dim;
      break;
    case M::Dim:
      if (field == 2 || field == 3) return M::Str;
      break;
    case M::Training:
      if (field == 1 || field == 2) return M::Graph;
      if (field == 3 || field == 4) return M::StrStr;
      break;
    case M::StrStr:
      if (field == 1 || field == 2) return M::Str;
      break;
    case M::Annotation:
      if (field == 1) return M::Str;
      if (field == 2) return M::StrStr;
      break;
    case M::Function:
      if (field == 7) return M::Node;
      if (field == 9) return M::Opset;
      if (field == 1 || field == 4 || field == 5 || field == 6 || field == 8 || field == 10) return M::Str;
      break;
    case M::Opset:
      if (field == 1) return M::Str;
      break;
    default: break;
  }
  return M::None;
}

struct ScanBudget {
  uint64_t estimate = 0;  // bytes the parser is expected to allocate
  uint64_t nodes = 0;     // NodeProtos anywhere (graphs, subgraphs, functions)
  uint64_t messages = 0;
};

constexpr uint64_t kMsgCost = 128;
constexpr uint64_t kStrCost = 32;
constexpr int kMaxDepth = 100;  // protobuf's own default recursion limit

bool read_varint(const uint8_t*& p, const uint8_t* end, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (p == end) return false;
    uint8_t b = *p++;
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// Returns false on malformed data (the parser will then refuse the file with its own words).
bool scan(const uint8_t* p, const uint8_t* end, M kind, int depth, ScanBudget& b) {
  if (depth > kMaxDepth) return false;
  while (p < end) {
    uint64_t tag;
    if (!read_varint(p, end, tag)) return false;
    uint32_t field = static_cast<uint32_t>(tag >> 3);
    switch (tag & 7) {
      case 0: {
        uint64_t v;
        if (!read_varint(p, end, v)) return false;
        b.estimate += 8;
        break;
      }
      case 1:
        if (end - p < 8) return false;
        p += 8;
        b.estimate += 8;
        break;
      case 5:
        if (end - p < 4) return false;
        p += 4;
        b.estimate += 4;
        break;
      case 2: {
        uint64_t len;
        if (!read_varint(p, end, len) || len > static_cast<uint64_t>(end - p)) return false;
        M child = child_kind(kind, field);
        switch (child) {
          case M::None: b.estimate += len; break;  // unknown field: kept as bytes
          case M::Str: b.estimate += kStrCost + len; break;
          case M::PackedVarint: b.estimate += 8 * len; break;
          case M::PackedFixed: b.estimate += 2 * len; break;  // 4 -> 4 (float) or 8 -> 8 bytes; slack
          default:
            b.estimate += kMsgCost;
            ++b.messages;
            if (child == M::Node) ++b.nodes;
            if (!scan(p, p + len, child, depth + 1, b)) return false;
        }
        p += len;
        break;
      }
      default: return false;  // groups do not occur in ONNX
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Tensors

struct DTypeInfo {
  DType dtype;
  size_t size;
};

bool map_dtype(int onnx_type, DTypeInfo& out) {
  switch (onnx_type) {
    case ::onnx::TensorProto_DataType_FLOAT: out = {DType::Float32, 4}; return true;
    case ::onnx::TensorProto_DataType_UINT8: out = {DType::Uint8, 1}; return true;
    case ::onnx::TensorProto_DataType_INT8: out = {DType::Int8, 1}; return true;
    case ::onnx::TensorProto_DataType_INT32: out = {DType::Int32, 4}; return true;
    case ::onnx::TensorProto_DataType_INT64: out = {DType::Int64, 8}; return true;
  }
  return false;
}

// Converts a TensorProto; errors are thrown as "<prefix>: <what>".
[[noreturn]] void prefixed_fail(const std::string& prefix, const std::string& what) {
  throw Error(prefix + ": " + what);
}

// ---------------------------------------------------------------------------------------------
// External data: tensors whose bytes live in a side file next to the model, as ONNX
// writes models over 2 GB. Only a model read from a file has a folder to read them from; the
// location must name a regular file inside that folder: absolute paths, ".." components,
// symbolic links (at any component), files with several hard links and special files are refused. Every component is
// opened with O_NOFOLLOW relative to the folder's descriptor, so nothing can be swapped in between the check and the
// read.

struct ExternalContext {
  bool from_file = false;  // false: the model came from memory; external data is refused
  std::string dir;         // the model's folder
  int64_t used = 0;        // external bytes read so far (ImportLimits::max_external_bytes)
};

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// A non-negative decimal integer as ONNX stores offset and length (strings); false if malformed.
bool parse_size(const std::string& s, int64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, c - '0', &v)) return false;
  }
  out = v;
  return true;
}

void read_external(const ::onnx::TensorProto& t, int64_t nbytes, std::vector<uint8_t>& bytes, const std::string& prefix,
                   const ImportLimits& lim, ExternalContext* ext) {
  auto fail = [&](const std::string& what) { prefixed_fail(prefix, what); };
  if (!ext || !ext->from_file)
    fail(
        "external data is not supported for a model loaded from memory (the data lies in files beside "
        "the model): load the model from its file");
  std::string location;
  int64_t offset = 0, length = -1;
  bool have_location = false;
  for (const auto& kv : t.external_data()) {
    const std::string& k = kv.key();
    if (k == "location") {
      if (have_location) fail("external data names its location twice");
      have_location = true;
      location = kv.value();
    } else if (k == "offset") {
      if (!parse_size(kv.value(), offset)) fail("external data offset " + quote(kv.value()) + " is not a byte count");
    } else if (k == "length") {
      if (!parse_size(kv.value(), length)) fail("external data length " + quote(kv.value()) + " is not a byte count");
    }  // "checksum" and unknown keys are ignored, as ONNX Runtime does
  }
  if (!have_location || location.empty()) fail("external data has no location");
  const std::string loc = quote(location);
  if (location.find('\0') != std::string::npos) fail("external data location " + loc + " contains a NUL byte");
  if (location[0] == '/')
    fail("external data location " + loc + " is an absolute path; refused (it must lie inside the model's folder)");
  // Split into components; "." and empty components are harmless, ".." could leave the folder.
  std::vector<std::string> parts;
  for (size_t b = 0; b <= location.size();) {
    size_t e = location.find('/', b);
    if (e == std::string::npos) e = location.size();
    std::string c = location.substr(b, e - b);
    if (c == "..") fail("external data location " + loc + " leaves the model's folder (\"..\"); refused");
    if (!c.empty() && c != ".") parts.push_back(c);
    b = e + 1;
  }
  if (parts.empty()) fail("external data location " + loc + " names no file");
  if (length >= 0 && length != nbytes)
    fail("external data length " + std::to_string(length) + " does not match the " + std::to_string(nbytes) +
         " bytes of its shape");
  if (ext->used > lim.max_external_bytes - nbytes)
    fail("external data exceeds the limit of " + std::to_string(lim.max_external_bytes) + " bytes in all");

  auto sys_fail = [&](const std::string& what) {
    const int err = errno;
    if (err == ELOOP || err == EMLINK)
      fail("external data location " + loc +
           " passes through a symbolic link; refused (links can lead outside the model's folder)");
    fail("external data " + loc + ": " + what + " (" + std::strerror(err) + ")");
  };
  Fd dir(::open(ext->dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.fd < 0) sys_fail("cannot open the model's folder " + quote(ext->dir));
  int cur = dir.fd;
  std::vector<std::unique_ptr<Fd>> held;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    held.push_back(
        std::make_unique<Fd>(::openat(cur, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)));
    if (held.back()->fd < 0) {
      if (errno == ENOTDIR) {  // O_DIRECTORY|O_NOFOLLOW on a link reports ENOTDIR on some kernels
        struct stat ls {};
        if (::fstatat(cur, parts[i].c_str(), &ls, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(ls.st_mode)) errno = ELOOP;
      }
      sys_fail("cannot open folder " + quote(parts[i]));
    }
    cur = held.back()->fd;
  }
  // O_NONBLOCK: a FIFO must not block the import; it is refused below as not a regular file.
  Fd f(::openat(cur, parts.back().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (f.fd < 0) sys_fail("cannot open file");
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) sys_fail("cannot stat file");
  if (!S_ISREG(st.st_mode)) fail("external data location " + loc + " is not a regular file");
  // A hard link is indistinguishable from the file it names, which may lie outside the folder.
  if (st.st_nlink != 1)
    fail("external data location " + loc + " has " + std::to_string(st.st_nlink) +
         " hard links; only a file with one link is read");
  if (offset > st.st_size || st.st_size - offset < nbytes)
    fail("external data " + loc + " holds " + std::to_string(st.st_size) + " bytes, too few for " +
         std::to_string(nbytes) + " bytes at offset " + std::to_string(offset));
  if (length < 0 && st.st_size - offset != nbytes)
    fail("external data " + loc + " has " + std::to_string(st.st_size - offset) + " bytes after offset " +
         std::to_string(offset) + ", expected " + std::to_string(nbytes) + " (give a length to read part of a file)");
  bytes.resize(static_cast<size_t>(nbytes));
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t r =
        ::pread(f.fd, bytes.data() + got, bytes.size() - got, static_cast<off_t>(offset) + static_cast<off_t>(got));
    if (r < 0) {
      if (errno == EINTR) continue;
      sys_fail("cannot read file");
    }
    if (r == 0) fail("external data " + loc + " shrank while it was read");
    got += static_cast<size_t>(r);
  }
  ext->used += nbytes;
}

// Typed storage: float_data for FLOAT, int32_data for INT8/UINT8/INT32, int64_data for INT64.
// `typed` holds the sizes of float_data, int32_data, string_data, int64_data, double_data and
// uint64_data; `what` names the tensor's type and shape.
void read_typed(const ::onnx::TensorProto& t, DType dtype, int64_t numel, int64_t nbytes, const int (&typed)[6],
                const std::string& what, const std::string& prefix, std::vector<uint8_t>& bytes) {
  auto fail = [&](const std::string& w) { prefixed_fail(prefix, w); };
  int have = 0;
  int right_field = -1;
  switch (dtype) {
    case DType::Float32:
      have = t.float_data_size();
      right_field = 0;
      break;
    case DType::Uint8:
    case DType::Int8:
    case DType::Int32:
      have = t.int32_data_size();
      right_field = 1;
      break;
    case DType::Int64:
      have = t.int64_data_size();
      right_field = 3;
      break;
    default: break;
  }
  for (int i = 0; i < 6; ++i)
    if (i != right_field && typed[i] > 0) fail("holds its data in a field that does not match " + what);
  if (have != numel)
    fail("holds " + std::to_string(have) + " elements, expected " + std::to_string(numel) + " for " + what);
  bytes.resize(static_cast<size_t>(nbytes));
  uint8_t* dst = bytes.data();
  switch (dtype) {
    case DType::Float32:
      if (numel) std::memcpy(dst, t.float_data().data(), static_cast<size_t>(nbytes));
      break;
    case DType::Int32:
      if (numel) std::memcpy(dst, t.int32_data().data(), static_cast<size_t>(nbytes));
      break;
    case DType::Int64:
      if (numel) std::memcpy(dst, t.int64_data().data(), static_cast<size_t>(nbytes));
      break;
    case DType::Uint8:
      for (int64_t i = 0; i < numel; ++i) {
        int32_t v = t.int32_data(static_cast<int>(i));
        if (v < 0 || v > 255) fail("uint8 element " + std::to_string(i) + " is out of range: " + std::to_string(v));
        dst[i] = static_cast<uint8_t>(v);
      }
      break;
    case DType::Int8:
      for (int64_t i = 0; i < numel; ++i) {
        int32_t v = t.int32_data(static_cast<int>(i));
        if (v < -128 || v > 127) fail("int8 element " + std::to_string(i) + " is out of range: " + std::to_string(v));
        dst[i] = static_cast<uint8_t>(static_cast<int8_t>(v));
      }
      break;
    default: break;
  }
}

ConstTensorPtr convert_tensor(const ::onnx::TensorProto& t, const std::string& prefix, const ImportLimits& lim,
                              ExternalContext* ext) {
  auto fail = [&](const std::string& what) { prefixed_fail(prefix, what); };
  const bool external = t.data_location() == ::onnx::TensorProto_DataLocation_EXTERNAL;
  if (!external && t.external_data_size() > 0) fail("has external_data entries but its data_location is not EXTERNAL");
  if (t.has_segment()) fail("segmented tensors are not supported");
  DTypeInfo info{};
  if (!map_dtype(t.data_type(), info))
    fail("unsupported data type " + onnx_dtype_name(t.data_type()) + " (supported: FLOAT, UINT8, INT8, INT32, INT64)");
  if (t.dims_size() > lim.max_rank)
    fail("rank " + std::to_string(t.dims_size()) + " exceeds the limit of " + std::to_string(lim.max_rank));
  std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
  int64_t numel = 1;
  bool zero = false;
  for (int64_t d : dims) {
    if (d < 0) fail("negative dimension in shape " + dims_str(dims));
    if (d == 0) zero = true;
  }
  if (zero) {
    numel = 0;
  } else {
    for (int64_t d : dims)
      if (__builtin_mul_overflow(numel, d, &numel)) fail("shape " + dims_str(dims) + " overflows");
  }
  int64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<int64_t>(info.size), &nbytes))
    fail("shape " + dims_str(dims) + " overflows");
  if (nbytes > lim.max_tensor_bytes)
    fail("tensor of " + std::to_string(nbytes) + " bytes exceeds the limit of " + std::to_string(lim.max_tensor_bytes) +
         " bytes");

  const int typed[] = {t.float_data_size(), t.int32_data_size(),  t.string_data_size(),
                       t.int64_data_size(), t.double_data_size(), t.uint64_data_size()};
  int typed_fields = 0;
  for (int n : typed) typed_fields += n > 0;
  const std::string what = std::string(ir::dtype_name(info.dtype)) + " shape " + dims_str(dims);

  auto ct = std::make_shared<ConstTensor>();
  ct->dtype = info.dtype;
  ct->dims = dims;
  if (external) {
    if (t.has_raw_data() || typed_fields) fail("holds both external data and data in the file");
    read_external(t, nbytes, ct->bytes, prefix, lim, ext);
    return ct;
  }
  if (t.has_raw_data()) {
    if (typed_fields) fail("holds both raw_data and typed data");
    if (static_cast<int64_t>(t.raw_data().size()) != nbytes)
      fail("raw_data holds " + std::to_string(t.raw_data().size()) + " bytes, expected " + std::to_string(nbytes) +
           " for " + what);
    ct->bytes.assign(t.raw_data().begin(), t.raw_data().end());
    return ct;
  }
  read_typed(t, info.dtype, numel, nbytes, typed, what, prefix, ct->bytes);
  return ct;
}

// ---------------------------------------------------------------------------------------------
// Op table

bool is_default_domain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

// ---------------------------------------------------------------------------------------------
// The importer

constexpr int64_t kMinOpset = 11;
constexpr int64_t kMaxOpset = 21;
constexpr int64_t kMaxAttrValue = int64_t{1} << 20;  // kernel, stride, dilation, pad sanity cap

struct Pending {
  std::string name;
  std::string op_type;
  const OpSpec* spec = nullptr;
  std::vector<std::string> inputs;   // "" = omitted optional input
  std::vector<std::string> outputs;  // trailing omitted outputs dropped
  std::map<std::string, Attribute> attrs;
};

class Importer {
 public:
  Importer(const std::string& source, const ImportLimits& lim, ExternalContext ext = {})
      : src_(source), lim_(lim), ext_(std::move(ext)) {}

  ir::Graph run(const void* data, size_t size);

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error(src_ + ": " + what); }
  [[noreturn]] void node_fail(const Pending& n, const std::string& what) const {
    throw Error(src_ + ": node " + quote(n.name) + " (" + printable(n.op_type) + "): " + what);
  }
  std::string node_prefix(const Pending& n) const {
    return src_ + ": node " + quote(n.name) + " (" + printable(n.op_type) + ")";
  }

  void check_opset(const ::onnx::ModelProto& m);
  Pending parse_node(const ::onnx::NodeProto& np, int index);
  Attribute convert_attr(const Pending& n, const ::onnx::AttributeProto& a, Kind want);
  void check_attrs(Pending& n);
  void check_conv_pool(Pending& n);
  void check_conv_transpose(Pending& n);
  void convert_constant(Pending& n);
  std::vector<int> topo_sort(const std::vector<Pending>& nodes, const std::unordered_set<std::string>& known);
  ConstTensorPtr const_of(int value) const;
  void check_const_operands(const ir::Graph& g, const std::vector<Pending>& pend, const std::vector<int>& order);

  // The steps of run().
  void prescan(const void* data, size_t size);
  int add_value(ir::Value v);
  std::vector<std::string> convert_initializers(::onnx::GraphProto& gp,
                                                std::unordered_map<std::string, ConstTensorPtr>& inits);
  void add_inputs(const ::onnx::GraphProto& gp, const std::unordered_map<std::string, ConstTensorPtr>& inits,
                  std::unordered_set<std::string>& known);
  std::vector<Pending> parse_nodes(const ::onnx::GraphProto& gp, const std::unordered_set<std::string>& known,
                                   std::unordered_set<std::string>& produced);
  void expand_split(const ::onnx::NodeProto& np, int index,
                    const std::unordered_map<std::string, ConstTensorPtr>& constant_nodes, std::vector<Pending>& pend);
  void add_nodes(std::vector<Pending>& pend, const std::vector<int>& order);
  void add_outputs(const ::onnx::GraphProto& gp, const std::unordered_set<std::string>& known,
                   const std::unordered_set<std::string>& produced);

  const std::string& src_;
  const ImportLimits& lim_;
  ExternalContext ext_;
  int64_t opset_ = 0;
  // value id -> constant tensor (initializers and Constant outputs), for operand checks.
  std::unordered_map<int, ConstTensorPtr> consts_;
  ir::Graph g_;                               // the graph run() builds
  std::unordered_map<std::string, int> ids_;  // value name -> id in g_
};

void Importer::check_opset(const ::onnx::ModelProto& m) {
  bool found = false;
  for (const auto& os : m.opset_import()) {
    if (!os.domain().empty() && os.domain() != "ai.onnx") continue;  // other domains: nodes are refused
    if (found) fail("the default-domain opset is imported twice");
    found = true;
    opset_ = os.version();
  }
  if (!found) fail("the model imports no default-domain (ai.onnx) opset");
  if (opset_ < kMinOpset || opset_ > kMaxOpset)
    fail("opset " + std::to_string(opset_) + " is not supported (q8 reads opsets " + std::to_string(kMinOpset) +
         " to " + std::to_string(kMaxOpset) + "; re-export the model, e.g. torch.onnx.export(..., opset_version=17))");
}

Attribute Importer::convert_attr(const Pending& n, const ::onnx::AttributeProto& a, Kind want) {
  using AP = ::onnx::AttributeProto;
  int type = a.type();
  if (type == AP::UNDEFINED) {  // very old writers left the discriminator out: infer it
    if (a.has_f())
      type = AP::FLOAT;
    else if (a.has_i())
      type = AP::INT;
    else if (a.has_s())
      type = AP::STRING;
    else if (a.has_t())
      type = AP::TENSOR;
    else if (a.floats_size())
      type = AP::FLOATS;
    else if (a.ints_size())
      type = AP::INTS;
  }
  Kind have;
  switch (type) {
    case AP::INT: have = Kind::Int; break;
    case AP::FLOAT: have = Kind::Float; break;
    case AP::INTS: have = Kind::Ints; break;
    case AP::FLOATS: have = Kind::Floats; break;
    case AP::STRING: have = Kind::String; break;
    case AP::TENSOR: have = Kind::Tensor; break;
    default:
      node_fail(n,
                "attribute " + quote(a.name()) + " has type " + attr_type_name(type) + ", expected " + kind_name(want));
  }
  if (have != want)
    node_fail(n, "attribute " + quote(a.name()) + " must be " + kind_name(want) + ", got " + kind_name(have));
  Attribute out;
  out.kind = have;
  switch (have) {
    case Kind::Int: out.i = a.i(); break;
    case Kind::Float: out.f = a.f(); break;
    case Kind::Ints: out.ints.assign(a.ints().begin(), a.ints().end()); break;
    case Kind::Floats: out.floats.assign(a.floats().begin(), a.floats().end()); break;
    case Kind::String: out.s = a.s(); break;
    case Kind::Tensor:
      if (!a.has_t()) node_fail(n, "attribute " + quote(a.name()) + " holds no tensor");
      out.t = convert_tensor(a.t(), node_prefix(n) + ": attribute " + quote(a.name()), lim_, &ext_);
      break;
  }
  return out;
}

Pending Importer::parse_node(const ::onnx::NodeProto& np, int index) {
  Pending n;
  n.op_type = np.op_type();
  n.name = np.name().empty() ? np.op_type() + "_" + std::to_string(index) : np.name();
  if (!is_default_domain(np.domain()) && np.domain() != "com.microsoft")
    node_fail(n, "domain " + quote(np.domain()) + " is not supported (only ONNX's and ONNX Runtime's com.microsoft)");
  if (n.op_type.empty()) node_fail(n, "node has no op_type");
  n.spec = find_op(n.op_type, is_default_domain(np.domain()) ? "" : np.domain());
  if (!n.spec)
    node_fail(n, "unsupported op " + quote(is_default_domain(np.domain()) ? n.op_type : np.domain() + "." + n.op_type));
  const OpSpec& s = *n.spec;

  n.inputs.assign(np.input().begin(), np.input().end());
  n.outputs.assign(np.output().begin(), np.output().end());
  while (!n.outputs.empty() && n.outputs.back().empty()) n.outputs.pop_back();  // omitted optional outputs
  for (const std::string& o : n.outputs)
    if (o.empty()) node_fail(n, "an output in the middle of the list has an empty name");

  int max_in = s.max_in;
  if (s.op == ir::Op::Dropout && opset_ < 12) max_in = 1;  // ratio became an input in opset 12
  auto range = [](int lo, int hi, const char* what) {
    std::string r = lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi);
    return r + " " + what + (hi == 1 ? "" : "s");
  };
  const int nin = static_cast<int>(n.inputs.size()), nout = static_cast<int>(n.outputs.size());
  if (nin < s.min_in || nin > max_in)
    node_fail(n, "expects " + range(s.min_in, max_in, "input") + ", got " + std::to_string(nin));
  for (int i = 0; i < s.min_in; ++i)
    if (n.inputs[i].empty() && std::find(s.optional_in.begin(), s.optional_in.end(), i) == s.optional_in.end())
      node_fail(n, "required input " + std::to_string(i) + " is empty");
  if (nout < s.min_out || nout > s.max_out)
    node_fail(n, "expects " + range(s.min_out, s.max_out, "output") + ", got " + std::to_string(nout));
  if (nout > 1) {
    switch (s.op) {
      case ir::Op::MaxPool: node_fail(n, "the Indices output is not supported");
      case ir::Op::Dropout: node_fail(n, "the mask output is not supported");
      case ir::Op::BatchNormalization:
        node_fail(n, "training outputs (running mean/var) are not supported; export the model in eval mode");
      case ir::Op::Conv:
      case ir::Op::Relu:
      case ir::Op::Clip:
      case ir::Op::AveragePool:
      case ir::Op::GlobalAveragePool:
      case ir::Op::Flatten:
      case ir::Op::Gemm:
      case ir::Op::MatMul:
      case ir::Op::Add:
      case ir::Op::Identity:
      case ir::Op::Constant:
      case ir::Op::Reshape:
      case ir::Op::Pad:
      case ir::Op::QuantizeLinear:
      case ir::Op::DequantizeLinear:
      case ir::Op::QLinearConv:
      case ir::Op::QLinearMatMul:
      case ir::Op::QLinearAdd:
      case ir::Op::QLinearGlobalAveragePool:
      case ir::Op::QGemm:
      case ir::Op::QuantizedConv:
      case ir::Op::QuantizedDense:
      case ir::Op::QuantizedAdd:
      case ir::Op::Concat:
      case ir::Op::Shape:
      case ir::Op::Gather:
      case ir::Op::Cast:
      case ir::Op::ConstantOfShape:
      case ir::Op::Unsqueeze:
      case ir::Op::Squeeze:
      case ir::Op::Slice:
      case ir::Op::Transpose:
      case ir::Op::Resize:
      case ir::Op::ConvTranspose: node_fail(n, "expects 1 output, got " + std::to_string(nout));
      case ir::Op::Mul:
      case ir::Op::Sub:
      case ir::Op::Div:
      case ir::Op::Pow:
      case ir::Op::ReduceMean:
      case ir::Op::Softmax:
      case ir::Op::LogSoftmax:
      case ir::Op::QuantizedMul:
      case ir::Op::QuantizedDenseFloat:
      case ir::Op::QuantizedConvTranspose:
      case ir::Op::Gelu:
      case ir::Op::QLinearConcat:
      case ir::Op::QLinearMul:
      case ir::Op::QLinearAveragePool:
      case ir::Op::QuantizedConvFloat:
      case ir::Op::ChannelShuffle: node_fail(n, "expects 1 output, got " + std::to_string(nout));
      case ir::Op::LayerNormalization: break;  // Mean and InvStdDev
      case ir::Op::Sigmoid:
      case ir::Op::Tanh:
      case ir::Op::HardSigmoid:
      case ir::Op::HardSwish:
      case ir::Op::LeakyRelu:
      case ir::Op::Elu:
      case ir::Op::Erf:
      case ir::Op::Sqrt:
      case ir::Op::Exp:
      case ir::Op::Silu:
      case ir::Op::QLinearSigmoid:
      case ir::Op::QLinearLeakyRelu: node_fail(n, "expects 1 output, got " + std::to_string(nout));
    }
  }

  for (const auto& a : np.attribute()) {
    if (!a.ref_attr_name().empty())
      node_fail(n, "attribute " + quote(a.name()) + " refers to a function attribute; not supported");
    if (a.name().empty()) node_fail(n, "an attribute has no name");
    const AttrSpec* as = nullptr;
    for (const AttrSpec& c : s.attrs)
      if (a.name() == c.name) as = &c;
    if (s.op == ir::Op::Constant &&
        (a.name() == "sparse_value" || a.name() == "value_string" || a.name() == "value_strings"))
      node_fail(n, "attribute " + quote(a.name()) + " is not supported (only dense numeric constants are)");
    if (!as || opset_ < as->min_opset || opset_ > as->max_opset)
      node_fail(n, "unknown attribute " + quote(a.name()) + " for " + s.onnx + " in opset " + std::to_string(opset_));
    if (n.attrs.count(a.name())) node_fail(n, "attribute " + quote(a.name()) + " is given twice");
    n.attrs[a.name()] = convert_attr(n, a, as->kind);
  }
  check_attrs(n);
  return n;
}

void Importer::check_conv_pool(Pending& n) {
  const bool conv = n.spec->op == ir::Op::Conv || n.spec->op == ir::Op::QLinearConv;
  const char* what = conv ? "convolution" : "pooling";
  auto ints = [&](const char* k) -> const std::vector<int64_t>* {
    auto it = n.attrs.find(k);
    return it == n.attrs.end() ? nullptr : &it->second.ints;
  };
  if (const auto* ks = ints("kernel_shape")) {
    if (ks->size() != 2)
      node_fail(n, "only 2-D " + std::string(what) + " is supported (kernel_shape has " + std::to_string(ks->size()) +
                       " values)");
  } else if (!conv) {
    node_fail(n, "missing required attribute 'kernel_shape'");
  }
  auto check_list = [&](const char* k, size_t len, int64_t lo) {
    const auto* v = ints(k);
    if (!v) return;
    if (v->size() != len)
      node_fail(n, "attribute '" + std::string(k) + "' has " + std::to_string(v->size()) + " values, expected " +
                       std::to_string(len) + " (only 2-D " + what + " is supported)");
    for (int64_t x : *v)
      if (x < lo || x > kMaxAttrValue)
        node_fail(n, "attribute '" + std::string(k) + "' value " + std::to_string(x) + " is out of range [" +
                         std::to_string(lo) + ", " + std::to_string(kMaxAttrValue) + "]");
  };
  check_list("kernel_shape", 2, 1);
  check_list("strides", 2, 1);
  check_list("dilations", 2, 1);
  check_list("pads", 4, 0);
  auto it = n.attrs.find("auto_pad");
  if (it != n.attrs.end()) {
    const std::string& ap = it->second.s;
    if (ap != "NOTSET" && ap != "SAME_UPPER" && ap != "SAME_LOWER" && ap != "VALID")
      node_fail(n, "attribute 'auto_pad' is " + quote(ap) + ", expected NOTSET, SAME_UPPER, SAME_LOWER or VALID");
    if (ap != "NOTSET")
      if (const auto* p = ints("pads"))
        for (int64_t x : *p)
          if (x != 0) node_fail(n, "explicit 'pads' cannot be combined with auto_pad=" + ap);
  }
  auto flag = [&](const char* k, int64_t hi) {
    auto f = n.attrs.find(k);
    if (f != n.attrs.end() && (f->second.i < 0 || f->second.i > hi))
      node_fail(n, "attribute '" + std::string(k) + "' is " + std::to_string(f->second.i) +
                       (hi == 0 ? ", only 0 is supported" : ", expected 0 or 1"));
  };
  flag("ceil_mode", 1);
  flag("count_include_pad", 1);
  flag("storage_order", 0);
  if (conv) {
    auto g = n.attrs.find("group");
    if (g != n.attrs.end() && (g->second.i < 1 || g->second.i > kMaxAttrValue))
      node_fail(n, "attribute 'group' is " + std::to_string(g->second.i) + ", expected >= 1");
  }
}

void Importer::check_conv_transpose(Pending& n) {
  auto check_list = [&](const char* k, std::initializer_list<size_t> lens, int64_t lo) {
    auto it = n.attrs.find(k);
    if (it == n.attrs.end()) return;
    const std::vector<int64_t>& v = it->second.ints;
    if (std::find(lens.begin(), lens.end(), v.size()) == lens.end())
      node_fail(n, "attribute '" + std::string(k) + "' has " + std::to_string(v.size()) +
                       " values (only 2-D transposed convolution is supported)");
    for (int64_t x : v)
      if (x < lo || x > kMaxAttrValue)
        node_fail(n, "attribute '" + std::string(k) + "' value " + std::to_string(x) + " is out of range [" +
                         std::to_string(lo) + ", " + std::to_string(kMaxAttrValue) + "]");
  };
  check_list("kernel_shape", {2}, 1);
  check_list("strides", {2}, 1);
  check_list("dilations", {2}, 1);
  check_list("pads", {4}, 0);
  check_list("output_padding", {2}, 0);
  check_list("output_shape", {2, 4}, 1);
  auto ap = n.attrs.find("auto_pad");
  if (ap != n.attrs.end() && ap->second.s != "NOTSET" && ap->second.s != "SAME_UPPER" && ap->second.s != "SAME_LOWER" &&
      ap->second.s != "VALID")
    node_fail(n, "attribute 'auto_pad' is " + quote(printable(ap->second.s)) +
                     ", expected NOTSET, SAME_UPPER, SAME_LOWER or VALID");
  auto g = n.attrs.find("group");
  if (g != n.attrs.end() && (g->second.i < 1 || g->second.i > kMaxAttrValue))
    node_fail(n, "attribute 'group' is " + std::to_string(g->second.i) + ", expected >= 1");
}

void Importer::check_attrs(Pending& n) {
  auto& A = n.attrs;
  auto finite = [&](const char* k) {
    auto it = A.find(k);
    if (it != A.end() && !std::isfinite(it->second.f)) node_fail(n, "attribute '" + std::string(k) + "' is not finite");
  };
  auto flag01 = [&](const char* k) {
    auto it = A.find(k);
    if (it != A.end() && it->second.i != 0 && it->second.i != 1)
      node_fail(n, "attribute '" + std::string(k) + "' is " + std::to_string(it->second.i) + ", expected 0 or 1");
  };
  switch (n.spec->op) {
    case ir::Op::Conv:
    case ir::Op::QLinearConv:
    case ir::Op::MaxPool:
    case ir::Op::AveragePool: check_conv_pool(n); break;
    case ir::Op::QGemm:
      finite("alpha");
      flag01("transA");
      flag01("transB");
      break;
    case ir::Op::QuantizeLinear: {
      auto it = A.find("saturate");
      if (it != A.end() && it->second.i != 1) node_fail(n, "saturate=0 applies to float8 only and is not supported");
      break;
    }
    case ir::Op::QLinearGlobalAveragePool: flag01("channels_last"); break;
    case ir::Op::Flatten: {
      auto it = A.find("axis");
      if (it != A.end() && (it->second.i < -lim_.max_rank || it->second.i > lim_.max_rank))
        node_fail(n, "attribute 'axis' is " + std::to_string(it->second.i) + ", out of range");
      break;
    }
    case ir::Op::Gemm:
      finite("alpha");
      finite("beta");
      flag01("transA");
      flag01("transB");
      break;
    case ir::Op::BatchNormalization: {
      finite("epsilon");
      finite("momentum");
      auto e = A.find("epsilon");
      if (e != A.end() && e->second.f < 0) node_fail(n, "attribute 'epsilon' is negative");
      auto t = A.find("training_mode");
      if (t != A.end() && t->second.i != 0)
        node_fail(n,
                  "training_mode=" + std::to_string(t->second.i) + " is not supported; export the model in eval mode");
      break;
    }
    case ir::Op::Dropout: {
      auto r = A.find("ratio");
      if (r != A.end() && !(r->second.f >= 0.f && r->second.f < 1.f))
        node_fail(n, "attribute 'ratio' must be in [0, 1)");
      break;
    }
    case ir::Op::Reshape: flag01("allowzero"); break;
    case ir::Op::Pad: {
      auto m = A.find("mode");
      if (m != A.end() && m->second.s != "constant" && m->second.s != "reflect" && m->second.s != "edge" &&
          m->second.s != "wrap")
        node_fail(n, "attribute 'mode' is '" + printable(m->second.s) + "', not constant, reflect, edge or wrap");
      break;
    }
    case ir::Op::Constant: convert_constant(n); break;
    case ir::Op::Relu:
    case ir::Op::Clip:
    case ir::Op::GlobalAveragePool:
    case ir::Op::MatMul:
    case ir::Op::Add:
    case ir::Op::Identity:
    case ir::Op::DequantizeLinear:
    case ir::Op::QLinearMatMul:
    case ir::Op::QLinearAdd:
    case ir::Op::QuantizedConv:
    case ir::Op::QuantizedDense:
    case ir::Op::QuantizedAdd:
    case ir::Op::Concat:
    case ir::Op::Shape:
    case ir::Op::Gather:
    case ir::Op::Cast:
    case ir::Op::ConstantOfShape:
    case ir::Op::Unsqueeze:
    case ir::Op::Squeeze:
    case ir::Op::Slice:
    case ir::Op::Transpose: break;
    case ir::Op::Resize: break;  // checked by its shape rule (resize_geometry)
    case ir::Op::ConvTranspose: check_conv_transpose(n); break;
    case ir::Op::Mul:
    case ir::Op::Sub:
    case ir::Op::Div:
    case ir::Op::Pow:
    case ir::Op::Softmax:
    case ir::Op::LogSoftmax:
    case ir::Op::QuantizedMul:
    case ir::Op::QuantizedDenseFloat:
    case ir::Op::QuantizedConvTranspose:
    case ir::Op::Gelu:
    case ir::Op::QLinearConcat:
    case ir::Op::QLinearMul:
    case ir::Op::QuantizedConvFloat:
    case ir::Op::ChannelShuffle: break;
    case ir::Op::QLinearAveragePool:
      check_conv_pool(n);
      flag01("channels_last");
      break;
    case ir::Op::ReduceMean:
      flag01("keepdims");
      flag01("noop_with_empty_axes");
      break;
    case ir::Op::LayerNormalization: {
      finite("epsilon");
      auto e = A.find("epsilon");
      if (e != A.end() && !(e->second.f > 0.f)) node_fail(n, "attribute 'epsilon' must be positive");
      auto st = A.find("stash_type");
      if (st != A.end() && st->second.i != 1)
        node_fail(n, "stash_type=" + std::to_string(st->second.i) + " is not supported (only 1, float32)");
      break;
    }
    case ir::Op::Tanh:
    case ir::Op::HardSwish:
    case ir::Op::Erf:
    case ir::Op::Sqrt:
    case ir::Op::Exp:
    case ir::Op::Sigmoid:
    case ir::Op::Silu:
    case ir::Op::QLinearSigmoid: break;
    case ir::Op::HardSigmoid:
      finite("alpha");
      finite("beta");
      break;
    case ir::Op::LeakyRelu:
    case ir::Op::Elu:
    case ir::Op::QLinearLeakyRelu: finite("alpha"); break;
  }
}

// A Constant's value_float(s) / value_int(s) attribute becomes the tensor attribute 'value'.
void Importer::convert_constant(Pending& n) {
  auto& A = n.attrs;
  if (A.size() != 1) node_fail(n, "expects exactly one value attribute, got " + std::to_string(A.size()));
  const std::string key = A.begin()->first;
  Attribute a = A.begin()->second;
  auto ct = std::make_shared<ConstTensor>();
  if (key == "value") {
    return;  // already a converted tensor
  } else if (key == "value_float") {
    ct->dtype = DType::Float32;
    ct->bytes.resize(4);
    std::memcpy(ct->bytes.data(), &a.f, 4);
  } else if (key == "value_floats") {
    ct->dtype = DType::Float32;
    ct->dims = {static_cast<int64_t>(a.floats.size())};
    ct->bytes.resize(a.floats.size() * 4);
    if (!a.floats.empty()) std::memcpy(ct->bytes.data(), a.floats.data(), ct->bytes.size());
  } else if (key == "value_int") {
    ct->dtype = DType::Int64;
    ct->bytes.resize(8);
    std::memcpy(ct->bytes.data(), &a.i, 8);
  } else if (key == "value_ints") {
    ct->dtype = DType::Int64;
    ct->dims = {static_cast<int64_t>(a.ints.size())};
    ct->bytes.resize(a.ints.size() * 8);
    if (!a.ints.empty()) std::memcpy(ct->bytes.data(), a.ints.data(), ct->bytes.size());
  }
  Attribute v;
  v.kind = Kind::Tensor;
  v.t = ct;
  A.clear();
  A["value"] = v;
}

std::vector<int> Importer::topo_sort(const std::vector<Pending>& nodes, const std::unordered_set<std::string>& known) {
  const int n = static_cast<int>(nodes.size());
  std::unordered_map<std::string, int> producer;
  producer.reserve(nodes.size() * 2);
  for (int i = 0; i < n; ++i)
    for (const std::string& o : nodes[i].outputs) producer.emplace(o, i);  // uniqueness checked by caller

  std::vector<std::vector<int>> users(n);
  std::vector<int> pending(n, 0);
  for (int i = 0; i < n; ++i) {
    std::vector<int> deps;
    for (const std::string& in : nodes[i].inputs) {
      if (in.empty()) continue;
      auto it = producer.find(in);
      if (it != producer.end()) {
        deps.push_back(it->second);
      } else if (!known.count(in)) {
        node_fail(nodes[i], "input " + quote(in) + " is not a graph input, an initializer or the output of any node");
      }
    }
    std::sort(deps.begin(), deps.end());
    deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
    pending[i] = static_cast<int>(deps.size());
    for (int d : deps) users[d].push_back(i);
  }
  // Kahn's algorithm, always taking the ready node that comes first in the file.
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (int i = 0; i < n; ++i)
    if (pending[i] == 0) ready.push(i);
  std::vector<int> order;
  order.reserve(nodes.size());
  std::vector<char> done(n, 0);
  while (!ready.empty()) {
    int i = ready.top();
    ready.pop();
    order.push_back(i);
    done[i] = 1;
    for (int u : users[i])
      if (--pending[u] == 0) ready.push(u);
  }
  if (static_cast<int>(order.size()) != n) {
    // Every node left waits on another node left: walk back along such inputs until a node repeats;
    // that node lies on a cycle.
    int cur = 0;
    while (done[cur]) ++cur;
    std::vector<char> seen(n, 0);
    std::string via;
    while (!seen[cur]) {
      seen[cur] = 1;
      for (const std::string& in : nodes[cur].inputs) {
        auto it = in.empty() ? producer.end() : producer.find(in);
        if (it != producer.end() && !done[it->second]) {
          cur = it->second;
          via = in;
          break;
        }
      }
    }
    // Name the input of `cur` that closes the cycle.
    for (const std::string& in : nodes[cur].inputs) {
      auto it = in.empty() ? producer.end() : producer.find(in);
      if (it != producer.end() && !done[it->second]) {
        via = in;
        break;
      }
    }
    node_fail(nodes[cur], "the graph has a cycle: input " + quote(via) + " depends on this node's own output");
  }
  return order;
}

ConstTensorPtr Importer::const_of(int value) const {
  if (value < 0) return nullptr;
  auto it = consts_.find(value);
  return it == consts_.end() ? nullptr : it->second;
}

void Importer::check_const_operands(const ir::Graph& g, const std::vector<Pending>& pend,
                                    const std::vector<int>& order) {
  for (size_t k = 0; k < g.nodes.size(); ++k) {
    const ir::Node& node = g.nodes[k];
    const Pending& n = pend[order[k]];
    auto in = [&](size_t i) { return i < node.inputs.size() ? const_of(node.inputs[i]) : nullptr; };
    switch (node.op) {
      case ir::Op::Conv:
        if (auto w = in(1)) {
          if (w->dims.size() != 4)
            node_fail(n, "only 2-D convolution is supported (weight has rank " + std::to_string(w->dims.size()) + ")");
          if (w->dtype != DType::Float32)
            node_fail(n, "weight is " + std::string(ir::dtype_name(w->dtype)) + ", expected float32");
        }
        if (auto b = in(2))
          if (b->dims.size() != 1) node_fail(n, "bias has rank " + std::to_string(b->dims.size()) + ", expected 1");
        break;
      case ir::Op::Clip:
        for (size_t i = 1; i < 3; ++i)
          if (auto c = in(i))
            if (c->dtype != DType::Float32 || c->bytes.size() != 4)
              node_fail(n, std::string(i == 1 ? "min" : "max") + " must be a float32 scalar, got " +
                               ir::dtype_name(c->dtype) + " " + dims_str(c->dims));
        break;
      case ir::Op::Reshape:
        if (auto s = in(1))
          if (s->dtype != DType::Int64 || s->dims.size() != 1)
            node_fail(n, "shape must be a 1-D int64 tensor, got " + std::string(ir::dtype_name(s->dtype)) + " " +
                             dims_str(s->dims));
        break;
      case ir::Op::ConvTranspose:
        if (auto w = in(1)) {
          if (w->dims.size() != 4)
            node_fail(n, "only 2-D transposed convolution is supported (weight has rank " +
                             std::to_string(w->dims.size()) + ")");
          if (w->dtype != DType::Float32)
            node_fail(n, "weight is " + std::string(ir::dtype_name(w->dtype)) + ", expected float32");
        }
        break;
      case ir::Op::Dropout:
        if (node.inputs.size() > 2 && node.inputs[2] != ir::kNoValue) {
          auto t = in(2);
          bool ok = t != nullptr;
          if (t)
            for (uint8_t b : t->bytes) ok = ok && b == 0;
          if (!ok) node_fail(n, "training_mode must be a constant false");
        }
        break;
      case ir::Op::Relu:
      case ir::Op::MaxPool:
      case ir::Op::AveragePool:
      case ir::Op::GlobalAveragePool:
      case ir::Op::Flatten:
      case ir::Op::Gemm:
      case ir::Op::MatMul:
      case ir::Op::Add:
      case ir::Op::BatchNormalization:
      case ir::Op::Identity:
      case ir::Op::Constant:
      case ir::Op::Pad:
      case ir::Op::QuantizeLinear:
      case ir::Op::DequantizeLinear:
      case ir::Op::QLinearConv:
      case ir::Op::QLinearMatMul:
      case ir::Op::QLinearAdd:
      case ir::Op::QLinearGlobalAveragePool:
      case ir::Op::QGemm:
      case ir::Op::QuantizedConv:
      case ir::Op::QuantizedDense:
      case ir::Op::QuantizedAdd:
      case ir::Op::Concat:
      case ir::Op::Shape:
      case ir::Op::Gather:
      case ir::Op::Cast:
      case ir::Op::ConstantOfShape:
      case ir::Op::Unsqueeze:
      case ir::Op::Squeeze:
      case ir::Op::Slice:
      case ir::Op::Transpose:
      case ir::Op::Resize:
      case ir::Op::Mul:
      case ir::Op::Sub:
      case ir::Op::Div:
      case ir::Op::Pow:
      case ir::Op::ReduceMean:
      case ir::Op::Softmax:
      case ir::Op::LogSoftmax:
      case ir::Op::LayerNormalization:
      case ir::Op::QuantizedMul:
      case ir::Op::Sigmoid:
      case ir::Op::Tanh:
      case ir::Op::HardSigmoid:
      case ir::Op::HardSwish:
      case ir::Op::LeakyRelu:
      case ir::Op::Elu:
      case ir::Op::Erf:
      case ir::Op::Sqrt:
      case ir::Op::Exp:
      case ir::Op::Silu:
      case ir::Op::QLinearSigmoid:
      case ir::Op::QLinearLeakyRelu:
      case ir::Op::QuantizedDenseFloat:
      case ir::Op::QuantizedConvTranspose:
      case ir::Op::Gelu:
      case ir::Op::QLinearConcat:
      case ir::Op::QLinearMul:
      case ir::Op::QLinearAveragePool:
      case ir::Op::QuantizedConvFloat:
      case ir::Op::ChannelShuffle: break;
    }
  }
}

// Size limits, then the pre-scan of the wire format and its budget.
void Importer::prescan(const void* data, size_t size) {
  if (static_cast<uint64_t>(size) > static_cast<uint64_t>(lim_.max_file_bytes))
    fail("file of " + std::to_string(size) + " bytes exceeds the limit of " + std::to_string(lim_.max_file_bytes) +
         " bytes");
  if (size > static_cast<size_t>(INT_MAX)) fail("file of " + std::to_string(size) + " bytes is too large for protobuf");
  if (size == 0) fail("not an ONNX model (the file is empty)");
  if (!data) fail("not an ONNX model (no data)");

  ScanBudget budget;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  // Wire data the scan cannot walk (including groups, which ONNX never uses) is refused here, so
  // nothing reaches the parser unmeasured.
  if (!scan(p, p + size, M::Model, 0, budget)) fail("not an ONNX model (protobuf parse failed)");
  if (budget.nodes > static_cast<uint64_t>(lim_.max_nodes))
    fail("the model has " + std::to_string(budget.nodes) + " nodes, more than the limit of " +
         std::to_string(lim_.max_nodes));
  const uint64_t allowed = 8 * static_cast<uint64_t>(size) + (uint64_t{64} << 20);
  if (budget.estimate > allowed)
    fail("the file would need about " + std::to_string(budget.estimate >> 20) + " MiB to parse (" +
         std::to_string(budget.messages) + " messages in " + std::to_string(size) +
         " bytes); refusing it as malformed");
}

int Importer::add_value(ir::Value v) {
  std::string name = v.name;
  int id = g_.add_value(std::move(v));
  ids_[name] = id;
  return id;
}

// Initializers, converted first so a graph input that shares a name is known to be constant.
// Returns their names in file order.
std::vector<std::string> Importer::convert_initializers(::onnx::GraphProto& gp,
                                                        std::unordered_map<std::string, ConstTensorPtr>& inits) {
  std::vector<std::string> init_order;
  for (int i = 0; i < gp.initializer_size(); ++i) {
    ::onnx::TensorProto& t = *gp.mutable_initializer(i);
    if (t.name().empty()) fail("initializer " + std::to_string(i) + " has no name");
    if (inits.count(t.name())) fail("initializer " + quote(t.name()) + " is defined twice");
    ConstTensorPtr ct = convert_tensor(t, src_ + ": initializer " + quote(t.name()), lim_, &ext_);
    std::string().swap(*t.mutable_raw_data());  // keep peak memory near one copy of the weights
    inits.emplace(t.name(), ct);
    init_order.push_back(t.name());
  }
  return init_order;
}

// Runtime inputs: float32 tensors with a shape. Each name goes into `known`.
void Importer::add_inputs(const ::onnx::GraphProto& gp, const std::unordered_map<std::string, ConstTensorPtr>& inits,
                          std::unordered_set<std::string>& known) {
  for (const auto& vi : gp.input()) {
    const std::string& name = vi.name();
    if (name.empty()) fail("a graph input has no name");
    if (known.count(name)) fail("graph input " + quote(name) + " is listed twice");
    known.insert(name);
    if (inits.count(name)) continue;  // an input with an initializer is a constant
    const std::string pre = "graph input " + quote(name) + ": ";
    if (!vi.has_type() || !vi.type().has_tensor_type()) fail(pre + "is not a tensor");
    const auto& tt = vi.type().tensor_type();
    if (tt.elem_type() != ::onnx::TensorProto_DataType_FLOAT)
      fail(pre + "has type " + onnx_dtype_name(tt.elem_type()) + ", only float32 inputs are supported");
    if (!tt.has_shape()) fail(pre + "has no shape");
    if (tt.shape().dim_size() > lim_.max_rank)
      fail(pre + "rank " + std::to_string(tt.shape().dim_size()) + " exceeds the limit of " +
           std::to_string(lim_.max_rank));
    ir::Value v;
    v.name = name;
    v.dtype = DType::Float32;
    v.has_shape = true;
    for (const auto& d : tt.shape().dim()) {
      if (d.has_dim_value()) {
        // 0 is a legal (empty) extent; negative extents are not.
        if (d.dim_value() < 0) fail(pre + "negative dimension " + std::to_string(d.dim_value()));
        v.shape.push_back(d.dim_value());
      } else {
        v.shape.push_back(ir::kUnknownDim);
      }
    }
    g_.inputs.push_back(add_value(std::move(v)));
  }
}

// Nodes, checked in file order. The outputs' names go into `produced`.
std::vector<Pending> Importer::parse_nodes(const ::onnx::GraphProto& gp, const std::unordered_set<std::string>& known,
                                           std::unordered_set<std::string>& produced) {
  std::vector<Pending> pend;
  pend.reserve(static_cast<size_t>(gp.node_size()));
  std::unordered_map<std::string, ConstTensorPtr> constant_nodes;  // output -> value, for Split's sizes
  for (int i = 0; i < gp.node_size(); ++i) {
    const size_t first = pend.size();
    if (gp.node(i).op_type() == "Split" && is_default_domain(gp.node(i).domain())) {
      expand_split(gp.node(i), i, constant_nodes, pend);
    } else {
      pend.push_back(parse_node(gp.node(i), i));
      const Pending& n = pend.back();
      if (n.spec->op == ir::Op::Constant && n.outputs.size() == 1) constant_nodes[n.outputs[0]] = n.attrs.at("value").t;
    }
    for (size_t k = first; k < pend.size(); ++k)
      for (const std::string& o : pend[k].outputs) {
        if (known.count(o)) node_fail(pend[k], "output " + quote(o) + " has the name of a graph input or initializer");
        if (!produced.insert(o).second) node_fail(pend[k], "output " + quote(o) + " is produced by more than one node");
      }
  }
  return pend;
}

// Split has several outputs, and q8's ops one each: the importer writes it as one Slice per
// output, named NAME:i, along the same axis (what Model::save and `q8 quantize` then write too).
// The sizes are the "split" attribute (opset < 13) or a constant second input; without them the
// axis is cut into parts of ceil(d / outputs) (the last may be shorter, as opset 18's num_outputs
// says), computed from Shape as torch.onnx.export writes chunk(). The last Slice carries
// "split_total", the sizes' sum, which its shape rule checks against the axis (shape_ops.cpp).
void Importer::expand_split(const ::onnx::NodeProto& np, int index,
                            const std::unordered_map<std::string, ConstTensorPtr>& constant_nodes,
                            std::vector<Pending>& pend) {
  Pending split;
  split.op_type = np.op_type();
  split.name = np.name().empty() ? np.op_type() + "_" + std::to_string(index) : np.name();
  const size_t n_in = static_cast<size_t>(np.input_size()), n_out = static_cast<size_t>(np.output_size());
  if (n_in < 1 || n_in > (opset_ < 13 ? 1u : 2u) || np.input(0).empty())
    node_fail(split, "expects " + std::string(opset_ < 13 ? "1 input" : "1 or 2 inputs (the second the sizes)") +
                         ", got " + std::to_string(n_in));
  if (n_out < 1) node_fail(split, "has no outputs");
  for (const std::string& o : np.output())
    if (o.empty()) node_fail(split, "an output has an empty name");
  if (n_out > static_cast<size_t>(lim_.max_nodes))
    node_fail(split, "has " + std::to_string(n_out) + " outputs, more than the limit of " +
                         std::to_string(lim_.max_nodes) + " nodes");
  int64_t axis = 0;
  std::vector<int64_t> sizes;
  bool have_sizes = false;
  for (const auto& a : np.attribute()) {
    if (a.name() == "axis") {
      axis = convert_attr(split, a, Kind::Int).i;
    } else if (a.name() == "split" && opset_ < 13) {
      sizes = convert_attr(split, a, Kind::Ints).ints;
      have_sizes = true;
    } else if (a.name() == "num_outputs" && opset_ >= 18) {
      const int64_t k = convert_attr(split, a, Kind::Int).i;
      if (k != static_cast<int64_t>(n_out))
        node_fail(split,
                  "num_outputs is " + std::to_string(k) + " but the node has " + std::to_string(n_out) + " outputs");
    } else {
      node_fail(split, "unknown attribute " + quote(a.name()) + " for Split in opset " + std::to_string(opset_));
    }
  }
  if (n_in == 2 && !np.input(1).empty()) {
    // The sizes: an initializer, or a Constant node parsed before this one.
    ConstTensorPtr t;
    if (const auto it = ids_.find(np.input(1)); it != ids_.end() && consts_.count(it->second))
      t = consts_.at(it->second);
    else if (const auto c = constant_nodes.find(np.input(1)); c != constant_nodes.end())
      t = c->second;
    if (!t) node_fail(split, "the split sizes " + quote(np.input(1)) + " must be a constant");
    if (t->dtype != DType::Int64 || t->dims.size() != 1) node_fail(split, "the split sizes must be a 1-D int64 tensor");
    for (int64_t i = 0; i < t->numel(); ++i) sizes.push_back(t->as_int64(i));
    have_sizes = true;
  }
  if (have_sizes) {
    if (sizes.size() != n_out)
      node_fail(split, std::to_string(sizes.size()) + " split sizes for " + std::to_string(n_out) + " outputs");
    for (int64_t v : sizes)
      if (v < 0 || v > lim_.max_tensor_bytes) node_fail(split, "split size " + std::to_string(v) + " is out of range");
  }

  const OpSpec* slice = find_op("Slice", "");
  const std::string base = split.name + ":";
  auto constant = [&](const std::string& name, std::vector<int64_t> v) {
    Pending c;
    c.op_type = "Constant";
    c.name = name;
    c.spec = find_op("Constant", "");
    c.outputs = {name};
    Attribute a;
    a.kind = Kind::Ints;
    a.ints = std::move(v);
    c.attrs["value_ints"] = std::move(a);
    convert_constant(c);  // to the 1-D int64 "value" every Constant holds
    pend.push_back(std::move(c));
    return name;
  };
  auto node = [&](const char* op, const std::string& name, std::vector<std::string> inputs) {
    Pending p;
    p.op_type = op;
    p.name = name;
    p.spec = find_op(op, "");
    p.inputs = std::move(inputs);
    p.outputs = {name};
    pend.push_back(std::move(p));
    return name;
  };
  const std::string x = np.input(0), axes = constant(base + "axes", {axis});
  std::string chunk;  // without sizes: ceil(d / outputs), from the input's shape
  if (!have_sizes) {
    const std::string d = node("Gather", base + "dim", {node("Shape", base + "shape", {x}), axes});
    pend.back().attrs["axis"].i = 0;
    const std::string rounded =
        node("Add", base + "dim_up", {d, constant(base + "outputs_less_1", {static_cast<int64_t>(n_out) - 1})});
    chunk = node("Div", base + "chunk", {rounded, constant(base + "outputs", {static_cast<int64_t>(n_out)})});
  }
  int64_t offset = 0;
  for (size_t i = 0; i < n_out; ++i) {
    const std::string k = base + std::to_string(i);
    std::string starts, ends;
    if (have_sizes) {
      starts = constant(k + ":starts", {offset});
      offset += sizes[i];
      ends = constant(k + ":ends", {offset});
    } else {
      starts = node("Mul", k + ":starts", {chunk, constant(k + ":i", {static_cast<int64_t>(i)})});
      ends = node("Mul", k + ":ends", {chunk, constant(k + ":i_plus_1", {static_cast<int64_t>(i) + 1})});
    }
    Pending p;
    p.op_type = "Slice";
    p.name = split.name + (n_out > 1 ? ":" + std::to_string(i) : "");
    p.spec = slice;
    p.inputs = {x, starts, ends, axes};
    p.outputs = {np.output(static_cast<int>(i))};
    if (have_sizes && i + 1 == n_out) {
      Attribute total;
      total.i = offset;
      p.attrs["split_total"] = total;
    }
    pend.push_back(std::move(p));
  }
}

// The parsed nodes, in `order`, become the graph's nodes and their outputs its values.
void Importer::add_nodes(std::vector<Pending>& pend, const std::vector<int>& order) {
  for (int idx : order) {
    Pending& n = pend[idx];
    ir::Node node;
    node.op = n.spec->op;
    node.name = n.name;
    for (const std::string& in : n.inputs) node.inputs.push_back(in.empty() ? ir::kNoValue : ids_.at(in));
    DType out_type = DType::Float32;
    ConstTensorPtr constant;
    if (node.op == ir::Op::Constant) {
      constant = n.attrs.at("value").t;
      out_type = constant->dtype;
    } else {
      switch (ir::op_traits(node.op).dtype) {
        case ir::DTypeRule::SameAsInput: out_type = g_.values[node.inputs[0]].dtype; break;
        // int8 zero points are carried as uint8 + 128 (lower_quantized)
        case ir::DTypeRule::Uint8:
        case ir::DTypeRule::Quantize: out_type = DType::Uint8; break;
        case ir::DTypeRule::Float:
        case ir::DTypeRule::Dequantize: out_type = DType::Float32; break;
        case ir::DTypeRule::Int64: out_type = DType::Int64; break;
      }
    }
    for (const std::string& o : n.outputs) {
      ir::Value v;
      v.name = o;
      v.dtype = out_type;
      int id = add_value(std::move(v));
      node.outputs.push_back(id);
      if (constant) consts_[id] = constant;
    }
    node.attrs = std::move(n.attrs);
    g_.nodes.push_back(std::move(node));
  }
}

// Graph outputs: produced by a node, float32.
void Importer::add_outputs(const ::onnx::GraphProto& gp, const std::unordered_set<std::string>& known,
                           const std::unordered_set<std::string>& produced) {
  std::unordered_set<std::string> out_names;
  if (gp.output_size() == 0) fail("the graph has no outputs");
  for (const auto& vi : gp.output()) {
    const std::string& name = vi.name();
    if (!out_names.insert(name).second) fail("graph output " + quote(name) + " is listed twice");
    if (!produced.count(name)) {
      if (known.count(name)) fail("graph output " + quote(name) + " is a graph input or initializer; not supported");
      fail("graph output " + quote(name) + " is not produced by any node");
    }
    if (vi.has_type() && vi.type().has_tensor_type() && vi.type().tensor_type().has_elem_type() &&
        vi.type().tensor_type().elem_type() != ::onnx::TensorProto_DataType_FLOAT)
      fail("graph output " + quote(name) + " has type " + onnx_dtype_name(vi.type().tensor_type().elem_type()) +
           ", only float32 outputs are supported");
    g_.outputs.push_back(ids_.at(name));
  }
}

ir::Graph Importer::run(const void* data, size_t size) {
  prescan(data, size);

  ::onnx::ModelProto model;
  if (!model.ParseFromArray(data, static_cast<int>(size))) fail("not an ONNX model (protobuf parse failed)");
  if (!model.has_graph()) fail("not an ONNX model (no graph)");
  check_opset(model);
  ::onnx::GraphProto& gp = *model.mutable_graph();
  if (gp.node_size() > lim_.max_nodes)
    fail("the model has " + std::to_string(gp.node_size()) + " nodes, more than the limit of " +
         std::to_string(lim_.max_nodes));
  if (gp.sparse_initializer_size() > 0) fail("sparse initializers are not supported");

  g_.source = src_;
  g_.opset = opset_;
  std::unordered_map<std::string, ConstTensorPtr> inits;
  const std::vector<std::string> init_order = convert_initializers(gp, inits);
  std::unordered_set<std::string> known;  // names available before any node runs
  add_inputs(gp, inits, known);
  for (const std::string& name : init_order) {
    known.insert(name);
    ir::Value v;
    v.name = name;
    v.constant = inits[name];
    v.dtype = v.constant->dtype;
    v.shape = v.constant->dims;
    v.has_shape = true;
    consts_[add_value(std::move(v))] = inits[name];
  }
  inits.clear();

  std::unordered_set<std::string> produced;
  std::vector<Pending> pend = parse_nodes(gp, known, produced);
  gp.clear_node();
  const std::vector<int> order = topo_sort(pend, known);
  add_nodes(pend, order);
  check_const_operands(g_, pend, order);
  add_outputs(gp, known, produced);
  g_.validate();
  return std::move(g_);
}

}  // namespace

ir::Graph import_model(const void* data, size_t size, const std::string& source, const ImportLimits& limits) {
  Importer imp(source, limits);
  return imp.run(data, size);
}

ir::Graph import_file(const std::string& path, const ImportLimits& limits) {
  const std::string bytes = read_regular_file(path, limits.max_file_bytes);
  // External data is read from the model's folder.
  ExternalContext ext;
  ext.from_file = true;
  const size_t slash = path.find_last_of('/');
  ext.dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  Importer imp(path, limits, std::move(ext));
  return imp.run(bytes.data(), bytes.size());
}

}  // namespace q8::onnx
