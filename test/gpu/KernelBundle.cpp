//===- KernelBundle.cpp - generated kernels with reference results --------===//
//
// kiln-kernel-bundle OUT_DIR [--examples DIR] [--batch N] [--dynamic-batch N]
//
// Writes the bundles kiln-gpu-check runs (format in Bundle.h), two per
// example model (the GPT through test/models/gpt_tiny.kiln, at batch 4 and
// a dynamic batch run at 3): "<model>" compiled with the batch bound (--batch,
// 64) and
// "<model>-dyn" compiled with it dynamic, run at --dynamic-batch (37, not a
// multiple of any block size) so the dynamic-size parameters are exercised.
// For each bundle:
//   1. compile the model to its fused stage and take every kernel, of every
//      kind, named "<kernel name>_<index>";
//   2. generate each kernel's CUDA C; a generator failure is recorded as the
//      kernel's error (it counts as a failure in the check);
//   3. make random inputs (floats uniform in [-2, 2], integers in [0, 3),
//      as test/codegen does) and run the reference executor on the kernel;
//   4. check the program compiles with NVRTC for sm_90 when NVRTC is here;
//      if not, compile kernel by kernel and record the failing ones;
//   5. write <name>.cu and <name>.safetensors.
// Exits 1 if anything could not be written or a model did not compile.
//
//===----------------------------------------------------------------------===//

#include "Bundle.h"

#include "CompileModel.h"
#include "codegen/KernelCodegen.h"
#include "frontend/MLIRGen.h"
#include "frontend/Parser.h"
#include "passes/Pipeline.h"
#include "reference/Executor.h"
#include "runtime/Nvrtc.h"
#include "runtime/Safetensors.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

using namespace kiln;
using namespace kiln::gpucheck;

namespace {

/// The seed of every kernel that takes one (dropout), in the executor too.
constexpr uint64_t kSeed = 20240917;

mlir::OwningOpRef<mlir::ModuleOp> compileFused(mlir::MLIRContext &context,
                                               const std::string &file,
                                               const std::string &bind) {
  return test::compileModel(context, file, Stage::fused, bind);
}

/// Random inputs for `kernel`, with every dynamic dimension `batch`.
std::vector<reference::Tensor> randomInputs(KernelOp kernel, int64_t batch,
                                            uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(-2.0, 2.0);
  std::vector<reference::Tensor> inputs;
  for (mlir::Value input : kernel.getInputs()) {
    auto type = llvm::cast<mlir::RankedTensorType>(input.getType());
    std::vector<int64_t> shape(type.getShape());
    for (int64_t &dim : shape)
      if (mlir::ShapedType::isDynamic(dim))
        dim = batch;
    reference::Tensor t(*reference::elementTypeOf(type.getElementType()),
                        shape);
    for (double &v : t.data)
      v = reference::isFloat(t.type) ? uniform(rng) : double(rng() % 3);
    t.round();
    inputs.push_back(std::move(t));
  }
  return inputs;
}

/// The safetensors form of a reference tensor, or nullopt for i1 (no kernel
/// boundary of the examples carries one).
std::optional<runtime::TensorData> toTensorData(const reference::Tensor &t,
                                                std::string name) {
  runtime::TensorData data;
  data.name = std::move(name);
  data.shape = t.shape;
  auto store = [&](auto zero) {
    using T = decltype(zero);
    data.bytes.resize(t.data.size() * sizeof(T));
    for (size_t i = 0; i < t.data.size(); ++i) {
      T value = T(t.data[i]);
      std::memcpy(data.bytes.data() + i * sizeof(T), &value, sizeof(T));
    }
  };
  switch (t.type) {
  case reference::ElementType::f32:
    data.dtype = runtime::DType::F32;
    store(float());
    return data;
  case reference::ElementType::f64:
    data.dtype = runtime::DType::F64;
    store(double());
    return data;
  case reference::ElementType::i32:
    data.dtype = runtime::DType::I32;
    store(int32_t());
    return data;
  case reference::ElementType::i64:
    data.dtype = runtime::DType::I64;
    store(int64_t());
    return data;
  case reference::ElementType::i1:
    return std::nullopt;
  }
  return std::nullopt;
}

int64_t numElements(const reference::Tensor &t) { return t.numel(); }

/// How many terms each result element of `kernel` accumulates: a matmul's
/// contraction length; for other kernels, the largest input's elements per
/// element of the largest result, or a rank-4 weight's C * kh * kw,
/// whichever is larger; at least 1.
int64_t accumulationLength(KernelOp kernel,
                           const std::vector<reference::Tensor> &inputs,
                           const std::vector<reference::Tensor> &outputs) {
  if (kernel.getKind() == KernelKind::elementwise)
    return 1;
  int64_t k = 1;
  kernel.getBlock().walk([&](MatmulOp matmul) {
    auto lhs = llvm::cast<mlir::RankedTensorType>(matmul.getLhs().getType());
    int64_t rank = lhs.getRank();
    int64_t dim =
        lhs.getDimSize(matmul.getTransposeLhs() ? rank - 2 : rank - 1);
    if (!mlir::ShapedType::isDynamic(dim))
      k = std::max(k, dim);
    else
      for (const reference::Tensor &t : inputs)
        if (t.rank() == rank)
          k = std::max(k,
                       t.shape[matmul.getTransposeLhs() ? rank - 2 : rank - 1]);
  });
  if (kernel.getKind() == KernelKind::matmul)
    return k;
  int64_t largestInput = 1, largestOutput = 1;
  for (const reference::Tensor &t : inputs) {
    largestInput = std::max(largestInput, numElements(t));
    if (t.rank() == 4)
      k = std::max(k, t.shape[1] * t.shape[2] * t.shape[3]);
  }
  for (const reference::Tensor &t : outputs)
    largestOutput = std::max(largestOutput, numElements(t));
  return std::max(k, largestInput / largestOutput);
}

/// One bundle to write.
struct Variant {
  std::string example; ///< "mlp"
  std::string name;    ///< "mlp" or "mlp-dyn"
  std::string bind;    ///< "batch=64" or empty
  int64_t batch;       ///< the batch the inputs have
};

/// Writes one bundle; false if it could not be written or the model did not
/// compile (printed).
bool writeBundle(const Variant &variant, const std::string &examples,
                 const std::string &outDir) {
  mlir::MLIRContext context;
  context.loadDialect<KilnDialect, mlir::func::FuncDialect>();
  std::string diagnostics;
  mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &d) {
    llvm::raw_string_ostream os(diagnostics);
    os << d.getLocation() << ": " << d << "\n";
    return mlir::success();
  });

  std::string file = examples + "/" + variant.example + ".kiln";
  auto module = compileFused(context, file, variant.bind);
  if (!module) {
    llvm::errs() << variant.name << ": " << file << " did not compile:\n"
                 << diagnostics;
    return false;
  }

  std::vector<std::pair<KernelOp, std::string>> kernels;
  module->walk([&](KernelOp kernel) {
    kernels.push_back({kernel, kernel.getName().str() + "_" +
                                   std::to_string(kernels.size())});
  });

  runtime::Checkpoint bundle;
  bundle.metadata["kiln.bundle"] = kBundleVersion;
  bundle.metadata["kiln.model"] =
      std::filesystem::path(file).filename().string() + " " +
      (variant.bind.empty()
           ? "batch dynamic, run at " + std::to_string(variant.batch)
           : variant.bind);
  std::vector<KernelRecord> records;
  std::vector<std::string> sources; // "" for a kernel without one
  reference::Executor executor({/*training=*/true, /*seed=*/kSeed});
  int generated = 0;
  for (auto &[kernel, symbol] : kernels) {
    KernelRecord record;
    record.symbol = symbol;
    record.kind = stringifyKernelKind(kernel.getKind()).str();
    record.rtol = kRelativeTolerance;
    sources.emplace_back();
    auto fail = [&](const std::string &why) {
      record.error = why;
      while (!record.error.empty() && record.error.back() == '\n')
        record.error.pop_back();
      records.push_back(record);
    };

    diagnostics.clear();
    auto code = codegen::generateKernel(kernel, symbol, codegen::Target::cuda);
    if (failed(code)) {
      fail("not generated: " + diagnostics);
      continue;
    }
    std::vector<reference::Tensor> inputs = randomInputs(
        kernel, variant.batch, std::hash<std::string>()(variant.name + symbol));
    diagnostics.clear();
    auto expected = executor.runKernel(kernel, inputs);
    if (failed(expected)) {
      fail("the reference executor failed: " + diagnostics);
      continue;
    }

    std::vector<runtime::TensorData> tensors;
    bool storable = true;
    auto add = [&](const reference::Tensor &t, const std::string &name,
                   std::vector<std::string> &names) {
      std::optional<runtime::TensorData> data = toTensorData(t, name);
      if (!data)
        storable = false;
      else
        tensors.push_back(std::move(*data));
      names.push_back(name);
    };
    for (size_t i = 0; i < inputs.size(); ++i)
      add(inputs[i], symbol + ".in" + std::to_string(i), record.inputs);
    for (size_t i = 0; i < expected->size(); ++i)
      add((*expected)[i], symbol + ".out" + std::to_string(i), record.outputs);
    if (!storable) {
      fail("an i1 tensor crosses the kernel boundary (no BOOL in bundles)");
      continue;
    }

    // Launch: dynamic sizes from the actual shapes, grid evaluated.
    for (const codegen::DynamicDim &dim : code->dynamicDims) {
      const reference::Tensor &t =
          dim.operand < inputs.size()
              ? inputs[dim.operand]
              : (*expected)[dim.operand - inputs.size()];
      record.dims.push_back(t.shape[dim.dim]);
    }
    for (int d = 0; d < 3; ++d) {
      record.grid[d] = code->launch.grid[d].evaluate(record.dims);
      record.block[d] = code->launch.block[d];
    }
    record.sharedBytes = code->launch.sharedBytes;
    record.takesSeed = code->takesSeed;
    record.seed = code->takesSeed ? kSeed : 0;
    record.accumulation = accumulationLength(kernel, inputs, *expected);
    record.atol = absoluteTolerance(record.accumulation);
    for (runtime::TensorData &t : tensors)
      bundle.tensors.push_back(std::move(t));
    sources.back() = code->source;
    records.push_back(record);
    ++generated;
  }

  // The program, compile-checked for sm_90 when NVRTC is here; a kernel
  // NVRTC rejects is left out and recorded.
  std::string preamble = codegen::preamble(codegen::Target::cuda);
  auto program = [&] {
    std::string text = preamble;
    for (const std::string &source : sources)
      text += source;
    return text;
  };
  if (runtime::nvrtcAvailable()) {
    runtime::CompileOptions options;
    options.arch = "sm_90";
    options.cacheDir = runtime::defaultCacheDir();
    if (!runtime::compileCuda(variant.name + ".cu", program(), options).ok()) {
      for (size_t i = 0; i < records.size(); ++i) {
        if (sources[i].empty())
          continue;
        auto alone = runtime::compileCuda(records[i].symbol + ".cu",
                                          preamble + sources[i], options);
        if (!alone.ok()) {
          records[i].error = "NVRTC rejects it: " + alone.status().message();
          sources[i].clear();
          --generated;
        }
      }
    }
  }

  for (size_t i = 0; i < records.size(); ++i)
    bundle.metadata[recordKey(i)] = formatRecord(records[i]);
  std::string base = outDir + "/" + variant.name;
  {
    std::ofstream out(base + ".cu");
    out << "// " << bundle.metadata["kiln.model"] << "\n" << program();
    if (!out.good()) {
      llvm::errs() << "cannot write " << base << ".cu\n";
      return false;
    }
  }
  if (runtime::Status status =
          runtime::writeSafetensors(base + ".safetensors", bundle);
      !status.ok()) {
    llvm::errs() << "cannot write " << base
                 << ".safetensors: " << status.message() << "\n";
    return false;
  }
  llvm::outs() << variant.name << ": " << generated << " of " << records.size()
               << " kernels generated\n";
  for (const KernelRecord &record : records)
    if (!record.error.empty())
      llvm::outs() << "  " << record.symbol << " (" << record.kind
                   << "): " << record.error.substr(0, record.error.find('\n'))
                   << "\n";
  return true;
}

int usage(const std::string &message) {
  llvm::errs() << "kiln-kernel-bundle: " << message
               << "\nusage: kiln-kernel-bundle OUT_DIR [--examples DIR] "
                  "[--batch N] [--dynamic-batch N] [--only MODEL]\n";
  return 2;
}

} // namespace

int main(int argc, char **argv) {
  std::string outDir, examples = std::string(KILN_SOURCE_DIR) + "/examples";
  std::string only;
  int64_t batch = 64, dynamicBatch = 37;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool hasValue = i + 1 < argc;
    if (arg == "--examples" && hasValue)
      examples = argv[++i];
    else if (arg == "--batch" && hasValue)
      batch = std::atoll(argv[++i]);
    else if (arg == "--dynamic-batch" && hasValue)
      dynamicBatch = std::atoll(argv[++i]);
    else if (arg == "--only" && hasValue)
      only = argv[++i];
    else if (!arg.empty() && arg[0] != '-' && outDir.empty())
      outDir = arg;
    else
      return usage("unexpected argument '" + arg + "'");
  }
  if (outDir.empty())
    return usage("no output directory given");
  if (batch < 1 || dynamicBatch < 1)
    return usage("batch sizes must be positive");
  std::error_code error;
  std::filesystem::create_directories(outDir, error);
  if (error)
    return usage("cannot create " + outDir + ": " + error.message());

  bool ok = true;
  for (const char *example :
       {"mlp", "logreg", "mlp_dropout", "cnn", "avgpool"}) {
    if (!only.empty() && only != example)
      continue;
    ok &=
        writeBundle({example, example, "batch=" + std::to_string(batch), batch},
                    examples, outDir);
    ok &=
        writeBundle({example, std::string(example) + "-dyn", "", dynamicBatch},
                    examples, outDir);
  }
  // The GPT example through its small twin (the same blocks, attention
  // included, at sizes the reference executor runs quickly).
  if (only.empty() || only == "gpt_tiny") {
    std::string models = std::string(KILN_SOURCE_DIR) + "/test/models";
    ok &= writeBundle({"gpt_tiny", "gpt_tiny", "batch=4", 4}, models, outDir);
    ok &= writeBundle({"gpt_tiny", "gpt_tiny-dyn", "", 3}, models, outDir);
  }
  return ok ? 0 : 1;
}
