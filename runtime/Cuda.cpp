//===- Cuda.cpp - the CUDA driver API, loaded at run time -----------------===//
//
// The driver is opened with dlopen and its entry points are declared here,
// as cuda.h declares them, so no CUDA header or library is needed to build.
// Where cuda.h maps an API name to a versioned symbol (cuMemAlloc to
// cuMemAlloc_v2), the versioned symbol is resolved, as a program compiled
// against cuda.h would call it. Every driver call goes through CU_CHECK,
// which turns a failure into a Status naming the call, the driver's error
// name and the file:line of the call.
//
//===----------------------------------------------------------------------===//

#include "runtime/Cuda.h"

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>

using namespace kiln::runtime;
using namespace kiln::runtime::cuda;

namespace {

//===----------------------------------------------------------------------===//
// The driver entry points kiln uses, as cuda.h declares them
//===----------------------------------------------------------------------===//

/// cuda.h's `CUresult`; 0 is CUDA_SUCCESS.
using CUresult = int;
constexpr CUresult kCudaSuccess = 0;
using CUdevice = int;

// Enumerators of cuda.h used below.
constexpr int kAttributeMaxThreadsPerBlock = 1;
constexpr int kAttributeMultiprocessorCount = 16;
constexpr int kAttributeComputeCapabilityMajor = 75;
constexpr int kAttributeComputeCapabilityMinor = 76;
constexpr int kAttributeMaxSharedMemoryPerBlockOptin = 97;
constexpr int kFuncAttributeMaxDynamicSharedSizeBytes = 8;
constexpr unsigned kStreamNonBlocking = 0x1;
constexpr unsigned kEventDefault = 0x0;
constexpr int kStreamCaptureModeThreadLocal = 1;

/// An opened driver. Members are named after the API functions so that
/// CU_CHECK records calls as the driver's documentation spells them.
struct CudaDriver {
  void *handle = nullptr;
  std::string path;
  int version = 0;

  CUresult (*cuGetErrorName)(CUresult, const char **) = nullptr;
  CUresult (*cuInit)(unsigned) = nullptr;
  CUresult (*cuDriverGetVersion)(int *) = nullptr;
  CUresult (*cuDeviceGetCount)(int *) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice *, int) = nullptr;
  CUresult (*cuDeviceGetName)(char *, int, CUdevice) = nullptr;
  CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice) = nullptr;
  CUresult (*cuDeviceTotalMem)(size_t *, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(ContextHandle *, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice) = nullptr;
  CUresult (*cuCtxSetCurrent)(ContextHandle) = nullptr;
  CUresult (*cuCtxSynchronize)() = nullptr;
  CUresult (*cuMemGetInfo)(size_t *, size_t *) = nullptr;
  CUresult (*cuMemAlloc)(DevicePointer *, size_t) = nullptr;
  CUresult (*cuMemFree)(DevicePointer) = nullptr;
  CUresult (*cuMemAllocHost)(void **, size_t) = nullptr;
  CUresult (*cuMemFreeHost)(void *) = nullptr;
  CUresult (*cuMemsetD8)(DevicePointer, unsigned char, size_t) = nullptr;
  CUresult (*cuMemsetD8Async)(DevicePointer, unsigned char, size_t,
                              StreamHandle) = nullptr;
  CUresult (*cuMemcpyHtoD)(DevicePointer, const void *, size_t) = nullptr;
  CUresult (*cuMemcpyDtoH)(void *, DevicePointer, size_t) = nullptr;
  CUresult (*cuMemcpyHtoDAsync)(DevicePointer, const void *, size_t,
                                StreamHandle) = nullptr;
  CUresult (*cuMemcpyDtoHAsync)(void *, DevicePointer, size_t,
                                StreamHandle) = nullptr;
  CUresult (*cuMemcpyDtoDAsync)(DevicePointer, DevicePointer, size_t,
                                StreamHandle) = nullptr;
  CUresult (*cuStreamWaitEvent)(StreamHandle, EventHandle, unsigned) = nullptr;
  CUresult (*cuModuleLoadData)(ModuleHandle *, const void *) = nullptr;
  CUresult (*cuModuleUnload)(ModuleHandle) = nullptr;
  CUresult (*cuModuleGetFunction)(FunctionHandle *, ModuleHandle,
                                  const char *) = nullptr;
  CUresult (*cuFuncSetAttribute)(FunctionHandle, int, int) = nullptr;
  CUresult (*cuLaunchKernel)(FunctionHandle, unsigned, unsigned, unsigned,
                             unsigned, unsigned, unsigned, unsigned,
                             StreamHandle, void **, void **) = nullptr;
  CUresult (*cuStreamCreate)(StreamHandle *, unsigned) = nullptr;
  CUresult (*cuStreamDestroy)(StreamHandle) = nullptr;
  CUresult (*cuStreamSynchronize)(StreamHandle) = nullptr;
  CUresult (*cuEventCreate)(EventHandle *, unsigned) = nullptr;
  CUresult (*cuEventDestroy)(EventHandle) = nullptr;
  CUresult (*cuEventRecord)(EventHandle, StreamHandle) = nullptr;
  CUresult (*cuEventSynchronize)(EventHandle) = nullptr;
  CUresult (*cuEventElapsedTime)(float *, EventHandle, EventHandle) = nullptr;
  CUresult (*cuStreamBeginCapture)(StreamHandle, int) = nullptr;
  CUresult (*cuStreamEndCapture)(StreamHandle, GraphHandle *) = nullptr;
  CUresult (*cuGraphInstantiate)(GraphExecHandle *, GraphHandle,
                                 unsigned long long) = nullptr;
  CUresult (*cuGraphLaunch)(GraphExecHandle, StreamHandle) = nullptr;
  CUresult (*cuGraphExecDestroy)(GraphExecHandle) = nullptr;
  CUresult (*cuGraphDestroy)(GraphHandle) = nullptr;
};

/// cuda.h's name of `result` for the errors cuInit can answer, for when
/// cuGetErrorName cannot name them (the toolkit's stub library fails every
/// call, cuGetErrorName included).
const char *fallbackErrorName(CUresult result) {
  switch (result) {
  case 1:
    return "CUDA_ERROR_INVALID_VALUE";
  case 2:
    return "CUDA_ERROR_OUT_OF_MEMORY";
  case 3:
    return "CUDA_ERROR_NOT_INITIALIZED";
  case 34:
    return "CUDA_ERROR_STUB_LIBRARY";
  case 35:
    return "CUDA_ERROR_INSUFFICIENT_DRIVER";
  case 100:
    return "CUDA_ERROR_NO_DEVICE";
  case 999:
    return "CUDA_ERROR_UNKNOWN";
  }
  return nullptr;
}

/// Success when `result` is CUDA_SUCCESS; otherwise an error such as
/// "cuMemAlloc(&pointer, bytes) failed with CUDA_ERROR_OUT_OF_MEMORY (2) at
/// Cuda.cpp:312".
Status checkCuda(const CudaDriver &driver, CUresult result, const char *call,
                 const char *file, int line) {
  if (result == kCudaSuccess)
    return Status::success();
  const char *errorName = nullptr;
  if (driver.cuGetErrorName &&
      driver.cuGetErrorName(result, &errorName) != kCudaSuccess)
    errorName = nullptr;
  if (!errorName)
    errorName = fallbackErrorName(result);
  const char *slash = std::strrchr(file, '/');
  return Status::error(std::string(call) + " failed with " +
                       (errorName ? errorName : "an unknown CUDA error") +
                       " (" + std::to_string(result) + ") at " +
                       (slash ? slash + 1 : file) + ":" + std::to_string(line));
}

/// Calls `driver.call` and returns the checked result as a Status.
#define CU_CHECK(driver, call)                                                 \
  checkCuda((driver), (driver).call, #call, __FILE__, __LINE__)

//===----------------------------------------------------------------------===//
// Loading
//===----------------------------------------------------------------------===//

std::string dlopenError() {
  const char *error = ::dlerror();
  return error ? error : "unknown dlopen error";
}

/// Resolves the first of `symbols` the library has into `function`.
template <typename Fn>
bool resolve(void *handle, std::initializer_list<const char *> symbols,
             Fn &function) {
  for (const char *symbol : symbols) {
    function = reinterpret_cast<Fn>(::dlsym(handle, symbol));
    if (function)
      return true;
  }
  return false;
}

/// Opens `path`, resolves every entry point and calls cuInit(0). The caller
/// owns the handle. A library is only closed again when cuInit has not run
/// successfully.
StatusOr<CudaDriver> openDriver(const std::string &path) {
  CudaDriver driver;
  driver.path = path;
  driver.handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!driver.handle) // dlerror() names the path already
    return Status::error(dlopenError());
  auto fail = [&](const std::string &message) {
    ::dlclose(driver.handle);
    return Status::error(path + ": " + message);
  };

  const char *missing = nullptr;
  auto need = [&](auto &function, std::initializer_list<const char *> symbols) {
    if (!missing && !resolve(driver.handle, symbols, function))
      missing = *symbols.begin();
  };
  need(driver.cuGetErrorName, {"cuGetErrorName"});
  need(driver.cuInit, {"cuInit"});
  need(driver.cuDriverGetVersion, {"cuDriverGetVersion"});
  need(driver.cuDeviceGetCount, {"cuDeviceGetCount"});
  need(driver.cuDeviceGet, {"cuDeviceGet"});
  need(driver.cuDeviceGetName, {"cuDeviceGetName"});
  need(driver.cuDeviceGetAttribute, {"cuDeviceGetAttribute"});
  need(driver.cuDeviceTotalMem, {"cuDeviceTotalMem_v2"});
  need(driver.cuDevicePrimaryCtxRetain, {"cuDevicePrimaryCtxRetain"});
  need(driver.cuDevicePrimaryCtxRelease, {"cuDevicePrimaryCtxRelease_v2"});
  need(driver.cuCtxSetCurrent, {"cuCtxSetCurrent"});
  need(driver.cuCtxSynchronize, {"cuCtxSynchronize"});
  need(driver.cuMemGetInfo, {"cuMemGetInfo_v2"});
  need(driver.cuMemAlloc, {"cuMemAlloc_v2"});
  need(driver.cuMemFree, {"cuMemFree_v2"});
  need(driver.cuMemAllocHost, {"cuMemAllocHost_v2"});
  need(driver.cuMemFreeHost, {"cuMemFreeHost"});
  need(driver.cuMemsetD8, {"cuMemsetD8_v2"});
  need(driver.cuMemsetD8Async, {"cuMemsetD8Async"});
  need(driver.cuMemcpyHtoD, {"cuMemcpyHtoD_v2"});
  need(driver.cuMemcpyDtoH, {"cuMemcpyDtoH_v2"});
  need(driver.cuMemcpyHtoDAsync, {"cuMemcpyHtoDAsync_v2"});
  need(driver.cuMemcpyDtoHAsync, {"cuMemcpyDtoHAsync_v2"});
  need(driver.cuMemcpyDtoDAsync, {"cuMemcpyDtoDAsync_v2"});
  need(driver.cuStreamWaitEvent, {"cuStreamWaitEvent"});
  need(driver.cuModuleLoadData, {"cuModuleLoadData"});
  need(driver.cuModuleUnload, {"cuModuleUnload"});
  need(driver.cuModuleGetFunction, {"cuModuleGetFunction"});
  need(driver.cuFuncSetAttribute, {"cuFuncSetAttribute"});
  need(driver.cuLaunchKernel, {"cuLaunchKernel"});
  need(driver.cuStreamCreate, {"cuStreamCreate"});
  need(driver.cuStreamDestroy, {"cuStreamDestroy_v2"});
  need(driver.cuStreamSynchronize, {"cuStreamSynchronize"});
  need(driver.cuEventCreate, {"cuEventCreate"});
  need(driver.cuEventDestroy, {"cuEventDestroy_v2"});
  need(driver.cuEventRecord, {"cuEventRecord"});
  need(driver.cuEventSynchronize, {"cuEventSynchronize"});
  // cuda.h maps cuEventElapsedTime to _v2 since CUDA 12.8; older drivers
  // have only the original, with the same signature.
  need(driver.cuEventElapsedTime,
       {"cuEventElapsedTime_v2", "cuEventElapsedTime"});
  need(driver.cuStreamBeginCapture, {"cuStreamBeginCapture_v2"});
  need(driver.cuStreamEndCapture, {"cuStreamEndCapture"});
  need(driver.cuGraphInstantiate, {"cuGraphInstantiateWithFlags"});
  need(driver.cuGraphLaunch, {"cuGraphLaunch"});
  need(driver.cuGraphExecDestroy, {"cuGraphExecDestroy"});
  need(driver.cuGraphDestroy, {"cuGraphDestroy"});
  if (missing)
    return fail(std::string("not a CUDA driver: it lacks ") + missing);

  if (Status status = CU_CHECK(driver, cuInit(0)); !status.ok())
    return fail(status.message());
  if (Status status = CU_CHECK(driver, cuDriverGetVersion(&driver.version));
      !status.ok())
    return Status::error(path + ": " + status.message());
  return driver;
}

std::string environment(const char *name) {
  const char *value = std::getenv(name);
  return value ? value : "";
}

/// Opens the first candidate that is a usable driver, or explains each
/// failure.
StatusOr<CudaDriver> openFirstDriver(const std::vector<std::string> &paths) {
  std::string tried;
  for (const std::string &path : paths) {
    StatusOr<CudaDriver> driver = openDriver(path);
    if (driver.ok())
      return driver;
    tried += "\n  " + driver.status().message();
  }
  return Status::error("no CUDA driver: this machine has no usable GPU "
                       "driver (set KILN_CUDA_DRIVER_LIBRARY to the path of "
                       "libcuda.so.1 if it is elsewhere); tried:" +
                       tried);
}

/// The process-wide driver, loaded and initialized on first use and never
/// unloaded. A function-local static, so concurrent first calls load it
/// once.
const StatusOr<CudaDriver> &processDriver() {
  static const StatusOr<CudaDriver> driver =
      openFirstDriver(driverLibraryCandidates());
  return driver;
}

/// The process-wide driver; only called where one is known to be loaded
/// (a resource exists, so initialize() succeeded).
const CudaDriver &loadedDriver() { return *processDriver(); }

} // namespace

//===----------------------------------------------------------------------===//
// The driver
//===----------------------------------------------------------------------===//

Status cuda::initialize() { return processDriver().status(); }

bool cuda::available() { return processDriver().ok(); }

StatusOr<int> cuda::driverVersion() {
  const StatusOr<CudaDriver> &driver = processDriver();
  if (!driver.ok())
    return driver.status();
  return driver->version;
}

std::vector<std::string> cuda::driverLibraryCandidates() {
  std::string override = environment("KILN_CUDA_DRIVER_LIBRARY");
  if (!override.empty())
    return {override};
  return {"libcuda.so.1", "libcuda.so"};
}

StatusOr<int> cuda::probeDriverLibrary(const std::string &path) {
  StatusOr<CudaDriver> driver = openDriver(path);
  if (!driver.ok())
    return Status::error("no CUDA driver: " + driver.status().message());
  return driver->version;
}

StatusOr<int> cuda::deviceCount() {
  const StatusOr<CudaDriver> &driver = processDriver();
  if (!driver.ok())
    return driver.status();
  int count = 0;
  if (Status status = CU_CHECK(*driver, cuDeviceGetCount(&count)); !status.ok())
    return status;
  return count;
}

StatusOr<DeviceProperties> cuda::deviceProperties(int ordinal) {
  const StatusOr<CudaDriver> &driver = processDriver();
  if (!driver.ok())
    return driver.status();
  CUdevice device = 0;
  if (Status status = CU_CHECK(*driver, cuDeviceGet(&device, ordinal));
      !status.ok())
    return status;
  DeviceProperties props;
  props.ordinal = ordinal;
  char name[256] = {};
  if (Status status =
          CU_CHECK(*driver, cuDeviceGetName(name, int(sizeof(name)), device));
      !status.ok())
    return status;
  props.name = name;
  struct Attribute {
    int attribute;
    int *value;
  };
  int maxThreads = 0;
  for (Attribute attribute :
       {Attribute{kAttributeComputeCapabilityMajor, &props.major},
        Attribute{kAttributeComputeCapabilityMinor, &props.minor},
        Attribute{kAttributeMultiprocessorCount, &props.multiprocessors},
        Attribute{kAttributeMaxSharedMemoryPerBlockOptin,
                  &props.maxSharedBytesPerBlockOptin},
        Attribute{kAttributeMaxThreadsPerBlock, &maxThreads}})
    if (Status status = CU_CHECK(
            *driver,
            cuDeviceGetAttribute(attribute.value, attribute.attribute, device));
        !status.ok())
      return status;
  if (Status status =
          CU_CHECK(*driver, cuDeviceTotalMem(&props.totalMemoryBytes, device));
      !status.ok())
    return status;
  return props;
}

//===----------------------------------------------------------------------===//
// Device
//===----------------------------------------------------------------------===//

StatusOr<Device> Device::open(int ordinal) {
  StatusOr<DeviceProperties> props = deviceProperties(ordinal);
  if (!props.ok())
    return props.status();
  const CudaDriver &driver = loadedDriver();
  Device device;
  device.props = std::move(*props);
  if (Status status = CU_CHECK(driver, cuDeviceGet(&device.device, ordinal));
      !status.ok())
    return status;
  if (Status status = CU_CHECK(
          driver, cuDevicePrimaryCtxRetain(&device.ctx, device.device));
      !status.ok()) {
    device.device = -1; // nothing to release
    return status;
  }
  if (Status status = device.makeCurrent(); !status.ok())
    return status;
  return device;
}

Device &Device::operator=(Device &&other) noexcept {
  std::swap(props, other.props);
  std::swap(device, other.device);
  std::swap(ctx, other.ctx);
  return *this;
}

Device::~Device() {
  if (ctx)
    (void)CU_CHECK(loadedDriver(), cuDevicePrimaryCtxRelease(device));
}

Status Device::makeCurrent() const {
  return CU_CHECK(loadedDriver(), cuCtxSetCurrent(ctx));
}

Status Device::synchronize() const {
  return CU_CHECK(loadedDriver(), cuCtxSynchronize());
}

StatusOr<MemoryInfo> Device::memoryInfo() const {
  MemoryInfo info;
  if (Status status = CU_CHECK(loadedDriver(),
                               cuMemGetInfo(&info.freeBytes, &info.totalBytes));
      !status.ok())
    return status;
  return info;
}

//===----------------------------------------------------------------------===//
// Stream
//===----------------------------------------------------------------------===//

StatusOr<Stream> Stream::create(bool nonBlocking) {
  if (Status status = initialize(); !status.ok())
    return status;
  Stream stream;
  if (Status status = CU_CHECK(
          loadedDriver(),
          cuStreamCreate(&stream.stream, nonBlocking ? kStreamNonBlocking : 0));
      !status.ok())
    return status;
  return stream;
}

Stream &Stream::operator=(Stream &&other) noexcept {
  std::swap(stream, other.stream);
  return *this;
}

Stream::~Stream() {
  if (stream)
    (void)CU_CHECK(loadedDriver(), cuStreamDestroy(stream));
}

Status Stream::synchronize() const {
  if (Status status = initialize(); !status.ok())
    return status;
  return CU_CHECK(loadedDriver(), cuStreamSynchronize(stream));
}

//===----------------------------------------------------------------------===//
// DeviceBuffer and PinnedBuffer
//===----------------------------------------------------------------------===//

namespace {

/// Refuses a copy of `count` bytes into or out of a `size`-byte buffer.
Status checkCopySize(size_t count, size_t size, const char *what) {
  if (count <= size)
    return Status::success();
  return Status::error(std::string(what) + " of " + std::to_string(count) +
                       " bytes exceeds the " + std::to_string(size) +
                       "-byte device buffer");
}

} // namespace

StatusOr<DeviceBuffer> DeviceBuffer::allocate(size_t bytes) {
  if (Status status = initialize(); !status.ok())
    return status;
  DeviceBuffer buffer;
  if (bytes == 0)
    return buffer;
  if (Status status =
          CU_CHECK(loadedDriver(), cuMemAlloc(&buffer.pointer, bytes));
      !status.ok())
    return status;
  buffer.bytes = bytes;
  return buffer;
}

DeviceBuffer &DeviceBuffer::operator=(DeviceBuffer &&other) noexcept {
  std::swap(pointer, other.pointer);
  std::swap(bytes, other.bytes);
  return *this;
}

DeviceBuffer::~DeviceBuffer() {
  if (pointer)
    (void)CU_CHECK(loadedDriver(), cuMemFree(pointer));
}

Status DeviceBuffer::upload(const void *host, size_t count) {
  if (Status status = checkCopySize(count, bytes, "an upload"); !status.ok())
    return status;
  if (count == 0)
    return Status::success();
  return CU_CHECK(loadedDriver(), cuMemcpyHtoD(pointer, host, count));
}

Status DeviceBuffer::download(void *host, size_t count) const {
  if (Status status = checkCopySize(count, bytes, "a download"); !status.ok())
    return status;
  if (count == 0)
    return Status::success();
  return CU_CHECK(loadedDriver(), cuMemcpyDtoH(host, pointer, count));
}

Status DeviceBuffer::fill(uint8_t value) {
  if (bytes == 0)
    return Status::success();
  return CU_CHECK(loadedDriver(), cuMemsetD8(pointer, value, bytes));
}

Status DeviceBuffer::uploadAsync(const void *host, size_t count,
                                 const Stream &stream) {
  if (Status status = checkCopySize(count, bytes, "an upload"); !status.ok())
    return status;
  if (count == 0)
    return Status::success();
  return CU_CHECK(loadedDriver(),
                  cuMemcpyHtoDAsync(pointer, host, count, stream.handle()));
}

Status DeviceBuffer::downloadAsync(void *host, size_t count,
                                   const Stream &stream) const {
  if (Status status = checkCopySize(count, bytes, "a download"); !status.ok())
    return status;
  if (count == 0)
    return Status::success();
  return CU_CHECK(loadedDriver(),
                  cuMemcpyDtoHAsync(host, pointer, count, stream.handle()));
}

Status DeviceBuffer::fillAsync(uint8_t value, const Stream &stream) {
  if (bytes == 0)
    return Status::success();
  return CU_CHECK(loadedDriver(),
                  cuMemsetD8Async(pointer, value, bytes, stream.handle()));
}

StatusOr<PinnedBuffer> PinnedBuffer::allocate(size_t bytes) {
  if (Status status = initialize(); !status.ok())
    return status;
  PinnedBuffer buffer;
  if (bytes == 0)
    return buffer;
  if (Status status =
          CU_CHECK(loadedDriver(), cuMemAllocHost(&buffer.pointer, bytes));
      !status.ok())
    return status;
  buffer.bytes = bytes;
  return buffer;
}

PinnedBuffer &PinnedBuffer::operator=(PinnedBuffer &&other) noexcept {
  std::swap(pointer, other.pointer);
  std::swap(bytes, other.bytes);
  return *this;
}

PinnedBuffer::~PinnedBuffer() {
  if (pointer)
    (void)CU_CHECK(loadedDriver(), cuMemFreeHost(pointer));
}

//===----------------------------------------------------------------------===//
// Event
//===----------------------------------------------------------------------===//

StatusOr<Event> Event::create() {
  if (Status status = initialize(); !status.ok())
    return status;
  Event event;
  if (Status status =
          CU_CHECK(loadedDriver(), cuEventCreate(&event.event, kEventDefault));
      !status.ok())
    return status;
  return event;
}

Event &Event::operator=(Event &&other) noexcept {
  std::swap(event, other.event);
  return *this;
}

Event::~Event() {
  if (event)
    (void)CU_CHECK(loadedDriver(), cuEventDestroy(event));
}

Status Event::record(const Stream &stream) {
  return CU_CHECK(loadedDriver(), cuEventRecord(event, stream.handle()));
}

Status Event::synchronize() const {
  return CU_CHECK(loadedDriver(), cuEventSynchronize(event));
}

StatusOr<float> Event::elapsedMilliseconds(const Event &start,
                                           const Event &end) {
  float milliseconds = 0;
  if (Status status =
          CU_CHECK(loadedDriver(),
                   cuEventElapsedTime(&milliseconds, start.event, end.event));
      !status.ok())
    return status;
  return milliseconds;
}

//===----------------------------------------------------------------------===//
// Module, Function and launches
//===----------------------------------------------------------------------===//

StatusOr<Module> Module::load(const std::vector<char> &image) {
  if (Status status = initialize(); !status.ok())
    return status;
  if (image.empty())
    return Status::error("cannot load an empty module image");
  Module module;
  if (Status status = CU_CHECK(loadedDriver(),
                               cuModuleLoadData(&module.module, image.data()));
      !status.ok())
    return status;
  return module;
}

Module &Module::operator=(Module &&other) noexcept {
  std::swap(module, other.module);
  return *this;
}

Module::~Module() {
  if (module)
    (void)CU_CHECK(loadedDriver(), cuModuleUnload(module));
}

StatusOr<Function> Module::function(const std::string &name) const {
  Function function;
  function.symbol = name;
  if (Status status =
          CU_CHECK(loadedDriver(), cuModuleGetFunction(&function.function,
                                                       module, name.c_str()));
      !status.ok())
    return Status::error("kernel '" + name + "': " + status.message());
  return function;
}

Status Function::setMaxDynamicSharedBytes(int bytes) const {
  return CU_CHECK(loadedDriver(),
                  cuFuncSetAttribute(function,
                                     kFuncAttributeMaxDynamicSharedSizeBytes,
                                     bytes));
}

Status cuda::copyToHostAsync(void *host, DevicePointer device, size_t bytes,
                             const Stream &stream) {
  if (bytes == 0)
    return Status::success();
  return CU_CHECK(loadedDriver(),
                  cuMemcpyDtoHAsync(host, device, bytes, stream.handle()));
}

Status cuda::copyToDeviceAsync(DevicePointer device, const void *host,
                               size_t bytes, const Stream &stream) {
  if (bytes == 0)
    return Status::success();
  return CU_CHECK(loadedDriver(),
                  cuMemcpyHtoDAsync(device, host, bytes, stream.handle()));
}

Status cuda::copyDeviceToDeviceAsync(DevicePointer to, DevicePointer from,
                                     size_t bytes, const Stream &stream) {
  if (bytes == 0)
    return Status::success();
  return CU_CHECK(loadedDriver(),
                  cuMemcpyDtoDAsync(to, from, bytes, stream.handle()));
}

Status cuda::waitEvent(const Stream &stream, const Event &event) {
  return CU_CHECK(loadedDriver(),
                  cuStreamWaitEvent(stream.handle(), event.handle(), 0));
}

Status cuda::launch(const Function &function, Dim3 grid, Dim3 block,
                    unsigned sharedBytes, const Stream &stream, void **args) {
  if (Status status = CU_CHECK(
          loadedDriver(),
          cuLaunchKernel(function.handle(), grid.x, grid.y, grid.z, block.x,
                         block.y, block.z, sharedBytes, stream.handle(), args,
                         /*extra=*/nullptr));
      !status.ok())
    return Status::error("launching " + function.name() + ": " +
                         status.message());
  return Status::success();
}

//===----------------------------------------------------------------------===//
// Graphs
//===----------------------------------------------------------------------===//

Graph &Graph::operator=(Graph &&other) noexcept {
  std::swap(graph, other.graph);
  std::swap(exec, other.exec);
  return *this;
}

Graph::~Graph() {
  if (exec)
    (void)CU_CHECK(loadedDriver(), cuGraphExecDestroy(exec));
  if (graph)
    (void)CU_CHECK(loadedDriver(), cuGraphDestroy(graph));
}

Status Graph::launch(const Stream &stream) const {
  return CU_CHECK(loadedDriver(), cuGraphLaunch(exec, stream.handle()));
}

Status cuda::beginCapture(const Stream &stream) {
  if (Status status = initialize(); !status.ok())
    return status;
  return CU_CHECK(
      loadedDriver(),
      cuStreamBeginCapture(stream.handle(), kStreamCaptureModeThreadLocal));
}

StatusOr<Graph> cuda::endCapture(const Stream &stream) {
  if (Status status = initialize(); !status.ok())
    return status;
  Graph graph;
  if (Status status = CU_CHECK(
          loadedDriver(), cuStreamEndCapture(stream.handle(), &graph.graph));
      !status.ok())
    return status;
  if (Status status =
          CU_CHECK(loadedDriver(),
                   cuGraphInstantiate(&graph.exec, graph.graph, /*flags=*/0));
      !status.ok())
    return status;
  return graph;
}
