//===- AST.h - syntax tree of the kiln model language -----------*- C++ -*-===//
//
// What the parser produces and MLIRGen consumes. Every node carries the
// FileLineColLoc of its first token.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_FRONTEND_AST_H
#define KILN_FRONTEND_AST_H

#include "mlir/IR/Location.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Casting.h"
#include "llvm/Support/raw_ostream.h"

#include <memory>
#include <string>
#include <vector>

namespace kiln::frontend {

//===----------------------------------------------------------------------===//
// Expressions
//===----------------------------------------------------------------------===//

class Expr {
public:
  enum class Kind {
    Integer,
    Float,
    Bool,
    String,
    Name,
    List,
    Unary,
    Binary,
    Call
  };

  Expr(Kind kind, mlir::Location loc) : kind(kind), loc(loc) {}
  virtual ~Expr() = default;

  Kind getKind() const { return kind; }
  mlir::Location getLoc() const { return loc; }

private:
  Kind kind;
  mlir::Location loc;
};

using ExprPtr = std::unique_ptr<Expr>;

class IntegerExpr : public Expr {
public:
  IntegerExpr(mlir::Location loc, int64_t value)
      : Expr(Kind::Integer, loc), value(value) {}
  int64_t value;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Integer; }
};

class FloatExpr : public Expr {
public:
  FloatExpr(mlir::Location loc, double value)
      : Expr(Kind::Float, loc), value(value) {}
  double value;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Float; }
};

class BoolExpr : public Expr {
public:
  BoolExpr(mlir::Location loc, bool value)
      : Expr(Kind::Bool, loc), value(value) {}
  bool value;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Bool; }
};

class StringExpr : public Expr {
public:
  StringExpr(mlir::Location loc, std::string value)
      : Expr(Kind::String, loc), value(std::move(value)) {}
  std::string value;
  static bool classof(const Expr *e) { return e->getKind() == Kind::String; }
};

/// A reference to a named value: an input, parameter or assigned name.
class NameExpr : public Expr {
public:
  NameExpr(mlir::Location loc, std::string name)
      : Expr(Kind::Name, loc), name(std::move(name)) {}
  std::string name;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Name; }
};

/// `[a, b, ...]`: shapes, axes and permutations.
class ListExpr : public Expr {
public:
  ListExpr(mlir::Location loc, std::vector<ExprPtr> elements)
      : Expr(Kind::List, loc), elements(std::move(elements)) {}
  std::vector<ExprPtr> elements;
  static bool classof(const Expr *e) { return e->getKind() == Kind::List; }
};

/// `-x`.
class UnaryExpr : public Expr {
public:
  UnaryExpr(mlir::Location loc, char op, ExprPtr operand)
      : Expr(Kind::Unary, loc), op(op), operand(std::move(operand)) {}
  char op;
  ExprPtr operand;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Unary; }
};

/// `a + b`, `a @ b`, `a ** b`, `a < b`, ...; `op` is the operator's spelling.
class BinaryExpr : public Expr {
public:
  BinaryExpr(mlir::Location loc, std::string op, ExprPtr lhs, ExprPtr rhs)
      : Expr(Kind::Binary, loc), op(std::move(op)), lhs(std::move(lhs)),
        rhs(std::move(rhs)) {}
  std::string op;
  ExprPtr lhs, rhs;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Binary; }
};

struct KeywordArg {
  std::string name;
  mlir::Location loc;
  ExprPtr value;
};

/// `f(a, b, key=value)`.
class CallExpr : public Expr {
public:
  CallExpr(mlir::Location loc, std::string callee, std::vector<ExprPtr> args,
           std::vector<KeywordArg> kwargs)
      : Expr(Kind::Call, loc), callee(std::move(callee)), args(std::move(args)),
        kwargs(std::move(kwargs)) {}
  std::string callee;
  std::vector<ExprPtr> args;
  std::vector<KeywordArg> kwargs;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Call; }
};

//===----------------------------------------------------------------------===//
// Types and statements
//===----------------------------------------------------------------------===//

/// One dimension of a declared type: a size, or a symbol such as `batch`.
struct DimAST {
  int64_t size = -1;  // -1 when symbolic
  std::string symbol; // non-empty when symbolic
  mlir::Location loc;
};

/// `f32[batch, 784]`.
struct TypeAST {
  std::string dtype;
  mlir::Location loc;
  std::vector<DimAST> dims;
};

class Stmt {
public:
  enum class Kind {
    Input,
    Param,
    Assign,
    Loss,
    Metric,
    Output,
    Optimizer,
    Return
  };

  Stmt(Kind kind, mlir::Location loc, std::string name)
      : kind(kind), loc(loc), name(std::move(name)) {}
  virtual ~Stmt() = default;

  Kind getKind() const { return kind; }
  mlir::Location getLoc() const { return loc; }

private:
  Kind kind;
  mlir::Location loc;

public:
  std::string name;
  mlir::Location nameLoc = loc;
};

using StmtPtr = std::unique_ptr<Stmt>;

/// `input x: f32[batch, 784]`.
class InputStmt : public Stmt {
public:
  InputStmt(mlir::Location loc, std::string name, TypeAST type)
      : Stmt(Kind::Input, loc, std::move(name)), type(std::move(type)) {}
  TypeAST type;
  static bool classof(const Stmt *s) { return s->getKind() == Kind::Input; }
};

/// `param w: f32[784, 10] = normal(std=0.01)`.
class ParamStmt : public Stmt {
public:
  ParamStmt(mlir::Location loc, std::string name, TypeAST type, ExprPtr init)
      : Stmt(Kind::Param, loc, std::move(name)), type(std::move(type)),
        init(std::move(init)) {}
  TypeAST type;
  ExprPtr init; // null: the default initializer
  static bool classof(const Stmt *s) { return s->getKind() == Kind::Param; }
};

/// `name = expr`, `loss = expr`, `metric name = expr`, `output name = expr`,
/// `optimizer sgd(lr=0.1, ...)` (whose value is the call) and, in a block,
/// `return expr`.
class ValueStmt : public Stmt {
public:
  ValueStmt(Kind kind, mlir::Location loc, std::string name, ExprPtr value)
      : Stmt(kind, loc, std::move(name)), value(std::move(value)) {}
  ExprPtr value;
  static bool classof(const Stmt *s) {
    return s->getKind() == Kind::Assign || s->getKind() == Kind::Loss ||
           s->getKind() == Kind::Metric || s->getKind() == Kind::Output ||
           s->getKind() == Kind::Optimizer || s->getKind() == Kind::Return;
  }
};

/// `model name { ... }`.
struct ModelAST {
  std::string name;
  mlir::Location loc;
  std::vector<StmtPtr> body;
};

/// One argument of a block: `x` in `def block(x, n_head)`.
struct DefArgAST {
  std::string name;
  mlir::Location loc;
};

/// `def name(args) { ...; return expr }`: a block that calls inline. Its body
/// ends with the one `Return` statement.
struct DefAST {
  std::string name;
  mlir::Location loc;     // of 'def'
  mlir::Location nameLoc; // of the name
  std::vector<DefArgAST> args;
  std::vector<StmtPtr> body;
};

/// A parsed model file.
struct ModuleAST {
  std::vector<DefAST> defs;
  std::vector<ModelAST> models;
};

/// Prints the tree, one node per line with its location.
void dump(const ModuleAST &module, llvm::raw_ostream &os);

} // namespace kiln::frontend

#endif // KILN_FRONTEND_AST_H
