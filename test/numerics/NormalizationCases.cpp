//===- NormalizationCases.cpp - gradient cases of softmax, losses, norms --===//
//
// softmax and log_softmax along first, middle, last and size-1 axes;
// cross_entropy with constant labels; layer_norm; and a small MLP that
// chains several rules.
//
//===----------------------------------------------------------------------===//

#include "test/numerics/GradientCheck.h"

namespace kiln::numerics {

std::vector<GradientCase> normalizationCases() {
  return {
      {.name = "softmax_last_axis",
       .op = "kiln.softmax",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.softmax %x axis -1 : tensor<3x4xf64>)mlir")},
      {.name = "softmax_first_axis",
       .op = "kiln.softmax",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.softmax %x axis 0 : tensor<3x4xf64>)mlir")},
      {.name = "softmax_middle_axis",
       .op = "kiln.softmax",
       .ir = weightedSumModel({2, 3, 4}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %y = kiln.softmax %x axis 1 : tensor<2x3x4xf64>)mlir")},
      // Along a size-1 axis softmax is constantly 1: a zero gradient.
      {.name = "softmax_size_one_axis",
       .op = "kiln.softmax",
       .ir = weightedSumModel({3, 1}, R"mlir(
  %x = kiln.param "x" : tensor<3x1xf64> init #kiln.init<zeros>
  %y = kiln.softmax %x axis 1 : tensor<3x1xf64>)mlir")},
      {.name = "log_softmax_last_axis",
       .op = "kiln.log_softmax",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.log_softmax %x axis 1 : tensor<3x4xf64>)mlir")},
      {.name = "log_softmax_first_axis",
       .op = "kiln.log_softmax",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.log_softmax %x axis 0 : tensor<3x4xf64>)mlir")},
      {.name = "log_softmax_middle_axis",
       .op = "kiln.log_softmax",
       .ir = weightedSumModel({2, 3, 4}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %y = kiln.log_softmax %x axis -2 : tensor<2x3x4xf64>)mlir")},

      // cross_entropy: constant labels, a rank-0 result.
      {.name = "cross_entropy_rows",
       .op = "kiln.cross_entropy",
       .ir = weightedSumModel({}, R"mlir(
  %x = kiln.param "x" : tensor<4x5xf64> init #kiln.init<zeros>
  %labels = kiln.constant dense<[0, 3, 4, 1]> : tensor<4xi32>
  %y = kiln.cross_entropy %x, %labels : (tensor<4x5xf64>, tensor<4xi32>) -> tensor<f64>)mlir")},
      {.name = "cross_entropy_rank3_i64_labels",
       .op = "kiln.cross_entropy",
       .ir = weightedSumModel({}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %labels = kiln.constant dense<[[0, 3, 1], [2, 2, 0]]> : tensor<2x3xi64>
  %y = kiln.cross_entropy %x, %labels : (tensor<2x3x4xf64>, tensor<2x3xi64>) -> tensor<f64>)mlir")},

      // layer_norm: input, weight and bias are all parameters.
      {.name = "layer_norm_rows",
       .op = "kiln.layer_norm",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %g = kiln.param "g" : tensor<4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<4xf64> init #kiln.init<zeros>
  %y = kiln.layer_norm %x, %g, %b eps 1.000000e-05 : (tensor<3x4xf64>, tensor<4xf64>, tensor<4xf64>) -> tensor<3x4xf64>)mlir")},
      {.name = "layer_norm_rank3_large_epsilon",
       .op = "kiln.layer_norm",
       .ir = weightedSumModel({2, 3, 4}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %g = kiln.param "g" : tensor<4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<4xf64> init #kiln.init<zeros>
  %y = kiln.layer_norm %x, %g, %b eps 5.000000e-01 : (tensor<2x3x4xf64>, tensor<4xf64>, tensor<4xf64>) -> tensor<2x3x4xf64>)mlir")},

      // Rules composed: linear, relu, linear, cross-entropy, with the loss
      // reused twice.
      {.name = "mlp_chain",
       .op = "kiln.matmul",
       .ir = weightedSumModel({}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %w1 = kiln.param "w1" : tensor<5x4xf64> init #kiln.init<zeros>
  %b1 = kiln.param "b1" : tensor<5xf64> init #kiln.init<zeros>
  %w2 = kiln.param "w2" : tensor<5x2xf64> init #kiln.init<zeros>
  %h = kiln.matmul %x, %w1 transpose_rhs : (tensor<3x4xf64>, tensor<5x4xf64>) -> tensor<3x5xf64>
  %hb = kiln.add %h, %b1 : (tensor<3x5xf64>, tensor<5xf64>) -> tensor<3x5xf64>
  %r = kiln.relu %hb : tensor<3x5xf64>
  %o = kiln.matmul %r, %w2 : (tensor<3x5xf64>, tensor<5x2xf64>) -> tensor<3x2xf64>
  %labels = kiln.constant dense<[1, 0, 1]> : tensor<3xi32>
  %ce = kiln.cross_entropy %o, %labels : (tensor<3x2xf64>, tensor<3xi32>) -> tensor<f64>
  %y = kiln.mul %ce, %ce : (tensor<f64>, tensor<f64>) -> tensor<f64>)mlir")},
  };
}

} // namespace kiln::numerics
