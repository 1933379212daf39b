//===- ByteTableTest.cpp - rows of bytes decoded into inputs --------------===//

#include "runtime/ByteTable.h"
#include "runtime/Dataset.h"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

using namespace kiln::runtime;

namespace {

/// A decode table whose entry b is `elementBytes` bytes, each b + k.
std::vector<uint8_t> decodeTable(size_t elementBytes) {
  std::vector<uint8_t> decode(kByteValues * elementBytes);
  for (size_t b = 0; b < kByteValues; ++b)
    for (size_t k = 0; k < elementBytes; ++k)
      decode[b * elementBytes + k] = uint8_t(b + k);
  return decode;
}

// Every element size gathers rows from their offsets (overlapping rows,
// rows in any order) and decodes each byte through the table.
TEST(ByteTableTest, GathersAndDecodesRowsOfEveryElementSize) {
  std::vector<uint8_t> bytes(40);
  std::iota(bytes.begin(), bytes.end(), uint8_t(100));
  const std::vector<int64_t> offsets = {30, 0, 3, 30};
  const size_t width = 5;
  for (size_t elementBytes : {1, 2, 3, 4, 8}) {
    std::vector<uint8_t> decode = decodeTable(elementBytes);
    std::vector<uint8_t> out(offsets.size() * width * elementBytes, 0xee);
    gatherRows(bytes.data(), decode.data(), elementBytes, offsets.data(),
               offsets.size(), width, out.data());
    for (size_t r = 0; r < offsets.size(); ++r)
      for (size_t c = 0; c < width; ++c)
        for (size_t k = 0; k < elementBytes; ++k)
          ASSERT_EQ(out[(r * width + c) * elementBytes + k],
                    uint8_t(bytes[size_t(offsets[r]) + c] + k))
              << "element size " << elementBytes << ", row " << r << ", column "
              << c << ", byte " << k;
  }
}

TEST(ByteTableTest, RowsOutsideTheTableAreErrors) {
  const int64_t inside[] = {0, 6, 10};
  EXPECT_TRUE(checkRows(10, inside, 2, 4).ok());
  EXPECT_TRUE(checkRows(10, inside + 2, 1, 0).ok()); // empty rows at the end
  EXPECT_FALSE(checkRows(10, inside + 1, 1, 5).ok());
  const int64_t negative[] = {2, -1};
  Status error = checkRows(10, negative, 2, 1);
  EXPECT_EQ(error.message(), "row 1 (1 bytes from offset -1) is outside the "
                             "byte table of 10 bytes");
  const int64_t huge[] = {int64_t(1) << 62};
  EXPECT_FALSE(checkRows(10, huge, 1, 1).ok());
}

TEST(ByteTableTest, CreateCopiesBytesAndNeeds256Elements) {
  std::vector<uint8_t> bytes = {1, 2, 3};
  std::vector<uint8_t> decode = decodeTable(4);
  auto table =
      ByteTable::create(bytes.data(), bytes.size(), decode.data(), 1024);
  ASSERT_TRUE(table.ok());
  bytes[0] = 9;
  EXPECT_EQ(table->bytes, (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_EQ(table->elementBytes, 4u);
  EXPECT_EQ(table->decode, decode);
  auto bad = ByteTable::create(bytes.data(), bytes.size(), decode.data(), 100);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "a byte table's decode table needs 256 elements, not 100 bytes");
}

// BatchIterator::next() is nextExamples() with the examples' pixels decoded
// through pixelTable() on the host: what a backend's gather of the same
// examples gives.
TEST(ByteTableTest, BatchIteratorDecodesTheExamplesItNames) {
  ImageDataset data;
  data.count = 10;
  data.rows = 2;
  data.cols = 3;
  data.pixels.resize(60);
  for (size_t i = 0; i < data.pixels.size(); ++i)
    data.pixels[i] = uint8_t(i * 37);
  data.labels = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  BatchIterator images(data, 4, /*seed=*/5, /*shuffle=*/true);
  BatchIterator examples(data, 4, /*seed=*/5, /*shuffle=*/true);
  images.mean = examples.mean = 0.5f;
  images.stddev = examples.stddev = 0.25f;
  std::array<float, 256> table = examples.pixelTable();
  EXPECT_EQ(table[255], (1.0f - 0.5f) / 0.25f);
  EXPECT_EQ(table, normalizedPixels(0.5f, 0.25f));
  Batch batch;
  std::vector<int64_t> order;
  int batches = 0;
  while (images.next(batch)) {
    ASSERT_TRUE(examples.nextExamples(order));
    ASSERT_EQ(int64_t(order.size()), batch.size);
    for (size_t i = 0; i < order.size(); ++i) {
      EXPECT_EQ(batch.labels[i], data.labels[size_t(order[i])]);
      for (size_t k = 0; k < 6; ++k)
        EXPECT_EQ(batch.images[i * 6 + k],
                  table[data.pixels[size_t(order[i]) * 6 + k]]);
    }
    ++batches;
  }
  EXPECT_FALSE(examples.nextExamples(order));
  EXPECT_EQ(batches, 3); // 4 + 4 + 2
}

} // namespace
