//===- Mpi.cpp - ranks and collectives through Open MPI, loaded at run time
//===//
//
// Open MPI's library is opened with dlopen, and the few entry points kiln
// calls are declared here with Open MPI's types: a handle (communicator,
// datatype, operation, request) is a pointer, and the predefined ones
// (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM) are the addresses of the library's
// global objects (`ompi_mpi_comm_world`, ...), which dlsym gives. This is
// Open MPI's binary interface as its mpi.h defines it, unchanged from
// version 3 to 5 (soname libmpi.so.40).
//
// Collectives are non-blocking calls (MPI_Iallreduce) completed by polling
// MPI_Test until a deadline, so a rank that died or hangs costs the others
// at most the timeout, never a silent wait.
//
//===----------------------------------------------------------------------===//

#include "runtime/Communicator.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <thread>

using namespace kiln::runtime;

namespace {

// Open MPI's handle types: pointers to its objects.
using MpiComm = void *;
using MpiDatatype = void *;
using MpiOp = void *;
using MpiRequest = void *;

constexpr int kMpiSuccess = 0;
constexpr int kMpiThreadSerialized = 2;
void *const kMpiInPlace = reinterpret_cast<void *>(1);
void *const kMpiStatusIgnore = nullptr;
constexpr int kMaxErrorString = 256;
constexpr int kMaxLibraryVersion = 256;

/// The entry points and predefined handles of the loaded library.
struct MpiLibrary {
  void *handle = nullptr;
  int (*initialized)(int *) = nullptr;
  int (*initThread)(int *, char ***, int, int *) = nullptr;
  int (*finalize)() = nullptr;
  int (*commRank)(MpiComm, int *) = nullptr;
  int (*commSize)(MpiComm, int *) = nullptr;
  int (*iallreduce)(const void *, void *, int, MpiDatatype, MpiOp, MpiComm,
                    MpiRequest *) = nullptr;
  int (*test)(MpiRequest *, int *, void *) = nullptr;
  int (*abort)(MpiComm, int) = nullptr;
  int (*errorString)(int, char *, int *) = nullptr;
  int (*libraryVersion)(char *, int *) = nullptr;
  MpiComm world = nullptr;
  MpiDatatype floatType = nullptr, doubleType = nullptr;
  MpiOp sum = nullptr;
};

std::string dlopenError() {
  const char *error = ::dlerror();
  return error ? error : "unknown dlopen error";
}

StatusOr<MpiLibrary> loadMpi() {
  MpiLibrary mpi;
  // RTLD_GLOBAL: Open MPI's components, themselves loaded with dlopen,
  // resolve the library's symbols globally.
  const char *path = "libmpi.so.40";
  mpi.handle = ::dlopen(path, RTLD_NOW | RTLD_GLOBAL);
  if (!mpi.handle)
    return Status::error(
        "cannot load Open MPI (" + dlopenError() +
        "): install it (Debian: apt-get install openmpi-bin) to train on "
        "several ranks");
  std::string missing;
  auto load = [&](auto &out, const char *symbol) {
    void *address = ::dlsym(mpi.handle, symbol);
    if (!address && missing.empty())
      missing = symbol;
    out = reinterpret_cast<std::remove_reference_t<decltype(out)>>(address);
  };
  load(mpi.initialized, "MPI_Initialized");
  load(mpi.initThread, "MPI_Init_thread");
  load(mpi.finalize, "MPI_Finalize");
  load(mpi.commRank, "MPI_Comm_rank");
  load(mpi.commSize, "MPI_Comm_size");
  load(mpi.iallreduce, "MPI_Iallreduce");
  load(mpi.test, "MPI_Test");
  load(mpi.abort, "MPI_Abort");
  load(mpi.errorString, "MPI_Error_string");
  load(mpi.libraryVersion, "MPI_Get_library_version");
  load(mpi.world, "ompi_mpi_comm_world");
  load(mpi.floatType, "ompi_mpi_float");
  load(mpi.doubleType, "ompi_mpi_double");
  load(mpi.sum, "ompi_mpi_op_sum");
  if (!missing.empty())
    return Status::error(std::string(path) + " has no '" + missing +
                         "': not Open MPI 3 to 5");
  return mpi;
}

class MpiCommunicator final : public Communicator {
public:
  MpiCommunicator(MpiLibrary mpi, double timeoutSeconds)
      : mpi(mpi), timeoutSeconds(timeoutSeconds) {}

  ~MpiCommunicator() override {
    if (initializedHere)
      mpi.finalize();
  }

  Status initialize() {
    int ready = 0;
    mpi.initialized(&ready);
    if (!ready) {
      int provided = 0;
      if (int code =
              mpi.initThread(nullptr, nullptr, kMpiThreadSerialized, &provided);
          code != kMpiSuccess)
        return failure("MPI_Init_thread", code);
      initializedHere = true;
    }
    if (int code = mpi.commRank(mpi.world, &myRank); code != kMpiSuccess)
      return failure("MPI_Comm_rank", code);
    if (int code = mpi.commSize(mpi.world, &ranks); code != kMpiSuccess)
      return failure("MPI_Comm_size", code);
    char version[kMaxLibraryVersion] = {};
    int length = 0;
    mpi.libraryVersion(version, &length);
    library = std::string(version, std::strlen(version));
    library = library.substr(0, library.find(','));
    return Status::success();
  }

  int rank() const override { return myRank; }
  int size() const override { return ranks; }
  std::string description() const override {
    return library + ", rank " + std::to_string(myRank) + " of " +
           std::to_string(ranks);
  }

  Status allReduce(Collective kind, DType dtype, const void *const *inputs,
                   void *const *results, const int64_t *elements,
                   size_t count) override {
    if (dtype != DType::F32 && dtype != DType::F64)
      return Status::error(std::string("an all-reduce of ") + dtypeName(dtype) +
                           " (it reduces F32 and F64)");
    MpiDatatype type = dtype == DType::F32 ? mpi.floatType : mpi.doubleType;
    size_t elementBytes = dtypeSize(dtype);
    // Each tensor in pieces an MPI count (an int) can hold.
    constexpr int64_t kPiece = int64_t(1) << 30;
    requests.clear();
    for (size_t i = 0; i < count; ++i)
      for (int64_t at = 0; at < elements[i]; at += kPiece) {
        int n = static_cast<int>(std::min(kPiece, elements[i] - at));
        auto *out = static_cast<char *>(results[i]) + at * elementBytes;
        const void *in =
            inputs[i] == results[i]
                ? kMpiInPlace
                : static_cast<const char *>(inputs[i]) + at * elementBytes;
        MpiRequest &request = requests.emplace_back(nullptr);
        if (int code =
                mpi.iallreduce(in, out, n, type, mpi.sum, mpi.world, &request);
            code != kMpiSuccess)
          return failure("MPI_Iallreduce", code);
      }
    if (Status s = wait(count); !s.ok())
      return s;
    if (kind == Collective::allReduceMean)
      for (size_t i = 0; i < count; ++i) {
        if (dtype == DType::F32)
          scale(static_cast<float *>(results[i]), elements[i]);
        else
          scale(static_cast<double *>(results[i]), elements[i]);
      }
    return Status::success();
  }

  [[noreturn]] void abort(int code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    mpi.abort(mpi.world, code);
    std::_Exit(code); // (MPI_Abort does not return)
  }

private:
  /// Completes every request, or fails past the timeout.
  Status wait(size_t tensors) {
    using Clock = std::chrono::steady_clock;
    auto start = Clock::now();
    auto deadline = start + std::chrono::duration<double>(timeoutSeconds);
    for (MpiRequest &request : requests) {
      for (int done = 0;;) {
        if (int code = mpi.test(&request, &done, kMpiStatusIgnore);
            code != kMpiSuccess)
          return failure("MPI_Test", code);
        if (done)
          break;
        auto now = Clock::now();
        if (now > deadline)
          return Status::error(
              "an all-reduce of " + std::to_string(tensors) +
              " tensors did not finish within " +
              std::to_string(static_cast<long long>(timeoutSeconds)) +
              " s: another rank has died or stopped (--timeout S)");
        // Poll tightly for a millisecond, then let the core go.
        if (now - start > std::chrono::milliseconds(1))
          std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
    return Status::success();
  }

  template <typename T> void scale(T *values, int64_t n) const {
    T factor = T(1) / static_cast<T>(ranks);
    for (int64_t i = 0; i < n; ++i)
      values[i] *= factor;
  }

  Status failure(const char *call, int code) const {
    char text[kMaxErrorString] = {};
    int length = 0;
    mpi.errorString(code, text, &length);
    return Status::error(std::string(call) + " failed: " + text);
  }

  MpiLibrary mpi;
  double timeoutSeconds;
  /// Whether this communicator initialized MPI (and so finalizes it).
  bool initializedHere = false;
  int myRank = 0, ranks = 1;
  std::string library = "MPI";
  std::vector<MpiRequest> requests;
};

/// A positive integer from environment variable `name`, or 0.
int environmentCount(const char *name) {
  const char *value = std::getenv(name);
  if (!value || !*value)
    return 0;
  char *end = nullptr;
  long n = std::strtol(value, &end, 10);
  return *end == '\0' && n > 0 && n < (1 << 24) ? static_cast<int>(n) : 0;
}

} // namespace

int kiln::runtime::launchedRanks() {
  for (const char *name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
    if (int n = environmentCount(name))
      return n;
  return 0;
}

int kiln::runtime::localRanks() {
  for (const char *name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})
    if (int n = environmentCount(name))
      return n;
  return 1;
}

StatusOr<std::unique_ptr<Communicator>>
kiln::runtime::joinMpi(double timeoutSeconds) {
  auto mpi = loadMpi();
  if (!mpi.ok())
    return mpi.status();
  auto communicator = std::make_unique<MpiCommunicator>(*mpi, timeoutSeconds);
  if (Status s = communicator->initialize(); !s.ok())
    return s;
  return std::unique_ptr<Communicator>(std::move(communicator));
}
