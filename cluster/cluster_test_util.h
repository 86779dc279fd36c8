// Helpers for the cluster's tests: a member (system, listening node and
// Cluster) in one process, and a recorder of what a Cluster reports.

#ifndef TROUPE_CLUSTER_CLUSTER_TEST_UTIL_H_
#define TROUPE_CLUSTER_CLUSTER_TEST_UTIL_H_

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cluster/cluster.h"
#include "gtest/gtest.h"
#include "net/node_test_util.h"

namespace troupe::cluster::clustertest {

using nettest::EventLog;

// Records MemberChanged ("<name> up", ...) and HostingChanged ("hosting",
// "not hosting") lines.
struct ClusterRecorder : Actor<ClusterRecorder> {
  explicit ClusterRecorder(std::shared_ptr<EventLog> log) : log(std::move(log)) {}
  void On(const MemberChanged& c) {
    log->Add(c.member.name + " " + std::string(MemberStateName(c.member.state)), c.member.incarnation);
  }
  void On(const HostingChanged& h) { log->Add(h.hosting ? "hosting" : "not hosting", 0); }
  std::shared_ptr<EventLog> log;
};

// One member: a system, a listening node and, once Join is called, its
// Cluster.
struct TestMember {
  explicit TestMember(const std::string& name, const std::string& address = "127.0.0.1:0", int workers = 1)
      : TestMember(name, nettest::QuickOptions(name), address, workers) {}
  // With `options` for its node (a test of planned changes wants no link
  // lost to a slow sanitizer run: a longer heartbeat timeout).
  TestMember(const std::string& name, NodeOptions options, const std::string& address = "127.0.0.1:0",
             int workers = 1)
      : system(std::make_unique<ActorSystem>(ActorSystemOptions{.workers = workers, .name = name})),
        node(std::make_unique<Node>(*system, std::move(options))) {
    absl::StatusOr<std::string> bound = node->Listen(address);
    EXPECT_TRUE(bound.ok()) << bound.status();
    if (bound.ok()) this->address = *bound;
  }
  ~TestMember() { Stop(); }

  void Join(const std::vector<std::string>& members) {
    cluster = std::make_unique<Cluster>(*system, *node,
                                        ClusterOptions{.static_members = members,
                                                       .retry_interval = absl::Milliseconds(20),
                                                       .ask_timeout = absl::Seconds(2)});
    ASSERT_TRUE(cluster->status().ok()) << cluster->status();
    events = std::make_shared<EventLog>();
    cluster->Subscribe(system->Spawn<ClusterRecorder>(events));
  }

  // The states this member sees, as "name:state" sorted by address.
  std::vector<std::string> States() const {
    std::vector<std::string> out;
    for (const Member& m : cluster->view().members) out.push_back(m.name + ":" + std::string(MemberStateName(m.state)));
    return out;
  }

  void Stop() {
    cluster.reset();
    if (node) node->Shutdown();
    node.reset();
    if (system) {
      EXPECT_TRUE(system->Shutdown(absl::Seconds(10)).ok());
    }
    system.reset();
  }

  std::unique_ptr<ActorSystem> system;
  std::unique_ptr<Node> node;
  std::unique_ptr<Cluster> cluster;
  std::shared_ptr<EventLog> events;
  std::string address;
};

inline std::vector<std::string> AllUp(const std::vector<TestMember*>& members) {
  std::vector<std::pair<std::string, std::string>> by_address;
  for (TestMember* m : members) by_address.emplace_back(m->address, m->node->name() + ":up");
  std::sort(by_address.begin(), by_address.end());
  std::vector<std::string> out;
  for (auto& [address, state] : by_address) out.push_back(state);
  return out;
}

}  // namespace troupe::cluster::clustertest

#endif  // TROUPE_CLUSTER_CLUSTER_TEST_UTIL_H_
