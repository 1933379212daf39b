//===- Random.h - counter-based random numbers (Philox4x32-10) --*- C++ -*-===//
//
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
// 3", SC'11): a random number is a pure function of (key, counter), so every
// backend (reference executor, CPU kernels, CUDA kernels) draws the same
// numbers for the same seed and element index, and a backward pass can
// regenerate a dropout mask instead of storing it.
//
// The code is written once, in KILN_RANDOM_CODE: compiled here for the host,
// and handed as source text (kRandomSource) to every generated kernel, with
// KILN_FN defined by the generated code (`__device__ inline` on the GPU).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_RANDOM_H
#define KILN_RUNTIME_RANDOM_H

/// kiln_uniform01(seed, stream, index): a uniform number in [0, 1) with 24
/// random bits (exactly representable in f32), from the first word of
/// Philox4x32-10 with counter (index, stream) and key seed.
#define KILN_RANDOM_CODE                                                       \
  KILN_FN double kiln_uniform01(unsigned long long seed,                       \
                                unsigned long long stream,                     \
                                unsigned long long index) {                    \
    unsigned int c0 = (unsigned int)index, c1 = (unsigned int)(index >> 32);   \
    unsigned int c2 = (unsigned int)stream, c3 = (unsigned int)(stream >> 32); \
    unsigned int k0 = (unsigned int)seed, k1 = (unsigned int)(seed >> 32);     \
    for (int r = 0; r < 10; ++r) {                                             \
      unsigned long long p0 = 0xD2511F53ull * c0;                              \
      unsigned long long p1 = 0xCD9E8D57ull * c2;                              \
      unsigned int hi0 = (unsigned int)(p0 >> 32), lo0 = (unsigned int)p0;     \
      unsigned int hi1 = (unsigned int)(p1 >> 32), lo1 = (unsigned int)p1;     \
      c0 = hi1 ^ c1 ^ k0;                                                      \
      c1 = lo1;                                                                \
      c2 = hi0 ^ c3 ^ k1;                                                      \
      c3 = lo0;                                                                \
      k0 += 0x9E3779B9u;                                                       \
      k1 += 0xBB67AE85u;                                                       \
    }                                                                          \
    return (double)(c0 >> 8) * (1.0 / 16777216.0);                             \
  }

#define KILN_RANDOM_STRINGIFY(...) #__VA_ARGS__
#define KILN_RANDOM_SOURCE(...) KILN_RANDOM_STRINGIFY(__VA_ARGS__)

namespace kiln::runtime {

#define KILN_FN inline
KILN_RANDOM_CODE
#undef KILN_FN

/// The source of kiln_uniform01 for generated code, which defines KILN_FN.
inline constexpr const char *kRandomSource =
    KILN_RANDOM_SOURCE(KILN_RANDOM_CODE);

/// A uniform number in [0, 1) for element `index` of random stream `stream`
/// under `seed`.
inline double uniform01(unsigned long long seed, unsigned long long stream,
                        unsigned long long index) {
  return kiln_uniform01(seed, stream, index);
}

} // namespace kiln::runtime

#endif // KILN_RUNTIME_RANDOM_H
