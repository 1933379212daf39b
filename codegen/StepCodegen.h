//===- StepCodegen.h - a planned module as source and program ---*- C++ -*-===//
//
// The last compiler stage: the step functions (`kiln.step` = "train",
// "eval") of a module after `kiln-plan-memory` become
//
//   - two translation units with every kernel they launch: for the GPU
//     (CUDA C for NVRTC) and for the CPU (C++ for the host compiler), with
//     the same kernel symbols; kernels that generate the same code are
//     emitted once;
//   - a runtime::Program (runtime/Program.h): per step, its arguments, the
//     arena size, the launches in order with the buffers each reads and
//     writes, and where each result lives; per kernel, its keys, source
//     lines and schedules;
//   - for kernels with candidate schedules (`kiln.candidates`, kiln-schedule
//     `candidates=N`), two more translation units with each candidate as a
//     kernel of its own (`SYMBOL__cuda1`, `SYMBOL__cpu1`, ...), which a
//     tuner compiles and times in place of the kernel.
//
// One program serves both targets (the CPU ignores the CUDA launch
// configurations), so the CPU and the GPU run the same plan.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_CODEGEN_STEPCODEGEN_H
#define KILN_CODEGEN_STEPCODEGEN_H

#include "codegen/KernelCodegen.h"
#include "runtime/Program.h"

#include "mlir/IR/BuiltinOps.h"

namespace kiln::codegen {

struct GeneratedProgram {
  runtime::Program program;
  /// The translation units: the preamble and every distinct kernel.
  std::string cudaSource, cppSource;
  /// The candidates' translation units: the preamble and every candidate
  /// kernel; empty when there are none.
  std::string cudaCandidates, cppCandidates;
  const std::string &source(Target target) const {
    return target == Target::cuda ? cudaSource : cppSource;
  }
  /// Kernels launched, and distinct kernels emitted.
  unsigned launches = 0, kernels = 0;
};

/// Generates the step functions of `module`, which must have been through
/// `kiln-plan-memory`. Fails with located errors (an unplanned step, an op
/// outside a kernel, a kernel the generators do not handle).
mlir::FailureOr<GeneratedProgram> generateProgram(mlir::ModuleOp module);

/// One program from several compiles of a model, e.g. its training step
/// planned at batch 128 and its evaluation step at batch 1000: the steps of
/// kind `kind` ("train", "eval") of each module given, in order. Kernels
/// the steps share are emitted once.
struct StepSource {
  mlir::ModuleOp module;
  std::string kind;
};
mlir::FailureOr<GeneratedProgram>
generateProgram(llvm::ArrayRef<StepSource> sources);

} // namespace kiln::codegen

#endif // KILN_CODEGEN_STEPCODEGEN_H
