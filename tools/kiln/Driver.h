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

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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

/// Memory planning needs static shapes: one located error per symbolic
/// dimension of an input of `file` (parsed) that `bindings` (NAME=SIZE)
/// does not size. Returns kUsageError when there is one.
int checkPlanningBindings(ModelFile &file,
                          llvm::ArrayRef<std::string> bindings);

/// `kiln compile`'s subcommand.
llvm::cl::SubCommand &compileCommand();

/// The optimizer flags `kiln train` and `kiln compile` share (`--lr`,
/// `--optimizer`, `--momentum`, ...), as the pipeline's `optimizer-options`
/// string ("lr=0.1 momentum=0.9"; empty when none is given). Fails with a
/// usage error for a bad `--optimizer`.
llvm::FailureOr<std::string> optimizerOverrides();

/// The other schedules per kernel and target a trainer carries for --tune
/// (`--tune-candidates`).
inline constexpr unsigned kDefaultTuneCandidates = 7;

/// A compiled training executable (`kiln compile --emit=trainer`, or its
/// sources with `--emit=trainer-source`): EmitTrainer.cpp.
struct TrainerOptions {
  /// The model file, as given (the checkpoint metadata's "model").
  std::string modelFile;
  /// The executable, or the directory of its sources.
  std::string output;
  bool sourceOnly = false;
  /// The batch sizes of the train and eval steps, and of the predict step
  /// of a model with outputs.
  int64_t trainBatch = 128, evalBatch = 1000, predictBatch = 1;
  /// The largest batch the training step takes at run time.
  int64_t maxBatch = 128;
  /// Other --bind NAME=SIZE bindings, for both steps.
  std::vector<std::string> bindings;
  /// The pipeline's optimizer-options.
  std::string optimizerOptions;
  /// --schedules FILE, or empty.
  std::string schedules;
  /// --tune-candidates N: other schedules per kernel and target that the
  /// trainer's --tune times.
  unsigned tuneCandidates = kDefaultTuneCandidates;
  /// --data-parallel: the training step averages its gradients over the
  /// ranks of an `mpirun` launch.
  bool dataParallel = false;
  /// --bucket-bytes: the largest bucket of gradients one all-reduce takes.
  int64_t bucketBytes = 4 << 20;
  /// The options above as a user would spell them, for the trainer's
  /// --help and --version.
  std::string description;
};
int emitTrainer(const TrainerOptions &options);

} // namespace kiln::driver

#endif // KILN_TOOLS_KILN_DRIVER_H
