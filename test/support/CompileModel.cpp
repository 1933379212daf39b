//===- CompileModel.cpp - a model file through the pipeline ---------------===//

#include "CompileModel.h"

#include "frontend/MLIRGen.h"
#include "frontend/Parser.h"
#include "passes/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/Support/MemoryBuffer.h"

mlir::OwningOpRef<mlir::ModuleOp>
kiln::test::compileModel(mlir::MLIRContext &context, const std::string &file,
                         Stage stage, const std::string &bind, int64_t maxBatch,
                         bool dataParallel) {
  auto buffer = llvm::MemoryBuffer::getFile(file);
  if (!buffer)
    return nullptr;
  auto ast = frontend::parseModelFile((*buffer)->getBuffer(), file, context);
  if (!ast)
    return nullptr;
  auto module = frontend::mlirGen(context, *ast);
  if (!module)
    return nullptr;
  CompilePipelineOptions options;
  options.stage = stage;
  std::vector<std::string> bindings;
  if (!bind.empty())
    bindings.push_back(bind);
  options.bind = bindings;
  options.maxBatch = maxBatch;
  options.dataParallel = dataParallel;
  mlir::PassManager pm(&context);
  if (failed(buildCompilePipeline(
          pm, options, [](const llvm::Twine &) { return mlir::failure(); })) ||
      failed(pm.run(*module)))
    return nullptr;
  return module;
}

mlir::LogicalResult kiln::test::scheduleKernels(mlir::ModuleOp module) {
  mlir::PassManager pm(module.getContext());
  pm.addPass(createKilnSchedule());
  return pm.run(module);
}
