//===- CudaEmulation.h - generated CUDA C run on the host -------*- C++ -*-===//
//
// kiln-kernel-check --device emulated compiles a bundle's CUDA C with the
// host C++ compiler after kCudaEmulation (below) and runs each kernel on the
// CPU: every block in turn, its threads as fibers (ucontext) that switch at
// __syncthreads and at warp shuffles, __shared__ arrays as statics (one
// block runs at a time, so they are its shared memory). What it checks
// without a GPU: the CUDA kernels' indexing, tiling, shared-memory use,
// barriers, warp shuffles and split reductions, with the same inputs and
// tolerances as on the GPU. What it cannot: the GPU's memory model, races
// between threads that a barrier would order on the GPU but the fibers'
// fixed interleaving hides, and timing. A block whose threads wait at a
// barrier that others never reach (a kernel bug: undefined on a GPU) stops
// the program with a message. Needs <ucontext.h> (glibc).
//
// emulateCudaSource() turns the bundle's .cu into host C++ (dynamic shared
// memory, which C++ cannot declare extern-and-static, becomes a pointer into
// the launch's buffer); emulationEntry() writes the uniform entry point of
// one kernel that kiln-kernel-check calls.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TEST_GPU_CUDAEMULATION_H
#define KILN_TEST_GPU_CUDAEMULATION_H

#include "Bundle.h"

#include <regex>
#include <string>

namespace kiln::gpucheck {

/// The CUDA built-ins generated kernels use, for the host.
inline constexpr const char *kCudaEmulation = R"cpp(
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <ucontext.h>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

struct float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) double2 { double x, y; };
struct EmuDim { unsigned x = 1, y = 1, z = 1; };

namespace kiln_emu {
struct Fiber {
  ucontext_t context;
  std::unique_ptr<char[]> stack; // not zeroed: pages are touched as used
  EmuDim thread;
  unsigned linear = 0;
  bool done = false;
};
struct Barrier {
  unsigned arrived = 0, generation = 0, size = 0;
};
// The block being run: its fibers, its barrier and one per warp, and the
// warps' exchange slots for shuffles.
struct Block {
  ucontext_t scheduler;
  std::vector<Fiber> fibers;
  Fiber *current = nullptr;
  Barrier block;
  std::vector<Barrier> warps;
  std::vector<unsigned long long> slots; // 32 per warp
  const std::function<void()> *kernel = nullptr;
};
static Block *block = nullptr;
// Arrivals at barriers and finished threads: a round of the scheduler
// without any is a deadlock (threads wait at a barrier others never reach).
static unsigned long long events = 0;
static EmuDim blockIdx, blockDim, gridDim;
static unsigned char *dynamicShared = nullptr;

static void yield() {
  Fiber *self = block->current;
  swapcontext(&self->context, &block->scheduler);
}
// Every member of `barrier` arrives before any goes on.
static void wait(Barrier &barrier) {
  unsigned generation = barrier.generation;
  ++events;
  if (++barrier.arrived == barrier.size) {
    barrier.arrived = 0;
    ++barrier.generation;
    return;
  }
  while (barrier.generation == generation)
    yield();
}
static void trampoline() {
  (*block->kernel)();
  block->current->done = true;
  ++events;
}
// Runs `kernel` on a grid of blocks of `threads` threads, one block at a
// time, its threads switching at barriers.
static void launch(EmuDim grid, EmuDim threads, unsigned sharedBytes,
                   const std::function<void()> &kernel) {
  Block state;
  block = &state;
  state.kernel = &kernel;
  gridDim = grid;
  blockDim = threads;
  unsigned count = threads.x * threads.y * threads.z;
  std::vector<unsigned char> shared(sharedBytes + 16);
  dynamicShared = shared.data();
  state.fibers.resize(count);
  const size_t stackBytes = 64 * 1024;
  for (Fiber &fiber : state.fibers)
    fiber.stack.reset(new char[stackBytes]);
  unsigned warps = (count + 31) / 32;
  state.warps.resize(warps);
  state.slots.resize(warps * 32);
  for (unsigned w = 0; w < warps; ++w)
    state.warps[w].size = count - 32 * w < 32 ? count - 32 * w : 32;
  state.block.size = count;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        blockIdx = {x, y, z};
        for (unsigned t = 0; t < count; ++t) {
          Fiber &fiber = state.fibers[t];
          fiber.thread = {t % threads.x, t / threads.x % threads.y,
                          t / (threads.x * threads.y)};
          fiber.linear = t;
          fiber.done = false;
          getcontext(&fiber.context);
          fiber.context.uc_stack.ss_sp = fiber.stack.get();
          fiber.context.uc_stack.ss_size = stackBytes;
          fiber.context.uc_link = &state.scheduler;
          makecontext(&fiber.context, trampoline, 0);
        }
        for (bool running = true; running;) {
          running = false;
          unsigned long long before = events;
          for (Fiber &fiber : state.fibers) {
            if (fiber.done)
              continue;
            state.current = &fiber;
            swapcontext(&state.scheduler, &fiber.context);
            running |= !fiber.done;
          }
          if (running && events == before) {
            std::fprintf(stderr, "CUDA emulation: block (%u, %u, %u) "
                         "deadlocks: threads wait at a barrier that others "
                         "never reach\n", x, y, z);
            std::abort();
          }
        }
      }
  block = nullptr;
}
// A shuffle: each lane publishes `value`, takes lane `source`'s (its own
// when `source` is outside the warp).
template <typename T> static T shuffle(T value, unsigned source) {
  Fiber &self = *block->current;
  unsigned warp = self.linear / 32, lane = self.linear % 32;
  Barrier &barrier = block->warps[warp];
  static_assert(sizeof(T) <= sizeof(unsigned long long));
  unsigned long long bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  block->slots[warp * 32 + lane] = bits;
  wait(barrier);
  T result = value;
  if (source < barrier.size)
    std::memcpy(&result, &block->slots[warp * 32 + source], sizeof(T));
  wait(barrier); // every lane has read before the slots are reused
  return result;
}
} // namespace kiln_emu

#define threadIdx (kiln_emu::block->current->thread)
#define blockIdx (kiln_emu::blockIdx)
#define blockDim (kiln_emu::blockDim)
#define gridDim (kiln_emu::gridDim)
static void __syncthreads() { kiln_emu::wait(kiln_emu::block->block); }
static void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
template <typename T> static T __shfl_xor_sync(unsigned, T v, int mask) {
  return kiln_emu::shuffle(v, (kiln_emu::block->current->linear % 32) ^ unsigned(mask));
}
template <typename T> static T __shfl_down_sync(unsigned, T v, unsigned delta) {
  return kiln_emu::shuffle(v, kiln_emu::block->current->linear % 32 + delta);
}
template <typename T> static T __ldcg(const T *p) { return *p; }
static unsigned atomicAdd(unsigned *p, unsigned v) { unsigned old = *p; *p = old + v; return old; }
static float __int_as_float(int v) { float f; std::memcpy(&f, &v, 4); return f; }
static int __float_as_int(float v) { int i; std::memcpy(&i, &v, 4); return i; }
static double __longlong_as_double(long long v) { double d; std::memcpy(&d, &v, 8); return d; }
static long long __double_as_longlong(double v) { long long i; std::memcpy(&i, &v, 8); return i; }
static float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
static double rsqrt(double x) { return 1.0 / std::sqrt(x); }
using std::fma;
)cpp";

/// The bundle's CUDA C as host C++ for kCudaEmulation: dynamic shared
/// memory ("extern __shared__ T name[];") becomes a pointer into the
/// launch's buffer.
inline std::string emulateCudaSource(const std::string &cuda) {
  static const std::regex dynamicShared(
      R"(extern\s+__shared__\s+(?:__align__\(\d+\)\s+)?([A-Za-z_][\w ]*?)\s+(\w+)\[\];)");
  return std::string(kCudaEmulation) +
         std::regex_replace(cuda, dynamicShared,
                            "$1 *$2 = ($1 *)kiln_emu::dynamicShared;");
}

/// The C type of a bundle tensor's elements.
inline const char *cType(runtime::DType dtype) {
  switch (dtype) {
  case runtime::DType::F32:
    return "float";
  case runtime::DType::F64:
    return "double";
  case runtime::DType::I32:
    return "int";
  case runtime::DType::I64:
    return "long long";
  case runtime::DType::U8:
    return "unsigned char";
  }
  return "void";
}

/// How to call one kernel of an emulated program.
struct EmulatedLaunch {
  std::string symbol;
  /// The C types of the kernel's inputs and results ("float", ...).
  std::vector<std::string> inputs, outputs;
  size_t dims = 0;
  bool takesSeed = false;
  int64_t grid[3] = {1, 1, 1};
  unsigned block[3] = {1, 1, 1};
  unsigned sharedBytes = 0;
};

/// The entry point of a kernel in the emulated program:
///
///   extern "C" void <symbol>_emulated(void *const *buffers,
///                                     const long long *dims,
///                                     const unsigned long long *seed)
///
/// (buffers: the inputs, then the results) running it on its grid.
inline std::string emulationEntry(const EmulatedLaunch &kernel) {
  std::string call = kernel.symbol + "(";
  size_t n = 0;
  auto argument = [&](const std::string &text) {
    call += (n++ ? ", " : "") + text;
  };
  for (size_t i = 0; i < kernel.inputs.size(); ++i)
    argument("(const " + kernel.inputs[i] + " *)buffers[" + std::to_string(i) +
             "]");
  for (size_t r = 0; r < kernel.outputs.size(); ++r)
    argument("(" + kernel.outputs[r] + " *)buffers[" +
             std::to_string(kernel.inputs.size() + r) + "]");
  for (size_t d = 0; d < kernel.dims; ++d)
    argument("dims[" + std::to_string(d) + "]");
  if (kernel.takesSeed)
    argument("seed");
  call += ")";
  auto dim = [](auto x, auto y, auto z) {
    return "EmuDim{" + std::to_string(x) + "u, " + std::to_string(y) + "u, " +
           std::to_string(z) + "u}";
  };
  return "extern \"C\" void " + kernel.symbol +
         "_emulated(void *const *buffers, const long long *dims, "
         "const unsigned long long *seed) {\n  kiln_emu::launch(" +
         dim(kernel.grid[0], kernel.grid[1], kernel.grid[2]) + ", " +
         dim(kernel.block[0], kernel.block[1], kernel.block[2]) + ", " +
         std::to_string(kernel.sharedBytes) + "u, [&] { " + call + "; });\n}\n";
}

/// The entry point of `record`'s kernel, whose results have `outputs`
/// types.
inline std::string emulationEntry(const KernelRecord &record,
                                  const std::vector<runtime::DType> &outputs) {
  EmulatedLaunch kernel;
  kernel.symbol = record.symbol;
  for (const InputSpec &input : record.inputs)
    kernel.inputs.push_back(cType(input.dtype));
  for (runtime::DType output : outputs)
    kernel.outputs.push_back(cType(output));
  kernel.dims = record.dims.size();
  kernel.takesSeed = record.takesSeed;
  for (int d = 0; d < 3; ++d) {
    kernel.grid[d] = record.grid[d];
    kernel.block[d] = record.block[d];
  }
  kernel.sharedBytes = record.sharedBytes;
  return emulationEntry(kernel);
}

} // namespace kiln::gpucheck

#endif // KILN_TEST_GPU_CUDAEMULATION_H
