#include "actors/system_core.h"

#include <pthread.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "actors/dead_letters.h"
#include "actors/registry.h"

namespace troupe::internal {
namespace {

// Serial numbers for SystemCore::serial_: one of the runtime's two
// process-wide variables, both counters that hold nothing (the other deals
// threads their StripedCounter slots). Relaxed: only uniqueness matters.
uint64_t NextSystemSerial() noexcept {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

SystemCore::SystemCore(std::string name, std::unique_ptr<Executor> executor, std::shared_ptr<TimerService> timers,
                       std::unique_ptr<BlockingPool> blocking, std::shared_ptr<spdlog::logger> logger, int batch)
    : name_(std::move(name)),
      executor_(std::move(executor)),
      timers_(std::move(timers)),
      blocking_(std::move(blocking)),
      logger_(std::move(logger)),
      batch_(batch > 0 ? batch : 1),
      registry_(std::make_unique<Registry>()),
      dead_letter_reports_(std::make_unique<DeadLetters>([timers = timers_.get()] { return timers->Now(); })),
      serial_(NextSystemSerial()) {
  registry_->set_core(this);
}

SystemCore::~SystemCore() {
  // Steps 5-7 of Shutdown, for a Shutdown that gave up (DeadlineExceeded)
  // or never ran; each is idempotent. Never on one of these threads (see
  // Destroy). Pending timer callbacks and queued blocking jobs hold no
  // cell (a cell would hold this core), and nothing can be queued on the
  // executor: a queued cell holds its own count, and so this core.
  timers_->Shutdown();
  blocking_->Shutdown();
  for (Runnable* r : executor_->Shutdown()) Unrunnable(static_cast<ActorCell*>(r), "handed back");
}

bool SystemCore::OnOwnThread() const noexcept {
  return executor_->IsOwnThread() || timers_->IsOwnThread() || blocking_->IsOwnThread();
}

void SystemCore::Destroy() noexcept {
  if (!OnOwnThread()) {
    delete this;
    return;
  }
  // This thread belongs to a pool the destructor joins: delete from a new
  // thread, which joins this one once it is back in its pool's loop.
  try {
    std::thread([this] {
      const std::string thread_name = (name_ + "-end").substr(0, 15);
      pthread_setname_np(pthread_self(), thread_name.c_str());
      delete this;
    }).detach();
  } catch (const std::exception& e) {
    logger_->critical("system {}: last reference dropped on one of its own threads, and no thread could be "
                      "started to stop them ({}): its threads and memory are left as they are",
                      name_, e.what());
  }
}

void SystemCore::ForgetNames(ActorCell* cell) noexcept { registry_->Forget(cell); }

void SystemCore::ReportDeadLetter(ActorCell* target, std::string_view type, const absl::Status& reason) noexcept {
  dead_letters_.fetch_add(1, std::memory_order_relaxed);
  dead_letter_reports_->Report(target, type, reason);
}

void SystemCore::Spawn(ActorCell* cell, ActorCell* parent, bool has_start_hook, SpawnOptions* options) {
  spawned_.Add();
  if (parent != nullptr) {
    if (!parent->MayAdoptChildren()) [[unlikely]] {
      // From the parent's OnStop or destructor: a child would outlive it.
      logger_->error("actor {} ({}) spawned a child after it stopped (in OnStop or its destructor): the {} never runs",
                     parent->id(), parent->type_name(), cell->type_name());
      SpawnDead(cell);
      return;
    }
    // Not counted live: the parent, running this handler, is (see
    // "Spawning and Shutdown"). Its stop, if it has begun, reaches the
    // child through AdoptChild.
    cell->Init(this, NextId(), parent, has_start_hook);
    if (options != nullptr) {
      if (options->link) cell->LinkAtSpawn(parent);  // before anything can schedule the child
      if (options->rebuild) cell->SetSupervised(std::move(options->rebuild));
    }
    parent->AdoptChild(cell);
  } else {
    // Live first, then the gate: seq_cst, pairs with Shutdown's step 5.
    live_top_level_.fetch_add(1, std::memory_order_seq_cst);
    if (spawning_closed_.load(std::memory_order_seq_cst)) {
      CountTopLevelGone();  // Shutdown may be waiting on this count
      SpawnDead(cell);
      return;
    }
    RegisterTopLevel(cell, has_start_hook);
    if (shutting_down()) cell->RequestStop(absl::CancelledError("the system is shutting down"));
  }
  if (has_start_hook) Schedule(cell);
}

InlineTurn::~InlineTurn() {
  current_ = previous_;  // closed first: what the turn schedules goes to the pool
  if (cell_ == nullptr) return;
  // Once the system shuts down, its pool runs (or refuses and reports) what
  // is scheduled, as without the scope.
  if (!core_->shutting_down()) {
    cell_->Run();
  } else {
    core_->Schedule(cell_);
  }
}

void SystemCore::SpawnDead(ActorCell* cell) noexcept {
  stopped_.Add();
  cell->InitDead(this, NextId());
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
  // contend on one counter. Per thread, tagged with the system it belongs to
  // by its serial number, never its address: a system allocated where an
  // earlier one was must not take over that one's block.
  struct Block {
    uint64_t system = 0;  // serial_ of the block's system; 0: none
    ActorId next = 0;
    ActorId end = 0;
  };
  thread_local Block block;
  if (block.system != serial_ || block.next == block.end) {
    block.system = serial_;
    // Relaxed: ids only need to be unique; nothing is published through them.
    block.next = next_id_.fetch_add(kIdBlock, std::memory_order_relaxed);
    block.end = block.next + kIdBlock;
  }
  return block.next++;
}

void SystemCore::ActorStopped(ActorCell* cell) noexcept {
  stopped_.Add();
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
    CountTopLevelGone();
  }
}

void SystemCore::CountTopLevelGone() noexcept {
  // Release: this actor's writes happen-before Shutdown's read. The notify
  // is under mu_, after the count reached 0, so a Shutdown that saw the
  // count above 0 under mu_ is already waiting and gets it.
  if (live_top_level_.fetch_sub(1, std::memory_order_release) == 1) {
    std::lock_guard<std::mutex> lock(mu_);
    all_stopped_.notify_all();
  }
}

bool SystemCore::WaitUntilNoActorIsLive(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  return all_stopped_.wait_until(lock, deadline, [this] {
    // seq_cst (so also acquire, pairing with CountTopLevelGone): step 4's
    // second read is one side of the Dekker pair with Spawn.
    return live_top_level_.load(std::memory_order_seq_cst) == 0;
  });
}

void SystemCore::Unrunnable(ActorCell* cell, const char* what) noexcept {
  logger_->critical("system {}: the executor {} actor {} ({}) after it shut down: a bug in the shutdown order",
                    name_, what, cell->id(), std::string(cell->type_name()));
  logger_->flush();
  std::abort();
}

void SystemCore::BeginShutdown() {
  // 1. Refuse new work: spawns are stopped at once, closed mailboxes say
  //    Cancelled.
  if (shutting_down_.exchange(true, std::memory_order_acq_rel)) return;
  // 2. Ask every top-level actor to stop; each stops its children first.
  StopRoots(/*now=*/false);
}

void SystemCore::StopAllNow() { StopRoots(/*now=*/true); }

void SystemCore::StopRoots(bool now) {
  std::vector<ActorCell*> roots;
  for (TopLevelShard& shard : top_level_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (ActorCell* cell : shard.cells) {
      if (cell == nullptr) continue;
      cell->Retain();
      roots.push_back(cell);
    }
  }
  // Each stops its children first (immediately too, for `now`).
  for (ActorCell* cell : roots) {
    absl::Status reason = absl::CancelledError("the system is shutting down");
    if (now) {
      cell->RequestStopNow(std::move(reason));
    } else {
      cell->RequestStop(std::move(reason));
    }
    cell->Release();
  }
}


absl::Status SystemCore::Shutdown(absl::Duration timeout) {
  BeginShutdown();
  // Capped so that the deadline is a steady_clock time that cannot overflow.
  auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(std::min(timeout, absl::Hours(24 * 365)));
  // 3. Wait for every actor to finish stopping (their queued asks fail with
  //    Cancelled as their mailboxes close).
  bool all_stopped = WaitUntilNoActorIsLive(deadline);
  if (!all_stopped) {
    // 4. Past the drain deadline: stop the rest immediately, so that queued
    //    messages are bounced instead of handled, and give the handlers
    //    running now a grace period to return.
    const absl::Duration grace = std::min(timeout, kStopNowGrace);
    logger_->warn("system {}: {} actors still stopping after {}; stopping them immediately", name_,
                  live_actors(), absl::FormatDuration(timeout));
    StopAllNow();
    deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(grace);
    all_stopped = WaitUntilNoActorIsLive(deadline);
    timeout += grace;
  }
  // 5. Close spawning, then look again: a spawn that counted its actor live
  //    before the close is seen here (seq_cst, pairs with Spawn).
  if (all_stopped) {
    spawning_closed_.store(true, std::memory_order_seq_cst);
    all_stopped = WaitUntilNoActorIsLive(deadline);
  }
  if (!all_stopped) {
    const uint64_t left = live_actors();
    logger_->error("system {}: {} actors still running handlers after {}; workers left running", name_, left,
                   absl::FormatDuration(timeout));
    return absl::DeadlineExceededError(
        absl::StrCat(left, " actors did not stop within ", absl::FormatDuration(timeout)));
  }
  // 6. Timers: pending ones are destroyed unrun (ask deadlines with them).
  timers_->Shutdown();
  // 7. Blocking pool: queued jobs are destroyed, running ones finish.
  blocking_->Shutdown();
  // 8. Executor: no actor is live and none can be spawned, so nothing is
  //    queued and nothing will be.
  for (Runnable* r : executor_->Shutdown()) Unrunnable(static_cast<ActorCell*>(r), "handed back");
  return absl::OkStatus();
}

}  // namespace troupe::internal
