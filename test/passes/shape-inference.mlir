// kiln-shape-inference: binding a symbolic dimension specializes the inputs
// and every type downstream of them; without bindings only what the shape
// functions already know is filled in.
// RUN: kiln-opt %s -split-input-file --kiln-shape-inference="bind=batch=32" -verify-diagnostics | FileCheck %s
// RUN: kiln-opt %s -split-input-file --kiln-shape-inference | FileCheck %s --check-prefix=NOBIND
// RUN: not kiln-opt %s -split-input-file --kiln-shape-inference="bind=batch" 2>&1 | FileCheck %s --check-prefix=MALFORMED
// RUN: not kiln-opt %s -split-input-file --kiln-shape-inference="bind=batch=0" 2>&1 | FileCheck %s --check-prefix=MALFORMED
// RUN: not kiln-opt %s -split-input-file --kiln-shape-inference="bind==32" 2>&1 | FileCheck %s --check-prefix=MALFORMED

// MALFORMED: error: invalid binding '{{.*}}'; expected NAME=SIZE with a positive SIZE

// The bound batch flows from both inputs through a chain of ops into the
// function type; dimensions with other names and unnamed ones stay as they are.
// CHECK-LABEL: func.func @chain
// CHECK-SAME: (%[[X:.+]]: tensor<32x784xf32> {kiln.dim_names = ["batch", ""]}, %[[L:.+]]: tensor<32xi32> {kiln.dim_names = ["batch"]}, %[[S:.+]]: tensor<?x4xf32> {kiln.dim_names = ["seq", ""]})
// CHECK-SAME: -> (tensor<f32>, tensor<32x10xf32>, tensor<32xf32>, tensor<?x4xf32>)
// CHECK-NEXT: %[[W:.+]] = kiln.param "w" : tensor<10x784xf32>
// CHECK-NEXT: %[[Y:.+]] = kiln.linear %[[X]], %[[W]] : (tensor<32x784xf32>, tensor<10x784xf32>) -> tensor<32x10xf32>
// CHECK-NEXT: %[[R:.+]] = kiln.relu %[[Y]] : tensor<32x10xf32>
// CHECK-NEXT: %[[E:.+]] = kiln.cross_entropy %[[R]], %[[L]] : (tensor<32x10xf32>, tensor<32xi32>) -> tensor<f32>
// CHECK-NEXT: %[[M:.+]] = kiln.reduce_max %[[R]] [1] : (tensor<32x10xf32>) -> tensor<32xf32>
// CHECK-NEXT: %[[N:.+]] = kiln.neg %[[S]] : tensor<?x4xf32>
// CHECK-NEXT: return %[[E]], %[[R]], %[[M]], %[[N]] : tensor<f32>, tensor<32x10xf32>, tensor<32xf32>, tensor<?x4xf32>
// NOBIND-LABEL: func.func @chain
// NOBIND-SAME: (%{{.+}}: tensor<?x784xf32> {kiln.dim_names = ["batch", ""]}, %{{.+}}: tensor<?xi32> {kiln.dim_names = ["batch"]}, %{{.+}}: tensor<?x4xf32> {kiln.dim_names = ["seq", ""]})
// NOBIND-SAME: -> (tensor<f32>, tensor<?x10xf32>, tensor<?xf32>, tensor<?x4xf32>)
// NOBIND: kiln.linear {{.*}} -> tensor<?x10xf32>
// NOBIND: kiln.reduce_max {{.*}} -> tensor<?xf32>
func.func @chain(%x: tensor<?x784xf32> {kiln.dim_names = ["batch", ""]}, %label: tensor<?xi32> {kiln.dim_names = ["batch"]}, %s: tensor<?x4xf32> {kiln.dim_names = ["seq", ""]}) -> (tensor<f32>, tensor<?x10xf32>, tensor<?xf32>, tensor<?x4xf32>) {
  %w = kiln.param "w" : tensor<10x784xf32> init #kiln.init<zeros>
  %y = kiln.linear %x, %w : (tensor<?x784xf32>, tensor<10x784xf32>) -> tensor<?x10xf32>
  %r = kiln.relu %y : tensor<?x10xf32>
  %e = kiln.cross_entropy %r, %label : (tensor<?x10xf32>, tensor<?xi32>) -> tensor<f32>
  %m = kiln.reduce_max %r [1] : (tensor<?x10xf32>) -> tensor<?xf32>
  %n = kiln.neg %s : tensor<?x4xf32>
  return %e, %r, %m, %n : tensor<f32>, tensor<?x10xf32>, tensor<?xf32>, tensor<?x4xf32>
}

// -----

// A declared type is refined by what inference knows, and keeps what it knows
// itself: the result is the meet of the two, with or without bindings.
// CHECK-LABEL: func.func @refine_declared
// CHECK-SAME: -> (tensor<32x4xf32>, tensor<8xf32>)
// CHECK: kiln.add {{.*}} : (tensor<32x4xf32>, tensor<32x4xf32>) -> tensor<32x4xf32>
// CHECK: kiln.add {{.*}} : (tensor<?xf32>, tensor<?xf32>) -> tensor<8xf32>
// NOBIND-LABEL: func.func @refine_declared
// NOBIND-SAME: -> (tensor<?x4xf32>, tensor<8xf32>)
// NOBIND: kiln.add {{.*}} : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x4xf32>
// NOBIND: kiln.add {{.*}} : (tensor<?xf32>, tensor<?xf32>) -> tensor<8xf32>
func.func @refine_declared(%x: tensor<?x4xf32> {kiln.dim_names = ["batch", ""]}, %v: tensor<?xf32>) -> (tensor<?x?xf32>, tensor<8xf32>) {
  %0 = kiln.add %x, %x : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x?xf32>
  %1 = kiln.add %v, %v : (tensor<?xf32>, tensor<?xf32>) -> tensor<8xf32>
  return %0, %1 : tensor<?x?xf32>, tensor<8xf32>
}

// -----

// A model that is already fully shaped (binding a dimension to the size it
// has is fine) is left exactly as it is.
// CHECK-LABEL: func.func @static(%{{.+}}: tensor<32x3xf32> {kiln.dim_names = ["batch", ""]}) -> tensor<32xf32>
// CHECK-NEXT: kiln.reduce_sum %{{.+}} [1] : (tensor<32x3xf32>) -> tensor<32xf32>
// NOBIND-LABEL: func.func @static(%{{.+}}: tensor<32x3xf32> {kiln.dim_names = ["batch", ""]}) -> tensor<32xf32>
// NOBIND-NEXT: kiln.reduce_sum %{{.+}} [1] : (tensor<32x3xf32>) -> tensor<32xf32>
func.func @static(%x: tensor<32x3xf32> {kiln.dim_names = ["batch", ""]}) -> tensor<32xf32> {
  %0 = kiln.reduce_sum %x [1] : (tensor<32x3xf32>) -> tensor<32xf32>
  return %0 : tensor<32xf32>
}

// -----

// A dimension named by a binding but fixed to another size.
// expected-error@+1 {{dimension 'batch' has the fixed size 16 and cannot be bound to 32}}
func.func @fixed_size(%x: tensor<16x784xf32> {kiln.dim_names = ["batch", ""]}) -> tensor<16x784xf32> {
  return %x : tensor<16x784xf32>
}

// -----

// A binding whose name no input dimension has (a typo, say).
// expected-error@+1 {{no input dimension is named 'batch'}}
func.func @unknown_name(%x: tensor<?x784xf32> {kiln.dim_names = ["btch", ""]}) -> tensor<?x784xf32> {
  return %x : tensor<?x784xf32>
}

// -----

// A declared type that agreed with the symbolic size but contradicts the bound one.
func.func @contradiction(%x: tensor<?x4xf32> {kiln.dim_names = ["batch", ""]}) -> tensor<16x4xf32> {
  // expected-error@+1 {{'kiln.add' op result type 'tensor<16x4xf32>' contradicts the inferred type 'tensor<32x4xf32>'}}
  %0 = kiln.add %x, %x : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<16x4xf32>
  return %0 : tensor<16x4xf32>
}

// -----

// A shape rule that holds for a symbolic size but fails for the bound one.
func.func @rule_fails_after_binding(%x: tensor<?x6xf32> {kiln.dim_names = ["batch", ""]}) -> tensor<?x5xf32> {
  // expected-error@+1 {{'reshape' cannot reshape [32, 6] (192 elements) to [-1, 5]}}
  %0 = kiln.reshape %x [-1, 5] : (tensor<?x6xf32>) -> tensor<?x5xf32>
  return %0 : tensor<?x5xf32>
}

// -----

// Dimension names that do not match the rank of their argument.
// expected-error@+1 {{argument 0 has 1 dimension names for rank 2}}
func.func @names_rank(%x: tensor<?x784xf32> {kiln.dim_names = ["batch"]}) -> tensor<?x784xf32> {
  return %x : tensor<?x784xf32>
}

// -----

// Dimension names that are not strings.
// expected-error@+1 {{dimension names must be strings}}
func.func @names_not_strings(%x: tensor<?x784xf32> {kiln.dim_names = [0, 1]}) -> tensor<?x784xf32> {
  return %x : tensor<?x784xf32>
}
