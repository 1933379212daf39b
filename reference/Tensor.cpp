//===- Tensor.cpp - tensors of the reference executor ---------------------===//

#include "reference/Tensor.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace kiln::reference;

std::optional<ElementType> kiln::reference::elementTypeOf(mlir::Type type) {
  if (type.isF32())
    return ElementType::f32;
  if (type.isF64())
    return ElementType::f64;
  if (type.isInteger(1))
    return ElementType::i1;
  if (type.isInteger(32))
    return ElementType::i32;
  if (type.isInteger(64))
    return ElementType::i64;
  return std::nullopt;
}

llvm::StringRef kiln::reference::spell(ElementType type) {
  switch (type) {
  case ElementType::f32:
    return "f32";
  case ElementType::f64:
    return "f64";
  case ElementType::i1:
    return "i1";
  case ElementType::i32:
    return "i32";
  case ElementType::i64:
    return "i64";
  }
  return "?";
}

bool kiln::reference::isFloat(ElementType type) {
  return type == ElementType::f32 || type == ElementType::f64;
}

double kiln::reference::roundTo(ElementType type, double value) {
  switch (type) {
  case ElementType::f32:
    return static_cast<double>(static_cast<float>(value));
  case ElementType::f64:
    return value;
  case ElementType::i1:
    return value != 0.0 ? 1.0 : 0.0;
  case ElementType::i32:
    return static_cast<double>(static_cast<int32_t>(std::trunc(value)));
  case ElementType::i64:
    return std::trunc(value);
  }
  return value;
}

int64_t kiln::reference::numElements(llvm::ArrayRef<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::string kiln::reference::formatShape(llvm::ArrayRef<int64_t> shape) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << '[';
  llvm::interleaveComma(shape, os);
  os << ']';
  return text;
}

Tensor::Tensor(ElementType type, std::vector<int64_t> shape, double fill)
    : type(type), shape(std::move(shape)) {
  data.assign(numElements(this->shape), fill);
}

Tensor::Tensor(ElementType type, std::vector<int64_t> shape,
               std::vector<double> data)
    : type(type), shape(std::move(shape)), data(std::move(data)) {}

std::vector<int64_t> Tensor::strides() const {
  std::vector<int64_t> result(shape.size(), 1);
  for (int64_t i = rank() - 2; i >= 0; --i)
    result[i] = result[i + 1] * shape[i + 1];
  return result;
}

void Tensor::round() {
  if (type == ElementType::f64)
    return;
  for (double &v : data)
    v = roundTo(type, v);
}
