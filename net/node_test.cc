// Several nodes in one process, on loopback: remote tells and asks, Refs
// inside messages, lookups, remote spawn, monitors, deadlines, node loss,
// back-pressure and the handshake's refusals.

#include "net/node.h"

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/actor_system.h"
#include "gtest/gtest.h"
#include "net/node_test_util.h"
#include "net/testdata/node_test_messages.troupe.h"

namespace troupe::nettest {
namespace {

// Two systems, each with a node; `a` listens and publishes a Counter.
class TwoNodes : public ::testing::Test {
 protected:
  TwoNodes() : a_sys_({.workers = 1, .name = "a"}), b_sys_({.workers = 1, .name = "b"}) {
    a_ = std::make_unique<Node>(a_sys_, Options("a"));
    b_ = std::make_unique<Node>(b_sys_, Options("b"));
    address_ = a_->Listen("127.0.0.1:0").value();
    counter_ = a_sys_.Spawn<Counter>();
    EXPECT_TRUE(a_->Publish("counter", counter_).ok());
  }
  ~TwoNodes() override {
    b_.reset();
    a_.reset();
  }

  Ref<Counter> LookupCounter() { return b_->Lookup<Counter>(address_, "counter").Wait(kWait).value(); }

  ActorSystem a_sys_, b_sys_;
  std::unique_ptr<Node> a_, b_;
  std::string address_;
  Ref<Counter> counter_;
};

TEST_F(TwoNodes, TellsThenAnAskArriveInOrderAcrossNodes) {
  Ref<Counter> remote = LookupCounter();
  ASSERT_TRUE(remote.is_remote());
  for (int i = 1; i <= 100; ++i) remote.Tell(Add{.by = i});
  EXPECT_EQ(remote.Ask(Get{}, kWait).Wait(kWait).value(), 5050);
  EXPECT_EQ(remote.Ask(Echo{.text = "hi"}, kWait).Wait(kWait).value(), "echo: hi");
  EXPECT_GE(a_->stats().messages_in, 102u);
}

TEST_F(TwoNodes, ConcurrentSendersLoseNothingAndEachKeepsItsOrder) {
  ASSERT_TRUE(a_->Publish("sequencer", a_sys_.Spawn<Sequencer>()).ok());
  Ref<Sequencer> remote = b_->Lookup<Sequencer>(address_, "sequencer").Wait(kWait).value();
  constexpr int kThreads = 4;
  constexpr int64_t kEach = 5000;
  std::vector<std::thread> senders;
  for (uint32_t t = 0; t < kThreads; ++t) {
    senders.emplace_back([remote, t] {
      for (int64_t n = 1; n <= kEach; ++n) ASSERT_TRUE(remote.TryTell(Seq{.sender = t, .n = n}).ok());
    });
  }
  for (std::thread& t : senders) t.join();
  TallyResult r = remote.Ask(Tally{}, kWait).Wait(kWait).value();
  EXPECT_EQ(r.total, kThreads * kEach);
  EXPECT_EQ(r.out_of_order, 0);
}

TEST_F(TwoNodes, ARegisteredNameCanBePublished) {
  Ref<Counter> named = a_sys_.Spawn<Counter>();
  ASSERT_TRUE(a_sys_.registry().Register("named", named).ok());
  EXPECT_EQ(a_->PublishRegistered("nobody").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(a_->PublishRegistered("named").ok());
  Ref<Counter> remote = b_->Lookup<Counter>(address_, "named").Wait(kWait).value();
  remote.Tell(Add{.by = 7});
  EXPECT_EQ(remote.Ask(Get{}, kWait).Wait(kWait).value(), 7);  // behind the tell, on one link
}

TEST_F(TwoNodes, LookupOfTheSameActorTwiceGivesEqualRefs) {
  Ref<Counter> one = LookupCounter();
  Ref<Counter> two = LookupCounter();
  EXPECT_EQ(one, two);
}

TEST_F(TwoNodes, ARefInsideAMessageRoutesBackToItsNode) {
  Promise<std::string> first;
  Future<std::string> got = first.GetFuture();
  Ref<Collector> collector = b_sys_.Spawn<Collector>(std::move(first));
  LookupCounter().Tell(Register{.who = collector});
  EXPECT_EQ(got.Wait(kWait).value(), "hello from the counter");
}

TEST_F(TwoNodes, AnAskWithADeadlineFailsWithDeadlineExceeded) {
  absl::Status s = LookupCounter().Ask(Hold{}, absl::Milliseconds(100)).Wait(kWait).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
}

TEST_F(TwoNodes, ANodeThatShutsDownLeavesPendingAsksFailSayingSoAndSubscribersHearNodeLeft) {
  std::shared_ptr<EventLog> events = Record(b_sys_, *b_);
  Ref<Counter> remote = LookupCounter();
  ASSERT_EQ(events->WaitFor("up a"), 0);
  Future<int64_t> held = remote.Ask(Hold{});  // never answered
  ASSERT_EQ(remote.Ask(Get{}, kWait).Wait(kWait).value(), 0);  // the hold is queued on a
  a_->Shutdown();
  absl::Status s = held.Wait(kWait).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_NE(s.message().find("node a left the cluster"), absl::string_view::npos) << s;
  EXPECT_EQ(events->WaitFor("left a"), 1);
  EXPECT_EQ(events->IncarnationAt(1), a_->incarnation());
  // And new sends fail at once rather than hang; a leave is no failure.
  absl::Status after = remote.Ask(Get{}).Wait(kWait).status();
  EXPECT_EQ(after.code(), absl::StatusCode::kUnavailable) << after;
  EXPECT_EQ(events->WaitFor("down a", absl::Milliseconds(200)), -1);
  EXPECT_EQ(b_->stats().peers, 0u);  // a left: forgotten
}

TEST_F(TwoNodes, LookupOfAnUnknownNameIsNotFoundAndOfAnotherTypeIsRefused) {
  EXPECT_EQ(b_->Lookup<Counter>(address_, "nobody").Wait(kWait).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(b_->Lookup<Collector>(address_, "counter").Wait(kWait).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(TwoNodes, SpawnOnStartsARegisteredActorOnTheOtherNode) {
  a_->AllowSpawn<Counter, CounterArgs>();
  Ref<Counter> spawned = b_->SpawnOn<Counter>(address_, CounterArgs{.start = 10}).Wait(kWait).value();
  EXPECT_TRUE(spawned.is_remote());
  EXPECT_EQ(spawned.Ask(Get{}, kWait).Wait(kWait).value(), 10);
  EXPECT_EQ(a_sys_.stats().spawned, 3u);  // the node's agent, the counter, this one
}

TEST_F(TwoNodes, SpawnOnOfATypeNotAllowedIsNotFound) {
  absl::Status s = b_->SpawnOn<Counter>(address_).Wait(kWait).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
}

TEST_F(TwoNodes, MonitoringARemoteActorDeliversDownWhenItStops) {
  Promise<std::string> down;
  Future<std::string> down_f = down.GetFuture();
  Ref<Counter> remote = LookupCounter();
  Ref<Watcher> watcher = b_sys_.Spawn<Watcher>(std::move(down));
  ASSERT_TRUE(watcher.Ask(Watch{.target = ActorRef(remote)}, kWait).Wait(kWait).ok());
  ASSERT_EQ(remote.Ask(Get{}, kWait).Wait(kWait).value(), 0);  // the watch frame went first
  remote.Tell(Quit{});
  EXPECT_EQ(down_f.Wait(kWait).value(), "OK");  // a normal stop
}

TEST_F(TwoNodes, AMessageForAStoppedActorIsDroppedAndCountedAndAnAskForItIsNotFound) {
  Ref<Counter> remote = LookupCounter();
  remote.Tell(Quit{});
  // The actor stops (asks then fail Unavailable), then its export goes
  // (NotFound): a message away on node a. Bounded, each try a round trip.
  absl::Status s;
  for (int i = 0; i < 10000 && !absl::IsNotFound(s); ++i) {
    s = remote.Ask(Get{}, kWait).Wait(kWait).status();
    ASSERT_TRUE(absl::IsNotFound(s) || absl::IsUnavailable(s) || s.ok()) << s;
  }
  ASSERT_TRUE(absl::IsNotFound(s)) << s;
  remote.Tell(Add{.by = 1});
  EXPECT_EQ(remote.Ask(Get{}, kWait).Wait(kWait).status().code(), absl::StatusCode::kNotFound);
  EXPECT_GE(a_->stats().unknown_targets, 2u);
}

TEST_F(TwoNodes, AMessageBiggerThanTheOutboundBoundIsRefusedWithResourceExhausted) {
  NodeOptions o = Options("c");
  o.max_outbound_bytes = 64 * 1024;
  ActorSystem c_sys({.workers = 1, .name = "c"});
  Node c(c_sys, o);
  Ref<Counter> remote = c.Lookup<Counter>(address_, "counter").Wait(kWait).value();
  absl::Status s = remote.TryTell(Echo{.text = std::string(100 * 1024, 'x')});
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_GE(c.stats().rejected_sends, 1u);
  EXPECT_EQ(remote.Ask(Echo{.text = "still fine"}, kWait).Wait(kWait).value(), "echo: still fine");
}

TEST_F(TwoNodes, AWrongSecretIsRefusedOnBothSidesAndOthersCarryOn) {
  ActorSystem c_sys({.workers = 1, .name = "c"});
  Node c(c_sys, Options("c", "not-the-secret"));
  absl::Status s = c.Lookup<Counter>(address_, "counter").Wait(kWait).status();
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsUnavailable(s) || absl::IsPermissionDenied(s)) << s;
  EXPECT_GE(a_->stats().handshakes_failed + c.stats().handshakes_failed, 1u);
  EXPECT_EQ(LookupCounter().Ask(Get{}, kWait).Wait(kWait).value(), 0);
}

TEST(Node, ANodeListeningOnEveryInterfaceIsReachedByTheAddressItWasDialledBy) {
  ActorSystem a_sys({.workers = 1, .name = "a"}), b_sys({.workers = 1, .name = "b"});
  Node a(a_sys, Options("a")), b(b_sys, Options("b"));
  const std::string bound = a.Listen("0.0.0.0:0").value();
  ASSERT_EQ(bound.rfind("0.0.0.0:", 0), 0u) << bound;
  ASSERT_TRUE(a.Publish("counter", a_sys.Spawn<Counter>()).ok());
  const std::string dial = "127.0.0.1" + bound.substr(bound.find(':'));
  // The reply's address says 0.0.0.0; b routes it by a's name to the
  // connection it dialled.
  Ref<Counter> remote = b.Lookup<Counter>(dial, "counter").Wait(kWait).value();
  remote.Tell(Add{.by = 2});
  EXPECT_EQ(remote.Ask(Get{}, kWait).Wait(kWait).value(), 2);
  Promise<std::string> first;
  Future<std::string> got = first.GetFuture();
  remote.Tell(Register{.who = b_sys.Spawn<Collector>(std::move(first))});
  EXPECT_EQ(got.Wait(kWait).value(), "hello from the counter");
}

TEST(Node, AfterANodeRestartsOldRefsFailAndANewLookupReconnects) {
  ActorSystem a_sys({.workers = 1, .name = "a"}), b_sys({.workers = 1, .name = "b"});
  NodeOptions ob = Options("b");
  ob.reconnect_min = absl::ZeroDuration();  // retry at once: the test needs no waiting
  ob.reconnect_max = absl::ZeroDuration();
  Node b(b_sys, ob);
  std::string address;
  Ref<Counter> old;
  {
    Node a(a_sys, Options("a"));
    address = a.Listen("127.0.0.1:0").value();
    ASSERT_TRUE(a.Publish("counter", a_sys.Spawn<Counter>()).ok());
    old = b.Lookup<Counter>(address, "counter").Wait(kWait).value();
    ASSERT_EQ(old.Ask(Get{}, kWait).Wait(kWait).value(), 0);
  }
  // The node is gone: a send fails (Unavailable), never hangs.
  EXPECT_EQ(old.Ask(Get{}, kWait).Wait(kWait).status().code(), absl::StatusCode::kUnavailable);
  // It comes back on the same address, as a new incarnation.
  Node a2(a_sys, Options("a"));
  ASSERT_EQ(a2.Listen(address).value(), address);
  ASSERT_TRUE(a2.Publish("counter", a_sys.Spawn<Counter>(CounterArgs{.start = 7})).ok());
  Ref<Counter> fresh = b.Lookup<Counter>(address, "counter").Wait(kWait).value();
  EXPECT_EQ(fresh.Ask(Get{}, kWait).Wait(kWait).value(), 7);
  // The old Ref named the previous incarnation: it must not reach the new one.
  absl::Status s = old.Ask(Get{}, kWait).Wait(kWait).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
}

TEST(Node, SendsDuringTheBackoffAfterAFailedConnectFailAtOnce) {
  ActorSystem sys({.workers = 1});
  NodeOptions o = Options("x");
  o.reconnect_min = absl::Hours(1);  // the backoff outlasts the test
  o.reconnect_max = absl::Hours(1);
  Node node(sys, o);
  std::string address;
  {
    ActorSystem other({.workers = 1});
    Node gone(other, Options("gone"));
    address = gone.Listen("127.0.0.1:0").value();
  }
  EXPECT_EQ(node.Lookup<Counter>(address, "c").Wait(kWait).status().code(), absl::StatusCode::kUnavailable);
  absl::Status s = node.Lookup<Counter>(address, "c").Wait(kWait).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("unreachable"), absl::string_view::npos) << s;
  EXPECT_GE(node.stats().rejected_sends, 1u);
}

TEST(Node, ANodeWithoutASecretRefusesToListen) {
  ActorSystem sys({.workers = 1});
  Node node(sys, Options("x", ""));
  EXPECT_EQ(node.Listen("127.0.0.1:0").status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(Node, LookupOfANodeThatDoesNotListenFailsWithUnavailable) {
  ActorSystem sys({.workers = 1});
  Node node(sys, Options("x"));
  // A port that was just free: bound by a listener that then went away.
  std::string address;
  {
    ActorSystem other({.workers = 1});
    Node gone(other, Options("gone"));
    address = gone.Listen("127.0.0.1:0").value();
  }
  absl::Status s = node.Lookup<Counter>(address, "counter").Wait(kWait).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
}

}  // namespace
}  // namespace troupe::nettest
