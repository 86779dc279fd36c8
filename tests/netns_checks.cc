// The checks of tests/netns_test.sh (tests/namespaces.h): a pinger and a
// ponger, and three counter nodes, each in a namespace of its own; the
// three over TLS too, with certificates from tools/make-certs.

#include <signal.h>

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/namespaces.h"

namespace troupe::tests {
namespace {

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
// 7000, advertising its own; c runs the workload with a client on each
// node. Killed, a is reported down by b and c, which serve its keys; then
// b leaves, and c hears it as a leave, not a failure.
TEST_F(Namespaces, ThreeNodesOnTheAnyAddressServeTheWorkloadAndReportALossAndALeave) {
  ChildProcess *a, *b, *c;
  ASSERT_NO_FATAL_FAILURE(StartThree({"--increments=1000", "--keys=100"}, &a, &b, &c));
  for (const char* client : {"a/client-0", "b/client-0", "c/client-0"}) {
    EXPECT_NE(Line(c, std::string(client) + ": 1000 increments sent"), "");
  }
  EXPECT_NE(Line(c, "verified: 100 keys read back, each as expected (30..30); they sum to 3000 = 3000 sent"), "");
  EXPECT_NE(Line(c, "c: workload done"), "");

  // "ip netns exec" runs the node in its own process: this pid is a's.
  a->Signal(SIGKILL);
  EXPECT_NE(Ended(a).find("killed by signal 9"), std::string::npos);
  for (ChildProcess* p : {b, c}) EXPECT_NE(Line(p, p->name() + ": member a up -> down"), "");
  ExpectWorkloadVerifies("client", addr_[1] + ":7000", 2, In(2));

  b->Signal(SIGTERM);
  EXPECT_NE(Line(c, "c: member b up -> leaving"), "");
  EXPECT_NE(Line(c, "c: member b leaving -> removed"), "");
  EXPECT_TRUE(ExitsCleanly(b));
  c->Signal(SIGTERM);
  EXPECT_TRUE(ExitsCleanly(c));
}

// The same cluster over TLS: certificates from tools/make-certs, no shared
// secret. Tells and asks cross the namespaces; a client finds b and c from
// a alone; a node whose certificate comes from another CA is refused by a
// (it trusts a's CA, so the refusal is a's), and never becomes a member.
TEST_F(Namespaces, ThreeNodesOverTlsServeTellsAndAsksAndRefuseANodeOfAnotherCa) {
  const std::string certs = MakeCa("cluster");
  ASSERT_FALSE(certs.empty());
  ASSERT_TRUE(MakeNodeCerts(certs, {"a", "b", "c", "client"}));
  const std::string other = MakeCa("other");
  ASSERT_FALSE(other.empty());
  ASSERT_TRUE(MakeNodeCerts(other, {"d"}));

  ChildProcess *a, *b, *c;
  ASSERT_NO_FATAL_FAILURE(StartThree({"--increments=1000", "--keys=100"}, &a, &b, &c, certs));
  for (ChildProcess* p : {a, b, c}) {
    EXPECT_NE(Line(p, "TLS on: certificate " + certs + "/" + p->name() + ".pem"), "");
  }
  for (const char* client : {"a/client-0", "b/client-0", "c/client-0"}) {
    EXPECT_NE(Line(c, std::string(client) + ": 1000 increments sent"), "");
  }
  EXPECT_NE(Line(c, "verified: 100 keys read back, each as expected (30..30); they sum to 3000 = 3000 sent"), "");

  // d, in b's namespace, trusts the cluster's CA but has a certificate of
  // another, and lists itself with a, b and c: a refuses it at the TLS
  // handshake, every attempt, and d never reaches a majority.
  const std::string a_at = addr_[0] + ":7000";
  const std::string d_at = addr_[1] + ":7001";
  std::vector<std::string> d_flags = {Runfile("examples/counter_service"), "--listen=0.0.0.0:7001", "--name=d",
                                      "--advertise=" + d_at, "--workers=1", "--join_timeout=1s",
                                      "--cluster=" + StaticCluster({a_at, addr_[1] + ":7000", addr_[2] + ":7000", d_at})};
  for (const std::string& flag : TlsFlags(other, "d", certs)) d_flags.push_back(flag);
  ChildProcess* d = Start("d", d_flags, In(1));
  const std::string refused = Line(a, "UNAUTHENTICATED: TLS handshake: the peer's certificate is refused");
  EXPECT_NE(refused.find("connection with " + addr_[1] + ":"), std::string::npos) << refused;
  EXPECT_NE(Line(d, "the peer refused this node's certificate"), "");
  EXPECT_NE(Line(d, "d: could not join the cluster within 1s: 1 of 4 listed members up"), "");
  EXPECT_NE(Ended(d).find("exited 1"), std::string::npos);

  // A TLS client in c's namespace, given only a: the cluster is a, b and c.
  std::vector<std::string> report = {Runfile("examples/counter_service"), "--peer=" + a_at, "--workers=1",
                                     "--report"};
  for (const std::string& flag : TlsFlags(certs, "client")) report.push_back(flag);
  ChildProcess* client = Start("client", report, In(2));
  EXPECT_NE(Line(client, "a sees: b, c"), "");
  EXPECT_NE(Line(client, "b sees: a, c"), "");
  EXPECT_NE(Line(client, "c sees: a, b"), "");
  EXPECT_TRUE(ExitsCleanly(client));
  EXPECT_FALSE(a->WaitForLine("member d", absl::Now()).ok()) << "d joined";

  for (ChildProcess* p : {a, b, c}) p->Signal(SIGTERM);
  for (ChildProcess* p : {a, b, c}) EXPECT_TRUE(ExitsCleanly(p));
}

}  // namespace
}  // namespace troupe::tests
