// RUN: kiln-opt --kiln-schedule %s | kiln-translate --kernel-to-cuda | FileCheck %s
// RUN: kiln-opt --kiln-schedule %s | kiln-translate --kernel-to-cpp | FileCheck %s --check-prefix=CPP

// Three segments of different shapes in one launch, with the block the cost
// model gives (256): a thread for each element of all the segments laid end
// to end (231 + 5 + 33 = 269), and no size parameter (segments are static).
// A thread finds its segment's branch by its static end and evaluates it at
// the segment's own flat index i: dropout draws the mask of its tensor. The
// bias (in1) broadcasts inside the first segment and is read again by the
// third, passed once.
// CHECK-LABEL: // kernel horizontal_add_dropout_neg_0: grid 269/256,1,1 block 256,1,1 shared 0
// CHECK: void horizontal_add_dropout_neg_0(const float *__restrict__ in0, const float *__restrict__ in1, const float *__restrict__ in2, float *__restrict__ out0, float *__restrict__ out1, float *__restrict__ out2, float *__restrict__ out3, const unsigned long long *__restrict__ seed) {
// CHECK-NEXT: // The segments laid end to end: t = segment start + i.
// CHECK-NEXT: const long long n = 269LL;
// CHECK-NEXT: for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < n;
// CHECK-NEXT: t += (long long)gridDim.x * blockDim.x) {
// CHECK-NEXT: if (t < 231LL) { // segment 0: add_dropout
// CHECK-NEXT: const long long i = t - 0LL;
// CHECK-NEXT: const long long i1 = i % 33LL;
// CHECK-NEXT: const float x0 = in0[i];
// CHECK-NEXT: const float x1 = in1[i1];
// CHECK: kiln_uniform01(*seed, 5ULL, (unsigned long long)(i)) >= 0.29999999999999999
// CHECK: out0[i] = v0;
// CHECK-NEXT: out1[i] = v1;
// CHECK-NEXT: } else if (t < 236LL) { // segment 1: dropout
// CHECK-NEXT: const long long i = t - 231LL;
// CHECK-NEXT: const float x0 = in2[i];
// CHECK-NEXT: kiln_uniform01(*seed, 5ULL, (unsigned long long)(i)) >= 0.5
// CHECK-NEXT: out2[i] = v2;
// CHECK-NEXT: } else if (t < 269LL) { // segment 2: neg
// CHECK-NEXT: const long long i = t - 236LL;
// CHECK-NEXT: const float x0 = in1[i];
// CHECK: out3[i] = v3;
// CHECK-NEXT: }
// CHECK-NEXT: }
// CHECK-NEXT: }

// The C++ target: one loop a segment, one after the other, each split among
// the threads in tasks of KILN_ELEMENTS_PER_TASK elements.
// CPP-LABEL: // kernel horizontal_add_dropout_neg_0{{$}}
// CPP: // segment 0: add_dropout
// CPP-NEXT: kiln_parallel_for((231LL + KILN_ELEMENTS_PER_TASK - 1) / KILN_ELEMENTS_PER_TASK, [&](long long begin, long long end) {
// CPP-NEXT: const long long last = end * KILN_ELEMENTS_PER_TASK < 231LL ? end * KILN_ELEMENTS_PER_TASK : 231LL;
// CPP: // segment 1: dropout
// CPP-NEXT: kiln_parallel_for((5LL + KILN_ELEMENTS_PER_TASK - 1) / KILN_ELEMENTS_PER_TASK, [&](long long begin, long long end) {
// CPP-NEXT: const long long last = end * KILN_ELEMENTS_PER_TASK < 5LL ? end * KILN_ELEMENTS_PER_TASK : 5LL;
// CPP: // segment 2: neg
// CPP-NEXT: kiln_parallel_for((33LL + KILN_ELEMENTS_PER_TASK - 1) / KILN_ELEMENTS_PER_TASK, [&](long long begin, long long end) {
// CPP-NEXT: const long long last = end * KILN_ELEMENTS_PER_TASK < 33LL ? end * KILN_ELEMENTS_PER_TASK : 33LL;
func.func @segments(%x: tensor<7x33xf32>, %b: tensor<33xf32>, %y: tensor<5xf32>) -> (tensor<7x33xf32>, tensor<7x33xf32>, tensor<5xf32>, tensor<33xf32>) {
  %k:4 = kiln.kernel "horizontal_add_dropout_neg" horizontal (%x, %b, %y) : (tensor<7x33xf32>, tensor<33xf32>, tensor<5xf32>) -> (tensor<7x33xf32>, tensor<7x33xf32>, tensor<5xf32>, tensor<33xf32>) {
  ^bb0(%a: tensor<7x33xf32>, %c: tensor<33xf32>, %d: tensor<5xf32>):
    %0:2 = kiln.kernel "add_dropout" elementwise (%a, %c) : (tensor<7x33xf32>, tensor<33xf32>) -> (tensor<7x33xf32>, tensor<7x33xf32>) {
    ^bb0(%p: tensor<7x33xf32>, %q: tensor<33xf32>):
      %s = kiln.add %p, %q : (tensor<7x33xf32>, tensor<33xf32>) -> tensor<7x33xf32>
      %t = kiln.dropout %s rate 3.000000e-01 stream 5 : tensor<7x33xf32>
      kiln.yield %s, %t : tensor<7x33xf32>, tensor<7x33xf32>
    }
    %1 = kiln.kernel "dropout" elementwise (%d) : (tensor<5xf32>) -> tensor<5xf32> {
    ^bb0(%p: tensor<5xf32>):
      %t = kiln.dropout %p rate 5.000000e-01 stream 5 : tensor<5xf32>
      kiln.yield %t : tensor<5xf32>
    }
    %2 = kiln.kernel "neg" elementwise (%c) : (tensor<33xf32>) -> tensor<33xf32> {
    ^bb0(%p: tensor<33xf32>):
      %t = kiln.neg %p : tensor<33xf32>
      kiln.yield %t : tensor<33xf32>
    }
    kiln.yield %0#0, %0#1, %1, %2 : tensor<7x33xf32>, tensor<7x33xf32>, tensor<5xf32>, tensor<33xf32>
  }
  return %k#0, %k#1, %k#2, %k#3 : tensor<7x33xf32>, tensor<7x33xf32>, tensor<5xf32>, tensor<33xf32>
}

// The optimizer's update of two parameters (a layer's weight and bias, as
// the examples' steps end) with the block its schedule gives, 128: 5120 +
// 10 elements; the bias's branch starts at the weight's end.
// CHECK-LABEL: // kernel horizontal_sgd_1: grid 5130/128,1,1 block 128,1,1 shared 0
// CHECK: const long long n = 5130LL;
// CHECK: if (t < 5120LL) { // segment 0: mul_sub
// CHECK-NEXT: const long long i = t - 0LL;
// CHECK: } else if (t < 5130LL) { // segment 1: mul_sub
// CHECK-NEXT: const long long i = t - 5120LL;
// CPP-LABEL: // kernel horizontal_sgd_1{{$}}
// CPP: kiln_parallel_for((5120LL + KILN_ELEMENTS_PER_TASK - 1) / KILN_ELEMENTS_PER_TASK, [&](long long begin, long long end) {
// CPP: kiln_parallel_for((10LL + KILN_ELEMENTS_PER_TASK - 1) / KILN_ELEMENTS_PER_TASK, [&](long long begin, long long end) {
func.func @sgd(%w: tensor<10x512xf32>, %gw: tensor<10x512xf32>, %b: tensor<10xf32>, %gb: tensor<10xf32>) -> (tensor<10x512xf32>, tensor<10xf32>) {
  %k:2 = kiln.kernel "horizontal_sgd" horizontal (%w, %gw, %b, %gb) {kiln.schedule = {cuda = #kiln.elementwise<block = 128>}} : (tensor<10x512xf32>, tensor<10x512xf32>, tensor<10xf32>, tensor<10xf32>) -> (tensor<10x512xf32>, tensor<10xf32>) {
  ^bb0(%a0: tensor<10x512xf32>, %a1: tensor<10x512xf32>, %a2: tensor<10xf32>, %a3: tensor<10xf32>):
    %0 = kiln.kernel "mul_sub" elementwise (%a0, %a1) : (tensor<10x512xf32>, tensor<10x512xf32>) -> tensor<10x512xf32> {
    ^bb0(%p: tensor<10x512xf32>, %q: tensor<10x512xf32>):
      %lr = kiln.constant dense<1.000000e-01> : tensor<f32>
      %s = kiln.mul %q, %lr : (tensor<10x512xf32>, tensor<f32>) -> tensor<10x512xf32>
      %t = kiln.sub %p, %s : (tensor<10x512xf32>, tensor<10x512xf32>) -> tensor<10x512xf32>
      kiln.yield %t : tensor<10x512xf32>
    }
    %1 = kiln.kernel "mul_sub" elementwise (%a2, %a3) : (tensor<10xf32>, tensor<10xf32>) -> tensor<10xf32> {
    ^bb0(%p: tensor<10xf32>, %q: tensor<10xf32>):
      %lr = kiln.constant dense<1.000000e-01> : tensor<f32>
      %s = kiln.mul %q, %lr : (tensor<10xf32>, tensor<f32>) -> tensor<10xf32>
      %t = kiln.sub %p, %s : (tensor<10xf32>, tensor<10xf32>) -> tensor<10xf32>
      kiln.yield %t : tensor<10xf32>
    }
    kiln.yield %0, %1 : tensor<10x512xf32>, tensor<10xf32>
  }
  return %k#0, %k#1 : tensor<10x512xf32>, tensor<10xf32>
}
