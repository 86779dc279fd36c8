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
// Timers an actor starts (SendAfter, SendPeriodically) are cancelled when it
// stops; so are continuations (Then, co_await) still waiting for a future:
// they are destroyed unrun.
//
// Optional hooks, found by name:
//   void OnStart()                      first thing the actor runs
//   void OnStop(const absl::Status&)    last thing it runs; the argument is
//                                       the exit reason (OK for a normal stop,
//                                       Internal for a handler that threw);
//                                       an OnStop() without it is a compile
//                                       error, as it would never be called
//
// Everything protected below may be called only from the actor's own
// handlers and hooks; in the constructor only Self() and TrapExits() (the actor is not
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
#include "actors/registry.h"
#include "actors/remote_dispatch.h"
#include "actors/system_core.h"
#include "actors/task.h"
#include "scheduler/timer_service.h"

namespace troupe {

// Delivered to a watcher when an actor it monitors stops.
struct Down {
  ActorRef actor;
  absl::Status reason;  // the actor's exit reason
  MonitorId monitor;    // what Monitor returned
};

// Delivered, while trapping exits (Actor::TrapExits), when a linked actor
// stops — also normally (reason OK) — or when the link to an actor on
// another node is lost (Unavailable).
struct Exit {
  ActorRef actor;
  absl::Status reason;
};

namespace internal {

template <class A>
Message* MakeExit(ActorCell* from, const absl::Status& reason) {
  from->Retain();
  return new TellMessage<A, Exit>(Exit{ActorRef::Adopt(from), reason});
}

// The Down of one monitor. Delivered only while the monitor is active: a
// Down that arrives after Demonitor is dropped unseen.
template <class A>
class DownMessage final : public Message {
 public:
  DownMessage(Down down) : Message(Kind::kUser), down_(std::move(down)) {}

  void Deliver(void* receiver) override {
    std::unique_ptr<DownMessage> self(this);
    auto& box = static_cast<ActorBox<A>&>(*static_cast<ActorCell*>(receiver));
    if (!box.TakeMonitor(down_.monitor.value)) return;
    Invoke<A, Down, ReplyOf<A, Down>>(box, down_, nullptr, self);
  }
  bool Bounce(const absl::Status&) noexcept override {
    delete this;  // the watcher has stopped
    return false;
  }
  friend Promise<ReplyOf<A, Down>>* reply_of(DownMessage*) { return nullptr; }

 private:
  Down down_;
};

template <class A>
Message* MakeDown(ActorCell* target, const absl::Status& reason, uint64_t monitor) {
  target->Retain();
  return new DownMessage<A>(Down{ActorRef::Adopt(target), reason, MonitorId{monitor}});
}

template <class A>
concept HasStartHook = requires(A& a) { a.OnStart(); };

// `options` may be null: no link, not supervised.
template <class A, class... Args>
Ref<A> SpawnIn(SystemCore& core, ActorCell* parent, SpawnOptions* options, Args&&... args) {
  static_assert(std::is_base_of_v<Actor<A>, A>, "troupe: an actor type must derive from troupe::Actor<itself>");
  auto* box = new ActorBox<A>();
  try {
    box->Construct(std::forward<Args>(args)...);
  } catch (...) {
    box->Release();  // the only count: frees the box
    throw;
  }
  box->Retain();  // the Ref we return
  core.Spawn(box, parent, HasStartHook<A>, options);
  return Ref<A>::Adopt(box);
}

template <class A, class M>
TimerId SendAfterIn(SystemCore& core, absl::Duration delay, const Ref<A>& to, M msg) {
  return core.timers().Schedule(core.timers().Now() + delay,
                                [to, msg = std::move(msg)]() mutable { to.Tell(std::move(msg)); });
}

// A periodic send ends by itself once its target (a local actor) has
// stopped: one dead letter, not one per interval forever.
template <class A, class M>
TimerId SendPeriodicallyIn(SystemCore& core, absl::Duration interval, const Ref<A>& to, M msg) {
  static_assert(std::is_copy_constructible_v<M>, "troupe: a periodic message is copied for each send");
  // The series' own id, for the callback to cancel it; 0 until Schedule
  // returns (a run before that just tries again next time). Relaxed: the
  // id is a plain value and Cancel of a stale one is harmless.
  auto self = std::make_shared<std::atomic<uint64_t>>(0);
  TimerService* timers = &core.timers();  // runs the callback, so outlives it
  const TimerId id = timers->SchedulePeriodic(interval, [to, msg = std::move(msg), self, timers] {
    if (to.is_remote()) {
      to.Tell(M(msg));
      return;
    }
    if (const absl::Status sent = to.TryTell(M(msg)); absl::IsUnavailable(sent) || absl::IsCancelled(sent)) {
      if (const uint64_t mine = self->load(std::memory_order_relaxed)) timers->Cancel(TimerId{mine});
    }
  });
  self->store(id.value, std::memory_order_relaxed);
  return id;
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
      promise.SetError(ExceptionStatus(std::current_exception(), "a blocking job"));
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
  // Called from OnStop or the destructor (the actor has stopped), it
  // returns the Ref of an actor that never runs — sends to it are dead
  // letters — and logs an error: a child must not outlive its parent.
  template <class C, class... Args>
  Ref<C> Spawn(Args&&... args) {
    return internal::SpawnIn<C>(cell_->core(), cell_, nullptr, std::forward<Args>(args)...);
  }
  // Spawn, linked to this actor before the child can run (so no exit can
  // be missed in between).
  template <class C, class... Args>
  Ref<C> SpawnLink(Args&&... args) {
    internal::SpawnOptions options{.link = true, .rebuild = {}};
    return internal::SpawnIn<C>(cell_->core(), cell_, &options, std::forward<Args>(args)...);
  }

  // Links this actor with `other` (Erlang's link): both ways, at most once
  // per pair (linking again changes nothing). When either stops with a
  // non-OK reason the other stops with the same reason, immediately (its
  // queue is bounced), unless it traps exits; an OK stop stops nobody.
  // Linking an actor that has already stopped is its exit at once. Works
  // across nodes: a lost connection is an exit with Unavailable.
  void Link(const ActorRef& other) {
    if (other && cell_->Link(other.cell())) other.cell()->RequestLink(cell_);
  }
  // Removes the link; no exit from it arrives afterwards.
  void Unlink(const ActorRef& other) {
    if (other && cell_->Unlink(other.cell())) other.cell()->RequestUnlink(cell_);
  }
  // While trapping, a linked actor's exit arrives as an Exit message (a
  // handler `On(const troupe::Exit&)`) instead of stopping this actor.
  void TrapExits(bool on = true) {
    static_assert(internal::Handles<Derived, Exit>,
                  "troupe: TrapExits needs a handler `void On(const troupe::Exit&)` in the actor");
    cell_->TrapExits(on ? &internal::MakeExit<Derived> : nullptr);
  }

  // Delivers Down{actor, exit reason, monitor} to this actor when `target`
  // stops, at once if it already has (a remote target: also when its node
  // becomes unreachable). Needs a handler `On(const troupe::Down&)`. Each
  // call makes an independent monitor; an empty target returns an empty id.
  MonitorId Monitor(const ActorRef& target) {
    static_assert(internal::Handles<Derived, Down>,
                  "troupe: Monitor needs a handler `void On(const troupe::Down&)` in the watching actor");
    if (!target) return MonitorId{};
    return MonitorId{cell_->Monitor(target.cell(), &internal::MakeDown<Derived>)};
  }
  // Ends a monitor: no Down for it is delivered after this returns, also
  // one already on its way. False if it had ended already (its Down was
  // delivered, or it was demonitored).
  bool Demonitor(MonitorId monitor) { return cell_->Demonitor(monitor.value); }

  // Tells `to` `msg` after `delay`. Cancel with CancelTimer. The timer is
  // this actor's: cancelled if it stops first.
  template <class A, class M>
  TimerId SendAfter(absl::Duration delay, const Ref<A>& to, M msg) {
    const TimerId id = internal::SendAfterIn(cell_->core(), delay, to, std::move(msg));
    cell_->AddTimer(id);
    return id;
  }
  // Tells `to` a copy of `msg` every `interval` until cancelled, until this
  // actor stops, or until `to` (a local actor) has stopped.
  template <class A, class M>
  TimerId SendPeriodically(absl::Duration interval, const Ref<A>& to, M msg) {
    const TimerId id = internal::SendPeriodicallyIn(cell_->core(), interval, to, std::move(msg));
    cell_->AddTimer(id);
    return id;
  }
  // True if the timer will not fire (again); see TimerService::Cancel.
  bool CancelTimer(TimerId id) { return cell_->CancelTimer(id); }
  absl::Time Now() const { return cell_->core().timers().Now(); }

  // Runs blocking `fn` on the blocking pool, off the workers; await or Then
  // the result.
  template <class Fn>
  auto Blocking(Fn&& fn) {
    return internal::BlockingIn(cell_->core(), std::forward<Fn>(fn));
  }

  spdlog::logger& log() const { return cell_->core().log(); }

  // Names for this system's actors (actors/registry.h): Register(name,
  // Self()) to be found by name; the name goes when this actor stops for
  // good, and stays across restarts under a supervisor.
  Registry& registry() const { return cell_->core().registry(); }

 private:
  // The cell this object lives in; it outlives the object.
  internal::ActorCell* const cell_;
};

}  // namespace troupe

#endif  // TROUPE_ACTORS_ACTOR_H_
