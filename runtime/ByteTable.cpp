//===- ByteTable.cpp - bytes decoded into a step's inputs -----------------===//

#include "runtime/ByteTable.h"

#include <cstring>
#include <string>

using namespace kiln::runtime;

StatusOr<size_t> kiln::runtime::decodeElementBytes(size_t decodeBytes) {
  if (decodeBytes == 0 || decodeBytes % kByteValues != 0)
    return Status::error("a byte table's decode table needs 256 elements, "
                         "not " +
                         std::to_string(decodeBytes) + " bytes");
  return decodeBytes / kByteValues;
}

StatusOr<ByteTable> ByteTable::create(const uint8_t *bytes, size_t count,
                                      const void *decode, size_t decodeBytes) {
  auto elementBytes = decodeElementBytes(decodeBytes);
  if (!elementBytes.ok())
    return elementBytes.status();
  ByteTable table;
  table.bytes.assign(bytes, bytes + count);
  const auto *d = static_cast<const uint8_t *>(decode);
  table.decode.assign(d, d + decodeBytes);
  table.elementBytes = *elementBytes;
  return table;
}

Status kiln::runtime::checkRows(size_t tableBytes, const int64_t *offsets,
                                size_t rows, size_t width) {
  for (size_t r = 0; r < rows; ++r)
    if (offsets[r] < 0 || static_cast<size_t>(offsets[r]) > tableBytes ||
        width > tableBytes - static_cast<size_t>(offsets[r]))
      return Status::error("row " + std::to_string(r) + " (" +
                           std::to_string(width) + " bytes from offset " +
                           std::to_string(offsets[r]) +
                           ") is outside the byte table of " +
                           std::to_string(tableBytes) + " bytes");
  return Status::success();
}

namespace {
template <typename T>
void gatherElements(const uint8_t *bytes, const T *decode,
                    const int64_t *offsets, size_t rows, size_t width, T *out) {
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t *row = bytes + offsets[r];
    T *to = out + r * width;
    for (size_t c = 0; c < width; ++c)
      to[c] = decode[row[c]];
  }
}
} // namespace

void kiln::runtime::gatherRows(const uint8_t *bytes, const void *decode,
                               size_t elementBytes, const int64_t *offsets,
                               size_t rows, size_t width, void *out) {
  switch (elementBytes) {
  case 4:
    return gatherElements(bytes, static_cast<const uint32_t *>(decode), offsets,
                          rows, width, static_cast<uint32_t *>(out));
  case 8:
    return gatherElements(bytes, static_cast<const uint64_t *>(decode), offsets,
                          rows, width, static_cast<uint64_t *>(out));
  case 2:
    return gatherElements(bytes, static_cast<const uint16_t *>(decode), offsets,
                          rows, width, static_cast<uint16_t *>(out));
  default:
    auto *to = static_cast<uint8_t *>(out);
    const auto *from = static_cast<const uint8_t *>(decode);
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < width; ++c, to += elementBytes)
        std::memcpy(to, from + bytes[offsets[r] + c] * elementBytes,
                    elementBytes);
  }
}

StatusOr<int> HostByteTables::add(const uint8_t *bytes, size_t count,
                                  const void *decode, size_t decodeBytes) {
  auto table = ByteTable::create(bytes, count, decode, decodeBytes);
  if (!table.ok())
    return table.status();
  held += table->bytes.size() + table->decode.size();
  tables.push_back(std::move(*table));
  return static_cast<int>(tables.size() - 1);
}

const ByteTable *HostByteTables::find(int handle) const {
  return handle < 0 || static_cast<size_t>(handle) >= tables.size()
             ? nullptr
             : &tables[static_cast<size_t>(handle)];
}

Status HostByteTables::gather(int handle, const int64_t *offsets, size_t rows,
                              size_t width, void *out, size_t outBytes,
                              const std::string &what) const {
  const ByteTable *t = find(handle);
  if (!t)
    return Status::error("no byte table " + std::to_string(handle));
  size_t size = rows * width * t->elementBytes;
  if (!out || size != outBytes)
    return Status::error(what + " of " + std::to_string(size) + " bytes");
  if (Status s = checkRows(t->bytes.size(), offsets, rows, width); !s.ok())
    return s;
  gatherRows(t->bytes.data(), t->decode.data(), t->elementBytes, offsets, rows,
             width, out);
  return Status::success();
}
