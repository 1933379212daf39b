//===- KernelBundle.cpp - generated kernels with reference results --------===//
//
// kiln-kernel-bundle OUT_DIR [--examples DIR] [--batch N] [--dynamic-batch N]
//                    [--only MODEL,...]
//
// Writes the bundles kiln-kernel-check runs (format in Bundle.h), two per
// example model (the GPT through test/models/gpt_tiny.kiln, at batch 4 and
// a dynamic batch run at 3): "<model>" compiled with the batch bound
// (--batch, 64) and "<model>-dyn" compiled with it dynamic, run at
// --dynamic-batch (37, not a multiple of any block size) so the
// dynamic-size parameters are exercised. For each bundle:
//   1. compile the model to its fused stage and take every kernel a step
//      launches, of every kind, named "<kernel name>_<index>" (not the
//      members of a horizontal kernel: they run inside it);
//   2. generate each kernel's CUDA C and C++; a generator failure is
//      recorded as the kernel's error (it counts as a failure in the check);
//   3. a kernel identical to an earlier one (the same code for the same
//      input shapes: the forward kernels of the training, evaluation and
//      prediction steps) is listed under the earlier one's "also" instead
//      of recorded again; the "-dyn" bundle records only the kernels that
//      take a dynamic size (the others are the bound bundle's);
//   4. make inputs from seeds (Bundle.h: floats uniform in [-2, 2),
//      integers in {0, 1, 2}), run the reference executor on the kernel,
//      and twice more on perturbed inputs for the conditioning of each
//      result element (Bundle.h's tolerances);
//   5. check the CUDA program compiles with NVRTC for sm_90 when NVRTC is
//      here; if not, compile kernel by kernel and record the failing ones;
//   6. write <name>.cu, <name>.cpp and <name>.safetensors.
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
#include "runtime/AtomicFile.h"
#include "runtime/Nvrtc.h"
#include "runtime/Random.h"
#include "runtime/Safetensors.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>

using namespace kiln;
using namespace kiln::gpucheck;

namespace {

/// The seed of every kernel that takes one (dropout), in the executor too.
constexpr uint64_t kSeed = 20240917;

mlir::OwningOpRef<mlir::ModuleOp> compileFused(mlir::MLIRContext &context,
                                               const std::string &file,
                                               const std::string &bind) {
  auto module = test::compileModel(context, file, Stage::fused, bind);
  if (!module || mlir::failed(test::scheduleKernels(*module)))
    return nullptr;
  return module;
}

/// The bundle's element type for `type`; nullopt for i1 (no kernel boundary
/// of the examples carries one).
std::optional<runtime::DType> dtypeOf(reference::ElementType type) {
  switch (type) {
  case reference::ElementType::f32:
    return runtime::DType::F32;
  case reference::ElementType::f64:
    return runtime::DType::F64;
  case reference::ElementType::i32:
    return runtime::DType::I32;
  case reference::ElementType::i64:
    return runtime::DType::I64;
  case reference::ElementType::i1:
    return std::nullopt;
  }
  return std::nullopt;
}

/// The inputs of `kernel`, every dynamic dimension `batch`, with seeds
/// `seed`, `seed` + 1, ...: their specs and the tensors generated from them;
/// false if an input has no bundle element type.
bool makeInputs(KernelOp kernel, int64_t batch, uint64_t seed,
                std::vector<InputSpec> &specs,
                std::vector<reference::Tensor> &tensors) {
  for (mlir::Value input : kernel.getInputs()) {
    auto type = llvm::cast<mlir::RankedTensorType>(input.getType());
    reference::ElementType element =
        *reference::elementTypeOf(type.getElementType());
    std::optional<runtime::DType> dtype = dtypeOf(element);
    if (!dtype)
      return false;
    InputSpec spec;
    spec.dtype = *dtype;
    spec.shape.assign(type.getShape().begin(), type.getShape().end());
    for (int64_t &dim : spec.shape)
      if (mlir::ShapedType::isDynamic(dim))
        dim = batch;
    spec.seed = seed + specs.size();
    reference::Tensor t(element, spec.shape);
    for (size_t e = 0; e < t.data.size(); ++e)
      t.data[e] = inputValue(spec, e);
    t.round();
    specs.push_back(std::move(spec));
    tensors.push_back(std::move(t));
  }
  return true;
}

/// `inputs` with every float element scaled by 1 + d, rounded to their
/// element type: d uniform in [-kPerturbation, kPerturbation) (random
/// stream `seed`), or, when `alternating`, kPerturbation for the even
/// inputs and -kPerturbation for the odd ones. Random moves miss a
/// cancellation when two terms happen to move alike; opposite moves of two
/// inputs always show the cancellation of their sum (an AdamW moment
/// `beta * v + g * g` near zero from random inputs).
std::vector<reference::Tensor> perturbed(std::vector<reference::Tensor> inputs,
                                         uint64_t seed, bool alternating) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    reference::Tensor &t = inputs[i];
    if (!reference::isFloat(t.type))
      continue;
    for (size_t e = 0; e < t.data.size(); ++e)
      t.data[e] *=
          1.0 +
          (alternating
               ? (i % 2 ? -kPerturbation : kPerturbation)
               : kPerturbation * (2.0 * runtime::uniform01(seed, i, e) - 1.0));
    t.round();
  }
  return inputs;
}

/// The safetensors form of a reference tensor (not i1: checked by the
/// caller).
runtime::TensorData toTensorData(const reference::Tensor &t, std::string name) {
  runtime::TensorData data;
  data.name = std::move(name);
  data.shape = t.shape;
  data.dtype = *dtypeOf(t.type);
  data.bytes.resize(t.data.size() * size_t(runtime::dtypeSize(data.dtype)));
  for (size_t i = 0; i < t.data.size(); ++i)
    runtime::storeElement(data.bytes.data(), data.dtype, i, t.data[i]);
  return data;
}

/// The widened tolerances of float result `ref` (Bundle.h), given its
/// values on perturbed inputs: a [n, 2] f64 tensor of (element index,
/// tolerance) rows, or nullopt when the base tolerance holds every
/// element's move.
std::optional<reference::Tensor>
conditionedTolerance(const reference::Tensor &ref,
                     const std::vector<const reference::Tensor *> &moved,
                     double atol, double rtol) {
  if (!reference::isFloat(ref.type))
    return std::nullopt;
  std::vector<double> rows;
  for (size_t i = 0; i < ref.data.size(); ++i) {
    double want = ref.data[i];
    if (!std::isfinite(want))
      continue; // NaN and infinities must match exactly
    double base = atol + rtol * std::fabs(want), move = 0;
    for (const reference::Tensor *other : moved) {
      double value = other->data[i];
      move = std::isfinite(value) ? std::max(move, std::fabs(value - want))
                                  : std::numeric_limits<double>::infinity();
    }
    if (kConditioningFactor * move > base) {
      rows.push_back(double(i));
      rows.push_back(base + kConditioningFactor * move);
    }
  }
  if (rows.empty())
    return std::nullopt;
  int64_t n = int64_t(rows.size() / 2);
  return reference::Tensor(reference::ElementType::f64, {n, 2},
                           std::move(rows));
}

/// `text` with every `from` replaced by `to`.
std::string replaceAll(std::string text, const std::string &from,
                       const std::string &to) {
  for (size_t at = 0; (at = text.find(from, at)) != std::string::npos;
       at += to.size())
    text.replace(at, from.size(), to);
  return text;
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
  bool dynamicOnly = variant.bind.empty();

  std::vector<std::pair<KernelOp, std::string>> kernels;
  int members = 0; // kernels inside a horizontal kernel: run as part of it
  module->walk([&](KernelOp kernel) {
    if (kernel->getParentOfType<KernelOp>())
      ++members;
    else
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
  // Per record, its CUDA C and C++ ("" for a kernel without them).
  std::vector<std::string> cudaSources, cppSources;
  // Each recorded kernel's code and input shapes, to find identical ones.
  std::map<std::string, size_t> recorded;
  reference::Executor executor({/*training=*/true, /*seed=*/kSeed});
  int generated = 0, identical = 0, staticOnly = 0, conditioned = 0;
  for (auto &[kernel, symbol] : kernels) {
    KernelRecord record;
    record.symbol = symbol;
    record.kind = stringifyKernelKind(kernel.getKind()).str();
    record.rtol = kRelativeTolerance;
    auto fail = [&](const std::string &why) {
      record.error = why;
      while (!record.error.empty() && record.error.back() == '\n')
        record.error.pop_back();
      records.push_back(record);
      cudaSources.emplace_back();
      cppSources.emplace_back();
    };

    diagnostics.clear();
    auto code = codegen::generateKernel(kernel, symbol, codegen::Target::cuda);
    if (failed(code)) {
      fail("not generated: " + diagnostics);
      continue;
    }
    auto cpp = codegen::generateKernel(kernel, symbol, codegen::Target::cpp);
    if (failed(cpp)) {
      fail("not generated for C++: " + diagnostics);
      continue;
    }
    if (dynamicOnly && code->dynamicDims.empty()) {
      ++staticOnly;
      continue;
    }
    std::vector<InputSpec> specs;
    std::vector<reference::Tensor> inputs;
    if (!makeInputs(kernel, variant.batch,
                    std::hash<std::string>()(variant.name + symbol) &
                        0xFFFFFFFF,
                    specs, inputs)) {
      fail("an i1 tensor crosses the kernel boundary (no BOOL in bundles)");
      continue;
    }
    std::string key = replaceAll(code->source, symbol, "@");
    for (const InputSpec &spec : specs)
      key += "\n" + formatShape(spec.shape);
    if (auto it = recorded.find(key); it != recorded.end()) {
      records[it->second].also.push_back(symbol);
      ++identical;
      continue;
    }
    record.inputs = specs;

    diagnostics.clear();
    auto expected = executor.runKernel(kernel, inputs);
    if (failed(expected)) {
      fail("the reference executor failed: " + diagnostics);
      continue;
    }
    bool storable = true;
    for (const reference::Tensor &t : *expected)
      storable &= dtypeOf(t.type).has_value();
    if (!storable) {
      fail("an i1 tensor crosses the kernel boundary (no BOOL in bundles)");
      continue;
    }
    record.accumulation = accumulationLength(kernel, inputs, *expected);
    record.atol = absoluteTolerance(record.accumulation);

    // Conditioning: the results on inputs moved by a few ulps.
    std::vector<std::vector<reference::Tensor>> moved;
    for (uint64_t run = 1; run <= 2; ++run) {
      auto again = executor.runKernel(kernel, perturbed(inputs, run, run == 2));
      if (failed(again))
        break;
      moved.push_back(std::move(*again));
    }
    if (moved.size() != 2) {
      fail("the reference executor failed on perturbed inputs: " + diagnostics);
      continue;
    }
    std::vector<runtime::TensorData> tensors;
    for (size_t r = 0; r < expected->size(); ++r) {
      std::string name = symbol + ".out" + std::to_string(r);
      tensors.push_back(toTensorData((*expected)[r], name));
      record.outputs.push_back(name);
      std::optional<reference::Tensor> tolerance =
          conditionedTolerance((*expected)[r], {&moved[0][r], &moved[1][r]},
                               record.atol, record.rtol);
      record.tolerances.emplace_back();
      if (tolerance) {
        record.tolerances.back() = symbol + ".tol" + std::to_string(r);
        tensors.push_back(toTensorData(*tolerance, record.tolerances.back()));
        ++conditioned;
      }
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
    for (runtime::TensorData &t : tensors)
      bundle.tensors.push_back(std::move(t));
    recorded.emplace(std::move(key), records.size());
    records.push_back(record);
    cudaSources.push_back(code->source);
    cppSources.push_back(cpp->source);
    ++generated;
  }

  // The programs; the CUDA one compile-checked for sm_90 when NVRTC is
  // here: a kernel NVRTC rejects is left out and recorded.
  auto program = [&](codegen::Target target,
                     const std::vector<std::string> &sources) {
    std::string text = "// " + bundle.metadata["kiln.model"] + "\n" +
                       codegen::preamble(target);
    for (const std::string &source : sources)
      text += source;
    return text;
  };
  if (runtime::nvrtcAvailable()) {
    runtime::CompileOptions options;
    options.arch = "sm_90";
    options.cacheDir = runtime::defaultCacheDir();
    if (!runtime::compileCuda(variant.name + ".cu",
                              program(codegen::Target::cuda, cudaSources),
                              options)
             .ok()) {
      std::string preamble = codegen::preamble(codegen::Target::cuda);
      for (size_t i = 0; i < records.size(); ++i) {
        if (cudaSources[i].empty())
          continue;
        auto alone = runtime::compileCuda(records[i].symbol + ".cu",
                                          preamble + cudaSources[i], options);
        if (!alone.ok()) {
          records[i].error = "NVRTC rejects it: " + alone.status().message();
          cudaSources[i].clear();
          cppSources[i].clear();
          --generated;
        }
      }
    }
  }

  for (size_t i = 0; i < records.size(); ++i)
    bundle.metadata[recordKey(i)] = formatRecord(records[i]);
  std::string base = outDir + "/" + variant.name;
  for (auto [extension, target, sources] :
       {std::tuple{".cu", codegen::Target::cuda, &cudaSources},
        std::tuple{".cpp", codegen::Target::cpp, &cppSources}}) {
    std::string text = program(target, *sources);
    if (runtime::Status status = runtime::writeFileAtomically(
            base + extension,
            {{reinterpret_cast<const uint8_t *>(text.data()), text.size()}});
        !status.ok()) {
      llvm::errs() << "cannot write " << base << extension << ": "
                   << status.message() << "\n";
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
  llvm::outs() << variant.name << ": " << kernels.size() << " kernels ("
               << members << " more inside horizontal ones), " << records.size()
               << " recorded (" << identical << " identical to a recorded one";
  if (dynamicOnly)
    llvm::outs() << ", " << staticOnly << " without a dynamic size";
  llvm::outs() << "), " << generated << " generated, " << conditioned
               << " results with ill-conditioned elements\n";
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
                  "[--batch N] [--dynamic-batch N] [--only MODEL,...]\n";
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

  // --only: a comma-separated list of models.
  auto selected = [&](const std::string &model) {
    return only.empty() ||
           ("," + only + ",").find("," + model + ",") != std::string::npos;
  };
  bool ok = true;
  for (const char *example :
       {"mlp", "logreg", "mlp_dropout", "cnn", "avgpool"}) {
    if (!selected(example))
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
  if (selected("gpt_tiny")) {
    std::string models = std::string(KILN_SOURCE_DIR) + "/test/models";
    ok &= writeBundle({"gpt_tiny", "gpt_tiny", "batch=4", 4}, models, outDir);
    ok &= writeBundle({"gpt_tiny", "gpt_tiny-dyn", "", 3}, models, outDir);
  }
  return ok ? 0 : 1;
}
