// Shape rules and evaluations of the ops that exported models use to compute on shapes (Shape,
// Gather, Cast, ConstantOfShape, and Concat/Add/Slice/Unsqueeze/Squeeze on their results), and of
// the layout ops that also run on activations (Slice, Transpose, Unsqueeze, Squeeze).
//
// torch.onnx.export with a dynamic batch axis writes `x.flatten(2)` or a channel shuffle as
// Shape(x) -> Slice/Gather -> Concat -> Reshape: the Reshape target is known only once the batch
// is. infer_shapes() evaluates such chains with these functions when the input shapes are known,
// so they never run and every Reshape target is a constant by the time a plan is built.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "ir/op_traits.h"
#include "ir/shape_rules.h"
#include "q8/error.h"

namespace q8::ir {

namespace {

[[noreturn]] void fail(const Graph& g, const Node& n, const std::string& what) {
  throw Error(g.source + ": " + n.describe() + ": " + what);
}

const ConstTensor& const_at(const Graph& g, const Node& n, size_t i) {
  if (i >= n.inputs.size() || n.inputs[i] == kNoValue || !g.values[n.inputs[i]].constant)
    fail(g, n, "input " + std::to_string(i) + " is not known before run time");
  return *g.values[n.inputs[i]].constant;
}

std::vector<int64_t> int_list(const Graph& g, const Node& n, const ConstTensor& t, const char* what) {
  if (t.dims.size() > 1) fail(g, n, std::string(what) + " must be a scalar or 1-D");
  if (t.dtype != DType::Int64 && t.dtype != DType::Int32) fail(g, n, std::string(what) + " must be int64 or int32");
  std::vector<int64_t> r(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < r.size(); ++i) r[i] = t.as_int64(static_cast<int64_t>(i));
  return r;
}

// An axis in [-rank, rank) made non-negative.
int64_t axis_in(const Graph& g, const Node& n, int64_t axis, size_t rank) {
  const int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r)
    fail(g, n, "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + r : axis;
}

// Unsqueeze/Squeeze axes: the "axes" input (opset 13 on) or attribute; `given` says whether any.
std::vector<int64_t> axes_of(const Graph& g, const Node& n, bool* given) {
  if (n.inputs.size() > 1 && n.inputs[1] != kNoValue) {
    *given = true;
    return int_list(g, n, const_at(g, n, 1), "axes");
  }
  *given = n.has_attr("axes");
  return n.attr_ints("axes", {});
}

std::shared_ptr<ConstTensor> tensor_like(DType t, const Shape& dims) {
  auto r = std::make_shared<ConstTensor>();
  r->dtype = t;
  r->dims = dims;
  r->bytes.resize(static_cast<size_t>(shape_numel(dims)) * dtype_size(t));
  return r;
}

// out[i] = in[base + sum_k i_k * in_strides[k]] over the C-order index i of `out`'s dims.
void strided_gather(const ConstTensor& in, int64_t base, const std::vector<int64_t>& in_strides, ConstTensor& out) {
  const size_t es = dtype_size(in.dtype), rank = out.dims.size();
  const int64_t count = out.numel();
  std::vector<int64_t> idx(rank, 0);
  int64_t src = base;
  for (int64_t i = 0; i < count; ++i) {
    std::memcpy(out.bytes.data() + static_cast<size_t>(i) * es, in.bytes.data() + static_cast<size_t>(src) * es, es);
    for (size_t k = rank; k-- > 0;) {
      src += in_strides[k];
      if (++idx[k] < out.dims[k]) break;
      src -= in_strides[k] * idx[k];
      idx[k] = 0;
    }
  }
}

}  // namespace

std::vector<int64_t> c_order_strides(const Shape& s) {
  std::vector<int64_t> r(s.size(), 1);
  for (size_t i = s.size(); i-- > 1;) r[i - 1] = r[i] * s[i];
  return r;
}

SliceSpec resolve_slice(const Graph& g, const Node& n, const Shape& in) {
  const std::vector<int64_t> starts = int_list(g, n, const_at(g, n, 1), "starts");
  const std::vector<int64_t> ends = int_list(g, n, const_at(g, n, 2), "ends");
  if (starts.size() != ends.size()) fail(g, n, "starts and ends differ in length");
  std::vector<int64_t> axes(starts.size()), steps(starts.size(), 1);
  for (size_t i = 0; i < axes.size(); ++i) axes[i] = static_cast<int64_t>(i);
  if (n.inputs.size() > 3 && n.inputs[3] != kNoValue) axes = int_list(g, n, const_at(g, n, 3), "axes");
  if (n.inputs.size() > 4 && n.inputs[4] != kNoValue) steps = int_list(g, n, const_at(g, n, 4), "steps");
  if (axes.size() != starts.size() || steps.size() != starts.size())
    fail(g, n, "starts, ends, axes and steps differ in length");
  SliceSpec s{std::vector<int64_t>(in.size(), 0), std::vector<int64_t>(in.size(), 1), in};
  std::vector<bool> seen(in.size(), false);
  for (size_t i = 0; i < axes.size(); ++i) {
    const int64_t a = axis_in(g, n, axes[i], in.size());
    if (seen[a]) fail(g, n, "axis " + std::to_string(a) + " is sliced twice");
    seen[a] = true;
    const int64_t dim = in[a], step = steps[i];
    if (step == 0) fail(g, n, "a step is 0");
    int64_t b = starts[i], e = ends[i];
    if (b < 0) b = std::max<int64_t>(b, -dim) + dim;
    if (e < 0) e = std::max<int64_t>(e, -dim - 1) + dim;
    int64_t len;
    if (step > 0) {
      b = std::min(b, dim), e = std::min(e, dim);
      len = e > b ? (e - b - 1) / step + 1 : 0;
    } else {
      b = std::min(b, dim - 1), e = std::min(e, dim - 1);
      len = b > e ? (b - e - 1) / -step + 1 : 0;
    }
    s.start[a] = b, s.step[a] = step, s.out[a] = len;
  }
  // The last Slice of an imported Split (onnx_importer.cpp): the sizes must cover the axis.
  if (n.has_attr("split_total") && axes.size() == 1) {
    const int64_t a = axis_in(g, n, axes[0], in.size()), total = n.attr_int("split_total", 0);
    if (in[a] != total)
      fail(g, n,
           "the Split sizes add up to " + std::to_string(total) + ", but axis " + std::to_string(a) + " has " +
               std::to_string(in[a]));
  }
  return s;
}

std::vector<int64_t> transpose_perm(const Graph& g, const Node& n, size_t rank) {
  std::vector<int64_t> perm = n.attr_ints("perm", {});
  if (!n.has_attr("perm"))
    for (size_t i = 0; i < rank; ++i) perm.push_back(static_cast<int64_t>(rank - 1 - i));
  if (perm.size() != rank)
    fail(g, n, "perm has " + std::to_string(perm.size()) + " axes, the input " + std::to_string(rank));
  std::vector<bool> seen(rank, false);
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(rank) || seen[p]) fail(g, n, "perm is not a permutation of the axes");
    seen[p] = true;
  }
  return perm;
}

namespace shape_rules {

Shape shape_of(ShapeContext& c) {
  const int64_t r = static_cast<int64_t>(c.in(0).size());
  int64_t b = c.n.attr_int("start", 0), e = c.n.attr_int("end", r);
  b = std::clamp<int64_t>(b < 0 ? b + r : b, 0, r);
  e = std::clamp<int64_t>(e < 0 ? e + r : e, 0, r);
  return {std::max<int64_t>(e - b, 0)};
}

Shape gather(ShapeContext& c) {
  const Shape& d = c.in(0);
  if (d.empty()) c.fail("cannot gather from a scalar");
  const int64_t axis = axis_in(c.g, c.n, c.n.attr_int("axis", 0), d.size());
  c.n.attrs["axis"].i = axis;  // normalised
  const Shape& idx = c.in(1);
  Shape out(d.begin(), d.begin() + axis);
  out.insert(out.end(), idx.begin(), idx.end());
  out.insert(out.end(), d.begin() + axis + 1, d.end());
  return out;
}

Shape constant_of_shape(ShapeContext& c) {
  if (!c.constant(0)) c.fail("its shape input is known only at run time");
  Shape out = int_list(c.g, c.n, *c.constant(0), "the shape input");
  for (int64_t d : out)
    if (d < 0) c.fail("shape " + shape_str(out) + " has a negative dimension");
  return out;
}

Shape unsqueeze(ShapeContext& c) {
  const Shape& in = c.in(0);
  bool given = false;
  std::vector<int64_t> axes = axes_of(c.g, c.n, &given);
  if (axes.empty()) c.fail("no axes given");
  const size_t rank = in.size() + axes.size();
  std::vector<bool> unit(rank, false);
  for (int64_t& a : axes) {
    a = axis_in(c.g, c.n, a, rank);
    if (unit[a]) c.fail("axis " + std::to_string(a) + " is given twice");
    unit[a] = true;
  }
  Shape out;
  for (size_t i = 0, k = 0; i < rank; ++i) out.push_back(unit[i] ? 1 : in[k++]);
  return out;
}

Shape squeeze(ShapeContext& c) {
  const Shape& in = c.in(0);
  bool given = false;
  const std::vector<int64_t> axes = axes_of(c.g, c.n, &given);
  std::vector<bool> drop(in.size(), !given);
  if (!given)
    for (size_t i = 0; i < in.size(); ++i) drop[i] = in[i] == 1;
  for (int64_t a : axes) {
    const int64_t k = axis_in(c.g, c.n, a, in.size());
    if (in[k] != 1) c.fail("axis " + std::to_string(k) + " of " + shape_str(in) + " is not 1");
    drop[k] = true;
  }
  Shape out;
  for (size_t i = 0; i < in.size(); ++i)
    if (!drop[i]) out.push_back(in[i]);
  return out;
}

Shape slice(ShapeContext& c) { return resolve_slice(c.g, c.n, c.in(0)).out; }

Shape transpose(ShapeContext& c) {
  const Shape& in = c.in(0);
  const std::vector<int64_t> perm = transpose_perm(c.g, c.n, in.size());
  Shape out(in.size());
  for (size_t i = 0; i < in.size(); ++i) out[i] = in[perm[i]];
  return out;
}

}  // namespace shape_rules

namespace const_evals {

ConstTensorPtr view(const Graph& g, const Node& n, const Shape& out) {
  auto t = std::make_shared<ConstTensor>(const_at(g, n, 0));
  t->dims = out;
  return t;
}

ConstTensorPtr concat(const Graph& g, const Node& n, const Shape& out) {
  const DType dt = const_at(g, n, 0).dtype;
  auto t = tensor_like(dt, out);
  const size_t axis = static_cast<size_t>(n.attr_int("axis", 0));
  int64_t outer = 1;
  for (size_t k = 0; k < axis; ++k) outer *= out[k];
  const size_t out_row = t->bytes.size() / static_cast<size_t>(outer);
  size_t offset = 0;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const ConstTensor& in = const_at(g, n, i);
    if (in.dtype != dt) fail(g, n, "inputs of different element types");
    const size_t row = in.bytes.size() / static_cast<size_t>(outer);
    for (int64_t r = 0; r < outer; ++r)
      std::memcpy(t->bytes.data() + r * out_row + offset, in.bytes.data() + r * row, row);
    offset += row;
  }
  return t;
}

ConstTensorPtr arithmetic(const Graph& g, const Node& n, const Shape& out) {
  const ConstTensor &a = const_at(g, n, 0), &b = const_at(g, n, 1);
  if (a.dtype != b.dtype || (a.dtype != DType::Int64 && a.dtype != DType::Float32))
    fail(g, n,
         std::string("cannot compute on constants of types ") + dtype_name(a.dtype) + " and " + dtype_name(b.dtype));
  // Each operand gathered to the output's shape (stride 0 on broadcast axes), then combined.
  auto spread = [&](const ConstTensor& x) {
    std::vector<int64_t> st(out.size(), 0);
    const std::vector<int64_t> xs = c_order_strides(x.dims);
    const size_t lead = out.size() - x.dims.size();
    for (size_t k = 0; k < x.dims.size(); ++k) st[lead + k] = x.dims[k] == 1 ? 0 : xs[k];
    auto t = tensor_like(x.dtype, out);
    strided_gather(x, 0, st, *t);
    return t;
  };
  if (n.op != Op::Add && n.op != Op::Sub && n.op != Op::Mul && n.op != Op::Div)
    fail(g, n, "internal: not an arithmetic op");
  auto t = spread(a);
  const auto bb = spread(b);
  const int64_t count = t->numel();
  if (a.dtype == DType::Float32) {
    float* y = t->mutable_data<float>();
    const float* r = bb->data<float>();
    for (int64_t i = 0; i < count; ++i)
      y[i] = n.op == Op::Add   ? y[i] + r[i]
             : n.op == Op::Sub ? y[i] - r[i]
             : n.op == Op::Mul ? y[i] * r[i]
                               : y[i] / r[i];
    return t;
  }
  // int64 (shape arithmetic): overflow and division by zero are refused; division truncates.
  int64_t* y = t->mutable_data<int64_t>();
  const int64_t* r = bb->data<int64_t>();
  for (int64_t i = 0; i < count; ++i) {
    bool bad;
    if (n.op == Op::Add) {
      bad = __builtin_add_overflow(y[i], r[i], &y[i]);
    } else if (n.op == Op::Sub) {
      bad = __builtin_sub_overflow(y[i], r[i], &y[i]);
    } else if (n.op == Op::Mul) {
      bad = __builtin_mul_overflow(y[i], r[i], &y[i]);
    } else {
      bad = r[i] == 0 || (y[i] == std::numeric_limits<int64_t>::min() && r[i] == -1);
      if (!bad) y[i] /= r[i];
    }
    if (bad) fail(g, n, "int64 overflow or division by zero");
  }
  return t;
}

ConstTensorPtr shape_of(const Graph& g, const Node& n, const Shape& out) {
  const Shape& in = g.values[n.inputs[0]].shape;
  const int64_t r = static_cast<int64_t>(in.size());
  int64_t b = n.attr_int("start", 0);
  b = std::clamp<int64_t>(b < 0 ? b + r : b, 0, r);
  auto t = tensor_like(DType::Int64, out);
  for (int64_t i = 0; i < out[0]; ++i) t->mutable_data<int64_t>()[i] = in[b + i];
  return t;
}

ConstTensorPtr gather(const Graph& g, const Node& n, const Shape& out) {
  const ConstTensor& d = const_at(g, n, 0);
  const ConstTensor& idx = const_at(g, n, 1);
  if (idx.dtype != DType::Int64 && idx.dtype != DType::Int32) fail(g, n, "indices must be int64 or int32");
  const size_t axis = static_cast<size_t>(n.attr_int("axis", 0)), es = dtype_size(d.dtype);
  int64_t outer = 1, inner = 1;
  for (size_t k = 0; k < axis; ++k) outer *= d.dims[k];
  for (size_t k = axis + 1; k < d.dims.size(); ++k) inner *= d.dims[k];
  const int64_t dim = d.dims[axis], count = idx.numel();
  auto t = tensor_like(d.dtype, out);
  const size_t block = static_cast<size_t>(inner) * es;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < count; ++j) {
      int64_t k = idx.as_int64(j);
      if (k < -dim || k >= dim)
        fail(g, n, "index " + std::to_string(k) + " is out of range for " + std::to_string(dim));
      if (k < 0) k += dim;
      std::memcpy(t->bytes.data() + (o * count + j) * block, d.bytes.data() + (o * dim + k) * block, block);
    }
  return t;
}

ConstTensorPtr cast(const Graph& g, const Node& n, const Shape& out) {
  const ConstTensor& x = const_at(g, n, 0);
  const int64_t to = n.attr_int("to", 0);
  DType dt;
  switch (to) {
    case 1: dt = DType::Float32; break;
    case 2: dt = DType::Uint8; break;
    case 3: dt = DType::Int8; break;
    case 6: dt = DType::Int32; break;
    case 7: dt = DType::Int64; break;
    default: fail(g, n, "Cast to ONNX type " + std::to_string(to) + " is not supported");
  }
  auto t = tensor_like(dt, out);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double v = x.as_double(i);
    if (dt == DType::Float32) {
      t->mutable_data<float>()[i] = static_cast<float>(v);
      continue;
    }
    // Float to integer truncates toward zero; a value the type cannot hold is refused.
    const double tv = std::trunc(v);
    double lo = -9.2233720368547758e18, hi = 9.2233720368547748e18;
    if (dt == DType::Uint8) lo = 0, hi = 255;
    if (dt == DType::Int8) lo = -128, hi = 127;
    if (dt == DType::Int32) lo = -2147483648.0, hi = 2147483647.0;
    if (!(tv >= lo && tv <= hi)) fail(g, n, "value " + std::to_string(v) + " does not fit the target type");
    const int64_t iv = x.dtype == DType::Int64 ? x.as_int64(i) : static_cast<int64_t>(tv);
    switch (dt) {
      case DType::Uint8: t->mutable_data<uint8_t>()[i] = static_cast<uint8_t>(iv); break;
      case DType::Int8: t->mutable_data<int8_t>()[i] = static_cast<int8_t>(iv); break;
      case DType::Int32: t->mutable_data<int32_t>()[i] = static_cast<int32_t>(iv); break;
      case DType::Int64: t->mutable_data<int64_t>()[i] = iv; break;
      case DType::Float32:
      case DType::Undefined: break;
    }
  }
  return t;
}

ConstTensorPtr constant_of_shape(const Graph& g, const Node& n, const Shape& out) {
  ConstTensorPtr value;
  if (n.has_attr("value")) value = n.attrs.at("value").t;
  if (value && value->numel() != 1) fail(g, n, "value must hold one element");
  const DType dt = value ? value->dtype : DType::Float32;
  auto t = tensor_like(dt, out);
  const size_t es = dtype_size(dt);
  if (value)
    for (size_t i = 0; i < t->bytes.size(); i += es) std::memcpy(t->bytes.data() + i, value->bytes.data(), es);
  return t;
}

ConstTensorPtr slice(const Graph& g, const Node& n, const Shape& out) {
  const ConstTensor& x = const_at(g, n, 0);
  const SliceSpec s = resolve_slice(g, n, x.dims);
  const std::vector<int64_t> xs = c_order_strides(x.dims);
  std::vector<int64_t> st(xs.size());
  int64_t base = 0;
  for (size_t k = 0; k < xs.size(); ++k) base += s.start[k] * xs[k], st[k] = s.step[k] * xs[k];
  auto t = tensor_like(x.dtype, out);
  strided_gather(x, base, st, *t);
  return t;
}

ConstTensorPtr transpose(const Graph& g, const Node& n, const Shape& out) {
  const ConstTensor& x = const_at(g, n, 0);
  const std::vector<int64_t> perm = transpose_perm(g, n, x.dims.size());
  const std::vector<int64_t> xs = c_order_strides(x.dims);
  std::vector<int64_t> st(perm.size());
  for (size_t k = 0; k < perm.size(); ++k) st[k] = xs[perm[k]];
  auto t = tensor_like(x.dtype, out);
  strided_gather(x, 0, st, *t);
  return t;
}

}  // namespace const_evals

}  // namespace q8::ir
