//===- GradientCasesTest.cpp - every gradient case, one gtest each --------===//

#include "test/numerics/GradientCheck.h"

#include <set>

using namespace kiln::numerics;

namespace {

class GradientCheck : public ::testing::TestWithParam<GradientCase> {};

TEST_P(GradientCheck, MatchesFiniteDifferences) {
  EXPECT_TRUE(checkGradients(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(
    Ops, GradientCheck, ::testing::ValuesIn(allGradientCases()),
    [](const ::testing::TestParamInfo<GradientCase> &info) {
      return info.param.name;
    });

TEST(GradientCases, NamesAreUnique) {
  std::set<std::string> seen;
  for (const GradientCase &c : allGradientCases())
    EXPECT_TRUE(seen.insert(c.name).second) << "duplicate case " << c.name;
}

} // namespace
