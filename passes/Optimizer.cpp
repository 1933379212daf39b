//===- Optimizer.cpp - the optimizer update as IR: one training step ------===//
//
// For each gradient function @m_grad made by kiln-autodiff, builds
//
//   @m_train_step(params..., state..., lr, inputs...)
//       -> (loss, metrics..., new params..., new state...)
//
// Optimizer state is explicit: a step counter `step` (i64) and, per
// parameter, `<name>.momentum_buffer` (SGD with momentum) or
// `<name>.exp_avg` and `<name>.exp_avg_sq` (Adam, AdamW), all zero at the
// start. The base learning rate `lr` is a hyper-parameter argument (role
// "hyper", f64, rank 0, initializer constant(lr)): it lives beside the
// state but the step only reads it, so a trainer can set it at run time
// (`--lr`) without recompiling; the schedule scales it. The update follows
// PyTorch's torch.optim definitions exactly:
//
//   t   = step + 1; lr_t = schedule(t)
//   g   = g * min(1, clip / (||g||_global + 1e-6))      (if clip > 0)
//   SGD:   g += wd p; b = mu b + g; g = nesterov ? g + mu b : b; p -= lr_t g
//   Adam:  g += wd p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
//          p -= lr_t / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
//   AdamW: p *= 1 - lr_t wd, then Adam without the wd term
//
// Schedules: constant; step (lr gamma^floor((t-1)/step_size)); cosine
// (min_lr + (lr-min_lr)(1+cos(pi p))/2 over total_steps after warm-up);
// all with an optional linear warm-up lr min(1, t/warmup).
//
// Scalar hyper-parameter arithmetic (schedule, bias corrections) is in f64,
// as torch.optim computes it in Python floats.
//
// The configuration comes from the model's `kiln.optimizer` attribute (the
// `optimizer` statement of the model file); pass options override it.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "ir/AttrNames.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"

#include <cmath>

#define DEBUG_TYPE "kiln-optimizer"

namespace kiln {
#define GEN_PASS_DEF_KILNOPTIMIZER
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// The optimizer configuration, after defaults, the model file and options.
struct Config {
  std::string kind = "sgd";
  double lr = 0.01, momentum = 0.0, weightDecay = 0.0;
  bool nesterov = false;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  std::string schedule = "constant";
  int64_t warmup = 0, totalSteps = 0, stepSize = 0;
  double gamma = 0.1, minLr = 0.0, clipNorm = 0.0;
};

/// Builds scalar arithmetic of one float type tersely.
struct ScalarBuilder {
  OpBuilder &b;
  Location loc;
  Type element;

  Value constant(double v) {
    auto type = RankedTensorType::get({}, element);
    return b.create<ConstantOp>(
        loc, DenseElementsAttr::get(type, b.getFloatAttr(element, v)));
  }
  Value add(Value x, Value y) { return b.create<AddOp>(loc, x, y); }
  Value sub(Value x, Value y) { return b.create<SubOp>(loc, x, y); }
  Value mul(Value x, Value y) { return b.create<MulOp>(loc, x, y); }
  Value div(Value x, Value y) { return b.create<DivOp>(loc, x, y); }
  Value min(Value x, Value y) { return b.create<MinOp>(loc, x, y); }
  Value max(Value x, Value y) { return b.create<MaxOp>(loc, x, y); }
  Value pow(Value x, Value y) { return b.create<PowOp>(loc, x, y); }
  Value sqrt(Value x) { return b.create<SqrtOp>(loc, x); }
  Value mul(double x, Value y) { return mul(constant(x), y); }
};

class OptimizerBuilder {
public:
  OptimizerBuilder(func::FuncOp grad, const Config &config)
      : grad(grad), config(config) {}

  FailureOr<func::FuncOp> build(StringRef name);

private:
  Value learningRate(ScalarBuilder &s, Value base, Value t);

  func::FuncOp grad;
  const Config &config;
};

Value OptimizerBuilder::learningRate(ScalarBuilder &s, Value base, Value t) {
  Value lr = base;
  if (config.schedule == "step" && config.stepSize > 0) {
    Value epochs = s.b.create<FloorOp>(
        s.loc, s.div(s.sub(t, s.constant(1)), s.constant(config.stepSize)));
    lr = s.mul(lr, s.pow(s.constant(config.gamma), epochs));
  } else if (config.schedule == "cosine" && config.totalSteps > 0) {
    int64_t span = std::max<int64_t>(1, config.totalSteps - config.warmup);
    Value progress =
        s.div(s.sub(t, s.constant(config.warmup)), s.constant(span));
    progress = s.min(s.max(progress, s.constant(0)), s.constant(1));
    Value cosine = s.b.create<CosOp>(s.loc, s.mul(s.constant(M_PI), progress));
    Value factor = s.mul(0.5, s.add(s.constant(1), cosine));
    Value minLr = s.constant(config.minLr);
    lr = s.add(minLr, s.mul(s.sub(base, minLr), factor));
  }
  if (config.warmup > 0)
    lr = s.mul(lr, s.min(s.constant(1), s.div(t, s.constant(config.warmup))));
  return lr;
}

FailureOr<func::FuncOp> OptimizerBuilder::build(StringRef name) {
  OpBuilder b(grad);
  Location loc = grad.getLoc();
  Block &gradBody = grad.getBody().front();
  auto gradReturn = gradBody.getTerminator();

  SmallVector<unsigned> paramArgs, inputArgs;
  for (unsigned i = 0; i < grad.getNumArguments(); ++i) {
    auto role = grad.getArgAttrOfType<StringAttr>(i, attrs::role);
    (role && role.getValue() == "param" ? paramArgs : inputArgs).push_back(i);
  }
  unsigned numOutputs = gradReturn->getNumOperands() - paramArgs.size();
  if (paramArgs.empty())
    return grad.emitError("the model has no parameters to train");
  Type element = llvm::cast<RankedTensorType>(
                     gradBody.getArgument(paramArgs.front()).getType())
                     .getElementType();

  // The train step's signature: params, state, inputs.
  SmallVector<Type> argTypes;
  SmallVector<DictionaryAttr> argAttrs;
  auto describe = [&](StringRef role, StringRef argName) {
    return b.getDictionaryAttr(
        {b.getNamedAttr(attrs::name, b.getStringAttr(argName)),
         b.getNamedAttr(attrs::role, b.getStringAttr(role))});
  };
  SmallVector<std::string> paramNames;
  for (unsigned i : paramArgs) {
    argTypes.push_back(gradBody.getArgument(i).getType());
    argAttrs.push_back(grad.getArgAttrDict(i));
    paramNames.push_back(
        grad.getArgAttrOfType<StringAttr>(i, attrs::name).getValue().str());
  }
  SmallVector<std::string> slots;
  if (config.kind == "sgd" && config.momentum != 0.0)
    slots = {"momentum_buffer"};
  else if (config.kind == "adam" || config.kind == "adamw")
    slots = {"exp_avg", "exp_avg_sq"};
  auto stepType = RankedTensorType::get({}, b.getI64Type());
  argTypes.push_back(stepType);
  argAttrs.push_back(describe("state", "step"));
  for (const std::string &slot : slots)
    for (auto [i, argIndex] : llvm::enumerate(paramArgs)) {
      argTypes.push_back(gradBody.getArgument(argIndex).getType());
      argAttrs.push_back(describe("state", paramNames[i] + "." + slot));
    }
  auto hyperType = RankedTensorType::get({}, b.getF64Type());
  argTypes.push_back(hyperType);
  argAttrs.push_back(b.getDictionaryAttr(
      {b.getNamedAttr(attrs::name, b.getStringAttr("lr")),
       b.getNamedAttr(attrs::role, b.getStringAttr("hyper")),
       b.getNamedAttr(attrs::init,
                      InitializerAttr::get(b.getContext(), InitKind::constant,
                                           config.lr, 0.0))}));
  for (unsigned i : inputArgs) {
    argTypes.push_back(gradBody.getArgument(i).getType());
    argAttrs.push_back(grad.getArgAttrDict(i));
  }

  b.setInsertionPointAfter(grad);
  auto step =
      b.create<func::FuncOp>(loc, name, b.getFunctionType(argTypes, {}));
  step->setAttr(attrs::step, b.getStringAttr("train"));
  Block *body = step.addEntryBlock();
  b.setInsertionPointToEnd(body);

  // Inline the gradient computation.
  IRMapping mapping;
  unsigned next = 0;
  for (unsigned i : paramArgs)
    mapping.map(gradBody.getArgument(i), body->getArgument(next++));
  Value stepCount = body->getArgument(next++);
  SmallVector<Value> state;
  for (size_t i = 0; i < slots.size() * paramArgs.size(); ++i)
    state.push_back(body->getArgument(next++));
  Value baseLr = body->getArgument(next++);
  for (unsigned i : inputArgs)
    mapping.map(gradBody.getArgument(i), body->getArgument(next++));
  for (Operation &op : gradBody.without_terminator())
    b.clone(op, mapping);
  SmallVector<Value> outputs, grads;
  for (auto [i, v] : llvm::enumerate(gradReturn->getOperands()))
    (i < numOutputs ? outputs : grads).push_back(mapping.lookup(v));

  // Tensor arithmetic runs in the parameters' type; the scalar
  // hyper-parameter arithmetic (schedule, bias corrections) in f64, as
  // torch.optim does it in Python floats, cast once where it meets tensors.
  ScalarBuilder s{b, loc, element};
  ScalarBuilder hyper{b, loc, b.getF64Type()};
  auto toElement = [&](Value v) {
    return element.isF64()
               ? v
               : b.create<CastOp>(loc, v, TypeAttr::get(element)).getResult();
  };
  Value newStep = b.create<AddOp>(
      loc, stepCount,
      b.create<ConstantOp>(
          loc, DenseElementsAttr::get(stepType, b.getI64IntegerAttr(1))));
  Value t = b.create<CastOp>(loc, newStep, TypeAttr::get(b.getF64Type()));
  Value lr64 = learningRate(hyper, baseLr, t);
  Value lr = toElement(lr64);

  if (config.clipNorm > 0) {
    Value total;
    for (Value g : grads) {
      Value squares = b.create<ReduceSumOp>(
          loc, s.mul(g, g), b.getDenseI64ArrayAttr({}), UnitAttr());
      total = total ? s.add(total, squares) : squares;
    }
    Value norm = s.sqrt(total);
    Value scale = s.min(s.constant(1), s.div(s.constant(config.clipNorm),
                                             s.add(norm, s.constant(1e-6))));
    for (Value &g : grads)
      g = s.mul(g, scale);
  }

  SmallVector<Value> newParams, newState(state.size());
  size_t n = paramArgs.size();
  for (size_t i = 0; i < n; ++i) {
    Value p = body->getArgument(i), g = grads[i];
    if (config.kind == "sgd") {
      if (config.weightDecay != 0)
        g = s.add(g, s.mul(config.weightDecay, p));
      if (config.momentum != 0) {
        Value buf = s.add(s.mul(config.momentum, state[i]), g);
        newState[i] = buf;
        g = config.nesterov ? s.add(g, s.mul(config.momentum, buf)) : buf;
      }
      newParams.push_back(s.sub(p, s.mul(lr, g)));
      continue;
    }
    bool decoupled = config.kind == "adamw";
    if (decoupled && config.weightDecay != 0)
      p = s.mul(p, toElement(hyper.sub(hyper.constant(1),
                                       hyper.mul(config.weightDecay, lr64))));
    if (!decoupled && config.weightDecay != 0)
      g = s.add(g, s.mul(config.weightDecay, p));
    Value m = s.add(s.mul(config.beta1, state[i]), s.mul(1 - config.beta1, g));
    Value v = s.add(s.mul(config.beta2, state[n + i]),
                    s.mul(1 - config.beta2, s.mul(g, g)));
    newState[i] = m;
    newState[n + i] = v;
    Value bc1 = hyper.sub(hyper.constant(1),
                          hyper.pow(hyper.constant(config.beta1), t));
    Value bc2 = hyper.sub(hyper.constant(1),
                          hyper.pow(hyper.constant(config.beta2), t));
    Value stepSize = toElement(hyper.div(lr64, bc1));
    Value bc2Sqrt = toElement(hyper.sqrt(bc2));
    Value denom = s.add(s.div(s.sqrt(v), bc2Sqrt), s.constant(config.eps));
    newParams.push_back(s.sub(p, s.mul(stepSize, s.div(m, denom))));
  }

  // Results: loss, metrics, new params, new state (step first).
  SmallVector<Value> results(outputs);
  SmallVector<DictionaryAttr> resultAttrs;
  for (unsigned i = 0; i < numOutputs; ++i)
    resultAttrs.push_back(grad.getResultAttrDict(i));
  for (size_t i = 0; i < n; ++i) {
    results.push_back(newParams[i]);
    resultAttrs.push_back(describe("param", paramNames[i]));
  }
  results.push_back(newStep);
  resultAttrs.push_back(describe("state", "step"));
  for (size_t k = 0; k < slots.size(); ++k)
    for (size_t i = 0; i < n; ++i) {
      results.push_back(newState[k * n + i]);
      resultAttrs.push_back(describe("state", paramNames[i] + "." + slots[k]));
    }
  b.create<func::ReturnOp>(loc, results);
  step.setType(b.getFunctionType(argTypes, ValueRange(results).getTypes()));
  step.setAllArgAttrs(argAttrs);
  step.setAllResultAttrs(resultAttrs);
  return step;
}

struct OptimizerPass : kiln::impl::KilnOptimizerBase<OptimizerPass> {
  using Base::Base;

  /// Defaults, then the model file's `kiln.optimizer`, then pass options.
  FailureOr<Config> configure(func::FuncOp grad) {
    Config c;
    if (auto dict = grad->getAttrOfType<DictionaryAttr>(attrs::optimizer)) {
      for (NamedAttribute entry : dict) {
        StringRef key = entry.getName().getValue();
        Attribute value = entry.getValue();
        auto number = [&](double &out) {
          if (auto f = llvm::dyn_cast<FloatAttr>(value))
            out = f.getValueAsDouble();
          else if (auto i = llvm::dyn_cast<IntegerAttr>(value))
            out = static_cast<double>(i.getInt());
        };
        auto integer = [&](int64_t &out) {
          if (auto i = llvm::dyn_cast<IntegerAttr>(value))
            out = i.getInt();
        };
        if (key == "kind")
          c.kind = llvm::cast<StringAttr>(value).getValue().str();
        else if (key == "lr")
          number(c.lr);
        else if (key == "momentum")
          number(c.momentum);
        else if (key == "weight_decay")
          number(c.weightDecay);
        else if (key == "nesterov")
          c.nesterov = llvm::cast<BoolAttr>(value).getValue();
        else if (key == "beta1")
          number(c.beta1);
        else if (key == "beta2")
          number(c.beta2);
        else if (key == "eps")
          number(c.eps);
        else if (key == "schedule")
          c.schedule = llvm::cast<StringAttr>(value).getValue().str();
        else if (key == "warmup")
          integer(c.warmup);
        else if (key == "total_steps")
          integer(c.totalSteps);
        else if (key == "step_size")
          integer(c.stepSize);
        else if (key == "gamma")
          number(c.gamma);
        else if (key == "min_lr")
          number(c.minLr);
        else if (key == "clip_norm")
          number(c.clipNorm);
      }
    }
    if (kind.hasValue())
      c.kind = kind;
    if (lr.hasValue())
      c.lr = lr;
    if (momentum.hasValue())
      c.momentum = momentum;
    if (weightDecay.hasValue())
      c.weightDecay = weightDecay;
    if (nesterov.hasValue())
      c.nesterov = nesterov;
    if (schedule.hasValue())
      c.schedule = schedule;
    if (warmup.hasValue())
      c.warmup = warmup;
    if (totalSteps.hasValue())
      c.totalSteps = totalSteps;
    if (clipNorm.hasValue())
      c.clipNorm = clipNorm;
    if (c.kind != "sgd" && c.kind != "adam" && c.kind != "adamw")
      return grad.emitError("unknown optimizer '")
             << c.kind << "'; expected sgd, adam or adamw";
    if (c.schedule != "constant" && c.schedule != "step" &&
        c.schedule != "cosine")
      return grad.emitError("unknown learning-rate schedule '")
             << c.schedule << "'; expected constant, step or cosine";
    if (c.schedule == "cosine" && c.totalSteps <= 0)
      return grad.emitError("the cosine schedule needs total_steps > 0");
    if (c.schedule == "step" && c.stepSize <= 0)
      return grad.emitError("the step schedule needs step_size > 0");
    if (!(c.lr > 0))
      return grad.emitError("the learning rate must be positive, got ") << c.lr;
    return c;
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    SmallVector<func::FuncOp> grads;
    for (auto func : module.getOps<func::FuncOp>())
      if (auto step = func->getAttrOfType<StringAttr>(attrs::step))
        if (step.getValue() == "grad")
          grads.push_back(func);
    for (func::FuncOp grad : grads) {
      FailureOr<Config> config = configure(grad);
      if (failed(config))
        return signalPassFailure();
      StringRef model = grad.getSymName().drop_back(strlen("_grad"));
      OptimizerBuilder builder(grad, *config);
      FailureOr<func::FuncOp> step =
          builder.build((model + "_train_step").str());
      if (failed(step))
        return signalPassFailure();
      symbols.insert(*step);
    }
  }
};

} // namespace
