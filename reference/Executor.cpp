//===- Executor.cpp - the reference executor ------------------------------===//
//
// Walks the function's single block in order, keeping one tensor per SSA
// value, and dispatches each op to its kernel in Kernels.cpp. Every op of
// the dialect has a case here; an op without one is a located error.
//
//===----------------------------------------------------------------------===//

#include "reference/Executor.h"
#include "reference/Kernels.h"

#include "ir/KilnDialect.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace kiln;
using namespace kiln::reference;

namespace {

constexpr double kPi = 3.14159265358979323846;

/// Evaluates one op; the result goes to `out`.
class OpEvaluator {
public:
  OpEvaluator(Executor &executor, ExecutorOptions options,
              llvm::DenseMap<Value, Tensor> &values)
      : executor(executor), options(options), values(values) {}

  LogicalResult evaluate(Operation *op) {
    auto resultType = [&]() -> ElementType {
      auto type = llvm::cast<RankedTensorType>(op->getResult(0).getType());
      return *elementTypeOf(type.getElementType());
    };
    for (Value result : op->getResults()) {
      auto type = llvm::dyn_cast<RankedTensorType>(result.getType());
      if (!type || !elementTypeOf(type.getElementType()))
        return op->emitError("the reference executor does not support type ")
               << result.getType();
    }
    auto in = [&](unsigned i) -> const Tensor & {
      return values.find(op->getOperand(i))->second;
    };
    auto unary = [&](double (*f)(double)) {
      return Result(map(in(0), resultType(), f));
    };
    auto binary = [&](auto f) {
      return zip({&in(0), &in(1)}, resultType(),
                 [&](ArrayRef<double> v) { return f(v[0], v[1]); });
    };

    // Ops with several results.
    auto storeAll = [&](Results results) -> LogicalResult {
      if (!results) {
        op->emitError() << llvm::toString(results.takeError());
        return failure();
      }
      for (auto [value, tensor] : llvm::zip(op->getResults(), *results))
        values[value] = std::move(tensor);
      return success();
    };
    if (auto a = llvm::dyn_cast<AttentionOp>(op))
      return storeAll(attention(in(0), in(1), in(2), a.getCausal(),
                                a.getScale().convertToDouble()));
    if (auto a = llvm::dyn_cast<AttentionGradKvOp>(op))
      return storeAll(attentionGradKv(in(0), in(1), in(2), in(3), in(4), in(5),
                                      a.getCausal(),
                                      a.getScale().convertToDouble()));

    std::optional<Result> result =
        llvm::TypeSwitch<Operation *, std::optional<Result>>(op)
            .Case([&](ConstantOp c) -> std::optional<Result> {
              Tensor t(resultType(),
                       std::vector<int64_t>(c.getType().getShape()));
              auto elements = llvm::cast<DenseElementsAttr>(c.getValue());
              int64_t i = 0;
              if (isFloat(t.type))
                for (APFloat v : elements.getValues<APFloat>())
                  t.data[i++] = v.convertToDouble();
              else
                for (APInt v : elements.getValues<APInt>())
                  t.data[i++] = t.type == ElementType::i1
                                    ? double(v.getBoolValue())
                                    : double(v.getSExtValue());
              return Result(std::move(t));
            })
            .Case([&](ParamOp p) -> std::optional<Result> {
              auto it = executor.getParameters().find(p.getName());
              if (it == executor.getParameters().end()) {
                p.emitError("parameter '") << p.getName() << "' has no value";
                return std::nullopt;
              }
              if (it->second.shape !=
                  std::vector<int64_t>(p.getType().getShape())) {
                p.emitError("parameter '")
                    << p.getName() << "' has shape "
                    << reference::formatShape(it->second.shape) << ", expected "
                    << reference::formatShape(p.getType().getShape());
                return std::nullopt;
              }
              return Result(it->second);
            })
            // Elementwise unary.
            .Case([&](NegOp) { return unary([](double x) { return -x; }); })
            .Case([&](AbsOp) {
              return unary([](double x) { return std::fabs(x); });
            })
            .Case([&](ExpOp) {
              return unary([](double x) { return std::exp(x); });
            })
            .Case([&](LogOp) {
              return unary([](double x) { return std::log(x); });
            })
            .Case([&](TanhOp) {
              return unary([](double x) { return std::tanh(x); });
            })
            .Case([&](SigmoidOp) {
              return unary([](double x) { return 1.0 / (1.0 + std::exp(-x)); });
            })
            .Case([&](ReluOp) {
              return unary([](double x) { return x > 0 ? x : 0.0; });
            })
            .Case([&](SqrtOp) {
              return unary([](double x) { return std::sqrt(x); });
            })
            .Case([&](RsqrtOp) {
              return unary([](double x) { return 1.0 / std::sqrt(x); });
            })
            .Case([&](CosOp) {
              return unary([](double x) { return std::cos(x); });
            })
            .Case([&](SinOp) {
              return unary([](double x) { return std::sin(x); });
            })
            .Case([&](FloorOp) {
              return unary([](double x) { return std::floor(x); });
            })
            .Case([&](GeluOp g) {
              if (g.getApproximate() == GeluApproximation::tanh)
                return unary([](double x) {
                  double k = std::sqrt(2.0 / kPi);
                  return 0.5 * x *
                         (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
                });
              return unary([](double x) {
                return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
              });
            })
            .Case([&](CastOp) {
              return Result(
                  map(in(0), resultType(), [](double x) { return x; }));
            })
            // Elementwise binary.
            .Case([&](AddOp) {
              return binary([](double a, double b) { return a + b; });
            })
            .Case([&](SubOp) {
              return binary([](double a, double b) { return a - b; });
            })
            .Case([&](MulOp) {
              return binary([](double a, double b) { return a * b; });
            })
            .Case([&](DivOp) {
              bool integer = !isFloat(resultType());
              return binary([integer](double a, double b) {
                return integer ? std::trunc(a / b) : a / b;
              });
            })
            .Case([&](MaxOp) {
              return binary([](double a, double b) { return std::max(a, b); });
            })
            .Case([&](MinOp) {
              return binary([](double a, double b) { return std::min(a, b); });
            })
            .Case([&](PowOp) {
              return binary([](double a, double b) { return std::pow(a, b); });
            })
            .Case([&](CmpOp c) {
              CmpPredicate p = c.getPredicate();
              return binary([p](double a, double b) -> double {
                switch (p) {
                case CmpPredicate::eq:
                  return a == b;
                case CmpPredicate::ne:
                  return a != b;
                case CmpPredicate::lt:
                  return a < b;
                case CmpPredicate::le:
                  return a <= b;
                case CmpPredicate::gt:
                  return a > b;
                case CmpPredicate::ge:
                  return a >= b;
                }
                return 0.0;
              });
            })
            .Case([&](SelectOp) {
              return zip({&in(0), &in(1), &in(2)}, resultType(),
                         [](ArrayRef<double> v) { return v[0] ? v[1] : v[2]; });
            })
            // Matmul and layout.
            .Case([&](MatmulOp m) {
              return matmul(in(0), in(1), m.getTransposeLhs(),
                            m.getTransposeRhs());
            })
            .Case([&](IotaOp i) -> std::optional<Result> {
              return Result(iota(i.getShape(), i.getDimension()));
            })
            .Case([&](TransposeOp t) {
              return transpose(in(0), t.getPermutation());
            })
            .Case([&](ReshapeOp r) { return reshape(in(0), r.getShape()); })
            .Case([&](BroadcastOp) { return broadcastTo(in(0), in(1).shape); })
            // Reductions.
            .Case([&](ReduceSumOp r) {
              return reduce(in(0), r.getAxes(), r.getKeepdims(),
                            Reduction::sum);
            })
            .Case([&](ReduceMeanOp r) {
              return reduce(in(0), r.getAxes(), r.getKeepdims(),
                            Reduction::mean);
            })
            .Case([&](ReduceMaxOp r) {
              return reduce(in(0), r.getAxes(), r.getKeepdims(),
                            Reduction::max);
            })
            .Case([&](ArgmaxOp a) {
              return argmax(in(0), static_cast<int64_t>(a.getAxis()),
                            a.getKeepdims());
            })
            // Normalization and losses.
            .Case([&](SoftmaxOp s) {
              return softmax(in(0), static_cast<int64_t>(s.getAxis()),
                             /*log=*/false);
            })
            .Case([&](LogSoftmaxOp s) {
              return softmax(in(0), static_cast<int64_t>(s.getAxis()),
                             /*log=*/true);
            })
            .Case([&](CrossEntropyOp) { return crossEntropy(in(0), in(1)); })
            .Case([&](LayerNormOp l) {
              return layerNorm(in(0), in(1), in(2),
                               l.getEpsilon().convertToDouble());
            })
            // Convolution, pooling, embedding, dropout.
            .Case([&](Conv2dOp c) {
              return conv2d(in(0), in(1), c.getStride(), c.getPadding());
            })
            .Case([&](MaxPool2dOp p) {
              return pool2d(in(0), p.getKernel(), p.getStride(), p.getPadding(),
                            /*max=*/true);
            })
            .Case([&](AvgPool2dOp p) {
              return pool2d(in(0), p.getKernel(), p.getStride(), p.getPadding(),
                            /*max=*/false);
            })
            .Case([&](EmbeddingOp) { return embedding(in(0), in(1)); })
            .Case([&](DropoutOp d) {
              if (!options.training)
                return Result(in(0));
              return Result(dropout(in(0), d.getRate().convertToDouble(),
                                    options.seed,
                                    static_cast<uint64_t>(d.getStream())));
            })
            // Gradient primitives.
            .Case([&](CountOp c) -> Result {
              std::vector<int64_t> axes(c.getAxes().begin(), c.getAxes().end());
              double count = 1;
              for (int64_t d = 0; d < in(0).rank(); ++d)
                if (axes.empty() || llvm::is_contained(axes, d) ||
                    llvm::is_contained(axes, d - in(0).rank()))
                  count *= static_cast<double>(in(0).shape[d]);
              return Tensor(resultType(), {}, {count});
            })
            .Case([&](CrossEntropyGradOp) {
              return crossEntropyGrad(in(0), in(1), in(2));
            })
            .Case([&](GeluGradOp g) {
              bool approximate = g.getApproximate() == GeluApproximation::tanh;
              return zip(
                  {&in(0), &in(1)}, resultType(),
                  [approximate](ArrayRef<double> v) {
                    double x = v[0];
                    if (approximate) {
                      double k = std::sqrt(2.0 / kPi);
                      double u = k * (x + 0.044715 * x * x * x);
                      double t = std::tanh(u);
                      double du = k * (1.0 + 3 * 0.044715 * x * x);
                      return v[1] *
                             (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du);
                    }
                    double cdf = 0.5 * (1.0 + std::erf(x / std::sqrt(2.0)));
                    double pdf = std::exp(-0.5 * x * x) / std::sqrt(2.0 * kPi);
                    return v[1] * (cdf + x * pdf);
                  });
            })
            .Case([&](Conv2dGradInputOp c) {
              return conv2dGradInput(in(0), in(1), in(2).shape, c.getStride(),
                                     c.getPadding());
            })
            .Case([&](Conv2dGradWeightOp c) {
              return conv2dGradWeight(in(0), in(1), in(2).shape, c.getStride(),
                                      c.getPadding());
            })
            .Case([&](MaxPool2dGradOp p) {
              return maxPool2dGrad(in(0), in(1), p.getKernel(), p.getStride(),
                                   p.getPadding());
            })
            .Case([&](AvgPool2dGradOp p) {
              return avgPool2dGrad(in(0), in(1).shape, p.getKernel(),
                                   p.getStride(), p.getPadding());
            })
            .Case([&](EmbeddingGradOp) {
              return embeddingGrad(in(0), in(1), in(2).shape);
            })
            .Case([&](AttentionGradQOp a) {
              return attentionGradQ(in(0), in(1), in(2), in(3), in(4), in(5),
                                    a.getCausal(),
                                    a.getScale().convertToDouble());
            })
            // Composites run as their definitions.
            .Case([&](LinearOp l) -> Result {
              Result y = matmul(in(0), in(1), false, true);
              if (!y || !l.getBias())
                return y;
              return zip({&*y, &in(2)}, resultType(),
                         [](ArrayRef<double> v) { return v[0] + v[1]; });
            })
            .Case([&](AccuracyOp) -> Result {
              auto predicted = argmax(in(0), -1, false);
              if (!predicted)
                return predicted.takeError();
              auto correct = zip(
                  {&*predicted, &in(1)}, resultType(),
                  [](ArrayRef<double> v) -> double { return v[0] == v[1]; });
              if (!correct)
                return correct.takeError();
              return reduce(*correct, {}, false, Reduction::mean);
            })
            .Default([&](Operation *) -> std::optional<Result> {
              op->emitError("the reference executor has no kernel for '")
                  << op->getName() << "'";
              return std::nullopt;
            });

    if (!result)
      return failure();
    if (!*result) {
      op->emitError() << llvm::toString(result->takeError());
      return failure();
    }
    values[op->getResult(0)] = std::move(**result);
    return success();
  }

private:
  Executor &executor;
  ExecutorOptions options;
  llvm::DenseMap<Value, Tensor> &values;
};

} // namespace

FailureOr<std::vector<Tensor>> Executor::run(func::FuncOp func,
                                             ArrayRef<Tensor> args) {
  Block &body = func.getBody().front();
  if (args.size() != body.getNumArguments())
    return func.emitError("expected ")
           << body.getNumArguments() << " arguments, got " << args.size();
  llvm::DenseMap<Value, Tensor> values;
  for (auto [arg, tensor] : llvm::zip(body.getArguments(), args)) {
    auto type = llvm::cast<RankedTensorType>(arg.getType());
    std::optional<ElementType> element = elementTypeOf(type.getElementType());
    bool shapeMatches = type.getRank() == tensor.rank();
    for (int64_t d = 0; shapeMatches && d < type.getRank(); ++d)
      shapeMatches =
          type.isDynamicDim(d) || type.getDimSize(d) == tensor.shape[d];
    if (!element || *element != tensor.type || !shapeMatches)
      return emitError(arg.getLoc(), "argument ")
             << arg.getArgNumber() << " of type " << type
             << " cannot take a tensor of " << spell(tensor.type)
             << reference::formatShape(tensor.shape);
    values[arg] = tensor;
  }
  if (failed(runBlock(body, values)))
    return failure();
  std::vector<Tensor> results;
  for (Value v : body.getTerminator()->getOperands())
    results.push_back(values[v]);
  return results;
}

FailureOr<std::vector<Tensor>> Executor::runKernel(KernelOp kernel,
                                                   ArrayRef<Tensor> inputs) {
  Block &block = kernel.getBlock();
  if (inputs.size() != block.getNumArguments())
    return kernel.emitError("expected ")
           << block.getNumArguments() << " inputs, got " << inputs.size();
  llvm::DenseMap<Value, Tensor> values;
  for (auto [arg, tensor] : llvm::zip(block.getArguments(), inputs))
    values[arg] = tensor;
  if (failed(runBlock(block, values)))
    return failure();
  std::vector<Tensor> results;
  for (Value v : block.getTerminator()->getOperands())
    results.push_back(values[v]);
  return results;
}

LogicalResult Executor::runBlock(Block &block,
                                 llvm::DenseMap<Value, Tensor> &values) {
  OpEvaluator evaluator(*this, options, values);
  for (Operation &op : block.without_terminator()) {
    auto kernel = llvm::dyn_cast<KernelOp>(op);
    if (!kernel) {
      if (failed(evaluator.evaluate(&op)))
        return failure();
      continue;
    }
    // A fused kernel computes exactly what its ops compute, one by one; a
    // horizontal kernel's segments are kernels, run in order.
    llvm::DenseMap<Value, Tensor> inner;
    for (auto [arg, input] :
         llvm::zip(kernel.getBlock().getArguments(), kernel.getInputs()))
      inner[arg] = values[input];
    if (failed(runBlock(kernel.getBlock(), inner)))
      return failure();
    for (auto [result, yielded] :
         llvm::zip(kernel.getResults(),
                   kernel.getBlock().getTerminator()->getOperands()))
      values[result] = std::move(inner[yielded]);
  }
  return success();
}
