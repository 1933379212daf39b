//===- Initializers.h - parameter initialization ----------------*- C++ -*-===//
//
// Fills a parameter from its initializer (the `#kiln.init` attribute of the
// IR; ir/KilnOps.td documents each kind). Draws are Philox numbers of
// (seed, stream = the parameter's index, element index), so every backend
// initializes a model identically for the same seed. Header-only.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_INITIALIZERS_H
#define KILN_RUNTIME_INITIALIZERS_H

#include "runtime/Random.h"

#include <cmath>
#include <cstdint>
#include <string_view>
#include <vector>

namespace kiln::runtime {

/// Fan-in and fan-out of a weight `[out, in, k...]`, as PyTorch computes
/// them: fan_in = in * prod(k), fan_out = out * prod(k).
inline std::pair<double, double> fans(const std::vector<int64_t> &shape) {
  if (shape.size() < 2)
    return {1.0, 1.0};
  double receptive = 1;
  for (size_t i = 2; i < shape.size(); ++i)
    receptive *= static_cast<double>(shape[i]);
  return {static_cast<double>(shape[1]) * receptive,
          static_cast<double>(shape[0]) * receptive};
}

/// Fills `out` (row-major, of `shape`) by initializer `kind` (its name in
/// the IR) with arguments `a` and `b`. Returns false for an unknown kind.
inline bool initialize(std::string_view kind, double a, double b,
                       const std::vector<int64_t> &shape, uint64_t seed,
                       uint64_t stream, std::vector<double> &out) {
  int64_t count = 1;
  for (int64_t d : shape)
    count *= d;
  out.assign(static_cast<size_t>(count), 0.0);
  auto [fanIn, fanOut] = fans(shape);
  constexpr double kTwoPi = 6.28318530717958647692;
  // Element i draws from stream `stream`; normals take a second draw from
  // a stream no parameter index reaches.
  auto uniform = [&](int64_t i) {
    return runtime::uniform01(seed, stream, static_cast<uint64_t>(i));
  };
  auto normal = [&](int64_t i) {
    // Box-Muller on two independent draws of the same element.
    double u1 = 1.0 - runtime::uniform01(seed, stream + (1ull << 32),
                                         static_cast<uint64_t>(i));
    double u2 = uniform(i);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(kTwoPi * u2);
  };
  auto fillUniform = [&](double low, double high) {
    for (int64_t i = 0; i < count; ++i)
      out[i] = low + (high - low) * uniform(i);
  };
  auto fillNormal = [&](double mean, double std) {
    for (int64_t i = 0; i < count; ++i)
      out[i] = mean + std * normal(i);
  };
  if (kind == "zeros") {
    return true;
  } else if (kind == "ones") {
    out.assign(out.size(), 1.0);
  } else if (kind == "constant") {
    out.assign(out.size(), a);
  } else if (kind == "normal") {
    fillNormal(a, b);
  } else if (kind == "uniform") {
    fillUniform(a, b);
  } else if (kind == "kaiming_uniform") {
    double bound = a * std::sqrt(3.0 / fanIn);
    fillUniform(-bound, bound);
  } else if (kind == "kaiming_normal") {
    fillNormal(0.0, a / std::sqrt(fanIn));
  } else if (kind == "xavier_uniform") {
    double bound = a * std::sqrt(6.0 / (fanIn + fanOut));
    fillUniform(-bound, bound);
  } else if (kind == "xavier_normal") {
    fillNormal(0.0, a * std::sqrt(2.0 / (fanIn + fanOut)));
  } else {
    return false;
  }
  return true;
}

} // namespace kiln::runtime

#endif // KILN_RUNTIME_INITIALIZERS_H
