//===- KilnOps.cpp - shape functions, verifiers and folders of kiln ops ---===//
//
// Each op's inferReturnTypes is its shape rule. It runs when an op is built
// (so the frontend reports shape errors at the source location), when an op
// is verified, and in the shape inference pass.
//
//===----------------------------------------------------------------------===//

#include "ir/KilnDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/ADT/SmallSet.h"

#include <cmath>

using namespace mlir;
using namespace kiln;

namespace {

/// The op's name as the model language spells it: `kiln.add` -> `add`.
template <typename OpTy> StringRef userName() {
  return OpTy::getOperationName().drop_front(strlen("kiln."));
}

RankedTensorType tensorOf(Value value) {
  return llvm::cast<RankedTensorType>(value.getType());
}

/// Emits `'op' message` at `loc` when there is one and returns failure.
template <typename OpTy, typename... Args>
LogicalResult fail(std::optional<Location> loc, Args &&...args) {
  return emitOptionalError(loc, "'", userName<OpTy>(), "' ",
                           std::forward<Args>(args)...);
}

/// The rule shared by every elementwise op with broadcasting.
template <typename OpTy>
LogicalResult
inferBroadcast(std::optional<Location> loc, ArrayRef<RankedTensorType> operands,
               Type resultElement, SmallVectorImpl<Type> &results) {
  SmallVector<int64_t> shape;
  for (auto [i, operand] : llvm::enumerate(operands)) {
    if (i == 0) {
      shape.assign(operand.getShape().begin(), operand.getShape().end());
      continue;
    }
    auto merged = broadcastShapes(shape, operand.getShape());
    if (!merged)
      return fail<OpTy>(loc, "cannot broadcast shapes ", formatShape(shape),
                        " and ", formatShape(operand.getShape()));
    shape = std::move(*merged);
  }
  results.push_back(RankedTensorType::get(shape, resultElement));
  return success();
}

template <typename OpTy>
LogicalResult inferBinary(std::optional<Location> loc, Value lhs, Value rhs,
                          Type resultElement, SmallVectorImpl<Type> &results) {
  RankedTensorType l = tensorOf(lhs), r = tensorOf(rhs);
  if (l.getElementType() != r.getElementType())
    return fail<OpTy>(loc, "operands have different element types ",
                      l.getElementType(), " and ", r.getElementType());
  if (!resultElement)
    resultElement = l.getElementType();
  return inferBroadcast<OpTy>(loc, {l, r}, resultElement, results);
}

/// Normalizes and checks a list of reduction axes.
template <typename OpTy>
FailureOr<SmallVector<int64_t>> normalizeAxes(std::optional<Location> loc,
                                              ArrayRef<int64_t> axes,
                                              int64_t rank) {
  SmallVector<int64_t> result;
  llvm::SmallSet<int64_t, 4> seen;
  for (int64_t axis : axes) {
    std::optional<int64_t> normalized = normalizeAxis(axis, rank);
    if (!normalized)
      return fail<OpTy>(loc, "axis ", axis, " is out of range for rank ", rank);
    if (!seen.insert(*normalized).second)
      return fail<OpTy>(loc, "axis ", axis, " is repeated");
    result.push_back(*normalized);
  }
  return result;
}

/// Checks an attribute that holds one value per spatial dimension.
template <typename OpTy>
LogicalResult checkPair(std::optional<Location> loc, StringRef name,
                        ArrayRef<int64_t> values, int64_t minimum) {
  if (values.size() != 2)
    return fail<OpTy>(loc, name, " needs 2 values, got ", values.size());
  for (int64_t v : values)
    if (v < minimum)
      return fail<OpTy>(loc, name, " must be at least ", minimum, ", got ", v);
  return success();
}

/// The output size of a sliding window; kDynamic stays dynamic.
int64_t windowOutput(int64_t size, int64_t kernel, int64_t stride,
                     int64_t padding) {
  if (ShapedType::isDynamic(size))
    return ShapedType::kDynamic;
  return (size + 2 * padding - kernel) / stride + 1;
}

/// Label shape rule shared by cross_entropy and accuracy: logits [..., C],
/// labels [...], scalar result.
template <typename OpTy>
LogicalResult inferClassification(std::optional<Location> loc, Value logits,
                                  Value labels,
                                  SmallVectorImpl<Type> &results) {
  RankedTensorType l = tensorOf(logits), y = tensorOf(labels);
  if (l.getRank() < 1)
    return fail<OpTy>(loc, "needs logits of rank at least 1");
  ArrayRef<int64_t> expected = l.getShape().drop_back();
  if (failed(verifyCompatibleShape(expected, y.getShape())))
    return fail<OpTy>(loc, "labels of shape ", formatShape(y.getShape()),
                      " do not match logits of shape ",
                      formatShape(l.getShape()), " (expected labels ",
                      formatShape(expected), ")");
  results.push_back(RankedTensorType::get({}, l.getElementType()));
  return success();
}

} // namespace

//===----------------------------------------------------------------------===//
// Constants and parameters
//===----------------------------------------------------------------------===//

LogicalResult ConstantOp::inferReturnTypes(MLIRContext *,
                                           std::optional<Location>,
                                           Adaptor adaptor,
                                           SmallVectorImpl<Type> &results) {
  results.push_back(adaptor.getValue().getType());
  return success();
}

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

LogicalResult ParamOp::inferReturnTypes(MLIRContext *, std::optional<Location>,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &results) {
  results.push_back(adaptor.getType());
  return success();
}

void ParamOp::getAsmResultNames(OpAsmSetValueNameFn setName) {
  // `%l1.weight`: the IR reads like the model.
  setName(getResult(), getName());
}

LogicalResult ParamOp::verify() {
  if (getName().empty())
    return emitOpError("needs a non-empty name");
  auto type = llvm::cast<RankedTensorType>(getType());
  if (!type.hasStaticShape())
    return emitOpError("parameter '")
           << getName() << "' needs a static shape, got "
           << formatShape(type.getShape());
  InitKind kind = getInit().getKind();
  bool needsFans =
      kind == InitKind::kaiming_uniform || kind == InitKind::kaiming_normal ||
      kind == InitKind::xavier_uniform || kind == InitKind::xavier_normal;
  if (needsFans && type.getRank() < 2)
    return emitOpError("initializer '")
           << stringifyInitKind(kind) << "' of parameter '" << getName()
           << "' needs a tensor of rank at least 2 to compute its fans";
  double a = getInit().getA().convertToDouble();
  double b = getInit().getB().convertToDouble();
  if (kind == InitKind::uniform && a > b)
    return emitOpError("uniform initializer of parameter '")
           << getName() << "' has low > high";
  if (kind == InitKind::normal && b < 0.0)
    return emitOpError("normal initializer of parameter '")
           << getName() << "' has a negative std";
  // A negative gain would turn the bounds of U(-bound, bound) around.
  if (needsFans && a < 0.0)
    return emitOpError("initializer '")
           << stringifyInitKind(kind) << "' of parameter '" << getName()
           << "' has a negative gain";
  return success();
}

//===----------------------------------------------------------------------===//
// Elementwise ops
//===----------------------------------------------------------------------===//

#define KILN_UNARY_SHAPE(OP)                                                   \
  LogicalResult OP::inferReturnTypes(MLIRContext *, std::optional<Location>,   \
                                     Adaptor adaptor,                          \
                                     SmallVectorImpl<Type> &results) {         \
    results.push_back(adaptor.getInput().getType());                           \
    return success();                                                          \
  }
KILN_UNARY_SHAPE(NegOp)
KILN_UNARY_SHAPE(AbsOp)
KILN_UNARY_SHAPE(ExpOp)
KILN_UNARY_SHAPE(LogOp)
KILN_UNARY_SHAPE(TanhOp)
KILN_UNARY_SHAPE(SigmoidOp)
KILN_UNARY_SHAPE(ReluOp)
KILN_UNARY_SHAPE(SqrtOp)
KILN_UNARY_SHAPE(RsqrtOp)
KILN_UNARY_SHAPE(CosOp)
KILN_UNARY_SHAPE(SinOp)
KILN_UNARY_SHAPE(FloorOp)
KILN_UNARY_SHAPE(GeluOp)
KILN_UNARY_SHAPE(DropoutOp)
#undef KILN_UNARY_SHAPE

LogicalResult DropoutOp::verify() {
  double rate = getRate().convertToDouble();
  if (!(rate >= 0.0 && rate < 1.0))
    return emitOpError("rate must be in [0, 1), got ") << rate;
  return success();
}

LogicalResult AllReduceOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location>,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  for (Value input : adaptor.getInputs())
    results.push_back(input.getType());
  return success();
}

LogicalResult AllReduceOp::verify() {
  if (getInputs().empty())
    return emitOpError("needs at least one tensor to reduce");
  // The runtime reduces buffers in place: one tensor twice would be
  // reduced twice.
  llvm::SmallPtrSet<Value, 8> seen;
  for (Value input : getInputs())
    if (!seen.insert(input).second)
      return emitOpError("reduces a tensor twice");
  return success();
}

void CastOp::build(OpBuilder &builder, OperationState &state, Value input,
                   Type elementType) {
  build(builder, state, input, TypeAttr::get(elementType));
}

/// A splat constant reshaped or transposed is a splat of the new shape: the
/// gradients of layout ops applied to a seed constant fold away instead of
/// becoming kernels of their own.
static OpFoldResult foldSplatLayout(Attribute input, Type resultType) {
  auto splat = llvm::dyn_cast_or_null<SplatElementsAttr>(input);
  auto type = llvm::dyn_cast<RankedTensorType>(resultType);
  if (!splat || !type || !type.hasStaticShape())
    return {};
  return SplatElementsAttr::get(type, splat.getSplatValue<Attribute>());
}

OpFoldResult TransposeOp::fold(FoldAdaptor adaptor) {
  return foldSplatLayout(adaptor.getInput(), getType());
}

OpFoldResult ReshapeOp::fold(FoldAdaptor adaptor) {
  return foldSplatLayout(adaptor.getInput(), getType());
}

/// Casts of splat constants fold: the optimizer's hyper-parameters, computed
/// in f64 and cast to the parameters' type, become constants.
OpFoldResult CastOp::fold(FoldAdaptor adaptor) {
  auto splat = llvm::dyn_cast_or_null<SplatElementsAttr>(adaptor.getInput());
  auto type = llvm::dyn_cast<RankedTensorType>(getType());
  if (!splat || !type || !type.hasStaticShape())
    return {};
  Type to = type.getElementType();
  Type from = splat.getElementType();
  Attribute value;
  if (auto toFloat = llvm::dyn_cast<FloatType>(to)) {
    APFloat v(0.0);
    if (llvm::isa<FloatType>(from)) {
      v = splat.getSplatValue<APFloat>();
    } else {
      APInt i = splat.getSplatValue<APInt>();
      v = APFloat(from.isInteger(1) ? double(i.getBoolValue())
                                    : double(i.getSExtValue()));
    }
    bool lost = false;
    v.convert(toFloat.getFloatSemantics(), APFloat::rmNearestTiesToEven, &lost);
    value = FloatAttr::get(to, v);
  } else if (to.isInteger(1) || !llvm::isa<FloatType>(from)) {
    return {}; // integer casts are rare in steps and stay ops
  } else {
    return {};
  }
  return DenseElementsAttr::get(type, value);
}

LogicalResult CastOp::inferReturnTypes(MLIRContext *,
                                       std::optional<Location> loc,
                                       Adaptor adaptor,
                                       SmallVectorImpl<Type> &results) {
  // Checked before building the result: a tensor of a non-scalar type is not
  // a valid type at all.
  Type element = adaptor.getElementType();
  if (!llvm::isa<FloatType, IntegerType>(element))
    return fail<CastOp>(loc, "needs a scalar element type to convert to, got ",
                        element);
  results.push_back(tensorOf(adaptor.getInput()).clone(element));
  return success();
}

#define KILN_BINARY_SHAPE(OP)                                                  \
  LogicalResult OP::inferReturnTypes(                                          \
      MLIRContext *, std::optional<Location> loc, Adaptor adaptor,             \
      SmallVectorImpl<Type> &results) {                                        \
    return inferBinary<OP>(loc, adaptor.getLhs(), adaptor.getRhs(), Type(),    \
                           results);                                           \
  }
KILN_BINARY_SHAPE(AddOp)
KILN_BINARY_SHAPE(SubOp)
KILN_BINARY_SHAPE(MulOp)
KILN_BINARY_SHAPE(DivOp)
KILN_BINARY_SHAPE(MaxOp)
KILN_BINARY_SHAPE(MinOp)
KILN_BINARY_SHAPE(PowOp)
#undef KILN_BINARY_SHAPE

LogicalResult CmpOp::inferReturnTypes(MLIRContext *context,
                                      std::optional<Location> loc,
                                      Adaptor adaptor,
                                      SmallVectorImpl<Type> &results) {
  return inferBinary<CmpOp>(loc, adaptor.getLhs(), adaptor.getRhs(),
                            IntegerType::get(context, 1), results);
}

LogicalResult SelectOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  RankedTensorType c = tensorOf(adaptor.getCondition());
  RankedTensorType t = tensorOf(adaptor.getTrueValue());
  RankedTensorType f = tensorOf(adaptor.getFalseValue());
  if (t.getElementType() != f.getElementType())
    return fail<SelectOp>(loc, "branches have different element types ",
                          t.getElementType(), " and ", f.getElementType());
  return inferBroadcast<SelectOp>(loc, {c, t, f}, t.getElementType(), results);
}

//===----------------------------------------------------------------------===//
// Matmul and layout
//===----------------------------------------------------------------------===//

LogicalResult MatmulOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  RankedTensorType a = tensorOf(adaptor.getLhs()),
                   b = tensorOf(adaptor.getRhs());
  if (a.getElementType() != b.getElementType())
    return fail<MatmulOp>(loc, "operands have different element types ",
                          a.getElementType(), " and ", b.getElementType());
  if (a.getRank() < 2 || b.getRank() < 2)
    return fail<MatmulOp>(loc, "needs operands of rank at least 2, got ",
                          formatShape(a.getShape()), " and ",
                          formatShape(b.getShape()));
  auto matrix = [](RankedTensorType t, bool transposed) {
    int64_t rows = t.getDimSize(t.getRank() - 2);
    int64_t cols = t.getDimSize(t.getRank() - 1);
    return transposed ? std::make_pair(cols, rows) : std::make_pair(rows, cols);
  };
  auto [m, k1] = matrix(a, adaptor.getTransposeLhs());
  auto [k2, n] = matrix(b, adaptor.getTransposeRhs());
  if (!ShapedType::isDynamic(k1) && !ShapedType::isDynamic(k2) && k1 != k2)
    return fail<MatmulOp>(
        loc, "contraction sizes differ: ", formatShape(a.getShape()),
        " has K = ", k1, ", ", formatShape(b.getShape()), " has K = ", k2);
  auto batch =
      broadcastShapes(a.getShape().drop_back(2), b.getShape().drop_back(2));
  if (!batch)
    return fail<MatmulOp>(loc, "cannot broadcast batch dimensions of ",
                          formatShape(a.getShape()), " and ",
                          formatShape(b.getShape()));
  batch->push_back(m);
  batch->push_back(n);
  results.push_back(RankedTensorType::get(*batch, a.getElementType()));
  return success();
}

namespace {

/// The shapes every attention op shares: query [..., Tq, D], key
/// [..., Tk, D] and value [..., Tk, Dv] of one element type, their batch
/// dimensions broadcast, and a finite scale.
struct AttentionShapes {
  SmallVector<int64_t> batch;
  int64_t tq, tk, d, dv;
  Type element;
};

template <typename OpTy>
FailureOr<AttentionShapes> inferAttention(std::optional<Location> loc,
                                          Value query, Value key, Value value,
                                          APFloat scaleAttr) {
  RankedTensorType q = tensorOf(query), k = tensorOf(key), v = tensorOf(value);
  if (k.getElementType() != q.getElementType() ||
      v.getElementType() != q.getElementType())
    return fail<OpTy>(loc,
                      "query, key and value must have one element type, "
                      "got ",
                      q.getElementType(), ", ", k.getElementType(), " and ",
                      v.getElementType());
  if (q.getRank() < 2 || k.getRank() < 2 || v.getRank() < 2)
    return fail<OpTy>(loc,
                      "needs query, key and value of rank at least 2 "
                      "([..., T, D]), got ",
                      formatShape(q.getShape()), ", ",
                      formatShape(k.getShape()), " and ",
                      formatShape(v.getShape()));
  auto last = [](RankedTensorType t, int64_t fromEnd) {
    return t.getDimSize(t.getRank() - fromEnd);
  };
  if (failed(verifyCompatibleShape({last(q, 1)}, {last(k, 1)})))
    return fail<OpTy>(loc, "query ", formatShape(q.getShape()), " and key ",
                      formatShape(k.getShape()),
                      " have different feature sizes D");
  if (failed(verifyCompatibleShape({last(k, 2)}, {last(v, 2)})))
    return fail<OpTy>(loc, "key ", formatShape(k.getShape()), " and value ",
                      formatShape(v.getShape()),
                      " have different sequence lengths Tk");
  auto batch =
      broadcastShapes(q.getShape().drop_back(2), k.getShape().drop_back(2));
  if (batch)
    batch = broadcastShapes(*batch, v.getShape().drop_back(2));
  if (!batch)
    return fail<OpTy>(loc, "cannot broadcast the batch dimensions of ",
                      formatShape(q.getShape()), ", ",
                      formatShape(k.getShape()), " and ",
                      formatShape(v.getShape()));
  double scale = scaleAttr.convertToDouble();
  if (!std::isfinite(scale))
    return fail<OpTy>(loc, "scale must be finite, got ", scale);
  AttentionShapes s;
  s.batch = std::move(*batch);
  s.tq = last(q, 2);
  s.tk = last(k, 2);
  s.d = ShapedType::isDynamic(last(q, 1)) ? last(k, 1) : last(q, 1);
  s.dv = last(v, 1);
  s.element = q.getElementType();
  return s;
}

/// `batch + tail` as a tensor type of `element`.
RankedTensorType batched(const AttentionShapes &s, ArrayRef<int64_t> tail) {
  SmallVector<int64_t> shape(s.batch);
  shape.append(tail.begin(), tail.end());
  return RankedTensorType::get(shape, s.element);
}

/// The operands of the gradient ops beyond q, k, v: `grad` of the forward
/// result's shape, `lse` and `delta` of its rows' shape.
template <typename OpTy, typename Adaptor>
FailureOr<AttentionShapes> inferAttentionGrad(std::optional<Location> loc,
                                              Adaptor adaptor) {
  FailureOr<AttentionShapes> s =
      inferAttention<OpTy>(loc, adaptor.getQuery(), adaptor.getKey(),
                           adaptor.getValue(), adaptor.getScale());
  if (failed(s))
    return failure();
  struct Expected {
    const char *name;
    Value value;
    RankedTensorType type;
  } expected[] = {{"grad", adaptor.getGrad(), batched(*s, {s->tq, s->dv})},
                  {"lse", adaptor.getLse(), batched(*s, {s->tq})},
                  {"delta", adaptor.getDelta(), batched(*s, {s->tq})}};
  for (const Expected &e : expected) {
    RankedTensorType type = tensorOf(e.value);
    if (type.getElementType() != s->element ||
        failed(verifyCompatibleShape(type.getShape(), e.type.getShape())))
      return fail<OpTy>(loc, "needs ", e.name, " ",
                        formatShape(e.type.getShape()), " of ", s->element,
                        ", got ", formatShape(type.getShape()), " of ",
                        type.getElementType());
  }
  return s;
}

} // namespace

LogicalResult AttentionOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  FailureOr<AttentionShapes> s =
      inferAttention<AttentionOp>(loc, adaptor.getQuery(), adaptor.getKey(),
                                  adaptor.getValue(), adaptor.getScale());
  if (failed(s))
    return failure();
  results.push_back(batched(*s, {s->tq, s->dv}));
  results.push_back(batched(*s, {s->tq}));
  return success();
}

LogicalResult
AttentionGradQOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                   Adaptor adaptor,
                                   SmallVectorImpl<Type> &results) {
  FailureOr<AttentionShapes> s =
      inferAttentionGrad<AttentionGradQOp>(loc, adaptor);
  if (failed(s))
    return failure();
  results.push_back(batched(*s, {s->tq, s->d}));
  return success();
}

LogicalResult
AttentionGradKvOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                    Adaptor adaptor,
                                    SmallVectorImpl<Type> &results) {
  FailureOr<AttentionShapes> s =
      inferAttentionGrad<AttentionGradKvOp>(loc, adaptor);
  if (failed(s))
    return failure();
  results.push_back(batched(*s, {s->tk, s->d}));
  results.push_back(batched(*s, {s->tk, s->dv}));
  return success();
}

LogicalResult IotaOp::inferReturnTypes(MLIRContext *context,
                                       std::optional<Location> loc,
                                       Adaptor adaptor,
                                       SmallVectorImpl<Type> &results) {
  ArrayRef<int64_t> shape = adaptor.getShape();
  for (int64_t size : shape)
    if (size <= 0)
      return fail<IotaOp>(loc, "needs positive static sizes, got ",
                          formatShape(shape));
  int64_t dimension = adaptor.getDimension();
  if (dimension < 0 || dimension >= static_cast<int64_t>(shape.size()))
    return fail<IotaOp>(loc, "dimension ", dimension,
                        " is out of range for shape ", formatShape(shape));
  results.push_back(
      RankedTensorType::get(shape, IntegerType::get(context, 32)));
  return success();
}

LogicalResult TransposeOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  RankedTensorType input = tensorOf(adaptor.getInput());
  ArrayRef<int64_t> perm = adaptor.getPermutation();
  if (static_cast<int64_t>(perm.size()) != input.getRank())
    return fail<TransposeOp>(loc, "permutation has ", perm.size(),
                             " entries for a tensor of rank ", input.getRank());
  SmallVector<bool> used(perm.size(), false);
  SmallVector<int64_t> shape;
  for (int64_t p : perm) {
    if (p < 0 || p >= input.getRank() || used[p])
      return fail<TransposeOp>(loc, "permutation ", formatShape(perm),
                               " is not a permutation of 0..",
                               input.getRank() - 1);
    used[p] = true;
    shape.push_back(input.getDimSize(p));
  }
  results.push_back(input.clone(shape));
  return success();
}

LogicalResult ReshapeOp::inferReturnTypes(MLIRContext *,
                                          std::optional<Location> loc,
                                          Adaptor adaptor,
                                          SmallVectorImpl<Type> &results) {
  RankedTensorType input = tensorOf(adaptor.getInput());
  ArrayRef<int64_t> target = adaptor.getShape();
  int64_t inferred = -1, known = 1;
  for (auto [i, d] : llvm::enumerate(target)) {
    if (d == -1) {
      if (inferred >= 0)
        return fail<ReshapeOp>(loc, "shape ", formatShape(target),
                               " has more than one -1");
      inferred = i;
    } else if (d <= 0) {
      return fail<ReshapeOp>(loc, "shape ", formatShape(target),
                             " has a size below 1");
    } else {
      known *= d;
    }
  }
  SmallVector<int64_t> shape(target.begin(), target.end());
  if (input.hasStaticShape()) {
    int64_t count = input.getNumElements();
    if (inferred >= 0) {
      if (count % known != 0)
        return fail<ReshapeOp>(loc, "cannot reshape ",
                               formatShape(input.getShape()), " (", count,
                               " elements) to ", formatShape(target));
      shape[inferred] = count / known;
    } else if (count != known) {
      return fail<ReshapeOp>(
          loc, "cannot reshape ", formatShape(input.getShape()), " (", count,
          " elements) to ", formatShape(target), " (", known, " elements)");
    }
  } else if (inferred >= 0) {
    shape[inferred] = ShapedType::kDynamic;
  } else {
    return fail<ReshapeOp>(loc, "shape ", formatShape(target),
                           " needs a -1 for the dynamic dimensions of ",
                           formatShape(input.getShape()));
  }
  results.push_back(input.clone(shape));
  return success();
}

LogicalResult BroadcastOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  RankedTensorType input = tensorOf(adaptor.getInput());
  RankedTensorType like = tensorOf(adaptor.getLike());
  auto merged = broadcastShapes(input.getShape(), like.getShape());
  if (!merged || input.getRank() > like.getRank() ||
      failed(verifyCompatibleShape(*merged, like.getShape())))
    return fail<BroadcastOp>(loc, "cannot broadcast ",
                             formatShape(input.getShape()), " to ",
                             formatShape(like.getShape()));
  results.push_back(like.clone(input.getElementType()));
  return success();
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

template <typename OpTy>
static LogicalResult inferReduce(std::optional<Location> loc,
                                 typename OpTy::Adaptor adaptor,
                                 SmallVectorImpl<Type> &results) {
  RankedTensorType input = tensorOf(adaptor.getInput());
  auto axes = normalizeAxes<OpTy>(loc, adaptor.getAxes(), input.getRank());
  if (failed(axes))
    return failure();
  SmallVector<int64_t> shape;
  for (int64_t i = 0; i < input.getRank(); ++i) {
    bool reduced = axes->empty() || llvm::is_contained(*axes, i);
    if (!reduced)
      shape.push_back(input.getDimSize(i));
    else if (adaptor.getKeepdims())
      shape.push_back(1);
  }
  results.push_back(input.clone(shape));
  return success();
}

#define KILN_REDUCE_SHAPE(OP)                                                  \
  LogicalResult OP::inferReturnTypes(                                          \
      MLIRContext *, std::optional<Location> loc, Adaptor adaptor,             \
      SmallVectorImpl<Type> &results) {                                        \
    return inferReduce<OP>(loc, adaptor, results);                             \
  }
KILN_REDUCE_SHAPE(ReduceSumOp)
KILN_REDUCE_SHAPE(ReduceMeanOp)
KILN_REDUCE_SHAPE(ReduceMaxOp)
#undef KILN_REDUCE_SHAPE

LogicalResult ArgmaxOp::inferReturnTypes(MLIRContext *context,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  RankedTensorType input = tensorOf(adaptor.getInput());
  // I64Attr getters return the value as uint64_t.
  auto axisAttr = static_cast<int64_t>(adaptor.getAxis());
  std::optional<int64_t> axis = normalizeAxis(axisAttr, input.getRank());
  if (!axis)
    return fail<ArgmaxOp>(loc, "axis ", axisAttr, " is out of range for rank ",
                          input.getRank());
  SmallVector<int64_t> shape(input.getShape().begin(), input.getShape().end());
  if (adaptor.getKeepdims())
    shape[*axis] = 1;
  else
    shape.erase(shape.begin() + *axis);
  results.push_back(
      RankedTensorType::get(shape, IntegerType::get(context, 32)));
  return success();
}

//===----------------------------------------------------------------------===//
// Normalization and losses
//===----------------------------------------------------------------------===//

template <typename OpTy>
static LogicalResult inferAlongAxis(std::optional<Location> loc,
                                    typename OpTy::Adaptor adaptor,
                                    SmallVectorImpl<Type> &results) {
  RankedTensorType input = tensorOf(adaptor.getInput());
  // I64Attr getters return the value as uint64_t.
  auto axis = static_cast<int64_t>(adaptor.getAxis());
  if (!normalizeAxis(axis, input.getRank()))
    return fail<OpTy>(loc, "axis ", axis, " is out of range for rank ",
                      input.getRank());
  results.push_back(input);
  return success();
}

LogicalResult SoftmaxOp::inferReturnTypes(MLIRContext *,
                                          std::optional<Location> loc,
                                          Adaptor adaptor,
                                          SmallVectorImpl<Type> &results) {
  return inferAlongAxis<SoftmaxOp>(loc, adaptor, results);
}

LogicalResult LogSoftmaxOp::inferReturnTypes(MLIRContext *,
                                             std::optional<Location> loc,
                                             Adaptor adaptor,
                                             SmallVectorImpl<Type> &results) {
  return inferAlongAxis<LogSoftmaxOp>(loc, adaptor, results);
}

LogicalResult CrossEntropyOp::inferReturnTypes(MLIRContext *,
                                               std::optional<Location> loc,
                                               Adaptor adaptor,
                                               SmallVectorImpl<Type> &results) {
  return inferClassification<CrossEntropyOp>(loc, adaptor.getLogits(),
                                             adaptor.getLabels(), results);
}

LogicalResult AccuracyOp::inferReturnTypes(MLIRContext *,
                                           std::optional<Location> loc,
                                           Adaptor adaptor,
                                           SmallVectorImpl<Type> &results) {
  return inferClassification<AccuracyOp>(loc, adaptor.getLogits(),
                                         adaptor.getLabels(), results);
}

LogicalResult LayerNormOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  RankedTensorType input = tensorOf(adaptor.getInput());
  if (input.getRank() < 1)
    return fail<LayerNormOp>(loc, "needs an input of rank at least 1");
  int64_t features = input.getDimSize(input.getRank() - 1);
  for (Value v : {adaptor.getWeight(), adaptor.getBias()}) {
    RankedTensorType t = tensorOf(v);
    if (t.getElementType() != input.getElementType())
      return fail<LayerNormOp>(loc, "weight and bias must have element type ",
                               input.getElementType(), ", got ",
                               t.getElementType());
    if (t.getRank() != 1 ||
        failed(verifyCompatibleShape(t.getShape(), {features})))
      return fail<LayerNormOp>(loc, "weight and bias must have shape ",
                               formatShape({features}), ", got ",
                               formatShape(t.getShape()));
  }
  double epsilon = adaptor.getEpsilon().convertToDouble();
  if (!(epsilon > 0.0))
    return fail<LayerNormOp>(loc, "epsilon must be positive, got ", epsilon);
  results.push_back(input);
  return success();
}

//===----------------------------------------------------------------------===//
// Convolution, pooling, embedding
//===----------------------------------------------------------------------===//

/// The output type of conv2d of `input` with `weight`. Shared by conv2d and
/// its gradient ops, which check their `grad` against it.
template <typename OpTy>
static FailureOr<RankedTensorType>
inferConv(std::optional<Location> loc, Value input, Value weight,
          ArrayRef<int64_t> strides, ArrayRef<int64_t> paddings) {
  RankedTensorType x = tensorOf(input), w = tensorOf(weight);
  if (x.getElementType() != w.getElementType())
    return fail<OpTy>(loc, "operands have different element types ",
                      x.getElementType(), " and ", w.getElementType());
  if (x.getRank() != 4)
    return fail<OpTy>(loc, "needs an NCHW input of rank 4, got ",
                      formatShape(x.getShape()));
  if (w.getRank() != 4)
    return fail<OpTy>(loc, "needs an OIHW weight of rank 4, got ",
                      formatShape(w.getShape()));
  if (failed(checkPair<OpTy>(loc, "stride", strides, 1)) ||
      failed(checkPair<OpTy>(loc, "padding", paddings, 0)))
    return failure();
  if (failed(verifyCompatibleShape({x.getDimSize(1)}, {w.getDimSize(1)})))
    return fail<OpTy>(loc, "input has ", x.getDimSize(1),
                      " channels but the weight expects ", w.getDimSize(1));
  SmallVector<int64_t> shape = {x.getDimSize(0), w.getDimSize(0)};
  for (int i = 0; i < 2; ++i) {
    int64_t size = x.getDimSize(2 + i), kernel = w.getDimSize(2 + i);
    int64_t pad = paddings[i], stride = strides[i];
    if (ShapedType::isDynamic(kernel)) {
      shape.push_back(ShapedType::kDynamic);
      continue;
    }
    if (!ShapedType::isDynamic(size) && size + 2 * pad < kernel)
      return fail<OpTy>(loc, "kernel ", formatShape(w.getShape()),
                        " is larger than the padded input ",
                        formatShape(x.getShape()));
    shape.push_back(windowOutput(size, kernel, stride, pad));
  }
  return x.clone(shape);
}

/// The output type of 2-D pooling of `input`. Shared by the pooling ops and
/// their gradient ops.
template <typename OpTy>
static FailureOr<RankedTensorType>
inferPool(std::optional<Location> loc, Value input, ArrayRef<int64_t> kernels,
          ArrayRef<int64_t> strides, ArrayRef<int64_t> paddings) {
  RankedTensorType x = tensorOf(input);
  if (x.getRank() != 4)
    return fail<OpTy>(loc, "needs an NCHW input of rank 4, got ",
                      formatShape(x.getShape()));
  if (failed(checkPair<OpTy>(loc, "kernel", kernels, 1)) ||
      failed(checkPair<OpTy>(loc, "stride", strides, 1)) ||
      failed(checkPair<OpTy>(loc, "padding", paddings, 0)))
    return failure();
  SmallVector<int64_t> shape = {x.getDimSize(0), x.getDimSize(1)};
  for (int i = 0; i < 2; ++i) {
    int64_t size = x.getDimSize(2 + i), kernel = kernels[i];
    int64_t pad = paddings[i], stride = strides[i];
    if (2 * pad > kernel)
      return fail<OpTy>(loc, "padding ", pad,
                        " is more than half the kernel size ", kernel);
    if (!ShapedType::isDynamic(size) && size + 2 * pad < kernel)
      return fail<OpTy>(loc, "kernel ", formatShape(kernels),
                        " is larger than the padded input ",
                        formatShape(x.getShape()));
    shape.push_back(windowOutput(size, kernel, stride, pad));
  }
  return x.clone(shape);
}

/// Pushes `type` to `results`, or fails if it failed.
static LogicalResult pushResult(FailureOr<RankedTensorType> type,
                                SmallVectorImpl<Type> &results) {
  if (failed(type))
    return failure();
  results.push_back(*type);
  return success();
}

LogicalResult Conv2dOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  return pushResult(
      inferConv<Conv2dOp>(loc, adaptor.getInput(), adaptor.getWeight(),
                          adaptor.getStride(), adaptor.getPadding()),
      results);
}

LogicalResult MaxPool2dOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  return pushResult(
      inferPool<MaxPool2dOp>(loc, adaptor.getInput(), adaptor.getKernel(),
                             adaptor.getStride(), adaptor.getPadding()),
      results);
}

LogicalResult AvgPool2dOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  return pushResult(
      inferPool<AvgPool2dOp>(loc, adaptor.getInput(), adaptor.getKernel(),
                             adaptor.getStride(), adaptor.getPadding()),
      results);
}

LogicalResult EmbeddingOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  RankedTensorType table = tensorOf(adaptor.getWeight());
  RankedTensorType indices = tensorOf(adaptor.getIndices());
  if (table.getRank() != 2)
    return fail<EmbeddingOp>(loc, "needs a table of rank 2, got ",
                             formatShape(table.getShape()));
  SmallVector<int64_t> shape(indices.getShape().begin(),
                             indices.getShape().end());
  shape.push_back(table.getDimSize(1));
  results.push_back(table.clone(shape));
  return success();
}

//===----------------------------------------------------------------------===//
// Composites
//===----------------------------------------------------------------------===//

LogicalResult LinearOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  RankedTensorType x = tensorOf(adaptor.getInput());
  RankedTensorType w = tensorOf(adaptor.getWeight());
  if (x.getElementType() != w.getElementType())
    return fail<LinearOp>(loc, "operands have different element types ",
                          x.getElementType(), " and ", w.getElementType());
  if (x.getRank() < 1)
    return fail<LinearOp>(loc, "needs an input of rank at least 1");
  if (w.getRank() != 2)
    return fail<LinearOp>(loc, "needs a weight [out, in] of rank 2, got ",
                          formatShape(w.getShape()));
  int64_t in = x.getDimSize(x.getRank() - 1);
  if (failed(verifyCompatibleShape({in}, {w.getDimSize(1)})))
    return fail<LinearOp>(loc, "input ", formatShape(x.getShape()), " has ", in,
                          " features but the weight ",
                          formatShape(w.getShape()), " expects ",
                          w.getDimSize(1));
  if (Value bias = adaptor.getBias()) {
    RankedTensorType b = tensorOf(bias);
    if (b.getElementType() != x.getElementType() || b.getRank() != 1 ||
        failed(verifyCompatibleShape(b.getShape(), {w.getDimSize(0)})))
      return fail<LinearOp>(
          loc, "bias must be ",
          formatTensorType(
              b.clone(ArrayRef<int64_t>{w.getDimSize(0)}, x.getElementType())),
          ", got ", formatTensorType(b));
  }
  SmallVector<int64_t> shape(x.getShape().begin(), x.getShape().end());
  shape.back() = w.getDimSize(0);
  results.push_back(x.clone(shape));
  return success();
}

//===----------------------------------------------------------------------===//
// Gradient primitives
//===----------------------------------------------------------------------===//

LogicalResult CountOp::inferReturnTypes(MLIRContext *,
                                        std::optional<Location> loc,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &results) {
  RankedTensorType input = tensorOf(adaptor.getInput());
  if (failed(normalizeAxes<CountOp>(loc, adaptor.getAxes(), input.getRank())))
    return failure();
  results.push_back(RankedTensorType::get({}, input.getElementType()));
  return success();
}

LogicalResult
CrossEntropyGradOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                     Adaptor adaptor,
                                     SmallVectorImpl<Type> &results) {
  SmallVector<Type> loss;
  if (failed(inferClassification<CrossEntropyGradOp>(
          loc, adaptor.getLogits(), adaptor.getLabels(), loss)))
    return failure();
  if (tensorOf(adaptor.getGrad()) != loss.front())
    return fail<CrossEntropyGradOp>(loc, "needs a scalar gradient of type ",
                                    loss.front(), ", got ",
                                    adaptor.getGrad().getType());
  results.push_back(adaptor.getLogits().getType());
  return success();
}

LogicalResult GeluGradOp::inferReturnTypes(MLIRContext *,
                                           std::optional<Location> loc,
                                           Adaptor adaptor,
                                           SmallVectorImpl<Type> &results) {
  return inferBinary<GeluGradOp>(loc, adaptor.getInput(), adaptor.getGrad(),
                                 Type(), results);
}

/// Checks that `grad` is a gradient of the forward result `forward`: the same
/// element type and a compatible shape. Then the result is `like`.
template <typename OpTy>
static LogicalResult inferWindowGrad(std::optional<Location> loc,
                                     FailureOr<RankedTensorType> forward,
                                     Value grad, Value like,
                                     SmallVectorImpl<Type> &results) {
  if (failed(forward))
    return failure();
  RankedTensorType g = tensorOf(grad);
  if (g.getElementType() != forward->getElementType())
    return fail<OpTy>(loc, "gradient has element type ", g.getElementType(),
                      ", expected ", forward->getElementType());
  if (failed(verifyCompatibleShape(g.getShape(), forward->getShape())))
    return fail<OpTy>(loc, "gradient of shape ", formatShape(g.getShape()),
                      " does not match the forward result of shape ",
                      formatShape(forward->getShape()));
  results.push_back(like.getType());
  return success();
}

LogicalResult
Conv2dGradInputOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                    Adaptor adaptor,
                                    SmallVectorImpl<Type> &results) {
  return inferWindowGrad<Conv2dGradInputOp>(
      loc,
      inferConv<Conv2dGradInputOp>(loc, adaptor.getInputLike(),
                                   adaptor.getWeight(), adaptor.getStride(),
                                   adaptor.getPadding()),
      adaptor.getGrad(), adaptor.getInputLike(), results);
}

LogicalResult
Conv2dGradWeightOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                     Adaptor adaptor,
                                     SmallVectorImpl<Type> &results) {
  return inferWindowGrad<Conv2dGradWeightOp>(
      loc,
      inferConv<Conv2dGradWeightOp>(loc, adaptor.getInput(),
                                    adaptor.getWeightLike(),
                                    adaptor.getStride(), adaptor.getPadding()),
      adaptor.getGrad(), adaptor.getWeightLike(), results);
}

LogicalResult
MaxPool2dGradOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                  Adaptor adaptor,
                                  SmallVectorImpl<Type> &results) {
  return inferWindowGrad<MaxPool2dGradOp>(
      loc,
      inferPool<MaxPool2dGradOp>(loc, adaptor.getInput(), adaptor.getKernel(),
                                 adaptor.getStride(), adaptor.getPadding()),
      adaptor.getGrad(), adaptor.getInput(), results);
}

LogicalResult
AvgPool2dGradOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                  Adaptor adaptor,
                                  SmallVectorImpl<Type> &results) {
  return inferWindowGrad<AvgPool2dGradOp>(
      loc,
      inferPool<AvgPool2dGradOp>(loc, adaptor.getInputLike(),
                                 adaptor.getKernel(), adaptor.getStride(),
                                 adaptor.getPadding()),
      adaptor.getGrad(), adaptor.getInputLike(), results);
}

LogicalResult
EmbeddingGradOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                  Adaptor adaptor,
                                  SmallVectorImpl<Type> &results) {
  RankedTensorType table = tensorOf(adaptor.getTableLike());
  RankedTensorType indices = tensorOf(adaptor.getIndices());
  if (table.getRank() != 2)
    return fail<EmbeddingGradOp>(loc, "needs a table of rank 2, got ",
                                 formatShape(table.getShape()));
  SmallVector<int64_t> forward(indices.getShape());
  forward.push_back(table.getDimSize(1));
  return inferWindowGrad<EmbeddingGradOp>(loc, table.clone(forward),
                                          adaptor.getGrad(),
                                          adaptor.getTableLike(), results);
}

#define GET_OP_CLASSES
#include "ir/KilnOps.cpp.inc"
