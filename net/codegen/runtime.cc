#include "net/codegen/runtime.h"

#include "absl/strings/str_cat.h"

namespace troupe::codegen {

absl::StatusOr<capnp::List<capnp::AnyStruct>::Reader> ReadStructList(capnp::AnyPointer::Reader slot) {
  capnp::AnyList::Reader list = slot.getAs<capnp::AnyList>();
  if (list.getElementSize() == capnp::ElementSize::BIT) {
    return absl::InvalidArgumentError("a list of bits where a list of structs was expected");
  }
  return list.as<capnp::List<capnp::AnyStruct>>();
}

absl::StatusOr<PointerListReader> PointerListReader::Read(capnp::AnyPointer::Reader slot) {
  capnp::AnyList::Reader list = slot.getAs<capnp::AnyList>();
  PointerListReader r;
  r.size_ = list.size();
  if (r.size_ == 0) return r;  // null, or empty of any kind
  switch (list.getElementSize()) {
    case capnp::ElementSize::POINTER:
      r.pointers_ = list.as<capnp::List<capnp::AnyPointer>>();
      return r;
    case capnp::ElementSize::INLINE_COMPOSITE:
      r.structs_ = true;
      r.structs_list_ = list.as<capnp::List<capnp::AnyStruct>>();
      return r;
    default:
      return absl::InvalidArgumentError("a list of data where a list of pointers was expected");
  }
}

capnp::AnyPointer::Reader PointerListReader::operator[](unsigned i) const {
  if (!structs_) return pointers_[i];
  capnp::List<capnp::AnyPointer>::Reader first = structs_list_[i].getPointerSection();
  return first.size() > 0 ? first[0] : capnp::AnyPointer::Reader();
}

absl::Status FieldError(const absl::Status& status, std::string_view field) {
  return absl::Status(status.code(), absl::StrCat(absl::string_view(field.data(), field.size()), ": ", status.message()));
}

absl::Status MalformedError(std::string_view what, std::string_view name, const kj::Exception& e) {
  return absl::InvalidArgumentError(
      absl::StrCat(absl::string_view(what.data(), what.size()), " ", absl::string_view(name.data(), name.size()), ": ",
                   absl::string_view(e.getDescription().cStr(), e.getDescription().size())));
}

}  // namespace troupe::codegen
