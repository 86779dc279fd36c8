// Cluster: the members of a cluster of Nodes, as this node knows them, and
// whether this node may host entities.
//
//   troupe::ActorSystem sys;
//   troupe::Node node(sys, {.name = "a", .cluster_secret = secret});
//   node.Listen("127.0.0.1:7001");
//   troupe::cluster::Cluster cluster(sys, node, {.static_members = {
//       "127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}});
//   cluster.Subscribe(watcher);      // MemberChanged, HostingChanged
//   MembershipView v = cluster.view();
//
// Providers. The static provider (this one) takes every member's address
// from the options, the same list on every node; a member is up while this
// node's link to it is up (links heal by themselves: net/node.h), and a
// node that sees no majority of the list stops hosting entities
// (keep-majority; cluster/membership_actor.h has the rule and the even
// split). Membership states and their order: cluster/membership.h.
//
// Ordering: each node reports changes in the order it saw them. With the
// static provider two nodes may see a member's loss and return in
// different orders relative to other changes (each observes its own
// links); once links are stable their views agree.
//
// Who may call what: any thread. Destroy the Cluster before its Node.

#ifndef TROUPE_CLUSTER_CLUSTER_H_
#define TROUPE_CLUSTER_CLUSTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "actors/actor_system.h"
#include "cluster/membership.h"
#include "cluster/membership_actor.h"
#include "net/node.h"

namespace troupe::cluster {

struct ClusterOptions {
  // The static provider: every member's "host:port" as it listens (its
  // Node's address()), this node's among them; the same list on every node.
  std::vector<std::string> static_members;
  // How often an unreached member is tried again.
  absl::Duration retry_interval = absl::Milliseconds(200);
  // Each Lookup and Hello ask to a member.
  absl::Duration ask_timeout = absl::Seconds(2);
};

class Cluster {
 public:
  // `node` must be listening (its address() is this member's identity).
  Cluster(ActorSystem& system, Node& node, ClusterOptions options);
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;
  ~Cluster();

  // OK, or why the options cannot work (InvalidArgument: no member list,
  // or this node's address not in it; FailedPrecondition: the node does
  // not listen). Nothing runs unless it is OK.
  const absl::Status& status() const { return status_; }

  // This node's view now.
  MembershipView view() const;
  bool hosting() const { return view().hosting; }

  // `subscriber` is told every member as it is now (as a change from
  // joining) and whether this node hosts, then every change, in order. W
  // handles MemberChanged and HostingChanged.
  template <class W>
  void Subscribe(const Ref<W>& subscriber) {
    if (!membership_) return;
    membership_.Tell(internal::AddSubscriber{internal::MembershipEvents{
        .changed = [subscriber](MemberChanged e) { subscriber.Tell(std::move(e)); },
        .hosting = [subscriber](HostingChanged e) { subscriber.Tell(std::move(e)); },
    }});
  }

  // Announces that this node leaves: every member sees it leaving, then
  // removed once its Node shuts down (Node::Shutdown after this).
  Future<void> Leave();

 private:
  Node& node_;
  absl::Status status_;
  std::shared_ptr<internal::SharedView> view_;
  Ref<internal::MembershipActor> membership_;
};

}  // namespace troupe::cluster

#endif  // TROUPE_CLUSTER_CLUSTER_H_
