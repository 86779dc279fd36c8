// Writes the text of a schema's generated header (foo.troupe.h) and source
// (foo.troupe.cc) from its FileModel.

#ifndef TROUPE_NET_CODEGEN_EMIT_H_
#define TROUPE_NET_CODEGEN_EMIT_H_

#include <string>

#include "net/codegen/model.h"

namespace troupe::codegen {

std::string EmitHeader(const FileModel& file);
std::string EmitSource(const FileModel& file);

}  // namespace troupe::codegen

#endif  // TROUPE_NET_CODEGEN_EMIT_H_
