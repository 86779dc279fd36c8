// SystemCore: what every actor of one ActorSystem shares — the executor,
// the timers, the blocking pool, the logger, the counters, and the list of
// top-level actors. ActorSystem is its public face; SystemCore outlives it as
// long as any actor cell (and so any Ref) still points to it, so a Ref used
// after its system is gone finds a closed mailbox, not freed memory.
//
// Who may call what: everything is thread-safe unless noted.
//
// Memory ordering: counters are relaxed (statistics; nothing is published
// through them). live_actors_ is decremented with release and read with
// acquire by Shutdown, so a finished actor's last writes happen-before
// shutdown proceeds. shutting_down_ is a release store read with acquire.

#ifndef TROUPE_ACTORS_SYSTEM_CORE_H_
#define TROUPE_ACTORS_SYSTEM_CORE_H_

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "actors/actor_cell.h"
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

class SystemCore {
 public:
  SystemCore(std::string name, std::unique_ptr<Executor> executor, std::shared_ptr<TimerService> timers,
             std::unique_ptr<BlockingPool> blocking, std::shared_ptr<spdlog::logger> logger, int batch);
  SystemCore(const SystemCore&) = delete;
  SystemCore& operator=(const SystemCore&) = delete;

  void Retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Takes a freshly constructed cell, gives it its id and parent, and makes
  // it runnable. `parent` is the spawning actor, or nullptr from outside.
  void Spawn(ActorCell* cell, ActorCell* parent, bool has_start_hook, SpawnOptions options = {});

  // Ids for proxies of remote actors (RemoteCell); ActorCell::InitProxy
  // adds kRemoteBit, so they never meet an actor's id.
  ActorId NextProxyId() noexcept { return next_proxy_id_.fetch_add(1, std::memory_order_relaxed); }

  // Called once by each cell when it has stopped.
  void ActorStopped(ActorCell* cell) noexcept;

  void Schedule(Runnable* r) noexcept { executor_->Schedule(r); }
  void Yield(Runnable* r) noexcept { executor_->Yield(r); }

  // Steps 1-2 of Shutdown: refuses new work and asks every actor to stop.
  // Idempotent.
  void BeginShutdown();

  // Asks every actor to stop immediately (RequestStopNow). Idempotent.
  void StopAllNow();

  // Stops every actor, then the timers, the blocking pool and the workers.
  // Actors left after `timeout` are stopped immediately and given
  // min(timeout, kStopNowGrace) more; DeadlineExceeded if some were still
  // running handlers then (the workers are left running; see ActorSystem).
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
  uint64_t spawned() const noexcept { return spawned_.load(std::memory_order_relaxed); }
  uint64_t live_actors() const noexcept { return live_actors_.load(std::memory_order_acquire); }

 private:
  ~SystemCore();
  ActorId NextId() noexcept;
  // True once no actor is left; false if `timeout` passed first.
  bool WaitAllStopped(absl::Duration timeout);
  static constexpr ActorId kIdBlock = 256;

  const std::string name_;
  const std::unique_ptr<Executor> executor_;
  const std::shared_ptr<TimerService> timers_;
  const std::unique_ptr<BlockingPool> blocking_;
  const std::shared_ptr<spdlog::logger> logger_;
  const int batch_;
  const std::unique_ptr<Registry> registry_;
  const std::unique_ptr<DeadLetters> dead_letter_reports_;

  // The ActorSystem and every cell hold one.
  std::atomic<uint32_t> refs_{1};
  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> executor_stopped_{false};
  std::atomic<uint64_t> next_id_{1};
  std::atomic<uint64_t> next_proxy_id_{1};  // a count: relaxed
  std::atomic<uint64_t> spawned_{0};
  std::atomic<uint64_t> live_actors_{0};
  std::atomic<uint64_t> dead_letters_{0};
  std::atomic<uint64_t> failures_{0};
  std::atomic<uint64_t> dropped_{0};

  std::mutex mu_;
  std::condition_variable all_stopped_;  // signalled under mu_ when live_actors_ hits 0

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
