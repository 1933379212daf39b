//===- StepCodegen.cpp - a planned module as source plus a program --------===//

#include "codegen/StepCodegen.h"

#include "codegen/CodegenUtils.h"
#include "ir/AttrNames.h"
#include "ir/BatchSizes.h"
#include "ir/Schedules.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Path.h"

#include <map>
#include <set>

#include <cctype>
#include <cstdlib>

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

namespace {

std::optional<runtime::DType> dtypeOf(Type type) {
  if (type.isF32())
    return runtime::DType::F32;
  if (type.isF64())
    return runtime::DType::F64;
  if (type.isInteger(32))
    return runtime::DType::I32;
  if (type.isInteger(64))
    return runtime::DType::I64;
  return std::nullopt;
}

/// Fills `spec` from a function argument or result `value` (its type and
/// `attrs`); its sizes per batch in a step with a run-time batch.
LogicalResult describe(Operation *where, Value value, DictionaryAttr attrs,
                       const BatchSizes *batch, runtime::TensorSpec &spec,
                       llvm::StringRef what) {
  auto tensor = llvm::dyn_cast<RankedTensorType>(value.getType());
  auto role = attrs ? attrs.getAs<StringAttr>(attrs::role) : StringAttr();
  auto name = attrs ? attrs.getAs<StringAttr>(attrs::name) : StringAttr();
  if (!tensor || (!batch && !tensor.hasStaticShape()))
    return where->emitError() << what << " needs a static shape (bind the "
                              << "symbolic dimensions)";
  auto dtype = dtypeOf(tensor.getElementType());
  if (!dtype)
    return where->emitError()
           << what << " has an element type the runtime does not support: "
           << tensor.getElementType();
  if (!role || !name)
    return where->emitError() << what << " has no kiln.role or kiln.name";
  std::optional<runtime::Role> known = runtime::parseRole(role.getValue());
  if (!known)
    return where->emitError() << what << " has the role '" << role.getValue()
                              << "', which a step does not have";
  spec.role = *known;
  spec.name = name.str();
  spec.dtype = *dtype;
  llvm::ArrayRef<int64_t> shape =
      batch ? batch->perBatchShape(value) : tensor.getShape();
  spec.shape.assign(shape.begin(), shape.end());
  return success();
}

std::string identifier(llvm::StringRef name) {
  std::string id;
  for (char c : name)
    id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  if (id.empty() || std::isdigit(static_cast<unsigned char>(id[0])))
    id = "k_" + id;
  return id;
}

/// The text of a schedule attribute, as the IR prints it.
std::string attributeText(Attribute attr) {
  std::string text;
  llvm::raw_string_ostream os(text);
  attr.print(os);
  return text;
}

/// Where the ops of `kernel` come from, per file: `mlp.kiln:7,8,12`.
std::string sourceLines(KernelOp kernel) {
  std::map<std::string, std::set<unsigned>> lines;
  kernel.getBlock().walk([&](Operation *op) {
    Location loc = op->getLoc();
    while (auto site = llvm::dyn_cast<CallSiteLoc>(loc))
      loc = site.getCallee();
    if (auto file = llvm::dyn_cast<FileLineColLoc>(loc))
      lines[llvm::sys::path::filename(file.getFilename().getValue()).str()]
          .insert(file.getLine());
  });
  std::string text;
  for (auto &[file, numbers] : lines) {
    text += (text.empty() ? "" : " ") + file + ":";
    bool first = true;
    for (unsigned line : numbers) {
      text += (first ? "" : ",") + std::to_string(line);
      first = false;
    }
  }
  return text;
}

class ProgramBuilder {
public:
  LogicalResult addStep(func::FuncOp func, llvm::StringRef kind);
  GeneratedProgram finish() { return std::move(result); }

private:
  /// `kernel`'s code for the GPU (its symbol, launch and parameters hold for
  /// the CPU's code too), generating both unless an identical kernel was
  /// generated before.
  FailureOr<const GeneratedKernel *> kernelFor(KernelOp kernel);

  /// Records `kernel` (generated as `generated`) in the program's kernels,
  /// rendering its candidate schedules, or adds its key to the record of an
  /// identical kernel.
  LogicalResult describeKernel(KernelOp kernel,
                               const GeneratedKernel &generated);

  /// Adds `kernel`, a collective, to `step` as a collective launch on the
  /// buffers `where` gives its inputs; its results go in place (offset -1)
  /// or at their offsets, and into `where`.
  LogicalResult addCollective(KernelOp kernel, ArrayRef<int64_t> offsets,
                              const BatchSizes *sizes,
                              llvm::DenseMap<Value, runtime::BufferRef> &where,
                              runtime::Step &step);

  GeneratedProgram result;
  /// Generated kernels by their code (generated with a fixed symbol).
  llvm::StringMap<GeneratedKernel> byCode;
  /// Each generated kernel's record in result.program.kernels.
  llvm::StringMap<size_t> recordOf;
  llvm::StringMap<unsigned> namesUsed;
};

FailureOr<const GeneratedKernel *> ProgramBuilder::kernelFor(KernelOp kernel) {
  FailureOr<GeneratedKernel> cuda =
      generateKernel(kernel, "kiln_kernel", Target::cuda);
  FailureOr<GeneratedKernel> cpp =
      generateKernel(kernel, "kiln_kernel", Target::cpp);
  if (failed(cuda) || failed(cpp))
    return failure();
  std::string key = cuda->source + '\0' + cpp->source;
  auto it = byCode.find(key);
  if (it != byCode.end()) {
    if (failed(describeKernel(kernel, it->second)))
      return failure();
    return &it->second;
  }
  std::string symbol = identifier(kernel.getName());
  unsigned &uses = namesUsed[symbol];
  if (uses++)
    symbol += "_" + std::to_string(uses - 1);
  cuda = generateKernel(kernel, symbol, Target::cuda);
  cpp = generateKernel(kernel, symbol, Target::cpp);
  if (failed(cuda) || failed(cpp))
    return failure();
  result.cudaSource +=
      std::string("\n") + runtime::kKernelMarker + cuda->source;
  result.cppSource += std::string("\n") + runtime::kKernelMarker + cpp->source;
  ++result.kernels;
  const GeneratedKernel *generated =
      &byCode.insert({key, std::move(*cuda)}).first->second;
  if (failed(describeKernel(kernel, *generated)))
    return failure();
  return generated;
}

LogicalResult ProgramBuilder::describeKernel(KernelOp kernel,
                                             const GeneratedKernel &generated) {
  std::string key = scheduleKey(kernel);
  auto [at, fresh] =
      recordOf.try_emplace(generated.symbol, result.program.kernels.size());
  if (!fresh) {
    std::vector<std::string> &keys = result.program.kernels[at->second].keys;
    if (llvm::find(keys, key) == keys.end())
      keys.push_back(key);
    return success();
  }
  runtime::KernelInfo info;
  info.symbol = generated.symbol;
  info.keys.push_back(key);
  info.source = sourceLines(kernel);
  if (Attribute cuda = getSchedule(kernel, kCudaTarget))
    info.cudaSchedule = attributeText(cuda);
  if (Attribute cpu = getSchedule(kernel, kCpuTarget))
    info.cpuSchedule = attributeText(cpu);
  // Each candidate rendered with the kernel's schedule swapped for it.
  auto candidates = kernel->getAttrOfType<DictionaryAttr>(attrs::candidates);
  for (auto [name, target] :
       {std::pair{kCudaTarget, Target::cuda}, {kCpuTarget, Target::cpp}}) {
    auto list = candidates ? candidates.getAs<ArrayAttr>(name) : ArrayAttr();
    if (!list)
      continue;
    Attribute chosen = getSchedule(kernel, name);
    std::string &source =
        target == Target::cuda ? result.cudaCandidates : result.cppCandidates;
    for (auto [i, schedule] : llvm::enumerate(list)) {
      runtime::KernelCandidate c;
      c.target = name.str();
      c.symbol = generated.symbol + "__" + name.str() + std::to_string(i + 1);
      c.schedule = attributeText(schedule);
      setSchedule(kernel, name, schedule);
      FailureOr<GeneratedKernel> variant =
          generateKernel(kernel, c.symbol, target);
      setSchedule(kernel, name, chosen);
      if (failed(variant))
        return failure();
      auto sameDim = [](const DynamicDim &a, const DynamicDim &b) {
        return a.operand == b.operand && a.dim == b.dim;
      };
      if (!llvm::equal(variant->dynamicDims, generated.dynamicDims, sameDim) ||
          variant->takesSeed != generated.takesSeed)
        return kernel.emitError("candidate schedule ")
               << schedule << " changes the kernel's parameters";
      // The CPU ignores launch configurations: a C++ candidate has none.
      for (int d = 0; d < 3 && target == Target::cuda; ++d) {
        c.grid[d] = variant->launch.grid[d];
        // A fixed extent as its number (the program's text of a fixed one).
        if (c.grid[d].dynamicFactors.empty())
          c.grid[d] = {c.grid[d].evaluate(std::vector<int64_t>()), {}, 1};
        c.block[d] = variant->launch.block[d];
      }
      c.sharedBytes = variant->launch.sharedBytes;
      if (source.empty())
        source = preamble(target);
      source += std::string("\n") + runtime::kKernelMarker + variant->source;
      info.candidates.push_back(std::move(c));
    }
  }
  result.program.kernels.push_back(std::move(info));
  return success();
}

LogicalResult ProgramBuilder::addCollective(
    KernelOp kernel, ArrayRef<int64_t> offsets, const BatchSizes *sizes,
    llvm::DenseMap<Value, runtime::BufferRef> &where, runtime::Step &step) {
  auto reduce = llvm::cast<AllReduceOp>(kernel.getBlock().front());
  runtime::Launch launch;
  launch.collective = reduce.getKind() == AllReduceKind::sum
                          ? runtime::Collective::allReduceSum
                          : runtime::Collective::allReduceMean;
  SmallVector<runtime::BufferRef> results;
  for (auto [k, input] : llvm::enumerate(kernel.getInputs())) {
    auto type = llvm::cast<RankedTensorType>(input.getType());
    std::optional<runtime::DType> dtype = dtypeOf(type.getElementType());
    if (!dtype || (k > 0 && *dtype != launch.dtype))
      return kernel.emitError("a collective reduces tensors of one float "
                              "type the runtime supports");
    launch.dtype = *dtype;
    auto it = where.find(input);
    if (it == where.end())
      return kernel.emitError("an input that no earlier kernel computes");
    launch.buffers.push_back(it->second);
    // In place (offset -1): the result is the input's buffer.
    results.push_back(
        offsets[k] >= 0
            ? runtime::BufferRef{runtime::BufferRef::Kind::arena, offsets[k]}
            : it->second);
    // The elements, per batch (negative) when a size is.
    ArrayRef<int64_t> shape =
        sizes ? sizes->perBatchShape(input) : type.getShape();
    int64_t elements = 1;
    bool perBatch = false;
    for (int64_t size : shape) {
      if (ShapedType::isDynamic(size))
        return kernel.emitError("a dynamic size in a planned step");
      perBatch |= runtime::isPerBatch(size);
      elements *= std::abs(size);
    }
    launch.dims.push_back(perBatch ? -elements : elements);
  }
  for (auto [value, ref] : llvm::zip(kernel.getResults(), results)) {
    launch.buffers.push_back(ref);
    where[value] = ref;
  }
  step.launches.push_back(std::move(launch));
  return success();
}

LogicalResult ProgramBuilder::addStep(func::FuncOp func, llvm::StringRef kind) {
  auto arena = func->getAttrOfType<IntegerAttr>(attrs::arenaBytes);
  if (!arena)
    return func.emitError("code generation needs the memory plan: run "
                          "kiln-plan-memory first");
  runtime::Step step;
  step.kind = kind.str();
  step.function = func.getSymName().str();
  step.arenaBytes = arena.getInt();
  // A step with a run-time batch: every size as a function of the batch.
  std::optional<BatchSizes> batch;
  if (auto maxBatch = func->getAttrOfType<IntegerAttr>(attrs::maxBatch)) {
    step.maxBatch = maxBatch.getInt();
    FailureOr<BatchSizes> sizes = BatchSizes::analyze(func, step.maxBatch);
    if (failed(sizes))
      return failure();
    batch = std::move(*sizes);
  }
  const BatchSizes *sizes = batch ? &*batch : nullptr;

  llvm::DenseMap<Value, runtime::BufferRef> where;
  for (BlockArgument arg : func.getArguments()) {
    runtime::StepArgument spec;
    if (failed(describe(func, arg, func.getArgAttrDict(arg.getArgNumber()),
                        sizes, spec,
                        "argument " + std::to_string(arg.getArgNumber()))))
      return failure();
    if (auto init = func.getArgAttrOfType<InitializerAttr>(arg.getArgNumber(),
                                                           attrs::init)) {
      spec.init.kind = stringifyInitKind(init.getKind()).str();
      spec.init.a = init.getA().convertToDouble();
      spec.init.b = init.getB().convertToDouble();
    }
    step.arguments.push_back(std::move(spec));
    where[arg] = {runtime::BufferRef::Kind::argument, arg.getArgNumber()};
  }

  for (Operation &op : func.getBody().front()) {
    if (auto ret = llvm::dyn_cast<func::ReturnOp>(op)) {
      for (auto [i, value] : llvm::enumerate(ret.getOperands())) {
        runtime::StepResult spec;
        if (failed(describe(func, value, func.getResultAttrDict(i), sizes, spec,
                            "result " + std::to_string(i))))
          return failure();
        auto it = where.find(value);
        if (it == where.end())
          return ret.emitError("a step result that no kernel computes");
        spec.buffer = it->second;
        step.results.push_back(std::move(spec));
      }
      continue;
    }
    auto kernel = llvm::dyn_cast<KernelOp>(op);
    if (!kernel)
      return op.emitError("code generation expects every op of a step in a "
                          "kiln.kernel (run kiln-fuse)");
    if (kernel->hasAttr(attrs::view)) {
      // The input's buffer, read in the result's shape: nothing to run.
      auto it = where.find(kernel.getInputs().front());
      if (it == where.end())
        return kernel.emitError("an input that no earlier kernel computes");
      // A copy: inserting the result may grow the map and free `it`.
      runtime::BufferRef input = it->second;
      where[kernel->getResult(0)] = input;
      continue;
    }
    auto offsets = kernel->getAttrOfType<DenseI64ArrayAttr>(attrs::offsets);
    auto inPlace = kernel->getAttrOfType<DenseI64ArrayAttr>(attrs::inPlace);
    if (!offsets || offsets.size() != int64_t(kernel.getNumResults()))
      return kernel.emitError("kernel without a memory plan");
    if (kernel.getKind() == KernelKind::collective) {
      if (failed(addCollective(kernel, offsets, sizes, where, step)))
        return failure();
      continue;
    }
    FailureOr<const GeneratedKernel *> generated = kernelFor(kernel);
    if (failed(generated))
      return failure();
    runtime::Launch launch;
    launch.kernel = (*generated)->symbol;
    launch.takesSeed = (*generated)->takesSeed;
    SmallVector<Value> operands(kernel.getInputs());
    for (Value input : kernel.getInputs()) {
      auto it = where.find(input);
      if (it == where.end())
        return kernel.emitError("an input that no earlier kernel computes");
      launch.buffers.push_back(it->second);
    }
    for (auto [k, value] : llvm::enumerate(kernel.getResults())) {
      runtime::BufferRef ref;
      if (offsets[k] >= 0) {
        ref = {runtime::BufferRef::Kind::arena, offsets[k]};
      } else {
        if (!inPlace || inPlace[k] < 0)
          return kernel.emitError("result ")
                 << k << " has neither an offset nor an argument";
        ref = {runtime::BufferRef::Kind::argument, inPlace[k]};
      }
      launch.buffers.push_back(ref);
      where[value] = ref;
      operands.push_back(value);
    }
    bool perBatch = false;
    for (const DynamicDim &d : (*generated)->dynamicDims) {
      Value operand = operands[d.operand];
      int64_t size = sizes ? sizes->perBatchShape(operand)[d.dim]
                           : llvm::cast<RankedTensorType>(operand.getType())
                                 .getDimSize(d.dim);
      if (ShapedType::isDynamic(size))
        return kernel.emitError("a dynamic size in a planned step");
      perBatch |= runtime::isPerBatch(size);
      launch.dims.push_back(size);
    }
    // Grid extents are numbers once the sizes are; else formulas of them.
    const LaunchConfig &config = (*generated)->launch;
    for (int i = 0; i < 3; ++i) {
      launch.grid[i] = config.grid[i];
      if (!perBatch || config.grid[i].dynamicFactors.empty())
        launch.grid[i] = {config.grid[i].evaluate(launch.dims), {}, 1};
      launch.block[i] = config.block[i];
    }
    launch.sharedBytes = config.sharedBytes;
    step.launches.push_back(std::move(launch));
    ++result.launches;
  }
  result.program.steps.push_back(std::move(step));
  return success();
}

} // namespace

FailureOr<GeneratedProgram>
kiln::codegen::generateProgram(ArrayRef<StepSource> sources) {
  ProgramBuilder builder;
  std::string model;
  for (const StepSource &source : sources) {
    ModuleOp module = source.module;
    bool found = false;
    for (auto func : module.getOps<func::FuncOp>()) {
      if (func->hasAttr(attrs::model) && model.empty())
        model = func.getSymName().str();
      auto kind = func->getAttrOfType<StringAttr>(attrs::step);
      if (!kind || kind.getValue() != source.kind)
        continue;
      found = true;
      if (failed(builder.addStep(func, kind.getValue())))
        return failure();
    }
    if (!found)
      return module.emitError("no '")
             << source.kind << "' step function to generate (kiln.step)";
  }
  GeneratedProgram result = builder.finish();
  result.program.model = model;
  result.cudaSource = preamble(Target::cuda) + result.cudaSource;
  result.cppSource = preamble(Target::cpp) + result.cppSource;
  return result;
}

FailureOr<GeneratedProgram> kiln::codegen::generateProgram(ModuleOp module) {
  // The steps a runtime runs (the predict step only for a model with
  // outputs); the gradient function is part of the training step.
  SmallVector<StepSource> sources;
  for (auto func : module.getOps<func::FuncOp>())
    if (auto kind = func->getAttrOfType<StringAttr>(attrs::step))
      if (kind.getValue() == "train" || kind.getValue() == "eval" ||
          kind.getValue() == "predict")
        sources.push_back({module, kind.str()});
  if (sources.empty())
    return module.emitError("no step function to generate (kiln.step)");
  return generateProgram(sources);
}
