#include "examples/counter_workload.h"

#include <algorithm>
#include <cstdio>
#include <optional>
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

bool Serving(const MemberInfo& m) { return m.state == "up" || m.state == "leaving"; }

// Describes every node of `cluster` (each within `deadline`).
std::vector<absl::StatusOr<NodeInfo>> DescribeAll(const std::vector<KnownMember>& cluster, absl::Time deadline) {
  std::vector<troupe::Future<NodeInfo>> asks;
  for (const KnownMember& m : cluster) asks.push_back(m.service.Ask(Describe{}, Left(deadline)));
  std::vector<absl::StatusOr<NodeInfo>> out;
  for (troupe::Future<NodeInfo>& f : asks) out.push_back(f.Wait(Left(deadline)));
  return out;
}

// The sum of the region figures that count messages the cluster could not
// deliver, over `cluster` now; -1 if a node does not answer.
int64_t Undelivered(const std::vector<KnownMember>& cluster, absl::Duration timeout) {
  int64_t n = 0;
  for (const absl::StatusOr<NodeInfo>& info : DescribeAll(cluster, absl::Now() + timeout)) {
    if (!info.ok()) return -1;
    n += static_cast<int64_t>(info->dropped + info->refused);
  }
  return n;
}

// Reads every key back (a failed read is tried again every 200 ms until
// `deadline`: a lost member's keys come back once it is reported) and
// checks acked[k] <= count <= most[k]. Prints the outcome; true if it holds.
bool CheckAcked(const std::vector<KnownMember>& cluster, const std::vector<std::string>& keys,
                const std::vector<int64_t>& acked, const std::vector<int64_t>& most, int64_t unknown,
                absl::Time deadline) {
  std::vector<std::optional<int64_t>> read(keys.size());
  std::string last_error;
  for (int round = 0; round < 100000; ++round) {
    std::vector<std::pair<size_t, troupe::Future<int64_t>>> asks;
    for (size_t k = 0; k < keys.size(); ++k) {
      // Each round through the next node: one that is gone (or restarted:
      // its Service is another actor now) is not asked twice in a row.
      const KnownMember& via = cluster[(k + static_cast<size_t>(round)) % cluster.size()];
      if (!read[k]) asks.emplace_back(k, via.service.Ask(ReadKey{.key = keys[k]}, Left(deadline)));
    }
    if (asks.empty()) break;
    for (auto& [k, f] : asks) {
      absl::StatusOr<int64_t> v = f.Wait(Left(deadline));
      if (v.ok()) {
        read[k] = *v;
      } else {
        last_error = absl::StrCat(keys[k], ": ", v.status().ToString());
      }
    }
    if (absl::Now() >= deadline) break;
    if (std::any_of(read.begin(), read.end(), [](const std::optional<int64_t>& r) { return !r; })) {
      absl::SleepFor(std::min(absl::Milliseconds(200), Left(deadline)));
    }
  }
  int64_t total_acked = 0, total_read = 0, total_most = 0;
  std::string problem;
  for (size_t k = 0; k < keys.size(); ++k) {
    total_acked += acked[k];
    total_most += most[k];
    if (!read[k]) {
      if (problem.empty()) problem = absl::StrCat("a key could not be read: ", last_error);
      continue;
    }
    total_read += *read[k];
    if (problem.empty() && *read[k] < acked[k]) {
      problem = absl::StrCat("acknowledged increments LOST: ", keys[k], " holds ", *read[k], " after ", acked[k],
                             " acknowledged");
    } else if (problem.empty() && *read[k] > most[k]) {
      problem = absl::StrCat("increments COUNTED TWICE: ", keys[k], " holds ", *read[k], ", more than the ", most[k],
                             " sent to it");
    }
  }
  if (!problem.empty()) {
    std::printf("NOT checked: %s\n", problem.c_str());
    return false;
  }
  std::printf("checked: %zu keys read back; every acknowledged increment is counted once (%lld acknowledged <= %lld "
              "counted <= %lld meant; %lld asks failed)\n",
              keys.size(), static_cast<long long>(total_acked), static_cast<long long>(total_read),
              static_cast<long long>(total_most), static_cast<long long>(unknown));
  return true;
}

}  // namespace

Discovery Discover(troupe::Node& node, const std::vector<std::string>& seeds, const troupe::Ref<Service>& self,
                   absl::Duration timeout) {
  Discovery out;
  const absl::Time deadline = absl::Now() + timeout;
  struct Pending {
    std::string address;
    troupe::Future<troupe::Ref<Service>> lookup;
  };
  absl::flat_hash_set<std::string> asked;  // addresses looked up or described
  absl::flat_hash_map<std::string, KnownMember> found;
  std::vector<troupe::Ref<Service>> frontier;
  std::vector<std::string> frontier_from;
  if (self) {
    frontier.push_back(self);
    frontier_from.push_back("this node");
  }
  std::vector<Pending> lookups;
  for (const std::string& seed : seeds) {
    if (asked.insert(seed).second) lookups.push_back({seed, node.Lookup<Service>(seed, "counter", timeout)});
  }
  for (size_t round = 0; round < kMaxNodes && (!frontier.empty() || !lookups.empty()) && found.size() < kMaxNodes;
       ++round) {
    for (Pending& p : lookups) {
      absl::StatusOr<troupe::Ref<Service>> s = p.lookup.Wait(Left(deadline));
      if (s.ok()) {
        frontier.push_back(*std::move(s));
        frontier_from.push_back(p.address);
      } else {
        out.errors.push_back(absl::StrCat("node at ", p.address, ": ", s.status().ToString()));
      }
    }
    lookups.clear();
    std::vector<troupe::Future<NodeInfo>> infos;
    for (const troupe::Ref<Service>& s : frontier) infos.push_back(s.Ask(Describe{}, Left(deadline)));
    for (size_t i = 0; i < frontier.size(); ++i) {
      absl::StatusOr<NodeInfo> info = infos[i].Wait(Left(deadline));
      if (!info.ok()) {
        out.errors.push_back(absl::StrCat("describing the node at ", frontier_from[i], ": ", info.status().ToString()));
        continue;
      }
      asked.insert(info->address);
      if (found.contains(info->node)) continue;  // a seed given twice, or under two addresses
      for (const MemberInfo& m : info->members) {
        if (Serving(m) && asked.insert(m.address).second) {
          lookups.push_back({m.address, node.Lookup<Service>(m.address, "counter", Left(deadline))});
        }
      }
      std::string name = info->node;
      found.emplace(std::move(name), KnownMember{frontier[i], *std::move(info)});
    }
    frontier.clear();
    frontier_from.clear();
  }
  for (auto& [name, member] : found) out.members.push_back(std::move(member));
  std::sort(out.members.begin(), out.members.end(),
            [](const KnownMember& a, const KnownMember& b) { return a.info.node < b.info.node; });
  return out;
}

bool PollUntil(absl::FunctionRef<bool()> done, absl::Duration timeout, absl::Duration interval) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(std::min(interval, Left(deadline)));
  }
  return true;
}

bool AwaitAgreement(std::vector<KnownMember>& cluster, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::flat_hash_set<std::string> names;
  for (const KnownMember& m : cluster) names.insert(m.info.node);
  return PollUntil(
      [&] {
        bool agree = true;
        std::vector<absl::StatusOr<NodeInfo>> infos = DescribeAll(cluster, deadline);
        for (size_t i = 0; i < cluster.size(); ++i) {
          if (!infos[i].ok()) {
            agree = false;
            continue;
          }
          cluster[i].info = *std::move(infos[i]);
          size_t up = 0;
          for (const MemberInfo& m : cluster[i].info.members) {
            if (m.state == "up" && names.contains(m.node)) ++up;
          }
          if (!cluster[i].info.hosting || up != names.size()) agree = false;
        }
        return agree;
      },
      timeout, absl::Milliseconds(50));
}

bool RunWorkload(troupe::ActorSystem& sys, const std::vector<KnownMember>& cluster, const WorkloadOptions& o) {
  if (cluster.empty() || o.keys <= 0 || o.increments < 0 || o.clients_per_node <= 0 || o.ask_every < 0) {
    std::printf("workload: nothing to run (%zu nodes, %lld keys)\n", cluster.size(), static_cast<long long>(o.keys));
    return false;
  }
  const int64_t clients = static_cast<int64_t>(cluster.size()) * o.clients_per_node;
  const int64_t sent_total = clients * o.increments;
  std::printf("workload: %lld clients (%d on each of %zu nodes) x %lld increments over %lld keys = %lld "
              "increments%s%s%s\n",
              static_cast<long long>(clients), o.clients_per_node, cluster.size(),
              static_cast<long long>(o.increments), static_cast<long long>(o.keys),
              static_cast<long long>(sent_total),
              o.ask_every == 1   ? ", each an acknowledged ask"
              : o.ask_every > 0 ? absl::StrCat(", one in ", o.ask_every, " an acknowledged ask").c_str()
                                : "",
              o.pace > absl::ZeroDuration() ? absl::StrCat(", one every ", absl::FormatDuration(o.pace), " per client").c_str() : "",
              o.tell_only ? ", tell-only" : "");
  // The clients' sending takes increments x pace; every step gets that on
  // top of its timeout.
  const absl::Duration step = o.timeout + o.pace * o.increments;
  // Only a tell-only workload counts what the regions could not deliver.
  const int64_t undelivered_before = o.tell_only ? Undelivered(cluster, o.timeout) : 0;

  // What each key will count: clients x (its share of i % keys).
  std::vector<std::string> keys;
  std::vector<int64_t> expected;
  for (int64_t k = 0; k < o.keys; ++k) {
    keys.push_back(absl::StrCat(o.key_prefix, "key-", k));
    expected.push_back(clients * (o.increments / o.keys + (k < o.increments % o.keys ? 1 : 0)));
  }
  // Key k is read through node k % nodes.
  auto via = [&](size_t k) -> const KnownMember& { return cluster[k % cluster.size()]; };

  // 1. The Awaits, before any increment is sent.
  std::vector<troupe::Future<int64_t>> awaits;
  for (size_t k = 0; k < keys.size() && !o.tell_only && !o.check_acked; ++k) {
    awaits.push_back(via(k).service.Ask(AwaitKey{.key = keys[k], .at_least = expected[k]}, step));
  }

  // 2. The clients, one RunClient ask to each node's Service per client.
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
                    .report_to = reporter,
                    .pace_nanos = absl::ToInt64Nanoseconds(o.pace),
                    .ask_every = o.ask_every,
                    .count_acked = o.check_acked};
      starts.emplace_back(std::move(name), m.service.Ask(std::move(run), o.timeout));
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

  // 3. Reports, then the Awaits.
  bool ok = true;
  absl::StatusOr<ClientReports> reports = reports_future.Wait(Left(deadline));
  int64_t sent = 0, acked = 0, unknown = 0;
  if (!reports.ok()) {
    std::printf("workload: the clients did not all report: %s\n", reports.status().ToString().c_str());
    ok = false;
  } else {
    std::sort(reports->done.begin(), reports->done.end(),
              [](const ClientDone& a, const ClientDone& b) { return a.client < b.client; });
    for (const ClientDone& d : reports->done) {
      std::printf("  %s: %lld increments sent in %.3f s, %lld acknowledged%s\n", d.client.c_str(),
                  static_cast<long long>(d.sent), d.seconds, static_cast<long long>(d.acked),
                  d.unknown > 0 ? absl::StrCat(", ", d.unknown, " asks failed").c_str() : "");
      sent += d.sent;
      acked += d.acked;
      unknown += d.unknown;
    }
    for (const std::string& lost : reports->lost) std::printf("  %s: lost\n", lost.c_str());
    if (!reports->lost.empty() || unknown > 0) ok = false;
  }
  if (o.tell_only) {
    const int64_t undelivered_after = Undelivered(cluster, o.timeout);
    const bool counted = undelivered_before >= 0 && undelivered_after >= 0;
    const int64_t dropped = counted ? undelivered_after - undelivered_before : -1;
    std::printf("tell-only: %lld increments sent in %.3f s, %s dropped, %zu clients lost; nothing read back\n",
                static_cast<long long>(sent), absl::ToDoubleSeconds(absl::Now() - start),
                counted ? absl::StrCat(dropped).c_str() : "(a node did not answer)",
                reports.ok() ? reports->lost.size() : static_cast<size_t>(clients));
    return ok && dropped == 0;
  }
  if (o.check_acked) {
    std::vector<int64_t> acked_by_key(keys.size(), 0);
    if (reports.ok()) {
      for (const ClientDone& d : reports->done) {
        for (size_t k = 0; k < d.acked_per_key.size() && k < keys.size(); ++k) acked_by_key[k] += d.acked_per_key[k];
      }
    }
    return CheckAcked(cluster, keys, acked_by_key, expected, unknown, deadline + o.timeout);
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
      first_problem = absl::StrCat(keys[k], " awaited through ", via(k).info.node, ": ",
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
  for (size_t k = 0; k < keys.size(); ++k) reads.push_back(via(k).service.Ask(ReadKey{.key = keys[k]}, o.timeout));
  const absl::Time read_deadline = absl::Now() + o.timeout;
  int64_t sum = 0, exact = 0;
  for (size_t k = 0; k < keys.size(); ++k) {
    absl::StatusOr<int64_t> count = reads[k].Wait(Left(read_deadline));
    if (count.ok()) {
      sum += *count;
      if (*count == expected[k]) ++exact;
    } else if (first_problem.empty()) {
      first_problem = absl::StrCat(keys[k], " read through ", via(k).info.node, ": ", count.status().ToString());
    }
  }
  if (ok && exact == o.keys && sum == sent_total) {
    std::printf("verified: %lld keys read back, each as expected (%lld..%lld); they sum to %lld = %lld sent\n",
                static_cast<long long>(o.keys), static_cast<long long>(expected.back()),
                static_cast<long long>(expected.front()), static_cast<long long>(sum),
                static_cast<long long>(sent_total));
    return true;
  }
  std::printf("NOT verified: %lld of %lld keys as expected, sum %lld of %lld sent (%lld acknowledged, %lld asks "
              "failed)%s%s\n",
              static_cast<long long>(exact), static_cast<long long>(o.keys), static_cast<long long>(sum),
              static_cast<long long>(sent_total), static_cast<long long>(acked), static_cast<long long>(unknown),
              first_problem.empty() ? "" : "; first problem: ", first_problem.c_str());
  return false;
}

void PrintMembers(const std::vector<KnownMember>& cluster) {
  for (const KnownMember& m : cluster) {
    std::vector<std::string> names;
    for (const MemberInfo& member : m.info.members) {
      if (member.node != m.info.node && member.state == "up") names.push_back(member.node);
    }
    std::sort(names.begin(), names.end());
    std::printf("%s sees: %s\n", m.info.node.c_str(), names.empty() ? "(no other node)" : absl::StrJoin(names, ", ").c_str());
  }
}

void PrintNodeTable(const std::vector<KnownMember>& cluster, absl::Duration timeout, const std::string& extra_header,
                    const absl::flat_hash_map<std::string, std::string>& extra) {
  std::vector<absl::StatusOr<NodeInfo>> infos = DescribeAll(cluster, absl::Now() + timeout);
  std::printf("%-12s %-8s %-22s %7s %8s %8s %8s %11s %10s %10s\n", "node", extra_header.c_str(), "address", "hosting",
              "entities", "moved in", "out", "increments", "msgs in", "msgs out");
  for (size_t i = 0; i < cluster.size(); ++i) {
    const NodeInfo& known = cluster[i].info;
    auto it = extra.find(known.node);
    const std::string column = it != extra.end() ? it->second : "";
    if (!infos[i].ok()) {
      std::printf("%-12s %-8s %-22s unavailable: %s\n", known.node.c_str(), column.c_str(), known.address.c_str(),
                  infos[i].status().ToString().c_str());
      continue;
    }
    const NodeInfo& info = *infos[i];
    std::printf("%-12s %-8s %-22s %7s %8llu %8llu %8llu %11llu %10llu %10llu\n", known.node.c_str(), column.c_str(),
                info.address.c_str(), info.hosting ? "yes" : "no", static_cast<unsigned long long>(info.entities),
                static_cast<unsigned long long>(info.handoffs_in), static_cast<unsigned long long>(info.handoffs_out),
                static_cast<unsigned long long>(info.increments), static_cast<unsigned long long>(info.messages_in),
                static_cast<unsigned long long>(info.messages_out));
  }
}

}  // namespace counter
