//===- KilnDialect.cpp - the kiln dialect and its attributes --------------===//

#include "ir/KilnDialect.h"
#include "ir/Schedules.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace kiln;

#include "ir/KilnDialect.cpp.inc"
#include "ir/KilnEnums.cpp.inc"
#include "ir/KilnInterfaces.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "ir/KilnAttrs.cpp.inc"

void KilnDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "ir/KilnOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "ir/KilnAttrs.cpp.inc"
      >();
  registerScheduleAttributes();
  attachGradientRules(*getContext());
}

Attribute KilnDialect::parseAttribute(DialectAsmParser &parser,
                                      Type type) const {
  SMLoc loc = parser.getCurrentLocation();
  StringRef mnemonic;
  Attribute value;
  OptionalParseResult parsed =
      generatedAttributeParser(parser, &mnemonic, type, value);
  if (!parsed.has_value())
    parsed = parseScheduleAttribute(parser, mnemonic, type, value);
  if (parsed.has_value())
    return succeeded(*parsed) ? value : Attribute();
  parser.emitError(loc) << "unknown attribute `" << mnemonic
                        << "` in dialect `kiln`";
  return {};
}

void KilnDialect::printAttribute(Attribute attr,
                                 DialectAsmPrinter &printer) const {
  if (succeeded(generatedAttributePrinter(attr, printer)))
    return;
  (void)printScheduleAttribute(attr, printer);
}

Operation *KilnDialect::materializeConstant(OpBuilder &builder, Attribute value,
                                            Type type, Location loc) {
  auto elements = llvm::dyn_cast<ElementsAttr>(value);
  if (!elements || elements.getType() != type)
    return nullptr;
  return builder.create<ConstantOp>(loc, elements);
}

//===----------------------------------------------------------------------===//
// InitializerAttr
//===----------------------------------------------------------------------===//

ArrayRef<StringRef> InitializerAttr::argumentNames(InitKind kind) {
  static const StringRef none[] = {""};
  static const StringRef constant[] = {"value"};
  static const StringRef normal[] = {"mean", "std"};
  static const StringRef uniform[] = {"low", "high"};
  static const StringRef gain[] = {"gain"};
  switch (kind) {
  case InitKind::zeros:
  case InitKind::ones:
    return ArrayRef<StringRef>(none).take_front(0);
  case InitKind::constant:
    return constant;
  case InitKind::normal:
    return normal;
  case InitKind::uniform:
    return uniform;
  case InitKind::kaiming_uniform:
  case InitKind::kaiming_normal:
  case InitKind::xavier_uniform:
  case InitKind::xavier_normal:
    return gain;
  }
  llvm_unreachable("unknown InitKind");
}

std::pair<double, double> InitializerAttr::defaultArguments(InitKind kind) {
  switch (kind) {
  case InitKind::normal:
    return {0.0, 1.0};
  case InitKind::uniform:
    return {0.0, 1.0};
  case InitKind::kaiming_uniform:
  case InitKind::kaiming_normal:
    return {std::sqrt(2.0), 0.0}; // the ReLU gain
  case InitKind::xavier_uniform:
  case InitKind::xavier_normal:
    return {1.0, 0.0};
  default:
    return {0.0, 0.0};
  }
}

/// `#kiln.init<normal(mean = 0.0, std = 2.0E-2)>`; omitted arguments take
/// their defaults, and `kind` alone or `kind()` takes all of them.
Attribute InitializerAttr::parse(AsmParser &parser, Type) {
  StringRef keyword;
  if (parser.parseLess())
    return {};
  SMLoc loc = parser.getCurrentLocation();
  if (parser.parseKeyword(&keyword))
    return {};
  std::optional<InitKind> kind = symbolizeInitKind(keyword);
  if (!kind) {
    InFlightDiagnostic diag = parser.emitError(loc, "unknown initializer '")
                              << keyword << "'; expected one of ";
    for (uint32_t i = 0; i <= getMaxEnumValForInitKind(); ++i)
      diag << (i ? ", " : "") << stringifyInitKind(static_cast<InitKind>(i));
    return {};
  }
  auto [a, b] = defaultArguments(*kind);
  ArrayRef<StringRef> names = argumentNames(*kind);
  bool seen[2] = {false, false};
  auto parseArgument = [&]() -> ParseResult {
    StringRef name;
    double value;
    SMLoc nameLoc = parser.getCurrentLocation();
    if (parser.parseKeyword(&name) || parser.parseEqual() ||
        parser.parseFloat(value))
      return failure();
    const auto *it = llvm::find(names, name);
    if (it == names.end())
      return parser.emitError(nameLoc, "initializer '")
             << keyword << "' has no argument '" << name << "'";
    size_t index = it - names.begin();
    if (seen[index])
      return parser.emitError(nameLoc, "initializer '")
             << keyword << "' has argument '" << name << "' more than once";
    seen[index] = true;
    (index == 0 ? a : b) = value;
    return success();
  };
  if (parser.parseCommaSeparatedList(AsmParser::Delimiter::OptionalParen,
                                     parseArgument) ||
      parser.parseGreater())
    return {};
  return InitializerAttr::get(parser.getContext(), *kind, a, b);
}

void InitializerAttr::print(AsmPrinter &printer) const {
  printer << '<' << stringifyInitKind(getKind());
  ArrayRef<StringRef> names = argumentNames(getKind());
  if (!names.empty()) {
    printer << '(';
    llvm::APFloat values[] = {getA(), getB()};
    for (size_t i = 0; i < names.size(); ++i) {
      if (i)
        printer << ", ";
      printer << names[i] << " = ";
      printer.printFloat(values[i]);
    }
    printer << ')';
  }
  printer << '>';
}
