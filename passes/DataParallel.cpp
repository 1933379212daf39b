//===- DataParallel.cpp - average the gradients over the ranks ------------===//
//
// Data parallelism: every rank runs the same training step on its own
// slice of the global batch, and the ranks' gradients are averaged before
// the optimizer update, so that every rank applies the same update to the
// same parameters. In the IR that is one op, `kiln.all_reduce mean`, on the
// gradients the gradient function (@m_grad) returns; kiln-optimizer then
// builds the update on the averaged gradients, and gradient clipping sees
// the global gradient's norm.
//
// Gradients are reduced in buckets, as PyTorch's DistributedDataParallel
// does: walking the gradients in the order the backward pass computes them
// (the last layer's first), a bucket takes gradients until the next would
// make it larger than `bucket-bytes`. Each bucket's all-reduce follows the
// op computing its last gradient, so that a runtime can reduce it while the
// backward pass computes the next bucket. A gradient that is a constant
// (the zero gradient of a parameter the loss does not depend on) is the
// same on every rank and is not reduced.
//
// With one rank the all-reduce is the identity, and runtimes skip it.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "ir/AttrNames.h"
#include "passes/PlanMemory.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/SetVector.h"

namespace kiln {
#define GEN_PASS_DEF_KILNDATAPARALLEL
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// Replaces the gradients `grad` returns by their mean over the ranks.
void averageGradients(func::FuncOp grad, int64_t bucketBytes) {
  Block &body = grad.getBody().front();
  Operation *ret = body.getTerminator();
  // The computed gradients, each once, in the order the step computes them.
  llvm::SetVector<Value> gradients;
  for (auto [i, value] : llvm::enumerate(ret->getOperands())) {
    auto role = grad.getResultAttrOfType<StringAttr>(i, attrs::role);
    Operation *producer = value.getDefiningOp();
    if (role && role.getValue() == "grad" && producer &&
        !llvm::isa<ConstantOp>(producer))
      gradients.insert(value);
  }
  SmallVector<Value> ordered(gradients.begin(), gradients.end());
  llvm::stable_sort(ordered, [](Value a, Value b) {
    return a.getDefiningOp()->isBeforeInBlock(b.getDefiningOp());
  });

  SmallVector<SmallVector<Value>> buckets;
  int64_t bytes = 0;
  for (Value g : ordered) {
    auto type = llvm::cast<ShapedType>(g.getType());
    int64_t size =
        type.hasStaticShape() ? getTensorBytes(type) : bucketBytes + 1;
    if (buckets.empty() || bytes + size > bucketBytes) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(g);
    bytes += size;
  }

  OpBuilder b(grad.getContext());
  for (ArrayRef<Value> bucket : buckets) {
    b.setInsertionPointAfter(bucket.back().getDefiningOp());
    auto reduce = b.create<AllReduceOp>(bucket.back().getLoc(),
                                        AllReduceKind::mean, bucket);
    for (auto [before, after] : llvm::zip(bucket, reduce.getResults()))
      Value(before).replaceUsesWithIf(
          after, [&](OpOperand &use) { return use.getOwner() == ret; });
  }
}

struct KilnDataParallelPass
    : public kiln::impl::KilnDataParallelBase<KilnDataParallelPass> {
  using Base::Base;
  void runOnOperation() override {
    if (bucketBytes < 1) {
      getOperation().emitError("kiln-data-parallel: bucket-bytes must be >= 1");
      return signalPassFailure();
    }
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (auto step = func->getAttrOfType<StringAttr>(attrs::step))
        if (step.getValue() == "grad")
          averageGradients(func, bucketBytes);
  }
};

} // namespace
