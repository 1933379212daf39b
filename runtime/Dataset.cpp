//===- Dataset.cpp - MNIST-style IDX datasets and batching ----------------===//
//
// IDX files go through zlib's gz* functions, which read gzipped and plain
// files alike. Every read is checked for length, and each file must end right
// after its data, which also makes zlib verify the gzip CRC.
//
//===----------------------------------------------------------------------===//

#include "runtime/Dataset.h"
#include "runtime/ByteTable.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <numeric>

using namespace kiln::runtime;

namespace {

constexpr uint32_t kImagesMagic = 0x00000803; // uint8 data, 3 dimensions
constexpr uint32_t kLabelsMagic = 0x00000801; // uint8 data, 1 dimension
// Largest pixel or label buffer we allocate; the MNIST training images take
// 47 MB. Guards against allocating from a corrupt header.
constexpr uint64_t kMaxBytes = 1000000000;

std::string hex32(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", value);
  return text;
}

uint32_t readBigEndian32(const uint8_t *bytes) {
  return (uint32_t(bytes[0]) << 24) | (uint32_t(bytes[1]) << 16) |
         (uint32_t(bytes[2]) << 8) | uint32_t(bytes[3]);
}

/// An IDX file, gzipped or plain, read front to back. Errors start with the
/// file's path.
class IdxReader {
public:
  explicit IdxReader(std::string path) : path(std::move(path)) {}
  IdxReader(const IdxReader &) = delete;
  IdxReader &operator=(const IdxReader &) = delete;
  ~IdxReader() {
    if (file)
      gzclose(file);
  }

  Status open() {
    errno = 0;
    file = gzopen(path.c_str(), "rb");
    if (!file)
      return fail(std::string("cannot open: ") +
                  (errno ? std::strerror(errno) : "out of memory"));
    return Status::success();
  }

  /// Reads exactly `size` bytes; `what` names them in errors.
  Status read(void *data, uint64_t size, const char *what) {
    uint8_t *out = static_cast<uint8_t *>(data);
    uint64_t done = 0;
    while (done < size) {
      unsigned chunk = unsigned(std::min<uint64_t>(size - done, 1u << 30));
      int got = gzread(file, out + done, chunk);
      if (got < 0)
        return readError(what);
      if (got == 0)
        break;
      done += uint64_t(got);
    }
    if (done == size)
      return Status::success();
    std::string message = std::string("truncated ") + what + ": expected " +
                          std::to_string(size) + " bytes, got " +
                          std::to_string(done);
    int errnum = Z_OK;
    gzerror(file, &errnum);
    if (errnum != Z_OK)
      message += " (" + zlibMessage() + ")";
    return fail(message);
  }

  /// Fails unless the file ends here. Reading to the end also makes zlib
  /// check the gzip trailer (CRC and length).
  Status expectEnd() {
    uint8_t extra;
    int got = gzread(file, &extra, 1);
    if (got < 0)
      return readError("the last bytes");
    if (got > 0)
      return fail("unexpected bytes after the data");
    int errnum = Z_OK;
    gzerror(file, &errnum);
    if (errnum != Z_OK)
      return fail("truncated gzip stream: " + zlibMessage());
    return Status::success();
  }

  Status fail(const std::string &message) const {
    return Status::error(path + ": " + message);
  }

private:
  /// A failed gzread(): an I/O error, or data that does not decompress.
  Status readError(const std::string &what) const {
    int errnum = Z_OK;
    gzerror(file, &errnum);
    if (errnum == Z_ERRNO)
      return fail("cannot read " + what + ": " + std::strerror(errno));
    // zlib decompresses ahead, so the damage may lie beyond `what`.
    return fail("corrupt gzip data: " + zlibMessage() + " (while reading " +
                what + ")");
  }

  /// zlib's description of the last error, without the "path: " prefix
  /// that gzerror() adds.
  std::string zlibMessage() const {
    int errnum = Z_OK;
    const char *text = gzerror(file, &errnum);
    if (errnum == Z_ERRNO)
      return std::strerror(errno);
    std::string message = text ? text : "unknown zlib error";
    std::string prefix = path + ": ";
    if (message.compare(0, prefix.size(), prefix) == 0)
      message.erase(0, prefix.size());
    return message;
  }

  std::string path;
  gzFile file = nullptr;
};

/// Reads the magic number and `rank` (at most 3) dimensions of an IDX
/// header.
Status readIdxHeader(IdxReader &reader, uint32_t expectedMagic,
                     const char *kind, uint32_t *dims, int rank) {
  uint8_t bytes[12];
  if (Status status = reader.read(bytes, 4, "magic number"); !status.ok())
    return status;
  uint32_t magic = readBigEndian32(bytes);
  if (magic != expectedMagic)
    return reader.fail("bad magic number " + hex32(magic) + ", expected " +
                       hex32(expectedMagic) + " (" + kind + ")");
  if (Status status = reader.read(bytes, 4 * rank, "header dimensions");
      !status.ok())
    return status;
  for (int i = 0; i < rank; ++i)
    dims[i] = readBigEndian32(bytes + 4 * i);
  return Status::success();
}

Status readImages(const std::string &path, ImageDataset &dataset) {
  IdxReader reader(path);
  if (Status status = reader.open(); !status.ok())
    return status;
  uint32_t dims[3];
  if (Status status = readIdxHeader(reader, kImagesMagic,
                                    "IDX uint8 images [count, rows, cols]",
                                    dims, /*rank=*/3);
      !status.ok())
    return status;
  uint64_t count = dims[0], rows = dims[1], cols = dims[2];
  if (rows == 0 || cols == 0)
    return reader.fail("images of " + std::to_string(rows) + "x" +
                       std::to_string(cols) + " pixels are empty");
  // rows * cols < 2^64, and once it is below kMaxBytes (< 2^30), count *
  // rows * cols < 2^62: no overflow.
  uint64_t imageSize = rows * cols;
  if (imageSize > kMaxBytes || count * imageSize > kMaxBytes)
    return reader.fail("implausible size: " + std::to_string(count) +
                       " images of " + std::to_string(rows) + "x" +
                       std::to_string(cols) + " pixels exceed " +
                       std::to_string(kMaxBytes) + " bytes");
  dataset.count = int64_t(count);
  dataset.rows = int64_t(rows);
  dataset.cols = int64_t(cols);
  dataset.pixels.resize(count * imageSize);
  if (Status status =
          reader.read(dataset.pixels.data(), dataset.pixels.size(), "pixels");
      !status.ok())
    return status;
  return reader.expectEnd();
}

Status readLabels(const std::string &path, const std::string &imagesPath,
                  ImageDataset &dataset) {
  IdxReader reader(path);
  if (Status status = reader.open(); !status.ok())
    return status;
  uint32_t count;
  if (Status status = readIdxHeader(reader, kLabelsMagic,
                                    "IDX uint8 labels [count]", &count,
                                    /*rank=*/1);
      !status.ok())
    return status;
  if (int64_t(count) != dataset.count)
    return reader.fail("has " + std::to_string(count) + " labels but " +
                       imagesPath + " has " + std::to_string(dataset.count) +
                       " images");
  dataset.labels.resize(count);
  if (Status status =
          reader.read(dataset.labels.data(), dataset.labels.size(), "labels");
      !status.ok())
    return status;
  if (Status status = reader.expectEnd(); !status.ok())
    return status;
  for (uint32_t i = 0; i < count; ++i)
    if (dataset.labels[i] >= kNumClasses)
      return reader.fail("label " + std::to_string(dataset.labels[i]) +
                         " of example " + std::to_string(i) +
                         " is out of range [0, " + std::to_string(kNumClasses) +
                         ")");
  return Status::success();
}

} // namespace

StatusOr<ImageDataset>
kiln::runtime::loadIdxImages(const std::string &imagesPath,
                             const std::string &labelsPath) {
  ImageDataset dataset;
  if (Status status = readImages(imagesPath, dataset); !status.ok())
    return status;
  if (Status status = readLabels(labelsPath, imagesPath, dataset); !status.ok())
    return status;
  return dataset;
}

StatusOr<FashionMnist> kiln::runtime::loadFashionMnist(const std::string &dir) {
  auto load = [&](const char *prefix) {
    std::string base = dir + "/" + prefix;
    return loadIdxImages(base + "-images-idx3-ubyte.gz",
                         base + "-labels-idx1-ubyte.gz");
  };
  StatusOr<ImageDataset> train = load("train");
  if (!train.ok())
    return train.status();
  StatusOr<ImageDataset> test = load("t10k");
  if (!test.ok())
    return test.status();
  return FashionMnist{std::move(train).value(), std::move(test).value()};
}

ImageDataset ImageDataset::subset(int64_t n) const {
  n = std::clamp<int64_t>(n, 0, count);
  ImageDataset result;
  result.count = n;
  result.rows = rows;
  result.cols = cols;
  result.pixels.assign(pixels.begin(), pixels.begin() + n * imageSize());
  result.labels.assign(labels.begin(), labels.begin() + n);
  return result;
}

//===----------------------------------------------------------------------===//
// Shuffling and batching
//===----------------------------------------------------------------------===//

uint64_t kiln::runtime::uniformBelow(std::mt19937_64 &rng, uint64_t bound) {
  // Accept r only at or above 2^64 mod bound: the accepted range then holds
  // a whole number of copies of [0, bound), so r % bound is uniform.
  uint64_t threshold = (0 - bound) % bound;
  while (true) {
    uint64_t r = rng();
    if (r >= threshold)
      return r % bound;
  }
}

void kiln::runtime::shuffleForEpoch(std::vector<int64_t> &values, uint64_t seed,
                                    int64_t epoch) {
  uint64_t epochBits = uint64_t(epoch);
  std::seed_seq seq{uint32_t(seed), uint32_t(seed >> 32), uint32_t(epochBits),
                    uint32_t(epochBits >> 32)};
  std::mt19937_64 rng(seq);
  // Fisher-Yates: position i takes a uniformly chosen element of [0, i].
  for (size_t i = values.size(); i > 1; --i) {
    size_t j = size_t(uniformBelow(rng, i));
    std::swap(values[i - 1], values[j]);
  }
}

BatchIterator::BatchIterator(const ImageDataset &dataset, int64_t batchSize,
                             uint64_t seed, bool shuffle)
    : dataset(&dataset), count(dataset.count),
      batchSize(std::max<int64_t>(batchSize, 1)), seed(seed), shuffle(shuffle) {
  reset(/*epoch=*/0);
}

BatchIterator::BatchIterator(int64_t count, int64_t batchSize, uint64_t seed,
                             bool shuffle)
    : dataset(nullptr), count(count),
      batchSize(std::max<int64_t>(batchSize, 1)), seed(seed), shuffle(shuffle) {
  reset(/*epoch=*/0);
}

void BatchIterator::reset(int64_t epoch) {
  permutation.resize(size_t(count));
  std::iota(permutation.begin(), permutation.end(), int64_t(0));
  if (shuffle)
    shuffleForEpoch(permutation, seed, epoch);
  position = 0;
}

bool BatchIterator::nextExamples(std::vector<int64_t> &examples) {
  int64_t size = std::min(batchSize, count - position);
  if (size <= 0 || (dropLast && size < batchSize))
    return false;
  examples.assign(permutation.begin() + position,
                  permutation.begin() + position + size);
  position += size;
  return true;
}

std::array<float, 256> kiln::runtime::normalizedPixels(float mean,
                                                       float stddev) {
  std::array<float, 256> table;
  for (int p = 0; p < 256; ++p)
    table[size_t(p)] = (float(p) / 255.0f - mean) / stddev;
  return table;
}

bool BatchIterator::next(Batch &batch) {
  if (!nextExamples(examples))
    return false;
  int64_t imageSize = dataset->imageSize();
  batch.size = int64_t(examples.size());
  offsets.resize(examples.size());
  for (size_t i = 0; i < examples.size(); ++i)
    offsets[i] = examples[i] * imageSize;
  std::array<float, 256> table = pixelTable();
  batch.images.resize(size_t(batch.size * imageSize));
  gatherRows(dataset->pixels.data(), table.data(), sizeof(float),
             offsets.data(), offsets.size(), size_t(imageSize),
             batch.images.data());
  batch.labels.resize(examples.size());
  for (size_t i = 0; i < examples.size(); ++i)
    batch.labels[i] = int32_t(dataset->labels[size_t(examples[i])]);
  return true;
}

int64_t BatchIterator::batchesPerEpoch() const {
  if (dropLast)
    return count / batchSize;
  return (count + batchSize - 1) / batchSize;
}
