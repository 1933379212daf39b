//===- CodegenUtils.h - what every kernel generator shares ------*- C++ -*-===//
//
// The pieces of code generation that do not depend on a kernel's kind: C
// types and literals, the scalar C expression of each elementwise op, the
// comment naming the fused ops, the parameter list of the calling
// convention (KernelCodegen.h) and the C++ target's uniform entry point.
// Internal to codegen/.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_CODEGEN_CODEGENUTILS_H
#define KILN_CODEGEN_CODEGENUTILS_H

#include "codegen/KernelCodegen.h"
#include "ir/Schedules.h"

#include "mlir/Support/IndentedOstream.h"

#include "mlir/IR/Operation.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <string>

namespace kiln::codegen {

/// The C type of an element type ("float", "double", "bool", "int",
/// "long long"), or "" if unsupported.
std::string cType(mlir::Type type);

/// The element type of a ranked tensor value.
mlir::Type elementOf(mlir::Value v);

/// A C literal of `type` that reads back exactly (1.5f, 0.1, 3LL, true).
std::string literal(double value, mlir::Type type);

/// A C math function for the element type: expf for f32, exp for f64. On
/// the C++ target, f32 exp and tanh are cpu.h's kiln_expf and kiln_tanhf,
/// which loops vectorize.
std::string math(llvm::StringRef name, mlir::Type type, Target target);

/// "file:line:col" of an op, or "?".
std::string locationOf(mlir::Operation *op);

/// Whether `op` computes each result element from the elements at the same
/// (broadcast) index of its operands: the ops a generator can put before
/// or after its kernel's main op, as scalar C.
bool isScalarOp(mlir::Operation *op);

/// The C expression computing one element of `op`'s result (an op for which
/// isScalarOp holds), given the expressions of its operands' elements: the
/// spelling of the dialect's table of scalar ops (ir/ScalarSemantics.h),
/// and dropout's mask. `flatIndex` names the flat index of the element in
/// the result tensor (dropout draws its mask from it). Fails with an error
/// at the op.
mlir::FailureOr<std::string>
scalarExpression(mlir::Operation *op,
                 llvm::function_ref<std::string(mlir::Value)> operand,
                 llvm::StringRef flatIndex, Target target);

/// The literal of a splat `kiln.constant`; fails (at the op) otherwise.
mlir::FailureOr<std::string> constantLiteral(mlir::Operation *op);

/// Writes `ops` as scalar C, one `const T v<N> = ...; // op at loc` line
/// each; constants become literals. Operands are looked up in `locals`,
/// which receives each result's name. `next` numbers the locals (so several
/// calls in one kernel do not clash).
mlir::LogicalResult
emitScalarOps(mlir::raw_indented_ostream &os,
              llvm::ArrayRef<mlir::Operation *> ops,
              llvm::DenseMap<mlir::Value, std::string> &locals,
              llvm::StringRef flatIndex, unsigned &next, Target target);

/// The comment that opens every kernel: its name, kind and each fused op
/// with its source location.
void writeKernelComment(llvm::raw_ostream &os, KernelOp kernel);

/// Fills `generated`'s symbol, input and output counts and `takesSeed`
/// (any dropout in the kernel); fails for an unsupported element type.
mlir::LogicalResult initGenerated(KernelOp kernel, llvm::StringRef symbol,
                                  GeneratedKernel &generated);

/// Adds dimension `dim` of the kernel's operand `operand` (inputs, then
/// results) to `generated.dynamicDims` unless there, and returns its
/// parameter name ("s0", "s1", ...).
std::string dynamicDimParam(GeneratedKernel &generated, unsigned operand,
                            unsigned dim);

/// The index in `generated.dynamicDims` of (`operand`, `dim`), added unless
/// there: what GridExtent::dynamicFactors lists.
unsigned dynamicDimIndex(GeneratedKernel &generated, unsigned operand,
                         unsigned dim);

/// The C expression of dimension `dim` of `type`: a literal when static,
/// otherwise the parameter dynamicDimParam gives for (`operand`, `dim`).
std::string dimSize(GeneratedKernel &generated, mlir::RankedTensorType type,
                    unsigned operand, unsigned dim);

/// `extern "C" [__global__] void symbol(in..., out..., s..., [seed])`,
/// without the body; call it after every dynamicDimParam call. A CUDA
/// kernel given `launchBounds` ("256", "128, 1") declares them
/// (`__launch_bounds__(256)`), so that the compiler may use more registers.
std::string signature(KernelOp kernel, const GeneratedKernel &generated,
                      Target target, llvm::StringRef launchBounds = "");

/// The C++ target's `<symbol>_entry(buffers, dims, seed)` calling `symbol`.
std::string cppEntry(KernelOp kernel, const GeneratedKernel &generated);

/// Writes one iteration of an elementwise kernel's loop over its flat index
/// `flat` (a variable the caller declares; the multi-index is `flat`0,
/// `flat`1, ...): the multi-index dimensions broadcast loads need, one load
/// per region argument n from the pointer `inputs[n]`, the fused ops as
/// scalar C, and the store of yielded value k into each pointer of
/// `outputs[k]`. `sizes` are the C expressions of the iteration shape's
/// dimensions (the first result's shape); `next` numbers the locals. The
/// elementwise generator and each segment of a horizontal kernel use it;
/// so does a kernel whose main op (`anchor`, e.g. a convolution) takes an
/// epilogue, for one result element whose value is `anchorValue`: then
/// only the inputs its other ops read are loaded.
mlir::LogicalResult emitElementwiseIteration(
    mlir::raw_indented_ostream &os, KernelOp kernel,
    llvm::ArrayRef<std::string> sizes, llvm::ArrayRef<std::string> inputs,
    llvm::ArrayRef<llvm::SmallVector<std::string, 1>> outputs, unsigned &next,
    Target target, llvm::StringRef flat = "i",
    mlir::Operation *anchor = nullptr, llvm::StringRef anchorValue = "");

/// Writes C++ running the epilogue of `kernel` (the scalar ops after its
/// main op `anchor`) over the result elements [first, first + count) (C
/// expressions), the main op's values read from `values[0, count)`: in runs
/// along the rows the elementwise generator would use, each run's
/// multi-index and input pointers computed once and its loop vectorizable.
/// `sizes` as for emitElementwiseIteration.
mlir::LogicalResult
emitEpilogueRangeCpp(mlir::raw_indented_ostream &os, KernelOp kernel,
                     mlir::Operation *anchor, llvm::ArrayRef<std::string> sizes,
                     llvm::StringRef first, llvm::StringRef count,
                     llvm::StringRef values);

/// Sets the CUDA block of an elementwise or horizontal kernel from its
/// #kiln.elementwise schedule (the C++ target has none to read); fails, with
/// an error at the kernel, without one.
mlir::LogicalResult setElementwiseBlock(KernelOp kernel, Target target,
                                        GeneratedKernel &generated);

/// The generators, one per kernel kind.
mlir::FailureOr<GeneratedKernel>
generateElementwise(KernelOp kernel, llvm::StringRef symbol, Target target);
mlir::FailureOr<GeneratedKernel>
generateReduction(KernelOp kernel, llvm::StringRef symbol, Target target);
mlir::FailureOr<GeneratedKernel>
generateMatmul(KernelOp kernel, llvm::StringRef symbol, Target target);
mlir::FailureOr<GeneratedKernel>
generateOpaque(KernelOp kernel, llvm::StringRef symbol, Target target);
mlir::FailureOr<GeneratedKernel>
generateHorizontal(KernelOp kernel, llvm::StringRef symbol, Target target);
/// The fused attention kernels (Attention.cpp): an opaque kernel holding
/// kiln.attention, kiln.attention_grad_q or kiln.attention_grad_kv, whose
/// results the kernel may yield in part.
mlir::FailureOr<GeneratedKernel>
generateAttention(KernelOp kernel, llvm::StringRef symbol, Target target);

/// Device and host helpers a kind's kernels call, for the preamble ("" if
/// none).
std::string reductionPreamble(Target target);
std::string matmulPreamble(Target target);
std::string opaquePreamble(Target target);
std::string attentionPreamble(Target target);

} // namespace kiln::codegen

#endif // KILN_CODEGEN_CODEGENUTILS_H
