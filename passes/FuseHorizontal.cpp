//===- FuseHorizontal.cpp - independent kernels as one launch -------------===//
//
// After kiln-fuse a training step ends with one small elementwise kernel per
// parameter (its optimizer update) and one for the step counter. They do
// not depend on each other, so one launch can compute them all: a
// `horizontal` kernel whose segments are the elementwise kernels, each over
// its own shape. The rule, peeling the step from its end:
//
//   1. The insertion point starts at the function's return.
//   2. A candidate is an elementwise kernel with static result shapes whose
//      results are read only at or after the insertion point (by the return
//      or by a horizontal kernel formed before). Candidates never read each
//      other's results (the reader would sit before the insertion point),
//      and each can move down to the insertion point: its inputs are
//      defined before it, its readers come after.
//   3. Two or more candidates become one horizontal kernel at the insertion
//      point, segments in program order; its operands are their inputs
//      (each once), its results theirs in order. The kernel is the new
//      insertion point; repeat from 2 (up to `levels` kernels, 0: no
//      limit). Fewer than two candidates end the pass.
//
// Moving a kernel down lengthens the lives of its inputs to the insertion
// point: the optimizer's updates already sit at the step's end (SGD's one
// kernel per parameter: one level), so the cost is only where chains of
// update kernels are peeled level by level (AdamW): their intermediates,
// each a parameter's size, then live together. Dynamic shapes are left
// alone: code generation splits the flat index by static segment sizes.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "kiln-fuse-horizontal"

namespace kiln {
#define GEN_PASS_DEF_KILNFUSEHORIZONTAL
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// Rule 2.
bool isCandidate(KernelOp kernel, Operation *insertionPoint) {
  if (kernel.getKind() != KernelKind::elementwise)
    return false;
  Block *block = insertionPoint->getBlock();
  return llvm::all_of(kernel->getResults(), [&](OpResult result) {
    return llvm::cast<RankedTensorType>(result.getType()).hasStaticShape() &&
           llvm::all_of(result.getUsers(), [&](Operation *user) {
             // A reader inside a horizontal kernel is that kernel.
             Operation *reader = block->findAncestorOpInBlock(*user);
             return reader == insertionPoint ||
                    insertionPoint->isBeforeInBlock(reader);
           });
  });
}

/// `horizontal_add_mul_add_mul_sub`: the segments' distinct names, in order.
std::string horizontalName(ArrayRef<KernelOp> segments) {
  SmallVector<std::string> names;
  for (KernelOp segment : segments)
    if (!llvm::is_contained(names, segment.getName()))
      names.push_back(segment.getName().str());
  if (names.size() > 4) {
    size_t rest = names.size() - 3;
    names.resize(3);
    names.push_back("and" + std::to_string(rest) + "more");
  }
  return "horizontal_" + llvm::join(names, "_");
}

/// Rule 3: `segments` as one horizontal kernel before `insertionPoint`.
KernelOp merge(ArrayRef<KernelOp> segments, Operation *insertionPoint) {
  llvm::SetVector<Value> inputs;
  SmallVector<Type> resultTypes;
  for (KernelOp segment : segments) {
    inputs.insert(segment.getInputs().begin(), segment.getInputs().end());
    llvm::append_range(resultTypes, segment->getResultTypes());
  }
  OpBuilder b(insertionPoint);
  KernelOp first = segments.front();
  auto kernel =
      b.create<KernelOp>(first.getLoc(), resultTypes, horizontalName(segments),
                         KernelKind::horizontal, inputs.getArrayRef());
  Block *body = new Block();
  kernel.getBody().push_back(body);
  llvm::DenseMap<Value, Value> argOf;
  for (Value input : inputs)
    argOf[input] = body->addArgument(input.getType(), input.getLoc());

  SmallVector<Value> yielded;
  unsigned next = 0;
  for (KernelOp segment : segments) {
    for (OpResult result : segment->getResults()) {
      result.replaceAllUsesWith(kernel.getResult(next++));
      yielded.push_back(result);
    }
    segment->moveBefore(body, body->end());
    for (OpOperand &operand : segment->getOpOperands())
      operand.set(argOf.lookup(operand.get()));
  }
  OpBuilder::atBlockEnd(body).create<YieldOp>(kernel.getLoc(), yielded);
  return kernel;
}

struct FuseHorizontalPass
    : kiln::impl::KilnFuseHorizontalBase<FuseHorizontalPass> {
  using KilnFuseHorizontalBase::KilnFuseHorizontalBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    Block &block = func.getBody().front();
    Operation *insertionPoint = block.getTerminator();
    for (unsigned formed = 0; levels == 0 || formed < levels; ++formed) {
      SmallVector<KernelOp> segments;
      for (KernelOp kernel : block.getOps<KernelOp>())
        if (kernel != insertionPoint && isCandidate(kernel, insertionPoint))
          segments.push_back(kernel);
      if (segments.size() < 2)
        break;
      KernelOp kernel = merge(segments, insertionPoint);
      LLVM_DEBUG(llvm::dbgs()
                 << "kernel " << kernel.getName() << ": " << segments.size()
                 << " segments, " << kernel.getInputs().size() << " inputs\n");
      insertionPoint = kernel;
    }
  }
};

} // namespace
