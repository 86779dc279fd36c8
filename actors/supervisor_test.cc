// Supervisors, step by step on the testkit's deterministic system (virtual
// time): strategies, restart types, intensity, backoff, start and stop
// order, and what a restarted child keeps.

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/supervisor.h"
#include "actors/testkit/test_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

using testkit::TestSystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// What the test sees of the children: lifecycle events in order.
struct Journal {
  std::vector<std::string> events;
  int handled = 0;
};

struct Add {
  int by;
};
struct Get {};
struct Poison {};
struct Quit {};

struct Worker : Actor<Worker> {
  Worker(std::string name, std::shared_ptr<Journal> journal) : name(std::move(name)), journal(std::move(journal)) {}
  void OnStart() { journal->events.push_back("start " + name); }
  // A stop by the supervisor (Cancelled) is not a failure.
  void OnStop(const absl::Status& reason) {
    journal->events.push_back("stop " + name + (reason.ok() || absl::IsCancelled(reason) ? "" : " failed"));
  }
  void On(const Add& m) {
    ++journal->handled;
    n += m.by;
  }
  int On(const Get&) { return n; }
  int On(const Poison&) { throw std::runtime_error("poisoned " + name); }
  void On(const Quit&) { Stop(); }

  std::string name;
  std::shared_ptr<Journal> journal;
  int n = 0;
};

struct Tree {
  std::shared_ptr<Journal> journal = std::make_shared<Journal>();
  Ref<Supervisor> sup;
  std::vector<Ref<Worker>> workers;
};

Tree Start(TestSystem& sys, SupervisorOptions o, std::vector<std::string> names,
           Restart restart = Restart::kPermanent) {
  Tree t;
  for (const std::string& n : names) {
    ChildSpec spec = ChildSpec::Of<Worker>(n, n, t.journal);
    spec.restart = restart;
    o.children.push_back(std::move(spec));
  }
  t.sup = sys.Spawn<Supervisor>(std::move(o));
  sys.RunUntilIdle();
  for (const std::string& n : names) {
    Future<Ref<Worker>> w = ChildOf<Worker>(t.sup, n);
    sys.RunUntilIdle();
    Result<Ref<Worker>> r = w.Take();
    EXPECT_TRUE(r.ok()) << r.status();
    t.workers.push_back(r.ok() ? *r : Ref<Worker>());
  }
  t.journal->events.clear();
  return t;
}

int Value(TestSystem& sys, const Ref<Worker>& w) {
  Future<int> v = w.Ask(Get{});
  sys.RunUntilIdle();
  Result<int> r = v.Take();
  return r.ok() ? *r : -1;
}

TEST(Supervisor, ChildrenStartInListOrder) {
  TestSystem sys;
  auto journal = std::make_shared<Journal>();
  SupervisorOptions o;
  for (std::string n : {"a", "b", "c"}) o.children.push_back(ChildSpec::Of<Worker>(n, n, journal));
  sys.Spawn<Supervisor>(std::move(o));
  sys.RunUntilIdle();
  EXPECT_THAT(journal->events, ElementsAre("start a", "start b", "start c"));
}

TEST(Supervisor, StoppingTheSupervisorStopsChildrenInReverseOrder) {
  TestSystem sys;
  Tree t = Start(sys, {}, {"a", "b", "c"});
  t.sup.Stop();
  sys.RunUntilIdle();
  EXPECT_THAT(t.journal->events, ElementsAre("stop c", "stop b", "stop a"));
  EXPECT_EQ(sys.stats().live, 0u);
}

TEST(Supervisor, ARestartedChildKeepsItsRefAndItsQueuedMessages) {
  TestSystem sys;
  Tree t = Start(sys, {}, {"w"});
  Ref<Worker> w = t.workers[0];
  w.Tell(Add{5});
  Future<int> poisoned = w.Ask(Poison{});
  for (int i = 0; i < 3; ++i) w.Tell(Add{1});  // queued behind the failure
  Future<int> after = w.Ask(Get{});
  sys.RunUntilIdle();
  Result<int> p = poisoned.Take();
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("poisoned w"));
  // The new instance starts from scratch and handles what was queued.
  EXPECT_EQ(*after.Take(), 3);
  EXPECT_THAT(t.journal->events, ElementsAre("stop w failed", "start w"));
  EXPECT_EQ(Value(sys, w), 3) << "the Ref no longer reaches the child";
  EXPECT_EQ(sys.stats().dead_letters, 0u);
}

TEST(Supervisor, OneForOneRestartsOnlyTheFailedChild) {
  TestSystem sys;
  Tree t = Start(sys, {}, {"a", "b", "c"});
  for (auto& w : t.workers) w.Tell(Add{1});
  t.workers[1].Tell(Poison{});
  sys.RunUntilIdle();
  EXPECT_THAT(t.journal->events, ElementsAre("stop b failed", "start b"));
  EXPECT_EQ(Value(sys, t.workers[0]), 1);
  EXPECT_EQ(Value(sys, t.workers[1]), 0);
  EXPECT_EQ(Value(sys, t.workers[2]), 1);
}

TEST(Supervisor, OneForAllRestartsEveryChildInStartOrder) {
  TestSystem sys;
  SupervisorOptions o;
  o.strategy = Strategy::kOneForAll;
  Tree t = Start(sys, std::move(o), {"a", "b", "c"});
  for (auto& w : t.workers) w.Tell(Add{1});
  t.workers[1].Tell(Poison{});
  sys.RunUntilIdle();
  ASSERT_EQ(t.journal->events.size(), 6u);
  EXPECT_THAT(std::vector<std::string>(t.journal->events.end() - 3, t.journal->events.end()),
              ElementsAre("start a", "start b", "start c"));
  for (auto& w : t.workers) EXPECT_EQ(Value(sys, w), 0);
}

TEST(Supervisor, RestForOneRestartsTheFailedChildAndThoseStartedAfterIt) {
  TestSystem sys;
  SupervisorOptions o;
  o.strategy = Strategy::kRestForOne;
  Tree t = Start(sys, std::move(o), {"a", "b", "c"});
  for (auto& w : t.workers) w.Tell(Add{1});
  t.workers[1].Tell(Poison{});
  sys.RunUntilIdle();
  EXPECT_EQ(Value(sys, t.workers[0]), 1);
  EXPECT_EQ(Value(sys, t.workers[1]), 0);
  EXPECT_EQ(Value(sys, t.workers[2]), 0);
  EXPECT_THAT(std::vector<std::string>(t.journal->events.end() - 2, t.journal->events.end()),
              ElementsAre("start b", "start c"));
}

TEST(Supervisor, APermanentChildIsRestartedAfterANormalStopToo) {
  TestSystem sys;
  Tree t = Start(sys, {}, {"w"});
  t.workers[0].Tell(Quit{});
  sys.RunUntilIdle();
  EXPECT_THAT(t.journal->events, ElementsAre("stop w", "start w"));
}

TEST(Supervisor, ATransientChildIsRestartedOnlyAfterAFailure) {
  TestSystem sys;
  Tree t = Start(sys, {}, {"w"}, Restart::kTransient);
  t.workers[0].Tell(Poison{});
  sys.RunUntilIdle();
  EXPECT_THAT(t.journal->events, ElementsAre("stop w failed", "start w"));
  t.workers[0].Tell(Quit{});
  Future<int> gone = t.workers[0].Ask(Get{});
  sys.RunUntilIdle();
  EXPECT_FALSE(gone.Take().ok());
  Future<ActorRef> child = t.sup.Ask(GetChild{"w"});
  sys.RunUntilIdle();
  EXPECT_EQ(child.Take().status().code(), absl::StatusCode::kNotFound);
}

TEST(Supervisor, ATemporaryChildIsNeverRestarted) {
  TestSystem sys;
  Tree t = Start(sys, {}, {"w"}, Restart::kTemporary);
  t.workers[0].Tell(Add{1});
  t.workers[0].Tell(Poison{});
  t.workers[0].Tell(Add{1});
  sys.RunUntilIdle();
  EXPECT_THAT(t.journal->events, ElementsAre("stop w failed"));
  EXPECT_EQ(t.journal->handled, 1);
  EXPECT_EQ(sys.stats().dead_letters, 1u);  // the Add queued behind the failure
}

TEST(Supervisor, TooManyRestartsStopTheChildrenAndFailTheSupervisor) {
  TestSystem sys;
  SupervisorOptions o;
  o.max_restarts = 2;
  o.within = absl::Seconds(5);
  Tree t = Start(sys, std::move(o), {"a", "b"});
  for (int i = 0; i < 3; ++i) {
    t.workers[0].Tell(Poison{});
    sys.RunUntilIdle();
  }
  // Two restarts, then the third failure is one too many: b then a stop.
  EXPECT_THAT(t.journal->events, ElementsAre("stop a failed", "start a", "stop a failed", "start a",
                                             "stop a failed", "stop b"));
  EXPECT_EQ(sys.stats().live, 0u) << "the supervisor did not stop";
}

TEST(Supervisor, RestartsSpreadBeyondTheWindowNeverGiveUp) {
  TestSystem sys;
  SupervisorOptions o;
  o.max_restarts = 1;
  o.within = absl::Seconds(5);
  Tree t = Start(sys, std::move(o), {"a"});
  for (int i = 0; i < 5; ++i) {
    t.workers[0].Tell(Poison{});
    sys.RunUntilIdle();
    sys.AdvanceBy(absl::Seconds(6));
  }
  EXPECT_EQ(Value(sys, t.workers[0]), 0);
  EXPECT_EQ(sys.stats().live, 2u);
}

struct Watcher : Actor<Watcher> {
  explicit Watcher(std::shared_ptr<absl::Status> down) : down(std::move(down)) {}
  void On(const ActorRef& target) { Monitor(target); }
  void On(const Down& d) { *down = d.reason; }
  std::shared_ptr<absl::Status> down;
};

TEST(Supervisor, GivingUpEscalatesToTheParentSupervisorWhichRestartsTheSubtree) {
  TestSystem sys;
  auto journal = std::make_shared<Journal>();
  SupervisorOptions inner;
  inner.max_restarts = 0;
  inner.children.push_back(ChildSpec::Of<Worker>("leaf", std::string("leaf"), journal));
  SupervisorOptions outer;
  outer.children.push_back(ChildSpec::Of<Supervisor>("inner", inner));
  Ref<Supervisor> root = sys.Spawn<Supervisor>(std::move(outer));
  sys.RunUntilIdle();
  Future<Ref<Supervisor>> inner_ref = ChildOf<Supervisor>(root, "inner");
  sys.RunUntilIdle();
  Ref<Supervisor> mid = *inner_ref.Take();
  Future<Ref<Worker>> leaf_ref = ChildOf<Worker>(mid, "leaf");
  sys.RunUntilIdle();
  Ref<Worker> leaf = *leaf_ref.Take();
  journal->events.clear();
  leaf.Tell(Poison{});
  sys.RunUntilIdle();
  // The inner supervisor gave up (no restarts allowed); the outer one
  // restarted it, and it started a new leaf.
  EXPECT_THAT(journal->events, ElementsAre("stop leaf failed", "start leaf"));
  Future<Ref<Worker>> new_leaf = ChildOf<Worker>(mid, "leaf");
  sys.RunUntilIdle();
  Result<Ref<Worker>> r = new_leaf.Take();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(*r, leaf) << "a restarted supervisor starts its children anew";
  EXPECT_EQ(Value(sys, *r), 0);
}

TEST(Supervisor, BackoffDelaysEachRestartDoublingUpToTheMaximum) {
  TestSystem sys;
  SupervisorOptions o;
  o.max_restarts = 100;
  o.within = absl::Seconds(1);
  o.backoff = Backoff{.min = absl::Seconds(1), .max = absl::Seconds(4), .random_factor = 0,
                      .reset_after = absl::Seconds(60)};
  Tree t = Start(sys, std::move(o), {"w"});
  for (absl::Duration expected : {absl::Seconds(1), absl::Seconds(2), absl::Seconds(4), absl::Seconds(4)}) {
    SCOPED_TRACE(absl::FormatDuration(expected));
    t.journal->events.clear();
    t.workers[0].Tell(Poison{});
    t.workers[0].Tell(Add{1});
    sys.RunUntilIdle();
    EXPECT_THAT(t.journal->events, ElementsAre("stop w failed"));
    sys.AdvanceBy(expected - absl::Milliseconds(10));
    EXPECT_EQ(t.journal->events.size(), 1u) << "restarted before its backoff";
    sys.AdvanceBy(absl::Milliseconds(10));
    EXPECT_THAT(t.journal->events, ElementsAre("stop w failed", "start w"));
    EXPECT_EQ(Value(sys, t.workers[0]), 1) << "the message sent during the backoff was lost";
  }
}

TEST(Supervisor, BackoffStartsAgainAfterAQuietPeriod) {
  TestSystem sys;
  SupervisorOptions o;
  o.max_restarts = 100;
  o.backoff = Backoff{.min = absl::Seconds(1), .max = absl::Seconds(8), .random_factor = 0,
                      .reset_after = absl::Seconds(30)};
  Tree t = Start(sys, std::move(o), {"w"});
  for (int i = 0; i < 3; ++i) {
    t.workers[0].Tell(Poison{});
    sys.RunUntilIdle();
    sys.AdvanceBy(absl::Seconds(8));
  }
  sys.AdvanceBy(absl::Seconds(31));  // quiet
  t.journal->events.clear();
  t.workers[0].Tell(Poison{});
  sys.RunUntilIdle();
  sys.AdvanceBy(absl::Seconds(1));
  EXPECT_THAT(t.journal->events, ElementsAre("stop w failed", "start w"));
}

TEST(Supervisor, TerminateChildStopsItForGood) {
  TestSystem sys;
  Tree t = Start(sys, {}, {"a", "b"});
  Future<void> done = t.sup.Ask(TerminateChild{"a"});
  sys.RunUntilIdle();
  EXPECT_TRUE(done.Take().ok());
  EXPECT_THAT(t.journal->events, ElementsAre("stop a"));
  EXPECT_FALSE(t.workers[0].TryTell(Add{1}).ok());
  EXPECT_EQ(Value(sys, t.workers[1]), 0);
}

TEST(Supervisor, ChildOfAnotherTypeIsAClearError) {
  TestSystem sys;
  Tree t = Start(sys, {}, {"w"});
  Future<Ref<Supervisor>> wrong = ChildOf<Supervisor>(t.sup, "w");
  sys.RunUntilIdle();
  Result<Ref<Supervisor>> r = wrong.Take();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("Worker"));
}

struct Broken : Actor<Broken> {
  Broken() { throw std::runtime_error("no config"); }
};

TEST(Supervisor, AChildThatCannotStartFailsItsSupervisorsStart) {
  TestSystem sys;
  SupervisorOptions o;
  o.children.push_back(ChildSpec::Of<Broken>("broken"));
  Ref<Supervisor> sup = sys.Spawn<Supervisor>(std::move(o));
  Future<ActorRef> asked = sup.Ask(GetChild{"broken"});
  sys.RunUntilIdle();
  EXPECT_FALSE(asked.Take().ok()) << "the supervisor kept running";
  EXPECT_EQ(sys.stats().live, 0u);
}

TEST(Supervisor, StartChildReportsAChildThatCannotStart) {
  TestSystem sys;
  Tree t = Start(sys, {}, {"w"});
  Future<ActorRef> started = t.sup.Ask(StartChild{ChildSpec::Of<Broken>("broken")});
  sys.RunUntilIdle();
  Result<ActorRef> r = started.Take();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("no config"));
  EXPECT_EQ(Value(sys, t.workers[0]), 0) << "the supervisor or its other child was disturbed";
}


struct AwaitIt {
  std::shared_ptr<Promise<int>> never;
  std::shared_ptr<int> resumed;
};
struct Awaiter : Actor<Awaiter> {
  Task<int> On(const AwaitIt& m) {
    Result<int> r = co_await m.never->GetFuture();
    ++*m.resumed;
    co_return r.value_or(0);
  }
  int On(const Poison&) { throw std::runtime_error("poisoned"); }
  int On(const Get&) { return 1; }
};

TEST(Supervisor, ARestartedChildNeverResumesItsPredecessorsCoroutines) {
  TestSystem sys;
  SupervisorOptions o;
  o.children.push_back(ChildSpec::Of<Awaiter>("a"));
  Ref<Supervisor> sup = sys.Spawn<Supervisor>(std::move(o));
  sys.RunUntilIdle();
  Future<Ref<Awaiter>> got = ChildOf<Awaiter>(sup, "a");
  sys.RunUntilIdle();
  Ref<Awaiter> a = *got.Take();
  auto never = std::make_shared<Promise<int>>();
  auto resumed = std::make_shared<int>(0);
  Future<int> waiting = a.Ask(AwaitIt{never, resumed});
  sys.RunUntilIdle();
  a.Tell(Poison{});
  sys.RunUntilIdle();
  EXPECT_EQ(waiting.Take().status().code(), absl::StatusCode::kCancelled);
  never->SetValue(5);  // nothing of the old instance is left to resume
  Future<int> alive = a.Ask(Get{});
  sys.RunUntilIdle();
  EXPECT_EQ(*resumed, 0);
  EXPECT_EQ(*alive.Take(), 1);
}

struct Parent : Actor<Parent> {
  explicit Parent(std::shared_ptr<Journal> journal) : journal(std::move(journal)) {}
  void OnStart() { helper = Spawn<Worker>(std::string("helper"), journal); }
  void On(const Add& m) { n += m.by; }
  int On(const Get&) { return n; }
  int On(const Poison&) { throw std::runtime_error("poisoned parent"); }
  std::shared_ptr<Journal> journal;
  Ref<Worker> helper;
  int n = 0;
};

// With children, the failed instance waits for them to stop before it
// ends: what is queued meanwhile must still wait for the next instance.
TEST(Supervisor, AChildWithChildrenOfItsOwnKeepsItsQueueAcrossARestart) {
  TestSystem sys;
  auto journal = std::make_shared<Journal>();
  SupervisorOptions o;
  o.children.push_back(ChildSpec::Of<Parent>("p", journal));
  Ref<Supervisor> sup = sys.Spawn<Supervisor>(std::move(o));
  sys.RunUntilIdle();
  Future<Ref<Parent>> got = ChildOf<Parent>(sup, "p");
  sys.RunUntilIdle();
  Ref<Parent> p = *got.Take();
  p.Tell(Poison{});
  for (int i = 0; i < 5; ++i) p.Tell(Add{1});
  Future<int> v = p.Ask(Get{});
  sys.RunUntilIdle();
  Result<int> r = v.Take();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 5);
  EXPECT_EQ(sys.stats().dead_letters, 0u);
}

}  // namespace
}  // namespace troupe
