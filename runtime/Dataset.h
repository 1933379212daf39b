//===- Dataset.h - MNIST-style IDX datasets and batching --------*- C++ -*-===//
//
// Loads image classification datasets stored as IDX files (MNIST,
// Fashion-MNIST), gzipped or plain, and cuts them into normalised float
// batches. Shuffling is a Fisher-Yates shuffle driven by std::mt19937_64 and
// our own unbiased bounded draw, so the order of examples depends only on
// (seed, epoch) and is identical on every platform and standard library.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_DATASET_H
#define KILN_RUNTIME_DATASET_H

#include "runtime/Status.h"

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace kiln::runtime {

/// Number of classes of MNIST and Fashion-MNIST; labels are in [0, 10).
inline constexpr int kNumClasses = 10;

/// Where the Debian package dataset-fashion-mnist installs the dataset.
inline constexpr const char *kDefaultFashionMnistDir =
    "/usr/share/datasets/fashion-mnist";

/// `count` grayscale images of rows x cols uint8 pixels, with one label each.
struct ImageDataset {
  int64_t count = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> pixels; ///< row-major [count, rows, cols]
  std::vector<uint8_t> labels; ///< [count], each < kNumClasses

  /// Pixels per image.
  int64_t imageSize() const { return rows * cols; }

  /// A copy of the first min(n, count) examples, for fast tests.
  ImageDataset subset(int64_t n) const;
};

/// The train and test splits of Fashion-MNIST (or MNIST).
struct FashionMnist {
  ImageDataset train; ///< 60000 examples
  ImageDataset test;  ///< 10000 examples
};

/// Reads an IDX image file (magic 0x00000803, big-endian dimensions
/// [count, rows, cols], uint8 pixels) and its IDX label file (magic
/// 0x00000801, [count], uint8 labels). Either file may be gzipped or plain.
/// Errors name the offending file: missing file, truncated header or data,
/// wrong magic, corrupt gzip data, trailing bytes, implausible sizes (more
/// than 1e9 pixels), count mismatch, or a label >= kNumClasses.
StatusOr<ImageDataset> loadIdxImages(const std::string &imagesPath,
                                     const std::string &labelsPath);

/// Loads train-{images-idx3,labels-idx1}-ubyte.gz and
/// t10k-{images-idx3,labels-idx1}-ubyte.gz from `dir`.
StatusOr<FashionMnist>
loadFashionMnist(const std::string &dir = kDefaultFashionMnistDir);

/// One batch of normalised images and their labels.
struct Batch {
  std::vector<float> images;   ///< row-major [size, rows * cols]
  std::vector<int32_t> labels; ///< [size]
  int64_t size = 0;            ///< examples in this batch
};

/// The Fashion-MNIST training set's pixel statistics (of p / 255).
inline constexpr float kFashionMnistMean = 0.2860f;
inline constexpr float kFashionMnistStddev = 0.3530f;

/// What each pixel value p becomes when normalised: entry p is
/// (p / 255 - mean) / stddev, in float arithmetic.
std::array<float, 256> normalizedPixels(float mean = kFashionMnistMean,
                                        float stddev = kFashionMnistStddev);

/// Cuts an ImageDataset into batches, one epoch at a time:
///
///   BatchIterator it(data, /*batchSize=*/64, /*seed=*/1, /*shuffle=*/true);
///   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
///     it.reset(epoch);
///     while (it.next(batch)) ...
///   }
///
/// Each epoch visits every example exactly once. With shuffling, the order is
/// a pure function of (seed, epoch). The iterator keeps a pointer to the
/// dataset, which must outlive it.
class BatchIterator {
public:
  /// Iterates over `dataset` in batches of `batchSize` (>= 1; smaller values
  /// are treated as 1) and starts epoch 0.
  BatchIterator(const ImageDataset &dataset, int64_t batchSize, uint64_t seed,
                bool shuffle);
  /// Iterates over examples 0 to count - 1 without a dataset: only
  /// nextExamples() may be called.
  BatchIterator(int64_t count, int64_t batchSize, uint64_t seed, bool shuffle);

  /// Starts `epoch`: rewinds and, when shuffling, reorders the examples by a
  /// permutation derived from (seed, epoch) alone.
  void reset(int64_t epoch);

  /// Fills `batch` with the next batch of the epoch and returns true, or
  /// returns false at the end of the epoch. The last batch has the remaining
  /// examples (fewer than batchSize) unless dropLast is set.
  bool next(Batch &batch);

  /// Like next(), without the pixels: sets `examples` to the next batch's
  /// indices into the dataset (for Backend::gatherInput, which decodes
  /// them where the step runs, through pixelTable()).
  bool nextExamples(std::vector<int64_t> &examples);

  /// What each pixel value becomes (normalizedPixels(mean, stddev)).
  std::array<float, 256> pixelTable() const {
    return normalizedPixels(mean, stddev);
  }

  /// Batches next() returns in one epoch.
  int64_t batchesPerEpoch() const;

  /// The example order of the current epoch (indices into the dataset).
  const std::vector<int64_t> &order() const { return permutation; }

  /// Pixels p become (p / 255 - mean) / stddev; the defaults are the
  /// Fashion-MNIST training set's statistics.
  float mean = kFashionMnistMean;
  float stddev = kFashionMnistStddev;
  /// Skip a final batch smaller than batchSize.
  bool dropLast = false;

private:
  const ImageDataset *dataset;
  int64_t count;
  int64_t batchSize;
  uint64_t seed;
  bool shuffle;
  std::vector<int64_t> permutation;
  int64_t position = 0; // index into permutation of the next example
  std::vector<int64_t> examples, offsets; // next()'s, kept to reuse
};

/// A uniform integer in [0, bound), bound >= 1, drawn from `rng` by rejection
/// sampling: unbiased, and identical on every platform (unlike
/// std::uniform_int_distribution).
uint64_t uniformBelow(std::mt19937_64 &rng, uint64_t bound);

/// Shuffles `values` in place with Fisher-Yates, drawing from a
/// std::mt19937_64 seeded with (seed, epoch) through std::seed_seq, whose
/// output the C++ standard fixes exactly.
void shuffleForEpoch(std::vector<int64_t> &values, uint64_t seed,
                     int64_t epoch);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_DATASET_H
