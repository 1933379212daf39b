//===- KernelOps.cpp - the kernel-level IR: fused groups ------------------===//

#include "ir/KilnDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

using namespace mlir;
using namespace kiln;

/// kiln.kernel "name" kind (%a, %b) : (A, B) -> (R) { ^bb0(...): ... }
ParseResult KernelOp::parse(OpAsmParser &parser, OperationState &result) {
  std::string name;
  StringRef kindKeyword;
  SmallVector<OpAsmParser::UnresolvedOperand> inputs;
  FunctionType type;
  SMLoc kindLoc;
  if (parser.parseString(&name) || (kindLoc = parser.getCurrentLocation(),
                                    parser.parseKeyword(&kindKeyword)))
    return failure();
  std::optional<KernelKind> kind = symbolizeKernelKind(kindKeyword);
  if (!kind)
    return parser.emitError(kindLoc, "unknown kernel kind '")
           << kindKeyword << "'";
  if (parser.parseOperandList(inputs, OpAsmParser::Delimiter::Paren) ||
      parser.parseOptionalAttrDict(result.attributes) ||
      parser.parseColonType(type) ||
      parser.resolveOperands(inputs, type.getInputs(),
                             parser.getCurrentLocation(), result.operands))
    return failure();
  Builder &b = parser.getBuilder();
  result.addAttribute(getNameAttrName(result.name), b.getStringAttr(name));
  result.addAttribute(getKindAttrName(result.name),
                      KernelKindAttr::get(b.getContext(), *kind));
  result.addTypes(type.getResults());
  Region *body = result.addRegion();
  if (parser.parseRegion(*body, /*arguments=*/{}))
    return failure();
  return success();
}

void KernelOp::print(OpAsmPrinter &p) {
  p << " \"" << getName() << "\" " << stringifyKernelKind(getKind()) << " (";
  p.printOperands(getInputs());
  p << ")";
  p.printOptionalAttrDict((*this)->getAttrs(),
                          {getNameAttrName(), getKindAttrName()});
  p << " : ";
  p.printFunctionalType(getInputs().getTypes(), getResultTypes());
  p << " ";
  p.printRegion(getBody(), /*printEntryBlockArgs=*/true,
                /*printBlockTerminators=*/true);
}

LogicalResult KernelOp::verify() {
  Block &block = getBlock();
  if (block.getArgumentTypes() != getInputs().getTypes())
    return emitOpError("region arguments must have the types of the inputs");
  auto yield = llvm::cast<YieldOp>(block.getTerminator());
  if (yield.getValues().getTypes() != getResultTypes())
    return emitOpError("yields ")
           << yield.getValues().size()
           << " values whose types differ from the kernel's results";
  // A collective kernel is one all-reduce of its inputs, in their order
  // (the runtime reduces the input buffers in place).
  if (getKind() == KernelKind::collective) {
    auto reduce = llvm::dyn_cast<AllReduceOp>(block.front());
    if (!reduce || reduce->getNextNode() != yield ||
        reduce.getInputs() != ValueRange(block.getArguments()) ||
        yield.getValues() != ValueRange(reduce.getResults()))
      return emitOpError("a collective kernel holds one kiln.all_reduce of "
                         "its inputs, yielding its results");
    return success();
  }
  if (!block.getOps<AllReduceOp>().empty())
    return emitOpError("only a collective kernel holds a kiln.all_reduce");
  // Only a horizontal kernel nests kernels, and it holds nothing else: each
  // segment an elementwise kernel reading the region's arguments only.
  bool horizontal = getKind() == KernelKind::horizontal;
  for (Operation &op : block.without_terminator()) {
    auto segment = llvm::dyn_cast<KernelOp>(op);
    if (!horizontal) {
      if (segment)
        return emitOpError("nests a kernel but is not horizontal");
      continue;
    }
    if (!segment || segment.getKind() != KernelKind::elementwise)
      return emitOpError("a horizontal kernel holds only elementwise kernels, "
                         "not '")
             << op.getName() << "'";
    for (Value input : segment.getInputs())
      if (!llvm::isa<BlockArgument>(input))
        return segment.emitOpError(
            "reads another segment's result in a horizontal kernel");
  }
  return success();
}
