//===- AtomicFile.cpp - replace a file atomically -------------------------===//
//
// Temporary file, write, fsync, rename, fsync of the directory: the
// sequence that keeps the old file intact until the new one is complete and
// on disk, on every POSIX file system.
//
//===----------------------------------------------------------------------===//

#include "runtime/AtomicFile.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

using namespace kiln::runtime;

namespace {

/// Writes all of `data` to `fd`, retrying short writes.
bool writeAll(int fd, const void *data, size_t size) {
  const uint8_t *bytes = static_cast<const uint8_t *>(data);
  while (size > 0) {
    ssize_t written = ::write(fd, bytes, size);
    if (written < 0 && errno == EINTR)
      continue;
    if (written <= 0)
      return false;
    bytes += written;
    size -= size_t(written);
  }
  return true;
}

std::string parentDirectory(const std::string &path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  if (slash == 0)
    return "/";
  return path.substr(0, slash);
}

} // namespace

Status kiln::runtime::writeFileAtomically(
    const std::string &path,
    const std::vector<std::span<const uint8_t>> &pieces) {
  // Create a fresh temporary file next to `path`, so that rename() is atomic.
  // open() with mode 0666 honours the umask, unlike mkstemp's 0600.
  static std::atomic<uint64_t> counter{0};
  std::string temp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    temp = path + ".tmp." + std::to_string(::getpid()) + "." +
           std::to_string(counter++);
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && (errno != EEXIST || attempt == 100))
      return Status::error(path + ": cannot create temporary file " + temp +
                           ": " + std::strerror(errno));
  }
  auto fail = [&](const std::string &what) {
    int error = errno;
    if (fd >= 0)
      ::close(fd);
    ::unlink(temp.c_str());
    return Status::error(path + ": " + what + ": " + std::strerror(error));
  };

  // write() is unbuffered, so fsync() alone makes the data durable.
  for (std::span<const uint8_t> piece : pieces)
    if (!writeAll(fd, piece.data(), piece.size()))
      return fail("cannot write " + temp);
  if (::fsync(fd) != 0)
    return fail("cannot sync " + temp);
  int closed = ::close(fd);
  fd = -1;
  if (closed != 0)
    return fail("cannot close " + temp);
  if (::rename(temp.c_str(), path.c_str()) != 0)
    return fail("cannot rename " + temp + " over it");

  // Make the rename itself durable. Some file systems cannot sync a
  // directory (EINVAL); the file is in place either way.
  std::string dir = parentDirectory(path);
  int dirFd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd < 0)
    return Status::error(path + ": written, but cannot open directory " + dir +
                         " to sync it: " + std::strerror(errno));
  int synced = ::fsync(dirFd);
  int syncError = errno;
  ::close(dirFd);
  if (synced != 0 && syncError != EINVAL)
    return Status::error(path + ": written, but cannot sync directory " + dir +
                         ": " + std::strerror(syncError));
  return Status::success();
}
