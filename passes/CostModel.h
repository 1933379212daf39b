//===- CostModel.h - the cost models kiln-schedule chooses by ---*- C++ -*-===//
//
// Each kernel kind's schedule choice as a function of what the kernel is
// (its sizes, element size, layout), without the IR, so that unit tests can
// ask it directly: given these sizes, this schedule. `kiln-schedule`
// (Schedule.cpp) describes each kernel as one of these problems and records
// the answer on it as a schedule attribute (ir/Schedules.td).
//
// Sizes are static sizes, or what the pass assumes of a dynamic one (its
// value at the step's largest batch), or -1 when nothing is known.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_PASSES_COSTMODEL_H
#define KILN_PASSES_COSTMODEL_H

#include "ir/Schedules.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"

#include <cstdint>

namespace kiln::cost {

//===----------------------------------------------------------------------===//
// GEMM (CUDA)
//===----------------------------------------------------------------------===//

/// A product C[batches, M, N] = A[M, K] B[K, N] as the GEMM model sees it.
struct GemmProblem {
  /// Static sizes; -1 for a dynamic one.
  int64_t m = -1, n = -1, k = -1, batches = 1;
  unsigned elementBytes = 4;
  bool transposeLhs = false, transposeRhs = false;
  /// Tensors of the output's shape the epilogue reads or writes.
  int outputStreams = 1;
  /// What the model assumes of each dynamic size (its value at the largest
  /// batch), or -1: a guess of 1024.
  int64_t guessM = -1, guessN = -1, guessK = -1, guessBatches = -1;
};

/// A candidate tiling with what the model estimates of it.
struct GemmTiles {
  int bm = 0, bn = 0, bk = 0, tm = 0, tn = 0, split = 1;
  /// Elements per global load of A and B (a 16-byte vector, or 1).
  int va = 1, vb = 1;
  /// The estimate, in SM cycles.
  double cycles = 0;
  /// Blocks, and blocks resident per SM.
  int64_t blocks = 0;
  int perSM = 0;

  int threadsPerGroup() const { return (bm / tm) * (bn / tn); }
  int threads() const { return threadsPerGroup() * split; }
};

/// The model's estimate of `t` for `p`, in cycles of the busiest SM of an
/// H100 (also fills t.blocks and t.perSM); infinite for a block that does
/// not fit an SM. See CostModel.cpp.
double estimateGemm(GemmTiles &t, const GemmProblem &p);

/// The candidate with the lowest estimate (ties keep the first found,
/// larger tiles first).
GemmTiles chooseGemmTiles(const GemmProblem &p);

/// The tiling bm x bn x bk, tm x tn a thread, split `split` ways, with its
/// load widths and the model's estimate for `p`: how the tuner ranks the
/// schedules of a GEMM's (or a convolution's implicit GEMM's) space.
GemmTiles estimateTiles(int bm, int bn, int bk, int tm, int tn, int split,
                        const GemmProblem &p);

/// `t` as a schedule attribute.
GemmScheduleAttr toSchedule(mlir::MLIRContext *context, const GemmTiles &t);

/// The C++ GEMM's register block (#kiln.cpu_gemm) for `p`: panels of 64
/// columns and tiles of 6 rows (24 of the 32 AVX-512 registers), or, for
/// fewer than 48 columns, the narrowest panel of 16, 32 or 48 that covers
/// them and tiles of 8 rows. Measured on the 2-core AVX-512 build machine
/// (bench/cpu_gemm.sh): 6 x 64 beats 6, 8, 12 and 14 x 32 at 128 x 512 x
/// 784, 1024^3 and 4096 x 512 x 512.
CpuGemmScheduleAttr chooseCpuGemmSchedule(mlir::MLIRContext *context,
                                          const GemmProblem &p);

//===----------------------------------------------------------------------===//
// Convolutions as implicit GEMMs
//===----------------------------------------------------------------------===//

/// A convolution's implicit GEMM C[GM, GN] = A[GM, GK] B[GK, GN].
struct ConvProblem {
  /// Static GM, GN (-1 when dynamic) and the largest GK (its value at the
  /// largest batch; -1 when unknown).
  int64_t m = -1, n = -1, k = -1;
  /// A weight gradient: its k (the batch times the image) is loaded k
  /// fastest, BK = 16.
  bool weightGradient = false;
  /// The largest element count of the input, output and weight (-1 when
  /// unknown): 32-bit indices below 2^31.
  int64_t largestTensor = -1;
};

/// The tiles, split-K and index width of a convolution. See CostModel.cpp.
ConvScheduleAttr chooseConvSchedule(mlir::MLIRContext *context,
                                    const ConvProblem &p);

/// Blocks worth launching: two per SM of an H100 or H200 (132 SMs).
constexpr int64_t kTargetBlocks = 264;

//===----------------------------------------------------------------------===//
// Reductions (CUDA)
//===----------------------------------------------------------------------===//

/// A reduction's input as the scheme choice sees it.
struct ReductionProblem {
  enum class Kind { rows, count, crossEntropy };
  Kind kind = Kind::rows;
  /// The input's sizes, -1 for a dynamic one, and which are reduced.
  llvm::SmallVector<int64_t> sizes;
  llvm::SmallVector<bool> reduced;
};

/// The scheme and block of a reduction. See CostModel.cpp.
ReduceScheduleAttr chooseReduceSchedule(mlir::MLIRContext *context,
                                        const ReductionProblem &p);

//===----------------------------------------------------------------------===//
// Elementwise and horizontal kernels (CUDA)
//===----------------------------------------------------------------------===//

/// Threads a block of an elementwise or horizontal kernel, and of the
/// element loops of layout copies, pooling and embedding.
constexpr int64_t kElementwiseBlock = 256;

/// The block of an embedding gradient, one block a table row of `dim`
/// elements (-1: dynamic): the row's elements rounded up to a warp, at most
/// kElementwiseBlock.
int64_t embeddingGradBlock(int64_t dim);

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// The tile of a fused attention kernel: 64 rows, halved (down to 16) while
/// the tiles' shared memory (`sharedBytes` of a tile) exceeds
/// kAttentionSharedBudget or half a tile covers the longer sequence
/// (`tq`, `tk`).
int64_t chooseAttentionTile(int64_t tq, int64_t tk,
                            llvm::function_ref<int64_t(int64_t)> sharedBytes);

} // namespace kiln::cost

#endif // KILN_PASSES_COSTMODEL_H
