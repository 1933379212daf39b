//===- CodegenUtils.cpp - what every kernel generator shares --------------===//
//
// f32 math uses the float functions (expf, ...), so generated code computes
// in the type the IR says; the reference executor's double math is the
// oracle the tests compare against.
//
//===----------------------------------------------------------------------===//

#include "codegen/CodegenUtils.h"
#include "codegen/Template.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

std::string kiln::codegen::cType(Type type) {
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

Type kiln::codegen::elementOf(Value v) {
  return llvm::cast<RankedTensorType>(v.getType()).getElementType();
}

std::string kiln::codegen::literal(double value, Type type) {
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
  // Infinities and NaN by the preamble's macros (NVRTC has no math.h).
  std::string cast = type.isF32() ? "(float)" : "";
  if (s == "nan" || s == "-nan")
    return "(" + cast + "KILN_NAN_VALUE)";
  if (s == "inf" || s == "-inf")
    return "(" + std::string(s[0] == '-' ? "-" : "") + cast +
           "KILN_HUGE_VALUE)";
  if (s.find_first_of(".e") == std::string::npos)
    s += ".0";
  return type.isF32() ? s + "f" : s;
}

std::string kiln::codegen::math(llvm::StringRef name, Type type) {
  return type.isF32() ? (name + "f").str() : name.str();
}

std::string kiln::codegen::locationOf(Operation *op) {
  auto text = [](Location loc) -> std::string {
    if (auto file = llvm::dyn_cast<FileLineColLoc>(loc))
      return llvm::formatv("{0}:{1}:{2}", file.getFilename().getValue(),
                           file.getLine(), file.getColumn())
          .str();
    return "?";
  };
  // An op inlined from a `def` block, `callsite(body at callsite(call at
  // ...))`: the body's line, then the call sites from the innermost out.
  Location loc = op->getLoc();
  SmallVector<std::string> parts;
  while (auto site = llvm::dyn_cast<CallSiteLoc>(loc)) {
    parts.push_back(text(site.getCallee()));
    loc = site.getCaller();
  }
  parts.push_back(text(loc));
  std::string result = parts.front();
  if (parts.size() > 1)
    result += " (called from " +
              llvm::join(ArrayRef<std::string>(parts).drop_front(), ", ") + ")";
  return result;
}

bool kiln::codegen::isScalarOp(Operation *op) {
  return op->hasTrait<kiln::OpTrait::Injective>() || llvm::isa<ConstantOp>(op);
}

FailureOr<std::string>
kiln::codegen::scalarExpression(Operation *op,
                                llvm::function_ref<std::string(Value)> operand,
                                llvm::StringRef flatIndex) {
  auto in = [&](unsigned i) { return operand(op->getOperand(i)); };
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
            return "(kiln_uniform01(*seed, " +
                   std::to_string(static_cast<uint64_t>(d.getStream())) +
                   "ULL, (unsigned long long)(" + flatIndex.str() + ")) >= " +
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
           << op->getName() << "' as scalar code";
  return *result;
}

FailureOr<std::string> kiln::codegen::constantLiteral(Operation *op) {
  auto constant = llvm::dyn_cast<ConstantOp>(op);
  auto splat = constant ? llvm::dyn_cast<SplatElementsAttr>(constant.getValue())
                        : SplatElementsAttr();
  if (!splat)
    return op->emitError("code generation needs splat constants");
  Type type = splat.getElementType();
  double value =
      llvm::isa<FloatType>(type)
          ? splat.getSplatValue<APFloat>().convertToDouble()
          : (type.isInteger(1)
                 ? double(splat.getSplatValue<APInt>().getBoolValue())
                 : double(splat.getSplatValue<APInt>().getSExtValue()));
  return literal(value, type);
}

LogicalResult kiln::codegen::emitScalarOps(raw_indented_ostream &os,
                                           ArrayRef<Operation *> ops,
                                           DenseMap<Value, std::string> &locals,
                                           StringRef flatIndex,
                                           unsigned &next) {
  for (Operation *op : ops) {
    if (llvm::isa<ConstantOp>(op)) {
      FailureOr<std::string> value = constantLiteral(op);
      if (failed(value))
        return failure();
      locals[op->getResult(0)] = *value;
      continue;
    }
    FailureOr<std::string> value = scalarExpression(
        op, [&](Value v) { return locals.lookup(v); }, flatIndex);
    if (failed(value))
      return failure();
    std::string local = "v" + std::to_string(next++);
    print(os, "const ${T} ${LOCAL} = ${VALUE}; // ${OP} at ${LOCATION}\n",
          {{"T", cType(elementOf(op->getResult(0)))},
           {"LOCAL", local},
           {"VALUE", *value},
           {"OP", op->getName().stripDialect().str()},
           {"LOCATION", locationOf(op)}});
    locals[op->getResult(0)] = local;
  }
  return success();
}

/// The fused ops of `kernel`, each segment of a horizontal kernel with its
/// own ops below it.
static void writeFusedOps(raw_ostream &os, KernelOp kernel, StringRef indent) {
  for (Operation &op : kernel.getBlock().without_terminator()) {
    if (llvm::isa<ConstantOp>(op))
      continue;
    auto segment = llvm::dyn_cast<KernelOp>(op);
    if (!segment) {
      os << "//" << indent << op.getName() << " at " << locationOf(&op) << "\n";
      continue;
    }
    os << "//" << indent << "segment " << segment.getName() << " over "
       << segment.getResult(0).getType() << ":\n";
    writeFusedOps(os, segment, (indent + "  ").str());
  }
}

void kiln::codegen::writeKernelComment(raw_ostream &os, KernelOp kernel) {
  os << "// kernel " << kernel.getName() << " ("
     << stringifyKernelKind(kernel.getKind()) << "), fusing:\n";
  writeFusedOps(os, kernel, "   ");
}

LogicalResult kiln::codegen::initGenerated(KernelOp kernel, StringRef symbol,
                                           GeneratedKernel &generated) {
  generated.symbol = symbol.str();
  generated.numInputs = kernel.getInputs().size();
  generated.numOutputs = kernel.getNumResults();
  if (kernel.getNumResults() == 0)
    return kernel.emitError("a kernel without results computes nothing");
  SmallVector<Value> values(kernel.getBlock().getArguments());
  llvm::append_range(values, kernel.getResults());
  for (Value v : values)
    if (cType(elementOf(v)).empty())
      return kernel.emitError("unsupported element type ")
             << elementOf(v) << " in code generation";
  // Also in the segments of a horizontal kernel.
  generated.takesSeed = false;
  kernel.getBlock().walk([&](DropoutOp) { generated.takesSeed = true; });
  return success();
}

unsigned kiln::codegen::dynamicDimIndex(GeneratedKernel &generated,
                                        unsigned operand, unsigned dim) {
  for (auto [k, d] : llvm::enumerate(generated.dynamicDims))
    if (d.operand == operand && d.dim == dim)
      return k;
  generated.dynamicDims.push_back({operand, dim});
  return generated.dynamicDims.size() - 1;
}

std::string kiln::codegen::dynamicDimParam(GeneratedKernel &generated,
                                           unsigned operand, unsigned dim) {
  return "s" + std::to_string(dynamicDimIndex(generated, operand, dim));
}

std::string kiln::codegen::dimSize(GeneratedKernel &generated,
                                   RankedTensorType type, unsigned operand,
                                   unsigned dim) {
  int64_t size = type.getDimSize(dim);
  if (ShapedType::isDynamic(size))
    return dynamicDimParam(generated, operand, dim);
  return std::to_string(size) + "LL";
}

std::string kiln::codegen::signature(KernelOp kernel,
                                     const GeneratedKernel &generated,
                                     Target target) {
  SmallVector<std::string> params;
  for (auto [n, arg] : llvm::enumerate(kernel.getBlock().getArguments()))
    params.push_back("const " + cType(elementOf(arg)) + " *__restrict__ in" +
                     std::to_string(n));
  for (auto [n, result] : llvm::enumerate(kernel.getResults()))
    params.push_back(cType(elementOf(result)) + " *__restrict__ out" +
                     std::to_string(n));
  for (size_t k = 0; k < generated.dynamicDims.size(); ++k)
    params.push_back("long long s" + std::to_string(k));
  if (generated.takesSeed)
    params.push_back("const unsigned long long *__restrict__ seed");
  return "extern \"C\" " +
         std::string(target == Target::cuda ? "__global__ " : "") + "void " +
         generated.symbol + "(" + llvm::join(params, ", ") + ")";
}

std::string kiln::codegen::cppEntry(KernelOp kernel,
                                    const GeneratedKernel &generated) {
  SmallVector<std::string> args;
  unsigned buffer = 0;
  for (BlockArgument arg : kernel.getBlock().getArguments())
    args.push_back("(const " + cType(elementOf(arg)) + " *)buffers[" +
                   std::to_string(buffer++) + "]");
  for (Value result : kernel.getResults())
    args.push_back("(" + cType(elementOf(result)) + " *)buffers[" +
                   std::to_string(buffer++) + "]");
  for (size_t d = 0; d < generated.dynamicDims.size(); ++d)
    args.push_back("dims[" + std::to_string(d) + "]");
  if (generated.takesSeed)
    args.push_back("&seed");
  return "extern \"C\" void " + generated.symbol +
         "_entry(void *const *buffers, const long long *dims, "
         "unsigned long long seed) {\n  (void)dims;\n  (void)seed;\n  " +
         generated.symbol + "(" + llvm::join(args, ", ") + ");\n}\n";
}

LogicalResult kiln::codegen::setElementwiseBlock(KernelOp kernel, Target target,
                                                 GeneratedKernel &generated) {
  if (target != Target::cuda)
    return success();
  FailureOr<ElementwiseScheduleAttr> schedule =
      requireSchedule<ElementwiseScheduleAttr>(kernel, kCudaTarget);
  if (failed(schedule))
    return failure();
  generated.launch.block[0] = schedule->getBlock();
  return success();
}
