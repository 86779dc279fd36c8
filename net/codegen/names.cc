#include "net/codegen/names.h"

#include <bit>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace troupe::codegen {
namespace {

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

char ToLower(char c) { return IsUpper(c) ? static_cast<char>(c - 'A' + 'a') : c; }
char ToUpper(char c) { return IsLower(c) ? static_cast<char>(c - 'a' + 'A') : c; }

// With a decimal point or exponent, so the literal is not an integer.
std::string WithPoint(std::string s) {
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

}  // namespace

bool IsCppKeyword(absl::string_view word) {
  static const auto* const kKeywords = new absl::flat_hash_set<absl::string_view>{
      "alignas",   "alignof",      "and",        "and_eq",      "asm",        "auto",          "bitand",
      "bitor",     "bool",         "break",      "case",        "catch",      "char",          "char8_t",
      "char16_t",  "char32_t",     "class",      "compl",       "concept",    "const",         "consteval",
      "constexpr", "constinit",    "const_cast", "continue",    "co_await",   "co_return",     "co_yield",
      "decltype",  "default",      "delete",     "do",          "double",     "dynamic_cast",  "else",
      "enum",      "explicit",     "export",     "extern",      "false",      "float",         "for",
      "friend",    "goto",         "if",         "inline",      "int",        "long",          "mutable",
      "namespace", "new",          "noexcept",   "not",         "not_eq",     "nullptr",       "operator",
      "or",        "or_eq",        "private",    "protected",   "public",     "register",      "reinterpret_cast",
      "requires",  "return",       "short",      "signed",      "sizeof",     "static",        "static_assert",
      "static_cast", "struct",     "switch",     "template",    "this",       "thread_local",  "throw",
      "true",      "try",          "typedef",    "typeid",      "typename",   "union",         "unsigned",
      "using",     "virtual",      "void",       "volatile",    "wchar_t",    "while",         "xor",
      "xor_eq",
  };
  return kKeywords->contains(word);
}

std::string SnakeCase(absl::string_view camel) {
  std::string out;
  out.reserve(camel.size() + 4);
  for (size_t i = 0; i < camel.size(); ++i) {
    const char c = camel[i];
    if (IsUpper(c) && i > 0) {
      const char prev = camel[i - 1];
      const bool next_lower = i + 1 < camel.size() && IsLower(camel[i + 1]);
      // "fooBar", "utf8Text": a word starts; "HTTPRequest": the last capital
      // of an acronym starts the next word.
      if (IsLower(prev) || IsDigit(prev) || (IsUpper(prev) && next_lower)) out += '_';
    }
    out += ToLower(c);
  }
  if (IsCppKeyword(out)) out += '_';
  return out;
}

std::string EnumerantName(absl::string_view camel) {
  std::string out = "k";
  out.append(camel.data(), camel.size());
  if (out.size() > 1) out[1] = ToUpper(out[1]);
  return out;
}

std::string CppStringLiteral(absl::string_view bytes) {
  std::string out = "\"";
  for (const char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '?':  // never part of a trigraph
        out += "\\?";
        break;
      default:
        if (u >= 0x20 && u < 0x7f) {
          out += c;
        } else {
          absl::StrAppendFormat(&out, "\\%03o", u);
        }
    }
  }
  out += '"';
  return out;
}

std::string CppStringExpression(absl::string_view bytes) {
  if (bytes.find('\0') == absl::string_view::npos) return CppStringLiteral(bytes);
  return absl::StrCat("std::string(", CppStringLiteral(bytes), ", ", bytes.size(), ")");
}

std::string SignedLiteral(int64_t value, int bits) {
  const int64_t min = bits >= 64 ? std::numeric_limits<int64_t>::min() : -(int64_t{1} << (bits - 1));
  // The literal of the minimum does not exist: "-2147483648" negates a
  // value that does not fit.
  if (value == min) return absl::StrCat("(", value + 1, " - 1)");
  return absl::StrCat(value);
}

std::string UnsignedLiteral(uint64_t value) { return absl::StrCat(value, "u"); }

std::string FloatLiteral(float value) {
  if (std::isnan(value)) {
    return absl::StrCat("std::bit_cast<float>(uint32_t{", HexLiteral(std::bit_cast<uint32_t>(value)), "})");
  }
  if (std::isinf(value)) return value > 0 ? "std::numeric_limits<float>::infinity()" : "-std::numeric_limits<float>::infinity()";
  return WithPoint(absl::StrFormat("%.9g", value)) + "f";
}

std::string DoubleLiteral(double value) {
  if (std::isnan(value)) {
    return absl::StrCat("std::bit_cast<double>(uint64_t{", HexLiteral(std::bit_cast<uint64_t>(value)), "})");
  }
  if (std::isinf(value)) return value > 0 ? "std::numeric_limits<double>::infinity()" : "-std::numeric_limits<double>::infinity()";
  return WithPoint(absl::StrFormat("%.17g", value));
}

std::string HexLiteral(uint64_t bits) { return absl::StrFormat("0x%xu", bits); }

bool IsQualifiedCppName(absl::string_view name) {
  if (name.empty()) return false;
  for (absl::string_view part : absl::StrSplit(name, absl::string_view("::"))) {
    if (part.empty() || IsDigit(part[0]) || IsCppKeyword(part)) return false;
    for (const char c : part) {
      if (!(IsLower(c) || IsUpper(c) || IsDigit(c) || c == '_')) return false;
    }
  }
  return true;
}

}  // namespace troupe::codegen
