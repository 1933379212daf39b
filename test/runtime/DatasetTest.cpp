//===- DatasetTest.cpp - IDX loading and batching -------------------------===//

#include "runtime/Dataset.h"

#include "TempDir.h"

#include <zlib.h>

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <set>

using namespace kiln::runtime;
using kiln::runtime::testing::readFile;
using kiln::runtime::testing::TempDir;
using kiln::runtime::testing::writeFile;

namespace {

void appendBigEndian32(std::vector<uint8_t> &bytes, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8)
    bytes.push_back(uint8_t(value >> shift));
}

/// Pixel k of example i in the synthetic datasets.
uint8_t syntheticPixel(uint32_t i, uint32_t k) { return uint8_t(i * 7 + k); }

/// An IDX image file of `count` synthetic rows x cols images.
std::vector<uint8_t> idxImages(uint32_t count, uint32_t rows, uint32_t cols,
                               uint32_t magic = 0x803) {
  std::vector<uint8_t> bytes;
  appendBigEndian32(bytes, magic);
  appendBigEndian32(bytes, count);
  appendBigEndian32(bytes, rows);
  appendBigEndian32(bytes, cols);
  for (uint32_t i = 0; i < count; ++i)
    for (uint32_t k = 0; k < rows * cols; ++k)
      bytes.push_back(syntheticPixel(i, k));
  return bytes;
}

/// An IDX label file holding `labels`.
std::vector<uint8_t> idxLabels(const std::vector<uint8_t> &labels,
                               uint32_t magic = 0x801) {
  std::vector<uint8_t> bytes;
  appendBigEndian32(bytes, magic);
  appendBigEndian32(bytes, uint32_t(labels.size()));
  bytes.insert(bytes.end(), labels.begin(), labels.end());
  return bytes;
}

std::vector<uint8_t> cyclicLabels(uint32_t count) {
  std::vector<uint8_t> labels(count);
  for (uint32_t i = 0; i < count; ++i)
    labels[i] = uint8_t(i % 10);
  return labels;
}

void writeGzip(const std::string &path, const std::vector<uint8_t> &bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr) << path;
  ASSERT_EQ(gzwrite(file, bytes.data(), unsigned(bytes.size())),
            int(bytes.size()));
  ASSERT_EQ(gzclose(file), Z_OK);
}

/// Loads and expects failure with a message containing `expected`.
void expectLoadError(const std::string &images, const std::string &labels,
                     const std::string &expected) {
  StatusOr<ImageDataset> result = loadIdxImages(images, labels);
  ASSERT_FALSE(result.ok()) << "expected an error containing: " << expected;
  EXPECT_NE(result.status().message().find(expected), std::string::npos)
      << "message: " << result.status().message()
      << "\nexpected to contain: " << expected;
}

class IdxTest : public ::testing::Test {
protected:
  TempDir temp;
  std::string images = temp.path("images.idx");
  std::string labels = temp.path("labels.idx");
};

// Plain and gzipped files load to the same dataset.
TEST_F(IdxTest, LoadsPlainAndGzipped) {
  for (bool gzip : {false, true}) {
    SCOPED_TRACE(gzip ? "gzip" : "plain");
    auto write = gzip ? writeGzip : writeFile;
    write(images, idxImages(/*count=*/5, /*rows=*/3, /*cols=*/2));
    write(labels, idxLabels(cyclicLabels(5)));
    StatusOr<ImageDataset> result = loadIdxImages(images, labels);
    ASSERT_TRUE(result.ok()) << result.status().message();
    const ImageDataset &data = *result;
    EXPECT_EQ(data.count, 5);
    EXPECT_EQ(data.rows, 3);
    EXPECT_EQ(data.cols, 2);
    EXPECT_EQ(data.imageSize(), 6);
    ASSERT_EQ(data.pixels.size(), 30u);
    for (uint32_t i = 0; i < 5; ++i)
      for (uint32_t k = 0; k < 6; ++k)
        EXPECT_EQ(data.pixels[i * 6 + k], syntheticPixel(i, k));
    EXPECT_EQ(data.labels, cyclicLabels(5));
  }
}

// An empty dataset is valid.
TEST_F(IdxTest, LoadsEmptyDataset) {
  writeFile(images, idxImages(/*count=*/0, /*rows=*/28, /*cols=*/28));
  writeFile(labels, idxLabels({}));
  StatusOr<ImageDataset> result = loadIdxImages(images, labels);
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(result->count, 0);
}

TEST_F(IdxTest, MissingFiles) {
  writeFile(labels, idxLabels(cyclicLabels(5)));
  expectLoadError(images, labels,
                  images + ": cannot open: No such file or directory");
  writeFile(images, idxImages(5, 3, 2));
  std::string missing = temp.path("nope.idx");
  expectLoadError(images, missing,
                  missing + ": cannot open: No such file or directory");
}

TEST_F(IdxTest, DirectoryInsteadOfFile) {
  writeFile(labels, idxLabels(cyclicLabels(5)));
  expectLoadError(temp.dir, labels,
                  temp.dir + ": cannot read magic number: Is a directory");
}

TEST_F(IdxTest, TruncatedHeader) {
  for (bool gzip : {false, true}) {
    SCOPED_TRACE(gzip ? "gzip" : "plain");
    auto write = gzip ? writeGzip : writeFile;
    std::vector<uint8_t> bytes = idxImages(5, 3, 2);
    bytes.resize(10);
    write(images, bytes);
    write(labels, idxLabels(cyclicLabels(5)));
    expectLoadError(images, labels,
                    images +
                        ": truncated header dimensions: expected 12 bytes, "
                        "got 6");
    write(images, {0, 0});
    expectLoadError(images, labels,
                    images + ": truncated magic number: expected 4 bytes, "
                             "got 2");
  }
}

TEST_F(IdxTest, TruncatedData) {
  for (bool gzip : {false, true}) {
    SCOPED_TRACE(gzip ? "gzip" : "plain");
    auto write = gzip ? writeGzip : writeFile;
    std::vector<uint8_t> bytes = idxImages(5, 3, 2);
    bytes.resize(bytes.size() - 1);
    write(images, bytes);
    write(labels, idxLabels(cyclicLabels(5)));
    expectLoadError(images, labels,
                    images + ": truncated pixels: expected 30 bytes, got 29");

    write(images, idxImages(5, 3, 2));
    std::vector<uint8_t> labelBytes = idxLabels(cyclicLabels(5));
    labelBytes.resize(labelBytes.size() - 2);
    write(labels, labelBytes);
    expectLoadError(images, labels,
                    labels + ": truncated labels: expected 5 bytes, got 3");
  }
}

// A gzip file cut short reports the truncation, even when the cut falls in
// the gzip trailer after all of the data.
TEST_F(IdxTest, TruncatedGzipStream) {
  writeGzip(images, idxImages(50, 8, 8));
  std::vector<uint8_t> compressed = readFile(images);
  writeGzip(labels, idxLabels(cyclicLabels(50)));
  for (size_t cut : {size_t(4), compressed.size() / 2, compressed.size() - 4}) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    writeFile(images, std::vector<uint8_t>(compressed.begin(),
                                           compressed.begin() + cut));
    expectLoadError(images, labels, images + ": truncated");
  }
}

TEST_F(IdxTest, CorruptGzip) {
  writeGzip(images, idxImages(50, 8, 8));
  writeGzip(labels, idxLabels(cyclicLabels(50)));
  std::vector<uint8_t> compressed = readFile(images);

  // A wrong CRC in the gzip trailer.
  std::vector<uint8_t> badCrc = compressed;
  badCrc[badCrc.size() - 8] ^= 0xFF;
  writeFile(images, badCrc);
  expectLoadError(images, labels,
                  images + ": corrupt gzip data: incorrect data check");

  // Garbage in the deflate stream, right after the 10-byte gzip header.
  std::vector<uint8_t> badBlock = compressed;
  for (size_t i = 10; i < 20; ++i)
    badBlock[i] = 0xFF;
  writeFile(images, badBlock);
  expectLoadError(images, labels, images + ": corrupt gzip data");
}

TEST_F(IdxTest, BadMagic) {
  // Images and labels swapped.
  writeFile(images, idxLabels(cyclicLabels(5)));
  writeFile(labels, idxImages(5, 3, 2));
  expectLoadError(images, labels,
                  images + ": bad magic number 0x00000801, expected "
                           "0x00000803 (IDX uint8 images [count, rows, cols])");
  writeFile(images, idxImages(5, 3, 2));
  expectLoadError(images, labels,
                  labels + ": bad magic number 0x00000803, expected "
                           "0x00000801 (IDX uint8 labels [count])");
  // A float IDX file (type byte 0x0D).
  writeFile(images, idxImages(5, 3, 2, /*magic=*/0x0D03));
  expectLoadError(images, labels, images + ": bad magic number 0x00000d03");
}

TEST_F(IdxTest, CountMismatch) {
  writeFile(images, idxImages(5, 3, 2));
  writeFile(labels, idxLabels(cyclicLabels(4)));
  expectLoadError(images, labels,
                  labels + ": has 4 labels but " + images + " has 5 images");
}

TEST_F(IdxTest, LabelOutOfRange) {
  writeFile(images, idxImages(5, 3, 2));
  writeFile(labels, idxLabels({0, 1, 9, 10, 2}));
  expectLoadError(images, labels,
                  labels + ": label 10 of example 3 is out of range [0, 10)");
}

TEST_F(IdxTest, ImplausibleSizes) {
  writeFile(labels, idxLabels(cyclicLabels(5)));
  // 100000 images of 100x100 pixels: 1e9 bytes is the limit, this is 1e9 + 1e4.
  std::vector<uint8_t> header = idxImages(0, 100, 100);
  header[4] = 0, header[5] = 1, header[6] = 0x86, header[7] = 0xA1; // 100001
  writeFile(images, header);
  expectLoadError(images, labels,
                  images + ": implausible size: 100001 images of 100x100 "
                           "pixels exceed 1000000000 bytes");
  // Dimensions whose product overflows 32 bits.
  writeFile(images, idxImages(0, 0xFFFFFFFF, 0xFFFFFFFF));
  expectLoadError(images, labels, images + ": implausible size");
  writeFile(images, idxImages(0, 28, 0));
  expectLoadError(images, labels, images + ": images of 28x0 pixels are empty");
}

TEST_F(IdxTest, TrailingBytes) {
  std::vector<uint8_t> bytes = idxImages(5, 3, 2);
  bytes.push_back(0);
  writeFile(images, bytes);
  writeFile(labels, idxLabels(cyclicLabels(5)));
  expectLoadError(images, labels, images + ": unexpected bytes after the data");
}

// The real dataset, when the Debian package dataset-fashion-mnist is there.
TEST(FashionMnistTest, LoadsInstalledDataset) {
  if (!std::filesystem::exists(kDefaultFashionMnistDir))
    GTEST_SKIP() << kDefaultFashionMnistDir
                 << " is absent; install the Debian package "
                    "dataset-fashion-mnist";
  StatusOr<FashionMnist> result = loadFashionMnist();
  ASSERT_TRUE(result.ok()) << result.status().message();
  const FashionMnist &data = *result;
  for (const ImageDataset *split : {&data.train, &data.test}) {
    EXPECT_EQ(split->rows, 28);
    EXPECT_EQ(split->cols, 28);
    ASSERT_EQ(int64_t(split->pixels.size()), split->count * 28 * 28);
    ASSERT_EQ(int64_t(split->labels.size()), split->count);
    // Fashion-MNIST is balanced: every class has count / 10 examples.
    std::vector<int64_t> perClass(10);
    for (uint8_t label : split->labels)
      ++perClass[label];
    for (int64_t n : perClass)
      EXPECT_EQ(n, split->count / 10);
  }
  EXPECT_EQ(data.train.count, 60000);
  EXPECT_EQ(data.test.count, 10000);
  // The first example of both splits is an ankle boot (class 9).
  EXPECT_EQ(data.train.labels[0], 9);
  EXPECT_EQ(data.test.labels[0], 9);

  // The default normalisation constants are the training set's statistics.
  double sum = 0, sumSquares = 0;
  for (uint8_t p : data.train.pixels) {
    sum += p / 255.0;
    sumSquares += (p / 255.0) * (p / 255.0);
  }
  double n = double(data.train.pixels.size());
  double mean = sum / n;
  double stddev = std::sqrt(sumSquares / n - mean * mean);
  BatchIterator it(data.train, /*batchSize=*/1, /*seed=*/0, /*shuffle=*/false);
  EXPECT_NEAR(mean, it.mean, 1e-4);
  EXPECT_NEAR(stddev, it.stddev, 1e-4);
}

TEST(FashionMnistTest, MissingDirectory) {
  StatusOr<FashionMnist> result = loadFashionMnist("/nonexistent/mnist");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(),
            "/nonexistent/mnist/train-images-idx3-ubyte.gz: cannot open: No "
            "such file or directory");
}

//===----------------------------------------------------------------------===//
// Batching
//===----------------------------------------------------------------------===//

/// `count` 2x2 images; pixel 0 of example i is i % 256 and pixel 1 is i / 256,
/// so every image says which example it is.
ImageDataset numberedDataset(int64_t count) {
  ImageDataset data;
  data.count = count;
  data.rows = 2;
  data.cols = 2;
  for (int64_t i = 0; i < count; ++i) {
    data.pixels.insert(data.pixels.end(),
                       {uint8_t(i % 256), uint8_t(i / 256), 0, 255});
    data.labels.push_back(uint8_t(i % 10));
  }
  return data;
}

/// Reads back the example numbers of `batch` from its normalised pixels.
std::vector<int64_t> exampleIds(const Batch &batch, const BatchIterator &it) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < batch.size; ++i) {
    auto pixel = [&](int k) {
      return std::lround((batch.images[i * 4 + k] * it.stddev + it.mean) *
                         255.0f);
    };
    ids.push_back(pixel(0) + 256 * pixel(1));
  }
  return ids;
}

/// All example numbers of one epoch, in order.
std::vector<int64_t> epochIds(BatchIterator &it, int64_t epoch) {
  it.reset(epoch);
  std::vector<int64_t> ids;
  Batch batch;
  while (it.next(batch)) {
    std::vector<int64_t> batchIds = exampleIds(batch, it);
    ids.insert(ids.end(), batchIds.begin(), batchIds.end());
  }
  return ids;
}

TEST(BatchIteratorTest, SizesAndLastPartialBatch) {
  ImageDataset data = numberedDataset(10);
  BatchIterator it(data, /*batchSize=*/4, /*seed=*/1, /*shuffle=*/false);
  EXPECT_EQ(it.batchesPerEpoch(), 3);
  Batch batch;
  std::vector<int64_t> sizes;
  while (it.next(batch)) {
    sizes.push_back(batch.size);
    EXPECT_EQ(int64_t(batch.images.size()), batch.size * 4);
    EXPECT_EQ(int64_t(batch.labels.size()), batch.size);
  }
  EXPECT_EQ(sizes, (std::vector<int64_t>{4, 4, 2}));
  // The epoch stays finished until reset.
  EXPECT_FALSE(it.next(batch));

  it.dropLast = true;
  EXPECT_EQ(it.batchesPerEpoch(), 2);
  it.reset(/*epoch=*/1);
  sizes.clear();
  while (it.next(batch))
    sizes.push_back(batch.size);
  EXPECT_EQ(sizes, (std::vector<int64_t>{4, 4}));

  // Batch sizes below 1 mean 1; a batch larger than the dataset is one batch.
  EXPECT_EQ(BatchIterator(data, 0, 1, false).batchesPerEpoch(), 10);
  EXPECT_EQ(BatchIterator(data, 64, 1, false).batchesPerEpoch(), 1);
}

TEST(BatchIteratorTest, UnshuffledOrderAndLabels) {
  ImageDataset data = numberedDataset(7);
  BatchIterator it(data, /*batchSize=*/3, /*seed=*/1, /*shuffle=*/false);
  std::vector<int64_t> expected(7);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(epochIds(it, /*epoch=*/5), expected);
  it.reset(0);
  Batch batch;
  ASSERT_TRUE(it.next(batch));
  ASSERT_TRUE(it.next(batch));
  EXPECT_EQ(batch.labels, (std::vector<int32_t>{3, 4, 5}));
}

TEST(BatchIteratorTest, Normalization) {
  ImageDataset data = numberedDataset(1);
  data.pixels = {0, 128, 255, 51};
  BatchIterator it(data, /*batchSize=*/1, /*seed=*/1, /*shuffle=*/false);
  Batch batch;
  ASSERT_TRUE(it.next(batch));
  std::vector<float> expected = {
      (0.0f - 0.2860f) / 0.3530f, (128 / 255.0f - 0.2860f) / 0.3530f,
      (1.0f - 0.2860f) / 0.3530f, (0.2f - 0.2860f) / 0.3530f};
  for (int k = 0; k < 4; ++k)
    EXPECT_NEAR(batch.images[k], expected[k], 1e-6) << "pixel " << k;
  EXPECT_NEAR(batch.images[0], -0.810198f, 1e-5);
  EXPECT_NEAR(batch.images[2], 2.022663f, 1e-5);

  it.mean = 0.0f;
  it.stddev = 1.0f;
  it.reset(0);
  ASSERT_TRUE(it.next(batch));
  EXPECT_EQ(batch.images,
            (std::vector<float>{0.0f, 128 / 255.0f, 1.0f, 51 / 255.0f}));
}

TEST(BatchIteratorTest, ShuffleVisitsEveryExampleOnce) {
  ImageDataset data = numberedDataset(1000);
  BatchIterator it(data, /*batchSize=*/64, /*seed=*/7, /*shuffle=*/true);
  std::vector<int64_t> identity(1000);
  std::iota(identity.begin(), identity.end(), 0);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    std::vector<int64_t> ids = epochIds(it, epoch);
    EXPECT_NE(ids, identity) << "epoch " << epoch << " is not shuffled";
    EXPECT_EQ(ids, it.order());
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(ids, identity) << "epoch " << epoch;
  }
}

TEST(BatchIteratorTest, ShuffleIsDeterministic) {
  ImageDataset data = numberedDataset(300);
  BatchIterator a(data, /*batchSize=*/32, /*seed=*/42, /*shuffle=*/true);
  BatchIterator b(data, /*batchSize=*/10, /*seed=*/42, /*shuffle=*/true);
  BatchIterator otherSeed(data, /*batchSize=*/32, /*seed=*/43,
                          /*shuffle=*/true);
  // Same (seed, epoch): same order, whatever the batch size or history.
  std::vector<int64_t> epoch3 = epochIds(a, 3);
  epochIds(b, 0);
  EXPECT_EQ(epochIds(b, 3), epoch3);
  EXPECT_EQ(epochIds(a, 3), epoch3);
  // Another epoch or another seed: another order.
  EXPECT_NE(epochIds(a, 4), epoch3);
  EXPECT_NE(epochIds(otherSeed, 3), epoch3);
}

// The permutation is fixed by the C++ standard's definitions of
// std::mt19937_64 and std::seed_seq plus our own bounded draw, so it is the
// same on every platform. These values must never change; they were
// computed independently by `python3 test/runtime/shuffle_oracle.py`.
TEST(BatchIteratorTest, ShuffleIsPortable) {
  std::vector<int64_t> values(10);
  std::iota(values.begin(), values.end(), 0);
  shuffleForEpoch(values, /*seed=*/42, /*epoch=*/0);
  EXPECT_EQ(values, (std::vector<int64_t>{0, 6, 5, 1, 3, 9, 7, 8, 4, 2}));
  std::iota(values.begin(), values.end(), 0);
  shuffleForEpoch(values, /*seed=*/42, /*epoch=*/1);
  EXPECT_EQ(values, (std::vector<int64_t>{3, 8, 9, 4, 7, 2, 1, 0, 5, 6}));

  // The standard fixes the 10000th output of a default-seeded
  // std::mt19937_64.
  std::mt19937_64 rng;
  rng.discard(9999);
  EXPECT_EQ(rng(), 9981545732273789042ull);
}

TEST(BatchIteratorTest, UniformBelow) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(uniformBelow(rng, 1), 0u);
  // Half of all 64-bit values are rejected for this bound; every draw must
  // still land in range.
  uint64_t bound = (uint64_t(1) << 63) + 1;
  for (int i = 0; i < 1000; ++i)
    EXPECT_LT(uniformBelow(rng, bound), bound);
  // Rough uniformity over 6 buckets.
  std::vector<int> counts(6);
  for (int i = 0; i < 60000; ++i)
    ++counts[uniformBelow(rng, 6)];
  for (int count : counts)
    EXPECT_NEAR(count, 10000, 500);
}

TEST(BatchIteratorTest, Subset) {
  ImageDataset data = numberedDataset(10);
  ImageDataset first = data.subset(3);
  EXPECT_EQ(first.count, 3);
  EXPECT_EQ(first.rows, 2);
  EXPECT_EQ(first.cols, 2);
  EXPECT_EQ(first.pixels, std::vector<uint8_t>(data.pixels.begin(),
                                               data.pixels.begin() + 12));
  EXPECT_EQ(first.labels, (std::vector<uint8_t>{0, 1, 2}));
  EXPECT_EQ(data.subset(100).count, 10);
  EXPECT_EQ(data.subset(-1).count, 0);
}

} // namespace
