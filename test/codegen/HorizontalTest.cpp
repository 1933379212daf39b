//===- HorizontalTest.cpp - hand-written horizontal kernels ---------------===//
//
// A horizontal kernel written by hand, three segments of different shapes:
// its CUDA C compiles with NVRTC for sm_80 and sm_90, and its C++ computes
// what the reference executor computes (dropout's mask per segment,
// broadcasting inside a segment, an input read by two segments passed
// once); a dynamic segment is a located error. (Every example's horizontal
// kernels, the optimizer updates of their parameters:
// ExampleKernelsTest.cpp; the same kernel's text and its one launch over
// every segment: kernel-horizontal.mlir.)
//
//===----------------------------------------------------------------------===//

#include "Harness.h"

#include "runtime/Nvrtc.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

using namespace kiln;
using namespace kiln::test;

namespace {

// Three segments of different shapes: dropout draws the mask of its own
// tensor (its flat index, not the kernel's), a bias broadcasts inside its
// segment, and an input read by two segments is passed once.
constexpr const char *kHandWritten = R"mlir(
  func.func @f(%x: tensor<7x33xf32>, %b: tensor<33xf32>, %y: tensor<5xf32>) -> (tensor<7x33xf32>, tensor<7x33xf32>, tensor<5xf32>, tensor<33xf32>) {
    %k:4 = kiln.kernel "horizontal_add_dropout_neg" horizontal (%x, %b, %y) : (tensor<7x33xf32>, tensor<33xf32>, tensor<5xf32>) -> (tensor<7x33xf32>, tensor<7x33xf32>, tensor<5xf32>, tensor<33xf32>) {
    ^bb0(%a: tensor<7x33xf32>, %c: tensor<33xf32>, %d: tensor<5xf32>):
      %0:2 = kiln.kernel "add_dropout" elementwise (%a, %c) : (tensor<7x33xf32>, tensor<33xf32>) -> (tensor<7x33xf32>, tensor<7x33xf32>) {
      ^bb0(%p: tensor<7x33xf32>, %q: tensor<33xf32>):
        %s = kiln.add %p, %q : (tensor<7x33xf32>, tensor<33xf32>) -> tensor<7x33xf32>
        %t = kiln.dropout %s rate 3.000000e-01 stream 5 : tensor<7x33xf32>
        kiln.yield %s, %t : tensor<7x33xf32>, tensor<7x33xf32>
      }
      %1 = kiln.kernel "dropout" elementwise (%d) : (tensor<5xf32>) -> tensor<5xf32> {
      ^bb0(%p: tensor<5xf32>):
        %t = kiln.dropout %p rate 5.000000e-01 stream 5 : tensor<5xf32>
        kiln.yield %t : tensor<5xf32>
      }
      %2 = kiln.kernel "neg" elementwise (%c) : (tensor<33xf32>) -> tensor<33xf32> {
      ^bb0(%p: tensor<33xf32>):
        %t = kiln.neg %p : tensor<33xf32>
        kiln.yield %t : tensor<33xf32>
      }
      kiln.yield %0#0, %0#1, %1, %2 : tensor<7x33xf32>, tensor<7x33xf32>, tensor<5xf32>, tensor<33xf32>
    }
    return %k#0, %k#1, %k#2, %k#3 : tensor<7x33xf32>, tensor<7x33xf32>, tensor<5xf32>, tensor<33xf32>
  })mlir";

TEST(HorizontalHandWritten, CppMatchesTheReferenceExecutor) {
  mlir::MLIRContext context;
  loadDialects(context);
  auto module = parseScheduled(kHandWritten, context);
  ASSERT_TRUE(module);
  auto kernels = kernelsOfKind(*module, KernelKind::horizontal);
  ASSERT_EQ(kernels.size(), 1u);
  auto generated =
      codegen::generateKernel(kernels[0].first, "h", codegen::Target::cuda);
  ASSERT_TRUE(succeeded(generated));
  EXPECT_TRUE(generated->takesSeed);
  EXPECT_EQ(generated->numInputs, 3u);
  expectCppMatchesReference(kernels, relative(1e-6, 1e-5));
}

TEST(HorizontalHandWritten, CudaCompilesWithNvrtc) {
  if (!runtime::nvrtcAvailable())
    GTEST_SKIP() << "NVRTC is not available (the CUDA toolkit is not "
                    "installed)";
  mlir::MLIRContext context;
  loadDialects(context);
  auto module = parseScheduled(kHandWritten, context);
  ASSERT_TRUE(module);
  expectCudaCompiles(kernelsOfKind(*module, KernelKind::horizontal),
                     "hand-written");
}

// Segments are laid out by static sizes: a dynamic one is a located error.
TEST(HorizontalHandWritten, DynamicSegmentIsALocatedError) {
  mlir::MLIRContext context;
  loadDialects(context);
  auto module = mlir::parseSourceString<mlir::ModuleOp>(R"mlir(
    func.func @f(%x: tensor<?x8xf32>, %y: tensor<8xf32>) -> (tensor<?x8xf32>, tensor<8xf32>) {
      %k:2 = kiln.kernel "horizontal_neg" horizontal (%x, %y) : (tensor<?x8xf32>, tensor<8xf32>) -> (tensor<?x8xf32>, tensor<8xf32>) {
      ^bb0(%a: tensor<?x8xf32>, %b: tensor<8xf32>):
        %0 = kiln.kernel "neg" elementwise (%a) : (tensor<?x8xf32>) -> tensor<?x8xf32> {
        ^bb0(%p: tensor<?x8xf32>):
          %t = kiln.neg %p : tensor<?x8xf32>
          kiln.yield %t : tensor<?x8xf32>
        }
        %1 = kiln.kernel "neg" elementwise (%b) : (tensor<8xf32>) -> tensor<8xf32> {
        ^bb0(%p: tensor<8xf32>):
          %t = kiln.neg %p : tensor<8xf32>
          kiln.yield %t : tensor<8xf32>
        }
        kiln.yield %0, %1 : tensor<?x8xf32>, tensor<8xf32>
      }
      return %k#0, %k#1 : tensor<?x8xf32>, tensor<8xf32>
    })mlir",
                                                        &context);
  ASSERT_TRUE(module);
  std::string message;
  unsigned line = 0;
  mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &d) {
    message = d.str();
    if (auto loc = llvm::dyn_cast<mlir::FileLineColLoc>(d.getLocation()))
      line = loc.getLine();
    return mlir::success();
  });
  auto kernels = kernelsOfKind(*module, KernelKind::horizontal);
  ASSERT_EQ(kernels.size(), 1u);
  auto generated =
      codegen::generateKernel(kernels[0].first, "h", codegen::Target::cpp);
  EXPECT_TRUE(failed(generated));
  EXPECT_EQ(message, "a segment of a horizontal kernel needs a static shape "
                     "in code generation, got 'tensor<?x8xf32>'");
  EXPECT_EQ(line, 5u); // the segment's line
}

} // namespace
