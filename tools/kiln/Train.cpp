//===- Train.cpp - `kiln train`: train a model on the CPU -----------------===//
//
// Compiles a model file to its training and eval steps and runs them with
// the reference executor on Fashion-MNIST:
//
//   1. initialize parameters from their `#kiln.init` (or --resume);
//   2. per epoch, shuffle (seeded by seed and epoch), run the train step on
//      each batch, show a progress bar with loss and samples/s;
//   3. evaluate on the test set, print and log (JSON lines) the epoch's
//      figures, and save a safetensors checkpoint atomically.
//
// The model's first float input receives the images (any shape with 784
// elements per example, e.g. f32[batch, 784] or f32[batch, 1, 28, 28]) and
// its first integer input the labels.
//
//===----------------------------------------------------------------------===//

#include "tools/kiln/Driver.h"

#include "ir/AttrNames.h"
#include "ir/KilnDialect.h"
#include "reference/Executor.h"
#include "runtime/Dataset.h"
#include "runtime/Initializers.h"
#include "runtime/Progress.h"
#include "runtime/Safetensors.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cmath>
#include <cstring>

namespace cl = llvm::cl;
using namespace kiln;
using namespace kiln::driver;
using reference::ElementType;
using reference::Tensor;

namespace {

cl::SubCommand &command() {
  static cl::SubCommand train("train", "Train a model on Fashion-MNIST (CPU)");
  return train;
}

cl::opt<std::string> modelFile(cl::Positional, cl::desc("<model.kiln>"),
                               cl::Required, cl::sub(command()),
                               cl::cat(category()));
cl::opt<int64_t> epochs("epochs", cl::desc("Epochs to train (default 3)"),
                        cl::init(3), cl::sub(command()), cl::cat(category()));
cl::opt<int64_t> batchSize("batch", cl::desc("Batch size (default 128)"),
                           cl::init(128), cl::sub(command()),
                           cl::cat(category()));
cl::opt<uint64_t> seed("seed",
                       cl::desc("Seed of initialization, shuffling "
                                "and dropout (default 0)"),
                       cl::init(0), cl::sub(command()), cl::cat(category()));
cl::opt<std::string> dataDir("data", cl::desc("Fashion-MNIST directory"),
                             cl::init(runtime::kDefaultFashionMnistDir),
                             cl::sub(command()), cl::cat(category()));
cl::opt<std::string> resumeFrom("resume",
                                cl::desc("Resume from this checkpoint"),
                                cl::value_desc("file"), cl::sub(command()),
                                cl::cat(category()));
cl::opt<std::string>
    savePath("save",
             cl::desc("Checkpoint written after every epoch (default: "
                      "<model>.safetensors; 'none' to skip)"),
             cl::value_desc("file"), cl::sub(command()), cl::cat(category()));
cl::opt<std::string>
    logPath("log",
            cl::desc("Per-epoch metrics as JSON lines (default: "
                     "<model>.metrics.jsonl; 'none' to skip)"),
            cl::value_desc("file"), cl::sub(command()), cl::cat(category()));
cl::opt<int64_t> trainLimit("train-examples",
                            cl::desc("Use only the first N training examples"),
                            cl::init(0), cl::sub(command()),
                            cl::cat(category()));
cl::opt<int64_t> testLimit("test-examples",
                           cl::desc("Use only the first N test examples"),
                           cl::init(0), cl::sub(command()),
                           cl::cat(category()));

cl::opt<bool> noFuse("no-fuse",
                     cl::desc("Run the step unfused (for checking fusion)"),
                     cl::sub(command()), cl::cat(category()));

using Clock = std::chrono::steady_clock;
double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// One argument or result of a step function: its role, name and type.
struct Slot {
  std::string role, name;
  mlir::RankedTensorType type;
};

std::vector<Slot> argumentSlots(mlir::func::FuncOp f) {
  std::vector<Slot> slots;
  for (unsigned i = 0; i < f.getNumArguments(); ++i) {
    auto role = f.getArgAttrOfType<mlir::StringAttr>(i, attrs::role);
    auto name = f.getArgAttrOfType<mlir::StringAttr>(i, attrs::name);
    slots.push_back(
        {role ? role.str() : "", name ? name.str() : "",
         llvm::cast<mlir::RankedTensorType>(f.getArgumentTypes()[i])});
  }
  return slots;
}

std::vector<Slot> resultSlots(mlir::func::FuncOp f) {
  std::vector<Slot> slots;
  for (unsigned i = 0; i < f.getNumResults(); ++i) {
    auto role = f.getResultAttrOfType<mlir::StringAttr>(i, attrs::role);
    auto name = f.getResultAttrOfType<mlir::StringAttr>(i, attrs::name);
    slots.push_back(
        {role ? role.str() : "", name ? name.str() : "",
         llvm::cast<mlir::RankedTensorType>(f.getResultTypes()[i])});
  }
  return slots;
}

std::vector<int64_t> staticShape(mlir::RankedTensorType type, int64_t batch) {
  std::vector<int64_t> shape(type.getShape().begin(), type.getShape().end());
  for (int64_t &d : shape)
    if (mlir::ShapedType::isDynamic(d))
      d = batch;
  return shape;
}

std::string checkpointName(const Slot &slot) {
  return runtime::checkpointName(slot.role, slot.name);
}

runtime::TensorData toTensorData(const std::string &name, const Tensor &t) {
  runtime::TensorData data;
  data.name = name;
  data.shape = t.shape;
  switch (t.type) {
  case ElementType::f32:
    data.dtype = runtime::DType::F32;
    break;
  case ElementType::f64:
    data.dtype = runtime::DType::F64;
    break;
  case ElementType::i32:
  case ElementType::i1:
    data.dtype = runtime::DType::I32;
    break;
  case ElementType::i64:
    data.dtype = runtime::DType::I64;
    break;
  }
  data.bytes.resize(t.data.size() * runtime::dtypeSize(data.dtype));
  for (size_t i = 0; i < t.data.size(); ++i)
    runtime::storeElement(data.bytes.data(), data.dtype, i, t.data[i]);
  return data;
}

/// Reads a checkpoint tensor into `t`, which has the expected type and shape.
bool fromTensorData(const runtime::TensorData &data, Tensor &t,
                    std::string &error) {
  if (data.shape != t.shape) {
    error = "'" + data.name + "' has shape " +
            reference::formatShape(data.shape) + ", the model expects " +
            reference::formatShape(t.shape);
    return false;
  }
  auto read = [&] {
    if (data.bytes.size() !=
        t.data.size() * size_t(runtime::dtypeSize(data.dtype)))
      return false;
    for (size_t i = 0; i < t.data.size(); ++i)
      t.data[i] = runtime::elementAsDouble(data.bytes.data(), data.dtype, i);
    return true;
  };
  bool ok = false;
  switch (data.dtype) {
  case runtime::DType::F32:
    ok = t.type == ElementType::f32 && read();
    break;
  case runtime::DType::F64:
    ok = t.type == ElementType::f64 && read();
    break;
  case runtime::DType::I32:
    ok = (t.type == ElementType::i32 || t.type == ElementType::i1) && read();
    break;
  case runtime::DType::I64:
    ok = t.type == ElementType::i64 && read();
    break;
  case runtime::DType::U8: // a data set's type, never a model tensor's
    break;
  }
  if (!ok)
    error = "'" + data.name + "' has dtype " + runtime::dtypeName(data.dtype) +
            ", the model expects " + reference::spell(t.type).str();
  return ok;
}

/// Fills the image and label inputs of `args` from a batch.
void feed(const runtime::Batch &batch, const std::vector<Slot> &slots,
          int imageArg, int labelArg, std::vector<Tensor> &args) {
  Tensor &x = args[imageArg];
  x = Tensor(*reference::elementTypeOf(slots[imageArg].type.getElementType()),
             staticShape(slots[imageArg].type, batch.size));
  for (size_t i = 0; i < batch.images.size(); ++i)
    x.data[i] = reference::roundTo(x.type, batch.images[i]);
  Tensor &y = args[labelArg];
  y = Tensor(*reference::elementTypeOf(slots[labelArg].type.getElementType()),
             staticShape(slots[labelArg].type, batch.size));
  for (size_t i = 0; i < batch.labels.size(); ++i)
    y.data[i] = batch.labels[i];
}

class Trainer {
public:
  Trainer(mlir::func::FuncOp trainStep, mlir::func::FuncOp evalStep)
      : trainStep(trainStep), evalStep(evalStep),
        trainArgs(argumentSlots(trainStep)),
        trainResults(resultSlots(trainStep)), evalArgs(argumentSlots(evalStep)),
        evalResults(resultSlots(evalStep)) {}

  int run();

private:
  /// Finds the image and label inputs; false if the model cannot take
  /// Fashion-MNIST.
  bool findInputs(const std::vector<Slot> &slots, int &image, int &label);
  int initialize();
  int resume(int64_t &startEpoch);
  /// The model's name: `mlp` for @mlp_train_step.
  std::string modelName() {
    return trainStep.getSymName().drop_back(strlen("_train_step")).str();
  }
  int save(int64_t epochsDone);
  /// Runs the eval step over `data`: mean loss and metrics.
  llvm::FailureOr<std::vector<double>>
  evaluate(const runtime::ImageDataset &data);

  mlir::func::FuncOp trainStep, evalStep;
  std::vector<Slot> trainArgs, trainResults, evalArgs, evalResults;
  /// The train step's argument values: params, state, then inputs.
  std::vector<Tensor> state;
  int imageArg = -1, labelArg = -1;
};

bool Trainer::findInputs(const std::vector<Slot> &slots, int &image,
                         int &label) {
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].role != "input")
      continue;
    mlir::Type element = slots[i].type.getElementType();
    if (image < 0 && llvm::isa<mlir::FloatType>(element))
      image = static_cast<int>(i);
    else if (label < 0 && llvm::isa<mlir::IntegerType>(element) &&
             !element.isInteger(1))
      label = static_cast<int>(i);
  }
  if (image < 0 || label < 0)
    return false;
  auto type = slots[image].type;
  int64_t perExample = 1;
  for (int64_t d : type.getShape().drop_front())
    perExample *= d;
  return type.getRank() >= 2 && type.isDynamicDim(0) &&
         !type.isDynamicDim(type.getRank() - 1) && perExample == 28 * 28 &&
         slots[label].type.getRank() == 1;
}

int Trainer::initialize() {
  state.assign(trainArgs.size(), Tensor());
  for (size_t i = 0; i < trainArgs.size(); ++i) {
    const Slot &slot = trainArgs[i];
    if (slot.role == "input")
      continue;
    auto element = reference::elementTypeOf(slot.type.getElementType());
    if (!element || !slot.type.hasStaticShape())
      return fail(kModelError,
                  "cannot train '" + slot.name + "': unsupported type");
    Tensor t(*element, staticShape(slot.type, 0));
    if (slot.role == "param" || slot.role == "hyper") {
      auto init = trainStep.getArgAttrOfType<InitializerAttr>(i, attrs::init);
      if (!init ||
          !runtime::initialize(stringifyInitKind(init.getKind()).str(),
                               init.getA().convertToDouble(),
                               init.getB().convertToDouble(), t.shape, seed,
                               /*stream=*/i, t.data))
        return fail(kModelError, "'" + slot.name + "' has no initializer");
      t.round();
    }
    state[i] = std::move(t);
  }
  return kSuccess;
}

int Trainer::resume(int64_t &startEpoch) {
  auto checkpoint = runtime::readSafetensors(resumeFrom);
  if (!checkpoint.ok())
    return fail(kIOError, checkpoint.status().message());
  std::map<std::string, const runtime::TensorData *> byName;
  for (const runtime::TensorData &t : checkpoint->tensors)
    byName[t.name] = &t;
  for (size_t i = 0; i < trainArgs.size(); ++i) {
    if (!runtime::isCheckpointed(trainArgs[i].role))
      continue;
    std::string name = checkpointName(trainArgs[i]);
    auto it = byName.find(name);
    if (it == byName.end())
      return fail(kIOError, resumeFrom + ": has no tensor '" + name + "'");
    std::string error;
    if (!fromTensorData(*it->second, state[i], error))
      return fail(kIOError, resumeFrom + ": " + error);
  }
  auto epoch = checkpoint->metadata.find("epoch");
  if (epoch == checkpoint->metadata.end() ||
      llvm::StringRef(epoch->second).getAsInteger(10, startEpoch))
    return fail(kIOError, resumeFrom + ": no 'epoch' in its metadata");
  return kSuccess;
}

int Trainer::save(int64_t epochsDone) {
  if (savePath == "none")
    return kSuccess;
  runtime::Checkpoint checkpoint;
  for (size_t i = 0; i < trainArgs.size(); ++i)
    if (runtime::isCheckpointed(trainArgs[i].role))
      checkpoint.tensors.push_back(
          toTensorData(checkpointName(trainArgs[i]), state[i]));
  checkpoint.metadata["format"] = "kiln";
  checkpoint.metadata["model"] = modelFile;
  checkpoint.metadata["epoch"] = std::to_string(epochsDone);
  checkpoint.metadata["seed"] = std::to_string(seed);
  std::string path =
      savePath.empty() ? modelName() + ".safetensors" : savePath.getValue();
  runtime::Status status = runtime::writeSafetensors(path, checkpoint);
  if (!status.ok())
    return fail(kIOError, status.message());
  return kSuccess;
}

llvm::FailureOr<std::vector<double>>
Trainer::evaluate(const runtime::ImageDataset &data) {
  reference::Executor executor({/*training=*/false, seed});
  runtime::BatchIterator batches(data, 1000, seed, /*shuffle=*/false);
  std::vector<Tensor> args(evalArgs.size());
  int image = -1, label = -1;
  findInputs(evalArgs, image, label);
  // The eval step takes the parameters (by name) and the inputs.
  for (size_t i = 0; i < evalArgs.size(); ++i)
    for (size_t j = 0; j < trainArgs.size(); ++j)
      if (evalArgs[i].role == "param" && trainArgs[j].role == "param" &&
          trainArgs[j].name == evalArgs[i].name)
        args[i] = state[j];
  std::vector<double> sums(evalResults.size(), 0.0);
  runtime::Batch batch;
  int64_t seen = 0;
  while (batches.next(batch)) {
    feed(batch, evalArgs, image, label, args);
    auto results = executor.run(evalStep, args);
    if (mlir::failed(results))
      return mlir::failure();
    for (size_t k = 0; k < sums.size(); ++k)
      sums[k] += (*results)[k].data[0] * batch.size;
    seen += batch.size;
  }
  for (double &s : sums)
    s /= std::max<int64_t>(seen, 1);
  return sums;
}

int Trainer::run() {
  if (!findInputs(trainArgs, imageArg, labelArg))
    return fail(kModelError,
                "kiln train feeds Fashion-MNIST: the model needs a float "
                "input with a symbolic batch dimension and 784 values per "
                "example, and an integer label input of shape [batch]");
  if (epochs < 0 || batchSize < 1)
    return fail(kUsageError, "--epochs must be >= 0 and --batch >= 1");

  auto data = runtime::loadFashionMnist(dataDir);
  if (!data.ok())
    return fail(kIOError, data.status().message() +
                              " (install the Debian package "
                              "dataset-fashion-mnist, or pass --data DIR)");
  if (trainLimit > 0)
    data->train = data->train.subset(trainLimit);
  if (testLimit > 0)
    data->test = data->test.subset(testLimit);

  if (int code = initialize())
    return code;
  int64_t startEpoch = 0;
  if (!resumeFrom.empty())
    if (int code = resume(startEpoch))
      return code;

  // The log starts anew, or continues when resuming.
  std::unique_ptr<llvm::raw_fd_ostream> log;
  if (logPath != "none") {
    std::string path =
        logPath.empty() ? modelName() + ".metrics.jsonl" : logPath.getValue();
    std::error_code ec;
    log = std::make_unique<llvm::raw_fd_ostream>(
        path, ec,
        resumeFrom.empty() ? llvm::sys::fs::OF_None : llvm::sys::fs::OF_Append);
    if (ec)
      return fail(kIOError, "cannot write '" + path + "': " + ec.message());
  }

  size_t params = llvm::count_if(
      trainArgs, [](const Slot &s) { return s.role == "param"; });
  llvm::outs() << "training @" << trainStep.getSymName() << ": " << params
               << " parameter tensors, " << data->train.count
               << " training and " << data->test.count
               << " test examples, batch " << batchSize << "\n";

  runtime::BatchIterator batches(data->train, batchSize, seed,
                                 /*shuffle=*/true);
  reference::Executor executor({/*training=*/true, seed});
  runtime::Batch batch;
  for (int64_t epoch = startEpoch; epoch < epochs; ++epoch) {
    batches.reset(epoch);
    runtime::Progress progress(epoch + 1, epochs, batches.batchesPerEpoch());
    auto start = Clock::now();
    double lossSum = 0;
    int64_t samples = 0, done = 0;
    while (batches.next(batch)) {
      feed(batch, trainArgs, imageArg, labelArg, state);
      // Each step's dropout masks differ: the seed moves with the step.
      executor.getOptions().seed =
          seed * 1000003 +
          static_cast<uint64_t>(epoch * batches.batchesPerEpoch() + done);
      auto results = executor.run(trainStep, state);
      if (mlir::failed(results))
        return kRuntimeError;
      double loss = (*results)[0].data[0];
      if (!std::isfinite(loss))
        return fail(kRuntimeError,
                    llvm::formatv("the loss became {0} at epoch {1}, batch "
                                  "{2}; try a smaller --lr",
                                  loss, epoch + 1, done + 1)
                        .str());
      // Results: loss, metrics, new params, new state, in argument order.
      size_t next = 0;
      for (size_t r = 0; r < trainResults.size(); ++r) {
        if (trainResults[r].role != "param" && trainResults[r].role != "state")
          continue;
        while (trainArgs[next].role == "input")
          ++next;
        state[next++] = std::move((*results)[r]);
      }
      lossSum += loss * batch.size;
      samples += batch.size;
      ++done;
      progress.update(done, lossSum / samples, samples, secondsSince(start));
    }
    double seconds = secondsSince(start);
    auto test = evaluate(data->test);
    if (mlir::failed(test))
      return kRuntimeError;
    double trainLoss = lossSum / std::max<int64_t>(samples, 1);
    llvm::outs() << llvm::format("epoch %lld: train loss %.4f | test loss %.4f",
                                 (long long)(epoch + 1), trainLoss, (*test)[0]);
    for (size_t k = 1; k < evalResults.size(); ++k)
      llvm::outs() << llvm::format(" %s %.4f", evalResults[k].name.c_str(),
                                   (*test)[k]);
    llvm::outs() << llvm::format(" | %.1f s, %.0f samples/s\n", seconds,
                                 samples / std::max(seconds, 1e-9));
    llvm::outs().flush();
    if (log) {
      *log << llvm::format("{\"epoch\": %lld, \"train_loss\": %.8g, "
                           "\"test_loss\": %.8g",
                           (long long)(epoch + 1), trainLoss, (*test)[0]);
      for (size_t k = 1; k < evalResults.size(); ++k)
        *log << llvm::format(", \"test_%s\": %.8g", evalResults[k].name.c_str(),
                             (*test)[k]);
      *log << llvm::format(
          ", \"seconds\": %.3f, \"samples_per_second\": %.1f}\n", seconds,
          samples / std::max(seconds, 1e-9));
      log->flush();
    }
    if (int code = save(epoch + 1))
      return code;
  }
  return kSuccess;
}

} // namespace

cl::SubCommand &kiln::driver::trainCommand() { return command(); }

int kiln::driver::train() {
  llvm::FailureOr<std::string> overrides = optimizerOverrides();
  if (llvm::failed(overrides))
    return kUsageError;
  ModelFile file;
  if (int code = file.parse(modelFile))
    return code;
  CompilePipelineOptions options;
  options.stage = noFuse ? Stage::grad : Stage::fused;
  options.optimizerOptions = *overrides;
  if (int code = file.compile(options))
    return code;

  mlir::ModuleOp module = file.getModule();
  mlir::func::FuncOp trainStep, evalStep;
  for (auto f : module.getOps<mlir::func::FuncOp>()) {
    auto step = f->getAttrOfType<mlir::StringAttr>(attrs::step);
    if (step && step.getValue() == "train" && !trainStep)
      trainStep = f;
    if (step && step.getValue() == "eval" && !evalStep)
      evalStep = f;
  }
  if (!trainStep || !evalStep)
    return fail(kModelError, "the model file has no model to train");
  Trainer trainer(trainStep, evalStep);
  return trainer.run();
}
