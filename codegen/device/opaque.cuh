#include "cuda.cuh"

// The sum of `value` over a block of whole warps (at most 1024 threads), in
// thread 0: each warp adds its values with shuffles, then the first warp
// adds the warps' sums. The order is fixed, so the result is the same on
// every run. `partial` holds blockDim.x / 32 values in shared memory.
template <typename T> KILN_FN T kiln_opaque_block_sum(T value, T *partial) {
  for (int offset = 16; offset > 0; offset /= 2)
    value += __shfl_down_sync(0xffffffffu, value, offset);
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0)
    partial[warp] = value;
  __syncthreads();
  value = threadIdx.x < blockDim.x / 32 ? partial[threadIdx.x] : (T)0;
  if (warp == 0)
    for (int offset = 16; offset > 0; offset /= 2)
      value += __shfl_down_sync(0xffffffffu, value, offset);
  __syncthreads(); // `partial` is free again
  return value;
}
