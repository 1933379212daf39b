//===- AttrNames.h - names of the attributes kiln puts on funct -*- C++ -*-===//
//
// The contract between the frontend, the passes and the tools about how a
// model, its train step and their arguments and results are labelled.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_IR_ATTRNAMES_H
#define KILN_IR_ATTRNAMES_H

#include "llvm/ADT/StringRef.h"

namespace kiln::attrs {

/// On a function: it is a model as written (unit attribute).
inline constexpr llvm::StringLiteral model = "kiln.model";
/// On a function: what step it computes: "grad", "eval" or "train".
inline constexpr llvm::StringLiteral step = "kiln.step";
/// On a function: the optimizer configuration from the model file.
inline constexpr llvm::StringLiteral optimizer = "kiln.optimizer";
/// On arguments and results: the name the model file or checkpoint uses.
inline constexpr llvm::StringLiteral name = "kiln.name";
/// On arguments: one string per dimension, the symbol of a symbolic
/// dimension (`batch`) or "" for a fixed size.
inline constexpr llvm::StringLiteral dimNames = "kiln.dim_names";
/// On arguments and results: "input", "param", "state", "loss", "metric",
/// "grad".
inline constexpr llvm::StringLiteral role = "kiln.role";
/// On parameter arguments: their #kiln.init initializer.
inline constexpr llvm::StringLiteral init = "kiln.init";

} // namespace kiln::attrs

#endif // KILN_IR_ATTRNAMES_H
