// Membership with the static provider, three nodes in one process, each on
// its own ActorSystem, linked over loopback. Waits are bounded: on views
// polled with a deadline, or on an event log.

#include <memory>
#include <string>
#include <vector>

#include "cluster/cluster.h"
#include "cluster/cluster_test_util.h"
#include "gtest/gtest.h"
#include "net/node_test_util.h"

namespace troupe::cluster {
namespace {

using clustertest::AllUp;
using clustertest::TestMember;
using nettest::Eventually;

TEST(StaticMembership, ThreeMembersAgreeThatAllAreUpAndHost) {
  TestMember a("a"), b("b"), c("c");
  const std::vector<std::string> list{a.address, b.address, c.address};
  a.Join(list);
  b.Join(list);
  c.Join(list);
  const std::vector<std::string> want = AllUp({&a, &b, &c});
  for (TestMember* m : {&a, &b, &c}) {
    ASSERT_TRUE(Eventually([&] { return m->States() == want; })) << m->node->name() << " sees "
                                                                  << ::testing::PrintToString(m->States());
    EXPECT_TRUE(m->cluster->hosting());
    // Incarnations agree with the nodes themselves.
    for (const Member& seen : m->cluster->view().members) {
      for (TestMember* other : {&a, &b, &c}) {
        if (other->node->name() == seen.name) {
          EXPECT_EQ(seen.incarnation, other->node->incarnation());
        }
      }
    }
  }
  EXPECT_GE(a.events->WaitFor("hosting"), 0);
}

TEST(StaticMembership, AMemberThatLeavesIsSeenLeavingThenRemoved) {
  TestMember a("a"), b("b"), c("c");
  const std::vector<std::string> list{a.address, b.address, c.address};
  for (TestMember* m : {&a, &b, &c}) m->Join(list);
  ASSERT_TRUE(Eventually([&] { return a.States() == AllUp({&a, &b, &c}); }));
  ASSERT_TRUE(Eventually([&] { return b.States() == AllUp({&a, &b, &c}); }));
  ASSERT_TRUE(c.cluster->Leave().Wait(nettest::kWait).ok());
  const int leaving = a.events->WaitFor("c leaving");
  ASSERT_GE(leaving, 0) << ::testing::PrintToString(a.events->Lines());
  c.Stop();
  EXPECT_GT(a.events->WaitFor("c removed", nettest::kWait, leaving), leaving);
  EXPECT_GE(b.events->WaitFor("c removed"), 0);
  // Two of three: still a majority.
  EXPECT_TRUE(Eventually([&] { return a.States() == AllUp({&a, &b}); }));
  EXPECT_TRUE(a.cluster->hosting());
  EXPECT_TRUE(b.cluster->hosting());
}

TEST(StaticMembership, AMemberLeftAloneStopsHostingAndStartsAgainWhenOthersReturn) {
  TestMember a("a");
  auto b = std::make_unique<TestMember>("b");
  auto c = std::make_unique<TestMember>("c");
  const std::string b_address = b->address, c_address = c->address;
  const std::vector<std::string> list{a.address, b_address, c_address};
  a.Join(list);
  b->Join(list);
  c->Join(list);
  ASSERT_TRUE(Eventually([&] { return a.States().size() == 3; }));
  const int hosting = a.events->WaitFor("hosting");
  ASSERT_GE(hosting, 0);
  b->Stop();
  c->Stop();
  // After it hosted: the log also starts with "not hosting", the state
  // when the recorder subscribed.
  const int alone = a.events->WaitFor("not hosting", nettest::kWait, static_cast<size_t>(hosting) + 1);
  ASSERT_GE(alone, 0) << ::testing::PrintToString(a.events->Lines());
  EXPECT_FALSE(a.cluster->hosting());
  // b restarts where it listened: a new incarnation, and a majority again.
  b = std::make_unique<TestMember>("b", b_address);
  ASSERT_EQ(b->address, b_address);
  b->Join(list);
  EXPECT_GT(a.events->WaitFor("hosting", nettest::kWait, alone), alone);
  ASSERT_TRUE(Eventually([&] { return a.States() == AllUp({&a, b.get()}); }));
  for (const Member& m : a.cluster->view().members) {
    if (m.name == "b") {
      EXPECT_EQ(m.incarnation, b->node->incarnation());
    }
  }
}

TEST(StaticMembership, OnAnEvenSplitOnlyTheHalfWithTheLowestAddressHosts) {
  auto x = std::make_unique<TestMember>("x");
  auto y = std::make_unique<TestMember>("y");
  const std::vector<std::string> list{x->address, y->address};
  x->Join(list);
  y->Join(list);
  ASSERT_TRUE(Eventually([&] { return x->States().size() == 2 && y->States().size() == 2; }));
  EXPECT_TRUE(x->cluster->hosting());
  EXPECT_TRUE(y->cluster->hosting());
  // Stop the lower one: the other is half without the lowest, so it stops.
  std::unique_ptr<TestMember>& lower = x->address < y->address ? x : y;
  std::unique_ptr<TestMember>& higher = x->address < y->address ? y : x;
  const int hosted = higher->events->WaitFor("hosting");
  ASSERT_GE(hosted, 0);
  lower->Stop();
  EXPECT_GE(higher->events->WaitFor("not hosting", nettest::kWait, static_cast<size_t>(hosted) + 1), 0)
      << ::testing::PrintToString(higher->events->Lines());
  EXPECT_FALSE(higher->cluster->hosting());
}

TEST(StaticMembership, OptionsThatCannotWorkAreRefusedWithTheReason) {
  TestMember a("a");
  Cluster none(*a.system, *a.node, ClusterOptions{});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  Cluster elsewhere(*a.system, *a.node, ClusterOptions{.static_members = {"127.0.0.1:1", "127.0.0.1:2"}});
  EXPECT_EQ(elsewhere.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(elsewhere.status().message().find(a.address), std::string::npos) << elsewhere.status();
  EXPECT_FALSE(none.Leave().Wait(nettest::kWait).ok());
  Cluster both(*a.system, *a.node,
               ClusterOptions{.static_members = {a.address}, .provider = StaticMembers({a.address})});
  EXPECT_EQ(both.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(both.status().message().find("both"), std::string::npos) << both.status();
  // The provider given as such works as the options' list does.
  Cluster alone(*a.system, *a.node, ClusterOptions{.provider = StaticMembers({a.address})});
  ASSERT_TRUE(alone.status().ok()) << alone.status();
  EXPECT_TRUE(Eventually([&] { return alone.hosting(); }));
}

}  // namespace
}  // namespace troupe::cluster
