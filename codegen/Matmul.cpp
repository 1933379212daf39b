//===- Matmul.cpp - matmul kernels
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
kiln::codegen::generateMatmul(KernelOp kernel, llvm::StringRef, Target) {
  return kernel.emitError("the matmul kernel generator is not written yet ('")
         << kernel.getName() << "')";
}

std::string kiln::codegen::matmulPreamble(Target) { return ""; }
