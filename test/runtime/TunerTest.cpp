//===- TunerTest.cpp - kernel records and the tuner's choices -------------===//
//
// The program's kernel records (their text form), and the tuner against a
// device whose timings the test sets: which schedule it keeps (the fastest,
// the compiler's within the margin, none that fails to launch), the cache
// (written when tuned, read back by a second run, ignored for other sizes),
// the time budget, and the launches rewritten to the chosen candidates.
//
//===----------------------------------------------------------------------===//

#include "runtime/Tuner.h"

#include "TempDir.h"

#include <gtest/gtest.h>

#include <map>

using namespace kiln::runtime;
using kiln::runtime::testing::TempDir;

namespace {

const char *kProgram = R"(kiln-program 1
model tiny
step train tiny_train_step arena 4096 max-batch 64
arg input x F32 b,16
launch mm grid 4,1,1 block 256,1,1 shared 0 seed 0 dims b buffers a0 @0
launch add grid d0/256,1,1 block 256,1,1 shared 0 seed 0 dims 16*b buffers @0 @1024
launch mm grid 4,1,1 block 256,1,1 shared 0 seed 0 dims b buffers @1024 @2048
result loss loss F32 - @2048
end
kernel mm keys mm@00000000000000aa,mm@00000000000000bb source tiny.kiln:3,4
schedule cuda #kiln.gemm<bm = 64, bn = 64, bk = 8, tm = 4, tn = 4, split_k = 1>
schedule cpu #kiln.cpu_gemm<mr = 6, nr = 64>
candidate cuda mm__cuda1 grid d0/32,2,1 block 128,1,1 shared 1024 schedule #kiln.gemm<bm = 32, bn = 32, bk = 8, tm = 2, tn = 4, split_k = 1>
candidate cpu mm__cpu1 grid 1,1,1 block 1,1,1 shared 0 schedule #kiln.cpu_gemm<mr = 4, nr = 32>
candidate cpu mm__cpu2 grid 1,1,1 block 1,1,1 shared 0 schedule #kiln.cpu_gemm<mr = 8, nr = 32>
end
kernel add keys add@00000000000000cc source -
schedule cuda #kiln.elementwise<block = 256>
end
)";

const char *kCandidates = "// preamble\n"
                          "//--- kiln kernel\nvoid mm__cpu1(int) {}\n"
                          "//--- kiln kernel\nvoid mm__cpu2(int) {}\n";

/// A device whose kernels take the milliseconds the test gives, by symbol
/// ("" for the compiled kernels); a symbol it lacks fails to launch.
class FakeTarget : public TuneTarget {
public:
  std::map<std::string, double> ms;
  std::string loaded;
  int timings = 0, loads = 0;

  std::string target() const override { return "cpu"; }
  std::string identity() const override { return "fake cpu"; }
  Status load(const std::string &source) override {
    loaded = source;
    ++loads;
    return Status::success();
  }
  StatusOr<double> time(const std::vector<size_t> &launches,
                        const KernelCandidate *variant) override {
    ++timings;
    auto it = ms.find(variant ? variant->symbol : "");
    if (it == ms.end())
      return Status::error("too many resources requested for launch");
    return it->second * double(launches.size());
  }
};

Program parsed(const char *text = kProgram) {
  auto program = parseProgram(text, "tiny.program");
  EXPECT_TRUE(program.ok()) << program.status().message();
  return program.ok() ? *program : Program();
}

TEST(TunerTest, KernelRecordsPrintBackTheSameText) {
  Program program = parsed();
  EXPECT_EQ(printProgram(program), kProgram);
  const KernelInfo *mm = program.kernel("mm");
  ASSERT_TRUE(mm);
  EXPECT_EQ(mm->keys, (std::vector<std::string>{"mm@00000000000000aa",
                                                "mm@00000000000000bb"}));
  EXPECT_EQ(mm->source, "tiny.kiln:3,4");
  EXPECT_EQ(mm->schedule("cpu"), "#kiln.cpu_gemm<mr = 6, nr = 64>");
  ASSERT_EQ(mm->candidates.size(), 3u);
  EXPECT_EQ(mm->candidates[0].grid[0].perBlock, 32);
  EXPECT_EQ(mm->candidates[0].sharedBytes, 1024u);
  EXPECT_EQ(program.kernel("add")->source, "");
  EXPECT_EQ(program.kernel("nothing"), nullptr);
}

TEST(TunerTest, KernelRecordErrorsNameTheLine) {
  auto expectError = [](const std::string &records,
                        const std::string &message) {
    auto program = parseProgram("kiln-program 1\n" + records, "bad.program");
    ASSERT_FALSE(program.ok());
    EXPECT_NE(program.status().message().find(message), std::string::npos)
        << program.status().message();
  };
  expectError("kernel k keys - source -\nschedule gpu #x\nend\n",
              "bad.program:3: unknown target 'gpu'");
  expectError("kernel k keys - source -\n", "kernel 'k' has no 'end'");
  expectError("kernel k keys - source -\nlaunch k\nend\n",
              "bad.program:3: unknown record 'launch' in a kernel");
  expectError("kernel k keys - source -\ncandidate cpu k1 grid 1,1,1 block "
              "1,1,1 shared 0\nend\n",
              "bad.program:3: expected schedule");
  expectError("kernel k keys - source -\nend\nkernel k keys - source -\nend\n",
              "kernel 'k' has two records");
  // A candidate's grid formula must name dims its launches have.
  expectError("step train f arena 8\nlaunch k grid 1,1,1 block 1,1,1 shared "
              "0 seed 0 dims - buffers\nend\nkernel k keys - source -\n"
              "candidate cuda k1 grid d0/4,1,1 block 1,1,1 shared 0 schedule "
              "#s\nend\n",
              "kernel 'k' has a grid factor d0 beyond its dims");
}

TEST(TunerTest, KeepsTheFastestAndCachesIt) {
  Program program = parsed();
  ASSERT_TRUE(bindBatch(program, "train", 32).ok());
  TempDir dir;
  FakeTarget device;
  device.ms = {{"", 2.0}, {"mm__cpu1", 1.0}, {"mm__cpu2", 1.5}};
  TuneOptions options;
  options.cacheDir = dir.dir;
  auto report =
      tuneStep(program, *program.step("train"), kCandidates, device, options);
  ASSERT_TRUE(report.ok()) << report.status().message();
  // Only mm has cpu candidates: both its launches timed per variant.
  ASSERT_EQ(report->kernels.size(), 1u);
  const TunedKernel &mm = report->kernels[0];
  EXPECT_EQ(mm.source, TunedKernel::Source::tuned);
  EXPECT_EQ(mm.candidate, 1);
  EXPECT_EQ(mm.schedule, "#kiln.cpu_gemm<mr = 4, nr = 32>");
  EXPECT_EQ(mm.heuristicMs, 4.0);
  EXPECT_EQ(mm.tunedMs, 2.0);
  EXPECT_EQ(device.timings, 3);
  EXPECT_NE(device.loaded.find("mm__cpu1("), std::string::npos);
  EXPECT_EQ(device.loaded.find("// preamble"), 0u);
  EXPECT_EQ(tunedSchedules(program, *report),
            "# kiln schedules tuned on cpu: KERNEL@HASH TARGET = SCHEDULE "
            "(kiln compile --schedules FILE)\n"
            "mm@00000000000000aa cpu = #kiln.cpu_gemm<mr = 4, nr = 32>\n"
            "mm@00000000000000bb cpu = #kiln.cpu_gemm<mr = 4, nr = 32>\n");
  EXPECT_EQ(chosenSource(program, *report, kCandidates),
            "// preamble\n//--- kiln kernel\nvoid mm__cpu1(int) {}\n");

  // A second run reads the choice without timing or compiling anything.
  FakeTarget again;
  auto cached =
      tuneStep(program, *program.step("train"), kCandidates, again, options);
  ASSERT_TRUE(cached.ok()) << cached.status().message();
  EXPECT_EQ(cached->kernels[0].source, TunedKernel::Source::cache);
  EXPECT_EQ(cached->kernels[0].candidate, 1);
  EXPECT_EQ(cached->kernels[0].tunedMs, 2.0);
  EXPECT_EQ(again.timings, 0);
  EXPECT_EQ(again.loaded, "");

  // Other sizes are another entry: tuned anew.
  Program other = parsed();
  ASSERT_TRUE(bindBatch(other, "train", 64).ok());
  FakeTarget bigger;
  bigger.ms = {{"", 1.0}, {"mm__cpu1", 3.0}, {"mm__cpu2", 3.0}};
  auto retuned =
      tuneStep(other, *other.step("train"), kCandidates, bigger, options);
  ASSERT_TRUE(retuned.ok());
  EXPECT_EQ(retuned->kernels[0].source, TunedKernel::Source::tuned);
  EXPECT_EQ(retuned->kernels[0].candidate, -1);
}

TEST(TunerTest, KeepsTheCompilersScheduleWithinTheMargin) {
  Program program = parsed();
  ASSERT_TRUE(bindBatch(program, "train", 32).ok());
  FakeTarget device;
  // 1% faster is noise; a candidate that cannot launch is no choice.
  device.ms = {{"", 1.0}, {"mm__cpu2", 0.99}};
  auto report =
      tuneStep(program, *program.step("train"), kCandidates, device, {});
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->kernels[0].candidate, -1);
  EXPECT_EQ(report->kernels[0].schedule, "#kiln.cpu_gemm<mr = 6, nr = 64>");
  EXPECT_EQ(chosenSource(program, *report, kCandidates), "");
}

TEST(TunerTest, ABudgetSpentLeavesKernelsAsCompiledAndUncached) {
  Program program = parsed();
  ASSERT_TRUE(bindBatch(program, "train", 32).ok());
  TempDir dir;
  FakeTarget device;
  device.ms = {{"", 2.0}, {"mm__cpu1", 1.0}};
  TuneOptions options;
  options.cacheDir = dir.dir;
  options.budgetSeconds = 0;
  auto report =
      tuneStep(program, *program.step("train"), kCandidates, device, options);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->kernels[0].source, TunedKernel::Source::untuned);
  EXPECT_EQ(report->kernels[0].candidate, -1);
  EXPECT_EQ(device.timings, 0);
  EXPECT_EQ(device.loaded, "");
  EXPECT_EQ(tunedSchedules(program, *report).find("mm@"), std::string::npos);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path("tuning")));
}

TEST(TunerTest, CompilesCandidatesAFewKernelsAtATime) {
  // Twelve kernels of 7 candidates: 84 kernels to compile, in two loads.
  std::string text = "kiln-program 1\nmodel many\nstep train f arena 8\n";
  std::string records, source = "// preamble\n";
  for (int k = 0; k < 12; ++k) {
    std::string name = "k" + std::to_string(k);
    text += "launch " + name +
            " grid 1,1,1 block 1,1,1 shared 0 seed 0 dims - buffers\n";
    records += "kernel " + name + " keys " + name + "@0 source -\n" +
               "schedule cpu #kiln.cpu_gemm<mr = 6, nr = 64>\n";
    for (int c = 1; c <= 7; ++c) {
      std::string symbol = name + "__cpu" + std::to_string(c);
      records += "candidate cpu " + symbol +
                 " grid 1,1,1 block 1,1,1 shared 0 schedule #c" +
                 std::to_string(c) + "\n";
      source += "//--- kiln kernel\nvoid " + symbol + "() {}\n";
    }
    records += "end\n";
  }
  Program program = parsed((text + "end\n" + records).c_str());
  FakeTarget device;
  device.ms = {{"", 1.0}};
  auto report = tuneStep(program, *program.step("train"), source, device, {});
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->kernels.size(), 12u);
  EXPECT_EQ(report->count(TunedKernel::Source::tuned), 12u);
  EXPECT_EQ(device.loads, 2);
  // The second load: the last three kernels' candidates, with the preamble.
  EXPECT_EQ(device.loaded.find("// preamble"), 0u);
  EXPECT_NE(device.loaded.find("k9__cpu1("), std::string::npos);
  EXPECT_EQ(device.loaded.find("k8__cpu7("), std::string::npos);
}

TEST(TunerTest, AppliesTheChoiceToEveryLaunch) {
  Program program = parsed();
  ASSERT_TRUE(bindBatch(program, "train", 64).ok());
  TuneReport report;
  report.target = "cuda";
  TunedKernel mm;
  mm.kernel = "mm";
  mm.target = "cuda";
  mm.candidate = 0;
  report.kernels.push_back(mm);
  applyTuning(program, report);
  const Step &step = *program.step("train");
  for (size_t l : {0u, 2u}) {
    const Launch &launch = step.launches[l];
    EXPECT_EQ(launch.kernel, "mm__cuda1");
    EXPECT_EQ(launch.gridSize(0), 2u); // 64 / 32
    EXPECT_EQ(launch.gridSize(1), 2u);
    EXPECT_EQ(launch.block[0], 128u);
    EXPECT_EQ(launch.sharedBytes, 1024u);
  }
  EXPECT_EQ(step.launches[1].kernel, "add");
}

} // namespace
