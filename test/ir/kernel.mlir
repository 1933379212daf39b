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
