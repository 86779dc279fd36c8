// MembershipProvider: how a Cluster (cluster/cluster.h) learns its members.
//
//   // The static provider: every member's address, the same on every node.
//   auto members = troupe::cluster::StaticMembers({"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"});
//   troupe::cluster::Cluster cluster(sys, node, {.provider = members});
//
// A provider starts an actor on the node that keeps the view (the
// SharedView every reader sees) and tells subscribers each MemberChanged
// and HostingChanged in its order. The static provider is here
// (cluster/membership_actor.h); the etcd provider is in cluster/etcd/, a
// library of its own, so that only programs that use it link gRPC.
//
// Who may call what: Start once, from any thread; what it returns may be
// used from any thread.

#ifndef TROUPE_CLUSTER_PROVIDER_H_
#define TROUPE_CLUSTER_PROVIDER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "actors/actor_system.h"
#include "actors/future.h"
#include "actors/ref.h"
#include "cluster/membership_actor.h"
#include "net/node.h"

namespace troupe::cluster {

class MembershipProvider {
 public:
  virtual ~MembershipProvider() = default;

  // A provider at work on one node.
  struct Running {
    // Stopped, and waited for, by the Cluster's destructor.
    ActorRef actor;
    // Names the provider published on the node; the Cluster unpublishes
    // them at its end.
    std::vector<std::string> published;
    // Adds a subscriber: told every member as it is now (as a change from
    // joining) and whether this node hosts, then every change in order.
    absl::AnyInvocable<void(internal::MembershipEvents)> subscribe;
    // Announces this node's graceful leave; completes once the members
    // have been told (the Cluster then waits for its shards' handoffs).
    absl::AnyInvocable<Future<void>()> leave;
  };

  // Starts on `node`, which listens. An error (nothing started) if the
  // provider's options cannot work on this node.
  virtual absl::StatusOr<Running> Start(ActorSystem& system, Node& node,
                                        std::shared_ptr<internal::SharedView> view) = 0;
};

// The static provider: the member list, every member's "host:port" as it
// listens (its Node's address()), this node's among it, the same list on
// every node. A member is up while this node's link to it is up, and a
// node that sees no majority of the list stops hosting (keep-majority:
// cluster/membership_actor.h). `retry_interval`: how often an unreached
// member is tried again; `ask_timeout`: each Lookup and Hello.
std::shared_ptr<MembershipProvider> StaticMembers(std::vector<std::string> members,
                                                  absl::Duration retry_interval = absl::Milliseconds(200),
                                                  absl::Duration ask_timeout = absl::Seconds(2));

}  // namespace troupe::cluster

#endif  // TROUPE_CLUSTER_PROVIDER_H_
