// WorkerPool on its own, without actors: every Runnable runs exactly once,
// whichever way it was scheduled, with tiny local queues so overflow, steals
// and parking are all exercised. Runs under --config=tsan and --config=asan.

#include "scheduler/worker_pool.h"

#include <atomic>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

constexpr absl::Duration kGenerous = absl::Seconds(60);

// Polls `condition` for at most kGenerous; false if it never held.
template <class Condition>
bool WaitUntil(Condition condition) {
  const absl::Time deadline = absl::Now() + kGenerous;
  while (!condition() && absl::Now() < deadline) std::this_thread::yield();
  return condition();
}

// Waits for `done` for at most kGenerous; false if it never opened.
bool WaitFor(std::latch& done) {
  return WaitUntil([&done] { return done.try_wait(); });
}

// Counts its runs; the last expected run opens `done`.
struct Counted final : Runnable {
  std::atomic<int> runs{0};
  std::atomic<int64_t>* remaining = nullptr;
  std::latch* done = nullptr;
  void Run() noexcept override {
    runs.fetch_add(1, std::memory_order_relaxed);
    if (remaining->fetch_sub(1, std::memory_order_acq_rel) == 1) done->count_down();
  }
};

TEST(WorkerPool, EveryRunnableInjectedFromOutsideRunsExactlyOnce) {
  constexpr int kItems = 20000;
  std::vector<Counted> items(kItems);
  std::atomic<int64_t> remaining{kItems};
  std::latch done(1);
  for (Counted& c : items) {
    c.remaining = &remaining;
    c.done = &done;
  }
  WorkerPool pool({.workers = 2, .local_queue_capacity = 4});
  std::vector<std::thread> producers;
  for (int t = 0; t < 2; ++t) {
    producers.emplace_back([&, t] {
      for (int i = t; i < kItems; i += 2) pool.Schedule(&items[i]);
    });
  }
  for (std::thread& t : producers) t.join();
  ASSERT_TRUE(WaitFor(done));
  pool.Shutdown();
  for (Counted& c : items) EXPECT_EQ(c.runs.load(), 1);
}

// A Runnable that, when run on a worker, schedules a fan of children from
// inside the pool (LIFO slot, local queue, overflow), which other workers
// must steal.
struct Fan final : Runnable {
  WorkerPool* pool = nullptr;
  std::vector<Counted>* children = nullptr;
  std::atomic<int> runs{0};
  void Run() noexcept override {
    runs.fetch_add(1, std::memory_order_relaxed);
    for (Counted& c : *children) pool->Schedule(&c);
  }
};

TEST(WorkerPool, WorkScheduledInsideThePoolIsStolenAndRunsExactlyOnce) {
  constexpr int kFans = 200;
  constexpr int kChildren = 50;
  std::vector<std::vector<Counted>> children(kFans);
  std::atomic<int64_t> remaining{kFans * kChildren};
  std::latch done(1);
  for (auto& group : children) {
    group = std::vector<Counted>(kChildren);
    for (Counted& c : group) {
      c.remaining = &remaining;
      c.done = &done;
    }
  }
  WorkerPool pool({.workers = 2, .local_queue_capacity = 8});
  std::vector<Fan> fans(kFans);
  for (int i = 0; i < kFans; ++i) {
    fans[i].pool = &pool;
    fans[i].children = &children[i];
  }
  for (Fan& f : fans) pool.Schedule(&f);
  ASSERT_TRUE(WaitFor(done));
  pool.Shutdown();
  for (Fan& f : fans) EXPECT_EQ(f.runs.load(), 1);
  for (auto& group : children) {
    for (Counted& c : group) EXPECT_EQ(c.runs.load(), 1);
  }
}

// Yields itself `left` times: each run goes to the back of the local queue.
struct Yielder final : Runnable {
  WorkerPool* pool = nullptr;
  int left = 0;
  std::latch* done = nullptr;
  void Run() noexcept override {
    if (--left > 0) {
      pool->Yield(this);
    } else {
      done->count_down();
    }
  }
};

TEST(WorkerPool, YieldingRunnablesInterleaveAndAllFinish) {
  constexpr int kYielders = 64;
  std::latch done(kYielders);
  WorkerPool pool({.workers = 2, .local_queue_capacity = 8});
  std::vector<Yielder> ys(kYielders);
  for (Yielder& y : ys) {
    y.pool = &pool;
    y.left = 500;
    y.done = &done;
    pool.Schedule(&y);
  }
  ASSERT_TRUE(WaitFor(done));
  pool.Shutdown();
  for (Yielder& y : ys) EXPECT_EQ(y.left, 0);
}

// Counts its runs. Scheduled again only after its previous run returned.
struct Ticker final : Runnable {
  std::atomic<int> runs{0};
  void Run() noexcept override { runs.fetch_add(1, std::memory_order_relaxed); }
};

// One Runnable at a time from outside, each scheduled only once every worker
// has parked: the park/unpark handshake must never lose a wake-up.
TEST(WorkerPool, WakeUpsAreNeverLostBetweenParkAndSchedule) {
  constexpr int kWorkers = 2;
  constexpr int kRounds = 3000;
  WorkerPool pool({.workers = kWorkers});
  Ticker ticker;
  for (int i = 0; i < kRounds; ++i) {
    // All parked: the previous run has returned, and only a wake-up sent
    // by this Schedule can get the item run.
    ASSERT_TRUE(WaitUntil([&] { return pool.parked_workers() == kWorkers; }))
        << "the workers did not all park before round " << i;
    pool.Schedule(&ticker);
    ASSERT_TRUE(WaitUntil([&] { return ticker.runs.load(std::memory_order_relaxed) == i + 1; }))
        << "wake-up lost at round " << i;
  }
  EXPECT_GE(pool.stats().parks, static_cast<uint64_t>(kRounds));
}

// Counts, in its destructor, the threads that used it and have exited.
struct ExitWitness {
  std::atomic<int>* exited = nullptr;
  ~ExitWitness() {
    if (exited != nullptr) exited->fetch_add(1, std::memory_order_relaxed);
  }
};
thread_local ExitWitness exit_witness;

// Meets the other Meeters (so each runs on a worker of its own), then
// leaves a witness on its worker's thread.
struct Meeter final : Runnable {
  std::latch* meet = nullptr;
  std::atomic<int>* exited = nullptr;
  std::atomic<bool> met{false};
  void Run() noexcept override {
    meet->count_down();
    met.store(WaitFor(*meet), std::memory_order_relaxed);
    exit_witness.exited = exited;
  }
};

TEST(WorkerPool, ShutdownJoinsIdleWorkers) {
  constexpr int kWorkers = 3;
  WorkerPool pool({.workers = kWorkers});
  std::latch meet(kWorkers);
  std::atomic<int> exited{0};
  std::vector<Meeter> meeters(kWorkers);
  for (Meeter& m : meeters) {
    m.meet = &meet;
    m.exited = &exited;
    pool.Schedule(&m);
  }
  for (Meeter& m : meeters) ASSERT_TRUE(WaitUntil([&] { return m.met.load(std::memory_order_relaxed); }));
  // Idle: every worker is parked, its thread waiting for work.
  ASSERT_TRUE(WaitUntil([&] { return pool.parked_workers() == kWorkers; }));
  EXPECT_EQ(exited.load(), 0);
  pool.Shutdown();
  // Joined: each worker's thread has finished, thread-local destructors
  // included, before Shutdown returns.
  EXPECT_EQ(exited.load(), kWorkers);
  pool.Shutdown();  // idempotent: returns at once
  EXPECT_EQ(exited.load(), kWorkers);
}

}  // namespace
}  // namespace troupe
