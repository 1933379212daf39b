// RUN: kiln-opt %s -split-input-file -verify-diagnostics --kiln-schedule | FileCheck %s
// RUN: kiln-opt %s -split-input-file -verify-diagnostics --kiln-schedule | kiln-opt -split-input-file | FileCheck %s

// A layer at batch 128: the GEMM model splits k 4 ways over small tiles
// (the output alone would fill 16 blocks); the C++ loops take 64 columns.
// CHECK-LABEL: func.func @layer
// CHECK: kiln.kernel "matmul_add_relu" matmul
// CHECK: kiln.schedule = {cpu = #kiln.cpu_gemm<mr = 6, nr = 64>, cuda = #kiln.gemm<bm = 32, bn = 16, bk = 8, tm = 8, tn = 2, split_k = 4>}
func.func @layer(%x: tensor<128x784xf32>, %w: tensor<512x784xf32>, %b: tensor<512xf32>) -> tensor<128x512xf32> {
  %0 = kiln.kernel "matmul_add_relu" matmul (%x, %w, %b) : (tensor<128x784xf32>, tensor<512x784xf32>, tensor<512xf32>) -> tensor<128x512xf32> {
  ^bb0(%a: tensor<128x784xf32>, %bw: tensor<512x784xf32>, %bias: tensor<512xf32>):
    %1 = kiln.matmul %a, %bw transpose_rhs : (tensor<128x784xf32>, tensor<512x784xf32>) -> tensor<128x512xf32>
    %2 = kiln.add %1, %bias : (tensor<128x512xf32>, tensor<512xf32>) -> tensor<128x512xf32>
    %3 = kiln.relu %2 : tensor<128x512xf32>
    kiln.yield %3 : tensor<128x512xf32>
  }
  return %0 : tensor<128x512xf32>
}

// -----

// The same layer at a dynamic batch: 1024 is assumed, 64 x 64 tiles.
// CHECK-LABEL: func.func @dynamic
// CHECK: cuda = #kiln.gemm<bm = 64, bn = 64, bk = 8, tm = 8, tn = 4, split_k = 2>
func.func @dynamic(%x: tensor<?x784xf32>, %w: tensor<512x784xf32>) -> tensor<?x512xf32> {
  %0 = kiln.kernel "matmul" matmul (%x, %w) : (tensor<?x784xf32>, tensor<512x784xf32>) -> tensor<?x512xf32> {
  ^bb0(%a: tensor<?x784xf32>, %bw: tensor<512x784xf32>):
    %1 = kiln.matmul %a, %bw transpose_rhs : (tensor<?x784xf32>, tensor<512x784xf32>) -> tensor<?x512xf32>
    kiln.yield %1 : tensor<?x512xf32>
  }
  return %0 : tensor<?x512xf32>
}

// -----

// Reductions: rows of 10 (a warp a row), a bias gradient (columns innermost:
// 32 columns x 16 slices of the 128 rows), and count (one thread).
// Elementwise kernels get their block; the C++ side has nothing to choose.
// CHECK-LABEL: func.func @reductions
// CHECK: kiln.kernel "reduce_sum" reduction
// CHECK: {kiln.schedule = {cuda = #kiln.reduce<scheme = warp_rows, block_x = 256, block_y = 1>}}
// CHECK: kiln.kernel "reduce_sum" reduction
// CHECK: {kiln.schedule = {cuda = #kiln.reduce<scheme = columns, block_x = 32, block_y = 16>}}
// CHECK: kiln.kernel "count" reduction
// CHECK: {kiln.schedule = {cuda = #kiln.reduce<scheme = single, block_x = 1, block_y = 1>}}
// CHECK: kiln.kernel "neg" elementwise
// CHECK: {kiln.schedule = {cuda = #kiln.elementwise<block = 256>}}
func.func @reductions(%x: tensor<128x10xf32>, %g: tensor<128x512xf32>) -> (tensor<128xf32>, tensor<512xf32>, tensor<f32>, tensor<128x10xf32>) {
  %0 = kiln.kernel "reduce_sum" reduction (%x) : (tensor<128x10xf32>) -> tensor<128xf32> {
  ^bb0(%a: tensor<128x10xf32>):
    %r = kiln.reduce_sum %a [1] : (tensor<128x10xf32>) -> tensor<128xf32>
    kiln.yield %r : tensor<128xf32>
  }
  %1 = kiln.kernel "reduce_sum" reduction (%g) : (tensor<128x512xf32>) -> tensor<512xf32> {
  ^bb0(%a: tensor<128x512xf32>):
    %r = kiln.reduce_sum %a [0] : (tensor<128x512xf32>) -> tensor<512xf32>
    kiln.yield %r : tensor<512xf32>
  }
  %2 = kiln.kernel "count" reduction (%x) : (tensor<128x10xf32>) -> tensor<f32> {
  ^bb0(%a: tensor<128x10xf32>):
    %r = kiln.count %a [] : (tensor<128x10xf32>) -> tensor<f32>
    kiln.yield %r : tensor<f32>
  }
  %3 = kiln.kernel "neg" elementwise (%x) : (tensor<128x10xf32>) -> tensor<128x10xf32> {
  ^bb0(%a: tensor<128x10xf32>):
    %r = kiln.neg %a : tensor<128x10xf32>
    kiln.yield %r : tensor<128x10xf32>
  }
  return %0, %1, %2, %3 : tensor<128xf32>, tensor<512xf32>, tensor<f32>, tensor<128x10xf32>
}

// -----

// A convolution's weight gradient: its long k (the batch times the image)
// in 52 slices on the GPU; in C++ a GEMM per image whose 288 columns (the
// weights of an output channel) take panels of 64.
// CHECK-LABEL: func.func @conv_weight_gradient
// CHECK: kiln.schedule = {cpu = #kiln.cpu_gemm<mr = 6, nr = 64>, cuda = #kiln.conv<bm = 64, bn = 64, bk = 16, tm = 4, tn = 8, split_k = 52, index_bits = 32>}
func.func @conv_weight_gradient(%x: tensor<256x32x14x14xf32>, %g: tensor<256x64x14x14xf32>, %w: tensor<64x32x3x3xf32>) -> tensor<64x32x3x3xf32> {
  %0 = kiln.kernel "conv2d_grad_weight" opaque (%x, %g, %w) : (tensor<256x32x14x14xf32>, tensor<256x64x14x14xf32>, tensor<64x32x3x3xf32>) -> tensor<64x32x3x3xf32> {
  ^bb0(%a: tensor<256x32x14x14xf32>, %b: tensor<256x64x14x14xf32>, %c: tensor<64x32x3x3xf32>):
    %r = kiln.conv2d_grad_weight %a, %b, %c stride [1, 1] padding [1, 1] : (tensor<256x32x14x14xf32>, tensor<256x64x14x14xf32>, tensor<64x32x3x3xf32>) -> tensor<64x32x3x3xf32>
    kiln.yield %r : tensor<64x32x3x3xf32>
  }
  return %0 : tensor<64x32x3x3xf32>
}

// -----

// A schedule already on a kernel (written by hand, or from --schedules) is
// kept; the targets it lacks are filled in.
// CHECK-LABEL: func.func @kept
// CHECK: kiln.schedule = {cpu = #kiln.cpu_gemm<mr = 6, nr = 64>, cuda = #kiln.gemm<bm = 16, bn = 16, bk = 8, tm = 1, tn = 1, split_k = 1>}
// CHECK: kiln.schedule = {cuda = #kiln.elementwise<block = 1024>}
func.func @kept(%x: tensor<128x784xf32>, %w: tensor<512x784xf32>) -> (tensor<128x512xf32>, tensor<128x784xf32>) {
  %0 = kiln.kernel "matmul" matmul (%x, %w) {kiln.schedule = {cuda = #kiln.gemm<bm = 16, bn = 16, bk = 8, tm = 1, tn = 1, split_k = 1>}} : (tensor<128x784xf32>, tensor<512x784xf32>) -> tensor<128x512xf32> {
  ^bb0(%a: tensor<128x784xf32>, %bw: tensor<512x784xf32>):
    %1 = kiln.matmul %a, %bw transpose_rhs : (tensor<128x784xf32>, tensor<512x784xf32>) -> tensor<128x512xf32>
    kiln.yield %1 : tensor<128x512xf32>
  }
  %2 = kiln.kernel "neg" elementwise (%x) {kiln.schedule = {cuda = #kiln.elementwise<block = 1024>}} : (tensor<128x784xf32>) -> tensor<128x784xf32> {
  ^bb0(%a: tensor<128x784xf32>):
    %r = kiln.neg %a : tensor<128x784xf32>
    kiln.yield %r : tensor<128x784xf32>
  }
  return %0, %2 : tensor<128x512xf32>, tensor<128x784xf32>
}

// -----

// The other opaque kernels: layout copies, pooling and embedding loop over
// their elements with an elementwise block; an embedding gradient's block
// spans a table row (80 elements: 96 threads). Attention kernels get a tile
// on both targets: 64 rows, halved while half a tile covers the sequences
// (20 and 8 here) or the tiles overflow the shared memory (f64, D = 256).
// CHECK-LABEL: func.func @opaque
// CHECK: kiln.kernel "max_pool2d" opaque
// CHECK: {kiln.schedule = {cuda = #kiln.elementwise<block = 256>}}
// CHECK: kiln.kernel "embedding_grad" opaque
// CHECK: {kiln.schedule = {cuda = #kiln.elementwise<block = 96>}}
// CHECK: kiln.kernel "attention" opaque
// CHECK: {kiln.schedule = {cpu = #kiln.attention<tile = 64>, cuda = #kiln.attention<tile = 64>}}
// CHECK: kiln.kernel "attention" opaque
// CHECK: {kiln.schedule = {cpu = #kiln.attention<tile = 32>, cuda = #kiln.attention<tile = 32>}}
// CHECK: kiln.kernel "attention" opaque
// CHECK: {kiln.schedule = {cpu = #kiln.attention<tile = 16>, cuda = #kiln.attention<tile = 16>}}
// CHECK: kiln.kernel "attention" opaque
// CHECK: {kiln.schedule = {cpu = #kiln.attention<tile = 16>, cuda = #kiln.attention<tile = 16>}}
func.func @opaque(%x: tensor<8x3x28x28xf32>, %i: tensor<4x8xi32>, %g: tensor<4x8x80xf32>, %t: tensor<50x80xf32>,
                  %q: tensor<6x256x64xf32>, %s: tensor<6x20x64xf32>, %u: tensor<6x8x64xf32>, %w: tensor<2x256x256xf64>) {
  %0 = kiln.kernel "max_pool2d" opaque (%x) : (tensor<8x3x28x28xf32>) -> tensor<8x3x14x14xf32> {
  ^bb0(%a: tensor<8x3x28x28xf32>):
    %r = kiln.max_pool2d %a kernel [2, 2] stride [2, 2] padding [0, 0] : (tensor<8x3x28x28xf32>) -> tensor<8x3x14x14xf32>
    kiln.yield %r : tensor<8x3x14x14xf32>
  }
  %1 = kiln.kernel "embedding_grad" opaque (%i, %g, %t) : (tensor<4x8xi32>, tensor<4x8x80xf32>, tensor<50x80xf32>) -> tensor<50x80xf32> {
  ^bb0(%a: tensor<4x8xi32>, %b: tensor<4x8x80xf32>, %c: tensor<50x80xf32>):
    %r = kiln.embedding_grad %a, %b, %c : (tensor<4x8xi32>, tensor<4x8x80xf32>, tensor<50x80xf32>) -> tensor<50x80xf32>
    kiln.yield %r : tensor<50x80xf32>
  }
  %2:2 = kiln.kernel "attention" opaque (%q, %q, %q) : (tensor<6x256x64xf32>, tensor<6x256x64xf32>, tensor<6x256x64xf32>) -> (tensor<6x256x64xf32>, tensor<6x256xf32>) {
  ^bb0(%a: tensor<6x256x64xf32>, %b: tensor<6x256x64xf32>, %c: tensor<6x256x64xf32>):
    %r:2 = kiln.attention %a, %b, %c causal scale 1.250000e-01 : (tensor<6x256x64xf32>, tensor<6x256x64xf32>, tensor<6x256x64xf32>) -> (tensor<6x256x64xf32>, tensor<6x256xf32>)
    kiln.yield %r#0, %r#1 : tensor<6x256x64xf32>, tensor<6x256xf32>
  }
  %3:2 = kiln.kernel "attention" opaque (%s, %s, %s) : (tensor<6x20x64xf32>, tensor<6x20x64xf32>, tensor<6x20x64xf32>) -> (tensor<6x20x64xf32>, tensor<6x20xf32>) {
  ^bb0(%a: tensor<6x20x64xf32>, %b: tensor<6x20x64xf32>, %c: tensor<6x20x64xf32>):
    %r:2 = kiln.attention %a, %b, %c causal scale 1.250000e-01 : (tensor<6x20x64xf32>, tensor<6x20x64xf32>, tensor<6x20x64xf32>) -> (tensor<6x20x64xf32>, tensor<6x20xf32>)
    kiln.yield %r#0, %r#1 : tensor<6x20x64xf32>, tensor<6x20xf32>
  }
  %4:2 = kiln.kernel "attention" opaque (%u, %u, %u) : (tensor<6x8x64xf32>, tensor<6x8x64xf32>, tensor<6x8x64xf32>) -> (tensor<6x8x64xf32>, tensor<6x8xf32>) {
  ^bb0(%a: tensor<6x8x64xf32>, %b: tensor<6x8x64xf32>, %c: tensor<6x8x64xf32>):
    %r:2 = kiln.attention %a, %b, %c scale 1.250000e-01 : (tensor<6x8x64xf32>, tensor<6x8x64xf32>, tensor<6x8x64xf32>) -> (tensor<6x8x64xf32>, tensor<6x8xf32>)
    kiln.yield %r#0, %r#1 : tensor<6x8x64xf32>, tensor<6x8xf32>
  }
  %5:2 = kiln.kernel "attention" opaque (%w, %w, %w) : (tensor<2x256x256xf64>, tensor<2x256x256xf64>, tensor<2x256x256xf64>) -> (tensor<2x256x256xf64>, tensor<2x256xf64>) {
  ^bb0(%a: tensor<2x256x256xf64>, %b: tensor<2x256x256xf64>, %c: tensor<2x256x256xf64>):
    %r:2 = kiln.attention %a, %b, %c scale 6.250000e-02 : (tensor<2x256x256xf64>, tensor<2x256x256xf64>, tensor<2x256x256xf64>) -> (tensor<2x256x256xf64>, tensor<2x256xf64>)
    kiln.yield %r#0, %r#1 : tensor<2x256x256xf64>, tensor<2x256xf64>
  }
  return
}
