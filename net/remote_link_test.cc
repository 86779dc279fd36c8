// Actor links across two nodes in one process, on loopback: a remote
// actor's stop reaches the local linked actor as an exit and back, and a
// lost connection is an exit with Unavailable on both sides (Erlang's
// noconnection).

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/actor_system.h"
#include "gtest/gtest.h"
#include "net/node.h"
#include "net/node_test_util.h"
#include "net/testdata/node_test_messages.troupe.h"

namespace troupe::nettest {
namespace {

// How an actor stopped, set from its OnStop on a worker, read by the test.
class StopRecord {
 public:
  void Set(const absl::Status& reason) {
    std::lock_guard<std::mutex> lock(mu_);
    reason_ = reason;
  }
  // Polls until the actor stopped or `timeout` passed.
  std::optional<absl::Status> WaitFor(absl::Duration timeout = kWait) {
    (void)Eventually([&] { return Peek().has_value(); }, timeout);
    return Peek();
  }
  std::optional<absl::Status> Peek() {
    std::lock_guard<std::mutex> lock(mu_);
    return reason_;
  }

 private:
  std::mutex mu_;
  std::optional<absl::Status> reason_;
};

struct LinkTo {
  ActorRef other;
};
struct UnlinkFrom {
  ActorRef other;
};
struct Crash {};
// Links with `other` and, in the same handler, fails (or stops normally):
// the stop races the far side's watch of this actor.
struct LinkThenCrash {
  ActorRef other;
};
struct LinkThenStop {
  ActorRef other;
};

// Lives on the test's side; links with actors of the other node.
struct Linker : Actor<Linker> {
  explicit Linker(std::shared_ptr<StopRecord> record) : record(std::move(record)) {}
  void OnStop(const absl::Status& reason) { record->Set(reason); }
  bool On(const LinkTo& m) {
    Link(m.other);
    return true;
  }
  bool On(const UnlinkFrom& m) {
    Unlink(m.other);
    return true;
  }
  void On(const Crash&) { throw std::runtime_error("the linker broke"); }
  void On(const LinkThenCrash& m) {
    Link(m.other);
    throw std::runtime_error("the linker broke");
  }
  void On(const LinkThenStop& m) {
    Link(m.other);
    Stop();
  }
  std::shared_ptr<StopRecord> record;
};

// Watches an actor on its own node and records its exit reason.
struct Observer : Actor<Observer> {
  explicit Observer(std::shared_ptr<StopRecord> record) : record(std::move(record)) {}
  void On(const ActorRef& target) { Monitor(target); }
  void On(const Down& d) { record->Set(d.reason); }
  std::shared_ptr<StopRecord> record;
};

struct TwoNodes {
  TwoNodes() : a_sys({.workers = 1, .name = "a"}), b_sys({.workers = 1, .name = "b"}), a(a_sys, QuickOptions("a")), b(b_sys, QuickOptions("b")) {}
  ActorSystem a_sys, b_sys;
  Node a, b;
};

// A counter published on node a, with an observer there recording how it
// stopped; node b's Ref to it, and a Linker on node b.
struct WatchedCounter {
  WatchedCounter() {
    const std::string address = n.a.Listen("127.0.0.1:0").value();
    Ref<Counter> counter = n.a_sys.Spawn<Counter>();
    published = n.a.Publish("counter", counter);
    n.a_sys.Spawn<Observer>(counter_stopped).Tell(ActorRef(counter));
    remote = n.b.Lookup<Counter>(address, "counter").Wait(kWait).value();
    linker = n.b_sys.Spawn<Linker>(record);
  }
  TwoNodes n;
  absl::Status published;
  std::shared_ptr<StopRecord> counter_stopped = std::make_shared<StopRecord>();
  Ref<Counter> remote;
  std::shared_ptr<StopRecord> record = std::make_shared<StopRecord>();
  Ref<Linker> linker;
};

TEST(RemoteLink, ARemoteActorsFailureStopsTheLinkedLocalActorWithItsReason) {
  TwoNodes n;
  const std::string address = n.a.Listen("127.0.0.1:0").value();
  ASSERT_TRUE(n.a.Publish("counter", n.a_sys.Spawn<Counter>()).ok());
  Ref<Counter> remote = n.b.Lookup<Counter>(address, "counter").Wait(kWait).value();
  auto record = std::make_shared<StopRecord>();
  Ref<Linker> linker = n.b_sys.Spawn<Linker>(record);
  ASSERT_TRUE(linker.Ask(LinkTo{remote}).Wait(kWait).ok());
  // The link frame is on its way; an ask over the same connection after it
  // means the far side has it.
  ASSERT_TRUE(remote.Ask(Get{}, kWait).Wait(kWait).ok());
  remote.Stop(absl::DataLossError("the counter lost its data"));
  std::optional<absl::Status> stopped = record->WaitFor();
  ASSERT_TRUE(stopped.has_value()) << "the linked actor kept running";
  EXPECT_EQ(stopped->code(), absl::StatusCode::kDataLoss) << *stopped;
  EXPECT_EQ(stopped->message(), "the counter lost its data");
}

TEST(RemoteLink, ALocalActorsFailureStopsTheLinkedRemoteActor) {
  WatchedCounter w;
  ASSERT_TRUE(w.published.ok()) << w.published;
  ASSERT_TRUE(w.linker.Ask(LinkTo{w.remote}).Wait(kWait).ok());
  ASSERT_TRUE(w.remote.Ask(Get{}, kWait).Wait(kWait).ok());
  w.linker.Tell(Crash{});
  std::optional<absl::Status> stopped = w.counter_stopped->WaitFor();
  ASSERT_TRUE(stopped.has_value()) << "the remote linked actor kept running";
  EXPECT_EQ(stopped->code(), absl::StatusCode::kInternal) << *stopped;
  EXPECT_NE(stopped->message().find("the linker broke"), absl::string_view::npos) << *stopped;
}

TEST(RemoteLink, AnActorThatFailsRightAfterLinkingStopsTheRemoteActorWithItsReason) {
  WatchedCounter w;
  ASSERT_TRUE(w.published.ok()) << w.published;
  // The linker has stopped before node b watches it for the export and
  // before node a's watch of it arrives.
  w.linker.Tell(LinkThenCrash{w.remote});
  std::optional<absl::Status> stopped = w.counter_stopped->WaitFor();
  ASSERT_TRUE(stopped.has_value()) << "the remote linked actor kept running";
  EXPECT_EQ(stopped->code(), absl::StatusCode::kInternal) << *stopped;
  EXPECT_NE(stopped->message().find("the linker broke"), absl::string_view::npos) << *stopped;
}

TEST(RemoteLink, AnActorThatStopsNormallyRightAfterLinkingLeavesTheRemoteActorRunning) {
  WatchedCounter w;
  ASSERT_TRUE(w.published.ok()) << w.published;
  w.linker.Tell(LinkThenStop{w.remote});
  std::optional<absl::Status> linker_stopped = w.record->WaitFor();
  ASSERT_TRUE(linker_stopped.has_value());
  ASSERT_TRUE(linker_stopped->ok()) << *linker_stopped;
  // The first answer comes after node a handled the link frame and sent
  // its watch of the linker; the second after node a handled whatever
  // node b sent in return (an exit overtakes the queued ask).
  for (int i = 0; i < 2; ++i) {
    Result<int64_t> got = w.remote.Ask(Get{}, kWait).Wait(kWait);
    ASSERT_TRUE(got.ok()) << "ask " << i << ": " << got.status();
  }
  EXPECT_FALSE(w.counter_stopped->Peek().has_value()) << "a normal stop of a linked actor stopped it: " << *w.counter_stopped->Peek();
}

TEST(RemoteLink, AnUnlinkedRemoteActorIsNotStopped) {
  TwoNodes n;
  const std::string address = n.a.Listen("127.0.0.1:0").value();
  ASSERT_TRUE(n.a.Publish("counter", n.a_sys.Spawn<Counter>()).ok());
  Ref<Counter> remote = n.b.Lookup<Counter>(address, "counter").Wait(kWait).value();
  auto record = std::make_shared<StopRecord>();
  Ref<Linker> linker = n.b_sys.Spawn<Linker>(record);
  ASSERT_TRUE(linker.Ask(LinkTo{remote}).Wait(kWait).ok());
  ASSERT_TRUE(linker.Ask(UnlinkFrom{remote}).Wait(kWait).ok());
  linker.Tell(Crash{});
  ASSERT_TRUE(record->WaitFor().has_value());
  // Sends after the crash travel behind anything it caused.
  remote.Tell(Add{.by = 2});
  Result<int64_t> got = remote.Ask(Get{}, kWait).Wait(kWait);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, 2);
}

TEST(RemoteLink, LosingTheConnectionStopsBothLinkedActorsWithUnavailable) {
  TcpRelay relay;
  TwoNodes n;
  const std::string address = n.a.Listen("127.0.0.1:0").value();
  relay.SetTarget(address);
  Ref<Counter> counter = n.a_sys.Spawn<Counter>();
  ASSERT_TRUE(n.a.Publish("counter", counter).ok());
  auto counter_stopped = std::make_shared<StopRecord>();
  n.a_sys.Spawn<Observer>(counter_stopped).Tell(ActorRef(counter));
  Ref<Counter> remote = n.b.Lookup<Counter>(relay.address(), "counter").Wait(kWait).value();
  auto record = std::make_shared<StopRecord>();
  Ref<Linker> linker = n.b_sys.Spawn<Linker>(record);
  ASSERT_TRUE(linker.Ask(LinkTo{remote}).Wait(kWait).ok());
  ASSERT_TRUE(remote.Ask(Get{}, kWait).Wait(kWait).ok());
  relay.Pause();  // the connection goes without a leave
  std::optional<absl::Status> stopped = record->WaitFor();
  ASSERT_TRUE(stopped.has_value()) << "the local linked actor kept running";
  EXPECT_EQ(stopped->code(), absl::StatusCode::kUnavailable) << *stopped;
  std::optional<absl::Status> far = counter_stopped->WaitFor();
  ASSERT_TRUE(far.has_value()) << "the remote linked actor kept running";
  EXPECT_EQ(far->code(), absl::StatusCode::kUnavailable) << *far;
}

}  // namespace
}  // namespace troupe::nettest
