//===- Pipeline.cpp - the pipeline that `kiln compile` runs ---------------===//

#include "passes/Pipeline.h"
#include "passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

LogicalResult kiln::buildCompilePipeline(OpPassManager &pm,
                                         const CompilePipelineOptions &options,
                                         ErrorHandler errorHandler) {
  OpPassManager &funcs = pm.nest<func::FuncOp>();
  std::vector<std::string> bindings(options.bind.begin(), options.bind.end());
  KilnShapeInferenceOptions shapes;
  shapes.bindings = bindings;
  funcs.addPass(createKilnShapeInference(shapes));
  if (options.stage == Stage::ir)
    return success();
  funcs.addPass(createKilnDecompose());
  if (options.stage == Stage::primitive)
    return success();
  pm.addPass(createKilnAutodiff());
  if (options.dataParallel) {
    KilnDataParallelOptions dataParallel;
    dataParallel.bucketBytes = options.bucketBytes;
    pm.addPass(createKilnDataParallel(dataParallel));
  }
  // Only the options given override the model file's optimizer statement.
  std::unique_ptr<Pass> optimizer = createKilnOptimizer();
  if (failed(
          optimizer->initializeOptions(options.optimizerOptions, errorHandler)))
    return failure();
  pm.addPass(std::move(optimizer));
  // Gradient rules build what they need locally: drop the dead parts (the
  // gradients of inputs) and share repeated constants.
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  if (options.stage == Stage::grad)
    return success();
  pm.nest<func::FuncOp>().addPass(createKilnFuse());
  pm.nest<func::FuncOp>().addPass(createKilnFuseHorizontal());
  if (options.stage == Stage::fused)
    return success();
  KilnPlanMemoryOptions plan;
  plan.maxBatch = options.maxBatch;
  pm.nest<func::FuncOp>().addPass(createKilnPlanMemory(plan));
  if (options.stage == Stage::planned)
    return success();
  KilnScheduleOptions schedule;
  schedule.schedules = options.schedules;
  schedule.partialModule = options.schedulesOfOtherModules;
  schedule.candidates = options.candidates;
  pm.addPass(createKilnSchedule(schedule));
  return success();
}

void kiln::registerKilnPassesAndPipelines() {
  registerKilnPasses();
  registerPassPipeline(
      "kiln-compile", "The pipeline of `kiln compile`, up to a stage",
      [](OpPassManager &pm, StringRef text, ErrorHandler errorHandler) {
        CompilePipelineOptions options;
        if (failed(options.parseFromString(text)))
          return failure();
        return buildCompilePipeline(pm, options, errorHandler);
      },
      [](function_ref<void(const mlir::detail::PassOptions &)> describe) {
        describe(CompilePipelineOptions());
      });
}
