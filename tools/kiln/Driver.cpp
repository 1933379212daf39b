//===- Driver.cpp - what the kiln driver's subcommands share --------------===//

#include "tools/kiln/Driver.h"

#include "frontend/MLIRGen.h"
#include "frontend/Parser.h"
#include "ir/KilnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/WithColor.h"

#include <cstdio>
#include <type_traits>

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

/// Memory planning (`--stats`, `--emit=planned`) needs static shapes: one
/// located error per symbolic dimension of an input that no --bind sizes.
int kiln::driver::checkPlanningBindings(ModelFile &file,
                                        llvm::ArrayRef<std::string> bindings) {
  llvm::StringSet<> bound, reported;
  for (const std::string &binding : bindings)
    bound.insert(llvm::StringRef(binding).split('=').first);
  for (const kiln::frontend::ModelAST &model : file.getAST().models)
    for (const kiln::frontend::StmtPtr &stmt : model.body)
      if (auto *input = llvm::dyn_cast<kiln::frontend::InputStmt>(stmt.get()))
        for (const kiln::frontend::DimAST &dim : input->type.dims)
          if (!dim.symbol.empty() && !bound.contains(dim.symbol) &&
              reported.insert(dim.symbol).second)
            mlir::emitError(dim.loc)
                << "memory planning needs static shapes; bind the symbolic "
                   "dimension '"
                << dim.symbol << "' with --bind " << dim.symbol << "=N";
  return reported.empty() ? kSuccess : kUsageError;
}

llvm::cl::SubCommand &kiln::driver::compileCommand() {
  static llvm::cl::SubCommand compile(
      "compile", "Compile a model file and print a stage, or build a trainer");
  return compile;
}

namespace {

namespace cl = llvm::cl;

// The optimizer flags of `kiln train` and `kiln compile`: overrides of the
// model file's optimizer statement, passed to the pipeline.
cl::opt<double> learningRate(
    "lr", cl::desc("Learning rate (default: the model file's, else 0.01)"),
    cl::sub(trainCommand()), cl::sub(compileCommand()), cl::cat(category()));
cl::opt<std::string> optimizerKind(
    "optimizer", cl::desc("sgd, adam or adamw (default: the model file's)"),
    cl::sub(trainCommand()), cl::sub(compileCommand()), cl::cat(category()));
cl::opt<double> momentum("momentum",
                         cl::desc("SGD momentum (default: the model file's)"),
                         cl::sub(trainCommand()), cl::sub(compileCommand()),
                         cl::cat(category()));
cl::opt<double> weightDecay(
    "weight-decay", cl::desc("Weight decay (default: the model file's)"),
    cl::sub(trainCommand()), cl::sub(compileCommand()), cl::cat(category()));
cl::opt<bool> nesterov("nesterov", cl::desc("Nesterov momentum (SGD)"),
                       cl::sub(trainCommand()), cl::sub(compileCommand()),
                       cl::cat(category()));
cl::opt<std::string> schedule(
    "schedule", cl::desc("Learning-rate schedule: constant, step or cosine"),
    cl::sub(trainCommand()), cl::sub(compileCommand()), cl::cat(category()));
cl::opt<int64_t> warmup("warmup", cl::desc("Linear warm-up steps"),
                        cl::sub(trainCommand()), cl::sub(compileCommand()),
                        cl::cat(category()));
cl::opt<int64_t> totalSteps("total-steps",
                            cl::desc("Steps of the cosine schedule"),
                            cl::sub(trainCommand()), cl::sub(compileCommand()),
                            cl::cat(category()));
cl::opt<double> clipNorm("clip-norm",
                         cl::desc("Clip gradients to this global norm"),
                         cl::sub(trainCommand()), cl::sub(compileCommand()),
                         cl::cat(category()));

/// A number in full precision, for pass options.
std::string exact(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.17g", value);
  return text;
}
template <typename T> std::string exact(const cl::opt<T> &option) {
  if constexpr (std::is_floating_point_v<T>)
    return exact(static_cast<double>(option.getValue()));
  else
    return std::to_string(option.getValue());
}

} // namespace

llvm::FailureOr<std::string> kiln::driver::optimizerOverrides() {
  if (!optimizerKind.empty() && optimizerKind != "sgd" &&
      optimizerKind != "adam" && optimizerKind != "adamw") {
    fail(kUsageError, "--optimizer must be sgd, adam or adamw");
    return llvm::failure();
  }
  std::string overrides;
  if (learningRate.getNumOccurrences())
    overrides += " lr=" + exact(learningRate);
  if (!optimizerKind.empty())
    overrides += " optimizer=" + optimizerKind;
  if (momentum.getNumOccurrences())
    overrides += " momentum=" + exact(momentum);
  if (weightDecay.getNumOccurrences())
    overrides += " weight-decay=" + exact(weightDecay);
  if (nesterov.getNumOccurrences())
    overrides += nesterov ? " nesterov=true" : " nesterov=false";
  if (!schedule.empty())
    overrides += " schedule=" + schedule;
  if (warmup.getNumOccurrences())
    overrides += " warmup=" + exact(warmup);
  if (totalSteps.getNumOccurrences())
    overrides += " total-steps=" + exact(totalSteps);
  if (clipNorm.getNumOccurrences())
    overrides += " clip-norm=" + exact(clipNorm);
  return overrides;
}
