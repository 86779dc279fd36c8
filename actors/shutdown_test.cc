// Shutdown on the real pool when it races with other work: spawns and asks
// from other threads while it runs. Every wait is bounded.

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/actor_system.h"
#include "gtest/gtest.h"

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

}  // namespace
}  // namespace troupe
