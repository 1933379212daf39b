//===- ShapeUtils.h - shape rules shared by the kiln ops --------*- C++ -*-===//
//
// Broadcasting, axis normalization and type compatibility: the building
// blocks of every op's shape function.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_IR_SHAPEUTILS_H
#define KILN_IR_SHAPEUTILS_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Location.h"
#include "mlir/IR/Operation.h"
#include "mlir/IR/TypeRange.h"
#include "llvm/ADT/SmallVector.h"

#include <optional>

namespace kiln {

/// Broadcasts two shapes by NumPy rules, treating ShapedType::kDynamic as an
/// unknown size. Returns std::nullopt when two known sizes differ and neither
/// is 1.
std::optional<llvm::SmallVector<int64_t>>
broadcastShapes(llvm::ArrayRef<int64_t> a, llvm::ArrayRef<int64_t> b);

/// Maps `axis` (negative counts from the end) into [0, rank). Returns
/// std::nullopt when it is out of range.
std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank);

/// Formats a shape the way users write it: `[?, 784]`.
std::string formatShape(llvm::ArrayRef<int64_t> shape);

/// Formats a tensor type the way the model language writes it: `f32[?, 784]`.
std::string formatTensorType(mlir::Type type);

/// True when every pair of types has the same element type and compatible
/// shapes (equal, or one side dynamic). Declared result types may be less or
/// more refined than inferred ones; the shape inference pass settles them.
bool areCompatibleResultTypes(mlir::TypeRange lhs, mlir::TypeRange rhs);

/// Runs the shape function of `op` (its InferTypeOpInterface) on its current
/// operands and attributes. Errors are reported at the op's location. Fails
/// for ops without a shape function.
mlir::LogicalResult inferResultTypes(mlir::Operation *op,
                                     llvm::SmallVectorImpl<mlir::Type> &types);

} // namespace kiln

#endif // KILN_IR_SHAPEUTILS_H
