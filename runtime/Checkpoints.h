//===- Checkpoints.h - a trainer's checkpoints ------------------*- C++ -*-===//
//
// A checkpoint is a safetensors file (Safetensors.h) of a training step's
// parameters and optimizer state, named as `kiln train` names them
// (checkpointName), with its metadata: "format" = "kiln", "model" (the
// model file), "epoch" (epochs done) and "seed". Trainers and `kiln train`
// resume each other's.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_CHECKPOINTS_H
#define KILN_RUNTIME_CHECKPOINTS_H

#include "runtime/Backend.h"
#include "runtime/Program.h"
#include "runtime/Safetensors.h"
#include "runtime/Status.h"

#include <cstdint>
#include <string>

namespace kiln::runtime {

/// Reads the checkpoint at `path` and checks it against `step`: a tensor of
/// the right shape and dtype for every parameter and state argument, and
/// its epoch in the metadata (returned in `epoch`). Errors name the file.
StatusOr<Checkpoint> readCheckpoint(const std::string &path, const Step &step,
                                    int64_t &epoch);

/// The parameters and state of `step` as `backend` holds them, with the
/// metadata above.
StatusOr<Checkpoint> takeCheckpoint(Backend &backend, const Step &step,
                                    const std::string &modelFile, int64_t epoch,
                                    uint64_t seed);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_CHECKPOINTS_H
