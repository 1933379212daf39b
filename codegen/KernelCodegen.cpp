//===- KernelCodegen.cpp - kernels as CUDA C and C++ ----------------------===//
//
// An elementwise kernel iterates over the flat index i of its output shape S
// (dynamic sizes are parameters d0, d1, ...):
//
//   1. split i into the multi-index (i0, i1, ...) of S;
//   2. load each input once, indexing it by NumPy broadcasting against S
//      (a size-1 or missing dimension does not advance);
//   3. evaluate the fused ops in order as scalar C expressions, one local
//      per op, commented with the op's source location;
//   4. store every kernel result at i.
//
// f32 math uses the float functions (expf, ...), so the GPU computes in the
// type the IR says; the reference executor's double math is the oracle.
//
//===----------------------------------------------------------------------===//

#include "codegen/KernelCodegen.h"

#include "runtime/Random.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <set>

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

namespace {

/// The C type of an element type, or "" if unsupported.
std::string cType(Type type) {
  if (type.isF32())
    return "float";
  if (type.isF64())
    return "double";
  if (type.isInteger(1))
    return "bool";
  if (type.isInteger(32))
    return "int";
  if (type.isInteger(64))
    return "long long";
  return "";
}

Type elementOf(Value v) {
  return llvm::cast<RankedTensorType>(v.getType()).getElementType();
}

/// A literal of `type` that reads back exactly.
std::string literal(double value, Type type) {
  char text[40];
  if (type.isF32()) {
    std::snprintf(text, sizeof(text), "%.9g", value);
  } else if (type.isF64()) {
    std::snprintf(text, sizeof(text), "%.17g", value);
  } else if (type.isInteger(1)) {
    return value != 0 ? "true" : "false";
  } else {
    std::snprintf(text, sizeof(text), "%lld", static_cast<long long>(value));
    return std::string(text) + (type.isInteger(64) ? "LL" : "");
  }
  std::string s = text;
  if (s == "nan" || s == "-nan")
    return "__builtin_nan(\"\")";
  if (s == "inf" || s == "-inf")
    return (s[0] == '-' ? "-" : "") + std::string("__builtin_huge_val()");
  if (s.find_first_of(".e") == std::string::npos)
    s += ".0";
  return type.isF32() ? s + "f" : s;
}

/// A C math function for the element type: expf for f32, exp for f64.
std::string math(llvm::StringRef name, Type type) {
  return type.isF32() ? (name + "f").str() : name.str();
}

std::string locationOf(Operation *op) {
  if (auto loc = llvm::dyn_cast<FileLineColLoc>(op->getLoc()))
    return llvm::formatv("{0}:{1}:{2}", loc.getFilename().getValue(),
                         loc.getLine(), loc.getColumn())
        .str();
  return "?";
}

class Emitter {
public:
  Emitter(KernelOp kernel, Target target) : kernel(kernel), target(target) {}

  FailureOr<GeneratedKernel> emit(llvm::StringRef symbol);

private:
  /// The expression computing `op` from its operands' locals.
  FailureOr<std::string> expression(Operation *op);
  std::string size(int64_t dim) {
    int64_t d = shape[dim];
    return ShapedType::isDynamic(d) ? "d" + std::to_string(dim)
                                    : std::to_string(d) + "LL";
  }
  /// The flat index of `input` broadcast against the iteration shape.
  std::string broadcastIndex(RankedTensorType input);

  KernelOp kernel;
  Target target;
  SmallVector<int64_t> shape; // the iteration shape
  llvm::DenseMap<Value, std::string> locals;
  /// The dimensions of the multi-index that broadcast loads read.
  std::set<int64_t> usedDims;
  /// Whether a fused op draws random numbers (the kernel takes a seed).
  bool takesSeed = false;
};

std::string Emitter::broadcastIndex(RankedTensorType input) {
  if (input.getShape() == ArrayRef<int64_t>(shape))
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
        ShapedType::isDynamic(size) ? this->size(out) : std::to_string(size);
    stride = stride.empty() ? dimSize : stride + " * " + dimSize;
  }
  return index.empty() ? "0" : index;
}

FailureOr<std::string> Emitter::expression(Operation *op) {
  auto in = [&](unsigned i) { return locals.lookup(op->getOperand(i)); };
  Type type = elementOf(op->getResult(0));
  auto lit = [&](double v) { return literal(v, type); };
  auto call = [&](llvm::StringRef f, const std::string &a) {
    return math(f, type) + "(" + a + ")";
  };
  auto gelu = [&](GeluApproximation approximation, const std::string &x) {
    if (approximation == GeluApproximation::tanh) {
      std::string inner = lit(std::sqrt(2.0 / M_PI)) + " * (" + x + " + " +
                          lit(0.044715) + " * " + x + " * " + x + " * " + x +
                          ")";
      return lit(0.5) + " * " + x + " * (" + lit(1) + " + " +
             call("tanh", inner) + ")";
    }
    return lit(0.5) + " * " + x + " * (" + lit(1) + " + " +
           call("erf", x + " * " + lit(M_SQRT1_2)) + ")";
  };
  std::optional<std::string> result =
      llvm::TypeSwitch<Operation *, std::optional<std::string>>(op)
          .Case([&](NegOp) { return "-(" + in(0) + ")"; })
          .Case([&](AbsOp) {
            return llvm::isa<FloatType>(type)
                       ? call("fabs", in(0))
                       : "(" + in(0) + " < 0 ? -" + in(0) + " : " + in(0) + ")";
          })
          .Case([&](ExpOp) { return call("exp", in(0)); })
          .Case([&](LogOp) { return call("log", in(0)); })
          .Case([&](TanhOp) { return call("tanh", in(0)); })
          .Case([&](SqrtOp) { return call("sqrt", in(0)); })
          .Case([&](CosOp) { return call("cos", in(0)); })
          .Case([&](SinOp) { return call("sin", in(0)); })
          .Case([&](FloorOp) { return call("floor", in(0)); })
          .Case([&](RsqrtOp) { return lit(1) + " / " + call("sqrt", in(0)); })
          .Case([&](SigmoidOp) {
            return lit(1) + " / (" + lit(1) + " + " +
                   call("exp", "-(" + in(0) + ")") + ")";
          })
          .Case([&](ReluOp) {
            return "(" + in(0) + " > " + lit(0) + " ? " + in(0) + " : " +
                   lit(0) + ")";
          })
          .Case([&](GeluOp g) { return gelu(g.getApproximate(), in(0)); })
          .Case([&](CastOp) { return "(" + cType(type) + ")(" + in(0) + ")"; })
          .Case([&](AddOp) { return in(0) + " + " + in(1); })
          .Case([&](SubOp) { return in(0) + " - " + in(1); })
          .Case([&](MulOp) { return in(0) + " * " + in(1); })
          .Case([&](DivOp) { return in(0) + " / " + in(1); })
          // As std::max and std::min choose, also for NaN.
          .Case([&](MaxOp) {
            return "(" + in(0) + " < " + in(1) + " ? " + in(1) + " : " + in(0) +
                   ")";
          })
          .Case([&](MinOp) {
            return "(" + in(1) + " < " + in(0) + " ? " + in(1) + " : " + in(0) +
                   ")";
          })
          .Case([&](PowOp) { return call("pow", in(0) + ", " + in(1)); })
          .Case([&](CmpOp c) {
            static const char *ops[] = {"==", "!=", "<", "<=", ">", ">="};
            return in(0) + " " + ops[static_cast<int>(c.getPredicate())] + " " +
                   in(1);
          })
          .Case([&](SelectOp) {
            return "(" + in(0) + " ? " + in(1) + " : " + in(2) + ")";
          })
          .Case([&](BroadcastOp) { return in(0); }) // loaded by broadcasting
          .Case([&](DropoutOp d) {
            // The mask is Philox of (seed, stream, element index), as in
            // the reference executor and in the backward pass.
            double rate = d.getRate().convertToDouble();
            return "(kiln_uniform01(seed, " +
                   std::to_string(static_cast<uint64_t>(d.getStream())) +
                   "ULL, (unsigned long long)i) >= " +
                   literal(rate, Float64Type::get(op->getContext())) + " ? " +
                   in(0) + " * " + lit(1.0 / (1.0 - rate)) + " : " + lit(0) +
                   ")";
          })
          .Case([&](GeluGradOp g) -> std::optional<std::string> {
            std::string x = in(0);
            if (g.getApproximate() == GeluApproximation::tanh) {
              // d/dx of 0.5 x (1 + tanh(u)), u = k (x + 0.044715 x^3).
              double k = std::sqrt(2.0 / M_PI);
              std::string t =
                  call("tanh", lit(k) + " * (" + x + " + " + lit(0.044715) +
                                   " * " + x + " * " + x + " * " + x + ")");
              std::string du = lit(k) + " * (" + lit(1) + " + " +
                               lit(3 * 0.044715) + " * " + x + " * " + x + ")";
              return in(1) + " * (" + lit(0.5) + " * (" + lit(1) + " + " + t +
                     ") + " + lit(0.5) + " * " + x + " * (" + lit(1) + " - " +
                     t + " * " + t + ") * " + du + ")";
            }
            std::string cdf = lit(0.5) + " * (" + lit(1) + " + " +
                              call("erf", x + " * " + lit(M_SQRT1_2)) + ")";
            std::string pdf = call("exp", lit(-0.5) + " * " + x + " * " + x) +
                              " * " + lit(1 / std::sqrt(2 * M_PI));
            return in(1) + " * (" + cdf + " + " + x + " * " + pdf + ")";
          })
          .Default([](Operation *) { return std::nullopt; });
  if (!result)
    return op->emitError("code generation does not handle '")
           << op->getName() << "' in an elementwise kernel yet";
  return *result;
}

FailureOr<GeneratedKernel> Emitter::emit(llvm::StringRef symbol) {
  if (kernel.getKind() != KernelKind::elementwise)
    return kernel.emitError("code generation handles elementwise kernels; '")
           << kernel.getName() << "' is a "
           << stringifyKernelKind(kernel.getKind())
           << " kernel, whose generator is not written yet";
  if (kernel.getNumResults() == 0)
    return kernel.emitError("a kernel without results computes nothing");
  auto outType = llvm::cast<RankedTensorType>(kernel.getResult(0).getType());
  shape.assign(outType.getShape().begin(), outType.getShape().end());

  GeneratedKernel generated;
  generated.symbol = symbol.str();
  generated.numInputs = kernel.getInputs().size();
  generated.numOutputs = kernel.getNumResults();

  std::string text;
  llvm::raw_string_ostream os(text);
  os << "// kernel " << kernel.getName() << " (elementwise), fusing:\n";
  for (Operation &op : kernel.getBlock().without_terminator())
    if (!llvm::isa<ConstantOp>(op))
      os << "//   " << op.getName() << " at " << locationOf(&op) << "\n";

  // The signature: inputs, outputs, dynamic sizes.
  SmallVector<std::string> params;
  for (auto [n, arg] : llvm::enumerate(kernel.getBlock().getArguments())) {
    std::string c = cType(elementOf(arg));
    if (c.empty())
      return kernel.emitError("unsupported element type ")
             << elementOf(arg) << " in code generation";
    params.push_back("const " + c + " *__restrict__ in" + std::to_string(n));
  }
  for (auto [n, result] : llvm::enumerate(kernel.getResults())) {
    std::string c = cType(elementOf(result));
    if (c.empty())
      return kernel.emitError("unsupported element type ")
             << elementOf(result) << " in code generation";
    params.push_back(c + " *__restrict__ out" + std::to_string(n));
  }
  for (auto [d, size] : llvm::enumerate(shape))
    if (ShapedType::isDynamic(size)) {
      params.push_back("long long d" + std::to_string(d));
      ++generated.numDynamicDims;
    }
  takesSeed = llvm::any_of(kernel.getBlock(), [](Operation &op) {
    return llvm::isa<DropoutOp>(op);
  });
  generated.takesSeed = takesSeed;
  if (takesSeed)
    params.push_back("unsigned long long seed");
  os << "extern \"C\" " << (target == Target::cuda ? "__global__ " : "")
     << "void " << symbol << "(" << llvm::join(params, ", ") << ") {\n";

  std::string count;
  for (size_t d = 0; d < shape.size(); ++d)
    count += (d ? " * " : "") + size(d);
  os << "  const long long n = " << (count.empty() ? "1LL" : count) << ";\n";
  if (target == Target::cuda)
    os << "  for (long long i = blockIdx.x * (long long)blockDim.x + "
          "threadIdx.x; i < n;\n       i += (long long)gridDim.x * "
          "blockDim.x) {\n";
  else
    os << "  for (long long i = 0; i < n; ++i) {\n";

  // 2. Loads (written after the multi-index, which they decide).
  std::string loads;
  for (auto [n, arg] : llvm::enumerate(kernel.getBlock().getArguments())) {
    std::string local = "x" + std::to_string(n);
    loads += "    const " + cType(elementOf(arg)) + " " + local + " = in" +
             std::to_string(n) + "[" +
             broadcastIndex(llvm::cast<RankedTensorType>(arg.getType())) +
             "];\n";
    locals[arg] = local;
  }
  // 1. The dimensions of the multi-index that the loads use.
  for (int64_t d : usedDims) {
    std::string inner;
    for (size_t k = d + 1; k < shape.size(); ++k)
      inner += (inner.empty() ? "" : " * ") + size(k);
    os << "    const long long i" << d << " = "
       << (inner.empty() ? "i" : "(i / (" + inner + "))") << " % " << size(d)
       << ";\n";
  }
  os << loads;
  // 3. The fused ops.
  unsigned next = 0;
  for (Operation &op : kernel.getBlock().without_terminator()) {
    if (auto constant = llvm::dyn_cast<ConstantOp>(op)) {
      auto splat = llvm::dyn_cast<SplatElementsAttr>(constant.getValue());
      if (!splat)
        return op.emitError("code generation needs splat constants");
      Type type = splat.getElementType();
      double value =
          llvm::isa<FloatType>(type)
              ? splat.getSplatValue<APFloat>().convertToDouble()
              : (type.isInteger(1)
                     ? double(splat.getSplatValue<APInt>().getBoolValue())
                     : double(splat.getSplatValue<APInt>().getSExtValue()));
      locals[constant.getResult()] = literal(value, type);
      continue;
    }
    FailureOr<std::string> value = expression(&op);
    if (failed(value))
      return failure();
    std::string local = "v" + std::to_string(next++);
    os << "    const " << cType(elementOf(op.getResult(0))) << " " << local
       << " = " << *value << "; // " << op.getName().stripDialect() << " at "
       << locationOf(&op) << "\n";
    locals[op.getResult(0)] = local;
  }
  // 4. Stores.
  Operation *yield = kernel.getBlock().getTerminator();
  for (auto [n, v] : llvm::enumerate(yield->getOperands()))
    os << "    out" << n << "[i] = " << locals.lookup(v) << ";\n";
  os << "  }\n}\n";
  // The C++ target also gets a uniform entry point, so a runtime can call
  // any kernel from an array of buffers and the dynamic sizes.
  if (target == Target::cpp) {
    os << "extern \"C\" void " << symbol
       << "_entry(void *const *buffers, const long long *dims, "
          "unsigned long long seed) {\n  "
       << symbol << "(";
    SmallVector<std::string> args;
    unsigned buffer = 0;
    for (BlockArgument arg : kernel.getBlock().getArguments())
      args.push_back("(const " + cType(elementOf(arg)) + " *)buffers[" +
                     std::to_string(buffer++) + "]");
    for (Value result : kernel.getResults())
      args.push_back("(" + cType(elementOf(result)) + " *)buffers[" +
                     std::to_string(buffer++) + "]");
    for (unsigned d = 0; d < generated.numDynamicDims; ++d)
      args.push_back("dims[" + std::to_string(d) + "]");
    if (takesSeed)
      args.push_back("seed");
    os << llvm::join(args, ", ") << ");\n}\n";
  }
  generated.source = std::move(text);
  return generated;
}

} // namespace

std::string kiln::codegen::preamble(Target target) {
  std::string text =
      target == Target::cuda
          ? "// Generated by kiln: CUDA C, compiled with NVRTC.\n"
            "#define KILN_FN static __device__ inline\n"
          : "// Generated by kiln: C++ for the CPU backend.\n"
            "#include <math.h>\n"
            "#define KILN_FN static inline\n";
  // Philox random numbers (dropout), the code of runtime/Random.h.
  return text + runtime::kRandomSource + "\n";
}

FailureOr<GeneratedKernel> kiln::codegen::generateKernel(KernelOp kernel,
                                                         llvm::StringRef symbol,
                                                         Target target) {
  Emitter emitter(kernel, target);
  return emitter.emit(symbol);
}
