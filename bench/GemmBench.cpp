//===- GemmBench.cpp - GFLOP/s of kiln's generated GEMMs ------------------===//
//
// kiln-gemm-bench [--threads N] [--runs R] [--seconds S] [--json FILE]
// FILE.cpp times the matmul kernels of FILE.cpp, the output of
// `kiln-translate --kernel-to-cpp --preamble` for bench/gemm.mlir (after
// `kiln-opt --kiln-schedule`), alone, outside any training step:
//
//   - FILE.cpp is compiled as the CPU backend compiles a model's kernels
//     (runtime/HostCompiler: the host's instruction set or $KILN_CPU_ISA,
//     cached on disk) and its parallel loops run on a ThreadPool of N
//     threads (default: all CPUs);
//   - each kernel is found by its `// kernel SYMBOL` line, its sizes and
//     layout by its name, gemm_MxNxK_LAYOUT (C[M, N] = op(A) op(B), LAYOUT
//     two letters n or t: A stored [M, K] or [K, M], B [K, N] or [N, K]);
//   - A and B are filled with uniform random numbers in [-1, 1); a warm-up
//     call, then R runs (default 5), each calling the kernel's
//     SYMBOL_entry as often as takes about S seconds (default 0.2, at least
//     once); the best run's mean time a call gives the GFLOP/s (2 M N K
//     flops a call);
//   - 64 outputs are checked against a sum in double precision, within the
//     bound of fp32 summation over K.
//
// Prints one line per kernel and, with --json, writes one JSON line each.
// Exit codes: 0 measured, 1 an error (compile, a missing kernel, a wrong
// result), 2 usage.
//
//===----------------------------------------------------------------------===//

#include "runtime/HostCompiler.h"
#include "runtime/Nvrtc.h"
#include "runtime/ThreadPool.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace kiln::runtime;
using Clock = std::chrono::steady_clock;

namespace {

/// One GEMM of the file: C[m, n] = op(A) op(B) over k.
struct Gemm {
  std::string symbol;
  long long m = 0, n = 0, k = 0;
  bool transposeA = false, transposeB = false;
  /// The schedule the kernel's comment names (#kiln.cpu_gemm<...>), or "".
  std::string schedule;
};

/// Parses "NAME_MxNxK_LAYOUT_INDEX" (kiln-translate appends _INDEX to the
/// kernel's name).
bool parseSymbol(const std::string &symbol, Gemm &gemm) {
  size_t index = symbol.rfind('_');
  if (index == std::string::npos)
    return false;
  size_t layout = symbol.rfind('_', index - 1);
  if (layout == std::string::npos || index - layout != 3)
    return false;
  size_t sizes = symbol.rfind('_', layout - 1);
  if (sizes == std::string::npos)
    return false;
  char a = symbol[layout + 1], b = symbol[layout + 2];
  if ((a != 'n' && a != 't') || (b != 'n' && b != 't'))
    return false;
  long long m, n, k;
  char end;
  std::string text = symbol.substr(sizes + 1, layout - sizes - 1);
  if (std::sscanf(text.c_str(), "%lldx%lldx%lld%c", &m, &n, &k, &end) != 3 ||
      m < 1 || n < 1 || k < 1)
    return false;
  gemm.symbol = symbol;
  gemm.m = m;
  gemm.n = n;
  gemm.k = k;
  gemm.transposeA = a == 't';
  gemm.transposeB = b == 't';
  return true;
}

/// The GEMMs of `source`, from kiln-translate's `// kernel SYMBOL` lines
/// (a line of its own; the generator's own comment line names the kernel
/// and what it fuses).
StatusOr<std::vector<Gemm>> findGemms(const std::string &source) {
  std::vector<Gemm> gemms;
  const std::string marker = "// kernel ";
  for (size_t at = source.find(marker); at != std::string::npos;
       at = source.find(marker, at + 1)) {
    size_t begin = at + marker.size();
    size_t end = source.find_first_of(" :\n", begin);
    if ((at > 0 && source[at - 1] != '\n') || end == std::string::npos ||
        source[end] != '\n')
      continue;
    std::string symbol = source.substr(begin, end - begin);
    Gemm gemm;
    if (!parseSymbol(symbol, gemm))
      return Status::error("kernel '" + symbol +
                           "' is not named gemm_MxNxK_LAYOUT (LAYOUT: nn, nt, "
                           "tn or tt)");
    size_t entry = source.find(symbol + "_entry", begin);
    size_t schedule = source.find("#kiln.cpu_gemm<", begin);
    if (schedule != std::string::npos && schedule < entry)
      gemm.schedule =
          source.substr(schedule, source.find('>', schedule) + 1 - schedule);
    gemms.push_back(gemm);
  }
  if (gemms.empty())
    return Status::error("no '// kernel SYMBOL' lines (the output of "
                         "kiln-translate --kernel-to-cpp --preamble)");
  return gemms;
}

double since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

using Entry = void (*)(void *const *buffers, const long long *dims,
                       unsigned long long seed);

/// Checks 64 outputs of `c` against sums in double precision, within the
/// error bound of fp32 summation over k (k units of roundoff of the sum of
/// the products' magnitudes, twice).
Status check(const Gemm &g, const std::vector<float> &a,
             const std::vector<float> &b, const std::vector<float> &c) {
  std::mt19937_64 rng(7);
  for (int sample = 0; sample < 64; ++sample) {
    long long i = (long long)(rng() % g.m), j = (long long)(rng() % g.n);
    double sum = 0, magnitude = 0;
    for (long long p = 0; p < g.k; ++p) {
      double x = a[g.transposeA ? p * g.m + i : i * g.k + p];
      double y = b[g.transposeB ? j * g.k + p : p * g.n + j];
      sum += x * y;
      magnitude += std::fabs(x * y);
    }
    double tolerance = 2 * double(g.k) * std::ldexp(1.0, -24) * magnitude;
    double got = c[i * g.n + j];
    if (!(std::fabs(got - sum) <= tolerance)) {
      char text[160];
      std::snprintf(text, sizeof(text),
                    "C[%lld, %lld] = %.9g, expected %.9g (tolerance %.3g)", i,
                    j, got, sum, tolerance);
      return Status::error(g.symbol + ": wrong result: " + text);
    }
  }
  return Status::success();
}

struct Timing {
  double seconds = 0; // the best run's mean a call
  long long calls = 0;
};

/// Times `entry`: a warm-up call, then `runs` runs of calls lasting about
/// `seconds` each.
Timing timeCalls(Entry entry, void *const *buffers, int runs, double seconds) {
  long long dims[1] = {0};
  auto start = Clock::now();
  entry(buffers, dims, 0);
  double once = since(start);
  Timing timing;
  timing.calls = std::max(1LL, (long long)(seconds / std::max(once, 1e-9)));
  timing.seconds = 1e300;
  for (int run = 0; run < runs; ++run) {
    start = Clock::now();
    for (long long call = 0; call < timing.calls; ++call)
      entry(buffers, dims, 0);
    timing.seconds = std::min(timing.seconds, since(start) / timing.calls);
  }
  return timing;
}

int usage() {
  std::fprintf(stderr, "usage: kiln-gemm-bench [--threads N] [--runs R] "
                       "[--seconds S] [--json FILE] FILE.cpp\n");
  return 2;
}

} // namespace

int main(int argc, char **argv) {
  int threads = 0, runs = 5;
  double seconds = 0.2;
  std::string jsonPath, file;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc)
      threads = std::max(0, std::atoi(argv[++i]));
    else if (arg == "--runs" && i + 1 < argc)
      runs = std::max(1, std::atoi(argv[++i]));
    else if (arg == "--seconds" && i + 1 < argc)
      seconds = std::max(0.0, std::atof(argv[++i]));
    else if (arg == "--json" && i + 1 < argc)
      jsonPath = argv[++i];
    else if (file.empty() && !arg.empty() && arg[0] != '-')
      file = arg;
    else
      return usage();
  }
  if (file.empty())
    return usage();
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "kiln-gemm-bench: cannot read '%s'\n", file.c_str());
    return 1;
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string source = text.str();
  auto gemms = findGemms(source);
  if (!gemms.ok()) {
    std::fprintf(stderr, "kiln-gemm-bench: %s: %s\n", file.c_str(),
                 gemms.status().message().c_str());
    return 1;
  }
  HostCompileOptions options;
  options.cacheDir = defaultCacheDir();
  auto library = compileHostLibrary("gemm", source, options);
  if (!library.ok()) {
    std::fprintf(stderr, "kiln-gemm-bench: %s\n",
                 library.status().message().c_str());
    return 1;
  }
  ThreadPool pool(threads > 0 ? threads : defaultThreads());
  pool.install(*library);
  std::FILE *json =
      jsonPath.empty() ? nullptr : std::fopen(jsonPath.c_str(), "w");
  if (!jsonPath.empty() && !json) {
    std::fprintf(stderr, "kiln-gemm-bench: cannot write '%s'\n",
                 jsonPath.c_str());
    return 1;
  }
  std::printf("kiln GEMMs: %s, %d thread%s\n", library->isa.c_str(),
              pool.threads(), pool.threads() == 1 ? "" : "s");
  int failures = 0;
  for (const Gemm &g : *gemms) {
    auto entry = reinterpret_cast<Entry>(library->symbol(g.symbol + "_entry"));
    if (!entry) {
      std::fprintf(stderr, "kiln-gemm-bench: no symbol %s_entry\n",
                   g.symbol.c_str());
      ++failures;
      continue;
    }
    std::mt19937_64 rng(1);
    std::uniform_real_distribution<float> uniform(-1, 1);
    std::vector<float> a(size_t(g.m * g.k)), b(size_t(g.k * g.n)),
        c(size_t(g.m * g.n));
    for (float &v : a)
      v = uniform(rng);
    for (float &v : b)
      v = uniform(rng);
    void *buffers[] = {a.data(), b.data(), c.data()};
    Timing timing = timeCalls(entry, buffers, runs, seconds);
    if (Status s = check(g, a, b, c); !s.ok()) {
      std::fprintf(stderr, "kiln-gemm-bench: %s\n", s.message().c_str());
      ++failures;
      continue;
    }
    double gflops =
        2.0 * double(g.m) * double(g.n) * double(g.k) / timing.seconds / 1e9;
    std::string layout =
        std::string(g.transposeA ? "t" : "n") + (g.transposeB ? "t" : "n");
    std::printf("%-28s %5lld x %5lld x %5lld %s  %9.4f ms  %8.2f GFLOP/s  %s\n",
                g.symbol.c_str(), g.m, g.n, g.k, layout.c_str(),
                1000 * timing.seconds, gflops, g.schedule.c_str());
    if (json)
      std::fprintf(json,
                   "{\"framework\": \"kiln\", \"gemm\": true, \"kernel\": "
                   "\"%s\", \"m\": %lld, \"n\": %lld, \"k\": %lld, "
                   "\"layout\": \"%s\", \"ms\": %.5f, \"gflops\": %.2f, "
                   "\"runs\": %d, \"calls\": %lld, \"threads\": %d, \"isa\": "
                   "\"%s\", \"schedule\": \"%s\"}\n",
                   g.symbol.c_str(), g.m, g.n, g.k, layout.c_str(),
                   1000 * timing.seconds, gflops, runs, timing.calls,
                   pool.threads(), library->isa.c_str(), g.schedule.c_str());
  }
  if (json)
    std::fclose(json);
  return failures ? 1 : 0;
}
