//===- Trainer.h - main program of a compiled trainer -----------*- C++ -*-===//
//
// `kiln compile MODEL.kiln --emit=trainer -o FILE` writes a main.cpp that
// embeds the model's Program (Program.h, as text) and its kernels, for the
// GPU (CUDA C) and the CPU (C++), and calls trainerMain; linked against
// KilnRuntime it is a stand-alone trainer that needs no LLVM/MLIR:
//
//   int main(int argc, char **argv) {
//     kiln::runtime::EmbeddedModel model;
//     model.name = "mlp";
//     model.program = kProgram;           // raw string literals
//     ...
//     return kiln::runtime::trainerMain(argc, argv, model);
//   }
//
// The trainer trains on Fashion-MNIST on the GPU (the CUDA backend) or the
// CPU (the CPU backend), with the flags, output, metrics log, checkpoints
// and exit codes of `kiln train` (docs/cli.md, "Compiled trainers"); a
// byte-level language model (inputs `tokens` and `targets`) trains on a
// text file and generates text (docs/cli.md, "Text models").
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_TRAINER_H
#define KILN_RUNTIME_TRAINER_H

#include <cstdint>
#include <string_view>

namespace kiln::runtime {

/// What `kiln compile --emit=trainer` embeds in a trainer.
struct EmbeddedModel {
  /// The model's name (`mlp`): the default checkpoint and log file names.
  std::string_view name;
  /// The model file as given to `kiln compile`: the checkpoint metadata's
  /// "model", as `kiln train` writes it.
  std::string_view modelFile;
  /// The program (printProgram's text form, with a "train" and an "eval"
  /// step, and a "predict" step when the model has outputs) and its
  /// kernels, for the GPU (CUDA C) and for the CPU (C++).
  std::string_view program;
  std::string_view cudaSource;
  std::string_view cppSource;
  /// The kernels of the program's candidate schedules (KernelCandidate),
  /// for the GPU and the CPU, which --tune times; empty when there are
  /// none.
  std::string_view cudaCandidates;
  std::string_view cppCandidates;
  /// The default training and evaluation batches (`--batch`,
  /// `--eval-batch`; the steps take any batch up to their max-batch), and
  /// the predict step's rows (0: no predict step).
  int64_t trainBatch = 0;
  int64_t evalBatch = 0;
  int64_t predictBatch = 0;
  /// The `kiln compile` options that shaped the program (for --help and
  /// --version), and the version of kiln that compiled it.
  std::string_view compileOptions;
  std::string_view kilnVersion;
  /// A text model's default --data file (empty: --data is required).
  std::string_view defaultText;
};

/// The trainer's exit codes (the kiln driver's, docs/cli.md).
enum TrainerExitCode : int {
  kTrainerSuccess = 0,
  kTrainerUsageError = 2,   // a bad command line
  kTrainerIOError = 3,      // data or checkpoint cannot be read or written
  kTrainerRuntimeError = 4, // the device is unavailable, a kernel does not
                            // compile, the loss is not finite
};

/// Parses the trainer's command line and trains; returns the exit code.
int trainerMain(int argc, char **argv, const EmbeddedModel &model);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_TRAINER_H
