// Lifecycle edge cases: spawning from OnStop, callbacks outside actors,
// immediate stops, and what a stopped actor must not keep alive. Step by
// step on the testkit's deterministic system unless a real pool is the
// point.

#include <atomic>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/actor_system.h"
#include "actors/testkit/test_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/ostream_sink.h"

namespace troupe {
namespace {

using testkit::TestSystem;
using ::testing::HasSubstr;

// A logger whose lines the test can read.
struct CapturedLog {
  std::ostringstream lines;
  std::shared_ptr<spdlog::logger> logger =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_st>(lines));
};

struct Ping {};

struct Child : Actor<Child> {
  explicit Child(std::shared_ptr<bool> started) : started(std::move(started)) {}
  void OnStart() { *started = true; }
  int On(const Ping&) { return 1; }
  std::shared_ptr<bool> started;
};

// Spawns a child from OnStop or from its destructor.
struct SpawnsLate : Actor<SpawnsLate> {
  SpawnsLate(bool from_destructor, std::shared_ptr<Ref<Child>> slot, std::shared_ptr<bool> started)
      : from_destructor(from_destructor), slot(std::move(slot)), started(std::move(started)) {}
  ~SpawnsLate() {
    if (from_destructor) *slot = Spawn<Child>(started);
  }
  void OnStop(const absl::Status&) {
    if (!from_destructor) *slot = Spawn<Child>(started);
  }
  void On(const Ping&) {}

  bool from_destructor;
  std::shared_ptr<Ref<Child>> slot;
  std::shared_ptr<bool> started;
};

void ExpectLateSpawnIsStoppedAndLeaksNothing(bool from_destructor) {
  CapturedLog log;
  auto slot = std::make_shared<Ref<Child>>();
  auto started = std::make_shared<bool>(false);
  Future<int> ask;
  {
    TestSystem sys({.logger = log.logger});
    Ref<SpawnsLate> parent = sys.Spawn<SpawnsLate>(from_destructor, slot, started);
    parent.Stop();
    sys.RunUntilIdle();
    ASSERT_TRUE(*slot);
    ask = slot->Ask(Ping{});
    sys.RunUntilIdle();
    EXPECT_FALSE(*started) << "a child spawned after its parent stopped ran";
    EXPECT_EQ(sys.stats().live, 0u);
  }
  Result<int> r = ask.Take();
  EXPECT_FALSE(r.ok()) << "an ask to the late child was answered";
  EXPECT_THAT(log.lines.str(), HasSubstr("spawned a child after it stopped"));
  slot->Stop();
  *slot = Ref<Child>();
  // Every cell released its system: nothing holds the logger but us.
  EXPECT_EQ(log.logger.use_count(), 1) << "the system (and a cell) leaked";
}

TEST(Lifecycle, SpawnFromOnStopMakesAStoppedActorAndLeaksNothing) { ExpectLateSpawnIsStoppedAndLeaksNothing(false); }

TEST(Lifecycle, SpawnFromADestructorMakesAStoppedActorAndLeaksNothing) {
  ExpectLateSpawnIsStoppedAndLeaksNothing(true);
}

// --- Callbacks registered outside any actor --------------------------------

TEST(Lifecycle, ThenCallbackThatThrowsOutsideAnActorFailsItsFuture) {
  Promise<int> p;
  Future<int> next = p.GetFuture().Then([](Result<int>) -> int { throw std::runtime_error("callback broke"); });
  p.SetValue(1);  // used to reach std::terminate here
  Result<int> r = next.Take();
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInternal) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("callback broke"));
}

struct CompleteIt {
  std::shared_ptr<Promise<int>> promise;
};

// Completes a promise inside its handler, then stops.
struct Completer : Actor<Completer> {
  void On(const CompleteIt& m) {
    m.promise->SetValue(7);
    Stop();
  }
};

TEST(Lifecycle, OutsideCallbackCompletedByAnActorRunsOutsideThatActorsContext) {
  TestSystem sys;
  Ref<Completer> completer = sys.Spawn<Completer>();
  auto promise = std::make_shared<Promise<int>>();
  bool nested_ran = false;
  absl::Status waited = absl::UnknownError("not run");
  bool nested_was_ready = false;
  Future<int> next = promise->GetFuture().Then([&](Result<int> r) -> int {
    // A plain thread's rules apply, not the completing actor's.
    waited = Future<int>::Ready(3).Wait().status();
    Future<void> nested = Future<int>::Ready(4).Then([&](Result<int>) { nested_ran = true; });
    nested_was_ready = nested.ready();
    return *r;
  });
  Promise<int> thrower;
  Future<int> thrown = thrower.GetFuture().Then([](Result<int>) -> int { throw std::runtime_error("outside"); });
  completer.Tell(CompleteIt{promise});
  completer.Tell(CompleteIt{std::make_shared<Promise<int>>(std::move(thrower))});
  sys.RunUntilIdle();
  EXPECT_TRUE(waited.ok()) << waited;
  EXPECT_TRUE(nested_ran) << "a nested Then was posted to the completing actor";
  EXPECT_TRUE(nested_was_ready);
  EXPECT_EQ(*next.Take(), 7);
  EXPECT_EQ(sys.stats().failures, 0u) << "the completing actor was blamed for an outside callback";
}

// --- Immediate stop ---------------------------------------------------------

struct Add {
  int by;
};
struct Get {};

struct Counter : Actor<Counter> {
  explicit Counter(std::shared_ptr<int> handled) : handled(std::move(handled)) {}
  void On(const Add& m) {
    ++*handled;
    n += m.by;
  }
  int On(const Get&) { return n; }
  std::shared_ptr<int> handled;
  int n = 0;
};

TEST(Lifecycle, StopNowBouncesQueuedMessagesUnhandled) {
  TestSystem sys;
  auto handled = std::make_shared<int>(0);
  Ref<Counter> c = sys.Spawn<Counter>(handled);
  for (int i = 0; i < 100; ++i) c.Tell(Add{1});
  Future<int> ask = c.Ask(Get{});
  c.StopNow(absl::AbortedError("enough"));
  sys.RunUntilIdle();
  EXPECT_EQ(*handled, 0) << "queued messages ran after an immediate stop";
  Result<int> r = ask.Take();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("enough"));
  EXPECT_EQ(sys.stats().dead_letters, 101u);
}

TEST(Lifecycle, OrderedStopHandlesWhatWasQueuedBeforeIt) {
  TestSystem sys;
  auto handled = std::make_shared<int>(0);
  Ref<Counter> c = sys.Spawn<Counter>(handled);
  for (int i = 0; i < 100; ++i) c.Tell(Add{1});
  c.Stop();
  c.Tell(Add{1});
  sys.RunUntilIdle();
  EXPECT_EQ(*handled, 100);
  EXPECT_EQ(sys.stats().dead_letters, 1u);
}

struct MakeChild {};
struct Parent : Actor<Parent> {
  explicit Parent(std::shared_ptr<int> handled) : handled(std::move(handled)) {}
  Ref<Counter> On(const MakeChild&) { return Spawn<Counter>(handled); }
  std::shared_ptr<int> handled;
};

// With a batch of one, the child handles one message per turn, so the
// parent's stop reaches it with its queue still full.
TEST(Lifecycle, StopNowStopsChildrenImmediatelyToo) {
  TestSystem sys({.batch = 1});
  auto handled = std::make_shared<int>(0);
  Ref<Parent> parent = sys.Spawn<Parent>(handled);
  Future<Ref<Counter>> made = parent.Ask(MakeChild{});
  sys.RunUntilIdle();
  Ref<Counter> child = *made.Take();
  for (int i = 0; i < 50; ++i) child.Tell(Add{1});
  parent.StopNow();
  sys.RunUntilIdle();
  EXPECT_LE(*handled, 1);
  EXPECT_EQ(sys.stats().live, 0u);
}

TEST(Lifecycle, StopNowDuringAnOrderedStopHurriesTheChildren) {
  TestSystem sys({.batch = 1});
  auto handled = std::make_shared<int>(0);
  Ref<Parent> parent = sys.Spawn<Parent>(handled);
  Future<Ref<Counter>> made = parent.Ask(MakeChild{});
  sys.RunUntilIdle();
  Ref<Counter> child = *made.Take();
  for (int i = 0; i < 50; ++i) child.Tell(Add{1});
  parent.Stop();   // the child is asked to stop after its 50 messages...
  parent.StopNow();  // ...and then to stop at once
  sys.RunUntilIdle();
  EXPECT_LE(*handled, 2);
  EXPECT_EQ(sys.stats().live, 0u);
}

struct Slow : Actor<Slow> {
  // Real work of about a millisecond, not a synchronization.
  int On(const Get&) {
    const absl::Time end = absl::Now() + absl::Milliseconds(1);
    while (absl::Now() < end) {
    }
    return 1;
  }
};

TEST(Lifecycle, ShutdownPastItsDrainDeadlineStopsActorsImmediately) {
  ActorSystem sys({.workers = 2});
  Ref<Slow> slow = sys.Spawn<Slow>();
  std::vector<Future<int>> asks;
  for (int i = 0; i < 20000; ++i) asks.push_back(slow.Ask(Get{}));  // ~20 s of work
  const absl::Time start = absl::Now();
  absl::Status s = sys.Shutdown(absl::Milliseconds(200));
  const absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_LT(took, absl::Seconds(5)) << "Shutdown handled the whole queue";
  int cancelled = 0;
  for (Future<int>& f : asks) {
    Result<int> r = f.Wait(absl::Seconds(5));
    if (r.status().code() == absl::StatusCode::kCancelled) ++cancelled;
  }
  EXPECT_GT(cancelled, 10000);
}

// --- What a stopped actor must not keep -------------------------------------

struct Watch {
  ActorRef target;
  bool demonitor_at_once = false;
};
struct Downs {};

struct Watcher : Actor<Watcher> {
  void On(const Watch& w) {
    MonitorId id = Monitor(w.target);
    if (w.demonitor_at_once) demonitored = Demonitor(id);
  }
  void On(const Down&) { ++downs; }
  int On(const Downs&) { return downs * 10 + (demonitored ? 1 : 0); }
  int downs = 0;
  bool demonitored = false;
};

TEST(Lifecycle, DemonitorDropsADownAlreadyOnItsWay) {
  TestSystem sys;
  auto handled = std::make_shared<int>(0);
  Ref<Counter> target = sys.Spawn<Counter>(handled);
  target.Stop();
  sys.RunUntilIdle();
  Ref<Watcher> w = sys.Spawn<Watcher>();
  // Monitoring a stopped actor queues Down at once; Demonitor in the same
  // handler must still keep it from being delivered.
  w.Tell(Watch{target, /*demonitor_at_once=*/true});
  Future<int> seen = w.Ask(Downs{});
  sys.RunUntilIdle();
  EXPECT_EQ(*seen.Take(), 1);
}

TEST(Lifecycle, DemonitorBeforeTheTargetStopsMeansNoDown) {
  TestSystem sys;
  auto handled = std::make_shared<int>(0);
  Ref<Counter> target = sys.Spawn<Counter>(handled);
  Ref<Watcher> w = sys.Spawn<Watcher>();
  w.Tell(Watch{target, /*demonitor_at_once=*/true});
  sys.RunUntilIdle();
  EXPECT_EQ(target.cell()->watchers_for_test(), 0u) << "Demonitor left the watch at its target";
  target.Stop();
  Future<int> seen = w.Ask(Downs{});
  sys.RunUntilIdle();
  EXPECT_EQ(*seen.Take(), 1);
}

TEST(Lifecycle, AStoppedWatcherIsRemovedFromItsTargets) {
  TestSystem sys;
  auto handled = std::make_shared<int>(0);
  Ref<Counter> target = sys.Spawn<Counter>(handled);
  for (int i = 0; i < 10; ++i) {
    Ref<Watcher> w = sys.Spawn<Watcher>();
    w.Tell(Watch{target});
    sys.RunUntilIdle();
    EXPECT_EQ(target.cell()->watchers_for_test(), 1u);
    w.Stop();
    sys.RunUntilIdle();
  }
  EXPECT_EQ(target.cell()->watchers_for_test(), 0u) << "watchers that stopped stayed at their target";
}

struct Tick {};
struct Ticker : Actor<Ticker> {
  void OnStart() { SendPeriodically(absl::Seconds(1), Self(), Tick{}); }
  void On(const Tick&) { ++ticks; }
  int ticks = 0;
};

TEST(Lifecycle, PeriodicTimerOfAStoppedActorIsCancelled) {
  TestSystem sys;
  Ref<Ticker> t = sys.Spawn<Ticker>();
  sys.AdvanceBy(absl::Seconds(3));
  t.Stop();
  sys.RunUntilIdle();
  const uint64_t dead_before = sys.stats().dead_letters;
  sys.AdvanceBy(absl::Seconds(10));
  EXPECT_EQ(sys.stats().dead_letters, dead_before) << "the stopped actor's timer kept sending";
  EXPECT_EQ(sys.core_for_test().timers().Pending(), 0u);
}

TEST(Lifecycle, PeriodicSendToAStoppedTargetEndsByItself) {
  TestSystem sys;
  auto handled = std::make_shared<int>(0);
  Ref<Counter> c = sys.Spawn<Counter>(handled);
  sys.SendPeriodically(absl::Seconds(1), c, Add{1});
  sys.AdvanceBy(absl::Seconds(3));
  EXPECT_EQ(*handled, 3);
  c.Stop();
  sys.RunUntilIdle();
  sys.AdvanceBy(absl::Seconds(10));
  EXPECT_LE(sys.stats().dead_letters, 1u);
  EXPECT_EQ(sys.core_for_test().timers().Pending(), 0u);
}

// Sets a flag when destroyed: marks a coroutine frame's or callback's end.
struct Sentinel {
  explicit Sentinel(std::shared_ptr<bool> gone) : gone(std::move(gone)) {}
  Sentinel(Sentinel&& o) noexcept : gone(std::move(o.gone)) {}
  ~Sentinel() {
    if (gone) *gone = true;
  }
  std::shared_ptr<bool> gone;
};

struct AwaitForever {
  std::shared_ptr<Promise<int>> never;
  std::shared_ptr<bool> gone;
};
struct ThenForever {
  std::shared_ptr<Promise<int>> never;
  std::shared_ptr<bool> gone;
};

struct Waiter : Actor<Waiter> {
  Task<int> On(const AwaitForever& m) {
    Sentinel local(m.gone);
    Result<int> r = co_await m.never->GetFuture();
    co_return r.value_or(0);
  }
  void On(const ThenForever& m) {
    std::move(m.never->GetFuture()).Then([s = Sentinel(m.gone)](Result<int>) {});
  }
};

TEST(Lifecycle, SuspendedCoroutineOfAStoppedActorIsDestroyedAsItStops) {
  TestSystem sys;
  Ref<Waiter> w = sys.Spawn<Waiter>();
  auto never = std::make_shared<Promise<int>>();
  auto gone = std::make_shared<bool>(false);
  Future<int> answer = w.Ask(AwaitForever{never, gone});
  sys.RunUntilIdle();
  EXPECT_FALSE(*gone);
  w.Stop();
  sys.RunUntilIdle();
  EXPECT_TRUE(*gone) << "the frame outlived its actor";
  EXPECT_EQ(answer.Take().status().code(), absl::StatusCode::kCancelled);
  never->SetValue(1);  // nothing is left to resume
  sys.RunUntilIdle();
}

TEST(Lifecycle, ThenContinuationOfAStoppedActorIsDestroyedAsItStops) {
  TestSystem sys;
  Ref<Waiter> w = sys.Spawn<Waiter>();
  auto never = std::make_shared<Promise<int>>();
  auto gone = std::make_shared<bool>(false);
  w.Tell(ThenForever{never, gone});
  sys.RunUntilIdle();
  EXPECT_FALSE(*gone);
  w.Stop();
  sys.RunUntilIdle();
  EXPECT_TRUE(*gone) << "the continuation outlived its actor";
  never->SetValue(1);
  sys.RunUntilIdle();
}

// --- Reply-form handlers -----------------------------------------------------

struct Later {};
struct Thrower : Actor<Thrower> {
  void On(const Later&, Reply<int>) { throw std::runtime_error("reply handler broke"); }
};

TEST(Lifecycle, ReplyFormHandlerThatThrowsFailsTheAskWithInternal) {
  TestSystem sys;
  Ref<Thrower> t = sys.Spawn<Thrower>();
  Future<int> r = t.Ask(Later{});
  sys.RunUntilIdle();
  Result<int> got = r.Take();
  ASSERT_EQ(got.status().code(), absl::StatusCode::kInternal) << got.status();
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("reply handler broke"));
}

}  // namespace
}  // namespace troupe
