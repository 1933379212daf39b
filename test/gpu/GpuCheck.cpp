//===- GpuCheck.cpp - run kernel bundles on a GPU against references ------===//
//
// kiln-gpu-check [--json FILE] [--repeat N] [--probe] BUNDLE_DIR
//
// For each <name>.safetensors + <name>.cu in BUNDLE_DIR (see Bundle.h):
//   1. compile every program with NVRTC for the GPU's own sm_XY, in parallel
//      threads, through the on-disk cache (runtime::defaultCacheDir());
//   2. per kernel: upload its inputs, fill its outputs with 0xFF bytes (NaN
//      for floats: a kernel must write every element), launch it with the
//      recorded grid, block, shared memory, dynamic sizes and seed, download
//      and compare every element with the reference within the recorded
//      tolerance (NaN must match NaN, integers exactly);
//   3. time it: the median of N launches, each between two events.
// One line per kernel, then a summary. Exit codes: 0 when every kernel
// passes, 1 when any fails or cannot be checked, 2 on a usage or bundle
// error, 77 when there is no GPU (so ctest reports a skip). --probe only
// checks for a GPU (0 or 77).
//
// Needs only the runtime library: it builds with runtime/ on its own.
//
//===----------------------------------------------------------------------===//

#include "Bundle.h"

#include "runtime/Cuda.h"
#include "runtime/Nvrtc.h"
#include "runtime/Safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

using namespace kiln::runtime;
using namespace kiln::gpucheck;

namespace {

constexpr int kExitPass = 0, kExitFail = 1, kExitUsage = 2, kExitSkip = 77;

/// The outcome of one kernel.
struct KernelResult {
  std::string bundle, symbol, kind;
  bool passed = false;
  double maxAbsError = 0;
  double maxRatio = 0; ///< max |got - ref| / tolerance
  double microseconds = 0;
  std::string message; ///< why it failed
};

/// Element `i` of `bytes` holding `dtype`, as a double.
double element(DType dtype, const uint8_t *bytes, size_t i) {
  switch (dtype) {
  case DType::F32: {
    float value;
    std::memcpy(&value, bytes + 4 * i, 4);
    return value;
  }
  case DType::F64: {
    double value;
    std::memcpy(&value, bytes + 8 * i, 8);
    return value;
  }
  case DType::I32: {
    int32_t value;
    std::memcpy(&value, bytes + 4 * i, 4);
    return value;
  }
  case DType::I64: {
    int64_t value;
    std::memcpy(&value, bytes + 8 * i, 8);
    return double(value);
  }
  }
  return 0;
}

bool isFloat(DType dtype) { return dtype == DType::F32 || dtype == DType::F64; }

/// Compares `got` with the reference `want`, updating `result`; false on a
/// mismatch, with the first mismatches described in result.message.
bool compare(const TensorData &want, const std::vector<uint8_t> &got,
             const KernelRecord &record, KernelResult &result) {
  size_t count = want.bytes.size() / size_t(dtypeSize(want.dtype));
  int mismatches = 0;
  std::ostringstream details;
  details.precision(9);
  for (size_t i = 0; i < count; ++i) {
    double ref = element(want.dtype, want.bytes.data(), i);
    double value = element(want.dtype, got.data(), i);
    bool ok;
    double error = 0, ratio = 0;
    if (std::isnan(ref) || std::isnan(value)) {
      ok = std::isnan(ref) && std::isnan(value);
      ratio = ok ? 0 : std::numeric_limits<double>::infinity();
    } else if (std::isinf(ref) || std::isinf(value)) {
      ok = ref == value;
      ratio = ok ? 0 : std::numeric_limits<double>::infinity();
    } else {
      error = std::fabs(value - ref);
      double tolerance =
          isFloat(want.dtype) ? record.atol + record.rtol * std::fabs(ref) : 0;
      ok = error <= tolerance;
      ratio = tolerance > 0 ? error / tolerance
              : error > 0   ? std::numeric_limits<double>::infinity()
                            : 0;
    }
    result.maxAbsError = std::max(result.maxAbsError, error);
    result.maxRatio = std::max(result.maxRatio, ratio);
    if (!ok && mismatches++ < 3)
      details << "\n"
              << want.name << "[" << i << "]: got " << value << ", want "
              << ref;
  }
  if (mismatches > 0)
    result.message += (result.message.empty() ? "" : "\n") +
                      details.str().substr(1) + "\n" + want.name + ": " +
                      std::to_string(mismatches) + " of " +
                      std::to_string(count) + " elements differ";
  return mismatches == 0;
}

/// Runs, checks and times one kernel.
KernelResult
checkKernel(const cuda::Module &module, const KernelRecord &record,
            const std::map<std::string, const TensorData *> &tensors,
            const cuda::Stream &stream, int repeat) {
  KernelResult result;
  result.symbol = record.symbol;
  result.kind = record.kind;
  auto fail = [&](const std::string &message) {
    result.message = message;
    return result;
  };
  if (!record.error.empty())
    return fail("not checked: " + record.error);

  StatusOr<cuda::Function> function = module.function(record.symbol);
  if (!function.ok())
    return fail(function.status().message());
  if (record.sharedBytes > 48 * 1024)
    if (Status status =
            function->setMaxDynamicSharedBytes(int(record.sharedBytes));
        !status.ok())
      return fail(status.message());

  // Buffers: inputs uploaded, outputs filled with 0xFF.
  std::vector<cuda::DeviceBuffer> buffers;
  std::vector<const TensorData *> outputs;
  auto tensor = [&](const std::string &name) -> const TensorData * {
    auto it = tensors.find(name);
    return it == tensors.end() ? nullptr : it->second;
  };
  for (const std::string &name : record.inputs) {
    const TensorData *input = tensor(name);
    if (!input)
      return fail("the bundle lacks tensor " + name);
    StatusOr<cuda::DeviceBuffer> buffer =
        cuda::DeviceBuffer::allocate(input->bytes.size());
    if (!buffer.ok())
      return fail(buffer.status().message());
    if (Status status =
            buffer->upload(input->bytes.data(), input->bytes.size());
        !status.ok())
      return fail(status.message());
    buffers.push_back(std::move(*buffer));
  }
  for (const std::string &name : record.outputs) {
    const TensorData *output = tensor(name);
    if (!output)
      return fail("the bundle lacks tensor " + name);
    StatusOr<cuda::DeviceBuffer> buffer =
        cuda::DeviceBuffer::allocate(output->bytes.size());
    if (!buffer.ok())
      return fail(buffer.status().message());
    if (Status status = buffer->fill(0xFF); !status.ok())
      return fail(status.message());
    buffers.push_back(std::move(*buffer));
    outputs.push_back(output);
  }

  // Parameters in the calling convention's order: pointers, sizes, seed.
  std::vector<cuda::DevicePointer> pointers;
  for (const cuda::DeviceBuffer &buffer : buffers)
    pointers.push_back(buffer.get());
  std::vector<long long> dims(record.dims.begin(), record.dims.end());
  // The seed is read from device memory (KernelCodegen.h).
  unsigned long long seedValue = record.seed;
  auto seedBuffer = cuda::DeviceBuffer::allocate(sizeof(seedValue));
  if (!seedBuffer.ok())
    return fail(seedBuffer.status().message());
  if (Status status = seedBuffer->upload(&seedValue, sizeof(seedValue));
      !status.ok())
    return fail(status.message());
  cuda::DevicePointer seed = seedBuffer->get();
  std::vector<void *> args;
  for (cuda::DevicePointer &pointer : pointers)
    args.push_back(&pointer);
  for (long long &dim : dims)
    args.push_back(&dim);
  if (record.takesSeed)
    args.push_back(&seed);

  for (int d = 0; d < 3; ++d)
    if (record.grid[d] < 1 || record.grid[d] > int64_t(UINT32_MAX))
      return fail("grid extent " + std::to_string(record.grid[d]) +
                  " out of range");
  cuda::Dim3 grid{unsigned(record.grid[0]), unsigned(record.grid[1]),
                  unsigned(record.grid[2])};
  cuda::Dim3 block{record.block[0], record.block[1], record.block[2]};
  auto launch = [&] {
    return cuda::launch(*function, grid, block, record.sharedBytes, stream,
                        args.data());
  };
  if (Status status = launch(); !status.ok())
    return fail(status.message());
  if (Status status = stream.synchronize(); !status.ok())
    return fail("running " + record.symbol + ": " + status.message());

  bool passed = true;
  for (size_t r = 0; r < outputs.size(); ++r) {
    const cuda::DeviceBuffer &buffer = buffers[record.inputs.size() + r];
    std::vector<uint8_t> got(outputs[r]->bytes.size());
    if (Status status = buffer.download(got.data(), got.size()); !status.ok())
      return fail(status.message());
    passed &= compare(*outputs[r], got, record, result);
  }

  // Timing: each launch between its own pair of events; the median.
  StatusOr<cuda::Event> start = cuda::Event::create();
  StatusOr<cuda::Event> end = cuda::Event::create();
  if (!start.ok() || !end.ok())
    return fail((start.ok() ? end : start).status().message());
  std::vector<double> times;
  for (int i = 0; i < repeat; ++i) {
    if (Status status = start->record(stream); !status.ok())
      return fail(status.message());
    if (Status status = launch(); !status.ok())
      return fail(status.message());
    if (Status status = end->record(stream); !status.ok())
      return fail(status.message());
    if (Status status = end->synchronize(); !status.ok())
      return fail(status.message());
    StatusOr<float> ms = cuda::Event::elapsedMilliseconds(*start, *end);
    if (!ms.ok())
      return fail(ms.status().message());
    times.push_back(double(*ms) * 1000.0);
  }
  if (!times.empty()) {
    std::sort(times.begin(), times.end());
    result.microseconds = times[times.size() / 2];
  }
  result.passed = passed;
  return result;
}

std::string jsonString(const std::string &text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (uint8_t(c) < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\u%04x", unsigned(c));
      out += escape;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string jsonNumber(double value) {
  if (!std::isfinite(value))
    return "null";
  char text[32];
  std::snprintf(text, sizeof(text), "%.6g", value);
  return text;
}

bool writeJson(const std::string &path, const cuda::DeviceProperties &device,
               const std::vector<KernelResult> &results) {
  std::ofstream out(path);
  out << "{\n  \"device\": " << jsonString(device.name)
      << ",\n  \"arch\": " << jsonString(device.arch())
      << ",\n  \"kernels\": [";
  for (size_t i = 0; i < results.size(); ++i) {
    const KernelResult &r = results[i];
    out << (i ? ",\n" : "\n") << "    {\"bundle\": " << jsonString(r.bundle)
        << ", \"symbol\": " << jsonString(r.symbol)
        << ", \"kind\": " << jsonString(r.kind)
        << ", \"passed\": " << (r.passed ? "true" : "false")
        << ", \"max_abs_error\": " << jsonNumber(r.maxAbsError)
        << ", \"max_ratio\": " << jsonNumber(r.maxRatio)
        << ", \"us\": " << jsonNumber(r.microseconds)
        << ", \"message\": " << jsonString(r.message) << "}";
  }
  out << "\n  ]\n}\n";
  return out.good();
}

int usage(const char *message) {
  std::fprintf(stderr,
               "kiln-gpu-check: %s\nusage: kiln-gpu-check [--json FILE] "
               "[--repeat N] [--probe] BUNDLE_DIR\n",
               message);
  return kExitUsage;
}

} // namespace

int main(int argc, char **argv) {
  std::string dir, jsonPath;
  int repeat = 20;
  bool probe = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--json" && i + 1 < argc)
      jsonPath = argv[++i];
    else if (arg == "--repeat" && i + 1 < argc)
      repeat = std::max(0, std::atoi(argv[++i]));
    else if (arg == "--probe")
      probe = true;
    else if (!arg.empty() && arg[0] != '-' && dir.empty())
      dir = arg;
    else
      return usage(("unexpected argument '" + arg + "'").c_str());
  }
  if (dir.empty() && !probe)
    return usage("no bundle directory given");

  // No GPU is a skip, not a failure.
  if (Status status = cuda::initialize(); !status.ok()) {
    std::printf("kiln-gpu-check: skipped, no GPU: %s\n",
                status.message().c_str());
    return kExitSkip;
  }
  StatusOr<int> count = cuda::deviceCount();
  if (!count.ok() || *count == 0) {
    std::printf("kiln-gpu-check: skipped, no CUDA device%s%s\n",
                count.ok() ? "" : ": ",
                count.ok() ? "" : count.status().message().c_str());
    return kExitSkip;
  }
  if (probe)
    return kExitPass;

  StatusOr<cuda::Device> device = cuda::Device::open(0);
  if (!device.ok()) {
    std::fprintf(stderr, "kiln-gpu-check: %s\n",
                 device.status().message().c_str());
    return kExitFail;
  }
  const cuda::DeviceProperties &props = device->properties();
  StatusOr<int> driver = cuda::driverVersion();
  std::printf("device: %s (%s, %d SMs, driver %d)\n", props.name.c_str(),
              props.arch().c_str(), props.multiprocessors,
              driver.ok() ? *driver : 0);

  // The bundles: every <name>.safetensors with its <name>.cu.
  std::vector<std::string> names;
  std::error_code error;
  for (const auto &entry : std::filesystem::directory_iterator(dir, error))
    if (entry.path().extension() == ".safetensors")
      names.push_back(entry.path().stem().string());
  if (error)
    return usage(("cannot read " + dir + ": " + error.message()).c_str());
  std::sort(names.begin(), names.end());
  if (names.empty())
    return usage(("no *.safetensors bundle in " + dir).c_str());

  std::vector<std::pair<std::string, std::string>> programs;
  for (const std::string &name : names) {
    std::ifstream in(dir + "/" + name + ".cu");
    if (!in)
      return usage(("cannot read " + dir + "/" + name + ".cu").c_str());
    std::stringstream source;
    source << in.rdbuf();
    programs.emplace_back(name + ".cu", source.str());
  }
  CompileOptions options;
  options.arch = props.arch();
  options.cacheDir = defaultCacheDir();
  std::vector<StatusOr<CompiledProgram>> compiled =
      compileCudaParallel(programs, options, /*threads=*/0);

  StatusOr<cuda::Stream> stream = cuda::Stream::create();
  if (!stream.ok()) {
    std::fprintf(stderr, "kiln-gpu-check: %s\n",
                 stream.status().message().c_str());
    return kExitFail;
  }

  std::vector<KernelResult> results;
  int bundleErrors = 0;
  for (size_t b = 0; b < names.size(); ++b) {
    const std::string &name = names[b];
    StatusOr<Checkpoint> bundle =
        readSafetensors(dir + "/" + name + ".safetensors");
    if (!bundle.ok()) {
      std::printf("%s: %s\n", name.c_str(), bundle.status().message().c_str());
      ++bundleErrors;
      continue;
    }
    auto version = bundle->metadata.find("kiln.bundle");
    if (version == bundle->metadata.end() ||
        version->second != kBundleVersion) {
      std::printf("%s: not a kiln bundle of version %s\n", name.c_str(),
                  kBundleVersion);
      ++bundleErrors;
      continue;
    }
    std::map<std::string, const TensorData *> tensors;
    for (const TensorData &tensor : bundle->tensors)
      tensors[tensor.name] = &tensor;
    std::vector<KernelRecord> records;
    for (const auto &[key, value] : bundle->metadata) {
      if (key.rfind("kernel.", 0) != 0)
        continue;
      std::optional<KernelRecord> record = parseRecord(value);
      if (!record) {
        std::printf("%s: malformed record %s\n", name.c_str(), key.c_str());
        ++bundleErrors;
        continue;
      }
      records.push_back(std::move(*record));
    }

    std::string model = bundle->metadata.count("kiln.model")
                            ? bundle->metadata.at("kiln.model")
                            : name;
    std::printf("\n== %s: %s, %zu kernels", name.c_str(), model.c_str(),
                records.size());
    std::optional<cuda::Module> module;
    std::string moduleError;
    if (!compiled[b].ok()) {
      moduleError = compiled[b].status().message();
    } else {
      std::printf(" (NVRTC %.0f ms%s)", compiled[b]->compileSeconds * 1000,
                  compiled[b]->fromCache ? ", cached" : "");
      StatusOr<cuda::Module> loaded = cuda::Module::load(compiled[b]->image);
      if (loaded.ok())
        module.emplace(std::move(*loaded));
      else
        moduleError = loaded.status().message();
    }
    std::printf("\n");
    if (!moduleError.empty())
      std::printf("  %s\n", moduleError.c_str());

    for (const KernelRecord &record : records) {
      KernelResult result;
      if (module) {
        result = checkKernel(*module, record, tensors, *stream, repeat);
      } else {
        result.symbol = record.symbol;
        result.kind = record.kind;
        result.message = record.error.empty()
                             ? "the program did not compile or load"
                             : "not checked: " + record.error;
      }
      result.bundle = name;
      std::printf("%-44s %-12s max|err| %-10.3g err/tol %-9.3g %9.2f us  %s\n",
                  result.symbol.c_str(), result.kind.c_str(),
                  result.maxAbsError, result.maxRatio, result.microseconds,
                  result.passed ? "PASS" : "FAIL");
      if (!result.passed && !result.message.empty()) {
        // Indent every line of the message under the kernel's line.
        std::string indented = "    " + result.message;
        for (size_t at = 0; (at = indented.find('\n', at)) != std::string::npos;
             at += 5)
          indented.replace(at, 1, "\n    ");
        std::printf("%s\n", indented.c_str());
      }
      results.push_back(std::move(result));
    }
  }

  // The summary, per kind and in total.
  std::map<std::string, std::pair<int, int>> perKind; // passed, total
  int passed = 0;
  for (const KernelResult &result : results) {
    auto &[kindPassed, kindTotal] = perKind[result.kind];
    ++kindTotal;
    kindPassed += result.passed;
    passed += result.passed;
  }
  std::printf("\nsummary on %s (%s):\n", props.name.c_str(),
              props.arch().c_str());
  for (const auto &[kind, counts] : perKind)
    std::printf("  %-12s %d/%d passed\n", kind.c_str(), counts.first,
                counts.second);
  std::printf("  %d/%zu kernels passed, %zu failed", passed, results.size(),
              results.size() - size_t(passed));
  if (bundleErrors)
    std::printf(", %d bundle errors", bundleErrors);
  std::printf("\n");

  if (!jsonPath.empty() && !writeJson(jsonPath, props, results)) {
    std::fprintf(stderr, "kiln-gpu-check: cannot write %s\n", jsonPath.c_str());
    return kExitFail;
  }
  return passed == int(results.size()) && bundleErrors == 0 ? kExitPass
                                                            : kExitFail;
}
