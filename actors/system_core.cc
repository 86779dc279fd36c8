#include "actors/system_core.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "actors/dead_letters.h"
#include "actors/registry.h"

namespace troupe::internal {

SystemCore::SystemCore(std::string name, std::unique_ptr<Executor> executor, std::shared_ptr<TimerService> timers,
                       std::unique_ptr<BlockingPool> blocking, std::shared_ptr<spdlog::logger> logger, int batch)
    : name_(std::move(name)),
      executor_(std::move(executor)),
      timers_(std::move(timers)),
      blocking_(std::move(blocking)),
      logger_(std::move(logger)),
      batch_(batch > 0 ? batch : 1),
      registry_(std::make_unique<Registry>()),
      dead_letter_reports_(std::make_unique<DeadLetters>([timers = timers_.get()] { return timers->Now(); })) {
  registry_->set_core(this);
}

SystemCore::~SystemCore() = default;

void SystemCore::ForgetNames(ActorCell* cell) noexcept { registry_->Forget(cell); }

void SystemCore::ReportDeadLetter(ActorCell* target, std::string_view type, const absl::Status& reason) noexcept {
  dead_letters_.fetch_add(1, std::memory_order_relaxed);
  dead_letter_reports_->Report(target, type, reason);
}

void SystemCore::Spawn(ActorCell* cell, ActorCell* parent, bool has_start_hook, SpawnOptions options) {
  if (executor_stopped_.load(std::memory_order_acquire)) {
    cell->InitDead(this, NextId());
    return;
  }
  if (parent != nullptr && !parent->MayAdoptChildren()) {
    // From the parent's OnStop or destructor: a child would outlive it.
    logger_->error("actor {} ({}) spawned a child after it stopped (in OnStop or its destructor): the {} never runs",
                   parent->id(), parent->type_name(), cell->type_name());
    cell->InitDead(this, NextId());
    return;
  }
  live_actors_.fetch_add(1, std::memory_order_relaxed);
  if (parent != nullptr) {
    cell->Init(this, NextId(), parent, has_start_hook);
    if (options.link) cell->LinkAtSpawn(parent);  // before anything can schedule the child
    if (options.rebuild) cell->SetSupervised(std::move(options.rebuild));
    parent->AdoptChild(cell);
  } else {
    RegisterTopLevel(cell, has_start_hook);
  }
  if (shutting_down()) cell->RequestStop(absl::CancelledError("the system is shutting down"));
  if (has_start_hook) Schedule(cell);
}

// A top-level actor's id names its registry slot: bit 63 set (ids of
// children, from NextId, never reach it), bit 62 clear (it marks proxies of
// remote actors, ActorCell::kRemoteBit), then 30 bits of the slot's
// generation, the slot and the shard. Generations make ids unique even as slots are reused.
namespace {
constexpr ActorId kTopLevelBit = ActorId{1} << 63;
constexpr int kShardBits = 4;
constexpr int kSlotBits = 28;
constexpr ActorId kSlotMask = (ActorId{1} << kSlotBits) - 1;
}  // namespace

void SystemCore::RegisterTopLevel(ActorCell* cell, bool has_start_hook) {
  static_assert(kTopLevelShards == 1 << kShardBits);
  spawned_.fetch_add(1, std::memory_order_relaxed);  // statistics
  const size_t s = (reinterpret_cast<uintptr_t>(cell) >> 7) % kTopLevelShards;
  TopLevelShard& shard = top_level_[s];
  cell->Retain();  // the registry's reference
  std::lock_guard<std::mutex> lock(shard.mu);
  uint32_t slot;
  if (!shard.free_slots.empty()) {
    slot = shard.free_slots.back();
    shard.free_slots.pop_back();
  } else {
    slot = static_cast<uint32_t>(shard.cells.size());
    if (slot > kSlotMask) {
      logger_->critical("system {}: more than {} top-level actors in one shard", name_, kSlotMask + 1);
      std::abort();
    }
    shard.cells.push_back(nullptr);
    shard.generations.push_back(0);
  }
  const ActorId id = kTopLevelBit | (ActorId{shard.generations[slot] & 0x3FFFFFFFu} << (kSlotBits + kShardBits)) |
                     (ActorId{slot} << kShardBits) | s;
  // Under the lock: Shutdown may ask it to stop as soon as it is listed.
  cell->Init(this, id, nullptr, has_start_hook);
  shard.cells[slot] = cell;
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
  if (const ActorId id = cell->id(); id & kTopLevelBit) {
    TopLevelShard& shard = top_level_[id & (kTopLevelShards - 1)];
    const uint32_t slot = static_cast<uint32_t>((id >> kShardBits) & kSlotMask);
    {
      std::lock_guard<std::mutex> lock(shard.mu);
      shard.cells[slot] = nullptr;
      ++shard.generations[slot];
      shard.free_slots.push_back(slot);
    }
    cell->Release();  // the registry's reference
  }
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
      if (cell == nullptr) continue;
      cell->Retain();
      roots.push_back(cell);
    }
  }
  for (ActorCell* cell : roots) {
    cell->RequestStop(absl::CancelledError("the system is shutting down"));
    cell->Release();
  }
}

void SystemCore::StopAllNow() {
  std::vector<ActorCell*> roots;
  for (TopLevelShard& shard : top_level_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (ActorCell* cell : shard.cells) {
      if (cell == nullptr) continue;
      cell->Retain();
      roots.push_back(cell);
    }
  }
  // Each stops its children immediately too.
  for (ActorCell* cell : roots) {
    cell->RequestStopNow(absl::CancelledError("the system is shutting down"));
    cell->Release();
  }
}

bool SystemCore::WaitAllStopped(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  return all_stopped_.wait_until(lock, deadline, [this] {
    return live_actors_.load(std::memory_order_acquire) == 0;  // pairs with ActorStopped
  });
}

absl::Status SystemCore::Shutdown(absl::Duration timeout) {
  BeginShutdown();
  // 3. Wait for every actor to finish stopping (their queued asks fail with
  //    Cancelled as their mailboxes close).
  if (!WaitAllStopped(timeout)) {
    // 4. Past the drain deadline: stop the rest immediately, so that queued
    //    messages are bounced instead of handled, and give the handlers
    //    running now a grace period to return.
    const absl::Duration grace = std::min(timeout, kStopNowGrace);
    logger_->warn("system {}: {} actors still stopping after {}; stopping them immediately", name_,
                  live_actors_.load(std::memory_order_acquire), absl::FormatDuration(timeout));
    StopAllNow();
    if (!WaitAllStopped(grace)) {
      const uint64_t left = live_actors_.load(std::memory_order_acquire);
      logger_->error("system {}: {} actors still running handlers after {}; workers left running", name_, left,
                     absl::FormatDuration(timeout + grace));
      return absl::DeadlineExceededError(
          absl::StrCat(left, " actors did not stop within ", absl::FormatDuration(timeout + grace)));
    }
  }
  // 5. Timers: pending ones are destroyed unrun (ask deadlines with them).
  timers_->Shutdown();
  // 6. Blocking pool: queued jobs are destroyed, running ones finish.
  blocking_->Shutdown();
  // 7. Workers: nothing is left to run; join them.
  executor_stopped_.store(true, std::memory_order_release);
  executor_->Shutdown();
  return absl::OkStatus();
}

}  // namespace troupe::internal
