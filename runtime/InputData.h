//===- InputData.h - a data set as the values of a model's inputs -*- C++
//-*-===//
//
// A trainer feeds each step input from a column of examples: the values of
// that input for every example of a data set, matched to the input by its
// name. The columns come from the user's files (ArrayFile.h):
//
//   --data train.npz             arrays named as the inputs (x, label)
//   --data train.safetensors     the same, as safetensors tensors
//   --data x=images.npy,label=labels-idx1-ubyte.gz   one file per input
//   --data DIR                   Fashion-MNIST's four IDX files (the default
//                                data set of an image classifier)
//
// An array's first dimension counts the examples; the rest of it holds an
// example's values in row-major order, as many as the input takes per
// example (its shape may differ: 28x28 images feed a 784-value input).
// Values convert to the input's type as static_cast converts them, except
// that unsigned bytes feeding a float input are pixels, normalised to
// (v / 255 - mean) / stddev with the mean and standard deviation of the
// training data's v / 255 (Fashion-MNIST's directory: its published 0.2860
// and 0.3530). Float values never feed an integer input.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_INPUTDATA_H
#define KILN_RUNTIME_INPUTDATA_H

#include "runtime/Safetensors.h"
#include "runtime/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::runtime {

/// What a step input takes per example.
struct InputSpec {
  std::string name;
  DType dtype = DType::F32;
  /// Values per example.
  int64_t width = 0;
  /// The input's shape as the model declares it, for messages:
  /// "f32[batch, 784]".
  std::string shape;
};

/// One input's values for every example of a data set.
struct InputColumn {
  /// The input it feeds.
  std::string input;
  /// Where it came from, for messages: "train.npz: x".
  std::string source;
  /// The values' type as stored (U8, I32, I64, F32, F64).
  DType dtype = DType::U8;
  /// Values per example.
  int64_t width = 0;
  /// [examples, width] values of `dtype`.
  std::vector<uint8_t> values;
  /// Unsigned bytes feeding a float input become (v / 255 - mean) /
  /// stddev.
  float mean = 0, stddev = 1;
};

struct InputData {
  int64_t count = 0;
  std::vector<InputColumn> columns;

  /// The column feeding `input`, or null.
  const InputColumn *column(const std::string &input) const;
  /// Examples [first, first + n) (clamped to the data).
  InputData slice(int64_t first, int64_t n) const;
};

/// Reads `spec` (a directory of Fashion-MNIST IDX files, a .npz or
/// .safetensors file, or NAME=FILE pairs separated by commas) into a
/// column per input of `inputs`, checked against them. A directory gives
/// the training split (`test` false) or the test split (`test` true).
/// Errors name the file, the array and the input: a missing array, a
/// number of values per example that is not the input's, float values for
/// an integer input, arrays with different numbers of examples.
StatusOr<InputData> loadInputData(const std::string &spec, bool test,
                                  const std::vector<InputSpec> &inputs);

/// Whether `spec` names a directory (Fashion-MNIST's layout).
bool isDataDirectory(const std::string &spec);

/// Gives `train`'s pixel columns (unsigned bytes feeding a float input)
/// the mean and standard deviation of their values / 255, and `test`'s
/// columns of the same inputs the same.
void normalizePixels(InputData &train, InputData &test,
                     const std::vector<InputSpec> &inputs);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_INPUTDATA_H
