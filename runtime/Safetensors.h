//===- Safetensors.h - checkpoints in the safetensors format ----*- C++ -*-===//
//
// Reads and writes the safetensors format (https://github.com/huggingface/
// safetensors), so checkpoints load in PyTorch with
// safetensors.torch.load_file:
//
//   u64 N (little-endian) | N bytes of JSON header | data buffer
//
// The header maps each tensor name to {"dtype", "shape", "data_offsets":
// [begin, end]} (offsets relative to the data buffer) and may carry string
// metadata under "__metadata__". Tensor data is little-endian and packed
// without gaps. Reading validates everything the format promises and
// reports the first violation; writing is atomic.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_SAFETENSORS_H
#define KILN_RUNTIME_SAFETENSORS_H

#include "runtime/Status.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::runtime {

/// Element types kiln stores; spelled "F32", "F64", "I32", "I64", "U8" in
/// files. (U8 is a data set's type: unsigned bytes, as images come; no
/// model tensor has it.)
enum class DType { F32, F64, I32, I64, U8 };

/// Bytes per element of `dtype`.
int64_t dtypeSize(DType dtype);

/// Whether `dtype` is a floating-point type.
inline bool isFloat(DType dtype) {
  return dtype == DType::F32 || dtype == DType::F64;
}

/// The safetensors spelling of `dtype`, e.g. "F32".
const char *dtypeName(DType dtype);

/// The DType spelled `name` in safetensors, if kiln supports it.
std::optional<DType> parseDType(std::string_view name);

/// The value of element `index` of a tensor of `dtype` at `data`, as a
/// double (exact but for 64-bit integers beyond 2^53).
double elementAsDouble(const void *data, DType dtype, size_t index);

/// Stores `value` as element `index` of a tensor of `dtype` at `data`,
/// converted as static_cast converts it.
void storeElement(void *data, DType dtype, size_t index, double value);

/// One named tensor: `bytes` holds product(shape) little-endian elements
/// of `dtype`, row-major. A scalar has an empty shape and one element.
struct TensorData {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

/// The contents of a safetensors file.
struct Checkpoint {
  std::vector<TensorData> tensors;
  std::map<std::string, std::string> metadata; ///< the "__metadata__" object
};

/// Which arguments of a training step a checkpoint holds, by their role
/// (Program.h): the parameters and the optimizer state; not the inputs nor
/// the hyper-parameters (the learning rate), which a fresh start and a
/// resumed run alike take from the command line or the compiled defaults.
inline bool isCheckpointed(std::string_view role) {
  return role == "param" || role == "state";
}

/// A checkpointed argument's tensor name: a parameter's own name, optimizer
/// state under "optimizer.<name>" (the trainers and `kiln train` agree).
inline std::string checkpointName(std::string_view role,
                                  std::string_view name) {
  return (role == "state" ? "optimizer." : "") + std::string(name);
}

/// Writes `checkpoint` to `path` atomically: the bytes go to a temporary
/// file in the same directory, which is flushed to disk and then renamed over
/// `path`; the directory is synced last. On failure the temporary file is
/// removed and an existing file at `path` is left untouched.
///
/// Tensors are written in the order of checkpoint.tensors (header entries
/// and data alike), with "__metadata__" first in the header and left out
/// when empty. Names must be unique, non-empty valid UTF-8 and not
/// "__metadata__"; each tensor's byte size must match its shape and dtype.
Status writeSafetensors(const std::string &path, const Checkpoint &checkpoint);

/// The exact bytes writeSafetensors writes for `checkpoint`, or why it
/// cannot be written.
StatusOr<std::vector<uint8_t>>
serializeSafetensors(const Checkpoint &checkpoint);

/// Reads a safetensors file. Tensors come back in data-buffer order, which
/// is the order they were written in by writeSafetensors. Fails with a
/// message naming the file on: a missing file, a file shorter than 8 bytes,
/// a header length beyond the file or above 100 MB, invalid JSON (with the
/// byte offset in the header), an unknown dtype, a byte size that does not
/// match shape and dtype, offsets out of range, overlapping or leaving gaps,
/// and bytes after the last tensor.
StatusOr<Checkpoint> readSafetensors(const std::string &path);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_SAFETENSORS_H
