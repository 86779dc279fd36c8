// Actor semantics, step by step on the testkit's deterministic system.

#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/container/flat_hash_set.h"

#include "actors/actor.h"
#include "actors/testkit/test_system.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

using testkit::TestSystem;

struct Add {
  int64_t by;
};
struct Get {};
struct Boom {};
struct Fail {};

struct Counter : Actor<Counter> {
  int64_t n = 0;
  void On(const Add& m) { n += m.by; }
  int64_t On(const Get&) { return n; }
  void On(const Boom&) { throw std::runtime_error("counter exploded"); }
  absl::StatusOr<int64_t> On(const Fail&) { return absl::NotFoundError("no such thing"); }
};

TEST(Actor, TellThenAskSeesTheTellsInOrder) {
  TestSystem sys;
  Ref<Counter> c = sys.Spawn<Counter>();
  c.Tell(Add{.by = 2});
  c.Tell(Add{.by = 3});
  Future<int64_t> v = c.Ask(Get{});
  EXPECT_FALSE(v.ready());
  sys.RunUntilIdle();
  Result<int64_t> r = v.Take();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 5);
}

TEST(Actor, StatusOrHandlerErrorBecomesTheAsksError) {
  TestSystem sys;
  Ref<Counter> c = sys.Spawn<Counter>();
  Future<int64_t> v = c.Ask(Fail{});
  sys.RunUntilIdle();
  EXPECT_EQ(v.Take().status().code(), absl::StatusCode::kNotFound);
}

TEST(Actor, ThrowingHandlerStopsTheActorAndFailsPendingAsks) {
  TestSystem sys;
  Ref<Counter> c = sys.Spawn<Counter>();
  Future<int64_t> before = c.Ask(Get{});
  c.Tell(Boom{});
  Future<int64_t> queued = c.Ask(Get{});
  sys.RunUntilIdle();
  EXPECT_EQ(*before.Take(), 0);
  Result<int64_t> r = queued.Take();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("counter exploded"), std::string::npos) << r.status();
  EXPECT_EQ(sys.stats().failures, 1u);
  // Later asks fail at once, without running anything.
  Future<int64_t> late = c.Ask(Get{});
  EXPECT_EQ(late.Take().status().code(), absl::StatusCode::kUnavailable);
}

// --- replies from elsewhere, coroutines, continuations -------------------

struct Hold {};     // the keeper keeps the reply handle
struct Answer {};  // and answers it later, from another message
struct Keeper : Actor<Keeper> {
  std::vector<Reply<std::string>> waiting;
  void On(const Hold&, Reply<std::string> reply) { waiting.push_back(std::move(reply)); }
  void On(const Answer&) {
    for (Reply<std::string>& r : waiting) r.Send("released");
    waiting.clear();
  }
};

TEST(Actor, ReplyHandleCanAnswerFromALaterMessage) {
  TestSystem sys;
  Ref<Keeper> k = sys.Spawn<Keeper>();
  Future<std::string> a = k.Ask(Hold{});
  Future<std::string> b = k.Ask(Hold{});
  sys.RunUntilIdle();
  EXPECT_FALSE(a.ready());
  k.Tell(Answer{});
  sys.RunUntilIdle();
  EXPECT_EQ(*a.Take(), "released");
  EXPECT_EQ(*b.Take(), "released");
}

TEST(Actor, DroppedReplyHandleCancelsTheAsk) {
  TestSystem sys;
  Ref<Keeper> k = sys.Spawn<Keeper>();
  Future<std::string> a = k.Ask(Hold{});
  sys.RunUntilIdle();
  k.Stop();
  sys.RunUntilIdle();
  EXPECT_EQ(a.Take().status().code(), absl::StatusCode::kCancelled);
}

struct Sync {
  Ref<Counter> peer;
};
struct Adder : Actor<Adder> {
  int64_t n = 100;
  Task<int64_t> On(const Sync& s) {
    Result<int64_t> theirs = co_await s.peer.Ask(Get{});
    co_return n + theirs.value_or(0);
  }
  int64_t On(const Get&) { return n; }
};

TEST(Actor, CoroutineHandlerAwaitsAnotherActorsReply) {
  TestSystem sys;
  Ref<Counter> c = sys.Spawn<Counter>();
  c.Tell(Add{.by = 7});
  Ref<Adder> a = sys.Spawn<Adder>();
  Future<int64_t> v = a.Ask(Sync{.peer = c});
  sys.RunUntilIdle();
  EXPECT_EQ(*v.Take(), 107);
}

// Records the order in which its messages and continuations run.
struct Note {
  std::string text;
};
struct Log {};
struct Await {
  Ref<Keeper> keeper;
  bool exclusive;
};
struct Recorder : Actor<Recorder> {
  std::vector<std::string> seen;
  void On(const Note& n) { seen.push_back(n.text); }
  std::vector<std::string> On(const Log&) { return seen; }
  Task<void> On(const Await& a) {
    seen.push_back("await");
    Result<std::string> r = absl::UnknownError("not set");
    if (a.exclusive) {
      r = co_await Exclusive(a.keeper.Ask(Hold{}));
    } else {
      r = co_await a.keeper.Ask(Hold{});
    }
    seen.push_back("resumed:" + r.value_or("error"));
  }
};

std::vector<std::string> RunAwaitScenario(bool exclusive) {
  TestSystem sys;
  Ref<Keeper> k = sys.Spawn<Keeper>();
  Ref<Recorder> r = sys.Spawn<Recorder>();
  r.Tell(Await{.keeper = k, .exclusive = exclusive});
  sys.RunUntilIdle();
  r.Tell(Note{.text = "during"});
  sys.RunUntilIdle();
  k.Tell(Answer{});
  sys.RunUntilIdle();
  r.Tell(Note{.text = "after"});
  Future<std::vector<std::string>> log = r.Ask(Log{});
  sys.RunUntilIdle();
  return *log.Take();
}

TEST(Actor, PlainAwaitLetsOtherMessagesRunMeanwhile) {
  EXPECT_EQ(RunAwaitScenario(/*exclusive=*/false),
            (std::vector<std::string>{"await", "during", "resumed:released", "after"}));
}

TEST(Actor, ExclusiveAwaitHoldsOtherMessagesUntilItResumes) {
  EXPECT_EQ(RunAwaitScenario(/*exclusive=*/true),
            (std::vector<std::string>{"await", "resumed:released", "during", "after"}));
}

struct Ping {
  Ref<Counter> peer;
};
struct Chainer : Actor<Chainer> {
  std::vector<std::string> seen;
  void On(const Ping& p) {
    seen.push_back("asked");
    p.peer.Ask(Get{}).Then([this](Result<int64_t> r) { seen.push_back("then:" + std::to_string(*r)); });
    seen.push_back("handler done");
  }
  std::vector<std::string> On(const Log&) { return seen; }
};

TEST(Actor, ThenRunsLaterInTheActorsOwnContext) {
  TestSystem sys;
  Ref<Counter> c = sys.Spawn<Counter>();
  c.Tell(Add{.by = 4});
  Ref<Chainer> ch = sys.Spawn<Chainer>();
  ch.Tell(Ping{.peer = c});
  sys.RunUntilIdle();
  Future<std::vector<std::string>> log = ch.Ask(Log{});
  sys.RunUntilIdle();
  EXPECT_EQ(*log.Take(), (std::vector<std::string>{"asked", "handler done", "then:4"}));
}

struct WaitInside {
  Ref<Counter> peer;
};
struct Blocker : Actor<Blocker> {
  absl::StatusCode On(const WaitInside& w) { return w.peer.Ask(Get{}).Wait(absl::Seconds(1)).status().code(); }
};

TEST(Actor, WaitInsideAHandlerIsAnErrorNotADeadlock) {
  TestSystem sys;
  Ref<Counter> c = sys.Spawn<Counter>();
  Ref<Blocker> b = sys.Spawn<Blocker>();
  Future<absl::StatusCode> code = b.Ask(WaitInside{.peer = c});
  sys.RunUntilIdle();
  EXPECT_EQ(*code.Take(), absl::StatusCode::kFailedPrecondition);
}

// --- lifecycle -------------------------------------------------------------

struct Events {
  std::vector<std::string> list;
};
struct Stop {};
struct Hooked : Actor<Hooked> {
  explicit Hooked(std::shared_ptr<Events> e) : events(std::move(e)) {}
  void OnStart() { events->list.push_back("start"); }
  void OnStop(const absl::Status& reason) { events->list.push_back("stop:" + reason.ToString()); }
  void On(const Note& n) { events->list.push_back(n.text); }
  void On(const troupe::Stop&) { Stop(); }
  std::shared_ptr<Events> events;
};

TEST(Actor, HooksRunFirstAndLastAndStopFromInsideTakesEffect) {
  TestSystem sys;
  auto events = std::make_shared<Events>();
  Ref<Hooked> h = sys.Spawn<Hooked>(events);
  h.Tell(Note{.text = "one"});
  h.Tell(troupe::Stop{});
  h.Tell(Note{.text = "never"});
  sys.RunUntilIdle();
  EXPECT_EQ(events->list, (std::vector<std::string>{"start", "one", "stop:OK"}));
  EXPECT_EQ(sys.stats().dead_letters, 1u);
  EXPECT_EQ(sys.stats().live, 0u);
}

TEST(Actor, TellToAStoppedActorIsACountedDeadLetter) {
  TestSystem sys;
  Ref<Counter> c = sys.Spawn<Counter>();
  c.Stop();
  sys.RunUntilIdle();
  c.Tell(Add{.by = 1});
  c.Tell(Add{.by = 1});
  EXPECT_EQ(sys.stats().dead_letters, 2u);
}

struct SpawnKids {
  int count;
};
struct Parent : Actor<Parent> {
  explicit Parent(std::shared_ptr<Events> e) : events(std::move(e)) {}
  void On(const SpawnKids& s) {
    for (int i = 0; i < s.count; ++i) kids.push_back(Spawn<Hooked>(events));
  }
  void OnStop(const absl::Status&) { events->list.push_back("parent stop"); }
  std::shared_ptr<Events> events;
  std::vector<Ref<Hooked>> kids;
};

TEST(Actor, StoppingAParentStopsItsChildrenFirst) {
  TestSystem sys;
  auto events = std::make_shared<Events>();
  Ref<Parent> p = sys.Spawn<Parent>(events);
  p.Tell(SpawnKids{.count = 2});
  sys.RunUntilIdle();
  EXPECT_EQ(sys.stats().live, 3u);
  p.Stop();
  sys.RunUntilIdle();
  ASSERT_EQ(events->list.size(), 5u);
  EXPECT_EQ(events->list.back(), "parent stop");
  EXPECT_EQ(sys.stats().live, 0u);
}

struct Watch {
  Ref<Counter> target;
};
struct Watcher : Actor<Watcher> {
  void On(const Watch& w) { Monitor(w.target); }
  void On(const Down& d) { downs.push_back(d); }
  std::vector<Down> On(const Log&) { return downs; }
  std::vector<Down> downs;
};

TEST(Actor, MonitorDeliversDownWithTheExitReason) {
  TestSystem sys;
  Ref<Counter> c = sys.Spawn<Counter>();
  Ref<Watcher> w = sys.Spawn<Watcher>();
  w.Tell(Watch{.target = c});
  sys.RunUntilIdle();
  c.Tell(Boom{});
  sys.RunUntilIdle();
  Future<std::vector<Down>> downs = w.Ask(Log{});
  sys.RunUntilIdle();
  Result<std::vector<Down>> d = downs.Take();
  ASSERT_EQ(d->size(), 1u);
  EXPECT_EQ((*d)[0].actor, c);
  EXPECT_EQ((*d)[0].reason.code(), absl::StatusCode::kInternal);
}

TEST(Actor, MonitoringAStoppedActorDeliversDownAtOnce) {
  TestSystem sys;
  Ref<Counter> c = sys.Spawn<Counter>();
  c.Stop();
  sys.RunUntilIdle();
  Ref<Watcher> w = sys.Spawn<Watcher>();
  w.Tell(Watch{.target = c});
  sys.RunUntilIdle();
  Future<std::vector<Down>> downs = w.Ask(Log{});
  sys.RunUntilIdle();
  EXPECT_EQ(downs.Take()->size(), 1u);
}

// --- timers on virtual time -------------------------------------------------

TEST(Actor, SendAfterFiresOnlyWhenVirtualTimeReachesTheDelay) {
  TestSystem sys;
  Ref<Counter> c = sys.Spawn<Counter>();
  sys.SendAfter(absl::Seconds(10), c, Add{.by = 1});
  sys.AdvanceBy(absl::Seconds(9));
  Future<int64_t> before = c.Ask(Get{});
  sys.RunUntilIdle();
  EXPECT_EQ(*before.Take(), 0);
  sys.AdvanceBy(absl::Seconds(1));
  Future<int64_t> after = c.Ask(Get{});
  sys.RunUntilIdle();
  EXPECT_EQ(*after.Take(), 1);
}

TEST(Actor, CancelledTimerNeverFires) {
  TestSystem sys;
  Ref<Counter> c = sys.Spawn<Counter>();
  TimerId t = sys.SendAfter(absl::Seconds(1), c, Add{.by = 1});
  EXPECT_TRUE(sys.CancelTimer(t));
  sys.AdvanceBy(absl::Seconds(5));
  Future<int64_t> v = c.Ask(Get{});
  sys.RunUntilIdle();
  EXPECT_EQ(*v.Take(), 0);
}

TEST(Actor, PeriodicTimerRepeatsUntilCancelled) {
  TestSystem sys;
  Ref<Counter> c = sys.Spawn<Counter>();
  TimerId t = sys.SendPeriodically(absl::Seconds(1), c, Add{.by = 1});
  sys.AdvanceBy(absl::Seconds(3));
  Future<int64_t> before = c.Ask(Get{});
  sys.RunUntilIdle();
  EXPECT_EQ(*before.Take(), 3);  // it repeats: once per second
  EXPECT_TRUE(sys.CancelTimer(t));
  EXPECT_EQ(sys.core_for_test().timers().Pending(), 0u);
  sys.AdvanceBy(absl::Seconds(3));
  Future<int64_t> after = c.Ask(Get{});
  sys.RunUntilIdle();
  EXPECT_EQ(*after.Take(), 3);  // no fire after the cancel
  EXPECT_FALSE(sys.CancelTimer(t));  // the series is gone
}

TEST(Actor, AskDeadlinePassesOnVirtualTime) {
  // A Keeper that says how many of the replies it sends complete an ask.
  struct LateKeeper : Actor<LateKeeper> {
    std::vector<Reply<std::string>> waiting;
    void On(const Hold&, Reply<std::string> reply) { waiting.push_back(std::move(reply)); }
    int On(const Answer&) {
      int completed = 0;
      for (Reply<std::string>& r : waiting) completed += r.Send("released") ? 1 : 0;
      waiting.clear();
      return completed;
    }
  };
  TestSystem sys;
  Ref<LateKeeper> k = sys.Spawn<LateKeeper>();
  Future<std::string> a = k.Ask(Hold{}, absl::Seconds(2));
  sys.AdvanceBy(absl::Seconds(1));
  EXPECT_FALSE(a.ready());
  sys.AdvanceBy(absl::Seconds(1));
  ASSERT_TRUE(a.ready());
  // The late reply is ignored: it completes nothing, and the ask keeps the
  // deadline's error.
  Future<int> completed = k.Ask(Answer{});
  sys.RunUntilIdle();
  EXPECT_EQ(*completed.Take(), 0);
  EXPECT_EQ(a.Take().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(sys.stats().failures, 0u);
}

TEST(Actor, ReplyBeforeTheDeadlineCancelsItsTimer) {
  TestSystem sys;
  Ref<Counter> c = sys.Spawn<Counter>();
  Future<int64_t> v = c.Ask(Get{}, absl::Seconds(2));
  sys.RunUntilIdle();
  EXPECT_EQ(*v.Take(), 0);
  EXPECT_EQ(sys.core_for_test().timers().Pending(), 0u);
}

TEST(Actor, ShutdownCancelsPendingAsks) {
  auto sys = std::make_unique<TestSystem>();
  Ref<Keeper> k = sys->Spawn<Keeper>();
  Future<std::string> held = k.Ask(Hold{});
  sys->RunUntilIdle();
  Future<std::string> queued = k.Ask(Hold{});
  ASSERT_TRUE(sys->ShutdownAndRun().ok());
  EXPECT_EQ(held.Take().status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(queued.Take().status().code(), absl::StatusCode::kCancelled);
  // After shutdown: asks fail at once, tells are dead letters.
  EXPECT_EQ(k.Ask(Hold{}).Take().status().code(), absl::StatusCode::kCancelled);
}

// --- bounded mailboxes ----------------------------------------------------

struct Small : Actor<Small> {
  static constexpr uint32_t kMailboxCapacity = 3;
  int64_t n = 0;
  void On(const Add& m) { n += m.by; }
  int64_t On(const Get&) { return n; }
};

TEST(Actor, AFullBoundedMailboxDropsAndCountsTellsAndFailsAsks) {
  TestSystem sys;
  Ref<Small> s = sys.Spawn<Small>();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(s.TryTell(Add{.by = 1}).ok());
  EXPECT_EQ(s.TryTell(Add{.by = 100}).code(), absl::StatusCode::kResourceExhausted);
  s.Tell(Add{.by = 100});  // dropped too, silently but counted
  Future<int64_t> refused = s.Ask(Get{});
  EXPECT_EQ(refused.Take().status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(sys.stats().dropped, 3u);
  sys.RunUntilIdle();
  // Delivered messages give their places back.
  Future<int64_t> v = s.Ask(Get{});
  sys.RunUntilIdle();
  EXPECT_EQ(*v.Take(), 3);
  EXPECT_EQ(sys.stats().dead_letters, 0u);
}

TEST(Actor, TryTellToAStoppedActorSaysUnavailableAndFreesItsPlace) {
  TestSystem sys;
  Ref<Small> s = sys.Spawn<Small>();
  s.Stop();
  // Queued behind the stop: they bounce as it stops, giving their places back.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(s.TryTell(Add{.by = 1}).ok());
  sys.RunUntilIdle();
  EXPECT_EQ(sys.stats().dead_letters, 3u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(s.TryTell(Add{.by = 1}).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(sys.stats().dead_letters, 13u);
  EXPECT_EQ(sys.stats().dropped, 0u);
}

TEST(Ref, RefsCompareAndHashByActor) {
  TestSystem sys;
  Ref<Counter> a = sys.Spawn<Counter>();
  Ref<Counter> b = sys.Spawn<Counter>();
  Ref<Counter> a2 = a;
  EXPECT_EQ(a, a2);
  EXPECT_FALSE(a == b);
  EXPECT_NE(a.id(), b.id());
  absl::flat_hash_set<Ref<Counter>> absl_set = {a, a2, b};
  std::unordered_set<Ref<Counter>> std_set = {a, a2, b};
  EXPECT_EQ(absl_set.size(), 2u);
  EXPECT_EQ(std_set.size(), 2u);
}

}  // namespace
}  // namespace troupe
