//===- KernelOps.td - the kernel-level IR: fused groups -------*- tablegen -*-===//
//
// After fusion a training step is a list of `kiln.kernel` ops, one per
// kernel the code generators emit. Each holds, in its region, the kiln ops it
// fuses; values cross kernel boundaries only as the kernel's operands and
// results, which are the tensors that live in memory. Both code generators
// (CUDA C and C++) consume this form; the reference executor runs it as is.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_KERNEL_OPS_TD
#define KILN_KERNEL_OPS_TD

include "mlir/IR/OpBase.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Kiln_KernelKind : I32EnumAttr<"KernelKind", "what a fused kernel computes", [
    I32EnumAttrCase<"elementwise", 0>,
    I32EnumAttrCase<"reduction", 1>,
    I32EnumAttrCase<"matmul", 2>,
    I32EnumAttrCase<"opaque", 3>,
    I32EnumAttrCase<"horizontal", 4>,
    I32EnumAttrCase<"collective", 5>]> {
  let cppNamespace = "::kiln";
}

def Kiln_KernelOp : Op<Kiln_Dialect, "kernel",
    [IsolatedFromAbove, SingleBlockImplicitTerminator<"YieldOp">, Pure]> {
  let summary = "one fused kernel";
  let description = [{
    A group of kiln ops that one generated kernel computes. The region's
    arguments are the kernel's inputs (its operands); `kiln.yield` returns
    the tensors the kernel writes (its results). `kind` says which code
    generation scheme applies: `elementwise` (one loop over the output
    elements), `reduction` (one reduction with elementwise ops before and
    after it), `matmul` (a GEMM with an elementwise epilogue), `opaque`
    (a single op with a kernel of its own), `horizontal` (independent
    elementwise kernels computed by one launch) or `collective` (one
    `kiln.all_reduce`: no code is generated, the runtime's communicator
    combines the buffers across ranks, in place). `name` lists the fused
    ops.

    A `horizontal` kernel's region holds only nested `elementwise` kernels,
    its segments, each reading only the region's arguments (no segment
    reads another's result) and keeping its own iteration shape; the yield
    returns the segments' results. The optimizer updates of all parameters
    become one launch:

    ```mlir
    %u:3 = kiln.kernel "horizontal_add_mul_sub" horizontal (%step, %w, %gw, %b, %gb)
        : (...) -> (tensor<i64>, tensor<512x784xf32>, tensor<512xf32>) {
    ^bb0(%s: tensor<i64>, %a: tensor<512x784xf32>, %ga: tensor<512x784xf32>, %c: tensor<512xf32>, %gc: tensor<512xf32>):
      %0 = kiln.kernel "add" elementwise (%s) : (tensor<i64>) -> tensor<i64> { ... }
      %1 = kiln.kernel "mul_sub" elementwise (%a, %ga) : (...) -> tensor<512x784xf32> { ... }
      %2 = kiln.kernel "mul_sub" elementwise (%c, %gc) : (...) -> tensor<512xf32> { ... }
      kiln.yield %0, %1, %2 : tensor<i64>, tensor<512x784xf32>, tensor<512xf32>
    }
    ```

    ```mlir
    %y = kiln.kernel "matmul_add_relu" matmul (%x, %w, %b)
        : (tensor<?x784xf32>, tensor<512x784xf32>, tensor<512xf32>) -> tensor<?x512xf32> {
    ^bb0(%a: tensor<?x784xf32>, %bw: tensor<512x784xf32>, %bias: tensor<512xf32>):
      %0 = kiln.matmul %a, %bw transpose_rhs : (tensor<?x784xf32>, tensor<512x784xf32>) -> tensor<?x512xf32>
      %1 = kiln.add %0, %bias : (tensor<?x512xf32>, tensor<512xf32>) -> tensor<?x512xf32>
      %2 = kiln.relu %1 : tensor<?x512xf32>
      kiln.yield %2 : tensor<?x512xf32>
    }
    ```
  }];
  let arguments = (ins StrAttr:$name, Kiln_KernelKind:$kind,
                       Variadic<AnyRankedTensor>:$inputs);
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let regions = (region SizedRegion<1>:$body);
  let hasCustomAssemblyFormat = 1;
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    mlir::Block &getBlock() { return getBody().front(); }
  }];
}

def Kiln_YieldOp : Op<Kiln_Dialect, "yield",
    [Pure, Terminator, HasParent<"KernelOp">, ReturnLike]> {
  let summary = "the results of a kernel";
  let description = [{
    Ends a `kiln.kernel` region with the values the kernel writes.

    ```mlir
    kiln.yield %2 : tensor<?x512xf32>
    ```
  }];
  let arguments = (ins Variadic<AnyRankedTensor>:$values);
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
  let builders = [OpBuilder<(ins), [{ /* nothing to yield */ }]>];
}

#endif // KILN_KERNEL_OPS_TD
