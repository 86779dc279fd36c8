// MembershipActor: one per node of a cluster (cluster/cluster.h starts
// it). It keeps this node's view of the members (cluster/membership.h)
// with the static provider: the member list is fixed in the options, and
// a member's state follows this node's link to it.
//
// How a member is learned: the actor reaches every listed address it has
// no member for — Lookup of the peer's membership actor, published as
// kPublishedName, then a Hello ask — and retries every retry_interval
// until it answers. A Hello from a peer, asked or answered, makes that
// peer's incarnation a member (joining -> up). The Node's events do the
// rest: NodeDown marks the member down, NodeUp(reconnected) of the same
// incarnation up again, NodeLeft (or a new incarnation) removes it; a
// removed member's address is reached again, so its restart rejoins.
//
// Keep-majority: this node hosts entities while the members it sees up
// (or leaving), itself included, are more than half of the listed ones;
// on an even split the half with the lowest listed address keeps hosting.
// Two sides of a partition cannot both have a majority, so at most one
// side hosts.
//
// Who may call what: it is an actor; Cluster talks to it with messages and
// reads its snapshot (SharedView) from any thread.

#ifndef TROUPE_CLUSTER_MEMBERSHIP_ACTOR_H_
#define TROUPE_CLUSTER_MEMBERSHIP_ACTOR_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/task.h"
#include "cluster/membership.h"
#include "cluster/membership.troupe.h"
#include "net/node.h"

namespace troupe::cluster::internal {

inline constexpr char kPublishedName[] = "troupe.cluster.membership";

// The latest view, for readers on any thread. Written only by the
// membership actor.
class SharedView {
 public:
  MembershipView Get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return view_;
  }
  void Set(MembershipView view) {
    std::lock_guard<std::mutex> lock(mu_);
    view_ = std::move(view);
  }

  // Fencing (the etcd provider): the time until which this node may serve
  // entities, whatever its regions have heard; the far future for
  // providers that do not fence. Any thread, without a lock.
  absl::Time serve_until() const { return absl::FromUnixNanos(serve_until_ns_.load(std::memory_order_acquire)); }
  void SetServeUntil(absl::Time t) {
    serve_until_ns_.store(absl::ToUnixNanos(t), std::memory_order_release);
  }

 private:
  mutable std::mutex mu_;
  MembershipView view_;  // guarded by mu_
  std::atomic<int64_t> serve_until_ns_{INT64_MAX};
};

struct MembershipConfig {
  Node* node = nullptr;  // not owned; outlives the actor
  // Every member's "host:port", this node's own among them.
  std::vector<std::string> members;
  std::string self_address;
  absl::Duration retry_interval = absl::Milliseconds(200);
  absl::Duration ask_timeout = absl::Seconds(2);
  std::shared_ptr<SharedView> view;
};

// What a subscriber is told (Cluster::Subscribe builds it).
struct MembershipEvents {
  absl::AnyInvocable<void(MemberChanged)> changed;
  absl::AnyInvocable<void(HostingChanged)> hosting;
};

// The subscribers of a provider's actor, and how every provider tells
// them (the actor's own thread only).
class Subscribers {
 public:
  // Tells `events` every member of `now` (sorted by address here, each as
  // a change from joining) and whether this node hosts, then keeps it.
  void Add(MembershipEvents events, std::vector<Member> now, bool hosting, uint64_t sequence);
  // Sets `view` (its members sorted by address here) in `shared`, so that a
  // subscriber told of a change reads it there; then tells every
  // subscriber `change`, if any, then `hosting`, if any.
  void Publish(SharedView& shared, MembershipView view, const std::optional<MemberChanged>& change,
               const std::optional<HostingChanged>& hosting);

 private:
  std::vector<MembershipEvents> events_;
};

// Local messages (never cross nodes).
struct AddSubscriber {
  MembershipEvents events;
};
struct ReachMember {
  std::string address;
};
struct BeginLeave {};

class MembershipActor : public Actor<MembershipActor> {
 public:
  using Remote = Accepts<wire::Hello, wire::Leaving>;

  explicit MembershipActor(MembershipConfig config);

  void OnStart();
  wire::Hello On(const wire::Hello& hello);
  void On(const wire::Leaving& leaving);
  void On(const NodeUp& up);
  void On(const NodeDown& down);
  void On(const NodeLeft& left);
  void On(AddSubscriber&& add);
  Task<void> On(const ReachMember& reach);
  // Marks this node leaving and tells every member it knows.
  void On(const BeginLeave&);

 private:
  struct Known {
    Member member;
    Ref<MembershipActor> peer;  // its membership actor, once it said Hello
    bool reaching = false;      // a ReachMember is in flight or scheduled
  };

  wire::Hello OwnHello() const;
  // Records a Hello (asked or answered): the sender's incarnation is up.
  void Learn(const wire::Hello& hello);
  void SetState(Known& k, MemberState state);
  // Schedules reaching `address` unless that is under way.
  void Reach(const std::string& address, absl::Duration after);
  Known* FindByName(const std::string& name);
  // Updates the shared view, then tells the subscribers `change` (if
  // any) and a change of hosting (if any), in that order.
  void Publish(std::optional<MemberChanged> change = std::nullopt);
  bool ComputeHosting(std::string* why) const;

  MembershipConfig config_;
  Member self_;
  // By address (the static list's identity), this node's own excluded.
  absl::flat_hash_map<std::string, Known> known_;
  Subscribers subscribers_;
  uint64_t sequence_ = 0;
  bool hosting_ = false;
};

}  // namespace troupe::cluster::internal

#endif  // TROUPE_CLUSTER_MEMBERSHIP_ACTOR_H_
