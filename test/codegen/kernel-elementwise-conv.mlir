// RUN: kiln-translate --kernel-to-cuda %s | FileCheck %s
// RUN: kiln-translate --kernel-to-cpp %s | FileCheck %s --check-prefix=CPP

// An elementwise kernel with a block of 128 threads: a grid-stride loop over
// the 29 * batch elements; in C++ rows of 29 (the bias is read along them,
// so they cannot be longer), each input read through a pointer advanced
// along the row, the rows split among the threads in tasks.
// CHECK-LABEL: // kernel add_relu_0: grid 29*d0/128,1,1 block 128,1,1 shared 0
// CHECK: for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
// CPP-LABEL: // kernel add_relu_0
// CPP: const long long n = s0 * 29LL, inner = 29LL, rows = n / inner;
// CPP: const float *__restrict__ p0 = in0 + first;
// CPP-NEXT: const float *__restrict__ p1 = in1 + 0;
// CPP: #pragma GCC ivdep
// CPP-NEXT: for (long long j = 0; j < inner; ++j) {
// CPP-NEXT: const long long i = first + j;
// CPP-NEXT: const float x0 = p0[j];
// CPP-NEXT: const float x1 = p1[j];

// A convolution as an implicit GEMM with 64 x 16 tiles and 64-bit indices;
// in C++ a GEMM per image on the micro-kernel with 4 x 32 tiles, transposed:
// the image's windows [OH * OW, C * KH * KW], read in place from its planes
// padded into the thread's scratch through an offset table, times the
// weight transposed, packed once; the tiles stored to the image's channels.
// CHECK-LABEL: // kernel conv2d_1: grid 648/64,16/16,1 block 256,1,1 shared 0
// CHECK: // Implicit GEMM C[GM, GN] = A[GM, GK] B[GK, GN], schedule
// CHECK-NEXT: // #kiln.conv<bm = 64, bn = 16, bk = 16, tm = 2, tn = 2, split_k = 1, index_bits = 64>:
// CHECK: using I = long long;
// CHECK-NEXT: constexpr int BM = 64, BN = 16, BK = 16, TM = 2, TN = 2;
// CHECK-NEXT: constexpr int THREADS = 256, SPLITS = 1;
// CPP-LABEL: // kernel conv2d_1
// CPP: // conv2d, a GEMM per image on the
// CPP-NEXT: // register-blocked micro-kernel (#kiln.cpu_gemm<mr = 4, nr = 32>), transposed: C[GM, GN] = A[GM, GK] B[GK, GN],
// CPP: constexpr int MR = 4, NR = 32;
// CPP-NEXT: const long long GM = OH * OW, GN = O, GK = C * KH * KW;
// CPP-NEXT: const long long PLANES = C, SOURCE_H = H, SOURCE_W = W;
// CPP-NEXT: const long long TOP = PH, LEFT = PW, PAD_H = (OH - 1) * SH + KH, PAD_W = (OW - 1) * SW + KW;
// CPP: offsets[k] = (k / (KH * KW) * PAD_H + k / KW % KH) * PAD_W + k % KW;
// CPP: kiln_gemm_pack_b<float, NR>(GK, GN, col0, in1, 1, GK, panel);
// CPP: kiln_parallel_for(N, [&](long long begin, long long end) {
// CPP-NEXT: const long long paddedSize = (PLANES * PAD_H * PAD_W + 15) / 16 * 16;
// CPP-NEXT: float *__restrict__ padded = kiln_gemm_thread_scratch<float>(paddedSize + 0);
// CPP-NEXT: for (long long n = begin; n < end; ++n) {
// CPP-NEXT: float *__restrict__ result = out0 + n * GN * GM;
// CPP: corner[i] = padded + q / OW * SH * PAD_W + q % OW * SW;
// CPP: kiln_gemm_micro_indirect<float, MR, NR>(GK, corner, offsets, packed + p * NR * GK, tile);
// CPP: result[(col0 + c) * GM + row0 + i] = tile[i * NR + c];

// Its weight gradient sums k (the batch times the image, 648) in 3 slices
// of blocks, the last to arrive adding them in order; the C++ computes the
// gradient transposed (rows the 27 weights, columns the 16 channels), each
// of 8 runs of images (8 images: one each) summed into its own 6 x 16 tiles,
// A read in place from the padded planes, then the runs added in order.
// CHECK-LABEL: // kernel conv2d_grad_weight_2: grid 16/16,27/32,3 block 128,1,1 shared 0
// CHECK: __device__ float conv2d_grad_weight_2_partials[3 * 1 * 16 * 32];
// CHECK-NEXT: __device__ unsigned conv2d_grad_weight_2_arrivals[1];
// CHECK: using I = int;
// CHECK-NEXT: constexpr int BM = 16, BN = 32, BK = 16, TM = 1, TN = 4;
// CHECK-NEXT: constexpr int THREADS = 128, SPLITS = 3;
// CHECK: if (arrived != SPLITS - 1)
// CPP-LABEL: // kernel conv2d_grad_weight_2
// CPP: constexpr int MR = 6, NR = 16;
// CPP-NEXT: const long long GM = C * KH * KW, GN = O, GK = OH * OW;
// CPP: const long long RUNS = N < 16 ? N : 16, runSize = rowTiles * panels * MR * NR;
// CPP: offsets[q] = q / OW * SH * PAD_W + q % OW * SW;
// CPP: kiln_conv_pad_planes(in0 + n * C * H * W, C, H, W, PH, PW, PAD_H, PAD_W, padded);
// CPP: kiln_gemm_pack_b<float, NR>(GK, GN, p * NR, in1 + n * O * GK, 1, GK, packed + p * NR * GK);
// CPP: corner[i] = padded + (k / (KH * KW) * PAD_H + k / KW % KH) * PAD_W + k % KW;
// CPP: kiln_gemm_micro_indirect<float, MR, NR>(GK, corner, offsets, packed + p * NR * GK, runSums + (rowTile * panels + p) * MR * NR, n > first);
// CPP: sum += tiles[run * runSize + i * NR + c];
// CPP-NEXT: out0[(col0 + c) * GM + row0 + i] = sum;
func.func @f(%x: tensor<?x29xf32>, %b: tensor<29xf32>, %y: tensor<8x3x9x9xf32>, %w: tensor<16x3x3x3xf32>, %gy: tensor<8x16x9x9xf32>) -> (tensor<?x29xf32>, tensor<8x16x9x9xf32>, tensor<16x3x3x3xf32>) {
  %0 = kiln.kernel "add_relu" elementwise (%x, %b) {kiln.schedule = {cuda = #kiln.elementwise<block = 128>}} : (tensor<?x29xf32>, tensor<29xf32>) -> tensor<?x29xf32> {
  ^bb0(%a: tensor<?x29xf32>, %c: tensor<29xf32>):
    %1 = kiln.add %a, %c : (tensor<?x29xf32>, tensor<29xf32>) -> tensor<?x29xf32>
    %2 = kiln.relu %1 : tensor<?x29xf32>
    kiln.yield %2 : tensor<?x29xf32>
  }
  %3 = kiln.kernel "conv2d" opaque (%y, %w) {kiln.schedule = {cpu = #kiln.cpu_gemm<mr = 4, nr = 32>, cuda = #kiln.conv<bm = 64, bn = 16, bk = 16, tm = 2, tn = 2, split_k = 1, index_bits = 64>}} : (tensor<8x3x9x9xf32>, tensor<16x3x3x3xf32>) -> tensor<8x16x9x9xf32> {
  ^bb0(%a0: tensor<8x3x9x9xf32>, %a1: tensor<16x3x3x3xf32>):
    %r = kiln.conv2d %a0, %a1 stride [1, 1] padding [1, 1] : (tensor<8x3x9x9xf32>, tensor<16x3x3x3xf32>) -> tensor<8x16x9x9xf32>
    kiln.yield %r : tensor<8x16x9x9xf32>
  }
  %4 = kiln.kernel "conv2d_grad_weight" opaque (%y, %gy, %w) {kiln.schedule = {cpu = #kiln.cpu_gemm<mr = 6, nr = 16>, cuda = #kiln.conv<bm = 16, bn = 32, bk = 16, tm = 1, tn = 4, split_k = 3, index_bits = 32>}} : (tensor<8x3x9x9xf32>, tensor<8x16x9x9xf32>, tensor<16x3x3x3xf32>) -> tensor<16x3x3x3xf32> {
  ^bb0(%a0: tensor<8x3x9x9xf32>, %a1: tensor<8x16x9x9xf32>, %a2: tensor<16x3x3x3xf32>):
    %r = kiln.conv2d_grad_weight %a0, %a1, %a2 stride [1, 1] padding [1, 1] : (tensor<8x3x9x9xf32>, tensor<8x16x9x9xf32>, tensor<16x3x3x3xf32>) -> tensor<16x3x3x3xf32>
    kiln.yield %r : tensor<16x3x3x3xf32>
  }
  return %0, %3, %4 : tensor<?x29xf32>, tensor<8x16x9x9xf32>, tensor<16x3x3x3xf32>
}
