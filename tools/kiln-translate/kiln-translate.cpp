//===- kiln-translate.cpp - kernels in .mlir to CUDA C and C++ ------------===//
//
// MlirTranslateMain with two translations, so that one hand-written kernel
// can be rendered alone and FileCheck-ed (test/codegen/*.mlir):
//
//   kiln-translate --kernel-to-cuda kernels.mlir   each kernel as CUDA C
//   kiln-translate --kernel-to-cpp kernels.mlir    each kernel as C++
//
// Every top-level `kiln.kernel` of every function is rendered with its
// schedule for the target (`kiln.schedule`; `kiln-opt --kiln-schedule`
// chooses them), after a line with its name and, for CUDA, its launch:
//
//   // kernel matmul_add_relu_0: grid d0/32,32,1 block 64,1,1 shared 0
//
// With --preamble the kernels follow the target's preamble (the device
// helpers every generated translation unit starts with), so the output
// compiles on its own: bench/cpu.sh builds kiln-gemm-bench's GEMMs so.
//
//===----------------------------------------------------------------------===//

#include "codegen/KernelCodegen.h"
#include "ir/KilnDialect.h"
#include "runtime/Program.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Tools/mlir-translate/MlirTranslateMain.h"
#include "mlir/Tools/mlir-translate/Translation.h"
#include "llvm/Support/CommandLine.h"

#include <cctype>

using namespace mlir;
using namespace kiln;

namespace {

llvm::cl::opt<bool> withPreamble(
    "preamble",
    llvm::cl::desc("start with the target's preamble, so that the output "
                   "compiles on its own"));

/// Writes every top-level kernel of `op`'s functions for `target`.
LogicalResult translateKernels(Operation *op, raw_ostream &os,
                               codegen::Target target) {
  if (withPreamble)
    os << codegen::preamble(target) << "\n";
  unsigned count = 0;
  WalkResult result = op->walk([&](func::FuncOp func) {
    for (KernelOp kernel : func.getOps<KernelOp>()) {
      std::string symbol;
      for (char c : kernel.getName())
        symbol += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      symbol += "_" + std::to_string(count++);
      FailureOr<codegen::GeneratedKernel> generated =
          codegen::generateKernel(kernel, symbol, target);
      if (failed(generated))
        return WalkResult::interrupt();
      os << "// kernel " << symbol;
      // The C++ target has no launch.
      if (target == codegen::Target::cuda) {
        const codegen::LaunchConfig &launch = generated->launch;
        os << ": grid " << runtime::gridExtentText(launch.grid[0]) << ","
           << runtime::gridExtentText(launch.grid[1]) << ","
           << runtime::gridExtentText(launch.grid[2]) << " block "
           << launch.block[0] << "," << launch.block[1] << ","
           << launch.block[2] << " shared " << launch.sharedBytes;
      }
      os << "\n" << generated->source << "\n";
    }
    return WalkResult::advance();
  });
  return failure(result.wasInterrupted());
}

void registerDialects(DialectRegistry &registry) {
  registry.insert<KilnDialect, func::FuncDialect>();
}

} // namespace

int main(int argc, char **argv) {
  TranslateFromMLIRRegistration cuda(
      "kernel-to-cuda", "each kiln.kernel as CUDA C (with its schedule)",
      [](Operation *op, raw_ostream &os) {
        return translateKernels(op, os, codegen::Target::cuda);
      },
      registerDialects);
  TranslateFromMLIRRegistration cpp(
      "kernel-to-cpp", "each kiln.kernel as C++ for the CPU backend",
      [](Operation *op, raw_ostream &os) {
        return translateKernels(op, os, codegen::Target::cpp);
      },
      registerDialects);
  return failed(
      mlirTranslateMain(argc, argv, "kiln kernel translation driver\n"));
}
