// counter_service: a sharded counter service on a cluster of troupe nodes.
// Keys are spread over the shards (actors) of every node by a hash; clients
// increment keys with tells and read them with asks, through Refs, node to
// node. See docs/cluster.md.
//
//   ./tools/bazel run -c opt //examples:counter_service
//
// With no --listen and no --peer it starts a small local cluster: it runs
// itself --local_nodes times as node processes on loopback (ports the
// kernel picks), runs a workload from every node (--increments over
// --keys per client), checks every count, prints per-node figures, and
// stops the nodes (each leaves the cluster; one that does not exit in time
// is killed by pid).
//
// A node of a real cluster, one per machine, over TLS with certificates
// from tools/make-certs (the node's name is its certificate's unless
// --name says otherwise):
//
//   counter_service --listen=0.0.0.0:7000 --tls_cert=a.pem --tls_key=a.key --tls_ca=ca.pem               # A
//   counter_service --listen=0.0.0.0:7000 --peer=A:7000 --tls_cert=b.pem --tls_key=b.key --tls_ca=ca.pem  # B
//
// or, for development, with a shared secret and no encryption (the same
// --secret on all):
//
//   counter_service --listen=0.0.0.0:7000 --secret=S                   # machine A
//   counter_service --listen=0.0.0.0:7000 --peer=A:7000 --secret=S     # machine B
//
// A node with --peer (repeat it, or separate by commas) joins the cluster
// those nodes belong to and then runs the workload over the whole cluster
// once (--increments=0: it only serves). Every node runs until SIGINT or
// SIGTERM, then leaves the cluster; SIGHUP makes it reload its TLS files
// (it also does so by itself when they change: --tls_reload). --peer
// without --listen runs the workload as a client that hosts no shards, and
// exits (--report: only prints what each node sees and the node table).
// With --peer, finding and joining the cluster is retried until
// --join_timeout, a line per retry.
//
// Output lines of a node start with its name; "<name>: listening on
// <address>" says where it accepts connections, "<name>: ready" that it has
// joined.

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actors/actor_system.h"
#include "examples/counter_actors.h"
#include "examples/counter_workload.h"
#include "examples/local_cluster.h"
#include "examples/node_cli.h"
#include "net/node.h"

ABSL_FLAG(std::string, listen, "", "run a node accepting connections on host:port (port 0: any free port)");
ABSL_FLAG(std::vector<std::string>, peer, {},
          "host:port of a node of the cluster to join (repeat the flag, or separate by commas)");
ABSL_FLAG(std::string, advertise, "",
          "host:port other nodes reach this one by, if not the --listen address (behind NAT, or to be sure "
          "Refs to this node from a wildcard --listen work from nodes it never connected to)");
ABSL_FLAG(std::string, name, "",
          "this node's name, unique in the cluster (default: the name in its TLS certificate, or <hostname>-<pid>)");
ABSL_FLAG(int, shards, 4, "shards this node hosts");
ABSL_FLAG(int, local_nodes, 3, "node processes of the local cluster (without --listen and --peer)");
ABSL_FLAG(int64_t, increments, 10000, "increments each client sends (0: run no workload)");
ABSL_FLAG(int64_t, keys, 1000, "keys the increments are spread over");
ABSL_FLAG(int, clients, 1, "clients on each node");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(30), "deadline of each step (lookups, joins, the workload)");
ABSL_FLAG(absl::Duration, join_timeout, absl::Seconds(30),
          "with --peer: retry finding and joining the cluster (with backoff) until this long after the start");
ABSL_FLAG(absl::Duration, pace, absl::ZeroDuration(),
          "each client sends one increment per this long (0: as fast as it can), so sending can span minutes");
ABSL_FLAG(bool, tell_only, false,
          "the workload's clients only send increments (tells): no Await, no read-back; checks nothing was refused");
ABSL_FLAG(bool, report, false,
          "with --peer and no --listen: print what each node sees and the node table, run no workload, exit");
ABSL_FLAG(int, workers, 0, "worker threads of each node (0: one per hardware thread)");
ABSL_FLAG(bool, verbose, false, "local cluster: show the output of the node processes");
ABSL_FLAG(std::string, log_level, "warn", "what troupe logs on stderr: info shows connections, warn problems only");

namespace {

using counter::Directory;
using counter::KnownMember;
using counter::Shard;

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
  o.timeout = absl::GetFlag(FLAGS_timeout);
  o.pace = absl::GetFlag(FLAGS_pace);
  o.tell_only = absl::GetFlag(FLAGS_tell_only);
  // Keys of this run only: a cluster that lives on keeps earlier counts.
  o.key_prefix = absl::StrCat(node.name(), "-", absl::Hex(node.incarnation() & 0xffffff), "/");
  return o;
}

// Retries of finding and joining a cluster until --join_timeout after the
// start: the delay doubles from 100 ms to 2 s, each drawn at random between
// half and all of it, so nodes started together do not retry in step.
class JoinRetry {
 public:
  explicit JoinRetry(std::string prefix)
      : prefix_(std::move(prefix)), deadline_(absl::Now() + absl::GetFlag(FLAGS_join_timeout)) {}

  // After a failed attempt: prints one line and waits, true; false once the
  // deadline has passed (nothing printed).
  bool Again(const std::vector<std::string>& why) {
    const absl::Duration left = deadline_ - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    const absl::Duration wait =
        std::min(left, delay_ * std::uniform_real_distribution<double>(0.5, 1.0)(random_));
    std::printf("%sjoin attempt %d failed (%s); retrying in %s\n", prefix_.c_str(), ++attempts_,
                why.empty() ? "no reason given" : absl::StrJoin(why, "; ").c_str(),
                absl::FormatDuration(absl::Trunc(wait, absl::Milliseconds(1))).c_str());
    absl::SleepFor(wait);
    delay_ = std::min(delay_ * 2, absl::Seconds(2));
    return true;
  }

 private:
  const std::string prefix_;
  const absl::Time deadline_;
  absl::Duration delay_ = absl::Milliseconds(100);
  int attempts_ = 0;
  std::mt19937_64 random_{std::random_device{}()};
};

// A node: shards and a directory, joining the cluster of `peers` if any.
int RunNode(const std::string& listen, const std::vector<std::string>& peers, const NodeAuth& auth) {
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  const int shard_count = absl::GetFlag(FLAGS_shards);
  troupe::ActorSystem sys(SystemOptions("counter"));
  auto node = std::make_unique<troupe::Node>(sys, Options(absl::GetFlag(FLAGS_name), auth));
  if (!troupe::examples::Ready(*node)) return 1;
  const std::string name = node->name();
  absl::StatusOr<std::string> address = node->Listen(listen);
  if (!address.ok()) {
    std::fprintf(stderr, "%s: cannot listen on %s: %s\n", name.c_str(), listen.c_str(),
                 address.status().ToString().c_str());
    return 1;
  }
  auto stats = std::make_shared<counter::NodeStatsSource>(node.get());
  std::vector<troupe::Ref<Shard>> shards;
  for (int i = 0; i < shard_count; ++i) {
    shards.push_back(sys.Spawn<Shard>());
    (void)node->Publish(absl::StrCat("shard-", i), shards.back());
  }
  std::atomic<bool> leave{false};
  troupe::Ref<Directory> directory = sys.Spawn<Directory>(counter::DirectoryOptions{.node = name,
                                                                                     .address = *address,
                                                                                     .incarnation = node->incarnation(),
                                                                                     .shards = shards,
                                                                                     .stats = stats,
                                                                                     .leave = &leave});
  (void)node->Publish("directory", directory);
  node->Subscribe(directory);
  std::printf("%s: listening on %s with %d shards\n", name.c_str(), address->c_str(), shard_count);

  bool ok = true;
  if (peers.empty()) {
    std::printf("%s: ready: the first node of its cluster; others join with --peer=<this host>:%s\n", name.c_str(),
                address->substr(address->rfind(':') + 1).c_str());
  } else {
    JoinRetry retry(name + ": ");
    counter::Discovery found;
    size_t joined = 0, ring = 0;
    do {
      found = counter::Discover(*node, peers, directory, timeout);
      (void)directory.Ask(counter::Learn{.members = found.members}).Wait(timeout);
      std::vector<troupe::Future<uint32_t>> joins;
      for (const KnownMember& m : found.members) {
        if (m.info.node == name) continue;
        joins.push_back(m.directory.Ask(
            counter::Join{.member = counter::MemberInfo{.node = name, .directory = directory}}, timeout));
      }
      for (troupe::Future<uint32_t>& j : joins) {
        absl::Status s = j.Wait(timeout).status();
        if (s.ok()) {
          ++joined;
        } else {
          found.errors.push_back(absl::StrCat("a join failed: ", s.ToString()));
        }
      }
      if (joins.empty()) found.errors.push_back("no member of the cluster found");
    } while (joined == 0 && retry.Again(found.errors));
    for (const std::string& e : found.errors) std::printf("%s: warning: %s\n", name.c_str(), e.c_str());
    for (const KnownMember& m : found.members) ring += m.info.shards.size();
    if (joined == 0) {
      std::printf("%s: could not join any node of --peer: is one running, with the same --secret or TLS CA?\n",
                  name.c_str());
      ok = false;
      leave.store(true, std::memory_order_release);
    } else {
      std::printf("%s: ready: joined a cluster of %zu nodes, %zu shards\n", name.c_str(), found.members.size(), ring);
      if (absl::GetFlag(FLAGS_increments) > 0) {
        ok = counter::RunWorkload(sys, found.members, Workload(*node));
        counter::PrintNodeTable(found.members, timeout, "", {});
        std::printf("%s: workload done; serving until SIGINT or SIGTERM\n", name.c_str());
      }
    }
  }

  const int sig = troupe::examples::WaitForQuit(leave, *node);
  if (sig != 0) {
    std::printf("%s: signal %d: leaving the cluster\n", name.c_str(), sig);
    (void)directory.Ask(counter::Leave{}).Wait(timeout);  // quiet: no more membership lines
  } else {
    std::printf("%s: leaving the cluster\n", name.c_str());
  }
  node->Shutdown();  // leaves: the members hear NodeLeft after what is queued
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
  JoinRetry retry("");
  counter::Discovery found;
  do {
    found = counter::Discover(node, peers, {}, timeout);
  } while (found.members.empty() && retry.Again(found.errors));
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

// The text after "listening on " up to the next space.
std::string AddressIn(const std::string& line) {
  const std::string marker = "listening on ";
  const size_t from = line.find(marker) + marker.size();
  return line.substr(from, line.find(' ', from) - from);
}

// No --listen, no --peer: a local cluster of node processes on loopback.
int RunLocalCluster(const NodeAuth& auth) {
  const std::string& secret = auth.cluster_secret;
  const int count = absl::GetFlag(FLAGS_local_nodes);
  const int shard_count = absl::GetFlag(FLAGS_shards);
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  if (count < 1) {
    std::fprintf(stderr, "--local_nodes must be at least 1\n");
    return 2;
  }
  absl::StatusOr<std::string> self = SelfPath();
  if (!self.ok()) {
    std::fprintf(stderr, "%s\n", self.status().ToString().c_str());
    return 1;
  }
  std::printf("counter_service: a local cluster of %d node processes on 127.0.0.1, %d shards each\n", count,
              shard_count);

  // Started one after another: each joins through the first, which knows
  // all that joined before it.
  std::vector<std::unique_ptr<troupe::examples::ChildProcess>> nodes;
  std::vector<std::string> addresses;
  absl::flat_hash_map<std::string, std::string> pids;
  bool ok = true;
  for (int i = 1; i <= count && ok; ++i) {
    const std::string name = absl::StrCat("node-", i);
    std::vector<std::string> argv = {*self,
                                     "--listen=127.0.0.1:0",
                                     "--name=" + name,
                                     absl::StrCat("--shards=", shard_count),
                                     "--secret=" + secret,
                                     "--increments=0",
                                     absl::StrCat("--workers=", absl::GetFlag(FLAGS_workers)),
                                     absl::StrCat("--timeout=", absl::FormatDuration(timeout)),
                                     "--log_level=" + absl::GetFlag(FLAGS_log_level)};
    if (!addresses.empty()) argv.push_back("--peer=" + addresses.front());
    absl::StatusOr<std::unique_ptr<troupe::examples::ChildProcess>> child =
        troupe::examples::ChildProcess::Start(name, argv, absl::GetFlag(FLAGS_verbose));
    if (!child.ok()) {
      std::printf("cannot start %s: %s\n", name.c_str(), child.status().ToString().c_str());
      ok = false;
      break;
    }
    nodes.push_back(*std::move(child));
    const absl::Time deadline = absl::Now() + timeout;
    absl::StatusOr<std::string> listening = nodes.back()->WaitForLine(name + ": listening on ", deadline);
    absl::StatusOr<std::string> ready =
        listening.ok() ? nodes.back()->WaitForLine(name + ": ready", deadline) : listening.status();
    if (!ready.ok()) {
      std::printf("%s did not start: %s\n", name.c_str(), ready.status().ToString().c_str());
      for (const std::string& line : nodes.back()->Tail()) std::printf("  [%s] %s\n", name.c_str(), line.c_str());
      ok = false;
      break;
    }
    addresses.push_back(AddressIn(*listening));
    pids[name] = absl::StrCat(nodes.back()->pid());
    std::printf("  %s: pid %d, listening on %s\n", name.c_str(), nodes.back()->pid(), addresses.back().c_str());
  }

  if (ok) {
    // This process joins as a client: a node that neither listens nor hosts
    // shards, with a directory that reports members that fail.
    troupe::ActorSystem sys(SystemOptions("driver"));
    troupe::Node node(sys, Options(absl::StrCat("driver-", getpid()), auth));
    if (!troupe::examples::Ready(node)) return 1;
    counter::DirectoryOptions watching;
    watching.node = node.name();
    watching.incarnation = node.incarnation();
    watching.announce_joins = false;
    troupe::Ref<Directory> watcher = sys.Spawn<Directory>(std::move(watching));
    node.Subscribe(watcher);
    counter::Discovery found = counter::Discover(node, addresses, {}, timeout);
    for (const std::string& e : found.errors) std::printf("warning: %s\n", e.c_str());
    size_t ring = 0;
    for (const KnownMember& m : found.members) ring += m.info.shards.size();
    std::printf("cluster: %zu nodes, %zu shards\n", found.members.size(), ring);
    (void)watcher.Ask(counter::Learn{.members = found.members}).Wait(timeout);
    if (found.members.size() != nodes.size()) ok = false;
    if (ok && absl::GetFlag(FLAGS_increments) > 0) ok = counter::RunWorkload(sys, found.members, Workload(node));
    counter::PrintNodeTable(found.members, timeout, "pid", pids);

    // Every node leaves: the others hear NodeLeft.
    watcher.Tell(counter::Quiet{});
    std::vector<troupe::Future<std::string>> leaves;
    for (const KnownMember& m : found.members) leaves.push_back(m.directory.Ask(counter::Leave{}, timeout));
    for (troupe::Future<std::string>& f : leaves) (void)f.Wait(timeout);
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
  if (absl::GetFlag(FLAGS_shards) < 0 || absl::GetFlag(FLAGS_keys) <= 0 || absl::GetFlag(FLAGS_increments) < 0 ||
      absl::GetFlag(FLAGS_clients) <= 0) {
    std::fprintf(stderr, "--shards, --increments must not be negative; --keys, --clients must be positive\n");
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
  if (!listen.empty()) return RunNode(listen, peers, *auth);
  if (!peers.empty()) return RunClientOnly(peers, *auth);
  return RunLocalCluster(*auth);
}
