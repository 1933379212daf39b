// RUN: kiln-opt %s -split-input-file --kiln-fuse | FileCheck %s
// RUN: kiln-opt %s -split-input-file --kiln-fuse | kiln-opt -split-input-file | FileCheck %s

// An elementwise chain is one kernel; the broadcast bias is an input, the
// scalar constant is cloned into the kernel.
// CHECK-LABEL: func.func @chain
// CHECK: %[[K:.+]] = kiln.kernel "add_mul_tanh" elementwise (%arg0, %arg1) : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32> {
// CHECK-NEXT: ^bb0(%[[X:.+]]: tensor<4x8xf32>, %[[Y:.+]]: tensor<8xf32>):
// CHECK-NEXT: %[[C:.+]] = kiln.constant dense<2.000000e+00>
// CHECK-NEXT: %[[A:.+]] = kiln.add %[[X]], %[[Y]]
// CHECK-NEXT: %[[M:.+]] = kiln.mul %[[A]], %[[C]]
// CHECK-NEXT: %[[T:.+]] = kiln.tanh %[[M]]
// CHECK-NEXT: kiln.yield %[[T]]
// CHECK: return %[[K]]
func.func @chain(%x: tensor<4x8xf32>, %y: tensor<8xf32>) -> tensor<4x8xf32> {
  %c = kiln.constant dense<2.0> : tensor<f32>
  %0 = kiln.add %x, %y : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %1 = kiln.mul %0, %c : (tensor<4x8xf32>, tensor<f32>) -> tensor<4x8xf32>
  %2 = kiln.tanh %1 : tensor<4x8xf32>
  return %2 : tensor<4x8xf32>
}

// -----

// A matmul takes its bias and activation as an epilogue; the pre-activation
// read outside the kernel is a second result (multi-output), not recomputed.
// CHECK-LABEL: func.func @epilogue
// CHECK: %[[K:.+]]:2 = kiln.kernel "matmul_add_relu" matmul (%arg0, %arg1, %arg2)
// CHECK: %[[MM:.+]] = kiln.matmul
// CHECK-NEXT: %[[ADD:.+]] = kiln.add %[[MM]]
// CHECK-NEXT: %[[RELU:.+]] = kiln.relu %[[ADD]]
// CHECK-NEXT: kiln.yield %[[ADD]], %[[RELU]]
// CHECK: return %[[K]]#0, %[[K]]#1
func.func @epilogue(%x: tensor<?x16xf32>, %w: tensor<8x16xf32>, %b: tensor<8xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  %0 = kiln.matmul %x, %w transpose_rhs : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
  %1 = kiln.add %0, %b : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  %2 = kiln.relu %1 : tensor<?x8xf32>
  return %1, %2 : tensor<?x8xf32>, tensor<?x8xf32>
}

// -----

// A reduction absorbs the elementwise producer that only it reads (a
// prologue) and its elementwise consumer (an epilogue): log-sum-exp in one
// kernel.
// CHECK-LABEL: func.func @prologue
// CHECK: kiln.kernel "exp_reduce_sum_log" reduction (%arg0)
// CHECK-NOT: kiln.kernel
// CHECK: return
func.func @prologue(%x: tensor<4x8xf32>) -> tensor<4xf32> {
  %0 = kiln.exp %x : tensor<4x8xf32>
  %1 = kiln.reduce_sum %0 [1] : (tensor<4x8xf32>) -> tensor<4xf32>
  %2 = kiln.log %1 : tensor<4xf32>
  return %2 : tensor<4xf32>
}

// -----

// Must not fuse: a reduction result needed by two consumers that end up in
// different kernels (one of another shape) is materialized once and read by
// both, never recomputed.
// CHECK-LABEL: func.func @shared
// CHECK: %[[R:.+]] = kiln.kernel "reduce_max" reduction (%arg0)
// CHECK: kiln.kernel "sub" elementwise (%arg0, %[[R]])
// CHECK: kiln.kernel "mul" elementwise (%[[R]])
func.func @shared(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x1xf32>) {
  %c = kiln.constant dense<2.0> : tensor<f32>
  %r = kiln.reduce_max %x [1] keepdims : (tensor<4x8xf32>) -> tensor<4x1xf32>
  %y1 = kiln.sub %x, %r : (tensor<4x8xf32>, tensor<4x1xf32>) -> tensor<4x8xf32>
  %y2 = kiln.mul %r, %c : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  return %y1, %y2 : tensor<4x8xf32>, tensor<4x1xf32>
}

// -----

// Must not fuse: %d cannot join %a's kernel, since its other operand (the
// matmul) is computed from %a; it becomes the matmul's epilogue instead.
// CHECK-LABEL: func.func @cycle
// CHECK: %[[E:.+]] = kiln.kernel "exp" elementwise (%arg0)
// CHECK: kiln.kernel "matmul_add" matmul (%[[E]], %arg1)
func.func @cycle(%x: tensor<4x4xf32>, %w: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %a = kiln.exp %x : tensor<4x4xf32>
  %m = kiln.matmul %a, %w : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  %d = kiln.add %a, %m : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  return %d : tensor<4x4xf32>
}

// -----

// Opaque ops (layout changes, convolutions) are kernels of their own and
// take no epilogue; parameters stay outside every kernel.
// CHECK-LABEL: func.func @opaque
// CHECK: %[[W:.+]] = kiln.param "w"
// CHECK: %[[T:.+]] = kiln.kernel "transpose" opaque (%[[W]])
// CHECK: kiln.kernel "neg" elementwise (%[[T]])
func.func @opaque() -> tensor<3x2xf32> {
  %w = kiln.param "w" : tensor<2x3xf32> init #kiln.init<zeros>
  %t = kiln.transpose %w [1, 0] : (tensor<2x3xf32>) -> tensor<3x2xf32>
  %n = kiln.neg %t : tensor<3x2xf32>
  return %n : tensor<3x2xf32>
}

// -----

// Scalar arithmetic on arguments and constants alone (the optimizer's
// learning rate) is recomputed in each kernel that reads it, not a kernel
// of its own; a scalar the function returns is computed by a kernel, and
// scalars computed from it are read from that kernel, not recomputed.
// CHECK-LABEL: func.func @recomputed_scalars
// CHECK: %[[A:.+]] = kiln.kernel "mul_sub" elementwise (%arg1, %arg2, %arg0)
// CHECK-NEXT: ^bb0(%[[LR:.+]]: tensor<f64>, %[[G:.+]]: tensor<3xf32>, %[[W:.+]]: tensor<3xf32>):
// CHECK-NEXT: %[[HALF:.+]] = kiln.constant dense<5.000000e-01> : tensor<f64>
// CHECK-NEXT: %[[SCALED:.+]] = kiln.mul %[[LR]], %[[HALF]]
// CHECK-NEXT: %[[CAST:.+]] = kiln.cast %[[SCALED]] : tensor<f64> to f32
// CHECK-NEXT: kiln.mul %[[CAST]], %[[G]]
// CHECK: %[[B:.+]] = kiln.kernel "mul_sub" elementwise (%arg1, %arg4, %arg3)
// CHECK: kiln.cast
// CHECK: %[[STEP:.+]]:2 = kiln.kernel "add_cast" elementwise (%arg5)
// CHECK: return %[[A]], %[[B]], %[[STEP]]#0, %[[STEP]]#1
func.func @recomputed_scalars(%w: tensor<3xf32>, %lr: tensor<f64>, %g: tensor<3xf32>, %v: tensor<5xf32>, %h: tensor<5xf32>, %step: tensor<i64>) -> (tensor<3xf32>, tensor<5xf32>, tensor<i64>, tensor<f64>) {
  %half = kiln.constant dense<0.5> : tensor<f64>
  %one = kiln.constant dense<1> : tensor<i64>
  %scaled = kiln.mul %lr, %half : (tensor<f64>, tensor<f64>) -> tensor<f64>
  %lr32 = kiln.cast %scaled : tensor<f64> to f32
  %d1 = kiln.mul %lr32, %g : (tensor<f32>, tensor<3xf32>) -> tensor<3xf32>
  %w1 = kiln.sub %w, %d1 : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %d2 = kiln.mul %lr32, %h : (tensor<f32>, tensor<5xf32>) -> tensor<5xf32>
  %v1 = kiln.sub %v, %d2 : (tensor<5xf32>, tensor<5xf32>) -> tensor<5xf32>
  %next = kiln.add %step, %one : (tensor<i64>, tensor<i64>) -> tensor<i64>
  %t = kiln.cast %next : tensor<i64> to f64
  return %w1, %v1, %next, %t : tensor<3xf32>, tensor<5xf32>, tensor<i64>, tensor<f64>
}
