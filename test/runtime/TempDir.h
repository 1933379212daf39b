//===- TempDir.h - scratch directories for runtime tests --------*- C++ -*-===//
//
// A fresh directory per test, removed with its contents afterwards, plus
// small file helpers.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_TEST_RUNTIME_TEMPDIR_H
#define KILN_TEST_RUNTIME_TEMPDIR_H

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace kiln::runtime::testing {

/// A unique directory under the system temp directory, deleted on
/// destruction.
class TempDir {
public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "kiln-runtime-XXXXXX")
            .string();
    char *made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr) << "cannot create a temporary directory";
    dir = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }

  /// The path of `name` inside the directory.
  std::string path(const std::string &name) const { return dir + "/" + name; }

  /// The names of the files in the directory, sorted.
  std::vector<std::string> list() const {
    std::vector<std::string> names;
    std::error_code error;
    for (const auto &entry : std::filesystem::directory_iterator(dir, error))
      names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string dir;
};

/// The bytes of `text`.
inline std::vector<uint8_t> bytesOf(const std::string &text) {
  return std::vector<uint8_t>(text.begin(), text.end());
}

inline void writeFile(const std::string &path,
                      const std::vector<uint8_t> &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char *>(bytes.data()),
            std::streamsize(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

inline std::vector<uint8_t> readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in),
                              std::istreambuf_iterator<char>());
}

} // namespace kiln::runtime::testing

#endif // KILN_TEST_RUNTIME_TEMPDIR_H
