//===- KilnDialect.h - the kiln dialect -------------------------*- C++ -*-===//
//
// Declares the kiln dialect, its enums and attributes, and its ops.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_IR_KILNDIALECT_H
#define KILN_IR_KILNDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "ir/KilnDialect.h.inc"
#include "ir/KilnEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "ir/KilnAttrs.h.inc"

#include "ir/OpTraits.h"
#include "ir/ShapeUtils.h"

#include "ir/KilnInterfaces.h.inc"

#define GET_OP_CLASSES
#include "ir/KilnOps.h.inc"

namespace kiln {
/// Attaches every gradient rule (ir/Gradients.cpp) to its op.
void attachGradientRules(mlir::MLIRContext &context);
} // namespace kiln

#endif // KILN_IR_KILNDIALECT_H
