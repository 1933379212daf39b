//===- CoverageTest.cpp - every gradient rule has a gradient check --------===//
//
// The differentiable ops are read from the dialect (the ops with a
// DifferentiableOpInterface), not written down, so a new rule without a
// gradient case fails here. The ops without a rule are listed with a reason,
// so that adding a rule makes the list stale and fails here too.
//
//===----------------------------------------------------------------------===//

#include "test/numerics/GradientCheck.h"

#include "passes/Passes.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <set>

using namespace kiln::numerics;
using mlir::RegisteredOperationName;

namespace {

struct OpWithoutRule {
  const char *op;
  const char *reason;
};

/// Every kiln op deliberately without a gradient rule.
constexpr OpWithoutRule kOpsWithoutRule[] = {
    {"kiln.constant", "a source: there is nothing upstream to differentiate"},
    {"kiln.param", "a source: kiln-autodiff makes it an argument"},
    {"kiln.cmp", "its i1 result carries no gradient"},
    {"kiln.argmax", "its i32 result carries no gradient"},
    {"kiln.linear", "composite: kiln-decompose lowers it before autodiff"},
    {"kiln.accuracy", "composite metric: kiln-decompose lowers it"},
    {"kiln.iota", "a source: its i32 result carries no gradient"},
    {"kiln.cross_entropy_grad", "gradient primitive, built only by rules"},
    {"kiln.gelu_grad", "gradient primitive, built only by rules"},
    {"kiln.conv2d_grad_input", "gradient primitive, built only by rules"},
    {"kiln.conv2d_grad_weight", "gradient primitive, built only by rules"},
    {"kiln.max_pool2d_grad", "gradient primitive, built only by rules"},
    {"kiln.avg_pool2d_grad", "gradient primitive, built only by rules"},
    {"kiln.embedding_grad", "gradient primitive, built only by rules"},
    {"kiln.attention_grad_q", "gradient primitive, built only by rules"},
    {"kiln.attention_grad_kv", "gradient primitive, built only by rules"},
    {"kiln.all_reduce", "data parallelism: kiln-data-parallel adds it to "
                        "the gradients autodiff made"},
    {"kiln.kernel", "kernel-level IR: fusion runs after autodiff"},
    {"kiln.yield", "kernel-level IR: fusion runs after autodiff"},
};

bool hasRule(RegisteredOperationName name) {
  return name.hasInterface<kiln::DifferentiableOpInterface>();
}

class Coverage : public ::testing::Test {
protected:
  Coverage() { loadDialects(context); }

  std::vector<RegisteredOperationName> kilnOps() {
    std::vector<RegisteredOperationName> ops;
    for (RegisteredOperationName name : context.getRegisteredOperations())
      if (name.getDialectNamespace() == "kiln")
        ops.push_back(name);
    return ops;
  }

  mlir::MLIRContext context;
};

TEST_F(Coverage, EveryOpWithARuleHasAGradientCase) {
  std::set<std::string> checked;
  for (const GradientCase &c : allGradientCases())
    checked.insert(c.op);
  std::string missing;
  for (RegisteredOperationName name : kilnOps())
    if (hasRule(name) && !checked.count(name.getStringRef().str()))
      missing += " " + name.getStringRef().str();
  EXPECT_TRUE(missing.empty())
      << "ops with a gradient rule but no gradient case:" << missing;
}

TEST_F(Coverage, EveryOpWithoutARuleIsListed) {
  std::set<std::string> listed;
  for (const OpWithoutRule &entry : kOpsWithoutRule)
    listed.insert(entry.op);
  std::string unlisted;
  for (RegisteredOperationName name : kilnOps())
    if (!hasRule(name) && !listed.count(name.getStringRef().str()))
      unlisted += " " + name.getStringRef().str();
  EXPECT_TRUE(unlisted.empty())
      << "ops without a gradient rule, missing from kOpsWithoutRule:"
      << unlisted;
}

TEST_F(Coverage, ListedOpsExistAndHaveNoRule) {
  for (const OpWithoutRule &entry : kOpsWithoutRule) {
    std::optional<RegisteredOperationName> name =
        RegisteredOperationName::lookup(entry.op, &context);
    if (!name) {
      ADD_FAILURE() << entry.op << " is not an op of the kiln dialect";
      continue;
    }
    EXPECT_FALSE(hasRule(*name))
        << entry.op << " now has a gradient rule (listed as: " << entry.reason
        << "): remove it from kOpsWithoutRule and add gradient cases";
  }
}

TEST_F(Coverage, EveryCaseChecksAnOpWithARule) {
  for (const GradientCase &c : allGradientCases()) {
    std::optional<RegisteredOperationName> name =
        RegisteredOperationName::lookup(c.op, &context);
    EXPECT_TRUE(name && hasRule(*name))
        << "case " << c.name << " checks " << c.op
        << ", which is not a kiln op with a gradient rule";
  }
}

// A param reaching the loss only through a gradient-only op (second
// derivatives are not supported): kiln-autodiff fails with one error
// located at that op.
TEST(MissingRule, IsALocatedError) {
  constexpr llvm::StringLiteral ir = R"mlir(
func.func @m() -> tensor<f64> attributes {kiln.model} {
  %x = kiln.constant dense<1.000000e+00> : tensor<1x1x4x4xf64>
  %g = kiln.param "g" : tensor<1x1x2x2xf64> init #kiln.init<zeros>
  %y = kiln.max_pool2d_grad %x, %g kernel [2, 2] stride [2, 2] padding [0, 0] : (tensor<1x1x4x4xf64>, tensor<1x1x2x2xf64>) -> tensor<1x1x4x4xf64>
  %l = kiln.reduce_sum %y [] : (tensor<1x1x4x4xf64>) -> tensor<f64>
  return %l : tensor<f64>
}
)mlir";
  mlir::MLIRContext context;
  loadDialects(context);
  std::vector<std::pair<unsigned, std::string>> errors;
  mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &d) {
    unsigned line = 0;
    if (auto loc = llvm::dyn_cast<mlir::FileLineColLoc>(d.getLocation()))
      if (loc.getFilename() == "missing_rule.mlir")
        line = loc.getLine();
    if (d.getSeverity() == mlir::DiagnosticSeverity::Error)
      errors.emplace_back(line, d.str());
    return mlir::success();
  });
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceString<mlir::ModuleOp>(ir, mlir::ParserConfig(&context),
                                              "missing_rule.mlir");
  ASSERT_TRUE(module);

  mlir::PassManager pm(&context);
  pm.addPass(kiln::createKilnAutodiff());
  EXPECT_TRUE(mlir::failed(pm.run(*module)));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].first, 5u) << "the error is not at the max_pool2d_grad";
  EXPECT_NE(
      errors[0].second.find("'kiln.max_pool2d_grad' has no gradient rule"),
      std::string::npos)
      << errors[0].second;
}

} // namespace
