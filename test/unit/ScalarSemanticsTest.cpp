//===- ScalarSemanticsTest.cpp - the table of scalar ops ------------------===//
//
// ir/ScalarSemantics.h: every Injective op of the dialect has an entry
// (apart from broadcast and dropout, which depend on more than their
// operands' elements), no other op has one, and entries evaluate and spell
// as stated.
//
//===----------------------------------------------------------------------===//

#include "ir/ScalarSemantics.h"
#include "ir/KilnDialect.h"
#include "ir/OpTraits.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace kiln;

namespace {

TEST(ScalarSemantics, EveryInjectiveOpHasAnEntry) {
  mlir::MLIRContext context;
  context.loadDialect<KilnDialect>();
  int entries = 0;
  for (mlir::RegisteredOperationName name : context.getRegisteredOperations()) {
    if (name.getDialectNamespace() != "kiln")
      continue;
    bool injective = name.hasTrait<kiln::OpTrait::Injective>();
    bool special = name.getStringRef() == "kiln.broadcast" ||
                   name.getStringRef() == "kiln.dropout";
    EXPECT_EQ(hasScalarSemantics(name), injective && !special)
        << name.getStringRef().str();
    entries += hasScalarSemantics(name);
  }
  EXPECT_GE(entries, 20);
}

TEST(ScalarSemantics, EntriesEvaluateAndSpell) {
  mlir::MLIRContext context;
  context.loadDialect<KilnDialect>();
  mlir::OpBuilder b(&context);
  mlir::Location loc = b.getUnknownLoc();
  mlir::OwningOpRef<mlir::ModuleOp> module = mlir::ModuleOp::create(loc);
  b.setInsertionPointToEnd(module->getBody());
  auto f32 = mlir::RankedTensorType::get({4}, b.getF32Type());
  auto i32 = mlir::RankedTensorType::get({4}, b.getI32Type());
  auto splat = [&](mlir::RankedTensorType type, double v) -> mlir::Value {
    mlir::Attribute value =
        llvm::isa<mlir::FloatType>(type.getElementType())
            ? mlir::Attribute(b.getFloatAttr(type.getElementType(), v))
            : mlir::Attribute(b.getIntegerAttr(type.getElementType(), v));
    return b.create<ConstantOp>(loc, mlir::DenseElementsAttr::get(type, value));
  };
  mlir::Value x = splat(f32, 1), n = splat(i32, 7), m = splat(i32, -2);
  CSpelling c{[](double v) { return std::to_string(v) + "f"; },
              [](llvm::StringRef f, llvm::StringRef a) {
                return (f + "f(" + a + ")").str();
              },
              "float"};

  std::optional<ScalarSemantics> sigmoid =
      scalarSemantics(b.create<SigmoidOp>(loc, x));
  ASSERT_TRUE(sigmoid);
  EXPECT_DOUBLE_EQ(sigmoid->evaluate({0.0}), 0.5);
  EXPECT_EQ(sigmoid->spell({"x"}, c), "1.000000f / (1.000000f + expf(-(x)))");

  // Integer division truncates, as C's; float division does not.
  std::optional<ScalarSemantics> idiv =
      scalarSemantics(b.create<DivOp>(loc, i32, n, m));
  ASSERT_TRUE(idiv);
  EXPECT_EQ(idiv->evaluate({7.0, -2.0}), -3.0);
  EXPECT_EQ(idiv->spell({"a", "b"}, c), "a / b");
  std::optional<ScalarSemantics> fdiv =
      scalarSemantics(b.create<DivOp>(loc, f32, x, x));
  EXPECT_EQ(fdiv->evaluate({7.0, -2.0}), -3.5);

  // A comparison's predicate and max's choice for NaN (std::max's).
  std::optional<ScalarSemantics> le = scalarSemantics(
      b.create<CmpOp>(loc, mlir::RankedTensorType::get({4}, b.getI1Type()),
                      CmpPredicate::le, x, x));
  EXPECT_EQ(le->evaluate({1.0, 1.0}), 1.0);
  EXPECT_EQ(le->evaluate({2.0, 1.0}), 0.0);
  EXPECT_EQ(le->spell({"a", "b"}, c), "a <= b");
  std::optional<ScalarSemantics> max =
      scalarSemantics(b.create<MaxOp>(loc, f32, x, x));
  EXPECT_TRUE(std::isnan(max->evaluate({NAN, 1.0})));
  EXPECT_EQ(max->evaluate({1.0, NAN}), 1.0);
  EXPECT_EQ(max->spell({"a", "b"}, c), "(a < b ? b : a)");

  // Ops outside the table.
  EXPECT_FALSE(scalarSemantics(x.getDefiningOp()));
}

} // namespace
