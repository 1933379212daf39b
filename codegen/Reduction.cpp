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
//   3. picks how threads share the rows (CUDA) or loops over them (C++):
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

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <optional>

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

/// emitScalarOps at an indent string (until this generator writes through
/// a raw_indented_ostream).
static LogicalResult emitScalarOpsAt(raw_ostream &os, ArrayRef<Operation *> ops,
                                     DenseMap<Value, std::string> &locals,
                                     StringRef indent, StringRef flatIndex,
                                     unsigned &next) {
  assert(indent.size() % 2 == 0 && "indents are steps of two");
  raw_indented_ostream indented(os);
  for (size_t i = 0; i < indent.size(); i += 2)
    indented.indent();
  return emitScalarOps(indented, ops, locals, flatIndex, next);
}

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
  LogicalResult emitBody(raw_ostream &os);
  LogicalResult emitRow(raw_ostream &os, StringRef ind);
  LogicalResult emitPass(raw_ostream &os, StringRef ind, Fold fold,
                         StringRef acc,
                         llvm::function_ref<std::string(StringRef)> term,
                         StringRef comment, bool writesPrologue);
  void emitCombine(raw_ostream &os, StringRef ind, Fold fold, StringRef acc);
  LogicalResult emitPrologue(raw_ostream &os, StringRef ind, StringRef flat,
                             DenseMap<Value, std::string> &locals,
                             bool writesPrologue);
  LogicalResult emitEpilogue(raw_ostream &os, StringRef ind, StringRef flat,
                             DenseMap<Value, std::string> &locals);
  void loadArgs(raw_ostream &os, StringRef ind, ArrayRef<Value> values,
                ArrayRef<int64_t> shape, ArrayRef<std::string> sizes,
                StringRef flat, DenseMap<Value, std::string> &locals);
  void writeYields(raw_ostream &os, StringRef ind, StringRef flat,
                   DenseMap<Value, std::string> &locals, bool prologueValues);
  FailureOr<std::string> auxiliary(Value v, StringRef index);
  std::string offset(ArrayRef<std::string> keptIndices, StringRef k);
  std::string elementOffset(StringRef k);
  void setLaunch();

  std::string T() const { return cType(elementType); }
  std::string lit(double v) const { return literal(v, elementType); }
  std::string lowest() const;
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
/// requireSchedule); the C++ target loops.
LogicalResult Emitter::readSchedule() {
  if (!cuda()) {
    scheme = Scheme::loops;
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

void Emitter::loadArgs(raw_ostream &os, StringRef ind, ArrayRef<Value> values,
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
    os << ind << "const " << cType(type.getElementType()) << " " << local
       << " = in" << arg.getArgNumber() << "[" << index << "];\n";
    locals[v] = local;
  }
}

/// Stores each kernel result computed in `locals`: prologue values when
/// `prologueValues`, otherwise R's result and the epilogue's.
void Emitter::writeYields(raw_ostream &os, StringRef ind, StringRef flat,
                          DenseMap<Value, std::string> &locals,
                          bool prologueValues) {
  Operation *yield = kernel.getBlock().getTerminator();
  for (auto [n, v] : llvm::enumerate(yield->getOperands())) {
    bool fromPrologue = prologueSet.contains(v.getDefiningOp());
    if (fromPrologue != prologueValues || !locals.count(v))
      continue;
    os << ind << "out" << n << "[" << flat << "] = " << locals.lookup(v)
       << ";\n";
  }
}

LogicalResult Emitter::emitPrologue(raw_ostream &os, StringRef ind,
                                    StringRef flat,
                                    DenseMap<Value, std::string> &locals,
                                    bool writesPrologue) {
  SmallVector<Value> values{input};
  for (Operation *op : prologue)
    llvm::append_range(values, op->getOperands());
  loadArgs(os, ind, values, inType.getShape(),
           llvm::to_vector(llvm::map_range(
               dims, [](const Dim &d) -> std::string { return d.expr; })),
           flat, locals);
  if (failed(emitScalarOpsAt(os, constants, locals, ind, flat, next)) ||
      failed(emitScalarOpsAt(os, prologue, locals, ind, flat, next)))
    return failure();
  if (writesPrologue)
    writeYields(os, ind, flat, locals, /*prologueValues=*/true);
  return success();
}

LogicalResult Emitter::emitEpilogue(raw_ostream &os, StringRef ind,
                                    StringRef flat,
                                    DenseMap<Value, std::string> &locals) {
  SmallVector<Value> values;
  for (Operation *op : epilogue)
    llvm::append_range(values, op->getOperands());
  loadArgs(os, ind, values, outShape, outSizes, flat, locals);
  if (failed(emitScalarOpsAt(os, constants, locals, ind, flat, next)) ||
      failed(emitScalarOpsAt(os, epilogue, locals, ind, flat, next)))
    return failure();
  writeYields(os, ind, flat, locals, /*prologueValues=*/false);
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

void Emitter::emitCombine(raw_ostream &os, StringRef ind, Fold how,
                          StringRef acc) {
  std::string value = acc.str() + "Value", index = acc.str() + "Index";
  switch (scheme) {
  case Scheme::loops:
  case Scheme::single:
    return;
  case Scheme::warpRows:
    if (how == Fold::argmax)
      os << ind << "kiln_reduce_warp_argmax(" << value << ", " << index
         << ");\n";
    else
      os << ind << acc << " = kiln_reduce_warp_"
         << (how == Fold::sum ? "sum" : "max") << "(" << acc << ");\n";
    return;
  case Scheme::blockRows:
    if (how == Fold::argmax)
      os << ind << "kiln_reduce_block_argmax(" << value << ", " << index
         << ", scratch, scratchIndex);\n";
    else
      os << ind << acc << " = kiln_reduce_block_"
         << (how == Fold::sum ? "sum" : "max") << "(" << acc << ", scratch);\n";
    return;
  case Scheme::columns:
    break;
  }
  if (blockY == 1)
    return;
  // The BY slices of each column, combined by y = 0 in order of y.
  std::string here = "[threadIdx.y][threadIdx.x]";
  std::string at = "[y][threadIdx.x]";
  std::string first = "[0][threadIdx.x]";
  if (how == Fold::argmax) {
    os << ind << "partial" << here << " = " << value << ";\n"
       << ind << "partialIndex" << here << " = " << index << ";\n";
  } else {
    os << ind << "partial" << here << " = " << acc << ";\n";
  }
  os << ind << "__syncthreads();\n"
     << ind << "if (threadIdx.y == 0) {\n"
     << ind << "  for (int y = 1; y < " << blockY << "; ++y)\n";
  switch (how) {
  case Fold::sum:
    os << ind << "    " << acc << " += partial" << at << ";\n";
    break;
  case Fold::max:
    os << ind << "    " << acc << " = partial" << at << " > " << acc
       << " ? partial" << at << " : " << acc << ";\n";
    break;
  case Fold::argmax:
    os << ind << "    if (kiln_argmax_better(partial" << at << ", partialIndex"
       << at << ", " << value << ", " << index << ")) {\n"
       << ind << "      " << value << " = partial" << at << ";\n"
       << ind << "      " << index << " = partialIndex" << at << ";\n"
       << ind << "    }\n";
    break;
  }
  if (how == Fold::argmax)
    os << ind << "  partial" << first << " = " << value << ";\n"
       << ind << "  partialIndex" << first << " = " << index << ";\n";
  else
    os << ind << "  partial" << first << " = " << acc << ";\n";
  os << ind << "}\n" << ind << "__syncthreads();\n";
  if (how == Fold::argmax)
    os << ind << value << " = partial" << first << ";\n"
       << ind << index << " = partialIndex" << first << ";\n";
  else
    os << ind << acc << " = partial" << first << ";\n";
  os << ind << "__syncthreads();\n";
}

LogicalResult Emitter::emitPass(raw_ostream &os, StringRef ind, Fold how,
                                StringRef acc,
                                llvm::function_ref<std::string(StringRef)> term,
                                StringRef comment, bool writesPrologue) {
  os << ind << "// " << comment << "\n";
  std::string value = acc.str() + "Value", index = acc.str() + "Index";
  // On the CPU, eight running sums (k mod 8) added pairwise at the end:
  // each carries an eighth of the rounding error, and the loop pipelines.
  bool lanes = scheme == Scheme::loops && how == Fold::sum;
  std::string lanesName = acc.str() + "Lanes";
  if (how == Fold::argmax)
    os << ind << T() << " " << value << " = " << lowest() << ";\n"
       << ind << "long long " << index << " = kKilnNoIndex;\n";
  else if (lanes)
    os << ind << T() << " " << lanesName << "[8] = {};\n";
  else
    os << ind << T() << " " << acc << " = "
       << (how == Fold::sum ? lit(0) : lowest()) << ";\n";
  switch (scheme) {
  case Scheme::loops:
  case Scheme::single:
    os << ind << "for (long long k = 0; k < " << extent << "; ++k) {\n";
    break;
  case Scheme::warpRows:
    os << ind << "for (long long k = lane; k < " << extent << "; k += 32) {\n";
    break;
  case Scheme::blockRows:
    os << ind << "for (long long k = threadIdx.x; k < " << extent
       << "; k += " << blockX << ") {\n";
    break;
  case Scheme::columns:
    os << ind << "for (long long k = threadIdx.y; valid && k < " << extent
       << "; k += " << blockY << ") {\n";
    break;
  }
  std::string inner = (ind + "  ").str();
  os << inner << "const long long e = " << elementOffset("k") << ";\n";
  DenseMap<Value, std::string> locals;
  if (failed(emitPrologue(os, inner, "e", locals, writesPrologue)))
    return failure();
  std::string x = locals.lookup(input);
  switch (how) {
  case Fold::sum:
    os << inner << (lanes ? lanesName + "[k & 7]" : acc.str())
       << " += " << term(x) << ";\n";
    break;
  case Fold::max:
    os << inner << acc << " = " << x << " > " << acc << " ? " << x << " : "
       << acc << ";\n";
    break;
  case Fold::argmax:
    os << inner << "if (kiln_argmax_better(" << x << ", k, " << value << ", "
       << index << ")) {\n"
       << inner << "  " << value << " = " << x << ";\n"
       << inner << "  " << index << " = k;\n"
       << inner << "}\n";
    break;
  }
  os << ind << "}\n";
  if (lanes)
    os << ind << "const " << T() << " " << acc << " = ((" << lanesName
       << "[0] + " << lanesName << "[1]) + (" << lanesName << "[2] + "
       << lanesName << "[3])) +\n"
       << ind << "    ((" << lanesName << "[4] + " << lanesName << "[5]) + ("
       << lanesName << "[6] + " << lanesName << "[7]));\n";
  emitCombine(os, ind, how, acc);
  return success();
}

/// The work of one output row o (or, for columns, of one column of it).
LogicalResult Emitter::emitRow(raw_ostream &os, StringRef ind) {
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
  std::string wind = writer.empty() ? ind.str() : (ind + "  ").str();
  auto openWriter = [&] {
    if (!writer.empty())
      os << ind << "if (" << writer << ") {\n";
  };
  auto closeWriter = [&] {
    if (!writer.empty())
      os << ind << "}\n";
  };
  auto resultLine = [&](raw_ostream &out, StringRef in, StringRef type,
                        StringRef expr) {
    std::string local = "r" + std::to_string(next++);
    out << in << "const " << type << " " << local << " = " << expr << "; // "
        << red->getName().stripDialect() << " at " << locationOf(red) << "\n";
    return local;
  };
  auto identity = [](StringRef x) { return x.str(); };
  std::string expFn = math("exp", elementType);
  auto expOf = [&](StringRef x) {
    return expFn + "(" + x.str() + " - rowMax)";
  };

  switch (family) {
  case Family::reduce:
  case Family::argmax: {
    StringRef name = red->getName().stripDialect();
    if (failed(emitPass(os, ind, fold, "acc", identity,
                        (name + " over the reduced elements").str(),
                        /*writesPrologue=*/true)))
      return failure();
    openWriter();
    std::string expr = "acc";
    if (llvm::isa<ReduceMeanOp>(red))
      expr = "acc / (" + T() + ")" + extent;
    if (family == Family::argmax)
      expr = "accIndex == kKilnNoIndex ? 0 : (int)accIndex";
    DenseMap<Value, std::string> locals;
    locals[red->getResult(0)] =
        resultLine(os, wind, cType(elementOf(red->getResult(0))), expr);
    if (failed(emitEpilogue(os, wind, "o", locals)))
      return failure();
    closeWriter();
    return success();
  }
  case Family::count: {
    DenseMap<Value, std::string> locals;
    locals[red->getResult(0)] = resultLine(
        os, ind, cType(elementOf(red->getResult(0))), "(" + T() + ")" + extent);
    return emitEpilogue(os, ind, "0", locals);
  }
  case Family::crossEntropy: {
    if (failed(emitPass(os, ind, Fold::max, "rowMax", identity,
                        "the row's maximum", false)) ||
        failed(emitPass(os, ind, Fold::sum, "rowSum", expOf,
                        "the sum of exp(x - max)", true)))
      return failure();
    FailureOr<std::string> label = auxiliary(red->getOperand(1), "o");
    if (failed(label))
      return failure();
    openWriter();
    os << wind
       << "// logsumexp - logit[label], NaN for a label out of "
          "range\n"
       << wind << "const long long label = (long long)" << *label << ";\n"
       << wind << T()
       << " picked = " << (elementType.isF32() ? "KILN_NAN_F" : "KILN_NAN")
       << ";\n"
       << wind << "if (label >= 0 && label < " << extent << ") {\n";
    std::string pind = wind + "  ";
    os << pind << "const long long e = " << elementOffset("label") << ";\n";
    DenseMap<Value, std::string> locals;
    if (failed(emitPrologue(os, pind, "e", locals, false)))
      return failure();
    os << pind << "picked = " << locals.lookup(input) << ";\n"
       << wind << "}\n"
       << wind << "total += rowMax + " << math("log", elementType)
       << "(rowSum) - picked;\n";
    closeWriter();
    return success();
  }
  case Family::rowwise:
    break;
  }

  // softmax, log_softmax, cross_entropy_grad, layer_norm: row values, then
  // one pass writing every element.
  std::string element;
  if (auto norm = llvm::dyn_cast<LayerNormOp>(red)) {
    std::string n = "(" + T() + ")" + extent;
    auto centered = [](StringRef x) {
      return "(" + x.str() + " - mean) * (" + x.str() + " - mean)";
    };
    if (failed(emitPass(os, ind, Fold::sum, "rowSum", identity, "the row's sum",
                        false)))
      return failure();
    os << ind << "const " << T() << " mean = rowSum / " << n << ";\n";
    if (failed(emitPass(os, ind, Fold::sum, "squares", centered,
                        "the sum of squared deviations (two passes, as "
                        "the reference)",
                        false)))
      return failure();
    os << ind << "const " << T() << " rstd = " << lit(1) << " / "
       << math("sqrt", elementType) << "(squares / " << n << " + "
       << lit(norm.getEpsilon().convertToDouble()) << ");\n";
    FailureOr<std::string> weight = auxiliary(norm.getWeight(), "k");
    FailureOr<std::string> bias = auxiliary(norm.getBias(), "k");
    if (failed(weight) || failed(bias))
      return failure();
    element = "(X - mean) * rstd * " + *weight + " + " + *bias;
  } else {
    if (failed(emitPass(os, ind, Fold::max, "rowMax", identity,
                        "the row's maximum", false)) ||
        failed(emitPass(os, ind, Fold::sum, "rowSum", expOf,
                        "the sum of exp(x - max)", false)))
      return failure();
    if (llvm::isa<SoftmaxOp>(red)) {
      element = expFn + "(X - rowMax) / rowSum";
    } else if (llvm::isa<LogSoftmaxOp>(red)) {
      os << ind << "const " << T() << " logSum = " << math("log", elementType)
         << "(rowSum);\n";
      element = "X - rowMax - logSum";
    } else {
      auto grad = llvm::cast<CrossEntropyGradOp>(red);
      FailureOr<std::string> label = auxiliary(grad.getLabels(), "o");
      FailureOr<std::string> scale = auxiliary(grad.getGrad(), "0");
      if (failed(label) || failed(scale))
        return failure();
      os << ind << "const long long label = (long long)" << *label << ";\n"
         << ind << "const " << T() << " scale = " << *scale << " / (" << T()
         << ")" << rows << ";\n";
      element = "scale * (" + expFn + "(X - rowMax) / rowSum - (k == label ? " +
                lit(1) + " : " + lit(0) + "))";
    }
  }
  os << ind << "// every element of the row\n";
  switch (scheme) {
  case Scheme::loops:
  case Scheme::single:
    os << ind << "for (long long k = 0; k < " << extent << "; ++k) {\n";
    break;
  case Scheme::warpRows:
    os << ind << "for (long long k = lane; k < " << extent << "; k += 32) {\n";
    break;
  case Scheme::blockRows:
    os << ind << "for (long long k = threadIdx.x; k < " << extent
       << "; k += " << blockX << ") {\n";
    break;
  case Scheme::columns:
    os << ind << "for (long long k = threadIdx.y; valid && k < " << extent
       << "; k += " << blockY << ") {\n";
    break;
  }
  std::string inner = (ind + "  ").str();
  os << inner << "const long long e = " << elementOffset("k") << ";\n";
  DenseMap<Value, std::string> locals;
  if (failed(emitPrologue(os, inner, "e", locals, true)))
    return failure();
  std::string x = locals.lookup(input);
  std::string expr;
  for (char c : element)
    expr += c == 'X' ? x : std::string(1, c);
  locals[red->getResult(0)] = resultLine(os, inner, T(), expr);
  if (failed(emitEpilogue(os, inner, "e", locals)))
    return failure();
  os << ind << "}\n";
  return success();
}

LogicalResult Emitter::emitBody(raw_ostream &os) {
  std::string ind = "    ";
  std::string sharedType = T();
  switch (scheme) {
  case Scheme::loops:
    if (family == Family::count) {
      os << "  {\n";
      break;
    }
    if (family == Family::crossEntropy)
      os << "  " << T() << " total = " << lit(0) << ";\n";
    os << "  for (long long o = 0; o < " << rows << "; ++o) {\n";
    break;
  case Scheme::single:
    os << "  if (blockIdx.x == 0 && threadIdx.x == 0) {\n";
    break;
  case Scheme::warpRows:
    if (family == Family::crossEntropy)
      os << "  " << T() << " total = " << lit(0) << ";\n"
         << "  __shared__ " << sharedType << " scratch[32];\n";
    os << "  const int lane = threadIdx.x & 31;\n"
       << "  const long long warpsPerBlock = blockDim.x >> 5;\n"
       << "  for (long long o = blockIdx.x * warpsPerBlock + (threadIdx.x >> "
          "5); o < "
       << rows << ";\n       o += gridDim.x * warpsPerBlock) {\n";
    break;
  case Scheme::blockRows:
    if (family == Family::crossEntropy)
      os << "  " << T() << " total = " << lit(0) << ";\n";
    os << "  __shared__ " << sharedType << " scratch[32];\n";
    if (fold == Fold::argmax && family == Family::argmax)
      os << "  __shared__ long long scratchIndex[32];\n";
    os << "  for (long long o = blockIdx.x; o < " << rows
       << "; o += gridDim.x) {\n";
    break;
  case Scheme::columns: {
    std::string columns = keptSizes.back();
    std::string colTiles = "((" + columns + " + " + std::to_string(blockX - 1) +
                           ") / " + std::to_string(blockX) + ")";
    std::string outer = product(ArrayRef<std::string>(keptSizes).drop_back());
    if (blockY > 1) {
      os << "  __shared__ " << sharedType << " partial[" << blockY << "]["
         << blockX + 1 << "];\n";
      if (family == Family::argmax)
        os << "  __shared__ long long partialIndex[" << blockY << "]["
           << blockX + 1 << "];\n";
    }
    os << "  const long long columnTiles = " << colTiles << ";\n"
       << "  for (long long tile = blockIdx.x; tile < " << outer
       << " * columnTiles;\n       tile += gridDim.x) {\n"
       << "    const long long oOuter = tile / columnTiles;\n"
       << "    const long long col = (tile % columnTiles) * " << blockX
       << " + threadIdx.x;\n"
       << "    const bool valid = col < " << columns << ";\n"
       << "    const long long o = oOuter * " << columns << " + col;\n";
    break;
  }
  }
  if (failed(emitRow(os, ind)))
    return failure();
  os << "  }\n";
  if (family != Family::crossEntropy)
    return success();
  // The mean of the per-row losses, summed in a fixed order.
  std::string wind = "  ";
  if (cuda()) {
    os << "  total = kiln_reduce_block_sum(total, scratch);\n"
       << "  if (threadIdx.x == 0) {\n";
    wind = "    ";
  }
  DenseMap<Value, std::string> locals;
  std::string local = "r" + std::to_string(next++);
  os << wind << "const " << T() << " " << local << " = total / (" << T() << ")"
     << rows << "; // cross_entropy at " << locationOf(red) << "\n";
  locals[red->getResult(0)] = local;
  if (failed(emitEpilogue(os, wind, "0", locals)))
    return failure();
  if (cuda())
    os << "  }\n";
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

LogicalResult Emitter::run() {
  if (failed(analyze()) || failed(readSchedule()))
    return failure();
  std::string body;
  llvm::raw_string_ostream bodyOs(body);
  if (failed(emitBody(bodyOs)))
    return failure();
  setLaunch();

  std::string text;
  llvm::raw_string_ostream os(text);
  writeKernelComment(os, kernel);
  switch (scheme) {
  case Scheme::loops:
    os << "// One loop over the output rows; passes over each row.\n";
    break;
  case Scheme::single:
    os << "// One thread: count reads only sizes.\n";
    break;
  case Scheme::warpRows:
    os << "// One warp a row (lanes stride over it; butterfly shuffles "
          "combine).\n";
    break;
  case Scheme::blockRows:
    os << "// One block a row (warp shuffles, then the warps' values in "
          "shared\n// memory, summed in order).\n";
    break;
  case Scheme::columns:
    os << "// Blocks of " << blockX << " columns x " << blockY
       << " slices of the reduced rows; the slices combine in\n// shared "
          "memory in order.\n";
    break;
  }
  if (family == Family::crossEntropy && cuda())
    os << "// One block: the per-row losses sum in a fixed order.\n";
  os << signature(kernel, generated, target) << " {\n" << body << "}\n";
  if (target == Target::cpp)
    os << cppEntry(kernel, generated);
  generated.source = std::move(text);
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
