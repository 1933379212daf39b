// What every generated C++ translation unit starts with: kiln's function
// qualifier and its special values.
#include <math.h>
#define KILN_FN static inline
#define KILN_HUGE_VALUE HUGE_VAL
#define KILN_NAN_VALUE NAN
#define KILN_INFINITY_F __builtin_huge_valf()
#define KILN_INFINITY __builtin_huge_val()
#define KILN_NAN_F __builtin_nanf("")
#define KILN_NAN __builtin_nan("")
#define KILN_OPAQUE_INFINITY HUGE_VAL

// Parallel loops. The CPU backend installs its thread pool (runtime/
// ThreadPool.h) through kiln_set_parallel when it loads the library;
// without one, a loop runs on the calling thread. A loop's tasks must be
// independent: each writes outputs of its own.
typedef void (*kiln_task_fn)(void *context, long long begin, long long end);
typedef void (*kiln_loop_fn)(void *pool, long long tasks, kiln_task_fn body,
                             void *context);
static kiln_loop_fn kiln_loop;
static void *kiln_pool;
extern "C" void kiln_set_parallel(kiln_loop_fn loop, void *pool) {
  kiln_loop = loop;
  kiln_pool = pool;
}

// The elements of a task of an element loop (elementwise, pooling and
// layout kernels): enough work to be worth a thread's time.
#define KILN_ELEMENTS_PER_TASK 16384LL

// Runs body(begin, end) over the tasks [0, tasks), split among the
// threads in contiguous ranges.
template <typename F> KILN_FN void kiln_parallel_for(long long tasks, F body) {
  if (!kiln_loop || tasks < 2) {
    if (tasks > 0)
      body(0LL, tasks);
    return;
  }
  kiln_loop(
      kiln_pool, tasks,
      [](void *context, long long begin, long long end) {
        (*(F *)context)(begin, end);
      },
      &body);
}
