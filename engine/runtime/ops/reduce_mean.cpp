// ReduceMean: over the spatial axes of a 4-D tensor it is a GlobalAveragePool (NHWC, the pool's
// kernel), on fp32 or uint8; over any other axes, the portable fp32 reduction on C order.
#include "runtime/ops/ops.h"

#include "ir/shape_inference.h"
#include "kernels/f32.h"
#include "kernels/f32_misc.h"
#include "kernels/qu8.h"

namespace q8::rt {

using ir::Graph;
using ir::Node;
using ir::Shape;

namespace {

bool is_spatial_mean(const Graph& g, const Node& n) {
  return ir::is_spatial_mean(g, n, shape_of(g, n.inputs[0]).size());
}

void plan_reduce_mean(Plan::Builder& pb, size_t, const Node& n) {
  const Graph& g = pb.g;
  const Shape& xs = shape_of(g, n.inputs[0]);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  if (is_spatial_mean(g, n)) {
    // [N,C,1,1] or [N,C]: C-order and NHWC bytes agree.
    const int x = pb.get(n.inputs[0], Layout::NHWC);
    pb.define(n.outputs[0], Layout::Plain, y);
    const size_t HW = static_cast<size_t>(xs[2] * xs[3]), C = static_cast<size_t>(xs[1]);
    Step& s = pb.add_step(n.name, static_cast<size_t>(xs[0]), 1, {x}, {y});
    if (pb.is_u8(n.inputs[0])) {
      const kern::QU8PoolParams pp = qu8_pool_params(g, n);
      s.fn = [&A = pb.addresses(), q = pb.d.qu8, x, y, HW, C, pp](size_t n0, size_t n1) {
        q->global_avgpool(HW, C, A.u8(x), A.u8(y), n0, n1, pp);
      };
      return;
    }
    s.fn = [&A = pb.addresses(), k = pb.d.f32, x, y, HW, C](size_t n0, size_t n1) {
      k->global_avgpool(HW, C, A.f32(x), A.f32(y), n0, n1);
    };
    return;
  }
  if (xs.size() > 8) fail(g, n, "reducing a tensor above rank 8 is not supported");
  const int x = pb.get(n.inputs[0], Layout::Plain);
  pb.define(n.outputs[0], Layout::Plain, y);
  const std::vector<bool> reduced = ir::reduced_axes(g, n, xs.size());
  Step& s = pb.add_step(n.name, 1, 1, {x}, {y});
  s.fn = [&A = pb.addresses(), x, y, dims = std::vector<int64_t>(xs), reduced](size_t, size_t) {
    bool red[8];
    for (size_t i = 0; i < dims.size(); ++i) red[i] = reduced[i];
    kern::f32_reduce_mean(dims.size(), dims.data(), red, A.f32(x), A.f32(y));
  };
}

std::string reduce_mean_kernel(const Graph& g, const Node& n, const Dispatch& d) {
  if (!is_spatial_mean(g, n)) return "f32_reduce_mean";
  return g.values[n.inputs[0]].dtype == ir::DType::Uint8 ? d.qu8->global_avgpool.name : d.f32->global_avgpool.name;
}

}  // namespace

const OpRuntime kReduceMeanRuntime = {nullptr, plan_reduce_mean, reduce_mean_kernel, nullptr};

}  // namespace q8::rt
