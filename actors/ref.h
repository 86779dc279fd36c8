// Ref<A>: the handle to an actor of type A — the only way to reach it.
//
//   troupe::Ref<Counter> c = sys.Spawn<Counter>();
//   c.Tell(Add{.by = 5});                                   // fire and forget
//   troupe::Future<int64_t> v = c.Ask(Get{}, absl::Seconds(1));
//
// A Ref is cheap to copy (one reference count), comparable and hashable (by
// actor), and safe to use from any thread, inside or outside actors, for as
// long as you hold it — also after the actor or its system has stopped:
// a tell then counts as a dead letter and an ask fails at once with
// Unavailable (Cancelled while the system shuts down).
//
// Tell and Ask accept only message types A has a handler for; anything else
// is a compile error naming A and the message type, and the only error of
// that call (internal::CheckHandled, actors/handler.h). Messages move into the
// target's mailbox as they are: nothing is serialized between actors of one
// process.
//
// A Ref may point to an actor on another node (net/node.h): Tell, TryTell
// and Ask then encode the message — it must be a wire type (actors/wire.h)
// that A lists in its `Remote` list; anything else fails with
// InvalidArgument at the sender, which for a Tell means it is counted in
// the node's stats().rejected_sends and logged once per message type
// (RemoteCell::RefusedAtSender) — and the reply comes back over the
// connection. Remote sends add two outcomes: ResourceExhausted when the
// connection's outbound buffer is full, Unavailable when the node cannot be
// reached (and for every pending ask when a connection is lost).
//
// ActorRef is the untyped base: it names and stops an actor, and is what a
// Down message carries.

#ifndef TROUPE_ACTORS_REF_H_
#define TROUPE_ACTORS_REF_H_

#include <cstddef>
#include <functional>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "actors/actor_cell.h"
#include "actors/future.h"
#include "actors/handler.h"
#include "actors/system_core.h"
#include "actors/wire.h"

namespace troupe {

template <class A>
class Actor;

class ActorRef {
 public:
  ActorRef() = default;
  ActorRef(const ActorRef& other) noexcept : cell_(other.cell_) {
    if (cell_ != nullptr) cell_->Retain();
  }
  ActorRef(ActorRef&& other) noexcept : cell_(std::exchange(other.cell_, nullptr)) {}
  ActorRef& operator=(ActorRef other) noexcept {
    std::swap(cell_, other.cell_);
    return *this;
  }
  ~ActorRef() {
    if (cell_ != nullptr) cell_->Release();
  }

  explicit operator bool() const noexcept { return cell_ != nullptr; }
  // True if the actor lives on another node.
  bool is_remote() const noexcept { return cell_ != nullptr && cell_->is_remote(); }
  // 0 for an empty ref. For a remote actor, the id of its proxy here (with
  // ActorCell::kRemoteBit set), not its id on its own node.
  ActorId id() const noexcept { return cell_ != nullptr ? cell_->id() : 0; }

  // Asks the actor to stop once it has handled the messages queued before
  // this request (Akka's PoisonPill): it stops its children, runs OnStop;
  // messages queued after the request are bounced.
  void Stop(absl::Status reason = absl::OkStatus()) const {
    if (cell_ != nullptr) cell_->RequestStop(std::move(reason));
  }
  // Stops the actor as soon as the handler it is in returns (Erlang's kill,
  // Akka's Stop): the messages still queued are not handled — their asks
  // fail at once, tells count as dead letters — and its children are
  // stopped the same way. For an actor on another node, as Stop.
  void StopNow(absl::Status reason = absl::CancelledError("stopped immediately")) const {
    if (cell_ != nullptr) cell_->RequestStopNow(std::move(reason));
  }

  friend bool operator==(const ActorRef& a, const ActorRef& b) noexcept { return a.cell_ == b.cell_; }
  template <class H>
  friend H AbslHashValue(H h, const ActorRef& r) {
    return H::combine(std::move(h), r.cell_);
  }

  // Runtime use: adopts one reference the caller already holds.
  static ActorRef Adopt(internal::ActorCell* cell) noexcept {
    ActorRef r;
    r.cell_ = cell;
    return r;
  }
  internal::ActorCell* cell() const noexcept { return cell_; }

 protected:
  internal::ActorCell* cell_ = nullptr;
};

template <class A>
class Ref : public ActorRef {
 public:
  Ref() = default;

  // Sends `msg` without waiting for anything. If A has a bounded mailbox
  // (kMailboxCapacity) that is full, the message is dropped and counted in
  // stats().dropped; TryTell says so instead.
  template <class M>
  void Tell(M&& msg) const {
    if constexpr (internal::CheckHandled<A, std::remove_cvref_t<M>>()) {
      if (cell_ != nullptr && cell_->is_remote()) [[unlikely]] {
        (void)RemoteTell(msg);
        return;
      }
      (void)Send(std::forward<M>(msg));
    }
  }

  // Tell, saying what became of the message: OK (queued); ResourceExhausted
  // (A's bounded mailbox is full: dropped and counted); Unavailable, or
  // Cancelled during shutdown (the actor has stopped: a dead letter);
  // FailedPrecondition for an empty Ref.
  template <class M>
  absl::Status TryTell(M&& msg) const {
    if constexpr (internal::CheckHandled<A, std::remove_cvref_t<M>>()) {
      if (cell_ != nullptr && cell_->is_remote()) [[unlikely]] return RemoteTell(msg);
      switch (Send(std::forward<M>(msg))) {
        case SendResult::kQueued:
          return absl::OkStatus();
        case SendResult::kFull:
          return FullError();
        case SendResult::kStopped:
          return cell_->StoppedError();
        case SendResult::kEmptyRef:
          return absl::FailedPreconditionError("Tell on an empty Ref");
      }
    }
    return absl::InternalError("unreachable");
  }

  // Sends `msg` and returns the future of the handler's reply. It ends
  // exactly once: with the reply, with the handler's error, with
  // DeadlineExceeded once `timeout` has passed, with Unavailable if the actor
  // has stopped, or with Cancelled if the system shuts down first.
  // (The signature names the reply type through AskReplyOf, so that for a
  // message type A has no handler for, CheckHandled's error is the only one.)
  template <class M>
  Future<internal::AskReplyOf<A, std::remove_cvref_t<M>>> Ask(
      M&& msg, absl::Duration timeout = absl::InfiniteDuration()) const {
    using Msg = std::remove_cvref_t<M>;
    Promise<internal::AskReplyOf<A, Msg>> promise;
    auto future = promise.GetFuture();
    if constexpr (internal::CheckHandled<A, Msg>()) SendAsk(std::forward<M>(msg), std::move(promise), timeout);
    return future;
  }

  // Runtime use: adopts one reference the caller already holds.
  static Ref Adopt(internal::ActorCell* cell) noexcept {
    Ref r;
    r.cell_ = cell;
    return r;
  }
  // Runtime use (generated codecs): the caller has checked that `ref` is an
  // actor of type A (or a proxy of one).
  static Ref UncheckedCast(ActorRef ref) noexcept {
    Ref r;
    static_cast<ActorRef&>(r) = std::move(ref);
    return r;
  }

 private:
  template <class Msg>
  static absl::Status NotWireError() {
    return absl::InvalidArgumentError(
        absl::StrCat("message type ", std::string(internal::TypeName<Msg>()),
                     " cannot be sent to another node: declare it in a .capnp schema (troupe_messages)"));
  }

  // The error of a send of Msg to a remote A that does not list it.
  template <class Msg>
  static absl::Status RefusedError() {
    return internal::RefusedTypeError(internal::TypeName<A>(), internal::TypeName<Msg>(),
                                      internal::kHasRemoteList<A>);
  }

  // A send to a remote A refused here, before anything crossed: the node
  // counts it and logs it once per kind; returns `error`.
  absl::Status RefuseRemote(absl::Status error) const {
    static_cast<internal::RemoteCell*>(cell_)->RefusedAtSender(error);
    return error;
  }

  template <class Msg>
  absl::Status RemoteTell(const Msg& msg) const {
    if constexpr (WireMessage<Msg> && !internal::AcceptsRemotely<A, Msg>()) {
      return RefuseRemote(RefusedError<Msg>());
    } else if constexpr (WireMessage<Msg>) {
      internal::RemoteSend send;
      send.type_id = WireTraits<Msg>::kTypeId;
      send.type_name = internal::kTypeName<Msg>;
      send.encode = &internal::EncodeErased<Msg>;
      send.value = &msg;
      send.sender = internal::CurrentActor();
      return static_cast<internal::RemoteCell*>(cell_)->SendRemote(send);
    } else {
      return RefuseRemote(NotWireError<Msg>());
    }
  }

  template <class Msg, class R>
  void RemoteAsk(const Msg& msg, Promise<R> promise, absl::Duration timeout) const {
    if constexpr (WireMessage<Msg> && !internal::AcceptsRemotely<A, Msg>()) {
      promise.SetError(RefuseRemote(RefusedError<Msg>()));
    } else if constexpr (WireMessage<Msg> && WireReplyType<R>) {
      internal::RemoteSend send;
      send.type_id = WireTraits<Msg>::kTypeId;
      send.type_name = internal::kTypeName<Msg>;
      send.encode = &internal::EncodeErased<Msg>;
      send.value = &msg;
      send.sender = internal::CurrentActor();
      send.reply = std::make_unique<internal::RemoteReplyTo<R>>(std::move(promise));
      send.timeout = timeout;
      (void)static_cast<internal::RemoteCell*>(cell_)->SendRemote(send);
    } else if constexpr (!WireMessage<Msg>) {
      promise.SetError(RefuseRemote(NotWireError<Msg>()));
    } else {
      promise.SetError(RefuseRemote(absl::InvalidArgumentError(
          absl::StrCat("the reply type ", std::string(internal::TypeName<R>()), " of ", std::string(internal::TypeName<Msg>()),
                       " cannot cross nodes (void, a wire type or a built-in scalar)"))));
    }
  }

  enum class SendResult { kQueued, kFull, kStopped, kEmptyRef };

  // Tell's and TryTell's local send; A handles M.
  template <class M>
  SendResult Send(M&& msg) const {
    using Msg = std::remove_cvref_t<M>;
    if (cell_ == nullptr) return SendResult::kEmptyRef;
    if (!places().TryTake()) {
      cell_->core().CountDropped();
      return SendResult::kFull;
    }
    return Enqueue(new internal::TellMessage<A, Msg>(std::forward<M>(msg))) ? SendResult::kQueued
                                                                             : SendResult::kStopped;
  }

  // Ask's send; A handles M. Completes `promise` or hands it to the message.
  template <class M, class R>
  void SendAsk(M&& msg, Promise<R> promise, absl::Duration timeout) const {
    using Msg = std::remove_cvref_t<M>;
    if (cell_ == nullptr) {
      promise.SetError(absl::FailedPreconditionError("Ask on an empty Ref"));
      return;
    }
    if (cell_->is_remote()) [[unlikely]] {
      RemoteAsk(msg, std::move(promise), timeout);
      return;
    }
    if (!places().TryTake()) {
      cell_->core().CountDropped();
      promise.SetError(FullError());
      return;
    }
    if (timeout != absl::InfiniteDuration()) ArmDeadline(promise, timeout);
    Enqueue(new internal::AskMessage<A, Msg>(std::forward<M>(msg), std::move(promise)));
  }

  // Hands a message that took a place (if A is bounded) to the actor; gives
  // the place back if it bounced.
  bool Enqueue(Message* m) const {
    if constexpr (internal::MailboxCapacityOf<A>() > 0) m->set_holds_mailbox_place();
    if (cell_->Enqueue(m)) return true;
    places().Give();
    return false;
  }

  auto& places() const { return static_cast<internal::ActorBox<A>*>(cell_)->places(); }

  absl::Status FullError() const {
    return absl::ResourceExhaustedError(absl::StrCat("the mailbox of actor ", id(), " is full (capacity ",
                                                     internal::MailboxCapacityOf<A>(), "): message dropped"));
  }

  template <class R>
  void ArmDeadline(Promise<R>& promise, absl::Duration timeout) const {
    const std::shared_ptr<TimerService>& timers = cell_->core().shared_timers();
    TimerId timer = timers->Schedule(
        timers->Now() + timeout, [expiry = promise.Share(), id = cell_->id(), timeout]() mutable {
          expiry.SetError(absl::DeadlineExceededError(
              absl::StrCat("ask to actor ", id, " got no reply within ", absl::FormatDuration(timeout))));
        });
    if (timer) promise.SetCanceller([timers, timer] { timers->Cancel(timer); });
  }
};

}  // namespace troupe

// Refs hash by actor in std containers too.
template <>
struct std::hash<troupe::ActorRef> {
  size_t operator()(const troupe::ActorRef& r) const noexcept { return std::hash<const void*>()(r.cell()); }
};
template <class A>
struct std::hash<troupe::Ref<A>> : std::hash<troupe::ActorRef> {};

#endif  // TROUPE_ACTORS_REF_H_
