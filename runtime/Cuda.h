//===- Cuda.h - the CUDA driver API, loaded at run time ---------*- C++ -*-===//
//
// What a training runtime needs from the GPU: devices, the primary context,
// memory, copies, modules and launches, streams, events and CUDA graphs.
// The driver (libcuda.so.1) is opened with dlopen on first use, never
// linked, so one binary runs on machines with and without a GPU: without a
// driver, or with the CUDA toolkit's stub library, every call returns a
// Status beginning "no CUDA driver: " instead of crashing.
//
// Every driver call goes through one checking macro: a failure names the
// call as written, the driver's error name (cuGetErrorName) and code, and
// the file:line of the call, e.g.
//   "cuMemAlloc_v2(&pointer, bytes) failed with CUDA_ERROR_OUT_OF_MEMORY (2)
//    at Cuda.cpp:412"
//
// The objects below own driver resources and release them when destroyed
// (move-only, RAII). They are used from one context: open a Device first
// (it retains the device's primary context and makes it current on the
// calling thread) and destroy buffers, modules, streams, events and graphs
// before the Device. A default-constructed Stream is the legacy default
// stream.
//
//   StatusOr<cuda::Device> device = cuda::Device::open(0);
//   StatusOr<cuda::DeviceBuffer> x = cuda::DeviceBuffer::allocate(bytes);
//   x->upload(host, bytes);
//   StatusOr<cuda::Module> module = cuda::Module::load(program.image);
//   StatusOr<cuda::Function> f = module->function("scale");
//   void *args[] = {&pointer, &n};
//   cuda::launch(*f, {blocks}, {256}, 0, stream, args);
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_CUDA_H
#define KILN_RUNTIME_CUDA_H

#include "runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace kiln::runtime::cuda {

//===----------------------------------------------------------------------===//
// Driver handles, as opaque types (cuda.h's CUcontext, CUstream, ...)
//===----------------------------------------------------------------------===//

struct ContextState;
struct ModuleState;
struct FunctionState;
struct StreamState;
struct EventState;
struct GraphState;
struct GraphExecState;
using ContextHandle = ContextState *;
using ModuleHandle = ModuleState *;
using FunctionHandle = FunctionState *;
using StreamHandle = StreamState *;
using EventHandle = EventState *;
using GraphHandle = GraphState *;
using GraphExecHandle = GraphExecState *;
/// A device address (cuda.h's CUdeviceptr).
using DevicePointer = uint64_t;

//===----------------------------------------------------------------------===//
// The driver
//===----------------------------------------------------------------------===//

/// Loads the process-wide driver and calls cuInit(0), once; later calls
/// return the first result. Fails with "no CUDA driver: " and why: the
/// library cannot be opened, lacks an entry point, or cuInit fails (the
/// toolkit's stub library answers CUDA_ERROR_STUB_LIBRARY; a machine
/// without a device CUDA_ERROR_NO_DEVICE).
Status initialize();

/// True when initialize() succeeds.
bool available();

/// The driver's CUDA version, as 1000 * major + 10 * minor (13000).
StatusOr<int> driverVersion();

/// Where the driver is looked for, in order: only $KILN_CUDA_DRIVER_LIBRARY
/// when it is set and not empty; otherwise libcuda.so.1, then libcuda.so.
/// Read once, when the driver is first loaded.
std::vector<std::string> driverLibraryCandidates();

/// Loads a driver from exactly `path`, resolves every entry point kiln uses
/// and calls cuInit(0); returns the driver version. Independent of the
/// process-wide driver (tests and diagnostics); a library whose cuInit
/// succeeded stays loaded, as a driver cannot be unloaded safely.
StatusOr<int> probeDriverLibrary(const std::string &path);

/// The number of CUDA devices (initializes the driver).
StatusOr<int> deviceCount();

/// What kiln needs to know about a device.
struct DeviceProperties {
  int ordinal = 0;
  std::string name;
  int major = 0, minor = 0; ///< compute capability
  int multiprocessors = 0;
  size_t totalMemoryBytes = 0;
  /// The most dynamic + static shared memory a block may opt in to.
  int maxSharedBytesPerBlockOptin = 0;

  /// The real architecture for NVRTC, e.g. "sm_90" for 9.0.
  std::string arch() const {
    return "sm_" + std::to_string(major) + std::to_string(minor);
  }
};

/// The properties of device `ordinal` (initializes the driver).
StatusOr<DeviceProperties> deviceProperties(int ordinal);

/// Free and total device memory of the current context (cuMemGetInfo).
struct MemoryInfo {
  size_t freeBytes = 0;
  size_t totalBytes = 0;
};

//===----------------------------------------------------------------------===//
// Resources
//===----------------------------------------------------------------------===//

/// A device and its retained primary context.
class Device {
public:
  /// Initializes the driver, retains device `ordinal`'s primary context and
  /// makes it current on the calling thread.
  static StatusOr<Device> open(int ordinal = 0);

  Device(Device &&other) noexcept { *this = std::move(other); }
  Device &operator=(Device &&other) noexcept;
  Device(const Device &) = delete;
  Device &operator=(const Device &) = delete;
  /// Releases the primary context.
  ~Device();

  const DeviceProperties &properties() const { return props; }
  ContextHandle context() const { return ctx; }
  /// Makes the primary context current on the calling thread.
  Status makeCurrent() const;
  /// Waits for all work in the context (cuCtxSynchronize).
  Status synchronize() const;
  /// Free and total memory (cuMemGetInfo).
  StatusOr<MemoryInfo> memoryInfo() const;

private:
  Device() = default;
  DeviceProperties props;
  int device = -1;
  ContextHandle ctx = nullptr;
};

/// A stream (cuStreamCreate); default-constructed: the legacy default
/// stream, which is never destroyed.
class Stream {
public:
  Stream() = default;
  /// A new stream; `nonBlocking` does not synchronize with the default
  /// stream (CU_STREAM_NON_BLOCKING).
  static StatusOr<Stream> create(bool nonBlocking = true);

  Stream(Stream &&other) noexcept : stream(std::exchange(other.stream, {})) {}
  Stream &operator=(Stream &&other) noexcept;
  Stream(const Stream &) = delete;
  Stream &operator=(const Stream &) = delete;
  ~Stream();

  StreamHandle handle() const { return stream; }
  Status synchronize() const;

private:
  StreamHandle stream = nullptr;
};

/// Device memory (cuMemAlloc). Copies and fills are synchronous unless they
/// take a stream; an asynchronous copy needs pinned host memory to overlap.
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  /// `bytes` of uninitialized device memory; 0 bytes gives a null buffer.
  static StatusOr<DeviceBuffer> allocate(size_t bytes);

  DeviceBuffer(DeviceBuffer &&other) noexcept
      : pointer(std::exchange(other.pointer, 0)),
        bytes(std::exchange(other.bytes, 0)) {}
  DeviceBuffer &operator=(DeviceBuffer &&other) noexcept;
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
  ~DeviceBuffer();

  DevicePointer get() const { return pointer; }
  size_t size() const { return bytes; }

  /// Copies `count` bytes from the host to the start of the buffer.
  Status upload(const void *host, size_t count);
  /// Copies `count` bytes from the start of the buffer to the host.
  Status download(void *host, size_t count) const;
  /// Sets every byte to `value` (cuMemsetD8).
  Status fill(uint8_t value);
  Status uploadAsync(const void *host, size_t count, const Stream &stream);
  Status downloadAsync(void *host, size_t count, const Stream &stream) const;
  Status fillAsync(uint8_t value, const Stream &stream);

private:
  DevicePointer pointer = 0;
  size_t bytes = 0;
};

/// Page-locked host memory (cuMemAllocHost), for asynchronous copies.
class PinnedBuffer {
public:
  PinnedBuffer() = default;
  static StatusOr<PinnedBuffer> allocate(size_t bytes);

  PinnedBuffer(PinnedBuffer &&other) noexcept
      : pointer(std::exchange(other.pointer, nullptr)),
        bytes(std::exchange(other.bytes, 0)) {}
  PinnedBuffer &operator=(PinnedBuffer &&other) noexcept;
  PinnedBuffer(const PinnedBuffer &) = delete;
  PinnedBuffer &operator=(const PinnedBuffer &) = delete;
  ~PinnedBuffer();

  void *data() const { return pointer; }
  size_t size() const { return bytes; }

private:
  void *pointer = nullptr;
  size_t bytes = 0;
};

/// An event with timing (cuEventCreate with CU_EVENT_DEFAULT).
class Event {
public:
  static StatusOr<Event> create();

  Event(Event &&other) noexcept : event(std::exchange(other.event, {})) {}
  Event &operator=(Event &&other) noexcept;
  Event(const Event &) = delete;
  Event &operator=(const Event &) = delete;
  ~Event();

  EventHandle handle() const { return event; }
  Status record(const Stream &stream);
  Status synchronize() const;
  /// Milliseconds between two recorded, completed events.
  static StatusOr<float> elapsedMilliseconds(const Event &start,
                                             const Event &end);

private:
  Event() = default;
  EventHandle event = nullptr;
};

/// A kernel of a loaded Module; valid while the Module lives.
class Function {
public:
  FunctionHandle handle() const { return function; }
  const std::string &name() const { return symbol; }
  /// Allows launches with up to `bytes` of dynamic shared memory, needed
  /// above 48 KiB (CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES).
  Status setMaxDynamicSharedBytes(int bytes) const;

private:
  friend class Module;
  FunctionHandle function = nullptr;
  std::string symbol;
};

/// A loaded CUBIN or PTX image (cuModuleLoadData).
class Module {
public:
  /// Loads `image`: a CUBIN, or PTX text ending in NUL (as
  /// CompiledProgram::image holds them).
  static StatusOr<Module> load(const std::vector<char> &image);

  Module(Module &&other) noexcept : module(std::exchange(other.module, {})) {}
  Module &operator=(Module &&other) noexcept;
  Module(const Module &) = delete;
  Module &operator=(const Module &) = delete;
  ~Module();

  /// The `extern "C"` kernel `name`.
  StatusOr<Function> function(const std::string &name) const;

private:
  Module() = default;
  ModuleHandle module = nullptr;
};

/// Asynchronous copies between arbitrary addresses (inside a buffer, e.g.
/// a tensor in an arena), ordered on `stream`; host memory must be pinned
/// for the copy to overlap other work.
Status copyToHostAsync(void *host, DevicePointer device, size_t bytes,
                       const Stream &stream);
Status copyToDeviceAsync(DevicePointer device, const void *host, size_t bytes,
                         const Stream &stream);
Status copyDeviceToDeviceAsync(DevicePointer to, DevicePointer from,
                               size_t bytes, const Stream &stream);

/// Makes later work on `stream` wait until `event` has completed
/// (cuStreamWaitEvent).
Status waitEvent(const Stream &stream, const Event &event);

/// Grid or block dimensions.
struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

/// Launches `function` (cuLaunchKernel). `args` holds one pointer per
/// kernel parameter, pointing at the parameter's value (for a buffer: at
/// its DevicePointer).
Status launch(const Function &function, Dim3 grid, Dim3 block,
              unsigned sharedBytes, const Stream &stream, void **args);

/// An instantiated CUDA graph, captured from a stream:
///
///   beginCapture(stream);  ...launches and copies on stream...
///   StatusOr<Graph> graph = endCapture(stream);
///   graph->launch(stream);  // replays everything captured
class Graph {
public:
  Graph(Graph &&other) noexcept
      : graph(std::exchange(other.graph, {})),
        exec(std::exchange(other.exec, {})) {}
  Graph &operator=(Graph &&other) noexcept;
  Graph(const Graph &) = delete;
  Graph &operator=(const Graph &) = delete;
  ~Graph();

  /// Replays the graph on `stream` (cuGraphLaunch).
  Status launch(const Stream &stream) const;

private:
  friend StatusOr<Graph> endCapture(const Stream &stream);
  Graph() = default;
  GraphHandle graph = nullptr;
  GraphExecHandle exec = nullptr;
};

/// Starts capturing the work submitted to `stream` (not the legacy default
/// stream) into a graph (cuStreamBeginCapture, thread-local mode).
Status beginCapture(const Stream &stream);

/// Ends the capture on `stream` and instantiates the captured graph.
StatusOr<Graph> endCapture(const Stream &stream);

} // namespace kiln::runtime::cuda

#endif // KILN_RUNTIME_CUDA_H
