//===- CudaTest.cpp - the CUDA driver API, loaded at run time -------------===//
//
// Without a GPU (build machines) these tests check the clean error path and
// skip the rest; with one they allocate, copy, compile a kernel with NVRTC
// for the device's own architecture, launch it, and replay it as a graph.
//
//===----------------------------------------------------------------------===//

#include "runtime/Cuda.h"
#include "runtime/Nvrtc.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>

using namespace kiln::runtime;

namespace {

#define SKIP_WITHOUT_GPU()                                                     \
  do {                                                                         \
    if (Status status = cuda::initialize(); !status.ok())                      \
      GTEST_SKIP() << status.message();                                        \
    StatusOr<int> count = cuda::deviceCount();                                 \
    if (!count.ok() || *count == 0)                                            \
      GTEST_SKIP() << "no CUDA device";                                        \
  } while (false)

//===----------------------------------------------------------------------===//
// Loading: what every machine can check
//===----------------------------------------------------------------------===//

// Without a GPU every entry point fails with the same clean error; with one
// the driver reports a version.
TEST(CudaDriverTest, InitializeIsConsistent) {
  Status status = cuda::initialize();
  EXPECT_EQ(status.ok(), cuda::available());
  StatusOr<int> version = cuda::driverVersion();
  StatusOr<int> count = cuda::deviceCount();
  StatusOr<cuda::Device> device = cuda::Device::open(0);
  StatusOr<cuda::DeviceBuffer> buffer = cuda::DeviceBuffer::allocate(64);
  StatusOr<cuda::Stream> stream = cuda::Stream::create();
  if (status.ok()) {
    ASSERT_TRUE(version.ok());
    EXPECT_GE(*version, 11000);
    EXPECT_TRUE(count.ok()) << count.status().message();
    return;
  }
  EXPECT_EQ(status.message().rfind("no CUDA driver: ", 0), 0u)
      << status.message();
  for (const Status *failed :
       {&version.status(), &count.status(), &device.status(), &buffer.status(),
        &stream.status()})
    EXPECT_EQ(failed->message(), status.message());
}

TEST(CudaDriverTest, MissingLibraryIsCleanError) {
  StatusOr<int> version =
      cuda::probeDriverLibrary("/nonexistent/libcuda-fake.so.1");
  ASSERT_FALSE(version.ok());
  EXPECT_EQ(version.status().message().rfind(
                "no CUDA driver: /nonexistent/libcuda-fake.so.1", 0),
            0u)
      << version.status().message();
}

TEST(CudaDriverTest, LibraryWithoutDriverSymbolsIsRefused) {
  StatusOr<int> version = cuda::probeDriverLibrary("libz.so.1");
  ASSERT_FALSE(version.ok());
  EXPECT_NE(version.status().message().find(
                "not a CUDA driver: it lacks cuGetErrorName"),
            std::string::npos)
      << version.status().message();
}

// The toolkit's stub libcuda loads, but its cuInit fails; the error names
// the call, the driver's error name and where it was made.
TEST(CudaDriverTest, StubLibraryFailsInCuInit) {
  std::string stub;
  for (const char *candidate : {"/usr/local/cuda/lib64/stubs/libcuda.so",
                                "/usr/local/cuda/lib/stubs/libcuda.so"})
    if (std::filesystem::exists(candidate))
      stub = candidate;
  if (stub.empty())
    GTEST_SKIP() << "no CUDA toolkit stub library";
  StatusOr<int> version = cuda::probeDriverLibrary(stub);
  ASSERT_FALSE(version.ok());
  const std::string &message = version.status().message();
  EXPECT_EQ(message.rfind("no CUDA driver: " + stub +
                              ": cuInit(0) failed with CUDA_ERROR_STUB_LIBRARY "
                              "(34) at Cuda.cpp:",
                          0),
            0u)
      << message;
}

TEST(CudaDriverTest, CandidatesHonourTheOverride) {
  const char *saved = std::getenv("KILN_CUDA_DRIVER_LIBRARY");
  std::string savedValue = saved ? saved : "";
  ::setenv("KILN_CUDA_DRIVER_LIBRARY", "/opt/fake/libcuda.so.1", 1);
  EXPECT_EQ(cuda::driverLibraryCandidates(),
            (std::vector<std::string>{"/opt/fake/libcuda.so.1"}));
  ::unsetenv("KILN_CUDA_DRIVER_LIBRARY");
  EXPECT_EQ(cuda::driverLibraryCandidates().front(), "libcuda.so.1");
  if (saved)
    ::setenv("KILN_CUDA_DRIVER_LIBRARY", savedValue.c_str(), 1);
}

// Where the process-wide driver comes from is decided once, so an override
// pointing nowhere is tested in a fresh process.
TEST(CudaDriverTest, EnvOverrideToMissingFileFailsCleanly) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::setenv("KILN_CUDA_DRIVER_LIBRARY", "/nonexistent/libcuda.so.1", 1);
        StatusOr<cuda::DeviceBuffer> buffer = cuda::DeviceBuffer::allocate(4);
        std::fprintf(stderr, "%s\n",
                     buffer.ok() ? "allocated"
                                 : buffer.status().message().c_str());
        std::exit(!buffer.ok() && !cuda::available() ? 0 : 1);
      },
      ::testing::ExitedWithCode(0),
      "no CUDA driver: .*tried:\n  /nonexistent/libcuda\\.so\\.1: cannot "
      "open");
}

//===----------------------------------------------------------------------===//
// On a GPU
//===----------------------------------------------------------------------===//

class CudaDeviceTest : public ::testing::Test {
protected:
  void SetUp() override {
    SKIP_WITHOUT_GPU();
    StatusOr<cuda::Device> opened = cuda::Device::open(0);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    device.emplace(std::move(*opened));
  }

  std::optional<cuda::Device> device;
};

TEST_F(CudaDeviceTest, PropertiesAndMemoryInfo) {
  const cuda::DeviceProperties &props = device->properties();
  EXPECT_FALSE(props.name.empty());
  EXPECT_GE(props.major, 5);
  EXPECT_GT(props.multiprocessors, 0);
  EXPECT_GE(props.maxSharedBytesPerBlockOptin, 48 * 1024);
  EXPECT_EQ(props.arch(),
            "sm_" + std::to_string(props.major) + std::to_string(props.minor));
  StatusOr<cuda::MemoryInfo> info = device->memoryInfo();
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_GT(info->totalBytes, 0u);
  EXPECT_LE(info->freeBytes, info->totalBytes);
  RecordProperty("device", props.name);
}

TEST_F(CudaDeviceTest, CopyRoundTripSyncAndAsync) {
  std::vector<float> host(1000);
  std::iota(host.begin(), host.end(), -3.5f);
  size_t bytes = host.size() * sizeof(float);
  StatusOr<cuda::DeviceBuffer> buffer = cuda::DeviceBuffer::allocate(bytes);
  ASSERT_TRUE(buffer.ok()) << buffer.status().message();
  ASSERT_TRUE(buffer->upload(host.data(), bytes).ok());
  std::vector<float> back(host.size());
  ASSERT_TRUE(buffer->download(back.data(), bytes).ok());
  EXPECT_EQ(back, host);

  // A copy larger than the buffer is refused before the driver sees it.
  Status tooLarge = buffer->upload(host.data(), bytes + 4);
  EXPECT_FALSE(tooLarge.ok());

  StatusOr<cuda::Stream> stream = cuda::Stream::create();
  ASSERT_TRUE(stream.ok()) << stream.status().message();
  StatusOr<cuda::PinnedBuffer> pinned = cuda::PinnedBuffer::allocate(bytes);
  ASSERT_TRUE(pinned.ok()) << pinned.status().message();
  ASSERT_TRUE(buffer->fillAsync(0xFF, *stream).ok());
  ASSERT_TRUE(buffer->downloadAsync(pinned->data(), bytes, *stream).ok());
  ASSERT_TRUE(stream->synchronize().ok());
  const uint8_t *raw = static_cast<const uint8_t *>(pinned->data());
  EXPECT_TRUE(
      std::all_of(raw, raw + bytes, [](uint8_t b) { return b == 0xFF; }));

  std::memcpy(pinned->data(), host.data(), bytes);
  ASSERT_TRUE(buffer->fill(0).ok());
  ASSERT_TRUE(buffer->uploadAsync(pinned->data(), bytes, *stream).ok());
  ASSERT_TRUE(stream->synchronize().ok());
  ASSERT_TRUE(buffer->download(back.data(), bytes).ok());
  EXPECT_EQ(back, host);
}

// A driver error carries the call, the error name and file:line.
TEST_F(CudaDeviceTest, DriverErrorIsReported) {
  StatusOr<cuda::DeviceBuffer> huge =
      cuda::DeviceBuffer::allocate(size_t(1) << 60);
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find(
                "cuMemAlloc(&buffer.pointer, bytes) failed with "
                "CUDA_ERROR_OUT_OF_MEMORY (2) at Cuda.cpp:"),
            std::string::npos)
      << huge.status().message();
  std::vector<char> garbage = {'n', 'o', 't', '\0'};
  StatusOr<cuda::Module> module = cuda::Module::load(garbage);
  ASSERT_FALSE(module.ok());
  EXPECT_NE(module.status().message().find("cuModuleLoadData("),
            std::string::npos)
      << module.status().message();
}

const char *kAxpy = R"(
extern "C" __global__ void axpy(const float *x, float *y, float a, int n) {
  extern __shared__ float scratch[];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  scratch[threadIdx.x] = i < n ? x[i] : 0.0f;
  __syncthreads();
  if (i < n)
    y[i] = a * scratch[threadIdx.x] + y[i];
}
)";

// NVRTC for the device's own architecture, a launch with dynamic shared
// memory, timing, and the same launch captured and replayed as a graph.
TEST_F(CudaDeviceTest, CompileLaunchAndReplayAsGraph) {
  if (!nvrtcAvailable())
    GTEST_SKIP() << "NVRTC is not available";
  CompileOptions options;
  options.arch = device->properties().arch();
  StatusOr<CompiledProgram> program = compileCuda("axpy.cu", kAxpy, options);
  ASSERT_TRUE(program.ok()) << program.status().message();
  StatusOr<cuda::Module> module = cuda::Module::load(program->image);
  ASSERT_TRUE(module.ok()) << module.status().message();
  StatusOr<cuda::Function> axpy = module->function("axpy");
  ASSERT_TRUE(axpy.ok()) << axpy.status().message();
  EXPECT_FALSE(module->function("no_such_kernel").ok());

  int n = 1000;
  std::vector<float> x(n), y(n);
  for (int i = 0; i < n; ++i) {
    x[i] = float(i);
    y[i] = float(2 * i);
  }
  size_t bytes = size_t(n) * sizeof(float);
  StatusOr<cuda::DeviceBuffer> dx = cuda::DeviceBuffer::allocate(bytes);
  StatusOr<cuda::DeviceBuffer> dy = cuda::DeviceBuffer::allocate(bytes);
  ASSERT_TRUE(dx.ok() && dy.ok());
  ASSERT_TRUE(dx->upload(x.data(), bytes).ok());
  ASSERT_TRUE(dy->upload(y.data(), bytes).ok());

  StatusOr<cuda::Stream> stream = cuda::Stream::create();
  ASSERT_TRUE(stream.ok()) << stream.status().message();
  cuda::DevicePointer px = dx->get(), py = dy->get();
  float a = 3.0f;
  void *args[] = {&px, &py, &a, &n};
  unsigned block = 128, shared = block * sizeof(float);
  cuda::Dim3 grid{unsigned((n + block - 1) / block)};

  StatusOr<cuda::Event> start = cuda::Event::create();
  StatusOr<cuda::Event> end = cuda::Event::create();
  ASSERT_TRUE(start.ok() && end.ok());
  ASSERT_TRUE(start->record(*stream).ok());
  Status launched = cuda::launch(*axpy, grid, {block}, shared, *stream, args);
  ASSERT_TRUE(launched.ok()) << launched.message();
  ASSERT_TRUE(end->record(*stream).ok());
  ASSERT_TRUE(end->synchronize().ok());
  StatusOr<float> ms = cuda::Event::elapsedMilliseconds(*start, *end);
  ASSERT_TRUE(ms.ok()) << ms.status().message();
  EXPECT_GE(*ms, 0.0f);

  std::vector<float> got(n);
  ASSERT_TRUE(dy->download(got.data(), bytes).ok());
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(got[i], 3.0f * float(i) + float(2 * i)) << i;

  // Capture one launch, replay it twice: y = 3x + y each time.
  ASSERT_TRUE(cuda::beginCapture(*stream).ok());
  ASSERT_TRUE(cuda::launch(*axpy, grid, {block}, shared, *stream, args).ok());
  StatusOr<cuda::Graph> graph = cuda::endCapture(*stream);
  ASSERT_TRUE(graph.ok()) << graph.status().message();
  ASSERT_TRUE(graph->launch(*stream).ok());
  ASSERT_TRUE(graph->launch(*stream).ok());
  ASSERT_TRUE(stream->synchronize().ok());
  ASSERT_TRUE(dy->download(got.data(), bytes).ok());
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(got[i], 9.0f * float(i) + float(2 * i)) << i;

  // More than 48 KiB of dynamic shared memory needs the opt-in.
  int big =
      std::min(device->properties().maxSharedBytesPerBlockOptin, 96 * 1024);
  if (big > 48 * 1024) {
    ASSERT_TRUE(axpy->setMaxDynamicSharedBytes(big).ok());
    ASSERT_TRUE(
        cuda::launch(*axpy, grid, {block}, unsigned(big), *stream, args).ok());
    ASSERT_TRUE(device->synchronize().ok());
  }
}

} // namespace
