#include "net/codegen/names.h"

#include <limits>
#include <string>

#include "gtest/gtest.h"

namespace troupe::codegen {
namespace {

TEST(SnakeCase, SplitsCamelCaseWordsAndAcronyms) {
  EXPECT_EQ(SnakeCase("text"), "text");
  EXPECT_EQ(SnakeCase("fooBar"), "foo_bar");
  EXPECT_EQ(SnakeCase("userID"), "user_id");
  EXPECT_EQ(SnakeCase("httpRequest"), "http_request");
  EXPECT_EQ(SnakeCase("parseHTTPRequest"), "parse_http_request");
  EXPECT_EQ(SnakeCase("utf8Text"), "utf8_text");
  EXPECT_EQ(SnakeCase("x"), "x");
}

TEST(SnakeCase, KeywordsGetATrailingUnderscore) {
  EXPECT_EQ(SnakeCase("class"), "class_");
  EXPECT_EQ(SnakeCase("new"), "new_");
  EXPECT_EQ(SnakeCase("default"), "default_");
  EXPECT_EQ(SnakeCase("classes"), "classes");
}

TEST(EnumerantName, PrefixesKAndCapitalizes) {
  EXPECT_EQ(EnumerantName("red"), "kRed");
  EXPECT_EQ(EnumerantName("darkBlue"), "kDarkBlue");
}

TEST(CppStringLiteral, EscapesQuotesBackslashesAndBytes) {
  EXPECT_EQ(CppStringLiteral("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(CppStringLiteral(std::string("\x01\xff", 2)), "\"\\001\\377\"");
  EXPECT_EQ(CppStringLiteral("?\?="), "\"\\?\\?=\"");
}

TEST(CppStringExpression, KeepsEmbeddedNulsWithAnExplicitLength) {
  EXPECT_EQ(CppStringExpression("abc"), "\"abc\"");
  EXPECT_EQ(CppStringExpression(std::string("a\0b", 3)), "std::string(\"a\\000b\", 3)");
}

TEST(Literals, MinimumsAreWrittenAsExpressions) {
  EXPECT_EQ(SignedLiteral(-5, 32), "-5");
  EXPECT_EQ(SignedLiteral(std::numeric_limits<int32_t>::min(), 32), "(-2147483647 - 1)");
  EXPECT_EQ(SignedLiteral(std::numeric_limits<int64_t>::min(), 64), "(-9223372036854775807 - 1)");
  EXPECT_EQ(UnsignedLiteral(7), "7u");
}

TEST(Literals, FloatsRoundTripAndAreNeverIntegers) {
  EXPECT_EQ(FloatLiteral(1.0f), "1.0f");
  EXPECT_EQ(FloatLiteral(0.5f), "0.5f");
  EXPECT_EQ(DoubleLiteral(0.1), "0.10000000000000001");
  EXPECT_EQ(DoubleLiteral(-0.0), "-0.0");
  EXPECT_EQ(DoubleLiteral(1e300), "1.0000000000000001e+300");
  EXPECT_EQ(DoubleLiteral(std::numeric_limits<double>::infinity()), "std::numeric_limits<double>::infinity()");
  EXPECT_EQ(FloatLiteral(std::numeric_limits<float>::quiet_NaN()), "std::bit_cast<float>(uint32_t{0x7fc00000u})");
}

TEST(IsQualifiedCppName, AcceptsNamespaceScopedNamesOnly) {
  EXPECT_TRUE(IsQualifiedCppName("Room"));
  EXPECT_TRUE(IsQualifiedCppName("chat::Room"));
  EXPECT_TRUE(IsQualifiedCppName("a::b_c::D1"));
  EXPECT_FALSE(IsQualifiedCppName(""));
  EXPECT_FALSE(IsQualifiedCppName("chat::"));
  EXPECT_FALSE(IsQualifiedCppName("chat:Room"));
  EXPECT_FALSE(IsQualifiedCppName("Box<int>"));
  EXPECT_FALSE(IsQualifiedCppName("chat::class"));
  EXPECT_FALSE(IsQualifiedCppName("1Room"));
}

}  // namespace
}  // namespace troupe::codegen
