// How a message from another node reaches a handler: ActorBox<A>::
// DeliverRemote decodes the payload into the C++ type A lists in
// `using Remote = troupe::Accepts<...>` (actors/wire.h) and queues it as an
// ordinary tell or ask. The reply of an ask goes back through the
// ReplyRoute net/ gave. Dispatch on the type id is a chain of compares over
// A's list, resolved at compile time.
//
// The list is checked when ActorBox<A> is instantiated (a Spawn<A>): a type
// that is not a message of a .capnp schema, has no handler in A, or whose
// handler replies a type that cannot cross is a compile error in troupe's
// words naming A and the type (CheckRemoteListed), and the only one.
//
// Who may call what: net/ only, from its I/O threads.

#ifndef TROUPE_ACTORS_REMOTE_DISPATCH_H_
#define TROUPE_ACTORS_REMOTE_DISPATCH_H_

#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "actors/actor_box.h"
#include "actors/actor_cell.h"
#include "actors/future.h"
#include "actors/handler.h"
#include "actors/system_core.h"
#include "actors/wire.h"

namespace troupe::internal {

// The reply type of A's handler for M, or void where there is none (the
// check below reports that).
template <class A, class M>
struct RemoteReplyOf {
  using type = void;
};
template <class A, class M>
  requires Handles<A, M>
struct RemoteReplyOf<A, M> : ReplyTypeOf<A, M> {};

// True if M may be in A's `Remote` list. Otherwise a compile error in
// troupe's words, with A and M named in the instantiation context the
// compiler prints with it, and false: RemoteDispatch instantiates nothing
// else of the list then, so this is the only error.
template <class A, class M>
constexpr bool CheckRemoteListed() {
  constexpr bool kWire = WireMessage<M>;
  constexpr bool kHandled = Handles<A, M>;
  static_assert(kWire,
                "troupe: the type M in the `Remote` list of actor type A is not a message of a .capnp schema, so it "
                "cannot cross nodes: declare it in a .capnp schema compiled with troupe_messages (bazel/capnp.bzl), "
                "or take it out of the list (both types named in this instantiation of CheckRemoteListed)");
  static_assert(!kWire || kHandled,
                "troupe: the type M in the `Remote` list of actor type A has no handler `On(const M&)` in A "
                "(both types named in this instantiation of CheckRemoteListed)");
  constexpr bool kReplyCrosses = WireReplyType<typename RemoteReplyOf<A, M>::type>;
  static_assert(!kWire || !kHandled || kReplyCrosses,
                "troupe: the handler in actor type A of the type M in its `Remote` list replies a type that cannot "
                "cross nodes: reply void, a wire type or a built-in scalar (actors/wire.h; both types named in this "
                "instantiation of CheckRemoteListed)");
  return kWire && kHandled && kReplyCrosses;
}

// A checked M of A's `Remote` list (CheckRemoteListed).
template <class A, class M>
absl::Status DeliverRemoteAs(ActorBox<A>& box, WireReader& in, std::unique_ptr<ReplyRoute> route) {
  using R = ReplyOf<A, M>;
  absl::StatusOr<M> msg = WireTraits<M>::Decode(in);
  if (!msg.ok()) return msg.status();
  if (!box.places().TryTake()) {
    box.core().CountDropped();
    return absl::ResourceExhaustedError(absl::StrCat("the mailbox of actor ", box.id(), " (",
                                                     std::string(box.type_name()), ") is full: message dropped"));
  }
  Message* m;
  if (route == nullptr) {
    m = new TellMessage<A, M>(*std::move(msg));
  } else {
    Promise<R> promise;
    promise.GetFuture().OnCompleteInline([route = std::move(route)](Result<R>&& result) mutable {
      if (!result.ok()) {
        if constexpr (std::is_void_v<R>) {
          route->Fail(result);
        } else {
          route->Fail(result.status());
        }
      } else if constexpr (std::is_void_v<R>) {
        route->Send(kVoidWireTypeId, nullptr, nullptr);
      } else {
        route->Send(WireTraits<R>::kTypeId, &EncodeErased<R>, &*result);
      }
    });
    m = new AskMessage<A, M>(*std::move(msg), std::move(promise));
  }
  if constexpr (MailboxCapacityOf<A>() > 0) m->set_holds_mailbox_place();
  if (!box.Enqueue(m)) box.places().Give();
  return absl::OkStatus();
}

template <class A, class List>
struct RemoteDispatch;

template <class A, class... M>
struct RemoteDispatch<A, Accepts<M...>> {
  // Every type of the list is checked (each bad one reported) before any
  // is used.
  static constexpr bool kListValid = (CheckRemoteListed<A, M>() & ... & true);

  static absl::Status Deliver(ActorBox<A>& box, uint64_t type_id, WireReader& in, std::unique_ptr<ReplyRoute> route) {
    if constexpr (kListValid) {
      absl::Status status;
      const bool matched =
          ((type_id == WireTraits<M>::kTypeId ? (status = DeliverRemoteAs<A, M>(box, in, std::move(route)), true)
                                              : false) ||
           ...);
      if (matched) return status;
    }
    // Unimplemented marks a refused type for net/, which names the message.
    return absl::UnimplementedError(absl::StrCat(std::string(box.type_name()), " does not accept messages of type id ",
                                                 type_id, " from other nodes"));
  }
};

template <class A>
absl::Status DeliverRemoteTo(ActorBox<A>& box, uint64_t type_id, WireReader& in, std::unique_ptr<ReplyRoute> route) {
  if constexpr (requires { typename A::Remote; }) {
    return RemoteDispatch<A, typename A::Remote>::Deliver(box, type_id, in, std::move(route));
  } else {
    return box.ActorCell::DeliverRemote(type_id, in, std::move(route));
  }
}

}  // namespace troupe::internal

#endif  // TROUPE_ACTORS_REMOTE_DISPATCH_H_
