#include "net/codegen/emit.h"

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "net/codegen/names.h"

namespace troupe::codegen {
namespace {

// A schema doc comment as C++ comment lines, each starting with `indent`.
void AppendDoc(std::string& out, absl::string_view doc, absl::string_view indent) {
  doc = absl::StripTrailingAsciiWhitespace(doc);
  if (doc.empty()) return;
  for (absl::string_view line : absl::StrSplit(doc, '\n')) {
    line = absl::StripTrailingAsciiWhitespace(line);
    absl::StrAppend(&out, indent, line.empty() ? "//" : absl::StrCat("// ", line), "\n");
  }
}

std::string Guard(absl::string_view path) {
  std::string guard;
  for (const char c : path) guard += absl::ascii_isalnum(c) ? absl::ascii_toupper(c) : '_';
  return guard + "_";
}

std::string Qualified(const FileModel& file, absl::string_view flat) {
  std::string out;
  for (const std::string& part : file.name_space) absl::StrAppend(&out, "::", part);
  return absl::StrCat(out, "::", flat);
}

void OpenNamespace(std::string& out, const std::vector<std::string>& ns) {
  if (!ns.empty()) absl::StrAppend(&out, "namespace ", absl::StrJoin(ns, "::"), " {\n\n");
}

void CloseNamespace(std::string& out, const std::vector<std::string>& ns) {
  if (!ns.empty()) absl::StrAppend(&out, "}  // namespace ", absl::StrJoin(ns, "::"), "\n\n");
}

void EmitEnum(std::string& out, const EnumModel& e) {
  AppendDoc(out, e.doc, "");
  absl::StrAppend(&out, "enum class ", e.flat_name, " : uint16_t {\n");
  for (const EnumModel::Enumerant& en : e.enumerants) {
    AppendDoc(out, en.doc, "  ");
    absl::StrAppend(&out, "  ", en.name, " = ", en.value, ",\n");
  }
  absl::StrAppend(&out, "};\n\n");
}

void EmitStruct(std::string& out, const StructModel& s) {
  AppendDoc(out, s.doc, "");
  absl::StrAppend(&out, "struct ", s.flat_name, " {\n");
  for (const auto& [alias, flat] : s.nested) absl::StrAppend(&out, "  using ", alias, " = ", flat, ";\n");
  if (!s.nested.empty()) out += "\n";
  for (const FieldModel& f : s.fields) {
    AppendDoc(out, f.doc, "  ");
    absl::StrAppend(&out, "  ", f.cpp_type, " ", f.name);
    if (!f.initializer.empty()) absl::StrAppend(&out, " = ", f.initializer);
    out += ";\n";
  }
  if (!s.fields.empty()) out += "\n";
  absl::StrAppend(&out, "  friend bool operator==(const ", s.flat_name, "&, const ", s.flat_name,
                  "&) = default;\n};\n\n");
}

void EmitTraits(std::string& out, const FileModel& file, const StructModel& s) {
  const std::string t = Qualified(file, s.flat_name);
  absl::StrAppend(&out, "template <>\nstruct WireTraits<", t, "> {\n",                          //
                  "  static constexpr uint64_t kTypeId = ", HexLiteral(s.id), ";\n",             //
                  "  static constexpr std::string_view kName = ", CppStringLiteral(s.display_name), ";\n",  //
                  "  static void Encode(const ", t, "& value, WireWriter& out);\n",             //
                  "  static absl::StatusOr<", t, "> Decode(WireReader& in);\n",                  //
                  "};\n\n");
  absl::StrAppend(&out, "namespace codegen {\n", "template <>\nstruct WireStruct<", t, "> {\n",  //
                  "  static constexpr uint16_t kDataWords = ", s.data_words, ";\n",              //
                  "  static constexpr uint16_t kPointers = ", s.pointers, ";\n",                 //
                  "  static void Write(const ", t, "& value, ::capnp::AnyStruct::Builder to, WireWriter& out);\n",
                  "  static absl::Status Read(::capnp::AnyStruct::Reader from, WireReader& in, ", t, "& value);\n",
                  "};\n}  // namespace codegen\n\n");
}

bool HasData(const StructModel& s) {
  for (const FieldModel& f : s.fields) {
    if (f.storage != FieldModel::Storage::kPointer) return true;
  }
  return false;
}

bool HasPointers(const StructModel& s) {
  for (const FieldModel& f : s.fields) {
    if (f.storage == FieldModel::Storage::kPointer) return true;
  }
  return false;
}

void EmitCodec(std::string& out, const FileModel& file, const StructModel& s) {
  const std::string t = Qualified(file, s.flat_name);
  absl::StrAppend(&out, "void WireTraits<", t, ">::Encode(const ", t, "& value, WireWriter& out) {\n",
                  "  codegen::EncodeRoot(value, out);\n}\n\n");
  absl::StrAppend(&out, "absl::StatusOr<", t, "> WireTraits<", t, ">::Decode(WireReader& in) {\n",
                  "  return codegen::DecodeRoot<", t, ">(in);\n}\n\n");

  const bool data = HasData(s);
  const bool pointers = HasPointers(s);
  const absl::string_view unused = "[[maybe_unused]] ";

  // Write.
  absl::StrAppend(&out, "void codegen::WireStruct<", t, ">::Write(", s.fields.empty() ? unused : "", "const ", t,
                  "& value, ", s.fields.empty() ? unused : "", "::capnp::AnyStruct::Builder to, ",
                  pointers ? "" : unused, "WireWriter& out) {\n");
  if (data) out += "  const kj::ArrayPtr<kj::byte> data = to.getDataSection();\n";
  if (pointers) out += "  ::capnp::List<::capnp::AnyPointer>::Builder pointers = to.getPointerSection();\n";
  for (const FieldModel& f : s.fields) {
    switch (f.storage) {
      case FieldModel::Storage::kScalar:
        absl::StrAppend(&out, "  codegen::PutScalar<", f.cpp_type, ">(data, ", f.offset, ", value.", f.name, ", ",
                        f.default_bits, ");\n");
        break;
      case FieldModel::Storage::kBool:
        absl::StrAppend(&out, "  codegen::PutBool(data, ", f.offset, ", value.", f.name, ", ", f.default_bits,
                        ");\n");
        break;
      case FieldModel::Storage::kPointer:
        absl::StrAppend(&out, "  ", f.codec, "::Write(pointers[", f.offset, "], value.", f.name, ", out);\n");
        break;
    }
  }
  out += "}\n\n";

  // Read. Sections shorter than this schema's (an older writer) leave the
  // missing fields at their defaults.
  absl::StrAppend(&out, "absl::Status codegen::WireStruct<", t, ">::Read(", s.fields.empty() ? unused : "",
                  "::capnp::AnyStruct::Reader from, ", pointers ? "" : unused, "WireReader& in, ",
                  s.fields.empty() ? unused : "", t, "& value) {\n");
  if (data) out += "  const kj::ArrayPtr<const kj::byte> data = from.getDataSection();\n";
  if (pointers) {
    out += "  const ::capnp::List<::capnp::AnyPointer>::Reader pointers = from.getPointerSection();\n";
    out += "  const unsigned pointer_count = pointers.size();\n";
  }
  for (const FieldModel& f : s.fields) {
    switch (f.storage) {
      case FieldModel::Storage::kScalar:
        absl::StrAppend(&out, "  codegen::GetScalar<", f.cpp_type, ">(data, ", f.offset, ", ", f.default_bits,
                        ", value.", f.name, ");\n");
        break;
      case FieldModel::Storage::kBool:
        absl::StrAppend(&out, "  codegen::GetBool(data, ", f.offset, ", ", f.default_bits, ", value.", f.name,
                        ");\n");
        break;
      case FieldModel::Storage::kPointer:
        absl::StrAppend(&out, "  if (pointer_count > ", f.offset, ") {\n",                               //
                        "    absl::Status status = ", f.codec, "::Read(pointers[", f.offset, "], in, value.",  //
                        f.name, ");\n",                                                                    //
                        "    if (ABSL_PREDICT_FALSE(!status.ok())) return codegen::FieldError(status, ",     //
                        CppStringLiteral(f.name), ");\n",                                                  //
                        "  }\n");
        break;
    }
  }
  out += "  return absl::OkStatus();\n}\n\n";
}

}  // namespace

std::string EmitHeader(const FileModel& file) {
  std::string out;
  absl::StrAppend(&out, "// Generated by capnpc-troupe from ", file.schema_path, ". Do not edit.\n",
                  "//\n// The messages of ", file.schema_path,
                  " as plain C++ structs, with their WireTraits\n"
                  "// (actors/wire.h). See docs/messages.md.\n\n");
  const std::string guard = Guard(file.header_path);
  absl::StrAppend(&out, "#ifndef ", guard, "\n#define ", guard, "\n\n");
  out +=
      "#include <bit>\n#include <cstdint>\n#include <limits>\n#include <string>\n#include <string_view>\n"
      "#include <vector>\n\n"
      "#include \"absl/status/status.h\"\n#include \"absl/status/statusor.h\"\n#include \"actors/ref.h\"\n"
      "#include \"actors/wire.h\"\n#include \"capnp/any.h\"\n#include \"net/codegen/runtime.h\"\n"
      "#include \"net/wire/codec.h\"\n";
  for (const std::string& include : file.includes) absl::StrAppend(&out, "#include \"", include, "\"\n");
  out += "\n";

  // Actor types named by $Troupe.actor: a Ref<A> member needs only a
  // declaration of A.
  for (const std::string& actor : file.actor_types) {
    std::vector<absl::string_view> parts = absl::StrSplit(actor, "::");
    const absl::string_view name = parts.back();
    parts.pop_back();
    if (parts.empty()) {
      absl::StrAppend(&out, "struct ", name, ";\n");
    } else {
      absl::StrAppend(&out, "namespace ", absl::StrJoin(parts, "::"), " {\nstruct ", name, ";\n}  // namespace ",
                      absl::StrJoin(parts, "::"), "\n");
    }
  }
  if (!file.actor_types.empty()) out += "\n";

  OpenNamespace(out, file.name_space);
  for (const EnumModel& e : file.enums) EmitEnum(out, e);
  for (const StructModel& s : file.structs) absl::StrAppend(&out, "struct ", s.flat_name, ";\n");
  if (!file.structs.empty()) out += "\n";
  for (const StructModel& s : file.structs) EmitStruct(out, s);
  CloseNamespace(out, file.name_space);

  if (!file.structs.empty()) {
    out += "namespace troupe {\n\n";
    for (const StructModel& s : file.structs) EmitTraits(out, file, s);
    out += "}  // namespace troupe\n\n";
  }
  absl::StrAppend(&out, "#endif  // ", guard, "\n");
  return out;
}

std::string EmitSource(const FileModel& file) {
  std::string out;
  absl::StrAppend(&out, "// Generated by capnpc-troupe from ", file.schema_path, ". Do not edit.\n\n",
                  "#include \"", file.header_path, "\"\n\n");
  if (file.structs.empty()) return out;
  out += "namespace troupe {\n\n";
  for (const StructModel& s : file.structs) EmitCodec(out, file, s);
  out += "}  // namespace troupe\n";
  return out;
}

}  // namespace troupe::codegen
