//===- ArrayFileTest.cpp - named arrays from .npy, .npz, IDX, safetensors -===//

#include "runtime/ArrayFile.h"

#include "TempDir.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>

using namespace kiln::runtime;
using kiln::runtime::testing::bytesOf;
using kiln::runtime::testing::TempDir;
using kiln::runtime::testing::writeFile;

namespace {

/// A .npy file of format `version` (1: a 2-byte header length, 2: 4 bytes).
std::vector<uint8_t> npy(const std::string &header,
                         const std::vector<uint8_t> &data, int version = 1) {
  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', uint8_t(version),
                              0};
  size_t length = header.size();
  for (int i = 0; i < (version == 1 ? 2 : 4); ++i)
    out.push_back(uint8_t(length >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

template <typename T> std::vector<uint8_t> raw(std::initializer_list<T> v) {
  std::vector<uint8_t> out(v.size() * sizeof(T));
  std::memcpy(out.data(), std::data(v), out.size());
  return out;
}

std::string errorOf(const std::string &path) {
  auto read = readArrays(path);
  return read.ok() ? "" : read.status().message();
}

TEST(ArrayFileTest, ReadsNpyOfEachDtypeAndVersion) {
  TempDir dir;
  writeFile(dir.path("w.npy"),
            npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                raw<float>({1, 2, 3, 4, 5, 6.5f})));
  auto w = readArrays(dir.path("w.npy"));
  ASSERT_TRUE(w.ok()) << w.status().message();
  ASSERT_EQ(w->size(), 1u);
  EXPECT_EQ((*w)[0].name, "w");
  EXPECT_EQ((*w)[0].dtype, DType::F32);
  EXPECT_EQ((*w)[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(elementAsDouble((*w)[0].bytes.data(), DType::F32, 5), 6.5);

  // Version 2 (a 4-byte header length), a 1-d shape written `(4,)`, bytes.
  writeFile(dir.path("b.npy"),
            npy("{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }",
                {7, 8, 9, 255}, 2));
  auto b = readArrays(dir.path("b.npy"));
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ((*b)[0].dtype, DType::U8);
  EXPECT_EQ((*b)[0].shape, std::vector<int64_t>{4});
  EXPECT_EQ((*b)[0].bytes, (std::vector<uint8_t>{7, 8, 9, 255}));

  writeFile(dir.path("l.npy"),
            npy("{'descr': '<i8', 'fortran_order': False, 'shape': (), }",
                raw<int64_t>({-3})));
  auto l = readArrays(dir.path("l.npy"));
  ASSERT_TRUE(l.ok()) << l.status().message();
  EXPECT_EQ((*l)[0].dtype, DType::I64);
  EXPECT_TRUE((*l)[0].shape.empty());
  EXPECT_EQ(elementAsDouble((*l)[0].bytes.data(), DType::I64, 0), -3);
}

TEST(ArrayFileTest, NpyErrorsNameTheFile) {
  TempDir dir;
  std::string path = dir.path("x.npy");
  writeFile(path, bytesOf("not numpy at all"));
  EXPECT_NE(errorOf(path).find("x.npy: not a .npy array"), std::string::npos)
      << errorOf(path);
  writeFile(path,
            npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
                raw<float>({1})));
  EXPECT_NE(errorOf(path).find("x.npy: dtype '>f4'"), std::string::npos)
      << errorOf(path);
  writeFile(path,
            npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                raw<float>({1, 2, 3})));
  EXPECT_NE(errorOf(path).find("x.npy: 4 unexpected bytes after the data"),
            std::string::npos)
      << errorOf(path);
  writeFile(path,
            npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }",
                raw<float>({1, 2})));
  EXPECT_NE(errorOf(path).find("x.npy: bad shape (2, x)"), std::string::npos)
      << errorOf(path);
  EXPECT_NE(errorOf(dir.path("none.npy")).find("none.npy: cannot open"),
            std::string::npos);
}

TEST(ArrayFileTest, ReadsIdxOfAnyRankAndElementType) {
  TempDir dir;
  // Float32, big-endian, [2, 2], gzipped.
  std::vector<uint8_t> idx = {0, 0, 0x0D, 2, 0, 0, 0, 2, 0, 0, 0, 2};
  for (float v : {1.0f, -2.0f, 0.5f, 3.0f}) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    for (int i = 3; i >= 0; --i)
      idx.push_back(uint8_t(bits >> (8 * i)));
  }
  gzFile out = gzopen(dir.path("f-idx2.gz").c_str(), "wb");
  ASSERT_NE(out, nullptr);
  gzwrite(out, idx.data(), unsigned(idx.size()));
  gzclose(out);
  auto f = readArrays(dir.path("f-idx2.gz"));
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ((*f)[0].name, "f-idx2");
  EXPECT_EQ((*f)[0].dtype, DType::F32);
  EXPECT_EQ((*f)[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(elementAsDouble((*f)[0].bytes.data(), DType::F32, 1), -2.0);
  EXPECT_EQ(elementAsDouble((*f)[0].bytes.data(), DType::F32, 3), 3.0);

  // Bytes of rank 3, plain.
  writeFile(dir.path("u"),
            {0, 0, 0x08, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 4, 5});
  auto u = readArrays(dir.path("u"));
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ((*u)[0].shape, (std::vector<int64_t>{1, 2, 1}));
  EXPECT_EQ((*u)[0].bytes, (std::vector<uint8_t>{4, 5}));

  writeFile(dir.path("s"), {0, 0, 0x0B, 1, 0, 0, 0, 1, 0, 1});
  EXPECT_NE(errorOf(dir.path("s")).find("IDX element type 0x0b"),
            std::string::npos)
      << errorOf(dir.path("s"));
  writeFile(dir.path("t"), {0, 0, 0x08, 1, 0, 0, 0, 3, 1});
  EXPECT_NE(
      errorOf(dir.path("t")).find("truncated data: expected 3 bytes, got 1"),
      std::string::npos)
      << errorOf(dir.path("t"));
}

TEST(ArrayFileTest, ReadsSafetensorsWithBytes) {
  TempDir dir;
  Checkpoint data;
  data.tensors.push_back({"x", DType::U8, {2, 2}, {1, 2, 3, 4}});
  data.tensors.push_back({"label", DType::I64, {2}, raw<int64_t>({0, 9})});
  ASSERT_TRUE(writeSafetensors(dir.path("d.safetensors"), data).ok());
  auto read = readArrays(dir.path("d.safetensors"));
  ASSERT_TRUE(read.ok()) << read.status().message();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].name, "x");
  EXPECT_EQ((*read)[0].dtype, DType::U8);
  EXPECT_EQ((*read)[0].bytes, (std::vector<uint8_t>{1, 2, 3, 4}));
  EXPECT_EQ((*read)[1].name, "label");
  EXPECT_EQ(elementAsDouble((*read)[1].bytes.data(), DType::I64, 1), 9);
}

} // namespace
