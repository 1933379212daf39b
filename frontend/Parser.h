//===- Parser.h - parser of the kiln model language -------------*- C++ -*-===//
//
// A recursive-descent parser with statement-level error recovery: it reports
// every error it can find (up to a limit) through MLIR diagnostics, each at
// the FileLineColLoc of the offending token.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_FRONTEND_PARSER_H
#define KILN_FRONTEND_PARSER_H

#include "frontend/AST.h"

#include "mlir/IR/MLIRContext.h"

#include <memory>

namespace kiln::frontend {

/// Limits that keep any input, however hostile, cheap to reject.
struct ParserLimits {
  unsigned maxErrors = 20;   // stop after this many errors
  unsigned maxNesting = 200; // deepest expression nesting accepted
};

/// Parses the model file `source`, named `filename` in locations. Returns
/// null when any error was reported.
std::unique_ptr<ModuleAST> parseModelFile(llvm::StringRef source,
                                          llvm::StringRef filename,
                                          mlir::MLIRContext &context,
                                          ParserLimits limits = {});

} // namespace kiln::frontend

#endif // KILN_FRONTEND_PARSER_H
