//===- CpuBackend.cpp - run a program's steps with the C++ kernels --------===//

#include "runtime/CpuBackend.h"
#include "runtime/ByteTable.h"
#include "runtime/ThreadPool.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <thread>

using namespace kiln::runtime;

StatusOr<CpuStep> CpuStep::create(const Step &step,
                                  const SharedLibrary &library) {
  return create(step, std::vector<const SharedLibrary *>{&library});
}

StatusOr<CpuStep>
CpuStep::create(const Step &step,
                const std::vector<const SharedLibrary *> &libraries) {
  if (Status s = verifyProgram(Program{"", {step}, {}}); !s.ok())
    return s;
  CpuStep cpu;
  cpu.program = &step;
  for (const Launch &launch : step.launches) {
    Entry entry = nullptr;
    if (launch.collective != Collective::none) {
      cpu.launches.push_back({nullptr, launch.buffers, {}});
      continue;
    }
    for (const SharedLibrary *library : libraries)
      if (!entry)
        entry =
            reinterpret_cast<Entry>(library->symbol(launch.kernel + "_entry"));
    if (!entry)
      return Status::error("kernel '" + launch.kernel + "' is not in " +
                           libraries.front()->path());
    Resolved resolved{entry, launch.buffers, {}};
    for (int64_t d : launch.dims)
      resolved.dims.push_back(d);
    cpu.launches.push_back(std::move(resolved));
  }
  constexpr size_t alignment = 256;
  size_t bytes = static_cast<size_t>(step.arenaBytes) + alignment;
  cpu.storage.reset(new uint8_t[bytes]);
  auto address = reinterpret_cast<uintptr_t>(cpu.storage.get());
  cpu.arena = cpu.storage.get() + (alignment - address % alignment) % alignment;
  for (size_t r = 0; r < step.results.size(); ++r) {
    const StepResult &result = step.results[r];
    if (result.role != Role::param && result.role != Role::state)
      continue;
    for (size_t a = 0; a < step.arguments.size(); ++a) {
      const StepArgument &arg = step.arguments[a];
      if (arg.role != result.role || arg.name != result.name)
        continue;
      if (arg.bytes() != result.bytes())
        return Status::error("result '" + result.name +
                             "' does not match its argument's size");
      if (!(result.buffer == BufferRef{BufferRef::Kind::argument, int64_t(a)}))
        cpu.writeBack.push_back({r, a});
    }
  }
  cpu.resultPointers.assign(step.results.size(), nullptr);
  return cpu;
}

Status CpuStep::runCollective(const Launch &launch,
                              const std::vector<void *> &buffers) {
  // The inputs' buffers, then the results'.
  size_t count = launch.dims.size();
  void *const *inputs = buffers.data();
  void *const *results = buffers.data() + count;
  if (communicator && communicator->size() > 1)
    return communicator->allReduce(launch.collective, launch.dtype, inputs,
                                   results, launch.dims.data(), count);
  // One rank: the identity.
  for (size_t i = 0; i < count; ++i)
    if (results[i] != inputs[i])
      std::memcpy(results[i], inputs[i],
                  static_cast<size_t>(launch.dims[i]) *
                      dtypeSize(launch.dtype));
  return Status::success();
}

Status CpuStep::run(void *const *arguments, uint64_t seed, double *seconds) {
  using Clock = std::chrono::steady_clock;
  auto pointer = [&](const BufferRef &ref) {
    return this->pointer(ref, arguments);
  };
  std::vector<void *> buffers;
  for (size_t l = 0; l < launches.size(); ++l) {
    const Resolved &launch = launches[l];
    buffers.clear();
    for (const BufferRef &ref : launch.buffers)
      buffers.push_back(pointer(ref));
    Clock::time_point start = seconds ? Clock::now() : Clock::time_point();
    if (launch.entry)
      launch.entry(buffers.data(), launch.dims.data(), seed);
    else if (Status s = runCollective(program->launches[l], buffers); !s.ok())
      return s;
    if (seconds)
      seconds[l] += std::chrono::duration<double>(Clock::now() - start).count();
  }
  for (size_t r = 0; r < program->results.size(); ++r)
    resultPointers[r] = pointer(program->results[r].buffer);
  for (auto [r, a] : writeBack) {
    std::memmove(arguments[a], resultPointers[r],
                 static_cast<size_t>(program->results[r].bytes()));
    resultPointers[r] = arguments[a];
  }
  return Status::success();
}

namespace {

/// The processor's name, from /proc/cpuinfo.
std::string processorName() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0)
      if (size_t colon = line.find(':'); colon != std::string::npos)
        return line.substr(line.find_first_not_of(' ', colon + 1));
  return "unknown processor";
}

/// Times a step's C++ kernels and their candidates on buffers of its own:
/// its arguments filled with random numbers in [-1, 1) (integers with 0,
/// which indexes anything), its arena with what one run of the step leaves.
class CpuTuneTarget final : public TuneTarget {
public:
  CpuTuneTarget(const Step &step, const SharedLibrary &library,
                const HostCompileOptions &options, ThreadPool &pool,
                std::string name)
      : step(step), library(library), options(options), pool(pool),
        name(std::move(name)) {}

  Status prepare() {
    std::mt19937 rng(0);
    std::uniform_real_distribution<double> uniform(-1, 1);
    for (const StepArgument &arg : step.arguments) {
      Buffer buffer(static_cast<size_t>(arg.bytes()));
      for (int64_t i = 0; i < arg.elements(); ++i) {
        if (arg.dtype == DType::F32)
          reinterpret_cast<float *>(buffer.data)[i] = float(uniform(rng));
        else if (arg.dtype == DType::F64)
          reinterpret_cast<double *>(buffer.data)[i] = uniform(rng);
      }
      arguments.push_back(buffer.data);
      buffers.push_back(std::move(buffer));
    }
    auto cpu = CpuStep::create(step, library);
    if (!cpu.ok())
      return cpu.status();
    if (Status s = cpu->run(arguments.data(), 0); !s.ok())
      return s;
    scratch = std::move(*cpu);
    return Status::success();
  }

  std::string target() const override { return "cpu"; }
  std::string identity() const override {
    std::string text = "cpu " + processorName() + " (" +
                       std::to_string(pool.threads()) + " threads); " +
                       hostCompilerIdentity(options);
    for (const std::string &flag : options.flags)
      text += " " + flag;
    return text + " for " + requestedIsa(options);
  }
  Status load(const std::string &source) override {
    auto compiled = compileHostLibrary(name, source, options);
    if (!compiled.ok())
      return compiled.status();
    candidates = std::move(*compiled);
    pool.install(candidates);
    return Status::success();
  }
  StatusOr<double> time(const std::vector<size_t> &launches,
                        const KernelCandidate *variant) override {
    CpuStep::Entry entry = nullptr;
    if (variant) {
      entry = reinterpret_cast<CpuStep::Entry>(
          candidates.symbol(variant->symbol + "_entry"));
      if (!entry)
        return Status::error("candidate '" + variant->symbol +
                             "' is not in the compiled candidates");
    }
    std::vector<void *> pointers;
    std::vector<long long> dims;
    auto once = [&] {
      for (size_t l : launches) {
        const Launch &launch = step.launches[l];
        pointers.clear();
        for (const BufferRef &ref : launch.buffers)
          pointers.push_back(scratch.pointer(ref, arguments.data()));
        dims.assign(launch.dims.begin(), launch.dims.end());
        (entry ? entry : scratch.entry(l))(pointers.data(), dims.data(), 0);
      }
    };
    // The best of at least 3 runs, and of as many as 20 ms allow (up to
    // 100), after one to warm the caches.
    using Clock = std::chrono::steady_clock;
    once();
    double best = std::numeric_limits<double>::infinity(), total = 0;
    for (int runs = 0; runs < 3 || (total < 0.02 && runs < 100); ++runs) {
      auto start = Clock::now();
      once();
      double seconds =
          std::chrono::duration<double>(Clock::now() - start).count();
      best = std::min(best, seconds);
      total += seconds;
    }
    return best * 1000;
  }

private:
  /// 256-byte aligned zeroed bytes.
  struct Buffer {
    explicit Buffer(size_t bytes)
        : storage(new uint8_t[bytes + 256]()),
          data(storage.get() +
               (256 - reinterpret_cast<uintptr_t>(storage.get()) % 256) % 256) {
    }
    std::unique_ptr<uint8_t[]> storage;
    uint8_t *data;
  };
  const Step &step;
  const SharedLibrary &library;
  const HostCompileOptions &options;
  ThreadPool &pool;
  std::string name;
  std::vector<Buffer> buffers;
  std::vector<void *> arguments;
  CpuStep scratch;
  SharedLibrary candidates;
};

class CpuBackend final : public Backend {
public:
  static StatusOr<std::unique_ptr<Backend>>
  create(const Program &program, const std::string &source,
         const HostCompileOptions &options, bool profile, int threads);

  std::string description() const override {
    int threads = pool->threads();
    return "cpu (" + library.isa + ", " + std::to_string(threads) +
           (threads == 1 ? " thread)" : " threads)");
  }
  const Program &program() const override { return compiled; }
  double compileSeconds() const override { return library.compileSeconds; }
  bool compiledFromCache() const override { return library.fromCache; }
  Status write(const std::string &name, const void *data,
               size_t bytes) override {
    auto *tensor = find(shared, name, bytes);
    if (!tensor)
      return Status::error("no parameter or state '" + name + "' of " +
                           std::to_string(bytes) + " bytes");
    std::memcpy(tensor->data(), data, bytes);
    return Status::success();
  }
  Status read(const std::string &name, void *data, size_t bytes) override {
    auto *tensor = find(shared, name, bytes);
    if (!tensor)
      return Status::error("no parameter or state '" + name + "' of " +
                           std::to_string(bytes) + " bytes");
    std::memcpy(data, tensor->data(), bytes);
    return Status::success();
  }
  Status setInput(const std::string &step, const std::string &name,
                  const void *data, size_t bytes) override {
    auto it = steps.find(step);
    auto *tensor =
        it == steps.end() ? nullptr : find(it->second.inputs, name, bytes);
    if (!tensor)
      return Status::error("step '" + step + "' has no input '" + name +
                           "' of " + std::to_string(bytes) + " bytes");
    std::memcpy(tensor->data(), data, bytes);
    return Status::success();
  }
  StatusOr<int> addByteTable(const uint8_t *data, size_t count,
                             const void *decode, size_t decodeBytes) override {
    return tables.add(data, count, decode, decodeBytes);
  }
  Status gatherInput(const std::string &step, const std::string &name,
                     int table, const int64_t *offsets, size_t rows,
                     size_t width) override {
    const ByteTable *t = tables.find(table);
    size_t size = t ? rows * width * t->elementBytes : 0;
    auto it = steps.find(step);
    auto *tensor =
        it == steps.end() ? nullptr : find(it->second.inputs, name, size);
    return tables.gather(table, offsets, rows, width,
                         tensor ? tensor->data() : nullptr, size,
                         "step '" + step + "' has no input '" + name + "'");
  }
  Status run(const std::string &step, uint64_t seed) override {
    auto it = steps.find(step);
    if (it == steps.end())
      return Status::error("the program has no step '" + step + "'");
    StepState &state = it->second;
    if (profiling)
      state.seconds.resize(state.cpu.step().launches.size(), 0.0);
    if (Status s = state.cpu.run(state.arguments.data(), seed,
                                 profiling ? state.seconds.data() : nullptr);
        !s.ok())
      return s;
    state.profiledRuns += profiling;
    // The run is over: keep its scalars, and the previous run's.
    state.previous = std::move(state.last);
    state.last.clear();
    const Step &s = state.cpu.step();
    for (size_t r = 0; r < s.results.size(); ++r)
      if (s.results[r].role == Role::loss || s.results[r].role == Role::metric)
        state.last.push_back(
            elementAsDouble(state.cpu.result(r), s.results[r].dtype, 0));
    ++state.runs;
    return Status::success();
  }
  Status scalars(const std::string &step, std::vector<double> &values,
                 unsigned runsAgo) override {
    auto it = steps.find(step);
    if (it == steps.end())
      return Status::error("the program has no step '" + step + "'");
    const StepState &state = it->second;
    if (runsAgo > 1 || state.runs <= runsAgo)
      return Status::error("step '" + step + "' has no run " +
                           std::to_string(runsAgo) + " runs ago");
    values = runsAgo == 0 ? state.last : state.previous;
    return Status::success();
  }
  Status output(const std::string &step, const std::string &name, void *data,
                size_t size) override {
    auto it = steps.find(step);
    if (it == steps.end())
      return Status::error("the program has no step '" + step + "'");
    const StepState &state = it->second;
    const Step &s = state.cpu.step();
    for (size_t r = 0; r < s.results.size(); ++r) {
      if (s.results[r].name != name ||
          static_cast<size_t>(s.results[r].bytes()) != size)
        continue;
      if (state.runs == 0)
        return Status::error("step '" + step + "' has not run");
      std::memcpy(data, state.cpu.result(r), size);
      return Status::success();
    }
    return Status::error("step '" + step + "' has no result '" + name +
                         "' of " + std::to_string(size) + " bytes");
  }
  Status synchronize() override { return Status::success(); }
  Status setCommunicator(Communicator *communicator) override {
    for (auto &[kind, state] : steps)
      state.cpu.setCommunicator(communicator);
    return Status::success();
  }
  size_t memoryBytes() const override { return bytes + tables.bytes(); }
  std::vector<KernelTime> kernelTimes() override {
    std::vector<KernelTime> times;
    for (auto &[kind, state] : steps)
      for (size_t l = 0; l < state.seconds.size(); ++l) {
        const Launch &launch = state.cpu.step().launches[l];
        std::string kernel = launch.collective == Collective::none
                                 ? launch.kernel
                                 : collectiveName(launch.collective);
        auto it = std::find_if(times.begin(), times.end(),
                               [&](auto &t) { return t.kernel == kernel; });
        if (it == times.end())
          it = times.insert(times.end(), {kernel, 0, 0});
        it->launches += state.profiledRuns;
        it->milliseconds += 1000 * state.seconds[l];
      }
    return times;
  }

  StatusOr<TuneReport> tune(const std::string &step,
                            const std::string &candidateSource,
                            const TuneOptions &tuneOptions) override {
    const Step *tuned = compiled.step(step);
    if (!tuned)
      return Status::error("the program has no step '" + step + "'");
    std::string name = compiled.model.empty() ? "model" : compiled.model;
    StatusOr<TuneReport> report = Status::error("");
    {
      CpuTuneTarget target(*tuned, library, options, *pool,
                           name + "-candidates");
      if (Status s = target.prepare(); !s.ok())
        return s;
      report = tuneStep(compiled, *tuned, candidateSource, target, tuneOptions);
      if (!report.ok())
        return report.status();
    }
    // The chosen candidates, compiled apart (cached for the next run).
    std::string chosen = chosenSource(compiled, *report, candidateSource);
    if (chosen.empty())
      return report;
    auto library = compileHostLibrary(name + "-tuned", chosen, options);
    if (!library.ok())
      return library.status();
    tunedLibrary = std::move(*library);
    pool->install(tunedLibrary);
    applyTuning(compiled, *report);
    for (auto &[kind, state] : steps) {
      auto cpu = CpuStep::create(*compiled.step(kind),
                                 {&this->library, &tunedLibrary});
      if (!cpu.ok())
        return cpu.status();
      state.cpu = std::move(*cpu);
    }
    return report;
  }

private:
  using Tensors = std::map<std::string, std::vector<uint8_t>>;
  static std::vector<uint8_t> *find(Tensors &tensors, const std::string &name,
                                    size_t bytes) {
    auto it = tensors.find(name);
    return it == tensors.end() || it->second.size() != bytes ? nullptr
                                                             : &it->second;
  }
  struct StepState {
    CpuStep cpu;
    Tensors inputs;
    std::vector<void *> arguments;
    /// The scalars of the last two runs, and how many runs there were.
    std::vector<double> last, previous;
    uint64_t runs = 0;
    /// When profiling: seconds per launch over the runs profiled.
    std::vector<double> seconds;
    uint64_t profiledRuns = 0;
  };
  Program compiled;
  HostCompileOptions options;
  bool profiling = false;
  /// Declared before the libraries, so it outlives their use.
  std::unique_ptr<ThreadPool> pool;
  SharedLibrary library;
  /// The candidates tune() chose.
  SharedLibrary tunedLibrary;
  Tensors shared; // parameters and state, by name
  std::map<std::string, StepState> steps;
  HostByteTables tables;
  size_t bytes = 0;
};

StatusOr<std::unique_ptr<Backend>>
CpuBackend::create(const Program &program, const std::string &source,
                   const HostCompileOptions &options, bool profile,
                   int threads) {
  if (Status s = verifyProgram(program); !s.ok())
    return s;
  auto backend = std::make_unique<CpuBackend>();
  backend->compiled = program;
  backend->options = options;
  backend->profiling = profile;
  auto library = compileHostLibrary(
      program.model.empty() ? "model" : program.model, source, options);
  if (!library.ok())
    return library.status();
  backend->library = std::move(*library);
  backend->pool =
      std::make_unique<ThreadPool>(threads > 0 ? threads : defaultThreads());
  backend->pool->install(backend->library);
  for (const Step &step : backend->compiled.steps) {
    auto cpu = CpuStep::create(step, backend->library);
    if (!cpu.ok())
      return cpu.status();
    StepState state{std::move(*cpu), {}, {}, {}, {}, 0, {}, 0};
    for (const StepArgument &arg : step.arguments) {
      size_t size = static_cast<size_t>(arg.bytes());
      Tensors &home = arg.role == Role::input ? state.inputs : backend->shared;
      auto [it, inserted] = home.try_emplace(arg.name, size);
      if (it->second.size() != size)
        return Status::error("tensor '" + arg.name +
                             "' has different sizes in different steps");
      if (inserted)
        backend->bytes += size;
    }
    for (const StepArgument &arg : step.arguments) {
      Tensors &home = arg.role == Role::input ? state.inputs : backend->shared;
      state.arguments.push_back(home[arg.name].data());
    }
    backend->bytes += static_cast<size_t>(step.arenaBytes);
    backend->steps.emplace(step.kind, std::move(state));
  }
  return std::unique_ptr<Backend>(std::move(backend));
}

} // namespace

StatusOr<std::unique_ptr<Backend>> kiln::runtime::createCpuBackend(
    const Program &program, const std::string &source,
    const HostCompileOptions &options, bool profile, int threads) {
  if (Status s = requireFixedSizes(program); !s.ok())
    return s;
  return CpuBackend::create(program, source, options, profile, threads);
}
