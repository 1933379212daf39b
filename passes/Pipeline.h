//===- Pipeline.h - the pipeline that `kiln compile` runs -------*- C++ -*-===//
//
// The one place where the compile pipeline is built. It is registered as
// `kiln-compile`, so `kiln-opt --pass-pipeline='builtin.module(kiln-compile{
// stage=ir})'` reproduces exactly what `kiln compile --emit=ir` does.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_PASSES_PIPELINE_H
#define KILN_PASSES_PIPELINE_H

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace kiln {

/// The stages of compilation, in order; each includes all before it.
enum class Stage {
  /// The model as written, verified and shape-inferred.
  ir,
  /// Composites lowered to primitives.
  primitive,
  /// Gradients (@m_grad), the eval step (@m_eval_step) and the training step
  /// with its optimizer (@m_train_step).
  grad,
  /// Every function grouped into kiln.kernel ops.
  fused,
  /// Every kernel result given a buffer in the step's arena.
  planned,
  /// Every kernel given its schedule per target (what code generation
  /// renders).
  scheduled,
};

struct CompilePipelineOptions
    : public mlir::PassPipelineOptions<CompilePipelineOptions> {
  Option<Stage> stage{
      *this, "stage", llvm::cl::desc("The last stage to run"),
      llvm::cl::init(Stage::ir),
      llvm::cl::values(
          clEnumValN(Stage::ir, "ir", "the model, verified and shape-inferred"),
          clEnumValN(Stage::primitive, "primitive",
                     "composites lowered to primitives"),
          clEnumValN(Stage::grad, "grad",
                     "gradients, eval step and training step"),
          clEnumValN(Stage::fused, "fused", "ops grouped into kernels"),
          clEnumValN(Stage::planned, "planned",
                     "kernels with their memory planned"),
          clEnumValN(Stage::scheduled, "scheduled",
                     "kernels with their schedules"))};
  ListOption<std::string> bind{
      *this, "bind", llvm::cl::desc("Symbolic dimension sizes, as NAME=SIZE")};
  Option<int64_t> maxBatch{
      *this, "max-batch",
      llvm::cl::desc("Keep `batch` a run-time size and plan memory for "
                     "batches up to this size (0: bind it)"),
      llvm::cl::init(0)};
  Option<std::string> schedules{
      *this, "schedules",
      llvm::cl::desc("A schedules file whose schedules kiln-schedule uses "
                     "before its cost models")};
  Option<bool> schedulesOfOtherModules{
      *this, "schedules-of-other-modules",
      llvm::cl::desc("The schedules file may name kernels this module does "
                     "not have (a trainer's steps compiled apart)"),
      llvm::cl::init(false)};
  Option<unsigned> candidates{
      *this, "candidates",
      llvm::cl::desc("Other schedules kiln-schedule lists per kernel and "
                     "target for a trainer's --tune (kiln.candidates)"),
      llvm::cl::init(0)};
  Option<bool> dataParallel{
      *this, "data-parallel",
      llvm::cl::desc("Average the gradients over the ranks of a "
                     "data-parallel run (kiln-data-parallel)"),
      llvm::cl::init(false)};
  Option<int64_t> bucketBytes{
      *this, "bucket-bytes",
      llvm::cl::desc("With data-parallel: the largest bucket of gradients "
                     "one all-reduce takes, in bytes"),
      llvm::cl::init(4 << 20)};
  Option<std::string> optimizerOptions{
      *this, "optimizer-options",
      llvm::cl::desc("Options of kiln-optimizer that override the model "
                     "file, e.g. 'lr=0.1 momentum=0.9'")};
};

using ErrorHandler =
    llvm::function_ref<mlir::LogicalResult(const llvm::Twine &)>;

/// Adds the passes of every stage up to `options.stage` to `pm`, which must
/// run on a builtin.module. Fails, through `errorHandler`, on invalid
/// options.
mlir::LogicalResult buildCompilePipeline(mlir::OpPassManager &pm,
                                         const CompilePipelineOptions &options,
                                         ErrorHandler errorHandler);

/// Registers every kiln pass and the `kiln-compile` pipeline.
void registerKilnPassesAndPipelines();

} // namespace kiln

#endif // KILN_PASSES_PIPELINE_H
