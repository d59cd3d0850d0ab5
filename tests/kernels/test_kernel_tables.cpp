// Every kernel table is complete, and every entry carries the name of the function it points to:
// the names `q8 info` prints come from these entries, so each must name a kernel of its own
// table's family ("qu8_..."/"f32_...") and ISA suffix ("__avx2", ...).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/f32.h"
#include "kernels/qu8.h"

namespace q8::kern {
namespace {

template <class N>
void expect_named(const N& k, const char* family, const std::string& what) {
  ASSERT_TRUE(static_cast<bool>(k)) << what << " is null";
  const std::string name = k.name;
  EXPECT_EQ(name.rfind(family, 0), 0u) << what << " is named '" << name << "'";
  EXPECT_NE(name.find("__"), std::string::npos) << what << " is named '" << name << "', without its ISA";
}

// Every int8 table; null where the build or target lacks it.
std::vector<const QU8Kernels*> all_qu8_tables() {
  return {qu8_kernels_scalar(),  qu8_kernels_avx2(),       qu8_kernels_avx2_w8(),
          qu8_kernels_avx512(),  qu8_kernels_avx512vnni(), qu8_kernels_avx512vnni_6x64(),
          qu8_kernels_avxvnni(), qu8_kernels_amx(),        qu8_kernels_neon(),
          qu8_kernels_neondot(), qu8_kernels_neoni8mm()};
}

TEST(KernelTables, EveryQu8EntryIsANamedKernel) {
  int tables = 0;
  for (const QU8Kernels* t : all_qu8_tables()) {
    if (!t) continue;  // not built for this target; which ones exist is the dispatch tests' subject
    ++tables;
    const std::string isa = t->isa;
    expect_named(t->igemm, "qu8_igemm_", isa + " igemm");
    expect_named(t->gemm, "qu8_gemm_", isa + " gemm");
    expect_named(t->dwconv, "qu8_dwconv_", isa + " dwconv");
    expect_named(t->maxpool, "qu8_maxpool_", isa + " maxpool");
    expect_named(t->avgpool, "qu8_avgpool_", isa + " avgpool");
    expect_named(t->global_avgpool, "qu8_global_avgpool_", isa + " global_avgpool");
    expect_named(t->add, "qu8_add_", isa + " add");
    expect_named(t->quantize, "qu8_quantize_", isa + " quantize");
    expect_named(t->dequantize, "qu8_dequantize_", isa + " dequantize");
    expect_named(t->mul_rows, "qu8_mul_rows_", isa + " mul_rows");
    expect_named(t->lookup, "qu8_lookup_", isa + " lookup");
    expect_named(t->gemm_dequantize, "qu8_gemm_dequantize_", isa + " gemm_dequantize");
    // Weights are packed in K groups of 4 or 8 (qu8.h), within the slack callers provide.
    EXPECT_TRUE(t->kr == 4 || t->kr == 8) << isa << " kr " << t->kr;
    EXPECT_LE(t->kr, kQu8MaxKr) << isa;
    // The GEMM kernels are each table's own: their names end in the table's ISA.
    const std::string suffix = "__" + isa;
    EXPECT_EQ(std::string(t->igemm.name).substr(std::string(t->igemm.name).size() - suffix.size()), suffix);
  }
  EXPECT_GE(tables, 1);
}

// A table's dense table (QU8Kernels::dense) exists to read fewer weight bytes: int8 ones, in tiles
// of the same ISA, and it is its own dense table.
TEST(KernelTables, DenseTablesReadInt8Weights) {
  for (const QU8Kernels* t : all_qu8_tables()) {
    if (!t) continue;
    const QU8Kernels& d = dense_table(*t);
    EXPECT_EQ(d.weight_bytes, 1u) << t->isa << "'s dense layers read " << d.weight_bytes << "-byte weights";
    EXPECT_EQ(std::string(d.isa).rfind(t->isa, 0), 0u) << t->isa << "'s dense table is " << d.isa;
    EXPECT_EQ(&dense_table(d), &d) << t->isa;
  }
  if (qu8_kernels_avx2()) {
    EXPECT_EQ(qu8_kernels_avx2()->dense, qu8_kernels_avx2_w8());
  }
}

TEST(KernelTables, EveryF32EntryIsANamedKernel) {
  int tables = 0;
  for (const F32Kernels* t : {f32_kernels_scalar(), f32_kernels_avx2(), f32_kernels_avx512(), f32_kernels_avx512_6x64(),
                              f32_kernels_neon()}) {
    if (!t) continue;
    ++tables;
    const std::string isa = t->isa;
    expect_named(t->conv.igemm, "f32_igemm_", isa + " igemm");
    expect_named(t->conv.igemm_block, "f32_igemm_block_", isa + " igemm_block");
    if (t->conv_narrow.igemm || t->conv_narrow.igemm_block) {  // optional: both entries or neither
      expect_named(t->conv_narrow.igemm, "f32_igemm_", isa + " narrow igemm");
      expect_named(t->conv_narrow.igemm_block, "f32_igemm_block_", isa + " narrow igemm_block");
    }
    expect_named(t->gemm, "f32_gemm_", isa + " gemm");
    expect_named(t->dwconv, "f32_dwconv_", isa + " dwconv");
    expect_named(t->maxpool, "f32_maxpool_", isa + " maxpool");
    expect_named(t->avgpool, "f32_avgpool_", isa + " avgpool");
    expect_named(t->global_avgpool, "f32_global_avgpool_", isa + " global_avgpool");
    // Each binary op kind's entries, in BinaryOp order.
    const char* const kinds[kTableBinaryOps] = {"add", "sub", "mul", "div"};
    for (size_t op = 0; op < kTableBinaryOps; ++op) {
      const std::string k = kinds[op];
      expect_named(t->binary[op], ("f32_" + k + "__").c_str(), isa + " " + k);
      expect_named(t->binary_rows[op], ("f32_" + k + "_rows__").c_str(), isa + " " + k + "_rows");
    }
    expect_named(t->clamp, "f32_clamp_", isa + " clamp");
  }
  EXPECT_GE(tables, 1);
}

}  // namespace
}  // namespace q8::kern
