// WorkerPool: troupe's work-stealing executor.
//
// N worker threads (default: one per hardware thread). Each worker has:
//   - a LIFO slot: the Runnable scheduled last from this worker runs next on
//     it, so a sender's receiver runs right after the sender, on the same
//     core, with a warm cache (a request/reply pair stays on one core). At
//     most kMaxLifoStreak turns in a row come from the slot, so a ping-pong
//     pair cannot starve the worker's queue;
//   - a bounded local RunQueue (scheduler/run_queue.h): FIFO for its owner,
//     half of it stealable by idle workers;
// and the pool has a global injection queue (moodycamel ConcurrentQueue:
// few instances, many producers) for work scheduled from threads outside the
// pool and for local queues that overflow. A worker checks the injection
// queue first every kGlobalQueueInterval turns, so injected work is never
// starved by a busy local queue.
//
// Finding work, in order: LIFO slot, local queue, injection queue, then
// searching: steal half of a random victim's queue, trying every victim.
// A worker that finds nothing parks on a futex after a bounded search.
//
// Idle protocol (who wakes whom). `idle_` packs two counts: workers awake
// ("unparked") and workers searching. At most half the workers search at
// once. When work is made stealable (local push of a second item, Yield,
// injection), the producer wakes one parked worker — but only if no worker
// is searching already (a searcher will find the work) and not all are awake.
// A woken worker starts out searching. A searcher that finds work stops
// searching, and if it was the last searcher it wakes another worker, so
// stealable work always has a searcher until it runs out. A searcher that
// gives up parks; if it was the last searcher it first re-checks every queue
// and wakes a worker for anything found, closing the race with a producer
// that saw it searching.
//
// Memory ordering:
// - idle_ changes with seq_cst RMWs. A producer, after publishing work,
//   issues a seq_cst fence and loads idle_; a searcher that leaves the
//   count (an RMW) issues a seq_cst fence before it re-checks the queues.
//   Either the producer sees the searcher (which then re-checks the queues
//   after leaving the count and sees the work), or the searcher's re-check
//   sees the work: a Dekker pair. A load, not an RMW, because every local
//   push makes this check: an RMW would take the line from the other
//   workers each time. TSan does not model fences, so under TSan the
//   producer reads with an RMW (fetch_add of 0) instead, the form TSan
//   checks.
// - Per worker `park_` (empty / parked / notified): Unpark is an exchange
//   (release: what the waker did happens-before the woken worker's run);
//   Park consumes the token with an acquire CAS.
// - shutdown_: release store in Shutdown, acquire load in the worker loop.
// - Run queue and injection queue orderings are their own (see run_queue.h;
//   moodycamel ConcurrentQueue publishes items with release/acquire).
// - injecting_: the injection gate, one word: bit 31 closed, the rest the
//   Schedule/Yield calls from outside the pool that are between the gate and
//   their enqueue. An outside call takes a place with a relaxed fetch_add
//   (it only needs to know whether the gate was closed first: all RMWs on
//   the word are totally ordered) and gives it back with a release
//   fetch_sub after enqueueing; Shutdown closes the gate with a fetch_or
//   and waits, with acquire loads, until no place is taken, so every
//   accepted injection happens-before the drain (step 4 below). A worker's
//   own pushes need no gate: Shutdown joins the worker before it drains.
//
// Who may call what: Schedule from any thread; Yield from a worker running
// the Runnable; IsOwnThread and parked_workers from any thread; Shutdown
// from outside the pool.
//
// Shutdown, in order:
//   1. close the injection gate: from here Schedule and Yield from outside
//      the pool return false; wait for the outside calls already past the
//      gate to finish enqueueing;
//   2. set shutdown_ and unpark every worker;
//   3. each worker exits its loop at its next check (after the Runnable it is
//      running returns; what that Runnable schedules from the worker is still
//      accepted, into the worker's own slot and queue); join them all;
//   4. drain every LIFO slot, local queue and the injection queue, and hand
//      what was never run back to the caller.
// So a Runnable is run, refused, or handed back; never dropped. The actor
// layer stops every actor before it shuts the pool down, so it expects
// nothing back.

#ifndef TROUPE_SCHEDULER_WORKER_POOL_H_
#define TROUPE_SCHEDULER_WORKER_POOL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#if defined(__SANITIZE_THREAD__)
#define TROUPE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TROUPE_TSAN 1
#endif
#endif
#ifndef TROUPE_TSAN
#define TROUPE_TSAN 0
#endif
#include <vector>

#include "mailbox/message_cache.h"
#include "scheduler/executor.h"
#include "scheduler/run_queue.h"

namespace troupe {

class WorkerPool final : public Executor {
 public:
  struct Options {
    int workers = 0;  // 0: one per hardware thread
    uint32_t local_queue_capacity = internal::RunQueue::kDefaultCapacity;
    std::string name = "troupe";  // worker threads are named <name>-w<i>
  };

  struct Stats {
    uint64_t parks = 0;    // times a worker went to sleep
    uint64_t steals = 0;   // successful steals
    uint64_t injected = 0;  // Runnables that went through the injection queue
  };

  explicit WorkerPool(Options options);
  // Calls Shutdown. Runnables it would hand back are lost with the pool:
  // call Shutdown first to get them. Must not run on a worker of this pool.
  ~WorkerPool() override;

  // From a worker of this pool, Schedule and Yield always accept (until the
  // worker exits, what it schedules is handed back by Shutdown if never
  // run); from any other thread they return false once Shutdown has begun.
  bool Schedule(Runnable* r) noexcept override;
  bool Yield(Runnable* r) noexcept override;
  // True on one of this pool's worker threads.
  bool IsOwnThread() const noexcept override;
  // See "Shutdown, in order" above. Concurrent calls wait for the first;
  // later ones return nothing.
  std::vector<Runnable*> Shutdown() override;

  int workers() const noexcept { return static_cast<int>(workers_.size()); }
  Stats stats() const noexcept;
  // Workers parked now: asleep, or committed to sleep and about to, with no
  // wake-up sent to them yet. A snapshot, for tests and monitoring.
  int parked_workers() const;

  static constexpr int kMaxLifoStreak = 3;
  static constexpr uint32_t kGlobalQueueInterval = 61;

  struct Worker;  // opaque; defined in worker_pool.cc

 private:
  class Injector;

  void WorkerLoop(Worker& w);
  Runnable* NextTask(Worker& w);
  Runnable* Search(Worker& w);
  Runnable* PopInjected() noexcept;
  void PushLocal(Worker& w, Runnable* r) noexcept;
  bool Inject(Runnable* r) noexcept;

  // The idle protocol; see the header comment.
  void NotifyParked() noexcept;
  // idle_ as a producer reads it after publishing work (see Memory ordering).
  uint32_t IdleStateAfterPublishing() noexcept;
  bool TryStartSearching(Worker& w) noexcept;
  void StopSearching(Worker& w) noexcept;
  void Park(Worker& w);
  bool AnyWorkVisible() const noexcept;

  // Batches of recycled message memory traded between the workers' caches;
  // outlives them (they flush into it as they exit).
  internal::MessageDepot message_depot_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<Injector> injector_;

  // Low 16 bits: searching workers; high 16 bits: unparked workers.
  std::atomic<uint32_t> idle_;
  std::atomic<bool> shutdown_{false};
  // The injection gate; see the header's memory-ordering notes.
  std::atomic<uint32_t> injecting_{0};
  std::atomic<uint64_t> parks_{0};
  std::atomic<uint64_t> steals_{0};
  std::atomic<uint64_t> injected_{0};

  mutable std::mutex sleepers_mu_;
  std::vector<int> sleepers_;  // parked worker indexes; guarded by sleepers_mu_
  std::once_flag shutdown_once_;
};

}  // namespace troupe

#endif  // TROUPE_SCHEDULER_WORKER_POOL_H_
