//===- StepCheck.cpp - whole steps on the GPU match the CPU backend -------===//
//
// kiln-step-check DIR runs every compiled model in DIR (MODEL.program,
// MODEL.cu and MODEL.cpp, from `kiln compile --emit=program|cuda|cpp`) on
// the CUDA backend and on the CPU backend (itself checked against the
// reference executor by test/backend), from the same initial parameters
// and on the same random batches, and compares:
//
//   - the loss and metrics of every training step and of an evaluation
//     step, and every parameter and state tensor after each step, within a
//     float tolerance (different summation orders), each step starting
//     from the same state;
//   - two GPU runs with the same seeds, with and without CUDA graphs: bit
//     for bit equal (the deterministic mode);
//   - a GPU run whose inputs are gathered on the device from byte tables
//     (Backend::gatherInput, as the trainers feed Fashion-MNIST): bit for
//     bit equal to the run fed the same values by setInput.
//
// `kiln-step-check --probe` only tells whether there is a GPU (0) or not.
// Exit codes: 0 all match, 1 a mismatch or an error, 2 usage, 77 no GPU.
//
//===----------------------------------------------------------------------===//

#include "runtime/CpuBackend.h"
#include "runtime/Cuda.h"
#include "runtime/CudaBackend.h"
#include "runtime/Initializers.h"
#include "runtime/Nvrtc.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

using namespace kiln::runtime;

namespace {

constexpr int kSteps = 5;

std::string readText(const std::filesystem::path &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// `values` (doubles) as `dtype` bytes.
std::vector<uint8_t> encode(const std::vector<double> &values, DType dtype) {
  std::vector<uint8_t> bytes(values.size() * dtypeSize(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    uint8_t *p = bytes.data() + i * dtypeSize(dtype);
    if (dtype == DType::F32) {
      float v = float(values[i]);
      std::memcpy(p, &v, 4);
    } else if (dtype == DType::F64) {
      std::memcpy(p, &values[i], 8);
    } else if (dtype == DType::I32) {
      int32_t v = int32_t(values[i]);
      std::memcpy(p, &v, 4);
    } else {
      int64_t v = int64_t(values[i]);
      std::memcpy(p, &v, 8);
    }
  }
  return bytes;
}

/// Initial parameters (seed 1), the initial learning rate and zero state,
/// written to `backend`.
Status initialize(Backend &backend) {
  const Step *step = backend.program().step("train");
  for (size_t i = 0; i < step->arguments.size(); ++i) {
    const StepArgument &arg = step->arguments[i];
    if (arg.role == Role::input)
      continue;
    std::vector<double> values(size_t(arg.elements()), 0.0);
    if (!arg.init.kind.empty() &&
        !kiln::runtime::initialize(arg.init.kind, arg.init.a, arg.init.b,
                                   arg.shape, /*seed=*/1, i, values))
      return Status::error("parameter '" + arg.name + "' has no initializer");
    std::vector<uint8_t> bytes = encode(values, arg.dtype);
    if (Status s = backend.write(arg.name, bytes.data(), bytes.size()); !s.ok())
      return s;
  }
  return Status::success();
}

/// Random inputs for `step` number `n`, the same for every backend: each
/// element a random byte b, which becomes b / 256 (images in [0, 1)) or
/// b % 10 (labels of ten classes). Set with setInput, or `gathered` from a
/// byte table with the rows of each input in reverse order, decoding
/// through a table of those values.
Status feed(Backend &backend, const std::string &kind, int n,
            bool gathered = false) {
  const Step *step = backend.program().step(kind);
  std::mt19937_64 rng(1000 + n);
  for (const StepArgument &arg : step->arguments) {
    if (arg.role != Role::input)
      continue;
    const bool floating = isFloat(arg.dtype);
    auto value = [&](unsigned b) {
      return floating ? double(b) / 256 : double(b % 10);
    };
    std::vector<uint8_t> raw(size_t(arg.elements()));
    for (uint8_t &b : raw)
      b = uint8_t(rng());
    if (!gathered) {
      std::vector<double> values(raw.size());
      for (size_t i = 0; i < raw.size(); ++i)
        values[i] = value(raw[i]);
      std::vector<uint8_t> bytes = encode(values, arg.dtype);
      if (Status s =
              backend.setInput(kind, arg.name, bytes.data(), bytes.size());
          !s.ok())
        return s;
      continue;
    }
    size_t rows = arg.shape.empty() ? 1 : size_t(arg.shape[0]);
    size_t width = rows ? raw.size() / rows : 0;
    std::vector<uint8_t> table(raw.size());
    std::vector<int64_t> offsets(rows);
    for (size_t r = 0; r < rows; ++r) {
      offsets[r] = int64_t((rows - 1 - r) * width);
      std::copy_n(raw.begin() + r * width, width, table.begin() + offsets[r]);
    }
    std::vector<double> decode(256);
    for (unsigned b = 0; b < 256; ++b)
      decode[b] = value(b);
    std::vector<uint8_t> decodeBytes = encode(decode, arg.dtype);
    auto handle = backend.addByteTable(table.data(), table.size(),
                                       decodeBytes.data(), decodeBytes.size());
    if (!handle.ok())
      return handle.status();
    if (Status s = backend.gatherInput(kind, arg.name, *handle, offsets.data(),
                                       rows, width);
        !s.ok())
      return s;
  }
  return Status::success();
}

/// What a run leaves: the scalars of every step, then every parameter and
/// state tensor's bytes.
struct Trace {
  std::vector<std::vector<double>> scalars;
  std::vector<std::vector<uint8_t>> tensors;
};

StatusOr<Trace> trace(Backend &backend, bool gathered = false) {
  Trace t;
  if (Status s = initialize(backend); !s.ok())
    return s;
  std::vector<double> values;
  for (int n = 0; n < kSteps; ++n) {
    if (Status s = feed(backend, "train", n, gathered); !s.ok())
      return s;
    if (Status s = backend.run("train", /*seed=*/77 + n); !s.ok())
      return s;
    if (Status s = backend.scalars("train", values); !s.ok())
      return s;
    t.scalars.push_back(values);
  }
  if (backend.program().step("eval")) {
    if (Status s = feed(backend, "eval", kSteps, gathered); !s.ok())
      return s;
    if (Status s = backend.run("eval", 0); !s.ok())
      return s;
    if (Status s = backend.scalars("eval", values); !s.ok())
      return s;
    t.scalars.push_back(values);
  }
  for (const StepArgument &arg : backend.program().step("train")->arguments) {
    if (arg.role == Role::input)
      continue;
    std::vector<uint8_t> bytes(size_t(arg.bytes()));
    if (Status s = backend.read(arg.name, bytes.data(), bytes.size()); !s.ok())
      return s;
    t.tensors.push_back(std::move(bytes));
  }
  return t;
}

/// Runs the CPU and the GPU backend step by step from the same state: each
/// step's loss and metrics, and the parameters and state it leaves, must
/// agree within a float tolerance (different summation orders, fused
/// multiply-adds on the GPU). Before the next step the CPU takes the GPU's
/// parameters and state, so differences do not compound (a ReLU whose
/// input rounds to the other side of zero would otherwise grow them).
StatusOr<bool> lockstep(Backend &cpu, Backend &gpu) {
  for (Backend *b : {&cpu, &gpu})
    if (Status s = initialize(*b); !s.ok())
      return s;
  const Step *train = gpu.program().step("train");
  bool ok = true;
  double worstScalar = 0, worstTensor = 0;
  std::vector<double> want, got;
  auto compareScalars = [&](const std::string &kind, int n) -> Status {
    if (Status s = cpu.scalars(kind, want); !s.ok())
      return s;
    if (Status s = gpu.scalars(kind, got); !s.ok())
      return s;
    for (size_t i = 0; i < want.size(); ++i) {
      double error = std::fabs(got[i] - want[i]);
      worstScalar = std::max(worstScalar, error);
      if (!(error <= 1e-5 * std::fabs(want[i]) + 1e-6)) {
        std::printf("  %s step %d scalar %zu: gpu %.9g, cpu %.9g\n",
                    kind.c_str(), n, i, got[i], want[i]);
        ok = false;
      }
    }
    std::printf("  %s step %d: loss gpu %.9g cpu %.9g\n", kind.c_str(), n,
                got[0], want[0]);
    return Status::success();
  };
  for (int n = 0; n < kSteps; ++n) {
    for (Backend *b : {&cpu, &gpu}) {
      if (Status s = feed(*b, "train", n); !s.ok())
        return s;
      if (Status s = b->run("train", /*seed=*/77 + n); !s.ok())
        return s;
    }
    if (Status s = compareScalars("train", n); !s.ok())
      return s;
    for (const StepArgument &arg : train->arguments) {
      if (arg.role == Role::input)
        continue;
      std::vector<uint8_t> a(size_t(arg.bytes())), b(a.size());
      if (Status s = cpu.read(arg.name, a.data(), a.size()); !s.ok())
        return s;
      if (Status s = gpu.read(arg.name, b.data(), b.size()); !s.ok())
        return s;
      for (int64_t i = 0; i < arg.elements(); ++i) {
        double w = elementAsDouble(a.data(), arg.dtype, i);
        double g = elementAsDouble(b.data(), arg.dtype, i);
        double error = std::fabs(g - w);
        worstTensor = std::max(worstTensor, error);
        // 1e-4 absolute: Adam's first update, lr * m / (sqrt(v) + eps), is
        // lr * g / (|g| + eps): about lr * sign(g) for a gradient far above
        // eps, but where a gradient is near eps (a unit dropout or ReLU
        // silenced for most of the batch, its gradient a sum of cancelling
        // terms) it follows that gradient's rounding, which differs between
        // summation orders. 1e-4 is a tenth of the examples' AdamW step
        // (lr 1e-3), so a wrong gradient still fails.
        if (!(error <= 1e-4 * std::fabs(w) + 1e-4)) {
          std::printf("  step %d %s[%lld]: gpu %.9g, cpu %.9g\n", n,
                      arg.name.c_str(), static_cast<long long>(i), g, w);
          ok = false;
          break;
        }
      }
      if (Status s = cpu.write(arg.name, b.data(), b.size()); !s.ok())
        return s;
    }
  }
  if (gpu.program().step("eval")) {
    for (Backend *b : {&cpu, &gpu}) {
      if (Status s = feed(*b, "eval", kSteps); !s.ok())
        return s;
      if (Status s = b->run("eval", 0); !s.ok())
        return s;
    }
    if (Status s = compareScalars("eval", kSteps); !s.ok())
      return s;
  }
  std::printf("  largest difference gpu vs cpu per step: scalars %.3g, "
              "parameters and state %.3g\n",
              worstScalar, worstTensor);
  return ok;
}

bool identical(const Trace &a, const Trace &b) {
  return a.scalars == b.scalars && a.tensors == b.tensors;
}

int check(const std::filesystem::path &programFile) {
  std::string name = programFile.stem().string();
  std::filesystem::path base = programFile;
  auto program = parseProgram(readText(programFile), programFile.string());
  // A program with a run-time batch runs at its largest batch.
  if (program.ok())
    if (Status s = bindLargestBatches(*program); !s.ok())
      program = s;
  if (!program.ok()) {
    std::printf("%s: %s\n", name.c_str(), program.status().message().c_str());
    return 1;
  }
  std::string cuda = readText(base.replace_extension(".cu"));
  std::string cpp = readText(base.replace_extension(".cpp"));
  std::printf("%s: %zu train launches\n", name.c_str(),
              program->step("train")->launches.size());
  auto cpu = createCpuBackend(*program, cpp, {});
  if (!cpu.ok()) {
    std::printf("  cpu backend: %s\n", cpu.status().message().c_str());
    return 1;
  }
  CudaBackendOptions options;
  options.cacheDir = defaultCacheDir();
  auto gpu = createCudaBackend(*program, cuda, options);
  options.graphs = false;
  auto gpuNoGraphs = createCudaBackend(*program, cuda, options);
  if (!gpu.ok() || !gpuNoGraphs.ok()) {
    std::printf("  cuda backend: %s\n",
                (!gpu.ok() ? gpu : gpuNoGraphs).status().message().c_str());
    return 1;
  }
  std::printf("  %s, kernels compiled in %.3f s%s\n",
              (*gpu)->description().c_str(), (*gpu)->compileSeconds(),
              (*gpu)->compiledFromCache() ? " (cache)" : "");
  auto matches = lockstep(**cpu, **gpu);
  auto gpuTrace = trace(**gpu);
  auto gpuAgain = trace(**gpu);
  auto gpuPlain = trace(**gpuNoGraphs);
  auto gpuGathered = trace(**gpu, /*gathered=*/true);
  if (!matches.ok()) {
    std::printf("  run: %s\n", matches.status().message().c_str());
    return 1;
  }
  for (auto *t : {&gpuTrace, &gpuAgain, &gpuPlain, &gpuGathered})
    if (!t->ok()) {
      std::printf("  run: %s\n", t->status().message().c_str());
      return 1;
    }
  bool again = identical(*gpuTrace, *gpuAgain);
  bool plain = identical(*gpuTrace, *gpuPlain);
  bool gathered = identical(*gpuTrace, *gpuGathered);
  std::printf("  gpu run twice: %s; with and without CUDA graphs: %s; "
              "inputs gathered on the GPU: %s\n",
              again ? "bit-identical" : "DIFFERENT",
              plain ? "bit-identical" : "DIFFERENT",
              gathered ? "bit-identical" : "DIFFERENT");
  bool ok = *matches && again && plain && gathered;
  std::printf("  %s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: kiln-step-check DIR | --probe\n");
    return 2;
  }
  auto count = cuda::deviceCount();
  if (!count.ok() || *count == 0) {
    std::printf("skipped: %s\n", count.ok() ? "no CUDA device"
                                            : count.status().message().c_str());
    return 77;
  }
  if (std::string(argv[1]) == "--probe")
    return 0;
  int failures = 0, models = 0;
  std::vector<std::filesystem::path> programs;
  for (const auto &entry : std::filesystem::directory_iterator(argv[1]))
    if (entry.path().extension() == ".program")
      programs.push_back(entry.path());
  std::sort(programs.begin(), programs.end());
  for (const auto &path : programs) {
    ++models;
    failures += check(path) != 0;
  }
  std::printf("%d of %d models match\n", models - failures, models);
  return models == 0 || failures ? 1 : 0;
}
