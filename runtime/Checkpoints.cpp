//===- Checkpoints.cpp - a trainer's checkpoints --------------------------===//

#include "runtime/Checkpoints.h"

#include "runtime/TrainerFlags.h"

#include <map>

using namespace kiln::runtime;

namespace {

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

} // namespace

StatusOr<Checkpoint> kiln::runtime::readCheckpoint(const std::string &path,
                                                   const Step &step,
                                                   int64_t &epoch) {
  auto read = readSafetensors(path);
  if (!read.ok())
    return read.status();
  std::map<std::string, const TensorData *> byName;
  for (const TensorData &t : read->tensors)
    byName[t.name] = &t;
  for (const StepArgument &arg : step.arguments) {
    if (!isCheckpointed(arg.role))
      continue;
    std::string name = checkpointName(arg.role, arg.name);
    auto it = byName.find(name);
    if (it == byName.end())
      return Status::error(path + ": has no tensor '" + name + "'");
    const TensorData &t = *it->second;
    if (t.shape != arg.shape)
      return Status::error(path + ": '" + name + "' has shape " +
                           shapeText(t.shape) + ", the model expects " +
                           shapeText(arg.shape));
    if (t.dtype != arg.dtype)
      return Status::error(path + ": '" + name + "' has dtype " +
                           dtypeName(t.dtype) + ", the model expects " +
                           dtypeName(arg.dtype));
  }
  auto found = read->metadata.find("epoch");
  if (found == read->metadata.end() || !parseCount(found->second, epoch))
    return Status::error(path + ": no 'epoch' in its metadata");
  return read;
}

StatusOr<Checkpoint> kiln::runtime::takeCheckpoint(Backend &backend,
                                                   const Step &step,
                                                   const std::string &modelFile,
                                                   int64_t epoch,
                                                   uint64_t seed) {
  Checkpoint out;
  for (const StepArgument &arg : step.arguments) {
    if (!isCheckpointed(arg.role))
      continue;
    TensorData t;
    t.name = checkpointName(arg.role, arg.name);
    t.dtype = arg.dtype;
    t.shape = arg.shape;
    t.bytes.resize(static_cast<size_t>(arg.bytes()));
    if (Status s = backend.read(arg.name, t.bytes.data(), t.bytes.size());
        !s.ok())
      return s;
    out.tensors.push_back(std::move(t));
  }
  out.metadata["format"] = "kiln";
  out.metadata["model"] = modelFile;
  out.metadata["epoch"] = std::to_string(epoch);
  out.metadata["seed"] = std::to_string(seed);
  return out;
}
