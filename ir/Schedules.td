//===- Schedules.td - how each kernel is computed --------------*- tablegen -*-===//
//
// A schedule says how a `kiln.kernel` is computed on one target: its tiling,
// its reduction scheme, its block size. The `kiln-schedule` pass chooses one
// per kernel and target and records them on the kernel as the dictionary
// `kiln.schedule = {cpu = ..., cuda = ...}`; the code generators render the
// schedule they are given and choose nothing themselves:
//
// ```mlir
// %0 = kiln.kernel "matmul_add_relu" matmul (%x, %w, %b) : ... {
//   ...
// } {kiln.schedule = {cpu = #kiln.cpu_gemm<mr = 6, nr = 64>,
//     cuda = #kiln.gemm<bm = 32, bn = 16, bk = 16, tm = 2, tn = 2, split_k = 8>}}
// ```
//
// A kind of kernel with nothing to choose on a target has no entry for it.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_SCHEDULES_TD
#define KILN_SCHEDULES_TD

include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/OpBase.td"

// The dialect, declared again for the attributes' definitions (the
// generated dialect code comes from KilnOps.td).
def Kiln_ScheduleDialect : Dialect {
  let name = "kiln";
  let cppNamespace = "::kiln";
}

class Kiln_Schedule<string name, string attrMnemonic>
    : AttrDef<Kiln_ScheduleDialect, name> {
  let mnemonic = attrMnemonic;
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def Kiln_GemmSchedule : Kiln_Schedule<"GemmSchedule", "gemm"> {
  let summary = "the CUDA tiling of a matmul kernel";
  let description = [{
    A block computes `bm` x `bn` outputs in steps of `bk` along k, each of
    its threads `tm` x `tn` of them in registers, in `split_k` groups of
    threads that take every `split_k`-th k tile and add their partial sums
    in group order (deterministic). The block has
    `(bm / tm) * (bn / tn) * split_k` threads; tiles are double-buffered in
    static shared memory. The valid space: `bm`, `bn` in {16, 32, 64, 128},
    `bk` in {8, 16}, `tm`, `tn` in {1, 2, 4, 8}, `split_k` in {1, 2, 4, 8,
    16}, 32 to 256 threads a group, at most 512 threads (256 when a thread
    keeps 32 outputs or more), and, checked against the kernel's element
    type, at most 64 outputs a thread (16 for f64) and 48 KiB of shared
    memory.

    `#kiln.gemm<bm = 128, bn = 128, bk = 16, tm = 8, tn = 8, split_k = 1>`
  }];
  let parameters = (ins "int64_t":$bm, "int64_t":$bn, "int64_t":$bk,
                        "int64_t":$tm, "int64_t":$tn, "int64_t":$split_k);
  let extraClassDeclaration = [{
    int64_t threadsPerGroup() const {
      return (getBm() / getTm()) * (getBn() / getTn());
    }
    int64_t threads() const { return threadsPerGroup() * getSplitK(); }
  }];
}

def Kiln_ConvSchedule : Kiln_Schedule<"ConvSchedule", "conv"> {
  let summary = "the tiling of a convolution as an implicit GEMM";
  let description = [{
    On the GPU a convolution (forward, input gradient, weight gradient) is
    an implicit GEMM: a block computes `bm` x `bn` outputs in steps of `bk`
    along k, each thread `tm` x `tn` of them; `split_k` blocks sum slices
    of k (the weight gradient's long batch-times-image sum), the last to
    arrive adding the slices in order. Index arithmetic is done in
    `index_bits` (32 or 64) bits. The C++ weight gradient sums the same
    slices in the same order, so its CPU schedule is the CUDA one. The
    valid space: `bm` in {16, 32, 64, 128}, `bn` in {16, 32, 64}, `bk`
    from 1 to 16, `tm`, `tn` in {1, 2, 4, 8}, `split_k` from 1 to 128; the
    kernel checks that its threads divide its tiles.

    `#kiln.conv<bm = 128, bn = 32, bk = 16, tm = 4, tn = 4, split_k = 1, index_bits = 32>`
  }];
  let parameters = (ins "int64_t":$bm, "int64_t":$bn, "int64_t":$bk,
                        "int64_t":$tm, "int64_t":$tn, "int64_t":$split_k,
                        "int64_t":$index_bits);
  let extraClassDeclaration = [{
    int64_t threads() const {
      return (getBm() / getTm()) * (getBn() / getTn());
    }
  }];
}

def Kiln_ReductionScheme : I32EnumAttr<"ReductionScheme",
    "how the threads of a CUDA reduction share its rows", [
    I32EnumAttrCase<"single", 0>, I32EnumAttrCase<"warp_rows", 1>,
    I32EnumAttrCase<"block_rows", 2>, I32EnumAttrCase<"columns", 3>]> {
  let cppNamespace = "::kiln";
  let genSpecializedAttr = 0;
}

def Kiln_ReduceSchedule : Kiln_Schedule<"ReduceSchedule", "reduce"> {
  let summary = "how a CUDA reduction kernel shares its rows among threads";
  let description = [{
    `warp_rows`: one warp a row (lanes stride over the reduced elements,
    butterfly shuffles combine), `block_x` threads a block;
    `block_rows`: one block of `block_x` threads a row (shuffles, then the
    warps' values in shared memory, in order); `columns` (the kept
    dimensions innermost): blocks of `block_x` consecutive columns times
    `block_y` slices of the reduced rows, the slices combined in shared
    memory in order of y; `single`: one thread (count, which reads only
    sizes). A cross-entropy kernel is one block of `block_x` threads whose
    warps or block take its rows. `block_x` * `block_y` is at most 1024;
    the row schemes take whole warps and `block_y` = 1.

    `#kiln.reduce<scheme = warp_rows, block_x = 256, block_y = 1>`
  }];
  let parameters = (ins EnumParameter<Kiln_ReductionScheme>:$scheme,
                        "int64_t":$block_x, "int64_t":$block_y);
}

def Kiln_ElementwiseSchedule
    : Kiln_Schedule<"ElementwiseSchedule", "elementwise"> {
  let summary = "the CUDA block of an elementwise, horizontal or opaque kernel";
  let description = [{
    One thread an element in a grid-stride loop, `block` threads a block
    (a multiple of 32, at most 1024). Opaque kernels other than
    convolutions and attention (layout copies, pooling, embedding) take it
    too: their element loops have `block` threads a block, and the
    embedding gradient's block (one a table row) spans the row with them.

    `#kiln.elementwise<block = 256>`
  }];
  let parameters = (ins "int64_t":$block);
}

def Kiln_AttentionSchedule : Kiln_Schedule<"AttentionSchedule", "attention"> {
  let summary = "the tile of a fused attention kernel";
  let description = [{
    A block (CUDA) takes `tile` rows of queries (the forward and the query
    gradient) or of keys (the key/value gradient), and steps over the other
    side `tile` rows at a time with the tiles in shared memory; its 256
    threads each own `tile` / 16 rows and columns of a tile product. The C++
    kernels step over keys `tile` at a time too, so both targets sum alike.
    `tile` is 16, 32 or 64; the tiles of a block must fit 100 KiB of shared
    memory.

    `#kiln.attention<tile = 64>`
  }];
  let parameters = (ins "int64_t":$tile);
}

def Kiln_CpuGemmSchedule : Kiln_Schedule<"CpuGemmSchedule", "cpu_gemm"> {
  let summary = "the register block of a C++ matmul kernel";
  let description = [{
    B is packed in panels of `nr` columns; each `mr` x `nr` tile of C is
    summed in vector registers over k in increasing order
    (`kiln_gemm_micro` in `codegen/device/cpu_gemm.h`), then its epilogue
    runs. `mr` is from 1 to 16; `nr` is 16, 32, 48 or 64 (a whole number
    of vectors of every instruction set, f32 or f64), and a tile holds at
    most 512 elements (32 AVX-512 registers of f32).

    `#kiln.cpu_gemm<mr = 6, nr = 64>`
  }];
  let parameters = (ins "int64_t":$mr, "int64_t":$nr);
}

#endif // KILN_SCHEDULES_TD
