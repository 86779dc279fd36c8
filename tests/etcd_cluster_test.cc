// counter_service nodes on loopback whose membership and counts are in a
// real etcd (started by the test with its own data directory, stopped by
// it): a member killed while clients send, a member stopped past its lease,
// and etcd itself killed and started again during a workload. The lines
// the tests wait for are listed in docs/cluster.md ("Lines the tests rely
// on"). Nothing sleeps: every wait is for a line or an exit, with a
// deadline; every process is ended by pid (tests/node_processes.h).

#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cluster/etcd/etcd_test_server.h"
#include "gtest/gtest.h"
#include "tests/node_processes.h"

namespace troupe::tests {
namespace {

using cluster::etcd::EtcdServer;

class EtcdCluster : public NodeProcesses {
 protected:
  void SetUp() override {
    const absl::Status started = etcd_.Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  // node-1, node-2 and node-3 on fresh loopback addresses, registered in
  // the test's etcd with a lease of `ttl`; each hosts when this returns.
  void StartThree(absl::Duration ttl) {
    const std::vector<std::string> at = FreeAddresses(3);
    ASSERT_EQ(at.size(), 3u);
    const std::vector<std::string> flags = {"--lease_ttl=" + absl::FormatDuration(ttl)};
    std::vector<ChildProcess*> n =
        StartCluster({"node-1", "node-2", "node-3"}, at, "etcd://" + etcd_.client_address(), {flags, flags, flags});
    for (int i = 0; i < 3; ++i) {
      address_[i] = at[i];
      node_[i] = n[i];
      ASSERT_NE(node_[i], nullptr);
    }
  }

  // Node i again, at its address.
  ChildProcess* StartNode(int i, absl::Duration ttl) {
    return StartCounterNode(absl::StrCat("node-", i + 1), address_[i], "etcd://" + etcd_.client_address(),
                            {"--lease_ttl=" + absl::FormatDuration(ttl)});
  }

  void StopAll(const std::vector<ChildProcess*>& nodes) {
    for (ChildProcess* p : nodes) p->Signal(SIGTERM);
    for (ChildProcess* p : nodes) EXPECT_TRUE(ExitsCleanly(p));
  }

  EtcdServer etcd_;
  ChildProcess* node_[3] = {nullptr, nullptr, nullptr};
  std::string address_[3];
};

// The failover: a client on every node asks (every increment an
// Add, acknowledged once written to etcd) while node-3 is killed. The
// others see it removed within the lease TTL and 1 s, its keys come back
// on them with their counts from etcd, the restarted node-3 is a new
// incarnation that serves again, and the final read of every key holds
// each acknowledged increment exactly once.
TEST_F(EtcdCluster, AKilledMemberIsRemovedWithinTheTtlAndNoAcknowledgedIncrementIsLostOrDoubled) {
  constexpr absl::Duration kTtl = absl::Seconds(2);
  ASSERT_NO_FATAL_FAILURE(StartThree(kTtl));
  ChildProcess* client = StartCounterClient(
      "client", address_[0],
      {"--increments=400", "--keys=40", "--ask_every=1", "--check_acked", "--pace=2ms", "--timeout=40s"});
  EXPECT_NE(Line(client, "workload: 3 clients (1 on each of 3 nodes)"), "");

  const size_t from1 = node_[0]->LinesSoFar(), from2 = node_[1]->LinesSoFar();
  node_[2]->Signal(SIGKILL);
  const absl::Time killed = absl::Now();
  EXPECT_NE(Ended(node_[2]).find("killed by signal 9"), std::string::npos);
  for (auto [p, from] : {std::pair{node_[0], from1}, std::pair{node_[1], from2}}) {
    absl::StatusOr<std::string> removed =
        p->WaitForLine(p->name() + ": member node-3 up -> removed", killed + kTtl + absl::Seconds(1), from);
    EXPECT_TRUE(removed.ok()) << p->name() << ": " << removed.status();
  }
  std::printf("node-3 removed %.0f ms after the kill (lease TTL %s)\n",
              absl::ToDoubleMilliseconds(absl::Now() - killed), absl::FormatDuration(kTtl).c_str());

  // Every key read back, node-3's from the survivors (which activated them
  // there, loading their counts from etcd): each acknowledged increment
  // counted once.
  EXPECT_NE(Line(client, "checked: 40 keys read back; every acknowledged increment is counted once ("), "");
  Ended(client);

  // Started again at its address: a new incarnation, up on the others,
  // that takes its shards back from the survivors by handoff (the "moved
  // in" column of its row in a --report; reports until it shows).
  ChildProcess* again = StartNode(2, kTtl);
  ASSERT_TRUE(Ready(again));
  for (auto [p, from] : {std::pair{node_[0], from1}, std::pair{node_[1], from2}}) {
    EXPECT_TRUE(Prints(p, p->name() + ": member node-3 joining -> up", absl::Now() + kWait, from)) << p->name();
  }
  std::vector<std::string> row;
  const absl::Time deadline = absl::Now() + kWait;
  for (int i = 0; i < 50 && (row.size() != 9 || row[4] == "0") && absl::Now() < deadline; ++i) {
    ChildProcess* report = StartCounterClient(absl::StrCat("report-", i), address_[0], {"--report"});
    row = absl::StrSplit(Line(report, "node-3       "), ' ', absl::SkipEmpty());
    EXPECT_TRUE(ExitsCleanly(report));
  }
  // node, address, hosting, entities, moved in, out, increments, msgs in, msgs out.
  ASSERT_EQ(row.size(), 9u);
  EXPECT_NE(row[4], "0") << "the restarted node-3 took no shard over by handoff";
  ExpectWorkloadVerifies("check", address_[0], 3);
  StopAll({node_[0], node_[1], again});
}

// node-2 stopped (SIGSTOP) for twice its lease TTL: the others see it
// removed; when it continues it finds its lease gone, stops hosting (its
// fence had passed), registers again as a new incarnation and hosts again.
TEST_F(EtcdCluster, AMemberStoppedPastItsLeaseStopsHostingAndRejoinsAsANewIncarnation) {
  constexpr absl::Duration kTtl = absl::Seconds(2);
  ASSERT_NO_FATAL_FAILURE(StartThree(kTtl));
  const size_t from1 = node_[0]->LinesSoFar();
  node_[1]->Signal(SIGSTOP);
  const absl::Time stopped = absl::Now();
  EXPECT_TRUE(Prints(node_[0], "node-1: member node-2 up -> removed", stopped + kTtl + absl::Seconds(1), from1));
  const absl::Time resume_at = stopped + 2 * kTtl;
  // Nothing to wait for but the time: node-2 must stay stopped until then.
  EXPECT_FALSE(Prints(node_[0], "node-1: member node-2 joining -> up", resume_at, from1));
  const size_t from2 = node_[1]->LinesSoFar();
  node_[1]->Signal(SIGCONT);
  EXPECT_TRUE(Prints(node_[1], "node-2: not hosting entities: ", absl::Now() + kWait, from2));
  EXPECT_TRUE(Prints(node_[1], "node-2: hosting entities: ", absl::Now() + kWait, from2));
  EXPECT_TRUE(Prints(node_[0], "node-1: member node-2 joining -> up", absl::Now() + kWait, from1));
  ExpectWorkloadVerifies("check", address_[0], 3);
  StopAll({node_[0], node_[1], node_[2]});
}

// etcd killed and started again (same data) while a workload runs: the
// nodes keep hosting with the membership they had (the outage is shorter
// than ttl - fence_margin), the pending writes go through once etcd is
// back, every count is exact, and the watch resumes: a leave afterwards is
// seen by the others.
TEST_F(EtcdCluster, EtcdKilledAndRestartedDuringAWorkloadChangesNothing) {
  ASSERT_NO_FATAL_FAILURE(StartThree(absl::Seconds(6)));
  size_t from[3];
  for (int i = 0; i < 3; ++i) from[i] = node_[i]->LinesSoFar();
  ChildProcess* client = StartCounterClient("client", address_[0],
                                            {"--increments=1500", "--keys=50", "--pace=2ms", "--timeout=40s"});
  EXPECT_NE(Line(client, "workload: 3 clients (1 on each of 3 nodes)"), "");
  etcd_.Kill();
  const absl::Status restarted = etcd_.Start();
  ASSERT_TRUE(restarted.ok()) << restarted;
  EXPECT_NE(Line(client, "verified: 50 keys read back, each as expected (90..90); they sum to 4500 = 4500 sent"), "");
  EXPECT_TRUE(ExitsCleanly(client));
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(Prints(node_[i], "not hosting entities", absl::Now(), from[i])) << node_[i]->name();
    EXPECT_FALSE(Prints(node_[i], "-> removed", absl::Now(), from[i])) << node_[i]->name();
  }
  node_[2]->Signal(SIGTERM);
  EXPECT_TRUE(Prints(node_[0], "node-1: member node-3 up -> leaving", absl::Now() + kWait));
  EXPECT_TRUE(Prints(node_[0], "node-1: member node-3 leaving -> removed", absl::Now() + kWait));
  EXPECT_TRUE(ExitsCleanly(node_[2]));
  StopAll({node_[0], node_[1]});
}

}  // namespace
}  // namespace troupe::tests
