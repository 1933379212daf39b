//===- TextDataTest.cpp - text files and windows for language models ------===//

#include "runtime/TextData.h"

#include "TempDir.h"

#include <gtest/gtest.h>

#include <set>

using namespace kiln::runtime;
using kiln::runtime::testing::bytesOf;
using kiln::runtime::testing::TempDir;
using kiln::runtime::testing::writeFile;

namespace {

TEST(TextDataTest, HoldsOutTheLastTenth) {
  TempDir dir;
  std::vector<uint8_t> bytes(105);
  for (size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = uint8_t(i);
  writeFile(dir.path("t.txt"), bytes);
  auto text = loadText(dir.path("t.txt"));
  ASSERT_TRUE(text.ok()) << text.status().message();
  ASSERT_EQ(text->train.size(), 95u);
  ASSERT_EQ(text->heldOut.size(), 10u);
  EXPECT_EQ(text->train.back(), 94);
  EXPECT_EQ(text->heldOut.front(), 95);
}

TEST(TextDataTest, MissingAndEmptyFilesAreErrors) {
  TempDir dir;
  auto missing = loadText(dir.path("none.txt"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "cannot read '" + dir.path("none.txt") +
                                            "': No such file or directory");
  writeFile(dir.path("empty.txt"), {});
  auto empty = loadText(dir.path("empty.txt"));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().message(),
            "'" + dir.path("empty.txt") + "' is empty");
}

TEST(TextDataTest, TrainingWindowsAreShiftedByOneAndSeeded) {
  std::vector<uint8_t> text(1000);
  for (size_t i = 0; i < text.size(); ++i)
    text[i] = uint8_t(i * 31 % 251);
  TextBatch a, b, c;
  trainingBatch(text, /*context=*/8, /*batch=*/64, /*seed=*/5, /*step=*/3, a);
  trainingBatch(text, 8, 64, 5, 3, b);
  trainingBatch(text, 8, 64, 5, 4, c);
  ASSERT_EQ(a.tokens.size(), 64u * 8);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.targets, b.targets);
  EXPECT_NE(a.tokens, c.tokens);
  // Each row is a window of the text: the targets are the next bytes.
  std::set<size_t> starts;
  for (int row = 0; row < 64; ++row) {
    auto begin = a.tokens.begin() + row * 8;
    auto it = std::search(text.begin(), text.end(), begin, begin + 8);
    ASSERT_NE(it, text.end());
    size_t start = size_t(it - text.begin());
    starts.insert(start);
    for (int t = 0; t < 8; ++t)
      EXPECT_EQ(a.targets[row * 8 + t], text[start + t + 1]);
  }
  EXPECT_GT(starts.size(), 50u);
}

TEST(TextDataTest, TheLastWindowEndsAtTheLastByte) {
  // 10 bytes, context 9: one window, starting at 0.
  std::vector<uint8_t> text = bytesOf("abcdefghij");
  TextBatch batch;
  for (uint64_t step = 0; step < 20; ++step) {
    trainingBatch(text, 9, 1, 0, step, batch);
    EXPECT_EQ(batch.tokens.front(), 'a');
    EXPECT_EQ(batch.targets.back(), 'j');
  }
}

TEST(TextDataTest, EvaluationWindowsDoNotOverlap) {
  std::vector<uint8_t> text = bytesOf("abcdefghijk"); // 11 bytes
  EXPECT_EQ(windowCount(text, 4), 2); // abcde, efghi; ijk is too short
  EXPECT_EQ(windowCount(text, 10), 1);
  EXPECT_EQ(windowCount(text, 11), 0);
  TextBatch batch;
  evaluationBatch(text, 4, /*first=*/0, /*batch=*/2, batch);
  EXPECT_EQ(std::string(batch.tokens.begin(), batch.tokens.end()), "abcdefgh");
  EXPECT_EQ(std::string(batch.targets.begin(), batch.targets.end()),
            "bcdefghi");
}

Program textProgram(int64_t vocabulary) {
  auto input = [](const std::string &name, int64_t batch) {
    StepArgument arg;
    arg.role = Role::input;
    arg.name = name;
    arg.dtype = DType::I32;
    arg.shape = {batch, 8};
    return arg;
  };
  Program program;
  for (const char *kind : {"train", "eval"}) {
    Step step;
    step.kind = kind;
    step.arguments = {input("tokens", 4), input("targets", 4)};
    program.steps.push_back(step);
  }
  Step predict;
  predict.kind = "predict";
  predict.arguments = {input("tokens", 1)};
  StepResult logits;
  logits.role = Role::output;
  logits.name = "logits";
  logits.shape = {1, 8, vocabulary};
  predict.results = {logits};
  program.steps.push_back(predict);
  return program;
}

TEST(TextDataTest, DescribesATextModel) {
  Program program = textProgram(256);
  EXPECT_TRUE(isTextProgram(program));
  auto model = describeTextModel(program);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ(model->context, 8);
  EXPECT_EQ(model->logits, "logits");
}

TEST(TextDataTest, RejectsAnotherVocabularyOrAMissingOutput) {
  auto wrong = describeTextModel(textProgram(65));
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("must have 256 logits per "
                                          "position (one per byte value), "
                                          "not 65"),
            std::string::npos)
      << wrong.status().message();
  Program noPredict = textProgram(256);
  noPredict.steps.pop_back();
  auto missing = describeTextModel(noPredict);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("output logits = logits"),
            std::string::npos);
}

} // namespace
