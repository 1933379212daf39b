//===- Opaque.cpp - kernels of their own: layout, conv, pool, embedding ---===//
//
// An opaque kernel holds one op that no other scheme fits, and, when the op
// TakesEpilogue (the convolution, the poolings and their gradients), the
// elementwise ops after it, run on each result element where it is stored
// (OpaqueEmitter::store; on the CPU, over an image or a plane computed into
// the thread's scratch: OpaqueEmitter::epilogueRange). Each op gets a
// direct kernel, written so that the CPU and the GPU run the same index
// arithmetic and only the loop around it differs (the convolutions on the
// CPU excepted: GEMMs per image on the register-blocked micro-kernel,
// described at kConvWindowsCpp, kConvWeightsCpp and kConvGemmImagesCpp):
//
//   reshape            a flat copy;
//   transpose          per output element, the input element at the
//                      permuted multi-index (on the CPU, when the last
//                      dimension stays last, per output row: a contiguous
//                      copy from the input row at the permuted index);
//   conv2d             per output element, the sum over channels and taps
//                      of its window;
//   conv2d_grad_input  per input element, the sum over the output positions
//                      whose windows read it (a gather: no atomics);
//   conv2d_grad_weight per weight element, the sum over the batch and the
//                      output positions, in slices (split-K);
//   max/avg_pool2d     per output element, its window;
//   max_pool2d_grad    per input element, the gradients of the windows that
//                      contain it and whose first maximum it is;
//   avg_pool2d_grad    per input element, the gradients of the windows that
//                      contain it, over the window area;
//   embedding          per output element, the table element of its row;
//   embedding_grad     per table element, the sum of the gradient rows whose
//                      index is its row; on the GPU one block per row.
//
// Every sum runs in a fixed order (the GPU's block reduction has a fixed
// shape), so results are deterministic bit for bit, and every result element
// is written, including those no window or index reaches (zero). Sizes are
// named constants at the top of each kernel; dynamic ones are parameters.
// On the GPU, every kernel but the convolutions is a grid-stride loop over
// its elements (the embedding gradient: over a row's) with the block of its
// schedule (#kiln.elementwise).
//
// On the GPU the three convolutions are implicit GEMMs (emitImplicitGemmCuda):
// the im2col matrix is never stored; each A or B tile is gathered straight
// into shared memory by the op's index arithmetic (zero in the padding),
// then each thread keeps a TM x TN block of outputs in registers:
//
//   op                 GM (rows)     GN (columns)   GK (sum)
//   conv2d             N * OH * OW   O              C * KH * KW
//   conv2d_grad_input  N * H * W     C              O * KH * KW
//   conv2d_grad_weight O             C * KH * KW    N * OH * OW
//
// Each output element is one accumulator summed over k in increasing order,
// as the C++ loops do. A weight gradient's K (the batch times the image) is
// long and its output small, so its k is cut into slices summed by separate
// blocks; each stores its partial tile into a __device__ workspace of the
// module, and the last block of a tile to arrive (an integer atomic counter)
// adds the partials in slice order: deterministic, no floating-point
// atomics, and the C++ target sums the same slices in the same order.
// The tiles, split-K and index width are the kernel's schedule (#kiln.conv,
// chosen by kiln-schedule; passes/CostModel.cpp documents the rule).
//
// Expected speed on an H100/H200 for examples/cnn.kiln at batch 256 (fp32
// FMA peak about 30 T/s, DRAM about 3 TB/s; the old direct kernels did one
// output per thread with 64-bit index arithmetic and ~2 global loads per
// FMA, and the weight gradients one block per weight element, each
// re-reading its whole gradient plane):
//
//   conv1 forward (GM 200704, GN 32, GK 9): 1568 blocks of 128 x 32; a
//     few FMAs per output, bound by writing the 25.7 MB output: ~10 us.
//   conv2 forward (GM 50176, GN 64, GK 288): 392 blocks of 128 x 64, 8 x 4
//     outputs a thread, 0.9 G FMAs: ~35-60 us at 50-80% of peak.
//   conv2 input gradient (GM 50176, GN 32, GK 576): 392 blocks of
//     128 x 32, 4 x 4 a thread, 0.9 G FMAs: ~45-70 us (4 x 4 blocking
//     needs 8 shared loads per 16 FMAs, so below the forward's rate).
//   conv2 weight gradient (GM 64, GN 288, GK 50176): 5 tiles of 64 x 64
//     times 52 slices = 260 blocks, 4 x 8 a thread: ~40-60 us, plus the
//     last blocks' sums of 52 partials (0.2 MB each, ~2 us).
//   conv1 weight gradient (GM 32, GN 9, GK 200704): 128 slices of one
//     32 x 16 tile; reading the 25.7 MB gradient once: ~10-15 us.
//
//===----------------------------------------------------------------------===//

#include "codegen/CodegenUtils.h"
#include "codegen/DeviceSources.h"
#include "codegen/Template.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"

#include <algorithm>

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

namespace {

/// One size a kernel uses: a named constant of the generated code.
struct Size {
  std::string name;
  /// The value when static; ShapedType::kDynamic otherwise.
  int64_t value = 0;
  /// For a dynamic size, its index in GeneratedKernel::dynamicDims.
  unsigned dynamicIndex = 0;
  bool isDynamic() const { return ShapedType::isDynamic(value); }
};

/// The whole kernel: module-scope definitions (a workspace), signature, the
/// op, the named sizes (${SIZES}, one declaration), the body, and the C++
/// target's entry point.
constexpr const char *kKernel = R"(
${GLOBALS}
${SIGNATURE} {
  // ${OP} at ${LOCATION}
  ${SIZES}
  ${BODY}
}
${ENTRY}
)";

/// ${BODY} once per element of a ${COUNT}-element result, the flat index in
/// `i`: grid-stride on the GPU, a loop on the CPU.
constexpr const char *kElementLoopCuda = R"(
const long long count = ${COUNT};
for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
     i += (long long)gridDim.x * blockDim.x) {
  ${BODY}
}
)";
constexpr const char *kElementLoopCpp = R"(
const long long count = ${COUNT};
kiln_parallel_for((count + KILN_ELEMENTS_PER_TASK - 1) / KILN_ELEMENTS_PER_TASK, [&](long long begin, long long end) {
  const long long last = end * KILN_ELEMENTS_PER_TASK < count ? end * KILN_ELEMENTS_PER_TASK : count;
  for (long long i = begin * KILN_ELEMENTS_PER_TASK; i < last; ++i) {
    ${BODY}
  }
});
)";

/// A result element stored through the epilogue: its flat index, then the
/// epilogue's loads, ops and stores (emitElementwiseIteration).
constexpr const char *kStoreThroughEpilogue = R"(
{
  const long long idx = ${AT};
  const ${T} value = ${VALUE};
  ${ITERATION}
}
)";

/// Builds the source of one opaque kernel: the named sizes, the body, and
/// the launch configuration.
class OpaqueEmitter {
public:
  OpaqueEmitter(KernelOp kernel, Operation *op, Target target,
                GeneratedKernel &generated)
      : kernel(kernel), op(op), target(target), generated(generated) {}

  /// The kernel's operand number (inputs, then results) of `v`, a block
  /// argument or the op's result; fails for anything else.
  FailureOr<unsigned> operandOf(Value v) {
    if (auto arg = llvm::dyn_cast<BlockArgument>(v))
      if (arg.getOwner() == &kernel.getBlock())
        return arg.getArgNumber();
    if (v == op->getResult(0))
      return generated.numInputs;
    return op->emitError("code generation needs the operands of an opaque "
                         "kernel's op to be kernel inputs");
  }

  /// Declares the size `name` as dimension `dim` of `v`.
  FailureOr<Size> size(StringRef name, Value v, unsigned dim) {
    FailureOr<unsigned> operand = operandOf(v);
    if (failed(operand))
      return failure();
    Size s;
    s.name = name.str();
    s.value = llvm::cast<RankedTensorType>(v.getType()).getDimSize(dim);
    std::string value = std::to_string(s.value) + "LL";
    if (s.isDynamic()) {
      s.dynamicIndex = dynamicDimIndex(generated, *operand, dim);
      value = "s" + std::to_string(s.dynamicIndex);
    }
    declarations.push_back(s.name + " = " + value);
    return s;
  }

  /// Declares a constant of the op (stride, padding, kernel size).
  Size constant(StringRef name, int64_t value) {
    declarations.push_back(name.str() + " = " + std::to_string(value) + "LL");
    return Size{name.str(), value, 0};
  }

  /// The grid extent covering the product of `sizes` with `perBlock`
  /// elements a block.
  static GridExtent extent(ArrayRef<Size> sizes, int64_t perBlock) {
    GridExtent e;
    e.perBlock = perBlock;
    for (const Size &s : sizes) {
      if (s.isDynamic())
        e.dynamicFactors.push_back(s.dynamicIndex);
      else
        e.constant *= s.value;
    }
    return e;
  }

  /// "A * B * C" of the sizes' names ("1LL" for none).
  static std::string product(ArrayRef<Size> sizes) {
    SmallVector<std::string> names;
    for (const Size &s : sizes)
      names.push_back(s.name);
    return names.empty() ? "1LL" : llvm::join(names, " * ");
  }

  /// Writes the statements splitting the flat index `flat` of shape `sizes`
  /// into `const long long <index[k]> = ...;` lines, innermost dimension
  /// last.
  static void split(raw_indented_ostream &os, StringRef flat,
                    ArrayRef<Size> sizes, ArrayRef<std::string> index) {
    for (size_t k = 0; k < sizes.size(); ++k) {
      std::string inner = product(sizes.drop_front(k + 1));
      std::string value = flat.str();
      if (k + 1 < sizes.size())
        value = k == 0 ? value + " / (" + inner + ")"
                       : "(" + value + " / (" + inner + "))";
      if (k > 0)
        value += " % " + sizes[k].name;
      print(os, "const long long ${INDEX} = ${VALUE};\n",
            {{"INDEX", index[k]}, {"VALUE", value}});
    }
  }

  /// The whole kernel: comment, globals, signature, sizes, `body`, entry
  /// point.
  std::string finish(StringRef body) {
    std::string header = signature(
        kernel, generated, target,
        launchBounds ? std::to_string(generated.launch.block[0]) : "");
    std::string sizes;
    if (!declarations.empty())
      sizes = fill("const ${TYPE} ${DECLARATIONS};",
                   {{"TYPE", indexType},
                    {"DECLARATIONS", llvm::join(declarations, ", ")}});
    Code text;
    writeKernelComment(text.os, kernel);
    print(
        text.os, kKernel,
        {{"GLOBALS", globals},
         {"SIGNATURE", header},
         {"OP", op->getName().stripDialect().str()},
         {"LOCATION", locationOf(op)},
         {"SIZES", sizes},
         {"BODY", body.str()},
         {"ENTRY", target == Target::cpp ? cppEntry(kernel, generated) : ""}});
    return text.str();
  }

  /// Writes `body` once per element of a `count`-element result, the flat
  /// index in `i`: grid-stride on the GPU, a loop on the CPU.
  void elementLoop(raw_indented_ostream &os, StringRef count, StringRef body) {
    print(os, target == Target::cuda ? kElementLoopCuda : kElementLoopCpp,
          {{"COUNT", count.str()}, {"BODY", body.str()}});
  }

  /// The code storing `value`, the op's result element at flat index
  /// `flat` (C expressions): to out0, or through the epilogue (its loads,
  /// ops and stores of every kernel result at that index).
  FailureOr<std::string> store(StringRef flat, StringRef value) {
    if (!epilogue)
      return fill("out0[${AT}] = ${V};",
                  {{"AT", flat.str()}, {"V", value.str()}});
    Code code, iteration;
    if (failed(emitElementwiseIteration(iteration.os, kernel, resultSizes(),
                                        inputs(), outputs(), next, target,
                                        "idx", op, "value")))
      return failure();
    print(code.os, kStoreThroughEpilogue,
          {{"AT", flat.str()},
           {"T", cType(elementOf(op->getResult(0)))},
           {"VALUE", value.str()},
           {"ITERATION", iteration.str()}});
    return code.str();
  }

  /// The C++ epilogue over the result elements [first, first + count), the
  /// op's values at `values` (emitEpilogueRangeCpp).
  FailureOr<std::string> epilogueRange(StringRef first, StringRef count,
                                       StringRef values) {
    Code code;
    if (failed(emitEpilogueRangeCpp(code.os, kernel, op, resultSizes(), first,
                                    count, values)))
      return failure();
    return code.str();
  }

  /// One thread per element of `sizes`, the schedule's block of them a
  /// block.
  void launchPerElement(ArrayRef<Size> sizes) {
    generated.launch.grid[0] = extent(sizes, block);
    generated.launch.block[0] = block;
  }

  KernelOp kernel;
  /// The kernel's main op.
  Operation *op;
  Target target;
  GeneratedKernel &generated;
  /// Whether scalar ops follow the op (an epilogue: it TakesEpilogue).
  bool epilogue = false;
  /// The names of the result's dimensions among the declared sizes, for
  /// the epilogue's index arithmetic (literals and parameters otherwise).
  SmallVector<std::string> resultDims;
  /// Numbers the epilogue's locals.
  unsigned next = 0;
  /// The CUDA block of the element loops (#kiln.elementwise): every kernel
  /// here but the convolutions.
  unsigned block = 0;
  /// "NAME = value" of each named size, in order.
  SmallVector<std::string> declarations;
  /// The C type of the sizes and of index arithmetic: "long long" unless a
  /// generator proves "int" enough (cheaper division by constants on GPUs).
  std::string indexType = "long long";
  /// Module-scope definitions before the kernel (a workspace).
  std::string globals;
  /// Whether the CUDA kernel declares its block size (__launch_bounds__).
  bool launchBounds = false;

private:
  /// The C expressions of the result's dimensions (every kernel result has
  /// the op's result shape).
  SmallVector<std::string> resultSizes() {
    if (!resultDims.empty())
      return resultDims;
    auto type = llvm::cast<RankedTensorType>(op->getResult(0).getType());
    SmallVector<std::string> sizes;
    for (unsigned d = 0; d < type.getRank(); ++d)
      sizes.push_back(dimSize(generated, type, generated.numInputs, d));
    return sizes;
  }
  SmallVector<std::string> inputs() const {
    SmallVector<std::string> names;
    for (unsigned n = 0; n < generated.numInputs; ++n)
      names.push_back("in" + std::to_string(n));
    return names;
  }
  SmallVector<SmallVector<std::string, 1>> outputs() const {
    SmallVector<SmallVector<std::string, 1>> names;
    for (unsigned n = 0; n < generated.numOutputs; ++n)
      names.push_back({"out" + std::to_string(n)});
    return names;
  }
};

/// The loads and stores of the kernel: in<k>/out0 with element type T.
struct Names {
  std::string type; // the result's C type
  std::string zero; // 0 of that type
};

Names namesOf(Operation *op) {
  Type type = elementOf(op->getResult(0));
  return {cType(type), literal(0, type)};
}

//===----------------------------------------------------------------------===//
// Layout
//===----------------------------------------------------------------------===//

LogicalResult emitReshape(OpaqueEmitter &e, ReshapeOp op,
                          raw_indented_ostream &os) {
  // Row-major order is kept: a flat copy of the input's elements.
  auto type = llvm::cast<RankedTensorType>(op.getInput().getType());
  SmallVector<Size> sizes;
  for (unsigned d = 0; d < type.getRank(); ++d) {
    FailureOr<Size> s = e.size("D" + std::to_string(d), op.getInput(), d);
    if (failed(s))
      return failure();
    sizes.push_back(*s);
  }
  e.elementLoop(os, OpaqueEmitter::product(sizes), "out0[i] = in0[i];\n");
  e.launchPerElement(sizes);
  return success();
}

/// One element of a transpose: the output index ${INDEX} split from i
/// (${SPLIT}), the input element at offset ${AT}.
constexpr const char *kTranspose = R"(
// the output index (${INDEX}) reads input dimensions (${DIMS})
${SPLIT}
out0[i] = in0[${AT}];
)";

/// A C++ transpose that keeps the last dimension: per output row (the
/// row index ${INDEX} split from r), a copy of the contiguous input row at
/// ${AT}; the rows go to the threads in tasks of about
/// KILN_ELEMENTS_PER_TASK elements.
constexpr const char *kTransposeRowsCpp = R"(
const long long rows = ${ROWS};
const long long rowsPerTask = KILN_ELEMENTS_PER_TASK / ${ROW} > 0 ? KILN_ELEMENTS_PER_TASK / ${ROW} : 1;
kiln_parallel_for((rows + rowsPerTask - 1) / rowsPerTask, [&](long long begin, long long end) {
  const long long last = end * rowsPerTask < rows ? end * rowsPerTask : rows;
  for (long long r = begin * rowsPerTask; r < last; ++r) {
    // the output row (${INDEX}) reads input dimensions (${DIMS})
    ${SPLIT}
    const ${T} *__restrict__ from = in0 + ${AT};
    ${T} *__restrict__ to = out0 + r * ${ROW};
    for (long long j = 0; j < ${ROW}; ++j)
      to[j] = from[j];
  }
});
)";

LogicalResult emitTranspose(OpaqueEmitter &e, TransposeOp op,
                            raw_indented_ostream &os) {
  // Input dimension k is D<k>; output dimension j is input dimension
  // perm[j], indexed by o<j>. The input offset sums o<j> * stride(perm[j]).
  auto type = llvm::cast<RankedTensorType>(op.getInput().getType());
  ArrayRef<int64_t> perm = op.getPermutation();
  SmallVector<Size> in;
  for (unsigned d = 0; d < type.getRank(); ++d) {
    FailureOr<Size> s = e.size("D" + std::to_string(d), op.getInput(), d);
    if (failed(s))
      return failure();
    in.push_back(*s);
  }
  SmallVector<Size> out;
  SmallVector<std::string> index;
  for (auto [j, p] : llvm::enumerate(perm)) {
    out.push_back(in[p]);
    index.push_back("o" + std::to_string(j));
  }
  SmallVector<std::string> permText;
  for (int64_t p : perm)
    permText.push_back("D" + std::to_string(p));
  // The input offset of output index `index`'s first `count` dimensions.
  auto offset = [&](size_t count) {
    SmallVector<std::string> terms;
    for (auto [j, p] : llvm::enumerate(perm.take_front(count))) {
      ArrayRef<Size> inner = ArrayRef<Size>(in).drop_front(p + 1);
      terms.push_back(inner.empty() ? index[j]
                                    : index[j] + " * (" +
                                          OpaqueEmitter::product(inner) + ")");
    }
    return terms.empty() ? std::string("0") : llvm::join(terms, " + ");
  };
  size_t rank = perm.size();
  if (e.target == Target::cpp && rank >= 2 &&
      perm.back() == static_cast<int64_t>(rank) - 1) {
    Code split;
    OpaqueEmitter::split(split.os, "r", ArrayRef<Size>(out).drop_back(),
                         ArrayRef<std::string>(index).drop_back());
    print(
        os, kTransposeRowsCpp,
        {{"ROWS", OpaqueEmitter::product(ArrayRef<Size>(out).drop_back())},
         {"ROW", out.back().name},
         {"INDEX", llvm::join(ArrayRef<std::string>(index).drop_back(), ", ")},
         {"DIMS",
          llvm::join(ArrayRef<std::string>(permText).drop_back(), ", ")},
         {"SPLIT", split.str()},
         {"T", namesOf(op).type},
         {"AT", offset(rank - 1)}});
    e.launchPerElement(in);
    return success();
  }
  Code split;
  OpaqueEmitter::split(split.os, "i", out, index);
  std::string loop = render(kTranspose, {{"INDEX", llvm::join(index, ", ")},
                                         {"DIMS", llvm::join(permText, ", ")},
                                         {"SPLIT", split.str()},
                                         {"AT", offset(rank)}});
  e.elementLoop(os, OpaqueEmitter::product(in), loop);
  e.launchPerElement(in);
  return success();
}

//===----------------------------------------------------------------------===//
// Convolution
//===----------------------------------------------------------------------===//

/// The sizes of a convolution: input [N, C, H, W], weight [O, C, KH, KW],
/// output [N, O, OH, OW], stride (SH, SW), padding (PH, PW).
struct ConvSizes {
  Size N, C, H, W, O, KH, KW, OH, OW;
};

/// Declares the convolution sizes, each from the value that has it.
FailureOr<ConvSizes> convSizes(OpaqueEmitter &e, Value input, Value weight,
                               Value output, ArrayRef<int64_t> stride,
                               ArrayRef<int64_t> padding) {
  ConvSizes s;
  FailureOr<Size> sizes[9] = {e.size("N", input, 0),   e.size("C", input, 1),
                              e.size("H", input, 2),   e.size("W", input, 3),
                              e.size("O", weight, 0),  e.size("KH", weight, 2),
                              e.size("KW", weight, 3), e.size("OH", output, 2),
                              e.size("OW", output, 3)};
  for (auto &size : sizes)
    if (failed(size))
      return failure();
  s = {*sizes[0], *sizes[1], *sizes[2], *sizes[3], *sizes[4],
       *sizes[5], *sizes[6], *sizes[7], *sizes[8]};
  e.constant("SH", stride[0]);
  e.constant("SW", stride[1]);
  e.constant("PH", padding[0]);
  e.constant("PW", padding[1]);
  return s;
}

/// The flat indices of the convolution's three tensors.
constexpr const char *kInputAt = "((n * C + c) * H + ih) * W + iw";
constexpr const char *kWeightAt = "((o * C + c) * KH + kh) * KW + kw";
constexpr const char *kOutputAt = "((n * O + o) * OH + oh) * OW + ow";

/// The product of `sizes` when all are static, -1 otherwise.
int64_t staticProduct(ArrayRef<Size> sizes) {
  int64_t product = 1;
  for (const Size &s : sizes) {
    if (s.isDynamic())
      return -1;
    product *= s.value;
  }
  return product;
}

/// The tiling of a convolution's implicit GEMM C[GM, GN] = A[GM, GK]
/// B[GK, GN], from its schedule: a block computes BM x BN outputs in steps
/// of BK along k, each thread TM x TN of them; `splits` blocks share an
/// output tile, each summing one slice of k (1: no split).
struct ConvTiles {
  int64_t bm, bn, bk, tm, tn, splits;
  /// The schedule, for the comment.
  std::string schedule;
  int64_t threads() const { return (bm / tm) * (bn / tn); }
};

/// The tiles of the kernel's convolution on `e.target` (the CUDA kernel,
/// or the C++ weight gradient's slices) from its schedule, which
/// requireSchedule checks against the kernel. Sets the index type (CUDA).
FailureOr<ConvTiles> convTiles(OpaqueEmitter &e) {
  StringRef target = e.target == Target::cuda ? kCudaTarget : kCpuTarget;
  FailureOr<ConvScheduleAttr> schedule =
      requireSchedule<ConvScheduleAttr>(e.kernel, target);
  if (failed(schedule))
    return failure();
  ConvTiles t{schedule->getBm(),
              schedule->getBn(),
              schedule->getBk(),
              schedule->getTm(),
              schedule->getTn(),
              schedule->getSplitK(),
              ""};
  llvm::raw_string_ostream(t.schedule) << *schedule;
  if (e.target == Target::cuda)
    e.indexType = schedule->getIndexBits() == 32 ? "int" : "long long";
  return t;
}

/// The slice of k each split-K block sums: the smallest multiple of BK
/// that covers K in `splits` slices (the C++ target sums the same slices).
constexpr const char *kSliceFormula =
    "((GK + SPLITS - 1) / SPLITS + BK - 1) / BK * BK";

/// One convolution as an implicit GEMM: what differs between the three
/// convolution ops. Code fragments see the kernel's sizes, `tid`, the
/// tile origins `m0`, `n0`, the k step `k0` and the slice end `kEnd`; the
/// loads fill As[kk][mm] and Bs[kk][nn] for kk < BK with zero outside the
/// matrices and past kEnd. The fragments are blocks of kImplicitGemm.
struct ImplicitGemm {
  /// What A, B and C are (a comment).
  std::string what;
  /// The factors of GM, GN and GK.
  SmallVector<Size> m, n, k;
  /// Per-thread set-up before the k loop, and the loads of one k step.
  std::string aSetup, aLoad, bSetup, bLoad;
  /// Statements at row `m` of C before its columns are stored, and the
  /// flat index of the result element (m, col).
  std::string storeSetup, storeAt;
};

/// The split-K workspace of kernel ${SYM}, at module scope.
constexpr const char *kSplitKWorkspace = R"(
// Split-K workspace of ${SYM}: each block's partial tile, [SPLITS][TILES][BM * BN],
// and per output tile the number of its blocks done (zero between launches).
__device__ ${T} ${SYM}_partials[${SPLITS} * ${TILES} * ${BM} * ${BN}];
__device__ unsigned ${SYM}_arrivals[${TILES}];
)";

/// The CUDA body of an implicit GEMM: ${WHAT} and the fragments are the
/// ImplicitGemm's, ${SPLIT_K} kSplitKSum or nothing.
constexpr const char *kImplicitGemm = R"(
// Implicit GEMM C[GM, GN] = A[GM, GK] B[GK, GN], schedule
// ${SCHEDULE}:
${WHAT}
// A block computes BM x BN of C in steps of BK along k: it loads the A and B
// tiles into shared memory (k-major, with the index arithmetic of the op), then
// each thread adds the outer products of its TM rows (tm + i * BM / TM: a warp
// reads consecutive shared words and stores consecutive m) and TN columns
// (tn * TN + j: broadcast reads), k in increasing order. Grid: (ceil(GM / BM),
// ceil(GN / BN), SPLITS).
using I = ${INDEX};
constexpr int BM = ${BM}, BN = ${BN}, BK = ${BK}, TM = ${TM}, TN = ${TN};
constexpr int THREADS = ${THREADS}, SPLITS = ${SPLITS};
const I GM = ${GM}, GN = ${GN}, GK = ${GK};
const I kSlice = ${SLICE};
const I kBegin = (I)blockIdx.z * kSlice;
const I kEnd = GK < kBegin + kSlice ? GK : kBegin + kSlice;
__shared__ ${T} As[BK][BM + 1];
__shared__ ${T} Bs[BK][BN + 1];
const int tid = threadIdx.x;
const int tm = tid % (BM / TM), tn = tid / (BM / TM);
const I m0 = (I)blockIdx.x * BM, n0 = (I)blockIdx.y * BN;
${A_SETUP}
${B_SETUP}
${T} acc[TM][TN];
#pragma unroll
for (int i = 0; i < TM; ++i)
#pragma unroll
  for (int j = 0; j < TN; ++j)
    acc[i][j] = 0;
for (I k0 = kBegin; k0 < kEnd; k0 += BK) {
  ${A_LOAD}
  ${B_LOAD}
  __syncthreads();
#pragma unroll
  for (int kk = 0; kk < BK; ++kk) {
    ${T} a[TM], b[TN];
#pragma unroll
    for (int i = 0; i < TM; ++i)
      a[i] = As[kk][tm + i * (BM / TM)];
#pragma unroll
    for (int j = 0; j < TN; ++j)
      b[j] = Bs[kk][tn * TN + j];
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN; ++j)
        acc[i][j] = ${FMA}(a[i], b[j], acc[i][j]);
  }
  __syncthreads();
}
${SPLIT_K}
// The stores.
#pragma unroll
for (int i = 0; i < TM; ++i) {
  const I m = m0 + tm + i * (BM / TM);
  if (m >= GM)
    continue;
  ${STORE_SETUP}
#pragma unroll
  for (int j = 0; j < TN; ++j) {
    const I col = n0 + tn * TN + j;
    if (col < GN) {
      ${STORE}
    }
  }
}
)";

/// The split-K sum of an implicit GEMM, between its k loop and its stores.
constexpr const char *kSplitKSum = R"(
// Split-K: every block stores its partial tile; the last block of a tile to
// arrive (an integer atomic counts them) adds the SPLITS partials in slice
// order, whichever block that is: the same sum on every run.
const I tile = (I)blockIdx.y * gridDim.x + blockIdx.x;
${T} *mine = ${SYM}_partials + ((I)blockIdx.z * ${TILES} + tile) * (BM * BN);
#pragma unroll
for (int i = 0; i < TM; ++i)
#pragma unroll
  for (int j = 0; j < TN; ++j)
    mine[(i * TN + j) * THREADS + tid] = acc[i][j];
__threadfence(); // the partials are visible before the count
__syncthreads();
__shared__ unsigned arrived;
if (tid == 0)
  arrived = atomicAdd(&${SYM}_arrivals[tile], 1u);
__syncthreads();
if (arrived != SPLITS - 1)
  return;
__threadfence();
#pragma unroll
for (int i = 0; i < TM; ++i)
#pragma unroll
  for (int j = 0; j < TN; ++j) {
    const ${T} *partial = ${SYM}_partials + tile * (BM * BN) + (i * TN + j) * THREADS + tid;
    ${T} sum = __ldcg(partial);
    for (int s = 1; s < SPLITS; ++s)
      sum += __ldcg(partial + (I)s * ${TILES} * (BM * BN));
    acc[i][j] = sum;
  }
if (tid == 0)
  ${SYM}_arrivals[tile] = 0; // ready for the next launch
)";

/// Writes the CUDA kernel body of `g` with tiles `t`; declares the launch.
LogicalResult emitImplicitGemmCuda(OpaqueEmitter &e, const ImplicitGemm &g,
                                   const ConvTiles &t,
                                   raw_indented_ostream &os) {
  FailureOr<std::string> store = e.store(g.storeAt, "acc[i][j]");
  if (failed(store))
    return failure();
  Names names = namesOf(e.op);
  std::string type = names.type;
  bool f64 = type == "double";
  int64_t tiles = 1;
  if (t.splits > 1)
    tiles = (staticProduct(g.m) + t.bm - 1) / t.bm *
            ((staticProduct(g.n) + t.bn - 1) / t.bn);
  std::string sym = e.generated.symbol;
  std::vector<std::pair<StringRef, std::string>> values = {
      {"T", type},
      {"FMA", f64 ? "fma" : "fmaf"},
      {"BM", std::to_string(t.bm)},
      {"BN", std::to_string(t.bn)},
      {"BK", std::to_string(t.bk)},
      {"TM", std::to_string(t.tm)},
      {"TN", std::to_string(t.tn)},
      {"THREADS", std::to_string(t.threads())},
      {"SPLITS", std::to_string(t.splits)},
      {"TILES", std::to_string(tiles)},
      {"GM", OpaqueEmitter::product(g.m)},
      {"GN", OpaqueEmitter::product(g.n)},
      {"GK", OpaqueEmitter::product(g.k)},
      {"SCHEDULE", t.schedule},
      {"SYM", sym},
      {"SLICE", t.splits > 1 ? kSliceFormula : "GK"}};
  if (t.splits > 1)
    e.globals += render(kSplitKWorkspace, values);
  values.insert(values.end(),
                {{"WHAT", g.what},
                 {"INDEX", e.indexType},
                 {"A_SETUP", g.aSetup},
                 {"B_SETUP", g.bSetup},
                 {"A_LOAD", g.aLoad},
                 {"B_LOAD", g.bLoad},
                 {"SPLIT_K", t.splits > 1 ? render(kSplitKSum, values) : ""},
                 {"STORE_SETUP", g.storeSetup},
                 {"STORE", *store}});
  print(os, kImplicitGemm, values);
  LaunchConfig &launch = e.generated.launch;
  launch.grid[0] = OpaqueEmitter::extent(g.m, t.bm);
  launch.grid[1] = OpaqueEmitter::extent(g.n, t.bn);
  launch.grid[2] = GridExtent();
  launch.grid[2].constant = t.splits;
  launch.block[0] = t.threads();
  e.launchBounds = true;
  return success();
}

/// The A loads of a GEMM whose A rows are image positions (m fastest: a
/// warp reads consecutive positions). Thread tid always loads row
/// m0 + tid % BM, so its position is split once, by ${ROW_SETUP} (which
/// declares `aOk` and what the element reads): kRowSetup before the k loop,
/// kRowLoads in it, where ${ELEMENT} assigns `v` for column k (`kk` in the
/// tile), known to be < kEnd.
constexpr const char *kRowSetup = R"(
// A: thread tid loads row m0 + tid % BM of every A tile.
static_assert(THREADS % BM == 0, "whole rows per thread");
${ROW_SETUP}
)";
constexpr const char *kRowLoads = R"(
#pragma unroll
for (int r = 0; r < (BK * BM + THREADS - 1) / THREADS; ++r) {
  const int kk = tid / BM + r * (THREADS / BM);
  if (kk >= BK)
    break;
  const I k = k0 + kk;
  ${T} v = 0;
  if (aOk && k < kEnd) {
    ${ELEMENT}
  }
  As[kk][tid % BM] = v;
}
)";

/// Sets `g`'s A set-up and loads to those of rows of image positions
/// (kRowSetup, kRowLoads): `rowSetup` and `element` are templates of the
/// element type ${T}, which is `type`.
void rowLoads(ImplicitGemm &g, StringRef type, StringRef rowSetup,
              StringRef element) {
  g.aSetup =
      render(kRowSetup, {{"ROW_SETUP", render(rowSetup, {{"T", type.str()}})}});
  g.aLoad =
      render(kRowLoads, {{"T", type.str()}, {"ELEMENT", render(element)}});
}

/// B loads of a small matrix read k fastest (the weights), without set-up:
/// ${DECOMPOSE} splits k (if needed), ${AT} is the flat index of element
/// (k, col).
constexpr const char *kWeightLoads = R"(
for (int e = tid; e < BK * BN; e += THREADS) {
  const int kk = e % BK, nn = e / BK;
  const I k = k0 + kk, col = n0 + nn;
  ${T} v = 0;
  if (k < kEnd && col < GN) {
    ${DECOMPOSE}
    v = in1[${AT}];
  }
  Bs[kk][nn] = v;
}
)";

/// conv2d's implicit GEMM.
constexpr const char *kConv2dWhat = R"(
// A = the input's windows [N * OH * OW, C * KH * KW] (zero in the padding),
// B = the weight [O, C * KH * KW] read transposed, C = the output, NCHW.
)";
constexpr const char *kConv2dRow = R"(
const I aRow = m0 + tid % BM;
const bool aOk = aRow < GM;
const I aN = aOk ? aRow / (OH * OW) : 0;
const I aIh = (aRow / OW) % OH * SH - PH, aIw = aRow % OW * SW - PW;
const ${T} *aImage = in0 + aN * (C * H * W);
)";
constexpr const char *kConv2dElement = R"(
const I c = k / (KH * KW), kh = k / KW % KH, kw = k % KW;
const I ih = aIh + kh, iw = aIw + kw;
if (ih >= 0 && ih < H && iw >= 0 && iw < W)
  v = aImage[(c * H + ih) * W + iw];
)";

/// A convolution whose images are independent GEMMs (conv2d,
/// conv2d_grad_input) on the CPU: ${PACK} fills `panel` (B's columns
/// [col0, col0 + NR), [GK][NR]) from image n; ${TILE} computes and stores
/// the MR x NR tile at (row0, col0).
constexpr const char *kConvGemmImagesCpp = R"(
// ${WHAT}, a GEMM per image on the
// register-blocked micro-kernel (${SCHEDULE}): C[GM, GN] = A[GM, GK] B[GK, GN],
// ${SHAPES}.
// A task is one image's panel of NR columns: B's panel packed from the image
// ([GK][NR], zeros past GN and in the padding) into the thread's scratch, then
// each MR x NR tile of C in it summed in vector registers over k in
// increasing order. The threads split the tasks, all images' at once.
constexpr int MR = ${MR}, NR = ${NR};
const long long GM = ${GM}, GN = ${GN}, GK = ${GK};
const long long panels = (GN + NR - 1) / NR;
${SETUP}
kiln_parallel_for(N * panels, [&](long long begin, long long end) {
  ${T} *__restrict__ panel = kiln_gemm_thread_scratch<${T}>(NR * GK);
  for (long long task = begin; task < end; ++task) {
    const long long n = task / panels, p = task % panels;
    const long long col0 = p * NR, cols = GN - col0 < NR ? GN - col0 : NR;
    ${PACK}
    for (long long row0 = 0; row0 < GM; row0 += MR) {
      const long long rows = GM - row0 < MR ? GM - row0 : MR;
      ${TILE}
    }
  }
});
)";

/// The tile of conv2d and conv2d_grad_input: C[GM, GN] is image n of the
/// result, A (${A}) read in place.
constexpr const char *kConvTileCpp = R"(
alignas(64) ${T} tile[MR * NR];
kiln_gemm_micro<${T}, MR, NR>(GK, ${A} + row0 * GK, GK, 1, rows, panel, tile);
for (long long i = 0; i < rows; ++i)
  for (long long c = 0; c < cols; ++c)
    out0[(n * GM + row0 + i) * GN + col0 + c] = tile[i * NR + c];
)";

/// conv2d (any stride) and conv2d_grad_input at stride 1 on the CPU: a GEMM per
/// image with the output transposed, rows its positions and columns its
/// channels, A read in place from the image's source planes copied with their
/// padding (${PAD_H} x ${PAD_W} each) through an offset table: element (q,
/// k) is at the corner of position q's window (${CORNER}) plus tap k's
/// offset (${OFFSET}). ${PACK} fills `panel` (B's columns [col0, col0 +
/// NR), [GK][NR]) once for every image.
constexpr const char *kConvWindowsCpp = R"(
// ${WHAT}, a GEMM per image on the
// register-blocked micro-kernel (${SCHEDULE}), transposed: C[GM, GN] = A[GM, GK] B[GK, GN],
// ${SHAPES}.
// A is read in place from the image's planes copied with their padding (zeros
// around them): element (q, k) is at the corner of position q's window plus the
// offset of tap k (kiln_gemm_micro_indirect). B is packed once, in panels of NR
// columns ([GK][NR] each, zeros past GN). A task is an image: its planes padded
// into the thread's scratch, then each MR x NR tile summed in vector registers
// over k in increasing order and stored to the image's channels${EPILOGUE_NOTE}.
constexpr int MR = ${MR}, NR = ${NR};
const long long GM = ${GM}, GN = ${GN}, GK = ${GK};
const long long PLANES = ${PLANES}, SOURCE_H = ${SOURCE_H}, SOURCE_W = ${SOURCE_W};
const long long TOP = ${TOP}, LEFT = ${LEFT}, PAD_H = ${PAD_H}, PAD_W = ${PAD_W};
const long long panels = (GN + NR - 1) / NR;
${T} *__restrict__ packed = kiln_gemm_scratch<${T}>(panels * NR * GK);
long long *__restrict__ offsets = kiln_gemm_scratch<long long>(GK);
for (long long k = 0; k < GK; ++k)
  offsets[k] = ${OFFSET};
kiln_parallel_for(panels, [&](long long begin, long long end) {
  for (long long p = begin; p < end; ++p) {
    const long long col0 = p * NR;
    ${T} *__restrict__ panel = packed + p * NR * GK;
    ${PACK}
  }
});
kiln_parallel_for(N, [&](long long begin, long long end) {
  const long long paddedSize = (PLANES * PAD_H * PAD_W + 15) / 16 * 16;
  ${T} *__restrict__ padded = kiln_gemm_thread_scratch<${T}>(paddedSize + ${RESULT_SCRATCH});
  for (long long n = begin; n < end; ++n) {
    ${T} *__restrict__ result = ${RESULT};
    kiln_conv_pad_planes(in0 + n * PLANES * SOURCE_H * SOURCE_W, PLANES, SOURCE_H, SOURCE_W, TOP, LEFT, PAD_H, PAD_W, padded);
    for (long long row0 = 0; row0 < GM; row0 += MR) {
      const long long rows = GM - row0 < MR ? GM - row0 : MR;
      const ${T} *corner[MR];
      for (int i = 0; i < MR; ++i) {
        const long long q = row0 + (i < rows ? i : rows - 1);
        corner[i] = padded + ${CORNER};
      }
      for (long long p = 0; p < panels; ++p) {
        const long long col0 = p * NR, cols = GN - col0 < NR ? GN - col0 : NR;
        alignas(64) ${T} tile[MR * NR];
        kiln_gemm_micro_indirect<${T}, MR, NR>(GK, corner, offsets, packed + p * NR * GK, tile);
        for (long long c = 0; c < cols; ++c)
          for (long long i = 0; i < rows; ++i)
            result[(col0 + c) * GM + row0 + i] = tile[i * NR + c];
      }
    }
    ${EPILOGUE}
  }
});
)";

/// conv2d_grad_input's panel for kConvWindowsCpp: row k = (o, kh, kw),
/// columns c, the weight [O, C, KH, KW].
constexpr const char *kConv2dGradInputWeightsPackCpp = R"(
for (long long k = 0; k < GK; ++k) {
  const long long o = k / (KH * KW), tap = k % (KH * KW);
  for (long long j = 0; j < NR; ++j)
    panel[k * NR + j] = col0 + j < GN ? in1[(o * C + col0 + j) * KH * KW + tap] : ${ZERO};
}
)";

/// Where kConvWindowsCpp stores image n's result: out0, or, with an
/// epilogue, the thread's scratch, from which the epilogue runs over the
/// image's elements.
LogicalResult
windowsResult(OpaqueEmitter &e,
              std::vector<std::pair<StringRef, std::string>> &values) {
  if (!e.epilogue) {
    values.insert(values.end(), {{"RESULT_SCRATCH", "0"},
                                 {"RESULT", "out0 + n * GN * GM"},
                                 {"EPILOGUE", ""},
                                 {"EPILOGUE_NOTE", ""}});
    return success();
  }
  FailureOr<std::string> epilogue =
      e.epilogueRange("n * GN * GM", "GN * GM", "result");
  if (failed(epilogue))
    return failure();
  values.insert(values.end(),
                {{"RESULT_SCRATCH", "GN * GM"},
                 {"RESULT", "padded + paddedSize"},
                 {"EPILOGUE", *epilogue},
                 {"EPILOGUE_NOTE", " (in the thread's scratch), then the "
                                   "epilogue runs over the image"}});
  return success();
}

/// `text` (kConvWindowsCpp, kConvWeightsCpp or kConvGemmImagesCpp) with the
/// kernel's schedule and `values`.
LogicalResult
emitConvGemmCpp(OpaqueEmitter &e, raw_indented_ostream &os, const Names &t,
                StringRef text,
                std::vector<std::pair<StringRef, std::string>> values) {
  FailureOr<CpuGemmScheduleAttr> schedule =
      requireSchedule<CpuGemmScheduleAttr>(e.kernel, kCpuTarget);
  if (failed(schedule))
    return failure();
  std::string scheduleText;
  llvm::raw_string_ostream(scheduleText) << *schedule;
  values.push_back({"SCHEDULE", scheduleText});
  values.push_back({"MR", std::to_string(schedule->getMr())});
  values.push_back({"NR", std::to_string(schedule->getNr())});
  values.push_back({"T", t.type});
  print(os, text, values);
  return success();
}

LogicalResult emitConv2d(OpaqueEmitter &e, Conv2dOp op,
                         raw_indented_ostream &os) {
  FailureOr<ConvSizes> s =
      convSizes(e, op.getInput(), op.getWeight(), op.getResult(),
                op.getStride(), op.getPadding());
  if (failed(s))
    return failure();
  Names t = namesOf(op);
  e.resultDims = {"N", "O", "OH", "OW"};
  if (e.target == Target::cuda) {
    // Rows m = (n, oh, ow), columns o, k = (c, kh, kw): the same terms in
    // the same order as the C++ loop.
    ImplicitGemm g;
    g.what = render(kConv2dWhat);
    g.m = {s->N, s->OH, s->OW};
    g.n = {s->O};
    g.k = {s->C, s->KH, s->KW};
    rowLoads(g, t.type, kConv2dRow, kConv2dElement);
    g.bLoad =
        render(kWeightLoads,
               {{"T", t.type}, {"DECOMPOSE", ""}, {"AT", "col * GK + k"}});
    g.storeSetup = "const I n = m / (OH * OW), ohw = m % (OH * OW);\n";
    g.storeAt = "(n * O + col) * (OH * OW) + ohw";
    FailureOr<ConvTiles> tiles = convTiles(e);
    if (failed(tiles))
      return failure();
    return emitImplicitGemmCuda(e, g, *tiles, os);
  }
  // Rows the output positions q = (oh, ow), columns o, k = (c, kh, kw):
  // image n's windows [OH * OW, C * KH * KW] times the weight transposed.
  std::vector<std::pair<StringRef, std::string>> values = {
      {"WHAT", "conv2d"},
      {"SHAPES", "rows (oh, ow), columns o, k = (c, kh, kw): image n's "
                 "windows [OH * OW, C * KH * KW] times the weight transposed "
                 "[C * KH * KW, O]"},
      {"GM", "OH * OW"},
      {"GN", "O"},
      {"GK", "C * KH * KW"},
      {"PLANES", "C"},
      {"SOURCE_H", "H"},
      {"SOURCE_W", "W"},
      {"TOP", "PH"},
      {"LEFT", "PW"},
      {"PAD_H", "(OH - 1) * SH + KH"},
      {"PAD_W", "(OW - 1) * SW + KW"},
      {"OFFSET", "(k / (KH * KW) * PAD_H + k / KW % KH) * PAD_W + k % KW"},
      {"CORNER", "q / OW * SH * PAD_W + q % OW * SW"},
      {"PACK", fill("kiln_gemm_pack_b<${T}, NR>(GK, GN, col0, in1, 1, GK, "
                    "panel);",
                    {{"T", t.type}})}};
  if (failed(windowsResult(e, values)))
    return failure();
  return emitConvGemmCpp(e, os, t, kConvWindowsCpp, std::move(values));
}

/// The loops over the output rows `oh` (and columns `ow`) whose windows
/// contain input row `ih` (column `iw`), ${BODY} in them.
/// kiln_window_first/last are in the preamble.
constexpr const char *kWindowLoops = R"(
const long long ohFirst = kiln_window_first(ih, PH, KH, SH);
const long long ohLast = kiln_window_last(ih, PH, SH, OH);
const long long owFirst = kiln_window_first(iw, PW, KW, SW);
const long long owLast = kiln_window_last(iw, PW, SW, OW);
for (long long oh = ohFirst; oh <= ohLast; ++oh)
  for (long long ow = owFirst; ow <= owLast; ++ow) {
    ${BODY}
  }
)";

/// conv2d_grad_input's implicit GEMM.
constexpr const char *kConv2dGradInputWhat = R"(
// A = the gradient at the windows reading each input element [N * H * W, O * KH * KW]
// (zero where no window reads it through that tap), B = the weight as
// [O * KH * KW, C], C = the input gradient, NCHW.
)";
constexpr const char *kConv2dGradInputRow = R"(
const I aRow = m0 + tid % BM;
const bool aOk = aRow < GM;
const I aN = aOk ? aRow / (H * W) : 0;
const I aTh = (aRow / W) % H + PH, aTw = aRow % W + PW;
const ${T} *aGrad = in0 + aN * (O * OH * OW);
)";
constexpr const char *kConv2dGradInputElement = R"(
const I o = k / (KH * KW), kh = k / KW % KH, kw = k % KW;
// output (oh, ow) reads this element through tap (kh, kw)
const I th = aTh - kh, tw = aTw - kw;
if (th >= 0 && tw >= 0 && th % SH == 0 && tw % SW == 0 &&
    th / SH < OH && tw / SW < OW)
  v = aGrad[(o * OH + th / SH) * OW + tw / SW];
)";

/// conv2d_grad_input's A: the weight [O, C, KH, KW] as [C][(o, kh, kw)].
constexpr const char *kConv2dGradInputSetupCpp = R"(
${T} *__restrict__ weights = kiln_gemm_scratch<${T}>(C * O * KH * KW);
for (long long c = 0; c < C; ++c)
  for (long long o = 0; o < O; ++o)
    for (long long tap = 0; tap < KH * KW; ++tap)
      weights[c * GK + o * KH * KW + tap] = in1[(o * C + c) * KH * KW + tap];
)";

/// conv2d_grad_input's panel: k = (o, kh, kw), columns the input positions
/// (ih, iw); row k holds the gradient at the output position whose window
/// reads (ih, iw) through tap (kh, kw), zero where none does. A column past
/// GN is left of every window.
constexpr const char *kConv2dGradInputPackCpp = R"(
long long thBase[NR], twBase[NR];
for (int j = 0; j < NR; ++j) {
  const long long q = col0 + j;
  thBase[j] = q < GN ? q / W + PH : -1;
  twBase[j] = q < GN ? q % W + PW : -1;
}
const ${T} *grad = in0 + n * O * OH * OW;
for (long long k = 0; k < GK; ++k) {
  const long long o = k / (KH * KW), kh = k / KW % KH, kw = k % KW;
  const ${T} *plane = grad + o * OH * OW;
  ${T} *row = panel + k * NR;
  for (int j = 0; j < NR; ++j) {
    const long long th = thBase[j] - kh, tw = twBase[j] - kw;
    row[j] = th >= 0 && tw >= 0 && th % SH == 0 && tw % SW == 0 && th / SH < OH && tw / SW < OW ? plane[th / SH * OW + tw / SW] : ${ZERO};
  }
}
)";

LogicalResult emitConv2dGradInput(OpaqueEmitter &e, Conv2dGradInputOp op,
                                  raw_indented_ostream &os) {
  // The input sizes are the result's; OH and OW are the gradient's.
  FailureOr<ConvSizes> s =
      convSizes(e, op.getResult(), op.getWeight(), op.getGrad(), op.getStride(),
                op.getPadding());
  if (failed(s))
    return failure();
  Names t = namesOf(op);
  if (e.target == Target::cuda) {
    // Rows m = (n, ih, iw), columns c, k = (o, kh, kw): each input element
    // gathers the gradient at the output positions whose windows read it
    // through tap (kh, kw), which is a transposed convolution.
    ImplicitGemm g;
    g.what = render(kConv2dGradInputWhat);
    g.m = {s->N, s->H, s->W};
    g.n = {s->C};
    g.k = {s->O, s->KH, s->KW};
    rowLoads(g, t.type, kConv2dGradInputRow, kConv2dGradInputElement);
    g.bLoad = render(
        kWeightLoads,
        {{"T", t.type},
         {"DECOMPOSE", "const I o = k / (KH * KW), khw = k % (KH * KW);"},
         {"AT", "(o * C + col) * (KH * KW) + khw"}});
    g.storeSetup = "const I n = m / (H * W), hw = m % (H * W);\n";
    g.storeAt = "(n * C + col) * (H * W) + hw";
    FailureOr<ConvTiles> tiles = convTiles(e);
    if (failed(tiles))
      return failure();
    return emitImplicitGemmCuda(e, g, *tiles, os);
  }
  bool stride1 = llvm::all_of(op.getStride(), [](int64_t s) { return s == 1; });
  if (stride1) {
    // Rows the input positions q = (ih, iw), columns c, k = (o, kh, kw):
    // the gradient's planes padded so that input position (ih, iw) reads
    // output position (ih + PH - kh, iw + PW - kw) at (ih + KH - 1 - kh,
    // iw + KW - 1 - kw), times the weight as [O * KH * KW, C].
    std::vector<std::pair<StringRef, std::string>> values = {
        {"WHAT", "conv2d_grad_input"},
        {"SHAPES", "rows (ih, iw), columns c, k = (o, kh, kw): the gradient "
                   "of image n at the windows reading each input position "
                   "[H * W, O * KH * KW] times the weight [O * KH * KW, C]"},
        {"GM", "H * W"},
        {"GN", "C"},
        {"GK", "O * KH * KW"},
        {"PLANES", "O"},
        {"SOURCE_H", "OH"},
        {"SOURCE_W", "OW"},
        {"TOP", "KH - 1 - PH"},
        {"LEFT", "KW - 1 - PW"},
        {"PAD_H", "H + KH - 1"},
        {"PAD_W", "W + KW - 1"},
        {"OFFSET", "(k / (KH * KW) * PAD_H + KH - 1 - k / KW % KH) * PAD_W + "
                   "KW - 1 - k % KW"},
        {"CORNER", "q / W * PAD_W + q % W"},
        {"PACK", render(kConv2dGradInputWeightsPackCpp, {{"ZERO", t.zero}})}};
    if (failed(windowsResult(e, values)))
      return failure();
    return emitConvGemmCpp(e, os, t, kConvWindowsCpp, std::move(values));
  }
  return emitConvGemmCpp(
      e, os, t, kConvGemmImagesCpp,
      {{"WHAT", "conv2d_grad_input"},
       {"SHAPES", "rows c, columns (ih, iw), k = (o, kh, kw): the weight "
                  "transposed [C, O * KH * KW] times the gradient of image n "
                  "at the windows reading each input position"},
       {"GM", "C"},
       {"GN", "H * W"},
       {"GK", "O * KH * KW"},
       {"SETUP", render(kConv2dGradInputSetupCpp, {{"T", t.type}})},
       {"PACK",
        render(kConv2dGradInputPackCpp, {{"T", t.type}, {"ZERO", t.zero}})},
       {"TILE", render(kConvTileCpp, {{"T", t.type}, {"A", "weights"}})}});
}

/// conv2d_grad_weight's implicit GEMM. Both tiles are read k fastest (k
/// runs along the images' rows): thread tid loads column kk = tid % BK of
/// every step, so it splits k once a step, and rows tid / BK + r * THREADS
/// / BK, split once.
constexpr const char *kConv2dGradWeightWhat = R"(
// A = the gradient as [O, N * OH * OW], B = the input's windows
// [N * OH * OW, C * KH * KW] (zero in the padding), C = the weight gradient.
)";
constexpr const char *kConv2dGradWeightASetup = R"(
// A and B: thread tid loads k column tid % BK of each step.
const int kk = tid % BK;
constexpr int RA = BM * BK / THREADS, RB = BN * BK / THREADS;
static_assert(THREADS % BK == 0 && RA * THREADS == BM * BK &&
                  RB * THREADS == BN * BK,
              "the tiles divide among the threads");
)";
constexpr const char *kConv2dGradWeightBSetup = R"(
// B: the input offset and tap of each column the thread loads.
I bOffset[RB], bKh[RB], bKw[RB];
bool bOk[RB];
#pragma unroll
for (int r = 0; r < RB; ++r) {
  const I j = n0 + tid / BK + r * (THREADS / BK);
  bOk[r] = j < GN;
  bOffset[r] = j / (KH * KW) * (H * W);
  bKh[r] = j / KW % KH;
  bKw[r] = j % KW;
}
)";
constexpr const char *kConv2dGradWeightALoad = R"(
const I k = k0 + kk;
const bool kOk = k < kEnd;
const I n = k / (OH * OW), ohw = k % (OH * OW);
#pragma unroll
for (int r = 0; r < RA; ++r) {
  const int mm = tid / BK + r * (THREADS / BK);
  const I o = m0 + mm;
  As[kk][mm] = kOk && o < GM ? in1[(n * O + o) * (OH * OW) + ohw] : 0;
}
)";
constexpr const char *kConv2dGradWeightBLoad = R"(
const I ih0 = ohw / OW * SH - PH, iw0 = ohw % OW * SW - PW;
const ${T} *image = in0 + n * (C * H * W);
#pragma unroll
for (int r = 0; r < RB; ++r) {
  const I ih = ih0 + bKh[r], iw = iw0 + bKw[r];
  Bs[kk][tid / BK + r * (THREADS / BK)] =
      kOk && bOk[r] && ih >= 0 && ih < H && iw >= 0 && iw < W
          ? image[bOffset[r] + ih * W + iw]
          : 0;
}
)";

/// The runs of images conv2d_grad_weight's C++ kernel sums separately: as
/// many tasks as a 16-core machine has threads.
constexpr int64_t kConvWeightRuns = 16;

/// conv2d_grad_weight on the CPU (any stride): the weight gradient
/// transposed, a GEMM per image summed over the images, rows the weights k =
/// (c, kh, kw), columns o, k the output positions q = (oh, ow). A is read in
/// place from the image's planes copied with their padding: element (k, q)
/// is at the corner of weight k (plane c at (kh, kw)) plus the offset of
/// q's window. Runs of consecutive images (as many whatever the threads:
/// the sums do not depend on them) are tasks, each summed into its own
/// tiles; the runs' sums are added in order.
constexpr const char *kConvWeightsCpp = R"(
// conv2d_grad_weight, a GEMM per image on the
// register-blocked micro-kernel (${SCHEDULE}), transposed and summed over the
// images: C[GM, GN] = sum over n of A[GM, GK] B[GK, GN], rows the weights
// (c, kh, kw), columns o, k the output positions (oh, ow) of image n: the
// input's windows transposed [C * KH * KW, OH * OW] times the gradient
// transposed [OH * OW, O].
// A is read in place from the image's planes copied with their padding (zeros
// around them): element (k, q) is at the corner of weight k plus the offset of
// position q's window (kiln_gemm_micro_indirect). B is image n's gradient,
// packed in panels of NR columns ([GK][NR] each, zeros past GN). The batch is
// cut into RUNS runs of consecutive images; a task is a run, its images' tiles
// summed into the run's own, each in vector registers over k in increasing
// order, image after image. Then each weight's sums of the runs are added in
// order (the same sums on any number of threads).
constexpr int MR = ${MR}, NR = ${NR};
const long long GM = C * KH * KW, GN = O, GK = OH * OW;
const long long PAD_H = (OH - 1) * SH + KH, PAD_W = (OW - 1) * SW + KW;
const long long panels = (GN + NR - 1) / NR, rowTiles = (GM + MR - 1) / MR;
const long long RUNS = N < ${RUNS} ? N : ${RUNS}, runSize = rowTiles * panels * MR * NR;
const long long paddedSize = (C * PAD_H * PAD_W + 15) / 16 * 16;
${T} *__restrict__ sums = kiln_gemm_scratch<${T}>(RUNS * runSize);
long long *__restrict__ offsets = kiln_gemm_scratch<long long>(GK);
for (long long q = 0; q < GK; ++q)
  offsets[q] = q / OW * SH * PAD_W + q % OW * SW;
kiln_parallel_for(RUNS, [&](long long begin, long long end) {
  ${T} *__restrict__ padded = kiln_gemm_thread_scratch<${T}>(paddedSize + panels * NR * GK);
  ${T} *__restrict__ packed = padded + paddedSize;
  for (long long run = begin; run < end; ++run) {
    ${T} *__restrict__ runSums = sums + run * runSize;
    const long long first = run * N / RUNS, last = (run + 1) * N / RUNS;
    for (long long n = first; n < last; ++n) {
      kiln_conv_pad_planes(in0 + n * C * H * W, C, H, W, PH, PW, PAD_H, PAD_W, padded);
      for (long long p = 0; p < panels; ++p)
        kiln_gemm_pack_b<${T}, NR>(GK, GN, p * NR, in1 + n * O * GK, 1, GK, packed + p * NR * GK);
      for (long long rowTile = 0; rowTile < rowTiles; ++rowTile) {
        const long long row0 = rowTile * MR, rows = GM - row0 < MR ? GM - row0 : MR;
        const ${T} *corner[MR];
        for (int i = 0; i < MR; ++i) {
          const long long k = row0 + (i < rows ? i : rows - 1);
          corner[i] = padded + (k / (KH * KW) * PAD_H + k / KW % KH) * PAD_W + k % KW;
        }
        for (long long p = 0; p < panels; ++p)
          kiln_gemm_micro_indirect<${T}, MR, NR>(GK, corner, offsets, packed + p * NR * GK, runSums + (rowTile * panels + p) * MR * NR, n > first);
      }
    }
  }
});
kiln_parallel_for(rowTiles, [&](long long begin, long long end) {
  for (long long rowTile = begin; rowTile < end; ++rowTile) {
    const long long row0 = rowTile * MR, rows = GM - row0 < MR ? GM - row0 : MR;
    for (long long p = 0; p < panels; ++p) {
      const long long col0 = p * NR, cols = GN - col0 < NR ? GN - col0 : NR;
      const ${T} *tiles = sums + (rowTile * panels + p) * MR * NR;
      for (long long c = 0; c < cols; ++c)
        for (long long i = 0; i < rows; ++i) {
          ${T} sum = ${ZERO};
          for (long long run = 0; run < RUNS; ++run)
            sum += tiles[run * runSize + i * NR + c];
          out0[(col0 + c) * GM + row0 + i] = sum;
        }
    }
  }
});
)";

LogicalResult emitConv2dGradWeight(OpaqueEmitter &e, Conv2dGradWeightOp op,
                                   raw_indented_ostream &os) {
  // O, KH and KW are the result's (the weight's shape); OH and OW the
  // gradient's.
  FailureOr<ConvSizes> s =
      convSizes(e, op.getInput(), op.getResult(), op.getGrad(), op.getStride(),
                op.getPadding());
  if (failed(s))
    return failure();
  Names t = namesOf(op);
  if (e.target == Target::cpp)
    return emitConvGemmCpp(
        e, os, t, kConvWeightsCpp,
        {{"RUNS", std::to_string(kConvWeightRuns)}, {"ZERO", t.zero}});
  // Rows o, columns j = (c, kh, kw), k = (n, oh, ow): the batch and the
  // image, summed in slices of kSlice (split-K).
  ImplicitGemm g;
  g.m = {s->O};
  g.n = {s->C, s->KH, s->KW};
  g.k = {s->N, s->OH, s->OW};
  // Both tiles are loaded k fastest, a whole number of k columns a thread.
  FailureOr<ConvTiles> tiles = convTiles(e);
  if (failed(tiles))
    return failure();
  g.what = render(kConv2dGradWeightWhat);
  g.aSetup = render(kConv2dGradWeightASetup);
  g.bSetup = render(kConv2dGradWeightBSetup);
  g.aLoad = render(kConv2dGradWeightALoad);
  g.bLoad = render(kConv2dGradWeightBLoad, {{"T", t.type}});
  g.storeAt = "m * GN + col";
  return emitImplicitGemmCuda(e, g, *tiles, os);
}

//===----------------------------------------------------------------------===//
// Pooling
//===----------------------------------------------------------------------===//

/// The sizes of a pooling: input [N, C, H, W], output [N, C, OH, OW],
/// window (KH, KW), stride (SH, SW), padding (PH, PW).
struct PoolSizes {
  Size N, C, H, W, OH, OW;
};

FailureOr<PoolSizes> poolSizes(OpaqueEmitter &e, Value input, Value output,
                               ArrayRef<int64_t> kernel,
                               ArrayRef<int64_t> stride,
                               ArrayRef<int64_t> padding) {
  FailureOr<Size> sizes[6] = {e.size("N", input, 0),   e.size("C", input, 1),
                              e.size("H", input, 2),   e.size("W", input, 3),
                              e.size("OH", output, 2), e.size("OW", output, 3)};
  for (auto &size : sizes)
    if (failed(size))
      return failure();
  e.constant("KH", kernel[0]);
  e.constant("KW", kernel[1]);
  e.constant("SH", stride[0]);
  e.constant("SW", stride[1]);
  e.constant("PH", padding[0]);
  e.constant("PW", padding[1]);
  return PoolSizes{*sizes[0], *sizes[1], *sizes[2],
                   *sizes[3], *sizes[4], *sizes[5]};
}

/// Loops over the taps of window (oh, ow) inside the input, plane `nc`: the
/// tap's row and column are named ${ROW} and ${COL}, its flat input index
/// `at`; ${TAP} runs per tap.
constexpr const char *kWindowTaps = R"(
for (long long kh = 0; kh < KH; ++kh) {
  const long long ${ROW} = oh * SH - PH + kh;
  if (${ROW} < 0 || ${ROW} >= H)
    continue; // padding
  for (long long kw = 0; kw < KW; ++kw) {
    const long long ${COL} = ow * SW - PW + kw;
    if (${COL} < 0 || ${COL} >= W)
      continue;
    const long long at = (nc * H + ${ROW}) * W + ${COL};
    ${TAP}
  }
}
)";

/// One output element of a pooling: its window's taps (${TAPS}) into
/// `acc`, which starts at ${INIT}; ${STORE} stores the result.
constexpr const char *kPool = R"(
const long long nc = i / (OH * OW);
const long long oh = (i / OW) % OH;
const long long ow = i % OW;
${T} acc = ${INIT};
${TAPS}
${STORE}
)";

/// A pooling on the CPU: the planes split among the threads, each output
/// row's elements in order (no index divisions; the same taps as kPool).
constexpr const char *kPoolCpp = R"(
kiln_parallel_for(N * C, [&](long long begin, long long end) {
  for (long long nc = begin; nc < end; ++nc)
    for (long long oh = 0; oh < OH; ++oh)
      for (long long ow = 0; ow < OW; ++ow) {
        ${T} acc = ${INIT};
        ${TAPS}
        ${STORE}
      }
});
)";

LogicalResult emitPool(OpaqueEmitter &e, Operation *op, Value input,
                       ArrayRef<int64_t> kernel, ArrayRef<int64_t> stride,
                       ArrayRef<int64_t> padding, bool max,
                       raw_indented_ostream &os) {
  FailureOr<PoolSizes> s =
      poolSizes(e, input, op->getResult(0), kernel, stride, padding);
  if (failed(s))
    return failure();
  Names t = namesOf(op);
  e.resultDims = {"N", "C", "OH", "OW"};
  Type type = elementOf(op->getResult(0));
  // The plane index n * C + c is all the loads need.
  std::vector<std::pair<StringRef, std::string>> values;
  std::string result; // the window's value
  if (max) {
    // As std::max(acc, v): NaN inputs are skipped, and a window entirely
    // in the padding gives -inf.
    values = {
        {"T", t.type},
        {"INIT", fill("-(${T})KILN_OPAQUE_INFINITY", {{"T", t.type}})},
        {"TAPS", render(kWindowTaps,
                        {{"ROW", "ih"},
                         {"COL", "iw"},
                         {"TAP", "acc = acc < in0[at] ? in0[at] : acc;"}})}};
    result = "acc";
  } else {
    // The padding counts in the divisor.
    values = {{"T", t.type},
              {"INIT", t.zero},
              {"TAPS", render(kWindowTaps, {{"ROW", "ih"},
                                            {"COL", "iw"},
                                            {"TAP", "acc += in0[at];"}})}};
    result = "acc / " + literal(double(kernel[0] * kernel[1]), type);
  }
  FailureOr<std::string> store = e.store(
      e.target == Target::cpp ? "(nc * OH + oh) * OW + ow" : "i", result);
  if (failed(store))
    return failure();
  values.push_back({"STORE", *store});
  if (e.target == Target::cpp) {
    print(os, kPoolCpp, values);
    return success();
  }
  e.elementLoop(os, "N * C * OH * OW", render(kPool, values));
  e.launchPerElement({s->N, s->C, s->OH, s->OW});
  return success();
}

/// One input element of max_pool2d_grad: the windows containing it
/// (kWindowLoops), in each the first maximum (kWindowTaps over (th, tw)).
constexpr const char *kMaxPool2dGrad = R"(
const long long nc = i / (H * W);
const long long ih = (i / W) % H;
const long long iw = i % W;
// the gradients of the windows containing (ih, iw) whose first
// maximum it is (in row-major window order; padding never wins)
${T} acc = ${ZERO};
${WINDOWS}
${STORE}
)";
constexpr const char *kMaxPool2dGradWindow = R"(
long long argmax = -1;
${T} best = ${ZERO};
${TAPS}
if (argmax == i)
  acc += in1[(nc * OH + oh) * OW + ow];
)";
constexpr const char *kMaxPool2dGradTap = R"(
{
  // selects, not a branch: which tap wins depends on the data
  const ${T} v = in0[at];
  const bool better = (argmax < 0) | (v > best);
  argmax = kiln_select(better, at, argmax);
  best = kiln_select(better, v, best);
}
)";

/// max_pool2d_grad on the CPU when no two windows overlap: per plane, zeros,
/// then each window's gradient at its first maximum.
constexpr const char *kMaxPool2dGradScatterCpp = R"(
// No two windows overlap (stride >= kernel), so each input position gets
// the gradient of the one window it may be in, if it is that window's first
// maximum (in row-major window order; padding never wins), else zero: per
// plane, zeros, then each window's gradient at its first maximum.
kiln_parallel_for(N * C, [&](long long begin, long long end) {
  ${PLANE}
  for (long long nc = begin; nc < end; ++nc) {
    ${T} *__restrict__ result = ${RESULT};
    for (long long e = 0; e < H * W; ++e)
      result[e] = ${ZERO};
    for (long long oh = 0; oh < OH; ++oh)
      for (long long ow = 0; ow < OW; ++ow) {
        long long argmax = -1;
        ${T} best = ${ZERO};
        ${TAPS}
        if (argmax >= 0)
          result[argmax - nc * H * W] = in1[(nc * OH + oh) * OW + ow];
      }
    ${EPILOGUE}
  }
});
)";

LogicalResult emitMaxPool2dGrad(OpaqueEmitter &e, MaxPool2dGradOp op,
                                raw_indented_ostream &os) {
  FailureOr<PoolSizes> s =
      poolSizes(e, op.getInput(), op.getGrad(), op.getKernel(), op.getStride(),
                op.getPadding());
  if (failed(s))
    return failure();
  Names t = namesOf(op);
  e.resultDims = {"N", "C", "H", "W"};
  std::string taps = render(
      kWindowTaps, {{"ROW", "th"},
                    {"COL", "tw"},
                    {"TAP", render(kMaxPool2dGradTap, {{"T", t.type}})}});
  ArrayRef<int64_t> kernel = op.getKernel(), stride = op.getStride();
  if (e.target == Target::cpp && stride[0] >= kernel[0] &&
      stride[1] >= kernel[1]) {
    // With an epilogue, each plane in the thread's scratch, then the
    // epilogue over it.
    std::string plane, result = "out0 + nc * H * W", epilogue;
    if (e.epilogue) {
      plane = fill(
          "${T} *__restrict__ plane = kiln_gemm_thread_scratch<${T}>(H * W);",
          {{"T", t.type}});
      result = "plane";
      FailureOr<std::string> code =
          e.epilogueRange("nc * H * W", "H * W", "plane");
      if (failed(code))
        return failure();
      epilogue = *code;
    }
    print(os, kMaxPool2dGradScatterCpp,
          {{"T", t.type},
           {"ZERO", t.zero},
           {"TAPS", taps},
           {"PLANE", plane},
           {"RESULT", result},
           {"EPILOGUE", epilogue}});
    return success();
  }
  std::string window = render(
      kMaxPool2dGradWindow, {{"T", t.type}, {"ZERO", t.zero}, {"TAPS", taps}});
  FailureOr<std::string> store = e.store("i", "acc");
  if (failed(store))
    return failure();
  e.elementLoop(os, "N * C * H * W",
                render(kMaxPool2dGrad,
                       {{"T", t.type},
                        {"ZERO", t.zero},
                        {"WINDOWS", render(kWindowLoops, {{"BODY", window}})},
                        {"STORE", *store}}));
  e.launchPerElement({s->N, s->C, s->H, s->W});
  return success();
}

/// One input element of avg_pool2d_grad: a share of each window containing
/// it (kWindowLoops).
constexpr const char *kAvgPool2dGrad = R"(
const long long nc = i / (H * W);
const long long ih = (i / W) % H;
const long long iw = i % W;
// a share of each window containing (ih, iw); the padding counts
${T} acc = ${ZERO};
${WINDOWS}
${STORE}
)";

LogicalResult emitAvgPool2dGrad(OpaqueEmitter &e, AvgPool2dGradOp op,
                                raw_indented_ostream &os) {
  // The input sizes are the result's; OH and OW are the gradient's.
  FailureOr<PoolSizes> s =
      poolSizes(e, op.getResult(), op.getGrad(), op.getKernel(), op.getStride(),
                op.getPadding());
  if (failed(s))
    return failure();
  Names t = namesOf(op);
  e.resultDims = {"N", "C", "H", "W"};
  Type type = elementOf(op.getResult());
  std::string area =
      literal(double(op.getKernel()[0] * op.getKernel()[1]), type);
  std::string share =
      fill("acc += in0[(nc * OH + oh) * OW + ow] / ${AREA};", {{"AREA", area}});
  FailureOr<std::string> store = e.store("i", "acc");
  if (failed(store))
    return failure();
  e.elementLoop(os, "N * C * H * W",
                render(kAvgPool2dGrad,
                       {{"T", t.type},
                        {"ZERO", t.zero},
                        {"WINDOWS", render(kWindowLoops, {{"BODY", share}})},
                        {"STORE", *store}}));
  e.launchPerElement({s->N, s->C, s->H, s->W});
  return success();
}

//===----------------------------------------------------------------------===//
// Embedding
//===----------------------------------------------------------------------===//

/// Declares P, the number of indices (the product of `indices`' sizes).
FailureOr<SmallVector<Size>> indexSizes(OpaqueEmitter &e, Value indices) {
  auto type = llvm::cast<RankedTensorType>(indices.getType());
  SmallVector<Size> sizes;
  for (unsigned d = 0; d < type.getRank(); ++d) {
    FailureOr<Size> s = e.size("P" + std::to_string(d), indices, d);
    if (failed(s))
      return failure();
    sizes.push_back(*s);
  }
  return sizes;
}

/// One output element of an embedding.
constexpr const char *kEmbedding = R"(
const long long p = i / D;
const long long d = i % D;
const long long row = (long long)in1[p];
// the reference executor rejects an index out of range; here it
// reads as a zero row
out0[i] = row >= 0 && row < V ? in0[row * D + d] : ${ZERO};
)";

LogicalResult emitEmbedding(OpaqueEmitter &e, EmbeddingOp op,
                            raw_indented_ostream &os) {
  FailureOr<Size> rows = e.size("V", op.getWeight(), 0);
  FailureOr<Size> dim = e.size("D", op.getWeight(), 1);
  FailureOr<SmallVector<Size>> positions = indexSizes(e, op.getIndices());
  if (failed(rows) || failed(dim) || failed(positions))
    return failure();
  Names t = namesOf(op);
  SmallVector<Size> all(*positions);
  all.push_back(*dim);
  e.elementLoop(os, OpaqueEmitter::product(all),
                render(kEmbedding, {{"ZERO", t.zero}}));
  e.launchPerElement(all);
  return success();
}

/// Element (row, d) of an embedding gradient: ${GATHER} (kGather) sums the
/// gradient rows of the positions that look up `row`. On the GPU one block
/// per table row, its threads over the row's elements.
constexpr const char *kEmbeddingGradCuda = R"(
const long long positions = ${POSITIONS};
for (long long row = blockIdx.x; row < V; row += gridDim.x)
  for (long long d = threadIdx.x; d < D; d += blockDim.x) {
    ${GATHER}
  }
)";
constexpr const char *kEmbeddingGradCpp = R"(
const long long positions = ${POSITIONS};
for (long long row = 0; row < V; ++row)
  for (long long d = 0; d < D; ++d) {
    ${GATHER}
  }
)";
constexpr const char *kGather = R"(
${T} acc = ${ZERO};
for (long long p = 0; p < positions; ++p)
  if ((long long)in0[p] == row)
    acc += in1[p * D + d];
out0[row * D + d] = acc;
)";

LogicalResult emitEmbeddingGrad(OpaqueEmitter &e, EmbeddingGradOp op,
                                raw_indented_ostream &os) {
  FailureOr<Size> rows = e.size("V", op.getResult(), 0);
  FailureOr<Size> dim = e.size("D", op.getResult(), 1);
  FailureOr<SmallVector<Size>> positions = indexSizes(e, op.getIndices());
  if (failed(rows) || failed(dim) || failed(positions))
    return failure();
  Names t = namesOf(op);
  // Element (row, d) gathers the gradient rows of the positions that look
  // up `row`, in position order; rows never looked up get zero.
  std::string gather = render(kGather, {{"T", t.type}, {"ZERO", t.zero}});
  if (e.target == Target::cuda) {
    // One block per table row, its threads over the row's elements: the
    // threads of a block read the same index at once (one broadcast load)
    // and neighbouring gradient elements (coalesced).
    e.generated.launch.grid[0] = OpaqueEmitter::extent({*rows}, 1);
    e.generated.launch.block[0] = e.block;
  }
  print(
      os, e.target == Target::cuda ? kEmbeddingGradCuda : kEmbeddingGradCpp,
      {{"POSITIONS", OpaqueEmitter::product(*positions)}, {"GATHER", gather}});
  return success();
}

} // namespace

FailureOr<GeneratedKernel> kiln::codegen::generateOpaque(KernelOp kernel,
                                                         llvm::StringRef symbol,
                                                         Target target) {
  // Attention and its gradients have several results and a generator of
  // their own.
  auto ops = kernel.getBlock().without_terminator();
  if (std::distance(ops.begin(), ops.end()) == 1 &&
      llvm::isa<AttentionOp, AttentionGradQOp, AttentionGradKvOp>(*ops.begin()))
    return generateAttention(kernel, symbol, target);
  GeneratedKernel generated;
  if (failed(initGenerated(kernel, symbol, generated)))
    return failure();
  // One op, whose result is the kernel's only result, or one that
  // TakesEpilogue first, then scalar ops on its result's shape.
  // (Constants are cloned in first.)
  Operation *yield = kernel.getBlock().getTerminator();
  Operation *op = nullptr;
  unsigned main = 0, scalar = 0;
  for (Operation &o : ops) {
    if (isScalarOp(&o)) {
      // scalar ops after the main op, constants anywhere
      scalar += 1;
      if (!op && !llvm::isa<ConstantOp>(o))
        main = 2;
    } else {
      op = &o;
      main += 1;
    }
  }
  auto resultShape = [](Value v) {
    return llvm::cast<RankedTensorType>(v.getType()).getShape();
  };
  bool epilogue = scalar > 0;
  bool valid =
      main == 1 &&
      (epilogue ? op->hasTrait<kiln::OpTrait::TakesEpilogue>() &&
                      llvm::all_of(yield->getOperands(),
                                   [&](Value v) {
                                     return resultShape(v) ==
                                            resultShape(op->getResult(0));
                                   })
                : kernel.getNumResults() == 1 &&
                      yield->getOperand(0) == op->getResult(0));
  if (!valid)
    return kernel.emitError("an opaque kernel must hold one op whose result "
                            "it yields, or one that takes an epilogue and "
                            "scalar ops on its result's shape ('")
           << kernel.getName() << "')";
  OpaqueEmitter e(kernel, op, target, generated);
  e.epilogue = epilogue;
  if (target == Target::cuda &&
      !llvm::isa<Conv2dOp, Conv2dGradInputOp, Conv2dGradWeightOp>(op)) {
    FailureOr<ElementwiseScheduleAttr> schedule =
        requireSchedule<ElementwiseScheduleAttr>(kernel, kCudaTarget);
    if (failed(schedule))
      return failure();
    e.block = schedule->getBlock();
  }
  Code body;
  raw_indented_ostream &os = body.os;
  LogicalResult result =
      llvm::TypeSwitch<Operation *, LogicalResult>(op)
          .Case([&](ReshapeOp o) { return emitReshape(e, o, os); })
          .Case([&](TransposeOp o) { return emitTranspose(e, o, os); })
          .Case([&](Conv2dOp o) { return emitConv2d(e, o, os); })
          .Case([&](Conv2dGradInputOp o) {
            return emitConv2dGradInput(e, o, os);
          })
          .Case([&](Conv2dGradWeightOp o) {
            return emitConv2dGradWeight(e, o, os);
          })
          .Case([&](MaxPool2dOp o) {
            return emitPool(e, o, o.getInput(), o.getKernel(), o.getStride(),
                            o.getPadding(), /*max=*/true, os);
          })
          .Case([&](AvgPool2dOp o) {
            return emitPool(e, o, o.getInput(), o.getKernel(), o.getStride(),
                            o.getPadding(), /*max=*/false, os);
          })
          .Case([&](MaxPool2dGradOp o) { return emitMaxPool2dGrad(e, o, os); })
          .Case([&](AvgPool2dGradOp o) { return emitAvgPool2dGrad(e, o, os); })
          .Case([&](EmbeddingOp o) { return emitEmbedding(e, o, os); })
          .Case([&](EmbeddingGradOp o) { return emitEmbeddingGrad(e, o, os); })
          .Default([&](Operation *) {
            return op->emitError("the opaque kernel generator does not "
                                 "handle '")
                   << op->getName() << "'";
          });
  if (failed(result))
    return failure();
  generated.source = e.finish(body.str());
  return generated;
}

std::string kiln::codegen::opaquePreamble(Target target) {
  // Both targets: sliding windows; CUDA: the block sum (codegen/device).
  std::string text = device::kDeviceWindowH;
  if (target == Target::cuda)
    text += device::kDeviceOpaqueCuh;
  return text;
}
