// troupe's cluster workloads (troupe only: no peer in the suite has sharded
// entities; docs/benchmarks.md). Every member is an ActorSystem with one
// worker and a Node in this process, linked over loopback.
//
//   entity-rtt: a two-member cluster. From a thread of member a (outside
//     actors, as a client would), one ask at a time: to an actor on b
//     through a plain Ref (the peer figure, the same path without
//     entities), to entities that b owns on their first message (which
//     activates each) and on a later one, and to entities a owns itself.
//   entity-handoff: three members of a listed four host entity_handoff
//     entities (each activated by a tell); the fourth joins, and the figure
//     is the time from its start until every shard that moves to it has
//     been handed over and served (its region owns them all).
//   entity-failover: three members on the etcd provider (a real etcd on
//     loopback, TTL 2 s); one of them reaches etcd through a relay, which
//     is cut. The figure is the time from the cut until an entity that
//     member hosted answers from a survivor (asked every 20 ms), and the
//     time until the cut member had fenced itself.
//   entity-failover-kill: three counter_service node processes on the etcd
//     provider (TTL 2 s); the one that hosts a key is killed (SIGKILL).
//     The figures are the time from the kill until a survivor's view has
//     it removed and until the key, read through a survivor every 20 ms,
//     answers again (with its count, kept in etcd).

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/actor_system.h"
#include "bench/cluster.troupe.h"
#include "bench/workload.h"
#include "cluster/cluster.h"
#include "cluster/etcd/etcd_membership.h"
#include "cluster/etcd/etcd_test_server.h"
#include "cluster/placement.h"
#include "examples/counter_actors.h"
#include "examples/local_cluster.h"
#include "net/node.h"
#include "net/node_test_util.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/null_sink.h"

namespace troupe::bench {

struct HitEntity : Actor<HitEntity> {
  using Remote = Accepts<cwire::Hit>;
  explicit HitEntity(const std::string&) {}
  int64_t On(const cwire::Hit& h) { return h.seq; }
};

struct HitActor : Actor<HitActor> {
  using Remote = Accepts<cwire::Hit>;
  int64_t On(const cwire::Hit& h) { return h.seq; }
};

namespace {

constexpr absl::Duration kTimeout = absl::Minutes(2);
constexpr uint32_t kShards = 128;

// One member: a quiet system, a listening node, and (Join) its Cluster.
struct Member {
  explicit Member(const std::string& name)
      : system(ActorSystemOptions{
            .workers = 1,
            .name = name,
            .logger = std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::null_sink_mt>())}) {
    NodeOptions o;
    o.name = name;
    o.cluster_secret = "bench-cluster";
    node = std::make_unique<Node>(system, std::move(o));
    absl::StatusOr<std::string> bound = node->Listen("127.0.0.1:0");
    if (bound.ok()) address = *bound;
  }
  ~Member() {
    cluster.reset();
    node->Shutdown();
    node.reset();
    (void)system.Shutdown(absl::Seconds(10));
  }
  absl::Status Join(const std::vector<std::string>& list) { return Join(cluster::ClusterOptions{.static_members = list}); }
  absl::Status Join(cluster::ClusterOptions options) {
    cluster = std::make_unique<cluster::Cluster>(system, *node, std::move(options));
    if (!cluster->status().ok()) return cluster->status();
    cluster::EntityOptions o;
    o.shards = kShards;
    o.passivate_after = absl::ZeroDuration();
    o.buffer_limit = 1 << 20;
    return cluster->StartEntities<HitEntity>(o);
  }
  size_t up() const {
    size_t n = 0;
    for (const cluster::Member& m : cluster->view().members) n += m.state == cluster::MemberState::kUp;
    return n;
  }

  ActorSystem system;
  std::unique_ptr<Node> node;
  std::unique_ptr<cluster::Cluster> cluster;
  std::string address;
};

template <class Done>
bool WaitFor(Done done) {
  const absl::Time deadline = absl::Now() + kTimeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

// The p50 and p99 of `n` asks made by `ask(i)`, which waits for its reply.
template <class Ask>
absl::StatusOr<std::pair<double, double>> Time(int64_t n, Ask ask) {
  std::vector<double> micros;
  micros.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const absl::Time start = absl::Now();
    if (absl::Status s = ask(i); !s.ok()) return s;
    micros.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
  }
  const double p50 = Percentile(micros, 0.50);
  return std::make_pair(p50, Percentile(micros, 0.99));
}

absl::Status Check(const Result<int64_t>& r, int64_t expected, const char* what) {
  if (!r.ok()) return absl::InternalError(absl::StrCat(what, ": ", r.status().ToString()));
  if (*r != expected) return absl::InternalError(absl::StrCat(what, ": replied ", *r, ", not ", expected));
  return absl::OkStatus();
}

// Keys whose shard `owner` wins among `members`, `n` of them.
std::vector<std::string> KeysOwnedBy(const std::string& owner, const std::vector<std::string>& members, int64_t n,
                                     const std::string& prefix) {
  std::vector<std::string> keys;
  for (int64_t i = 0; static_cast<int64_t>(keys.size()) < n; ++i) {
    std::string key = absl::StrCat(prefix, i);
    if (cluster::OwnerOf(cluster::ShardOf(key, kShards), members) == owner) keys.push_back(std::move(key));
  }
  return keys;
}

}  // namespace

absl::StatusOr<std::vector<Measurement>> TroupeEntityRtt(const Sizes& sizes) {
  const int64_t n = sizes.entity_rtt_samples;
  if (n <= 0) return absl::InvalidArgumentError("--entity_rtt_samples must be positive");
  Member a("bench-a"), b("bench-b");
  const std::vector<std::string> list{a.address, b.address};
  if (absl::Status s = a.Join(list); !s.ok()) return s;
  if (absl::Status s = b.Join(list); !s.ok()) return s;
  if (!WaitFor([&] { return a.up() == 2 && b.up() == 2 && a.cluster->hosting() && b.cluster->hosting(); })) {
    return absl::InternalError("entity-rtt: the two members never saw each other up");
  }
  const std::vector<std::string> names{"bench-a", "bench-b"};
  const std::vector<std::string> remote_keys = KeysOwnedBy("bench-b", names, n, "r-");
  const std::vector<std::string> local_keys = KeysOwnedBy("bench-a", names, n, "l-");
  // The handoffs of the start are over once an entity of every shard
  // answers: a warm-up ask to each shard b owns and each a owns.
  for (const std::string& key : KeysOwnedBy("bench-b", names, kShards, "warm-b-")) {
    if (absl::Status s = Check(a.cluster->Entity<HitEntity>(key).Ask(cwire::Hit{.seq = 1}).Wait(kTimeout), 1, "warm-up");
        !s.ok()) {
      return s;
    }
  }

  (void)b.node->Publish("hit", b.system.Spawn<HitActor>());
  absl::StatusOr<Ref<HitActor>> plain = a.node->Lookup<HitActor>(b.address, "hit").Wait(kTimeout);
  if (!plain.ok()) return plain.status();
  for (int64_t i = 0; i < 1000; ++i) (void)plain->Ask(cwire::Hit{.seq = i}).Wait(kTimeout);  // warm-up

  absl::StatusOr<std::pair<double, double>> ref = Time(n, [&](int64_t i) {
    return Check(plain->Ask(cwire::Hit{.seq = i}).Wait(kTimeout), i, "plain remote ask");
  });
  if (!ref.ok()) return ref.status();
  std::vector<cluster::EntityRef<HitEntity>> remote;
  for (const std::string& key : remote_keys) remote.push_back(a.cluster->Entity<HitEntity>(key));
  absl::StatusOr<std::pair<double, double>> first = Time(n, [&](int64_t i) {
    return Check(remote[i].Ask(cwire::Hit{.seq = i}).Wait(kTimeout), i, "first entity ask");
  });
  if (!first.ok()) return first.status();
  absl::StatusOr<std::pair<double, double>> later = Time(n, [&](int64_t i) {
    return Check(remote[i].Ask(cwire::Hit{.seq = i}).Wait(kTimeout), i, "later entity ask");
  });
  if (!later.ok()) return later.status();
  std::vector<cluster::EntityRef<HitEntity>> local;
  for (const std::string& key : local_keys) local.push_back(a.cluster->Entity<HitEntity>(key));
  for (int64_t i = 0; i < n; ++i) (void)local[i].Ask(cwire::Hit{.seq = i}).Wait(kTimeout);  // activates
  absl::StatusOr<std::pair<double, double>> here = Time(n, [&](int64_t i) {
    return Check(local[i].Ask(cwire::Hit{.seq = i}).Wait(kTimeout), i, "local entity ask");
  });
  if (!here.ok()) return here.status();
  const uint64_t activations = b.cluster->entity_stats<HitEntity>().activations;
  if (activations < static_cast<uint64_t>(n)) {
    return absl::InternalError(absl::StrCat("entity-rtt: b activated ", activations, " entities for ", n, " keys"));
  }
  return std::vector<Measurement>{
      {"plain remote ask p50", ref->first, "us", false},
      {"entity first ask p50", first->first, "us", false},
      {"entity ask p50", later->first, "us", false},
      {"entity ask p99", later->second, "us", false},
      {"local entity ask p50", here->first, "us", false},
      {"entity/plain p50", later->first / ref->first, "x", false},
  };
}

absl::StatusOr<std::vector<Measurement>> TroupeEntityHandoff(const Sizes& sizes) {
  const int64_t n = sizes.entity_handoff_entities;
  if (n <= 0) return absl::InvalidArgumentError("--entity_handoff_entities must be positive");
  Member a("bench-a"), b("bench-b"), c("bench-c"), d("bench-d");
  const std::vector<std::string> list{a.address, b.address, c.address, d.address};
  for (Member* m : {&a, &b, &c}) {
    if (absl::Status s = m->Join(list); !s.ok()) return s;
  }
  if (!WaitFor([&] { return a.up() == 3 && b.up() == 3 && c.up() == 3; })) {
    return absl::InternalError("entity-handoff: the three members never saw each other up");
  }
  // Activates n entities from a, then waits until all are up.
  for (int64_t i = 0; i < n; ++i) a.cluster->Entity<HitEntity>(absl::StrCat("e-", i)).Tell(cwire::Hit{.seq = i});
  auto active = [&] {
    uint64_t sum = 0;
    for (Member* m : {&a, &b, &c}) sum += m->cluster->entity_stats<HitEntity>().entities;
    return sum;
  };
  if (!WaitFor([&] { return active() == static_cast<uint64_t>(n); })) {
    return absl::InternalError(absl::StrCat("entity-handoff: ", active(), " of ", n, " entities active"));
  }
  const cluster::ShardTable before(kShards, {"bench-a", "bench-b", "bench-c"});
  const cluster::ShardTable after(kShards, {"bench-a", "bench-b", "bench-c", "bench-d"});
  const size_t moving = before.Moved(after).size();
  const absl::Time start = absl::Now();
  if (absl::Status s = d.Join(list); !s.ok()) return s;
  if (!WaitFor([&] { return d.cluster->entity_stats<HitEntity>().shards_owned == moving; })) {
    return absl::InternalError(absl::StrCat("entity-handoff: the new member owns ",
                                            d.cluster->entity_stats<HitEntity>().shards_owned, " of ", moving,
                                            " shards"));
  }
  const absl::Duration elapsed = absl::Now() - start;
  uint64_t timeouts = 0;
  for (Member* m : {&a, &b, &c, &d}) timeouts += m->cluster->entity_stats<HitEntity>().handoff_timeouts;
  if (timeouts != 0) return absl::InternalError(absl::StrCat("entity-handoff: ", timeouts, " handoffs timed out"));
  return std::vector<Measurement>{
      {"join handoff", absl::ToDoubleMilliseconds(elapsed), "ms", false},
      {"shards moved", static_cast<double>(moving), "", false},
      {"entities stopped", static_cast<double>(n - static_cast<int64_t>(active())), "", false},
  };
}

absl::StatusOr<std::vector<Measurement>> TroupeEntityFailover(const Sizes&) {
  cluster::etcd::EtcdServer etcd;
  if (absl::Status s = etcd.Start(); !s.ok()) return s;
  nettest::TcpRelay relay;
  relay.SetTarget(etcd.client_address());
  auto options = [](const std::string& endpoint) {
    cluster::EtcdMembershipOptions o;
    o.endpoint = endpoint;
    o.cluster = "bench";
    o.ttl = absl::Seconds(2);
    o.keepalive_interval = absl::Milliseconds(250);
    o.fence_margin = absl::Milliseconds(500);
    o.request_timeout = absl::Milliseconds(500);
    o.retry_interval = absl::Milliseconds(100);
    return cluster::ClusterOptions{.provider = cluster::EtcdMembers(o)};
  };
  Member a("bench-a"), b("bench-b"), c("bench-c");
  if (absl::Status s = a.Join(options(etcd.client_address())); !s.ok()) return s;
  if (absl::Status s = b.Join(options(etcd.client_address())); !s.ok()) return s;
  if (absl::Status s = c.Join(options(relay.address())); !s.ok()) return s;
  if (!WaitFor([&] { return a.up() == 3 && b.up() == 3 && c.up() == 3 && c.cluster->hosting(); })) {
    return absl::InternalError("entity-failover: the three members never saw each other up");
  }
  const std::string key = KeysOwnedBy("bench-c", {"bench-a", "bench-b", "bench-c"}, 1, "f-").front();
  cluster::EntityRef<HitEntity> entity = a.cluster->Entity<HitEntity>(key);
  if (absl::Status s = Check(entity.Ask(cwire::Hit{.seq = 1}).Wait(kTimeout), 1, "before the cut"); !s.ok()) return s;
  const absl::Time cut = absl::Now();
  relay.Pause();
  absl::Time fenced = absl::InfiniteFuture(), served = absl::InfiniteFuture();
  int64_t failed = 0;
  for (int64_t i = 2; absl::Now() - cut < kTimeout && served == absl::InfiniteFuture(); ++i) {
    if (fenced == absl::InfiniteFuture() && !c.cluster->hosting()) fenced = absl::Now();
    Result<int64_t> r = entity.Ask(cwire::Hit{.seq = i}, absl::Milliseconds(200)).Wait();
    if (r.ok() && c.cluster->entity_stats<HitEntity>().entities == 0) {
      served = absl::Now();
    } else {
      ++failed;
      absl::SleepFor(absl::Milliseconds(20));  // pacing the probes, not synchronizing
    }
  }
  if (served == absl::InfiniteFuture()) return absl::InternalError("entity-failover: the key was never served again");
  if (fenced == absl::InfiniteFuture() && !c.cluster->hosting()) fenced = absl::Now();
  relay.Resume();
  return std::vector<Measurement>{
      {"served again after", absl::ToDoubleMilliseconds(served - cut), "ms", false},
      {"cut member fenced after", absl::ToDoubleMilliseconds(fenced - cut), "ms", false},
      {"asks failed meanwhile", static_cast<double>(failed), "", false},
  };
}

namespace {

// counter_service in this program's runfiles (bazel run, or the binary run
// by its path).
std::string CounterServicePath() {
  if (const std::string exe = SelfExecutable(); !exe.empty()) {
    const std::string beside = exe + ".runfiles/troupe/examples/counter_service";
    if (access(beside.c_str(), X_OK) == 0) return beside;
  }
  return "examples/counter_service";
}

}  // namespace

absl::StatusOr<std::vector<Measurement>> TroupeEntityFailoverKill(const Sizes&) {
  cluster::etcd::EtcdServer etcd;
  if (absl::Status s = etcd.Start(); !s.ok()) return s;
  absl::StatusOr<std::vector<int>> ports = examples::FreeLoopbackPorts(3);
  if (!ports.ok()) return ports.status();
  const std::vector<std::string> names{"bench-node-1", "bench-node-2", "bench-node-3"};
  std::vector<std::unique_ptr<examples::ChildProcess>> nodes;
  std::vector<std::string> addresses;
  for (size_t i = 0; i < names.size(); ++i) {
    addresses.push_back(absl::StrCat("127.0.0.1:", (*ports)[i]));
    absl::StatusOr<std::unique_ptr<examples::ChildProcess>> child = examples::ChildProcess::Start(
        names[i],
        {CounterServicePath(), "--listen=" + addresses.back(), "--cluster=etcd://" + etcd.client_address(),
         "--name=" + names[i], "--secret=bench-cluster", "--lease_ttl=2s", "--workers=1", "--increments=0",
         absl::StrCat("--shards=", kShards)},
        /*echo=*/false);
    if (!child.ok()) return child.status();
    nodes.push_back(*std::move(child));
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    absl::StatusOr<std::string> ready = nodes[i]->WaitForLine(names[i] + ": ready", absl::Now() + kTimeout);
    if (!ready.ok()) return ready.status();
  }
  // This process is a client: it reads the key through node 1's Service.
  ActorSystem system(ActorSystemOptions{
      .workers = 1,
      .name = "bench-client",
      .logger = std::make_shared<spdlog::logger>("bench-client", std::make_shared<spdlog::sinks::null_sink_mt>())});
  NodeOptions o;
  o.name = "bench-client";
  o.cluster_secret = "bench-cluster";
  Node client(system, std::move(o));
  absl::StatusOr<Ref<counter::Service>> service =
      client.Lookup<counter::Service>(addresses[0], "counter", absl::Seconds(10)).Wait();
  if (!service.ok()) return service.status();
  auto members_up = [&]() -> int {
    Result<counter::NodeInfo> info = service->Ask(counter::Describe{}, absl::Seconds(1)).Wait();
    if (!info.ok()) return -1;
    int up = 0;
    for (const counter::MemberInfo& m : info->members) up += m.state == "up";
    return up;
  };
  if (!WaitFor([&] { return members_up() == 3; })) {
    return absl::InternalError("entity-failover-kill: node 1 never saw all three up");
  }
  const std::string key = KeysOwnedBy(names[2], names, 1, "kill-").front();
  Result<int64_t> before = service->Ask(counter::ReadKey{.key = key}, absl::Seconds(10)).Wait();
  if (!before.ok()) return before.status();
  const absl::Time killed = absl::Now();
  nodes[2]->Signal(SIGKILL);
  absl::Time removed = absl::InfiniteFuture(), served = absl::InfiniteFuture();
  int64_t failed = 0;
  while (absl::Now() - killed < kTimeout && served == absl::InfiniteFuture()) {
    if (removed == absl::InfiniteFuture() && members_up() == 2) removed = absl::Now();
    Result<int64_t> r = service->Ask(counter::ReadKey{.key = key}, absl::Milliseconds(200)).Wait();
    if (r.ok()) {
      served = absl::Now();
    } else {
      ++failed;
      absl::SleepFor(absl::Milliseconds(20));  // pacing the probes, not synchronizing
    }
  }
  if (served == absl::InfiniteFuture()) return absl::InternalError("entity-failover-kill: the key was never served again");
  if (removed == absl::InfiniteFuture() && members_up() == 2) removed = absl::Now();
  client.Shutdown();
  for (size_t i = 0; i < 2; ++i) nodes[i]->Signal(SIGTERM);
  for (size_t i = 0; i < nodes.size(); ++i) {
    bool clean = false;
    (void)nodes[i]->WaitOrKill(absl::Now() + absl::Seconds(20), &clean);
  }
  return std::vector<Measurement>{
      {"removed after", absl::ToDoubleMilliseconds(removed - killed), "ms", false},
      {"served again after", absl::ToDoubleMilliseconds(served - killed), "ms", false},
      {"asks failed meanwhile", static_cast<double>(failed), "", false},
  };
}

}  // namespace troupe::bench
