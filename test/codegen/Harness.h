//===- Harness.h - checking generated kernels -------------------*- C++ -*-===//
//
// What the code generation tests share: compiling an example model to its
// fused step, picking its kernels, compiling their CUDA C with NVRTC, and
// running their C++ on random inputs against the reference executor.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TEST_CODEGEN_HARNESS_H
#define KILN_TEST_CODEGEN_HARNESS_H

#include "codegen/KernelCodegen.h"
#include "reference/Tensor.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace kiln::test {

/// A context with the kiln and func dialects loaded.
void loadDialects(mlir::MLIRContext &context);

/// `examples/<name>` in the source tree.
std::string examplePath(const std::string &name);

/// Compiles a model file to its fused stage, binding `bind` ("batch=64")
/// unless empty, and schedules its kernels (kiln-schedule); null on any
/// error.
mlir::OwningOpRef<mlir::ModuleOp> compileFused(mlir::MLIRContext &context,
                                               const std::string &file,
                                               const std::string &bind);

/// Parses hand-written IR and schedules its kernels (kiln-schedule); null
/// on any error.
mlir::OwningOpRef<mlir::ModuleOp> parseScheduled(llvm::StringRef text,
                                                 mlir::MLIRContext &context);

/// The kernels of `module` of `kind`, each with a unique symbol.
std::vector<std::pair<KernelOp, std::string>>
kernelsOfKind(mlir::ModuleOp module, KernelKind kind);

/// Generates every kernel as CUDA C into one program and compiles it with
/// NVRTC for sm_80 and sm_90 (GTest failures on any error).
void expectCudaCompiles(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const std::string &name);

/// Compiles `kernels` as one CUDA program for sm_80 and sm_90 with ptxas's
/// report (--ptxas-options=-v) and expects no kernel to spill registers to
/// local memory (tiles kept in registers stay there). With a `report`
/// label, prints each report under it.
void expectNoSpills(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const std::string &report = "");

/// Random inputs for `kernel`: floats uniform in [-2, 2], integers in
/// [0, 3) (valid labels and indices for the examples' shapes).
std::vector<reference::Tensor> randomInputs(KernelOp kernel, uint64_t seed);

/// How expectCppMatchesReference sizes and draws a kernel's inputs.
struct CheckOptions {
  /// The size of every dynamic dimension; 0 for kernels without any.
  int64_t dynamicSize = 0;
  /// When positive, float inputs are rounded to multiples of it: few
  /// distinct values (ties for max pooling) and sums without rounding.
  double floatStep = 0;
  /// Integer inputs are drawn from [0, indexBound).
  int64_t indexBound = 3;
};

/// randomInputs with `options`' sizes and values.
std::vector<reference::Tensor> randomInputs(KernelOp kernel, uint64_t seed,
                                            const CheckOptions &options);

/// The tolerance allowed between a generated result element and the
/// reference executor's (which computes in double, rounding per op).
using Tolerance = std::function<double(double expected)>;

/// atol + rtol * |expected|.
Tolerance relative(double atol, double rtol);

/// Builds every kernel as C++ into one shared object with the host
/// compiler, runs each on randomInputs and compares each result element
/// with the reference executor's within `tolerance` (NaN must match NaN).
void expectCppMatchesReference(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const Tolerance &tolerance);

/// expectCppMatchesReference with inputs drawn by `options`; the dynamic
/// sizes the kernels take are those of the drawn inputs and the reference
/// results.
void expectCppMatchesReference(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const Tolerance &tolerance, const CheckOptions &options);

/// The tolerance of one kernel's results (a matmul's grows with its K).
using KernelTolerance = std::function<Tolerance(KernelOp kernel)>;

/// expectCppMatchesReference with each kernel's own tolerance.
void expectCppMatchesReference(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const KernelTolerance &tolerance, const CheckOptions &options);

/// The tolerance of a matmul kernel's results, K the size of its sum
/// (`dynamicSize` where K is dynamic). The reference computes the product
/// in double and rounds it once; the generated code sums K products in the
/// element type, each addition rounding with a relative error of at most
/// eps (2^-24 for f32). With inputs uniform in [-2, 2] a product has mean
/// square 16/9, so the partial sums grow like sqrt(k * 16/9) and the K
/// independent rounding errors add up to about
/// eps * sqrt(sum_k k * 16/9), roughly eps * K. We allow 16 * eps * K: a
/// margin for the tail of the distribution and for epilogue ops that scale
/// the product (dropout's 1 / (1 - rate) <= 2), plus a relative term for
/// the epilogue's own roundings. For f32 and K = 784 that is 7.5e-4
/// absolute, against results of typical size sqrt(784 * 16/9) = 37.
Tolerance matmulTolerance(KernelOp kernel, int64_t dynamicSize);

/// Random inputs as randomInputs gives, with every dynamic dimension of
/// size `dynamicSize`.
std::vector<reference::Tensor>
randomInputsWithSize(KernelOp kernel, uint64_t seed, int64_t dynamicSize);

/// As expectCppMatchesReference, with every dynamic dimension of the
/// kernels of size `dynamicSize` (passed as the kernels' size parameters).
void expectCppMatchesReferenceWithSize(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const Tolerance &tolerance, int64_t dynamicSize);

/// Whether a CUDA driver and device are present (GPU tests skip otherwise).
bool cudaDeviceAvailable();

/// Compiles every kernel's CUDA C with NVRTC for device 0, runs each twice
/// with its LaunchConfig on randomInputsWithSize (results pre-filled with
/// 0xff bytes), compares each result element with the reference executor's
/// within `tolerance`, and the two runs bit for bit (determinism).
void expectCudaMatchesReference(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const Tolerance &tolerance, int64_t dynamicSize);

/// As expectCudaMatchesReference, without a GPU: the CUDA C runs on the
/// host, emulated (test/gpu/CudaEmulation.h), once.
void expectEmulatedCudaMatchesReference(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const Tolerance &tolerance, int64_t dynamicSize);

/// expectCudaMatchesReference on a GPU, else its emulation.
void expectCudaOrEmulatedMatchesReference(
    const std::vector<std::pair<KernelOp, std::string>> &kernels,
    const Tolerance &tolerance, int64_t dynamicSize);

} // namespace kiln::test

#endif // KILN_TEST_CODEGEN_HARNESS_H
