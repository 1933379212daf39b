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
#include "ir/ScalarSemantics.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace kiln;
using namespace kiln::reference;

namespace {

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
    auto store = [&](Result result) -> LogicalResult {
      if (!result) {
        op->emitError() << llvm::toString(result.takeError());
        return failure();
      }
      values[op->getResult(0)] = std::move(*result);
      return success();
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
    // The reference executor is one rank: an all-reduce over the ranks of
    // a data-parallel run is the identity.
    if (llvm::isa<AllReduceOp>(op)) {
      for (unsigned i = 0; i < op->getNumResults(); ++i) {
        Tensor copy = in(i);
        values[op->getResult(i)] = std::move(copy);
      }
      return success();
    }
    if (auto a = llvm::dyn_cast<AttentionOp>(op))
      return storeAll(attention(in(0), in(1), in(2), a.getCausal(),
                                a.getScale().convertToDouble()));
    if (auto a = llvm::dyn_cast<AttentionGradKvOp>(op))
      return storeAll(attentionGradKv(in(0), in(1), in(2), in(3), in(4), in(5),
                                      a.getCausal(),
                                      a.getScale().convertToDouble()));

    // Scalar ops: the dialect's table (ir/ScalarSemantics.h) over the
    // broadcast of the operands.
    if (std::optional<ScalarSemantics> scalar = scalarSemantics(op)) {
      SmallVector<const Tensor *> operands;
      for (unsigned i = 0; i < op->getNumOperands(); ++i)
        operands.push_back(&in(i));
      return store(reference::zip(operands, resultType(), scalar->evaluate));
    }

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
    return store(std::move(*result));
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
