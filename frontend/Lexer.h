//===- Lexer.h - tokens of the kiln model language --------------*- C++ -*-===//
//
// Turns a model file into tokens. Newlines end statements, except inside
// parentheses and brackets. Any byte sequence lexes to tokens and error
// tokens; the lexer never stops early and never reads past the buffer.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_FRONTEND_LEXER_H
#define KILN_FRONTEND_LEXER_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>

namespace kiln::frontend {

enum class TokenKind {
  eof,
  newline,
  error, // the lexer already explained what is wrong
  identifier,
  integer,
  floating,
  string,
  // Keywords.
  kw_model,
  kw_input,
  kw_param,
  kw_loss,
  kw_metric,
  kw_output,
  kw_optimizer,
  kw_def,
  kw_return,
  kw_true,
  kw_false,
  // Punctuation and operators.
  l_brace,
  r_brace,
  l_paren,
  r_paren,
  l_square,
  r_square,
  comma,
  colon,
  semicolon,
  equal,
  plus,
  minus,
  star,
  star_star,
  slash,
  at,
  less,
  less_equal,
  greater,
  greater_equal,
  equal_equal,
  not_equal,
};

/// Spells a token kind for diagnostics: `'('`, `identifier`, `end of file`.
llvm::StringRef spell(TokenKind kind);

/// A 1-based line and column (in bytes) in the model file.
struct SourcePos {
  unsigned line = 1;
  unsigned column = 1;
};

struct Token {
  TokenKind kind = TokenKind::eof;
  llvm::StringRef text;
  SourcePos pos;
  int64_t intValue = 0;
  double floatValue = 0.0;
  std::string stringValue; // the unescaped contents of a string literal
  std::string error;       // why an error token is one

  bool is(TokenKind k) const { return kind == k; }
};

class Lexer {
public:
  explicit Lexer(llvm::StringRef buffer) : buffer(buffer) {}

  /// Returns the next token; at the end it returns eof forever.
  Token next();

private:
  Token make(TokenKind kind, const char *start, SourcePos pos);
  Token makeError(const char *start, SourcePos pos, std::string message);
  Token lexNumber(const char *start, SourcePos pos);
  Token lexString(const char *start, SourcePos pos);
  Token lexIdentifier(const char *start, SourcePos pos);
  /// Skips spaces and comments; returns an error token for an unterminated
  /// block comment, eof otherwise.
  Token skipTrivia();

  bool atEnd() const { return cur >= buffer.end(); }
  char peek(size_t ahead = 0) const {
    return cur + ahead < buffer.end() ? cur[ahead] : '\0';
  }
  void advance();

  llvm::StringRef buffer;
  const char *cur = buffer.begin();
  SourcePos pos;
  int nesting = 0; // open ( and [: newlines inside them are spaces
};

} // namespace kiln::frontend

#endif // KILN_FRONTEND_LEXER_H
