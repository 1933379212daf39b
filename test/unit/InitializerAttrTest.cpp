//===- InitializerAttrTest.cpp - #kiln.init print/parse -------------------===//

#include "ir/KilnDialect.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

using namespace kiln;

namespace {

class InitializerAttrTest : public ::testing::Test {
protected:
  InitializerAttrTest() { context.loadDialect<KilnDialect>(); }

  std::string print(mlir::Attribute attr) {
    std::string text;
    llvm::raw_string_ostream os(text);
    attr.print(os);
    return text;
  }

  mlir::MLIRContext context;
};

TEST_F(InitializerAttrTest, PrintsNamedArguments) {
  auto attr = InitializerAttr::get(&context, InitKind::normal, 0.0, 0.02);
  EXPECT_EQ(print(attr),
            "#kiln.init<normal(mean = 0.000000e+00, std = 2.000000e-02)>");
}

TEST_F(InitializerAttrTest, KindsWithoutArgumentsPrintBare) {
  auto attr = InitializerAttr::get(&context, InitKind::zeros, 0.0, 0.0);
  EXPECT_EQ(print(attr), "#kiln.init<zeros>");
}

TEST_F(InitializerAttrTest, RoundTripsEveryKindExactly) {
  for (uint32_t k = 0; k <= static_cast<uint32_t>(InitKind::xavier_normal);
       ++k) {
    auto kind = static_cast<InitKind>(k);
    auto [a, b] = InitializerAttr::defaultArguments(kind);
    // Irrational values must survive printing and parsing bit for bit; a
    // kind only stores the arguments it has.
    size_t count = InitializerAttr::argumentNames(kind).size();
    if (count > 0)
      a += std::sqrt(2.0) / 7;
    if (count > 1)
      b += 1.0 / 3.0;
    auto attr = InitializerAttr::get(&context, kind, a, b);
    std::string text = print(attr);
    mlir::Attribute parsed = mlir::parseAttribute(text, &context);
    ASSERT_TRUE(parsed) << text;
    EXPECT_EQ(parsed, attr) << text;
  }
}

TEST_F(InitializerAttrTest, OmittedArgumentsTakeDefaults) {
  mlir::Attribute parsed =
      mlir::parseAttribute("#kiln.init<kaiming_normal>", &context);
  auto attr = llvm::dyn_cast_or_null<InitializerAttr>(parsed);
  ASSERT_TRUE(attr);
  EXPECT_DOUBLE_EQ(attr.getA().convertToDouble(), std::sqrt(2.0));
}

TEST_F(InitializerAttrTest, RejectsUnknownKindAndArgument) {
  context.getDiagEngine().registerHandler(
      [](mlir::Diagnostic &) { return mlir::success(); });
  EXPECT_FALSE(mlir::parseAttribute("#kiln.init<gaussian>", &context));
  EXPECT_FALSE(
      mlir::parseAttribute("#kiln.init<normal(sigma = 1.0)>", &context));
}

} // namespace
