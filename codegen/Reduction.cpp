//===- Reduction.cpp - one reduction with a prologue and an epilogue ------===//
//
// A reduction kernel holds one reduction op R, the elementwise ops before it
// that compute its input (the prologue, evaluated per input element) and
// the elementwise ops after it (the epilogue, evaluated per output element;
// for softmax, log_softmax, cross_entropy_grad and layer_norm, whose result
// has the input's shape, per input element). The generator:
//
//   1. splits R's input dimensions into kept and reduced ones, drops static
//      size-1 dimensions and merges neighbours of one class: an output row
//      o enumerates the kept dimensions, a position k the reduced ones, and
//      the input element of (o, k) has flat index e;
//   2. writes each of R's row computations as passes over k (a sum, a
//      maximum or a first maximum), each followed by the row-uniform values
//      it yields (softmax: max, then the sum of exp(x - max));
//   3. picks how threads share the rows (CUDA) or loops over them (C++;
//      rows in tasks of the threads, each row's sum or maximum in eight
//      lanes, k = l mod 8; with the kept dimensions innermost, blocks of
//      consecutive columns a task, their lanes folded a row at a time);
//
//      rows, reduced innermost   one warp a row (a reduced extent known and
//                                at most 1024) or one block a row; lanes
//                                stride over k, then butterfly shuffles and
//                                a fixed-order sum of per-warp values in
//                                shared memory;
//      columns, kept innermost   a block of BX x BY threads: x over BX
//                                consecutive kept columns (coalesced), y
//                                over BY slices of k; the slices combine in
//                                shared memory in order of y;
//      cross_entropy             one block; warps take rows, and the
//                                per-row losses sum in fixed order;
//      count                     one thread.
//
// Every combination has a fixed order (no atomics, nothing across blocks),
// so results are bit-for-bit the same run to run. f32 sums accumulate in
// float, as the IR's type says; the tests allow for the reference
// executor's double accumulation.
//
//===----------------------------------------------------------------------===//

#include "codegen/CodegenUtils.h"
#include "codegen/DeviceSources.h"
#include "codegen/Template.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <optional>

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

namespace {

/// What R computes per output row.
enum class Family { reduce, argmax, count, rowwise, crossEntropy };

/// How a pass over a row folds its elements.
enum class Fold { sum, max, argmax };

/// How the work is shared: the C++ target loops; the CUDA schemes are
/// described in the file header.
enum class Scheme { loops, warpRows, blockRows, columns, single };

/// One dimension of R's input.
struct Dim {
  int64_t size = 1; // ShapedType::kDynamic when a parameter
  std::string expr; // its C expression
  std::optional<unsigned> dynamicIndex;
};

std::string product(ArrayRef<std::string> factors) {
  if (factors.empty())
    return "1LL";
  if (factors.size() == 1)
    return factors[0];
  return "(" + llvm::join(factors, " * ") + ")";
}

/// The indices of a row-major multi-index over `sizes` from its flat `var`.
SmallVector<std::string> decompose(StringRef var, ArrayRef<std::string> sizes) {
  SmallVector<std::string> indices;
  for (size_t j = 0; j < sizes.size(); ++j) {
    std::string index = var.str();
    if (j + 1 < sizes.size())
      index = "(" + index + " / " + product(sizes.drop_front(j + 1)) + ")";
    if (j > 0)
      index = "(" + index + " % " + sizes[j] + ")";
    indices.push_back(index);
  }
  return indices;
}

class Emitter {
public:
  Emitter(KernelOp kernel, Target target, GeneratedKernel &generated)
      : kernel(kernel), target(target), generated(generated) {}

  /// Fills generated.source and generated.launch.
  LogicalResult run();

private:
  LogicalResult analyze();
  FailureOr<Dim> findDim(Value v, unsigned dim);
  LogicalResult readSchedule();
  LogicalResult emitBody(raw_indented_ostream &os);
  LogicalResult emitRow(raw_indented_ostream &os);
  LogicalResult emitColumnsCpp(raw_indented_ostream &os);
  LogicalResult emitOutput(raw_indented_ostream &os);
  LogicalResult emitPass(raw_indented_ostream &os, Fold fold, StringRef acc,
                         llvm::function_ref<std::string(StringRef)> term,
                         StringRef comment, bool writesPrologue);
  void emitFold(raw_indented_ostream &os, Fold fold, StringRef acc, StringRef x,
                StringRef k);
  void emitCombine(raw_indented_ostream &os, Fold fold, StringRef acc);
  std::string emitResult(raw_indented_ostream &os, StringRef type,
                         StringRef expr);
  LogicalResult emitPrologue(raw_indented_ostream &os, StringRef flat,
                             DenseMap<Value, std::string> &locals,
                             bool writesPrologue);
  LogicalResult emitEpilogue(raw_indented_ostream &os, StringRef flat,
                             DenseMap<Value, std::string> &locals);
  void loadArgs(raw_indented_ostream &os, ArrayRef<Value> values,
                ArrayRef<int64_t> shape, ArrayRef<std::string> sizes,
                StringRef flat, DenseMap<Value, std::string> &locals);
  void writeYields(raw_indented_ostream &os, StringRef flat,
                   DenseMap<Value, std::string> &locals, bool prologueValues);
  FailureOr<std::string> auxiliary(Value v, StringRef index);
  std::string offset(ArrayRef<std::string> keptIndices, StringRef k);
  std::string elementOffset(StringRef k);
  std::string loop() const;
  void setLaunch();

  std::string T() const { return cType(elementType); }
  std::string lit(double v) const { return literal(v, elementType); }
  std::string lowest() const;
  /// The reduced extent as a T: what a sum divides by.
  std::string extentAsT() const {
    return fill("(${T})${R}", {{"T", T()}, {"R", extent}});
  }
  bool cuda() const { return target == Target::cuda; }

  KernelOp kernel;
  Target target;
  GeneratedKernel &generated;

  Operation *red = nullptr;
  Family family = Family::reduce;
  Fold fold = Fold::sum;
  SmallVector<Operation *> constants, prologue, epilogue;
  llvm::DenseSet<Operation *> prologueSet;
  Value input;
  RankedTensorType inType;
  Type elementType;
  SmallVector<bool> reduced;
  SmallVector<Dim> dims;
  /// Merged groups of dimensions, each with its C size.
  SmallVector<std::pair<bool, std::string>> groups;
  SmallVector<std::string> keptSizes, reducedSizes;
  int64_t columnStart = 0;
  std::string rows, extent; // O and R as C expressions
  /// The output's static shape and C sizes (epilogue broadcasting).
  SmallVector<int64_t> outShape;
  SmallVector<std::string> outSizes;

  Scheme scheme = Scheme::loops;
  unsigned blockX = 1, blockY = 1;
  unsigned next = 0, loads = 0;
};

FailureOr<Dim> Emitter::findDim(Value v, unsigned dim) {
  auto type = llvm::cast<RankedTensorType>(v.getType());
  Dim d;
  d.size = type.getDimSize(dim);
  if (!ShapedType::isDynamic(d.size)) {
    d.expr = std::to_string(d.size) + "LL";
    return d;
  }
  if (auto arg = llvm::dyn_cast<BlockArgument>(v)) {
    d.expr = dynamicDimParam(generated, arg.getArgNumber(), dim);
    d.dynamicIndex = dynamicDimIndex(generated, arg.getArgNumber(), dim);
    return d;
  }
  // A prologue value: some operand has the dimension, aligned by NumPy
  // broadcasting from the right.
  if (Operation *def = v.getDefiningOp(); def && prologueSet.contains(def)) {
    for (Value operand : def->getOperands()) {
      auto operandType = llvm::cast<RankedTensorType>(operand.getType());
      int64_t at = int64_t(dim) - (type.getRank() - operandType.getRank());
      if (at >= 0 && operandType.isDynamicDim(at))
        return findDim(operand, at);
    }
  }
  return red->emitError("cannot find the run-time size of dimension ")
         << dim << " of the reduced input";
}

std::string Emitter::lowest() const {
  if (llvm::isa<FloatType>(elementType))
    return elementType.isF32() ? "-KILN_INFINITY_F" : "-KILN_INFINITY";
  return elementType.isInteger(64) ? "(-9223372036854775807LL - 1)"
                                   : "(-2147483647 - 1)";
}

LogicalResult Emitter::analyze() {
  Block &block = kernel.getBlock();
  for (Operation &op : block.without_terminator()) {
    if (llvm::isa<ConstantOp>(op)) {
      constants.push_back(&op);
      continue;
    }
    if (op.hasTrait<kiln::OpTrait::RowReduction>()) {
      if (red)
        return op.emitError("a reduction kernel holds one reduction; this "
                            "is a second one");
      red = &op;
      continue;
    }
    if (!isScalarOp(&op))
      return op.emitError("code generation cannot fuse '")
             << op.getName() << "' into a reduction kernel";
    (red ? epilogue : prologue).push_back(&op);
  }
  if (!red)
    return kernel.emitError("reduction kernel '")
           << kernel.getName() << "' has no reduction op";
  prologueSet.insert(prologue.begin(), prologue.end());

  input = red->getOperand(0);
  inType = llvm::cast<RankedTensorType>(input.getType());
  elementType = inType.getElementType();
  int64_t rank = inType.getRank();
  FailureOr<SmallVector<bool>> reducedByOp = reducedDims(red);
  if (failed(reducedByOp))
    return failure();
  reduced = std::move(*reducedByOp);
  llvm::TypeSwitch<Operation *>(red)
      .Case<ReduceSumOp, ReduceMeanOp>([&](auto) {
        family = Family::reduce;
        fold = Fold::sum;
      })
      .Case([&](ReduceMaxOp) {
        family = Family::reduce;
        fold = Fold::max;
      })
      .Case([&](ArgmaxOp) {
        family = Family::argmax;
        fold = Fold::argmax;
      })
      .Case([&](CountOp) { family = Family::count; })
      .Case([&](CrossEntropyOp) { family = Family::crossEntropy; })
      .Default([&](Operation *) { family = Family::rowwise; });

  // Where each result comes from: a prologue value is written per input
  // element, R's result and the epilogue's per output element.
  for (Value v : block.getTerminator()->getOperands()) {
    Operation *def = v.getDefiningOp();
    if (!def || llvm::isa<ConstantOp>(def))
      return kernel.emitError("a reduction kernel result must be computed "
                              "by the kernel");
    if (prologueSet.contains(def) && family == Family::count)
      return def->emitError("count reads no elements, so the kernel cannot "
                            "also write this value");
  }
  if (family != Family::rowwise)
    for (Operation *op : epilogue)
      for (Value operand : op->getOperands())
        if (Operation *def = operand.getDefiningOp();
            def && prologueSet.contains(def))
          return op->emitError("an op after the reduction cannot read a value "
                               "from before it (another shape)");

  for (int64_t d = 0; d < rank; ++d) {
    FailureOr<Dim> dim = findDim(input, d);
    if (failed(dim))
      return failure();
    dims.push_back(*dim);
  }
  // Merged groups; a static size-1 dimension adds no index.
  SmallVector<SmallVector<std::string>> factors;
  for (int64_t d = 0; d < rank; ++d) {
    if (dims[d].size == 1)
      continue;
    if (groups.empty() || groups.back().first != reduced[d]) {
      groups.push_back({reduced[d], ""});
      factors.emplace_back();
    }
    factors.back().push_back(dims[d].expr);
  }
  for (auto [group, f] : llvm::zip(groups, factors)) {
    group.second = product(f);
    (group.first ? reducedSizes : keptSizes).push_back(group.second);
  }
  rows = product(keptSizes);
  extent = product(reducedSizes);
  // The dimensions of the last group, static size-1 ones around it included.
  columnStart = rank;
  while (columnStart > 0 &&
         (!reduced[columnStart - 1] || dims[columnStart - 1].size == 1))
    --columnStart;

  // The shape the epilogue iterates over.
  if (family == Family::rowwise) {
    outShape.assign(inType.getShape().begin(), inType.getShape().end());
    for (const Dim &d : dims)
      outSizes.push_back(d.expr);
  } else if (family == Family::reduce || family == Family::argmax) {
    auto outType = llvm::cast<RankedTensorType>(red->getResult(0).getType());
    bool keepdims = outType.getRank() == rank;
    for (int64_t d = 0; d < rank; ++d) {
      if (reduced[d] && !keepdims)
        continue;
      outShape.push_back(reduced[d] ? 1 : inType.getDimSize(d));
      outSizes.push_back(reduced[d] ? "1LL" : dims[d].expr);
    }
  }
  return success();
}

/// The scheme of the kernel's CUDA schedule (checked against the kernel by
/// requireSchedule); the C++ target loops over rows, or over blocks of
/// columns where the kept dimensions are innermost.
LogicalResult Emitter::readSchedule() {
  if (!cuda()) {
    // Columns where the kept dimensions are innermost: a row's elements lie
    // a column count apart, a block of columns' side by side.
    bool keptInnermost =
        !groups.empty() && !groups.back().first && !reducedSizes.empty();
    scheme = family == Family::reduce && keptInnermost ? Scheme::columns
                                                       : Scheme::loops;
    return success();
  }
  FailureOr<ReduceScheduleAttr> schedule =
      requireSchedule<ReduceScheduleAttr>(kernel, kCudaTarget);
  if (failed(schedule))
    return failure();
  blockX = schedule->getBlockX();
  blockY = schedule->getBlockY();
  switch (schedule->getScheme()) {
  case ReductionScheme::single:
    scheme = Scheme::single;
    break;
  case ReductionScheme::warp_rows:
    scheme = Scheme::warpRows;
    break;
  case ReductionScheme::block_rows:
    scheme = Scheme::blockRows;
    break;
  case ReductionScheme::columns:
    scheme = Scheme::columns;
    break;
  }
  return success();
}

std::string Emitter::offset(ArrayRef<std::string> keptIndices, StringRef k) {
  SmallVector<std::string> reducedIndices = decompose(k, reducedSizes);
  std::string acc;
  size_t nextKept = 0, nextReduced = 0;
  for (auto &[isReduced, size] : groups) {
    std::string index =
        isReduced ? reducedIndices[nextReduced++] : keptIndices[nextKept++];
    if (acc.empty()) {
      acc = index;
      continue;
    }
    if (acc.find(' ') != std::string::npos)
      acc = "(" + acc + ")";
    acc = acc + " * " + size + " + " + index;
  }
  return acc.empty() ? "0" : acc;
}

/// The flat input index of position `k` in the current output row.
std::string Emitter::elementOffset(StringRef k) {
  if (scheme != Scheme::columns)
    return offset(decompose("o", keptSizes), k);
  SmallVector<std::string> kept =
      decompose("oOuter", ArrayRef<std::string>(keptSizes).drop_back());
  kept.push_back("col");
  return offset(kept, k);
}

/// One element of a kernel input.
constexpr const char *kLoad = "const ${T} ${X} = in${N}[${INDEX}];\n";

void Emitter::loadArgs(raw_indented_ostream &os, ArrayRef<Value> values,
                       ArrayRef<int64_t> shape, ArrayRef<std::string> sizes,
                       StringRef flat, DenseMap<Value, std::string> &locals) {
  for (Value v : values) {
    auto arg = llvm::dyn_cast<BlockArgument>(v);
    if (!arg || locals.count(v))
      continue;
    auto type = llvm::cast<RankedTensorType>(v.getType());
    // The flat index of the argument broadcast against `shape`.
    std::string index;
    if (type.getShape() == shape) {
      index = flat.str();
    } else {
      int64_t shift = int64_t(shape.size()) - type.getRank();
      std::string stride;
      for (int64_t d = type.getRank() - 1; d >= 0; --d) {
        int64_t out = d + shift;
        int64_t size = type.getDimSize(d);
        if (size != 1) {
          std::string term = flat.str();
          if (out + 1 < int64_t(shape.size()))
            term =
                "(" + term + " / " + product(sizes.drop_front(out + 1)) + ")";
          if (out > 0)
            term = "(" + term + " % " + sizes[out] + ")";
          std::string scaled = stride.empty() ? term : term + " * " + stride;
          index = index.empty() ? scaled : scaled + " + " + index;
        }
        std::string dimExpr =
            ShapedType::isDynamic(size)
                ? dimSize(generated, type, arg.getArgNumber(), d)
                : std::to_string(size) + "LL";
        stride = stride.empty() ? dimExpr : stride + " * " + dimExpr;
      }
      if (index.empty())
        index = "0";
    }
    std::string local = "x" + std::to_string(loads++);
    print(os, kLoad,
          {{"T", cType(type.getElementType())},
           {"X", local},
           {"N", std::to_string(arg.getArgNumber())},
           {"INDEX", index}});
    locals[v] = local;
  }
}

/// One element of a kernel result.
constexpr const char *kStore = "out${N}[${FLAT}] = ${V};\n";

/// Stores each kernel result computed in `locals`: prologue values when
/// `prologueValues`, otherwise R's result and the epilogue's.
void Emitter::writeYields(raw_indented_ostream &os, StringRef flat,
                          DenseMap<Value, std::string> &locals,
                          bool prologueValues) {
  Operation *yield = kernel.getBlock().getTerminator();
  for (auto [n, v] : llvm::enumerate(yield->getOperands())) {
    bool fromPrologue = prologueSet.contains(v.getDefiningOp());
    if (fromPrologue != prologueValues || !locals.count(v))
      continue;
    print(os, kStore,
          {{"N", std::to_string(n)},
           {"FLAT", flat.str()},
           {"V", locals.lookup(v)}});
  }
}

LogicalResult Emitter::emitPrologue(raw_indented_ostream &os, StringRef flat,
                                    DenseMap<Value, std::string> &locals,
                                    bool writesPrologue) {
  SmallVector<Value> values{input};
  for (Operation *op : prologue)
    llvm::append_range(values, op->getOperands());
  loadArgs(os, values, inType.getShape(),
           llvm::to_vector(llvm::map_range(
               dims, [](const Dim &d) -> std::string { return d.expr; })),
           flat, locals);
  if (failed(emitScalarOps(os, constants, locals, flat, next, target)) ||
      failed(emitScalarOps(os, prologue, locals, flat, next, target)))
    return failure();
  if (writesPrologue)
    writeYields(os, flat, locals, /*prologueValues=*/true);
  return success();
}

LogicalResult Emitter::emitEpilogue(raw_indented_ostream &os, StringRef flat,
                                    DenseMap<Value, std::string> &locals) {
  SmallVector<Value> values;
  for (Operation *op : epilogue)
    llvm::append_range(values, op->getOperands());
  loadArgs(os, values, outShape, outSizes, flat, locals);
  if (failed(emitScalarOps(os, constants, locals, flat, next, target)) ||
      failed(emitScalarOps(os, epilogue, locals, flat, next, target)))
    return failure();
  writeYields(os, flat, locals, /*prologueValues=*/false);
  return success();
}

/// A scalar operand of R other than its input: labels, weights, the loss
/// gradient (a kernel input indexed by `index`, or a constant).
FailureOr<std::string> Emitter::auxiliary(Value v, StringRef index) {
  if (auto arg = llvm::dyn_cast<BlockArgument>(v))
    return "in" + std::to_string(arg.getArgNumber()) + "[" + index.str() + "]";
  if (Operation *def = v.getDefiningOp(); def && llvm::isa<ConstantOp>(def))
    return constantLiteral(def);
  return red->emitError("code generation needs this operand of '")
         << red->getName() << "' to be a kernel input or a constant";
}

/// A thread's loop over its positions k of the row, per scheme.
constexpr const char *kLoopAll = "for (long long k = 0; k < ${R}; ++k)";
constexpr const char *kLoopWarp = "for (long long k = lane; k < ${R}; k += 32)";
constexpr const char *kLoopBlock =
    "for (long long k = threadIdx.x; k < ${R}; k += ${BX})";
constexpr const char *kLoopColumns =
    "for (long long k = threadIdx.y; valid && k < ${R}; k += ${BY})";

/// The header of the loop over k (its body's braces are the caller's).
std::string Emitter::loop() const {
  const char *text = kLoopAll;
  switch (scheme) {
  case Scheme::loops:
  case Scheme::single:
    break;
  case Scheme::warpRows:
    text = kLoopWarp;
    break;
  case Scheme::blockRows:
    text = kLoopBlock;
    break;
  case Scheme::columns:
    text = kLoopColumns;
    break;
  }
  return fill(text, {{"R", extent},
                     {"BX", std::to_string(blockX)},
                     {"BY", std::to_string(blockY)}});
}

/// Folds element ${X} at position ${K} into ${ACC} (argmax: ${ACC}Value
/// and ${ACC}Index).
constexpr const char *kFoldSum = "${ACC} += ${X};\n";
constexpr const char *kFoldMax = "${ACC} = ${X} > ${ACC} ? ${X} : ${ACC};\n";
constexpr const char *kFoldArgmax = R"(
if (kiln_argmax_better(${X}, ${K}, ${ACC}Value, ${ACC}Index)) {
  ${ACC}Value = ${X};
  ${ACC}Index = ${K};
}
)";

void Emitter::emitFold(raw_indented_ostream &os, Fold how, StringRef acc,
                       StringRef x, StringRef k) {
  const char *text = how == Fold::sum   ? kFoldSum
                     : how == Fold::max ? kFoldMax
                                        : kFoldArgmax;
  print(os, text, {{"ACC", acc.str()}, {"X", x.str()}, {"K", k.str()}});
}

/// How the threads sharing a row combine their values: a warp's or a
/// block's, by codegen/device's helpers (${OP}: sum or max).
constexpr const char *kCombineWarp =
    "${ACC} = kiln_reduce_warp_${OP}(${ACC});\n";
constexpr const char *kCombineWarpArgmax =
    "kiln_reduce_warp_argmax(${ACC}Value, ${ACC}Index);\n";
constexpr const char *kCombineBlock =
    "${ACC} = kiln_reduce_block_${OP}(${ACC}, scratch);\n";
constexpr const char *kCombineBlockArgmax =
    "kiln_reduce_block_argmax(${ACC}Value, ${ACC}Index, scratch, "
    "scratchIndex);\n";
/// The BY slices of each column, combined by y = 0 in order of y; ${FOLD}
/// folds slice y's value into y = 0's.
constexpr const char *kCombineColumns = R"(
partial[threadIdx.y][threadIdx.x] = ${ACC};
__syncthreads();
if (threadIdx.y == 0) {
  for (int y = 1; y < ${BY}; ++y)
    ${FOLD}
  partial[0][threadIdx.x] = ${ACC};
}
__syncthreads();
${ACC} = partial[0][threadIdx.x];
__syncthreads();
)";
constexpr const char *kCombineColumnsArgmax = R"(
partial[threadIdx.y][threadIdx.x] = ${ACC}Value;
partialIndex[threadIdx.y][threadIdx.x] = ${ACC}Index;
__syncthreads();
if (threadIdx.y == 0) {
  for (int y = 1; y < ${BY}; ++y)
    ${FOLD}
  partial[0][threadIdx.x] = ${ACC}Value;
  partialIndex[0][threadIdx.x] = ${ACC}Index;
}
__syncthreads();
${ACC}Value = partial[0][threadIdx.x];
${ACC}Index = partialIndex[0][threadIdx.x];
__syncthreads();
)";

void Emitter::emitCombine(raw_indented_ostream &os, Fold how, StringRef acc) {
  bool argmax = how == Fold::argmax;
  std::string op = how == Fold::sum ? "sum" : "max";
  switch (scheme) {
  case Scheme::loops:
  case Scheme::single:
    return;
  case Scheme::warpRows:
    print(os, argmax ? kCombineWarpArgmax : kCombineWarp,
          {{"ACC", acc.str()}, {"OP", op}});
    return;
  case Scheme::blockRows:
    print(os, argmax ? kCombineBlockArgmax : kCombineBlock,
          {{"ACC", acc.str()}, {"OP", op}});
    return;
  case Scheme::columns:
    break;
  }
  if (blockY == 1)
    return;
  Code fold;
  emitFold(fold.os, how, acc, "partial[y][threadIdx.x]",
           "partialIndex[y][threadIdx.x]");
  print(os, argmax ? kCombineColumnsArgmax : kCombineColumns,
        {{"ACC", acc.str()},
         {"BY", std::to_string(blockY)},
         {"FOLD", fold.str()}});
}

/// One pass over a row: ${START} declares the running value ${ACC}; at each
/// of the thread's positions k, ${ELEMENT} (the prologue) computes the
/// element and ${FOLD} folds it in; then the threads sharing the row
/// combine (${COMBINE}).
constexpr const char *kPass = R"(
// ${COMMENT}
${START}
${LOOP} {
  const long long e = ${OFFSET};
  ${ELEMENT}
  ${FOLD}
}
${COMBINE}
)";
/// kPass on the CPU for a sum or a maximum: eight running values, lane l
/// folding the positions k = l mod 8 in increasing order (a sum's lanes
/// each carry an eighth of the rounding error), the blocks of eight a loop
/// that vectorizes; then ${LANES} combines the lanes.
constexpr const char *kPassLanes = R"(
// ${COMMENT}
${T} ${ACC}Lanes[8];
for (int l = 0; l < 8; ++l)
  ${ACC}Lanes[l] = ${INIT};
{
  auto element = [&](long long k) {
    const long long e = ${OFFSET};
    ${ELEMENT}
    return ${TERM};
  };
  long long k = 0;
  for (; k + 8 <= ${R}; k += 8)
    for (int l = 0; l < 8; ++l) {
      const ${T} x = element(k + l);
      ${FOLD_BLOCK}
    }
  for (; k < ${R}; ++k) {
    const ${T} x = element(k);
    ${FOLD_TAIL}
  }
}
${LANES}
)";
constexpr const char *kStart = "${T} ${ACC} = ${INIT};\n";
constexpr const char *kStartArgmax = R"(
${T} ${ACC}Value = ${LOWEST};
long long ${ACC}Index = kKilnNoIndex;
)";
constexpr const char *kLanes = R"(
const ${T} ${ACC} = ((${ACC}Lanes[0]${AT} + ${ACC}Lanes[1]${AT}) + (${ACC}Lanes[2]${AT} + ${ACC}Lanes[3]${AT})) +
    ((${ACC}Lanes[4]${AT} + ${ACC}Lanes[5]${AT}) + (${ACC}Lanes[6]${AT} + ${ACC}Lanes[7]${AT}));
)";
constexpr const char *kLanesMax = R"(
${T} ${ACC} = ${ACC}Lanes[0]${AT};
for (int l = 1; l < 8; ++l)
  ${ACC} = ${ACC}Lanes[l]${AT} > ${ACC} ? ${ACC}Lanes[l]${AT} : ${ACC};
)";

LogicalResult Emitter::emitPass(raw_indented_ostream &os, Fold how,
                                StringRef acc,
                                llvm::function_ref<std::string(StringRef)> term,
                                StringRef comment, bool writesPrologue) {
  SmallVector<std::pair<StringRef, std::string>> accValues = {
      {"T", T()},
      {"ACC", acc.str()},
      {"LOWEST", lowest()},
      {"INIT", how == Fold::sum ? lit(0) : lowest()},
      {"AT", ""}};
  Code element;
  DenseMap<Value, std::string> locals;
  if (failed(emitPrologue(element.os, "e", locals, writesPrologue)))
    return failure();
  std::string x = locals.lookup(input);
  // On the CPU, sums and maxima in eight lanes (kPassLanes).
  if (scheme == Scheme::loops && how != Fold::argmax) {
    Code block, tail;
    emitFold(block.os, how, (acc + "Lanes[l]").str(), "x", "k + l");
    emitFold(tail.os, how, (acc + "Lanes[k & 7]").str(), "x", "k");
    SmallVector<std::pair<StringRef, std::string>> values = accValues;
    values.append(
        {{"COMMENT", comment.str()},
         {"R", extent},
         {"OFFSET", elementOffset("k")},
         {"ELEMENT", element.str()},
         {"TERM", how == Fold::sum ? term(x) : x},
         {"FOLD_BLOCK", block.str()},
         {"FOLD_TAIL", tail.str()},
         {"LANES", render(how == Fold::sum ? kLanes : kLanesMax, accValues)}});
    print(os, kPassLanes, values);
    return success();
  }
  std::string start = how == Fold::argmax ? render(kStartArgmax, accValues)
                                          : fill(kStart, accValues);
  Code fold;
  if (how == Fold::sum)
    emitFold(fold.os, how, acc, term(x), "k");
  else
    emitFold(fold.os, how, acc, x, "k");
  Code combine;
  emitCombine(combine.os, how, acc);
  print(os, kPass,
        {{"COMMENT", comment.str()},
         {"START", start},
         {"LOOP", loop()},
         {"OFFSET", elementOffset("k")},
         {"ELEMENT", element.str()},
         {"FOLD", fold.str()},
         {"COMBINE", combine.str()}});
  return success();
}

/// R's result for a row or an element, commented with R.
constexpr const char *kResult =
    "const ${T} ${R} = ${EXPR}; // ${OP} at ${LOC}\n";

/// Writes R's result `expr`, of C type `type`, to a new local; returns it.
std::string Emitter::emitResult(raw_indented_ostream &os, StringRef type,
                                StringRef expr) {
  std::string local = "r" + std::to_string(next++);
  print(os, kResult,
        {{"T", type.str()},
         {"R", local},
         {"EXPR", expr.str()},
         {"OP", red->getName().stripDialect().str()},
         {"LOC", locationOf(red)}});
  return local;
}

/// The part of a row that one thread of those sharing it writes.
constexpr const char *kWriter = R"(
if (${WRITER}) {
  ${WRITE}
}
)";

/// cross_entropy's loss of the row, added to the thread's total.
constexpr const char *kRowLoss = R"(
// logsumexp - logit[label], NaN for a label out of range
const long long label = (long long)${LABEL};
${T} picked = ${NAN};
if (label >= 0 && label < ${R}) {
  const long long e = ${OFFSET};
  ${ELEMENT}
  picked = ${X};
}
total += rowMax + ${LOG}(rowSum) - picked;
)";

/// The row values of the row-wise ops, after their passes.
constexpr const char *kMean = "const ${T} mean = rowSum / ${N};\n";
constexpr const char *kRstd =
    "const ${T} rstd = ${ONE} / ${SQRT}(squares / ${N} + ${EPSILON});\n";
constexpr const char *kLogSum = "const ${T} logSum = ${LOG}(rowSum);\n";
constexpr const char *kLabelScale = R"(
const long long label = (long long)${LABEL};
const ${T} scale = ${SCALE} / (${T})${ROWS};
)";

/// Each element of a row-wise op's result, from its input element ${X}.
constexpr const char *kLayerNormElement =
    "(${X} - mean) * rstd * ${WEIGHT} + ${BIAS}";
constexpr const char *kSoftmaxElement = "${EXP}(${X} - rowMax) / rowSum";
constexpr const char *kLogSoftmaxElement = "${X} - rowMax - logSum";
constexpr const char *kCrossEntropyGradElement =
    "scale * (${EXP}(${X} - rowMax) / rowSum - (k == label ? ${ONE} : "
    "${ZERO}))";

/// The pass of a row-wise op writing every element of the row.
constexpr const char *kEveryElement = R"(
// every element of the row
${LOOP} {
  const long long e = ${OFFSET};
  ${ELEMENT}
  ${RESULT}
  ${EPILOGUE}
}
)";

/// A reduce or argmax result of output o from its running value `acc`,
/// then the epilogue.
LogicalResult Emitter::emitOutput(raw_indented_ostream &os) {
  std::string expr = "acc";
  if (llvm::isa<ReduceMeanOp>(red))
    expr = fill("acc / ${N}", {{"N", extentAsT()}});
  if (family == Family::argmax)
    expr = "accIndex == kKilnNoIndex ? 0 : (int)accIndex";
  DenseMap<Value, std::string> locals;
  locals[red->getResult(0)] =
      emitResult(os, cType(elementOf(red->getResult(0))), expr);
  return emitEpilogue(os, "o", locals);
}

/// The work of one output row o (or, for columns, of one column of it).
LogicalResult Emitter::emitRow(raw_indented_ostream &os) {
  std::string writer;
  switch (scheme) {
  case Scheme::loops:
  case Scheme::single:
    break;
  case Scheme::warpRows:
    writer = "lane == 0";
    break;
  case Scheme::blockRows:
    writer = "threadIdx.x == 0";
    break;
  case Scheme::columns:
    writer = "valid && threadIdx.y == 0";
    break;
  }
  // Writes `write`, by the writer thread when the threads share the row.
  auto emitWrite = [&](const Code &write) {
    if (writer.empty())
      os << write.str();
    else
      print(os, kWriter, {{"WRITER", writer}, {"WRITE", write.str()}});
  };
  auto identity = [](StringRef x) { return x.str(); };
  std::string expFn = math("exp", elementType, target);
  auto expOf = [&](StringRef x) {
    return fill("${EXP}(${X} - rowMax)", {{"EXP", expFn}, {"X", x.str()}});
  };

  switch (family) {
  case Family::reduce:
  case Family::argmax: {
    std::string comment = fill("${OP} over the reduced elements",
                               {{"OP", red->getName().stripDialect().str()}});
    if (failed(emitPass(os, fold, "acc", identity, comment,
                        /*writesPrologue=*/true)))
      return failure();
    Code write;
    if (failed(emitOutput(write.os)))
      return failure();
    emitWrite(write);
    return success();
  }
  case Family::count: {
    DenseMap<Value, std::string> locals;
    locals[red->getResult(0)] =
        emitResult(os, cType(elementOf(red->getResult(0))), extentAsT());
    return emitEpilogue(os, "0", locals);
  }
  case Family::crossEntropy: {
    if (failed(emitPass(os, Fold::max, "rowMax", identity, "the row's maximum",
                        false)) ||
        failed(emitPass(os, Fold::sum, "rowSum", expOf,
                        "the sum of exp(x - max)", true)))
      return failure();
    FailureOr<std::string> label = auxiliary(red->getOperand(1), "o");
    if (failed(label))
      return failure();
    Code element;
    DenseMap<Value, std::string> locals;
    if (failed(emitPrologue(element.os, "e", locals, false)))
      return failure();
    Code write;
    print(write.os, kRowLoss,
          {{"LABEL", *label},
           {"T", T()},
           {"NAN", elementType.isF32() ? "KILN_NAN_F" : "KILN_NAN"},
           {"R", extent},
           {"OFFSET", elementOffset("label")},
           {"ELEMENT", element.str()},
           {"X", locals.lookup(input)},
           {"LOG", math("log", elementType, target)}});
    emitWrite(write);
    return success();
  }
  case Family::rowwise:
    break;
  }

  // softmax, log_softmax, cross_entropy_grad, layer_norm: row values, then
  // one pass writing every element.
  const char *element = nullptr;
  SmallVector<std::pair<StringRef, std::string>> elementValues = {
      {"EXP", expFn}, {"ONE", lit(1)}, {"ZERO", lit(0)}};
  if (auto norm = llvm::dyn_cast<LayerNormOp>(red)) {
    std::string n = extentAsT();
    auto centered = [](StringRef x) {
      return fill("(${X} - mean) * (${X} - mean)", {{"X", x.str()}});
    };
    if (failed(emitPass(os, Fold::sum, "rowSum", identity, "the row's sum",
                        false)))
      return failure();
    print(os, kMean, {{"T", T()}, {"N", n}});
    if (failed(emitPass(os, Fold::sum, "squares", centered,
                        "the sum of squared deviations (two passes, as "
                        "the reference)",
                        false)))
      return failure();
    print(os, kRstd,
          {{"T", T()},
           {"ONE", lit(1)},
           {"SQRT", math("sqrt", elementType, target)},
           {"N", n},
           {"EPSILON", lit(norm.getEpsilon().convertToDouble())}});
    FailureOr<std::string> weight = auxiliary(norm.getWeight(), "k");
    FailureOr<std::string> bias = auxiliary(norm.getBias(), "k");
    if (failed(weight) || failed(bias))
      return failure();
    element = kLayerNormElement;
    elementValues.push_back({"WEIGHT", *weight});
    elementValues.push_back({"BIAS", *bias});
  } else {
    if (failed(emitPass(os, Fold::max, "rowMax", identity, "the row's maximum",
                        false)) ||
        failed(emitPass(os, Fold::sum, "rowSum", expOf,
                        "the sum of exp(x - max)", false)))
      return failure();
    if (llvm::isa<SoftmaxOp>(red)) {
      element = kSoftmaxElement;
    } else if (llvm::isa<LogSoftmaxOp>(red)) {
      print(os, kLogSum,
            {{"T", T()}, {"LOG", math("log", elementType, target)}});
      element = kLogSoftmaxElement;
    } else {
      auto grad = llvm::cast<CrossEntropyGradOp>(red);
      FailureOr<std::string> label = auxiliary(grad.getLabels(), "o");
      FailureOr<std::string> scale = auxiliary(grad.getGrad(), "0");
      if (failed(label) || failed(scale))
        return failure();
      print(os, kLabelScale,
            {{"LABEL", *label}, {"T", T()}, {"SCALE", *scale}, {"ROWS", rows}});
      element = kCrossEntropyGradElement;
    }
  }
  Code prologueCode, result, epilogueCode;
  DenseMap<Value, std::string> locals;
  if (failed(emitPrologue(prologueCode.os, "e", locals, true)))
    return failure();
  elementValues.push_back({"X", locals.lookup(input)});
  locals[red->getResult(0)] =
      emitResult(result.os, T(), fill(element, elementValues));
  if (failed(emitEpilogue(epilogueCode.os, "e", locals)))
    return failure();
  print(os, kEveryElement,
        {{"LOOP", loop()},
         {"OFFSET", elementOffset("k")},
         {"ELEMENT", prologueCode.str()},
         {"RESULT", result.str()},
         {"EPILOGUE", epilogueCode.str()}});
  return success();
}

/// A sum or maximum over the rows of kept-innermost columns on the CPU:
/// tasks of ${CB} consecutive columns (o = oOuter * columns + col), each
/// column's eight lanes folding the rows k = l mod 8 in increasing order
/// as kPassLanes does (the same sums), a row of the block's columns at a
/// time (reads side by side; the loop over the columns vectorizes); then
/// each column's lanes combine and its epilogue runs.
constexpr const char *kColumnsCpp = R"(
const long long columnBlocks = (${COLUMNS} + ${CB} - 1) / ${CB};
kiln_parallel_for(${OUTER} * columnBlocks, [&](long long begin, long long end) {
  for (long long task = begin; task < end; ++task) {
    const long long oOuter = task / columnBlocks;
    const long long col0 = task % columnBlocks * ${CB};
    const long long cols = ${COLUMNS} - col0 < ${CB} ? ${COLUMNS} - col0 : ${CB};
    ${T} accLanes[8][${CB}];
    for (int l = 0; l < 8; ++l)
      for (long long c = 0; c < ${CB}; ++c)
        accLanes[l][c] = ${INIT};
    // Row k of the block into lane l.
    auto row = [&](long long k, int l) {
      for (long long c = 0; c < cols; ++c) {
        const long long col = col0 + c;
        const long long e = ${OFFSET};
        ${ELEMENT}
        ${FOLD}
      }
    };
    long long k = 0;
    for (; k + 8 <= ${R}; k += 8)
      for (int l = 0; l < 8; ++l)
        row(k + l, l);
    for (; k < ${R}; ++k)
      row(k, int(k & 7));
    for (long long c = 0; c < cols; ++c) {
      const long long col = col0 + c;
      const long long o = oOuter * ${COLUMNS} + col;
      ${LANES}
      ${WRITE}
    }
  }
});
)";

/// The C++ kernel of a columns reduction (kColumnsCpp).
LogicalResult Emitter::emitColumnsCpp(raw_indented_ostream &os) {
  Code element, fold;
  DenseMap<Value, std::string> locals;
  if (failed(emitPrologue(element.os, "e", locals, /*writesPrologue=*/true)))
    return failure();
  emitFold(fold.os, this->fold, "accLanes[l][c]", locals.lookup(input), "k");
  SmallVector<std::pair<StringRef, std::string>> accValues = {
      {"T", T()}, {"ACC", "acc"}, {"AT", "[c]"}};
  std::string lanes =
      render(this->fold == Fold::sum ? kLanes : kLanesMax, accValues);
  Code write;
  if (failed(emitOutput(write.os)))
    return failure();
  print(os, kColumnsCpp,
        {{"T", T()},
         {"CB", "64"},
         {"COLUMNS", keptSizes.back()},
         {"OUTER", product(ArrayRef<std::string>(keptSizes).drop_back())},
         {"INIT", this->fold == Fold::sum ? lit(0) : lowest()},
         {"R", extent},
         {"OFFSET", elementOffset("k")},
         {"ELEMENT", element.str()},
         {"FOLD", fold.str()},
         {"LANES", lanes},
         {"WRITE", write.str()}});
  return success();
}

/// The loop over the output rows o, per scheme; ${ROW} is the work of one
/// row (emitRow). cross_entropy's rows add their losses to a total.
constexpr const char *kRowsLoop = R"(
${TOTAL}
for (long long o = 0; o < ${ROWS}; ++o) {
  ${ROW}
}
)";
/// The C++ rows split among the threads (each row its own outputs), in
/// tasks of about KILN_ELEMENTS_PER_TASK elements: short rows go several
/// to a task, so a small reduction runs on the calling thread alone.
constexpr const char *kRowsParallelCpp = R"(
const long long rowsPerTask = ${R} > 0 && ${R} < KILN_ELEMENTS_PER_TASK ? KILN_ELEMENTS_PER_TASK / ${R} : 1;
kiln_parallel_for((${ROWS} + rowsPerTask - 1) / rowsPerTask, [&](long long begin, long long end) {
  const long long last = end * rowsPerTask < ${ROWS} ? end * rowsPerTask : ${ROWS};
  for (long long o = begin * rowsPerTask; o < last; ++o) {
    ${ROW}
  }
});
)";
constexpr const char *kCountLoop = R"(
{
  ${ROW}
}
)";
constexpr const char *kRowsSingle = R"(
if (blockIdx.x == 0 && threadIdx.x == 0) {
  ${ROW}
}
)";
constexpr const char *kRowsWarp = R"(
${TOTAL}
${SCRATCH}
const int lane = threadIdx.x & 31;
const long long warpsPerBlock = blockDim.x >> 5;
for (long long o = blockIdx.x * warpsPerBlock + (threadIdx.x >> 5); o < ${ROWS};
     o += gridDim.x * warpsPerBlock) {
  ${ROW}
}
)";
constexpr const char *kRowsBlock = R"(
${TOTAL}
__shared__ ${T} scratch[32];
${SCRATCH_INDEX}
for (long long o = blockIdx.x; o < ${ROWS}; o += gridDim.x) {
  ${ROW}
}
)";
/// Columns: a tile of BX columns a block, o = oOuter * columns + col.
constexpr const char *kRowsColumns = R"(
${PARTIAL}
${PARTIAL_INDEX}
const long long columnTiles = ((${COLUMNS} + ${BX_LESS_1}) / ${BX});
for (long long tile = blockIdx.x; tile < ${OUTER} * columnTiles;
     tile += gridDim.x) {
  const long long oOuter = tile / columnTiles;
  const long long col = (tile % columnTiles) * ${BX} + threadIdx.x;
  const bool valid = col < ${COLUMNS};
  const long long o = oOuter * ${COLUMNS} + col;
  ${ROW}
}
)";
/// The optional declarations of the loops above.
constexpr const char *kTotal = "${T} total = ${ZERO};\n";
constexpr const char *kScratch = "__shared__ ${T} scratch[32];\n";
constexpr const char *kScratchIndex =
    "__shared__ long long scratchIndex[32];\n";
constexpr const char *kPartial =
    "__shared__ ${T} partial[${BY}][${BX_PLUS_1}];\n";
constexpr const char *kPartialIndex =
    "__shared__ long long partialIndex[${BY}][${BX_PLUS_1}];\n";

/// cross_entropy's result on the GPU: the mean of the per-row losses,
/// summed in a fixed order.
constexpr const char *kLossCuda = R"(
total = kiln_reduce_block_sum(total, scratch);
if (threadIdx.x == 0) {
  ${LOSS}
}
)";

LogicalResult Emitter::emitBody(raw_indented_ostream &os) {
  if (!cuda() && scheme == Scheme::columns)
    return emitColumnsCpp(os);
  Code row;
  if (failed(emitRow(row.os)))
    return failure();
  bool crossEntropy = family == Family::crossEntropy;
  bool argmax = family == Family::argmax;
  bool partials = scheme == Scheme::columns && blockY > 1;
  // Columns: the last kept group, and the product of the others.
  std::string columns, outer;
  if (scheme == Scheme::columns) {
    columns = keptSizes.back();
    outer = product(ArrayRef<std::string>(keptSizes).drop_back());
  }
  const char *text = nullptr;
  switch (scheme) {
  case Scheme::loops:
    text = family == Family::count ? kCountLoop
           : crossEntropy          ? kRowsLoop
                                   : kRowsParallelCpp;
    break;
  case Scheme::single:
    text = kRowsSingle;
    break;
  case Scheme::warpRows:
    text = kRowsWarp;
    break;
  case Scheme::blockRows:
    text = kRowsBlock;
    break;
  case Scheme::columns:
    text = kRowsColumns;
    break;
  }
  SmallVector<std::pair<StringRef, std::string>> values = {
      {"T", T()},
      {"ZERO", lit(0)},
      {"BY", std::to_string(blockY)},
      {"BX_PLUS_1", std::to_string(blockX + 1)}};
  print(
      os, text,
      {{"T", T()},
       {"TOTAL", crossEntropy ? fill(kTotal, values) : ""},
       {"SCRATCH", crossEntropy ? fill(kScratch, values) : ""},
       {"SCRATCH_INDEX", argmax ? fill(kScratchIndex, values) : ""},
       {"PARTIAL", partials ? fill(kPartial, values) : ""},
       {"PARTIAL_INDEX", partials && argmax ? fill(kPartialIndex, values) : ""},
       {"ROWS", rows},
       {"R", extent},
       {"COLUMNS", columns},
       {"OUTER", outer},
       {"BX", std::to_string(blockX)},
       {"BX_LESS_1", std::to_string(blockX - 1)},
       {"ROW", row.str()}});
  if (!crossEntropy)
    return success();
  // The mean of the per-row losses, summed in a fixed order.
  Code loss;
  DenseMap<Value, std::string> locals;
  locals[red->getResult(0)] =
      emitResult(loss.os, T(),
                 fill("total / (${T})${ROWS}", {{"T", T()}, {"ROWS", rows}}));
  if (failed(emitEpilogue(loss.os, "0", locals)))
    return failure();
  if (cuda())
    print(os, kLossCuda, {{"LOSS", loss.str()}});
  else
    os << loss.str();
  return success();
}

void Emitter::setLaunch() {
  LaunchConfig &launch = generated.launch;
  launch.block[0] = blockX;
  launch.block[1] = blockY;
  launch.block[2] = 1;
  launch.sharedBytes = 0; // static __shared__ arrays only
  GridExtent &grid = launch.grid[0];
  grid = GridExtent();
  if (scheme == Scheme::single || family == Family::crossEntropy)
    return;
  // The kept dimensions, the columns (the last group) apart.
  int64_t lastKeptGroupStart =
      scheme == Scheme::columns ? columnStart : int64_t(dims.size());
  int64_t columnsStatic = 1;
  bool columnsDynamic = false;
  for (auto [d, dim] : llvm::enumerate(dims)) {
    if (reduced[d])
      continue;
    bool column = int64_t(d) >= lastKeptGroupStart;
    if (column && !dim.dynamicIndex) {
      columnsStatic *= dim.size;
      continue;
    }
    if (column)
      columnsDynamic = true;
    if (dim.dynamicIndex)
      grid.dynamicFactors.push_back(*dim.dynamicIndex);
    else
      grid.constant *= dim.size;
  }
  switch (scheme) {
  case Scheme::warpRows:
    grid.constant *= columnsStatic;
    grid.perBlock = blockX / 32;
    break;
  case Scheme::blockRows:
    grid.constant *= columnsStatic;
    break;
  case Scheme::columns:
    // One block a tile of columns; with a dynamic column count the grid
    // may come out smaller than the tiles, which the kernel's grid-stride
    // loop covers.
    if (columnsDynamic) {
      grid.constant *= columnsStatic;
      grid.perBlock = blockX;
    } else {
      grid.constant *= (columnsStatic + blockX - 1) / blockX;
    }
    break;
  default:
    break;
  }
}

/// The kernel: how its threads share the work, then the function.
constexpr const char *kReduction = R"(
${HOW}
${ONE_BLOCK}
${SIGNATURE} {
  ${BODY}
}
${ENTRY}
)";
constexpr const char *kHowLoops = R"(
// One loop over the output rows (split among the threads, but for
// cross_entropy's, which add up its loss); passes over each row.
)";
constexpr const char *kHowSingle = R"(
// One thread: count reads only sizes.
)";
constexpr const char *kHowWarp = R"(
// One warp a row (lanes stride over it; butterfly shuffles combine).
)";
constexpr const char *kHowBlock = R"(
// One block a row (warp shuffles, then the warps' values in shared
// memory, summed in order).
)";
constexpr const char *kHowColumns = R"(
// Blocks of ${BX} columns x ${BY} slices of the reduced rows; the slices combine in
// shared memory in order.
)";
constexpr const char *kHowColumnsCpp = R"(
// Tasks of consecutive columns (the kept dimensions are innermost), the rows
// folded into each column's lanes a row at a time.
)";
constexpr const char *kOneBlock = R"(
// One block: the per-row losses sum in a fixed order.
)";

LogicalResult Emitter::run() {
  if (failed(analyze()) || failed(readSchedule()))
    return failure();
  Code body;
  if (failed(emitBody(body.os)))
    return failure();
  setLaunch();

  const char *how = kHowLoops;
  switch (scheme) {
  case Scheme::loops:
    break;
  case Scheme::single:
    how = kHowSingle;
    break;
  case Scheme::warpRows:
    how = kHowWarp;
    break;
  case Scheme::blockRows:
    how = kHowBlock;
    break;
  case Scheme::columns:
    how = cuda() ? kHowColumns : kHowColumnsCpp;
    break;
  }
  Code text;
  writeKernelComment(text.os, kernel);
  print(
      text.os, kReduction,
      {{"HOW", render(how, {{"BX", std::to_string(blockX)},
                            {"BY", std::to_string(blockY)}})},
       {"ONE_BLOCK",
        family == Family::crossEntropy && cuda() ? render(kOneBlock, {}) : ""},
       {"SIGNATURE", signature(kernel, generated, target)},
       {"BODY", body.str()},
       {"ENTRY", target == Target::cpp ? cppEntry(kernel, generated) : ""}});
  generated.source = text.str();
  return success();
}

} // namespace

FailureOr<GeneratedKernel>
kiln::codegen::generateReduction(KernelOp kernel, llvm::StringRef symbol,
                                 Target target) {
  GeneratedKernel generated;
  if (failed(initGenerated(kernel, symbol, generated)))
    return failure();
  Emitter emitter(kernel, target, generated);
  if (failed(emitter.run()))
    return failure();
  return generated;
}

std::string kiln::codegen::reductionPreamble(Target target) {
  // Both targets: argmax's order; CUDA: warp and block reductions
  // (codegen/device).
  std::string text = device::kDeviceReductionH;
  if (target == Target::cuda)
    text += device::kDeviceReductionCuh;
  return text;
}
