// RUN: kiln-translate --kernel-to-cuda -split-input-file -verify-diagnostics --mlir-print-op-on-diagnostic=false %s

// The generators render the schedule a kernel carries; without one, or with
// one that does not fit the kernel, the error is at the kernel.

func.func @none(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error@+1 {{kernel 'neg' has no cuda schedule (run kiln-schedule)}}
  %0 = kiln.kernel "neg" elementwise (%x) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4xf32>):
    %r = kiln.neg %a : tensor<4xf32>
    kiln.yield %r : tensor<4xf32>
  }
  return %0 : tensor<4xf32>
}

// -----

func.func @columns(%x: tensor<8x10xf32>) -> tensor<8xf32> {
  // expected-error@+1 {{the schedule #kiln.reduce<scheme = columns, block_x = 32, block_y = 16> does not fit this reduction: columns need the kept dimensions innermost}}
  %0 = kiln.kernel "reduce_sum" reduction (%x) {kiln.schedule = {cuda = #kiln.reduce<scheme = columns, block_x = 32, block_y = 16>}} : (tensor<8x10xf32>) -> tensor<8xf32> {
  ^bb0(%a: tensor<8x10xf32>):
    %r = kiln.reduce_sum %a [1] : (tensor<8x10xf32>) -> tensor<8xf32>
    kiln.yield %r : tensor<8xf32>
  }
  return %0 : tensor<8xf32>
}

// -----

func.func @split(%x: tensor<?x3x9x9xf32>, %w: tensor<16x3x3x3xf32>) -> tensor<?x16x9x9xf32> {
  // expected-error@+1 {{the schedule #kiln.conv<bm = 128, bn = 16, bk = 16, tm = 8, tn = 2, split_k = 2, index_bits = 32> does not fit this convolution: split-K needs static output sizes (its workspace)}}
  %0 = kiln.kernel "conv2d" opaque (%x, %w) {kiln.schedule = {cuda = #kiln.conv<bm = 128, bn = 16, bk = 16, tm = 8, tn = 2, split_k = 2, index_bits = 32>}} : (tensor<?x3x9x9xf32>, tensor<16x3x3x3xf32>) -> tensor<?x16x9x9xf32> {
  ^bb0(%a0: tensor<?x3x9x9xf32>, %a1: tensor<16x3x3x3xf32>):
    %r = kiln.conv2d %a0, %a1 stride [1, 1] padding [1, 1] : (tensor<?x3x9x9xf32>, tensor<16x3x3x3xf32>) -> tensor<?x16x9x9xf32>
    kiln.yield %r : tensor<?x16x9x9xf32>
  }
  return %0 : tensor<?x16x9x9xf32>
}
