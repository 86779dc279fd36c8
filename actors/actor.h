// Actor<A>: the base of every actor type.
//
//   struct Counter : troupe::Actor<Counter> {
//     int64_t n = 0;
//     void On(const Add& m) { n += m.by; }        // a tell
//     int64_t On(const Get&) { return n; }        // an ask: returns the reply
//   };
//
// An actor's state is touched by one thread at a time — the one running its
// handlers — so handlers never lock. Handler forms are listed in
// actors/handler.h; coroutine handlers in actors/task.h.
//
// A bounded mailbox, opt-in per type:
//   static constexpr uint32_t kMailboxCapacity = 10000;
// caps the user messages waiting for one actor of the type: a Tell beyond it
// is dropped and counted (stats().dropped; TryTell returns
// ResourceExhausted), an Ask fails at once with ResourceExhausted. Without
// it the mailbox is unbounded and costs nothing extra.
//
// Optional hooks, found by name:
//   void OnStart()                      first thing the actor runs
//   void OnStop(const absl::Status&)    last thing it runs; the argument is
//                                       the exit reason (OK for a normal stop,
//                                       Internal for a handler that threw)
//
// Everything protected below may be called only from the actor's own
// handlers and hooks; in the constructor only Self() (the actor is not
// registered with its system until the constructor has returned). An exception escaping a handler stops the
// actor with that exception as its exit reason (logged once); the worker
// thread and every other actor carry on.
//
// The object is destroyed as soon as the actor has stopped (after OnStop),
// even while Refs to it remain; reply handles it still holds then fail
// their asks with Cancelled. A coroutine handler suspended at that moment is
// destroyed without resuming; destructors of its locals must not touch the
// actor's members.

#ifndef TROUPE_ACTORS_ACTOR_H_
#define TROUPE_ACTORS_ACTOR_H_

#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "actors/actor_cell.h"
#include "actors/future.h"
#include "actors/handler.h"
#include "actors/ref.h"
#include "actors/remote_dispatch.h"
#include "actors/system_core.h"
#include "actors/task.h"
#include "scheduler/timer_service.h"

namespace troupe {

// Delivered to a watcher when an actor it monitors stops.
struct Down {
  ActorRef actor;
  absl::Status reason;  // the actor's exit reason
};

namespace internal {

template <class A>
Message* MakeDown(ActorCell* target, const absl::Status& reason) {
  target->Retain();
  return new TellMessage<A, Down>(Down{ActorRef::Adopt(target), reason});
}

template <class A>
concept HasStartHook = requires(A& a) { a.OnStart(); };

template <class A, class... Args>
Ref<A> SpawnIn(SystemCore& core, ActorCell* parent, Args&&... args) {
  static_assert(std::is_base_of_v<Actor<A>, A>, "troupe: an actor type must derive from troupe::Actor<itself>");
  auto* box = new ActorBox<A>();
  try {
    box->Construct(std::forward<Args>(args)...);
  } catch (...) {
    box->Release();  // the only count: frees the box
    throw;
  }
  box->Retain();  // the Ref we return
  core.Spawn(box, parent, HasStartHook<A>);
  return Ref<A>::Adopt(box);
}

template <class A, class M>
TimerId SendAfterIn(SystemCore& core, absl::Duration delay, const Ref<A>& to, M msg) {
  return core.timers().Schedule(core.timers().Now() + delay,
                                [to, msg = std::move(msg)]() mutable { to.Tell(std::move(msg)); });
}

template <class A, class M>
TimerId SendPeriodicallyIn(SystemCore& core, absl::Duration interval, const Ref<A>& to, M msg) {
  static_assert(std::is_copy_constructible_v<M>, "troupe: a periodic message is copied for each send");
  return core.timers().SchedulePeriodic(interval, [to, msg = std::move(msg)] { to.Tell(M(msg)); });
}

// Runs `fn` on the blocking pool; its result (or exception, as Internal)
// completes the returned future.
template <class Fn>
auto BlockingIn(SystemCore& core, Fn&& fn) {
  using Ret = std::invoke_result_t<Fn>;
  using R = typename FutureValueOf<Ret>::type;
  Promise<R> promise;
  Future<R> future = promise.GetFuture();
  core.blocking().Submit([promise = std::move(promise), fn = std::forward<Fn>(fn)]() mutable {
    try {
      CompleteWith(promise, fn);
    } catch (...) {
      promise.SetError(ExceptionStatus(std::current_exception()));
    }
  });  // refused after shutdown: the dropped promise cancels the future
  return future;
}

}  // namespace internal

template <class Derived>
class Actor {
 protected:
  Actor() : cell_(internal::ConstructingCell()) {}
  Actor(const Actor&) = delete;
  Actor& operator=(const Actor&) = delete;
  ~Actor() = default;

  // This actor's own Ref.
  Ref<Derived> Self() const {
    cell_->Retain();
    return Ref<Derived>::Adopt(cell_);
  }
  ActorId id() const { return cell_->id(); }

  // Stops this actor once the running handler returns.
  void Stop(absl::Status reason = absl::OkStatus()) { cell_->StopSelf(std::move(reason)); }

  // Spawns a child: it stops when this actor stops, before OnStop runs.
  template <class C, class... Args>
  Ref<C> Spawn(Args&&... args) {
    return internal::SpawnIn<C>(cell_->core(), cell_, std::forward<Args>(args)...);
  }

  // Delivers Down{actor, exit reason} to this actor when `target` stops, at
  // once if it already has. Needs a handler `On(const troupe::Down&)`.
  void Monitor(const ActorRef& target) {
    static_assert(internal::Handles<Derived, Down>,
                  "troupe: Monitor needs a handler `void On(const troupe::Down&)` in the watching actor");
    if (target) target.cell()->RequestWatch(cell_, &internal::MakeDown<Derived>);
  }

  // Tells `to` `msg` after `delay`. Cancel with CancelTimer.
  template <class A, class M>
  TimerId SendAfter(absl::Duration delay, const Ref<A>& to, M msg) {
    return internal::SendAfterIn(cell_->core(), delay, to, std::move(msg));
  }
  // Tells `to` a copy of `msg` every `interval` until cancelled.
  template <class A, class M>
  TimerId SendPeriodically(absl::Duration interval, const Ref<A>& to, M msg) {
    return internal::SendPeriodicallyIn(cell_->core(), interval, to, std::move(msg));
  }
  bool CancelTimer(TimerId id) { return cell_->core().timers().Cancel(id); }
  absl::Time Now() const { return cell_->core().timers().Now(); }

  // Runs blocking `fn` on the blocking pool, off the workers; await or Then
  // the result.
  template <class Fn>
  auto Blocking(Fn&& fn) {
    return internal::BlockingIn(cell_->core(), std::forward<Fn>(fn));
  }

  spdlog::logger& log() const { return cell_->core().log(); }

 private:
  // The cell this object lives in; it outlives the object.
  internal::ActorCell* const cell_;
};

}  // namespace troupe

#endif  // TROUPE_ACTORS_ACTOR_H_
