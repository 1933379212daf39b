//===- GradientCheck.cpp - finite-difference checks of gradient rules -----===//
//
// For one case:
//   1. Parse the model and give every parameter element a distinct random
//      value away from zero (fixed seed).
//   2. Run kiln-autodiff and evaluate @m_grad: the analytic gradients.
//   3. For every parameter element, evaluate @m with the element moved by +h
//      and by -h: the central difference (L(x+h) - L(x-h)) / 2h.
//   4. Compare with tolerance atol + rtol * |numeric| and report the first
//      mismatches.
//
//===----------------------------------------------------------------------===//

#include "test/numerics/GradientCheck.h"

#include "ir/AttrNames.h"
#include "passes/Passes.h"
#include "reference/Executor.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <random>

using namespace mlir;
using kiln::reference::ElementType;
using kiln::reference::Executor;
using kiln::reference::Tensor;

namespace kiln::numerics {
namespace {

/// The step of the central differences. Its truncation error is about
/// h^2 |L'''| / 6 and its rounding error about 1e-16 |L| / h: both are
/// orders of magnitude below the tolerance for the losses of the cases.
constexpr double kStep = 1e-6;
constexpr double kAtol = 1e-6;
constexpr double kRtol = 1e-5;
/// How many mismatching elements a failure lists.
constexpr int kMaxReported = 8;
constexpr uint64_t kSeed = 20240607;

bool withinTolerance(double actual, double expected) {
  return std::fabs(actual - expected) <= kAtol + kRtol * std::fabs(expected);
}

/// The weight of the k-th element of %y in the loss: distinct for every k,
/// of alternating sign, and exact in binary.
double lossWeight(int64_t k) {
  double magnitude = 0.5 + static_cast<double>(k) / 16.0;
  return k % 2 == 0 ? magnitude : -magnitude;
}

/// Prints the weights of `shape` as the nested list of a dense literal.
void printWeights(llvm::raw_ostream &os, llvm::ArrayRef<int64_t> shape,
                  int64_t &next) {
  if (shape.empty()) {
    os << llvm::format("%.6e", lossWeight(next++));
    return;
  }
  os << '[';
  for (int64_t i = 0; i < shape.front(); ++i) {
    if (i != 0)
      os << ", ";
    printWeights(os, shape.drop_front(), next);
  }
  os << ']';
}

std::string tensorType(llvm::ArrayRef<int64_t> shape) {
  std::string type = "tensor<";
  for (int64_t d : shape)
    type += std::to_string(d) + "x";
  return type + "f64>";
}

/// "[1, 2]": the multi-index of element `flat` of `shape`.
std::string formatIndex(int64_t flat, llvm::ArrayRef<int64_t> shape) {
  std::vector<int64_t> index(shape.size());
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  return reference::formatShape(index);
}

/// Draws the value of every parameter element. Magnitudes lie on a jittered
/// grid over [0.1, 2] with one cell per element, shuffled: any two elements
/// differ by at least half a cell and none is within 0.1 of zero, so relu,
/// abs, max, min and reduce_max are evaluated away from their kinks and
/// ties. Positive parameters map the magnitude into [0.5, 2]; the others
/// get a random sign.
std::vector<Tensor> drawParameters(llvm::ArrayRef<ParamOp> params,
                                   llvm::ArrayRef<std::string> positive) {
  std::mt19937_64 rng(kSeed);
  std::uniform_real_distribution<double> jitter(0.25, 0.75);
  int64_t total = 0;
  for (ParamOp p : params)
    total += p.getType().getNumElements();
  std::vector<double> magnitudes;
  for (int64_t k = 0; k < total; ++k)
    magnitudes.push_back(0.1 + 1.9 * (static_cast<double>(k) + jitter(rng)) /
                                   static_cast<double>(total));
  std::shuffle(magnitudes.begin(), magnitudes.end(), rng);

  std::bernoulli_distribution negative(0.5);
  std::vector<Tensor> values;
  auto next = magnitudes.begin();
  for (ParamOp p : params) {
    bool isPositive = llvm::is_contained(positive, p.getName().str());
    Tensor t(ElementType::f64,
             std::vector<int64_t>(p.getType().getShape().begin(),
                                  p.getType().getShape().end()));
    for (double &v : t.data) {
      double m = *next++;
      v = isPositive ? 0.5 + (m - 0.1) * 1.5 / 1.9 : (negative(rng) ? -m : m);
    }
    values.push_back(std::move(t));
  }
  return values;
}

/// Evaluates the loss of `model` with the parameters of `executor`.
FailureOr<double> evaluateLoss(Executor &executor, func::FuncOp model) {
  FailureOr<std::vector<Tensor>> results = executor.run(model, {});
  if (failed(results))
    return failure();
  return results->front().data.front();
}

} // namespace

std::string weightedSumModel(llvm::ArrayRef<int64_t> shape,
                             llvm::StringRef body) {
  std::string type = tensorType(shape);
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "func.func @m() -> tensor<f64> attributes {kiln.model} {\n"
     << body << "\n  %w = kiln.constant dense<";
  int64_t next = 0;
  printWeights(os, shape, next);
  os << "> : " << type << "\n"
     << "  %wy = kiln.mul %y, %w : (" << type << ", " << type << ") -> " << type
     << "\n";
  if (shape.empty()) {
    os << "  return %wy : tensor<f64>\n}\n";
    return text;
  }
  os << "  %loss = kiln.reduce_sum %wy [] : (" << type << ") -> tensor<f64>\n"
     << "  return %loss : tensor<f64>\n}\n";
  return text;
}

const std::vector<GradientCase> &allGradientCases() {
  static const std::vector<GradientCase> cases = [] {
    std::vector<GradientCase> all;
    for (auto family : {elementwiseCases, shapeCases, normalizationCases,
                        convPoolCases, attentionCases}) {
      std::vector<GradientCase> some = family();
      all.insert(all.end(), some.begin(), some.end());
    }
    return all;
  }();
  return cases;
}

void loadDialects(MLIRContext &context) {
  context.getOrLoadDialect<KilnDialect>();
  context.getOrLoadDialect<func::FuncDialect>();
}

::testing::AssertionResult checkGradients(const GradientCase &c) {
  MLIRContext context(MLIRContext::Threading::DISABLED);
  loadDialects(context);
  std::string diagnostics;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &d) {
    llvm::raw_string_ostream(diagnostics)
        << d.getLocation() << ": " << d << "\n";
    return success();
  });
  auto fail = [&]() {
    return ::testing::AssertionFailure()
           << "case " << c.name << " (" << c.op << "): ";
  };

  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(c.ir, ParserConfig(&context), c.name);
  if (!module)
    return fail() << "the model does not parse:\n" << diagnostics << c.ir;
  auto model = module->lookupSymbol<func::FuncOp>("m");
  if (!model || !model->hasAttr(attrs::model) || model.getNumArguments() != 0 ||
      model.getNumResults() != 1)
    return fail() << "expected @m() -> (loss) marked kiln.model";
  bool hasOp = false;
  model.walk(
      [&](Operation *op) { hasOp |= op->getName().getStringRef() == c.op; });
  if (!hasOp)
    return fail() << "the model does not use " << c.op << ":\n" << c.ir;
  SmallVector<ParamOp> params(model.getBody().front().getOps<ParamOp>());
  if (params.empty())
    return fail() << "the model has no parameters";
  for (ParamOp p : params)
    if (!p.getType().getElementType().isF64())
      return fail() << "parameter '" << p.getName().str()
                    << "' is not f64: finite differences need double";

  // Both runs see the same dropout masks: the executor's seed is fixed.
  Executor executor;
  std::vector<Tensor> values = drawParameters(params, c.positive);
  for (auto [p, value] : llvm::zip(params, values))
    executor.setParameter(p.getName(), value);
  FailureOr<double> loss = evaluateLoss(executor, model);
  if (failed(loss))
    return fail() << "running @m failed:\n" << diagnostics;

  // Composites (kiln.linear) are differentiated through their
  // decomposition, as in the compile pipeline; @m above ran them directly.
  PassManager pm(&context);
  pm.addNestedPass<func::FuncOp>(createKilnDecompose());
  pm.addPass(createKilnAutodiff());
  if (failed(pm.run(*module)))
    return fail() << "kiln-decompose or kiln-autodiff failed:\n" << diagnostics;
  auto gradFunc = module->lookupSymbol<func::FuncOp>("m_grad");
  FailureOr<std::vector<Tensor>> grads = executor.run(gradFunc, values);
  if (failed(grads))
    return fail() << "running @m_grad failed:\n" << diagnostics;
  if (grads->size() != params.size() + 1)
    return fail() << "@m_grad has " << grads->size() << " results, expected "
                  << params.size() + 1;
  if (!withinTolerance(grads->front().data.front(), *loss))
    return fail() << "@m_grad's loss " << grads->front().data.front()
                  << " differs from @m's " << *loss;

  std::string report;
  llvm::raw_string_ostream os(report);
  int mismatches = 0;
  for (auto [i, p] : llvm::enumerate(params)) {
    const Tensor &analytic = (*grads)[i + 1];
    std::string name = p.getName().str();
    if (analytic.shape != values[i].shape)
      return fail() << "the gradient of '" << name << "' has shape "
                    << reference::formatShape(analytic.shape) << ", expected "
                    << reference::formatShape(values[i].shape);
    Tensor perturbed = values[i];
    for (int64_t k = 0; k < perturbed.numel(); ++k) {
      double numeric = 0.0;
      if (c.expect == Expect::FiniteDifferences) {
        double x = values[i].data[k];
        perturbed.data[k] = x + kStep;
        executor.setParameter(p.getName(), perturbed);
        FailureOr<double> plus = evaluateLoss(executor, model);
        perturbed.data[k] = x - kStep;
        executor.setParameter(p.getName(), perturbed);
        FailureOr<double> minus = evaluateLoss(executor, model);
        perturbed.data[k] = x;
        if (failed(plus) || failed(minus))
          return fail() << "running @m failed:\n" << diagnostics;
        numeric = (*plus - *minus) / (2 * kStep);
      }
      // A rule without a gradient makes autodiff return a zero constant, so
      // Expect::Zero compares exactly.
      bool ok = c.expect == Expect::Zero
                    ? analytic.data[k] == 0.0
                    : withinTolerance(analytic.data[k], numeric);
      if (ok || ++mismatches > kMaxReported)
        continue;
      os << "  param '" << name << "' element "
         << formatIndex(k, values[i].shape) << ": analytic "
         << llvm::format("%.10g", analytic.data[k]);
      if (c.expect == Expect::Zero)
        os << ", expected exactly 0\n";
      else
        os << ", numeric " << llvm::format("%.10g", numeric) << "\n";
    }
    executor.setParameter(p.getName(), values[i]);
  }
  if (mismatches == 0)
    return ::testing::AssertionSuccess();
  std::string summary;
  llvm::raw_string_ostream(summary)
      << mismatches << " gradient elements differ (atol "
      << llvm::format("%g", kAtol) << ", rtol " << llvm::format("%g", kRtol)
      << "); the first:\n";
  return fail() << summary << report << "model:\n" << c.ir;
}

} // namespace kiln::numerics
