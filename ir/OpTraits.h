//===- OpTraits.h - op classes of the kiln dialect --------------*- C++ -*-===//
//
// The C++ side of the op classes declared in KilnOps.td, asked with
// `op->hasTrait<kiln::OpTrait::Injective>()`: one statement of which ops
// fusion may chain and the generators write as scalar code, instead of op
// lists repeated in each pass.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_IR_OPTRAITS_H
#define KILN_IR_OPTRAITS_H

#include "mlir/IR/OpDefinition.h"

namespace kiln::OpTrait {

/// Each result element is a function of the operands' elements at the same
/// (broadcast) index.
template <typename ConcreteType>
class Injective : public mlir::OpTrait::TraitBase<ConcreteType, Injective> {};

/// Reduces its first operand along some dimensions: the main op of a
/// reduction kernel.
template <typename ConcreteType>
class RowReduction
    : public mlir::OpTrait::TraitBase<ConcreteType, RowReduction> {};

/// An opaque op whose generators produce each result element once, where
/// an epilogue of scalar ops on its result's shape can follow.
template <typename ConcreteType>
class TakesEpilogue
    : public mlir::OpTrait::TraitBase<ConcreteType, TakesEpilogue> {};

} // namespace kiln::OpTrait

#endif // KILN_IR_OPTRAITS_H
