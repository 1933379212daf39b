//===- OpaqueTest.cpp - hand-written opaque kernels -----------------------===//
//
// Hand-written opaque kernels covering what the examples lack (transposes,
// stride 2 with padding, overlapping pools, embeddings with repeated
// indices, f64, a dynamic batch, convolutions large enough for every GEMM
// tiling): the CUDA C compiles with NVRTC for sm_80 and sm_90 without
// register spills, the C++ computes what the reference executor computes,
// and so does the CUDA, on a GPU (twice, bit for bit the same) or emulated
// on the host. (Every example's opaque kernels: ExampleKernelsTest.cpp; the
// generated text of one kernel with one schedule: kernel-opaque.mlir,
// kernel-elementwise-conv.mlir, kernel-attention.mlir.)
//
// Tolerances. The generated code sums in the element type, the reference in
// double, so random-float inputs meet rounding error that grows with the
// length of a sum: about u * sqrt(n) * |partial sums| for n terms (u = 6e-8
// for f32); each test bounds its longest sums. Index logic is checked
// exactly instead: with inputs rounded to multiples of 1/4
// (CheckOptions::floatStep), every product and sum of these sizes is exact
// in f32, so any order of summation gives the reference's value bit for
// bit, and those checks have tolerance 0. Layout ops, max pooling and
// embeddings copy elements and are always exact.
//
//===----------------------------------------------------------------------===//

#include "Harness.h"

#include "runtime/Nvrtc.h"

#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

using namespace kiln;
using namespace kiln::test;

namespace {

/// A module of functions, each holding one opaque kernel around one op.
class OpaqueKernels : public ::testing::Test {
protected:
  OpaqueKernels() { loadDialects(context); }

  /// Adds a kernel `name` with inputs of `types` (named %a0, %a1, ... in
  /// the region) and one result of type `result`, computed by `op` (the
  /// text after `%r = `).
  void add(const std::string &name, const std::vector<std::string> &types,
           const std::string &result, const std::string &op) {
    std::string params, args, blockArgs, typeList;
    for (size_t k = 0; k < types.size(); ++k) {
      std::string sep = k ? ", " : "";
      params += sep + "%x" + std::to_string(k) + ": " + types[k];
      args += sep + "%x" + std::to_string(k);
      blockArgs += sep + "%a" + std::to_string(k) + ": " + types[k];
      typeList += sep + types[k];
    }
    text += "func.func @f" + std::to_string(count++) + "(" + params + ") -> " +
            result + " {\n  %k = kiln.kernel \"" + name + "\" opaque (" + args +
            ") : (" + typeList + ") -> " + result + " {\n  ^bb0(" + blockArgs +
            "):\n    %r = " + op + "\n    kiln.yield %r : " + result +
            "\n  }\n  return %k : " + result + "\n}\n";
  }

  /// Adds conv2d and its two gradients for f32 input `x`, weight `w` and
  /// output `y` (shapes as "NxCxHxW", "?" for a dynamic batch) with
  /// `attrs` ("stride [..] padding [..]").
  void addConv(const std::string &x, const std::string &w, const std::string &y,
               const std::string &attrs) {
    std::string tx = "tensor<" + x + "xf32>", tw = "tensor<" + w + "xf32>",
                ty = "tensor<" + y + "xf32>";
    add("conv2d", {tx, tw}, ty,
        "kiln.conv2d %a0, %a1 " + attrs + " : (" + tx + ", " + tw + ") -> " +
            ty);
    add("conv2d_grad_input", {ty, tw, tx}, tx,
        "kiln.conv2d_grad_input %a0, %a1, %a2 " + attrs + " : (" + ty + ", " +
            tw + ", " + tx + ") -> " + tx);
    add("conv2d_grad_weight", {tx, ty, tw}, tw,
        "kiln.conv2d_grad_weight %a0, %a1, %a2 " + attrs + " : (" + tx + ", " +
            ty + ", " + tw + ") -> " + tw);
  }

  /// Parses the kernels added so far, compiles them as CUDA C, and checks
  /// the C++ against the reference on random inputs, then on inputs that
  /// make every sum exact (with tolerance 0 unless `exactTolerance`).
  void check(const Tolerance &tolerance, int64_t dynamicSize = 0,
             const Tolerance &exactTolerance = relative(0, 0)) {
    auto module = parseScheduled(text, context);
    ASSERT_TRUE(module) << text;
    auto kernels = kernelsOfKind(*module, KernelKind::opaque);
    ASSERT_EQ(kernels.size(), count);
    if (runtime::nvrtcAvailable()) {
      expectCudaCompiles(kernels, "opaque_kernels");
      expectNoSpills(kernels);
    }
    CheckOptions options;
    options.dynamicSize = dynamicSize;
    expectCppMatchesReference(kernels, tolerance, options);
    expectCudaOrEmulatedMatchesReference(kernels, tolerance, dynamicSize);
    options.floatStep = 0.25;
    expectCppMatchesReference(kernels, exactTolerance, options);
  }

  mlir::MLIRContext context;
  std::string text;
  size_t count = 0;
};

// Every permutation of a rank-3 tensor, rank 2 of an integer type, rank 4.
TEST_F(OpaqueKernels, Transpose) {
  const int64_t shape[] = {2, 3, 5};
  for (std::vector<int64_t> perm : std::vector<std::vector<int64_t>>{
           {0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}) {
    std::string permText = "[" + std::to_string(perm[0]) + ", " +
                           std::to_string(perm[1]) + ", " +
                           std::to_string(perm[2]) + "]";
    std::string out = "tensor<" + std::to_string(shape[perm[0]]) + "x" +
                      std::to_string(shape[perm[1]]) + "x" +
                      std::to_string(shape[perm[2]]) + "xf32>";
    add("transpose", {"tensor<2x3x5xf32>"}, out,
        "kiln.transpose %a0 " + permText + " : (tensor<2x3x5xf32>) -> " + out);
  }
  add("transpose", {"tensor<4x7xi32>"}, "tensor<7x4xi32>",
      "kiln.transpose %a0 [1, 0] : (tensor<4x7xi32>) -> tensor<7x4xi32>");
  // Attention's head split: the last dimension stays (rows copied whole
  // on the CPU).
  add("transpose", {"tensor<2x3x2x5xf64>"}, "tensor<2x2x3x5xf64>",
      "kiln.transpose %a0 [0, 2, 1, 3] : (tensor<2x3x2x5xf64>) -> "
      "tensor<2x2x3x5xf64>");
  add("transpose", {"tensor<3x1x2x4xf64>"}, "tensor<4x2x3x1xf64>",
      "kiln.transpose %a0 [3, 2, 0, 1] : (tensor<3x1x2x4xf64>) -> "
      "tensor<4x2x3x1xf64>");
  add("reshape", {"tensor<6x5xi64>"}, "tensor<3x10xi64>",
      "kiln.reshape %a0 [3, 10] : (tensor<6x5xi64>) -> tensor<3x10xi64>");
  check(relative(0, 0));
}

// A dynamic leading dimension, moved inward: the size is a parameter.
TEST_F(OpaqueKernels, TransposeAndReshapeWithADynamicDimension) {
  add("transpose", {"tensor<?x3x5xf32>"}, "tensor<5x?x3xf32>",
      "kiln.transpose %a0 [2, 0, 1] : (tensor<?x3x5xf32>) -> "
      "tensor<5x?x3xf32>");
  add("reshape", {"tensor<?x3x5xf32>"}, "tensor<?x15xf32>",
      "kiln.reshape %a0 [-1, 15] : (tensor<?x3x5xf32>) -> tensor<?x15xf32>");
  check(relative(0, 0), /*dynamicSize=*/4);
}

// Stride 2 with padding, unequal strides and paddings, and a last input
// row that no window reaches (its input gradient is zero). Sums of at most
// 3 * 3 * 3 (forward), 4 * 2 * 2 (input gradient) and 2 * 5 * 5 (weight
// gradient) products.
TEST_F(OpaqueKernels, Conv2dStridedAndPadded) {
  // H = 10, W = 9, kernel 3x3, stride [2, 2], padding [1, 1]: 5x5.
  add("conv2d", {"tensor<2x3x10x9xf32>", "tensor<4x3x3x3xf32>"},
      "tensor<2x4x5x5xf32>",
      "kiln.conv2d %a0, %a1 stride [2, 2] padding [1, 1] : "
      "(tensor<2x3x10x9xf32>, tensor<4x3x3x3xf32>) -> tensor<2x4x5x5xf32>");
  add("conv2d_grad_input",
      {"tensor<2x4x5x5xf32>", "tensor<4x3x3x3xf32>", "tensor<2x3x10x9xf32>"},
      "tensor<2x3x10x9xf32>",
      "kiln.conv2d_grad_input %a0, %a1, %a2 stride [2, 2] padding [1, 1] : "
      "(tensor<2x4x5x5xf32>, tensor<4x3x3x3xf32>, tensor<2x3x10x9xf32>) -> "
      "tensor<2x3x10x9xf32>");
  add("conv2d_grad_weight",
      {"tensor<2x3x10x9xf32>", "tensor<2x4x5x5xf32>", "tensor<4x3x3x3xf32>"},
      "tensor<4x3x3x3xf32>",
      "kiln.conv2d_grad_weight %a0, %a1, %a2 stride [2, 2] padding [1, 1] : "
      "(tensor<2x3x10x9xf32>, tensor<2x4x5x5xf32>, tensor<4x3x3x3xf32>) -> "
      "tensor<4x3x3x3xf32>");
  // H = 10, W = 7, kernel 2x3, stride [3, 1], padding [0, 2]: 3x9
  // outputs; rows 2, 5, 8 and 9 are in no window.
  add("conv2d", {"tensor<1x2x10x7xf32>", "tensor<3x2x2x3xf32>"},
      "tensor<1x3x3x9xf32>",
      "kiln.conv2d %a0, %a1 stride [3, 1] padding [0, 2] : "
      "(tensor<1x2x10x7xf32>, tensor<3x2x2x3xf32>) -> tensor<1x3x3x9xf32>");
  add("conv2d_grad_input",
      {"tensor<1x3x3x9xf32>", "tensor<3x2x2x3xf32>", "tensor<1x2x10x7xf32>"},
      "tensor<1x2x10x7xf32>",
      "kiln.conv2d_grad_input %a0, %a1, %a2 stride [3, 1] padding [0, 2] : "
      "(tensor<1x3x3x9xf32>, tensor<3x2x2x3xf32>, tensor<1x2x10x7xf32>) -> "
      "tensor<1x2x10x7xf32>");
  add("conv2d_grad_weight",
      {"tensor<1x2x10x7xf32>", "tensor<1x3x3x9xf32>", "tensor<3x2x2x3xf32>"},
      "tensor<3x2x2x3xf32>",
      "kiln.conv2d_grad_weight %a0, %a1, %a2 stride [3, 1] padding [0, 2] : "
      "(tensor<1x2x10x7xf32>, tensor<1x3x3x9xf32>, tensor<3x2x2x3xf32>) -> "
      "tensor<3x2x2x3xf32>");
  check(relative(1e-5, 1e-5));
}

// A dynamic batch, as the examples have before `--bind`.
TEST_F(OpaqueKernels, Conv2dWithADynamicBatch) {
  add("conv2d", {"tensor<?x2x6x6xf32>", "tensor<3x2x3x3xf32>"},
      "tensor<?x3x3x3xf32>",
      "kiln.conv2d %a0, %a1 stride [2, 2] padding [1, 1] : "
      "(tensor<?x2x6x6xf32>, tensor<3x2x3x3xf32>) -> tensor<?x3x3x3xf32>");
  add("conv2d_grad_input",
      {"tensor<?x3x3x3xf32>", "tensor<3x2x3x3xf32>", "tensor<?x2x6x6xf32>"},
      "tensor<?x2x6x6xf32>",
      "kiln.conv2d_grad_input %a0, %a1, %a2 stride [2, 2] padding [1, 1] : "
      "(tensor<?x3x3x3xf32>, tensor<3x2x3x3xf32>, tensor<?x2x6x6xf32>) -> "
      "tensor<?x2x6x6xf32>");
  add("conv2d_grad_weight",
      {"tensor<?x2x6x6xf32>", "tensor<?x3x3x3xf32>", "tensor<3x2x3x3xf32>"},
      "tensor<3x2x3x3xf32>",
      "kiln.conv2d_grad_weight %a0, %a1, %a2 stride [2, 2] padding [1, 1] : "
      "(tensor<?x2x6x6xf32>, tensor<?x3x3x3xf32>, tensor<3x2x3x3xf32>) -> "
      "tensor<3x2x3x3xf32>");
  check(relative(1e-5, 1e-5), /*dynamicSize=*/3);
}

// Shapes large enough for every CUDA tiling: a long M with 128-row tiles
// (M = 4 * 32 * 32 = 4096, N = 64 and 16), a long M with 64-row tiles, a
// first layer (C = 1, K = 9), non-square kernels with stride 2, and weight
// gradients split into 16 and 4 slices of k (K = 4096 and 1024) with
// M and N that are not multiples of the tiles. Sums of at most 4096
// products: about 6e-8 * 64 * 150 = 6e-4.
TEST_F(OpaqueKernels, Conv2dEveryTiling) {
  addConv("4x3x32x32", "64x3x3x3", "4x64x32x32",
          "stride [1, 1] padding [1, 1]");
  addConv("4x1x32x32", "10x1x3x3", "4x10x32x32",
          "stride [1, 1] padding [1, 1]");
  addConv("4x5x17x23", "40x5x3x2", "4x40x8x12", "stride [2, 2] padding [0, 1]");
  addConv("2x7x16x16", "3x7x5x3", "2x3x8x8", "stride [2, 2] padding [2, 1]");
  check(relative(2e-3, 1e-5));
}

// The same with a dynamic batch: M (and the weight gradient's K) are
// parameters; the split count is fixed, the slices follow K.
TEST_F(OpaqueKernels, Conv2dEveryTilingWithADynamicBatch) {
  addConv("?x3x20x20", "33x3x3x3", "?x33x20x20",
          "stride [1, 1] padding [1, 1]");
  check(relative(2e-3, 1e-5), /*dynamicSize=*/3);
}

// Overlapping 3x3 windows with stride 2 and padding 1: the padding never
// wins a max and counts in an average's divisor; inputs in multiples of 1/4
// tie often, and the first maximum in window order takes the gradient.
TEST_F(OpaqueKernels, PoolingOverlappingAndPadded) {
  // H = 7, W = 6: (7 + 2 - 3) / 2 + 1 = 4, (6 + 2 - 3) / 2 + 1 = 3.
  for (const char *pool : {"max_pool2d", "avg_pool2d"})
    add(pool, {"tensor<2x3x7x6xf32>"}, "tensor<2x3x4x3xf32>",
        std::string("kiln.") + pool +
            " %a0 kernel [3, 3] stride [2, 2] padding [1, 1] : "
            "(tensor<2x3x7x6xf32>) -> tensor<2x3x4x3xf32>");
  add("max_pool2d_grad", {"tensor<2x3x7x6xf32>", "tensor<2x3x4x3xf32>"},
      "tensor<2x3x7x6xf32>",
      "kiln.max_pool2d_grad %a0, %a1 kernel [3, 3] stride [2, 2] padding "
      "[1, 1] : (tensor<2x3x7x6xf32>, tensor<2x3x4x3xf32>) -> "
      "tensor<2x3x7x6xf32>");
  add("avg_pool2d_grad", {"tensor<2x3x4x3xf32>", "tensor<2x3x7x6xf32>"},
      "tensor<2x3x7x6xf32>",
      "kiln.avg_pool2d_grad %a0, %a1 kernel [3, 3] stride [2, 2] padding "
      "[1, 1] : (tensor<2x3x4x3xf32>, tensor<2x3x7x6xf32>) -> "
      "tensor<2x3x7x6xf32>");
  // Unequal windows, strides and paddings; the last two columns are in no
  // window: H = 5, W = 8, kernel 2x3, stride [1, 3], padding [1, 0].
  add("max_pool2d_grad", {"tensor<1x2x5x8xf32>", "tensor<1x2x6x2xf32>"},
      "tensor<1x2x5x8xf32>",
      "kiln.max_pool2d_grad %a0, %a1 kernel [2, 3] stride [1, 3] padding "
      "[1, 0] : (tensor<1x2x5x8xf32>, tensor<1x2x6x2xf32>) -> "
      "tensor<1x2x5x8xf32>");
  add("avg_pool2d_grad", {"tensor<1x2x6x2xf32>", "tensor<1x2x5x8xf32>"},
      "tensor<1x2x5x8xf32>",
      "kiln.avg_pool2d_grad %a0, %a1 kernel [2, 3] stride [1, 3] padding "
      "[1, 0] : (tensor<1x2x6x2xf32>, tensor<1x2x5x8xf32>) -> "
      "tensor<1x2x5x8xf32>");
  add("max_pool2d", {"tensor<?x2x5x8xf32>"}, "tensor<?x2x6x2xf32>",
      "kiln.max_pool2d %a0 kernel [2, 3] stride [1, 3] padding [1, 0] : "
      "(tensor<?x2x5x8xf32>) -> tensor<?x2x6x2xf32>");
  // Averages divide by 9 or 6 (one rounding per term); a gradient element
  // sums at most 4 shares, which may cancel (even on exact inputs).
  check(relative(1e-6, 1e-6), /*dynamicSize=*/2, relative(1e-6, 1e-6));
}

// Indices in [0, 3) into 5 rows: every row looked up repeatedly or never
// (rows 3 and 4 must come out zero).
TEST_F(OpaqueKernels, EmbeddingWithRepeatedIndices) {
  add("embedding", {"tensor<5x6xf32>", "tensor<4x7xi32>"}, "tensor<4x7x6xf32>",
      "kiln.embedding %a0, %a1 : (tensor<5x6xf32>, tensor<4x7xi32>) -> "
      "tensor<4x7x6xf32>");
  add("embedding", {"tensor<5x40xf64>", "tensor<9xi64>"}, "tensor<9x40xf64>",
      "kiln.embedding %a0, %a1 : (tensor<5x40xf64>, tensor<9xi64>) -> "
      "tensor<9x40xf64>");
  add("embedding_grad",
      {"tensor<4x7xi32>", "tensor<4x7x6xf32>", "tensor<5x6xf32>"},
      "tensor<5x6xf32>",
      "kiln.embedding_grad %a0, %a1, %a2 : (tensor<4x7xi32>, "
      "tensor<4x7x6xf32>, tensor<5x6xf32>) -> tensor<5x6xf32>");
  add("embedding_grad",
      {"tensor<9xi64>", "tensor<9x300xf64>", "tensor<5x300xf64>"},
      "tensor<5x300xf64>",
      "kiln.embedding_grad %a0, %a1, %a2 : (tensor<9xi64>, "
      "tensor<9x300xf64>, tensor<5x300xf64>) -> tensor<5x300xf64>");
  add("embedding_grad",
      {"tensor<?x3xi32>", "tensor<?x3x4xf32>", "tensor<3x4xf32>"},
      "tensor<3x4xf32>",
      "kiln.embedding_grad %a0, %a1, %a2 : (tensor<?x3xi32>, "
      "tensor<?x3x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>");
  // A row sums about 28 / 3 gradient rows.
  check(relative(1e-6, 1e-6), /*dynamicSize=*/6);
}

// f64 throughout: the reference's double arithmetic, so only summation
// order separates the results (and nothing on exact inputs).
TEST_F(OpaqueKernels, Float64) {
  add("conv2d", {"tensor<2x3x8x8xf64>", "tensor<4x3x3x3xf64>"},
      "tensor<2x4x4x4xf64>",
      "kiln.conv2d %a0, %a1 stride [2, 2] padding [1, 1] : "
      "(tensor<2x3x8x8xf64>, tensor<4x3x3x3xf64>) -> tensor<2x4x4x4xf64>");
  add("conv2d_grad_input",
      {"tensor<2x4x4x4xf64>", "tensor<4x3x3x3xf64>", "tensor<2x3x8x8xf64>"},
      "tensor<2x3x8x8xf64>",
      "kiln.conv2d_grad_input %a0, %a1, %a2 stride [2, 2] padding [1, 1] : "
      "(tensor<2x4x4x4xf64>, tensor<4x3x3x3xf64>, tensor<2x3x8x8xf64>) -> "
      "tensor<2x3x8x8xf64>");
  add("conv2d_grad_weight",
      {"tensor<2x3x8x8xf64>", "tensor<2x4x4x4xf64>", "tensor<4x3x3x3xf64>"},
      "tensor<4x3x3x3xf64>",
      "kiln.conv2d_grad_weight %a0, %a1, %a2 stride [2, 2] padding [1, 1] : "
      "(tensor<2x3x8x8xf64>, tensor<2x4x4x4xf64>, tensor<4x3x3x3xf64>) -> "
      "tensor<4x3x3x3xf64>");
  add("max_pool2d", {"tensor<2x2x5x5xf64>"}, "tensor<2x2x3x3xf64>",
      "kiln.max_pool2d %a0 kernel [3, 3] stride [2, 2] padding [1, 1] : "
      "(tensor<2x2x5x5xf64>) -> tensor<2x2x3x3xf64>");
  add("avg_pool2d", {"tensor<2x2x5x5xf64>"}, "tensor<2x2x3x3xf64>",
      "kiln.avg_pool2d %a0 kernel [3, 3] stride [2, 2] padding [1, 1] : "
      "(tensor<2x2x5x5xf64>) -> tensor<2x2x3x3xf64>");
  add("max_pool2d_grad", {"tensor<2x2x5x5xf64>", "tensor<2x2x3x3xf64>"},
      "tensor<2x2x5x5xf64>",
      "kiln.max_pool2d_grad %a0, %a1 kernel [3, 3] stride [2, 2] padding "
      "[1, 1] : (tensor<2x2x5x5xf64>, tensor<2x2x3x3xf64>) -> "
      "tensor<2x2x5x5xf64>");
  add("avg_pool2d_grad", {"tensor<2x2x3x3xf64>", "tensor<2x2x5x5xf64>"},
      "tensor<2x2x5x5xf64>",
      "kiln.avg_pool2d_grad %a0, %a1 kernel [3, 3] stride [2, 2] padding "
      "[1, 1] : (tensor<2x2x3x3xf64>, tensor<2x2x5x5xf64>) -> "
      "tensor<2x2x5x5xf64>");
  // Sums of at most 108 terms of magnitude 4 in double.
  check(relative(1e-12, 1e-12));
}

} // namespace
