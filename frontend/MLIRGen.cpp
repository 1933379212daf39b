//===- MLIRGen.cpp - lowering the model AST to the kiln dialect -----------===//
//
// Walks each model's statements in order, keeping a table from names to SSA
// values. Calls dispatch through one table of builtins (`kBuiltins`), each
// with its signature; shape errors come from the ops' own shape functions,
// reported at the location of the expression that built the op.
//
//===----------------------------------------------------------------------===//

#include "frontend/MLIRGen.h"

#include "ir/KilnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/SaveAndRestore.h"

#include <cmath>

using namespace mlir;
using namespace kiln;
using namespace kiln::frontend;
using llvm::cast;
using llvm::dyn_cast;
using llvm::isa;

namespace {

/// A value during lowering: a tensor, or a number literal that takes the
/// element type of the tensor it meets.
struct Term {
  Value tensor;
  double number = 0;
  bool isInteger = false;

  static Term of(Value v) { return Term{v, 0, false}; }
  static Term literal(double n, bool isInt) { return Term{Value(), n, isInt}; }
  bool isNumber() const { return !tensor; }
};

/// The numeric value of a literal, possibly negated: `3`, `-1`, `1e-5`.
std::optional<double> literalNumber(const Expr &expr,
                                    bool *isInteger = nullptr) {
  if (const auto *i = dyn_cast<IntegerExpr>(&expr)) {
    if (isInteger)
      *isInteger = true;
    return static_cast<double>(i->value);
  }
  if (const auto *f = dyn_cast<FloatExpr>(&expr)) {
    if (isInteger)
      *isInteger = false;
    return f->value;
  }
  if (const auto *u = dyn_cast<UnaryExpr>(&expr))
    if (std::optional<double> inner = literalNumber(*u->operand, isInteger))
      return -*inner;
  return std::nullopt;
}

/// Spells a number as the user would write it: `0.5`, `1e-05`, `3`.
std::string formatNumber(double n) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::format("%g", n);
  return text;
}

/// The closest of `candidates` to a misspelled `name`, or "" when none is
/// close enough to be a plausible typo.
llvm::StringRef closestName(llvm::StringRef name,
                            llvm::ArrayRef<llvm::StringRef> candidates) {
  // Like clang's typo correction: up to one edit per three characters, and
  // never a rewrite of the whole name (`g` does not suggest `x`).
  unsigned bestDistance = (name.size() + 2) / 3 + 1;
  llvm::StringRef best;
  for (llvm::StringRef candidate : candidates) {
    unsigned d = name.edit_distance(candidate, /*AllowReplacements=*/true,
                                    /*MaxEditDistance=*/bestDistance);
    if (d < bestDistance && d < name.size() && d < candidate.size()) {
      bestDistance = d;
      best = candidate;
    }
  }
  return best;
}

/// Spells a tensor type in the language's terms: `f32[?, 784]`, `bool[4]`.
std::string typeText(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (tensor && tensor.getElementType().isInteger(1))
    return "bool" + formatShape(tensor.getShape());
  return formatTensorType(type);
}

/// What a statement bound a name to. A block's argument may be a number
/// literal (`Number`), usable wherever the body needs a literal.
struct Symbol {
  enum class Kind { Input, Param, Value, Number };
  Value value;
  Kind kind;
  Location loc;
  double number = 0;
  bool isInteger = false;
};

class Generator;

/// The arguments of one call, matched to the callee's parameter list.
class CallArgs {
public:
  CallArgs(Generator &gen, const CallExpr &call) : gen(gen), call(call) {}

  /// The expression bound to parameter `i`, or null when it was not given.
  const Expr *operator[](size_t i) const { return slots[i]; }
  bool has(size_t i) const { return slots[i] != nullptr; }
  Location loc(size_t i) const {
    return slots[i] ? slots[i]->getLoc() : call.getLoc();
  }

  FailureOr<Value> tensor(size_t i);
  FailureOr<Term> term(size_t i);
  FailureOr<int64_t> integer(size_t i, int64_t otherwise);
  FailureOr<double> number(size_t i, double otherwise);
  FailureOr<bool> boolean(size_t i, bool otherwise);
  FailureOr<std::string> string(size_t i, llvm::StringRef otherwise);
  /// An integer or a list of integers.
  FailureOr<SmallVector<int64_t>> integers(size_t i,
                                           ArrayRef<int64_t> otherwise);

  Generator &gen;
  const CallExpr &call;
  std::vector<const Expr *> slots;
  std::vector<llvm::StringRef> names;
};

class Generator {
public:
  explicit Generator(MLIRContext &context)
      : context(context), builder(&context),
        printedOpOnDiagnostic(context.shouldPrintOpOnDiagnostic()) {
    // Users read diagnostics about their model, not dumps of half-built IR.
    context.printOpOnDiagnostic(false);
  }
  ~Generator() { context.printOpOnDiagnostic(printedOpOnDiagnostic); }

  OwningOpRef<ModuleOp> generate(const ModuleAST &ast);

  //===--------------------------------------------------------------------===//
  // Diagnostics
  //===--------------------------------------------------------------------===//

  InFlightDiagnostic error(Location loc) {
    failedAny = true;
    return emitError(inlined(loc));
  }

  /// Inside an inlined block, `loc` (a location in the block's body) as
  /// called from the call site: `callsite(body at call)`, nested for nested
  /// calls. Diagnostics show the body's line and a `called from` note.
  Location inlined(Location loc) const {
    if (!callSite || !isa<FileLineColLoc>(loc))
      return loc;
    return CallSiteLoc::get(loc, *callSite);
  }

  //===--------------------------------------------------------------------===//
  // Expressions
  //===--------------------------------------------------------------------===//

  FailureOr<Term> eval(const Expr &expr);
  FailureOr<Value> evalTensor(const Expr &expr);
  FailureOr<Value> materialize(const Term &term, Type elementType,
                               Location loc);

  /// Builds `OpTy` with its result type from its shape function; on a shape
  /// error the op is erased and the error stands at `loc`.
  template <typename OpTy, typename... Args>
  FailureOr<Value> create(Location loc, Args &&...args) {
    loc = inlined(loc);
    // One placeholder type per result (kiln.attention also returns its
    // log-sum-exp); the value of the expression is the first result.
    Type none = builder.getNoneType();
    OpTy op;
    if constexpr (OpTy::template hasTrait<mlir::OpTrait::OneResult>())
      op = builder.create<OpTy>(loc, none, std::forward<Args>(args)...);
    else
      op = builder.create<OpTy>(loc, none, none, std::forward<Args>(args)...);
    SmallVector<Type> types;
    if (failed(inferResultTypes(op, types))) {
      failedAny = true;
      op->erase();
      return failure();
    }
    for (auto [result, type] : llvm::zip(op->getResults(), types))
      result.setType(type);
    // Check the operand types now, so that a type error stands at the
    // expression that built the op.
    if (failed(verifyOperands(op))) {
      failedAny = true;
      op->erase();
      return failure();
    }
    return op->getResult(0);
  }

  /// Verifies a new op; explains the usual failure, an operand of the wrong
  /// element type, in the language's terms.
  LogicalResult verifyOperands(Operation *op);
  /// What the user wrote for the op being built: `exp`, `+`, `mean`.
  llvm::StringRef spelling = "expression";

  FailureOr<CallArgs> bind(const CallExpr &call,
                           ArrayRef<llvm::StringRef> params, size_t required);

  //===--------------------------------------------------------------------===//
  // Builtins
  //===--------------------------------------------------------------------===//

  using Handler = FailureOr<Term> (Generator::*)(const CallExpr &);
  struct Builtin {
    llvm::StringLiteral name;
    Handler handler;
  };
  static const Builtin kBuiltins[];

  FailureOr<Term> call(const CallExpr &call);
  /// A call of a `def` block: its body inlined in a scope of its own.
  FailureOr<Term> inlineBlock(const DefAST &def, const CallExpr &call);

  /// The value of a number literal, possibly negated, a block argument bound
  /// to one, or `+ - *` of those: what option arguments accept.
  std::optional<double> literal(const Expr &expr, bool *isInteger = nullptr);
  bool isIntegerLiteral(const Expr &expr) {
    bool isInt = false;
    return literal(expr, &isInt) && isInt;
  }

  template <typename OpTy> FailureOr<Term> unary(const CallExpr &call);
  FailureOr<Term> gelu(const CallExpr &call);
  template <typename OpTy> FailureOr<Term> binary(const CallExpr &call);
  FailureOr<Term> maxOrReduceMax(const CallExpr &call);
  FailureOr<Term> matmul(const CallExpr &call);
  FailureOr<Term> transpose(const CallExpr &call);
  FailureOr<Term> reshape(const CallExpr &call);
  FailureOr<Term> flatten(const CallExpr &call);
  FailureOr<Term> broadcast(const CallExpr &call);
  template <typename OpTy> FailureOr<Term> reduce(const CallExpr &call);
  FailureOr<Term> argmax(const CallExpr &call);
  template <typename OpTy> FailureOr<Term> alongAxis(const CallExpr &call);
  template <typename OpTy> FailureOr<Term> classification(const CallExpr &call);
  FailureOr<Term> where(const CallExpr &call);
  FailureOr<Term> castTo(const CallExpr &call);
  FailureOr<Term> dropout(const CallExpr &call);
  FailureOr<Term> attention(const CallExpr &call);
  FailureOr<Term> linear(const CallExpr &call);
  FailureOr<Term> conv2d(const CallExpr &call);
  template <typename OpTy> FailureOr<Term> pool(const CallExpr &call);
  FailureOr<Term> layerNorm(const CallExpr &call);
  FailureOr<Term> embedding(const CallExpr &call);
  FailureOr<Term> initializerMisuse(const CallExpr &call);

  //===--------------------------------------------------------------------===//
  // Parameters and types
  //===--------------------------------------------------------------------===//

  FailureOr<Type> elementType(llvm::StringRef dtype, Location loc);
  FailureOr<InitializerAttr> initializer(const Expr &expr);
  /// Declares a trainable parameter; names are unique within a model.
  FailureOr<Value> param(const std::string &name, Location loc,
                         RankedTensorType type, InitializerAttr init,
                         Location initLoc);
  /// Checks that `init` can initialize a parameter of `type`; errors stand at
  /// `initLoc`, where the initializer is written.
  LogicalResult checkInitializer(InitializerAttr init, RankedTensorType type,
                                 llvm::StringRef name, Location initLoc);
  /// `name=` of a layer call, or the next automatic name `<kind><n>`.
  FailureOr<std::string> layerName(CallArgs &args, size_t slot,
                                   llvm::StringRef kind);
  FailureOr<InitializerAttr> layerInit(CallArgs &args, size_t slot,
                                       InitializerAttr otherwise);

  MLIRContext &context;
  OpBuilder builder;
  bool printedOpOnDiagnostic;
  bool failedAny = false;

private:
  void model(const ModelAST &model, ModuleOp module);
  void statement(const Stmt &stmt, func::FuncOp func);
  /// `optimizer sgd(lr=0.1, ...)`: the `kiln.optimizer` attribute.
  void optimizer(const CallExpr &call, func::FuncOp func);
  FailureOr<Value> lookup(const NameExpr &name);

  llvm::StringMap<const DefAST *> defs;
  func::FuncOp currentFunc;
  /// While a block is inlined: the blocks being inlined (innermost last),
  /// the prefix of the parameters it declares (`h0.`, `h0.attn.`) and the
  /// location of its call site.
  SmallVector<const DefAST *> activeDefs;
  std::string prefix;
  std::optional<Location> callSite;

  llvm::StringMap<Symbol> symbols;
  llvm::StringSet<> poisoned;  // names whose definition failed
  ArrayRef<StmtPtr> remaining; // the statement being lowered and those after
  llvm::StringMap<Location> paramLocs;
  llvm::StringMap<unsigned> layerCounts;
  int64_t dropoutStreams = 0;
  Operation *lastParam = nullptr;
  std::optional<Location> lossLoc;
  std::optional<Location> optimizerLoc;
  SmallVector<std::pair<Value, std::string>> outputs; // loss first
  /// The `output` statements' values and names: the predictions.
  SmallVector<std::pair<Value, std::string>> predictions;
  SmallVector<DictionaryAttr> argAttrs;
};

//===----------------------------------------------------------------------===//
// CallArgs
//===----------------------------------------------------------------------===//

FailureOr<Term> CallArgs::term(size_t i) { return gen.eval(*slots[i]); }

FailureOr<Value> CallArgs::tensor(size_t i) {
  return gen.evalTensor(*slots[i]);
}

FailureOr<int64_t> CallArgs::integer(size_t i, int64_t otherwise) {
  if (!slots[i])
    return otherwise;
  bool isInt = false;
  std::optional<double> n = gen.literal(*slots[i], &isInt);
  if (!n || !isInt) {
    gen.error(slots[i]->getLoc()) << "argument '" << names[i] << "' of '"
                                  << call.callee << "' must be an integer";
    return failure();
  }
  return static_cast<int64_t>(*n);
}

FailureOr<double> CallArgs::number(size_t i, double otherwise) {
  if (!slots[i])
    return otherwise;
  std::optional<double> n = gen.literal(*slots[i]);
  if (!n) {
    gen.error(slots[i]->getLoc()) << "argument '" << names[i] << "' of '"
                                  << call.callee << "' must be a number";
    return failure();
  }
  return *n;
}

FailureOr<bool> CallArgs::boolean(size_t i, bool otherwise) {
  if (!slots[i])
    return otherwise;
  if (const auto *b = dyn_cast<BoolExpr>(slots[i]))
    return b->value;
  gen.error(slots[i]->getLoc()) << "argument '" << names[i] << "' of '"
                                << call.callee << "' must be true or false";
  return failure();
}

FailureOr<std::string> CallArgs::string(size_t i, llvm::StringRef otherwise) {
  if (!slots[i])
    return otherwise.str();
  if (const auto *s = dyn_cast<StringExpr>(slots[i]))
    return s->value;
  gen.error(slots[i]->getLoc()) << "argument '" << names[i] << "' of '"
                                << call.callee << "' must be a string";
  return failure();
}

FailureOr<SmallVector<int64_t>>
CallArgs::integers(size_t i, ArrayRef<int64_t> otherwise) {
  if (!slots[i])
    return SmallVector<int64_t>(otherwise);
  SmallVector<int64_t> result;
  auto add = [&](const Expr &e) {
    bool isInt = false;
    std::optional<double> n = gen.literal(e, &isInt);
    if (!n || !isInt) {
      gen.error(e.getLoc())
          << "argument '" << names[i] << "' of '" << call.callee
          << "' must be an integer or a list of integers";
      return false;
    }
    result.push_back(static_cast<int64_t>(*n));
    return true;
  };
  if (const auto *list = dyn_cast<ListExpr>(slots[i])) {
    for (const ExprPtr &e : list->elements)
      if (!add(*e))
        return failure();
    return result;
  }
  if (!add(*slots[i]))
    return failure();
  return result;
}

FailureOr<CallArgs> Generator::bind(const CallExpr &call,
                                    ArrayRef<llvm::StringRef> params,
                                    size_t required) {
  CallArgs args(*this, call);
  args.names.assign(params.begin(), params.end());
  args.slots.assign(params.size(), nullptr);
  if (call.args.size() > params.size()) {
    error(call.args[params.size()]->getLoc())
        << "'" << call.callee << "' takes " << params.size() << " argument"
        << (params.size() == 1 ? "" : "s") << ", got " << call.args.size();
    return failure();
  }
  for (size_t i = 0; i < call.args.size(); ++i)
    args.slots[i] = call.args[i].get();
  for (const KeywordArg &kw : call.kwargs) {
    const auto *it = llvm::find(params, kw.name);
    if (it == params.end()) {
      auto diag = error(kw.loc)
                  << "'" << call.callee << "' has no argument named '"
                  << kw.name << "'";
      llvm::StringRef best = closestName(kw.name, params);
      if (!best.empty())
        diag << "; did you mean '" << best << "'?";
      diag.attachNote() << "its arguments are: " << llvm::join(params, ", ");
      return failure();
    }
    size_t slot = it - params.begin();
    if (args.slots[slot]) {
      error(kw.loc) << "argument '" << kw.name << "' of '" << call.callee
                    << "' is given twice";
      return failure();
    }
    args.slots[slot] = kw.value.get();
  }
  for (size_t i = 0; i < required; ++i) {
    if (!args.slots[i]) {
      error(call.getLoc()) << "'" << call.callee << "' needs argument '"
                           << params[i] << "' (" << required << " required: "
                           << llvm::join(params.take_front(required), ", ")
                           << ")";
      return failure();
    }
  }
  return args;
}

LogicalResult Generator::verifyOperands(Operation *op) {
  {
    ScopedDiagnosticHandler quiet(&context,
                                  [](Diagnostic &) { return success(); });
    if (succeeded(verify(op)))
      return success();
  }
  // The ODS operand constraints failed: name the operand types that the op
  // does not take, and how to convert them.
  for (Value operand : op->getOperands()) {
    Type element = cast<RankedTensorType>(operand.getType()).getElementType();
    if (isa<FloatType>(element))
      continue;
    bool isBool = element.isInteger(1);
    error(op->getLoc()) << "'" << spelling << "' does not take "
                        << (isBool ? "bool" : "integer") << " tensors, got "
                        << typeText(operand.getType())
                        << "; convert it with cast(x, \"f32\")";
    return failure();
  }
  // Anything else is a bug in a builtin; let the verifier say what it is.
  failedAny = true;
  return verify(op);
}

//===----------------------------------------------------------------------===//
// Models and statements
//===----------------------------------------------------------------------===//

OwningOpRef<ModuleOp> Generator::generate(const ModuleAST &ast) {
  OwningOpRef<ModuleOp> module = ModuleOp::create(builder.getUnknownLoc());
  std::vector<llvm::StringRef> builtins = builtinNames();
  for (const DefAST &d : ast.defs) {
    if (llvm::is_contained(builtins, d.name)) {
      error(d.nameLoc) << "'" << d.name
                       << "' is a builtin function; a block cannot redefine it";
      continue;
    }
    auto [it, inserted] = defs.try_emplace(d.name, &d);
    if (!inserted) {
      auto diag = error(d.nameLoc)
                  << "block '" << d.name << "' is already defined";
      diag.attachNote(it->second->nameLoc) << "previous definition is here";
      continue;
    }
    for (const DefArgAST &arg : d.args)
      if (arg.name == "name")
        error(arg.loc) << "a block cannot take an argument 'name': every "
                          "block call takes name= for the names of its "
                          "parameters";
  }
  llvm::StringMap<Location> modelLocs;
  for (const ModelAST &m : ast.models) {
    auto [it, inserted] = modelLocs.try_emplace(m.name, m.loc);
    if (!inserted) {
      error(m.loc) << "model '" << m.name << "' is already defined";
      continue;
    }
    model(m, *module);
  }
  if (failedAny)
    return nullptr;
  if (failed(verify(*module)))
    return nullptr;
  return module;
}

void Generator::model(const ModelAST &ast, ModuleOp module) {
  symbols.clear();
  poisoned.clear();
  paramLocs.clear();
  layerCounts.clear();
  dropoutStreams = 0;
  lastParam = nullptr;
  lossLoc.reset();
  optimizerLoc.reset();
  outputs.clear();
  predictions.clear();
  argAttrs.clear();

  builder.setInsertionPointToEnd(module.getBody());
  auto func = builder.create<func::FuncOp>(ast.loc, ast.name,
                                           builder.getFunctionType({}, {}));
  func->setAttr(attrs::model, builder.getUnitAttr());
  Block *entry = func.addEntryBlock();
  builder.setInsertionPointToEnd(entry);
  currentFunc = func;

  for (auto [i, stmt] : llvm::enumerate(ast.body)) {
    remaining = ArrayRef<StmtPtr>(ast.body).drop_front(i);
    statement(*stmt, func);
  }
  remaining = {};

  if (!lossLoc) {
    if (!failedAny)
      error(ast.loc) << "model '" << ast.name
                     << "' has no loss; name one with 'loss = ...'";
    failedAny = true;
    return;
  }
  SmallVector<Value> results;
  SmallVector<DictionaryAttr> resultAttrs;
  for (auto [i, output] : llvm::enumerate(outputs)) {
    results.push_back(output.first);
    resultAttrs.push_back(builder.getDictionaryAttr(
        {builder.getNamedAttr(attrs::name,
                              builder.getStringAttr(output.second)),
         builder.getNamedAttr(
             attrs::role, builder.getStringAttr(i == 0 ? "loss" : "metric"))}));
  }
  // The predictions follow the loss and the metrics.
  for (auto &[value, name] : predictions) {
    results.push_back(value);
    resultAttrs.push_back(builder.getDictionaryAttr(
        {builder.getNamedAttr(attrs::name, builder.getStringAttr(name)),
         builder.getNamedAttr(attrs::role, builder.getStringAttr("output"))}));
  }
  builder.create<func::ReturnOp>(ast.loc, results);
  func.setType(builder.getFunctionType(entry->getArgumentTypes(),
                                       ValueRange(results).getTypes()));
  func.setAllArgAttrs(argAttrs);
  func.setAllResultAttrs(resultAttrs);
}

FailureOr<Type> Generator::elementType(llvm::StringRef dtype, Location loc) {
  Type type = llvm::StringSwitch<Type>(dtype)
                  .Case("f16", builder.getF16Type())
                  .Case("bf16", builder.getBF16Type())
                  .Case("f32", builder.getF32Type())
                  .Case("f64", builder.getF64Type())
                  .Case("i32", builder.getI32Type())
                  .Case("i64", builder.getI64Type())
                  .Case("bool", builder.getI1Type())
                  .Default(Type());
  if (!type) {
    error(loc) << "unknown element type '" << dtype
               << "'; expected f16, bf16, f32, f64, i32, i64 or bool";
    return failure();
  }
  return type;
}

void Generator::statement(const Stmt &stmt, func::FuncOp func) {
  // A name must not be defined twice as an input or parameter, nor may an
  // assignment overwrite one.
  auto checkFresh = [&](bool allowRebinding) {
    auto it = symbols.find(stmt.name);
    if (it == symbols.end())
      return true;
    bool rebinding = (it->second.kind == Symbol::Kind::Value ||
                      it->second.kind == Symbol::Kind::Number) &&
                     allowRebinding;
    if (rebinding)
      return true;
    const char *what = it->second.kind == Symbol::Kind::Input   ? "an input"
                       : it->second.kind == Symbol::Kind::Param ? "a parameter"
                                                                : "a value";
    auto diag = error(stmt.nameLoc)
                << "'" << stmt.name << "' is already defined as " << what;
    diag.attachNote(it->second.loc) << "previous definition is here";
    return false;
  };

  if (const auto *input = dyn_cast<InputStmt>(&stmt)) {
    if (!checkFresh(false))
      return;
    FailureOr<Type> element = elementType(input->type.dtype, input->type.loc);
    if (failed(element)) {
      poisoned.insert(stmt.name);
      return;
    }
    SmallVector<int64_t> shape;
    SmallVector<Attribute> dimNames;
    bool symbolic = false;
    for (const DimAST &d : input->type.dims) {
      if (!d.symbol.empty()) {
        shape.push_back(ShapedType::kDynamic);
        dimNames.push_back(builder.getStringAttr(d.symbol));
        symbolic = true;
        continue;
      }
      if (d.size <= 0) {
        error(d.loc) << "dimension sizes must be positive, got " << d.size;
        poisoned.insert(stmt.name);
        return;
      }
      shape.push_back(d.size);
      dimNames.push_back(builder.getStringAttr(""));
    }
    Value arg = func.getBody().front().addArgument(
        RankedTensorType::get(shape, *element), stmt.getLoc());
    SmallVector<NamedAttribute> argAttr = {
        builder.getNamedAttr(attrs::name, builder.getStringAttr(stmt.name))};
    if (symbolic)
      argAttr.push_back(builder.getNamedAttr(attrs::dimNames,
                                             builder.getArrayAttr(dimNames)));
    argAttrs.push_back(builder.getDictionaryAttr(argAttr));
    symbols.insert_or_assign(stmt.name,
                             Symbol{arg, Symbol::Kind::Input, stmt.nameLoc});
    return;
  }

  if (const auto *p = dyn_cast<ParamStmt>(&stmt)) {
    if (!checkFresh(false))
      return;
    auto poison = llvm::make_scope_exit([&] {
      if (!symbols.count(stmt.name))
        poisoned.insert(stmt.name);
    });
    FailureOr<Type> element = elementType(p->type.dtype, p->type.loc);
    if (failed(element))
      return;
    if (!isa<FloatType>(*element)) {
      error(p->type.loc) << "parameter '" << stmt.name
                         << "' must have a float element type, got "
                         << p->type.dtype;
      return;
    }
    SmallVector<int64_t> shape;
    for (const DimAST &d : p->type.dims) {
      if (!d.symbol.empty()) {
        error(d.loc) << "parameter '" << stmt.name << "' needs fixed sizes; '"
                     << d.symbol << "' is symbolic";
        return;
      }
      if (d.size <= 0) {
        error(d.loc) << "dimension sizes must be positive, got " << d.size;
        return;
      }
      shape.push_back(d.size);
    }
    if (!p->init) {
      error(stmt.nameLoc) << "parameter '" << stmt.name
                          << "' needs an initializer, such as "
                             "'= normal(std=0.01)' or '= zeros()'";
      return;
    }
    FailureOr<InitializerAttr> init = initializer(*p->init);
    if (failed(init))
      return;
    FailureOr<Value> value =
        param(stmt.name, stmt.nameLoc, RankedTensorType::get(shape, *element),
              *init, p->init->getLoc());
    if (failed(value))
      return;
    symbols.insert_or_assign(stmt.name,
                             Symbol{*value, Symbol::Kind::Param, stmt.nameLoc});
    return;
  }

  const auto &valueStmt = cast<ValueStmt>(stmt);
  if (stmt.getKind() == Stmt::Kind::Optimizer) {
    optimizer(cast<CallExpr>(*valueStmt.value), func);
    return;
  }
  if (stmt.getKind() == Stmt::Kind::Loss && lossLoc) {
    auto diag = error(stmt.getLoc()) << "a model has one loss";
    diag.attachNote(*lossLoc) << "the loss is already defined here";
    return;
  }
  if (stmt.getKind() == Stmt::Kind::Metric) {
    for (auto &[value, name] : outputs)
      if (name == stmt.name) {
        error(stmt.nameLoc)
            << "metric '" << stmt.name << "' is already defined";
        return;
      }
  }
  if (stmt.getKind() == Stmt::Kind::Output) {
    for (auto &[value, name] : predictions)
      if (name == stmt.name) {
        error(stmt.nameLoc)
            << "output '" << stmt.name << "' is already defined";
        return;
      }
  }
  // An output may name the value it returns (`output logits = logits`).
  if (!checkFresh(stmt.getKind() == Stmt::Kind::Assign ||
                  stmt.getKind() == Stmt::Kind::Output))
    return;
  FailureOr<Value> value = evalTensor(*valueStmt.value);
  if (failed(value)) {
    poisoned.insert(stmt.name);
    symbols.erase(stmt.name);
    return;
  }
  poisoned.erase(stmt.name);
  symbols.insert_or_assign(stmt.name,
                           Symbol{*value, Symbol::Kind::Value, stmt.nameLoc});
  if (stmt.getKind() == Stmt::Kind::Assign)
    return;
  if (stmt.getKind() == Stmt::Kind::Output) {
    predictions.push_back({*value, stmt.name});
    return;
  }

  auto type = cast<RankedTensorType>(value->getType());
  const char *what =
      stmt.getKind() == Stmt::Kind::Loss ? "the loss" : "a metric";
  if (type.getRank() != 0 || !isa<FloatType>(type.getElementType())) {
    error(valueStmt.value->getLoc())
        << what << " must be a float scalar, got " << typeText(type)
        << (type.getRank() != 0 ? "; reduce it with mean(...) or sum(...)"
                                : "");
    return;
  }
  if (stmt.getKind() == Stmt::Kind::Loss) {
    lossLoc = stmt.getLoc();
    outputs.insert(outputs.begin(), {*value, "loss"});
  } else {
    outputs.push_back({*value, stmt.name});
  }
}

void Generator::optimizer(const CallExpr &call, func::FuncOp func) {
  if (optimizerLoc) {
    auto diag = error(call.getLoc()) << "a model has one optimizer";
    diag.attachNote(*optimizerLoc) << "the optimizer is already defined here";
    return;
  }
  optimizerLoc = call.getLoc();
  // The keywords each optimizer takes, besides the schedule's and clipping.
  static const llvm::StringLiteral common[] = {
      "lr",        "weight_decay", "schedule", "warmup",   "total_steps",
      "step_size", "gamma",        "min_lr",   "clip_norm"};
  static const llvm::StringLiteral sgd[] = {"momentum", "nesterov"};
  static const llvm::StringLiteral adam[] = {"beta1", "beta2", "eps"};
  llvm::StringRef kind = call.callee;
  if (kind != "sgd" && kind != "adam" && kind != "adamw") {
    error(call.getLoc()) << "unknown optimizer '" << kind
                         << "'; expected sgd, adam or adamw";
    return;
  }
  SmallVector<llvm::StringRef> params(std::begin(common), std::end(common));
  if (kind == "sgd")
    params.append(std::begin(sgd), std::end(sgd));
  else
    params.append(std::begin(adam), std::end(adam));
  if (!call.args.empty()) {
    error(call.args.front()->getLoc())
        << "optimizer arguments are named, e.g. '" << kind << "(lr=0.1)'";
    return;
  }
  FailureOr<CallArgs> args = bind(call, params, 0);
  if (failed(args))
    return;
  SmallVector<NamedAttribute> entries = {
      builder.getNamedAttr("kind", builder.getStringAttr(kind))};
  for (auto [i, name] : llvm::enumerate(params)) {
    if (!args->has(i))
      continue;
    Attribute value;
    if (name == "nesterov") {
      FailureOr<bool> b = args->boolean(i, false);
      if (failed(b))
        return;
      value = builder.getBoolAttr(*b);
    } else if (name == "schedule") {
      FailureOr<std::string> s = args->string(i, "constant");
      if (failed(s))
        return;
      if (*s != "constant" && *s != "step" && *s != "cosine") {
        error(args->loc(i)) << "unknown schedule \"" << *s
                            << "\"; expected \"constant\", \"step\" or "
                               "\"cosine\"";
        return;
      }
      value = builder.getStringAttr(*s);
    } else if (name == "warmup" || name == "total_steps" ||
               name == "step_size") {
      FailureOr<int64_t> n = args->integer(i, 0);
      if (failed(n))
        return;
      if (*n < 0) {
        error(args->loc(i)) << "'" << name << "' must not be negative";
        return;
      }
      value = builder.getI64IntegerAttr(*n);
    } else {
      FailureOr<double> x = args->number(i, 0.0);
      if (failed(x))
        return;
      if (*x < 0 || (name == "lr" && *x == 0)) {
        error(args->loc(i)) << "'" << name << "' must be "
                            << (name == "lr" ? "positive" : "non-negative");
        return;
      }
      value = builder.getF64FloatAttr(*x);
    }
    entries.push_back(builder.getNamedAttr(name, value));
  }
  func->setAttr(attrs::optimizer, builder.getDictionaryAttr(entries));
}

//===----------------------------------------------------------------------===//
// Expressions
//===----------------------------------------------------------------------===//

FailureOr<Value> Generator::lookup(const NameExpr &name) {
  auto it = symbols.find(name.name);
  if (it != symbols.end())
    return it->second.value;
  if (poisoned.contains(name.name)) {
    failedAny = true; // already explained where it was defined
    return failure();
  }
  // A name the model defines further down is an ordering mistake, not a typo.
  for (const StmtPtr &later : remaining) {
    if (later->name != name.name)
      continue;
    auto diag = error(name.getLoc())
                << "'" << name.name << "' is used before it is defined";
    diag.attachNote(later->nameLoc) << "'" << name.name << "' is defined here";
    return failure();
  }
  auto diag = error(name.getLoc())
              << "use of undefined name '" << name.name << "'";
  std::vector<llvm::StringRef> defined;
  for (const auto &entry : symbols)
    defined.push_back(entry.getKey());
  llvm::sort(defined); // a deterministic choice among equally close names
  llvm::StringRef best = closestName(name.name, defined);
  if (!best.empty())
    diag << "; did you mean '" << best << "'?";
  return failure();
}

FailureOr<Value> Generator::materialize(const Term &term, Type elementType,
                                        Location loc) {
  if (!term.isNumber())
    return term.tensor;
  auto type = RankedTensorType::get({}, elementType);
  Attribute value;
  if (isa<FloatType>(elementType)) {
    value = builder.getFloatAttr(elementType, term.number);
  } else if (term.isInteger) {
    value =
        builder.getIntegerAttr(elementType, static_cast<int64_t>(term.number));
  } else {
    error(loc) << "the number " << formatNumber(term.number)
               << " cannot be used with a tensor of " << elementType;
    return failure();
  }
  return create<ConstantOp>(loc, DenseElementsAttr::get(type, value));
}

FailureOr<Value> Generator::evalTensor(const Expr &expr) {
  FailureOr<Term> term = eval(expr);
  if (failed(term))
    return failure();
  return materialize(*term, builder.getF32Type(), expr.getLoc());
}

FailureOr<Term> Generator::eval(const Expr &expr) {
  Location loc = expr.getLoc();
  switch (expr.getKind()) {
  case Expr::Kind::Integer:
    return Term::literal(static_cast<double>(cast<IntegerExpr>(expr).value),
                         true);
  case Expr::Kind::Float:
    return Term::literal(cast<FloatExpr>(expr).value, false);
  case Expr::Kind::Bool:
  case Expr::Kind::String:
  case Expr::Kind::List:
    error(loc) << (expr.getKind() == Expr::Kind::List     ? "a list"
                   : expr.getKind() == Expr::Kind::String ? "a string"
                                                          : "a boolean")
               << " is not a tensor; it can only be an argument such as a "
                  "shape or an option";
    return failure();
  case Expr::Kind::Name: {
    auto it = symbols.find(cast<NameExpr>(expr).name);
    if (it != symbols.end() && it->second.kind == Symbol::Kind::Number)
      return Term::literal(it->second.number, it->second.isInteger);
    FailureOr<Value> value = lookup(cast<NameExpr>(expr));
    if (failed(value))
      return failure();
    return Term::of(*value);
  }
  case Expr::Kind::Call:
    return call(cast<CallExpr>(expr));
  case Expr::Kind::Unary: {
    FailureOr<Term> operand = eval(*cast<UnaryExpr>(expr).operand);
    if (failed(operand))
      return failure();
    if (operand->isNumber())
      return Term::literal(-operand->number, operand->isInteger);
    llvm::SaveAndRestore<llvm::StringRef> named(spelling, "-");
    FailureOr<Value> result = create<NegOp>(loc, operand->tensor);
    if (failed(result))
      return failure();
    return Term::of(*result);
  }
  case Expr::Kind::Binary:
    break;
  }

  const auto &binary = cast<BinaryExpr>(expr);
  FailureOr<Term> lhs = eval(*binary.lhs);
  FailureOr<Term> rhs = eval(*binary.rhs);
  if (failed(lhs) || failed(rhs))
    return failure();
  llvm::StringRef op = binary.op;

  // Two numbers fold now, with Python's semantics.
  if (lhs->isNumber() && rhs->isNumber()) {
    double a = lhs->number, b = rhs->number;
    bool ints = lhs->isInteger && rhs->isInteger;
    if (op == "+")
      return Term::literal(a + b, ints);
    if (op == "-")
      return Term::literal(a - b, ints);
    if (op == "*")
      return Term::literal(a * b, ints);
    if (op == "/") {
      if (b == 0) {
        error(loc) << "division by zero";
        return failure();
      }
      return Term::literal(a / b, false);
    }
    if (op == "**")
      return Term::literal(std::pow(a, b), ints && b >= 0);
    error(loc) << "'" << op << "' needs a tensor operand";
    return failure();
  }

  llvm::SaveAndRestore<llvm::StringRef> named(spelling, op);
  // A number takes the element type of the tensor it meets.
  Type element = cast<RankedTensorType>(
                     (lhs->isNumber() ? rhs->tensor : lhs->tensor).getType())
                     .getElementType();
  FailureOr<Value> a = materialize(*lhs, element, binary.lhs->getLoc());
  FailureOr<Value> b = materialize(*rhs, element, binary.rhs->getLoc());
  if (failed(a) || failed(b))
    return failure();

  FailureOr<Value> result = failure();
  if (op == "+")
    result = create<AddOp>(loc, *a, *b);
  else if (op == "-")
    result = create<SubOp>(loc, *a, *b);
  else if (op == "*")
    result = create<MulOp>(loc, *a, *b);
  else if (op == "/")
    result = create<DivOp>(loc, *a, *b);
  else if (op == "**")
    result = create<PowOp>(loc, *a, *b);
  else if (op == "@")
    result = create<MatmulOp>(loc, *a, *b, UnitAttr(), UnitAttr());
  else {
    CmpPredicate predicate = llvm::StringSwitch<CmpPredicate>(op)
                                 .Case("<", CmpPredicate::lt)
                                 .Case("<=", CmpPredicate::le)
                                 .Case(">", CmpPredicate::gt)
                                 .Case(">=", CmpPredicate::ge)
                                 .Case("==", CmpPredicate::eq)
                                 .Default(CmpPredicate::ne);
    result =
        create<CmpOp>(loc, CmpPredicateAttr::get(&context, predicate), *a, *b);
  }
  if (failed(result))
    return failure();
  return Term::of(*result);
}

//===----------------------------------------------------------------------===//
// Builtins: the one table of every function the language knows.
//===----------------------------------------------------------------------===//

const Generator::Builtin Generator::kBuiltins[] = {
    // Elementwise math.
    {"neg", &Generator::unary<NegOp>},
    {"abs", &Generator::unary<AbsOp>},
    {"exp", &Generator::unary<ExpOp>},
    {"log", &Generator::unary<LogOp>},
    {"tanh", &Generator::unary<TanhOp>},
    {"sigmoid", &Generator::unary<SigmoidOp>},
    {"relu", &Generator::unary<ReluOp>},
    {"sqrt", &Generator::unary<SqrtOp>},
    {"rsqrt", &Generator::unary<RsqrtOp>},
    {"gelu", &Generator::gelu},
    {"pow", &Generator::binary<PowOp>},
    {"maximum", &Generator::binary<MaxOp>},
    {"minimum", &Generator::binary<MinOp>},
    {"max", &Generator::maxOrReduceMax},
    {"where", &Generator::where},
    {"cast", &Generator::castTo},
    // Linear algebra and layout.
    {"matmul", &Generator::matmul},
    {"transpose", &Generator::transpose},
    {"reshape", &Generator::reshape},
    {"flatten", &Generator::flatten},
    {"broadcast", &Generator::broadcast},
    // Reductions.
    {"sum", &Generator::reduce<ReduceSumOp>},
    {"mean", &Generator::reduce<ReduceMeanOp>},
    {"argmax", &Generator::argmax},
    // Normalization and losses.
    {"softmax", &Generator::alongAxis<SoftmaxOp>},
    {"log_softmax", &Generator::alongAxis<LogSoftmaxOp>},
    {"cross_entropy", &Generator::classification<CrossEntropyOp>},
    {"accuracy", &Generator::classification<AccuracyOp>},
    {"dropout", &Generator::dropout},
    {"scaled_dot_product_attention", &Generator::attention},
    // Layers (declare their parameters) and their functional forms.
    {"linear", &Generator::linear},
    {"conv2d", &Generator::conv2d},
    {"max_pool2d", &Generator::pool<MaxPool2dOp>},
    {"avg_pool2d", &Generator::pool<AvgPool2dOp>},
    {"layer_norm", &Generator::layerNorm},
    {"embedding", &Generator::embedding},
    // Initializers: only valid after `param NAME: TYPE =` and as `*_init=`.
    {"zeros", &Generator::initializerMisuse},
    {"ones", &Generator::initializerMisuse},
    {"constant", &Generator::initializerMisuse},
    {"normal", &Generator::initializerMisuse},
    {"uniform", &Generator::initializerMisuse},
    {"kaiming_uniform", &Generator::initializerMisuse},
    {"kaiming_normal", &Generator::initializerMisuse},
    {"xavier_uniform", &Generator::initializerMisuse},
    {"xavier_normal", &Generator::initializerMisuse},
};

FailureOr<Term> Generator::call(const CallExpr &call) {
  for (const Builtin &builtin : kBuiltins) {
    if (builtin.name != call.callee)
      continue;
    llvm::SaveAndRestore<llvm::StringRef> named(spelling, builtin.name);
    return (this->*builtin.handler)(call);
  }
  if (const DefAST *def = defs.lookup(call.callee))
    return inlineBlock(*def, call);
  auto diag = error(call.getLoc())
              << "unknown function '" << call.callee << "'";
  std::vector<llvm::StringRef> names = builtinNames();
  std::vector<llvm::StringRef> blocks;
  for (const auto &entry : defs)
    blocks.push_back(entry.getKey());
  llvm::sort(blocks); // a deterministic choice among equally close names
  llvm::append_range(names, blocks);
  llvm::StringRef best = closestName(call.callee, names);
  if (!best.empty())
    diag << "; did you mean '" << best << "'?";
  return failure();
}

FailureOr<Term> Generator::inlineBlock(const DefAST &def,
                                       const CallExpr &call) {
  if (llvm::is_contained(activeDefs, &def)) {
    auto diag = error(call.getLoc())
                << "block '" << def.name << "' calls itself; blocks are "
                << "inlined, so they cannot be recursive";
    diag.attachNote(def.nameLoc)
        << "block '" << def.name << "' is defined here";
    return failure();
  }
  // Arguments: the block's, by position or keyword, then `name`.
  if (call.args.size() > def.args.size()) {
    error(call.args[def.args.size()]->getLoc())
        << "block '" << def.name << "' takes " << def.args.size() << " argument"
        << (def.args.size() == 1 ? "" : "s") << ", got " << call.args.size();
    return failure();
  }
  SmallVector<llvm::StringRef> params;
  for (const DefArgAST &arg : def.args)
    params.push_back(arg.name);
  params.push_back("name");
  FailureOr<CallArgs> args = bind(call, params, def.args.size());
  if (failed(args))
    return failure();
  // Tensors and numbers are evaluated in the caller's scope.
  SmallVector<Term> values;
  for (size_t i = 0; i < def.args.size(); ++i) {
    FailureOr<Term> value = args->term(i);
    if (failed(value))
      return failure();
    values.push_back(*value);
  }
  FailureOr<std::string> name = layerName(*args, def.args.size(), def.name);
  if (failed(name))
    return failure();

  // The body runs in a scope of its own: it sees its arguments only, and
  // counts automatic layer names afresh (`h0.linear0`, `h1.linear0`).
  Location site = inlined(call.getLoc());
  auto restore = llvm::make_scope_exit(
      [&, savedSymbols = std::move(symbols),
       savedPoisoned = std::move(poisoned), savedRemaining = remaining,
       savedCounts = std::move(layerCounts), savedPrefix = prefix,
       savedSite = callSite]() mutable {
        symbols = std::move(savedSymbols);
        poisoned = std::move(savedPoisoned);
        remaining = savedRemaining;
        layerCounts = std::move(savedCounts);
        prefix = std::move(savedPrefix);
        callSite = savedSite;
        activeDefs.pop_back();
      });
  symbols.clear();
  poisoned.clear();
  layerCounts.clear();
  prefix += *name + ".";
  callSite = site;
  activeDefs.push_back(&def);
  for (auto [arg, value] : llvm::zip(def.args, values)) {
    Symbol symbol{value.tensor, Symbol::Kind::Value, arg.loc};
    if (value.isNumber()) {
      symbol.kind = Symbol::Kind::Number;
      symbol.number = value.number;
      symbol.isInteger = value.isInteger;
    }
    symbols.insert_or_assign(arg.name, symbol);
  }
  ArrayRef<StmtPtr> body(def.body);
  for (size_t i = 0; i + 1 < body.size(); ++i) {
    remaining = body.drop_front(i);
    statement(*body[i], currentFunc);
  }
  remaining = body.take_back();
  return eval(*cast<ValueStmt>(*body.back()).value);
}

std::optional<double> Generator::literal(const Expr &expr, bool *isInteger) {
  if (const auto *name = dyn_cast<NameExpr>(&expr)) {
    auto it = symbols.find(name->name);
    if (it == symbols.end() || it->second.kind != Symbol::Kind::Number)
      return std::nullopt;
    if (isInteger)
      *isInteger = it->second.isInteger;
    return it->second.number;
  }
  if (const auto *u = dyn_cast<UnaryExpr>(&expr)) {
    if (std::optional<double> inner = literal(*u->operand, isInteger))
      return -*inner;
    return std::nullopt;
  }
  if (const auto *b = dyn_cast<BinaryExpr>(&expr)) {
    bool lhsInt = false, rhsInt = false;
    std::optional<double> lhs = literal(*b->lhs, &lhsInt);
    std::optional<double> rhs = literal(*b->rhs, &rhsInt);
    if (!lhs || !rhs || (b->op != "+" && b->op != "-" && b->op != "*"))
      return std::nullopt;
    if (isInteger)
      *isInteger = lhsInt && rhsInt;
    return b->op == "+"   ? *lhs + *rhs
           : b->op == "-" ? *lhs - *rhs
                          : *lhs * *rhs;
  }
  return literalNumber(expr, isInteger);
}

/// Wraps a built value as a Term.
static FailureOr<Term> wrap(FailureOr<Value> value) {
  if (failed(value))
    return failure();
  return Term::of(*value);
}

template <typename OpTy>
FailureOr<Term> Generator::unary(const CallExpr &call) {
  FailureOr<CallArgs> args = bind(call, {"x"}, 1);
  if (failed(args))
    return failure();
  FailureOr<Value> x = args->tensor(0);
  if (failed(x))
    return failure();
  return wrap(create<OpTy>(call.getLoc(), *x));
}

FailureOr<Term> Generator::gelu(const CallExpr &call) {
  FailureOr<CallArgs> args = bind(call, {"x", "approximate"}, 1);
  if (failed(args))
    return failure();
  FailureOr<Value> x = args->tensor(0);
  FailureOr<std::string> approximate = args->string(1, "none");
  if (failed(x) || failed(approximate))
    return failure();
  std::optional<GeluApproximation> mode =
      symbolizeGeluApproximation(*approximate);
  if (!mode) {
    error(args->loc(1)) << "'approximate' of 'gelu' must be \"none\" or "
                           "\"tanh\", got \""
                        << *approximate << "\"";
    return failure();
  }
  return wrap(create<GeluOp>(call.getLoc(), *x,
                             GeluApproximationAttr::get(&context, *mode)));
}

template <typename OpTy>
FailureOr<Term> Generator::binary(const CallExpr &call) {
  FailureOr<CallArgs> args = bind(call, {"x", "y"}, 2);
  if (failed(args))
    return failure();
  FailureOr<Term> x = args->term(0), y = args->term(1);
  if (failed(x) || failed(y))
    return failure();
  Value any = x->isNumber() ? y->tensor : x->tensor;
  Type element = any ? cast<RankedTensorType>(any.getType()).getElementType()
                     : builder.getF32Type();
  FailureOr<Value> a = materialize(*x, element, args->loc(0));
  FailureOr<Value> b = materialize(*y, element, args->loc(1));
  if (failed(a) || failed(b))
    return failure();
  return wrap(create<OpTy>(call.getLoc(), *a, *b));
}

FailureOr<Term> Generator::maxOrReduceMax(const CallExpr &call) {
  // max(a, b) is elementwise; max(x, axis=...) reduces.
  if (call.args.size() == 2 && call.kwargs.empty())
    return binary<MaxOp>(call);
  return reduce<ReduceMaxOp>(call);
}

FailureOr<Term> Generator::where(const CallExpr &call) {
  FailureOr<CallArgs> args = bind(call, {"condition", "x", "y"}, 3);
  if (failed(args))
    return failure();
  FailureOr<Value> c = args->tensor(0);
  FailureOr<Term> x = args->term(1), y = args->term(2);
  if (failed(c) || failed(x) || failed(y))
    return failure();
  if (!cast<RankedTensorType>(c->getType()).getElementType().isInteger(1)) {
    error(args->loc(0)) << "the condition of 'where' must be a bool tensor, "
                           "such as 'x > 0', got "
                        << typeText(c->getType());
    return failure();
  }
  Value any = x->isNumber() ? y->tensor : x->tensor;
  Type element = any ? cast<RankedTensorType>(any.getType()).getElementType()
                     : builder.getF32Type();
  FailureOr<Value> a = materialize(*x, element, args->loc(1));
  FailureOr<Value> b = materialize(*y, element, args->loc(2));
  if (failed(a) || failed(b))
    return failure();
  return wrap(create<SelectOp>(call.getLoc(), *c, *a, *b));
}

FailureOr<Term> Generator::castTo(const CallExpr &call) {
  FailureOr<CallArgs> args = bind(call, {"x", "dtype"}, 2);
  if (failed(args))
    return failure();
  FailureOr<Value> x = args->tensor(0);
  FailureOr<std::string> dtype = args->string(1, "");
  if (failed(x) || failed(dtype))
    return failure();
  FailureOr<Type> element = elementType(*dtype, args->loc(1));
  if (failed(element))
    return failure();
  return wrap(create<CastOp>(call.getLoc(), *x, TypeAttr::get(*element)));
}

FailureOr<Term> Generator::matmul(const CallExpr &call) {
  FailureOr<CallArgs> args = bind(call, {"x", "y"}, 2);
  if (failed(args))
    return failure();
  FailureOr<Value> a = args->tensor(0), b = args->tensor(1);
  if (failed(a) || failed(b))
    return failure();
  return wrap(create<MatmulOp>(call.getLoc(), *a, *b, UnitAttr(), UnitAttr()));
}

FailureOr<Term> Generator::transpose(const CallExpr &call) {
  FailureOr<CallArgs> args = bind(call, {"x", "permutation"}, 1);
  if (failed(args))
    return failure();
  FailureOr<Value> x = args->tensor(0);
  if (failed(x))
    return failure();
  // Without a permutation: swap the last two dimensions.
  int64_t rank = cast<RankedTensorType>(x->getType()).getRank();
  SmallVector<int64_t> swap;
  for (int64_t i = 0; i < rank; ++i)
    swap.push_back(i);
  if (rank >= 2)
    std::swap(swap[rank - 1], swap[rank - 2]);
  FailureOr<SmallVector<int64_t>> perm = args->integers(1, swap);
  if (failed(perm))
    return failure();
  return wrap(create<TransposeOp>(call.getLoc(), *x,
                                  builder.getDenseI64ArrayAttr(*perm)));
}

FailureOr<Term> Generator::reshape(const CallExpr &call) {
  FailureOr<CallArgs> args = bind(call, {"x", "shape"}, 2);
  if (failed(args))
    return failure();
  FailureOr<Value> x = args->tensor(0);
  FailureOr<SmallVector<int64_t>> shape = args->integers(1, {});
  if (failed(x) || failed(shape))
    return failure();
  return wrap(create<ReshapeOp>(call.getLoc(), *x,
                                builder.getDenseI64ArrayAttr(*shape)));
}

FailureOr<Term> Generator::flatten(const CallExpr &call) {
  FailureOr<CallArgs> args = bind(call, {"x"}, 1);
  if (failed(args))
    return failure();
  FailureOr<Value> x = args->tensor(0);
  if (failed(x))
    return failure();
  // Keeps the first (batch) dimension and flattens the rest.
  auto type = cast<RankedTensorType>(x->getType());
  if (type.getRank() < 1) {
    error(call.getLoc()) << "'flatten' needs a tensor of rank at least 1";
    return failure();
  }
  int64_t rest = 1;
  for (int64_t d : type.getShape().drop_front()) {
    if (ShapedType::isDynamic(d)) {
      error(call.getLoc()) << "'flatten' needs fixed sizes after the first "
                              "dimension, got "
                           << typeText(type);
      return failure();
    }
    rest *= d;
  }
  return wrap(create<ReshapeOp>(call.getLoc(), *x,
                                builder.getDenseI64ArrayAttr({-1, rest})));
}

FailureOr<Term> Generator::broadcast(const CallExpr &call) {
  FailureOr<CallArgs> args = bind(call, {"x", "like"}, 2);
  if (failed(args))
    return failure();
  FailureOr<Value> x = args->tensor(0), like = args->tensor(1);
  if (failed(x) || failed(like))
    return failure();
  return wrap(create<BroadcastOp>(call.getLoc(), *x, *like));
}

template <typename OpTy>
FailureOr<Term> Generator::reduce(const CallExpr &call) {
  FailureOr<CallArgs> args = bind(call, {"x", "axis", "keepdims"}, 1);
  if (failed(args))
    return failure();
  FailureOr<Value> x = args->tensor(0);
  FailureOr<SmallVector<int64_t>> axes = args->integers(1, {});
  FailureOr<bool> keepdims = args->boolean(2, false);
  if (failed(x) || failed(axes) || failed(keepdims))
    return failure();
  return wrap(create<OpTy>(call.getLoc(), *x,
                           builder.getDenseI64ArrayAttr(*axes),
                           *keepdims ? builder.getUnitAttr() : UnitAttr()));
}

FailureOr<Term> Generator::argmax(const CallExpr &call) {
  FailureOr<CallArgs> args = bind(call, {"x", "axis", "keepdims"}, 1);
  if (failed(args))
    return failure();
  FailureOr<Value> x = args->tensor(0);
  FailureOr<int64_t> axis = args->integer(1, -1);
  FailureOr<bool> keepdims = args->boolean(2, false);
  if (failed(x) || failed(axis) || failed(keepdims))
    return failure();
  return wrap(create<ArgmaxOp>(call.getLoc(), *x,
                               builder.getI64IntegerAttr(*axis),
                               *keepdims ? builder.getUnitAttr() : UnitAttr()));
}

template <typename OpTy>
FailureOr<Term> Generator::alongAxis(const CallExpr &call) {
  FailureOr<CallArgs> args = bind(call, {"x", "axis"}, 1);
  if (failed(args))
    return failure();
  FailureOr<Value> x = args->tensor(0);
  FailureOr<int64_t> axis = args->integer(1, -1);
  if (failed(x) || failed(axis))
    return failure();
  return wrap(
      create<OpTy>(call.getLoc(), *x, builder.getI64IntegerAttr(*axis)));
}

template <typename OpTy>
FailureOr<Term> Generator::classification(const CallExpr &call) {
  FailureOr<CallArgs> args = bind(call, {"logits", "labels"}, 2);
  if (failed(args))
    return failure();
  FailureOr<Value> logits = args->tensor(0), labels = args->tensor(1);
  if (failed(logits) || failed(labels))
    return failure();
  if (!isa<IntegerType>(
          cast<RankedTensorType>(labels->getType()).getElementType()) ||
      cast<RankedTensorType>(labels->getType()).getElementType().isInteger(1)) {
    error(args->loc(1)) << "labels of '" << call.callee
                        << "' must be i32 or i64, got "
                        << typeText(labels->getType());
    return failure();
  }
  if (!isa<FloatType>(
          cast<RankedTensorType>(logits->getType()).getElementType())) {
    error(args->loc(0)) << "logits of '" << call.callee
                        << "' must be floats, got "
                        << typeText(logits->getType());
    return failure();
  }
  return wrap(create<OpTy>(call.getLoc(), *logits, *labels));
}

FailureOr<Term> Generator::dropout(const CallExpr &call) {
  FailureOr<CallArgs> args = bind(call, {"x", "p"}, 1);
  if (failed(args))
    return failure();
  FailureOr<Value> x = args->tensor(0);
  FailureOr<double> p = args->number(1, 0.5);
  if (failed(x) || failed(p))
    return failure();
  if (!(*p >= 0.0 && *p < 1.0)) {
    error(args->loc(1)) << "dropout probability must be in [0, 1), got "
                        << formatNumber(*p);
    return failure();
  }
  return wrap(create<DropoutOp>(call.getLoc(), *x, builder.getF64FloatAttr(*p),
                                builder.getI64IntegerAttr(dropoutStreams++)));
}

FailureOr<Term> Generator::attention(const CallExpr &call) {
  FailureOr<CallArgs> args =
      bind(call, {"query", "key", "value", "causal", "scale"}, 3);
  if (failed(args))
    return failure();
  FailureOr<Value> q = args->tensor(0), k = args->tensor(1),
                   v = args->tensor(2);
  FailureOr<bool> causal = args->boolean(3, false);
  if (failed(q) || failed(k) || failed(v) || failed(causal))
    return failure();
  // PyTorch's default scale: 1 / sqrt(D), D the query's feature size.
  auto qType = cast<RankedTensorType>(q->getType());
  double scale = 0;
  if (args->has(4)) {
    FailureOr<double> given = args->number(4, 0.0);
    if (failed(given))
      return failure();
    scale = *given;
  } else {
    int64_t d = qType.getRank() ? qType.getShape().back() : 0;
    if (d <= 0) {
      error(args->loc(0)) << "'scaled_dot_product_attention' needs a query "
                             "[..., T, D] with a fixed D for its default "
                             "scale 1/sqrt(D), got "
                          << typeText(qType) << "; or give 'scale'";
      return failure();
    }
    scale = 1.0 / std::sqrt(static_cast<double>(d));
  }
  return wrap(create<AttentionOp>(call.getLoc(), *q, *k, *v,
                                  *causal ? builder.getUnitAttr() : UnitAttr(),
                                  builder.getF64FloatAttr(scale)));
}

//===----------------------------------------------------------------------===//
// Layers
//===----------------------------------------------------------------------===//

LogicalResult Generator::checkInitializer(InitializerAttr init,
                                          RankedTensorType type,
                                          llvm::StringRef name,
                                          Location initLoc) {
  InitKind kind = init.getKind();
  bool needsFans =
      kind == InitKind::kaiming_uniform || kind == InitKind::kaiming_normal ||
      kind == InitKind::xavier_uniform || kind == InitKind::xavier_normal;
  double a = init.getA().convertToDouble(), b = init.getB().convertToDouble();
  if (needsFans && type.getRank() < 2) {
    error(initLoc) << "initializer '" << stringifyInitKind(kind)
                   << "' needs a parameter of rank at least 2 to compute its "
                      "fans, but '"
                   << name << "' is " << typeText(type)
                   << "; use uniform(...), normal(...) or zeros()";
    return failure();
  }
  if (kind == InitKind::uniform && a > b) {
    error(initLoc) << "uniform initializer of '" << name << "' has low "
                   << formatNumber(a) << " above high " << formatNumber(b);
    return failure();
  }
  if (kind == InitKind::normal && b < 0) {
    error(initLoc) << "normal initializer of '" << name
                   << "' has a negative std " << formatNumber(b);
    return failure();
  }
  return success();
}

FailureOr<Value> Generator::param(const std::string &localName, Location loc,
                                  RankedTensorType type, InitializerAttr init,
                                  Location initLoc) {
  // Inside a block, parameters are named after the call: `h0.ln_1.weight`.
  std::string name = prefix + localName;
  if (failed(checkInitializer(init, type, name, initLoc)))
    return failure();
  auto [it, inserted] = paramLocs.try_emplace(name, loc);
  if (!inserted) {
    auto diag = error(loc) << "parameter '" << name << "' is already defined";
    diag.attachNote(it->second) << "previous definition is here";
    return failure();
  }
  // Parameters live at the top of the model in declaration order.
  OpBuilder::InsertionGuard guard(builder);
  if (lastParam)
    builder.setInsertionPointAfter(lastParam);
  else
    builder.setInsertionPointToStart(builder.getInsertionBlock());
  FailureOr<Value> value = create<ParamOp>(loc, builder.getStringAttr(name),
                                           init, TypeAttr::get(type));
  if (failed(value))
    return failure();
  lastParam = value->getDefiningOp();
  return value;
}

FailureOr<InitializerAttr> Generator::initializer(const Expr &expr) {
  const auto *call = dyn_cast<CallExpr>(&expr);
  std::optional<InitKind> kind =
      call ? symbolizeInitKind(call->callee) : std::nullopt;
  if (!kind) {
    error(expr.getLoc())
        << "expected an initializer: zeros(), ones(), "
           "constant(v), normal(mean, std), uniform(low, "
           "high), kaiming_uniform(gain), kaiming_normal(gain), "
           "xavier_uniform(gain) or xavier_normal(gain)";
    return failure();
  }
  ArrayRef<llvm::StringRef> names = InitializerAttr::argumentNames(*kind);
  size_t required = *kind == InitKind::constant ? 1 : 0;
  FailureOr<CallArgs> args = bind(*call, names, required);
  if (failed(args))
    return failure();
  auto [a, b] = InitializerAttr::defaultArguments(*kind);
  FailureOr<double> first = names.size() > 0 ? args->number(0, a) : a;
  FailureOr<double> second = names.size() > 1 ? args->number(1, b) : b;
  if (failed(first) || failed(second))
    return failure();
  return InitializerAttr::get(&context, *kind, *first, *second);
}

FailureOr<Term> Generator::initializerMisuse(const CallExpr &call) {
  error(call.getLoc()) << "'" << call.callee
                       << "' is an initializer; use it as 'param NAME: TYPE = "
                       << call.callee
                       << "(...)' or as a layer's '*_init=' "
                          "argument";
  return failure();
}

FailureOr<std::string> Generator::layerName(CallArgs &args, size_t slot,
                                            llvm::StringRef kind) {
  if (args.has(slot)) {
    FailureOr<std::string> name = args.string(slot, "");
    if (failed(name))
      return failure();
    if (name->empty()) {
      error(args.loc(slot)) << "a layer name must not be empty";
      return failure();
    }
    return name;
  }
  unsigned &count = layerCounts[kind];
  return (kind + llvm::Twine(count++)).str();
}

FailureOr<InitializerAttr> Generator::layerInit(CallArgs &args, size_t slot,
                                                InitializerAttr otherwise) {
  if (!args.has(slot))
    return otherwise;
  return initializer(*args[slot]);
}

/// PyTorch's default for linear and conv weights and biases:
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
static InitializerAttr defaultWeightInit(MLIRContext *ctx) {
  return InitializerAttr::get(ctx, InitKind::kaiming_uniform,
                              std::sqrt(1.0 / 3.0), 0.0);
}
static InitializerAttr defaultBiasInit(MLIRContext *ctx, int64_t fanIn) {
  double bound = 1.0 / std::sqrt(static_cast<double>(fanIn));
  return InitializerAttr::get(ctx, InitKind::uniform, -bound, bound);
}

FailureOr<Term> Generator::linear(const CallExpr &call) {
  FailureOr<CallArgs> args = bind(
      call, {"x", "out_features", "bias", "name", "weight_init", "bias_init"},
      2);
  if (failed(args))
    return failure();
  FailureOr<Value> x = args->tensor(0);
  if (failed(x))
    return failure();
  auto xType = cast<RankedTensorType>(x->getType());

  // Functional form: linear(x, weight[, bias]).
  if (!isIntegerLiteral(*(*args)[1])) {
    FailureOr<Value> w = args->tensor(1);
    if (failed(w))
      return failure();
    Value bias;
    if (args->has(2) && !isa<BoolExpr>((*args)[2])) {
      FailureOr<Value> b = args->tensor(2);
      if (failed(b))
        return failure();
      bias = *b;
    }
    return wrap(create<LinearOp>(call.getLoc(), *x, *w, bias));
  }

  FailureOr<int64_t> out = args->integer(1, 0);
  FailureOr<bool> hasBias = args->boolean(2, true);
  FailureOr<std::string> name = layerName(*args, 3, "linear");
  if (failed(out) || failed(hasBias) || failed(name))
    return failure();
  if (*out <= 0) {
    error(args->loc(1)) << "'out_features' of 'linear' must be positive, got "
                        << *out;
    return failure();
  }
  if (xType.getRank() < 1 || ShapedType::isDynamic(xType.getShape().back())) {
    error(args->loc(0)) << "'linear' needs an input whose last dimension is a "
                           "fixed size, got "
                        << typeText(xType);
    return failure();
  }
  int64_t in = xType.getShape().back();
  Type element = xType.getElementType();
  if (!isa<FloatType>(element)) {
    error(args->loc(0)) << "'linear' needs a float input, got "
                        << typeText(xType);
    return failure();
  }
  FailureOr<InitializerAttr> wInit =
      layerInit(*args, 4, defaultWeightInit(&context));
  FailureOr<InitializerAttr> bInit =
      layerInit(*args, 5, defaultBiasInit(&context, in));
  if (failed(wInit) || failed(bInit))
    return failure();
  FailureOr<Value> w =
      param(*name + ".weight", call.getLoc(),
            RankedTensorType::get({*out, in}, element), *wInit, args->loc(4));
  if (failed(w))
    return failure();
  Value bias;
  if (*hasBias) {
    FailureOr<Value> b =
        param(*name + ".bias", call.getLoc(),
              RankedTensorType::get({*out}, element), *bInit, args->loc(5));
    if (failed(b))
      return failure();
    bias = *b;
  }
  return wrap(create<LinearOp>(call.getLoc(), *x, *w, bias));
}

FailureOr<Term> Generator::conv2d(const CallExpr &call) {
  FailureOr<CallArgs> args =
      bind(call,
           {"x", "out_channels", "kernel", "stride", "padding", "bias", "name",
            "weight_init", "bias_init"},
           2);
  if (failed(args))
    return failure();
  FailureOr<Value> x = args->tensor(0);
  FailureOr<SmallVector<int64_t>> stride = args->integers(3, {1});
  FailureOr<SmallVector<int64_t>> padding = args->integers(4, {0});
  if (failed(x) || failed(stride) || failed(padding))
    return failure();
  // One number means the same for height and width.
  auto pair = [](SmallVector<int64_t> v) {
    if (v.size() == 1)
      v.push_back(v.front());
    return v;
  };
  auto strideAttr = builder.getDenseI64ArrayAttr(pair(*stride));
  auto paddingAttr = builder.getDenseI64ArrayAttr(pair(*padding));

  // Functional form: conv2d(x, weight, stride=, padding=).
  if (!isIntegerLiteral(*(*args)[1])) {
    FailureOr<Value> w = args->tensor(1);
    if (failed(w))
      return failure();
    return wrap(
        create<Conv2dOp>(call.getLoc(), *x, *w, strideAttr, paddingAttr));
  }

  auto xType = cast<RankedTensorType>(x->getType());
  FailureOr<int64_t> out = args->integer(1, 0);
  FailureOr<SmallVector<int64_t>> kernel = args->integers(2, {3});
  FailureOr<bool> hasBias = args->boolean(5, true);
  FailureOr<std::string> name = layerName(*args, 6, "conv");
  if (failed(out) || failed(kernel) || failed(hasBias) || failed(name))
    return failure();
  SmallVector<int64_t> k = pair(*kernel);
  if (*out <= 0 || k.size() != 2 || k[0] <= 0 || k[1] <= 0) {
    error(call.getLoc()) << "'conv2d' needs a positive 'out_channels' and a "
                            "positive kernel size";
    return failure();
  }
  if (xType.getRank() != 4 || ShapedType::isDynamic(xType.getDimSize(1))) {
    error(args->loc(0)) << "'conv2d' needs an NCHW input with a fixed channel "
                           "count, got "
                        << typeText(xType);
    return failure();
  }
  int64_t in = xType.getDimSize(1);
  Type element = xType.getElementType();
  FailureOr<InitializerAttr> wInit =
      layerInit(*args, 7, defaultWeightInit(&context));
  FailureOr<InitializerAttr> bInit =
      layerInit(*args, 8, defaultBiasInit(&context, in * k[0] * k[1]));
  if (failed(wInit) || failed(bInit))
    return failure();
  FailureOr<Value> w =
      param(*name + ".weight", call.getLoc(),
            RankedTensorType::get({*out, in, k[0], k[1]}, element), *wInit,
            args->loc(7));
  if (failed(w))
    return failure();
  FailureOr<Value> y =
      create<Conv2dOp>(call.getLoc(), *x, *w, strideAttr, paddingAttr);
  if (failed(y) || !*hasBias)
    return wrap(y);
  FailureOr<Value> b =
      param(*name + ".bias", call.getLoc(),
            RankedTensorType::get({*out}, element), *bInit, args->loc(8));
  if (failed(b))
    return failure();
  // The bias broadcasts over N, H and W: reshape [O] to [O, 1, 1].
  FailureOr<Value> column = create<ReshapeOp>(
      call.getLoc(), *b, builder.getDenseI64ArrayAttr({*out, 1, 1}));
  if (failed(column))
    return failure();
  return wrap(create<AddOp>(call.getLoc(), *y, *column));
}

template <typename OpTy> FailureOr<Term> Generator::pool(const CallExpr &call) {
  FailureOr<CallArgs> args =
      bind(call, {"x", "kernel", "stride", "padding"}, 1);
  if (failed(args))
    return failure();
  FailureOr<Value> x = args->tensor(0);
  FailureOr<SmallVector<int64_t>> kernel = args->integers(1, {2});
  if (failed(x) || failed(kernel))
    return failure();
  FailureOr<SmallVector<int64_t>> stride = args->integers(2, *kernel);
  FailureOr<SmallVector<int64_t>> padding = args->integers(3, {0});
  if (failed(stride) || failed(padding))
    return failure();
  auto pair = [](SmallVector<int64_t> v) {
    if (v.size() == 1)
      v.push_back(v.front());
    return v;
  };
  return wrap(create<OpTy>(call.getLoc(), *x,
                           builder.getDenseI64ArrayAttr(pair(*kernel)),
                           builder.getDenseI64ArrayAttr(pair(*stride)),
                           builder.getDenseI64ArrayAttr(pair(*padding))));
}

FailureOr<Term> Generator::layerNorm(const CallExpr &call) {
  FailureOr<CallArgs> args =
      bind(call, {"x", "weight", "bias", "eps", "name"}, 1);
  if (failed(args))
    return failure();
  FailureOr<Value> x = args->tensor(0);
  FailureOr<double> eps = args->number(3, 1e-5);
  if (failed(x) || failed(eps))
    return failure();
  auto epsAttr = builder.getF64FloatAttr(*eps);
  if (args->has(1) || args->has(2)) {
    if (!args->has(1) || !args->has(2)) {
      error(call.getLoc()) << "functional 'layer_norm' needs both 'weight' "
                              "and 'bias'";
      return failure();
    }
    FailureOr<Value> w = args->tensor(1), b = args->tensor(2);
    if (failed(w) || failed(b))
      return failure();
    return wrap(create<LayerNormOp>(call.getLoc(), *x, *w, *b, epsAttr));
  }
  auto xType = cast<RankedTensorType>(x->getType());
  if (xType.getRank() < 1 || ShapedType::isDynamic(xType.getShape().back()) ||
      !isa<FloatType>(xType.getElementType())) {
    error(args->loc(0)) << "'layer_norm' needs a float input whose last "
                           "dimension is a fixed size, got "
                        << typeText(xType);
    return failure();
  }
  FailureOr<std::string> name = layerName(*args, 4, "layer_norm");
  if (failed(name))
    return failure();
  auto type =
      RankedTensorType::get({xType.getShape().back()}, xType.getElementType());
  FailureOr<Value> w = param(
      *name + ".weight", call.getLoc(), type,
      InitializerAttr::get(&context, InitKind::ones, 0.0, 0.0), call.getLoc());
  FailureOr<Value> b = param(
      *name + ".bias", call.getLoc(), type,
      InitializerAttr::get(&context, InitKind::zeros, 0.0, 0.0), call.getLoc());
  if (failed(w) || failed(b))
    return failure();
  return wrap(create<LayerNormOp>(call.getLoc(), *x, *w, *b, epsAttr));
}

FailureOr<Term> Generator::embedding(const CallExpr &call) {
  FailureOr<CallArgs> args =
      bind(call, {"indices", "num_embeddings", "dim", "name", "init"}, 2);
  if (failed(args))
    return failure();
  FailureOr<Value> indices = args->tensor(0);
  if (failed(indices))
    return failure();
  // Functional form: embedding(indices, table).
  if (!isIntegerLiteral(*(*args)[1])) {
    FailureOr<Value> table = args->tensor(1);
    if (failed(table))
      return failure();
    return wrap(create<EmbeddingOp>(call.getLoc(), *table, *indices));
  }
  FailureOr<int64_t> count = args->integer(1, 0);
  FailureOr<int64_t> dim = args->integer(2, 0);
  FailureOr<std::string> name = layerName(*args, 3, "embedding");
  FailureOr<InitializerAttr> init = layerInit(
      *args, 4, InitializerAttr::get(&context, InitKind::normal, 0.0, 1.0));
  if (failed(count) || failed(dim) || failed(name) || failed(init))
    return failure();
  if (!args->has(2)) {
    error(call.getLoc()) << "the 'embedding' layer needs argument 'dim', the "
                            "size of each embedding vector";
    return failure();
  }
  if (*count <= 0 || *dim <= 0) {
    error(call.getLoc()) << "'embedding' needs positive 'num_embeddings' and "
                            "'dim'";
    return failure();
  }
  FailureOr<Value> table =
      param(*name + ".weight", call.getLoc(),
            RankedTensorType::get({*count, *dim}, builder.getF32Type()), *init,
            args->loc(4));
  if (failed(table))
    return failure();
  return wrap(create<EmbeddingOp>(call.getLoc(), *table, *indices));
}

} // namespace

OwningOpRef<ModuleOp> kiln::frontend::mlirGen(MLIRContext &context,
                                              const ModuleAST &module) {
  Generator generator(context);
  return generator.generate(module);
}

std::vector<llvm::StringRef> kiln::frontend::builtinNames() {
  std::vector<llvm::StringRef> names;
  for (const auto &builtin : Generator::kBuiltins)
    names.push_back(builtin.name);
  return names;
}
