//===- AtomicFile.h - replace a file atomically -----------------*- C++ -*-===//
//
// Writes a file so that readers see either the old contents or the complete
// new ones, never a torn write: the bytes go to a temporary file in the same
// directory, which is synced and then renamed over the target. Checkpoints
// and the NVRTC cache both write through it.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_ATOMICFILE_H
#define KILN_RUNTIME_ATOMICFILE_H

#include "runtime/Status.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace kiln::runtime {

/// Writes the concatenation of `pieces` to `path` atomically: the bytes go
/// to a fresh temporary file `<path>.tmp.<pid>.<n>`, which is flushed to disk
/// and renamed over `path`; the directory is synced last. On failure the
/// temporary file is removed and an existing file at `path` is left
/// untouched. Taking several pieces lets callers write a header and large
/// buffers without concatenating them first. Error messages start with
/// "<path>: ".
Status writeFileAtomically(const std::string &path,
                           const std::vector<std::span<const uint8_t>> &pieces);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_ATOMICFILE_H
