//===- Bundle.h - kernels with their reference results ----------*- C++ -*-===//
//
// A kernel bundle is what kiln-kernel-bundle writes on a machine with the
// compiler and kiln-kernel-check runs on a GPU host (or on the CPU), for one
// example model and batch:
//
//   <dir>/<name>.cu           every checked kernel as CUDA C, one program
//   <dir>/<name>.cpp          the same kernels as C++ (the CPU backend's)
//   <dir>/<name>.safetensors  each kernel's reference results (tensors
//                             "<symbol>.out<i>") and, for a result with
//                             ill-conditioned elements, their tolerances
//                             ("<symbol>.tol<i>", below); under
//                             "__metadata__":
//     "kiln.bundle"    "2", the format version
//     "kiln.model"     the model file and binding it was compiled with
//     "kernel.<NNNN>"  one record per kernel, in kernel order (below)
//
// Inputs are not stored: each is regenerated from its seed by
// generateInput (Philox, runtime/Random.h), the same on every machine.
// A record is lines of "key value...":
//
//   symbol matmul_add_relu_0
//   kind matmul
//   input F32 2,784 81234567   (one line per input: dtype, shape, seed; the
//                               shape "-" is a scalar)
//   outputs matmul_add_relu_0.out0 ...
//   tolerances - ...           (per output, its tolerance tensor or "-")
//   also matmul_add_relu_6 ... (kernels of the model identical to this one:
//                               the same code for the same shapes; checked
//                               through it)
//   grid 2 8 1          (the evaluated grid extents)
//   block 256 1 1
//   shared 0            (dynamic shared memory, bytes)
//   dims 64             (values of the dynamic-size parameters, in order)
//   seed 1 20240917     (whether it takes the seed, and its value)
//   tolerance 0.000784 1e-05 784   (atol, rtol, accumulation length K)
//   error ...           (only for a kernel that cannot be checked: the
//                        rest of the record says why; it counts as failed)
//
// Tolerances: |got - ref| <= atol + rtol * |ref|, atol = 1e-6 * K and
// rtol = 1e-5, where K is the number of products or terms each result
// element accumulates (1 for elementwise kernels). Where a result element
// is ill-conditioned in the kernel's inputs (a difference of nearly equal
// terms, a square root near zero), rounding alone moves it further: the
// writer reruns the reference with every float input perturbed by a few
// f32 ulps (kPerturbation: once by random amounts, once the even inputs up
// and the odd ones down) and, for each element that moves by more than
// its tolerance over kConditioningFactor, stores a widened tolerance: the
// base one plus kConditioningFactor times the largest move, infinite where
// the perturbed result is not finite (that element is not checked). They
// are an F64 tensor [n, 2] of rows (element index, tolerance), by
// increasing index; the checker counts both kinds of element. Integer
// results must be exact; a NaN reference must be matched by NaN.
//
// Only the standard library and the runtime library are used here, so both
// tools share it.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TEST_GPU_BUNDLE_H
#define KILN_TEST_GPU_BUNDLE_H

#include "runtime/Random.h"
#include "runtime/Safetensors.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace kiln::gpucheck {

/// The format version in "kiln.bundle".
inline constexpr const char *kBundleVersion = "2";

/// The tolerance of a kernel accumulating `k` terms per result element.
inline double absoluteTolerance(int64_t k) {
  return 1e-6 * double(k < 1 ? 1 : k);
}
inline constexpr double kRelativeTolerance = 1e-5;

/// The relative perturbation of float inputs that measures conditioning
/// (2^-22: four times f32's unit roundoff, about the rounding error a few
/// f32 operations leave), and how many times the move it causes is allowed
/// on top of the base tolerance.
inline constexpr double kPerturbation = 1.0 / (1 << 22);
inline constexpr double kConditioningFactor = 2.0;

/// An input of a kernel, regenerated from its seed.
struct InputSpec {
  runtime::DType dtype = runtime::DType::F32;
  std::vector<int64_t> shape;
  uint64_t seed = 0;

  int64_t elements() const {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
};

/// Element `index` of an input with `seed`: floats uniform in [-2, 2) on a
/// 2^-22 grid (exact in f32), integers uniform in {0, 1, 2} (valid class
/// labels and indices of every example).
inline double inputValue(const InputSpec &spec, uint64_t index) {
  double u = runtime::uniform01(spec.seed, 0, index);
  return runtime::isFloat(spec.dtype) ? 4.0 * u - 2.0 : std::floor(3.0 * u);
}

/// The input `spec` describes, as tensor `name`.
inline runtime::TensorData generateInput(const InputSpec &spec,
                                         std::string name) {
  runtime::TensorData data;
  data.name = std::move(name);
  data.dtype = spec.dtype;
  data.shape = spec.shape;
  size_t count = size_t(spec.elements());
  data.bytes.resize(count * size_t(runtime::dtypeSize(spec.dtype)));
  for (size_t i = 0; i < count; ++i)
    runtime::storeElement(data.bytes.data(), spec.dtype, i,
                          inputValue(spec, i));
  return data;
}

/// One kernel of a bundle.
struct KernelRecord {
  std::string symbol;
  std::string kind;
  std::vector<InputSpec> inputs;
  std::vector<std::string> outputs;
  /// Per output, its tolerance tensor, or empty for the base tolerance.
  std::vector<std::string> tolerances;
  /// The identical kernels checked through this one.
  std::vector<std::string> also;
  int64_t grid[3] = {1, 1, 1};
  unsigned block[3] = {1, 1, 1};
  unsigned sharedBytes = 0;
  std::vector<int64_t> dims;
  bool takesSeed = false;
  uint64_t seed = 0;
  double atol = 0, rtol = 0;
  int64_t accumulation = 1;
  /// Why the kernel cannot be checked; empty when it can.
  std::string error;
};

/// The metadata key of record `index`: "kernel.0007".
inline std::string recordKey(size_t index) {
  char key[32];
  std::snprintf(key, sizeof(key), "kernel.%04zu", index);
  return key;
}

inline std::string formatShape(const std::vector<int64_t> &shape) {
  if (shape.empty())
    return "-";
  std::string text;
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? "," : "") + std::to_string(shape[i]);
  return text;
}

inline std::optional<std::vector<int64_t>> parseShape(const std::string &text) {
  std::vector<int64_t> shape;
  if (text == "-")
    return shape;
  std::istringstream in(text);
  for (std::string dim; std::getline(in, dim, ',');) {
    char *end = nullptr;
    long long value = std::strtoll(dim.c_str(), &end, 10);
    if (dim.empty() || *end != '\0' || value < 0)
      return std::nullopt;
    shape.push_back(value);
  }
  if (shape.empty())
    return std::nullopt;
  return shape;
}

inline std::string formatRecord(const KernelRecord &record) {
  std::ostringstream out;
  out.precision(17);
  auto list = [&](const char *key, const auto &values) {
    out << key;
    for (const auto &value : values)
      out << ' ' << (value.empty() ? "-" : value);
    out << '\n';
  };
  out << "symbol " << record.symbol << '\n';
  out << "kind " << record.kind << '\n';
  for (const InputSpec &input : record.inputs)
    out << "input " << runtime::dtypeName(input.dtype) << ' '
        << formatShape(input.shape) << ' ' << input.seed << '\n';
  list("outputs", record.outputs);
  list("tolerances", record.tolerances);
  if (!record.also.empty())
    list("also", record.also);
  out << "grid " << record.grid[0] << ' ' << record.grid[1] << ' '
      << record.grid[2] << '\n';
  out << "block " << record.block[0] << ' ' << record.block[1] << ' '
      << record.block[2] << '\n';
  out << "shared " << record.sharedBytes << '\n';
  out << "dims";
  for (int64_t dim : record.dims)
    out << ' ' << dim;
  out << '\n';
  out << "seed " << (record.takesSeed ? 1 : 0) << ' ' << record.seed << '\n';
  out << "tolerance " << record.atol << ' ' << record.rtol << ' '
      << record.accumulation << '\n';
  if (!record.error.empty())
    out << "error " << record.error;
  return out.str();
}

/// Parses a record; nullopt when a line is malformed, `symbol` is missing
/// or `tolerances` does not match `outputs`.
inline std::optional<KernelRecord> parseRecord(const std::string &text) {
  KernelRecord record;
  // "error" is the last key and takes the rest of the record.
  std::string body = text;
  if (size_t at = text.find("\nerror "); at != std::string::npos) {
    record.error = text.substr(at + 7);
    body = text.substr(0, at + 1);
  }
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key;
    fields >> key;
    bool ok = true;
    auto names = [&](std::vector<std::string> &into) {
      for (std::string name; fields >> name;)
        into.push_back(name == "-" ? "" : name);
    };
    if (key == "symbol") {
      ok = bool(fields >> record.symbol);
    } else if (key == "kind") {
      ok = bool(fields >> record.kind);
    } else if (key == "input") {
      std::string dtype, shape;
      InputSpec input;
      ok = bool(fields >> dtype >> shape >> input.seed);
      std::optional<runtime::DType> parsed = runtime::parseDType(dtype);
      std::optional<std::vector<int64_t>> dims = parseShape(shape);
      ok = ok && parsed && dims;
      if (ok) {
        input.dtype = *parsed;
        input.shape = std::move(*dims);
        record.inputs.push_back(std::move(input));
      }
    } else if (key == "outputs") {
      names(record.outputs);
    } else if (key == "tolerances") {
      names(record.tolerances);
    } else if (key == "also") {
      names(record.also);
    } else if (key == "grid") {
      ok = bool(fields >> record.grid[0] >> record.grid[1] >> record.grid[2]);
    } else if (key == "block") {
      ok =
          bool(fields >> record.block[0] >> record.block[1] >> record.block[2]);
    } else if (key == "shared") {
      ok = bool(fields >> record.sharedBytes);
    } else if (key == "dims") {
      for (int64_t dim; fields >> dim;)
        record.dims.push_back(dim);
    } else if (key == "seed") {
      int takes = 0;
      ok = bool(fields >> takes >> record.seed);
      record.takesSeed = takes != 0;
    } else if (key == "tolerance") {
      ok = bool(fields >> record.atol >> record.rtol >> record.accumulation);
    } else if (!key.empty()) {
      ok = false;
    }
    if (!ok)
      return std::nullopt;
  }
  if (record.symbol.empty() ||
      record.tolerances.size() != record.outputs.size())
    return std::nullopt;
  return record;
}

} // namespace kiln::gpucheck

#endif // KILN_TEST_GPU_BUNDLE_H
