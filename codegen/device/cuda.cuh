// What every generated CUDA C translation unit starts with (NVRTC: no
// headers, so no math.h): kiln's function qualifier and its special
// values.
#define KILN_FN static __device__ inline
#define KILN_HUGE_VALUE __longlong_as_double(0x7ff0000000000000LL)
#define KILN_NAN_VALUE __longlong_as_double(0x7ff8000000000000LL)
#define KILN_INFINITY_F __int_as_float(0x7f800000)
#define KILN_INFINITY __longlong_as_double(0x7ff0000000000000LL)
#define KILN_NAN_F __int_as_float(0x7fffffff)
#define KILN_NAN __longlong_as_double(0x7ff8000000000000LL)
#define KILN_OPAQUE_INFINITY __longlong_as_double(0x7ff0000000000000LL)

// c ? a : b (the C++ target's is branch-free; the GPU predicates selects).
template <typename T> KILN_FN T kiln_select(bool c, T a, T b) {
  return c ? a : b;
}
