//===- NvrtcTest.cpp - compiling CUDA C with NVRTC ------------------------===//
//
// Tests that compile need NVRTC (no GPU) and skip, saying why, when it cannot
// be loaded; option, hashing and loader-error tests run everywhere.
//
//===----------------------------------------------------------------------===//

#include "runtime/Nvrtc.h"
#include "runtime/CudaBackend.h"

#include "TempDir.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>

using namespace kiln::runtime;
using kiln::runtime::testing::readFile;
using kiln::runtime::testing::TempDir;
using kiln::runtime::testing::writeFile;

namespace {

/// A small elementwise kernel; `kernelName` names it (extern "C", so the
/// name appears unmangled in PTX and CUBIN).
std::string scaleKernel(const std::string &kernelName = "scale") {
  return "extern \"C\" __global__ void " + kernelName +
         "(float *out, const float *in, float factor, int n) {\n"
         "  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
         "  if (i < n)\n"
         "    out[i] = factor * in[i];\n"
         "}\n";
}

#define SKIP_WITHOUT_NVRTC()                                                   \
  do {                                                                         \
    if (!nvrtcAvailable())                                                     \
      GTEST_SKIP() << "NVRTC cannot be loaded, so nothing is compiled: "       \
                   << nvrtcVersion().status().message();                       \
  } while (0)

/// Sets or (with nullopt) unsets an environment variable for one scope.
class ScopedEnv {
public:
  ScopedEnv(const char *name, std::optional<std::string> value) : name(name) {
    if (const char *old = std::getenv(name))
      previous = old;
    set(value);
  }
  ~ScopedEnv() { set(previous); }

private:
  void set(const std::optional<std::string> &value) {
    if (value)
      ::setenv(name, value->c_str(), 1);
    else
      ::unsetenv(name);
  }
  const char *name;
  std::optional<std::string> previous;
};

std::string imageText(const CompiledProgram &program) {
  return std::string(program.image.begin(), program.image.end());
}

bool startsWithElfMagic(const std::vector<char> &image) {
  return image.size() >= 4 && std::memcmp(image.data(),
                                          "\x7f"
                                          "ELF",
                                          4) == 0;
}

//===----------------------------------------------------------------------===//
// Options and hashing (no NVRTC needed)
//===----------------------------------------------------------------------===//

TEST(NvrtcOptionsTest, DefaultsAreSm80Cxx17WithoutFastMath) {
  StatusOr<std::vector<std::string>> flags = nvrtcOptions(CompileOptions());
  ASSERT_TRUE(flags.ok()) << flags.status().message();
  EXPECT_EQ(*flags, (std::vector<std::string>{"--gpu-architecture=sm_80",
                                              "-std=c++17"}));
}

// PTX targets the virtual architecture; extra flags come last, in order.
TEST(NvrtcOptionsTest, PtxUsesComputeArchAndAppendsExtraFlags) {
  CompileOptions options;
  options.arch = "sm_90a";
  options.cubin = false;
  options.extraFlags = {"--use_fast_math", "-lineinfo"};
  StatusOr<std::vector<std::string>> flags = nvrtcOptions(options);
  ASSERT_TRUE(flags.ok()) << flags.status().message();
  EXPECT_EQ(*flags, (std::vector<std::string>{"--gpu-architecture=compute_90a",
                                              "-std=c++17", "--use_fast_math",
                                              "-lineinfo"}));
}

TEST(NvrtcOptionsTest, RejectsInvalidArchitectures) {
  for (const char *arch :
       {"sm_xx", "sm_8", "sm_080", "sm_1000", "sm_90b", "gfx90a", "", "80"}) {
    CompileOptions options;
    options.arch = arch;
    StatusOr<std::vector<std::string>> flags = nvrtcOptions(options);
    ASSERT_FALSE(flags.ok()) << arch;
    EXPECT_EQ(flags.status().message().rfind(
                  "invalid architecture '" + std::string(arch) +
                      "': expected sm_NN or compute_NN",
                  0),
              0u)
        << flags.status().message();
  }
}

TEST(NvrtcOptionsTest, CubinNeedsRealArchitecture) {
  CompileOptions options;
  options.arch = "compute_90";
  StatusOr<std::vector<std::string>> flags = nvrtcOptions(options);
  ASSERT_FALSE(flags.ok());
  EXPECT_EQ(flags.status().message(),
            "a CUBIN needs a real architecture such as sm_90, not the virtual "
            "'compute_90'; set cubin = false for PTX");
}

// The error names the program; validation happens before NVRTC is loaded.
TEST(NvrtcOptionsTest, CompileWithBadArchIsClearError) {
  CompileOptions options;
  options.arch = "sm_xx";
  StatusOr<CompiledProgram> program =
      compileCuda("scale.cu", scaleKernel(), options);
  ASSERT_FALSE(program.ok());
  EXPECT_EQ(program.status().message().rfind(
                "compileCuda(scale.cu): invalid architecture 'sm_xx'", 0),
            0u)
      << program.status().message();
}

// FIPS 180-4 test vectors, including padding into a second block and
// a message of many blocks.
TEST(NvrtcHashTest, Sha256MatchesKnownVectors) {
  EXPECT_EQ(sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(
      sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(NvrtcCacheDirTest, FollowsEnvironment) {
  ScopedEnv kiln("KILN_CACHE_DIR", "/tmp/kiln-cache");
  ScopedEnv xdg("XDG_CACHE_HOME", "/xdg");
  ScopedEnv home("HOME", "/home/u");
  EXPECT_EQ(defaultCacheDir(), "/tmp/kiln-cache");
  {
    ScopedEnv noKiln("KILN_CACHE_DIR", std::nullopt);
    EXPECT_EQ(defaultCacheDir(), "/xdg/kiln");
    ScopedEnv noXdg("XDG_CACHE_HOME", "");
    EXPECT_EQ(defaultCacheDir(), "/home/u/.cache/kiln");
  }
}

//===----------------------------------------------------------------------===//
// Loading NVRTC
//===----------------------------------------------------------------------===//

TEST(NvrtcLoadTest, CandidatesHonourOverride) {
  {
    ScopedEnv fake("KILN_NVRTC_LIBRARY", "/opt/fake/libnvrtc.so");
    EXPECT_EQ(nvrtcLibraryCandidates(),
              (std::vector<std::string>{"/opt/fake/libnvrtc.so"}));
  }
  ScopedEnv none("KILN_NVRTC_LIBRARY", std::nullopt);
  ScopedEnv noCudaHome("CUDA_HOME", std::nullopt);
  std::vector<std::string> candidates = nvrtcLibraryCandidates();
  ASSERT_FALSE(candidates.empty());
  EXPECT_EQ(candidates.front(), "libnvrtc.so.13");
  EXPECT_NE(std::find(candidates.begin(), candidates.end(),
                      "/usr/local/cuda/lib64/libnvrtc.so.12"),
            candidates.end());
}

TEST(NvrtcLoadTest, MissingLibraryIsCleanError) {
  StatusOr<int> version = probeNvrtcLibrary("/nonexistent/libnvrtc-fake.so");
  ASSERT_FALSE(version.ok());
  EXPECT_NE(version.status().message().find(
                "cannot load NVRTC: /nonexistent/libnvrtc-fake.so"),
            std::string::npos)
      << version.status().message();
}

// A library that loads but is not NVRTC is refused by name.
TEST(NvrtcLoadTest, LibraryWithoutNvrtcSymbolsIsRefused) {
  StatusOr<int> version = probeNvrtcLibrary("libz.so.1");
  ASSERT_FALSE(version.ok());
  EXPECT_NE(version.status().message().find(
                "not an NVRTC library: it lacks nvrtcVersion"),
            std::string::npos)
      << version.status().message();
}

// The process-wide NVRTC is loaded once, so $KILN_NVRTC_LIBRARY is tested in
// a fresh process: the "threadsafe" death-test style re-executes this test
// binary for the child, whatever this process has loaded already.
TEST(NvrtcLoadTest, EnvOverrideToMissingFileFailsCleanly) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::setenv("KILN_NVRTC_LIBRARY", "/nonexistent/libnvrtc-fake.so", 1);
        StatusOr<CompiledProgram> program =
            compileCuda("scale.cu", scaleKernel(), CompileOptions());
        std::fprintf(stderr, "%s\n",
                     program.ok() ? "compiled"
                                  : program.status().message().c_str());
        std::exit(!program.ok() && !nvrtcAvailable() ? 0 : 1);
      },
      ::testing::ExitedWithCode(0),
      "compileCuda\\(scale\\.cu\\): NVRTC is not available .*tried:\n"
      "  /nonexistent/libnvrtc-fake\\.so: cannot open");
}

TEST(NvrtcLoadTest, VersionIsAtLeast11) {
  SKIP_WITHOUT_NVRTC();
  StatusOr<int> version = nvrtcVersion();
  ASSERT_TRUE(version.ok()) << version.status().message();
  EXPECT_GE(*version / 1000, 11) << *version;
}

//===----------------------------------------------------------------------===//
// Compiling
//===----------------------------------------------------------------------===//

TEST(NvrtcCompileTest, CubinForSm80AndSm90) {
  SKIP_WITHOUT_NVRTC();
  std::vector<std::vector<char>> images;
  for (const char *arch : {"sm_80", "sm_90"}) {
    CompileOptions options;
    options.arch = arch;
    StatusOr<CompiledProgram> program =
        compileCuda("scale.cu", scaleKernel(), options);
    ASSERT_TRUE(program.ok()) << program.status().message();
    EXPECT_EQ(program->name, "scale.cu");
    EXPECT_TRUE(program->isCubin);
    EXPECT_FALSE(program->fromCache);
    EXPECT_TRUE(startsWithElfMagic(program->image)) << arch;
    EXPECT_NE(imageText(*program).find("scale"), std::string::npos);
    images.push_back(program->image);
  }
  EXPECT_NE(images[0], images[1]);
}

// The runtime's own kernels (the byte-table gather the CUDA backend runs
// before a step whose inputs are gathered) compile with every program.
TEST(NvrtcCompileTest, RuntimeKernelsCompile) {
  SKIP_WITHOUT_NVRTC();
  for (const char *arch : {"sm_80", "sm_90"}) {
    CompileOptions options;
    options.arch = arch;
    StatusOr<CompiledProgram> program =
        compileCuda("kiln_runtime.cu", kCudaRuntimeKernels, options);
    ASSERT_TRUE(program.ok()) << program.status().message();
    EXPECT_NE(imageText(*program).find("kiln_gather_bytes"), std::string::npos)
        << arch;
  }
}

TEST(NvrtcCompileTest, PtxHasEntryAndEndsWithNul) {
  SKIP_WITHOUT_NVRTC();
  CompileOptions options;
  options.cubin = false;
  StatusOr<CompiledProgram> program =
      compileCuda("scale.cu", scaleKernel(), options);
  ASSERT_TRUE(program.ok()) << program.status().message();
  EXPECT_FALSE(program->isCubin);
  ASSERT_FALSE(program->image.empty());
  EXPECT_EQ(program->image.back(), '\0');
  std::string ptx(program->image.data());
  EXPECT_NE(ptx.find(".entry scale("), std::string::npos) << ptx;
  EXPECT_NE(ptx.find(".target sm_80"), std::string::npos) << ptx;
}

// A compile error shows NVRTC's diagnostic and the numbered source, with the
// offending line marked.
TEST(NvrtcCompileTest, SyntaxErrorShowsLogAndNumberedSource) {
  SKIP_WITHOUT_NVRTC();
  std::string source = "extern \"C\" __global__ void broken(float *out) {\n"
                       "  int i = threadIdx.x;\n"
                       "  out[i] = undefined_value * 2.0f;\n"
                       "}\n";
  StatusOr<CompiledProgram> program =
      compileCuda("broken.cu", source, CompileOptions());
  ASSERT_FALSE(program.ok());
  const std::string &message = program.status().message();
  EXPECT_EQ(message.rfind("compileCuda(broken.cu): nvrtcCompileProgram(", 0),
            0u)
      << message;
  EXPECT_NE(message.find("NVRTC_ERROR_COMPILATION"), std::string::npos)
      << message;
  EXPECT_NE(message.find("at Nvrtc.cpp:"), std::string::npos) << message;
  EXPECT_NE(message.find("broken.cu(3): error: identifier \"undefined_value\" "
                         "is undefined"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("source of broken.cu:\n"
                         " 1 | extern \"C\" __global__ void broken(float *out) "
                         "{\n"
                         " 2 |   int i = threadIdx.x;\n"
                         ">3 |   out[i] = undefined_value * 2.0f;\n"
                         " 4 | }\n"),
            std::string::npos)
      << message;
}

// An option NVRTC rejects is reported with NVRTC's error and the source.
TEST(NvrtcCompileTest, UnknownFlagIsReported) {
  SKIP_WITHOUT_NVRTC();
  CompileOptions options;
  options.extraFlags = {"--no-such-flag"};
  StatusOr<CompiledProgram> program =
      compileCuda("scale.cu", scaleKernel(), options);
  ASSERT_FALSE(program.ok());
  EXPECT_NE(program.status().message().find("NVRTC_ERROR_INVALID_OPTION"),
            std::string::npos)
      << program.status().message();
  EXPECT_NE(program.status().message().find("source of scale.cu:"),
            std::string::npos);
}

TEST(NvrtcCompileTest, ParallelResultsKeepProgramOrder) {
  SKIP_WITHOUT_NVRTC();
  std::vector<std::pair<std::string, std::string>> programs;
  for (int i = 0; i < 4; ++i) {
    std::string kernel = "scale_" + std::to_string(i);
    programs.emplace_back(kernel + ".cu", scaleKernel(kernel));
  }
  programs[2].second = "this is not CUDA\n";
  CompileOptions options;
  options.cubin = false;
  std::vector<StatusOr<CompiledProgram>> results =
      compileCudaParallel(programs, options, /*threads=*/4);
  ASSERT_EQ(results.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    std::string kernel = "scale_" + std::to_string(i);
    if (i == 2) {
      ASSERT_FALSE(results[i].ok());
      EXPECT_EQ(
          results[i].status().message().rfind("compileCuda(scale_2.cu)", 0),
          0u);
      continue;
    }
    ASSERT_TRUE(results[i].ok()) << results[i].status().message();
    EXPECT_EQ(results[i]->name, kernel + ".cu");
    EXPECT_NE(std::string(results[i]->image.data()).find(".entry " + kernel),
              std::string::npos);
  }
  EXPECT_TRUE(compileCudaParallel({}, options, /*threads=*/0).empty());
}

//===----------------------------------------------------------------------===//
// The on-disk cache
//===----------------------------------------------------------------------===//

class NvrtcCacheTest : public ::testing::Test {
protected:
  void SetUp() override {
    SKIP_WITHOUT_NVRTC();
    // The directory does not exist yet; compileCuda creates it.
    options.cacheDir = temp.path("cache/nested");
  }

  StatusOr<CompiledProgram> compile(const std::string &source) {
    return compileCuda("scale.cu", source, options);
  }

  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    std::error_code error;
    for (const auto &entry :
         std::filesystem::directory_iterator(options.cacheDir, error))
      names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  /// The path of the one cache entry whose name ends with `suffix`.
  std::string entryPath(const std::string &suffix) const {
    std::string found;
    for (const std::string &name : entries())
      if (name.ends_with(suffix)) {
        EXPECT_TRUE(found.empty()) << "two entries end with " << suffix;
        found = options.cacheDir + "/" + name;
      }
    return found;
  }

  TempDir temp;
  CompileOptions options;
};

TEST_F(NvrtcCacheTest, SecondCompileComesFromCache) {
  StatusOr<CompiledProgram> first = compile(scaleKernel());
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_FALSE(first->fromCache);
  std::vector<std::string> files = entries();
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].size(), 64u + std::strlen(".cubin")) << files[0];
  EXPECT_TRUE(files[0].ends_with(".cubin"));

  StatusOr<CompiledProgram> second = compile(scaleKernel());
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_TRUE(second->fromCache);
  EXPECT_EQ(second->image, first->image);
  EXPECT_TRUE(second->isCubin);
  EXPECT_EQ(entries(), files);
  RecordProperty("cold_compile_ms", int(first->compileSeconds * 1000));
  RecordProperty("cached_compile_us", int(second->compileSeconds * 1e6));
}

// Any change to the source, the options or the image kind is a new entry.
TEST_F(NvrtcCacheTest, DifferentSourceOrOptionsMiss) {
  ASSERT_TRUE(compile(scaleKernel()).ok());
  StatusOr<CompiledProgram> otherSource = compile(scaleKernel() + "\n");
  ASSERT_TRUE(otherSource.ok()) << otherSource.status().message();
  EXPECT_FALSE(otherSource->fromCache);

  options.extraFlags = {"-lineinfo"};
  StatusOr<CompiledProgram> otherFlags = compile(scaleKernel());
  ASSERT_TRUE(otherFlags.ok()) << otherFlags.status().message();
  EXPECT_FALSE(otherFlags->fromCache);

  options.extraFlags.clear();
  options.arch = "sm_90";
  StatusOr<CompiledProgram> otherArch = compile(scaleKernel());
  ASSERT_TRUE(otherArch.ok()) << otherArch.status().message();
  EXPECT_FALSE(otherArch->fromCache);

  options.cubin = false;
  StatusOr<CompiledProgram> ptx = compile(scaleKernel());
  ASSERT_TRUE(ptx.ok()) << ptx.status().message();
  EXPECT_FALSE(ptx->fromCache);
  StatusOr<CompiledProgram> ptxAgain = compile(scaleKernel());
  ASSERT_TRUE(ptxAgain.ok()) << ptxAgain.status().message();
  EXPECT_TRUE(ptxAgain->fromCache);
  EXPECT_EQ(ptxAgain->image, ptx->image);
  EXPECT_EQ(entries().size(), 5u);
}

// Empty, garbage and truncated entries are recompiled and replaced, for
// CUBIN and PTX alike.
TEST_F(NvrtcCacheTest, CorruptEntryIsRecompiled) {
  for (bool cubin : {true, false}) {
    options.cubin = cubin;
    StatusOr<CompiledProgram> first = compile(scaleKernel());
    ASSERT_TRUE(first.ok()) << first.status().message();
    std::string path = entryPath(cubin ? ".cubin" : ".ptx");
    ASSERT_FALSE(path.empty());
    std::vector<uint8_t> good = readFile(path);

    std::vector<uint8_t> truncated(good.begin(),
                                   good.begin() + good.size() / 2);
    for (const std::vector<uint8_t> &corrupt :
         {std::vector<uint8_t>{}, std::vector<uint8_t>{'x', 'y', 'z'},
          truncated}) {
      writeFile(path, corrupt);
      StatusOr<CompiledProgram> again = compile(scaleKernel());
      ASSERT_TRUE(again.ok()) << again.status().message();
      EXPECT_FALSE(again->fromCache) << corrupt.size() << " bytes";
      EXPECT_EQ(again->image, first->image);
      EXPECT_EQ(readFile(path), good);
    }
  }
}

TEST_F(NvrtcCacheTest, UncreatableDirectoryIsError) {
  writeFile(temp.path("file"), {1});
  options.cacheDir = temp.path("file/cache");
  StatusOr<CompiledProgram> program = compile(scaleKernel());
  ASSERT_FALSE(program.ok());
  EXPECT_EQ(program.status().message().rfind(
                "compileCuda(scale.cu): cannot create the cache directory " +
                    options.cacheDir + ": ",
                0),
            0u)
      << program.status().message();
}

} // namespace
