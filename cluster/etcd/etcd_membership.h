// The etcd membership provider: a cluster's members as keys in etcd, each
// kept by its node's lease.
//
//   #include "cluster/etcd/etcd_membership.h"     // links gRPC: //cluster/etcd:etcd_membership
//   troupe::cluster::Cluster cluster(sys, node, {.provider = troupe::cluster::EtcdMembers({
//       .endpoint = "127.0.0.1:2379", .cluster = "counters"})});
//
// Each node registers itself under /troupe/<cluster>/members/<node name>
// (value: its incarnation, its state and its address) with a lease of `ttl`
// that it keeps alive, reads the prefix and watches it from there. So every
// node sees the same changes in the same order (etcd's revisions), and a
// member whose lease expires — it crashed, hung, or lost etcd — is removed
// on every node at once. A member is:
//   up        its key exists (it registered, or renewed after a gap);
//   leaving   its key says so (Cluster::Leave);
//   removed   its key was deleted: the lease expired or was revoked (a
//             node that shuts down revokes it), or a newer incarnation of
//             its name registered.
// There is no "down": etcd, not this node's link, says who is a member.
//
// Fencing. A node hosts entities only while it knows its lease alive: from
// each renewal etcd confirms, until `ttl` minus `fence_margin` after it. A
// node that cannot renew (etcd unreachable, or the node itself stalled)
// stops hosting before etcd can expire its lease and give its shards to
// others; its regions refuse to deliver from that moment even before they
// hear of it (SharedView::serve_until). Once it renews again it hosts
// again; if its lease has expired meanwhile it registers anew, as a new
// incarnation, and is a new member to the others.
//
// etcd itself down: no lease can expire while etcd is down, and etcd gives
// every lease a fresh TTL when it starts again. A node keeps hosting
// through an outage shorter than ttl - fence_margin and stops past it; it
// keeps the membership it had, starts watching again from the revision it
// saw last, and resumes hosting as soon as a renewal gets through.
//
// A name must be unique in the cluster: a node whose name is registered by
// a live incarnation of another process waits (retrying) until that key
// goes.
//
// Who may call what: EtcdMembers from any thread; the provider is started
// by a Cluster.

#ifndef TROUPE_CLUSTER_ETCD_ETCD_MEMBERSHIP_H_
#define TROUPE_CLUSTER_ETCD_ETCD_MEMBERSHIP_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "cluster/provider.h"

namespace troupe::cluster {

struct EtcdMembershipOptions {
  std::string endpoint;  // etcd's client address, "host:port"
  std::string cluster = "default";
  absl::Duration ttl = absl::Seconds(3);
  absl::Duration keepalive_interval = absl::Milliseconds(500);
  // How long before the lease could expire a node stops hosting.
  absl::Duration fence_margin = absl::Seconds(1);
  // Each call to etcd.
  absl::Duration request_timeout = absl::Seconds(1);
  // Between attempts to register, renew or watch after a failure.
  absl::Duration retry_interval = absl::Milliseconds(250);
};

std::shared_ptr<MembershipProvider> EtcdMembers(EtcdMembershipOptions options);

// The key prefix of a cluster's members: "/troupe/<cluster>/members/".
std::string EtcdMembersPrefix(const std::string& cluster);

}  // namespace troupe::cluster

#endif  // TROUPE_CLUSTER_ETCD_ETCD_MEMBERSHIP_H_
