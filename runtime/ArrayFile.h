//===- ArrayFile.h - named arrays from NumPy, safetensors and IDX files -*- C++
//-*-===//
//
// Reads the files people keep training data in, as named arrays:
//
//   .npy          one NumPy array (format versions 1 to 3; little-endian
//                 or byte-sized uint8, int32, int64, float32, float64; C
//                 order), named after the file's stem;
//   .npz          NumPy's zip of .npy arrays (stored or deflated), each
//                 named as its member without `.npy` (np.savez(x=..., ...));
//   .safetensors  every tensor (U8, I32, I64, F32, F64) by its name;
//   IDX           anything else: an IDX file (MNIST's format, gzipped or
//                 plain) of unsigned bytes, any rank, named after the
//                 file's stem.
//
// Errors name the file and what is wrong with it (a truncated array, an
// unsupported dtype, a Fortran-order array, a corrupt zip member).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_ARRAYFILE_H
#define KILN_RUNTIME_ARRAYFILE_H

#include "runtime/Safetensors.h"
#include "runtime/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::runtime {

/// One array: `bytes` holds product(shape) little-endian elements of
/// `dtype`, row-major.
struct Array {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;

  int64_t elements() const;
};

/// Every array in the file at `path`, in the file's order; the format is
/// chosen by the file name's extension (.npy, .npz, .safetensors, else
/// IDX).
StatusOr<std::vector<Array>> readArrays(const std::string &path);

} // namespace kiln::runtime

#endif // KILN_RUNTIME_ARRAYFILE_H
