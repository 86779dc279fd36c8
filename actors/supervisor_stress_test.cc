// Supervision on the real worker pool: a child that fails often under load
// from several threads loses nothing but the messages that failed it; a
// child that does not stop in time is stopped immediately.

#include <atomic>
#include <climits>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/actor_system.h"
#include "actors/supervisor.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

// Polls `condition` until it holds or `timeout` passes.
template <class Condition>
bool Eventually(Condition condition, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() >= deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

struct Item {
  int seq;
};

struct Counts {
  std::atomic<int64_t> handled{0};
  std::atomic<int64_t> thrown{0};
};

struct Fragile : Actor<Fragile> {
  explicit Fragile(std::shared_ptr<Counts> counts) : counts(std::move(counts)) {}
  void On(const Item& m) {
    if (m.seq % 100 == 99) {
      counts->thrown.fetch_add(1, std::memory_order_relaxed);
      throw std::runtime_error("every hundredth item breaks me");
    }
    counts->handled.fetch_add(1, std::memory_order_relaxed);
  }
  std::shared_ptr<Counts> counts;
};

TEST(SupervisorStress, AChildFailingOnEveryHundredthMessageFromFourThreadsLosesOnlyThoseMessages) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 250'000;
  ActorSystem sys({.workers = 2});
  auto counts = std::make_shared<Counts>();
  SupervisorOptions o;
  o.max_restarts = INT_MAX;
  o.within = absl::Seconds(1);
  o.children.push_back(ChildSpec::Of<Fragile>("fragile", counts));
  Ref<Supervisor> sup = sys.Spawn<Supervisor>(std::move(o));
  Ref<Fragile> child = ChildOf<Fragile>(sup, "fragile").Wait(absl::Seconds(30)).value();
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) child.Tell(Item{i});
    });
  }
  for (std::thread& s : senders) s.join();
  constexpr int64_t kTotal = int64_t{kThreads} * kPerThread;
  constexpr int64_t kFailing = kTotal / 100;
  // The system counts each failure just after its handler threw.
  ASSERT_TRUE(Eventually(
      [&] {
        return counts->handled.load() + counts->thrown.load() == kTotal &&
               sys.stats().failures == static_cast<uint64_t>(counts->thrown.load());
      },
      absl::Seconds(300)))
      << "handled " << counts->handled.load() << " and failed on " << counts->thrown.load() << " of " << kTotal;
  EXPECT_EQ(counts->thrown.load(), kFailing);
  EXPECT_EQ(counts->handled.load(), kTotal - kFailing);
  EXPECT_EQ(sys.stats().failures, static_cast<uint64_t>(kFailing));
  EXPECT_EQ(sys.stats().dead_letters, 0u);
  EXPECT_TRUE(sys.Shutdown(absl::Seconds(30)).ok());
}

struct Slow {};
struct Plodder : Actor<Plodder> {
  explicit Plodder(std::shared_ptr<Counts> counts) : counts(std::move(counts)) {}
  // Real work of about a millisecond, not a synchronization.
  void On(const Slow&) {
    const absl::Time end = absl::Now() + absl::Milliseconds(1);
    while (absl::Now() < end) {
    }
    counts->handled.fetch_add(1, std::memory_order_relaxed);
  }
  std::shared_ptr<Counts> counts;
};

TEST(SupervisorStress, AChildPastItsShutdownTimeIsStoppedImmediately) {
  ActorSystem sys({.workers = 2});
  auto counts = std::make_shared<Counts>();
  SupervisorOptions o;
  ChildSpec spec = ChildSpec::Of<Plodder>("plodder", counts);
  spec.shutdown = absl::Milliseconds(100);
  o.children.push_back(std::move(spec));
  Ref<Supervisor> sup = sys.Spawn<Supervisor>(std::move(o));
  Ref<Plodder> child = ChildOf<Plodder>(sup, "plodder").Wait(absl::Seconds(30)).value();
  for (int i = 0; i < 20'000; ++i) child.Tell(Slow{});  // ~20 s of work
  const absl::Time start = absl::Now();
  sup.Stop();
  ASSERT_TRUE(Eventually([&] { return sys.stats().live == 0; }, absl::Seconds(10)))
      << "the child handled its whole queue";
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_LT(counts->handled.load(), 10'000);
  EXPECT_GT(sys.stats().dead_letters, 10'000u);
}

}  // namespace
}  // namespace troupe
