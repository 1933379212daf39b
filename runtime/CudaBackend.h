//===- CudaBackend.h - run a program's steps on the GPU ---------*- C++ -*-===//
//
// The CUDA backend: the program's CUDA C compiled by NVRTC for the GPU it
// finds (in parallel, cached on disk), one device arena per step, the
// parameters and state resident on the device, and each step captured once
// as a CUDA graph and replayed (KILN_CUDA_GRAPHS=0 launches kernel by
// kernel instead, for debugging). Inputs are copied from pinned host
// memory on a copy stream, overlapping the step before; inputs gathered
// from byte tables (Backend::gatherInput) are decoded on that stream by
// the runtime's own kernel, the host copying only their rows' offsets.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_CUDABACKEND_H
#define KILN_RUNTIME_CUDABACKEND_H

#include "runtime/Backend.h"

namespace kiln::runtime {

struct CudaBackendOptions {
  /// The device's ordinal.
  int device = 0;
  /// Where NVRTC results are cached (Nvrtc.h's defaultCacheDir()); empty:
  /// no cache.
  std::string cacheDir;
  /// Capture each step as a CUDA graph; false launches kernel by kernel.
  bool graphs = true;
  /// Time every kernel launch with events (Backend::kernelTimes); launches
  /// kernel by kernel and waits for each step, so steps are slower.
  bool profile = false;
};

/// The CUDA C of the runtime's own kernels, compiled with every program's:
/// kiln_gather_bytes(table, offsets, decode, out, rows, width,
/// elementBytes) writes the rows x width elements of a gathered input
/// (Backend::gatherInput, ByteTable.h).
extern const char *const kCudaRuntimeKernels;

/// The CUDA backend of `program`, its kernels `source` (`kiln compile
/// --emit=cuda`). Fails cleanly (a Status starting "no CUDA driver" or "no
/// CUDA device") on machines without a GPU.
StatusOr<std::unique_ptr<Backend>>
createCudaBackend(const Program &program, const std::string &source,
                  const CudaBackendOptions &options);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_CUDABACKEND_H
