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
//   collective all_reduce_mean F32 dims 401408,512 buffers @0 @1605632
//       @0 @1605632                              (one line in the file)
//   result loss loss F32 - @2940928
//   result param l1.weight F32 512,784 a0
//   end
//
// Then a record per generated kernel: its keys (what a schedules file
// names), the source lines of the ops it fuses, its schedule per target,
// and the other schedules a tuner may time, each generated as a kernel of
// its own in the candidates' sources (grid extents there are formulas of
// the launch's dims, as below):
//
//   kernel matmul_add_relu keys matmul_add_relu@5f0e3a1b2c4d6e78
//       source mlp.kiln:7,8                      (one line in the file)
//   schedule cuda #kiln.gemm<bm = 32, bn = 16, bk = 16, tm = 2, ...>
//   schedule cpu #kiln.cpu_gemm<mr = 6, nr = 64>
//   candidate cpu matmul_add_relu__cpu1 grid 1,1,1 block 1,1,1 shared 0
//       schedule #kiln.cpu_gemm<mr = 8, nr = 32>   (one line in the file)
//   end
//
// A `collective` (a data-parallel step's all-reduce of its gradients,
// passes/DataParallel.cpp) runs no kernel: the runtime's communicator
// combines its inputs across ranks into its results (here in place), or,
// with one rank, skips it.
//
// A buffer is `aN` (the step's argument N: a parameter, state or input the
// caller owns, also written in place by updates) or `@OFFSET` (bytes into
// the step's arena). Shapes are comma-separated; `-` is a scalar. Numbers
// in `init` are written with 17 significant digits so they read back
// exactly.
//
// A step compiled with a run-time batch (`kiln compile --max-batch N`
// without binding `batch`) says so on its first line, and its sizes that
// follow the batch are written in terms of it: `b` is the batch, `4*b` four
// times it, and a grid extent is a formula of the launch's dims (`d0/128`:
// dims[0] over 128, rounded up). Its arena is planned for the largest batch;
// every buffer shrinks in place for a smaller one:
//
//   step train mlp_train_step arena 23535616 max-batch 1024
//   arg input x F32 b,784
//   launch matmul_add_relu grid d0/128,2,1 block 256,1,1 shared 0 seed 0
//       dims b buffers a13 a0 a1 @0 @2097152
//
// bindBatch fixes the batch of such a step before a backend runs it.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_PROGRAM_H
#define KILN_RUNTIME_PROGRAM_H

#include "runtime/Safetensors.h"
#include "runtime/Status.h"

#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
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

/// A size of a step with a run-time batch: -k stands for k times the batch.
inline bool isPerBatch(int64_t size) { return size < 0; }
/// `size` at batch `batch`.
inline int64_t sizeAtBatch(int64_t size, int64_t batch) {
  return size < 0 ? -size * batch : size;
}

/// What a step's argument or result is to its caller (the IR's
/// `kiln.role`): arguments are parameters, optimizer state,
/// hyper-parameters (read, never returned) and inputs; results are also
/// the loss, metrics and outputs.
enum class Role { param, state, hyper, input, loss, metric, output };

/// "param", "state", "hyper", "input", "loss", "metric", "output".
const char *roleName(Role role);
/// The role spelled `name`, if any.
std::optional<Role> parseRole(std::string_view name);

/// Whether a checkpoint holds an argument of `role` (Safetensors.h).
inline bool isCheckpointed(Role role) {
  return isCheckpointed(std::string_view(roleName(role)));
}
/// The checkpoint's name of an argument of `role` (Safetensors.h).
inline std::string checkpointName(Role role, std::string_view name) {
  return checkpointName(std::string_view(roleName(role)), name);
}

/// A tensor the caller sees: an argument or a result of a step.
struct TensorSpec {
  Role role = Role::input;
  /// The parameter's checkpoint key (l1.weight), the input's or metric's
  /// name.
  std::string name;
  DType dtype = DType::F32;
  /// Sizes; per batch (isPerBatch) in a step with a run-time batch.
  std::vector<int64_t> shape;

  /// Of a fixed shape.
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

/// One extent of a CUDA grid: ceil(constant * (product of the launch's
/// dims listed in `dynamicFactors`) / perBlock), at least 1.
struct GridExtent {
  int64_t constant = 1;
  std::vector<unsigned> dynamicFactors;
  int64_t perBlock = 1;

  /// The extent for the values of the launch's dims (all fixed): any
  /// contiguous container of int64_t.
  template <typename Dims> int64_t evaluate(const Dims &dims) const {
    const int64_t *values = std::data(dims);
    int64_t n = constant;
    for (unsigned f : dynamicFactors)
      n *= values[f];
    return n <= 0 ? 1 : (n + perBlock - 1) / perBlock;
  }
  int64_t evaluate(std::initializer_list<int64_t> dims) const {
    return evaluate<std::initializer_list<int64_t>>(dims);
  }
  /// Whether it is `constant` whatever the dims.
  bool isFixed() const { return dynamicFactors.empty() && perBlock == 1; }
};

/// A grid extent as the program text writes it: `4`, or a formula of the
/// launch's dims such as `d0/128` or `6*d0*d1/64`.
std::string gridExtentText(const GridExtent &extent);

/// A collective across the ranks of a data-parallel run (Collective.h).
enum class Collective { none, allReduceSum, allReduceMean };

/// "all_reduce_sum", "all_reduce_mean" ("none" for none).
const char *collectiveName(Collective collective);

/// One kernel launch, or one collective.
struct Launch {
  /// The kernel's symbol in the generated source; empty for a collective.
  std::string kernel;
  /// A collective (an all-reduce) runs no kernel: `buffers` lists its
  /// inputs then its results (a result in its input's buffer is reduced in
  /// place), `dims` the elements of each, and `dtype` is theirs.
  Collective collective = Collective::none;
  DType dtype = DType::F32;
  /// The kernel's inputs then its results (KernelCodegen.h's convention).
  std::vector<BufferRef> buffers;
  /// The values of the kernel's dynamic-size parameters (per batch in a
  /// step with a run-time batch).
  std::vector<int64_t> dims;
  /// The CUDA launch configuration (the CPU ignores it).
  GridExtent grid[3];
  unsigned block[3] = {1, 1, 1};
  unsigned sharedBytes = 0;
  /// Whether the kernel takes the step's random seed.
  bool takesSeed = false;

  /// Grid extent `i` for the launch's (fixed) dims.
  unsigned gridSize(int i) const {
    return static_cast<unsigned>(grid[i].evaluate(dims));
  }
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
  /// 0: every size is fixed. Otherwise the step takes any batch from 1 to
  /// maxBatch, its arena planned for maxBatch, and bindBatch must fix it
  /// before a backend runs it.
  int64_t maxBatch = 0;
  std::vector<StepArgument> arguments;
  std::vector<Launch> launches;
  std::vector<StepResult> results;
};

/// Another schedule of a kernel, generated as a kernel of its own (in the
/// candidates' source) for a tuner to time: what to launch in its place.
struct KernelCandidate {
  /// "cuda" or "cpu".
  std::string target;
  /// Its symbol in the candidates' source for `target`.
  std::string symbol;
  /// Its schedule attribute, as the IR prints it.
  std::string schedule;
  /// Its CUDA launch: grid extents as formulas of the launch's dims.
  GridExtent grid[3];
  unsigned block[3] = {1, 1, 1};
  unsigned sharedBytes = 0;
};

/// What the compiler knows of one generated kernel, for profiles and the
/// tuner.
struct KernelInfo {
  /// The kernel's symbol, as launches name it.
  std::string symbol;
  /// The keys of the IR kernels it was generated from (ir/Schedules.h:
  /// `matmul_add_relu@5f0e3a1b2c4d6e78`): what a schedules file names.
  std::vector<std::string> keys;
  /// Where the ops it fuses come from: `mlp.kiln:7,8,12`.
  std::string source;
  /// Its schedule per target ("cuda", "cpu"), as the IR prints it; empty
  /// when it has none there.
  std::string cudaSchedule, cpuSchedule;
  /// Other schedules, the likeliest first.
  std::vector<KernelCandidate> candidates;

  const std::string &schedule(const std::string &target) const {
    return target == "cuda" ? cudaSchedule : cpuSchedule;
  }
};

struct Program {
  std::string model;
  std::vector<Step> steps;
  /// The generated kernels, each once (none in a hand-written program).
  std::vector<KernelInfo> kernels;

  /// The step of `kind`, or null.
  const Step *step(const std::string &kind) const;
  /// The kernel `symbol`, or null.
  const KernelInfo *kernel(const std::string &symbol) const;
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
/// argument or lies inside the arena, every kernel is named, each result's
/// buffer is valid, and only a step with a run-time batch has sizes per
/// batch, each dynamic grid factor naming one of its launch's dims.
Status verifyProgram(const Program &program);

/// Fixes the batch of step `kind` (a step with a run-time batch) to
/// `batch`, from 1 to its maxBatch: every size per batch becomes a number
/// and every grid extent a constant. An error for a step whose sizes are
/// fixed, or a batch out of range.
Status bindBatch(Program &program, const std::string &kind, int64_t batch);

/// Fixes every step with a run-time batch at its largest batch.
Status bindLargestBatches(Program &program);

/// Removes every step's collectives, which are the identity on one rank,
/// for a backend that runs one; an error for a collective whose results
/// are not its inputs' buffers (the identity would then be a copy).
Status dropCollectives(Program &program);

/// An error unless every step's sizes are fixed (what a backend runs).
Status requireFixedSizes(const Program &program);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_PROGRAM_H
