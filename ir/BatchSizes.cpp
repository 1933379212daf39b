//===- BatchSizes.cpp - sizes of a step with a run-time batch -------------===//
//
// The algorithm:
//   1. List the function's values in a fixed order: its arguments, then
//      for each op in pre-order the block arguments of its regions and its
//      results.
//   2. For each probe batch (1, then the largest batch or 2, whichever is
//      larger), copy the function, give each dynamic argument size the
//      probe, and infer every op's result types in order: a kiln.kernel's
//      block arguments take its operands' types and its results its
//      yield's; every other op with results runs its shape function. A
//      size that stays dynamic, or contradicts the declared one, is an
//      error.
//   3. A size fixed in the function stays fixed; a dynamic one is k times
//      the batch when it is k at batch 1 and k times the probe at the
//      probe.
//
//===----------------------------------------------------------------------===//

#include "ir/BatchSizes.h"

#include "ir/AttrNames.h"
#include "ir/KilnDialect.h"
#include "ir/ShapeUtils.h"

#include "mlir/Interfaces/InferTypeOpInterface.h"

using namespace mlir;
using namespace kiln;

namespace {

/// Step 1.
SmallVector<Value> listValues(func::FuncOp func) {
  SmallVector<Value> values(func.getArguments().begin(),
                            func.getArguments().end());
  func.getBody().walk<WalkOrder::PreOrder>([&](Operation *op) {
    for (Region &region : op->getRegions())
      for (Block &block : region)
        values.append(block.getArguments().begin(), block.getArguments().end());
    values.append(op->getResults().begin(), op->getResults().end());
  });
  return values;
}

/// `declared` with the sizes it leaves open taken from `inferred`; null
/// when they contradict each other or a size stays open.
RankedTensorType settle(Type declared, Type inferred) {
  auto d = llvm::dyn_cast<RankedTensorType>(declared);
  auto i = llvm::dyn_cast<RankedTensorType>(inferred);
  if (!d || !i || d.getRank() != i.getRank() ||
      d.getElementType() != i.getElementType())
    return {};
  SmallVector<int64_t> shape;
  for (auto [a, b] : llvm::zip(d.getShape(), i.getShape())) {
    if (!ShapedType::isDynamic(a) && !ShapedType::isDynamic(b) && a != b)
      return {};
    int64_t size = ShapedType::isDynamic(a) ? b : a;
    if (ShapedType::isDynamic(size))
      return {};
    shape.push_back(size);
  }
  return d.clone(shape);
}

/// Infers the result types of the ops of `block` in order.
LogicalResult inferBlock(Block &block, int64_t batch) {
  for (Operation &op : block) {
    if (auto kernel = llvm::dyn_cast<KernelOp>(op)) {
      for (auto [arg, input] :
           llvm::zip(kernel.getBlock().getArguments(), kernel.getInputs()))
        arg.setType(input.getType());
      if (failed(inferBlock(kernel.getBlock(), batch)))
        return failure();
      Operation *yield = kernel.getBlock().getTerminator();
      for (auto [result, value] :
           llvm::zip(kernel->getResults(), yield->getOperands()))
        result.setType(value.getType());
      continue;
    }
    if (op.getNumResults() == 0)
      continue;
    SmallVector<Type> inferred;
    if (!llvm::isa<InferTypeOpInterface>(op))
      inferred.assign(op.getResultTypes().begin(), op.getResultTypes().end());
    else if (failed(inferResultTypes(&op, inferred)))
      return failure();
    for (auto [result, type] : llvm::zip(op.getResults(), inferred)) {
      RankedTensorType settled = settle(result.getType(), type);
      if (!settled)
        return op.emitOpError("has no fixed result type at batch ")
               << batch << ": " << result.getType() << " against " << type;
      result.setType(settled);
    }
  }
  return success();
}

/// The dynamic argument sizes are all the batch.
LogicalResult checkArguments(func::FuncOp func) {
  for (BlockArgument arg : func.getArguments()) {
    auto type = llvm::dyn_cast<RankedTensorType>(arg.getType());
    if (!type || type.hasStaticShape())
      continue;
    auto names =
        func.getArgAttrOfType<ArrayAttr>(arg.getArgNumber(), attrs::dimNames);
    for (auto [d, size] : llvm::enumerate(type.getShape())) {
      auto name = names && d < names.size()
                      ? llvm::dyn_cast<StringAttr>(names[d])
                      : StringAttr();
      if (!ShapedType::isDynamic(size) || (name && name.getValue() == "batch"))
        continue;
      if (name && !name.getValue().empty())
        return emitError(arg.getLoc())
               << "only 'batch' can be a run-time size; bind '"
               << name.getValue() << "' with --bind " << name.getValue()
               << "=N";
      return emitError(arg.getLoc())
             << "only 'batch' can be a run-time size; argument "
             << arg.getArgNumber() << " has an unnamed dynamic size";
    }
  }
  return success();
}

/// Step 2 on `copy` (a copy of the function), binding the batch to `batch`.
LogicalResult inferAt(func::FuncOp copy, int64_t batch) {
  for (BlockArgument arg : copy.getArguments()) {
    auto type = llvm::dyn_cast<RankedTensorType>(arg.getType());
    if (!type || type.hasStaticShape())
      continue;
    SmallVector<int64_t> shape(type.getShape());
    for (int64_t &size : shape)
      if (ShapedType::isDynamic(size))
        size = batch;
    arg.setType(type.clone(shape));
  }
  return inferBlock(copy.getBody().front(), batch);
}

} // namespace

FailureOr<BatchSizes> BatchSizes::analyze(func::FuncOp func, int64_t largest) {
  if (failed(checkArguments(func)))
    return failure();
  SmallVector<Value> values = listValues(func);
  int64_t probes[2] = {1, std::max<int64_t>(largest, 2)};
  SmallVector<Type> typesAt[2];
  for (int p = 0; p < 2; ++p) {
    auto copy = llvm::cast<func::FuncOp>(func->clone());
    LogicalResult inferred = inferAt(copy, probes[p]);
    if (succeeded(inferred))
      for (Value value : listValues(copy))
        typesAt[p].push_back(value.getType());
    copy->erase();
    if (failed(inferred))
      return func.emitError("with a run-time batch the step must take every "
                            "batch from 1 to ")
             << largest << "; it cannot take " << probes[p];
  }

  BatchSizes sizes;
  for (auto [k, value] : llvm::enumerate(values)) {
    auto type = llvm::dyn_cast<RankedTensorType>(value.getType());
    if (!type)
      continue;
    auto one = llvm::cast<RankedTensorType>(typesAt[0][k]).getShape();
    auto probe = llvm::cast<RankedTensorType>(typesAt[1][k]).getShape();
    SmallVector<int64_t, 4> &shape = sizes.shapes[value];
    for (auto [d, size] : llvm::enumerate(type.getShape())) {
      if (!ShapedType::isDynamic(size)) {
        shape.push_back(size);
        continue;
      }
      if (probe[d] != one[d] * probes[1] || one[d] < 1)
        return emitError(value.getLoc())
               << "with a run-time batch every size must be a fixed multiple "
                  "of the batch; dimension "
               << d << " of " << type << " is " << one[d] << " at batch 1 and "
               << probe[d] << " at batch " << probes[1];
      shape.push_back(-one[d]);
    }
  }
  return sizes;
}

ArrayRef<int64_t> BatchSizes::perBatchShape(Value value) const {
  return shapes.find(value)->second;
}

RankedTensorType BatchSizes::typeAt(Value value, int64_t batch) const {
  auto type = llvm::cast<RankedTensorType>(value.getType());
  SmallVector<int64_t> shape;
  for (int64_t size : perBatchShape(value))
    shape.push_back(size < 0 ? -size * batch : size);
  return type.clone(shape);
}
