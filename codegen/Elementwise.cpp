//===- Elementwise.cpp - one loop over the output elements ----------------===//
//
// An elementwise kernel iterates over the flat index i of its output shape S
// (dynamic sizes are parameters):
//
//   1. split i into the multi-index (i0, i1, ...) of S, the dimensions that
//      broadcast loads need only;
//   2. load each input once, indexing it by NumPy broadcasting against S
//      (a size-1 or missing dimension does not advance);
//   3. evaluate the fused ops in order as scalar C, one local per op,
//      commented with the op's source location; an iota is the multi-index
//      of its dimension (broadcast like an input);
//   4. store every kernel result at i.
//
// On the GPU the loop is grid-stride with the block of the kernel's
// schedule (#kiln.elementwise<block = 256>); on the CPU it is a plain loop.
//
//===----------------------------------------------------------------------===//

#include "codegen/CodegenUtils.h"
#include "codegen/Template.h"

#include "mlir/IR/BuiltinTypes.h"

#include <set>

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

LogicalResult kiln::codegen::emitElementwiseIteration(
    raw_indented_ostream &os, KernelOp kernel, ArrayRef<std::string> sizes,
    ArrayRef<std::string> inputs, ArrayRef<SmallVector<std::string, 1>> outputs,
    unsigned &next) {
  // The iteration shape is the first result's.
  ArrayRef<int64_t> shape =
      llvm::cast<RankedTensorType>(kernel.getResult(0).getType()).getShape();

  // The flat index of an input broadcast against the iteration shape.
  std::set<int64_t> usedDims;
  auto broadcastIndex = [&](RankedTensorType input) -> std::string {
    if (input.getShape() == shape)
      return "i";
    int64_t offset = static_cast<int64_t>(shape.size()) - input.getRank();
    std::string index, stride;
    for (int64_t d = input.getRank() - 1; d >= 0; --d) {
      int64_t out = d + offset;
      int64_t size = input.getDimSize(d);
      std::string term = "i" + std::to_string(out);
      if (size != 1) {
        usedDims.insert(out);
        std::string scaled = stride.empty() ? term : term + " * " + stride;
        index = index.empty() ? scaled : scaled + " + " + index;
      }
      std::string dimSize =
          ShapedType::isDynamic(size) ? sizes[out] : std::to_string(size);
      stride = stride.empty() ? dimSize : stride + " * " + dimSize;
    }
    return index.empty() ? "0" : index;
  };

  // Loads and ops first: they decide which multi-index dimensions are
  // needed, which come before them.
  llvm::DenseMap<Value, std::string> locals;
  Code body;
  for (auto [n, arg] : llvm::enumerate(kernel.getBlock().getArguments())) {
    std::string local = "x" + std::to_string(n);
    print(body.os, "const ${T} ${X} = ${IN}[${INDEX}];\n",
          {{"T", cType(elementOf(arg))},
           {"X", local},
           {"IN", inputs[n]},
           {"INDEX",
            broadcastIndex(llvm::cast<RankedTensorType>(arg.getType()))}});
    locals[arg] = local;
  }
  SmallVector<Operation *> ops;
  for (Operation &op : kernel.getBlock().without_terminator()) {
    auto iota = llvm::dyn_cast<IotaOp>(op);
    if (!iota) {
      ops.push_back(&op);
      continue;
    }
    // Aligned with the iteration shape from the right, like a load.
    ArrayRef<int64_t> iotaShape = iota.getShape();
    int64_t out = static_cast<int64_t>(shape.size()) -
                  static_cast<int64_t>(iotaShape.size()) + iota.getDimension();
    if (iotaShape[iota.getDimension()] == 1) {
      locals[iota.getResult()] = "0";
      continue;
    }
    usedDims.insert(out);
    locals[iota.getResult()] = "(int)i" + std::to_string(out);
  }
  if (failed(emitScalarOps(body.os, ops, locals, "i", next)))
    return failure();
  Operation *yield = kernel.getBlock().getTerminator();
  for (auto [n, v] : llvm::enumerate(yield->getOperands()))
    for (const std::string &out : outputs[n])
      print(body.os, "${OUT}[i] = ${V};\n",
            {{"OUT", out}, {"V", locals.lookup(v)}});

  for (int64_t d : usedDims) {
    std::string inner;
    for (size_t k = d + 1; k < shape.size(); ++k)
      inner += (inner.empty() ? "" : " * ") + sizes[k];
    print(os, "const long long i${D} = ${QUOTIENT} % ${SIZE};\n",
          {{"D", std::to_string(d)},
           {"QUOTIENT", inner.empty() ? "i" : "(i / (" + inner + "))"},
           {"SIZE", sizes[d]}});
  }
  os << body.str();
  return success();
}

/// The kernel over the flat index i < n of its output shape.
constexpr const char *kElementwiseCuda = R"(
${SIGNATURE} {
  const long long n = ${COUNT};
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x) {
    ${ITERATION}
  }
}
)";
/// The C++ kernel: the elements in tasks of KILN_ELEMENTS_PER_TASK, split
/// among the threads.
constexpr const char *kElementwiseCpp = R"(
${SIGNATURE} {
  const long long n = ${COUNT};
  kiln_parallel_for((n + KILN_ELEMENTS_PER_TASK - 1) / KILN_ELEMENTS_PER_TASK, [&](long long begin, long long end) {
    const long long last = end * KILN_ELEMENTS_PER_TASK < n ? end * KILN_ELEMENTS_PER_TASK : n;
    for (long long i = begin * KILN_ELEMENTS_PER_TASK; i < last; ++i) {
      ${ITERATION}
    }
  });
}
${ENTRY}
)";

FailureOr<GeneratedKernel>
kiln::codegen::generateElementwise(KernelOp kernel, llvm::StringRef symbol,
                                   Target target) {
  GeneratedKernel generated;
  if (failed(initGenerated(kernel, symbol, generated)))
    return failure();
  // The iteration shape is the first result's; results are its operands
  // numInputs, numInputs + 1, ...
  auto outType = llvm::cast<RankedTensorType>(kernel.getResult(0).getType());
  ArrayRef<int64_t> shape = outType.getShape();
  unsigned outOperand = generated.numInputs;
  SmallVector<std::string> sizes;
  for (unsigned d = 0; d < shape.size(); ++d)
    sizes.push_back(dimSize(generated, outType, outOperand, d));

  SmallVector<std::string> inputs;
  for (unsigned n = 0; n < generated.numInputs; ++n)
    inputs.push_back("in" + std::to_string(n));
  SmallVector<SmallVector<std::string, 1>> outputs;
  for (unsigned n = 0; n < generated.numOutputs; ++n)
    outputs.push_back({"out" + std::to_string(n)});
  Code iteration;
  unsigned next = 0;
  if (failed(emitElementwiseIteration(iteration.os, kernel, sizes, inputs,
                                      outputs, next)))
    return failure();

  std::string count;
  for (size_t d = 0; d < shape.size(); ++d)
    count += (d ? " * " : "") + sizes[d];
  Code text;
  writeKernelComment(text.os, kernel);
  print(text.os, target == Target::cuda ? kElementwiseCuda : kElementwiseCpp,
        {{"SIGNATURE", signature(kernel, generated, target)},
         {"COUNT", count.empty() ? "1LL" : count},
         {"ITERATION", iteration.str()},
         {"ENTRY", target == Target::cpp ? cppEntry(kernel, generated) : ""}});
  generated.source = text.str();

  // One thread per element, the schedule's block of them a block.
  if (failed(setElementwiseBlock(kernel, target, generated)))
    return failure();
  GridExtent &grid = generated.launch.grid[0];
  grid.perBlock = generated.launch.block[0];
  for (auto [d, size] : llvm::enumerate(shape)) {
    if (ShapedType::isDynamic(size))
      grid.dynamicFactors.push_back(dynamicDimIndex(generated, outOperand, d));
    else
      grid.constant *= size;
  }
  return generated;
}
