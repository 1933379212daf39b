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
// The tiles come from a cost model of an H100 (chooseTiles, estimate):
// every candidate tiling is scored by its busiest SM's issue, shared
// memory, latency and L2/DRAM time, and the cheapest wins. Dynamic sizes
// count as 1024, which gives the generic 64 x 64 tiles. The mlp 784-512-
// 512-10 (f32) gets, at batch 4096: the 4096 x 512 products (K = 784 and
// 512, forward and dX) 128 x 128 tiles, 8 x 8 per thread, 256 threads, 128
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
// This is the fp32/fp64 SIMT variant; a tensor-core variant (TF32, bf16
// mma) would replace step 2 and the tile choice, keeping the loads and
// the epilogue.
//
// C++: rows one at a time, columns in blocks of 64 accumulated in a local
// array, k in the middle (i-k-j): the innermost loop runs over a
// contiguous row of B (unless transposed) and vectorizes. The epilogue
// follows each block.
//
//===----------------------------------------------------------------------===//

#include "codegen/CodegenUtils.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

namespace {

/// What the tile choice knows of a product: its static sizes (-1 when
/// dynamic), the element size, the layouts.
struct Problem {
  /// -1 for a dynamic size.
  int64_t m, n, k, batches;
  unsigned elementBytes;
  bool transposeLhs, transposeRhs;
  /// Tensors of the output's shape the epilogue reads or writes.
  int outputStreams;
  /// What the cost model assumes of each dynamic size (SizeHints), or
  /// -1: kDynamicGuess.
  int64_t guessM = -1, guessN = -1, guessK = -1, guessBatches = -1;
};

/// The CUDA tiling of one kernel: a block computes BM x BN outputs, in
/// steps of BK along k, each of its threads TM x TN of them, in `split`
/// groups of threads that share the k range. `va` and `vb` are the
/// elements per global load of A and B (a 16-byte vector, or 1).
struct Tiles {
  int bm = 0, bn = 0, bk = 0, tm = 0, tn = 0, split = 1;
  int va = 1, vb = 1;
  /// The cost model's estimate, in SM cycles.
  double cycles = 0;
  /// Blocks and blocks resident per SM, for the comment.
  int64_t blocks = 0;
  int perSM = 0;

  int threadsPerGroup() const { return (bm / tm) * (bn / tn); }
  int threads() const { return threadsPerGroup() * split; }
};

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
int vectorWidth(const Problem &p) { return 16 / p.elementBytes; }

/// The shared-memory elements a block declares: two buffers (double
/// buffering) of the A and B tiles per group, rows padded by a vector, or
/// the BM x BN partial sums of the split-K reduction if larger.
int64_t sharedElements(const Tiles &t, const Problem &p) {
  int pad = vectorWidth(p);
  int64_t tiles = int64_t(t.split) * 2 * t.bk * (t.bm + pad + t.bn + pad);
  return t.split > 1 ? std::max<int64_t>(tiles, int64_t(t.bm) * t.bn) : tiles;
}

/// The global load widths: a 16-byte vector along the dimension that is
/// contiguous in memory when its static size and the tile's extent along
/// it are multiples of the vector (so a vector is wholly inside or wholly
/// outside the matrix, and aligned, given 16-byte aligned buffers: the
/// memory plan aligns to 256 bytes, as cudaMalloc does).
void chooseVectors(Tiles &t, const Problem &p) {
  int w = vectorWidth(p);
  auto fits = [&](int64_t size, int tile) {
    return size > 0 && size % w == 0 && tile % w == 0;
  };
  t.va = (p.transposeLhs ? fits(p.m, t.bm) : fits(p.k, t.bk)) ? w : 1;
  t.vb = (p.transposeRhs ? fits(p.k, t.bk) : fits(p.n, t.bn)) ? w : 1;
}

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
double estimate(Tiles &t, const Problem &p) {
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
  int64_t shared = sharedElements(t, p) * p.elementBytes;
  int perSM = std::min<int64_t>({32, kThreadsPerSM / threads,
                                 kRegistersPerSM / (registers * threads),
                                 kSharedPerSM / std::max<int64_t>(shared, 1)});
  t.blocks = ceilDiv(m, t.bm) * ceilDiv(n, t.bn) * batches;
  t.perSM = perSM;
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
Tiles chooseTiles(const Problem &p) {
  Tiles best;
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
              Tiles t;
              t.bm = bm, t.bn = bn, t.bk = bk, t.tm = tm, t.tn = tn;
              t.split = split;
              int maxThreads = tm * tn >= 32 ? 256 : 512;
              if (t.threads() > maxThreads ||
                  sharedElements(t, p) * p.elementBytes > kStaticShared)
                continue;
              chooseVectors(t, p);
              t.cycles = estimate(t, p);
              if (best.bm == 0 || t.cycles < best.cycles)
                best = t;
            }
        }
  return best;
}

/// Writes the kernels' code; one instance per kernel.
class MatmulEmitter {
public:
  MatmulEmitter(KernelOp kernel, MatmulOp matmul, GeneratedKernel &generated,
                Target target, const SizeHints &hints)
      : kernel(kernel), matmul(matmul), generated(generated), target(target),
        hints(hints) {}

  LogicalResult emit(raw_ostream &os);

private:
  std::string broadcastIndex(ArrayRef<int64_t> input,
                             ArrayRef<std::string> sizes,
                             ArrayRef<std::string> index, StringRef flat) const;
  void emitSizes(raw_ostream &os);
  void emitBatchIndex(raw_ostream &os, StringRef indent);
  LogicalResult emitEpilogue(raw_ostream &os, StringRef indent, StringRef acc);
  LogicalResult emitCuda(raw_ostream &os);
  LogicalResult emitCpp(raw_ostream &os);

  KernelOp kernel;
  MatmulOp matmul;
  GeneratedKernel &generated;
  Target target;
  const SizeHints &hints;

  std::string type; // the accumulator's C type
  RankedTensorType outType;
  unsigned lhsArg = 0, rhsArg = 0;
  /// Size expressions of the output's dimensions, and of K.
  SmallVector<std::string> sizes;
  std::string kSize;
  /// The output's batch dimensions (all but the last two).
  unsigned batchRank = 0;
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

/// M, N, K and the batch count as locals.
void MatmulEmitter::emitSizes(raw_ostream &os) {
  unsigned rank = outType.getRank();
  os << "  const long long M = " << sizes[rank - 2]
     << ", N = " << sizes[rank - 1] << ", K = " << kSize << ";\n";
  std::string batches;
  for (unsigned d = 0; d < batchRank; ++d)
    batches += (d ? " * " : "") + sizes[d];
  if (batchRank)
    os << "  const long long batches = " << batches << ";\n";
}

/// The multi-index b0, b1, ... of `batch`, and the offsets of A's and B's
/// matrices, as locals `A` and `B`.
void MatmulEmitter::emitBatchIndex(raw_ostream &os, StringRef indent) {
  SmallVector<std::string> index;
  for (unsigned d = 0; d < batchRank; ++d) {
    std::string inner;
    for (unsigned k = d + 1; k < batchRank; ++k)
      inner += (inner.empty() ? "" : " * ") + sizes[k];
    os << indent << "const long long b" << d << " = "
       << (inner.empty() ? "batch" : "(batch / (" + inner + "))") << " % "
       << sizes[d] << ";\n";
    index.push_back("b" + std::to_string(d));
  }
  ArrayRef<std::string> batchSizes(sizes.begin(), sizes.begin() + batchRank);
  auto matrix = [&](unsigned arg, StringRef name, StringRef elements) {
    auto argType = llvm::cast<RankedTensorType>(
        kernel.getBlock().getArgument(arg).getType());
    std::string offset;
    if (batchRank && argType.getRank() > 2)
      offset = " + (" +
               broadcastIndex(argType.getShape().drop_back(2), batchSizes,
                              index, "") +
               ") * " + elements.str();
    os << indent << "const " << type << " *__restrict__ " << name << " = in"
       << arg << offset << ";\n";
  };
  matrix(lhsArg, "A", "(M * K)");
  matrix(rhsArg, "B", "(K * N)");
}

/// The epilogue of one output element at (batch, row, col) whose product
/// is `acc`: loads of the inputs it reads, the fused ops, the stores.
LogicalResult MatmulEmitter::emitEpilogue(raw_ostream &os, StringRef indent,
                                          StringRef acc) {
  unsigned rank = outType.getRank();
  os << indent << "const long long idx = ("
     << (batchRank ? "batch * M + row" : "row") << ") * N + col;\n";
  SmallVector<std::string> index;
  for (unsigned d = 0; d < batchRank; ++d)
    index.push_back("b" + std::to_string(d));
  index.push_back("row");
  index.push_back("col");

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
    os << indent << "const " << cType(argType.getElementType()) << " " << local
       << " = in" << arg.getArgNumber() << "["
       << broadcastIndex(argType.getShape(), sizes, index, "idx") << "];\n";
    locals[arg] = local;
  }
  unsigned next = 0;
  if (failed(emitScalarOps(os, ops, locals, indent, "idx", next)))
    return failure();
  for (auto [n, v] : llvm::enumerate(yield->getOperands()))
    os << indent << "out" << n << "[idx] = " << locals.lookup(v) << ";\n";
  return success();
}

LogicalResult MatmulEmitter::emitCuda(raw_ostream &os) {
  unsigned rank = outType.getRank();
  auto staticSize = [](int64_t size) {
    return ShapedType::isDynamic(size) ? int64_t(-1) : size;
  };
  bool tl = matmul.getTransposeLhs(), tr = matmul.getTransposeRhs();
  auto lhsType = llvm::cast<RankedTensorType>(matmul.getLhs().getType());
  int64_t batches = 1;
  for (unsigned d = 0; d < batchRank; ++d)
    batches = ShapedType::isDynamic(outType.getDimSize(d)) || batches < 0
                  ? -1
                  : batches * outType.getDimSize(d);
  Problem problem{
      staticSize(outType.getDimSize(rank - 2)),
      staticSize(outType.getDimSize(rank - 1)),
      staticSize(lhsType.getDimSize(lhsType.getRank() - (tl ? 2 : 1))),
      batches,
      type == "double" ? 8u : 4u,
      tl,
      tr,
      static_cast<int>(generated.numOutputs)};
  Value out = matmul.getResult();
  problem.guessM = hints.size(out, rank - 2);
  problem.guessN = hints.size(out, rank - 1);
  problem.guessK =
      hints.size(matmul.getLhs(), lhsType.getRank() - (tl ? 2 : 1));
  int64_t guessBatches = 1;
  for (unsigned d = 0; d < batchRank; ++d) {
    int64_t size = hints.size(out, d);
    guessBatches = size < 0 || guessBatches < 0 ? -1 : guessBatches * size;
  }
  problem.guessBatches = guessBatches;
  for (BlockArgument arg : kernel.getBlock().getArguments())
    if (llvm::any_of(arg.getUsers(), [&](Operation *user) {
          return user != matmul.getOperation();
        }))
      ++problem.outputStreams;
  Tiles t = chooseTiles(problem);
  int w = vectorWidth(problem);
  int vm = std::min(t.tm, w), vn = std::min(t.tn, w);
  int64_t shared = sharedElements(t, problem);

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
  os << llvm::formatv(
      "  // Tiles (cost model: {0} blocks, {1} per SM at once, ~{2} cycles): "
      "a block\n"
      "  // computes {3} x {4} outputs in steps of {5} along k, each thread "
      "{6} x {7}\n"
      "  // of them; {8} group(s) of {9} threads split k (group s takes the "
      "k tiles\n"
      "  // s, s + {8}, ...). Launch: grid (ceil(M / {3}), ceil(N / {4}), "
      "batches),\n"
      "  // {10} threads, {11} bytes of static shared memory. Global loads: "
      "{12} (A),\n"
      "  // {13} (B).\n",
      t.blocks, t.perSM, int64_t(t.cycles), t.bm, t.bn, t.bk, t.tm, t.tn,
      t.split, t.threadsPerGroup(), t.threads(), shared * problem.elementBytes,
      vectorType(t.va), vectorType(t.vb));
  emitSizes(os);
  os << llvm::formatv(
      "  constexpr int BM = {0}, BN = {1}, BK = {2}, TM = {3}, TN = {4}, "
      "SPLIT = {5};\n"
      "  constexpr int GROUP = {6}, THREADS = {7};\n"
      "  // A thread's rows are TM / VM runs of VM consecutive rows, BM / TM "
      "* VM apart\n"
      "  // (columns alike), so it reads them from shared memory as vectors "
      "and a\n"
      "  // warp's reads are consecutive.\n"
      "  constexpr int VM = {8}, VN = {9};\n"
      "  // Tiles are stored k-major (As[k][m], Bs[k][n]), rows padded by "
      "one vector\n"
      "  // (conflict-free transposing stores, aligned vector reads); two "
      "buffers per\n"
      "  // group: the next k tile is stored while this one is used.\n"
      "  constexpr int LDA = BM + {10}, LDB = BN + {10};\n"
      "  constexpr int A_TILE = BK * LDA, B_TILE = BK * LDB;\n"
      "  __shared__ __align__(16) {11} smem[{12}];\n",
      t.bm, t.bn, t.bk, t.tm, t.tn, t.split, t.threadsPerGroup(), t.threads(),
      vm, vn, w, type, shared);
  os << "  const int tid = threadIdx.x;\n"
        "  const int group = tid / GROUP, t = tid % GROUP;\n"
        "  const int ty = t / (BN / TN), tx = t % (BN / TN);\n"
        "  const long long rowBase = (long long)blockIdx.x * BM;\n"
        "  const long long colBase = (long long)blockIdx.y * BN;\n";
  if (batchRank)
    os << "  const long long batch = blockIdx.z;\n";
  emitBatchIndex(os, "  ");
  os << "  " << type << " acc[TM][TN];\n"
     << "#pragma unroll\n"
        "  for (int i = 0; i < TM; ++i)\n"
        "#pragma unroll\n"
        "    for (int j = 0; j < TN; ++j)\n"
        "      acc[i][j] = 0;\n";

  // Step 1: the loads, global memory to registers (ra, rb) and registers
  // to shared memory, in vectors of VA (VB) elements along the dimension
  // contiguous in global memory; consecutive threads take consecutive
  // vectors.
  auto emitLoads = [&](StringRef name, bool rowsContiguous, int vector,
                       int tile, StringRef matrix, StringRef limit,
                       StringRef base, StringRef ld) {
    // `rowsContiguous`: the matrix is stored [K, rows] (k-major, like the
    // shared tile); otherwise [rows, K], and the store transposes.
    std::string vt = vectorType(vector);
    int64_t vectors = int64_t(tile) * t.bk / vector;
    int64_t perThread = ceilDiv(vectors, t.threadsPerGroup());
    bool exact = perThread * t.threadsPerGroup() == vectors;
    std::string index =
        rowsContiguous
            ? "const int kk = e / (" + std::to_string(tile) + " / " +
                  std::to_string(vector) + "), r = (e % (" +
                  std::to_string(tile) + " / " + std::to_string(vector) +
                  ")) * " + std::to_string(vector) + ";"
            : "const int r = e / (BK / " + std::to_string(vector) +
                  "), kk = (e % (BK / " + std::to_string(vector) + ")) * " +
                  std::to_string(vector) + ";";
    os << llvm::formatv(
        "  // {0} tile: {1} is stored {2}; {3} loads of {4} per thread.\n"
        "  {4} r{5}[{3}];\n"
        "  auto load{0} = [&](long long k0) {{\n"
        "#pragma unroll\n"
        "    for (int l = 0; l < {3}; ++l) {{\n"
        "      const int e = t + l * GROUP;\n"
        "      {6}\n"
        "      const long long row = {7} + r, k = k0 + kk;\n"
        "      r{5}[l] = {4}{{};\n"
        "      if ({8}row < {9} && k < K)\n"
        "        r{5}[l] = *reinterpret_cast<const {4} *>({1} + {10});\n"
        "    }\n"
        "  };\n",
        name, matrix,
        rowsContiguous ? "[K, " + limit.str() + "]"
                       : "[" + limit.str() + ", K]",
        perThread, vt, StringRef(name).lower(), index, base,
        exact ? "" : "e < " + std::to_string(vectors) + " && ", limit,
        rowsContiguous ? "k * " + limit.str() + " + row" : "row * K + k");
    os << llvm::formatv("  auto store{0} = [&](int buf) {{\n"
                        "    {1} *s = smem + {2};\n"
                        "#pragma unroll\n"
                        "    for (int l = 0; l < {3}; ++l) {{\n"
                        "      const int e = t + l * GROUP;\n",
                        name, type, ld, perThread);
    if (!exact)
      os << "      if (e >= " << vectors << ")\n        break;\n";
    os << "      " << index << "\n";
    std::string reg = "r" + StringRef(name).lower() + "[l]";
    std::string stride = name == "A" ? "LDA" : "LDB";
    if (rowsContiguous)
      os << "      *reinterpret_cast<" << vt << " *>(&s[kk * " << stride
         << " + r]) = " << reg << ";\n";
    else
      for (int c = 0; c < vector; ++c)
        os << "      s[(kk + " << c << ") * " << stride
           << " + r] = " << component(reg, c, vector) << ";\n";
    os << "    }\n  };\n";
  };
  emitLoads("A", tl, t.va, t.bm, "A", "M", "rowBase",
            "(group * 2 + buf) * A_TILE");
  emitLoads("B", !tr, t.vb, t.bn, "B", "N", "colBase",
            "SPLIT * 2 * A_TILE + (group * 2 + buf) * B_TILE");

  // Step 2: the register-blocked product.
  auto emitRead = [&](StringRef tile, StringRef reg, StringRef count,
                      StringRef v, int width, StringRef stride, StringRef runs,
                      StringRef self) {
    os << "#pragma unroll\n"
       << "      for (int c = 0; c < " << count << " / " << v << "; ++c) {\n"
       << "        const " << vectorType(width)
       << " x = *reinterpret_cast<const " << vectorType(width) << " *>(&"
       << tile << "[kk * " << stride << " + c * " << runs << " * " << v << " + "
       << self << " * " << v << "]);\n";
    for (int c = 0; c < width; ++c)
      os << "        " << reg << "[c * " << v << " + " << c
         << "] = " << component("x", c, width) << ";\n";
    os << "      }\n";
  };
  os << "  // Each thread's TM x TN outer products, k in increasing order "
        "(the zeros\n"
        "  // past K add nothing).\n"
        "  auto multiply = [&](int buf) {\n"
     << "    const " << type << " *As = smem + (group * 2 + buf) * A_TILE;\n"
     << "    const " << type
     << " *Bs = smem + SPLIT * 2 * A_TILE + (group * 2 + buf) * B_TILE;\n"
     << "#pragma unroll\n"
        "    for (int kk = 0; kk < BK; ++kk) {\n"
     << "      " << type << " a[TM], b[TN];\n";
  emitRead("As", "a", "TM", "VM", vm, "LDA", "(BM / TM)", "ty");
  emitRead("Bs", "b", "TN", "VN", vn, "LDB", "(BN / TN)", "tx");
  os << "#pragma unroll\n"
        "      for (int i = 0; i < TM; ++i)\n"
        "#pragma unroll\n"
        "        for (int j = 0; j < TN; ++j)\n"
     << "          acc[i][j] = " << (type == "double" ? "fma" : "fmaf")
     << "(a[i], b[j], acc[i][j]);\n"
     << "    }\n"
        "  };\n";
  os << "  // The k loop, double-buffered: the next tile's global loads are "
        "in flight\n"
        "  // while this one is multiplied; one barrier per step.\n"
        "  const long long steps = (K + SPLIT * BK - 1) / (SPLIT * BK);\n"
        "  loadA(group * BK);\n"
        "  loadB(group * BK);\n"
        "  storeA(0);\n"
        "  storeB(0);\n"
        "  __syncthreads();\n"
        "  for (long long step = 0; step < steps; ++step) {\n"
        "    const int buf = step & 1;\n"
        "    const bool more = step + 1 < steps;\n"
        "    if (more) {\n"
        "      loadA((step + 1) * SPLIT * BK + group * BK);\n"
        "      loadB((step + 1) * SPLIT * BK + group * BK);\n"
        "    }\n"
        "    multiply(buf);\n"
        "    if (more) {\n"
        "      storeA(buf ^ 1);\n"
        "      storeB(buf ^ 1);\n"
        "    }\n"
        "    __syncthreads();\n"
        "  }\n";
  if (t.split > 1) {
    os << "  // Split-K: group 0 adds the other groups' partial sums in "
          "group order\n"
          "  // (deterministic), one group at a time through the tiles' "
          "shared memory;\n"
          "  // partial[(i * TN + j) * GROUP + t] keeps the accesses "
          "consecutive.\n"
          "  for (int s = 1; s < SPLIT; ++s) {\n"
          "    if (group == s)\n"
          "#pragma unroll\n"
          "      for (int i = 0; i < TM; ++i)\n"
          "#pragma unroll\n"
          "        for (int j = 0; j < TN; ++j)\n"
          "          smem[(i * TN + j) * GROUP + t] = acc[i][j];\n"
          "    __syncthreads();\n"
          "    if (group == 0)\n"
          "#pragma unroll\n"
          "      for (int i = 0; i < TM; ++i)\n"
          "#pragma unroll\n"
          "        for (int j = 0; j < TN; ++j)\n"
          "          acc[i][j] += smem[(i * TN + j) * GROUP + t];\n"
          "    __syncthreads();\n"
          "  }\n"
          "  if (group > 0)\n"
          "    return;\n";
  }
  os << "  // The epilogue, in registers, and the stores.\n"
        "#pragma unroll\n"
        "  for (int i = 0; i < TM; ++i) {\n"
        "    const long long row = rowBase + (i / VM) * (BM / TM) * VM + ty "
        "* VM + i % VM;\n"
        "    if (row >= M)\n"
        "      break;\n"
        "#pragma unroll\n"
        "    for (int j = 0; j < TN; ++j) {\n"
        "      const long long col = colBase + (j / VN) * (BN / TN) * VN + tx "
        "* VN + j % VN;\n"
        "      if (col >= N)\n"
        "        break;\n";
  if (failed(emitEpilogue(os, "      ", "acc[i][j]")))
    return failure();
  os << "    }\n"
        "  }\n";
  return success();
}

LogicalResult MatmulEmitter::emitCpp(raw_ostream &os) {
  bool tl = matmul.getTransposeLhs(), tr = matmul.getTransposeRhs();
  os << "  // i-k-j: rows one at a time, columns in blocks of 64 summed in "
        "acc[] over\n"
        "  // k in increasing order, then the epilogue.\n";
  emitSizes(os);
  std::string indent = "  ";
  if (batchRank) {
    os << "  for (long long batch = 0; batch < batches; ++batch) {\n";
    indent = "    ";
  }
  emitBatchIndex(os, indent);
  os << indent << "for (long long row = 0; row < M; ++row) {\n"
     << indent << "  for (long long col0 = 0; col0 < N; col0 += 64) {\n"
     << indent << "    const long long width = N - col0 < 64 ? N - col0 : 64;\n"
     << indent << "    " << type << " acc[64];\n"
     << indent << "    for (long long c = 0; c < width; ++c)\n"
     << indent << "      acc[c] = 0;\n"
     << indent << "    for (long long k = 0; k < K; ++k) {\n"
     << indent << "      const " << type << " a = A["
     << (tl ? "k * M + row" : "row * K + k") << "];\n"
     << indent << "      const " << type << " *b = B + "
     << (tr ? "col0 * K + k" : "k * N + col0") << ";\n"
     << indent << "      for (long long c = 0; c < width; ++c)\n"
     << indent << "        acc[c] += a * b[" << (tr ? "c * K" : "c") << "];\n"
     << indent << "    }\n"
     << indent << "    for (long long c = 0; c < width; ++c) {\n"
     << indent << "      const long long col = col0 + c;\n";
  if (failed(emitEpilogue(os, indent + "      ", "acc[c]")))
    return failure();
  os << indent << "    }\n" << indent << "  }\n" << indent << "}\n";
  if (batchRank)
    os << "  }\n";
  return success();
}

LogicalResult MatmulEmitter::emit(raw_ostream &os) {
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

  std::string body;
  llvm::raw_string_ostream bodyOs(body);
  if (failed(target == Target::cuda ? emitCuda(bodyOs) : emitCpp(bodyOs)))
    return failure();

  writeKernelComment(os, kernel);
  std::string header = signature(kernel, generated, target);
  if (target == Target::cuda) {
    // Tell the compiler the block size, so that it may use more registers.
    StringRef global = "__global__ void";
    std::string launchBounds = llvm::formatv("{0} __launch_bounds__({1}, 1)",
                                             global, generated.launch.block[0]);
    header.replace(header.find(global.str()), global.size(), launchBounds);
  }
  os << header << " {\n" << body << "}\n";
  if (target == Target::cpp)
    os << cppEntry(kernel, generated);
  return success();
}

FailureOr<GeneratedKernel>
kiln::codegen::generateMatmul(KernelOp kernel, llvm::StringRef symbol,
                              Target target, const SizeHints &hints) {
  GeneratedKernel generated;
  if (failed(initGenerated(kernel, symbol, generated)))
    return failure();
  SmallVector<MatmulOp> matmuls(kernel.getBlock().getOps<MatmulOp>());
  if (matmuls.size() != 1)
    return kernel.emitError("a matmul kernel holds exactly one kiln.matmul, "
                            "not ")
           << matmuls.size();
  std::string text;
  llvm::raw_string_ostream os(text);
  MatmulEmitter emitter(kernel, matmuls.front(), generated, target, hints);
  if (failed(emitter.emit(os)))
    return failure();
  generated.source = std::move(text);
  return generated;
}

std::string kiln::codegen::matmulPreamble(Target) { return ""; }
