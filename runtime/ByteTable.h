//===- ByteTable.h - bytes decoded into a step's inputs ---------*- C++ -*-===//
//
// A dataset kept where a backend computes, as bytes, and how its bytes turn
// into the elements of a step's input: a 256-entry table (byte b becomes
// entry b). Fashion-MNIST's pixels decode into normalised floats, its labels
// into integer class ids. A batch is then a list of rows, each `width`
// bytes from an offset into the table (an image: 784 bytes from 784 x its
// index; a label: 1 byte), so feeding a step costs the host its offsets
// alone (Backend::gatherInput): the CUDA backend keeps the table on the GPU
// and gathers there; the CPU backend and BatchIterator gather with
// gatherRows below.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_BYTETABLE_H
#define KILN_RUNTIME_BYTETABLE_H

#include "runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::runtime {

/// Entries in a ByteTable's decode table: one per byte value.
inline constexpr size_t kByteValues = 256;

struct ByteTable {
  std::vector<uint8_t> bytes;
  /// kByteValues elements of elementBytes bytes each.
  std::vector<uint8_t> decode;
  size_t elementBytes = 0;

  /// A table of `count` bytes (copied) decoding into `decode`'s elements
  /// (kByteValues x elementBytes bytes), or an error when they do not fit.
  static StatusOr<ByteTable> create(const uint8_t *bytes, size_t count,
                                    const void *decode, size_t decodeBytes);
};

/// The element size of a decode table of `decodeBytes` bytes (256
/// elements), or an error when that is not a whole number of bytes.
StatusOr<size_t> decodeElementBytes(size_t decodeBytes);

/// Whether rows of `width` bytes from `offsets[0..rows)` lie inside a
/// table of `tableBytes` bytes: an error naming the first that does not.
Status checkRows(size_t tableBytes, const int64_t *offsets, size_t rows,
                 size_t width);

/// Writes rows x width elements of elementBytes bytes to `out`: element
/// (r, c) is decode's entry for byte bytes[offsets[r] + c]. The rows must
/// have passed checkRows.
void gatherRows(const uint8_t *bytes, const void *decode, size_t elementBytes,
                const int64_t *offsets, size_t rows, size_t width, void *out);

/// The byte tables of a backend that gathers on the host (the CPU backend,
/// the reference executor's): Backend::addByteTable and gatherInput.
class HostByteTables {
public:
  /// Adds a table (ByteTable::create); returns its handle.
  StatusOr<int> add(const uint8_t *bytes, size_t count, const void *decode,
                    size_t decodeBytes);
  /// The table of `handle`, or null.
  const ByteTable *find(int handle) const;
  /// Writes rows x width decoded elements of table `handle` from `offsets`
  /// into `out`, which `outBytes` must fit exactly; errors for an unknown
  /// handle, a size that is not the input's (`what` names it) and rows
  /// outside the table.
  Status gather(int handle, const int64_t *offsets, size_t rows, size_t width,
                void *out, size_t outBytes, const std::string &what) const;
  /// Bytes held (tables and decode tables).
  size_t bytes() const { return held; }

private:
  std::vector<ByteTable> tables;
  size_t held = 0;
};

} // namespace kiln::runtime

#endif // KILN_RUNTIME_BYTETABLE_H
