//===- ProgramTest.cpp - the program format and the host compiler ---------===//

#include "runtime/Program.h"
#include "runtime/HostCompiler.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <unistd.h>

using namespace kiln::runtime;

namespace {

const char *kProgram = R"(kiln-program 1
model tiny
step train tiny_train_step arena 1024
arg param w F32 4,3 init uniform -0.5 0.25
arg input x F32 2,3
launch matmul grid 1,1,1 block 256,1,1 shared 0 seed 0 dims - buffers a1 a0 @0
launch drop grid 2,1,1 block 128,1,1 shared 64 seed 1 dims 2 buffers @0 @512
result loss loss F32 - @512
result param w F32 4,3 a0
end
)";

TEST(ProgramTest, ParsesAndPrintsBackTheSameText) {
  auto program = parseProgram(kProgram, "tiny.program");
  ASSERT_TRUE(program.ok()) << program.status().message();
  EXPECT_EQ(program->model, "tiny");
  const Step *step = program->step("train");
  ASSERT_TRUE(step);
  EXPECT_EQ(program->step("eval"), nullptr);
  EXPECT_EQ(step->arenaBytes, 1024);
  ASSERT_EQ(step->arguments.size(), 2u);
  EXPECT_EQ(step->arguments[0].init.kind, "uniform");
  EXPECT_EQ(step->arguments[0].init.a, -0.5);
  EXPECT_EQ(step->arguments[0].bytes(), 48);
  ASSERT_EQ(step->launches.size(), 2u);
  EXPECT_EQ(step->launches[1].sharedBytes, 64u);
  EXPECT_TRUE(step->launches[1].takesSeed);
  EXPECT_EQ(step->launches[1].dims, std::vector<int64_t>{2});
  EXPECT_EQ(step->launches[0].buffers[0].kind, BufferRef::Kind::argument);
  EXPECT_EQ(step->launches[0].buffers[2].kind, BufferRef::Kind::arena);
  EXPECT_EQ(step->results[0].shape, std::vector<int64_t>{});
  EXPECT_EQ(printProgram(*program), kProgram);
}

TEST(ProgramTest, ErrorsNameTheLine) {
  std::string text = kProgram;
  auto expectError = [](const std::string &bad, const std::string &message) {
    auto program = parseProgram(bad, "bad.program");
    ASSERT_FALSE(program.ok());
    EXPECT_NE(program.status().message().find(message), std::string::npos)
        << program.status().message();
  };
  expectError("", "bad.program: empty program");
  expectError("kiln-program 2\n", "bad.program:1: not a kiln program");
  expectError("kiln-program 1\nstep train f arena 8\n",
              "step 'train' has no 'end'");
  expectError("kiln-program 1\nstep train f arena x\nend\n",
              "bad.program:2: expected the arena size, got 'x'");
  expectError("kiln-program 1\nstep train f arena 8\narg param w F16 2\nend\n",
              "bad.program:3: unknown dtype 'F16'");
  expectError("kiln-program 1\nstep train f arena 8\n"
              "launch k grid 1,1 block 1,1,1 shared 0 seed 0 dims - buffers\n"
              "end\n",
              "bad.program:3: expected three values for grid");
  expectError("kiln-program 1\nstep train f arena 8\narg weight w F32 2\nend\n",
              "bad.program:3: unknown role 'weight'");
  expectError("kiln-program 1\nstep train f arena 8\narg input x U8 2\nend\n",
              "step 'train': argument 'x' of dtype U8");
  expectError("kiln-program 1\nfrobnicate\n", "bad.program:2: 'frobnicate' "
                                              "outside a step");
  // A reference to an argument or an arena offset that does not exist.
  expectError("kiln-program 1\nstep train f arena 8\n"
              "launch k grid 1,1,1 block 1,1,1 shared 0 seed 0 dims - "
              "buffers a3\nend\n",
              "kernel 'k' refers to a3, which does not exist");
  expectError("kiln-program 1\nstep train f arena 8\n"
              "result loss loss F32 - @64\nend\n",
              "result 'loss' refers to @64, which does not exist");
}

// A data-parallel step's all-reduce: a `collective` record, its gradients
// reduced in place (the first) or into a buffer of their own (the second).
const char *kCollectiveProgram = R"(kiln-program 1
model tiny
step train tiny_train_step arena 2048
arg param w F32 4,3 init uniform -0.5 0.25
arg input x F32 2,3
launch grad grid 1,1,1 block 256,1,1 shared 0 seed 0 dims - buffers a1 a0 @0 @512
collective all_reduce_mean F32 dims 12,3 buffers @0 @512 @0 @1024
launch update grid 1,1,1 block 256,1,1 shared 0 seed 0 dims - buffers a0 @0 @1024 a0
result param w F32 4,3 a0
end
)";

TEST(ProgramTest, CollectivesPrintBackAndDropInPlace) {
  auto program = parseProgram(kCollectiveProgram, "dp.program");
  ASSERT_TRUE(program.ok()) << program.status().message();
  EXPECT_EQ(printProgram(*program), kCollectiveProgram);
  const Launch &reduce = program->steps[0].launches[1];
  EXPECT_EQ(reduce.collective, Collective::allReduceMean);
  EXPECT_TRUE(reduce.kernel.empty());
  EXPECT_EQ(reduce.dtype, DType::F32);
  EXPECT_EQ(reduce.dims, (std::vector<int64_t>{12, 3}));
  EXPECT_EQ(reduce.buffers.size(), 4u);
  // One rank without collectives: the second tensor's result is not in
  // place, so dropping the all-reduce would lose a copy.
  Program copy = *program;
  Status dropped = dropCollectives(copy);
  ASSERT_FALSE(dropped.ok());
  EXPECT_NE(dropped.message().find("a collective all_reduce_mean not in "
                                   "place"),
            std::string::npos)
      << dropped.message();
  std::string inPlace = kCollectiveProgram;
  inPlace.replace(inPlace.find("@0 @512 @0 @1024"), 16, "@0 @512 @0 @512");
  auto parsed = parseProgram(inPlace, "dp.program");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  ASSERT_TRUE(dropCollectives(*parsed).ok());
  ASSERT_EQ(parsed->steps[0].launches.size(), 2u);
  EXPECT_EQ(parsed->steps[0].launches[1].kernel, "update");

  auto expectError = [](const std::string &line, const std::string &message) {
    std::string text = kCollectiveProgram;
    size_t at = text.find("collective ");
    text.replace(at, text.find('\n', at) - at, line);
    auto bad = parseProgram(text, "bad.program");
    ASSERT_FALSE(bad.ok()) << line;
    EXPECT_NE(bad.status().message().find(message), std::string::npos)
        << bad.status().message();
  };
  expectError("collective all_gather F32 dims 12 buffers @0 @0",
              "bad.program:7: unknown collective 'all_gather'");
  expectError("collective all_reduce_sum I32 dims 12 buffers @0 @0",
              "a collective all_reduce_sum of I32 (it reduces floats)");
  expectError("collective all_reduce_sum F32 dims 12,3 buffers @0 @0",
              "needs an element count per tensor and an input and a result "
              "buffer for each");
  expectError("collective all_reduce_sum F32 dims 12 buffers @0 @4096",
              "a collective all_reduce_sum refers to @4096, which does not "
              "exist");
}

// A step with a run-time batch: sizes per batch and grid formulas.
const char *kBatchProgram = R"(kiln-program 1
model tiny
step train tiny_train_step arena 4096 max-batch 16
arg param w F32 4,3 init uniform -0.5 0.25
arg input x F32 b,3
launch matmul grid d0/64,2,3*d0*d1 block 256,1,1 shared 0 seed 0 dims b,4*b buffers a1 a0 @0
launch sum grid 1,1,1 block 32,1,1 shared 0 seed 0 dims - buffers @0 @2048
result loss loss F32 - @2048
result output y F32 b,4 @0
end
)";

TEST(ProgramTest, RunTimeBatchPrintsBackAndBinds) {
  auto program = parseProgram(kBatchProgram, "batch.program");
  ASSERT_TRUE(program.ok()) << program.status().message();
  EXPECT_EQ(printProgram(*program), kBatchProgram);
  const Step &step = *program->step("train");
  EXPECT_EQ(step.maxBatch, 16);
  EXPECT_EQ(step.arguments[1].shape, (std::vector<int64_t>{-1, 3}));
  EXPECT_EQ(step.launches[0].dims, (std::vector<int64_t>{-1, -4}));
  EXPECT_FALSE(requireFixedSizes(*program).ok());

  // Out of range, or a step without a run-time batch.
  EXPECT_FALSE(bindBatch(*program, "train", 0).ok());
  EXPECT_FALSE(bindBatch(*program, "train", 17).ok());
  EXPECT_FALSE(bindBatch(*program, "eval", 4).ok());

  ASSERT_TRUE(bindBatch(*program, "train", 10).ok());
  EXPECT_TRUE(requireFixedSizes(*program).ok());
  const Launch &matmul = step.launches[0];
  EXPECT_EQ(step.maxBatch, 0);
  EXPECT_EQ(step.arguments[1].shape, (std::vector<int64_t>{10, 3}));
  EXPECT_EQ(step.results[1].shape, (std::vector<int64_t>{10, 4}));
  EXPECT_EQ(matmul.dims, (std::vector<int64_t>{10, 40}));
  // ceil(10 / 64), 2, 3 * 10 * 40.
  EXPECT_EQ(matmul.gridSize(0), 1u);
  EXPECT_EQ(matmul.gridSize(1), 2u);
  EXPECT_EQ(matmul.gridSize(2), 1200u);
  EXPECT_FALSE(bindBatch(*program, "train", 10).ok()) << "already fixed";
  EXPECT_NE(printProgram(*program).find("launch matmul grid 1,2,1200 "),
            std::string::npos);
}

TEST(ProgramTest, RunTimeBatchErrors) {
  auto expectError = [](const std::string &bad, const std::string &message) {
    auto program = parseProgram(bad, "bad.program");
    ASSERT_FALSE(program.ok());
    EXPECT_NE(program.status().message().find(message), std::string::npos)
        << program.status().message();
  };
  // Sizes per batch need a step with a max-batch.
  expectError("kiln-program 1\nstep train f arena 8\narg input x F32 b,3\n"
              "end\n",
              "argument 'x' has a size per batch, but the step has no "
              "max-batch");
  expectError("kiln-program 1\nstep train f arena 8 max-batch 4\n"
              "arg input x F32 0*b\nend\n",
              "bad.program:3: bad size '0*b'");
  expectError("kiln-program 1\nstep train f arena 8 max-batch 4\n"
              "launch k grid d1/2,1,1 block 1,1,1 shared 0 seed 0 dims b "
              "buffers\nend\n",
              "kernel 'k' has a grid factor d1 beyond its dims");
  expectError("kiln-program 1\nstep train f arena 8 max-batch 4\n"
              "launch k grid 4/2,1,1 block 1,1,1 shared 0 seed 0 dims - "
              "buffers\nend\n",
              "bad.program:3: bad grid extent '4/2'");
  expectError("kiln-program 1\nstep train f arena 8 max-batch 4\n"
              "launch k grid 1,1,1 block b,1,1 shared 0 seed 0 dims - "
              "buffers\nend\n",
              "bad.program:3: a size per batch in block");
  expectError("kiln-program 1\nstep train f arena 8 maximum 4\nend\n",
              "bad.program:2: expected 'max-batch', got 'maximum'");
}

TEST(ProgramTest, SplitsSourcesAtKernelMarkers) {
  std::string source = "PREAMBLE\n";
  for (int k = 0; k < 5; ++k)
    source += std::string(kKernelMarker) + "kernel " + std::to_string(k) + "\n";
  EXPECT_EQ(splitKernelSource(source, 1), std::vector<std::string>{source});
  EXPECT_EQ(splitKernelSource("no markers", 4),
            std::vector<std::string>{"no markers"});
  for (unsigned parts : {2u, 3u, 5u, 9u}) {
    std::vector<std::string> split = splitKernelSource(source, parts);
    EXPECT_EQ(split.size(), std::min(parts, 5u));
    // Every part starts with the preamble; together they hold each kernel
    // once, in order.
    std::string kernels;
    for (const std::string &part : split) {
      ASSERT_EQ(part.rfind("PREAMBLE\n", 0), 0u);
      EXPECT_NE(part.find(kKernelMarker), std::string::npos);
      kernels += part.substr(9);
    }
    EXPECT_EQ("PREAMBLE\n" + kernels, source);
  }
}

TEST(HostCompilerTest, CompilesLoadsAndCaches) {
  std::string dir = (std::filesystem::temp_directory_path() /
                     ("kiln-host-test-" + std::to_string(::getpid())))
                        .string();
  HostCompileOptions options;
  options.cacheDir = dir;
  std::string source = "extern \"C\" int kiln_answer() { return 42; }\n";
  auto first = compileHostLibrary("answer", source, options);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_FALSE(first->fromCache);
  auto answer = reinterpret_cast<int (*)()>(first->symbol("kiln_answer"));
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer(), 42);
  auto second = compileHostLibrary("answer", source, options);
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_TRUE(second->fromCache);
  EXPECT_EQ(second->symbol("missing"), nullptr);

  // A compile error reports the compiler's output and keeps the source.
  auto bad = compileHostLibrary("bad", "int broken( {\n", options);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("the C++ compiler failed"),
            std::string::npos)
      << bad.status().message();
  EXPECT_NE(bad.status().message().find("source kept in"), std::string::npos);
  std::filesystem::remove_all(dir);
}

} // namespace
