//===- Safetensors.cpp - checkpoints in the safetensors format ------------===//
//
// The header is JSON; a small strict parser below reads exactly what the
// format needs (objects, strings, non-negative integer arrays) and reports
// the byte offset of the first problem. Validation then follows the
// reference implementation: offsets must tile the data buffer exactly, in
// some order, with no overlap, gap or trailing bytes.
//
//===----------------------------------------------------------------------===//

#include "runtime/Safetensors.h"

#include "runtime/AtomicFile.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

using namespace kiln::runtime;

namespace {

// The reference implementation refuses larger headers, to bound memory.
constexpr uint64_t kMaxHeaderSize = 100'000'000;
constexpr const char *kMetadataKey = "__metadata__";

//===----------------------------------------------------------------------===//
// Helpers shared by reading and writing
//===----------------------------------------------------------------------===//

/// True if `text` is well-formed UTF-8 (no overlong forms, surrogates or
/// code points above U+10FFFF), as JSON and the reference reader require.
bool isValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    uint8_t c = uint8_t(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int extra;
    uint32_t codePoint, minimum;
    if ((c & 0xE0) == 0xC0) {
      extra = 1, codePoint = c & 0x1F, minimum = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, codePoint = c & 0x0F, minimum = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, codePoint = c & 0x07, minimum = 0x10000;
    } else {
      return false;
    }
    if (text.size() - i <= size_t(extra))
      return false;
    for (int k = 1; k <= extra; ++k) {
      uint8_t next = uint8_t(text[i + k]);
      if ((next & 0xC0) != 0x80)
        return false;
      codePoint = (codePoint << 6) | (next & 0x3F);
    }
    if (codePoint < minimum || codePoint > 0x10FFFF ||
        (codePoint >= 0xD800 && codePoint <= 0xDFFF))
      return false;
    i += size_t(extra) + 1;
  }
  return true;
}

/// product(shape) * dtypeSize(dtype), or nullopt on a negative dimension or
/// overflow.
std::optional<int64_t> byteSize(DType dtype,
                                const std::vector<int64_t> &shape) {
  int64_t size = dtypeSize(dtype);
  for (int64_t dim : shape)
    if (dim < 0 || __builtin_mul_overflow(size, dim, &size))
      return std::nullopt;
  return size;
}

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

void appendJsonString(std::string &out, std::string_view text) {
  out += '"';
  for (char c : text) {
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (uint8_t(c) < 0x20) {
        char escape[8];
        std::snprintf(escape, sizeof(escape), "\\u%04x", unsigned(c));
        out += escape;
      } else {
        out += c;
      }
    }
  }
  out += '"';
}

/// The 8-byte length followed by the space-padded JSON header, after
/// checking that `checkpoint` is writable.
StatusOr<std::string> buildHeader(const Checkpoint &checkpoint) {
  std::string json = "{";
  if (!checkpoint.metadata.empty()) {
    appendJsonString(json, kMetadataKey);
    json += ":{";
    bool first = true;
    for (const auto &[key, value] : checkpoint.metadata) {
      if (!isValidUtf8(key) || !isValidUtf8(value))
        return Status::error("metadata entry '" + key + "' is not valid UTF-8");
      if (!first)
        json += ',';
      first = false;
      appendJsonString(json, key);
      json += ':';
      appendJsonString(json, value);
    }
    json += '}';
  }

  std::set<std::string_view> names;
  int64_t offset = 0;
  for (const TensorData &tensor : checkpoint.tensors) {
    if (tensor.name.empty() || tensor.name == kMetadataKey ||
        !isValidUtf8(tensor.name))
      return Status::error("invalid tensor name '" + tensor.name +
                           "': names must be non-empty UTF-8 other than " +
                           kMetadataKey);
    if (!names.insert(tensor.name).second)
      return Status::error("duplicate tensor name '" + tensor.name + "'");
    std::optional<int64_t> size = byteSize(tensor.dtype, tensor.shape);
    if (!size)
      return Status::error("tensor '" + tensor.name + "': invalid shape " +
                           formatShape(tensor.shape));
    if (*size != int64_t(tensor.bytes.size()))
      return Status::error(
          "tensor '" + tensor.name + "': shape " + formatShape(tensor.shape) +
          " of " + dtypeName(tensor.dtype) + " needs " + std::to_string(*size) +
          " bytes but it has " + std::to_string(tensor.bytes.size()));

    if (json.size() > 1)
      json += ',';
    appendJsonString(json, tensor.name);
    json += ":{\"dtype\":\"";
    json += dtypeName(tensor.dtype);
    json += "\",\"shape\":[";
    for (size_t i = 0; i < tensor.shape.size(); ++i) {
      if (i)
        json += ',';
      json += std::to_string(tensor.shape[i]);
    }
    json += "],\"data_offsets\":[" + std::to_string(offset) + "," +
            std::to_string(offset + *size) + "]}";
    offset += *size;
  }
  json += '}';
  // Pad so that the data buffer starts 8-byte aligned, as the reference
  // writer does.
  json.append((8 - json.size() % 8) % 8, ' ');

  std::string header(8, '\0');
  uint64_t length = json.size();
  for (int i = 0; i < 8; ++i)
    header[i] = char(uint8_t(length >> (8 * i)));
  return header + json;
}

//===----------------------------------------------------------------------===//
// Reading: the JSON header
//===----------------------------------------------------------------------===//

/// A tensor's header entry before its bytes are read.
struct HeaderEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  int64_t begin = 0;
  int64_t end = 0;
};

/// Parses the JSON header: one object mapping tensor names to
/// {"dtype", "shape", "data_offsets"}, plus an optional "__metadata__" object
/// of strings. Syntax errors give the byte offset in the header.
class HeaderParser {
public:
  explicit HeaderParser(std::string_view text) : text(text) {}

  Status parse(std::vector<HeaderEntry> &entries,
               std::map<std::string, std::string> &metadata) {
    std::set<std::string> seen;
    Status status = parseObject([&](const std::string &key, size_t keyPos) {
      if (!seen.insert(key).second)
        return errorAt(keyPos, "duplicate key '" + key + "'");
      if (key == kMetadataKey)
        return parseMetadata(metadata);
      entries.emplace_back();
      entries.back().name = key;
      return parseTensor(entries.back());
    });
    if (!status.ok())
      return status;
    skipWhitespace();
    if (pos != text.size())
      return errorAt(pos, "trailing characters after the header object");
    return Status::success();
  }

private:
  Status errorAt(size_t at, const std::string &message) const {
    return Status::error("invalid JSON header at byte " + std::to_string(at) +
                         ": " + message);
  }

  /// Describes the character at `pos` for an error message.
  std::string found() const {
    if (pos >= text.size())
      return "end of header";
    uint8_t c = uint8_t(text[pos]);
    if (c >= 0x20 && c < 0x7F)
      return std::string("'") + char(c) + "'";
    char hex[8];
    std::snprintf(hex, sizeof(hex), "0x%02x", unsigned(c));
    return std::string("byte ") + hex;
  }

  void skipWhitespace() {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t' ||
                                 text[pos] == '\n' || text[pos] == '\r'))
      ++pos;
  }

  Status expect(char c) {
    skipWhitespace();
    if (pos < text.size() && text[pos] == c) {
      ++pos;
      return Status::success();
    }
    return errorAt(pos, std::string("expected '") + c + "', found " + found());
  }

  /// Parses `{ "key": value, ... }`, letting `parseMember(key, keyPos)` parse
  /// each value.
  template <typename ParseMember> Status parseObject(ParseMember parseMember) {
    if (Status status = expect('{'); !status.ok())
      return status;
    skipWhitespace();
    if (pos < text.size() && text[pos] == '}') {
      ++pos;
      return Status::success();
    }
    while (true) {
      skipWhitespace();
      size_t keyPos = pos;
      std::string key;
      if (Status status = parseString(key); !status.ok())
        return status;
      if (Status status = expect(':'); !status.ok())
        return status;
      if (Status status = parseMember(key, keyPos); !status.ok())
        return status;
      skipWhitespace();
      if (pos < text.size() && text[pos] == ',') {
        ++pos;
        continue;
      }
      if (pos < text.size() && text[pos] == '}') {
        ++pos;
        return Status::success();
      }
      return errorAt(pos, "expected ',' or '}', found " + found());
    }
  }

  /// Parses four hex digits of a \u escape.
  Status parseHex4(uint32_t &value) {
    value = 0;
    for (int i = 0; i < 4; ++i, ++pos) {
      char c = pos < text.size() ? text[pos] : '\0';
      uint32_t digit;
      if (c >= '0' && c <= '9')
        digit = uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f')
        digit = uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        digit = uint32_t(c - 'A' + 10);
      else
        return errorAt(pos,
                       "expected a hex digit in \\u escape, found " + found());
      value = value * 16 + digit;
    }
    return Status::success();
  }

  static void appendUtf8(std::string &out, uint32_t codePoint) {
    if (codePoint < 0x80) {
      out += char(codePoint);
    } else if (codePoint < 0x800) {
      out += char(0xC0 | (codePoint >> 6));
      out += char(0x80 | (codePoint & 0x3F));
    } else if (codePoint < 0x10000) {
      out += char(0xE0 | (codePoint >> 12));
      out += char(0x80 | ((codePoint >> 6) & 0x3F));
      out += char(0x80 | (codePoint & 0x3F));
    } else {
      out += char(0xF0 | (codePoint >> 18));
      out += char(0x80 | ((codePoint >> 12) & 0x3F));
      out += char(0x80 | ((codePoint >> 6) & 0x3F));
      out += char(0x80 | (codePoint & 0x3F));
    }
  }

  Status parseString(std::string &out) {
    skipWhitespace();
    if (pos >= text.size() || text[pos] != '"')
      return errorAt(pos, "expected a string, found " + found());
    size_t start = pos++;
    out.clear();
    while (true) {
      if (pos >= text.size())
        return errorAt(start, "unterminated string");
      char c = text[pos];
      if (c == '"') {
        ++pos;
        return Status::success();
      }
      if (uint8_t(c) < 0x20)
        return errorAt(pos, "control character in string");
      if (c != '\\') {
        out += c;
        ++pos;
        continue;
      }
      size_t escapePos = pos++;
      char kind = pos < text.size() ? text[pos] : '\0';
      ++pos;
      switch (kind) {
      case '"':
      case '\\':
      case '/':
        out += kind;
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        uint32_t unit;
        if (Status status = parseHex4(unit); !status.ok())
          return status;
        if (unit >= 0xDC00 && unit <= 0xDFFF)
          return errorAt(escapePos, "unpaired low surrogate in \\u escape");
        if (unit >= 0xD800 && unit <= 0xDBFF) {
          if (text.substr(pos, 2) != "\\u")
            return errorAt(escapePos, "unpaired high surrogate in \\u escape");
          pos += 2;
          uint32_t low;
          if (Status status = parseHex4(low); !status.ok())
            return status;
          if (low < 0xDC00 || low > 0xDFFF)
            return errorAt(escapePos, "unpaired high surrogate in \\u escape");
          unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
        }
        appendUtf8(out, unit);
        break;
      }
      default:
        return errorAt(escapePos, "invalid escape in string");
      }
    }
  }

  /// Parses a JSON number that must be a non-negative integer.
  Status parseInteger(int64_t &value) {
    skipWhitespace();
    size_t start = pos;
    if (pos >= text.size() || text[pos] < '0' || text[pos] > '9')
      return errorAt(pos, "expected a non-negative integer, found " + found());
    if (text[pos] == '0' && pos + 1 < text.size() && text[pos + 1] >= '0' &&
        text[pos + 1] <= '9')
      return errorAt(pos, "leading zero in integer");
    value = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      int64_t digit = text[pos] - '0';
      if (__builtin_mul_overflow(value, 10, &value) ||
          __builtin_add_overflow(value, digit, &value))
        return errorAt(start, "integer too large");
      ++pos;
    }
    if (pos < text.size() &&
        (text[pos] == '.' || text[pos] == 'e' || text[pos] == 'E'))
      return errorAt(start, "expected an integer, found a fraction");
    return Status::success();
  }

  Status parseIntegerArray(std::vector<int64_t> &values) {
    values.clear();
    if (Status status = expect('['); !status.ok())
      return status;
    skipWhitespace();
    if (pos < text.size() && text[pos] == ']') {
      ++pos;
      return Status::success();
    }
    while (true) {
      int64_t value = 0;
      if (Status status = parseInteger(value); !status.ok())
        return status;
      values.push_back(value);
      skipWhitespace();
      if (pos < text.size() && text[pos] == ',') {
        ++pos;
        continue;
      }
      if (pos < text.size() && text[pos] == ']') {
        ++pos;
        return Status::success();
      }
      return errorAt(pos, "expected ',' or ']', found " + found());
    }
  }

  Status parseMetadata(std::map<std::string, std::string> &metadata) {
    return parseObject([&](const std::string &key, size_t keyPos) {
      if (metadata.count(key))
        return errorAt(keyPos, "duplicate key '" + key + "' in __metadata__");
      skipWhitespace();
      if (pos >= text.size() || text[pos] != '"')
        return errorAt(pos,
                       "__metadata__ values must be strings, found " + found());
      return parseString(metadata[key]);
    });
  }

  Status parseTensor(HeaderEntry &entry) {
    size_t objectPos = pos;
    bool hasDType = false, hasShape = false, hasOffsets = false;
    Status result = parseObject([&](const std::string &key, size_t keyPos) {
      std::string context = "tensor '" + entry.name + "': ";
      bool *seen = key == "dtype"          ? &hasDType
                   : key == "shape"        ? &hasShape
                   : key == "data_offsets" ? &hasOffsets
                                           : nullptr;
      if (!seen)
        return errorAt(keyPos, context + "unexpected key '" + key + "'");
      if (*seen)
        return errorAt(keyPos, context + "duplicate key '" + key + "'");
      *seen = true;
      if (key == "shape")
        return parseIntegerArray(entry.shape);
      if (key == "data_offsets") {
        std::vector<int64_t> offsets;
        skipWhitespace();
        size_t offsetsPos = pos;
        if (Status status = parseIntegerArray(offsets); !status.ok())
          return status;
        if (offsets.size() != 2)
          return errorAt(offsetsPos,
                         context + "data_offsets must be [begin, end]");
        entry.begin = offsets[0];
        entry.end = offsets[1];
        return Status::success();
      }
      skipWhitespace();
      size_t dtypePos = pos;
      std::string dtype;
      if (Status status = parseString(dtype); !status.ok())
        return status;
      std::optional<DType> parsed = parseDType(dtype);
      if (!parsed)
        return errorAt(dtypePos, context + "unknown dtype '" + dtype +
                                     "' (kiln reads F32, F64, I32, I64)");
      entry.dtype = *parsed;
      return Status::success();
    });
    if (!result.ok())
      return result;
    if (!hasDType || !hasShape || !hasOffsets)
      return errorAt(objectPos, "tensor '" + entry.name + "': missing \"" +
                                    (!hasDType   ? "dtype"
                                     : !hasShape ? "shape"
                                                 : "data_offsets") +
                                    "\"");
    return Status::success();
  }

  std::string_view text;
  size_t pos = 0;
};

/// Checks that the entries' sizes match their shapes and that their offsets
/// tile [0, dataSize) exactly; sorts them by offset.
Status validateLayout(std::vector<HeaderEntry> &entries, int64_t dataSize) {
  for (const HeaderEntry &entry : entries) {
    std::string range = "data_offsets [" + std::to_string(entry.begin) + ", " +
                        std::to_string(entry.end) + "]";
    if (entry.begin > entry.end)
      return Status::error("tensor '" + entry.name + "': " + range +
                           ": end is before begin");
    if (entry.end > dataSize)
      return Status::error("tensor '" + entry.name + "': " + range +
                           " are out of range: the data buffer has " +
                           std::to_string(dataSize) + " bytes");
    std::optional<int64_t> size = byteSize(entry.dtype, entry.shape);
    if (!size || *size != entry.end - entry.begin)
      return Status::error(
          "tensor '" + entry.name + "': shape " + formatShape(entry.shape) +
          " of " + dtypeName(entry.dtype) + " needs " +
          (size ? std::to_string(*size) : std::string("too many")) +
          " bytes but " + range + " hold " +
          std::to_string(entry.end - entry.begin));
  }

  std::stable_sort(entries.begin(), entries.end(),
                   [](const HeaderEntry &a, const HeaderEntry &b) {
                     return a.begin != b.begin ? a.begin < b.begin
                                               : a.end < b.end;
                   });
  int64_t covered = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const HeaderEntry &entry = entries[i];
    if (entry.begin < covered)
      return Status::error("tensor '" + entry.name + "' (data_offsets [" +
                           std::to_string(entry.begin) + ", " +
                           std::to_string(entry.end) + "]) overlaps tensor '" +
                           entries[i - 1].name + "'");
    if (entry.begin > covered)
      return Status::error("gap of " + std::to_string(entry.begin - covered) +
                           " bytes in the data buffer before tensor '" +
                           entry.name + "'");
    covered = entry.end;
  }
  if (covered != dataSize)
    return Status::error(std::to_string(dataSize - covered) +
                         " bytes of trailing garbage after the last tensor");
  return Status::success();
}

/// Reads exactly `size` bytes at `offset`.
bool readAt(int fd, void *data, size_t size, off_t offset) {
  uint8_t *bytes = static_cast<uint8_t *>(data);
  while (size > 0) {
    ssize_t got = ::pread(fd, bytes, size, offset);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return false;
    bytes += got;
    size -= size_t(got);
    offset += got;
  }
  return true;
}

/// Closes a file descriptor when it goes out of scope.
struct FileCloser {
  int fd;
  ~FileCloser() {
    if (fd >= 0)
      ::close(fd);
  }
};

} // namespace

//===----------------------------------------------------------------------===//
// Public API
//===----------------------------------------------------------------------===//

int64_t kiln::runtime::dtypeSize(DType dtype) {
  switch (dtype) {
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::F64:
  case DType::I64:
    return 8;
  case DType::U8:
    return 1;
  }
  return 0;
}

const char *kiln::runtime::dtypeName(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "F32";
  case DType::F64:
    return "F64";
  case DType::I32:
    return "I32";
  case DType::I64:
    return "I64";
  case DType::U8:
    return "U8";
  }
  return "?";
}

std::optional<DType> kiln::runtime::parseDType(std::string_view name) {
  for (DType dtype :
       {DType::F32, DType::F64, DType::I32, DType::I64, DType::U8})
    if (name == dtypeName(dtype))
      return dtype;
  return std::nullopt;
}

StatusOr<std::vector<uint8_t>>
kiln::runtime::serializeSafetensors(const Checkpoint &checkpoint) {
  StatusOr<std::string> header = buildHeader(checkpoint);
  if (!header.ok())
    return header.status();
  std::vector<uint8_t> bytes(header->begin(), header->end());
  for (const TensorData &tensor : checkpoint.tensors)
    bytes.insert(bytes.end(), tensor.bytes.begin(), tensor.bytes.end());
  return bytes;
}

Status kiln::runtime::writeSafetensors(const std::string &path,
                                       const Checkpoint &checkpoint) {
  StatusOr<std::string> header = buildHeader(checkpoint);
  if (!header.ok())
    return Status::error(path + ": " + header.status().message());

  std::vector<std::span<const uint8_t>> pieces;
  pieces.reserve(checkpoint.tensors.size() + 1);
  pieces.emplace_back(reinterpret_cast<const uint8_t *>(header->data()),
                      header->size());
  for (const TensorData &tensor : checkpoint.tensors)
    pieces.emplace_back(tensor.bytes);
  return writeFileAtomically(path, pieces);
}

StatusOr<Checkpoint> kiln::runtime::readSafetensors(const std::string &path) {
  auto fail = [&](const std::string &message) {
    return Status::error(path + ": " + message);
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(std::string("cannot open: ") + std::strerror(errno));
  FileCloser closeFile{fd};
  struct stat info;
  if (::fstat(fd, &info) != 0)
    return fail(std::string("cannot stat: ") + std::strerror(errno));
  if (!S_ISREG(info.st_mode))
    return fail("not a regular file");
  uint64_t fileSize = uint64_t(info.st_size);

  if (fileSize < 8)
    return fail("file is " + std::to_string(fileSize) +
                " bytes, too short for the 8-byte header length");
  uint8_t lengthBytes[8];
  if (!readAt(fd, lengthBytes, 8, 0))
    return fail(std::string("cannot read: ") + std::strerror(errno));
  uint64_t headerSize = 0;
  for (int i = 7; i >= 0; --i)
    headerSize = (headerSize << 8) | lengthBytes[i];
  if (headerSize > kMaxHeaderSize)
    return fail("header length " + std::to_string(headerSize) +
                " exceeds the limit of " + std::to_string(kMaxHeaderSize) +
                " bytes");
  if (headerSize > fileSize - 8)
    return fail("header length " + std::to_string(headerSize) +
                " runs past the end of the " + std::to_string(fileSize) +
                "-byte file");

  std::string header(headerSize, '\0');
  if (!readAt(fd, header.data(), headerSize, 8))
    return fail(std::string("cannot read: ") + std::strerror(errno));
  if (!isValidUtf8(header))
    return fail("header is not valid UTF-8");
  std::vector<HeaderEntry> entries;
  Checkpoint checkpoint;
  if (Status status = HeaderParser(header).parse(entries, checkpoint.metadata);
      !status.ok())
    return fail(status.message());
  int64_t dataStart = int64_t(8 + headerSize);
  if (Status status = validateLayout(entries, int64_t(fileSize) - dataStart);
      !status.ok())
    return fail(status.message());

  checkpoint.tensors.reserve(entries.size());
  for (HeaderEntry &entry : entries) {
    TensorData &tensor = checkpoint.tensors.emplace_back();
    tensor.name = std::move(entry.name);
    tensor.dtype = entry.dtype;
    tensor.shape = std::move(entry.shape);
    tensor.bytes.resize(size_t(entry.end - entry.begin));
    if (!readAt(fd, tensor.bytes.data(), tensor.bytes.size(),
                off_t(dataStart + entry.begin)))
      return fail("cannot read tensor '" + tensor.name +
                  "': " + std::strerror(errno));
  }
  return checkpoint;
}

double kiln::runtime::elementAsDouble(const void *data, DType dtype,
                                      size_t index) {
  auto p = static_cast<const uint8_t *>(data) + index * dtypeSize(dtype);
  switch (dtype) {
  case DType::F32: {
    float v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  case DType::F64: {
    double v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  case DType::I32: {
    int32_t v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  case DType::I64: {
    int64_t v;
    std::memcpy(&v, p, sizeof(v));
    return static_cast<double>(v);
  }
  case DType::U8:
    return *p;
  default:
    break;
  }
  return 0;
}

void kiln::runtime::storeElement(void *data, DType dtype, size_t index,
                                 double value) {
  auto p = static_cast<uint8_t *>(data) + index * dtypeSize(dtype);
  auto put = [&](auto v) { std::memcpy(p, &v, sizeof(v)); };
  switch (dtype) {
  case DType::F32:
    put(static_cast<float>(value));
    break;
  case DType::F64:
    put(value);
    break;
  case DType::I32:
    put(static_cast<int32_t>(value));
    break;
  case DType::I64:
    put(static_cast<int64_t>(value));
    break;
  case DType::U8:
    put(static_cast<uint8_t>(value));
    break;
  }
}
