//===- Passes.td - every kiln pass ------------------------------*- tablegen -*-===//

#ifndef KILN_PASSES_TD
#define KILN_PASSES_TD

include "mlir/Pass/PassBase.td"

def KilnShapeInference : Pass<"kiln-shape-inference", "mlir::func::FuncOp"> {
  let summary = "Bind symbolic dimensions and propagate shapes through a model";
  let description = [{
    Runs every op's shape function in program order and gives each result the
    most refined type that its declared type and the inferred one agree on;
    the function's result types follow. With `bind=batch=128`, every input
    dimension named `batch` in its `kiln.dim_names` becomes 128 first, so a
    model can be specialized to one batch size. An inferred type that
    contradicts a declared one is a located error.

    ```mlir
    // kiln-opt --kiln-shape-inference="bind=batch=128"
    func.func @m(%x: tensor<?x784xf32> {kiln.dim_names = ["batch", ""]}) ...
    // becomes
    func.func @m(%x: tensor<128x784xf32> {kiln.dim_names = ["batch", ""]}) ...
    ```
  }];
  let options = [
    ListOption<"bindings", "bind", "std::string",
               "Symbolic dimension sizes, as NAME=SIZE">
  ];
  let dependentDialects = ["::kiln::KilnDialect"];
}

def KilnDecompose : Pass<"kiln-decompose", "mlir::func::FuncOp"> {
  let summary = "Lower composite ops to primitives";
  let description = [{
    Rewrites the composites that keep user intent readable in the IR into the
    primitives that autodiff, fusion and code generation handle:
    `kiln.linear` becomes `kiln.matmul ... transpose_rhs` plus a broadcast
    `kiln.add`; `kiln.accuracy` becomes argmax, cmp, cast and reduce_mean.
    See docs/architecture.md for which ops are primitive and why.
  }];
  let dependentDialects = ["::kiln::KilnDialect"];
}

#endif // KILN_PASSES_TD
