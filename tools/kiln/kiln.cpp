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
//   4  training failed at run time (kiln train)
//
//===----------------------------------------------------------------------===//

#include "tools/kiln/Driver.h"

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
using namespace kiln::driver;

namespace {

/// What `--emit` can print: the syntax tree, or the IR after a stage.
enum class Emit { ast, ir, primitive, grad, fused };

cl::SubCommand compileCommand("compile",
                              "Compile a model file and print a stage");

cl::opt<std::string> inputFile(cl::Positional, cl::desc("<model.kiln>"),
                               cl::Required, cl::sub(compileCommand),
                               cl::cat(category()));
cl::opt<Emit> emit(
    "emit", cl::desc("What to print"), cl::init(Emit::ir),
    cl::values(clEnumValN(Emit::ast, "ast", "the syntax tree"),
               clEnumValN(Emit::ir, "ir",
                          "the kiln dialect, verified and shape-inferred"),
               clEnumValN(Emit::primitive, "primitive",
                          "composites lowered to primitives"),
               clEnumValN(Emit::grad, "grad",
                          "gradients, eval step and training step"),
               clEnumValN(Emit::fused, "fused", "ops grouped into kernels")),
    cl::sub(compileCommand), cl::cat(category()));
cl::opt<std::string> outputFile("o", cl::desc("Output file ('-' for stdout)"),
                                cl::value_desc("file"), cl::init("-"),
                                cl::sub(compileCommand), cl::cat(category()));
cl::list<std::string> bindings(
    "bind", cl::desc("Give a symbolic dimension a size, e.g. --bind batch=128"),
    cl::value_desc("NAME=SIZE"), cl::sub(compileCommand), cl::cat(category()));
cl::opt<bool> printIRAfterAll("print-ir-after-all",
                              cl::desc("Print the IR after every pass"),
                              cl::sub(compileCommand), cl::cat(category()));
cl::list<std::string>
    printIRAfter("print-ir-after",
                 cl::desc("Print the IR after the named pass (repeatable)"),
                 cl::value_desc("pass"), cl::sub(compileCommand),
                 cl::cat(category()));

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
    return fail(kIOError, "cannot write " + llvm::toString(std::move(error)));
  return kSuccess;
}

int compile() {
  // Check the options before doing any work.
  for (const std::string &pass : printIRAfter)
    if (!mlir::PassInfo::lookup(pass))
      return fail(kUsageError, "--print-ir-after: unknown pass '" + pass + "'");
  for (const std::string &binding : bindings) {
    auto [name, size] = llvm::StringRef(binding).split('=');
    unsigned long long value = 0;
    if (name.empty() || size.getAsInteger(10, value) || value == 0)
      return fail(kUsageError, "--bind: expected NAME=SIZE with a positive "
                               "SIZE, got '" +
                                   binding + "'");
  }

  ModelFile file;
  if (int code = file.parse(inputFile))
    return code;
  if (emit == Emit::ast)
    return writeOutput(outputFile, [&](llvm::raw_ostream &os) {
      kiln::frontend::dump(file.getAST(), os);
    });

  kiln::CompilePipelineOptions options;
  options.stage = emit == Emit::fused       ? kiln::Stage::fused
                  : emit == Emit::grad      ? kiln::Stage::grad
                  : emit == Emit::primitive ? kiln::Stage::primitive
                                            : kiln::Stage::ir;
  std::vector<std::string> sizes(bindings.begin(), bindings.end());
  options.bind = sizes;
  auto printing = [&](mlir::PassManager &pm) {
    if (!printIRAfterAll && printIRAfter.empty())
      return;
    file.getContext().disableMultithreading();
    pm.enableIRPrinting(
        /*shouldPrintBeforePass=*/[](mlir::Pass *,
                                     mlir::Operation *) { return false; },
        /*shouldPrintAfterPass=*/
        [](mlir::Pass *pass, mlir::Operation *) {
          return printIRAfterAll ||
                 llvm::is_contained(printIRAfter, pass->getArgument());
        },
        /*printModuleScope=*/false, /*printAfterOnlyOnChange=*/false);
  };
  if (int code = file.compile(options, printing))
    return code;
  return writeOutput(outputFile, [&](llvm::raw_ostream &os) {
    file.getModule().print(os);
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
  cl::HideUnrelatedOptions(category());
  cl::HideUnrelatedOptions(category(), compileCommand);
  cl::HideUnrelatedOptions(category(), trainCommand());
  if (!cl::ParseCommandLineOptions(argc, argv,
                                   "kiln: a deep-learning training compiler\n",
                                   &llvm::errs()))
    return kUsageError;
  if (compileCommand)
    return compile();
  if (trainCommand())
    return train();
  cl::PrintHelpMessage();
  return kUsageError;
}
