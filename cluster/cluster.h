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
// Providers (cluster/provider.h). The static provider takes every member's
// address from the options, the same list on every node; a member is up
// while this node's link to it is up (links heal by themselves:
// net/node.h), and a node that sees no majority of the list stops hosting
// entities (keep-majority; cluster/membership_actor.h has the rule and the
// even split). Membership states and their order: cluster/membership.h.
//
// Ordering: each node reports changes in the order it saw them. With the
// static provider two nodes may see a member's loss and return in
// different orders relative to other changes (each observes its own
// links); once links are stable their views agree.
//
// Who may call what: any thread. Destroy the Cluster before its Node: the
// destructor stops the cluster's actors and waits (up to 30 s) until they
// have, so that none uses the Node afterwards.

#ifndef TROUPE_CLUSTER_CLUSTER_H_
#define TROUPE_CLUSTER_CLUSTER_H_

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "actors/actor_system.h"
#include "cluster/entity.h"
#include "cluster/membership.h"
#include "cluster/membership_actor.h"
#include "cluster/placement.h"
#include "cluster/provider.h"
#include "cluster/shard_region.h"
#include "net/node.h"

namespace troupe::cluster {

struct ClusterOptions {
  // The static provider: every member's "host:port" as it listens (its
  // Node's address()), this node's among them; the same list on every node.
  std::vector<std::string> static_members = {};
  // How often an unreached member is tried again.
  absl::Duration retry_interval = absl::Milliseconds(200);
  // Each Lookup and Hello ask to a member.
  absl::Duration ask_timeout = absl::Seconds(2);
  // Or another provider (cluster/provider.h): StaticMembers(...), or the
  // etcd provider (cluster/etcd/); the fields above are then unused.
  std::shared_ptr<MembershipProvider> provider = nullptr;
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
    if (!running_.subscribe) return;
    running_.subscribe(internal::MembershipEvents{
        .changed = [subscriber](MemberChanged e) { subscriber.Tell(std::move(e)); },
        .hosting = [subscriber](HostingChanged e) { subscriber.Tell(std::move(e)); },
    });
  }

  // Runs entities of type E on this node (cluster/entity.h): call it on
  // every node, with the same options, before asking for handles.
  // AlreadyExists if it was called for E before; the status() error if the
  // cluster does not run.
  template <class E>
  absl::Status StartEntities(EntityOptions options = {}) {
    if (!status_.ok()) return absl::Status(status_.code(), std::string(status_.message()));
    if (options.shards == 0) return absl::InvalidArgumentError("cluster: EntityOptions::shards must be positive");
    const uint32_t shards = options.shards;
    return AddRegion(troupe::internal::TypeName<E>(), shards,
                     internal::RegionConfig{
                         .node = &node_,
                         .entity_type = std::string(troupe::internal::TypeName<E>()),
                         .options = std::move(options),
                         .spawn = &internal::SpawnEntity<E>,
                         .counters = std::make_shared<internal::RegionCounters>(),
                         .view = view_,
                     });
  }

  // Cluster singletons: one actor of type A per name in the cluster,
  // running from the start (no message needed) on the member that owns
  // its name's shard, and started again on a survivor when that member
  // leaves or fails (after the membership reports it down). It is an
  // entity with its name as key (EntityOptions::always_active), reached
  // with Singleton<A>(name); call it on every node with the same names. A
  // type runs as singletons or as entities, not both.
  template <class A>
  absl::Status StartSingletons(std::vector<std::string> names, EntityOptions options = {}) {
    options.always_active = std::move(names);
    options.passivate_after = absl::ZeroDuration();
    return StartEntities<A>(std::move(options));
  }
  template <class A>
  EntityRef<A> Singleton(std::string name) const {
    return Entity<A>(std::move(name));
  }

  // The handle of E's entity `key`; not valid() unless StartEntities<E>
  // has run on this node.
  template <class E>
  EntityRef<E> Entity(std::string key) const {
    Ref<internal::ShardRegion> region;
    uint32_t shards = 0;
    FindRegion(troupe::internal::TypeName<E>(), &region, &shards);
    if (!region) return EntityRef<E>();
    const uint32_t shard = ShardOf(key, shards);
    return EntityRef<E>(std::move(region), std::move(key), shard);
  }

  // What this node's region of E has done; zeros without one.
  template <class E>
  RegionStats entity_stats() const {
    return RegionStatsOf(troupe::internal::TypeName<E>());
  }

  // Announces that this node leaves: every member sees it leaving, and its
  // shards move to the other members. Completes once they have been handed
  // over (each within EntityOptions::handoff_timeout); then Node::Shutdown,
  // and the members see it removed.
  Future<void> Leave();

 private:
  struct RegionEntry {
    Ref<internal::ShardRegion> ref;
    uint32_t shards = 0;
    std::shared_ptr<internal::RegionCounters> counters;
  };
  absl::Status AddRegion(std::string_view type, uint32_t shards, internal::RegionConfig config);
  void FindRegion(std::string_view type, Ref<internal::ShardRegion>* region, uint32_t* shards) const;
  RegionStats RegionStatsOf(std::string_view type) const;

  ActorSystem& system_;
  Node& node_;
  absl::Status status_;
  std::shared_ptr<internal::SharedView> view_;
  MembershipProvider::Running running_;
  mutable std::mutex regions_mu_;
  absl::flat_hash_map<std::string, RegionEntry> regions_;  // by entity type; guarded by regions_mu_
};

}  // namespace troupe::cluster

#endif  // TROUPE_CLUSTER_CLUSTER_H_
