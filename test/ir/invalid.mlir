// Every error that a kiln shape function, verifier or attribute parser can
// report, one case each, with its exact text. A shape function's error is
// followed by MLIR's generic "failed to infer returned types".
// RUN: kiln-opt %s -split-input-file -verify-diagnostics

// add: shapes that do not broadcast.
func.func @add_shapes_that_do_not_broadcast(%a: tensor<?x512xf32>, %b: tensor<10xf32>) {
  // expected-error@+2 {{'add' cannot broadcast shapes [?, 512] and [10]}}
  // expected-error@+1 {{'kiln.add' op failed to infer returned types}}
  %0 = kiln.add %a, %b : (tensor<?x512xf32>, tensor<10xf32>) -> tensor<?x512xf32>
  return
}

// -----

// mul: operands of different element types.
func.func @mul_operands_of_different_element_types(%a: tensor<4xf32>, %b: tensor<4xf64>) {
  // expected-error@+2 {{'mul' operands have different element types 'f32' and 'f64'}}
  // expected-error@+1 {{'kiln.mul' op failed to infer returned types}}
  %0 = kiln.mul %a, %b : (tensor<4xf32>, tensor<4xf64>) -> tensor<4xf32>
  return
}

// -----

// cmp: operands of different element types.
func.func @cmp_operands_of_different_element_types(%a: tensor<4xi32>, %b: tensor<4xi64>) {
  // expected-error@+2 {{'cmp' operands have different element types 'i32' and 'i64'}}
  // expected-error@+1 {{'kiln.cmp' op failed to infer returned types}}
  %0 = kiln.cmp eq, %a, %b : (tensor<4xi32>, tensor<4xi64>) -> tensor<4xi1>
  return
}

// -----

// cmp: shapes that do not broadcast.
func.func @cmp_shapes_that_do_not_broadcast(%a: tensor<3xi32>, %b: tensor<4xi32>) {
  // expected-error@+2 {{'cmp' cannot broadcast shapes [3] and [4]}}
  // expected-error@+1 {{'kiln.cmp' op failed to infer returned types}}
  %0 = kiln.cmp lt, %a, %b : (tensor<3xi32>, tensor<4xi32>) -> tensor<4xi1>
  return
}

// -----

// select: branches of different element types.
func.func @select_branches_of_different_element_types(%c: tensor<4xi1>, %a: tensor<4xf32>, %b: tensor<4xi32>) {
  // expected-error@+2 {{'select' branches have different element types 'f32' and 'i32'}}
  // expected-error@+1 {{'kiln.select' op failed to infer returned types}}
  %0 = kiln.select %c, %a, %b : (tensor<4xi1>, tensor<4xf32>, tensor<4xi32>) -> tensor<4xf32>
  return
}

// -----

// select: condition that does not broadcast with the branches.
func.func @select_condition_that_does_not_broadcast_with_the_branches(%c: tensor<3xi1>, %a: tensor<4xf32>, %b: tensor<f32>) {
  // expected-error@+2 {{'select' cannot broadcast shapes [3] and [4]}}
  // expected-error@+1 {{'kiln.select' op failed to infer returned types}}
  %0 = kiln.select %c, %a, %b : (tensor<3xi1>, tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  return
}

// -----

// cast: a target that is not an element type.
func.func @cast_a_target_that_is_not_an_element_type(%a: tensor<4xf32>) {
  // expected-error@+1 {{'cast' needs a scalar element type to convert to, got 'tensor<4xf64>'}}
  %0 = kiln.cast %a : tensor<4xf32> to tensor<4xf64>
  return
}

// -----

// matmul: operands of different element types.
func.func @matmul_operands_of_different_element_types(%a: tensor<2x3xf32>, %b: tensor<3x4xf64>) {
  // expected-error@+2 {{'matmul' operands have different element types 'f32' and 'f64'}}
  // expected-error@+1 {{'kiln.matmul' op failed to infer returned types}}
  %0 = kiln.matmul %a, %b : (tensor<2x3xf32>, tensor<3x4xf64>) -> tensor<2x4xf32>
  return
}

// -----

// matmul: a vector operand.
func.func @matmul_a_vector_operand(%a: tensor<3xf32>, %b: tensor<3x4xf32>) {
  // expected-error@+2 {{'matmul' needs operands of rank at least 2, got [3] and [3, 4]}}
  // expected-error@+1 {{'kiln.matmul' op failed to infer returned types}}
  %0 = kiln.matmul %a, %b : (tensor<3xf32>, tensor<3x4xf32>) -> tensor<4xf32>
  return
}

// -----

// matmul: contraction sizes that differ.
func.func @matmul_contraction_sizes_that_differ(%a: tensor<?x784xf32>, %b: tensor<512x784xf32>) {
  // expected-error@+2 {{'matmul' contraction sizes differ: [?, 784] has K = 784, [512, 784] has K = 512}}
  // expected-error@+1 {{'kiln.matmul' op failed to infer returned types}}
  %0 = kiln.matmul %a, %b : (tensor<?x784xf32>, tensor<512x784xf32>) -> tensor<?x784xf32>
  return
}

// -----

// matmul: transpose_lhs changes which size contracts.
func.func @matmul_transpose_lhs_changes_which_size_contracts(%a: tensor<2x3xf32>, %b: tensor<3x4xf32>) {
  // expected-error@+2 {{'matmul' contraction sizes differ: [2, 3] has K = 2, [3, 4] has K = 3}}
  // expected-error@+1 {{'kiln.matmul' op failed to infer returned types}}
  %0 = kiln.matmul %a, %b transpose_lhs : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  return
}

// -----

// matmul: batch dimensions that do not broadcast.
func.func @matmul_batch_dimensions_that_do_not_broadcast(%a: tensor<2x4x8xf32>, %b: tensor<3x8x4xf32>) {
  // expected-error@+2 {{'matmul' cannot broadcast batch dimensions of [2, 4, 8] and [3, 8, 4]}}
  // expected-error@+1 {{'kiln.matmul' op failed to infer returned types}}
  %0 = kiln.matmul %a, %b : (tensor<2x4x8xf32>, tensor<3x8x4xf32>) -> tensor<2x4x4xf32>
  return
}

// -----

// transpose: a permutation of the wrong length.
func.func @transpose_a_permutation_of_the_wrong_length(%a: tensor<2x3xf32>) {
  // expected-error@+2 {{'transpose' permutation has 3 entries for a tensor of rank 2}}
  // expected-error@+1 {{'kiln.transpose' op failed to infer returned types}}
  %0 = kiln.transpose %a [0, 1, 2] : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

// transpose: a repeated entry.
func.func @transpose_a_repeated_entry(%a: tensor<2x3xf32>) {
  // expected-error@+2 {{'transpose' permutation [1, 1] is not a permutation of 0..1}}
  // expected-error@+1 {{'kiln.transpose' op failed to infer returned types}}
  %0 = kiln.transpose %a [1, 1] : (tensor<2x3xf32>) -> tensor<3x3xf32>
  return
}

// -----

// transpose: an entry out of range.
func.func @transpose_an_entry_out_of_range(%a: tensor<2x3xf32>) {
  // expected-error@+2 {{'transpose' permutation [0, 2] is not a permutation of 0..1}}
  // expected-error@+1 {{'kiln.transpose' op failed to infer returned types}}
  %0 = kiln.transpose %a [0, 2] : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return
}

// -----

// reshape: element counts that differ.
func.func @reshape_element_counts_that_differ(%a: tensor<2x3xf32>) {
  // expected-error@+2 {{'reshape' cannot reshape [2, 3] (6 elements) to [4, 2] (8 elements)}}
  // expected-error@+1 {{'kiln.reshape' op failed to infer returned types}}
  %0 = kiln.reshape %a [4, 2] : (tensor<2x3xf32>) -> tensor<4x2xf32>
  return
}

// -----

// reshape: a -1 that cannot divide the element count.
func.func @reshape_a_1_that_cannot_divide_the_element_count(%a: tensor<2x3xf32>) {
  // expected-error@+2 {{'reshape' cannot reshape [2, 3] (6 elements) to [-1, 4]}}
  // expected-error@+1 {{'kiln.reshape' op failed to infer returned types}}
  %0 = kiln.reshape %a [-1, 4] : (tensor<2x3xf32>) -> tensor<?x4xf32>
  return
}

// -----

// reshape: -1 twice.
func.func @reshape_1_twice(%a: tensor<?x4xf32>) {
  // expected-error@+2 {{'reshape' shape [-1, -1] has more than one -1}}
  // expected-error@+1 {{'kiln.reshape' op failed to infer returned types}}
  %0 = kiln.reshape %a [-1, -1] : (tensor<?x4xf32>) -> tensor<?x?xf32>
  return
}

// -----

// reshape: a size of zero.
func.func @reshape_a_size_of_zero(%a: tensor<2x3xf32>) {
  // expected-error@+2 {{'reshape' shape [0, 6] has a size below 1}}
  // expected-error@+1 {{'kiln.reshape' op failed to infer returned types}}
  %0 = kiln.reshape %a [0, 6] : (tensor<2x3xf32>) -> tensor<0x6xf32>
  return
}

// -----

// reshape: a dynamic input needs a -1.
func.func @reshape_a_dynamic_input_needs_a_1(%a: tensor<?x784xf32>) {
  // expected-error@+2 {{'reshape' shape [28, 28] needs a -1 for the dynamic dimensions of [?, 784]}}
  // expected-error@+1 {{'kiln.reshape' op failed to infer returned types}}
  %0 = kiln.reshape %a [28, 28] : (tensor<?x784xf32>) -> tensor<28x28xf32>
  return
}

// -----

// broadcast: to a smaller rank.
func.func @broadcast_to_a_smaller_rank(%a: tensor<2x3xf32>, %b: tensor<3xf32>) {
  // expected-error@+2 {{'broadcast' cannot broadcast [2, 3] to [3]}}
  // expected-error@+1 {{'kiln.broadcast' op failed to infer returned types}}
  %0 = kiln.broadcast %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<3xf32>
  return
}

// -----

// broadcast: a size that does not stretch.
func.func @broadcast_a_size_that_does_not_stretch(%a: tensor<2x3xf32>, %b: tensor<?x2x1xf32>) {
  // expected-error@+2 {{'broadcast' cannot broadcast [2, 3] to [?, 2, 1]}}
  // expected-error@+1 {{'kiln.broadcast' op failed to infer returned types}}
  %0 = kiln.broadcast %a, %b : (tensor<2x3xf32>, tensor<?x2x1xf32>) -> tensor<?x2x1xf32>
  return
}

// -----

// reduce_sum: an axis out of range.
func.func @reduce_sum_an_axis_out_of_range(%a: tensor<?x10xf32>) {
  // expected-error@+2 {{'reduce_sum' axis 2 is out of range for rank 2}}
  // expected-error@+1 {{'kiln.reduce_sum' op failed to infer returned types}}
  %0 = kiln.reduce_sum %a [2] : (tensor<?x10xf32>) -> tensor<?xf32>
  return
}

// -----

// reduce_mean: a negative axis out of range.
func.func @reduce_mean_a_negative_axis_out_of_range(%a: tensor<?x10xf32>) {
  // expected-error@+2 {{'reduce_mean' axis -3 is out of range for rank 2}}
  // expected-error@+1 {{'kiln.reduce_mean' op failed to infer returned types}}
  %0 = kiln.reduce_mean %a [-3] : (tensor<?x10xf32>) -> tensor<?xf32>
  return
}

// -----

// reduce_max: an axis named twice.
func.func @reduce_max_an_axis_named_twice(%a: tensor<?x10xf32>) {
  // expected-error@+2 {{'reduce_max' axis -1 is repeated}}
  // expected-error@+1 {{'kiln.reduce_max' op failed to infer returned types}}
  %0 = kiln.reduce_max %a [1, -1] : (tensor<?x10xf32>) -> tensor<?xf32>
  return
}

// -----

// argmax: an axis out of range.
func.func @argmax_an_axis_out_of_range(%a: tensor<?x10xf32>) {
  // expected-error@+2 {{'argmax' axis 2 is out of range for rank 2}}
  // expected-error@+1 {{'kiln.argmax' op failed to infer returned types}}
  %0 = kiln.argmax %a axis 2 : (tensor<?x10xf32>) -> tensor<?xi32>
  return
}

// -----

// argmax: a negative axis out of range.
func.func @argmax_a_negative_axis_out_of_range(%a: tensor<?x10xf32>) {
  // expected-error@+2 {{'argmax' axis -3 is out of range for rank 2}}
  // expected-error@+1 {{'kiln.argmax' op failed to infer returned types}}
  %0 = kiln.argmax %a axis -3 keepdims : (tensor<?x10xf32>) -> tensor<?x1xi32>
  return
}

// -----

// argmax: a scalar has no axis.
func.func @argmax_a_scalar_has_no_axis(%a: tensor<f32>) {
  // expected-error@+2 {{'argmax' axis 0 is out of range for rank 0}}
  // expected-error@+1 {{'kiln.argmax' op failed to infer returned types}}
  %0 = kiln.argmax %a axis 0 : (tensor<f32>) -> tensor<i32>
  return
}

// -----

// softmax: an axis out of range.
func.func @softmax_an_axis_out_of_range(%a: tensor<?x10xf32>) {
  // expected-error@+1 {{'softmax' axis 2 is out of range for rank 2}}
  %0 = kiln.softmax %a axis 2 : tensor<?x10xf32>
  return
}

// -----

// log_softmax: a negative axis out of range.
func.func @log_softmax_a_negative_axis_out_of_range(%a: tensor<?x10xf32>) {
  // expected-error@+1 {{'log_softmax' axis -3 is out of range for rank 2}}
  %0 = kiln.log_softmax %a axis -3 : tensor<?x10xf32>
  return
}

// -----

// cross_entropy: labels of the wrong shape.
func.func @cross_entropy_labels_of_the_wrong_shape(%a: tensor<?x10xf32>, %b: tensor<?x10xi32>) {
  // expected-error@+2 {{'cross_entropy' labels of shape [?, 10] do not match logits of shape [?, 10] (expected labels [?])}}
  // expected-error@+1 {{'kiln.cross_entropy' op failed to infer returned types}}
  %0 = kiln.cross_entropy %a, %b : (tensor<?x10xf32>, tensor<?x10xi32>) -> tensor<f32>
  return
}

// -----

// cross_entropy: labels of a different size.
func.func @cross_entropy_labels_of_a_different_size(%a: tensor<32x10xf32>, %b: tensor<16xi32>) {
  // expected-error@+2 {{'cross_entropy' labels of shape [16] do not match logits of shape [32, 10] (expected labels [32])}}
  // expected-error@+1 {{'kiln.cross_entropy' op failed to infer returned types}}
  %0 = kiln.cross_entropy %a, %b : (tensor<32x10xf32>, tensor<16xi32>) -> tensor<f32>
  return
}

// -----

// cross_entropy: scalar logits.
func.func @cross_entropy_scalar_logits(%a: tensor<f32>, %b: tensor<i32>) {
  // expected-error@+2 {{'cross_entropy' needs logits of rank at least 1}}
  // expected-error@+1 {{'kiln.cross_entropy' op failed to infer returned types}}
  %0 = kiln.cross_entropy %a, %b : (tensor<f32>, tensor<i32>) -> tensor<f32>
  return
}

// -----

// accuracy: labels of the wrong rank.
func.func @accuracy_labels_of_the_wrong_rank(%a: tensor<?x10xf32>, %b: tensor<?x1xi64>) {
  // expected-error@+2 {{'accuracy' labels of shape [?, 1] do not match logits of shape [?, 10] (expected labels [?])}}
  // expected-error@+1 {{'kiln.accuracy' op failed to infer returned types}}
  %0 = kiln.accuracy %a, %b : (tensor<?x10xf32>, tensor<?x1xi64>) -> tensor<f32>
  return
}

// -----

// layer_norm: a weight of the wrong size.
func.func @layer_norm_a_weight_of_the_wrong_size(%x: tensor<?x384xf32>, %g: tensor<10xf32>, %b: tensor<384xf32>) {
  // expected-error@+2 {{'layer_norm' weight and bias must have shape [384], got [10]}}
  // expected-error@+1 {{'kiln.layer_norm' op failed to infer returned types}}
  %0 = kiln.layer_norm %x, %g, %b eps 1.0e-5 : (tensor<?x384xf32>, tensor<10xf32>, tensor<384xf32>) -> tensor<?x384xf32>
  return
}

// -----

// layer_norm: a bias of rank 2.
func.func @layer_norm_a_bias_of_rank_2(%x: tensor<?x384xf32>, %g: tensor<384xf32>, %b: tensor<1x384xf32>) {
  // expected-error@+2 {{'layer_norm' weight and bias must have shape [384], got [1, 384]}}
  // expected-error@+1 {{'kiln.layer_norm' op failed to infer returned types}}
  %0 = kiln.layer_norm %x, %g, %b eps 1.0e-5 : (tensor<?x384xf32>, tensor<384xf32>, tensor<1x384xf32>) -> tensor<?x384xf32>
  return
}

// -----

// layer_norm: a weight of another element type.
func.func @layer_norm_a_weight_of_another_element_type(%x: tensor<?x384xf32>, %g: tensor<384xf64>, %b: tensor<384xf32>) {
  // expected-error@+2 {{'layer_norm' weight and bias must have element type 'f32', got 'f64'}}
  // expected-error@+1 {{'kiln.layer_norm' op failed to infer returned types}}
  %0 = kiln.layer_norm %x, %g, %b eps 1.0e-5 : (tensor<?x384xf32>, tensor<384xf64>, tensor<384xf32>) -> tensor<?x384xf32>
  return
}

// -----

// layer_norm: a zero epsilon.
func.func @layer_norm_a_zero_epsilon(%x: tensor<?x384xf32>, %g: tensor<384xf32>, %b: tensor<384xf32>) {
  // expected-error@+2 {{'layer_norm' epsilon must be positive, got 0.000000e+00}}
  // expected-error@+1 {{'kiln.layer_norm' op failed to infer returned types}}
  %0 = kiln.layer_norm %x, %g, %b eps 0.0 : (tensor<?x384xf32>, tensor<384xf32>, tensor<384xf32>) -> tensor<?x384xf32>
  return
}

// -----

// layer_norm: a negative epsilon.
func.func @layer_norm_a_negative_epsilon(%x: tensor<?x384xf32>, %g: tensor<384xf32>, %b: tensor<384xf32>) {
  // expected-error@+2 {{'layer_norm' epsilon must be positive, got -1.000000e-05}}
  // expected-error@+1 {{'kiln.layer_norm' op failed to infer returned types}}
  %0 = kiln.layer_norm %x, %g, %b eps -1.0e-5 : (tensor<?x384xf32>, tensor<384xf32>, tensor<384xf32>) -> tensor<?x384xf32>
  return
}

// -----

// layer_norm: a scalar input.
func.func @layer_norm_a_scalar_input(%x: tensor<f32>, %g: tensor<1xf32>, %b: tensor<1xf32>) {
  // expected-error@+2 {{'layer_norm' needs an input of rank at least 1}}
  // expected-error@+1 {{'kiln.layer_norm' op failed to infer returned types}}
  %0 = kiln.layer_norm %x, %g, %b eps 1.0e-5 : (tensor<f32>, tensor<1xf32>, tensor<1xf32>) -> tensor<f32>
  return
}

// -----

// conv2d: an input of rank 3.
func.func @conv2d_an_input_of_rank_3(%x: tensor<1x28x28xf32>, %w: tensor<32x1x3x3xf32>) {
  // expected-error@+2 {{'conv2d' needs an NCHW input of rank 4, got [1, 28, 28]}}
  // expected-error@+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = kiln.conv2d %x, %w stride [1, 1] padding [0, 0] : (tensor<1x28x28xf32>, tensor<32x1x3x3xf32>) -> tensor<1x32x26x26xf32>
  return
}

// -----

// conv2d: a weight of rank 2.
func.func @conv2d_a_weight_of_rank_2(%x: tensor<?x1x28x28xf32>, %w: tensor<32x9xf32>) {
  // expected-error@+2 {{'conv2d' needs an OIHW weight of rank 4, got [32, 9]}}
  // expected-error@+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = kiln.conv2d %x, %w stride [1, 1] padding [0, 0] : (tensor<?x1x28x28xf32>, tensor<32x9xf32>) -> tensor<?x32x26x26xf32>
  return
}

// -----

// conv2d: operands of different element types.
func.func @conv2d_operands_of_different_element_types(%x: tensor<?x1x28x28xf32>, %w: tensor<32x1x3x3xf64>) {
  // expected-error@+2 {{'conv2d' operands have different element types 'f32' and 'f64'}}
  // expected-error@+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = kiln.conv2d %x, %w stride [1, 1] padding [0, 0] : (tensor<?x1x28x28xf32>, tensor<32x1x3x3xf64>) -> tensor<?x32x26x26xf32>
  return
}

// -----

// conv2d: channels that differ.
func.func @conv2d_channels_that_differ(%x: tensor<?x3x28x28xf32>, %w: tensor<32x1x3x3xf32>) {
  // expected-error@+2 {{'conv2d' input has 3 channels but the weight expects 1}}
  // expected-error@+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = kiln.conv2d %x, %w stride [1, 1] padding [0, 0] : (tensor<?x3x28x28xf32>, tensor<32x1x3x3xf32>) -> tensor<?x32x26x26xf32>
  return
}

// -----

// conv2d: one stride value.
func.func @conv2d_one_stride_value(%x: tensor<?x1x28x28xf32>, %w: tensor<32x1x3x3xf32>) {
  // expected-error@+2 {{'conv2d' stride needs 2 values, got 1}}
  // expected-error@+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = kiln.conv2d %x, %w stride [1] padding [0, 0] : (tensor<?x1x28x28xf32>, tensor<32x1x3x3xf32>) -> tensor<?x32x26x26xf32>
  return
}

// -----

// conv2d: a zero stride.
func.func @conv2d_a_zero_stride(%x: tensor<?x1x28x28xf32>, %w: tensor<32x1x3x3xf32>) {
  // expected-error@+2 {{'conv2d' stride must be at least 1, got 0}}
  // expected-error@+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = kiln.conv2d %x, %w stride [1, 0] padding [0, 0] : (tensor<?x1x28x28xf32>, tensor<32x1x3x3xf32>) -> tensor<?x32x26x26xf32>
  return
}

// -----

// conv2d: a negative padding.
func.func @conv2d_a_negative_padding(%x: tensor<?x1x28x28xf32>, %w: tensor<32x1x3x3xf32>) {
  // expected-error@+2 {{'conv2d' padding must be at least 0, got -1}}
  // expected-error@+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = kiln.conv2d %x, %w stride [1, 1] padding [-1, 0] : (tensor<?x1x28x28xf32>, tensor<32x1x3x3xf32>) -> tensor<?x32x26x26xf32>
  return
}

// -----

// conv2d: a kernel larger than the padded input.
func.func @conv2d_a_kernel_larger_than_the_padded_input(%x: tensor<?x1x4x4xf32>, %w: tensor<32x1x7x7xf32>) {
  // expected-error@+2 {{'conv2d' kernel [32, 1, 7, 7] is larger than the padded input [?, 1, 4, 4]}}
  // expected-error@+1 {{'kiln.conv2d' op failed to infer returned types}}
  %0 = kiln.conv2d %x, %w stride [1, 1] padding [1, 1] : (tensor<?x1x4x4xf32>, tensor<32x1x7x7xf32>) -> tensor<?x32x1x1xf32>
  return
}

// -----

// max_pool2d: an input of rank 2.
func.func @max_pool2d_an_input_of_rank_2(%x: tensor<28x28xf32>) {
  // expected-error@+2 {{'max_pool2d' needs an NCHW input of rank 4, got [28, 28]}}
  // expected-error@+1 {{'kiln.max_pool2d' op failed to infer returned types}}
  %0 = kiln.max_pool2d %x kernel [2, 2] stride [2, 2] padding [0, 0] : (tensor<28x28xf32>) -> tensor<14x14xf32>
  return
}

// -----

// max_pool2d: three kernel values.
func.func @max_pool2d_three_kernel_values(%x: tensor<?x1x28x28xf32>) {
  // expected-error@+2 {{'max_pool2d' kernel needs 2 values, got 3}}
  // expected-error@+1 {{'kiln.max_pool2d' op failed to infer returned types}}
  %0 = kiln.max_pool2d %x kernel [2, 2, 2] stride [2, 2] padding [0, 0] : (tensor<?x1x28x28xf32>) -> tensor<?x1x14x14xf32>
  return
}

// -----

// max_pool2d: a zero kernel.
func.func @max_pool2d_a_zero_kernel(%x: tensor<?x1x28x28xf32>) {
  // expected-error@+2 {{'max_pool2d' kernel must be at least 1, got 0}}
  // expected-error@+1 {{'kiln.max_pool2d' op failed to infer returned types}}
  %0 = kiln.max_pool2d %x kernel [0, 2] stride [2, 2] padding [0, 0] : (tensor<?x1x28x28xf32>) -> tensor<?x1x14x14xf32>
  return
}

// -----

// avg_pool2d: a zero stride.
func.func @avg_pool2d_a_zero_stride(%x: tensor<?x1x28x28xf32>) {
  // expected-error@+2 {{'avg_pool2d' stride must be at least 1, got 0}}
  // expected-error@+1 {{'kiln.avg_pool2d' op failed to infer returned types}}
  %0 = kiln.avg_pool2d %x kernel [2, 2] stride [0, 2] padding [0, 0] : (tensor<?x1x28x28xf32>) -> tensor<?x1x14x14xf32>
  return
}

// -----

// avg_pool2d: one padding value.
func.func @avg_pool2d_one_padding_value(%x: tensor<?x1x28x28xf32>) {
  // expected-error@+2 {{'avg_pool2d' padding needs 2 values, got 1}}
  // expected-error@+1 {{'kiln.avg_pool2d' op failed to infer returned types}}
  %0 = kiln.avg_pool2d %x kernel [2, 2] stride [2, 2] padding [0] : (tensor<?x1x28x28xf32>) -> tensor<?x1x14x14xf32>
  return
}

// -----

// avg_pool2d: padding more than half the kernel.
func.func @avg_pool2d_padding_more_than_half_the_kernel(%x: tensor<?x1x28x28xf32>) {
  // expected-error@+2 {{'avg_pool2d' padding 2 is more than half the kernel size 3}}
  // expected-error@+1 {{'kiln.avg_pool2d' op failed to infer returned types}}
  %0 = kiln.avg_pool2d %x kernel [3, 3] stride [1, 1] padding [2, 1] : (tensor<?x1x28x28xf32>) -> tensor<?x1x30x28xf32>
  return
}

// -----

// max_pool2d: a kernel larger than the input.
func.func @max_pool2d_a_kernel_larger_than_the_input(%x: tensor<?x1x2x28xf32>) {
  // expected-error@+2 {{'max_pool2d' kernel [3, 3] is larger than the padded input [?, 1, 2, 28]}}
  // expected-error@+1 {{'kiln.max_pool2d' op failed to infer returned types}}
  %0 = kiln.max_pool2d %x kernel [3, 3] stride [1, 1] padding [0, 0] : (tensor<?x1x2x28xf32>) -> tensor<?x1x1x26xf32>
  return
}

// -----

// embedding: a table of rank 3.
func.func @embedding_a_table_of_rank_3(%t: tensor<65x4x384xf32>, %i: tensor<?xi32>) {
  // expected-error@+2 {{'embedding' needs a table of rank 2, got [65, 4, 384]}}
  // expected-error@+1 {{'kiln.embedding' op failed to infer returned types}}
  %0 = kiln.embedding %t, %i : (tensor<65x4x384xf32>, tensor<?xi32>) -> tensor<?x384xf32>
  return
}

// -----

// dropout: a rate of 1.
func.func @dropout_a_rate_of_1(%x: tensor<?x512xf32>) {
  // expected-error@+1 {{'kiln.dropout' op rate must be in [0, 1), got 1.000000e+00}}
  %0 = kiln.dropout %x rate 1.0 stream 0 : tensor<?x512xf32>
  return
}

// -----

// dropout: a negative rate.
func.func @dropout_a_negative_rate(%x: tensor<?x512xf32>) {
  // expected-error@+1 {{'kiln.dropout' op rate must be in [0, 1), got -1.000000e-01}}
  %0 = kiln.dropout %x rate -0.1 stream 0 : tensor<?x512xf32>
  return
}

// -----

// linear: input features that do not match the weight.
func.func @linear_input_features_that_do_not_match_the_weight(%x: tensor<?x784xf32>, %w: tensor<512x512xf32>) {
  // expected-error@+2 {{'linear' input [?, 784] has 784 features but the weight [512, 512] expects 512}}
  // expected-error@+1 {{'kiln.linear' op failed to infer returned types}}
  %0 = kiln.linear %x, %w : (tensor<?x784xf32>, tensor<512x512xf32>) -> tensor<?x512xf32>
  return
}

// -----

// linear: a weight of rank 1.
func.func @linear_a_weight_of_rank_1(%x: tensor<?x784xf32>, %w: tensor<784xf32>) {
  // expected-error@+2 {{'linear' needs a weight [out, in] of rank 2, got [784]}}
  // expected-error@+1 {{'kiln.linear' op failed to infer returned types}}
  %0 = kiln.linear %x, %w : (tensor<?x784xf32>, tensor<784xf32>) -> tensor<?xf32>
  return
}

// -----

// linear: a scalar input.
func.func @linear_a_scalar_input(%x: tensor<f32>, %w: tensor<4x1xf32>) {
  // expected-error@+2 {{'linear' needs an input of rank at least 1}}
  // expected-error@+1 {{'kiln.linear' op failed to infer returned types}}
  %0 = kiln.linear %x, %w : (tensor<f32>, tensor<4x1xf32>) -> tensor<4xf32>
  return
}

// -----

// linear: operands of different element types.
func.func @linear_operands_of_different_element_types(%x: tensor<?x784xf64>, %w: tensor<512x784xf32>) {
  // expected-error@+2 {{'linear' operands have different element types 'f64' and 'f32'}}
  // expected-error@+1 {{'kiln.linear' op failed to infer returned types}}
  %0 = kiln.linear %x, %w : (tensor<?x784xf64>, tensor<512x784xf32>) -> tensor<?x512xf64>
  return
}

// -----

// linear: a bias of the wrong size.
func.func @linear_a_bias_of_the_wrong_size(%x: tensor<?x784xf32>, %w: tensor<512x784xf32>, %b: tensor<10xf32>) {
  // expected-error@+2 {{'linear' bias must be f32[512], got f32[10]}}
  // expected-error@+1 {{'kiln.linear' op failed to infer returned types}}
  %0 = kiln.linear %x, %w, %b : (tensor<?x784xf32>, tensor<512x784xf32>, tensor<10xf32>) -> tensor<?x512xf32>
  return
}

// -----

// linear: a bias of rank 2.
func.func @linear_a_bias_of_rank_2(%x: tensor<?x784xf32>, %w: tensor<512x784xf32>, %b: tensor<1x512xf32>) {
  // expected-error@+2 {{'linear' bias must be f32[512], got f32[1, 512]}}
  // expected-error@+1 {{'kiln.linear' op failed to infer returned types}}
  %0 = kiln.linear %x, %w, %b : (tensor<?x784xf32>, tensor<512x784xf32>, tensor<1x512xf32>) -> tensor<?x512xf32>
  return
}

// -----

// linear: a bias of another element type.
func.func @linear_a_bias_of_another_element_type(%x: tensor<?x784xf32>, %w: tensor<512x784xf32>, %b: tensor<512xf64>) {
  // expected-error@+2 {{'linear' bias must be f32[512], got f64[512]}}
  // expected-error@+1 {{'kiln.linear' op failed to infer returned types}}
  %0 = kiln.linear %x, %w, %b : (tensor<?x784xf32>, tensor<512x784xf32>, tensor<512xf64>) -> tensor<?x512xf32>
  return
}

// -----

// linear: a bias of rank 2 for a weight of unknown size.
func.func @linear_a_bias_of_rank_2_for_a_weight_of_unknown_size(%x: tensor<?x784xf32>, %w: tensor<?x784xf32>, %b: tensor<1x512xf32>) {
  // expected-error@+2 {{'linear' bias must be f32[?], got f32[1, 512]}}
  // expected-error@+1 {{'kiln.linear' op failed to infer returned types}}
  %0 = kiln.linear %x, %w, %b : (tensor<?x784xf32>, tensor<?x784xf32>, tensor<1x512xf32>) -> tensor<?x?xf32>
  return
}

// -----

// count: an axis out of range.
func.func @count_an_axis_out_of_range(%x: tensor<?x10xf32>) {
  // expected-error@+2 {{'count' axis 2 is out of range for rank 2}}
  // expected-error@+1 {{'kiln.count' op failed to infer returned types}}
  %0 = kiln.count %x [2] : (tensor<?x10xf32>) -> tensor<f32>
  return
}

// -----

// cross_entropy_grad: labels of the wrong shape.
func.func @cross_entropy_grad_labels_of_the_wrong_shape(%x: tensor<?x10xf32>, %l: tensor<?x2xi32>, %g: tensor<f32>) {
  // expected-error@+2 {{'cross_entropy_grad' labels of shape [?, 2] do not match logits of shape [?, 10] (expected labels [?])}}
  // expected-error@+1 {{'kiln.cross_entropy_grad' op failed to infer returned types}}
  %0 = kiln.cross_entropy_grad %x, %l, %g : (tensor<?x10xf32>, tensor<?x2xi32>, tensor<f32>) -> tensor<?x10xf32>
  return
}

// -----

// cross_entropy_grad: a gradient that is not a scalar.
func.func @cross_entropy_grad_a_gradient_that_is_not_a_scalar(%x: tensor<?x10xf32>, %l: tensor<?xi32>, %g: tensor<1xf32>) {
  // expected-error@+2 {{'cross_entropy_grad' needs a scalar gradient of type 'tensor<f32>', got 'tensor<1xf32>'}}
  // expected-error@+1 {{'kiln.cross_entropy_grad' op failed to infer returned types}}
  %0 = kiln.cross_entropy_grad %x, %l, %g : (tensor<?x10xf32>, tensor<?xi32>, tensor<1xf32>) -> tensor<?x10xf32>
  return
}

// -----

// gelu_grad: shapes that do not broadcast.
func.func @gelu_grad_shapes_that_do_not_broadcast(%x: tensor<?x10xf32>, %g: tensor<?x5xf32>) {
  // expected-error@+2 {{'gelu_grad' cannot broadcast shapes [?, 10] and [?, 5]}}
  // expected-error@+1 {{'kiln.gelu_grad' op failed to infer returned types}}
  %0 = kiln.gelu_grad %x, %g : (tensor<?x10xf32>, tensor<?x5xf32>) -> tensor<?x10xf32>
  return
}

// -----

// conv2d_grad_input: a gradient of the wrong spatial size.
func.func @conv2d_grad_input_a_gradient_of_the_wrong_spatial_size(%g: tensor<?x32x13x14xf32>, %w: tensor<32x1x3x3xf32>, %x: tensor<?x1x28x28xf32>) {
  // expected-error@+2 {{'conv2d_grad_input' gradient of shape [?, 32, 13, 14] does not match the forward result of shape [?, 32, 14, 14]}}
  // expected-error@+1 {{'kiln.conv2d_grad_input' op failed to infer returned types}}
  %0 = kiln.conv2d_grad_input %g, %w, %x stride [2, 2] padding [1, 1] : (tensor<?x32x13x14xf32>, tensor<32x1x3x3xf32>, tensor<?x1x28x28xf32>) -> tensor<?x1x28x28xf32>
  return
}

// -----

// conv2d_grad_input: an input_like whose channels differ from the weight's.
func.func @conv2d_grad_input_an_input_like_whose_channels_differ_from_the_weight_s(%g: tensor<?x32x14x14xf32>, %w: tensor<32x1x3x3xf32>, %x: tensor<?x3x28x28xf32>) {
  // expected-error@+2 {{'conv2d_grad_input' input has 3 channels but the weight expects 1}}
  // expected-error@+1 {{'kiln.conv2d_grad_input' op failed to infer returned types}}
  %0 = kiln.conv2d_grad_input %g, %w, %x stride [2, 2] padding [1, 1] : (tensor<?x32x14x14xf32>, tensor<32x1x3x3xf32>, tensor<?x3x28x28xf32>) -> tensor<?x3x28x28xf32>
  return
}

// -----

// conv2d_grad_input: a gradient of another element type.
func.func @conv2d_grad_input_a_gradient_of_another_element_type(%g: tensor<?x32x14x14xf64>, %w: tensor<32x1x3x3xf32>, %x: tensor<?x1x28x28xf32>) {
  // expected-error@+2 {{'conv2d_grad_input' gradient has element type 'f64', expected 'f32'}}
  // expected-error@+1 {{'kiln.conv2d_grad_input' op failed to infer returned types}}
  %0 = kiln.conv2d_grad_input %g, %w, %x stride [2, 2] padding [1, 1] : (tensor<?x32x14x14xf64>, tensor<32x1x3x3xf32>, tensor<?x1x28x28xf32>) -> tensor<?x1x28x28xf32>
  return
}

// -----

// conv2d_grad_weight: a gradient with the wrong output channels.
func.func @conv2d_grad_weight_a_gradient_with_the_wrong_output_channels(%x: tensor<?x1x28x28xf32>, %g: tensor<?x16x28x28xf32>, %w: tensor<32x1x3x3xf32>) {
  // expected-error@+2 {{'conv2d_grad_weight' gradient of shape [?, 16, 28, 28] does not match the forward result of shape [?, 32, 28, 28]}}
  // expected-error@+1 {{'kiln.conv2d_grad_weight' op failed to infer returned types}}
  %0 = kiln.conv2d_grad_weight %x, %g, %w stride [1, 1] padding [1, 1] : (tensor<?x1x28x28xf32>, tensor<?x16x28x28xf32>, tensor<32x1x3x3xf32>) -> tensor<32x1x3x3xf32>
  return
}

// -----

// conv2d_grad_weight: a weight_like of rank 2.
func.func @conv2d_grad_weight_a_weight_like_of_rank_2(%x: tensor<?x1x28x28xf32>, %g: tensor<?x32x28x28xf32>, %w: tensor<32x9xf32>) {
  // expected-error@+2 {{'conv2d_grad_weight' needs an OIHW weight of rank 4, got [32, 9]}}
  // expected-error@+1 {{'kiln.conv2d_grad_weight' op failed to infer returned types}}
  %0 = kiln.conv2d_grad_weight %x, %g, %w stride [1, 1] padding [1, 1] : (tensor<?x1x28x28xf32>, tensor<?x32x28x28xf32>, tensor<32x9xf32>) -> tensor<32x9xf32>
  return
}

// -----

// max_pool2d_grad: a gradient of the wrong batch size.
func.func @max_pool2d_grad_a_gradient_of_the_wrong_batch_size(%x: tensor<8x1x28x28xf32>, %g: tensor<4x1x14x14xf32>) {
  // expected-error@+2 {{'max_pool2d_grad' gradient of shape [4, 1, 14, 14] does not match the forward result of shape [8, 1, 14, 14]}}
  // expected-error@+1 {{'kiln.max_pool2d_grad' op failed to infer returned types}}
  %0 = kiln.max_pool2d_grad %x, %g kernel [2, 2] stride [2, 2] padding [0, 0] : (tensor<8x1x28x28xf32>, tensor<4x1x14x14xf32>) -> tensor<8x1x28x28xf32>
  return
}

// -----

// max_pool2d_grad: a zero stride.
func.func @max_pool2d_grad_a_zero_stride(%x: tensor<?x1x28x28xf32>, %g: tensor<?x1x14x14xf32>) {
  // expected-error@+2 {{'max_pool2d_grad' stride must be at least 1, got 0}}
  // expected-error@+1 {{'kiln.max_pool2d_grad' op failed to infer returned types}}
  %0 = kiln.max_pool2d_grad %x, %g kernel [2, 2] stride [2, 0] padding [0, 0] : (tensor<?x1x28x28xf32>, tensor<?x1x14x14xf32>) -> tensor<?x1x28x28xf32>
  return
}

// -----

// avg_pool2d_grad: an input_like of rank 3.
func.func @avg_pool2d_grad_an_input_like_of_rank_3(%g: tensor<?x1x14x14xf32>, %x: tensor<1x28x28xf32>) {
  // expected-error@+2 {{'avg_pool2d_grad' needs an NCHW input of rank 4, got [1, 28, 28]}}
  // expected-error@+1 {{'kiln.avg_pool2d_grad' op failed to infer returned types}}
  %0 = kiln.avg_pool2d_grad %g, %x kernel [2, 2] stride [2, 2] padding [0, 0] : (tensor<?x1x14x14xf32>, tensor<1x28x28xf32>) -> tensor<1x28x28xf32>
  return
}

// -----

// avg_pool2d_grad: a gradient of the wrong rank.
func.func @avg_pool2d_grad_a_gradient_of_the_wrong_rank(%g: tensor<?x14x14xf32>, %x: tensor<?x1x28x28xf32>) {
  // expected-error@+2 {{'avg_pool2d_grad' gradient of shape [?, 14, 14] does not match the forward result of shape [?, 1, 14, 14]}}
  // expected-error@+1 {{'kiln.avg_pool2d_grad' op failed to infer returned types}}
  %0 = kiln.avg_pool2d_grad %g, %x kernel [2, 2] stride [2, 2] padding [0, 0] : (tensor<?x14x14xf32>, tensor<?x1x28x28xf32>) -> tensor<?x1x28x28xf32>
  return
}

// -----

// embedding_grad: a table_like of rank 1.
func.func @embedding_grad_a_table_like_of_rank_1(%i: tensor<?x256xi32>, %g: tensor<?x256x384xf32>, %t: tensor<65xf32>) {
  // expected-error@+2 {{'embedding_grad' needs a table of rank 2, got [65]}}
  // expected-error@+1 {{'kiln.embedding_grad' op failed to infer returned types}}
  %0 = kiln.embedding_grad %i, %g, %t : (tensor<?x256xi32>, tensor<?x256x384xf32>, tensor<65xf32>) -> tensor<65xf32>
  return
}

// -----

// embedding_grad: a gradient whose rows do not match the table.
func.func @embedding_grad_a_gradient_whose_rows_do_not_match_the_table(%i: tensor<?x256xi32>, %g: tensor<?x256x128xf32>, %t: tensor<65x384xf32>) {
  // expected-error@+2 {{'embedding_grad' gradient of shape [?, 256, 128] does not match the forward result of shape [?, 256, 384]}}
  // expected-error@+1 {{'kiln.embedding_grad' op failed to infer returned types}}
  %0 = kiln.embedding_grad %i, %g, %t : (tensor<?x256xi32>, tensor<?x256x128xf32>, tensor<65x384xf32>) -> tensor<65x384xf32>
  return
}

// -----

// a declared result size that contradicts the inferred one.
func.func @a_declared_result_size_that_contradicts_the_inferred_one(%a: tensor<?x512xf32>, %b: tensor<512xf32>) {
  // expected-error@+2 {{'kiln.add' op inferred type(s) 'tensor<?x512xf32>' are incompatible with return type(s) of operation 'tensor<?x10xf32>'}}
  // expected-error@+1 {{'kiln.add' op failed to infer returned types}}
  %0 = kiln.add %a, %b : (tensor<?x512xf32>, tensor<512xf32>) -> tensor<?x10xf32>
  return
}

// -----

// a declared result rank that contradicts the inferred one.
func.func @a_declared_result_rank_that_contradicts_the_inferred_one(%a: tensor<?x10xf32>) {
  // expected-error@+2 {{'kiln.reduce_sum' op inferred type(s) 'tensor<?xf32>' are incompatible with return type(s) of operation 'tensor<?x1xf32>'}}
  // expected-error@+1 {{'kiln.reduce_sum' op failed to infer returned types}}
  %0 = kiln.reduce_sum %a [1] : (tensor<?x10xf32>) -> tensor<?x1xf32>
  return
}

// -----

// a declared result element type that contradicts the inferred one.
func.func @a_declared_result_element_type_that_contradicts_the_inferred_one(%a: tensor<?x10xf32>) {
  // expected-error@+1 {{'kiln.argmax' op result #0 must be ranked tensor of 32-bit signless integer values, but got 'tensor<?xi64>'}}
  %0 = kiln.argmax %a axis 1 : (tensor<?x10xf32>) -> tensor<?xi64>
  return
}

// -----

// param: a dynamic shape.
func.func @param_a_dynamic_shape() {
  // expected-error@+1 {{'kiln.param' op parameter 'w' needs a static shape, got [?, 784]}}
  %0 = kiln.param "w" : tensor<?x784xf32> init #kiln.init<zeros>
  return
}

// -----

// param: an empty name.
func.func @param_an_empty_name() {
  // expected-error@+1 {{'kiln.param' op needs a non-empty name}}
  %0 = kiln.param "" : tensor<4xf32> init #kiln.init<zeros>
  return
}

// -----

// param: kaiming_uniform needs fans.
func.func @param_kaiming_uniform_needs_fans() {
  // expected-error@+1 {{'kiln.param' op initializer 'kaiming_uniform' of parameter 'l1.bias' needs a tensor of rank at least 2 to compute its fans}}
  %0 = kiln.param "l1.bias" : tensor<512xf32> init #kiln.init<kaiming_uniform>
  return
}

// -----

// param: xavier_normal needs fans.
func.func @param_xavier_normal_needs_fans() {
  // expected-error@+1 {{'kiln.param' op initializer 'xavier_normal' of parameter 's' needs a tensor of rank at least 2 to compute its fans}}
  %0 = kiln.param "s" : tensor<f32> init #kiln.init<xavier_normal(gain = 1.0)>
  return
}

// -----

// param: uniform with low > high.
func.func @param_uniform_with_low_high() {
  // expected-error@+1 {{'kiln.param' op uniform initializer of parameter 'w' has low > high}}
  %0 = kiln.param "w" : tensor<4xf32> init #kiln.init<uniform(low = 1.0, high = -1.0)>
  return
}

// -----

// param: normal with a negative std.
func.func @param_normal_with_a_negative_std() {
  // expected-error@+1 {{'kiln.param' op normal initializer of parameter 'w' has a negative std}}
  %0 = kiln.param "w" : tensor<4xf32> init #kiln.init<normal(std = -0.02)>
  return
}

// -----

// param: a negative gain.
func.func @param_a_negative_gain() {
  // expected-error@+1 {{'kiln.param' op initializer 'kaiming_normal' of parameter 'w' has a negative gain}}
  %0 = kiln.param "w" : tensor<4x4xf32> init #kiln.init<kaiming_normal(gain = -1.0)>
  return
}

// -----

// param: an integer element type.
func.func @param_an_integer_element_type() {
  // expected-error@+1 {{'kiln.param' op attribute 'type' failed to satisfy constraint: type attribute of ranked tensor of 16-bit float or bfloat16 type or 32-bit float or 64-bit float values}}
  %0 = kiln.param "w" : tensor<4xi32> init #kiln.init<zeros>
  return
}

// -----

// init: an unknown kind.
func.func @init_an_unknown_kind() {
  // expected-error@+1 {{unknown initializer 'glorot'; expected one of zeros, ones, constant, normal, uniform, kaiming_uniform, kaiming_normal, xavier_uniform, xavier_normal}}
  %0 = kiln.param "w" : tensor<4xf32> init #kiln.init<glorot>
  return
}

// -----

// init: an argument the kind does not have.
func.func @init_an_argument_the_kind_does_not_have() {
  // expected-error@+1 {{initializer 'normal' has no argument 'gain'}}
  %0 = kiln.param "w" : tensor<4xf32> init #kiln.init<normal(mean = 0.0, gain = 1.0)>
  return
}

// -----

// init: zeros takes no argument.
func.func @init_zeros_takes_no_argument() {
  // expected-error@+1 {{initializer 'zeros' has no argument 'value'}}
  %0 = kiln.param "w" : tensor<4xf32> init #kiln.init<zeros(value = 1.0)>
  return
}

// -----

// init: an argument given twice.
func.func @init_an_argument_given_twice() {
  // expected-error@+1 {{initializer 'uniform' has argument 'low' more than once}}
  %0 = kiln.param "w" : tensor<4xf32> init #kiln.init<uniform(low = 0.0, low = 1.0)>
  return
}

// -----

// attention: query and key feature sizes differ.
func.func @attention_feature_sizes_differ(%q: tensor<2x3x4xf32>, %k: tensor<2x5x8xf32>, %v: tensor<2x5x4xf32>) {
  // expected-error@+2 {{'attention' query [2, 3, 4] and key [2, 5, 8] have different feature sizes D}}
  // expected-error@+1 {{'kiln.attention' op failed to infer returned types}}
  %0:2 = kiln.attention %q, %k, %v scale 5.000000e-01 : (tensor<2x3x4xf32>, tensor<2x5x8xf32>, tensor<2x5x4xf32>) -> (tensor<2x3x4xf32>, tensor<2x3xf32>)
  return
}

// -----

// attention: keys and values of different lengths.
func.func @attention_key_value_lengths_differ(%q: tensor<3x4xf32>, %k: tensor<5x4xf32>, %v: tensor<6x4xf32>) {
  // expected-error@+2 {{'attention' key [5, 4] and value [6, 4] have different sequence lengths Tk}}
  // expected-error@+1 {{'kiln.attention' op failed to infer returned types}}
  %0:2 = kiln.attention %q, %k, %v scale 5.000000e-01 : (tensor<3x4xf32>, tensor<5x4xf32>, tensor<6x4xf32>) -> (tensor<3x4xf32>, tensor<3xf32>)
  return
}

// -----

// attention: a vector is not a sequence.
func.func @attention_rank_one(%q: tensor<4xf32>, %k: tensor<5x4xf32>, %v: tensor<5x4xf32>) {
  // expected-error@+2 {{'attention' needs query, key and value of rank at least 2 ([..., T, D]), got [4], [5, 4] and [5, 4]}}
  // expected-error@+1 {{'kiln.attention' op failed to infer returned types}}
  %0:2 = kiln.attention %q, %k, %v scale 5.000000e-01 : (tensor<4xf32>, tensor<5x4xf32>, tensor<5x4xf32>) -> (tensor<4xf32>, tensor<f32>)
  return
}

// -----

// attention: batch dimensions that do not broadcast.
func.func @attention_batch(%q: tensor<2x3x4xf32>, %k: tensor<3x5x4xf32>, %v: tensor<3x5x4xf32>) {
  // expected-error@+2 {{'attention' cannot broadcast the batch dimensions of [2, 3, 4], [3, 5, 4] and [3, 5, 4]}}
  // expected-error@+1 {{'kiln.attention' op failed to infer returned types}}
  %0:2 = kiln.attention %q, %k, %v scale 5.000000e-01 : (tensor<2x3x4xf32>, tensor<3x5x4xf32>, tensor<3x5x4xf32>) -> (tensor<2x3x4xf32>, tensor<2x3xf32>)
  return
}

// -----

// attention: one element type for all three operands.
func.func @attention_element_types(%q: tensor<3x4xf32>, %k: tensor<5x4xf64>, %v: tensor<5x4xf32>) {
  // expected-error@+2 {{'attention' query, key and value must have one element type, got 'f32', 'f64' and 'f32'}}
  // expected-error@+1 {{'kiln.attention' op failed to infer returned types}}
  %0:2 = kiln.attention %q, %k, %v scale 5.000000e-01 : (tensor<3x4xf32>, tensor<5x4xf64>, tensor<5x4xf32>) -> (tensor<3x4xf32>, tensor<3xf32>)
  return
}

// -----

// attention: the declared result must be [..., Tq, Dv].
func.func @attention_result_shape(%q: tensor<3x4xf32>, %k: tensor<5x4xf32>, %v: tensor<5x2xf32>) {
  // expected-error@+2 {{'kiln.attention' op inferred type(s) 'tensor<3x2xf32>', 'tensor<3xf32>' are incompatible with return type(s) of operation 'tensor<3x4xf32>', 'tensor<3xf32>'}}
  // expected-error@+1 {{'kiln.attention' op failed to infer returned types}}
  %0:2 = kiln.attention %q, %k, %v scale 5.000000e-01 : (tensor<3x4xf32>, tensor<5x4xf32>, tensor<5x2xf32>) -> (tensor<3x4xf32>, tensor<3xf32>)
  return
}

// -----

// attention_grad_q: the log-sum-exp must have the rows of the result.
func.func @attention_grad_lse_shape(%q: tensor<2x3x4xf32>, %g: tensor<2x3x4xf32>, %lse: tensor<2x4xf32>, %delta: tensor<2x3xf32>) {
  // expected-error@+2 {{'attention_grad_q' needs lse [2, 3] of 'f32', got [2, 4] of 'f32'}}
  // expected-error@+1 {{'kiln.attention_grad_q' op failed to infer returned types}}
  %0 = kiln.attention_grad_q %q, %q, %q, %g, %lse, %delta scale 5.000000e-01 : (tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x3x4xf32>, tensor<2x4xf32>, tensor<2x3xf32>) -> tensor<2x3x4xf32>
  return
}

// -----

// attention_grad_kv: the result gradient must have the result's shape
// [..., Tq, Dv].
func.func @attention_grad_grad_shape(%q: tensor<3x4xf32>, %k: tensor<5x4xf32>, %v: tensor<5x2xf32>, %g: tensor<3x4xf32>, %lse: tensor<3xf32>) {
  // expected-error@+2 {{'attention_grad_kv' needs grad [3, 2] of 'f32', got [3, 4] of 'f32'}}
  // expected-error@+1 {{'kiln.attention_grad_kv' op failed to infer returned types}}
  %0:2 = kiln.attention_grad_kv %q, %k, %v, %g, %lse, %lse scale 5.000000e-01 : (tensor<3x4xf32>, tensor<5x4xf32>, tensor<5x2xf32>, tensor<3x4xf32>, tensor<3xf32>, tensor<3xf32>) -> (tensor<5x4xf32>, tensor<5x2xf32>)
  return
}

// -----

// iota: the dimension must be one of the shape's.
func.func @iota_dimension_out_of_range() {
  // expected-error@+2 {{'iota' dimension 2 is out of range for shape [4, 4]}}
  // expected-error@+1 {{'kiln.iota' op failed to infer returned types}}
  %0 = kiln.iota [4, 4] dim 2 : tensor<4x4xi32>
  return
}

// -----

// iota: sizes are static and positive.
func.func @iota_size_zero() {
  // expected-error@+2 {{'iota' needs positive static sizes, got [0, 4]}}
  // expected-error@+1 {{'kiln.iota' op failed to infer returned types}}
  %0 = kiln.iota [0, 4] dim 0 : tensor<0x4xi32>
  return
}

// -----

// all_reduce: the runtime reduces buffers in place, so each tensor once.
func.func @all_reduce_twice(%g: tensor<4xf32>) {
  // expected-error@+1 {{'kiln.all_reduce' op reduces a tensor twice}}
  %0:2 = kiln.all_reduce mean %g, %g : tensor<4xf32>, tensor<4xf32>
  return
}

// -----

func.func @all_reduce_nothing() {
  // expected-error@+1 {{'kiln.all_reduce' op needs at least one tensor to reduce}}
  "kiln.all_reduce"() <{kind = 1 : i32}> : () -> ()
  return
}

// -----

func.func @all_reduce_integers(%g: tensor<4xi32>) {
  // expected-error@+1 {{'kiln.all_reduce' op operand #0 must be variadic of ranked tensor of 16-bit float or bfloat16 type or 32-bit float or 64-bit float values, but got 'tensor<4xi32>'}}
  %0 = kiln.all_reduce sum %g : tensor<4xi32>
  return
}
