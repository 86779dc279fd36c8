// SystemCore: what every actor of one ActorSystem shares — the executor,
// the timers, the blocking pool, the logger, the counters, and the list of
// top-level actors. ActorSystem is its public face; SystemCore outlives it as
// long as any actor cell (and so any Ref) still points to it, so a Ref used
// after its system is gone finds a closed mailbox, not freed memory.
//
// Who may call what: everything is thread-safe unless noted.
//
// Lifetime: reference counted; the ActorSystem, every top-level or dead
// cell and every proxy hold one; a child's cell holds its parent's cell
// instead, and so the core through its top-level ancestor. The
// last Release deletes the core, and the destructor stops the timers, the
// blocking pool and the executor, joining their threads (normally Shutdown
// has done so already; after a Shutdown that returned DeadlineExceeded they
// are still running). That last Release can happen on one of those very
// threads: a stuck handler that finally returns on a worker, a timer
// callback or a blocking job destroyed with the last Ref. No thread can join
// itself, so then the deletion is handed to a thread started for it (named
// <system>-end, detached), which joins them all — the releasing thread
// among them, once it is back in its pool's loop, with its pool still
// alive. If that thread cannot be started, the core and its threads are
// left in place (logged), not freed under their feet.
//
// Spawning and Shutdown. Shutdown stops the executor only when no actor is
// live and no spawn can make one live, so the executor is never handed an
// actor it will not run. Only top-level actors (spawned from outside any
// actor) are counted for this: a parent finishes stopping only after all
// its children have, so no top-level actor left means no actor left, and
// no handler running that could spawn a child. Spawning a child therefore
// touches no shared counter. A top-level spawn counts its actor live first
// and then reads spawning_closed_; Shutdown, once it has seen no live
// actor, closes spawning and then reads the count again. Either Shutdown's
// second read sees the new actor (and waits for it to stop: it was asked
// to, as shutting_down_ was already set), or the spawn sees spawning closed
// and makes the actor dead from the start (its sends bounce with
// Cancelled). An executor that still refuses a cell, or hands one back from
// its Shutdown, means this order is broken: SystemCore logs the actor and
// aborts rather than leave its asks hanging.
//
// Memory ordering: the statistics are relaxed or striped (nothing is
// published through them). live_top_level_ is decremented with release and
// read by Shutdown with seq_cst (an acquire too), so a finished top-level
// actor's last writes — and through each parent's child-stopped signal,
// every descendant's writes up to that signal — happen-before shutdown
// proceeds. Spawn's increment of live_top_level_ and its load of
// spawning_closed_, and Shutdown's store to spawning_closed_ and its next
// load of live_top_level_, are seq_cst: the Dekker pair above, in which at
// least one side sees the other. shutting_down_ is a release store read
// with acquire.
//
// Layout: refs_, which top-level spawns, proxies and freed top-level cells
// write from any thread, has a cache line of its own, so those writes do
// not evict the fields every turn reads (the executor, the batch,
// shutting_down_).

#ifndef TROUPE_ACTORS_SYSTEM_CORE_H_
#define TROUPE_ACTORS_SYSTEM_CORE_H_

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "actors/actor_cell.h"
#include "actors/striped_counter.h"
#include "scheduler/blocking_pool.h"
#include "scheduler/executor.h"
#include "scheduler/timer_service.h"
#include "spdlog/logger.h"

namespace troupe {
class Registry;     // actors/registry.h
class DeadLetters;  // actors/dead_letters.h
}  // namespace troupe

namespace troupe::internal {

// How SystemCore::Spawn sets up a new actor.
struct SpawnOptions {
  bool link = false;  // link it to its parent before it runs (SpawnLink)
  // Set: the parent supervises it (actors/supervisor.h), and this builds
  // each next instance in its cell.
  ActorCell::Rebuild rebuild;
};

class SystemCore;

// Lets a thread outside the worker pool run, itself, the turn of the first
// actor made runnable while the scope is open on it: instead of queueing
// that actor for a worker (and waking one, which costs more than a short
// turn), Schedule leaves it here and the destructor runs one turn of it on
// this thread; the turn's own end (TryBlock or Yield) is the usual one, so
// messages left over go to the pool. Only actors of `core`, only the first
// (the rest are scheduled as always), and never from a worker (its own
// Schedule already keeps the receiver on it). A node's I/O thread opens one
// around each frame it dispatches (NodeOptions::io_thread_runs_actors), so
// the actor of a lone request runs on the thread that read it. One per
// thread at a time; the scope is not nested.
class InlineTurn {
 public:
  explicit InlineTurn(SystemCore& core) noexcept : core_(&core), previous_(current_) { current_ = this; }
  ~InlineTurn();
  InlineTurn(const InlineTurn&) = delete;
  InlineTurn& operator=(const InlineTurn&) = delete;

  // Schedule's check: true if `cell` was taken by the open scope.
  static bool Take(const SystemCore* core, ActorCell* cell) noexcept {
    InlineTurn* t = current_;
    if (t == nullptr || t->core_ != core || t->cell_ != nullptr) [[likely]] return false;
    t->cell_ = cell;
    return true;
  }

 private:
  static inline thread_local InlineTurn* current_ = nullptr;
  SystemCore* const core_;
  InlineTurn* const previous_;
  ActorCell* cell_ = nullptr;
};

class SystemCore {
 public:
  SystemCore(std::string name, std::unique_ptr<Executor> executor, std::shared_ptr<TimerService> timers,
             std::unique_ptr<BlockingPool> blocking, std::shared_ptr<spdlog::logger> logger, int batch);
  SystemCore(const SystemCore&) = delete;
  SystemCore& operator=(const SystemCore&) = delete;

  void Retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  // acq_rel: the thread that deletes sees every other holder's writes.
  void Release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) Destroy();
  }

  // Takes a freshly constructed cell, gives it its id and parent, and makes
  // it runnable. `parent` is the spawning actor, or nullptr from outside.
  // Once Shutdown has closed spawning (step 5), the cell is made dead: it
  // never runs and sends to it bounce. So is a child spawned by a parent
  // that has stopped (from its OnStop or destructor).
  // `options` may be null (no link, not supervised); its rebuild is moved
  // from.
  void Spawn(ActorCell* cell, ActorCell* parent, bool has_start_hook, SpawnOptions* options = nullptr);

  // Ids for proxies of remote actors (RemoteCell); ActorCell::InitProxy
  // adds kRemoteBit, so they never meet an actor's id.
  ActorId NextProxyId() noexcept { return next_proxy_id_.fetch_add(1, std::memory_order_relaxed); }

  // Called once by each cell when it has stopped.
  void ActorStopped(ActorCell* cell) noexcept;

  void Schedule(ActorCell* cell) noexcept {
    if (InlineTurn::Take(this, cell)) [[unlikely]] return;
    if (!executor_->Schedule(cell)) [[unlikely]] Unrunnable(cell, "refused");
  }
  void Yield(ActorCell* cell) noexcept {
    if (!executor_->Yield(cell)) [[unlikely]] Unrunnable(cell, "refused");
  }

  // Steps 1-2 of Shutdown: refuses new work and asks every actor to stop.
  // Idempotent.
  void BeginShutdown();

  // Asks every actor to stop immediately (RequestStopNow). Idempotent.
  void StopAllNow();
  // Asks every top-level actor to stop, in order or immediately.
  void StopRoots(bool now);

  // Shutdown, in order:
  //   1-2. BeginShutdown;
  //   3. wait until no actor is live, at most `timeout`;
  //   4. past it, stop the actors left immediately (StopAllNow) and wait
  //      min(timeout, kStopNowGrace) more;
  //   5. close spawning, then wait again for a spawn that counted its actor
  //      live just before (see "Spawning and Shutdown" above);
  //   6. timers: pending ones are destroyed unrun (ask deadlines with them);
  //   7. blocking pool: queued jobs are destroyed, running ones finish;
  //   8. executor: nothing is left to run; its threads are joined.
  // Returns DeadlineExceeded if actors were still running handlers at the
  // end of step 4 (steps 5-8 are then skipped: the threads are left
  // running; see ActorSystem).
  absl::Status Shutdown(absl::Duration timeout);
  static constexpr absl::Duration kStopNowGrace = absl::Seconds(5);

  bool shutting_down() const noexcept { return shutting_down_.load(std::memory_order_acquire); }
  TimerService& timers() const noexcept { return *timers_; }
  const std::shared_ptr<TimerService>& shared_timers() const noexcept { return timers_; }
  BlockingPool& blocking() const noexcept { return *blocking_; }
  Registry& registry() const noexcept { return *registry_; }
  // A stopped actor that had names.
  void ForgetNames(ActorCell* cell) noexcept;
  spdlog::logger& log() const noexcept { return *logger_; }
  Executor& executor() const noexcept { return *executor_; }
  int batch() const noexcept { return batch_; }
  const std::string& name() const noexcept { return name_; }

  // Counts a dead letter and reports it to subscribers (dead_letters.h).
  // `target` may be null; `type` has static storage.
  void ReportDeadLetter(ActorCell* target, std::string_view type, const absl::Status& reason) noexcept;
  DeadLetters& dead_letter_reports() const noexcept { return *dead_letter_reports_; }
  void CountFailure() noexcept { failures_.fetch_add(1, std::memory_order_relaxed); }
  void CountDropped() noexcept { dropped_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
  uint64_t dead_letters() const noexcept { return dead_letters_.load(std::memory_order_relaxed); }
  uint64_t failures() const noexcept { return failures_.load(std::memory_order_relaxed); }
  uint64_t spawned() const noexcept { return spawned_.Sum(); }
  // Actors spawned and not yet stopped (statistics; exact once the stops
  // to count happen-before the call).
  uint64_t live_actors() const noexcept {
    const uint64_t stopped = stopped_.Sum();  // first: see StripedCounter
    const uint64_t spawned = spawned_.Sum();
    return spawned > stopped ? spawned - stopped : 0;
  }
  // Top-level actors not yet stopped: 0 means no actor is live (see
  // "Spawning and Shutdown").
  uint64_t live_top_level() const noexcept { return live_top_level_.load(std::memory_order_acquire); }

 private:
  ~SystemCore();
  // Deletes the core here, or on a thread of its own if this thread is one
  // the destructor must join (see Lifetime above).
  void Destroy() noexcept;
  // True on a thread of the executor, the timers or the blocking pool.
  bool OnOwnThread() const noexcept;
  ActorId NextId() noexcept;
  static constexpr ActorId kIdBlock = 256;

  // One top-level actor fewer is live; wakes Shutdown when none is left.
  void CountTopLevelGone() noexcept;
  // `cell` never runs: stopped from the start.
  void SpawnDead(ActorCell* cell) noexcept;
  // Waits until no actor is live; false if `deadline` passed first.
  bool WaitUntilNoActorIsLive(std::chrono::steady_clock::time_point deadline);
  // See "Spawning and Shutdown" above: logs `cell` and aborts.
  [[noreturn]] void Unrunnable(ActorCell* cell, const char* what) noexcept;

  const std::string name_;
  const std::unique_ptr<Executor> executor_;
  const std::shared_ptr<TimerService> timers_;
  const std::unique_ptr<BlockingPool> blocking_;
  const std::shared_ptr<spdlog::logger> logger_;
  const int batch_;
  const std::unique_ptr<Registry> registry_;
  const std::unique_ptr<DeadLetters> dead_letter_reports_;
  // Unique among the process's systems for its whole run (an address is
  // not: a later system may be allocated where this one was). Tags the
  // per-thread id blocks of NextId.
  const uint64_t serial_;

  std::atomic<bool> shutting_down_{false};
  // Set by Shutdown (step 5), read by Spawn; see "Spawning and Shutdown".
  std::atomic<bool> spawning_closed_{false};
  // See Lifetime; on a line of its own (see Layout).
  alignas(64) std::atomic<uint32_t> refs_{1};
  alignas(64) std::atomic<uint64_t> next_id_{1};
  std::atomic<uint64_t> next_proxy_id_{1};  // a count: relaxed
  std::atomic<uint64_t> live_top_level_{0};
  std::atomic<uint64_t> dead_letters_{0};
  std::atomic<uint64_t> failures_{0};
  std::atomic<uint64_t> dropped_{0};
  StripedCounter spawned_;
  StripedCounter stopped_;

  std::mutex mu_;
  std::condition_variable all_stopped_;  // signalled under mu_ when live_top_level_ hits 0

  // Actors spawned from outside any actor, each with a reference held here;
  // children are tracked by their parents. A table of slots per shard (the
  // actor's id names its slot, so removal needs no search) with a free list;
  // sharded so spawning and stopping on several threads rarely share a lock.
  struct alignas(64) TopLevelShard {
    std::mutex mu;
    std::vector<ActorCell*> cells;       // guarded by mu; null = free slot
    std::vector<uint32_t> generations;   // guarded by mu; bumped on reuse
    std::vector<uint32_t> free_slots;    // guarded by mu
  };
  static constexpr size_t kTopLevelShards = 16;
  void RegisterTopLevel(ActorCell* cell, bool has_start_hook);
  std::array<TopLevelShard, kTopLevelShards> top_level_;
};

}  // namespace troupe::internal

#endif  // TROUPE_ACTORS_SYSTEM_CORE_H_
