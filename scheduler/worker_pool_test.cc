// WorkerPool on its own, without actors: every Runnable runs exactly once,
// whichever way it was scheduled, with tiny local queues so overflow, steals
// and parking are all exercised; Shutdown hands back what it never ran.
// Runs under --config=tsan and --config=asan.

#include "scheduler/worker_pool.h"

#include <algorithm>
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
      for (int i = t; i < kItems; i += 2) EXPECT_TRUE(pool.Schedule(&items[i]));
    });
  }
  for (std::thread& t : producers) t.join();
  ASSERT_TRUE(WaitFor(done));
  EXPECT_TRUE(pool.Shutdown().empty());
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
    for (Counted& c : *children) EXPECT_TRUE(pool->Schedule(&c));
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
  for (Fan& f : fans) ASSERT_TRUE(pool.Schedule(&f));
  ASSERT_TRUE(WaitFor(done));
  EXPECT_TRUE(pool.Shutdown().empty());
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
      EXPECT_TRUE(pool->Yield(this));
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
    ASSERT_TRUE(pool.Schedule(&y));
  }
  ASSERT_TRUE(WaitFor(done));
  EXPECT_TRUE(pool.Shutdown().empty());
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
    ASSERT_TRUE(pool.Schedule(&ticker));
    ASSERT_TRUE(WaitUntil([&] { return ticker.runs.load(std::memory_order_relaxed) == i + 1; }))
        << "wake-up lost at round " << i;
  }
  EXPECT_GE(pool.stats().parks, static_cast<uint64_t>(kRounds));
}

// Records whether IsOwnThread holds, for its pool and another, where it runs.
struct AskWhereAmI final : Runnable {
  const WorkerPool* pool = nullptr;
  const WorkerPool* other = nullptr;
  std::atomic<bool> own{false}, in_other{true};
  std::latch done{1};
  void Run() noexcept override {
    own.store(pool->IsOwnThread());
    in_other.store(other->IsOwnThread());
    done.count_down();
  }
};

TEST(WorkerPool, IsOwnThreadOnlyOnItsWorkers) {
  WorkerPool pool({.workers = 1});
  WorkerPool other({.workers = 1});
  AskWhereAmI ask;
  ask.pool = &pool;
  ask.other = &other;
  ASSERT_TRUE(pool.Schedule(&ask));
  ASSERT_TRUE(WaitFor(ask.done));
  EXPECT_TRUE(ask.own.load());
  EXPECT_FALSE(ask.in_other.load());
  EXPECT_FALSE(pool.IsOwnThread());
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
    ASSERT_TRUE(pool.Schedule(&m));
  }
  for (Meeter& m : meeters) ASSERT_TRUE(WaitUntil([&] { return m.met.load(std::memory_order_relaxed); }));
  // Idle: every worker is parked, its thread waiting for work.
  ASSERT_TRUE(WaitUntil([&] { return pool.parked_workers() == kWorkers; }));
  EXPECT_EQ(exited.load(), 0);
  EXPECT_TRUE(pool.Shutdown().empty());
  // Joined: each worker's thread has finished, thread-local destructors
  // included, before Shutdown returns.
  EXPECT_EQ(exited.load(), kWorkers);
  EXPECT_TRUE(pool.Shutdown().empty());  // idempotent: returns at once
  EXPECT_EQ(exited.load(), kWorkers);
}

// Runs on the only worker: opens `entered`, waits for `release`, then
// schedules `child` from the worker (into its LIFO slot) and returns.
struct Gate final : Runnable {
  WorkerPool* pool = nullptr;
  std::latch entered{1};
  std::latch release{1};
  Runnable* child = nullptr;
  std::atomic<bool> child_accepted{false};
  void Run() noexcept override {
    entered.count_down();
    if (!WaitFor(release)) return;
    child_accepted.store(pool->Schedule(child), std::memory_order_relaxed);
  }
};

TEST(WorkerPool, ShutdownHandsBackWhatItNeverRanAndRefusesNewWorkFromOutside) {
  WorkerPool pool({.workers = 1, .local_queue_capacity = 4});
  Gate gate;
  gate.pool = &pool;
  Ticker child;
  gate.child = &child;
  ASSERT_TRUE(pool.Schedule(&gate));
  ASSERT_TRUE(WaitFor(gate.entered));
  // Queued behind the busy worker, from outside.
  std::vector<Ticker> queued(20);
  for (Ticker& t : queued) ASSERT_TRUE(pool.Schedule(&t));
  std::vector<Runnable*> handed_back;
  std::thread stopper([&] { handed_back = pool.Shutdown(); });
  // Shutdown has begun once an outside Schedule is refused; the probes
  // accepted before that are queued like the others.
  std::vector<Ticker> probes(100000);
  size_t accepted_probes = 0;
  const absl::Time deadline = absl::Now() + kGenerous;
  while (accepted_probes < probes.size() && pool.Schedule(&probes[accepted_probes]) && absl::Now() < deadline) {
    ++accepted_probes;
  }
  ASSERT_LT(accepted_probes, probes.size()) << "Shutdown never began refusing";
  // The worker schedules `child` and returns; it may run some of what is
  // queued before it sees Shutdown's flag, and exits.
  gate.release.count_down();
  stopper.join();
  EXPECT_TRUE(gate.child_accepted.load());
  // Everything accepted either ran once or comes back once, unrun.
  std::vector<Ticker*> accepted = {&child};
  for (Ticker& t : queued) accepted.push_back(&t);
  for (size_t i = 0; i < accepted_probes; ++i) accepted.push_back(&probes[i]);
  std::sort(handed_back.begin(), handed_back.end());
  EXPECT_EQ(std::adjacent_find(handed_back.begin(), handed_back.end()), handed_back.end()) << "handed back twice";
  size_t ran = 0;
  for (Ticker* t : accepted) {
    const bool back = std::binary_search(handed_back.begin(), handed_back.end(), static_cast<Runnable*>(t));
    EXPECT_EQ(t->runs.load() + (back ? 1 : 0), 1);
    ran += t->runs.load();
  }
  EXPECT_EQ(ran + handed_back.size(), accepted.size()) << "handed back something never accepted";
  // After Shutdown: refused, from outside, and nothing comes back later.
  Ticker late;
  EXPECT_FALSE(pool.Schedule(&late));
  EXPECT_FALSE(pool.Yield(&late));
  EXPECT_TRUE(pool.Shutdown().empty());
  EXPECT_EQ(late.runs.load(), 0);
}

}  // namespace
}  // namespace troupe
