// Conv in fp32: indirect GEMM on packed weights (over kernel rows for a first layer of few
// channels, kernels/conv_rows.h), or the depthwise kernel (NHWC), with a fused residual Add when
// the node has a fourth input and a fused activation when it has "act_unary" (kern::F32Epilogue).
#include "runtime/ops/ops.h"

#include <algorithm>

#include "kernels/conv_rows.h"
#include "kernels/f32.h"

namespace q8::rt {

using ir::ConstTensor;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

namespace {
AlignedBuffer pack_conv(const Graph& g, const Node& n, const Dispatch& d) {
  const kern::ConvGeometry c = conv_geometry(g, n);
  const ConstTensor* b = const_input(g, n, 2);
  const float* w = const_input(g, n, 1)->data<float>();
  if (is_depthwise(c)) {
    AlignedBuffer buf(kern::f32_dwconv_packed_floats(c) * sizeof(float));
    kern::f32_dwconv_pack(c, w, b ? b->data<float>() : nullptr, buf.as<float>());
    return buf;
  }
  const size_t nr = kern::f32_conv_kernel_for(*d.f32, c.Kg()).nr;
  if (kern::conv_runs_kernel_rows(c)) {
    AlignedBuffer buf(kern::f32_conv_packed_floats(kern::conv_rows_geometry(c), nr) * sizeof(float));
    kern::f32_conv_rows_pack(c, nr, w, b ? b->data<float>() : nullptr, buf.as<float>());
    return buf;
  }
  AlignedBuffer buf(kern::f32_conv_packed_floats(c, nr) * sizeof(float));
  kern::f32_conv_pack(c, nr, w, b ? b->data<float>() : nullptr, buf.as<float>());
  return buf;
}

void plan_conv(Plan::Builder& pb, size_t i, const Node& n) {
  const Graph& g = pb.g;
  const kern::ConvGeometry c = conv_geometry(g, n);
  const Activation act = activation_of(n);
  const int x = pb.get(n.inputs[0], Layout::NHWC);
  // A fused residual Add's other operand (passes.h, fuse_residual_add), read like the output.
  const bool has_residual = n.inputs.size() > 3;
  const int z = has_residual ? pb.get(n.inputs[3], Layout::NHWC) : -1;
  const std::vector<int> reads = has_residual ? std::vector<int>{x, z} : std::vector<int>{x};
  const kern::F32Kernels* k = pb.d.f32;
  const kern::F32ConvKernel* kc = is_depthwise(c) ? nullptr : &kern::f32_conv_kernel_for(*k, c.Kg());
  // The indirect GEMM in one pass writes its output over a residual that nothing reads later: the
  // step then streams one tensor through the cache instead of two, and the output's lines are
  // never fetched just to be overwritten.
  const bool over_residual = has_residual && kc && !kern::conv_runs_kernel_rows(c) &&
                             kern::f32_conv_may_write_over_residual(*kc, c) && z != x &&
                             pb.bufs[z].bytes >= pb.bytes_of(n.outputs[0]) && pb.may_overwrite(n.inputs[3], i, z);
  const int y = over_residual ? z : pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], Layout::NHWC, y);
  const float* packed = pb.w.per_node[i].as<float>();
  AlignedBuffer& owned = pb.own(c.C * sizeof(float));  // the zero row that padding taps point at
  const float* zero = owned.as<float>();
  const kern::F32BinaryFn add = k->binary[static_cast<size_t>(kern::BinaryOp::Add)].fn;
  const FusedUnary unary = fused_unary_of(g, n);
  const kern::F32UnaryFn unary_fn = unary.fused ? k->unary.fn : nullptr;
  // The epilogue with its residual's address filled in at run time (the arena is bound late).
  auto epilogue_at = [add, unary, unary_fn](const float* residual) {
    return kern::F32Epilogue{residual, add, unary_fn, unary.params};
  };
  if (is_depthwise(c)) {
    Step& s = pb.add_step(n.name, c.out_pixels(), 1, reads, {y});
    if (!has_residual && !unary.fused) {
      s.fn = [&A = pb.addresses(), k, c, x, y, packed, zero, act](size_t p0, size_t p1) {
        k->dwconv(c, A.f32(x), packed, zero, A.f32(y), p0, p1, act.lo, act.hi);
      };
      return;
    }
    // Runs of pixels whose output stays in L1 between the convolution and its epilogue.
    const size_t run = std::max<size_t>(1, (16 << 10) / (c.K * sizeof(float)));
    s.fn = [&A = pb.addresses(), k, c, x, y, z, packed, zero, act, epilogue_at, run](size_t p0, size_t p1) {
      const kern::F32Epilogue e = epilogue_at(z >= 0 ? A.f32(z) : nullptr);
      for (size_t q0 = p0; q0 < p1; q0 += run) {
        const size_t q1 = std::min(p1, q0 + run);
        k->dwconv(c, A.f32(x), packed, zero, A.f32(y), q0, q1, e.conv_min(act.lo), e.conv_max(act.hi));
        e.apply((q1 - q0) * c.K, e.residual ? e.residual + q0 * c.K : nullptr, A.f32(y) + q0 * c.K, act.lo, act.hi);
      }
    };
    return;
  }
  if (kern::conv_runs_kernel_rows(c)) {
    // Kernel rows (kernels/conv_rows.h): rows above or below the input point at a zero row of
    // KW * C floats; each run gathers its pixels' rows over the left or right padding into `edges`.
    const kern::ConvGeometry r = kern::conv_rows_geometry(c);
    const float* zero_row = pb.own(r.C * sizeof(float)).as<float>();
    const int edges = pb.new_buf(std::max<size_t>(1, kern::conv_rows_edge_elements<float>(c)) * sizeof(float));
    std::vector<int> rows_reads = reads;
    rows_reads.push_back(edges);
    Step& s = pb.add_step(n.name, c.out_pixels(), kc->mr, rows_reads, {y, edges});
    Step* sp = &s;
    pb.count_indirection(r);
    s.bind = [&A = pb.addresses(), sp, c, r, x, edges, zero_row] {
      sp->indirection.resize(r.out_pixels() * r.taps());
      kern::conv_rows_indirection_init<float>(c, A.f32(x), zero_row, A.f32(edges),
                                              reinterpret_cast<const float**>(sp->indirection.data()));
    };
    s.fn = [&A = pb.addresses(), sp, kc, c, r, x, y, z, edges, packed, act, epilogue_at](size_t p0, size_t p1) {
      kern::conv_rows_gather_edges<float>(c, A.f32(x), 0.0f, A.f32(edges), p0, p1);
      kern::f32_conv_run(*kc, r, 0, reinterpret_cast<const float* const*>(sp->indirection.data()), packed, A.f32(y), p0,
                         p1, act.lo, act.hi, 0, kern::kAllPanels, epilogue_at(z >= 0 ? A.f32(z) : nullptr));
    };
    return;
  }
  const OutputGrid grid = conv_output_grid(c, kc->mr, kc->nr, sizeof(float), pb.w.per_node[i].size());
  Step& s = pb.add_step(n.name, grid.work(), grid.mr, reads, {over_residual ? -1 : y});
  Step* sp = &s;
  pb.count_indirection(c);
  s.bind = [&A = pb.addresses(), sp, c, x, zero] {
    const size_t per_group = c.out_pixels() * c.taps();
    sp->indirection.resize(per_group * c.groups);
    for (size_t grp = 0; grp < c.groups; ++grp)
      kern::conv_indirection_init(c, grp, A.f32(x), zero,
                                  reinterpret_cast<const float**>(sp->indirection.data()) + grp * per_group);
  };
  const size_t packed_per_group = kern::f32_conv_packed_floats(c, kc->nr) / c.groups;
  s.fn = [&A = pb.addresses(), sp, kc, c, y, z, packed, packed_per_group, act, grid, epilogue_at](size_t i0,
                                                                                                  size_t i1) {
    const size_t per_group = c.out_pixels() * c.taps();
    const float* const* ind = reinterpret_cast<const float* const*>(sp->indirection.data());
    const kern::F32Epilogue epilogue = epilogue_at(z >= 0 ? A.f32(z) : nullptr);
    grid.split(i0, i1, [&](size_t p0, size_t p1, size_t n0, size_t n1) {
      for (size_t grp = 0; grp < c.groups; ++grp)
        kern::f32_conv_run(*kc, c, grp, ind + grp * per_group, packed + grp * packed_per_group, A.f32(y), p0, p1,
                           act.lo, act.hi, n0, n1, epilogue);
    });
  };
}

std::string conv_kernel(const Graph& g, const Node& n, const Dispatch& d) {
  const kern::ConvGeometry c = conv_geometry(g, n);
  if (is_depthwise(c)) return d.f32->dwconv.name;
  const kern::F32ConvKernel& kc = kern::f32_conv_kernel_for(*d.f32, c.Kg());
  return kern::f32_conv_kernel_name(kc, kern::conv_runs_kernel_rows(c) ? kern::conv_rows_geometry(c) : c);
}

}  // namespace

int64_t conv_macs(const Graph& g, const Node& n) {
  const kern::ConvGeometry c = conv_geometry(g, n);
  return static_cast<int64_t>(c.out_pixels() * c.K * c.Cg() * c.taps());
}

const OpRuntime kConvRuntime = {pack_conv, plan_conv, conv_kernel, conv_macs};

}  // namespace q8::rt
