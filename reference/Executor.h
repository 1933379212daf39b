//===- Executor.h - the reference executor ----------------------*- C++ -*-===//
//
// Runs any function of the kiln dialect op by op on the CPU: the oracle every
// other backend is checked against. Unsupported ops and run-time errors
// (dynamic sizes that disagree, labels out of range) are reported at the
// op's location.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_REFERENCE_EXECUTOR_H
#define KILN_REFERENCE_EXECUTOR_H

#include "reference/Tensor.h"

#include "ir/KilnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Support/LogicalResult.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"

namespace kiln::reference {

struct ExecutorOptions {
  /// Dropout is active in training and the identity otherwise.
  bool training = true;
  /// The seed of every random op in this run (dropout masks).
  uint64_t seed = 0;
};

class Executor {
public:
  explicit Executor(ExecutorOptions options = {}) : options(options) {}

  /// Gives `kiln.param "name"` a value, for functions that read parameters
  /// as ops (the model as written) rather than as arguments (a train step).
  void setParameter(llvm::StringRef name, Tensor value) {
    parameters[name] = std::move(value);
  }
  const llvm::StringMap<Tensor> &getParameters() const { return parameters; }

  ExecutorOptions &getOptions() { return options; }

  /// Runs `func` on `args` and returns its results.
  mlir::FailureOr<std::vector<Tensor>> run(mlir::func::FuncOp func,
                                           llvm::ArrayRef<Tensor> args);

  /// Runs one fused kernel on its inputs and returns its results: the
  /// oracle of a generated kernel.
  mlir::FailureOr<std::vector<Tensor>> runKernel(KernelOp kernel,
                                                 llvm::ArrayRef<Tensor> inputs);

private:
  /// Runs the ops of `block` (a function body or a kernel's region) given
  /// the values of its arguments in `values`.
  mlir::LogicalResult runBlock(mlir::Block &block,
                               llvm::DenseMap<mlir::Value, Tensor> &values);

  ExecutorOptions options;
  llvm::StringMap<Tensor> parameters;
};

} // namespace kiln::reference

#endif // KILN_REFERENCE_EXECUTOR_H
