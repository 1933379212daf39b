//===- Parser.cpp - parser of the kiln model language ---------------------===//
//
// Grammar (docs/language.md has the user's version):
//
//   file    := sep* ((model | def) sep*)* EOF
//   model   := 'model' IDENT '{' (stmt? sep)* '}'
//   def     := 'def' IDENT '(' (IDENT (',' IDENT)* ','?)? ')' '{' (stmt? sep)*
//   '}' stmt    := 'input' IDENT ':' type
//            | 'param' IDENT ':' type ('=' expr)?
//            | 'loss' '=' expr
//            | 'metric' IDENT '=' expr
//            | 'output' IDENT '=' expr
//            | 'optimizer' IDENT '(' args? ')'
//            | 'return' expr                            (only in a def)
//            | IDENT '=' expr
//   type    := IDENT '[' (dim (',' dim)*)? ']'        dim := INT | IDENT
//   expr    := sum (cmpop sum)?                        cmpop := < <= > >= == !=
//   sum     := product (('+' | '-') product)*
//   product := unary (('*' | '/' | '@') unary)*
//   unary   := '-' unary | power
//   power   := primary ('**' unary)?
//   primary := INT | FLOAT | STRING | 'true' | 'false' | IDENT
//            | IDENT '(' args? ')' | '(' expr ')' | '[' (expr (',' expr)*)? ']'
//   args    := arg (',' arg)* ','?                     arg := (IDENT '=')? expr
//   sep     := NEWLINE | ';'
//
//===----------------------------------------------------------------------===//

#include "frontend/Parser.h"
#include "frontend/Lexer.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Diagnostics.h"

using namespace kiln::frontend;

namespace {

class Parser {
public:
  Parser(llvm::StringRef source, llvm::StringRef filename,
         mlir::MLIRContext &context, ParserLimits limits)
      : lexer(source), filename(mlir::StringAttr::get(&context, filename)),
        limits(limits) {
    advance();
  }

  std::unique_ptr<ModuleAST> parseFile() {
    auto module = std::make_unique<ModuleAST>();
    skipSeparators();
    if (tok.is(TokenKind::eof)) {
      error(tok, "expected a model definition 'model NAME { ... }', but the "
                 "file has none");
      return nullptr;
    }
    while (!tok.is(TokenKind::eof) && !stopped()) {
      if (tok.is(TokenKind::kw_def)) {
        if (std::optional<DefAST> def = parseDef())
          module->defs.push_back(std::move(*def));
        skipSeparators();
        continue;
      }
      if (!tok.is(TokenKind::kw_model)) {
        expected("'model' or 'def'");
        // Skip to the next model or block definition.
        while (!tok.is(TokenKind::eof) && !tok.is(TokenKind::kw_model) &&
               !tok.is(TokenKind::kw_def))
          advance();
        continue;
      }
      if (std::optional<ModelAST> model = parseModel())
        module->models.push_back(std::move(*model));
      skipSeparators();
    }
    if (errors > 0)
      return nullptr;
    return module;
  }

private:
  //===--------------------------------------------------------------------===//
  // Tokens and diagnostics
  //===--------------------------------------------------------------------===//

  mlir::Location locOf(SourcePos pos) {
    return mlir::FileLineColLoc::get(filename, pos.line, pos.column);
  }
  mlir::Location locOf(const Token &token) { return locOf(token.pos); }

  void advance() {
    afterLexError = tok.is(TokenKind::error);
    tok = lexer.next();
    // Lexical errors are reported once, where they occur.
    if (tok.is(TokenKind::error))
      error(tok, tok.error);
  }

  bool stopped() const { return errors >= limits.maxErrors; }

  void error(mlir::Location loc, const llvm::Twine &message,
             std::optional<mlir::Location> noteLoc = std::nullopt,
             const llvm::Twine &note = "") {
    if (stopped())
      return;
    {
      mlir::InFlightDiagnostic diag = mlir::emitError(loc) << message;
      if (noteLoc)
        diag.attachNote(*noteLoc) << note;
    }
    if (++errors == limits.maxErrors)
      mlir::emitError(loc) << "too many errors (" << limits.maxErrors
                           << "), stopping";
  }
  void error(const Token &at, const llvm::Twine &message) {
    error(locOf(at), message);
  }

  /// Reports `expected X, found Y` at the current token; an invalid token was
  /// already explained by the lexer and is not reported twice.
  void expected(const llvm::Twine &what) {
    if (tok.is(TokenKind::error))
      return;
    std::string found;
    if (tok.is(TokenKind::identifier) || tok.is(TokenKind::integer) ||
        tok.is(TokenKind::floating))
      found = "'" + tok.text.str() + "'";
    else
      found = spell(tok.kind).str();
    error(tok, "expected " + what + ", found " + found);
  }

  bool consumeIf(TokenKind kind) {
    if (!tok.is(kind))
      return false;
    advance();
    return true;
  }

  bool expect(TokenKind kind) {
    if (consumeIf(kind))
      return true;
    expected(spell(kind));
    return false;
  }

  void skipSeparators() {
    while (tok.is(TokenKind::newline) || tok.is(TokenKind::semicolon))
      advance();
  }

  /// Error recovery: skips the rest of a broken statement, up to its end of
  /// line or `;`, or up to the `}` that closes the model.
  void synchronize() {
    int depth = 0;
    while (!tok.is(TokenKind::eof) && !stopped()) {
      if (depth == 0 &&
          (tok.is(TokenKind::newline) || tok.is(TokenKind::semicolon) ||
           tok.is(TokenKind::r_brace) || tok.is(TokenKind::kw_model) ||
           tok.is(TokenKind::kw_def)))
        return;
      if (tok.is(TokenKind::l_paren) || tok.is(TokenKind::l_square) ||
          tok.is(TokenKind::l_brace))
        ++depth;
      if ((tok.is(TokenKind::r_paren) || tok.is(TokenKind::r_square)) &&
          depth > 0)
        --depth;
      if (tok.is(TokenKind::r_brace))
        depth = 0; // a '}' always ends what is open (see the lexer)
      advance();
    }
  }

  //===--------------------------------------------------------------------===//
  // Models and statements
  //===--------------------------------------------------------------------===//

  std::optional<ModelAST> parseModel() {
    mlir::Location loc = locOf(tok);
    advance(); // 'model'
    if (!tok.is(TokenKind::identifier)) {
      expected("a model name after 'model'");
      synchronizeModel();
      return std::nullopt;
    }
    ModelAST model{tok.text.str(), loc, {}};
    advance();
    skipNewlines();
    if (!expect(TokenKind::l_brace)) {
      synchronizeModel();
      return std::nullopt;
    }
    std::optional<std::vector<StmtPtr>> body =
        parseBody(/*inDef=*/false, model.name, model.loc);
    if (!body)
      return std::nullopt;
    model.body = std::move(*body);
    return model;
  }

  std::optional<DefAST> parseDef() {
    mlir::Location loc = locOf(tok);
    advance(); // 'def'
    if (!tok.is(TokenKind::identifier)) {
      expected("a block name after 'def'");
      synchronizeModel();
      return std::nullopt;
    }
    DefAST def{tok.text.str(), loc, locOf(tok), {}, {}};
    advance();
    if (!expect(TokenKind::l_paren)) {
      synchronizeModel();
      return std::nullopt;
    }
    while (!tok.is(TokenKind::r_paren)) {
      if (!tok.is(TokenKind::identifier)) {
        expected("an argument name");
        synchronizeModel();
        return std::nullopt;
      }
      for (const DefArgAST &arg : def.args)
        if (arg.name == tok.text) {
          error(locOf(tok), "argument '" + arg.name + "' of block '" +
                                def.name + "' is declared twice");
          break;
        }
      def.args.push_back(DefArgAST{tok.text.str(), locOf(tok)});
      advance();
      if (!consumeIf(TokenKind::comma))
        break;
    }
    if (!expect(TokenKind::r_paren)) {
      synchronizeModel();
      return std::nullopt;
    }
    skipNewlines();
    if (!expect(TokenKind::l_brace)) {
      synchronizeModel();
      return std::nullopt;
    }
    std::optional<std::vector<StmtPtr>> body =
        parseBody(/*inDef=*/true, def.name, def.loc);
    if (!body)
      return std::nullopt;
    def.body = std::move(*body);
    // The body ends with its one `return`.
    for (auto [i, stmt] : llvm::enumerate(def.body)) {
      if (stmt->getKind() != Stmt::Kind::Return || i + 1 == def.body.size())
        continue;
      error(def.body[i + 1]->getLoc(),
            "'return' must be the last statement of block '" + def.name + "'",
            stmt->getLoc(), "the block returns here");
      return std::nullopt;
    }
    if (def.body.empty() || def.body.back()->getKind() != Stmt::Kind::Return) {
      error(def.nameLoc, "block '" + def.name +
                             "' has no 'return'; end it with "
                             "'return EXPR'");
      return std::nullopt;
    }
    return def;
  }

  /// The statements of a model or block body, after its '{' up to and
  /// including its '}'. A block takes its tensors as arguments and returns
  /// one; only models declare inputs, the loss, metrics and the optimizer.
  std::optional<std::vector<StmtPtr>>
  parseBody(bool inDef, const std::string &name, mlir::Location loc) {
    std::vector<StmtPtr> body;
    std::string what = (inDef ? "block '" : "model '") + name + "'";
    while (!stopped()) {
      skipSeparators();
      if (tok.is(TokenKind::r_brace)) {
        advance();
        return body;
      }
      if (tok.is(TokenKind::eof) || tok.is(TokenKind::kw_model) ||
          tok.is(TokenKind::kw_def)) {
        // An unterminated block comment or string already explained why the
        // file ends early.
        if (!tok.is(TokenKind::eof) || !afterLexError)
          error(locOf(tok), "expected '}' to close " + what, loc,
                what + " starts here");
        return std::nullopt;
      }
      StmtPtr stmt = parseStatement();
      if (!stmt) {
        synchronize();
        continue;
      }
      if (!tok.is(TokenKind::newline) && !tok.is(TokenKind::semicolon) &&
          !tok.is(TokenKind::r_brace) && !tok.is(TokenKind::eof)) {
        expected("end of statement");
        synchronize();
      }
      Stmt::Kind kind = stmt->getKind();
      if (inDef && kind != Stmt::Kind::Assign && kind != Stmt::Kind::Param &&
          kind != Stmt::Kind::Return) {
        const char *keyword = kind == Stmt::Kind::Input    ? "input"
                              : kind == Stmt::Kind::Loss   ? "loss"
                              : kind == Stmt::Kind::Metric ? "metric"
                                                           : "optimizer";
        error(stmt->getLoc(),
              "'" + llvm::Twine(keyword) + "' is not allowed in " + what +
                  (kind == Stmt::Kind::Input
                       ? "; a block takes its tensors as arguments"
                       : "; only a model declares it"));
        continue;
      }
      if (!inDef && kind == Stmt::Kind::Return) {
        error(stmt->getLoc(), "'return' is only allowed in a block "
                              "('def NAME(...) { ... }')");
        continue;
      }
      body.push_back(std::move(stmt));
    }
    return std::nullopt;
  }

  void skipNewlines() {
    while (tok.is(TokenKind::newline))
      advance();
  }

  /// Skips a model whose header is broken: to its closing '}' or the next
  /// 'model'.
  void synchronizeModel() {
    while (!tok.is(TokenKind::eof) && !tok.is(TokenKind::kw_model) &&
           !tok.is(TokenKind::kw_def)) {
      if (tok.is(TokenKind::r_brace)) {
        advance();
        return;
      }
      advance();
    }
  }

  StmtPtr parseStatement() {
    Token first = tok;
    mlir::Location loc = locOf(tok);
    switch (tok.kind) {
    case TokenKind::kw_input: {
      advance();
      std::optional<std::pair<std::string, mlir::Location>> name =
          parseName("an input name");
      if (!name || !expect(TokenKind::colon))
        return nullptr;
      std::optional<TypeAST> type = parseType();
      if (!type)
        return nullptr;
      auto stmt =
          std::make_unique<InputStmt>(loc, name->first, std::move(*type));
      stmt->nameLoc = name->second;
      return stmt;
    }
    case TokenKind::kw_param: {
      advance();
      std::optional<std::pair<std::string, mlir::Location>> name =
          parseName("a parameter name");
      if (!name || !expect(TokenKind::colon))
        return nullptr;
      std::optional<TypeAST> type = parseType();
      if (!type)
        return nullptr;
      ExprPtr init;
      if (consumeIf(TokenKind::equal)) {
        init = parseExpr();
        if (!init)
          return nullptr;
      }
      auto stmt = std::make_unique<ParamStmt>(
          loc, name->first, std::move(*type), std::move(init));
      stmt->nameLoc = name->second;
      return stmt;
    }
    case TokenKind::kw_loss: {
      advance();
      if (!expect(TokenKind::equal))
        return nullptr;
      ExprPtr value = parseExpr();
      if (!value)
        return nullptr;
      auto stmt = std::make_unique<ValueStmt>(Stmt::Kind::Loss, loc, "loss",
                                              std::move(value));
      stmt->nameLoc = loc;
      return stmt;
    }
    case TokenKind::kw_optimizer: {
      advance();
      if (!tok.is(TokenKind::identifier)) {
        expected("an optimizer such as 'sgd(lr=0.1, momentum=0.9)'");
        return nullptr;
      }
      ExprPtr value = parsePrimary();
      if (!value)
        return nullptr;
      if (!llvm::isa<CallExpr>(*value)) {
        error(value->getLoc(), "expected an optimizer call such as "
                               "'sgd(lr=0.1, momentum=0.9)'");
        return nullptr;
      }
      auto stmt = std::make_unique<ValueStmt>(Stmt::Kind::Optimizer, loc,
                                              "optimizer", std::move(value));
      stmt->nameLoc = loc;
      return stmt;
    }
    case TokenKind::kw_return: {
      advance();
      ExprPtr value = parseExpr();
      if (!value)
        return nullptr;
      auto stmt = std::make_unique<ValueStmt>(Stmt::Kind::Return, loc, "return",
                                              std::move(value));
      stmt->nameLoc = loc;
      return stmt;
    }
    case TokenKind::kw_metric:
    case TokenKind::kw_output: {
      bool metric = tok.is(TokenKind::kw_metric);
      advance();
      std::optional<std::pair<std::string, mlir::Location>> name =
          parseName(metric ? "a metric name" : "an output name");
      if (!name || !expect(TokenKind::equal))
        return nullptr;
      ExprPtr value = parseExpr();
      if (!value)
        return nullptr;
      auto stmt = std::make_unique<ValueStmt>(
          metric ? Stmt::Kind::Metric : Stmt::Kind::Output, loc, name->first,
          std::move(value));
      stmt->nameLoc = name->second;
      return stmt;
    }
    case TokenKind::identifier: {
      std::string name = tok.text.str();
      advance();
      if (!tok.is(TokenKind::equal)) {
        if (tok.is(TokenKind::l_paren))
          error(first, "the value of '" + name +
                           "(...)' is unused; assign it: 'NAME = " + name +
                           "(...)'");
        else
          expected("'=' after '" + name + "'");
        return nullptr;
      }
      advance();
      ExprPtr value = parseExpr();
      if (!value)
        return nullptr;
      auto stmt = std::make_unique<ValueStmt>(Stmt::Kind::Assign, loc, name,
                                              std::move(value));
      stmt->nameLoc = loc;
      return stmt;
    }
    default:
      expected("a statement ('input', 'param', 'loss', 'metric', "
               "'output', 'optimizer', 'return' or 'NAME = ...')");
      return nullptr;
    }
  }

  std::optional<std::pair<std::string, mlir::Location>>
  parseName(llvm::StringRef what) {
    if (!tok.is(TokenKind::identifier)) {
      expected(what);
      return std::nullopt;
    }
    auto result = std::make_pair(tok.text.str(), locOf(tok));
    advance();
    return result;
  }

  std::optional<TypeAST> parseType() {
    if (!tok.is(TokenKind::identifier)) {
      expected("a tensor type such as 'f32[batch, 784]'");
      return std::nullopt;
    }
    TypeAST type{tok.text.str(), locOf(tok), {}};
    advance();
    if (!expect(TokenKind::l_square))
      return std::nullopt;
    if (consumeIf(TokenKind::r_square))
      return type;
    while (true) {
      if (tok.is(TokenKind::integer)) {
        type.dims.push_back(DimAST{tok.intValue, "", locOf(tok)});
      } else if (tok.is(TokenKind::identifier)) {
        type.dims.push_back(DimAST{-1, tok.text.str(), locOf(tok)});
      } else {
        expected("a dimension (a size or a name such as 'batch')");
        return std::nullopt;
      }
      advance();
      if (consumeIf(TokenKind::r_square))
        return type;
      if (!expect(TokenKind::comma))
        return std::nullopt;
    }
  }

  //===--------------------------------------------------------------------===//
  // Expressions
  //===--------------------------------------------------------------------===//

  /// Guards the recursion of nested expressions.
  struct NestingGuard {
    NestingGuard(Parser &p) : p(p) { ++p.nesting; }
    ~NestingGuard() { --p.nesting; }
    Parser &p;
  };

  ExprPtr parseExpr() {
    NestingGuard guard(*this);
    if (nesting > limits.maxNesting) {
      error(tok, "expression nested too deeply (more than " +
                     llvm::Twine(limits.maxNesting) + " levels)");
      return nullptr;
    }
    ExprPtr lhs = parseSum();
    if (!lhs)
      return nullptr;
    static const std::pair<TokenKind, const char *> comparisons[] = {
        {TokenKind::less, "<"},         {TokenKind::less_equal, "<="},
        {TokenKind::greater, ">"},      {TokenKind::greater_equal, ">="},
        {TokenKind::equal_equal, "=="}, {TokenKind::not_equal, "!="}};
    for (auto [kind, spelling] : comparisons) {
      if (!tok.is(kind))
        continue;
      mlir::Location loc = locOf(tok);
      advance();
      ExprPtr rhs = parseSum();
      if (!rhs)
        return nullptr;
      ExprPtr result = std::make_unique<BinaryExpr>(
          loc, spelling, std::move(lhs), std::move(rhs));
      for (auto [again, unused] : comparisons) {
        if (tok.is(again)) {
          error(tok, "comparisons do not chain; use parentheses");
          return nullptr;
        }
      }
      return result;
    }
    return lhs;
  }

  ExprPtr parseSum() {
    ExprPtr lhs = parseProduct();
    while (lhs && (tok.is(TokenKind::plus) || tok.is(TokenKind::minus))) {
      std::string op = tok.text.str();
      mlir::Location loc = locOf(tok);
      advance();
      ExprPtr rhs = parseProduct();
      if (!rhs)
        return nullptr;
      lhs =
          std::make_unique<BinaryExpr>(loc, op, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  ExprPtr parseProduct() {
    ExprPtr lhs = parseUnary();
    while (lhs && (tok.is(TokenKind::star) || tok.is(TokenKind::slash) ||
                   tok.is(TokenKind::at))) {
      std::string op = tok.text.str();
      mlir::Location loc = locOf(tok);
      advance();
      ExprPtr rhs = parseUnary();
      if (!rhs)
        return nullptr;
      lhs =
          std::make_unique<BinaryExpr>(loc, op, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  ExprPtr parseUnary() {
    NestingGuard guard(*this);
    if (nesting > limits.maxNesting) {
      error(tok, "expression nested too deeply (more than " +
                     llvm::Twine(limits.maxNesting) + " levels)");
      return nullptr;
    }
    if (tok.is(TokenKind::minus)) {
      mlir::Location loc = locOf(tok);
      advance();
      ExprPtr operand = parseUnary();
      if (!operand)
        return nullptr;
      return std::make_unique<UnaryExpr>(loc, '-', std::move(operand));
    }
    ExprPtr base = parsePrimary();
    if (!base || !tok.is(TokenKind::star_star))
      return base;
    mlir::Location loc = locOf(tok);
    advance();
    ExprPtr exponent = parseUnary(); // right-associative, binds -x tighter
    if (!exponent)
      return nullptr;
    return std::make_unique<BinaryExpr>(loc, "**", std::move(base),
                                        std::move(exponent));
  }

  ExprPtr parsePrimary() {
    mlir::Location loc = locOf(tok);
    switch (tok.kind) {
    case TokenKind::integer: {
      int64_t value = tok.intValue;
      advance();
      return std::make_unique<IntegerExpr>(loc, value);
    }
    case TokenKind::floating: {
      double value = tok.floatValue;
      advance();
      return std::make_unique<FloatExpr>(loc, value);
    }
    case TokenKind::string: {
      std::string value = tok.stringValue;
      advance();
      return std::make_unique<StringExpr>(loc, std::move(value));
    }
    case TokenKind::kw_true:
    case TokenKind::kw_false: {
      bool value = tok.is(TokenKind::kw_true);
      advance();
      return std::make_unique<BoolExpr>(loc, value);
    }
    case TokenKind::identifier: {
      std::string name = tok.text.str();
      advance();
      if (tok.is(TokenKind::l_paren))
        return parseCall(loc, std::move(name));
      return std::make_unique<NameExpr>(loc, std::move(name));
    }
    case TokenKind::l_paren: {
      advance();
      ExprPtr inner = parseExpr();
      if (!inner)
        return nullptr;
      if (!expect(TokenKind::r_paren))
        return nullptr;
      return inner;
    }
    case TokenKind::l_square: {
      advance();
      std::vector<ExprPtr> elements;
      if (!consumeIf(TokenKind::r_square)) {
        while (true) {
          ExprPtr element = parseExpr();
          if (!element)
            return nullptr;
          elements.push_back(std::move(element));
          if (consumeIf(TokenKind::r_square))
            break;
          if (!expect(TokenKind::comma))
            return nullptr;
        }
      }
      return std::make_unique<ListExpr>(loc, std::move(elements));
    }
    default:
      expected("an expression");
      return nullptr;
    }
  }

  ExprPtr parseCall(mlir::Location loc, std::string callee) {
    advance(); // '('
    std::vector<ExprPtr> args;
    std::vector<KeywordArg> kwargs;
    while (!tok.is(TokenKind::r_paren)) {
      // `name = value` is a keyword argument; `name == value` is not.
      if (tok.is(TokenKind::identifier)) {
        Lexer probe = lexer; // one token of look-ahead without consuming
        Token after = probe.next();
        if (after.is(TokenKind::equal)) {
          std::string name = tok.text.str();
          mlir::Location kwLoc = locOf(tok);
          advance();
          advance();
          ExprPtr value = parseExpr();
          if (!value)
            return nullptr;
          for (const KeywordArg &kw : kwargs)
            if (kw.name == name) {
              error(kwLoc, "keyword argument '" + name + "' is given twice");
              return nullptr;
            }
          kwargs.push_back(KeywordArg{name, kwLoc, std::move(value)});
          if (!consumeIf(TokenKind::comma))
            break;
          continue;
        }
      }
      Token start = tok;
      ExprPtr arg = parseExpr();
      if (!arg)
        return nullptr;
      if (!kwargs.empty()) {
        error(start,
              "positional argument after keyword arguments in call to '" +
                  callee + "'");
        return nullptr;
      }
      args.push_back(std::move(arg));
      if (!consumeIf(TokenKind::comma))
        break;
    }
    if (!expect(TokenKind::r_paren))
      return nullptr;
    return std::make_unique<CallExpr>(loc, std::move(callee), std::move(args),
                                      std::move(kwargs));
  }

  Lexer lexer;
  Token tok;
  mlir::StringAttr filename;
  ParserLimits limits;
  unsigned errors = 0;
  unsigned nesting = 0;
  bool afterLexError = false; // the token before `tok` was invalid
};

} // namespace

std::unique_ptr<ModuleAST>
kiln::frontend::parseModelFile(llvm::StringRef source, llvm::StringRef filename,
                               mlir::MLIRContext &context,
                               ParserLimits limits) {
  Parser parser(source, filename, context, limits);
  return parser.parseFile();
}
