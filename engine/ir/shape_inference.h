// Shape and element-type inference: each op's shape rule (its row in op_traits.h) applied in
// topological order, with the checks every op shares (no empty tensor, activation types).
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"

namespace q8::ir {

// Computes every value's shape and dtype from concrete shapes for the graph inputs (in g.inputs
// order; each checked against the declared shape: known dims must match). Validates ranks,
// channel counts, kernel sizes and resolves auto_pad into explicit "pads"; throws q8::Error naming
// the node whose inputs do not fit its op.
void infer_shapes(Graph& g, const std::vector<Shape>& input_shapes);
// The declared input shapes with unknown dims set to `batch` on axis 0; throws naming the input
// if another axis is unknown.
std::vector<Shape> input_shapes_for_batch(const Graph& g, int64_t batch);

// Conv/pool output extent along one axis (ONNX formula, ceil_mode included); 0 if the window
// never fits.
int64_t pooled_extent(int64_t in, int64_t k, int64_t stride, int64_t dilation, int64_t pad_begin, int64_t pad_end,
                      bool ceil_mode);

// What a shape rule sees: the graph, the node, and its inputs' inferred shapes.
class ShapeContext {
 public:
  ShapeContext(Graph& g, Node& n) : g(g), n(n) {}
  Graph& g;
  Node& n;
  // Input i's shape; fails if the input is omitted or has no shape yet.
  const Shape& in(size_t i) const;
  // Fails unless input i has rank r.
  void rank_is(size_t i, size_t r) const;
  // Input i's value, or null when omitted; its constant, or null when it is not one.
  const Value* value(size_t i) const;
  const ConstTensor* constant(size_t i) const;
  [[noreturn]] void fail(const std::string& what) const;
};

// Rules shared by the shape rules and by the passes that fold the same ops on constants.
// A Reshape's target (0 copies a dimension unless allowzero, -1 is inferred) against `in`.
Shape reshape_target(const Graph& g, const Node& n, const Shape& in, const ConstTensor& spec);
Shape flatten_shape(const Graph& g, const Node& n, const Shape& in);
// The axes a ReduceMean reduces, as a mask over its input's rank: its "axes" attribute, or from
// opset 18 its constant axes input; none given: every axis. Throws naming the node.
std::vector<bool> reduced_axes(const Graph& g, const Node& n, size_t rank);
// Whether a ReduceMean of a rank-`rank` tensor averages exactly H and W of NCHW: a global average
// pool, the one form it has in int8.
bool is_spatial_mean(const Graph& g, const Node& n, size_t rank);
// Whether `term` is one value per channel of the 4-D tensor `full`, the same for every image
// ([C], [1,C,1,1]) or one row per image ([N,C,1,1], as squeeze-excitation multiplies by).
bool is_per_channel_term(const Shape& full, const Shape& term);
// Whether `term` (a MatMul's bias, say) is one value per column of an N-column result, or a single
// value: every axis but the last is 1, and the last is N or 1 (broadcast along the last axis only).
bool is_column_term(int64_t N, const Shape& term);
// A Pad's constant value (0 when omitted); NaN when the Pad is not of constant mode.
float pad_value(const Graph& g, const Node& n);
// A Pad's pads (begin for every axis, then end), checked against the rank.
std::vector<int64_t> pad_amounts(const Graph& g, const Node& n, size_t rank);

// The element strides of a C-order (row-major) tensor of shape `s`.
std::vector<int64_t> c_order_strides(const Shape& s);

// A Slice resolved against its input's shape: for every axis, the first element taken, the step
// and the output extent (axes the Slice does not name: 0, 1 and the whole extent).
struct SliceSpec {
  std::vector<int64_t> start, step;
  Shape out;
};
SliceSpec resolve_slice(const Graph& g, const Node& n, const Shape& in);
// A Transpose's permutation ("perm", default: reversed axes), checked against the rank.
std::vector<int64_t> transpose_perm(const Graph& g, const Node& n, size_t rank);
// Resize of an NCHW input x, checked (mode, coordinate transformation, scales or sizes): the
// output's spatial extent and the scale each spatial axis's coordinates are transformed with.
struct ResizeGeometry {
  int64_t oh = 0, ow = 0;
  float sh = 1.f, sw = 1.f;
  float rh = 1.f, rw = 1.f;  // the resized extents align_corners divides by: in * scale, or the sizes
  bool linear = false;       // mode linear (bilinear on H, W); otherwise nearest
  std::string coord;         // coordinate_transformation_mode
  std::string nearest_mode;  // for mode nearest
};
ResizeGeometry resize_geometry(const Graph& g, const Node& n, const Shape& x);

// ConvTranspose of an NCHW input x with kernel kh x kw, checked: the output's spatial extent and
// the padding cut from the top and left of the full transposed result (auto_pad and output_shape
// resolved as ONNX Runtime does).
struct ConvTransposeWindow {
  int64_t oh = 0, ow = 0, pt = 0, pl = 0;
};
ConvTransposeWindow conv_transpose_window(const Graph& g, const Node& n, const Shape& x, int64_t kh, int64_t kw);
// Whether ConvTranspose node n runs as one convolution per output phase (kernels/conv_transpose.h),
// which packs its weights once per phase, SH * SW of them: strides up to
// kConvTransposeMaxPhaseStride (at most 64 phases). Past it, fp32 gathers (kernels/upsample.h)
// and int8 is not offered.
constexpr int64_t kConvTransposeMaxPhaseStride = 8;
bool conv_transpose_phase_strides(const Node& n);

}  // namespace q8::ir
