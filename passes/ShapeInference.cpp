//===- ShapeInference.cpp - bind symbolic dims, propagate shapes ----------===//
//
// The algorithm:
//   1. Parse the `bind` option into symbol -> size.
//   2. Give each argument whose `kiln.dim_names` names a bound symbol that
//      size; a fixed size that disagrees, or a binding that names no
//      dimension, is an error.
//   3. Walk the body in order; run each op's shape function (its
//      InferTypeOpInterface) on the refined operands and keep, per
//      dimension, whatever the declared and inferred types know.
//   4. Make the function type match the arguments and returned values.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "ir/AttrNames.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "kiln-shape-inference"

namespace kiln {
#define GEN_PASS_DEF_KILNSHAPEINFERENCE
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// The meet of two compatible types: every size either one knows. Returns
/// null when they contradict each other.
Type refine(Type declared, Type inferred) {
  auto d = llvm::dyn_cast<RankedTensorType>(declared);
  auto i = llvm::dyn_cast<RankedTensorType>(inferred);
  if (!d || !i)
    return declared == inferred ? declared : Type();
  if (d.getElementType() != i.getElementType() || d.getRank() != i.getRank())
    return Type();
  SmallVector<int64_t> shape;
  for (auto [a, b] : llvm::zip(d.getShape(), i.getShape())) {
    if (!ShapedType::isDynamic(a) && !ShapedType::isDynamic(b) && a != b)
      return Type();
    shape.push_back(ShapedType::isDynamic(a) ? b : a);
  }
  return d.clone(shape);
}

struct ShapeInferencePass
    : kiln::impl::KilnShapeInferenceBase<ShapeInferencePass> {
  using Base::Base;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    if (failed(bindArguments(func)) || failed(propagate(func)))
      return signalPassFailure();
    Operation *terminator = func.getBody().front().getTerminator();
    func.setType(FunctionType::get(&getContext(),
                                   func.getBody().front().getArgumentTypes(),
                                   terminator->getOperandTypes()));
  }

  LogicalResult bindArguments(func::FuncOp func) {
    llvm::StringMap<int64_t> sizes;
    for (const std::string &binding : bindings) {
      auto [name, value] = llvm::StringRef(binding).split('=');
      int64_t size = 0;
      if (name.empty() || value.getAsInteger(10, size) || size <= 0)
        return func.emitError("invalid binding '")
               << binding << "'; expected NAME=SIZE with a positive SIZE";
      sizes[name] = size;
    }
    if (sizes.empty())
      return success();

    llvm::StringSet<> used;
    Block &entry = func.getBody().front();
    for (BlockArgument arg : entry.getArguments()) {
      auto names =
          func.getArgAttrOfType<ArrayAttr>(arg.getArgNumber(), attrs::dimNames);
      auto type = llvm::dyn_cast<RankedTensorType>(arg.getType());
      if (!names || !type)
        continue;
      if (static_cast<int64_t>(names.size()) != type.getRank())
        return func.emitError("argument ")
               << arg.getArgNumber() << " has " << names.size()
               << " dimension names for rank " << type.getRank();
      SmallVector<int64_t> shape(type.getShape());
      for (auto [d, attr] : llvm::enumerate(names)) {
        auto name = llvm::dyn_cast<StringAttr>(attr);
        if (!name)
          return func.emitError("dimension names must be strings");
        auto it = sizes.find(name.getValue());
        if (it == sizes.end())
          continue;
        used.insert(name.getValue());
        if (!ShapedType::isDynamic(shape[d]) && shape[d] != it->second)
          return emitError(arg.getLoc())
                 << "dimension '" << name.getValue() << "' has the fixed size "
                 << shape[d] << " and cannot be bound to " << it->second;
        shape[d] = it->second;
      }
      LLVM_DEBUG(llvm::dbgs() << "binding argument " << arg.getArgNumber()
                              << " to " << formatShape(shape) << "\n");
      arg.setType(type.clone(shape));
    }
    for (const auto &entry : sizes)
      if (!used.contains(entry.getKey()))
        return func.emitError("no input dimension is named '")
               << entry.getKey() << "'";
    return success();
  }

  LogicalResult propagate(func::FuncOp func) {
    WalkResult result =
        func.getBody().walk<WalkOrder::PreOrder>([&](Operation *op) {
          if (!llvm::isa<InferTypeOpInterface>(op))
            return WalkResult::advance();
          SmallVector<Type> inferred;
          if (failed(inferResultTypes(op, inferred)))
            return WalkResult::interrupt();
          for (auto [result, type] : llvm::zip(op->getResults(), inferred)) {
            Type refined = refine(result.getType(), type);
            if (!refined) {
              op->emitOpError("result type ")
                  << result.getType() << " contradicts the inferred type "
                  << type;
              return WalkResult::interrupt();
            }
            if (refined != result.getType()) {
              LLVM_DEBUG(llvm::dbgs() << "refined " << op->getName() << " to "
                                      << refined << "\n");
              result.setType(refined);
            }
          }
          return WalkResult::advance();
        });
    return failure(result.wasInterrupted());
  }
};

} // namespace
