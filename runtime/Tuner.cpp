//===- Tuner.cpp - the fastest schedule of each kernel, cached ------------===//

#include "runtime/Tuner.h"
#include "runtime/AtomicFile.h"
#include "runtime/Nvrtc.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace kiln::runtime;
using Clock = std::chrono::steady_clock;

unsigned TuneReport::count(TunedKernel::Source source) const {
  unsigned n = 0;
  for (const TunedKernel &k : kernels)
    n += k.source == source;
  return n;
}

double TuneReport::tunedMs() const {
  double total = 0;
  for (const TunedKernel &k : kernels)
    total += k.tunedMs;
  return total;
}

double TuneReport::heuristicMs() const {
  double total = 0;
  for (const TunedKernel &k : kernels)
    total += k.heuristicMs;
  return total;
}

namespace {

/// The candidate kernels compiled at once, at most (unless one kernel has
/// more): the tuner compiles a few kernels' candidates, times them, then
/// goes on with the next while the budget lasts.
constexpr size_t kCandidatesPerLoad = 64;

/// One kernel of the step to tune: its record and its launches.
struct Tunable {
  const KernelInfo *info;
  std::vector<size_t> launches;
  /// Its candidates for the target (indices into info->candidates).
  std::vector<int> candidates;
};

/// The cache entry's name for `kernel` launched as `launches` of `step`.
std::string cacheKey(const Tunable &kernel, const Step &step,
                     const std::string &target, const std::string &identity) {
  std::string key = "kiln-tuning-v" + std::to_string(kTuningVersion);
  auto add = [&](const std::string &text) { key += '\0' + text; };
  add(identity);
  add(target);
  for (const std::string &k : kernel.info->keys)
    add(k);
  add(kernel.info->schedule(target));
  for (int c : kernel.candidates)
    add(kernel.info->candidates[size_t(c)].schedule);
  for (size_t l : kernel.launches) {
    std::string dims = "dims";
    for (int64_t d : step.launches[l].dims)
      dims += " " + std::to_string(d);
    add(dims);
  }
  return sha256Hex(key).substr(0, 32);
}

std::string readText(const std::filesystem::path &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// Reads a cached choice into `out` (its schedule and times); false when
/// there is none or it names no schedule of the kernel.
bool readChoice(const std::string &file, const Tunable &kernel,
                TunedKernel &out) {
  std::istringstream in(readText(file));
  std::string line, schedule;
  double heuristicMs = -1, tunedMs = -1;
  while (std::getline(in, line)) {
    if (line.rfind("schedule ", 0) == 0)
      schedule = line.substr(9);
    else if (line.rfind("heuristic-ms ", 0) == 0)
      heuristicMs = std::strtod(line.c_str() + 13, nullptr);
    else if (line.rfind("tuned-ms ", 0) == 0)
      tunedMs = std::strtod(line.c_str() + 9, nullptr);
  }
  if (schedule.empty() || heuristicMs < 0 || tunedMs < 0)
    return false;
  out.candidate = -1;
  if (schedule != out.heuristic) {
    bool found = false;
    for (int c : kernel.candidates)
      if (kernel.info->candidates[size_t(c)].schedule == schedule) {
        out.candidate = c;
        found = true;
      }
    if (!found)
      return false;
  }
  out.schedule = schedule;
  out.heuristicMs = heuristicMs;
  out.tunedMs = tunedMs;
  out.source = TunedKernel::Source::cache;
  return true;
}

Status writeChoice(const std::string &file, const TunedKernel &choice) {
  char times[96];
  std::snprintf(times, sizeof(times), "heuristic-ms %.6f\ntuned-ms %.6f\n",
                choice.heuristicMs, choice.tunedMs);
  std::string text = "kiln-tuning " + std::to_string(kTuningVersion) +
                     "\nkernel " + choice.kernel + "\ntarget " + choice.target +
                     "\nschedule " + choice.schedule + "\n" + times;
  auto bytes = reinterpret_cast<const uint8_t *>(text.data());
  return writeFileAtomically(file, {{bytes, text.size()}});
}

/// The kernels of `source` (preamble, then kernels after kKernelMarker)
/// that define one of `symbols`, in the source's order, with the preamble.
std::string kernelsOf(const std::string &source,
                      const std::vector<std::string> &symbols) {
  const std::string marker = kKernelMarker;
  size_t first = source.find(marker);
  if (first == std::string::npos || symbols.empty())
    return "";
  std::string result = source.substr(0, first);
  for (size_t at = first; at != std::string::npos;) {
    size_t next = source.find(marker, at + marker.size());
    std::string_view kernel(source.data() + at,
                            (next == std::string::npos ? source.size() : next) -
                                at);
    for (const std::string &symbol : symbols)
      if (kernel.find(" " + symbol + "(") != std::string_view::npos) {
        result += kernel;
        break;
      }
    at = next;
  }
  return result;
}

} // namespace

StatusOr<TuneReport>
kiln::runtime::tuneStep(const Program &program, const Step &step,
                        const std::string &candidatesSource, TuneTarget &target,
                        const TuneOptions &options) {
  auto start = Clock::now();
  TuneReport report;
  report.target = target.target();
  // The kernels with candidates for the target, in launch order.
  std::vector<Tunable> kernels;
  for (size_t l = 0; l < step.launches.size(); ++l) {
    const KernelInfo *info = program.kernel(step.launches[l].kernel);
    if (!info)
      continue;
    auto it = std::find_if(kernels.begin(), kernels.end(),
                           [&](const Tunable &k) { return k.info == info; });
    if (it == kernels.end()) {
      Tunable k{info, {}, {}};
      for (size_t c = 0; c < info->candidates.size(); ++c)
        if (info->candidates[c].target == report.target)
          k.candidates.push_back(int(c));
      if (k.candidates.empty() || info->schedule(report.target).empty())
        continue;
      kernels.push_back(std::move(k));
      it = kernels.end() - 1;
    }
    it->launches.push_back(l);
  }

  namespace fs = std::filesystem;
  std::string identity = target.identity();
  if (!options.cacheDir.empty()) {
    report.cacheDir = options.cacheDir + "/tuning";
    std::error_code error;
    fs::create_directories(report.cacheDir, error);
    if (error)
      return Status::error("cannot create the tuning cache " + report.cacheDir +
                           ": " + error.message());
  }
  // Cached choices first; the others are timed.
  std::vector<std::string> files;
  std::vector<size_t> misses;
  for (const Tunable &kernel : kernels) {
    TunedKernel choice;
    choice.kernel = kernel.info->symbol;
    choice.target = report.target;
    choice.heuristic = kernel.info->schedule(report.target);
    choice.schedule = choice.heuristic;
    std::string file;
    if (!report.cacheDir.empty())
      file = report.cacheDir + "/" +
             cacheKey(kernel, step, report.target, identity) + ".txt";
    files.push_back(file);
    if (file.empty() || !readChoice(file, kernel, choice)) {
      choice.source = TunedKernel::Source::untuned;
      misses.push_back(report.kernels.size());
    }
    report.kernels.push_back(std::move(choice));
  }
  auto elapsed = [&] {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  // The misses a few at a time: their candidates compiled together, then
  // timed, while the budget lasts (compiling counts).
  for (size_t first = 0; first < misses.size();) {
    size_t last = first, loaded = 0;
    std::vector<std::string> symbols;
    while (last < misses.size() &&
           (last == first || loaded + kernels[misses[last]].candidates.size() <=
                                 kCandidatesPerLoad)) {
      for (int c : kernels[misses[last]].candidates)
        symbols.push_back(
            kernels[misses[last]].info->candidates[size_t(c)].symbol);
      loaded += kernels[misses[last]].candidates.size();
      ++last;
    }
    if (elapsed() >= options.budgetSeconds)
      break;
    if (Status s = target.load(kernelsOf(candidatesSource, symbols)); !s.ok())
      return s;
    for (; first < last && elapsed() < options.budgetSeconds; ++first) {
      size_t index = misses[first];
      const Tunable &kernel = kernels[index];
      TunedKernel &choice = report.kernels[index];
      auto own = target.time(kernel.launches, nullptr);
      if (!own.ok())
        return Status::error("timing kernel '" + choice.kernel +
                             "': " + own.status().message());
      choice.heuristicMs = choice.tunedMs = *own;
      for (int c : kernel.candidates) {
        const KernelCandidate &candidate = kernel.info->candidates[size_t(c)];
        auto ms = target.time(kernel.launches, &candidate);
        // A candidate that cannot launch here (too many registers or too
        // much shared memory on this device) is no choice.
        if (!ms.ok())
          continue;
        if (*ms < choice.tunedMs &&
            *ms < (1 - kTuningMargin) * choice.heuristicMs) {
          choice.tunedMs = *ms;
          choice.candidate = c;
          choice.schedule = candidate.schedule;
        }
      }
      choice.source = TunedKernel::Source::tuned;
      if (!files[index].empty())
        if (Status s = writeChoice(files[index], choice); !s.ok())
          return s;
    }
    if (first < last)
      break;
  }
  report.seconds = elapsed();
  return report;
}

std::string kiln::runtime::chosenSource(const Program &program,
                                        const TuneReport &report,
                                        const std::string &candidatesSource) {
  std::vector<std::string> symbols;
  for (const TunedKernel &k : report.kernels)
    if (k.candidate >= 0)
      if (const KernelInfo *info = program.kernel(k.kernel))
        symbols.push_back(info->candidates[size_t(k.candidate)].symbol);
  return kernelsOf(candidatesSource, symbols);
}

void kiln::runtime::applyTuning(Program &program, const TuneReport &report) {
  for (const TunedKernel &k : report.kernels) {
    const KernelInfo *info = program.kernel(k.kernel);
    if (!info || k.candidate < 0)
      continue;
    const KernelCandidate &c = info->candidates[size_t(k.candidate)];
    for (Step &step : program.steps)
      for (Launch &launch : step.launches) {
        if (launch.kernel != k.kernel)
          continue;
        launch.kernel = c.symbol;
        for (int d = 0; d < 3; ++d) {
          // A step's sizes are fixed here: the extents are numbers.
          launch.grid[d] = {c.grid[d].evaluate(launch.dims), {}, 1};
          launch.block[d] = c.block[d];
        }
        launch.sharedBytes = c.sharedBytes;
      }
  }
}

std::string kiln::runtime::tunedSchedules(const Program &program,
                                          const TuneReport &report) {
  std::string text = "# kiln schedules tuned on " + report.target +
                     ": KERNEL@HASH TARGET = SCHEDULE (kiln compile "
                     "--schedules FILE)\n";
  for (const TunedKernel &k : report.kernels) {
    const KernelInfo *info = program.kernel(k.kernel);
    if (!info || k.source == TunedKernel::Source::untuned)
      continue;
    for (const std::string &key : info->keys)
      text += key + " " + k.target + " = " + k.schedule + "\n";
  }
  return text;
}

std::string kiln::runtime::describeTuning(const TuneReport &report,
                                          double budgetSeconds) {
  using Source = TunedKernel::Source;
  char text[512];
  std::snprintf(
      text, sizeof(text),
      "tuning on %s: %zu kernels, %u tuned and %u from the cache (%s) in "
      "%.2f s, %u left as compiled (--tune-budget %g s); %u changed, their "
      "launches take %.3f ms a step (%.3f ms as compiled)",
      report.target.c_str(), report.kernels.size(), report.count(Source::tuned),
      report.count(Source::cache),
      report.cacheDir.empty() ? "none" : report.cacheDir.c_str(),
      report.seconds, report.count(Source::untuned), budgetSeconds,
      unsigned(
          std::count_if(report.kernels.begin(), report.kernels.end(),
                        [](const TunedKernel &k) { return k.candidate >= 0; })),
      report.tunedMs(), report.heuristicMs());
  return text;
}
