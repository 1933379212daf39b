//===- StepBench.cpp - milliseconds per compiled training step ------------===//
//
// kiln-bench [--steps N] [--profile N] [--json FILE] DIR times every
// compiled model in DIR (MODEL.program and MODEL.cu from `kiln compile
// --emit=program|cuda`) on the GPU:
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
//     kernels that take the most, those of one name (matmul_3) summed.
//
// Exit codes: 0 measured, 1 an error, 2 usage, 77 no GPU.
//
//===----------------------------------------------------------------------===//

#include "runtime/Cuda.h"
#include "runtime/CudaBackend.h"
#include "runtime/Initializers.h"

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
    if (arg.role == "input")
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
        arg.role == "input"
            ? backend.setInput("train", arg.name, bytes.data(), bytes.size())
            : backend.write(arg.name, bytes.data(), bytes.size());
    if (!s.ok())
      return s;
  }
  return Status::success();
}

/// Milliseconds per step over `steps` steps after a warm-up.
StatusOr<double> time(Backend &backend, int steps) {
  for (int i = 0; i < 20; ++i)
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
/// steps.
Status profile(Backend &backend, int steps, size_t top) {
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
  return Status::success();
}

int bench(const std::filesystem::path &programFile, int steps, int profileSteps,
          std::FILE *json) {
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
  if (json)
    std::fprintf(json,
                 "{\"model\": \"%s\", \"device\": \"%s\", \"launches\": %zu, "
                 "\"compile_cold_s\": %.4f, \"backend_cold_s\": %.4f, "
                 "\"backend_warm_s\": %.4f, \"first_step_ms\": %.3f, "
                 "\"ms_per_step_graph\": %.5f, \"ms_per_step_no_graph\": "
                 "%.5f, \"backend_bytes\": %zu, \"device_used_mib\": %.0f, "
                 "\"steps\": %d}\n",
                 name.c_str(), (*backend)->description().c_str(),
                 step->launches.size(), coldCompile, coldSeconds, warmSeconds,
                 1000 * firstStep, *graphMs, *plainMs,
                 (*backend)->memoryBytes(), usedMiB, steps);
  if (profileSteps > 0) {
    backend->reset();
    plain->reset();
    options.profile = true;
    auto profiled = createCudaBackend(*program, source, options);
    Status s = profiled.ok() ? prepare(**profiled) : profiled.status();
    if (s.ok())
      s = profile(**profiled, profileSteps, 30);
    if (!s.ok()) {
      std::printf("%s: %s\n", name.c_str(), s.message().c_str());
      return 1;
    }
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  int steps = 500, profileSteps = 0;
  std::string jsonPath, dir;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--steps" && i + 1 < argc)
      steps = std::max(1, std::atoi(argv[++i]));
    else if (arg == "--json" && i + 1 < argc)
      jsonPath = argv[++i];
    else if (arg == "--profile" && i + 1 < argc)
      profileSteps = std::max(1, std::atoi(argv[++i]));
    else if (dir.empty() && arg[0] != '-')
      dir = arg;
    else {
      std::fprintf(
          stderr,
          "usage: kiln-bench [--steps N] [--profile N] [--json FILE] DIR\n");
      return 2;
    }
  }
  if (dir.empty()) {
    std::fprintf(
        stderr,
        "usage: kiln-bench [--steps N] [--profile N] [--json FILE] DIR\n");
    return 2;
  }
  if (Status s = cuda::initialize(); !s.ok()) {
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
    failures += bench(path, steps, profileSteps, json) != 0;
  if (json)
    std::fclose(json);
  return failures || programs.empty() ? 1 : 0;
}
