//===- MatmulTest.cpp - matmul kernels compile and compute right ----------===//
//
// Hand-written matmul kernels cover what the examples do not: sizes that
// are not multiples of the tiles, both transpose flags, f64, dropout and
// several results in the epilogue, batch dimensions. Their CUDA C compiles
// with NVRTC for sm_80 and sm_90, their C++ computes what the reference
// executor computes (each kernel within matmulTolerance, Harness.h), and
// their CUDA C, run on the host (emulated), computes what their C++ does.
// The mlp's kernels: the launch follows the tiles of their schedules, the
// emulated CUDA matches the C++, and ptxas reports no spills; on a GPU,
// the mlp_dropout's kernels and the hand-written ones against the
// reference. (Every example's matmul kernels: ExampleKernelsTest.cpp.)
//
//===----------------------------------------------------------------------===//

#include "Harness.h"
#include "test/gpu/CudaEmulation.h"

#include "codegen/KernelCodegen.h"
#include "runtime/Nvrtc.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Parser/Parser.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <cstdlib>

using namespace kiln;
using namespace kiln::test;

namespace {

/// Checks each kernel's C++ against the reference with its own tolerance.
void expectMatmulsMatchReference(
    const std::vector<std::pair<KernelOp, std::string>> &kernels) {
  expectCppMatchesReference(
      kernels, [](KernelOp kernel) { return matmulTolerance(kernel, 0); },
      CheckOptions());
}

// Hand-written kernels, one per feature; sizes are not multiples of any
// tile (64, 32, 16), and each takes a different tile configuration.
constexpr const char *kHandWritten = R"mlir(
  func.func @f(%x: tensor<67x45xf32>, %w: tensor<33x45xf32>, %b: tensor<33xf32>,
               %xt: tensor<45x67xf32>, %v: tensor<45x70xf32>, %c: tensor<67x70xf32>,
               %y: tensor<45x19xf32>, %u: tensor<23x45xf32>,
               %d: tensor<37x300xf64>, %e: tensor<300x29xf64>, %db: tensor<37x1xf64>,
               %g: tensor<1000x10xf32>, %h: tensor<1000x70xf32>,
               %p: tensor<70x40xf32>, %q: tensor<40x90xf32>,
               %ba: tensor<2x3x9x20xf32>, %bb: tensor<3x20x11xf32>, %bc: tensor<11xf32>) {
    // Several results: the pre-activation and the activation.
    %0:2 = kiln.kernel "matmul_add_relu" matmul (%x, %w, %b) : (tensor<67x45xf32>, tensor<33x45xf32>, tensor<33xf32>) -> (tensor<67x33xf32>, tensor<67x33xf32>) {
    ^bb0(%a0: tensor<67x45xf32>, %a1: tensor<33x45xf32>, %a2: tensor<33xf32>):
      %1 = kiln.matmul %a0, %a1 transpose_rhs : (tensor<67x45xf32>, tensor<33x45xf32>) -> tensor<67x33xf32>
      %2 = kiln.add %1, %a2 : (tensor<67x33xf32>, tensor<33xf32>) -> tensor<67x33xf32>
      %3 = kiln.relu %2 : tensor<67x33xf32>
      kiln.yield %2, %3 : tensor<67x33xf32>, tensor<67x33xf32>
    }
    // transpose_lhs; a scalar constant and a second input of the output's
    // shape in the epilogue.
    %4 = kiln.kernel "matmul_mul_sub" matmul (%xt, %v, %c) : (tensor<45x67xf32>, tensor<45x70xf32>, tensor<67x70xf32>) -> tensor<67x70xf32> {
    ^bb0(%a0: tensor<45x67xf32>, %a1: tensor<45x70xf32>, %a2: tensor<67x70xf32>):
      %5 = kiln.matmul %a0, %a1 transpose_lhs : (tensor<45x67xf32>, tensor<45x70xf32>) -> tensor<67x70xf32>
      %6 = kiln.constant dense<5.000000e-01> : tensor<f32>
      %7 = kiln.mul %5, %6 : (tensor<67x70xf32>, tensor<f32>) -> tensor<67x70xf32>
      %8 = kiln.sub %7, %a2 : (tensor<67x70xf32>, tensor<67x70xf32>) -> tensor<67x70xf32>
      kiln.yield %8 : tensor<67x70xf32>
    }
    // Both transpose flags, a narrow output.
    %9 = kiln.kernel "matmul" matmul (%y, %u) : (tensor<45x19xf32>, tensor<23x45xf32>) -> tensor<19x23xf32> {
    ^bb0(%a0: tensor<45x19xf32>, %a1: tensor<23x45xf32>):
      %10 = kiln.matmul %a0, %a1 transpose_lhs transpose_rhs : (tensor<45x19xf32>, tensor<23x45xf32>) -> tensor<19x23xf32>
      kiln.yield %10 : tensor<19x23xf32>
    }
    // f64, a long K (split-K on the GPU), a bias broadcast over columns.
    %11 = kiln.kernel "matmul_add" matmul (%d, %e, %db) : (tensor<37x300xf64>, tensor<300x29xf64>, tensor<37x1xf64>) -> tensor<37x29xf64> {
    ^bb0(%a0: tensor<37x300xf64>, %a1: tensor<300x29xf64>, %a2: tensor<37x1xf64>):
      %12 = kiln.matmul %a0, %a1 : (tensor<37x300xf64>, tensor<300x29xf64>) -> tensor<37x29xf64>
      %13 = kiln.add %12, %a2 : (tensor<37x29xf64>, tensor<37x1xf64>) -> tensor<37x29xf64>
      kiln.yield %13 : tensor<37x29xf64>
    }
    // A weight gradient: a small output, K = 1000 (split-K on the GPU).
    %14 = kiln.kernel "matmul" matmul (%g, %h) : (tensor<1000x10xf32>, tensor<1000x70xf32>) -> tensor<10x70xf32> {
    ^bb0(%a0: tensor<1000x10xf32>, %a1: tensor<1000x70xf32>):
      %15 = kiln.matmul %a0, %a1 transpose_lhs : (tensor<1000x10xf32>, tensor<1000x70xf32>) -> tensor<10x70xf32>
      kiln.yield %15 : tensor<10x70xf32>
    }
    // Dropout: its mask is drawn at the flat index row * N + col.
    %16:2 = kiln.kernel "matmul_relu_dropout" matmul (%p, %q) : (tensor<70x40xf32>, tensor<40x90xf32>) -> (tensor<70x90xf32>, tensor<70x90xf32>) {
    ^bb0(%a0: tensor<70x40xf32>, %a1: tensor<40x90xf32>):
      %17 = kiln.matmul %a0, %a1 : (tensor<70x40xf32>, tensor<40x90xf32>) -> tensor<70x90xf32>
      %18 = kiln.relu %17 : tensor<70x90xf32>
      %19 = kiln.dropout %18 rate 3.000000e-01 stream 3 : tensor<70x90xf32>
      kiln.yield %17, %19 : tensor<70x90xf32>, tensor<70x90xf32>
    }
    // Batch dimensions, the rhs's broadcast over the first.
    %20 = kiln.kernel "matmul_add" matmul (%ba, %bb, %bc) : (tensor<2x3x9x20xf32>, tensor<3x20x11xf32>, tensor<11xf32>) -> tensor<2x3x9x11xf32> {
    ^bb0(%a0: tensor<2x3x9x20xf32>, %a1: tensor<3x20x11xf32>, %a2: tensor<11xf32>):
      %21 = kiln.matmul %a0, %a1 : (tensor<2x3x9x20xf32>, tensor<3x20x11xf32>) -> tensor<2x3x9x11xf32>
      %22 = kiln.add %21, %a2 : (tensor<2x3x9x11xf32>, tensor<11xf32>) -> tensor<2x3x9x11xf32>
      kiln.yield %22 : tensor<2x3x9x11xf32>
    }
    return
  })mlir";

class MatmulHandWritten : public ::testing::Test {
protected:
  MatmulHandWritten() {
    loadDialects(context);
    module = parseScheduled(kHandWritten, context);
  }
  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
};

TEST_F(MatmulHandWritten, CppMatchesTheReferenceExecutor) {
  ASSERT_TRUE(module);
  auto kernels = kernelsOfKind(*module, KernelKind::matmul);
  ASSERT_EQ(kernels.size(), 7u);
  expectMatmulsMatchReference(kernels);
}

TEST_F(MatmulHandWritten, CudaCompilesWithNvrtc) {
  if (!runtime::nvrtcAvailable())
    GTEST_SKIP() << "NVRTC is not available (the CUDA toolkit is not "
                    "installed)";
  ASSERT_TRUE(module);
  expectCudaCompiles(kernelsOfKind(*module, KernelKind::matmul),
                     "matmul_hand_written");
}

// The launch configuration follows the kernel's schedule (kiln-schedule's
// GEMM cost model, passes/CostModel.cpp), here for a dynamic batch: the mlp's
// first layer ([?, 784] x [512, 784]^T) takes 64 x 64 tiles in two k groups of
// 128 threads, its logits (N = 10) 16 x 16 tiles in eight k groups of 32, its
// smallest weight gradient ([10, 512], K = batch) 16 x 16 tiles with eight k
// groups.
TEST(MatmulLaunch, FollowsTheTiles) {
  mlir::MLIRContext context;
  loadDialects(context);
  auto module = compileFused(context, examplePath("mlp.kiln"), "");
  ASSERT_TRUE(module);
  int checked = 0;
  for (auto &[kernel, symbol] : kernelsOfKind(*module, KernelKind::matmul)) {
    auto generated =
        codegen::generateKernel(kernel, symbol, codegen::Target::cuda);
    ASSERT_TRUE(succeeded(generated)) << symbol;
    auto type =
        llvm::cast<mlir::RankedTensorType>(kernel.getResult(0).getType());
    const codegen::LaunchConfig &launch = generated->launch;
    std::vector<int64_t> dims(generated->dynamicDims.size(), 4096);
    bool forward =
        (*kernel.getBlock().getOps<MatmulOp>().begin()).getTransposeRhs();
    if (forward && type.getShape() == llvm::ArrayRef<int64_t>{
                                          mlir::ShapedType::kDynamic, 512}) {
      EXPECT_EQ(launch.block[0], 256u) << symbol;
      EXPECT_EQ(launch.grid[0].evaluate(dims), 64) << symbol;
      EXPECT_EQ(launch.grid[1].evaluate(dims), 8) << symbol;
      ++checked;
    } else if (type.getShape() ==
               llvm::ArrayRef<int64_t>{mlir::ShapedType::kDynamic, 10}) {
      EXPECT_EQ(launch.block[0], 256u) << symbol;
      EXPECT_EQ(launch.grid[0].evaluate(dims), 256) << symbol;
      EXPECT_EQ(launch.grid[1].evaluate(dims), 1) << symbol;
      ++checked;
    } else if (type.getShape() == llvm::ArrayRef<int64_t>{10, 512}) {
      EXPECT_EQ(launch.block[0], 256u) << symbol;
      EXPECT_EQ(launch.grid[0].evaluate(dims), 1) << symbol;
      EXPECT_EQ(launch.grid[1].evaluate(dims), 32) << symbol;
      EXPECT_NE(generated->source.find("SPLIT = 8"), std::string::npos);
      ++checked;
    }
    EXPECT_EQ(launch.grid[2].evaluate(dims), 1) << symbol;
    EXPECT_EQ(launch.sharedBytes, 0u) << symbol; // static shared memory
  }
  EXPECT_GT(checked, 3);
}

/// What the emulated programs add to test/gpu/CudaEmulation.h's CUDA
/// built-ins: inputs and a comparison.
constexpr const char *kEmulationChecks = R"cpp(
#include <cstdio>
#include <random>
static int failures = 0;
// Compares the emulated CUDA results with the C++ target's; both round, so
// twice the tolerance against the exact value.
template <class T>
static void emuCompare(const char *name, const std::vector<T> &cpu,
                       const std::vector<T> &gpu, double atol, double rtol) {
  size_t bad = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    double want = cpu[i], got = gpu[i];
    if (std::isnan(want) && std::isnan(got))
      continue;
    if (!(std::fabs(want - got) <= 2 * (atol + rtol * std::fabs(want)))) {
      if (bad++ < 3)
        printf("FAIL %s element %zu: emulated %.9g cpu %.9g\n", name, i, got,
               want);
    }
  }
  failures += bad != 0;
}
template <class T> static std::vector<T> emuRandom(size_t count, int seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-2, 2);
  std::vector<T> v(count);
  for (T &x : v)
    x = (T)u(rng);
  return v;
}
)cpp";

/// Writes a program that runs each kernel's CUDA C on the host (as
/// test/gpu/CudaEmulation.h says) and its C++, and compares them; compiles
/// and runs it; expects no failure. Checks the CUDA kernels' indexing,
/// tiling, vector loads, double buffering and split-K at the sizes given,
/// without a GPU (not the GPU's memory model or timing).
void expectEmulatedCudaMatchesCpp(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    int64_t dynamicSize) {
  std::string source = codegen::preamble(codegen::Target::cpp);
  source += gpucheck::kCudaEmulation;
  source += kEmulationChecks;
  std::string main = "int main() {\n  const unsigned long long seed = 1234;\n";
  for (auto [kernel, symbol] : kernels) {
    auto cuda = codegen::generateKernel(kernel, symbol, codegen::Target::cuda);
    auto cpp =
        codegen::generateKernel(kernel, symbol + "_cpu", codegen::Target::cpp);
    ASSERT_TRUE(succeeded(cuda) && succeeded(cpp)) << symbol;
    ASSERT_FALSE(cuda->takesSeed && !cpp->takesSeed);
    source += cuda->source;
    source += cpp->source;
    std::vector<std::pair<std::vector<int64_t>, mlir::Type>> operands;
    std::vector<mlir::Value> values(kernel.getInputs().begin(),
                                    kernel.getInputs().end());
    llvm::append_range(values, kernel.getResults());
    for (mlir::Value v : values) {
      auto type = llvm::cast<mlir::RankedTensorType>(v.getType());
      std::vector<int64_t> shape(type.getShape());
      for (int64_t &size : shape)
        if (mlir::ShapedType::isDynamic(size))
          size = dynamicSize;
      operands.emplace_back(shape, type.getElementType());
    }
    std::vector<int64_t> dims;
    for (const codegen::DynamicDim &d : cuda->dynamicDims)
      dims.push_back(operands[d.operand].first[d.dim]);
    Tolerance tolerance = matmulTolerance(kernel, dynamicSize);
    std::string text;
    llvm::raw_string_ostream os(text);
    os << "  {\n";
    size_t numInputs = kernel.getInputs().size();
    for (auto [n, operand] : llvm::enumerate(operands)) {
      int64_t count = 1;
      for (int64_t size : operand.first)
        count *= size;
      std::string t = operand.second.isF64()   ? "double"
                      : operand.second.isF32() ? "float"
                                               : "bool";
      if (n < numInputs)
        os << "    auto b" << n << " = emuRandom<" << t << ">(" << count << ", "
           << n + 1 << ");\n";
      else
        os << "    std::vector<" << t << "> b" << n << "(" << count << "), g"
           << n << "(" << count << ");\n";
    }
    os << "    long long dims[] = {0";
    for (int64_t d : dims)
      os << ", " << d;
    os << "};\n    void *pointers[] = {";
    for (size_t n = 0; n < operands.size(); ++n)
      os << (n ? ", " : "") << "b" << n << ".data()";
    os << "};\n    " << symbol << "_cpu_entry(pointers, dims + 1, seed);\n";
    const codegen::LaunchConfig &launch = cuda->launch;
    os << "    kiln_emu::launch(EmuDim{" << launch.grid[0].evaluate(dims)
       << ", " << launch.grid[1].evaluate(dims) << ", "
       << launch.grid[2].evaluate(dims) << "}, EmuDim{" << launch.block[0]
       << ", " << launch.block[1] << ", " << launch.block[2] << "}, "
       << launch.sharedBytes << ", [&] {\n      " << symbol << "(";
    for (size_t n = 0; n < operands.size(); ++n)
      os << (n ? ", " : "") << (n < numInputs ? "b" : "g") << n << ".data()";
    for (int64_t d : dims)
      os << ", " << d << "LL";
    if (cuda->takesSeed)
      os << ", &seed";
    os << ");\n    });\n";
    for (size_t n = numInputs; n < operands.size(); ++n)
      os << "    emuCompare(\"" << symbol << " result " << n - numInputs
         << "\", b" << n << ", g" << n << ", " << tolerance(0) << ", "
         << tolerance(1) - tolerance(0) << ");\n";
    os << "  }\n";
    main += text;
  }
  main += "  printf(\"%d failures\\n\", failures);\n"
          "  return failures != 0;\n}\n";
  source += main;

  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("kiln-emulated", dir));
  auto cleanup =
      llvm::make_scope_exit([&] { llvm::sys::fs::remove_directories(dir); });
  std::string cpp = (dir + "/emulated.cpp").str();
  std::string exe = (dir + "/emulated").str();
  std::string log = (dir + "/log.txt").str();
  {
    std::error_code ec;
    llvm::raw_fd_ostream out(cpp, ec);
    ASSERT_FALSE(ec);
    out << source;
  }
  std::string compiler = KILN_HOST_CXX;
  std::string error;
  int rc = llvm::sys::ExecuteAndWait(
      compiler,
      {compiler, "-O1", "-std=c++20", "-pthread", "-w", cpp, "-o", exe},
      std::nullopt, {}, 0, 0, &error);
  ASSERT_EQ(rc, 0) << "host compiler failed: " << error;
  std::optional<llvm::StringRef> redirects[] = {
      std::nullopt, llvm::StringRef(log), llvm::StringRef(log)};
  rc = llvm::sys::ExecuteAndWait(exe, {exe}, std::nullopt, redirects, 0, 0,
                                 &error);
  auto output = llvm::MemoryBuffer::getFile(log);
  EXPECT_EQ(rc, 0) << error << "\n"
                   << (output ? (*output)->getBuffer().str() : "");
}

// The CUDA kernels, run on the host by expectEmulatedCudaMatchesCpp: the
// hand-written ones, and the mlp's at batch 128 (bound: the tiles chosen
// for static shapes) and with a dynamic batch of 70.
TEST_F(MatmulHandWritten, EmulatedCudaMatchesCpp) {
  ASSERT_TRUE(module);
  expectEmulatedCudaMatchesCpp(kernelsOfKind(*module, KernelKind::matmul),
                               /*dynamicSize=*/0);
}

// On a GPU (skipped without one): the CUDA kernels of the mlp at the
// benchmark's batch sizes and of the hand-written cases against the
// reference executor, and bit for bit between two runs.
TEST(MatmulGpu, CudaMatchesTheReferenceExecutor) {
  if (!cudaDeviceAvailable())
    GTEST_SKIP() << "no CUDA driver or device";
  mlir::MLIRContext context;
  loadDialects(context);
  for (const char *bind : {"batch=128", "batch=4096"}) {
    SCOPED_TRACE(bind);
    auto module = compileFused(context, examplePath("mlp_dropout.kiln"), bind);
    ASSERT_TRUE(module);
    for (auto &kernel : kernelsOfKind(*module, KernelKind::matmul))
      expectCudaMatchesReference({kernel}, matmulTolerance(kernel.first, 0),
                                 /*dynamicSize=*/0);
  }
  auto handWritten = parseScheduled(kHandWritten, context);
  ASSERT_TRUE(handWritten);
  for (auto &kernel : kernelsOfKind(*handWritten, KernelKind::matmul))
    expectCudaMatchesReference({kernel}, matmulTolerance(kernel.first, 0),
                               /*dynamicSize=*/0);
}

TEST(MatmulEmulated, MlpCudaMatchesCpp) {
  mlir::MLIRContext context;
  loadDialects(context);
  auto module = compileFused(context, examplePath("mlp.kiln"), "batch=128");
  ASSERT_TRUE(module);
  expectEmulatedCudaMatchesCpp(kernelsOfKind(*module, KernelKind::matmul),
                               /*dynamicSize=*/0);
}

// ptxas's resource report for the mlp's kernels at the benchmark's batch
// sizes and with a dynamic batch: no register spills (local memory) for
// the chosen tiles, on sm_80 and sm_90. The report is printed.
TEST(MatmulPtxas, NoSpills) {
  if (!runtime::nvrtcAvailable())
    GTEST_SKIP() << "NVRTC is not available (the CUDA toolkit is not "
                    "installed)";
  mlir::MLIRContext context;
  loadDialects(context);
  for (const char *bind : {"batch=128", "batch=4096", ""}) {
    auto module = compileFused(context, examplePath("mlp.kiln"), bind);
    ASSERT_TRUE(module) << bind;
    expectNoSpills(kernelsOfKind(*module, KernelKind::matmul),
                   std::string("mlp ") + (*bind ? bind : "batch=?"));
  }
}

/// The C type of a tensor's elements.
std::string cTypeOf(mlir::Value v) {
  mlir::Type t =
      llvm::cast<mlir::RankedTensorType>(v.getType()).getElementType();
  return t.isF64() ? "double" : t.isF32() ? "float" : "bool";
}

/// Appends to `main` a block that runs `kernel` on the GPU twice (the
/// results must agree bit for bit) and as C++ (symbol + "_cpu"), and
/// compares the two within `tolerance` for `dynamicSize`; with `timed`, it
/// reports the GPU's microseconds per launch.
void appendGpuCheck(std::string &main, KernelOp kernel,
                    const std::string &symbol, int64_t dynamicSize,
                    bool timed) {
  auto cuda = codegen::generateKernel(kernel, symbol, codegen::Target::cuda);
  ASSERT_TRUE(succeeded(cuda)) << symbol;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<std::string> types;
  for (mlir::Value v : kernel.getInputs()) {
    shapes.emplace_back(
        llvm::cast<mlir::RankedTensorType>(v.getType()).getShape());
    types.push_back(cTypeOf(v));
  }
  for (mlir::Value v : kernel.getResults()) {
    shapes.emplace_back(
        llvm::cast<mlir::RankedTensorType>(v.getType()).getShape());
    types.push_back(cTypeOf(v));
  }
  for (auto &shape : shapes)
    for (int64_t &size : shape)
      if (mlir::ShapedType::isDynamic(size))
        size = dynamicSize;
  std::vector<int64_t> dims;
  for (const codegen::DynamicDim &d : cuda->dynamicDims)
    dims.push_back(shapes[d.operand][d.dim]);
  const codegen::LaunchConfig &launch = cuda->launch;
  Tolerance tolerance = matmulTolerance(kernel, dynamicSize);
  std::string out;
  llvm::raw_string_ostream os(out);
  os << "  {\n    Check c(\"" << symbol << " (size " << dynamicSize
     << ")\");\n";
  for (size_t n = 0; n < shapes.size(); ++n) {
    int64_t count = 1;
    for (int64_t size : shapes[n])
      count *= size;
    os << "    auto *b" << n << " = c.buffer<" << types[n] << ">(" << count
       << ", " << (n < kernel.getInputs().size() ? "true" : "false") << ");\n";
  }
  os << "    long long dims[] = {0";
  for (int64_t d : dims)
    os << ", " << d;
  os << "};\n    auto launch = [&] {\n      " << symbol << "<<<dim3("
     << launch.grid[0].evaluate(dims) << ", " << launch.grid[1].evaluate(dims)
     << ", " << launch.grid[2].evaluate(dims) << "), dim3(" << launch.block[0]
     << ", " << launch.block[1] << ", " << launch.block[2] << "), "
     << launch.sharedBytes << ">>>(";
  for (size_t n = 0; n < shapes.size(); ++n)
    os << (n ? ", " : "") << "b" << n << "->device";
  for (int64_t d : dims)
    os << ", " << d << "LL";
  if (cuda->takesSeed)
    os << ", seedPtr()";
  os << ");\n    };\n    c.run(launch, " << (timed ? "true" : "false")
     << ");\n";
  // Timed runs are large: the C++ would take long, so only determinism.
  if (!timed)
    os << "    " << symbol << "_cpu_entry(c.hostPointers(), dims + 1, "
       << "1234ULL);\n    c.compare(" << tolerance(0) << ", "
       << tolerance(1) - tolerance(0) << ");\n";
  os << "  }\n";
  main += out;
}

/// The fixed part of the GPU check program: buffers, two GPU runs compared
/// bit for bit, timing, the comparison with the C++ results.
constexpr const char *kGpuCheckDriver = R"cu(
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <memory>
#include <random>
#include <vector>

#define CUDA_CHECK(x)                                                          \
  do {                                                                         \
    cudaError_t e = (x);                                                       \
    if (e != cudaSuccess) {                                                    \
      printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e), __FILE__,      \
             __LINE__);                                                        \
      exit(2);                                                                 \
    }                                                                          \
  } while (0)

static int failures = 0;

// The step's seed, 1234, where the kernels read it: in device memory.
static const unsigned long long *seedPtr() {
  static unsigned long long *d = nullptr;
  if (!d) {
    unsigned long long s = 1234;
    CUDA_CHECK(cudaMalloc(&d, 8));
    CUDA_CHECK(cudaMemcpy(d, &s, 8, cudaMemcpyHostToDevice));
  }
  return d;
}

struct Buffer {
  size_t count = 0, item = 0;
  bool input = false;
  std::vector<char> host, gpu;
  struct AnyPtr {
    void *p = nullptr;
    template <class T> operator T *() const { return (T *)p; }
  } device;
  double get(const std::vector<char> &v, size_t i) const {
    if (item == 8)
      return ((const double *)v.data())[i];
    if (item == 4)
      return ((const float *)v.data())[i];
    return ((const bool *)v.data())[i];
  }
};

struct Check {
  const char *name;
  std::vector<std::unique_ptr<Buffer>> buffers;
  std::vector<void *> pointers;
  explicit Check(const char *name) : name(name) {}
  ~Check() {
    for (auto &b : buffers)
      cudaFree(b->device.p);
  }
  template <class T> Buffer *buffer(size_t count, bool input) {
    auto b = std::make_unique<Buffer>();
    b->count = count;
    b->item = sizeof(T);
    b->input = input;
    b->host.resize(count * sizeof(T) + 8);
    if (input) {
      std::mt19937_64 rng(buffers.size() + 1);
      std::uniform_real_distribution<double> u(-2, 2);
      for (size_t i = 0; i < count; ++i)
        ((T *)b->host.data())[i] = (T)u(rng);
    } else {
      memset(b->host.data(), 0xff, b->host.size());
    }
    CUDA_CHECK(cudaMalloc(&b->device.p, b->host.size()));
    CUDA_CHECK(cudaMemcpy(b->device.p, b->host.data(), b->host.size(),
                          cudaMemcpyHostToDevice));
    buffers.push_back(std::move(b));
    return buffers.back().get();
  }
  template <class F> void run(F launch, bool timed) {
    std::vector<std::vector<char>> first;
    for (int pass = 0; pass < 2; ++pass) {
      for (auto &b : buffers)
        if (!b->input)
          CUDA_CHECK(cudaMemset(b->device.p, 0xff, b->host.size()));
      launch();
      CUDA_CHECK(cudaGetLastError());
      CUDA_CHECK(cudaDeviceSynchronize());
      for (auto &b : buffers) {
        if (b->input)
          continue;
        b->gpu.resize(b->host.size());
        CUDA_CHECK(cudaMemcpy(b->gpu.data(), b->device.p, b->host.size(),
                              cudaMemcpyDeviceToHost));
        if (pass == 0)
          first.push_back(b->gpu);
      }
    }
    size_t k = 0;
    for (auto &b : buffers)
      if (!b->input && memcmp(first[k++].data(), b->gpu.data(),
                              b->count * b->item) != 0) {
        printf("FAIL %s: two runs differ\n", name);
        ++failures;
      }
    if (timed) {
      cudaEvent_t start, stop;
      cudaEventCreate(&start);
      cudaEventCreate(&stop);
      cudaEventRecord(start);
      for (int i = 0; i < 20; ++i)
        launch();
      cudaEventRecord(stop);
      CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      printf("TIME %s: %.1f us\n", name, ms * 1000 / 20);
    }
  }
  void *const *hostPointers() {
    pointers.clear();
    for (auto &b : buffers)
      pointers.push_back(b->host.data());
    return pointers.data();
  }
  void compare(double atol, double rtol) {
    double worst = 0;
    size_t bad = 0;
    for (auto &b : buffers) {
      if (b->input)
        continue;
      for (size_t i = 0; i < b->count; ++i) {
        double want = b->get(b->host, i), got = b->get(b->gpu, i);
        if (std::isnan(want) && std::isnan(got))
          continue;
        // Both sides round: twice the tolerance against the exact value.
        double ratio = std::fabs(want - got) / (2 * (atol + rtol * std::fabs(want)));
        if (!(ratio <= 1)) {
          if (bad < 3)
            printf("  %s element %zu: gpu %.9g cpu %.9g\n", name, i, got, want);
          ++bad;
        }
        if (ratio > worst)
          worst = ratio;
      }
    }
    printf("%s %s: worst error / tolerance %.3g\n", bad ? "FAIL" : "PASS",
           name, worst);
    failures += bad != 0;
  }
};
)cu";

// Not a check here: with KILN_MATMUL_GPU_CHECK_DIR set, writes a program
// (check.cu, kernels.cpp, run.sh) that runs the examples' and the
// hand-written matmul kernels on a GPU against their C++, for a machine
// with nvcc and a GPU: `sh run.sh`.
TEST(MatmulGpu, WriteCheckProgram) {
  const char *dir = std::getenv("KILN_MATMUL_GPU_CHECK_DIR");
  if (!dir)
    GTEST_SKIP() << "KILN_MATMUL_GPU_CHECK_DIR is not set";
  mlir::MLIRContext context;
  loadDialects(context);
  std::string cu = codegen::preamble(codegen::Target::cuda);
  std::string cpp = codegen::preamble(codegen::Target::cpp);
  std::string main, declarations;
  std::vector<mlir::OwningOpRef<mlir::ModuleOp>> modules;
  auto add = [&](mlir::ModuleOp module, int64_t dynamicSize, bool timed,
                 const std::string &prefix) {
    for (auto &[kernel, name] : kernelsOfKind(module, KernelKind::matmul)) {
      std::string symbol = prefix + name;
      auto gpu = codegen::generateKernel(kernel, symbol, codegen::Target::cuda);
      auto host = codegen::generateKernel(kernel, symbol + "_cpu",
                                          codegen::Target::cpp);
      ASSERT_TRUE(succeeded(gpu) && succeeded(host)) << symbol;
      cu += gpu->source;
      cpp += host->source;
      declarations += "extern \"C\" void " + symbol +
                      "_cpu_entry(void *const *, const long long *, "
                      "unsigned long long);\n";
      appendGpuCheck(main, kernel, symbol, dynamicSize, timed);
    }
  };
  modules.push_back(parseScheduled(kHandWritten, context));
  ASSERT_TRUE(modules.back());
  add(*modules.back(), 0, false, "hand_");
  for (const char *model : {"mlp", "mlp_dropout", "cnn", "avgpool"}) {
    modules.push_back(
        compileFused(context, examplePath(std::string(model) + ".kiln"), ""));
    ASSERT_TRUE(modules.back()) << model;
    add(*modules.back(), 300, false, std::string(model) + "_");
  }
  // Timing at the benchmark's batch sizes (the train step's kernels).
  for (int64_t batch : {128, 4096})
    add(*modules[1], batch, true, "mlp" + std::to_string(batch) + "_");
  std::string check = "// Written by MatmulTest (MatmulGpu.WriteCheckProgram)."
                      "\n#include \"kernels.cu\"\n";
  check += kGpuCheckDriver;
  check += declarations;
  check +=
      "\nint main() {\n" + main +
      "  printf(\"%d failures\\n\", failures);\n  return failures != 0;\n}\n";
  std::string run = "set -e\ncd \"$(dirname \"$0\")\"\n"
                    "NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)\n"
                    "g++ -O2 -c kernels.cpp -o kernels.o\n"
                    "$NVCC -O2 -arch=native -w check.cu kernels.o -o check\n"
                    "./check\n";
  for (const auto &[name, text] :
       std::vector<std::pair<std::string, std::string>>{{"kernels.cu", cu},
                                                        {"kernels.cpp", cpp},
                                                        {"check.cu", check},
                                                        {"run.sh", run}}) {
    std::error_code ec;
    llvm::raw_fd_ostream file(std::string(dir) + "/" + name, ec);
    ASSERT_FALSE(ec) << name;
    file << text;
  }
}

} // namespace
