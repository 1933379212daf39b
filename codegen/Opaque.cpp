//===- Opaque.cpp - opaque kernels
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
kiln::codegen::generateOpaque(KernelOp kernel, llvm::StringRef, Target) {
  return kernel.emitError("the opaque kernel generator is not written yet ('")
         << kernel.getName() << "')";
}

std::string kiln::codegen::opaquePreamble(Target) { return ""; }
