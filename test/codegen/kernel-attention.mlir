// RUN: kiln-translate --kernel-to-cuda %s | FileCheck %s
// RUN: kiln-translate --kernel-to-cpp %s | FileCheck %s --check-prefix=CPP

// The three attention kernels with the schedule they carry,
// #kiln.attention<tile = 32>: causal heads [?, 2] of 40 rows (a full tile of
// 32 and a partial one) and 16 features, the batch a size parameter. On the
// GPU a block of 256 threads (16 x 16) a tile of BT = 32 rows of a batch
// entry, each thread owning R = 32 / 16 = 2 rows and columns of a score
// tile: 2 tiles x 2 heads x the batch blocks. The tiles are in dynamic
// shared memory, rows padded by one where a warp reads different rows.

// Forward, the query tiles last to first (causal: the last see the most key
// tiles, so the heaviest start first): Q and K [32][17], V [32][16] and
// P [32][33] in f32, (544 + 544 + 512 + 1056) * 4 bytes.
// CHECK-LABEL: // kernel attention_0: grid 4*d0,1,1 block 256,1,1 shared 10624
// CHECK: __launch_bounds__(256) attention_0(const float *__restrict__ in0, const float *__restrict__ in1, const float *__restrict__ in2, float *__restrict__ out0, float *__restrict__ out1, long long s0) {
// CHECK: constexpr long long TQ = 40, TK = 40; // sequence lengths
// CHECK-NEXT: constexpr int DK = 16, DV = 16; // features of q and k, of v
// CHECK-NEXT: constexpr bool CAUSAL = true;
// CHECK-NEXT: const float scale = 0.25f;
// CHECK-NEXT: const long long B0 = s0, B1 = 2LL; // batch dimensions
// CHECK: constexpr int BT = 32, R = 2; // tile rows; rows and columns a thread owns
// CHECK-NEXT: constexpr long long TILES = 2;
// CHECK-NEXT: const long long b = blockIdx.x / TILES;
// CHECK-NEXT: const long long tile = TILES - 1 - blockIdx.x % TILES;
// CHECK: float *Qs = (float *)kiln_attention_smem; // [BT * (DK + 1)]
// CHECK-NEXT: float *Ks = Qs + BT * (DK + 1); // [BT * (DK + 1)]
// CHECK-NEXT: float *Vs = Ks + BT * (DK + 1); // [BT * DV]
// CHECK-NEXT: float *Ps = Vs + BT * DV; // [BT * (BT + 1)]
// CHECK: const long long kTiles = (lastKey < TK - 1 ? lastKey : TK - 1) / BT + 1;
// CHECK-NEXT: for (long long kt = 0; kt < kTiles; ++kt) {
// CHECK: out0[b * (TQ * DV) + i * DV + c + 16 * e] = acc[a][e] / l[a];
// CHECK: out1[b * TQ + i] = m[a] + logf(l[a]);

// The query gradient, per query tile over the key tiles: Q, dO, K and V
// [32][17], dS [32][33].
// CHECK-LABEL: // kernel attention_grad_q_1: grid 4*d0,1,1 block 256,1,1 shared 12928
// CHECK: constexpr int BT = 32, R = 2;
// CHECK-NEXT: constexpr long long TILES = 2;
// CHECK-NEXT: const long long b = blockIdx.x / TILES;
// CHECK-NEXT: const long long tile = TILES - 1 - blockIdx.x % TILES;
// CHECK: float *dSs = Vs + BT * (DV + 1); // [BT * (BT + 1)]
// CHECK: for (long long kt = 0; kt < kTiles; ++kt) {
// CHECK: dSs[(r + 16 * a) * (BT + 1) + c + 16 * j] = p * (dp[a][j] - deltaRow[a]);
// CHECK: for (int j = 0; j < BT; ++j) {
// CHECK: dq_out[i * DK + c + 16 * e] = dq[a][e] * scale;

// The key and value gradients, per key tile (first to last: the first see
// the most query tiles) over the query tiles at or below its diagonal: K, V,
// Q and dO [32][17], P and dS [32][33], and a tile of the log-sum-exp and
// of delta.
// CHECK-LABEL: // kernel attention_grad_kv_2: grid 4*d0,1,1 block 256,1,1 shared 17408
// CHECK: constexpr int BT = 32, R = 2;
// CHECK-NEXT: constexpr long long TILES = 2;
// CHECK-NEXT: const long long b = blockIdx.x / TILES;
// CHECK-NEXT: const long long tile = blockIdx.x % TILES;
// CHECK: float *lseTile = dSs + BT * (BT + 1); // [BT]
// CHECK-NEXT: float *deltaTile = lseTile + BT; // [BT]
// CHECK: const long long firstTile = CAUSAL ? k0 / BT : 0;
// CHECK-NEXT: const long long qTiles = (TQ + BT - 1) / BT;
// CHECK-NEXT: for (long long qt = firstTile; qt < qTiles; ++qt) {
// CHECK: out0[b * (TK * DK) + key * DK + c + 16 * e] = dk[a][e] * scale;
// CHECK: out1[b * (TK * DV) + key * DV + c + 16 * e] = dv[a][e];

// The C++ target: the batch entries one after the other, a row at a time;
// the forward steps over the keys by the same tiles as the GPU (BT = 32),
// rescaling its sums at the same points.
// CPP-LABEL: // kernel attention_0{{$}}
// CPP: const long long BATCH = B0 * B1;
// CPP: constexpr long long BT = 32; // keys a step, as on the GPU
// CPP-NEXT: for (long long b = 0; b < BATCH; ++b) {
// CPP: for (long long i = 0; i < TQ; ++i) {
// CPP: float m = -((float)KILN_HUGE_VALUE), l = 0.0f, acc[DV], s[BT];
// CPP: for (long long k0 = 0; k0 < seen; k0 += BT) {
// CPP: lse[i] = m + logf(l);
// CPP: attention_0((const float *)buffers[0], (const float *)buffers[1], (const float *)buffers[2], (float *)buffers[3], (float *)buffers[4], dims[0]);
// CPP-LABEL: // kernel attention_grad_q_1{{$}}
// CPP: for (long long i = 0; i < TQ; ++i) {
// CPP: for (long long j = 0; j < seen; ++j) {
// CPP: dq_out[i * DK + d] = dq[d] * scale;
// CPP-LABEL: // kernel attention_grad_kv_2{{$}}
// CPP: for (long long j = 0; j < TK; ++j) {
// CPP: for (long long i = CAUSAL ? j : 0; i < TQ; ++i) {
// CPP: out0[b * (TK * DK) + j * DK + d] = dk[d] * scale;
// CPP: out1[b * (TK * DV) + j * DV + e] = dv[e];
func.func @attention(%q: tensor<?x2x40x16xf32>, %k: tensor<?x2x40x16xf32>, %v: tensor<?x2x40x16xf32>, %o: tensor<?x2x40x16xf32>, %lse: tensor<?x2x40xf32>, %delta: tensor<?x2x40xf32>) {
  %0:2 = kiln.kernel "attention" opaque (%q, %k, %v) {kiln.schedule = {cpu = #kiln.attention<tile = 32>, cuda = #kiln.attention<tile = 32>}} : (tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>) -> (tensor<?x2x40x16xf32>, tensor<?x2x40xf32>) {
  ^bb0(%a0: tensor<?x2x40x16xf32>, %a1: tensor<?x2x40x16xf32>, %a2: tensor<?x2x40x16xf32>):
    %r:2 = kiln.attention %a0, %a1, %a2 causal scale 2.500000e-01 : (tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>) -> (tensor<?x2x40x16xf32>, tensor<?x2x40xf32>)
    kiln.yield %r#0, %r#1 : tensor<?x2x40x16xf32>, tensor<?x2x40xf32>
  }
  %1 = kiln.kernel "attention_grad_q" opaque (%q, %k, %v, %o, %lse, %delta) {kiln.schedule = {cpu = #kiln.attention<tile = 32>, cuda = #kiln.attention<tile = 32>}} : (tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>, tensor<?x2x40xf32>, tensor<?x2x40xf32>) -> tensor<?x2x40x16xf32> {
  ^bb0(%a0: tensor<?x2x40x16xf32>, %a1: tensor<?x2x40x16xf32>, %a2: tensor<?x2x40x16xf32>, %a3: tensor<?x2x40x16xf32>, %a4: tensor<?x2x40xf32>, %a5: tensor<?x2x40xf32>):
    %r = kiln.attention_grad_q %a0, %a1, %a2, %a3, %a4, %a5 causal scale 2.500000e-01 : (tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>, tensor<?x2x40xf32>, tensor<?x2x40xf32>) -> tensor<?x2x40x16xf32>
    kiln.yield %r : tensor<?x2x40x16xf32>
  }
  %2:2 = kiln.kernel "attention_grad_kv" opaque (%q, %k, %v, %o, %lse, %delta) {kiln.schedule = {cpu = #kiln.attention<tile = 32>, cuda = #kiln.attention<tile = 32>}} : (tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>, tensor<?x2x40xf32>, tensor<?x2x40xf32>) -> (tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>) {
  ^bb0(%a0: tensor<?x2x40x16xf32>, %a1: tensor<?x2x40x16xf32>, %a2: tensor<?x2x40x16xf32>, %a3: tensor<?x2x40x16xf32>, %a4: tensor<?x2x40xf32>, %a5: tensor<?x2x40xf32>):
    %r:2 = kiln.attention_grad_kv %a0, %a1, %a2, %a3, %a4, %a5 causal scale 2.500000e-01 : (tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>, tensor<?x2x40xf32>, tensor<?x2x40xf32>) -> (tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>)
    kiln.yield %r#0, %r#1 : tensor<?x2x40x16xf32>, tensor<?x2x40x16xf32>
  }
  return
}
