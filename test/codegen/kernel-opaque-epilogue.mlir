// RUN: kiln-translate --kernel-to-cuda %s | FileCheck %s
// RUN: kiln-translate --kernel-to-cpp %s | FileCheck %s --check-prefix=CPP

// A convolution with its bias and ReLU as the epilogue (an op that
// TakesEpilogue): on the GPU each output element goes through the
// epilogue at its store (the bias indexed by the element's channel); in
// C++ each image's output is computed into the thread's scratch, then the
// epilogue runs over the image's elements in rows of OH * OW (the bias is
// constant along them: one pointer a row, read at 0).
// CHECK-LABEL: // kernel conv2d_add_relu_0: grid 81*d0/64,16/16,1 block 64,1,1 shared 0
// CHECK: if (col < GN) {
// CHECK-NEXT: {
// CHECK-NEXT: const long long idx = (n * O + col) * (OH * OW) + ohw;
// CHECK-NEXT: const float value = acc[i][j];
// CHECK-NEXT: const long long idx1 = (idx / (OH * OW)) % O;
// CHECK-NEXT: const float x2 = in2[idx1 * 1 * 1];
// CHECK-NEXT: const float v0 = value + x2; // add
// CHECK-NEXT: const float v1 = (v0 > 0.0f ? v0 : 0.0f); // relu
// CHECK-NEXT: out0[idx] = v1;
// CPP-LABEL: // kernel conv2d_add_relu_0
// CPP: stored to the image's channels (in the thread's scratch), then the epilogue runs over the image.
// CPP: float *__restrict__ padded = kiln_gemm_thread_scratch<float>(paddedSize + GN * GM);
// CPP: float *__restrict__ result = padded + paddedSize;
// CPP: result[(col0 + c) * GM + row0 + i] = tile[i * NR + c];
// CPP: // The epilogue over the result elements [n * GN * GM, + GN * GM), the main op's
// CPP-NEXT: // values at result, in runs along rows of OH * OW elements.
// CPP: const long long i1 = (first / (OH * OW)) % O;
// CPP-NEXT: const float *__restrict__ p2 = in2 + i1 * 1 * 1;
// CPP: const float x2 = p2[0];
// CPP-NEXT: const float v0 = result[first - epilogueFirst + j] + x2; // add
// CPP: out0[i] = v1;
func.func @conv(%x: tensor<?x3x9x9xf32>, %w: tensor<16x3x3x3xf32>, %b: tensor<16x1x1xf32>) -> tensor<?x16x9x9xf32> {
  %0 = kiln.kernel "conv2d_add_relu" opaque (%x, %w, %b) {kiln.schedule = {cpu = #kiln.cpu_gemm<mr = 6, nr = 16>, cuda = #kiln.conv<bm = 64, bn = 16, bk = 16, tm = 4, tn = 4, split_k = 1, index_bits = 64>}} : (tensor<?x3x9x9xf32>, tensor<16x3x3x3xf32>, tensor<16x1x1xf32>) -> tensor<?x16x9x9xf32> {
  ^bb0(%a0: tensor<?x3x9x9xf32>, %a1: tensor<16x3x3x3xf32>, %a2: tensor<16x1x1xf32>):
    %c = kiln.conv2d %a0, %a1 stride [1, 1] padding [1, 1] : (tensor<?x3x9x9xf32>, tensor<16x3x3x3xf32>) -> tensor<?x16x9x9xf32>
    %s = kiln.add %c, %a2 : (tensor<?x16x9x9xf32>, tensor<16x1x1xf32>) -> tensor<?x16x9x9xf32>
    %r = kiln.relu %s : tensor<?x16x9x9xf32>
    kiln.yield %r : tensor<?x16x9x9xf32>
  }
  return %0 : tensor<?x16x9x9xf32>
}

// A max-pooling gradient with a ReLU's mask as its epilogue, yielding the
// pooling gradient too: the windows do not overlap, so in C++ each plane is
// scattered into the thread's scratch (the taps as branch-free selects),
// then the epilogue runs over it, storing both results.
// CHECK-LABEL: // kernel max_pool2d_grad_cmp_select_1
// CHECK: argmax = kiln_select(better, at, argmax);
// CHECK: const float value = acc;
// CHECK: out0[idx] = value;
// CHECK-NEXT: out1[idx] = v1;
// CPP-LABEL: // kernel max_pool2d_grad_cmp_select_1
// CPP: float *__restrict__ plane = kiln_gemm_thread_scratch<float>(H * W);
// CPP: float *__restrict__ result = plane;
// CPP: argmax = kiln_select(better, at, argmax);
// CPP: result[argmax - nc * H * W] = in1[(nc * OH + oh) * OW + ow];
// CPP: // The epilogue over the result elements [nc * H * W, + H * W), the main op's
// CPP: const float *__restrict__ p0 = in0 + first;
// CPP: out0[i] = plane[first - epilogueFirst + j];
// CPP-NEXT: out1[i] = v1;
func.func @pool(%h: tensor<4x3x8x8xf32>, %g: tensor<4x3x4x4xf32>) -> (tensor<4x3x8x8xf32>, tensor<4x3x8x8xf32>) {
  %0:2 = kiln.kernel "max_pool2d_grad_cmp_select" opaque (%h, %g) {kiln.schedule = {cuda = #kiln.elementwise<block = 128>}} : (tensor<4x3x8x8xf32>, tensor<4x3x4x4xf32>) -> (tensor<4x3x8x8xf32>, tensor<4x3x8x8xf32>) {
  ^bb0(%a0: tensor<4x3x8x8xf32>, %a1: tensor<4x3x4x4xf32>):
    %zero = kiln.constant dense<0.0> : tensor<f32>
    %d = kiln.max_pool2d_grad %a0, %a1 kernel [2, 2] stride [2, 2] padding [0, 0] : (tensor<4x3x8x8xf32>, tensor<4x3x4x4xf32>) -> tensor<4x3x8x8xf32>
    %m = kiln.cmp gt, %a0, %zero : (tensor<4x3x8x8xf32>, tensor<f32>) -> tensor<4x3x8x8xi1>
    %s = kiln.select %m, %d, %zero : (tensor<4x3x8x8xi1>, tensor<4x3x8x8xf32>, tensor<f32>) -> tensor<4x3x8x8xf32>
    kiln.yield %d, %s : tensor<4x3x8x8xf32>, tensor<4x3x8x8xf32>
  }
  return %0#0, %0#1 : tensor<4x3x8x8xf32>, tensor<4x3x8x8xf32>
}
