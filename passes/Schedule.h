//===- Schedule.h - kernels' schedules as a file ----------------*- C++ -*-===//
//
// What `kiln compile --emit=schedules` prints and `--schedules FILE` reads
// (the kiln-schedule pass): one line per kernel and target,
//
//   KERNEL@HASH TARGET = SCHEDULE
//
// the kernel named by its key (ir/Schedules.h), `#` starting a comment.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_PASSES_SCHEDULE_H
#define KILN_PASSES_SCHEDULE_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/raw_ostream.h"

namespace kiln {

/// Writes the schedules of `module`'s kernels (of each function, the
/// kernels at its top level), each key once, as a schedules file.
void printSchedules(mlir::ModuleOp module, llvm::raw_ostream &os);

/// Adds the keys of `module`'s kernels (of each function, the kernels at its
/// top level) to `keys`.
void collectScheduleKeys(mlir::ModuleOp module, llvm::StringSet<> &keys);

/// Reports, at its line, each line of the schedules file `path` whose
/// kernel is not among `keys`: the check of `--emit=trainer`, whose steps
/// are compiled apart (kiln-schedule with partial-module).
mlir::LogicalResult checkScheduleKeys(mlir::MLIRContext *context,
                                      llvm::StringRef path,
                                      const llvm::StringSet<> &keys);

} // namespace kiln

#endif // KILN_PASSES_SCHEDULE_H
