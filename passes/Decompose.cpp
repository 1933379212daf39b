//===- Decompose.cpp - lower composite ops to primitives ------------------===//
//
// Composites keep a model's IR close to what the user wrote; the rest of the
// compiler sees only primitives. Each composite has one rewrite here.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "kiln-decompose"

namespace kiln {
#define GEN_PASS_DEF_KILNDECOMPOSE
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// linear(x, W, b) = matmul(x, W^T) + b, with the transpose folded into the
/// matmul.
struct DecomposeLinear : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value x = op.getInput();
    auto xType = llvm::cast<RankedTensorType>(x.getType());
    // matmul needs a matrix: treat a single vector as one row. The -1 keeps
    // a dynamic feature size expressible.
    bool vector = xType.getRank() == 1;
    if (vector)
      x = rewriter.create<ReshapeOp>(loc, x,
                                     rewriter.getDenseI64ArrayAttr({1, -1}));
    Value y =
        rewriter.create<MatmulOp>(loc, x, op.getWeight(),
                                  /*transpose_lhs=*/UnitAttr(),
                                  /*transpose_rhs=*/rewriter.getUnitAttr());
    if (vector)
      y = rewriter.create<ReshapeOp>(loc, y,
                                     rewriter.getDenseI64ArrayAttr({-1}));
    if (Value bias = op.getBias())
      y = rewriter.create<AddOp>(loc, y, bias);
    // The declared type of the linear may know sizes that its operands do
    // not (the verifier accepts any compatible type); keep it so that the
    // users of the result see the same type as before.
    y.setType(op.getType());
    rewriter.replaceOp(op, y);
    return success();
  }
};

/// accuracy(logits, labels) = mean(cast(argmax(logits, -1) == labels)).
struct DecomposeAccuracy : OpRewritePattern<AccuracyOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AccuracyOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value predicted = rewriter.create<ArgmaxOp>(
        loc, op.getLogits(), rewriter.getI64IntegerAttr(-1), UnitAttr());
    Type labelElement =
        llvm::cast<RankedTensorType>(op.getLabels().getType()).getElementType();
    if (labelElement != rewriter.getI32Type())
      predicted = rewriter.create<CastOp>(loc, predicted, labelElement);
    Value correct = rewriter.create<CmpOp>(
        loc, CmpPredicateAttr::get(getContext(), CmpPredicate::eq), predicted,
        op.getLabels());
    Type floatElement =
        llvm::cast<RankedTensorType>(op.getType()).getElementType();
    Value asFloat = rewriter.create<CastOp>(loc, correct, floatElement);
    rewriter.replaceOpWithNewOp<ReduceMeanOp>(
        op, asFloat, /*axes=*/rewriter.getDenseI64ArrayAttr({}),
        /*keepdims=*/UnitAttr());
    return success();
  }
};

struct DecomposePass : kiln::impl::KilnDecomposeBase<DecomposePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<DecomposeLinear, DecomposeAccuracy>(&getContext());
    // Only the composites and what replaces them are visited, so nothing
    // else in the model is folded or erased.
    SmallVector<Operation *> composites;
    getOperation().walk([&](Operation *op) {
      if (llvm::isa<LinearOp, AccuracyOp>(op))
        composites.push_back(op);
    });
    GreedyRewriteConfig config;
    config.strictMode = GreedyRewriteStrictness::ExistingAndNewOps;
    if (failed(applyOpPatternsAndFold(composites, std::move(patterns), config)))
      signalPassFailure();
  }
};

} // namespace
