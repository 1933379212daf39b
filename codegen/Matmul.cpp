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
// batches). Per step of BK along k:
//
//   1. the block loads the BM x BK tile of A and the BK x BN tile of B into
//      shared memory, both k-major (As[k][m], Bs[k][n]), zero outside M, N
//      and K; consecutive threads read consecutive addresses of whichever
//      dimension is contiguous in global memory (this is where the
//      transpose flags go), and a padding column keeps the transposing
//      stores free of bank conflicts;
//   2. each thread multiplies a TM x TN block of outputs held in registers,
//      rows ty + i * BM / TM and columns tx + j * BN / TN (strided, so a
//      warp reads consecutive shared addresses and stores coalesce), with
//      one FMA per output and k.
//
// Split-K: when the output is too small to fill the GPU (a weight gradient
// 10 x 512 whose K is the batch), the block's threads form SPLIT groups,
// group s taking the k tiles s, s + SPLIT, ...; group 0 then adds the
// others' partial sums from shared memory in a fixed order. No atomics:
// the result is the same bit for bit on every run.
//
// The tile shapes are chosen from the static shapes (chooseTiles). This is
// the fp32/fp64 SIMT variant; a tensor-core variant (TF32, bf16 mma) would
// replace step 2 and the tile choice, keeping the loads and the epilogue.
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

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

namespace {

/// The CUDA tiling of one kernel: a block computes BM x BN outputs, in
/// steps of BK along k, each of its threads TM x TN of them, in `split`
/// groups of threads that share the k range.
struct Tiles {
  int bm, bn, bk, tm, tn, split;
  const char *why;

  int threadsPerGroup() const { return (bm / tm) * (bn / tn); }
  int threads() const { return threadsPerGroup() * split; }
};

/// Chooses the tiles from the static sizes (-1 when dynamic): see the rules
/// in the body. All tiles keep BK = 16 and at most 512 threads.
Tiles chooseTiles(int64_t m, int64_t n, int64_t k) {
  auto tilesOf = [](int64_t size, int64_t tile) {
    return (size + tile - 1) / tile;
  };
  // A long or unknown contraction is worth splitting within a block.
  bool longK = k < 0 || k >= 256;
  // A narrow output (the logits, N = 10): 64-wide tiles would idle most
  // threads, so tiles 16 (or 32) wide, one (or two) columns per thread.
  if (n >= 0 && n <= 32) {
    Tiles t{32,
            n <= 16 ? 16 : 32,
            16,
            2,
            n <= 16 ? 1 : 2,
            longK ? 2 : 1,
            "narrow output"};
    return t;
  }
  // A small static output (weight gradients, K = batch): 64 x 64 tiles
  // would give fewer blocks than half the SMs of an H100, so small tiles
  // and split-K, the group's threads summing parts of k.
  if (m >= 0 && n >= 0 && tilesOf(m, 64) * tilesOf(n, 64) < 64) {
    int bm = m <= 16 ? 16 : 32;
    Tiles t{
        bm, 32, 16, 2, 2, longK ? 512 / ((bm / 2) * 16) : 1, "small output"};
    return t;
  }
  return Tiles{64, 64, 16, 4, 4, 1, "default"};
}

/// Writes the kernels' code; one instance per kernel.
class MatmulEmitter {
public:
  MatmulEmitter(KernelOp kernel, MatmulOp matmul, GeneratedKernel &generated,
                Target target)
      : kernel(kernel), matmul(matmul), generated(generated), target(target) {}

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
  auto lhsType = llvm::cast<RankedTensorType>(matmul.getLhs().getType());
  int64_t kStatic = staticSize(lhsType.getDimSize(
      lhsType.getRank() - (matmul.getTransposeLhs() ? 2 : 1)));
  Tiles t = chooseTiles(staticSize(outType.getDimSize(rank - 2)),
                        staticSize(outType.getDimSize(rank - 1)), kStatic);
  unsigned elementBytes = type == "double" ? 8 : 4;
  unsigned sharedBytes =
      elementBytes *
      (t.split * t.bk * (t.bm + 1 + t.bn + 1) + (t.split - 1) * t.bm * t.bn);

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

  os << llvm::formatv(
      "  // Tiles ({0}): a block computes {1} x {2} outputs in steps of {3} "
      "along k,\n"
      "  // each thread {4} x {5} of them (rows ty + i * {1} / {4}, columns "
      "tx + j * {2} / {5});\n"
      "  // {6} group(s) of {7} threads split k (group s takes the k tiles s, "
      "s + {6}, ...).\n"
      "  // Launch: grid (ceil(M / {1}), ceil(N / {2}), batches), {8} "
      "threads, {9} bytes of static\n"
      "  // shared memory.\n",
      t.why, t.bm, t.bn, t.bk, t.tm, t.tn, t.split, t.threadsPerGroup(),
      t.threads(), sharedBytes);
  emitSizes(os);
  os << llvm::formatv("  constexpr int BM = {0}, BN = {1}, BK = {2}, TM = {3}, "
                      "TN = {4}, SPLIT = {5};\n"
                      "  constexpr int GROUP = {6}, THREADS = {7};\n",
                      t.bm, t.bn, t.bk, t.tm, t.tn, t.split,
                      t.threadsPerGroup(), t.threads());
  os << "  // k-major tiles, one per group; the padding column keeps the "
        "stores of\n"
        "  // k-contiguous loads free of bank conflicts.\n"
     << "  __shared__ " << type << " As[SPLIT][BK][BM + 1];\n"
     << "  __shared__ " << type << " Bs[SPLIT][BK][BN + 1];\n";
  os << "  const int tid = threadIdx.x;\n"
        "  const int group = tid / GROUP, t = tid % GROUP;\n"
        "  const int ty = t / (BN / TN), tx = t % (BN / TN);\n"
        "  const long long rowBase = (long long)blockIdx.x * BM;\n"
        "  const long long colBase = (long long)blockIdx.y * BN;\n";
  if (batchRank)
    os << "  const long long batch = blockIdx.z;\n";
  emitBatchIndex(os, "  ");
  os << "  " << type << " acc[TM][TN];\n"
     << "  for (int i = 0; i < TM; ++i)\n"
        "    for (int j = 0; j < TN; ++j)\n"
        "      acc[i][j] = 0;\n";

  // Step 1: the loads. Element e of a tile is decomposed with the
  // dimension contiguous in global memory fastest.
  bool tl = matmul.getTransposeLhs(), tr = matmul.getTransposeRhs();
  os << "  for (long long k0 = 0; k0 < K; k0 += SPLIT * BK) {\n";
  os << "    // A tile: A is stored " << (tl ? "[K, M]" : "[M, K]")
     << ", so consecutive threads take consecutive " << (tl ? "rows m" : "k")
     << ".\n"
     << "    for (int e = tid; e < SPLIT * BK * BM; e += THREADS) {\n";
  if (tl)
    os << "      const int m = e % BM, kk = (e / BM) % BK, s = e / (BM * "
          "BK);\n";
  else
    os << "      const int kk = e % BK, m = (e / BK) % BM, s = e / (BK * "
          "BM);\n";
  os << "      const long long row = rowBase + m, k = k0 + s * BK + kk;\n"
     << "      As[s][kk][m] = row < M && k < K ? A["
     << (tl ? "k * M + row" : "row * K + k") << "] : 0;\n"
     << "    }\n";
  os << "    // B tile: B is stored " << (tr ? "[N, K]" : "[K, N]")
     << ", so consecutive threads take consecutive " << (tr ? "k" : "columns n")
     << ".\n"
     << "    for (int e = tid; e < SPLIT * BK * BN; e += THREADS) {\n";
  if (tr)
    os << "      const int kk = e % BK, n = (e / BK) % BN, s = e / (BK * "
          "BN);\n";
  else
    os << "      const int n = e % BN, kk = (e / BN) % BK, s = e / (BN * "
          "BK);\n";
  os << "      const long long col = colBase + n, k = k0 + s * BK + kk;\n"
     << "      Bs[s][kk][n] = col < N && k < K ? B["
     << (tr ? "col * K + k" : "k * N + col") << "] : 0;\n"
     << "    }\n"
     << "    __syncthreads();\n";
  // Step 2: the register-blocked product.
  os << "    // Each thread's TM x TN outer products, k in increasing order "
        "(the zeros\n"
        "    // past K add nothing).\n"
        "    for (int kk = 0; kk < BK; ++kk) {\n"
     << "      " << type << " a[TM], b[TN];\n"
     << "      for (int i = 0; i < TM; ++i)\n"
        "        a[i] = As[group][kk][ty + i * (BM / TM)];\n"
        "      for (int j = 0; j < TN; ++j)\n"
        "        b[j] = Bs[group][kk][tx + j * (BN / TN)];\n"
        "      for (int i = 0; i < TM; ++i)\n"
        "        for (int j = 0; j < TN; ++j)\n"
     << "          acc[i][j] = " << (type == "double" ? "fma" : "fmaf")
     << "(a[i], b[j], acc[i][j]);\n"
     << "    }\n"
        "    __syncthreads();\n"
        "  }\n";
  if (t.split > 1) {
    os << "  // Split-K: group 0 adds the other groups' partial sums in "
          "group order\n"
          "  // (deterministic); partial[s - 1][i * TN + j][t] keeps "
          "the accesses\n"
          "  // consecutive across threads.\n"
       << "  __shared__ " << type << " partial[SPLIT - 1][TM * TN][GROUP];\n"
       << "  if (group > 0)\n"
          "    for (int i = 0; i < TM; ++i)\n"
          "      for (int j = 0; j < TN; ++j)\n"
          "        partial[group - 1][i * TN + j][t] = acc[i][j];\n"
          "  __syncthreads();\n"
          "  if (group > 0)\n"
          "    return;\n"
          "  for (int s = 1; s < SPLIT; ++s)\n"
          "    for (int i = 0; i < TM; ++i)\n"
          "      for (int j = 0; j < TN; ++j)\n"
          "        acc[i][j] += partial[s - 1][i * TN + j][t];\n";
  }
  os << "  // The epilogue, in registers, and the stores.\n"
        "  for (int i = 0; i < TM; ++i) {\n"
        "    const long long row = rowBase + ty + i * (BM / TM);\n"
        "    if (row >= M)\n"
        "      break;\n"
        "    for (int j = 0; j < TN; ++j) {\n"
        "      const long long col = colBase + tx + j * (BN / TN);\n"
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
    std::string launchBounds = llvm::formatv("{0} __launch_bounds__({1})",
                                             global, generated.launch.block[0]);
    header.replace(header.find(global.str()), global.size(), launchBounds);
  }
  os << header << " {\n" << body << "}\n";
  if (target == Target::cpp)
    os << cppEntry(kernel, generated);
  return success();
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
  std::string text;
  llvm::raw_string_ostream os(text);
  MatmulEmitter emitter(kernel, matmuls.front(), generated, target);
  if (failed(emitter.emit(os)))
    return failure();
  generated.source = std::move(text);
  return generated;
}

std::string kiln::codegen::matmulPreamble(Target) { return ""; }
