//===- Pipeline.cpp - the pipeline that `kiln compile` runs ---------------===//

#include "passes/Pipeline.h"
#include "passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"

using namespace mlir;

void kiln::buildCompilePipeline(OpPassManager &pm,
                                const CompilePipelineOptions &options) {
  OpPassManager &funcs = pm.nest<func::FuncOp>();
  std::vector<std::string> bindings(options.bind.begin(), options.bind.end());
  KilnShapeInferenceOptions shapes;
  shapes.bindings = bindings;
  funcs.addPass(createKilnShapeInference(shapes));
  if (options.stage == Stage::ir)
    return;
  funcs.addPass(createKilnDecompose());
}

void kiln::registerKilnPassesAndPipelines() {
  registerKilnPasses();
  PassPipelineRegistration<CompilePipelineOptions>(
      "kiln-compile", "The pipeline of `kiln compile`, up to a stage",
      buildCompilePipeline);
}
