// How capnpc-troupe names things in C++: schema names (camelCase) become
// snake_case members and kCamelCase enumerants, and values become C++
// literals. Pure functions, used by the plugin only.

#ifndef TROUPE_NET_CODEGEN_NAMES_H_
#define TROUPE_NET_CODEGEN_NAMES_H_

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

namespace troupe::codegen {

// "fooBar" -> "foo_bar", "userID" -> "user_id", "httpRequest" ->
// "http_request", "utf8Text" -> "utf8_text". A result that is a C++ keyword
// gets a trailing underscore ("class" -> "class_").
std::string SnakeCase(absl::string_view camel);

// "red" -> "kRed", "darkBlue" -> "kDarkBlue".
std::string EnumerantName(absl::string_view camel);

bool IsCppKeyword(absl::string_view word);

// A C++ string literal (quotes included) holding exactly `bytes`; bytes
// outside printable ASCII are written as three-digit octal escapes.
std::string CppStringLiteral(absl::string_view bytes);

// An expression of type std::string holding exactly `bytes`, embedded NULs
// included: "\"abc\"" or "std::string(\"a\\000b\", 3)".
std::string CppStringExpression(absl::string_view bytes);

// Literals of a given C++ type that read back as exactly `value`.
std::string SignedLiteral(int64_t value, int bits);
std::string UnsignedLiteral(uint64_t value);
std::string FloatLiteral(float value);
std::string DoubleLiteral(double value);

// "0x...u": the bits a scalar is XORed with in the data section.
std::string HexLiteral(uint64_t bits);

// "chat::Room" -> true; "::chat::Room" is normalized by the caller.
// Identifiers separated by "::", nothing else (no templates, no spaces).
bool IsQualifiedCppName(absl::string_view name);

}  // namespace troupe::codegen

#endif  // TROUPE_NET_CODEGEN_NAMES_H_
