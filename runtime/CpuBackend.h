//===- CpuBackend.h - run a program's steps with C++ kernels ----*- C++ -*-===//
//
// The CPU backend: a step of a Program (Program.h) run launch by launch
// with the kernels' C++ (compiled by HostCompiler.h), over one arena the
// size the memory plan gave. The caller owns the argument buffers
// (parameters, optimizer state, inputs); updates written in place land
// there, and a parameter or state update the plan put in the arena is
// copied back into its argument at the end of the step, so after run() the
// arguments hold the new parameters and state.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_CPUBACKEND_H
#define KILN_RUNTIME_CPUBACKEND_H

#include "runtime/Backend.h"
#include "runtime/HostCompiler.h"
#include "runtime/Program.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace kiln::runtime {

class CpuStep {
public:
  /// Resolves every kernel of `step` in `library` (which must outlive the
  /// CpuStep) and allocates the arena.
  static StatusOr<CpuStep> create(const Step &step,
                                  const SharedLibrary &library);
  /// The same, each kernel found in the first of `libraries` that has it
  /// (the model's kernels, then tuned candidates).
  static StatusOr<CpuStep>
  create(const Step &step, const std::vector<const SharedLibrary *> &libraries);

  /// Runs the step; `arguments[i]` is argument i's buffer (step.arguments
  /// gives its type and shape). `seed` drives the random ops (dropout).
  /// With `seconds` (one entry per launch), adds each launch's time there.
  /// Fails only in a collective across ranks (setCommunicator).
  Status run(void *const *arguments, uint64_t seed, double *seconds = nullptr);

  /// Runs the step's collectives through `communicator` (null: one rank,
  /// where they are the identity).
  void setCommunicator(Communicator *c) { communicator = c; }

  /// Result i of the last run (step.results[i]).
  const void *result(size_t i) const { return resultPointers[i]; }

  const Step &step() const { return *program; }

  /// A kernel's `_entry` function (KernelCodegen.h).
  using Entry = void (*)(void *const *, const long long *, unsigned long long);
  /// The function launch `i` calls.
  Entry entry(size_t i) const { return launches[i].entry; }
  /// Where `ref` lies, given the arguments' buffers.
  void *pointer(const BufferRef &ref, void *const *arguments) const {
    return ref.kind == BufferRef::Kind::argument
               ? arguments[ref.value]
               : static_cast<void *>(arena + ref.value);
  }

private:
  struct Resolved {
    Entry entry; ///< null for a collective
    std::vector<BufferRef> buffers;
    std::vector<long long> dims;
  };
  /// Runs collective launch `launch` on `buffers`.
  Status runCollective(const Launch &launch,
                       const std::vector<void *> &buffers);

  const Step *program = nullptr;
  Communicator *communicator = nullptr;
  std::vector<Resolved> launches;
  /// The arena, 256-byte aligned.
  std::unique_ptr<uint8_t[]> storage;
  uint8_t *arena = nullptr;
  /// (result index, argument index) of updates to copy back after a step.
  std::vector<std::pair<size_t, size_t>> writeBack;
  std::vector<const void *> resultPointers;
};

/// The CPU backend of `program`: compiles `source` (its kernels as C++,
/// `kiln compile --emit=cpp`) with the host compiler (cached as `options`
/// says) and runs each step with a CpuStep. Its tune() times the C++
/// candidates (`kiln compile --emit=cpp-candidates`) on scratch buffers of
/// the step's sizes, with its threads, and compiles the chosen ones. With
/// `profile`, it times every launch with the clock (Backend::kernelTimes).
/// The kernels' parallel loops run on `threads` threads (ThreadPool.h; 0:
/// defaultThreads()); results do not depend on their number.
StatusOr<std::unique_ptr<Backend>>
createCpuBackend(const Program &program, const std::string &source,
                 const HostCompileOptions &options, bool profile = false,
                 int threads = 0);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_CPUBACKEND_H
