//===- PlanMemory.cpp - assign every tensor of a step a buffer ------------===//
//
// Parameters, optimizer state and inputs live in buffers the caller owns.
// Every other tensor that lives in memory is a kernel result; it gets an
// offset in one arena that all of the step's temporaries share:
//
//   1. Number the kernels in program order. A result is live from its
//      kernel's index to the index of its last reader; a result the function
//      returns lives to the end of the step (the number of kernels). Both
//      ends count, so a kernel's inputs and outputs never share memory.
//   2. In-place updates: a result returned as a new parameter or new state
//      (result role param/state) is written into the buffer of the argument
//      with the same role and kiln.name when
//        - no kernel after its producer reads the argument, and the function
//          does not return the argument itself;
//        - the producer reads the argument, if at all, element by element,
//          so each element is read before it is overwritten: an
//          elementwise kernel whose results all have the argument's type,
//          or a matmul or reduction kernel whose epilogue alone reads it,
//          through ops that keep its type (an SGD update fused into the
//          weight gradient's GEMM, or into the bias gradient's sum), or a
//          horizontal kernel in which only the
//          segment computing the result reads it, as an elementwise
//          kernel would (other segments run concurrently).
//      Such results take no arena space.
//   3. Views: a kernel that only reshapes a tensor (row-major order is
//      kept) and whose result the function does not return computes
//      nothing: its result is its input's buffer read in another shape
//      (`kiln.view`; no code runs). A view's readers count as readers of
//      the tensor it views (of the argument or kernel result at the end
//      of a chain of views), in the live ranges of step 1 and the checks
//      of step 2, where a producer reading a view of the argument it
//      would update is not element by element.
//   4. Collectives: an all-reduce (a `collective` kernel) reduces each
//      input's buffer in place, its result then being that buffer, when the
//      input is a kernel result that no kernel after the all-reduce reads
//      (the gradients kiln-data-parallel reduces); readers of the result
//      count as readers of the input's buffer, as for a view. An input
//      the step reads again later, or an argument, gets a result buffer of
//      its own (the runtime then reduces from one buffer into the other).
//   5. Every other result is a buffer of its size rounded up to 256 bytes.
//      Buffers are placed largest first (ties: in program order). Each goes
//      into the smallest gap that fits it (best fit) between the buffers
//      already placed whose live ranges overlap its own, or above them all.
//      Buffers whose live ranges are disjoint may share memory.
//   6. The plan is checked: offsets aligned, and no two buffers that are live
//      at once overlap. A violation is an internal error.
//   7. The plan is recorded: on each kernel `kiln.offsets` (one offset per
//      result, -1 for an in-place result, a view or a collective's result
//      reduced in place) and, when it has an
//      in-place result, `kiln.in_place` (per result the argument index, or
//      -1), or `kiln.view`; on the
//      function `kiln.arena_bytes`, `kiln.param_bytes`, `kiln.state_bytes`
//      and `kiln.input_bytes`.
//
// Planning needs static shapes: a dynamic dimension is a located error that
// asks for a binding (`--bind batch=N`). With `max-batch=N` the batch may
// stay dynamic: each size is then taken at batch N (ir/BatchSizes.h), and
// as every buffer only shrinks for a smaller batch, the plan holds for
// every batch up to N; the function records `kiln.max_batch`.
//
//===----------------------------------------------------------------------===//

#include "passes/PlanMemory.h"
#include "ir/AttrNames.h"
#include "ir/BatchSizes.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/Debug.h"
#include "llvm/Support/MathExtras.h"

#define DEBUG_TYPE "kiln-plan-memory"

namespace kiln {
#define GEN_PASS_DEF_KILNPLANMEMORY
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

int64_t kiln::getTensorBytes(ShapedType type) {
  int64_t elementBytes =
      llvm::divideCeil(type.getElementTypeBitWidth(), /*Denominator=*/8);
  return type.getNumElements() * elementBytes;
}

namespace {

/// One kernel result planned in the arena.
struct Buffer {
  OpResult value;
  int64_t bytes = 0;   // the tensor's size
  int64_t aligned = 0; // the space it takes in the arena
  unsigned start = 0;  // live range, both ends included
  unsigned end = 0;
  int64_t offset = -1;

  bool livesWith(const Buffer &other) const {
    return start <= other.end && other.start <= end;
  }
};

StringRef getRole(func::FuncOp func, unsigned argIndex) {
  auto role = func.getArgAttrOfType<StringAttr>(argIndex, attrs::role);
  return role ? role.getValue() : "input";
}

/// The located error for a tensor of dynamic shape.
LogicalResult reportDynamic(func::FuncOp func, Value value) {
  std::string symbol;
  if (auto arg = llvm::dyn_cast<BlockArgument>(value)) {
    auto shape = llvm::cast<ShapedType>(arg.getType()).getShape();
    if (auto names = func.getArgAttrOfType<ArrayAttr>(arg.getArgNumber(),
                                                      attrs::dimNames))
      for (auto [size, name] : llvm::zip(shape, names))
        if (ShapedType::isDynamic(size))
          if (auto str = llvm::dyn_cast<StringAttr>(name);
              str && !str.getValue().empty()) {
            symbol = str.getValue().str();
            break;
          }
  }
  if (symbol.empty())
    return emitError(value.getLoc())
           << "memory planning needs static shapes; bind the symbolic "
              "dimensions with --bind NAME=SIZE";
  return emitError(value.getLoc())
         << "memory planning needs static shapes; bind the symbolic "
            "dimension '"
         << symbol << "' with --bind " << symbol << "=N";
}

/// Whether `kernel` reads `arg`, if at all, only at the index of the output
/// element it computes: in an elementwise kernel over the argument's shape,
/// or in a matmul's or a reduction's epilogue (the product or the sum itself
/// does not depend on it) through ops that all keep the argument's type. In a
/// horizontal kernel, whose segments run concurrently, only the segment
/// computing `result` may read the argument, by the elementwise rule.
bool readsElementByElement(KernelOp kernel, OpResult result,
                           BlockArgument arg) {
  Type type = arg.getType();
  if (kernel.getKind() == KernelKind::horizontal) {
    Value yielded =
        kernel.getBlock().getTerminator()->getOperand(result.getResultNumber());
    Operation *writer = yielded.getDefiningOp();
    for (OpOperand &operand : kernel->getOpOperands()) {
      if (operand.get() != arg)
        continue;
      BlockArgument inner =
          kernel.getBlock().getArgument(operand.getOperandNumber());
      for (Operation *user : inner.getUsers())
        if (user != writer || !llvm::all_of(user->getResultTypes(),
                                            [&](Type t) { return t == type; }))
          return false;
    }
    return true;
  }
  for (OpOperand &operand : kernel->getOpOperands()) {
    if (operand.get() != arg)
      continue;
    if (kernel.getKind() == KernelKind::elementwise) {
      if (!llvm::all_of(kernel->getResultTypes(),
                        [&](Type t) { return t == type; }))
        return false;
      continue;
    }
    if (kernel.getKind() != KernelKind::matmul &&
        kernel.getKind() != KernelKind::reduction)
      return false;
    SmallVector<Value> worklist = {
        kernel.getBlock().getArgument(operand.getOperandNumber())};
    while (!worklist.empty()) {
      Value value = worklist.pop_back_val();
      for (Operation *user : value.getUsers()) {
        if (llvm::isa<YieldOp>(user))
          continue;
        if (llvm::isa<MatmulOp>(user) ||
            user->hasTrait<kiln::OpTrait::RowReduction>() ||
            llvm::any_of(user->getResultTypes(),
                         [&](Type t) { return t != type; }))
          return false;
        llvm::append_range(worklist, user->getResults());
      }
    }
  }
  return true;
}

/// Whether `kernel` only reshapes its input (step 3), and the function
/// does not return its result.
bool isView(KernelOp kernel, const llvm::SmallPtrSetImpl<Value> &returned) {
  Block &block = kernel.getBlock();
  if (kernel.getKind() != KernelKind::opaque || kernel->getNumResults() != 1 ||
      kernel.getInputs().size() != 1 || returned.count(kernel->getResult(0)))
    return false;
  auto reshape = llvm::dyn_cast<ReshapeOp>(block.front());
  return reshape && reshape.getInput() == block.getArgument(0) &&
         block.getTerminator()->getOperands() ==
             ValueRange(reshape.getResult());
}

class Planner {
public:
  Planner(func::FuncOp func, int64_t maxBatch)
      : func(func), maxBatch(maxBatch) {}

  LogicalResult run();

private:
  LogicalResult collect();
  void reduceInPlace();
  void findInPlaceUpdates();
  /// The tensor whose buffer `value` is: itself, or the end of its chain
  /// of views.
  Value storage(Value value) const {
    auto it = viewed.find(value);
    return it == viewed.end() ? value : it->second;
  }
  void assignOffsets();
  LogicalResult verify();
  void record();
  /// `value`'s type, at the largest batch for a step with a run-time batch.
  ShapedType typeOf(Value value) const {
    if (batchSizes)
      return batchSizes->typeAt(value, maxBatch);
    return llvm::cast<ShapedType>(value.getType());
  }

  func::FuncOp func;
  int64_t maxBatch = 0;
  std::optional<BatchSizes> batchSizes;
  SmallVector<KernelOp> kernels;
  llvm::DenseMap<Operation *, unsigned> index;
  /// The last kernel that reads each value (kernels.size() for a value the
  /// function returns).
  llvm::DenseMap<Value, unsigned> lastUse;
  /// Results written into an argument's buffer, with the argument's index.
  llvm::DenseMap<Value, unsigned> inPlace;
  /// The results of view kernels, and of collectives reduced in place,
  /// with the tensor whose buffer they are.
  llvm::DenseMap<Value, Value> viewed;
  SmallVector<KernelOp> collectives;
  SmallVector<Buffer> buffers;
  int64_t arena = 0;
  int64_t roleBytes[3] = {0, 0, 0}; // param, state, input
};

LogicalResult Planner::run() {
  if (failed(collect()))
    return failure();
  reduceInPlace();
  findInPlaceUpdates();
  assignOffsets();
  if (failed(verify()))
    return failure();
  record();
  return success();
}

/// Steps 1 and 3, and the bytes of the caller's buffers.
LogicalResult Planner::collect() {
  Block &body = func.getBody().front();
  bool dynamic = llvm::any_of(body.getArgumentTypes(), [](Type type) {
    return !llvm::cast<ShapedType>(type).hasStaticShape();
  });
  if (dynamic && maxBatch > 0) {
    FailureOr<BatchSizes> sizes = BatchSizes::analyze(func, maxBatch);
    if (failed(sizes))
      return failure();
    batchSizes = std::move(*sizes);
  }
  for (BlockArgument arg : body.getArguments()) {
    ShapedType type = typeOf(arg);
    if (!type.hasStaticShape())
      return reportDynamic(func, arg);
    StringRef role = getRole(func, arg.getArgNumber());
    roleBytes[role == "param"                      ? 0
              : role == "state" || role == "hyper" ? 1
                                                   : 2] += getTensorBytes(type);
  }
  llvm::SmallPtrSet<Value, 8> returned;
  for (Value result : body.getTerminator()->getOperands())
    returned.insert(result);
  for (Operation &op : body.without_terminator()) {
    if (auto param = llvm::dyn_cast<ParamOp>(op)) {
      // A model as written keeps its parameters as ops.
      roleBytes[0] += getTensorBytes(llvm::cast<ShapedType>(param.getType()));
      continue;
    }
    auto kernel = llvm::dyn_cast<KernelOp>(op);
    if (!kernel)
      return op.emitOpError("cannot be planned: memory planning runs on "
                            "kernels (after kiln-fuse)");
    for (OpResult result : kernel->getResults())
      if (!typeOf(result).hasStaticShape())
        return reportDynamic(func, result);
    index[kernel] = kernels.size();
    for (Value input : kernel.getInputs())
      lastUse[storage(input)] = kernels.size();
    if (isView(kernel, returned))
      viewed[kernel->getResult(0)] = storage(kernel.getInputs()[0]);
    if (kernel.getKind() == KernelKind::collective)
      collectives.push_back(kernel);
    kernels.push_back(kernel);
  }
  for (Value result : body.getTerminator()->getOperands())
    lastUse[storage(result)] = kernels.size();
  return success();
}

/// Step 4 (before step 2, which asks where each tensor lives).
void Planner::reduceInPlace() {
  for (KernelOp kernel : collectives) {
    unsigned at = index[kernel];
    for (auto [input, result] :
         llvm::zip(kernel.getInputs(), kernel->getResults())) {
      Value buffer = storage(input);
      if (llvm::isa<BlockArgument>(buffer) || lastUse.lookup(buffer) != at)
        continue;
      // The result is the input's buffer from now on: its readers, and
      // the views of it, read that buffer.
      viewed[result] = buffer;
      for (auto &[view, of] : viewed)
        if (of == result)
          of = buffer;
      auto readers = lastUse.find(result);
      if (readers != lastUse.end()) {
        lastUse[buffer] = std::max(lastUse[buffer], readers->second);
        lastUse.erase(result);
      }
    }
  }
}

/// Step 2.
void Planner::findInPlaceUpdates() {
  Operation *ret = func.getBody().front().getTerminator();
  llvm::SmallDenseSet<unsigned> claimed;
  for (auto [i, value] : llvm::enumerate(ret->getOperands())) {
    auto role = func.getResultAttrOfType<StringAttr>(i, attrs::role);
    auto name = func.getResultAttrOfType<StringAttr>(i, attrs::name);
    auto result = llvm::dyn_cast<OpResult>(value);
    if (!role || !name || !result || inPlace.count(result) ||
        (role.getValue() != "param" && role.getValue() != "state"))
      continue;
    auto producer = llvm::dyn_cast<KernelOp>(result.getOwner());
    if (!producer)
      continue;
    for (BlockArgument arg : func.getArguments()) {
      unsigned a = arg.getArgNumber();
      if (claimed.count(a) || getRole(func, a) != role.getValue() ||
          func.getArgAttr(a, attrs::name) != name)
        continue;
      if (arg.getType() != result.getType())
        break;
      auto last = lastUse.find(arg);
      if (last != lastUse.end() && last->second > index[producer]) {
        LLVM_DEBUG(llvm::dbgs() << "'" << name.getValue()
                                << "' not in place: read after its update\n");
        break;
      }
      if (!readsElementByElement(producer, result, arg) ||
          llvm::any_of(producer.getInputs(), [&](Value input) {
            return input != arg && storage(input) == arg;
          })) {
        LLVM_DEBUG(llvm::dbgs()
                   << "'" << name.getValue()
                   << "' not in place: its kernel reads it out of order\n");
        break;
      }
      LLVM_DEBUG(llvm::dbgs() << "'" << name.getValue() << "' in place in %arg"
                              << a << "\n");
      inPlace[result] = a;
      claimed.insert(a);
      break;
    }
  }
}

/// Step 5.
void Planner::assignOffsets() {
  for (auto [k, kernel] : llvm::enumerate(kernels))
    for (OpResult result : kernel->getResults()) {
      if (inPlace.count(result) || viewed.count(result))
        continue;
      Buffer b;
      b.value = result;
      b.bytes = getTensorBytes(typeOf(result));
      b.aligned = llvm::alignTo(b.bytes, kBufferAlignment);
      b.start = k;
      auto last = lastUse.find(result);
      b.end = last == lastUse.end() ? k : last->second;
      buffers.push_back(b);
    }

  SmallVector<unsigned> order =
      llvm::to_vector(llvm::seq<unsigned>(0, buffers.size()));
  llvm::stable_sort(order, [&](unsigned a, unsigned b) {
    return buffers[a].aligned > buffers[b].aligned;
  });
  SmallVector<unsigned> placed;
  for (unsigned i : order) {
    Buffer &b = buffers[i];
    SmallVector<const Buffer *> live;
    for (unsigned j : placed)
      if (b.livesWith(buffers[j]))
        live.push_back(&buffers[j]);
    llvm::sort(live, [](const Buffer *x, const Buffer *y) {
      return x->offset < y->offset;
    });
    // Gaps between the live buffers, lowest first; the best is the smallest
    // that fits, else the top.
    int64_t cursor = 0, best = -1, bestGap = 0;
    for (const Buffer *other : live) {
      int64_t gap = other->offset - cursor;
      if (gap >= b.aligned && (best < 0 || gap < bestGap)) {
        best = cursor;
        bestGap = gap;
      }
      cursor = std::max(cursor, other->offset + other->aligned);
    }
    b.offset = best >= 0 ? best : cursor;
    arena = std::max(arena, b.offset + b.aligned);
    placed.push_back(i);
    LLVM_DEBUG(llvm::dbgs()
               << "result " << b.value.getResultNumber() << " of kernel "
               << b.start << " (" << b.aligned << " bytes, live " << b.start
               << ".." << b.end << ") at " << b.offset << "\n");
  }
}

/// Step 6.
LogicalResult Planner::verify() {
  for (auto [i, b] : llvm::enumerate(buffers)) {
    if (b.offset < 0 || b.offset % kBufferAlignment != 0 ||
        b.offset + b.aligned > arena)
      return b.value.getOwner()->emitError()
             << "internal error: memory plan puts result "
             << b.value.getResultNumber() << " at offset " << b.offset
             << " in an arena of " << arena << " bytes";
    for (const Buffer &other : ArrayRef(buffers).drop_front(i + 1))
      if (b.livesWith(other) && b.aligned > 0 && other.aligned > 0 &&
          b.offset < other.offset + other.aligned &&
          other.offset < b.offset + b.aligned)
        return b.value.getOwner()->emitError()
               << "internal error: memory plan overlaps two live buffers ("
               << b.offset << "+" << b.aligned << " and " << other.offset << "+"
               << other.aligned << ")";
  }
  return success();
}

/// Step 7.
void Planner::record() {
  Builder builder(func.getContext());
  llvm::DenseMap<Value, int64_t> offsetOf;
  for (const Buffer &b : buffers)
    offsetOf[b.value] = b.offset;
  for (KernelOp kernel : kernels) {
    SmallVector<int64_t> offsets, args;
    for (OpResult result : kernel->getResults()) {
      auto it = inPlace.find(result);
      bool aliases = it != inPlace.end();
      bool reducedInPlace = viewed.count(result);
      offsets.push_back(aliases || reducedInPlace ? -1
                                                  : offsetOf.lookup(result));
      args.push_back(aliases ? int64_t(it->second) : -1);
    }
    if (kernel.getKind() != KernelKind::collective &&
        viewed.count(kernel->getResult(0))) {
      offsets.assign({-1});
      kernel->setAttr(attrs::view, builder.getUnitAttr());
    } else {
      kernel->removeAttr(attrs::view);
    }
    kernel->setAttr(attrs::offsets, builder.getDenseI64ArrayAttr(offsets));
    if (llvm::any_of(args, [](int64_t a) { return a >= 0; }))
      kernel->setAttr(attrs::inPlace, builder.getDenseI64ArrayAttr(args));
    else
      kernel->removeAttr(attrs::inPlace);
  }
  func->setAttr(attrs::arenaBytes, builder.getI64IntegerAttr(arena));
  if (batchSizes)
    func->setAttr(attrs::maxBatch, builder.getI64IntegerAttr(maxBatch));
  func->setAttr(attrs::paramBytes, builder.getI64IntegerAttr(roleBytes[0]));
  func->setAttr(attrs::stateBytes, builder.getI64IntegerAttr(roleBytes[1]));
  func->setAttr(attrs::inputBytes, builder.getI64IntegerAttr(roleBytes[2]));
}

struct KilnPlanMemoryPass
    : public kiln::impl::KilnPlanMemoryBase<KilnPlanMemoryPass> {
  using Base::Base;
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    if (failed(Planner(func, maxBatch).run()))
      signalPassFailure();
  }
};

} // namespace

std::optional<MemoryStats> kiln::collectStats(func::FuncOp func) {
  auto bytes = [&](StringRef name) -> std::optional<int64_t> {
    if (auto attr = func->getAttrOfType<IntegerAttr>(name))
      return attr.getInt();
    return std::nullopt;
  };
  std::optional<int64_t> arena = bytes(attrs::arenaBytes),
                         params = bytes(attrs::paramBytes),
                         state = bytes(attrs::stateBytes),
                         inputs = bytes(attrs::inputBytes);
  if (!arena || !params || !state || !inputs)
    return std::nullopt;

  // A step with a run-time batch: its sizes at the batch it is planned for.
  std::optional<BatchSizes> batchSizes;
  int64_t maxBatch = 0;
  if (auto attr = func->getAttrOfType<IntegerAttr>(attrs::maxBatch)) {
    maxBatch = attr.getInt();
    FailureOr<BatchSizes> sizes = BatchSizes::analyze(func, maxBatch);
    if (failed(sizes))
      return std::nullopt;
    batchSizes = std::move(*sizes);
  }

  MemoryStats stats;
  stats.arenaBytes = *arena;
  stats.paramBytes = *params;
  stats.stateBytes = *state;
  stats.inputBytes = *inputs;
  stats.kernelsByKind.assign(getMaxEnumValForKernelKind() + 1, 0);
  for (KernelOp kernel : func.getOps<KernelOp>()) {
    ++stats.kernels;
    ++stats.kernelsByKind[static_cast<unsigned>(kernel.getKind())];
    auto offsets = kernel->getAttrOfType<DenseI64ArrayAttr>(attrs::offsets);
    if (!offsets)
      return std::nullopt;
    if (kernel->hasAttr(attrs::view)) {
      ++stats.views;
      continue;
    }
    bool collective = kernel.getKind() == KernelKind::collective;
    for (auto [result, offset] :
         llvm::zip(kernel->getResults(), offsets.asArrayRef())) {
      if (offset < 0) {
        stats.inPlaceUpdates += !collective; // else reduced in place
        continue;
      }
      ++stats.buffers;
      stats.activationBytes +=
          getTensorBytes(batchSizes ? batchSizes->typeAt(result, maxBatch)
                                    : llvm::cast<ShapedType>(result.getType()));
    }
  }
  return stats;
}
