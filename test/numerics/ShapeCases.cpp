//===- ShapeCases.cpp - gradient cases of matmul, layout and reductions ---===//
//
// matmul in every transpose mode and with broadcast batch dimensions;
// transpose, reshape and broadcast; reductions over several, negative and
// size-1 axes with and without keepdims; count.
//
//===----------------------------------------------------------------------===//

#include "test/numerics/GradientCheck.h"

namespace kiln::numerics {

std::vector<GradientCase> shapeCases() {
  return {
      {.name = "matmul_plain",
       .op = "kiln.matmul",
       .ir = weightedSumModel({3, 5}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<4x5xf64> init #kiln.init<zeros>
  %y = kiln.matmul %a, %b : (tensor<3x4xf64>, tensor<4x5xf64>) -> tensor<3x5xf64>)mlir")},
      {.name = "matmul_transpose_lhs",
       .op = "kiln.matmul",
       .ir = weightedSumModel({3, 5}, R"mlir(
  %a = kiln.param "a" : tensor<4x3xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<4x5xf64> init #kiln.init<zeros>
  %y = kiln.matmul %a, %b transpose_lhs : (tensor<4x3xf64>, tensor<4x5xf64>) -> tensor<3x5xf64>)mlir")},
      {.name = "matmul_transpose_rhs",
       .op = "kiln.matmul",
       .ir = weightedSumModel({3, 5}, R"mlir(
  %a = kiln.param "a" : tensor<3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<5x4xf64> init #kiln.init<zeros>
  %y = kiln.matmul %a, %b transpose_rhs : (tensor<3x4xf64>, tensor<5x4xf64>) -> tensor<3x5xf64>)mlir")},
      {.name = "matmul_transpose_both",
       .op = "kiln.matmul",
       .ir = weightedSumModel({3, 5}, R"mlir(
  %a = kiln.param "a" : tensor<4x3xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<5x4xf64> init #kiln.init<zeros>
  %y = kiln.matmul %a, %b transpose_lhs transpose_rhs : (tensor<4x3xf64>, tensor<5x4xf64>) -> tensor<3x5xf64>)mlir")},
      {.name = "matmul_size_one",
       .op = "kiln.matmul",
       .ir = weightedSumModel({1, 1}, R"mlir(
  %a = kiln.param "a" : tensor<1x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<4x1xf64> init #kiln.init<zeros>
  %y = kiln.matmul %a, %b : (tensor<1x4xf64>, tensor<4x1xf64>) -> tensor<1x1xf64>)mlir")},
      {.name = "matmul_batched",
       .op = "kiln.matmul",
       .ir = weightedSumModel({2, 3, 5}, R"mlir(
  %a = kiln.param "a" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<2x4x5xf64> init #kiln.init<zeros>
  %y = kiln.matmul %a, %b : (tensor<2x3x4xf64>, tensor<2x4x5xf64>) -> tensor<2x3x5xf64>)mlir")},
      // A rank-2 rhs shared by every batch: its gradient sums the batches.
      {.name = "matmul_batch_broadcast_rhs",
       .op = "kiln.matmul",
       .ir = weightedSumModel({2, 3, 5}, R"mlir(
  %a = kiln.param "a" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<4x5xf64> init #kiln.init<zeros>
  %y = kiln.matmul %a, %b : (tensor<2x3x4xf64>, tensor<4x5xf64>) -> tensor<2x3x5xf64>)mlir")},
      // The same through two batch dimensions, rhs transposed (a linear
      // layer over a batch of sequences).
      {.name = "matmul_batch_broadcast_rhs_transposed",
       .op = "kiln.matmul",
       .ir = weightedSumModel({2, 2, 3, 5}, R"mlir(
  %a = kiln.param "a" : tensor<2x2x3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<5x4xf64> init #kiln.init<zeros>
  %y = kiln.matmul %a, %b transpose_rhs : (tensor<2x2x3x4xf64>, tensor<5x4xf64>) -> tensor<2x2x3x5xf64>)mlir")},
      {.name = "matmul_batch_broadcast_lhs_transposed",
       .op = "kiln.matmul",
       .ir = weightedSumModel({2, 3, 5}, R"mlir(
  %a = kiln.param "a" : tensor<4x3xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<2x4x5xf64> init #kiln.init<zeros>
  %y = kiln.matmul %a, %b transpose_lhs : (tensor<4x3xf64>, tensor<2x4x5xf64>) -> tensor<2x3x5xf64>)mlir")},
      // Batch dimensions [2, 1] and [3] broadcast to [2, 3] from both sides.
      {.name = "matmul_batch_broadcast_both",
       .op = "kiln.matmul",
       .ir = weightedSumModel({2, 3, 3, 2}, R"mlir(
  %a = kiln.param "a" : tensor<2x1x3x4xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<3x4x2xf64> init #kiln.init<zeros>
  %y = kiln.matmul %a, %b : (tensor<2x1x3x4xf64>, tensor<3x4x2xf64>) -> tensor<2x3x3x2xf64>)mlir")},
      {.name = "matmul_batch_size_one_transposed",
       .op = "kiln.matmul",
       .ir = weightedSumModel({2, 3, 5}, R"mlir(
  %a = kiln.param "a" : tensor<2x4x3xf64> init #kiln.init<zeros>
  %b = kiln.param "b" : tensor<1x5x4xf64> init #kiln.init<zeros>
  %y = kiln.matmul %a, %b transpose_lhs transpose_rhs : (tensor<2x4x3xf64>, tensor<1x5x4xf64>) -> tensor<2x3x5xf64>)mlir")},

      {.name = "transpose_2d",
       .op = "kiln.transpose",
       .ir = weightedSumModel({4, 3}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.transpose %x [1, 0] : (tensor<3x4xf64>) -> tensor<4x3xf64>)mlir")},
      {.name = "transpose_rotate_left",
       .op = "kiln.transpose",
       .ir = weightedSumModel({4, 2, 3}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %y = kiln.transpose %x [2, 0, 1] : (tensor<2x3x4xf64>) -> tensor<4x2x3xf64>)mlir")},
      {.name = "transpose_rotate_right",
       .op = "kiln.transpose",
       .ir = weightedSumModel({3, 4, 2}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %y = kiln.transpose %x [1, 2, 0] : (tensor<2x3x4xf64>) -> tensor<3x4x2xf64>)mlir")},
      {.name = "reshape_regroup",
       .op = "kiln.reshape",
       .ir = weightedSumModel({2, 6}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.reshape %x [2, 6] : (tensor<3x4xf64>) -> tensor<2x6xf64>)mlir")},
      {.name = "reshape_inferred_size",
       .op = "kiln.reshape",
       .ir = weightedSumModel({6, 4}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %y = kiln.reshape %x [-1, 4] : (tensor<2x3x4xf64>) -> tensor<6x4xf64>)mlir")},
      {.name = "reshape_flatten",
       .op = "kiln.reshape",
       .ir = weightedSumModel({12}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.reshape %x [12] : (tensor<3x4xf64>) -> tensor<12xf64>)mlir")},
      {.name = "reshape_insert_size_one",
       .op = "kiln.reshape",
       .ir = weightedSumModel({4, 1, 6}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %y = kiln.reshape %x [4, 1, 6] : (tensor<2x3x4xf64>) -> tensor<4x1x6xf64>)mlir")},
      {.name = "broadcast_row",
       .op = "kiln.broadcast",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %x = kiln.param "x" : tensor<4xf64> init #kiln.init<zeros>
  %like = kiln.constant dense<0.000000e+00> : tensor<3x4xf64>
  %y = kiln.broadcast %x, %like : (tensor<4xf64>, tensor<3x4xf64>) -> tensor<3x4xf64>)mlir")},
      {.name = "broadcast_size_one",
       .op = "kiln.broadcast",
       .ir = weightedSumModel({3, 4}, R"mlir(
  %x = kiln.param "x" : tensor<3x1xf64> init #kiln.init<zeros>
  %like = kiln.constant dense<0.000000e+00> : tensor<3x4xf64>
  %y = kiln.broadcast %x, %like : (tensor<3x1xf64>, tensor<3x4xf64>) -> tensor<3x4xf64>)mlir")},
      {.name = "broadcast_scalar",
       .op = "kiln.broadcast",
       .ir = weightedSumModel({2, 3}, R"mlir(
  %x = kiln.param "x" : tensor<f64> init #kiln.init<zeros>
  %like = kiln.constant dense<0.000000e+00> : tensor<2x3xf64>
  %y = kiln.broadcast %x, %like : (tensor<f64>, tensor<2x3xf64>) -> tensor<2x3xf64>)mlir")},
      // Only the shape of `like` matters: a parameter there gets zero.
      {.name = "broadcast_rank3_like_param",
       .op = "kiln.broadcast",
       .ir = weightedSumModel({2, 3, 4}, R"mlir(
  %x = kiln.param "x" : tensor<3x1xf64> init #kiln.init<zeros>
  %like = kiln.param "like" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %y = kiln.broadcast %x, %like : (tensor<3x1xf64>, tensor<2x3x4xf64>) -> tensor<2x3x4xf64>)mlir")},

      {.name = "reduce_sum_all",
       .op = "kiln.reduce_sum",
       .ir = weightedSumModel({}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %y = kiln.reduce_sum %x [] : (tensor<2x3x4xf64>) -> tensor<f64>)mlir")},
      {.name = "reduce_sum_two_axes",
       .op = "kiln.reduce_sum",
       .ir = weightedSumModel({3}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %y = kiln.reduce_sum %x [0, 2] : (tensor<2x3x4xf64>) -> tensor<3xf64>)mlir")},
      {.name = "reduce_sum_two_axes_keepdims",
       .op = "kiln.reduce_sum",
       .ir = weightedSumModel({1, 3, 1}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %y = kiln.reduce_sum %x [0, 2] keepdims : (tensor<2x3x4xf64>) -> tensor<1x3x1xf64>)mlir")},
      {.name = "reduce_sum_negative_axis",
       .op = "kiln.reduce_sum",
       .ir = weightedSumModel({3}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.reduce_sum %x [-1] : (tensor<3x4xf64>) -> tensor<3xf64>)mlir")},
      {.name = "reduce_sum_negative_axis_keepdims",
       .op = "kiln.reduce_sum",
       .ir = weightedSumModel({2, 1, 4}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %y = kiln.reduce_sum %x [-2] keepdims : (tensor<2x3x4xf64>) -> tensor<2x1x4xf64>)mlir")},
      {.name = "reduce_sum_size_one_axis",
       .op = "kiln.reduce_sum",
       .ir = weightedSumModel({3}, R"mlir(
  %x = kiln.param "x" : tensor<3x1xf64> init #kiln.init<zeros>
  %y = kiln.reduce_sum %x [1] : (tensor<3x1xf64>) -> tensor<3xf64>)mlir")},
      {.name = "reduce_mean_all",
       .op = "kiln.reduce_mean",
       .ir = weightedSumModel({}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.reduce_mean %x [] : (tensor<3x4xf64>) -> tensor<f64>)mlir")},
      {.name = "reduce_mean_two_axes_keepdims",
       .op = "kiln.reduce_mean",
       .ir = weightedSumModel({1, 3, 1}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %y = kiln.reduce_mean %x [0, 2] keepdims : (tensor<2x3x4xf64>) -> tensor<1x3x1xf64>)mlir")},
      {.name = "reduce_mean_negative_axis",
       .op = "kiln.reduce_mean",
       .ir = weightedSumModel({3}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.reduce_mean %x [-1] : (tensor<3x4xf64>) -> tensor<3xf64>)mlir")},
      {.name = "reduce_mean_mixed_sign_axes",
       .op = "kiln.reduce_mean",
       .ir = weightedSumModel({2}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %y = kiln.reduce_mean %x [1, -1] : (tensor<2x3x4xf64>) -> tensor<2xf64>)mlir")},
      // reduce_max: all values distinct, so each maximum is unique.
      {.name = "reduce_max_rows",
       .op = "kiln.reduce_max",
       .ir = weightedSumModel({3}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.reduce_max %x [1] : (tensor<3x4xf64>) -> tensor<3xf64>)mlir")},
      {.name = "reduce_max_negative_axis_keepdims",
       .op = "kiln.reduce_max",
       .ir = weightedSumModel({2, 3, 1}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %y = kiln.reduce_max %x [-1] keepdims : (tensor<2x3x4xf64>) -> tensor<2x3x1xf64>)mlir")},
      {.name = "reduce_max_all",
       .op = "kiln.reduce_max",
       .ir = weightedSumModel({}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.reduce_max %x [] : (tensor<3x4xf64>) -> tensor<f64>)mlir")},
      {.name = "reduce_max_two_axes",
       .op = "kiln.reduce_max",
       .ir = weightedSumModel({3}, R"mlir(
  %x = kiln.param "x" : tensor<2x3x4xf64> init #kiln.init<zeros>
  %y = kiln.reduce_max %x [0, 2] : (tensor<2x3x4xf64>) -> tensor<3xf64>)mlir")},

      // count reads only its operand's shape: no gradient flows through it,
      // alone or scaling a value that does carry one.
      {.name = "count_alone",
       .op = "kiln.count",
       .ir = weightedSumModel({}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %y = kiln.count %x [1] : (tensor<3x4xf64>) -> tensor<f64>)mlir"),
       .expect = Expect::Zero},
      {.name = "count_scales_sum",
       .op = "kiln.count",
       .ir = weightedSumModel({3}, R"mlir(
  %x = kiln.param "x" : tensor<3x4xf64> init #kiln.init<zeros>
  %s = kiln.reduce_sum %x [-1] : (tensor<3x4xf64>) -> tensor<3xf64>
  %n = kiln.count %x [-1] : (tensor<3x4xf64>) -> tensor<f64>
  %y = kiln.mul %s, %n : (tensor<3xf64>, tensor<f64>) -> tensor<3xf64>)mlir")},
  };
}

} // namespace kiln::numerics
