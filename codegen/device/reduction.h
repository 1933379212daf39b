// Shared by both targets, after cuda.cuh or cpu.h (KILN_FN).
// Reductions. kKilnNoIndex marks an argmax that has seen no candidate.
#define kKilnNoIndex 9223372036854775807LL
// Whether (v, i) beats (best, bestIndex) as the first maximum: a NaN at
// index 0 wins (the reference scans with `>` from index 0), other NaNs
// never do, and equal values go to the lower index. A total order, so any
// combination order gives the same answer.
template <typename T>
KILN_FN bool kiln_argmax_better(T v, long long i, T best, long long bestIndex) {
  if (bestIndex == 0 && best != best)
    return false;
  if (i == 0 && v != v)
    return true;
  return v > best || (v == best && i < bestIndex);
}
