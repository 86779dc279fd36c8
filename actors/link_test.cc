// Links between local actors (Actor::Link, SpawnLink, TrapExits), step by
// step on the testkit's deterministic system.

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "actors/actor.h"
#include "actors/testkit/test_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

using testkit::TestSystem;
using ::testing::HasSubstr;

// What the test sees of one actor: how it stopped, the exits it trapped,
// the messages it handled.
struct Seen {
  std::optional<absl::Status> stopped;
  std::vector<std::pair<ActorRef, absl::Status>> exits;
  int handled = 0;
};

struct LinkTo {
  ActorRef other;
};
struct UnlinkFrom {
  ActorRef other;
};
struct LinkThenUnlink {
  ActorRef other;
};
struct Crash {
  std::string why;
};
struct Work {};
struct Alive {};
struct SpawnLinked {
  std::shared_ptr<Seen> seen;
  bool crash_on_start = false;
};

struct Node : Actor<Node> {
  Node(std::shared_ptr<Seen> seen, bool trap = false, bool crash_on_start = false)
      : seen(std::move(seen)), crash_on_start(crash_on_start) {
    if (trap) TrapExits();
  }
  void OnStart() {
    if (crash_on_start) throw std::runtime_error("failed to start");
  }
  void OnStop(const absl::Status& reason) { seen->stopped = reason; }
  void On(const LinkTo& m) { Link(m.other); }
  void On(const UnlinkFrom& m) { Unlink(m.other); }
  void On(const LinkThenUnlink& m) {
    Link(m.other);
    Unlink(m.other);
  }
  void On(const Crash& m) { throw std::runtime_error(m.why); }
  void On(const Work&) { ++seen->handled; }
  bool On(const Alive&) { return true; }
  void On(const Exit& e) { seen->exits.emplace_back(e.actor, e.reason); }
  Ref<Node> On(const SpawnLinked& m) { return SpawnLink<Node>(m.seen, false, m.crash_on_start); }

  std::shared_ptr<Seen> seen;
  bool crash_on_start;
};

struct Pair {
  std::shared_ptr<Seen> a_seen = std::make_shared<Seen>(), b_seen = std::make_shared<Seen>();
  Ref<Node> a, b;
};

Pair Linked(TestSystem& sys, bool a_traps = false) {
  Pair p;
  p.a = sys.Spawn<Node>(p.a_seen, a_traps);
  p.b = sys.Spawn<Node>(p.b_seen);
  p.a.Tell(LinkTo{p.b});
  sys.RunUntilIdle();
  return p;
}

TEST(Link, ALinkedActorStopsWithTheSameReason) {
  TestSystem sys;
  Pair p = Linked(sys);
  p.b.Tell(Crash{"disk on fire"});
  sys.RunUntilIdle();
  ASSERT_TRUE(p.a_seen->stopped.has_value()) << "the linked actor kept running";
  EXPECT_EQ(p.a_seen->stopped->code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(p.a_seen->stopped->message()), HasSubstr("disk on fire"));
  EXPECT_EQ(*p.a_seen->stopped, *p.b_seen->stopped);
}

TEST(Link, LinksGoBothWays) {
  TestSystem sys;
  Pair p = Linked(sys);
  p.a.Tell(Crash{"a broke"});
  sys.RunUntilIdle();
  ASSERT_TRUE(p.b_seen->stopped.has_value());
  EXPECT_THAT(std::string(p.b_seen->stopped->message()), HasSubstr("a broke"));
}

TEST(Link, AnOkExitStopsNobody) {
  TestSystem sys;
  Pair p = Linked(sys);
  p.b.Stop();
  Future<bool> alive = p.a.Ask(Alive{});
  sys.RunUntilIdle();
  EXPECT_TRUE(p.b_seen->stopped.has_value());
  EXPECT_FALSE(p.a_seen->stopped.has_value());
  EXPECT_TRUE(*alive.Take());
}

TEST(Link, ATrappingActorReceivesExitsAndKeepsRunning) {
  TestSystem sys;
  Pair p = Linked(sys, /*a_traps=*/true);
  p.b.Tell(Crash{"b broke"});
  Future<bool> alive = p.a.Ask(Alive{});
  sys.RunUntilIdle();
  EXPECT_FALSE(p.a_seen->stopped.has_value());
  ASSERT_EQ(p.a_seen->exits.size(), 1u);
  EXPECT_EQ(p.a_seen->exits[0].first, ActorRef(p.b));
  EXPECT_THAT(std::string(p.a_seen->exits[0].second.message()), HasSubstr("b broke"));
  EXPECT_TRUE(*alive.Take());
  // A normal stop is an Exit too, with OK.
  Pair q = Linked(sys, /*a_traps=*/true);
  q.b.Stop();
  sys.RunUntilIdle();
  ASSERT_EQ(q.a_seen->exits.size(), 1u);
  EXPECT_TRUE(q.a_seen->exits[0].second.ok());
}

TEST(Link, LinkingTwiceMakesOneLinkAndUnlinkRemovesIt) {
  TestSystem sys;
  Pair p = Linked(sys);
  p.a.Tell(LinkTo{p.b});
  p.b.Tell(LinkTo{p.a});
  sys.RunUntilIdle();
  EXPECT_EQ(p.a.cell()->links_for_test(), 1u);
  EXPECT_EQ(p.b.cell()->links_for_test(), 1u);
  p.b.Tell(UnlinkFrom{p.a});
  sys.RunUntilIdle();
  EXPECT_EQ(p.a.cell()->links_for_test(), 0u);
  EXPECT_EQ(p.b.cell()->links_for_test(), 0u);
  p.b.Tell(Crash{"alone now"});
  Future<bool> alive = p.a.Ask(Alive{});
  sys.RunUntilIdle();
  EXPECT_FALSE(p.a_seen->stopped.has_value());
  EXPECT_TRUE(*alive.Take());
}

TEST(Link, LinkingAStoppedActorIsAnExitAtOnce) {
  TestSystem sys;
  auto gone_seen = std::make_shared<Seen>(), a_seen = std::make_shared<Seen>();
  Ref<Node> gone = sys.Spawn<Node>(gone_seen);
  gone.Stop();
  sys.RunUntilIdle();
  Ref<Node> a = sys.Spawn<Node>(a_seen);
  a.Tell(LinkTo{gone});
  sys.RunUntilIdle();
  ASSERT_TRUE(a_seen->stopped.has_value()) << "linking a stopped actor went unnoticed";
  EXPECT_EQ(a_seen->stopped->code(), absl::StatusCode::kUnavailable) << *a_seen->stopped;
}

TEST(Link, AnExitAlreadyOnItsWayIsDroppedAfterUnlink) {
  TestSystem sys;
  auto gone_seen = std::make_shared<Seen>(), a_seen = std::make_shared<Seen>();
  Ref<Node> gone = sys.Spawn<Node>(gone_seen);
  gone.Stop();
  sys.RunUntilIdle();
  Ref<Node> a = sys.Spawn<Node>(a_seen, /*trap=*/true);
  // Linking the stopped actor queues its exit at once; the Unlink in the
  // same handler must keep it from arriving.
  a.Tell(LinkThenUnlink{gone});
  sys.RunUntilIdle();
  EXPECT_TRUE(a_seen->exits.empty());
  EXPECT_FALSE(a_seen->stopped.has_value());
}

TEST(Link, SpawnLinkLinksBeforeTheChildRuns) {
  TestSystem sys;
  auto parent_seen = std::make_shared<Seen>(), child_seen = std::make_shared<Seen>();
  Ref<Node> parent = sys.Spawn<Node>(parent_seen);
  Future<Ref<Node>> child = parent.Ask(SpawnLinked{child_seen, /*crash_on_start=*/true});
  sys.RunUntilIdle();
  ASSERT_TRUE(child_seen->stopped.has_value());
  ASSERT_TRUE(parent_seen->stopped.has_value()) << "the child's failure in OnStart did not reach its parent";
  EXPECT_THAT(std::string(parent_seen->stopped->message()), HasSubstr("failed to start"));
}

TEST(Link, AnExitOvertakesQueuedMessages) {
  // A batch of one: `a` handles one message per turn, so the exit finds
  // its queue still full.
  TestSystem sys({.batch = 1});
  Pair p = Linked(sys);
  for (int i = 0; i < 100; ++i) p.a.Tell(Work{});
  p.b.Tell(Crash{"now"});
  sys.RunUntilIdle();
  ASSERT_TRUE(p.a_seen->stopped.has_value());
  EXPECT_LT(p.a_seen->handled, 10) << "the exit waited behind the queue";
}

TEST(Link, AnExitTravelsAlongAChain) {
  TestSystem sys;
  std::vector<std::shared_ptr<Seen>> seen;
  std::vector<Ref<Node>> chain;
  for (int i = 0; i < 5; ++i) {
    seen.push_back(std::make_shared<Seen>());
    chain.push_back(sys.Spawn<Node>(seen.back()));
    if (i > 0) chain[i].Tell(LinkTo{chain[i - 1]});
  }
  sys.RunUntilIdle();
  chain.back().Tell(Crash{"end of the line"});
  sys.RunUntilIdle();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(seen[i]->stopped.has_value()) << "actor " << i << " kept running";
    EXPECT_THAT(std::string(seen[i]->stopped->message()), HasSubstr("end of the line"));
  }
}

TEST(Link, AStoppedActorLeavesNoLinkBehind) {
  TestSystem sys;
  Pair p = Linked(sys, /*a_traps=*/true);
  EXPECT_EQ(p.a.cell()->links_for_test(), 1u);
  p.b.Stop();
  sys.RunUntilIdle();
  EXPECT_EQ(p.a.cell()->links_for_test(), 0u);
}

}  // namespace
}  // namespace troupe
