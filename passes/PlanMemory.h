//===- PlanMemory.h - the memory plan of a step, summarized -----*- C++ -*-===//
//
// What `kiln compile --stats` prints, read back from the attributes that
// `kiln-plan-memory` leaves on a function.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_PASSES_PLANMEMORY_H
#define KILN_PASSES_PLANMEMORY_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/SmallVector.h"

#include <cstdint>
#include <optional>

namespace kiln {

/// The alignment of every buffer in the arena, in bytes.
inline constexpr int64_t kBufferAlignment = 256;

/// The bytes a tensor of static shape takes: its elements times the bytes
/// of its element type (i1 takes a byte).
int64_t getTensorBytes(mlir::ShapedType type);

/// The memory of one planned function.
struct MemoryStats {
  /// Kernels in all, and per `KernelKind` (indexed by its value).
  unsigned kernels = 0;
  llvm::SmallVector<unsigned, 4> kernelsByKind;
  /// Bytes of the buffers the caller owns, by argument role.
  int64_t paramBytes = 0;
  int64_t stateBytes = 0;
  int64_t inputBytes = 0;
  /// Kernel results planned in the arena: how many, and their bytes summed
  /// as if none shared memory (before reuse, without alignment padding).
  unsigned buffers = 0;
  int64_t activationBytes = 0;
  /// Results written in place into a parameter's or state's buffer.
  unsigned inPlaceUpdates = 0;
  /// Reshapes planned as views of their input's buffer (no copy).
  unsigned views = 0;
  /// The arena after reuse: the planned peak of the step's temporaries.
  int64_t arenaBytes = 0;

  /// Everything the step needs in memory at once.
  int64_t peakBytes() const {
    return paramBytes + stateBytes + inputBytes + arenaBytes;
  }
};

/// Summarizes the plan of `func`; std::nullopt when `kiln-plan-memory` has
/// not run on it.
std::optional<MemoryStats> collectStats(mlir::func::FuncOp func);

} // namespace kiln

#endif // KILN_PASSES_PLANMEMORY_H
