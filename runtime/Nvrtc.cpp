//===- Nvrtc.cpp - compile CUDA C to PTX or CUBIN with NVRTC --------------===//
//
// compileCuda in steps:
//   1. Build NVRTC's options from CompileOptions, validating the target.
//   2. With a cache directory, hash everything that determines the output
//      and return the cache entry if it is a well-formed image.
//   3. Otherwise create an NVRTC program, compile it, fetch the log and the
//      image, destroy the program; a failure carries the log and the
//      numbered source.
//   4. Store the image in the cache, atomically.
//
// NVRTC is opened with dlopen and its entry points are declared here, so no
// CUDA header or library is needed to build. Every NVRTC call goes through
// NVRTC_CHECK, which turns a failure into a Status naming the call, NVRTC's
// error name and the file:line of the call.
//
//===----------------------------------------------------------------------===//

#include "runtime/Nvrtc.h"

#include "runtime/AtomicFile.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <filesystem>
#include <optional>
#include <set>
#include <span>
#include <thread>

using namespace kiln::runtime;

namespace {

//===----------------------------------------------------------------------===//
// The NVRTC entry points kiln uses, as nvrtc.h declares them
//===----------------------------------------------------------------------===//

/// nvrtc.h's `nvrtcResult` enum; 0 is NVRTC_SUCCESS.
using nvrtcResult = int;
constexpr nvrtcResult kNvrtcSuccess = 0;

/// nvrtc.h's opaque `nvrtcProgram` handle.
struct NvrtcProgramState;
using nvrtcProgram = NvrtcProgramState *;

using NvrtcVersionFn = nvrtcResult (*)(int *major, int *minor);
using NvrtcGetErrorStringFn = const char *(*)(nvrtcResult result);
using NvrtcCreateProgramFn = nvrtcResult (*)(nvrtcProgram *program,
                                             const char *source,
                                             const char *name, int numHeaders,
                                             const char *const *headers,
                                             const char *const *includeNames);
using NvrtcDestroyProgramFn = nvrtcResult (*)(nvrtcProgram *program);
using NvrtcCompileProgramFn = nvrtcResult (*)(nvrtcProgram program,
                                              int numOptions,
                                              const char *const *options);
using NvrtcGetSizeFn = nvrtcResult (*)(nvrtcProgram program, size_t *size);
using NvrtcGetBytesFn = nvrtcResult (*)(nvrtcProgram program, char *bytes);

/// An opened NVRTC library. Members are named after the entry points so that
/// NVRTC_CHECK records calls as NVRTC's documentation spells them.
struct NvrtcLibrary {
  void *handle = nullptr;
  std::string path;
  int version = 0; // 1000 * major + 10 * minor

  NvrtcVersionFn nvrtcVersion = nullptr;
  NvrtcGetErrorStringFn nvrtcGetErrorString = nullptr;
  NvrtcCreateProgramFn nvrtcCreateProgram = nullptr;
  NvrtcDestroyProgramFn nvrtcDestroyProgram = nullptr;
  NvrtcCompileProgramFn nvrtcCompileProgram = nullptr;
  NvrtcGetSizeFn nvrtcGetProgramLogSize = nullptr;
  NvrtcGetBytesFn nvrtcGetProgramLog = nullptr;
  NvrtcGetSizeFn nvrtcGetPTXSize = nullptr;
  NvrtcGetBytesFn nvrtcGetPTX = nullptr;
  NvrtcGetSizeFn nvrtcGetCUBINSize = nullptr;
  NvrtcGetBytesFn nvrtcGetCUBIN = nullptr;
};

/// Success when `result` is NVRTC_SUCCESS; otherwise an error such as
/// "nvrtcCompileProgram(program, ...) failed with NVRTC_ERROR_COMPILATION
/// (6) at Nvrtc.cpp:312".
Status checkNvrtc(const NvrtcLibrary &library, nvrtcResult result,
                  const char *call, const char *file, int line) {
  if (result == kNvrtcSuccess)
    return Status::success();
  const char *errorName = library.nvrtcGetErrorString
                              ? library.nvrtcGetErrorString(result)
                              : nullptr;
  const char *slash = std::strrchr(file, '/');
  return Status::error(std::string(call) + " failed with " +
                       (errorName ? errorName : "an unknown NVRTC error") +
                       " (" + std::to_string(result) + ") at " +
                       (slash ? slash + 1 : file) + ":" + std::to_string(line));
}

/// Calls `library.call` and returns the checked result as a Status.
#define NVRTC_CHECK(library, call)                                             \
  checkNvrtc((library), (library).call, #call, __FILE__, __LINE__)

//===----------------------------------------------------------------------===//
// Loading
//===----------------------------------------------------------------------===//

template <typename Fn>
bool resolve(void *handle, const char *symbol, Fn &function) {
  function = reinterpret_cast<Fn>(::dlsym(handle, symbol));
  return function != nullptr;
}

std::string dlopenError() {
  const char *error = ::dlerror();
  return error ? error : "unknown dlopen error";
}

/// Opens `path` and resolves every entry point; the caller owns the handle.
StatusOr<NvrtcLibrary> openNvrtc(const std::string &path) {
  NvrtcLibrary library;
  library.path = path;
  library.handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library.handle) // dlerror() names the path already
    return Status::error(dlopenError());
  auto fail = [&](const std::string &message) {
    ::dlclose(library.handle);
    return Status::error(path + ": " + message);
  };

  const char *missing = nullptr;
  auto need = [&](const char *symbol, auto &function) {
    if (!missing && !resolve(library.handle, symbol, function))
      missing = symbol;
  };
  need("nvrtcVersion", library.nvrtcVersion);
  need("nvrtcGetErrorString", library.nvrtcGetErrorString);
  need("nvrtcCreateProgram", library.nvrtcCreateProgram);
  need("nvrtcDestroyProgram", library.nvrtcDestroyProgram);
  need("nvrtcCompileProgram", library.nvrtcCompileProgram);
  need("nvrtcGetProgramLogSize", library.nvrtcGetProgramLogSize);
  need("nvrtcGetProgramLog", library.nvrtcGetProgramLog);
  need("nvrtcGetPTXSize", library.nvrtcGetPTXSize);
  need("nvrtcGetPTX", library.nvrtcGetPTX);
  need("nvrtcGetCUBINSize", library.nvrtcGetCUBINSize);
  need("nvrtcGetCUBIN", library.nvrtcGetCUBIN);
  if (missing)
    return fail(std::string("not an NVRTC library: it lacks ") + missing);

  int major = 0, minor = 0;
  if (Status status = NVRTC_CHECK(library, nvrtcVersion(&major, &minor));
      !status.ok())
    return fail(status.message());
  library.version = 1000 * major + 10 * minor;
  return library;
}

/// Opens the first candidate that is a usable NVRTC, or explains each
/// failure.
StatusOr<NvrtcLibrary> openFirstNvrtc(const std::vector<std::string> &paths) {
  std::string tried;
  for (const std::string &path : paths) {
    StatusOr<NvrtcLibrary> library = openNvrtc(path);
    if (library.ok())
      return library;
    tried += "\n  " + library.status().message();
  }
  return Status::error(
      "NVRTC is not available (install the CUDA toolkit, or set "
      "KILN_NVRTC_LIBRARY to the path of libnvrtc.so); tried:" +
      tried);
}

/// The process-wide NVRTC, loaded on first use and never unloaded. A
/// function-local static, so concurrent first calls load it once.
const StatusOr<NvrtcLibrary> &processNvrtc() {
  static const StatusOr<NvrtcLibrary> library =
      openFirstNvrtc(nvrtcLibraryCandidates());
  return library;
}

std::string environment(const char *name) {
  const char *value = std::getenv(name);
  return value ? value : "";
}

//===----------------------------------------------------------------------===//
// SHA-256 (FIPS 180-4), for cache keys
//===----------------------------------------------------------------------===//

class Sha256 {
public:
  void update(std::string_view bytes) {
    for (char c : bytes) {
      block[blockSize++] = uint8_t(c);
      if (blockSize == 64) {
        compress();
        blockSize = 0;
      }
    }
    totalBytes += bytes.size();
  }

  std::string hexDigest() {
    // Padding: 0x80, zeros up to 56 mod 64, then the bit length big-endian.
    uint64_t totalBits = totalBytes * 8;
    update(std::string_view("\x80", 1));
    while (blockSize != 56)
      update(std::string_view("\0", 1));
    for (int shift = 56; shift >= 0; shift -= 8)
      update(std::string(1, char(uint8_t(totalBits >> shift))));
    static const char *digits = "0123456789abcdef";
    std::string hex;
    for (uint32_t word : state)
      for (int shift = 28; shift >= 0; shift -= 4)
        hex += digits[(word >> shift) & 0xF];
    return hex;
  }

private:
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

  void compress() {
    static constexpr uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
        0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
        0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
        0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
        0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = uint32_t(block[4 * i]) << 24 | uint32_t(block[4 * i + 1]) << 16 |
             uint32_t(block[4 * i + 2]) << 8 | uint32_t(block[4 * i + 3]);
    for (int i = 16; i < 64; ++i) {
      uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; ++i) {
      uint32_t s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      uint32_t choose = (e & f) ^ (~e & g);
      uint32_t t1 = h + s1 + choose + k[i] + w[i];
      uint32_t s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
      uint32_t t2 = s0 + majority;
      h = g, g = f, f = e, e = d + t1;
      d = c, c = b, b = a, a = t1 + t2;
    }
    state[0] += a, state[1] += b, state[2] += c, state[3] += d;
    state[4] += e, state[5] += f, state[6] += g, state[7] += h;
  }

  std::array<uint32_t, 8> state = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
                                   0xa54ff53a, 0x510e527f, 0x9b05688c,
                                   0x1f83d9ab, 0x5be0cd19};
  uint8_t block[64] = {};
  size_t blockSize = 0;
  uint64_t totalBytes = 0;
};

//===----------------------------------------------------------------------===//
// Architectures and error messages
//===----------------------------------------------------------------------===//

/// A parsed "sm_NN" or "compute_NN" (NN: two or three digits, then an
/// optional "a" or "f" suffix).
struct Arch {
  bool real;          // sm_ rather than compute_
  std::string number; // "90a" of "sm_90a"
};

std::optional<Arch> parseArch(std::string_view name) {
  Arch arch;
  if (name.starts_with("sm_")) {
    arch.real = true;
    name.remove_prefix(3);
  } else if (name.starts_with("compute_")) {
    arch.real = false;
    name.remove_prefix(8);
  } else {
    return std::nullopt;
  }
  size_t digits = 0;
  while (digits < name.size() && name[digits] >= '0' && name[digits] <= '9')
    ++digits;
  std::string_view suffix = name.substr(digits);
  if (digits < 2 || digits > 3 || name[0] == '0' ||
      !(suffix.empty() || suffix == "a" || suffix == "f"))
    return std::nullopt;
  arch.number = std::string(name);
  return arch;
}

/// The line numbers NVRTC's log reports diagnostics on, from lines such as
/// "kernel.cu(3): error: ...".
std::set<size_t> diagnosedLines(const std::string &name,
                                const std::string &log) {
  std::set<size_t> lines;
  std::string prefix = name + "(";
  for (size_t at = log.find(prefix); at != std::string::npos;
       at = log.find(prefix, at + 1)) {
    size_t cursor = at + prefix.size();
    size_t line = 0;
    bool hasDigits = false;
    while (cursor < log.size() && log[cursor] >= '0' && log[cursor] <= '9') {
      line = line * 10 + size_t(log[cursor++] - '0');
      hasDigits = true;
    }
    if (hasDigits && cursor < log.size() && log[cursor] == ')')
      lines.insert(line);
  }
  return lines;
}

/// `source` with right-aligned 1-based line numbers; lines in `marked` start
/// with '>'.
std::string numberLines(const std::string &source,
                        const std::set<size_t> &marked) {
  size_t lineCount = size_t(std::count(source.begin(), source.end(), '\n'));
  if (!source.empty() && source.back() != '\n')
    ++lineCount;
  int width = int(std::to_string(std::max<size_t>(lineCount, 1)).size());
  std::string out;
  size_t begin = 0;
  for (size_t line = 1; begin < source.size(); ++line) {
    size_t end = source.find('\n', begin);
    if (end == std::string::npos)
      end = source.size();
    std::string number = std::to_string(line);
    out += marked.count(line) ? '>' : ' ';
    out.append(size_t(width) - number.size(), ' ');
    out += number + " | ";
    out.append(source, begin, end - begin);
    out += '\n';
    begin = end + 1;
  }
  return out;
}

/// The error for a failed NVRTC step on program `name`: what failed, the
/// full log and the numbered source.
Status programError(const std::string &name, const std::string &what,
                    const std::string &log, const std::string &source) {
  std::string message = "compileCuda(" + name + "): " + what + "\n";
  message += "NVRTC log:\n";
  message += log.empty() ? "(empty)\n" : log;
  if (!log.empty() && log.back() != '\n')
    message += '\n';
  message += "source of " + name + ":\n";
  message += numberLines(source, diagnosedLines(name, log));
  return Status::error(std::move(message));
}

//===----------------------------------------------------------------------===//
// Compiling
//===----------------------------------------------------------------------===//

/// What a compile produced; `log` is kept when it fails.
struct NvrtcOutput {
  std::vector<char> image;
  std::string log;
};

/// Compiles the created `program` and fetches its log and image.
Status compileProgram(const NvrtcLibrary &library, nvrtcProgram program,
                      const std::vector<std::string> &options, bool cubin,
                      NvrtcOutput &output) {
  std::vector<const char *> optionPointers;
  for (const std::string &option : options)
    optionPointers.push_back(option.c_str());
  int numOptions = int(optionPointers.size());
  Status compiled = NVRTC_CHECK(
      library, nvrtcCompileProgram(program, numOptions, optionPointers.data()));

  // The log explains a failed compile and holds warnings otherwise.
  size_t logSize = 0;
  if (Status status =
          NVRTC_CHECK(library, nvrtcGetProgramLogSize(program, &logSize));
      !status.ok())
    return status;
  output.log.assign(logSize, '\0');
  if (logSize > 0)
    if (Status status = NVRTC_CHECK(
            library, nvrtcGetProgramLog(program, output.log.data()));
        !status.ok())
      return status;
  while (!output.log.empty() && output.log.back() == '\0')
    output.log.pop_back();
  if (!compiled.ok())
    return compiled;

  // The PTX size counts its terminating NUL, which the image keeps.
  size_t imageSize = 0;
  Status sized =
      cubin ? NVRTC_CHECK(library, nvrtcGetCUBINSize(program, &imageSize))
            : NVRTC_CHECK(library, nvrtcGetPTXSize(program, &imageSize));
  if (!sized.ok())
    return sized;
  output.image.assign(imageSize, '\0');
  if (imageSize == 0)
    return Status::error("NVRTC returned an empty image");
  return cubin
             ? NVRTC_CHECK(library, nvrtcGetCUBIN(program, output.image.data()))
             : NVRTC_CHECK(library, nvrtcGetPTX(program, output.image.data()));
}

/// Runs NVRTC on `source`; errors carry the log and the numbered source.
StatusOr<NvrtcOutput> runNvrtc(const NvrtcLibrary &library,
                               const std::string &name,
                               const std::string &source,
                               const std::vector<std::string> &options,
                               bool cubin) {
  nvrtcProgram program = nullptr;
  if (Status status = NVRTC_CHECK(
          library, nvrtcCreateProgram(&program, source.c_str(), name.c_str(),
                                      /*numHeaders=*/0, /*headers=*/nullptr,
                                      /*includeNames=*/nullptr));
      !status.ok())
    return programError(name, status.message(), "", source);
  NvrtcOutput output;
  Status compiled = compileProgram(library, program, options, cubin, output);
  Status destroyed = NVRTC_CHECK(library, nvrtcDestroyProgram(&program));
  if (!compiled.ok())
    return programError(name, compiled.message(), output.log, source);
  if (!destroyed.ok())
    return programError(name, destroyed.message(), output.log, source);
  return output;
}

//===----------------------------------------------------------------------===//
// The on-disk cache
//===----------------------------------------------------------------------===//

/// Appends `bytes` with a length prefix, so that no two different field
/// lists serialize alike.
void appendField(std::string &key, std::string_view bytes) {
  uint64_t size = bytes.size();
  for (int i = 0; i < 8; ++i)
    key += char(uint8_t(size >> (8 * i)));
  key.append(bytes);
}

std::string cacheFileName(const NvrtcLibrary &library, const std::string &name,
                          const std::string &source,
                          const std::vector<std::string> &options, bool cubin) {
  std::string key;
  appendField(key, "kiln-nvrtc-cache-v1");
  appendField(key, cubin ? "cubin" : "ptx");
  appendField(key, std::to_string(library.version));
  appendField(key, name);
  appendField(key, std::to_string(options.size()));
  for (const std::string &option : options)
    appendField(key, option);
  appendField(key, source);
  return sha256Hex(key) + (cubin ? ".cubin" : ".ptx");
}

uint64_t readLittleEndian(const std::vector<char> &bytes, size_t offset,
                          int size) {
  uint64_t value = 0;
  for (int i = size - 1; i >= 0; --i)
    value = (value << 8) | uint8_t(bytes[offset + size_t(i)]);
  return value;
}

/// True if `image` is a 64-bit little-endian ELF file whose program headers,
/// section headers and sections all lie within it: a CUBIN that was not cut
/// short.
bool isWellFormedCubin(const std::vector<char> &image) {
  constexpr size_t kHeaderSize = 64;
  if (image.size() < kHeaderSize || std::memcmp(image.data(),
                                                "\x7f"
                                                "ELF",
                                                4) != 0)
    return false;
  if (image[4] != 2 || image[5] != 1) // ELFCLASS64, ELFDATA2LSB
    return false;
  uint64_t size = image.size();
  auto tableFits = [&](uint64_t offset, uint64_t entrySize, uint64_t count) {
    return offset <= size && entrySize <= size && count <= size &&
           entrySize * count <= size - offset;
  };
  uint64_t programHeaders = readLittleEndian(image, 0x20, 8);
  uint64_t sectionHeaders = readLittleEndian(image, 0x28, 8);
  uint64_t programEntrySize = readLittleEndian(image, 0x36, 2);
  uint64_t programCount = readLittleEndian(image, 0x38, 2);
  uint64_t sectionEntrySize = readLittleEndian(image, 0x3A, 2);
  uint64_t sectionCount = readLittleEndian(image, 0x3C, 2);
  if (!tableFits(programHeaders, programEntrySize, programCount) ||
      !tableFits(sectionHeaders, sectionEntrySize, sectionCount) ||
      (sectionCount > 0 && sectionEntrySize < 64))
    return false;
  constexpr uint64_t kNoBits = 8; // SHT_NOBITS occupies no file space
  for (uint64_t i = 0; i < sectionCount; ++i) {
    size_t entry = size_t(sectionHeaders + i * sectionEntrySize);
    uint64_t type = readLittleEndian(image, entry + 4, 4);
    uint64_t offset = readLittleEndian(image, entry + 0x18, 8);
    uint64_t bytes = readLittleEndian(image, entry + 0x20, 8);
    if (type != kNoBits && !tableFits(offset, bytes, 1))
      return false;
  }
  return true;
}

/// True if `image` is PTX text as NVRTC returns it: a ".version" and a
/// ".target" directive, and one NUL byte at the end only.
bool isWellFormedPtx(const std::vector<char> &image) {
  if (image.size() < 2 || image.back() != '\0')
    return false;
  std::string_view text(image.data(), image.size() - 1);
  return text.find('\0') == std::string_view::npos &&
         text.find(".version") != std::string_view::npos &&
         text.find(".target") != std::string_view::npos;
}

/// The contents of the regular file `path`, or nullopt if it cannot be read.
std::optional<std::vector<char>> readWholeFile(const std::string &path) {
  std::FILE *file = std::fopen(path.c_str(), "rb");
  if (!file)
    return std::nullopt;
  std::vector<char> bytes;
  char buffer[1 << 16];
  size_t got;
  while ((got = std::fread(buffer, 1, sizeof(buffer), file)) > 0)
    bytes.insert(bytes.end(), buffer, buffer + got);
  bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed)
    return std::nullopt;
  return bytes;
}

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

} // namespace

//===----------------------------------------------------------------------===//
// Public API
//===----------------------------------------------------------------------===//

std::string kiln::runtime::sha256Hex(std::string_view bytes) {
  Sha256 hash;
  hash.update(bytes);
  return hash.hexDigest();
}

StatusOr<std::vector<std::string>>
kiln::runtime::nvrtcOptions(const CompileOptions &options) {
  std::optional<Arch> arch = parseArch(options.arch);
  if (!arch)
    return Status::error(
        "invalid architecture '" + options.arch +
        "': expected sm_NN or compute_NN, where NN is the compute capability "
        "without the dot (e.g. sm_80, sm_90, sm_90a, compute_90)");
  if (options.cubin && !arch->real)
    return Status::error("a CUBIN needs a real architecture such as sm_" +
                         arch->number + ", not the virtual '" + options.arch +
                         "'; set cubin = false for PTX");
  // PTX is produced for the virtual architecture of the same number.
  std::string target = options.cubin ? options.arch : "compute_" + arch->number;
  std::vector<std::string> flags = {"--gpu-architecture=" + target,
                                    "-std=c++17"};
  flags.insert(flags.end(), options.extraFlags.begin(),
               options.extraFlags.end());
  return flags;
}

StatusOr<CompiledProgram>
kiln::runtime::compileCuda(const std::string &name, const std::string &source,
                           const CompileOptions &options) {
  std::string context = "compileCuda(" + name + "): ";
  StatusOr<std::vector<std::string>> flags = nvrtcOptions(options);
  if (!flags.ok())
    return Status::error(context + flags.status().message());
  const StatusOr<NvrtcLibrary> &library = processNvrtc();
  if (!library.ok())
    return Status::error(context + library.status().message());

  CompiledProgram program;
  program.name = name;
  program.isCubin = options.cubin;

  std::string cachePath;
  if (!options.cacheDir.empty()) {
    cachePath = options.cacheDir + "/" +
                cacheFileName(*library, name, source, *flags, options.cubin);
    auto start = std::chrono::steady_clock::now();
    std::optional<std::vector<char>> cached = readWholeFile(cachePath);
    if (cached && (options.cubin ? isWellFormedCubin(*cached)
                                 : isWellFormedPtx(*cached))) {
      program.image = std::move(*cached);
      program.fromCache = true;
      program.compileSeconds = secondsSince(start);
      return program;
    }
  }

  auto start = std::chrono::steady_clock::now();
  StatusOr<NvrtcOutput> output =
      runNvrtc(*library, name, source, *flags, options.cubin);
  if (!output.ok())
    return output.status();
  program.compileSeconds = secondsSince(start);
  program.image = std::move(output->image);
  program.log = std::move(output->log);

  if (!cachePath.empty()) {
    std::error_code error;
    std::filesystem::create_directories(options.cacheDir, error);
    if (error)
      return Status::error(context + "cannot create the cache directory " +
                           options.cacheDir + ": " + error.message() +
                           " (an empty CompileOptions::cacheDir disables the "
                           "cache)");
    std::span<const uint8_t> bytes(
        reinterpret_cast<const uint8_t *>(program.image.data()),
        program.image.size());
    if (Status status = writeFileAtomically(cachePath, {bytes}); !status.ok())
      return Status::error(context + "cannot store the result in the cache: " +
                           status.message());
  }
  return program;
}

std::vector<StatusOr<CompiledProgram>> kiln::runtime::compileCudaParallel(
    const std::vector<std::pair<std::string, std::string>> &programs,
    const CompileOptions &options, unsigned threads) {
  if (threads == 0)
    threads = std::max(1u, std::thread::hardware_concurrency());
  threads = unsigned(std::min<size_t>(threads, programs.size()));

  // Workers take the next program index until none is left; each result
  // goes to its program's slot, so the order does not depend on timing.
  std::vector<std::optional<StatusOr<CompiledProgram>>> slots(programs.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < programs.size(); i = next++)
      slots[i].emplace(
          compileCuda(programs[i].first, programs[i].second, options));
  };
  std::vector<std::thread> workers;
  for (unsigned i = 1; i < threads; ++i)
    workers.emplace_back(work);
  work();
  for (std::thread &worker : workers)
    worker.join();

  std::vector<StatusOr<CompiledProgram>> results;
  results.reserve(programs.size());
  for (std::optional<StatusOr<CompiledProgram>> &slot : slots)
    results.push_back(std::move(*slot));
  return results;
}

StatusOr<int> kiln::runtime::nvrtcVersion() {
  const StatusOr<NvrtcLibrary> &library = processNvrtc();
  if (!library.ok())
    return library.status();
  return library->version;
}

bool kiln::runtime::nvrtcAvailable() { return processNvrtc().ok(); }

std::vector<std::string> kiln::runtime::nvrtcLibraryCandidates() {
  std::string override = environment("KILN_NVRTC_LIBRARY");
  if (!override.empty())
    return {override};
  const std::vector<std::string> names = {"libnvrtc.so.13", "libnvrtc.so.12",
                                          "libnvrtc.so"};
  std::vector<std::string> candidates = names;
  std::vector<std::string> directories;
  if (std::string cudaHome = environment("CUDA_HOME"); !cudaHome.empty())
    directories.push_back(cudaHome + "/lib64");
  directories.push_back("/usr/local/cuda/lib64");
  for (const std::string &directory : directories)
    for (const std::string &name : names)
      candidates.push_back(directory + "/" + name);
  return candidates;
}

StatusOr<int> kiln::runtime::probeNvrtcLibrary(const std::string &path) {
  StatusOr<NvrtcLibrary> library = openNvrtc(path);
  if (!library.ok())
    return Status::error("cannot load NVRTC: " + library.status().message());
  int version = library->version;
  ::dlclose(library->handle);
  return version;
}

std::string kiln::runtime::defaultCacheDir() {
  if (std::string dir = environment("KILN_CACHE_DIR"); !dir.empty())
    return dir;
  if (std::string dir = environment("XDG_CACHE_HOME"); !dir.empty())
    return dir + "/kiln";
  if (std::string home = environment("HOME"); !home.empty())
    return home + "/.cache/kiln";
  return "";
}
