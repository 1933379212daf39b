//===- Dot.cpp - kiln compile --emit=dot: kernels as a Graphviz graph -----===//
//
// Draws a fused module as one Graphviz digraph: a cluster per function and,
// inside it, a cluster per `kiln.kernel` holding the ops it fuses. A value's
// edge starts at the op that computes it, whether it stays inside a kernel
// or crosses to another one through memory, so the drawing shows the data
// flow between the ops rather than between the kernels' region arguments.
//
//===----------------------------------------------------------------------===//

#include "tools/kiln/Driver.h"

#include "ir/AttrNames.h"
#include "ir/KilnDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Format.h"

using namespace mlir;

namespace {

/// Quotes `text` as a DOT string. `\n` in `text` stays a DOT line break.
std::string quote(llvm::StringRef text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\' && i + 1 < text.size() && text[i + 1] == 'n') {
      out += "\\n";
      ++i;
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

/// The types of `op`'s results as the model language writes them.
std::string formatResults(Operation *op) {
  std::string text;
  llvm::raw_string_ostream os(text);
  llvm::interleaveComma(op->getResultTypes(), os,
                        [&](Type type) { os << kiln::formatTensorType(type); });
  return text;
}

/// A constant's value when it is one number (a splat), else its type.
std::string formatConstant(kiln::ConstantOp constant) {
  auto dense = llvm::dyn_cast<DenseElementsAttr>(constant.getValue());
  if (!dense || !dense.isSplat())
    return "constant " + formatResults(constant);
  std::string text;
  llvm::raw_string_ostream os(text);
  if (llvm::isa<FloatType>(dense.getElementType()))
    os << llvm::format("%g", dense.getSplatValue<APFloat>().convertToDouble());
  else if (dense.getElementType().isInteger(1))
    os << (dense.getSplatValue<bool>() ? "true" : "false");
  else
    os << dense.getSplatValue<APInt>().getSExtValue();
  return text;
}

/// Node attributes per role of a function argument or parameter.
llvm::StringRef argumentStyle(llvm::StringRef role) {
  if (role == "param")
    return "shape=box, style=\"rounded,filled\", fillcolor=\"#cfe2ff\"";
  if (role == "state" || role == "hyper")
    return "shape=box, style=\"rounded,filled,dashed\", fillcolor=\"#fff3bf\"";
  return "shape=ellipse, style=filled, fillcolor=\"#d3f9d8\"";
}

/// Cluster fill colour per kernel kind.
llvm::StringRef kernelColor(kiln::KernelKind kind) {
  switch (kind) {
  case kiln::KernelKind::elementwise:
    return "#fff9db";
  case kiln::KernelKind::reduction:
    return "#f3e8ff";
  case kiln::KernelKind::matmul:
    return "#ffe8cc";
  case kiln::KernelKind::opaque:
    return "#f1f3f5";
  case kiln::KernelKind::horizontal:
    return "#e7f5ff";
  case kiln::KernelKind::collective:
    return "#ffe3e3";
  }
  llvm_unreachable("unknown kernel kind");
}

/// Writes the graph. Node ids (`n<i>`) and kernel cluster numbers run
/// through the whole module so that every function can share one graph.
class DotWriter {
public:
  explicit DotWriter(llvm::raw_ostream &os) : os(os) {}

  void write(ModuleOp module) {
    os << "digraph kiln {\n"
       << "  node [fontname=\"Helvetica\", fontsize=10];\n"
       << "  edge [color=\"#495057\"];\n";
    for (auto func : module.getOps<func::FuncOp>())
      writeFunction(func);
    for (const std::string &edge : edges)
      os << "  " << edge << ";\n";
    os << "}\n";
  }

private:
  /// Declares a node for `value` and returns its id.
  std::string addNode(Value value, llvm::StringRef label, llvm::StringRef style,
                      llvm::StringRef indent) {
    std::string id = "n" + std::to_string(nextNode++);
    os << indent << id << " [label=" << quote(label) << ", " << style << "];\n";
    if (value)
      nodeOf[value] = id;
    return id;
  }

  /// An edge from the node that computes `value` to `to`. Edges are written
  /// after all clusters: an edge inside a cluster would pull its other end
  /// into that cluster.
  void addEdge(Value value, llvm::StringRef to, bool fused = false) {
    auto it = nodeOf.find(value);
    if (it == nodeOf.end())
      return;
    std::string edge = it->second + " -> " + to.str();
    if (fused)
      edge += " [color=\"#adb5bd\"]";
    edges.push_back(edge);
  }

  /// Makes `alias` stand for the node that computes `value`.
  void alias(Value alias, Value value) {
    auto it = nodeOf.find(value);
    if (it == nodeOf.end())
      return;
    std::string id = it->second; // copied: inserting may rehash
    nodeOf[alias] = id;
  }

  void writeFunction(func::FuncOp func) {
    os << "  subgraph " << quote(("cluster_" + func.getSymName()).str())
       << " {\n"
       << "    label=" << quote(("@" + func.getSymName()).str())
       << ";\n    fontsize=14;\n    style=rounded;\n";
    for (BlockArgument arg : func.getArguments()) {
      unsigned i = arg.getArgNumber();
      auto name = func.getArgAttrOfType<StringAttr>(i, kiln::attrs::name);
      auto role = func.getArgAttrOfType<StringAttr>(i, kiln::attrs::role);
      // A model as written has only inputs and no roles.
      std::string label = name ? name.str() : "arg" + std::to_string(i);
      addNode(arg, label + "\\n" + kiln::formatTensorType(arg.getType()),
              argumentStyle(role ? role.getValue() : "input"), "    ");
    }
    for (Operation &op : func.getBody().front()) {
      if (auto param = llvm::dyn_cast<kiln::ParamOp>(op))
        addNode(param, (param.getName() + "\\n" + formatResults(param)).str(),
                argumentStyle("param"), "    ");
      else if (auto kernel = llvm::dyn_cast<kiln::KernelOp>(op))
        writeKernel(kernel);
      else if (auto ret = llvm::dyn_cast<func::ReturnOp>(op))
        writeResults(func, ret);
      else
        writeOp(&op, "    ");
    }
    os << "  }\n";
  }

  /// One cluster per kernel, its ops inside; region arguments stand for the
  /// producers of the kernel's operands, its results for the yielded values.
  void writeKernel(kiln::KernelOp kernel) {
    os << "    subgraph cluster_" << nextKernel++ << " {\n"
       << "      label="
       << quote((kernel.getName() + " (" +
                 kiln::stringifyKernelKind(kernel.getKind()) + ")")
                    .str())
       << ";\n      style=\"rounded,filled\";\n      fillcolor=\""
       << kernelColor(kernel.getKind()) << "\";\n";
    Block &block = kernel.getBlock();
    for (auto [arg, input] :
         llvm::zip(block.getArguments(), kernel.getInputs()))
      alias(arg, input);
    for (Operation &op : block) {
      if (auto yield = llvm::dyn_cast<kiln::YieldOp>(op)) {
        for (auto [result, value] :
             llvm::zip(kernel.getResults(), yield.getValues()))
          alias(result, value);
        continue;
      }
      // A horizontal kernel's segments are clusters inside its own.
      if (auto segment = llvm::dyn_cast<kiln::KernelOp>(op)) {
        writeKernel(segment);
        continue;
      }
      writeOp(&op, "      ");
    }
    os << "    }\n";
  }

  /// A node for `op` labelled with its name and result types, and an edge
  /// from each operand's producer.
  void writeOp(Operation *op, llvm::StringRef indent) {
    std::string id;
    if (auto constant = llvm::dyn_cast<kiln::ConstantOp>(op))
      id = addNode(constant, formatConstant(constant),
                   "shape=plaintext, fontsize=8", indent);
    else
      id = addNode(
          Value(),
          (op->getName().stripDialect() + " " + formatResults(op)).str(),
          "shape=box, style=filled, fillcolor=white", indent);
    for (Value result : op->getResults())
      nodeOf[result] = id;
    // Inside a kernel, an operand that is not a region argument never
    // leaves the kernel: its edge is drawn lighter than a memory read.
    bool inKernel = llvm::isa<kiln::KernelOp>(op->getParentOp());
    for (Value operand : op->getOperands())
      addEdge(operand, id,
              /*fused=*/inKernel && !llvm::isa<BlockArgument>(operand));
  }

  /// A node per function result, labelled with its kiln.name and role.
  void writeResults(func::FuncOp func, func::ReturnOp ret) {
    for (auto [i, value] : llvm::enumerate(ret.getOperands())) {
      auto name = func.getResultAttrOfType<StringAttr>(i, kiln::attrs::name);
      auto role = func.getResultAttrOfType<StringAttr>(i, kiln::attrs::role);
      std::string label = name ? name.str() : "result" + std::to_string(i);
      if (role && role.getValue() != label)
        label += role.getValue() == "param" || role.getValue() == "state"
                     ? " (updated)"
                     : " (" + role.str() + ")";
      std::string id =
          addNode(Value(), label,
                  "shape=box, style=filled, fillcolor=\"#dee2e6\"", "    ");
      addEdge(value, id);
    }
  }

  llvm::raw_ostream &os;
  llvm::DenseMap<Value, std::string> nodeOf;
  std::vector<std::string> edges;
  unsigned nextNode = 0;
  unsigned nextKernel = 0;
};

} // namespace

void kiln::driver::writeDot(ModuleOp module, llvm::raw_ostream &os) {
  DotWriter(os).write(module);
}
