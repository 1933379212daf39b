// RUN: kiln-translate --kernel-to-cuda -split-input-file %s | FileCheck %s
// RUN: kiln-translate --kernel-to-cpp -split-input-file %s | FileCheck %s --check-prefix=CPP

// A layer at a dynamic batch with the schedule it carries: 64 x 32 tiles of
// 4 x 2 per thread in two k groups (512 threads), float4 loads along K = 784,
// the bias and ReLU applied to each output in registers. The C++ packs the
// transposed weight in panels of 32 columns and sums 4 x 32 tiles in
// registers, the threads splitting the panels and then the tiles.
// CHECK: // kernel matmul_add_relu_0: grid d0/64,512/32,1 block 512,1,1 shared 0
// CHECK: __launch_bounds__(512, 1) matmul_add_relu_0(const float *__restrict__ in0, const float *__restrict__ in1, const float *__restrict__ in2, float *__restrict__ out0, long long s0)
// CHECK: // Tiles: #kiln.gemm<bm = 64, bn = 32, bk = 16, tm = 4, tn = 2, split_k = 2>. A block
// CHECK: Global loads: float4 (A),
// CHECK: const long long M = s0, N = 512LL, K = 784LL;
// CHECK-NEXT: constexpr int BM = 64, BN = 32, BK = 16, TM = 4, TN = 2, SPLIT = 2;
// CHECK-NEXT: constexpr int GROUP = 256, THREADS = 512;
// CHECK: __shared__ __align__(16) float smem[6656];
// CHECK: // Split-K: group 0 adds the other groups' partial sums in group order
// CHECK: const float x2 = in2[col];
// CHECK: const float v0 = acc[i][j] + x2; // add at
// CHECK: const float v1 = (v0 > 0.0f ? v0 : 0.0f); // relu at
// CHECK-NEXT: out0[idx] = v1;
// CPP: extern "C" void matmul_add_relu_0(
// CPP: // A register-blocked GEMM, #kiln.cpu_gemm<mr = 4, nr = 32>: B packed in panels
// CPP: constexpr int MR = 4, NR = 32;
// CPP: kiln_parallel_for(panels, [&](long long begin, long long end) {
// CPP: kiln_gemm_pack_b<float, NR>(K, N, p * NR, B, 1, K, packed + p * NR * K);
// CPP: kiln_parallel_for(panels * rowTiles, [&](long long begin, long long end) {
// CPP: kiln_gemm_micro<float, MR, NR>(K, A + row0 * K, K, 1, rows, packed + p * NR * K, tile);
// CPP: const float v0 = tile[i * NR + c] + x2; // add at
// CPP-NEXT: const float v1 = (v0 > 0.0f ? v0 : 0.0f); // relu at
// CPP-NEXT: out0[idx] = v1;
// CPP: extern "C" void matmul_add_relu_0_entry(
func.func @layer(%x: tensor<?x784xf32>, %w: tensor<512x784xf32>, %b: tensor<512xf32>) -> tensor<?x512xf32> {
  %0 = kiln.kernel "matmul_add_relu" matmul (%x, %w, %b) {kiln.schedule = {cpu = #kiln.cpu_gemm<mr = 4, nr = 32>, cuda = #kiln.gemm<bm = 64, bn = 32, bk = 16, tm = 4, tn = 2, split_k = 2>}} : (tensor<?x784xf32>, tensor<512x784xf32>, tensor<512xf32>) -> tensor<?x512xf32> {
  ^bb0(%a: tensor<?x784xf32>, %bw: tensor<512x784xf32>, %bias: tensor<512xf32>):
    %1 = kiln.matmul %a, %bw transpose_rhs : (tensor<?x784xf32>, tensor<512x784xf32>) -> tensor<?x512xf32>
    %2 = kiln.add %1, %bias : (tensor<?x512xf32>, tensor<512xf32>) -> tensor<?x512xf32>
    %3 = kiln.relu %2 : tensor<?x512xf32>
    kiln.yield %3 : tensor<?x512xf32>
  }
  return %0 : tensor<?x512xf32>
}

// -----

// An f64 weight gradient (A read transposed) whose sizes are no multiple of
// a vector: scalar loads, one k group, fma.
// CHECK: // kernel matmul_0: grid 11/16,71/16,1 block 64,1,1 shared 0
// CHECK: // Tiles: #kiln.gemm<bm = 16, bn = 16, bk = 8, tm = 2, tn = 2, split_k = 1>. A block
// CHECK: Global loads: double (A),
// CHECK-NEXT: // double (B).
// CHECK: constexpr int BM = 16, BN = 16, BK = 8, TM = 2, TN = 2, SPLIT = 1;
// CHECK: // A tile: A is stored [K, M];
// CHECK: acc[i][j] = fma(a[i], b[j], acc[i][j]);
// CHECK-NOT: Split-K
// CPP: constexpr int MR = 6, NR = 64;
// CPP: kiln_gemm_scratch<double>(panels * NR * K + (M + MR - 1) / MR * MR * K);
// CPP: kiln_gemm_pack_b<double, NR>(K, N, p * NR, B, N, 1, packed + p * NR * K);
// CPP: double *__restrict__ packedA = packed + panels * NR * K;
// CPP: kiln_gemm_pack_a<double, MR>(K, M, t * MR, A, 1, M, packedA + t * MR * K);
// CPP: kiln_gemm_micro<double, MR, NR>(K, packedA + row0 * K, 1, MR, rows, packed + p * NR * K, tile);
func.func @weight_gradient(%g: tensor<131x11xf64>, %h: tensor<131x71xf64>) -> tensor<11x71xf64> {
  %0 = kiln.kernel "matmul" matmul (%g, %h) {kiln.schedule = {cpu = #kiln.cpu_gemm<mr = 6, nr = 64>, cuda = #kiln.gemm<bm = 16, bn = 16, bk = 8, tm = 2, tn = 2, split_k = 1>}} : (tensor<131x11xf64>, tensor<131x71xf64>) -> tensor<11x71xf64> {
  ^bb0(%a: tensor<131x11xf64>, %b: tensor<131x71xf64>):
    %1 = kiln.matmul %a, %b transpose_lhs : (tensor<131x11xf64>, tensor<131x71xf64>) -> tensor<11x71xf64>
    kiln.yield %1 : tensor<11x71xf64>
  }
  return %0 : tensor<11x71xf64>
}
