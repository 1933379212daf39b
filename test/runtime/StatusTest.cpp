//===- StatusTest.cpp - Status and StatusOr -------------------------------===//

#include "runtime/Status.h"

#include <gtest/gtest.h>

#include <memory>

using namespace kiln::runtime;

namespace {

StatusOr<std::unique_ptr<int>> makeInt(bool succeed) {
  if (!succeed)
    return Status::error("no int today");
  return std::make_unique<int>(42);
}

TEST(StatusTest, SuccessAndError) {
  EXPECT_TRUE(Status().ok());
  EXPECT_TRUE(Status::success().ok());
  EXPECT_EQ(Status::success().message(), "");
  Status error = Status::error("file.gz: truncated header");
  EXPECT_FALSE(error.ok());
  EXPECT_EQ(error.message(), "file.gz: truncated header");
}

TEST(StatusTest, StatusOrHoldsAValueOrAnError) {
  StatusOr<std::unique_ptr<int>> value = makeInt(true);
  ASSERT_TRUE(value.ok());
  EXPECT_TRUE(value.status().ok());
  EXPECT_EQ(**value, 42);
  std::unique_ptr<int> moved = std::move(value).value();
  EXPECT_EQ(*moved, 42);

  StatusOr<std::unique_ptr<int>> error = makeInt(false);
  ASSERT_FALSE(error.ok());
  EXPECT_EQ(error.status().message(), "no int today");

  StatusOr<std::string> text = std::string("abc");
  EXPECT_EQ(text->size(), 3u);
}

} // namespace
