// RUN: kiln-opt %s -split-input-file -verify-diagnostics --kiln-plan-memory | FileCheck %s
// RUN: kiln-opt %s -split-input-file -verify-diagnostics --kiln-plan-memory | kiln-opt -split-input-file | FileCheck %s

// A chain: each result dies at the next kernel, so the third reuses the
// first's memory; the input is not planned (its bytes are counted apart).
// CHECK-LABEL: func.func @reuse
// CHECK-SAME: kiln.arena_bytes = 2048 : i64, kiln.input_bytes = 1024 : i64, kiln.param_bytes = 0 : i64, kiln.state_bytes = 0 : i64
// CHECK: kiln.kernel "neg" elementwise (%arg0) {kiln.offsets = array<i64: 0>}
// CHECK: kiln.kernel "exp" elementwise (%{{.+}}) {kiln.offsets = array<i64: 1024>}
// CHECK: kiln.kernel "tanh" elementwise (%{{.+}}) {kiln.offsets = array<i64: 0>}
func.func @reuse(%x: tensor<4x64xf32>) -> tensor<4x64xf32> {
  %0 = kiln.kernel "neg" elementwise (%x) : (tensor<4x64xf32>) -> tensor<4x64xf32> {
  ^bb0(%a: tensor<4x64xf32>):
    %r = kiln.neg %a : tensor<4x64xf32>
    kiln.yield %r : tensor<4x64xf32>
  }
  %1 = kiln.kernel "exp" elementwise (%0) : (tensor<4x64xf32>) -> tensor<4x64xf32> {
  ^bb0(%a: tensor<4x64xf32>):
    %r = kiln.exp %a : tensor<4x64xf32>
    kiln.yield %r : tensor<4x64xf32>
  }
  %2 = kiln.kernel "tanh" elementwise (%1) : (tensor<4x64xf32>) -> tensor<4x64xf32> {
  ^bb0(%a: tensor<4x64xf32>):
    %r = kiln.tanh %a : tensor<4x64xf32>
    kiln.yield %r : tensor<4x64xf32>
  }
  return %2 : tensor<4x64xf32>
}

// -----

// Both results are still live when the third kernel reads them: no buffer
// shares memory, the arena is the sum.
// CHECK-LABEL: func.func @no_reuse
// CHECK-SAME: kiln.arena_bytes = 3072 : i64
// CHECK: kiln.kernel "neg" elementwise (%arg0) {kiln.offsets = array<i64: 0>}
// CHECK: kiln.kernel "exp" elementwise (%arg0) {kiln.offsets = array<i64: 1024>}
// CHECK: kiln.kernel "add" elementwise (%{{.+}}, %{{.+}}) {kiln.offsets = array<i64: 2048>}
func.func @no_reuse(%x: tensor<4x64xf32>) -> tensor<4x64xf32> {
  %0 = kiln.kernel "neg" elementwise (%x) : (tensor<4x64xf32>) -> tensor<4x64xf32> {
  ^bb0(%a: tensor<4x64xf32>):
    %r = kiln.neg %a : tensor<4x64xf32>
    kiln.yield %r : tensor<4x64xf32>
  }
  %1 = kiln.kernel "exp" elementwise (%x) : (tensor<4x64xf32>) -> tensor<4x64xf32> {
  ^bb0(%a: tensor<4x64xf32>):
    %r = kiln.exp %a : tensor<4x64xf32>
    kiln.yield %r : tensor<4x64xf32>
  }
  %2 = kiln.kernel "add" elementwise (%0, %1) : (tensor<4x64xf32>, tensor<4x64xf32>) -> tensor<4x64xf32> {
  ^bb0(%a: tensor<4x64xf32>, %b: tensor<4x64xf32>):
    %r = kiln.add %a, %b : (tensor<4x64xf32>, tensor<4x64xf32>) -> tensor<4x64xf32>
    kiln.yield %r : tensor<4x64xf32>
  }
  return %2 : tensor<4x64xf32>
}

// -----

// Every buffer starts on a 256-byte boundary: 12 bytes of f32 and 3 bytes of
// i1 (a byte each) take 256 each. A result nobody reads is live only at its
// kernel, and the two results of one kernel never share.
// CHECK-LABEL: func.func @alignment
// CHECK-SAME: kiln.arena_bytes = 768 : i64, kiln.input_bytes = 12 : i64
// CHECK: kiln.kernel "neg_exp" elementwise (%arg0) {kiln.offsets = array<i64: 0, 256>}
// CHECK: kiln.kernel "cmp" elementwise (%{{.+}}, %{{.+}}) {kiln.offsets = array<i64: 512>}
func.func @alignment(%x: tensor<3xf32>) -> tensor<3xi1> {
  %0:2 = kiln.kernel "neg_exp" elementwise (%x) : (tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>) {
  ^bb0(%a: tensor<3xf32>):
    %n = kiln.neg %a : tensor<3xf32>
    %e = kiln.exp %a : tensor<3xf32>
    kiln.yield %n, %e : tensor<3xf32>, tensor<3xf32>
  }
  %1 = kiln.kernel "cmp" elementwise (%0#0, %0#1) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xi1> {
  ^bb0(%a: tensor<3xf32>, %b: tensor<3xf32>):
    %c = kiln.cmp lt, %a, %b : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xi1>
    kiln.yield %c : tensor<3xi1>
  }
  return %1 : tensor<3xi1>
}

// -----

// A training step: the update kernel reads the old parameter and momentum
// element by element and nothing reads them afterwards, so both new values
// are written in place (offset -1, the argument indices in kiln.in_place).
// CHECK-LABEL: func.func @in_place
// CHECK-SAME: kiln.arena_bytes = 256 : i64, kiln.input_bytes = 128 : i64, kiln.param_bytes = 128 : i64, kiln.state_bytes = 128 : i64
// CHECK: kiln.kernel "mul" elementwise (%arg2, %arg0) {kiln.offsets = array<i64: 0>}
// CHECK: kiln.kernel "mul_add_sub" elementwise (%arg1, %{{.+}}, %arg0) {kiln.in_place = array<i64: 1, 0>, kiln.offsets = array<i64: -1, -1>}
func.func @in_place(%w: tensor<4x8xf32> {kiln.name = "w", kiln.role = "param"},
                    %m: tensor<4x8xf32> {kiln.name = "w.momentum_buffer", kiln.role = "state"},
                    %x: tensor<4x8xf32> {kiln.name = "x", kiln.role = "input"})
    -> (tensor<4x8xf32> {kiln.name = "w", kiln.role = "param"},
        tensor<4x8xf32> {kiln.name = "w.momentum_buffer", kiln.role = "state"}) {
  %g = kiln.kernel "mul" elementwise (%x, %w) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%a: tensor<4x8xf32>, %b: tensor<4x8xf32>):
    %r = kiln.mul %a, %b : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    kiln.yield %r : tensor<4x8xf32>
  }
  %u:2 = kiln.kernel "mul_add_sub" elementwise (%m, %g, %w) : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  ^bb0(%mm: tensor<4x8xf32>, %gg: tensor<4x8xf32>, %ww: tensor<4x8xf32>):
    %0 = kiln.mul %mm, %mm : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %1 = kiln.add %0, %gg : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %2 = kiln.sub %ww, %1 : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    kiln.yield %1, %2 : tensor<4x8xf32>, tensor<4x8xf32>
  }
  return %u#1, %u#0 : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// The old parameter is read after its update (by the last kernel), so the
// new one gets a buffer of its own in the arena.
// CHECK-LABEL: func.func @read_after_update
// CHECK-SAME: kiln.arena_bytes = 512 : i64
// CHECK-NOT: kiln.in_place
// CHECK: kiln.kernel "neg" elementwise (%arg0) {kiln.offsets = array<i64: 0>}
// CHECK: kiln.kernel "exp" elementwise (%arg0) {kiln.offsets = array<i64: 256>}
func.func @read_after_update(%w: tensor<4x8xf32> {kiln.name = "w", kiln.role = "param"})
    -> (tensor<4x8xf32> {kiln.name = "w", kiln.role = "param"},
        tensor<4x8xf32> {kiln.name = "m", kiln.role = "metric"}) {
  %new = kiln.kernel "neg" elementwise (%w) : (tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%a: tensor<4x8xf32>):
    %r = kiln.neg %a : tensor<4x8xf32>
    kiln.yield %r : tensor<4x8xf32>
  }
  %late = kiln.kernel "exp" elementwise (%w) : (tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%a: tensor<4x8xf32>):
    %r = kiln.exp %a : tensor<4x8xf32>
    kiln.yield %r : tensor<4x8xf32>
  }
  return %new, %late : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// A matmul reads the whole old parameter to compute each element of the new
// one: writing in place would clobber elements still to be read.
// CHECK-LABEL: func.func @not_elementwise
// CHECK-NOT: kiln.in_place
// CHECK: kiln.kernel "matmul" matmul (%arg0, %arg0) {kiln.offsets = array<i64: 0>}
func.func @not_elementwise(%w: tensor<8x8xf32> {kiln.name = "w", kiln.role = "param"})
    -> (tensor<8x8xf32> {kiln.name = "w", kiln.role = "param"}) {
  %new = kiln.kernel "matmul" matmul (%w, %w) : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xf32> {
  ^bb0(%a: tensor<8x8xf32>, %b: tensor<8x8xf32>):
    %r = kiln.matmul %a, %b : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xf32>
    kiln.yield %r : tensor<8x8xf32>
  }
  return %new : tensor<8x8xf32>
}

// -----

// An SGD update fused into the weight gradient's GEMM reads the old weight
// only in the epilogue, at the element it writes: in place.
// CHECK-LABEL: func.func @matmul_epilogue
// CHECK-SAME: kiln.arena_bytes = 0 : i64
// CHECK: kiln.kernel "matmul_sub" matmul (%arg1, %arg2, %arg0) {kiln.in_place = array<i64: 0>, kiln.offsets = array<i64: -1>}
func.func @matmul_epilogue(%w: tensor<3x4xf32> {kiln.name = "w", kiln.role = "param"},
                           %g: tensor<8x3xf32> {kiln.name = "g", kiln.role = "input"},
                           %x: tensor<8x4xf32> {kiln.name = "x", kiln.role = "input"})
    -> (tensor<3x4xf32> {kiln.name = "w", kiln.role = "param"}) {
  %new = kiln.kernel "matmul_sub" matmul (%g, %x, %w) : (tensor<8x3xf32>, tensor<8x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32> {
  ^bb0(%a: tensor<8x3xf32>, %b: tensor<8x4xf32>, %c: tensor<3x4xf32>):
    %0 = kiln.matmul %a, %b transpose_lhs : (tensor<8x3xf32>, tensor<8x4xf32>) -> tensor<3x4xf32>
    %1 = kiln.sub %c, %0 : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
    kiln.yield %1 : tensor<3x4xf32>
  }
  return %new : tensor<3x4xf32>
}

// -----

// Sizes must be known: a symbolic batch asks for a binding.
// expected-error@+1 {{memory planning needs static shapes; bind the symbolic dimension 'batch' with --bind batch=N}}
func.func @dynamic(%x: tensor<?x4xf32> {kiln.dim_names = ["batch", ""], kiln.name = "x"}) -> tensor<?x4xf32> {
  %0 = kiln.kernel "neg" elementwise (%x) : (tensor<?x4xf32>) -> tensor<?x4xf32> {
  ^bb0(%a: tensor<?x4xf32>):
    %r = kiln.neg %a : tensor<?x4xf32>
    kiln.yield %r : tensor<?x4xf32>
  }
  return %0 : tensor<?x4xf32>
}

// -----

// Planning runs after fusion: an op outside a kernel is an error.
func.func @unfused(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error@+1 {{'kiln.neg' op cannot be planned: memory planning runs on kernels (after kiln-fuse)}}
  %0 = kiln.neg %x : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// Reshapes are views: %v1 reads %0's buffer (offset 0) and %v2 reads it
// through %v1, so %0 lives until the last kernel reads %v2 and the "exp"
// result cannot take its memory. The reshape of the argument reads the
// argument's buffer. A returned reshape is a copy with a buffer of its own.
// CHECK-LABEL: func.func @views
// CHECK-SAME: kiln.arena_bytes = 3072 : i64
// CHECK: kiln.kernel "neg" elementwise (%arg0) {kiln.offsets = array<i64: 0>}
// CHECK: kiln.kernel "reshape" opaque (%{{.+}}) {kiln.offsets = array<i64: -1>, kiln.view}
// CHECK: kiln.kernel "reshape" opaque (%{{.+}}) {kiln.offsets = array<i64: -1>, kiln.view}
// CHECK: kiln.kernel "reshape" opaque (%arg0) {kiln.offsets = array<i64: -1>, kiln.view}
// CHECK: kiln.kernel "exp" elementwise (%{{.+}}) {kiln.offsets = array<i64: 1024>}
// CHECK: kiln.kernel "add" elementwise (%{{.+}}, %{{.+}}) {kiln.offsets = array<i64: 2048>}
// CHECK: kiln.kernel "reshape" opaque (%{{.+}}) {kiln.offsets = array<i64: 0>}
// CHECK-NOT: kiln.view
func.func @views(%x: tensor<4x64xf32>) -> tensor<256xf32> {
  %0 = kiln.kernel "neg" elementwise (%x) : (tensor<4x64xf32>) -> tensor<4x64xf32> {
  ^bb0(%a: tensor<4x64xf32>):
    %r = kiln.neg %a : tensor<4x64xf32>
    kiln.yield %r : tensor<4x64xf32>
  }
  %v1 = kiln.kernel "reshape" opaque (%0) : (tensor<4x64xf32>) -> tensor<2x2x64xf32> {
  ^bb0(%a: tensor<4x64xf32>):
    %r = kiln.reshape %a [2, 2, 64] : (tensor<4x64xf32>) -> tensor<2x2x64xf32>
    kiln.yield %r : tensor<2x2x64xf32>
  }
  %v2 = kiln.kernel "reshape" opaque (%v1) : (tensor<2x2x64xf32>) -> tensor<16x16xf32> {
  ^bb0(%a: tensor<2x2x64xf32>):
    %r = kiln.reshape %a [16, 16] : (tensor<2x2x64xf32>) -> tensor<16x16xf32>
    kiln.yield %r : tensor<16x16xf32>
  }
  %vx = kiln.kernel "reshape" opaque (%x) : (tensor<4x64xf32>) -> tensor<16x16xf32> {
  ^bb0(%a: tensor<4x64xf32>):
    %r = kiln.reshape %a [16, 16] : (tensor<4x64xf32>) -> tensor<16x16xf32>
    kiln.yield %r : tensor<16x16xf32>
  }
  %1 = kiln.kernel "exp" elementwise (%vx) : (tensor<16x16xf32>) -> tensor<16x16xf32> {
  ^bb0(%a: tensor<16x16xf32>):
    %r = kiln.exp %a : tensor<16x16xf32>
    kiln.yield %r : tensor<16x16xf32>
  }
  %2 = kiln.kernel "add" elementwise (%1, %v2) : (tensor<16x16xf32>, tensor<16x16xf32>) -> tensor<16x16xf32> {
  ^bb0(%a: tensor<16x16xf32>, %b: tensor<16x16xf32>):
    %r = kiln.add %a, %b : (tensor<16x16xf32>, tensor<16x16xf32>) -> tensor<16x16xf32>
    kiln.yield %r : tensor<16x16xf32>
  }
  %3 = kiln.kernel "reshape" opaque (%2) : (tensor<16x16xf32>) -> tensor<256xf32> {
  ^bb0(%a: tensor<16x16xf32>):
    %r = kiln.reshape %a [256] : (tensor<16x16xf32>) -> tensor<256xf32>
    kiln.yield %r : tensor<256xf32>
  }
  return %3 : tensor<256xf32>
}

// -----

// The update kernel reads the old parameter through a view besides
// element by element: reading it in another shape is not element by
// element, so the new value gets a buffer of its own.
// CHECK-LABEL: func.func @view_blocks_in_place
// CHECK-NOT: kiln.in_place
// CHECK: kiln.kernel "reshape" opaque (%arg0) {kiln.offsets = array<i64: -1>, kiln.view}
// CHECK: kiln.kernel "sub" elementwise (%arg0, %{{.+}}) {kiln.offsets = array<i64: 0>}
func.func @view_blocks_in_place(%w: tensor<4x8xf32> {kiln.name = "w", kiln.role = "param"})
    -> (tensor<4x8xf32> {kiln.name = "w", kiln.role = "param"}) {
  %t = kiln.kernel "reshape" opaque (%w) : (tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%a: tensor<4x8xf32>):
    %r = kiln.reshape %a [4, 8] : (tensor<4x8xf32>) -> tensor<4x8xf32>
    kiln.yield %r : tensor<4x8xf32>
  }
  %new = kiln.kernel "sub" elementwise (%w, %t) : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32> {
  ^bb0(%a: tensor<4x8xf32>, %b: tensor<4x8xf32>):
    %r = kiln.sub %a, %b : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    kiln.yield %r : tensor<4x8xf32>
  }
  return %new : tensor<4x8xf32>
}

// -----

// Collectives: the all-reduce of %0, which no kernel reads after it, works
// in place (offset -1: its result is %0's buffer, live to the last reader
// of the result); %1 is read again after the all-reduce, so its result
// gets a buffer of its own, and the runtime reduces from one into the
// other.
// CHECK-LABEL: func.func @collective
// CHECK-SAME: kiln.arena_bytes = 4096 : i64
// CHECK: kiln.kernel "neg" elementwise (%arg0) {kiln.offsets = array<i64: 0>}
// CHECK: kiln.kernel "exp" elementwise (%arg0) {kiln.offsets = array<i64: 1024>}
// CHECK: kiln.kernel "all_reduce" collective ({{.*}}) {kiln.offsets = array<i64: -1, 2048>}
// CHECK: kiln.kernel "add" elementwise ({{.*}}) {kiln.offsets = array<i64: 3072>}
func.func @collective(%x: tensor<4x64xf32>) -> (tensor<4x64xf32>, tensor<4x64xf32>) {
  %0 = kiln.kernel "neg" elementwise (%x) : (tensor<4x64xf32>) -> tensor<4x64xf32> {
  ^bb0(%a: tensor<4x64xf32>):
    %r = kiln.neg %a : tensor<4x64xf32>
    kiln.yield %r : tensor<4x64xf32>
  }
  %1 = kiln.kernel "exp" elementwise (%x) : (tensor<4x64xf32>) -> tensor<4x64xf32> {
  ^bb0(%a: tensor<4x64xf32>):
    %r = kiln.exp %a : tensor<4x64xf32>
    kiln.yield %r : tensor<4x64xf32>
  }
  %2:2 = kiln.kernel "all_reduce" collective (%0, %1) : (tensor<4x64xf32>, tensor<4x64xf32>) -> (tensor<4x64xf32>, tensor<4x64xf32>) {
  ^bb0(%a: tensor<4x64xf32>, %b: tensor<4x64xf32>):
    %r:2 = kiln.all_reduce mean %a, %b : tensor<4x64xf32>, tensor<4x64xf32>
    kiln.yield %r#0, %r#1 : tensor<4x64xf32>, tensor<4x64xf32>
  }
  %3 = kiln.kernel "add" elementwise (%2#0, %2#1, %1) : (tensor<4x64xf32>, tensor<4x64xf32>, tensor<4x64xf32>) -> tensor<4x64xf32> {
  ^bb0(%a: tensor<4x64xf32>, %b: tensor<4x64xf32>, %c: tensor<4x64xf32>):
    %s = kiln.add %a, %b : (tensor<4x64xf32>, tensor<4x64xf32>) -> tensor<4x64xf32>
    %r = kiln.add %s, %c : (tensor<4x64xf32>, tensor<4x64xf32>) -> tensor<4x64xf32>
    kiln.yield %r : tensor<4x64xf32>
  }
  return %3, %2#0 : tensor<4x64xf32>, tensor<4x64xf32>
}
