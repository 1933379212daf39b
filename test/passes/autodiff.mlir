// RUN: kiln-opt %s -split-input-file --kiln-autodiff -verify-diagnostics | FileCheck %s

// Parameters become leading arguments; a parameter used twice (fan-out)
// sums its gradients; the broadcast [3] operand's gradient is summed over
// the batch; integer labels get none; an unused parameter's gradient is
// zeros; dropout's backward regenerates the same mask (same stream); the
// eval function drops dropout.

// CHECK-LABEL: func.func @m_grad
// CHECK-SAME: %[[W:[a-z0-9]+]]: tensor<3xf32> {kiln.init = #kiln.init<zeros>, kiln.name = "w", kiln.role = "param"}
// CHECK-SAME: %{{[a-z0-9]+}}: tensor<2xf32> {{.*}}kiln.name = "unused", kiln.role = "param"
// CHECK-SAME: %[[X:[a-z0-9]+]]: tensor<?x3xf32> {kiln.name = "x", kiln.role = "input"}
// CHECK-SAME: %[[Y:[a-z0-9]+]]: tensor<?xi32> {kiln.name = "y", kiln.role = "input"}
// CHECK-SAME: -> (tensor<f32> {kiln.name = "loss", kiln.role = "loss"}, tensor<3xf32> {kiln.name = "w", kiln.role = "grad"}, tensor<2xf32> {kiln.name = "unused", kiln.role = "grad"})
// CHECK-SAME: attributes {kiln.step = "grad"}
// CHECK: %[[LOGITS:.+]] = kiln.dropout %{{.+}} rate 5.000000e-01 stream 0
// CHECK: %[[LOSS:.+]] = kiln.cross_entropy %[[LOGITS]], %[[Y]]
// CHECK: %[[ONE:.+]] = kiln.constant dense<1.000000e+00> : tensor<f32>
// CHECK: %[[DL:.+]] = kiln.cross_entropy_grad %[[LOGITS]], %[[Y]], %[[ONE]]
// CHECK: %[[DD:.+]] = kiln.dropout %[[DL]] rate 5.000000e-01 stream 0
// CHECK: %[[FROMADD:.+]] = kiln.reduce_sum %[[DD]] [0] : (tensor<?x3xf32>) -> tensor<3xf32>
// CHECK: %[[PROD:.+]] = kiln.mul %[[DD]], %[[X]]
// CHECK: %[[FROMMUL:.+]] = kiln.reduce_sum %[[PROD]] [0]
// CHECK: %[[DW:.+]] = kiln.add %[[FROMADD]], %[[FROMMUL]]
// CHECK: %[[ZERO:.+]] = kiln.constant dense<0.000000e+00> : tensor<2xf32>
// CHECK: return %[[LOSS]], %[[DW]], %[[ZERO]]

// CHECK-LABEL: func.func @m_eval_step
// CHECK-SAME: attributes {kiln.step = "eval"}
// CHECK-NOT: kiln.dropout
// CHECK: return
func.func @m(%x: tensor<?x3xf32> {kiln.name = "x"}, %y: tensor<?xi32> {kiln.name = "y"}) -> (tensor<f32> {kiln.name = "loss", kiln.role = "loss"}) attributes {kiln.model} {
  %w = kiln.param "w" : tensor<3xf32> init #kiln.init<zeros>
  %u = kiln.param "unused" : tensor<2xf32> init #kiln.init<ones>
  %0 = kiln.mul %x, %w : (tensor<?x3xf32>, tensor<3xf32>) -> tensor<?x3xf32>
  %1 = kiln.add %0, %w : (tensor<?x3xf32>, tensor<3xf32>) -> tensor<?x3xf32>
  %2 = kiln.dropout %1 rate 5.000000e-01 stream 0 : tensor<?x3xf32>
  %3 = kiln.cross_entropy %2, %y : (tensor<?x3xf32>, tensor<?xi32>) -> tensor<f32>
  return %3 : tensor<f32>
}

// -----

// The matmul gradients keep each operand's stored layout: for
// x @ W^T, dW = g^T @ x and dx = g @ W, with no transpose op.

// CHECK-LABEL: func.func @linear_grad
// CHECK-SAME: %[[W:[a-z0-9]+]]: tensor<4x3xf32>
// CHECK-SAME: %[[X:[a-z0-9]+]]: tensor<2x3xf32>
// CHECK: %[[Y:.+]] = kiln.matmul %[[X]], %[[W]] transpose_rhs
// CHECK: %[[G:.+]] = kiln.broadcast %{{.+}}, %[[Y]]
// CHECK: kiln.matmul %[[G]], %[[W]] :
// CHECK: %[[DW:.+]] = kiln.matmul %[[G]], %[[X]] transpose_lhs : (tensor<2x4xf32>, tensor<2x3xf32>) -> tensor<4x3xf32>
// CHECK-NOT: kiln.transpose
// CHECK: return %{{.+}}, %[[DW]]
func.func @linear(%x: tensor<2x3xf32> {kiln.name = "x"}) -> (tensor<f32> {kiln.name = "loss", kiln.role = "loss"}) attributes {kiln.model} {
  %w = kiln.param "w" : tensor<4x3xf32> init #kiln.init<normal(mean = 0.0, std = 1.0)>
  %0 = kiln.matmul %x, %w transpose_rhs : (tensor<2x3xf32>, tensor<4x3xf32>) -> tensor<2x4xf32>
  %1 = kiln.reduce_sum %0 [] : (tensor<2x4xf32>) -> tensor<f32>
  return %1 : tensor<f32>
}

// -----

// An op without a gradient rule on the path from a parameter to the loss
// is a located error (gradient primitives have none).
func.func @no_rule(%x: tensor<4xf32> {kiln.name = "x"}) -> (tensor<f32> {kiln.name = "loss", kiln.role = "loss"}) attributes {kiln.model} {
  %w = kiln.param "w" : tensor<4xf32> init #kiln.init<zeros>
  // expected-error@+1 {{'kiln.gelu_grad' has no gradient rule, so the loss cannot be differentiated through it}}
  %0 = kiln.gelu_grad %x, %w : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %1 = kiln.reduce_sum %0 [] : (tensor<4xf32>) -> tensor<f32>
  return %1 : tensor<f32>
}

// -----

// attention: delta = rowsum(dO * O), then dq and dk, dv from the saved
// log-sum-exp (the forward op's second result); the broadcast key and
// value ([1, 5, 4]) sum their gradients over the batch.
// CHECK-LABEL: func.func @attn_grad
// CHECK-SAME: (%[[K:[a-z0-9]+]]: tensor<1x5x4xf32> {kiln.init = #kiln.init<zeros>, kiln.name = "k", kiln.role = "param"}
// CHECK-SAME: %[[Q:[a-z0-9]+]]: tensor<2x3x4xf32> {kiln.name = "q", kiln.role = "input"}
// CHECK: %[[O:.+]], %[[LSE:.+]] = kiln.attention %[[Q]], %[[K]], %[[K]] causal scale 5.000000e-01
// CHECK: %[[G:.+]] = kiln.broadcast
// CHECK: %[[GO:.+]] = kiln.mul %[[G]], %[[O]]
// CHECK: %[[DELTA:.+]] = kiln.reduce_sum %[[GO]] [-1] : (tensor<2x3x4xf32>) -> tensor<2x3xf32>
// CHECK: kiln.attention_grad_q %[[Q]], %[[K]], %[[K]], %[[G]], %[[LSE]], %[[DELTA]] causal scale 5.000000e-01
// CHECK: %[[DK:.+]], %[[DV:.+]] = kiln.attention_grad_kv %[[Q]], %[[K]], %[[K]], %[[G]], %[[LSE]], %[[DELTA]] causal scale 5.000000e-01 : {{.*}} -> (tensor<2x5x4xf32>, tensor<2x5x4xf32>)
// CHECK: %[[SK:.+]] = kiln.reduce_sum %[[DK]] [0] keepdims : (tensor<2x5x4xf32>) -> tensor<1x5x4xf32>
// CHECK: %[[SV:.+]] = kiln.reduce_sum %[[DV]] [0] keepdims : (tensor<2x5x4xf32>) -> tensor<1x5x4xf32>
// CHECK: %[[DKV:.+]] = kiln.add %[[SK]], %[[SV]]
// CHECK: return %{{.+}}, %[[DKV]]
func.func @attn(%q: tensor<2x3x4xf32> {kiln.name = "q"}) -> (tensor<f32> {kiln.name = "loss", kiln.role = "loss"}) attributes {kiln.model} {
  %k = kiln.param "k" : tensor<1x5x4xf32> init #kiln.init<zeros>
  %o:2 = kiln.attention %q, %k, %k causal scale 5.000000e-01 : (tensor<2x3x4xf32>, tensor<1x5x4xf32>, tensor<1x5x4xf32>) -> (tensor<2x3x4xf32>, tensor<2x3xf32>)
  %l = kiln.reduce_sum %o#0 [] : (tensor<2x3x4xf32>) -> tensor<f32>
  return %l : tensor<f32>
}

// -----

// The log-sum-exp is saved for the backward pass, not differentiated.
func.func @attn_lse(%q: tensor<3x4xf32> {kiln.name = "q"}) -> (tensor<f32> {kiln.name = "loss", kiln.role = "loss"}) attributes {kiln.model} {
  %k = kiln.param "k" : tensor<3x4xf32> init #kiln.init<zeros>
  // expected-error@+1 {{'kiln.attention' result #1 has no gradient rule, so the loss cannot be differentiated through it}}
  %o:2 = kiln.attention %q, %k, %k scale 5.000000e-01 : (tensor<3x4xf32>, tensor<3x4xf32>, tensor<3x4xf32>) -> (tensor<3x4xf32>, tensor<3xf32>)
  %l = kiln.reduce_sum %o#1 [] : (tensor<3xf32>) -> tensor<f32>
  return %l : tensor<f32>
}
