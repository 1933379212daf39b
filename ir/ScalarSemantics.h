//===- ScalarSemantics.h - what each scalar op computes ---------*- C++ -*-===//
//
// The one table of the dialect's scalar ops (the Injective ops that compute
// a result element from their operands' elements alone): for each, its
// value on one element, as the reference executor evaluates it, and its C
// expression, as the code generators write it. Adding an elementwise op
// touches the dialect (KilnOps.td), its gradient (Gradients.cpp) and this
// table (ScalarSemantics.cpp); a unit test checks every Injective op has an
// entry or is one of the three ops that depend on more than their operands'
// elements: kiln.broadcast (an index mapping), kiln.dropout (the seed and
// the element's index) and kiln.iota (the index).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_IR_SCALARSEMANTICS_H
#define KILN_IR_SCALARSEMANTICS_H

#include "mlir/IR/Operation.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <functional>
#include <optional>
#include <string>

namespace kiln {

/// How the generators spell C for one op's result type.
struct CSpelling {
  /// A literal of the result's element type that reads back exactly.
  std::function<std::string(double)> literal;
  /// A call of the math function `name` for the result's element type
  /// (`exp` is expf for f32, exp for f64) on `arguments`.
  std::function<std::string(llvm::StringRef name, llvm::StringRef arguments)>
      call;
  /// The C type of the result's element type.
  std::string type;
};

/// One op's entry: its result element from its operands' elements.
struct ScalarSemantics {
  /// The value, computed in double; the reference executor rounds it to
  /// the result's element type.
  std::function<double(llvm::ArrayRef<double>)> evaluate;
  /// The C expression, given the C expressions of the operands.
  std::function<std::string(llvm::ArrayRef<std::string>, const CSpelling &)>
      spell;
};

/// The entry of `op` (with its attributes: a comparison's predicate, gelu's
/// approximation, the result's element type), or nullopt if it has none.
std::optional<ScalarSemantics> scalarSemantics(mlir::Operation *op);

/// Whether ops named `name` have an entry.
bool hasScalarSemantics(mlir::OperationName name);

} // namespace kiln

#endif // KILN_IR_SCALARSEMANTICS_H
