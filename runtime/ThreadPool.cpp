//===- ThreadPool.cpp - the C++ kernels' parallel loops -------------------===//

#include "runtime/ThreadPool.h"
#include "runtime/HostCompiler.h"

#include <chrono>
#include <sched.h>

using namespace kiln::runtime;

namespace {

/// How long an idle worker spins before it sleeps.
constexpr std::chrono::microseconds kSpin{50};

void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Thread t's range of `tasks` split over `threads`.
std::pair<long long, long long> range(long long tasks, int threads, int t) {
  return {tasks * t / threads, tasks * (t + 1) / threads};
}

/// kiln_set_parallel's loop function: `pool` is a ThreadPool.
void runOnPool(void *pool, long long tasks, TaskFunction fn, void *context) {
  static_cast<ThreadPool *>(pool)->parallelFor(tasks, fn, context);
}

} // namespace

ThreadPool::ThreadPool(int threads) {
  for (int t = 1; t < threads; ++t)
    workers.emplace_back([this, t] { work(t); });
}

ThreadPool::~ThreadPool() {
  stopping.store(true, std::memory_order_relaxed);
  generation.fetch_add(1, std::memory_order_release);
  generation.notify_all();
  for (std::thread &worker : workers)
    worker.join();
}

void ThreadPool::parallelFor(long long n, TaskFunction fn, void *ctx) {
  if (workers.empty() || n <= 1) {
    if (n > 0)
      fn(ctx, 0, n);
    return;
  }
  function = fn;
  context = ctx;
  tasks = n;
  pending.store(static_cast<int>(workers.size()), std::memory_order_relaxed);
  generation.fetch_add(1, std::memory_order_release);
  generation.notify_all();
  auto [begin, end] = range(n, threads(), 0);
  if (begin < end)
    fn(ctx, begin, end);
  // A worker that is not running (more threads than free CPUs) gets the
  // CPU: spin a little, then yield while waiting.
  for (int spins = 0; pending.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < 4096)
      relax();
    else
      std::this_thread::yield();
  }
}

void ThreadPool::work(int index) {
  unsigned seen = 0;
  for (;;) {
    unsigned now = generation.load(std::memory_order_acquire);
    auto start = std::chrono::steady_clock::now();
    for (int spins = 0; now == seen; ++spins) {
      relax();
      if (spins % 64 == 63 && std::chrono::steady_clock::now() - start > kSpin)
        generation.wait(seen, std::memory_order_acquire);
      now = generation.load(std::memory_order_acquire);
    }
    seen = now;
    if (stopping.load(std::memory_order_relaxed))
      return;
    auto [begin, end] = range(tasks, threads(), index);
    if (begin < end)
      function(context, begin, end);
    pending.fetch_sub(1, std::memory_order_release);
  }
}

void ThreadPool::install(const SharedLibrary &library) {
  install(library.symbol("kiln_set_parallel"));
}

void ThreadPool::install(void *setParallel) {
  using Set =
      void (*)(void (*)(void *, long long, TaskFunction, void *), void *);
  if (setParallel)
    reinterpret_cast<Set>(setParallel)(&runOnPool, this);
}

int kiln::runtime::defaultThreads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0)
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, CPU_COUNT(&set));
}
