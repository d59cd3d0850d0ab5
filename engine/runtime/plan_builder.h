// What the op files (runtime/ops/) see of the plan being built: buffers and their layouts, the
// arena's lifetimes, steps taking any number of inputs, and the helpers the ops share (conv
// geometry, requantization parameters). Internal to the runtime.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kernels/f32.h"
#include "kernels/qu8.h"
#include "runtime/dispatch.h"
#include "runtime/plan.h"

namespace q8::rt {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Kernels may read a few bytes past the end of an activation row (int8 GEMMs read channels in
// K groups of up to kern::kQu8MaxKr); every arena buffer is followed by this much readable slack.
constexpr size_t kBufferSlack = 64;
static_assert(kBufferSlack >= kern::kQu8MaxKr - 1, "int8 GEMMs read up to kr - 1 bytes past a row");

[[noreturn]] void fail(const ir::Graph& g, const ir::Node& n, const std::string& what);
const ir::ConstTensor* const_input(const ir::Graph& g, const ir::Node& n, size_t i);
inline const ir::Shape& shape_of(const ir::Graph& g, int v) { return g.values[v].shape; }
inline size_t numel(const ir::Shape& s) { return static_cast<size_t>(ir::shape_numel(s)); }

// The clamp of a fused Relu/Clip ("act_min"/"act_max"; none: the whole float range).
struct Activation {
  float lo = -kInf, hi = kInf;
};
Activation activation_of(const ir::Node& n);

// Conv geometry from the weights and attributes (spatial sizes from shapes when known).
kern::ConvGeometry conv_geometry(const ir::Graph& g, const ir::Node& n);
inline bool is_depthwise(const kern::ConvGeometry& c) { return c.groups > 1 && c.Cg() == 1 && c.Kg() == 1; }

// Every multiplier an integer kernel applies (s_in * s_w[c] / s_out, s_a / s_out, s_in / s_out)
// is computed once in double, rounded to float once, and must be a normal float in
// [2^-126, 2^24]: scales that each pass validation can still multiply to infinity (then 0 * M is
// a NaN, which the scalar and SIMD clamps order differently) or to a subnormal, and past 2^24
// every non-zero accumulator saturates, so the scales are corrupt. The node is refused by name.
float checked_multiplier(const ir::Graph& g, const ir::Node& n, double m, const char* what);
// M[c] = s_in * s_w[c] / s_out for a QuantizedConv/QuantizedDense.
std::vector<float> requant_multipliers(const ir::Graph& g, const ir::Node& n);
// Output zero point and the fused clamp ("qmin"/"qmax").
kern::QU8Requant requant_of(const ir::Graph& g, const ir::Node& n);

// How threads share the output of a GEMM-shaped step (a convolution's igemm, a dense layer):
// `rows` rows (output pixels) in tiles of mr by `panels` panels of output channels. A thread given
// a share of the rows reads all the weights; one given a share of the panels reads all the
// activations and writes a share of every pixel's channels, which the next step, split by pixels,
// then reads from the other cores. So the split is along panels only when the weights outweigh
// the activations and the output together: the deep layers and batch-1 classifiers (resnet18's 7x7
// layers stream 2.4 MB of int8 weights for 25 KB of input, and their 7 row tiles would divide 4:3
// between two threads), not MobileNetV2's small 1x1 expansions, whose output the depthwise step
// after them reads by pixels. Split by rows, the items are the rows; split by panels, they are
// (panel, row) pairs, panel-major, each panel's rows padded to whole tiles. Either way the step
// runs `work()` items in multiples of mr, so every thread's range starts on a tile, and
// split(0, work()) is a single rectangle.
struct OutputGrid {
  size_t rows = 0, mr = 1, panels = 1;
  bool by_panels = false;

  OutputGrid(size_t rows_, size_t mr_, size_t panels_, size_t activation_bytes, size_t output_bytes,
             size_t weight_bytes)
      : rows(rows_),
        mr(mr_),
        panels(panels_),
        by_panels(panels_ > 1 && weight_bytes > activation_bytes + output_bytes) {}
  size_t span() const { return (rows + mr - 1) / mr * mr; }  // items per panel when by_panels
  size_t work() const { return by_panels ? panels * span() : rows; }
  // Calls f(m0, m1, n0, n1) for the rectangles (rows [m0, m1) by panels [n0, n1)) of items [i0, i1).
  template <class F>
  void split(size_t i0, size_t i1, F&& f) const {
    if (!by_panels) {
      f(i0, std::min(i1, rows), size_t{0}, panels);
      return;
    }
    const size_t sp = span();
    for (size_t i = i0; i < i1;) {
      const size_t n = i / sp, m0 = i - n * sp, m1 = std::min(rows, i1 - n * sp);
      if (m0 == 0 && m1 == rows) {  // whole panels from n on: one rectangle
        size_t n1 = n + 1;
        while (n1 < panels && n1 * sp + rows <= i1) ++n1;
        f(size_t{0}, rows, n, n1);
        i = std::min(i1, n1 * sp);
        continue;
      }
      if (m0 < m1) f(m0, m1, n, n + 1);
      i = std::min(i1, (n + 1) * sp);
    }
  }
};

// The grid of an indirect convolution: its input and indirection pointers are the activations.
inline OutputGrid conv_output_grid(const kern::ConvGeometry& c, size_t mr, size_t nr, size_t element_bytes,
                                   size_t packed_bytes) {
  const size_t input = c.N * c.IH * c.IW * c.C * element_bytes,
               pointers = c.out_pixels() * c.taps() * c.groups * sizeof(void*);
  return OutputGrid(c.out_pixels(), mr, (c.Kg() + nr - 1) / nr, input + pointers, c.out_pixels() * c.K * element_bytes,
                    packed_bytes);
}

struct Plan::Step {
  std::string node;
  size_t work = 1, align = 1;
  std::function<void(size_t, size_t)> fn;  // runs items [i0, i1) of `work`
  std::function<void()> bind;              // runs once buffers have addresses
  std::vector<const void*> indirection;
};

struct Plan::Builder {
  enum class Layout { Plain, NHWC };
  struct Buf {
    size_t bytes = 0;
    int first = 0, last = 0;
    const uint8_t* fixed = nullptr;  // constants live outside the arena
  };

  const ir::Graph& g;
  const PackedWeights& w;
  const Dispatch& d;
  Plan& p;
  size_t side_bytes = 0;  // working memory outside the arena (indirection buffers), for the limit
  std::vector<Buf> bufs;
  std::vector<int> plain, nhwc;       // value id -> buffer id per layout, -1 if not materialised
  std::vector<Layout> native;         // the layout a value's producer writes
  const ir::ConsumerIndex consumers;  // who reads each value

  Builder(const ir::Graph& g_, const PackedWeights& w_, const Dispatch& d_, Plan& p_);

  const Addresses& addresses() const { return p.buffers_; }
  int step_index() const { return static_cast<int>(p.steps_.size()); }
  size_t bytes_of(int v) const { return numel(shape_of(g, v)) * ir::dtype_size(g.values[v].dtype); }
  bool is_u8(int v) const { return g.values[v].dtype == ir::DType::Uint8; }
  int new_buf(size_t bytes);
  int fixed_buf(const void* data, size_t bytes);
  // Memory the plan keeps for its steps (zero rows, converted constants), zero-filled.
  AlignedBuffer& own(size_t bytes);
  // A step over `work` items (split across threads in multiples of `align`) that reads and
  // writes the given buffers (-1 entries are skipped). Lifetimes are marked here, by the step
  // that reads or writes a buffer, so conversion steps added while fetching a node's inputs
  // never shorten the life of an input read later.
  Step& add_step(const std::string& name, size_t work, size_t align, const std::vector<int>& reads,
                 const std::vector<int>& writes);
  // NHWC and C-order agree byte for byte unless the tensor is 4-D with C > 1 and H*W > 1.
  static bool layouts_agree(const ir::Shape& s) { return s.size() != 4 || s[1] == 1 || s[2] * s[3] == 1; }
  // Records that value v lives in buffer b in layout l.
  void define(int v, Layout l, int b);
  // The buffer holding value v in layout l, converting (once) if needed.
  int get(int v, Layout l);
  // Whether node `node` may write over buffer b, which holds value v: the node is v's last reader
  // (steps run one after another in node order, so the others have read it), v is no graph output
  // (nor an observed tensor: those are outputs) and no graph input, and b holds no other value (a
  // view of v, a value an earlier step wrote over) that this or a later step reads. A step that
  // writes its output there reads each element before it overwrites it; it lists b among its
  // reads only, so b's life still starts at v's producer.
  bool may_overwrite(int v, size_t node, int b) const;
  // An indirect convolution's buffer: a pointer per output pixel, tap and group, allocated when
  // the plan binds; counted here so the working-memory limit covers it. Saturates on overflow.
  void count_indirection(const kern::ConvGeometry& c);

  void build();
  void assign_arena(size_t limit);  // limit: the working-memory cap (workspace_limit)
};

using Layout = Plan::Builder::Layout;
using Step = Plan::Step;

}  // namespace q8::rt
