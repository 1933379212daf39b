//===- kiln.cpp - the kiln compiler driver --------------------------------===//
//
// `kiln compile FILE --emit=STAGE` parses a model file, lowers it to the kiln
// dialect, runs the compile pipeline up to STAGE and prints the result.
//
// Exit codes (docs/cli.md):
//   0  success
//   1  the model has errors (each reported as file:line:col: error: ...)
//   2  the command line is wrong
//   3  a file cannot be read or written
//
//===----------------------------------------------------------------------===//

#include "frontend/MLIRGen.h"
#include "frontend/Parser.h"
#include "ir/KilnDialect.h"
#include "passes/Pipeline.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

namespace cl = llvm::cl;

namespace {

enum ExitCode : int {
  kSuccess = 0,
  kModelError = 1,
  kUsageError = 2,
  kIOError = 3,
};

/// What `--emit` can print: the syntax tree, or the IR after a stage.
enum class Emit { ast, ir, primitive };

cl::OptionCategory kilnCategory("kiln options");
cl::SubCommand compileCommand("compile",
                              "Compile a model file and print a stage");

cl::opt<std::string> inputFile(cl::Positional, cl::desc("<model.kiln>"),
                               cl::Required, cl::sub(compileCommand),
                               cl::cat(kilnCategory));
cl::opt<Emit> emit(
    "emit", cl::desc("What to print"), cl::init(Emit::ir),
    cl::values(clEnumValN(Emit::ast, "ast", "the syntax tree"),
               clEnumValN(Emit::ir, "ir",
                          "the kiln dialect, verified and shape-inferred"),
               clEnumValN(Emit::primitive, "primitive",
                          "composites lowered to primitives")),
    cl::sub(compileCommand), cl::cat(kilnCategory));
cl::opt<std::string> outputFile("o", cl::desc("Output file ('-' for stdout)"),
                                cl::value_desc("file"), cl::init("-"),
                                cl::sub(compileCommand), cl::cat(kilnCategory));
cl::list<std::string>
    bindings("bind",
             cl::desc("Give a symbolic dimension a size, e.g. --bind batch=128"),
             cl::value_desc("NAME=SIZE"), cl::sub(compileCommand),
             cl::cat(kilnCategory));
cl::opt<bool> printIRAfterAll("print-ir-after-all",
                              cl::desc("Print the IR after every pass"),
                              cl::sub(compileCommand), cl::cat(kilnCategory));
cl::list<std::string>
    printIRAfter("print-ir-after",
                 cl::desc("Print the IR after the named pass (repeatable)"),
                 cl::value_desc("pass"), cl::sub(compileCommand),
                 cl::cat(kilnCategory));

int fail(int code, const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "kiln") << message << "\n";
  return code;
}

/// Writes `text` to `path` atomically: a temporary file renamed into place,
/// so an existing output is never left half-written.
int writeOutput(llvm::StringRef path,
                llvm::function_ref<void(llvm::raw_ostream &)> write) {
  if (path == "-") {
    write(llvm::outs());
    llvm::outs().flush();
    return kSuccess;
  }
  llvm::Error error = llvm::writeToOutput(path, [&](llvm::raw_ostream &os) {
    write(os);
    return llvm::Error::success();
  });
  if (error)
    return fail(kIOError, "cannot write '" + path +
                              "': " + llvm::toString(std::move(error)));
  return kSuccess;
}

int compile() {
  // Check the options before doing any work.
  for (const std::string &pass : printIRAfter)
    if (!mlir::PassInfo::lookup(pass))
      return fail(kUsageError, "--print-ir-after: unknown pass '" + pass + "'");

  auto buffer = llvm::MemoryBuffer::getFileOrSTDIN(inputFile, /*IsText=*/true);
  if (std::error_code ec = buffer.getError())
    return fail(kIOError, "cannot read '" + inputFile + "': " + ec.message());

  mlir::MLIRContext context;
  context.loadDialect<kiln::KilnDialect, mlir::func::FuncDialect>();
  llvm::SourceMgr sourceMgr;
  llvm::StringRef source = (*buffer)->getBuffer();
  sourceMgr.AddNewSourceBuffer(std::move(*buffer), llvm::SMLoc());
  mlir::SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);

  std::unique_ptr<kiln::frontend::ModuleAST> ast =
      kiln::frontend::parseModelFile(source, inputFile, context);
  if (!ast)
    return kModelError;
  if (emit == Emit::ast)
    return writeOutput(outputFile, [&](llvm::raw_ostream &os) {
      kiln::frontend::dump(*ast, os);
    });

  mlir::OwningOpRef<mlir::ModuleOp> module =
      kiln::frontend::mlirGen(context, *ast);
  if (!module)
    return kModelError;

  mlir::PassManager pm(&context);
  if (printIRAfterAll || !printIRAfter.empty()) {
    context.disableMultithreading();
    pm.enableIRPrinting(
        /*shouldPrintBeforePass=*/[](mlir::Pass *, mlir::Operation *) {
          return false;
        },
        /*shouldPrintAfterPass=*/
        [](mlir::Pass *pass, mlir::Operation *) {
          return printIRAfterAll ||
                 llvm::is_contained(printIRAfter, pass->getArgument());
        },
        /*printModuleScope=*/false, /*printAfterOnlyOnChange=*/false);
  }
  kiln::CompilePipelineOptions options;
  options.stage = emit == Emit::primitive ? kiln::Stage::primitive
                                          : kiln::Stage::ir;
  std::vector<std::string> sizes(bindings.begin(), bindings.end());
  options.bind = sizes;
  kiln::buildCompilePipeline(pm, options);
  if (mlir::failed(pm.run(*module)))
    return kModelError;

  return writeOutput(outputFile,
                     [&](llvm::raw_ostream &os) {
                       module->print(os);
                       os << "\n"; // as kiln-opt prints it
                     });
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  kiln::registerKilnPassesAndPipelines();
  cl::SetVersionPrinter([](llvm::raw_ostream &os) {
    os << "kiln " << KILN_VERSION << " (MLIR " << LLVM_VERSION_STRING << ")\n";
  });
  cl::HideUnrelatedOptions(kilnCategory);
  cl::HideUnrelatedOptions(kilnCategory, compileCommand);
  if (!cl::ParseCommandLineOptions(argc, argv,
                                   "kiln: a deep-learning training compiler\n",
                                   &llvm::errs()))
    return kUsageError;
  if (compileCommand)
    return compile();
  cl::PrintHelpMessage();
  return kUsageError;
}
