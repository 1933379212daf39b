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
// schedule (#kiln.elementwise<block = 256>). On the CPU the elements go in
// rows: the trailing dimensions over which every input is either read
// contiguously or not at all (a bias broadcast over an image, a row
// broadcast over a batch) form a row, whose multi-index and load addresses
// are computed once; the row's loop advances each contiguous input by one
// and vectorizes. Rows go to the threads in tasks of about
// KILN_ELEMENTS_PER_TASK elements.
//
//===----------------------------------------------------------------------===//

#include "codegen/CodegenUtils.h"
#include "codegen/Template.h"

#include "mlir/IR/BuiltinTypes.h"

#include <set>

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

/// The kernel's ops but its iotas, in order; each iota's value is the
/// multi-index of its dimension (`i<d>`, added to `usedDims`), aligned with
/// the iteration shape from the right like a load.
static SmallVector<Operation *>
scalarOpsAndIotas(KernelOp kernel, ArrayRef<int64_t> shape,
                  llvm::DenseMap<Value, std::string> &locals,
                  std::set<int64_t> &usedDims, StringRef flat,
                  Operation *anchor) {
  SmallVector<Operation *> ops;
  for (Operation &op : kernel.getBlock().without_terminator()) {
    if (&op == anchor)
      continue;
    auto iota = llvm::dyn_cast<IotaOp>(op);
    if (!iota) {
      ops.push_back(&op);
      continue;
    }
    ArrayRef<int64_t> iotaShape = iota.getShape();
    int64_t out = static_cast<int64_t>(shape.size()) -
                  static_cast<int64_t>(iotaShape.size()) + iota.getDimension();
    if (iotaShape[iota.getDimension()] == 1) {
      locals[iota.getResult()] = "0";
      continue;
    }
    usedDims.insert(out);
    locals[iota.getResult()] = "(int)" + flat.str() + std::to_string(out);
  }
  return ops;
}

/// Whether the kernel's scalar code reads block argument `arg`: every
/// argument of an elementwise kernel, those the epilogue reads of a kernel
/// with a main op.
static bool readByScalarCode(BlockArgument arg, Operation *anchor) {
  return !anchor || llvm::any_of(arg.getUsers(), [&](Operation *user) {
    return user != anchor;
  });
}

LogicalResult kiln::codegen::emitElementwiseIteration(
    raw_indented_ostream &os, KernelOp kernel, ArrayRef<std::string> sizes,
    ArrayRef<std::string> inputs, ArrayRef<SmallVector<std::string, 1>> outputs,
    unsigned &next, Target target, StringRef flat, Operation *anchor,
    StringRef anchorValue) {
  // The iteration shape is the first result's.
  ArrayRef<int64_t> shape =
      llvm::cast<RankedTensorType>(kernel.getResult(0).getType()).getShape();
  std::string f = flat.str();

  // The flat index of an input broadcast against the iteration shape.
  std::set<int64_t> usedDims;
  auto broadcastIndex = [&](RankedTensorType input) -> std::string {
    if (input.getShape() == shape)
      return f;
    int64_t offset = static_cast<int64_t>(shape.size()) - input.getRank();
    std::string index, stride;
    for (int64_t d = input.getRank() - 1; d >= 0; --d) {
      int64_t out = d + offset;
      int64_t size = input.getDimSize(d);
      std::string term = f + std::to_string(out);
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
  if (anchor)
    locals[anchor->getResult(0)] = anchorValue.str();
  Code body;
  for (auto [n, arg] : llvm::enumerate(kernel.getBlock().getArguments())) {
    if (!readByScalarCode(arg, anchor))
      continue;
    std::string local = "x" + std::to_string(n);
    print(body.os, "const ${T} ${X} = ${IN}[${INDEX}];\n",
          {{"T", cType(elementOf(arg))},
           {"X", local},
           {"IN", inputs[n]},
           {"INDEX",
            broadcastIndex(llvm::cast<RankedTensorType>(arg.getType()))}});
    locals[arg] = local;
  }
  SmallVector<Operation *> ops =
      scalarOpsAndIotas(kernel, shape, locals, usedDims, flat, anchor);
  if (failed(emitScalarOps(body.os, ops, locals, flat, next, target)))
    return failure();
  Operation *yield = kernel.getBlock().getTerminator();
  for (auto [n, v] : llvm::enumerate(yield->getOperands()))
    for (const std::string &out : outputs[n])
      print(body.os, "${OUT}[${I}] = ${V};\n",
            {{"OUT", out}, {"I", f}, {"V", locals.lookup(v)}});

  for (int64_t d : usedDims) {
    std::string inner;
    for (size_t k = d + 1; k < shape.size(); ++k)
      inner += (inner.empty() ? "" : " * ") + sizes[k];
    print(os, "const long long ${I}${D} = ${QUOTIENT} % ${SIZE};\n",
          {{"I", f},
           {"D", std::to_string(d)},
           {"QUOTIENT", inner.empty() ? f : "(" + f + " / (" + inner + "))"},
           {"SIZE", sizes[d]}});
  }
  os << body.str();
  return success();
}

/// The C++ kernel in rows of `inner` elements: ${ROW} computes the row's
/// multi-index and input pointers from its first flat index, ${ELEMENT}
/// one element i = first + j.
constexpr const char *kElementwiseRowsCpp = R"(
${SIGNATURE} {
  const long long n = ${COUNT}, inner = ${INNER}, rows = n / inner;
  const long long rowsPerTask = inner < KILN_ELEMENTS_PER_TASK ? KILN_ELEMENTS_PER_TASK / inner : 1;
  kiln_parallel_for((rows + rowsPerTask - 1) / rowsPerTask, [&](long long begin, long long end) {
    const long long last = end * rowsPerTask < rows ? end * rowsPerTask : rows;
    for (long long r = begin * rowsPerTask; r < last; ++r) {
      const long long first = r * inner;
      ${ROW}
      // Iterations are independent (each writes its own outputs, in place
      // or not): no alias checks.
#pragma GCC ivdep
      for (long long j = 0; j < inner; ++j) {
        const long long i = first + j;
        ${ELEMENT}
      }
    }
  });
}
${ENTRY}
)";

/// The C++ epilogue over a range of result elements [epilogueFirst,
/// epilogueEnd), the main op's values at `values`, in runs that do not cross
/// a row of ${INNER} elements: ${ROW} computes a run's multi-index and input
/// pointers from its first flat index, ${ELEMENT} one element i = first + j.
constexpr const char *kEpilogueRangeCpp = R"(
{
  // The epilogue over the result elements [${FIRST}, + ${COUNT}), the main op's
  // values at ${VALUES}, in runs along rows of ${INNER} elements.
  const long long epilogueFirst = ${FIRST}, epilogueEnd = epilogueFirst + ${COUNT};
  for (long long first = epilogueFirst; first < epilogueEnd;) {
    const long long rowEnd = (first / (${INNER}) + 1) * (${INNER});
    const long long stop = rowEnd < epilogueEnd ? rowEnd : epilogueEnd;
    ${ROW}
#pragma GCC ivdep
    for (long long j = 0; j < stop - first; ++j) {
      const long long i = first + j;
      ${ELEMENT}
    }
    first = stop;
  }
}
)";

namespace {

/// How an input is read along the dimensions of a C++ row.
enum class RowAccess { contiguous, constant };

/// The number of trailing dimensions of `shape` that form the C++ rows of
/// `kernel`: over them every input its scalar code reads is read
/// contiguously (it has them all, at the iteration's sizes) or not at all
/// (it has none of them), and no iota counts along them.
unsigned rowDimensions(KernelOp kernel, ArrayRef<int64_t> shape,
                       Operation *anchor) {
  SmallVector<std::optional<RowAccess>> access(
      kernel.getBlock().getNumArguments());
  unsigned rank = shape.size(), dims = 0;
  for (; dims < rank; ++dims) {
    unsigned d = rank - 1 - dims;
    bool fits = true;
    for (auto [n, arg] : llvm::enumerate(kernel.getBlock().getArguments())) {
      if (!readByScalarCode(arg, anchor))
        continue;
      auto type = llvm::cast<RankedTensorType>(arg.getType());
      int64_t at = int64_t(d) - (int64_t(rank) - type.getRank());
      RowAccess here = at >= 0 && type.getDimSize(at) != 1
                           ? RowAccess::contiguous
                           : RowAccess::constant;
      if (here == RowAccess::contiguous && type.getDimSize(at) != shape[d])
        fits = false; // (a static 1 broadcast against a dynamic size)
      if (access[n] && *access[n] != here)
        fits = false;
      if (fits)
        access[n] = here;
    }
    for (auto iota : kernel.getBlock().getOps<IotaOp>()) {
      ArrayRef<int64_t> iotaShape = iota.getShape();
      int64_t out = int64_t(rank) - int64_t(iotaShape.size()) +
                    int64_t(iota.getDimension());
      if (out == int64_t(d) && iotaShape[iota.getDimension()] != 1)
        fits = false;
    }
    if (!fits)
      break;
  }
  return dims;
}

/// The C++ code of rows of the last `rowDims` dimensions: the row's length,
/// the code computing its multi-index and input pointers from its first flat
/// index `first` (which may lie inside a row when `midRow`), and one
/// element's code at i = first + j (loads, ops, stores). With an `anchor`
/// (the kernel's main op), its value at the element is `anchorValue` and
/// only the epilogue's inputs are loaded.
struct RowParts {
  std::string inner, row, element;
};

FailureOr<RowParts> rowParts(KernelOp kernel, ArrayRef<std::string> sizes,
                             unsigned rowDims, Operation *anchor,
                             StringRef anchorValue, bool midRow) {
  ArrayRef<int64_t> shape =
      llvm::cast<RankedTensorType>(kernel.getResult(0).getType()).getShape();
  unsigned rank = shape.size(), outer = rank - rowDims;
  RowParts parts;
  for (unsigned d = outer; d < rank; ++d)
    parts.inner += (parts.inner.empty() ? "" : " * ") + sizes[d];
  if (parts.inner.empty())
    parts.inner = "1LL";

  // Each input's element at `first`: its broadcast index over the outer
  // dimensions, scaled by its size along the row when it has the row's
  // dimensions (plus the offset into the row, when it may start inside).
  std::set<int64_t> usedDims;
  Code row, element;
  llvm::DenseMap<Value, std::string> locals;
  if (anchor)
    locals[anchor->getResult(0)] = anchorValue.str();
  for (auto [n, arg] : llvm::enumerate(kernel.getBlock().getArguments())) {
    if (!readByScalarCode(arg, anchor))
      continue;
    auto type = llvm::cast<RankedTensorType>(arg.getType());
    int64_t offset = int64_t(rank) - type.getRank();
    std::string index, stride;
    bool same = type.getShape() == shape, contiguous = same;
    for (int64_t d = type.getRank() - 1; d >= 0 && !same; --d) {
      int64_t out = d + offset;
      int64_t size = type.getDimSize(d);
      std::string dimSize =
          ShapedType::isDynamic(size) ? sizes[out] : std::to_string(size);
      if (out >= int64_t(outer)) {
        contiguous |= size != 1;
      } else if (size != 1) {
        usedDims.insert(out);
        std::string term = "i" + std::to_string(out);
        std::string scaled = stride.empty() ? term : term + " * " + stride;
        index = index.empty() ? scaled : scaled + " + " + index;
      }
      stride = stride.empty() ? dimSize : stride + " * " + dimSize;
    }
    if (same)
      index = "first"; // the iteration's own shape
    else if (contiguous && midRow)
      index = (index.empty() ? "" : index + " + ") + "first % (" + parts.inner +
              ")";
    std::string pointer = "p" + std::to_string(n);
    print(row.os, "const ${T} *__restrict__ ${P} = in${N} + ${INDEX};\n",
          {{"T", cType(elementOf(arg))},
           {"P", pointer},
           {"N", std::to_string(n)},
           {"INDEX", index.empty() ? "0" : index}});
    std::string local = "x" + std::to_string(n);
    print(element.os, "const ${T} ${X} = ${P}[${J}];\n",
          {{"T", cType(elementOf(arg))},
           {"X", local},
           {"P", pointer},
           {"J", contiguous ? "j" : "0"}});
    locals[arg] = local;
  }
  // (rowDimensions keeps iotas off the row's dimensions.)
  SmallVector<Operation *> ops =
      scalarOpsAndIotas(kernel, shape, locals, usedDims, "i", anchor);
  unsigned next = 0;
  if (failed(emitScalarOps(element.os, ops, locals, "i", next, Target::cpp)))
    return failure();
  Operation *yield = kernel.getBlock().getTerminator();
  for (auto [n, v] : llvm::enumerate(yield->getOperands()))
    print(element.os, "out${N}[i] = ${V};\n",
          {{"N", std::to_string(n)}, {"V", locals.lookup(v)}});

  Code multiIndex;
  for (int64_t d : usedDims) {
    std::string below;
    for (size_t k = d + 1; k < rank; ++k)
      below += (below.empty() ? "" : " * ") + sizes[k];
    print(multiIndex.os, "const long long i${D} = ${QUOTIENT} % ${SIZE};\n",
          {{"D", std::to_string(d)},
           {"QUOTIENT", below.empty() ? "first" : "(first / (" + below + "))"},
           {"SIZE", sizes[d]}});
  }
  parts.row = multiIndex.str() + row.str();
  parts.element = element.str();
  return parts;
}

} // namespace

/// The C++ kernel over rows of the last `rowDims` dimensions (see the file
/// comment).
static LogicalResult emitElementwiseRows(raw_indented_ostream &os,
                                         KernelOp kernel,
                                         const GeneratedKernel &generated,
                                         ArrayRef<std::string> sizes,
                                         StringRef count, unsigned rowDims) {
  FailureOr<RowParts> parts =
      rowParts(kernel, sizes, rowDims, nullptr, "", /*midRow=*/false);
  if (failed(parts))
    return failure();
  print(os, kElementwiseRowsCpp,
        {{"SIGNATURE", signature(kernel, generated, Target::cpp)},
         {"COUNT", count.str()},
         {"INNER", parts->inner},
         {"ROW", parts->row},
         {"ELEMENT", parts->element},
         {"ENTRY", cppEntry(kernel, generated)}});
  return success();
}

LogicalResult kiln::codegen::emitEpilogueRangeCpp(
    raw_indented_ostream &os, KernelOp kernel, Operation *anchor,
    ArrayRef<std::string> sizes, StringRef first, StringRef count,
    StringRef values) {
  ArrayRef<int64_t> shape =
      llvm::cast<RankedTensorType>(kernel.getResult(0).getType()).getShape();
  unsigned rowDims = rowDimensions(kernel, shape, anchor);
  std::string value = values.str() + "[first - epilogueFirst + j]";
  FailureOr<RowParts> parts =
      rowParts(kernel, sizes, rowDims, anchor, value, /*midRow=*/true);
  if (failed(parts))
    return failure();
  print(os, kEpilogueRangeCpp,
        {{"FIRST", first.str()},
         {"COUNT", count.str()},
         {"VALUES", values.str()},
         {"INNER", parts->inner},
         {"ROW", parts->row},
         {"ELEMENT", parts->element}});
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
                                      outputs, next, target)))
    return failure();

  std::string count;
  for (size_t d = 0; d < shape.size(); ++d)
    count += (d ? " * " : "") + sizes[d];
  Code text;
  writeKernelComment(text.os, kernel);
  unsigned rowDims = rowDimensions(kernel, shape, nullptr);
  if (target == Target::cpp && rowDims > 0) {
    if (failed(emitElementwiseRows(text.os, kernel, generated, sizes,
                                   count.empty() ? "1LL" : count, rowDims)))
      return failure();
    generated.source = text.str();
    return generated;
  }
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
