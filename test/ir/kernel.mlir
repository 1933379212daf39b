// RUN: kiln-opt %s -split-input-file -verify-diagnostics | FileCheck %s
// RUN: kiln-opt %s -split-input-file -verify-diagnostics | kiln-opt -split-input-file | FileCheck %s

// A kernel with two inputs and two results round-trips.
// CHECK-LABEL: func.func @kernel
// CHECK: %[[K:.+]]:2 = kiln.kernel "add_relu" elementwise (%arg0, %arg1) : (tensor<?x4xf32>, tensor<4xf32>) -> (tensor<?x4xf32>, tensor<?x4xf32>) {
// CHECK-NEXT: ^bb0(%[[A:.+]]: tensor<?x4xf32>, %[[B:.+]]: tensor<4xf32>):
// CHECK-NEXT: %[[S:.+]] = kiln.add %[[A]], %[[B]]
// CHECK-NEXT: %[[R:.+]] = kiln.relu %[[S]]
// CHECK-NEXT: kiln.yield %[[S]], %[[R]] : tensor<?x4xf32>, tensor<?x4xf32>
func.func @kernel(%x: tensor<?x4xf32>, %b: tensor<4xf32>) -> tensor<?x4xf32> {
  %k:2 = kiln.kernel "add_relu" elementwise (%x, %b) : (tensor<?x4xf32>, tensor<4xf32>) -> (tensor<?x4xf32>, tensor<?x4xf32>) {
  ^bb0(%a: tensor<?x4xf32>, %c: tensor<4xf32>):
    %0 = kiln.add %a, %c : (tensor<?x4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
    %1 = kiln.relu %0 : tensor<?x4xf32>
    kiln.yield %0, %1 : tensor<?x4xf32>, tensor<?x4xf32>
  }
  return %k#1 : tensor<?x4xf32>
}

// -----

func.func @bad_yield(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error@+1 {{'kiln.kernel' op yields 1 values whose types differ from the kernel's results}}
  %k = kiln.kernel "neg" elementwise (%x) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4xf32>):
    %0 = kiln.reduce_sum %a [] : (tensor<4xf32>) -> tensor<f32>
    kiln.yield %0 : tensor<f32>
  }
  return %k : tensor<4xf32>
}

// -----

func.func @bad_arguments(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error@+1 {{'kiln.kernel' op region arguments must have the types of the inputs}}
  %k = kiln.kernel "neg" elementwise (%x) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<8xf32>):
    %0 = kiln.neg %x : tensor<4xf32>
    kiln.yield %0 : tensor<4xf32>
  }
  return %k : tensor<4xf32>
}

// -----

func.func @bad_kind(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error@+1 {{unknown kernel kind 'sparse'}}
  %k = kiln.kernel "neg" sparse (%x) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4xf32>):
    kiln.yield %a : tensor<4xf32>
  }
  return %k : tensor<4xf32>
}

// -----

// A horizontal kernel holds elementwise kernels of their own shapes.
// CHECK-LABEL: func.func @horizontal
// CHECK: %[[H:.+]]:2 = kiln.kernel "horizontal_neg_exp" horizontal (%arg0, %arg1) : (tensor<4x8xf32>, tensor<3xf32>) -> (tensor<4x8xf32>, tensor<3xf32>) {
// CHECK: kiln.kernel "neg" elementwise
// CHECK: kiln.kernel "exp" elementwise
// CHECK: return %[[H]]#0, %[[H]]#1
func.func @horizontal(%x: tensor<4x8xf32>, %y: tensor<3xf32>) -> (tensor<4x8xf32>, tensor<3xf32>) {
  %k:2 = kiln.kernel "horizontal_neg_exp" horizontal (%x, %y) : (tensor<4x8xf32>, tensor<3xf32>) -> (tensor<4x8xf32>, tensor<3xf32>) {
  ^bb0(%a: tensor<4x8xf32>, %b: tensor<3xf32>):
    %0 = kiln.kernel "neg" elementwise (%a) : (tensor<4x8xf32>) -> tensor<4x8xf32> {
    ^bb0(%c: tensor<4x8xf32>):
      %r = kiln.neg %c : tensor<4x8xf32>
      kiln.yield %r : tensor<4x8xf32>
    }
    %1 = kiln.kernel "exp" elementwise (%b) : (tensor<3xf32>) -> tensor<3xf32> {
    ^bb0(%c: tensor<3xf32>):
      %r = kiln.exp %c : tensor<3xf32>
      kiln.yield %r : tensor<3xf32>
    }
    kiln.yield %0, %1 : tensor<4x8xf32>, tensor<3xf32>
  }
  return %k#0, %k#1 : tensor<4x8xf32>, tensor<3xf32>
}

// -----

func.func @horizontal_holds_an_op(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error@+1 {{'kiln.kernel' op a horizontal kernel holds only elementwise kernels, not 'kiln.neg'}}
  %k = kiln.kernel "neg" horizontal (%x) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4xf32>):
    %0 = kiln.neg %a : tensor<4xf32>
    kiln.yield %0 : tensor<4xf32>
  }
  return %k : tensor<4xf32>
}

// -----

func.func @segment_reads_a_segment(%x: tensor<4xf32>) -> tensor<4xf32> {
  %k = kiln.kernel "horizontal_neg" horizontal (%x) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4xf32>):
    %0 = kiln.kernel "neg" elementwise (%a) : (tensor<4xf32>) -> tensor<4xf32> {
    ^bb0(%c: tensor<4xf32>):
      %r = kiln.neg %c : tensor<4xf32>
      kiln.yield %r : tensor<4xf32>
    }
    // expected-error@+1 {{'kiln.kernel' op reads another segment's result in a horizontal kernel}}
    %1 = kiln.kernel "neg" elementwise (%0) : (tensor<4xf32>) -> tensor<4xf32> {
    ^bb0(%c: tensor<4xf32>):
      %r = kiln.neg %c : tensor<4xf32>
      kiln.yield %r : tensor<4xf32>
    }
    kiln.yield %1 : tensor<4xf32>
  }
  return %k : tensor<4xf32>
}

// -----

func.func @nested_in_elementwise(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error@+1 {{'kiln.kernel' op nests a kernel but is not horizontal}}
  %k = kiln.kernel "neg" elementwise (%x) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4xf32>):
    %0 = kiln.kernel "neg" elementwise (%a) : (tensor<4xf32>) -> tensor<4xf32> {
    ^bb0(%c: tensor<4xf32>):
      %r = kiln.neg %c : tensor<4xf32>
      kiln.yield %r : tensor<4xf32>
    }
    kiln.yield %0 : tensor<4xf32>
  }
  return %k : tensor<4xf32>
}

// -----

// A collective kernel: one all-reduce of its inputs, in their order.
// CHECK-LABEL: func.func @collective
// CHECK: kiln.kernel "all_reduce" collective (%arg0, %arg1)
// CHECK-NEXT: ^bb0(%[[A:.+]]: tensor<4xf32>, %[[B:.+]]: tensor<2x2xf64>):
// CHECK-NEXT: %[[R:.+]]:2 = kiln.all_reduce sum %[[A]], %[[B]] : tensor<4xf32>, tensor<2x2xf64>
// CHECK-NEXT: kiln.yield %[[R]]#0, %[[R]]#1
func.func @collective(%x: tensor<4xf32>, %y: tensor<2x2xf64>) -> tensor<4xf32> {
  %k:2 = kiln.kernel "all_reduce" collective (%x, %y) : (tensor<4xf32>, tensor<2x2xf64>) -> (tensor<4xf32>, tensor<2x2xf64>) {
  ^bb0(%a: tensor<4xf32>, %b: tensor<2x2xf64>):
    %r:2 = kiln.all_reduce sum %a, %b : tensor<4xf32>, tensor<2x2xf64>
    kiln.yield %r#0, %r#1 : tensor<4xf32>, tensor<2x2xf64>
  }
  return %k#0 : tensor<4xf32>
}

// -----

func.func @collective_other_op(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error@+1 {{'kiln.kernel' op a collective kernel holds one kiln.all_reduce of its inputs, yielding its results}}
  %k = kiln.kernel "neg" collective (%x) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4xf32>):
    %0 = kiln.neg %a : tensor<4xf32>
    kiln.yield %0 : tensor<4xf32>
  }
  return %k : tensor<4xf32>
}

// -----

func.func @all_reduce_outside_collective(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error@+1 {{'kiln.kernel' op only a collective kernel holds a kiln.all_reduce}}
  %k = kiln.kernel "all_reduce" opaque (%x) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4xf32>):
    %0 = kiln.all_reduce mean %a : tensor<4xf32>
    kiln.yield %0 : tensor<4xf32>
  }
  return %k : tensor<4xf32>
}
