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

/// attention(q, k, v) = softmax(mask(scale * q @ k^T)) @ v, the mask being
/// `select(iota dim 0 >= iota dim 1, s, lowest)` when causal. The lowest
/// finite value rather than -inf keeps every intermediate finite; its
/// exponential is 0 like that of -inf, and a causal row always sees its own
/// key, so no row is fully masked.
struct DecomposeAttention : OpRewritePattern<AttentionOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(AttentionOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto type = llvm::cast<RankedTensorType>(op.getType());
    auto element = llvm::cast<FloatType>(type.getElementType());
    auto scalar = [&](const APFloat &value) -> Value {
      return rewriter.create<ConstantOp>(
          loc, DenseElementsAttr::get(RankedTensorType::get({}, element),
                                      FloatAttr::get(element, value)));
    };
    Value scores =
        rewriter.create<MatmulOp>(loc, op.getQuery(), op.getKey(),
                                  /*transpose_lhs=*/UnitAttr(),
                                  /*transpose_rhs=*/rewriter.getUnitAttr());
    APFloat scale(op.getScale().convertToDouble());
    bool lost = false;
    scale.convert(element.getFloatSemantics(), APFloat::rmNearestTiesToEven,
                  &lost);
    scores = rewriter.create<MulOp>(loc, scores, scalar(scale));
    if (op.getCausal()) {
      ArrayRef<int64_t> shape =
          llvm::cast<RankedTensorType>(scores.getType()).getShape();
      SmallVector<int64_t> square(shape.take_back(2));
      if (ShapedType::isDynamic(square[0]) || ShapedType::isDynamic(square[1]))
        return rewriter.notifyMatchFailure(op, "dynamic sequence lengths");
      Value rows =
          rewriter.create<IotaOp>(loc, rewriter.getDenseI64ArrayAttr(square),
                                  rewriter.getI64IntegerAttr(0));
      Value cols =
          rewriter.create<IotaOp>(loc, rewriter.getDenseI64ArrayAttr(square),
                                  rewriter.getI64IntegerAttr(1));
      Value visible = rewriter.create<CmpOp>(
          loc, CmpPredicateAttr::get(getContext(), CmpPredicate::ge), rows,
          cols);
      scores = rewriter.create<SelectOp>(
          loc, visible, scores,
          scalar(APFloat::getLargest(element.getFloatSemantics(),
                                     /*Negative=*/true)));
    }
    Value probabilities =
        rewriter.create<SoftmaxOp>(loc, scores, rewriter.getI64IntegerAttr(-1));
    Value result = rewriter.create<MatmulOp>(loc, probabilities, op.getValue(),
                                             /*transpose_lhs=*/UnitAttr(),
                                             /*transpose_rhs=*/UnitAttr());
    result.setType(op.getType());
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct DecomposePass : kiln::impl::KilnDecomposeBase<DecomposePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<DecomposeLinear, DecomposeAccuracy, DecomposeAttention>(
        &getContext());
    // Only the composites and what replaces them are visited, so nothing
    // else in the model is folded or erased.
    SmallVector<Operation *> composites;
    bool ok = true;
    getOperation().walk([&](Operation *op) {
      if (llvm::isa<LinearOp, AccuracyOp, AttentionOp>(op))
        composites.push_back(op);
      // The causal mask is an iota of static sizes.
      auto attention = llvm::dyn_cast<AttentionOp>(op);
      if (!attention || !attention.getCausal())
        return;
      auto shape = llvm::cast<RankedTensorType>(attention.getType()).getShape();
      auto keys = llvm::cast<RankedTensorType>(attention.getKey().getType());
      if (ShapedType::isDynamic(shape[shape.size() - 2]) ||
          keys.isDynamicDim(keys.getRank() - 2)) {
        attention.emitError("causal attention needs fixed query and key "
                            "lengths to build its mask; bind them with "
                            "--bind");
        ok = false;
      }
    });
    if (!ok)
      return signalPassFailure();
    GreedyRewriteConfig config;
    config.strictMode = GreedyRewriteStrictness::ExistingAndNewOps;
    if (failed(applyOpPatternsAndFold(composites, std::move(patterns), config)))
      signalPassFailure();
  }
};

} // namespace
