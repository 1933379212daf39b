//===- HostCompiler.cpp - compile C++ kernels into a shared object --------===//
//
//   1. Hash the compiler, its flags (the instruction set's -march among
//      them) and the source: the cache key.
//   2. A cached `<key>.so` is loaded as is.
//   3. Otherwise write `<key>.cpp`, run the compiler into a temporary file
//      (its output captured in `<key>.log`), rename that to `<key>.so`, so a
//      crash or a concurrent compile never leaves a half-written library.
//
//===----------------------------------------------------------------------===//

#include "runtime/HostCompiler.h"
#include "runtime/AtomicFile.h"
#include "runtime/Nvrtc.h"

#include <chrono>
#include <cstdlib>
#include <dlfcn.h>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <spawn.h>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

using namespace kiln::runtime;

SharedLibrary::SharedLibrary(SharedLibrary &&other) noexcept
    : fromCache(other.fromCache), compileSeconds(other.compileSeconds),
      isa(std::move(other.isa)), handle(other.handle),
      file(std::move(other.file)) {
  other.handle = nullptr;
}

SharedLibrary &SharedLibrary::operator=(SharedLibrary &&other) noexcept {
  if (this != &other) {
    if (handle)
      ::dlclose(handle);
    handle = other.handle;
    other.handle = nullptr;
    file = std::move(other.file);
    fromCache = other.fromCache;
    compileSeconds = other.compileSeconds;
    isa = std::move(other.isa);
  }
  return *this;
}

SharedLibrary::~SharedLibrary() {
  if (handle)
    ::dlclose(handle);
}

void *SharedLibrary::symbol(const std::string &name) const {
  return handle ? ::dlsym(handle, name.c_str()) : nullptr;
}

namespace {

std::string readText(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// Runs `argv` with stdout and stderr going to `logPath`; the exit status,
/// or -1 when it could not start.
int run(const std::vector<std::string> &argv, const std::string &logPath) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, logPath.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char *> args;
  for (const std::string &a : argv)
    args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

} // namespace

namespace {

/// The compiler to run: options.compiler, else $KILN_CXX, else c++.
std::string compilerOf(const HostCompileOptions &options) {
  if (!options.compiler.empty())
    return options.compiler;
  const char *env = std::getenv("KILN_CXX");
  return env && *env ? env : "c++";
}

} // namespace

std::string
kiln::runtime::hostCompilerIdentity(const HostCompileOptions &options) {
  std::string compiler = compilerOf(options);
  char pattern[] = "/tmp/kiln-cxx-version-XXXXXX";
  int fd = ::mkstemp(pattern);
  if (fd < 0)
    return compiler;
  ::close(fd);
  int rc = run({compiler, "--version"}, pattern);
  std::string text = readText(pattern);
  std::filesystem::remove(pattern);
  std::string first = text.substr(0, text.find('\n'));
  return rc == 0 && !first.empty() ? first : compiler;
}

namespace {

/// The x86-64 levels, lowest first.
constexpr const char *kX86Levels[] = {"x86-64-v2", "x86-64-v3", "x86-64-v4"};

#if defined(__x86_64__)
/// Whether this CPU runs x86-64 level `level` (2, 3 or 4).
bool runsLevel(int level) {
  __builtin_cpu_init();
#if defined(__clang__)
  // The features of each level that decide it on real CPUs.
  bool v2 = __builtin_cpu_supports("popcnt") &&
            __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("ssse3");
  bool v3 = v2 && __builtin_cpu_supports("avx2") &&
            __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
            __builtin_cpu_supports("fma");
  bool v4 = v3 && __builtin_cpu_supports("avx512f") &&
            __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512cd") &&
            __builtin_cpu_supports("avx512dq") &&
            __builtin_cpu_supports("avx512vl");
  return level == 2 ? v2 : level == 3 ? v3 : v4;
#else
  return level == 2   ? __builtin_cpu_supports("x86-64-v2")
         : level == 3 ? __builtin_cpu_supports("x86-64-v3")
                      : __builtin_cpu_supports("x86-64-v4");
#endif
}
#endif

} // namespace

std::string kiln::runtime::hostIsa() {
#if defined(__x86_64__)
  for (int level = 4; level >= 2; --level)
    if (runsLevel(level))
      return kX86Levels[level - 2];
#endif
  return "portable";
}

StatusOr<std::vector<std::string>>
kiln::runtime::isaFlags(const std::string &isa) {
  if (isa == "portable")
    return std::vector<std::string>{};
  std::string choices = "portable";
#if defined(__x86_64__)
  for (int level = 2; level <= 4; ++level) {
    choices += std::string(", ") + kX86Levels[level - 2];
    if (isa != kX86Levels[level - 2])
      continue;
    if (!runsLevel(level))
      return Status::error("instruction set '" + isa +
                           "': this CPU runs at most " + hostIsa());
    return std::vector<std::string>{"-march=" + isa};
  }
#endif
  return Status::error("unknown instruction set '" + isa +
                       "' (choices: " + choices + ")");
}

std::string kiln::runtime::requestedIsa(const HostCompileOptions &options) {
  if (!options.isa.empty())
    return options.isa;
  const char *env = std::getenv("KILN_CPU_ISA");
  return env && *env ? env : hostIsa();
}

StatusOr<SharedLibrary>
kiln::runtime::compileHostLibrary(const std::string &name,
                                  const std::string &source,
                                  const HostCompileOptions &options) {
  std::string context = "compileHostLibrary(" + name + "): ";
  std::string compiler = compilerOf(options);
  std::string isa = requestedIsa(options);
  auto march = isaFlags(isa);
  if (!march.ok())
    return Status::error(context + march.status().message() +
                         (options.isa.empty() ? " ($KILN_CPU_ISA)" : ""));
  std::vector<std::string> argv = {compiler};
  argv.insert(argv.end(), options.flags.begin(), options.flags.end());
  argv.insert(argv.end(), march->begin(), march->end());
  argv.insert(argv.end(), {"-shared", "-fPIC"});

  std::string key = "kiln-host-cache-v1";
  for (const std::string &a : argv)
    key += '\0' + a;
  key += '\0' + source;
  std::string hash = sha256Hex(key);

  namespace fs = std::filesystem;
  std::string dir = options.cacheDir;
  bool temporary = dir.empty();
  std::error_code error;
  if (temporary) {
    char pattern[] = "/tmp/kiln-host-XXXXXX";
    if (!::mkdtemp(pattern))
      return Status::error(context + "cannot create a temporary directory");
    dir = pattern;
  } else if (fs::create_directories(dir, error); error) {
    return Status::error(context + "cannot create the cache directory " + dir +
                         ": " + error.message());
  }
  std::string base = dir + "/" + hash.substr(0, 32);
  std::string library = base + ".so";

  SharedLibrary result;
  result.file = library;
  result.isa = isa;
  auto start = std::chrono::steady_clock::now();
  if (!temporary && fs::exists(library, error)) {
    result.fromCache = true;
  } else {
    std::string cpp = base + ".cpp", log = base + ".log";
    auto bytes = reinterpret_cast<const uint8_t *>(source.data());
    if (Status s = writeFileAtomically(cpp, {{bytes, source.size()}}); !s.ok())
      return Status::error(context + s.message());
    std::string partial = base + ".so.tmp." + std::to_string(::getpid());
    std::vector<std::string> command = argv;
    command.insert(command.end(), {cpp, "-o", partial});
    int rc = run(command, log);
    if (rc != 0) {
      std::string commandText;
      for (const std::string &a : command)
        commandText += (commandText.empty() ? "" : " ") + a;
      fs::remove(partial, error);
      return Status::error(
          context +
          (rc < 0
               ? "cannot run the C++ compiler '" + compiler + "' (set KILN_CXX)"
               : "the C++ compiler failed (exit " + std::to_string(rc) + ")") +
          "\ncommand: " + commandText + "\n" + readText(log) +
          "source kept in " + cpp);
    }
    fs::rename(partial, library, error);
    if (error)
      return Status::error(context + "cannot rename " + partial + ": " +
                           error.message());
    fs::remove(cpp, error);
    fs::remove(log, error);
    result.compileSeconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
  }
  result.handle = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (temporary) {
    // The library stays mapped; its files are no longer needed.
    fs::remove_all(dir, error);
  }
  if (!result.handle)
    return Status::error(context + "cannot load " + library + ": " +
                         ::dlerror());
  return result;
}
