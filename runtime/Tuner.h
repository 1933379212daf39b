//===- Tuner.h - the fastest schedule of each kernel, cached ----*- C++ -*-===//
//
// What `--tune` does on the device a trainer runs on. A program compiled
// with candidate schedules (`kiln compile --tune-candidates N`; trainers
// carry 7 a kernel and target) lists, per kernel, other schedules of its
// space, each generated as a kernel of its own (Program.h, KernelCandidate).
// For each kernel a step launches, the tuner
//
//   1. looks up its choice in the cache: `<cacheDir>/tuning/<key>.txt`, the
//      key a SHA-256 of the kernel's keys (its contents), its schedule and
//      candidates, the sizes it is launched with, the device and the
//      compiler that build and run it (TuneTarget::identity) and
//      kTuningVersion;
//   2. otherwise, while the time budget lasts, times its launches in the
//      step with its own schedule and with each candidate (the best of
//      repeated runs, on scratch buffers the backend holds apart from the
//      model's), keeps the fastest, and caches the choice. The compiler's
//      schedule stays unless a candidate is at least kTuningMargin faster,
//      so noise does not flip choices; kernels left when the budget runs
//      out keep theirs, uncached, for a later run to tune.
//
// The backend then launches the chosen candidates in place of the kernels
// (applyTuning). A candidate computes what its kernel computes, in the
// summation order its schedule implies (split-K on the GPU), so a
// deterministic schedule stays bit-identical from run to run. The choices
// print as a schedules file (tunedSchedules) that `kiln compile --schedules
// FILE` compiles in, for a trainer that needs no tuning.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_TUNER_H
#define KILN_RUNTIME_TUNER_H

#include "runtime/Program.h"
#include "runtime/Status.h"

#include <string>
#include <vector>

namespace kiln::runtime {

/// The version of the tuner's cache entries and of what they depend on
/// beyond the program (the generators' candidates and timing): bumping it
/// retunes every kernel.
inline constexpr int kTuningVersion = 1;

/// How much faster than the compiler's schedule a candidate must be to
/// replace it (a fraction of the compiler's time).
inline constexpr double kTuningMargin = 0.03;

struct TuneOptions {
  /// Seconds of timing at most, over every kernel.
  double budgetSeconds = 60;
  /// The cache's directory (defaultCacheDir()); empty: no cache.
  std::string cacheDir;
};

/// One kernel's outcome.
struct TunedKernel {
  std::string kernel;
  std::string target;
  /// The candidate chosen (an index into the kernel's candidates), or -1:
  /// the compiler's schedule.
  int candidate = -1;
  /// Its schedule, and the compiler's, as the IR prints them.
  std::string schedule, heuristic;
  /// Milliseconds of its launches in a step, with the compiler's schedule
  /// and with the chosen one (as measured when it was tuned).
  double heuristicMs = 0, tunedMs = 0;
  enum class Source { tuned, cache, untuned };
  /// Timed now, taken from the cache, or left as compiled when the budget
  /// ran out.
  Source source = Source::tuned;
};

struct TuneReport {
  std::string target;
  /// The kernels of the step that have candidates, in launch order.
  std::vector<TunedKernel> kernels;
  /// Seconds spent, compiling candidates and timing.
  double seconds = 0;
  /// Where the choices are cached (empty: nowhere).
  std::string cacheDir;

  unsigned count(TunedKernel::Source source) const;
  /// The milliseconds a step spends in these kernels with the chosen
  /// schedules, and with the compiler's.
  double tunedMs() const;
  double heuristicMs() const;
};

/// What a backend does for the tuner.
class TuneTarget {
public:
  virtual ~TuneTarget() = default;
  /// "cuda" or "cpu": which candidates it runs.
  virtual std::string target() const = 0;
  /// The device and the compilers that build and run its kernels (name,
  /// driver and compiler versions, flags): part of every cache key.
  virtual std::string identity() const = 0;
  /// Compiles `source` (the preamble and some candidates' kernels) so that
  /// time() can launch them.
  virtual Status load(const std::string &source) = 0;
  /// Milliseconds of the step's launches `launches` (all of one kernel),
  /// launched as `variant` (null: as compiled), the best of repeated runs.
  virtual StatusOr<double> time(const std::vector<size_t> &launches,
                                const KernelCandidate *variant) = 0;
};

/// Tunes the kernels of `step` (of `program`) that have candidates for
/// `target`; `candidatesSource` holds their kernels.
StatusOr<TuneReport> tuneStep(const Program &program, const Step &step,
                              const std::string &candidatesSource,
                              TuneTarget &target, const TuneOptions &options);

/// The kernels of `candidatesSource` that `report` chose, with its
/// preamble: what the backend compiles to launch them. Empty when it chose
/// none.
std::string chosenSource(const Program &program, const TuneReport &report,
                         const std::string &candidatesSource);

/// Launches the chosen candidates in place of their kernels in every step
/// of `program` (symbol and CUDA launch configuration).
void applyTuning(Program &program, const TuneReport &report);

/// The schedules `report` chose, as a schedules file (`KERNEL@HASH TARGET =
/// SCHEDULE`, a line per key of each kernel tuned or cached) for `kiln
/// compile --schedules FILE`.
std::string tunedSchedules(const Program &program, const TuneReport &report);

/// A one-line summary for a trainer: kernels tuned, cached and left, the
/// time spent, and the step's time in them before and after.
std::string describeTuning(const TuneReport &report, double budgetSeconds);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_TUNER_H
