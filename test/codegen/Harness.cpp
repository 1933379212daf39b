//===- Harness.cpp - checking generated kernels ---------------------------===//

#include "Harness.h"

#include "frontend/MLIRGen.h"
#include "frontend/Parser.h"
#include "passes/Pipeline.h"
#include "reference/Executor.h"
#include "runtime/Nvrtc.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <cmath>
#include <dlfcn.h>
#include <random>

using namespace kiln;
using namespace kiln::test;

void kiln::test::loadDialects(mlir::MLIRContext &context) {
  context.loadDialect<KilnDialect, mlir::func::FuncDialect>();
}

std::string kiln::test::examplePath(const std::string &name) {
  return std::string(KILN_SOURCE_DIR) + "/examples/" + name;
}

mlir::OwningOpRef<mlir::ModuleOp>
kiln::test::compileFused(mlir::MLIRContext &context, const std::string &file,
                         const std::string &bind) {
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
    bindings.push_back(bind);
  options.bind = bindings;
  mlir::PassManager pm(&context);
  if (failed(buildCompilePipeline(
          pm, options, [](const llvm::Twine &) { return mlir::failure(); })) ||
      failed(pm.run(*module)))
    return nullptr;
  return module;
}

std::vector<std::pair<KernelOp, std::string>>
kiln::test::kernelsOfKind(mlir::ModuleOp module, KernelKind kind) {
  std::vector<std::pair<KernelOp, std::string>> kernels;
  module.walk([&](KernelOp kernel) {
    if (kernel.getKind() == kind)
      kernels.push_back({kernel, kernel.getName().str() + "_" +
                                     std::to_string(kernels.size())});
  });
  return kernels;
}

void kiln::test::expectCudaCompiles(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const std::string &name) {
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
    auto program = runtime::compileCuda(name, source, options);
    ASSERT_TRUE(program.ok()) << program.status().message();
    EXPECT_FALSE(program->image.empty());
  }
}

std::vector<reference::Tensor> kiln::test::randomInputs(KernelOp kernel,
                                                        uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(-2.0, 2.0);
  std::vector<reference::Tensor> inputs;
  for (mlir::Value input : kernel.getInputs()) {
    auto type = llvm::cast<mlir::RankedTensorType>(input.getType());
    reference::Tensor t(*reference::elementTypeOf(type.getElementType()),
                        std::vector<int64_t>(type.getShape()));
    for (double &v : t.data)
      v = reference::isFloat(t.type) ? uniform(rng) : double(rng() % 3);
    t.round();
    inputs.push_back(std::move(t));
  }
  return inputs;
}

Tolerance kiln::test::relative(double atol, double rtol) {
  return [=](double expected) { return atol + rtol * std::fabs(expected); };
}

void kiln::test::expectCppMatchesReference(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const Tolerance &tolerance) {
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
      compiler, {compiler, "-O2", "-shared", "-fPIC", "-w", cpp, "-o", so},
      std::nullopt, {}, 0, 0, &error);
  ASSERT_EQ(rc, 0) << "host compiler failed: " << error << "\n" << source;
  void *library = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_TRUE(library) << dlerror();

  reference::Executor executor({/*training=*/true, /*seed=*/0});
  for (auto &[kernel, symbol] : kernels) {
    std::vector<reference::Tensor> inputs =
        randomInputs(kernel, std::hash<std::string>()(symbol));
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
    // Outputs start as garbage (NaN for floats): a kernel writes every
    // element of its results.
    for (const reference::Tensor &t : *expected) {
      buffer(reference::Tensor(t.type, t.shape));
      std::fill(storage.back().begin(), storage.back().end(), char(0xff));
    }
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
        ASSERT_NEAR(value, want.data[i], tolerance(want.data[i]))
            << symbol << " result " << r << " element " << i;
      }
    }
  }
  dlclose(library);
}
