//===- Template.h - how the generators write code ---------------*- C++ -*-===//
//
// Every kernel generator writes its code one way:
//
//   - Fixed code is a raw-string template with named placeholders, ${NAME},
//     filled by `fill` (no `+` of code fragments, no positional formats).
//   - Text goes to an mlir::raw_indented_ostream. A template is printed
//     with `print`, which re-indents it to the stream's indentation, so a
//     template is written indented as the C++ around it. A function that
//     writes a generated part writes it at the stream's current indentation;
//     its caller places it with `os.indent()` / `os.scope()`. No indent
//     strings are passed around.
//   - A value filled in at a placeholder that is alone on its line is a
//     block: each of its lines is indented to the placeholder's column, a
//     trailing newline of the value is dropped (the template's line ends
//     it), and an empty block removes the line. So generated parts are
//     values like any other.
//   - Preprocessor lines (`#pragma unroll`) stay at column 0, where
//     clang-format writes them (as in codegen/device): neither blocks nor
//     the stream indent them.
//
// A placeholder without a value is a bug in the generator: `fill` stops
// with a fatal error naming it.
//
// Fixed device code that does not depend on a kernel (helper functions,
// macros) is not a template: it lives in codegen/device as real files.
// Internal to codegen/.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_CODEGEN_TEMPLATE_H
#define KILN_CODEGEN_TEMPLATE_H

#include "mlir/Support/IndentedOstream.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/raw_ostream.h"

#include <string>
#include <utility>

namespace kiln::codegen {

/// Code generated into a string through an indented stream:
///
///   Code body;
///   body.os << ...;                 // or print(body.os, kTemplate, values)
///   values.push_back({"BODY", body.str()});
class Code {
public:
  Code() = default;
  Code(const Code &) = delete;
  Code &operator=(const Code &) = delete;

  /// The text written so far.
  const std::string &str() const { return text; }

private:
  std::string text;
  llvm::raw_string_ostream raw{text};

public:
  /// Where to write.
  mlir::raw_indented_ostream os{raw};
};

/// The values of a template's placeholders, by name.
using TemplateValues = llvm::ArrayRef<std::pair<llvm::StringRef, std::string>>;

/// `text` with every ${NAME} replaced by its value in `values` (blocks
/// indented, as the file comment says).
std::string fill(llvm::StringRef text, TemplateValues values);

/// Writes `fill(text, values)` to `os`, re-indented: leading empty lines
/// (a raw string's first newline) are skipped, and the least indented code
/// line starts at the stream's indentation, the others keep their
/// indentation relative to it.
void print(mlir::raw_indented_ostream &os, llvm::StringRef text,
           TemplateValues values = {});

/// What `print` writes, at indentation zero: a template rendered as a block
/// value for another.
std::string render(llvm::StringRef text, TemplateValues values = {});

} // namespace kiln::codegen

#endif // KILN_CODEGEN_TEMPLATE_H
