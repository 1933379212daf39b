//===- Progress.h - a trainer's progress bar --------------------*- C++ -*-===//
//
// One line on standard error, redrawn in place at most ten times a second
// while an epoch runs, when standard error is a terminal (nothing
// otherwise): the epoch, a bar, the examples done, the running loss, the
// rate and the time left.
//
//===----------------------------------------------------------------------===//

#ifndef KILN_RUNTIME_PROGRESS_H
#define KILN_RUNTIME_PROGRESS_H

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace kiln::runtime {

/// The progress bar, redrawn in place when standard error is a terminal.
class Progress {
public:
  Progress(int64_t epoch, int64_t epochs, int64_t total,
           const char *unit = "samples")
      : epoch(epoch), epochs(epochs), total(total), unit(unit),
        enabled(::isatty(STDERR_FILENO)) {}

  void update(int64_t done, double loss, int64_t samples, double seconds) {
    if (!enabled ||
        (done != total &&
         std::chrono::duration<double>(Clock::now() - last).count() < 0.1))
      return;
    last = Clock::now();
    constexpr int kWidth = 30;
    int filled = static_cast<int>(kWidth * done / std::max<int64_t>(total, 1));
    double rate = samples / std::max(seconds, 1e-9);
    double left = (total - done) * (seconds / std::max<int64_t>(done, 1));
    std::fprintf(stderr,
                 "\repoch %lld/%lld [%s%s] %lld/%lld loss %.4f %.0f "
                 "%s/s %.0fs left ",
                 (long long)epoch, (long long)epochs,
                 std::string(filled, '=').c_str(),
                 std::string(kWidth - filled, ' ').c_str(), (long long)done,
                 (long long)total, loss, rate, unit, left);
    if (done == total)
      std::fprintf(stderr, "\r%s\r", std::string(100, ' ').c_str());
    std::fflush(stderr);
  }

private:
  using Clock = std::chrono::steady_clock;
  int64_t epoch, epochs, total;
  const char *unit;
  bool enabled;
  Clock::time_point last = Clock::now() - std::chrono::seconds(1);
};

} // namespace kiln::runtime

#endif // KILN_RUNTIME_PROGRESS_H
