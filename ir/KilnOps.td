//===- KilnOps.td - the kiln dialect: every op of the tensor IR ------------===//
//
// The `kiln` dialect is a typed dataflow IR of tensor ops on builtin ranked
// tensor types. A dimension the model leaves symbolic (the batch) is dynamic
// (`?`). Every op implements InferTypeOpInterface: its shape function is both
// the verifier of its operands and the rule that shape inference applies, so
// there is exactly one place that knows the shape semantics of an op.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_OPS_TD
#define KILN_OPS_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/OpAsmInterface.td"

//===----------------------------------------------------------------------===//
// Dialect
//===----------------------------------------------------------------------===//

def Kiln_Dialect : Dialect {
  let name = "kiln";
  let cppNamespace = "::kiln";
  let summary = "Tensor ops of kiln models and training steps";
  let description = [{
    The kiln dialect holds the ops that model files are made of: parameters
    with initializers, elementwise math with NumPy broadcasting, matmul,
    layout ops, reductions, and the fused primitives of deep learning
    (softmax, cross-entropy, layer norm, convolution, pooling, embedding,
    dropout). A model is a `func.func` whose arguments are the model's inputs
    and whose results are its loss and metrics.
  }];
  // The attributes of KilnOps.td and of Schedules.td (generated apart).
  let useDefaultAttributePrinterParser = 0;
  let hasConstantMaterializer = 1;
  let extraClassDeclaration = [{
    mlir::Attribute parseAttribute(mlir::DialectAsmParser &parser,
                                   mlir::Type type) const override;
    void printAttribute(mlir::Attribute attr,
                        mlir::DialectAsmPrinter &printer) const override;

  private:
    /// Registers the attributes of Schedules.td (ir/Schedules.cpp).
    void registerScheduleAttributes();
  }];
}

//===----------------------------------------------------------------------===//
// Enums and attributes
//===----------------------------------------------------------------------===//

def Kiln_CmpPredicate : I32EnumAttr<"CmpPredicate", "comparison predicate", [
    I32EnumAttrCase<"eq", 0>, I32EnumAttrCase<"ne", 1>,
    I32EnumAttrCase<"lt", 2>, I32EnumAttrCase<"le", 3>,
    I32EnumAttrCase<"gt", 4>, I32EnumAttrCase<"ge", 5>]> {
  let cppNamespace = "::kiln";
}

def Kiln_GeluApproximation : I32EnumAttr<"GeluApproximation",
    "GELU formula", [
    I32EnumAttrCase<"none", 0>, I32EnumAttrCase<"tanh", 1>]> {
  let cppNamespace = "::kiln";
}

def Kiln_AllReduceKind : I32EnumAttr<"AllReduceKind",
    "how an all-reduce combines the ranks' tensors", [
    I32EnumAttrCase<"sum", 0>, I32EnumAttrCase<"mean", 1>]> {
  let cppNamespace = "::kiln";
}

def Kiln_InitKind : I32EnumAttr<"InitKind", "parameter initializer", [
    I32EnumAttrCase<"zeros", 0>, I32EnumAttrCase<"ones", 1>,
    I32EnumAttrCase<"constant", 2>, I32EnumAttrCase<"normal", 3>,
    I32EnumAttrCase<"uniform", 4>, I32EnumAttrCase<"kaiming_uniform", 5>,
    I32EnumAttrCase<"kaiming_normal", 6>, I32EnumAttrCase<"xavier_uniform", 7>,
    I32EnumAttrCase<"xavier_normal", 8>]> {
  let cppNamespace = "::kiln";
  let genSpecializedAttr = 0;
}

def Kiln_InitializerAttr : AttrDef<Kiln_Dialect, "Initializer"> {
  let mnemonic = "init";
  let summary = "How a trainable parameter is initialized";
  let description = [{
    An initializer kind and up to two numbers whose meaning depends on the
    kind. Fan-in and fan-out follow PyTorch: for a weight of shape
    `[out, in, k...]`, fan_in = in * prod(k) and fan_out = out * prod(k).

    | kind | printed as | values drawn from |
    |---|---|---|
    | zeros, ones | `zeros` | the constant |
    | constant | `constant(value = v)` | v |
    | normal | `normal(mean = m, std = s)` | N(m, s^2) |
    | uniform | `uniform(low = a, high = b)` | U(a, b) |
    | kaiming_uniform | `kaiming_uniform(gain = g)` | U(-b, b), b = g * sqrt(3 / fan_in) |
    | kaiming_normal | `kaiming_normal(gain = g)` | N(0, (g / sqrt(fan_in))^2) |
    | xavier_uniform | `xavier_uniform(gain = g)` | U(-b, b), b = g * sqrt(6 / (fan_in + fan_out)) |
    | xavier_normal | `xavier_normal(gain = g)` | N(0, g^2 * 2 / (fan_in + fan_out)) |

    Example: `#kiln.init<normal(mean = 0.0, std = 2.0e-02)>`.
  }];
  let parameters = (ins "::kiln::InitKind":$kind, APFloatParameter<"first argument">:$a,
                        APFloatParameter<"second argument">:$b);
  let builders = [AttrBuilder<(ins "::kiln::InitKind":$kind, "double":$a, "double":$b), [{
    return $_get($_ctxt, kind, ::llvm::APFloat(a), ::llvm::APFloat(b));
  }]>];
  let hasCustomAssemblyFormat = 1;
  let extraClassDeclaration = [{
    /// Names of the numeric arguments of `kind`, in order (at most two).
    static llvm::ArrayRef<llvm::StringRef> argumentNames(::kiln::InitKind kind);
    /// The default numeric arguments of `kind`.
    static std::pair<double, double> defaultArguments(::kiln::InitKind kind);
  }];
}

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

def Kiln_FloatTensor : RankedTensorOf<[F16, BF16, F32, F64]>;
def Kiln_IndexTensor : RankedTensorOf<[I32, I64]>;
def Kiln_BoolTensor : RankedTensorOf<[I1]>;
def Kiln_NumericTensor : RankedTensorOf<[F16, BF16, F32, F64, I32, I64]>;
def Kiln_AnyTensor : RankedTensorOf<[F16, BF16, F32, F64, I1, I32, I64]>;

//===----------------------------------------------------------------------===//
// Base classes
//===----------------------------------------------------------------------===//

// Op classes, asked with `op->hasTrait<...>()` by fusion and the code
// generators (ir/OpTraits.h).

// Each result element is a function of the operands' elements at the same
// index (NumPy broadcasting): the ops fusion chains into elementwise
// kernels, prologues and epilogues, and the generators write as scalar C.
def Kiln_Injective : NativeOpTrait<"Injective"> {
  let cppNamespace = "::kiln::OpTrait";
}

// Reduces its first operand along some dimensions (ir/Schedules.h,
// reducedDims), possibly with a row-wise epilogue of the operand's shape
// (softmax, layer norm): the main op of a reduction kernel.
def Kiln_RowReduction : NativeOpTrait<"RowReduction"> {
  let cppNamespace = "::kiln::OpTrait";
}

// An opaque op whose code generators produce each result element once, at
// a point where scalar code on that element can follow: elementwise ops on
// its result's shape fuse into its kernel as an epilogue (a convolution's
// bias and activation, a pooling gradient's activation mask), so the result
// need not make a round trip through memory.
def Kiln_TakesEpilogue : NativeOpTrait<"TakesEpilogue"> {
  let cppNamespace = "::kiln::OpTrait";
}

// Every kiln op infers its result types from its operands and attributes.
// Declared result types may be less refined than the inferred ones (a `?`
// where inference knows the size); the shape inference pass refines them.
class Kiln_Op<string mnemonic, list<Trait> traits = []> :
    Op<Kiln_Dialect, mnemonic,
       !listconcat(traits, [InferTypeOpAdaptorWithIsCompatible])> {
  code kilnExtraDefinition = "";
  let extraClassDefinition = [{
    bool $cppClass::isCompatibleReturnTypes(::mlir::TypeRange l,
                                            ::mlir::TypeRange r) {
      return ::kiln::areCompatibleResultTypes(l, r);
    }
  }] # kilnExtraDefinition;
}

class Kiln_UnaryOp<string mnemonic, Type type, string doc> :
    Kiln_Op<mnemonic, [Pure, Kiln_Injective]> {
  let summary = "elementwise " # doc;
  let description = [{
    Applies }] # doc # [{ to every element. The result has the operand's type.

    ```mlir
    %y = kiln.}] # mnemonic # [{ %x : tensor<?x512xf32>
    ```
  }];
  let arguments = (ins type:$input);
  let results = (outs type:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

class Kiln_BinaryOp<string mnemonic, Type type, string doc> :
    Kiln_Op<mnemonic, [Pure, Kiln_Injective]> {
  let summary = "elementwise " # doc # " with NumPy broadcasting";
  let description = [{
    Computes }] # doc # [{ of the two operands element by element. Both
    operands have the same element type; their shapes broadcast as in NumPy:
    aligned from the right, a dimension of size 1 stretches to the other.

    ```mlir
    %z = kiln.}] # mnemonic # [{ %a, %b : (tensor<?x512xf32>, tensor<512xf32>) -> tensor<?x512xf32>
    ```
  }];
  let arguments = (ins type:$lhs, type:$rhs);
  let results = (outs type:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` functional-type(operands, results)
  }];
}

class Kiln_ReduceOp<string mnemonic, string doc> :
    Kiln_Op<mnemonic, [Pure, Kiln_RowReduction]> {
  let summary = doc # " over axes";
  let description = [{
    Reduces the operand over `axes` (all axes when the list is empty) by }] #
    doc # [{. Negative axes count from the end. With `keepdims` the reduced
    dimensions stay as size 1.

    ```mlir
    %s = kiln.}] # mnemonic # [{ %x [1] keepdims : (tensor<?x10xf32>) -> tensor<?x1xf32>
    ```
  }];
  let arguments = (ins Kiln_NumericTensor:$input, DenseI64ArrayAttr:$axes,
                       UnitAttr:$keepdims);
  let results = (outs Kiln_NumericTensor:$result);
  let assemblyFormat = [{
    $input $axes (`keepdims` $keepdims^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

class Kiln_PoolOp<string mnemonic, string doc>
    : Kiln_Op<mnemonic, [Pure, Kiln_TakesEpilogue]> {
  let summary = "2-D " # doc # " pooling, NCHW";
  let description = [{
    Slides a `kernel` window over the last two dimensions of an NCHW tensor
    with `stride`, after `padding` on each side, and takes the }] # doc # [{ of
    each window. Output size: `(H + 2 * padding - kernel) / stride + 1`.

    ```mlir
    %y = kiln.}] # mnemonic # [{ %x kernel [2, 2] stride [2, 2] padding [0, 0]
        : (tensor<?x32x28x28xf32>) -> tensor<?x32x14x14xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, DenseI64ArrayAttr:$kernel,
                       DenseI64ArrayAttr:$stride, DenseI64ArrayAttr:$padding);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `kernel` $kernel `stride` $stride `padding` $padding attr-dict `:`
    functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Constants and parameters
//===----------------------------------------------------------------------===//

def Kiln_ConstantOp : Kiln_Op<"constant", [ConstantLike, Pure]> {
  let summary = "a constant tensor";
  let description = [{
    A tensor whose value is known at compile time. Scalar literals of the
    model language become rank-0 constants.

    ```mlir
    %c = kiln.constant dense<5.000000e-01> : tensor<f32>
    ```
  }];
  let arguments = (ins ElementsAttr:$value);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat = "attr-dict $value";
  let hasFolder = 1;
}

def Kiln_ParamOp : Kiln_Op<"param",
    [Pure, DeclareOpInterfaceMethods<OpAsmOpInterface, ["getAsmResultNames"]>]> {
  let summary = "a trainable parameter";
  let description = [{
    A trainable tensor of the model, named by a stable dotted name (the name
    a checkpoint stores it under) and initialized by `init`. Its type is fully
    static and of a float element type.

    ```mlir
    %w = kiln.param "l1.weight" : tensor<512x784xf32>
        init #kiln.init<kaiming_uniform(gain = 1.0)>
    ```
  }];
  let arguments = (ins StrAttr:$name, Kiln_InitializerAttr:$init,
                       TypeAttrOf<Kiln_FloatTensor>:$type);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$name `:` $type `init` qualified($init) attr-dict";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise unary
//===----------------------------------------------------------------------===//

def Kiln_NegOp : Kiln_UnaryOp<"neg", Kiln_NumericTensor, "negation">;
def Kiln_AbsOp : Kiln_UnaryOp<"abs", Kiln_NumericTensor, "absolute value">;
def Kiln_ExpOp : Kiln_UnaryOp<"exp", Kiln_FloatTensor, "e to the power x">;
def Kiln_LogOp : Kiln_UnaryOp<"log", Kiln_FloatTensor, "natural logarithm">;
def Kiln_TanhOp : Kiln_UnaryOp<"tanh", Kiln_FloatTensor, "hyperbolic tangent">;
def Kiln_SigmoidOp : Kiln_UnaryOp<"sigmoid", Kiln_FloatTensor,
                                  "the logistic function 1 / (1 + exp(-x))">;
def Kiln_ReluOp : Kiln_UnaryOp<"relu", Kiln_FloatTensor, "max(x, 0)">;
def Kiln_SqrtOp : Kiln_UnaryOp<"sqrt", Kiln_FloatTensor, "square root">;
def Kiln_RsqrtOp : Kiln_UnaryOp<"rsqrt", Kiln_FloatTensor,
                                "reciprocal square root">;
def Kiln_CosOp : Kiln_UnaryOp<"cos", Kiln_FloatTensor, "cosine">;
def Kiln_SinOp : Kiln_UnaryOp<"sin", Kiln_FloatTensor, "sine">;
def Kiln_FloorOp : Kiln_UnaryOp<"floor", Kiln_FloatTensor,
                                "the largest integer not above x">;

def Kiln_GeluOp : Kiln_Op<"gelu", [Pure, Kiln_Injective]> {
  let summary = "elementwise GELU";
  let description = [{
    The Gaussian error linear unit `x * Phi(x)`, exact (`erf`) by default or
    with the `tanh` approximation of GPT-2.

    ```mlir
    %y = kiln.gelu %x approximate tanh : tensor<?x1536xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input,
      DefaultValuedAttr<Kiln_GeluApproximation,
                        "::kiln::GeluApproximation::none">:$approximate);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input (`approximate` $approximate^)? attr-dict `:` type($input)
  }];
}

def Kiln_CastOp : Kiln_Op<"cast", [Pure, SameOperandsAndResultShape, Kiln_Injective]> {
  let summary = "element type conversion";
  let description = [{
    Converts every element to the element type of the result: floats round to
    nearest, float to integer truncates toward zero, `i1` becomes 0 or 1.

    ```mlir
    %f = kiln.cast %b : tensor<?xi1> to f32
    ```
  }];
  let arguments = (ins Kiln_AnyTensor:$input, TypeAttr:$element_type);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `to` $element_type";
  let hasFolder = 1;
  let builders = [
    OpBuilder<(ins "::mlir::Value":$input, "::mlir::Type":$elementType)>
  ];
}

//===----------------------------------------------------------------------===//
// Elementwise binary, compare, select
//===----------------------------------------------------------------------===//

def Kiln_AddOp : Kiln_BinaryOp<"add", Kiln_NumericTensor, "the sum">;
def Kiln_SubOp : Kiln_BinaryOp<"sub", Kiln_NumericTensor, "the difference">;
def Kiln_MulOp : Kiln_BinaryOp<"mul", Kiln_NumericTensor, "the product">;
def Kiln_DivOp : Kiln_BinaryOp<"div", Kiln_NumericTensor, "the quotient">;
def Kiln_MaxOp : Kiln_BinaryOp<"max", Kiln_NumericTensor, "the maximum">;
def Kiln_MinOp : Kiln_BinaryOp<"min", Kiln_NumericTensor, "the minimum">;
def Kiln_PowOp : Kiln_BinaryOp<"pow", Kiln_FloatTensor,
                               "lhs raised to the power rhs">;

def Kiln_CmpOp : Kiln_Op<"cmp", [Pure, Kiln_Injective]> {
  let summary = "elementwise comparison with broadcasting";
  let description = [{
    Compares two tensors of one element type element by element, with NumPy
    broadcasting, and yields an `i1` tensor.

    ```mlir
    %m = kiln.cmp eq, %a, %b : (tensor<?xi32>, tensor<?xi32>) -> tensor<?xi1>
    ```
  }];
  let arguments = (ins Kiln_CmpPredicate:$predicate, Kiln_NumericTensor:$lhs,
                       Kiln_NumericTensor:$rhs);
  let results = (outs Kiln_BoolTensor:$result);
  let assemblyFormat = [{
    $predicate `,` $lhs `,` $rhs attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_SelectOp : Kiln_Op<"select", [Pure, Kiln_Injective]> {
  let summary = "elementwise choice with broadcasting";
  let description = [{
    Takes `true_value` where `condition` holds and `false_value` elsewhere;
    the three shapes broadcast together.

    ```mlir
    %y = kiln.select %m, %a, %b
        : (tensor<?x10xi1>, tensor<?x10xf32>, tensor<f32>) -> tensor<?x10xf32>
    ```
  }];
  let arguments = (ins Kiln_BoolTensor:$condition,
                       Kiln_AnyTensor:$true_value, Kiln_AnyTensor:$false_value);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat = [{
    $condition `,` $true_value `,` $false_value attr-dict `:`
    functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Matmul and layout
//===----------------------------------------------------------------------===//

def Kiln_MatmulOp : Kiln_Op<"matmul", [Pure]> {
  let summary = "batched matrix product";
  let description = [{
    Multiplies the last two dimensions of `lhs` (`[..., M, K]`) and `rhs`
    (`[..., K, N]`); leading batch dimensions broadcast. `transpose_lhs` and
    `transpose_rhs` swap the last two dimensions of an operand first, as a
    GEMM's transposed operand modes do, so no transpose is materialized.

    ```mlir
    %y = kiln.matmul %x, %w transpose_rhs
        : (tensor<?x784xf32>, tensor<512x784xf32>) -> tensor<?x512xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$lhs, Kiln_FloatTensor:$rhs,
                       UnitAttr:$transpose_lhs, UnitAttr:$transpose_rhs);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs (`transpose_lhs` $transpose_lhs^)?
    (`transpose_rhs` $transpose_rhs^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_TransposeOp : Kiln_Op<"transpose", [Pure]> {
  let summary = "permute dimensions";
  let description = [{
    Result dimension `i` is operand dimension `permutation[i]`.

    ```mlir
    %t = kiln.transpose %x [1, 0] : (tensor<?x10xf32>) -> tensor<10x?xf32>
    ```
  }];
  let arguments = (ins Kiln_AnyTensor:$input, DenseI64ArrayAttr:$permutation);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat = [{
    $input $permutation attr-dict `:` functional-type(operands, results)
  }];
  let hasFolder = 1;
}

def Kiln_ReshapeOp : Kiln_Op<"reshape", [Pure]> {
  let summary = "change the shape, keeping the elements in row-major order";
  let description = [{
    `shape` lists the new sizes; at most one entry is -1, meaning the size
    that keeps the element count (dynamic when the operand has a dynamic
    dimension).

    ```mlir
    %f = kiln.reshape %x [-1, 784] : (tensor<?x28x28xf32>) -> tensor<?x784xf32>
    ```
  }];
  let arguments = (ins Kiln_AnyTensor:$input, DenseI64ArrayAttr:$shape);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat = [{
    $input $shape attr-dict `:` functional-type(operands, results)
  }];
  let hasFolder = 1;
}

def Kiln_BroadcastOp : Kiln_Op<"broadcast", [Pure, Kiln_Injective]> {
  let summary = "broadcast to the shape of another tensor";
  let description = [{
    Stretches `input` to the shape of `like` by NumPy rules (only `like`'s
    shape is used, never its values). Taking the target shape from a value
    keeps dynamic dimensions (the batch) expressible.

    ```mlir
    %b = kiln.broadcast %g, %x : (tensor<1x10xf32>, tensor<?x10xf32>) -> tensor<?x10xf32>
    ```
  }];
  let arguments = (ins Kiln_AnyTensor:$input, Kiln_AnyTensor:$like);
  let results = (outs Kiln_AnyTensor:$result);
  let assemblyFormat = [{
    $input `,` $like attr-dict `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

def Kiln_ReduceSumOp : Kiln_ReduceOp<"reduce_sum", "the sum">;
def Kiln_ReduceMeanOp : Kiln_ReduceOp<"reduce_mean", "the mean">;
def Kiln_ReduceMaxOp : Kiln_ReduceOp<"reduce_max", "the maximum">;

def Kiln_ArgmaxOp : Kiln_Op<"argmax", [Pure, Kiln_RowReduction]> {
  let summary = "index of the maximum along one axis";
  let description = [{
    The `i32` index of the first maximum along `axis`.

    ```mlir
    %i = kiln.argmax %logits axis 1 : (tensor<?x10xf32>) -> tensor<?xi32>
    ```
  }];
  let arguments = (ins Kiln_NumericTensor:$input, I64Attr:$axis,
                       UnitAttr:$keepdims);
  let results = (outs RankedTensorOf<[I32]>:$result);
  let assemblyFormat = [{
    $input `axis` $axis (`keepdims` $keepdims^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Normalization and losses (primitives with fused kernels and gradients)
//===----------------------------------------------------------------------===//

def Kiln_SoftmaxOp : Kiln_Op<"softmax", [Pure, Kiln_RowReduction]> {
  let summary = "softmax along one axis";
  let description = [{
    `exp(x - max) / sum(exp(x - max))` along `axis`, computed stably.

    ```mlir
    %p = kiln.softmax %x axis -1 : tensor<?x10xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, I64Attr:$axis);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input `axis` $axis attr-dict `:` type($input)";
}

def Kiln_LogSoftmaxOp : Kiln_Op<"log_softmax", [Pure, Kiln_RowReduction]> {
  let summary = "log of softmax along one axis";
  let description = [{
    `x - max - log(sum(exp(x - max)))` along `axis`, computed stably.

    ```mlir
    %l = kiln.log_softmax %x axis -1 : tensor<?x10xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, I64Attr:$axis);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input `axis` $axis attr-dict `:` type($input)";
}

def Kiln_CrossEntropyOp : Kiln_Op<"cross_entropy", [Pure, Kiln_RowReduction]> {
  let summary = "mean softmax cross-entropy with integer labels";
  let description = [{
    For logits `[..., C]` and integer labels `[...]` in `[0, C)`, the mean
    over all label positions of `-log_softmax(logits)[label]`. A primitive
    because its fused kernel and its gradient `softmax - onehot` beat the
    decomposition.

    ```mlir
    %loss = kiln.cross_entropy %logits, %label
        : (tensor<?x10xf32>, tensor<?xi32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$logits, Kiln_IndexTensor:$labels);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $logits `,` $labels attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_LayerNormOp : Kiln_Op<"layer_norm", [Pure, Kiln_RowReduction]> {
  let summary = "layer normalization over the last dimension";
  let description = [{
    Normalizes each row of the last dimension to zero mean and unit variance
    (biased variance, plus `epsilon`), then scales by `weight` and shifts by
    `bias`, both of shape `[D]`.

    ```mlir
    %y = kiln.layer_norm %x, %g, %b eps 1.000000e-05
        : (tensor<?x256x384xf32>, tensor<384xf32>, tensor<384xf32>) -> tensor<?x256x384xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$weight,
                       Kiln_FloatTensor:$bias, F64Attr:$epsilon);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `,` $bias `eps` $epsilon attr-dict `:`
    functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Convolution, pooling, embedding, dropout
//===----------------------------------------------------------------------===//

def Kiln_Conv2dOp : Kiln_Op<"conv2d", [Pure, Kiln_TakesEpilogue]> {
  let summary = "2-D convolution, NCHW input, OIHW weight";
  let description = [{
    Cross-correlates `input` `[N, C, H, W]` with `weight` `[O, C, KH, KW]`
    after zero `padding` on each side, moving by `stride`. Output:
    `[N, O, (H + 2 * ph - KH) / sh + 1, (W + 2 * pw - KW) / sw + 1]`. A bias
    is a separate broadcast add.

    ```mlir
    %y = kiln.conv2d %x, %w stride [1, 1] padding [1, 1]
        : (tensor<?x1x28x28xf32>, tensor<32x1x3x3xf32>) -> tensor<?x32x28x28xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$weight,
                       DenseI64ArrayAttr:$stride, DenseI64ArrayAttr:$padding);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `stride` $stride `padding` $padding attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_MaxPool2dOp : Kiln_PoolOp<"max_pool2d", "maximum">;
def Kiln_AvgPool2dOp : Kiln_PoolOp<"avg_pool2d", "average (padding counted)">;

def Kiln_EmbeddingOp : Kiln_Op<"embedding", [Pure]> {
  let summary = "row gather from a table";
  let description = [{
    For a table `[V, D]` and integer indices of any shape `S`, the rows
    `table[indices]` of shape `S + [D]`.

    ```mlir
    %e = kiln.embedding %table, %tokens
        : (tensor<65x384xf32>, tensor<?x256xi32>) -> tensor<?x256x384xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$weight, Kiln_IndexTensor:$indices);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $weight `,` $indices attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_DropoutOp : Kiln_Op<"dropout", [Pure, Kiln_Injective]> {
  let summary = "inverted dropout with a counter-based random mask";
  let description = [{
    In training, zeroes each element with probability `rate` and scales the
    rest by `1 / (1 - rate)`; in evaluation it is the identity. The mask is a
    function of the step's seed, `stream` (unique per dropout op of a model)
    and the element index, so the backward pass regenerates it.

    ```mlir
    %y = kiln.dropout %x rate 1.000000e-01 stream 0 : tensor<?x512xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, F64Attr:$rate,
                       I64Attr:$stream);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `rate` $rate `stream` $stream attr-dict `:` type($input)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Composites: kept in the IR as the user wrote them, lowered by
// kiln-decompose into primitives (see docs/architecture.md).
//===----------------------------------------------------------------------===//

def Kiln_LinearOp : Kiln_Op<"linear", [Pure]> {
  let summary = "affine layer x @ W^T + b";
  let description = [{
    A fully connected layer with a PyTorch-layout weight `[out, in]` and an
    optional bias `[out]`. Composite: `kiln-decompose` lowers it to
    `kiln.matmul ... transpose_rhs` and a broadcast `kiln.add`, which fusion
    turns back into one GEMM with a bias epilogue.

    ```mlir
    %y = kiln.linear %x, %w, %b
        : (tensor<?x784xf32>, tensor<512x784xf32>, tensor<512xf32>) -> tensor<?x512xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$weight,
                       Optional<Kiln_FloatTensor>:$bias);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_AccuracyOp : Kiln_Op<"accuracy", [Pure]> {
  let summary = "fraction of correct argmax predictions";
  let description = [{
    For logits `[..., C]` and labels `[...]`, the mean of
    `argmax(logits, -1) == labels` as a float scalar. Composite: lowered to
    argmax, cmp, cast and reduce_mean.

    ```mlir
    %acc = kiln.accuracy %logits, %label
        : (tensor<?x10xf32>, tensor<?xi32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$logits, Kiln_IndexTensor:$labels);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $logits `,` $labels attr-dict `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Attention: a primitive with fused kernels of its own
//===----------------------------------------------------------------------===//

def Kiln_AttentionOp : Kiln_Op<"attention", [Pure]> {
  let summary = "scaled dot-product attention, with its row log-sum-exp";
  let description = [{
    `softmax(scale * query @ key^T + mask) @ value` with PyTorch's
    `F.scaled_dot_product_attention` semantics: `query [..., Tq, D]`,
    `key [..., Tk, D]`, `value [..., Tk, Dv]` give `result [..., Tq, Dv]`;
    the leading (batch, head) dimensions broadcast. With `causal`, query `i`
    sees the keys `j <= i` (top-left aligned, like `is_causal=True`).

    The second result, `lse [..., Tq]` (the query's element type), is the
    log-sum-exp of each query row's masked, scaled scores,
    `log(sum_j exp(scale * q_i . k_j))`: the softmax's normalizer, which the
    backward pass (`kiln.attention_grad_q`, `kiln.attention_grad_kv`) needs
    to recompute the probabilities tile by tile. The frontend only exposes
    `result`; `kiln-autodiff` passes `lse` to the gradient ops, so the
    forward kernel saves one number per row instead of the `[..., Tq, Tk]`
    probabilities. A primitive: one fused (flash-attention) kernel that
    never writes the scores to memory (codegen/Attention.cpp,
    docs/architecture.md).

    ```mlir
    %o, %lse = kiln.attention %q, %k, %v causal scale 1.250000e-01
        : (tensor<?x6x256x64xf32>, tensor<?x6x256x64xf32>, tensor<?x6x256x64xf32>)
        -> (tensor<?x6x256x64xf32>, tensor<?x6x256xf32>)
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$query, Kiln_FloatTensor:$key,
                       Kiln_FloatTensor:$value, UnitAttr:$causal,
                       F64Attr:$scale);
  let results = (outs Kiln_FloatTensor:$result, Kiln_FloatTensor:$lse);
  let assemblyFormat = [{
    $query `,` $key `,` $value (`causal` $causal^)? `scale` $scale attr-dict
    `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Index primitives
//===----------------------------------------------------------------------===//

def Kiln_AllReduceOp : Kiln_Op<"all_reduce", [Pure]> {
  let summary = "combine tensors across the ranks of a data-parallel run";
  let description = [{
    Each result is its operand summed (`sum`) or averaged (`mean`) over
    every rank of a data-parallel run, elementwise; every rank gets the
    same values. With one rank it is the identity (and the runtime skips
    it). `kiln-data-parallel` puts it between the gradients and the
    optimizer update, one op per bucket of gradients, right after the
    last of them is computed:

    ```mlir
    %g:2 = kiln.all_reduce mean %gw, %gb : tensor<512x784xf32>, tensor<512xf32>
    ```

    It becomes a `collective` kernel of its own: no code is generated; the
    runtime's communicator (MPI, NCCL) reduces the buffers in place.
  }];
  let arguments = (ins Kiln_AllReduceKind:$kind,
                       Variadic<Kiln_FloatTensor>:$inputs);
  let results = (outs Variadic<Kiln_FloatTensor>:$results);
  let assemblyFormat = [{
    $kind $inputs attr-dict `:` type($inputs)
  }];
  let hasVerifier = 1;
}

def Kiln_IotaOp : Kiln_Op<"iota", [Pure]> {
  let summary = "each element's index along one dimension";
  let description = [{
    An `i32` tensor of the static `shape` whose element at `(i0, i1, ...)`
    is `i<dimension>`. It reads no memory: fusion clones it into the
    elementwise kernels that use it (like a constant), and the code
    generators compute it from the element's multi-index.

    ```mlir
    %rows = kiln.iota [256, 256] dim 0 : tensor<256x256xi32>
    ```
  }];
  let arguments = (ins DenseI64ArrayAttr:$shape, I64Attr:$dimension);
  let results = (outs RankedTensorOf<[I32]>:$result);
  let assemblyFormat = "$shape `dim` $dimension attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Gradient primitives: ops that gradient rules build where a dedicated
// kernel beats the decomposition.
//===----------------------------------------------------------------------===//

def Kiln_CountOp : Kiln_Op<"count", [Pure, Kiln_RowReduction]> {
  let summary = "number of elements along axes, as a float scalar";
  let description = [{
    The number of elements of `input` along `axes` (all axes when empty), as
    a scalar of the input's element type. Only the shape of `input` is used,
    so the count of a dynamic dimension is known at run time: the gradient
    of `reduce_mean` divides by it.

    ```mlir
    %n = kiln.count %x [0] : (tensor<?x10xf32>) -> tensor<f32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, DenseI64ArrayAttr:$axes);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input $axes attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_CrossEntropyGradOp : Kiln_Op<"cross_entropy_grad", [Pure, Kiln_RowReduction]> {
  let summary = "gradient of cross_entropy with respect to the logits";
  let description = [{
    `(softmax(logits) - onehot(labels)) * grad / N` for N label positions,
    where `grad` is the scalar gradient of the loss: the one-pass backward
    kernel of `kiln.cross_entropy`.

    ```mlir
    %d = kiln.cross_entropy_grad %logits, %label, %g
        : (tensor<?x10xf32>, tensor<?xi32>, tensor<f32>) -> tensor<?x10xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$logits, Kiln_IndexTensor:$labels,
                       Kiln_FloatTensor:$grad);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $logits `,` $labels `,` $grad attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_GeluGradOp : Kiln_Op<"gelu_grad", [Pure, Kiln_Injective]> {
  let summary = "gradient of gelu";
  let description = [{
    `grad * gelu'(input)` elementwise, for the same `approximate` formula as
    the forward op.

    ```mlir
    %d = kiln.gelu_grad %x, %g : (tensor<?x1536xf32>, tensor<?x1536xf32>) -> tensor<?x1536xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$grad,
      DefaultValuedAttr<Kiln_GeluApproximation,
                        "::kiln::GeluApproximation::none">:$approximate);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $grad (`approximate` $approximate^)? attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_Conv2dGradInputOp : Kiln_Op<"conv2d_grad_input", [Pure]> {
  let summary = "gradient of conv2d with respect to the input";
  let description = [{
    The gradient of `kiln.conv2d` with respect to its NCHW input: every
    element of `grad` `[N, O, OH, OW]` goes back, weighted by `weight`
    `[O, C, KH, KW]`, to the input elements of its window (a transposed
    convolution). The result has the shape of `input_like`, of which only the
    shape is used: with a stride above 1 several input sizes give the same
    output size, so the size cannot be derived from `grad`. Elements that no
    window covers get zero.

    ```mlir
    %dx = kiln.conv2d_grad_input %g, %w, %x stride [2, 2] padding [1, 1]
        : (tensor<?x32x14x14xf32>, tensor<32x1x3x3xf32>, tensor<?x1x28x28xf32>) -> tensor<?x1x28x28xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$grad, Kiln_FloatTensor:$weight,
                       Kiln_FloatTensor:$input_like,
                       DenseI64ArrayAttr:$stride, DenseI64ArrayAttr:$padding);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $grad `,` $weight `,` $input_like `stride` $stride `padding` $padding
    attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_Conv2dGradWeightOp : Kiln_Op<"conv2d_grad_weight", [Pure]> {
  let summary = "gradient of conv2d with respect to the weight";
  let description = [{
    The gradient of `kiln.conv2d` with respect to its OIHW weight: for each
    weight element, the sum over the batch and the output positions of
    `grad` `[N, O, OH, OW]` times the input element that the weight element
    met there (zero in the padding). The result has the shape of
    `weight_like`, of which only the shape is used.

    ```mlir
    %dw = kiln.conv2d_grad_weight %x, %g, %w stride [1, 1] padding [1, 1]
        : (tensor<?x1x28x28xf32>, tensor<?x32x28x28xf32>, tensor<32x1x3x3xf32>) -> tensor<32x1x3x3xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$grad,
                       Kiln_FloatTensor:$weight_like,
                       DenseI64ArrayAttr:$stride, DenseI64ArrayAttr:$padding);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $grad `,` $weight_like `stride` $stride `padding` $padding
    attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_MaxPool2dGradOp : Kiln_Op<"max_pool2d_grad", [Pure, Kiln_TakesEpilogue]> {
  let summary = "gradient of max_pool2d with respect to the input";
  let description = [{
    Routes each element of `grad` to the maximum of its window of `input`
    (padding never wins); where windows overlap, the contributions add up.
    On ties the first maximum in row-major window order takes the whole
    gradient, as in PyTorch: the result is a subgradient there, not the
    derivative.

    ```mlir
    %dx = kiln.max_pool2d_grad %x, %g kernel [2, 2] stride [2, 2] padding [0, 0]
        : (tensor<?x32x28x28xf32>, tensor<?x32x14x14xf32>) -> tensor<?x32x28x28xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$grad,
                       DenseI64ArrayAttr:$kernel, DenseI64ArrayAttr:$stride,
                       DenseI64ArrayAttr:$padding);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $grad `kernel` $kernel `stride` $stride `padding` $padding
    attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_AvgPool2dGradOp : Kiln_Op<"avg_pool2d_grad", [Pure, Kiln_TakesEpilogue]> {
  let summary = "gradient of avg_pool2d with respect to the input";
  let description = [{
    Spreads each element of `grad` evenly over its window: every input
    element of the window gets `grad / (kernel[0] * kernel[1])`, the padding
    counted in the divisor as in the forward op. The result has the shape of
    `input_like`, of which only the shape is used.

    ```mlir
    %dx = kiln.avg_pool2d_grad %g, %x kernel [3, 3] stride [2, 2] padding [1, 1]
        : (tensor<?x8x14x14xf32>, tensor<?x8x28x28xf32>) -> tensor<?x8x28x28xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$grad, Kiln_FloatTensor:$input_like,
                       DenseI64ArrayAttr:$kernel, DenseI64ArrayAttr:$stride,
                       DenseI64ArrayAttr:$padding);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $grad `,` $input_like `kernel` $kernel `stride` $stride `padding` $padding
    attr-dict `:` functional-type(operands, results)
  }];
}

def Kiln_EmbeddingGradOp : Kiln_Op<"embedding_grad", [Pure]> {
  let summary = "gradient of embedding with respect to the table";
  let description = [{
    For indices of shape `S` and `grad` of shape `S + [D]`, the `[V, D]`
    table whose row `v` is the sum of the rows of `grad` at the positions
    where `indices` is `v` (a scatter-add: repeated indices accumulate, rows
    never looked up are zero). The result has the shape of `table_like`, of
    which only the shape is used.

    ```mlir
    %dt = kiln.embedding_grad %tokens, %g, %table
        : (tensor<?x256xi32>, tensor<?x256x384xf32>, tensor<65x384xf32>) -> tensor<65x384xf32>
    ```
  }];
  let arguments = (ins Kiln_IndexTensor:$indices, Kiln_FloatTensor:$grad,
                       Kiln_FloatTensor:$table_like);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $indices `,` $grad `,` $table_like attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_AttentionGradQOp : Kiln_Op<"attention_grad_q", [Pure]> {
  let summary = "gradient of attention with respect to the query";
  let description = [{
    For the operands of a `kiln.attention` (same `causal` and `scale`), the
    gradient `grad [..., Tq, Dv]` of its result, its `lse [..., Tq]` and
    `delta [..., Tq]` = `rowsum(grad * result)`: with the probabilities
    `P_ij = exp(scale * q_i . k_j - lse_i)` (0 where masked),
    `dS_ij = P_ij (grad_i . v_j - delta_i)` and
    `dq_i = scale * sum_j dS_ij k_j`, of shape `[batch..., Tq, D]` over the
    broadcast batch dimensions (the gradient rule sums it back to the
    query's shape). One kernel per query tile recomputes `P` from `lse`
    key tile by key tile; nothing of size `Tq x Tk` is stored.

    ```mlir
    %dq = kiln.attention_grad_q %q, %k, %v, %g, %lse, %delta causal scale 1.250000e-01
        : (tensor<?x6x256x64xf32>, tensor<?x6x256x64xf32>, tensor<?x6x256x64xf32>,
           tensor<?x6x256x64xf32>, tensor<?x6x256xf32>, tensor<?x6x256xf32>)
        -> tensor<?x6x256x64xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$query, Kiln_FloatTensor:$key,
                       Kiln_FloatTensor:$value, Kiln_FloatTensor:$grad,
                       Kiln_FloatTensor:$lse, Kiln_FloatTensor:$delta,
                       UnitAttr:$causal, F64Attr:$scale);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $grad `,` $lse `,` $delta
    (`causal` $causal^)? `scale` $scale attr-dict `:`
    functional-type(operands, results)
  }];
}

def Kiln_AttentionGradKvOp : Kiln_Op<"attention_grad_kv", [Pure]> {
  let summary = "gradient of attention with respect to the key and value";
  let description = [{
    The operands are those of `kiln.attention_grad_q`. With
    `P_ij = exp(scale * q_i . k_j - lse_i)` (0 where masked) and
    `dS_ij = P_ij (grad_i . v_j - delta_i)`, the results are
    `dk_j = scale * sum_i dS_ij q_i` `[batch..., Tk, D]` and
    `dv_j = sum_i P_ij grad_i` `[batch..., Tk, Dv]` over the broadcast batch
    dimensions. One kernel per key tile loops over the query tiles,
    accumulating both in registers: no atomics, every sum in query order.

    ```mlir
    %dk, %dv = kiln.attention_grad_kv %q, %k, %v, %g, %lse, %delta causal scale 1.250000e-01
        : (tensor<?x6x256x64xf32>, tensor<?x6x256x64xf32>, tensor<?x6x256x64xf32>,
           tensor<?x6x256x64xf32>, tensor<?x6x256xf32>, tensor<?x6x256xf32>)
        -> (tensor<?x6x256x64xf32>, tensor<?x6x256x64xf32>)
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$query, Kiln_FloatTensor:$key,
                       Kiln_FloatTensor:$value, Kiln_FloatTensor:$grad,
                       Kiln_FloatTensor:$lse, Kiln_FloatTensor:$delta,
                       UnitAttr:$causal, F64Attr:$scale);
  let results = (outs Kiln_FloatTensor:$key_grad, Kiln_FloatTensor:$value_grad);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $grad `,` $lse `,` $delta
    (`causal` $causal^)? `scale` $scale attr-dict `:`
    functional-type(operands, results)
  }];
}

include "ir/KernelOps.td"

#endif // KILN_OPS_TD
