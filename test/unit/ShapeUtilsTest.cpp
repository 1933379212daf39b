//===- ShapeUtilsTest.cpp - broadcasting and axis rules -------------------===//

#include "ir/ShapeUtils.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

using kiln::broadcastShapes;
using kiln::normalizeAxis;
using mlir::ShapedType;

namespace {

constexpr int64_t kDyn = ShapedType::kDynamic;

TEST(BroadcastShapes, AlignsFromTheRight) {
  auto r = broadcastShapes({4, 1, 3}, {5, 3});
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (llvm::SmallVector<int64_t>{4, 5, 3}));
}

TEST(BroadcastShapes, ScalarsBroadcastToAnything) {
  auto r = broadcastShapes({}, {2, 3});
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (llvm::SmallVector<int64_t>{2, 3}));
}

TEST(BroadcastShapes, SizeOneStretches) {
  auto r = broadcastShapes({1}, {7});
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (llvm::SmallVector<int64_t>{7}));
}

TEST(BroadcastShapes, MismatchFails) {
  EXPECT_FALSE(broadcastShapes({3}, {4}));
  EXPECT_FALSE(broadcastShapes({2, 3}, {3, 3, 2}));
}

TEST(BroadcastShapes, DynamicMeetsKnownTakesKnown) {
  auto r = broadcastShapes({kDyn, 512}, {512});
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (llvm::SmallVector<int64_t>{kDyn, 512}));
  auto s = broadcastShapes({kDyn}, {8});
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, (llvm::SmallVector<int64_t>{8}));
}

TEST(BroadcastShapes, DynamicMeetsOneStaysDynamic) {
  auto r = broadcastShapes({kDyn}, {1});
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (llvm::SmallVector<int64_t>{kDyn}));
}

TEST(NormalizeAxis, NegativeCountsFromTheEnd) {
  EXPECT_EQ(normalizeAxis(-1, 3), 2);
  EXPECT_EQ(normalizeAxis(0, 3), 0);
  EXPECT_EQ(normalizeAxis(-3, 3), 0);
}

TEST(NormalizeAxis, OutOfRange) {
  EXPECT_FALSE(normalizeAxis(3, 3));
  EXPECT_FALSE(normalizeAxis(-4, 3));
  EXPECT_FALSE(normalizeAxis(0, 0));
}

TEST(FormatShape, WritesDynamicAsQuestionMark) {
  EXPECT_EQ(kiln::formatShape({kDyn, 784}), "[?, 784]");
  EXPECT_EQ(kiln::formatShape({}), "[]");
}

TEST(FormatTensorType, LanguageSpelling) {
  mlir::MLIRContext context;
  auto type =
      mlir::RankedTensorType::get({kDyn, 10}, mlir::Float32Type::get(&context));
  EXPECT_EQ(kiln::formatTensorType(type), "f32[?, 10]");
}

} // namespace
