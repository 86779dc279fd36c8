// Silent partitions, run by tests/netns_test.sh like
// netns_checks (tests/namespaces.h): three counter nodes, one a namespace;
// then every packet in or out of c's link dropped inside c's namespace for
// 15 s (nft, or iptables where nft is missing), so nothing is closed or
// refused: the others only stop hearing from it. Both sides must notice,
// c (a minority of one) must stop hosting entities while a and b go on,
// and within a heartbeat timeout and 5 s after the rules go, every node
// must see the other two again, c host again, and a workload verify across
// all three.

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/namespaces.h"

namespace troupe::tests {
namespace {

// A heartbeat timeout (NodeOptions' default, 5 s) and 5 s.
constexpr absl::Duration kHealBound = absl::Seconds(5 + 5);

class Partition : public Namespaces {
 protected:
  // Runs a firewall command in host i's namespace; true if it exits 0.
  bool Firewall(int i, const std::string& name, const std::vector<std::string>& argv) {
    return ExitsCleanly(Start(name, argv, In(i)));
  }

  // Drops everything on host i's eth0, both ways.
  bool Cut(int i) {
    const std::string nft = Env("TROUPE_NFT"), iptables = Env("TROUPE_IPTABLES");
    if (!nft.empty()) {
      return Firewall(i, "nft-cut",
                      {nft, "add table inet troupe_partition; "
                            "add chain inet troupe_partition in { type filter hook input priority 0; policy accept; }; "
                            "add rule inet troupe_partition in iifname \"eth0\" drop; "
                            "add chain inet troupe_partition out { type filter hook output priority 0; policy accept; }; "
                            "add rule inet troupe_partition out oifname \"eth0\" drop"});
    }
    return Firewall(i, "iptables-cut-in", {iptables, "-I", "INPUT", "-i", "eth0", "-j", "DROP"}) &&
           Firewall(i, "iptables-cut-out", {iptables, "-I", "OUTPUT", "-o", "eth0", "-j", "DROP"});
  }

  bool Heal(int i) {
    const std::string nft = Env("TROUPE_NFT"), iptables = Env("TROUPE_IPTABLES");
    if (!nft.empty()) return Firewall(i, "nft-heal", {nft, "delete table inet troupe_partition"});
    return Firewall(i, "iptables-heal-in", {iptables, "-D", "INPUT", "-i", "eth0", "-j", "DROP"}) &&
           Firewall(i, "iptables-heal-out", {iptables, "-D", "OUTPUT", "-o", "eth0", "-j", "DROP"});
  }
};

TEST_F(Partition, ANamespaceCutOffSilentlyFor15sIsSeenAgainSoonAfterTheLinkReturns) {
  if (Env("TROUPE_NFT").empty() && Env("TROUPE_IPTABLES").empty()) {
    GTEST_SKIP() << "neither nft (nftables) nor iptables is installed: cannot drop packets in a namespace";
  }
  const std::string a_at = addr_[0] + ":7000";
  ChildProcess *a, *b, *c;
  ASSERT_NO_FATAL_FAILURE(StartThree({}, &a, &b, &c));
  EXPECT_NE(Line(a, "a: member c joining -> up"), "");
  EXPECT_NE(Line(b, "b: member c joining -> up"), "");

  ASSERT_TRUE(Cut(2));
  const absl::Time cut = absl::Now();
  const size_t a_from = a->LinesSoFar(), c_from = c->LinesSoFar();
  // Both sides notice, within the heartbeat timeout (and slack); c, alone,
  // stops hosting entities (keep-majority), a and b keep hosting.
  EXPECT_NE(Line(a, "a: member c up -> down"), "");
  EXPECT_NE(Line(b, "b: member c up -> down"), "");
  EXPECT_NE(Line(c, "c: member a up -> down"), "");
  EXPECT_NE(Line(c, "c: member b up -> down"), "");
  EXPECT_NE(Line(c, "c: not hosting entities: "), "");
  EXPECT_FALSE(a->WaitForLine("a: not hosting entities", absl::Now(), a_from).ok());
  // Nobody sees c again while it is cut off; the rules go after 15 s.
  EXPECT_FALSE(a->WaitForLine("a: member c down -> up", cut + absl::Seconds(15)).ok());
  ASSERT_TRUE(Heal(2));
  const absl::Time healed_by = absl::Now() + kHealBound;
  for (const auto& [p, line] : std::vector<std::pair<ChildProcess*, std::string>>{
           {a, "a: member c down -> up"},
           {b, "b: member c down -> up"},
           {c, "c: member a down -> up"},
           {c, "c: member b down -> up"}}) {
    absl::StatusOr<std::string> seen = p->WaitForLine(line, healed_by);
    EXPECT_TRUE(seen.ok()) << seen.status();
  }
  absl::StatusOr<std::string> hosts = c->WaitForLine("c: hosting entities: ", healed_by, c_from);
  EXPECT_TRUE(hosts.ok()) << hosts.status();

  // A client in a's namespace, over all three nodes.
  ExpectWorkloadVerifies("client", a_at, 3, In(0));
  for (ChildProcess* p : {a, b, c}) p->Signal(SIGTERM);
  for (ChildProcess* p : {a, b, c}) EXPECT_TRUE(ExitsCleanly(p));
}

// The same cut with the members in an etcd that runs in a's namespace:
// c, cut off from etcd too, stops hosting before its lease can expire; a
// and b see it removed once the lease expires and go on hosting; after the
// rules go c registers again, as a new incarnation, and a workload
// verifies over all three.
TEST_F(Partition, ANamespaceCutOffFromEtcdStopsHostingAndComesBackAsANewMember) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the etcd nodes link Debian's gRPC, which ThreadSanitizer cannot see into (//cluster/etcd:BUILD)";
#endif
  if (Env("TROUPE_NFT").empty() && Env("TROUPE_IPTABLES").empty()) {
    GTEST_SKIP() << "neither nft (nftables) nor iptables is installed: cannot drop packets in a namespace";
  }
  const char* tmp = std::getenv("TEST_TMPDIR");
  ASSERT_NE(tmp, nullptr);
  const std::string etcd_at = addr_[0] + ":2379";
  ChildProcess* etcd = Start("etcd",
                             {Runfile(Env("TROUPE_ETCD")), "--data-dir", std::string(tmp) + "/netns-etcd",
                              "--listen-client-urls", "http://" + etcd_at, "--advertise-client-urls",
                              "http://" + etcd_at, "--listen-peer-urls", "http://127.0.0.1:2380"},
                             In(0));
  ASSERT_NE(Line(etcd, "ready to serve client requests"), "");
  constexpr absl::Duration kTtl = absl::Seconds(3);
  ChildProcess *a, *b, *c;
  // --log_level=info: the nodes log when their links to each other are up
  // again, which etcd's view of the members does not show.
  ASSERT_NO_FATAL_FAILURE(StartThree({}, &a, &b, &c, "", etcd_at, {"--lease_ttl=3s", "--log_level=info"}));
  ASSERT_TRUE(a->WaitForLine("a: member c joining -> up", absl::Now() + kWait).ok());
  const size_t a_from = a->LinesSoFar(), b_from = b->LinesSoFar(), c_from = c->LinesSoFar();

  ASSERT_TRUE(Cut(2));
  const absl::Time cut = absl::Now();
  // c stops hosting within ttl - fence_margin (2 s) of its last renewal;
  // a and b see it removed when the lease expires (the TTL after it).
  absl::StatusOr<std::string> fenced = c->WaitForLine("c: not hosting entities: ", cut + kTtl + absl::Seconds(5), c_from);
  EXPECT_TRUE(fenced.ok()) << fenced.status();
  const absl::Time c_fenced = absl::Now();
  for (ChildProcess* p : {a, b}) {
    absl::StatusOr<std::string> removed =
        p->WaitForLine(p->name() + ": member c up -> removed", cut + kTtl + absl::Seconds(5), p == a ? a_from : b_from);
    EXPECT_TRUE(removed.ok()) << p->name() << ": " << removed.status();
  }
  std::printf("c fenced %.0f ms after the cut, removed on a and b %.0f ms after it\n",
              absl::ToDoubleMilliseconds(c_fenced - cut), absl::ToDoubleMilliseconds(absl::Now() - cut));
  // a and b keep hosting; nobody sees c while it is cut off (10 s).
  EXPECT_FALSE(a->WaitForLine("a: member c joining -> up", cut + absl::Seconds(10), a_from).ok());
  EXPECT_FALSE(a->WaitForLine("a: not hosting entities", absl::Now(), a_from).ok());
  EXPECT_FALSE(b->WaitForLine("b: not hosting entities", absl::Now(), b_from).ok());
  ASSERT_TRUE(Heal(2));
  const absl::Time healed_by = absl::Now() + kHealBound;
  for (const auto& [p, line, from] : std::vector<std::tuple<ChildProcess*, std::string, size_t>>{
           {a, "a: member c joining -> up", a_from},
           {b, "b: member c joining -> up", b_from},
           {c, "c: hosting entities: ", c_from}}) {
    absl::StatusOr<std::string> seen = p->WaitForLine(line, healed_by, from);
    EXPECT_TRUE(seen.ok()) << seen.status();
  }
  // a's link to c, closed by the heartbeat timeout during the cut, is up
  // again (a redials it): until then tells to c are lost, as to any node
  // whose link is down. (b and c had no link yet: etcd, not the links,
  // tells who the members are, and a link is made on first use.)
  absl::StatusOr<std::string> linked = a->WaitForLine("a: connected to node c ", healed_by, a_from);
  EXPECT_TRUE(linked.ok()) << linked.status();

  ExpectWorkloadVerifies("client", addr_[0] + ":7000", 3, In(0));
  for (ChildProcess* p : {a, b, c}) p->Signal(SIGTERM);
  for (ChildProcess* p : {a, b, c}) EXPECT_TRUE(ExitsCleanly(p));
  etcd->Signal(SIGTERM);
  Ended(etcd);
}

}  // namespace
}  // namespace troupe::tests
