// RUN: kiln-opt %s -split-input-file -verify-diagnostics

// Each schedule attribute's verifier states its valid space; a schedule out
// of it is a located error where it is written.

func.func @gemm_tile() attributes {
  // expected-error@+1 {{gemm tile 12 x 64: bm and bn must be 16, 32, 64 or 128}}
  s = #kiln.gemm<bm = 12, bn = 64, bk = 16, tm = 4, tn = 4, split_k = 1>} {
  return
}

// -----

func.func @gemm_group() attributes {
  // expected-error@+1 {{gemm group of 1024 threads (bm / tm * bn / tn): must be 32 to 256}}
  s = #kiln.gemm<bm = 64, bn = 16, bk = 16, tm = 1, tn = 1, split_k = 1>} {
  return
}

// -----

func.func @gemm_threads() attributes {
  // expected-error@+1 {{gemm block of 1024 threads: at most 512 with 16 outputs a thread}}
  s = #kiln.gemm<bm = 64, bn = 64, bk = 16, tm = 4, tn = 4, split_k = 4>} {
  return
}

// -----

func.func @gemm_split() attributes {
  // expected-error@+1 {{gemm split_k = 3 must be 1, 2, 4, 8 or 16}}
  s = #kiln.gemm<bm = 64, bn = 64, bk = 16, tm = 4, tn = 4, split_k = 3>} {
  return
}

// -----

func.func @conv_index() attributes {
  // expected-error@+1 {{conv index_bits = 16 must be 32 or 64}}
  s = #kiln.conv<bm = 128, bn = 32, bk = 16, tm = 4, tn = 4, split_k = 1, index_bits = 16>} {
  return
}

// -----

func.func @reduce_rows() attributes {
  // expected-error@+1 {{a row reduction takes whole warps: block_x a multiple of 32 and block_y = 1, not 100 x 1}}
  s = #kiln.reduce<scheme = warp_rows, block_x = 100, block_y = 1>} {
  return
}

// -----

func.func @reduce_columns() attributes {
  // expected-error@+1 {{reduce block 32 x 64: at most 1024 threads}}
  s = #kiln.reduce<scheme = columns, block_x = 32, block_y = 64>} {
  return
}

// -----

func.func @reduce_scheme() attributes {
  // expected-error@+2 {{expected ::kiln::ReductionScheme to be one of: single, warp_rows, block_rows, columns}}
  // expected-error@+1 {{failed to parse Kiln_ReduceSchedule parameter 'scheme' which is to be a `::kiln::ReductionScheme`}}
  s = #kiln.reduce<scheme = diagonal, block_x = 32, block_y = 1>} {
  return
}

// -----

func.func @elementwise_block() attributes {
  // expected-error@+1 {{elementwise block = 100 must be a multiple of 32 from 32 to 1024}}
  s = #kiln.elementwise<block = 100>} {
  return
}

// -----

func.func @unknown() attributes {
  // expected-error@+1 {{unknown attribute `tiling` in dialect `kiln`}}
  s = #kiln.tiling<x = 1>} {
  return
}

// -----

func.func @attention_tile() attributes {
  // expected-error@+1 {{attention tile = 48 must be 16, 32 or 64}}
  s = #kiln.attention<tile = 48>} {
  return
}
