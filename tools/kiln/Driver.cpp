//===- Driver.cpp - what the kiln driver's subcommands share --------------===//

#include "tools/kiln/Driver.h"

#include "frontend/MLIRGen.h"
#include "frontend/Parser.h"
#include "ir/KilnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/WithColor.h"

using namespace kiln::driver;

int kiln::driver::fail(int code, const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "kiln") << message << "\n";
  return code;
}

llvm::cl::OptionCategory &kiln::driver::category() {
  static llvm::cl::OptionCategory options("kiln options");
  return options;
}

ModelFile::ModelFile() {
  context.loadDialect<kiln::KilnDialect, mlir::func::FuncDialect>();
  // Users get located messages, not IR dumps of the op that failed.
  context.printOpOnDiagnostic(false);
  diagnostics =
      std::make_unique<mlir::SourceMgrDiagnosticHandler>(sourceMgr, &context);
}

int ModelFile::parse(llvm::StringRef path) {
  auto buffer = llvm::MemoryBuffer::getFileOrSTDIN(path, /*IsText=*/true);
  if (std::error_code ec = buffer.getError())
    return fail(kIOError, "cannot read '" + path + "': " + ec.message());
  llvm::StringRef source = (*buffer)->getBuffer();
  sourceMgr.AddNewSourceBuffer(std::move(*buffer), llvm::SMLoc());
  ast = frontend::parseModelFile(source, path, context);
  return ast ? kSuccess : kModelError;
}

int ModelFile::compile(
    const CompilePipelineOptions &options,
    llvm::function_ref<void(mlir::PassManager &)> configure) {
  module = frontend::mlirGen(context, *ast);
  if (!module)
    return kModelError;
  mlir::PassManager pm(&context);
  if (configure)
    configure(pm);
  if (mlir::failed(
          buildCompilePipeline(pm, options, [](const llvm::Twine &message) {
            fail(kUsageError, message);
            return mlir::failure();
          })))
    return kUsageError;
  if (mlir::failed(pm.run(*module)))
    return kModelError;
  return kSuccess;
}
