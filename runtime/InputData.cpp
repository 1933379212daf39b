//===- InputData.cpp - a data set as the values of a model's inputs -------===//

#include "runtime/InputData.h"

#include "runtime/ArrayFile.h"
#include "runtime/Dataset.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sys/stat.h>

using namespace kiln::runtime;

const InputColumn *InputData::column(const std::string &input) const {
  for (const InputColumn &c : columns)
    if (c.input == input)
      return &c;
  return nullptr;
}

InputData InputData::slice(int64_t first, int64_t n) const {
  first = std::clamp<int64_t>(first, 0, count);
  n = std::clamp<int64_t>(n, 0, count - first);
  InputData out;
  out.count = n;
  for (const InputColumn &c : columns) {
    InputColumn part = c;
    size_t row = size_t(c.width * dtypeSize(c.dtype));
    part.values.assign(c.values.begin() + first * row,
                       c.values.begin() + (first + n) * row);
    out.columns.push_back(std::move(part));
  }
  return out;
}

bool kiln::runtime::isDataDirectory(const std::string &spec) {
  struct stat info;
  return ::stat(spec.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

namespace {

std::string inputList(const std::vector<InputSpec> &inputs) {
  std::string text;
  for (const InputSpec &in : inputs)
    text += (text.empty() ? "" : ", ") + in.name + " " + in.shape;
  return text;
}

/// Fashion-MNIST's directory: the images feed the first float input, the
/// labels the first integer input, as `kiln train` feeds them.
StatusOr<InputData> loadDirectory(const std::string &dir, bool test,
                                  const std::vector<InputSpec> &inputs) {
  const InputSpec *image = nullptr, *label = nullptr;
  for (const InputSpec &in : inputs) {
    if (!image && isFloat(in.dtype))
      image = &in;
    else if (!label && !isFloat(in.dtype))
      label = &in;
  }
  if (!image || !label || image->width != 28 * 28 || label->width != 1)
    return Status::error(
        "'" + dir +
        "' is a directory of Fashion-MNIST's IDX files, which feed a float "
        "input of 784 values per example and an integer label input of "
        "shape [batch]; this model takes " +
        inputList(inputs) +
        " (give its inputs' data as a .npz or .safetensors file, or as "
        "NAME=FILE pairs)");
  std::string prefix = dir + (test ? "/t10k" : "/train");
  auto loaded = loadIdxImages(prefix + "-images-idx3-ubyte.gz",
                              prefix + "-labels-idx1-ubyte.gz");
  if (!loaded.ok())
    return loaded.status();
  if (loaded->imageSize() != image->width)
    return Status::error(prefix + "-images-idx3-ubyte.gz: images of " +
                         std::to_string(loaded->rows) + "x" +
                         std::to_string(loaded->cols) + " pixels, but input '" +
                         image->name + "' takes " +
                         std::to_string(image->width) + " values per example");
  InputData data;
  data.count = loaded->count;
  InputColumn pixels{image->name,
                     prefix + "-images-idx3-ubyte.gz",
                     DType::U8,
                     image->width,
                     {},
                     kFashionMnistMean,
                     kFashionMnistStddev};
  pixels.values = std::move(loaded->pixels);
  InputColumn labels{
      label->name, prefix + "-labels-idx1-ubyte.gz", DType::U8, 1, {}, 0, 1};
  labels.values = std::move(loaded->labels);
  data.columns.push_back(std::move(pixels));
  data.columns.push_back(std::move(labels));
  return data;
}

/// `array` (from `source`) as the column of `input`.
StatusOr<InputColumn> columnOf(Array &array, const std::string &source,
                               const InputSpec &input) {
  std::string where = source + ": array '" + array.name + "'";
  if (array.shape.empty())
    return Status::error(where + " is a scalar; the first dimension of an "
                                 "input's array counts its examples");
  int64_t width = 1;
  std::string dims;
  for (size_t d = 1; d < array.shape.size(); ++d) {
    width *= array.shape[d];
    dims += (dims.empty() ? "" : "x") + std::to_string(array.shape[d]);
  }
  if (width != input.width)
    return Status::error(where + " has " + (dims.empty() ? "1" : dims) +
                         " values per example, but input '" + input.name +
                         "' (" + input.shape + ") takes " +
                         std::to_string(input.width));
  if (isFloat(array.dtype) && !isFloat(input.dtype))
    return Status::error(where + " holds " + dtypeName(array.dtype) +
                         " values, but input '" + input.name + "' (" +
                         input.shape + ") takes integers");
  InputColumn column;
  column.input = input.name;
  column.source = source + ": " + array.name;
  column.dtype = array.dtype;
  column.width = width;
  column.values = std::move(array.bytes);
  return column;
}

StatusOr<InputData> loadFiles(const std::string &spec,
                              const std::vector<InputSpec> &inputs) {
  // NAME=FILE pairs, or one file holding every input's array.
  std::map<std::string, std::string> files; // input -> file
  bool pairs = spec.find('=') != std::string::npos;
  if (pairs) {
    for (size_t at = 0; at <= spec.size();) {
      size_t comma = spec.find(',', at);
      std::string item = spec.substr(
          at, (comma == std::string::npos ? spec.size() : comma) - at);
      size_t eq = item.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
        return Status::error("'" + spec +
                             "': expected NAME=FILE pairs separated by "
                             "commas, got '" +
                             item + "'");
      std::string name = item.substr(0, eq);
      if (std::none_of(inputs.begin(), inputs.end(),
                       [&](const InputSpec &in) { return in.name == name; }))
        return Status::error("'" + item + "': the model has no input '" + name +
                             "' (its inputs: " + inputList(inputs) + ")");
      files[name] = item.substr(eq + 1);
      if (comma == std::string::npos)
        break;
      at = comma + 1;
    }
  }
  InputData data;
  std::map<std::string, std::vector<Array>> read; // file -> arrays
  for (const InputSpec &input : inputs) {
    std::string file = pairs ? "" : spec;
    if (pairs) {
      auto it = files.find(input.name);
      if (it == files.end())
        return Status::error("'" + spec + "' gives no file for input '" +
                             input.name + "' (" + input.shape + ")");
      file = it->second;
    }
    if (!read.count(file)) {
      auto arrays = readArrays(file);
      if (!arrays.ok())
        return arrays.status();
      read[file] = std::move(*arrays);
    }
    std::vector<Array> &arrays = read[file];
    Array *array = nullptr;
    if (pairs) {
      if (arrays.size() != 1)
        return Status::error(file + ": holds " + std::to_string(arrays.size()) +
                             " arrays; NAME=FILE takes a file of one (.npy "
                             "or IDX)");
      array = &arrays[0];
    } else {
      for (Array &a : arrays)
        if (a.name == input.name)
          array = &a;
      if (!array) {
        std::string names;
        for (const Array &a : arrays)
          names += (names.empty() ? "" : ", ") + a.name;
        return Status::error(file + ": no array '" + input.name +
                             "' for the model's input '" + input.name + "' (" +
                             input.shape + "); it holds " + names);
      }
    }
    auto column = columnOf(*array, file, input);
    if (!column.ok())
      return column.status();
    int64_t count = array->shape[0];
    if (!data.columns.empty() && count != data.count)
      return Status::error(column->source + " holds " + std::to_string(count) +
                           " examples, but " + data.columns.front().source +
                           " holds " + std::to_string(data.count));
    data.count = count;
    data.columns.push_back(std::move(*column));
  }
  return data;
}

} // namespace

StatusOr<InputData>
kiln::runtime::loadInputData(const std::string &spec, bool test,
                             const std::vector<InputSpec> &inputs) {
  if (isDataDirectory(spec))
    return loadDirectory(spec, test, inputs);
  return loadFiles(spec, inputs);
}

void kiln::runtime::normalizePixels(InputData &train, InputData &test,
                                    const std::vector<InputSpec> &inputs) {
  for (InputColumn &column : train.columns) {
    auto input = std::find_if(inputs.begin(), inputs.end(), [&](auto &in) {
      return in.name == column.input;
    });
    if (column.dtype != DType::U8 || input == inputs.end() ||
        !isFloat(input->dtype))
      continue;
    // Sums of bytes, exact in 64-bit integers.
    uint64_t sum = 0, squares = 0;
    for (uint8_t v : column.values) {
      sum += v;
      squares += uint64_t(v) * v;
    }
    double n = std::max<double>(1, double(column.values.size()));
    double mean = double(sum) / n / 255.0;
    double variance = double(squares) / n / (255.0 * 255.0) - mean * mean;
    column.mean = float(mean);
    column.stddev = float(std::sqrt(std::max(variance, 0.0)));
    if (!(column.stddev > 0))
      column.stddev = 1;
    for (InputColumn &other : test.columns)
      if (other.input == column.input && other.dtype == DType::U8) {
        other.mean = column.mean;
        other.stddev = column.stddev;
      }
  }
}
