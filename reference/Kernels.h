//===- Kernels.h - op-by-op kernels of the reference executor ---*- C++ -*-===//
//
// One plain function per op semantics, on whole tensors. They check what
// only run time knows (dynamic sizes, label and index ranges) and return an
// error message instead of a tensor when it is wrong.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_REFERENCE_KERNELS_H
#define KILN_REFERENCE_KERNELS_H

#include "reference/Tensor.h"

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/Error.h"

namespace kiln::reference {

using Result = llvm::Expected<Tensor>;
/// The results of an op with several (kiln.attention and its gradient).
using Results = llvm::Expected<std::vector<Tensor>>;

/// f applied elementwise over the NumPy broadcast of the operands.
Result zip(llvm::ArrayRef<const Tensor *> operands, ElementType type,
           llvm::function_ref<double(llvm::ArrayRef<double>)> f);

Result matmul(const Tensor &a, const Tensor &b, bool transposeA,
              bool transposeB);
Result transpose(const Tensor &x, llvm::ArrayRef<int64_t> permutation);
Result reshape(const Tensor &x, llvm::ArrayRef<int64_t> shape);
Result broadcastTo(const Tensor &x, llvm::ArrayRef<int64_t> shape);

enum class Reduction { sum, mean, max };
Result reduce(const Tensor &x, llvm::ArrayRef<int64_t> axes, bool keepdims,
              Reduction kind);
Result argmax(const Tensor &x, int64_t axis, bool keepdims);

Result softmax(const Tensor &x, int64_t axis, bool log);
/// Scaled dot-product attention, computed directly: per batch entry and
/// query row, the masked scaled scores, their softmax and its product with
/// the values. Returns the result [..., Tq, Dv] and each row's log-sum-exp
/// [..., Tq] (kiln.attention's two results).
Results attention(const Tensor &q, const Tensor &k, const Tensor &v,
                  bool causal, double scale);
/// The gradients of attention by their definitions (KilnOps.td), with the
/// probabilities exp(score - lse) and the score gradients P (g . v - delta)
/// written out as [Tq, Tk] matrices per batch entry: dq, and {dk, dv}.
Result attentionGradQ(const Tensor &q, const Tensor &k, const Tensor &v,
                      const Tensor &grad, const Tensor &lse,
                      const Tensor &delta, bool causal, double scale);
Results attentionGradKv(const Tensor &q, const Tensor &k, const Tensor &v,
                        const Tensor &grad, const Tensor &lse,
                        const Tensor &delta, bool causal, double scale);
/// The index along `dimension` of every element of `shape`.
Tensor iota(llvm::ArrayRef<int64_t> shape, int64_t dimension);
Result crossEntropy(const Tensor &logits, const Tensor &labels);
/// d cross_entropy / d logits, times the scalar `grad`.
Result crossEntropyGrad(const Tensor &logits, const Tensor &labels,
                        const Tensor &grad);
Result layerNorm(const Tensor &x, const Tensor &weight, const Tensor &bias,
                 double epsilon);

Result conv2d(const Tensor &x, const Tensor &w, llvm::ArrayRef<int64_t> stride,
              llvm::ArrayRef<int64_t> padding);
Result pool2d(const Tensor &x, llvm::ArrayRef<int64_t> kernel,
              llvm::ArrayRef<int64_t> stride, llvm::ArrayRef<int64_t> padding,
              bool max);
Result embedding(const Tensor &table, const Tensor &indices);

/// The gradient kernels of conv2d, pooling and embedding: `grad` is the
/// gradient of the forward result, whose shape they check; a `...Shape`
/// argument is the shape of the forward operand the gradient is for.
Result conv2dGradInput(const Tensor &grad, const Tensor &w,
                       llvm::ArrayRef<int64_t> inputShape,
                       llvm::ArrayRef<int64_t> stride,
                       llvm::ArrayRef<int64_t> padding);
Result conv2dGradWeight(const Tensor &x, const Tensor &grad,
                        llvm::ArrayRef<int64_t> weightShape,
                        llvm::ArrayRef<int64_t> stride,
                        llvm::ArrayRef<int64_t> padding);
/// Each window's gradient goes to its first maximum in row-major order.
Result maxPool2dGrad(const Tensor &x, const Tensor &grad,
                     llvm::ArrayRef<int64_t> kernel,
                     llvm::ArrayRef<int64_t> stride,
                     llvm::ArrayRef<int64_t> padding);
Result avgPool2dGrad(const Tensor &grad, llvm::ArrayRef<int64_t> inputShape,
                     llvm::ArrayRef<int64_t> kernel,
                     llvm::ArrayRef<int64_t> stride,
                     llvm::ArrayRef<int64_t> padding);
Result embeddingGrad(const Tensor &indices, const Tensor &grad,
                     llvm::ArrayRef<int64_t> tableShape);
/// Inverted dropout with the Philox mask of (seed, stream, element index).
Tensor dropout(const Tensor &x, double rate, uint64_t seed, uint64_t stream);

} // namespace kiln::reference

#endif // KILN_REFERENCE_KERNELS_H
