// What capnpc-troupe writes for one schema file, worked out from the
// Cap'n Proto schemas before any text is written: C++ names and types, the
// layout of each field, what the header includes and forward-declares.
// BuildModel checks every feature troupe supports and reports each one it
// does not, naming file, struct and field; nothing is skipped silently.

#ifndef TROUPE_NET_CODEGEN_MODEL_H_
#define TROUPE_NET_CODEGEN_MODEL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "capnp/schema-loader.h"
#include "capnp/schema.capnp.h"

namespace troupe::codegen {

struct EnumModel {
  std::string flat_name;   // C++ name at namespace scope: "Outer_Color"
  std::string doc;
  struct Enumerant {
    std::string name;  // "kRed"
    uint16_t value = 0;
    std::string doc;
  };
  std::vector<Enumerant> enumerants;
};

struct FieldModel {
  enum class Storage {
    kScalar,   // in the data section: `offset` in units of its size
    kBool,     // in the data section: `offset` in bits
    kPointer,  // in the pointer section: `offset` is the slot
  };
  std::string name;         // C++ member: "user_id"
  std::string doc;
  std::string cpp_type;     // "int64_t", "std::vector<::ns::Item>"
  std::string initializer;  // "" or the default: "5", "::ns::Color::kRed"
  Storage storage = Storage::kScalar;
  uint32_t offset = 0;
  std::string default_bits;  // kScalar: "0x...u"; kBool: "true" / "false"
  std::string codec;         // kPointer: the runtime.h codec type
};

struct StructModel {
  uint64_t id = 0;
  std::string flat_name;     // "Outer_Inner"
  std::string display_name;  // "ns.Outer.Inner" (kName)
  std::string doc;
  uint16_t data_words = 0;
  uint16_t pointers = 0;
  std::vector<FieldModel> fields;  // in the order of the schema's code
  // Types declared inside this one: {"Inner", "Outer_Inner"}.
  std::vector<std::pair<std::string, std::string>> nested;
};

struct FileModel {
  std::string schema_path;  // "net/x/chat.capnp"
  std::string header_path;  // "net/x/chat.troupe.h"
  std::string source_path;  // "net/x/chat.troupe.cc"
  std::vector<std::string> name_space;   // {"chat", "v1"}; empty for global
  std::vector<std::string> includes;     // headers of imported schemas
  std::vector<std::string> actor_types;  // "chat::Room", to forward-declare
  std::vector<EnumModel> enums;
  std::vector<StructModel> structs;  // in an order C++ can define them
};

// `file_id` is one of request.getRequestedFiles(); `loader` holds every node
// of the request. Errors are appended to `errors`, one line each.
FileModel BuildModel(const capnp::SchemaLoader& loader, capnp::schema::CodeGeneratorRequest::Reader request,
                     capnp::schema::CodeGeneratorRequest::RequestedFile::Reader file,
                     std::vector<std::string>& errors);

}  // namespace troupe::codegen

#endif  // TROUPE_NET_CODEGEN_MODEL_H_
