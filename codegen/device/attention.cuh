#include "cuda.cuh"

// Loads rows [row0, row0 + rows) of a [count, width] matrix into a shared
// tile with `pitch` elements a row, zeros past `count`: consecutive threads
// read consecutive elements.
template <typename T>
KILN_FN void kiln_attention_load(T *tile, int pitch, const T *m, long long row0,
                                 long long count, int width, int rows) {
  for (int x = threadIdx.x; x < rows * width; x += blockDim.x) {
    const int row = x / width, col = x % width;
    tile[row * pitch + col] =
        row0 + row < count ? m[(row0 + row) * width + col] : (T)0;
  }
}

// acc[a][j] = row r + 16a of `rows` . row c + 16j of `cols` (shared tiles,
// `width` columns, `pitch` a row), summed in column order: a thread's R x R
// block of a tile product.
template <typename T, int R>
KILN_FN void kiln_attention_products(T (&acc)[R][R], const T *rows,
                                     const T *cols, int pitch, int width, int r,
                                     int c) {
#pragma unroll
  for (int a = 0; a < R; ++a)
#pragma unroll
    for (int j = 0; j < R; ++j)
      acc[a][j] = (T)0;
  for (int d = 0; d < width; ++d) {
    T x[R], y[R];
#pragma unroll
    for (int a = 0; a < R; ++a)
      x[a] = rows[(r + 16 * a) * pitch + d];
#pragma unroll
    for (int j = 0; j < R; ++j)
      y[j] = cols[(c + 16 * j) * pitch + d];
#pragma unroll
    for (int a = 0; a < R; ++a)
#pragma unroll
      for (int j = 0; j < R; ++j)
        acc[a][j] += x[a] * y[j];
  }
}
