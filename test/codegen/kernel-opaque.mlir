// RUN: kiln-translate --kernel-to-cuda %s | FileCheck %s
// RUN: kiln-translate --kernel-to-cpp %s | FileCheck %s --check-prefix=CPP

// Pooling, layout copies and embeddings with the schedules they carry,
// #kiln.elementwise<block = N>: on the GPU a grid-stride loop over the
// result's elements (the embedding gradient's, over a table row's) with
// blocks of N threads; in C++ the same body in a plain loop. Sizes are
// named constants, a dynamic one a parameter.

// Max pooling at a dynamic batch, blocks of 128: one thread an output
// element, N * 3 * 4 * 3 of them; the padding never wins.
// CHECK-LABEL: // kernel max_pool2d_0: grid 36*d0/128,1,1 block 128,1,1 shared 0
// CHECK: void max_pool2d_0(const float *__restrict__ in0, float *__restrict__ out0, long long s0) {
// CHECK: const long long N = s0, C = 3LL, H = 7LL, W = 6LL, OH = 4LL, OW = 3LL, KH = 3LL, KW = 3LL, SH = 2LL, SW = 2LL, PH = 1LL, PW = 1LL;
// CHECK-NEXT: const long long count = N * C * OH * OW;
// CHECK-NEXT: for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
// CHECK-NEXT: i += (long long)gridDim.x * blockDim.x) {
// CHECK: continue; // padding
// CHECK: out0[i] = acc;
// In C++ the planes are split among the threads, each output row's
// elements in order.
// CPP-LABEL: // kernel max_pool2d_0{{$}}
// CPP: kiln_parallel_for(N * C, [&](long long begin, long long end) {
// CPP-NEXT: for (long long nc = begin; nc < end; ++nc)
// CPP-NEXT: for (long long oh = 0; oh < OH; ++oh)
// CPP-NEXT: for (long long ow = 0; ow < OW; ++ow) {
// CPP: continue; // padding
// CPP: out0[(nc * OH + oh) * OW + ow] = acc;

// The average pooling's gradient, blocks of 64: one thread an input
// element, gathering a share of each window that contains it (no atomics).
// CHECK-LABEL: // kernel avg_pool2d_grad_1: grid 126*d0/64,1,1 block 64,1,1 shared 0
// CHECK: const long long count = N * C * H * W;
// CHECK-NEXT: for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
// CHECK: for (long long oh = ohFirst; oh <= ohLast; ++oh)
// CHECK-NEXT: for (long long ow = owFirst; ow <= owLast; ++ow) {
// CHECK-NEXT: acc += in0[(nc * OH + oh) * OW + ow] / 9.0f;
// CPP-LABEL: // kernel avg_pool2d_grad_1{{$}}
// CPP: const long long count = N * C * H * W;
// CPP-NEXT: kiln_parallel_for((count + KILN_ELEMENTS_PER_TASK - 1) / KILN_ELEMENTS_PER_TASK, [&](long long begin, long long end) {
// CPP: for (long long i = begin * KILN_ELEMENTS_PER_TASK; i < last; ++i) {

// A transpose [2, 3, 5] -> [5, 2, 3], blocks of 32: each output element
// reads the input at its permuted multi-index.
// CHECK-LABEL: // kernel transpose_2: grid 30/32,1,1 block 32,1,1 shared 0
// CHECK: const long long D0 = 2LL, D1 = 3LL, D2 = 5LL;
// CHECK-NEXT: const long long count = D0 * D1 * D2;
// CHECK-NEXT: for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
// CHECK: // the output index (o0, o1, o2) reads input dimensions (D2, D0, D1)
// CHECK: out0[i] = in0[o0 + o1 * (D1 * D2) + o2 * (D2)];
// CPP-LABEL: // kernel transpose_2{{$}}
// CPP: for (long long i = begin * KILN_ELEMENTS_PER_TASK; i < last; ++i) {
// CPP: out0[i] = in0[o0 + o1 * (D1 * D2) + o2 * (D2)];

// An embedding, blocks of 512: an output element a thread, 4 * 7 * 40.
// CHECK-LABEL: // kernel embedding_3: grid 1120/512,1,1 block 512,1,1 shared 0
// CHECK: const long long V = 5LL, D = 40LL, P0 = 4LL, P1 = 7LL;
// CHECK-NEXT: const long long count = P0 * P1 * D;
// CHECK-NEXT: for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < count;
// CHECK: const long long row = (long long)in1[p];
// CHECK: out0[i] = row >= 0 && row < V ? in0[row * D + d] : 0.0f;
// CPP-LABEL: // kernel embedding_3{{$}}
// CPP: const long long count = P0 * P1 * D;
// CPP-NEXT: kiln_parallel_for((count + KILN_ELEMENTS_PER_TASK - 1) / KILN_ELEMENTS_PER_TASK, [&](long long begin, long long end) {
// CPP: for (long long i = begin * KILN_ELEMENTS_PER_TASK; i < last; ++i) {

// The embedding's gradient: a block of 64 threads a table row (5 rows),
// striding over the row's 40 elements, each summing the gradient rows of
// its index in position order.
// CHECK-LABEL: // kernel embedding_grad_4: grid 5,1,1 block 64,1,1 shared 0
// CHECK: for (long long row = blockIdx.x; row < V; row += gridDim.x)
// CHECK-NEXT: for (long long d = threadIdx.x; d < D; d += blockDim.x) {
// CHECK: for (long long p = 0; p < positions; ++p)
// CHECK-NEXT: if ((long long)in0[p] == row)
// CPP-LABEL: // kernel embedding_grad_4{{$}}
// CPP: for (long long row = 0; row < V; ++row)
// CPP-NEXT: for (long long d = 0; d < D; ++d) {
func.func @opaque(%x: tensor<?x3x7x6xf32>, %t: tensor<2x3x5xf32>, %table: tensor<5x40xf32>, %ids: tensor<4x7xi32>, %g: tensor<4x7x40xf32>) {
  %0 = kiln.kernel "max_pool2d" opaque (%x) {kiln.schedule = {cuda = #kiln.elementwise<block = 128>}} : (tensor<?x3x7x6xf32>) -> tensor<?x3x4x3xf32> {
  ^bb0(%a0: tensor<?x3x7x6xf32>):
    %r = kiln.max_pool2d %a0 kernel [3, 3] stride [2, 2] padding [1, 1] : (tensor<?x3x7x6xf32>) -> tensor<?x3x4x3xf32>
    kiln.yield %r : tensor<?x3x4x3xf32>
  }
  %1 = kiln.kernel "avg_pool2d_grad" opaque (%0, %x) {kiln.schedule = {cuda = #kiln.elementwise<block = 64>}} : (tensor<?x3x4x3xf32>, tensor<?x3x7x6xf32>) -> tensor<?x3x7x6xf32> {
  ^bb0(%a0: tensor<?x3x4x3xf32>, %a1: tensor<?x3x7x6xf32>):
    %r = kiln.avg_pool2d_grad %a0, %a1 kernel [3, 3] stride [2, 2] padding [1, 1] : (tensor<?x3x4x3xf32>, tensor<?x3x7x6xf32>) -> tensor<?x3x7x6xf32>
    kiln.yield %r : tensor<?x3x7x6xf32>
  }
  %2 = kiln.kernel "transpose" opaque (%t) {kiln.schedule = {cuda = #kiln.elementwise<block = 32>}} : (tensor<2x3x5xf32>) -> tensor<5x2x3xf32> {
  ^bb0(%a0: tensor<2x3x5xf32>):
    %r = kiln.transpose %a0 [2, 0, 1] : (tensor<2x3x5xf32>) -> tensor<5x2x3xf32>
    kiln.yield %r : tensor<5x2x3xf32>
  }
  %3 = kiln.kernel "embedding" opaque (%table, %ids) {kiln.schedule = {cuda = #kiln.elementwise<block = 512>}} : (tensor<5x40xf32>, tensor<4x7xi32>) -> tensor<4x7x40xf32> {
  ^bb0(%a0: tensor<5x40xf32>, %a1: tensor<4x7xi32>):
    %r = kiln.embedding %a0, %a1 : (tensor<5x40xf32>, tensor<4x7xi32>) -> tensor<4x7x40xf32>
    kiln.yield %r : tensor<4x7x40xf32>
  }
  %4 = kiln.kernel "embedding_grad" opaque (%ids, %g, %table) {kiln.schedule = {cuda = #kiln.elementwise<block = 64>}} : (tensor<4x7xi32>, tensor<4x7x40xf32>, tensor<5x40xf32>) -> tensor<5x40xf32> {
  ^bb0(%a0: tensor<4x7xi32>, %a1: tensor<4x7x40xf32>, %a2: tensor<5x40xf32>):
    %r = kiln.embedding_grad %a0, %a1, %a2 : (tensor<4x7xi32>, tensor<4x7x40xf32>, tensor<5x40xf32>) -> tensor<5x40xf32>
    kiln.yield %r : tensor<5x40xf32>
  }
  return
}
