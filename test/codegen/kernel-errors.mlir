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

// -----

func.func @attention_tile(%w: tensor<2x256x256xf64>) -> tensor<2x256x256xf64> {
  // expected-error@+1 {{the schedule #kiln.attention<tile = 64> does not fit this attention kernel: its tiles take 427520 bytes of shared memory, more than 102400}}
  %0:2 = kiln.kernel "attention" opaque (%w, %w, %w) {kiln.schedule = {cuda = #kiln.attention<tile = 64>}} : (tensor<2x256x256xf64>, tensor<2x256x256xf64>, tensor<2x256x256xf64>) -> (tensor<2x256x256xf64>, tensor<2x256xf64>) {
  ^bb0(%a: tensor<2x256x256xf64>, %b: tensor<2x256x256xf64>, %c: tensor<2x256x256xf64>):
    %r:2 = kiln.attention %a, %b, %c scale 6.250000e-02 : (tensor<2x256x256xf64>, tensor<2x256x256xf64>, tensor<2x256x256xf64>) -> (tensor<2x256x256xf64>, tensor<2x256xf64>)
    kiln.yield %r#0, %r#1 : tensor<2x256x256xf64>, tensor<2x256xf64>
  }
  return %0#0 : tensor<2x256x256xf64>
}

// -----

func.func @pool_block(%x: tensor<8x3x28x28xf32>) -> tensor<8x3x14x14xf32> {
  // expected-error@+1 {{kernel 'max_pool2d' has the cuda schedule #kiln.gemm<bm = 16, bn = 16, bk = 8, tm = 1, tn = 1, split_k = 1>, not a #kiln.elementwise schedule}}
  %0 = kiln.kernel "max_pool2d" opaque (%x) {kiln.schedule = {cuda = #kiln.gemm<bm = 16, bn = 16, bk = 8, tm = 1, tn = 1, split_k = 1>}} : (tensor<8x3x28x28xf32>) -> tensor<8x3x14x14xf32> {
  ^bb0(%a: tensor<8x3x28x28xf32>):
    %r = kiln.max_pool2d %a kernel [2, 2] stride [2, 2] padding [0, 0] : (tensor<8x3x28x28xf32>) -> tensor<8x3x14x14xf32>
    kiln.yield %r : tensor<8x3x14x14xf32>
  }
  return %0 : tensor<8x3x14x14xf32>
}

// -----

// Only an op that TakesEpilogue (convolution, pooling, pooling gradients)
// takes scalar ops after it in an opaque kernel.
func.func @epilogue(%x: tensor<4x6xf32>) -> tensor<6x4xf32> {
  // expected-error@+1 {{an opaque kernel must hold one op whose result it yields, or one that takes an epilogue and scalar ops on its result's shape ('transpose_neg')}}
  %0 = kiln.kernel "transpose_neg" opaque (%x) {kiln.schedule = {cuda = #kiln.elementwise<block = 256>}} : (tensor<4x6xf32>) -> tensor<6x4xf32> {
  ^bb0(%a: tensor<4x6xf32>):
    %t = kiln.transpose %a [1, 0] : (tensor<4x6xf32>) -> tensor<6x4xf32>
    %r = kiln.neg %t : tensor<6x4xf32>
    kiln.yield %r : tensor<6x4xf32>
  }
  return %0 : tensor<6x4xf32>
}
