#include "actors/system_core.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace troupe::internal {

SystemCore::SystemCore(std::string name, std::unique_ptr<Executor> executor, std::shared_ptr<TimerService> timers,
                       std::unique_ptr<BlockingPool> blocking, std::shared_ptr<spdlog::logger> logger, int batch)
    : name_(std::move(name)),
      executor_(std::move(executor)),
      timers_(std::move(timers)),
      blocking_(std::move(blocking)),
      logger_(std::move(logger)),
      batch_(batch > 0 ? batch : 1) {}

SystemCore::~SystemCore() = default;

void SystemCore::Spawn(ActorCell* cell, ActorCell* parent, bool has_start_hook) {
  const ActorId id = NextId();
  if (executor_stopped_.load(std::memory_order_acquire)) {
    cell->InitDead(this, id);
    return;
  }
  live_actors_.fetch_add(1, std::memory_order_relaxed);
  cell->Init(this, id, parent, has_start_hook);
  if (parent != nullptr) {
    parent->AdoptChild(cell);
  } else {
    cell->Retain();
    TopLevelShard& shard = ShardOf(id);
    std::lock_guard<std::mutex> lock(shard.mu);
    shard.cells.insert(cell);
  }
  if (shutting_down()) cell->RequestStop(absl::CancelledError("the system is shutting down"));
  if (has_start_hook) Schedule(cell);
}

ActorId SystemCore::NextId() noexcept {
  // Each thread takes ids in blocks, so spawning on several workers does not
  // contend on one counter. Per thread, tagged with the system it belongs to.
  struct Block {
    const SystemCore* core = nullptr;
    ActorId next = 0;
    ActorId end = 0;
  };
  thread_local Block block;
  if (block.core != this || block.next == block.end) {
    block.core = this;
    // Relaxed: ids only need to be unique; nothing is published through them.
    block.next = next_id_.fetch_add(kIdBlock, std::memory_order_relaxed);
    block.end = block.next + kIdBlock;
  }
  spawned_.fetch_add(1, std::memory_order_relaxed);  // statistics
  return block.next++;
}

void SystemCore::ActorStopped(ActorCell* cell) noexcept {
  bool was_top_level = false;
  {
    TopLevelShard& shard = ShardOf(cell->id());
    std::lock_guard<std::mutex> lock(shard.mu);
    was_top_level = shard.cells.erase(cell) > 0;
  }
  if (was_top_level) cell->Release();
  // Release: this actor's writes happen-before Shutdown's acquire read. The
  // notify is under mu_, after the count reached 0, so a Shutdown that saw
  // the count above 0 under mu_ is already waiting and gets it.
  if (live_actors_.fetch_sub(1, std::memory_order_release) == 1) {
    std::lock_guard<std::mutex> lock(mu_);
    all_stopped_.notify_all();
  }
}

void SystemCore::BeginShutdown() {
  // 1. Refuse new work: spawns are stopped at once, closed mailboxes say
  //    Cancelled.
  if (shutting_down_.exchange(true, std::memory_order_acq_rel)) return;
  // 2. Ask every top-level actor to stop; each stops its children first.
  std::vector<ActorCell*> roots;
  for (TopLevelShard& shard : top_level_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (ActorCell* cell : shard.cells) {
      cell->Retain();
      roots.push_back(cell);
    }
  }
  for (ActorCell* cell : roots) {
    cell->RequestStop(absl::CancelledError("the system is shutting down"));
    cell->Release();
  }
}

absl::Status SystemCore::Shutdown(absl::Duration timeout) {
  BeginShutdown();
  // 3. Wait for every actor to finish stopping (their queued asks fail with
  //    Cancelled as their mailboxes close).
  bool all_stopped;
  {
    std::unique_lock<std::mutex> lock(mu_);
    const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
    all_stopped = all_stopped_.wait_until(lock, deadline, [this] {
      return live_actors_.load(std::memory_order_acquire) == 0;  // pairs with ActorStopped
    });
  }
  if (!all_stopped) {
    const uint64_t left = live_actors_.load(std::memory_order_acquire);
    logger_->error("system {}: {} actors still running handlers after {}; workers left running", name_, left,
                   absl::FormatDuration(timeout));
    return absl::DeadlineExceededError(
        absl::StrCat(left, " actors did not stop within ", absl::FormatDuration(timeout)));
  }
  // 4. Timers: pending ones are destroyed unrun (ask deadlines with them).
  timers_->Shutdown();
  // 5. Blocking pool: queued jobs are destroyed, running ones finish.
  blocking_->Shutdown();
  // 6. Workers: nothing is left to run; join them.
  executor_stopped_.store(true, std::memory_order_release);
  executor_->Shutdown();
  return absl::OkStatus();
}

}  // namespace troupe::internal
