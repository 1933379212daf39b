//===- AttentionTest.cpp - kiln.attention and kiln.iota against oracles ---===//
//
// kiln.attention is a primitive with two results (the output and each
// row's log-sum-exp) and a gradient rule that builds two gradient ops,
// kiln.attention_grad_q and kiln.attention_grad_kv. The reference executor
// runs all three directly (explicit score matrices per batch entry). So:
//
//   1. its gradient matches central differences of the forward computation
//      (attentionCases(), part of the registry of GradientCasesTest.cpp:
//      causal and not, Tq != Tk, Dv != D, broadcast batch dimensions);
//   2. the log-sum-exp result is the log of each row's softmax normalizer;
//   3. a loss that reads the log-sum-exp is a located error of autodiff;
//   4. kiln.iota holds each element's index along its dimension.
//
//===----------------------------------------------------------------------===//

#include "test/numerics/GradientCheck.h"

#include "ir/KilnDialect.h"
#include "passes/Passes.h"
#include "reference/Executor.h"
#include "reference/Kernels.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <random>

using namespace kiln;
using namespace kiln::numerics;

namespace {

/// `tensor<2x3x4xf64>`.
std::string type(llvm::ArrayRef<int64_t> shape) {
  std::string text = "tensor<";
  for (int64_t d : shape)
    text += std::to_string(d) + "x";
  return text + "f64>";
}

/// `tensor<2x3xf64>` of `shape` without its last dimension: the type of the
/// log-sum-exp of a result of shape `shape`.
std::string rowsType(llvm::ArrayRef<int64_t> shape) {
  return type(shape.drop_back());
}

/// @m's body: parameters q, k, v and `%y, %lse = kiln.attention`.
std::string attentionBody(llvm::ArrayRef<int64_t> q, llvm::ArrayRef<int64_t> k,
                          llvm::ArrayRef<int64_t> v,
                          llvm::ArrayRef<int64_t> result, bool causal,
                          double scale) {
  return llvm::formatv(R"mlir(
  %q = kiln.param "q" : {0} init #kiln.init<zeros>
  %k = kiln.param "k" : {1} init #kiln.init<zeros>
  %v = kiln.param "v" : {2} init #kiln.init<zeros>
  %y, %lse = kiln.attention %q, %k, %v {4}scale {5:e} : ({0}, {1}, {2}) -> ({3}, {6}))mlir",
                       type(q), type(k), type(v), type(result),
                       causal ? "causal " : "", scale, rowsType(result))
      .str();
}

struct Shapes {
  const char *name;
  std::vector<int64_t> q, k, v, result;
  bool causal;
  double scale;
};

const Shapes kShapes[] = {
    {"plain", {2, 3, 4}, {2, 3, 4}, {2, 3, 4}, {2, 3, 4}, false, 0.5},
    {"causal_heads",
     {2, 2, 4, 3},
     {2, 2, 4, 3},
     {2, 2, 4, 3},
     {2, 2, 4, 3},
     true,
     0.7},
    // Top-left aligned: query i sees keys 0..i of 5.
    {"causal_more_keys", {3, 4}, {5, 4}, {5, 2}, {3, 2}, true, 0.6},
    {"causal_fewer_keys", {4, 3}, {2, 3}, {2, 3}, {4, 3}, true, 1.0},
    // One key/value set shared by two batch entries.
    {"broadcast_batch", {2, 3, 4}, {1, 3, 4}, {3, 2}, {2, 3, 2}, true, 0.5},
};

} // namespace

std::vector<GradientCase> kiln::numerics::attentionCases() {
  std::vector<GradientCase> cases;
  for (const Shapes &s : kShapes)
    cases.push_back(
        {.name = std::string("attention_") + s.name,
         .op = "kiln.attention",
         .ir = weightedSumModel(s.result, attentionBody(s.q, s.k, s.v, s.result,
                                                        s.causal, s.scale))});
  return cases;
}

namespace {

/// Random q, k, v of `s`, N(0, 4).
std::vector<reference::Tensor> randomOperands(const Shapes &s) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<reference::Tensor> operands;
  for (const std::vector<int64_t> &shape : {s.q, s.k, s.v}) {
    reference::Tensor t(reference::ElementType::f64, shape);
    for (double &x : t.data)
      x = 2.0 * normal(rng);
    operands.push_back(std::move(t));
  }
  return operands;
}

class AttentionLogSumExp : public ::testing::TestWithParam<Shapes> {};

// lse_i = log(sum_j exp(scale q_i . k_j)) over the keys row i sees, and the
// output is exp(scores - lse) @ v: computed here from scratch for the
// cases without batch dimensions (the gradient cases cover batching),
// within 1e-12.
TEST_P(AttentionLogSumExp, IsTheLogOfTheSoftmaxNormalizer) {
  const Shapes &s = GetParam();
  std::vector<reference::Tensor> x = randomOperands(s);
  auto results = reference::attention(x[0], x[1], x[2], s.causal, s.scale);
  ASSERT_TRUE(bool(results)) << llvm::toString(results.takeError());
  ASSERT_EQ(results->size(), 2u);
  const reference::Tensor &y = (*results)[0], &lse = (*results)[1];
  int64_t tq = s.q[0], tk = s.k[0], d = s.q[1], dv = s.v[1];
  ASSERT_EQ(lse.shape, std::vector<int64_t>{tq});
  for (int64_t i = 0; i < tq; ++i) {
    int64_t seen = s.causal ? std::min(i + 1, tk) : tk;
    std::vector<double> scores(seen);
    double sum = 0;
    for (int64_t j = 0; j < seen; ++j) {
      double dot = 0;
      for (int64_t c = 0; c < d; ++c)
        dot += x[0].data[i * d + c] * x[1].data[j * d + c];
      scores[j] = s.scale * dot;
      sum += std::exp(scores[j]);
    }
    EXPECT_NEAR(lse.data[i], std::log(sum), 1e-12) << "row " << i;
    for (int64_t e = 0; e < dv; ++e) {
      double want = 0;
      for (int64_t j = 0; j < seen; ++j)
        want += std::exp(scores[j] - lse.data[i]) * x[2].data[j * dv + e];
      EXPECT_NEAR(y.data[i * dv + e], want, 1e-12) << "row " << i;
    }
  }
}

/// The cases without batch dimensions.
std::vector<Shapes> unbatchedShapes() {
  std::vector<Shapes> shapes;
  for (const Shapes &s : kShapes)
    if (s.q.size() == 2 && s.k.size() == 2 && s.v.size() == 2)
      shapes.push_back(s);
  return shapes;
}

INSTANTIATE_TEST_SUITE_P(Primitive, AttentionLogSumExp,
                         ::testing::ValuesIn(unbatchedShapes()),
                         [](const ::testing::TestParamInfo<Shapes> &info) {
                           return std::string(info.param.name);
                         });

// The log-sum-exp is saved for the backward pass, not differentiated: a
// loss that reads it fails autodiff with an error at the attention op.
TEST(Attention, LossThroughTheLogSumExpIsALocatedError) {
  std::string ir = "func.func @m() -> tensor<f64> attributes {kiln.model} {" +
                   attentionBody({3, 2}, {3, 2}, {3, 2}, {3, 2}, true, 1.0) +
                   R"mlir(
  %l = kiln.reduce_sum %lse [] : (tensor<3xf64>) -> tensor<f64>
  return %l : tensor<f64>
}
)mlir";
  mlir::MLIRContext context;
  loadDialects(context);
  std::vector<std::pair<unsigned, std::string>> errors;
  mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &d) {
    unsigned line = 0;
    if (auto loc = llvm::dyn_cast<mlir::FileLineColLoc>(d.getLocation()))
      line = loc.getLine();
    errors.emplace_back(line, d.str());
    return mlir::success();
  });
  auto module = mlir::parseSourceString<mlir::ModuleOp>(
      ir, mlir::ParserConfig(&context), "lse.mlir");
  ASSERT_TRUE(module) << ir;
  mlir::PassManager pm(&context);
  pm.addPass(createKilnAutodiff());
  EXPECT_TRUE(mlir::failed(pm.run(*module)));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].first, 5u) << "the error is not at the attention op";
  EXPECT_EQ(errors[0].second,
            "'kiln.attention' result #1 has no gradient rule, so the loss "
            "cannot be differentiated through it");
}

// A causal row only mixes the values of the keys it sees: with one-hot
// values, query 0 returns value 0 exactly, whatever the scores.
TEST(Attention, CausalFirstQuerySeesOnlyTheFirstKey) {
  reference::Tensor q(reference::ElementType::f64, {3, 2}, 1.0);
  reference::Tensor k(reference::ElementType::f64, {3, 2},
                      {5.0, -1.0, 9.0, 2.0, -3.0, 4.0});
  reference::Tensor v(reference::ElementType::f64, {3, 3},
                      {1, 0, 0, 0, 1, 0, 0, 0, 1});
  auto results = reference::attention(q, k, v, /*causal=*/true, /*scale=*/1.0);
  ASSERT_TRUE(bool(results));
  const reference::Tensor *y = &results->front();
  EXPECT_EQ(y->data[0], 1.0);
  EXPECT_EQ(y->data[1], 0.0);
  EXPECT_EQ(y->data[2], 0.0);
  // Query 1 mixes keys 0 and 1 only.
  EXPECT_EQ(y->data[5], 0.0);
  EXPECT_NEAR(y->data[3] + y->data[4], 1.0, 1e-15);
}

TEST(Iota, HoldsTheIndexAlongItsDimension) {
  reference::Tensor rows = reference::iota({2, 3}, 0);
  reference::Tensor cols = reference::iota({2, 3}, 1);
  EXPECT_EQ(rows.type, reference::ElementType::i32);
  EXPECT_EQ(rows.data, (std::vector<double>{0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(cols.data, (std::vector<double>{0, 1, 2, 0, 1, 2}));
}

} // namespace
