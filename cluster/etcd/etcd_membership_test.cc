// The etcd membership provider against a real etcd on loopback (started
// and stopped by the test, with its own data directory): members in this
// process, each an ActorSystem with a Node. Waits are bounded: views and
// stats polled with a deadline, or an event log.

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cluster/cluster.h"
#include "cluster/cluster_test_util.h"
#include "cluster/etcd/etcd_membership.h"
#include "cluster/etcd/etcd_test_server.h"
#include "cluster/testdata/entity_test.troupe.h"
#include "gtest/gtest.h"
#include "net/node_test_util.h"

namespace troupe::cluster {
namespace {

using clustertest::TestMember;
using nettest::Eventually;

// Counts; its state lives in the entity only (these tests move no shard
// gracefully and check no count across a move).
struct Tally : Actor<Tally> {
  using Remote = Accepts<testmsg::Add, testmsg::Get>;
  explicit Tally(const std::string&) {}
  void On(const testmsg::Add& m) { count += m.by; }
  int64_t On(const testmsg::Get&) { return count; }
  int64_t count = 0;
};

EtcdMembershipOptions Fast(const std::string& endpoint) {
  EtcdMembershipOptions o;
  o.endpoint = endpoint;
  o.cluster = "test";
  o.ttl = absl::Seconds(3);
  o.keepalive_interval = absl::Milliseconds(300);
  o.fence_margin = absl::Seconds(1);
  o.request_timeout = absl::Milliseconds(500);
  o.retry_interval = absl::Milliseconds(100);
  return o;
}

void JoinEtcd(TestMember& m, const EtcdMembershipOptions& o) {
  m.cluster = std::make_unique<Cluster>(*m.system, *m.node, ClusterOptions{.provider = EtcdMembers(o)});
  ASSERT_TRUE(m.cluster->status().ok()) << m.cluster->status();
  m.events = std::make_shared<nettest::EventLog>();
  m.cluster->Subscribe(m.system->Spawn<clustertest::ClusterRecorder>(m.events));
}

EntityOptions Shards() {
  EntityOptions o;
  o.shards = 16;
  o.retry_interval = absl::Milliseconds(20);
  return o;
}

class EtcdMembershipTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(etcd_.Start().ok()); }
  etcd::EtcdServer etcd_;
};

TEST_F(EtcdMembershipTest, MembersRegisterAndEveryNodeSeesTheSameChangesInTheSameOrder) {
  TestMember a("a"), b("b"), c("c");
  for (TestMember* m : {&a, &b, &c}) JoinEtcd(*m, Fast(etcd_.client_address()));
  const std::vector<std::string> all = clustertest::AllUp({&a, &b, &c});
  for (TestMember* m : {&a, &b, &c}) {
    ASSERT_TRUE(Eventually([&] { return m->States() == all && m->cluster->hosting(); }))
        << m->node->name() << ": " << ::testing::PrintToString(m->States());
  }
  // From here on, each node's log must show the same changes in order.
  std::vector<size_t> from;
  for (TestMember* m : {&a, &b}) from.push_back(m->events->Lines().size());
  TestMember d("d");
  JoinEtcd(d, Fast(etcd_.client_address()));
  ASSERT_TRUE(Eventually([&] { return a.States().size() == 4 && b.States().size() == 4; }));
  ASSERT_TRUE(c.cluster->Leave().Wait(absl::Seconds(10)).ok());
  c.Stop();  // revokes its lease: removed at once, not after the TTL
  for (TestMember* m : {&a, &b, &d}) {
    ASSERT_TRUE(Eventually([&] { return m->States().size() == 3; }, absl::Seconds(2)))
        << m->node->name() << ": " << ::testing::PrintToString(m->States());
  }
  std::vector<std::vector<std::string>> seen;
  for (size_t i = 0; i < 2; ++i) {
    TestMember* m = i == 0 ? &a : &b;
    std::vector<std::string> lines = m->events->Lines();
    seen.emplace_back(lines.begin() + static_cast<ptrdiff_t>(from[i]), lines.end());
  }
  EXPECT_EQ(seen[0], seen[1]);
  EXPECT_EQ(seen[0], (std::vector<std::string>{"d up", "c leaving", "c removed"}));
}

// A node that hosted as soon as its lease was granted, before it had read
// the others' keys, would own every shard (it sees itself alone) while the
// others serve them: a second activation of any key it is sent.
TEST_F(EtcdMembershipTest, AJoiningMemberHostsOnlyOnceItHasReadTheMembers) {
  TestMember a("a"), b("b");
  for (TestMember* m : {&a, &b}) JoinEtcd(*m, Fast(etcd_.client_address()));
  const std::vector<std::string> two = clustertest::AllUp({&a, &b});
  for (TestMember* m : {&a, &b}) ASSERT_TRUE(Eventually([&] { return m->States() == two && m->cluster->hosting(); }));
  TestMember d("d");
  JoinEtcd(d, Fast(etcd_.client_address()));
  // hosting() turns true before d's event subscriber has recorded it.
  auto recorded = [&] {
    const std::vector<std::string> l = d.events->Lines();
    return std::find(l.begin(), l.end(), "hosting") != l.end();
  };
  ASSERT_TRUE(Eventually([&] { return d.cluster->hosting() && recorded(); }));
  const std::vector<std::string> lines = d.events->Lines();
  auto at = [&](const std::string& line) {
    return std::find(lines.begin(), lines.end(), line) - lines.begin();
  };
  const auto hosting = at("hosting");
  ASSERT_LT(hosting, static_cast<ptrdiff_t>(lines.size())) << ::testing::PrintToString(lines);
  EXPECT_LT(at("a up"), hosting) << ::testing::PrintToString(lines);
  EXPECT_LT(at("b up"), hosting) << ::testing::PrintToString(lines);
}

TEST_F(EtcdMembershipTest, EntitiesLiveOnTheMembersEtcdReports) {
  TestMember a("a"), b("b");
  for (TestMember* m : {&a, &b}) {
    JoinEtcd(*m, Fast(etcd_.client_address()));
    ASSERT_TRUE(m->cluster->StartEntities<Tally>(Shards()).ok());
  }
  const std::vector<std::string> all = clustertest::AllUp({&a, &b});
  for (TestMember* m : {&a, &b}) ASSERT_TRUE(Eventually([&] { return m->States() == all; }));
  for (int k = 0; k < 20; ++k) {
    for (TestMember* m : {&a, &b}) {
      const absl::Status added = m->cluster->Entity<Tally>(absl::StrCat("k", k))
                                     .Ask(testmsg::Add{.sender = "t", .seq = 0, .by = 1}, absl::Seconds(5))
                                     .Wait();
      ASSERT_TRUE(added.ok()) << added;
    }
  }
  for (int k = 0; k < 20; ++k) {
    Result<int64_t> v = b.cluster->Entity<Tally>(absl::StrCat("k", k)).Ask(testmsg::Get{}, absl::Seconds(5)).Wait();
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(*v, 2);
  }
  EXPECT_GT(a.cluster->entity_stats<Tally>().entities, 0u);
  EXPECT_GT(b.cluster->entity_stats<Tally>().entities, 0u);
}

// c reaches etcd through a relay; the relay is cut. c stops hosting before
// its lease can expire; then etcd expires it and the others see c removed
// and serve its keys; the relay heals and c registers again as a new
// incarnation.
TEST_F(EtcdMembershipTest, AMemberCutOffFromEtcdFencesItselfBeforeItsLeaseExpiresAndComesBackNew) {
  nettest::TcpRelay relay;
  relay.SetTarget(etcd_.client_address());
  TestMember a("a"), b("b"), c("c");
  JoinEtcd(a, Fast(etcd_.client_address()));
  JoinEtcd(b, Fast(etcd_.client_address()));
  JoinEtcd(c, Fast(relay.address()));
  for (TestMember* m : {&a, &b, &c}) ASSERT_TRUE(m->cluster->StartEntities<Tally>(Shards()).ok());
  const std::vector<std::string> all = clustertest::AllUp({&a, &b, &c});
  for (TestMember* m : {&a, &b, &c}) {
    ASSERT_TRUE(Eventually([&] { return m->States() == all && m->cluster->hosting(); })) << m->node->name();
  }
  uint64_t c_incarnation = 0;
  for (const Member& m : a.cluster->view().members) {
    if (m.name == "c") c_incarnation = m.incarnation;
  }
  // A key c owns, served by c.
  std::string key;
  for (int i = 0; key.empty(); ++i) {
    std::string k = absl::StrCat("key-", i);
    if (OwnerOf(ShardOf(k, Shards().shards), {"a", "b", "c"}) == "c") key = k;
  }
  const absl::Status added =
      a.cluster->Entity<Tally>(key).Ask(testmsg::Add{.sender = "t", .seq = 0, .by = 1}, absl::Seconds(5)).Wait();
  ASSERT_TRUE(added.ok()) << added;
  ASSERT_EQ(c.cluster->entity_stats<Tally>().entities, 1u);

  const absl::Time cut = absl::Now();
  relay.Pause();
  ASSERT_TRUE(Eventually([&] { return !c.cluster->hosting(); }, absl::Seconds(10)));
  const absl::Time fenced = absl::Now();
  ASSERT_TRUE(Eventually([&] { return a.States().size() == 2 && b.States().size() == 2; }, absl::Seconds(15)))
      << ::testing::PrintToString(a.States());
  const absl::Time removed = absl::Now();
  EXPECT_LT(fenced, removed) << "c stopped hosting only after the others had taken over";
  EXPECT_LT(fenced - cut, Fast("").ttl) << "fenced within the TTL";
  // Its key now lives on a or b, which start it empty.
  Result<int64_t> v = a.cluster->Entity<Tally>(key).Ask(testmsg::Get{}, absl::Seconds(5)).Wait();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 0);
  EXPECT_EQ(c.cluster->entity_stats<Tally>().entities, 0u) << "c stopped its entities";

  relay.Resume();
  ASSERT_TRUE(Eventually([&] { return a.States() == all && c.cluster->hosting(); }, absl::Seconds(15)))
      << ::testing::PrintToString(a.States());
  for (const Member& m : a.cluster->view().members) {
    if (m.name == "c") {
      EXPECT_GT(m.incarnation, c_incarnation) << "c came back as a new incarnation";
    }
  }
}

// etcd killed and started again: no lease expires while it is down, so a
// short outage changes nothing; the members keep hosting and their watches
// resume (a member that joins afterwards is seen by all).
TEST_F(EtcdMembershipTest, EtcdRestartedQuicklyChangesNothingAndWatchesResume) {
  EtcdMembershipOptions o = Fast(etcd_.client_address());
  o.ttl = absl::Seconds(10);
  o.fence_margin = absl::Seconds(2);
  TestMember a("a"), b("b");
  for (TestMember* m : {&a, &b}) JoinEtcd(*m, o);
  const std::vector<std::string> all = clustertest::AllUp({&a, &b});
  for (TestMember* m : {&a, &b}) ASSERT_TRUE(Eventually([&] { return m->States() == all && m->cluster->hosting(); }));
  const std::vector<Member> before = a.cluster->view().members;
  const size_t lines = a.events->Lines().size();
  etcd_.Kill();
  ASSERT_TRUE(etcd_.Start().ok());
  TestMember c("c");
  JoinEtcd(c, o);
  const std::vector<std::string> three = clustertest::AllUp({&a, &b, &c});
  for (TestMember* m : {&a, &b, &c}) {
    ASSERT_TRUE(Eventually([&] { return m->States() == three; }, absl::Seconds(20)))
        << m->node->name() << ": " << ::testing::PrintToString(m->States());
  }
  for (TestMember* m : {&a, &b}) EXPECT_TRUE(m->cluster->hosting()) << m->node->name();
  // Nothing but c's arrival happened on a.
  std::vector<std::string> after = a.events->Lines();
  EXPECT_EQ(std::vector<std::string>(after.begin() + static_cast<ptrdiff_t>(lines), after.end()),
            (std::vector<std::string>{"c up"}));
  for (const Member& m : before) {
    for (const Member& now : a.cluster->view().members) {
      if (now.name == m.name) {
        EXPECT_EQ(now.incarnation, m.incarnation) << m.name;
      }
    }
  }
}

TEST_F(EtcdMembershipTest, OptionsThatCannotWorkAreRefusedWithTheReason) {
  TestMember a("a");
  EtcdMembershipOptions none = Fast("");
  Cluster no_endpoint(*a.system, *a.node, ClusterOptions{.provider = EtcdMembers(none)});
  EXPECT_EQ(no_endpoint.status().code(), absl::StatusCode::kInvalidArgument);
  EtcdMembershipOptions margin = Fast(etcd_.client_address());
  margin.fence_margin = absl::Seconds(5);
  Cluster too_wide(*a.system, *a.node, ClusterOptions{.provider = EtcdMembers(margin)});
  EXPECT_EQ(too_wide.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(too_wide.status().message().find("fence_margin"), std::string::npos) << too_wide.status();
}

}  // namespace
}  // namespace troupe::cluster
