//===- StepTest.cpp - whole steps on the CPU backend match the oracle -----===//
//
// For every example model (the full-size GPT replaced by its small twin
// test/models/gpt_tiny.kiln): its training step, fused, planned, generated as
// C++ and run by the CPU backend (runtime/CpuBackend.h) for a few steps,
// computes the losses, metrics, parameters and optimizer state that the
// reference executor computes running the unfused step op by op in double
// precision (rounding each op's result to f32). Again with `batch` a
// run-time size (`--max-batch`), the step planned for a larger batch than
// it runs at.
//
// Tolerances: the generated kernels compute in f32 with their own summation
// orders, so each step differs from the oracle by rounding; over three
// steps the parameters stay within atol 1e-5 + rtol 1e-4, the loss within
// a relative 1e-5.
//
//===----------------------------------------------------------------------===//

#include "CompileModel.h"
#include "codegen/StepCodegen.h"
#include "frontend/MLIRGen.h"
#include "frontend/Parser.h"
#include "passes/Pipeline.h"
#include "reference/Executor.h"
#include "reference/ReferenceBackend.h"
#include "runtime/ByteTable.h"
#include "runtime/CpuBackend.h"
#include "runtime/CudaBackend.h"
#include "runtime/HostCompiler.h"
#include "runtime/Initializers.h"
#include "runtime/Nvrtc.h"
#include "runtime/ThreadPool.h"
#include "test/gpu/CudaEmulation.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/MemoryBuffer.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <random>

using namespace kiln;

namespace {

constexpr int64_t kBatch = 8;
constexpr int kSteps = 3;

mlir::OwningOpRef<mlir::ModuleOp>
compile(mlir::MLIRContext &context, const std::string &file, Stage stage) {
  return test::compileModel(context, file, stage,
                            "batch=" + std::to_string(kBatch));
}

/// `file`'s steps at batch kBatch, planned and generated: the program and
/// its CUDA C and C++.
mlir::FailureOr<codegen::GeneratedProgram> generate(mlir::MLIRContext &context,
                                                    const std::string &file) {
  auto planned = compile(context, file, Stage::scheduled);
  if (!planned)
    return mlir::failure();
  return codegen::generateProgram(*planned);
}

/// The function `name` of `module` (a step's unfused oracle), or null.
mlir::func::FuncOp findFunction(mlir::ModuleOp module, llvm::StringRef name) {
  return module.lookupSymbol<mlir::func::FuncOp>(name);
}

reference::ElementType elementType(runtime::DType dtype) {
  switch (dtype) {
  case runtime::DType::F32:
    return reference::ElementType::f32;
  case runtime::DType::F64:
    return reference::ElementType::f64;
  case runtime::DType::I32:
    return reference::ElementType::i32;
  default:
    return reference::ElementType::i64;
  }
}

/// A tensor as the runtime's bytes, and back.
std::vector<uint8_t> toBytes(const reference::Tensor &t, runtime::DType dtype) {
  std::vector<uint8_t> bytes(t.data.size() * runtime::dtypeSize(dtype));
  for (size_t i = 0; i < t.data.size(); ++i) {
    uint8_t *p = bytes.data() + i * runtime::dtypeSize(dtype);
    switch (dtype) {
    case runtime::DType::F32: {
      float v = float(t.data[i]);
      std::memcpy(p, &v, 4);
      break;
    }
    case runtime::DType::F64:
      std::memcpy(p, &t.data[i], 8);
      break;
    case runtime::DType::I32: {
      int32_t v = int32_t(t.data[i]);
      std::memcpy(p, &v, 4);
      break;
    }
    default: {
      int64_t v = int64_t(t.data[i]);
      std::memcpy(p, &v, 8);
      break;
    }
    }
  }
  return bytes;
}

double element(const void *data, runtime::DType dtype, size_t i) {
  auto p = static_cast<const uint8_t *>(data) + i * runtime::dtypeSize(dtype);
  switch (dtype) {
  case runtime::DType::F32: {
    float v;
    std::memcpy(&v, p, 4);
    return v;
  }
  case runtime::DType::F64: {
    double v;
    std::memcpy(&v, p, 8);
    return v;
  }
  case runtime::DType::I32: {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
  }
  default: {
    int64_t v;
    std::memcpy(&v, p, 8);
    return double(v);
  }
  }
}

/// The training step's arguments written into `backend`: parameters from
/// their initializers (seed `seed`), inputs drawn from `rng` (uniform in
/// [0, 1), or labels of 10 classes), state zero; each rounded to its
/// element type. Returns them.
std::vector<reference::Tensor> writeTrainArguments(runtime::Backend &backend,
                                                   const runtime::Step &train,
                                                   uint64_t seed,
                                                   std::mt19937_64 &rng) {
  std::vector<reference::Tensor> args;
  for (size_t i = 0; i < train.arguments.size(); ++i) {
    const runtime::StepArgument &arg = train.arguments[i];
    reference::Tensor t(elementType(arg.dtype), arg.shape);
    if (!arg.init.kind.empty())
      EXPECT_TRUE(runtime::initialize(arg.init.kind, arg.init.a, arg.init.b,
                                      arg.shape, seed, i, t.data))
          << arg.name;
    else if (arg.role == runtime::Role::input)
      for (double &v : t.data)
        v = reference::isFloat(t.type)
                ? std::uniform_real_distribution<double>(0, 1)(rng)
                : double(rng() % 10);
    t.round();
    std::vector<uint8_t> bytes = toBytes(t, arg.dtype);
    auto status =
        arg.role == runtime::Role::input
            ? backend.setInput("train", arg.name, bytes.data(), bytes.size())
            : backend.write(arg.name, bytes.data(), bytes.size());
    EXPECT_TRUE(status.ok()) << status.message();
    args.push_back(std::move(t));
  }
  return args;
}

class Step : public ::testing::TestWithParam<const char *> {
protected:
  void checkTrainingStep(bool runTimeBatch, const std::string &isa = "",
                         bool dataParallel = false);
};

/// Runs the compiled training step of GetParam() for kSteps steps at batch
/// kBatch against the oracle; with `runTimeBatch` the step keeps `batch` a
/// run-time size, planned and tuned for batches up to kBatch + 5, and is
/// fixed to kBatch only when it runs (runtime::bindBatch). The kernels are
/// compiled for `isa` (empty: the host's best) and run on three threads.
/// With `dataParallel` the step averages its gradients over ranks (one
/// rank here: its all-reduces are the identity, in the runtime and in the
/// oracle alike).
void Step::checkTrainingStep(bool runTimeBatch, const std::string &isa,
                             bool dataParallel) {
  std::string file = std::string(KILN_SOURCE_DIR) + "/" + GetParam();
  mlir::MLIRContext context;
  context.loadDialect<KilnDialect, mlir::func::FuncDialect>();

  // The compiled step: fused, planned, generated, built, loaded.
  auto planned =
      runTimeBatch
          ? test::compileModel(context, file, Stage::scheduled, "", kBatch + 5)
      : dataParallel
          ? test::compileModel(context, file, Stage::scheduled,
                               "batch=" + std::to_string(kBatch), 0, true)
          : compile(context, file, Stage::scheduled);
  ASSERT_TRUE(planned) << file;
  auto generated = codegen::generateProgram(*planned);
  ASSERT_TRUE(succeeded(generated));
  if (runTimeBatch) {
    ASSERT_EQ(generated->program.step("train")->maxBatch, kBatch + 5);
    runtime::Status bound =
        runtime::bindBatch(generated->program, "train", kBatch);
    ASSERT_TRUE(bound.ok()) << bound.message();
  }
  const runtime::Step *step = generated->program.step("train");
  ASSERT_TRUE(step);
  runtime::HostCompileOptions options;
  options.isa = isa;
  auto library =
      runtime::compileHostLibrary(GetParam(), generated->cppSource, options);
  ASSERT_TRUE(library.ok()) << library.status().message();
  runtime::ThreadPool pool(3);
  pool.install(*library);
  auto cpu = runtime::CpuStep::create(*step, *library);
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();

  // The oracle: the unfused training step.
  auto unfused = compile(context, file, Stage::grad);
  ASSERT_TRUE(unfused);
  mlir::func::FuncOp oracle = findFunction(*unfused, step->function);
  ASSERT_TRUE(oracle) << step->function;
  ASSERT_EQ(oracle.getNumArguments(), step->arguments.size());

  // Arguments: initialized parameters and learning rate, zero state,
  // random inputs.
  std::vector<reference::Tensor> args;
  for (size_t i = 0; i < step->arguments.size(); ++i) {
    const runtime::StepArgument &arg = step->arguments[i];
    reference::Tensor t(elementType(arg.dtype), arg.shape);
    if (!arg.init.kind.empty()) {
      ASSERT_TRUE(runtime::initialize(arg.init.kind, arg.init.a, arg.init.b,
                                      arg.shape, /*seed=*/7, i, t.data))
          << arg.name;
    }
    t.round();
    args.push_back(std::move(t));
  }
  std::vector<std::vector<uint8_t>> buffers;
  for (size_t i = 0; i < args.size(); ++i)
    buffers.push_back(toBytes(args[i], step->arguments[i].dtype));

  std::mt19937_64 rng(3);
  reference::Executor executor({/*training=*/true, /*seed=*/0});
  for (int s = 0; s < kSteps; ++s) {
    for (size_t i = 0; i < args.size(); ++i) {
      const runtime::StepArgument &arg = step->arguments[i];
      if (arg.role != runtime::Role::input)
        continue;
      for (double &v : args[i].data)
        v = reference::isFloat(args[i].type)
                ? std::uniform_real_distribution<double>(0, 1)(rng)
                : double(rng() % 10); // labels of 10 classes
      args[i].round();
      buffers[i] = toBytes(args[i], arg.dtype);
    }
    uint64_t seed = 1000 + s;
    executor.getOptions().seed = seed;
    auto expected = executor.run(oracle, args);
    ASSERT_TRUE(succeeded(expected));
    std::vector<void *> pointers;
    for (auto &b : buffers)
      pointers.push_back(b.data());
    ASSERT_TRUE(cpu->run(pointers.data(), seed).ok());

    ASSERT_EQ(expected->size(), step->results.size());
    for (size_t r = 0; r < step->results.size(); ++r) {
      const runtime::StepResult &result = step->results[r];
      const reference::Tensor &want = (*expected)[r];
      ASSERT_EQ(int64_t(want.data.size()), result.elements());
      bool scalar = result.role == runtime::Role::loss ||
                    result.role == runtime::Role::metric;
      for (size_t i = 0; i < want.data.size(); ++i) {
        double got = element(cpu->result(r), result.dtype, i);
        double tolerance = scalar ? 1e-5 * std::fabs(want.data[i]) + 1e-7
                                  : 1e-5 + 1e-4 * std::fabs(want.data[i]);
        ASSERT_NEAR(got, want.data[i], tolerance)
            << "step " << s << ", result " << result.name << " ("
            << runtime::roleName(result.role) << "), element " << i;
      }
    }
    // The next step starts from the oracle's results, so the comparison
    // stays per step (differences do not compound).
    size_t next = 0;
    for (size_t r = 0; r < step->results.size(); ++r) {
      const runtime::StepResult &result = step->results[r];
      if (result.role != runtime::Role::param &&
          result.role != runtime::Role::state)
        continue;
      while (step->arguments[next].role == runtime::Role::input)
        ++next;
      args[next] = (*expected)[r];
      buffers[next] = toBytes(args[next], step->arguments[next].dtype);
      ++next;
    }
  }
}

TEST_P(Step, CpuBackendMatchesTheReferenceExecutor) {
  checkTrainingStep(/*runTimeBatch=*/false);
}

TEST_P(Step, RunTimeBatchMatchesTheReferenceExecutor) {
  checkTrainingStep(/*runTimeBatch=*/true);
}

TEST_P(Step, DataParallelMatchesTheReferenceExecutor) {
  checkTrainingStep(/*runTimeBatch=*/false, "", /*dataParallel=*/true);
}

// The portable build (no vector instruction set, no fused multiply-adds),
// which every machine can run, against the same oracle.
TEST_P(Step, PortableBuildMatchesTheReferenceExecutor) {
  checkTrainingStep(/*runTimeBatch=*/false, "portable");
}

// Two training steps on 1 and on 3 threads leave the same loss, metrics,
// parameters and optimizer state, bit for bit.
TEST_P(Step, ResultsDoNotDependOnTheThreadCount) {
  std::string file = std::string(KILN_SOURCE_DIR) + "/" + GetParam();
  mlir::MLIRContext context;
  context.loadDialect<KilnDialect, mlir::func::FuncDialect>();
  auto generated = generate(context, file);
  ASSERT_TRUE(succeeded(generated)) << file;
  const runtime::Step *train = generated->program.step("train");
  ASSERT_TRUE(train);
  // What two steps leave: the scalars, then every parameter and state
  // tensor, as bytes.
  auto trainTwice = [&](int threads) {
    std::vector<std::vector<uint8_t>> outcome;
    auto backend = runtime::createCpuBackend(
        generated->program, generated->cppSource, {}, false, threads);
    EXPECT_TRUE(backend.ok()) << backend.status().message();
    if (!backend.ok())
      return outcome;
    std::mt19937_64 rng(9);
    writeTrainArguments(**backend, *train, /*seed=*/5, rng);
    std::vector<double> scalars;
    for (uint64_t seed : {21, 22}) {
      EXPECT_TRUE((*backend)->run("train", seed).ok());
      EXPECT_TRUE((*backend)->scalars("train", scalars).ok());
      outcome.emplace_back(reinterpret_cast<const uint8_t *>(scalars.data()),
                           reinterpret_cast<const uint8_t *>(scalars.data()) +
                               scalars.size() * sizeof(double));
    }
    for (const runtime::StepArgument &arg : train->arguments) {
      if (arg.role == runtime::Role::input)
        continue;
      std::vector<uint8_t> bytes(static_cast<size_t>(arg.bytes()));
      EXPECT_TRUE((*backend)->read(arg.name, bytes.data(), bytes.size()).ok());
      outcome.push_back(std::move(bytes));
    }
    EXPECT_NE((*backend)->description().find(threads == 1 ? "1 thread)"
                                                          : "3 threads)"),
              std::string::npos)
        << (*backend)->description();
    return outcome;
  };
  auto one = trainTwice(1), three = trainTwice(3);
  ASSERT_FALSE(one.empty());
  ASSERT_EQ(one.size(), three.size());
  for (size_t i = 0; i < one.size(); ++i)
    EXPECT_TRUE(one[i] == three[i]) << "result " << i << " differs";
}

// The Backend interface over the CPU backend: parameters written by name,
// a training step, then the evaluation step reading the parameters the
// training step updated; both losses equal the reference executor's.
TEST_P(Step, CpuBackendSharesParametersBetweenSteps) {
  std::string file = std::string(KILN_SOURCE_DIR) + "/" + GetParam();
  mlir::MLIRContext context;
  context.loadDialect<KilnDialect, mlir::func::FuncDialect>();
  auto generated = generate(context, file);
  ASSERT_TRUE(succeeded(generated)) << file;
  auto backend =
      runtime::createCpuBackend(generated->program, generated->cppSource, {});
  ASSERT_TRUE(backend.ok()) << backend.status().message();
  const runtime::Step *train = generated->program.step("train");
  const runtime::Step *eval = generated->program.step("eval");
  ASSERT_TRUE(train && eval);

  auto unfused = compile(context, file, Stage::grad);
  ASSERT_TRUE(unfused);
  mlir::func::FuncOp trainOracle = findFunction(*unfused, train->function);
  mlir::func::FuncOp evalOracle = findFunction(*unfused, eval->function);
  ASSERT_TRUE(trainOracle && evalOracle);

  std::mt19937_64 rng(5);
  std::vector<reference::Tensor> trainArgs =
      writeTrainArguments(**backend, *train, /*seed=*/3, rng);
  ASSERT_FALSE(testing::Test::HasFailure());
  std::map<std::string, reference::Tensor> byName;
  for (size_t i = 0; i < train->arguments.size(); ++i)
    byName[train->arguments[i].name] = trainArgs[i];
  reference::Executor executor({/*training=*/true, /*seed=*/11});
  auto trained = executor.run(trainOracle, trainArgs);
  ASSERT_TRUE(succeeded(trained));
  ASSERT_TRUE((*backend)->run("train", 11).ok());
  std::vector<double> scalars;
  ASSERT_TRUE((*backend)->scalars("train", scalars).ok());
  ASSERT_FALSE(scalars.empty());
  EXPECT_NEAR(scalars[0], (*trained)[0].data[0],
              1e-5 * std::fabs((*trained)[0].data[0]));

  // The evaluation step on the updated parameters and the same inputs.
  for (size_t r = 0; r < train->results.size(); ++r)
    if (train->results[r].role == runtime::Role::param)
      byName[train->results[r].name] = (*trained)[r];
  std::vector<reference::Tensor> evalArgs;
  for (const runtime::StepArgument &arg : eval->arguments) {
    ASSERT_TRUE(byName.count(arg.name)) << arg.name;
    evalArgs.push_back(byName[arg.name]);
    if (arg.role == runtime::Role::input) {
      std::vector<uint8_t> bytes = toBytes(byName[arg.name], arg.dtype);
      ASSERT_TRUE((*backend)
                      ->setInput("eval", arg.name, bytes.data(), bytes.size())
                      .ok());
    }
  }
  executor.getOptions().training = false;
  auto evaluated = executor.run(evalOracle, evalArgs);
  ASSERT_TRUE(succeeded(evaluated));
  ASSERT_TRUE((*backend)->run("eval", 0).ok());
  ASSERT_TRUE((*backend)->scalars("eval", scalars).ok());
  ASSERT_EQ(scalars.size(), evaluated->size());
  for (size_t i = 0; i < scalars.size(); ++i)
    EXPECT_NEAR(scalars[i], (*evaluated)[i].data[0],
                1e-4 * std::fabs((*evaluated)[i].data[0]) + 1e-6)
        << "eval result " << i;
}

// Inputs gathered from byte tables (Backend::gatherInput, as the trainers
// feed Fashion-MNIST): a training step fed that way leaves the same loss
// and parameters, bit for bit, as one fed the decoded values by setInput;
// bad tables, sizes and rows are clear errors.
TEST(ByteTables, CpuBackendGathersInputsAsSetInputSetsThem) {
  std::string file = std::string(KILN_SOURCE_DIR) + "/examples/mlp.kiln";
  mlir::MLIRContext context;
  context.loadDialect<KilnDialect, mlir::func::FuncDialect>();
  auto generated = generate(context, file);
  ASSERT_TRUE(succeeded(generated)) << file;
  auto backend =
      runtime::createCpuBackend(generated->program, generated->cppSource, {});
  ASSERT_TRUE(backend.ok()) << backend.status().message();
  const runtime::Step *train = generated->program.step("train");
  ASSERT_TRUE(train);

  // Each input element is a random byte b: b / 256 for floats, b % 10 for
  // labels. `tables` holds each input's rows in reverse order.
  std::mt19937_64 rng(9);
  struct Fed {
    const runtime::StepArgument *arg;
    std::vector<uint8_t> values, table, decode;
    std::vector<int64_t> offsets;
    size_t rows, width;
  };
  std::vector<Fed> inputs;
  for (const runtime::StepArgument &arg : train->arguments) {
    if (arg.role != runtime::Role::input)
      continue;
    Fed fed{&arg, {}, {}, {}, {}, size_t(arg.shape[0]), 0};
    fed.width = size_t(arg.elements()) / fed.rows;
    reference::Tensor decoded(elementType(arg.dtype), arg.shape);
    reference::Tensor decode(elementType(arg.dtype), {256});
    for (int b = 0; b < 256; ++b)
      decode.data[b] = reference::isFloat(decode.type) ? b / 256.0 : b % 10;
    fed.table.resize(decoded.data.size());
    for (size_t r = 0; r < fed.rows; ++r) {
      fed.offsets.push_back(int64_t((fed.rows - 1 - r) * fed.width));
      for (size_t c = 0; c < fed.width; ++c) {
        uint8_t b = uint8_t(rng());
        fed.table[fed.offsets.back() + c] = b;
        decoded.data[r * fed.width + c] = decode.data[b];
      }
    }
    fed.values = toBytes(decoded, arg.dtype);
    fed.decode = toBytes(decode, arg.dtype);
    inputs.push_back(std::move(fed));
  }
  ASSERT_EQ(inputs.size(), 2u); // images and labels

  // One training step from the initial parameters; its loss and the
  // parameters it leaves.
  auto step = [&](bool gathered) {
    std::vector<std::vector<uint8_t>> state;
    for (size_t i = 0; i < train->arguments.size(); ++i) {
      const runtime::StepArgument &arg = train->arguments[i];
      if (arg.role == runtime::Role::input)
        continue;
      reference::Tensor t(elementType(arg.dtype), arg.shape);
      if (!arg.init.kind.empty()) {
        EXPECT_TRUE(runtime::initialize(arg.init.kind, arg.init.a, arg.init.b,
                                        arg.shape, /*seed=*/3, i, t.data));
      }
      std::vector<uint8_t> bytes = toBytes(t, arg.dtype);
      EXPECT_TRUE((*backend)->write(arg.name, bytes.data(), bytes.size()).ok());
    }
    for (const Fed &fed : inputs) {
      runtime::Status set = runtime::Status::success();
      if (gathered) {
        auto table =
            (*backend)->addByteTable(fed.table.data(), fed.table.size(),
                                     fed.decode.data(), fed.decode.size());
        EXPECT_TRUE(table.ok()) << table.status().message();
        set = (*backend)->gatherInput("train", fed.arg->name, *table,
                                      fed.offsets.data(), fed.rows, fed.width);
      } else {
        set = (*backend)->setInput("train", fed.arg->name, fed.values.data(),
                                   fed.values.size());
      }
      EXPECT_TRUE(set.ok()) << set.message();
    }
    EXPECT_TRUE((*backend)->run("train", 5).ok());
    std::vector<double> scalars;
    EXPECT_TRUE((*backend)->scalars("train", scalars).ok());
    std::vector<uint8_t> loss(scalars.size() * sizeof(double));
    std::memcpy(loss.data(), scalars.data(), loss.size());
    state.push_back(std::move(loss));
    for (const runtime::StepArgument &arg : train->arguments) {
      if (arg.role != runtime::Role::param)
        continue;
      std::vector<uint8_t> bytes(size_t(arg.bytes()));
      EXPECT_TRUE((*backend)->read(arg.name, bytes.data(), bytes.size()).ok());
      state.push_back(std::move(bytes));
    }
    return state;
  };
  auto set = step(/*gathered=*/false);
  auto gathered = step(/*gathered=*/true);
  ASSERT_GT(set.size(), 1u);
  EXPECT_EQ(set, gathered);

  // Errors.
  const Fed &images = inputs[0];
  auto table =
      (*backend)->addByteTable(images.table.data(), images.table.size(),
                               images.decode.data(), images.decode.size());
  ASSERT_TRUE(table.ok());
  auto badDecode = (*backend)->addByteTable(images.table.data(), 4,
                                            images.decode.data(), 100);
  ASSERT_FALSE(badDecode.ok());
  EXPECT_NE(badDecode.status().message().find("256 elements"),
            std::string::npos)
      << badDecode.status().message();
  runtime::Status noTable =
      (*backend)->gatherInput("train", images.arg->name, 99,
                              images.offsets.data(), images.rows, images.width);
  EXPECT_EQ(noTable.message(), "no byte table 99");
  runtime::Status wrongSize = (*backend)->gatherInput(
      "train", images.arg->name, *table, images.offsets.data(), images.rows,
      images.width - 1);
  EXPECT_NE(wrongSize.message().find("has no input"), std::string::npos)
      << wrongSize.message();
  std::vector<int64_t> outside = images.offsets;
  outside[2] = int64_t(images.table.size() - images.width + 1);
  runtime::Status beyond =
      (*backend)->gatherInput("train", images.arg->name, *table, outside.data(),
                              images.rows, images.width);
  EXPECT_NE(beyond.message().find("row 2 ("), std::string::npos)
      << beyond.message();
  EXPECT_NE(beyond.message().find("outside the byte table"), std::string::npos);
  outside[2] = -1;
  EXPECT_FALSE((*backend)
                   ->gatherInput("train", images.arg->name, *table,
                                 outside.data(), images.rows, images.width)
                   .ok());
}

// The CUDA backend's gather kernel (kCudaRuntimeKernels), run on the host
// by the CUDA emulation (test/gpu/CudaEmulation.h) on a grid smaller than
// its rows, gives what gatherRows gives, for every element size.
TEST(ByteTables, GatherKernelEmulatedMatchesGatherRows) {
  gpucheck::EmulatedLaunch launch;
  launch.symbol = "kiln_gather_bytes";
  launch.inputs = {"unsigned char", "long long", "unsigned char"};
  launch.outputs = {"unsigned char"};
  launch.dims = 3; // rows, width, elementBytes
  launch.grid[0] = 2;
  launch.block[0] = 128;
  runtime::HostCompileOptions options;
  options.cacheDir = runtime::defaultCacheDir();
  auto library = runtime::compileHostLibrary(
      "gather_emulated",
      gpucheck::emulateCudaSource(runtime::kCudaRuntimeKernels) +
          gpucheck::emulationEntry(launch),
      options);
  ASSERT_TRUE(library.ok()) << library.status().message();
  using Emulated =
      void (*)(void *const *, const long long *, const unsigned long long *);
  auto run =
      reinterpret_cast<Emulated>(library->symbol("kiln_gather_bytes_emulated"));
  ASSERT_TRUE(run);

  std::mt19937_64 rng(4);
  std::vector<uint8_t> table(1000);
  for (uint8_t &b : table)
    b = uint8_t(rng());
  const long long rows = 7, width = 61; // 427 elements on 256 threads
  std::vector<int64_t> offsets(rows);
  for (int64_t &offset : offsets)
    offset = int64_t(rng() % uint64_t(table.size() - width + 1));
  offsets[3] = offsets[1]; // rows may repeat
  for (long long elementBytes : {1, 2, 3, 4, 8}) {
    std::vector<uint8_t> decode(runtime::kByteValues * size_t(elementBytes));
    for (uint8_t &b : decode)
      b = uint8_t(rng());
    size_t bytes = size_t(rows * width * elementBytes);
    std::vector<uint8_t> want(bytes), got(bytes, 0xee);
    runtime::gatherRows(table.data(), decode.data(), size_t(elementBytes),
                        offsets.data(), size_t(rows), size_t(width),
                        want.data());
    void *buffers[] = {table.data(), offsets.data(), decode.data(), got.data()};
    const long long dims[] = {rows, width, elementBytes};
    unsigned long long seed = 0;
    run(buffers, dims, &seed);
    EXPECT_EQ(got, want) << "element size " << elementBytes;
  }
}

// The whole CUDA program of each example (every kernel of its training and
// evaluation steps in one translation unit, as the CUDA backend compiles
// it) compiles with NVRTC for each of `archs`.
void expectCudaProgramCompiles(const std::string &model,
                               std::initializer_list<const char *> archs) {
  std::string file = std::string(KILN_SOURCE_DIR) + "/" + model;
  mlir::MLIRContext context;
  context.loadDialect<KilnDialect, mlir::func::FuncDialect>();
  auto generated = generate(context, file);
  ASSERT_TRUE(succeeded(generated)) << file;
  EXPECT_TRUE(generated->program.step("train"));
  EXPECT_TRUE(generated->program.step("eval"));
  for (const char *arch : archs) {
    runtime::CompileOptions options;
    options.arch = arch;
    auto program = runtime::compileCuda(model, generated->cudaSource, options);
    ASSERT_TRUE(program.ok()) << program.status().message();
    EXPECT_FALSE(program->image.empty());
  }
}

// The predict step of a model with an output (the byte-level language
// model of the text-trainer tests): through the Backend interface, its
// logits equal the reference executor's running the unfused predict step.
// The reference executor behind the Backend interface takes parameters,
// byte-table inputs and steps as the CPU backend does: two training steps
// and an evaluation from the same start give the same losses, metrics and
// parameters (within the f32 kernels' rounding).
TEST(ReferenceBackend, RunsStepsAsTheCpuBackendDoes) {
  std::string file = std::string(KILN_SOURCE_DIR) + "/examples/mlp.kiln";
  mlir::MLIRContext context;
  context.loadDialect<KilnDialect, mlir::func::FuncDialect>();
  auto generated = generate(context, file);
  ASSERT_TRUE(succeeded(generated)) << file;
  auto cpu =
      runtime::createCpuBackend(generated->program, generated->cppSource, {});
  ASSERT_TRUE(cpu.ok()) << cpu.status().message();
  auto oracle = compile(context, file, Stage::grad);
  ASSERT_TRUE(oracle);
  auto described = reference::describeSteps(*oracle, /*maxBatch=*/1024);
  ASSERT_TRUE(succeeded(described));
  const runtime::Step *train = generated->program.step("train");
  const runtime::Step *eval = generated->program.step("eval");
  ASSERT_TRUE(train && eval);
  // The reference program at the CPU program's batches.
  runtime::Program program = *described;
  ASSERT_TRUE(
      runtime::bindBatch(program, "train", train->arguments.back().shape[0])
          .ok());
  ASSERT_TRUE(
      runtime::bindBatch(program, "eval", eval->arguments.back().shape[0])
          .ok());
  auto ref = reference::createReferenceBackend(*oracle, program);
  ASSERT_EQ(program.step("train")->arguments.size(), train->arguments.size());

  std::vector<runtime::Backend *> backends = {cpu->get(), ref.get()};
  std::mt19937_64 rng(3);
  // Parameters and state as initialized, the same in both.
  for (const runtime::StepArgument &arg : train->arguments) {
    if (arg.role == runtime::Role::input)
      continue;
    reference::Tensor t(elementType(arg.dtype), arg.shape);
    if (!arg.init.kind.empty()) {
      ASSERT_TRUE(runtime::initialize(arg.init.kind, arg.init.a, arg.init.b,
                                      arg.shape, 5, 0, t.data));
    }
    std::vector<uint8_t> bytes = toBytes(t, arg.dtype);
    for (runtime::Backend *b : backends)
      ASSERT_TRUE(b->write(arg.name, bytes.data(), bytes.size()).ok())
          << arg.name;
  }
  // Inputs gathered from one byte table per input: pixels b / 256, labels
  // b % 10.
  std::vector<uint8_t> table(1 << 20);
  for (uint8_t &b : table)
    b = uint8_t(rng());
  for (const runtime::Step *step : {train, eval})
    for (const runtime::StepArgument &arg : step->arguments) {
      if (arg.role != runtime::Role::input)
        continue;
      reference::Tensor decode(elementType(arg.dtype), {256});
      for (int b = 0; b < 256; ++b)
        decode.data[b] = reference::isFloat(decode.type) ? b / 256.0 : b % 10;
      std::vector<uint8_t> decodeBytes = toBytes(decode, arg.dtype);
      size_t rows = size_t(arg.shape[0]);
      size_t width = size_t(arg.elements()) / rows;
      std::vector<int64_t> offsets;
      for (size_t r = 0; r < rows; ++r)
        offsets.push_back(int64_t(rng() % (table.size() - width)));
      for (runtime::Backend *b : backends) {
        auto handle = b->addByteTable(table.data(), table.size(),
                                      decodeBytes.data(), decodeBytes.size());
        ASSERT_TRUE(handle.ok());
        ASSERT_TRUE(b->gatherInput(step->kind, arg.name, *handle,
                                   offsets.data(), rows, width)
                        .ok())
            << arg.name;
      }
    }
  std::vector<double> scalars[2], previous[2];
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(backends[i]->run("train", 1).ok());
    ASSERT_TRUE(backends[i]->run("train", 2).ok());
    ASSERT_TRUE(backends[i]->scalars("train", previous[i], 1).ok());
    ASSERT_TRUE(backends[i]->run("eval", 0).ok());
    ASSERT_TRUE(backends[i]->scalars("eval", scalars[i]).ok());
  }
  ASSERT_EQ(scalars[0].size(), 2u); // the loss and the accuracy
  ASSERT_EQ(scalars[1].size(), 2u);
  EXPECT_NEAR(previous[0][0], previous[1][0], 1e-4 * std::abs(previous[1][0]));
  EXPECT_NEAR(scalars[0][0], scalars[1][0], 1e-4 * std::abs(scalars[1][0]));
  EXPECT_NEAR(scalars[0][1], scalars[1][1], 1e-6);
  for (const runtime::StepArgument &arg : train->arguments) {
    if (arg.role != runtime::Role::param)
      continue;
    std::vector<uint8_t> bytes[2];
    for (size_t i = 0; i < 2; ++i) {
      bytes[i].resize(size_t(arg.bytes()));
      ASSERT_TRUE(
          backends[i]->read(arg.name, bytes[i].data(), bytes[i].size()).ok());
    }
    double worst = 0;
    for (int64_t e = 0; e < arg.elements(); ++e)
      worst = std::max(worst, std::abs(element(bytes[0].data(), arg.dtype, e) -
                                       element(bytes[1].data(), arg.dtype, e)));
    EXPECT_LT(worst, 1e-5) << arg.name;
  }
  // Its errors are the CPU backend's.
  EXPECT_FALSE(ref->write("nothing", nullptr, 0).ok());
  EXPECT_FALSE(ref->run("predict", 0).ok());
}

TEST(PredictStep, CpuBackendMatchesTheReferenceExecutor) {
  std::string file =
      std::string(KILN_SOURCE_DIR) + "/test/trainer/Inputs/tiny_lm.kiln";
  mlir::MLIRContext context;
  context.loadDialect<KilnDialect, mlir::func::FuncDialect>();
  auto generated = generate(context, file);
  ASSERT_TRUE(succeeded(generated)) << file;
  const runtime::Step *predict = generated->program.step("predict");
  ASSERT_TRUE(predict);
  ASSERT_EQ(predict->results.size(), 1u);
  const runtime::StepResult &logits = predict->results[0];
  EXPECT_EQ(logits.role, runtime::Role::output);
  EXPECT_EQ(logits.shape, (std::vector<int64_t>{kBatch, 8, 256}));
  auto backend =
      runtime::createCpuBackend(generated->program, generated->cppSource, {});
  ASSERT_TRUE(backend.ok()) << backend.status().message();

  auto unfused = compile(context, file, Stage::grad);
  ASSERT_TRUE(unfused);
  mlir::func::FuncOp oracle = findFunction(*unfused, predict->function);
  ASSERT_TRUE(oracle) << predict->function;

  std::mt19937_64 rng(9);
  std::vector<reference::Tensor> args;
  for (size_t i = 0; i < predict->arguments.size(); ++i) {
    const runtime::StepArgument &arg = predict->arguments[i];
    reference::Tensor t(elementType(arg.dtype), arg.shape);
    if (arg.role == runtime::Role::param)
      ASSERT_TRUE(runtime::initialize(arg.init.kind, arg.init.a, arg.init.b,
                                      arg.shape, /*seed=*/1, i, t.data));
    else
      for (double &v : t.data)
        v = double(rng() % 256); // bytes
    t.round();
    std::vector<uint8_t> bytes = toBytes(t, arg.dtype);
    auto status = arg.role == runtime::Role::input
                      ? (*backend)->setInput("predict", arg.name, bytes.data(),
                                             bytes.size())
                      : (*backend)->write(arg.name, bytes.data(), bytes.size());
    ASSERT_TRUE(status.ok()) << status.message();
    args.push_back(std::move(t));
  }
  reference::Executor executor({/*training=*/false, /*seed=*/0});
  auto expected = executor.run(oracle, args);
  ASSERT_TRUE(succeeded(expected));
  ASSERT_TRUE((*backend)->run("predict", 0).ok());
  std::vector<uint8_t> got(static_cast<size_t>(logits.bytes()));
  auto read =
      (*backend)->output("predict", logits.name, got.data(), got.size());
  ASSERT_TRUE(read.ok()) << read.message();
  const reference::Tensor &want = (*expected)[0];
  ASSERT_EQ(int64_t(want.data.size()), logits.elements());
  for (size_t i = 0; i < want.data.size(); ++i)
    ASSERT_NEAR(element(got.data(), logits.dtype, i), want.data[i],
                1e-5 + 1e-4 * std::fabs(want.data[i]))
        << "logit " << i;
  // A wrong size or name is an error, not a copy.
  EXPECT_FALSE((*backend)->output("predict", logits.name, got.data(), 4).ok());
  EXPECT_FALSE(
      (*backend)->output("predict", "probs", got.data(), got.size()).ok());
}

class CudaProgram : public ::testing::TestWithParam<const char *> {};

TEST_P(CudaProgram, CompilesWithNvrtc) {
  if (!runtime::nvrtcAvailable())
    GTEST_SKIP() << "NVRTC is not available (the CUDA toolkit is not "
                    "installed)";
  expectCudaProgramCompiles(GetParam(), {"sm_80", "sm_90"});
}

// The full-size GPT (examples/gpt.kiln; gpt_tiny stands in for it above
// in the CPU step tests): every one of its ~600 kernels compiles. NVRTC
// takes minutes over them on 2 cores, so for sm_90 only (the GPU host's;
// gpt_tiny covers sm_80 with the same kernel kinds).
TEST(CudaProgramFullSize, GptCompilesWithNvrtc) {
  if (!runtime::nvrtcAvailable())
    GTEST_SKIP() << "NVRTC is not available (the CUDA toolkit is not "
                    "installed)";
  expectCudaProgramCompiles("examples/gpt.kiln", {"sm_90"});
}

/// `mlp` for "examples/mlp.kiln": the file's base name.
std::string testName(const ::testing::TestParamInfo<const char *> &info) {
  std::string name = info.param;
  name = name.substr(name.rfind('/') + 1);
  return name.substr(0, name.find('.'));
}

// The models whose steps run on the CPU backend against the reference
// executor and whose CUDA programs compile; test/models/gpt_tiny.kiln
// stands in for examples/gpt.kiln.
#define KILN_CPU_MODELS                                                        \
  "examples/mlp.kiln", "examples/logreg.kiln", "examples/mlp_dropout.kiln",    \
      "examples/cnn.kiln", "examples/avgpool.kiln",                            \
      "test/models/gpt_tiny.kiln"

INSTANTIATE_TEST_SUITE_P(Examples, Step, ::testing::Values(KILN_CPU_MODELS),
                         testName);
INSTANTIATE_TEST_SUITE_P(Examples, CudaProgram,
                         ::testing::Values(KILN_CPU_MODELS), testName);

} // namespace
