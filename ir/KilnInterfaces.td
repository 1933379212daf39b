//===- KilnInterfaces.td - interfaces of kiln ops -------------*- tablegen -*-===//

#ifndef KILN_INTERFACES_TD
#define KILN_INTERFACES_TD

include "mlir/IR/OpBase.td"

def Kiln_DifferentiableOpInterface : OpInterface<"DifferentiableOpInterface"> {
  let cppNamespace = "::kiln";
  let description = [{
    An op with a reverse-mode gradient rule. Every rule of the dialect lives
    in ir/Gradients.cpp, one function per op; `kiln-autodiff` asks each op
    on the path from a parameter to the loss for the gradients of its
    operands.
  }];
  let methods = [
    InterfaceMethod<[{
        Builds, at the builder's insertion point, the gradient of every
        operand from `resultGrad`, the gradient of the op's first result
        (an op's other results, such as the log-sum-exp kiln.attention
        saves for its backward pass, carry no gradient), and
        appends them to `operandGrads` in operand order: a null Value for an
        operand without a gradient (integer inputs, labels, shape-only
        operands). Gradients have the operands' types: broadcasts are summed
        back.
      }],
      "::llvm::LogicalResult", "buildGradients",
      (ins "::mlir::OpBuilder &":$builder, "::mlir::Value":$resultGrad,
           "::llvm::SmallVectorImpl<::mlir::Value> &":$operandGrads)>
  ];
}

#endif // KILN_INTERFACES_TD
