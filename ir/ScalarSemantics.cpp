//===- ScalarSemantics.cpp - the table of scalar ops ----------------------===//
//
// Each entry states an op's evaluation (double, the reference's oracle) and
// its C spelling (in the result's type: expf for f32) side by side. The two
// may differ in form where C needs it (x * M_SQRT1_2 for x / sqrt(2)); they
// agree in value up to the rounding of the result's type.
//
//===----------------------------------------------------------------------===//

#include "ir/ScalarSemantics.h"

#include "ir/KilnDialect.h"

#include "mlir/IR/BuiltinTypes.h"

#include <algorithm>
#include <cmath>

using namespace mlir;
using namespace kiln;

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kSqrtHalf = 0.70710678118654752440;

using Operands = ArrayRef<std::string>;

bool isFloatResult(Operation *op) {
  auto type = llvm::cast<RankedTensorType>(op->getResult(0).getType());
  return llvm::isa<FloatType>(type.getElementType());
}

/// A C math function of one argument.
ScalarSemantics math(StringRef name, double (*f)(double)) {
  return {[f](ArrayRef<double> v) { return f(v[0]); },
          [name = name.str()](Operands a, const CSpelling &c) {
            return c.call(name, a[0]);
          }};
}

/// A C infix operator.
ScalarSemantics infix(StringRef symbol, double (*f)(double, double)) {
  return {[f](ArrayRef<double> v) { return f(v[0], v[1]); },
          [symbol = symbol.str()](Operands a, const CSpelling &) {
            return a[0] + " " + symbol + " " + a[1];
          }};
}

ScalarSemantics gelu(GeluApproximation approximation) {
  if (approximation == GeluApproximation::tanh)
    return {[](ArrayRef<double> v) {
              double x = v[0], k = std::sqrt(2.0 / kPi);
              return 0.5 * x *
                     (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
            },
            [](Operands a, const CSpelling &c) {
              const std::string &x = a[0];
              std::string inner = c.literal(std::sqrt(2.0 / kPi)) + " * (" + x +
                                  " + " + c.literal(0.044715) + " * " + x +
                                  " * " + x + " * " + x + ")";
              return c.literal(0.5) + " * " + x + " * (" + c.literal(1) +
                     " + " + c.call("tanh", inner) + ")";
            }};
  return {[](ArrayRef<double> v) {
            double x = v[0];
            return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
          },
          [](Operands a, const CSpelling &c) {
            const std::string &x = a[0];
            return c.literal(0.5) + " * " + x + " * (" + c.literal(1) + " + " +
                   c.call("erf", x + " * " + c.literal(kSqrtHalf)) + ")";
          }};
}

/// d/dx gelu(x) times the incoming gradient (operands x, dy).
ScalarSemantics geluGrad(GeluApproximation approximation) {
  if (approximation == GeluApproximation::tanh)
    // d/dx of 0.5 x (1 + tanh(u)), u = k (x + 0.044715 x^3).
    return {[](ArrayRef<double> v) {
              double x = v[0], k = std::sqrt(2.0 / kPi);
              double u = k * (x + 0.044715 * x * x * x);
              double t = std::tanh(u);
              double du = k * (1.0 + 3 * 0.044715 * x * x);
              return v[1] * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du);
            },
            [](Operands a, const CSpelling &c) {
              const std::string &x = a[0];
              double k = std::sqrt(2.0 / kPi);
              std::string t =
                  c.call("tanh", c.literal(k) + " * (" + x + " + " +
                                     c.literal(0.044715) + " * " + x + " * " +
                                     x + " * " + x + ")");
              std::string du = c.literal(k) + " * (" + c.literal(1) + " + " +
                               c.literal(3 * 0.044715) + " * " + x + " * " + x +
                               ")";
              return a[1] + " * (" + c.literal(0.5) + " * (" + c.literal(1) +
                     " + " + t + ") + " + c.literal(0.5) + " * " + x + " * (" +
                     c.literal(1) + " - " + t + " * " + t + ") * " + du + ")";
            }};
  return {[](ArrayRef<double> v) {
            double x = v[0];
            double cdf = 0.5 * (1.0 + std::erf(x / std::sqrt(2.0)));
            double pdf = std::exp(-0.5 * x * x) / std::sqrt(2.0 * kPi);
            return v[1] * (cdf + x * pdf);
          },
          [](Operands a, const CSpelling &c) {
            const std::string &x = a[0];
            std::string cdf = c.literal(0.5) + " * (" + c.literal(1) + " + " +
                              c.call("erf", x + " * " + c.literal(kSqrtHalf)) +
                              ")";
            std::string pdf =
                c.call("exp", c.literal(-0.5) + " * " + x + " * " + x) + " * " +
                c.literal(1 / std::sqrt(2 * kPi));
            return a[1] + " * (" + cdf + " + " + x + " * " + pdf + ")";
          }};
}

ScalarSemantics compare(CmpPredicate predicate) {
  static const char *symbols[] = {"==", "!=", "<", "<=", ">", ">="};
  return {[predicate](ArrayRef<double> v) -> double {
            double a = v[0], b = v[1];
            switch (predicate) {
            case CmpPredicate::eq:
              return a == b;
            case CmpPredicate::ne:
              return a != b;
            case CmpPredicate::lt:
              return a < b;
            case CmpPredicate::le:
              return a <= b;
            case CmpPredicate::gt:
              return a > b;
            case CmpPredicate::ge:
              return a >= b;
            }
            return 0.0;
          },
          [predicate](Operands a, const CSpelling &) {
            return a[0] + " " + symbols[static_cast<int>(predicate)] + " " +
                   a[1];
          }};
}

/// The table: an op's TypeID and the function making its entry.
struct Entry {
  TypeID op;
  ScalarSemantics (*make)(Operation *);
};

const Entry kTable[] = {
    // Unary.
    {TypeID::get<NegOp>(),
     [](Operation *) -> ScalarSemantics {
       return {[](ArrayRef<double> v) { return -v[0]; },
               [](Operands a, const CSpelling &) { return "-(" + a[0] + ")"; }};
     }},
    {TypeID::get<AbsOp>(),
     [](Operation *op) -> ScalarSemantics {
       if (isFloatResult(op))
         return math("fabs", [](double x) { return std::fabs(x); });
       return {[](ArrayRef<double> v) { return std::fabs(v[0]); },
               [](Operands a, const CSpelling &) {
                 return "(" + a[0] + " < 0 ? -" + a[0] + " : " + a[0] + ")";
               }};
     }},
    {TypeID::get<ExpOp>(),
     [](Operation *) {
       return math("exp", [](double x) { return std::exp(x); });
     }},
    {TypeID::get<LogOp>(),
     [](Operation *) {
       return math("log", [](double x) { return std::log(x); });
     }},
    {TypeID::get<TanhOp>(),
     [](Operation *) {
       return math("tanh", [](double x) { return std::tanh(x); });
     }},
    {TypeID::get<SqrtOp>(),
     [](Operation *) {
       return math("sqrt", [](double x) { return std::sqrt(x); });
     }},
    {TypeID::get<CosOp>(),
     [](Operation *) {
       return math("cos", [](double x) { return std::cos(x); });
     }},
    {TypeID::get<SinOp>(),
     [](Operation *) {
       return math("sin", [](double x) { return std::sin(x); });
     }},
    {TypeID::get<FloorOp>(),
     [](Operation *) {
       return math("floor", [](double x) { return std::floor(x); });
     }},
    {TypeID::get<RsqrtOp>(),
     [](Operation *) -> ScalarSemantics {
       return {[](ArrayRef<double> v) { return 1.0 / std::sqrt(v[0]); },
               [](Operands a, const CSpelling &c) {
                 return c.literal(1) + " / " + c.call("sqrt", a[0]);
               }};
     }},
    {TypeID::get<SigmoidOp>(),
     [](Operation *) -> ScalarSemantics {
       return {[](ArrayRef<double> v) { return 1.0 / (1.0 + std::exp(-v[0])); },
               [](Operands a, const CSpelling &c) {
                 return c.literal(1) + " / (" + c.literal(1) + " + " +
                        c.call("exp", "-(" + a[0] + ")") + ")";
               }};
     }},
    {TypeID::get<ReluOp>(),
     [](Operation *) -> ScalarSemantics {
       return {[](ArrayRef<double> v) { return v[0] > 0 ? v[0] : 0.0; },
               [](Operands a, const CSpelling &c) {
                 return "(" + a[0] + " > " + c.literal(0) + " ? " + a[0] +
                        " : " + c.literal(0) + ")";
               }};
     }},
    {TypeID::get<GeluOp>(),
     [](Operation *op) {
       return gelu(llvm::cast<GeluOp>(op).getApproximate());
     }},
    // The value converted; the result type's rounding does the rest.
    {TypeID::get<CastOp>(),
     [](Operation *) -> ScalarSemantics {
       return {[](ArrayRef<double> v) { return v[0]; },
               [](Operands a, const CSpelling &c) {
                 return "(" + c.type + ")(" + a[0] + ")";
               }};
     }},
    // Binary.
    {TypeID::get<AddOp>(),
     [](Operation *) {
       return infix("+", [](double a, double b) { return a + b; });
     }},
    {TypeID::get<SubOp>(),
     [](Operation *) {
       return infix("-", [](double a, double b) { return a - b; });
     }},
    {TypeID::get<MulOp>(),
     [](Operation *) {
       return infix("*", [](double a, double b) { return a * b; });
     }},
    // Integer division truncates, as C's.
    {TypeID::get<DivOp>(),
     [](Operation *op) {
       if (isFloatResult(op))
         return infix("/", [](double a, double b) { return a / b; });
       return infix("/", [](double a, double b) { return std::trunc(a / b); });
     }},
    // As std::max and std::min choose, also for NaN.
    {TypeID::get<MaxOp>(),
     [](Operation *) -> ScalarSemantics {
       return {[](ArrayRef<double> v) { return std::max(v[0], v[1]); },
               [](Operands a, const CSpelling &) {
                 return "(" + a[0] + " < " + a[1] + " ? " + a[1] + " : " +
                        a[0] + ")";
               }};
     }},
    {TypeID::get<MinOp>(),
     [](Operation *) -> ScalarSemantics {
       return {[](ArrayRef<double> v) { return std::min(v[0], v[1]); },
               [](Operands a, const CSpelling &) {
                 return "(" + a[1] + " < " + a[0] + " ? " + a[1] + " : " +
                        a[0] + ")";
               }};
     }},
    {TypeID::get<PowOp>(),
     [](Operation *) -> ScalarSemantics {
       return {[](ArrayRef<double> v) { return std::pow(v[0], v[1]); },
               [](Operands a, const CSpelling &c) {
                 return c.call("pow", a[0] + ", " + a[1]);
               }};
     }},
    {TypeID::get<CmpOp>(),
     [](Operation *op) {
       return compare(llvm::cast<CmpOp>(op).getPredicate());
     }},
    {TypeID::get<SelectOp>(),
     [](Operation *) -> ScalarSemantics {
       return {[](ArrayRef<double> v) { return v[0] ? v[1] : v[2]; },
               [](Operands a, const CSpelling &) {
                 return "(" + a[0] + " ? " + a[1] + " : " + a[2] + ")";
               }};
     }},
    {TypeID::get<GeluGradOp>(),
     [](Operation *op) {
       return geluGrad(llvm::cast<GeluGradOp>(op).getApproximate());
     }},
};

const Entry *find(TypeID id) {
  for (const Entry &entry : kTable)
    if (entry.op == id)
      return &entry;
  return nullptr;
}

} // namespace

std::optional<ScalarSemantics> kiln::scalarSemantics(Operation *op) {
  if (const Entry *entry = find(op->getName().getTypeID()))
    return entry->make(op);
  return std::nullopt;
}

bool kiln::hasScalarSemantics(OperationName name) {
  return find(name.getTypeID()) != nullptr;
}
