//===- CodegenUtils.cpp - what every kernel generator shares --------------===//
//
// f32 math uses the float functions (expf, ...), so generated code computes
// in the type the IR says; the reference executor's double math is the
// oracle the tests compare against.
//
//===----------------------------------------------------------------------===//

#include "codegen/CodegenUtils.h"
#include "codegen/Template.h"

#include "ir/ScalarSemantics.h"

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

std::string kiln::codegen::math(llvm::StringRef name, Type type,
                                Target target) {
  if (target == Target::cpp && type.isF32() &&
      (name == "exp" || name == "tanh"))
    return ("kiln_" + name + "f").str();
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
                                llvm::StringRef flatIndex, Target target) {
  Type type = elementOf(op->getResult(0));
  // Loaded by broadcasting: the operand's element is the result's.
  if (llvm::isa<BroadcastOp>(op))
    return operand(op->getOperand(0));
  if (auto dropout = llvm::dyn_cast<DropoutOp>(op)) {
    // The mask is Philox of (seed, stream, element index), as in the
    // reference executor and in the backward pass.
    double rate = dropout.getRate().convertToDouble();
    return "(kiln_uniform01(*seed, " +
           std::to_string(static_cast<uint64_t>(dropout.getStream())) +
           "ULL, (unsigned long long)(" + flatIndex.str() +
           ")) >= " + literal(rate, Float64Type::get(op->getContext())) +
           " ? " + operand(op->getOperand(0)) + " * " +
           literal(1.0 / (1.0 - rate), type) + " : " + literal(0, type) + ")";
  }
  std::optional<ScalarSemantics> semantics = scalarSemantics(op);
  if (!semantics)
    return op->emitError("code generation does not handle '")
           << op->getName() << "' as scalar code";
  CSpelling spelling{[&](double value) { return literal(value, type); },
                     [&](StringRef name, StringRef arguments) {
                       return math(name, type, target) + "(" + arguments.str() +
                              ")";
                     },
                     cType(type)};
  SmallVector<std::string> operands;
  for (Value v : op->getOperands())
    operands.push_back(operand(v));
  return semantics->spell(operands, spelling);
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
                                           StringRef flatIndex, unsigned &next,
                                           Target target) {
  for (Operation *op : ops) {
    if (llvm::isa<ConstantOp>(op)) {
      FailureOr<std::string> value = constantLiteral(op);
      if (failed(value))
        return failure();
      locals[op->getResult(0)] = *value;
      continue;
    }
    FailureOr<std::string> value = scalarExpression(
        op, [&](Value v) { return locals.lookup(v); }, flatIndex, target);
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
                                     Target target, StringRef launchBounds) {
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
  std::string qualifiers;
  if (target == Target::cuda)
    qualifiers = launchBounds.empty()
                     ? "__global__ void"
                     : fill("__global__ void __launch_bounds__(${BOUNDS})",
                            {{"BOUNDS", launchBounds.str()}});
  else
    qualifiers = "void";
  return fill("extern \"C\" ${QUALIFIERS} ${SYMBOL}(${PARAMS})",
              {{"QUALIFIERS", qualifiers},
               {"SYMBOL", generated.symbol},
               {"PARAMS", llvm::join(params, ", ")}});
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
