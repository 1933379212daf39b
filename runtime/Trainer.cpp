//===- Trainer.cpp - the main program of a compiled training executable ---===//
//
// What a trainer does, in order:
//
//   1. parse the flags (a usage error before any work);
//   2. parse the embedded program and find the image and label inputs;
//   3. load Fashion-MNIST, read the checkpoint to resume from (if any) and
//      check it against the program's parameters and state;
//   4. create the backend (compiling the kernels, or loading them from the
//      on-disk cache), initialize the parameters as `kiln train` does
//      (runtime::initialize, stream = the argument's index) and copy them
//      in;
//   5. per epoch, shuffle (seeded by seed and epoch), run the train step on
//      every full batch, evaluate on every full eval batch, print and log
//      the figures, save a checkpoint.
//
// The figures, log lines and checkpoints have `kiln train`'s format, so the
// two can be compared and resume each other's checkpoints.
//
// A text model (inputs `tokens` and `targets`, runtime/TextData.h) trains
// on a text file instead: step 3 reads the file, step 5 draws each step's
// random windows from (seed, step) and evaluates on the held-out windows;
// with --generate, the predict step then samples text byte by byte.
//
//===----------------------------------------------------------------------===//

#include "runtime/Trainer.h"

#include "runtime/AtomicFile.h"
#include "runtime/Backend.h"
#include "runtime/ByteTable.h"
#include "runtime/Checkpoints.h"
#include "runtime/Communicator.h"
#include "runtime/CpuBackend.h"
#include "runtime/CudaBackend.h"
#include "runtime/Dataset.h"
#include "runtime/Initializers.h"
#include "runtime/InputData.h"
#include "runtime/Nvrtc.h"
#include "runtime/Program.h"
#include "runtime/Progress.h"
#include "runtime/Random.h"
#include "runtime/Safetensors.h"
#include "runtime/TextData.h"
#include "runtime/ThreadPool.h"
#include "runtime/TrainerFlags.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <type_traits>
#include <unistd.h>
#include <vector>

using namespace kiln::runtime;

namespace {

using Clock = std::chrono::steady_clock;
double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Prints `<trainer>: error: message` and returns `code`.
int fail(int code, const std::string &message) {
  return trainerError(code, message);
}
/// `printf` into a std::string.
std::string format(const char *fmt, ...) {
  va_list args, copy;
  va_start(args, fmt);
  va_copy(copy, args);
  int size = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  std::string text(static_cast<size_t>(std::max(size, 0)) + 1, '\0');
  std::vsnprintf(text.data(), text.size(), fmt, args);
  va_end(args);
  text.pop_back();
  return text;
}

/// How a step input is fed: from a column of the data, through a byte
/// table on the backend (unsigned bytes, decoded there) or from its values
/// converted to the input's type once, on the host.
struct Feed {
  const StepArgument *arg = nullptr;
  const InputColumn *column = nullptr;
  int table = -1;
  std::vector<uint8_t> encoded;
};

/// What each input of `step` takes per example, at batch `batch`; an
/// error for an input without a leading batch dimension.
StatusOr<std::vector<InputSpec>> inputSpecs(const Step &step, int64_t batch) {
  std::vector<InputSpec> specs;
  for (const StepArgument &arg : step.arguments) {
    if (arg.role != Role::input)
      continue;
    std::string shape = std::string(isFloat(arg.dtype) ? "f" : "i") +
                        std::to_string(dtypeSize(arg.dtype) * 8) + "[batch";
    for (size_t d = 1; d < arg.shape.size(); ++d)
      shape += ", " + std::to_string(arg.shape[d]);
    shape += "]";
    if (arg.shape.empty() || arg.shape[0] != batch)
      return Status::error("input '" + arg.name +
                           "' has no leading batch dimension: the trainer "
                           "feeds a batch of examples to every input");
    specs.push_back({arg.name, arg.dtype, arg.elements() / batch, shape});
  }
  return specs;
}

/// `values` as the bytes of a tensor of `dtype`, into `bytes` (resized).
template <typename T>
void encode(const std::vector<T> &values, DType dtype,
            std::vector<uint8_t> &bytes) {
  bytes.resize(values.size() * dtypeSize(dtype));
  for (size_t i = 0; i < values.size(); ++i)
    storeElement(bytes.data(), dtype, i, static_cast<double>(values[i]));
}

template <typename T>
std::vector<uint8_t> toBytes(const std::vector<T> &values, DType dtype) {
  std::vector<uint8_t> bytes;
  encode(values, dtype, bytes);
  return bytes;
}

/// Whether the elements of a std::vector<T> are already the bytes of a
/// tensor of `dtype`.
template <typename T> bool isEncoded(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return std::is_same_v<T, float>;
  case DType::F64:
    return std::is_same_v<T, double>;
  case DType::I32:
    return std::is_same_v<T, int32_t>;
  case DType::I64:
    return std::is_same_v<T, int64_t>;
  case DType::U8:
    return std::is_same_v<T, uint8_t>;
  }
  return false;
}

std::string checkpointName(const StepArgument &arg) {
  return kiln::runtime::checkpointName(arg.role, arg.name);
}

class Trainer {
public:
  /// `world`: the ranks of a data-parallel run (null: one process).
  Trainer(const EmbeddedModel &model, const TrainerFlags &options,
          Communicator *world)
      : model(model), options(options), world(world),
        rank(world ? world->rank() : 0), ranks(world ? world->size() : 1) {}

  int run();

private:
  int loadProgram();
  /// A text model's file, split; errors when either part is shorter than
  /// one window.
  int loadTextData();
  int readCheckpoint();
  int createBackend();
  /// --tune: the backend's kernels tuned on the training step, the choices
  /// written to --tuned-schedules, and the summary kept in `tuning`.
  int tune();
  /// Loads the training and test data (--data, --test-data, --held-out)
  /// for the inputs.
  int loadData();
  /// Prepares `feeds` to feed `step`'s inputs from `data`: a byte table on
  /// the backend for unsigned bytes, else the values in the input's type.
  Status prepareFeeds(const std::string &step, const InputData &data,
                      std::vector<Feed> &feeds);
  int initialize();
  /// Feeds the images and labels of `examples` (indices into the dataset
  /// of `inputs`' tables) to the inputs of `step`: the backend gathers and
  /// decodes them, the host writes only their offsets.
  Status feed(const std::string &step, const std::vector<Feed> &feeds,
              const std::vector<int64_t> &examples);
  /// Sets input `spec` of `step` to `values`: straight from them when they
  /// already have its dtype (f32 images, i32 labels and tokens: no copy or
  /// allocation on the host per step), else converted through `scratch`.
  template <typename T>
  Status setInput(const std::string &step, const StepArgument &spec,
                  const std::vector<T> &values);
  /// Feeds `values` to input `name` of `step`, in its dtype.
  Status feedTokens(const std::string &step, const std::string &name,
                    const std::vector<int32_t> &values);
  /// Runs the eval step over every full eval batch of the test set (of a
  /// text model: of the held-out windows): the mean loss and metrics, and
  /// how many examples (windows) they cover.
  Status evaluate(std::vector<double> &means, int64_t &examples);
  /// Samples options.generate bytes after the prompt with the predict step
  /// and prints them, the prompt first.
  int generate();
  int save(int64_t epochsDone);
  std::string outputPath(const std::string &flag, const char *suffix) const {
    return flag.empty() ? std::string(model.name) + suffix : flag;
  }

  /// Keeps this rank's rows of a global batch of `ranks` x `rows` rows of
  /// `width` values each.
  template <typename T>
  void keepOwnRows(std::vector<T> &values, int64_t rows, int64_t width) const {
    if (ranks == 1)
      return;
    auto first = values.begin() + rank * rows * width;
    values = std::vector<T>(first, first + rows * width);
  }
  /// Sums `values` over the ranks (nothing with one rank).
  Status sumOverRanks(std::vector<double> &values) {
    return world && ranks > 1 ? world->sum(values.data(), values.size())
                              : Status::success();
  }

  const EmbeddedModel &model;
  const TrainerFlags &options;
  Communicator *world;
  int rank, ranks;
  Program program;
  const Step *trainStep = nullptr, *evalStep = nullptr;
  std::vector<InputSpec> specs; // the inputs, as the training step takes them
  InputData trainData, testData;
  std::vector<Feed> trainFeeds, evalFeeds;
  std::string dataLine; // what the data are, for file data
  std::optional<Checkpoint> checkpoint;
  int64_t startEpoch = 0;
  std::unique_ptr<Backend> backend;
  std::vector<uint8_t> scratch;         ///< inputs converted to their dtype
  std::vector<int64_t> offsets;         ///< of the images fed
  std::vector<std::string> metricNames; // the eval step's, after the loss
  /// Where the progress lines go: standard error when the generated text
  /// owns standard output.
  std::FILE *out = stdout;
  // A text model.
  bool text = false;
  TextModel textModel;
  TextData textData;
  std::string textPath;
  int64_t heldOutWindows = 0; // evaluated: whole eval batches
  std::string tuning;         // the line --tune prints
};

int Trainer::loadProgram() {
  auto parsed = parseProgram(std::string(model.program), "embedded program");
  if (!parsed.ok())
    return fail(kTrainerRuntimeError, parsed.status().message());
  program = std::move(*parsed);
  trainStep = program.step("train");
  evalStep = program.step("eval");
  if (!trainStep || !evalStep)
    return fail(kTrainerRuntimeError,
                "the embedded program needs a train and an eval step");
  // Each step takes its batch now: --batch and --eval-batch up to the
  // largest the steps were planned for, the predict step's as compiled.
  struct Binding {
    const char *step, *flag, *compileFlag;
    int64_t batch;
  } bindings[] = {
      {"train", "--batch", "--max-batch", options.trainBatch},
      {"eval", "--eval-batch", "--eval-batch", options.evalBatch},
      {"predict", nullptr, nullptr, model.predictBatch},
  };
  for (const Binding &b : bindings) {
    const Step *step = program.step(b.step);
    if (!step || !step->maxBatch) // no step, or no batch to choose
      continue;
    if (b.flag && b.batch > step->maxBatch)
      return fail(kTrainerUsageError,
                  format("%s %lld: this trainer takes batches up to %lld; "
                         "recompile with `kiln compile MODEL.kiln "
                         "--emit=trainer %s %lld`",
                         b.flag, (long long)b.batch, (long long)step->maxBatch,
                         b.compileFlag, (long long)b.batch));
    if (Status s = bindBatch(program, b.step, b.batch); !s.ok())
      return fail(kTrainerRuntimeError, "the embedded program: " + s.message());
  }
  for (const StepResult &result : evalStep->results)
    if (result.role == Role::metric)
      metricNames.push_back(result.name);
  if (ranks > 1 && std::none_of(trainStep->launches.begin(),
                                trainStep->launches.end(), [](const Launch &l) {
                                  return l.collective != Collective::none;
                                }))
    return fail(kTrainerUsageError,
                format("launched on %d ranks, but this trainer does not "
                       "average its gradients across ranks: compile it with "
                       "`kiln compile MODEL.kiln --emit=trainer "
                       "--data-parallel`",
                       ranks));
  if (isTextProgram(program)) {
    auto described = describeTextModel(program);
    if (!described.ok())
      return fail(kTrainerRuntimeError, "model '" + program.model + "': " +
                                            described.status().message());
    text = true;
    textModel = *described;
    return kTrainerSuccess;
  }
  if (options.generate >= 0 || options.stepsPerEpoch > 0)
    return fail(kTrainerUsageError,
                std::string(options.generate >= 0 ? "--generate"
                                                  : "--steps-per-epoch") +
                    " is for text models (inputs tokens and targets); '" +
                    program.model + "' trains on Fashion-MNIST");
  auto train = inputSpecs(*trainStep, options.trainBatch);
  auto eval = inputSpecs(*evalStep, options.evalBatch);
  if (!train.ok() || !eval.ok())
    return fail(kTrainerRuntimeError,
                (train.ok() ? eval : train).status().message());
  auto same = [](const InputSpec &a, const InputSpec &b) {
    return a.name == b.name && a.dtype == b.dtype && a.width == b.width;
  };
  if (!std::equal(train->begin(), train->end(), eval->begin(), eval->end(),
                  same))
    return fail(kTrainerRuntimeError,
                "the training and evaluation steps take different inputs");
  specs = std::move(*train);
  return kTrainerSuccess;
}

int Trainer::loadTextData() {
  textPath = options.dataDir.empty() ? std::string(model.defaultText)
                                     : options.dataDir;
  if (textPath.empty())
    return fail(kTrainerUsageError,
                "a text model trains on a text file: give it with --data FILE");
  auto loaded = kiln::runtime::loadText(textPath);
  if (!loaded.ok())
    return fail(kTrainerIOError, loaded.status().message() +
                                     (options.dataDir.empty()
                                          ? " (the default text; pass --data "
                                            "FILE)"
                                          : ""));
  textData = std::move(*loaded);
  if (options.trainLimit > 0 &&
      options.trainLimit < static_cast<int64_t>(textData.train.size()))
    textData.train.resize(static_cast<size_t>(options.trainLimit));
  int64_t window = textModel.context + 1;
  auto tooShort = [&](const char *part, size_t size) {
    return fail(kTrainerIOError,
                format("'%s': its %s part has %zu bytes, fewer than one "
                       "window of %lld (the context %lld plus one): the "
                       "last 10%% of the file is held out, so it needs at "
                       "least %lld bytes",
                       textPath.c_str(), part, size, (long long)window,
                       (long long)textModel.context, (long long)window * 10));
  };
  if (static_cast<int64_t>(textData.train.size()) < window)
    return tooShort("training", textData.train.size());
  if (static_cast<int64_t>(textData.heldOut.size()) < window)
    return tooShort("held-out", textData.heldOut.size());
  int64_t windows = windowCount(textData.heldOut, textModel.context);
  if (options.testLimit > 0)
    windows = std::min(windows, options.testLimit);
  heldOutWindows = windows / options.evalBatch * options.evalBatch;
  if (heldOutWindows == 0)
    return fail(kTrainerUsageError,
                format("%lld held-out windows of %lld bytes do not fill one "
                       "eval batch of %lld: use a longer text, or a smaller "
                       "--eval-batch",
                       (long long)windows, (long long)window,
                       (long long)options.evalBatch));
  return kTrainerSuccess;
}

int Trainer::readCheckpoint() {
  auto read =
      kiln::runtime::readCheckpoint(options.resumeFrom, *trainStep, startEpoch);
  if (!read.ok())
    return fail(kTrainerIOError, read.status().message());
  checkpoint = std::move(*read);
  return kTrainerSuccess;
}

int Trainer::createBackend() {
  std::string cacheDir = defaultCacheDir();
  if (ranks > 1 && options.device == "cuda")
    return fail(kTrainerUsageError,
                "data-parallel training on several ranks runs on the CPU "
                "for now: use --device cpu");
  if (options.device != "cpu" && ranks == 1) {
    CudaBackendOptions cuda;
    cuda.cacheDir = cacheDir;
    auto created =
        createCudaBackend(program, std::string(model.cudaSource), cuda);
    if (created.ok()) {
      backend = std::move(*created);
      return tune();
    }
    const std::string &message = created.status().message();
    bool noGpu = message.rfind("no CUDA driver", 0) == 0 ||
                 message.rfind("no CUDA device", 0) == 0;
    if (options.device == "cuda" || !noGpu)
      return fail(kTrainerRuntimeError,
                  "cannot train on the GPU: " + message +
                      "\n(--device cpu trains on the CPU)");
    std::fprintf(out, "no usable GPU (%s): training on the CPU\n",
                 message.substr(0, message.find('\n')).c_str());
  }
  HostCompileOptions host;
  host.cacheDir = cacheDir;
  // Ranks on one machine share its CPUs: by default each takes its part.
  int64_t threads = options.threads;
  if (threads == 0 && ranks > 1)
    threads = std::max(1, defaultThreads() / localRanks());
  auto created = createCpuBackend(program, std::string(model.cppSource), host,
                                  /*profile=*/false, static_cast<int>(threads));
  if (!created.ok())
    return fail(kTrainerRuntimeError,
                "cannot train on the CPU: " + created.status().message());
  backend = std::move(*created);
  if (world)
    if (Status s = backend->setCommunicator(world); !s.ok())
      return fail(kTrainerRuntimeError, s.message());
  return tune();
}

int Trainer::tune() {
  if (!options.tune)
    return kTrainerSuccess;
  bool gpu = backend->description().rfind("cpu", 0) != 0;
  std::string_view candidates =
      gpu ? model.cudaCandidates : model.cppCandidates;
  TuneOptions tuneOptions;
  tuneOptions.budgetSeconds = options.tuneBudget;
  tuneOptions.cacheDir = defaultCacheDir();
  auto report = backend->tune("train", std::string(candidates), tuneOptions);
  if (!report.ok())
    return fail(kTrainerRuntimeError,
                "--tune failed: " + report.status().message());
  tuning = describeTuning(*report, options.tuneBudget);
  if (report->kernels.empty())
    tuning += candidates.empty()
                  ? " (the trainer has no candidates: compile it with "
                    "--tune-candidates N)"
                  : "";
  if (!options.tunedSchedules.empty()) {
    std::string text = tunedSchedules(program, *report);
    auto bytes = reinterpret_cast<const uint8_t *>(text.data());
    if (Status s =
            writeFileAtomically(options.tunedSchedules, {{bytes, text.size()}});
        !s.ok())
      return fail(kTrainerIOError, "cannot write " + s.message());
  }
  return kTrainerSuccess;
}

int Trainer::initialize() {
  std::map<std::string, const TensorData *> saved;
  if (checkpoint)
    for (const TensorData &t : checkpoint->tensors)
      saved[t.name] = &t;
  std::vector<double> values;
  for (size_t i = 0; i < trainStep->arguments.size(); ++i) {
    const StepArgument &arg = trainStep->arguments[i];
    if (arg.role == Role::input)
      continue;
    std::vector<uint8_t> bytes;
    if (arg.role == Role::hyper && arg.name == "lr" &&
        !std::isnan(options.lr)) {
      bytes = toBytes(std::vector<double>{options.lr}, arg.dtype);
    } else if (checkpoint && arg.role != Role::hyper) {
      // Hyper-parameters are not in checkpoints: they come from the
      // command line or the compiled defaults, as for a fresh start.
      bytes = saved.at(checkpointName(arg))->bytes;
    } else if (!arg.init.kind.empty()) {
      if (!kiln::runtime::initialize(arg.init.kind, arg.init.a, arg.init.b,
                                     arg.shape, options.seed, /*stream=*/i,
                                     values))
        return fail(kTrainerRuntimeError,
                    "parameter '" + arg.name + "' has no initializer");
      bytes = toBytes(values, arg.dtype);
    } else {
      bytes.assign(static_cast<size_t>(arg.bytes()), 0);
    }
    if (Status s = backend->write(arg.name, bytes.data(), bytes.size());
        !s.ok())
      return fail(kTrainerRuntimeError, s.message());
  }
  return kTrainerSuccess;
}

template <typename T>
Status Trainer::setInput(const std::string &step, const StepArgument &spec,
                         const std::vector<T> &values) {
  if (isEncoded<T>(spec.dtype))
    return backend->setInput(step, spec.name, values.data(),
                             values.size() * sizeof(T));
  encode(values, spec.dtype, scratch);
  return backend->setInput(step, spec.name, scratch.data(), scratch.size());
}

int Trainer::loadData() {
  bool defaulted = options.dataDir.empty();
  std::string spec = defaulted ? kDefaultFashionMnistDir : options.dataDir;
  bool directory = isDataDirectory(spec);
  auto train = loadInputData(spec, /*test=*/false, specs);
  // Fashion-MNIST's directory, or what may have been meant as one.
  auto endsWith = [&](const char *suffix) {
    return spec.size() >= std::strlen(suffix) &&
           spec.compare(spec.size() - std::strlen(suffix), std::string::npos,
                        suffix) == 0;
  };
  bool missing = spec.find('=') == std::string::npos &&
                 ::access(spec.c_str(), F_OK) != 0 && !endsWith(".npz") &&
                 !endsWith(".npy") && !endsWith(".safetensors");
  if (!train.ok())
    return fail(kTrainerIOError,
                train.status().message() +
                    (defaulted || directory || missing
                         ? " (install the Debian package "
                           "dataset-fashion-mnist, or pass --data DATA)"
                         : ""));
  trainData = std::move(*train);
  std::string testFrom;
  if (!options.testData.empty() || directory) {
    auto test =
        loadInputData(options.testData.empty() ? spec : options.testData,
                      /*test=*/true, specs);
    if (!test.ok())
      return fail(kTrainerIOError, test.status().message());
    testData = std::move(*test);
    testFrom = options.testData;
  } else {
    auto held = static_cast<int64_t>(
        std::llround(options.heldOut * static_cast<double>(trainData.count)));
    testData = trainData.slice(trainData.count - held, held);
    trainData = trainData.slice(0, trainData.count - held);
    testFrom = format("the last %lld examples of '%s' (--held-out %g)",
                      (long long)held, spec.c_str(), options.heldOut);
  }
  if (!directory) {
    normalizePixels(trainData, testData, specs);
    // "data: x from train.npz: x (u8 pixels: mean 0.2860, stddev 0.3530),
    // label from train.npz: label; test data: test.npz"
    dataLine = "data:";
    for (const InputColumn &c : trainData.columns) {
      const InputSpec *in = nullptr;
      for (const InputSpec &s : specs)
        if (s.name == c.input)
          in = &s;
      dataLine += format("%s %s from %s", dataLine.size() > 5 ? "," : "",
                         c.input.c_str(), c.source.c_str());
      if (c.dtype == DType::U8 && in && isFloat(in->dtype))
        dataLine +=
            format(" (pixels: (v / 255 - %.4f) / %.4f)", c.mean, c.stddev);
      else if (in && c.dtype != in->dtype)
        dataLine +=
            format(" (%s as %s)", dtypeName(c.dtype), dtypeName(in->dtype));
    }
    dataLine += "; test data: " + testFrom;
  }
  if (options.trainLimit > 0)
    trainData = trainData.slice(0, options.trainLimit);
  if (options.testLimit > 0)
    testData = testData.slice(0, options.testLimit);
  const int64_t globalBatch = options.trainBatch * ranks;
  if (trainData.count < globalBatch || testData.count < options.evalBatch)
    return fail(kTrainerUsageError,
                format("%lld training and %lld test examples do not fill "
                       "one batch: batch %lld, eval batch %lld (--batch, "
                       "--eval-batch)",
                       (long long)trainData.count, (long long)testData.count,
                       (long long)globalBatch, (long long)options.evalBatch));
  return kTrainerSuccess;
}

Status Trainer::prepareFeeds(const std::string &step, const InputData &data,
                             std::vector<Feed> &feeds) {
  feeds.clear();
  for (const StepArgument &arg : program.step(step)->arguments) {
    if (arg.role != Role::input)
      continue;
    Feed feed;
    feed.arg = &arg;
    feed.column = data.column(arg.name);
    if (!feed.column)
      return Status::error("no data for input '" + arg.name + "'");
    const InputColumn &c = *feed.column;
    if (c.dtype == DType::U8) {
      // Byte b decodes to pixel b normalised, or to the integer b.
      std::vector<double> decode(kByteValues);
      std::array<float, 256> pixels = normalizedPixels(c.mean, c.stddev);
      for (size_t b = 0; b < kByteValues; ++b)
        decode[b] = isFloat(arg.dtype) ? pixels[b] : double(b);
      auto table = backend->addByteTable(c.values.data(), c.values.size(),
                                         toBytes(decode, arg.dtype).data(),
                                         kByteValues * dtypeSize(arg.dtype));
      if (!table.ok())
        return table.status();
      feed.table = *table;
    } else {
      size_t n = c.values.size() / size_t(dtypeSize(c.dtype));
      feed.encoded.resize(n * size_t(dtypeSize(arg.dtype)));
      for (size_t i = 0; i < n; ++i)
        storeElement(feed.encoded.data(), arg.dtype, i,
                     elementAsDouble(c.values.data(), c.dtype, i));
    }
    feeds.push_back(std::move(feed));
  }
  return Status::success();
}

Status Trainer::feed(const std::string &step, const std::vector<Feed> &feeds,
                     const std::vector<int64_t> &examples) {
  for (const Feed &f : feeds) {
    int64_t width = f.column->width;
    if (f.table >= 0) {
      offsets.resize(examples.size());
      for (size_t i = 0; i < examples.size(); ++i)
        offsets[i] = examples[i] * width;
      if (Status s =
              backend->gatherInput(step, f.arg->name, f.table, offsets.data(),
                                   offsets.size(), static_cast<size_t>(width));
          !s.ok())
        return s;
      continue;
    }
    size_t row = static_cast<size_t>(width * dtypeSize(f.arg->dtype));
    scratch.resize(examples.size() * row);
    for (size_t i = 0; i < examples.size(); ++i)
      std::memcpy(scratch.data() + i * row,
                  f.encoded.data() + static_cast<size_t>(examples[i]) * row,
                  row);
    if (Status s = backend->setInput(step, f.arg->name, scratch.data(),
                                     scratch.size());
        !s.ok())
      return s;
  }
  return Status::success();
}

Status Trainer::feedTokens(const std::string &step, const std::string &name,
                           const std::vector<int32_t> &values) {
  for (const StepArgument &arg : program.step(step)->arguments)
    if (arg.role == Role::input && arg.name == name)
      return setInput(step, arg, values);
  return Status::error("step '" + step + "' has no input '" + name + "'");
}

Status Trainer::evaluate(std::vector<double> &means, int64_t &examples) {
  BatchIterator batches(testData.count, options.evalBatch, options.seed,
                        /*shuffle=*/false);
  batches.dropLast = true;
  int64_t batchSize = 0;       // examples (windows) in the batch
  std::vector<int64_t> images; // the test examples of the batch
  TextBatch windows;
  int64_t first = 0;
  // The next batch: of the test images, or of the held-out windows.
  auto next = [&]() -> bool {
    if (!text) {
      bool more = batches.nextExamples(images);
      batchSize = static_cast<int64_t>(images.size());
      return more;
    }
    if (first >= heldOutWindows)
      return false;
    evaluationBatch(textData.heldOut, textModel.context, first,
                    options.evalBatch, windows);
    first += options.evalBatch;
    batchSize = options.evalBatch;
    return true;
  };
  std::vector<double> sums(1 + metricNames.size(), 0.0), values;
  examples = 0;
  // Batch i is evaluated by rank i % ranks; the sums are then added up.
  for (int64_t i = 0; next(); ++i) {
    if (i % ranks != rank)
      continue;
    Status fed = text ? feedTokens("eval", textModel.tokens, windows.tokens)
                      : feed("eval", evalFeeds, images);
    if (fed.ok() && text)
      fed = feedTokens("eval", textModel.targets, windows.targets);
    if (!fed.ok())
      return fed;
    if (Status s = backend->run("eval", options.seed); !s.ok())
      return s;
    if (Status s = backend->scalars("eval", values); !s.ok())
      return s;
    for (size_t k = 0; k < values.size() && k < sums.size(); ++k)
      sums[k] += values[k] * static_cast<double>(batchSize);
    examples += batchSize;
  }
  sums.push_back(static_cast<double>(examples));
  if (Status s = sumOverRanks(sums); !s.ok())
    return s;
  examples = static_cast<int64_t>(sums.back());
  sums.pop_back();
  means = sums;
  for (double &m : means)
    m /= static_cast<double>(std::max<int64_t>(examples, 1));
  means.resize(1 + metricNames.size(), 0.0);
  return Status::success();
}

int Trainer::save(int64_t epochsDone) {
  if (options.savePath == "none" || rank != 0)
    return kTrainerSuccess;
  auto out = takeCheckpoint(*backend, *trainStep, std::string(model.modelFile),
                            epochsDone, options.seed);
  if (!out.ok())
    return fail(kTrainerRuntimeError, out.status().message());
  if (Status s =
          writeSafetensors(outputPath(options.savePath, ".safetensors"), *out);
      !s.ok())
    return fail(kTrainerIOError, s.message());
  return kTrainerSuccess;
}

int Trainer::run() {
  if (options.generate >= 0)
    out = stderr;
  // Rank 0 alone prints, logs and saves.
  std::FILE *silent = nullptr;
  if (rank > 0) {
    silent = std::fopen("/dev/null", "w");
    if (!silent)
      return fail(kTrainerIOError, "cannot open /dev/null");
    out = silent;
  }
  struct SilentCloser {
    std::FILE *file;
    ~SilentCloser() {
      if (file)
        std::fclose(file);
    }
  } silentCloser{silent};
  // Each rank takes its --batch slice of every global batch.
  const int64_t globalBatch = options.trainBatch * ranks;
  if (int code = loadProgram())
    return code;

  int64_t epochs = options.epochs;
  if (text) {
    if (!options.resumeFrom.empty())
      if (int code = readCheckpoint())
        return code;
    // Generating from a checkpoint trains no further unless asked to.
    if (options.generate >= 0 && !options.epochsGiven && checkpoint)
      epochs = startEpoch;
    if (epochs > startEpoch)
      if (int code = loadTextData())
        return code;
  } else {
    if (int code = loadData())
      return code;

    if (!options.resumeFrom.empty())
      if (int code = readCheckpoint())
        return code;
  }
  bool training = epochs > startEpoch;

  // The log starts anew, or continues when resuming.
  std::FILE *log = nullptr;
  if (options.logPath != "none" && rank == 0 && (training || !text)) {
    std::string path = outputPath(options.logPath, ".metrics.jsonl");
    log = std::fopen(path.c_str(), options.resumeFrom.empty() ? "w" : "a");
    if (!log)
      return fail(kTrainerIOError,
                  "cannot write '" + path + "': " + std::strerror(errno));
  }
  struct Closer {
    std::FILE *file;
    ~Closer() {
      if (file)
        std::fclose(file);
    }
  } closer{log};

  auto setupStart = Clock::now();
  if (int code = createBackend())
    return code;
  if (!text)
    for (auto [step, data, feeds] :
         {std::tuple{"train", &trainData, &trainFeeds},
          std::tuple{"eval", &testData, &evalFeeds}})
      if (Status s = prepareFeeds(step, *data, *feeds); !s.ok())
        return fail(kTrainerRuntimeError, s.message());
  double setupSeconds = secondsSince(setupStart);
  if (int code = initialize())
    return code;

  size_t params = std::count_if(
      trainStep->arguments.begin(), trainStep->arguments.end(),
      [](const StepArgument &a) { return a.role == Role::param; });
  double lr = options.lr;
  for (const StepArgument &arg : trainStep->arguments)
    if (arg.role == Role::hyper && arg.name == "lr" && std::isnan(lr))
      lr = arg.init.a;
  int64_t perEpoch = 0;
  // A text model counts tokens (windows times the context), not samples.
  int64_t unitsPerSample = text ? textModel.context : 1;
  const char *unit = text ? "tokens" : "samples";
  // Under mpirun: " on each of 2 ranks (global batch 256, Open MPI ...)".
  std::string onRanks;
  if (ranks > 1)
    onRanks = format(" on each of %d ranks (global batch %lld, %s)", ranks,
                     (long long)globalBatch,
                     world->description()
                         .substr(0, world->description().find(", rank"))
                         .c_str());
  if (text) {
    int64_t tokensPerStep = globalBatch * textModel.context;
    perEpoch =
        options.stepsPerEpoch > 0
            ? options.stepsPerEpoch
            : std::max<int64_t>(1, static_cast<int64_t>(textData.train.size()) /
                                       tokensPerStep);
    if (training) {
      std::fprintf(out,
                   "training %s on %s: %zu parameter tensors, text '%s': "
                   "%zu training and %zu held-out bytes, batch %lld x %lld "
                   "bytes%s, lr %g\n",
                   program.model.c_str(), backend->description().c_str(),
                   params, textPath.c_str(), textData.train.size(),
                   textData.heldOut.size(), (long long)options.trainBatch,
                   (long long)textModel.context, onRanks.c_str(), lr);
      std::fprintf(out,
                   "%lld steps per epoch (random windows of %lld bytes); "
                   "evaluation on %lld of %lld held-out windows, eval batch "
                   "%lld\n",
                   (long long)perEpoch, (long long)textModel.context + 1,
                   (long long)heldOutWindows,
                   (long long)windowCount(textData.heldOut, textModel.context),
                   (long long)options.evalBatch);
    } else {
      std::string from =
          checkpoint ? format("from '%s' (epoch %lld)",
                              options.resumeFrom.c_str(), (long long)startEpoch)
                     : format("untrained (initialized from seed %llu)",
                              (unsigned long long)options.seed);
      std::fprintf(out, "%s on %s: %zu parameter tensors %s\n",
                   program.model.c_str(), backend->description().c_str(),
                   params, from.c_str());
    }
  } else {
    perEpoch = trainData.count / globalBatch;
    int64_t dropped = trainData.count - perEpoch * globalBatch;
    int64_t evaluated = testData.count / options.evalBatch * options.evalBatch;
    std::fprintf(out,
                 "training %s on %s: %zu parameter tensors, %lld training "
                 "and %lld test examples, batch %lld%s, lr %g\n",
                 program.model.c_str(), backend->description().c_str(), params,
                 (long long)trainData.count, (long long)testData.count,
                 (long long)options.trainBatch, onRanks.c_str(), lr);
    std::fprintf(out,
                 "%lld steps per epoch (the last %lld training examples of "
                 "each shuffled epoch are dropped: every step takes a full "
                 "batch); evaluation "
                 "on %lld of %lld test examples, eval batch %lld\n",
                 (long long)perEpoch, (long long)dropped, (long long)evaluated,
                 (long long)testData.count, (long long)options.evalBatch);
    if (!dataLine.empty())
      std::fprintf(out, "%s\n", dataLine.c_str());
  }
  std::fprintf(
      out, "kernels: %s in %.2f s (backend ready in %.2f s, %.1f MiB)\n",
      backend->compiledFromCache() ? "loaded from the cache" : "compiled",
      backend->compileSeconds(), setupSeconds,
      backend->memoryBytes() / (1024.0 * 1024.0));
  if (!tuning.empty())
    std::fprintf(out, "%s\n", tuning.c_str());
  std::fflush(out);

  BatchIterator batches(trainData.count, globalBatch, options.seed,
                        /*shuffle=*/true);
  batches.dropLast = true;
  int64_t batchSize = 0; // examples (windows) in the batch
  std::vector<int64_t> examples;
  TextBatch windows;
  std::vector<double> values, test;
  int64_t step = startEpoch * perEpoch;
  bool firstStep = true;
  auto testLine = [&](const std::vector<double> &figures) {
    std::string line = text ? format("held-out loss %.4f bpc %.4f", figures[0],
                                     figures[0] / std::log(2.0))
                            : format("test loss %.4f", figures[0]);
    for (size_t k = 0; k < metricNames.size(); ++k)
      line += format(" %s %.4f", metricNames[k].c_str(), figures[k + 1]);
    return line;
  };
  // The log's figures of an evaluation, after "test_loss".
  auto testJson = [&](const std::vector<double> &figures) {
    std::string json = format("\"test_loss\": %.8g", figures[0]);
    if (text)
      json += format(", \"test_bpc\": %.8g", figures[0] / std::log(2.0));
    for (size_t k = 0; k < metricNames.size(); ++k)
      json +=
          format(", \"test_%s\": %.8g", metricNames[k].c_str(), figures[k + 1]);
    return json;
  };
  for (int64_t epoch = startEpoch; epoch < epochs; ++epoch) {
    batches.reset(epoch);
    int64_t drawn = 0; // text batches drawn this epoch
    // The epoch's next batch: shuffled images, or random windows of the
    // text drawn from the seed and the global step.
    auto next = [&]() -> bool {
      if (!text) {
        bool more = batches.nextExamples(examples);
        keepOwnRows(examples, options.trainBatch, 1);
        batchSize = static_cast<int64_t>(examples.size());
        return more;
      }
      if (drawn == perEpoch)
        return false;
      trainingBatch(textData.train, textModel.context, globalBatch,
                    options.seed,
                    static_cast<uint64_t>(epoch * perEpoch + drawn), windows);
      keepOwnRows(windows.tokens, options.trainBatch, textModel.context);
      keepOwnRows(windows.targets, options.trainBatch, textModel.context);
      ++drawn;
      batchSize = options.trainBatch;
      return true;
    };
    Progress progress(epoch + 1, epochs, perEpoch, unit);
    auto start = Clock::now();
    double lossSum = 0, evalSeconds = 0;
    int64_t samples = 0, done = 0;
    // Steps are pipelined: step n + 1 is submitted before step n's loss is
    // read, so the device runs it while the host reads the loss, cuts the
    // next batch and stages it (the backend copies it on its copy stream).
    // An evaluation waits for the training steps before it.
    bool more = next();
    std::deque<int64_t> inFlight; // the batch sizes of the steps submitted
    int64_t submitted = 0;
    Clock::time_point firstStart;
    auto submit = [&]() -> Status {
      Status fed = text ? feedTokens("train", textModel.tokens, windows.tokens)
                        : feed("train", trainFeeds, examples);
      if (fed.ok() && text)
        fed = feedTokens("train", textModel.targets, windows.targets);
      if (!fed.ok())
        return fed;
      // Each step's dropout masks differ: the seed moves with the step, as
      // in `kiln train`.
      // Each rank's masks differ too (rank 0's as with one rank).
      uint64_t stepSeed = options.seed * 1000003 +
                          static_cast<uint64_t>(epoch * perEpoch + submitted) +
                          static_cast<uint64_t>(rank) * 0x9e3779b97f4a7c15ull;
      if (firstStep)
        firstStart = Clock::now();
      if (Status s = backend->run("train", stepSeed); !s.ok())
        return s;
      inFlight.push_back(batchSize);
      ++submitted;
      more = next();
      return Status::success();
    };
    if (more)
      if (Status s = submit(); !s.ok())
        return fail(kTrainerRuntimeError, s.message());
    while (!inFlight.empty()) {
      bool evaluateAfter = options.evalEvery > 0 &&
                           (step + 1) % options.evalEvery == 0 &&
                           done + 1 != perEpoch;
      // (Not behind the first step, so its time is its own.)
      if (more && !evaluateAfter && !firstStep && inFlight.size() == 1)
        if (Status s = submit(); !s.ok())
          return fail(kTrainerRuntimeError, s.message());
      // The oldest step in flight.
      if (Status s = backend->scalars(
              "train", values, static_cast<unsigned>(inFlight.size() - 1));
          !s.ok())
        return fail(kTrainerRuntimeError, s.message());
      int64_t size = inFlight.front();
      inFlight.pop_front();
      if (firstStep) {
        double ms = 1000 * secondsSince(firstStart);
        std::fprintf(out, "first step: %.3f ms\n", ms);
        std::fflush(out);
        firstStep = false;
      }
      double loss = values.empty() ? NAN : values[0];
      if (!std::isfinite(loss))
        return fail(kTrainerRuntimeError,
                    format("the loss became %g at epoch %lld, batch %lld; "
                           "try a smaller learning rate (--lr)",
                           loss, (long long)(epoch + 1),
                           (long long)(done + 1)));
      lossSum += loss * static_cast<double>(size);
      samples += size;
      ++done;
      ++step;
      if (evaluateAfter) {
        auto evalStart = Clock::now();
        int64_t examples = 0;
        if (Status s = evaluate(test, examples); !s.ok())
          return fail(kTrainerRuntimeError, s.message());
        evalSeconds += secondsSince(evalStart);
        if (rank == 0 && ::isatty(STDERR_FILENO))
          std::fprintf(stderr, "\r%s\r", std::string(100, ' ').c_str());
        std::fprintf(out, "step %lld: %s\n", (long long)step,
                     testLine(test).c_str());
        std::fflush(out);
        if (log) {
          std::fprintf(log, "{\"step\": %lld, \"epoch\": %lld, %s}\n",
                       (long long)step, (long long)(epoch + 1),
                       testJson(test).c_str());
          std::fflush(log);
        }
      }
      if (rank == 0)
        progress.update(done, lossSum / static_cast<double>(samples),
                        samples * unitsPerSample * ranks,
                        secondsSince(start) - evalSeconds);
      if (inFlight.empty() && more)
        if (Status s = submit(); !s.ok())
          return fail(kTrainerRuntimeError, s.message());
    }
    double seconds = secondsSince(start) - evalSeconds;
    // The epoch's training loss over every rank's examples.
    std::vector<double> trained = {lossSum, static_cast<double>(samples)};
    if (Status s = sumOverRanks(trained); !s.ok())
      return fail(kTrainerRuntimeError, s.message());
    lossSum = trained[0];
    samples = static_cast<int64_t>(trained[1]);
    int64_t examples = 0;
    if (Status s = evaluate(test, examples); !s.ok())
      return fail(kTrainerRuntimeError, s.message());
    double trainLoss =
        lossSum / static_cast<double>(std::max<int64_t>(samples, 1));
    double rate = samples * unitsPerSample / std::max(seconds, 1e-9);
    // (An epoch on the GPU can take well under a tenth of a second.)
    std::fprintf(out, "epoch %lld: train loss %.4f | %s | %.*f s, %.0f %s/s\n",
                 (long long)(epoch + 1), trainLoss, testLine(test).c_str(),
                 seconds < 1 ? 3 : 1, seconds, rate, unit);
    std::fflush(out);
    if (log) {
      std::fprintf(log,
                   "{\"epoch\": %lld, \"train_loss\": %.8g, %s, \"seconds\": "
                   "%.3f, \"%s_per_second\": %.1f}\n",
                   (long long)(epoch + 1), trainLoss, testJson(test).c_str(),
                   seconds, unit, rate);
      if (std::fflush(log) != 0)
        return fail(kTrainerIOError, "cannot write the log: " +
                                         std::string(std::strerror(errno)));
    }
    if (int code = save(epoch + 1))
      return code;
  }
  if (options.generate >= 0 && rank == 0)
    return generate();
  return kTrainerSuccess;
}

int Trainer::generate() {
  const Step *predict = program.step("predict");
  int64_t context = textModel.context, rows = model.predictBatch;
  std::string prompt = options.prompt.value_or("\n");
  std::string textSoFar = prompt;
  std::vector<int32_t> tokens(static_cast<size_t>(rows * context));
  size_t logitBytes = 0;
  for (const StepResult &result : predict->results)
    if (result.name == textModel.logits)
      logitBytes = static_cast<size_t>(result.bytes());
  std::vector<uint8_t> logits(logitBytes);
  std::vector<double> weights(kByteVocabulary);
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  for (int64_t i = 0; i < options.generate; ++i) {
    // The last `context` bytes, left-aligned in every row; the positions
    // after them are padding that a causal model never reads.
    int64_t used = std::min<int64_t>(context, textSoFar.size());
    size_t from = textSoFar.size() - static_cast<size_t>(used);
    std::fill(tokens.begin(), tokens.end(), 0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t t = 0; t < used; ++t)
        tokens[r * context + t] = static_cast<uint8_t>(textSoFar[from + t]);
    if (Status s = feedTokens("predict", textModel.tokens, tokens); !s.ok())
      return fail(kTrainerRuntimeError, s.message());
    if (Status s = backend->run("predict", options.seed); !s.ok())
      return fail(kTrainerRuntimeError, s.message());
    if (Status s = backend->output("predict", textModel.logits, logits.data(),
                                   logits.size());
        !s.ok())
      return fail(kTrainerRuntimeError, s.message());
    // Row 0's logits at the last real position, scaled by the temperature;
    // top-k keeps the k largest.
    size_t base = static_cast<size_t>((used - 1) * kByteVocabulary);
    for (int64_t v = 0; v < kByteVocabulary; ++v)
      weights[v] = elementAsDouble(logits.data(), textModel.logitsType,
                                   base + static_cast<size_t>(v));
    int byte = 0;
    for (int v = 1; v < kByteVocabulary; ++v)
      if (weights[v] > weights[byte])
        byte = v;
    if (options.temperature > 0) {
      double threshold = -INFINITY;
      if (options.topK > 0 && options.topK < kByteVocabulary) {
        std::vector<double> sorted = weights;
        std::nth_element(sorted.begin(), sorted.begin() + (options.topK - 1),
                         sorted.end(), std::greater<double>());
        threshold = sorted[options.topK - 1];
      }
      double top = weights[byte], total = 0;
      for (double &w : weights) {
        w = w < threshold ? 0 : std::exp((w - top) / options.temperature);
        total += w;
      }
      // Philox stream "gen": the same seed gives the same text.
      double u = uniform01(options.seed, /*stream=*/0x67656e,
                           static_cast<unsigned long long>(i)) *
                 total;
      for (int v = 0; v < kByteVocabulary; ++v) {
        if (weights[v] == 0)
          continue;
        byte = v;
        if (u < weights[v])
          break;
        u -= weights[v];
      }
    }
    char c = static_cast<char>(byte);
    textSoFar.push_back(c);
    std::fputc(c, stdout);
  }
  std::fflush(stdout);
  return kTrainerSuccess;
}

} // namespace

int kiln::runtime::trainerMain(int argc, char **argv,
                               const EmbeddedModel &model) {
  if (argc > 0 && argv[0]) {
    trainerName() = argv[0];
    if (size_t slash = trainerName().rfind('/'); slash != std::string::npos)
      trainerName() = trainerName().substr(slash + 1);
  }
  TrainerFlags options;
  options.trainBatch = model.trainBatch;
  options.evalBatch = model.evalBatch;
  if (int code = parseTrainerFlags(argc, argv, options))
    return code;
  if (options.help) {
    printTrainerHelp(model);
    return kTrainerSuccess;
  }
  if (options.version) {
    std::printf("%s: model %.*s, compiled by kiln %.*s (%.*s)\n",
                trainerName().c_str(), int(model.name.size()),
                model.name.data(), int(model.kilnVersion.size()),
                model.kilnVersion.data(), int(model.compileOptions.size()),
                model.compileOptions.data());
    return kTrainerSuccess;
  }
  // Under mpirun with several ranks: join them (each rank names itself in
  // its messages), and stop them all when this rank fails.
  std::unique_ptr<Communicator> world;
  if (int launched = launchedRanks(); launched > 1) {
    auto joined = joinMpi(options.timeout);
    if (!joined.ok())
      return fail(
          kTrainerRuntimeError,
          "launched on " + std::to_string(launched) +
              " ranks, but cannot join them: " + joined.status().message());
    world = std::move(*joined);
    trainerName() += " (rank " + std::to_string(world->rank()) + ")";
  }
  Trainer trainer(model, options, world.get());
  int code = trainer.run();
  if (code != kTrainerSuccess && world && world->size() > 1)
    world->abort(code);
  return code;
}
