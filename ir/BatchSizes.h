//===- BatchSizes.h - sizes of a step with a run-time batch -----*- C++ -*-===//
//
// A step compiled with a run-time batch keeps `batch` symbolic (`?`) to the
// end: its kernels take the batch as a run-time size, its memory is planned
// for the largest batch, and the runtime fixes the batch before it runs the
// step (runtime/Program.h, bindBatch). What that needs of every value is
// its shape as a function of the batch, each size either fixed or a fixed
// multiple of it. BatchSizes finds them by shape inference, twice, on
// copies of the step whose `batch` arguments are bound to 1 and to a larger
// probe, and checks that each dynamic size grows in proportion.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_IR_BATCHSIZES_H
#define KILN_IR_BATCHSIZES_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallVector.h"

namespace kiln {

class BatchSizes {
public:
  /// Analyzes `func`, in which every dynamic argument size is the batch (a
  /// dimension named `batch` in its `kiln.dim_names`) and every other size
  /// of every value follows from the arguments by shape inference. Fails,
  /// with an error at the value, for a dynamic size of another name, a
  /// size that shape inference cannot fix at some batch, or one that is not
  /// a whole multiple of the batch. `largest` is the largest batch the step
  /// is compiled for (checked too).
  static mlir::FailureOr<BatchSizes> analyze(mlir::func::FuncOp func,
                                             int64_t largest);

  /// The sizes of `value` (a value of the function): fixed, or -k for k
  /// times the batch (runtime::isPerBatch).
  llvm::ArrayRef<int64_t> perBatchShape(mlir::Value value) const;

  /// The type of `value` at batch `batch`.
  mlir::RankedTensorType typeAt(mlir::Value value, int64_t batch) const;

private:
  llvm::DenseMap<mlir::Value, llvm::SmallVector<int64_t, 4>> shapes;
};

} // namespace kiln

#endif // KILN_IR_BATCHSIZES_H
