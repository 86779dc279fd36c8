// Node processes of the examples on loopback: each test starts them (ports
// the kernel picks, read from their "listening on" lines), checks what
// they print, and ends them by pid. Nothing sleeps: every wait is for a
// line of output or an exit, with a deadline (tests/node_processes.h).

#include <signal.h>

#include <string>

#include "gtest/gtest.h"
#include "tests/node_processes.h"

namespace troupe::tests {
namespace {

using Processes = NodeProcesses;

TEST_F(Processes, APingerAsksAndTellsAPongerInAnotherProcess) {
  const std::string pingpong = Runfile("examples/remote_pingpong");
  ChildProcess* ponger = Start("ponger", {pingpong, "--listen=127.0.0.1:0", "--name=ponger", kSecret});
  ASSERT_NE(ponger, nullptr);
  const std::string address = AddressIn(Line(ponger, "listening on "));
  ASSERT_FALSE(address.empty());

  ChildProcess* pinger =
      Start("pinger", {pingpong, "--peer=" + address, "--name=pinger", kSecret, "--round_trips=300", "--tells=500"});
  EXPECT_NE(Line(pinger, "remote_pingpong: 300 round trips"), "");
  EXPECT_NE(Line(pinger, "the ponger received 500, 0 out of order"), "");
  EXPECT_TRUE(ExitsCleanly(pinger));

  // A second pinger's tells are counted apart from the first's.
  ChildProcess* again =
      Start("pinger-2", {pingpong, "--peer=" + address, "--name=pinger-2", kSecret, "--round_trips=10", "--tells=20"});
  EXPECT_NE(Line(again, "the ponger received 20, 0 out of order"), "");
  EXPECT_TRUE(ExitsCleanly(again));

  ponger->Signal(SIGTERM);
  EXPECT_NE(Line(ponger, "ponger: signal 15, shutting down"), "");
  EXPECT_TRUE(ExitsCleanly(ponger));
}

TEST_F(Processes, ALostNodeIsReportedByTheOtherWhosePendingAsksFailAtOnce) {
  ChildProcess *a, *b;
  const std::string a_address = StartCounterNode("a", "127.0.0.1:0", {}, &a);
  ASSERT_FALSE(a_address.empty());
  // b joins a, then runs the workload with a client on each node: tells
  // from each client to the shards of both nodes, asks from b to both.
  StartCounterNode("b", "127.0.0.1:0", {"--peer=" + a_address, "--increments=2000", "--keys=100"}, &b);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(Line(a, "a: member b joined (2 shards)"), "");
  EXPECT_NE(Line(b, "b: ready: joined a cluster of 2 nodes, 4 shards"), "");
  EXPECT_NE(Line(b, "a/client-0: 2000 increments sent"), "");
  EXPECT_NE(Line(b, "b/client-0: 2000 increments sent"), "");
  EXPECT_NE(Line(b, "verified: 100 keys read back, each as expected (40..40); they sum to 4000 = 4000 sent"), "");
  EXPECT_NE(Line(b, "b: workload done"), "");

  // Killing a (no chance to leave) is a NodeDown at b, not a NodeLeft, and
  // a new ask to a shard of a fails at once.
  a->Signal(SIGKILL);
  EXPECT_NE(Ended(a).find("killed by signal 9"), std::string::npos);
  EXPECT_NE(Line(b, "b: node a is down (UNAVAILABLE"), "");
  EXPECT_NE(Line(b, "shards unavailable: a/shard-0, a/shard-1"), "");
  EXPECT_NE(Line(b, "b: an ask to a/shard-0 after the loss: UNAVAILABLE"), "");

  // b carries on, and leaves cleanly.
  b->Signal(SIGTERM);
  EXPECT_NE(Line(b, "b: stopped"), "");
  EXPECT_TRUE(ExitsCleanly(b));
}

TEST_F(Processes, ANodeThatLeavesIsReportedAsLeftNotDown) {
  ChildProcess *a, *b;
  const std::string a_address = StartCounterNode("a", "127.0.0.1:0", {}, &a);
  ASSERT_FALSE(a_address.empty());
  StartCounterNode("b", "127.0.0.1:0", {"--peer=" + a_address, "--increments=0"}, &b);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(Line(a, "a: member b joined"), "");

  b->Signal(SIGTERM);
  EXPECT_NE(Line(a, "a: node b left the cluster; its shards went with it: b/shard-0, b/shard-1"), "");
  EXPECT_TRUE(ExitsCleanly(b));
  a->Signal(SIGTERM);
  EXPECT_TRUE(ExitsCleanly(a));
  for (const std::string& line : a->Tail()) EXPECT_EQ(line.find("is down"), std::string::npos) << line;
}

TEST_F(Processes, AClientThatDoesNotListenFindsEveryNodeFromOneAndChecksTheTotals) {
  ChildProcess *a, *b;
  const std::string a_address = StartCounterNode("a", "127.0.0.1:0", {}, &a);
  ASSERT_FALSE(a_address.empty());
  StartCounterNode("b", "127.0.0.1:0", {"--peer=" + a_address, "--increments=0"}, &b);
  ASSERT_NE(b, nullptr);

  // Given only a, the client learns b from a's directory.
  ChildProcess* client = Start("client", {Runfile("examples/counter_service"), "--peer=" + a_address,
                                          "--name=client", kSecret, "--increments=500", "--keys=50", "--clients=2"});
  EXPECT_NE(Line(client, "workload: 4 clients (2 on each of 2 nodes)"), "");
  EXPECT_NE(Line(client, "verified: 50 keys read back, each as expected (40..40); they sum to 2000 = 2000 sent"), "");
  EXPECT_TRUE(ExitsCleanly(client));

  a->Signal(SIGTERM);
  b->Signal(SIGTERM);
  EXPECT_TRUE(ExitsCleanly(a));
  EXPECT_TRUE(ExitsCleanly(b));
}

TEST_F(Processes, ANodeWithAnotherSecretCannotJoin) {
  ChildProcess* a;
  const std::string a_address = StartCounterNode("a", "127.0.0.1:0", {}, &a);
  ASSERT_FALSE(a_address.empty());
  ChildProcess* stranger = Start("stranger", {Runfile("examples/counter_service"), "--listen=127.0.0.1:0",
                                              "--name=stranger", "--secret=not-the-secret", "--peer=" + a_address,
                                              "--join_timeout=1s"});
  // It retries (one line each) until --join_timeout, then gives up.
  EXPECT_NE(Line(stranger, "stranger: join attempt 1 failed ("), "");
  EXPECT_NE(Line(stranger, "stranger: could not join any node of --peer"), "");
  EXPECT_NE(Ended(stranger).find("exited 1"), std::string::npos);
  a->Signal(SIGTERM);
  EXPECT_TRUE(ExitsCleanly(a));
}

}  // namespace
}  // namespace troupe::tests
