// C++ target, after cpu.h (KILN_FN). The register-blocked GEMM that the
// matmul kernels of the CPU backend are built on (#kiln.cpu_gemm<mr, nr>).
//
// A kernel packs B's columns into panels of NR, [K][NR] each (zero past
// N: every load of the micro-kernel is an aligned vector), then computes C
// in MR x NR tiles: kiln_gemm_micro keeps a tile in MR x NR / W vector
// registers (W elements a vector) and adds, for k = 0, 1, ..., K - 1, the
// outer product of A's column k (MR values, each broadcast) and the
// panel's row k (NR / W vectors). Every output is one sum over k in
// increasing order, as in the CUDA kernels.
//
// The vector width is the instruction set's the library is compiled for
// (-march: AVX-512 64 bytes, AVX/AVX2 32, else 16: SSE2, NEON, or GCC's
// generic vectors). Multiply-adds are fused where the instruction set has
// FMA (as NVRTC fuses them on the GPU) and rounded twice otherwise, so the
// portable build (no -march) and a vector build agree to rounding; each is
// deterministic.
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__)
#define KILN_VECTOR_BYTES 64
#elif defined(__AVX__)
#define KILN_VECTOR_BYTES 32
#else
#define KILN_VECTOR_BYTES 16
#endif

// A vector of T as wide as the instruction set's registers; `unaligned`
// for loads and stores at any element boundary.
template <typename T> struct kiln_simd {
  typedef T vec __attribute__((vector_size(KILN_VECTOR_BYTES)));
  typedef T unaligned
      __attribute__((vector_size(KILN_VECTOR_BYTES), aligned(sizeof(T))));
  static constexpr int width = KILN_VECTOR_BYTES / sizeof(T);
};

// a * b + c, fused where the instruction set has FMA.
KILN_FN kiln_simd<float>::vec kiln_fma(kiln_simd<float>::vec a,
                                       kiln_simd<float>::vec b,
                                       kiln_simd<float>::vec c) {
#if defined(__AVX512F__)
  return (kiln_simd<float>::vec)_mm512_fmadd_ps((__m512)a, (__m512)b,
                                                (__m512)c);
#elif defined(__FMA__)
  return (kiln_simd<float>::vec)_mm256_fmadd_ps((__m256)a, (__m256)b,
                                                (__m256)c);
#elif defined(__aarch64__)
  return (kiln_simd<float>::vec)vfmaq_f32((float32x4_t)c, (float32x4_t)a,
                                          (float32x4_t)b);
#else
  return a * b + c;
#endif
}

KILN_FN kiln_simd<double>::vec kiln_fma(kiln_simd<double>::vec a,
                                        kiln_simd<double>::vec b,
                                        kiln_simd<double>::vec c) {
#if defined(__AVX512F__)
  return (kiln_simd<double>::vec)_mm512_fmadd_pd((__m512d)a, (__m512d)b,
                                                 (__m512d)c);
#elif defined(__FMA__)
  return (kiln_simd<double>::vec)_mm256_fmadd_pd((__m256d)a, (__m256d)b,
                                                 (__m256d)c);
#elif defined(__aarch64__)
  return (kiln_simd<double>::vec)vfmaq_f64((float64x2_t)c, (float64x2_t)a,
                                           (float64x2_t)b);
#else
  return a * b + c;
#endif
}

// x in every lane: one broadcast (from memory where x is loaded; adding x to
// a zero vector would cost an addition and a broadcast from a register, on
// the ports the multiply-adds need).
KILN_FN kiln_simd<float>::vec kiln_splat(float x) {
#if defined(__AVX512F__)
  return (kiln_simd<float>::vec)_mm512_set1_ps(x);
#elif defined(__AVX__)
  return (kiln_simd<float>::vec)_mm256_set1_ps(x);
#elif defined(__aarch64__)
  return (kiln_simd<float>::vec)vdupq_n_f32(x);
#else
  return kiln_simd<float>::vec{} + x;
#endif
}

KILN_FN kiln_simd<double>::vec kiln_splat(double x) {
#if defined(__AVX512F__)
  return (kiln_simd<double>::vec)_mm512_set1_pd(x);
#elif defined(__AVX__)
  return (kiln_simd<double>::vec)_mm256_set1_pd(x);
#elif defined(__aarch64__)
  return (kiln_simd<double>::vec)vdupq_n_f64(x);
#else
  return kiln_simd<double>::vec{} + x;
#endif
}

// A 64-byte aligned buffer, grown as needed.
struct kiln_scratch_buffer {
  void *data = nullptr;
  long long bytes = 0;
  ~kiln_scratch_buffer() { free(data); }
  void *reserve(long long size) {
    size = (size + 63) / 64 * 64;
    if (size > bytes) {
      free(data);
      data = aligned_alloc(64, size);
      bytes = size;
    }
    return data;
  }
};

// The packed panels of one matmul kernel: a buffer of the library's. A
// step's kernels run one at a time.
template <typename T> KILN_FN T *kiln_gemm_scratch(long long elements) {
  static kiln_scratch_buffer buffer;
  return (T *)buffer.reserve(elements * (long long)sizeof(T));
}

// A buffer of the calling thread's (a task's packed panel).
template <typename T> KILN_FN T *kiln_gemm_thread_scratch(long long elements) {
  static thread_local kiln_scratch_buffer buffer;
  return (T *)buffer.reserve(elements * (long long)sizeof(T));
}

// Transposes a 16 x 16 block: to[c * to_stride + r] = from[r * from_stride
// + c]. Returns whether it could (floats, AVX-512: four rounds of shuffles
// in registers); the caller copies element by element otherwise.
template <typename T>
KILN_FN bool kiln_transpose16(const T *, long long, T *, long long) {
  return false;
}

#if defined(__AVX512F__)
KILN_FN bool kiln_transpose16(const float *__restrict__ from,
                              long long from_stride, float *__restrict__ to,
                              long long to_stride) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i)
    r[i] = _mm512_loadu_ps(from + i * from_stride);
  // Pairs of rows interleaved: t[2g], t[2g + 1] hold rows 2g and 2g + 1's
  // columns 4l, 4l + 1 and 4l + 2, 4l + 3 in each 128-bit lane l.
  for (int g = 0; g < 8; ++g) {
    t[2 * g] = _mm512_unpacklo_ps(r[2 * g], r[2 * g + 1]);
    t[2 * g + 1] = _mm512_unpackhi_ps(r[2 * g], r[2 * g + 1]);
  }
  // Quads: r[4g + c]'s lane l holds column 4l + c of rows 4g .. 4g + 3.
  for (int g = 0; g < 4; ++g) {
    const __m512d lo = (__m512d)t[4 * g], hi = (__m512d)t[4 * g + 1];
    const __m512d lo2 = (__m512d)t[4 * g + 2], hi2 = (__m512d)t[4 * g + 3];
    r[4 * g] = (__m512)_mm512_unpacklo_pd(lo, lo2);
    r[4 * g + 1] = (__m512)_mm512_unpackhi_pd(lo, lo2);
    r[4 * g + 2] = (__m512)_mm512_unpacklo_pd(hi, hi2);
    r[4 * g + 3] = (__m512)_mm512_unpackhi_pd(hi, hi2);
  }
  // Lanes gathered across the quads: column 4l + c from lane l of each.
  for (int c = 0; c < 4; ++c) {
    const __m512 even01 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
    const __m512 odd01 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);
    const __m512 even23 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
    const __m512 odd23 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd);
    _mm512_storeu_ps(to + c * to_stride,
                     _mm512_shuffle_f32x4(even01, even23, 0x88));
    _mm512_storeu_ps(to + (8 + c) * to_stride,
                     _mm512_shuffle_f32x4(even01, even23, 0xdd));
    _mm512_storeu_ps(to + (4 + c) * to_stride,
                     _mm512_shuffle_f32x4(odd01, odd23, 0x88));
    _mm512_storeu_ps(to + (12 + c) * to_stride,
                     _mm512_shuffle_f32x4(odd01, odd23, 0xdd));
  }
  return true;
}
#endif

// Packs columns [col0, col0 + NR) of B (K x N; element (k, j) at
// b[k * k_stride + j * col_stride]) into panel[K][NR], zeros past N.
template <typename T, int NR>
KILN_FN void kiln_gemm_pack_b(long long K, long long N, long long col0,
                              const T *__restrict__ b, long long k_stride,
                              long long col_stride, T *__restrict__ panel) {
  const long long cols = N - col0 < NR ? N - col0 : NR;
  if (col_stride == 1) {
    for (long long k = 0; k < K; ++k) {
      const T *from = b + k * k_stride + col0;
      T *to = panel + k * NR;
      for (long long j = 0; j < cols; ++j)
        to[j] = from[j];
      for (long long j = cols; j < NR; ++j)
        to[j] = 0;
    }
    return;
  }
  // Column by column, a cache line of k at a time: the panel's rows being
  // written (KB x NR values) stay in L1 while the columns are read. Whole
  // 16 x 16 blocks of a B stored [N, K] are transposed in registers.
  constexpr long long KB = 64 / sizeof(T);
  for (long long k0 = 0; k0 < K; k0 += KB) {
    const long long k1 = K - k0 < KB ? K : k0 + KB;
    long long j0 = 0;
    if (k_stride == 1 && k1 - k0 == 16)
      while (j0 + 16 <= cols &&
             kiln_transpose16(b + (col0 + j0) * col_stride + k0, col_stride,
                              panel + k0 * NR + j0, NR))
        j0 += 16;
    for (long long j = j0; j < cols; ++j) {
      const T *from = b + (col0 + j) * col_stride;
      for (long long k = k0; k < k1; ++k)
        panel[k * NR + j] = from[k * k_stride];
    }
    for (long long j = cols; j < NR; ++j)
      for (long long k = k0; k < k1; ++k)
        panel[k * NR + j] = 0;
  }
}

// Packs rows [row0, row0 + MR) of A (M x K; element (i, k) at a[i *
// row_stride + k * k_stride]) into panel[K][MR], rows past M repeating row
// M - 1 (as kiln_gemm_micro reads them).
template <typename T, int MR>
KILN_FN void kiln_gemm_pack_a(long long K, long long M, long long row0,
                              const T *__restrict__ a, long long row_stride,
                              long long k_stride, T *__restrict__ panel) {
  const T *row[MR];
  for (int i = 0; i < MR; ++i)
    row[i] = a + (row0 + i < M ? row0 + i : M - 1) * row_stride;
  for (long long k = 0; k < K; ++k)
    for (int i = 0; i < MR; ++i)
      panel[k * MR + i] = row[i][k * k_stride];
}

// The register-blocked tile both micro-kernels compute: tile[MR][NR] = A x
// panel, plus the tile's own values when `accumulate` (a sum continued over
// several calls, k still in increasing order), A's element (i, k) at
// row[i][offset(k)].
template <typename T, int MR, int NR, typename Offset>
KILN_FN void kiln_gemm_tile(long long K, const T *const *rows, Offset offset,
                            const T *__restrict__ panel, T *__restrict__ tile,
                            bool accumulate) {
  typedef typename kiln_simd<T>::vec V;
  constexpr int W = kiln_simd<T>::width, NV = NR / W;
  static_assert(NR % W == 0, "NR is a multiple of the vector width");
  const T *row[MR];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
    row[i] = rows[i];
  V acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 32
    for (int j = 0; j < NV; ++j)
      acc[i][j] = accumulate ? *(const V *)(tile + i * NR + j * W) : V{};
  for (long long k = 0; k < K; ++k) {
    const V *b = (const V *)(panel + k * NR);
    V bk[NV];
#pragma GCC unroll 32
    for (int j = 0; j < NV; ++j)
      bk[j] = b[j];
    const long long at = offset(k);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const V ai = kiln_splat(row[i][at]);
#pragma GCC unroll 32
      for (int j = 0; j < NV; ++j)
        acc[i][j] = kiln_fma(ai, bk[j], acc[i][j]);
    }
  }
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 32
    for (int j = 0; j < NV; ++j)
      *(V *)(tile + i * NR + j * W) = acc[i][j];
}

// tile[MR][NR] = A[row0 .. row0 + MR) x panel, plus the tile's own values
// when `accumulate`: A's element (i, k) at a[i * row_stride + k *
// k_stride]; rows at and past `rows` repeat row rows - 1 (the caller
// stores only the first `rows`).
template <typename T, int MR, int NR>
KILN_FN void kiln_gemm_micro(long long K, const T *__restrict__ a,
                             long long row_stride, long long k_stride,
                             long long rows, const T *__restrict__ panel,
                             T *__restrict__ tile, bool accumulate = false) {
  const T *row[MR];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
    row[i] = a + (i < rows ? i : rows - 1) * row_stride;
  kiln_gemm_tile<T, MR, NR>(
      K, row, [k_stride](long long k) { return k * k_stride; }, panel, tile,
      accumulate);
}

// kiln_gemm_micro with A read in place through an offset table (a
// convolution's windows): A's element (i, k) is corner[i][offsets[k]], row
// i's corner plus k's offset (a window's corner and a tap's offset, or a
// tap's corner and a window's offset). The caller points rows past the last
// at the last one.
template <typename T, int MR, int NR>
KILN_FN void kiln_gemm_micro_indirect(long long K, const T *const *corner,
                                      const long long *__restrict__ offsets,
                                      const T *__restrict__ panel,
                                      T *__restrict__ tile,
                                      bool accumulate = false) {
  kiln_gemm_tile<T, MR, NR>(
      K, corner, [offsets](long long k) { return offsets[k]; }, panel, tile,
      accumulate);
}

// Copies `planes` planes of source_h x source_w values into padded planes
// of pad_h x pad_w, source (y, x) at (y + top, x + left); zeros elsewhere,
// source values outside the padded plane dropped.
template <typename T>
KILN_FN void kiln_conv_pad_planes(const T *__restrict__ from, long long planes,
                                  long long source_h, long long source_w,
                                  long long top, long long left,
                                  long long pad_h, long long pad_w,
                                  T *__restrict__ padded) {
  for (long long plane = 0; plane < planes; ++plane) {
    const T *source = from + plane * source_h * source_w;
    for (long long y = 0; y < pad_h; ++y) {
      // a zero run, the source row's copy, a zero run
      T *to = padded + (plane * pad_h + y) * pad_w;
      const long long sy = y - top;
      long long lo = 0, hi = 0; // columns [lo, hi) copy the source
      if (sy >= 0 && sy < source_h) {
        lo = left < 0 ? 0 : left < pad_w ? left : pad_w;
        hi = left + source_w < lo      ? lo
             : left + source_w < pad_w ? left + source_w
                                       : pad_w;
      }
      for (long long x = 0; x < lo; ++x)
        to[x] = 0;
      for (long long x = lo; x < hi; ++x)
        to[x] = source[sy * source_w + x - left];
      for (long long x = hi; x < pad_w; ++x)
        to[x] = 0;
    }
  }
}
