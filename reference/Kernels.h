//===- Kernels.h - op-by-op kernels of the reference executor -----*- C++ -*-===//
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

/// f applied to every element; the result has element type `type`.
Tensor map(const Tensor &x, ElementType type,
           llvm::function_ref<double(double)> f);

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
Result crossEntropy(const Tensor &logits, const Tensor &labels);
/// d cross_entropy / d logits, times the scalar `grad`.
Result crossEntropyGrad(const Tensor &logits, const Tensor &labels,
                        const Tensor &grad);
Result layerNorm(const Tensor &x, const Tensor &weight, const Tensor &bias,
                 double epsilon);

Result conv2d(const Tensor &x, const Tensor &w,
              llvm::ArrayRef<int64_t> stride, llvm::ArrayRef<int64_t> padding);
Result pool2d(const Tensor &x, llvm::ArrayRef<int64_t> kernel,
              llvm::ArrayRef<int64_t> stride, llvm::ArrayRef<int64_t> padding,
              bool max);
Result embedding(const Tensor &table, const Tensor &indices);
/// Inverted dropout with the Philox mask of (seed, stream, element index).
Tensor dropout(const Tensor &x, double rate, uint64_t seed, uint64_t stream);

} // namespace kiln::reference

#endif // KILN_REFERENCE_KERNELS_H
