// Every kiln op and every optional piece of its assembly parses, verifies and
// prints back the same, in the custom form and through the generic form.
// RUN: kiln-opt %s | kiln-opt | FileCheck %s
// RUN: kiln-opt %s --mlir-print-op-generic | kiln-opt | FileCheck %s

// Constants of float, integer and i1 element types, scalar and shaped.
// CHECK-LABEL: func.func @constants
func.func @constants() -> (tensor<f32>, tensor<2xi32>, tensor<2x2xf64>, tensor<3xi1>, tensor<i64>) {
  // CHECK-NEXT: %[[A:.+]] = kiln.constant dense<5.000000e-01> : tensor<f32>
  // CHECK-NEXT: %[[B:.+]] = kiln.constant dense<[1, 2]> : tensor<2xi32>
  // CHECK-NEXT: %[[C:.+]] = kiln.constant dense<{{\[}}[1.000000e+00, 2.000000e+00], [3.000000e+00, 4.000000e+00]]> : tensor<2x2xf64>
  // CHECK-NEXT: %[[D:.+]] = kiln.constant dense<[true, false, true]> : tensor<3xi1>
  // CHECK-NEXT: %[[E:.+]] = kiln.constant dense<-7> : tensor<i64>
  // CHECK-NEXT: return %[[A]], %[[B]], %[[C]], %[[D]], %[[E]]
  %a = kiln.constant dense<0.5> : tensor<f32>
  %b = kiln.constant dense<[1, 2]> : tensor<2xi32>
  %c = kiln.constant dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf64>
  %d = kiln.constant dense<[true, false, true]> : tensor<3xi1>
  %e = kiln.constant dense<-7> : tensor<i64>
  return %a, %b, %c, %d, %e : tensor<f32>, tensor<2xi32>, tensor<2x2xf64>, tensor<3xi1>, tensor<i64>
}

// Parameters with every initializer kind, explicit arguments printed as
// written and omitted ones filled in with their defaults; the result is named
// after the parameter.
// CHECK-LABEL: func.func @params
func.func @params() {
  // CHECK-NEXT: %w.zeros = kiln.param "w.zeros" : tensor<4xf32> init #kiln.init<zeros>
  // CHECK-NEXT: %w.ones = kiln.param "w.ones" : tensor<2x3xf64> init #kiln.init<ones>
  // CHECK-NEXT: %w.constant = kiln.param "w.constant" : tensor<4xf32> init #kiln.init<constant(value = -2.500000e-01)>
  // CHECK-NEXT: %w.constant_default = kiln.param "w.constant_default" : tensor<4xf32> init #kiln.init<constant(value = 0.000000e+00)>
  // CHECK-NEXT: %w.normal = kiln.param "w.normal" : tensor<4xf32> init #kiln.init<normal(mean = 1.000000e+00, std = 2.000000e-02)>
  // CHECK-NEXT: %w.normal_std = kiln.param "w.normal_std" : tensor<4xf32> init #kiln.init<normal(mean = 0.000000e+00, std = 2.000000e-02)>
  // CHECK-NEXT: %w.normal_default = kiln.param "w.normal_default" : tensor<4xf32> init #kiln.init<normal(mean = 0.000000e+00, std = 1.000000e+00)>
  // CHECK-NEXT: %w.uniform = kiln.param "w.uniform" : tensor<4xf32> init #kiln.init<uniform(low = -1.000000e+00, high = 2.000000e+00)>
  // CHECK-NEXT: %w.uniform_default = kiln.param "w.uniform_default" : tensor<4xf32> init #kiln.init<uniform(low = 0.000000e+00, high = 1.000000e+00)>
  // CHECK-NEXT: %w.ku = kiln.param "w.ku" : tensor<8x4xf32> init #kiln.init<kaiming_uniform(gain = 0.57735026918962573)>
  // CHECK-NEXT: %w.ku_default = kiln.param "w.ku_default" : tensor<8x4xf32> init #kiln.init<kaiming_uniform(gain = 1.4142135623730951)>
  // CHECK-NEXT: %w.kn = kiln.param "w.kn" : tensor<8x4x3x3xf32> init #kiln.init<kaiming_normal(gain = 1.000000e+00)>
  // CHECK-NEXT: %w.kn_default = kiln.param "w.kn_default" : tensor<8x4xf32> init #kiln.init<kaiming_normal(gain = 1.4142135623730951)>
  // CHECK-NEXT: %w.xu = kiln.param "w.xu" : tensor<8x4xf64> init #kiln.init<xavier_uniform(gain = 2.000000e+00)>
  // CHECK-NEXT: %w.xu_default = kiln.param "w.xu_default" : tensor<8x4xf32> init #kiln.init<xavier_uniform(gain = 1.000000e+00)>
  // CHECK-NEXT: %w.xn = kiln.param "w.xn" : tensor<8x4xf16> init #kiln.init<xavier_normal(gain = 5.000000e-01)>
  // CHECK-NEXT: %w.xn_default = kiln.param "w.xn_default" : tensor<8x4xbf16> init #kiln.init<xavier_normal(gain = 1.000000e+00)>
  // CHECK-NEXT: return
  %0 = kiln.param "w.zeros" : tensor<4xf32> init #kiln.init<zeros>
  %1 = kiln.param "w.ones" : tensor<2x3xf64> init #kiln.init<ones>
  %2 = kiln.param "w.constant" : tensor<4xf32> init #kiln.init<constant(value = -0.25)>
  %3 = kiln.param "w.constant_default" : tensor<4xf32> init #kiln.init<constant>
  %4 = kiln.param "w.normal" : tensor<4xf32> init #kiln.init<normal(mean = 1.0, std = 2.0e-2)>
  %5 = kiln.param "w.normal_std" : tensor<4xf32> init #kiln.init<normal(std = 0.02)>
  %6 = kiln.param "w.normal_default" : tensor<4xf32> init #kiln.init<normal()>
  %7 = kiln.param "w.uniform" : tensor<4xf32> init #kiln.init<uniform(high = 2.0, low = -1.0)>
  %8 = kiln.param "w.uniform_default" : tensor<4xf32> init #kiln.init<uniform>
  %9 = kiln.param "w.ku" : tensor<8x4xf32> init #kiln.init<kaiming_uniform(gain = 0.57735026918962573)>
  %10 = kiln.param "w.ku_default" : tensor<8x4xf32> init #kiln.init<kaiming_uniform>
  %11 = kiln.param "w.kn" : tensor<8x4x3x3xf32> init #kiln.init<kaiming_normal(gain = 1.0)>
  %12 = kiln.param "w.kn_default" : tensor<8x4xf32> init #kiln.init<kaiming_normal>
  %13 = kiln.param "w.xu" : tensor<8x4xf64> init #kiln.init<xavier_uniform(gain = 2.0)>
  %14 = kiln.param "w.xu_default" : tensor<8x4xf32> init #kiln.init<xavier_uniform>
  %15 = kiln.param "w.xn" : tensor<8x4xf16> init #kiln.init<xavier_normal(gain = 0.5)>
  %16 = kiln.param "w.xn_default" : tensor<8x4xbf16> init #kiln.init<xavier_normal>
  return
}

// Elementwise unary ops keep the operand's type, static or dynamic; neg and
// abs also take integers.
// CHECK-LABEL: func.func @unary
// CHECK-SAME: (%[[X:.+]]: tensor<?x512xf32>, %[[D:.+]]: tensor<3xf64>, %[[I:.+]]: tensor<?xi32>)
func.func @unary(%x: tensor<?x512xf32>, %d: tensor<3xf64>, %i: tensor<?xi32>) {
  // CHECK-NEXT: kiln.neg %[[X]] : tensor<?x512xf32>
  // CHECK-NEXT: kiln.neg %[[I]] : tensor<?xi32>
  // CHECK-NEXT: kiln.abs %[[D]] : tensor<3xf64>
  // CHECK-NEXT: kiln.abs %[[I]] : tensor<?xi32>
  // CHECK-NEXT: kiln.exp %[[X]] : tensor<?x512xf32>
  // CHECK-NEXT: kiln.log %[[D]] : tensor<3xf64>
  // CHECK-NEXT: kiln.tanh %[[X]] : tensor<?x512xf32>
  // CHECK-NEXT: kiln.sigmoid %[[X]] : tensor<?x512xf32>
  // CHECK-NEXT: kiln.relu %[[D]] : tensor<3xf64>
  // CHECK-NEXT: kiln.sqrt %[[X]] : tensor<?x512xf32>
  // CHECK-NEXT: kiln.rsqrt %[[D]] : tensor<3xf64>
  // CHECK-NEXT: kiln.cos %[[X]] : tensor<?x512xf32>
  // CHECK-NEXT: kiln.floor %[[D]] : tensor<3xf64>
  // CHECK-NEXT: kiln.sin %[[D]] : tensor<3xf64>
  %0 = kiln.neg %x : tensor<?x512xf32>
  %1 = kiln.neg %i : tensor<?xi32>
  %2 = kiln.abs %d : tensor<3xf64>
  %3 = kiln.abs %i : tensor<?xi32>
  %4 = kiln.exp %x : tensor<?x512xf32>
  %5 = kiln.log %d : tensor<3xf64>
  %6 = kiln.tanh %x : tensor<?x512xf32>
  %7 = kiln.sigmoid %x : tensor<?x512xf32>
  %8 = kiln.relu %d : tensor<3xf64>
  %9 = kiln.sqrt %x : tensor<?x512xf32>
  %10 = kiln.rsqrt %d : tensor<3xf64>
  %11 = kiln.cos %x : tensor<?x512xf32>
  %12 = kiln.floor %d : tensor<3xf64>
  %13 = kiln.sin %d : tensor<3xf64>
  return
}

// GELU: exact by default (an explicit `approximate none` is the default and
// is not printed), or with the tanh approximation.
// CHECK-LABEL: func.func @gelu
// CHECK-SAME: (%[[X:.+]]: tensor<?x1536xf32>)
func.func @gelu(%x: tensor<?x1536xf32>) {
  // CHECK-NEXT: kiln.gelu %[[X]] : tensor<?x1536xf32>
  // CHECK-NEXT: kiln.gelu %[[X]] : tensor<?x1536xf32>
  // CHECK-NEXT: kiln.gelu %[[X]] approximate tanh : tensor<?x1536xf32>
  %0 = kiln.gelu %x : tensor<?x1536xf32>
  %1 = kiln.gelu %x approximate none : tensor<?x1536xf32>
  %2 = kiln.gelu %x approximate tanh : tensor<?x1536xf32>
  return
}

// cast changes the element type and keeps the shape; the result type is
// inferred.
// CHECK-LABEL: func.func @cast
// CHECK-SAME: (%[[B:.+]]: tensor<?xi1>, %[[F:.+]]: tensor<2x?xf32>)
func.func @cast(%b: tensor<?xi1>, %f: tensor<2x?xf32>) -> (tensor<?xf32>, tensor<2x?xi32>, tensor<2x?xf64>) {
  // CHECK-NEXT: %[[R0:.+]] = kiln.cast %[[B]] : tensor<?xi1> to f32
  // CHECK-NEXT: %[[R1:.+]] = kiln.cast %[[F]] : tensor<2x?xf32> to i32
  // CHECK-NEXT: %[[R2:.+]] = kiln.cast %[[F]] : tensor<2x?xf32> to f64
  // CHECK-NEXT: return %[[R0]], %[[R1]], %[[R2]] : tensor<?xf32>, tensor<2x?xi32>, tensor<2x?xf64>
  %0 = kiln.cast %b : tensor<?xi1> to f32
  %1 = kiln.cast %f : tensor<2x?xf32> to i32
  %2 = kiln.cast %f : tensor<2x?xf32> to f64
  return %0, %1, %2 : tensor<?xf32>, tensor<2x?xi32>, tensor<2x?xf64>
}

// Elementwise binary ops with broadcasting: a vector against a batch, a
// scalar against anything, a size-1 dimension stretching, integers.
// CHECK-LABEL: func.func @binary
// CHECK-SAME: (%[[X:.+]]: tensor<?x512xf32>, %[[V:.+]]: tensor<512xf32>, %[[S:.+]]: tensor<f32>, %[[C:.+]]: tensor<4x1xi32>, %[[R:.+]]: tensor<3xi32>)
func.func @binary(%x: tensor<?x512xf32>, %v: tensor<512xf32>, %s: tensor<f32>, %c: tensor<4x1xi32>, %r: tensor<3xi32>) {
  // CHECK-NEXT: kiln.add %[[X]], %[[V]] : (tensor<?x512xf32>, tensor<512xf32>) -> tensor<?x512xf32>
  // CHECK-NEXT: kiln.sub %[[S]], %[[X]] : (tensor<f32>, tensor<?x512xf32>) -> tensor<?x512xf32>
  // CHECK-NEXT: kiln.mul %[[X]], %[[X]] : (tensor<?x512xf32>, tensor<?x512xf32>) -> tensor<?x512xf32>
  // CHECK-NEXT: kiln.div %[[C]], %[[R]] : (tensor<4x1xi32>, tensor<3xi32>) -> tensor<4x3xi32>
  // CHECK-NEXT: kiln.max %[[X]], %[[S]] : (tensor<?x512xf32>, tensor<f32>) -> tensor<?x512xf32>
  // CHECK-NEXT: kiln.min %[[R]], %[[C]] : (tensor<3xi32>, tensor<4x1xi32>) -> tensor<4x3xi32>
  // CHECK-NEXT: kiln.pow %[[V]], %[[S]] : (tensor<512xf32>, tensor<f32>) -> tensor<512xf32>
  %0 = kiln.add %x, %v : (tensor<?x512xf32>, tensor<512xf32>) -> tensor<?x512xf32>
  %1 = kiln.sub %s, %x : (tensor<f32>, tensor<?x512xf32>) -> tensor<?x512xf32>
  %2 = kiln.mul %x, %x : (tensor<?x512xf32>, tensor<?x512xf32>) -> tensor<?x512xf32>
  %3 = kiln.div %c, %r : (tensor<4x1xi32>, tensor<3xi32>) -> tensor<4x3xi32>
  %4 = kiln.max %x, %s : (tensor<?x512xf32>, tensor<f32>) -> tensor<?x512xf32>
  %5 = kiln.min %r, %c : (tensor<3xi32>, tensor<4x1xi32>) -> tensor<4x3xi32>
  %6 = kiln.pow %v, %s : (tensor<512xf32>, tensor<f32>) -> tensor<512xf32>
  return
}

// cmp with every predicate yields i1 with the broadcast shape; select
// broadcasts its three operands.
// CHECK-LABEL: func.func @cmp_select
// CHECK-SAME: (%[[A:.+]]: tensor<?xi32>, %[[B:.+]]: tensor<?xi32>, %[[X:.+]]: tensor<?x10xf32>, %[[S:.+]]: tensor<f32>, %[[M:.+]]: tensor<?x10xi1>)
func.func @cmp_select(%a: tensor<?xi32>, %b: tensor<?xi32>, %x: tensor<?x10xf32>, %s: tensor<f32>, %m: tensor<?x10xi1>) {
  // CHECK-NEXT: kiln.cmp eq, %[[A]], %[[B]] : (tensor<?xi32>, tensor<?xi32>) -> tensor<?xi1>
  // CHECK-NEXT: kiln.cmp ne, %[[A]], %[[B]] : (tensor<?xi32>, tensor<?xi32>) -> tensor<?xi1>
  // CHECK-NEXT: kiln.cmp lt, %[[X]], %[[S]] : (tensor<?x10xf32>, tensor<f32>) -> tensor<?x10xi1>
  // CHECK-NEXT: kiln.cmp le, %[[X]], %[[S]] : (tensor<?x10xf32>, tensor<f32>) -> tensor<?x10xi1>
  // CHECK-NEXT: kiln.cmp gt, %[[X]], %[[X]] : (tensor<?x10xf32>, tensor<?x10xf32>) -> tensor<?x10xi1>
  // CHECK-NEXT: kiln.cmp ge, %[[A]], %[[B]] : (tensor<?xi32>, tensor<?xi32>) -> tensor<?xi1>
  // CHECK-NEXT: kiln.select %[[M]], %[[X]], %[[S]] : (tensor<?x10xi1>, tensor<?x10xf32>, tensor<f32>) -> tensor<?x10xf32>
  %0 = kiln.cmp eq, %a, %b : (tensor<?xi32>, tensor<?xi32>) -> tensor<?xi1>
  %1 = kiln.cmp ne, %a, %b : (tensor<?xi32>, tensor<?xi32>) -> tensor<?xi1>
  %2 = kiln.cmp lt, %x, %s : (tensor<?x10xf32>, tensor<f32>) -> tensor<?x10xi1>
  %3 = kiln.cmp le, %x, %s : (tensor<?x10xf32>, tensor<f32>) -> tensor<?x10xi1>
  %4 = kiln.cmp gt, %x, %x : (tensor<?x10xf32>, tensor<?x10xf32>) -> tensor<?x10xi1>
  %5 = kiln.cmp ge, %a, %b : (tensor<?xi32>, tensor<?xi32>) -> tensor<?xi1>
  %6 = kiln.select %m, %x, %s : (tensor<?x10xi1>, tensor<?x10xf32>, tensor<f32>) -> tensor<?x10xf32>
  return
}

// matmul plain, with either operand transposed or both, and with broadcast
// batch dimensions.
// CHECK-LABEL: func.func @matmul
// CHECK-SAME: (%[[X:.+]]: tensor<?x784xf32>, %[[W:.+]]: tensor<512x784xf32>, %[[U:.+]]: tensor<10x512xf32>, %[[Q:.+]]: tensor<?x8x64x32xf64>, %[[K:.+]]: tensor<8x64x32xf64>)
func.func @matmul(%x: tensor<?x784xf32>, %w: tensor<512x784xf32>, %u: tensor<10x512xf32>, %q: tensor<?x8x64x32xf64>, %k: tensor<8x64x32xf64>) {
  // CHECK-NEXT: kiln.matmul %[[X]], %[[W]] transpose_rhs : (tensor<?x784xf32>, tensor<512x784xf32>) -> tensor<?x512xf32>
  // CHECK-NEXT: kiln.matmul %[[W]], %[[U]] transpose_lhs transpose_rhs : (tensor<512x784xf32>, tensor<10x512xf32>) -> tensor<784x10xf32>
  // CHECK-NEXT: kiln.matmul %[[X]], %[[W]] transpose_lhs : (tensor<?x784xf32>, tensor<512x784xf32>) -> tensor<784x784xf32>
  // CHECK-NEXT: kiln.matmul %[[Q]], %[[K]] transpose_rhs : (tensor<?x8x64x32xf64>, tensor<8x64x32xf64>) -> tensor<?x8x64x64xf64>
  // CHECK-NEXT: kiln.matmul %[[K]], %[[K]] transpose_lhs : (tensor<8x64x32xf64>, tensor<8x64x32xf64>) -> tensor<8x32x32xf64>
  %0 = kiln.matmul %x, %w transpose_rhs : (tensor<?x784xf32>, tensor<512x784xf32>) -> tensor<?x512xf32>
  %1 = kiln.matmul %w, %u transpose_lhs transpose_rhs : (tensor<512x784xf32>, tensor<10x512xf32>) -> tensor<784x10xf32>
  %2 = kiln.matmul %x, %w transpose_lhs : (tensor<?x784xf32>, tensor<512x784xf32>) -> tensor<784x784xf32>
  %3 = kiln.matmul %q, %k transpose_rhs : (tensor<?x8x64x32xf64>, tensor<8x64x32xf64>) -> tensor<?x8x64x64xf64>
  %4 = kiln.matmul %k, %k transpose_lhs : (tensor<8x64x32xf64>, tensor<8x64x32xf64>) -> tensor<8x32x32xf64>
  return
}

// Layout ops: transpose, reshape with and without -1 (dynamic and static),
// broadcast to the shape of another value.
// CHECK-LABEL: func.func @layout
// CHECK-SAME: (%[[X:.+]]: tensor<?x10xf32>, %[[I:.+]]: tensor<?x28x28xi32>, %[[S:.+]]: tensor<2x3x4xi1>, %[[G:.+]]: tensor<1x10xf32>, %[[D:.+]]: tensor<?x1xf32>)
func.func @layout(%x: tensor<?x10xf32>, %i: tensor<?x28x28xi32>, %s: tensor<2x3x4xi1>, %g: tensor<1x10xf32>, %d: tensor<?x1xf32>) {
  // CHECK-NEXT: kiln.transpose %[[X]] [1, 0] : (tensor<?x10xf32>) -> tensor<10x?xf32>
  // CHECK-NEXT: kiln.transpose %[[S]] [2, 0, 1] : (tensor<2x3x4xi1>) -> tensor<4x2x3xi1>
  // CHECK-NEXT: kiln.reshape %[[I]] [-1, 784] : (tensor<?x28x28xi32>) -> tensor<?x784xi32>
  // CHECK-NEXT: kiln.reshape %[[S]] [6, -1] : (tensor<2x3x4xi1>) -> tensor<6x4xi1>
  // CHECK-NEXT: kiln.reshape %[[S]] [4, 6] : (tensor<2x3x4xi1>) -> tensor<4x6xi1>
  // CHECK-NEXT: kiln.broadcast %[[G]], %[[X]] : (tensor<1x10xf32>, tensor<?x10xf32>) -> tensor<?x10xf32>
  // CHECK-NEXT: kiln.broadcast %[[D]], %[[S]] : (tensor<?x1xf32>, tensor<2x3x4xi1>) -> tensor<2x3x4xf32>
  %0 = kiln.transpose %x [1, 0] : (tensor<?x10xf32>) -> tensor<10x?xf32>
  %1 = kiln.transpose %s [2, 0, 1] : (tensor<2x3x4xi1>) -> tensor<4x2x3xi1>
  %2 = kiln.reshape %i [-1, 784] : (tensor<?x28x28xi32>) -> tensor<?x784xi32>
  %3 = kiln.reshape %s [6, -1] : (tensor<2x3x4xi1>) -> tensor<6x4xi1>
  %4 = kiln.reshape %s [4, 6] : (tensor<2x3x4xi1>) -> tensor<4x6xi1>
  %5 = kiln.broadcast %g, %x : (tensor<1x10xf32>, tensor<?x10xf32>) -> tensor<?x10xf32>
  %6 = kiln.broadcast %d, %s : (tensor<?x1xf32>, tensor<2x3x4xi1>) -> tensor<2x3x4xf32>
  return
}

// Reductions over some axes (negative counting from the end), over all axes
// with the empty list, with and without keepdims; argmax with and without
// keepdims.
// CHECK-LABEL: func.func @reductions
// CHECK-SAME: (%[[X:.+]]: tensor<?x10xf32>, %[[I:.+]]: tensor<2x3x4xi32>)
func.func @reductions(%x: tensor<?x10xf32>, %i: tensor<2x3x4xi32>) {
  // CHECK-NEXT: kiln.reduce_sum %[[X]] [1] keepdims : (tensor<?x10xf32>) -> tensor<?x1xf32>
  // CHECK-NEXT: kiln.reduce_sum %[[I]] [0, -1] : (tensor<2x3x4xi32>) -> tensor<3xi32>
  // CHECK-NEXT: kiln.reduce_mean %[[X]] [] : (tensor<?x10xf32>) -> tensor<f32>
  // CHECK-NEXT: kiln.reduce_mean %[[X]] [] keepdims : (tensor<?x10xf32>) -> tensor<1x1xf32>
  // CHECK-NEXT: kiln.reduce_max %[[X]] [-1] : (tensor<?x10xf32>) -> tensor<?xf32>
  // CHECK-NEXT: kiln.reduce_max %[[I]] [1] keepdims : (tensor<2x3x4xi32>) -> tensor<2x1x4xi32>
  // CHECK-NEXT: kiln.argmax %[[X]] axis 1 : (tensor<?x10xf32>) -> tensor<?xi32>
  // CHECK-NEXT: kiln.argmax %[[I]] axis -2 keepdims : (tensor<2x3x4xi32>) -> tensor<2x1x4xi32>
  %0 = kiln.reduce_sum %x [1] keepdims : (tensor<?x10xf32>) -> tensor<?x1xf32>
  %1 = kiln.reduce_sum %i [0, -1] : (tensor<2x3x4xi32>) -> tensor<3xi32>
  %2 = kiln.reduce_mean %x [] : (tensor<?x10xf32>) -> tensor<f32>
  %3 = kiln.reduce_mean %x [] keepdims : (tensor<?x10xf32>) -> tensor<1x1xf32>
  %4 = kiln.reduce_max %x [-1] : (tensor<?x10xf32>) -> tensor<?xf32>
  %5 = kiln.reduce_max %i [1] keepdims : (tensor<2x3x4xi32>) -> tensor<2x1x4xi32>
  %6 = kiln.argmax %x axis 1 : (tensor<?x10xf32>) -> tensor<?xi32>
  %7 = kiln.argmax %i axis -2 keepdims : (tensor<2x3x4xi32>) -> tensor<2x1x4xi32>
  return
}

// Softmax, log-softmax, the losses with i32 and i64 labels, layer norm.
// CHECK-LABEL: func.func @normalization
// CHECK-SAME: (%[[X:.+]]: tensor<?x10xf32>, %[[L:.+]]: tensor<?xi32>, %[[T:.+]]: tensor<4x256x65xf64>, %[[Y:.+]]: tensor<4x256xi64>, %[[H:.+]]: tensor<?x256x384xf32>, %[[G:.+]]: tensor<384xf32>, %[[B:.+]]: tensor<384xf32>)
func.func @normalization(%x: tensor<?x10xf32>, %l: tensor<?xi32>, %t: tensor<4x256x65xf64>, %y: tensor<4x256xi64>, %h: tensor<?x256x384xf32>, %g: tensor<384xf32>, %b: tensor<384xf32>) {
  // CHECK-NEXT: kiln.softmax %[[X]] axis -1 : tensor<?x10xf32>
  // CHECK-NEXT: kiln.softmax %[[T]] axis 0 : tensor<4x256x65xf64>
  // CHECK-NEXT: kiln.log_softmax %[[X]] axis 1 : tensor<?x10xf32>
  // CHECK-NEXT: kiln.cross_entropy %[[X]], %[[L]] : (tensor<?x10xf32>, tensor<?xi32>) -> tensor<f32>
  // CHECK-NEXT: kiln.cross_entropy %[[T]], %[[Y]] : (tensor<4x256x65xf64>, tensor<4x256xi64>) -> tensor<f64>
  // CHECK-NEXT: kiln.accuracy %[[X]], %[[L]] : (tensor<?x10xf32>, tensor<?xi32>) -> tensor<f32>
  // CHECK-NEXT: kiln.accuracy %[[T]], %[[Y]] : (tensor<4x256x65xf64>, tensor<4x256xi64>) -> tensor<f64>
  // CHECK-NEXT: kiln.layer_norm %[[H]], %[[G]], %[[B]] eps 1.000000e-05 : (tensor<?x256x384xf32>, tensor<384xf32>, tensor<384xf32>) -> tensor<?x256x384xf32>
  %0 = kiln.softmax %x axis -1 : tensor<?x10xf32>
  %1 = kiln.softmax %t axis 0 : tensor<4x256x65xf64>
  %2 = kiln.log_softmax %x axis 1 : tensor<?x10xf32>
  %3 = kiln.cross_entropy %x, %l : (tensor<?x10xf32>, tensor<?xi32>) -> tensor<f32>
  %4 = kiln.cross_entropy %t, %y : (tensor<4x256x65xf64>, tensor<4x256xi64>) -> tensor<f64>
  %5 = kiln.accuracy %x, %l : (tensor<?x10xf32>, tensor<?xi32>) -> tensor<f32>
  %6 = kiln.accuracy %t, %y : (tensor<4x256x65xf64>, tensor<4x256xi64>) -> tensor<f64>
  %7 = kiln.layer_norm %h, %g, %b eps 1.0e-5 : (tensor<?x256x384xf32>, tensor<384xf32>, tensor<384xf32>) -> tensor<?x256x384xf32>
  return
}

// Convolution and pooling: same padding, strides, a dynamic batch and a
// dynamic spatial size.
// CHECK-LABEL: func.func @conv_pool
// CHECK-SAME: (%[[X:.+]]: tensor<?x1x28x28xf32>, %[[W:.+]]: tensor<32x1x3x3xf32>, %[[D:.+]]: tensor<2x3x?x9xf64>, %[[V:.+]]: tensor<4x3x3x3xf64>)
func.func @conv_pool(%x: tensor<?x1x28x28xf32>, %w: tensor<32x1x3x3xf32>, %d: tensor<2x3x?x9xf64>, %v: tensor<4x3x3x3xf64>) {
  // CHECK-NEXT: kiln.conv2d %[[X]], %[[W]] stride [1, 1] padding [1, 1] : (tensor<?x1x28x28xf32>, tensor<32x1x3x3xf32>) -> tensor<?x32x28x28xf32>
  // CHECK-NEXT: kiln.conv2d %[[D]], %[[V]] stride [2, 2] padding [0, 0] : (tensor<2x3x?x9xf64>, tensor<4x3x3x3xf64>) -> tensor<2x4x?x4xf64>
  // CHECK-NEXT: kiln.max_pool2d %[[X]] kernel [2, 2] stride [2, 2] padding [0, 0] : (tensor<?x1x28x28xf32>) -> tensor<?x1x14x14xf32>
  // CHECK-NEXT: kiln.avg_pool2d %[[D]] kernel [3, 3] stride [1, 2] padding [1, 1] : (tensor<2x3x?x9xf64>) -> tensor<2x3x?x5xf64>
  %0 = kiln.conv2d %x, %w stride [1, 1] padding [1, 1] : (tensor<?x1x28x28xf32>, tensor<32x1x3x3xf32>) -> tensor<?x32x28x28xf32>
  %1 = kiln.conv2d %d, %v stride [2, 2] padding [0, 0] : (tensor<2x3x?x9xf64>, tensor<4x3x3x3xf64>) -> tensor<2x4x?x4xf64>
  %2 = kiln.max_pool2d %x kernel [2, 2] stride [2, 2] padding [0, 0] : (tensor<?x1x28x28xf32>) -> tensor<?x1x14x14xf32>
  %3 = kiln.avg_pool2d %d kernel [3, 3] stride [1, 2] padding [1, 1] : (tensor<2x3x?x9xf64>) -> tensor<2x3x?x5xf64>
  return
}

// Embedding with i32 and i64 indices of any rank; dropout with its rate and
// stream.
// CHECK-LABEL: func.func @embedding_dropout
// CHECK-SAME: (%[[T:.+]]: tensor<65x384xf32>, %[[I:.+]]: tensor<?x256xi32>, %[[J:.+]]: tensor<7xi64>, %[[X:.+]]: tensor<?x512xf32>)
func.func @embedding_dropout(%t: tensor<65x384xf32>, %i: tensor<?x256xi32>, %j: tensor<7xi64>, %x: tensor<?x512xf32>) {
  // CHECK-NEXT: kiln.embedding %[[T]], %[[I]] : (tensor<65x384xf32>, tensor<?x256xi32>) -> tensor<?x256x384xf32>
  // CHECK-NEXT: kiln.embedding %[[T]], %[[J]] : (tensor<65x384xf32>, tensor<7xi64>) -> tensor<7x384xf32>
  // CHECK-NEXT: kiln.dropout %[[X]] rate 1.000000e-01 stream 0 : tensor<?x512xf32>
  // CHECK-NEXT: kiln.dropout %[[X]] rate 0.000000e+00 stream 3 : tensor<?x512xf32>
  %0 = kiln.embedding %t, %i : (tensor<65x384xf32>, tensor<?x256xi32>) -> tensor<?x256x384xf32>
  %1 = kiln.embedding %t, %j : (tensor<65x384xf32>, tensor<7xi64>) -> tensor<7x384xf32>
  %2 = kiln.dropout %x rate 0.1 stream 0 : tensor<?x512xf32>
  %3 = kiln.dropout %x rate 0.0 stream 3 : tensor<?x512xf32>
  return
}

// linear with and without bias, on a vector, a batch and a sequence batch.
// CHECK-LABEL: func.func @linear
// CHECK-SAME: (%[[X:.+]]: tensor<?x784xf32>, %[[W:.+]]: tensor<512x784xf32>, %[[B:.+]]: tensor<512xf32>, %[[V:.+]]: tensor<784xf32>, %[[S:.+]]: tensor<?x16x784xf32>)
func.func @linear(%x: tensor<?x784xf32>, %w: tensor<512x784xf32>, %b: tensor<512xf32>, %v: tensor<784xf32>, %s: tensor<?x16x784xf32>) {
  // CHECK-NEXT: kiln.linear %[[X]], %[[W]], %[[B]] : (tensor<?x784xf32>, tensor<512x784xf32>, tensor<512xf32>) -> tensor<?x512xf32>
  // CHECK-NEXT: kiln.linear %[[X]], %[[W]] : (tensor<?x784xf32>, tensor<512x784xf32>) -> tensor<?x512xf32>
  // CHECK-NEXT: kiln.linear %[[V]], %[[W]], %[[B]] : (tensor<784xf32>, tensor<512x784xf32>, tensor<512xf32>) -> tensor<512xf32>
  // CHECK-NEXT: kiln.linear %[[S]], %[[W]] : (tensor<?x16x784xf32>, tensor<512x784xf32>) -> tensor<?x16x512xf32>
  %0 = kiln.linear %x, %w, %b : (tensor<?x784xf32>, tensor<512x784xf32>, tensor<512xf32>) -> tensor<?x512xf32>
  %1 = kiln.linear %x, %w : (tensor<?x784xf32>, tensor<512x784xf32>) -> tensor<?x512xf32>
  %2 = kiln.linear %v, %w, %b : (tensor<784xf32>, tensor<512x784xf32>, tensor<512xf32>) -> tensor<512xf32>
  %3 = kiln.linear %s, %w : (tensor<?x16x784xf32>, tensor<512x784xf32>) -> tensor<?x16x512xf32>
  return
}

// A declared result type may be less or more refined than the inferred one
// (the shape inference pass settles it); it is printed as declared.
// CHECK-LABEL: func.func @declared_types
// CHECK-SAME: (%[[X:.+]]: tensor<?x4xf32>, %[[Y:.+]]: tensor<8x4xf32>)
func.func @declared_types(%x: tensor<?x4xf32>, %y: tensor<8x4xf32>) {
  // CHECK-NEXT: kiln.add %[[Y]], %[[Y]] : (tensor<8x4xf32>, tensor<8x4xf32>) -> tensor<?x?xf32>
  // CHECK-NEXT: kiln.add %[[X]], %[[X]] : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<8x4xf32>
  %0 = kiln.add %y, %y : (tensor<8x4xf32>, tensor<8x4xf32>) -> tensor<?x?xf32>
  %1 = kiln.add %x, %x : (tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<8x4xf32>
  return
}

// The primitives that gradient rules build: count of elements along axes,
// the fused cross-entropy backward, the GELU derivative in both formulas.
// CHECK-LABEL: func.func @gradient_primitives
// CHECK-SAME: (%[[X:.+]]: tensor<?x10xf32>, %[[L:.+]]: tensor<?xi32>, %[[G:.+]]: tensor<f32>, %[[H:.+]]: tensor<?x1536xf64>)
func.func @gradient_primitives(%x: tensor<?x10xf32>, %l: tensor<?xi32>, %g: tensor<f32>, %h: tensor<?x1536xf64>) {
  // CHECK-NEXT: kiln.count %[[X]] [0] : (tensor<?x10xf32>) -> tensor<f32>
  // CHECK-NEXT: kiln.count %[[H]] [] : (tensor<?x1536xf64>) -> tensor<f64>
  // CHECK-NEXT: kiln.cross_entropy_grad %[[X]], %[[L]], %[[G]] : (tensor<?x10xf32>, tensor<?xi32>, tensor<f32>) -> tensor<?x10xf32>
  // CHECK-NEXT: kiln.gelu_grad %[[H]], %[[H]] : (tensor<?x1536xf64>, tensor<?x1536xf64>) -> tensor<?x1536xf64>
  // CHECK-NEXT: kiln.gelu_grad %[[H]], %[[H]] approximate tanh : (tensor<?x1536xf64>, tensor<?x1536xf64>) -> tensor<?x1536xf64>
  %0 = kiln.count %x [0] : (tensor<?x10xf32>) -> tensor<f32>
  %1 = kiln.count %h [] : (tensor<?x1536xf64>) -> tensor<f64>
  %2 = kiln.cross_entropy_grad %x, %l, %g : (tensor<?x10xf32>, tensor<?xi32>, tensor<f32>) -> tensor<?x10xf32>
  %3 = kiln.gelu_grad %h, %h : (tensor<?x1536xf64>, tensor<?x1536xf64>) -> tensor<?x1536xf64>
  %4 = kiln.gelu_grad %h, %h approximate tanh : (tensor<?x1536xf64>, tensor<?x1536xf64>) -> tensor<?x1536xf64>
  return
}

// The gradient primitives of conv2d, pooling and embedding, with a dynamic
// batch: the input-shaped results take the shape of their `*_like` operand
// (a stride of 2 maps inputs of 27 and 28 to one output size).
// CHECK-LABEL: func.func @window_gradient_primitives
// CHECK-SAME: (%[[X:.+]]: tensor<?x1x28x28xf32>, %[[Z:.+]]: tensor<?x1x27x27xf32>, %[[W:.+]]: tensor<32x1x3x3xf32>, %[[G:.+]]: tensor<?x32x14x14xf32>, %[[P:.+]]: tensor<?x1x14x14xf32>, %[[T:.+]]: tensor<65x384xf32>, %[[I:.+]]: tensor<?x256xi32>, %[[E:.+]]: tensor<?x256x384xf32>)
func.func @window_gradient_primitives(%x: tensor<?x1x28x28xf32>, %z: tensor<?x1x27x27xf32>, %w: tensor<32x1x3x3xf32>, %g: tensor<?x32x14x14xf32>, %p: tensor<?x1x14x14xf32>, %t: tensor<65x384xf32>, %i: tensor<?x256xi32>, %e: tensor<?x256x384xf32>) {
  // CHECK-NEXT: kiln.conv2d_grad_input %[[G]], %[[W]], %[[X]] stride [2, 2] padding [1, 1] : (tensor<?x32x14x14xf32>, tensor<32x1x3x3xf32>, tensor<?x1x28x28xf32>) -> tensor<?x1x28x28xf32>
  // CHECK-NEXT: kiln.conv2d_grad_input %[[G]], %[[W]], %[[Z]] stride [2, 2] padding [1, 1] : (tensor<?x32x14x14xf32>, tensor<32x1x3x3xf32>, tensor<?x1x27x27xf32>) -> tensor<?x1x27x27xf32>
  // CHECK-NEXT: kiln.conv2d_grad_weight %[[X]], %[[G]], %[[W]] stride [2, 2] padding [1, 1] : (tensor<?x1x28x28xf32>, tensor<?x32x14x14xf32>, tensor<32x1x3x3xf32>) -> tensor<32x1x3x3xf32>
  // CHECK-NEXT: kiln.max_pool2d_grad %[[X]], %[[P]] kernel [2, 2] stride [2, 2] padding [0, 0] : (tensor<?x1x28x28xf32>, tensor<?x1x14x14xf32>) -> tensor<?x1x28x28xf32>
  // CHECK-NEXT: kiln.avg_pool2d_grad %[[P]], %[[Z]] kernel [3, 3] stride [2, 2] padding [1, 1] : (tensor<?x1x14x14xf32>, tensor<?x1x27x27xf32>) -> tensor<?x1x27x27xf32>
  // CHECK-NEXT: kiln.embedding_grad %[[I]], %[[E]], %[[T]] : (tensor<?x256xi32>, tensor<?x256x384xf32>, tensor<65x384xf32>) -> tensor<65x384xf32>
  %0 = kiln.conv2d_grad_input %g, %w, %x stride [2, 2] padding [1, 1] : (tensor<?x32x14x14xf32>, tensor<32x1x3x3xf32>, tensor<?x1x28x28xf32>) -> tensor<?x1x28x28xf32>
  %1 = kiln.conv2d_grad_input %g, %w, %z stride [2, 2] padding [1, 1] : (tensor<?x32x14x14xf32>, tensor<32x1x3x3xf32>, tensor<?x1x27x27xf32>) -> tensor<?x1x27x27xf32>
  %2 = kiln.conv2d_grad_weight %x, %g, %w stride [2, 2] padding [1, 1] : (tensor<?x1x28x28xf32>, tensor<?x32x14x14xf32>, tensor<32x1x3x3xf32>) -> tensor<32x1x3x3xf32>
  %3 = kiln.max_pool2d_grad %x, %p kernel [2, 2] stride [2, 2] padding [0, 0] : (tensor<?x1x28x28xf32>, tensor<?x1x14x14xf32>) -> tensor<?x1x28x28xf32>
  %4 = kiln.avg_pool2d_grad %p, %z kernel [3, 3] stride [2, 2] padding [1, 1] : (tensor<?x1x14x14xf32>, tensor<?x1x27x27xf32>) -> tensor<?x1x27x27xf32>
  %5 = kiln.embedding_grad %i, %e, %t : (tensor<?x256xi32>, tensor<?x256x384xf32>, tensor<65x384xf32>) -> tensor<65x384xf32>
  return
}

// attention, its gradients and iota round-trip; `causal` is optional.
// CHECK-LABEL: func.func @attention_iota
// CHECK-NEXT: %[[O:.+]], %[[LSE:.+]] = kiln.attention %{{.+}}, %{{.+}}, %{{.+}} causal scale 1.250000e-01 : (tensor<?x6x256x64xf32>, tensor<?x6x256x64xf32>, tensor<?x6x256x64xf32>) -> (tensor<?x6x256x64xf32>, tensor<?x6x256xf32>)
// CHECK-NEXT: kiln.attention %{{.+}}, %{{.+}}, %{{.+}} scale 1.000000e+00 : (tensor<3x4xf32>, tensor<5x4xf32>, tensor<5x2xf32>) -> (tensor<3x2xf32>, tensor<3xf32>)
// CHECK-NEXT: kiln.attention_grad_q %{{.+}}, %{{.+}}, %{{.+}}, %[[O]], %[[LSE]], %[[LSE]] causal scale 1.250000e-01 : (tensor<?x6x256x64xf32>, tensor<?x6x256x64xf32>, tensor<?x6x256x64xf32>, tensor<?x6x256x64xf32>, tensor<?x6x256xf32>, tensor<?x6x256xf32>) -> tensor<?x6x256x64xf32>
// CHECK-NEXT: %{{.+}}, %{{.+}} = kiln.attention_grad_kv %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} scale 1.000000e+00 : (tensor<3x4xf32>, tensor<5x4xf32>, tensor<5x2xf32>, tensor<3x2xf32>, tensor<3xf32>, tensor<3xf32>) -> (tensor<5x4xf32>, tensor<5x2xf32>)
// CHECK-NEXT: kiln.iota [256, 256] dim 1 : tensor<256x256xi32>
func.func @attention_iota(%q: tensor<?x6x256x64xf32>, %a: tensor<3x4xf32>, %b: tensor<5x4xf32>, %c: tensor<5x2xf32>) {
  %0:2 = kiln.attention %q, %q, %q causal scale 1.250000e-01 : (tensor<?x6x256x64xf32>, tensor<?x6x256x64xf32>, tensor<?x6x256x64xf32>) -> (tensor<?x6x256x64xf32>, tensor<?x6x256xf32>)
  %1, %lse = kiln.attention %a, %b, %c scale 1.000000e+00 : (tensor<3x4xf32>, tensor<5x4xf32>, tensor<5x2xf32>) -> (tensor<3x2xf32>, tensor<3xf32>)
  %dq = kiln.attention_grad_q %q, %q, %q, %0#0, %0#1, %0#1 causal scale 1.250000e-01 : (tensor<?x6x256x64xf32>, tensor<?x6x256x64xf32>, tensor<?x6x256x64xf32>, tensor<?x6x256x64xf32>, tensor<?x6x256xf32>, tensor<?x6x256xf32>) -> tensor<?x6x256x64xf32>
  %dk, %dv = kiln.attention_grad_kv %a, %b, %c, %1, %lse, %lse scale 1.000000e+00 : (tensor<3x4xf32>, tensor<5x4xf32>, tensor<5x2xf32>, tensor<3x2xf32>, tensor<3xf32>, tensor<3xf32>) -> (tensor<5x4xf32>, tensor<5x2xf32>)
  %2 = kiln.iota [256, 256] dim 1 : tensor<256x256xi32>
  return
}

// -----

// all_reduce over several tensors (sum or mean) round-trips.
// CHECK-LABEL: func.func @all_reduce
// CHECK-NEXT: %{{.+}}:2 = kiln.all_reduce mean %arg0, %arg1 : tensor<512x784xf32>, tensor<512xf32>
// CHECK-NEXT: kiln.all_reduce sum %arg2 : tensor<f64>
func.func @all_reduce(%w: tensor<512x784xf32>, %b: tensor<512xf32>, %s: tensor<f64>) {
  %0:2 = kiln.all_reduce mean %w, %b : tensor<512x784xf32>, tensor<512xf32>
  %1 = kiln.all_reduce sum %s : tensor<f64>
  return
}
