//===- Autodiff.cpp - reverse-mode differentiation of a model -------------===//
//
// For each model function @m (marked `kiln.model`) this pass adds:
//
//   @m_grad(params..., inputs...) -> (loss, metrics..., d params...)
//   @m_eval_step(params..., inputs...) -> (loss, metrics...)
//   @m_predict_step(params..., inputs the outputs need...) -> (outputs...)
//
// The last only for a model with `output` statements (results with
// kiln.role = "output", after the loss and the metrics), which the other
// two do not return.
//
// The algorithm:
//   1. Clone @m and turn every `kiln.param` op into a leading argument
//      (attributes kiln.role = "param", kiln.name, kiln.init).
//   2. Mark the ops that lie on a path from a parameter to the loss; only
//      they are differentiated.
//   3. Seed d loss = 1 and walk those ops in reverse, asking each op's
//      DifferentiableOpInterface for the gradients of its operands from the
//      gradient of its result, and summing gradients of values used
//      several times (fan-out).
//   4. Return the loss, the metrics and each parameter's gradient (zeros
//      for a parameter the loss does not depend on).
//
// The eval function is the same clone with dropout removed; the predict
// function is that clone returning only the outputs, with the ops and the
// inputs they do not need removed.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "ir/AttrNames.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/BitVector.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "kiln-autodiff"

namespace kiln {
#define GEN_PASS_DEF_KILNAUTODIFF
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// Turns the `kiln.param` ops of `func` into leading arguments.
void paramsToArguments(func::FuncOp func) {
  Block &body = func.getBody().front();
  OpBuilder b(func.getContext());
  // The inputs keep their attributes and gain a role.
  SmallVector<DictionaryAttr> inputAttrs;
  for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i) {
    SmallVector<NamedAttribute> attrs;
    if (DictionaryAttr existing = func.getArgAttrDict(i))
      attrs.assign(existing.begin(), existing.end());
    attrs.push_back(b.getNamedAttr(attrs::role, b.getStringAttr("input")));
    inputAttrs.push_back(b.getDictionaryAttr(attrs));
  }
  SmallVector<DictionaryAttr> argAttrs;
  SmallVector<ParamOp> params(body.getOps<ParamOp>());
  for (auto [i, param] : llvm::enumerate(params)) {
    BlockArgument arg = body.insertArgument(i, param.getType(), param.getLoc());
    param.replaceAllUsesWith(arg);
    argAttrs.push_back(b.getDictionaryAttr(
        {b.getNamedAttr(attrs::name, param.getNameAttr()),
         b.getNamedAttr(attrs::role, b.getStringAttr("param")),
         b.getNamedAttr(attrs::init, param.getInit())}));
    param.erase();
  }
  argAttrs.append(inputAttrs);
  func.setType(
      b.getFunctionType(body.getArgumentTypes(), func.getResultTypes()));
  func.setAllArgAttrs(argAttrs);
}

/// A zero tensor of a static type.
Value zerosLike(OpBuilder &b, Location loc, Type type) {
  auto tensor = llvm::cast<RankedTensorType>(type);
  return b.create<ConstantOp>(
      loc, DenseElementsAttr::get(
               tensor, b.getFloatAttr(tensor.getElementType(), 0.0)));
}

LogicalResult differentiate(func::FuncOp grad, unsigned numParams) {
  Block &body = grad.getBody().front();
  Operation *ret = body.getTerminator();
  Value loss = ret->getOperand(0);

  // Ops on a path from a parameter to the loss: reachable forward from the
  // parameters and backward from the loss.
  llvm::DenseSet<Value> fromParams;
  for (unsigned i = 0; i < numParams; ++i)
    fromParams.insert(body.getArgument(i));
  for (Operation &op : body.without_terminator())
    if (llvm::any_of(op.getOperands(),
                     [&](Value v) { return fromParams.contains(v); }))
      for (Value r : op.getResults())
        fromParams.insert(r);
  llvm::DenseSet<Value> toLoss = {loss};
  for (Operation &op : llvm::reverse(body.without_terminator()))
    if (llvm::any_of(op.getResults(),
                     [&](Value v) { return toLoss.contains(v); }))
      for (Value operand : op.getOperands())
        toLoss.insert(operand);
  auto needed = [&](Value v) {
    return fromParams.contains(v) && toLoss.contains(v);
  };

  OpBuilder b(ret);
  llvm::DenseMap<Value, Value> adjoint;
  auto accumulate = [&](Value v, Value g, Location loc) {
    auto [it, inserted] = adjoint.try_emplace(v, g);
    if (!inserted)
      it->second = b.create<AddOp>(loc, it->second, g);
  };
  auto lossType = llvm::cast<RankedTensorType>(loss.getType());
  adjoint[loss] = b.create<ConstantOp>(
      loss.getLoc(),
      DenseElementsAttr::get(lossType,
                             b.getFloatAttr(lossType.getElementType(), 1.0)));

  for (Operation &op : llvm::reverse(body.without_terminator())) {
    if (op.getNumResults() == 0)
      continue;
    // Rules take the gradient of the first result only: the others
    // (kiln.attention's log-sum-exp) are saved for the backward pass.
    for (Value other : op.getResults().drop_front())
      if (adjoint.lookup(other))
        return op.emitError("'")
               << op.getName() << "' result #"
               << llvm::cast<OpResult>(other).getResultNumber()
               << " has no gradient rule, so the loss cannot be "
                  "differentiated through it";
    if (!needed(op.getResult(0)))
      continue;
    Value g = adjoint.lookup(op.getResult(0));
    if (!g)
      continue;
    auto rule = llvm::dyn_cast<DifferentiableOpInterface>(&op);
    if (!rule)
      return op.emitError("'")
             << op.getName()
             << "' has no gradient rule, so the loss cannot be differentiated "
                "through it";
    SmallVector<Value> operandGrads;
    if (failed(rule.buildGradients(b, g, operandGrads)))
      return failure();
    for (auto [operand, og] : llvm::zip(op.getOperands(), operandGrads))
      if (og && needed(operand))
        accumulate(operand, og, op.getLoc());
  }

  // Results: loss, metrics, then one gradient per parameter.
  SmallVector<Value> results(ret->getOperands());
  SmallVector<DictionaryAttr> resultAttrs;
  for (unsigned i = 0; i < ret->getNumOperands(); ++i)
    resultAttrs.push_back(grad.getResultAttrDict(i) ? grad.getResultAttrDict(i)
                                                    : b.getDictionaryAttr({}));
  for (unsigned i = 0; i < numParams; ++i) {
    BlockArgument param = body.getArgument(i);
    Value g = adjoint.lookup(param);
    if (!g)
      g = zerosLike(b, param.getLoc(), param.getType());
    results.push_back(g);
    resultAttrs.push_back(b.getDictionaryAttr(
        {b.getNamedAttr(attrs::name, grad.getArgAttr(i, attrs::name)),
         b.getNamedAttr(attrs::role, b.getStringAttr("grad"))}));
  }
  b.create<func::ReturnOp>(ret->getLoc(), results);
  ret->erase();
  grad.setType(b.getFunctionType(body.getArgumentTypes(),
                                 ValueRange(results).getTypes()));
  grad.setAllResultAttrs(resultAttrs);
  return success();
}

/// Keeps the results of `func` whose kiln.role `keep` accepts, in order.
void keepResults(func::FuncOp func, function_ref<bool(StringRef)> keep) {
  Operation *ret = func.getBody().front().getTerminator();
  SmallVector<Value> results;
  SmallVector<DictionaryAttr> resultAttrs;
  for (unsigned i = 0; i < ret->getNumOperands(); ++i) {
    auto role = func.getResultAttrOfType<StringAttr>(i, attrs::role);
    if (!keep(role ? role.getValue() : StringRef()))
      continue;
    results.push_back(ret->getOperand(i));
    resultAttrs.push_back(func.getResultAttrDict(i));
  }
  OpBuilder b(ret);
  b.create<func::ReturnOp>(ret->getLoc(), results);
  ret->erase();
  func.setType(b.getFunctionType(func.getArgumentTypes(),
                                 ValueRange(results).getTypes()));
  func.setAllResultAttrs(resultAttrs);
}

bool isOutput(StringRef role) { return role == "output"; }

/// Evaluation semantics: dropout passes its input through.
void removeDropout(func::FuncOp func) {
  for (DropoutOp dropout :
       llvm::make_early_inc_range(func.getBody().getOps<DropoutOp>())) {
    dropout.replaceAllUsesWith(dropout.getInput());
    dropout.erase();
  }
}

/// Erases the ops whose results nothing uses, then the inputs nothing
/// uses (the parameters stay: every step takes all of them).
void pruneToResults(func::FuncOp func) {
  Block &body = func.getBody().front();
  // Backwards, so an op's users are gone before the op is looked at.
  for (Operation *op = body.getTerminator()->getPrevNode(); op;) {
    Operation *previous = op->getPrevNode();
    if (isOpTriviallyDead(op))
      op->erase();
    op = previous;
  }
  llvm::BitVector unused(func.getNumArguments());
  for (BlockArgument arg : body.getArguments()) {
    auto role =
        func.getArgAttrOfType<StringAttr>(arg.getArgNumber(), attrs::role);
    if (role && role.getValue() == "input" && arg.use_empty())
      unused.set(arg.getArgNumber());
  }
  (void)func.eraseArguments(unused);
}

/// A copy of `model` named `<model><suffix>`, marked as step `step`, with
/// its parameters as leading arguments.
func::FuncOp cloneStep(func::FuncOp model, StringRef suffix, StringRef step,
                       SymbolTable &symbols) {
  auto clone = llvm::cast<func::FuncOp>(model->clone());
  clone.setSymName((model.getSymName() + suffix).str());
  clone->removeAttr(attrs::model);
  clone->setAttr(attrs::step, StringAttr::get(model.getContext(), step));
  symbols.insert(clone);
  paramsToArguments(clone);
  return clone;
}

struct AutodiffPass : kiln::impl::KilnAutodiffBase<AutodiffPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    SmallVector<func::FuncOp> models;
    for (auto func : module.getOps<func::FuncOp>())
      if (func->hasAttr(attrs::model))
        models.push_back(func);

    for (func::FuncOp model : models) {
      unsigned numParams =
          llvm::range_size(model.getBody().front().getOps<ParamOp>());

      bool hasOutputs = false;
      for (unsigned i = 0; i < model.getNumResults(); ++i)
        if (auto role = model.getResultAttrOfType<StringAttr>(i, attrs::role))
          hasOutputs |= isOutput(role.getValue());
      auto notOutput = [](StringRef role) { return !isOutput(role); };

      func::FuncOp grad = cloneStep(model, "_grad", "grad", symbols);
      keepResults(grad, notOutput);
      if (failed(differentiate(grad, numParams)))
        return signalPassFailure();

      func::FuncOp eval = cloneStep(model, "_eval_step", "eval", symbols);
      keepResults(eval, notOutput);
      removeDropout(eval);

      if (hasOutputs) {
        func::FuncOp predict =
            cloneStep(model, "_predict_step", "predict", symbols);
        keepResults(predict, isOutput);
        removeDropout(predict);
        pruneToResults(predict);
      }
      LLVM_DEBUG(llvm::dbgs() << "differentiated @" << model.getSymName()
                              << " with " << numParams << " parameters\n");
    }
  }
};

} // namespace
