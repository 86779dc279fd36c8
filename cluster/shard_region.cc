#include "cluster/shard_region.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cluster/placement.h"

namespace troupe::cluster::internal {

namespace {

// A lagging view passes a message on; past this many regions it fails.
constexpr uint32_t kMaxHops = 4;

// Where the reply of an entity ask that came from another region goes:
// encoded into the EntityReply of that region's EntityAsk.
class EntityReplyRoute final : public troupe::internal::ReplyRoute {
 public:
  EntityReplyRoute(Node* node, std::shared_ptr<Reply<wire::EntityReply>> reply)
      : node_(node), reply_(std::move(reply)) {}

  void Send(uint64_t type_id, troupe::internal::EncodeFn encode, const void* value) noexcept override {
    absl::StatusOr<std::string> bytes = node_->EncodeNested(type_id, encode, value);
    if (!bytes.ok()) {
      reply_->Fail(std::move(bytes).status());
      return;
    }
    reply_->Send(wire::EntityReply{.type_id = type_id, .payload = *std::move(bytes)});
  }
  void Fail(const absl::Status& status) noexcept override { reply_->Fail(status); }

 private:
  Node* node_;
  std::shared_ptr<Reply<wire::EntityReply>> reply_;
};

// An entity message that arrived from another node's region, still encoded.
class EncodedRouted final : public Routed {
 public:
  EncodedRouted(wire::EntityEnvelope envelope, std::optional<Reply<wire::EntityReply>> reply)
      : Routed(envelope.key, envelope.shard), envelope_(std::move(envelope)) {
    forwarded = envelope_.forwarded;
    origin = envelope_.origin;
    sender = envelope_.sender;
    hops = envelope_.hops;
    if (reply) reply_ = std::make_shared<Reply<wire::EntityReply>>(*std::move(reply));
  }

  bool is_ask() const override { return reply_ != nullptr; }

  void DeliverLocal(Node& node, const ActorRef& entity) override {
    std::unique_ptr<troupe::internal::ReplyRoute> route;
    if (reply_) route = std::make_unique<EntityReplyRoute>(&node, reply_);
    absl::Status status = node.DeliverNested(entity, envelope_.type_id, envelope_.payload, std::move(route));
    if (status.ok()) return;
    // A type the entity does not take is the sender's mistake too.
    const absl::StatusCode code = absl::IsUnimplemented(status) ? absl::StatusCode::kInvalidArgument : status.code();
    Fail(absl::Status(code, absl::StrCat("a message for entity '", key(), "' from ", origin, ": ", status.message())));
  }

  absl::Status SendRemote(Node&, const Ref<ShardRegion>& region, wire::EntityEnvelope envelope) override {
    envelope.type_id = envelope_.type_id;
    envelope.payload = std::move(envelope_.payload);
    if (!reply_) {
      region.Tell(std::move(envelope));
      return absl::OkStatus();
    }
    region.Ask(wire::EntityAsk{.envelope = std::move(envelope)})
        .OnCompleteInline([reply = reply_, done = std::move(on_relayed)](Result<wire::EntityReply>&& r) mutable {
          reply->Complete(std::move(r));
          if (done) std::move(done)();
        });
    return absl::OkStatus();
  }

  void Fail(absl::Status status) override {
    if (reply_) reply_->Fail(std::move(status));
  }

 private:
  wire::EntityEnvelope envelope_;
  std::shared_ptr<Reply<wire::EntityReply>> reply_;
};

}  // namespace

RegionStats RegionCounters::Get() const {
  auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  return RegionStats{.activations = get(activations),
                     .passivations = get(passivations),
                     .restarts = get(restarts),
                     .handoffs_out = get(handoffs_out),
                     .handoffs_in = get(handoffs_in),
                     .handoff_timeouts = get(handoff_timeouts),
                     .forwarded = get(forwarded),
                     .dropped = get(dropped),
                     .refused = get(refused),
                     .entities = get(entities),
                     .shards_owned = get(shards_owned)};
}

std::string RegionName(std::string_view entity_type) { return absl::StrCat("troupe.cluster.region:", std::string(entity_type)); }

ShardRegion::ShardRegion(RegionConfig config)
    : config_(std::move(config)), node_(*config_.node), self_(node_.name()), shards_(config_.options.shards) {
  for (const std::string& key : config_.options.always_active) {
    if (always_active_keys_.insert(key).second) {
      always_active_[ShardOf(key, static_cast<uint32_t>(shards_.size()))].push_back(key);
    }
  }
}

void ShardRegion::OnStart() {
  const absl::Duration idle = config_.options.passivate_after;
  if (idle > absl::ZeroDuration()) {
    SendPeriodically(std::clamp(idle / 2, absl::Milliseconds(50), absl::Seconds(30)), Self(), RegionSweep{});
  }
}

// --- Routing ---------------------------------------------------------------

void ShardRegion::On(RouteMessage&& m) { Route(std::move(m.routed)); }

absl::Status ShardRegion::CheckEnvelope(const wire::EntityEnvelope& e) const {
  if (e.entity_type == config_.entity_type && e.shard < shards_.size()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("the region of ", config_.entity_type, " on node ", self_, " got a message from ", e.sender,
                   " for '", e.key, "' of entity type ", e.entity_type, " in shard ", e.shard, " of ",
                   shards_.size(), ": every node must run the same entity types with the same number of shards"));
}

void ShardRegion::On(wire::EntityEnvelope&& m) {
  if (absl::Status s = CheckEnvelope(m); !s.ok()) {
    log().warn("cluster: {}: dropped", std::string(s.message()));
    config_.counters->dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Route(std::make_unique<EncodedRouted>(std::move(m), std::nullopt));
}

void ShardRegion::On(wire::EntityAsk&& m, Reply<wire::EntityReply> reply) {
  if (absl::Status s = CheckEnvelope(m.envelope); !s.ok()) {
    config_.counters->refused.fetch_add(1, std::memory_order_relaxed);
    reply.Fail(std::move(s));
    return;
  }
  Route(std::make_unique<EncodedRouted>(std::move(m.envelope), std::move(reply)));
}

void ShardRegion::Route(std::unique_ptr<Routed> routed) {
  if (!initialized_) {
    Hold(startup_, std::move(routed), "waiting for the cluster's membership");
    return;
  }
  const uint32_t s = routed->shard();
  Shard& shard = shards_[s];
  if (!routed->sender.empty() && !routed->forwarded) {
    // A member that sends here directly routes the shard here again.
    if (auto it = early_fences_.find(s); it != early_fences_.end()) it->second.erase(routed->sender);
    if (shard.mode == Mode::kOutgoing) shard.fenced.erase(routed->sender);
  }
  switch (shard.mode) {
    case Mode::kNone:
      if (!hosting_ && !routed->sender.empty()) {
        // Another member routes here already: this node is joining and
        // does not see its majority yet. Held until it does, for
        // handoff_timeout at most.
        if (unhosted_.empty()) {
          SendAfter(config_.options.handoff_timeout, Self(), UnhostedTimeout{.epoch = ++next_epoch_});
          unhosted_epoch_ = next_epoch_;
        }
        Hold(unhosted_, std::move(routed), "waiting for this node to host");
        return;
      }
      Refuse(*routed, NotHostingError());
      return;
    case Mode::kLocal:
      DeliverToEntity(shard, std::move(routed));
      return;
    case Mode::kIncoming: {
      std::deque<std::unique_ptr<Routed>>& buffer = routed->forwarded ? shard.forwarded : shard.direct;
      Hold(buffer, std::move(routed), "waiting for the shard's previous owner");
      return;
    }
    case Mode::kOutgoing:
      routed->forwarded = true;
      config_.counters->forwarded.fetch_add(1, std::memory_order_relaxed);
      SendTo(shard.peer, Outbound{.routed = std::move(routed), .fence = {}, .handed_off = {}});
      return;
    case Mode::kRemote:
      if (routed->forwarded && !routed->sender.empty()) {
        // Sent on by a previous owner that sees this node as the new one:
        // this node's view lags. Held until it catches up (then delivered
        // first, as a handoff's forwarded messages are) or, past
        // handoff_timeout, sent to the owner it sees.
        if (shard.forwarded.empty()) {
          shard.ahead_epoch = ++next_epoch_;
          SendAfter(config_.options.handoff_timeout, Self(), AheadTimeout{.shard = s, .epoch = shard.ahead_epoch});
        }
        Hold(shard.forwarded, std::move(routed), "waiting for this node's view to catch up");
        return;
      }
      if (routed->hops >= kMaxHops) {
        Refuse(*routed, absl::UnavailableError(absl::StrCat("entity '", routed->key(), "' was passed on ",
                                                            routed->hops, " times without reaching its owner (",
                                                            "the members' views disagree)")));
        return;
      }
      if (!routed->sender.empty()) config_.counters->forwarded.fetch_add(1, std::memory_order_relaxed);
      SendTo(shard.peer, Outbound{.routed = std::move(routed), .fence = {}, .handed_off = {}});
      return;
  }
}

ShardRegion::Entity& ShardRegion::Activate(Shard& shard, uint32_t s, const std::string& key) {
  auto [it, inserted] = shard.entities.try_emplace(key);
  Entity& e = it->second;
  if (inserted) {
    e.ref = config_.spawn(Self().cell(), key, s);
    e.last = Now();
    by_cell_[e.ref.cell()] = {s, key};
    config_.counters->activations.fetch_add(1, std::memory_order_relaxed);
    config_.counters->entities.fetch_add(1, std::memory_order_relaxed);
  }
  return e;
}

void ShardRegion::WakeAlwaysActiveOf(uint32_t s) {
  auto it = always_active_.find(s);
  if (it == always_active_.end() || shards_[s].mode != Mode::kLocal) return;
  for (const std::string& key : it->second) Activate(shards_[s], s, key);
}

void ShardRegion::On(const WakeAlwaysActive& m) {
  if (m.shard < shards_.size()) WakeAlwaysActiveOf(m.shard);
}

void ShardRegion::DeliverToEntity(Shard& shard, std::unique_ptr<Routed> routed) {
  if (config_.view != nullptr && absl::Now() >= config_.view->serve_until()) {
    // The membership's fence passed before this region heard it stops
    // hosting (a stalled node that runs again): nothing is served.
    Refuse(*routed, absl::UnavailableError(absl::StrCat(
                        "node ", self_, " may not serve entities now: its membership lease was not renewed in time (fenced since ",
                        absl::FormatTime(config_.view->serve_until()), ")")));
    return;
  }
  Entity& e = Activate(shard, routed->shard(), routed->key());
  if (e.stopping) {
    Hold(e.waiting, std::move(routed), "waiting for the entity's activation to stop");
    return;
  }
  e.last = Now();
  routed->DeliverLocal(node_, e.ref);
}

void ShardRegion::Hold(std::deque<std::unique_ptr<Routed>>& buffer, std::unique_ptr<Routed> routed,
                       const char* why) {
  if (buffer.size() >= config_.options.buffer_limit) {
    Refuse(*routed, absl::ResourceExhaustedError(absl::StrCat(
                        "entity '", routed->key(), "': ", config_.options.buffer_limit, " messages already held (",
                        why, ") on node ", self_, ": message dropped")));
    return;
  }
  buffer.push_back(std::move(routed));
}

void ShardRegion::Refuse(Routed& routed, absl::Status status) {
  if (routed.is_ask()) {
    config_.counters->refused.fetch_add(1, std::memory_order_relaxed);
  } else {
    config_.counters->dropped.fetch_add(1, std::memory_order_relaxed);
    // Powers of two: a burst of drops logs a few lines, not one per message.
    const uint64_t n = ++logged_drops_;
    if ((n & (n - 1)) == 0) {
      log().warn("cluster: region of {} on {} dropped a tell ({} so far): {}", config_.entity_type, self_, n,
                 status.ToString());
    }
  }
  routed.Fail(std::move(status));
}

absl::Status ShardRegion::NotHostingError() const {
  if (!hosting_) {
    return absl::UnavailableError(absl::StrCat("node ", self_,
                                               " does not host entities now: it does not see a majority of the "
                                               "cluster's members"));
  }
  return absl::UnavailableError(absl::StrCat("no member of the cluster hosts entities of ", config_.entity_type,
                                             " (as node ", self_, " sees it)"));
}

// --- Other members' regions ------------------------------------------------

void ShardRegion::SendTo(const std::string& member, Outbound out) {
  PeerRegion& peer = peers_[member];
  if (peer.ref && peer.pending.empty()) {
    Transmit(peer.ref, std::move(out));
    return;
  }
  if (out.routed && peer.pending.size() >= config_.options.buffer_limit) {
    Refuse(*out.routed, absl::ResourceExhaustedError(absl::StrCat(
                            "entity '", out.routed->key(), "': ", config_.options.buffer_limit,
                            " messages already wait for the region of member ", member, ": message dropped")));
    return;
  }
  peer.pending.push_back(std::move(out));
  if (!peer.ref) LookUp(member);
}

void ShardRegion::Transmit(const Ref<ShardRegion>& region, Outbound out) {
  if (out.fence) {
    region.Tell(*std::move(out.fence));
  } else if (out.handed_off) {
    region.Tell(*std::move(out.handed_off));
  } else {
    Routed& r = *out.routed;
    if (r.is_ask() && !r.sender.empty()) {
      // A relayed ask: its reply comes back through here, so this node
      // stays until it has (CheckLeaveWaiters).
      ++relaying_;
      r.on_relayed = [self = Self()] { self.Tell(RelayDone{}); };
    }
    wire::EntityEnvelope envelope{.entity_type = config_.entity_type,
                                  .key = r.key(),
                                  .shard = r.shard(),
                                  .type_id = 0,
                                  .payload = {},
                                  .forwarded = r.forwarded,
                                  .origin = r.origin.empty() ? self_ : r.origin,
                                  .hops = r.hops + 1,
                                  .sender = self_};
    if (absl::Status status = r.SendRemote(node_, region, std::move(envelope)); !status.ok()) {
      Refuse(r, absl::InvalidArgumentError(
                    absl::StrCat("a message to entity '", r.key(), "' cannot cross nodes: ", status.message())));
    }
  }
}

void ShardRegion::LookUp(const std::string& member) {
  PeerRegion& peer = peers_[member];
  auto it = members_.find(member);
  // A member this region has not heard of yet (another region can hear of
  // it first): looked up once the membership reports it.
  if (peer.looking_up || it == members_.end()) return;
  peer.looking_up = true;
  const uint64_t incarnation = it->second.incarnation;
  node_.Lookup<ShardRegion>(it->second.address, RegionName(config_.entity_type), config_.options.lookup_timeout)
      .OnCompleteInline([self = Self(), member, incarnation](Result<Ref<ShardRegion>>&& r) {
        self.Tell(RegionFound{.member = member, .incarnation = incarnation, .region = std::move(r)});
      });
}

void ShardRegion::On(RegionFound&& m) {
  auto pit = peers_.find(m.member);
  if (pit == peers_.end()) return;
  PeerRegion& peer = pit->second;
  peer.looking_up = false;
  auto it = members_.find(m.member);
  const bool current = it != members_.end() && it->second.incarnation == m.incarnation;
  if (m.region.ok() && current) {
    peer.ref = *std::move(m.region);
    peer.incarnation = m.incarnation;
    while (!peer.pending.empty() && peer.ref) {
      Outbound out = std::move(peer.pending.front());
      peer.pending.pop_front();
      Transmit(peer.ref, std::move(out));
    }
    CheckLeaveWaiters();
    return;
  }
  if (!current) {
    // Another incarnation by now: look that one up.
    if (!peer.pending.empty()) LookUp(m.member);
    return;
  }
  if (IsLive(m.member)) {
    log().info("cluster: region of {} on {}: the region on member {} was not found yet ({}); retrying",
               config_.entity_type, self_, m.member, m.region.status().ToString());
    SendAfter(config_.options.retry_interval, Self(), RetryRegionLookup{.member = m.member});
    return;
  }
  FailPending(peer, absl::UnavailableError(absl::StrCat("the region of ", config_.entity_type, " on member ",
                                                        m.member, " cannot be reached: ",
                                                        m.region.status().message())));
}

void ShardRegion::On(const RetryRegionLookup& m) {
  auto it = peers_.find(m.member);
  if (it != peers_.end() && !it->second.ref && !it->second.pending.empty()) LookUp(m.member);
}

void ShardRegion::FailPending(PeerRegion& peer, const absl::Status& status) {
  std::deque<Outbound> pending = std::exchange(peer.pending, {});
  for (Outbound& out : pending) {
    if (out.routed) Refuse(*out.routed, status);
  }
}

// --- Membership ------------------------------------------------------------

void ShardRegion::On(const MemberChanged& m) {
  const Member& member = m.member;
  if (member.name == self_) {
    self_state_ = member.state;
  } else if (member.state == MemberState::kRemoved) {
    auto it = members_.find(member.name);
    if (it != members_.end() && it->second.incarnation <= member.incarnation) {
      members_.erase(it);
      gone_.insert(member.name);
      if (auto pit = peers_.find(member.name); pit != peers_.end()) {
        FailPending(pit->second, absl::UnavailableError(absl::StrCat("member ", member.name, " left the cluster")));
        peers_.erase(pit);
      }
      for (auto& [s, fences] : early_fences_) fences.erase(member.name);
    }
  } else if (member.state != MemberState::kJoining) {
    gone_.erase(member.name);
    Member& known = members_[member.name];
    if (known.incarnation != 0 && known.incarnation != member.incarnation) {
      // A restarted node: the Ref of its earlier region is no good.
      if (auto pit = peers_.find(member.name); pit != peers_.end()) {
        pit->second.ref = Ref<ShardRegion>();
        if (!pit->second.pending.empty()) LookUp(member.name);
      }
    }
    known = member;
    if (auto pit = peers_.find(member.name);
        pit != peers_.end() && !pit->second.ref && !pit->second.pending.empty() && member.state != MemberState::kDown) {
      LookUp(member.name);
    }
    if (member.state == MemberState::kDown) {
      if (auto pit = peers_.find(member.name); pit != peers_.end()) {
        FailPending(pit->second, absl::UnavailableError(absl::StrCat("member ", member.name, " is down")));
      }
    }
  }
  Rebalance();
}

void ShardRegion::On(const HostingChanged& m) {
  if (!initialized_) {
    // The end of the membership's first report: what came before it was
    // held, and is routed now.
    initialized_ = true;
    hosting_ = m.hosting;
    Rebalance();
    std::deque<std::unique_ptr<Routed>> held = std::exchange(startup_, {});
    for (auto& r : held) Route(std::move(r));
    return;
  }
  if (hosting_ == m.hosting) return;
  hosting_ = m.hosting;
  Rebalance();
  if (hosting_) {
    std::deque<std::unique_ptr<Routed>> held = std::exchange(unhosted_, {});
    for (auto& r : held) Route(std::move(r));
  }
}

void ShardRegion::On(const UnhostedTimeout& m) {
  if (m.epoch != unhosted_epoch_ || hosting_) return;
  std::deque<std::unique_ptr<Routed>> held = std::exchange(unhosted_, {});
  for (auto& r : held) Refuse(*r, NotHostingError());
}

void ShardRegion::On(const RelayDone&) {
  --relaying_;
  CheckLeaveWaiters();
}

bool ShardRegion::Gone(const std::string& name) const {
  if (gone_.contains(name)) return true;
  auto it = members_.find(name);
  return it != members_.end() && it->second.state == MemberState::kDown;
}

bool ShardRegion::IsLive(const std::string& name) const {
  if (name == self_) return hosting_ && (self_state_ == MemberState::kUp || self_state_ == MemberState::kLeaving);
  auto it = members_.find(name);
  return it != members_.end() && (it->second.state == MemberState::kUp || it->second.state == MemberState::kLeaving);
}

std::vector<std::string> ShardRegion::LiveMembers() const {
  std::vector<std::string> live;
  if (IsLive(self_)) live.push_back(self_);
  for (const auto& [name, m] : members_) {
    if (IsLive(name)) live.push_back(name);
  }
  return live;
}

void ShardRegion::Rebalance() {
  if (!hosting_) {
    StopHosting();
    return;
  }
  std::vector<std::string> eligible;
  if (self_state_ == MemberState::kUp) eligible.push_back(self_);
  for (const auto& [name, m] : members_) {
    if (m.state == MemberState::kUp) eligible.push_back(name);
  }
  const std::vector<std::string> live = LiveMembers();
  const ShardTable table(static_cast<uint32_t>(shards_.size()), eligible);
  for (uint32_t s = 0; s < shards_.size(); ++s) {
    Shard& shard = shards_[s];
    const std::string& owner = table.owner(s);
    std::vector<std::string> others;
    for (const std::string& name : live) {
      if (name != owner) others.push_back(name);
    }
    // Who held it before `owner` did: with rendezvous hashing, the owner
    // among the live members without it.
    const std::string previous = OwnerOf(s, others);
    if (owner.empty()) {
      if (shard.mode == Mode::kLocal || shard.mode == Mode::kIncoming) StopEntities(shard, /*now=*/false);
      RefuseHeld(shard, NotHostingError());
      SetMode(shard, Mode::kNone);
      continue;
    }
    if (owner == self_) {
      switch (shard.mode) {
        case Mode::kLocal:
          break;
        case Mode::kIncoming:
          // Waiting for a member not reported yet, or alive, goes on; one
          // that failed or left is replaced by the next guess.
          if (!Gone(shard.peer)) break;
          if (previous.empty() || previous == self_ || shard.asked.contains(previous)) {
            GoLocal(s);
          } else {
            shard.peer = previous;
            shard.asked.insert(previous);
            Fence(s, previous, self_);
          }
          break;
        case Mode::kOutgoing:
          // The move is undone before it finished. The member it was going
          // to may have started the shard meanwhile: asked for it back.
          BeginIncoming(s, shard.peer);
          break;
        case Mode::kNone:
        case Mode::kRemote: {
          // The previous owner: the one this node routed to, if it is still
          // there; else the rendezvous guess (a joining node's).
          const std::string from = shard.mode == Mode::kRemote && IsLive(shard.peer) ? shard.peer : previous;
          if (from.empty() || from == self_) {
            GoLocal(s);
          } else {
            BeginIncoming(s, from);
          }
          break;
        }
      }
      continue;
    }
    // Another member owns it.
    switch (shard.mode) {
      case Mode::kLocal:
      case Mode::kIncoming:
        BeginOutgoing(s, owner);
        break;
      case Mode::kOutgoing:
        // The fences still hold: they say who no longer routes here.
        shard.peer = owner;
        RequestFences(s);
        TryFinishOutgoing(s);
        break;
      case Mode::kNone:
        SetMode(shard, Mode::kRemote);
        shard.peer = owner;
        shard.previous_peer.clear();
        break;
      case Mode::kRemote:
        if (shard.peer == owner) break;
        // Everything sent to the old owner is ahead of this.
        if (IsLive(shard.peer)) Fence(s, shard.peer, owner);
        shard.previous_peer = std::move(shard.peer);
        shard.peer = owner;
        PassOnHeld(s);
        break;
    }
  }
  CheckLeaveWaiters();
}

void ShardRegion::StopHosting() {
  for (uint32_t s = 0; s < shards_.size(); ++s) {
    Shard& shard = shards_[s];
    if (shard.mode == Mode::kNone) continue;
    StopEntities(shard, /*now=*/false);
    RefuseHeld(shard, NotHostingError());
    SetMode(shard, Mode::kNone);
    shard.peer.clear();
  }
  CheckLeaveWaiters();
}

void ShardRegion::RefuseHeld(Shard& shard, const absl::Status& status) {
  for (auto* buffer : {&shard.forwarded, &shard.direct}) {
    std::deque<std::unique_ptr<Routed>> held = std::exchange(*buffer, {});
    for (auto& r : held) Refuse(*r, status);
  }
}

void ShardRegion::SetMode(Shard& shard, Mode mode) {
  const bool was_local = shard.mode == Mode::kLocal;
  shard.mode = mode;
  if (was_local != (mode == Mode::kLocal)) {
    config_.counters->shards_owned.fetch_add(mode == Mode::kLocal ? 1 : uint64_t(-1), std::memory_order_relaxed);
  }
}

void ShardRegion::Fence(uint32_t s, const std::string& previous, const std::string& owner, bool request) {
  SendTo(previous,
         Outbound{.routed = nullptr,
                  .fence = wire::ShardFence{.shard = s, .from = self_, .owner = owner, .request = request},
                  .handed_off = {}});
}

void ShardRegion::BeginIncoming(uint32_t s, const std::string& from) {
  Shard& shard = shards_[s];
  SetMode(shard, Mode::kIncoming);
  shard.peer = from;
  shard.asked = {from};
  log().info("cluster: region of {} on {} takes shard {} over from {}", config_.entity_type, self_, s, from);
  Fence(s, from, self_);
  ArmHandoffTimer(s);
}

void ShardRegion::BeginOutgoing(uint32_t s, const std::string& to) {
  Shard& shard = shards_[s];
  const bool was_incoming = shard.mode == Mode::kIncoming;
  SetMode(shard, Mode::kOutgoing);
  shard.peer = to;
  shard.forced = false;
  shard.fenced.clear();
  if (auto it = early_fences_.find(s); it != early_fences_.end()) {
    for (const auto& [from, owner] : it->second) shard.fenced.insert(from);
    early_fences_.erase(it);
  }
  shard.requested.clear();
  RequestFences(s);
  StopEntities(shard, /*now=*/false);
  if (was_incoming) {
    // Held for the handoff we never finished: on to the new owner, first
    // what the previous owner sent on.
    for (auto* buffer : {&shard.forwarded, &shard.direct}) {
      std::deque<std::unique_ptr<Routed>> held = std::exchange(*buffer, {});
      for (auto& r : held) {
        r->forwarded = true;
        SendTo(to, Outbound{.routed = std::move(r), .fence = {}, .handed_off = {}});
      }
    }
  }
  log().info("cluster: region of {} on {} hands shard {} to {} ({} entities)", config_.entity_type, self_, s, to,
             shard.entities.size());
  ArmHandoffTimer(s);
  TryFinishOutgoing(s);
}

void ShardRegion::RequestFences(uint32_t s) {
  // Every member that may route here says when it no longer does; members
  // reported since the handoff began are asked too.
  Shard& shard = shards_[s];
  for (const std::string& name : LiveMembers()) {
    if (name == self_ || shard.fenced.contains(name) || shard.requested.contains(name)) continue;
    shard.requested.insert(name);
    Fence(s, name, shard.peer, /*request=*/true);
  }
}

void ShardRegion::GoLocal(uint32_t s) {
  Shard& shard = shards_[s];
  const bool was_incoming = shard.mode == Mode::kIncoming;
  SetMode(shard, Mode::kLocal);
  shard.peer.clear();
  if (was_incoming) config_.counters->handoffs_in.fetch_add(1, std::memory_order_relaxed);
  std::deque<std::unique_ptr<Routed>> forwarded = std::exchange(shard.forwarded, {});
  std::deque<std::unique_ptr<Routed>> direct = std::exchange(shard.direct, {});
  for (auto& r : forwarded) DeliverToEntity(shard, std::move(r));
  for (auto& r : direct) DeliverToEntity(shard, std::move(r));
  WakeAlwaysActiveOf(s);
}

void ShardRegion::StopEntities(Shard& shard, bool now) {
  for (auto& [key, e] : shard.entities) {
    if (e.stopping && !now) continue;
    e.stopping = true;
    e.ref.cell()->RequestStopForGood(absl::OkStatus(), now);
  }
}

void ShardRegion::ArmHandoffTimer(uint32_t s) {
  Shard& shard = shards_[s];
  shard.epoch = ++next_epoch_;
  SendAfter(config_.options.handoff_timeout, Self(), HandoffTimeout{.shard = s, .epoch = shard.epoch});
}

void ShardRegion::On(const AheadTimeout& m) {
  if (m.shard >= shards_.size()) return;
  Shard& shard = shards_[m.shard];
  if (shard.ahead_epoch != m.epoch || shard.mode != Mode::kRemote || shard.forwarded.empty()) return;
  log().warn("cluster: region of {} on {}: {} messages for shard {} came from its previous owner, but this node "
             "still sees {} as the owner after {}; sending them there",
             config_.entity_type, self_, shard.forwarded.size(), m.shard, shard.peer,
             absl::FormatDuration(config_.options.handoff_timeout));
  PassOnHeld(m.shard);
}

void ShardRegion::PassOnHeld(uint32_t s) {
  Shard& shard = shards_[s];
  std::deque<std::unique_ptr<Routed>> held = std::exchange(shard.forwarded, {});
  for (auto& r : held) {
    r->forwarded = false;  // the next region routes it by its own view
    Route(std::move(r));
  }
}

void ShardRegion::On(const HandoffTimeout& m) {
  if (m.shard >= shards_.size()) return;
  Shard& shard = shards_[m.shard];
  if (shard.epoch != m.epoch) return;
  if (shard.mode == Mode::kIncoming) {
    log().warn("cluster: region of {} on {}: shard {} was not handed over by {} within {}; serving it without",
               config_.entity_type, self_, m.shard, shard.peer, absl::FormatDuration(config_.options.handoff_timeout));
    config_.counters->handoff_timeouts.fetch_add(1, std::memory_order_relaxed);
    GoLocal(m.shard);
    CheckLeaveWaiters();
  } else if (shard.mode == Mode::kOutgoing) {
    std::vector<std::string> missing;
    for (const std::string& name : LiveMembers()) {
      if (name != self_ && !shard.fenced.contains(name)) missing.push_back(name);
    }
    log().warn("cluster: region of {} on {}: handing shard {} to {}: no fence from {} within {}, or {} entities "
               "still stopping; going on",
               config_.entity_type, self_, m.shard, shard.peer, absl::StrJoin(missing, ", "),
               absl::FormatDuration(config_.options.handoff_timeout), shard.entities.size());
    config_.counters->handoff_timeouts.fetch_add(1, std::memory_order_relaxed);
    shard.forced = true;
    StopEntities(shard, /*now=*/true);
    TryFinishOutgoing(m.shard);
  }
}

void ShardRegion::TryFinishOutgoing(uint32_t s) {
  Shard& shard = shards_[s];
  if (shard.mode != Mode::kOutgoing || !shard.entities.empty()) return;
  if (!shard.forced) {
    for (const std::string& name : LiveMembers()) {
      if (name != self_ && !shard.fenced.contains(name)) return;
    }
  }
  SendTo(shard.peer, Outbound{.routed = nullptr,
                              .fence = {},
                              .handed_off = wire::ShardHandedOff{.shard = s, .from = self_, .holder = {}}});
  config_.counters->handoffs_out.fetch_add(1, std::memory_order_relaxed);
  SetMode(shard, Mode::kRemote);
  shard.fenced.clear();
  early_fences_.erase(s);
  CheckLeaveWaiters();
}

void ShardRegion::On(const wire::ShardFence& m) {
  if (m.shard >= shards_.size()) return;
  Shard& shard = shards_[m.shard];
  log().debug("cluster: region of {} on {}: shard {}: {} from {} (owner {})", config_.entity_type, self_, m.shard,
              m.request ? "fence request" : "fence", m.from, m.owner);
  if (m.request) {
    // The shard's previous owner asks whether this node still routes it
    // there: it does only while its own view says so, and then it fences
    // when the view changes (Rebalance).
    if (shard.mode == Mode::kRemote && shard.peer == m.from) return;
    Fence(m.shard, m.from, shard.mode == Mode::kRemote ? shard.peer : m.owner);
    return;
  }
  if (shard.mode == Mode::kOutgoing) {
    shard.fenced.insert(m.from);
    TryFinishOutgoing(m.shard);
    return;
  }
  if (shard.mode == Mode::kLocal || shard.mode == Mode::kIncoming) {
    // This node has not seen the change yet (or sees another): kept for
    // when it does.
    early_fences_[m.shard][m.from] = m.owner;
    return;
  }
  // This node holds nothing for the shard: a new owner asking for it has
  // it at once (what reaches this node for it later is sent on), with the
  // member this node routed it to, which may hold it and which the new
  // owner may not know of yet.
  if (m.from == m.owner) {
    std::string holder;
    if (shard.mode == Mode::kRemote) holder = shard.peer != m.from ? shard.peer : shard.previous_peer;
    if (holder == m.from || holder == self_) holder.clear();
    SendTo(m.owner,
           Outbound{.routed = nullptr,
                    .fence = {},
                    .handed_off = wire::ShardHandedOff{.shard = m.shard, .from = self_, .holder = std::move(holder)}});
  }
}

void ShardRegion::On(const wire::ShardHandedOff& m) {
  if (m.shard >= shards_.size()) return;
  Shard& shard = shards_[m.shard];
  log().debug("cluster: region of {} on {}: shard {} handed over by {} (holder {})", config_.entity_type, self_,
              m.shard, m.from, m.holder);
  if (shard.mode != Mode::kIncoming || shard.peer != m.from) return;
  if (!m.holder.empty() && m.holder != self_ && !shard.asked.contains(m.holder) && !Gone(m.holder)) {
    // It held nothing, but routed the shard to `holder`: that one may.
    shard.peer = m.holder;
    shard.asked.insert(m.holder);
    Fence(m.shard, m.holder, self_);
    return;
  }
  GoLocal(m.shard);
  CheckLeaveWaiters();
}

// --- Entities --------------------------------------------------------------

void ShardRegion::On(const RegionSweep&) {
  const absl::Time idle_since = Now() - config_.options.passivate_after;
  for (Shard& shard : shards_) {
    if (shard.mode != Mode::kLocal) continue;
    for (auto& [key, e] : shard.entities) {
      if (e.stopping || e.last > idle_since || always_active_keys_.contains(key)) continue;
      e.stopping = true;
      config_.counters->passivations.fetch_add(1, std::memory_order_relaxed);
      e.ref.cell()->RequestStopForGood(absl::OkStatus(), /*now=*/false);
    }
  }
}

void ShardRegion::HandleChildEvent(troupe::internal::ActorCell* child, const absl::Status& reason, bool ended) noexcept {
  auto it = by_cell_.find(child);
  if (it == by_cell_.end()) return;
  const uint32_t s = it->second.first;
  Shard& shard = shards_[s];
  auto eit = shard.entities.find(it->second.second);
  if (eit == shard.entities.end()) return;
  Entity& e = eit->second;
  if (!ended) {
    // Its instance ended and the cell waits: restart it, or end it.
    if (e.stopping || reason.ok()) {
      e.stopping = true;
      child->RequestStopForGood(reason, /*now=*/true);
      return;
    }
    const absl::Time now = Now();
    e.restarts.push_back(now);
    while (!e.restarts.empty() && e.restarts.front() <= now - config_.options.restart_within) e.restarts.pop_front();
    if (static_cast<int>(e.restarts.size()) > config_.options.max_restarts) {
      log().error("cluster: entity '{}' ({}) failed {} times within {}; stopping it (its next message starts a "
                  "fresh one): {}",
                  eit->first, config_.entity_type, e.restarts.size(),
                  absl::FormatDuration(config_.options.restart_within), reason.ToString());
      e.stopping = true;
      child->RequestStopForGood(reason, /*now=*/true);
      return;
    }
    log().info("cluster: restarting entity '{}' ({}): {}", eit->first, config_.entity_type, reason.ToString());
    config_.counters->restarts.fetch_add(1, std::memory_order_relaxed);
    child->RequestRestart();
    return;
  }
  // The entity is gone.
  std::deque<std::unique_ptr<Routed>> waiting = std::move(e.waiting);
  shard.entities.erase(eit);
  by_cell_.erase(it);
  config_.counters->entities.fetch_sub(1, std::memory_order_relaxed);
  for (auto& r : waiting) Route(std::move(r));
  if (shard.mode == Mode::kOutgoing) TryFinishOutgoing(s);
  // An always-active entity that stopped here (it failed too often, or
  // stopped itself) starts again after a pause.
  if (shard.mode == Mode::kLocal && always_active_.contains(s)) {
    SendAfter(config_.options.retry_interval, Self(), WakeAlwaysActive{.shard = s});
  }
  CheckLeaveWaiters();
}

// --- Leaving ---------------------------------------------------------------

void ShardRegion::On(const AwaitHandedOff&, Reply<void> reply) {
  leave_waiters_.push_back(std::move(reply));
  CheckLeaveWaiters();
}

void ShardRegion::CheckLeaveWaiters() {
  if (leave_waiters_.empty() || self_state_ != MemberState::kLeaving || relaying_ > 0) return;
  for (const auto& [name, peer] : peers_) {
    if (!peer.pending.empty()) return;  // handoffs not sent yet
  }
  for (const Shard& shard : shards_) {
    if (shard.mode == Mode::kLocal || shard.mode == Mode::kIncoming || shard.mode == Mode::kOutgoing ||
        !shard.entities.empty()) {
      return;
    }
  }
  for (Reply<void>& r : leave_waiters_) r.Send();
  leave_waiters_.clear();
}

}  // namespace troupe::cluster::internal
