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

def KilnAutodiff : Pass<"kiln-autodiff", "mlir::ModuleOp"> {
  let summary = "Reverse-mode differentiation of each model's loss";
  let description = [{
    For every model function `@m` (attribute `kiln.model`), adds
    `@m_grad(params..., inputs...) -> (loss, metrics..., grads...)` and
    `@m_eval_step(params..., inputs...) -> (loss, metrics...)`: parameters
    become arguments, and each parameter's gradient is built from the
    ops' gradient rules (DifferentiableOpInterface), with gradients of
    values used several times summed and broadcasts reduced back to operand
    shapes. An op on the path from a parameter to the loss without a
    gradient rule is a located error. Composites must be decomposed first.
    A model with results of role `output` (`output` statements) also gets
    `@m_predict_step(params..., inputs...) -> (outputs...)`: the forward
    pass without dropout, keeping only the ops and inputs the outputs need;
    the other functions do not return the outputs.
  }];
  let dependentDialects = ["::kiln::KilnDialect"];
}

def KilnOptimizer : Pass<"kiln-optimizer", "mlir::ModuleOp"> {
  let summary = "Build the training step: gradients plus the optimizer update";
  let description = [{
    For every `@m_grad`, adds `@m_train_step(params..., state..., inputs...)
    -> (loss, metrics..., new params..., new state...)` applying SGD
    (momentum, Nesterov, weight decay), Adam or AdamW (bias correction),
    optional gradient clipping by global norm, and a learning-rate schedule
    (constant, step, cosine, each with optional linear warm-up), all as
    kiln ops. The configuration comes from the model's `optimizer`
    statement; options given here override it.
  }];
  let options = [
    Option<"kind", "optimizer", "std::string", /*default=*/"\"sgd\"",
           "sgd, adam or adamw">,
    Option<"lr", "lr", "double", /*default=*/"0.01", "Learning rate">,
    Option<"momentum", "momentum", "double", /*default=*/"0.0",
           "SGD momentum">,
    Option<"weightDecay", "weight-decay", "double", /*default=*/"0.0",
           "Weight decay (L2 for sgd and adam, decoupled for adamw)">,
    Option<"nesterov", "nesterov", "bool", /*default=*/"false",
           "Nesterov momentum">,
    Option<"schedule", "schedule", "std::string", /*default=*/"\"constant\"",
           "constant, step or cosine">,
    Option<"warmup", "warmup", "int64_t", /*default=*/"0",
           "Linear warm-up steps">,
    Option<"totalSteps", "total-steps", "int64_t", /*default=*/"0",
           "Steps of the cosine schedule">,
    Option<"clipNorm", "clip-norm", "double", /*default=*/"0.0",
           "Clip gradients to this global norm (0: off)">
  ];
  let dependentDialects = ["::kiln::KilnDialect"];
}

def KilnDataParallel : Pass<"kiln-data-parallel", "mlir::ModuleOp"> {
  let summary = "Average the gradients over the ranks of a data-parallel run";
  let description = [{
    After `kiln-autodiff`, before `kiln-optimizer`: in every gradient
    function (`kiln.step = "grad"`), the gradients it returns become the
    mean over all ranks (`kiln.all_reduce mean`), so that gradient clipping
    and the optimizer update see the global gradient. The gradients are
    grouped into buckets in the order the backward pass computes them
    (the last layer's first), each at most `bucket-bytes` (a larger
    gradient is a bucket of its own); a bucket's all-reduce follows the op
    computing its last gradient, so a runtime can reduce it while the rest
    of the backward pass runs.

    ```mlir
    // kiln-opt --kiln-data-parallel
    %g:2 = kiln.all_reduce mean %gw2, %gb2 : tensor<10x512xf32>, tensor<10xf32>
    ```
  }];
  let options = [
    Option<"bucketBytes", "bucket-bytes", "int64_t", /*default=*/"4194304",
           "The largest bucket of gradients one all-reduce takes, in bytes">
  ];
  let dependentDialects = ["::kiln::KilnDialect"];
}

def KilnFuse : Pass<"kiln-fuse", "mlir::func::FuncOp"> {
  let summary = "Group a step's ops into kernels";
  let description = [{
    Classifies every op as injective, reduction, matmul or opaque and groups
    them into `kiln.kernel` ops by one cost rule: an intermediate tensor
    kept inside a kernel saves a write and a read of it, and fusion must not
    recompute anything. Injective ops join a producer's kernel when they
    have the shape it iterates over (elementwise chains, reduction and
    matmul epilogues); a reduction absorbs the elementwise group that only
    it consumes (a prologue); values read outside a kernel become its
    results. See the header of passes/Fuse.cpp for the full rule.
  }];
  let dependentDialects = ["::kiln::KilnDialect"];
}

def KilnFuseHorizontal : Pass<"kiln-fuse-horizontal", "mlir::func::FuncOp"> {
  let summary = "Merge independent elementwise kernels into one launch";
  let description = [{
    After `kiln-fuse`: the elementwise kernels whose results only the
    step's end reads (the optimizer updates of every parameter, the step
    counter) are independent of each other; they move to the end of the
    step and become the segments of one `horizontal` kernel, so that one
    launch computes them all, each segment over its own shape. Peeling
    repeats: the elementwise kernels read only by the end and the kernels
    merged so far form the next horizontal kernel, placed before them
    (AdamW's chains of update kernels), up to `levels` times (0: until no
    two kernels merge). Only kernels with static shapes merge.

    ```mlir
    %0:2 = kiln.kernel "mul_add_mul_sub" elementwise (%m0, %g0, %w0) ...
    %1:2 = kiln.kernel "mul_add_mul_sub" elementwise (%m1, %g1, %w1) ...
    return %0#1, %1#1, %0#0, %1#0 ...
    // becomes
    %0:4 = kiln.kernel "horizontal_mul_add_mul_sub" horizontal (%m0, %g0, %w0, %m1, %g1, %w1) ... {
    ^bb0(...):
      %a:2 = kiln.kernel "mul_add_mul_sub" elementwise (...) ...
      %b:2 = kiln.kernel "mul_add_mul_sub" elementwise (...) ...
      kiln.yield %a#0, %a#1, %b#0, %b#1 ...
    }
    return %0#1, %0#3, %0#0, %0#2 ...
    ```

    See the header of passes/FuseHorizontal.cpp for the rule.
  }];
  let options = [
    Option<"levels", "levels", "unsigned", /*default=*/"0",
           "How many horizontal kernels to form, from the end (0: all)">
  ];
  let dependentDialects = ["::kiln::KilnDialect"];
}

def KilnPlanMemory : Pass<"kiln-plan-memory", "mlir::func::FuncOp"> {
  let summary = "Assign every tensor of a fused step a buffer";
  let description = [{
    Liveness-based memory planning over a whole step, after `kiln-fuse`.
    Parameters, optimizer state and inputs keep their own buffers; every
    other kernel result gets an offset in one arena, 256-byte aligned, where
    results whose live ranges do not overlap share memory (best fit, largest
    first). A new parameter or new state is written in place into its
    argument's buffer when nothing reads the old value after the kernel that
    computes the new one. The plan is recorded as attributes:

    ```mlir
    %0 = kiln.kernel "relu" elementwise (%arg0) : ... {kiln.offsets = array<i64: 0>}
    %1:2 = kiln.kernel "mul_add_mul_sub" elementwise (%arg7, %16, %arg0) : ...
        {kiln.in_place = array<i64: 7, 0>, kiln.offsets = array<i64: -1, -1>}
    func.func @m_train_step(...) attributes {kiln.arena_bytes = 1024 : i64,
        kiln.input_bytes = 512 : i64, kiln.param_bytes = 4096 : i64,
        kiln.state_bytes = 4096 : i64, ...}
    ```

    Shapes must be static (bind symbolic dimensions first), unless
    `max-batch=N` is given: then the dynamic sizes must all follow the
    batch (ir/BatchSizes.h), the step is planned for batch N, every buffer
    shrinking in place for a smaller batch, and the function records
    `kiln.max_batch = N`. See the header of passes/PlanMemory.cpp for the
    algorithm.
  }];
  let options = [
    Option<"maxBatch", "max-batch", "int64_t", /*default=*/"0",
           "Plan a step with a run-time batch for batches up to this size "
           "(0: shapes must be static)">,
  ];
  let dependentDialects = ["::kiln::KilnDialect"];
}

def KilnSchedule : Pass<"kiln-schedule", "mlir::ModuleOp"> {
  let summary = "Choose how every kernel is computed, per target";
  let description = [{
    After fusion (and memory planning, whose `kiln.max_batch` tells what a
    dynamic batch is at most): gives every top-level `kiln.kernel` its
    schedule for each target, the dictionary `kiln.schedule`, from the cost
    models of passes/CostModel.h. The code generators render these
    schedules and choose nothing themselves. A kernel with nothing to
    choose on a target (the C++ loops of an elementwise kernel) has no entry
    for it; schedules already on a kernel are kept (given by hand or by
    `--schedules`).

    ```mlir
    %0 = kiln.kernel "matmul_add_relu" matmul (%x, %w, %b) : ... {
      ...
    } {kiln.offsets = array<i64: 0>, kiln.schedule = {
        cpu = #kiln.cpu_gemm<mr = 6, nr = 64>,
        cuda = #kiln.gemm<bm = 32, bn = 16, bk = 16, tm = 2, tn = 2, split_k = 8>}}
    %1 = kiln.kernel "reduce_sum" reduction (%0) : ... {
      ...
    } {kiln.schedule = {cuda = #kiln.reduce<scheme = columns, block_x = 32, block_y = 16>}}
    ```

    Each kind's rule is documented with its cost model (passes/CostModel.cpp).

    With `schedules=FILE`, the schedules of that file come first: one line
    per kernel and target, the kernel named by its key (its name and a hash
    of its contents, ir/Schedules.h), as `kiln compile --emit=schedules`
    writes them:

    ```
    matmul_add_relu@5f0e3a1b2c4d6e78 cuda = #kiln.gemm<bm = 64, bn = 64, bk = 16, tm = 4, tn = 4, split_k = 1>
    ```

    A line that names no kernel of the module, an attribute out of its
    valid space, or a schedule that does not fit its kernel is an error at
    that line of the file.

    With `candidates=N`, each kernel also gets up to N other schedules of
    its space per target (`kiln.candidates`), which code generation renders
    as alternative kernels and a trainer's `--tune` times on the machine:
    for GEMMs and convolutions the tilings the GEMM model estimates
    fastest (a spread of block tiles and splits first), for the other kinds
    the schedules nearest the chosen one (at most 2 for an elementwise
    kernel, whose block size matters little).

    ```mlir
    } {kiln.candidates = {cpu = [#kiln.cpu_gemm<mr = 7, nr = 64>, #kiln.cpu_gemm<mr = 5, nr = 64>]},
       kiln.schedule = {cpu = #kiln.cpu_gemm<mr = 6, nr = 64>, ...}}
    ```
  }];
  let options = [
    Option<"schedules", "schedules", "std::string", /*default=*/"",
           "A file of schedules to use before the cost models' "
           "(kiln compile --emit=schedules writes one)">,
    Option<"partialModule", "partial-module", "bool", /*default=*/"false",
           "The schedules file may name kernels of other modules (the "
           "steps of a trainer compiled apart): no error for those here">,
    Option<"candidates", "candidates", "unsigned", /*default=*/"0",
           "Also list up to this many other schedules per kernel and "
           "target (kiln.candidates), the likeliest first, for a trainer's "
           "--tune to time">
  ];
  let dependentDialects = ["::kiln::KilnDialect"];
}

#endif // KILN_PASSES_TD
