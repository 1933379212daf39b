//===- GradientCheck.h - finite-difference gradient checks ------*- C++ -*-===//
//
// The harness of kiln-gradient-tests. A GradientCase is a model @m in f64
// whose loss is a weighted sum of the result of one op under test. The check
// runs kiln-autodiff, evaluates @m_grad with the reference executor, and
// compares each parameter's gradient with central differences of @m itself.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TEST_NUMERICS_GRADIENTCHECK_H
#define KILN_TEST_NUMERICS_GRADIENTCHECK_H

#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace kiln::numerics {

/// What a case expects of the gradients autodiff builds.
enum class Expect {
  /// Every parameter's gradient matches central differences of the loss.
  FiniteDifferences,
  /// The op's rule gives its operand no gradient (zero almost everywhere, or
  /// shape-only): every parameter's gradient is exactly zero.
  Zero,
};

struct GradientCase {
  /// Unique; letters, digits and '_' only (it names the gtest).
  std::string name;
  /// The op whose gradient rule the case checks, e.g. "kiln.matmul", or a
  /// composite checked through its decomposition. It must occur in `ir`.
  std::string op;
  /// A module with a function @m marked `kiln.model`, without arguments,
  /// whose parameters are f64 and whose only result is the loss.
  std::string ir;
  /// Parameters that must take positive values (log, sqrt, divisors, the
  /// base of pow); the others take values of either sign.
  std::vector<std::string> positive = {};
  Expect expect = Expect::FiniteDifferences;
};

/// gtest prints a case by its name.
inline void PrintTo(const GradientCase &c, std::ostream *os) { *os << c.name; }

/// The model text of most cases: `body` defines `%y : tensor<shape x f64>`
/// and the loss is `reduce_sum(%y * %w)`, with %w a constant of distinct,
/// non-uniform weights, so that every element of %y gets its own gradient.
std::string weightedSumModel(llvm::ArrayRef<int64_t> shape,
                             llvm::StringRef body);

/// The cases of each op family (ElementwiseCases.cpp, ShapeCases.cpp,
/// NormalizationCases.cpp, ConvPoolCases.cpp, AttentionTest.cpp) and all of
/// them together.
std::vector<GradientCase> elementwiseCases();
std::vector<GradientCase> shapeCases();
std::vector<GradientCase> normalizationCases();
std::vector<GradientCase> convPoolCases();
/// kiln.attention (AttentionTest.cpp).
std::vector<GradientCase> attentionCases();
const std::vector<GradientCase> &allGradientCases();

/// Loads the dialects the cases use (kiln, func) into `context`.
void loadDialects(mlir::MLIRContext &context);

/// Runs the check of `c`. On failure the message names the case, and for the
/// first mismatching elements the parameter, the element index, the analytic
/// and the numeric gradient.
::testing::AssertionResult checkGradients(const GradientCase &c);

} // namespace kiln::numerics

#endif // KILN_TEST_NUMERICS_GRADIENTCHECK_H
