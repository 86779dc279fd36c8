// counter_service: counters by key on a cluster of troupe nodes. Every key
// is a Counter entity (cluster/entity.h) that the cluster places on one
// member and activates there on its first message; clients increment keys
// with tells and asks, and read them with asks, wherever they live. See
// docs/cluster.md.
//
//   ./tools/bazel run -c opt //examples:counter_service
//
// With no --listen and no --peer it starts a small local cluster: it picks
// --local_nodes free ports on 127.0.0.1 and runs itself as that many node
// processes, each given the whole list (--cluster=static:...), or, given
// --cluster=etcd://host:port, each registering in that etcd. Then it runs
// a workload from every node (--increments over --keys per client), checks
// every count, prints per-node figures, and stops the nodes (each leaves
// the cluster; one that does not exit in time is killed by pid).
//
// A node of a real cluster, one per machine, over TLS with certificates
// from tools/make-certs (the node's name is its certificate's unless
// --name says otherwise), with the member list on the command line:
//
//   counter_service --listen=0.0.0.0:7000 --advertise=A:7000 --cluster=static:A:7000,B:7000,C:7000
//       --tls_cert=a.pem --tls_key=a.key --tls_ca=ca.pem                  # on A (one command line)
//
// and the same on B and C, with their own --advertise and certificates;
// or with the members registered in etcd, so that nodes can come and go:
//
//   counter_service --listen=0.0.0.0:7000 --advertise=A:7000 --cluster=etcd://E:2379 --secret=S    # on A
//
// (a shared --secret instead of TLS, for development: the same on all).
// A node's --listen (or --advertise) address is its identity in a static
// list. A node with --increments runs the workload over the whole cluster
// once it hosts entities (--increments=0: it only serves). Every node runs
// until SIGINT or SIGTERM, then leaves the cluster (its shards move to the
// others); SIGHUP makes it reload its TLS files (it also does so by itself
// when they change: --tls_reload). --peer without --listen runs the
// workload as a client that is not a member, through the nodes' Services,
// and exits (--report: only prints what each node sees and the node table).
//
// Output lines of a node start with its name; "<name>: listening on
// <address>" says where it accepts connections, "<name>: ready" that it
// hosts entities, "<name>: member ..." each membership change it sees.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actors/actor_system.h"
#include "cluster/cluster.h"
#include "cluster/etcd/etcd_membership.h"
#include "examples/counter_actors.h"
#include "examples/counter_store.h"
#include "examples/counter_workload.h"
#include "examples/local_cluster.h"
#include "examples/node_cli.h"
#include "net/node.h"

ABSL_FLAG(std::string, listen, "", "run a node accepting connections on host:port (port 0: any free port)");
ABSL_FLAG(std::string, cluster, "",
          "the cluster's membership: static:<host:port>,<host:port>,... (every member's address, this node's "
          "among them; default: this node alone) or etcd://<host:port> (etcd's client address)");
ABSL_FLAG(std::string, cluster_name, "counter", "with etcd: the cluster's name, its key prefix in etcd");
ABSL_FLAG(absl::Duration, lease_ttl, absl::Seconds(3),
          "with etcd: the TTL of a node's lease; a member that cannot renew it for this long is removed");
ABSL_FLAG(std::vector<std::string>, peer, {},
          "without --listen: host:port of a node of the cluster to run the workload through (repeat the flag, or "
          "separate by commas)");
ABSL_FLAG(std::string, advertise, "",
          "host:port other nodes reach this one by, if not the --listen address (needed with --listen=0.0.0.0:...: "
          "it is the node's address in the cluster)");
ABSL_FLAG(std::string, name, "",
          "this node's name, unique in the cluster (default: the name in its TLS certificate, or <hostname>-<pid>)");
ABSL_FLAG(int, shards, 64, "shards the keys are spread over: the same on every node of a cluster");
ABSL_FLAG(int, local_nodes, 3, "node processes of the local cluster (without --listen and --peer)");
ABSL_FLAG(int64_t, increments, 10000, "increments each client sends (0: run no workload)");
ABSL_FLAG(int64_t, keys, 1000, "keys the increments are spread over");
ABSL_FLAG(int, clients, 1, "clients on each node");
ABSL_FLAG(int64_t, ask_every, 100,
          "every this many increments a client asks (Add) and waits for the answer instead of telling; 0: tells only");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(30), "deadline of each step (lookups, the workload)");
ABSL_FLAG(absl::Duration, join_timeout, absl::Seconds(30),
          "a node gives up (exits 1) if it does not host entities this long after it starts; 0: waits for ever");
ABSL_FLAG(absl::Duration, pace, absl::ZeroDuration(),
          "each client sends one increment per this long (0: as fast as it can), so sending can span minutes");
ABSL_FLAG(bool, tell_only, false,
          "the workload's clients only send increments (tells): no Await, no read-back; checks none was dropped");
ABSL_FLAG(bool, check_acked, false,
          "the workload checks acknowledged increments (each counted once) instead of exact counts: for runs with "
          "faults, with --ask_every=1");
ABSL_FLAG(bool, report, false,
          "with --peer and no --listen: print what each node sees and the node table, run no workload, exit");
ABSL_FLAG(int, workers, 0, "worker threads of each node (0: one per hardware thread)");
ABSL_FLAG(bool, verbose, false, "local cluster: show the output of the node processes");
ABSL_FLAG(std::string, log_level, "warn", "what troupe logs on stderr: info shows connections, warn problems only");

namespace {

using counter::KnownMember;
using counter::Service;

using troupe::examples::NodeAuth;

troupe::NodeOptions Options(const std::string& name, const NodeAuth& auth) {
  troupe::NodeOptions o;
  o.name = name;
  troupe::examples::ApplyAuth(auth, o);
  o.advertise_address = absl::GetFlag(FLAGS_advertise);
  return o;
}

troupe::ActorSystemOptions SystemOptions(const std::string& name) {
  troupe::ActorSystemOptions o;
  o.workers = absl::GetFlag(FLAGS_workers);
  o.name = name;
  o.logger = troupe::examples::StderrLogger(name, absl::GetFlag(FLAGS_log_level));
  return o;
}

counter::WorkloadOptions Workload(const troupe::Node& node) {
  counter::WorkloadOptions o;
  o.clients_per_node = absl::GetFlag(FLAGS_clients);
  o.increments = absl::GetFlag(FLAGS_increments);
  o.keys = absl::GetFlag(FLAGS_keys);
  o.ask_every = absl::GetFlag(FLAGS_ask_every);
  o.timeout = absl::GetFlag(FLAGS_timeout);
  o.pace = absl::GetFlag(FLAGS_pace);
  o.tell_only = absl::GetFlag(FLAGS_tell_only);
  o.check_acked = absl::GetFlag(FLAGS_check_acked);
  // Keys of this run only: a cluster that lives on keeps earlier counts.
  o.key_prefix = absl::StrCat(node.name(), "-", absl::Hex(node.incarnation() & 0xffffff), "/");
  return o;
}

// What --cluster says.
struct Membership {
  std::vector<std::string> static_members;  // static: empty for "this node alone"
  std::string etcd;                         // etcd's client address, or empty
};

absl::StatusOr<Membership> ParseCluster(const std::string& flag) {
  Membership m;
  if (flag.empty()) return m;
  if (absl::StartsWith(flag, "static:")) {
    for (absl::string_view a : absl::StrSplit(flag.substr(7), ',', absl::SkipWhitespace())) {
      m.static_members.emplace_back(a);
    }
    if (m.static_members.empty()) return absl::InvalidArgumentError("--cluster=static: lists no member");
    return m;
  }
  if (absl::StartsWith(flag, "etcd://")) {
    m.etcd = flag.substr(7);
    while (!m.etcd.empty() && m.etcd.back() == '/') m.etcd.pop_back();
    if (m.etcd.empty() || m.etcd.find(':') == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("--cluster=", flag, ": etcd://<host>:<port> expected"));
    }
    return m;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--cluster=", flag, ": expected static:<host:port>,... or etcd://<host:port>"));
}

troupe::cluster::ClusterOptions ClusterOptionsFor(const Membership& m, const std::string& self) {
  troupe::cluster::ClusterOptions o;
  if (m.etcd.empty()) {
    o.static_members = m.static_members.empty() ? std::vector<std::string>{self} : m.static_members;
    return o;
  }
  const absl::Duration ttl = absl::GetFlag(FLAGS_lease_ttl);
  o.provider = troupe::cluster::EtcdMembers(troupe::cluster::EtcdMembershipOptions{
      .endpoint = m.etcd,
      .cluster = absl::GetFlag(FLAGS_cluster_name),
      .ttl = ttl,
      .keepalive_interval = std::min(absl::Milliseconds(500), ttl / 6),
      .fence_margin = std::min(absl::Seconds(1), ttl / 3),
  });
  return o;
}

std::string MembershipName(const Membership& m) { return m.etcd.empty() ? "static" : "etcd " + m.etcd; }

troupe::cluster::EntityOptions CounterOptions() {
  troupe::cluster::EntityOptions o;
  o.shards = static_cast<uint32_t>(absl::GetFlag(FLAGS_shards));
  // In memory a Counter's count lives in its activation: it must not be
  // passivated. (With etcd it could be; it is not, for the same figures.)
  o.passivate_after = absl::ZeroDuration();
  return o;
}

// Waits (polling, at most `timeout`) until `listed` members, every one of
// the static list, are up in this node's view.
bool AllListedUp(const troupe::cluster::Cluster& cluster, size_t listed, absl::Duration timeout) {
  return counter::PollUntil(
      [&] {
        const troupe::cluster::MembershipView view = cluster.view();
        return view.members.size() == listed &&
               std::all_of(view.members.begin(), view.members.end(), [](const troupe::cluster::Member& m) {
                 return m.state == troupe::cluster::MemberState::kUp;
               });
      },
      timeout, absl::Milliseconds(20));
}

// A node: a member of the cluster --cluster describes, hosting Counters and
// a Service.
int RunNode(const std::string& listen, const Membership& membership, const NodeAuth& auth) {
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  troupe::ActorSystem sys(SystemOptions("counter"));
  auto node = std::make_unique<troupe::Node>(sys, Options(absl::GetFlag(FLAGS_name), auth));
  if (!troupe::examples::Ready(*node)) return 1;
  const std::string name = node->name();
  absl::StatusOr<std::string> bound = node->Listen(listen);
  if (!bound.ok()) {
    std::fprintf(stderr, "%s: cannot listen on %s: %s\n", name.c_str(), listen.c_str(),
                 bound.status().ToString().c_str());
    return 1;
  }
  const std::string address = node->address();
  auto cluster = std::make_unique<troupe::cluster::Cluster>(sys, *node, ClusterOptionsFor(membership, address));
  if (!cluster->status().ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), std::string(cluster->status().message()).c_str());
    return 2;
  }
  // With etcd the counts are kept there too, so that they outlive a node.
  if (!membership.etcd.empty()) {
    counter::SetCounterStore(counter::EtcdCounterStore(membership.etcd, absl::GetFlag(FLAGS_cluster_name)));
  }
  if (absl::Status s = cluster->StartEntities<counter::Counter>(CounterOptions()); !s.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), std::string(s.message()).c_str());
    return 2;
  }
  auto stats = std::make_shared<counter::NodeStatsSource>(node.get());
  std::atomic<bool> leave{false}, hosted{false};
  troupe::Ref<Service> service = sys.Spawn<Service>(counter::ServiceOptions{.node = name,
                                                                           .address = address,
                                                                           .incarnation = node->incarnation(),
                                                                           .membership = MembershipName(membership),
                                                                           .cluster = cluster.get(),
                                                                           .stats = stats,
                                                                           .leave = &leave,
                                                                           .hosted = &hosted});
  (void)node->Publish("counter", service);
  std::printf("%s: listening on %s (membership: %s)\n", name.c_str(), address.c_str(),
              MembershipName(membership).c_str());
  cluster->Subscribe(service);

  bool ok = true;
  const absl::Duration join_timeout = absl::GetFlag(FLAGS_join_timeout);
  // acquire: pairs with the Service's release stores.
  int sig = troupe::examples::WaitUntil(
      [&] { return hosted.load(std::memory_order_acquire) || leave.load(std::memory_order_acquire); }, *node,
      join_timeout == absl::ZeroDuration() ? absl::InfiniteFuture() : absl::Now() + join_timeout);
  if (sig != 0 || leave.load(std::memory_order_acquire)) {
    // Asked to leave before it hosted anything.
  } else if (!hosted.load(std::memory_order_acquire)) {
    size_t up = 0;
    const troupe::cluster::MembershipView view = cluster->view();
    for (const troupe::cluster::Member& m : view.members) up += m.state == troupe::cluster::MemberState::kUp;
    const std::string seen =
        membership.etcd.empty()
            ? absl::StrCat(up, " of ", std::max<size_t>(membership.static_members.size(), 1), " listed members up")
            : absl::StrCat(up, " members up; this node does not host (is etcd at ", membership.etcd, " reachable?)");
    std::printf("%s: could not join the cluster within %s: %s (are the others running, with the same --secret or "
                "TLS CA, and the same --cluster?)\n",
                name.c_str(), absl::FormatDuration(join_timeout).c_str(), seen.c_str());
    ok = false;
    leave.store(true, std::memory_order_release);
  } else {
    std::vector<std::string> up;
    for (const troupe::cluster::Member& m : cluster->view().members) {
      if (m.state == troupe::cluster::MemberState::kUp) up.push_back(m.name);
    }
    std::printf("%s: ready: hosting entities; members up: %s\n", name.c_str(), absl::StrJoin(up, ", ").c_str());
    if (absl::GetFlag(FLAGS_increments) > 0) {
      // With a static list the workload is over all of it.
      const size_t listed = std::max<size_t>(membership.static_members.size(), 1);
      if (membership.etcd.empty() && !AllListedUp(*cluster, listed, timeout)) {
        std::printf("%s: warning: not every listed member is up after %s; the workload runs over those that are\n",
                    name.c_str(), absl::FormatDuration(timeout).c_str());
      }
      counter::Discovery found = counter::Discover(*node, {}, service, timeout);
      for (const std::string& e : found.errors) std::printf("%s: warning: %s\n", name.c_str(), e.c_str());
      if (!counter::AwaitAgreement(found.members, timeout)) {
        std::printf("%s: warning: the members' views did not agree within %s\n", name.c_str(),
                    absl::FormatDuration(timeout).c_str());
      }
      ok = counter::RunWorkload(sys, found.members, Workload(*node));
      counter::PrintNodeTable(found.members, timeout, "", {});
      std::printf("%s: workload done; serving until SIGINT or SIGTERM\n", name.c_str());
    }
  }

  if (sig == 0) sig = troupe::examples::WaitForQuit(leave, *node);
  if (sig != 0) {
    std::printf("%s: signal %d: leaving the cluster\n", name.c_str(), sig);
  } else {
    std::printf("%s: leaving the cluster\n", name.c_str());
  }
  const absl::Status left = cluster->Leave().Wait(timeout);
  if (!left.ok()) std::printf("%s: leaving: %s\n", name.c_str(), left.ToString().c_str());
  // The Service stops before the Cluster it uses goes: once Quiet is
  // answered it handles nothing more.
  (void)service.Ask(counter::Quiet{}).Wait(timeout);
  cluster.reset();
  node->Shutdown();
  stats->Detach();
  node.reset();
  (void)sys.Shutdown();
  std::printf("%s: stopped\n", name.c_str());
  return ok ? 0 : 1;
}

// --peer without --listen: a client that runs the workload and exits.
int RunClientOnly(const std::vector<std::string>& peers, const NodeAuth& auth) {
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  troupe::ActorSystem sys(SystemOptions("client"));
  troupe::Node node(sys, Options(absl::GetFlag(FLAGS_name), auth));
  if (!troupe::examples::Ready(node)) return 1;
  counter::Discovery found = counter::Discover(node, peers, {}, timeout);
  for (const std::string& e : found.errors) std::printf("warning: %s\n", e.c_str());
  if (found.members.empty()) {
    std::printf("no node of --peer answered: is one running, with the same --secret or TLS CA?\n");
    return 1;
  }
  if (absl::GetFlag(FLAGS_report)) {
    counter::PrintMembers(found.members);
    counter::PrintNodeTable(found.members, timeout, "", {});
    return 0;
  }
  if (!counter::AwaitAgreement(found.members, timeout)) {
    std::printf("warning: the members' views did not agree within %s\n", absl::FormatDuration(timeout).c_str());
  }
  const bool ok = counter::RunWorkload(sys, found.members, Workload(node));
  counter::PrintNodeTable(found.members, timeout, "", {});
  return ok ? 0 : 1;
}

// The path of this program, to run it again as the nodes.
absl::StatusOr<std::string> SelfPath() {
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return absl::InternalError("cannot read /proc/self/exe");
  return std::string(path, static_cast<size_t>(n));
}

// No --listen, no --peer: a local cluster of node processes on loopback.
int RunLocalCluster(const Membership& membership, const NodeAuth& auth) {
  const std::string& secret = auth.cluster_secret;
  const int count = absl::GetFlag(FLAGS_local_nodes);
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  if (count < 1) {
    std::fprintf(stderr, "--local_nodes must be at least 1\n");
    return 2;
  }
  if (!membership.static_members.empty()) {
    std::fprintf(stderr, "the local cluster picks its own ports: give --cluster=static:... to nodes (--listen)\n");
    return 2;
  }
  absl::StatusOr<std::string> self = SelfPath();
  absl::StatusOr<std::vector<int>> ports = troupe::examples::FreeLoopbackPorts(count);
  if (!self.ok() || !ports.ok()) {
    std::fprintf(stderr, "%s\n", (!self.ok() ? self.status() : ports.status()).ToString().c_str());
    return 1;
  }
  std::vector<std::string> addresses;
  for (int port : *ports) addresses.push_back(absl::StrCat("127.0.0.1:", port));
  const std::string cluster_flag = membership.etcd.empty() ? "static:" + absl::StrJoin(addresses, ",")
                                                           : "etcd://" + membership.etcd;
  std::printf("counter_service: a local cluster of %d node processes on 127.0.0.1, %d shards, membership: %s\n",
              count, absl::GetFlag(FLAGS_shards), MembershipName(membership).c_str());

  // Started together: each finds the others by itself.
  std::vector<std::unique_ptr<troupe::examples::ChildProcess>> nodes;
  absl::flat_hash_map<std::string, std::string> pids;
  bool ok = true;
  for (int i = 1; i <= count && ok; ++i) {
    const std::string name = absl::StrCat("node-", i);
    std::vector<std::string> argv = {*self,
                                     "--listen=" + addresses[static_cast<size_t>(i - 1)],
                                     "--cluster=" + cluster_flag,
                                     "--cluster_name=" + absl::GetFlag(FLAGS_cluster_name),
                                     "--name=" + name,
                                     absl::StrCat("--shards=", absl::GetFlag(FLAGS_shards)),
                                     "--secret=" + secret,
                                     "--increments=0",
                                     absl::StrCat("--workers=", absl::GetFlag(FLAGS_workers)),
                                     absl::StrCat("--timeout=", absl::FormatDuration(timeout)),
                                     absl::StrCat("--lease_ttl=", absl::FormatDuration(absl::GetFlag(FLAGS_lease_ttl))),
                                     "--log_level=" + absl::GetFlag(FLAGS_log_level)};
    absl::StatusOr<std::unique_ptr<troupe::examples::ChildProcess>> child =
        troupe::examples::ChildProcess::Start(name, argv, absl::GetFlag(FLAGS_verbose));
    if (!child.ok()) {
      std::printf("cannot start %s: %s\n", name.c_str(), child.status().ToString().c_str());
      ok = false;
      break;
    }
    nodes.push_back(*std::move(child));
  }
  for (size_t i = 0; i < nodes.size() && ok; ++i) {
    const std::string& name = nodes[i]->name();
    const absl::Time deadline = absl::Now() + timeout;
    absl::StatusOr<std::string> ready = nodes[i]->WaitForLine(name + ": ready", deadline);
    if (!ready.ok()) {
      std::printf("%s did not start: %s\n", name.c_str(), ready.status().ToString().c_str());
      for (const std::string& line : nodes[i]->Tail()) std::printf("  [%s] %s\n", name.c_str(), line.c_str());
      ok = false;
      break;
    }
    pids[name] = absl::StrCat(nodes[i]->pid());
    std::printf("  %s: pid %d, listening on %s\n", name.c_str(), nodes[i]->pid(), addresses[i].c_str());
  }

  std::vector<KnownMember> cluster;
  if (ok) {
    // This process is a client, not a member: it reaches the keys through
    // the nodes' Services.
    troupe::ActorSystem sys(SystemOptions("driver"));
    troupe::Node node(sys, Options(absl::StrCat("driver-", getpid()), auth));
    if (!troupe::examples::Ready(node)) return 1;
    counter::Discovery found = counter::Discover(node, addresses, {}, timeout);
    for (const std::string& e : found.errors) std::printf("warning: %s\n", e.c_str());
    cluster = std::move(found.members);
    if (cluster.size() != nodes.size()) ok = false;
    if (ok && !counter::AwaitAgreement(cluster, timeout)) {
      std::printf("the nodes' views of the cluster did not agree within %s\n", absl::FormatDuration(timeout).c_str());
      ok = false;
    }
    if (ok) std::printf("cluster: %zu nodes, each hosting and seeing every other up\n", cluster.size());
    if (ok && absl::GetFlag(FLAGS_increments) > 0) ok = counter::RunWorkload(sys, cluster, Workload(node));
    counter::PrintNodeTable(cluster, timeout, "pid", pids);

    // The nodes leave one at a time, each handing its shards to the rest.
    if (ok) {
      for (size_t i = 0; i < cluster.size(); ++i) {
        (void)cluster[i].service.Ask(counter::Leave{}, timeout).Wait(timeout);
        (void)nodes[i]->WaitForLine(cluster[i].info.node + ": stopped", absl::Now() + timeout);
      }
    }
    node.Shutdown();
  }

  std::printf("stopping the nodes:");
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  bool all_clean = true;
  for (auto& child : nodes) {
    if (!ok) child->Signal(SIGTERM);  // on failure, without waiting for a Leave
    bool clean = false;
    const std::string how = child->WaitOrKill(deadline, &clean);
    std::printf(" %s %s%s", child->name().c_str(), how.c_str(), &child == &nodes.back() ? "\n" : ",");
    if (!clean) all_clean = false;
  }
  if (nodes.empty()) std::printf(" none\n");
  if (!all_clean || !ok) {
    for (auto& child : nodes) {
      std::printf("last output of %s:\n", child->name().c_str());
      for (const std::string& line : child->Tail()) std::printf("  %s\n", line.c_str());
    }
  }
  return ok && all_clean ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);  // starts no thread
  // A node takes SIGINT and SIGTERM as "leave the cluster", SIGHUP as
  // "reload the TLS files"; the local cluster's driver and a client die of
  // them as usual.
  if (!absl::GetFlag(FLAGS_listen).empty()) troupe::examples::BlockNodeSignals();
  setvbuf(stdout, nullptr, _IOLBF, 0);  // whole lines, also into a pipe
  const std::string listen = absl::GetFlag(FLAGS_listen);
  const std::vector<std::string> peers = troupe::examples::RepeatedFlag(argc, argv, "peer");
  if (absl::GetFlag(FLAGS_shards) <= 0 || absl::GetFlag(FLAGS_keys) <= 0 || absl::GetFlag(FLAGS_increments) < 0 ||
      absl::GetFlag(FLAGS_clients) <= 0 || absl::GetFlag(FLAGS_ask_every) < 0 ||
      absl::GetFlag(FLAGS_lease_ttl) <= absl::ZeroDuration()) {
    std::fprintf(stderr,
                 "--shards, --keys, --clients and --lease_ttl must be positive; --increments and --ask_every not "
                 "negative\n");
    return 2;
  }
  absl::StatusOr<Membership> membership = ParseCluster(absl::GetFlag(FLAGS_cluster));
  if (!membership.ok()) {
    std::fprintf(stderr, "%s\n", std::string(membership.status().message()).c_str());
    return 2;
  }
  if (!listen.empty() && !peers.empty()) {
    std::fprintf(stderr,
                 "--peer is for a client (no --listen); a node finds its cluster through --cluster "
                 "(static:<every member's address> or etcd://<host:port>)\n");
    return 2;
  }
  if (listen.empty() && peers.empty() && troupe::examples::AnyTlsFlag()) {
    std::fprintf(stderr,
                 "the local cluster (no --listen, no --peer) uses a shared secret: --tls_cert, --tls_key and "
                 "--tls_ca are one node's, for a node given --listen or --peer\n");
    return 2;
  }
  absl::StatusOr<NodeAuth> auth = troupe::examples::AuthFromFlags();
  if (!auth.ok()) {
    std::fprintf(stderr, "%s\n", std::string(auth.status().message()).c_str());
    return 2;
  }
  if (!listen.empty()) return RunNode(listen, *membership, *auth);
  if (!peers.empty()) return RunClientOnly(peers, *auth);
  return RunLocalCluster(*membership, *auth);
}
