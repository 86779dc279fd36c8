// WireWriter and WireReader: what a generated message codec works on (see
// actors/wire.h for WireTraits, and net/codegen/ for the plugin that writes
// the codecs).
//
// A writer wraps the Cap'n Proto pointer the message is encoded into; a
// reader the pointer it is decoded from. Both carry the RefCodec of the
// node doing the work, which turns a Ref inside a message into an
// ActorAddress and back; without one (a codec used outside any node) a
// non-empty Ref fails to encode and an address fails to decode.
//
// Errors: Encode cannot return one, so the writer keeps the first error
// (status()); the sender checks it before anything is sent, since the
// message may be half written. Decode returns
// its error; Cap'n Proto's own checks (bounds, traversal and nesting
// limits) throw kj::Exception, which generated Decode functions turn into
// InvalidArgument.
//
// Who may call what: a writer or reader is used by one thread, for one
// message.

#ifndef TROUPE_NET_WIRE_CODEC_H_
#define TROUPE_NET_WIRE_CODEC_H_

#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "actors/ref.h"
#include "actors/wire.h"
#include "capnp/any.h"
#include "net/wire/troupe.capnp.h"

namespace troupe {

// Turns Refs into addresses and back; implemented by a Node.
class RefCodec {
 public:
  virtual ~RefCodec() = default;
  // `ref` is not empty.
  virtual absl::Status Encode(const ActorRef& ref, wire::ActorAddress::Builder out) = 0;
  // `actor_type` is the C++ type the message declares for the Ref (as
  // internal::TypeName prints it), or empty for an untyped ActorRef. A local
  // actor of another type is an error.
  virtual absl::StatusOr<ActorRef> Decode(wire::ActorAddress::Reader in, std::string_view actor_type) = 0;
};

class WireWriter {
 public:
  WireWriter(::capnp::AnyPointer::Builder payload, RefCodec* refs) : payload_(payload), refs_(refs) {}

  // Where the message's root struct goes.
  ::capnp::AnyPointer::Builder payload() { return payload_; }

  // Writes `ref` into `slot`, a null pointer: left null for an empty Ref,
  // otherwise the address the RefCodec writes. Without a RefCodec the slot
  // stays null and FailedPrecondition is kept (see Fail); an error of the
  // RefCodec is kept too.
  void EncodeRef(const ActorRef& ref, ::capnp::AnyPointer::Builder slot);

  // Keeps the first error.
  void Fail(absl::Status status) {
    if (status_.ok()) status_ = std::move(status);
  }
  const absl::Status& status() const { return status_; }

 private:
  ::capnp::AnyPointer::Builder payload_;
  RefCodec* refs_;
  absl::Status status_;
};

class WireReader {
 public:
  WireReader(::capnp::AnyPointer::Reader payload, RefCodec* refs) : payload_(payload), refs_(refs) {}

  ::capnp::AnyPointer::Reader payload() const { return payload_; }

  // An empty ActorRef for a null slot; FailedPrecondition without a
  // RefCodec; otherwise what the RefCodec makes of the address. Throws
  // kj::Exception if the slot holds anything but a struct (generated Decode
  // functions catch it).
  absl::StatusOr<ActorRef> DecodeRef(::capnp::AnyPointer::Reader slot, std::string_view actor_type);

 private:
  ::capnp::AnyPointer::Reader payload_;
  RefCodec* refs_;
};

}  // namespace troupe

#endif  // TROUPE_NET_WIRE_CODEC_H_
