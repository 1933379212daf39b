//===- Lexer.cpp - tokens of the kiln model language ----------------------===//

#include "frontend/Lexer.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <cerrno>
#include <cstdlib>

using namespace kiln::frontend;

llvm::StringRef kiln::frontend::spell(TokenKind kind) {
  switch (kind) {
  case TokenKind::eof:
    return "end of file";
  case TokenKind::newline:
    return "end of line";
  case TokenKind::error:
    return "invalid token";
  case TokenKind::identifier:
    return "identifier";
  case TokenKind::integer:
    return "integer";
  case TokenKind::floating:
    return "number";
  case TokenKind::string:
    return "string";
  case TokenKind::kw_model:
    return "'model'";
  case TokenKind::kw_input:
    return "'input'";
  case TokenKind::kw_param:
    return "'param'";
  case TokenKind::kw_loss:
    return "'loss'";
  case TokenKind::kw_metric:
    return "'metric'";
  case TokenKind::kw_output:
    return "'output'";
  case TokenKind::kw_optimizer:
    return "'optimizer'";
  case TokenKind::kw_def:
    return "'def'";
  case TokenKind::kw_return:
    return "'return'";
  case TokenKind::kw_true:
    return "'true'";
  case TokenKind::kw_false:
    return "'false'";
  case TokenKind::l_brace:
    return "'{'";
  case TokenKind::r_brace:
    return "'}'";
  case TokenKind::l_paren:
    return "'('";
  case TokenKind::r_paren:
    return "')'";
  case TokenKind::l_square:
    return "'['";
  case TokenKind::r_square:
    return "']'";
  case TokenKind::comma:
    return "','";
  case TokenKind::colon:
    return "':'";
  case TokenKind::semicolon:
    return "';'";
  case TokenKind::equal:
    return "'='";
  case TokenKind::plus:
    return "'+'";
  case TokenKind::minus:
    return "'-'";
  case TokenKind::star:
    return "'*'";
  case TokenKind::star_star:
    return "'**'";
  case TokenKind::slash:
    return "'/'";
  case TokenKind::at:
    return "'@'";
  case TokenKind::less:
    return "'<'";
  case TokenKind::less_equal:
    return "'<='";
  case TokenKind::greater:
    return "'>'";
  case TokenKind::greater_equal:
    return "'>='";
  case TokenKind::equal_equal:
    return "'=='";
  case TokenKind::not_equal:
    return "'!='";
  }
  return "token";
}

void Lexer::advance() {
  if (atEnd())
    return;
  if (*cur == '\n') {
    ++pos.line;
    pos.column = 1;
  } else {
    ++pos.column;
  }
  ++cur;
}

Token Lexer::make(TokenKind kind, const char *start, SourcePos at) {
  Token token;
  token.kind = kind;
  token.text = llvm::StringRef(start, cur - start);
  token.pos = at;
  return token;
}

Token Lexer::makeError(const char *start, SourcePos at, std::string message) {
  Token token = make(TokenKind::error, start, at);
  token.error = std::move(message);
  return token;
}

Token Lexer::skipTrivia() {
  while (!atEnd()) {
    char c = peek();
    if (c == ' ' || c == '\t' || c == '\r' || (c == '\n' && nesting > 0)) {
      advance();
    } else if (c == '#') {
      while (!atEnd() && peek() != '\n')
        advance();
    } else if (c == '/' && peek(1) == '*') {
      const char *start = cur;
      SourcePos at = pos;
      advance();
      advance();
      while (!atEnd() && !(peek() == '*' && peek(1) == '/'))
        advance();
      if (atEnd())
        return makeError(start, at, "unterminated block comment");
      advance();
      advance();
    } else {
      break;
    }
  }
  return Token();
}

Token Lexer::next() {
  Token trivia = skipTrivia();
  if (trivia.is(TokenKind::error))
    return trivia;

  const char *start = cur;
  SourcePos at = pos;
  if (atEnd())
    return make(TokenKind::eof, start, at);

  char c = peek();
  if (std::isalpha(static_cast<unsigned char>(c)) || c == '_')
    return lexIdentifier(start, at);
  if (std::isdigit(static_cast<unsigned char>(c)) ||
      (c == '.' && std::isdigit(static_cast<unsigned char>(peek(1)))))
    return lexNumber(start, at);
  if (c == '"')
    return lexString(start, at);

  advance();
  auto two = [&](char second, TokenKind pair, TokenKind single) {
    if (peek() == second) {
      advance();
      return make(pair, start, at);
    }
    return make(single, start, at);
  };
  switch (c) {
  case '\n':
    return make(TokenKind::newline, start, at);
  case '{':
    return make(TokenKind::l_brace, start, at);
  case '}':
    // A stray '}' closes every open bracket: it resynchronizes newlines.
    nesting = 0;
    return make(TokenKind::r_brace, start, at);
  case '(':
    ++nesting;
    return make(TokenKind::l_paren, start, at);
  case ')':
    nesting = std::max(0, nesting - 1);
    return make(TokenKind::r_paren, start, at);
  case '[':
    ++nesting;
    return make(TokenKind::l_square, start, at);
  case ']':
    nesting = std::max(0, nesting - 1);
    return make(TokenKind::r_square, start, at);
  case ',':
    return make(TokenKind::comma, start, at);
  case ':':
    return make(TokenKind::colon, start, at);
  case ';':
    return make(TokenKind::semicolon, start, at);
  case '+':
    return make(TokenKind::plus, start, at);
  case '-':
    return make(TokenKind::minus, start, at);
  case '*':
    return two('*', TokenKind::star_star, TokenKind::star);
  case '/':
    return make(TokenKind::slash, start, at);
  case '@':
    return make(TokenKind::at, start, at);
  case '<':
    return two('=', TokenKind::less_equal, TokenKind::less);
  case '>':
    return two('=', TokenKind::greater_equal, TokenKind::greater);
  case '=':
    return two('=', TokenKind::equal_equal, TokenKind::equal);
  case '!':
    if (peek() == '=') {
      advance();
      return make(TokenKind::not_equal, start, at);
    }
    return makeError(start, at,
                     "unexpected character '!' (did you mean '!='?)");
  default:
    break;
  }
  std::string message;
  llvm::raw_string_ostream os(message);
  if (std::isprint(static_cast<unsigned char>(c))) {
    os << "unexpected character '" << c << "'";
    return makeError(start, at, message);
  }
  // A run of control or non-ASCII bytes is one error, not one per byte.
  auto isJunk = [](char b) {
    return !std::isprint(static_cast<unsigned char>(b)) && b != ' ' &&
           b != '\t' && b != '\r' && b != '\n';
  };
  while (!atEnd() && isJunk(peek()))
    advance();
  llvm::StringRef run(start, cur - start);
  const size_t shown = 8;
  os << (run.size() == 1 ? "unexpected byte" : "unexpected bytes");
  for (char b : run.take_front(shown))
    os << " 0x" << llvm::format_hex_no_prefix(static_cast<unsigned char>(b), 2);
  if (run.size() > shown)
    os << " ...";
  os << "; a model file is ASCII text";
  return makeError(start, at, message);
}

Token Lexer::lexIdentifier(const char *start, SourcePos at) {
  while (!atEnd() &&
         (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_'))
    advance();
  llvm::StringRef text(start, cur - start);
  TokenKind kind = llvm::StringSwitch<TokenKind>(text)
                       .Case("model", TokenKind::kw_model)
                       .Case("input", TokenKind::kw_input)
                       .Case("param", TokenKind::kw_param)
                       .Case("loss", TokenKind::kw_loss)
                       .Case("metric", TokenKind::kw_metric)
                       .Case("output", TokenKind::kw_output)
                       .Case("optimizer", TokenKind::kw_optimizer)
                       .Case("def", TokenKind::kw_def)
                       .Case("return", TokenKind::kw_return)
                       .Case("true", TokenKind::kw_true)
                       .Case("false", TokenKind::kw_false)
                       .Default(TokenKind::identifier);
  return make(kind, start, at);
}

Token Lexer::lexNumber(const char *start, SourcePos at) {
  bool isFloat = false;
  auto digits = [&] {
    while (!atEnd() && std::isdigit(static_cast<unsigned char>(peek())))
      advance();
  };
  digits();
  if (peek() == '.') {
    isFloat = true;
    advance();
    digits();
  }
  if (peek() == 'e' || peek() == 'E') {
    isFloat = true;
    advance();
    if (peek() == '+' || peek() == '-')
      advance();
    if (!std::isdigit(static_cast<unsigned char>(peek()))) {
      // Swallow the rest of the word so one typo gives one error.
      while (!atEnd() && std::isalnum(static_cast<unsigned char>(peek())))
        advance();
      return makeError(start, at,
                       "invalid number '" +
                           llvm::StringRef(start, cur - start).str() +
                           "': the exponent has no digits");
    }
    digits();
  }
  // A number runs into letters, '_' or a second '.': `12ab`, `1.2.3`.
  if (!atEnd() && (std::isalpha(static_cast<unsigned char>(peek())) ||
                   peek() == '_' || peek() == '.')) {
    while (!atEnd() && (std::isalnum(static_cast<unsigned char>(peek())) ||
                        peek() == '_' || peek() == '.'))
      advance();
    return makeError(start, at,
                     "invalid number '" +
                         llvm::StringRef(start, cur - start).str() + "'");
  }
  Token token =
      make(isFloat ? TokenKind::floating : TokenKind::integer, start, at);
  std::string text = token.text.str();
  errno = 0;
  if (isFloat) {
    token.floatValue = std::strtod(text.c_str(), nullptr);
    if (errno == ERANGE && std::abs(token.floatValue) > 1.0)
      return makeError(start, at, "number '" + text + "' is out of range");
  } else {
    token.intValue = std::strtoll(text.c_str(), nullptr, 10);
    if (errno == ERANGE)
      return makeError(start, at,
                       "integer '" + text + "' does not fit in 64 bits");
  }
  return token;
}

Token Lexer::lexString(const char *start, SourcePos at) {
  advance(); // the opening quote
  std::string value, problem;
  while (true) {
    if (atEnd() || peek() == '\n')
      return makeError(start, at, "unterminated string");
    char c = peek();
    advance();
    if (c == '"')
      break;
    if (c != '\\') {
      value.push_back(c);
      continue;
    }
    char e = peek();
    if (e == '"' || e == '\\')
      value.push_back(e);
    else if (e == 'n')
      value.push_back('\n');
    else if (problem.empty())
      problem = "unknown escape sequence in string";
    if (!atEnd() && e != '\n')
      advance();
  }
  if (!problem.empty())
    return makeError(start, at, problem);
  Token token = make(TokenKind::string, start, at);
  token.stringValue = std::move(value);
  return token;
}
