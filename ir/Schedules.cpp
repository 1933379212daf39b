//===- Schedules.cpp - schedule attributes and their checks ---------------===//

#include "ir/Schedules.h"
#include "ir/AttrNames.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/xxhash.h"

#include <algorithm>

using namespace mlir;
using namespace kiln;

#include "ir/ScheduleEnums.cpp.inc"

// The dialect parses these attributes through parseScheduleAttribute below
// (its mnemonic already read), so the generated keyword parser goes unused.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#define GET_ATTRDEF_CLASSES
#include "ir/Schedules.cpp.inc"
#pragma GCC diagnostic pop

void KilnDialect::registerScheduleAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "ir/Schedules.cpp.inc"
      >();
}

namespace {

bool isOneOf(int64_t value, std::initializer_list<int64_t> allowed) {
  return llvm::is_contained(allowed, value);
}

} // namespace

//===----------------------------------------------------------------------===//
// Verifiers: the kernel-independent part of each space
//===----------------------------------------------------------------------===//

LogicalResult
GemmScheduleAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                         int64_t bm, int64_t bn, int64_t bk, int64_t tm,
                         int64_t tn, int64_t splitK) {
  if (!isOneOf(bm, {16, 32, 64, 128}) || !isOneOf(bn, {16, 32, 64, 128}))
    return emitError() << "gemm tile " << bm << " x " << bn
                       << ": bm and bn must be 16, 32, 64 or 128";
  if (!isOneOf(bk, {8, 16}))
    return emitError() << "gemm bk = " << bk << " must be 8 or 16";
  if (!isOneOf(tm, {1, 2, 4, 8}) || !isOneOf(tn, {1, 2, 4, 8}))
    return emitError() << "gemm thread tile " << tm << " x " << tn
                       << ": tm and tn must be 1, 2, 4 or 8";
  if (!isOneOf(splitK, {1, 2, 4, 8, 16}))
    return emitError() << "gemm split_k = " << splitK
                       << " must be 1, 2, 4, 8 or 16";
  int64_t group = (bm / tm) * (bn / tn);
  if (group < 32 || group > 256)
    return emitError() << "gemm group of " << group
                       << " threads (bm / tm * bn / tn): must be 32 to 256";
  int64_t maxThreads = tm * tn >= 32 ? 256 : 512;
  if (group * splitK > maxThreads)
    return emitError() << "gemm block of " << group * splitK
                       << " threads: at most " << maxThreads << " with "
                       << tm * tn << " outputs a thread";
  return success();
}

LogicalResult
ConvScheduleAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                         int64_t bm, int64_t bn, int64_t bk, int64_t tm,
                         int64_t tn, int64_t splitK, int64_t indexBits) {
  if (!isOneOf(bm, {16, 32, 64, 128}) || !isOneOf(bn, {16, 32, 64}))
    return emitError() << "conv tile " << bm << " x " << bn
                       << ": bm must be 16, 32, 64 or 128 and bn 16, 32 or 64";
  if (bk < 1 || bk > 16)
    return emitError() << "conv bk = " << bk << " must be 1 to 16";
  if (!isOneOf(tm, {1, 2, 4, 8}) || !isOneOf(tn, {1, 2, 4, 8}))
    return emitError() << "conv thread tile " << tm << " x " << tn
                       << ": tm and tn must be 1, 2, 4 or 8";
  if (tm > bm || tn > bn)
    return emitError() << "conv thread tile " << tm << " x " << tn
                       << " larger than the block's " << bm << " x " << bn;
  if (splitK < 1 || splitK > 128)
    return emitError() << "conv split_k = " << splitK << " must be 1 to 128";
  if (!isOneOf(indexBits, {32, 64}))
    return emitError() << "conv index_bits = " << indexBits
                       << " must be 32 or 64";
  int64_t threads = (bm / tm) * (bn / tn);
  if (threads < 32 || threads > 1024)
    return emitError() << "conv block of " << threads
                       << " threads: must be 32 to 1024";
  return success();
}

LogicalResult
ReduceScheduleAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                           ReductionScheme scheme, int64_t blockX,
                           int64_t blockY) {
  if (blockX < 1 || blockY < 1 || blockX * blockY > 1024)
    return emitError() << "reduce block " << blockX << " x " << blockY
                       << ": at most 1024 threads";
  switch (scheme) {
  case ReductionScheme::single:
    if (blockX != 1 || blockY != 1)
      return emitError() << "a single-thread reduction has a block of 1 x 1";
    break;
  case ReductionScheme::warp_rows:
  case ReductionScheme::block_rows:
    if (blockX % 32 != 0 || blockY != 1)
      return emitError() << "a row reduction takes whole warps: block_x a "
                            "multiple of 32 and block_y = 1, not "
                         << blockX << " x " << blockY;
    break;
  case ReductionScheme::columns:
    if (!llvm::isPowerOf2_64(blockX) || blockX > 32)
      return emitError() << "a column reduction's block_x must be a power of "
                            "two up to 32, not "
                         << blockX;
    break;
  }
  return success();
}

LogicalResult
ElementwiseScheduleAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                int64_t block) {
  if (block < 32 || block > 1024 || block % 32 != 0)
    return emitError() << "elementwise block = " << block
                       << " must be a multiple of 32 from 32 to 1024";
  return success();
}

LogicalResult
AttentionScheduleAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                              int64_t tile) {
  if (tile != 16 && tile != 32 && tile != 64)
    return emitError() << "attention tile = " << tile
                       << " must be 16, 32 or 64";
  return success();
}

int64_t kiln::attentionSharedBytes(Operation *op, int64_t tile) {
  auto dim = [&](unsigned operand, unsigned d) {
    auto type = llvm::cast<RankedTensorType>(op->getOperand(operand).getType());
    return type.getDimSize(type.getRank() - 1 - d);
  };
  // q [..., TQ, D], k [..., TK, D], v [..., TK, DV]; rows padded by one
  // element where a tile is read across its rows.
  int64_t d = dim(0, 0) + 1, dvPadded = dim(2, 0) + 1, dv = dim(2, 0);
  int64_t square = tile * (tile + 1);
  int64_t elements;
  if (llvm::isa<AttentionOp>(op)) // Q, K, V, P
    elements = tile * d + tile * d + tile * dv + square;
  else if (llvm::isa<AttentionGradQOp>(op)) // Q, dO, K, V, dS
    elements = tile * d + tile * dvPadded + tile * d + tile * dvPadded + square;
  else // K, V, Q, dO, P, dS, lse, delta
    elements = tile * d + tile * dvPadded + tile * d + tile * dvPadded +
               2 * square + 2 * tile;
  Type element = llvm::cast<RankedTensorType>(op->getOperand(0).getType())
                     .getElementType();
  return elements * (element.isF64() ? 8 : 4);
}

Operation *kiln::attentionOf(KernelOp kernel) {
  for (Operation &op : kernel.getBlock().without_terminator())
    if (llvm::isa<AttentionOp, AttentionGradQOp, AttentionGradKvOp>(op))
      return &op;
  return nullptr;
}

LogicalResult
CpuGemmScheduleAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                            int64_t mr, int64_t nr) {
  if (mr < 1 || mr > 16)
    return emitError() << "cpu_gemm mr = " << mr << " must be 1 to 16";
  if (nr < 16 || nr > 64 || nr % 16 != 0)
    return emitError() << "cpu_gemm nr = " << nr << " must be 16, 32, 48 or 64";
  if (mr * nr > 512)
    return emitError() << "cpu_gemm tile " << mr << " x " << nr
                       << " holds more than 512 elements";
  return success();
}

//===----------------------------------------------------------------------===//
// Kernels and their schedules
//===----------------------------------------------------------------------===//

Attribute kiln::getSchedule(KernelOp kernel, StringRef target) {
  auto schedules = kernel->getAttrOfType<DictionaryAttr>(attrs::schedule);
  return schedules ? schedules.get(target) : Attribute();
}

void kiln::setSchedule(KernelOp kernel, StringRef target, Attribute schedule) {
  NamedAttrList entries;
  if (auto schedules = kernel->getAttrOfType<DictionaryAttr>(attrs::schedule))
    entries.assign(schedules.getValue());
  if (schedule)
    entries.set(target, schedule);
  else
    entries.erase(target);
  if (entries.empty()) {
    kernel->removeAttr(attrs::schedule);
    return;
  }
  kernel->setAttr(attrs::schedule, entries.getDictionary(kernel->getContext()));
}

int64_t kiln::gemmSharedElements(int64_t bm, int64_t bn, int64_t bk,
                                 int64_t splitK, unsigned elementBytes) {
  int64_t pad = 16 / elementBytes;
  int64_t tiles = splitK * 2 * bk * (bm + pad + bn + pad);
  return splitK > 1 ? std::max<int64_t>(tiles, bm * bn) : tiles;
}

int64_t kiln::gemmLoadVector(int64_t size, int64_t tile,
                             unsigned elementBytes) {
  int64_t w = 16 / elementBytes;
  return size > 0 && size % w == 0 && tile % w == 0 ? w : 1;
}

LogicalResult
kiln::verifyGemmSchedule(GemmScheduleAttr s, unsigned elementBytes,
                         function_ref<InFlightDiagnostic()> emitError) {
  int64_t maxOutputs = elementBytes == 8 ? 16 : 64;
  if (s.getTm() * s.getTn() > maxOutputs)
    return emitError() << s << ": " << s.getTm() * s.getTn()
                       << " outputs a thread, at most " << maxOutputs << " for "
                       << elementBytes << "-byte elements";
  int64_t shared = gemmSharedElements(s.getBm(), s.getBn(), s.getBk(),
                                      s.getSplitK(), elementBytes) *
                   elementBytes;
  if (shared > 48 * 1024)
    return emitError() << s << ": " << shared
                       << " bytes of shared memory, more than 48 KiB";
  return success();
}

FailureOr<SmallVector<bool>> kiln::reducedDims(Operation *op) {
  if (op->getNumOperands() == 0)
    return failure();
  auto type = llvm::dyn_cast<RankedTensorType>(op->getOperand(0).getType());
  if (!type)
    return failure();
  int64_t rank = type.getRank();
  SmallVector<bool> reduced(rank, false);
  auto axes = [&](ArrayRef<int64_t> axes) -> LogicalResult {
    for (int64_t d = 0; d < rank; ++d)
      reduced[d] = axes.empty() || llvm::is_contained(axes, d) ||
                   llvm::is_contained(axes, d - rank);
    return success();
  };
  auto axis = [&](int64_t axis) -> LogicalResult {
    if (axis < 0)
      axis += rank;
    if (axis < 0 || axis >= rank)
      return op->emitError("axis out of range in code generation");
    reduced[axis] = true;
    return success();
  };
  LogicalResult marked =
      llvm::TypeSwitch<Operation *, LogicalResult>(op)
          .Case<ReduceSumOp, ReduceMeanOp, ReduceMaxOp, CountOp>(
              [&](auto r) { return axes(r.getAxes()); })
          .Case<ArgmaxOp, SoftmaxOp, LogSoftmaxOp>(
              [&](auto r) { return axis(r.getAxis()); })
          .Case<CrossEntropyOp, CrossEntropyGradOp, LayerNormOp>(
              [&](auto) { return axis(-1); })
          .Default([](Operation *) { return failure(); });
  if (failed(marked))
    return failure();
  return reduced;
}

std::string kiln::scheduleKey(KernelOp kernel) {
  // The kernel as printed on its own (values numbered from its region),
  // without the discardable attributes of it and of its segments (memory
  // plan, schedules).
  Operation *copy = kernel->clone();
  copy->walk([](KernelOp nested) {
    nested->setDiscardableAttrs(ArrayRef<NamedAttribute>());
  });
  std::string text;
  llvm::raw_string_ostream os(text);
  copy->print(os, OpPrintingFlags().useLocalScope());
  copy->erase();
  std::string key = (kernel.getName() + "@").str();
  llvm::raw_string_ostream(key) << llvm::format_hex_no_prefix(
      llvm::xxh3_64bits(llvm::StringRef(text)), 16);
  return key;
}

namespace {

/// The static product of `sizes` of `type`, -1 when one is dynamic.
int64_t staticProduct(RankedTensorType type, ArrayRef<unsigned> dims) {
  int64_t product = 1;
  for (unsigned d : dims) {
    if (type.isDynamicDim(d))
      return -1;
    product *= type.getDimSize(d);
  }
  return product;
}

/// The kernel-dependent checks of a reduction's schedule.
LogicalResult verifyReduce(KernelOp kernel, ReduceScheduleAttr schedule,
                           function_ref<InFlightDiagnostic()> emitError) {
  Operation *red = nullptr;
  SmallVector<bool> reduced;
  for (Operation &op : kernel.getBlock().without_terminator())
    if (FailureOr<SmallVector<bool>> dims = reducedDims(&op); succeeded(dims)) {
      red = &op;
      reduced = std::move(*dims);
      break;
    }
  if (!red)
    return emitError() << "reduction kernel '" << kernel.getName()
                       << "' has no reduction op";
  auto invalid = [&](StringRef why) {
    return emitError() << "the schedule " << schedule
                       << " does not fit this reduction: " << why;
  };
  // The last dimension that is not a static 1 is kept: columns innermost.
  auto type = llvm::cast<RankedTensorType>(red->getOperand(0).getType());
  int64_t last = type.getRank() - 1;
  while (last >= 0 && type.getDimSize(last) == 1)
    --last;
  bool keptInnermost = last >= 0 && !reduced[last];
  ReductionScheme scheme = schedule.getScheme();
  if (scheme == ReductionScheme::columns && !keptInnermost)
    return invalid("columns need the kept dimensions innermost");
  if (llvm::isa<CountOp>(red) != (scheme == ReductionScheme::single))
    return invalid("count, and only count, is computed by a single thread");
  if (llvm::isa<CrossEntropyOp>(red) && scheme == ReductionScheme::columns)
    return invalid("cross_entropy takes its rows by warps or by the block");
  return success();
}

/// The kernel-dependent checks of a convolution's schedule: the threads
/// load whole A rows (the forward and input gradient: threads a multiple of
/// bm) or whole k columns of both tiles (the weight gradient), and split-K
/// needs a static GM and GN (its workspace).
LogicalResult verifyConv(Operation *op, ConvScheduleAttr schedule,
                         function_ref<InFlightDiagnostic()> emitError) {
  auto typeOf = [](Value v) {
    return llvm::cast<RankedTensorType>(v.getType());
  };
  int64_t m = -1, n = -1;
  bool rows = true;
  if (auto conv = llvm::dyn_cast<Conv2dOp>(op)) {
    int64_t batch = staticProduct(typeOf(conv.getInput()), {0});
    int64_t image = staticProduct(typeOf(conv.getResult()), {2, 3});
    m = batch < 0 || image < 0 ? -1 : batch * image;
    n = staticProduct(typeOf(conv.getWeight()), {0});
  } else if (auto grad = llvm::dyn_cast<Conv2dGradInputOp>(op)) {
    m = staticProduct(typeOf(grad.getResult()), {0, 2, 3});
    n = staticProduct(typeOf(grad.getResult()), {1});
  } else {
    auto weight = llvm::cast<Conv2dGradWeightOp>(op);
    int64_t channels = staticProduct(typeOf(weight.getInput()), {1});
    int64_t taps = staticProduct(typeOf(weight.getResult()), {2, 3});
    m = staticProduct(typeOf(weight.getResult()), {0});
    n = channels < 0 || taps < 0 ? -1 : channels * taps;
    rows = false;
  }
  auto invalid = [&](StringRef why) {
    return emitError() << "the schedule " << schedule
                       << " does not fit this convolution: " << why;
  };
  int64_t threads = schedule.threads();
  int64_t bm = schedule.getBm(), bn = schedule.getBn(), bk = schedule.getBk();
  if (rows && threads % bm != 0)
    return invalid("its threads must load whole rows of A (threads a "
                   "multiple of bm)");
  if (!rows &&
      (threads % bk != 0 || bm * bk % threads != 0 || bn * bk % threads != 0))
    return invalid("its threads must load whole k columns of both tiles");
  if (schedule.getSplitK() > 1 && (m < 0 || n < 0))
    return invalid("split-K needs static output sizes (its workspace)");
  return success();
}

} // namespace

LogicalResult
kiln::verifyScheduleFor(KernelOp kernel, StringRef target, Attribute schedule,
                        function_ref<InFlightDiagnostic()> emitError) {
  bool cuda = target == kCudaTarget;
  if (!cuda && target != kCpuTarget)
    return emitError() << "unknown target '" << target
                       << "' (the targets are cuda and cpu)";
  // The op the kernel's generator is built around, and the schedule kind
  // it renders on `target` (none: the kernel takes no schedule there).
  Operation *conv = nullptr;
  StringRef expected;
  switch (kernel.getKind()) {
  case KernelKind::elementwise:
  case KernelKind::horizontal:
    expected = cuda ? ElementwiseScheduleAttr::getMnemonic() : "";
    break;
  case KernelKind::reduction:
    expected = cuda ? ReduceScheduleAttr::getMnemonic() : "";
    break;
  case KernelKind::matmul:
    expected = cuda ? GemmScheduleAttr::getMnemonic()
                    : CpuGemmScheduleAttr::getMnemonic();
    break;
  case KernelKind::opaque:
    for (Operation &op : kernel.getBlock().without_terminator())
      if (llvm::isa<Conv2dOp, Conv2dGradInputOp, Conv2dGradWeightOp>(op))
        conv = &op;
    if (conv) {
      expected = cuda ? ConvScheduleAttr::getMnemonic()
                      : CpuGemmScheduleAttr::getMnemonic();
    } else if (attentionOf(kernel)) {
      expected = AttentionScheduleAttr::getMnemonic();
    } else if (cuda) {
      // Layout copies, pooling, embedding: element loops.
      expected = ElementwiseScheduleAttr::getMnemonic();
    }
    break;
  case KernelKind::collective:
    break; // no code, no schedule
  }
  if (expected.empty())
    return emitError() << "kernel '" << kernel.getName() << "' takes no "
                       << target << " schedule";
  auto mnemonic =
      llvm::TypeSwitch<Attribute, StringRef>(schedule)
          .Case<GemmScheduleAttr, ConvScheduleAttr, ReduceScheduleAttr,
                ElementwiseScheduleAttr, AttentionScheduleAttr,
                CpuGemmScheduleAttr>([](auto s) { return s.getMnemonic(); })
          .Default([](Attribute) { return StringRef(); });
  if (mnemonic != expected)
    return emitError() << "kernel '" << kernel.getName() << "' has the "
                       << target << " schedule " << schedule << ", not a #kiln."
                       << expected << " schedule";
  if (auto gemm = llvm::dyn_cast<GemmScheduleAttr>(schedule)) {
    auto matmuls = kernel.getBlock().getOps<MatmulOp>();
    if (matmuls.empty())
      return emitError() << "a matmul kernel holds exactly one kiln.matmul";
    Type element = llvm::cast<RankedTensorType>((*matmuls.begin()).getType())
                       .getElementType();
    return verifyGemmSchedule(gemm, element.isF64() ? 8 : 4, emitError);
  }
  if (auto reduce = llvm::dyn_cast<ReduceScheduleAttr>(schedule))
    return verifyReduce(kernel, reduce, emitError);
  if (auto convSchedule = llvm::dyn_cast<ConvScheduleAttr>(schedule))
    return verifyConv(conv, convSchedule, emitError);
  if (auto attention = llvm::dyn_cast<AttentionScheduleAttr>(schedule);
      attention && cuda) {
    int64_t bytes =
        attentionSharedBytes(attentionOf(kernel), attention.getTile());
    if (bytes > kAttentionSharedBudget)
      return emitError() << "the schedule " << schedule
                         << " does not fit this attention kernel: its tiles "
                            "take "
                         << bytes << " bytes of shared memory, more than "
                         << kAttentionSharedBudget;
  }
  return success();
}

SmallVector<Attribute> kiln::scheduleSpace(KernelOp kernel, StringRef target) {
  MLIRContext *context = kernel.getContext();
  SmallVector<Attribute> space;
  // Candidates outside the valid space report through the context: the
  // enumeration keeps the others and drops the diagnostics.
  ScopedDiagnosticHandler quiet(context,
                                [](Diagnostic &) { return success(); });
  auto report = [&] { return emitError(kernel.getLoc()); };
  auto keep = [&](Attribute candidate) {
    if (candidate &&
        succeeded(verifyScheduleFor(kernel, target, candidate, report)))
      space.push_back(candidate);
  };
  const int64_t powers[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
  auto upTo = [&](int64_t low, int64_t high) {
    SmallVector<int64_t> values;
    for (int64_t p : powers)
      if (p >= low && p <= high)
        values.push_back(p);
    return values;
  };
  bool cuda = target == kCudaTarget;
  switch (kernel.getKind()) {
  case KernelKind::elementwise:
  case KernelKind::horizontal:
    if (cuda)
      for (int64_t block : upTo(32, 1024))
        keep(ElementwiseScheduleAttr::getChecked(report, context, block));
    break;
  case KernelKind::reduction:
    if (!cuda)
      break;
    keep(ReduceScheduleAttr::getChecked(report, context,
                                        ReductionScheme::single, 1, 1));
    for (ReductionScheme scheme :
         {ReductionScheme::warp_rows, ReductionScheme::block_rows})
      for (int64_t x : upTo(32, 1024))
        keep(ReduceScheduleAttr::getChecked(report, context, scheme, x, 1));
    for (int64_t x : upTo(1, 32))
      for (int64_t y : upTo(1, 1024 / x))
        keep(ReduceScheduleAttr::getChecked(report, context,
                                            ReductionScheme::columns, x, y));
    break;
  case KernelKind::matmul:
    if (!cuda) {
      for (int64_t mr = 1; mr <= 16; ++mr)
        for (int64_t nr : {16, 32, 48, 64})
          keep(CpuGemmScheduleAttr::getChecked(report, context, mr, nr));
      break;
    }
    for (int64_t bm : upTo(16, 128))
      for (int64_t bn : upTo(16, 128))
        for (int64_t bk : {8, 16})
          for (int64_t tm : upTo(1, 8))
            for (int64_t tn : upTo(1, 8))
              for (int64_t split : upTo(1, 16))
                keep(GemmScheduleAttr::getChecked(report, context, bm, bn, bk,
                                                  tm, tn, split));
    break;
  case KernelKind::opaque: {
    Operation *conv = nullptr;
    for (Operation &op : kernel.getBlock().without_terminator())
      if (llvm::isa<Conv2dOp, Conv2dGradInputOp, Conv2dGradWeightOp>(op))
        conv = &op;
    if (!conv && attentionOf(kernel)) {
      for (int64_t tile : {16, 32, 64})
        keep(AttentionScheduleAttr::getChecked(report, context, tile));
      break;
    }
    if (!conv) {
      if (cuda)
        for (int64_t block : upTo(32, 1024))
          keep(ElementwiseScheduleAttr::getChecked(report, context, block));
      break;
    }
    if (!cuda) {
      for (int64_t mr = 1; mr <= 16; ++mr)
        for (int64_t nr : {16, 32, 48, 64})
          keep(CpuGemmScheduleAttr::getChecked(report, context, mr, nr));
      break;
    }
    // A forward or input gradient whose GK is shorter than 16 takes it as
    // its k step.
    SmallVector<int64_t> steps = {8, 16};
    auto weight = llvm::cast<RankedTensorType>(conv->getOperand(1).getType());
    if (!llvm::isa<Conv2dGradWeightOp>(conv)) {
      // GK: C * KH * KW (forward) or O * KH * KW (input gradient), from the
      // weight [O, C, KH, KW].
      unsigned channels = llvm::isa<Conv2dOp>(conv) ? 1 : 0;
      int64_t gk = staticProduct(weight, {channels, 2, 3});
      if (gk > 0 && gk < 16 && gk != 8)
        steps.push_back(gk);
    }
    auto current =
        llvm::dyn_cast_or_null<ConvScheduleAttr>(getSchedule(kernel, target));
    int64_t indexBits = current ? current.getIndexBits() : 64;
    for (int64_t bm : upTo(16, 128))
      for (int64_t bn : upTo(16, 64))
        for (int64_t bk : steps)
          for (int64_t tm : upTo(1, 8))
            for (int64_t tn : upTo(1, 8))
              for (int64_t split : upTo(1, 128))
                keep(ConvScheduleAttr::getChecked(report, context, bm, bn, bk,
                                                  tm, tn, split, indexBits));
    break;
  }
  case KernelKind::collective:
    break;
  }
  return space;
}

//===----------------------------------------------------------------------===//
// Parsing and printing
//===----------------------------------------------------------------------===//

OptionalParseResult kiln::parseScheduleAttribute(AsmParser &parser,
                                                 StringRef mnemonic, Type type,
                                                 Attribute &value) {
  auto parseAs = [&](auto tag) -> OptionalParseResult {
    value = decltype(tag)::parse(parser, type);
    return success(!!value);
  };
  if (mnemonic == GemmScheduleAttr::getMnemonic())
    return parseAs(GemmScheduleAttr());
  if (mnemonic == ConvScheduleAttr::getMnemonic())
    return parseAs(ConvScheduleAttr());
  if (mnemonic == ReduceScheduleAttr::getMnemonic())
    return parseAs(ReduceScheduleAttr());
  if (mnemonic == ElementwiseScheduleAttr::getMnemonic())
    return parseAs(ElementwiseScheduleAttr());
  if (mnemonic == AttentionScheduleAttr::getMnemonic())
    return parseAs(AttentionScheduleAttr());
  if (mnemonic == CpuGemmScheduleAttr::getMnemonic())
    return parseAs(CpuGemmScheduleAttr());
  return std::nullopt;
}

LogicalResult kiln::printScheduleAttribute(Attribute attr,
                                           AsmPrinter &printer) {
  return generatedAttributePrinter(attr, printer);
}
