//===- Driver.h - what the kiln driver's subcommands share ------*- C++ -*-===//

#ifndef KILN_TOOLS_KILN_DRIVER_H
#define KILN_TOOLS_KILN_DRIVER_H

#include "frontend/AST.h"
#include "passes/Pipeline.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/SourceMgr.h"

#include <memory>

namespace kiln::driver {

/// The driver's exit codes (docs/cli.md).
enum ExitCode : int {
  kSuccess = 0,
  kModelError = 1,   // errors in the model file
  kUsageError = 2,   // a bad command line
  kIOError = 3,      // a file that cannot be read or written
  kRuntimeError = 4, // training failed at run time (bad data, non-finite loss)
};

/// Prints `kiln: error: message` and returns `code`.
int fail(int code, const llvm::Twine &message);

/// The options every subcommand is listed under in --help.
llvm::cl::OptionCategory &category();

/// A model file on its way through the compiler: the context, the source
/// for diagnostics (file:line:col, source line, caret), the AST and IR.
class ModelFile {
public:
  ModelFile();

  /// Reads and parses `path` ("-" for stdin). Returns an exit code.
  int parse(llvm::StringRef path);
  /// Lowers the AST to the kiln dialect and runs the compile pipeline with
  /// `options`; `configure` may add IR printing. Returns an exit code.
  int compile(const CompilePipelineOptions &options,
              llvm::function_ref<void(mlir::PassManager &)> configure = {});

  mlir::MLIRContext &getContext() { return context; }
  const frontend::ModuleAST &getAST() const { return *ast; }
  mlir::ModuleOp getModule() { return *module; }

private:
  mlir::MLIRContext context;
  llvm::SourceMgr sourceMgr;
  std::unique_ptr<mlir::SourceMgrDiagnosticHandler> diagnostics;
  std::unique_ptr<frontend::ModuleAST> ast;
  mlir::OwningOpRef<mlir::ModuleOp> module;
};

/// Writes a fused module as one Graphviz digraph (Dot.cpp): a cluster per
/// function, a nested cluster per `kiln.kernel` with the ops it fuses as
/// nodes, the function's arguments and results as nodes, and an edge from
/// each value's producer to each of its users.
void writeDot(mlir::ModuleOp module, llvm::raw_ostream &os);

/// `kiln train`: its subcommand and entry point (Train.cpp).
llvm::cl::SubCommand &trainCommand();
int train();

} // namespace kiln::driver

#endif // KILN_TOOLS_KILN_DRIVER_H
