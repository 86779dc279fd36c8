// The seam between the core and the network layer (net/): what a message
// type needs to cross nodes, how an actor type says which messages other
// nodes may send it, and the proxy a Ref points to when its actor lives on
// another node. The core never includes net/; net/ implements what is
// declared here.
//
// A message that crosses nodes is a plain C++ struct generated from a
// `.capnp` schema by troupe's Cap'n Proto plugin (see bazel/capnp.bzl,
// `troupe_messages`). The plugin also writes its WireTraits specialization:
//
//   template <> struct troupe::WireTraits<chat::Post> {
//     static constexpr uint64_t kTypeId = 0x...;          // the schema id
//     static constexpr std::string_view kName = "chat.Post";
//     static void Encode(const chat::Post&, WireWriter&);
//     static absl::StatusOr<chat::Post> Decode(WireReader&);
//   };
//
// Local sends of such a struct never serialize: it moves into the mailbox
// like any other message. Replies of remote asks are void, a wire struct, or
// one of the scalars declared below (bool, int32_t, int64_t, uint32_t,
// uint64_t, double, std::string).
//
// An actor type that other nodes may send to lists what they may send:
//
//   struct Room : troupe::Actor<Room> {
//     using Remote = troupe::Accepts<chat::Join, chat::Post, chat::History>;
//     ...
//   };
//
// A send through a Ref<Room> of a type Room does not list fails at the
// sender (InvalidArgument, RefusedTypeError's text) without crossing; one
// that arrives anyway (an untyped Ref, another build of the program) is
// refused by the receiving node alone: an ask fails with the same text, a
// tell is counted (see net/node.h). Each listed type must be a wire type
// handled by the actor, with a reply type that can cross too, checked at
// compile time (actors/remote_dispatch.h): listing a struct of your own
// that no .capnp schema declares is an error that names it and says to
// declare it in one.

#ifndef TROUPE_ACTORS_WIRE_H_
#define TROUPE_ACTORS_WIRE_H_

#include <concepts>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "actors/actor_cell.h"
#include "actors/future.h"

namespace troupe {

// Defined in net/wire/codec.h: the Cap'n Proto builder and reader a
// generated codec works on, with what it needs to encode and decode Refs.
class WireWriter;
class WireReader;

// Specialized for each wire type; see the header comment.
template <class T>
struct WireTraits;

template <class T>
concept WireType = requires {
  { WireTraits<T>::kTypeId } -> std::convertible_to<uint64_t>;
};

// What may be sent to another node: a wire type other than the built-in
// scalars (those are for replies only, so that a local Tell of an int
// never needs the network layer linked in).
template <class T>
concept WireMessage = WireType<T> && !std::is_scalar_v<T> && !std::is_same_v<T, std::string>;

// What an ask may reply across nodes.
template <class T>
concept WireReplyType = std::is_void_v<T> || WireType<T>;

// The messages other nodes may send an actor type: `using Remote = Accepts<...>`.
template <class... M>
struct Accepts {};

// Built-in reply types; defined in net/wire/builtin.cc against
// net/wire/builtin.capnp (whose struct ids these are).
#define TROUPE_BUILTIN_WIRE_TYPE(T, id, name)              \
  template <>                                              \
  struct WireTraits<T> {                                   \
    static constexpr uint64_t kTypeId = id;                \
    static constexpr std::string_view kName = name;        \
    static void Encode(const T& value, WireWriter& out);   \
    static absl::StatusOr<T> Decode(WireReader& in);       \
  };
TROUPE_BUILTIN_WIRE_TYPE(bool, 0xc58d8eb01a200bf4, "troupe.Bool")
TROUPE_BUILTIN_WIRE_TYPE(int32_t, 0x9a85bc4b2b4df8f9, "troupe.Int32")
TROUPE_BUILTIN_WIRE_TYPE(int64_t, 0x9a7ac2cd8fbadd98, "troupe.Int64")
TROUPE_BUILTIN_WIRE_TYPE(uint32_t, 0xfabec9cec0b9ae72, "troupe.UInt32")
TROUPE_BUILTIN_WIRE_TYPE(uint64_t, 0xc832be3f4e5cfada, "troupe.UInt64")
TROUPE_BUILTIN_WIRE_TYPE(double, 0x8192060f68ce989a, "troupe.Float64")
TROUPE_BUILTIN_WIRE_TYPE(std::string, 0xc44e90941e79a980, "troupe.Text")
#undef TROUPE_BUILTIN_WIRE_TYPE
// The type id of a void reply (an empty payload).
inline constexpr uint64_t kVoidWireTypeId = 0xc63e14f1a843b456;

namespace internal {

// Whether actor type A lists M in `using Remote = Accepts<...>`.
template <class A, class List>
struct ListsRemote : std::false_type {};
template <class A, class... M>
struct ListsRemote<A, Accepts<M...>> {
  template <class X>
  static constexpr bool kHas = (std::is_same_v<X, M> || ...);
};
template <class A>
constexpr bool kHasRemoteList = requires { typename A::Remote; };
template <class A, class M>
constexpr bool AcceptsRemotely() {
  if constexpr (kHasRemoteList<A>) {
    return ListsRemote<A, typename A::Remote>::template kHas<M>;
  } else {
    return false;
  }
}

// What ActorCell::DeliverRemote's Unimplemented error says of an actor type
// without a `Remote` list (the dispatch in net/ tells the two cases apart).
inline constexpr std::string_view kAcceptsNoMessages = " accepts no messages from other nodes";

// The error of a message that actor type `actor` does not accept from
// other nodes. `accepts_some`: the type has a `Remote` list (without this
// message type).
absl::Status RefusedTypeError(std::string_view actor, std::string_view message, bool accepts_some);

// Type-erased encoder of a value of a wire type.
using EncodeFn = void (*)(const void* value, WireWriter& out);

template <class T>
void EncodeErased(const void* value, WireWriter& out) {
  WireTraits<T>::Encode(*static_cast<const T*>(value), out);
}

// Where the reply of a remote ask goes on the asking node. net/ calls
// Complete exactly once: with the reply's payload (status OK), or with the
// error (payload null): the remote handler's error, DeadlineExceeded,
// Unavailable when the connection is lost, Cancelled at shutdown.
class RemoteReply {
 public:
  virtual ~RemoteReply() = default;
  virtual void Complete(WireReader* payload, absl::Status status) noexcept = 0;
};

// The RemoteReply of an ask replying R: decodes the payload into the
// promise.
template <class R>
class RemoteReplyTo final : public RemoteReply {
 public:
  explicit RemoteReplyTo(Promise<R> promise) : promise_(std::move(promise)) {}

  void Complete(WireReader* payload, absl::Status status) noexcept override {
    if (!status.ok()) {
      promise_.SetError(std::move(status));
    } else if constexpr (std::is_void_v<R>) {
      promise_.SetValue();
    } else {
      absl::StatusOr<R> value = WireTraits<R>::Decode(*payload);
      if (value.ok()) {
        promise_.SetValue(*std::move(value));
      } else {
        promise_.SetError(value.status());
      }
    }
  }

 private:
  Promise<R> promise_;
};

// A tell or an ask leaving for a remote actor. Encoded before SendRemote
// returns: `value` need not outlive the call.
struct RemoteSend {
  uint64_t type_id = 0;
  std::string_view type_name;  // the C++ type, static storage
  EncodeFn encode = nullptr;
  const void* value = nullptr;
  // The actor sending, or null from outside actors.
  ActorCell* sender = nullptr;
  // Null for a tell.
  std::unique_ptr<RemoteReply> reply;
  absl::Duration timeout = absl::InfiniteDuration();
};

// Where the reply of an ask that arrived from another node goes: back to
// the asking node. Called once, from the thread that completes the ask.
class ReplyRoute {
 public:
  virtual ~ReplyRoute() = default;
  virtual void Send(uint64_t type_id, EncodeFn encode, const void* value) noexcept = 0;
  virtual void Fail(const absl::Status& status) noexcept = 0;
};

// The cell a Ref points to when its actor lives on another node. It never
// runs and its mailbox is closed; Ref sends, stops and monitors go through
// these virtuals instead (ActorCell::is_remote() says which cells are
// proxies). Implemented by net/.
class RemoteCell : public ActorCell {
 public:
  // Any thread. OK once queued for the wire; ResourceExhausted if the
  // connection's outbound buffer is full (nothing queued); Unavailable if
  // the node cannot be reached; InvalidArgument if the message does not
  // encode. The reply, if any, is completed in every case.
  virtual absl::Status SendRemote(RemoteSend& send) noexcept = 0;
  // Any thread. A send the Ref refused itself, before anything crossed:
  // `error` (InvalidArgument) names the message type and why it cannot
  // cross — no .capnp schema declares it, the actor type does not list it,
  // or its reply cannot cross. Counted, and logged once per kind (the
  // error's text): for a Tell, which returns nothing, the only trace.
  virtual void RefusedAtSender(const absl::Status& error) noexcept = 0;
  virtual void StopRemote(absl::Status reason) noexcept = 0;
  virtual void WatchRemote(ActorCell* watcher, DownFactory make_down) noexcept = 0;
  // Removes what WatchRemote registered for (watcher, monitor), if still
  // there.
  virtual void UnwatchRemote(ActorCell* watcher, uint64_t monitor) noexcept = 0;
  // Links: `from` (a local actor) links itself with the remote actor, or
  // unlinks; ExitRemote: `from` stopped, and the remote side hears it
  // through its own watch of `from`, so only what is kept here goes.
  virtual void LinkRemote(ActorCell* from) noexcept = 0;
  virtual void UnlinkRemote(ActorCell* from) noexcept = 0;
  virtual void ExitRemote(ActorCell* from) noexcept = 0;

 protected:
  // Registers nothing with `core`: a proxy is not an actor of this system.
  explicit RemoteCell(SystemCore* core) noexcept;

 private:
  void HandleStart() final {}
  void HandleStop(const absl::Status&) final {}
  void DestroyState() noexcept final {}
  void GiveMailboxPlace() noexcept final {}
};

}  // namespace internal
}  // namespace troupe

#endif  // TROUPE_ACTORS_WIRE_H_
