//===- CodegenTest.cpp - hand-written elementwise kernels -----------------===//
//
// Elementwise kernels the examples' fused steps lack: their C++ computes
// what the reference executor computes for dropout (the reference's mask,
// the Philox code being shared), both GELU gradient formulas, and
// kiln.iota broadcast against the iteration shape. (Every example's
// elementwise kernels: ExampleKernelsTest.cpp; the generated text of one
// kernel: kernel-elementwise-conv.mlir.)
//
//===----------------------------------------------------------------------===//

#include "Harness.h"

#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

using namespace kiln;
using namespace kiln::test;

namespace {

// Dropout in generated code draws the reference executor's mask: the
// Philox code is shared. Fusion puts the examples' dropouts in matmul
// epilogues, so this kernel is written by hand; it also has both GELU
// gradient formulas.
TEST(ElementwiseDropout, CppDrawsTheReferenceMask) {
  mlir::MLIRContext context;
  loadDialects(context);
  auto module = mlir::parseSourceString<mlir::ModuleOp>(R"mlir(
    func.func @f(%x: tensor<7x33xf32>) -> tensor<7x33xf32> {
      %k:3 = kiln.kernel "relu_dropout_gelu_grad" elementwise (%x) : (tensor<7x33xf32>) -> (tensor<7x33xf32>, tensor<7x33xf32>, tensor<7x33xf32>) {
      ^bb0(%a: tensor<7x33xf32>):
        %0 = kiln.relu %a : tensor<7x33xf32>
        %1 = kiln.dropout %0 rate 3.000000e-01 stream 5 : tensor<7x33xf32>
        %2 = kiln.gelu_grad %a, %1 approximate tanh : (tensor<7x33xf32>, tensor<7x33xf32>) -> tensor<7x33xf32>
        %3 = kiln.gelu_grad %a, %1 : (tensor<7x33xf32>, tensor<7x33xf32>) -> tensor<7x33xf32>
        kiln.yield %1, %2, %3 : tensor<7x33xf32>, tensor<7x33xf32>, tensor<7x33xf32>
      }
      return %k#0 : tensor<7x33xf32>
    })mlir",
                                                        &context);
  ASSERT_TRUE(module);
  auto kernels = kernelsOfKind(*module, KernelKind::elementwise);
  ASSERT_EQ(kernels.size(), 1u);
  expectCppMatchesReference(kernels, relative(1e-6, 1e-5));
}

// kiln.iota is computed from the element's multi-index, broadcast against
// the iteration shape from the right like a load: the causal mask of
// attention, and an index used as a value.
TEST(ElementwiseIota, CppComputesTheReferenceIndices) {
  mlir::MLIRContext context;
  loadDialects(context);
  auto module = mlir::parseSourceString<mlir::ModuleOp>(R"mlir(
    func.func @f(%x: tensor<3x4x5xf32>) -> tensor<3x4x5xf32> {
      %k:2 = kiln.kernel "iota_cmp_select" elementwise (%x) : (tensor<3x4x5xf32>) -> (tensor<3x4x5xf32>, tensor<3x4x5xf32>) {
      ^bb0(%a: tensor<3x4x5xf32>):
        %low = kiln.constant dense<-3.40282347E+38> : tensor<f32>
        %rows = kiln.iota [4, 5] dim 0 : tensor<4x5xi32>
        %cols = kiln.iota [4, 5] dim 1 : tensor<4x5xi32>
        %seen = kiln.cmp ge, %rows, %cols : (tensor<4x5xi32>, tensor<4x5xi32>) -> tensor<4x5xi1>
        %masked = kiln.select %seen, %a, %low : (tensor<4x5xi1>, tensor<3x4x5xf32>, tensor<f32>) -> tensor<3x4x5xf32>
        %batch = kiln.iota [3, 1, 1] dim 0 : tensor<3x1x1xi32>
        %b = kiln.cast %batch : tensor<3x1x1xi32> to f32
        %y = kiln.add %masked, %b : (tensor<3x4x5xf32>, tensor<3x1x1xf32>) -> tensor<3x4x5xf32>
        kiln.yield %y, %masked : tensor<3x4x5xf32>, tensor<3x4x5xf32>
      }
      return %k#0 : tensor<3x4x5xf32>
    })mlir",
                                                        &context);
  ASSERT_TRUE(module);
  auto kernels = kernelsOfKind(*module, KernelKind::elementwise);
  ASSERT_EQ(kernels.size(), 1u);
  expectCppMatchesReference(kernels, relative(1e-6, 1e-5));
}

} // namespace
