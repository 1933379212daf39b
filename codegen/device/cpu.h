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

// c ? a : b without a branch. Compilers may compile a conditional
// expression as a branch, which a choice that depends on the data (which
// tap of a window is its maximum) mispredicts about half the time; bitwise
// masks leave them no branch to make.
KILN_FN long long kiln_select(bool c, long long a, long long b) {
  const long long mask = -(long long)c;
  return (a & mask) | (b & ~mask);
}

KILN_FN float kiln_select(bool c, float a, float b) {
  unsigned ua, ub;
  __builtin_memcpy(&ua, &a, sizeof a);
  __builtin_memcpy(&ub, &b, sizeof b);
  const unsigned mask = -(unsigned)c, bits = (ua & mask) | (ub & ~mask);
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}

KILN_FN double kiln_select(bool c, double a, double b) {
  unsigned long long ua, ub;
  __builtin_memcpy(&ua, &a, sizeof a);
  __builtin_memcpy(&ub, &b, sizeof b);
  const unsigned long long mask = -(unsigned long long)c;
  const unsigned long long bits = (ua & mask) | (ub & ~mask);
  double f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}

// e^x and tanh x for floats as inline arithmetic, so that the loops of
// generated kernels vectorize where libm's calls would keep them scalar.
// Within 1 ulp of e^x (normal results; below 2^-126 the result keeps
// subnormal precision) and 1.5 ulp of tanh x, checked on every float by
// test/codegen/CpuMathTest.cpp; e^x is 0 below -104 and infinity above
// 88.73, NaN stays NaN.

// 2^n for -126 <= n <= 127, built from its exponent bits.
KILN_FN float kiln_exp2i(int n) {
  const unsigned bits = (unsigned)(n + 127) << 23;
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}

// e^x = 2^n e^r, n = round(x / ln 2), r = x - n ln 2 (Cody-Waite: ln 2 in
// two parts) in [-ln 2 / 2, ln 2 / 2], e^r by Cephes' expf polynomial;
// 2^n in two factors, so both stay normal for n in [-150, 128].
KILN_FN float kiln_expf(float x) {
  float c = x < -104.0f ? -104.0f : x > 89.0f ? 89.0f : x;
  c = c == c ? c : 0.0f;
  const float round = 12582912.0f; // 1.5 * 2^23: adding it rounds to an integer
  const float n = (c * 1.44269504088896341f + round) - round;
  const float r = (c - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int k = (int)n, half = k >> 1;
  const float y = p * kiln_exp2i(half) * kiln_exp2i(k - half);
  return x == x ? y : x;
}

// tanh x: Cephes' odd polynomial below |x| = 0.625, else
// 1 - 2 / (e^2|x| + 1) with x's sign (1 once e^2|x| overflows).
KILN_FN float kiln_tanhf(float x) {
  const float a = __builtin_fabsf(x), z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = p * z * x + x;
  const float large = 1.0f - 2.0f / (kiln_expf(2.0f * a) + 1.0f);
  return a < 0.625f ? small : __builtin_copysignf(large, x);
}

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
