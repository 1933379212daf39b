//===- CostModelTest.cpp - the schedules kiln-schedule chooses ------------===//
//
// Each cost model of passes/CostModel.h asked directly: given a kernel's
// sizes, the schedule it picks. The expectations are the choices the models
// are documented to make for the example models (the MLP at batch 128 and
// 4096, the CNN at batch 256) and the rules' edges.
//
//===----------------------------------------------------------------------===//

#include "passes/CostModel.h"

#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace kiln;
using namespace kiln::cost;

namespace {

/// An f32 product C[M, N] = A[M, K] B[K, N] with a plain epilogue.
GemmProblem gemm(int64_t m, int64_t n, int64_t k, bool tl = false,
                 bool tr = false) {
  GemmProblem p;
  p.m = m, p.n = n, p.k = k;
  p.transposeLhs = tl, p.transposeRhs = tr;
  return p;
}

struct Tiles {
  int bm, bn, tm, tn, split;
};

void expectTiles(const GemmProblem &p, Tiles want, const char *what) {
  GemmTiles t = chooseGemmTiles(p);
  EXPECT_EQ(t.bm, want.bm) << what;
  EXPECT_EQ(t.bn, want.bn) << what;
  EXPECT_EQ(t.split, want.split) << what;
  if (want.tm) {
    EXPECT_EQ(t.tm, want.tm) << what;
  }
  if (want.tn) {
    EXPECT_EQ(t.tn, want.tn) << what;
  }
}

// The MLP 784-512-512-10 at batch 4096: the large products get 128 x 128
// tiles of 8 x 8 per thread, the logits 32 x 16 split 8 ways, the weight
// gradients (K = the batch) 64 x 64, 64 x 32 and 16 x 16 split 4 ways.
TEST(GemmCostModel, MlpAtBatch4096) {
  // Forward: x [4096, 784] times W1 [512, 784]^T.
  expectTiles(gemm(4096, 512, 784, false, true), {128, 128, 8, 8, 1},
              "layer 1 forward");
  expectTiles(gemm(4096, 10, 512, false, true), {32, 16, 0, 0, 8}, "logits");
  // dX of the logits: dY [4096, 10] times W3 [10, 512] (K = 10).
  expectTiles(gemm(4096, 512, 10), {128, 128, 0, 0, 1}, "logits dX");
  // Weight gradients: dY^T [N, 4096] times X [4096, K].
  expectTiles(gemm(512, 784, 4096, true), {64, 64, 0, 0, 4}, "dW1");
  expectTiles(gemm(512, 512, 4096, true), {64, 32, 0, 0, 4}, "dW2");
  expectTiles(gemm(10, 512, 4096, true), {16, 16, 0, 0, 4}, "dW3");
}

// At batch 128 the outputs are too few to fill the GPU: small tiles whose
// blocks split k 4 to 8 ways.
TEST(GemmCostModel, MlpAtBatch128SplitsK) {
  for (auto [n, k] : {std::pair<int64_t, int64_t>{512, 784}, {512, 512}}) {
    GemmTiles t = chooseGemmTiles(gemm(128, n, k, false, true));
    EXPECT_EQ(t.bm, 32) << k;
    EXPECT_EQ(t.bn, 16) << k;
    EXPECT_GE(t.split, 4) << k;
    EXPECT_LE(t.split, 8) << k;
  }
}

// The tuner ranks every tiling of a space: one whose block cannot be
// resident on an SM (1024 threads of 64 accumulators each: too many
// registers) is estimated as never finishing, and the others finitely.
TEST(GemmCostModel, EstimatesEveryTiling) {
  GemmProblem p = gemm(25088, 64, 800);
  EXPECT_TRUE(std::isinf(estimateTiles(128, 128, 16, 8, 8, 64, p).cycles));
  GemmTiles t = estimateTiles(64, 64, 16, 4, 4, 2, p);
  EXPECT_TRUE(std::isfinite(t.cycles));
  EXPECT_GT(t.cycles, 0);
  EXPECT_GE(t.perSM, 1);
}

// A dynamic size counts as its hint, else 1024: the generic 64 x 64 tiles.
TEST(GemmCostModel, DynamicSizesUseTheHint) {
  GemmProblem unknown = gemm(-1, 512, 784, false, true);
  expectTiles(unknown, {64, 64, 0, 0, 2}, "dynamic batch");
  GemmProblem hinted = unknown;
  hinted.guessM = 4096;
  GemmTiles t = chooseGemmTiles(hinted);
  EXPECT_EQ(t.bm, 128);
  EXPECT_EQ(t.bn, 128);
}

// Vector loads need the contiguous dimension's static size and the tile to
// be multiples of the 16-byte vector.
TEST(GemmCostModel, VectorLoadsFollowStaticSizes) {
  GemmTiles t = chooseGemmTiles(gemm(4096, 512, 784, false, true));
  EXPECT_EQ(t.va, 4); // A [M, K], K = 784
  EXPECT_EQ(t.vb, 4); // B [N, K] (transposed), K = 784
  GemmTiles odd = chooseGemmTiles(gemm(4096, 512, 785, false, true));
  EXPECT_EQ(odd.va, 1);
  EXPECT_EQ(odd.vb, 1);
  EXPECT_EQ(gemmLoadVector(-1, 64, 4), 1);
  EXPECT_EQ(gemmLoadVector(10, 64, 8), 2);
}

// Every choice is in the valid space of #kiln.gemm (its verifier and the
// element-size checks), f32 and f64.
TEST(GemmCostModel, ChoicesAreValidSchedules) {
  mlir::MLIRContext context;
  context.loadDialect<KilnDialect>();
  for (unsigned bytes : {4u, 8u})
    for (int64_t m : {1, 10, 128, 4096, -1})
      for (int64_t n : {1, 10, 512})
        for (int64_t k : {1, 9, 784, 4096}) {
          GemmProblem p = gemm(m, n, k, m == 10, n == 512);
          p.elementBytes = bytes;
          GemmTiles t = chooseGemmTiles(p);
          auto report = [&] {
            return mlir::emitError(mlir::UnknownLoc::get(&context));
          };
          llvm::function_ref<mlir::InFlightDiagnostic()> onError = report;
          auto schedule = GemmScheduleAttr::getChecked(
              onError, &context, int64_t(t.bm), int64_t(t.bn), int64_t(t.bk),
              int64_t(t.tm), int64_t(t.tn), int64_t(t.split));
          ASSERT_TRUE(schedule) << m << " " << n << " " << k;
          EXPECT_TRUE(
              mlir::succeeded(verifyGemmSchedule(schedule, bytes, report)));
        }
}

ConvScheduleAttr conv(mlir::MLIRContext &context, int64_t m, int64_t n,
                      int64_t k, bool weightGradient = false) {
  ConvProblem p;
  p.m = m, p.n = n, p.k = k;
  p.weightGradient = weightGradient;
  p.largestTensor = 25690112; // examples/cnn.kiln's conv1 output at 256
  return chooseConvSchedule(&context, p);
}

// examples/cnn.kiln at batch 256, as Opaque.cpp's header expects.
TEST(ConvCostModel, CnnAtBatch256) {
  mlir::MLIRContext context;
  context.loadDialect<KilnDialect>();
  // conv1 forward: GM 200704, GN 32, GK 9 (BK = K).
  EXPECT_EQ(conv(context, 200704, 32, 9),
            ConvScheduleAttr::get(&context, 128, 32, 9, 4, 4, 1, 32));
  // conv2 forward: GM 50176, GN 64, GK 288.
  EXPECT_EQ(conv(context, 50176, 64, 288),
            ConvScheduleAttr::get(&context, 128, 64, 16, 8, 4, 1, 32));
  // conv2 input gradient: GM 50176, GN 32, GK 576.
  EXPECT_EQ(conv(context, 50176, 32, 576),
            ConvScheduleAttr::get(&context, 128, 32, 16, 4, 4, 1, 32));
  // conv2 weight gradient: GM 64, GN 288, GK 50176: 5 tiles x 52 slices.
  EXPECT_EQ(conv(context, 64, 288, 50176, true),
            ConvScheduleAttr::get(&context, 64, 64, 16, 4, 8, 52, 32));
  // conv1 weight gradient: GM 32, GN 9, GK 200704: 128 slices.
  EXPECT_EQ(conv(context, 32, 9, 200704, true),
            ConvScheduleAttr::get(&context, 32, 16, 16, 2, 2, 128, 32));
}

// Fewer than 264 blocks of 128 rows: 64-row tiles; a dynamic M keeps 128;
// indices are 64-bit from 2^31 elements, or when a size is unknown.
TEST(ConvCostModel, Edges) {
  mlir::MLIRContext context;
  context.loadDialect<KilnDialect>();
  EXPECT_EQ(conv(context, 8192, 64, 288).getBm(), 64);
  EXPECT_EQ(conv(context, -1, 64, 288).getBm(), 128);
  EXPECT_EQ(conv(context, 64, -1, 50176, true).getSplitK(), 1);
  ConvProblem big;
  big.m = 4096, big.n = 64, big.k = 288;
  big.largestTensor = int64_t(1) << 31;
  EXPECT_EQ(chooseConvSchedule(&context, big).getIndexBits(), 64);
  big.largestTensor = -1;
  EXPECT_EQ(chooseConvSchedule(&context, big).getIndexBits(), 64);
}

ReduceScheduleAttr
reduce(mlir::MLIRContext &context, llvm::ArrayRef<int64_t> sizes,
       llvm::ArrayRef<bool> reduced,
       ReductionProblem::Kind kind = ReductionProblem::Kind::rows) {
  ReductionProblem p;
  p.kind = kind;
  p.sizes.assign(sizes.begin(), sizes.end());
  p.reduced.assign(reduced.begin(), reduced.end());
  return chooseReduceSchedule(&context, p);
}

TEST(ReduceCostModel, Schemes) {
  mlir::MLIRContext context;
  context.loadDialect<KilnDialect>();
  auto get = [&](ReductionScheme scheme, int64_t x, int64_t y) {
    return ReduceScheduleAttr::get(&context, scheme, x, y);
  };
  using Kind = ReductionProblem::Kind;
  // Rows of a known extent up to 1024: a warp a row.
  EXPECT_EQ(reduce(context, {128, 10}, {false, true}),
            get(ReductionScheme::warp_rows, 256, 1));
  // A longer or unknown extent: a block a row, 1024 threads for few rows.
  EXPECT_EQ(reduce(context, {128, 4096}, {false, true}),
            get(ReductionScheme::block_rows, 256, 1));
  EXPECT_EQ(reduce(context, {16, 4096}, {false, true}),
            get(ReductionScheme::block_rows, 1024, 1));
  EXPECT_EQ(reduce(context, {128, -1}, {false, true}),
            get(ReductionScheme::block_rows, 256, 1));
  // The kept dimension innermost (a bias gradient): columns, 32 wide, the
  // reduced extent in slices (at most 16, fewer when it is short).
  EXPECT_EQ(reduce(context, {128, 512}, {true, false}),
            get(ReductionScheme::columns, 32, 16));
  EXPECT_EQ(reduce(context, {4, 512}, {true, false}),
            get(ReductionScheme::columns, 32, 4));
  EXPECT_EQ(reduce(context, {128, 10}, {true, false}),
            get(ReductionScheme::columns, 16, 32));
  // Static size-1 dimensions do not count as innermost.
  EXPECT_EQ(reduce(context, {128, 10, 1}, {false, true, false}),
            get(ReductionScheme::warp_rows, 256, 1));
  // count is one thread; cross_entropy one block of 1024 threads.
  EXPECT_EQ(reduce(context, {-1, 10}, {true, true}, Kind::count),
            get(ReductionScheme::single, 1, 1));
  EXPECT_EQ(reduce(context, {128, 10}, {false, true}, Kind::crossEntropy),
            get(ReductionScheme::warp_rows, 1024, 1));
}

// An embedding gradient's block spans a table row, rounded up to a warp,
// at most 256 threads; 256 when the row's length is not known.
TEST(ElementwiseCostModel, EmbeddingGradientBlockSpansARow) {
  EXPECT_EQ(embeddingGradBlock(384), 256);
  EXPECT_EQ(embeddingGradBlock(80), 96);
  EXPECT_EQ(embeddingGradBlock(4), 32);
  EXPECT_EQ(embeddingGradBlock(-1), 256);
}

// Attention tiles: 64 rows unless half a tile covers the longer sequence or
// the tiles do not fit the shared-memory budget.
TEST(AttentionCostModel, TileFitsTheSequencesAndTheSharedMemory) {
  auto fits = [](int64_t) { return int64_t(0); };
  EXPECT_EQ(chooseAttentionTile(256, 256, fits), 64);
  EXPECT_EQ(chooseAttentionTile(33, 20, fits), 64);
  EXPECT_EQ(chooseAttentionTile(20, 8, fits), 32);
  EXPECT_EQ(chooseAttentionTile(8, 8, fits), 16);
  // Shared memory growing with the tile (bytes = tile * 2 KiB):
  // 64 rows take 128 KiB, more than the 100 KiB budget.
  auto grows = [](int64_t tile) { return tile * 2048; };
  EXPECT_EQ(chooseAttentionTile(256, 256, grows), 32);
  // Never below 16 rows, even when those do not fit (the verifier reports
  // it at the kernel).
  auto never = [](int64_t) { return kAttentionSharedBudget + 1; };
  EXPECT_EQ(chooseAttentionTile(256, 256, never), 16);
}

} // namespace
