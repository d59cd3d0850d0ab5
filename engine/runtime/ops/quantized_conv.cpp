// QuantizedConv: uint8 activations, int8 weights, the int8 indirect GEMM or depthwise kernel (NHWC);
// a convolution with few input channels (the first layer) runs the indirect GEMM over kernel rows
// (kernels/conv_rows.h).
#include "runtime/ops/ops.h"

#include <algorithm>
#include <cstring>

#include "kernels/conv_rows.h"
#include "kernels/qu8.h"

namespace q8::rt {

using ir::ConstTensor;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

namespace {

AlignedBuffer pack_qconv(const Graph& g, const Node& n, const Dispatch& d) {
  const kern::QU8Kernels& q = *d.qu8;
  const kern::ConvGeometry c = conv_geometry(g, n);
  const ConstTensor* b = const_input(g, n, 2);
  const int8_t* w = const_input(g, n, 1)->data<int8_t>();
  const std::vector<float> m = requant_multipliers(g, n);
  const uint8_t za = static_cast<uint8_t>(g.values[n.inputs[0]].zero_point);
  if (is_depthwise(c)) {
    AlignedBuffer buf(kern::qu8_dwconv_packed_bytes(c));
    kern::qu8_dwconv_pack(c, w, b ? b->data<int32_t>() : nullptr, m.data(), za, buf.data());
    return buf;
  }
  if (kern::conv_runs_kernel_rows(c)) {
    AlignedBuffer buf(kern::qu8_conv_packed_bytes(kern::conv_rows_geometry(c), q.nr, q.kr, q.weight_bytes));
    kern::qu8_conv_rows_pack(c, q.nr, q.kr, q.weight_bytes, w, b ? b->data<int32_t>() : nullptr, m.data(), za,
                             buf.data());
    return buf;
  }
  AlignedBuffer buf(kern::qu8_conv_packed_bytes(c, q.nr, q.kr, q.weight_bytes));
  kern::qu8_conv_pack(c, q.nr, q.kr, q.weight_bytes, w, b ? b->data<int32_t>() : nullptr, m.data(), za, buf.data());
  return buf;
}

void plan_qconv(Plan::Builder& pb, size_t i, const Node& n) {
  const Graph& g = pb.g;
  const kern::ConvGeometry c = conv_geometry(g, n);
  const kern::QU8Requant rq = requant_of(g, n);
  const int x = pb.get(n.inputs[0], Layout::NHWC);
  const int y = pb.new_buf(pb.bytes_of(n.outputs[0]));
  pb.define(n.outputs[0], Layout::NHWC, y);
  const void* packed = pb.w.per_node[i].data();
  const kern::QU8Kernels* k = pb.d.qu8;
  if (kern::conv_runs_kernel_rows(c)) {
    // `zero_row` serves rows above and below the input (KW * C bytes of z_a); rows overlapping the
    // left or right padding are gathered into `edges` by each run, range by range (disjoint).
    const kern::ConvGeometry r = kern::conv_rows_geometry(c);
    AlignedBuffer& zrow = pb.own(r.C + kBufferSlack);
    std::memset(zrow.data(), g.values[n.inputs[0]].zero_point, r.C + kBufferSlack);
    const uint8_t* zero_row = zrow.data();
    const int edges = pb.new_buf(std::max<size_t>(1, kern::conv_rows_edge_elements<uint8_t>(c)));
    const uint8_t za = static_cast<uint8_t>(g.values[n.inputs[0]].zero_point);
    Step& s = pb.add_step(n.name, c.out_pixels(), k->mr, {x, edges}, {y, edges});
    Step* sp = &s;
    pb.count_indirection(r);
    s.bind = [&A = pb.addresses(), sp, c, r, x, edges, zero_row] {
      sp->indirection.resize(r.out_pixels() * r.taps());
      kern::conv_rows_indirection_init<uint8_t>(c, A.u8(x), zero_row, A.u8(edges),
                                                reinterpret_cast<const uint8_t**>(sp->indirection.data()));
    };
    s.fn = [&A = pb.addresses(), sp, k, c, r, x, y, edges, za, packed, rq](size_t p0, size_t p1) {
      kern::conv_rows_gather_edges<uint8_t>(c, A.u8(x), za, A.u8(edges), p0, p1);
      kern::qu8_conv_run(*k, r, 0, reinterpret_cast<const uint8_t* const*>(sp->indirection.data()), packed, A.u8(y), p0,
                         p1, rq);
    };
    return;
  }
  // Padding taps read the input zero point: (z_a - z_a) * w = 0 (see qu8.h's algebra).
  AlignedBuffer& owned = pb.own(c.C + kBufferSlack);
  std::memset(owned.data(), g.values[n.inputs[0]].zero_point, c.C + kBufferSlack);
  const uint8_t* zero = owned.data();
  if (is_depthwise(c)) {
    Step& s = pb.add_step(n.name, c.out_pixels(), 1, {x}, {y});
    s.fn = [&A = pb.addresses(), k, c, x, y, packed, zero, rq](size_t p0, size_t p1) {
      k->dwconv(c, A.u8(x), packed, zero, A.u8(y), p0, p1, rq);
    };
    return;
  }
  const OutputGrid grid = conv_output_grid(c, k->mr, k->nr, 1, pb.w.per_node[i].size());
  Step& s = pb.add_step(n.name, grid.work(), grid.mr, {x}, {y});
  Step* sp = &s;
  pb.count_indirection(c);
  s.bind = [&A = pb.addresses(), sp, c, x, zero] {
    const size_t per_group = c.out_pixels() * c.taps();
    sp->indirection.resize(per_group * c.groups);
    for (size_t grp = 0; grp < c.groups; ++grp)
      kern::qu8_conv_indirection_init(c, grp, A.u8(x), zero,
                                      reinterpret_cast<const uint8_t**>(sp->indirection.data()) + grp * per_group);
  };
  const size_t packed_per_group = kern::qu8_conv_packed_bytes(c, k->nr, k->kr, k->weight_bytes) / c.groups;
  s.fn = [&A = pb.addresses(), sp, k, c, y, packed, packed_per_group, rq, grid](size_t i0, size_t i1) {
    const size_t per_group = c.out_pixels() * c.taps();
    const uint8_t* const* ind = reinterpret_cast<const uint8_t* const*>(sp->indirection.data());
    grid.split(i0, i1, [&](size_t p0, size_t p1, size_t n0, size_t n1) {
      for (size_t grp = 0; grp < c.groups; ++grp)
        kern::qu8_conv_run(*k, c, grp, ind + grp * per_group,
                           static_cast<const uint8_t*>(packed) + grp * packed_per_group, A.u8(y), p0, p1, rq, n0, n1);
    });
  };
}

std::string qconv_kernel(const Graph& g, const Node& n, const Dispatch& d) {
  return is_depthwise(conv_geometry(g, n)) ? d.qu8->dwconv.name : d.qu8->igemm.name;
}

}  // namespace

const OpRuntime kQuantizedConvRuntime = {pack_qconv, plan_qconv, qconv_kernel, conv_macs};

}  // namespace q8::rt
