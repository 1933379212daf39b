// kiln-decompose: composites become primitives; every other op is untouched.
// RUN: kiln-opt %s -split-input-file --kiln-decompose | FileCheck %s

// linear with a bias: a matmul against the transposed weight, then a
// broadcast add of the bias.
// CHECK-LABEL: func.func @linear_bias
// CHECK-SAME: (%[[X:.+]]: tensor<?x784xf32>, %[[W:.+]]: tensor<512x784xf32>, %[[B:.+]]: tensor<512xf32>)
// CHECK-NEXT: %[[M:.+]] = kiln.matmul %[[X]], %[[W]] transpose_rhs : (tensor<?x784xf32>, tensor<512x784xf32>) -> tensor<?x512xf32>
// CHECK-NEXT: %[[Y:.+]] = kiln.add %[[M]], %[[B]] : (tensor<?x512xf32>, tensor<512xf32>) -> tensor<?x512xf32>
// CHECK-NEXT: return %[[Y]] : tensor<?x512xf32>
func.func @linear_bias(%x: tensor<?x784xf32>, %w: tensor<512x784xf32>, %b: tensor<512xf32>) -> tensor<?x512xf32> {
  %0 = kiln.linear %x, %w, %b : (tensor<?x784xf32>, tensor<512x784xf32>, tensor<512xf32>) -> tensor<?x512xf32>
  return %0 : tensor<?x512xf32>
}

// -----

// linear without a bias is the matmul alone.
// CHECK-LABEL: func.func @linear_no_bias
// CHECK-SAME: (%[[X:.+]]: tensor<8x4xf64>, %[[W:.+]]: tensor<3x4xf64>)
// CHECK-NEXT: %[[M:.+]] = kiln.matmul %[[X]], %[[W]] transpose_rhs : (tensor<8x4xf64>, tensor<3x4xf64>) -> tensor<8x3xf64>
// CHECK-NEXT: return %[[M]] : tensor<8x3xf64>
func.func @linear_no_bias(%x: tensor<8x4xf64>, %w: tensor<3x4xf64>) -> tensor<8x3xf64> {
  %0 = kiln.linear %x, %w : (tensor<8x4xf64>, tensor<3x4xf64>) -> tensor<8x3xf64>
  return %0 : tensor<8x3xf64>
}

// -----

// linear on a vector: reshaped to one row for the matmul and back.
// CHECK-LABEL: func.func @linear_vector
// CHECK-SAME: (%[[X:.+]]: tensor<784xf32>, %[[W:.+]]: tensor<10x784xf32>, %[[B:.+]]: tensor<10xf32>)
// CHECK-NEXT: %[[R:.+]] = kiln.reshape %[[X]] [1, -1] : (tensor<784xf32>) -> tensor<1x784xf32>
// CHECK-NEXT: %[[M:.+]] = kiln.matmul %[[R]], %[[W]] transpose_rhs : (tensor<1x784xf32>, tensor<10x784xf32>) -> tensor<1x10xf32>
// CHECK-NEXT: %[[V:.+]] = kiln.reshape %[[M]] [-1] : (tensor<1x10xf32>) -> tensor<10xf32>
// CHECK-NEXT: %[[Y:.+]] = kiln.add %[[V]], %[[B]] : (tensor<10xf32>, tensor<10xf32>) -> tensor<10xf32>
// CHECK-NEXT: return %[[Y]] : tensor<10xf32>
func.func @linear_vector(%x: tensor<784xf32>, %w: tensor<10x784xf32>, %b: tensor<10xf32>) -> tensor<10xf32> {
  %0 = kiln.linear %x, %w, %b : (tensor<784xf32>, tensor<10x784xf32>, tensor<10xf32>) -> tensor<10xf32>
  return %0 : tensor<10xf32>
}

// -----

// linear on a vector of unknown size: the reshape keeps it dynamic.
// CHECK-LABEL: func.func @linear_dynamic_vector
// CHECK-SAME: (%[[X:.+]]: tensor<?xf32>, %[[W:.+]]: tensor<8x?xf32>)
// CHECK-NEXT: %[[R:.+]] = kiln.reshape %[[X]] [1, -1] : (tensor<?xf32>) -> tensor<1x?xf32>
// CHECK-NEXT: %[[M:.+]] = kiln.matmul %[[R]], %[[W]] transpose_rhs : (tensor<1x?xf32>, tensor<8x?xf32>) -> tensor<1x8xf32>
// CHECK-NEXT: %[[V:.+]] = kiln.reshape %[[M]] [-1] : (tensor<1x8xf32>) -> tensor<8xf32>
// CHECK-NEXT: return %[[V]] : tensor<8xf32>
func.func @linear_dynamic_vector(%x: tensor<?xf32>, %w: tensor<8x?xf32>) -> tensor<8xf32> {
  %0 = kiln.linear %x, %w : (tensor<?xf32>, tensor<8x?xf32>) -> tensor<8xf32>
  return %0 : tensor<8xf32>
}

// -----

// linear on a sequence batch: the leading dimensions pass through the matmul.
// CHECK-LABEL: func.func @linear_rank3
// CHECK-SAME: (%[[X:.+]]: tensor<?x256x384xf32>, %[[W:.+]]: tensor<1536x384xf32>, %[[B:.+]]: tensor<1536xf32>)
// CHECK-NEXT: %[[M:.+]] = kiln.matmul %[[X]], %[[W]] transpose_rhs : (tensor<?x256x384xf32>, tensor<1536x384xf32>) -> tensor<?x256x1536xf32>
// CHECK-NEXT: %[[Y:.+]] = kiln.add %[[M]], %[[B]] : (tensor<?x256x1536xf32>, tensor<1536xf32>) -> tensor<?x256x1536xf32>
// CHECK-NEXT: return %[[Y]] : tensor<?x256x1536xf32>
func.func @linear_rank3(%x: tensor<?x256x384xf32>, %w: tensor<1536x384xf32>, %b: tensor<1536xf32>) -> tensor<?x256x1536xf32> {
  %0 = kiln.linear %x, %w, %b : (tensor<?x256x384xf32>, tensor<1536x384xf32>, tensor<1536xf32>) -> tensor<?x256x1536xf32>
  return %0 : tensor<?x256x1536xf32>
}

// -----

// A declared linear type that knows more than its operands is kept, so the
// users of the result (here the return) still type-check.
// CHECK-LABEL: func.func @linear_declared_type
// CHECK-NEXT: %[[M:.+]] = kiln.matmul {{.*}} -> tensor<2x8xf32>
// CHECK-NEXT: return %[[M]] : tensor<2x8xf32>
func.func @linear_declared_type(%x: tensor<?x4xf32>, %w: tensor<8x4xf32>) -> tensor<2x8xf32> {
  %0 = kiln.linear %x, %w : (tensor<?x4xf32>, tensor<8x4xf32>) -> tensor<2x8xf32>
  return %0 : tensor<2x8xf32>
}

// -----

// accuracy with i32 labels: argmax (i32) compared directly with the labels.
// CHECK-LABEL: func.func @accuracy_i32
// CHECK-SAME: (%[[L:.+]]: tensor<?x10xf32>, %[[Y:.+]]: tensor<?xi32>)
// CHECK-NEXT: %[[P:.+]] = kiln.argmax %[[L]] axis -1 : (tensor<?x10xf32>) -> tensor<?xi32>
// CHECK-NEXT: %[[C:.+]] = kiln.cmp eq, %[[P]], %[[Y]] : (tensor<?xi32>, tensor<?xi32>) -> tensor<?xi1>
// CHECK-NEXT: %[[F:.+]] = kiln.cast %[[C]] : tensor<?xi1> to f32
// CHECK-NEXT: %[[A:.+]] = kiln.reduce_mean %[[F]] [] : (tensor<?xf32>) -> tensor<f32>
// CHECK-NEXT: return %[[A]] : tensor<f32>
func.func @accuracy_i32(%logits: tensor<?x10xf32>, %label: tensor<?xi32>) -> tensor<f32> {
  %0 = kiln.accuracy %logits, %label : (tensor<?x10xf32>, tensor<?xi32>) -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

// accuracy with i64 labels over a sequence: the prediction is cast to i64
// first, the mean is over every label position and in the logits' float type.
// CHECK-LABEL: func.func @accuracy_i64
// CHECK-SAME: (%[[L:.+]]: tensor<4x256x65xf64>, %[[Y:.+]]: tensor<4x256xi64>)
// CHECK-NEXT: %[[P:.+]] = kiln.argmax %[[L]] axis -1 : (tensor<4x256x65xf64>) -> tensor<4x256xi32>
// CHECK-NEXT: %[[P64:.+]] = kiln.cast %[[P]] : tensor<4x256xi32> to i64
// CHECK-NEXT: %[[C:.+]] = kiln.cmp eq, %[[P64]], %[[Y]] : (tensor<4x256xi64>, tensor<4x256xi64>) -> tensor<4x256xi1>
// CHECK-NEXT: %[[F:.+]] = kiln.cast %[[C]] : tensor<4x256xi1> to f64
// CHECK-NEXT: %[[A:.+]] = kiln.reduce_mean %[[F]] [] : (tensor<4x256xf64>) -> tensor<f64>
// CHECK-NEXT: return %[[A]] : tensor<f64>
func.func @accuracy_i64(%logits: tensor<4x256x65xf64>, %label: tensor<4x256xi64>) -> tensor<f64> {
  %0 = kiln.accuracy %logits, %label : (tensor<4x256x65xf64>, tensor<4x256xi64>) -> tensor<f64>
  return %0 : tensor<f64>
}

// -----

// Primitives are left alone, not even folded: the constant add and the unused
// op stay.
// CHECK-LABEL: func.func @untouched
// CHECK-NEXT: %[[C:.+]] = kiln.constant dense<1.000000e+00> : tensor<f32>
// CHECK-NEXT: %[[S:.+]] = kiln.add %[[C]], %[[C]] : (tensor<f32>, tensor<f32>) -> tensor<f32>
// CHECK-NEXT: kiln.relu %{{.+}} : tensor<?x4xf32>
// CHECK-NEXT: %[[E:.+]] = kiln.cross_entropy %{{.+}}, %{{.+}} : (tensor<?x4xf32>, tensor<?xi32>) -> tensor<f32>
// CHECK-NEXT: %[[T:.+]] = kiln.mul %[[E]], %[[S]] : (tensor<f32>, tensor<f32>) -> tensor<f32>
// CHECK-NEXT: return %[[T]] : tensor<f32>
func.func @untouched(%x: tensor<?x4xf32>, %y: tensor<?xi32>) -> tensor<f32> {
  %c = kiln.constant dense<1.0> : tensor<f32>
  %s = kiln.add %c, %c : (tensor<f32>, tensor<f32>) -> tensor<f32>
  %unused = kiln.relu %x : tensor<?x4xf32>
  %e = kiln.cross_entropy %x, %y : (tensor<?x4xf32>, tensor<?xi32>) -> tensor<f32>
  %t = kiln.mul %e, %s : (tensor<f32>, tensor<f32>) -> tensor<f32>
  return %t : tensor<f32>
}

// -----

// attention is a primitive with fused kernels of its own: left in place.
// CHECK-LABEL: func.func @attention
// CHECK-NEXT: kiln.attention %{{.+}}, %{{.+}}, %{{.+}} causal scale 5.000000e-01
// CHECK-NEXT: return
func.func @attention(%q: tensor<2x3x4xf32>, %k: tensor<2x5x4xf32>, %v: tensor<2x5x4xf32>) -> tensor<2x3x4xf32> {
  %0:2 = kiln.attention %q, %k, %v causal scale 5.000000e-01 : (tensor<2x3x4xf32>, tensor<2x5x4xf32>, tensor<2x5x4xf32>) -> (tensor<2x3x4xf32>, tensor<2x3xf32>)
  return %0#0 : tensor<2x3x4xf32>
}
