//===- ThreadPool.h - the C++ kernels' parallel loops ---------------------===//
//
// The CPU backend's kernels split their independent work into tasks
// (kiln_parallel_for in codegen/device/cpu.h: a GEMM's tiles, an
// elementwise kernel's blocks of rows) and hand them to a ThreadPool: the
// calling thread and threads() - 1 persistent workers. The tasks [0, n)
// are split into threads() contiguous ranges of n / threads() or one more
// (thread t takes the t-th), so which thread computes a task depends only
// on n and the thread count, never on timing; and since each task writes
// outputs of its own and computes them the same way whichever thread runs
// it, a kernel's results do not depend on the thread count at all.
//
// Workers wait for work spinning for up to 50 microseconds (a training
// step hands out a loop every few microseconds), then sleep on a futex; the
// calling thread waits for the workers spinning, then yielding its CPU (to
// a worker, when there are more threads than free CPUs).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_THREADPOOL_H
#define KILN_RUNTIME_THREADPOOL_H

#include <atomic>
#include <thread>
#include <vector>

namespace kiln::runtime {

class SharedLibrary;

/// A loop body: runs the tasks [begin, end).
using TaskFunction = void (*)(void *context, long long begin, long long end);

class ThreadPool {
public:
  /// `threads` >= 1 threads in all, the calling thread among them.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  int threads() const { return static_cast<int>(workers.size()) + 1; }

  /// Runs fn over the tasks [0, tasks), thread t taking the t-th of
  /// threads() contiguous ranges (the calling thread the first), and
  /// returns when all have finished. Not reentrant: one loop at a time.
  void parallelFor(long long tasks, TaskFunction fn, void *context);

  /// Makes the kernels of `library` run their parallel loops on this pool
  /// (through its kiln_set_parallel); a library without one is left alone.
  /// The pool must outlive the library's use.
  void install(const SharedLibrary &library);
  /// The same for a library's kiln_set_parallel found by other means
  /// (dlsym); null is ignored.
  void install(void *setParallel);

private:
  void work(int index);

  std::vector<std::thread> workers;
  // The current loop; `generation` counts loops handed out (and, odd or
  // even, nothing else), `pending` the workers still running theirs.
  TaskFunction function = nullptr;
  void *context = nullptr;
  long long tasks = 0;
  std::atomic<unsigned> generation{0};
  std::atomic<int> pending{0};
  std::atomic<bool> stopping{false};
};

/// The threads a CPU backend uses unless told otherwise: the CPUs this
/// process may run on (its affinity mask), at least 1.
int defaultThreads();

} // namespace kiln::runtime

#endif // KILN_RUNTIME_THREADPOOL_H
