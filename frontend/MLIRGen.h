//===- MLIRGen.h - lowering the model AST to the kiln dialect ----*- C++ -*-===//
//
// Each model becomes a `func.func` whose arguments are the model's inputs and
// whose results are its loss followed by its metrics. Every op gets the
// FileLineColLoc of the expression it comes from.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_FRONTEND_MLIRGEN_H
#define KILN_FRONTEND_MLIRGEN_H

#include "frontend/AST.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace kiln::frontend {

/// Names of the attributes MLIRGen puts on a model function.
namespace attrs {
/// On the function: marks it as a model.
inline constexpr llvm::StringLiteral model = "kiln.model";
/// On each argument and result: the name the model file gives it.
inline constexpr llvm::StringLiteral name = "kiln.name";
/// On each argument: one string per dimension, the symbol of a symbolic
/// dimension (`batch`) or "" for a fixed size.
inline constexpr llvm::StringLiteral dimNames = "kiln.dim_names";
/// On each result: "loss" or "metric".
inline constexpr llvm::StringLiteral role = "kiln.role";
} // namespace attrs

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
