//===- CompileModel.h - a model file through the pipeline -------*- C++ -*-===//
//
// What the C++ tests share to compile an example model: parse it, lower it
// to the kiln dialect and run the compile pipeline up to a stage, as
// `kiln compile` does, without a driver. Errors are swallowed: a test
// asserts that the result is non-null.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TEST_SUPPORT_COMPILEMODEL_H
#define KILN_TEST_SUPPORT_COMPILEMODEL_H

#include "passes/Pipeline.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

#include <string>

namespace kiln::test {

/// Compiles the model file `file` to `stage`, binding `bind` ("batch=64")
/// unless empty, and keeping `batch` a run-time size planned for up to
/// `maxBatch` when it is not 0, its gradients averaged over ranks with
/// `dataParallel` (kiln-data-parallel); null on any error.
mlir::OwningOpRef<mlir::ModuleOp>
compileModel(mlir::MLIRContext &context, const std::string &file, Stage stage,
             const std::string &bind, int64_t maxBatch = 0,
             bool dataParallel = false);

/// Runs kiln-schedule on every function of `module`: what code generation
/// needs of fused IR that did not go through the whole pipeline (a
/// hand-written kernel, a module compiled to `fused`).
mlir::LogicalResult scheduleKernels(mlir::ModuleOp module);

} // namespace kiln::test

#endif // KILN_TEST_SUPPORT_COMPILEMODEL_H
