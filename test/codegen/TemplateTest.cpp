//===- TemplateTest.cpp - the generators' code templates ------------------===//
//
// codegen/Template.h: named placeholders, blocks placed at their column, and
// templates re-indented to the stream they are printed to.
//
//===----------------------------------------------------------------------===//

#include "codegen/Template.h"

#include <gtest/gtest.h>

using namespace kiln::codegen;

namespace {

TEST(Template, FillsNamedPlaceholders) {
  EXPECT_EQ(fill("${T} x = ${V} + ${V};", {{"T", "float"}, {"V", "1.0f"}}),
            "float x = 1.0f + 1.0f;");
  // Values are not filled again, and unused values are allowed.
  EXPECT_EQ(fill("a = ${A};", {{"A", "${B}"}, {"B", "2"}}), "a = ${B};");
  EXPECT_EQ(fill("no placeholders\n", {}), "no placeholders\n");
}

TEST(Template, BlocksTakeThePlaceholdersColumn) {
  const char *text = "if (x) {\n"
                     "  ${BODY}\n"
                     "}\n";
  // Each line of a block is indented to the column, its trailing newline
  // dropped; its empty lines stay empty.
  EXPECT_EQ(fill(text, {{"BODY", "a();\n\nif (y)\n  b();\n"}}), "if (x) {\n"
                                                                "  a();\n"
                                                                "\n"
                                                                "  if (y)\n"
                                                                "    b();\n"
                                                                "}\n");
  // An empty block removes its line.
  EXPECT_EQ(fill(text, {{"BODY", ""}}), "if (x) {\n}\n");
  // A placeholder with text beside it is filled in place, as it is.
  EXPECT_EQ(fill("  x = ${A}; // ${B}\n", {{"A", "f(\n1)"}, {"B", "b\nc"}}),
            "  x = f(\n1); // b\nc\n");
}

TEST(Template, PrintReindentsToTheStream) {
  Code code;
  code.os << "{\n";
  code.os.indent();
  // Indented as the C++ around it; the leading newline of a raw string is
  // skipped.
  print(code.os, R"(
      for (int i = 0; i < ${N}; ++i)
        ${BODY}
  )",
        {{"N", "4"}, {"BODY", "s += x[i];\nt += y[i];"}});
  code.os.unindent();
  code.os << "}\n";
  EXPECT_EQ(code.str(), "{\n"
                        "  for (int i = 0; i < 4; ++i)\n"
                        "    s += x[i];\n"
                        "    t += y[i];\n"
                        "}\n");
}

TEST(Template, DirectivesStayAtColumnZero) {
  const char *loop = "#pragma unroll\n"
                     "for (int i = 0; i < 4; ++i)\n"
                     "  s += x[i];\n";
  // In a block...
  EXPECT_EQ(
      fill("{\n  ${LOOP}\n}\n", {{"LOOP", loop}}),
      "{\n#pragma unroll\n  for (int i = 0; i < 4; ++i)\n    s += x[i];\n}\n");
  // ...and printed to an indented stream, where they do not count in the
  // template's indentation.
  Code code;
  code.os.indent();
  print(code.os, R"(
#pragma unroll
      for (int i = 0; i < 4; ++i)
        s += x[i];
  )");
  EXPECT_EQ(code.str(),
            "#pragma unroll\n  for (int i = 0; i < 4; ++i)\n    s += x[i];\n");
  // render() is print at indentation zero.
  EXPECT_EQ(render(R"(
    a = ${A};
      b();
  )",
                   {{"A", "1"}}),
            "a = 1;\n  b();\n");
}

TEST(TemplateDeathTest, AMissingValueIsAGeneratorBug) {
  EXPECT_DEATH(fill("${T} x;", {{"U", "float"}}),
               "placeholder \\$\\{T\\} has no value");
}

} // namespace
