//===- KernelCodegen.h - kernels as CUDA C and C++ ----------------*- C++
//-*-===//
//
// Turns a `kiln.kernel` into the source of one function, for the GPU (a
// CUDA C `__global__` kernel, compiled by NVRTC) or the CPU (a C++ function,
// compiled by the host compiler). Both targets share one emitter: they
// differ only in how the loop over output elements is written.
//
// Kernels of kind `elementwise` are generated today; reductions, matmuls
// and opaque ops follow (docs/architecture.md).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_CODEGEN_KERNELCODEGEN_H
#define KILN_CODEGEN_KERNELCODEGEN_H

#include "ir/KilnDialect.h"

#include "mlir/Support/LogicalResult.h"

#include <string>

namespace kiln::codegen {

enum class Target { cuda, cpp };

/// The generated source of one kernel and how to call it.
struct GeneratedKernel {
  /// The C identifier of the function.
  std::string symbol;
  /// The function, with a comment per fused op naming its source location.
  std::string source;
  /// Parameters in order: one pointer per kernel input, one per result,
  /// then the size of each dynamic dimension of the iteration shape. The
  /// C++ target also defines `<symbol>_entry(void *const *buffers, const
  /// long long *dims, unsigned long long seed)` taking the same in one array
  /// each.
  unsigned numInputs = 0, numOutputs = 0, numDynamicDims = 0;
  /// Whether the last parameter is the step's random seed (dropout).
  bool takesSeed = false;
};

/// What every generated translation unit starts with.
std::string preamble(Target target);

/// Generates `kernel` as the function `symbol`. Fails, with an error at the
/// kernel, for a kind or op the generator does not handle yet.
mlir::FailureOr<GeneratedKernel>
generateKernel(KernelOp kernel, llvm::StringRef symbol, Target target);

} // namespace kiln::codegen

#endif // KILN_CODEGEN_KERNELCODEGEN_H
