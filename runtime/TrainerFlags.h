//===- TrainerFlags.h - a compiled trainer's command line -------*- C++ -*-===//
//
// The flags of a compiled trainer (Trainer.h), parsed into TrainerFlags
// before any work: a bad command line is exit 2 with a message naming the
// flag, as `kiln train`'s is. Also the trainer's name in its messages.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_TRAINERFLAGS_H
#define KILN_RUNTIME_TRAINERFLAGS_H

#include "runtime/Trainer.h"

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

namespace kiln::runtime {

/// A trainer's command line (`--help` lists it; docs/cli.md, "The
/// trainer").
struct TrainerFlags {
  std::string device;  ///< "cuda", "cpu", or empty: cuda when available
  std::string dataDir; ///< --data; empty: the model kind's default
  /// --test-data: the test split of file data; empty: the last heldOut of
  /// the training data.
  std::string testData;
  double heldOut = 0.1;
  int64_t epochs = 3;
  bool epochsGiven = false;
  int64_t stepsPerEpoch = 0; ///< text models; 0: the text's size / tokens
  int64_t generate = -1;     ///< bytes to sample; -1: none
  std::optional<std::string> prompt;
  double temperature = 1.0;
  int64_t topK = 0; ///< 0: every byte value
  uint64_t seed = 0;
  std::string savePath; ///< empty: <model>.safetensors; "none": no saving
  std::string logPath;  ///< empty: <model>.metrics.jsonl; "none": no log
  std::string resumeFrom;
  int64_t evalEvery = 0; ///< steps; 0: only at the end of each epoch
  int64_t trainLimit = 0, testLimit = 0;
  /// The base learning rate; NaN: the one the model was compiled with.
  double lr = std::nan("");
  /// The batch sizes of the training and evaluation steps (defaults: the
  /// model's).
  int64_t trainBatch = 0, evalBatch = 0;
  /// --tune: time the kernels' candidate schedules first (Tuner.h), for at
  /// most tuneBudget seconds; --tuned-schedules FILE writes the choices.
  bool tune = false;
  double tuneBudget = 60;
  std::string tunedSchedules;
  /// --threads: the CPU kernels' threads; 0: the CPUs available.
  int64_t threads = 0;
  /// --timeout: seconds a collective waits for the other ranks.
  double timeout = 300;
  bool help = false, version = false;
};

/// Parses argv into `flags` (which holds the defaults); returns an exit
/// code, kTrainerSuccess to go on.
int parseTrainerFlags(int argc, char **argv, TrainerFlags &flags);

/// Prints `--help` for the trainer of `model`.
void printTrainerHelp(const EmbeddedModel &model);

/// The trainer's name in its messages: its file name, and its rank under
/// mpirun (`mlp-train (rank 1)`).
std::string &trainerName();

/// Prints `<trainer>: error: message` to standard error (after flushing
/// standard output) and returns `code`.
int trainerError(int code, const std::string &message);

/// A non-negative integer, all of `text`.
bool parseCount(const std::string &text, int64_t &out);

/// A finite number, all of `text`.
bool parseNumber(const std::string &text, double &out);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_TRAINERFLAGS_H
