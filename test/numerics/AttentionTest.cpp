//===- AttentionTest.cpp - kiln.attention and kiln.iota against oracles ---===//
//
// kiln.attention is a composite: the reference executor runs it directly (a
// plain loop per query row), the compiler through its decomposition. So:
//
//   1. its gradient, built by autodiff from the decomposition, matches
//      central differences of the direct computation (causal and not,
//      Tq != Tk, Dv != D, broadcast batch dimensions);
//   2. the decomposition computes what the direct computation does;
//   3. kiln.iota holds each element's index along its dimension.
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

/// @m's body: parameters q, k, v and `%y = kiln.attention`.
std::string attentionBody(llvm::ArrayRef<int64_t> q, llvm::ArrayRef<int64_t> k,
                          llvm::ArrayRef<int64_t> v,
                          llvm::ArrayRef<int64_t> result, bool causal,
                          double scale) {
  return llvm::formatv(R"mlir(
  %q = kiln.param "q" : {0} init #kiln.init<zeros>
  %k = kiln.param "k" : {1} init #kiln.init<zeros>
  %v = kiln.param "v" : {2} init #kiln.init<zeros>
  %y = kiln.attention %q, %k, %v {4}scale {5:e} : ({0}, {1}, {2}) -> {3})mlir",
                       type(q), type(k), type(v), type(result),
                       causal ? "causal " : "", scale)
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

std::vector<GradientCase> attentionCases() {
  std::vector<GradientCase> cases;
  for (const Shapes &s : kShapes)
    cases.push_back(
        {.name = std::string("attention_") + s.name,
         .op = "kiln.attention",
         .ir = weightedSumModel(s.result, attentionBody(s.q, s.k, s.v, s.result,
                                                        s.causal, s.scale))});
  return cases;
}

class AttentionGradient : public ::testing::TestWithParam<GradientCase> {};

TEST_P(AttentionGradient, MatchesFiniteDifferences) {
  EXPECT_TRUE(checkGradients(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(
    Composite, AttentionGradient, ::testing::ValuesIn(attentionCases()),
    [](const ::testing::TestParamInfo<GradientCase> &info) {
      return info.param.name;
    });

class AttentionDecomposition : public ::testing::TestWithParam<Shapes> {};

// The decomposed function (matmul, scale, iota mask, softmax, matmul) run
// op by op equals the direct computation, within atol 1e-12 + rtol 1e-10.
TEST_P(AttentionDecomposition, MatchesTheDirectComputation) {
  const Shapes &s = GetParam();
  std::string ir = "func.func @m() -> " + type(s.result) +
                   " attributes {kiln.model} {" +
                   attentionBody(s.q, s.k, s.v, s.result, s.causal, s.scale) +
                   "\n  return %y : " + type(s.result) + "\n}\n";
  mlir::MLIRContext context;
  loadDialects(context);
  auto module = mlir::parseSourceString<mlir::ModuleOp>(
      ir, mlir::ParserConfig(&context), "attention.mlir");
  ASSERT_TRUE(module) << ir;

  reference::Executor executor;
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (auto [name, shape] : {std::pair{"q", s.q}, {"k", s.k}, {"v", s.v}}) {
    reference::Tensor t(reference::ElementType::f64, shape);
    for (double &x : t.data)
      x = 2.0 * normal(rng);
    executor.setParameter(name, t);
  }
  auto m = [&] { return module->lookupSymbol<mlir::func::FuncOp>("m"); };
  auto direct = executor.run(m(), {});
  ASSERT_TRUE(mlir::succeeded(direct));

  mlir::PassManager pm(&context);
  pm.addNestedPass<mlir::func::FuncOp>(createKilnDecompose());
  ASSERT_TRUE(mlir::succeeded(pm.run(*module)));
  bool decomposed = true;
  m().walk([&](AttentionOp) { decomposed = false; });
  ASSERT_TRUE(decomposed);
  auto viaPrimitives = executor.run(m(), {});
  ASSERT_TRUE(mlir::succeeded(viaPrimitives));

  const reference::Tensor &want = direct->front(),
                          &got = viaPrimitives->front();
  ASSERT_EQ(want.shape, got.shape);
  ASSERT_EQ(want.shape, s.result);
  for (int64_t i = 0; i < want.numel(); ++i)
    ASSERT_NEAR(got.data[i], want.data[i],
                1e-12 + 1e-10 * std::fabs(want.data[i]))
        << "element " << i;
}

INSTANTIATE_TEST_SUITE_P(Composite, AttentionDecomposition,
                         ::testing::ValuesIn(kShapes),
                         [](const ::testing::TestParamInfo<Shapes> &info) {
                           return std::string(info.param.name);
                         });

// A causal row only mixes the values of the keys it sees: with one-hot
// values, query 0 returns value 0 exactly, whatever the scores.
TEST(Attention, CausalFirstQuerySeesOnlyTheFirstKey) {
  reference::Tensor q(reference::ElementType::f64, {3, 2}, 1.0);
  reference::Tensor k(reference::ElementType::f64, {3, 2},
                      {5.0, -1.0, 9.0, 2.0, -3.0, 4.0});
  reference::Tensor v(reference::ElementType::f64, {3, 3},
                      {1, 0, 0, 0, 1, 0, 0, 0, 1});
  auto y = reference::attention(q, k, v, /*causal=*/true, /*scale=*/1.0);
  ASSERT_TRUE(bool(y));
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
