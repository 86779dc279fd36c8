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

// Waits for `done` for at most kGenerous; false if it never opened.
bool WaitFor(std::latch& done) {
  const absl::Time deadline = absl::Now() + kGenerous;
  while (!done.try_wait() && absl::Now() < deadline) std::this_thread::yield();
  return done.try_wait();
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

// One Runnable at a time from outside, each after the pool has gone idle:
// the park/unpark handshake must never lose a wake-up.
TEST(WorkerPool, WakeUpsAreNeverLostBetweenParkAndSchedule) {
  WorkerPool pool({.workers = 2});
  for (int i = 0; i < 5000; ++i) {
    std::atomic<int64_t> remaining{1};
    std::latch done(1);
    Counted c;
    c.remaining = &remaining;
    c.done = &done;
    pool.Schedule(&c);
    ASSERT_TRUE(WaitFor(done)) << "wake-up lost at round " << i;
  }
  EXPECT_GT(pool.stats().parks, 0u);
}

TEST(WorkerPool, ShutdownJoinsIdleWorkers) {
  WorkerPool pool({.workers = 3});
  pool.Shutdown();
  pool.Shutdown();  // idempotent
}

}  // namespace
}  // namespace troupe
