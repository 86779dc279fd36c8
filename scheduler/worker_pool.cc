#include "scheduler/worker_pool.h"

#include <pthread.h>

#include <algorithm>
#include <concurrentqueue/concurrentqueue.h>
#include <utility>

#include "scheduler/futex.h"

namespace troupe {
namespace {

constexpr uint32_t kOneSearching = 1;
constexpr uint32_t kOneUnparked = 1 << 16;
uint32_t Searching(uint32_t idle) { return idle & 0xFFFF; }
uint32_t Unparked(uint32_t idle) { return idle >> 16; }

// Per-worker park word.
constexpr uint32_t kEmpty = 0;
constexpr uint32_t kParked = 1;
constexpr uint32_t kNotified = 2;

// Rounds of stealing over every victim before a searcher gives up and parks.
constexpr int kSearchRounds = 2;

// The injection gate's closed bit; the bits below count outside callers
// between the gate and their enqueue.
constexpr uint32_t kInjectionClosed = uint32_t{1} << 31;

}  // namespace

struct WorkerPool::Worker {
  Worker(int i, uint32_t capacity) : index(i), queue(capacity), rng(0x9E3779B97F4A7C15ull * (i + 1)) {}

  uint32_t NextRandom() noexcept {  // xorshift64, owner only
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return static_cast<uint32_t>(rng);
  }

  const int index;
  internal::RunQueue queue;
  // Owner only.
  Runnable* lifo = nullptr;
  int lifo_streak = 0;
  uint32_t tick = 0;
  bool searching = false;
  uint64_t rng;
  // kEmpty / kParked / kNotified; written by the owner (Park) and wakers
  // (Unpark). See the header's memory-ordering notes.
  std::atomic<uint32_t> park{kEmpty};
  std::thread thread;
};

class WorkerPool::Injector {
 public:
  moodycamel::ConcurrentQueue<Runnable*> queue;
};

namespace {

// The worker (and its pool) running on this thread. Per thread, so several
// pools in one process never see each other's workers.
thread_local WorkerPool::Worker* current_worker = nullptr;
thread_local const WorkerPool* current_pool = nullptr;

void Unpark(std::atomic<uint32_t>& park) noexcept {
  // Release: the waker's writes happen-before the woken worker's next turn
  // (pairs with the acquire CAS in WaitForUnpark).
  if (park.exchange(kNotified, std::memory_order_release) == kParked) internal::FutexWake(&park, 1);
}

void WaitForUnpark(std::atomic<uint32_t>& park) noexcept {
  uint32_t expected = kNotified;
  if (park.compare_exchange_strong(expected, kEmpty, std::memory_order_acquire)) return;
  expected = kEmpty;
  if (!park.compare_exchange_strong(expected, kParked, std::memory_order_acquire)) {
    park.exchange(kEmpty, std::memory_order_acquire);  // a token arrived meanwhile
    return;
  }
  for (;;) {
    internal::FutexWait(&park, kParked);
    expected = kNotified;
    if (park.compare_exchange_strong(expected, kEmpty, std::memory_order_acquire)) return;
  }
}

}  // namespace

WorkerPool::WorkerPool(Options options) : injector_(std::make_unique<Injector>()) {
  int n = options.workers > 0 ? options.workers : static_cast<int>(std::thread::hardware_concurrency());
  n = std::clamp(n, 1, 0x7FFF);
  idle_.store(static_cast<uint32_t>(n) * kOneUnparked, std::memory_order_relaxed);
  for (int i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>(i, options.local_queue_capacity));
  for (int i = 0; i < n; ++i) {
    Worker& w = *workers_[i];
    w.thread = std::thread([this, &w] { WorkerLoop(w); });
    const std::string name = (options.name + "-w" + std::to_string(i)).substr(0, 15);
    pthread_setname_np(w.thread.native_handle(), name.c_str());
  }
}

WorkerPool::~WorkerPool() { Shutdown(); }

std::vector<Runnable*> WorkerPool::Shutdown() {
  std::vector<Runnable*> unrun;
  std::call_once(shutdown_once_, [this, &unrun] {
    // 1. Close the gate, then wait for the outside calls already past it.
    injecting_.fetch_or(kInjectionClosed, std::memory_order_relaxed);
    // Acquire: pairs with Inject's release fetch_sub, so their enqueues
    // happen-before the drain below.
    while (injecting_.load(std::memory_order_acquire) != kInjectionClosed) std::this_thread::yield();
    // 2-3. Stop the workers and join them.
    shutdown_.store(true, std::memory_order_release);  // pairs with the loop's acquire
    for (auto& w : workers_) Unpark(w->park);
    for (auto& w : workers_) {
      if (w->thread.joinable()) w->thread.join();
    }
    // 4. No thread runs or schedules here any more (joined, gate closed):
    //    take everything still queued, as the owner of every queue.
    for (auto& w : workers_) {
      if (Runnable* r = std::exchange(w->lifo, nullptr)) unrun.push_back(r);
      while (Runnable* r = w->queue.Pop()) unrun.push_back(r);
    }
    while (Runnable* r = PopInjected()) unrun.push_back(r);
  });
  return unrun;
}

bool WorkerPool::IsOwnThread() const noexcept { return current_pool == this; }

int WorkerPool::parked_workers() const {
  std::lock_guard<std::mutex> lock(sleepers_mu_);
  return static_cast<int>(sleepers_.size());
}

WorkerPool::Stats WorkerPool::stats() const noexcept {
  // Relaxed: statistics only.
  return {parks_.load(std::memory_order_relaxed), steals_.load(std::memory_order_relaxed),
          injected_.load(std::memory_order_relaxed)};
}

bool WorkerPool::Schedule(Runnable* r) noexcept {
  if (current_pool == this) {
    Worker& w = *current_worker;
    if (Runnable* previous = std::exchange(w.lifo, r)) {
      PushLocal(w, previous);
      NotifyParked();  // the displaced one is stealable now
    }
    return true;
  }
  return Inject(r);
}

bool WorkerPool::Yield(Runnable* r) noexcept {
  if (current_pool == this) {
    PushLocal(*current_worker, r);
    NotifyParked();
    return true;
  }
  return Inject(r);
}

void WorkerPool::PushLocal(Worker& w, Runnable* r) noexcept {
  w.queue.Push(r, [this](Runnable* const* items, size_t n) {
    injector_->queue.enqueue_bulk(items, n);
    injected_.fetch_add(n, std::memory_order_relaxed);  // statistics
  });
}

bool WorkerPool::Inject(Runnable* r) noexcept {
  // Relaxed: this RMW and Shutdown's fetch_or are ordered by the word's
  // modification order, which is all the check needs.
  if (injecting_.fetch_add(1, std::memory_order_relaxed) & kInjectionClosed) {
    injecting_.fetch_sub(1, std::memory_order_relaxed);
    return false;  // Shutdown has begun: `r` stays with the caller
  }
  injector_->queue.enqueue(r);
  injected_.fetch_add(1, std::memory_order_relaxed);  // statistics
  NotifyParked();
  // Release: the enqueue happens-before Shutdown's drain (its acquire load).
  // Last: Shutdown, and so the pool's destruction, waits for this call.
  injecting_.fetch_sub(1, std::memory_order_release);
  return true;
}

Runnable* WorkerPool::PopInjected() noexcept {
  Runnable* r = nullptr;
  return injector_->queue.try_dequeue(r) ? r : nullptr;
}

void WorkerPool::WorkerLoop(Worker& w) {
  current_worker = &w;
  current_pool = this;
  internal::MessageCache messages(&message_depot_);
  internal::ScopedMessageCache use_messages(&messages);
  while (!shutdown_.load(std::memory_order_acquire)) {
    Runnable* r = NextTask(w);
    if (r == nullptr) r = Search(w);
    if (r != nullptr) {
      if (w.searching) StopSearching(w);
      ++w.tick;
      r->Run();
      continue;
    }
    Park(w);
  }
  current_worker = nullptr;
  current_pool = nullptr;
}

Runnable* WorkerPool::NextTask(Worker& w) {
  if (w.tick % kGlobalQueueInterval == 0) {
    if (Runnable* r = PopInjected()) {
      w.lifo_streak = 0;
      return r;
    }
  }
  if (w.lifo != nullptr) {
    if (w.lifo_streak < kMaxLifoStreak) {
      ++w.lifo_streak;
      return std::exchange(w.lifo, nullptr);
    }
    PushLocal(w, std::exchange(w.lifo, nullptr));  // its streak is over: back of the queue
  }
  w.lifo_streak = 0;
  if (Runnable* r = w.queue.Pop()) return r;
  return PopInjected();
}

Runnable* WorkerPool::Search(Worker& w) {
  if (!TryStartSearching(w)) return nullptr;
  const uint32_t n = static_cast<uint32_t>(workers_.size());
  for (int round = 0; round < kSearchRounds; ++round) {
    const uint32_t start = w.NextRandom() % n;
    for (uint32_t i = 0; i < n; ++i) {
      Worker& victim = *workers_[(start + i) % n];
      if (&victim == &w) continue;
      if (Runnable* r = victim.queue.StealInto(w.queue)) {
        steals_.fetch_add(1, std::memory_order_relaxed);  // statistics
        return r;
      }
    }
    if (Runnable* r = PopInjected()) return r;
    if (round + 1 < kSearchRounds) std::this_thread::yield();
  }
  return nullptr;
}

bool WorkerPool::TryStartSearching(Worker& w) noexcept {
  if (w.searching) return true;
  const uint32_t state = idle_.load(std::memory_order_seq_cst);
  if (2 * Searching(state) >= workers_.size()) return false;  // enough searchers already
  idle_.fetch_add(kOneSearching, std::memory_order_seq_cst);
  w.searching = true;
  return true;
}

void WorkerPool::StopSearching(Worker& w) noexcept {
  w.searching = false;
  const uint32_t previous = idle_.fetch_sub(kOneSearching, std::memory_order_seq_cst);
  // The last searcher found work: there may be more, so wake someone to look.
  if (Searching(previous) == 1) NotifyParked();
}

uint32_t WorkerPool::IdleStateAfterPublishing() noexcept {
  // Ordered after the caller's publication of the work (see the header's
  // Dekker note).
#if TROUPE_TSAN
  return idle_.fetch_add(0, std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return idle_.load(std::memory_order_seq_cst);
#endif
}

void WorkerPool::NotifyParked() noexcept {
  uint32_t state = IdleStateAfterPublishing();
  if (Searching(state) != 0 || Unparked(state) >= workers_.size()) return;
  int index;
  {
    std::lock_guard<std::mutex> lock(sleepers_mu_);
    state = idle_.load(std::memory_order_seq_cst);
    if (Searching(state) != 0 || Unparked(state) >= workers_.size() || sleepers_.empty()) return;
    index = sleepers_.back();
    sleepers_.pop_back();
    // The woken worker starts out awake and searching.
    idle_.fetch_add(kOneUnparked + kOneSearching, std::memory_order_seq_cst);
  }
  Unpark(workers_[index]->park);
}

bool WorkerPool::AnyWorkVisible() const noexcept {
  if (injector_->queue.size_approx() > 0) return true;
  for (const auto& w : workers_) {
    if (!w->queue.EmptyApprox()) return true;
  }
  return false;
}

void WorkerPool::Park(Worker& w) {
  bool was_last_searcher;
  {
    std::lock_guard<std::mutex> lock(sleepers_mu_);
    const uint32_t leaving = kOneUnparked + (w.searching ? kOneSearching : 0);
    const uint32_t previous = idle_.fetch_sub(leaving, std::memory_order_seq_cst);
    was_last_searcher = w.searching && Searching(previous) == 1;
    w.searching = false;
    sleepers_.push_back(w.index);
  }
  // Work published while we were leaving the count may have seen us
  // searching and woken nobody: look once more. The fence is this side's
  // half of the Dekker pair (see the header).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (was_last_searcher && AnyWorkVisible()) NotifyParked();
  parks_.fetch_add(1, std::memory_order_relaxed);  // statistics
  for (;;) {
    if (shutdown_.load(std::memory_order_acquire)) return;
    WaitForUnpark(w.park);
    std::lock_guard<std::mutex> lock(sleepers_mu_);
    if (std::find(sleepers_.begin(), sleepers_.end(), w.index) == sleepers_.end()) {
      w.searching = true;  // NotifyParked took us off the list and counted us
      return;
    }
  }
}

}  // namespace troupe
