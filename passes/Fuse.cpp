//===- Fuse.cpp - group a step's ops into kernels -------------------------===//
//
// Every op is classified:
//
//   injective  one output element from one element of each input
//              (elementwise math, compare, select, cast, dropout, broadcast)
//   reduction  reduces along axes (reduce_*, argmax, count, softmax,
//              log_softmax, cross_entropy and its gradient, layer_norm)
//   matmul     a contraction, computed by a tiled GEMM
//   collective an all-reduce across ranks: a kernel of its own that the
//              runtime's communicator runs (no code is generated)
//   opaque     anything else: a kernel of its own (layout changes, conv,
//              pooling, embedding, attention and its two gradients; an
//              opaque op may have several results, all of them the
//              kernel's when read outside it). One that TakesEpilogue
//              (convolution, pooling and the pooling gradients) takes an
//              epilogue like a matmul.
//
// The cost rule: an intermediate tensor that stays inside a kernel saves one
// write and one read of it from memory; fusion is only worth it when it adds
// no recomputation. So, walking the ops in program order:
//
//   1. An injective op joins the group of one of its producers when its
//      result has the shape that group iterates over (the elementwise
//      shape, or a reduction's or matmul's output shape: an epilogue).
//      A smaller producer (a bias [512] feeding [?, 512]) is read, never
//      recomputed per element, because it is only ever an input.
//   2. A reduction absorbs the elementwise group producing its input when
//      that group has the reduction's input shape and no other consumer
//      (a prologue); otherwise the input is materialized.
//   3. A matmul, or an opaque op that TakesEpilogue, starts a group; its
//      epilogue joins by rule 1.
//   4. A value used by ops outside its kernel is a result of the kernel (a
//      multi-output kernel), so fusing never recomputes it.
//   5. An op never joins a group it would make cyclic, or whose values an
//      earlier outside op reads (the kernel sits at its last op).
//   6. An epilogue never joins a reduction or matmul if it reads a value
//      computed after the anchor (from anything but the step's arguments):
//      the kernel would wait for that value, and the anchor's inputs would
//      stay in memory until then.
//   7. A kernel with a reduction or matmul sits at its anchor, or at the
//      first point after it where its inputs are ready, not at its last
//      op: an epilogue written much later in the program (the squares of a
//      gradient for the clipping norm, an optimizer update) would otherwise
//      keep the anchor's inputs live until then. (A batched linear layer's
//      weight gradient reduces partial products 64 times its size; held to
//      the optimizer, all of them were live at once: 4.65 GiB for the GPT
//      at batch 64 instead of 3 GiB.)
//   8. An injective op joining an anchor's epilogue brings along the
//      elementwise groups computing its other operands when it is their
//      only reader, they come after the anchor, have the epilogue's shape
//      and read nothing computed after the anchor, but something computed
//      in the step: a ReLU's mask, compared from the forward pass's
//      activation, joins the gradient kernel it masks (a pooling
//      gradient's, a GEMM's) instead of being a kernel of its own. (A
//      group of the step's arguments alone, an optimizer's `momentum *
//      buf`, stays where it is: the updates become one horizontal kernel.)
//
// Constants and iotas (computed from the element index, reading nothing)
// are cloned into every kernel that uses them; parameters stay outside. An
// iota is only computed by the elementwise generator, so an op reading one
// joins only an elementwise group. So is scalar arithmetic on the step's
// arguments and constants alone (an injective op of rank 0 whose operands
// are such scalars, none of them a result of the step): the optimizer's
// hyper-parameter arithmetic, `cast(lr)`, costs a few instructions per
// thread, far less than a kernel launch and a round trip through memory, so
// it is recomputed in each kernel that reads it instead of forming a kernel
// of its own. Each group becomes a `kiln.kernel` named after the ops it
// fuses.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Analysis/TopologicalSortUtils.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Debug.h"

#include <functional>

#define DEBUG_TYPE "kiln-fuse"

namespace kiln {
#define GEN_PASS_DEF_KILNFUSE
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

enum class Role { source, injective, reduction, matmul, opaque, collective };

Role roleOf(Operation *op) {
  if (llvm::isa<ConstantOp, IotaOp, ParamOp>(op))
    return Role::source;
  if (op->hasTrait<kiln::OpTrait::Injective>())
    return Role::injective;
  if (op->hasTrait<kiln::OpTrait::RowReduction>())
    return Role::reduction;
  if (llvm::isa<MatmulOp>(op))
    return Role::matmul;
  if (llvm::isa<AllReduceOp>(op))
    return Role::collective;
  return Role::opaque;
}

ArrayRef<int64_t> shapeOf(Value v) {
  return llvm::cast<RankedTensorType>(v.getType()).getShape();
}

struct Group {
  SmallVector<Operation *> ops; // in program order
  Operation *anchor = nullptr;  // the reduction or matmul, if any
  KernelKind kind = KernelKind::elementwise;
  /// The shape an injective op must have to join: the elementwise shape, or
  /// the anchor's output shape.
  SmallVector<int64_t> epilogueShape;
};

class Fuser {
public:
  explicit Fuser(Block &block) : block(block) {
    unsigned i = 0;
    for (Operation &op : block)
      position[&op] = i++;
  }

  void formGroups();
  void outline();

private:
  Group *groupOf(Operation *op) { return membership.lookup(op); }
  /// Whether `op` is scalar arithmetic cloned into its readers (above).
  bool isRecomputed(Operation *op);
  Group &newGroup(Operation *op, KernelKind kind) {
    groups.push_back(std::make_unique<Group>());
    Group &g = *groups.back();
    g.kind = kind;
    add(g, op);
    return g;
  }
  void add(Group &g, Operation *op) {
    g.ops.push_back(op);
    membership[op] = &g;
  }
  /// Whether `op` may join `g` by rule 5.
  bool canJoin(Group &g, Operation *op);
  /// Whether `v` depends on an op of `g`.
  bool dependsOn(Value v, Group &g);
  /// Whether `op` reads a value computed after the anchor of `g` (rule 6).
  bool readsLate(Operation *op, Group &g);
  /// Whether the ops of `source` read only the step's arguments, parameters
  /// and recomputed scalars (besides each other).
  bool readsOnlyArguments(Group &source);
  /// The anchor group whose epilogue `op` joins by rule 8, with the groups
  /// it brings along (`absorbed`); null if none.
  Group *epilogueWithOperands(Operation *op,
                              SmallVectorImpl<Group *> &absorbed);
  /// Moves the ops of `from` into `into`, in program order.
  void merge(Group &into, Group &from);

  Block &block;
  llvm::DenseMap<Operation *, unsigned> position;
  llvm::DenseMap<Operation *, Group *> membership;
  std::vector<std::unique_ptr<Group>> groups;
  llvm::DenseSet<Operation *> recomputed;
};

bool Fuser::isRecomputed(Operation *op) {
  if (llvm::isa<ConstantOp, IotaOp>(op) || recomputed.contains(op))
    return true;
  if (roleOf(op) != Role::injective || op->getNumResults() != 1 ||
      !shapeOf(op->getResult(0)).empty())
    return false;
  for (Operation *user : op->getUsers())
    if (user->hasTrait<mlir::OpTrait::IsTerminator>())
      return false;
  for (Value operand : op->getOperands()) {
    Operation *def = operand.getDefiningOp();
    if (!shapeOf(operand).empty() ||
        (def && !recomputed.contains(def) && !llvm::isa<ConstantOp>(def)))
      return false;
  }
  recomputed.insert(op);
  return true;
}

bool Fuser::dependsOn(Value v, Group &g) {
  unsigned first = position[g.ops.front()];
  SmallVector<Operation *> stack;
  llvm::DenseSet<Operation *> seen;
  if (Operation *def = v.getDefiningOp())
    stack.push_back(def);
  while (!stack.empty()) {
    Operation *op = stack.pop_back_val();
    if (!seen.insert(op).second || position[op] < first)
      continue;
    if (groupOf(op) == &g)
      return true;
    for (Value operand : op->getOperands())
      if (Operation *def = operand.getDefiningOp())
        stack.push_back(def);
  }
  return false;
}

bool Fuser::readsOnlyArguments(Group &source) {
  return llvm::all_of(source.ops, [&](Operation *member) {
    return llvm::all_of(member->getOperands(), [&](Value v) {
      Operation *def = v.getDefiningOp();
      return !def || llvm::isa<ParamOp>(def) || groupOf(def) == &source ||
             isRecomputed(def);
    });
  });
}

bool Fuser::readsLate(Operation *op, Group &g) {
  unsigned anchor = position[g.anchor];
  // A group that reads only the step's arguments or parameters (a mask
  // computed from iotas, a reshaped bias) can be computed anywhere: the
  // final sort hoists its kernel before the anchor.
  return llvm::any_of(op->getOperands(), [&](Value v) {
    Operation *def = v.getDefiningOp();
    if (!def || groupOf(def) == &g || isRecomputed(def) ||
        position[def] < anchor)
      return false;
    Group *source = groupOf(def);
    return !source || !readsOnlyArguments(*source);
  });
}

bool Fuser::canJoin(Group &g, Operation *op) {
  unsigned at = position[op];
  // Every outside reader of the group's values must come after `op`.
  for (Operation *member : g.ops)
    for (Operation *user : member->getUsers())
      if (user != op && groupOf(user) != &g && position[user] < at)
        return false;
  // No other operand may be computed from the group (a cycle).
  for (Value operand : op->getOperands()) {
    Operation *def = operand.getDefiningOp();
    if (def && groupOf(def) == &g)
      continue;
    if (dependsOn(operand, g))
      return false;
  }
  return true;
}

Group *Fuser::epilogueWithOperands(Operation *op,
                                   SmallVectorImpl<Group *> &absorbed) {
  ArrayRef<int64_t> shape = shapeOf(op->getResult(0));
  for (Value operand : op->getOperands()) {
    Operation *def = operand.getDefiningOp();
    Group *g = def ? groupOf(def) : nullptr;
    if (!g || !g->anchor || shape != ArrayRef<int64_t>(g->epilogueShape))
      continue;
    // The other operands' groups, each brought along whole.
    absorbed.clear();
    bool fits = true;
    for (Value other : op->getOperands()) {
      Operation *otherDef = other.getDefiningOp();
      Group *source = otherDef ? groupOf(otherDef) : nullptr;
      if (!source || source == g || llvm::is_contained(absorbed, source))
        continue;
      fits =
          source->kind == KernelKind::elementwise && !source->anchor &&
          !readsOnlyArguments(*source) &&
          llvm::all_of(source->ops, [&](Operation *member) {
            return !llvm::isa<IotaOp>(member) &&
                   position[member] > position[g->anchor] &&
                   member->getNumResults() == 1 &&
                   shapeOf(member->getResult(0)) == shape &&
                   !readsLate(member, *g) &&
                   llvm::all_of(member->getUsers(),
                                [&](Operation *user) {
                                  return user == op || groupOf(user) == source;
                                }) &&
                   llvm::none_of(member->getOperands(), [&](Value v) {
                     Operation *d = v.getDefiningOp();
                     return d && groupOf(d) != source && dependsOn(v, *g);
                   });
          });
      if (!fits)
        break;
      absorbed.push_back(source);
    }
    if (!fits || absorbed.empty())
      continue;
    // Rule 5 for `op` itself (its operands from the groups brought along
    // do not depend on g: checked above).
    if (canJoin(*g, op))
      return g;
  }
  absorbed.clear();
  return nullptr;
}

void Fuser::merge(Group &into, Group &from) {
  for (Operation *op : from.ops) {
    into.ops.push_back(op);
    membership[op] = &into;
  }
  from.ops.clear();
  llvm::sort(into.ops, [&](Operation *a, Operation *b) {
    return position[a] < position[b];
  });
}

void Fuser::formGroups() {
  for (Operation &op : block.without_terminator()) {
    if (op.getNumResults() == 0 ||
        (op.getNumResults() != 1 && roleOf(&op) != Role::opaque &&
         roleOf(&op) != Role::collective))
      continue;
    Value result = op.getResult(0);
    if (isRecomputed(&op))
      continue;
    switch (roleOf(&op)) {
    case Role::source:
      break;
    case Role::injective: {
      SmallVector<Group *> absorbed;
      if (Group *g = epilogueWithOperands(&op, absorbed)) {
        for (Group *source : absorbed)
          merge(*g, *source);
        add(*g, &op);
        break;
      }
      Group *target = nullptr;
      for (Value operand : op.getOperands()) {
        Operation *def = operand.getDefiningOp();
        Group *g = def ? groupOf(def) : nullptr;
        bool readsIota = llvm::any_of(op.getOperands(), [](Value v) {
          return v.getDefiningOp<IotaOp>() != nullptr;
        });
        if (g && readsIota && g->kind != KernelKind::elementwise)
          continue;
        if (g && g->anchor && readsLate(&op, *g))
          continue;
        if (g && shapeOf(result) == ArrayRef<int64_t>(g->epilogueShape) &&
            canJoin(*g, &op)) {
          target = g;
          break;
        }
      }
      if (target) {
        add(*target, &op);
      } else {
        Group &g = newGroup(&op, KernelKind::elementwise);
        g.epilogueShape.assign(shapeOf(result).begin(), shapeOf(result).end());
      }
      break;
    }
    case Role::reduction: {
      // Prologue: the elementwise group producing the reduced input.
      Operation *def = op.getOperand(0).getDefiningOp();
      Group *producer = def ? groupOf(def) : nullptr;
      bool onlyHere =
          producer && producer->kind == KernelKind::elementwise &&
          shapeOf(op.getOperand(0)) ==
              ArrayRef<int64_t>(producer->epilogueShape) &&
          llvm::all_of(producer->ops, [&](Operation *member) {
            return llvm::all_of(member->getUsers(), [&](Operation *user) {
              return user == &op || groupOf(user) == producer;
            });
          });
      if (onlyHere && canJoin(*producer, &op)) {
        add(*producer, &op);
        producer->kind = KernelKind::reduction;
      } else {
        producer = &newGroup(&op, KernelKind::reduction);
      }
      producer->anchor = &op;
      producer->epilogueShape.assign(shapeOf(result).begin(),
                                     shapeOf(result).end());
      break;
    }
    case Role::matmul: {
      Group &g = newGroup(&op, KernelKind::matmul);
      g.anchor = &op;
      g.epilogueShape.assign(shapeOf(result).begin(), shapeOf(result).end());
      break;
    }
    case Role::collective: {
      Group &g = newGroup(&op, KernelKind::collective);
      g.anchor = &op;
      g.epilogueShape = {-2}; // nothing joins
      break;
    }
    case Role::opaque: {
      Group &g = newGroup(&op, KernelKind::opaque);
      g.anchor = &op;
      if (op.hasTrait<kiln::OpTrait::TakesEpilogue>() &&
          op.getNumResults() == 1)
        g.epilogueShape.assign(shapeOf(result).begin(), shapeOf(result).end());
      else
        g.epilogueShape = {-2}; // nothing joins: an impossible shape
      break;
    }
    }
  }
}

/// `matmul_add_relu`: the fused ops' names, repeats of one name folded.
std::string kernelName(ArrayRef<Operation *> ops) {
  SmallVector<std::string> parts;
  for (Operation *op : ops) {
    std::string part = op->getName().stripDialect().str();
    if (parts.empty() || parts.back() != part)
      parts.push_back(part);
  }
  if (parts.size() > 6) {
    size_t rest = parts.size() - 5;
    parts.resize(5);
    parts.push_back("and" + std::to_string(rest) + "more");
  }
  return llvm::join(parts, "_");
}

void Fuser::outline() {
  for (const std::unique_ptr<Group> &g : groups) {
    if (g->ops.empty()) // merged into another (rule 8)
      continue;
    llvm::DenseSet<Operation *> members(g->ops.begin(), g->ops.end());
    // Inputs: values from outside, except constants and recomputed scalar
    // arithmetic, which are cloned in (operands first), reading the
    // arguments they need.
    llvm::SetVector<Value> inputs;
    llvm::SetVector<Operation *> cloned;
    std::function<void(Value)> use = [&](Value operand) {
      Operation *def = operand.getDefiningOp();
      if (def && members.contains(def))
        return;
      if (def && isRecomputed(def)) {
        if (cloned.contains(def))
          return;
        for (Value v : def->getOperands())
          use(v);
        cloned.insert(def);
        return;
      }
      inputs.insert(operand);
    };
    for (Operation *op : g->ops)
      for (Value operand : op->getOperands())
        use(operand);
    // Results: values read outside the kernel.
    // (A collective kernel yields every result of its all-reduce.)
    SmallVector<Value> outputs;
    for (Operation *op : g->ops)
      for (Value result : op->getResults())
        if (g->kind == KernelKind::collective ||
            llvm::any_of(result.getUsers(), [&](Operation *user) {
              return !members.contains(user);
            }))
          outputs.push_back(result);

    // At the anchor when there is one (rule 7), else at the last op.
    OpBuilder b(g->anchor ? g->anchor : g->ops.back());
    auto kernel = b.create<KernelOp>(
        g->ops.back()->getLoc(), ValueRange(outputs).getTypes(),
        kernelName(g->ops), g->kind, inputs.getArrayRef());
    Block *body = new Block();
    kernel.getBody().push_back(body);
    IRMapping mapping;
    for (Value input : inputs)
      mapping.map(input, body->addArgument(input.getType(), input.getLoc()));
    OpBuilder inside = OpBuilder::atBlockEnd(body);
    // Constants first; recomputed scalars right before their first reader,
    // so that an epilogue after a reduction reads a value from after it.
    for (Operation *c : cloned)
      if (llvm::isa<ConstantOp, IotaOp>(c))
        inside.clone(*c, mapping);
    std::function<void(Operation *)> recompute = [&](Operation *op) {
      for (Value operand : op->getOperands()) {
        Operation *def = operand.getDefiningOp();
        if (def && cloned.contains(def) && !mapping.contains(operand)) {
          recompute(def);
          inside.clone(*def, mapping);
        }
      }
    };
    for (Operation *op : g->ops) {
      recompute(op);
      inside.clone(*op, mapping);
    }
    SmallVector<Value> yielded;
    for (Value v : outputs)
      yielded.push_back(mapping.lookup(v));
    inside.create<YieldOp>(kernel.getLoc(), yielded);

    for (auto [v, r] : llvm::zip(outputs, kernel.getResults()))
      v.replaceUsesWithIf(
          r, [&](OpOperand &use) { return !members.contains(use.getOwner()); });
    for (Operation *op : llvm::reverse(g->ops))
      op->erase();
    // (Forgotten as it goes: a kernel made later may take its address.)
    for (Operation *c : llvm::reverse(cloned))
      if (c->use_empty()) {
        recomputed.erase(c);
        c->erase();
      }
    LLVM_DEBUG(llvm::dbgs() << "kernel " << kernel.getName() << ": "
                            << g->ops.size() << " ops, " << inputs.size()
                            << " inputs, " << outputs.size() << " outputs\n");
  }
}

struct FusePass : kiln::impl::KilnFuseBase<FusePass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    Fuser fuser(func.getBody().front());
    fuser.formGroups();
    fuser.outline();
    // Kernels placed at their anchor may precede a kernel producing one of
    // their inputs: move each to the first point where its inputs are ready
    // (a stable sort: kernels already in order stay where they are).
    sortTopologically(&func.getBody().front());
  }
};

} // namespace
