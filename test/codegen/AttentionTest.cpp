//===- AttentionTest.cpp - the fused attention kernels --------------------===//
//
// Hand-written opaque kernels around kiln.attention, kiln.attention_grad_q
// and kiln.attention_grad_kv (codegen/Attention.cpp): the CUDA C compiles
// with NVRTC for sm_80 and sm_90 without register spills, the C++ computes
// what the reference executor computes (explicit score matrices in double),
// and, where a GPU is present, so does the CUDA, twice bit for bit. The
// shapes cover sequence lengths that are not multiples of the 64-row tiles,
// causal and not, Tq != Tk, D != Dv, broadcast and dynamic batch
// dimensions, f64, and a forward kernel that yields only its output (an
// evaluation step). The GPT's shapes are compiled here for spills; its
// whole program compiles with NVRTC in test/backend, where test/models/
// gpt_tiny.kiln's training steps also run on the CPU backend against the
// reference executor.
//
// Tolerances: the kernels sum in the element type with an online softmax
// (a rescaling per key tile), the reference in double. The inputs are
// independent random numbers, so the log-sum-exp and delta fed to the
// gradients do not match q, k and v: probabilities exp(s - lse) reach
// e^5 and the score gradients p (dp - delta) cancel in sums of 100 terms,
// hence atol 1e-3, rtol 5e-4 in f32 for the gradients.
//
//===----------------------------------------------------------------------===//

#include "Harness.h"

#include "runtime/Nvrtc.h"

#include <gtest/gtest.h>

using namespace kiln;
using namespace kiln::test;

namespace {

/// `tensor<2x3xf32>` ("?" for a dynamic dimension).
std::string type(const std::vector<std::string> &shape,
                 const std::string &element) {
  std::string text = "tensor<";
  for (const std::string &d : shape)
    text += d + "x";
  return text + element + ">";
}

/// A module of functions, each holding one opaque attention kernel.
class AttentionKernels : public ::testing::Test {
protected:
  AttentionKernels() { loadDialects(context); }

  /// Adds a kernel `name` with inputs of `types` (%a0, %a1, ... in the
  /// region) whose op (the text after `%r:N = `, or `%r = ` for one result)
  /// has the results `opResults`; the kernel yields those listed in
  /// `yielded` (indices into `opResults`).
  void add(const std::string &name, const std::vector<std::string> &types,
           const std::vector<std::string> &opResults,
           const std::vector<unsigned> &yielded, const std::string &op) {
    std::string params, args, blockArgs, typeList;
    for (size_t k = 0; k < types.size(); ++k) {
      std::string sep = k ? ", " : "";
      params += sep + "%x" + std::to_string(k) + ": " + types[k];
      args += sep + "%x" + std::to_string(k);
      blockArgs += sep + "%a" + std::to_string(k) + ": " + types[k];
      typeList += sep + types[k];
    }
    std::string results, values;
    for (size_t k = 0; k < yielded.size(); ++k) {
      std::string sep = k ? ", " : "";
      results += sep + opResults[yielded[k]];
      values +=
          sep + (opResults.size() == 1 ? std::string("%r")
                                       : "%r#" + std::to_string(yielded[k]));
    }
    std::string resultList =
        yielded.size() == 1 ? results : "(" + results + ")";
    std::string lhs =
        opResults.size() == 1 ? "%r" : "%r:" + std::to_string(opResults.size());
    std::string kernelLhs =
        yielded.size() == 1 ? "%k" : "%k:" + std::to_string(yielded.size());
    text += "func.func @f" + std::to_string(count++) + "(" + params +
            ") {\n  " + kernelLhs + " = kiln.kernel \"" + name + "\" opaque (" +
            args + ") : (" + typeList + ") -> " + resultList + " {\n  ^bb0(" +
            blockArgs + "):\n    " + lhs + " = " + op + "\n    kiln.yield " +
            values + " : " + results + "\n  }\n  return\n}\n";
  }

  /// Adds the forward kernel and both gradient kernels for q [..., Tq, D],
  /// k [..., Tk, D], v [..., Tk, Dv] (`batch` the broadcast batch
  /// dimensions, "?" dynamic) and `attrs` ("causal scale ...").
  void addAll(const std::vector<std::string> &q,
              const std::vector<std::string> &k,
              const std::vector<std::string> &v,
              const std::vector<std::string> &batch, const std::string &attrs,
              const std::string &element = "f32") {
    std::string tq = q[q.size() - 2], d = q.back(), tk = k[k.size() - 2],
                dv = v.back();
    auto with = [&](std::vector<std::string> tail) {
      std::vector<std::string> shape = batch;
      shape.insert(shape.end(), tail.begin(), tail.end());
      return type(shape, element);
    };
    std::string tQ = type(q, element), tK = type(k, element),
                tV = type(v, element), tO = with({tq, dv}), tL = with({tq}),
                tDq = with({tq, d}), tDk = with({tk, d}), tDv = with({tk, dv});
    std::string qkv = tQ + ", " + tK + ", " + tV;
    add("attention", {tQ, tK, tV}, {tO, tL}, {0, 1},
        "kiln.attention %a0, %a1, %a2 " + attrs + " : (" + qkv + ") -> (" + tO +
            ", " + tL + ")");
    std::string gradTypes = qkv + ", " + tO + ", " + tL + ", " + tL;
    add("attention_grad_q", {tQ, tK, tV, tO, tL, tL}, {tDq}, {0},
        "kiln.attention_grad_q %a0, %a1, %a2, %a3, %a4, %a5 " + attrs + " : (" +
            gradTypes + ") -> " + tDq);
    add("attention_grad_kv", {tQ, tK, tV, tO, tL, tL}, {tDk, tDv}, {0, 1},
        "kiln.attention_grad_kv %a0, %a1, %a2, %a3, %a4, %a5 " + attrs +
            " : (" + gradTypes + ") -> (" + tDk + ", " + tDv + ")");
  }

  /// Parses the kernels added so far, compiles them as CUDA C (and checks
  /// for spills when `spills`), and checks the C++ (and the CUDA, with a
  /// GPU) against the reference executor.
  void check(const Tolerance &tolerance, int64_t dynamicSize = 0,
             bool spills = true) {
    auto module = parseScheduled(text, context);
    ASSERT_TRUE(module) << text;
    auto kernels = kernelsOfKind(*module, KernelKind::opaque);
    ASSERT_EQ(kernels.size(), count);
    if (runtime::nvrtcAvailable()) {
      expectCudaCompiles(kernels, "attention_kernels");
      if (spills)
        expectNoSpills(kernels);
    }
    CheckOptions options;
    options.dynamicSize = dynamicSize;
    expectCppMatchesReference(kernels, tolerance, options);
    expectCudaOrEmulatedMatchesReference(kernels, tolerance, dynamicSize);
  }

  mlir::MLIRContext context;
  std::string text;
  size_t count = 0;
};

// The GPT's head size with a sequence of 100: one full 64-row tile and a
// partial one, causal (the second query tile sees both key tiles).
TEST_F(AttentionKernels, CausalHeadsWithPartialTiles) {
  addAll({"2", "3", "100", "64"}, {"2", "3", "100", "64"},
         {"2", "3", "100", "64"}, {"2", "3"}, "causal scale 1.250000e-01");
  check(relative(1e-3, 5e-4));
}

// No mask, Tq != Tk, D != Dv, keys and values shared by the heads (a batch
// dimension of 1) and a dynamic batch: a run-time size parameter.
TEST_F(AttentionKernels, BroadcastAndDynamicBatch) {
  addAll({"?", "2", "20", "8"}, {"?", "1", "70", "8"}, {"?", "1", "70", "12"},
         {"?", "2"}, "scale 3.000000e-01");
  check(relative(1e-3, 5e-4), /*dynamicSize=*/3);
}

// f64 without batch dimensions, causal with more queries than keys (the
// last queries see every key) and head sizes that are not multiples of 16.
// (CUDA's double exp keeps its slow path on a small stack frame, which
// ptxas reports as a spill: not checked here.)
TEST_F(AttentionKernels, Float64MoreQueriesThanKeys) {
  addAll({"70", "20"}, {"40", "20"}, {"40", "24"}, {},
         "causal scale 2.500000e-01", "f64");
  check(relative(1e-12, 1e-12), /*dynamicSize=*/0, /*spills=*/false);
}

// An evaluation step reads only the output: the kernel stores no
// log-sum-exp.
TEST_F(AttentionKernels, ForwardWithoutTheLogSumExp) {
  std::string t = "tensor<2x33x16xf32>", l = "tensor<2x33xf32>";
  add("attention", {t, t, t}, {t, l}, {0},
      "kiln.attention %a0, %a1, %a2 causal scale 2.500000e-01 : (" + t + ", " +
          t + ", " + t + ") -> (" + t + ", " + l + ")");
  check(relative(1e-5, 1e-5));
}

// The GPT's shapes compile for both architectures without spilling.
TEST_F(AttentionKernels, GptShapesDoNotSpill) {
  if (!runtime::nvrtcAvailable())
    GTEST_SKIP() << "NVRTC is not available";
  addAll({"?", "6", "256", "64"}, {"?", "6", "256", "64"},
         {"?", "6", "256", "64"}, {"?", "6"}, "causal scale 1.250000e-01");
  auto module = parseScheduled(text, context);
  ASSERT_TRUE(module) << text;
  auto kernels = kernelsOfKind(*module, KernelKind::opaque);
  for (auto &[kernel, symbol] : kernels) {
    auto generated =
        codegen::generateKernel(kernel, symbol, codegen::Target::cuda);
    ASSERT_TRUE(succeeded(generated)) << symbol;
    EXPECT_LE(generated->launch.sharedBytes, 100u * 1024) << symbol;
  }
  expectNoSpills(kernels);
}

} // namespace
