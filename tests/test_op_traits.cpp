// The op-traits table (engine/ir/op_traits.h) is complete and consistent with the importer's
// table: every op has a row with a name, a shape rule and a sane arity, and an op that ONNX files
// carry has the same name there.
#include <gtest/gtest.h>

#include <string>

#include "ir/op_traits.h"
#include "onnx/onnx_ops.h"

namespace q8::ir {
namespace {

TEST(OpTraits, EveryOpHasACompleteRow) {
  for (size_t i = 0; i < kOpCount; ++i) {
    const Op op = static_cast<Op>(i);
    const OpTraits& t = op_traits(op);
    EXPECT_EQ(t.op, op) << "row " << i;
    ASSERT_NE(t.name, nullptr);
    EXPECT_STREQ(op_name(op), t.name);
    EXPECT_NE(t.shape, nullptr) << t.name;
    EXPECT_LE(t.min_inputs, t.max_inputs) << t.name;
    EXPECT_GE(t.min_inputs, 0) << t.name;
    // A view changes no byte, so in int8 it keeps its input's quantization.
    if (t.view) {
      EXPECT_EQ(t.int8, Int8Role::PassThrough) << t.name;
    }
    // Only ops that compute a float result can take a following clamp.
    if (t.absorbs_activation) {
      EXPECT_EQ(t.dtype, DTypeRule::Float) << t.name;
    }
  }
}

TEST(OpTraits, ImporterNamesAndArityAgree) {
  for (const onnx::OpSpec& s : onnx::op_table()) {
    const OpTraits& t = op_traits(s.op);
    EXPECT_EQ(std::string(t.name), s.onnx);
    // The IR accepts every input count the importer lets through.
    EXPECT_LE(t.min_inputs, s.min_in) << s.onnx;
    EXPECT_GE(t.max_inputs, s.max_in) << s.onnx;
  }
}

TEST(OpTraits, IntegerOpsAreQ8sOwn) {
  // q8's integer ops have no ONNX form: the writer turns them back into QDQ.
  for (size_t i = 0; i < kOpCount; ++i) {
    const Op op = static_cast<Op>(i);
    if (op_traits(op).int8 == Int8Role::Integer) {
      EXPECT_EQ(onnx::find_op(op), nullptr) << op_name(op);
    }
  }
}

}  // namespace
}  // namespace q8::ir
