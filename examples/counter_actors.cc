#include "examples/counter_actors.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/random/random.h"
#include "absl/time/clock.h"

namespace counter {

std::atomic<uint64_t>& AppliedIncrements() {
  static std::atomic<uint64_t> applied{0};
  return applied;
}

// --- Counter ---------------------------------------------------------------

namespace {

// How long to wait before trying the store again after a failure.
constexpr absl::Duration kStoreRetry = absl::Milliseconds(250);

bool HasTag(const Stored& s, const std::string& tag) {
  return std::find(s.tags.begin(), s.tags.end(), tag) != s.tags.end();
}

// Completes `reply` with what `future` ends with.
void Relay(troupe::Future<int64_t> future, troupe::Reply<int64_t> reply) {
  std::move(future).OnCompleteInline(
      [reply = std::move(reply)](troupe::Result<int64_t>&& r) mutable { reply.Complete(std::move(r)); });
}

}  // namespace

Counter::Counter(const troupe::cluster::EntityRef<Counter>& self)
    : self_(self), store_(CounterStoreOfThisProcess()) {
  activation_ = absl::StrCat(absl::Hex(absl::Uniform<uint64_t>(absl::BitGen())));
}

void Counter::OnStart() {
  if (store_) Load();
}

void Counter::Received(int64_t by) {
  AppliedIncrements().fetch_add(1, std::memory_order_relaxed);
  if (!store_) {
    count_ += by;
    AnswerWaiters();
    return;
  }
  pending_ += by;
}

void Counter::On(const Increment& m) {
  Received(m.by);
  if (store_) Flush();
}

void Counter::On(const Add& m, troupe::Reply<int64_t> reply) {
  if (m.by != 0) Received(m.by);
  if (!store_) {
    reply.Send(count_);
    return;
  }
  pending_acks_.push_back(std::move(reply));
  Flush();
}

void Counter::On(const Read&, troupe::Reply<int64_t> reply) {
  if (store_ && !loaded_) {
    reads_.push_back(std::move(reply));
    return;
  }
  reply.Send(kept());
}

void Counter::On(const Await& m, troupe::Reply<int64_t> reply) {
  if ((!store_ || loaded_) && kept() >= m.at_least) {
    reply.Send(kept());
    return;
  }
  // Held until increments bring the count there. An asker whose deadline
  // passes first gets DeadlineExceeded; the entity finds out only when it
  // answers (Send returns false).
  waiters_.push_back(Waiter{m.at_least, std::move(reply)});
}

void Counter::On(const Carried& m) {
  if (!store_) {
    count_ += m.count;
    AnswerWaiters();
    return;
  }
  pending_ += m.count;
  unsure_.insert(unsure_.end(), m.unsure.begin(), m.unsure.end());
  Flush();
}

void Counter::AnswerWaiters() {
  for (size_t i = 0; i < waiters_.size();) {
    if (kept() >= waiters_[i].at_least) {
      waiters_[i].reply.Send(kept());
      waiters_[i] = std::move(waiters_.back());
      waiters_.pop_back();
    } else {
      ++i;
    }
  }
}

void Counter::Load() {
  Blocking([store = store_, key = self_.key()] { return store->Load(key); })
      .Then([this](absl::StatusOr<Stored> loaded) {
        if (!loaded.ok()) {
          // What the key holds is not a count: every ask waiting on it is
          // told so (the increments stay, and the load is tried again, in
          // case the key is put right).
          if (absl::IsInvalidArgument(loaded.status())) {
            const absl::Status why(loaded.status().code(),
                                   absl::StrCat("counter '", self_.key(), "': ", loaded.status().message()));
            for (troupe::Reply<int64_t>& r : reads_) r.Fail(why);
            for (troupe::Reply<int64_t>& r : pending_acks_) r.Fail(why);
            for (Waiter& w : waiters_) w.reply.Fail(why);
            reads_.clear();
            pending_acks_.clear();
            waiters_.clear();
          }
          Retry();
          return;
        }
        if (!loaded_) {
          loaded_ = true;
          durable_ = *loaded;
          for (troupe::Reply<int64_t>& r : reads_) r.Send(durable_.count);
          reads_.clear();
        }
        Reconcile(*std::move(loaded));
      });
}

// Drops the carried writes that `durable_` shows applied, with those they
// include (counted through them), taking them out of the write in flight.
void Counter::SettleApplied() {
  std::vector<std::string> settled;
  for (const UnsureWrite& u : unsure_) {
    if (!HasTag(durable_, u.tag)) continue;
    settled.push_back(u.tag);
    settled.insert(settled.end(), u.includes.begin(), u.includes.end());
  }
  if (settled.empty()) return;
  auto is_settled = [&](const std::string& tag) {
    return std::find(settled.begin(), settled.end(), tag) != settled.end();
  };
  for (const UnsureWrite& u : unsure_) {
    if (!is_settled(u.tag) || !inflight_) continue;
    auto& inc = inflight_->includes;
    if (auto it = std::find(inc.begin(), inc.end(), u.tag); it != inc.end()) {
      inc.erase(it);
      inflight_->delta -= u.count;
    }
  }
  std::erase_if(unsure_, [&](const UnsureWrite& u) { return is_settled(u.tag); });
}

// `current` is what the store holds now: settles what the write in flight
// and the carried unsure writes became, then writes what is still owed.
void Counter::Reconcile(Stored current) {
  durable_ = std::move(current);
  SettleApplied();
  // Applied, its answer lost.
  if (inflight_ && HasTag(durable_, inflight_->tag)) Kept();
  AnswerWaiters();
  if (inflight_) {
    Send();  // again, over what the store holds now
  } else {
    Flush();
  }
}

// The write in flight is in the store (durable_ has it): the carried
// writes it included are settled with it, and the Adds it carried are
// answered.
void Counter::Kept() {
  for (const std::string& tag : inflight_->includes) {
    std::erase_if(unsure_, [&](const UnsureWrite& u) { return u.tag == tag; });
  }
  for (troupe::Reply<int64_t>& r : inflight_->acks) r.Send(durable_.count);
  inflight_.reset();
}

void Counter::Flush() {
  if (!loaded_ || inflight_) return;
  // Carried writes already in what was read count no more. (One applied
  // after that read makes this write's revision stale: Reconcile then.)
  SettleApplied();
  int64_t delta = pending_;
  std::vector<std::string> includes;
  for (const UnsureWrite& u : unsure_) {
    delta += u.count;
    includes.push_back(u.tag);
  }
  if (delta == 0 && includes.empty()) {
    // Nothing to write: what was asked to be kept is.
    for (troupe::Reply<int64_t>& r : pending_acks_) r.Send(durable_.count);
    pending_acks_.clear();
    return;
  }
  inflight_ = Write{.tag = absl::StrCat(activation_, ":", ++writes_),
                    .delta = delta,
                    .acks = std::move(pending_acks_),
                    .includes = std::move(includes),
                    .next = {}};
  pending_acks_.clear();
  pending_ = 0;
  Send();
}

void Counter::Send() {
  Write& w = *inflight_;
  w.next = durable_;
  w.next.count += w.delta;
  w.next.tags.push_back(w.tag);
  if (w.next.tags.size() > kKeptTags) {
    w.next.tags.erase(w.next.tags.begin(),
                      w.next.tags.begin() + static_cast<ptrdiff_t>(w.next.tags.size() - kKeptTags));
  }
  Blocking([store = store_, key = self_.key(), next = w.next, expected = durable_.revision] {
    return store->Save(key, next, expected);
  }).Then([this](absl::StatusOr<Saved> saved) {
    if (!inflight_) return;
    if (!saved.ok()) {
      // Applied or not: the next read says (its tag).
      Retry();
      return;
    }
    if (!saved->written) {
      Reconcile(std::move(saved->current));  // another write came first
      return;
    }
    durable_ = std::move(saved->current);
    Kept();
    AnswerWaiters();
    Flush();
  });
}

void Counter::Retry() { SendAfter(kStoreRetry, Self(), RetryStore{}); }

void Counter::On(const RetryStore&) {
  // Before the first load, and after a write whose outcome is unknown, the
  // store is read again; Reconcile takes it from there.
  if (!loaded_ || inflight_) {
    Load();
  } else {
    Flush();
  }
}

void Counter::OnStop(const absl::Status&) {
  // Through this key's handle, in this order, so the next activation has
  // the counts before it sees the asks. When the shard moves the cluster
  // forwards them to the new owner; when this node stops hosting they are
  // refused here (in memory the count is lost; the asks fail).
  Carried carried;
  std::vector<troupe::Reply<int64_t>> owed;
  if (!store_) {
    carried.count = count_;
  } else {
    carried.count = pending_;
    carried.unsure = unsure_;
    if (inflight_) {
      // Its increments, less the carried writes it includes (still in
      // unsure_): applied or not, the next activation finds out.
      int64_t own = inflight_->delta;
      for (const UnsureWrite& u : unsure_) {
        if (std::find(inflight_->includes.begin(), inflight_->includes.end(), u.tag) != inflight_->includes.end()) {
          own -= u.count;
        }
      }
      carried.unsure.push_back(UnsureWrite{.tag = inflight_->tag, .count = own, .includes = inflight_->includes});
      for (troupe::Reply<int64_t>& r : inflight_->acks) owed.push_back(std::move(r));
      inflight_.reset();
    }
    for (troupe::Reply<int64_t>& r : pending_acks_) owed.push_back(std::move(r));
    pending_acks_.clear();
    for (troupe::Reply<int64_t>& r : reads_) owed.push_back(std::move(r));
    reads_.clear();
  }
  if (carried.count != 0 || !carried.unsure.empty()) self_.Tell(std::move(carried));
  // Add{0}: answered once everything carried is kept there.
  for (troupe::Reply<int64_t>& r : owed) Relay(self_.Ask(Add{.by = 0}, kCarriedAwaitLimit), std::move(r));
  for (Waiter& w : waiters_) Relay(self_.Ask(Await{.at_least = w.at_least}, kCarriedAwaitLimit), std::move(w.reply));
  waiters_.clear();
}

void NodeStatsSource::Detach() {
  std::lock_guard<std::mutex> lock(mu_);
  node_ = nullptr;
}

troupe::NodeStats NodeStatsSource::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return node_ != nullptr ? node_->stats() : troupe::NodeStats{};
}

// --- Service -----------------------------------------------------------------

NodeInfo Service::On(const Describe&) {
  NodeInfo info;
  info.node = options_.node;
  info.address = options_.address;
  info.incarnation = options_.incarnation;
  info.membership = options_.membership;
  const troupe::cluster::MembershipView view = options_.cluster->view();
  info.hosting = view.hosting;
  for (const troupe::cluster::Member& m : view.members) {
    info.members.push_back(MemberInfo{.node = m.name,
                                      .address = m.address,
                                      .incarnation = m.incarnation,
                                      .state = std::string(troupe::cluster::MemberStateName(m.state))});
  }
  const troupe::cluster::RegionStats region = options_.cluster->entity_stats<Counter>();
  info.entities = region.entities;
  info.activations = region.activations;
  info.handoffs_in = region.handoffs_in;
  info.handoffs_out = region.handoffs_out;
  info.dropped = region.dropped;
  info.refused = region.refused;
  info.increments = AppliedIncrements().load(std::memory_order_relaxed);
  if (options_.stats != nullptr) {
    const troupe::NodeStats stats = options_.stats->stats();
    info.messages_in = stats.messages_in;
    info.messages_out = stats.messages_out;
    info.connections = stats.connections;
  }
  return info;
}

absl::StatusOr<ClientStarted> Service::On(const RunClient& m) {
  if (m.keys <= 0 || m.keys > kMaxClientKeys || m.increments < 0 || m.ask_every < 0 || m.pace_nanos < 0) {
    return absl::InvalidArgumentError(absl::StrCat("RunClient ", m.client, ": keys must be in [1, ", kMaxClientKeys,
                                                   "] (", m.keys, "), increments, askEvery and paceNanos not negative"));
  }
  std::vector<troupe::cluster::EntityRef<Counter>> keys;
  keys.reserve(static_cast<size_t>(std::max<int64_t>(m.keys, 0)));
  for (int64_t k = 0; k < m.keys; ++k) {
    keys.push_back(options_.cluster->Entity<Counter>(absl::StrCat(m.key_prefix, "key-", k)));
  }
  return ClientStarted{.client = Spawn<Client>(m, options_.node, std::move(keys))};
}


void Service::On(const ReadKey& m, troupe::Reply<int64_t> reply) {
  Relay(options_.cluster->Entity<Counter>(m.key).Ask(Read{}), std::move(reply));
}

void Service::On(const AwaitKey& m, troupe::Reply<int64_t> reply) {
  Relay(options_.cluster->Entity<Counter>(m.key).Ask(Await{.at_least = m.at_least}), std::move(reply));
}

std::string Service::On(const Leave&) {
  quiet_ = true;
  if (options_.leave != nullptr) options_.leave->store(true, std::memory_order_release);
  return "leaving";
}

void Service::On(const troupe::cluster::MemberChanged& m) {
  if (quiet_) return;
  std::printf("%s: member %s %s -> %s (%s, incarnation %llx)\n", options_.node.c_str(),
              m.member.name.empty() ? "?" : m.member.name.c_str(),
              std::string(troupe::cluster::MemberStateName(m.previous)).c_str(),
              std::string(troupe::cluster::MemberStateName(m.member.state)).c_str(), m.member.address.c_str(),
              static_cast<unsigned long long>(m.member.incarnation));
}

void Service::On(const troupe::cluster::HostingChanged& m) {
  if (m.hosting && options_.hosted != nullptr) options_.hosted->store(true, std::memory_order_release);
  if (quiet_) return;
  std::printf("%s: %s entities: %s\n", options_.node.c_str(), m.hosting ? "hosting" : "not hosting",
              m.reason.c_str());
}

void Service::On(const Quiet&) {
  quiet_ = true;
  Stop();
}

// --- Client ------------------------------------------------------------------

namespace {

// Increments sent per turn: other messages for the client run in between.
constexpr int64_t kSlice = 1000;
// The deadline of each Add ask.
constexpr absl::Duration kAddTimeout = absl::Seconds(10);

}  // namespace

void Client::OnStart() {
  started_ = absl::Now();
  Self().Tell(Next{});
}

void Client::On(const Next&) {
  const absl::Duration pace = absl::Nanoseconds(run_.pace_nanos);
  const int64_t end = std::min(run_.increments, next_ + (pace > absl::ZeroDuration() ? 1 : kSlice));
  while (next_ < end) {
    const size_t k = static_cast<size_t>(next_ % run_.keys);
    const troupe::cluster::EntityRef<Counter>& key = keys_[k];
    ++next_;
    if (run_.ask_every > 0 && next_ % run_.ask_every == 0) {
      // Acknowledged: the next increment waits for it.
      key.Ask(Add{.by = 1}, kAddTimeout).OnCompleteInline([self = Self(), k](troupe::Result<int64_t>&& r) {
        self.Tell(Acked{.ok = r.ok(), .key = k});
      });
      return;
    }
    key.Tell(Increment{.by = 1});
  }
  if (next_ >= run_.increments) {
    Finish();
  } else if (pace > absl::ZeroDuration()) {
    SendAfter(pace, Self(), Next{});
  } else {
    Self().Tell(Next{});
  }
}

void Client::On(const Acked& m) {
  ++(m.ok ? acked_ : unknown_);
  if (m.ok && run_.count_acked) {
    if (acked_per_key_.empty()) acked_per_key_.assign(static_cast<size_t>(run_.keys), 0);
    ++acked_per_key_[m.key];
  }
  if (next_ >= run_.increments) {
    Finish();
  } else if (run_.pace_nanos > 0) {
    SendAfter(absl::Nanoseconds(run_.pace_nanos), Self(), Next{});
  } else {
    Self().Tell(Next{});
  }
}

void Client::Finish() {
  run_.report_to.Tell(ClientDone{.client = run_.client,
                                 .node = node_,
                                 .sent = next_,
                                 .acked = acked_,
                                 .unknown = unknown_,
                                 .seconds = absl::ToDoubleSeconds(absl::Now() - started_),
                                 .acked_per_key = std::move(acked_per_key_)});
  Stop();
}

// --- Reporter ----------------------------------------------------------------

void Reporter::On(const WatchClient& m) {
  if (reported_.contains(m.name)) return;
  watched_[m.client] = m.name;
  Monitor(m.client);
}

void Reporter::On(const NotStarted& m) {
  if (!reported_.emplace(m.name, false).second) return;
  reports_.lost.push_back(absl::StrCat(m.name, " (not started: ", m.status.ToString(), ")"));
  MaybeFinish();
}

void Reporter::On(const ClientDone& m) {
  if (!reported_.emplace(m.client, true).second) return;
  reports_.done.push_back(m);
  MaybeFinish();
}

void Reporter::On(const troupe::Down& m) {
  auto it = watched_.find(m.actor);
  if (it == watched_.end()) return;
  const std::string name = it->second;
  watched_.erase(it);
  // A client stops normally right after its report, which comes first on
  // the same connection. Only a lost node means the report will not come.
  if (reported_.contains(name) || !absl::IsUnavailable(m.reason)) return;
  reported_.emplace(name, false);
  reports_.lost.push_back(absl::StrCat(name, " (", m.reason.ToString(), ")"));
  MaybeFinish();
}

void Reporter::MaybeFinish() {
  if (reports_.done.size() + reports_.lost.size() == expected_) result_.SetValue(std::move(reports_));
}

}  // namespace counter
