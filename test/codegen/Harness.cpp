//===- Harness.cpp - checking generated kernels ---------------------------===//

#include "Harness.h"
#include "CompileModel.h"

#include "codegen/CodegenUtils.h"
#include "frontend/MLIRGen.h"
#include "frontend/Parser.h"
#include "passes/Pipeline.h"
#include "reference/Executor.h"
#include "runtime/Cuda.h"
#include "runtime/HostCompiler.h"
#include "runtime/Nvrtc.h"
#include "runtime/ThreadPool.h"
#include "test/gpu/CudaEmulation.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Parser/Parser.h"
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
#include <regex>

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
  auto module = compileModel(context, file, Stage::fused, bind);
  if (!module || mlir::failed(scheduleKernels(*module)))
    return nullptr;
  return module;
}

mlir::OwningOpRef<mlir::ModuleOp>
kiln::test::parseScheduled(llvm::StringRef text, mlir::MLIRContext &context) {
  auto module = mlir::parseSourceString<mlir::ModuleOp>(text, &context);
  if (!module || mlir::failed(scheduleKernels(*module)))
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

void kiln::test::expectNoSpills(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const std::string &report) {
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
    options.extraFlags = {"--ptxas-options=-v"};
    auto program = runtime::compileCuda("spills.cu", source, options);
    ASSERT_TRUE(program.ok()) << program.status().message();
    if (!report.empty())
      llvm::outs() << "ptxas, " << report << ", " << arch << ":\n"
                   << program->log;
    // ptxas reports "N bytes spill stores, M bytes spill loads" per kernel.
    const std::regex spill("([0-9]+) bytes spill stores, ([0-9]+) bytes "
                           "spill loads");
    unsigned reports = 0;
    for (auto it = std::sregex_iterator(program->log.begin(),
                                        program->log.end(), spill);
         it != std::sregex_iterator(); ++it, ++reports)
      EXPECT_TRUE((*it)[1] == "0" && (*it)[2] == "0")
          << arch << ": a kernel spills:\n"
          << program->log;
    EXPECT_GE(reports, kernels.size()) << arch << ":\n" << program->log;
  }
}

std::vector<reference::Tensor> kiln::test::randomInputs(KernelOp kernel,
                                                        uint64_t seed) {
  return randomInputs(kernel, seed, CheckOptions());
}

std::vector<reference::Tensor>
kiln::test::randomInputs(KernelOp kernel, uint64_t seed,
                         const CheckOptions &options) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(-2.0, 2.0);
  std::vector<reference::Tensor> inputs;
  for (mlir::Value input : kernel.getInputs()) {
    auto type = llvm::cast<mlir::RankedTensorType>(input.getType());
    std::vector<int64_t> shape(type.getShape());
    for (int64_t &size : shape)
      if (mlir::ShapedType::isDynamic(size))
        size = options.dynamicSize;
    reference::Tensor t(*reference::elementTypeOf(type.getElementType()),
                        shape);
    for (double &v : t.data) {
      if (t.type == reference::ElementType::i1)
        v = double(rng() % 2);
      else if (!reference::isFloat(t.type))
        v = double(rng() % uint64_t(options.indexBound));
      else if (options.floatStep > 0)
        v = std::round(uniform(rng) / options.floatStep) * options.floatStep;
      else
        v = uniform(rng);
    }
    t.round();
    inputs.push_back(std::move(t));
  }
  return inputs;
}

Tolerance kiln::test::relative(double atol, double rtol) {
  return [=](double expected) { return atol + rtol * std::fabs(expected); };
}

namespace {

size_t itemBytes(reference::ElementType type) {
  switch (type) {
  case reference::ElementType::f64:
  case reference::ElementType::i64:
    return 8;
  case reference::ElementType::i1:
    return 1;
  default:
    return 4;
  }
}

/// `t` in the layout of its C type.
std::vector<char> toBytes(const reference::Tensor &t) {
  std::vector<char> bytes(t.data.size() * itemBytes(t.type));
  char *p = bytes.data();
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
  return bytes;
}

/// Typed buffers for a generated function on the host: the inputs, then
/// the results, which start as garbage (NaN for floats): a kernel writes
/// every element of its results.
struct HostBuffers {
  HostBuffers(const std::vector<reference::Tensor> &inputs,
              const std::vector<reference::Tensor> &results) {
    for (const reference::Tensor &t : inputs)
      storage.push_back(toBytes(t));
    for (const reference::Tensor &t : results)
      storage.emplace_back(t.data.size() * itemBytes(t.type), char(0xff));
    for (std::vector<char> &bytes : storage)
      pointers.push_back(bytes.data());
  }
  std::vector<std::vector<char>> storage;
  std::vector<void *> pointers;
};

/// The element type of a tensor value.
mlir::Type elementType(mlir::Value value) {
  return llvm::cast<mlir::RankedTensorType>(value.getType()).getElementType();
}

double elementAt(const char *p, reference::ElementType type, size_t i) {
  switch (type) {
  case reference::ElementType::f32:
    return reinterpret_cast<const float *>(p)[i];
  case reference::ElementType::f64:
    return reinterpret_cast<const double *>(p)[i];
  case reference::ElementType::i1:
    return reinterpret_cast<const bool *>(p)[i];
  case reference::ElementType::i32:
    return reinterpret_cast<const int32_t *>(p)[i];
  case reference::ElementType::i64:
    return double(reinterpret_cast<const int64_t *>(p)[i]);
  }
  return 0;
}

/// Compares one result (`got`, in its C layout) with the reference's.
void expectResultNear(const std::string &symbol, size_t r,
                      const reference::Tensor &want, const char *got,
                      const Tolerance &tolerance) {
  for (size_t i = 0; i < want.data.size(); ++i) {
    double value = elementAt(got, want.type, i);
    if (std::isnan(want.data[i])) {
      ASSERT_TRUE(std::isnan(value))
          << symbol << " result " << r << " element " << i;
      continue;
    }
    ASSERT_NEAR(value, want.data[i], tolerance(want.data[i]))
        << symbol << " result " << r << " element " << i;
  }
}

} // namespace

void kiln::test::expectCppMatchesReference(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const Tolerance &tolerance) {
  expectCppMatchesReference(kernels, tolerance, CheckOptions());
}

void kiln::test::expectCppMatchesReference(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const Tolerance &tolerance, const CheckOptions &options) {
  expectCppMatchesReference(
      kernels, [&](KernelOp) { return tolerance; }, options);
}

void kiln::test::expectCppMatchesReference(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const KernelTolerance &tolerance, const CheckOptions &options) {
  // One translation unit with every kernel, built into a shared object.
  std::string source = codegen::preamble(codegen::Target::cpp);
  std::vector<codegen::GeneratedKernel> generatedKernels;
  for (auto &[kernel, symbol] : kernels) {
    auto generated =
        codegen::generateKernel(kernel, symbol, codegen::Target::cpp);
    ASSERT_TRUE(succeeded(generated)) << symbol;
    source += generated->source;
    generatedKernels.push_back(*generated);
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
  // The kernels' parallel loops on three threads, so every loop is split
  // (raggedly) as the CPU backend splits it.
  static runtime::ThreadPool pool(3);
  pool.install(dlsym(library, "kiln_set_parallel"));

  reference::Executor executor({/*training=*/true, /*seed=*/0});
  for (size_t k = 0; k < kernels.size(); ++k) {
    auto &[kernel, symbol] = kernels[k];
    std::vector<reference::Tensor> inputs =
        randomInputs(kernel, std::hash<std::string>()(symbol), options);
    auto expected = executor.runKernel(kernel, inputs);
    ASSERT_TRUE(succeeded(expected)) << symbol;

    HostBuffers host(inputs, *expected);
    std::vector<void *> &buffers = host.pointers;
    using Entry =
        void (*)(void *const *, const long long *, unsigned long long);
    auto entry =
        reinterpret_cast<Entry>(dlsym(library, (symbol + "_entry").c_str()));
    ASSERT_TRUE(entry) << symbol;
    // The dynamic sizes, read off the inputs and the reference's results.
    std::vector<long long> dims;
    for (const codegen::DynamicDim &d : generatedKernels[k].dynamicDims)
      dims.push_back(d.operand < inputs.size()
                         ? inputs[d.operand].shape[d.dim]
                         : (*expected)[d.operand - inputs.size()].shape[d.dim]);
    entry(buffers.data(), dims.empty() ? nullptr : dims.data(), /*seed=*/0);

    Tolerance kernelTolerance = tolerance(kernel);
    for (size_t r = 0; r < expected->size(); ++r)
      expectResultNear(symbol, r, (*expected)[r],
                       host.storage[inputs.size() + r].data(), kernelTolerance);
  }
  dlclose(library);
}

Tolerance kiln::test::matmulTolerance(KernelOp kernel, int64_t dynamicSize) {
  MatmulOp matmul = *kernel.getBlock().getOps<MatmulOp>().begin();
  auto lhs = llvm::cast<mlir::RankedTensorType>(matmul.getLhs().getType());
  int64_t k =
      lhs.getDimSize(lhs.getRank() - (matmul.getTransposeLhs() ? 2 : 1));
  if (mlir::ShapedType::isDynamic(k))
    k = dynamicSize;
  bool f32 = lhs.getElementType().isF32();
  double eps = f32 ? std::ldexp(1.0, -24) : std::ldexp(1.0, -53);
  return relative(/*atol=*/(f32 ? 1e-6 : 1e-13) + 16 * eps * double(k),
                  /*rtol=*/f32 ? 1e-5 : 1e-13);
}

//===----------------------------------------------------------------------===//
// Kernels with dynamic sizes, on the CPU and the GPU
//===----------------------------------------------------------------------===//

namespace {

/// The size parameters of `generated`: every dynamic dimension is
/// `dynamicSize`.
std::vector<long long> sizeParameters(const codegen::GeneratedKernel &generated,
                                      int64_t dynamicSize) {
  return std::vector<long long>(generated.dynamicDims.size(), dynamicSize);
}

} // namespace

std::vector<reference::Tensor>
kiln::test::randomInputsWithSize(KernelOp kernel, uint64_t seed,
                                 int64_t dynamicSize) {
  CheckOptions options;
  options.dynamicSize = dynamicSize;
  return randomInputs(kernel, seed, options);
}

void kiln::test::expectCppMatchesReferenceWithSize(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const Tolerance &tolerance, int64_t dynamicSize) {
  CheckOptions options;
  options.dynamicSize = dynamicSize;
  expectCppMatchesReference(kernels, tolerance, options);
}

bool kiln::test::cudaDeviceAvailable() {
  if (!runtime::cuda::available())
    return false;
  auto count = runtime::cuda::deviceCount();
  return count.ok() && *count > 0;
}

void kiln::test::expectCudaMatchesReference(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const Tolerance &tolerance, int64_t dynamicSize) {
  namespace cuda = runtime::cuda;
  auto device = cuda::Device::open(0);
  ASSERT_TRUE(device.ok()) << device.status().message();
  std::string source = codegen::preamble(codegen::Target::cuda);
  std::vector<codegen::GeneratedKernel> generated;
  for (auto &[kernel, symbol] : kernels) {
    auto g = codegen::generateKernel(kernel, symbol, codegen::Target::cuda);
    ASSERT_TRUE(succeeded(g)) << symbol;
    source += g->source;
    generated.push_back(*g);
  }
  runtime::CompileOptions options;
  options.arch = device->properties().arch();
  auto program = runtime::compileCuda("gpu-check", source, options);
  ASSERT_TRUE(program.ok()) << program.status().message();
  auto module = cuda::Module::load(program->image);
  ASSERT_TRUE(module.ok()) << module.status().message();

  reference::Executor executor({/*training=*/true, /*seed=*/0});
  for (auto [n, entry] : llvm::enumerate(kernels)) {
    auto &[kernel, symbol] = entry;
    const codegen::GeneratedKernel &g = generated[n];
    std::vector<reference::Tensor> inputs = randomInputsWithSize(
        kernel, std::hash<std::string>()(symbol), dynamicSize);
    auto expected = executor.runKernel(kernel, inputs);
    ASSERT_TRUE(succeeded(expected)) << symbol;
    auto function = module->function(symbol);
    ASSERT_TRUE(function.ok()) << function.status().message();

    std::vector<cuda::DeviceBuffer> buffers;
    for (const reference::Tensor &t : inputs) {
      std::vector<char> bytes = toBytes(t);
      auto b = cuda::DeviceBuffer::allocate(std::max<size_t>(bytes.size(), 8));
      ASSERT_TRUE(b.ok()) << b.status().message();
      ASSERT_TRUE(b->upload(bytes.data(), bytes.size()).ok());
      buffers.push_back(std::move(*b));
    }
    for (const reference::Tensor &t : *expected) {
      auto b = cuda::DeviceBuffer::allocate(
          std::max<size_t>(t.data.size() * itemBytes(t.type), 8));
      ASSERT_TRUE(b.ok()) << b.status().message();
      buffers.push_back(std::move(*b));
    }
    std::vector<cuda::DevicePointer> pointers;
    for (cuda::DeviceBuffer &b : buffers)
      pointers.push_back(b.get());
    std::vector<long long> dims = sizeParameters(g, dynamicSize);
    // The seed is read from device memory (KernelCodegen.h).
    unsigned long long seedValue = 0;
    auto seedBuffer = cuda::DeviceBuffer::allocate(sizeof(seedValue));
    ASSERT_TRUE(seedBuffer.ok()) << seedBuffer.status().message();
    ASSERT_TRUE(seedBuffer->upload(&seedValue, sizeof(seedValue)).ok());
    cuda::DevicePointer seed = seedBuffer->get();
    std::vector<void *> args;
    for (cuda::DevicePointer &p : pointers)
      args.push_back(&p);
    for (long long &d : dims)
      args.push_back(&d);
    if (g.takesSeed)
      args.push_back(&seed);
    std::vector<int64_t> dimValues(dims.begin(), dims.end());
    cuda::Dim3 grid{unsigned(g.launch.grid[0].evaluate(dimValues)),
                    unsigned(g.launch.grid[1].evaluate(dimValues)),
                    unsigned(g.launch.grid[2].evaluate(dimValues))};
    cuda::Dim3 block{g.launch.block[0], g.launch.block[1], g.launch.block[2]};

    std::vector<std::vector<char>> firstRun;
    for (int run = 0; run < 2; ++run) {
      for (size_t r = 0; r < expected->size(); ++r)
        ASSERT_TRUE(buffers[inputs.size() + r].fill(0xff).ok());
      cuda::Stream stream;
      auto launched = cuda::launch(*function, grid, block, g.launch.sharedBytes,
                                   stream, args.data());
      ASSERT_TRUE(launched.ok()) << symbol << ": " << launched.message();
      ASSERT_TRUE(device->synchronize().ok()) << symbol;
      for (size_t r = 0; r < expected->size(); ++r) {
        const reference::Tensor &want = (*expected)[r];
        std::vector<char> got(want.data.size() * itemBytes(want.type));
        ASSERT_TRUE(
            buffers[inputs.size() + r].download(got.data(), got.size()).ok());
        if (run == 0) {
          expectResultNear(symbol, r, want, got.data(), tolerance);
          firstRun.push_back(std::move(got));
        } else {
          EXPECT_TRUE(got == firstRun[r])
              << symbol << " result " << r << " differs between two runs";
        }
      }
    }
  }
}

void kiln::test::expectEmulatedCudaMatchesReference(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const Tolerance &tolerance, int64_t dynamicSize) {
  std::string cuda = codegen::preamble(codegen::Target::cuda), entries;
  std::vector<codegen::GeneratedKernel> generated;
  for (auto [kernel, symbol] : kernels) {
    auto g = codegen::generateKernel(kernel, symbol, codegen::Target::cuda);
    ASSERT_TRUE(succeeded(g)) << symbol;
    cuda += g->source;
    gpucheck::EmulatedLaunch launch;
    launch.symbol = symbol;
    for (mlir::Value input : kernel.getInputs())
      launch.inputs.push_back(codegen::cType(elementType(input)));
    for (mlir::Value result : kernel.getResults())
      launch.outputs.push_back(codegen::cType(elementType(result)));
    std::vector<long long> dims = sizeParameters(*g, dynamicSize);
    std::vector<int64_t> dimValues(dims.begin(), dims.end());
    launch.dims = dims.size();
    launch.takesSeed = g->takesSeed;
    for (int d = 0; d < 3; ++d) {
      launch.grid[d] = g->launch.grid[d].evaluate(dimValues);
      launch.block[d] = g->launch.block[d];
    }
    launch.sharedBytes = g->launch.sharedBytes;
    entries += gpucheck::emulationEntry(launch);
    generated.push_back(*g);
  }
  runtime::HostCompileOptions options;
  options.cacheDir = runtime::defaultCacheDir();
  auto library = runtime::compileHostLibrary(
      "emulated", gpucheck::emulateCudaSource(cuda) + entries, options);
  ASSERT_TRUE(library.ok()) << library.status().message();

  reference::Executor executor({/*training=*/true, /*seed=*/0});
  for (auto [n, entry] : llvm::enumerate(kernels)) {
    auto &[kernel, symbol] = entry;
    std::vector<reference::Tensor> inputs = randomInputsWithSize(
        kernel, std::hash<std::string>()(symbol), dynamicSize);
    auto expected = executor.runKernel(kernel, inputs);
    ASSERT_TRUE(succeeded(expected)) << symbol;
    HostBuffers host(inputs, *expected);
    std::vector<void *> &buffers = host.pointers;
    using Emulated =
        void (*)(void *const *, const long long *, const unsigned long long *);
    auto run =
        reinterpret_cast<Emulated>(library->symbol(symbol + "_emulated"));
    ASSERT_TRUE(run) << symbol;
    std::vector<long long> dims = sizeParameters(generated[n], dynamicSize);
    unsigned long long seed = 0;
    run(buffers.data(), dims.data(), &seed);
    for (size_t r = 0; r < expected->size(); ++r)
      expectResultNear(symbol, r, (*expected)[r],
                       host.storage[inputs.size() + r].data(), tolerance);
  }
}

void kiln::test::expectCudaOrEmulatedMatchesReference(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const Tolerance &tolerance, int64_t dynamicSize) {
  if (runtime::nvrtcAvailable() && cudaDeviceAvailable())
    expectCudaMatchesReference(kernels, tolerance, dynamicSize);
  else
    expectEmulatedCudaMatchesReference(kernels, tolerance, dynamicSize);
}
