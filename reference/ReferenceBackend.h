//===- ReferenceBackend.h - the reference executor as a backend -*- C++ -*-===//
//
// The reference executor behind the runtime's Backend interface
// (runtime/Backend.h): a module's step functions (`kiln.step` = "train",
// "eval", "predict") run op by op in double precision, their parameters and
// state resident between steps and shared by name, inputs set or gathered
// from byte tables, exactly as the CPU and CUDA backends take them. What a
// trainer's loop drives on a device it can so drive on the oracle.
//
//   auto program = reference::describeSteps(module, /*maxBatch=*/1000);
//   runtime::bindBatch(*program, "train", 128);
//   auto backend = reference::createReferenceBackend(module, *program);
//   backend->write("l1.weight", ...); backend->run("train", seed); ...
//
//===----------------------------------------------------------------------===//

#ifndef KILN_REFERENCE_REFERENCEBACKEND_H
#define KILN_REFERENCE_REFERENCEBACKEND_H

#include "runtime/Backend.h"
#include "runtime/Program.h"

#include "mlir/IR/BuiltinOps.h"

#include <memory>

namespace kiln::reference {

/// The program of `module`'s step functions: their arguments and results
/// (a symbolic dimension becomes the batch, from 1 to `maxBatch`), no
/// launches and no arena. Fails with a located error for a step tensor
/// whose type or role the runtime does not take.
mlir::FailureOr<runtime::Program> describeSteps(mlir::ModuleOp module,
                                                int64_t maxBatch);

/// A backend running `module`'s step functions as `program` (from
/// describeSteps, its batches bound) describes them. The module must
/// outlive it.
std::unique_ptr<runtime::Backend>
createReferenceBackend(mlir::ModuleOp module, const runtime::Program &program);

} // namespace kiln::reference

#endif // KILN_REFERENCE_REFERENCEBACKEND_H
