// QuantizedConv: uint8 activations, int8 weights, the int8 indirect GEMM or depthwise kernel (NHWC);
// a convolution with few input channels (the first layer) runs as a GEMM over gathered receptive
// fields instead (kern::qu8_conv_im2col_run).
#include "runtime/ops/ops.h"

#include <cstring>

#include "kernels/qu8.h"

namespace q8::rt {

using ir::ConstTensor;
using ir::Graph;
using ir::Node;
using ir::Op;
using ir::Shape;

namespace {

// With C = 3 the igemm pads each tap's channels to kr = 4 (a quarter of its work is zeros) and
// loads a pointer per tap and pixel; gathering the receptive field into one row of taps * C bytes
// pads once per row, at the cost of the gather (about a third of the GEMM's time). Measured on
// Zen 5 (avx512vnni, 224x224x3 input, 64 outputs), im2col against igemm: 7x7 s2 0.47 / 0.53 ms,
// 11x11 s4 0.24 / 0.29 ms, 5x5 s2 0.28 / 0.28 ms, 3x3 s2 (32 outputs) 0.10 / 0.07 ms; and with
// C = 4 (no padding to save) 5x5 s1 0.22 / 0.14 ms. So: fewer than 4 channels, 6x6 taps or more.
constexpr size_t kIm2colMaxChannels = 3, kIm2colMinTaps = 36;
bool uses_im2col(const kern::ConvGeometry& c) {
  return c.groups == 1 && c.C <= kIm2colMaxChannels && c.taps() >= kIm2colMinTaps;
}

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
  if (uses_im2col(c)) {
    AlignedBuffer buf(kern::qu8_conv_im2col_packed_bytes(c, q.nr, q.kr, q.weight_bytes));
    kern::qu8_conv_im2col_pack(c, q.nr, q.kr, q.weight_bytes, w, b ? b->data<int32_t>() : nullptr, m.data(), za,
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
  if (uses_im2col(c)) {
    // Each range of pixels [p0, p1) gathers its blocks into scratch rows [p0, p0 + block) clipped
    // to p1 (qu8_conv_im2col_run), so the threads' rows never overlap and only a block's worth of
    // rows per range is touched; the GEMM reads up to kr - 1 bytes past the last row.
    const size_t row = kern::qu8_conv_im2col_row_bytes(c);
    const int scratch = pb.new_buf(c.out_pixels() * row + kern::kQu8MaxKr);
    const uint8_t za = static_cast<uint8_t>(g.values[n.inputs[0]].zero_point);
    Step& s = pb.add_step(n.name, c.out_pixels(), pb.d.qu8->mr, {x, scratch}, {y, scratch});
    s.fn = [&A = pb.addresses(), k = pb.d.qu8, c, x, y, scratch, row, za, packed, rq](size_t p0, size_t p1) {
      kern::qu8_conv_im2col_run(*k, c, A.u8(x), za, packed, A.u8(scratch) + p0 * row, A.u8(y), p0, p1, rq);
    };
    return;
  }
  // Padding taps read the input zero point: (z_a - z_a) * w = 0 (see qu8.h's algebra).
  AlignedBuffer& owned = pb.own(c.C + kBufferSlack);
  std::memset(owned.data(), g.values[n.inputs[0]].zero_point, c.C + kBufferSlack);
  const uint8_t* zero = owned.data();
  const kern::QU8Kernels* k = pb.d.qu8;
  if (is_depthwise(c)) {
    Step& s = pb.add_step(n.name, c.out_pixels(), 1, {x}, {y});
    s.fn = [&A = pb.addresses(), k, c, x, y, packed, zero, rq](size_t p0, size_t p1) {
      k->dwconv(c, A.u8(x), packed, zero, A.u8(y), p0, p1, rq);
    };
    return;
  }
  Step& s = pb.add_step(n.name, c.out_pixels(), k->mr, {x}, {y});
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
  s.fn = [&A = pb.addresses(), sp, k, c, y, packed, packed_per_group, rq](size_t p0, size_t p1) {
    const size_t per_group = c.out_pixels() * c.taps();
    const uint8_t* const* ind = reinterpret_cast<const uint8_t* const*>(sp->indirection.data());
    for (size_t grp = 0; grp < c.groups; ++grp)
      kern::qu8_conv_run(*k, c, grp, ind + grp * per_group,
                         static_cast<const uint8_t*>(packed) + grp * packed_per_group, A.u8(y), p0, p1, rq);
  };
}

std::string qconv_kernel(const Graph& g, const Node& n, const Dispatch& d) {
  const kern::ConvGeometry c = conv_geometry(g, n);
  return is_depthwise(c) ? d.qu8->dwconv.name : uses_im2col(c) ? d.qu8->gemm.name : d.qu8->igemm.name;
}

}  // namespace

const OpRuntime kQuantizedConvRuntime = {pack_qconv, plan_qconv, qconv_kernel, conv_macs};

}  // namespace q8::rt
