//===- Horizontal.cpp - independent elementwise kernels in one launch -----===//
//
// A horizontal kernel's segments are elementwise kernels over shapes of
// their own (static: planned programs know every parameter's size). One
// function computes them all:
//
//   - on the GPU, one grid-stride loop over the flat index t of all the
//     segments laid end to end; a thread finds its segment by comparing t
//     with the static segment ends, and evaluates that segment's iteration
//     at i = t - (the segment's start), exactly as the elementwise
//     generator writes it (emitElementwiseIteration). A warp diverges only
//     where it straddles two segments.
//   - on the CPU, one plain loop per segment, one after the other.
//
// i is the segment's own flat index, so dropout draws its tensor's mask.
// Each segment reads the kernel's pointers of its region's arguments and
// writes the results it yields.
//
//===----------------------------------------------------------------------===//

#include "codegen/CodegenUtils.h"
#include "codegen/Template.h"

#include "mlir/IR/BuiltinTypes.h"

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

namespace {

/// One segment and the C of one iteration of it.
struct Segment {
  KernelOp kernel;
  int64_t elements = 0;
  std::string iteration;
};

/// The segments laid end to end, one grid-stride loop; ${SEGMENTS} are
/// kSegmentCuda's, chained by `else`.
constexpr const char *kHorizontalCuda = R"(
${SIGNATURE} {
  // The segments laid end to end: t = segment start + i.
  const long long n = ${TOTAL}LL;
  for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < n;
       t += (long long)gridDim.x * blockDim.x) {
    ${SEGMENTS}
    }
  }
}
)";
constexpr const char *kSegmentCuda = R"(
${ELSE}if (t < ${END}LL) { // segment ${K}: ${NAME}
  const long long i = t - ${START}LL;
  ${ITERATION}
)";

/// The segments one after the other; ${SEGMENTS} are kSegmentCpp's.
constexpr const char *kHorizontalCpp = R"(
${SIGNATURE} {
  ${SEGMENTS}
}
${ENTRY}
)";
constexpr const char *kSegmentCpp = R"(
// segment ${K}: ${NAME}
kiln_parallel_for((${ELEMENTS}LL + KILN_ELEMENTS_PER_TASK - 1) / KILN_ELEMENTS_PER_TASK, [&](long long begin, long long end) {
  const long long last = end * KILN_ELEMENTS_PER_TASK < ${ELEMENTS}LL ? end * KILN_ELEMENTS_PER_TASK : ${ELEMENTS}LL;
  for (long long i = begin * KILN_ELEMENTS_PER_TASK; i < last; ++i) {
    ${ITERATION}
  }
});
)";

} // namespace

FailureOr<GeneratedKernel>
kiln::codegen::generateHorizontal(KernelOp kernel, llvm::StringRef symbol,
                                  Target target) {
  GeneratedKernel generated;
  if (failed(initGenerated(kernel, symbol, generated)))
    return failure();
  Block &block = kernel.getBlock();
  Operation *yield = block.getTerminator();

  SmallVector<Segment> segments;
  unsigned next = 0;
  for (Operation &op : block.without_terminator()) {
    auto segment = llvm::dyn_cast<KernelOp>(op);
    if (!segment || segment.getKind() != KernelKind::elementwise)
      return op.emitError("a horizontal kernel holds only elementwise kernels");
    auto type = llvm::cast<RankedTensorType>(segment.getResult(0).getType());
    if (!type.hasStaticShape())
      return segment.emitError("a segment of a horizontal kernel needs a "
                               "static shape in code generation, got ")
             << type;
    // The kernel's pointers the segment reads and writes.
    SmallVector<std::string> inputs;
    for (Value input : segment.getInputs()) {
      auto arg = llvm::dyn_cast<BlockArgument>(input);
      if (!arg || arg.getOwner() != &block)
        return segment.emitError("a segment reads a value that is not an "
                                 "input of its horizontal kernel");
      inputs.push_back("in" + std::to_string(arg.getArgNumber()));
    }
    SmallVector<SmallVector<std::string, 1>> outputs(segment.getNumResults());
    for (OpOperand &use : yield->getOpOperands())
      if (use.get().getDefiningOp() == segment)
        outputs[llvm::cast<OpResult>(use.get()).getResultNumber()].push_back(
            "out" + std::to_string(use.getOperandNumber()));
    SmallVector<std::string> sizes;
    for (int64_t size : type.getShape())
      sizes.push_back(std::to_string(size) + "LL");

    Code iteration;
    if (failed(emitElementwiseIteration(iteration.os, segment, sizes, inputs,
                                        outputs, next, target)))
      return failure();
    segments.push_back({segment, type.getNumElements(), iteration.str()});
  }
  if (segments.empty())
    return kernel.emitError("a horizontal kernel without segments");

  Code body;
  int64_t start = 0;
  for (auto [k, s] : llvm::enumerate(segments)) {
    print(body.os, target == Target::cuda ? kSegmentCuda : kSegmentCpp,
          {{"ELSE", k ? "} else " : ""},
           {"K", std::to_string(k)},
           {"NAME", s.kernel.getName().str()},
           {"START", std::to_string(start)},
           {"END", std::to_string(start + s.elements)},
           {"ELEMENTS", std::to_string(s.elements)},
           {"ITERATION", s.iteration}});
    start += s.elements;
  }
  int64_t total = start;
  Code text;
  writeKernelComment(text.os, kernel);
  print(text.os, target == Target::cuda ? kHorizontalCuda : kHorizontalCpp,
        {{"SIGNATURE", signature(kernel, generated, target)},
         {"TOTAL", std::to_string(total)},
         {"SEGMENTS", body.str()},
         {"ENTRY", target == Target::cpp ? cppEntry(kernel, generated) : ""}});
  generated.source = text.str();

  // One thread per element of all the segments, the schedule's block of
  // them a block.
  if (failed(setElementwiseBlock(kernel, target, generated)))
    return failure();
  GridExtent &grid = generated.launch.grid[0];
  grid.perBlock = generated.launch.block[0];
  grid.constant = total;
  return generated;
}
