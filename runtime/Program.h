//===- Program.h - a compiled model's steps, for the runtime ----*- C++ -*-===//
//
// What `kiln compile` hands the runtime besides the kernels' source: for
// each step function (the training step, the evaluation step) its
// arguments, the arena the memory plan sized, the kernel launches in order
// with the buffers each reads and writes, and where each result lives. The
// runtime needs nothing else to run a step on the CPU (the C++ kernels) or
// the GPU (the CUDA kernels): no LLVM/MLIR at run time.
//
// The program travels as text (`kiln compile --emit=program`), one record
// per line, so a reader can follow a step launch by launch:
//
//   kiln-program 1
//   model mlp
//   step train mlp_train_step arena 2941696
//   arg param l1.weight F32 512,784 init kaiming_uniform 0.577 0
//   arg input x F32 128,784
//   launch matmul_add_relu grid 4,2,1 block 256,1,1 shared 0 seed 0
//       dims - buffers a13 a0 a1 @0 @262144          (one line in the file)
//   result loss loss F32 - @2940928
//   result param l1.weight F32 512,784 a0
//   end
//
// A buffer is `aN` (the step's argument N: a parameter, state or input the
// caller owns, also written in place by updates) or `@OFFSET` (bytes into
// the step's arena). Shapes are comma-separated; `-` is a scalar. Numbers
// in `init` are written with 17 significant digits so they read back
// exactly.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_PROGRAM_H
#define KILN_RUNTIME_PROGRAM_H

#include "runtime/Safetensors.h"
#include "runtime/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::runtime {

/// Where a kernel operand or a step result lives.
struct BufferRef {
  enum class Kind { argument, arena };
  Kind kind = Kind::arena;
  /// The argument's index, or the byte offset into the arena.
  int64_t value = 0;

  bool operator==(const BufferRef &other) const {
    return kind == other.kind && value == other.value;
  }
};

/// A tensor the caller sees: an argument or a result of a step.
struct TensorSpec {
  /// "param", "state", "input", or for results also "loss", "metric",
  /// "output".
  std::string role;
  /// The parameter's checkpoint key (l1.weight), the input's or metric's
  /// name.
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;

  int64_t elements() const;
  int64_t bytes() const { return elements() * dtypeSize(dtype); }
};

/// A parameter's initializer (runtime/Initializers.h), by kind name and
/// arguments, as the `#kiln.init` attribute says.
struct InitSpec {
  std::string kind; ///< empty: not a parameter
  double a = 0, b = 0;
};

struct StepArgument : TensorSpec {
  InitSpec init;
};

/// One kernel launch.
struct Launch {
  /// The kernel's symbol in the generated source.
  std::string kernel;
  /// The kernel's inputs then its results (KernelCodegen.h's convention).
  std::vector<BufferRef> buffers;
  /// The values of the kernel's dynamic-size parameters.
  std::vector<int64_t> dims;
  /// The CUDA launch configuration (the CPU ignores it).
  unsigned grid[3] = {1, 1, 1};
  unsigned block[3] = {1, 1, 1};
  unsigned sharedBytes = 0;
  /// Whether the kernel takes the step's random seed.
  bool takesSeed = false;
};

struct StepResult : TensorSpec {
  BufferRef buffer;
};

/// One step function: "train" (the training step), "eval" or "predict"
/// (forward only, returning the model's outputs).
struct Step {
  std::string kind;
  /// The function it was compiled from (mlp_train_step).
  std::string function;
  int64_t arenaBytes = 0;
  std::vector<StepArgument> arguments;
  std::vector<Launch> launches;
  std::vector<StepResult> results;
};

struct Program {
  std::string model;
  std::vector<Step> steps;

  /// The step of `kind`, or null.
  const Step *step(const std::string &kind) const;
};

/// The line that precedes each kernel in generated sources (after the
/// preamble every kernel needs), so a runtime can split a translation unit
/// into several that compile in parallel.
inline constexpr const char *kKernelMarker = "//--- kiln kernel\n";

/// `source` (a preamble, then kernels each preceded by kKernelMarker) as at
/// most `parts` translation units, each the preamble plus a contiguous run
/// of kernels of about equal length; one part when there is no marker.
std::vector<std::string> splitKernelSource(const std::string &source,
                                           unsigned parts);

/// The text form described above.
std::string printProgram(const Program &program);

/// Parses the text form; errors name `source` and the line.
StatusOr<Program> parseProgram(const std::string &text,
                               const std::string &source);

/// Checks what the runtime relies on: every buffer reference names an
/// argument or lies inside the arena, every kernel is named, and each
/// result's buffer is valid.
Status verifyProgram(const Program &program);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_PROGRAM_H
