//===- CodegenTest.cpp - generated kernels compile and compute right ------===//
//
// For every elementwise kernel of the example models' fused steps:
//   - the CUDA C compiles with NVRTC for sm_80 and sm_90 (skipped without
//     NVRTC), with the batch dynamic and bound;
//   - the C++ compiles with the host compiler into a shared object, and on
//     random inputs computes what the reference executor computes for the
//     same kernel, within a float tolerance.
//
//===----------------------------------------------------------------------===//

#include "codegen/KernelCodegen.h"
#include "frontend/MLIRGen.h"
#include "frontend/Parser.h"
#include "passes/Pipeline.h"
#include "reference/Executor.h"
#include "runtime/Nvrtc.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

#include <gtest/gtest.h>

#include <dlfcn.h>
#include <random>

using namespace kiln;

namespace {

/// Compiles a model file to its fused stage.
mlir::OwningOpRef<mlir::ModuleOp>
fused(mlir::MLIRContext &context, llvm::StringRef file, llvm::StringRef bind) {
  auto buffer = llvm::MemoryBuffer::getFile(file);
  if (!buffer)
    return nullptr;
  auto ast = frontend::parseModelFile((*buffer)->getBuffer(), file, context);
  if (!ast)
    return nullptr;
  auto module = frontend::mlirGen(context, *ast);
  if (!module)
    return nullptr;
  CompilePipelineOptions options;
  options.stage = Stage::fused;
  std::vector<std::string> bindings;
  if (!bind.empty())
    bindings.push_back(bind.str());
  options.bind = bindings;
  mlir::PassManager pm(&context);
  if (failed(buildCompilePipeline(
          pm, options, [](const llvm::Twine &) { return mlir::failure(); })) ||
      failed(pm.run(*module)))
    return nullptr;
  return module;
}

/// Every elementwise kernel of `module`, with a unique symbol each.
std::vector<std::pair<KernelOp, std::string>>
elementwiseKernels(mlir::ModuleOp module) {
  std::vector<std::pair<KernelOp, std::string>> kernels;
  module.walk([&](KernelOp kernel) {
    if (kernel.getKind() == KernelKind::elementwise)
      kernels.push_back({kernel, kernel.getName().str() + "_" +
                                     std::to_string(kernels.size())});
  });
  return kernels;
}

class Codegen : public ::testing::TestWithParam<const char *> {
protected:
  Codegen() { context.loadDialect<KilnDialect, mlir::func::FuncDialect>(); }
  std::string path() const {
    return std::string(KILN_SOURCE_DIR) + "/examples/" + GetParam();
  }
  mlir::MLIRContext context;
};

TEST_P(Codegen, CudaCompilesWithNvrtc) {
  if (!runtime::nvrtcAvailable())
    GTEST_SKIP() << "NVRTC is not available (the CUDA toolkit is not "
                    "installed)";
  for (llvm::StringRef bind : {"", "batch=64"}) {
    auto module = fused(context, path(), bind);
    ASSERT_TRUE(module) << path();
    auto kernels = elementwiseKernels(*module);
    ASSERT_FALSE(kernels.empty());
    std::string source = codegen::preamble(codegen::Target::cuda);
    for (auto &[kernel, symbol] : kernels) {
      auto generated =
          codegen::generateKernel(kernel, symbol, codegen::Target::cuda);
      ASSERT_TRUE(succeeded(generated)) << symbol;
      source += generated->source;
    }
    for (const char *arch : {"sm_80", "sm_90"}) {
      runtime::CompileOptions options;
      options.arch = arch;
      auto program = runtime::compileCuda(GetParam(), source, options);
      ASSERT_TRUE(program.ok()) << program.status().message();
      EXPECT_FALSE(program->image.empty());
    }
  }
}

/// Builds every kernel of `kernels` as C++ into one shared object, runs each
/// on random inputs, and compares with the reference executor.
void expectCppMatchesReference(
    std::vector<std::pair<KernelOp, std::string>> kernels) {
  // One translation unit with every kernel, built into a shared object.
  std::string source = codegen::preamble(codegen::Target::cpp);
  for (auto &[kernel, symbol] : kernels) {
    auto generated =
        codegen::generateKernel(kernel, symbol, codegen::Target::cpp);
    ASSERT_TRUE(succeeded(generated)) << symbol;
    source += generated->source;
  }
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("kiln-codegen", dir));
  auto cleanup =
      llvm::make_scope_exit([&] { llvm::sys::fs::remove_directories(dir); });
  std::string cpp = (dir + "/kernels.cpp").str();
  std::string so = (dir + "/kernels.so").str();
  {
    std::error_code ec;
    llvm::raw_fd_ostream out(cpp, ec);
    ASSERT_FALSE(ec);
    out << source;
  }
  std::string compiler = KILN_HOST_CXX;
  std::string error;
  int rc = llvm::sys::ExecuteAndWait(
      compiler, {compiler, "-O1", "-shared", "-fPIC", "-w", cpp, "-o", so},
      std::nullopt, {}, 0, 0, &error);
  ASSERT_EQ(rc, 0) << "host compiler failed: " << error << "\n" << source;
  void *library = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_TRUE(library) << dlerror();

  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> uniform(-2.0, 2.0);
  reference::Executor executor({/*training=*/true, /*seed=*/0});
  for (auto &[kernel, symbol] : kernels) {
    // Random inputs of the kernel's static shapes.
    std::vector<reference::Tensor> inputs;
    for (mlir::Value input : kernel.getInputs()) {
      auto type = llvm::cast<mlir::RankedTensorType>(input.getType());
      reference::Tensor t(*reference::elementTypeOf(type.getElementType()),
                          std::vector<int64_t>(type.getShape()));
      for (double &v : t.data)
        v = reference::isFloat(t.type) ? uniform(rng)
                                       : double(rng() % 3); // small ints
      t.round();
      inputs.push_back(std::move(t));
    }
    auto expected = executor.runKernel(kernel, inputs);
    ASSERT_TRUE(succeeded(expected)) << symbol;

    // Typed buffers for the generated function.
    std::vector<std::vector<char>> storage;
    std::vector<void *> buffers;
    auto buffer = [&](const reference::Tensor &t) {
      size_t item = t.type == reference::ElementType::f64   ? 8
                    : t.type == reference::ElementType::i64 ? 8
                    : t.type == reference::ElementType::i1  ? 1
                                                            : 4;
      storage.emplace_back(t.data.size() * item);
      char *p = storage.back().data();
      for (size_t i = 0; i < t.data.size(); ++i) {
        switch (t.type) {
        case reference::ElementType::f32:
          reinterpret_cast<float *>(p)[i] = float(t.data[i]);
          break;
        case reference::ElementType::f64:
          reinterpret_cast<double *>(p)[i] = t.data[i];
          break;
        case reference::ElementType::i1:
          reinterpret_cast<bool *>(p)[i] = t.data[i] != 0;
          break;
        case reference::ElementType::i32:
          reinterpret_cast<int32_t *>(p)[i] = int32_t(t.data[i]);
          break;
        case reference::ElementType::i64:
          reinterpret_cast<int64_t *>(p)[i] = int64_t(t.data[i]);
          break;
        }
      }
      buffers.push_back(p);
    };
    for (const reference::Tensor &t : inputs)
      buffer(t);
    for (const reference::Tensor &t : *expected)
      buffer(reference::Tensor(t.type, t.shape)); // outputs, zeroed
    using Entry =
        void (*)(void *const *, const long long *, unsigned long long);
    auto entry =
        reinterpret_cast<Entry>(dlsym(library, (symbol + "_entry").c_str()));
    ASSERT_TRUE(entry) << symbol;
    entry(buffers.data(), nullptr, /*seed=*/0);

    for (size_t r = 0; r < expected->size(); ++r) {
      const reference::Tensor &want = (*expected)[r];
      const char *got = storage[inputs.size() + r].data();
      for (size_t i = 0; i < want.data.size(); ++i) {
        double value = 0;
        switch (want.type) {
        case reference::ElementType::f32:
          value = reinterpret_cast<const float *>(got)[i];
          break;
        case reference::ElementType::f64:
          value = reinterpret_cast<const double *>(got)[i];
          break;
        case reference::ElementType::i1:
          value = reinterpret_cast<const bool *>(got)[i];
          break;
        case reference::ElementType::i32:
          value = reinterpret_cast<const int32_t *>(got)[i];
          break;
        case reference::ElementType::i64:
          value = double(reinterpret_cast<const int64_t *>(got)[i]);
          break;
        }
        // Random inputs reach outside some ops' domains (sqrt of a
        // negative second moment): both sides must then agree on NaN.
        if (std::isnan(want.data[i])) {
          ASSERT_TRUE(std::isnan(value))
              << symbol << " result " << r << " element " << i;
          continue;
        }
        double tolerance = 1e-6 + 1e-5 * std::fabs(want.data[i]);
        ASSERT_NEAR(value, want.data[i], tolerance)
            << symbol << " result " << r << " element " << i;
      }
    }
  }
  dlclose(library);
}

TEST_P(Codegen, CppMatchesTheReferenceExecutor) {
  auto module = fused(context, path(), "batch=5");
  ASSERT_TRUE(module) << path();
  auto kernels = elementwiseKernels(*module);
  ASSERT_FALSE(kernels.empty());
  expectCppMatchesReference(kernels);
}

// Dropout in generated code draws the reference executor's mask: the
// Philox code is shared. Fusion puts the examples' dropouts in matmul
// epilogues, so this kernel is written by hand; it also has both GELU
// gradient formulas.
TEST(CodegenDropout, CppDrawsTheReferenceMask) {
  mlir::MLIRContext context;
  context.loadDialect<KilnDialect, mlir::func::FuncDialect>();
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
  auto kernels = elementwiseKernels(*module);
  ASSERT_EQ(kernels.size(), 1u);
  expectCppMatchesReference(kernels);
}

INSTANTIATE_TEST_SUITE_P(Examples, Codegen,
                         ::testing::Values("mlp.kiln", "logreg.kiln",
                                           "mlp_dropout.kiln", "cnn.kiln",
                                           "avgpool.kiln"),
                         [](const auto &info) {
                           std::string name = info.param;
                           return name.substr(0, name.find('.'));
                         });

} // namespace
