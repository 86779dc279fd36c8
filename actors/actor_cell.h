// ActorCell: the runtime half of an actor — its mailbox, its place in the
// scheduler, its lifecycle. The user's actor object lives inside it
// (ActorBox<A>, actors/actor_box.h), so an actor is a single allocation; the
// user object is destroyed as soon as the actor stops, while the cell itself
// stays as long as a Ref points to it.
//
// States (flags_, touched only in the actor's context):
//   new       -> started   first turn: runs the OnStart hook
//   started   -> stopping  a stop request, Stop() from inside, or a handler
//                          that threw; children are asked to stop, and no
//                          user message runs any more (asks fail Unavailable)
//   stopping  -> stopped   all children have stopped: OnStop runs, the
//                          user's object is destroyed (reply handles it held
//                          fail their asks), the timers it started are
//                          cancelled, its waiting continuations are withdrawn
//                          from their futures and destroyed, the mailbox
//                          closes and bounces what is left, watchers get
//                          Down, linked actors their exit, monitors it held
//                          are removed at their targets, its registry names
//                          go, the parent hears of it
//   stopping  -> suspended a supervised actor's stop that is not for good:
//                          the same up to the object's end (OnStop, the
//                          object, its timers, continuations and monitors),
//                          but the mailbox, what is queued, links and
//                          watchers stay; user messages are held, neither
//                          run nor bounced, and the supervisor is told
//   suspended -> started   RequestRestart: a new object is built in the cell
//                          and OnStart runs; the held messages run first
//   suspended -> stopped   RequestStopForGood
//
// Two kinds of stop request:
//   ordered    (RequestStop) a system message in mailbox order: messages
//              queued before it are handled first (Akka's PoisonPill).
//   immediate  (RequestStopNow) overtakes the queue: once the running
//              handler returns, the actor stops and every message still
//              queued is bounced unhandled (asks fail at once, tells count
//              as dead letters); its children are stopped immediately too
//              (Erlang's kill, Akka's Stop).
//
// Who may call what:
// - Any thread: Retain/Release, Enqueue, RequestStop, id().
// - The executor: Run() (never on two threads at once; see Inbox).
// - The actor's own context (its handlers): everything else.
//
// Lifetime: the cell is reference counted. Refs hold a count each; the cell
// holds one on itself from spawn until the end of the turn in which it
// stopped (the "alive" count), which is what keeps a scheduled cell alive
// until it runs; and a child's cell holds one on its parent's (see
// parent_). The cell is deleted when the last count goes; the user's
// object already went when the actor stopped.
//
// Memory ordering: refs_ is incremented relaxed (a count only; the caller
// already holds a reference) and decremented acq_rel, so the thread that
// deletes sees every other holder's writes. Its top bit (kUrgentBit) is
// set with release by a sender of an urgent signal (an immediate stop, a
// link's exit) after it pushed the signal, and read with acquire by Run
// before each message, so a consumer that sees the bit finds the signal in
// the inbox. The next bit (kRegisteredBit) says the actor has registry
// names; see actors/registry.h for its ordering. Mailbox ordering is
// Inbox's.

#ifndef TROUPE_ACTORS_ACTOR_CELL_H_
#define TROUPE_ACTORS_ACTOR_CELL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "actors/future.h"
#include "mailbox/inbox.h"
#include "mailbox/message_cache.h"
#include "mailbox/message.h"
#include "scheduler/runnable.h"
#include "scheduler/timer_service.h"

namespace troupe {

// Unique within one ActorSystem for its lifetime; never 0.
using ActorId = uint64_t;

// Names one monitor at its watcher (Actor::Monitor); 0 means none.
struct MonitorId {
  uint64_t value = 0;

  explicit operator bool() const { return value != 0; }
  friend bool operator==(MonitorId a, MonitorId b) = default;
  template <typename H>
  friend H AbslHashValue(H h, MonitorId id) {
    return H::combine(std::move(h), id.value);
  }
};

class WireReader;  // net/wire/codec.h

namespace internal {

class SystemCore;
class ActorCell;
class ReplyRoute;  // actors/wire.h

// Makes the Down message a watcher receives for one of its monitors; see
// Actor::Monitor. `monitor` names the monitor at its watcher.
struct DownFactory {
  using Fn = Message* (*)(ActorCell* target, const absl::Status& reason, uint64_t monitor);
  Fn make = nullptr;
  uint64_t monitor = 0;
  // Enqueue with EnqueueUrgent (a link's exit).
  bool urgent = false;
  // A watch that reaches the target after it stopped reports the target's
  // exit reason rather than StoppedError. For watchers that stand in for
  // others who watched earlier (a node's watch of the actors it exports),
  // so a watch that lost the race with the stop does not change the reason.
  bool exit_reason_if_late = false;

  Message* operator()(ActorCell* target, const absl::Status& reason) const { return make(target, reason, monitor); }
};

class ActorCell : public Runnable, public ContinuationContext {
 public:
  ActorCell(const ActorCell&) = delete;
  ActorCell& operator=(const ActorCell&) = delete;

  // Recycled through the worker's cache like messages (message_cache.h): a
  // skynet-style tree spawns and frees actors on every worker.
  static void* operator new(size_t bytes) { return CachedAllocate(bytes); }
  static void operator delete(void* block, size_t bytes) noexcept { CachedFree(block, bytes); }

  // Any thread.
  void Retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Release() noexcept {
    if ((refs_.fetch_sub(1, std::memory_order_acq_rel) & kCountMask) == 1) Destroy();
  }
  // For tables that point to cells without holding them (net/'s proxies):
  // takes a reference unless the count already reached zero (the cell is
  // being deleted). The table's lock keeps the memory valid during the
  // call: the deleting destructor removes the entry under that lock first.
  bool TryRetain() noexcept {
    uint32_t n = refs_.load(std::memory_order_relaxed);
    while ((n & kCountMask) != 0) {
      if (refs_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return true;
    }
    return false;
  }
  ActorId id() const noexcept { return id_; }
  SystemCore& core() const noexcept { return *core_; }
  // True for the proxy of an actor on another node (a RemoteCell,
  // actors/wire.h): its id carries kRemoteBit.
  bool is_remote() const noexcept { return (id_ & kRemoteBit) != 0; }
  static constexpr ActorId kRemoteBit = ActorId{1} << 62;

  // Any thread. Hands `m` to the actor, or bounces it if the actor has
  // stopped (an ask then fails at once; a tell counts as a dead letter).
  // Returns false if it bounced.
  bool Enqueue(Message* m) noexcept;

  // Any thread. The error a send to this stopped actor gets: Cancelled while
  // the system shuts down, Unavailable otherwise. (In the actor's context,
  // BounceReason adds the exit reason.)
  absl::Status StoppedError() const;

  // Any thread. Asks the actor to stop with `reason` (OK for a normal stop)
  // once the messages queued before this request have been handled; those
  // queued after it are bounced.
  void RequestStop(absl::Status reason) noexcept;

  // Any thread. Stops the actor with `reason` as soon as the running
  // handler returns: queued messages are bounced unhandled, children are
  // stopped immediately too. A proxy forwards it as an ordered stop.
  void RequestStopNow(absl::Status reason) noexcept;

  // Supervision (actors/supervisor.h). A supervised actor's stop ends only
  // its instance: the object goes as in a stop, but the cell — its Ref, its
  // mailbox and what is queued in it — stays, and its supervisor (the
  // parent) is told with HandleChildEvent. Then RequestRestart builds a new
  // instance in the same cell, or RequestStopForGood ends the actor.
  // RequestStopForGood is also how parents stop children (for any actor).
  void RequestStopForGood(absl::Status reason, bool now) noexcept;
  void RequestRestart() noexcept;
  using Rebuild = absl::AnyInvocable<void(ActorCell&)>;
  // Spawn only, before the cell is shared.
  void SetSupervised(Rebuild rebuild);

  // Any thread. When this actor stops (or at once if it has), `watcher`
  // receives the message `make_down` makes.
  void RequestWatch(ActorCell* watcher, DownFactory make_down) noexcept;
  // Any thread. Removes the watch `watcher` registered for `monitor`.
  void RequestUnwatch(ActorCell* watcher, uint64_t monitor) noexcept;

  // Any thread: the halves of a link that the other end asks for (see
  // Actor::Link). RequestLink adds `from` to this actor's links, or if this
  // actor has stopped sends `from` an exit at once; RequestUnlink removes
  // it; RequestExit tells this actor that `from`, a linked actor, has
  // stopped with `reason` (urgent: it overtakes queued messages).
  void RequestLink(ActorCell* from) noexcept;
  void RequestUnlink(ActorCell* from) noexcept;
  void RequestExit(ActorCell* from, const absl::Status& reason) noexcept;
  // A DownFactory for a link's remote half: the Down of `target` (a proxy)
  // becomes the exit of a link with it. Monitor id 0 names link watches.
  static Message* MakeLinkExit(ActorCell* target, const absl::Status& reason, uint64_t monitor);
  static constexpr DownFactory kLinkExit{&MakeLinkExit, 0, /*urgent=*/true};
  // Any thread: Enqueue, then mark the message urgent (see kUrgentBit).
  void EnqueueUrgent(Message* m) noexcept;

  // Any thread (net/ only). Decodes a payload of `type_id` that arrived
  // from another node and hands it to the actor; `route` is set for an ask
  // and carries the reply back. NotFound if the actor's type does not
  // accept that type from other nodes (actors/wire.h), InvalidArgument if
  // the payload does not decode, ResourceExhausted if the actor's bounded
  // mailbox is full (dropped and counted). OK once handed over, also if the
  // actor had stopped (a tell is then a dead letter; an ask fails through
  // `route`).
  virtual absl::Status DeliverRemote(uint64_t type_id, WireReader& in, std::unique_ptr<ReplyRoute> route);

  // Runnable: one turn, at most a batch of messages.
  void Run() noexcept final;

  // ContinuationContext.
  void PostMessage(Message* m) noexcept final { Enqueue(m); }
  void BeginExclusiveWait() noexcept final;
  void RetainContext() noexcept final { Retain(); }
  void ReleaseContext() noexcept final { Release(); }
  void AddPending(PendingContinuation* c) noexcept final;

  // Actor context only.
  // Stops the actor once the running handler returns.
  void StopSelf(absl::Status reason);
  // False once the actor has stopped (its OnStop or destructor is running):
  // a child spawned then would outlive it, so it is created stopped.
  bool MayAdoptChildren() const noexcept { return !(flags_ & kStopped); }
  void AdoptChild(ActorCell* child);
  void AddWatcher(ActorCell* watcher, DownFactory make_down);
  void RemoveWatcher(ActorCell* watcher, uint64_t monitor);
  void FailFromCoroutine(std::exception_ptr error) noexcept;
  bool stopping() const noexcept { return (flags_ & kStopping) != 0; }
  // Monitors held by this actor (Actor::Monitor / Demonitor). Monitor
  // returns the new monitor's id; Demonitor is true if it was active (no
  // Down for it is delivered afterwards); TakeMonitor, as a Down for it
  // arrives, is true if it was still active.
  uint64_t Monitor(ActorCell* target, DownFactory::Fn make_down, bool exit_reason_if_late = false);
  bool Demonitor(uint64_t monitor);
  bool TakeMonitor(uint64_t monitor);
  // Links (Actor::Link, Unlink, TrapExits). Link and Unlink are idempotent
  // and return whether they changed anything.
  bool Link(ActorCell* other);
  bool Unlink(ActorCell* other);
  // `make_exit` builds the Exit message delivered while trapping; null
  // stops trapping.
  using ExitFactory = Message* (*)(ActorCell* from, const absl::Status& reason);
  void TrapExits(ExitFactory make_exit);
  // Spawn only, before the child is shared: links a new child to its
  // spawner (SpawnLink).
  void LinkAtSpawn(ActorCell* parent);

  // Any thread (Registry): marks the actor as having names. True if it has
  // already stopped (its names may not have been released: the caller
  // releases them).
  bool MarkRegistered() noexcept;

  // Tests only, with the actor idle: the watches registered on it.
  size_t watchers_for_test() const noexcept;
  size_t links_for_test() const noexcept;
  // Timers this actor started (Actor::SendAfter / SendPeriodically): cancelled when it stops.
  void AddTimer(TimerId id);
  bool CancelTimer(TimerId id);
  // The name of the user's actor type, for logs.
  virtual std::string_view type_name() const noexcept = 0;

  // Spawn only (SystemCore::Spawn), before the cell is shared.
  void Init(SystemCore* core, ActorId id, ActorCell* parent, bool has_start_hook) noexcept;
  // Spawn only, for a system that has shut down: the actor never runs.
  void InitDead(SystemCore* core, ActorId id) noexcept;
  // RemoteCell only: a proxy that never runs and whose mailbox is closed.
  void InitProxy(SystemCore* core, ActorId id) noexcept;

 protected:
  ActorCell() = default;
  virtual ~ActorCell();

  // Run in the actor's context by the lifecycle. Overridden by ActorBox<A>
  // to call the user's hooks and destroy the user's object.
  virtual void HandleStart() = 0;
  virtual void HandleStop(const absl::Status& reason) = 0;
  // A child stopped for good (`ended`), or its instance stopped and it
  // waits for a restart. No-op unless the actor type supervises.
  virtual void HandleChildEvent(ActorCell* child, const absl::Status& reason, bool ended) noexcept;
  // Stops the children in an order of the actor type's own (a
  // supervisor's: reverse start order, one at a time); false for the
  // default, all at once.
  virtual bool StopChildrenInOrder(bool now) noexcept;
  virtual void DestroyState() noexcept = 0;
  // A message that took a place in a bounded mailbox leaves without being
  // delivered: give the place back (no-op for unbounded actors).
  virtual void GiveMailboxPlace() noexcept = 0;

 private:
  struct Extras;
  class Signal;
  friend class Signal;

  enum Flags : uint32_t {
    kStarted = 1,
    kStopping = 2,
    kStopped = 4,
    kExclusive = 8,     // an exclusive co_await is pending
    kStopPending = 16,  // stop once the running handler returns
    kStopNow = 32,      // stopping immediately: children are stopped so too
    kTrapExits = 64,    // a linked actor's exit arrives as an Exit message
    kSupervised = 128,  // a supervisor decides what follows a stop
    kForGood = 256,     // this stop ends the actor, not only its instance
    kSuspended = 512,   // supervised, between instances: user messages wait
  };
  // refs_'s top bit: an urgent signal waits in the inbox (see Memory
  // ordering); Run handles the system messages queued ahead of the others.
  static constexpr uint32_t kUrgentBit = uint32_t{1} << 31;
  // refs_'s next bit: the actor has names in its system's Registry.
  static constexpr uint32_t kRegisteredBit = uint32_t{1} << 30;
  static constexpr uint32_t kCountMask = kRegisteredBit - 1;

  Extras& extras();
  absl::Status exit_reason() const noexcept;
  void set_exit_reason(absl::Status reason);
  Message* NextMessage() noexcept;
  bool HasRunnableMessages() const noexcept;
  bool HoldsUserMessages() const noexcept;
  void Process(Message* m) noexcept;
  void ApplyPendingStop() noexcept;
  void HandleFailure(const char* where, std::exception_ptr error) noexcept;
  void BounceHere(Message* m, const absl::Status& reason) noexcept;
  void BeginStop(absl::Status reason, bool now, bool for_good = false) noexcept;
  void EndInstance(const absl::Status& reason) noexcept;
  void FinishInstance() noexcept;
  void Restart() noexcept;
  void ReportTerminated(const absl::Status& reason) noexcept;
  void TakeUrgent() noexcept;
  void OnExit(ActorCell* from, absl::Status reason) noexcept;
  void EndLinks(const absl::Status& reason) noexcept;
  void StopChildren(bool now) noexcept;
  void FinishStop() noexcept;
  void CancelTimers() noexcept;
  void WithdrawContinuations() noexcept;
  void EndMonitors() noexcept;
  void UnlistPending(PendingContinuation* c) noexcept;
  void OnChildStopped(ActorCell* child, const absl::Status& reason) noexcept;
  absl::Status BounceReason() const;
  // Any thread, once a push has found the inbox closed: the exit reason.
  absl::Status ExitReasonOnceClosed() const;
  // The last reference went: deletes this cell, and then each ancestor
  // whose last reference was this child's (in a loop: a deep chain of
  // actors cannot overflow the stack).
  void Destroy() noexcept;

  // Holders: Refs, the alive count, pending continuations. Top bit:
  // kUrgentBit.
  std::atomic<uint32_t> refs_{1};
  // Actor context only; see Flags.
  uint32_t flags_ = 0;
  Inbox inbox_;
  SystemCore* core_ = nullptr;
  ActorId id_ = 0;
  // The spawning actor, or null. A child holds a reference to its parent's
  // cell for its own cell's whole life, instead of one to the core: the
  // parent's cell holds the core (itself, or through its own parent, up to
  // a top-level actor), so spawning and freeing a child touches only the
  // parent's count, not one that every worker writes. The parent's actor
  // outlives the child's anyway: it stops only after its children have.
  ActorCell* parent_ = nullptr;
  // Children, watchers, monitors, timers, waiting continuations, deferred
  // messages, exit reason: allocated on first use, so an idle leaf actor
  // pays one pointer for all of it.
  Extras* extras_ = nullptr;
};

// RAII: marks `cell` as the actor running on this thread (its
// ContinuationContext is the thread's current context).
class ScopedCurrentActor {
 public:
  explicit ScopedCurrentActor(ActorCell* cell) noexcept;
  ~ScopedCurrentActor();

 private:
  ContinuationContext* previous_context_;
};

// The actor running on this thread, or nullptr.
ActorCell* CurrentActor() noexcept;

}  // namespace internal
}  // namespace troupe

#endif  // TROUPE_ACTORS_ACTOR_CELL_H_
