// How a message from another node reaches a handler: ActorBox<A>::
// DeliverRemote decodes the payload into the C++ type A lists in
// `using Remote = troupe::Accepts<...>` (actors/wire.h) and queues it as an
// ordinary tell or ask. The reply of an ask goes back through the
// ReplyRoute net/ gave. Dispatch on the type id is a chain of compares over
// A's list, resolved at compile time.
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

template <class A, class M>
absl::Status DeliverRemoteAs(ActorBox<A>& box, WireReader& in, std::unique_ptr<ReplyRoute> route) {
  static_assert(WireMessage<M>,
                "troupe: a type in an actor's `Remote` list is not a wire type (declare it in a .capnp schema "
                "compiled with troupe_messages)");
  static_assert(Handles<A, M>, "troupe: a type in an actor's `Remote` list has no handler in that actor");
  using R = ReplyOf<A, M>;
  static_assert(WireReplyType<R>,
                "troupe: a handler of a type in an actor's `Remote` list replies a type that cannot cross nodes "
                "(void, a wire type, or a built-in scalar; see actors/wire.h)");
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
  static absl::Status Deliver(ActorBox<A>& box, uint64_t type_id, WireReader& in, std::unique_ptr<ReplyRoute> route) {
    absl::Status status;
    const bool matched =
        ((type_id == WireTraits<M>::kTypeId ? (status = DeliverRemoteAs<A, M>(box, in, std::move(route)), true)
                                            : false) ||
         ...);
    if (!matched) {
      // Unimplemented marks a refused type for net/, which names the message.
      return absl::UnimplementedError(absl::StrCat(std::string(box.type_name()), " does not accept messages of type id ",
                                                   type_id, " from other nodes"));
    }
    return status;
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
