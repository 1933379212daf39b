//===- Random.h - counter-based random numbers (Philox4x32-10) --*- C++ -*-===//
//
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
// 3", SC'11): a random number is a pure function of (key, counter), so every
// backend (reference executor, CPU kernels, CUDA kernels) draws the same
// numbers for the same seed and element index, and a backward pass can
// regenerate a dropout mask instead of storing it. Header-only, no
// dependencies; usable from CUDA C as well.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_RANDOM_H
#define KILN_RUNTIME_RANDOM_H

#include <cstdint>

namespace kiln::runtime {

struct Philox4x32 {
  uint32_t v[4];
};

/// The Philox4x32-10 block function.
inline Philox4x32 philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                             uint32_t k0, uint32_t k1) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = static_cast<uint64_t>(kMul0) * c0;
    uint64_t p1 = static_cast<uint64_t>(kMul1) * c2;
    uint32_t hi0 = static_cast<uint32_t>(p0 >> 32),
             lo0 = static_cast<uint32_t>(p0);
    uint32_t hi1 = static_cast<uint32_t>(p1 >> 32),
             lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return Philox4x32{{c0, c1, c2, c3}};
}

/// A uniform float in [0, 1) for element `index` of random stream `stream`
/// under `seed`, with 24 bits of randomness (exactly representable in f32).
inline double uniform01(uint64_t seed, uint64_t stream, uint64_t index) {
  Philox4x32 r = philox4x32(
      static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32),
      static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32),
      static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  return static_cast<double>(r.v[0] >> 8) * (1.0 / 16777216.0);
}

} // namespace kiln::runtime

#endif // KILN_RUNTIME_RANDOM_H
