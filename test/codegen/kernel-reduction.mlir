// RUN: kiln-opt --kiln-schedule %s | kiln-translate --kernel-to-cuda | FileCheck %s
// RUN: kiln-opt --kiln-schedule %s | kiln-translate --kernel-to-cpp | FileCheck %s --check-prefix=CPP

// Each reduction scheme rendered from its schedule: the cost model's for
// the first three, a hand-written one kept for the fourth.

// Rows of 10 at a dynamic batch: a warp a row, 8 rows a block of 256.
// CHECK-LABEL: // kernel reduce_sum_0: grid d0/8,1,1 block 256,1,1 shared 0
// CHECK: // One warp a row (lanes stride over it; butterfly shuffles combine).
// CHECK: for (long long k = lane; k < 10LL; k += 32) {
// CHECK: acc = kiln_reduce_warp_sum(acc);

// A bias gradient, the columns innermost: blocks of 32 columns x 16 slices of
// the 128 rows, combined in order of y.
// CHECK-LABEL: // kernel reduce_sum_1: grid 16,1,1 block 32,16,1 shared 0
// CHECK: __shared__ float partial[16][33];
// CHECK: for (long long k = threadIdx.y; valid && k < 128LL; k += 16) {
// CHECK: for (int y = 1; y < 16; ++y)
// CHECK-NEXT: acc += partial[y][threadIdx.x];

// count reads only sizes: one thread.
// CHECK-LABEL: // kernel count_2: grid 1,1,1 block 1,1,1 shared 0
// CHECK: if (blockIdx.x == 0 && threadIdx.x == 0) {
// CHECK-NEXT: const float r0 = (float)(s0 * 10LL);

// The schedule written on the kernel: a block of 128 threads a row.
// CHECK-LABEL: // kernel reduce_max_3: grid d0,1,1 block 128,1,1 shared 0
// CHECK: for (long long k = threadIdx.x; k < 10LL; k += 128) {
// CHECK: acc = kiln_reduce_block_max(acc, scratch);

// The C++ target loops over the rows whatever the schedule, the rows split
// among the threads in tasks of about KILN_ELEMENTS_PER_TASK elements, or
// over blocks of columns.
// CPP-LABEL: // kernel reduce_sum_0{{$}}
// CPP: const long long rowsPerTask = 10LL > 0 && 10LL < KILN_ELEMENTS_PER_TASK ? KILN_ELEMENTS_PER_TASK / 10LL : 1;
// CPP-NEXT: kiln_parallel_for((s0 + rowsPerTask - 1) / rowsPerTask, [&](long long begin, long long end) {
// CPP-NEXT: const long long last = end * rowsPerTask < s0 ? end * rowsPerTask : s0;
// CPP-NEXT: for (long long o = begin * rowsPerTask; o < last; ++o) {
// With the kept dimension innermost, tasks of 64 columns, a row of them at
// a time into each column's eight lanes.
// CPP-LABEL: // kernel reduce_sum_1{{$}}
// CPP: // Tasks of consecutive columns (the kept dimensions are innermost), the rows
// CPP: const long long columnBlocks = (512LL + 64 - 1) / 64;
// CPP: float accLanes[8][64];
// CPP: auto row = [&](long long k, int l) {
// CPP-NEXT: for (long long c = 0; c < cols; ++c) {
// CPP-NEXT: const long long col = col0 + c;
// CPP-NEXT: const long long e = k * 512LL + col;
// CPP-NEXT: const float x0 = in0[e];
// CPP-NEXT: accLanes[l][c] += x0;
// CPP: row(k, int(k & 7));
// CPP: const long long o = oOuter * 512LL + col;
// CPP-NEXT: const float acc = ((accLanes[0][c] + accLanes[1][c])
// CPP-LABEL: // kernel reduce_max_3{{$}}
// CPP: kiln_parallel_for((s0 + rowsPerTask - 1) / rowsPerTask, [&](long long begin, long long end) {
func.func @reductions(%x: tensor<?x10xf32>, %g: tensor<128x512xf32>) -> (tensor<?xf32>, tensor<512xf32>, tensor<f32>) {
  %0 = kiln.kernel "reduce_sum" reduction (%x) : (tensor<?x10xf32>) -> tensor<?xf32> {
  ^bb0(%a: tensor<?x10xf32>):
    %r = kiln.reduce_sum %a [1] : (tensor<?x10xf32>) -> tensor<?xf32>
    kiln.yield %r : tensor<?xf32>
  }
  %1 = kiln.kernel "reduce_sum" reduction (%g) : (tensor<128x512xf32>) -> tensor<512xf32> {
  ^bb0(%a: tensor<128x512xf32>):
    %r = kiln.reduce_sum %a [0] : (tensor<128x512xf32>) -> tensor<512xf32>
    kiln.yield %r : tensor<512xf32>
  }
  %2 = kiln.kernel "count" reduction (%x) : (tensor<?x10xf32>) -> tensor<f32> {
  ^bb0(%a: tensor<?x10xf32>):
    %r = kiln.count %a [] : (tensor<?x10xf32>) -> tensor<f32>
    kiln.yield %r : tensor<f32>
  }
  %3 = kiln.kernel "reduce_max" reduction (%x) {kiln.schedule = {cuda = #kiln.reduce<scheme = block_rows, block_x = 128, block_y = 1>}} : (tensor<?x10xf32>) -> tensor<?xf32> {
  ^bb0(%a: tensor<?x10xf32>):
    %r = kiln.reduce_max %a [1] : (tensor<?x10xf32>) -> tensor<?xf32>
    kiln.yield %r : tensor<?xf32>
  }
  return %0, %1, %2 : tensor<?xf32>, tensor<512xf32>, tensor<f32>
}
