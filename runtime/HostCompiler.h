//===- HostCompiler.h - C++ kernels into a shared object --------*- C++ -*-===//
//
// The CPU backend's counterpart of Nvrtc.h: the generated C++ of a model's
// kernels is compiled by the host C++ compiler into a shared object, cached
// on disk under the SHA-256 of everything that determines it (source,
// compiler, flags), and loaded with dlopen.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_HOSTCOMPILER_H
#define KILN_RUNTIME_HOSTCOMPILER_H

#include "runtime/Status.h"

#include <string>
#include <vector>

namespace kiln::runtime {

struct HostCompileOptions {
  /// The compiler: $KILN_CXX when set, else "c++" on the PATH.
  std::string compiler;
  /// Flags before kiln's own "-shared -fPIC". -O3 vectorizes the kernels'
  /// element loops (GCC's -O2 leaves loops of unknown trip count scalar);
  /// -ffp-contract=off keeps the arithmetic the source spells (no fused
  /// multiply-adds), so results do not depend on the machine the cache
  /// entry was built on.
  std::vector<std::string> flags = {"-O3", "-ffp-contract=off", "-w"};
  /// The instruction set to compile for (see isaFlags): empty means
  /// $KILN_CPU_ISA when set, else hostIsa().
  std::string isa;
  /// Where shared objects are kept (see defaultCacheDir in Nvrtc.h); when
  /// empty, a fresh temporary directory is used and nothing is reused.
  std::string cacheDir;
};

/// A loaded shared object. Moving keeps it loaded; destruction unloads it.
class SharedLibrary {
public:
  SharedLibrary() = default;
  SharedLibrary(SharedLibrary &&other) noexcept;
  SharedLibrary &operator=(SharedLibrary &&other) noexcept;
  ~SharedLibrary();

  /// The address of `symbol`, or null.
  void *symbol(const std::string &name) const;
  /// The file it was loaded from.
  const std::string &path() const { return file; }
  /// Whether it came from the cache (no compiler ran).
  bool fromCache = false;
  /// Seconds spent compiling (0 for a cache hit).
  double compileSeconds = 0;
  /// The instruction set it was compiled for.
  std::string isa;

private:
  friend StatusOr<SharedLibrary> compileHostLibrary(const std::string &,
                                                    const std::string &,
                                                    const HostCompileOptions &);
  void *handle = nullptr;
  std::string file;
};

/// The instruction sets C++ kernels are compiled for: "portable" (the
/// compiler's default target: SSE2 on x86-64, NEON on AArch64) and, on
/// x86-64, the levels "x86-64-v2" (SSE4.2), "x86-64-v3" (AVX2, FMA) and
/// "x86-64-v4" (AVX-512). The best one this CPU runs.
std::string hostIsa();

/// The compiler flags of `isa` (-march=LEVEL, none for "portable"); an
/// error naming the choices for another name, or for a level this CPU
/// cannot run.
StatusOr<std::vector<std::string>> isaFlags(const std::string &isa);

/// The instruction set `options` asks for: its `isa`, else $KILN_CPU_ISA,
/// else hostIsa().
std::string requestedIsa(const HostCompileOptions &options);

/// The compiler `options` name, as its `--version` says (its first line),
/// e.g. "c++ (Debian 12.2.0-14) 12.2.0"; its name alone when that fails.
std::string hostCompilerIdentity(const HostCompileOptions &options);

/// Compiles the C++ `source` called `name` into a shared object and loads
/// it. A failing compile reports the compiler's command, its output and the
/// source with numbered lines.
StatusOr<SharedLibrary> compileHostLibrary(const std::string &name,
                                           const std::string &source,
                                           const HostCompileOptions &options);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_HOSTCOMPILER_H
