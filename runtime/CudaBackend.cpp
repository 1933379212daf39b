//===- CudaBackend.cpp - run a program's steps on the GPU -----------------===//
//
// Per step, everything is allocated and resolved once:
//
//   - the parameters and state (shared by the steps, by name), the step's
//     arena, and two slots of input buffers, each slot with pinned host
//     staging memory, a device seed and pinned scalar results;
//   - each launch's kernel parameters (buffer addresses, sizes, the seed's
//     address), which never change, so the step is captured once per slot
//     as a CUDA graph: its kernels, the copies of updates the plan did not
//     place in their arguments, and the copy of the loss and metrics into
//     pinned memory.
//
// A run of slot k: the copy stream waits for the last step that used slot
// k, copies the staged inputs and the seed to the device and records an
// event; the compute stream waits for that event and replays slot k's
// graph. So while step n computes, step n+1's inputs are staged by the host
// and copied by the copy engine. An input gathered from a byte table
// (Backend::gatherInput) has only its row offsets staged and copied; the
// gather kernel (kCudaRuntimeKernels) then decodes its rows on the copy
// stream too, beside step n.
//
//===----------------------------------------------------------------------===//

#include "runtime/CudaBackend.h"
#include "runtime/ByteTable.h"
#include "runtime/Cuda.h"
#include "runtime/Nvrtc.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <thread>

using namespace kiln::runtime;

const char *const kiln::runtime::kCudaRuntimeKernels = R"cuda(
// Row r of a gathered input is the `width` bytes of `table` from
// offsets[r], byte b decoded as element b of `decode` (elementBytes each).
extern "C" __global__ void kiln_gather_bytes(
    const unsigned char *__restrict__ table,
    const long long *__restrict__ offsets,
    const unsigned char *__restrict__ decode, unsigned char *__restrict__ out,
    long long rows, long long width, long long elementBytes) {
  long long total = rows * width;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
       i < total; i += (long long)gridDim.x * blockDim.x) {
    long long r = i / width;
    unsigned b = table[offsets[r] + (i - r * width)];
    if (elementBytes == 4)
      ((unsigned *)out)[i] = ((const unsigned *)decode)[b];
    else if (elementBytes == 8)
      ((unsigned long long *)out)[i] = ((const unsigned long long *)decode)[b];
    else if (elementBytes == 2)
      ((unsigned short *)out)[i] = ((const unsigned short *)decode)[b];
    else
      for (long long k = 0; k < elementBytes; ++k)
        out[i * elementBytes + k] = decode[b * elementBytes + k];
  }
}
)cuda";

namespace {

constexpr int kSlots = 2;

/// A byte table on the device (Backend::addByteTable).
struct DeviceByteTable {
  cuda::DeviceBuffer bytes, decode;
  size_t count = 0, elementBytes = 0;
};

/// An input of one slot gathered from a byte table for its next run.
struct Gather {
  int table = -1; ///< -1: the input comes from its staging memory
  size_t rows = 0, width = 0;
  cuda::PinnedBuffer offsetsHost;
  cuda::DeviceBuffer offsets;
};

struct KernelLaunch {
  cuda::Function function;
  cuda::Dim3 grid, block;
  unsigned sharedBytes = 0;
  /// Parameter values and the pointers to them cuLaunchKernel takes.
  std::vector<cuda::DevicePointer> pointers;
  std::vector<long long> dims;
  cuda::DevicePointer seed = 0;
  std::vector<void *> params;
  /// When profiling: recorded after the launch, and its entry in
  /// CudaBackend::times.
  std::optional<cuda::Event> after;
  size_t timeIndex = 0;
};

struct Slot {
  std::map<std::string, cuda::DeviceBuffer> inputs;
  std::map<std::string, cuda::PinnedBuffer> staging;
  std::map<std::string, Gather> gathers; // by input name
  cuda::DeviceBuffer seed;
  cuda::PinnedBuffer seedHost;
  cuda::PinnedBuffer scalarsHost;
  /// Kernel parameters; a deque keeps their addresses stable.
  std::deque<KernelLaunch> launches;
  std::optional<cuda::Graph> graph;
  std::optional<cuda::Event> copied, done;
  /// When profiling: recorded before the first launch; whether the events
  /// hold a step not yet added to the times.
  std::optional<cuda::Event> before;
  bool timed = false;
  bool used = false;
};

struct StepState {
  const Step *step = nullptr;
  cuda::DeviceBuffer arena;
  std::array<Slot, kSlots> slots;
  int next = 0, last = -1;
  uint64_t runs = 0;
  /// (device destination, source, bytes) of updates to copy back.
  std::vector<std::array<cuda::DevicePointer, 2>> writeBack;
  std::vector<size_t> writeBackBytes;
  /// (device address, dtype) of each loss or metric.
  std::vector<std::pair<cuda::DevicePointer, DType>> scalars;
  /// Every result by name: its device address in each slot, and its bytes.
  struct Output {
    std::array<cuda::DevicePointer, kSlots> where;
    size_t bytes = 0;
  };
  std::map<std::string, Output> outputs;
};

class CudaBackend final : public Backend {
public:
  static StatusOr<std::unique_ptr<Backend>>
  create(const Program &program, const std::string &source,
         const CudaBackendOptions &options);

  std::string description() const override { return text; }
  const Program &program() const override { return compiled; }
  double compileSeconds() const override { return seconds; }
  bool compiledFromCache() const override { return cached; }
  Status write(const std::string &name, const void *data,
               size_t bytes) override;
  Status read(const std::string &name, void *data, size_t bytes) override;
  Status setInput(const std::string &step, const std::string &name,
                  const void *data, size_t bytes) override;
  StatusOr<int> addByteTable(const uint8_t *data, size_t count,
                             const void *decode, size_t decodeBytes) override;
  Status gatherInput(const std::string &step, const std::string &name,
                     int table, const int64_t *offsets, size_t rows,
                     size_t width) override;
  Status run(const std::string &step, uint64_t seed) override;
  Status scalars(const std::string &step, std::vector<double> &values,
                 unsigned runsAgo) override;
  Status output(const std::string &step, const std::string &name, void *data,
                size_t bytes) override;
  Status synchronize() override;
  std::vector<KernelTime> kernelTimes() override;
  size_t memoryBytes() const override { return bytes; }
  StatusOr<TuneReport> tune(const std::string &step,
                            const std::string &candidates,
                            const TuneOptions &options) override;

  ~CudaBackend() override {
    // Work in flight reads the buffers about to be freed.
    (void)compute.synchronize();
    (void)copy.synchronize();
  }

private:
  friend class CudaTuneTarget;
  CudaBackend(cuda::Device device) : device(std::move(device)) {}
  /// `source` compiled as several programs in parallel (each from the
  /// on-disk cache when it is there) and loaded; `name` names them.
  StatusOr<std::vector<cuda::Module>> compileModules(const std::string &source,
                                                     const std::string &name,
                                                     bool &fromCache);
  /// The function `symbol` of the loaded modules.
  StatusOr<cuda::Function> function(const std::string &symbol) const;
  /// Sets `k`'s function and launch configuration to `launch`'s.
  Status configure(KernelLaunch &k, const Launch &launch) const;
  Status build(StepState &state, const Step &step);
  Status submit(StepState &state, Slot &slot);
  /// Launches slot's gathers on the copy stream.
  Status gather(Slot &slot);
  /// Adds the kernel times of `slot`'s last step, when it has one.
  Status addTimes(Slot &slot);
  StatusOr<StepState *> find(const std::string &step);

  cuda::Device device;
  cuda::Stream compute, copy;
  /// The kernels, compiled as several programs in parallel.
  std::vector<cuda::Module> modules;
  cuda::Function gatherKernel;
  std::vector<DeviceByteTable> tables;
  bool profiling = false;
  std::vector<KernelTime> times;
  Program compiled;
  std::string text;
  double seconds = 0;
  bool cached = false;
  bool graphs = true;
  std::string cacheDir;
  size_t bytes = 0;
  std::map<std::string, cuda::DeviceBuffer> shared; // params and state
  std::map<std::string, StepState> steps;
};

StatusOr<StepState *> CudaBackend::find(const std::string &step) {
  auto it = steps.find(step);
  if (it == steps.end())
    return Status::error("the program has no step '" + step + "'");
  return &it->second;
}

Status CudaBackend::build(StepState &state, const Step &step) {
  state.step = &step;
  auto arena = cuda::DeviceBuffer::allocate(
      static_cast<size_t>(std::max<int64_t>(step.arenaBytes, 1)));
  if (!arena.ok())
    return arena.status();
  state.arena = std::move(*arena);
  bytes += state.arena.size();
  auto where = [&](const BufferRef &ref, Slot &slot) -> cuda::DevicePointer {
    if (ref.kind == BufferRef::Kind::arena)
      return state.arena.get() + static_cast<uint64_t>(ref.value);
    const StepArgument &arg = step.arguments[ref.value];
    return arg.role == Role::input ? slot.inputs.at(arg.name).get()
                                   : shared.at(arg.name).get();
  };
  for (Slot &slot : state.slots) {
    for (const StepArgument &arg : step.arguments) {
      size_t size = static_cast<size_t>(arg.bytes());
      if (arg.role != Role::input) {
        auto it = shared.find(arg.name);
        if (it == shared.end()) {
          auto buffer = cuda::DeviceBuffer::allocate(size);
          if (!buffer.ok())
            return buffer.status();
          bytes += size;
          shared.emplace(arg.name, std::move(*buffer));
        } else if (it->second.size() != size) {
          return Status::error("tensor '" + arg.name +
                               "' has different sizes in different steps");
        }
        continue;
      }
      auto buffer = cuda::DeviceBuffer::allocate(size);
      auto staging = cuda::PinnedBuffer::allocate(size);
      if (!buffer.ok())
        return buffer.status();
      if (!staging.ok())
        return staging.status();
      bytes += size;
      slot.inputs.emplace(arg.name, std::move(*buffer));
      slot.staging.emplace(arg.name, std::move(*staging));
    }
    auto seed = cuda::DeviceBuffer::allocate(sizeof(uint64_t));
    auto seedHost = cuda::PinnedBuffer::allocate(sizeof(uint64_t));
    auto scalarsHost = cuda::PinnedBuffer::allocate(
        sizeof(double) * std::max<size_t>(step.results.size(), 1));
    auto copied = cuda::Event::create();
    auto done = cuda::Event::create();
    if (!seed.ok() || !seedHost.ok() || !scalarsHost.ok() || !copied.ok() ||
        !done.ok())
      return !seed.ok()          ? seed.status()
             : !seedHost.ok()    ? seedHost.status()
             : !scalarsHost.ok() ? scalarsHost.status()
             : !copied.ok()      ? copied.status()
                                 : done.status();
    slot.seed = std::move(*seed);
    slot.seedHost = std::move(*seedHost);
    slot.scalarsHost = std::move(*scalarsHost);
    slot.copied.emplace(std::move(*copied));
    slot.done.emplace(std::move(*done));

    for (const Launch &launch : step.launches) {
      KernelLaunch &k = slot.launches.emplace_back();
      if (Status s = configure(k, launch); !s.ok())
        return s;
      for (const BufferRef &ref : launch.buffers)
        k.pointers.push_back(where(ref, slot));
      k.dims.assign(launch.dims.begin(), launch.dims.end());
      k.seed = slot.seed.get();
      for (cuda::DevicePointer &p : k.pointers)
        k.params.push_back(&p);
      for (long long &d : k.dims)
        k.params.push_back(&d);
      if (launch.takesSeed)
        k.params.push_back(&k.seed);
    }
  }
  // Updates to copy into their arguments, and the scalars to read back.
  Slot &any = state.slots[0];
  for (const StepResult &result : step.results) {
    StepState::Output &output = state.outputs[result.name];
    for (int k = 0; k < kSlots; ++k)
      output.where[k] = where(result.buffer, state.slots[k]);
    output.bytes = static_cast<size_t>(result.bytes());
    if (result.role == Role::loss || result.role == Role::metric) {
      if (result.buffer.kind == BufferRef::Kind::argument &&
          step.arguments[result.buffer.value].role == Role::input)
        return Status::error("result '" + result.name + "' is an input");
      state.scalars.push_back({where(result.buffer, any), result.dtype});
      continue;
    }
    if (result.role != Role::param && result.role != Role::state)
      continue;
    auto it = shared.find(result.name);
    if (it == shared.end())
      return Status::error("result '" + result.name + "' updates no argument");
    cuda::DevicePointer from = where(result.buffer, any);
    if (from != it->second.get()) {
      state.writeBack.push_back({it->second.get(), from});
      state.writeBackBytes.push_back(static_cast<size_t>(result.bytes()));
    }
  }
  return Status::success();
}

Status CudaBackend::addTimes(Slot &slot) {
  if (!slot.timed)
    return Status::success();
  if (Status s = slot.done->synchronize(); !s.ok())
    return s;
  const cuda::Event *previous = &*slot.before;
  for (KernelLaunch &k : slot.launches) {
    auto ms = cuda::Event::elapsedMilliseconds(*previous, *k.after);
    if (!ms.ok())
      return ms.status();
    times[k.timeIndex].launches += 1;
    times[k.timeIndex].milliseconds += *ms;
    previous = &*k.after;
  }
  slot.timed = false;
  return Status::success();
}

std::vector<KernelTime> CudaBackend::kernelTimes() {
  for (auto &[name, state] : steps)
    for (Slot &slot : state.slots)
      (void)addTimes(slot);
  return times;
}

/// The step's work on the compute stream: kernels, write-backs, scalars.
Status CudaBackend::submit(StepState &state, Slot &slot) {
  if (profiling) {
    if (Status s = addTimes(slot); !s.ok())
      return s;
    if (!slot.before) {
      auto before = cuda::Event::create();
      if (!before.ok())
        return before.status();
      slot.before.emplace(std::move(*before));
      for (KernelLaunch &k : slot.launches) {
        auto after = cuda::Event::create();
        if (!after.ok())
          return after.status();
        k.after.emplace(std::move(*after));
        auto it = std::find_if(times.begin(), times.end(), [&](auto &t) {
          return t.kernel == k.function.name();
        });
        k.timeIndex = it - times.begin();
        if (it == times.end())
          times.push_back({k.function.name(), 0, 0});
      }
    }
    if (Status s = slot.before->record(compute); !s.ok())
      return s;
  }
  for (KernelLaunch &k : slot.launches) {
    if (Status s = cuda::launch(k.function, k.grid, k.block, k.sharedBytes,
                                compute, k.params.data());
        !s.ok())
      return s;
    if (profiling)
      if (Status s = k.after->record(compute); !s.ok())
        return s;
  }
  slot.timed = profiling;
  for (size_t i = 0; i < state.writeBack.size(); ++i)
    if (Status s = cuda::copyDeviceToDeviceAsync(
            state.writeBack[i][0], state.writeBack[i][1],
            state.writeBackBytes[i], compute);
        !s.ok())
      return s;
  auto *host = static_cast<uint8_t *>(slot.scalarsHost.data());
  for (size_t i = 0; i < state.scalars.size(); ++i)
    if (Status s = cuda::copyToHostAsync(
            host + i * sizeof(double), state.scalars[i].first,
            static_cast<size_t>(dtypeSize(state.scalars[i].second)), compute);
        !s.ok())
      return s;
  return Status::success();
}

Status CudaBackend::write(const std::string &name, const void *data,
                          size_t size) {
  auto it = shared.find(name);
  if (it == shared.end() || it->second.size() != size)
    return Status::error("no parameter or state '" + name + "' of " +
                         std::to_string(size) + " bytes");
  if (Status s = synchronize(); !s.ok())
    return s;
  return it->second.upload(data, size);
}

Status CudaBackend::read(const std::string &name, void *data, size_t size) {
  auto it = shared.find(name);
  if (it == shared.end() || it->second.size() != size)
    return Status::error("no parameter or state '" + name + "' of " +
                         std::to_string(size) + " bytes");
  if (Status s = synchronize(); !s.ok())
    return s;
  return it->second.download(data, size);
}

Status CudaBackend::setInput(const std::string &step, const std::string &name,
                             const void *data, size_t size) {
  auto state = find(step);
  if (!state.ok())
    return state.status();
  Slot &slot = (*state)->slots[(*state)->next];
  auto it = slot.staging.find(name);
  if (it == slot.staging.end() || it->second.size() != size)
    return Status::error("step '" + step + "' has no input '" + name + "' of " +
                         std::to_string(size) + " bytes");
  // The slot's last copy must have read the staging memory.
  if (slot.used)
    if (Status s = slot.copied->synchronize(); !s.ok())
      return s;
  std::memcpy(it->second.data(), data, size);
  if (auto g = slot.gathers.find(name); g != slot.gathers.end())
    g->second.table = -1;
  return Status::success();
}

StatusOr<int> CudaBackend::addByteTable(const uint8_t *data, size_t count,
                                        const void *decode,
                                        size_t decodeBytes) {
  auto elementBytes = decodeElementBytes(decodeBytes);
  if (!elementBytes.ok())
    return elementBytes.status();
  DeviceByteTable table;
  table.count = count;
  table.elementBytes = *elementBytes;
  auto onDevice = cuda::DeviceBuffer::allocate(std::max<size_t>(count, 1));
  auto decoded = cuda::DeviceBuffer::allocate(decodeBytes);
  if (!onDevice.ok())
    return onDevice.status();
  if (!decoded.ok())
    return decoded.status();
  table.bytes = std::move(*onDevice);
  table.decode = std::move(*decoded);
  if (count)
    if (Status s = table.bytes.upload(data, count); !s.ok())
      return s;
  if (Status s = table.decode.upload(decode, decodeBytes); !s.ok())
    return s;
  bytes += table.bytes.size() + table.decode.size();
  tables.push_back(std::move(table));
  return static_cast<int>(tables.size() - 1);
}

Status CudaBackend::gatherInput(const std::string &step,
                                const std::string &name, int table,
                                const int64_t *offsets, size_t rows,
                                size_t width) {
  auto state = find(step);
  if (!state.ok())
    return state.status();
  if (table < 0 || static_cast<size_t>(table) >= tables.size())
    return Status::error("no byte table " + std::to_string(table));
  const DeviceByteTable &t = tables[static_cast<size_t>(table)];
  Slot &slot = (*state)->slots[(*state)->next];
  size_t size = rows * width * t.elementBytes;
  auto it = slot.inputs.find(name);
  if (it == slot.inputs.end() || it->second.size() != size)
    return Status::error("step '" + step + "' has no input '" + name + "' of " +
                         std::to_string(size) + " bytes");
  if (Status s = checkRows(t.count, offsets, rows, width); !s.ok())
    return s;
  // The slot's last copy must have read the offsets' staging memory.
  if (slot.used)
    if (Status s = slot.copied->synchronize(); !s.ok())
      return s;
  Gather &g = slot.gathers[name];
  size_t offsetBytes = std::max<size_t>(rows, 1) * sizeof(int64_t);
  if (g.offsetsHost.size() < offsetBytes) {
    // The slot's last gather must have read the device offsets.
    if (slot.used)
      if (Status s = slot.done->synchronize(); !s.ok())
        return s;
    auto host = cuda::PinnedBuffer::allocate(offsetBytes);
    auto device = cuda::DeviceBuffer::allocate(offsetBytes);
    if (!host.ok())
      return host.status();
    if (!device.ok())
      return device.status();
    bytes += offsetBytes - g.offsets.size();
    g.offsetsHost = std::move(*host);
    g.offsets = std::move(*device);
  }
  std::memcpy(g.offsetsHost.data(), offsets, rows * sizeof(int64_t));
  g.table = table;
  g.rows = rows;
  g.width = width;
  return Status::success();
}

Status CudaBackend::gather(Slot &slot) {
  for (auto &[name, g] : slot.gathers) {
    if (g.table < 0 || g.rows * g.width == 0)
      continue;
    const DeviceByteTable &t = tables[static_cast<size_t>(g.table)];
    cuda::DevicePointer table = t.bytes.get(), offsets = g.offsets.get(),
                        decode = t.decode.get(),
                        out = slot.inputs.at(name).get();
    long long rows = static_cast<long long>(g.rows),
              width = static_cast<long long>(g.width),
              elementBytes = static_cast<long long>(t.elementBytes);
    void *params[] = {&table, &offsets, &decode,      &out,
                      &rows,  &width,   &elementBytes};
    constexpr unsigned kThreads = 256;
    size_t blocks = (g.rows * g.width + kThreads - 1) / kThreads;
    unsigned grid = static_cast<unsigned>(std::min<size_t>(blocks, 1024));
    if (Status s = cuda::launch(gatherKernel, {grid, 1, 1}, {kThreads, 1, 1}, 0,
                                copy, params);
        !s.ok())
      return s;
  }
  return Status::success();
}

Status CudaBackend::run(const std::string &step, uint64_t seed) {
  auto found = find(step);
  if (!found.ok())
    return found.status();
  StepState &state = **found;
  int index = state.next;
  Slot &slot = state.slots[index];
  if (slot.used)
    if (Status s = slot.copied->synchronize(); !s.ok())
      return s;
  std::memcpy(slot.seedHost.data(), &seed, sizeof(seed));
  // Inputs and seed on the copy stream, once the slot's last step is done.
  if (slot.used)
    if (Status s = cuda::waitEvent(copy, *slot.done); !s.ok())
      return s;
  for (auto &[name, buffer] : slot.inputs) {
    auto g = slot.gathers.find(name);
    Status s = g != slot.gathers.end() && g->second.table >= 0
                   ? g->second.offsets.uploadAsync(
                         g->second.offsetsHost.data(),
                         g->second.rows * sizeof(int64_t), copy)
                   : buffer.uploadAsync(slot.staging.at(name).data(),
                                        buffer.size(), copy);
    if (!s.ok())
      return s;
  }
  if (Status s =
          slot.seed.uploadAsync(slot.seedHost.data(), sizeof(seed), copy);
      !s.ok())
    return s;
  if (Status s = gather(slot); !s.ok())
    return s;
  if (Status s = slot.copied->record(copy); !s.ok())
    return s;
  if (Status s = cuda::waitEvent(compute, *slot.copied); !s.ok())
    return s;
  if (graphs) {
    if (!slot.graph) {
      if (Status s = cuda::beginCapture(compute); !s.ok())
        return s;
      Status submitted = submit(state, slot);
      auto graph = cuda::endCapture(compute);
      if (!submitted.ok())
        return submitted;
      if (!graph.ok())
        return graph.status();
      slot.graph.emplace(std::move(*graph));
    }
    if (Status s = slot.graph->launch(compute); !s.ok())
      return s;
  } else if (Status s = submit(state, slot); !s.ok()) {
    return s;
  }
  if (Status s = slot.done->record(compute); !s.ok())
    return s;
  slot.used = true;
  ++state.runs;
  state.last = index;
  state.next = (index + 1) % kSlots;
  return Status::success();
}

Status CudaBackend::scalars(const std::string &step,
                            std::vector<double> &values, unsigned runsAgo) {
  auto found = find(step);
  if (!found.ok())
    return found.status();
  StepState &state = **found;
  values.clear();
  // Run n used slot n % kSlots, which no later run has reused yet when
  // runsAgo < kSlots.
  if (runsAgo >= kSlots || state.runs <= runsAgo)
    return Status::error("step '" + step + "' has no run " +
                         std::to_string(runsAgo) + " runs ago");
  Slot &slot = state.slots[(state.last + kSlots - int(runsAgo)) % kSlots];
  if (Status s = slot.done->synchronize(); !s.ok())
    return s;
  auto *host = static_cast<const uint8_t *>(slot.scalarsHost.data());
  for (size_t i = 0; i < state.scalars.size(); ++i) {
    double value = 0;
    if (state.scalars[i].second == DType::F32) {
      float f;
      std::memcpy(&f, host + i * sizeof(double), sizeof(f));
      value = f;
    } else {
      std::memcpy(&value, host + i * sizeof(double), sizeof(value));
    }
    values.push_back(value);
  }
  return Status::success();
}

Status CudaBackend::output(const std::string &step, const std::string &name,
                           void *data, size_t size) {
  auto found = find(step);
  if (!found.ok())
    return found.status();
  StepState &state = **found;
  auto it = state.outputs.find(name);
  if (it == state.outputs.end() || it->second.bytes != size)
    return Status::error("step '" + step + "' has no result '" + name +
                         "' of " + std::to_string(size) + " bytes");
  if (state.runs == 0)
    return Status::error("step '" + step + "' has not run");
  if (Status s = state.slots[state.last].done->synchronize(); !s.ok())
    return s;
  if (Status s = cuda::copyToHostAsync(data, it->second.where[state.last], size,
                                       compute);
      !s.ok())
    return s;
  return compute.synchronize();
}

Status CudaBackend::synchronize() {
  if (Status s = copy.synchronize(); !s.ok())
    return s;
  return compute.synchronize();
}

StatusOr<std::vector<cuda::Module>>
CudaBackend::compileModules(const std::string &source, const std::string &name,
                            bool &fromCache) {
  // Several programs compiled on parallel threads (NVRTC compiles one
  // program on one thread); the runtime's own kernels with the model's.
  CompileOptions compile;
  compile.arch = device.properties().arch();
  compile.cacheDir = cacheDir;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::string> parts =
      splitKernelSource(source, std::min(threads, 8u));
  std::vector<std::pair<std::string, std::string>> programs;
  for (size_t i = 0; i < parts.size(); ++i)
    programs.push_back({name + "_" + std::to_string(i) + ".cu", parts[i]});
  if (modules.empty())
    programs.push_back({"kiln_runtime.cu", kCudaRuntimeKernels});
  auto images = compileCudaParallel(programs, compile, threads);
  fromCache = true;
  std::vector<cuda::Module> loaded;
  for (auto &image : images) {
    if (!image.ok())
      return image.status();
    fromCache = fromCache && image->fromCache;
    auto module = cuda::Module::load(image->image);
    if (!module.ok())
      return module.status();
    loaded.push_back(std::move(*module));
  }
  return loaded;
}

StatusOr<cuda::Function>
CudaBackend::function(const std::string &symbol) const {
  for (const cuda::Module &module : modules)
    if (auto found = module.function(symbol); found.ok())
      return found;
  return Status::error("kernel '" + symbol + "' is in no module");
}

Status CudaBackend::configure(KernelLaunch &k, const Launch &launch) const {
  StatusOr<cuda::Function> function = this->function(launch.kernel);
  if (!function.ok())
    return function.status();
  k.function = *function;
  k.grid = {launch.gridSize(0), launch.gridSize(1), launch.gridSize(2)};
  k.block = {launch.block[0], launch.block[1], launch.block[2]};
  k.sharedBytes = launch.sharedBytes;
  if (k.sharedBytes > 48 * 1024)
    return k.function.setMaxDynamicSharedBytes(static_cast<int>(k.sharedBytes));
  return Status::success();
}

/// Times a step's CUDA kernels and their candidates on device buffers of
/// its own: its arguments filled with random numbers in [-1, 1) (integers
/// with 0, which indexes anything), its arena with what one run of the
/// step leaves. Each variant is launched once to warm up, then timed with
/// events launch by launch: the best of at least 5 runs, and of as many as
/// 10 ms allow (up to 100).
class CudaTuneTarget final : public TuneTarget {
public:
  CudaTuneTarget(CudaBackend &backend, const Step &step)
      : backend(backend), step(step) {}

  Status prepare() {
    std::mt19937 rng(0);
    std::uniform_real_distribution<double> uniform(-1, 1);
    for (const StepArgument &arg : step.arguments) {
      std::vector<uint8_t> host(static_cast<size_t>(arg.bytes()), 0);
      for (int64_t i = 0; i < arg.elements(); ++i) {
        if (arg.dtype == DType::F32)
          reinterpret_cast<float *>(host.data())[i] = float(uniform(rng));
        else if (arg.dtype == DType::F64)
          reinterpret_cast<double *>(host.data())[i] = uniform(rng);
      }
      auto buffer =
          cuda::DeviceBuffer::allocate(std::max<size_t>(host.size(), 1));
      if (!buffer.ok())
        return buffer.status();
      if (Status s = buffer->upload(host.data(), host.size()); !s.ok())
        return s;
      arguments.push_back(std::move(*buffer));
    }
    auto arena = cuda::DeviceBuffer::allocate(
        static_cast<size_t>(std::max<int64_t>(step.arenaBytes, 1)));
    auto seed = cuda::DeviceBuffer::allocate(sizeof(uint64_t));
    auto start = cuda::Event::create();
    auto end = cuda::Event::create();
    if (!arena.ok() || !seed.ok() || !start.ok() || !end.ok())
      return !arena.ok()   ? arena.status()
             : !seed.ok()  ? seed.status()
             : !start.ok() ? start.status()
                           : end.status();
    this->arena = std::move(*arena);
    this->seed = std::move(*seed);
    if (Status s = this->seed.fill(0); !s.ok())
      return s;
    this->start.emplace(std::move(*start));
    this->end.emplace(std::move(*end));
    for (const Launch &launch : step.launches) {
      auto function = backend.function(launch.kernel);
      if (!function.ok())
        return function.status();
      functions.push_back(*function);
    }
    // One run of the step fills the arena.
    std::vector<size_t> all(step.launches.size());
    for (size_t l = 0; l < all.size(); ++l)
      all[l] = l;
    if (Status s = launchAll(all, nullptr); !s.ok())
      return s;
    return backend.compute.synchronize();
  }

  std::string target() const override { return "cuda"; }
  std::string identity() const override {
    const cuda::DeviceProperties &props = backend.device.properties();
    auto driver = cuda::driverVersion();
    auto nvrtc = nvrtcVersion();
    return "cuda " + props.name + " (" + props.arch() + "); driver " +
           (driver.ok() ? std::to_string(*driver) : "?") + "; nvrtc " +
           (nvrtc.ok() ? std::to_string(*nvrtc) : "?");
  }
  Status load(const std::string &source) override {
    bool cached = false;
    candidates.clear();
    auto modules = backend.compileModules(source, "candidates", cached);
    if (!modules.ok())
      return modules.status();
    candidates = std::move(*modules);
    return Status::success();
  }
  StatusOr<double> time(const std::vector<size_t> &launches,
                        const KernelCandidate *variant) override {
    if (Status s = launchAll(launches, variant); !s.ok())
      return s;
    if (Status s = backend.compute.synchronize(); !s.ok())
      return s;
    double best = std::numeric_limits<double>::infinity(), total = 0;
    for (int runs = 0; runs < 5 || (total < 10 && runs < 100); ++runs) {
      if (Status s = start->record(backend.compute); !s.ok())
        return s;
      if (Status s = launchAll(launches, variant); !s.ok())
        return s;
      if (Status s = end->record(backend.compute); !s.ok())
        return s;
      if (Status s = end->synchronize(); !s.ok())
        return s;
      auto ms = cuda::Event::elapsedMilliseconds(*start, *end);
      if (!ms.ok())
        return ms.status();
      best = std::min(best, double(*ms));
      total += *ms;
    }
    return best;
  }

private:
  /// Launches `launches` of the step, as `variant` (null: as compiled).
  Status launchAll(const std::vector<size_t> &launches,
                   const KernelCandidate *variant) {
    std::optional<cuda::Function> chosen;
    if (variant) {
      for (const cuda::Module &module : candidates)
        if (auto found = module.function(variant->symbol); found.ok())
          chosen = *found;
      if (!chosen)
        return Status::error("candidate '" + variant->symbol +
                             "' is not in the compiled candidates");
    }
    for (size_t l : launches) {
      const Launch &launch = step.launches[l];
      const cuda::Function &function = chosen ? *chosen : functions[l];
      unsigned shared = variant ? variant->sharedBytes : launch.sharedBytes;
      cuda::Dim3 grid, block;
      if (variant) {
        grid = {unsigned(variant->grid[0].evaluate(launch.dims)),
                unsigned(variant->grid[1].evaluate(launch.dims)),
                unsigned(variant->grid[2].evaluate(launch.dims))};
        block = {variant->block[0], variant->block[1], variant->block[2]};
      } else {
        grid = {launch.gridSize(0), launch.gridSize(1), launch.gridSize(2)};
        block = {launch.block[0], launch.block[1], launch.block[2]};
      }
      if (shared > 48 * 1024)
        if (Status s = function.setMaxDynamicSharedBytes(int(shared)); !s.ok())
          return s;
      std::vector<cuda::DevicePointer> pointers;
      for (const BufferRef &ref : launch.buffers)
        pointers.push_back(ref.kind == BufferRef::Kind::arena
                               ? arena.get() + uint64_t(ref.value)
                               : arguments[size_t(ref.value)].get());
      std::vector<long long> dims(launch.dims.begin(), launch.dims.end());
      cuda::DevicePointer seedPointer = seed.get();
      std::vector<void *> params;
      for (cuda::DevicePointer &p : pointers)
        params.push_back(&p);
      for (long long &d : dims)
        params.push_back(&d);
      if (launch.takesSeed)
        params.push_back(&seedPointer);
      if (Status s = cuda::launch(function, grid, block, shared,
                                  backend.compute, params.data());
          !s.ok())
        return s;
    }
    return Status::success();
  }

  CudaBackend &backend;
  const Step &step;
  std::vector<cuda::DeviceBuffer> arguments;
  cuda::DeviceBuffer arena, seed;
  std::optional<cuda::Event> start, end;
  std::vector<cuda::Function> functions;
  std::vector<cuda::Module> candidates;
};

StatusOr<TuneReport> CudaBackend::tune(const std::string &stepKind,
                                       const std::string &candidateSource,
                                       const TuneOptions &options) {
  const Step *tuned = compiled.step(stepKind);
  if (!tuned)
    return Status::error("the program has no step '" + stepKind + "'");
  if (Status s = synchronize(); !s.ok())
    return s;
  StatusOr<TuneReport> report = Status::error("");
  {
    CudaTuneTarget target(*this, *tuned);
    if (Status s = target.prepare(); !s.ok())
      return s;
    report = tuneStep(compiled, *tuned, candidateSource, target, options);
    if (!report.ok())
      return report.status();
  }
  // The chosen candidates, compiled apart (cached for the next run), and
  // launched in place of their kernels by every slot of every step.
  std::string chosen = chosenSource(compiled, *report, candidateSource);
  if (chosen.empty())
    return report;
  std::string name = compiled.model.empty() ? "model" : compiled.model;
  bool cachedToo = false;
  auto loaded = compileModules(chosen, name + "_tuned", cachedToo);
  if (!loaded.ok())
    return loaded.status();
  for (cuda::Module &module : *loaded)
    modules.push_back(std::move(module));
  applyTuning(compiled, *report);
  for (auto &[kind, state] : steps)
    for (Slot &slot : state.slots) {
      // A graph captured before would replay the old kernels.
      slot.graph.reset();
      for (size_t l = 0; l < state.step->launches.size(); ++l) {
        const Launch &launch = state.step->launches[l];
        KernelLaunch &k = slot.launches[l];
        if (k.function.name() != launch.kernel)
          if (Status s = configure(k, launch); !s.ok())
            return s;
      }
    }
  return report;
}

StatusOr<std::unique_ptr<Backend>>
CudaBackend::create(const Program &program, const std::string &source,
                    const CudaBackendOptions &options) {
  if (Status s = verifyProgram(program); !s.ok())
    return s;
  auto count = cuda::deviceCount();
  if (!count.ok())
    return count.status();
  if (*count <= options.device)
    return Status::error("no CUDA device " + std::to_string(options.device) +
                         " (" + std::to_string(*count) + " found)");
  auto device = cuda::Device::open(options.device);
  if (!device.ok())
    return device.status();
  std::unique_ptr<CudaBackend> backend(new CudaBackend(std::move(*device)));
  const cuda::DeviceProperties &props = backend->device.properties();
  backend->text = "cuda:" + std::to_string(options.device) + " " + props.name +
                  " (" + props.arch() + ")";
  backend->compiled = program;
  const char *graphsEnv = std::getenv("KILN_CUDA_GRAPHS");
  backend->profiling = options.profile;
  backend->graphs = options.graphs && !options.profile &&
                    !(graphsEnv && std::string(graphsEnv) == "0");

  backend->cacheDir = options.cacheDir;
  auto start = std::chrono::steady_clock::now();
  std::string name = program.model.empty() ? "model" : program.model;
  auto modules = backend->compileModules(source, name, backend->cached);
  backend->seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  if (!modules.ok())
    return modules.status();
  backend->modules = std::move(*modules);
  auto gatherKernel = backend->modules.back().function("kiln_gather_bytes");
  if (!gatherKernel.ok())
    return gatherKernel.status();
  backend->gatherKernel = *gatherKernel;

  auto compute = cuda::Stream::create();
  auto copy = cuda::Stream::create();
  if (!compute.ok())
    return compute.status();
  if (!copy.ok())
    return copy.status();
  backend->compute = std::move(*compute);
  backend->copy = std::move(*copy);
  for (const Step &step : backend->compiled.steps) {
    StepState &state = backend->steps[step.kind];
    if (Status s = backend->build(state, step); !s.ok())
      return s;
  }
  return std::unique_ptr<Backend>(std::move(backend));
}

} // namespace

StatusOr<std::unique_ptr<Backend>>
kiln::runtime::createCudaBackend(const Program &program,
                                 const std::string &source,
                                 const CudaBackendOptions &options) {
  if (Status s = requireFixedSizes(program); !s.ok())
    return s;
  // One GPU, one rank: a step's all-reduces are the identity.
  Program oneRank = program;
  if (Status s = dropCollectives(oneRank); !s.ok())
    return s;
  return CudaBackend::create(oneRank, source, options);
}
