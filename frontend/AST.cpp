//===- AST.cpp - printing the syntax tree (`kiln compile --emit=ast`) -----===//

#include "frontend/AST.h"

#include "mlir/IR/BuiltinAttributes.h"

using namespace kiln::frontend;
using llvm::isa;

namespace {

class Dumper {
public:
  explicit Dumper(llvm::raw_ostream &os) : os(os) {}

  void model(const ModelAST &model) {
    line(model.loc) << "model " << model.name << "\n";
    ++depth;
    for (const StmtPtr &stmt : model.body)
      statement(*stmt);
    --depth;
  }

  void def(const DefAST &def) {
    line(def.loc) << "def " << def.name << "(";
    llvm::interleaveComma(def.args, os,
                          [&](const DefArgAST &arg) { os << arg.name; });
    os << ")\n";
    ++depth;
    for (const StmtPtr &stmt : def.body)
      statement(*stmt);
    --depth;
  }

private:
  /// Indents, prints `@line:col` and returns the stream for the rest.
  llvm::raw_ostream &line(mlir::Location loc) {
    os.indent(2 * depth);
    if (auto file = llvm::dyn_cast<mlir::FileLineColLoc>(loc))
      os << "@" << file.getLine() << ":" << file.getColumn() << " ";
    return os;
  }

  void type(const TypeAST &type) {
    os << type.dtype << "[";
    llvm::interleaveComma(type.dims, os, [&](const DimAST &d) {
      if (d.symbol.empty())
        os << d.size;
      else
        os << d.symbol;
    });
    os << "]";
  }

  void statement(const Stmt &stmt) {
    if (const auto *input = llvm::dyn_cast<InputStmt>(&stmt)) {
      line(stmt.getLoc()) << "input " << stmt.name << ": ";
      type(input->type);
      os << "\n";
      return;
    }
    if (const auto *param = llvm::dyn_cast<ParamStmt>(&stmt)) {
      line(stmt.getLoc()) << "param " << stmt.name << ": ";
      type(param->type);
      os << "\n";
      if (param->init)
        child(*param->init);
      return;
    }
    const auto &value = llvm::cast<ValueStmt>(stmt);
    switch (stmt.getKind()) {
    case Stmt::Kind::Loss:
      line(stmt.getLoc()) << "loss\n";
      break;
    case Stmt::Kind::Metric:
      line(stmt.getLoc()) << "metric " << stmt.name << "\n";
      break;
    case Stmt::Kind::Output:
      line(stmt.getLoc()) << "output " << stmt.name << "\n";
      break;
    case Stmt::Kind::Optimizer:
      line(stmt.getLoc()) << "optimizer\n";
      break;
    case Stmt::Kind::Return:
      line(stmt.getLoc()) << "return\n";
      break;
    default:
      line(stmt.getLoc()) << "assign " << stmt.name << "\n";
      break;
    }
    child(*value.value);
  }

  void child(const Expr &expr) {
    ++depth;
    expression(expr);
    --depth;
  }

  void expression(const Expr &expr) {
    switch (expr.getKind()) {
    case Expr::Kind::Integer:
      line(expr.getLoc()) << "int " << llvm::cast<IntegerExpr>(expr).value
                          << "\n";
      return;
    case Expr::Kind::Float:
      line(expr.getLoc()) << "float " << llvm::cast<FloatExpr>(expr).value
                          << "\n";
      return;
    case Expr::Kind::Bool:
      line(expr.getLoc()) << "bool "
                          << (llvm::cast<BoolExpr>(expr).value ? "true"
                                                               : "false")
                          << "\n";
      return;
    case Expr::Kind::String:
      line(expr.getLoc()) << "string \"" << llvm::cast<StringExpr>(expr).value
                          << "\"\n";
      return;
    case Expr::Kind::Name:
      line(expr.getLoc()) << "name " << llvm::cast<NameExpr>(expr).name << "\n";
      return;
    case Expr::Kind::List:
      line(expr.getLoc()) << "list\n";
      for (const ExprPtr &e : llvm::cast<ListExpr>(expr).elements)
        child(*e);
      return;
    case Expr::Kind::Unary: {
      const auto &unary = llvm::cast<UnaryExpr>(expr);
      line(expr.getLoc()) << "unary " << unary.op << "\n";
      child(*unary.operand);
      return;
    }
    case Expr::Kind::Binary: {
      const auto &binary = llvm::cast<BinaryExpr>(expr);
      line(expr.getLoc()) << "binary " << binary.op << "\n";
      child(*binary.lhs);
      child(*binary.rhs);
      return;
    }
    case Expr::Kind::Call: {
      const auto &call = llvm::cast<CallExpr>(expr);
      line(expr.getLoc()) << "call " << call.callee << "\n";
      for (const ExprPtr &arg : call.args)
        child(*arg);
      ++depth;
      for (const KeywordArg &kw : call.kwargs) {
        line(kw.loc) << "keyword " << kw.name << "\n";
        child(*kw.value);
      }
      --depth;
      return;
    }
    }
  }

  llvm::raw_ostream &os;
  unsigned depth = 0;
};

} // namespace

void kiln::frontend::dump(const ModuleAST &module, llvm::raw_ostream &os) {
  Dumper dumper(os);
  for (const DefAST &def : module.defs)
    dumper.def(def);
  for (const ModelAST &model : module.models)
    dumper.model(model);
}
