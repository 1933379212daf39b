// kiln-decompose: a causal attention over a symbolic sequence length cannot
// build its mask (an iota of static sizes); the error stands at the op.
// RUN: kiln-opt %s --kiln-decompose -verify-diagnostics

func.func @causal_dynamic_length(%q: tensor<2x?x4xf32>, %k: tensor<2x?x4xf32>, %v: tensor<2x?x4xf32>) -> tensor<2x?x4xf32> {
  // expected-error@+1 {{causal attention needs fixed query and key lengths to build its mask; bind them with --bind}}
  %0 = kiln.attention %q, %k, %v causal scale 5.000000e-01 : (tensor<2x?x4xf32>, tensor<2x?x4xf32>, tensor<2x?x4xf32>) -> tensor<2x?x4xf32>
  return %0 : tensor<2x?x4xf32>
}
