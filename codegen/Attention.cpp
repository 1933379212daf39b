//===- Attention.cpp - fused attention kernels, forward and backward ------===//
//
// Three opaque kernels implement scaled dot-product attention without ever
// storing a Tq x Tk matrix in memory (flash attention, in fp32/fp64 SIMT):
//
//   attention          q [.., Tq, D], k [.., Tk, D], v [.., Tk, Dv]
//                      -> o [.., Tq, Dv], lse [.., Tq]
//   attention_grad_q   q, k, v, g = do, lse, delta -> dq [.., Tq, D]
//   attention_grad_kv  q, k, v, g, lse, delta -> dk [.., Tk, D],
//                                                dv [.., Tk, Dv]
//
// where delta_i = rowsum(g_i * o_i) is an ordinary reduction kernel before
// them (the gradient rule in ir/Gradients.cpp builds it). The sequence
// lengths and feature sizes must be static; the leading batch dimensions may
// be dynamic and broadcast (a size-1 dimension of q, k or v is read with
// stride 0).
//
// CUDA: a block of 256 threads per (batch entry, tile of BT rows), BT the
// kernel's schedule (#kiln.attention<tile = 64>; kiln-schedule picks 32 or
// 16 when the tiles would not fit the shared-memory budget, f64 or a large
// D, or the sequences are short). The threads form a 16 x 16 grid: thread (r,
// c) owns the rows r + 16a and the columns c + 16b (a, b < R = BT / 16) of each
// BT x BT score tile, and the columns c + 16e of its rows' outputs. Tiles live
// in dynamic shared memory, rows padded by one element where a warp reads
// different rows at once (conflict-free), and every sum runs sequentially
// in a fixed order, so reruns are bit-identical:
//
//   forward (per query tile): Q stays in shared memory; for each key tile
//     (causal: only those at or left of the diagonal) load K and V, compute
//     the scores s = scale * q . k (sum over d in order), mask, take the
//     row maximum over the 16 threads of a row (shuffles: max is exact),
//     rescale the running output and sum by alpha = exp(m_old - m_new),
//     write p = exp(s - m_new) to shared memory and add p_j v_j for j in
//     order (each thread also sums its rows' p in order, so the row sum
//     needs no cross-thread reduction). At the end o = acc / l and
//     lse = m + log(l).
//   grad_q (per query tile): Q and dO stay; for each key tile recompute
//     p = exp(scale * q . k - lse), dp = dO . v, dS = p (dp - delta) into
//     shared memory, and add dS_ij k_j to dq in key order; dq *= scale.
//   grad_kv (per key tile): K and V stay; for each query tile (causal: at
//     or below the diagonal) recompute p and dS transposed (keys as rows)
//     and add p_ij dO_i to dv and dS_ij q_i to dk in query order;
//     dk *= scale.
//
// No atomics and no partial sums across blocks: each output element
// belongs to one thread of one block. The C++ target runs the same
// computation per row with the same tiles and the same order of every sum
// (only fused multiply-adds, which NVRTC contracts and the host compiler
// does not, and the exp/log implementations differ).
//
// Shared memory (f32, D = Dv = 64, BT = 64): forward 65 KiB, grad_q 81 KiB,
// grad_kv 98 KiB: opted in above 48 KiB by the runtime, 2 or 3 blocks an
// SM. Each thread issues about one shared-memory load per two FMAs (R + R
// loads for R x R products), so the kernels are bound by shared-memory
// bandwidth at about half the FMA peak. Expected cost for the GPT
// (examples/gpt.kiln: B*H = 384 at batch 64, T = 256, D = 64, causal:
// 10 of the 16 tile pairs) on an H100 (~33 T FMA/s fp32, ~16 T/s here):
// forward 2 x 64^3 FMAs a tile pair, 2.0 G FMAs a layer, ~130 us; grad_q
// 3 x 64^3 a pair, 3.0 G, ~190 us; grad_kv 4 x 64^3 a pair, 4.0 G,
// ~250 us; and only q, k, v, o, lse and the gradients in memory (the
// decomposition wrote and read the 100 MB [B, H, T, T] scores and
// probabilities several times a layer, and saved them for the backward
// pass). Measured on an H200 (`kiln-bench --profile`): forward 0.33 ms,
// grad_q 0.49 ms, grad_kv 0.55 ms a layer, about 6, 6 and 7 T FMA/s
// against the 16 T/s assumed above. Tensor-core (TF32/bf16 mma) tiles are
// the next step.
//
//===----------------------------------------------------------------------===//

#include "codegen/CodegenUtils.h"
#include "codegen/DeviceSources.h"
#include "codegen/Template.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/StringExtras.h"

#include <algorithm>

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

namespace {

/// Threads a block: a 16 x 16 grid.
constexpr unsigned kThreads = 256;
enum class Kind { forward, gradQ, gradKv };

/// What the generators need to know about the op.
struct Attention {
  Kind kind;
  Operation *op;
  Value q, k, v, grad, lse, delta; // the last three only for the gradients
  bool causal;
  double scale;
  int64_t tq, tk, d, dv;
  /// The C type of the elements.
  std::string type;
  /// Each op result's pointer ("out<n>"), or "" when the kernel does not
  /// yield it (an unused log-sum-exp in an evaluation step).
  SmallVector<std::string, 2> outputs;
  /// The pointer of each operand ("in<n>").
  std::string pq, pk, pv, pgrad, plse, pdelta;
};

/// The pointer name of kernel block argument `v`, or failure.
FailureOr<std::string> inputName(KernelOp kernel, Operation *op, Value v) {
  auto arg = llvm::dyn_cast<BlockArgument>(v);
  if (!arg || arg.getOwner() != &kernel.getBlock())
    return op->emitError("code generation needs the operands of an "
                         "attention kernel's op to be kernel inputs");
  return "in" + std::to_string(arg.getArgNumber());
}

/// The batch dimensions of the op (the broadcast of q, k and v's) as C
/// expressions, and the offset of each operand's matrix for batch entry `b`.
struct Batch {
  /// "B0 = 64LL, B1 = 6LL" declarations of the sizes.
  SmallVector<std::string> declarations;
  /// "B0 * B1" or "1LL".
  std::string count;
  /// Lines computing b0, b1, ... from `b` and the matrix index of q, k, v.
  std::string decode;
  GridExtent extent;
};

/// Batch entry b = ((b0 * B1) + b1) * B2 + b2 ...: a step of peeling the
/// innermost dimension off `rest`, and the last, outermost one.
constexpr const char *kPeel = R"(
const long long b${I} = rest % ${SIZE};
rest /= ${SIZE};
)";
constexpr const char *kPeelLast = "const long long b0 = rest;\n";

/// Declares the batch sizes from `full` (a kernel operand, index `operand`,
/// whose leading `rank` dimensions are the broadcast batch) and decodes the
/// batch index of q, k and v.
Batch batchOf(const Attention &a, GeneratedKernel &generated, Value full,
              unsigned operand) {
  Batch batch;
  auto fullType = llvm::cast<RankedTensorType>(full.getType());
  int64_t rank =
      llvm::cast<RankedTensorType>(a.op->getResult(0).getType()).getRank() - 2;
  SmallVector<std::string> names;
  for (int64_t i = 0; i < rank; ++i) {
    std::string name = "B" + std::to_string(i);
    int64_t size = fullType.getDimSize(i);
    std::string value = dimSize(generated, fullType, operand, i);
    if (ShapedType::isDynamic(size))
      batch.extent.dynamicFactors.push_back(
          dynamicDimIndex(generated, operand, i));
    else
      batch.extent.constant *= size;
    batch.declarations.push_back(name + " = " + value);
    names.push_back(name);
  }
  batch.count = names.empty() ? "1LL" : llvm::join(names, " * ");
  // b = ((b0 * B1) + b1) * B2 + b2 ...: peel the innermost first.
  Code decode;
  if (rank > 0) {
    print(decode.os, "long long rest = b;\n");
    for (int64_t i = rank - 1; i > 0; --i)
      print(decode.os, kPeel, {{"I", std::to_string(i)}, {"SIZE", names[i]}});
    print(decode.os, kPeelLast);
  }
  // Each operand's matrix: its own batch dimensions, aligned to the right;
  // a static size 1 is broadcast (stride 0).
  auto matrixOf = [&](Value v, StringRef what) {
    auto type = llvm::cast<RankedTensorType>(v.getType());
    unsigned argNumber = llvm::cast<BlockArgument>(v).getArgNumber();
    int64_t own = type.getRank() - 2;
    std::string index = "0LL";
    for (int64_t i = 0; i < own; ++i) {
      if (type.getDimSize(i) == 1)
        continue;
      std::string term = "b" + std::to_string(rank - own + i);
      for (int64_t j = i + 1; j < own; ++j)
        if (type.getDimSize(j) != 1)
          term += " * " + dimSize(generated, type, argNumber, j);
      index = index == "0LL" ? term : index + " + " + term;
    }
    print(decode.os, "const long long ${MATRIX} = ${INDEX};\n",
          {{"MATRIX", what.str()}, {"INDEX", index}});
  };
  matrixOf(a.q, "mq");
  matrixOf(a.k, "mk");
  matrixOf(a.v, "mv");
  batch.decode = decode.str();
  return batch;
}

/// The values every kernel refers to.
std::vector<std::pair<StringRef, std::string>>
values(const Attention &a, int64_t bt, Target target) {
  Type element = elementOf(a.q);
  bool f64 = a.type == "double";
  return {
      {"OP", a.op->getName().stripDialect().str()},
      {"LOCATION", locationOf(a.op)},
      {"T", a.type},
      {"TQ", std::to_string(a.tq)},
      {"TK", std::to_string(a.tk)},
      {"DK", std::to_string(a.d)},
      {"DV", std::to_string(a.dv)},
      {"BT", std::to_string(bt)},
      {"R", std::to_string(bt / 16)},
      {"ND", std::to_string((a.d + 15) / 16)},
      {"NV", std::to_string((a.dv + 15) / 16)},
      {"CAUSAL", a.causal ? "true" : "false"},
      {"SCALE", literal(a.scale, element)},
      {"EXP", math("exp", element, target)},
      {"LOG", math("log", element, target)},
      {"MAX", f64 ? "fmax" : "fmaxf"},
      {"ZERO", literal(0, element)},
      {"INF", "((" + a.type + ")KILN_HUGE_VALUE)"},
      {"Q", a.pq},
      {"K", a.pk},
      {"V", a.pv},
      {"G", a.pgrad},
      {"LSE", a.plse},
      {"DELTA", a.pdelta},
  };
}

/// The constants every body starts with, after the op's name; ${SIZES}
/// declares the batch dimensions (no line without them).
constexpr const char *kConstants = R"(
// ${OP} at ${LOCATION}
constexpr long long TQ = ${TQ}, TK = ${TK}; // sequence lengths
constexpr int DK = ${DK}, DV = ${DV}; // features of q and k, of v
constexpr bool CAUSAL = ${CAUSAL};
const ${T} scale = ${SCALE};
${SIZES}
)";
constexpr const char *kSizes =
    "const long long ${DECLARATIONS}; // batch dimensions";

/// CUDA: the block's batch entry and tile (TILES a batch entry, taken in
/// ${ORDER}), its threads' place in the 16 x 16 grid, and the shared tiles
/// (${SHARED}: kSharedTile's).
constexpr const char *kTilesCuda = R"(
// batch entry b, tile of BT rows; the threads' grid is 16 x 16
constexpr int BT = ${BT}, R = ${R}; // tile rows; rows and columns a thread owns
constexpr long long TILES = ${TILES};
const long long b = blockIdx.x / TILES;
const long long tile = ${ORDER};
const int r = threadIdx.x / 16, c = threadIdx.x % 16;
extern __shared__ __align__(16) unsigned char kiln_attention_smem[];
${SHARED}
)";
/// A shared tile of ${SIZE} elements, at ${START}: the start of the shared
/// memory or the end of the tile before it.
constexpr const char *kSharedTile = "${T} *${NAME} = ${START}; // [${SIZE}]\n";

/// C++: the batch entries, one after the other.
constexpr const char *kBatchCpp = "const long long BATCH = ${COUNT};\n";

/// A generated part: `text` filled with `values` at column 0 (its leading
/// empty lines skipped), for a block of a template.
std::string part(StringRef text, TemplateValues values) {
  Code code;
  print(code.os, text, values);
  return code.str();
}

/// CUDA: the shared tiles (name, elements), laid out one after the other.
std::string sharedTiles(const Attention &a,
                        ArrayRef<std::pair<StringRef, StringRef>> shared) {
  Code code;
  std::string start = "(" + a.type + " *)kiln_attention_smem";
  for (auto [name, size] : shared) {
    print(code.os, kSharedTile,
          {{"T", a.type},
           {"NAME", name.str()},
           {"START", start},
           {"SIZE", size.str()}});
    start = name.str() + " + " + size.str();
  }
  return code.str();
}

//===----------------------------------------------------------------------===//
// Forward
//===----------------------------------------------------------------------===//

// Each kernel is one template: ${PROLOGUE} is kConstants followed by
// kTilesCuda (CUDA) or kBatchCpp (C++), ${DECODE} the batch entry's indices
// and matrices (batchOf), ${ENTRY} the C++ target's entry point.

constexpr const char *kForwardCuda = R"(
${SIGNATURE} {
  ${PROLOGUE}
  ${DECODE}
  const ${T} *q = ${Q} + mq * (TQ * DK);
  const ${T} *k = ${K} + mk * (TK * DK);
  const ${T} *v = ${V} + mv * (TK * DV);

  kiln_attention_load(Qs, DK + 1, q, tile * BT, TQ, DK, BT);
  const long long q0 = tile * BT;
  ${T} m[R], l[R], acc[R][${NV}];
#pragma unroll
  for (int a = 0; a < R; ++a) {
    m[a] = -${INF};
    l[a] = ${ZERO};
#pragma unroll
    for (int e = 0; e < ${NV}; ++e)
      acc[a][e] = ${ZERO};
  }
  // Causal: the key tiles at or left of the diagonal of this query tile.
  const long long lastKey = CAUSAL ? q0 + BT - 1 : TK - 1;
  const long long kTiles = (lastKey < TK - 1 ? lastKey : TK - 1) / BT + 1;
  for (long long kt = 0; kt < kTiles; ++kt) {
    const long long k0 = kt * BT;
    __syncthreads(); // the previous tile's K, V and P are read
    kiln_attention_load(Ks, DK + 1, k, k0, TK, DK, BT);
    kiln_attention_load(Vs, DV, v, k0, TK, DV, BT);
    __syncthreads();
    // Scores of rows r + 16a and keys c + 16b, summed over d in order.
    ${T} s[R][R];
    kiln_attention_products(s, Qs, Ks, DK + 1, DK, r, c);
    // Online softmax: the new row maximum (over the 16 threads of the row),
    // the rescaling of what was summed before, and this tile's p.
    ${T} alpha[R];
#pragma unroll
    for (int a = 0; a < R; ++a) {
      const long long i = q0 + r + 16 * a;
      ${T} tileMax = -${INF};
#pragma unroll
      for (int j = 0; j < R; ++j) {
        const long long key = k0 + c + 16 * j;
        s[a][j] = key < TK && (!CAUSAL || key <= i) ? s[a][j] * scale : -${INF};
        tileMax = ${MAX}(tileMax, s[a][j]);
      }
      for (int offset = 8; offset > 0; offset /= 2)
        tileMax = ${MAX}(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, offset));
      const ${T} mNew = ${MAX}(m[a], tileMax);
      alpha[a] = ${EXP}(m[a] - mNew);
      m[a] = mNew;
#pragma unroll
      for (int j = 0; j < R; ++j)
        Ps[(r + 16 * a) * (BT + 1) + c + 16 * j] = ${EXP}(s[a][j] - mNew);
    }
    __syncthreads();
    // acc = acc * alpha + sum_j p_j v_j and l = l * alpha + sum_j p_j, with
    // j in order.
    ${T} rowSum[R];
#pragma unroll
    for (int a = 0; a < R; ++a) {
      rowSum[a] = ${ZERO};
#pragma unroll
      for (int e = 0; e < ${NV}; ++e)
        acc[a][e] *= alpha[a];
    }
    for (int j = 0; j < BT; ++j) {
      ${T} ve[${NV}];
#pragma unroll
      for (int e = 0; e < ${NV}; ++e)
        ve[e] = c + 16 * e < DV ? Vs[j * DV + c + 16 * e] : ${ZERO};
#pragma unroll
      for (int a = 0; a < R; ++a) {
        const ${T} p = Ps[(r + 16 * a) * (BT + 1) + j];
        rowSum[a] += p;
#pragma unroll
        for (int e = 0; e < ${NV}; ++e)
          acc[a][e] += p * ve[e];
      }
    }
#pragma unroll
    for (int a = 0; a < R; ++a)
      l[a] = l[a] * alpha[a] + rowSum[a];
  }
#pragma unroll
  for (int a = 0; a < R; ++a) {
    const long long i = q0 + r + 16 * a;
    if (i >= TQ)
      continue;
#pragma unroll
    for (int e = 0; e < ${NV}; ++e)
      if (c + 16 * e < DV)
        ${STORE_O}
    ${STORE_LSE}
  }
}
)";

constexpr const char *kForwardCpp = R"(
${SIGNATURE} {
  ${PROLOGUE}

  constexpr long long BT = ${BT}; // keys a step, as on the GPU
  for (long long b = 0; b < BATCH; ++b) {
    ${DECODE}
    const ${T} *q = ${Q} + mq * (TQ * DK);
    const ${T} *k = ${K} + mk * (TK * DK);
    const ${T} *v = ${V} + mv * (TK * DV);
    ${POINTER_O}
    ${POINTER_LSE}
    for (long long i = 0; i < TQ; ++i) {
      const ${T} *qi = q + i * DK;
      const long long seen = CAUSAL ? (i + 1 < TK ? i + 1 : TK) : TK;
      ${T} m = -${INF}, l = ${ZERO}, acc[DV], s[BT];
      for (int e = 0; e < DV; ++e)
        acc[e] = ${ZERO};
      for (long long k0 = 0; k0 < seen; k0 += BT) {
        const long long n = seen - k0 < BT ? seen - k0 : BT;
        ${T} tileMax = -${INF};
        for (long long j = 0; j < n; ++j) {
          ${T} dot = ${ZERO};
          for (int d = 0; d < DK; ++d)
            dot += qi[d] * k[(k0 + j) * DK + d];
          s[j] = dot * scale;
          tileMax = ${MAX}(tileMax, s[j]);
        }
        const ${T} mNew = ${MAX}(m, tileMax);
        const ${T} alpha = ${EXP}(m - mNew);
        m = mNew;
        ${T} rowSum = ${ZERO};
        for (int e = 0; e < DV; ++e)
          acc[e] *= alpha;
        for (long long j = 0; j < n; ++j) {
          const ${T} p = ${EXP}(s[j] - mNew);
          rowSum += p;
          for (int e = 0; e < DV; ++e)
            acc[e] += p * v[(k0 + j) * DV + e];
        }
        l = l * alpha + rowSum;
      }
      for (int e = 0; e < DV; ++e)
        ${STORE_O}
      ${STORE_LSE}
    }
  }
}
${ENTRY}
)";

/// The stores of the forward's results where the kernel yields them: o
/// (otherwise an empty statement) and lse (otherwise no line), at ${OUT}.
constexpr const char *kStoreOCuda =
    "${OUT}[b * (TQ * DV) + i * DV + c + 16 * e] = acc[a][e] / l[a];";
constexpr const char *kStoreLseCuda = R"(
if (c == 0)
  ${OUT}[b * TQ + i] = m[a] + ${LOG}(l[a]);
)";
constexpr const char *kPointerOCpp = "${T} *o = ${OUT} + b * (TQ * DV);";
constexpr const char *kPointerLseCpp = "${T} *lse = ${OUT} + b * TQ;";
constexpr const char *kStoreOCpp = "o[i * DV + e] = acc[e] / l;";
constexpr const char *kStoreLseCpp = "lse[i] = m + ${LOG}(l);";

//===----------------------------------------------------------------------===//
// Backward: dq
//===----------------------------------------------------------------------===//

/// CUDA: s = q . k and dp = dO . v of the thread's R x R pairs, `ROWS` and
/// `COLS` naming the shared tiles whose rows are the pairs' rows (r + 16a)
/// and columns (c + 16j).
constexpr const char *kScoresCuda = R"(
${T} s[R][R], dp[R][R];
kiln_attention_products(s, ${QROWS}, ${QCOLS}, DK + 1, DK, r, c);
kiln_attention_products(dp, ${VROWS}, ${VCOLS}, DV + 1, DV, r, c);
)";

constexpr const char *kGradQCuda = R"(
${SIGNATURE} {
  ${PROLOGUE}
  ${DECODE}
  const ${T} *q = ${Q} + mq * (TQ * DK);
  const ${T} *k = ${K} + mk * (TK * DK);
  const ${T} *v = ${V} + mv * (TK * DV);
  const ${T} *g = ${G} + b * (TQ * DV);
  const ${T} *lse = ${LSE} + b * TQ;
  const ${T} *delta = ${DELTA} + b * TQ;
  ${T} *dq_out = ${DQ} + b * (TQ * DK);

  const long long q0 = tile * BT;
  kiln_attention_load(Qs, DK + 1, q, q0, TQ, DK, BT);
  kiln_attention_load(Gs, DV + 1, g, q0, TQ, DV, BT);
  ${T} lseRow[R], deltaRow[R], dq[R][${ND}];
#pragma unroll
  for (int a = 0; a < R; ++a) {
    const long long i = q0 + r + 16 * a;
    lseRow[a] = i < TQ ? lse[i] : ${ZERO};
    deltaRow[a] = i < TQ ? delta[i] : ${ZERO};
#pragma unroll
    for (int e = 0; e < ${ND}; ++e)
      dq[a][e] = ${ZERO};
  }
  const long long lastKey = CAUSAL ? q0 + BT - 1 : TK - 1;
  const long long kTiles = (lastKey < TK - 1 ? lastKey : TK - 1) / BT + 1;
  for (long long kt = 0; kt < kTiles; ++kt) {
    const long long k0 = kt * BT;
    __syncthreads(); // the previous tile's K, V and dS are read
    kiln_attention_load(Ks, DK + 1, k, k0, TK, DK, BT);
    kiln_attention_load(Vs, DV + 1, v, k0, TK, DV, BT);
    __syncthreads();

    ${SCORES}

    // dS = p (dp - delta), p recomputed from the saved log-sum-exp.
#pragma unroll
    for (int a = 0; a < R; ++a) {
      const long long i = q0 + r + 16 * a;
#pragma unroll
      for (int j = 0; j < R; ++j) {
        const long long key = k0 + c + 16 * j;
        const bool seen = i < TQ && key < TK && (!CAUSAL || key <= i);
        const ${T} p = seen ? ${EXP}(s[a][j] * scale - lseRow[a]) : ${ZERO};
        dSs[(r + 16 * a) * (BT + 1) + c + 16 * j] = p * (dp[a][j] - deltaRow[a]);
      }
    }
    __syncthreads();
    // dq += dS k, keys in order.
    for (int j = 0; j < BT; ++j) {
      ${T} ke[${ND}];
#pragma unroll
      for (int e = 0; e < ${ND}; ++e)
        ke[e] = c + 16 * e < DK ? Ks[j * (DK + 1) + c + 16 * e] : ${ZERO};
#pragma unroll
      for (int a = 0; a < R; ++a) {
        const ${T} ds = dSs[(r + 16 * a) * (BT + 1) + j];
#pragma unroll
        for (int e = 0; e < ${ND}; ++e)
          dq[a][e] += ds * ke[e];
      }
    }
  }
#pragma unroll
  for (int a = 0; a < R; ++a) {
    const long long i = q0 + r + 16 * a;
    if (i >= TQ)
      continue;
#pragma unroll
    for (int e = 0; e < ${ND}; ++e)
      if (c + 16 * e < DK)
        dq_out[i * DK + c + 16 * e] = dq[a][e] * scale;
  }
}
)";

constexpr const char *kGradQCpp = R"(
${SIGNATURE} {
  ${PROLOGUE}

  for (long long b = 0; b < BATCH; ++b) {
    ${DECODE}
    const ${T} *q = ${Q} + mq * (TQ * DK);
    const ${T} *k = ${K} + mk * (TK * DK);
    const ${T} *v = ${V} + mv * (TK * DV);
    const ${T} *g = ${G} + b * (TQ * DV);
    const ${T} *lse = ${LSE} + b * TQ;
    const ${T} *delta = ${DELTA} + b * TQ;
    ${T} *dq_out = ${DQ} + b * (TQ * DK);
    for (long long i = 0; i < TQ; ++i) {
      const ${T} *qi = q + i * DK, *gi = g + i * DV;
      const long long seen = CAUSAL ? (i + 1 < TK ? i + 1 : TK) : TK;
      ${T} dq[DK];
      for (int d = 0; d < DK; ++d)
        dq[d] = ${ZERO};
      for (long long j = 0; j < seen; ++j) {
        const ${T} *kj = k + j * DK, *vj = v + j * DV;
        ${T} s = ${ZERO}, dp = ${ZERO};
        for (int d = 0; d < DK; ++d)
          s += qi[d] * kj[d];
        for (int e = 0; e < DV; ++e)
          dp += gi[e] * vj[e];
        const ${T} p = ${EXP}(s * scale - lse[i]);
        const ${T} ds = p * (dp - delta[i]);
        for (int d = 0; d < DK; ++d)
          dq[d] += ds * kj[d];
      }
      for (int d = 0; d < DK; ++d)
        dq_out[i * DK + d] = dq[d] * scale;
    }
  }
}
${ENTRY}
)";

//===----------------------------------------------------------------------===//
// Backward: dk, dv
//===----------------------------------------------------------------------===//

constexpr const char *kGradKvCuda = R"(
${SIGNATURE} {
  ${PROLOGUE}
  ${DECODE}
  const ${T} *q = ${Q} + mq * (TQ * DK);
  const ${T} *k = ${K} + mk * (TK * DK);
  const ${T} *v = ${V} + mv * (TK * DV);
  const ${T} *g = ${G} + b * (TQ * DV);
  const ${T} *lse = ${LSE} + b * TQ;
  const ${T} *delta = ${DELTA} + b * TQ;

  const long long k0 = tile * BT;
  kiln_attention_load(Ks, DK + 1, k, k0, TK, DK, BT);
  kiln_attention_load(Vs, DV + 1, v, k0, TK, DV, BT);
  ${T} dk[R][${ND}], dv[R][${NV}];
#pragma unroll
  for (int a = 0; a < R; ++a) {
#pragma unroll
    for (int e = 0; e < ${ND}; ++e)
      dk[a][e] = ${ZERO};
#pragma unroll
    for (int e = 0; e < ${NV}; ++e)
      dv[a][e] = ${ZERO};
  }
  // Causal: the query tiles at or below the diagonal of this key tile.
  const long long firstTile = CAUSAL ? k0 / BT : 0;
  const long long qTiles = (TQ + BT - 1) / BT;
  for (long long qt = firstTile; qt < qTiles; ++qt) {
    const long long q0 = qt * BT;
    __syncthreads(); // the previous tile's Q, dO, P and dS are read
    kiln_attention_load(Qs, DK + 1, q, q0, TQ, DK, BT);
    kiln_attention_load(Gs, DV + 1, g, q0, TQ, DV, BT);
    for (int x = threadIdx.x; x < BT; x += blockDim.x) {
      lseTile[x] = q0 + x < TQ ? lse[q0 + x] : ${ZERO};
      deltaTile[x] = q0 + x < TQ ? delta[q0 + x] : ${ZERO};
    }
    __syncthreads();
    // Transposed: rows are keys k0 + r + 16a, columns queries q0 + c + 16j.

    ${SCORES}

#pragma unroll
    for (int a = 0; a < R; ++a) {
      const long long key = k0 + r + 16 * a;
#pragma unroll
      for (int j = 0; j < R; ++j) {
        const long long i = q0 + c + 16 * j;
        const bool seen = i < TQ && key < TK && (!CAUSAL || key <= i);
        const ${T} p = seen ? ${EXP}(s[a][j] * scale - lseTile[c + 16 * j]) : ${ZERO};
        Ps[(r + 16 * a) * (BT + 1) + c + 16 * j] = p;
        dSs[(r + 16 * a) * (BT + 1) + c + 16 * j] = p * (dp[a][j] - deltaTile[c + 16 * j]);
      }
    }
    __syncthreads();
    // dv += p dO and dk += dS q, queries in order.
    for (int x = 0; x < BT; ++x) {
      ${T} ge[${NV}], qe[${ND}];
#pragma unroll
      for (int e = 0; e < ${NV}; ++e)
        ge[e] = c + 16 * e < DV ? Gs[x * (DV + 1) + c + 16 * e] : ${ZERO};
#pragma unroll
      for (int e = 0; e < ${ND}; ++e)
        qe[e] = c + 16 * e < DK ? Qs[x * (DK + 1) + c + 16 * e] : ${ZERO};
#pragma unroll
      for (int a = 0; a < R; ++a) {
        const ${T} p = Ps[(r + 16 * a) * (BT + 1) + x];
        const ${T} ds = dSs[(r + 16 * a) * (BT + 1) + x];
#pragma unroll
        for (int e = 0; e < ${NV}; ++e)
          dv[a][e] += p * ge[e];
#pragma unroll
        for (int e = 0; e < ${ND}; ++e)
          dk[a][e] += ds * qe[e];
      }
    }
  }
#pragma unroll
  for (int a = 0; a < R; ++a) {
    const long long key = k0 + r + 16 * a;
    if (key >= TK)
      continue;
    ${STORE_DK}
    ${STORE_DV}
  }
}
)";

constexpr const char *kGradKvCpp = R"(
${SIGNATURE} {
  ${PROLOGUE}

  for (long long b = 0; b < BATCH; ++b) {
    ${DECODE}
    const ${T} *q = ${Q} + mq * (TQ * DK);
    const ${T} *k = ${K} + mk * (TK * DK);
    const ${T} *v = ${V} + mv * (TK * DV);
    const ${T} *g = ${G} + b * (TQ * DV);
    const ${T} *lse = ${LSE} + b * TQ;
    const ${T} *delta = ${DELTA} + b * TQ;
    for (long long j = 0; j < TK; ++j) {
      const ${T} *kj = k + j * DK, *vj = v + j * DV;
      ${T} dk[DK], dv[DV];
      for (int d = 0; d < DK; ++d)
        dk[d] = ${ZERO};
      for (int e = 0; e < DV; ++e)
        dv[e] = ${ZERO};
      for (long long i = CAUSAL ? j : 0; i < TQ; ++i) {
        const ${T} *qi = q + i * DK, *gi = g + i * DV;
        ${T} s = ${ZERO}, dp = ${ZERO};
        for (int d = 0; d < DK; ++d)
          s += kj[d] * qi[d];
        for (int e = 0; e < DV; ++e)
          dp += vj[e] * gi[e];
        const ${T} p = ${EXP}(s * scale - lse[i]);
        const ${T} ds = p * (dp - delta[i]);
        for (int e = 0; e < DV; ++e)
          dv[e] += p * gi[e];
        for (int d = 0; d < DK; ++d)
          dk[d] += ds * qi[d];
      }
      ${STORE_DK}
      ${STORE_DV}
    }
  }
}
${ENTRY}
)";

/// The stores of dk and dv where the kernel yields them, at ${OUT}.
constexpr const char *kStoreDkCuda = R"(
#pragma unroll
for (int e = 0; e < ${ND}; ++e)
  if (c + 16 * e < DK)
    ${OUT}[b * (TK * DK) + key * DK + c + 16 * e] = dk[a][e] * scale;
)";
constexpr const char *kStoreDvCuda = R"(
#pragma unroll
for (int e = 0; e < ${NV}; ++e)
  if (c + 16 * e < DV)
    ${OUT}[b * (TK * DV) + key * DV + c + 16 * e] = dv[a][e];
)";
constexpr const char *kStoreDkCpp = R"(
for (int d = 0; d < DK; ++d)
  ${OUT}[b * (TK * DK) + j * DK + d] = dk[d] * scale;
)";
constexpr const char *kStoreDvCpp = R"(
for (int e = 0; e < DV; ++e)
  ${OUT}[b * (TK * DV) + j * DV + e] = dv[e];
)";

/// Fills `a` from the kernel's one op; fails (located) for what the kernels
/// do not handle.
FailureOr<Attention> analyze(KernelOp kernel) {
  Attention a;
  Operation *op = &*kernel.getBlock().without_terminator().begin();
  a.op = op;
  if (auto f = llvm::dyn_cast<AttentionOp>(op)) {
    a.kind = Kind::forward;
    a.q = f.getQuery(), a.k = f.getKey(), a.v = f.getValue();
    a.causal = f.getCausal(), a.scale = f.getScale().convertToDouble();
  } else if (auto g = llvm::dyn_cast<AttentionGradQOp>(op)) {
    a.kind = Kind::gradQ;
    a.q = g.getQuery(), a.k = g.getKey(), a.v = g.getValue();
    a.grad = g.getGrad(), a.lse = g.getLse(), a.delta = g.getDelta();
    a.causal = g.getCausal(), a.scale = g.getScale().convertToDouble();
  } else {
    auto kv = llvm::cast<AttentionGradKvOp>(op);
    a.kind = Kind::gradKv;
    a.q = kv.getQuery(), a.k = kv.getKey(), a.v = kv.getValue();
    a.grad = kv.getGrad(), a.lse = kv.getLse(), a.delta = kv.getDelta();
    a.causal = kv.getCausal(), a.scale = kv.getScale().convertToDouble();
  }
  auto last = [](Value v, int64_t fromEnd) {
    auto type = llvm::cast<RankedTensorType>(v.getType());
    return type.getDimSize(type.getRank() - fromEnd);
  };
  a.tq = last(a.q, 2), a.tk = last(a.k, 2), a.d = last(a.q, 1);
  a.dv = last(a.v, 1);
  for (int64_t size : {a.tq, a.tk, a.d, a.dv, last(a.k, 1), last(a.v, 2)})
    if (ShapedType::isDynamic(size))
      return op->emitError("the attention kernels need static sequence "
                           "lengths and feature sizes; bind them with "
                           "--bind");
  a.type = cType(elementOf(a.q));
  if (a.type != "float" && a.type != "double")
    return op->emitError("the attention kernels support f32 and f64, not ")
           << elementOf(a.q);
  // Which results the kernel yields.
  a.outputs.assign(op->getNumResults(), "");
  for (auto [n, yielded] :
       llvm::enumerate(kernel.getBlock().getTerminator()->getOperands())) {
    auto result = llvm::dyn_cast<OpResult>(yielded);
    if (!result || result.getOwner() != op)
      return kernel.emitError("an attention kernel must yield results of its "
                              "op ('")
             << kernel.getName() << "')";
    a.outputs[result.getResultNumber()] = "out" + std::to_string(n);
  }
  SmallVector<std::pair<std::string *, Value>> inputs = {
      {&a.pq, a.q}, {&a.pk, a.k}, {&a.pv, a.v}};
  if (a.kind != Kind::forward)
    inputs.append({{&a.pgrad, a.grad}, {&a.plse, a.lse}, {&a.pdelta, a.delta}});
  for (auto [name, value] : inputs) {
    FailureOr<std::string> n = inputName(kernel, op, value);
    if (failed(n))
      return failure();
    *name = *n;
  }
  return a;
}

} // namespace

FailureOr<GeneratedKernel> kiln::codegen::generateAttention(KernelOp kernel,
                                                            StringRef symbol,
                                                            Target target) {
  GeneratedKernel generated;
  if (failed(initGenerated(kernel, symbol, generated)))
    return failure();
  FailureOr<Attention> analyzed = analyze(kernel);
  if (failed(analyzed))
    return failure();
  const Attention &a = *analyzed;
  // Tiles of the schedule's rows (verifyScheduleFor checked that they fit
  // the shared memory).
  FailureOr<AttentionScheduleAttr> schedule =
      requireSchedule<AttentionScheduleAttr>(
          kernel, target == Target::cuda ? kCudaTarget : kCpuTarget);
  if (failed(schedule))
    return failure();
  int64_t bt = schedule->getTile();

  // The batch comes from an operand with the full broadcast batch: the
  // gradient of the result, or a yielded result of the forward op.
  Value full;
  unsigned fullOperand = 0;
  if (a.kind == Kind::forward) {
    for (auto [n, yielded] :
         llvm::enumerate(kernel.getBlock().getTerminator()->getOperands()))
      if (!full) {
        full = yielded;
        fullOperand = generated.numInputs + n;
      }
  } else {
    full = a.grad;
    fullOperand = llvm::cast<BlockArgument>(a.grad).getArgNumber();
  }
  Batch batch = batchOf(a, generated, full, fullOperand);
  std::vector<std::pair<StringRef, std::string>> vals = values(a, bt, target);
  int64_t tiles =
      a.kind == Kind::gradKv ? (a.tk + bt - 1) / bt : (a.tq + bt - 1) / bt;

  // The yielded results and a part of the kernel that exists only where it
  // yields one (`out`, at ${OUT}).
  std::string o = a.outputs[0],
              second = a.outputs.size() > 1 ? a.outputs[1] : std::string();
  auto yielded = [&](const std::string &out, StringRef text,
                     StringRef otherwise = "") {
    if (out.empty())
      return otherwise.str();
    auto withOut = vals;
    withOut.push_back({"OUT", out});
    return part(text, withOut);
  };
  vals.push_back(
      {"SIZES", batch.declarations.empty()
                    ? std::string()
                    : fill(kSizes, {{"DECLARATIONS",
                                     llvm::join(batch.declarations, ", ")}})});
  Code prologue;
  print(prologue.os, kConstants, vals);
  const char *kernelText = nullptr;
  if (target == Target::cuda) {
    // Heaviest tiles first: with a causal mask the last query tiles and
    // the first key tiles loop over the most tiles of the other side.
    vals.push_back({"ORDER", a.kind == Kind::gradKv
                                 ? "blockIdx.x % TILES"
                                 : "TILES - 1 - blockIdx.x % TILES"});
    vals.push_back({"TILES", std::to_string(tiles)});
    // s = q . k and dp = dO . v with the pairs' rows and columns from
    // these tiles.
    auto scores = [&](StringRef qRows, StringRef qCols, StringRef vRows,
                      StringRef vCols) {
      return part(kScoresCuda, {{"T", a.type},
                                {"QROWS", qRows.str()},
                                {"QCOLS", qCols.str()},
                                {"VROWS", vRows.str()},
                                {"VCOLS", vCols.str()}});
    };
    SmallVector<std::pair<StringRef, StringRef>> smem;
    switch (a.kind) {
    case Kind::forward:
      smem = {{"Qs", "BT * (DK + 1)"},
              {"Ks", "BT * (DK + 1)"},
              {"Vs", "BT * DV"},
              {"Ps", "BT * (BT + 1)"}};
      kernelText = kForwardCuda;
      vals.push_back({"STORE_O", yielded(o, kStoreOCuda, "{}")});
      vals.push_back({"STORE_LSE", yielded(second, kStoreLseCuda)});
      break;
    case Kind::gradQ:
      smem = {{"Qs", "BT * (DK + 1)"},
              {"Gs", "BT * (DV + 1)"},
              {"Ks", "BT * (DK + 1)"},
              {"Vs", "BT * (DV + 1)"},
              {"dSs", "BT * (BT + 1)"}};
      kernelText = kGradQCuda;
      vals.push_back({"SCORES", scores("Qs", "Ks", "Gs", "Vs")});
      break;
    case Kind::gradKv:
      smem = {{"Ks", "BT * (DK + 1)"}, {"Vs", "BT * (DV + 1)"},
              {"Qs", "BT * (DK + 1)"}, {"Gs", "BT * (DV + 1)"},
              {"Ps", "BT * (BT + 1)"}, {"dSs", "BT * (BT + 1)"},
              {"lseTile", "BT"},       {"deltaTile", "BT"}};
      kernelText = kGradKvCuda;
      vals.push_back({"SCORES", scores("Ks", "Qs", "Vs", "Gs")});
      vals.push_back({"STORE_DK", yielded(o, kStoreDkCuda)});
      vals.push_back({"STORE_DV", yielded(second, kStoreDvCuda)});
      break;
    }
    vals.push_back({"SHARED", sharedTiles(a, smem)});
    print(prologue.os, kTilesCuda, vals);
    generated.launch.grid[0] = batch.extent;
    generated.launch.grid[0].constant *= tiles;
    generated.launch.block[0] = kThreads;
    generated.launch.sharedBytes =
        static_cast<unsigned>(attentionSharedBytes(a.op, bt));
  } else {
    vals.push_back({"COUNT", batch.count});
    print(prologue.os, kBatchCpp, vals);
    switch (a.kind) {
    case Kind::forward:
      kernelText = kForwardCpp;
      vals.push_back({"POINTER_O", yielded(o, kPointerOCpp)});
      vals.push_back({"POINTER_LSE", yielded(second, kPointerLseCpp)});
      vals.push_back({"STORE_O", yielded(o, kStoreOCpp, "{}")});
      vals.push_back({"STORE_LSE", yielded(second, kStoreLseCpp)});
      break;
    case Kind::gradQ:
      kernelText = kGradQCpp;
      break;
    case Kind::gradKv:
      kernelText = kGradKvCpp;
      vals.push_back({"STORE_DK", yielded(o, kStoreDkCpp)});
      vals.push_back({"STORE_DV", yielded(second, kStoreDvCpp)});
      break;
    }
  }

  vals.push_back({"SIGNATURE", signature(kernel, generated, target,
                                         std::to_string(kThreads))});
  vals.push_back({"PROLOGUE", prologue.str()});
  vals.push_back({"DECODE", batch.decode});
  vals.push_back({"DQ", o});
  vals.push_back(
      {"ENTRY", target == Target::cpp ? cppEntry(kernel, generated) : ""});
  Code text;
  writeKernelComment(text.os, kernel);
  print(text.os, kernelText, vals);
  generated.source = text.str();
  return generated;
}

std::string kiln::codegen::attentionPreamble(Target target) {
  // The tile loads and products of the CUDA kernels (codegen/device).
  return target == Target::cuda ? device::kDeviceAttentionCuh : "";
}
