//===- ScheduleTest.cpp - generators render any valid schedule ------------===//
//
// The code generators render the schedule a kernel carries, whichever it is
// in its valid space, not only the one kiln-schedule would choose. A sample
// of each kind's space is rendered for hand-written kernels whose sizes are
// not multiples of the tiles, and each copy checked against the reference
// executor: the CUDA C emulated on the host (or on a GPU), the C++
// compiled. A schedule that does not fit its kernel is an error at the
// kernel.
//
//===----------------------------------------------------------------------===//

#include "Harness.h"

#include "ir/Schedules.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"

#include <gtest/gtest.h>

using namespace kiln;
using namespace kiln::test;

namespace {

using Kernels = std::vector<std::pair<KernelOp, std::string>>;

/// Each of `kernels` once per schedule of `schedules`: copies of it, each
/// with that schedule for every target of `targets`, named by kernel and
/// schedule.
Kernels withSchedules(const Kernels &kernels,
                      llvm::ArrayRef<llvm::StringRef> targets,
                      llvm::ArrayRef<mlir::Attribute> schedules) {
  Kernels copies;
  for (auto [kernel, symbol] : kernels)
    for (auto [n, schedule] : llvm::enumerate(schedules)) {
      mlir::OpBuilder builder(kernel);
      auto copy = llvm::cast<KernelOp>(builder.clone(*kernel));
      for (llvm::StringRef target : targets)
        setSchedule(copy, target, schedule);
      copies.push_back({copy, symbol + "_s" + std::to_string(n)});
    }
  return copies;
}

/// Every `stride`-th schedule of each kernel's space for `target` (from the
/// first), as copies of the kernels.
Kernels sampleOfSpaces(const Kernels &kernels, llvm::StringRef target,
                       size_t samples) {
  Kernels copies;
  for (const auto &kernel : kernels) {
    llvm::SmallVector<mlir::Attribute> space =
        scheduleSpace(kernel.first, target);
    EXPECT_GE(space.size(), samples) << kernel.second;
    size_t stride = std::max<size_t>(1, space.size() / samples);
    std::vector<mlir::Attribute> sample;
    for (size_t i = 0; i < space.size() && sample.size() < samples; i += stride)
      sample.push_back(space[i]);
    Kernels some = withSchedules({kernel}, {target}, sample);
    for (auto &[copy, symbol] : some)
      symbol = "space_" + symbol;
    copies.insert(copies.end(), some.begin(), some.end());
  }
  return copies;
}

// f32 products whose sizes are not multiples of any tile: plain with a bias,
// the lhs transposed (a weight gradient's layout), the rhs transposed with
// K a multiple of the vector (16-byte loads).
constexpr const char *kMatmuls = R"mlir(
  func.func @f(%a: tensor<37x300xf32>, %b: tensor<300x29xf32>, %bias: tensor<29xf32>,
               %g: tensor<130x10xf32>, %h: tensor<130x70xf32>,
               %x: tensor<33x64xf32>, %w: tensor<20x64xf32>) {
    %0 = kiln.kernel "matmul_add" matmul (%a, %b, %bias) : (tensor<37x300xf32>, tensor<300x29xf32>, tensor<29xf32>) -> tensor<37x29xf32> {
    ^bb0(%a0: tensor<37x300xf32>, %a1: tensor<300x29xf32>, %a2: tensor<29xf32>):
      %1 = kiln.matmul %a0, %a1 : (tensor<37x300xf32>, tensor<300x29xf32>) -> tensor<37x29xf32>
      %2 = kiln.add %1, %a2 : (tensor<37x29xf32>, tensor<29xf32>) -> tensor<37x29xf32>
      kiln.yield %2 : tensor<37x29xf32>
    }
    %3 = kiln.kernel "matmul" matmul (%g, %h) : (tensor<130x10xf32>, tensor<130x70xf32>) -> tensor<10x70xf32> {
    ^bb0(%a0: tensor<130x10xf32>, %a1: tensor<130x70xf32>):
      %4 = kiln.matmul %a0, %a1 transpose_lhs : (tensor<130x10xf32>, tensor<130x70xf32>) -> tensor<10x70xf32>
      kiln.yield %4 : tensor<10x70xf32>
    }
    %5 = kiln.kernel "matmul" matmul (%x, %w) : (tensor<33x64xf32>, tensor<20x64xf32>) -> tensor<33x20xf32> {
    ^bb0(%a0: tensor<33x64xf32>, %a1: tensor<20x64xf32>):
      %6 = kiln.matmul %a0, %a1 transpose_rhs : (tensor<33x64xf32>, tensor<20x64xf32>) -> tensor<33x20xf32>
      kiln.yield %6 : tensor<33x20xf32>
    }
    return
  })mlir";

// A sample of #kiln.gemm's space: the smallest and largest tiles, long and
// short thread tiles, every k step, split-K up to 16 groups.
TEST(GemmScheduleSpace, SampleMatchesTheReference) {
  mlir::MLIRContext context;
  loadDialects(context);
  auto module = parseScheduled(kMatmuls, context);
  ASSERT_TRUE(module);
  auto gemm = [&](int64_t bm, int64_t bn, int64_t bk, int64_t tm, int64_t tn,
                  int64_t split) -> mlir::Attribute {
    return GemmScheduleAttr::get(&context, bm, bn, bk, tm, tn, split);
  };
  auto kernels =
      withSchedules(kernelsOfKind(*module, KernelKind::matmul), {kCudaTarget},
                    {gemm(16, 16, 8, 1, 1, 1), gemm(128, 128, 16, 8, 8, 1),
                     gemm(16, 16, 16, 2, 2, 8), gemm(128, 16, 8, 8, 1, 2),
                     gemm(32, 128, 16, 2, 8, 2), gemm(16, 16, 8, 2, 4, 16)});
  ASSERT_EQ(kernels.size(), 18u);
  // Each copy is rendered with its own schedule: its block and tiles.
  for (auto &[kernel, symbol] : kernels) {
    auto schedule =
        llvm::cast<GemmScheduleAttr>(getSchedule(kernel, kCudaTarget));
    auto generated =
        codegen::generateKernel(kernel, symbol, codegen::Target::cuda);
    ASSERT_TRUE(mlir::succeeded(generated)) << symbol;
    EXPECT_EQ(generated->launch.block[0], unsigned(schedule.threads()));
    EXPECT_NE(
        generated->source.find("BM = " + std::to_string(schedule.getBm()) +
                               ", BN = " + std::to_string(schedule.getBn()) +
                               ", BK = " + std::to_string(schedule.getBk())),
        std::string::npos)
        << symbol;
  }
  expectCudaOrEmulatedMatchesReference(kernels, relative(1e-4, 1e-5),
                                       /*dynamicSize=*/0);
}

// #kiln.cpu_gemm's register blocks: one row, a tile wider than N, rows
// and columns not dividing M and N, the largest tiles.
TEST(CpuGemmScheduleSpace, SampleMatchesTheReference) {
  mlir::MLIRContext context;
  loadDialects(context);
  auto module = parseScheduled(kMatmuls, context);
  ASSERT_TRUE(module);
  std::vector<mlir::Attribute> schedules;
  for (auto [mr, nr] : {std::pair{1, 16}, {7, 48}, {6, 64}, {16, 32}, {8, 64}})
    schedules.push_back(CpuGemmScheduleAttr::get(&context, mr, nr));
  auto kernels = withSchedules(kernelsOfKind(*module, KernelKind::matmul),
                               {kCpuTarget}, schedules);
  expectCppMatchesReference(kernels, relative(1e-4, 1e-5));
}

// The C++ GEMM at edge sizes: M, N and K of 1, primes, sizes just past a
// register block, in every layout (A and B transposed or not), f32 and
// f64, and a batched product broadcasting B; each under the schedule
// kiln-schedule chooses and under a small tile.
TEST(CpuGemmEdges, EdgeSizesMatchTheReference) {
  mlir::MLIRContext context;
  loadDialects(context);
  struct Case {
    int64_t m, n, k;
  };
  const Case cases[] = {{1, 1, 1},   {1, 17, 1},   {7, 1, 13},
                        {13, 67, 5}, {31, 16, 97}, {65, 129, 2}};
  int n = 0;
  auto shape = [](int64_t rows, int64_t cols, llvm::StringRef type) {
    return "tensor<" + std::to_string(rows) + "x" + std::to_string(cols) + "x" +
           type.str() + ">";
  };
  std::string params, kernels;
  for (const Case &c : cases)
    for (int layout = 0; layout < 4; ++layout)
      for (llvm::StringRef type : {"f32", "f64"}) {
        if (type == "f64" && layout % 3 != 0)
          continue;
        bool tl = layout & 1, tr = layout & 2;
        std::string a = tl ? shape(c.k, c.m, type) : shape(c.m, c.k, type);
        std::string b = tr ? shape(c.n, c.k, type) : shape(c.k, c.n, type);
        std::string out = shape(c.m, c.n, type);
        std::string id = std::to_string(n++);
        params += std::string(params.empty() ? "" : ", ") + "%a" + id + ": " +
                  a + ", %b" + id + ": " + b;
        std::string flags = std::string(tl ? " transpose_lhs" : "") +
                            (tr ? " transpose_rhs" : "");
        kernels += "    %r" + id + " = kiln.kernel \"matmul\" matmul (%a" + id +
                   ", %b" + id + ") : (" + a + ", " + b + ") -> " + out +
                   " {\n    ^bb0(%x: " + a + ", %y: " + b +
                   "):\n      %p = kiln.matmul %x, %y" + flags + " : (" + a +
                   ", " + b + ") -> " + out + "\n      kiln.yield %p : " + out +
                   "\n    }\n";
      }
  // A batched product: A [3, 2, 5, 7] times B [7, 9], broadcast (one GEMM
  // of 30 rows), with an epilogue reading inputs broadcast over the batch
  // and over the rows.
  params += ", %ba: tensor<3x2x5x7xf32>, %bb: tensor<7x9xf32>, %bc: "
            "tensor<2x5x9xf32>, %bd: tensor<3x1x1x9xf32>";
  kernels +=
      R"mlir(    %batched = kiln.kernel "matmul" matmul (%ba, %bb, %bc, %bd) : (tensor<3x2x5x7xf32>, tensor<7x9xf32>, tensor<2x5x9xf32>, tensor<3x1x1x9xf32>) -> tensor<3x2x5x9xf32> {
    ^bb0(%x: tensor<3x2x5x7xf32>, %y: tensor<7x9xf32>, %z: tensor<2x5x9xf32>, %w: tensor<3x1x1x9xf32>):
      %p = kiln.matmul %x, %y : (tensor<3x2x5x7xf32>, tensor<7x9xf32>) -> tensor<3x2x5x9xf32>
      %s = kiln.add %p, %z : (tensor<3x2x5x9xf32>, tensor<2x5x9xf32>) -> tensor<3x2x5x9xf32>
      %t = kiln.mul %s, %w : (tensor<3x2x5x9xf32>, tensor<3x1x1x9xf32>) -> tensor<3x2x5x9xf32>
      kiln.yield %t : tensor<3x2x5x9xf32>
    }
)mlir";
  std::string text =
      "func.func @f(" + params + ") {\n" + kernels + "    return\n}\n";
  auto module = parseScheduled(text, context);
  ASSERT_TRUE(module);
  Kernels chosen = kernelsOfKind(*module, KernelKind::matmul);
  ASSERT_EQ(chosen.size(), 6u * 6u + 1u);
  Kernels all = withSchedules(chosen, {kCpuTarget},
                              {CpuGemmScheduleAttr::get(&context, 3, 16)});
  for (auto &[kernel, symbol] : all)
    symbol = "small_" + symbol;
  all.insert(all.end(), chosen.begin(), chosen.end());
  expectCppMatchesReference(all, relative(1e-4, 1e-5));
}

// Rows of 300 (reduced innermost) and columns of 37 (kept innermost), a sum
// and an argmax, under each scheme that fits them.
constexpr const char *kReductions = R"mlir(
  func.func @f(%x: tensor<37x300xf32>, %y: tensor<300x37xf32>) {
    %0 = kiln.kernel "reduce_sum" reduction (%x) : (tensor<37x300xf32>) -> tensor<37xf32> {
    ^bb0(%a: tensor<37x300xf32>):
      %r = kiln.reduce_sum %a [1] : (tensor<37x300xf32>) -> tensor<37xf32>
      kiln.yield %r : tensor<37xf32>
    }
    %1 = kiln.kernel "argmax" reduction (%x) : (tensor<37x300xf32>) -> tensor<37xi32> {
    ^bb0(%a: tensor<37x300xf32>):
      %r = kiln.argmax %a axis 1 : (tensor<37x300xf32>) -> tensor<37xi32>
      kiln.yield %r : tensor<37xi32>
    }
    %2 = kiln.kernel "reduce_sum" reduction (%y) : (tensor<300x37xf32>) -> tensor<37xf32> {
    ^bb0(%a: tensor<300x37xf32>):
      %r = kiln.reduce_sum %a [0] : (tensor<300x37xf32>) -> tensor<37xf32>
      kiln.yield %r : tensor<37xf32>
    }
    return
  })mlir";

TEST(ReduceScheduleSpace, SampleMatchesTheReference) {
  mlir::MLIRContext context;
  loadDialects(context);
  auto module = parseScheduled(kReductions, context);
  ASSERT_TRUE(module);
  auto reduce = [&](ReductionScheme scheme, int64_t x,
                    int64_t y) -> mlir::Attribute {
    return ReduceScheduleAttr::get(&context, scheme, x, y);
  };
  // Every kernel under the row schemes; the columns kernel also in column
  // blocks of several shapes.
  Kernels reductions = kernelsOfKind(*module, KernelKind::reduction);
  Kernels kernels =
      withSchedules(reductions, {kCudaTarget},
                    {reduce(ReductionScheme::warp_rows, 32, 1),
                     reduce(ReductionScheme::warp_rows, 1024, 1),
                     reduce(ReductionScheme::block_rows, 64, 1),
                     reduce(ReductionScheme::block_rows, 1024, 1)});
  Kernels columns = withSchedules({reductions.back()}, {kCudaTarget},
                                  {reduce(ReductionScheme::columns, 1, 1),
                                   reduce(ReductionScheme::columns, 8, 4),
                                   reduce(ReductionScheme::columns, 32, 32)});
  for (auto &[kernel, symbol] : columns)
    symbol = "columns_" + symbol;
  kernels.insert(kernels.end(), columns.begin(), columns.end());
  expectCudaOrEmulatedMatchesReference(kernels, relative(1e-4, 1e-5),
                                       /*dynamicSize=*/0);
}

// An elementwise kernel with the smallest and the largest block.
TEST(ElementwiseScheduleSpace, SampleMatchesTheReference) {
  mlir::MLIRContext context;
  loadDialects(context);
  auto module = parseScheduled(R"mlir(
    func.func @f(%x: tensor<37x29xf32>, %b: tensor<29xf32>) {
      %0 = kiln.kernel "add_relu" elementwise (%x, %b) : (tensor<37x29xf32>, tensor<29xf32>) -> tensor<37x29xf32> {
      ^bb0(%a: tensor<37x29xf32>, %c: tensor<29xf32>):
        %1 = kiln.add %a, %c : (tensor<37x29xf32>, tensor<29xf32>) -> tensor<37x29xf32>
        %2 = kiln.relu %1 : tensor<37x29xf32>
        kiln.yield %2 : tensor<37x29xf32>
      }
      return
    })mlir",
                               context);
  ASSERT_TRUE(module);
  auto kernels = withSchedules(kernelsOfKind(*module, KernelKind::elementwise),
                               {kCudaTarget},
                               {ElementwiseScheduleAttr::get(&context, 32),
                                ElementwiseScheduleAttr::get(&context, 1024)});
  expectCudaOrEmulatedMatchesReference(kernels, relative(0, 0),
                                       /*dynamicSize=*/0);
}

// A convolution and its two gradients under tilings other than the
// chosen ones: 64- and 16-row tiles, and the weight gradient's k in 3 and
// 7 slices (the C++ target sums the same slices).
TEST(ConvScheduleSpace, SampleMatchesTheReference) {
  mlir::MLIRContext context;
  loadDialects(context);
  std::string tx = "tensor<2x3x9x9xf32>", tw = "tensor<8x3x3x3xf32>",
              ty = "tensor<2x8x9x9xf32>";
  std::string attrs = "stride [1, 1] padding [1, 1]";
  std::string text =
      "func.func @f(%x: " + tx + ", %w: " + tw + ", %y: " + ty + ") {\n" +
      "  %0 = kiln.kernel \"conv2d\" opaque (%x, %w) : (" + tx + ", " + tw +
      ") -> " + ty + " {\n  ^bb0(%a0: " + tx + ", %a1: " + tw +
      "):\n    %r = kiln.conv2d %a0, %a1 " + attrs + " : (" + tx + ", " + tw +
      ") -> " + ty + "\n    kiln.yield %r : " + ty + "\n  }\n" +
      "  %1 = kiln.kernel \"conv2d_grad_input\" opaque (%y, %w, %x) : (" + ty +
      ", " + tw + ", " + tx + ") -> " + tx + " {\n  ^bb0(%a0: " + ty +
      ", %a1: " + tw + ", %a2: " + tx +
      "):\n    %r = kiln.conv2d_grad_input %a0, %a1, %a2 " + attrs + " : (" +
      ty + ", " + tw + ", " + tx + ") -> " + tx +
      "\n    kiln.yield %r : " + tx + "\n  }\n" +
      "  %2 = kiln.kernel \"conv2d_grad_weight\" opaque (%x, %y, %w) : (" + tx +
      ", " + ty + ", " + tw + ") -> " + tw + " {\n  ^bb0(%a0: " + tx +
      ", %a1: " + ty + ", %a2: " + tw +
      "):\n    %r = kiln.conv2d_grad_weight %a0, %a1, %a2 " + attrs + " : (" +
      tx + ", " + ty + ", " + tw + ") -> " + tw +
      "\n    kiln.yield %r : " + tw + "\n  }\n  return\n}\n";
  auto module = parseScheduled(text, context);
  ASSERT_TRUE(module) << text;
  auto conv = [&](int64_t bm, int64_t bn, int64_t bk, int64_t tm, int64_t tn,
                  int64_t split, int64_t bits) -> mlir::Attribute {
    return ConvScheduleAttr::get(&context, bm, bn, bk, tm, tn, split, bits);
  };
  auto opaque = kernelsOfKind(*module, KernelKind::opaque);
  ASSERT_EQ(opaque.size(), 3u);
  // Forward and input gradient: whole A rows a thread (threads a multiple
  // of bm), 64-bit indices too.
  Kernels kernels = withSchedules({opaque[0], opaque[1]}, {kCudaTarget},
                                  {conv(64, 16, 16, 2, 2, 1, 32),
                                   conv(16, 32, 4, 1, 4, 1, 64),
                                   conv(128, 64, 16, 8, 4, 1, 32)});
  // Weight gradient (M = 8, N = 27, K = 162): k in slices.
  Kernels weightGradients = withSchedules({opaque[2]}, {kCudaTarget},
                                          {conv(16, 32, 16, 1, 4, 3, 32),
                                           conv(32, 16, 16, 2, 2, 7, 64),
                                           conv(16, 16, 16, 2, 2, 1, 32)});
  kernels.insert(kernels.end(), weightGradients.begin(), weightGradients.end());
  expectCudaOrEmulatedMatchesReference(kernels, relative(1e-4, 1e-5),
                                       /*dynamicSize=*/0);
  // Samples spread over each convolution's whole space, on both targets
  // (C++: the register block of the GEMM per image).
  expectCudaOrEmulatedMatchesReference(sampleOfSpaces(opaque, kCudaTarget, 6),
                                       relative(1e-4, 1e-5),
                                       /*dynamicSize=*/0);
  expectCppMatchesReference(sampleOfSpaces(opaque, kCpuTarget, 6),
                            relative(1e-4, 1e-5));
}

// The C++ convolutions at edge sizes: one image and channel, 1 x 1 and
// 5 x 3 kernels, strides 2 and 3 (input positions no window reads),
// padding wider than the kernel's reach, outputs of one column, f64; each
// under a tile of 1 x 16 and of 7 x 48.
TEST(CpuConvEdges, EdgeSizesMatchTheReference) {
  mlir::MLIRContext context;
  loadDialects(context);
  struct Case {
    int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw;
    const char *type;
  };
  const Case cases[] = {{1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, "f32"},
                        {2, 3, 7, 5, 4, 3, 3, 2, 2, 1, 1, "f32"},
                        {1, 2, 9, 8, 5, 5, 3, 3, 1, 2, 1, "f32"},
                        {3, 4, 6, 6, 17, 1, 1, 1, 1, 0, 0, "f32"},
                        {2, 1, 4, 1, 3, 3, 1, 1, 1, 2, 0, "f64"},
                        // Stride 1 (windows read in place from padded
                        // planes): positions not a multiple of the
                        // register block, padding wider than the kernel,
                        // channels past one panel (forward: 70 outputs;
                        // input gradient: 67 inputs).
                        {2, 3, 11, 13, 5, 3, 5, 1, 1, 1, 2, "f32"},
                        {1, 2, 5, 3, 2, 2, 2, 1, 1, 3, 3, "f64"},
                        {2, 3, 6, 7, 70, 3, 3, 1, 1, 1, 1, "f32"},
                        {1, 67, 4, 5, 2, 3, 3, 1, 1, 1, 1, "f32"}};
  std::string params, body;
  int id = 0;
  for (const Case &k : cases) {
    int64_t oh = (k.h + 2 * k.ph - k.kh) / k.sh + 1;
    int64_t ow = (k.w + 2 * k.pw - k.kw) / k.sw + 1;
    auto tensor = [&](int64_t a, int64_t b, int64_t c, int64_t d) {
      return "tensor<" + std::to_string(a) + "x" + std::to_string(b) + "x" +
             std::to_string(c) + "x" + std::to_string(d) + "x" + k.type + ">";
    };
    std::string tx = tensor(k.n, k.c, k.h, k.w),
                tw = tensor(k.o, k.c, k.kh, k.kw),
                ty = tensor(k.n, k.o, oh, ow);
    std::string attrs = "stride [" + std::to_string(k.sh) + ", " +
                        std::to_string(k.sw) + "] padding [" +
                        std::to_string(k.ph) + ", " + std::to_string(k.pw) +
                        "]";
    std::string i = std::to_string(id++);
    params += std::string(params.empty() ? "" : ", ") + "%x" + i + ": " + tx +
              ", %w" + i + ": " + tw + ", %y" + i + ": " + ty;
    body += "  %f" + i + " = kiln.kernel \"conv2d\" opaque (%x" + i + ", %w" +
            i + ") : (" + tx + ", " + tw + ") -> " + ty +
            " {\n  ^bb0(%a0: " + tx + ", %a1: " + tw +
            "):\n    %r = kiln.conv2d %a0, %a1 " + attrs + " : (" + tx + ", " +
            tw + ") -> " + ty + "\n    kiln.yield %r : " + ty + "\n  }\n" +
            "  %gi" + i + " = kiln.kernel \"conv2d_grad_input\" opaque (%y" +
            i + ", %w" + i + ", %x" + i + ") : (" + ty + ", " + tw + ", " + tx +
            ") -> " + tx + " {\n  ^bb0(%a0: " + ty + ", %a1: " + tw +
            ", %a2: " + tx +
            "):\n    %r = kiln.conv2d_grad_input %a0, %a1, %a2 " + attrs +
            " : (" + ty + ", " + tw + ", " + tx + ") -> " + tx +
            "\n    kiln.yield %r : " + tx + "\n  }\n" + "  %gw" + i +
            " = kiln.kernel \"conv2d_grad_weight\" opaque (%x" + i + ", %y" +
            i + ", %w" + i + ") : (" + tx + ", " + ty + ", " + tw + ") -> " +
            tw + " {\n  ^bb0(%a0: " + tx + ", %a1: " + ty + ", %a2: " + tw +
            "):\n    %r = kiln.conv2d_grad_weight %a0, %a1, %a2 " + attrs +
            " : (" + tx + ", " + ty + ", " + tw + ") -> " + tw +
            "\n    kiln.yield %r : " + tw + "\n  }\n";
  }
  std::string text =
      "func.func @f(" + params + ") {\n" + body + "  return\n}\n";
  auto module = parseScheduled(text, context);
  ASSERT_TRUE(module) << text;
  Kernels convs = kernelsOfKind(*module, KernelKind::opaque);
  ASSERT_EQ(convs.size(), 3 * std::size(cases));
  expectCppMatchesReference(
      withSchedules(convs, {kCpuTarget},
                    {CpuGemmScheduleAttr::get(&context, 1, 16),
                     CpuGemmScheduleAttr::get(&context, 7, 48)}),
      relative(1e-4, 1e-5));
}

// Attention under each tile (16, 32, 64 rows; both targets step over the
// other side a tile at a time), with sequences that fill no tile exactly.
TEST(AttentionScheduleSpace, EveryTileMatchesTheReference) {
  mlir::MLIRContext context;
  loadDialects(context);
  std::string t = "tensor<2x40x16xf32>", l = "tensor<2x40xf32>";
  std::string grads = t + ", " + t + ", " + t + ", " + t + ", " + l + ", " + l;
  std::string attrs = "causal scale 2.500000e-01";
  std::string text =
      "func.func @f(%q: " + t + ", %k: " + t + ", %v: " + t + ", %g: " + t +
      ", %s: " + l + ", %d: " + l + ") {\n" +
      "  %0:2 = kiln.kernel \"attention\" opaque (%q, %k, %v) : (" + t + ", " +
      t + ", " + t + ") -> (" + t + ", " + l + ") {\n  ^bb0(%a0: " + t +
      ", %a1: " + t + ", %a2: " + t +
      "):\n    %r:2 = kiln.attention %a0, %a1, %a2 " + attrs + " : (" + t +
      ", " + t + ", " + t + ") -> (" + t + ", " + l +
      ")\n    kiln.yield %r#0, %r#1 : " + t + ", " + l + "\n  }\n" +
      "  %1 = kiln.kernel \"attention_grad_q\" opaque (%q, %k, %v, %g, %s, %d) "
      ": (" +
      grads + ") -> " + t + " {\n  ^bb0(%a0: " + t + ", %a1: " + t +
      ", %a2: " + t + ", %a3: " + t + ", %a4: " + l + ", %a5: " + l +
      "):\n    %r = kiln.attention_grad_q %a0, %a1, %a2, %a3, %a4, %a5 " +
      attrs + " : (" + grads + ") -> " + t + "\n    kiln.yield %r : " + t +
      "\n  }\n" +
      "  %2:2 = kiln.kernel \"attention_grad_kv\" opaque (%q, %k, %v, %g, %s, "
      "%d) : (" +
      grads + ") -> (" + t + ", " + t + ") {\n  ^bb0(%a0: " + t +
      ", %a1: " + t + ", %a2: " + t + ", %a3: " + t + ", %a4: " + l +
      ", %a5: " + l +
      "):\n    %r:2 = kiln.attention_grad_kv %a0, %a1, %a2, %a3, %a4, %a5 " +
      attrs + " : (" + grads + ") -> (" + t + ", " + t +
      ")\n    kiln.yield %r#0, %r#1 : " + t + ", " + t + "\n  }\n  return\n}\n";
  auto module = parseScheduled(text, context);
  ASSERT_TRUE(module) << text;
  Kernels attention = kernelsOfKind(*module, KernelKind::opaque);
  ASSERT_EQ(attention.size(), 3u);
  for (auto &[kernel, symbol] : attention)
    EXPECT_EQ(scheduleSpace(kernel, kCudaTarget).size(), 3u) << symbol;
  Kernels kernels = withSchedules(attention, {kCudaTarget, kCpuTarget},
                                  {AttentionScheduleAttr::get(&context, 16),
                                   AttentionScheduleAttr::get(&context, 32),
                                   AttentionScheduleAttr::get(&context, 64)});
  expectCudaOrEmulatedMatchesReference(kernels, relative(1e-3, 5e-4),
                                       /*dynamicSize=*/0);
  expectCppMatchesReference(kernels, relative(1e-3, 5e-4));
}

// Layout, pooling and embedding kernels under the smallest and largest
// blocks of their element loops (the embedding gradient's spans a row).
TEST(OpaqueElementScheduleSpace, BlocksMatchTheReference) {
  mlir::MLIRContext context;
  loadDialects(context);
  auto module = parseScheduled(R"mlir(
    func.func @f(%x: tensor<3x5x13x11xf32>, %i: tensor<4x7xi32>, %g: tensor<4x7x40xf32>, %t: tensor<9x40xf32>) {
      %0 = kiln.kernel "max_pool2d" opaque (%x) : (tensor<3x5x13x11xf32>) -> tensor<3x5x6x5xf32> {
      ^bb0(%a: tensor<3x5x13x11xf32>):
        %r = kiln.max_pool2d %a kernel [3, 3] stride [2, 2] padding [0, 0] : (tensor<3x5x13x11xf32>) -> tensor<3x5x6x5xf32>
        kiln.yield %r : tensor<3x5x6x5xf32>
      }
      %1 = kiln.kernel "transpose" opaque (%x) : (tensor<3x5x13x11xf32>) -> tensor<11x5x3x13xf32> {
      ^bb0(%a: tensor<3x5x13x11xf32>):
        %r = kiln.transpose %a [3, 1, 0, 2] : (tensor<3x5x13x11xf32>) -> tensor<11x5x3x13xf32>
        kiln.yield %r : tensor<11x5x3x13xf32>
      }
      %2 = kiln.kernel "embedding_grad" opaque (%i, %g, %t) : (tensor<4x7xi32>, tensor<4x7x40xf32>, tensor<9x40xf32>) -> tensor<9x40xf32> {
      ^bb0(%a: tensor<4x7xi32>, %b: tensor<4x7x40xf32>, %c: tensor<9x40xf32>):
        %r = kiln.embedding_grad %a, %b, %c : (tensor<4x7xi32>, tensor<4x7x40xf32>, tensor<9x40xf32>) -> tensor<9x40xf32>
        kiln.yield %r : tensor<9x40xf32>
      }
      return
    })mlir",
                               context);
  ASSERT_TRUE(module);
  Kernels opaque = kernelsOfKind(*module, KernelKind::opaque);
  ASSERT_EQ(opaque.size(), 3u);
  for (auto &[kernel, symbol] : opaque) {
    EXPECT_EQ(scheduleSpace(kernel, kCudaTarget).size(), 6u) << symbol;
    EXPECT_TRUE(scheduleSpace(kernel, kCpuTarget).empty()) << symbol;
  }
  expectCudaOrEmulatedMatchesReference(
      withSchedules(opaque, {kCudaTarget},
                    {ElementwiseScheduleAttr::get(&context, 32),
                     ElementwiseScheduleAttr::get(&context, 1024)}),
      relative(1e-6, 1e-6), /*dynamicSize=*/0);
}

// Samples spread over each kind's whole space (scheduleSpace), rendered and
// checked against the reference: every schedule of a space is meant to be
// correct, whichever a tuner picks.
TEST(ScheduleSpaces, SamplesMatchTheReference) {
  mlir::MLIRContext context;
  loadDialects(context);
  auto matmuls = parseScheduled(kMatmuls, context);
  auto reductions = parseScheduled(kReductions, context);
  ASSERT_TRUE(matmuls && reductions);
  Kernels gemms = kernelsOfKind(*matmuls, KernelKind::matmul);
  // The cost model's choice is in the space.
  for (auto &[kernel, symbol] : gemms)
    EXPECT_TRUE(llvm::is_contained(scheduleSpace(kernel, kCudaTarget),
                                   getSchedule(kernel, kCudaTarget)))
        << symbol;
  Kernels kernels = sampleOfSpaces(gemms, kCudaTarget, 8);
  Kernels rows = sampleOfSpaces(
      kernelsOfKind(*reductions, KernelKind::reduction), kCudaTarget, 6);
  kernels.insert(kernels.end(), rows.begin(), rows.end());
  expectCudaOrEmulatedMatchesReference(kernels, relative(1e-4, 1e-5),
                                       /*dynamicSize=*/0);
  expectCppMatchesReference(sampleOfSpaces(gemms, kCpuTarget, 5),
                            relative(1e-4, 1e-5));
  // An elementwise kernel takes no C++ schedule: an empty space.
  auto elementwise = parseScheduled(R"mlir(
    func.func @f(%x: tensor<4xf32>) {
      %0 = kiln.kernel "neg" elementwise (%x) : (tensor<4xf32>) -> tensor<4xf32> {
      ^bb0(%a: tensor<4xf32>):
        %r = kiln.neg %a : tensor<4xf32>
        kiln.yield %r : tensor<4xf32>
      }
      return
    })mlir",
                                    context);
  ASSERT_TRUE(elementwise);
  KernelOp neg = kernelsOfKind(*elementwise, KernelKind::elementwise)[0].first;
  EXPECT_TRUE(scheduleSpace(neg, kCpuTarget).empty());
  EXPECT_EQ(scheduleSpace(neg, kCudaTarget).size(), 6u);
}

/// The message of the error that generating `kernel` for `target` reports.
std::string generationError(KernelOp kernel, codegen::Target target) {
  std::string message;
  mlir::ScopedDiagnosticHandler handler(kernel.getContext(),
                                        [&](mlir::Diagnostic &d) {
                                          message = d.str();
                                          return mlir::success();
                                        });
  EXPECT_TRUE(mlir::failed(codegen::generateKernel(kernel, "k", target)));
  return message;
}

// A schedule that does not fit its kernel, or of another kind, or none:
// an error at the kernel, never a wrong kernel.
TEST(Schedules, InvalidForTheKernelIsAnError) {
  mlir::MLIRContext context;
  loadDialects(context);
  auto module = parseScheduled(kReductions, context);
  ASSERT_TRUE(module);
  auto reductions = kernelsOfKind(*module, KernelKind::reduction);
  KernelOp rows = reductions[0].first, columns = reductions[2].first;
  setSchedule(
      rows, kCudaTarget,
      ReduceScheduleAttr::get(&context, ReductionScheme::columns, 32, 16));
  EXPECT_EQ(generationError(rows, codegen::Target::cuda),
            "the schedule #kiln.reduce<scheme = columns, block_x = 32, "
            "block_y = 16> does not fit this reduction: columns need the kept "
            "dimensions innermost");
  setSchedule(columns, kCudaTarget,
              ReduceScheduleAttr::get(&context, ReductionScheme::single, 1, 1));
  EXPECT_EQ(generationError(columns, codegen::Target::cuda),
            "the schedule #kiln.reduce<scheme = single, block_x = 1, block_y "
            "= 1> does not fit this reduction: count, and only count, is "
            "computed by a single thread");
  setSchedule(columns, kCudaTarget, ElementwiseScheduleAttr::get(&context, 64));
  EXPECT_EQ(generationError(columns, codegen::Target::cuda),
            "kernel 'reduce_sum' has the cuda schedule "
            "#kiln.elementwise<block = 64>, not a #kiln.reduce schedule");
  setSchedule(columns, kCudaTarget, nullptr);
  EXPECT_EQ(generationError(columns, codegen::Target::cuda),
            "kernel 'reduce_sum' has no cuda schedule (run kiln-schedule)");

  // f64 tiles whose shared memory exceeds 48 KiB.
  auto f64 = parseScheduled(R"mlir(
    func.func @f(%a: tensor<37x300xf64>, %b: tensor<300x29xf64>) {
      %0 = kiln.kernel "matmul" matmul (%a, %b) : (tensor<37x300xf64>, tensor<300x29xf64>) -> tensor<37x29xf64> {
      ^bb0(%a0: tensor<37x300xf64>, %a1: tensor<300x29xf64>):
        %1 = kiln.matmul %a0, %a1 : (tensor<37x300xf64>, tensor<300x29xf64>) -> tensor<37x29xf64>
        kiln.yield %1 : tensor<37x29xf64>
      }
      return
    })mlir",
                            context);
  ASSERT_TRUE(f64);
  KernelOp matmul = kernelsOfKind(*f64, KernelKind::matmul)[0].first;
  setSchedule(matmul, kCudaTarget,
              GemmScheduleAttr::get(&context, 64, 64, 16, 4, 4, 2));
  EXPECT_EQ(generationError(matmul, codegen::Target::cuda),
            "#kiln.gemm<bm = 64, bn = 64, bk = 16, tm = 4, tn = 4, split_k "
            "= 2>: 67584 bytes of shared memory, more than 48 KiB");
}

} // namespace
