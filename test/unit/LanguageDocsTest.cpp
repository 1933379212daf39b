//===- LanguageDocsTest.cpp - every builtin is documented -----------------===//
//
// docs/language.md is the reference of the model language: a builtin added
// to the frontend without documentation fails here.
//
//===----------------------------------------------------------------------===//

#include "frontend/MLIRGen.h"

#include "llvm/Support/MemoryBuffer.h"

#include <gtest/gtest.h>

TEST(LanguageDocs, DocumentsEveryBuiltin) {
  auto docs = llvm::MemoryBuffer::getFile(KILN_SOURCE_DIR "/docs/language.md");
  ASSERT_TRUE(docs) << "cannot read docs/language.md";
  llvm::StringRef text = (*docs)->getBuffer();
  for (llvm::StringRef name : kiln::frontend::builtinNames())
    EXPECT_TRUE(text.contains(("`" + name + "(").str()))
        << "docs/language.md does not document `" << name.str() << "(...)`";
}
