//===- KernelCodegen.h - kernels as CUDA C and C++ --------------*- C++ -*-===//
//
// Turns a `kiln.kernel` into the source of one function, for the GPU (a
// CUDA C `__global__` kernel, compiled by NVRTC) or the CPU (a C++ function,
// compiled by the host compiler). Each kernel kind has its generator
// (Elementwise.cpp, Reduction.cpp, Matmul.cpp, Opaque.cpp); all share the
// scalar emitter of CodegenUtils.h and the calling convention below.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_CODEGEN_KERNELCODEGEN_H
#define KILN_CODEGEN_KERNELCODEGEN_H

#include "ir/KilnDialect.h"
#include "runtime/Program.h"

#include "mlir/Support/LogicalResult.h"
#include "llvm/ADT/SmallVector.h"

#include <string>

namespace kiln::codegen {

enum class Target { cuda, cpp };

/// A dynamic size a kernel takes as a parameter: dimension `dim` of its
/// operand `operand`, counting the kernel's inputs first, then its results.
struct DynamicDim {
  unsigned operand = 0;
  unsigned dim = 0;
};

/// One extent of a CUDA grid, as a formula of the dynamic sizes listed
/// (indices into GeneratedKernel::dynamicDims): the program's own record.
using GridExtent = runtime::GridExtent;

/// How a CUDA kernel is launched; the C++ target ignores it.
struct LaunchConfig {
  GridExtent grid[3];
  unsigned block[3] = {256, 1, 1};
  /// Dynamic shared memory in bytes.
  unsigned sharedBytes = 0;
};

/// The generated source of one kernel and how to call it.
///
/// The calling convention, the same for every kind and both targets:
///
///   symbol(const T0 *in0, ..., T *out0, ..., long long s0, ...,
///          [const unsigned long long *seed])
///
/// one pointer per kernel input, one per result (row-major, contiguous),
/// then the dynamic sizes listed in `dynamicDims`, then, when `takesSeed`,
/// where the step's random seed is: in memory, not a value, so a CUDA graph
/// captured once replays every step with that step's seed. The C++ target
/// also defines
///
///   extern "C" void <symbol>_entry(void *const *buffers,
///                                  const long long *dims,
///                                  unsigned long long seed)
///
/// taking the pointers and sizes in one array each, so a runtime calls any
/// kernel the same way. A kernel writes every element of its results (no
/// result needs zeroing first) and never writes its inputs.
struct GeneratedKernel {
  /// The C identifier of the function.
  std::string symbol;
  /// The function, with a comment per fused op naming its source location.
  std::string source;
  unsigned numInputs = 0, numOutputs = 0;
  llvm::SmallVector<DynamicDim> dynamicDims;
  /// Whether the last parameter points at the step's random seed
  /// (dropout).
  bool takesSeed = false;
  LaunchConfig launch;
};

/// What every generated translation unit starts with: includes, Philox
/// random numbers, and the device helpers the kernels use (warp
/// reductions).
std::string preamble(Target target);

/// Generates `kernel` as the function `symbol` with the generator for its
/// kind, rendering the kernel's schedule for `target` (`kiln.schedule`,
/// chosen by kiln-schedule; ir/Schedules.h). Fails, with an error at the
/// kernel or at the op, for a kernel or op the generator does not handle,
/// and for a missing schedule or one that does not fit the kernel.
mlir::FailureOr<GeneratedKernel>
generateKernel(KernelOp kernel, llvm::StringRef symbol, Target target);

} // namespace kiln::codegen

#endif // KILN_CODEGEN_KERNELCODEGEN_H
