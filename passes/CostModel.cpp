//===- CostModel.cpp - the cost models kiln-schedule chooses by -----------===//
//
// GEMM tiles come from a cost model of an H100 (chooseGemmTiles,
// estimateGemm): every candidate tiling is scored by its busiest SM's
// issue, shared memory, latency and L2/DRAM time, and the cheapest wins.
// Dynamic sizes count as 1024, which gives the generic 64 x 64 tiles. The mlp
// 784-512- 512-10 (f32) gets, at batch 4096: the 4096 x 512 products (K = 784
// and 512, forward and dX) 128 x 128 tiles, 8 x 8 per thread, 256 threads, 128
// blocks (0.97 of one wave on 132 SMs, ptxas: ~150 registers, 1 block per
// SM), an arithmetic intensity of 64 FMAs per 4 shared-memory vector reads
// and 32 flops per byte from L2; the logits (N = 10) 32 x 16 tiles split
// 8 ways (128 blocks, memory-bound: A read once); dX of the logits (K = 10)
// 128 x 128 tiles, store-bound; the weight gradients (K = 4096) 64 x 64
// tiles split 4 ways (dW1, 104 blocks) and 64 x 32 split 4 ways (dW2, 128
// blocks), 16 x 16 split 4 ways (dW3). At batch 128: 32 x 16
// tiles split 4 to 8 ways, so that 128 blocks share the k loop of 784 or
// 512 instead of 16 blocks running it alone (the old 91 us for layer 1);
// the model expects 2 to 4 us per product there, against cuBLAS's 7-10.
// At batch 4096 it expects 40-85 us per large product (cuBLAS fp32: 72 us
// for K = 784) if the SMs issue at ~75% of their FMA rate.
//
// Convolutions: chooseConvSchedule below documents its rule; reductions:
// chooseReduceSchedule.
//
//===----------------------------------------------------------------------===//

#include "passes/CostModel.h"

#include "mlir/IR/BuiltinTypes.h"

#include <algorithm>
#include <limits>

using namespace mlir;
using namespace kiln;
using namespace kiln::cost;

namespace {

/// The H100 the estimates are for: SMs, and per SM the warp schedulers,
/// resident threads, registers and shared memory.
constexpr int kSMs = 132, kSchedulers = 4, kThreadsPerSM = 2048;
constexpr int kRegistersPerSM = 65536, kSharedPerSM = 227 * 1024;
/// An SM's share of the L2 (~5.5 TB/s) and DRAM (~3.35 TB/s) bandwidth in
/// bytes per cycle (1.75 GHz).
constexpr double kL2BytesPerCycle = 24, kDramBytesPerCycle = 14.5;
/// Static shared memory is limited to 48 KiB per block.
constexpr int kStaticShared = 48 * 1024;
/// The size assumed for a dynamic M, N or K (a batch).
constexpr int64_t kDynamicGuess = 1024;

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Elements per 16-byte vector.
int vectorWidth(const GemmProblem &p) { return 16 / p.elementBytes; }

/// The global load widths: a 16-byte vector along the dimension that is
/// contiguous in memory where the renderer can use one (gemmLoadVector).
void chooseVectors(GemmTiles &t, const GemmProblem &p) {
  t.va = p.transposeLhs ? gemmLoadVector(p.m, t.bm, p.elementBytes)
                        : gemmLoadVector(p.k, t.bk, p.elementBytes);
  t.vb = p.transposeRhs ? gemmLoadVector(p.k, t.bk, p.elementBytes)
                        : gemmLoadVector(p.n, t.bn, p.elementBytes);
}

} // namespace

/// The cost model (cycles on the busiest SM). Blocks are spread round-robin
/// over the SMs; an SM runs up to `perSM` of its blocks at once, limited by
/// threads, registers (estimated) and shared memory. A round of q
/// concurrent blocks takes the longest of:
///   - issue: q * warps * instructions per thread / schedulers (FMAs,
///     shared loads, global loads and stores, the split-K reduction);
///   - shared memory: q * warps * wavefronts (128 bytes each) per k;
///   - latency: one thread's instructions plus ~40 cycles per k-step
///     (barrier, shared-memory latency) and ~800 cycles of start-up
///     (first loads) and epilogue;
///   - memory: the tiles' loads, (BM + BN) x K elements a block, at the
///     SM's share of L2 bandwidth, plus the epilogue's loads and stores at
///     its share of DRAM bandwidth.
/// Dynamic sizes are assumed to be their hints, else kDynamicGuess.
double kiln::cost::estimateGemm(GemmTiles &t, const GemmProblem &p) {
  auto known = [](int64_t s, int64_t guess) {
    return s >= 0 ? s : guess > 0 ? guess : kDynamicGuess;
  };
  int64_t m = known(p.m, p.guessM), n = known(p.n, p.guessN),
          k = known(p.k, p.guessK);
  int64_t batches = known(p.batches, p.guessBatches);
  int w = vectorWidth(p);
  int vm = std::min(t.tm, w), vn = std::min(t.tn, w);
  int group = t.threadsPerGroup(), threads = t.threads();
  int64_t steps = ceilDiv(k, int64_t(t.split) * t.bk);
  // Per thread and k-step: global loads (with the address arithmetic and
  // the shared stores) and, per k, the shared loads and FMAs.
  double loadsA = ceilDiv(int64_t(t.bm) * t.bk / t.va, group);
  double loadsB = ceilDiv(int64_t(t.bn) * t.bk / t.vb, group);
  double perStep = loadsA * (3 + (p.transposeLhs ? 1 : t.va)) +
                   loadsB * (3 + (p.transposeRhs ? t.vb : 1)) + 10 +
                   t.bk * (t.tm * t.tn + t.tm / vm + t.tn / vn);
  double perThread =
      steps * perStep + (t.split - 1) * t.tm * t.tn * 3.0 + t.tm * t.tn * 6.0;
  // Shared-memory wavefronts per warp and k: a warp spans 32 / (BN / TN)
  // rows of threads (at least 1) and min(32, BN / TN) columns.
  int columnsPerWarp = std::min(32, t.bn / t.tn);
  int rowsPerWarp = std::max(1, 32 / (t.bn / t.tn));
  auto wavefronts = [&](int distinct, int vector) {
    return std::max<int64_t>(
        1, ceilDiv(int64_t(distinct) * vector * p.elementBytes, 128));
  };
  double smemPerK = (t.tm / vm) * wavefronts(rowsPerWarp, vm) +
                    (t.tn / vn) * wavefronts(columnsPerWarp, vn);
  // Registers: the accumulators, a and b, the prefetched loads, ~40 more.
  int words = p.elementBytes / 4;
  int64_t registers = words * (t.tm * t.tn + t.tm + t.tn + int(loadsA) * t.va +
                               int(loadsB) * t.vb) +
                      40;
  registers = std::min<int64_t>(registers, 255);
  int64_t shared =
      gemmSharedElements(t.bm, t.bn, t.bk, t.split, p.elementBytes) *
      p.elementBytes;
  int perSM = std::min<int64_t>({32, kThreadsPerSM / threads,
                                 kRegistersPerSM / (registers * threads),
                                 kSharedPerSM / std::max<int64_t>(shared, 1)});
  t.blocks = ceilDiv(m, t.bm) * ceilDiv(n, t.bn) * batches;
  t.perSM = perSM;
  // A block that does not fit an SM (registers or shared memory) does not
  // launch.
  if (perSM < 1)
    return std::numeric_limits<double>::infinity();
  int64_t blocksOnSM = ceilDiv(t.blocks, kSMs);
  double warps = threads / 32.0, total = 0;
  for (int64_t done = 0; done < blocksOnSM; done += perSM) {
    double q = std::min<int64_t>(perSM, blocksOnSM - done);
    double issue = q * warps * perThread / kSchedulers;
    double smem = q * warps * steps * t.bk * smemPerK;
    double latency = perThread + steps * 40.0 + 800;
    double memory =
        q * p.elementBytes *
        (double(t.bm + t.bn) * steps * t.split * t.bk / kL2BytesPerCycle +
         double(t.bm) * t.bn * p.outputStreams / kDramBytesPerCycle);
    total += std::max({issue, smem, latency, memory});
  }
  return total;
}

/// Chooses the tiles with the lowest estimate among: BM, BN in {16, 32, 64,
/// 128}, TM, TN in {1, 2, 4, 8} (at most 4 apart in ratio, at most 64
/// outputs per thread, 16 for f64), 32 to 256 threads per group, BK in {8,
/// 16}, SPLIT in {1, 2, 4, 8, 16} with at most 512 threads (256 when a
/// thread holds 32 outputs or more, to keep its registers), static shared
/// memory within 48 KiB. Ties keep the first found (larger tiles first).
GemmTiles kiln::cost::chooseGemmTiles(const GemmProblem &p) {
  GemmTiles best;
  int maxOutputs = p.elementBytes == 8 ? 16 : 64;
  for (int bm : {128, 64, 32, 16})
    for (int bn : {128, 64, 32, 16})
      for (int tm : {8, 4, 2, 1})
        for (int tn : {8, 4, 2, 1}) {
          if (tm * tn > maxOutputs || tm > 4 * tn || tn > 4 * tm)
            continue;
          int group = (bm / tm) * (bn / tn);
          if (group < 32 || group > 256)
            continue;
          for (int bk : {8, 16})
            for (int split : {1, 2, 4, 8, 16}) {
              GemmTiles t;
              t.bm = bm, t.bn = bn, t.bk = bk, t.tm = tm, t.tn = tn;
              t.split = split;
              int maxThreads = tm * tn >= 32 ? 256 : 512;
              if (t.threads() > maxThreads ||
                  gemmSharedElements(t.bm, t.bn, t.bk, t.split,
                                     p.elementBytes) *
                          p.elementBytes >
                      kStaticShared)
                continue;
              chooseVectors(t, p);
              t.cycles = estimateGemm(t, p);
              if (best.bm == 0 || t.cycles < best.cycles)
                best = t;
            }
        }
  return best;
}

GemmTiles kiln::cost::estimateTiles(int bm, int bn, int bk, int tm, int tn,
                                    int split, const GemmProblem &p) {
  GemmTiles t;
  t.bm = bm, t.bn = bn, t.bk = bk, t.tm = tm, t.tn = tn, t.split = split;
  chooseVectors(t, p);
  t.cycles = estimateGemm(t, p);
  return t;
}

GemmScheduleAttr kiln::cost::toSchedule(MLIRContext *context,
                                        const GemmTiles &t) {
  return GemmScheduleAttr::get(context, t.bm, t.bn, t.bk, t.tm, t.tn, t.split);
}

CpuGemmScheduleAttr kiln::cost::chooseCpuGemmSchedule(MLIRContext *context,
                                                      const GemmProblem &p) {
  int64_t n = p.n > 0 ? p.n : p.guessN > 0 ? p.guessN : 1024;
  if (n >= 48)
    return CpuGemmScheduleAttr::get(context, 6, 64);
  return CpuGemmScheduleAttr::get(context, 8, (n + 15) / 16 * 16);
}

//===----------------------------------------------------------------------===//
// Convolutions
//===----------------------------------------------------------------------===//

/// The rule, from the GEMM's static GM and GN (-1 when dynamic) and the
/// largest GK:
///
///  - BN is the smallest of 16, 32, 64 that covers GN (the output channels
///    of a forward convolution, the input channels of an input gradient),
///    so narrow layers do not idle threads; BK is 16, or K when smaller
///    (the first layer's K = C * KH * KW = 9); a weight gradient's BK is
///    16 (both its tiles are loaded k fastest).
///  - A long M (the batch times the image, or an unknown batch): 256
///    threads, 128 x BN tiles with 4 x 2, 4 x 4 or 8 x 4 outputs a thread
///    (16 to 32 FMAs per 6 to 12 shared loads), M tiles 128 long; or 64
///    long when that leaves fewer than kTargetBlocks blocks.
///  - A short M (a weight gradient: M = O, K = the batch times the image):
///    128 threads, 16, 32 or 64 x BN tiles, and the long k cut into slices
///    summed by separate blocks (split-K), so that about kTargetBlocks
///    blocks run: without it one block would sum all of k. At most 128
///    slices, of at least 256 k each; needs a static M and N (the
///    workspace is sized from them).
///  - Indices are 32-bit when every tensor has fewer than 2^31 elements at
///    the largest batch (cheaper index arithmetic on the GPU).
ConvScheduleAttr kiln::cost::chooseConvSchedule(MLIRContext *context,
                                                const ConvProblem &p) {
  auto tilesOf = [](int64_t size, int64_t tile) {
    return (size + tile - 1) / tile;
  };
  int64_t m = p.m, n = p.n, k = p.k;
  int64_t bk = k >= 1 && k < 16 ? k : 16;
  if (p.weightGradient)
    bk = 16;
  int64_t bn = n >= 0 && n <= 16 ? 16 : n >= 0 && n <= 32 ? 32 : 64;
  int64_t bm, tm, tn, splits = 1;
  if (m < 0 || m >= 4096) {
    bm = 128;
    tm = bn == 64 ? 8 : 4;
    tn = bn == 16 ? 2 : 4;
    if (m >= 0 && n >= 0 && tilesOf(m, 128) * tilesOf(n, bn) < kTargetBlocks) {
      bm = 64;
      tm /= 2;
    }
  } else {
    bm = m <= 16 ? 16 : m <= 32 ? 32 : 64;
    tm = bm / 16;
    tn = bn / 8;
    if (n >= 0) {
      splits = std::clamp<int64_t>(
          kTargetBlocks / (tilesOf(m, bm) * tilesOf(n, bn)), 1, 128);
      if (k >= 0)
        splits = std::min(splits, std::max<int64_t>(1, k / 256));
    }
  }
  int64_t indexBits =
      p.largestTensor >= 0 && p.largestTensor < (int64_t(1) << 31) ? 32 : 64;
  return ConvScheduleAttr::get(context, bm, bn, bk, tm, tn, splits, indexBits);
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

namespace {

/// Threads a block in the row schemes.
constexpr int64_t kWarpRowsBlock = 256, kBlockRowsBlock = 256;
/// One block for cross_entropy, and for a block-row reduction with few rows.
constexpr int64_t kWideBlock = 1024;
/// Threads a block in the columns scheme (x columns times y slices).
constexpr int64_t kColumnsBlock = 512;
/// Warp-per-row up to this reduced extent (32 elements a lane).
constexpr int64_t kWarpRowLimit = 1024;

int64_t nextPowerOfTwo(int64_t n) {
  int64_t p = 1;
  while (p < n)
    p *= 2;
  return p;
}

} // namespace

/// The rule: count reads only sizes (one thread). When the last dimension
/// that is not a static 1 is kept (the columns innermost), `columns`: x
/// over up to 32 consecutive columns (fewer when fewer are known), y over
/// slices of the reduced extent, 512 threads (fewer slices when the
/// extent is known and small). Otherwise rows: one warp a row when the
/// reduced extent is known and at most 1024, else one block a row (1024
/// threads when fewer than 128 rows are known, else 256); cross_entropy is
/// one block of 1024 threads.
ReduceScheduleAttr kiln::cost::chooseReduceSchedule(MLIRContext *context,
                                                    const ReductionProblem &p) {
  auto schedule = [&](ReductionScheme scheme, int64_t x, int64_t y) {
    return ReduceScheduleAttr::get(context, scheme, x, y);
  };
  using Kind = ReductionProblem::Kind;
  if (p.kind == Kind::count)
    return schedule(ReductionScheme::single, 1, 1);
  int64_t rank = p.sizes.size();
  // The static products of the reduced and of the kept sizes (-1 when one
  // is dynamic).
  auto staticProduct = [&](bool ofReduced, int64_t from) {
    int64_t product = 1;
    for (int64_t d = from; d < rank; ++d)
      if (p.reduced[d] == ofReduced)
        product = product < 0 || p.sizes[d] < 0 ? -1 : product * p.sizes[d];
    return product;
  };
  int64_t extent = staticProduct(/*ofReduced=*/true, 0);
  int64_t last = rank - 1;
  while (last >= 0 && p.sizes[last] == 1)
    --last;
  bool keptInnermost = last >= 0 && !p.reduced[last];
  if (p.kind != Kind::crossEntropy && keptInnermost) {
    // The columns: the kept dimensions after the last reduced one.
    int64_t columnStart = rank;
    while (columnStart > 0 &&
           (!p.reduced[columnStart - 1] || p.sizes[columnStart - 1] == 1))
      --columnStart;
    int64_t columns = staticProduct(/*ofReduced=*/false, columnStart);
    int64_t x = columns >= 0 && columns < 32 ? nextPowerOfTwo(columns) : 32;
    int64_t y = kColumnsBlock / x;
    if (extent >= 0)
      y = std::max<int64_t>(1, std::min<int64_t>(y, nextPowerOfTwo(extent)));
    return schedule(ReductionScheme::columns, x, y);
  }
  bool warp = extent >= 0 && extent <= kWarpRowLimit;
  ReductionScheme scheme =
      warp ? ReductionScheme::warp_rows : ReductionScheme::block_rows;
  if (p.kind == Kind::crossEntropy)
    return schedule(scheme, kWideBlock, 1);
  if (warp)
    return schedule(scheme, kWarpRowsBlock, 1);
  // Few rows: wider blocks to use the bandwidth of more threads.
  int64_t rows = staticProduct(/*ofReduced=*/false, 0);
  return schedule(scheme,
                  rows >= 0 && rows < 128 ? kWideBlock : kBlockRowsBlock, 1);
}

//===----------------------------------------------------------------------===//
// Embedding gradient, attention
//===----------------------------------------------------------------------===//

int64_t kiln::cost::embeddingGradBlock(int64_t dim) {
  if (dim < 0)
    return kElementwiseBlock;
  return std::max<int64_t>(
      std::min<int64_t>(kElementwiseBlock, (dim + 31) / 32 * 32), 32);
}

int64_t kiln::cost::chooseAttentionTile(
    int64_t tq, int64_t tk, llvm::function_ref<int64_t(int64_t)> sharedBytes) {
  int64_t tile = 64;
  while (tile > 16 && (sharedBytes(tile) > kAttentionSharedBudget ||
                       tile / 2 >= std::max(tq, tk)))
    tile /= 2;
  return tile;
}
