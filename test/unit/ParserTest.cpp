//===- ParserTest.cpp - parsing, precedence and error recovery ------------===//

#include "frontend/Parser.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

using namespace kiln::frontend;

namespace {

/// Parses `source` and collects the error messages with their lines.
class ParserTest : public ::testing::Test {
protected:
  ParserTest()
      : handler(&context, [this](mlir::Diagnostic &d) {
          unsigned line = 0;
          if (auto loc = llvm::dyn_cast<mlir::FileLineColLoc>(d.getLocation()))
            line = loc.getLine();
          errors.push_back(std::to_string(line) + ": " + d.str());
          return mlir::success();
        }) {}

  std::unique_ptr<ModuleAST> parse(llvm::StringRef source,
                                   ParserLimits limits = {}) {
    errors.clear();
    return parseModelFile(source, "test.kiln", context, limits);
  }

  /// The value of the first statement of the first model.
  const Expr &firstValue(const ModuleAST &module) {
    return *llvm::cast<ValueStmt>(*module.models.at(0).body.at(0)).value;
  }

  /// The expression as a fully parenthesized string.
  static std::string show(const Expr &e) {
    if (auto *b = llvm::dyn_cast<BinaryExpr>(&e))
      return "(" + show(*b->lhs) + " " + b->op + " " + show(*b->rhs) + ")";
    if (auto *u = llvm::dyn_cast<UnaryExpr>(&e))
      return "(-" + show(*u->operand) + ")";
    if (auto *n = llvm::dyn_cast<NameExpr>(&e))
      return n->name;
    if (auto *i = llvm::dyn_cast<IntegerExpr>(&e))
      return std::to_string(i->value);
    if (auto *c = llvm::dyn_cast<CallExpr>(&e)) {
      std::string s = c->callee + "(";
      for (const ExprPtr &a : c->args)
        s += show(*a) + ",";
      for (const KeywordArg &k : c->kwargs)
        s += k.name + "=" + show(*k.value) + ",";
      return s + ")";
    }
    return "?";
  }

  std::string parseExpr(llvm::StringRef expr) {
    std::string source = ("model m {\n y = " + expr + "\n}\n").str();
    auto module = parse(source);
    if (!module)
      return "error";
    return show(firstValue(*module));
  }

  mlir::MLIRContext context;
  mlir::ScopedDiagnosticHandler handler;
  std::vector<std::string> errors;
};

TEST_F(ParserTest, Precedence) {
  EXPECT_EQ(parseExpr("a + b * c"), "(a + (b * c))");
  EXPECT_EQ(parseExpr("a - b - c"), "((a - b) - c)");
  EXPECT_EQ(parseExpr("a @ b + c"), "((a @ b) + c)");
  EXPECT_EQ(parseExpr("a < b + c"), "(a < (b + c))");
  EXPECT_EQ(parseExpr("(a + b) * c"), "((a + b) * c)");
}

TEST_F(ParserTest, PowerIsRightAssociativeAndBindsTighterThanMinus) {
  EXPECT_EQ(parseExpr("a ** b ** c"), "(a ** (b ** c))");
  EXPECT_EQ(parseExpr("-a ** 2"), "(-(a ** 2))");
  EXPECT_EQ(parseExpr("a ** -b"), "(a ** (-b))");
}

TEST_F(ParserTest, CallsWithKeywordArguments) {
  EXPECT_EQ(parseExpr("sum(x, axis=1, keepdims=k)"),
            "sum(x,axis=1,keepdims=k,)");
  EXPECT_EQ(parseExpr("f(a == b)"), "f((a == b),)");
  EXPECT_EQ(parseExpr("f(\n a,\n b,\n)"), "f(a,b,)");
}

TEST_F(ParserTest, Statements) {
  auto module = parse("model m {\n input x: f32[batch, 3]; param w: f32[3] = "
                      "zeros()\n loss = x\n metric a = x\n}\n");
  ASSERT_TRUE(module) << (errors.empty() ? "" : errors[0]);
  const ModelAST &m = module->models[0];
  EXPECT_EQ(m.name, "m");
  ASSERT_EQ(m.body.size(), 4u);
  const auto &input = llvm::cast<InputStmt>(*m.body[0]);
  EXPECT_EQ(input.type.dtype, "f32");
  EXPECT_EQ(input.type.dims[0].symbol, "batch");
  EXPECT_EQ(input.type.dims[1].size, 3);
  EXPECT_TRUE(llvm::isa<ParamStmt>(*m.body[1]));
  EXPECT_EQ(m.body[2]->getKind(), Stmt::Kind::Loss);
  EXPECT_EQ(m.body[3]->getKind(), Stmt::Kind::Metric);
  EXPECT_EQ(m.body[3]->name, "a");
}

TEST_F(ParserTest, RecoversToReportEveryBrokenStatement) {
  auto module = parse("model m {\n"
                      "  a = 1 +\n"        // line 2: missing operand
                      "  input x f32[3]\n" // line 3: missing ':'
                      "  b = 2 3\n"        // line 4: stray token
                      "  c = 1\n"
                      "}\n");
  EXPECT_FALSE(module);
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[1].substr(0, 3), "3: ");
  EXPECT_EQ(errors[2], "4: expected end of statement, found '3'");
}

TEST_F(ParserTest, StopsAfterTheErrorLimit) {
  std::string source = "model m {\n";
  for (int i = 0; i < 50; ++i)
    source += "  = 1\n";
  source += "}\n";
  EXPECT_FALSE(
      parse(source, ParserLimits{/*maxErrors=*/5, /*maxNesting=*/200}));
  ASSERT_EQ(errors.size(), 6u);
  EXPECT_NE(errors.back().find("too many errors (5)"), std::string::npos);
}

TEST_F(ParserTest, DeepNestingIsAnErrorNotACrash) {
  std::string deep(100000, '(');
  EXPECT_FALSE(parse("model m {\n y = " + deep + "\n}\n"));
  ASSERT_FALSE(errors.empty());
  EXPECT_NE(errors[0].find("nested too deeply"), std::string::npos);
}

TEST_F(ParserTest, EmptyFile) {
  EXPECT_FALSE(parse(""));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("but the file has none"), std::string::npos);
}

TEST_F(ParserTest, LexicalErrorsAreReportedOnce) {
  EXPECT_FALSE(parse("model m {\n y = 1.2.3\n}\n"));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "2: invalid number '1.2.3'");
}

} // namespace
