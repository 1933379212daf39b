//===- TextData.cpp - byte-level text for language-model trainers ---------===//

#include "runtime/TextData.h"

#include "runtime/Dataset.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

using namespace kiln::runtime;

StatusOr<TextData> kiln::runtime::loadText(const std::string &path) {
  errno = 0;
  std::FILE *file = std::fopen(path.c_str(), "rb");
  if (!file)
    return Status::error("cannot read '" + path +
                         "': " + std::strerror(errno ? errno : ENOENT));
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  size_t got = 0;
  while ((got = std::fread(chunk, 1, sizeof(chunk), file)) > 0)
    bytes.insert(bytes.end(), chunk, chunk + got);
  bool failed = std::ferror(file);
  std::fclose(file);
  if (failed)
    return Status::error("cannot read '" + path + "': read error");
  if (bytes.empty())
    return Status::error("'" + path + "' is empty");
  TextData data;
  size_t heldOut = bytes.size() / 10;
  data.train.assign(bytes.begin(), bytes.end() - heldOut);
  data.heldOut.assign(bytes.end() - heldOut, bytes.end());
  return data;
}

void kiln::runtime::trainingBatch(const std::vector<uint8_t> &text,
                                  int64_t context, int64_t batch, uint64_t seed,
                                  uint64_t step, TextBatch &out) {
  // "text" in ASCII keeps these draws apart from the image shuffles'.
  std::seed_seq seq{uint32_t(seed), uint32_t(seed >> 32), uint32_t(step),
                    uint32_t(step >> 32), uint32_t(0x74657874)};
  std::mt19937_64 rng(seq);
  // A window starts at most at size - context - 1.
  uint64_t starts = text.size() - static_cast<uint64_t>(context);
  out.tokens.resize(static_cast<size_t>(batch * context));
  out.targets.resize(out.tokens.size());
  for (int64_t b = 0; b < batch; ++b) {
    size_t start = static_cast<size_t>(uniformBelow(rng, starts));
    for (int64_t t = 0; t < context; ++t) {
      out.tokens[b * context + t] = text[start + t];
      out.targets[b * context + t] = text[start + t + 1];
    }
  }
}

int64_t kiln::runtime::windowCount(const std::vector<uint8_t> &text,
                                   int64_t context) {
  int64_t size = static_cast<int64_t>(text.size());
  return size <= context ? 0 : (size - 1) / context;
}

void kiln::runtime::evaluationBatch(const std::vector<uint8_t> &text,
                                    int64_t context, int64_t first,
                                    int64_t batch, TextBatch &out) {
  out.tokens.resize(static_cast<size_t>(batch * context));
  out.targets.resize(out.tokens.size());
  for (int64_t b = 0; b < batch; ++b) {
    size_t start = static_cast<size_t>((first + b) * context);
    for (int64_t t = 0; t < context; ++t) {
      out.tokens[b * context + t] = text[start + t];
      out.targets[b * context + t] = text[start + t + 1];
    }
  }
}

bool kiln::runtime::isTextProgram(const Program &program) {
  const Step *train = program.step("train");
  if (!train)
    return false;
  for (const StepArgument &arg : train->arguments)
    if (arg.role == Role::input &&
        (arg.name == "tokens" || arg.name == "targets"))
      return true;
  return false;
}

namespace {

bool isInteger(DType dtype) {
  return dtype == DType::I32 || dtype == DType::I64;
}

/// `[batch, 8, 128]`: a size per batch of a step with a run-time batch
/// named as the model file names it.
std::string shapeOf(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    int64_t size = shape[i];
    text += i ? ", " : "";
    if (!isPerBatch(size))
      text += std::to_string(size);
    else
      text += size == -1 ? "batch" : std::to_string(-size) + " * batch";
  }
  return text + "]";
}

/// The step's inputs must be exactly `names`, integer, [batch, T] with one
/// T; sets `context` from the first.
Status checkInputs(const Step &step, std::vector<std::string> names,
                   int64_t &context) {
  std::vector<std::string> found;
  for (const StepArgument &arg : step.arguments) {
    if (arg.role != Role::input)
      continue;
    found.push_back(arg.name);
    if (std::find(names.begin(), names.end(), arg.name) == names.end())
      return Status::error("a text model's inputs are 'tokens' and "
                           "'targets'; the " +
                           step.kind + " step also takes '" + arg.name + "'");
    if (!isInteger(arg.dtype) || arg.shape.size() != 2)
      return Status::error("a text model's input '" + arg.name +
                           "' must be i32[batch, T] (or i64), not " +
                           dtypeName(arg.dtype) + shapeOf(arg.shape));
    if (context == 0)
      context = arg.shape[1];
    if (arg.shape[1] != context)
      return Status::error("the text model's inputs have different context "
                           "lengths: " +
                           std::to_string(context) + " and " +
                           std::to_string(arg.shape[1]));
  }
  for (const std::string &name : names)
    if (std::find(found.begin(), found.end(), name) == found.end())
      return Status::error("a text model needs an input '" + name +
                           "' of shape [batch, T] (the " + step.kind +
                           " step has none)");
  return Status::success();
}

} // namespace

StatusOr<TextModel> kiln::runtime::describeTextModel(const Program &program) {
  TextModel model;
  const Step *train = program.step("train");
  const Step *eval = program.step("eval");
  if (!train || !eval)
    return Status::error("the program needs a train and an eval step");
  for (const Step *step : {train, eval})
    if (Status s = checkInputs(*step, {"tokens", "targets"}, model.context);
        !s.ok())
      return s;
  const Step *predict = program.step("predict");
  if (!predict)
    return Status::error(
        "a text model needs its logits as an output, to check the "
        "vocabulary and to generate text: add `output logits = logits` "
        "(shape [batch, " +
        std::to_string(model.context) + ", 256])");
  if (Status s = checkInputs(*predict, {"tokens"}, model.context); !s.ok())
    return s;
  int64_t batch = 0;
  for (const StepArgument &arg : predict->arguments)
    if (arg.role == Role::input)
      batch = arg.shape[0];
  for (const StepResult &result : predict->results) {
    if (result.role != Role::output || result.shape.size() != 3 ||
        result.shape[0] != batch || result.shape[1] != model.context)
      continue;
    if (result.shape[2] != kByteVocabulary)
      return Status::error(
          "the text trainer models bytes: the output '" + result.name +
          "' must have 256 logits per position (one per byte value), not " +
          std::to_string(result.shape[2]) + " (shape " + shapeOf(result.shape) +
          ")");
    if (result.dtype != DType::F32 && result.dtype != DType::F64)
      return Status::error("the output '" + result.name +
                           "' must be float logits");
    model.logits = result.name;
    model.logitsType = result.dtype;
    return model;
  }
  return Status::error("a text model needs an output of shape [batch, " +
                       std::to_string(model.context) +
                       ", 256]: the logits of each position (`output "
                       "logits = logits`)");
}
