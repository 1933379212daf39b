//===- Schedule.cpp - choose how every kernel is computed -----------------===//
//
// kiln-schedule gives every top-level kernel of a function its schedule per
// target (`kiln.schedule`, ir/Schedules.h). For each kernel it:
//
//   1. finds the sizes the cost models see: static sizes, and for a dynamic
//      size of a step with a run-time batch (`kiln.max_batch`) its value at
//      that largest batch, which bounds it (ir/BatchSizes.h);
//   2. describes the kernel as its kind's problem (passes/CostModel.h):
//      a matmul's M, N, K, layout and epilogue streams; a convolution's
//      implicit GEMM; a reduction's reduced dimensions;
//   3. records the model's choice per target: CUDA for every kernel (GEMM
//      tiles, convolution tiles and index width, reduction scheme,
//      attention tile, the block of elementwise kernels and of the other
//      opaque kernels' element loops); the CPU where its C++ has one (the
//      register block of GEMMs and convolutions, #kiln.cpu_gemm; the
//      attention tile, which both targets sum alike);
//   4. with `candidates=N`, lists up to N other schedules of the kernel's
//      space per target (`kiln.candidates`) for a trainer's --tune to time:
//      for GEMMs and convolutions the tilings the GEMM model estimates
//      fastest, a spread of block tiles and splits first; for reductions,
//      elementwise kernels (at most 2) and the C++ GEMM the schedules
//      nearest the chosen one.
//
// Kernels that already have a schedule for a target keep it, and a
// schedules file (`schedules=FILE`) gives schedules before the models: each
// line names a kernel by its key (ir/Schedules.h), and is checked against
// every kernel of that key (verifyScheduleFor).
//
//===----------------------------------------------------------------------===//

#include "passes/Schedule.h"
#include "ir/AttrNames.h"
#include "ir/BatchSizes.h"
#include "ir/Schedules.h"
#include "passes/CostModel.h"
#include "passes/Passes.h"

#include "mlir/AsmParser/AsmParser.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Debug.h"
#include "llvm/Support/MemoryBuffer.h"

#include <array>
#include <cmath>
#include <optional>
#include <set>

#define DEBUG_TYPE "kiln-schedule"

namespace kiln {
#define GEN_PASS_DEF_KILNSCHEDULE
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// What the pass knows of the sizes of a function's values.
struct Sizes {
  const BatchSizes *batch = nullptr;
  int64_t maxBatch = 0;

  /// Dimension `dim` of `value`: its static size, -1 when dynamic.
  static int64_t fixed(Value value, unsigned dim) {
    auto type = llvm::cast<RankedTensorType>(value.getType());
    return type.isDynamicDim(dim) ? -1 : type.getDimSize(dim);
  }
  /// Dimension `dim` of `value`: its static size, else its size at the
  /// largest batch, else -1.
  int64_t bound(Value value, unsigned dim) const {
    int64_t size = fixed(value, dim);
    if (size >= 0 || !batch)
      return size;
    return batch->typeAt(value, maxBatch).getDimSize(dim);
  }
};

/// The product of `sizes`, -1 if one is.
int64_t productOf(std::initializer_list<int64_t> sizes) {
  int64_t product = 1;
  for (int64_t size : sizes)
    product = product < 0 || size < 0 ? -1 : product * size;
  return product;
}

/// The matmul kernel's product as the GEMM model sees it.
FailureOr<cost::GemmProblem> gemmProblem(KernelOp kernel, const Sizes &sizes) {
  SmallVector<MatmulOp> matmuls(kernel.getBlock().getOps<MatmulOp>());
  if (matmuls.size() != 1)
    return kernel.emitError("a matmul kernel holds exactly one kiln.matmul, "
                            "not ")
           << matmuls.size();
  MatmulOp matmul = matmuls.front();
  auto outType = llvm::cast<RankedTensorType>(matmul.getType());
  if (outType.getRank() < 2)
    return matmul.emitError("a matmul kernel needs a product of rank 2 or "
                            "more");
  unsigned rank = outType.getRank(), batchRank = rank - 2;
  bool tl = matmul.getTransposeLhs();
  auto lhsType = llvm::cast<RankedTensorType>(matmul.getLhs().getType());
  unsigned lhsK = lhsType.getRank() - (tl ? 2 : 1);
  Value out = matmul.getResult();

  cost::GemmProblem p;
  p.m = Sizes::fixed(out, rank - 2);
  p.n = Sizes::fixed(out, rank - 1);
  p.k = Sizes::fixed(matmul.getLhs(), lhsK);
  p.batches = 1;
  p.guessBatches = 1;
  for (unsigned d = 0; d < batchRank; ++d) {
    p.batches = productOf({p.batches, Sizes::fixed(out, d)});
    p.guessBatches = productOf({p.guessBatches, sizes.bound(out, d)});
  }
  p.guessM = sizes.bound(out, rank - 2);
  p.guessN = sizes.bound(out, rank - 1);
  p.guessK = sizes.bound(matmul.getLhs(), lhsK);
  p.elementBytes = outType.getElementType().isF64() ? 8 : 4;
  p.transposeLhs = tl;
  p.transposeRhs = matmul.getTransposeRhs();
  // The epilogue's streams: each result, and each input it reads.
  p.outputStreams = kernel.getNumResults();
  for (BlockArgument arg : kernel.getBlock().getArguments())
    if (llvm::any_of(arg.getUsers(), [&](Operation *user) {
          return user != matmul.getOperation();
        }))
      ++p.outputStreams;
  return p;
}

/// The GEMM of a convolution op on the CPU (codegen/Opaque.cpp), per image:
/// its columns are conv2d's output channels, its input gradient's input
/// channels (at stride 1; else its input positions), or its weight
/// gradient's output channels.
cost::GemmProblem cpuConvProblem(Operation *op) {
  auto type = llvm::cast<RankedTensorType>(op->getResult(0).getType());
  unsigned first = 2, last = 4; // the result's dimensions [first, last)
  if (llvm::isa<Conv2dGradWeightOp>(op))
    first = 0, last = 1;
  auto gradInput = llvm::dyn_cast<Conv2dGradInputOp>(op);
  if (llvm::isa<Conv2dOp>(op) ||
      (gradInput &&
       llvm::all_of(gradInput.getStride(), [](int64_t s) { return s == 1; })))
    first = 1, last = 2;
  cost::GemmProblem p;
  p.n = 1;
  for (unsigned d = first; d < last; ++d)
    p.n = type.isDynamicDim(d) ? -1 : p.n * type.getDimSize(d);
  if (p.n < 0)
    p.n = -1;
  return p;
}

/// A convolution op's implicit GEMM, or nullopt for another op.
std::optional<cost::ConvProblem> convProblem(Operation *op,
                                             const Sizes &sizes) {
  // The sizes of the three tensors: the input [N, C, H, W], the weight
  // [O, C, KH, KW] and the output [N, O, OH, OW].
  Value input, weight, output;
  enum class Which { forward, gradInput, gradWeight } which;
  if (auto conv = llvm::dyn_cast<Conv2dOp>(op)) {
    input = conv.getInput(), weight = conv.getWeight();
    output = conv.getResult(), which = Which::forward;
  } else if (auto grad = llvm::dyn_cast<Conv2dGradInputOp>(op)) {
    input = grad.getResult(), weight = grad.getWeight();
    output = grad.getGrad(), which = Which::gradInput;
  } else if (auto grad = llvm::dyn_cast<Conv2dGradWeightOp>(op)) {
    input = grad.getInput(), weight = grad.getResult();
    output = grad.getGrad(), which = Which::gradWeight;
  } else {
    return std::nullopt;
  }
  auto fixed = [](Value v, unsigned d) { return Sizes::fixed(v, d); };
  auto bound = [&](Value v, unsigned d) { return sizes.bound(v, d); };
  auto elements = [&](Value v) {
    return productOf({bound(v, 0), bound(v, 1), bound(v, 2), bound(v, 3)});
  };
  cost::ConvProblem p;
  switch (which) {
  case Which::forward: // rows (n, oh, ow), columns o, k (c, kh, kw)
    p.m = productOf({fixed(input, 0), fixed(output, 2), fixed(output, 3)});
    p.n = fixed(weight, 0);
    p.k = productOf({bound(input, 1), bound(weight, 2), bound(weight, 3)});
    break;
  case Which::gradInput: // rows (n, ih, iw), columns c, k (o, kh, kw)
    p.m = productOf({fixed(input, 0), fixed(input, 2), fixed(input, 3)});
    p.n = fixed(input, 1);
    p.k = productOf({bound(weight, 0), bound(weight, 2), bound(weight, 3)});
    break;
  case Which::gradWeight: // rows o, columns (c, kh, kw), k (n, oh, ow)
    p.m = fixed(weight, 0);
    p.n = productOf({fixed(input, 1), fixed(weight, 2), fixed(weight, 3)});
    p.k = productOf({fixed(input, 0), fixed(output, 2), fixed(output, 3)});
    p.weightGradient = true;
    break;
  }
  int64_t largest = 0;
  for (Value v : {input, output, weight})
    largest =
        elements(v) < 0 || largest < 0 ? -1 : std::max(largest, elements(v));
  p.largestTensor = largest;
  return p;
}

/// The reduction kernel's input as the scheme choice sees it. Its sizes are
/// the static ones (a dynamic size counts as unknown, whatever its bound).
FailureOr<cost::ReductionProblem> reductionProblem(KernelOp kernel) {
  for (Operation &op : kernel.getBlock().without_terminator()) {
    FailureOr<SmallVector<bool>> reduced = reducedDims(&op);
    if (failed(reduced))
      continue;
    cost::ReductionProblem p;
    if (llvm::isa<CountOp>(op))
      p.kind = cost::ReductionProblem::Kind::count;
    else if (llvm::isa<CrossEntropyOp>(op))
      p.kind = cost::ReductionProblem::Kind::crossEntropy;
    p.reduced = std::move(*reduced);
    for (unsigned d = 0; d < p.reduced.size(); ++d)
      p.sizes.push_back(Sizes::fixed(op.getOperand(0), d));
    return p;
  }
  return kernel.emitError("reduction kernel '")
         << kernel.getName() << "' has no reduction op";
}

/// Sets `kernel`'s schedule for `target` unless it has one.
void propose(KernelOp kernel, StringRef target, Attribute schedule) {
  if (!getSchedule(kernel, target))
    setSchedule(kernel, target, schedule);
}

LogicalResult schedule(KernelOp kernel, const Sizes &sizes) {
  MLIRContext *context = kernel.getContext();
  switch (kernel.getKind()) {
  case KernelKind::elementwise:
  case KernelKind::horizontal:
    propose(kernel, kCudaTarget,
            ElementwiseScheduleAttr::get(context, cost::kElementwiseBlock));
    return success();
  case KernelKind::reduction: {
    FailureOr<cost::ReductionProblem> p = reductionProblem(kernel);
    if (failed(p))
      return failure();
    propose(kernel, kCudaTarget, cost::chooseReduceSchedule(context, *p));
    return success();
  }
  case KernelKind::matmul: {
    FailureOr<cost::GemmProblem> p = gemmProblem(kernel, sizes);
    if (failed(p))
      return failure();
    if (!getSchedule(kernel, kCudaTarget)) {
      cost::GemmTiles tiles = cost::chooseGemmTiles(*p);
      LLVM_DEBUG(llvm::dbgs()
                 << "kernel " << kernel.getName() << ": M " << p->m << " ("
                 << p->guessM << "), N " << p->n << " (" << p->guessN << "), K "
                 << p->k << " (" << p->guessK << "): " << tiles.blocks
                 << " blocks, " << tiles.perSM << " per SM, ~"
                 << int64_t(tiles.cycles) << " cycles\n");
      setSchedule(kernel, kCudaTarget, cost::toSchedule(context, tiles));
    }
    propose(kernel, kCpuTarget, cost::chooseCpuGemmSchedule(context, *p));
    return success();
  }
  case KernelKind::collective:
    return success(); // no code: the runtime's communicator runs it
  case KernelKind::opaque:
    for (Operation &op : kernel.getBlock().without_terminator()) {
      std::optional<cost::ConvProblem> p = convProblem(&op, sizes);
      if (!p)
        continue;
      ConvScheduleAttr conv = cost::chooseConvSchedule(context, *p);
      propose(kernel, kCudaTarget, conv);
      propose(kernel, kCpuTarget,
              cost::chooseCpuGemmSchedule(context, cpuConvProblem(&op)));
      return success();
    }
    if (Operation *attention = attentionOf(kernel)) {
      // Both targets step over the other side alike (same sums).
      auto rows = [&](unsigned operand) {
        auto type = llvm::cast<RankedTensorType>(
            attention->getOperand(operand).getType());
        return type.getDimSize(type.getRank() - 2);
      };
      int64_t tile =
          cost::chooseAttentionTile(rows(0), rows(1), [&](int64_t t) {
            return attentionSharedBytes(attention, t);
          });
      propose(kernel, kCudaTarget, AttentionScheduleAttr::get(context, tile));
      propose(kernel, kCpuTarget, AttentionScheduleAttr::get(context, tile));
      return success();
    }
    {
      // Element loops; an embedding gradient's block spans a table row.
      int64_t block = cost::kElementwiseBlock;
      for (auto grad : kernel.getBlock().getOps<EmbeddingGradOp>()) {
        auto type = llvm::cast<RankedTensorType>(grad.getResult().getType());
        block = cost::embeddingGradBlock(type.getDimSize(1));
      }
      propose(kernel, kCudaTarget,
              ElementwiseScheduleAttr::get(context, block));
    }
    return success();
  }
  return kernel.emitError("unknown kernel kind");
}

/// log2 of how far apart `a` and `b` (both positive) are.
double logDistance(int64_t a, int64_t b) {
  return std::abs(std::log2(double(a)) - std::log2(double(b)));
}

/// How far `schedule` is from `chosen` (attributes of one kind): the log2
/// distances of their sizes, and a large step for another reduction scheme.
double distance(Attribute schedule, Attribute chosen) {
  if (auto a = llvm::dyn_cast<ReduceScheduleAttr>(schedule)) {
    auto b = llvm::cast<ReduceScheduleAttr>(chosen);
    return (a.getScheme() != b.getScheme() ? 100 : 0) +
           logDistance(a.getBlockX(), b.getBlockX()) +
           logDistance(a.getBlockY(), b.getBlockY());
  }
  if (auto a = llvm::dyn_cast<ElementwiseScheduleAttr>(schedule))
    return logDistance(a.getBlock(),
                       llvm::cast<ElementwiseScheduleAttr>(chosen).getBlock());
  if (auto a = llvm::dyn_cast<AttentionScheduleAttr>(schedule))
    return logDistance(a.getTile(),
                       llvm::cast<AttentionScheduleAttr>(chosen).getTile());
  if (auto a = llvm::dyn_cast<CpuGemmScheduleAttr>(schedule)) {
    auto b = llvm::cast<CpuGemmScheduleAttr>(chosen);
    return logDistance(a.getMr(), b.getMr()) +
           logDistance(a.getNr(), b.getNr());
  }
  return 0;
}

/// The GEMM model's problem for a convolution kernel's implicit GEMM.
std::optional<cost::GemmProblem> convGemmProblem(KernelOp kernel,
                                                 const Sizes &sizes) {
  for (Operation &op : kernel.getBlock().without_terminator())
    if (std::optional<cost::ConvProblem> conv = convProblem(&op, sizes)) {
      cost::GemmProblem p;
      p.m = conv->m, p.n = conv->n, p.k = conv->k;
      p.guessM = conv->m, p.guessN = conv->n, p.guessK = conv->k;
      return p;
    }
  return std::nullopt;
}

/// Up to `limit` schedules of `kernel`'s space for `target` other than its
/// own, the likeliest first (see the pass description).
FailureOr<SmallVector<Attribute>> candidatesFor(KernelOp kernel,
                                                StringRef target,
                                                unsigned limit,
                                                const Sizes &sizes) {
  Attribute chosen = getSchedule(kernel, target);
  SmallVector<Attribute> space = scheduleSpace(kernel, target);
  llvm::erase(space, chosen);
  // An elementwise kernel's block size matters little: its neighbours.
  if (llvm::isa_and_nonnull<ElementwiseScheduleAttr>(chosen))
    limit = std::min(limit, 2u);
  if (!chosen || space.empty() || limit == 0)
    return SmallVector<Attribute>();
  // Each schedule's score: the GEMM model's cycles, or the distance.
  std::optional<cost::GemmProblem> gemm;
  if (kernel.getKind() == KernelKind::matmul &&
      llvm::isa<GemmScheduleAttr>(chosen)) {
    FailureOr<cost::GemmProblem> p = gemmProblem(kernel, sizes);
    if (failed(p))
      return failure();
    gemm = *p;
  } else if (llvm::isa<ConvScheduleAttr>(chosen)) {
    gemm = convGemmProblem(kernel, sizes);
  }
  SmallVector<std::pair<double, Attribute>> scored;
  for (Attribute schedule : space) {
    double score = distance(schedule, chosen);
    if (auto t = llvm::dyn_cast<GemmScheduleAttr>(schedule); t && gemm)
      score = cost::estimateTiles(t.getBm(), t.getBn(), t.getBk(), t.getTm(),
                                  t.getTn(), t.getSplitK(), *gemm)
                  .cycles;
    if (auto t = llvm::dyn_cast<ConvScheduleAttr>(schedule); t && gemm)
      score = cost::estimateTiles(t.getBm(), t.getBn(), t.getBk(), t.getTm(),
                                  t.getTn(), t.getSplitK(), *gemm)
                  .cycles;
    scored.push_back({score, schedule});
  }
  // Ties keep the space's order.
  std::stable_sort(
      scored.begin(), scored.end(),
      [](const auto &a, const auto &b) { return a.first < b.first; });
  // A spread of tilings first: the best of each block tile and split, then
  // the next best of each, and so on.
  auto tileOf = [](Attribute schedule) -> std::array<int64_t, 3> {
    if (auto t = llvm::dyn_cast<GemmScheduleAttr>(schedule))
      return {t.getBm(), t.getBn(), t.getSplitK()};
    if (auto t = llvm::dyn_cast<ConvScheduleAttr>(schedule))
      return {t.getBm(), t.getBn(), t.getSplitK()};
    return {0, 0, 0};
  };
  SmallVector<Attribute> result;
  SmallVector<bool> taken(scored.size(), false);
  while (result.size() < limit && result.size() < scored.size()) {
    std::set<std::array<int64_t, 3>> round;
    for (auto [i, entry] : llvm::enumerate(scored))
      if (!taken[i] && result.size() < limit &&
          round.insert(tileOf(entry.second)).second) {
        taken[i] = true;
        result.push_back(entry.second);
      }
  }
  return result;
}

/// Records `kernel`'s candidates per target it has a schedule for.
LogicalResult listCandidates(KernelOp kernel, unsigned limit,
                             const Sizes &sizes) {
  auto schedules = kernel->getAttrOfType<DictionaryAttr>(attrs::schedule);
  if (!schedules || kernel.getKind() == KernelKind::horizontal)
    return success();
  SmallVector<NamedAttribute> entries;
  for (NamedAttribute entry : schedules) {
    FailureOr<SmallVector<Attribute>> found =
        candidatesFor(kernel, entry.getName().getValue(), limit, sizes);
    if (failed(found))
      return failure();
    if (!found->empty())
      entries.push_back(
          {entry.getName(), ArrayAttr::get(kernel.getContext(), *found)});
  }
  if (entries.empty())
    kernel->removeAttr(attrs::candidates);
  else
    kernel->setAttr(attrs::candidates,
                    DictionaryAttr::get(kernel.getContext(), entries));
  return success();
}

/// One line of a schedules file: a kernel's key, a target and a schedule.
struct FileSchedule {
  std::string key, target;
  Attribute schedule;
  /// Where its key and its schedule start in the file.
  Location keyLoc, scheduleLoc;
  /// Whether it names a kernel, and whether it fits (checked once: every
  /// kernel of a key computes the same).
  bool used = false, fits = false;
};

/// Reads the schedules file `path` (see the pass description). Fails, with
/// errors at its lines, on a malformed line or an invalid schedule.
FailureOr<std::vector<FileSchedule>> readSchedules(MLIRContext *context,
                                                   StringRef path) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  Location fileLoc = FileLineColLoc::get(context, path, 0, 0);
  if (!buffer)
    return emitError(fileLoc, "cannot read the schedules file '")
           << path << "': " << buffer.getError().message();
  auto at = [&](unsigned line, size_t column) -> Location {
    return FileLineColLoc::get(context, path, line, column + 1);
  };
  std::vector<FileSchedule> schedules;
  bool ok = true;
  SmallVector<StringRef> lines;
  (*buffer)->getBuffer().split(lines, '\n');
  for (auto [n, text] : llvm::enumerate(lines)) {
    unsigned lineNo = n + 1;
    StringRef line = text.rtrim();
    StringRef body = line.ltrim();
    if (body.empty() || body.starts_with("#"))
      continue;
    // KEY TARGET = SCHEDULE
    size_t keyStart = line.size() - body.size();
    auto [key, rest] = body.split(' ');
    StringRef afterKey = rest.ltrim();
    auto [target, afterTarget] = afterKey.split(' ');
    StringRef eq = afterTarget.ltrim();
    if (key.empty() || target.empty() || !eq.consume_front("=")) {
      emitError(at(lineNo, keyStart),
                "expected 'KERNEL@HASH TARGET = #kiln.SCHEDULE<...>'");
      ok = false;
      continue;
    }
    StringRef attrText = eq.ltrim();
    size_t attrStart = line.size() - attrText.size();
    FileSchedule entry{key.str(), target.str(), Attribute(),
                       at(lineNo, keyStart), at(lineNo, attrStart)};
    if (target != kCudaTarget && target != kCpuTarget) {
      emitError(at(lineNo, line.size() - afterKey.size()), "unknown target '")
          << target << "' (the targets are cuda and cpu)";
      ok = false;
      continue;
    }
    // The attribute's own errors, moved to where it stands in the file.
    std::string message;
    unsigned column = 0;
    {
      ScopedDiagnosticHandler handler(context, [&](Diagnostic &d) {
        if (message.empty()) {
          message = d.str();
          if (auto loc = llvm::dyn_cast<FileLineColLoc>(d.getLocation()))
            column = loc.getColumn();
        }
        return success();
      });
      size_t read = 0;
      entry.schedule = parseAttribute(attrText, context, Type(), &read);
      if (entry.schedule && read != attrText.size() && message.empty())
        message = "unexpected text after the schedule";
    }
    if (!message.empty() || !entry.schedule) {
      emitError(at(lineNo, attrStart + (column ? column - 1 : 0)),
                message.empty() ? "invalid schedule" : message);
      ok = false;
      continue;
    }
    schedules.push_back(std::move(entry));
  }
  if (!ok)
    return failure();
  return schedules;
}

struct KilnSchedulePass
    : public kiln::impl::KilnScheduleBase<KilnSchedulePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::vector<FileSchedule> given;
    if (!schedules.empty()) {
      FailureOr<std::vector<FileSchedule>> read =
          readSchedules(&getContext(), schedules);
      if (failed(read))
        return signalPassFailure();
      given = std::move(*read);
    }
    // The file's schedules first: each on every kernel of its key.
    llvm::StringMap<SmallVector<FileSchedule *>> byKey;
    for (FileSchedule &entry : given)
      byKey[entry.key].push_back(&entry);
    bool ok = true;
    if (!byKey.empty())
      module.walk([&](func::FuncOp func) {
        for (KernelOp kernel : func.getOps<KernelOp>()) {
          auto it = byKey.find(scheduleKey(kernel));
          if (it == byKey.end())
            continue;
          for (FileSchedule *entry : it->second) {
            if (!entry->used) {
              entry->used = true;
              entry->fits = succeeded(verifyScheduleFor(
                  kernel, entry->target, entry->schedule, [&] {
                    InFlightDiagnostic d = emitError(entry->scheduleLoc);
                    d.attachNote(kernel.getLoc()) << "the kernel";
                    return d;
                  }));
              ok &= entry->fits;
            }
            if (entry->fits)
              setSchedule(kernel, entry->target, entry->schedule);
          }
        }
      });
    for (FileSchedule &entry : given)
      if (!entry.used && !partialModule) {
        emitError(entry.keyLoc, "no kernel '")
            << entry.key << "' in the compiled steps";
        ok = false;
      }
    if (!ok)
      return signalPassFailure();
    // Then the cost models, for every kernel (the segments of a horizontal
    // kernel included: each can be rendered alone).
    for (func::FuncOp func : module.getOps<func::FuncOp>()) {
      if (func.isExternal())
        continue;
      // A step with a run-time batch: its sizes at the largest batch.
      std::optional<BatchSizes> batch;
      Sizes sizes;
      if (auto maxBatch = func->getAttrOfType<IntegerAttr>(attrs::maxBatch)) {
        FailureOr<BatchSizes> analyzed =
            BatchSizes::analyze(func, maxBatch.getInt());
        if (failed(analyzed))
          return signalPassFailure();
        batch = std::move(*analyzed);
        sizes = {&*batch, maxBatch.getInt()};
      }
      WalkResult result = func.walk([&](KernelOp kernel) {
        return failed(schedule(kernel, sizes)) ? WalkResult::interrupt()
                                               : WalkResult::advance();
      });
      if (result.wasInterrupted())
        return signalPassFailure();
      // The other schedules a tuner times, of the kernels a step launches.
      if (candidates)
        for (KernelOp kernel : func.getOps<KernelOp>())
          if (failed(listCandidates(kernel, candidates, sizes)))
            return signalPassFailure();
    }
  }
};

} // namespace

void kiln::printSchedules(ModuleOp module, raw_ostream &os) {
  os << "# kiln schedules: KERNEL@HASH TARGET = SCHEDULE (kiln compile "
        "--schedules FILE)\n";
  llvm::StringSet<> seen;
  module.walk([&](func::FuncOp func) {
    for (KernelOp kernel : func.getOps<KernelOp>()) {
      std::string key = scheduleKey(kernel);
      if (!seen.insert(key).second)
        continue;
      auto schedules = kernel->getAttrOfType<DictionaryAttr>(attrs::schedule);
      if (!schedules)
        continue;
      for (NamedAttribute entry : schedules)
        os << key << " " << entry.getName().getValue() << " = "
           << entry.getValue() << "\n";
    }
  });
}

void kiln::collectScheduleKeys(ModuleOp module, llvm::StringSet<> &keys) {
  module.walk([&](func::FuncOp func) {
    for (KernelOp kernel : func.getOps<KernelOp>())
      keys.insert(scheduleKey(kernel));
  });
}

LogicalResult kiln::checkScheduleKeys(MLIRContext *context, StringRef path,
                                      const llvm::StringSet<> &keys) {
  FailureOr<std::vector<FileSchedule>> given = readSchedules(context, path);
  if (failed(given))
    return failure();
  bool ok = true;
  for (FileSchedule &entry : *given)
    if (!keys.contains(entry.key)) {
      emitError(entry.keyLoc, "no kernel '")
          << entry.key << "' in the compiled steps";
      ok = false;
    }
  return success(ok);
}
