//===- ReductionTest.cpp - hand-written reduction kernels -----------------===//
//
// Hand-written reduction kernels covering what the examples lack (softmax,
// log_softmax, reduce_max, count, layer_norm, argmax ties, inner, outer,
// middle and several axes, prologues with broadcasting, epilogues, results
// from before the reduction, f64):
//   - the CUDA C compiles with NVRTC for sm_80 and sm_90, with the batch
//     dynamic and bound;
//   - the C++ computes what the reference executor computes, with the batch
//     bound and dynamic;
//   - the CUDA kernels compute it too, on a GPU (bit for bit the same on
//     two runs) or emulated on the host.
// The mlp's reductions each get the launch of their layout. (Every
// example's reduction kernels: ExampleKernelsTest.cpp; the generated text
// of each scheme: kernel-reduction.mlir.)
//
// Tolerances: the reference executor computes in double and rounds per op;
// generated f32 code accumulates in float, so a sum of n terms of size
// about 1 carries an error of order sqrt(n) * 6e-8 relative to its
// magnitude (n is at most a few hundred here): 1e-5 absolute plus 1e-5
// relative. f64 kernels differ only by summation order: 1e-12.
//
//===----------------------------------------------------------------------===//

#include "Harness.h"

#include "runtime/Nvrtc.h"

#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

using namespace kiln;
using namespace kiln::test;

namespace {

//===----------------------------------------------------------------------===//
// Hand-written kernels: B is the batch, `?` or a size.
//===----------------------------------------------------------------------===//

struct HandWritten {
  const char *name;
  const char *ir; // a func body's kernel; B stands for the batch
  double tolerance;
};

const HandWritten kHandWritten[] = {
    // Softmax over the inner axis; a prologue scaling and adding a
    // broadcast [37] input, an epilogue reading that input again.
    {"softmax_prologue_epilogue", R"mlir(
  func.func @f(%x: tensor<Bx37xf32>, %s: tensor<37xf32>) -> tensor<Bx37xf32> {
    %k = kiln.kernel "mul_add_softmax_mul" reduction (%x, %s) : (tensor<Bx37xf32>, tensor<37xf32>) -> tensor<Bx37xf32> {
    ^bb0(%a: tensor<Bx37xf32>, %b: tensor<37xf32>):
      %c = kiln.constant dense<3.000000e+00> : tensor<f32>
      %0 = kiln.mul %a, %c : (tensor<Bx37xf32>, tensor<f32>) -> tensor<Bx37xf32>
      %1 = kiln.add %0, %b : (tensor<Bx37xf32>, tensor<37xf32>) -> tensor<Bx37xf32>
      %2 = kiln.softmax %1 axis -1 : tensor<Bx37xf32>
      %3 = kiln.mul %2, %b : (tensor<Bx37xf32>, tensor<37xf32>) -> tensor<Bx37xf32>
      kiln.yield %3 : tensor<Bx37xf32>
    }
    return %k : tensor<Bx37xf32>
  })mlir",
     1e-5},
    // Log-softmax over a middle axis (a column reduction), f64, with an
    // epilogue, both yielded.
    {"log_softmax_middle_f64", R"mlir(
  func.func @f(%x: tensor<Bx5x6xf64>) -> tensor<Bx5x6xf64> {
    %k:2 = kiln.kernel "log_softmax_neg" reduction (%x) : (tensor<Bx5x6xf64>) -> (tensor<Bx5x6xf64>, tensor<Bx5x6xf64>) {
    ^bb0(%a: tensor<Bx5x6xf64>):
      %0 = kiln.log_softmax %a axis 1 : tensor<Bx5x6xf64>
      %1 = kiln.neg %0 : tensor<Bx5x6xf64>
      kiln.yield %0, %1 : tensor<Bx5x6xf64>, tensor<Bx5x6xf64>
    }
    return %k#1 : tensor<Bx5x6xf64>
  })mlir",
     1e-12},
    // Softmax over the outer axis of a narrow tensor, f64.
    {"softmax_outer_f64", R"mlir(
  func.func @f(%x: tensor<Bx3xf64>) -> tensor<Bx3xf64> {
    %k = kiln.kernel "softmax" reduction (%x) : (tensor<Bx3xf64>) -> tensor<Bx3xf64> {
    ^bb0(%a: tensor<Bx3xf64>):
      %0 = kiln.softmax %a axis 0 : tensor<Bx3xf64>
      kiln.yield %0 : tensor<Bx3xf64>
    }
    return %k : tensor<Bx3xf64>
  })mlir",
     1e-12},
    // reduce_max with keepdims after abs, an epilogue with a [B, 1] input.
    {"reduce_max_keepdims", R"mlir(
  func.func @f(%x: tensor<Bx50xf32>, %m: tensor<Bx1xf32>) -> tensor<Bx1xf32> {
    %k:2 = kiln.kernel "abs_reduce_max_sub" reduction (%x, %m) : (tensor<Bx50xf32>, tensor<Bx1xf32>) -> (tensor<Bx1xf32>, tensor<Bx1xf32>) {
    ^bb0(%a: tensor<Bx50xf32>, %b: tensor<Bx1xf32>):
      %0 = kiln.abs %a : tensor<Bx50xf32>
      %1 = kiln.reduce_max %0 [1] keepdims : (tensor<Bx50xf32>) -> tensor<Bx1xf32>
      %2 = kiln.sub %1, %b : (tensor<Bx1xf32>, tensor<Bx1xf32>) -> tensor<Bx1xf32>
      kiln.yield %1, %2 : tensor<Bx1xf32>, tensor<Bx1xf32>
    }
    return %k#1 : tensor<Bx1xf32>
  })mlir",
     1e-5},
    // reduce_max over the outer axis (columns).
    {"reduce_max_outer", R"mlir(
  func.func @f(%x: tensor<Bx70xf32>) -> tensor<70xf32> {
    %k = kiln.kernel "reduce_max" reduction (%x) : (tensor<Bx70xf32>) -> tensor<70xf32> {
    ^bb0(%a: tensor<Bx70xf32>):
      %0 = kiln.reduce_max %a [0] : (tensor<Bx70xf32>) -> tensor<70xf32>
      kiln.yield %0 : tensor<70xf32>
    }
    return %k : tensor<70xf32>
  })mlir",
     1e-5},
    // reduce_mean over a middle axis of 13 positions (eight lanes and a
    // tail): the C++ kernel's columns (70: a block of 64 and one of 6) under
    // an outer kept axis.
    {"reduce_mean_middle", R"mlir(
  func.func @f(%x: tensor<Bx13x70xf32>) -> tensor<Bx70xf32> {
    %k = kiln.kernel "reduce_mean" reduction (%x) : (tensor<Bx13x70xf32>) -> tensor<Bx70xf32> {
    ^bb0(%a: tensor<Bx13x70xf32>):
      %0 = kiln.reduce_mean %a [1] : (tensor<Bx13x70xf32>) -> tensor<Bx70xf32>
      kiln.yield %0 : tensor<Bx70xf32>
    }
    return %k : tensor<Bx70xf32>
  })mlir",
     1e-5},
    // count over a dynamic and a static axis, and an epilogue dividing by
    // it (the gradient of reduce_mean).
    {"count_div", R"mlir(
  func.func @f(%x: tensor<Bx3x5xf32>) -> tensor<f32> {
    %k:2 = kiln.kernel "count_div" reduction (%x) : (tensor<Bx3x5xf32>) -> (tensor<f32>, tensor<f32>) {
    ^bb0(%a: tensor<Bx3x5xf32>):
      %c = kiln.constant dense<1.000000e+00> : tensor<f32>
      %0 = kiln.count %a [0, 2] : (tensor<Bx3x5xf32>) -> tensor<f32>
      %1 = kiln.div %c, %0 : (tensor<f32>, tensor<f32>) -> tensor<f32>
      kiln.yield %0, %1 : tensor<f32>, tensor<f32>
    }
    return %k#1 : tensor<f32>
  })mlir",
     1e-6},
    // layer_norm with weight and bias inputs and a relu epilogue.
    {"layer_norm_relu", R"mlir(
  func.func @f(%x: tensor<Bx48xf32>, %g: tensor<48xf32>, %b: tensor<48xf32>) -> tensor<Bx48xf32> {
    %k = kiln.kernel "layer_norm_relu" reduction (%x, %g, %b) : (tensor<Bx48xf32>, tensor<48xf32>, tensor<48xf32>) -> tensor<Bx48xf32> {
    ^bb0(%a: tensor<Bx48xf32>, %w: tensor<48xf32>, %c: tensor<48xf32>):
      %0 = kiln.layer_norm %a, %w, %c eps 1.000000e-05 : (tensor<Bx48xf32>, tensor<48xf32>, tensor<48xf32>) -> tensor<Bx48xf32>
      %1 = kiln.relu %0 : tensor<Bx48xf32>
      kiln.yield %1 : tensor<Bx48xf32>
    }
    return %k : tensor<Bx48xf32>
  })mlir",
     1e-5},
    // Two axes around a kept one (neither inner nor outer), f64.
    {"reduce_sum_around_f64", R"mlir(
  func.func @f(%x: tensor<4xBx6xf64>) -> tensor<Bxf64> {
    %k = kiln.kernel "reduce_sum" reduction (%x) : (tensor<4xBx6xf64>) -> tensor<Bxf64> {
    ^bb0(%a: tensor<4xBx6xf64>):
      %0 = kiln.reduce_sum %a [0, 2] : (tensor<4xBx6xf64>) -> tensor<Bxf64>
      kiln.yield %0 : tensor<Bxf64>
    }
    return %k : tensor<Bxf64>
  })mlir",
     1e-12},
    // reduce_mean over the two inner axes of exp(x) * a broadcast [5],
    // yielding the prologue value too, and an epilogue.
    {"reduce_mean_inner_prologue_result", R"mlir(
  func.func @f(%x: tensor<Bx4x5xf32>, %s: tensor<5xf32>) -> tensor<Bxf32> {
    %k:3 = kiln.kernel "exp_mul_reduce_mean_mul" reduction (%x, %s) : (tensor<Bx4x5xf32>, tensor<5xf32>) -> (tensor<Bx4x5xf32>, tensor<Bxf32>, tensor<Bxf32>) {
    ^bb0(%a: tensor<Bx4x5xf32>, %b: tensor<5xf32>):
      %c = kiln.constant dense<5.000000e-01> : tensor<f32>
      %0 = kiln.exp %a : tensor<Bx4x5xf32>
      %1 = kiln.mul %0, %b : (tensor<Bx4x5xf32>, tensor<5xf32>) -> tensor<Bx4x5xf32>
      %2 = kiln.reduce_mean %1 [1, 2] : (tensor<Bx4x5xf32>) -> tensor<Bxf32>
      %3 = kiln.mul %2, %c : (tensor<Bxf32>, tensor<f32>) -> tensor<Bxf32>
      kiln.yield %1, %2, %3 : tensor<Bx4x5xf32>, tensor<Bxf32>, tensor<Bxf32>
    }
    return %k#2 : tensor<Bxf32>
  })mlir",
     1e-5},
    // A bias gradient whose prologue broadcasts a [40] and a [B, 1] input,
    // with an epilogue.
    {"reduce_sum_outer_broadcast", R"mlir(
  func.func @f(%x: tensor<Bx40xf32>, %s: tensor<40xf32>, %t: tensor<Bx1xf32>) -> tensor<40xf32> {
    %k:2 = kiln.kernel "mul_add_reduce_sum_mul" reduction (%x, %s, %t) : (tensor<Bx40xf32>, tensor<40xf32>, tensor<Bx1xf32>) -> (tensor<40xf32>, tensor<40xf32>) {
    ^bb0(%a: tensor<Bx40xf32>, %b: tensor<40xf32>, %c: tensor<Bx1xf32>):
      %h = kiln.constant dense<1.000000e-01> : tensor<f32>
      %0 = kiln.mul %a, %b : (tensor<Bx40xf32>, tensor<40xf32>) -> tensor<Bx40xf32>
      %1 = kiln.add %0, %c : (tensor<Bx40xf32>, tensor<Bx1xf32>) -> tensor<Bx40xf32>
      %2 = kiln.reduce_sum %1 [0] : (tensor<Bx40xf32>) -> tensor<40xf32>
      %3 = kiln.mul %h, %2 : (tensor<f32>, tensor<40xf32>) -> tensor<40xf32>
      kiln.yield %2, %3 : tensor<40xf32>, tensor<40xf32>
    }
    return %k#1 : tensor<40xf32>
  })mlir",
     1e-5},
    // A sum of everything into a scalar.
    {"reduce_sum_all", R"mlir(
  func.func @f(%x: tensor<Bx3x4xf32>) -> tensor<f32> {
    %k = kiln.kernel "reduce_sum" reduction (%x) : (tensor<Bx3x4xf32>) -> tensor<f32> {
    ^bb0(%a: tensor<Bx3x4xf32>):
      %0 = kiln.reduce_sum %a [] : (tensor<Bx3x4xf32>) -> tensor<f32>
      kiln.yield %0 : tensor<f32>
    }
    return %k : tensor<f32>
  })mlir",
     1e-5},
    // argmax of integers in [0, 3): many ties, the first maximum wins;
    // along the outer and the inner axis.
    {"argmax_ties", R"mlir(
  func.func @f(%x: tensor<9xBxi32>, %y: tensor<Bx9xi64>) -> tensor<Bxi32> {
    %k:2 = kiln.kernel "argmax" reduction (%x, %y) : (tensor<9xBxi32>, tensor<Bx9xi64>) -> (tensor<Bxi32>, tensor<Bxi32>) {
    ^bb0(%a: tensor<9xBxi32>, %b: tensor<Bx9xi64>):
      %0 = kiln.argmax %a axis 0 : (tensor<9xBxi32>) -> tensor<Bxi32>
      %1 = kiln.add %0, %0 : (tensor<Bxi32>, tensor<Bxi32>) -> tensor<Bxi32>
      kiln.yield %0, %1 : tensor<Bxi32>, tensor<Bxi32>
    }
    %l = kiln.kernel "argmax" reduction (%y) : (tensor<Bx9xi64>) -> tensor<Bxi32> {
    ^bb0(%b: tensor<Bx9xi64>):
      %0 = kiln.argmax %b axis 1 : (tensor<Bx9xi64>) -> tensor<Bxi32>
      kiln.yield %0 : tensor<Bxi32>
    }
    return %l : tensor<Bxi32>
  })mlir",
     0},
    // cross_entropy_grad scaled by a gradient input (not the constant 1),
    // and cross_entropy with i64 labels and an epilogue.
    {"cross_entropy_grad_input", R"mlir(
  func.func @f(%x: tensor<Bx7xf32>, %l: tensor<Bxi32>, %g: tensor<f32>, %m: tensor<Bxi64>) -> tensor<Bx7xf32> {
    %k = kiln.kernel "cross_entropy_grad" reduction (%x, %l, %g) : (tensor<Bx7xf32>, tensor<Bxi32>, tensor<f32>) -> tensor<Bx7xf32> {
    ^bb0(%a: tensor<Bx7xf32>, %b: tensor<Bxi32>, %c: tensor<f32>):
      %0 = kiln.cross_entropy_grad %a, %b, %c : (tensor<Bx7xf32>, tensor<Bxi32>, tensor<f32>) -> tensor<Bx7xf32>
      kiln.yield %0 : tensor<Bx7xf32>
    }
    %e = kiln.kernel "exp_cross_entropy_mul" reduction (%x, %m) : (tensor<Bx7xf32>, tensor<Bxi64>) -> tensor<f32> {
    ^bb0(%a: tensor<Bx7xf32>, %b: tensor<Bxi64>):
      %h = kiln.constant dense<2.000000e+00> : tensor<f32>
      %0 = kiln.exp %a : tensor<Bx7xf32>
      %1 = kiln.cross_entropy %0, %b : (tensor<Bx7xf32>, tensor<Bxi64>) -> tensor<f32>
      %2 = kiln.mul %1, %h : (tensor<f32>, tensor<f32>) -> tensor<f32>
      kiln.yield %2 : tensor<f32>
    }
    return %k : tensor<Bx7xf32>
  })mlir",
     1e-5},
};

class HandWrittenReduction : public ::testing::TestWithParam<HandWritten> {
protected:
  HandWrittenReduction() { loadDialects(context); }

  /// The kernels of the IR with B replaced by `batch`.
  std::vector<std::pair<KernelOp, std::string>>
  parse(const std::string &batch) {
    // B as a dimension: after `<` or `x`, before `x` or `>`.
    std::string ir;
    llvm::StringRef text = GetParam().ir;
    for (size_t i = 0; i < text.size(); ++i) {
      bool dim = text[i] == 'B' && i > 0 && i + 1 < text.size() &&
                 (text[i - 1] == '<' || text[i - 1] == 'x') &&
                 (text[i + 1] == 'x' || text[i + 1] == '>');
      ir += dim ? batch : std::string(1, text[i]);
    }
    modules.push_back(parseScheduled(ir, context));
    if (!modules.back())
      return {};
    return kernelsOfKind(*modules.back(), KernelKind::reduction);
  }

  mlir::MLIRContext context;
  std::vector<mlir::OwningOpRef<mlir::ModuleOp>> modules;
};

TEST_P(HandWrittenReduction, CppMatchesTheReferenceExecutor) {
  auto kernels = parse("37");
  ASSERT_FALSE(kernels.empty());
  expectCppMatchesReference(
      kernels, relative(GetParam().tolerance, GetParam().tolerance));
  auto dynamic = parse("?");
  ASSERT_FALSE(dynamic.empty());
  expectCppMatchesReferenceWithSize(
      dynamic, relative(GetParam().tolerance, GetParam().tolerance), 11);
}

TEST_P(HandWrittenReduction, CudaCompilesWithNvrtc) {
  if (!runtime::nvrtcAvailable())
    GTEST_SKIP() << "NVRTC is not available";
  for (const char *batch : {"?", "64"}) {
    auto kernels = parse(batch);
    ASSERT_FALSE(kernels.empty());
    expectCudaCompiles(kernels, GetParam().name);
  }
}

// On a GPU, else emulated.
TEST_P(HandWrittenReduction, CudaMatchesTheReferenceExecutor) {
  auto kernels = parse("?");
  ASSERT_FALSE(kernels.empty());
  for (int64_t batch : {1, 37, 3000})
    expectCudaOrEmulatedMatchesReference(
        kernels, relative(GetParam().tolerance, GetParam().tolerance), batch);
}

INSTANTIATE_TEST_SUITE_P(Kernels, HandWrittenReduction,
                         ::testing::ValuesIn(kHandWritten),
                         [](const auto &info) {
                           return std::string(info.param.name);
                         });

//===----------------------------------------------------------------------===//
// Launch configurations and the shape of the CUDA code
//===----------------------------------------------------------------------===//

/// The CUDA kernel of the first kernel of `module` named `name` whose
/// first input has `columns` as its last dimension.
codegen::GeneratedKernel cudaKernel(mlir::ModuleOp module, llvm::StringRef name,
                                    int64_t columns) {
  for (auto &[kernel, symbol] : kernelsOfKind(module, KernelKind::reduction)) {
    auto type = llvm::cast<mlir::RankedTensorType>(
        kernel.getInputs().front().getType());
    if (kernel.getName() != name || type.getShape().back() != columns)
      continue;
    auto generated =
        codegen::generateKernel(kernel, symbol, codegen::Target::cuda);
    EXPECT_TRUE(succeeded(generated));
    return succeeded(generated) ? *generated : codegen::GeneratedKernel();
  }
  ADD_FAILURE() << "no kernel " << name.str();
  return {};
}

TEST(ReductionLaunch, EachLayoutGetsItsScheme) {
  mlir::MLIRContext context;
  loadDialects(context);
  auto module = compileFused(context, examplePath("mlp.kiln"), "");
  ASSERT_TRUE(module);

  // Bias gradient [?, 512] -> [512]: blocks of 32 columns x 16 slices of
  // the batch, 512 / 32 blocks whatever the batch. (The reduce_mean's
  // input is [?]: kDynamic finds it.)
  codegen::GeneratedKernel bias = cudaKernel(*module, "reduce_sum", 512);
  EXPECT_EQ(bias.launch.block[0], 32u);
  EXPECT_GT(bias.launch.block[1], 1u);
  EXPECT_EQ(bias.launch.grid[0].evaluate({64}), 512 / 32);
  EXPECT_NE(bias.source.find("__syncthreads"), std::string::npos);

  // argmax over 10 classes: a warp a row, 8 rows a block.
  codegen::GeneratedKernel argmax = cudaKernel(*module, "argmax_cmp_cast", 10);
  EXPECT_EQ(argmax.launch.block[0], 256u);
  ASSERT_EQ(argmax.dynamicDims.size(), 1u);
  EXPECT_EQ(argmax.launch.grid[0].evaluate({64}), 8);
  EXPECT_NE(argmax.source.find("kiln_reduce_warp_argmax"), std::string::npos);

  // The loss: one block, whatever the batch.
  codegen::GeneratedKernel loss = cudaKernel(*module, "cross_entropy", 10);
  EXPECT_EQ(loss.launch.grid[0].evaluate({100000}), 1);
  EXPECT_EQ(loss.launch.block[0], 1024u);

  // The accuracy mean over a dynamic extent: one block a row.
  codegen::GeneratedKernel mean =
      cudaKernel(*module, "reduce_mean", mlir::ShapedType::kDynamic);
  EXPECT_EQ(mean.launch.grid[0].evaluate({64}), 1);
  EXPECT_NE(mean.source.find("kiln_reduce_block_sum"), std::string::npos);

  for (const auto &g : {bias, argmax, loss, mean}) {
    EXPECT_EQ(g.source.find("atomic"), std::string::npos) << g.symbol;
    EXPECT_NE(g.source.find("// kernel "), std::string::npos) << g.symbol;
  }
}

} // namespace
