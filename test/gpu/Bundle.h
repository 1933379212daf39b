//===- Bundle.h - kernels with their reference results ----------*- C++ -*-===//
//
// A kernel bundle is what kiln-kernel-bundle writes on the build machine and
// kiln-gpu-check runs on the GPU host, for one example model and batch:
//
//   <dir>/<name>.cu           every generated kernel as CUDA C, one program
//   <dir>/<name>.safetensors  each kernel's inputs and reference results
//                             (tensors "<symbol>.in<i>" and
//                             "<symbol>.out<i>", with their dtypes and
//                             shapes), and under "__metadata__":
//     "kiln.bundle"    "1", the format version
//     "kiln.model"     the model file and binding it was compiled with
//     "kernel.<NNNN>"  one record per kernel, in kernel order (below)
//
// A record is lines of "key value...":
//
//   symbol matmul_add_relu_0
//   kind matmul
//   inputs matmul_add_relu_0.in0 matmul_add_relu_0.in1 ...
//   outputs matmul_add_relu_0.out0
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
// element accumulates (1 for elementwise kernels). Integer results must be
// exact; a NaN reference must be matched by NaN.
//
// Only the standard library is used here, so both tools share it.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TEST_GPU_BUNDLE_H
#define KILN_TEST_GPU_BUNDLE_H

#include <cstdint>
#include <cstdio>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace kiln::gpucheck {

/// The format version in "kiln.bundle".
inline constexpr const char *kBundleVersion = "1";

/// The tolerance of a kernel accumulating `k` terms per result element.
inline double absoluteTolerance(int64_t k) {
  return 1e-6 * double(k < 1 ? 1 : k);
}
inline constexpr double kRelativeTolerance = 1e-5;

/// One kernel of a bundle.
struct KernelRecord {
  std::string symbol;
  std::string kind;
  std::vector<std::string> inputs, outputs;
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

inline std::string formatRecord(const KernelRecord &record) {
  std::ostringstream out;
  out.precision(17);
  auto list = [&](const char *key, const auto &values) {
    out << key;
    for (const auto &value : values)
      out << ' ' << value;
    out << '\n';
  };
  out << "symbol " << record.symbol << '\n';
  out << "kind " << record.kind << '\n';
  list("inputs", record.inputs);
  list("outputs", record.outputs);
  out << "grid " << record.grid[0] << ' ' << record.grid[1] << ' '
      << record.grid[2] << '\n';
  out << "block " << record.block[0] << ' ' << record.block[1] << ' '
      << record.block[2] << '\n';
  out << "shared " << record.sharedBytes << '\n';
  list("dims", record.dims);
  out << "seed " << (record.takesSeed ? 1 : 0) << ' ' << record.seed << '\n';
  out << "tolerance " << record.atol << ' ' << record.rtol << ' '
      << record.accumulation << '\n';
  if (!record.error.empty())
    out << "error " << record.error;
  return out.str();
}

/// Parses a record; nullopt when a line is malformed or `symbol` is missing.
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
    if (key == "symbol") {
      ok = bool(fields >> record.symbol);
    } else if (key == "kind") {
      ok = bool(fields >> record.kind);
    } else if (key == "inputs" || key == "outputs") {
      auto &names = key == "inputs" ? record.inputs : record.outputs;
      for (std::string name; fields >> name;)
        names.push_back(name);
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
  if (record.symbol.empty())
    return std::nullopt;
  return record;
}

} // namespace kiln::gpucheck

#endif // KILN_TEST_GPU_BUNDLE_H
