// How a message reaches a handler: the handler forms troupe understands, the
// reply type of an ask, and the Message subclasses that carry a tell or an
// ask to a typed actor.
//
// Handler forms, for an actor A and a message type M (M taken as const M&,
// M, or M&&):
//   void            On(const M&)             tell; an ask gets an empty reply
//   R               On(const M&)             the return value is the reply
//   absl::StatusOr<R> / absl::Status         an error becomes the ask's error
//   Task<R>         On(const M&)             a coroutine (actors/task.h)
//   void            On(const M&, Reply<R>)   reply later, from anywhere
//
// Dispatch is resolved at compile time from A and M; a message type A has no
// handler for is a compile error naming both (CheckHandled), and the only
// error of that send.

#ifndef TROUPE_ACTORS_HANDLER_H_
#define TROUPE_ACTORS_HANDLER_H_

#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "actors/actor_box.h"
#include "actors/actor_cell.h"
#include "actors/future.h"
#include "actors/task.h"
#include "mailbox/message.h"

namespace troupe {

namespace internal {
template <class A, class M, class R, class Keep>
void Invoke(ActorBox<A>& box, M& msg, Promise<R>* reply, std::unique_ptr<Keep>& keep);
}  // namespace internal

// The writing end of an ask's reply, for handlers that answer later: keep
// it, move it to another actor, a timer or a blocking job, and Send once.
// Dropping it unanswered fails the ask with Cancelled.
template <class R>
class Reply {
 public:
  explicit Reply(Promise<R> promise) : promise_(std::move(promise)) {}
  // A moved-to Reply is an ordinary one: only the handler's own argument
  // hands its promise back (see the private constructor).
  Reply(Reply&& other) noexcept : promise_(std::move(other.promise_)) {}
  Reply& operator=(Reply&& other) noexcept {
    promise_ = std::move(other.promise_);
    return *this;
  }
  ~Reply() {
    if (return_to_ != nullptr && promise_.valid()) *return_to_ = std::move(promise_);
  }

  // Each returns false if the ask had already ended (deadline, shutdown).
  template <class U = R, class V, std::enable_if_t<!std::is_void_v<U>, int> = 0>
  bool Send(V&& value) {
    return promise_.SetValue(std::forward<V>(value));
  }
  template <class U = R, std::enable_if_t<std::is_void_v<U>, int> = 0>
  bool Send() {
    return promise_.SetValue();
  }
  bool Fail(absl::Status status) { return promise_.SetError(std::move(status)); }
  bool Complete(Result<R> result) { return promise_.Complete(std::move(result)); }

 private:
  template <class A, class M, class R2, class Keep>
  friend void internal::Invoke(internal::ActorBox<A>&, M&, Promise<R2>*, std::unique_ptr<Keep>&);

  // The argument a reply-form handler receives: if the handler neither
  // answers nor moves it away, its promise goes back to `return_to` as the
  // argument is destroyed, so that a handler that throws fails the ask with
  // its exception (Internal) rather than with the Cancelled of a dropped
  // promise.
  Reply(Promise<R> promise, Promise<R>* return_to) : promise_(std::move(promise)), return_to_(return_to) {}

  Promise<R> promise_;
  Promise<R>* return_to_ = nullptr;
};

namespace internal {

template <class A, class M>
concept HasDirectHandler = requires(A& a, M&& m) { a.On(std::move(m)); };

template <class A, class M, class R>
R DeduceReplyArg(void (A::*)(const M&, Reply<R>));
template <class A, class M, class R>
R DeduceReplyArg(void (A::*)(M, Reply<R>));
template <class A, class M, class R>
R DeduceReplyArg(void (A::*)(M&&, Reply<R>));

template <class A, class M>
concept HasReplyHandler = requires { DeduceReplyArg<A, M>(&A::On); };

template <class A, class M>
concept Handles = HasDirectHandler<A, M> || HasReplyHandler<A, M>;

// What an ask of a handler returning Ret replies: StatusOr<T> and Status
// as for Future::Then (future.h), and a Task<T> coroutine's T.
template <class Ret>
struct ReplyOfReturn : FutureValueOf<Ret> {};
template <class T>
struct ReplyOfReturn<Task<T>> {
  using type = T;
};

template <class A, class M, bool kDirect = HasDirectHandler<A, M>>
struct ReplyTypeOf {
  using Return = decltype(std::declval<A&>().On(std::declval<M&&>()));
  using type = typename ReplyOfReturn<std::remove_cvref_t<Return>>::type;
};
template <class A, class M>
struct ReplyTypeOf<A, M, false> {
  using type = decltype(DeduceReplyArg<A, M>(&A::On));
};

// The reply type of an ask of M to A.
template <class A, class M>
using ReplyOf = typename ReplyTypeOf<A, M>::type;

// True if A has a handler for M. Otherwise a compile error in troupe's
// words, with A and M named in the instantiation context the compiler
// prints with it, and false: callers put everything that needs the
// handler under `if constexpr (CheckHandled<A, M>())`, so this is the only
// error (no noise from ReplyOf, DeduceReplyArg or the message classes).
template <class A, class M>
constexpr bool CheckHandled() {
  constexpr bool kHandles = Handles<A, M>;
  static_assert(kHandles,
                "troupe: the actor type A has no handler `On(const M&)` for the message type M (both named "
                "in this instantiation of CheckHandled)");
  return kHandles;
}

// What Ref<A>::Ask's signature names as the reply: ReplyOf<A, M>, or for a
// message A has no handler for, NoHandler<A, M>, so that the signature
// forms without an error and CheckHandled's is the one reported.
template <class A, class M>
struct NoHandler {};
template <class A, class M>
struct AskReplyTypeOf {
  using type = NoHandler<A, M>;
};
template <class A, class M>
  requires Handles<A, M>
struct AskReplyTypeOf<A, M> : ReplyTypeOf<A, M> {};
template <class A, class M>
using AskReplyOf = typename AskReplyTypeOf<A, M>::type;

// Calls A's handler for M. For a Task handler, starts it: `done` runs when
// it finishes, with the message kept alive until then through `keep`.
template <class A, class M, class R, class Keep>
void Invoke(ActorBox<A>& box, M& msg, Promise<R>* reply, std::unique_ptr<Keep>& keep) {
  A& actor = box.actor();
  if constexpr (HasDirectHandler<A, M>) {
    using Return = std::remove_cvref_t<decltype(actor.On(std::move(msg)))>;
    if constexpr (IsTask<Return>::value) {
      using T = typename Return::value_type;
      Task<T> task = actor.On(std::move(msg));
      ActorCell* cell = &box;
      std::move(task).Start([keep = std::move(keep), cell](Result<T>&& result, std::exception_ptr error) mutable {
        Promise<R>* promise = reply_of(keep.get());
        if (error) {
          if (promise != nullptr) promise->SetError(ExceptionStatus(error));
          cell->FailFromCoroutine(error);
        } else if (promise != nullptr) {
          promise->Complete(std::move(result));
        }
      });
    } else if constexpr (std::is_void_v<Return>) {
      actor.On(std::move(msg));
      if (reply != nullptr) reply->SetValue();
    } else {
      if (reply != nullptr) {
        CompleteWith(*reply, [&]() -> Return { return actor.On(std::move(msg)); });
      } else {
        (void)actor.On(std::move(msg));
      }
    }
  } else {
    if (reply != nullptr) {
      actor.On(std::move(msg), Reply<R>(std::move(*reply), reply));
    } else {
      actor.On(std::move(msg), Reply<R>(Promise<R>()));  // a tell: nobody reads it
    }
  }
}

// A tell of M to an actor of type A.
template <class A, class M>
class TellMessage final : public Message {
 public:
  explicit TellMessage(M msg) : Message(Kind::kUser), msg_(std::move(msg)) {}

  void Deliver(void* receiver) override {
    std::unique_ptr<TellMessage> self(this);
    auto& box = static_cast<ActorBox<A>&>(*static_cast<ActorCell*>(receiver));
    if (holds_mailbox_place()) box.places().Give();
    Invoke<A, M, ReplyOf<A, M>>(box, msg_, nullptr, self);
  }

  bool Bounce(const absl::Status&) noexcept override {
    delete this;
    return true;
  }
  std::string_view type_name() const noexcept override { return kTypeName<M>; }

  friend Promise<ReplyOf<A, M>>* reply_of(TellMessage*) { return nullptr; }

 private:
  M msg_;
};

// An ask of M to an actor of type A, carrying the promise of its reply.
template <class A, class M>
class AskMessage final : public Message {
 public:
  using R = ReplyOf<A, M>;

  AskMessage(M msg, Promise<R> promise) : Message(Kind::kUser), msg_(std::move(msg)), promise_(std::move(promise)) {}

  void Deliver(void* receiver) override {
    std::unique_ptr<AskMessage> self(this);
    auto& box = static_cast<ActorBox<A>&>(*static_cast<ActorCell*>(receiver));
    if (holds_mailbox_place()) box.places().Give();
    Promise<R>* reply = &promise_;
    try {
      Invoke<A, M, R>(box, msg_, reply, self);
    } catch (...) {
      // `self` is still ours: only a started coroutine takes it.
      reply->SetError(ExceptionStatus(std::current_exception()));
      throw;
    }
  }

  bool Bounce(const absl::Status& reason) noexcept override {
    promise_.SetError(reason);
    delete this;
    return true;
  }
  std::string_view type_name() const noexcept override { return kTypeName<M>; }

  friend Promise<R>* reply_of(AskMessage* m) { return &m->promise_; }

 private:
  M msg_;
  Promise<R> promise_;
};

}  // namespace internal
}  // namespace troupe

#endif  // TROUPE_ACTORS_HANDLER_H_
