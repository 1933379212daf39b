//===- Kernels.cpp - op-by-op kernels of the reference executor -----------===//
//
// Clarity first: every kernel is the textbook loop nest of its definition,
// computed in double, with the result rounded to its element type. Only
// matmul's loop order is chosen for speed (i-k-j, so the inner loop runs
// over contiguous memory and vectorizes).
//
//===----------------------------------------------------------------------===//

#include "reference/Kernels.h"

#include "runtime/Random.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <thread>

using namespace kiln::reference;
using llvm::ArrayRef;

namespace {

llvm::Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// Normalizes a possibly negative axis (checked by the verifier).
int64_t axisOf(int64_t axis, int64_t rank) {
  return axis < 0 ? axis + rank : axis;
}

/// Advances a row-major multi-index over `shape`; false after the last.
bool increment(std::vector<int64_t> &index, ArrayRef<int64_t> shape) {
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    if (++index[d] < shape[d])
      return true;
    index[d] = 0;
  }
  return false;
}

/// Strides of `shape` aligned to an output of rank `rank`, 0 along
/// broadcast dimensions.
std::vector<int64_t> broadcastStrides(ArrayRef<int64_t> shape, int64_t rank) {
  std::vector<int64_t> strides(rank, 0);
  int64_t stride = 1;
  for (int64_t i = static_cast<int64_t>(shape.size()) - 1; i >= 0; --i) {
    int64_t out = rank - static_cast<int64_t>(shape.size()) + i;
    strides[out] = shape[i] == 1 ? 0 : stride;
    stride *= shape[i];
  }
  return strides;
}

/// The NumPy broadcast of run-time shapes.
llvm::Expected<std::vector<int64_t>>
broadcastShape(ArrayRef<const Tensor *> operands) {
  size_t rank = 0;
  for (const Tensor *t : operands)
    rank = std::max(rank, t->shape.size());
  std::vector<int64_t> shape(rank, 1);
  for (const Tensor *t : operands) {
    for (size_t i = 0; i < t->shape.size(); ++i) {
      int64_t &out = shape[rank - t->shape.size() + i];
      int64_t d = t->shape[i];
      if (d == out || d == 1)
        continue;
      if (out != 1)
        return error("cannot broadcast shapes at run time: " +
                     formatShape(t->shape) + " against " + formatShape(shape));
      out = d;
    }
  }
  return shape;
}

} // namespace

static llvm::Error checkGradShape(llvm::StringRef op, const Tensor &grad,
                                  ArrayRef<int64_t> expected);

Result kiln::reference::zip(ArrayRef<const Tensor *> operands, ElementType type,
                            llvm::function_ref<double(ArrayRef<double>)> f) {
  auto shape = broadcastShape(operands);
  if (!shape)
    return shape.takeError();
  Tensor y(type, *shape);
  std::vector<double> args(operands.size());
  // Fast path: every operand is the output's shape or a single element.
  if (llvm::all_of(operands, [&](const Tensor *t) {
        return t->shape == y.shape || t->numel() == 1;
      })) {
    for (int64_t out = 0; out < y.numel(); ++out) {
      for (size_t k = 0; k < operands.size(); ++k)
        args[k] = operands[k]->data[operands[k]->numel() == 1 ? 0 : out];
      y.data[out] = roundTo(type, f(args));
    }
    return y;
  }
  int64_t rank = static_cast<int64_t>(shape->size());
  std::vector<std::vector<int64_t>> strides;
  for (const Tensor *t : operands)
    strides.push_back(broadcastStrides(t->shape, rank));
  std::vector<int64_t> index(rank, 0);
  for (int64_t out = 0; out < y.numel(); ++out) {
    for (size_t k = 0; k < operands.size(); ++k) {
      int64_t offset = 0;
      for (int64_t d = 0; d < rank; ++d)
        offset += index[d] * strides[k][d];
      args[k] = operands[k]->data[offset];
    }
    y.data[out] = roundTo(type, f(args));
    increment(index, *shape);
  }
  return y;
}

namespace {

/// The sizes of an attention op's operands at run time, and the broadcast
/// of their batch dimensions.
struct AttentionSizes {
  int64_t Tq, Tk, D, Dv;
  std::vector<int64_t> batch;
  std::vector<int64_t> stridesQ, stridesK, stridesV;
};

llvm::Expected<AttentionSizes> attentionSizes(llvm::StringRef op,
                                              const Tensor &q, const Tensor &k,
                                              const Tensor &v) {
  AttentionSizes s;
  s.Tq = q.shape[q.rank() - 2];
  s.D = q.shape[q.rank() - 1];
  s.Tk = k.shape[k.rank() - 2];
  s.Dv = v.shape[v.rank() - 1];
  if (k.shape[k.rank() - 1] != s.D || v.shape[v.rank() - 2] != s.Tk)
    return error(op + ": shapes differ at run time: " + formatShape(q.shape) +
                 ", " + formatShape(k.shape) + " and " + formatShape(v.shape));
  Tensor batchQ(q.type, {q.shape.begin(), q.shape.end() - 2});
  Tensor batchK(k.type, {k.shape.begin(), k.shape.end() - 2});
  Tensor batchV(v.type, {v.shape.begin(), v.shape.end() - 2});
  auto batch = broadcastShape({&batchQ, &batchK, &batchV});
  if (!batch)
    return batch.takeError();
  s.batch = *batch;
  int64_t rank = static_cast<int64_t>(s.batch.size());
  s.stridesQ = broadcastStrides(batchQ.shape, rank);
  s.stridesK = broadcastStrides(batchK.shape, rank);
  s.stridesV = broadcastStrides(batchV.shape, rank);
  return s;
}

/// `batch + tail`.
std::vector<int64_t> batched(const AttentionSizes &s,
                             std::initializer_list<int64_t> tail) {
  std::vector<int64_t> shape = s.batch;
  shape.insert(shape.end(), tail);
  return shape;
}

/// Calls f(b, q, k, v) for every entry b of the broadcast batch with the
/// matrices of q [Tq, D], k [Tk, D] and v [Tk, Dv] it reads.
void forEachBatch(const AttentionSizes &s, const Tensor &q, const Tensor &k,
                  const Tensor &v,
                  llvm::function_ref<void(int64_t, const double *,
                                          const double *, const double *)>
                      f) {
  int64_t rank = static_cast<int64_t>(s.batch.size());
  std::vector<int64_t> index(rank, 0);
  for (int64_t b = 0; b < numElements(s.batch); ++b) {
    int64_t offQ = 0, offK = 0, offV = 0;
    for (int64_t d = 0; d < rank; ++d) {
      offQ += index[d] * s.stridesQ[d];
      offK += index[d] * s.stridesK[d];
      offV += index[d] * s.stridesV[d];
    }
    f(b, q.data.data() + offQ * s.Tq * s.D, k.data.data() + offK * s.Tk * s.D,
      v.data.data() + offV * s.Tk * s.Dv);
    increment(index, s.batch);
  }
}

/// The keys query i sees: j < seen(i).
int64_t keysSeen(const AttentionSizes &s, bool causal, int64_t i) {
  return causal ? std::min(i + 1, s.Tk) : s.Tk;
}

/// The scaled score of query row `qi` [D] and key row `kj` [D].
double score(const double *qi, const double *kj, int64_t D, double scale) {
  double dot = 0;
  for (int64_t d = 0; d < D; ++d)
    dot += qi[d] * kj[d];
  return scale * dot;
}

/// The probabilities P [Tq, Tk] of one batch entry the gradient ops use:
/// exp(score - lse), 0 where masked.
std::vector<double> probabilitiesFromLse(const AttentionSizes &s,
                                         const double *q, const double *k,
                                         const double *lse, bool causal,
                                         double scale) {
  std::vector<double> p(s.Tq * s.Tk, 0.0);
  for (int64_t i = 0; i < s.Tq; ++i)
    for (int64_t j = 0; j < keysSeen(s, causal, i); ++j)
      p[i * s.Tk + j] =
          std::exp(score(q + i * s.D, k + j * s.D, s.D, scale) - lse[i]);
  return p;
}

/// dS [Tq, Tk] = P (grad_i . v_j - delta_i).
std::vector<double> scoreGradients(const AttentionSizes &s,
                                   const std::vector<double> &p,
                                   const double *v, const double *grad,
                                   const double *delta) {
  std::vector<double> ds(s.Tq * s.Tk, 0.0);
  for (int64_t i = 0; i < s.Tq; ++i)
    for (int64_t j = 0; j < s.Tk; ++j) {
      double dp = 0;
      for (int64_t e = 0; e < s.Dv; ++e)
        dp += grad[i * s.Dv + e] * v[j * s.Dv + e];
      ds[i * s.Tk + j] = p[i * s.Tk + j] * (dp - delta[i]);
    }
  return ds;
}

llvm::Error checkAttentionGradOperands(llvm::StringRef op,
                                       const AttentionSizes &s,
                                       const Tensor &grad, const Tensor &lse,
                                       const Tensor &delta) {
  if (llvm::Error e = checkGradShape(op, grad, batched(s, {s.Tq, s.Dv})))
    return e;
  if (lse.shape != batched(s, {s.Tq}) || delta.shape != batched(s, {s.Tq}))
    return error(op + ": lse " + formatShape(lse.shape) + " and delta " +
                 formatShape(delta.shape) + " at run time, expected " +
                 formatShape(batched(s, {s.Tq})));
  return llvm::Error::success();
}

} // namespace

Results kiln::reference::attention(const Tensor &q, const Tensor &k,
                                   const Tensor &v, bool causal, double scale) {
  auto sizes = attentionSizes("attention", q, k, v);
  if (!sizes)
    return sizes.takeError();
  const AttentionSizes &s = *sizes;
  Tensor out(q.type, batched(s, {s.Tq, s.Dv}));
  Tensor lse(q.type, batched(s, {s.Tq}));
  std::vector<double> p(s.Tk);
  forEachBatch(
      s, q, k, v,
      [&](int64_t b, const double *pq, const double *pk, const double *pv) {
        double *po = out.data.data() + b * s.Tq * s.Dv;
        for (int64_t i = 0; i < s.Tq; ++i) {
          // Query i sees keys j <= i when causal (top-left aligned).
          int64_t seen = keysSeen(s, causal, i);
          double max = -std::numeric_limits<double>::infinity();
          for (int64_t j = 0; j < seen; ++j) {
            p[j] = score(pq + i * s.D, pk + j * s.D, s.D, scale);
            max = std::max(max, p[j]);
          }
          double sum = 0;
          for (int64_t j = 0; j < seen; ++j)
            sum += p[j] = std::exp(p[j] - max);
          for (int64_t e = 0; e < s.Dv; ++e) {
            double acc = 0;
            for (int64_t j = 0; j < seen; ++j)
              acc += p[j] / sum * pv[j * s.Dv + e];
            po[i * s.Dv + e] = acc;
          }
          lse.data[b * s.Tq + i] = max + std::log(sum);
        }
      });
  out.round();
  lse.round();
  return std::vector<Tensor>{std::move(out), std::move(lse)};
}

Result kiln::reference::attentionGradQ(const Tensor &q, const Tensor &k,
                                       const Tensor &v, const Tensor &grad,
                                       const Tensor &lse, const Tensor &delta,
                                       bool causal, double scale) {
  auto sizes = attentionSizes("attention_grad_q", q, k, v);
  if (!sizes)
    return sizes.takeError();
  const AttentionSizes &s = *sizes;
  if (llvm::Error e =
          checkAttentionGradOperands("attention_grad_q", s, grad, lse, delta))
    return std::move(e);
  Tensor dq(q.type, batched(s, {s.Tq, s.D}));
  forEachBatch(
      s, q, k, v,
      [&](int64_t b, const double *pq, const double *pk, const double *pv) {
        std::vector<double> p = probabilitiesFromLse(
            s, pq, pk, lse.data.data() + b * s.Tq, causal, scale);
        std::vector<double> ds =
            scoreGradients(s, p, pv, grad.data.data() + b * s.Tq * s.Dv,
                           delta.data.data() + b * s.Tq);
        double *out = dq.data.data() + b * s.Tq * s.D;
        for (int64_t i = 0; i < s.Tq; ++i)
          for (int64_t d = 0; d < s.D; ++d) {
            double acc = 0;
            for (int64_t j = 0; j < s.Tk; ++j)
              acc += ds[i * s.Tk + j] * pk[j * s.D + d];
            out[i * s.D + d] = scale * acc;
          }
      });
  dq.round();
  return dq;
}

Results kiln::reference::attentionGradKv(const Tensor &q, const Tensor &k,
                                         const Tensor &v, const Tensor &grad,
                                         const Tensor &lse, const Tensor &delta,
                                         bool causal, double scale) {
  auto sizes = attentionSizes("attention_grad_kv", q, k, v);
  if (!sizes)
    return sizes.takeError();
  const AttentionSizes &s = *sizes;
  if (llvm::Error e =
          checkAttentionGradOperands("attention_grad_kv", s, grad, lse, delta))
    return std::move(e);
  Tensor dk(k.type, batched(s, {s.Tk, s.D}));
  Tensor dv(v.type, batched(s, {s.Tk, s.Dv}));
  forEachBatch(
      s, q, k, v,
      [&](int64_t b, const double *pq, const double *pk, const double *pv) {
        const double *g = grad.data.data() + b * s.Tq * s.Dv;
        std::vector<double> p = probabilitiesFromLse(
            s, pq, pk, lse.data.data() + b * s.Tq, causal, scale);
        std::vector<double> ds =
            scoreGradients(s, p, pv, g, delta.data.data() + b * s.Tq);
        double *outK = dk.data.data() + b * s.Tk * s.D;
        double *outV = dv.data.data() + b * s.Tk * s.Dv;
        for (int64_t j = 0; j < s.Tk; ++j) {
          for (int64_t d = 0; d < s.D; ++d) {
            double acc = 0;
            for (int64_t i = 0; i < s.Tq; ++i)
              acc += ds[i * s.Tk + j] * pq[i * s.D + d];
            outK[j * s.D + d] = scale * acc;
          }
          for (int64_t e = 0; e < s.Dv; ++e) {
            double acc = 0;
            for (int64_t i = 0; i < s.Tq; ++i)
              acc += p[i * s.Tk + j] * g[i * s.Dv + e];
            outV[j * s.Dv + e] = acc;
          }
        }
      });
  dk.round();
  dv.round();
  return std::vector<Tensor>{std::move(dk), std::move(dv)};
}

Tensor kiln::reference::iota(ArrayRef<int64_t> shape, int64_t dimension) {
  Tensor t(ElementType::i32, std::vector<int64_t>(shape));
  std::vector<int64_t> index(shape.size(), 0);
  for (int64_t i = 0; i < t.numel(); ++i) {
    t.data[i] = static_cast<double>(index[dimension]);
    increment(index, shape);
  }
  return t;
}

Result kiln::reference::matmul(const Tensor &a, const Tensor &b,
                               bool transposeA, bool transposeB) {
  // Materialize both operands as [batch..., M, K] and [batch..., K, N].
  auto canonical = [](const Tensor &t, bool transposed) -> Result {
    if (!transposed)
      return t;
    std::vector<int64_t> perm(t.rank());
    std::iota(perm.begin(), perm.end(), 0);
    std::swap(perm[t.rank() - 1], perm[t.rank() - 2]);
    return transpose(t, perm);
  };
  Result ca = canonical(a, transposeA);
  if (!ca)
    return ca.takeError();
  Result cb = canonical(b, transposeB);
  if (!cb)
    return cb.takeError();
  const Tensor &A = *ca, &B = *cb;
  int64_t M = A.shape[A.rank() - 2], K = A.shape[A.rank() - 1];
  int64_t K2 = B.shape[B.rank() - 2], N = B.shape[B.rank() - 1];
  if (K != K2)
    return error("matmul: contraction sizes differ at run time: " +
                 formatShape(A.shape) + " and " + formatShape(B.shape));
  // Broadcast the batch dimensions.
  Tensor batchA(A.type, {A.shape.begin(), A.shape.end() - 2});
  Tensor batchB(B.type, {B.shape.begin(), B.shape.end() - 2});
  auto batch = broadcastShape({&batchA, &batchB});
  if (!batch)
    return batch.takeError();
  std::vector<int64_t> shape = *batch;
  int64_t batches = numElements(shape);
  shape.push_back(M);
  shape.push_back(N);
  Tensor C(A.type, shape);
  int64_t rank = static_cast<int64_t>(batch->size());
  std::vector<int64_t> stridesA = broadcastStrides(batchA.shape, rank);
  std::vector<int64_t> stridesB = broadcastStrides(batchB.shape, rank);
  std::vector<int64_t> index(rank, 0);
  for (int64_t bi = 0; bi < batches; ++bi) {
    int64_t offA = 0, offB = 0;
    for (int64_t d = 0; d < rank; ++d) {
      offA += index[d] * stridesA[d];
      offB += index[d] * stridesB[d];
    }
    const double *pa = A.data.data() + offA * M * K;
    const double *pb = B.data.data() + offB * K * N;
    double *pc = C.data.data() + bi * M * N;
    auto rows = [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        double *row = pc + i * N;
        for (int64_t k = 0; k < K; ++k) {
          double aik = pa[i * K + k];
          const double *brow = pb + k * N;
          for (int64_t j = 0; j < N; ++j)
            row[j] += aik * brow[j];
        }
      }
    };
    // Large products split their rows over the cores; every element is
    // still summed in the same order, so results do not depend on it.
    int64_t threads =
        std::min<int64_t>(std::max(1u, std::thread::hardware_concurrency()), M);
    if (M * N * K < (1 << 20) || threads < 2) {
      rows(0, M);
    } else {
      std::vector<std::thread> workers;
      for (int64_t t = 0; t < threads; ++t)
        workers.emplace_back(rows, M * t / threads, M * (t + 1) / threads);
      for (std::thread &w : workers)
        w.join();
    }
    increment(index, *batch);
  }
  C.round();
  return C;
}

Result kiln::reference::transpose(const Tensor &x, ArrayRef<int64_t> perm) {
  std::vector<int64_t> shape;
  for (int64_t p : perm)
    shape.push_back(x.shape[p]);
  Tensor y(x.type, shape);
  std::vector<int64_t> inStrides = x.strides();
  std::vector<int64_t> index(shape.size(), 0);
  for (int64_t out = 0; out < y.numel(); ++out) {
    int64_t offset = 0;
    for (size_t d = 0; d < perm.size(); ++d)
      offset += index[d] * inStrides[perm[d]];
    y.data[out] = x.data[offset];
    increment(index, shape);
  }
  return y;
}

Result kiln::reference::reshape(const Tensor &x, ArrayRef<int64_t> target) {
  std::vector<int64_t> shape(target.begin(), target.end());
  int64_t known = 1, inferred = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1)
      inferred = static_cast<int64_t>(i);
    else
      known *= shape[i];
  }
  if (inferred >= 0 && known > 0 && x.numel() % known == 0)
    shape[inferred] = x.numel() / known;
  if (numElements(shape) != x.numel())
    return error("cannot reshape " + formatShape(x.shape) + " to " +
                 formatShape(target) + " at run time");
  return Tensor(x.type, shape, x.data);
}

Result kiln::reference::broadcastTo(const Tensor &x, ArrayRef<int64_t> shape) {
  Tensor like(x.type, std::vector<int64_t>(shape.begin(), shape.end()));
  Result y = zip({&x, &like}, x.type, [](ArrayRef<double> v) { return v[0]; });
  if (y && y->shape != like.shape)
    return error("cannot broadcast " + formatShape(x.shape) + " to " +
                 formatShape(shape) + " at run time");
  return y;
}

Result kiln::reference::reduce(const Tensor &x, ArrayRef<int64_t> axes,
                               bool keepdims, Reduction kind) {
  std::vector<bool> reduced(x.rank(), axes.empty());
  for (int64_t a : axes)
    reduced[axisOf(a, x.rank())] = true;
  std::vector<int64_t> kept; // output shape with keepdims
  for (int64_t d = 0; d < x.rank(); ++d)
    kept.push_back(reduced[d] ? 1 : x.shape[d]);
  Tensor y(x.type, kept,
           kind == Reduction::max ? -std::numeric_limits<double>::infinity()
                                  : 0.0);
  std::vector<int64_t> outStrides = y.strides();
  std::vector<int64_t> index(x.rank(), 0);
  for (int64_t in = 0; in < x.numel(); ++in) {
    int64_t out = 0;
    for (int64_t d = 0; d < x.rank(); ++d)
      out += reduced[d] ? 0 : index[d] * outStrides[d];
    if (kind == Reduction::max)
      y.data[out] = std::max(y.data[out], x.data[in]);
    else
      y.data[out] += x.data[in];
    increment(index, x.shape);
  }
  if (kind == Reduction::mean) {
    int64_t count = y.numel() == 0 ? 0 : x.numel() / y.numel();
    for (double &v : y.data)
      v /= static_cast<double>(count);
  }
  if (!keepdims) {
    std::vector<int64_t> shape;
    for (int64_t d = 0; d < x.rank(); ++d)
      if (!reduced[d])
        shape.push_back(x.shape[d]);
    y.shape = shape;
  }
  y.round();
  return y;
}

Result kiln::reference::argmax(const Tensor &x, int64_t axis, bool keepdims) {
  axis = axisOf(axis, x.rank());
  int64_t outer = numElements(ArrayRef<int64_t>(x.shape).take_front(axis));
  int64_t n = x.shape[axis];
  int64_t inner = numElements(ArrayRef<int64_t>(x.shape).drop_front(axis + 1));
  std::vector<int64_t> shape = x.shape;
  if (keepdims)
    shape[axis] = 1;
  else
    shape.erase(shape.begin() + axis);
  Tensor y(ElementType::i32, shape);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t best = 0;
      for (int64_t k = 1; k < n; ++k)
        if (x.data[(o * n + k) * inner + i] >
            x.data[(o * n + best) * inner + i])
          best = k;
      y.data[o * inner + i] = static_cast<double>(best);
    }
  return y;
}

Result kiln::reference::softmax(const Tensor &x, int64_t axis, bool log) {
  axis = axisOf(axis, x.rank());
  int64_t outer = numElements(ArrayRef<int64_t>(x.shape).take_front(axis));
  int64_t n = x.shape[axis];
  int64_t inner = numElements(ArrayRef<int64_t>(x.shape).drop_front(axis + 1));
  Tensor y(x.type, x.shape);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t k) { return (o * n + k) * inner + i; };
      double max = -std::numeric_limits<double>::infinity();
      for (int64_t k = 0; k < n; ++k)
        max = std::max(max, x.data[at(k)]);
      double sum = 0;
      for (int64_t k = 0; k < n; ++k)
        sum += std::exp(x.data[at(k)] - max);
      for (int64_t k = 0; k < n; ++k)
        y.data[at(k)] = log ? x.data[at(k)] - max - std::log(sum)
                            : std::exp(x.data[at(k)] - max) / sum;
    }
  y.round();
  return y;
}

/// Checks labels against `classes` and returns the row count.
static llvm::Expected<int64_t> checkLabels(const Tensor &logits,
                                           const Tensor &labels) {
  int64_t classes = logits.shape.back();
  int64_t rows = logits.numel() / std::max<int64_t>(classes, 1);
  if (labels.numel() != rows)
    return error("cross_entropy: " + llvm::Twine(labels.numel()) +
                 " labels for " + llvm::Twine(rows) + " rows of logits");
  for (double label : labels.data)
    if (label < 0 || label >= static_cast<double>(classes))
      return error("cross_entropy: label " + llvm::Twine(int64_t(label)) +
                   " is out of range [0, " + llvm::Twine(classes) + ")");
  return rows;
}

Result kiln::reference::crossEntropy(const Tensor &logits,
                                     const Tensor &labels) {
  auto rows = checkLabels(logits, labels);
  if (!rows)
    return rows.takeError();
  int64_t classes = logits.shape.back();
  double total = 0;
  for (int64_t r = 0; r < *rows; ++r) {
    const double *row = logits.data.data() + r * classes;
    double max = *std::max_element(row, row + classes);
    double sum = 0;
    for (int64_t c = 0; c < classes; ++c)
      sum += std::exp(row[c] - max);
    total += max + std::log(sum) - row[static_cast<int64_t>(labels.data[r])];
  }
  return Tensor(logits.type, {}, {roundTo(logits.type, total / *rows)});
}

Result kiln::reference::crossEntropyGrad(const Tensor &logits,
                                         const Tensor &labels,
                                         const Tensor &grad) {
  auto rows = checkLabels(logits, labels);
  if (!rows)
    return rows.takeError();
  int64_t classes = logits.shape.back();
  double scale = grad.data[0] / static_cast<double>(*rows);
  Tensor y(logits.type, logits.shape);
  for (int64_t r = 0; r < *rows; ++r) {
    const double *row = logits.data.data() + r * classes;
    double max = *std::max_element(row, row + classes);
    double sum = 0;
    for (int64_t c = 0; c < classes; ++c)
      sum += std::exp(row[c] - max);
    int64_t label = static_cast<int64_t>(labels.data[r]);
    for (int64_t c = 0; c < classes; ++c)
      y.data[r * classes + c] =
          scale * (std::exp(row[c] - max) / sum - (c == label ? 1.0 : 0.0));
  }
  y.round();
  return y;
}

Result kiln::reference::layerNorm(const Tensor &x, const Tensor &weight,
                                  const Tensor &bias, double epsilon) {
  int64_t n = x.shape.back();
  int64_t rows = x.numel() / std::max<int64_t>(n, 1);
  Tensor y(x.type, x.shape);
  for (int64_t r = 0; r < rows; ++r) {
    const double *row = x.data.data() + r * n;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; ++i)
      mean += row[i];
    mean /= n;
    for (int64_t i = 0; i < n; ++i)
      var += (row[i] - mean) * (row[i] - mean);
    var /= n;
    double rstd = 1.0 / std::sqrt(var + epsilon);
    for (int64_t i = 0; i < n; ++i)
      y.data[r * n + i] =
          (row[i] - mean) * rstd * weight.data[i] + bias.data[i];
  }
  y.round();
  return y;
}

namespace {

/// The shapes of one convolution, NCHW input and OIHW weight.
struct ConvShape {
  int64_t N, C, H, W, O, KH, KW, OH, OW;
  ConvShape(ArrayRef<int64_t> input, ArrayRef<int64_t> weight,
            ArrayRef<int64_t> stride, ArrayRef<int64_t> padding)
      : N(input[0]), C(input[1]), H(input[2]), W(input[3]), O(weight[0]),
        KH(weight[2]), KW(weight[3]),
        OH((H + 2 * padding[0] - KH) / stride[0] + 1),
        OW((W + 2 * padding[1] - KW) / stride[1] + 1) {}
};

/// Calls tap(y, x, w) with the flat indices of every (output, input,
/// weight) triple of the convolution: the one loop nest that the forward
/// pass and both gradients share.
template <typename Tap>
void forEachConvTap(const ConvShape &s, ArrayRef<int64_t> stride,
                    ArrayRef<int64_t> padding, Tap tap) {
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t o = 0; o < s.O; ++o)
      for (int64_t oh = 0; oh < s.OH; ++oh)
        for (int64_t ow = 0; ow < s.OW; ++ow) {
          int64_t y = ((n * s.O + o) * s.OH + oh) * s.OW + ow;
          for (int64_t c = 0; c < s.C; ++c)
            for (int64_t kh = 0; kh < s.KH; ++kh)
              for (int64_t kw = 0; kw < s.KW; ++kw) {
                int64_t ih = oh * stride[0] - padding[0] + kh;
                int64_t iw = ow * stride[1] - padding[1] + kw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W)
                  continue; // zero padding
                tap(y, ((n * s.C + c) * s.H + ih) * s.W + iw,
                    ((o * s.C + c) * s.KH + kh) * s.KW + kw);
              }
        }
}

} // namespace

Result kiln::reference::conv2d(const Tensor &x, const Tensor &w,
                               ArrayRef<int64_t> stride,
                               ArrayRef<int64_t> padding) {
  if (w.shape[1] != x.shape[1])
    return error("conv2d: input has " + llvm::Twine(x.shape[1]) +
                 " channels at run time, the weight expects " +
                 llvm::Twine(w.shape[1]));
  ConvShape s(x.shape, w.shape, stride, padding);
  Tensor y(x.type, {s.N, s.O, s.OH, s.OW});
  forEachConvTap(s, stride, padding, [&](int64_t yi, int64_t xi, int64_t wi) {
    y.data[yi] += x.data[xi] * w.data[wi];
  });
  y.round();
  return y;
}

Result kiln::reference::pool2d(const Tensor &x, ArrayRef<int64_t> kernel,
                               ArrayRef<int64_t> stride,
                               ArrayRef<int64_t> padding, bool max) {
  int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  int64_t OH = (H + 2 * padding[0] - kernel[0]) / stride[0] + 1;
  int64_t OW = (W + 2 * padding[1] - kernel[1]) / stride[1] + 1;
  Tensor y(x.type, {N, C, OH, OW});
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        double acc = max ? -std::numeric_limits<double>::infinity() : 0.0;
        for (int64_t kh = 0; kh < kernel[0]; ++kh)
          for (int64_t kw = 0; kw < kernel[1]; ++kw) {
            int64_t ih = oh * stride[0] - padding[0] + kh;
            int64_t iw = ow * stride[1] - padding[1] + kw;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W)
              continue; // padding: ignored by max, counts as 0 for avg
            double v = x.data[(nc * H + ih) * W + iw];
            acc = max ? std::max(acc, v) : acc + v;
          }
        y.data[(nc * OH + oh) * OW + ow] =
            max ? acc : acc / static_cast<double>(kernel[0] * kernel[1]);
      }
  y.round();
  return y;
}

Result kiln::reference::embedding(const Tensor &table, const Tensor &indices) {
  int64_t rows = table.shape[0], dim = table.shape[1];
  std::vector<int64_t> shape = indices.shape;
  shape.push_back(dim);
  Tensor y(table.type, shape);
  for (int64_t i = 0; i < indices.numel(); ++i) {
    double index = indices.data[i];
    if (index < 0 || index >= static_cast<double>(rows))
      return error("embedding: index " + llvm::Twine(int64_t(index)) +
                   " is out of range [0, " + llvm::Twine(rows) + ")");
    std::copy_n(table.data.begin() + static_cast<int64_t>(index) * dim, dim,
                y.data.begin() + i * dim);
  }
  return y;
}

/// Fails unless `grad` has the shape `expected` of the forward result.
static llvm::Error checkGradShape(llvm::StringRef op, const Tensor &grad,
                                  ArrayRef<int64_t> expected) {
  if (grad.shape == std::vector<int64_t>(expected.begin(), expected.end()))
    return llvm::Error::success();
  return error(op + ": gradient of shape " + formatShape(grad.shape) +
               " at run time, the forward result has shape " +
               formatShape(expected));
}

Result kiln::reference::conv2dGradInput(const Tensor &grad, const Tensor &w,
                                        ArrayRef<int64_t> inputShape,
                                        ArrayRef<int64_t> stride,
                                        ArrayRef<int64_t> padding) {
  ConvShape s(inputShape, w.shape, stride, padding);
  if (llvm::Error e =
          checkGradShape("conv2d_grad_input", grad, {s.N, s.O, s.OH, s.OW}))
    return std::move(e);
  Tensor dx(grad.type, std::vector<int64_t>(inputShape));
  forEachConvTap(s, stride, padding, [&](int64_t yi, int64_t xi, int64_t wi) {
    dx.data[xi] += grad.data[yi] * w.data[wi];
  });
  dx.round();
  return dx;
}

Result kiln::reference::conv2dGradWeight(const Tensor &x, const Tensor &grad,
                                         ArrayRef<int64_t> weightShape,
                                         ArrayRef<int64_t> stride,
                                         ArrayRef<int64_t> padding) {
  ConvShape s(x.shape, weightShape, stride, padding);
  if (llvm::Error e =
          checkGradShape("conv2d_grad_weight", grad, {s.N, s.O, s.OH, s.OW}))
    return std::move(e);
  Tensor dw(grad.type, std::vector<int64_t>(weightShape));
  forEachConvTap(s, stride, padding, [&](int64_t yi, int64_t xi, int64_t wi) {
    dw.data[wi] += grad.data[yi] * x.data[xi];
  });
  dw.round();
  return dw;
}

Result kiln::reference::maxPool2dGrad(const Tensor &x, const Tensor &grad,
                                      ArrayRef<int64_t> kernel,
                                      ArrayRef<int64_t> stride,
                                      ArrayRef<int64_t> padding) {
  int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  int64_t OH = (H + 2 * padding[0] - kernel[0]) / stride[0] + 1;
  int64_t OW = (W + 2 * padding[1] - kernel[1]) / stride[1] + 1;
  if (llvm::Error e = checkGradShape("max_pool2d_grad", grad, {N, C, OH, OW}))
    return std::move(e);
  Tensor dx(grad.type, x.shape);
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        // The first maximum: a later element must be strictly greater.
        int64_t argmax = -1;
        double best = -std::numeric_limits<double>::infinity();
        for (int64_t kh = 0; kh < kernel[0]; ++kh)
          for (int64_t kw = 0; kw < kernel[1]; ++kw) {
            int64_t ih = oh * stride[0] - padding[0] + kh;
            int64_t iw = ow * stride[1] - padding[1] + kw;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W)
              continue; // padding never wins
            int64_t at = (nc * H + ih) * W + iw;
            if (argmax < 0 || x.data[at] > best) {
              argmax = at;
              best = x.data[at];
            }
          }
        if (argmax >= 0)
          dx.data[argmax] += grad.data[(nc * OH + oh) * OW + ow];
      }
  dx.round();
  return dx;
}

Result kiln::reference::avgPool2dGrad(const Tensor &grad,
                                      ArrayRef<int64_t> inputShape,
                                      ArrayRef<int64_t> kernel,
                                      ArrayRef<int64_t> stride,
                                      ArrayRef<int64_t> padding) {
  int64_t N = inputShape[0], C = inputShape[1], H = inputShape[2],
          W = inputShape[3];
  int64_t OH = (H + 2 * padding[0] - kernel[0]) / stride[0] + 1;
  int64_t OW = (W + 2 * padding[1] - kernel[1]) / stride[1] + 1;
  if (llvm::Error e = checkGradShape("avg_pool2d_grad", grad, {N, C, OH, OW}))
    return std::move(e);
  // The divisor counts the padding, as the forward op does.
  double area = static_cast<double>(kernel[0] * kernel[1]);
  Tensor dx(grad.type, std::vector<int64_t>(inputShape));
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        double g = grad.data[(nc * OH + oh) * OW + ow] / area;
        for (int64_t kh = 0; kh < kernel[0]; ++kh)
          for (int64_t kw = 0; kw < kernel[1]; ++kw) {
            int64_t ih = oh * stride[0] - padding[0] + kh;
            int64_t iw = ow * stride[1] - padding[1] + kw;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W)
              continue;
            dx.data[(nc * H + ih) * W + iw] += g;
          }
      }
  dx.round();
  return dx;
}

Result kiln::reference::embeddingGrad(const Tensor &indices, const Tensor &grad,
                                      ArrayRef<int64_t> tableShape) {
  int64_t rows = tableShape[0], dim = tableShape[1];
  std::vector<int64_t> expected = indices.shape;
  expected.push_back(dim);
  if (llvm::Error e = checkGradShape("embedding_grad", grad, expected))
    return std::move(e);
  Tensor dt(grad.type, std::vector<int64_t>(tableShape));
  for (int64_t i = 0; i < indices.numel(); ++i) {
    double index = indices.data[i];
    if (index < 0 || index >= static_cast<double>(rows))
      return error("embedding_grad: index " + llvm::Twine(int64_t(index)) +
                   " is out of range [0, " + llvm::Twine(rows) + ")");
    int64_t row = static_cast<int64_t>(index);
    for (int64_t d = 0; d < dim; ++d)
      dt.data[row * dim + d] += grad.data[i * dim + d];
  }
  dt.round();
  return dt;
}

Tensor kiln::reference::dropout(const Tensor &x, double rate, uint64_t seed,
                                uint64_t stream) {
  Tensor y(x.type, x.shape);
  double scale = 1.0 / (1.0 - rate);
  for (int64_t i = 0; i < x.numel(); ++i) {
    bool keep =
        runtime::uniform01(seed, stream, static_cast<uint64_t>(i)) >= rate;
    y.data[i] = keep ? roundTo(x.type, x.data[i] * scale) : 0.0;
  }
  return y;
}
