// The kiln-compile pipeline run by kiln-opt prints exactly what `kiln compile`
// prints, at every stage.
// RUN: kiln compile %examples/mlp.kiln --emit=ir -o %t.ir.mlir
// RUN: kiln-opt %t.ir.mlir --pass-pipeline='builtin.module(kiln-compile{stage=primitive bind=batch=32})' > %t.opt.primitive.mlir
// RUN: kiln compile %examples/mlp.kiln --emit=primitive --bind batch=32 > %t.kiln.primitive.mlir
// RUN: diff %t.kiln.primitive.mlir %t.opt.primitive.mlir
// RUN: kiln-opt %t.ir.mlir --pass-pipeline='builtin.module(kiln-compile{stage=ir bind=batch=32})' > %t.opt.ir.mlir
// RUN: kiln compile %examples/mlp.kiln --emit=ir --bind batch=32 > %t.kiln.ir.mlir
// RUN: diff %t.kiln.ir.mlir %t.opt.ir.mlir
// RUN: kiln-opt %t.ir.mlir --pass-pipeline='builtin.module(kiln-compile{stage=ir})' | diff %t.ir.mlir -
// RUN: FileCheck %s --check-prefix=PRIMITIVE --implicit-check-not=kiln.linear --implicit-check-not=kiln.accuracy < %t.opt.primitive.mlir
// RUN: FileCheck %s --check-prefix=IR --implicit-check-not=kiln.matmul < %t.opt.ir.mlir

// stage=primitive: batch bound, linear and accuracy lowered.
// PRIMITIVE-LABEL: func.func @mlp
// PRIMITIVE-SAME: (%[[X:.+]]: tensor<32x784xf32> {{.*}}, %[[L:.+]]: tensor<32xi32> {{.*}}) -> (tensor<f32> {{.*}}, tensor<f32> {{.*}})
// PRIMITIVE: %[[W1:.+]] = kiln.param "l1.weight" : tensor<512x784xf32>
// PRIMITIVE: %[[B1:.+]] = kiln.param "l1.bias" : tensor<512xf32>
// PRIMITIVE: %[[M1:.+]] = kiln.matmul %[[X]], %[[W1]] transpose_rhs : (tensor<32x784xf32>, tensor<512x784xf32>) -> tensor<32x512xf32>
// PRIMITIVE-NEXT: kiln.add %[[M1]], %[[B1]] : (tensor<32x512xf32>, tensor<512xf32>) -> tensor<32x512xf32>
// PRIMITIVE: kiln.cross_entropy {{.*}} : (tensor<32x10xf32>, tensor<32xi32>) -> tensor<f32>
// PRIMITIVE-NEXT: kiln.argmax {{.*}} axis -1 : (tensor<32x10xf32>) -> tensor<32xi32>
// PRIMITIVE-NEXT: kiln.cmp eq
// PRIMITIVE-NEXT: kiln.cast
// PRIMITIVE-NEXT: kiln.reduce_mean

// stage=ir: batch bound, composites kept.
// IR-LABEL: func.func @mlp
// IR-SAME: (%{{.+}}: tensor<32x784xf32> {{.*}}, %{{.+}}: tensor<32xi32> {{.*}})
// IR: kiln.linear {{.*}} -> tensor<32x512xf32>
// IR: kiln.accuracy {{.*}} : (tensor<32x10xf32>, tensor<32xi32>) -> tensor<f32>
