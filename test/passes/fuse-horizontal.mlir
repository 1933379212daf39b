// RUN: kiln-opt %s -split-input-file --kiln-fuse-horizontal | FileCheck %s
// RUN: kiln-opt %s -split-input-file --kiln-fuse-horizontal | kiln-opt -split-input-file | FileCheck %s
// RUN: kiln-opt %s -split-input-file --kiln-fuse-horizontal=levels=1 | FileCheck %s --check-prefix=ONE

// Independent updates of different shapes and the step counter, read only
// by the return, become the segments of one horizontal kernel at the end;
// its operands are their inputs, each once, its results theirs in order.
// CHECK-LABEL: func.func @updates
// CHECK: %[[H:.+]]:3 = kiln.kernel "horizontal_mul_sub_add" horizontal (%arg0, %arg1, %arg2, %arg3, %arg4) : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<8xf32>, tensor<8xf32>, tensor<i64>) -> (tensor<4x8xf32>, tensor<8xf32>, tensor<i64>) {
// CHECK-NEXT: ^bb0(%[[W:.+]]: tensor<4x8xf32>, %[[GW:.+]]: tensor<4x8xf32>, %[[B:.+]]: tensor<8xf32>, %[[GB:.+]]: tensor<8xf32>, %[[S:.+]]: tensor<i64>):
// CHECK-NEXT: %[[K0:.+]] = kiln.kernel "mul_sub" elementwise (%[[W]], %[[GW]]) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32> {
// CHECK: %[[K1:.+]] = kiln.kernel "mul_sub" elementwise (%[[B]], %[[GB]]) : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32> {
// CHECK: %[[K2:.+]] = kiln.kernel "add" elementwise (%[[S]]) : (tensor<i64>) -> tensor<i64> {
// CHECK: kiln.yield %[[K0]], %[[K1]], %[[K2]] : tensor<4x8xf32>, tensor<8xf32>, tensor<i64>
// CHECK-NEXT: }
// CHECK-NEXT: return %[[H]]#0, %[[H]]#1, %[[H]]#2
func.func @updates(%w: tensor<4x8xf32>, %gw: tensor<4x8xf32>, %b: tensor<8xf32>, %gb: tensor<8xf32>, %step: tensor<i64>) -> (tensor<4x8xf32>, tensor<8xf32>, tensor<i64>) {
  %0 = kiln.kernel "mul_sub" elementwise (%w, %gw) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%a: tensor<4x8xf32>, %g: tensor<4x8xf32>):
    %c = kiln.constant dense<0.1> : tensor<f32>
    %m = kiln.mul %c, %g : (tensor<f32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %s = kiln.sub %a, %m : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    kiln.yield %s : tensor<4x8xf32>
  }
  %1 = kiln.kernel "mul_sub" elementwise (%b, %gb) : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%a: tensor<8xf32>, %g: tensor<8xf32>):
    %c = kiln.constant dense<0.1> : tensor<f32>
    %m = kiln.mul %c, %g : (tensor<f32>, tensor<8xf32>) -> tensor<8xf32>
    %s = kiln.sub %a, %m : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
    kiln.yield %s : tensor<8xf32>
  }
  %2 = kiln.kernel "add" elementwise (%step) : (tensor<i64>) -> tensor<i64> {
  ^bb0(%s: tensor<i64>):
    %one = kiln.constant dense<1> : tensor<i64>
    %n = kiln.add %s, %one : (tensor<i64>, tensor<i64>) -> tensor<i64>
    kiln.yield %n : tensor<i64>
  }
  return %0, %1, %2 : tensor<4x8xf32>, tensor<8xf32>, tensor<i64>
}

// -----

// A kernel that reads another's result never shares a horizontal kernel
// with it: the reader merges with the independent update at the end, and
// the producer, now alone, stays where it was.
// CHECK-LABEL: func.func @dependent
// CHECK: %[[A:.+]] = kiln.kernel "neg" elementwise (%arg0)
// CHECK: %[[H:.+]]:2 = kiln.kernel "horizontal_exp_tanh" horizontal (%[[A]], %arg1)
// CHECK: kiln.kernel "exp" elementwise
// CHECK: kiln.kernel "tanh" elementwise
// CHECK: kiln.yield %{{.+}}, %{{.+}} : tensor<16xf32>, tensor<4xf32>
// CHECK-NEXT: }
// CHECK-NEXT: return %[[H]]#0, %[[H]]#1
func.func @dependent(%x: tensor<16xf32>, %y: tensor<4xf32>) -> (tensor<16xf32>, tensor<4xf32>) {
  %0 = kiln.kernel "neg" elementwise (%x) : (tensor<16xf32>) -> tensor<16xf32> {
  ^bb0(%a: tensor<16xf32>):
    %r = kiln.neg %a : tensor<16xf32>
    kiln.yield %r : tensor<16xf32>
  }
  %1 = kiln.kernel "exp" elementwise (%0) : (tensor<16xf32>) -> tensor<16xf32> {
  ^bb0(%a: tensor<16xf32>):
    %r = kiln.exp %a : tensor<16xf32>
    kiln.yield %r : tensor<16xf32>
  }
  %2 = kiln.kernel "tanh" elementwise (%y) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4xf32>):
    %r = kiln.tanh %a : tensor<4xf32>
    kiln.yield %r : tensor<4xf32>
  }
  return %1, %2 : tensor<16xf32>, tensor<4xf32>
}

// -----

// Only elementwise kernels merge: a reduction at the end stays a kernel of
// its own, and one elementwise kernel alone has nothing to merge with.
// CHECK-LABEL: func.func @not_elementwise
// CHECK-NOT: horizontal
// CHECK: kiln.kernel "reduce_sum" reduction
// CHECK: kiln.kernel "neg" elementwise
// CHECK-NOT: horizontal
// CHECK: return
func.func @not_elementwise(%x: tensor<4x8xf32>, %y: tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>) {
  %0 = kiln.kernel "reduce_sum" reduction (%x) : (tensor<4x8xf32>) -> tensor<8xf32> {
  ^bb0(%a: tensor<4x8xf32>):
    %r = kiln.reduce_sum %a [0] : (tensor<4x8xf32>) -> tensor<8xf32>
    kiln.yield %r : tensor<8xf32>
  }
  %1 = kiln.kernel "neg" elementwise (%y) : (tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%a: tensor<8xf32>):
    %r = kiln.neg %a : tensor<8xf32>
    kiln.yield %r : tensor<8xf32>
  }
  return %0, %1 : tensor<8xf32>, tensor<8xf32>
}

// -----

// An elementwise kernel read by a later kernel (a GEMM) cannot move to the
// end; only the two read by the return merge, at the end.
// CHECK-LABEL: func.func @read_later
// CHECK: %[[R:.+]] = kiln.kernel "relu" elementwise (%arg0)
// CHECK: kiln.kernel "matmul" matmul (%[[R]], %arg1)
// CHECK: kiln.kernel "horizontal_neg_exp" horizontal (%arg1, %arg0)
// CHECK: return
func.func @read_later(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>) -> (tensor<8x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>) {
  %0 = kiln.kernel "relu" elementwise (%x) : (tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%a: tensor<4x8xf32>):
    %r = kiln.relu %a : tensor<4x8xf32>
    kiln.yield %r : tensor<4x8xf32>
  }
  %1 = kiln.kernel "neg" elementwise (%w) : (tensor<8x8xf32>) -> tensor<8x8xf32> {
  ^bb0(%a: tensor<8x8xf32>):
    %r = kiln.neg %a : tensor<8x8xf32>
    kiln.yield %r : tensor<8x8xf32>
  }
  %2 = kiln.kernel "matmul" matmul (%0, %w) : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%a: tensor<4x8xf32>, %b: tensor<8x8xf32>):
    %r = kiln.matmul %a, %b : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
    kiln.yield %r : tensor<4x8xf32>
  }
  %3 = kiln.kernel "exp" elementwise (%x) : (tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%a: tensor<4x8xf32>):
    %r = kiln.exp %a : tensor<4x8xf32>
    kiln.yield %r : tensor<4x8xf32>
  }
  return %1, %2, %3 : tensor<8x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// Kernels over a dynamic shape are left alone (code generation lays the
// segments out by their static sizes).
// CHECK-LABEL: func.func @dynamic
// CHECK-NOT: horizontal
// CHECK: return
func.func @dynamic(%x: tensor<?x8xf32>, %y: tensor<8xf32>) -> (tensor<?x8xf32>, tensor<8xf32>) {
  %0 = kiln.kernel "neg" elementwise (%x) : (tensor<?x8xf32>) -> tensor<?x8xf32> {
  ^bb0(%a: tensor<?x8xf32>):
    %r = kiln.neg %a : tensor<?x8xf32>
    kiln.yield %r : tensor<?x8xf32>
  }
  %1 = kiln.kernel "neg" elementwise (%y) : (tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%a: tensor<8xf32>):
    %r = kiln.neg %a : tensor<8xf32>
    kiln.yield %r : tensor<8xf32>
  }
  return %0, %1 : tensor<?x8xf32>, tensor<8xf32>
}

// -----

// Chains of update kernels (AdamW's) peel level by level: the last kernel
// of each chain at the end, the ones they read just before; with levels=1
// only the last level merges.
// CHECK-LABEL: func.func @chains
// CHECK: %[[L1:.+]]:2 = kiln.kernel "horizontal_mul" horizontal (%arg0, %arg1)
// CHECK: %[[L0:.+]]:2 = kiln.kernel "horizontal_sub" horizontal (%arg0, %[[L1]]#0, %arg1, %[[L1]]#1)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.kernel "sub" elementwise
// CHECK: return %[[L0]]#0, %[[L0]]#1
// ONE-LABEL: func.func @chains
// ONE: kiln.kernel "mul" elementwise (%arg0)
// ONE: kiln.kernel "mul" elementwise (%arg1)
// ONE: kiln.kernel "horizontal_sub" horizontal
// ONE: return
func.func @chains(%a: tensor<16xf32>, %b: tensor<4xf32>) -> (tensor<16xf32>, tensor<4xf32>) {
  %0 = kiln.kernel "mul" elementwise (%a) : (tensor<16xf32>) -> tensor<16xf32> {
  ^bb0(%x: tensor<16xf32>):
    %r = kiln.mul %x, %x : (tensor<16xf32>, tensor<16xf32>) -> tensor<16xf32>
    kiln.yield %r : tensor<16xf32>
  }
  %1 = kiln.kernel "sub" elementwise (%a, %0) : (tensor<16xf32>, tensor<16xf32>) -> tensor<16xf32> {
  ^bb0(%x: tensor<16xf32>, %y: tensor<16xf32>):
    %r = kiln.sub %x, %y : (tensor<16xf32>, tensor<16xf32>) -> tensor<16xf32>
    kiln.yield %r : tensor<16xf32>
  }
  %2 = kiln.kernel "mul" elementwise (%b) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%x: tensor<4xf32>):
    %r = kiln.mul %x, %x : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    kiln.yield %r : tensor<4xf32>
  }
  %3 = kiln.kernel "sub" elementwise (%b, %2) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%x: tensor<4xf32>, %y: tensor<4xf32>):
    %r = kiln.sub %x, %y : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    kiln.yield %r : tensor<4xf32>
  }
  return %1, %3 : tensor<16xf32>, tensor<4xf32>
}
