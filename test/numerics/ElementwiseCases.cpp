//===- ElementwiseCases.cpp - gradient cases of elementwise ops -----------===//
//
// Unary math, gelu, cast, dropout, the binary ops under every broadcasting
// shape rule, and select. Each body defines %y; weightedSumModel adds the
// loss.
//
//===----------------------------------------------------------------------===//

#include "test/numerics/GradientCheck.h"

namespace kiln::numerics {

namespace {

/// A case `%y = kiln.<op> %x : tensor<3x4xf64>` of a unary op.
GradientCase unary(llvm::StringRef op, std::vector<std::string> positive = {},
                   Expect expect = Expect::FiniteDifferences) {
  std::string body =
      "  %x = kiln.param \"x\" : tensor<3x4xf64> init #kiln.init<zeros>\n"
      "  %y = kiln." +
      op.str() + " %x : tensor<3x4xf64>";
  return {.name = op.str(),
          .op = "kiln." + op.str(),
          .ir = weightedSumModel({3, 4}, body),
          .positive = std::move(positive),
          .expect = expect};
}

} // namespace

std::vector<GradientCase> elementwiseCases() {
  return {
      // Unary: x of either sign (at least 0.1 from the kinks of relu and
      // abs), positive where the op needs it.
      unary("neg"),
      unary("abs"),
      unary("exp"),
      unary("log", {"x"}),
      unary("tanh"),
      unary("sigmoid"),
      unary("relu"),
      unary("sqrt", {"x"}),
      unary("rsqrt", {"x"}),
      unary("cos"),
      unary("sin"),
      // floor is constant almost everywhere: its rule gives no gradient.
      unary("floor", {}, Expect::Zero),
      {.name = "gelu_exact",
       .op = "kiln.gelu",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.gelu %x : tensor<3x4xf64>)mlir")},
      {.name = "gelu_tanh",
       .op = "kiln.gelu",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.gelu %x approximate tanh : tensor<3x4xf64>)mlir")},
      // A float-to-float cast passes the gradient through (f64 to f64: a
      // narrower type would round away the finite differences).
      {.name = "cast_f64",
       .op = "kiln.cast",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.cast %x : tensor<3x4xf64> to f64)mlir")},
      // The executor's seed is fixed, so @m and @m_grad draw one mask.
      {.name = "dropout",
       .op = "kiln.dropout",
       .ir = weightedSumModel({4, 6}, R"mlir(
  %x = kiln.param "x" : tensor<4x6xf64> init #kiln.init<zeros>
  %y = kiln.dropout %x rate 5.000000e-01 stream 3 : tensor<4x6xf64>)mlir")},

      // Binary ops: equal shapes, a row against a matrix, an outer
      // broadcast of two size-1 dimensions, a scalar, and rank-3.
      {.name = "add_same_shape",
       .op = "kiln.add",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.add %a, %b : (tensor<3x4xf64>, tensor<3x4xf64>) -> tensor<3x4xf64>)mlir")},
      {.name = "add_row",
       .op = "kiln.add",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<4xf64> init #kiln.init<zeros>
  %y = kiln.add %a, %b : (tensor<3x4xf64>, tensor<4xf64>) -> tensor<3x4xf64>)mlir")},
      {.name = "add_outer",
       .op = "kiln.add",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x1xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<1x4xf64> init #kiln.init<zeros>
  %y = kiln.add %a, %b : (tensor<3x1xf64>, tensor<1x4xf64>) -> tensor<3x4xf64>)mlir")},
      {.name = "add_scalar",
       .op = "kiln.add",
       .ir = weightedSumModel({2, 3}, R"mlir(
  %a = kiln.param "a" : tensor<f64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<2x3xf64> init #kiln.init<zeros>
  %y = kiln.add %a, %b : (tensor<f64>, tensor<2x3xf64>) -> tensor<2x3xf64>)mlir")},
      {.name = "add_rank3",
       .op = "kiln.add",
       .ir = weightedSumModel({2, 3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<2x1x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<3x1xf64> init #kiln.init<zeros>
  %y = kiln.add %a, %b : (tensor<2x1x4xf64>, tensor<3x1xf64>) -> tensor<2x3x4xf64>)mlir")},
      // One value used twice: autodiff sums the two gradients. A parameter
      // the loss does not use gets a zero gradient.
      {.name = "add_fan_out_and_unused_param",
       .op = "kiln.add",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %unused = kiln.param "unused" : tensor<2xf64> init #kiln.init<zeros>
  %y = kiln.add %a, %a : (tensor<3x4xf64>, tensor<3x4xf64>) -> tensor<3x4xf64>)mlir")},
      {.name = "sub_row",
       .op = "kiln.sub",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<4xf64> init #kiln.init<zeros>
  %y = kiln.sub %a, %b : (tensor<3x4xf64>, tensor<4xf64>) -> tensor<3x4xf64>)mlir")},
      {.name = "sub_scalar_lhs",
       .op = "kiln.sub",
       .ir = weightedSumModel({2, 3}, R"mlir(
  %a = kiln.param "a" : tensor<f64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<2x3xf64> init #kiln.init<zeros>
  %y = kiln.sub %a, %b : (tensor<f64>, tensor<2x3xf64>) -> tensor<2x3xf64>)mlir")},
      {.name = "sub_outer",
       .op = "kiln.sub",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x1xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<1x4xf64> init #kiln.init<zeros>
  %y = kiln.sub %a, %b : (tensor<3x1xf64>, tensor<1x4xf64>) -> tensor<3x4xf64>)mlir")},
      {.name = "mul_same_shape",
       .op = "kiln.mul",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.mul %a, %b : (tensor<3x4xf64>, tensor<3x4xf64>) -> tensor<3x4xf64>)mlir")},
      {.name = "mul_column",
       .op = "kiln.mul",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<3x1xf64> init #kiln.init<zeros>
  %y = kiln.mul %a, %b : (tensor<3x4xf64>, tensor<3x1xf64>) -> tensor<3x4xf64>)mlir")},
      {.name = "mul_scalar",
       .op = "kiln.mul",
       .ir = weightedSumModel({2, 3}, R"mlir(
  %a = kiln.param "a" : tensor<2x3xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<f64> init #kiln.init<zeros>
  %y = kiln.mul %a, %b : (tensor<2x3xf64>, tensor<f64>) -> tensor<2x3xf64>)mlir")},
      {.name = "mul_square",
       .op = "kiln.mul",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.mul %a, %a : (tensor<3x4xf64>, tensor<3x4xf64>) -> tensor<3x4xf64>)mlir")},
      {.name = "div_same_shape",
       .op = "kiln.div",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.div %a, %b : (tensor<3x4xf64>, tensor<3x4xf64>) -> tensor<3x4xf64>)mlir"),
       .positive = {"b"}},
      {.name = "div_row",
       .op = "kiln.div",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<4xf64> init #kiln.init<zeros>
  %y = kiln.div %a, %b : (tensor<3x4xf64>, tensor<4xf64>) -> tensor<3x4xf64>)mlir"),
       .positive = {"b"}},
      {.name = "div_outer",
       .op = "kiln.div",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<1x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<3x1xf64> init #kiln.init<zeros>
  %y = kiln.div %a, %b : (tensor<1x4xf64>, tensor<3x1xf64>) -> tensor<3x4xf64>)mlir"),
       .positive = {"b"}},
      {.name = "div_scalar_numerator",
       .op = "kiln.div",
       .ir = weightedSumModel({2, 3}, R"mlir(
  %a = kiln.param "a" : tensor<f64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<2x3xf64> init #kiln.init<zeros>
  %y = kiln.div %a, %b : (tensor<f64>, tensor<2x3xf64>) -> tensor<2x3xf64>)mlir"),
       .positive = {"b"}},
      // max and min: all parameter values are distinct, so no ties.
      {.name = "max_same_shape",
       .op = "kiln.max",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.max %a, %b : (tensor<3x4xf64>, tensor<3x4xf64>) -> tensor<3x4xf64>)mlir")},
      {.name = "max_row",
       .op = "kiln.max",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<4xf64> init #kiln.init<zeros>
  %y = kiln.max %a, %b : (tensor<3x4xf64>, tensor<4xf64>) -> tensor<3x4xf64>)mlir")},
      {.name = "max_scalar",
       .op = "kiln.max",
       .ir = weightedSumModel({2, 3}, R"mlir(
  %a = kiln.param "a" : tensor<2x3xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<f64> init #kiln.init<zeros>
  %y = kiln.max %a, %b : (tensor<2x3xf64>, tensor<f64>) -> tensor<2x3xf64>)mlir")},
      {.name = "min_same_shape",
       .op = "kiln.min",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.min %a, %b : (tensor<3x4xf64>, tensor<3x4xf64>) -> tensor<3x4xf64>)mlir")},
      {.name = "min_outer",
       .op = "kiln.min",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x1xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<1x4xf64> init #kiln.init<zeros>
  %y = kiln.min %a, %b : (tensor<3x1xf64>, tensor<1x4xf64>) -> tensor<3x4xf64>)mlir")},
      // pow: a positive base, exponents of either sign.
      {.name = "pow_same_shape",
       .op = "kiln.pow",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.pow %a, %b : (tensor<3x4xf64>, tensor<3x4xf64>) -> tensor<3x4xf64>)mlir"),
       .positive = {"a"}},
      {.name = "pow_row_exponent",
       .op = "kiln.pow",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<4xf64> init #kiln.init<zeros>
  %y = kiln.pow %a, %b : (tensor<3x4xf64>, tensor<4xf64>) -> tensor<3x4xf64>)mlir"),
       .positive = {"a"}},
      {.name = "pow_scalar_exponent",
       .op = "kiln.pow",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<f64> init #kiln.init<zeros>
  %y = kiln.pow %a, %b : (tensor<3x4xf64>, tensor<f64>) -> tensor<3x4xf64>)mlir"),
       .positive = {"a"}},

      // select: the condition comes from a cmp (it carries no gradient);
      // the branches broadcast.
      {.name = "select_same_shape",
       .op = "kiln.select",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<3x4xf64> init #kiln.init<zeros>
  %c = kiln.cmp gt, %a, %b : (tensor<3x4xf64>, tensor<3x4xf64>) -> tensor<3x4xi1>
  %y = kiln.select %c, %a, %b : (tensor<3x4xi1>, tensor<3x4xf64>, tensor<3x4xf64>) -> tensor<3x4xf64>)mlir")},
      {.name = "select_broadcast_branches",
       .op = "kiln.select",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x1xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<4xf64> init #kiln.init<zeros>
  %c = kiln.constant dense<[[true, false, false, true], [false, true, true, false], [true, true, false, false]]> : tensor<3x4xi1>
  %y = kiln.select %c, %a, %b : (tensor<3x4xi1>, tensor<3x1xf64>, tensor<4xf64>) -> tensor<3x4xf64>)mlir")},
      {.name = "select_scalar_false_value",
       .op = "kiln.select",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %s = kiln.param "s" : tensor<f64> init #kiln.init<zeros>
  %zero = kiln.constant dense<0.000000e+00> : tensor<f64>
  %c = kiln.cmp lt, %a, %zero : (tensor<3x4xf64>, tensor<f64>) -> tensor<3x4xi1>
  %y = kiln.select %c, %a, %s : (tensor<3x4xi1>, tensor<3x4xf64>, tensor<f64>) -> tensor<3x4xf64>)mlir")},
  };
}

} // namespace kiln::numerics
