#include "net/codegen/model.h"

#include <algorithm>
#include <bit>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "capnp/dynamic.h"
#include "capnp/schema.h"
#include "net/codegen/names.h"

namespace troupe::codegen {
namespace {

namespace schema = ::capnp::schema;

// Annotations of /capnp/c++.capnp.
constexpr uint64_t kCxxNamespaceId = 0xb9c6f99ebf805f2cull;
constexpr uint64_t kCxxNameId = 0xf264a779fef191ceull;
// The file id of /net/wire/troupe.capnp.
constexpr uint64_t kTroupeFileId = 0xd5c1a4c8e0f3b217ull;

std::string Str(capnp::Text::Reader text) { return std::string(text.begin(), text.size()); }

// A pointer-typed value: its C++ type and the runtime.h codec for it.
struct PointerType {
  std::string cpp;
  std::string codec;
};

class ModelBuilder {
 public:
  ModelBuilder(const capnp::SchemaLoader& loader, schema::CodeGeneratorRequest::Reader request,
               schema::CodeGeneratorRequest::RequestedFile::Reader file, std::vector<std::string>& errors)
      : loader_(loader), file_(file), errors_(errors) {
    for (schema::Node::SourceInfo::Reader info : request.getSourceInfo()) source_info_.emplace(info.getId(), info);
    // Present when the schema imports /net/wire/troupe.capnp.
    KJ_IF_MAYBE(troupe, loader.tryGet(kTroupeFileId)) {
      for (schema::Node::NestedNode::Reader nested : troupe->getProto().getNestedNodes()) {
        if (nested.getName() == "ActorAddress") actor_address_id_ = nested.getId();
        if (nested.getName() == "actor") actor_annotation_id_ = nested.getId();
      }
    }
  }

  FileModel Build() {
    FileModel& m = model_;
    m.schema_path = Str(file_.getFilename());
    std::string stem = m.schema_path;
    if (absl::EndsWith(stem, ".capnp")) stem.resize(stem.size() - 6);
    m.header_path = stem + ".troupe.h";
    m.source_path = stem + ".troupe.cc";
    capnp::Schema file = loader_.get(file_.getId());
    m.name_space = NamespaceOf(file);
    CollectNested(file);
    OrderStructs();
    return std::move(model_);
  }

 private:
  void Error(absl::string_view where, absl::string_view what) {
    errors_.push_back(absl::StrCat(model_.schema_path, ": ", where, ": ", what));
  }

  // --- Names -----------------------------------------------------------------

  capnp::Schema FileOf(capnp::Schema s) const {
    while (!s.getProto().isFile()) s = loader_.get(s.getProto().getScopeId());
    return s;
  }

  std::vector<std::string> NamespaceOf(capnp::Schema file) {
    for (schema::Annotation::Reader a : file.getProto().getAnnotations()) {
      if (a.getId() != kCxxNamespaceId) continue;
      absl::string_view ns = a.getValue().getText().cStr();
      absl::ConsumePrefix(&ns, "::");
      if (ns.empty()) return {};
      return absl::StrSplit(ns, "::");
    }
    return {};
  }

  // "Outer.Inner" for a node declared as Inner inside Outer.
  static std::string NamePath(capnp::Schema s) {
    absl::string_view display = s.getProto().getDisplayName().cStr();
    const size_t colon = display.find(':');
    return std::string(colon == absl::string_view::npos ? display : display.substr(colon + 1));
  }

  // Capnp names cannot contain '_', so "Outer_Inner" names nothing else.
  static std::string FlatName(capnp::Schema s) { return absl::StrReplaceAll(NamePath(s), {{".", "_"}}); }

  // "::ns::Outer_Inner", including the header of another file if needed.
  std::string Qualified(capnp::Schema s) {
    capnp::Schema file = FileOf(s);
    if (file.getProto().getId() != file_.getId()) {
      std::string path = Str(file.getProto().getDisplayName());
      if (absl::EndsWith(path, ".capnp")) path.resize(path.size() - 6);
      path += ".troupe.h";
      if (std::find(model_.includes.begin(), model_.includes.end(), path) == model_.includes.end()) {
        model_.includes.push_back(path);
      }
    }
    std::vector<std::string> ns = NamespaceOf(file);
    std::string out;
    for (const std::string& part : ns) absl::StrAppend(&out, "::", part);
    return absl::StrCat(out, "::", FlatName(s));
  }

  std::string DisplayName(capnp::Schema s) {
    std::vector<std::string> parts = model_.name_space;
    parts.push_back(NamePath(s));
    return absl::StrJoin(parts, ".");
  }

  std::string DocOf(uint64_t id) const {
    auto it = source_info_.find(id);
    return it == source_info_.end() ? std::string() : Str(it->second.getDocComment());
  }
  std::string MemberDocOf(uint64_t id, uint index) const {
    auto it = source_info_.find(id);
    if (it == source_info_.end() || index >= it->second.getMembers().size()) return std::string();
    return Str(it->second.getMembers()[index].getDocComment());
  }

  bool HasCxxName(capnp::List<schema::Annotation>::Reader annotations) const {
    for (schema::Annotation::Reader a : annotations) {
      if (a.getId() == kCxxNameId) return true;
    }
    return false;
  }

  // --- Declarations ------------------------------------------------------------

  // Every struct and enum declared in `scope`, nested ones included.
  void CollectNested(capnp::Schema scope) {
    for (schema::Node::NestedNode::Reader nested : scope.getProto().getNestedNodes()) {
      capnp::Schema s = loader_.get(nested.getId());
      schema::Node::Reader node = s.getProto();
      const std::string where = NamePath(s);
      if (HasCxxName(node.getAnnotations())) {
        Error(where, "$Cxx.name is not supported: troupe names C++ types after the schema");
      }
      switch (node.which()) {
        case schema::Node::STRUCT:
          AddStruct(s.asStruct());
          break;
        case schema::Node::ENUM:
          AddEnum(s.asEnum());
          break;
        case schema::Node::INTERFACE:
          Error(absl::StrCat("interface ", where),
                "interfaces are not supported: a troupe message is plain data, and actors take the place of "
                "interfaces");
          break;
        case schema::Node::CONST:
          Error(absl::StrCat("const ", where), "constants are not supported in troupe message schemas");
          break;
        case schema::Node::ANNOTATION:
          break;  // Declares metadata only; nothing to generate.
        case schema::Node::FILE:
          break;
      }
      if (node.isStruct()) CollectNested(s);
      if (node.isStruct() || node.isEnum()) {
        if (scope.getProto().isStruct()) nested_of_[scope.getProto().getId()].push_back(s);
      }
    }
  }

  void AddEnum(capnp::EnumSchema e) {
    EnumModel m;
    m.flat_name = FlatName(e);
    m.doc = DocOf(e.getProto().getId());
    for (capnp::EnumSchema::Enumerant en : e.getEnumerants()) {
      if (HasCxxName(en.getProto().getAnnotations())) {
        Error(absl::StrCat("enum ", NamePath(e), ", enumerant `", Str(en.getProto().getName()), "`"),
              "$Cxx.name is not supported: troupe names enumerants after the schema");
      }
      m.enumerants.push_back({EnumerantName(en.getProto().getName().cStr()), static_cast<uint16_t>(en.getOrdinal()),
                              MemberDocOf(e.getProto().getId(), en.getIndex())});
    }
    model_.enums.push_back(std::move(m));
  }

  void AddStruct(capnp::StructSchema s) {
    schema::Node::Reader node = s.getProto();
    const std::string where = absl::StrCat("struct ", NamePath(s));
    if (node.getIsGeneric()) {
      Error(where, "generic structs are not supported: declare a struct for each concrete message");
      return;
    }
    schema::Node::Struct::Reader st = node.getStruct();
    if (st.getDiscriminantCount() > 0) {
      std::vector<std::string> names;
      for (capnp::StructSchema::Field f : s.getUnionFields()) names.push_back(Str(f.getProto().getName()));
      Error(where, absl::StrCat("unions are not supported (fields ", absl::StrJoin(names, ", "),
                                 "): a plain C++ struct has no place for the tag; use separate message types or "
                                 "optional fields"));
    }
    StructModel m;
    m.id = node.getId();
    m.flat_name = FlatName(s);
    m.display_name = DisplayName(s);
    m.doc = DocOf(m.id);
    m.data_words = st.getDataWordCount();
    m.pointers = st.getPointerCount();

    std::vector<capnp::StructSchema::Field> fields;
    for (capnp::StructSchema::Field f : s.getFields()) fields.push_back(f);
    std::stable_sort(fields.begin(), fields.end(), [](const auto& a, const auto& b) {
      return a.getProto().getCodeOrder() < b.getProto().getCodeOrder();
    });
    std::set<std::string> names;
    for (capnp::StructSchema::Field f : fields) {
      const std::string field_where = absl::StrCat(where, ", field `", Str(f.getProto().getName()), "`");
      if (f.getProto().getDiscriminantValue() != schema::Field::NO_DISCRIMINANT) continue;  // reported above
      std::optional<FieldModel> field = BuildField(f, field_where, m.id);
      if (!field) continue;
      if (!names.insert(field->name).second) {
        Error(field_where, absl::StrCat("its C++ name `", field->name, "` is taken by another field"));
        continue;
      }
      field->doc = MemberDocOf(m.id, f.getIndex());
      m.fields.push_back(std::move(*field));
    }
    model_.structs.push_back(std::move(m));
  }

  // --- Fields ------------------------------------------------------------------

  std::optional<FieldModel> BuildField(capnp::StructSchema::Field f, const std::string& where, uint64_t owner) {
    schema::Field::Reader proto = f.getProto();
    if (proto.isGroup()) {
      Error(where, "groups and named unions are not supported: declare a separate struct and use it as a field");
      return std::nullopt;
    }
    if (HasCxxName(proto.getAnnotations())) {
      Error(where, "$Cxx.name is not supported: troupe names members after the schema");
      return std::nullopt;
    }
    std::optional<std::string> actor;
    for (schema::Annotation::Reader a : proto.getAnnotations()) {
      if (actor_annotation_id_ != 0 && a.getId() == actor_annotation_id_) {
        absl::string_view text = a.getValue().getText().cStr();
        absl::ConsumePrefix(&text, "::");
        actor = std::string(text);
      }
    }
    schema::Field::Slot::Reader slot = proto.getSlot();
    capnp::Type type = f.getType();
    schema::Value::Reader default_value = slot.getDefaultValue();

    FieldModel m;
    m.name = SnakeCase(proto.getName().cStr());
    m.offset = slot.getOffset();

    if (actor && !IsActorAddress(type)) {
      Error(where, "$Troupe.actor belongs on a Troupe.ActorAddress field");
      return std::nullopt;
    }
    if (actor && !IsQualifiedCppName(*actor)) {
      Error(where, absl::StrCat("$Troupe.actor(\"", *actor,
                                 "\") must name a class at namespace scope, like \"chat::Room\" (no templates)"));
      return std::nullopt;
    }

    if (IsScalar(type)) {
      if (!ScalarField(type, default_value, m, where)) return std::nullopt;
      return m;
    }
    m.storage = FieldModel::Storage::kPointer;
    bool has_default = false;
    switch (type.which()) {
      case schema::Type::TEXT:
        has_default = default_value.hasText() && default_value.getText().size() > 0;
        if (has_default) m.initializer = CppStringExpression(default_value.getText().cStr());
        break;
      case schema::Type::DATA:
        if (default_value.hasData() && default_value.getData().size() > 0) {
          has_default = true;
          capnp::Data::Reader d = default_value.getData();
          m.initializer = CppStringExpression(absl::string_view(reinterpret_cast<const char*>(d.begin()), d.size()));
        }
        break;
      case schema::Type::LIST:
        if (default_value.hasList()) {
          capnp::DynamicList::Reader list = default_value.getList().getAs<capnp::DynamicList>(type.asList());
          if (list.size() > 0) {
            has_default = true;
            std::optional<std::string> init = ValueExpression(list, type, where, owner);
            if (!init) return std::nullopt;
            m.initializer = *init;
          }
        }
        break;
      case schema::Type::STRUCT:
        if (!IsActorAddress(type) && default_value.hasStruct()) {
          has_default = true;
          std::optional<std::string> init = ValueExpression(
              default_value.getStruct().getAs<capnp::DynamicStruct>(type.asStruct()), type, where, owner);
          if (!init) return std::nullopt;
          m.initializer = *init;
        } else if (IsActorAddress(type) && default_value.hasStruct()) {
          Error(where, "an actor address cannot have a default value");
          return std::nullopt;
        }
        break;
      default:
        break;
    }
    std::optional<PointerType> pointer = MapPointer(type, actor, has_default, where);
    if (!pointer) return std::nullopt;
    m.cpp_type = pointer->cpp;
    m.codec = pointer->codec;
    if (type.isStruct() && !IsActorAddress(type)) AddValueDependency(owner, type.asStruct());
    return m;
  }

  bool IsActorAddress(capnp::Type type) const {
    return type.isStruct() && actor_address_id_ != 0 && type.asStruct().getProto().getId() == actor_address_id_;
  }

  static bool IsScalar(capnp::Type type) {
    switch (type.which()) {
      case schema::Type::BOOL:
      case schema::Type::INT8:
      case schema::Type::INT16:
      case schema::Type::INT32:
      case schema::Type::INT64:
      case schema::Type::UINT8:
      case schema::Type::UINT16:
      case schema::Type::UINT32:
      case schema::Type::UINT64:
      case schema::Type::FLOAT32:
      case schema::Type::FLOAT64:
      case schema::Type::ENUM:
        return true;
      default:
        return false;
    }
  }

  // The C++ type of a scalar (or enum) type.
  std::string ScalarCpp(capnp::Type type) {
    switch (type.which()) {
      case schema::Type::BOOL:
        return "bool";
      case schema::Type::INT8:
        return "int8_t";
      case schema::Type::INT16:
        return "int16_t";
      case schema::Type::INT32:
        return "int32_t";
      case schema::Type::INT64:
        return "int64_t";
      case schema::Type::UINT8:
        return "uint8_t";
      case schema::Type::UINT16:
        return "uint16_t";
      case schema::Type::UINT32:
        return "uint32_t";
      case schema::Type::UINT64:
        return "uint64_t";
      case schema::Type::FLOAT32:
        return "float";
      case schema::Type::FLOAT64:
        return "double";
      case schema::Type::ENUM:
        return Qualified(type.asEnum());
      default:
        return "";
    }
  }

  std::string EnumValueExpression(capnp::EnumSchema e, uint16_t value) {
    const std::string type = Qualified(e);
    capnp::EnumSchema::EnumerantList list = e.getEnumerants();
    if (value < list.size()) return absl::StrCat(type, "::", EnumerantName(list[value].getProto().getName().cStr()));
    return absl::StrCat("static_cast<", type, ">(", value, ")");
  }

  // A scalar or enum field: its initializer and the bits it is XORed with.
  bool ScalarField(capnp::Type type, schema::Value::Reader v, FieldModel& m, const std::string& where) {
    m.cpp_type = ScalarCpp(type);
    uint64_t bits = 0;
    switch (type.which()) {
      case schema::Type::BOOL:
        m.storage = FieldModel::Storage::kBool;
        m.initializer = v.getBool() ? "true" : "false";
        m.default_bits = m.initializer;
        return true;
      case schema::Type::INT8:
        m.initializer = SignedLiteral(v.getInt8(), 8);
        bits = static_cast<uint8_t>(v.getInt8());
        break;
      case schema::Type::INT16:
        m.initializer = SignedLiteral(v.getInt16(), 16);
        bits = static_cast<uint16_t>(v.getInt16());
        break;
      case schema::Type::INT32:
        m.initializer = SignedLiteral(v.getInt32(), 32);
        bits = static_cast<uint32_t>(v.getInt32());
        break;
      case schema::Type::INT64:
        m.initializer = SignedLiteral(v.getInt64(), 64);
        bits = static_cast<uint64_t>(v.getInt64());
        break;
      case schema::Type::UINT8:
        m.initializer = UnsignedLiteral(v.getUint8());
        bits = v.getUint8();
        break;
      case schema::Type::UINT16:
        m.initializer = UnsignedLiteral(v.getUint16());
        bits = v.getUint16();
        break;
      case schema::Type::UINT32:
        m.initializer = UnsignedLiteral(v.getUint32());
        bits = v.getUint32();
        break;
      case schema::Type::UINT64:
        m.initializer = UnsignedLiteral(v.getUint64());
        bits = v.getUint64();
        break;
      case schema::Type::FLOAT32:
        m.initializer = FloatLiteral(v.getFloat32());
        bits = std::bit_cast<uint32_t>(v.getFloat32());
        break;
      case schema::Type::FLOAT64:
        m.initializer = DoubleLiteral(v.getFloat64());
        bits = std::bit_cast<uint64_t>(v.getFloat64());
        break;
      case schema::Type::ENUM:
        m.initializer = EnumValueExpression(type.asEnum(), v.getEnum());
        bits = v.getEnum();
        break;
      default:
        Error(where, "internal: not a scalar");
        return false;
    }
    m.default_bits = HexLiteral(bits);
    return true;
  }

  // The C++ type and codec of a pointer-typed value. `actor`: the field's
  // $Troupe.actor; `write_empty`: the field has a non-empty default.
  std::optional<PointerType> MapPointer(capnp::Type type, const std::optional<std::string>& actor, bool write_empty,
                                        const std::string& where) {
    const std::string we = write_empty ? ", true" : "";
    switch (type.which()) {
      case schema::Type::TEXT:
        return PointerType{"std::string", absl::StrCat("::troupe::codegen::TextCodec<", write_empty ? "true" : "", ">")};
      case schema::Type::DATA:
        return PointerType{"std::string", absl::StrCat("::troupe::codegen::DataCodec<", write_empty ? "true" : "", ">")};
      case schema::Type::STRUCT: {
        capnp::StructSchema s = type.asStruct();
        if (IsActorAddress(type)) {
          if (actor) {
            AddActor(*actor);
            return PointerType{absl::StrCat("::troupe::Ref<::", *actor, ">"),
                               absl::StrCat("::troupe::codegen::ActorRefCodec<::", *actor, ">")};
          }
          return PointerType{"::troupe::ActorRef", "::troupe::codegen::ActorRefCodec<void>"};
        }
        if (!CheckStructType(s, where)) return std::nullopt;
        const std::string name = Qualified(s);
        return PointerType{name, absl::StrCat("::troupe::codegen::StructCodec<", name, we, ">")};
      }
      case schema::Type::LIST: {
        capnp::Type element = type.asList().getElementType();
        if (IsActorAddress(element)) {
          Error(where,
                "List(Troupe.ActorAddress) is not supported: a list element has no null for an empty Ref; put the "
                "address in a struct and use a List of that struct");
          return std::nullopt;
        }
        if (IsScalar(element)) {
          const std::string cpp = ScalarCpp(element);
          return PointerType{absl::StrCat("std::vector<", cpp, ">"),
                             absl::StrCat("::troupe::codegen::ScalarListCodec<", cpp, we, ">")};
        }
        if (element.isStruct()) {
          if (!CheckStructType(element.asStruct(), where)) return std::nullopt;
          const std::string name = Qualified(element.asStruct());
          return PointerType{absl::StrCat("std::vector<", name, ">"),
                             absl::StrCat("::troupe::codegen::StructListCodec<", name, we, ">")};
        }
        if (element.isVoid()) {
          Error(where, "List(Void) is not supported: it carries only a length");
          return std::nullopt;
        }
        std::optional<PointerType> inner = MapPointer(element, actor, false, where);
        if (!inner) return std::nullopt;
        return PointerType{absl::StrCat("std::vector<", inner->cpp, ">"),
                           absl::StrCat("::troupe::codegen::ListCodec<", inner->codec, we, ">")};
      }
      case schema::Type::VOID:
        Error(where, "Void fields are not supported: they carry nothing (Void belongs in unions, which troupe "
                     "does not support either)");
        return std::nullopt;
      case schema::Type::INTERFACE:
        Error(where, "interface fields are not supported: a message is plain data; send an actor Ref "
                     "(Troupe.ActorAddress) instead");
        return std::nullopt;
      case schema::Type::ANY_POINTER:
        Error(where, "AnyPointer and generic parameters are not supported: every field needs a concrete type");
        return std::nullopt;
      default:
        Error(where, "internal: unexpected type");
        return std::nullopt;
    }
  }

  bool CheckStructType(capnp::StructSchema s, const std::string& where) {
    if (s.isBranded() || s.getProto().getIsGeneric()) {
      Error(where, absl::StrCat("generic struct ", NamePath(s), " is not supported"));
      return false;
    }
    return true;
  }

  void AddActor(const std::string& actor) {
    auto& list = model_.actor_types;
    if (std::find(list.begin(), list.end(), actor) == list.end()) list.push_back(actor);
  }

  void AddValueDependency(uint64_t owner, capnp::StructSchema s) {
    if (FileOf(s).getProto().getId() != file_.getId()) return;
    value_deps_[owner].push_back(s.getProto().getId());
  }

  // --- Default values of pointer fields -----------------------------------------

  // A C++ expression for a list or struct default. `owner` needs every
  // struct named here complete before its definition.
  std::optional<std::string> ValueExpression(capnp::DynamicValue::Reader value, capnp::Type type,
                                             const std::string& where, uint64_t owner) {
    switch (type.which()) {
      case schema::Type::BOOL:
        return value.as<bool>() ? "true" : "false";
      case schema::Type::INT8:
        return SignedLiteral(value.as<int8_t>(), 8);
      case schema::Type::INT16:
        return SignedLiteral(value.as<int16_t>(), 16);
      case schema::Type::INT32:
        return SignedLiteral(value.as<int32_t>(), 32);
      case schema::Type::INT64:
        return SignedLiteral(value.as<int64_t>(), 64);
      case schema::Type::UINT8:
        return UnsignedLiteral(value.as<uint8_t>());
      case schema::Type::UINT16:
        return UnsignedLiteral(value.as<uint16_t>());
      case schema::Type::UINT32:
        return UnsignedLiteral(value.as<uint32_t>());
      case schema::Type::UINT64:
        return UnsignedLiteral(value.as<uint64_t>());
      case schema::Type::FLOAT32:
        return FloatLiteral(value.as<float>());
      case schema::Type::FLOAT64:
        return DoubleLiteral(value.as<double>());
      case schema::Type::ENUM:
        return EnumValueExpression(type.asEnum(), value.as<capnp::DynamicEnum>().getRaw());
      case schema::Type::TEXT:
        return absl::StrCat("std::string(", CppStringExpression(value.as<capnp::Text>().cStr()), ")");
      case schema::Type::DATA: {
        capnp::Data::Reader d = value.as<capnp::Data>();
        return absl::StrCat("std::string(",
                            CppStringExpression(absl::string_view(reinterpret_cast<const char*>(d.begin()), d.size())),
                            ")");
      }
      case schema::Type::LIST: {
        capnp::DynamicList::Reader list = value.as<capnp::DynamicList>();
        capnp::Type element = type.asList().getElementType();
        std::vector<std::string> items;
        for (capnp::DynamicValue::Reader item : list) {
          std::optional<std::string> e = ValueExpression(item, element, where, owner);
          if (!e) return std::nullopt;
          items.push_back(std::move(*e));
        }
        return absl::StrCat("{", absl::StrJoin(items, ", "), "}");
      }
      case schema::Type::STRUCT: {
        if (IsActorAddress(type)) {
          Error(where, "an actor address cannot appear in a default value");
          return std::nullopt;
        }
        capnp::StructSchema s = type.asStruct();
        if (!CheckStructType(s, where)) return std::nullopt;
        AddValueDependency(owner, s);
        capnp::DynamicStruct::Reader st = value.as<capnp::DynamicStruct>();
        std::vector<capnp::StructSchema::Field> fields;
        for (capnp::StructSchema::Field f : s.getFields()) fields.push_back(f);
        std::stable_sort(fields.begin(), fields.end(), [](const auto& a, const auto& b) {
          return a.getProto().getCodeOrder() < b.getProto().getCodeOrder();
        });
        std::vector<std::string> items;
        for (capnp::StructSchema::Field f : fields) {
          if (f.getProto().isGroup() || !st.has(f, capnp::HasMode::NON_DEFAULT)) continue;
          std::optional<std::string> e = ValueExpression(st.get(f), f.getType(), where, owner);
          if (!e) return std::nullopt;
          items.push_back(absl::StrCat(".", SnakeCase(f.getProto().getName().cStr()), " = ", *e));
        }
        return absl::StrCat(Qualified(s), "{", absl::StrJoin(items, ", "), "}");
      }
      default:
        Error(where, "this default value is not supported");
        return std::nullopt;
    }
  }

  // --- Order -----------------------------------------------------------------------

  // Structs in an order where each one follows the structs it holds by
  // value; nested type aliases filled in.
  void OrderStructs() {
    for (StructModel& s : model_.structs) {
      for (capnp::Schema nested : nested_of_[s.id]) {
        const std::string path = NamePath(nested);
        s.nested.emplace_back(path.substr(path.rfind('.') + 1), FlatName(nested));
      }
    }
    absl::flat_hash_map<uint64_t, size_t> index;
    for (size_t i = 0; i < model_.structs.size(); ++i) index[model_.structs[i].id] = i;
    enum class Mark { kNew, kVisiting, kDone };
    std::vector<Mark> marks(model_.structs.size(), Mark::kNew);
    std::vector<StructModel> ordered;
    bool cycle = false;
    std::function<void(size_t)> visit = [&](size_t i) {
      marks[i] = Mark::kVisiting;
      for (uint64_t dep : value_deps_[model_.structs[i].id]) {
        auto it = index.find(dep);
        if (it == index.end()) continue;
        if (marks[it->second] == Mark::kVisiting) {
          if (!cycle) {
            Error(absl::StrCat("struct ", model_.structs[i].display_name),
                  absl::StrCat("holds ", model_.structs[it->second].display_name,
                               " by value, which (directly or not) holds it: C++ structs cannot contain each other; "
                               "make one of the fields a List"));
          }
          cycle = true;
          continue;
        }
        if (marks[it->second] == Mark::kNew) visit(it->second);
      }
      marks[i] = Mark::kDone;
      ordered.push_back(model_.structs[i]);
    };
    for (size_t i = 0; i < model_.structs.size(); ++i) {
      if (marks[i] == Mark::kNew) visit(i);
    }
    model_.structs = std::move(ordered);
  }

  const capnp::SchemaLoader& loader_;
  schema::CodeGeneratorRequest::RequestedFile::Reader file_;
  std::vector<std::string>& errors_;
  std::map<uint64_t, schema::Node::SourceInfo::Reader> source_info_;
  uint64_t actor_address_id_ = 0;
  uint64_t actor_annotation_id_ = 0;
  std::map<uint64_t, std::vector<capnp::Schema>> nested_of_;
  std::map<uint64_t, std::vector<uint64_t>> value_deps_;
  FileModel model_;
};

}  // namespace

FileModel BuildModel(const capnp::SchemaLoader& loader, schema::CodeGeneratorRequest::Reader request,
                     schema::CodeGeneratorRequest::RequestedFile::Reader file, std::vector<std::string>& errors) {
  return ModelBuilder(loader, request, file, errors).Build();
}

}  // namespace troupe::codegen
