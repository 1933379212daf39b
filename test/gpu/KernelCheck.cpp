//===- KernelCheck.cpp - run kernel bundles against their references ------===//
//
// kiln-kernel-check [--device cuda|cpu|emulated] [--fma] [--json FILE]
//                   [--repeat N] [--probe] BUNDLE_DIR
//
// For each <name>.safetensors in BUNDLE_DIR (see Bundle.h), on the GPU
// (--device cuda, the default: the bundle's <name>.cu), on the CPU
// (--device cpu: its <name>.cpp, the CPU backend's kernels), or its CUDA
// kernels on the CPU (--device emulated: <name>.cu run on the host as
// CudaEmulation.h says, so the CUDA code is checked without a GPU):
//   1. compile every program: with NVRTC for the GPU's own sm_XY, in
//      parallel threads, or with the host C++ compiler; through the on-disk
//      cache (runtime::defaultCacheDir()). The CPU backend's flags keep the
//      arithmetic as written; --fma contracts multiply-adds into fused ones
//      (-march=native -ffp-contract=fast) as NVRTC does, so the rounding
//      differs from the reference's as on a GPU;
//   2. per kernel: generate its inputs from their seeds, fill its outputs
//      with 0xFF bytes (NaN for floats: a kernel must write every element),
//      run it (on the GPU with the recorded grid, block, shared memory,
//      dynamic sizes and seed), and compare every element with the
//      reference within its tolerance (NaN must match NaN, integers
//      exactly);
//   3. time it: the median of N runs (on the GPU each between two events).
// One line per kernel, then a summary. Exit codes: 0 when every kernel
// passes, 1 when any fails or cannot be checked, 2 on a usage or bundle
// error, 77 when --device cuda finds no GPU (so ctest reports a skip).
// --probe only checks for the device (0 or 77).
//
// Needs only the runtime library: it builds with runtime/ on its own.
//
//===----------------------------------------------------------------------===//

#include "Bundle.h"
#include "CudaEmulation.h"

#include "runtime/Cuda.h"
#include "runtime/HostCompiler.h"
#include "runtime/Nvrtc.h"
#include "runtime/Safetensors.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>

using namespace kiln::runtime;
using namespace kiln::gpucheck;

namespace {

constexpr int kExitPass = 0, kExitFail = 1, kExitUsage = 2, kExitSkip = 77;

/// The outcome of one kernel.
struct KernelResult {
  std::string bundle, symbol, kind;
  size_t identical = 0; ///< kernels of the model checked through this one
  bool passed = false;
  double maxAbsError = 0;
  double maxRatio = 0; ///< max |got - ref| / tolerance
  /// Elements whose tolerance conditioning widened, and those it left
  /// unchecked (an infinite tolerance).
  size_t widened = 0, unchecked = 0;
  double microseconds = 0;
  std::string message; ///< why it failed
};

/// Compares `got` with the reference `want` within the record's tolerance,
/// widened where `widened` says (Bundle.h: rows of element index and
/// tolerance, by increasing index), updating `result`; false on a mismatch,
/// with the first mismatches described in result.message.
bool compare(const TensorData &want, const std::vector<uint8_t> &got,
             const TensorData *widened, const KernelRecord &record,
             KernelResult &result) {
  size_t count = want.bytes.size() / size_t(dtypeSize(want.dtype));
  size_t rows = widened ? widened->bytes.size() / 16 : 0, row = 0;
  int mismatches = 0;
  std::ostringstream details;
  details.precision(9);
  for (size_t i = 0; i < count; ++i) {
    double ref = elementAsDouble(want.bytes.data(), want.dtype, i);
    double value = elementAsDouble(got.data(), want.dtype, i);
    double tolerance =
        isFloat(want.dtype) ? record.atol + record.rtol * std::fabs(ref) : 0;
    if (row < rows && elementAsDouble(widened->bytes.data(), DType::F64,
                                      2 * row) == double(i)) {
      tolerance =
          elementAsDouble(widened->bytes.data(), DType::F64, 2 * row + 1);
      ++row;
      ++result.widened;
      result.unchecked += std::isinf(tolerance);
    }
    bool ok;
    double error = 0, ratio = 0;
    if (std::isinf(tolerance)) {
      ok = true;
    } else if (std::isnan(ref) || std::isnan(value)) {
      ok = std::isnan(ref) && std::isnan(value);
      ratio = ok ? 0 : std::numeric_limits<double>::infinity();
    } else if (std::isinf(ref) || std::isinf(value)) {
      ok = ref == value;
      ratio = ok ? 0 : std::numeric_limits<double>::infinity();
    } else {
      error = std::fabs(value - ref);
      ok = error <= tolerance;
      ratio = tolerance > 0 ? error / tolerance
              : error > 0   ? std::numeric_limits<double>::infinity()
                            : 0;
    }
    result.maxAbsError = std::max(result.maxAbsError, error);
    result.maxRatio = std::max(result.maxRatio, ratio);
    if (!ok && mismatches++ < 3)
      details << "\n"
              << want.name << "[" << i << "]: got " << value << ", want " << ref
              << " (tolerance " << tolerance << ")";
  }
  if (mismatches > 0)
    result.message += (result.message.empty() ? "" : "\n") +
                      details.str().substr(1) + "\n" + want.name + ": " +
                      std::to_string(mismatches) + " of " +
                      std::to_string(count) + " elements differ";
  return mismatches == 0;
}

/// A bundle's program, loaded where its kernels run.
class Program {
public:
  virtual ~Program() = default;
  /// Runs the kernel of `record` on `inputs` into `outputs` (sized, filled
  /// with 0xFF), then `repeat` more times for the median time.
  virtual Status run(const KernelRecord &record,
                     const std::vector<TensorData> &inputs,
                     std::vector<std::vector<uint8_t>> &outputs, int repeat,
                     double &microseconds) = 0;
};

double median(std::vector<double> times) {
  if (times.empty())
    return 0;
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

/// The CUDA program of a bundle, in a loaded module.
class CudaProgram : public Program {
public:
  CudaProgram(cuda::Module module, const cuda::Stream &stream)
      : module(std::move(module)), stream(stream) {}

  Status run(const KernelRecord &record, const std::vector<TensorData> &inputs,
             std::vector<std::vector<uint8_t>> &outputs, int repeat,
             double &microseconds) override {
    StatusOr<cuda::Function> function = module.function(record.symbol);
    if (!function.ok())
      return function.status();
    if (record.sharedBytes > 48 * 1024)
      if (Status status =
              function->setMaxDynamicSharedBytes(int(record.sharedBytes));
          !status.ok())
        return status;

    // Buffers: inputs uploaded, outputs filled with 0xFF.
    std::vector<cuda::DeviceBuffer> buffers;
    auto add = [&](const uint8_t *bytes, size_t size) -> Status {
      StatusOr<cuda::DeviceBuffer> buffer = cuda::DeviceBuffer::allocate(size);
      if (!buffer.ok())
        return buffer.status();
      if (Status status = buffer->upload(bytes, size); !status.ok())
        return status;
      buffers.push_back(std::move(*buffer));
      return Status::success();
    };
    for (const TensorData &input : inputs)
      if (Status status = add(input.bytes.data(), input.bytes.size());
          !status.ok())
        return status;
    for (const std::vector<uint8_t> &output : outputs)
      if (Status status = add(output.data(), output.size()); !status.ok())
        return status;

    // Parameters in the calling convention's order: pointers, sizes, seed.
    std::vector<cuda::DevicePointer> pointers;
    for (const cuda::DeviceBuffer &buffer : buffers)
      pointers.push_back(buffer.get());
    std::vector<long long> dims(record.dims.begin(), record.dims.end());
    // The seed is read from device memory (KernelCodegen.h).
    unsigned long long seedValue = record.seed;
    StatusOr<cuda::DeviceBuffer> seedBuffer =
        cuda::DeviceBuffer::allocate(sizeof(seedValue));
    if (!seedBuffer.ok())
      return seedBuffer.status();
    if (Status status = seedBuffer->upload(&seedValue, sizeof(seedValue));
        !status.ok())
      return status;
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
        return Status::error("grid extent " + std::to_string(record.grid[d]) +
                             " out of range");
    cuda::Dim3 grid{unsigned(record.grid[0]), unsigned(record.grid[1]),
                    unsigned(record.grid[2])};
    cuda::Dim3 block{record.block[0], record.block[1], record.block[2]};
    auto launch = [&] {
      return cuda::launch(*function, grid, block, record.sharedBytes, stream,
                          args.data());
    };
    if (Status status = launch(); !status.ok())
      return status;
    if (Status status = stream.synchronize(); !status.ok())
      return Status::error("running " + record.symbol + ": " +
                           status.message());
    for (size_t r = 0; r < outputs.size(); ++r)
      if (Status status = buffers[inputs.size() + r].download(
              outputs[r].data(), outputs[r].size());
          !status.ok())
        return status;

    // Timing: each launch between its own pair of events.
    StatusOr<cuda::Event> start = cuda::Event::create();
    StatusOr<cuda::Event> end = cuda::Event::create();
    if (!start.ok() || !end.ok())
      return (start.ok() ? end : start).status();
    std::vector<double> times;
    for (int i = 0; i < repeat; ++i) {
      if (Status status = start->record(stream); !status.ok())
        return status;
      if (Status status = launch(); !status.ok())
        return status;
      if (Status status = end->record(stream); !status.ok())
        return status;
      if (Status status = end->synchronize(); !status.ok())
        return status;
      StatusOr<float> ms = cuda::Event::elapsedMilliseconds(*start, *end);
      if (!ms.ok())
        return ms.status();
      times.push_back(double(*ms) * 1000.0);
    }
    microseconds = median(std::move(times));
    return Status::success();
  }

private:
  cuda::Module module;
  const cuda::Stream &stream;
};

/// A bundle's program compiled by the host compiler, in a loaded shared
/// object: the C++ kernels, each called through its `<symbol>_entry`
/// (KernelCodegen.h), or the emulated CUDA kernels, each through its
/// `<symbol>_emulated` (CudaEmulation.h).
class HostProgram : public Program {
public:
  HostProgram(SharedLibrary library, bool emulated)
      : library(std::move(library)), emulated(emulated) {}

  Status run(const KernelRecord &record, const std::vector<TensorData> &inputs,
             std::vector<std::vector<uint8_t>> &outputs, int repeat,
             double &microseconds) override {
    using Entry =
        void (*)(void *const *, const long long *, unsigned long long);
    using Emulated =
        void (*)(void *const *, const long long *, const unsigned long long *);
    std::string name = record.symbol + (emulated ? "_emulated" : "_entry");
    void *function = library.symbol(name);
    if (!function)
      return Status::error("no function " + name + " in " + library.path());
    // The kernels never write their inputs, but copies keep them so.
    std::vector<std::vector<uint8_t>> in;
    std::vector<void *> buffers;
    for (const TensorData &input : inputs)
      buffers.push_back(in.emplace_back(input.bytes).data());
    for (std::vector<uint8_t> &output : outputs)
      buffers.push_back(output.data());
    std::vector<long long> dims(record.dims.begin(), record.dims.end());
    unsigned long long seed = record.seed;
    auto call = [&] {
      if (emulated)
        reinterpret_cast<Emulated>(function)(buffers.data(), dims.data(),
                                             &seed);
      else
        reinterpret_cast<Entry>(function)(buffers.data(), dims.data(), seed);
    };
    call();
    std::vector<double> times;
    for (int i = 0; i < repeat; ++i) {
      auto start = std::chrono::steady_clock::now();
      call();
      times.push_back(std::chrono::duration<double, std::micro>(
                          std::chrono::steady_clock::now() - start)
                          .count());
    }
    microseconds = median(std::move(times));
    return Status::success();
  }

private:
  SharedLibrary library;
  bool emulated;
};

/// Runs and checks one kernel of `program`.
KernelResult
checkKernel(Program &program, const KernelRecord &record,
            const std::map<std::string, const TensorData *> &tensors,
            int repeat) {
  KernelResult result;
  result.symbol = record.symbol;
  result.kind = record.kind;
  result.identical = record.also.size();
  if (!record.error.empty()) {
    result.message = "not checked: " + record.error;
    return result;
  }
  auto tensor = [&](const std::string &name) -> const TensorData * {
    auto it = tensors.find(name);
    return it == tensors.end() ? nullptr : it->second;
  };
  std::vector<TensorData> inputs;
  for (size_t i = 0; i < record.inputs.size(); ++i)
    inputs.push_back(generateInput(record.inputs[i],
                                   record.symbol + ".in" + std::to_string(i)));
  std::vector<const TensorData *> want, tolerances;
  std::vector<std::vector<uint8_t>> outputs;
  for (size_t r = 0; r < record.outputs.size(); ++r) {
    const TensorData *output = tensor(record.outputs[r]);
    const TensorData *tolerance =
        record.tolerances[r].empty() ? nullptr : tensor(record.tolerances[r]);
    if (!output || (!record.tolerances[r].empty() && !tolerance)) {
      result.message = "the bundle lacks tensor " +
                       (output ? record.tolerances[r] : record.outputs[r]);
      return result;
    }
    if (tolerance &&
        (tolerance->dtype != DType::F64 || tolerance->shape.size() != 2 ||
         tolerance->shape[1] != 2)) {
      result.message = "tensor " + record.tolerances[r] +
                       " is not a [n, 2] F64 tensor of tolerances";
      return result;
    }
    want.push_back(output);
    tolerances.push_back(tolerance);
    outputs.emplace_back(output->bytes.size(), uint8_t(0xFF));
  }
  if (Status status =
          program.run(record, inputs, outputs, repeat, result.microseconds);
      !status.ok()) {
    result.message = status.message();
    return result;
  }
  bool passed = true;
  for (size_t r = 0; r < outputs.size(); ++r)
    passed &= compare(*want[r], outputs[r], tolerances[r], record, result);
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

bool writeJson(const std::string &path, const std::string &device,
               const std::string &arch,
               const std::vector<KernelResult> &results) {
  std::ofstream out(path);
  out << "{\n  \"device\": " << jsonString(device)
      << ",\n  \"arch\": " << jsonString(arch) << ",\n  \"kernels\": [";
  for (size_t i = 0; i < results.size(); ++i) {
    const KernelResult &r = results[i];
    out << (i ? ",\n" : "\n") << "    {\"bundle\": " << jsonString(r.bundle)
        << ", \"symbol\": " << jsonString(r.symbol)
        << ", \"kind\": " << jsonString(r.kind)
        << ", \"identical\": " << r.identical
        << ", \"passed\": " << (r.passed ? "true" : "false")
        << ", \"max_abs_error\": " << jsonNumber(r.maxAbsError)
        << ", \"max_ratio\": " << jsonNumber(r.maxRatio)
        << ", \"widened\": " << r.widened << ", \"unchecked\": " << r.unchecked
        << ", \"us\": " << jsonNumber(r.microseconds)
        << ", \"message\": " << jsonString(r.message) << "}";
  }
  out << "\n  ]\n}\n";
  return out.good();
}

int usage(const std::string &message) {
  std::fprintf(stderr,
               "kiln-kernel-check: %s\nusage: kiln-kernel-check [--device "
               "cuda|cpu] [--fma] [--json FILE] [--repeat N] [--probe] "
               "BUNDLE_DIR\n",
               message.c_str());
  return kExitUsage;
}

std::optional<std::string> readText(const std::string &path) {
  std::ifstream in(path);
  if (!in)
    return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// The records of a bundle, in kernel order; an error for a file that is
/// not a bundle of this version or has a malformed record.
StatusOr<std::vector<KernelRecord>> readRecords(const Checkpoint &bundle) {
  auto version = bundle.metadata.find("kiln.bundle");
  if (version == bundle.metadata.end() || version->second != kBundleVersion)
    return Status::error(std::string("not a kiln bundle of version ") +
                         kBundleVersion);
  std::vector<KernelRecord> records;
  for (const auto &[key, value] : bundle.metadata) {
    if (key.rfind("kernel.", 0) != 0)
      continue;
    std::optional<KernelRecord> record = parseRecord(value);
    if (!record)
      return Status::error("malformed record " + key);
    records.push_back(std::move(*record));
  }
  return records;
}

} // namespace

int main(int argc, char **argv) {
  std::string dir, jsonPath, deviceName = "cuda";
  int repeat = 20;
  bool probe = false, fma = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--json" && i + 1 < argc)
      jsonPath = argv[++i];
    else if (arg == "--repeat" && i + 1 < argc)
      repeat = std::max(0, std::atoi(argv[++i]));
    else if (arg == "--device" && i + 1 < argc)
      deviceName = argv[++i];
    else if (arg == "--probe")
      probe = true;
    else if (arg == "--fma")
      fma = true;
    else if (!arg.empty() && arg[0] != '-' && dir.empty())
      dir = arg;
    else
      return usage("unexpected argument '" + arg + "'");
  }
  if (deviceName != "cuda" && deviceName != "cpu" && deviceName != "emulated")
    return usage("unknown device '" + deviceName + "' (cuda, cpu or emulated)");
  bool gpu = deviceName == "cuda", emulated = deviceName == "emulated";
  if (fma && gpu)
    return usage("--fma is for the host devices (NVRTC contracts by "
                 "default)");
  if (dir.empty() && !probe)
    return usage("no bundle directory given");

  // On the GPU: no GPU is a skip, not a failure.
  std::optional<cuda::Device> device;
  std::string deviceLabel = emulated ? "the CPU, CUDA emulated" : "the CPU",
              arch = "host";
  if (gpu) {
    if (Status status = cuda::initialize(); !status.ok()) {
      std::printf("kiln-kernel-check: skipped, no GPU: %s\n",
                  status.message().c_str());
      return kExitSkip;
    }
    StatusOr<int> count = cuda::deviceCount();
    if (!count.ok() || *count == 0) {
      std::printf("kiln-kernel-check: skipped, no CUDA device%s%s\n",
                  count.ok() ? "" : ": ",
                  count.ok() ? "" : count.status().message().c_str());
      return kExitSkip;
    }
    if (probe)
      return kExitPass;
    StatusOr<cuda::Device> opened = cuda::Device::open(0);
    if (!opened.ok()) {
      std::fprintf(stderr, "kiln-kernel-check: %s\n",
                   opened.status().message().c_str());
      return kExitFail;
    }
    device.emplace(std::move(*opened));
    const cuda::DeviceProperties &props = device->properties();
    StatusOr<int> driver = cuda::driverVersion();
    std::printf("device: %s (%s, %d SMs, driver %d)\n", props.name.c_str(),
                props.arch().c_str(), props.multiprocessors,
                driver.ok() ? *driver : 0);
    deviceLabel = props.name;
    arch = props.arch();
  } else if (probe) {
    return kExitPass;
  }

  // The bundles: every <name>.safetensors.
  std::vector<std::string> names;
  std::error_code error;
  for (const auto &entry : std::filesystem::directory_iterator(dir, error))
    if (entry.path().extension() == ".safetensors")
      names.push_back(entry.path().stem().string());
  if (error)
    return usage("cannot read " + dir + ": " + error.message());
  std::sort(names.begin(), names.end());
  if (names.empty())
    return usage("no *.safetensors bundle in " + dir);

  // Their programs, compiled up front (in parallel on the GPU).
  std::string extension = gpu || emulated ? ".cu" : ".cpp";
  std::vector<std::pair<std::string, std::string>> sources;
  for (const std::string &name : names) {
    std::optional<std::string> text = readText(dir + "/" + name + extension);
    if (!text)
      return usage("cannot read " + dir + "/" + name + extension);
    sources.emplace_back(name + extension, std::move(*text));
  }
  std::optional<cuda::Stream> stream;
  std::vector<StatusOr<CompiledProgram>> compiled;
  if (gpu) {
    StatusOr<cuda::Stream> created = cuda::Stream::create();
    if (!created.ok()) {
      std::fprintf(stderr, "kiln-kernel-check: %s\n",
                   created.status().message().c_str());
      return kExitFail;
    }
    stream.emplace(std::move(*created));
    CompileOptions options;
    options.arch = arch;
    options.cacheDir = defaultCacheDir();
    compiled = compileCudaParallel(sources, options, /*threads=*/0);
  }

  std::vector<KernelResult> results;
  int bundleErrors = 0;
  for (size_t b = 0; b < names.size(); ++b) {
    const std::string &name = names[b];
    StatusOr<Checkpoint> bundle =
        readSafetensors(dir + "/" + name + ".safetensors");
    StatusOr<std::vector<KernelRecord>> records =
        bundle.ok() ? readRecords(*bundle)
                    : StatusOr<std::vector<KernelRecord>>(bundle.status());
    if (!records.ok()) {
      std::printf("%s: %s\n", name.c_str(), records.status().message().c_str());
      ++bundleErrors;
      continue;
    }
    std::map<std::string, const TensorData *> tensors;
    for (const TensorData &tensor : bundle->tensors)
      tensors[tensor.name] = &tensor;

    size_t kernels = 0;
    for (const KernelRecord &record : *records)
      kernels += 1 + record.also.size();
    std::string model = bundle->metadata.count("kiln.model")
                            ? bundle->metadata.at("kiln.model")
                            : name;
    std::printf("\n== %s: %s, %zu kernels, %zu distinct", name.c_str(),
                model.c_str(), kernels, records->size());
    std::unique_ptr<Program> program;
    std::string programError;
    if (gpu) {
      if (!compiled[b].ok()) {
        programError = compiled[b].status().message();
      } else {
        std::printf(" (NVRTC %.0f ms%s)", compiled[b]->compileSeconds * 1000,
                    compiled[b]->fromCache ? ", cached" : "");
        StatusOr<cuda::Module> loaded = cuda::Module::load(compiled[b]->image);
        if (loaded.ok())
          program = std::make_unique<CudaProgram>(std::move(*loaded), *stream);
        else
          programError = loaded.status().message();
      }
    } else {
      HostCompileOptions options;
      options.cacheDir = defaultCacheDir();
      if (fma)
        options.flags = {"-O2", "-march=native", "-ffp-contract=fast", "-w"};
      std::string source = sources[b].second;
      if (emulated) {
        // The CUDA C as host C++, with an entry point per kernel.
        source = emulateCudaSource(source);
        for (const KernelRecord &record : *records) {
          std::vector<DType> outputs;
          for (const std::string &output : record.outputs)
            if (auto it = tensors.find(output); it != tensors.end())
              outputs.push_back(it->second->dtype);
          if (record.error.empty() && outputs.size() == record.outputs.size())
            source += emulationEntry(record, outputs);
        }
      }
      StatusOr<SharedLibrary> library = compileHostLibrary(
          name + (emulated ? "-emulated" : ""), source, options);
      if (library.ok()) {
        std::printf(" (C++ %.0f ms%s)", library->compileSeconds * 1000,
                    library->fromCache ? ", cached" : "");
        program = std::make_unique<HostProgram>(std::move(*library), emulated);
      } else {
        programError = library.status().message();
      }
    }
    std::printf("\n");
    if (!programError.empty())
      std::printf("  %s\n", programError.c_str());

    for (const KernelRecord &record : *records) {
      KernelResult result;
      if (program) {
        result = checkKernel(*program, record, tensors, repeat);
      } else {
        result.symbol = record.symbol;
        result.kind = record.kind;
        result.identical = record.also.size();
        result.message = record.error.empty()
                             ? "the program did not compile or load"
                             : "not checked: " + record.error;
      }
      result.bundle = name;
      std::string notes;
      if (result.identical)
        notes += " +" + std::to_string(result.identical) + " identical";
      if (result.widened)
        notes += ", " + std::to_string(result.widened) + " ill-conditioned";
      if (result.unchecked)
        notes += ", " + std::to_string(result.unchecked) + " unchecked";
      std::printf(
          "%-44s %-12s max|err| %-10.3g err/tol %-9.3g %9.2f us  %s%s\n",
          result.symbol.c_str(), result.kind.c_str(), result.maxAbsError,
          result.maxRatio, result.microseconds, result.passed ? "PASS" : "FAIL",
          notes.c_str());
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

  // The summary, per kind and in total; a record counts with the identical
  // kernels checked through it.
  std::map<std::string, std::pair<size_t, size_t>> perKind; // passed, total
  size_t passed = 0, total = 0, failedRecords = 0, widened = 0, unchecked = 0;
  for (const KernelResult &result : results) {
    size_t count = 1 + result.identical;
    auto &[kindPassed, kindTotal] = perKind[result.kind];
    kindTotal += count;
    total += count;
    if (result.passed) {
      kindPassed += count;
      passed += count;
    } else {
      ++failedRecords;
    }
    widened += result.widened;
    unchecked += result.unchecked;
  }
  std::printf("\nsummary on %s (%s):\n", deviceLabel.c_str(), arch.c_str());
  for (const auto &[kind, counts] : perKind)
    std::printf("  %-12s %zu/%zu passed\n", kind.c_str(), counts.first,
                counts.second);
  std::printf("  %zu/%zu kernels passed (%zu distinct, %zu failed)", passed,
              total, results.size(), failedRecords);
  if (bundleErrors)
    std::printf(", %d bundle errors", bundleErrors);
  std::printf("\n  %zu result elements ill-conditioned (tolerance widened), "
              "%zu of them unchecked\n",
              widened, unchecked);

  if (!jsonPath.empty() && !writeJson(jsonPath, deviceLabel, arch, results)) {
    std::fprintf(stderr, "kiln-kernel-check: cannot write %s\n",
                 jsonPath.c_str());
    return kExitFail;
  }
  return failedRecords == 0 && bundleErrors == 0 ? kExitPass : kExitFail;
}
