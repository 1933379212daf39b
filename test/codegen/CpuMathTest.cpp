//===- CpuMathTest.cpp - cpu.h's e^x and tanh x against libm's double ----===//
//
// The C++ kernels spell f32 exp and tanh as cpu.h's kiln_expf and
// kiln_tanhf (inline, so loops vectorize). Both run here in a loop, as
// generated kernels run them, compiled for the host's instruction set and
// for the portable one, on every 257th float and on the special values;
// each result is compared with the double result rounded to float.
//
//===----------------------------------------------------------------------===//

#include "codegen/KernelCodegen.h"
#include "runtime/HostCompiler.h"
#include "runtime/Nvrtc.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

using namespace kiln;

namespace {

constexpr const char *kLoops = R"(
extern "C" void exp_loop(const float *__restrict__ in, float *__restrict__ out, long long n) {
  for (long long i = 0; i < n; ++i)
    out[i] = kiln_expf(in[i]);
}
extern "C" void tanh_loop(const float *__restrict__ in, float *__restrict__ out, long long n) {
  for (long long i = 0; i < n; ++i)
    out[i] = kiln_tanhf(in[i]);
}
)";

using Loop = void (*)(const float *, float *, long long);

/// |got - want| in units of the last place of want rounded to float (the
/// spacing of floats at its magnitude; the smallest subnormal's below
/// 2^-126). Equal special values are 0 apart, unequal ones infinitely.
double ulpsApart(float got, double want) {
  if (std::isnan(want))
    return std::isnan(got) ? 0 : INFINITY;
  float rounded = static_cast<float>(want);
  if (std::isinf(rounded) || std::isinf(got) || std::isnan(got))
    return got == rounded ? 0 : INFINITY;
  float magnitude = std::fabs(rounded);
  float ulp = std::nextafter(magnitude, INFINITY) - magnitude;
  return std::fabs(static_cast<double>(got) - want) / ulp;
}

struct Worst {
  double ulps = 0;
  float at = 0;
};

void check(const std::string &isa) {
  runtime::HostCompileOptions options;
  options.cacheDir = runtime::defaultCacheDir();
  options.isa = isa;
  auto library = runtime::compileHostLibrary(
      "cpu-math", codegen::preamble(codegen::Target::cpp) + kLoops, options);
  ASSERT_TRUE(library.ok()) << library.status().message();
  auto exp = reinterpret_cast<Loop>(library->symbol("exp_loop"));
  auto tanh = reinterpret_cast<Loop>(library->symbol("tanh_loop"));
  ASSERT_TRUE(exp && tanh);

  std::vector<float> in;
  for (uint64_t bits = 0; bits <= 0xffffffffull; bits += 257) {
    uint32_t word = static_cast<uint32_t>(bits);
    float x;
    std::memcpy(&x, &word, sizeof x);
    in.push_back(x);
  }
  const float specials[] = {
      0.0f,    -0.0f,   INFINITY, -INFINITY, NAN,    88.72f,  88.73f, -87.33f,
      -103.9f, -104.5f, 0.625f,   -0.625f,   1e-30f, -1e-30f, 9.0f,   -9.0f};
  in.insert(in.end(), std::begin(specials), std::end(specials));
  // The loop's worst result against `reference`, within `ulps`.
  auto expectWithin = [&](Loop loop, double (*reference)(double), double ulps,
                          const char *name) {
    std::vector<float> out(in.size());
    loop(in.data(), out.data(), static_cast<long long>(in.size()));
    Worst worst;
    for (size_t i = 0; i < in.size(); ++i) {
      double apart = ulpsApart(out[i], reference(static_cast<double>(in[i])));
      if (apart > worst.ulps)
        worst = {apart, in[i]};
    }
    EXPECT_LE(worst.ulps, ulps)
        << isa << ": " << name << "(" << worst.at << ")";
  };
  expectWithin(
      exp, [](double x) { return std::exp(x); }, 1.0, "kiln_expf");
  expectWithin(
      tanh, [](double x) { return std::tanh(x); }, 1.5, "kiln_tanhf");
}

TEST(CpuMath, ExpAndTanhWithinAnUlpAndAHalfOnTheHost) { check(""); }

TEST(CpuMath, ExpAndTanhWithinAnUlpAndAHalfWhenPortable) { check("portable"); }

} // namespace
