//===- AttrNames.h - names of the attributes kiln puts on funct -*- C++ -*-===//
//
// The contract between the frontend, the passes and the tools about how a
// model, its train step and their arguments and results are labelled.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_IR_ATTRNAMES_H
#define KILN_IR_ATTRNAMES_H

#include "llvm/ADT/StringRef.h"

namespace kiln::attrs {

/// On a function: it is a model as written (unit attribute).
inline constexpr llvm::StringLiteral model = "kiln.model";
/// On a function: what step it computes: "grad", "eval" or "train".
inline constexpr llvm::StringLiteral step = "kiln.step";
/// On a function: the optimizer configuration from the model file.
inline constexpr llvm::StringLiteral optimizer = "kiln.optimizer";
/// On arguments and results: the name the model file or checkpoint uses.
inline constexpr llvm::StringLiteral name = "kiln.name";
/// On arguments: one string per dimension, the symbol of a symbolic
/// dimension (`batch`) or "" for a fixed size.
inline constexpr llvm::StringLiteral dimNames = "kiln.dim_names";
/// On arguments and results: "input", "param", "state", "loss", "metric",
/// "grad"; on arguments also "hyper", a hyper-parameter the step reads but
/// never writes (the optimizer's base learning rate `lr`).
inline constexpr llvm::StringLiteral role = "kiln.role";
/// On parameter and hyper-parameter arguments: their #kiln.init initializer.
inline constexpr llvm::StringLiteral init = "kiln.init";

// The memory plan (kiln-plan-memory).

/// On a step function planned with a run-time batch: the largest batch it
/// takes, the one its memory is planned for (i64).
inline constexpr llvm::StringLiteral maxBatch = "kiln.max_batch";

/// On a kernel: one arena offset in bytes per result (array<i64>), -1 for a
/// result written in place into an argument's buffer.
inline constexpr llvm::StringLiteral offsets = "kiln.offsets";
/// On a kernel with an in-place result: per result, the index of the
/// argument whose buffer it is written into, or -1 (array<i64>).
inline constexpr llvm::StringLiteral inPlace = "kiln.in_place";
/// On a kernel that only reshapes its input: its result is a view, the
/// input's buffer read in the result's shape; no code runs (unit).
inline constexpr llvm::StringLiteral view = "kiln.view";
/// On a planned function: the bytes of its arena (i64).
inline constexpr llvm::StringLiteral arenaBytes = "kiln.arena_bytes";
/// On a planned function: the bytes of its parameters, optimizer state and
/// inputs, the buffers the caller owns (i64).
inline constexpr llvm::StringLiteral paramBytes = "kiln.param_bytes";
inline constexpr llvm::StringLiteral stateBytes = "kiln.state_bytes";
inline constexpr llvm::StringLiteral inputBytes = "kiln.input_bytes";

// Scheduling (kiln-schedule).

/// On a kernel: its schedule per target, a dictionary whose keys are the
/// targets (`cuda`, `cpu`) and whose values are schedule attributes
/// (ir/Schedules.td).
inline constexpr llvm::StringLiteral schedule = "kiln.schedule";

/// On a kernel: other schedules worth timing per target, a dictionary like
/// `kiln.schedule` whose values are arrays of schedule attributes, the
/// likeliest first (kiln-schedule's `candidates=N`): what a trainer's
/// `--tune` searches.
inline constexpr llvm::StringLiteral candidates = "kiln.candidates";

} // namespace kiln::attrs

#endif // KILN_IR_ATTRNAMES_H
