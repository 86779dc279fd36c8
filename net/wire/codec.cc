#include "net/wire/codec.h"

namespace troupe {

void WireWriter::EncodeRef(const ActorRef& ref, ::capnp::AnyPointer::Builder slot) {
  if (!ref) return;  // An empty Ref is a null pointer.
  if (refs_ == nullptr) {
    Fail(absl::FailedPreconditionError("a Ref inside a message needs a troupe::Node to travel"));
    return;
  }
  absl::Status status = refs_->Encode(ref, slot.initAs<wire::ActorAddress>());
  if (!status.ok()) Fail(std::move(status));
}

absl::StatusOr<ActorRef> WireReader::DecodeRef(::capnp::AnyPointer::Reader slot, std::string_view actor_type) {
  if (slot.isNull()) return ActorRef();
  if (refs_ == nullptr) {
    return absl::FailedPreconditionError("a Ref inside a message needs a troupe::Node to travel");
  }
  // Throws kj::Exception if the slot holds anything but a struct.
  return refs_->Decode(slot.getAs<wire::ActorAddress>(), actor_type);
}

}  // namespace troupe
