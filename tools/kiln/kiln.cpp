//===- kiln.cpp - the kiln compiler driver --------------------------------===//
//
// `kiln compile FILE --emit=STAGE` parses a model file, lowers it to the kiln
// dialect, runs the compile pipeline up to STAGE and prints the result.
// `kiln compile FILE --stats --bind batch=N` prints each step's memory plan.
// `--emit=cuda|cpp|ptx|program` prints the generated code of the training
// and evaluation steps, or the program that launches it (runtime/Program.h).
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

#include "codegen/StepCodegen.h"
#include "ir/AttrNames.h"
#include "ir/KilnDialect.h"
#include "passes/Pipeline.h"
#include "passes/PlanMemory.h"
#include "passes/Schedule.h"
#include "runtime/Nvrtc.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

namespace cl = llvm::cl;
using namespace kiln::driver;

namespace {

/// What `--emit` can print: the syntax tree, the IR after a stage, the
/// fused stage as a Graphviz graph, or the generated code.
enum class Emit {
  ast,
  ir,
  primitive,
  grad,
  fused,
  planned,
  scheduled,
  schedules,
  dot,
  cuda,
  cpp,
  cudaCandidates,
  cppCandidates,
  ptx,
  program,
  trainer,
  trainerSource
};

cl::opt<std::string> inputFile(cl::Positional, cl::desc("<model.kiln>"),
                               cl::Required, cl::sub(compileCommand()),
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
               clEnumValN(Emit::fused, "fused", "ops grouped into kernels"),
               clEnumValN(Emit::planned, "planned",
                          "kernels with their memory planned"),
               clEnumValN(Emit::scheduled, "scheduled",
                          "planned kernels with their schedule per target"),
               clEnumValN(Emit::schedules, "schedules",
                          "the kernels' schedules as a file for "
                          "--schedules"),
               clEnumValN(Emit::dot, "dot",
                          "the fused stage as a Graphviz graph"),
               clEnumValN(Emit::cuda, "cuda",
                          "the steps' kernels as CUDA C (needs --bind)"),
               clEnumValN(Emit::cpp, "cpp",
                          "the steps' kernels as C++ for the CPU backend "
                          "(needs --bind)"),
               clEnumValN(Emit::cudaCandidates, "cuda-candidates",
                          "the kernels of the candidate schedules a tuner "
                          "times, as CUDA C (see --tune-candidates)"),
               clEnumValN(Emit::cppCandidates, "cpp-candidates",
                          "the same candidates as C++"),
               clEnumValN(Emit::ptx, "ptx",
                          "the CUDA C compiled to PTX by NVRTC for --arch "
                          "(needs --bind)"),
               clEnumValN(Emit::program, "program",
                          "the launches of each step, as the runtime runs "
                          "them (needs --bind)"),
               clEnumValN(Emit::trainer, "trainer",
                          "a training executable, written to -o FILE"),
               clEnumValN(Emit::trainerSource, "trainer-source",
                          "the trainer's main.cpp and CMakeLists.txt, "
                          "written to the directory -o DIR")),
    cl::sub(compileCommand()), cl::cat(category()));
cl::opt<std::string> schedulesFile(
    "schedules",
    cl::desc("Use the kernels' schedules in FILE (as --emit=schedules "
             "writes) before the cost models'"),
    cl::value_desc("FILE"), cl::init(""), cl::sub(compileCommand()),
    cl::cat(category()));
cl::opt<unsigned> tuneCandidates(
    "tune-candidates",
    cl::desc("Other schedules per kernel and target to generate for a "
             "tuner to time (--tune): default 7 for --emit=trainer and "
             "--emit=*-candidates, else 0; with --emit=program they are "
             "listed in the program"),
    cl::value_desc("N"), cl::init(0), cl::sub(compileCommand()),
    cl::cat(category()));
cl::opt<std::string> outputFile("o", cl::desc("Output file ('-' for stdout)"),
                                cl::value_desc("file"), cl::init("-"),
                                cl::sub(compileCommand()), cl::cat(category()));
cl::opt<int64_t> trainBatch(
    "batch",
    cl::desc("--emit=trainer: the batch size of the training step (default "
             "128)"),
    cl::init(128), cl::sub(compileCommand()), cl::cat(category()));
cl::opt<int64_t>
    evalBatch("eval-batch",
              cl::desc("--emit=trainer: the batch size of the evaluation step "
                       "(default 1000)"),
              cl::init(1000), cl::sub(compileCommand()), cl::cat(category()));
cl::opt<int64_t> predictBatch(
    "predict-batch",
    cl::desc("--emit=trainer: the batch size of the predict step of a model "
             "with outputs (default 1)"),
    cl::init(1), cl::sub(compileCommand()), cl::cat(category()));
cl::opt<int64_t> maxBatch(
    "max-batch",
    cl::desc("Keep `batch` a run-time size, taking any batch up to N: the "
             "memory plan is sized for N (with --emit=trainer: the training "
             "step's largest --batch; default: --batch)"),
    cl::value_desc("N"), cl::init(0), cl::sub(compileCommand()),
    cl::cat(category()));
cl::opt<std::string> arch("arch", cl::desc("GPU architecture for --emit=ptx"),
                          cl::value_desc("sm_NN"), cl::init("sm_90"),
                          cl::sub(compileCommand()), cl::cat(category()));
cl::list<std::string> bindings(
    "bind", cl::desc("Give a symbolic dimension a size, e.g. --bind batch=128"),
    cl::value_desc("NAME=SIZE"), cl::sub(compileCommand()),
    cl::cat(category()));
cl::opt<bool> dataParallel(
    "data-parallel",
    cl::desc("Average the gradients over the ranks of a data-parallel run "
             "(kiln.all_reduce before the optimizer update), so that the "
             "trainer trains on every rank `mpirun -np N` starts (one rank "
             "skips it)"),
    cl::sub(compileCommand()), cl::cat(category()));
cl::opt<int64_t> bucketBytes(
    "bucket-bytes",
    cl::desc("With --data-parallel: the largest bucket of gradients one "
             "all-reduce takes, in bytes (default 4 MiB; a larger gradient "
             "is a bucket of its own)"),
    cl::value_desc("N"), cl::init(4 << 20), cl::sub(compileCommand()),
    cl::cat(category()));
cl::opt<bool> printIRAfterAll("print-ir-after-all",
                              cl::desc("Print the IR after every pass"),
                              cl::sub(compileCommand()), cl::cat(category()));
cl::list<std::string>
    printIRAfter("print-ir-after",
                 cl::desc("Print the IR after the named pass (repeatable)"),
                 cl::value_desc("pass"), cl::sub(compileCommand()),
                 cl::cat(category()));
cl::opt<bool> printStats(
    "stats",
    cl::desc("Print each step's kernels and planned memory instead of IR "
             "(needs --bind for symbolic dimensions)"),
    cl::sub(compileCommand()), cl::cat(category()));

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

/// `2.55 MiB`: `bytes` in the largest binary unit that keeps it >= 1.
std::string formatBytes(int64_t bytes) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = bytes;
  unsigned unit = 0;
  while (value >= 1024 && unit + 1 < std::size(units)) {
    value /= 1024;
    ++unit;
  }
  if (unit == 0)
    return std::to_string(bytes) + " B";
  return llvm::formatv("{0:F2} {1}", value, units[unit]).str();
}

/// `--stats`: a table per step function of its kernels and memory plan.
void writeStats(mlir::ModuleOp module, llvm::raw_ostream &os) {
  bool first = true;
  for (auto func : module.getOps<mlir::func::FuncOp>()) {
    auto step = func->getAttrOfType<mlir::StringAttr>(kiln::attrs::step);
    std::optional<kiln::MemoryStats> stats = kiln::collectStats(func);
    if (!step || !stats)
      continue;
    if (!first)
      os << "\n";
    first = false;
    os << "@" << func.getSymName() << " (" << step.getValue() << " step)\n";
    std::string kinds;
    for (auto [kind, count] : llvm::enumerate(stats->kernelsByKind))
      if (count)
        kinds += (kinds.empty() ? "" : ", ") + std::to_string(count) + " " +
                 kiln::stringifyKernelKind(kiln::KernelKind(kind)).str();
    os << llvm::formatv("  {0,-16}{1,12}  ({2})\n", "kernels", stats->kernels,
                        kinds);
    auto row = [&](llvm::StringRef label, int64_t bytes,
                   const llvm::Twine &note) {
      os << llvm::formatv("  {0,-16}{1,12}  {2,10} bytes", label,
                          formatBytes(bytes), bytes);
      if (!note.isTriviallyEmpty())
        os << "  " << note;
      os << "\n";
    };
    row("parameters", stats->paramBytes, "");
    row("optimizer state", stats->stateBytes, "");
    row("inputs", stats->inputBytes, "");
    row("activations", stats->activationBytes,
        "(" + llvm::Twine(stats->buffers) + " buffers, before reuse)");
    std::string views;
    if (stats->views)
      views = ", " + std::to_string(stats->views) +
              (stats->views == 1 ? " view" : " views");
    row("arena", stats->arenaBytes,
        "(after reuse; " + llvm::Twine(stats->inPlaceUpdates) +
            (stats->inPlaceUpdates == 1 ? " update" : " updates") +
            " in place" + views + ")");
    row("peak", stats->peakBytes(), "(parameters + state + inputs + arena)");
  }
}

/// `--emit=cuda|cpp|ptx|program`: the generated code of the planned steps.
int generate(ModelFile &file) {
  auto target = emit == Emit::cpp || emit == Emit::cppCandidates
                    ? kiln::codegen::Target::cpp
                    : kiln::codegen::Target::cuda;
  mlir::FailureOr<kiln::codegen::GeneratedProgram> generated =
      kiln::codegen::generateProgram(file.getModule());
  if (mlir::failed(generated))
    return kModelError;
  if (emit == Emit::program)
    return writeOutput(outputFile, [&](llvm::raw_ostream &os) {
      os << kiln::runtime::printProgram(generated->program);
    });
  if (emit == Emit::cudaCandidates || emit == Emit::cppCandidates)
    return writeOutput(outputFile, [&](llvm::raw_ostream &os) {
      os << (target == kiln::codegen::Target::cuda ? generated->cudaCandidates
                                                   : generated->cppCandidates);
    });
  if (emit != Emit::ptx)
    return writeOutput(outputFile, [&](llvm::raw_ostream &os) {
      os << generated->source(target);
    });
  kiln::runtime::CompileOptions options;
  options.arch = arch;
  options.cubin = false;
  auto ptx = kiln::runtime::compileCuda(generated->program.model + ".cu",
                                        generated->cudaSource, options);
  if (!ptx.ok())
    return fail(kRuntimeError, ptx.status().message());
  return writeOutput(outputFile, [&](llvm::raw_ostream &os) {
    // The image ends with the NUL byte NVRTC adds.
    os << llvm::StringRef(ptx->image.data(), ptx->image.size()).rtrim('\0');
  });
}

/// `--emit=trainer|trainer-source`: the steps compiled at --batch and
/// --eval-batch, built into a trainer (EmitTrainer.cpp).
int trainer(llvm::StringRef optimizerOptions) {
  bool source = emit == Emit::trainerSource;
  if (outputFile == "-")
    return fail(kUsageError,
                source ? "--emit=trainer-source writes a directory: give it "
                         "with -o DIR"
                       : "--emit=trainer writes an executable: give its "
                         "name with -o FILE");
  if (trainBatch < 1 || evalBatch < 1 || predictBatch < 1)
    return fail(kUsageError,
                "--batch, --eval-batch and --predict-batch must be >= 1");
  TrainerOptions options;
  options.modelFile = inputFile;
  options.output = outputFile;
  options.sourceOnly = source;
  options.trainBatch = trainBatch;
  options.maxBatch =
      maxBatch.getNumOccurrences() ? int64_t(maxBatch) : int64_t(trainBatch);
  if (options.maxBatch < trainBatch)
    return fail(kUsageError, "--max-batch " + std::to_string(maxBatch) +
                                 " is smaller than --batch " +
                                 std::to_string(trainBatch));
  options.evalBatch = evalBatch;
  options.predictBatch = predictBatch;
  options.optimizerOptions = optimizerOptions.str();
  options.schedules = std::string(schedulesFile);
  options.tuneCandidates = tuneCandidates.getNumOccurrences()
                               ? unsigned(tuneCandidates)
                               : kDefaultTuneCandidates;
  options.dataParallel = dataParallel;
  options.bucketBytes = bucketBytes;
  options.description = "--batch " + std::to_string(trainBatch);
  if (options.maxBatch != trainBatch)
    options.description += " --max-batch " + std::to_string(options.maxBatch);
  options.description += " --eval-batch " + std::to_string(evalBatch);
  if (tuneCandidates.getNumOccurrences())
    options.description +=
        " --tune-candidates " + std::to_string(options.tuneCandidates);
  for (const std::string &binding : bindings) {
    if (llvm::StringRef(binding).split('=').first == "batch")
      return fail(kUsageError, "--emit=trainer binds 'batch' itself: use "
                               "--batch N (training) and --eval-batch N "
                               "(evaluation) instead of --bind batch=N");
    options.bindings.push_back(binding);
    options.description += " --bind " + binding;
  }
  if (options.dataParallel)
    options.description += " --data-parallel";
  if (bucketBytes.getNumOccurrences())
    options.description += " --bucket-bytes " + std::to_string(bucketBytes);
  if (!optimizerOptions.trim().empty())
    options.description +=
        " optimizer-options='" + optimizerOptions.trim().str() + "'";
  return emitTrainer(options);
}

int compile() {
  // Check the options before doing any work.
  if (printStats && emit.getNumOccurrences())
    return fail(kUsageError, "--stats prints the memory plan; it cannot be "
                             "combined with --emit");
  bool building = emit == Emit::trainer || emit == Emit::trainerSource;
  if (!building &&
      (trainBatch.getNumOccurrences() || evalBatch.getNumOccurrences() ||
       predictBatch.getNumOccurrences()))
    return fail(kUsageError, "--batch, --eval-batch and --predict-batch size "
                             "the steps of --emit=trainer and "
                             "--emit=trainer-source; elsewhere use --bind "
                             "batch=N");
  llvm::FailureOr<std::string> overrides = optimizerOverrides();
  if (llvm::failed(overrides))
    return kUsageError;
  if (maxBatch.getNumOccurrences() && maxBatch < 1)
    return fail(kUsageError, "--max-batch must be >= 1");
  if (bucketBytes.getNumOccurrences() && (!dataParallel || bucketBytes < 1))
    return fail(kUsageError, "--bucket-bytes takes a positive size and "
                             "needs --data-parallel");
  for (const std::string &binding : bindings)
    if (maxBatch.getNumOccurrences() &&
        llvm::StringRef(binding).split('=').first == "batch")
      return fail(kUsageError, "--max-batch keeps 'batch' a run-time size: "
                               "it cannot be combined with --bind batch=N");
  if (!schedulesFile.empty()) {
    // An unreadable schedules file is an I/O error, before any work.
    auto schedules = llvm::MemoryBuffer::getFile(schedulesFile);
    if (!schedules)
      return fail(kIOError, "cannot read '" + schedulesFile +
                                "': " + schedules.getError().message());
  }
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
  if (building)
    return trainer(*overrides);

  ModelFile file;
  if (int code = file.parse(inputFile))
    return code;
  bool candidates = emit == Emit::cudaCandidates || emit == Emit::cppCandidates;
  bool generating = emit == Emit::cuda || emit == Emit::cpp ||
                    emit == Emit::ptx || emit == Emit::program || candidates;
  std::vector<std::string> sizes(bindings.begin(), bindings.end());
  bool planning = emit == Emit::planned || emit == Emit::scheduled ||
                  emit == Emit::schedules;
  if (printStats || planning || generating) {
    // With --max-batch, `batch` is sized at run time.
    std::vector<std::string> planned = sizes;
    if (maxBatch.getNumOccurrences())
      planned.push_back("batch=" + std::to_string(maxBatch));
    if (int code = checkPlanningBindings(file, planned))
      return code;
  }
  if (emit == Emit::ast)
    return writeOutput(outputFile, [&](llvm::raw_ostream &os) {
      kiln::frontend::dump(file.getAST(), os);
    });

  kiln::CompilePipelineOptions options;
  options.stage = emit == Emit::fused || emit == Emit::dot ? kiln::Stage::fused
                  : emit == Emit::grad                     ? kiln::Stage::grad
                  : emit == Emit::primitive ? kiln::Stage::primitive
                                            : kiln::Stage::ir;
  if (emit == Emit::planned || printStats)
    options.stage = kiln::Stage::planned;
  if (emit == Emit::scheduled || emit == Emit::schedules || generating)
    options.stage = kiln::Stage::scheduled;
  options.schedules = std::string(schedulesFile);
  options.candidates = tuneCandidates.getNumOccurrences()
                           ? unsigned(tuneCandidates)
                       : candidates ? kDefaultTuneCandidates
                                    : 0u;
  options.bind = sizes;
  options.maxBatch = static_cast<int64_t>(maxBatch);
  options.dataParallel = bool(dataParallel);
  options.bucketBytes = static_cast<int64_t>(bucketBytes);
  options.optimizerOptions = *overrides;
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
  if (printStats)
    return writeOutput(outputFile, [&](llvm::raw_ostream &os) {
      writeStats(file.getModule(), os);
    });
  if (emit == Emit::dot)
    return writeOutput(outputFile, [&](llvm::raw_ostream &os) {
      writeDot(file.getModule(), os);
    });
  if (generating)
    return generate(file);
  if (emit == Emit::schedules)
    return writeOutput(outputFile, [&](llvm::raw_ostream &os) {
      kiln::printSchedules(file.getModule(), os);
    });
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
  cl::HideUnrelatedOptions(category(), compileCommand());
  cl::HideUnrelatedOptions(category(), trainCommand());
  if (!cl::ParseCommandLineOptions(argc, argv,
                                   "kiln: a deep-learning training compiler\n",
                                   &llvm::errs()))
    return kUsageError;
  if (compileCommand())
    return compile();
  if (trainCommand())
    return train();
  cl::PrintHelpMessage();
  return kUsageError;
}
