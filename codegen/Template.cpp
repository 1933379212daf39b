//===- Template.cpp - named-placeholder code templates --------------------===//

#include "codegen/Template.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/ErrorHandling.h"

#include <algorithm>

using namespace kiln::codegen;
using llvm::StringRef;

/// A preprocessor line (`#pragma unroll`): at column 0, where clang-format
/// writes them.
static bool isDirective(StringRef line) {
  return line.ltrim(" \t").starts_with("#");
}

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
    // stay empty, preprocessor lines at column 0).
    llvm::SmallVector<StringRef> lines;
    v.split(lines, '\n');
    for (auto [n, line] : llvm::enumerate(lines)) {
      if (n) {
        out += '\n';
        if (!line.empty() && !isDirective(line))
          out += column;
      } else if (isDirective(line)) {
        out.resize(out.size() - column.size());
      }
      out += line;
    }
  }
  return out;
}

void kiln::codegen::print(mlir::raw_indented_ostream &os, StringRef text,
                          TemplateValues values) {
  std::string filled = fill(text, values);
  llvm::SmallVector<StringRef> lines;
  StringRef(filled).split(lines, '\n');
  auto blank = [](StringRef line) { return line.ltrim(" \t").empty(); };
  // Leading empty lines (a raw string's first newline) are skipped; the
  // code lines' common indentation is removed.
  size_t first = 0;
  while (first < lines.size() && blank(lines[first]))
    ++first;
  size_t common = StringRef::npos;
  for (StringRef line : llvm::ArrayRef(lines).drop_front(first))
    if (!blank(line) && !isDirective(line))
      common = std::min(common, line.find_first_not_of(" \t"));
  if (common == StringRef::npos)
    common = 0;
  for (size_t n = first; n < lines.size(); ++n) {
    StringRef line = lines[n];
    bool last = n + 1 == lines.size(); // no newline after it
    if (blank(line)) {
      if (!last)
        os << '\n';
      continue;
    }
    if (isDirective(line))
      // Past the stream's indentation, which it adds to the next line.
      os.getOStream() << line.ltrim(" \t");
    else
      os << line.drop_front(std::min(common, line.size()));
    if (!last)
      os << '\n';
  }
}

std::string kiln::codegen::render(StringRef text, TemplateValues values) {
  Code code;
  print(code.os, text, values);
  return code.str();
}
