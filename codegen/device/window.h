// Shared by both targets, after cuda.cuh or cpu.h (KILN_FN).
// Windows of a sliding window op (pooling, convolution) along one axis:
// window o covers positions [o * stride - pad, o * stride - pad + kernel).

// The first window (of a sliding window with `kernel`, `stride`, `pad`)
// that contains position i; C division truncates, so a negative numerator
// is already rounded up.
KILN_FN long long kiln_window_first(long long i, long long pad,
                                    long long kernel, long long stride) {
  const long long t = i + pad - kernel + 1;
  return t <= 0 ? 0 : (t + stride - 1) / stride;
}

// The last of `windows` windows that contains position i.
KILN_FN long long kiln_window_last(long long i, long long pad, long long stride,
                                   long long windows) {
  const long long last = (i + pad) / stride;
  return last < windows - 1 ? last : windows - 1;
}
