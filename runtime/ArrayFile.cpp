//===- ArrayFile.cpp - named arrays from NumPy, safetensors and IDX files -===//

#include "runtime/ArrayFile.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

using namespace kiln::runtime;

int64_t Array::elements() const {
  int64_t n = 1;
  for (int64_t size : shape)
    n *= size;
  return n;
}

namespace {

/// More elements than any file kiln reads may hold (as the IDX reader's
/// limit): it keeps sizes far from overflowing.
constexpr int64_t kMaxElements = int64_t(1) << 40;

bool endsWith(const std::string &text, const std::string &suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// The file name without its directory and `suffix`.
std::string stem(const std::string &path, const std::string &suffix) {
  std::string name = path.substr(path.find_last_of('/') + 1);
  return endsWith(name, suffix) ? name.substr(0, name.size() - suffix.size())
                                : name;
}

StatusOr<std::vector<uint8_t>> readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error(path + ": cannot open: " + std::strerror(errno));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  if (in.bad())
    return Status::error(path + ": cannot read: " + std::strerror(errno));
  return bytes;
}

/// The whole file, gunzipped when it is gzipped.
StatusOr<std::vector<uint8_t>> readMaybeGzipped(const std::string &path) {
  errno = 0;
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file)
    return Status::error(path + ": cannot open: " +
                         (errno ? std::strerror(errno) : "out of memory"));
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  for (;;) {
    int got = gzread(file, chunk, sizeof(chunk));
    if (got < 0) {
      int errnum = Z_OK;
      std::string message = gzerror(file, &errnum);
      gzclose(file);
      return Status::error(path + ": cannot read: " + message);
    }
    if (got == 0)
      break;
    bytes.insert(bytes.end(), chunk, chunk + got);
  }
  gzclose(file);
  return bytes;
}

uint64_t little(const uint8_t *p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

/// Checks the byte count of `array` against its shape and dtype.
Status checkSize(const Array &array, uint64_t available,
                 const std::string &where) {
  for (int64_t size : array.shape)
    if (size < 0 || (size > 0 && array.elements() / size > kMaxElements))
      return Status::error(where + ": implausible shape");
  if (array.elements() > kMaxElements)
    return Status::error(where + ": implausible shape");
  uint64_t need = uint64_t(array.elements()) * dtypeSize(array.dtype);
  if (available < need)
    return Status::error(where + ": truncated data: expected " +
                         std::to_string(need) + " bytes, got " +
                         std::to_string(available));
  if (available > need)
    return Status::error(where + ": " + std::to_string(available - need) +
                         " unexpected bytes after the data");
  return Status::success();
}

//===----------------------------------------------------------------------===//
// .npy
//===----------------------------------------------------------------------===//

/// The value of `key` in a .npy header (a Python dict literal): the text
/// from after `'key':` to the next top-level comma or closing brace.
std::string headerValue(const std::string &header, const std::string &key) {
  size_t at = header.find("'" + key + "'");
  if (at == std::string::npos)
    return "";
  at = header.find(':', at);
  if (at == std::string::npos)
    return "";
  size_t end = at + 1;
  int depth = 0;
  for (; end < header.size(); ++end) {
    char c = header[end];
    if (c == '(')
      ++depth;
    else if (c == ')')
      --depth;
    else if ((c == ',' || c == '}') && depth == 0)
      break;
  }
  std::string value = header.substr(at + 1, end - at - 1);
  size_t first = value.find_first_not_of(" ");
  size_t last = value.find_last_not_of(" ");
  return first == std::string::npos ? ""
                                    : value.substr(first, last - first + 1);
}

StatusOr<Array> parseNpy(const uint8_t *data, size_t size,
                         const std::string &where, std::string name) {
  static const uint8_t kMagic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (size < 10 || std::memcmp(data, kMagic, sizeof(kMagic)) != 0)
    return Status::error(where + ": not a .npy array (no \\x93NUMPY magic)");
  int major = data[6];
  size_t lengthBytes = major == 1 ? 2 : 4;
  if (major < 1 || major > 3)
    return Status::error(where + ": .npy format version " +
                         std::to_string(major) + " (1 to 3 are read)");
  if (size < 8 + lengthBytes)
    return Status::error(where + ": truncated .npy header");
  uint64_t headerLength = little(data + 8, int(lengthBytes));
  size_t start = 8 + lengthBytes;
  if (headerLength > size - start)
    return Status::error(where + ": truncated .npy header");
  std::string header(reinterpret_cast<const char *>(data + start),
                     headerLength);
  Array array;
  array.name = std::move(name);
  std::string descr = headerValue(header, "descr");
  if (descr.size() < 2 || (descr.front() != '\'' && descr.front() != '"'))
    return Status::error(where + ": no 'descr' in the .npy header");
  descr = descr.substr(1, descr.size() - 2);
  struct Known {
    const char *descr;
    DType dtype;
  } const known[] = {{"|u1", DType::U8},  {"<u1", DType::U8},
                     {"<i4", DType::I32}, {"<i8", DType::I64},
                     {"<f4", DType::F32}, {"<f8", DType::F64}};
  bool found = false;
  for (const Known &k : known)
    if (descr == k.descr) {
      array.dtype = k.dtype;
      found = true;
    }
  if (!found)
    return Status::error(
        where + ": dtype '" + descr +
        "' (kiln reads uint8, int32, int64, float32 and float64, "
        "little-endian: convert it, e.g. with array.astype(np.float32))");
  if (headerValue(header, "fortran_order") != "False")
    return Status::error(where + ": a Fortran-order array (save it in C "
                                 "order: np.ascontiguousarray)");
  std::string shape = headerValue(header, "shape");
  if (shape.size() < 2 || shape.front() != '(' || shape.back() != ')')
    return Status::error(where + ": no 'shape' in the .npy header");
  for (size_t at = 1; at + 1 < shape.size();) {
    size_t comma = shape.find(',', at);
    std::string item = shape.substr(
        at, (comma == std::string::npos ? shape.size() - 1 : comma) - at);
    size_t first = item.find_first_not_of(' ');
    if (first != std::string::npos) {
      item = item.substr(first, item.find_last_not_of(' ') - first + 1);
      char *end = nullptr;
      long long value = std::strtoll(item.c_str(), &end, 10);
      if (item.empty() || *end != '\0' || value < 0)
        return Status::error(where + ": bad shape " + shape);
      array.shape.push_back(value);
    }
    if (comma == std::string::npos)
      break;
    at = comma + 1;
  }
  size_t offset = start + headerLength;
  if (Status s = checkSize(array, size - offset, where); !s.ok())
    return s;
  array.bytes.assign(data + offset, data + size);
  return array;
}

//===----------------------------------------------------------------------===//
// .npz
//===----------------------------------------------------------------------===//

/// The members of a zip archive, each a .npy array.
StatusOr<std::vector<Array>> parseNpz(const std::vector<uint8_t> &zip,
                                      const std::string &path) {
  auto fail = [&](const std::string &message) {
    return Status::error(path + ": " + message);
  };
  // The end of central directory record, searched from the end (a comment
  // of up to 64 KiB may follow it).
  size_t n = zip.size();
  if (n < 22)
    return fail("not a .npz file (too short for a zip archive)");
  size_t eocd = std::string::npos;
  for (size_t at = n - 22;; --at) {
    if (little(&zip[at], 4) == 0x06054b50) {
      eocd = at;
      break;
    }
    if (at == 0 || n - at > 22 + 65535)
      break;
  }
  if (eocd == std::string::npos)
    return fail("not a .npz file (no zip directory)");
  uint64_t entries = little(&zip[eocd + 10], 2);
  uint64_t directory = little(&zip[eocd + 16], 4);
  // Zip64: the counts and offsets in the record that precedes it.
  if ((entries == 0xffff || directory == 0xffffffff) && eocd >= 20 &&
      little(&zip[eocd - 20], 4) == 0x07064b50) {
    uint64_t record = little(&zip[eocd - 12], 8);
    if (record + 56 > n || little(&zip[record], 4) != 0x06064b50)
      return fail("corrupt zip64 directory");
    entries = little(&zip[record + 32], 8);
    directory = little(&zip[record + 48], 8);
  }
  std::vector<Array> arrays;
  size_t at = directory;
  for (uint64_t e = 0; e < entries; ++e) {
    if (at + 46 > n || little(&zip[at], 4) != 0x02014b50)
      return fail("corrupt zip directory");
    int method = int(little(&zip[at + 10], 2));
    uint32_t crc = uint32_t(little(&zip[at + 16], 4));
    uint64_t packed = little(&zip[at + 20], 4);
    uint64_t unpacked = little(&zip[at + 24], 4);
    size_t nameLength = little(&zip[at + 28], 2);
    size_t extraLength = little(&zip[at + 30], 2);
    size_t commentLength = little(&zip[at + 32], 2);
    uint64_t local = little(&zip[at + 42], 4);
    if (at + 46 + nameLength + extraLength > n)
      return fail("corrupt zip directory");
    std::string member(reinterpret_cast<const char *>(&zip[at + 46]),
                       nameLength);
    // Zip64 sizes and offset, in that order, for the fields that say so.
    for (size_t x = at + 46 + nameLength;
         x + 4 <= at + 46 + nameLength + extraLength;) {
      uint64_t id = little(&zip[x], 2), length = little(&zip[x + 2], 2);
      size_t field = x + 4;
      if (id == 0x0001) {
        for (uint64_t *value : {&unpacked, &packed, &local})
          if (*value == 0xffffffff && field + 8 <= x + 4 + length) {
            *value = little(&zip[field], 8);
            field += 8;
          }
      }
      x += 4 + length;
    }
    at += 46 + nameLength + extraLength + commentLength;
    std::string where = path + ": " + member;
    if (local + 30 > n || little(&zip[local], 4) != 0x04034b50)
      return Status::error(where + ": corrupt zip member");
    size_t data =
        local + 30 + little(&zip[local + 26], 2) + little(&zip[local + 28], 2);
    if (data > n || packed > n - data)
      return Status::error(where + ": truncated zip member");
    std::vector<uint8_t> bytes;
    if (method == 0) {
      bytes.assign(zip.begin() + data, zip.begin() + data + packed);
    } else if (method == 8) {
      if (unpacked > uint64_t(kMaxElements))
        return Status::error(where + ": implausible size");
      bytes.resize(unpacked);
      z_stream stream{};
      if (inflateInit2(&stream, -MAX_WBITS) != Z_OK)
        return Status::error(where + ": cannot start zlib");
      stream.next_in = const_cast<Bytef *>(&zip[data]);
      stream.next_out = bytes.data();
      // (In pieces: zlib counts in 32-bit unsigned ints.)
      uint64_t inLeft = packed, outLeft = unpacked;
      int code = Z_OK;
      while (code == Z_OK) {
        stream.avail_in = uInt(std::min<uint64_t>(inLeft, 1u << 30));
        stream.avail_out = uInt(std::min<uint64_t>(outLeft, 1u << 30));
        uInt inBefore = stream.avail_in, outBefore = stream.avail_out;
        code = inflate(&stream, Z_NO_FLUSH);
        inLeft -= inBefore - stream.avail_in;
        outLeft -= outBefore - stream.avail_out;
        if (code == Z_BUF_ERROR && (inLeft == 0 || outLeft == 0))
          break;
      }
      inflateEnd(&stream);
      if (code != Z_STREAM_END || outLeft != 0)
        return Status::error(where + ": corrupt deflated data");
    } else {
      return Status::error(where + ": zip compression method " +
                           std::to_string(method) +
                           " (stored and deflated members are read)");
    }
    if (crc32_z(0L, bytes.data(), bytes.size()) != crc)
      return Status::error(where + ": CRC mismatch (corrupt data)");
    std::string name =
        endsWith(member, ".npy") ? member.substr(0, member.size() - 4) : member;
    auto array = parseNpy(bytes.data(), bytes.size(), where, name);
    if (!array.ok())
      return array.status();
    arrays.push_back(std::move(*array));
  }
  if (arrays.empty())
    return fail("an empty .npz archive");
  return arrays;
}

//===----------------------------------------------------------------------===//
// IDX
//===----------------------------------------------------------------------===//

StatusOr<Array> parseIdx(const std::vector<uint8_t> &bytes,
                         const std::string &path) {
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0)
    return Status::error(path + ": not an IDX file (its magic number does "
                                "not start with two zero bytes), nor .npy, "
                                ".npz or .safetensors by its name");
  struct Type {
    uint8_t code;
    DType dtype;
  } const types[] = {{0x08, DType::U8},
                     {0x0C, DType::I32},
                     {0x0D, DType::F32},
                     {0x0E, DType::F64}};
  Array array;
  array.name = stem(stem(path, ".gz"), "");
  bool found = false;
  for (const Type &t : types)
    if (bytes[2] == t.code) {
      array.dtype = t.dtype;
      found = true;
    }
  if (!found) {
    char code[8];
    std::snprintf(code, sizeof(code), "0x%02x", bytes[2]);
    return Status::error(path + ": IDX element type " + code +
                         " (unsigned bytes, int32, float32 and float64 are "
                         "read)");
  }
  int rank = bytes[3];
  if (rank < 1 || bytes.size() < 4 + 4 * size_t(rank))
    return Status::error(path + ": truncated IDX header");
  for (int d = 0; d < rank; ++d) {
    const uint8_t *p = &bytes[4 + 4 * d];
    array.shape.push_back((int64_t(p[0]) << 24) | (int64_t(p[1]) << 16) |
                          (int64_t(p[2]) << 8) | int64_t(p[3]));
  }
  size_t offset = 4 + 4 * size_t(rank);
  if (Status s = checkSize(array, bytes.size() - offset, path); !s.ok())
    return s;
  array.bytes.assign(bytes.begin() + offset, bytes.end());
  // IDX is big-endian; arrays are little-endian.
  size_t width = size_t(dtypeSize(array.dtype));
  for (size_t at = 0; width > 1 && at < array.bytes.size(); at += width)
    std::reverse(array.bytes.begin() + at, array.bytes.begin() + at + width);
  return array;
}

} // namespace

StatusOr<std::vector<Array>>
kiln::runtime::readArrays(const std::string &path) {
  if (endsWith(path, ".safetensors")) {
    auto read = readSafetensors(path);
    if (!read.ok())
      return read.status();
    std::vector<Array> arrays;
    for (TensorData &t : read->tensors)
      arrays.push_back({t.name, t.dtype, t.shape, std::move(t.bytes)});
    if (arrays.empty())
      return Status::error(path + ": holds no tensors");
    return arrays;
  }
  if (endsWith(path, ".npy") || endsWith(path, ".npz")) {
    auto bytes = readFile(path);
    if (!bytes.ok())
      return bytes.status();
    if (endsWith(path, ".npz"))
      return parseNpz(*bytes, path);
    auto array =
        parseNpy(bytes->data(), bytes->size(), path, stem(path, ".npy"));
    if (!array.ok())
      return array.status();
    return std::vector<Array>{std::move(*array)};
  }
  auto bytes = readMaybeGzipped(path);
  if (!bytes.ok())
    return bytes.status();
  auto array = parseIdx(*bytes, path);
  if (!array.ok())
    return array.status();
  return std::vector<Array>{std::move(*array)};
}
