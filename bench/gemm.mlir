// The GEMMs of bench/cpu.sh's GEMM table, one `kiln.kernel` each, fp32,
// without schedules: `kiln-opt --kiln-schedule` chooses them as it does for
// a model's kernels, then `kiln-translate --kernel-to-cpp` writes the C++
// that kiln-gemm-bench (bench/GemmBench.cpp) times. Each kernel is named
// gemm_MxNxK_LAYOUT (C[M, N] = op(A) op(B) over K; LAYOUT says whether A and
// B are stored transposed: nt reads B as [N, K], a linear layer's weight);
// kiln-gemm-bench and the PyTorch side read the sizes from these names.

// The MLP's first layer at batch 128: x[128, 784] times l1.weight[512, 784]
// transposed.
func.func @mlp_layer(%x: tensor<128x784xf32>, %w: tensor<512x784xf32>) -> tensor<128x512xf32> {
  %0 = kiln.kernel "gemm_128x512x784_nt" matmul (%x, %w) : (tensor<128x784xf32>, tensor<512x784xf32>) -> tensor<128x512xf32> {
  ^bb0(%a: tensor<128x784xf32>, %b: tensor<512x784xf32>):
    %1 = kiln.matmul %a, %b transpose_rhs : (tensor<128x784xf32>, tensor<512x784xf32>) -> tensor<128x512xf32>
    kiln.yield %1 : tensor<128x512xf32>
  }
  return %0 : tensor<128x512xf32>
}

// A square product, both operands row-major.
func.func @square(%a0: tensor<1024x1024xf32>, %b0: tensor<1024x1024xf32>) -> tensor<1024x1024xf32> {
  %0 = kiln.kernel "gemm_1024x1024x1024_nn" matmul (%a0, %b0) : (tensor<1024x1024xf32>, tensor<1024x1024xf32>) -> tensor<1024x1024xf32> {
  ^bb0(%a: tensor<1024x1024xf32>, %b: tensor<1024x1024xf32>):
    %1 = kiln.matmul %a, %b : (tensor<1024x1024xf32>, tensor<1024x1024xf32>) -> tensor<1024x1024xf32>
    kiln.yield %1 : tensor<1024x1024xf32>
  }
  return %0 : tensor<1024x1024xf32>
}

// A 512-wide linear layer at batch 4096: x[4096, 512] times w[512, 512]
// transposed.
func.func @wide_batch(%x: tensor<4096x512xf32>, %w: tensor<512x512xf32>) -> tensor<4096x512xf32> {
  %0 = kiln.kernel "gemm_4096x512x512_nt" matmul (%x, %w) : (tensor<4096x512xf32>, tensor<512x512xf32>) -> tensor<4096x512xf32> {
  ^bb0(%a: tensor<4096x512xf32>, %b: tensor<512x512xf32>):
    %1 = kiln.matmul %a, %b transpose_rhs : (tensor<4096x512xf32>, tensor<512x512xf32>) -> tensor<4096x512xf32>
    kiln.yield %1 : tensor<4096x512xf32>
  }
  return %0 : tensor<4096x512xf32>
}
