//===- ExampleKernelsTest.cpp - every kernel of the example models --------===//
//
// The kernels of the example models' fused steps, of every kind, in one
// fixture over the examples: each test checks the kernels of every kind
// the example is checked for (kExamples), each kind as kKinds says:
//   - CudaCompilesWithNvrtc: the CUDA C of each kind, one program,
//     compiles with NVRTC for sm_80 and sm_90 (skipped without NVRTC),
//     with the batch dynamic and bound;
//   - CppMatchesTheReferenceExecutor: the C++ of each kind, one shared
//     object, computes at batch 5 what the reference executor computes for
//     the same kernels, within the kind's tolerance;
//   - CppMatchesTheReferenceWithDynamicBatch: so with the batch dynamic, a
//     size parameter (matmuls: M, or K for weight gradients; reductions);
//   - CppMatchesTheReferenceExactlyOnExactInputs: opaque kernels on inputs
//     that make every sum exact, so that their index arithmetic must
//     reproduce the reference bit for bit;
//   - CudaDoesNotSpillRegisters: opaque kernels as the benchmarks compile
//     them (batch 256) and with the batch dynamic keep every tile in
//     registers (ptxas's report);
//   - CudaMatchesTheReferenceExecutor: reductions and opaque kernels on a
//     GPU (twice, bit for bit the same), else emulated on the host.
// The last four, which only some kinds take, form ExampleKernelDetails,
// over the examples checked for more kinds than the elementwise one.
// Elementwise and horizontal kernels must be present in the examples
// checked for them; the other kinds are checked where present. What the
// examples lack is in each kind's hand-written tests (CodegenTest.cpp,
// HorizontalTest.cpp, MatmulTest.cpp, OpaqueTest.cpp, ReductionTest.cpp,
// AttentionTest.cpp), and the generated text of one kernel with one
// schedule in the FileCheck tests kernel-*.mlir.
//
// Tolerances. The reference executor computes in double and rounds per op;
// the generated code computes in the element type:
//   - elementwise and horizontal kernels round once per op:
//     1e-6 + 1e-5 |expected|;
//   - matmuls sum K products: matmulTolerance (Harness.h);
//   - reductions sum n terms of size about 1 in float, an error of order
//     sqrt(n) * 6e-8 relative to the sum (n at most a few hundred):
//     1e-5 + 1e-5 |expected|;
//   - opaque kernels: about u * sqrt(n) * |partial sums| for sums of n
//     terms (u = 6e-8 for f32). The longest at batch 5 are the CNN's
//     conv2d_grad_weight's, 3920 products of magnitude up to 4 with partial
//     sums near 100: 1e-3 + 1e-5 |expected|; at batch 32 (the CUDA check,
//     which gives the convolutions both row tilings and split-K weight
//     gradients of 98 and 24 slices) up to 25088 products,
//     6e-8 * 160 * 200 = 2e-3: 1e-2 + 1e-4 |expected|. On inputs in
//     multiples of 1/4 every product and sum is exact in f32, whatever the
//     order; only avg_pool2d's division by the window area rounds:
//     1e-6 |expected|.
//
//===----------------------------------------------------------------------===//

#include "Harness.h"

#include "runtime/Nvrtc.h"

#include "llvm/Support/ErrorHandling.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <ostream>

using namespace kiln;
using namespace kiln::test;

namespace {

/// The tolerance of a kernel's results with the batch bound (`dynamicSize`
/// 0) or dynamic, of size `dynamicSize`.
using KindTolerance =
    std::function<Tolerance(KernelOp kernel, int64_t dynamicSize)>;

/// The same tolerance for every kernel.
KindTolerance fixed(double atol, double rtol) {
  return [=](KernelOp, int64_t) { return relative(atol, rtol); };
}

/// The CUDA C run on a GPU, else emulated, against the reference.
struct CudaCheck {
  /// The binding the example is compiled with ("": the batch dynamic).
  const char *bind;
  /// The sizes the dynamic dimensions take, one run each (0: none).
  std::vector<int64_t> sizes;
  Tolerance tolerance;
};

/// How the kernels of one kind are checked.
struct KindChecks {
  KernelKind kind;
  /// Whether every example checked for the kind must have such kernels.
  bool required;
  /// The C++ against the reference (batch 5, and the dynamic batch).
  KindTolerance tolerance;
  /// The size of the batch for the C++ with the batch dynamic; 0: not
  /// checked.
  int64_t dynamicBatch;
  /// The CUDA C against the reference; none: not checked.
  std::optional<CudaCheck> cuda;
  /// The C++ on exact inputs (batch 3), with this tolerance; none: not
  /// checked.
  std::optional<Tolerance> exactInputs;
  /// Whether ptxas must report no register spills.
  bool noSpills;
};

/// See the file comment for the tolerances.
const KindChecks kKinds[] = {
    {KernelKind::elementwise, /*required=*/true, fixed(1e-6, 1e-5),
     /*dynamicBatch=*/0, /*cuda=*/std::nullopt, /*exactInputs=*/std::nullopt,
     /*noSpills=*/false},
    {KernelKind::horizontal, /*required=*/true, fixed(1e-6, 1e-5),
     /*dynamicBatch=*/0, /*cuda=*/std::nullopt, /*exactInputs=*/std::nullopt,
     /*noSpills=*/false},
    {KernelKind::matmul, /*required=*/false, matmulTolerance,
     /*dynamicBatch=*/70, /*cuda=*/std::nullopt,
     /*exactInputs=*/std::nullopt, /*noSpills=*/false},
    // Batches over a block's rows and slices, and not a multiple of them.
    {KernelKind::reduction, /*required=*/false, fixed(1e-5, 1e-5),
     /*dynamicBatch=*/37,
     /*cuda=*/CudaCheck{"", {5, 300}, relative(1e-5, 1e-5)},
     /*exactInputs=*/std::nullopt, /*noSpills=*/false},
    {KernelKind::opaque, /*required=*/false, fixed(1e-3, 1e-5),
     /*dynamicBatch=*/0,
     /*cuda=*/CudaCheck{"batch=32", {0}, relative(1e-2, 1e-4)},
     /*exactInputs=*/relative(0, 1e-6), /*noSpills=*/true},
};

const KindChecks &checksOf(KernelKind kind) {
  for (const KindChecks &checks : kKinds)
    if (checks.kind == kind)
      return checks;
  llvm_unreachable("a kernel kind without checks");
}

/// An example model and the kinds of its kernels that are checked.
struct Example {
  /// Under examples/.
  const char *file;
  std::vector<KernelKind> kinds;
};

void PrintTo(const Example &example, std::ostream *os) { *os << example.file; }

constexpr KernelKind kEveryKind[] = {KernelKind::elementwise,
                                     KernelKind::horizontal, KernelKind::matmul,
                                     KernelKind::opaque, KernelKind::reduction};

const Example kExamples[] = {
    {"mlp.kiln", {std::begin(kEveryKind), std::end(kEveryKind)}},
    // One update kernel, nothing to merge it with: no horizontal kernel.
    {"logreg.kiln",
     {KernelKind::elementwise, KernelKind::matmul, KernelKind::opaque,
      KernelKind::reduction}},
    {"mlp_dropout.kiln", {std::begin(kEveryKind), std::end(kEveryKind)}},
    {"cnn.kiln", {std::begin(kEveryKind), std::end(kEveryKind)}},
    {"avgpool.kiln", {std::begin(kEveryKind), std::end(kEveryKind)}},
    // Its elementwise kernels only: the shapes of its attention kernels are
    // AttentionTest's, its whole program test/backend's.
    {"../test/models/gpt_tiny.kiln", {KernelKind::elementwise}},
};

class ExampleKernels : public ::testing::TestWithParam<Example> {
protected:
  ExampleKernels() { loadDialects(context); }

  /// The example's fused step with `bind` ("": the batch dynamic),
  /// compiled once a test; null on an error.
  mlir::ModuleOp fused(const std::string &bind) {
    mlir::OwningOpRef<mlir::ModuleOp> &module = modules[bind];
    if (!module)
      module = compileFused(context, examplePath(GetParam().file), bind);
    return module ? *module : nullptr;
  }

  /// The checks of the example's kinds that `selected` selects.
  std::vector<const KindChecks *>
  kinds(const std::function<bool(const KindChecks &)> &selected) {
    std::vector<const KindChecks *> result;
    for (KernelKind kind : GetParam().kinds)
      if (selected(checksOf(kind)))
        result.push_back(&checksOf(kind));
    return result;
  }

  /// The kernels of `checks`' kind in `module` (a failure when the kind is
  /// required and there are none).
  std::vector<std::pair<KernelOp, std::string>>
  kernelsOf(mlir::ModuleOp module, const KindChecks &checks) {
    auto kernels = kernelsOfKind(module, checks.kind);
    EXPECT_TRUE(!checks.required || !kernels.empty())
        << GetParam().file << " has no "
        << stringifyKernelKind(checks.kind).str() << " kernels";
    return kernels;
  }

  mlir::MLIRContext context;
  std::map<std::string, mlir::OwningOpRef<mlir::ModuleOp>> modules;
};

/// The checks that only some kinds take (a dynamic batch, exact inputs,
/// spills, the CUDA against the reference), over the examples checked for
/// more kinds than the elementwise one.
class ExampleKernelDetails : public ExampleKernels {};

/// The examples ExampleKernelDetails runs on.
std::vector<Example> detailedExamples() {
  std::vector<Example> examples;
  for (const Example &example : kExamples)
    if (example.kinds.size() > 1)
      examples.push_back(example);
  return examples;
}

/// The name of a kind, for SCOPED_TRACE.
std::string nameOf(KernelKind kind) { return stringifyKernelKind(kind).str(); }

TEST_P(ExampleKernels, CudaCompilesWithNvrtc) {
  if (!runtime::nvrtcAvailable())
    GTEST_SKIP() << "NVRTC is not available (the CUDA toolkit is not "
                    "installed)";
  for (const char *bind : {"", "batch=64"}) {
    SCOPED_TRACE(bind);
    mlir::ModuleOp module = fused(bind);
    ASSERT_TRUE(module) << GetParam().file;
    for (const KindChecks *checks : kinds([](auto &) { return true; })) {
      SCOPED_TRACE(nameOf(checks->kind));
      auto kernels = kernelsOf(module, *checks);
      if (!kernels.empty())
        expectCudaCompiles(kernels, GetParam().file);
    }
  }
}

TEST_P(ExampleKernels, CppMatchesTheReferenceExecutor) {
  mlir::ModuleOp module = fused("batch=5");
  ASSERT_TRUE(module) << GetParam().file;
  for (const KindChecks *checks : kinds([](auto &) { return true; })) {
    SCOPED_TRACE(nameOf(checks->kind));
    auto kernels = kernelsOf(module, *checks);
    if (!kernels.empty())
      expectCppMatchesReference(
          kernels,
          [&](KernelOp kernel) { return checks->tolerance(kernel, 0); },
          CheckOptions());
  }
}

TEST_P(ExampleKernelDetails, CppMatchesTheReferenceWithDynamicBatch) {
  auto checked = kinds([](auto &checks) { return checks.dynamicBatch > 0; });
  ASSERT_FALSE(checked.empty())
      << "no kernel kind of " << GetParam().file << " takes this check";
  mlir::ModuleOp module = fused("");
  ASSERT_TRUE(module) << GetParam().file;
  for (const KindChecks *checks : checked) {
    SCOPED_TRACE(nameOf(checks->kind));
    auto kernels = kernelsOf(module, *checks);
    CheckOptions options;
    options.dynamicSize = checks->dynamicBatch;
    if (!kernels.empty())
      expectCppMatchesReference(
          kernels,
          [&](KernelOp kernel) {
            return checks->tolerance(kernel, checks->dynamicBatch);
          },
          options);
  }
}

TEST_P(ExampleKernelDetails, CppMatchesTheReferenceExactlyOnExactInputs) {
  auto checked =
      kinds([](auto &checks) { return checks.exactInputs.has_value(); });
  ASSERT_FALSE(checked.empty())
      << "no kernel kind of " << GetParam().file << " takes this check";
  mlir::ModuleOp module = fused("batch=3");
  ASSERT_TRUE(module) << GetParam().file;
  for (const KindChecks *checks : checked) {
    SCOPED_TRACE(nameOf(checks->kind));
    auto kernels = kernelsOf(module, *checks);
    CheckOptions options;
    options.floatStep = 0.25;
    if (!kernels.empty())
      expectCppMatchesReference(kernels, *checks->exactInputs, options);
  }
}

TEST_P(ExampleKernelDetails, CudaDoesNotSpillRegisters) {
  if (!runtime::nvrtcAvailable())
    GTEST_SKIP() << "NVRTC is not available";
  auto checked = kinds([](auto &checks) { return checks.noSpills; });
  ASSERT_FALSE(checked.empty())
      << "no kernel kind of " << GetParam().file << " takes this check";
  for (const char *bind : {"", "batch=256"}) {
    SCOPED_TRACE(bind);
    mlir::ModuleOp module = fused(bind);
    ASSERT_TRUE(module) << GetParam().file;
    for (const KindChecks *checks : checked) {
      SCOPED_TRACE(nameOf(checks->kind));
      auto kernels = kernelsOf(module, *checks);
      if (!kernels.empty())
        expectNoSpills(kernels);
    }
  }
}

TEST_P(ExampleKernelDetails, CudaMatchesTheReferenceExecutor) {
  auto checked = kinds([](auto &checks) { return checks.cuda.has_value(); });
  ASSERT_FALSE(checked.empty())
      << "no kernel kind of " << GetParam().file << " takes this check";
  for (const KindChecks *checks : checked) {
    SCOPED_TRACE(nameOf(checks->kind));
    mlir::ModuleOp module = fused(checks->cuda->bind);
    ASSERT_TRUE(module) << GetParam().file << " " << checks->cuda->bind;
    auto kernels = kernelsOf(module, *checks);
    if (kernels.empty())
      continue;
    for (int64_t size : checks->cuda->sizes) {
      SCOPED_TRACE(size);
      expectCudaOrEmulatedMatchesReference(kernels, checks->cuda->tolerance,
                                           size);
    }
  }
}

/// A test's name for an example: its file's stem.
std::string exampleName(const ::testing::TestParamInfo<Example> &info) {
  std::string name = info.param.file;
  name = name.substr(name.rfind('/') + 1);
  return name.substr(0, name.find('.'));
}

INSTANTIATE_TEST_SUITE_P(Examples, ExampleKernels,
                         ::testing::ValuesIn(kExamples), exampleName);
INSTANTIATE_TEST_SUITE_P(Examples, ExampleKernelDetails,
                         ::testing::ValuesIn(detailedExamples()), exampleName);

} // namespace
