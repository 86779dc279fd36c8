// troupe's side of the remote workloads (bench/remote.h): two ActorSystems
// of one process, each with a Node (net/node.h), talking over loopback TCP.
// The server node listens on 127.0.0.1 port 0 and publishes the echo or
// counting actor; the client node looks it up and uses the Ref it gets.
//
//   remote-rtt: the calling thread (outside actors, as a client program
//     would) asks Echo a Payload and waits for the echo, one at a time.
//   remote-oneway: the calling thread tells the Counter every message, then
//     asks it Done; the reply carries the count and the sequence sum. Every
//     kWindow messages the sender asks a Done first — a round trip of flow
//     control that keeps the bytes in flight bounded, as a real sender
//     respecting back-pressure must (the node refuses sends past its
//     outbound bound rather than buffering without limit).
//
// The TLS variants (troupe-tls) run the same code with both nodes on TLS
// 1.3: a CA made in memory when the workload starts (TestCa), and one
// certificate from it for each node, naming the node ("server", "client").
// Both keep the cluster secret, so TLS is the only difference.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "actors/actor.h"
#include "actors/actor_system.h"
#include "bench/remote.troupe.h"
#include "bench/remote.h"
#include "bench/workload.h"
#include "net/io/tls_test_pki.h"
#include "net/node.h"

namespace troupe::bench {

struct EchoActor : Actor<EchoActor> {
  using Remote = Accepts<wire::Payload>;
  wire::Payload On(const wire::Payload& p) { return p; }
};

struct CountActor : Actor<CountActor> {
  using Remote = Accepts<wire::Payload, wire::Done>;
  void On(const wire::Payload& p) {
    ++count;
    sum += static_cast<uint64_t>(p.seq);
  }
  wire::DoneStats On(const wire::Done&) { return {.count = count, .sum = sum}; }
  int64_t count = 0;
  uint64_t sum = 0;
};

namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kWindow = 200000;
constexpr char kSecret[] = "bench-remote";

// A node's options; with `ca`, TLS with a certificate of its own from it.
NodeOptions Options(const char* name, const net::testing::TestCa* ca) {
  NodeOptions o;
  o.name = name;
  o.cluster_secret = kSecret;
  if (ca != nullptr) {
    const net::testing::PemCredentials pem = ca->IssueFor(name);
    o.tls.certificate_chain_pem = pem.certificate_chain;
    o.tls.private_key_pem = pem.private_key;
    o.tls.trusted_ca_pem = ca->certificate_pem();
  }
  return o;
}

// Two systems and their nodes; `server` publishes an A as "target". With
// `tls`, both nodes' links are TLS with certificates from one CA.
template <class A>
struct Pair {
  explicit Pair(bool tls)
      : server_sys({.workers = 1, .name = "server"}), client_sys({.workers = 1, .name = "client"}) {
    std::optional<net::testing::TestCa> ca;
    if (tls) ca.emplace("troupe bench CA");
    const net::testing::TestCa* const ca_ptr = ca.has_value() ? &*ca : nullptr;
    server = std::make_unique<Node>(server_sys, Options("server", ca_ptr));
    client = std::make_unique<Node>(client_sys, Options("client", ca_ptr));
  }
  absl::StatusOr<Ref<A>> Connect() {
    if (absl::Status s = server->ready(); !s.ok()) return s;
    if (absl::Status s = client->ready(); !s.ok()) return s;
    absl::StatusOr<std::string> address = server->Listen("127.0.0.1:0");
    if (!address.ok()) return address.status();
    if (absl::Status s = server->Publish("target", server_sys.Spawn<A>()); !s.ok()) return s;
    return client->Lookup<A>(*address, "target").Wait(kRemoteIoTimeout);
  }
  ActorSystem server_sys, client_sys;
  std::unique_ptr<Node> server, client;
};

absl::StatusOr<std::vector<Measurement>> RemoteRtt(const Sizes& sizes, bool tls) {
  Pair<EchoActor> pair(tls);
  absl::StatusOr<Ref<EchoActor>> echo = pair.Connect();
  if (!echo.ok()) return echo.status();
  std::vector<double> micros;
  micros.reserve(static_cast<size_t>(sizes.remote_rtt_samples));
  const int64_t total = kRemoteRttWarmup + sizes.remote_rtt_samples;
  for (int64_t seq = 0; seq < total; ++seq) {
    const auto start = Clock::now();
    absl::StatusOr<wire::Payload> reply =
        echo->Ask(wire::Payload{.seq = seq, .value = RemotePayloadValue(seq)}, kRemoteIoTimeout).Wait();
    const auto end = Clock::now();
    if (!reply.ok()) return reply.status();
    if (reply->seq != seq || reply->value != RemotePayloadValue(seq)) {
      return absl::InternalError(absl::StrCat("remote-rtt: reply ", reply->seq, " to request ", seq));
    }
    if (seq >= kRemoteRttWarmup) micros.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  return RttMeasurements(micros);
}

absl::StatusOr<std::vector<Measurement>> RemoteOneway(const Sizes& sizes, bool tls) {
  Pair<CountActor> pair(tls);
  absl::StatusOr<Ref<CountActor>> counter = pair.Connect();
  if (!counter.ok()) return counter.status();
  const int64_t n = sizes.remote_oneway_messages;
  const auto start = Clock::now();
  for (int64_t seq = 0; seq < n; ++seq) {
    if (seq > 0 && seq % kWindow == 0) {
      if (absl::Status s = counter->Ask(wire::Done{}, kRemoteIoTimeout).Wait().status(); !s.ok()) return s;
    }
    if (absl::Status s = counter->TryTell(wire::Payload{.seq = seq, .value = RemotePayloadValue(seq)}); !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<wire::DoneStats> done = counter->Ask(wire::Done{}, kRemoteIoTimeout).Wait();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!done.ok()) return done.status();
  if (absl::Status s = CheckOneway(n, done->count, done->sum); !s.ok()) return s;
  return OnewayMeasurements(n, seconds);
}

}  // namespace

absl::StatusOr<std::vector<Measurement>> TroupeRemoteRtt(const Sizes& sizes) { return RemoteRtt(sizes, false); }
absl::StatusOr<std::vector<Measurement>> TroupeRemoteOneway(const Sizes& sizes) { return RemoteOneway(sizes, false); }
absl::StatusOr<std::vector<Measurement>> TroupeRemoteRttTls(const Sizes& sizes) { return RemoteRtt(sizes, true); }
absl::StatusOr<std::vector<Measurement>> TroupeRemoteOnewayTls(const Sizes& sizes) {
  return RemoteOneway(sizes, true);
}

}  // namespace troupe::bench
