#include "net/codegen/runtime.h"

#include "absl/strings/str_cat.h"

namespace troupe::codegen {

absl::Status FieldError(const absl::Status& status, std::string_view field) {
  return absl::Status(status.code(), absl::StrCat(absl::string_view(field.data(), field.size()), ": ", status.message()));
}

absl::Status MalformedError(std::string_view what, std::string_view name, const kj::Exception& e) {
  return absl::InvalidArgumentError(
      absl::StrCat(absl::string_view(what.data(), what.size()), " ", absl::string_view(name.data(), name.size()), ": ",
                   absl::string_view(e.getDescription().cStr(), e.getDescription().size())));
}

}  // namespace troupe::codegen
