//===- StepBench.cpp - milliseconds per compiled training step ------------===//
//
// kiln-bench [--device cuda|cpu] [--steps N] [--seconds S] [--threads N]
// [--warm-up N] [--profile N] [--tune] [--tune-budget S] [--json FILE] DIR
// times every compiled model in DIR
// (MODEL.program, MODEL.cu and MODEL.cpp from `kiln compile
// --emit=program|cuda|cpp`, as bench/prepare.sh writes them) on the GPU:
//
//   - kernel compile time, cold (an empty NVRTC cache) and warm (cached);
//   - the first training step (graph capture included);
//   - milliseconds per training step over N steps after 20 warm-up steps,
//     with the step replayed as one CUDA graph and launched kernel by
//     kernel; the inputs stay the same, the loss is not read back, the
//     clock stops after the last step has finished;
//   - device memory the backend holds, and the device's used memory;
//   - with --profile N, the kernels' device times over N more steps, timed
//     one by one with events (CudaBackendOptions::profile): per step, the
//     kernels that take the most, those of one name (matmul_3) summed, then
//     the slowest kernels each with its schedule and source lines;
//   - with --tune, the step tuned (Tuner.h: the candidates of
//     MODEL.candidates.cu, `kiln compile --emit=cuda-candidates`, timed
//     from an empty tuning cache for at most --tune-budget seconds, 120 by
//     default): the tuning time and the milliseconds per
//     step tuned beside the compiler's; with --profile, the tuned step is
//     profiled, each kernel's tuned and compiled times beside it.
//
// With --device cpu it times the C++ steps instead (the CPU backend on
// --threads threads, default all CPUs): milliseconds per step over N steps
// (default 20) after --warm-up steps (default 2), and with --tune the same
// tuned (MODEL.candidates.cpp). With --seconds S, as many steps as take
// about S seconds (judged by one step after the warm-up), at least N
// (default 1 then).
//
// Exit codes: 0 measured, 1 an error, 2 usage, 77 no GPU.
//
//===----------------------------------------------------------------------===//

#include "runtime/CpuBackend.h"
#include "runtime/Cuda.h"
#include "runtime/CudaBackend.h"
#include "runtime/Initializers.h"
#include "runtime/Nvrtc.h"
#include "runtime/ThreadPool.h"
#include "runtime/Tuner.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <unistd.h>

using namespace kiln::runtime;
using Clock = std::chrono::steady_clock;

namespace {

std::string readText(const std::filesystem::path &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

double since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// Initial parameters and learning rate, zero state and one random batch.
Status prepare(Backend &backend) {
  const Step *step = backend.program().step("train");
  std::mt19937_64 rng(1);
  for (size_t i = 0; i < step->arguments.size(); ++i) {
    const StepArgument &arg = step->arguments[i];
    std::vector<double> values(size_t(arg.elements()), 0.0);
    if (!arg.init.kind.empty())
      kiln::runtime::initialize(arg.init.kind, arg.init.a, arg.init.b,
                                arg.shape, 1, i, values);
    const bool floating = isFloat(arg.dtype);
    if (arg.role == Role::input)
      for (double &v : values)
        v = floating ? std::uniform_real_distribution<double>(0, 1)(rng)
                     : double(rng() % 10);
    std::vector<uint8_t> bytes(size_t(arg.bytes()));
    for (size_t e = 0; e < values.size(); ++e) {
      uint8_t *p = bytes.data() + e * dtypeSize(arg.dtype);
      if (arg.dtype == DType::F32) {
        float v = float(values[e]);
        std::memcpy(p, &v, 4);
      } else if (arg.dtype == DType::F64) {
        std::memcpy(p, &values[e], 8);
      } else if (arg.dtype == DType::I32) {
        int32_t v = int32_t(values[e]);
        std::memcpy(p, &v, 4);
      } else {
        int64_t v = int64_t(values[e]);
        std::memcpy(p, &v, 8);
      }
    }
    Status s =
        arg.role == Role::input
            ? backend.setInput("train", arg.name, bytes.data(), bytes.size())
            : backend.write(arg.name, bytes.data(), bytes.size());
    if (!s.ok())
      return s;
  }
  return Status::success();
}

/// Milliseconds per step over `steps` steps after `warmUp` steps.
StatusOr<double> time(Backend &backend, int steps, int warmUp = 20) {
  for (int i = 0; i < warmUp; ++i)
    if (Status s = backend.run("train", i); !s.ok())
      return s;
  if (Status s = backend.synchronize(); !s.ok())
    return s;
  auto start = Clock::now();
  for (int i = 0; i < steps; ++i)
    if (Status s = backend.run("train", 100 + i); !s.ok())
      return s;
  if (Status s = backend.synchronize(); !s.ok())
    return s;
  return 1000 * since(start) / steps;
}

/// A kernel's family: its symbol without the `_N` that tells apart kernels
/// of one name (matmul_add_gelu_3 -> matmul_add_gelu).
std::string family(const std::string &kernel) {
  size_t underscore = kernel.rfind('_');
  if (underscore == std::string::npos || underscore + 1 == kernel.size() ||
      kernel.find_first_not_of("0123456789", underscore + 1) !=
          std::string::npos)
    return kernel;
  return kernel.substr(0, underscore);
}

/// The `top` kernel families of `backend` by device time over `steps`
/// steps, then its slowest kernels with their schedules and source lines
/// (and, from `tuning`, their times tuned and as compiled).
Status profile(Backend &backend, const char *target, int steps, size_t top,
               const TuneReport *tuning) {
  for (int i = 0; i < steps; ++i)
    if (Status s = backend.run("train", uint64_t(i)); !s.ok())
      return s;
  if (Status s = backend.synchronize(); !s.ok())
    return s;
  std::vector<KernelTime> families;
  double total = 0;
  for (const KernelTime &t : backend.kernelTimes()) {
    total += t.milliseconds;
    std::string name = family(t.kernel);
    auto it =
        std::find_if(families.begin(), families.end(),
                     [&](const KernelTime &f) { return f.kernel == name; });
    if (it == families.end())
      it = families.insert(families.end(), {name, 0, 0});
    it->launches += t.launches;
    it->milliseconds += t.milliseconds;
  }
  std::stable_sort(families.begin(), families.end(), [](auto &a, auto &b) {
    return a.milliseconds > b.milliseconds;
  });
  std::printf("  kernels by device time over %d steps (%.4f ms a step in "
              "all, launched one by one; kernels of one name summed):\n",
              steps, total / steps);
  for (size_t i = 0; i < std::min(top, families.size()); ++i)
    std::printf("  %8.4f ms %5.1f%%  %3llu x  %s\n",
                families[i].milliseconds / steps,
                100 * families[i].milliseconds / total,
                (unsigned long long)(families[i].launches / steps),
                families[i].kernel.c_str());
  std::vector<KernelTime> kernels = backend.kernelTimes();
  std::stable_sort(kernels.begin(), kernels.end(), [](auto &a, auto &b) {
    return a.milliseconds > b.milliseconds;
  });
  std::printf("  the slowest kernels, with their schedules%s:\n",
              tuning ? " (tuned; the tuner's times tuned / as compiled)" : "");
  const Program &program = backend.program();
  for (size_t i = 0; i < std::min<size_t>(top / 2, kernels.size()); ++i) {
    const KernelTime &k = kernels[i];
    // A tuned candidate is named after its kernel: KERNEL__cudaN, __cpuN.
    std::string kernel =
        k.kernel.substr(0, k.kernel.find("__" + std::string(target)));
    const KernelInfo *info = program.kernel(kernel);
    std::string schedule = info ? info->schedule(target) : "";
    if (info && kernel != k.kernel)
      for (const KernelCandidate &c : info->candidates)
        if (c.symbol == k.kernel)
          schedule = c.schedule;
    std::string times;
    if (tuning)
      for (const TunedKernel &t : tuning->kernels)
        if (t.kernel == kernel) {
          char text[64];
          std::snprintf(text, sizeof(text), "  [%.4f / %.4f ms]", t.tunedMs,
                        t.heuristicMs);
          times = text;
        }
    std::printf("  %8.4f ms  %s  %s  %s%s\n", k.milliseconds / steps,
                k.kernel.c_str(), info ? info->source.c_str() : "",
                schedule.c_str(), times.c_str());
  }
  return Status::success();
}

/// Reads DIR/MODEL.candidates.EXT for --tune.
StatusOr<std::string> candidatesOf(std::filesystem::path programFile,
                                   const char *extension) {
  std::filesystem::path path =
      programFile.replace_extension(std::string(".candidates") + extension);
  if (!std::filesystem::exists(path))
    return Status::error(path.string() +
                         ": no candidates (kiln compile --emit=" +
                         (std::string(extension) == ".cu" ? "cuda" : "cpp") +
                         "-candidates, and --emit=program with "
                         "--tune-candidates N)");
  return readText(path);
}

/// --tune-budget: seconds of tuning per model.
double tuneBudget = 120;

/// --device cpu: the CPU backend's threads (0: all CPUs), the steps run
/// before timing, and --seconds (0: time --steps steps).
int cpuThreads = 0;
int cpuWarmUp = 2;
double cpuSeconds = 0;

/// Milliseconds per step of a CPU step: `steps` steps after the warm-up,
/// or with --seconds as many as take about that long (at least `steps`).
StatusOr<double> timeCpu(Backend &backend, int &steps) {
  if (cpuSeconds > 0) {
    auto once = time(backend, 1, cpuWarmUp);
    if (!once.ok())
      return once;
    steps = std::max(steps, int(std::min(1e6, cpuSeconds * 1000 / *once)));
    return time(backend, steps, 0);
  }
  return time(backend, steps, cpuWarmUp);
}

/// A fresh directory for a tuning cache, so that --tune tunes.
std::string freshCache(const std::string &name) {
  return (std::filesystem::temp_directory_path() /
          ("kiln-bench-tune-" + std::to_string(::getpid()) + "-" + name))
      .string();
}

/// A tuning cache of one model's run, empty at first: the first tune()
/// times every kernel, a second one (the profiled backend's) reads its
/// choices back.
struct BenchCache {
  explicit BenchCache(const std::string &name) : dir(freshCache(name)) {}
  ~BenchCache() {
    std::error_code error;
    std::filesystem::remove_all(dir, error);
  }
  std::string dir;
};

/// Tunes `backend`'s training step with the cache `cache`.
StatusOr<TuneReport> tune(Backend &backend, const std::string &candidates,
                          const BenchCache &cache) {
  TuneOptions options;
  options.budgetSeconds = tuneBudget;
  options.cacheDir = cache.dir;
  return backend.tune("train", candidates, options);
}

unsigned changed(const TuneReport &report) {
  return unsigned(
      std::count_if(report.kernels.begin(), report.kernels.end(),
                    [](const TunedKernel &k) { return k.candidate >= 0; }));
}

/// --device cpu: the C++ step, and with `tuned` the same tuned.
int benchCpu(const std::filesystem::path &programFile, const Program &program,
             int steps, int profileSteps, bool tuned, std::FILE *json) {
  std::string name = programFile.stem().string();
  std::filesystem::path cpp = programFile;
  std::string source = readText(cpp.replace_extension(".cpp"));
  HostCompileOptions options;
  options.cacheDir = defaultCacheDir();
  auto fail = [&](const Status &s) {
    std::printf("%s: %s\n", name.c_str(), s.message().c_str());
    return 1;
  };
  auto backend = createCpuBackend(program, source, options,
                                  /*profile=*/false, cpuThreads);
  if (!backend.ok())
    return fail(backend.status());
  if (Status s = prepare(**backend); !s.ok())
    return fail(s);
  auto ms = timeCpu(**backend, steps);
  if (!ms.ok())
    return fail(ms.status());
  std::printf("%-14s %s  %4zu kernels  %.3f ms/step (%d steps)", name.c_str(),
              (*backend)->description().c_str(),
              program.step("train")->launches.size(), *ms, steps);
  StatusOr<double> tunedMs = -1.0;
  StatusOr<TuneReport> report = TuneReport();
  BenchCache cache(name);
  std::string candidates;
  if (tuned) {
    auto read = candidatesOf(programFile, ".cpp");
    if (!read.ok())
      return fail(read.status());
    candidates = *read;
    auto fresh = createCpuBackend(program, source, options,
                                  /*profile=*/false, cpuThreads);
    if (!fresh.ok())
      return fail(fresh.status());
    report = tune(**fresh, candidates, cache);
    if (!report.ok())
      return fail(report.status());
    if (Status s = prepare(**fresh); !s.ok())
      return fail(s);
    tunedMs = time(**fresh, steps, cpuWarmUp);
    if (!tunedMs.ok())
      return fail(tunedMs.status());
    std::printf("  tuned %.3f ms/step (tuning %.1f s, %u of %zu kernels "
                "changed)",
                *tunedMs, report->seconds, changed(*report),
                report->kernels.size());
  }
  std::printf("\n");
  if (json)
    std::fprintf(json,
                 "{\"framework\": \"kiln\", \"model\": \"%s\", "
                 "\"device\": \"cpu\", \"backend\": \"%s\", "
                 "\"threads\": %d, \"ms_per_step\": %.4f, "
                 "\"ms_per_step_tuned\": %.4f, \"tuning_s\": %.2f, "
                 "\"steps\": %d}\n",
                 name.c_str(), (*backend)->description().c_str(),
                 cpuThreads > 0 ? cpuThreads : defaultThreads(), *ms, *tunedMs,
                 report->seconds, steps);
  if (profileSteps > 0) {
    // The kernels of the step as compiled, or tuned as above (the choices
    // read back from the cache).
    auto profiled = createCpuBackend(program, source, options,
                                     /*profile=*/true, cpuThreads);
    if (!profiled.ok())
      return fail(profiled.status());
    if (tuned) {
      auto again = tune(**profiled, candidates, cache);
      if (!again.ok())
        return fail(again.status());
    }
    Status s = prepare(**profiled);
    if (s.ok())
      s = profile(**profiled, "cpu", profileSteps, 30,
                  tuned ? &*report : nullptr);
    if (!s.ok())
      return fail(s);
  }
  return 0;
}

int bench(const std::filesystem::path &programFile, bool cpu, int steps,
          int profileSteps, bool tuned, std::FILE *json) {
  std::string name = programFile.stem().string();
  auto program = parseProgram(readText(programFile), programFile.string());
  // A program with a run-time batch runs at its largest batch.
  if (program.ok())
    if (Status s = bindLargestBatches(*program); !s.ok())
      program = s;
  if (!program.ok()) {
    std::printf("%s: %s\n", name.c_str(), program.status().message().c_str());
    return 1;
  }
  if (cpu)
    return benchCpu(programFile, *program, steps, profileSteps, tuned, json);
  std::filesystem::path cu = programFile;
  std::string source = readText(cu.replace_extension(".cu"));
  // A fresh cache: the first backend compiles, the second finds it.
  std::string cache =
      (std::filesystem::temp_directory_path() /
       ("kiln-bench-" + std::to_string(::getpid()) + "-" + name))
          .string();
  CudaBackendOptions options;
  options.cacheDir = cache;
  auto start = Clock::now();
  auto cold = createCudaBackend(*program, source, options);
  double coldSeconds = since(start);
  if (!cold.ok()) {
    std::printf("%s: %s\n", name.c_str(), cold.status().message().c_str());
    return 1;
  }
  double coldCompile = (*cold)->compileSeconds();
  cold->reset();
  start = Clock::now();
  auto backend = createCudaBackend(*program, source, options);
  double warmSeconds = since(start);
  std::error_code error;
  std::filesystem::remove_all(cache, error);
  if (!backend.ok()) {
    std::printf("%s: %s\n", name.c_str(), backend.status().message().c_str());
    return 1;
  }
  if (Status s = prepare(**backend); !s.ok()) {
    std::printf("%s: %s\n", name.c_str(), s.message().c_str());
    return 1;
  }
  start = Clock::now();
  Status first = (*backend)->run("train", 0);
  if (first.ok())
    first = (*backend)->synchronize();
  double firstStep = since(start);
  auto memory = cuda::Device::open(0);
  auto info = memory.ok() ? memory->memoryInfo()
                          : StatusOr<cuda::MemoryInfo>(memory.status());
  auto graphMs = time(**backend, steps);
  options.graphs = false;
  auto plain = createCudaBackend(*program, source, options);
  StatusOr<double> plainMs = plain.ok() ? StatusOr<double>(Status::error(""))
                                        : StatusOr<double>(plain.status());
  if (plain.ok()) {
    if (Status s = prepare(**plain); !s.ok())
      plainMs = s;
    else
      plainMs = time(**plain, steps);
  }
  if (!first.ok() || !graphMs.ok() || !plainMs.ok()) {
    std::printf("%s: %s\n", name.c_str(),
                (!first.ok()     ? first
                 : !graphMs.ok() ? graphMs.status()
                                 : plainMs.status())
                    .message()
                    .c_str());
    return 1;
  }
  // Tuned: a fresh backend whose step is tuned from an empty cache.
  StatusOr<double> tunedMs = -1.0;
  StatusOr<TuneReport> report = TuneReport();
  BenchCache tuning(name);
  std::string candidates;
  if (tuned) {
    auto read = candidatesOf(programFile, ".cu");
    auto fresh = read.ok() ? createCudaBackend(*program, source, options)
                           : StatusOr<std::unique_ptr<Backend>>(read.status());
    if (read.ok())
      candidates = *read;
    report = fresh.ok() ? tune(**fresh, candidates, tuning)
                        : StatusOr<TuneReport>(fresh.status());
    Status s = report.ok() ? prepare(**fresh) : report.status();
    tunedMs = s.ok() ? time(**fresh, steps) : StatusOr<double>(s);
    if (!tunedMs.ok()) {
      std::printf("%s: --tune: %s\n", name.c_str(),
                  tunedMs.status().message().c_str());
      return 1;
    }
  }
  const Step *step = program->step("train");
  double usedMiB =
      info.ok() ? double(info->totalBytes - info->freeBytes) / (1 << 20) : -1;
  std::printf("%-14s %4zu kernels  compile cold %.3f s (backend %.3f s), "
              "warm %.3f s  first step %.2f ms  %.4f ms/step (graph)  %.4f "
              "ms/step (no graph)  backend memory %.1f MiB, device used %.0f "
              "MiB\n",
              name.c_str(), step->launches.size(), coldCompile, coldSeconds,
              warmSeconds, 1000 * firstStep, *graphMs, *plainMs,
              double((*backend)->memoryBytes()) / (1 << 20), usedMiB);
  if (tuned)
    std::printf("%-14s tuned: %.4f ms/step (graph), tuning %.1f s from an "
                "empty cache, %u of %zu kernels changed\n",
                name.c_str(), *tunedMs, report->seconds, changed(*report),
                report->kernels.size());
  if (json)
    std::fprintf(json,
                 "{\"model\": \"%s\", \"device\": \"%s\", \"launches\": %zu, "
                 "\"compile_cold_s\": %.4f, \"backend_cold_s\": %.4f, "
                 "\"backend_warm_s\": %.4f, \"first_step_ms\": %.3f, "
                 "\"ms_per_step_graph\": %.5f, \"ms_per_step_no_graph\": "
                 "%.5f, \"backend_bytes\": %zu, \"device_used_mib\": %.0f, "
                 "\"ms_per_step_tuned\": %.5f, \"tuning_s\": %.2f, "
                 "\"steps\": %d}\n",
                 name.c_str(), (*backend)->description().c_str(),
                 step->launches.size(), coldCompile, coldSeconds, warmSeconds,
                 1000 * firstStep, *graphMs, *plainMs,
                 (*backend)->memoryBytes(), usedMiB, *tunedMs, report->seconds,
                 steps);
  if (profileSteps > 0) {
    backend->reset();
    plain->reset();
    options.profile = true;
    auto profiled = createCudaBackend(*program, source, options);
    Status s = profiled.ok() ? Status::success() : profiled.status();
    // The tuned kernels, from the choices just made (cached apart).
    StatusOr<TuneReport> again = TuneReport();
    if (s.ok() && tuned) {
      again = tune(**profiled, candidates, tuning);
      s = again.status();
    }
    if (s.ok())
      s = prepare(**profiled);
    if (s.ok())
      s = profile(**profiled, "cuda", profileSteps, 30,
                  tuned ? &*report : nullptr);
    if (!s.ok()) {
      std::printf("%s: %s\n", name.c_str(), s.message().c_str());
      return 1;
    }
  }
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: kiln-bench [--device cuda|cpu] [--steps N] [--seconds "
               "S] [--threads N] [--warm-up N] [--profile N] [--tune] "
               "[--tune-budget S] [--json FILE] DIR\n");
  return 2;
}

} // namespace

int main(int argc, char **argv) {
  int steps = 0, profileSteps = 0;
  bool cpu = false, tuned = false;
  std::string jsonPath, dir;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--steps" && i + 1 < argc)
      steps = std::max(1, std::atoi(argv[++i]));
    else if (arg == "--device" && i + 1 < argc &&
             (std::string(argv[i + 1]) == "cpu" ||
              std::string(argv[i + 1]) == "cuda"))
      cpu = std::string(argv[++i]) == "cpu";
    else if (arg == "--seconds" && i + 1 < argc)
      cpuSeconds = std::max(0.0, std::atof(argv[++i]));
    else if (arg == "--threads" && i + 1 < argc)
      cpuThreads = std::max(0, std::atoi(argv[++i]));
    else if (arg == "--warm-up" && i + 1 < argc)
      cpuWarmUp = std::max(0, std::atoi(argv[++i]));
    else if (arg == "--tune")
      tuned = true;
    else if (arg == "--tune-budget" && i + 1 < argc)
      tuneBudget = std::max(0.0, std::atof(argv[++i]));
    else if (arg == "--json" && i + 1 < argc)
      jsonPath = argv[++i];
    else if (arg == "--profile" && i + 1 < argc)
      profileSteps = std::max(1, std::atoi(argv[++i]));
    else if (dir.empty() && arg[0] != '-')
      dir = arg;
    else
      return usage();
  }
  if (steps == 0)
    steps = !cpu ? 500 : cpuSeconds > 0 ? 1 : 20;
  if (dir.empty())
    return usage();
  if (Status s = cpu ? Status::success() : cuda::initialize(); !s.ok()) {
    std::printf("skipped: %s\n", s.message().c_str());
    return 77;
  }
  std::FILE *json =
      jsonPath.empty() ? nullptr : std::fopen(jsonPath.c_str(), "w");
  std::vector<std::filesystem::path> programs;
  for (const auto &entry : std::filesystem::directory_iterator(dir))
    if (entry.path().extension() == ".program")
      programs.push_back(entry.path());
  std::sort(programs.begin(), programs.end());
  int failures = 0;
  for (const auto &path : programs)
    failures += bench(path, cpu, steps, profileSteps, tuned, json) != 0;
  if (json)
    std::fclose(json);
  return failures || programs.empty() ? 1 : 0;
}
