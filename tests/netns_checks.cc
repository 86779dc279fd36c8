// The checks of tests/netns_test.sh, which creates two network namespaces
// joined by a veth pair and runs this binary with their names and
// addresses in the environment:
//
//   TROUPE_IP                  path of ip (iproute2)
//   TROUPE_NETNS_A, _B         namespace names
//   TROUPE_NETNS_ADDR_A, _B    the address of each end of the veth pair
//
// Each node process runs in one namespace ("ip netns exec"), listening on
// its namespace's address, so everything between the nodes crosses the
// veth pair: nothing is reachable over loopback from the other side.

#include <signal.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/node_processes.h"

namespace troupe::tests {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

class Namespaces : public NodeProcesses {
 protected:
  void SetUp() override {
    ip_ = Env("TROUPE_IP");
    a_ = Env("TROUPE_NETNS_A");
    b_ = Env("TROUPE_NETNS_B");
    addr_a_ = Env("TROUPE_NETNS_ADDR_A");
    addr_b_ = Env("TROUPE_NETNS_ADDR_B");
    ASSERT_FALSE(ip_.empty() || a_.empty() || b_.empty() || addr_a_.empty() || addr_b_.empty())
        << "run by tests/netns_test.sh, which sets up the namespaces";
  }

  std::vector<std::string> In(const std::string& ns) const { return {ip_, "netns", "exec", ns}; }

  std::string ip_, a_, b_, addr_a_, addr_b_;
};

TEST_F(Namespaces, APingerAsksAndTellsAPongerInAnotherNamespace) {
  const std::string pingpong = Runfile("examples/remote_pingpong");
  ChildProcess* ponger =
      Start("ponger", {pingpong, "--listen=" + addr_a_ + ":0", "--name=ponger", kSecret}, In(a_));
  ASSERT_NE(ponger, nullptr);
  const std::string address = AddressIn(Line(ponger, "listening on "));
  ASSERT_EQ(address.rfind(addr_a_ + ":", 0), 0u) << address;

  ChildProcess* pinger = Start(
      "pinger", {pingpong, "--peer=" + address, "--name=pinger", kSecret, "--round_trips=300", "--tells=500"}, In(b_));
  EXPECT_NE(Line(pinger, "remote_pingpong: 300 round trips"), "");
  EXPECT_NE(Line(pinger, "the ponger received 500, 0 out of order"), "");
  EXPECT_TRUE(ExitsCleanly(pinger));

  ponger->Signal(SIGTERM);
  EXPECT_TRUE(ExitsCleanly(ponger));
}

TEST_F(Namespaces, CounterNodesInTwoNamespacesShareTheWorkAndReportALoss) {
  ChildProcess *a, *b;
  const std::string a_address = StartCounterNode("a", addr_a_ + ":0", {}, &a, In(a_));
  ASSERT_EQ(a_address.rfind(addr_a_ + ":", 0), 0u) << a_address;
  StartCounterNode("b", addr_b_ + ":0", {"--peer=" + a_address, "--increments=2000", "--keys=100"}, &b, In(b_));
  ASSERT_NE(b, nullptr);
  EXPECT_NE(Line(a, "a: member b joined (2 shards)"), "");
  EXPECT_NE(Line(b, "a/client-0: 2000 increments sent"), "");
  EXPECT_NE(Line(b, "b/client-0: 2000 increments sent"), "");
  EXPECT_NE(Line(b, "verified: 100 keys read back, each as expected (40..40); they sum to 4000 = 4000 sent"), "");
  EXPECT_NE(Line(b, "b: workload done"), "");

  // "ip netns exec" runs the node in its own process: this pid is a's.
  a->Signal(SIGKILL);
  EXPECT_NE(Ended(a).find("killed by signal 9"), std::string::npos);
  EXPECT_NE(Line(b, "b: the pending ask to node a (WatchLeave) failed: UNAVAILABLE"), "");
  EXPECT_NE(Line(b, "b: node a is down"), "");
  EXPECT_NE(Line(b, "b: an ask to a/shard-0 after the loss: UNAVAILABLE"), "");

  b->Signal(SIGTERM);
  EXPECT_TRUE(ExitsCleanly(b));
}

// The two-machine commands of docs/cluster.md as first written: both nodes
// on the any-address. Disabled: net/ registers a node it dialled only by
// the address it dialled, not by name, so the Ref that b's lookup returns
// carries a's own listen address, "0.0.0.0:7000", and b dials itself with
// it (refused: "the peer calls itself 'b'"). Run it with
// --gtest_also_run_disabled_tests once a dialled peer is found by name.
TEST_F(Namespaces, DISABLED_NodesListeningOnTheAnyAddressWorkTogether) {
  ChildProcess *a, *b;
  const std::string a_address = StartCounterNode("a", "0.0.0.0:7000", {}, &a, In(a_));
  ASSERT_EQ(a_address, "0.0.0.0:7000");
  StartCounterNode("b", "0.0.0.0:7000", {"--peer=" + addr_a_ + ":7000", "--increments=1000", "--keys=100"}, &b,
                   In(b_));
  EXPECT_NE(Line(b, "verified: 100 keys read back"), "");
  a->Signal(SIGTERM);
  b->Signal(SIGTERM);
  EXPECT_TRUE(ExitsCleanly(a));
  EXPECT_TRUE(ExitsCleanly(b));
}

}  // namespace
}  // namespace troupe::tests
