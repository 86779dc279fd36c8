#include "cluster/etcd/etcd_membership.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "actors/actor.h"
#include "actors/task.h"
#include "cluster/etcd/etcd_client.h"
#include "cluster/membership.h"
#include "cluster/membership_actor.h"

namespace troupe::cluster {

std::string EtcdMembersPrefix(const std::string& cluster) { return absl::StrCat("/troupe/", cluster, "/members/"); }

namespace {

using etcd::EtcdClient;

// A member's value in etcd: "1 <incarnation> <up|leaving> <address>".
std::string Encode(const Member& m) {
  return absl::StrCat("1 ", m.incarnation, " ", m.state == MemberState::kLeaving ? "leaving" : "up", " ", m.address);
}

// The member a key and value describe; nullopt (and `why`) if they do not.
std::optional<Member> Decode(std::string_view prefix, const etcd::KeyValue& kv, std::string* why) {
  Member m;
  m.name = kv.key.substr(std::min(prefix.size(), kv.key.size()));
  std::vector<std::string> parts = absl::StrSplit(kv.value, absl::MaxSplits(' ', 3));
  if (m.name.empty() || parts.size() != 4 || parts[0] != "1" || !absl::SimpleAtoi(parts[1], &m.incarnation) ||
      (parts[2] != "up" && parts[2] != "leaving") || parts[3].empty()) {
    *why = absl::StrCat("key ", kv.key, " holds '", kv.value.substr(0, 80),
                        "', not a member (expected \"1 <incarnation> <up|leaving> <host:port>\")");
    return std::nullopt;
  }
  m.state = parts[2] == "up" ? MemberState::kUp : MemberState::kLeaving;
  m.address = parts[3];
  return m;
}

// Local messages of the actor.
struct Connect {
  uint64_t generation;
};
struct Renewed {
  uint64_t generation;
  absl::Time at;
  absl::Duration ttl;
};
struct LeaseLost {
  uint64_t generation;
  absl::Status why;
};
struct RestartKeepAlive {
  uint64_t generation;
};
struct CheckFence {};
struct Changed {
  etcd::WatchEvent event;
};
struct WatchEnded {
  uint64_t watch;
  etcd::WatchEnd end;
};
struct Rewatch {
  uint64_t watch;
};

// What a registration made: the lease and its keepalive.
struct Registration {
  etcd::Lease lease;
  absl::Time asked;  // before the grant: the lease lasts at least its TTL from then
  std::unique_ptr<etcd::KeepAlive> keepalive;
};

// On a blocking thread: a lease, the key under it (AlreadyExists if the
// name is registered by another lease), and the lease kept alive. A lease
// granted for a registration that failed is revoked.
absl::StatusOr<Registration> Register(EtcdClient& client, const EtcdMembershipOptions& o, const std::string& key,
                                      const std::string& value, etcd::KeepAliveOptions keep) {
  const absl::Duration timeout = o.request_timeout;
  const absl::Time asked = absl::Now();
  absl::StatusOr<etcd::Lease> lease = client.Grant(o.ttl, asked + timeout);
  if (!lease.ok()) return lease.status();
  auto fail = [&](absl::Status s) {
    (void)client.Revoke(lease->id, absl::Now() + timeout);
    return s;
  };
  absl::StatusOr<etcd::CreateResult> created = client.CreateIfAbsent(key, value, lease->id, absl::Now() + timeout);
  if (!created.ok()) return fail(created.status());
  if (!created->created) {
    const std::string holder = created->existing ? created->existing->value : "";
    return fail(absl::AlreadyExistsError(absl::StrCat("the name in ", key, " is registered already ('", holder, "')")));
  }
  absl::StatusOr<std::unique_ptr<etcd::KeepAlive>> keepalive =
      client.StartKeepAlive(lease->id, std::move(keep), absl::Now() + timeout);
  if (!keepalive.ok()) return fail(keepalive.status());
  return Registration{.lease = *lease, .asked = asked, .keepalive = *std::move(keepalive)};
}

// What starting a watch made: the members read first (if asked), and the
// watch.
struct Watching {
  std::optional<etcd::PrefixResult> all;
  std::unique_ptr<etcd::Watch> watch;
};

absl::StatusOr<Watching> StartWatching(EtcdClient& client, const std::string& prefix, bool read, int64_t from,
                                       etcd::WatchCallbacks callbacks, absl::Duration timeout) {
  Watching w;
  if (read) {
    absl::StatusOr<etcd::PrefixResult> all = client.GetPrefix(prefix, absl::Now() + timeout);
    if (!all.ok()) return all.status();
    from = all->revision + 1;
    w.all = *std::move(all);
  }
  absl::StatusOr<std::unique_ptr<etcd::Watch>> watch =
      client.WatchPrefix(prefix, from, std::move(callbacks), absl::Now() + timeout);
  if (!watch.ok()) return watch.status();
  w.watch = *std::move(watch);
  return w;
}

struct EtcdConfig {
  EtcdMembershipOptions options;
  Node* node = nullptr;
  std::shared_ptr<internal::SharedView> view;
};

class EtcdMembershipActor : public Actor<EtcdMembershipActor> {
 public:
  explicit EtcdMembershipActor(EtcdConfig config)
      : config_(std::move(config)),
        prefix_(EtcdMembersPrefix(config_.options.cluster)),
        client_(std::make_shared<EtcdClient>(etcd::EtcdClientOptions{.address = config_.options.endpoint})) {
    self_ = Member{.name = config_.node->name(),
                   .address = config_.node->address(),
                   .incarnation = 0,
                   .state = MemberState::kJoining};
    // Not hosting until registered.
    config_.view->SetServeUntil(absl::InfinitePast());
  }

  void OnStart() {
    Publish(std::nullopt);
    Self().Tell(Connect{.generation = 1});
  }

  void OnStop(const absl::Status&) {
    keepalive_.reset();
    watch_.reset();
    if (lease_ != etcd::kNoLease) {
      // Leaving for good: the key goes at once rather than after the TTL.
      // (Blocks this worker for at most one request.)
      absl::Status s = client_->Revoke(lease_, absl::Now() + config_.options.request_timeout);
      if (!s.ok() && !absl::IsNotFound(s)) log().warn("cluster: etcd: could not revoke the lease: {}", s.ToString());
    }
  }

  void On(internal::AddSubscriber&& add) {
    std::vector<Member> now;
    if (self_.state != MemberState::kJoining) now.push_back(self_);
    for (const auto& [name, m] : members_) {
      if (m.state != MemberState::kJoining) now.push_back(m);
    }
    subscribers_.Add(std::move(add.events), std::move(now), hosting_, sequence_);
  }

  // Registers this node: a lease, its key, the lease kept alive, and
  // (unless a watch runs already) the members read and watched. The etcd
  // calls run one after another in one blocking job.
  Task<void> On(const Connect& m) {
    if (m.generation != generation_ + 1) co_return;
    const uint64_t generation = ++generation_;
    if (self_.state != MemberState::kLeaving) self_.state = MemberState::kUp;
    self_.incarnation = config_.node->incarnation() + generation - 1;
    Future<Registration> job = Blocking(
        [client = client_, options = config_.options, key = prefix_ + self_.name, value = Encode(self_),
         keep = KeepAliveOptionsFor(generation)]() mutable -> absl::StatusOr<Registration> {
          return Register(*client, options, key, value, std::move(keep));
        });
    Result<Registration> r = co_await std::move(job);
    if (generation != generation_) co_return;
    if (!r.ok()) {
      if (absl::IsAlreadyExists(r.status())) {
        log().warn("cluster: etcd: {}; waiting for that key to go", std::string(r.status().message()));
      } else {
        log().warn("cluster: etcd: registering {} at {} failed: {}; retrying in {}", self_.name,
                   config_.options.endpoint, r.status().ToString(), absl::FormatDuration(config_.options.retry_interval));
      }
      SendAfter(config_.options.retry_interval, Self(), Connect{.generation = generation + 1});
      co_return;
    }
    lease_ = r->lease.id;
    lease_ttl_ = r->lease.ttl;
    keepalive_ = std::move(r->keepalive);
    log().info("cluster: etcd: {} registered as incarnation {} (lease {}, TTL {})", self_.name, self_.incarnation,
               lease_, absl::FormatDuration(lease_ttl_));
    if (!watch_) Self().Tell(Rewatch{.watch = watch_id_});
    Renew(r->asked, lease_ttl_);
  }

  void On(const Renewed& m) {
    if (m.generation != generation_) return;
    Renew(m.at, m.ttl);
  }

  void On(const CheckFence&) {
    fence_timer_ = TimerId();
    if (hosting_ && absl::Now() >= serve_until_) {
      Publish(std::nullopt, absl::StrCat("no renewal of its lease confirmed since ",
                                         absl::FormatTime(serve_until_ - (lease_ttl_ - config_.options.fence_margin)),
                                         ": fenced before the lease can expire"));
    }
  }

  void On(const LeaseLost& m) {
    if (m.generation != generation_) return;
    keepalive_.reset();
    if (absl::IsNotFound(m.why)) {
      // etcd ended the lease: this node is no member any more. It
      // registers again, as a new incarnation.
      log().warn("cluster: etcd: {}'s lease is gone ({}); registering again", self_.name, m.why.ToString());
      lease_ = etcd::kNoLease;
      Fence("its lease expired");
      Self().Tell(Connect{.generation = generation_ + 1});
      return;
    }
    log().warn("cluster: etcd: renewing {}'s lease failed ({}); retrying", self_.name, m.why.ToString());
    SendAfter(config_.options.retry_interval, Self(), RestartKeepAlive{.generation = generation_});
  }

  Task<void> On(const RestartKeepAlive& m) {
    if (m.generation != generation_ || keepalive_ || lease_ == etcd::kNoLease) co_return;
    const uint64_t generation = m.generation;
    Future<std::unique_ptr<etcd::KeepAlive>> job =
        Blocking([client = client_, lease = lease_, keep = KeepAliveOptionsFor(generation),
                  timeout = config_.options.request_timeout]() mutable {
          return client->StartKeepAlive(lease, std::move(keep), absl::Now() + timeout);
        });
    Result<std::unique_ptr<etcd::KeepAlive>> keep = co_await std::move(job);
    if (generation != generation_) co_return;
    if (keep.ok()) {
      keepalive_ = *std::move(keep);
    } else if (absl::IsNotFound(keep.status())) {
      Self().Tell(LeaseLost{.generation = generation, .why = keep.status()});
    } else {
      SendAfter(config_.options.retry_interval, Self(), RestartKeepAlive{.generation = generation});
    }
  }

  void On(Changed&& m) {
    if (starting_watch_) {
      // Ahead of the members read with this watch: applied after them.
      early_events_.push_back(std::move(m.event));
      return;
    }
    Apply(m.event);
  }

  void Apply(const etcd::WatchEvent& e) {
    if (e.kv.mod_revision <= revision_) return;  // already in what was read
    revision_ = e.kv.mod_revision;
    if (e.type == etcd::WatchEvent::Type::kPut) {
      Learn(e.kv);
      return;
    }
    const std::string name = e.kv.key.substr(std::min(prefix_.size(), e.kv.key.size()));
    if (name == self_.name) {
      // Our own key went (the lease expired while this node could not
      // renew it): the LeaseLost path registers again.
      if (hosting_) Fence("its key was deleted in etcd");
      return;
    }
    auto it = members_.find(name);
    if (it == members_.end()) return;
    Member gone = it->second;
    members_.erase(it);
    Report(gone, MemberState::kRemoved);
  }

  void On(const WatchEnded& m) {
    if (m.watch != watch_id_) return;
    watch_.reset();
    log().warn("cluster: etcd: the watch of {} ended ({}); watching again", prefix_, m.end.status.ToString());
    compacted_ = absl::IsOutOfRange(m.end.status);
    SendAfter(config_.options.retry_interval, Self(), Rewatch{.watch = watch_id_});
  }

  // Reads every member (the first time, or after a compaction) and watches
  // the prefix from there; after a watch that ended otherwise, the members
  // known stay and the watch resumes after the last revision seen.
  Task<void> On(const Rewatch& m) {
    if (m.watch != watch_id_ || watch_) co_return;
    const uint64_t watch = ++watch_id_;
    const bool read = revision_ == 0 || compacted_;
    Ref<EtcdMembershipActor> self = Self();
    etcd::WatchCallbacks callbacks;
    callbacks.on_event = [self](const etcd::WatchEvent& e) { self.Tell(Changed{.event = e}); };
    callbacks.on_end = [self, watch](const etcd::WatchEnd& end) { self.Tell(WatchEnded{.watch = watch, .end = end}); };
    Future<Watching> job = Blocking([client = client_, prefix = prefix_, read, from = revision_ + 1,
                                     callbacks = std::move(callbacks),
                                     timeout = config_.options.request_timeout]() mutable -> absl::StatusOr<Watching> {
      return StartWatching(*client, prefix, read, from, std::move(callbacks), timeout);
    });
    starting_watch_ = true;
    Result<Watching> w = co_await std::move(job);
    starting_watch_ = false;
    std::deque<etcd::WatchEvent> early = std::exchange(early_events_, {});
    if (watch != watch_id_) co_return;
    if (!w.ok()) {
      log().warn("cluster: etcd: watching {} at {} failed: {}; retrying", prefix_, config_.options.endpoint,
                 w.status().ToString());
      SendAfter(config_.options.retry_interval, Self(), Rewatch{.watch = watch_id_});
      co_return;
    }
    if (w->all) {
      absl::flat_hash_map<std::string, bool> present;
      for (const etcd::KeyValue& kv : w->all->kvs) {
        present[kv.key.substr(std::min(prefix_.size(), kv.key.size()))] = true;
        Learn(kv);
      }
      // Members whose keys went while this node was not watching.
      std::vector<std::string> gone;
      for (const auto& [name, known] : members_) {
        if (!present.contains(name)) gone.push_back(name);
      }
      for (const std::string& name : gone) {
        Member left = members_[name];
        members_.erase(name);
        Report(left, MemberState::kRemoved);
      }
      revision_ = std::max(revision_, w->all->revision);
      compacted_ = false;
    }
    watch_ = std::move(w->watch);
    for (const etcd::WatchEvent& e : early) Apply(e);
    if (!members_read_) {
      members_read_ = true;
      if (!hosting_) Publish(std::nullopt, "registered in etcd, and the members read");
    }
  }

  Task<void> On(const internal::BeginLeave&) {
    if (self_.state == MemberState::kLeaving) co_return;
    const MemberState previous = self_.state;
    self_.state = MemberState::kLeaving;
    ++sequence_;
    Publish(MemberChanged{.member = self_, .previous = previous, .sequence = sequence_});
    if (lease_ == etcd::kNoLease) co_return;
    Future<int64_t> job = Blocking([client = client_, key = prefix_ + self_.name, value = Encode(self_), id = lease_,
                                    timeout = config_.options.request_timeout] {
      return client->Put(key, value, id, absl::Now() + timeout);
    });
    Result<int64_t> put = co_await std::move(job);
    if (!put.ok()) {
      log().warn("cluster: etcd: could not mark {} leaving: {}", self_.name, put.status().ToString());
    }
  }

 private:
  // What the keepalive of this generation's lease tells the actor.
  etcd::KeepAliveOptions KeepAliveOptionsFor(uint64_t generation) {
    Ref<EtcdMembershipActor> self = Self();
    etcd::KeepAliveOptions o;
    o.interval = config_.options.keepalive_interval;
    o.reply_timeout = std::max(config_.options.request_timeout, config_.options.keepalive_interval);
    o.on_renewed = [self, generation](absl::Time sent, absl::Duration ttl) {
      self.Tell(Renewed{.generation = generation, .at = sent, .ttl = ttl});
    };
    o.on_lost = [self, generation](absl::Status why) {
      self.Tell(LeaseLost{.generation = generation, .why = std::move(why)});
    };
    return o;
  }

  // A member's key as etcd has it now.
  void Learn(const etcd::KeyValue& kv) {
    std::string why;
    std::optional<Member> m = Decode(prefix_, kv, &why);
    if (!m) {
      log().error("cluster: etcd: {}", why);
      return;
    }
    if (m->name == self_.name) return;  // ours: this node knows its own state
    auto it = members_.find(m->name);
    if (it != members_.end() && it->second.incarnation > m->incarnation) return;  // late news of an older one
    if (it != members_.end() && it->second.incarnation != m->incarnation) {
      // The node restarted: its earlier incarnation is gone.
      Member old = it->second;
      members_.erase(it);
      Report(old, MemberState::kRemoved);
      it = members_.end();
    }
    if (it == members_.end()) {
      const MemberState state = m->state;
      m->state = MemberState::kJoining;
      members_[m->name] = *m;
      Report(*m, state);
      return;
    }
    if (it->second.state != m->state) Report(it->second, m->state);
  }

  // Records `m`'s new state and tells subscribers.
  void Report(Member m, MemberState state) {
    const MemberState previous = m.state;
    m.state = state;
    if (auto it = members_.find(m.name); it != members_.end()) it->second.state = state;
    ++sequence_;
    log().info("cluster: member {} ({} incarnation {}) {} -> {}", m.name, m.address, m.incarnation,
               MemberStateName(previous), MemberStateName(state));
    Publish(MemberChanged{.member = m, .previous = previous, .sequence = sequence_});
  }

  void Renew(absl::Time at, absl::Duration ttl) {
    serve_until_ = at + ttl - config_.options.fence_margin;
    config_.view->SetServeUntil(serve_until_);
    if (fence_timer_) CancelTimer(fence_timer_);
    fence_timer_ = SendAfter(std::max(serve_until_ - absl::Now(), absl::ZeroDuration()), Self(), CheckFence{});
    if (!hosting_) Publish(std::nullopt, "its lease in etcd is renewed");
  }

  void Fence(const std::string& why) {
    serve_until_ = absl::InfinitePast();
    config_.view->SetServeUntil(serve_until_);
    if (hosting_) Publish(std::nullopt, why);
  }

  // The view, then `change`, then a change of hosting (`why` says why).
  void Publish(std::optional<MemberChanged> change, std::string why = "") {
    // Not before the members are read: a node that hosted with a view of
    // itself alone would own every shard the others serve.
    const bool hosting = lease_ != etcd::kNoLease && absl::Now() < serve_until_ && members_read_;
    std::optional<HostingChanged> hosting_changed;
    if (hosting != hosting_) {
      log().warn("cluster: {} {} hosting entities: {}", self_.name, hosting ? "starts" : "stops", why);
      hosting_changed = HostingChanged{.hosting = hosting, .reason = std::move(why)};
    }
    hosting_ = hosting;
    config_.view->SetServeUntil(hosting ? serve_until_ : absl::InfinitePast());
    MembershipView view;
    if (self_.state != MemberState::kJoining) view.members.push_back(self_);
    for (const auto& [name, m] : members_) view.members.push_back(m);
    view.hosting = hosting_;
    view.sequence = sequence_;
    subscribers_.Publish(*config_.view, std::move(view), change, hosting_changed);
  }

  EtcdConfig config_;
  const std::string prefix_;
  std::shared_ptr<EtcdClient> client_;
  Member self_;
  absl::flat_hash_map<std::string, Member> members_;  // the others, by name
  internal::Subscribers subscribers_;
  uint64_t sequence_ = 0;
  uint64_t generation_ = 0;  // registrations so far
  etcd::LeaseId lease_ = etcd::kNoLease;
  absl::Duration lease_ttl_;
  std::unique_ptr<etcd::KeepAlive> keepalive_;
  std::unique_ptr<etcd::Watch> watch_;
  uint64_t watch_id_ = 0;
  int64_t revision_ = 0;
  bool compacted_ = false;
  // While a watch starts: its events, held until the members read with it
  // are applied.
  bool starting_watch_ = false;
  std::deque<etcd::WatchEvent> early_events_;
  absl::Time serve_until_ = absl::InfinitePast();
  TimerId fence_timer_;
  bool hosting_ = false;
  // Set once the members have been read (the first watch started).
  bool members_read_ = false;
};

class EtcdProvider final : public MembershipProvider {
 public:
  explicit EtcdProvider(EtcdMembershipOptions options) : options_(std::move(options)) {}

  absl::StatusOr<Running> Start(ActorSystem& system, Node& node, std::shared_ptr<internal::SharedView> view) override {
    if (options_.endpoint.empty()) return absl::InvalidArgumentError("cluster: etcd: no endpoint given");
    if (options_.fence_margin <= absl::ZeroDuration() || options_.fence_margin >= options_.ttl) {
      return absl::InvalidArgumentError(absl::StrCat("cluster: etcd: fence_margin (",
                                                     absl::FormatDuration(options_.fence_margin),
                                                     ") must be positive and below the TTL (",
                                                     absl::FormatDuration(options_.ttl), ")"));
    }
    if (options_.keepalive_interval >= options_.ttl - options_.fence_margin) {
      return absl::InvalidArgumentError("cluster: etcd: keepalive_interval must be below ttl - fence_margin");
    }
    Ref<EtcdMembershipActor> actor =
        system.Spawn<EtcdMembershipActor>(EtcdConfig{.options = options_, .node = &node, .view = std::move(view)});
    Running running;
    running.actor = actor;
    running.subscribe = [actor](internal::MembershipEvents events) {
      actor.Tell(internal::AddSubscriber{std::move(events)});
    };
    running.leave = [actor] { return actor.Ask(internal::BeginLeave{}); };
    return running;
  }

 private:
  const EtcdMembershipOptions options_;
};

}  // namespace

std::shared_ptr<MembershipProvider> EtcdMembers(EtcdMembershipOptions options) {
  return std::make_shared<EtcdProvider>(std::move(options));
}

}  // namespace troupe::cluster
