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
// C++: rows one at a time, columns in blocks of the schedule's block_n
// (#kiln.cpu_gemm) accumulated in a local array, k in the middle (i-k-j): the
// innermost loop runs over a contiguous row of B (unless transposed) and
// vectorizes. The epilogue follows each block.
//
//===----------------------------------------------------------------------===//

#include "codegen/CodegenUtils.h"

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

/// emitScalarOps at an indent string (until this generator writes through
/// a raw_indented_ostream).
static LogicalResult emitScalarOpsAt(raw_ostream &os, ArrayRef<Operation *> ops,
                                     DenseMap<Value, std::string> &locals,
                                     StringRef indent, StringRef flatIndex,
                                     unsigned &next) {
  assert(indent.size() % 2 == 0 && "indents are steps of two");
  raw_indented_ostream indented(os);
  for (size_t i = 0; i < indent.size(); i += 2)
    indented.indent();
  return emitScalarOps(indented, ops, locals, flatIndex, next);
}

namespace {

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

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
  if (failed(emitScalarOpsAt(os, ops, locals, indent, "idx", next)))
    return failure();
  for (auto [n, v] : llvm::enumerate(yield->getOperands()))
    os << indent << "out" << n << "[idx] = " << locals.lookup(v) << ";\n";
  return success();
}

LogicalResult MatmulEmitter::emitCuda(raw_ostream &os) {
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
  std::string scheduleText;
  llvm::raw_string_ostream(scheduleText) << *schedule;
  os << llvm::formatv(
      "  // Tiles: {0}. A block\n"
      "  // computes {1} x {2} outputs in steps of {3} along k, each thread "
      "{4} x {5}\n"
      "  // of them; {6} group(s) of {7} threads split k (group s takes the "
      "k tiles\n"
      "  // s, s + {6}, ...). Launch: grid (ceil(M / {1}), ceil(N / {2}), "
      "batches),\n"
      "  // {8} threads, {9} bytes of static shared memory. Global loads: "
      "{10} (A),\n"
      "  // {11} (B).\n",
      scheduleText, t.bm, t.bn, t.bk, t.tm, t.tn, t.split, t.threadsPerGroup(),
      t.threads(), shared * elementBytes, vectorType(t.va), vectorType(t.vb));
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
  FailureOr<CpuGemmScheduleAttr> schedule =
      requireSchedule<CpuGemmScheduleAttr>(kernel, kCpuTarget);
  if (failed(schedule))
    return failure();
  std::string nb = std::to_string(schedule->getBlockN());
  bool tl = matmul.getTransposeLhs(), tr = matmul.getTransposeRhs();
  os << "  // i-k-j: rows one at a time, columns in blocks of " << nb
     << " summed in acc[] over\n"
        "  // k in increasing order, then the epilogue.\n";
  emitSizes(os);
  std::string indent = "  ";
  if (batchRank) {
    os << "  for (long long batch = 0; batch < batches; ++batch) {\n";
    indent = "    ";
  }
  emitBatchIndex(os, indent);
  os << indent << "for (long long row = 0; row < M; ++row) {\n"
     << indent << "  for (long long col0 = 0; col0 < N; col0 += " << nb
     << ") {\n"
     << indent << "    const long long width = N - col0 < " << nb
     << " ? N - col0 : " << nb << ";\n"
     << indent << "    " << type << " acc[" << nb << "];\n"
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
