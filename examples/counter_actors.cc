#include "examples/counter_actors.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace counter {

size_t ShardIndex(const std::string& key, size_t ring_size) {
  uint64_t h = 0xcbf29ce484222325u;  // FNV-1a offset basis
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3u;  // FNV prime
  }
  return static_cast<size_t>(h % ring_size);
}

void SortRing(std::vector<ShardInfo>& ring) {
  std::sort(ring.begin(), ring.end(), [](const ShardInfo& a, const ShardInfo& b) {
    return std::tie(a.node, a.index) < std::tie(b.node, b.index);
  });
}

void NodeStatsSource::Detach() {
  std::lock_guard<std::mutex> lock(mu_);
  node_ = nullptr;
}

troupe::NodeStats NodeStatsSource::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return node_ != nullptr ? node_->stats() : troupe::NodeStats{};
}

// --- Shard -----------------------------------------------------------------

void Shard::On(const Increment& m) {
  int64_t& count = counts[m.key];
  count += m.by;
  total += m.by;
  ++increments;
  auto it = waiters.find(m.key);
  if (it == waiters.end()) return;
  std::vector<Waiter>& list = it->second;
  for (size_t i = 0; i < list.size();) {
    if (count >= list[i].at_least) {
      list[i].reply.Send(count);
      list[i] = std::move(list.back());
      list.pop_back();
      --waiting;
    } else {
      ++i;
    }
  }
  if (list.empty()) waiters.erase(it);
}

int64_t Shard::On(const Read& m) {
  auto it = counts.find(m.key);
  return it != counts.end() ? it->second : 0;
}

void Shard::On(const Await& m, troupe::Reply<int64_t> reply) {
  auto it = counts.find(m.key);
  const int64_t count = it != counts.end() ? it->second : 0;
  if (count >= m.at_least) {
    reply.Send(count);
    return;
  }
  // Held until an Increment brings the count there. An asker whose
  // deadline passes first gets DeadlineExceeded; the shard finds out only
  // when it answers (Send returns false).
  waiters[m.key].push_back(Waiter{m.at_least, std::move(reply)});
  ++waiting;
}

ShardStats Shard::On(const GetShardStats&) {
  return ShardStats{.keys = counts.size(), .increments = increments, .total = total, .waiting = waiting};
}

// --- Directory ---------------------------------------------------------------

namespace {

std::string ShardNames(const NodeInfo& info) {
  std::vector<std::string> names;
  for (const ShardInfo& s : info.shards) names.push_back(absl::StrCat(s.node, "/shard-", s.index));
  return absl::StrJoin(names, ", ");
}

}  // namespace

NodeInfo Directory::On(const Describe&) {
  NodeInfo info;
  info.node = options_.node;
  info.address = options_.address;
  info.incarnation = options_.incarnation;
  for (size_t i = 0; i < options_.shards.size(); ++i) {
    info.shards.push_back(
        ShardInfo{.node = options_.node, .index = static_cast<uint32_t>(i), .shard = options_.shards[i]});
  }
  for (const auto& [name, m] : members_) {
    if (m.state == State::kUp) info.members.push_back(MemberInfo{.node = name, .directory = m.directory});
  }
  if (options_.stats != nullptr) {
    const troupe::NodeStats stats = options_.stats->stats();
    info.messages_in = stats.messages_in;
    info.messages_out = stats.messages_out;
    info.connections = stats.connections;
  }
  return info;
}

void Directory::On(const Join& m, troupe::Reply<uint32_t> reply) {
  troupe::Ref<Directory> joiner = m.member.directory;
  if (!joiner) {
    reply.Fail(absl::InvalidArgumentError("Join without a directory"));
    return;
  }
  // Described before it counts as a member: its shards are what a failure
  // report names.
  joiner.Ask(Describe{}, options_.probe_timeout)
      .Then([this, joiner, reply = std::move(reply)](absl::StatusOr<NodeInfo> info) mutable {
        if (!info.ok()) {
          reply.Fail(info.status());
          return;
        }
        Register(joiner, *std::move(info));
        reply.Send(known());
      });
}

std::string Directory::On(const Leave&) {
  // Answered before the node leaves: the reply is queued ahead of the
  // `leave` its Shutdown sends, and the members hear NodeLeft.
  quiet_ = true;
  if (options_.leave != nullptr) options_.leave->store(true, std::memory_order_release);  // pairs with WaitForQuit
  return "leaving";
}

ClientStarted Directory::On(const RunClient& m) {
  troupe::Ref<Client> client = Spawn<Client>(m, options_.node);
  return ClientStarted{.client = client};
}

uint32_t Directory::On(const Learn& m) {
  for (const KnownMember& k : m.members) Register(k.directory, k.info);
  return known();
}

void Directory::Register(const troupe::Ref<Directory>& directory, NodeInfo info) {
  if (info.node == options_.node || !directory) return;
  Member& m = members_[info.node];
  if (m.directory == directory && m.state == State::kUp) {
    m.info = std::move(info);
    return;
  }
  const bool again = static_cast<bool>(m.directory);
  m.directory = directory;
  m.info = std::move(info);
  m.state = State::kUp;
  if (options_.announce_joins && !quiet_) {
    std::printf("%s: member %s %s (%zu shards)\n", options_.node.c_str(), m.info.node.c_str(),
                again ? "is back" : "joined", m.info.shards.size());
  }
}

void Directory::On(const troupe::NodeUp& m) {
  auto it = members_.find(m.node);
  if (it == members_.end() || it->second.state != State::kDown || quiet_) return;
  Member& member = it->second;
  // Another incarnation is a restart: it comes back through its Join, and
  // Refs to its previous actors must not be taken for its new ones.
  if (m.incarnation != member.info.incarnation) return;
  member.state = State::kUp;
  std::printf("%s: node %s is reachable again\n", options_.node.c_str(), m.node.c_str());
}

void Directory::On(const troupe::NodeDown& m) {
  auto it = members_.find(m.node);
  if (it == members_.end() || it->second.state != State::kUp || quiet_) return;
  MarkDown(it->second, m.reason);
}

void Directory::On(const troupe::NodeLeft& m) {
  auto it = members_.find(m.node);
  if (it == members_.end() || it->second.state == State::kLeft || quiet_) return;
  if (m.incarnation != it->second.info.incarnation) return;  // an earlier run; its successor rejoins
  it->second.state = State::kLeft;
  std::printf("%s: node %s left the cluster; its shards went with it: %s\n", options_.node.c_str(), m.node.c_str(),
              ShardNames(it->second.info).c_str());
}

void Directory::MarkDown(Member& m, const absl::Status& reason) {
  m.state = State::kDown;
  std::printf("%s: node %s is down (%s): shards unavailable: %s\n", options_.node.c_str(), m.info.node.c_str(),
              reason.ToString().c_str(), ShardNames(m.info).c_str());
  if (m.info.shards.empty()) return;
  // Asks to a lost node fail at once rather than wait for their deadline.
  const ShardInfo& probe = m.info.shards.front();
  const absl::Time sent = absl::Now();
  probe.shard.Ask(GetShardStats{}, options_.probe_timeout)
      .Then([this, sent, name = absl::StrCat(probe.node, "/shard-", probe.index)](
                absl::StatusOr<ShardStats> result) {
        if (quiet_) return;
        std::printf("%s: an ask to %s after the loss: %s, after %.1f ms\n", options_.node.c_str(), name.c_str(),
                    result.ok() ? "answered (the node is reachable again)" : result.status().ToString().c_str(),
                    absl::ToDoubleMilliseconds(absl::Now() - sent));
      });
}

// --- Client ------------------------------------------------------------------

namespace {

// Increments sent per turn: other messages for the client run in between.
constexpr int64_t kSlice = 1000;
// A full outbound buffer is retried after kBackoff, this many times in a
// row at most (about ten seconds) before the rest counts as failed.
constexpr absl::Duration kBackoff = absl::Milliseconds(1);
constexpr int kMaxExhaustedInARow = 10000;

}  // namespace

void Client::OnStart() {
  started_ = absl::Now();
  Self().Tell(Next{});
}

void Client::On(const Next&) {
  const absl::Duration pace = absl::Nanoseconds(run_.pace_nanos);
  const int64_t end = std::min(run_.increments, next_ + (pace > absl::ZeroDuration() ? 1 : kSlice));
  while (next_ < end) {
    const std::string key = absl::StrCat(run_.key_prefix, "key-", next_ % run_.keys);
    const ShardInfo& shard = run_.shards[ShardIndex(key, run_.shards.size())];
    const absl::Status s = shard.shard.TryTell(Increment{.key = key, .by = 1});
    if (absl::IsResourceExhausted(s) && exhausted_in_a_row_ < kMaxExhaustedInARow) {
      // The connection's outbound buffer is full: let it drain.
      ++exhausted_in_a_row_;
      SendAfter(kBackoff, Self(), Next{});
      return;
    }
    exhausted_in_a_row_ = 0;
    if (s.ok()) {
      ++sent_;
    } else {
      ++failed_;
    }
    ++next_;
  }
  if (next_ >= run_.increments) {
    Finish();
  } else if (pace > absl::ZeroDuration()) {
    SendAfter(pace, Self(), Next{});
  } else {
    Self().Tell(Next{});
  }
}

void Client::Finish() {
  run_.report_to.Tell(ClientDone{.client = run_.client,
                                 .node = node_,
                                 .sent = sent_,
                                 .failed = failed_,
                                 .seconds = absl::ToDoubleSeconds(absl::Now() - started_)});
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
