//===- Status.h - success, or an error with a message -----------*- C++ -*-===//
//
// How the runtime reports failure. The runtime builds with -fno-exceptions
// and without LLVM, so a fallible function returns a Status (success, or an
// error carrying a message for a person) or a StatusOr<T> (a value, or the
// error that explains why there is none). Both are [[nodiscard]].
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_STATUS_H
#define KILN_RUNTIME_STATUS_H

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace kiln::runtime {

/// Success, or an error with a message such as
/// "train.gz: truncated header: expected 16 bytes, got 9".
class [[nodiscard]] Status {
public:
  /// Success.
  Status() = default;

  /// Success; reads better than `Status()` in a return statement.
  static Status success() { return Status(); }

  /// An error described by `message`.
  static Status error(std::string message) {
    Status status;
    status.failed = true;
    status.text = std::move(message);
    return status;
  }

  /// True on success.
  bool ok() const { return !failed; }

  /// The error message; empty on success.
  const std::string &message() const { return text; }

private:
  bool failed = false;
  std::string text;
};

/// A value of type T, or the error Status that explains why there is none.
template <typename T> class [[nodiscard]] StatusOr {
public:
  /// Holds `value`.
  StatusOr(T value) : storage(std::move(value)) {}

  /// Holds the error `error`, which must not be success.
  StatusOr(Status error) : errorStatus(std::move(error)) {
    assert(!errorStatus.ok() && "a StatusOr needs a value or an error");
    if (errorStatus.ok())
      errorStatus = Status::error("internal error: StatusOr without a value");
  }

  /// True when a value is held.
  bool ok() const { return storage.has_value(); }

  /// Success when a value is held, the error otherwise.
  const Status &status() const { return errorStatus; }

  /// The held value; only valid when ok().
  T &value() & {
    assert(ok() && "value() of an error StatusOr");
    return *storage;
  }
  const T &value() const & {
    assert(ok() && "value() of an error StatusOr");
    return *storage;
  }
  T &&value() && {
    assert(ok() && "value() of an error StatusOr");
    return std::move(*storage);
  }

  T &operator*() & { return value(); }
  const T &operator*() const & { return value(); }
  T *operator->() { return &value(); }
  const T *operator->() const { return &value(); }

private:
  std::optional<T> storage;
  Status errorStatus; // success whenever storage holds a value
};

} // namespace kiln::runtime

#endif // KILN_RUNTIME_STATUS_H
