// ShardRegion: one per entity type on each node of a cluster
// (cluster/entity.h is the public face). It owns the shards placement gives
// this node, activates their entities on their first message, passivates
// them when idle, restarts them when they fail, and hands shards over when
// the members change. Messages for shards other nodes own go to those
// nodes' regions.
//
// Routing. Every message for an entity, from a handle on this node or from
// another region, passes through the region of the node it reaches, which
// looks at the key's shard:
//   local     this node owns it: delivered to the entity (activated if it
//             is not), or held while the entity stops, then delivered to
//             its next activation;
//   incoming  this node is the new owner and waits for the previous owner
//             to hand the shard over: held (bounded), then delivered — the
//             ones the previous owner sent on first;
//   outgoing  this node hands it over: its entities stop in order (their
//             OnStop runs) and what arrives is sent on to the new owner;
//   remote    another node owns it: sent to that node's region;
//   none      this node hosts nothing (no majority, or no member hosts):
//             an ask fails with Unavailable, a tell is counted as dropped.
//
// Handoff, for a shard whose owner changes from P to N (each node sees the
// change when its membership view does): every other member tells P it
// routes the shard to N from now on (ShardFence, after everything it sent
// P before); N holds what it gets meanwhile. P stops the shard's entities,
// sends on what reaches it, and once every member up has fenced (or after
// handoff_timeout) tells N it is done (ShardHandedOff, behind what it sent
// on). N then delivers what P sent on, then what it held. So no message is
// lost in a planned join or leave, and each sender's messages stay in
// order. A member that holds nothing for the shard answers N's fence at
// once; a P that fails is not waited for: its shards start empty on their
// new owners.
//
// Who may call what: it is an actor; EntityRef and Cluster talk to it with
// messages.

#ifndef TROUPE_CLUSTER_SHARD_REGION_H_
#define TROUPE_CLUSTER_SHARD_REGION_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "cluster/membership.h"
#include "cluster/membership_actor.h"
#include "cluster/sharding.troupe.h"
#include "net/node.h"

namespace troupe::cluster {

// How an entity type is sharded; the same on every node.
struct EntityOptions {
  // Shards the keys are spread over: about ten times the most members the
  // cluster will have. Every node must use the same number.
  uint32_t shards = 128;
  // An entity that has handled no message for this long is stopped (its
  // OnStop runs); its next message activates it again. Zero: never.
  absl::Duration passivate_after = absl::Minutes(2);
  // Messages held for one shard while it is handed over, or for one member
  // while its region is looked up; past it they are dropped (an ask fails
  // with ResourceExhausted) and counted.
  size_t buffer_limit = 100000;
  // How long a handoff waits for the other members' fences (the previous
  // owner) or for the previous owner (the new one) before it goes on.
  absl::Duration handoff_timeout = absl::Seconds(10);
  // An entity that fails (a handler throws, or it stops with an error) is
  // restarted in place, its queued messages kept; more than max_restarts
  // within restart_within and it is stopped instead, its next message
  // activating a fresh one.
  int max_restarts = 3;
  absl::Duration restart_within = absl::Seconds(5);
  // Keys whose entity runs whenever its shard is on this node: activated
  // without waiting for a message, never passivated, started again after
  // it stops (cluster singletons: Cluster::StartSingletons).
  std::vector<std::string> always_active;
  // Lookups of other members' regions.
  absl::Duration lookup_timeout = absl::Seconds(2);
  absl::Duration retry_interval = absl::Milliseconds(200);
};

// What one node's region of one entity type has done, readable from any
// thread.
struct RegionStats {
  uint64_t activations = 0;
  uint64_t passivations = 0;
  uint64_t restarts = 0;
  uint64_t handoffs_out = 0;      // shards handed to another member
  uint64_t handoffs_in = 0;       // shards taken over from another member
  uint64_t handoff_timeouts = 0;  // handoffs that went on without every fence
  uint64_t forwarded = 0;         // messages sent on to another member
  uint64_t dropped = 0;           // tells lost: past buffer_limit, or no member hosts
  uint64_t refused = 0;           // asks failed for the same reasons
  uint64_t entities = 0;          // active now
  uint64_t shards_owned = 0;      // local now
};

namespace internal {

class ShardRegion;

// A message on its way to an entity, typed (from a handle on this node)
// or encoded (from another node's region).
class Routed {
 public:
  Routed(std::string key, uint32_t shard) : key_(std::move(key)), shard_(shard) {}
  virtual ~Routed() = default;

  virtual bool is_ask() const = 0;
  // Queues the message to `entity`, a local actor.
  virtual void DeliverLocal(Node& node, const ActorRef& entity) = 0;
  // Sends it to another node's region, in `envelope` (key, shard and the
  // routing fields filled in); an error (the message does not encode) if
  // nothing was sent.
  virtual absl::Status SendRemote(Node& node, const Ref<ShardRegion>& region, wire::EntityEnvelope envelope) = 0;
  // It cannot be delivered: an ask fails with `status`.
  virtual void Fail(absl::Status status) = 0;

  const std::string& key() const { return key_; }
  uint32_t shard() const { return shard_; }
  // Routing state: sent on by a shard's previous owner; the region that
  // routed it first; regions passed.
  bool forwarded = false;
  std::string origin;
  std::string sender;  // the region it came from, "" from this node
  uint32_t hops = 0;
  // Set by the region for an ask it relays to another member: run once
  // the reply has come back through it.
  absl::AnyInvocable<void() &&> on_relayed;

 private:
  std::string key_;
  uint32_t shard_;
};

// Local messages of a region (they never cross nodes).
struct RouteMessage {
  std::unique_ptr<Routed> routed;
};
struct RegionSweep {};
struct HandoffTimeout {
  uint32_t shard;
  uint64_t epoch;
};
struct AheadTimeout {
  uint32_t shard;
  uint64_t epoch;
};
struct RegionFound {
  std::string member;
  uint64_t incarnation;
  absl::StatusOr<Ref<ShardRegion>> region;
};
struct RetryRegionLookup {
  std::string member;
};
// Answered once this node holds no shard (after Cluster::Leave).
struct AwaitHandedOff {};
struct UnhostedTimeout {
  uint64_t epoch;
};
struct RelayDone {};
struct WakeAlwaysActive {
  uint32_t shard;
};

// Counters a region keeps for RegionStats, written by the region only.
struct RegionCounters {
  std::atomic<uint64_t> activations{0}, passivations{0}, restarts{0}, handoffs_out{0}, handoffs_in{0},
      handoff_timeouts{0}, forwarded{0}, dropped{0}, refused{0}, entities{0}, shards_owned{0};
  RegionStats Get() const;
};

struct RegionConfig {
  Node* node = nullptr;  // not owned; outlives the region
  std::string entity_type;
  EntityOptions options;
  // Spawns the entity of `key` as a supervised child of `parent`.
  absl::AnyInvocable<ActorRef(troupe::internal::ActorCell* parent, const std::string& key, uint32_t shard)> spawn;
  std::shared_ptr<RegionCounters> counters;
  // The membership's view: its serve_until fences delivery (the etcd
  // provider's lease).
  std::shared_ptr<SharedView> view;
};

// The name a region is published under on its Node.
std::string RegionName(std::string_view entity_type);

class ShardRegion : public Actor<ShardRegion> {
 public:
  using Remote = Accepts<wire::EntityEnvelope, wire::EntityAsk, wire::ShardFence, wire::ShardHandedOff>;

  explicit ShardRegion(RegionConfig config);

  void OnStart();
  void On(RouteMessage&& m);
  void On(wire::EntityEnvelope&& m);
  void On(wire::EntityAsk&& m, Reply<wire::EntityReply> reply);
  void On(const wire::ShardFence& m);
  void On(const wire::ShardHandedOff& m);
  void On(const MemberChanged& m);
  void On(const HostingChanged& m);
  void On(const RegionSweep&);
  void On(const HandoffTimeout& m);
  void On(const AheadTimeout& m);
  void On(RegionFound&& m);
  void On(const RetryRegionLookup& m);
  void On(const AwaitHandedOff&, Reply<void> reply);
  void On(const UnhostedTimeout& m);
  void On(const RelayDone&);
  void On(const WakeAlwaysActive& m);

  // Runtime hook: an entity's instance ended (`ended` false: it waits for a
  // restart) or the entity is gone.
  void HandleChildEvent(troupe::internal::ActorCell* child, const absl::Status& reason, bool ended) noexcept;

 private:
  enum class Mode { kNone, kLocal, kIncoming, kOutgoing, kRemote };
  struct Entity {
    ActorRef ref;
    absl::Time last;
    bool stopping = false;
    std::deque<std::unique_ptr<Routed>> waiting;  // for its next activation
    std::deque<absl::Time> restarts;
  };
  struct Shard {
    Mode mode = Mode::kNone;
    // kIncoming: the previous owner; kOutgoing, kRemote: the owner.
    std::string peer;
    // kRemote: the owner routed to before `peer`.
    std::string previous_peer;
    // kIncoming: the members asked for the shard so far.
    absl::flat_hash_set<std::string> asked;
    absl::flat_hash_map<std::string, Entity> entities;
    // kIncoming: sent on by the previous owner, and sent here directly.
    std::deque<std::unique_ptr<Routed>> forwarded, direct;
    // kOutgoing: members that have fenced for `peer`; forced: go on
    // without the rest.
    absl::flat_hash_set<std::string> fenced, requested;
    bool forced = false;
    uint64_t epoch = 0;
    // kRemote: `forwarded` holds what a previous owner sent on while this
    // node's view lagged, until this epoch's AheadTimeout.
    uint64_t ahead_epoch = 0;
  };
  // What goes to another member's region, in order.
  struct Outbound {
    std::unique_ptr<Routed> routed;  // or else a control message:
    std::optional<wire::ShardFence> fence;
    std::optional<wire::ShardHandedOff> handed_off;
  };
  struct PeerRegion {
    Ref<ShardRegion> ref;
    uint64_t incarnation = 0;
    bool looking_up = false;
    std::deque<Outbound> pending;
  };

  // InvalidArgument, naming what is wrong, for an envelope of another
  // entity type or a shard out of range.
  absl::Status CheckEnvelope(const wire::EntityEnvelope& e) const;
  void Route(std::unique_ptr<Routed> routed);
  void DeliverToEntity(Shard& shard, std::unique_ptr<Routed> routed);
  Entity& Activate(Shard& shard, uint32_t s, const std::string& key);
  // Activates the always-active entities of shard `s` if it is local.
  void WakeAlwaysActiveOf(uint32_t s);
  void Hold(std::deque<std::unique_ptr<Routed>>& buffer, std::unique_ptr<Routed> routed, const char* why);
  void Refuse(Routed& routed, absl::Status status);
  void SendTo(const std::string& member, Outbound out);
  void Transmit(const Ref<ShardRegion>& region, Outbound out);
  void LookUp(const std::string& member);
  void FailPending(PeerRegion& peer, const absl::Status& status);

  void Rebalance();
  void StopHosting();
  void BeginOutgoing(uint32_t s, const std::string& to);
  void BeginIncoming(uint32_t s, const std::string& from);
  void GoLocal(uint32_t s);
  void StopEntities(Shard& shard, bool now);
  void TryFinishOutgoing(uint32_t s);
  // Routes again, as direct messages, what a kRemote shard held.
  void PassOnHeld(uint32_t s);
  void RequestFences(uint32_t s);
  void Fence(uint32_t s, const std::string& previous, const std::string& owner, bool request = false);
  void ArmHandoffTimer(uint32_t s);
  void CheckLeaveWaiters();
  void SetMode(Shard& shard, Mode mode);
  void RefuseHeld(Shard& shard, const absl::Status& status);

  bool IsLive(const std::string& name) const;
  // Reported down, or removed (and not back).
  bool Gone(const std::string& name) const;
  std::vector<std::string> LiveMembers() const;  // up or leaving, this node if it hosts
  absl::Status NotHostingError() const;

  RegionConfig config_;
  Node& node_;
  std::string self_;
  std::vector<Shard> shards_;
  absl::flat_hash_map<uint32_t, std::vector<std::string>> always_active_;  // by shard
  absl::flat_hash_set<std::string> always_active_keys_;
  absl::flat_hash_map<troupe::internal::ActorCell*, std::pair<uint32_t, std::string>> by_cell_;
  // The other members as the membership reports them, by name; removed
  // ones erased.
  absl::flat_hash_map<std::string, Member> members_;
  absl::flat_hash_set<std::string> gone_;  // removed, by name
  MemberState self_state_ = MemberState::kUp;
  bool hosting_ = false;
  // Until the membership's first report (its HostingChanged), messages
  // are held in startup_.
  bool initialized_ = false;
  std::deque<std::unique_ptr<Routed>> startup_;
  // From other members while this node does not host (it is joining).
  std::deque<std::unique_ptr<Routed>> unhosted_;
  uint64_t unhosted_epoch_ = 0;
  // Asks relayed to another member whose replies have not come back.
  uint64_t relaying_ = 0;
  absl::flat_hash_map<std::string, PeerRegion> peers_;
  // Fences that came before this node saw the change they are for: shard
  // -> member -> the owner it routes to.
  absl::flat_hash_map<uint32_t, absl::flat_hash_map<std::string, std::string>> early_fences_;
  std::vector<Reply<void>> leave_waiters_;
  uint64_t next_epoch_ = 0;
  uint64_t logged_drops_ = 0;
};

}  // namespace internal
}  // namespace troupe::cluster

#endif  // TROUPE_CLUSTER_SHARD_REGION_H_
