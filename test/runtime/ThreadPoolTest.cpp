//===- ThreadPoolTest.cpp - the CPU kernels' parallel loops ---------------===//
//
// Every task runs exactly once, on the thread the partition gives it (the
// t-th of threads() contiguous ranges), loop after loop; one thread, or
// fewer tasks than threads, run on the caller.
//
//===----------------------------------------------------------------------===//

#include "runtime/ThreadPool.h"

#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>

using namespace kiln::runtime;

namespace {

struct Record {
  std::mutex mutex;
  std::vector<int> runs;                               // per task
  std::vector<std::pair<long long, long long>> ranges; // as handed out
  std::set<std::thread::id> threads;
};

void recordTasks(void *context, long long begin, long long end) {
  auto *record = static_cast<Record *>(context);
  std::lock_guard<std::mutex> lock(record->mutex);
  record->ranges.push_back({begin, end});
  record->threads.insert(std::this_thread::get_id());
  for (long long t = begin; t < end; ++t)
    ++record->runs[static_cast<size_t>(t)];
}

} // namespace

TEST(ThreadPool, EveryTaskRunsOnceInContiguousRanges) {
  for (int threads : {1, 2, 3, 7}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.threads(), threads);
    for (long long tasks : {0LL, 1LL, 2LL, 5LL, 7LL, 100LL, 1001LL}) {
      Record record;
      record.runs.assign(static_cast<size_t>(tasks), 0);
      pool.parallelFor(tasks, recordTasks, &record);
      for (long long t = 0; t < tasks; ++t)
        EXPECT_EQ(record.runs[static_cast<size_t>(t)], 1)
            << threads << " threads, " << tasks << " tasks, task " << t;
      // The ranges are the partition's: [tasks * t / T, tasks * (t+1) / T).
      std::set<std::pair<long long, long long>> expected;
      for (int t = 0; t < threads && tasks > 1; ++t)
        if (tasks * t / threads < tasks * (t + 1) / threads)
          expected.insert({tasks * t / threads, tasks * (t + 1) / threads});
      if (tasks == 1)
        expected.insert({0, 1});
      std::set<std::pair<long long, long long>> got(record.ranges.begin(),
                                                    record.ranges.end());
      EXPECT_EQ(got, expected) << threads << " threads, " << tasks << " tasks";
      if (tasks <= 1)
        EXPECT_LE(record.threads.size(), 1u);
      else
        EXPECT_EQ(record.threads.size(),
                  static_cast<size_t>(std::min<long long>(threads, tasks)));
    }
  }
}

TEST(ThreadPool, ManyLoopsInARow) {
  ThreadPool pool(3);
  Record record;
  record.runs.assign(10, 0);
  for (int loop = 0; loop < 20000; ++loop)
    pool.parallelFor(10, recordTasks, &record);
  for (int runs : record.runs)
    EXPECT_EQ(runs, 20000);
}

TEST(ThreadPool, DefaultThreadsIsPositive) { EXPECT_GE(defaultThreads(), 1); }
