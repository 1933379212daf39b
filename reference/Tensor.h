//===- Tensor.h - tensors of the reference executor -------------*- C++ -*-===//
//
// A dense, row-major tensor. Every element is held as a double whatever the
// element type; each op computes in double and rounds its result to the
// element type (f32 rounding, integer truncation), so one plain
// implementation per op serves fp32, fp64 and integer tensors.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_REFERENCE_TENSOR_H
#define KILN_REFERENCE_TENSOR_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mlir {
class Type;
} // namespace mlir

namespace kiln::reference {

enum class ElementType { f32, f64, i1, i32, i64 };

/// The element type of an MLIR type, if the executor supports it.
std::optional<ElementType> elementTypeOf(mlir::Type type);
llvm::StringRef spell(ElementType type);
bool isFloat(ElementType type);

/// Rounds `value` to what `type` can hold.
double roundTo(ElementType type, double value);

struct Tensor {
  ElementType type = ElementType::f32;
  std::vector<int64_t> shape;
  std::vector<double> data;

  Tensor() = default;
  Tensor(ElementType type, std::vector<int64_t> shape, double fill = 0.0);
  Tensor(ElementType type, std::vector<int64_t> shape,
         std::vector<double> data);

  int64_t numel() const { return static_cast<int64_t>(data.size()); }
  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  /// Row-major strides of `shape`.
  std::vector<int64_t> strides() const;
  /// Rounds every element to the element type.
  void round();
};

/// The number of elements of `shape`.
int64_t numElements(llvm::ArrayRef<int64_t> shape);

/// Formats a shape as `[2, 3]`.
std::string formatShape(llvm::ArrayRef<int64_t> shape);

} // namespace kiln::reference

#endif // KILN_REFERENCE_TENSOR_H
