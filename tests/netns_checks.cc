// The checks of tests/netns_test.sh, which creates three network
// namespaces on one bridge and runs this binary with their names and
// addresses in the environment:
//
//   TROUPE_IP                      path of ip (iproute2)
//   TROUPE_NETNS_A, _B, _C         namespace names
//   TROUPE_NETNS_ADDR_A, _B, _C    the address of each on the bridge
//
// Each node process runs in one namespace ("ip netns exec"), so everything
// between nodes crosses the bridge, as between machines: nothing of one
// namespace is reachable over another's loopback.

#include <signal.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/node_processes.h"

namespace troupe::tests {
namespace {

std::string Env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  return v != nullptr ? v : "";
}

class Namespaces : public NodeProcesses {
 protected:
  void SetUp() override {
    ip_ = Env("TROUPE_IP");
    for (const char* host : {"A", "B", "C"}) {
      ns_.push_back(Env(std::string("TROUPE_NETNS_") + host));
      addr_.push_back(Env(std::string("TROUPE_NETNS_ADDR_") + host));
      ASSERT_FALSE(ns_.back().empty() || addr_.back().empty())
          << "run by tests/netns_test.sh, which sets up the namespaces";
    }
    ASSERT_FALSE(ip_.empty());
  }

  // The prefix that runs a command in host i's namespace.
  std::vector<std::string> In(int i) const { return {ip_, "netns", "exec", ns_[i]}; }

  std::string ip_;
  std::vector<std::string> ns_, addr_;
};

TEST_F(Namespaces, APingerAsksAndTellsAPongerInAnotherNamespace) {
  const std::string pingpong = Runfile("examples/remote_pingpong");
  ChildProcess* ponger = Start("ponger", {pingpong, "--listen=" + addr_[0] + ":7100", "--name=ponger", kSecret}, In(0));
  ASSERT_NE(ponger, nullptr);
  EXPECT_NE(Line(ponger, "listening on " + addr_[0] + ":7100"), "");

  ChildProcess* pinger = Start("pinger",
                               {pingpong, "--peer=" + addr_[0] + ":7100", "--name=pinger", kSecret,
                                "--round_trips=300", "--tells=500"},
                               In(1));
  EXPECT_NE(Line(pinger, "remote_pingpong: 300 round trips"), "");
  EXPECT_NE(Line(pinger, "the ponger received 500, 0 out of order"), "");
  EXPECT_TRUE(ExitsCleanly(pinger));

  ponger->Signal(SIGTERM);
  EXPECT_TRUE(ExitsCleanly(ponger));
}

// The commands of docs/cluster.md: every node on the any-address, port
// 7000; b and c given only a. c learns b from a, as a's peer at the host b
// connected from, and runs the workload with a client on each node.
TEST_F(Namespaces, ThreeNodesOnTheAnyAddressJoinThroughOneAndReportALoss) {
  const std::string a_at = addr_[0] + ":7000";
  ChildProcess *a, *b, *c;
  EXPECT_EQ(StartCounterNode("a", "0.0.0.0:7000", {}, &a, In(0)), "0.0.0.0:7000");
  ASSERT_NE(a, nullptr);
  StartCounterNode("b", "0.0.0.0:7000", {"--peer=" + a_at, "--increments=0"}, &b, In(1));
  ASSERT_NE(b, nullptr);
  StartCounterNode("c", "0.0.0.0:7000", {"--peer=" + a_at, "--increments=1000", "--keys=100"}, &c, In(2));
  ASSERT_NE(c, nullptr);
  EXPECT_NE(Line(c, "c: ready: joined a cluster of 3 nodes, 6 shards"), "");
  EXPECT_NE(Line(b, "b: member c joined (2 shards)"), "");
  EXPECT_NE(Line(a, "a: member c joined (2 shards)"), "");
  for (const char* client : {"a/client-0", "b/client-0", "c/client-0"}) {
    EXPECT_NE(Line(c, std::string(client) + ": 1000 increments sent"), "");
  }
  EXPECT_NE(Line(c, "verified: 100 keys read back, each as expected (30..30); they sum to 3000 = 3000 sent"), "");
  EXPECT_NE(Line(c, "c: workload done"), "");

  // "ip netns exec" runs the node in its own process: this pid is a's.
  a->Signal(SIGKILL);
  EXPECT_NE(Ended(a).find("killed by signal 9"), std::string::npos);
  for (ChildProcess* p : {b, c}) {
    const std::string me = p->name() + ": ";
    EXPECT_NE(Line(p, me + "the pending ask to node a (WatchLeave) failed: UNAVAILABLE"), "");
    EXPECT_NE(Line(p, me + "node a is down"), "");
    EXPECT_NE(Line(p, me + "an ask to a/shard-0 after the loss: UNAVAILABLE"), "");
  }

  // b leaves; c hears it as a leave, not a failure.
  b->Signal(SIGTERM);
  EXPECT_NE(Line(c, "c: node b left the cluster"), "");
  EXPECT_TRUE(ExitsCleanly(b));
  c->Signal(SIGTERM);
  EXPECT_TRUE(ExitsCleanly(c));
}

}  // namespace
}  // namespace troupe::tests
