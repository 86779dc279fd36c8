#include "examples/counter_workload.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace counter {
namespace {

constexpr size_t kMaxNodes = 256;

// What is left of `deadline`, never negative.
absl::Duration Left(absl::Time deadline) { return std::max(deadline - absl::Now(), absl::ZeroDuration()); }

}  // namespace

Discovery Discover(troupe::Node& node, const std::vector<std::string>& seeds, const troupe::Ref<Directory>& self,
                   absl::Duration timeout) {
  Discovery out;
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<troupe::Ref<Directory>> frontier;
  if (self) frontier.push_back(self);
  std::vector<troupe::Future<troupe::Ref<Directory>>> lookups;
  for (const std::string& seed : seeds) lookups.push_back(node.Lookup<Directory>(seed, "directory", timeout));
  for (size_t i = 0; i < seeds.size(); ++i) {
    absl::StatusOr<troupe::Ref<Directory>> d = lookups[i].Wait(Left(deadline));
    if (d.ok()) {
      frontier.push_back(*std::move(d));
    } else {
      out.errors.push_back(absl::StrCat("peer ", seeds[i], ": ", d.status().ToString()));
    }
  }

  absl::flat_hash_map<std::string, KnownMember> found;
  absl::flat_hash_set<std::string> queued;
  // Each round describes the directories found in the previous one.
  for (size_t round = 0; round < kMaxNodes && !frontier.empty() && found.size() < kMaxNodes; ++round) {
    std::vector<troupe::Future<NodeInfo>> infos;
    for (const troupe::Ref<Directory>& d : frontier) infos.push_back(d.Ask(Describe{}, Left(deadline)));
    std::vector<troupe::Ref<Directory>> next;
    for (size_t i = 0; i < frontier.size(); ++i) {
      absl::StatusOr<NodeInfo> info = infos[i].Wait(Left(deadline));
      if (!info.ok()) {
        out.errors.push_back(absl::StrCat("describing a directory: ", info.status().ToString()));
        continue;
      }
      if (found.contains(info->node)) continue;  // a seed given twice, or under two addresses
      for (const MemberInfo& m : info->members) {
        if (!found.contains(m.node) && queued.insert(m.node).second) next.push_back(m.directory);
      }
      queued.insert(info->node);
      std::string name = info->node;
      found.emplace(std::move(name), KnownMember{frontier[i], *std::move(info)});
    }
    frontier = std::move(next);
  }
  for (auto& [name, member] : found) out.members.push_back(std::move(member));
  std::sort(out.members.begin(), out.members.end(),
            [](const KnownMember& a, const KnownMember& b) { return a.info.node < b.info.node; });
  return out;
}

bool RunWorkload(troupe::ActorSystem& sys, const std::vector<KnownMember>& cluster, const WorkloadOptions& o) {
  std::vector<ShardInfo> ring;
  for (const KnownMember& m : cluster) ring.insert(ring.end(), m.info.shards.begin(), m.info.shards.end());
  SortRing(ring);
  if (ring.empty() || o.keys <= 0 || o.increments < 0 || o.clients_per_node <= 0) {
    std::printf("workload: nothing to run (%zu shards, %lld keys)\n", ring.size(), static_cast<long long>(o.keys));
    return false;
  }
  const int64_t clients = static_cast<int64_t>(cluster.size()) * o.clients_per_node;
  const int64_t sent_total = clients * o.increments;
  std::printf("workload: %lld clients (%d on each of %zu nodes) x %lld increments over %lld keys = %lld increments "
              "to %zu shards%s%s\n",
              static_cast<long long>(clients), o.clients_per_node, cluster.size(),
              static_cast<long long>(o.increments), static_cast<long long>(o.keys),
              static_cast<long long>(sent_total), ring.size(),
              o.pace > absl::ZeroDuration() ? absl::StrCat(", one every ", absl::FormatDuration(o.pace), " per client").c_str() : "",
              o.tell_only ? ", tell-only" : "");
  // The clients' sending takes increments x pace; every step gets that on
  // top of its timeout.
  const absl::Duration step = o.timeout + o.pace * o.increments;

  // What each key will count: clients x (its share of i % keys).
  std::vector<std::string> keys;
  std::vector<int64_t> expected;
  for (int64_t k = 0; k < o.keys; ++k) {
    keys.push_back(absl::StrCat(o.key_prefix, "key-", k));
    expected.push_back(clients * (o.increments / o.keys + (k < o.increments % o.keys ? 1 : 0)));
  }
  auto shard_of = [&](size_t k) -> const ShardInfo& { return ring[ShardIndex(keys[k], ring.size())]; };

  // 2. The Awaits, before any increment is sent.
  std::vector<troupe::Future<int64_t>> awaits;
  for (size_t k = 0; k < keys.size() && !o.tell_only; ++k) {
    awaits.push_back(shard_of(k).shard.Ask(Await{.key = keys[k], .at_least = expected[k]}, step));
  }

  // 3. The clients, one RunClient ask to each node's directory per client.
  troupe::Promise<ClientReports> reports_promise;
  troupe::Future<ClientReports> reports_future = reports_promise.GetFuture();
  troupe::Ref<Reporter> reporter = sys.Spawn<Reporter>(static_cast<size_t>(clients), std::move(reports_promise));
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + step;
  std::vector<std::pair<std::string, troupe::Future<ClientStarted>>> starts;
  for (const KnownMember& m : cluster) {
    for (int c = 0; c < o.clients_per_node; ++c) {
      std::string name = absl::StrCat(m.info.node, "/client-", c);
      RunClient run{.client = name,
                    .increments = o.increments,
                    .keys = o.keys,
                    .key_prefix = o.key_prefix,
                    .shards = ring,
                    .report_to = reporter,
                    .pace_nanos = absl::ToInt64Nanoseconds(o.pace)};
      starts.emplace_back(std::move(name), m.directory.Ask(std::move(run), o.timeout));
    }
  }
  for (auto& [name, future] : starts) {
    absl::StatusOr<ClientStarted> started = future.Wait(Left(deadline));
    if (started.ok()) {
      reporter.Tell(Reporter::WatchClient{.name = name, .client = started->client});
    } else {
      reporter.Tell(Reporter::NotStarted{.name = name, .status = std::move(started).status()});
    }
  }

  // 4. Reports, then the Awaits.
  bool ok = true;
  absl::StatusOr<ClientReports> reports = reports_future.Wait(Left(deadline));
  int64_t sent = 0, failed = 0;
  if (!reports.ok()) {
    std::printf("workload: the clients did not all report: %s\n", reports.status().ToString().c_str());
    ok = false;
  } else {
    std::sort(reports->done.begin(), reports->done.end(),
              [](const ClientDone& a, const ClientDone& b) { return a.client < b.client; });
    for (const ClientDone& d : reports->done) {
      std::printf("  %s: %lld increments sent in %.3f s%s\n", d.client.c_str(), static_cast<long long>(d.sent),
                  d.seconds, d.failed > 0 ? absl::StrCat(", ", d.failed, " refused").c_str() : "");
      sent += d.sent;
      failed += d.failed;
    }
    for (const std::string& lost : reports->lost) std::printf("  %s: lost\n", lost.c_str());
    if (!reports->lost.empty() || failed > 0) ok = false;
  }
  if (o.tell_only) {
    std::printf("tell-only: %lld increments sent in %.3f s, %lld refused, %zu clients lost; nothing read back\n",
                static_cast<long long>(sent), absl::ToDoubleSeconds(absl::Now() - start),
                static_cast<long long>(failed), reports.ok() ? reports->lost.size() : static_cast<size_t>(clients));
    return ok;
  }
  // Counts that cannot be reached are not waited for past a short grace.
  const absl::Time await_deadline = ok ? deadline : std::min(deadline, absl::Now() + absl::Seconds(2));
  int64_t awaited = 0;
  std::string first_problem;
  for (size_t k = 0; k < keys.size(); ++k) {
    absl::StatusOr<int64_t> count = awaits[k].Wait(Left(await_deadline));
    if (count.ok() && *count == expected[k]) {
      ++awaited;
    } else if (first_problem.empty()) {
      first_problem = absl::StrCat(keys[k], " on ", shard_of(k).node, "/shard-", shard_of(k).index, ": ",
                                   count.ok() ? absl::StrCat(*count, " instead of ", expected[k])
                                              : count.status().ToString());
    }
  }
  const absl::Duration applied = absl::Now() - start;
  if (awaited == static_cast<int64_t>(keys.size())) {
    std::printf("all %lld increments applied in %.3f s (%.0f increments/s): every key's Await was answered\n",
                static_cast<long long>(sent_total), absl::ToDoubleSeconds(applied),
                static_cast<double>(sent_total) / absl::ToDoubleSeconds(applied));
  } else {
    ok = false;
  }

  // Every key read back.
  std::vector<troupe::Future<int64_t>> reads;
  for (size_t k = 0; k < keys.size(); ++k) reads.push_back(shard_of(k).shard.Ask(Read{.key = keys[k]}, o.timeout));
  const absl::Time read_deadline = absl::Now() + o.timeout;
  int64_t sum = 0, exact = 0;
  for (size_t k = 0; k < keys.size(); ++k) {
    absl::StatusOr<int64_t> count = reads[k].Wait(Left(read_deadline));
    if (count.ok()) {
      sum += *count;
      if (*count == expected[k]) ++exact;
    } else if (first_problem.empty()) {
      first_problem = absl::StrCat(keys[k], " on ", shard_of(k).node, "/shard-", shard_of(k).index, ": ",
                                   count.status().ToString());
    }
  }
  if (ok && exact == o.keys && sum == sent_total) {
    std::printf("verified: %lld keys read back, each as expected (%lld..%lld); they sum to %lld = %lld sent\n",
                static_cast<long long>(o.keys), static_cast<long long>(expected.back()),
                static_cast<long long>(expected.front()), static_cast<long long>(sum),
                static_cast<long long>(sent_total));
    return true;
  }
  std::printf("NOT verified: %lld of %lld keys as expected, sum %lld of %lld sent (%lld refused)%s%s\n",
              static_cast<long long>(exact), static_cast<long long>(o.keys), static_cast<long long>(sum),
              static_cast<long long>(sent_total), static_cast<long long>(failed),
              first_problem.empty() ? "" : "; first problem: ", first_problem.c_str());
  return false;
}

void PrintMembers(const std::vector<KnownMember>& cluster) {
  for (const KnownMember& m : cluster) {
    std::vector<std::string> names;
    for (const MemberInfo& member : m.info.members) names.push_back(member.node);
    std::sort(names.begin(), names.end());
    std::printf("%s sees: %s\n", m.info.node.c_str(), names.empty() ? "(no other node)" : absl::StrJoin(names, ", ").c_str());
  }
}

void PrintNodeTable(const std::vector<KnownMember>& cluster, absl::Duration timeout, const std::string& extra_header,
                    const absl::flat_hash_map<std::string, std::string>& extra) {
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<troupe::Future<NodeInfo>> infos;
  std::vector<std::vector<troupe::Future<ShardStats>>> stats;
  for (const KnownMember& m : cluster) {
    infos.push_back(m.directory.Ask(Describe{}, timeout));
    stats.emplace_back();
    for (const ShardInfo& s : m.info.shards) stats.back().push_back(s.shard.Ask(GetShardStats{}, timeout));
  }
  std::printf("%-12s %-8s %-22s %6s %6s %11s %10s %10s\n", "node", extra_header.c_str(), "address", "shards", "keys",
              "increments", "msgs in", "msgs out");
  for (size_t i = 0; i < cluster.size(); ++i) {
    const NodeInfo& known = cluster[i].info;
    auto it = extra.find(known.node);
    const std::string column = it != extra.end() ? it->second : "";
    absl::StatusOr<NodeInfo> info = infos[i].Wait(Left(deadline));
    uint64_t keys = 0, increments = 0;
    absl::Status shard_status;
    for (troupe::Future<ShardStats>& f : stats[i]) {
      absl::StatusOr<ShardStats> s = f.Wait(Left(deadline));
      if (s.ok()) {
        keys += s->keys;
        increments += s->increments;
      } else {
        shard_status = s.status();
      }
    }
    if (!info.ok() || !shard_status.ok()) {
      std::printf("%-12s %-8s %-22s unavailable: %s\n", known.node.c_str(), column.c_str(), known.address.c_str(),
                  (!info.ok() ? info.status() : shard_status).ToString().c_str());
      continue;
    }
    std::printf("%-12s %-8s %-22s %6zu %6llu %11llu %10llu %10llu\n", known.node.c_str(), column.c_str(),
                info->address.c_str(), info->shards.size(), static_cast<unsigned long long>(keys),
                static_cast<unsigned long long>(increments), static_cast<unsigned long long>(info->messages_in),
                static_cast<unsigned long long>(info->messages_out));
  }
}

}  // namespace counter
