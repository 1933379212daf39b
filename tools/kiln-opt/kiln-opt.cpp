//===- kiln-opt.cpp - run kiln passes on IR files -------------------------===//
//
// MlirOptMain with the kiln dialect, every kiln pass and the `kiln-compile`
// pipeline registered, so any IR dump can be fed back in and any pipeline
// reproduced.
//
//===----------------------------------------------------------------------===//

#include "ir/KilnDialect.h"
#include "passes/Pipeline.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<kiln::KilnDialect, mlir::func::FuncDialect>();
  kiln::registerKilnPassesAndPipelines();
  // The generic passes kiln pipelines and tests use.
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "kiln optimizer driver\n", registry));
}
