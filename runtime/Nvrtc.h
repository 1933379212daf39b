//===- Nvrtc.h - compile CUDA C to PTX or CUBIN with NVRTC ------*- C++ -*-===//
//
// The one place where kiln turns CUDA C into GPU code. NVRTC compiles
// without a GPU, so every generated kernel can be checked on a build
// machine. NVRTC is loaded with dlopen at run time, never linked, so the
// runtime builds and runs without the CUDA toolkit; without NVRTC every
// compile returns a clear error.
//
// A compile error carries the program name, NVRTC's full log and the source
// with line numbers. Results can be cached on disk, keyed by a SHA-256 of
// everything that determines the output, and independent programs can be
// compiled on several threads.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_NVRTC_H
#define KILN_RUNTIME_NVRTC_H

#include "runtime/Status.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::runtime {

/// How to compile a CUDA C program.
struct CompileOptions {
  /// The target: a real architecture "sm_NN" (optionally with an "a" or
  /// "f" suffix, e.g. "sm_90a") or a virtual one "compute_NN". A CUBIN needs
  /// a real architecture; for PTX, "sm_NN" is compiled as "compute_NN".
  std::string arch = "sm_80";
  /// True for a CUBIN (machine code for `arch`), false for PTX (which the
  /// driver JIT-compiles for the GPU at hand).
  bool cubin = true;
  /// Appended after kiln's own options ("--gpu-architecture=...",
  /// "-std=c++17"). Fast-math is off unless given here ("--use_fast_math"):
  /// numerics first.
  std::vector<std::string> extraFlags;
  /// Directory of the on-disk cache; empty disables it. See defaultCacheDir.
  std::string cacheDir;
};

/// A compiled program.
struct CompiledProgram {
  /// The name given to compileCuda; NVRTC uses it as the file name in its
  /// diagnostics.
  std::string name;
  /// The CUBIN (an ELF file), or the PTX text followed by one NUL byte, as
  /// cuModuleLoadData wants it.
  std::vector<char> image;
  bool isCubin = true;
  /// True when `image` came from the on-disk cache without compiling.
  bool fromCache = false;
  /// Wall time of the NVRTC compile, or of reading the cache entry.
  double compileSeconds = 0;
  /// NVRTC's log (warnings, usually empty); empty for a cache hit.
  std::string log;
};

/// Compiles the CUDA C program `source` called `name` (e.g.
/// "fused_add_relu.cu") for `options.arch`. On failure the error says
/// "compileCuda(<name>): " and why: an invalid architecture, NVRTC missing,
/// or a failed NVRTC call with its name, error code, kiln's file:line, the
/// full NVRTC log and the source with numbered lines (lines NVRTC reports
/// errors on are marked with '>').
///
/// With `options.cacheDir` set, the result is looked up in and stored to
/// `<cacheDir>/<sha256>.cubin` (or `.ptx`), where the hash covers the name,
/// the source, every option passed to NVRTC, NVRTC's version and the image
/// kind. The directory is created if missing. Entries are written
/// atomically; one that is empty or not a well-formed image is ignored and
/// replaced. Failing to create the directory or write an entry is an error.
StatusOr<CompiledProgram> compileCuda(const std::string &name,
                                      const std::string &source,
                                      const CompileOptions &options);

/// Compiles independent (name, source) programs with compileCuda on up to
/// `threads` threads (0: one per hardware thread); result i belongs to
/// program i.
std::vector<StatusOr<CompiledProgram>> compileCudaParallel(
    const std::vector<std::pair<std::string, std::string>> &programs,
    const CompileOptions &options, unsigned threads);

/// The options compileCuda passes to NVRTC for `options`, in order, or an
/// error for an invalid architecture.
StatusOr<std::vector<std::string>> nvrtcOptions(const CompileOptions &options);

/// The version of the process-wide NVRTC, as 1000 * major + 10 * minor
/// (13000 for 13.0, like CUDA_VERSION), or why NVRTC cannot be loaded.
StatusOr<int> nvrtcVersion();

/// True when the process-wide NVRTC is loaded.
bool nvrtcAvailable();

/// Where the process-wide NVRTC is looked for, in order: only
/// $KILN_NVRTC_LIBRARY when it is set and not empty; otherwise
/// libnvrtc.so.13, libnvrtc.so.12 and libnvrtc.so on the loader path, then
/// in $CUDA_HOME/lib64 when CUDA_HOME is set, then in /usr/local/cuda/lib64.
/// Reads the environment on each call.
std::vector<std::string> nvrtcLibraryCandidates();

/// Loads NVRTC from exactly `path`, resolves every entry point kiln uses,
/// returns its version (as nvrtcVersion does) and unloads it again.
///
/// The process-wide NVRTC is loaded once, on first use, from
/// nvrtcLibraryCandidates(), and that result (a library or an error) holds
/// for the rest of the process: changing $KILN_NVRTC_LIBRARY afterwards has
/// no effect. probeNvrtcLibrary checks a given library independently of
/// that, which is what tests and diagnostics need.
StatusOr<int> probeNvrtcLibrary(const std::string &path);

/// The default cache directory: $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln,
/// else $HOME/.cache/kiln; empty when none of these variables is set.
std::string defaultCacheDir();

/// The SHA-256 of `bytes` as 64 lowercase hex digits; the cache key hash.
std::string sha256Hex(std::string_view bytes);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_NVRTC_H
