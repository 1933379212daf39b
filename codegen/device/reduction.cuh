#include "cuda.cuh"
#include "reduction.h"

// Warp reductions by butterfly shuffles: each lane combines with its
// partner in the same order, so every lane ends with the same value.
template <typename T> KILN_FN T kiln_reduce_warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
template <typename T> KILN_FN T kiln_reduce_warp_max(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    T other = __shfl_xor_sync(0xffffffffu, v, offset);
    v = other > v ? other : v;
  }
  return v;
}
template <typename T> KILN_FN void kiln_reduce_warp_argmax(T &v, long long &i) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    T otherValue = __shfl_xor_sync(0xffffffffu, v, offset);
    long long otherIndex = __shfl_xor_sync(0xffffffffu, i, offset);
    if (kiln_argmax_better(otherValue, otherIndex, v, i)) {
      v = otherValue;
      i = otherIndex;
    }
  }
}

// Block reductions (blockDim.x a multiple of 32): warp shuffles, then each
// warp's value through `scratch` (32 entries of shared memory), combined in
// order of warp by every thread, so all threads return the same value.
template <typename T> KILN_FN T kiln_reduce_block_sum(T v, T *scratch) {
  v = kiln_reduce_warp_sum(v);
  __syncthreads(); // a previous call may still read scratch
  if ((threadIdx.x & 31) == 0)
    scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  T total = scratch[0];
  for (unsigned w = 1; w < (blockDim.x >> 5); ++w)
    total += scratch[w];
  return total;
}
template <typename T> KILN_FN T kiln_reduce_block_max(T v, T *scratch) {
  v = kiln_reduce_warp_max(v);
  __syncthreads();
  if ((threadIdx.x & 31) == 0)
    scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  T best = scratch[0];
  for (unsigned w = 1; w < (blockDim.x >> 5); ++w)
    best = scratch[w] > best ? scratch[w] : best;
  return best;
}
template <typename T>
KILN_FN void kiln_reduce_block_argmax(T &v, long long &i, T *scratch,
                                      long long *scratchIndex) {
  kiln_reduce_warp_argmax(v, i);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) {
    scratch[threadIdx.x >> 5] = v;
    scratchIndex[threadIdx.x >> 5] = i;
  }
  __syncthreads();
  v = scratch[0];
  i = scratchIndex[0];
  for (unsigned w = 1; w < (blockDim.x >> 5); ++w)
    if (kiln_argmax_better(scratch[w], scratchIndex[w], v, i)) {
      v = scratch[w];
      i = scratchIndex[w];
    }
}
