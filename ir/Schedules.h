//===- Schedules.h - how each kernel is computed ----------------*- C++ -*-===//
//
// The schedule attributes of ir/Schedules.td, how a kernel carries them
// (`kiln.schedule`, one per target), and the checks of a schedule against
// the kernel it is for. The `kiln-schedule` pass chooses schedules; the
// code generators read them here.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_IR_SCHEDULES_H
#define KILN_IR_SCHEDULES_H

#include "ir/KilnDialect.h"

#include "mlir/IR/DialectImplementation.h"

#include "ir/ScheduleEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "ir/Schedules.h.inc"

namespace kiln {

/// The targets a kernel has schedules for: the keys of `kiln.schedule`.
inline constexpr llvm::StringLiteral kCudaTarget = "cuda";
inline constexpr llvm::StringLiteral kCpuTarget = "cpu";

/// The schedule of `kernel` for `target`, or null when it has none.
mlir::Attribute getSchedule(KernelOp kernel, llvm::StringRef target);

/// Sets the schedule of `kernel` for `target` (null removes it).
void setSchedule(KernelOp kernel, llvm::StringRef target,
                 mlir::Attribute schedule);

/// The key that names `kernel` in a schedules file (`--schedules`): its
/// name and a hash of what it computes (its ops, their attributes and
/// types; not the discardable attributes of the kernel and its segments,
/// such as the memory plan or schedules), as
/// `matmul_add_relu@5f0e3a1b2c4d6e78`. The same kernel in the
/// training and evaluation steps has the same key.
std::string scheduleKey(KernelOp kernel);

/// The most shared memory a block of a fused attention kernel may use (an
/// A100 allows 163 KiB, an H100 227 KiB; two blocks an SM fit either).
inline constexpr int64_t kAttentionSharedBudget = 100 * 1024;

/// The shared memory of one block of the fused attention op `op`
/// (kiln.attention, attention_grad_q or attention_grad_kv) with tiles of
/// `tile` rows, in bytes.
int64_t attentionSharedBytes(mlir::Operation *op, int64_t tile);

/// The attention op a kernel is built around, or null.
mlir::Operation *attentionOf(KernelOp kernel);

/// Checks that `schedule` is one `kernel`'s generator for `target` renders
/// (its kind, and what depends on the kernel: a GEMM's shared memory for
/// its element size, a convolution's threads dividing its tiles and split-K
/// only with static output sizes, a reduction's scheme fitting its layout,
/// an attention tile's shared memory).
/// Reports through `emitError`.
mlir::LogicalResult
verifyScheduleFor(KernelOp kernel, llvm::StringRef target,
                  mlir::Attribute schedule,
                  llvm::function_ref<mlir::InFlightDiagnostic()> emitError);

/// The space of schedules of `kernel` for `target`: every schedule of its
/// kind's grid that is valid (the attribute's verifier) and fits the kernel
/// (verifyScheduleFor), in a fixed order. What a tuner searches and what
/// the tests sample; empty for a kernel that takes no schedule there. The
/// grids: GEMM tiles and thread tiles in powers of two (bm, bn 16-128, tm,
/// tn 1-8, bk 8 or 16, split_k 1-16); convolution tiles alike (bn up to 64,
/// bk 8 or 16, or GK when shorter, split_k 1-128 in powers of two; the
/// index width of the kernel's schedule, else 64 bits); reduction blocks
/// of 32-1024 threads a row, or 1-32 columns times 1-1024 slices; blocks of
/// 32-1024 threads for elementwise kernels and the opaque kernels other
/// than convolutions and attention; attention tiles of 16, 32 or 64 rows
/// (both targets); C++ column blocks of 16-256.
llvm::SmallVector<mlir::Attribute> scheduleSpace(KernelOp kernel,
                                                 llvm::StringRef target);

/// The schedule of `kernel` for `target` as an `A`, checked against the
/// kernel (verifyScheduleFor); fails with an error at the kernel when it has
/// none, one of another kind, or one that does not fit it.
template <typename A>
mlir::FailureOr<A> requireSchedule(KernelOp kernel, llvm::StringRef target) {
  mlir::Attribute schedule = getSchedule(kernel, target);
  if (!schedule)
    return kernel.emitError("kernel '")
           << kernel.getName() << "' has no " << target
           << " schedule (run kiln-schedule)";
  if (failed(verifyScheduleFor(kernel, target, schedule,
                               [&] { return kernel.emitError(); })))
    return mlir::failure();
  return llvm::cast<A>(schedule);
}

/// The shared-memory elements of a CUDA GEMM block: two buffers (double
/// buffering) of the A and B tiles per k group, rows padded by a 16-byte
/// vector of `elementBytes` elements, or the BM x BN partial sums of the
/// split-K reduction if larger.
int64_t gemmSharedElements(int64_t bm, int64_t bn, int64_t bk, int64_t splitK,
                           unsigned elementBytes);

/// The elements of one global load of a GEMM tile along the dimension
/// contiguous in memory: a 16-byte vector when that dimension's static
/// `size` (-1 when dynamic) and the tile's extent `tile` along it are
/// multiples of the vector (so a vector is wholly inside or wholly outside
/// the matrix, and aligned, given 16-byte aligned buffers: the memory plan
/// aligns to 256 bytes, as cudaMalloc does), else 1.
int64_t gemmLoadVector(int64_t size, int64_t tile, unsigned elementBytes);

/// The checks of a GEMM schedule that depend on the kernel's element size:
/// outputs per thread and static shared memory.
mlir::LogicalResult
verifyGemmSchedule(GemmScheduleAttr schedule, unsigned elementBytes,
                   llvm::function_ref<mlir::InFlightDiagnostic()> emitError);

/// Which dimensions of its input (operand 0) the op of a reduction kernel
/// reduces: reduce_sum, reduce_mean, reduce_max and count their axes (all
/// when none are given), argmax, softmax and log_softmax their axis,
/// cross_entropy, cross_entropy_grad and layer_norm the last. Fails, with
/// an error at the op for an axis out of range, for any other op.
mlir::FailureOr<llvm::SmallVector<bool>> reducedDims(mlir::Operation *op);

/// The dialect's parser and printer of the schedule attributes (the
/// attributes of KilnOps.td come first): `mnemonic` has been read.
mlir::OptionalParseResult parseScheduleAttribute(mlir::AsmParser &parser,
                                                 llvm::StringRef mnemonic,
                                                 mlir::Type type,
                                                 mlir::Attribute &value);
mlir::LogicalResult printScheduleAttribute(mlir::Attribute attr,
                                           mlir::AsmPrinter &printer);

} // namespace kiln

#endif // KILN_IR_SCHEDULES_H
