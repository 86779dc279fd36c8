// remote_pingpong: a pinger node asks a ponger node on another process (or
// host) N round trips, one at a time, then sends it M tells; prints round
// trips/s, latency percentiles and whether every tell arrived, in order.
//
//   ./tools/bazel run -c opt //examples:remote_pingpong     # one machine, one process
//
// With neither --listen nor --peer both nodes run in this process, talking
// over loopback on a port the kernel picks. Across two processes or hosts,
// over TLS with certificates from tools/make-certs (each node named as its
// certificate, unless --name says otherwise):
//
//   remote_pingpong --listen=0.0.0.0:7100 --tls_cert=a.pem --tls_key=a.key --tls_ca=ca.pem   # host A: the ponger
//   remote_pingpong --peer=A:7100 --tls_cert=b.pem --tls_key=b.key --tls_ca=ca.pem           # host B: the pinger
//
// or with a shared secret and no encryption (development):
//
//   remote_pingpong --listen=0.0.0.0:7100 --secret=S         # host A: the ponger
//   remote_pingpong --peer=A:7100 --secret=S                 # host B: the pinger
//
// The ponger prints "ponger: node <name> listening on <address>" once it
// accepts connections, and runs until SIGINT or SIGTERM; SIGHUP makes it
// reload its TLS files.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/actor_system.h"
#include "examples/node_cli.h"
#include "examples/remote_pingpong.troupe.h"
#include "net/node.h"

ABSL_FLAG(std::string, listen, "", "run the ponger node, accepting connections on host:port (port 0: any)");
ABSL_FLAG(std::string, peer, "", "run the pinger node against the ponger at host:port");
ABSL_FLAG(std::string, name, "", "this node's name (default: the name in its TLS certificate, or <hostname>-<pid>)");
ABSL_FLAG(int64_t, round_trips, 10000, "asks, one after another");
ABSL_FLAG(int64_t, tells, 10000, "tells after the asks");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(30), "deadline of the lookup and of each ask");
ABSL_FLAG(std::string, log_level, "warn", "what troupe logs on stderr: info shows connections, warn problems only");

namespace pingpong {

struct Ponger : troupe::Actor<Ponger> {
  using Remote = troupe::Accepts<Ping, Tick, CountTicks>;

  int64_t On(const Ping& p) { return p.seq; }
  void On(const Tick& t) {
    Run& run = runs[t.run];
    if (t.seq <= run.last) ++run.out_of_order;
    run.last = t.seq;
    ++run.received;
  }
  Ticks On(const CountTicks& c) {
    const Run& run = runs[c.run];
    return Ticks{.received = run.received, .out_of_order = run.out_of_order};
  }

  struct Run {
    int64_t last = -1;
    int64_t received = 0;
    int64_t out_of_order = 0;
  };
  // One entry per pinger run this ponger has seen: a few dozen bytes each.
  absl::flat_hash_map<uint64_t, Run> runs;
};

}  // namespace pingpong

namespace {

using pingpong::Ponger;

troupe::ActorSystemOptions SystemOptions(const std::string& name, int workers = 0) {
  troupe::ActorSystemOptions o;
  o.workers = workers;
  o.name = name;
  o.logger = troupe::examples::StderrLogger(name, absl::GetFlag(FLAGS_log_level));
  return o;
}

troupe::NodeOptions Options(std::string name, const troupe::examples::NodeAuth& auth) {
  troupe::NodeOptions o;
  o.name = std::move(name);
  troupe::examples::ApplyAuth(auth, o);
  return o;
}

// Listens and publishes a Ponger as "ponger"; returns the address bound.
absl::StatusOr<std::string> StartPonger(troupe::ActorSystem& sys, troupe::Node& node, const std::string& listen) {
  absl::StatusOr<std::string> address = node.Listen(listen);
  if (!address.ok()) return address.status();
  if (absl::Status s = node.Publish("ponger", sys.Spawn<Ponger>()); !s.ok()) return s;
  return address;
}

double Micros(absl::Duration d) { return absl::ToDoubleMicroseconds(d); }

// The latency at quantile q of sorted `v`.
absl::Duration Quantile(const std::vector<absl::Duration>& v, double q) {
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

// Looks up the ponger at `peer` and runs the round trips and the tells.
int RunPinger(troupe::Node& node, const std::string& peer) {
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  const int64_t round_trips = absl::GetFlag(FLAGS_round_trips);
  const int64_t tells = absl::GetFlag(FLAGS_tells);
  const uint64_t run = node.incarnation();  // unique to this start of this node
  absl::StatusOr<troupe::Ref<Ponger>> ponger = node.Lookup<Ponger>(peer, "ponger", timeout).Wait(timeout);
  if (!ponger.ok()) {
    std::fprintf(stderr, "remote_pingpong: cannot find the ponger at %s: %s\n", peer.c_str(),
                 ponger.status().ToString().c_str());
    return 1;
  }

  std::vector<absl::Duration> latencies;
  latencies.reserve(static_cast<size_t>(round_trips));
  const absl::Time start = absl::Now();
  for (int64_t i = 0; i < round_trips; ++i) {
    const absl::Time sent = absl::Now();
    absl::StatusOr<int64_t> echo = ponger->Ask(pingpong::Ping{.seq = i}, timeout).Wait(timeout);
    if (!echo.ok() || *echo != i) {
      std::fprintf(stderr, "remote_pingpong: round trip %lld failed: %s\n", static_cast<long long>(i),
                   echo.ok() ? "wrong reply" : echo.status().ToString().c_str());
      return 1;
    }
    latencies.push_back(absl::Now() - sent);
  }
  const absl::Duration asking = absl::Now() - start;

  // Tells, as fast as the connection takes them. When its outbound buffer
  // is full (ResourceExhausted), an ask round trip waits until the ponger
  // has read everything sent so far, and the tell is sent again.
  const absl::Time tells_start = absl::Now();
  int64_t waits = 0;
  for (int64_t i = 0; i < tells; ++i) {
    absl::Status s = ponger->TryTell(pingpong::Tick{.run = run, .seq = i});
    if (absl::IsResourceExhausted(s) && waits < tells) {
      ++waits;
      absl::Status drained = ponger->Ask(pingpong::CountTicks{.run = run}, timeout).Wait(timeout).status();
      if (drained.ok()) s = ponger->TryTell(pingpong::Tick{.run = run, .seq = i});
    }
    if (!s.ok()) {
      std::fprintf(stderr, "remote_pingpong: tell %lld failed: %s\n", static_cast<long long>(i), s.ToString().c_str());
      return 1;
    }
  }
  // Per sender and receiver, messages arrive in send order: this ask is
  // answered after every tick above.
  absl::StatusOr<pingpong::Ticks> ticks = ponger->Ask(pingpong::CountTicks{.run = run}, timeout).Wait(timeout);
  const absl::Duration telling = absl::Now() - tells_start;
  if (!ticks.ok()) {
    std::fprintf(stderr, "remote_pingpong: counting the tells failed: %s\n", ticks.status().ToString().c_str());
    return 1;
  }
  std::sort(latencies.begin(), latencies.end());
  const double p50 = latencies.empty() ? 0 : Micros(Quantile(latencies, 0.5));
  const double p99 = latencies.empty() ? 0 : Micros(Quantile(latencies, 0.99));
  std::printf("remote_pingpong: %lld round trips in %.3f s: %.0f round trips/s, latency p50 %.0f us, p99 %.0f us\n",
              static_cast<long long>(round_trips), absl::ToDoubleSeconds(asking),
              static_cast<double>(round_trips) / absl::ToDoubleSeconds(asking),
              p50, p99);
  std::printf("remote_pingpong: %lld tells in %.3f s: %.0f tells/s; the ponger received %lld, %lld out of order\n",
              static_cast<long long>(tells), absl::ToDoubleSeconds(telling),
              static_cast<double>(tells) / absl::ToDoubleSeconds(telling), static_cast<long long>(ticks->received),
              static_cast<long long>(ticks->out_of_order));
  if (ticks->received != tells || ticks->out_of_order != 0) {
    std::fprintf(stderr, "remote_pingpong: tells lost or reordered\n");
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  troupe::examples::BlockNodeSignals();
  absl::ParseCommandLine(argc, argv);
  const std::string listen = absl::GetFlag(FLAGS_listen);
  const std::string peer = absl::GetFlag(FLAGS_peer);
  if (absl::GetFlag(FLAGS_round_trips) < 0 || absl::GetFlag(FLAGS_tells) < 0) {
    std::fprintf(stderr, "--round_trips and --tells must not be negative\n");
    return 2;
  }
  if (!listen.empty() && !peer.empty()) {
    std::fprintf(stderr, "give --listen (the ponger) or --peer (the pinger), not both\n");
    return 2;
  }
  if (listen.empty() && peer.empty() && troupe::examples::AnyTlsFlag()) {
    std::fprintf(stderr,
                 "both nodes in one process (no --listen, no --peer) use a shared secret: --tls_cert, --tls_key "
                 "and --tls_ca are one node's, for --listen or --peer\n");
    return 2;
  }
  absl::StatusOr<troupe::examples::NodeAuth> auth = troupe::examples::AuthFromFlags();
  if (!auth.ok()) {
    std::fprintf(stderr, "%s\n", std::string(auth.status().message()).c_str());
    return 2;
  }
  const std::string name = absl::GetFlag(FLAGS_name);

  if (!listen.empty()) {
    troupe::ActorSystem sys(SystemOptions("ponger"));
    troupe::Node node(sys, Options(name, *auth));
    if (!troupe::examples::Ready(node)) return 1;
    absl::StatusOr<std::string> address = StartPonger(sys, node, listen);
    if (!address.ok()) {
      std::fprintf(stderr, "remote_pingpong: cannot listen on %s: %s\n", listen.c_str(),
                   address.status().ToString().c_str());
      return 1;
    }
    std::printf("ponger: node %s listening on %s\n", node.name().c_str(), address->c_str());
    std::fflush(stdout);
    const std::atomic<bool> never{false};
    const int sig = troupe::examples::WaitForQuit(never, node);
    std::printf("ponger: signal %d, shutting down\n", sig);
    return 0;
  }

  if (!peer.empty()) {
    troupe::ActorSystem sys(SystemOptions("pinger"));
    troupe::Node node(sys, Options(name, *auth));
    if (!troupe::examples::Ready(node)) return 1;
    return RunPinger(node, peer);
  }

  // One machine: both nodes in this process, each on its own system.
  troupe::ActorSystem pong_sys(SystemOptions("ponger", 1));
  troupe::Node pong_node(pong_sys, Options(name.empty() ? "ponger" : name + "-ponger", *auth));
  if (!troupe::examples::Ready(pong_node)) return 1;
  absl::StatusOr<std::string> address = StartPonger(pong_sys, pong_node, "127.0.0.1:0");
  if (!address.ok()) {
    std::fprintf(stderr, "remote_pingpong: cannot listen on loopback: %s\n", address.status().ToString().c_str());
    return 1;
  }
  std::printf("ponger: node %s listening on %s\n", pong_node.name().c_str(), address->c_str());
  troupe::ActorSystem ping_sys(SystemOptions("pinger", 1));
  troupe::Node ping_node(ping_sys, Options(name.empty() ? "pinger" : name + "-pinger", *auth));
  if (!troupe::examples::Ready(ping_node)) return 1;
  return RunPinger(ping_node, *address);
}
