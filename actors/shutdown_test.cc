// Shutdown on the real pool when it races with other work: spawns and asks
// from other threads while it runs, a system destroyed after Shutdown gave
// up on a stuck handler, and several threads calling Shutdown at once.
// Every wait is bounded.

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/actor_system.h"
#include "gtest/gtest.h"
#include "scheduler/worker_pool.h"

namespace troupe {
namespace {

constexpr absl::Duration kGenerous = absl::Seconds(60);

// Polls `condition` until it holds or `deadline` passes; false if it never held.
template <class Condition>
bool PollUntil(absl::Time deadline, Condition condition) {
  while (!condition()) {
    if (absl::Now() >= deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// Waits for `latch` for at most kGenerous; false if it never opened.
bool WaitFor(std::latch& latch) {
  return PollUntil(absl::Now() + kGenerous, [&latch] { return latch.try_wait(); });
}

struct Echo : Actor<Echo> {
  int On(int x) { return x; }
};

// --- spawns racing Shutdown -------------------------------------------------

TEST(Shutdown, AsksToActorsSpawnedWhileItRunsAllEnd) {
  constexpr int kRounds = 30;
  constexpr int kSpawners = 3;
  constexpr int kMaxSpawnsEach = 20000;
  // Asks a spawner still makes once Shutdown has returned.
  constexpr int kSpawnsAfter = 20;
  for (int round = 0; round < kRounds; ++round) {
    auto sys = std::make_unique<ActorSystem>(ActorSystemOptions{.workers = 2, .name = "spawnrace"});
    std::atomic<int> spawned{0};
    std::atomic<bool> shut_down{false};
    std::atomic<int> hung{0};
    const absl::Time deadline = absl::Now() + kGenerous;
    std::vector<std::thread> spawners;
    for (int t = 0; t < kSpawners; ++t) {
      spawners.emplace_back([&] {
        int after = 0;
        for (int i = 0; i < kMaxSpawnsEach && after < kSpawnsAfter; ++i) {
          if (shut_down.load(std::memory_order_acquire)) ++after;
          // One at a time, so that few actors are live and Shutdown often
          // finds none left while the spawning goes on.
          Result<int> r = sys->Spawn<Echo>().Ask(i).Wait(std::max(deadline - absl::Now(), absl::ZeroDuration()));
          spawned.fetch_add(1, std::memory_order_relaxed);
          if (r.ok()) {
            EXPECT_EQ(*r, i);
          } else if (r.status().code() != absl::StatusCode::kCancelled) {
            ADD_FAILURE() << "round " << round << ", ask " << i << ": " << r.status();
            hung.fetch_add(1);
            return;
          }
        }
      });
    }
    // Shut down in the middle of the spawning.
    ASSERT_TRUE(PollUntil(deadline, [&] { return spawned.load(std::memory_order_relaxed) >= 100; }));
    const absl::Status shutdown = sys->Shutdown(kGenerous);
    shut_down.store(true, std::memory_order_release);
    for (std::thread& t : spawners) t.join();
    ASSERT_TRUE(shutdown.ok()) << shutdown;
    ASSERT_EQ(hung.load(), 0) << "round " << round;
    // A successful Shutdown leaves no actor behind, however late it was spawned.
    EXPECT_EQ(sys->stats().live, 0u) << "round " << round;
  }
}

// --- the last reference dropped on one of the system's own threads ---------
//
// After Shutdown gives up on a stuck handler the system's threads keep
// running, and destroying the ActorSystem leaves its core to the last cell.
// That cell may go on a worker (the stuck actor stopping at last), on the
// timer thread (a callback holding a Ref) or on a blocking-pool thread (a
// job holding one); none of them may join itself, and each must leave the
// process with no thread of the system left.

// The names of this process's threads, from /proc.
std::vector<std::string> ThreadNames() {
  std::vector<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.push_back(name);
  }
  return names;
}

// The threads of the system named `system` (its workers, timer thread,
// blocking-pool threads, and the thread that ends it), listed.
std::string ThreadsOf(const std::string& system) {
  std::string list;
  for (const std::string& name : ThreadNames()) {
    if (name.rfind(system + "-", 0) == 0) list += (list.empty() ? "" : " ") + name;
  }
  return list;
}

// True once no thread of `system` is left, within kGenerous.
bool AllThreadsEnd(const std::string& system) {
  return PollUntil(absl::Now() + kGenerous, [&] { return ThreadsOf(system).empty(); });
}

struct Block {
  std::shared_ptr<std::latch> entered = std::make_shared<std::latch>(1);
  std::shared_ptr<std::latch> release = std::make_shared<std::latch>(1);
};

// Holds its worker in a handler until released; says when its object is
// destroyed (as it stops).
struct Stuck : Actor<Stuck> {
  explicit Stuck(std::shared_ptr<std::latch> destroyed) : destroyed(std::move(destroyed)) {}
  ~Stuck() { destroyed->count_down(); }
  void On(const Block& b) {
    b.entered->count_down();
    WaitFor(*b.release);
  }
  std::shared_ptr<std::latch> destroyed;
};

// A one-worker system whose only actor is stuck in a handler, and whose
// Shutdown has given up on it.
struct GaveUp {
  GaveUp() {
    // The threads the tests see go are there, under the names they look for.
    EXPECT_TRUE(PollUntil(absl::Now() + kGenerous, [] {
      const std::vector<std::string> names = ThreadNames();
      return std::count(names.begin(), names.end(), "gaveup-w0") == 1 &&
             std::count(names.begin(), names.end(), "gaveup-tmr") == 1;
    })) << ThreadsOf("gaveup");
    stuck.Tell(block);
    EXPECT_TRUE(WaitFor(*block.entered));
  }
  // Shuts down (DeadlineExceeded) and destroys the system.
  void ShutDownAndDestroy() {
    pool = dynamic_cast<WorkerPool*>(&sys->core().executor());
    EXPECT_NE(pool, nullptr);
    EXPECT_EQ(sys->Shutdown(absl::Milliseconds(20)).code(), absl::StatusCode::kDeadlineExceeded);
    sys.reset();
  }
  // Lets the handler return; the actor then stops on the worker. True once
  // its object is destroyed.
  bool Unstick() {
    block.release->count_down();
    return WaitFor(*destroyed);
  }

  std::unique_ptr<ActorSystem> sys = std::make_unique<ActorSystem>(ActorSystemOptions{.workers = 1, .name = "gaveup"});
  std::shared_ptr<std::latch> destroyed = std::make_shared<std::latch>(1);
  Ref<Stuck> stuck = sys->Spawn<Stuck>(destroyed);
  Block block;
  WorkerPool* pool = nullptr;  // valid while a cell holds the core
};

TEST(Shutdown, DestroyedAfterDeadlineExceededTheSystemEndsWhenItsStuckHandlerReturnsOnAWorker) {
  GaveUp s;
  s.stuck = Ref<Stuck>();  // the actor's own count is the last reference to its cell
  s.ShutDownAndDestroy();
  // The actor stops on the worker, whose release of the cell drops the
  // system's last reference there.
  ASSERT_TRUE(s.Unstick());
  EXPECT_TRUE(AllThreadsEnd("gaveup")) << "left: " << ThreadsOf("gaveup");
}

TEST(Shutdown, DestroyedAfterDeadlineExceededTheSystemEndsWhenATimerCallbackDropsItsLastRef) {
  GaveUp s;
  auto entered = std::make_shared<std::latch>(1);
  auto release = std::make_shared<std::latch>(1);
  TimerService& timers = s.sys->core().timers();
  ASSERT_TRUE(timers.Schedule(timers.Now(), [stuck = s.stuck, entered, release] {
    entered->count_down();
    WaitFor(*release);
  }));
  s.stuck = Ref<Stuck>();  // the callback's copy is the last Ref
  ASSERT_TRUE(WaitFor(*entered));
  s.ShutDownAndDestroy();
  ASSERT_TRUE(s.Unstick());
  // Parked: the worker is done with the actor's last turn. The callback's
  // Ref keeps the cell, and so the system and its pool, alive.
  ASSERT_TRUE(PollUntil(absl::Now() + kGenerous, [&] { return s.pool->parked_workers() == 1; }));
  // The callback returns and is destroyed on the timer thread, with the
  // system's last reference.
  release->count_down();
  EXPECT_TRUE(AllThreadsEnd("gaveup")) << "left: " << ThreadsOf("gaveup");
}

TEST(Shutdown, DestroyedAfterDeadlineExceededTheSystemEndsWhenABlockingJobDropsItsLastRef) {
  GaveUp s;
  auto entered = std::make_shared<std::latch>(1);
  auto release = std::make_shared<std::latch>(1);
  Future<int> job = s.sys->Blocking([stuck = s.stuck, entered, release] {
    entered->count_down();
    WaitFor(*release);
    return 7;
  });
  s.stuck = Ref<Stuck>();  // the job's copy is the last Ref
  ASSERT_TRUE(WaitFor(*entered));
  s.ShutDownAndDestroy();
  ASSERT_TRUE(s.Unstick());
  ASSERT_TRUE(PollUntil(absl::Now() + kGenerous, [&] { return s.pool->parked_workers() == 1; }));
  // The job returns and is destroyed on its pool thread, with the system's
  // last reference.
  release->count_down();
  EXPECT_EQ(*job.Wait(kGenerous), 7);
  EXPECT_TRUE(AllThreadsEnd("gaveup")) << "left: " << ThreadsOf("gaveup");
}

// --- concurrent Shutdown calls ---------------------------------------------

// Says, from OnStop, that Shutdown has begun (it asks every actor to stop).
struct StopWitness : Actor<StopWitness> {
  explicit StopWitness(std::shared_ptr<std::latch> stopped) : stopped(std::move(stopped)) {}
  void OnStop(const absl::Status&) { stopped->count_down(); }
  std::shared_ptr<std::latch> stopped;
};

TEST(Shutdown, ConcurrentCallsWaitForTheFirstAndAllReturnItsResult) {
  constexpr int kLaterCallers = 4;
  auto destroyed = std::make_shared<std::latch>(1);
  auto began = std::make_shared<std::latch>(1);
  Block block;
  ActorSystem sys({.workers = 2, .name = "concurrent"});
  sys.Spawn<Stuck>(destroyed).Tell(block);
  ASSERT_TRUE(WaitFor(*block.entered));
  sys.Spawn<StopWitness>(began);
  // The first call waits for the stuck handler until its timeout.
  absl::Status first;
  std::thread first_caller([&] { first = sys.Shutdown(absl::Seconds(2)); });
  EXPECT_TRUE(WaitFor(*began));  // the first call is under way
  std::vector<absl::Status> later(kLaterCallers);
  std::vector<std::thread> later_callers;
  for (int i = 0; i < kLaterCallers; ++i) {
    later_callers.emplace_back([&, i] { later[i] = sys.Shutdown(kGenerous); });
  }
  first_caller.join();
  for (std::thread& t : later_callers) t.join();
  EXPECT_EQ(first.code(), absl::StatusCode::kDeadlineExceeded) << first;
  // The later calls waited for the first: they return its result (its
  // timeout in the message, not theirs) rather than one of their own, or
  // one read before the first call had finished.
  for (const absl::Status& s : later) EXPECT_EQ(s, first);
  EXPECT_EQ(sys.Shutdown(), first);
  block.release->count_down();
  EXPECT_TRUE(WaitFor(*destroyed));
}

}  // namespace
}  // namespace troupe
