//===- SafetensorsTest.cpp - safetensors checkpoints ----------------------===//

#include "runtime/Safetensors.h"

#include "TempDir.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace kiln::runtime;
using kiln::runtime::testing::readFile;
using kiln::runtime::testing::TempDir;
using kiln::runtime::testing::writeFile;

namespace {

/// A tensor holding `values`, stored in host byte order (little-endian on
/// every platform kiln targets).
template <typename T>
TensorData makeTensor(std::string name, DType dtype, std::vector<int64_t> shape,
                      const std::vector<T> &values) {
  TensorData tensor{std::move(name), dtype, std::move(shape), {}};
  tensor.bytes.resize(values.size() * sizeof(T));
  if (!values.empty())
    std::memcpy(tensor.bytes.data(), values.data(), tensor.bytes.size());
  return tensor;
}

Checkpoint sampleCheckpoint() {
  Checkpoint checkpoint;
  checkpoint.tensors.push_back(makeTensor<float>(
      "layer1.weight", DType::F32, {2, 3}, {1, -2, 3.5f, 0, 1e-8f, -0.0f}));
  checkpoint.tensors.push_back(
      makeTensor<double>("layer1.bias", DType::F64, {3}, {0.1, -0.2, 1e300}));
  checkpoint.tensors.push_back(
      makeTensor<int32_t>("step", DType::I32, {}, {12345}));
  checkpoint.tensors.push_back(makeTensor<int64_t>(
      "counts", DType::I64, {2, 2}, {-1, int64_t(1) << 40, 0, 7}));
  checkpoint.tensors.push_back(
      makeTensor<float>("empty", DType::F32, {0, 4}, {}));
  return checkpoint;
}

/// A checkpoint small enough to corrupt byte by byte.
Checkpoint tinyCheckpoint() {
  Checkpoint checkpoint;
  checkpoint.tensors.push_back(
      makeTensor<float>("w", DType::F32, {2}, {1.0f, -2.0f}));
  checkpoint.tensors.push_back(
      makeTensor<int64_t>("step", DType::I64, {}, {7}));
  checkpoint.metadata = {{"k", "v"}};
  return checkpoint;
}

void expectSameCheckpoint(const Checkpoint &actual,
                          const Checkpoint &expected) {
  EXPECT_EQ(actual.metadata, expected.metadata);
  ASSERT_EQ(actual.tensors.size(), expected.tensors.size());
  for (size_t i = 0; i < actual.tensors.size(); ++i) {
    const TensorData &a = actual.tensors[i], &e = expected.tensors[i];
    SCOPED_TRACE("tensor " + e.name);
    EXPECT_EQ(a.name, e.name);
    EXPECT_EQ(a.dtype, e.dtype);
    EXPECT_EQ(a.shape, e.shape);
    EXPECT_EQ(a.bytes, e.bytes);
  }
}

/// A safetensors file with header `json` (not padded) and `dataSize` data
/// bytes.
std::vector<uint8_t> rawFile(const std::string &json, size_t dataSize) {
  std::vector<uint8_t> bytes;
  for (int i = 0; i < 8; ++i)
    bytes.push_back(uint8_t(uint64_t(json.size()) >> (8 * i)));
  bytes.insert(bytes.end(), json.begin(), json.end());
  for (size_t i = 0; i < dataSize; ++i)
    bytes.push_back(uint8_t(i));
  return bytes;
}

class SafetensorsTest : public ::testing::Test {
protected:
  /// Writes `bytes` to a file and reads it back, expecting an error that
  /// contains `expected` after the file's path.
  void expectReadError(const std::vector<uint8_t> &bytes,
                       const std::string &expected) {
    writeFile(path, bytes);
    StatusOr<Checkpoint> result = readSafetensors(path);
    ASSERT_FALSE(result.ok()) << "expected an error containing: " << expected;
    EXPECT_NE(result.status().message().find(path + ": "), std::string::npos)
        << result.status().message();
    EXPECT_NE(result.status().message().find(expected), std::string::npos)
        << "message: " << result.status().message()
        << "\nexpected to contain: " << expected;
  }

  TempDir temp;
  std::string path = temp.path("model.safetensors");
};

TEST_F(SafetensorsTest, RoundTripsAllDTypes) {
  Checkpoint checkpoint = sampleCheckpoint();
  checkpoint.metadata = {{"format", "pt"}, {"epoch", "3"}, {"note", ""}};
  ASSERT_TRUE(writeSafetensors(path, checkpoint).ok());
  StatusOr<Checkpoint> read = readSafetensors(path);
  ASSERT_TRUE(read.ok()) << read.status().message();
  expectSameCheckpoint(*read, checkpoint);
  // Data starts 8-byte aligned.
  std::vector<uint8_t> bytes = readFile(path);
  uint64_t headerSize;
  std::memcpy(&headerSize, bytes.data(), 8);
  EXPECT_EQ(headerSize % 8, 0u);
}

TEST_F(SafetensorsTest, RoundTripsWithoutMetadataOrTensors) {
  Checkpoint checkpoint = sampleCheckpoint();
  ASSERT_TRUE(writeSafetensors(path, checkpoint).ok());
  std::vector<uint8_t> bytes = readFile(path);
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()).find("__metadata__"),
            std::string::npos);
  StatusOr<Checkpoint> read = readSafetensors(path);
  ASSERT_TRUE(read.ok()) << read.status().message();
  expectSameCheckpoint(*read, checkpoint);

  ASSERT_TRUE(writeSafetensors(path, Checkpoint()).ok());
  EXPECT_EQ(readFile(path), rawFile("{}      ", 0));
  read = readSafetensors(path);
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_TRUE(read->tensors.empty());
  EXPECT_TRUE(read->metadata.empty());
}

// Names and metadata with characters JSON must escape survive the trip.
TEST_F(SafetensorsTest, RoundTripsEscapedStrings) {
  Checkpoint checkpoint;
  checkpoint.tensors.push_back(makeTensor<float>(
      "quote\"back\\slash\nnewline\x01 caf\xc3\xa9", DType::F32, {1}, {1.0f}));
  checkpoint.metadata = {{"tab\there", "ctrl\x1f \"q\" \xe2\x82\xac"}};
  ASSERT_TRUE(writeSafetensors(path, checkpoint).ok());
  std::vector<uint8_t> bytes = readFile(path);
  std::string text(bytes.begin(), bytes.end());
  EXPECT_NE(text.find(R"("quote\"back\\slash\nnewline\u0001 café")"),
            std::string::npos)
      << text;
  StatusOr<Checkpoint> read = readSafetensors(path);
  ASSERT_TRUE(read.ok()) << read.status().message();
  expectSameCheckpoint(*read, checkpoint);
}

// The exact bytes of a small file, computed by hand from the format spec.
TEST_F(SafetensorsTest, ByteExactLayout) {
  Checkpoint checkpoint;
  checkpoint.tensors.push_back(
      makeTensor<float>("w", DType::F32, {2}, {1.0f, -2.0f}));
  checkpoint.metadata = {{"k", "v"}};
  // The header is 79 characters, padded with one space to 80 (0x50).
  std::string json =
      R"({"__metadata__":{"k":"v"},)"
      R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} )";
  ASSERT_EQ(json.size(), 80u);
  std::vector<uint8_t> expected = {0x50, 0, 0, 0, 0, 0, 0, 0};
  expected.insert(expected.end(), json.begin(), json.end());
  // 1.0f = 0x3f800000 and -2.0f = 0xc0000000, little-endian.
  expected.insert(expected.end(),
                  {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0});

  StatusOr<std::vector<uint8_t>> serialized = serializeSafetensors(checkpoint);
  ASSERT_TRUE(serialized.ok()) << serialized.status().message();
  EXPECT_EQ(*serialized, expected);
  ASSERT_TRUE(writeSafetensors(path, checkpoint).ok());
  EXPECT_EQ(readFile(path), expected);
}

// Files from other writers: whitespace, escapes, metadata last, and header
// entries in another order than the data. Tensors come back in data order.
TEST_F(SafetensorsTest, ReadsForeignLayout) {
  std::string json = " {\n \"b\\u00e9\\ud83d\\ude00\" : {\"shape\": [1], "
                     "\"data_offsets\": [8, 12], \"dtype\": \"I32\"},\n"
                     " \"a\": {\"dtype\": \"F64\", \"shape\": [ ], "
                     "\"data_offsets\": [0, 8]},\n"
                     " \"__metadata__\": {\"k\\/\": \"\\t\"} }\n";
  writeFile(path, rawFile(json, 12));
  StatusOr<Checkpoint> read = readSafetensors(path);
  ASSERT_TRUE(read.ok()) << read.status().message();
  ASSERT_EQ(read->tensors.size(), 2u);
  EXPECT_EQ(read->tensors[0].name, "a");
  EXPECT_EQ(read->tensors[0].dtype, DType::F64);
  EXPECT_TRUE(read->tensors[0].shape.empty());
  EXPECT_EQ(read->tensors[0].bytes,
            (std::vector<uint8_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(read->tensors[1].name, "b\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(read->tensors[1].bytes, (std::vector<uint8_t>{8, 9, 10, 11}));
  EXPECT_EQ(read->metadata, (std::map<std::string, std::string>{{"k/", "\t"}}));
}

TEST_F(SafetensorsTest, MissingOrNotAFile) {
  expectReadError({},
                  "file is 0 bytes, too short for the 8-byte header length");
  std::string missing = temp.path("missing.safetensors");
  StatusOr<Checkpoint> result = readSafetensors(missing);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(),
            missing + ": cannot open: No such file or directory");
  result = readSafetensors(temp.dir);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(), temp.dir + ": not a regular file");
}

// Every cut of a valid file is an error that says what is missing.
TEST_F(SafetensorsTest, TruncatedFiles) {
  StatusOr<std::vector<uint8_t>> full = serializeSafetensors(tinyCheckpoint());
  ASSERT_TRUE(full.ok());
  uint64_t headerSize;
  std::memcpy(&headerSize, full->data(), 8);
  size_t dataStart = 8 + headerSize;
  for (size_t cut = 0; cut < full->size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    std::vector<uint8_t> bytes(full->begin(), full->begin() + cut);
    if (cut < 8)
      expectReadError(bytes, "file is " + std::to_string(cut) +
                                 " bytes, too short for the 8-byte header");
    else if (cut < dataStart)
      expectReadError(bytes, "header length " + std::to_string(headerSize) +
                                 " runs past the end of the " +
                                 std::to_string(cut) + "-byte file");
    else
      expectReadError(bytes, "are out of range: the data buffer has " +
                                 std::to_string(cut - dataStart) + " bytes");
  }
}

TEST_F(SafetensorsTest, HeaderLengthLimit) {
  std::vector<uint8_t> bytes = rawFile("{}", 0);
  uint64_t huge = 200'000'000;
  std::memcpy(bytes.data(), &huge, 8);
  expectReadError(bytes,
                  "header length 200000000 exceeds the limit of 100000000");
  uint64_t tooLong = 3;
  std::memcpy(bytes.data(), &tooLong, 8);
  expectReadError(bytes, "header length 3 runs past the end of the 10-byte");
}

// Replacing any header byte with a control character is caught, and the
// error points at that byte.
TEST_F(SafetensorsTest, FlippedHeaderBytes) {
  Checkpoint checkpoint = tinyCheckpoint();
  StatusOr<std::vector<uint8_t>> full = serializeSafetensors(checkpoint);
  ASSERT_TRUE(full.ok());
  uint64_t headerSize;
  std::memcpy(&headerSize, full->data(), 8);
  for (size_t i = 0; i < headerSize; ++i) {
    SCOPED_TRACE("byte " + std::to_string(i));
    std::vector<uint8_t> bytes = *full;
    bytes[8 + i] = 0x01;
    expectReadError(bytes,
                    "invalid JSON header at byte " + std::to_string(i) + ": ");
  }
  // Other corruptions of any byte must never crash the reader.
  for (size_t i = 0; i < full->size(); ++i) {
    for (uint8_t mask : {0x20, 0xFF}) {
      std::vector<uint8_t> bytes = *full;
      bytes[i] ^= mask;
      writeFile(path, bytes);
      StatusOr<Checkpoint> result = readSafetensors(path);
      if (result.ok()) {
        EXPECT_EQ(result->tensors.size(), checkpoint.tensors.size());
      }
    }
  }
}

struct BadHeader {
  const char *json;
  size_t dataSize;
  const char *expected;
};

TEST_F(SafetensorsTest, InvalidHeaders) {
  const BadHeader cases[] = {
      // Semantic errors.
      {R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", 4,
       "tensor 'a': unknown dtype 'BF16' (kiln reads F32, F64, I32, I64)"},
      {R"({"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", 4,
       "unknown dtype 'f32'"},
      {R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}})", 20,
       "tensor 'a': shape [2, 3] of F32 needs 24 bytes but data_offsets "
       "[0, 20] hold 20"},
      {R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],)"
       R"("data_offsets":[0,4]}})",
       4, "needs too many bytes"},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", 8,
       "tensor 'a': data_offsets [0, 12] are out of range: the data buffer "
       "has 8 bytes"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8,
       "tensor 'a': data_offsets [8, 4]: end is before begin"},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       12, "tensor 'b' (data_offsets [4, 12]) overlaps tensor 'a'"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
       12, "gap of 4 bytes in the data buffer before tensor 'b'"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8,
       "4 bytes of trailing garbage after the last tensor"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", 4,
       "tensor 'a': data_offsets must be [begin, end]"},
      {R"({"a":{"dtype":"F32","shape":[1]}})", 4,
       "tensor 'a': missing \"data_offsets\""},
      {R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4,
       "tensor 'a': missing \"dtype\""},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":[]}})", 4,
       "tensor 'a': unexpected key 'x'"},
      {R"({"a":{"dtype":"F32","dtype":"F32",)"
       R"("shape":[1],"data_offsets":[0,4]}})",
       4, "tensor 'a': duplicate key 'dtype'"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
       R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
       8, "invalid JSON header at byte 54: duplicate key 'a'"},
      {R"({"__metadata__":{"k":1}})", 0,
       "invalid JSON header at byte 21: __metadata__ values must be strings, "
       "found '1'"},
      {R"({"__metadata__":{"k":"a","k":"b"}})", 0,
       "duplicate key 'k' in __metadata__"},
      // Syntax errors, located.
      {"", 0,
       "invalid JSON header at byte 0: expected '{', found end of header"},
      {"[]", 0, "invalid JSON header at byte 0: expected '{', found '['"},
      {"{}x", 0,
       "invalid JSON header at byte 2: trailing characters after the header "
       "object"},
      {"{} {}", 0, "at byte 3: trailing characters"},
      {R"({"a" {}})", 0,
       "invalid JSON header at byte 5: expected ':', found '{'"},
      {R"({"a":5})", 0,
       "invalid JSON header at byte 5: expected '{', found '5'"},
      {R"({"a)", 0, "invalid JSON header at byte 1: unterminated string"},
      {R"({"a":{"dtype":"F32" "shape":[1]}})", 0,
       "invalid JSON header at byte 20: expected ',' or '}', found '\"'"},
      {R"({"a":{"dtype":"F32","shape":[1 2]}})", 0,
       "at byte 31: expected ',' or ']', found '2'"},
      {R"({"a":{"dtype":"F32","shape":[-1]}})", 0,
       "at byte 29: expected a non-negative integer, found '-'"},
      {R"({"a":{"dtype":"F32","shape":[2.0]}})", 0,
       "at byte 29: expected an integer, found a fraction"},
      {R"({"a":{"dtype":"F32","shape":[1e3]}})", 0,
       "expected an integer, found a fraction"},
      {R"({"a":{"dtype":"F32","shape":[01]}})", 0, "leading zero in integer"},
      {R"({"a":{"dtype":"F32","shape":[99999999999999999999]}})", 0,
       "at byte 29: integer too large"},
      {R"({"a\x":{}})", 0, "invalid JSON header at byte 3: invalid escape"},
      {R"({"a\u12g4":{}})", 0, "at byte 7: expected a hex digit"},
      {R"({"\ud800":{}})", 0, "at byte 2: unpaired high surrogate"},
      {R"({"\ud800\u0041":{}})", 0, "unpaired high surrogate"},
      {R"({"\udc00":{}})", 0, "unpaired low surrogate"},
      {"{\"a\tb\":{}}", 0, "at byte 3: control character in string"},
      {"{\"\xff\":{}}", 0, "header is not valid UTF-8"},
      {"{\"\xc0\x80\":{}}", 0, "header is not valid UTF-8"},
  };
  for (const BadHeader &bad : cases) {
    SCOPED_TRACE(bad.json);
    expectReadError(rawFile(bad.json, bad.dataSize), bad.expected);
  }
}

TEST_F(SafetensorsTest, RejectsUnwritableCheckpoints) {
  auto expectWriteError = [&](const Checkpoint &checkpoint,
                              const std::string &expected) {
    Status status = writeSafetensors(path, checkpoint);
    ASSERT_FALSE(status.ok()) << expected;
    EXPECT_EQ(status.message(), path + ": " + expected);
    EXPECT_FALSE(serializeSafetensors(checkpoint).ok());
  };
  Checkpoint checkpoint;
  checkpoint.tensors.push_back(makeTensor<float>("a", DType::F32, {3}, {1, 2}));
  expectWriteError(checkpoint,
                   "tensor 'a': shape [3] of F32 needs 12 bytes but it has 8");
  checkpoint.tensors[0].shape = {-2, -1};
  expectWriteError(checkpoint, "tensor 'a': invalid shape [-2, -1]");
  checkpoint.tensors[0].shape = {2};
  checkpoint.tensors.push_back(checkpoint.tensors[0]);
  expectWriteError(checkpoint, "duplicate tensor name 'a'");
  checkpoint.tensors.resize(1);
  for (const char *name : {"", "__metadata__", "bad\xff"}) {
    checkpoint.tensors[0].name = name;
    expectWriteError(checkpoint,
                     "invalid tensor name '" + std::string(name) +
                         "': names must be non-empty UTF-8 other than "
                         "__metadata__");
  }
  checkpoint.tensors.clear();
  checkpoint.metadata = {{"k", "\xc3"}};
  expectWriteError(checkpoint, "metadata entry 'k' is not valid UTF-8");
  EXPECT_TRUE(temp.list().empty());
}

//===----------------------------------------------------------------------===//
// Atomic writes
//===----------------------------------------------------------------------===//

Checkpoint smallCheckpoint(float value) {
  Checkpoint checkpoint;
  checkpoint.tensors.push_back(
      makeTensor<float>("w", DType::F32, {1}, {value}));
  return checkpoint;
}

TEST_F(SafetensorsTest, OverwritesAtomically) {
  ASSERT_TRUE(writeSafetensors(path, smallCheckpoint(1.0f)).ok());
  ASSERT_TRUE(writeSafetensors(path, smallCheckpoint(2.0f)).ok());
  StatusOr<Checkpoint> read = readSafetensors(path);
  ASSERT_TRUE(read.ok()) << read.status().message();
  expectSameCheckpoint(*read, smallCheckpoint(2.0f));
  EXPECT_EQ(temp.list(), (std::vector<std::string>{"model.safetensors"}));
}

// A write that fails leaves the previous checkpoint and no temporary file.
TEST_F(SafetensorsTest, FailedWriteKeepsOldFile) {
  ASSERT_TRUE(writeSafetensors(path, smallCheckpoint(1.0f)).ok());
  std::vector<uint8_t> before = readFile(path);

  Checkpoint invalid = smallCheckpoint(2.0f);
  invalid.tensors[0].bytes.pop_back();
  EXPECT_FALSE(writeSafetensors(path, invalid).ok());
  EXPECT_EQ(readFile(path), before);
  EXPECT_EQ(temp.list(), (std::vector<std::string>{"model.safetensors"}));

  // The rename fails when the target is a non-empty directory.
  std::string dirTarget = temp.path("dir");
  std::filesystem::create_directory(dirTarget);
  writeFile(dirTarget + "/inside", {1});
  Status status = writeSafetensors(dirTarget, smallCheckpoint(3.0f));
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(dirTarget + ": cannot rename " + dirTarget +
                                  ".tmp."),
            std::string::npos)
      << status.message();
  EXPECT_EQ(temp.list(),
            (std::vector<std::string>{"dir", "model.safetensors"}));
  EXPECT_EQ(readFile(path), before);
}

TEST_F(SafetensorsTest, WriteIntoMissingDirectory) {
  std::string target = temp.path("no/such/dir/model.safetensors");
  Status status = writeSafetensors(target, smallCheckpoint(1.0f));
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(target + ": cannot create temporary file "),
            std::string::npos)
      << status.message();
  EXPECT_NE(status.message().find("No such file or directory"),
            std::string::npos)
      << status.message();
  EXPECT_TRUE(temp.list().empty());
}

// A path without a directory part is written in the working directory.
TEST_F(SafetensorsTest, WritesRelativePath) {
  std::filesystem::path previous = std::filesystem::current_path();
  std::filesystem::current_path(temp.dir);
  Status status = writeSafetensors("relative.safetensors", smallCheckpoint(1));
  std::filesystem::current_path(previous);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(temp.list(), (std::vector<std::string>{"relative.safetensors"}));
}

} // namespace
