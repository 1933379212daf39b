//===- LexerTest.cpp - tokens of the model language -----------------------===//

#include "frontend/Lexer.h"

#include <gtest/gtest.h>

#include <vector>

using namespace kiln::frontend;

namespace {

std::vector<Token> lexAll(llvm::StringRef source) {
  Lexer lexer(source);
  std::vector<Token> tokens;
  // Bounded: the lexer must reach eof on any input.
  for (size_t i = 0; i <= source.size() + 1; ++i) {
    tokens.push_back(lexer.next());
    if (tokens.back().is(TokenKind::eof))
      return tokens;
  }
  ADD_FAILURE() << "lexer did not reach the end of the input";
  return tokens;
}

std::vector<TokenKind> kinds(llvm::StringRef source) {
  std::vector<TokenKind> result;
  for (const Token &t : lexAll(source))
    result.push_back(t.kind);
  return result;
}

TEST(Lexer, StatementTokensAndPositions) {
  std::vector<Token> t = lexAll("h = relu(x) # comment\n  y=h");
  ASSERT_EQ(t.size(), 11u);
  EXPECT_TRUE(t[0].is(TokenKind::identifier));
  EXPECT_EQ(t[0].text, "h");
  EXPECT_TRUE(t[1].is(TokenKind::equal));
  EXPECT_TRUE(t[6].is(TokenKind::newline));
  EXPECT_EQ(t[7].text, "y");
  EXPECT_EQ(t[7].pos.line, 2u);
  EXPECT_EQ(t[7].pos.column, 3u);
}

TEST(Lexer, KeywordsAndOperators) {
  EXPECT_EQ(kinds("model input param loss metric true false"),
            (std::vector<TokenKind>{TokenKind::kw_model, TokenKind::kw_input,
                                    TokenKind::kw_param, TokenKind::kw_loss,
                                    TokenKind::kw_metric, TokenKind::kw_true,
                                    TokenKind::kw_false, TokenKind::eof}));
  EXPECT_EQ(kinds("** * <= < == != >= > @ / -"),
            (std::vector<TokenKind>{
                TokenKind::star_star, TokenKind::star, TokenKind::less_equal,
                TokenKind::less, TokenKind::equal_equal, TokenKind::not_equal,
                TokenKind::greater_equal, TokenKind::greater, TokenKind::at,
                TokenKind::slash, TokenKind::minus, TokenKind::eof}));
}

TEST(Lexer, NewlinesInsideBracketsAreSpaces) {
  EXPECT_EQ(kinds("f(a,\n b)\n"),
            (std::vector<TokenKind>{TokenKind::identifier, TokenKind::l_paren,
                                    TokenKind::identifier, TokenKind::comma,
                                    TokenKind::identifier, TokenKind::r_paren,
                                    TokenKind::newline, TokenKind::eof}));
}

TEST(Lexer, Numbers) {
  std::vector<Token> t = lexAll("42 0.5 1e-5 .25 3E2");
  EXPECT_TRUE(t[0].is(TokenKind::integer));
  EXPECT_EQ(t[0].intValue, 42);
  EXPECT_TRUE(t[1].is(TokenKind::floating));
  EXPECT_DOUBLE_EQ(t[1].floatValue, 0.5);
  EXPECT_DOUBLE_EQ(t[2].floatValue, 1e-5);
  EXPECT_DOUBLE_EQ(t[3].floatValue, 0.25);
  EXPECT_DOUBLE_EQ(t[4].floatValue, 300.0);
}

TEST(Lexer, MalformedNumbersAreOneErrorEach) {
  for (llvm::StringRef bad : {"1e", "1.2.3", "12ab", "1e+x"}) {
    std::vector<Token> t = lexAll(bad);
    ASSERT_EQ(t.size(), 2u) << bad.str();
    EXPECT_TRUE(t[0].is(TokenKind::error)) << bad.str();
    EXPECT_FALSE(t[0].error.empty());
  }
  std::vector<Token> t = lexAll("99999999999999999999");
  EXPECT_TRUE(t[0].is(TokenKind::error));
  EXPECT_NE(t[0].error.find("64 bits"), std::string::npos);
}

TEST(Lexer, Strings) {
  std::vector<Token> t = lexAll(R"("l1" "a\"b")");
  EXPECT_EQ(t[0].stringValue, "l1");
  EXPECT_EQ(t[1].stringValue, "a\"b");
  EXPECT_TRUE(lexAll("\"open")[0].is(TokenKind::error));
  EXPECT_TRUE(lexAll("\"line\nbreak\"")[0].is(TokenKind::error));
  std::vector<Token> escape = lexAll(R"("bad\q" x)");
  EXPECT_TRUE(escape[0].is(TokenKind::error));
  EXPECT_TRUE(escape[1].is(TokenKind::identifier)) << "lexing resumes after "
                                                      "the string";
}

TEST(Lexer, BlockComments) {
  EXPECT_EQ(kinds("a /* x \n y */ b"),
            (std::vector<TokenKind>{TokenKind::identifier,
                                    TokenKind::identifier, TokenKind::eof}));
  std::vector<Token> t = lexAll("a /* never closed");
  EXPECT_TRUE(t[1].is(TokenKind::error));
  EXPECT_EQ(t[1].error, "unterminated block comment");
  EXPECT_EQ(t[1].pos.column, 3u);
}

TEST(Lexer, ArbitraryBytesNeverStopTheLexer) {
  std::string garbage = {'\0', '\x01', '\xff', '\xfe', '$', '`', '!', '\0'};
  std::vector<Token> t = lexAll(garbage);
  ASSERT_FALSE(t.empty());
  EXPECT_TRUE(t.back().is(TokenKind::eof));
  EXPECT_TRUE(t.front().is(TokenKind::error));
  EXPECT_EQ(t.front().error,
            "unexpected bytes 0x00 0x01 0xff 0xfe; a model file is ASCII text");
}

} // namespace
