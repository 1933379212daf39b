//===- Template.cpp - named-placeholder code templates --------------------===//

#include "codegen/Template.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/ErrorHandling.h"

using namespace kiln::codegen;
using llvm::StringRef;

std::string kiln::codegen::fill(StringRef text, TemplateValues values) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    size_t at = text.find("${");
    if (at == StringRef::npos) {
      out += text;
      break;
    }
    size_t end = text.find('}', at);
    if (end == StringRef::npos)
      llvm::report_fatal_error("code template: unterminated '${'");
    StringRef name = text.slice(at + 2, end);
    const std::string *value = nullptr;
    for (const auto &[key, v] : values)
      if (key == name) {
        value = &v;
        break;
      }
    if (!value)
      llvm::report_fatal_error(llvm::Twine("code template: placeholder ${") +
                               name + "} has no value");
    StringRef before = text.take_front(at);
    out += before;
    text = text.drop_front(end + 1);

    // A block: only blanks before the placeholder on its line, nothing
    // after it.
    size_t lineStart = out.rfind('\n');
    std::string column =
        out.substr(lineStart == std::string::npos ? 0 : lineStart + 1);
    bool alone = column.find_first_not_of(" \t") == std::string::npos &&
                 (text.empty() || text.front() == '\n');
    StringRef v = *value;
    if (!alone) {
      out += v;
      continue;
    }
    v.consume_back("\n");
    if (v.empty()) {
      // Remove the line: its blanks and its newline.
      out.resize(out.size() - column.size());
      text.consume_front("\n");
      continue;
    }
    // Lines after the first get the placeholder's column (empty lines
    // stay empty).
    llvm::SmallVector<StringRef> lines;
    v.split(lines, '\n');
    for (auto [n, line] : llvm::enumerate(lines)) {
      if (n) {
        out += '\n';
        if (!line.empty())
          out += column;
      }
      out += line;
    }
  }
  return out;
}

void kiln::codegen::print(mlir::raw_indented_ostream &os, StringRef text,
                          TemplateValues values) {
  os.printReindented(fill(text, values));
}
