//===- MLIRGen.h - lowering the model AST to the kiln dialect ---*- C++ -*-===//
//
// Each model becomes a `func.func` whose arguments are the model's inputs and
// whose results are its loss followed by its metrics, labelled with the
// attributes of ir/AttrNames.h. Every op gets the
// FileLineColLoc of the expression it comes from.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_FRONTEND_MLIRGEN_H
#define KILN_FRONTEND_MLIRGEN_H

#include "frontend/AST.h"
#include "ir/AttrNames.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace kiln::frontend {

/// Lowers every model of `module`. Reports errors through MLIR diagnostics
/// and returns null when there was any. The context must have the kiln and
/// func dialects loaded.
mlir::OwningOpRef<mlir::ModuleOp> mlirGen(mlir::MLIRContext &context,
                                          const ModuleAST &module);

/// The names of every function the model language knows, for documentation
/// and tests.
std::vector<llvm::StringRef> builtinNames();

} // namespace kiln::frontend

#endif // KILN_FRONTEND_MLIRGEN_H
