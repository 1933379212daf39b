//===- ConvPoolCases.cpp - gradient cases of conv2d, pooling, embedding ---===//
//
// conv2d with strides 1 and 2, padding 0 and 1, non-square kernels and
// several channels (input and weight are both parameters); max_pool2d with
// overlapping and padded windows (parameter values are distinct, so every
// window has one maximum); avg_pool2d with stride and padding; embedding
// with repeated and unused indices; and a small CNN chaining the rules.
//
//===----------------------------------------------------------------------===//

#include "test/numerics/GradientCheck.h"

namespace kiln::numerics {

std::vector<GradientCase> convPoolCases() {
  return {
      {.name = "conv2d_stride1_pad0_nonsquare",
       .op = "kiln.conv2d",
       .ir = weightedSumModel({2, 4, 4, 2}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x5x4xf64> init #kiln.init<zeros>
  %k = kiln.param "k" : tensor<4x3x2x3xf64> init #kiln.init<zeros>
  %y = kiln.conv2d %x, %k stride [1, 1] padding [0, 0] : (tensor<2x3x5x4xf64>, tensor<4x3x2x3xf64>) -> tensor<2x4x4x2xf64>)mlir")},
      {.name = "conv2d_stride1_pad1",
       .op = "kiln.conv2d",
       .ir = weightedSumModel({2, 3, 4, 4}, R"mlir(
  %x = kiln.param "x" : tensor<2x2x4x4xf64> init #kiln.init<zeros>
  %k = kiln.param "k" : tensor<3x2x3x3xf64> init #kiln.init<zeros>
  %y = kiln.conv2d %x, %k stride [1, 1] padding [1, 1] : (tensor<2x2x4x4xf64>, tensor<3x2x3x3xf64>) -> tensor<2x3x4x4xf64>)mlir")},
      {.name = "conv2d_stride2_pad1_nonsquare",
       .op = "kiln.conv2d",
       .ir = weightedSumModel({1, 3, 3, 3}, R"mlir(
  %x = kiln.param "x" : tensor<1x2x6x5xf64> init #kiln.init<zeros>
  %k = kiln.param "k" : tensor<3x2x3x2xf64> init #kiln.init<zeros>
  %y = kiln.conv2d %x, %k stride [2, 2] padding [1, 1] : (tensor<1x2x6x5xf64>, tensor<3x2x3x2xf64>) -> tensor<1x3x3x3xf64>)mlir")},
      // The last input row is in no window: its gradient is zero, and the
      // input size (7, not 6) comes from the input itself.
      {.name = "conv2d_stride2_pad0_uncovered_row",
       .op = "kiln.conv2d",
       .ir = weightedSumModel({2, 2, 3, 2}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x7x5xf64> init #kiln.init<zeros>
  %k = kiln.param "k" : tensor<2x3x2x2xf64> init #kiln.init<zeros>
  %y = kiln.conv2d %x, %k stride [2, 2] padding [0, 0] : (tensor<2x3x7x5xf64>, tensor<2x3x2x2xf64>) -> tensor<2x2x3x2xf64>)mlir")},
      {.name = "conv2d_mixed_stride_padding",
       .op = "kiln.conv2d",
       .ir = weightedSumModel({2, 3, 4, 3}, R"mlir(
  %x = kiln.param "x" : tensor<2x2x4x5xf64> init #kiln.init<zeros>
  %k = kiln.param "k" : tensor<3x2x3x1xf64> init #kiln.init<zeros>
  %y = kiln.conv2d %x, %k stride [1, 2] padding [1, 0] : (tensor<2x2x4x5xf64>, tensor<3x2x3x1xf64>) -> tensor<2x3x4x3xf64>)mlir")},

      {.name = "max_pool2d_2x2_stride2",
       .op = "kiln.max_pool2d",
       .ir = weightedSumModel({2, 3, 2, 3}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x4x6xf64> init #kiln.init<zeros>
  %y = kiln.max_pool2d %x kernel [2, 2] stride [2, 2] padding [0, 0] : (tensor<2x3x4x6xf64>) -> tensor<2x3x2x3xf64>)mlir")},
      // Overlapping windows: an element that is the maximum of several
      // windows gets the sum of their gradients.
      {.name = "max_pool2d_overlap_padding",
       .op = "kiln.max_pool2d",
       .ir = weightedSumModel({1, 2, 3, 3}, R"mlir(
  %x = kiln.param "x" : tensor<1x2x5x5xf64> init #kiln.init<zeros>
  %y = kiln.max_pool2d %x kernel [3, 3] stride [2, 2] padding [1, 1] : (tensor<1x2x5x5xf64>) -> tensor<1x2x3x3xf64>)mlir")},
      {.name = "max_pool2d_nonsquare_stride_padding",
       .op = "kiln.max_pool2d",
       .ir = weightedSumModel({1, 2, 5, 3}, R"mlir(
  %x = kiln.param "x" : tensor<1x2x4x5xf64> init #kiln.init<zeros>
  %y = kiln.max_pool2d %x kernel [2, 3] stride [1, 2] padding [1, 1] : (tensor<1x2x4x5xf64>) -> tensor<1x2x5x3xf64>)mlir")},

      {.name = "avg_pool2d_2x2_stride2",
       .op = "kiln.avg_pool2d",
       .ir = weightedSumModel({2, 2, 2, 2}, R"mlir(
  %x = kiln.param "x" : tensor<2x2x4x4xf64> init #kiln.init<zeros>
  %y = kiln.avg_pool2d %x kernel [2, 2] stride [2, 2] padding [0, 0] : (tensor<2x2x4x4xf64>) -> tensor<2x2x2x2xf64>)mlir")},
      // Padding counts in the divisor: border elements get g / 6 per window.
      {.name = "avg_pool2d_nonsquare_stride_padding",
       .op = "kiln.avg_pool2d",
       .ir = weightedSumModel({1, 3, 3, 7}, R"mlir(
  %x = kiln.param "x" : tensor<1x3x5x6xf64> init #kiln.init<zeros>
  %y = kiln.avg_pool2d %x kernel [3, 2] stride [2, 1] padding [1, 1] : (tensor<1x3x5x6xf64>) -> tensor<1x3x3x7xf64>)mlir")},

      // Rows 1 and 3 are looked up several times (their gradients add up),
      // rows 2 and 4 never (zero gradient).
      {.name = "embedding_repeated_indices",
       .op = "kiln.embedding",
       .ir = weightedSumModel({3, 2, 3}, R"mlir(
  %t = kiln.param "t" : tensor<5x3xf64> init #kiln.init<zeros>
  %i = kiln.constant dense<[[1, 3], [1, 0], [3, 3]]> : tensor<3x2xi32>
  %y = kiln.embedding %t, %i : (tensor<5x3xf64>, tensor<3x2xi32>) -> tensor<3x2x3xf64>)mlir")},
      {.name = "embedding_i64_indices",
       .op = "kiln.embedding",
       .ir = weightedSumModel({4, 2}, R"mlir(
  %t = kiln.param "t" : tensor<6x2xf64> init #kiln.init<zeros>
  %i = kiln.constant dense<[4, 4, 2, 0]> : tensor<4xi64>
  %y = kiln.embedding %t, %i : (tensor<6x2xf64>, tensor<4xi64>) -> tensor<4x2xf64>)mlir")},

      // Rules composed: conv2d, bias, relu, max_pool2d, flatten, a linear
      // layer and cross-entropy, as in a small CNN.
      {.name = "cnn_chain",
       .op = "kiln.conv2d",
       .ir = weightedSumModel({}, R"mlir(
  %x = kiln.param "x" : tensor<2x1x4x4xf64> init #kiln.init<zeros>
  %k = kiln.param "k" : tensor<2x1x3x3xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<2x1x1xf64> init #kiln.init<zeros>
  %v = kiln.param "v" : tensor<3x8xf64> init #kiln.init<zeros>
  %c = kiln.conv2d %x, %k stride [1, 1] padding [1, 1] : (tensor<2x1x4x4xf64>, tensor<2x1x3x3xf64>) -> tensor<2x2x4x4xf64>
  %cb = kiln.add %c, %b : (tensor<2x2x4x4xf64>, tensor<2x1x1xf64>) -> tensor<2x2x4x4xf64>
  %r = kiln.relu %cb : tensor<2x2x4x4xf64>
  %p = kiln.max_pool2d %r kernel [2, 2] stride [2, 2] padding [0, 0] : (tensor<2x2x4x4xf64>) -> tensor<2x2x2x2xf64>
  %f = kiln.reshape %p [2, 8] : (tensor<2x2x2x2xf64>) -> tensor<2x8xf64>
  %o = kiln.matmul %f, %v transpose_rhs : (tensor<2x8xf64>, tensor<3x8xf64>) -> tensor<2x3xf64>
  %labels = kiln.constant dense<[2, 0]> : tensor<2xi32>
  %y = kiln.cross_entropy %o, %labels : (tensor<2x3xf64>, tensor<2xi32>) -> tensor<f64>)mlir")},
  };
}

} // namespace kiln::numerics
