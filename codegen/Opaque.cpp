//===- Opaque.cpp - kernels of their own: layout, conv, pool, embedding ---===//
//
// An opaque kernel holds one op that no other scheme fits. Each op gets a
// direct kernel, written so that the CPU and the GPU run the same index
// arithmetic and only the loop around it differs:
//
//   reshape            a flat copy;
//   transpose          per output element, the input element at the
//                      permuted multi-index;
//   conv2d             per output element, the sum over channels and taps
//                      of its window;
//   conv2d_grad_input  per input element, the sum over the output positions
//                      whose windows read it (a gather: no atomics);
//   conv2d_grad_weight per weight element, the sum over the batch and the
//                      output positions; on the GPU one block per weight
//                      element, reduced with warp shuffles;
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
//
//===----------------------------------------------------------------------===//

#include "codegen/CodegenUtils.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

namespace {

/// Threads a block: every scheme here uses 256 (8 warps).
constexpr unsigned kBlock = 256;

/// One size a kernel uses: a named constant of the generated code.
struct Size {
  std::string name;
  /// The value when static; ShapedType::kDynamic otherwise.
  int64_t value = 0;
  /// For a dynamic size, its index in GeneratedKernel::dynamicDims.
  unsigned dynamicIndex = 0;
  bool isDynamic() const { return ShapedType::isDynamic(value); }
};

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

  /// The statements splitting the flat index `flat` of shape `sizes` into
  /// `const long long <index[k]> = ...;` lines, innermost dimension last.
  static std::string split(StringRef flat, ArrayRef<Size> sizes,
                           ArrayRef<std::string> index, StringRef indent) {
    std::string text;
    for (size_t k = 0; k < sizes.size(); ++k) {
      std::string inner = product(sizes.drop_front(k + 1));
      std::string value = flat.str();
      if (k + 1 < sizes.size())
        value = k == 0 ? value + " / (" + inner + ")"
                       : "(" + value + " / (" + inner + "))";
      if (k > 0)
        value += " % " + sizes[k].name;
      text +=
          indent.str() + "const long long " + index[k] + " = " + value + ";\n";
    }
    return text;
  }

  /// The whole kernel: comment, signature, sizes, `body`, entry point.
  std::string finish(StringRef body) {
    std::string text;
    llvm::raw_string_ostream os(text);
    writeKernelComment(os, kernel);
    os << signature(kernel, generated, target) << " {\n";
    os << "  // " << op->getName().stripDialect() << " at " << locationOf(op)
       << "\n";
    if (!declarations.empty())
      os << "  const long long " << llvm::join(declarations, ", ") << ";\n";
    os << body << "}\n";
    if (target == Target::cpp)
      os << cppEntry(kernel, generated);
    return text;
  }

  /// `body` once per element of a `count`-element result, the flat index in
  /// `i`: grid-stride on the GPU, a loop on the CPU.
  std::string elementLoop(StringRef count, StringRef body) {
    std::string text = "  const long long count = " + count.str() + ";\n";
    if (target == Target::cuda)
      text += "  for (long long i = blockIdx.x * (long long)blockDim.x + "
              "threadIdx.x; i < count;\n       i += (long long)gridDim.x * "
              "blockDim.x) {\n";
    else
      text += "  for (long long i = 0; i < count; ++i) {\n";
    return text + body.str() + "  }\n";
  }

  /// One thread per element of `sizes`, 256 a block.
  void launchPerElement(ArrayRef<Size> sizes) {
    generated.launch.grid[0] = extent(sizes, kBlock);
    generated.launch.block[0] = kBlock;
  }

  KernelOp kernel;
  Operation *op;
  Target target;
  GeneratedKernel &generated;
  /// "NAME = value" of each named size, in order.
  SmallVector<std::string> declarations;
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

LogicalResult emitReshape(OpaqueEmitter &e, ReshapeOp op, std::string &body) {
  // Row-major order is kept: a flat copy of the input's elements.
  auto type = llvm::cast<RankedTensorType>(op.getInput().getType());
  SmallVector<Size> sizes;
  for (unsigned d = 0; d < type.getRank(); ++d) {
    FailureOr<Size> s = e.size("D" + std::to_string(d), op.getInput(), d);
    if (failed(s))
      return failure();
    sizes.push_back(*s);
  }
  body =
      e.elementLoop(OpaqueEmitter::product(sizes), "    out0[i] = in0[i];\n");
  e.launchPerElement(sizes);
  return success();
}

LogicalResult emitTranspose(OpaqueEmitter &e, TransposeOp op,
                            std::string &body) {
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
  std::string loop = "    // the output index (" + llvm::join(index, ", ") +
                     ") reads input dimensions (";
  SmallVector<std::string> permText;
  for (int64_t p : perm)
    permText.push_back("D" + std::to_string(p));
  loop += llvm::join(permText, ", ") + ")\n";
  loop += OpaqueEmitter::split("i", out, index, "    ");
  SmallVector<std::string> terms;
  for (auto [j, p] : llvm::enumerate(perm)) {
    ArrayRef<Size> inner = ArrayRef<Size>(in).drop_front(p + 1);
    terms.push_back(inner.empty() ? index[j]
                                  : index[j] + " * (" +
                                        OpaqueEmitter::product(inner) + ")");
  }
  loop += "    out0[i] = in0[" +
          (terms.empty() ? std::string("0") : llvm::join(terms, " + ")) +
          "];\n";
  body = e.elementLoop(OpaqueEmitter::product(in), loop);
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

LogicalResult emitConv2d(OpaqueEmitter &e, Conv2dOp op, std::string &body) {
  FailureOr<ConvSizes> s =
      convSizes(e, op.getInput(), op.getWeight(), op.getResult(),
                op.getStride(), op.getPadding());
  if (failed(s))
    return failure();
  Names t = namesOf(op);
  std::string loop = OpaqueEmitter::split("i", {s->N, s->O, s->OH, s->OW},
                                          {"n", "o", "oh", "ow"}, "    ") +
                     "    " + t.type + " acc = " + t.zero +
                     ";\n"
                     "    for (long long c = 0; c < C; ++c)\n"
                     "      for (long long kh = 0; kh < KH; ++kh) {\n"
                     "        const long long ih = oh * SH - PH + kh;\n"
                     "        if (ih < 0 || ih >= H)\n"
                     "          continue; // zero padding\n"
                     "        for (long long kw = 0; kw < KW; ++kw) {\n"
                     "          const long long iw = ow * SW - PW + kw;\n"
                     "          if (iw < 0 || iw >= W)\n"
                     "            continue;\n"
                     "          acc += in0[" +
                     kInputAt + "] * in1[" + kWeightAt +
                     "];\n"
                     "        }\n"
                     "      }\n"
                     "    out0[i] = acc;\n";
  body = e.elementLoop("N * O * OH * OW", loop);
  e.launchPerElement({s->N, s->O, s->OH, s->OW});
  return success();
}

/// The loops over the output rows `oh` (and columns `ow`) whose windows
/// contain input row `ih` (column `iw`), opened at `indent`; each level adds
/// two spaces. kiln_window_first/last are in the preamble.
std::string windowLoops(StringRef indent) {
  std::string i = indent.str();
  return i + "const long long ohFirst = kiln_window_first(ih, PH, KH, SH);\n" +
         i + "const long long ohLast = kiln_window_last(ih, PH, SH, OH);\n" +
         i + "const long long owFirst = kiln_window_first(iw, PW, KW, SW);\n" +
         i + "const long long owLast = kiln_window_last(iw, PW, SW, OW);\n" +
         i + "for (long long oh = ohFirst; oh <= ohLast; ++oh)\n" + i +
         "  for (long long ow = owFirst; ow <= owLast; ++ow) {\n";
}

LogicalResult emitConv2dGradInput(OpaqueEmitter &e, Conv2dGradInputOp op,
                                  std::string &body) {
  // The input sizes are the result's; OH and OW are the gradient's.
  FailureOr<ConvSizes> s =
      convSizes(e, op.getResult(), op.getWeight(), op.getGrad(), op.getStride(),
                op.getPadding());
  if (failed(s))
    return failure();
  Names t = namesOf(op);
  std::string loop =
      OpaqueEmitter::split("i", {s->N, s->C, s->H, s->W},
                           {"n", "c", "ih", "iw"}, "    ") +
      "    // every (output, tap) pair that reads input (n, c, ih, iw)\n"
      "    " +
      t.type + " acc = " + t.zero +
      ";\n"
      "    for (long long o = 0; o < O; ++o) {\n" +
      windowLoops("      ") +
      "          const long long kh = ih + PH - oh * SH;\n"
      "          const long long kw = iw + PW - ow * SW;\n"
      "          acc += in0[" +
      kOutputAt + "] * in1[" + kWeightAt +
      "];\n"
      "        }\n"
      "    }\n"
      "    out0[i] = acc;\n";
  body = e.elementLoop("N * C * H * W", loop);
  e.launchPerElement({s->N, s->C, s->H, s->W});
  return success();
}

LogicalResult emitConv2dGradWeight(OpaqueEmitter &e, Conv2dGradWeightOp op,
                                   std::string &body) {
  // O, KH and KW are the result's (the weight's shape); OH and OW the
  // gradient's.
  FailureOr<ConvSizes> s =
      convSizes(e, op.getInput(), op.getResult(), op.getGrad(), op.getStride(),
                op.getPadding());
  if (failed(s))
    return failure();
  Names t = namesOf(op);
  std::string weightIndex = OpaqueEmitter::split(
      "e", {s->O, s->C, s->KH, s->KW}, {"o", "c", "kh", "kw"}, "    ");
  // The term of reduction index r = (n, oh, ow), at `indent`.
  auto term = [&](StringRef indent) {
    std::string i = indent.str();
    return OpaqueEmitter::split("r", {s->N, s->OH, s->OW}, {"n", "oh", "ow"},
                                indent) +
           i + "const long long ih = oh * SH - PH + kh;\n" + i +
           "const long long iw = ow * SW - PW + kw;\n" + i +
           "if (ih >= 0 && ih < H && iw >= 0 && iw < W)\n" + i +
           "  acc += in1[" + kOutputAt + "] * in0[" + kInputAt + "];\n";
  };
  std::string text = "  const long long weights = O * C * KH * KW;\n"
                     "  const long long terms = N * OH * OW;\n";
  if (e.target == Target::cuda) {
    // One block per weight element: each thread sums a strided part of the
    // batch and output positions, then the block adds the 256 partial sums
    // in a fixed tree (deterministic).
    text +=
        "  __shared__ " + t.type + " partial[" + std::to_string(kBlock / 32) +
        "];\n"
        "  for (long long e = blockIdx.x; e < weights; e += gridDim.x) {\n" +
        weightIndex + "    " + t.type + " acc = " + t.zero +
        ";\n"
        "    for (long long r = threadIdx.x; r < terms; r += blockDim.x) "
        "{\n" +
        term("      ") +
        "    }\n"
        "    acc = kiln_opaque_block_sum(acc, partial);\n"
        "    if (threadIdx.x == 0)\n"
        "      out0[e] = acc;\n"
        "  }\n";
    e.generated.launch.grid[0] =
        OpaqueEmitter::extent({s->O, s->C, s->KH, s->KW}, /*perBlock=*/1);
    e.generated.launch.block[0] = kBlock;
  } else {
    text += "  for (long long e = 0; e < weights; ++e) {\n" + weightIndex +
            "    " + t.type + " acc = " + t.zero +
            ";\n"
            "    for (long long r = 0; r < terms; ++r) {\n" +
            term("      ") +
            "    }\n"
            "    out0[e] = acc;\n"
            "  }\n";
  }
  body = text;
  return success();
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
/// tap's row and column are named `row` and `col`, its flat input index
/// `at`; `inner` runs per tap.
std::string windowTaps(StringRef indent, StringRef row, StringRef col,
                       StringRef inner) {
  std::string i = indent.str(), r = row.str(), c = col.str();
  return i + "for (long long kh = 0; kh < KH; ++kh) {\n" + i +
         "  const long long " + r + " = oh * SH - PH + kh;\n" + i + "  if (" +
         r + " < 0 || " + r + " >= H)\n" + i + "    continue; // padding\n" +
         i + "  for (long long kw = 0; kw < KW; ++kw) {\n" + i +
         "    const long long " + c + " = ow * SW - PW + kw;\n" + i +
         "    if (" + c + " < 0 || " + c + " >= W)\n" + i +
         "      continue;\n" + i + "    const long long at = (nc * H + " + r +
         ") * W + " + c + ";\n" + inner.str() + i + "  }\n" + i + "}\n";
}

LogicalResult emitPool(OpaqueEmitter &e, Operation *op, Value input,
                       ArrayRef<int64_t> kernel, ArrayRef<int64_t> stride,
                       ArrayRef<int64_t> padding, bool max, std::string &body) {
  FailureOr<PoolSizes> s =
      poolSizes(e, input, op->getResult(0), kernel, stride, padding);
  if (failed(s))
    return failure();
  Names t = namesOf(op);
  Type type = elementOf(op->getResult(0));
  // The plane index n * C + c is all the loads need.
  std::string loop = "    const long long nc = i / (OH * OW);\n"
                     "    const long long oh = (i / OW) % OH;\n"
                     "    const long long ow = i % OW;\n";
  if (max) {
    // As std::max(acc, v): NaN inputs are skipped, and a window entirely
    // in the padding gives -inf.
    loop += "    " + t.type + " acc = " + "-(" + t.type +
            ")KILN_OPAQUE_INFINITY" + ";\n" +
            windowTaps("    ", "ih", "iw",
                       "        acc = acc < in0[at] ? in0[at] : acc;\n");
    loop += "    out0[i] = acc;\n";
  } else {
    // The padding counts in the divisor.
    loop += "    " + t.type + " acc = " + t.zero + ";\n" +
            windowTaps("    ", "ih", "iw", "        acc += in0[at];\n");
    loop += "    out0[i] = acc / " +
            literal(double(kernel[0] * kernel[1]), type) + ";\n";
  }
  body = e.elementLoop("N * C * OH * OW", loop);
  e.launchPerElement({s->N, s->C, s->OH, s->OW});
  return success();
}

LogicalResult emitMaxPool2dGrad(OpaqueEmitter &e, MaxPool2dGradOp op,
                                std::string &body) {
  FailureOr<PoolSizes> s =
      poolSizes(e, op.getInput(), op.getGrad(), op.getKernel(), op.getStride(),
                op.getPadding());
  if (failed(s))
    return failure();
  Names t = namesOf(op);
  std::string loop =
      "    const long long nc = i / (H * W);\n"
      "    const long long ih = (i / W) % H;\n"
      "    const long long iw = i % W;\n"
      "    // the gradients of the windows containing (ih, iw) whose first\n"
      "    // maximum it is (in row-major window order; padding never wins)\n"
      "    " +
      t.type + " acc = " + t.zero + ";\n" + windowLoops("    ") +
      "        long long argmax = -1;\n"
      "        " +
      t.type + " best = " + t.zero + ";\n" +
      windowTaps("        ", "th", "tw",
                 "            if (argmax < 0 || in0[at] > best) {\n"
                 "              argmax = at;\n"
                 "              best = in0[at];\n"
                 "            }\n") +
      "        if (argmax == i)\n"
      "          acc += in1[(nc * OH + oh) * OW + ow];\n"
      "      }\n"
      "    out0[i] = acc;\n";
  body = e.elementLoop("N * C * H * W", loop);
  e.launchPerElement({s->N, s->C, s->H, s->W});
  return success();
}

LogicalResult emitAvgPool2dGrad(OpaqueEmitter &e, AvgPool2dGradOp op,
                                std::string &body) {
  // The input sizes are the result's; OH and OW are the gradient's.
  FailureOr<PoolSizes> s =
      poolSizes(e, op.getResult(), op.getGrad(), op.getKernel(), op.getStride(),
                op.getPadding());
  if (failed(s))
    return failure();
  Names t = namesOf(op);
  Type type = elementOf(op.getResult());
  std::string area =
      literal(double(op.getKernel()[0] * op.getKernel()[1]), type);
  std::string loop =
      "    const long long nc = i / (H * W);\n"
      "    const long long ih = (i / W) % H;\n"
      "    const long long iw = i % W;\n"
      "    // a share of each window containing (ih, iw); the padding counts\n"
      "    " +
      t.type + " acc = " + t.zero + ";\n" + windowLoops("    ") +
      "        acc += in0[(nc * OH + oh) * OW + ow] / " + area +
      ";\n"
      "      }\n"
      "    out0[i] = acc;\n";
  body = e.elementLoop("N * C * H * W", loop);
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

LogicalResult emitEmbedding(OpaqueEmitter &e, EmbeddingOp op,
                            std::string &body) {
  FailureOr<Size> rows = e.size("V", op.getWeight(), 0);
  FailureOr<Size> dim = e.size("D", op.getWeight(), 1);
  FailureOr<SmallVector<Size>> positions = indexSizes(e, op.getIndices());
  if (failed(rows) || failed(dim) || failed(positions))
    return failure();
  Names t = namesOf(op);
  std::string loop =
      "    const long long p = i / D;\n"
      "    const long long d = i % D;\n"
      "    const long long row = (long long)in1[p];\n"
      "    // the reference executor rejects an index out of range; here it\n"
      "    // reads as a zero row\n"
      "    out0[i] = row >= 0 && row < V ? in0[row * D + d] : " +
      t.zero + ";\n";
  SmallVector<Size> all(*positions);
  all.push_back(*dim);
  body = e.elementLoop(OpaqueEmitter::product(all), loop);
  e.launchPerElement(all);
  return success();
}

LogicalResult emitEmbeddingGrad(OpaqueEmitter &e, EmbeddingGradOp op,
                                std::string &body) {
  FailureOr<Size> rows = e.size("V", op.getResult(), 0);
  FailureOr<Size> dim = e.size("D", op.getResult(), 1);
  FailureOr<SmallVector<Size>> positions = indexSizes(e, op.getIndices());
  if (failed(rows) || failed(dim) || failed(positions))
    return failure();
  Names t = namesOf(op);
  // Element (row, d) gathers the gradient rows of the positions that look
  // up `row`, in position order; rows never looked up get zero.
  auto gather = [&](StringRef indent) {
    std::string i = indent.str();
    return i + t.type + " acc = " + t.zero + ";\n" + i +
           "for (long long p = 0; p < positions; ++p)\n" + i +
           "  if ((long long)in0[p] == row)\n" + i +
           "    acc += in1[p * D + d];\n" + i + "out0[row * D + d] = acc;\n";
  };
  std::string text =
      "  const long long positions = " + OpaqueEmitter::product(*positions) +
      ";\n";
  if (e.target == Target::cuda) {
    // One block per table row, its threads over the row's elements: the
    // threads of a block read the same index at once (one broadcast load)
    // and neighbouring gradient elements (coalesced).
    text += "  for (long long row = blockIdx.x; row < V; row += gridDim.x)\n"
            "    for (long long d = threadIdx.x; d < D; d += blockDim.x) {\n" +
            gather("      ") + "    }\n";
    e.generated.launch.grid[0] = OpaqueEmitter::extent({*rows}, 1);
    unsigned block = kBlock;
    if (!dim->isDynamic())
      block = std::min<int64_t>(kBlock, (dim->value + 31) / 32 * 32);
    e.generated.launch.block[0] = std::max(block, 32u);
  } else {
    text += "  for (long long row = 0; row < V; ++row)\n"
            "    for (long long d = 0; d < D; ++d) {\n" +
            gather("      ") + "    }\n";
  }
  body = text;
  return success();
}

} // namespace

FailureOr<GeneratedKernel> kiln::codegen::generateOpaque(KernelOp kernel,
                                                         llvm::StringRef symbol,
                                                         Target target) {
  GeneratedKernel generated;
  if (failed(initGenerated(kernel, symbol, generated)))
    return failure();
  // Exactly one op, whose result is the kernel's only result.
  auto ops = kernel.getBlock().without_terminator();
  Operation *yield = kernel.getBlock().getTerminator();
  if (std::distance(ops.begin(), ops.end()) != 1 ||
      kernel.getNumResults() != 1 ||
      yield->getOperand(0) != ops.begin()->getResult(0))
    return kernel.emitError("an opaque kernel must hold one op whose result "
                            "it yields ('")
           << kernel.getName() << "')";
  Operation *op = &*ops.begin();
  OpaqueEmitter e(kernel, op, target, generated);
  std::string body;
  LogicalResult result =
      llvm::TypeSwitch<Operation *, LogicalResult>(op)
          .Case([&](ReshapeOp o) { return emitReshape(e, o, body); })
          .Case([&](TransposeOp o) { return emitTranspose(e, o, body); })
          .Case([&](Conv2dOp o) { return emitConv2d(e, o, body); })
          .Case([&](Conv2dGradInputOp o) {
            return emitConv2dGradInput(e, o, body);
          })
          .Case([&](Conv2dGradWeightOp o) {
            return emitConv2dGradWeight(e, o, body);
          })
          .Case([&](MaxPool2dOp o) {
            return emitPool(e, o, o.getInput(), o.getKernel(), o.getStride(),
                            o.getPadding(), /*max=*/true, body);
          })
          .Case([&](AvgPool2dOp o) {
            return emitPool(e, o, o.getInput(), o.getKernel(), o.getStride(),
                            o.getPadding(), /*max=*/false, body);
          })
          .Case(
              [&](MaxPool2dGradOp o) { return emitMaxPool2dGrad(e, o, body); })
          .Case(
              [&](AvgPool2dGradOp o) { return emitAvgPool2dGrad(e, o, body); })
          .Case([&](EmbeddingOp o) { return emitEmbedding(e, o, body); })
          .Case(
              [&](EmbeddingGradOp o) { return emitEmbeddingGrad(e, o, body); })
          .Default([&](Operation *) {
            return op->emitError("the opaque kernel generator does not "
                                 "handle '")
                   << op->getName() << "'";
          });
  if (failed(result))
    return failure();
  generated.source = e.finish(body);
  return generated;
}

std::string kiln::codegen::opaquePreamble(Target target) {
  // Windows of a sliding window op (pooling, convolution) along one axis:
  // window o covers positions [o * stride - pad, o * stride - pad + kernel).
  // NVRTC has no math.h (nor __builtin_huge_val) for infinity.
  std::string text = target == Target::cuda
                         ? "#define KILN_OPAQUE_INFINITY "
                           "__longlong_as_double(0x7ff0000000000000LL)\n"
                         : "#define KILN_OPAQUE_INFINITY HUGE_VAL\n";
  text += "// The first window (of a sliding window with `kernel`, `stride`,\n"
          "// `pad`) that contains position i; C division truncates, so a\n"
          "// negative numerator is already rounded up.\n"
          "KILN_FN long long kiln_window_first(long long i, long long pad,\n"
          "                                    long long kernel, long long "
          "stride) {\n"
          "  const long long t = i + pad - kernel + 1;\n"
          "  return t <= 0 ? 0 : (t + stride - 1) / stride;\n"
          "}\n"
          "// The last of `windows` windows that contains position i.\n"
          "KILN_FN long long kiln_window_last(long long i, long long pad,\n"
          "                                   long long stride, long long "
          "windows) {\n"
          "  const long long last = (i + pad) / stride;\n"
          "  return last < windows - 1 ? last : windows - 1;\n"
          "}\n";
  if (target == Target::cuda)
    text +=
        "// The sum of `value` over a block of whole warps (at most 1024\n"
        "// threads), in thread 0: each warp adds its values with shuffles,\n"
        "// then the first warp adds the warps' sums. The order is fixed, so\n"
        "// the result is the same on every run. `partial` holds blockDim.x "
        "/\n"
        "// 32 values in shared memory.\n"
        "template <typename T>\n"
        "KILN_FN T kiln_opaque_block_sum(T value, T *partial) {\n"
        "  for (int offset = 16; offset > 0; offset /= 2)\n"
        "    value += __shfl_down_sync(0xffffffffu, value, offset);\n"
        "  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;\n"
        "  if (lane == 0)\n"
        "    partial[warp] = value;\n"
        "  __syncthreads();\n"
        "  value = threadIdx.x < blockDim.x / 32 ? partial[threadIdx.x] : "
        "(T)0;\n"
        "  if (warp == 0)\n"
        "    for (int offset = 16; offset > 0; offset /= 2)\n"
        "      value += __shfl_down_sync(0xffffffffu, value, offset);\n"
        "  __syncthreads(); // `partial` is free again\n"
        "  return value;\n"
        "}\n";
  return text;
}
