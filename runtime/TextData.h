//===- TextData.h - byte-level text for language-model trainers -*- C++ -*-===//
//
// A text file as training data for a byte-level language model (vocabulary:
// the 256 byte values). The last tenth of the file is held out; training
// batches are windows of T + 1 bytes at random positions of the rest (the
// tokens are the first T bytes, the targets the last T), drawn from
// std::mt19937_64 seeded with (seed, step) alone, so a batch depends only on
// the seed and the global step number (a resumed run draws the batches an
// uninterrupted one draws). Evaluation uses the non-overlapping windows of
// the held-out part, in order.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_TEXTDATA_H
#define KILN_RUNTIME_TEXTDATA_H

#include "runtime/Program.h"
#include "runtime/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::runtime {

/// The vocabulary of a byte-level language model.
inline constexpr int64_t kByteVocabulary = 256;

/// A text file split into its training part and its held-out last tenth.
struct TextData {
  std::vector<uint8_t> train;
  std::vector<uint8_t> heldOut;
};

/// Reads `path` whole and splits it: the last floor(size / 10) bytes are
/// held out. A missing, unreadable or empty file is an error naming it.
StatusOr<TextData> loadText(const std::string &path);

/// The tokens and targets of `batch` windows of `context` positions each,
/// row-major [batch, context].
struct TextBatch {
  std::vector<int32_t> tokens, targets;
};

/// Fills `out` with the training batch of global step `step`: `batch`
/// windows of context + 1 bytes of `text` (text.size() > context) at
/// positions drawn from (seed, step).
void trainingBatch(const std::vector<uint8_t> &text, int64_t context,
                   int64_t batch, uint64_t seed, uint64_t step, TextBatch &out);

/// The number of non-overlapping windows of context + 1 bytes (they start
/// every `context` bytes) in `text`.
int64_t windowCount(const std::vector<uint8_t> &text, int64_t context);

/// Fills `out` with the windows first, first + 1, ..., first + batch - 1
/// (each < windowCount).
void evaluationBatch(const std::vector<uint8_t> &text, int64_t context,
                     int64_t first, int64_t batch, TextBatch &out);

/// How a program is a byte-level language model: its train and eval steps
/// take exactly two integer inputs `tokens` and `targets` of shape
/// [batch, T], and its predict step takes `tokens` [predict batch, T] and
/// returns an output of shape [predict batch, T, 256] (the logits).
struct TextModel {
  int64_t context = 0; ///< T
  std::string tokens = "tokens", targets = "targets";
  /// The predict step's logits output.
  std::string logits;
  DType logitsType = DType::F32;
};

/// Whether `program` is meant as a text model: its train step has an input
/// named `tokens` or `targets`.
bool isTextProgram(const Program &program);

/// Checks a text program against the rules of TextModel; errors say what
/// the model file must change (the vocabulary, the shapes, a missing
/// `output`).
StatusOr<TextModel> describeTextModel(const Program &program);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_TEXTDATA_H
