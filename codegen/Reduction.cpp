//===- Reduction.cpp - reduction kernels
//-----------------------------------------===//
//
// Not written yet.
//
//===----------------------------------------------------------------------===//

#include "codegen/CodegenUtils.h"

using namespace mlir;
using namespace kiln;
using namespace kiln::codegen;

FailureOr<GeneratedKernel>
kiln::codegen::generateReduction(KernelOp kernel, llvm::StringRef, Target) {
  return kernel.emitError(
             "the reduction kernel generator is not written yet ('")
         << kernel.getName() << "')";
}

std::string kiln::codegen::reductionPreamble(Target) { return ""; }
