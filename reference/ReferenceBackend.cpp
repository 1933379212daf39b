//===- ReferenceBackend.cpp - the reference executor as a backend ---------===//

#include "reference/ReferenceBackend.h"

#include "ir/AttrNames.h"
#include "ir/KilnDialect.h"
#include "reference/Executor.h"
#include "runtime/ByteTable.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <cstring>
#include <map>

using namespace mlir;
using namespace kiln;
using namespace kiln::runtime;

namespace {

std::optional<DType> dtypeOf(Type type) {
  if (type.isF32())
    return DType::F32;
  if (type.isF64())
    return DType::F64;
  if (type.isInteger(32))
    return DType::I32;
  if (type.isInteger(64))
    return DType::I64;
  return std::nullopt;
}

reference::ElementType elementTypeOf(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return reference::ElementType::f32;
  case DType::F64:
    return reference::ElementType::f64;
  case DType::I32:
  case DType::U8:
    return reference::ElementType::i32;
  case DType::I64:
    return reference::ElementType::i64;
  }
  return reference::ElementType::f32;
}

/// Fills `spec` from a step function's argument or result of `type` with
/// attributes `attrs`: a symbolic dimension is the batch (per batch).
LogicalResult describe(Operation *where, Type type, DictionaryAttr attrs,
                       TensorSpec &spec, const std::string &what) {
  auto tensor = llvm::dyn_cast<RankedTensorType>(type);
  auto role = attrs ? attrs.getAs<StringAttr>(attrs::role) : StringAttr();
  auto name = attrs ? attrs.getAs<StringAttr>(attrs::name) : StringAttr();
  std::optional<DType> dtype =
      tensor ? dtypeOf(tensor.getElementType()) : std::nullopt;
  std::optional<Role> known =
      role ? parseRole(role.getValue()) : std::optional<Role>();
  if (!dtype || !known || !name)
    return where->emitError()
           << what << " has a type, role or name a step does not take";
  spec.role = *known;
  spec.name = name.str();
  spec.dtype = *dtype;
  spec.shape.clear();
  for (int64_t size : tensor.getShape())
    spec.shape.push_back(ShapedType::isDynamic(size) ? -1 : size);
  return success();
}

class ReferenceBackend final : public Backend {
public:
  ReferenceBackend(ModuleOp module, const Program &program)
      : compiled(program) {
    for (auto func : module.getOps<func::FuncOp>())
      if (auto kind = func->getAttrOfType<StringAttr>(attrs::step))
        functions[kind.str()] = func;
  }

  std::string description() const override {
    return "the reference executor (double precision)";
  }
  const Program &program() const override { return compiled; }
  double compileSeconds() const override { return 0; }
  bool compiledFromCache() const override { return false; }

  Status write(const std::string &name, const void *data,
               size_t bytes) override {
    const TensorSpec *spec = shared(name, bytes);
    if (!spec)
      return Status::error("no parameter or state '" + name + "' of " +
                           std::to_string(bytes) + " bytes");
    auto *p = static_cast<const uint8_t *>(data);
    values[name].assign(p, p + bytes);
    return Status::success();
  }
  Status read(const std::string &name, void *data, size_t bytes) override {
    auto it = values.find(name);
    if (!shared(name, bytes) || it == values.end())
      return Status::error("no parameter or state '" + name + "' of " +
                           std::to_string(bytes) + " bytes written");
    std::memcpy(data, it->second.data(), bytes);
    return Status::success();
  }
  Status setInput(const std::string &step, const std::string &name,
                  const void *data, size_t bytes) override {
    if (!input(step, name, bytes))
      return Status::error("step '" + step + "' has no input '" + name +
                           "' of " + std::to_string(bytes) + " bytes");
    auto *p = static_cast<const uint8_t *>(data);
    inputs[step][name].assign(p, p + bytes);
    return Status::success();
  }
  StatusOr<int> addByteTable(const uint8_t *bytes, size_t count,
                             const void *decode, size_t decodeBytes) override {
    return tables.add(bytes, count, decode, decodeBytes);
  }
  Status gatherInput(const std::string &step, const std::string &name,
                     int table, const int64_t *offsets, size_t rows,
                     size_t width) override {
    const ByteTable *t = tables.find(table);
    size_t size = t ? rows * width * t->elementBytes : 0;
    std::vector<uint8_t> gathered(size);
    if (Status s = tables.gather(
            table, offsets, rows, width,
            input(step, name, size) ? gathered.data() : nullptr, size,
            "step '" + step + "' has no input '" + name + "'");
        !s.ok())
      return s;
    inputs[step][name] = std::move(gathered);
    return Status::success();
  }

  Status run(const std::string &kind, uint64_t seed) override {
    const Step *step = compiled.step(kind);
    auto func = functions.find(kind);
    if (!step || func == functions.end())
      return Status::error("the program has no step '" + kind + "'");
    std::vector<reference::Tensor> args;
    for (const StepArgument &arg : step->arguments) {
      const std::vector<uint8_t> *bytes = arg.role == Role::input
                                              ? find(inputs[kind], arg.name)
                                              : find(values, arg.name);
      if (!bytes || bytes->size() != static_cast<size_t>(arg.bytes()))
        return Status::error("step '" + kind + "': '" + arg.name +
                             "' has not been set");
      reference::Tensor t(elementTypeOf(arg.dtype), arg.shape);
      for (size_t i = 0; i < t.data.size(); ++i)
        t.data[i] = elementAsDouble(bytes->data(), arg.dtype, i);
      args.push_back(std::move(t));
    }
    reference::Executor executor({/*training=*/kind == "train", seed});
    auto results = executor.run(func->second, args);
    if (failed(results))
      return Status::error("step '" + kind +
                           "' failed in the reference executor");
    Runs &runs = scalarRuns[kind];
    runs.previous = std::move(runs.last);
    runs.last.clear();
    for (auto [spec, tensor] : llvm::zip(step->results, *results)) {
      std::vector<uint8_t> bytes(static_cast<size_t>(spec.bytes()));
      for (size_t i = 0; i < tensor.data.size(); ++i)
        storeElement(bytes.data(), spec.dtype, i, tensor.data[i]);
      if (spec.role == Role::loss || spec.role == Role::metric)
        runs.last.push_back(tensor.data.empty() ? 0.0 : tensor.data[0]);
      else if (spec.role == Role::param || spec.role == Role::state)
        values[spec.name] = std::move(bytes);
      else
        outputs[kind][spec.name] = std::move(bytes);
    }
    ++runs.count;
    return Status::success();
  }
  Status scalars(const std::string &step, std::vector<double> &out,
                 unsigned runsAgo) override {
    const Runs &runs = scalarRuns[step];
    if (runsAgo > 1 || runs.count <= runsAgo)
      return Status::error("step '" + step + "' has no run " +
                           std::to_string(runsAgo) + " runs ago");
    out = runsAgo == 0 ? runs.last : runs.previous;
    return Status::success();
  }
  Status output(const std::string &step, const std::string &name, void *data,
                size_t bytes) override {
    const std::vector<uint8_t> *out = find(outputs[step], name);
    if (!out || out->size() != bytes)
      return Status::error("step '" + step + "' has no result '" + name +
                           "' of " + std::to_string(bytes) + " bytes");
    std::memcpy(data, out->data(), bytes);
    return Status::success();
  }
  Status synchronize() override { return Status::success(); }
  size_t memoryBytes() const override {
    size_t total = 0;
    for (const auto &[name, bytes] : values)
      total += bytes.size();
    return total + tables.bytes();
  }

private:
  using Tensors = std::map<std::string, std::vector<uint8_t>>;
  struct Runs {
    std::vector<double> last, previous;
    unsigned count = 0;
  };

  static const std::vector<uint8_t> *find(const Tensors &tensors,
                                          const std::string &name) {
    auto it = tensors.find(name);
    return it == tensors.end() ? nullptr : &it->second;
  }
  /// The parameter, state or hyper-parameter `name` of `bytes` bytes.
  const TensorSpec *shared(const std::string &name, size_t bytes) const {
    for (const Step &step : compiled.steps)
      for (const StepArgument &arg : step.arguments)
        if (arg.role != Role::input && arg.name == name &&
            static_cast<size_t>(arg.bytes()) == bytes)
          return &arg;
    return nullptr;
  }
  /// Input `name` of `step` of `bytes` bytes.
  const TensorSpec *input(const std::string &step, const std::string &name,
                          size_t bytes) const {
    const Step *s = compiled.step(step);
    if (s)
      for (const StepArgument &arg : s->arguments)
        if (arg.role == Role::input && arg.name == name &&
            static_cast<size_t>(arg.bytes()) == bytes)
          return &arg;
    return nullptr;
  }

  Program compiled;
  std::map<std::string, func::FuncOp> functions;
  Tensors values;
  std::map<std::string, Tensors> inputs, outputs;
  HostByteTables tables;
  std::map<std::string, Runs> scalarRuns;
};

} // namespace

FailureOr<Program> kiln::reference::describeSteps(ModuleOp module,
                                                  int64_t maxBatch) {
  Program program;
  for (auto func : module.getOps<func::FuncOp>()) {
    if (func->hasAttr(attrs::model) && program.model.empty())
      program.model = func.getSymName().str();
    auto kind = func->getAttrOfType<StringAttr>(attrs::step);
    if (!kind || (kind.getValue() != "train" && kind.getValue() != "eval" &&
                  kind.getValue() != "predict"))
      continue;
    Step step;
    step.kind = kind.str();
    step.function = func.getSymName().str();
    step.maxBatch = maxBatch;
    for (unsigned i = 0; i < func.getNumArguments(); ++i) {
      StepArgument arg;
      if (failed(describe(func, func.getArgumentTypes()[i],
                          func.getArgAttrDict(i), arg,
                          "argument " + std::to_string(i))))
        return failure();
      if (auto init = func.getArgAttrOfType<InitializerAttr>(i, attrs::init)) {
        arg.init.kind = stringifyInitKind(init.getKind()).str();
        arg.init.a = init.getA().convertToDouble();
        arg.init.b = init.getB().convertToDouble();
      }
      step.arguments.push_back(std::move(arg));
    }
    for (unsigned i = 0; i < func.getNumResults(); ++i) {
      StepResult result;
      if (failed(describe(func, func.getResultTypes()[i],
                          func.getResultAttrDict(i), result,
                          "result " + std::to_string(i))))
        return failure();
      // The executor returns every result; the buffer is a formality.
      result.buffer = {BufferRef::Kind::argument, 0};
      step.results.push_back(std::move(result));
    }
    program.steps.push_back(std::move(step));
  }
  return program;
}

std::unique_ptr<Backend>
kiln::reference::createReferenceBackend(ModuleOp module,
                                        const Program &program) {
  return std::make_unique<ReferenceBackend>(module, program);
}
