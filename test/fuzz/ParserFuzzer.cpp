//===- ParserFuzzer.cpp - libFuzzer target for the model-language frontend ===//
//
// Feeds arbitrary bytes through the parser and, when they parse, through
// MLIRGen and the verifier. Any crash, hang, leak or sanitizer report is a
// bug; diagnostics are the expected outcome and are discarded.
//
//===----------------------------------------------------------------------===//

#include "frontend/MLIRGen.h"
#include "frontend/Parser.h"
#include "ir/KilnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mlir::MLIRContext *context = [] {
    auto *ctx = new mlir::MLIRContext(mlir::MLIRContext::Threading::DISABLED);
    ctx->loadDialect<kiln::KilnDialect, mlir::func::FuncDialect>();
    return ctx;
  }();
  mlir::ScopedDiagnosticHandler silence(
      context, [](mlir::Diagnostic &) { return mlir::success(); });
  llvm::StringRef source(reinterpret_cast<const char *>(data), size);
  auto ast = kiln::frontend::parseModelFile(source, "fuzz.kiln", *context);
  if (ast)
    (void)kiln::frontend::mlirGen(*context, *ast);
  return 0;
}
