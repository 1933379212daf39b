//===- Gradients.cpp - the gradient rule of every differentiable op -------===//
//
// One function `gradient(OpTy, ...)` per op: given g, the gradient of the
// op's result, it builds the gradient of each operand. Rules reuse the
// forward result where the math allows (exp, tanh, sigmoid, softmax).
// Broadcast operands get their gradient summed back to their own shape.
// The rules are attached to the ops as DifferentiableOpInterface external
// models in `attachGradientRules`; an op not listed there has no rule.
//
//===----------------------------------------------------------------------===//

#include "ir/KilnDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"

using namespace mlir;
using namespace kiln;

namespace {

using Grads = SmallVectorImpl<Value>;

RankedTensorType tensorOf(Value v) {
  return llvm::cast<RankedTensorType>(v.getType());
}

/// A rank-0 constant of `element`.
Value scalar(OpBuilder &b, Location loc, Type element, double value) {
  auto type = RankedTensorType::get({}, element);
  return b.create<ConstantOp>(
      loc, DenseElementsAttr::get(type, b.getFloatAttr(element, value)));
}

Value scalarLike(OpBuilder &b, Location loc, Value like, double value) {
  return scalar(b, loc, tensorOf(like).getElementType(), value);
}

/// Sums `g` over the dimensions along which `target` was broadcast, so the
/// result has the type of `target`.
Value sumToShape(OpBuilder &b, Location loc, Value g, Type target) {
  RankedTensorType from = tensorOf(g),
                   to = llvm::cast<RankedTensorType>(target);
  if (from.getShape() == to.getShape())
    return g;
  // Leading dimensions `target` does not have: sum them away.
  int64_t extra = from.getRank() - to.getRank();
  if (extra > 0) {
    SmallVector<int64_t> axes;
    for (int64_t i = 0; i < extra; ++i)
      axes.push_back(i);
    g = b.create<ReduceSumOp>(loc, g, b.getDenseI64ArrayAttr(axes), UnitAttr());
    from = tensorOf(g);
  }
  // Dimensions of size 1 in `target`: sum them, keeping the dimension.
  SmallVector<int64_t> axes;
  for (int64_t i = 0; i < to.getRank(); ++i)
    if (to.getDimSize(i) == 1 && from.getDimSize(i) != 1)
      axes.push_back(i);
  if (!axes.empty())
    g = b.create<ReduceSumOp>(loc, g, b.getDenseI64ArrayAttr(axes),
                              b.getUnitAttr());
  return g;
}

/// The reshape target of `type`: its sizes, with -1 for the one dynamic
/// dimension. Fails (with an error at `loc`) for more than one.
FailureOr<SmallVector<int64_t>> reshapeTarget(Location loc,
                                              RankedTensorType type) {
  SmallVector<int64_t> shape;
  int dynamic = 0;
  for (int64_t d : type.getShape()) {
    shape.push_back(ShapedType::isDynamic(d) ? -1 : d);
    dynamic += ShapedType::isDynamic(d);
  }
  if (dynamic > 1)
    return emitError(loc, "cannot differentiate through a shape with more "
                          "than one dynamic dimension: ")
           << type;
  return shape;
}

/// Reinserts the reduced `axes` of `input` as size-1 dimensions of `g`, the
/// gradient of a reduction without keepdims.
FailureOr<Value> keepDims(OpBuilder &b, Location loc, Value g,
                          RankedTensorType input, ArrayRef<int64_t> axes,
                          bool keepdims) {
  if (keepdims)
    return g;
  SmallVector<int64_t> shape(input.getShape());
  for (int64_t i = 0; i < input.getRank(); ++i)
    if (axes.empty() || llvm::is_contained(axes, i) ||
        llvm::is_contained(axes, i - input.getRank()))
      shape[i] = 1;
  FailureOr<SmallVector<int64_t>> target =
      reshapeTarget(loc, input.clone(shape));
  if (failed(target))
    return failure();
  return b.create<ReshapeOp>(loc, g, b.getDenseI64ArrayAttr(*target))
      .getResult();
}

Value matmul(OpBuilder &b, Location loc, Value x, Value y, bool tx, bool ty) {
  return b.create<MatmulOp>(loc, x, y, tx ? b.getUnitAttr() : UnitAttr(),
                            ty ? b.getUnitAttr() : UnitAttr());
}

/// `condition ? g : 0` elementwise.
Value maskedGrad(OpBuilder &b, Location loc, Value condition, Value g) {
  return b.create<SelectOp>(loc, condition, g, scalarLike(b, loc, g, 0.0));
}

Value compare(OpBuilder &b, Location loc, CmpPredicate predicate, Value x,
              Value y) {
  return b.create<CmpOp>(loc, CmpPredicateAttr::get(b.getContext(), predicate),
                         x, y);
}

//===----------------------------------------------------------------------===//
// Elementwise unary
//===----------------------------------------------------------------------===//

LogicalResult gradient(NegOp op, OpBuilder &b, Value g, Grads &grads) {
  grads.push_back(b.create<NegOp>(op.getLoc(), g));
  return success();
}

LogicalResult gradient(AbsOp op, OpBuilder &b, Value g, Grads &grads) {
  Location loc = op.getLoc();
  Value x = op.getInput(), zero = scalarLike(b, loc, x, 0.0);
  Value negative =
      b.create<SelectOp>(loc, compare(b, loc, CmpPredicate::lt, x, zero),
                         b.create<NegOp>(loc, g), scalarLike(b, loc, g, 0.0));
  grads.push_back(b.create<SelectOp>(
      loc, compare(b, loc, CmpPredicate::gt, x, zero), g, negative));
  return success();
}

LogicalResult gradient(ExpOp op, OpBuilder &b, Value g, Grads &grads) {
  grads.push_back(b.create<MulOp>(op.getLoc(), g, op.getResult()));
  return success();
}

LogicalResult gradient(LogOp op, OpBuilder &b, Value g, Grads &grads) {
  grads.push_back(b.create<DivOp>(op.getLoc(), g, op.getInput()));
  return success();
}

LogicalResult gradient(TanhOp op, OpBuilder &b, Value g, Grads &grads) {
  Location loc = op.getLoc();
  Value y = op.getResult();
  Value slope = b.create<SubOp>(loc, scalarLike(b, loc, y, 1.0),
                                b.create<MulOp>(loc, y, y));
  grads.push_back(b.create<MulOp>(loc, g, slope));
  return success();
}

LogicalResult gradient(SigmoidOp op, OpBuilder &b, Value g, Grads &grads) {
  Location loc = op.getLoc();
  Value y = op.getResult();
  Value slope = b.create<MulOp>(
      loc, y, b.create<SubOp>(loc, scalarLike(b, loc, y, 1.0), y));
  grads.push_back(b.create<MulOp>(loc, g, slope));
  return success();
}

LogicalResult gradient(ReluOp op, OpBuilder &b, Value g, Grads &grads) {
  // relu(x) > 0 exactly where x > 0: the mask reads the result, which the
  // next layer reads anyway, so the input need not be kept for the
  // backward pass.
  Location loc = op.getLoc();
  Value y = op.getResult();
  grads.push_back(maskedGrad(
      b, loc, compare(b, loc, CmpPredicate::gt, y, scalarLike(b, loc, y, 0.0)),
      g));
  return success();
}

LogicalResult gradient(SqrtOp op, OpBuilder &b, Value g, Grads &grads) {
  Location loc = op.getLoc();
  Value half = b.create<MulOp>(loc, g, scalarLike(b, loc, g, 0.5));
  grads.push_back(b.create<DivOp>(loc, half, op.getResult()));
  return success();
}

LogicalResult gradient(RsqrtOp op, OpBuilder &b, Value g, Grads &grads) {
  // d/dx x^(-1/2) = -1/2 y^3.
  Location loc = op.getLoc();
  Value y = op.getResult();
  Value cube = b.create<MulOp>(loc, b.create<MulOp>(loc, y, y), y);
  Value slope = b.create<MulOp>(loc, cube, scalarLike(b, loc, y, -0.5));
  grads.push_back(b.create<MulOp>(loc, g, slope));
  return success();
}

LogicalResult gradient(CosOp op, OpBuilder &b, Value g, Grads &grads) {
  Location loc = op.getLoc();
  Value slope = b.create<SinOp>(loc, op.getInput());
  grads.push_back(b.create<NegOp>(loc, b.create<MulOp>(loc, g, slope)));
  return success();
}

LogicalResult gradient(SinOp op, OpBuilder &b, Value g, Grads &grads) {
  Location loc = op.getLoc();
  Value slope = b.create<CosOp>(loc, op.getInput());
  grads.push_back(b.create<MulOp>(loc, g, slope));
  return success();
}

LogicalResult gradient(FloorOp op, OpBuilder &, Value, Grads &grads) {
  grads.push_back(Value()); // zero almost everywhere
  return success();
}

LogicalResult gradient(GeluOp op, OpBuilder &b, Value g, Grads &grads) {
  grads.push_back(b.create<GeluGradOp>(op.getLoc(), op.getInput(), g,
                                       op.getApproximateAttr()));
  return success();
}

LogicalResult gradient(CastOp op, OpBuilder &b, Value g, Grads &grads) {
  Type from = tensorOf(op.getInput()).getElementType();
  if (!llvm::isa<FloatType>(from) ||
      !llvm::isa<FloatType>(tensorOf(op.getResult()).getElementType())) {
    grads.push_back(Value()); // integers carry no gradient
    return success();
  }
  grads.push_back(b.create<CastOp>(op.getLoc(), g, TypeAttr::get(from)));
  return success();
}

LogicalResult gradient(DropoutOp op, OpBuilder &b, Value g, Grads &grads) {
  // The same (rate, stream) regenerates the same mask and scale.
  grads.push_back(b.create<DropoutOp>(op.getLoc(), g, op.getRateAttr(),
                                      op.getStreamAttr()));
  return success();
}

//===----------------------------------------------------------------------===//
// Elementwise binary
//===----------------------------------------------------------------------===//

LogicalResult gradient(AddOp op, OpBuilder &b, Value g, Grads &grads) {
  Location loc = op.getLoc();
  grads.push_back(sumToShape(b, loc, g, op.getLhs().getType()));
  grads.push_back(sumToShape(b, loc, g, op.getRhs().getType()));
  return success();
}

LogicalResult gradient(SubOp op, OpBuilder &b, Value g, Grads &grads) {
  Location loc = op.getLoc();
  grads.push_back(sumToShape(b, loc, g, op.getLhs().getType()));
  grads.push_back(
      sumToShape(b, loc, b.create<NegOp>(loc, g), op.getRhs().getType()));
  return success();
}

LogicalResult gradient(MulOp op, OpBuilder &b, Value g, Grads &grads) {
  Location loc = op.getLoc();
  Value x = op.getLhs(), y = op.getRhs();
  grads.push_back(sumToShape(b, loc, b.create<MulOp>(loc, g, y), x.getType()));
  grads.push_back(sumToShape(b, loc, b.create<MulOp>(loc, g, x), y.getType()));
  return success();
}

LogicalResult gradient(DivOp op, OpBuilder &b, Value g, Grads &grads) {
  // d(x/y)/dx = 1/y; d(x/y)/dy = -(x/y)/y.
  Location loc = op.getLoc();
  Value x = op.getLhs(), y = op.getRhs();
  Value dx = b.create<DivOp>(loc, g, y);
  Value dy = b.create<NegOp>(loc, b.create<MulOp>(loc, dx, op.getResult()));
  grads.push_back(sumToShape(b, loc, dx, x.getType()));
  grads.push_back(sumToShape(b, loc, dy, y.getType()));
  return success();
}

/// max and min: the gradient goes to the operand that was chosen (the lhs
/// on ties).
LogicalResult extremumGradient(Operation *op, CmpPredicate lhsWins,
                               OpBuilder &b, Value g, Grads &grads) {
  Location loc = op->getLoc();
  Value x = op->getOperand(0), y = op->getOperand(1);
  Value chooseLhs = compare(b, loc, lhsWins, x, y);
  Value zero = scalarLike(b, loc, g, 0.0);
  grads.push_back(sumToShape(
      b, loc, b.create<SelectOp>(loc, chooseLhs, g, zero), x.getType()));
  grads.push_back(sumToShape(
      b, loc, b.create<SelectOp>(loc, chooseLhs, zero, g), y.getType()));
  return success();
}

LogicalResult gradient(MaxOp op, OpBuilder &b, Value g, Grads &grads) {
  return extremumGradient(op, CmpPredicate::ge, b, g, grads);
}

LogicalResult gradient(MinOp op, OpBuilder &b, Value g, Grads &grads) {
  return extremumGradient(op, CmpPredicate::le, b, g, grads);
}

LogicalResult gradient(PowOp op, OpBuilder &b, Value g, Grads &grads) {
  // d(x^y)/dx = y x^(y-1); d(x^y)/dy = x^y log(x).
  Location loc = op.getLoc();
  Value x = op.getLhs(), y = op.getRhs();
  Value ym1 = b.create<SubOp>(loc, y, scalarLike(b, loc, y, 1.0));
  Value dx = b.create<MulOp>(
      loc, g, b.create<MulOp>(loc, y, b.create<PowOp>(loc, x, ym1)));
  Value dy = b.create<MulOp>(
      loc, g, b.create<MulOp>(loc, op.getResult(), b.create<LogOp>(loc, x)));
  grads.push_back(sumToShape(b, loc, dx, x.getType()));
  grads.push_back(sumToShape(b, loc, dy, y.getType()));
  return success();
}

LogicalResult gradient(SelectOp op, OpBuilder &b, Value g, Grads &grads) {
  Location loc = op.getLoc();
  Value c = op.getCondition();
  Value zero = scalarLike(b, loc, g, 0.0);
  grads.push_back(Value());
  grads.push_back(sumToShape(b, loc, b.create<SelectOp>(loc, c, g, zero),
                             op.getTrueValue().getType()));
  grads.push_back(sumToShape(b, loc, b.create<SelectOp>(loc, c, zero, g),
                             op.getFalseValue().getType()));
  return success();
}

//===----------------------------------------------------------------------===//
// Matmul and layout
//===----------------------------------------------------------------------===//

LogicalResult gradient(MatmulOp op, OpBuilder &b, Value g, Grads &grads) {
  // C = op(A) op(B). Each case keeps the result in the operand's stored
  // layout, so no transpose is materialized:
  //   plain:      dA = g B^T        dB = A^T g
  //   rhs^T:      dA = g B          dB = g^T A
  //   lhs^T:      dA = B g^T        dB = A g
  //   both^T:     dA = B^T g^T      dB = g^T A^T
  Location loc = op.getLoc();
  Value a = op.getLhs(), bv = op.getRhs();
  bool ta = op.getTransposeLhs(), tb = op.getTransposeRhs();
  Value da, db;
  // A weight broadcast over batches (a linear layer over a sequence: B a
  // matrix, A not transposed, with batch dimensions): dB is a sum over the
  // batches of A_b^T g_b, which is one product over all of their rows,
  // A and g read as [rows, K] and [rows, N] (reshapes, which cost no
  // copy), instead of a product per batch and a reduction.
  RankedTensorType aType = tensorOf(a), gType = tensorOf(g);
  // Whether `type` reshapes to [-1, last]: a static last dimension, at
  // most one dynamic one before it.
  auto flattens = [](RankedTensorType type) {
    return !ShapedType::isDynamic(type.getShape().back()) &&
           llvm::count_if(type.getShape().drop_back(), ShapedType::isDynamic) <=
               1;
  };
  auto rows = [&](Value v, RankedTensorType type) -> Value {
    return b.create<ReshapeOp>(
        loc, v, b.getDenseI64ArrayAttr({-1, type.getShape().back()}));
  };
  if (!ta && aType.getRank() > 2 && tensorOf(bv).getRank() == 2 &&
      flattens(aType) && flattens(gType)) {
    Value aRows = rows(a, aType), gRows = rows(g, gType);
    db = tb ? matmul(b, loc, gRows, aRows, true, false)
            : matmul(b, loc, aRows, gRows, true, false);
  }
  if (db) {
    da = matmul(b, loc, g, bv, false, !tb);
  } else if (!ta && !tb) {
    da = matmul(b, loc, g, bv, false, true);
    db = matmul(b, loc, a, g, true, false);
  } else if (!ta && tb) {
    da = matmul(b, loc, g, bv, false, false);
    db = matmul(b, loc, g, a, true, false);
  } else if (ta && !tb) {
    da = matmul(b, loc, bv, g, false, true);
    db = matmul(b, loc, a, g, false, false);
  } else {
    da = matmul(b, loc, bv, g, true, true);
    db = matmul(b, loc, g, a, true, true);
  }
  grads.push_back(sumToShape(b, loc, da, a.getType()));
  grads.push_back(sumToShape(b, loc, db, bv.getType()));
  return success();
}

LogicalResult gradient(TransposeOp op, OpBuilder &b, Value g, Grads &grads) {
  ArrayRef<int64_t> perm = op.getPermutation();
  SmallVector<int64_t> inverse(perm.size());
  for (auto [i, p] : llvm::enumerate(perm))
    inverse[p] = static_cast<int64_t>(i);
  grads.push_back(
      b.create<TransposeOp>(op.getLoc(), g, b.getDenseI64ArrayAttr(inverse)));
  return success();
}

LogicalResult gradient(ReshapeOp op, OpBuilder &b, Value g, Grads &grads) {
  FailureOr<SmallVector<int64_t>> target =
      reshapeTarget(op.getLoc(), tensorOf(op.getInput()));
  if (failed(target))
    return failure();
  grads.push_back(
      b.create<ReshapeOp>(op.getLoc(), g, b.getDenseI64ArrayAttr(*target)));
  return success();
}

LogicalResult gradient(BroadcastOp op, OpBuilder &b, Value g, Grads &grads) {
  grads.push_back(sumToShape(b, op.getLoc(), g, op.getInput().getType()));
  grads.push_back(Value()); // only the shape of `like` is used
  return success();
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

LogicalResult gradient(ReduceSumOp op, OpBuilder &b, Value g, Grads &grads) {
  Location loc = op.getLoc();
  Value x = op.getInput();
  FailureOr<Value> kept =
      keepDims(b, loc, g, tensorOf(x), op.getAxes(), op.getKeepdims());
  if (failed(kept))
    return failure();
  grads.push_back(b.create<BroadcastOp>(loc, *kept, x));
  return success();
}

LogicalResult gradient(ReduceMeanOp op, OpBuilder &b, Value g, Grads &grads) {
  Location loc = op.getLoc();
  Value x = op.getInput();
  FailureOr<Value> kept =
      keepDims(b, loc, g, tensorOf(x), op.getAxes(), op.getKeepdims());
  if (failed(kept))
    return failure();
  Value count = b.create<CountOp>(loc, x, op.getAxesAttr());
  grads.push_back(
      b.create<DivOp>(loc, b.create<BroadcastOp>(loc, *kept, x), count));
  return success();
}

LogicalResult gradient(ReduceMaxOp op, OpBuilder &b, Value g, Grads &grads) {
  // The gradient flows to every element equal to the maximum.
  Location loc = op.getLoc();
  Value x = op.getInput();
  FailureOr<Value> keptG =
      keepDims(b, loc, g, tensorOf(x), op.getAxes(), op.getKeepdims());
  FailureOr<Value> keptY = keepDims(b, loc, op.getResult(), tensorOf(x),
                                    op.getAxes(), op.getKeepdims());
  if (failed(keptG) || failed(keptY))
    return failure();
  Value isMax = compare(b, loc, CmpPredicate::eq, x,
                        b.create<BroadcastOp>(loc, *keptY, x));
  grads.push_back(
      maskedGrad(b, loc, isMax, b.create<BroadcastOp>(loc, *keptG, x)));
  return success();
}

LogicalResult gradient(CountOp op, OpBuilder &, Value, Grads &grads) {
  grads.push_back(Value()); // depends on the shape only
  return success();
}

//===----------------------------------------------------------------------===//
// Normalization and losses
//===----------------------------------------------------------------------===//

LogicalResult gradient(SoftmaxOp op, OpBuilder &b, Value g, Grads &grads) {
  // dx = y (g - sum(g y)).
  Location loc = op.getLoc();
  Value y = op.getResult();
  auto axis = b.getDenseI64ArrayAttr({static_cast<int64_t>(op.getAxis())});
  Value dot = b.create<ReduceSumOp>(loc, b.create<MulOp>(loc, g, y), axis,
                                    b.getUnitAttr());
  grads.push_back(b.create<MulOp>(loc, y, b.create<SubOp>(loc, g, dot)));
  return success();
}

LogicalResult gradient(LogSoftmaxOp op, OpBuilder &b, Value g, Grads &grads) {
  // dx = g - exp(y) sum(g).
  Location loc = op.getLoc();
  auto axis = b.getDenseI64ArrayAttr({static_cast<int64_t>(op.getAxis())});
  Value total = b.create<ReduceSumOp>(loc, g, axis, b.getUnitAttr());
  Value probabilities = b.create<ExpOp>(loc, op.getResult());
  grads.push_back(
      b.create<SubOp>(loc, g, b.create<MulOp>(loc, probabilities, total)));
  return success();
}

LogicalResult gradient(CrossEntropyOp op, OpBuilder &b, Value g, Grads &grads) {
  grads.push_back(b.create<CrossEntropyGradOp>(op.getLoc(), op.getLogits(),
                                               op.getLabels(), g));
  grads.push_back(Value());
  return success();
}

LogicalResult gradient(LayerNormOp op, OpBuilder &b, Value g, Grads &grads) {
  // With xhat = (x - mean) rstd over the last dimension:
  //   dbias = sum(g), dweight = sum(g xhat),
  //   dx = rstd (g w - mean(g w) - xhat mean(g w xhat)).
  Location loc = op.getLoc();
  Value x = op.getInput(), w = op.getWeight();
  auto last = b.getDenseI64ArrayAttr({-1});
  auto keep = b.getUnitAttr();
  Value mean = b.create<ReduceMeanOp>(loc, x, last, keep);
  Value centered = b.create<SubOp>(loc, x, mean);
  Value variance = b.create<ReduceMeanOp>(
      loc, b.create<MulOp>(loc, centered, centered), last, keep);
  Value epsilon = scalar(b, loc, tensorOf(x).getElementType(),
                         op.getEpsilon().convertToDouble());
  Value rstd = b.create<RsqrtOp>(loc, b.create<AddOp>(loc, variance, epsilon));
  Value xhat = b.create<MulOp>(loc, centered, rstd);
  Value gw = b.create<MulOp>(loc, g, w);
  Value meanGw = b.create<ReduceMeanOp>(loc, gw, last, keep);
  Value meanGwXhat =
      b.create<ReduceMeanOp>(loc, b.create<MulOp>(loc, gw, xhat), last, keep);
  Value inner = b.create<SubOp>(loc, b.create<SubOp>(loc, gw, meanGw),
                                b.create<MulOp>(loc, xhat, meanGwXhat));
  grads.push_back(b.create<MulOp>(loc, rstd, inner));
  grads.push_back(
      sumToShape(b, loc, b.create<MulOp>(loc, g, xhat), w.getType()));
  grads.push_back(sumToShape(b, loc, g, op.getBias().getType()));
  return success();
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

LogicalResult gradient(AttentionOp op, OpBuilder &b, Value g, Grads &grads) {
  // The flash-attention backward: with delta_i = rowsum(g_i * o_i), the
  // probabilities are recomputed from the saved log-sum-exp inside two
  // kernels, one over query tiles (dq) and one over key tiles (dk, dv).
  // They give the gradients over the broadcast batch dimensions; a
  // broadcast operand sums them back.
  Location loc = op.getLoc();
  Value q = op.getQuery(), k = op.getKey(), v = op.getValue();
  Value delta =
      b.create<ReduceSumOp>(loc, b.create<MulOp>(loc, g, op.getResult()),
                            b.getDenseI64ArrayAttr({-1}), UnitAttr());
  Value dq = b.create<AttentionGradQOp>(loc, q, k, v, g, op.getLse(), delta,
                                        op.getCausalAttr(), op.getScaleAttr());
  auto kv = b.create<AttentionGradKvOp>(loc, q, k, v, g, op.getLse(), delta,
                                        op.getCausalAttr(), op.getScaleAttr());
  grads.push_back(sumToShape(b, loc, dq, q.getType()));
  grads.push_back(sumToShape(b, loc, kv.getKeyGrad(), k.getType()));
  grads.push_back(sumToShape(b, loc, kv.getValueGrad(), v.getType()));
  return success();
}

//===----------------------------------------------------------------------===//
// Convolution, pooling, embedding
//===----------------------------------------------------------------------===//

LogicalResult gradient(Conv2dOp op, OpBuilder &b, Value g, Grads &grads) {
  Location loc = op.getLoc();
  Value x = op.getInput(), w = op.getWeight();
  grads.push_back(b.create<Conv2dGradInputOp>(loc, g, w, x, op.getStrideAttr(),
                                              op.getPaddingAttr()));
  grads.push_back(b.create<Conv2dGradWeightOp>(loc, x, g, w, op.getStrideAttr(),
                                               op.getPaddingAttr()));
  return success();
}

LogicalResult gradient(MaxPool2dOp op, OpBuilder &b, Value g, Grads &grads) {
  grads.push_back(b.create<MaxPool2dGradOp>(
      op.getLoc(), op.getInput(), g, op.getKernelAttr(), op.getStrideAttr(),
      op.getPaddingAttr()));
  return success();
}

LogicalResult gradient(AvgPool2dOp op, OpBuilder &b, Value g, Grads &grads) {
  grads.push_back(b.create<AvgPool2dGradOp>(
      op.getLoc(), g, op.getInput(), op.getKernelAttr(), op.getStrideAttr(),
      op.getPaddingAttr()));
  return success();
}

LogicalResult gradient(EmbeddingOp op, OpBuilder &b, Value g, Grads &grads) {
  grads.push_back(b.create<EmbeddingGradOp>(op.getLoc(), op.getIndices(), g,
                                            op.getWeight()));
  grads.push_back(Value()); // integer indices carry no gradient
  return success();
}

/// Attaches `gradient(OpTy, ...)` to OpTy as its DifferentiableOpInterface.
template <typename OpTy>
struct GradientRule
    : DifferentiableOpInterface::ExternalModel<GradientRule<OpTy>, OpTy> {
  LogicalResult buildGradients(Operation *op, OpBuilder &b, Value g,
                               SmallVectorImpl<Value> &grads) const {
    return gradient(llvm::cast<OpTy>(op), b, g, grads);
  }
};

template <typename... OpTys> void attach(MLIRContext &context) {
  (OpTys::template attachInterface<GradientRule<OpTys>>(context), ...);
}

} // namespace

void kiln::attachGradientRules(MLIRContext &context) {
  attach<NegOp, AbsOp, ExpOp, LogOp, TanhOp, SigmoidOp, ReluOp, SqrtOp, RsqrtOp,
         CosOp, SinOp, FloorOp, GeluOp, CastOp, DropoutOp, AddOp, SubOp, MulOp,
         DivOp, MaxOp, MinOp, PowOp, SelectOp, MatmulOp, TransposeOp, ReshapeOp,
         BroadcastOp, ReduceSumOp, ReduceMeanOp, ReduceMaxOp, CountOp,
         SoftmaxOp, LogSoftmaxOp, CrossEntropyOp, LayerNormOp, AttentionOp,
         Conv2dOp, MaxPool2dOp, AvgPool2dOp, EmbeddingOp>(context);
}
