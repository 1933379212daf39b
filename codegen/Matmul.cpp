//===- Matmul.cpp - a tiled GEMM with an elementwise epilogue -------------===//
//
// A matmul kernel holds one `kiln.matmul` C[b, M, N] = A[b, M, K] B[b, K, N]
// (transpose flags read A as [K, M] or B as [N, K] storage; leading batch
// dimensions broadcast) and an epilogue of scalar ops on C's shape, which
// may yield several results. Both targets compute each output element as
// one accumulator summed over k in increasing order, then run the epilogue
// on it in registers and store every result at the flat index
// (b * M + row) * N + col, which is also dropout's Philox counter.
//
// CUDA: a block computes a BM x BN tile of C (grid.x over row tiles, since
// M is usually the dynamic batch; grid.y over column tiles; grid.z over
// batches), each thread a TM x TN sub-block in registers, in SPLIT groups
// of threads that share the k range. Per step of BK along k:
//
//   1. each group loads its BM x BK tile of A and BK x BN tile of B from
//      global memory into registers, as 16-byte vectors (float4, double2)
//      along the dimension contiguous in memory when the static sizes
//      allow it (else scalars), zero outside M, N and K; the transpose
//      flags only change which dimension that is;
//   2. while those loads are in flight, it multiplies the previous step's
//      tiles from shared memory: per k, TM / 4 and TN / 4 vector reads of
//      the k-major tiles As[k][m], Bs[k][n] (a thread's rows are runs of 4
//      consecutive rows, so the reads are vectors and a warp's are
//      consecutive or broadcast), then TM x TN FMAs;
//   3. it stores the registers into the other shared buffer (double
//      buffering: one barrier per step), transposing [M, K] tiles; rows
//      are padded by one vector, so those stores are conflict-free.
//
// Split-K: when the output is too small to fill the GPU (weight gradients
// whose K is the batch, the batch-128 layers), group s takes the k tiles
// s, s + SPLIT, ...; group 0 then adds the others' partial sums through
// shared memory in group order. No atomics and no workspace: the result is
// the same bit for bit on every run. Every output is one sum per group in
// increasing k, then the groups in order.
//
// The tiling is the kernel's schedule (#kiln.gemm, chosen by kiln-schedule
// from the cost model of passes/CostModel.cpp); the load widths follow from
// it and the static sizes (gemmLoadVector).
//
// This is the fp32/fp64 SIMT variant; a tensor-core variant (TF32, bf16
// mma) would replace step 2 and the tile choice, keeping the loads and
// the epilogue.
//
// C++: BLIS-style register blocking (#kiln.cpu_gemm<mr, nr>, the micro-kernel
// in codegen/device/cpu_gemm.h). B's columns are packed in panels of NR
// ([K][NR], zeros past N; the packing reads B in either layout, so the
// transpose costs nothing later); for each panel, each MR x NR tile of C is
// summed in vector registers over all of K, reading A in place (its MR
// rows; a transposed A's row tiles are packed first, [K][MR] each, so that
// a tile reads MR consecutive values a k rather than MR values of rows M
// apart), and the epilogue runs on the tile. A product whose B has no batch
// dimensions and whose A is not transposed (a linear layer over a sequence)
// is one GEMM of batches x M rows: A's matrices lie one after another in
// memory, as do C's, so the tiles span the batches and B is packed once.
//
//===----------------------------------------------------------------------===//

#include "codegen/CodegenUtils.h"
#include "codegen/DeviceSources.h"
#include "codegen/Template.h"

#include "mlir/IR/BuiltinTypes.h"

#include <algorithm>

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

/// The CUDA kernel: ${LOAD_A} and ${LOAD_B} are kTileLoadsCuda's, ${SPLIT_K}
/// is kSplitKCuda when the groups split k, ${READ_A} and ${READ_B} the
/// components of the vectors read from the shared tiles.
constexpr const char *kMatmulCuda = R"(
${SIGNATURE} {
  // Tiles: ${SCHEDULE}. A block
  // computes ${BM} x ${BN} outputs in steps of ${BK} along k, each thread ${TM} x ${TN}
  // of them; ${SPLIT} group(s) of ${GROUP} threads split k (group s takes the k tiles
  // s, s + ${SPLIT}, ...). Launch: grid (ceil(M / ${BM}), ceil(N / ${BN}), batches),
  // ${THREADS} threads, ${SHARED_BYTES} bytes of static shared memory. Global loads: ${LOAD_TYPE_A} (A),
  // ${LOAD_TYPE_B} (B).
  ${SIZES}
  constexpr int BM = ${BM}, BN = ${BN}, BK = ${BK}, TM = ${TM}, TN = ${TN}, SPLIT = ${SPLIT};
  constexpr int GROUP = ${GROUP}, THREADS = ${THREADS};
  // A thread's rows are TM / VM runs of VM consecutive rows, BM / TM * VM apart
  // (columns alike), so it reads them from shared memory as vectors and a
  // warp's reads are consecutive.
  constexpr int VM = ${VM}, VN = ${VN};
  // Tiles are stored k-major (As[k][m], Bs[k][n]), rows padded by one vector
  // (conflict-free transposing stores, aligned vector reads); two buffers per
  // group: the next k tile is stored while this one is used.
  constexpr int LDA = BM + ${PAD}, LDB = BN + ${PAD};
  constexpr int A_TILE = BK * LDA, B_TILE = BK * LDB;
  __shared__ __align__(16) ${T} smem[${SHARED}];
  const int tid = threadIdx.x;
  const int group = tid / GROUP, t = tid % GROUP;
  const int ty = t / (BN / TN), tx = t % (BN / TN);
  const long long rowBase = (long long)blockIdx.x * BM;
  const long long colBase = (long long)blockIdx.y * BN;
  ${BATCH}
  ${BATCH_INDEX}
  ${T} acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j)
      acc[i][j] = 0;
  ${LOAD_A}
  ${LOAD_B}
  // Each thread's TM x TN outer products, k in increasing order (the zeros
  // past K add nothing).
  auto multiply = [&](int buf) {
    const ${T} *As = smem + (group * 2 + buf) * A_TILE;
    const ${T} *Bs = smem + SPLIT * 2 * A_TILE + (group * 2 + buf) * B_TILE;
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      ${T} a[TM], b[TN];
#pragma unroll
      for (int c = 0; c < TM / VM; ++c) {
        const ${READ_TYPE_A} x = *reinterpret_cast<const ${READ_TYPE_A} *>(&As[kk * LDA + c * (BM / TM) * VM + ty * VM]);
        ${READ_A}
      }
#pragma unroll
      for (int c = 0; c < TN / VN; ++c) {
        const ${READ_TYPE_B} x = *reinterpret_cast<const ${READ_TYPE_B} *>(&Bs[kk * LDB + c * (BN / TN) * VN + tx * VN]);
        ${READ_B}
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j)
          acc[i][j] = ${FMA}(a[i], b[j], acc[i][j]);
    }
  };
  // The k loop, double-buffered: the next tile's global loads are in flight
  // while this one is multiplied; one barrier per step.
  const long long steps = (K + SPLIT * BK - 1) / (SPLIT * BK);
  loadA(group * BK);
  loadB(group * BK);
  storeA(0);
  storeB(0);
  __syncthreads();
  for (long long step = 0; step < steps; ++step) {
    const int buf = step & 1;
    const bool more = step + 1 < steps;
    if (more) {
      loadA((step + 1) * SPLIT * BK + group * BK);
      loadB((step + 1) * SPLIT * BK + group * BK);
    }
    multiply(buf);
    if (more) {
      storeA(buf ^ 1);
      storeB(buf ^ 1);
    }
    __syncthreads();
  }
  ${SPLIT_K}
  // The epilogue, in registers, and the stores.
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const long long row = rowBase + (i / VM) * (BM / TM) * VM + ty * VM + i % VM;
    if (row >= M)
      break;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const long long col = colBase + (j / VN) * (BN / TN) * VN + tx * VN + j % VN;
      if (col >= N)
        break;
      ${EPILOGUE}
    }
  }
}
)";

/// One tile's loads (loadA, storeA; loadB, storeB): ${CHECK_E} skips the
/// vectors past the tile when the threads do not divide it; ${STORE} writes
/// one vector, transposing a [rows, K] tile.
constexpr const char *kTileLoadsCuda = R"(
  // ${NAME} tile: ${NAME} is stored ${LAYOUT}; ${PER_THREAD} loads of ${VECTOR_TYPE} per thread.
  ${VECTOR_TYPE} r${X}[${PER_THREAD}];
  auto load${NAME} = [&](long long k0) {
#pragma unroll
    for (int l = 0; l < ${PER_THREAD}; ++l) {
      const int e = t + l * GROUP;
      ${INDEX}
      const long long row = ${BASE} + r, k = k0 + kk;
      r${X}[l] = ${VECTOR_TYPE}{};
      if (${IN_BOUNDS})
        r${X}[l] = *reinterpret_cast<const ${VECTOR_TYPE} *>(${NAME} + ${ADDRESS});
    }
  };
  auto store${NAME} = [&](int buf) {
    ${T} *s = smem + ${BUFFER};
#pragma unroll
    for (int l = 0; l < ${PER_THREAD}; ++l) {
      const int e = t + l * GROUP;
      ${CHECK_E}
      ${INDEX}
      ${STORE}
    }
  };
)";

/// Group 0 adds up the groups' partial sums.
constexpr const char *kSplitKCuda = R"(
  // Split-K: group 0 adds the other groups' partial sums in group order
  // (deterministic), one group at a time through the tiles' shared memory;
  // partial[(i * TN + j) * GROUP + t] keeps the accesses consecutive.
  for (int s = 1; s < SPLIT; ++s) {
    if (group == s)
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j)
          smem[(i * TN + j) * GROUP + t] = acc[i][j];
    __syncthreads();
    if (group == 0)
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j)
          acc[i][j] += smem[(i * TN + j) * GROUP + t];
    __syncthreads();
  }
  if (group > 0)
    return;
)";

/// The C++ kernel: ${PRODUCT} is kProductCpp, in kBatchLoopCpp when there
/// are batch dimensions.
constexpr const char *kMatmulCpp = R"(
${SIGNATURE} {
  // A register-blocked GEMM, ${SCHEDULE}: B packed in panels
  // of NR columns ([K][NR] each, zeros past N), each MR x NR tile of C summed in
  // vector registers over k in increasing order (kiln_gemm_micro), then the
  // epilogue element by element. The threads split the panels (and a transposed
  // A's row tiles, packed [K][MR]), then the tiles (panel-major: a thread's tiles
  // share few panels).
  ${SIZES}
  constexpr int MR = ${MR}, NR = ${NR};
  const long long panels = (N + NR - 1) / NR;
  ${T} *__restrict__ packed = kiln_gemm_scratch<${T}>(${SCRATCH});
  ${PRODUCT}
}
${ENTRY}
)";
constexpr const char *kBatchLoopCpp = R"(
for (long long batch = 0; batch < batches; ++batch) {
  ${PRODUCT}
}
)";
/// The packing of B's panels, split among the threads.
constexpr const char *kPackCpp = R"(
kiln_parallel_for(panels, [&](long long begin, long long end) {
  for (long long p = begin; p < end; ++p)
    kiln_gemm_pack_b<${T}, NR>(K, N, p * NR, B, ${B_K_STRIDE}, ${B_COL_STRIDE}, packed + p * NR * K);
});
)";
/// The packing of a transposed A's row tiles ([K][MR] each), split among the
/// threads: the micro-kernel then reads MR consecutive values a k, not MR
/// values of a row M apart.
constexpr const char *kPackACpp = R"(
${T} *__restrict__ packedA = packed + panels * NR * K;
kiln_parallel_for(rowTiles, [&](long long begin, long long end) {
  for (long long t = begin; t < end; ++t)
    kiln_gemm_pack_a<${T}, MR>(K, M, t * MR, A, 1, M, packedA + t * MR * K);
});
)";
/// kPackCpp for a B without batch dimensions: once, with the first batch.
constexpr const char *kPackOnceCpp = R"(
if (batch == 0) { // B is the same for every batch
  ${PACK}
}
)";
/// One batch's product and epilogue: the panels packed, then the tiles, each
/// a task of the threads' parallel loops.
constexpr const char *kProductCpp = R"(
${BATCH_INDEX}
${PACK}
const long long rowTiles = (M + MR - 1) / MR;
${PACK_A}
kiln_parallel_for(panels * rowTiles, [&](long long begin, long long end) {
  for (long long t = begin; t < end; ++t) {
    const long long p = t / rowTiles, row0 = t % rowTiles * MR;
    const long long col0 = p * NR, cols = N - col0 < NR ? N - col0 : NR;
    const long long rows = M - row0 < MR ? M - row0 : MR;
    alignas(64) ${T} tile[MR * NR];
    kiln_gemm_micro<${T}, MR, NR>(K, ${A} + row0 * K, ${A_ROW_STRIDE}, ${A_K_STRIDE}, rows, packed + p * NR * K, tile);
    for (long long i = 0; i < rows; ++i) {
      const long long row = row0 + i;
      for (long long c = 0; c < cols; ++c) {
        const long long col = col0 + c;
        ${EPILOGUE}
      }
    }
  }
});
)";

namespace {

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Writes the kernels' code; one instance per kernel.
class MatmulEmitter {
public:
  MatmulEmitter(KernelOp kernel, MatmulOp matmul, GeneratedKernel &generated,
                Target target)
      : kernel(kernel), matmul(matmul), generated(generated), target(target) {}

  LogicalResult emit(raw_indented_ostream &os);

private:
  std::string broadcastIndex(ArrayRef<int64_t> input,
                             ArrayRef<std::string> sizes,
                             ArrayRef<std::string> index, StringRef flat) const;
  void emitSizes(raw_indented_ostream &os);
  void emitBatchMultiIndex(raw_indented_ostream &os, StringRef batch);
  void emitBatchIndex(raw_indented_ostream &os);
  LogicalResult emitEpilogue(raw_indented_ostream &os, StringRef acc);
  LogicalResult emitCuda(raw_indented_ostream &os);
  LogicalResult emitCpp(raw_indented_ostream &os);

  KernelOp kernel;
  MatmulOp matmul;
  GeneratedKernel &generated;
  Target target;

  std::string type; // the accumulator's C type
  RankedTensorType outType;
  unsigned lhsArg = 0, rhsArg = 0;
  /// Size expressions of the output's dimensions, and of K.
  SmallVector<std::string> sizes;
  std::string kSize;
  /// The output's batch dimensions (all but the last two).
  unsigned batchRank = 0;
  /// C++: the batches folded into the rows of one GEMM (see the file
  /// comment); M is then all of their rows and MB one batch's.
  bool folded = false;
};

} // namespace

/// The flat index into an input of shape `input` broadcast (NumPy rules)
/// against an iteration space of `sizes`, whose indices are named by
/// `index`; `flat` if the shapes are equal and `flat` is not empty.
std::string MatmulEmitter::broadcastIndex(ArrayRef<int64_t> input,
                                          ArrayRef<std::string> sizes,
                                          ArrayRef<std::string> index,
                                          StringRef flat) const {
  int64_t rank = static_cast<int64_t>(sizes.size());
  int64_t offset = rank - static_cast<int64_t>(input.size());
  bool same = offset == 0;
  std::string result, stride;
  for (int64_t d = static_cast<int64_t>(input.size()) - 1; d >= 0; --d) {
    int64_t out = d + offset;
    int64_t size = input[d];
    if (size == 1) {
      same = false;
      continue;
    }
    std::string term =
        stride.empty() ? index[out] : index[out] + " * " + stride;
    result = result.empty() ? term : term + " + " + result;
    std::string dim =
        ShapedType::isDynamic(size) ? sizes[out] : std::to_string(size) + "LL";
    stride = stride.empty() ? dim : stride + " * " + dim;
  }
  if (same && !flat.empty())
    return flat.str();
  return result.empty() ? "0" : result;
}

/// M, N, K and the batch count as locals (folded: MB, one batch's rows,
/// and M, all of them).
void MatmulEmitter::emitSizes(raw_indented_ostream &os) {
  unsigned rank = outType.getRank();
  print(os, "const long long ${M} = ${MSIZE}, N = ${N}, K = ${K};\n",
        {{"M", folded ? "MB" : "M"},
         {"MSIZE", sizes[rank - 2]},
         {"N", sizes[rank - 1]},
         {"K", kSize}});
  std::string batches;
  for (unsigned d = 0; d < batchRank; ++d)
    batches += (d ? " * " : "") + sizes[d];
  if (batchRank)
    print(os, "const long long batches = ${BATCHES};\n",
          {{"BATCHES", batches}});
  if (folded)
    os << "const long long M = batches * MB; // the batches' rows, one GEMM\n";
}

/// The multi-index b0, b1, ... of the batch `batch`.
void MatmulEmitter::emitBatchMultiIndex(raw_indented_ostream &os,
                                        StringRef batch) {
  for (unsigned d = 0; d < batchRank; ++d) {
    std::string inner;
    for (unsigned k = d + 1; k < batchRank; ++k)
      inner += (inner.empty() ? "" : " * ") + sizes[k];
    print(os, "const long long b${D} = ${QUOTIENT} % ${SIZE};\n",
          {{"D", std::to_string(d)},
           {"QUOTIENT", inner.empty()
                            ? batch.str()
                            : "(" + batch.str() + " / (" + inner + "))"},
           {"SIZE", sizes[d]}});
  }
}

/// The multi-index b0, b1, ... of `batch`, and the offsets of A's and B's
/// matrices, as locals `A` and `B` (folded: the inputs themselves).
void MatmulEmitter::emitBatchIndex(raw_indented_ostream &os) {
  if (!folded)
    emitBatchMultiIndex(os, "batch");
  SmallVector<std::string> index;
  for (unsigned d = 0; d < batchRank; ++d)
    index.push_back("b" + std::to_string(d));
  ArrayRef<std::string> batchSizes(sizes.begin(), sizes.begin() + batchRank);
  auto matrix = [&](unsigned arg, StringRef name, StringRef elements) {
    auto argType = llvm::cast<RankedTensorType>(
        kernel.getBlock().getArgument(arg).getType());
    std::string offset;
    if (!folded && batchRank && argType.getRank() > 2)
      offset = " + (" +
               broadcastIndex(argType.getShape().drop_back(2), batchSizes,
                              index, "") +
               ") * " + elements.str();
    print(os, "const ${T} *__restrict__ ${NAME} = in${ARG}${OFFSET};\n",
          {{"T", type},
           {"NAME", name.str()},
           {"ARG", std::to_string(arg)},
           {"OFFSET", offset}});
  };
  matrix(lhsArg, "A", "(M * K)");
  matrix(rhsArg, "B", "(K * N)");
}

/// The epilogue of one output element at (batch, row, col) whose product
/// is `acc`: loads of the inputs it reads, the fused ops, the stores.
LogicalResult MatmulEmitter::emitEpilogue(raw_indented_ostream &os,
                                          StringRef acc) {
  unsigned rank = outType.getRank();
  print(os, "const long long idx = (${ROW}) * N + col;\n",
        {{"ROW", batchRank && !folded ? "batch * M + row" : "row"}});
  SmallVector<std::string> index;
  for (unsigned d = 0; d < batchRank; ++d)
    index.push_back("b" + std::to_string(d));
  // Folded, `row` counts the rows of all batches: an input broadcast over
  // some batch dimensions reads at the batch and row within it.
  index.push_back(folded ? "brow" : "row");
  index.push_back("col");
  bool decomposed = false;

  llvm::DenseMap<Value, std::string> locals;
  locals[matmul.getResult()] = acc.str();
  SmallVector<Operation *> ops;
  for (Operation &op : kernel.getBlock().without_terminator()) {
    if (&op == matmul.getOperation())
      continue;
    if (!isScalarOp(&op))
      return op.emitError("a matmul kernel's epilogue cannot hold '")
             << op.getName() << "'";
    ops.push_back(&op);
  }
  // Load each input the epilogue reads, broadcast against the output.
  Operation *yield = kernel.getBlock().getTerminator();
  for (BlockArgument arg : kernel.getBlock().getArguments()) {
    bool read = llvm::any_of(arg.getUsers(), [&](Operation *user) {
      return user != matmul.getOperation();
    });
    if (!read)
      continue;
    auto argType = llvm::cast<RankedTensorType>(arg.getType());
    if (argType.getRank() > static_cast<int64_t>(rank))
      return kernel.emitError("epilogue input ")
             << arg.getArgNumber() << " has a higher rank than the product";
    std::string local = "x" + std::to_string(arg.getArgNumber());
    std::string at = broadcastIndex(argType.getShape(), sizes, index, "idx");
    // Whether the index reads a batch dimension or the row (all the
    // others are idx, col or 0).
    bool readsRow =
        at != "idx" && llvm::any_of(argType.getShape().drop_back(),
                                    [](int64_t d) { return d != 1; });
    if (folded && readsRow && !decomposed) {
      os << "const long long batch = row / MB, brow = row % MB;\n";
      emitBatchMultiIndex(os, "batch");
      decomposed = true;
    }
    print(os, "const ${T} ${X} = in${ARG}[${INDEX}];\n",
          {{"T", cType(argType.getElementType())},
           {"X", local},
           {"ARG", std::to_string(arg.getArgNumber())},
           {"INDEX", at}});
    locals[arg] = local;
  }
  unsigned next = 0;
  if (failed(emitScalarOps(os, ops, locals, "idx", next, target)))
    return failure();
  for (auto [n, v] : llvm::enumerate(yield->getOperands()))
    print(os, "out${N}[idx] = ${V};\n",
          {{"N", std::to_string(n)}, {"V", locals.lookup(v)}});
  return success();
}

LogicalResult MatmulEmitter::emitCuda(raw_indented_ostream &os) {
  FailureOr<GemmScheduleAttr> schedule =
      requireSchedule<GemmScheduleAttr>(kernel, kCudaTarget);
  if (failed(schedule))
    return failure();
  unsigned elementBytes = type == "double" ? 8 : 4;
  unsigned rank = outType.getRank();
  bool tl = matmul.getTransposeLhs(), tr = matmul.getTransposeRhs();
  auto lhsType = llvm::cast<RankedTensorType>(matmul.getLhs().getType());
  auto staticSize = [](RankedTensorType type, unsigned dim) {
    return type.isDynamicDim(dim) ? int64_t(-1) : type.getDimSize(dim);
  };
  int64_t m = staticSize(outType, rank - 2), n = staticSize(outType, rank - 1);
  int64_t k = staticSize(lhsType, lhsType.getRank() - (tl ? 2 : 1));
  struct {
    int bm, bn, bk, tm, tn, split, va, vb;
    int threadsPerGroup() const { return (bm / tm) * (bn / tn); }
    int threads() const { return threadsPerGroup() * split; }
  } t;
  t.bm = schedule->getBm(), t.bn = schedule->getBn(), t.bk = schedule->getBk();
  t.tm = schedule->getTm(), t.tn = schedule->getTn();
  t.split = schedule->getSplitK();
  // Vector loads along the dimension contiguous in memory where the sizes
  // allow them.
  t.va = tl ? gemmLoadVector(m, t.bm, elementBytes)
            : gemmLoadVector(k, t.bk, elementBytes);
  t.vb = tr ? gemmLoadVector(k, t.bk, elementBytes)
            : gemmLoadVector(n, t.bn, elementBytes);
  int w = 16 / elementBytes;
  int vm = std::min(t.tm, w), vn = std::min(t.tn, w);
  int64_t shared = gemmSharedElements(t.bm, t.bn, t.bk, t.split, elementBytes);

  // The launch: one block per output tile (grid.x row tiles, as M is
  // usually the dynamic batch and grid.x has the largest limit; grid.y
  // column tiles; grid.z batches), t.threads() threads, static shared
  // memory only.
  LaunchConfig &launch = generated.launch;
  auto tileExtent = [&](GridExtent &extent, unsigned dim, int64_t tile) {
    int64_t size = outType.getDimSize(dim);
    if (ShapedType::isDynamic(size))
      extent.dynamicFactors.push_back(
          dynamicDimIndex(generated, generated.numInputs, dim));
    else
      extent.constant *= size;
    extent.perBlock = tile;
  };
  tileExtent(launch.grid[0], rank - 2, t.bm);
  tileExtent(launch.grid[1], rank - 1, t.bn);
  for (unsigned d = 0; d < batchRank; ++d)
    tileExtent(launch.grid[2], d, 1);
  launch.grid[2].perBlock = 1;
  launch.block[0] = t.threads();
  launch.block[1] = launch.block[2] = 1;
  launch.sharedBytes = 0;

  auto vectorType = [&](int width) {
    return width == 1 ? type : type + std::to_string(width);
  };
  // Component c of a value of vectorType(width).
  auto component = [](StringRef value, int c, int width) {
    return width == 1 ? value.str()
                      : value.str() + "." + std::string(1, "xyzw"[c]);
  };

  // Step 1: the loads, global memory to registers (ra, rb) and registers
  // to shared memory, in vectors of VA (VB) elements along the dimension
  // contiguous in global memory; consecutive threads take consecutive
  // vectors.
  auto tileLoads = [&](StringRef name, bool rowsContiguous, int vector,
                       int tile, StringRef limit, StringRef base,
                       StringRef buffer) {
    // `rowsContiguous`: the matrix is stored [K, rows] (k-major, like the
    // shared tile); otherwise [rows, K], and the store transposes.
    std::string vt = vectorType(vector);
    int64_t vectors = int64_t(tile) * t.bk / vector;
    int64_t perThread = ceilDiv(vectors, t.threadsPerGroup());
    bool exact = perThread * t.threadsPerGroup() == vectors;
    std::string x = StringRef(name).lower();
    std::string index = fill(
        rowsContiguous
            ? "const int kk = e / (${TILE} / ${V}), r = (e % (${TILE} / ${V})) "
              "* ${V};"
            : "const int r = e / (BK / ${V}), kk = (e % (BK / ${V})) * ${V};",
        {{"TILE", std::to_string(tile)}, {"V", std::to_string(vector)}});
    std::string inBounds = "row < " + limit.str() + " && k < K";
    if (!exact)
      inBounds = "e < " + std::to_string(vectors) + " && " + inBounds;
    Code checkE;
    if (!exact)
      print(checkE.os, "if (e >= ${VECTORS})\n  break;\n",
            {{"VECTORS", std::to_string(vectors)}});
    Code store;
    std::string ld = name == "A" ? "LDA" : "LDB";
    std::string reg = "r" + x + "[l]";
    if (rowsContiguous)
      print(store.os,
            "*reinterpret_cast<${VECTOR_TYPE} *>(&s[kk * ${LD} + r]) = "
            "${REG};\n",
            {{"VECTOR_TYPE", vt}, {"LD", ld}, {"REG", reg}});
    else
      for (int c = 0; c < vector; ++c)
        print(store.os, "s[(kk + ${C}) * ${LD} + r] = ${VALUE};\n",
              {{"C", std::to_string(c)},
               {"LD", ld},
               {"VALUE", component(reg, c, vector)}});
    Code loads;
    print(loads.os, kTileLoadsCuda,
          {{"NAME", name.str()},
           {"X", x},
           {"T", type},
           {"LAYOUT", rowsContiguous ? "[K, " + limit.str() + "]"
                                     : "[" + limit.str() + ", K]"},
           {"PER_THREAD", std::to_string(perThread)},
           {"VECTOR_TYPE", vt},
           {"INDEX", index},
           {"BASE", base.str()},
           {"IN_BOUNDS", inBounds},
           {"ADDRESS",
            rowsContiguous ? "k * " + limit.str() + " + row" : "row * K + k"},
           {"BUFFER", buffer.str()},
           {"CHECK_E", checkE.str()},
           {"STORE", store.str()}});
    return loads.str();
  };

  // Step 2: the register-blocked product reads a thread's rows (columns)
  // from the shared tiles as vectors of `width`, split into `reg`.
  auto readComponents = [&](StringRef reg, StringRef v, int width) {
    Code read;
    for (int c = 0; c < width; ++c)
      print(read.os, "${REG}[c * ${V} + ${C}] = ${VALUE};\n",
            {{"REG", reg.str()},
             {"V", v.str()},
             {"C", std::to_string(c)},
             {"VALUE", component("x", c, width)}});
    return read.str();
  };

  Code sizesCode, batchIndex, epilogue, splitK;
  emitSizes(sizesCode.os);
  emitBatchIndex(batchIndex.os);
  if (failed(emitEpilogue(epilogue.os, "acc[i][j]")))
    return failure();
  if (t.split > 1)
    print(splitK.os, kSplitKCuda);
  std::string scheduleText;
  llvm::raw_string_ostream(scheduleText) << *schedule;

  // Tell the compiler the block size, so that it may use more registers.
  std::string header = signature(kernel, generated, target,
                                 std::to_string(launch.block[0]) + ", 1");
  print(
      os, kMatmulCuda,
      {{"SIGNATURE", header},
       {"SCHEDULE", scheduleText},
       {"BM", std::to_string(t.bm)},
       {"BN", std::to_string(t.bn)},
       {"BK", std::to_string(t.bk)},
       {"TM", std::to_string(t.tm)},
       {"TN", std::to_string(t.tn)},
       {"SPLIT", std::to_string(t.split)},
       {"GROUP", std::to_string(t.threadsPerGroup())},
       {"THREADS", std::to_string(t.threads())},
       {"SHARED_BYTES", std::to_string(shared * elementBytes)},
       {"LOAD_TYPE_A", vectorType(t.va)},
       {"LOAD_TYPE_B", vectorType(t.vb)},
       {"SIZES", sizesCode.str()},
       {"VM", std::to_string(vm)},
       {"VN", std::to_string(vn)},
       {"PAD", std::to_string(w)},
       {"T", type},
       {"SHARED", std::to_string(shared)},
       {"BATCH", batchRank ? "const long long batch = blockIdx.z;" : ""},
       {"BATCH_INDEX", batchIndex.str()},
       {"LOAD_A", tileLoads("A", tl, t.va, t.bm, "M", "rowBase",
                            "(group * 2 + buf) * A_TILE")},
       {"LOAD_B", tileLoads("B", !tr, t.vb, t.bn, "N", "colBase",
                            "SPLIT * 2 * A_TILE + (group * 2 + buf) * B_TILE")},
       {"READ_TYPE_A", vectorType(vm)},
       {"READ_A", readComponents("a", "VM", vm)},
       {"READ_TYPE_B", vectorType(vn)},
       {"READ_B", readComponents("b", "VN", vn)},
       {"FMA", type == "double" ? "fma" : "fmaf"},
       {"SPLIT_K", splitK.str()},
       {"EPILOGUE", epilogue.str()}});
  return success();
}

LogicalResult MatmulEmitter::emitCpp(raw_indented_ostream &os) {
  FailureOr<CpuGemmScheduleAttr> schedule =
      requireSchedule<CpuGemmScheduleAttr>(kernel, kCpuTarget);
  if (failed(schedule))
    return failure();
  bool tl = matmul.getTransposeLhs(), tr = matmul.getTransposeRhs();
  auto lhsType = llvm::cast<RankedTensorType>(matmul.getLhs().getType());
  auto rhsType = llvm::cast<RankedTensorType>(matmul.getRhs().getType());
  folded = batchRank && rhsType.getRank() == 2 && !tl &&
           lhsType.getShape().drop_back(2) == outType.getShape().drop_back(2);
  Code sizesCode, batchIndex, epilogue;
  emitSizes(sizesCode.os);
  emitBatchIndex(batchIndex.os);
  if (failed(emitEpilogue(epilogue.os, "tile[i * NR + c]")))
    return failure();
  // A is [M, K], or [K, M] transposed; B is [K, N], or [N, K].
  Code product;
  // A B without batch dimensions (a weight broadcast over the batches) is
  // packed once.
  std::string pack = render(kPackCpp, {{"T", type},
                                       {"B_K_STRIDE", tr ? "1" : "N"},
                                       {"B_COL_STRIDE", tr ? "K" : "1"}});
  if (batchRank && !folded && rhsType.getRank() == 2)
    pack = render(kPackOnceCpp, {{"PACK", pack}});
  print(product.os, kProductCpp,
        {{"BATCH_INDEX", batchIndex.str()},
         {"PACK", pack},
         {"T", type},
         {"PACK_A", tl ? render(kPackACpp, {{"T", type}}) : ""},
         {"A", tl ? "packedA" : "A"},
         {"A_ROW_STRIDE", tl ? "1" : "K"},
         {"A_K_STRIDE", tl ? "MR" : "1"},
         {"EPILOGUE", epilogue.str()}});
  Code batches;
  bool loop = batchRank && !folded;
  if (loop)
    print(batches.os, kBatchLoopCpp, {{"PRODUCT", product.str()}});
  std::string scheduleText;
  llvm::raw_string_ostream(scheduleText) << *schedule;
  print(os, kMatmulCpp,
        {{"SIGNATURE", signature(kernel, generated, target)},
         {"SCHEDULE", scheduleText},
         {"SIZES", sizesCode.str()},
         {"MR", std::to_string(schedule->getMr())},
         {"NR", std::to_string(schedule->getNr())},
         {"T", type},
         {"SCRATCH", tl ? "panels * NR * K + (M + MR - 1) / MR * MR * K"
                        : "panels * NR * K"},
         {"PRODUCT", loop ? batches.str() : product.str()},
         {"ENTRY", cppEntry(kernel, generated)}});
  return success();
}

LogicalResult MatmulEmitter::emit(raw_indented_ostream &os) {
  auto lhs = llvm::dyn_cast<BlockArgument>(matmul.getLhs());
  auto rhs = llvm::dyn_cast<BlockArgument>(matmul.getRhs());
  if (!lhs || !rhs)
    return matmul.emitError("a matmul kernel's product must read kernel "
                            "inputs");
  lhsArg = lhs.getArgNumber();
  rhsArg = rhs.getArgNumber();
  outType = llvm::cast<RankedTensorType>(matmul.getType());
  type = cType(outType.getElementType());
  if (outType.getRank() < 2)
    return matmul.emitError("a matmul kernel needs a product of rank 2 or "
                            "more");
  batchRank = outType.getRank() - 2;
  for (Value result : kernel.getBlock().getTerminator()->getOperands())
    if (llvm::cast<RankedTensorType>(result.getType()).getShape() !=
        outType.getShape())
      return kernel.emitError("a matmul kernel's results must have the "
                              "product's shape ")
             << outType;

  // The output's sizes are those of result 0; K is the lhs's (or the
  // rhs's, if only that is static).
  unsigned outOperand = generated.numInputs;
  for (unsigned d = 0; d < outType.getRank(); ++d)
    sizes.push_back(dimSize(generated, outType, outOperand, d));
  auto lhsType = llvm::cast<RankedTensorType>(lhs.getType());
  auto rhsType = llvm::cast<RankedTensorType>(rhs.getType());
  unsigned lhsK = lhsType.getRank() - (matmul.getTransposeLhs() ? 2 : 1);
  unsigned rhsK = rhsType.getRank() - (matmul.getTransposeRhs() ? 1 : 2);
  if (ShapedType::isDynamic(lhsType.getDimSize(lhsK)) &&
      !ShapedType::isDynamic(rhsType.getDimSize(rhsK)))
    kSize = dimSize(generated, rhsType, rhsArg, rhsK);
  else
    kSize = dimSize(generated, lhsType, lhsArg, lhsK);

  writeKernelComment(os, kernel);
  return target == Target::cuda ? emitCuda(os) : emitCpp(os);
}

FailureOr<GeneratedKernel> kiln::codegen::generateMatmul(KernelOp kernel,
                                                         llvm::StringRef symbol,
                                                         Target target) {
  GeneratedKernel generated;
  if (failed(initGenerated(kernel, symbol, generated)))
    return failure();
  SmallVector<MatmulOp> matmuls(kernel.getBlock().getOps<MatmulOp>());
  if (matmuls.size() != 1)
    return kernel.emitError("a matmul kernel holds exactly one kiln.matmul, "
                            "not ")
           << matmuls.size();
  Code text;
  MatmulEmitter emitter(kernel, matmuls.front(), generated, target);
  if (failed(emitter.emit(text.os)))
    return failure();
  generated.source = text.str();
  return generated;
}

std::string kiln::codegen::matmulPreamble(Target target) {
  return target == Target::cpp ? device::kDeviceCpuGemmH : "";
}
