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
// remote-oneway-peers (a cost curve of --scale): one receiving node in
// this process and Sizes::oneway_peers sender processes (this binary again,
// with --oneway_peer_sender), each a node of its own sending
// Sizes::oneway_peer_messages to a counter of its own on the receiver, with
// the same flow control as remote-oneway. The senders connect first and
// start together; the time runs from the first sender's first message to
// the last sender's done, on the machine's monotonic clock.
//
// The TLS variants (troupe-tls) run the same code with both nodes on TLS
// 1.3: a CA made in memory when the workload starts (TestCa), and one
// certificate from it for each node, naming the node ("server", "client").
// Both keep the cluster secret, so TLS is the only difference.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
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

// Sends `n` Payloads (sequence numbers 0..n-1) to `counter`, asking a Done
// every kWindow messages and after the last; checks the last Done's count
// and sum.
absl::Status SendOneway(const Ref<CountActor>& counter, int64_t n) {
  for (int64_t seq = 0; seq < n; ++seq) {
    if (seq > 0 && seq % kWindow == 0) {
      if (absl::Status s = counter.Ask(wire::Done{}, kRemoteIoTimeout).Wait().status(); !s.ok()) return s;
    }
    if (absl::Status s = counter.TryTell(wire::Payload{.seq = seq, .value = RemotePayloadValue(seq)}); !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<wire::DoneStats> done = counter.Ask(wire::Done{}, kRemoteIoTimeout).Wait();
  if (!done.ok()) return done.status();
  return CheckOneway(n, done->count, done->sum);
}

absl::StatusOr<std::vector<Measurement>> RemoteOneway(const Sizes& sizes, bool tls) {
  Pair<CountActor> pair(tls);
  absl::StatusOr<Ref<CountActor>> counter = pair.Connect();
  if (!counter.ok()) return counter.status();
  const int64_t n = sizes.remote_oneway_messages;
  const auto start = Clock::now();
  absl::Status sent = SendOneway(*counter, n);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!sent.ok()) return sent;
  return OnewayMeasurements(n, seconds);
}

int64_t MonotonicNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// A sender process of remote-oneway-peers, with a pipe to its stdin and one
// from its stdout.
struct PeerProcess {
  pid_t pid = -1;
  int to_child = -1;
  int from_child = -1;
  std::string pending;  // read, not yet a whole line

  // The next line the sender printed, without its newline; an error after
  // `deadline` or when the sender closed its stdout.
  absl::StatusOr<std::string> ReadLine(absl::Time deadline) {
    for (;;) {
      if (const size_t end = pending.find('\n'); end != std::string::npos) {
        std::string line = pending.substr(0, end);
        pending.erase(0, end + 1);
        return line;
      }
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("a sender did not answer in time");
      pollfd p{from_child, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
      char buf[256];
      const ssize_t got = read(from_child, buf, sizeof(buf));
      if (got <= 0) return absl::UnavailableError("a sender exited before it finished");
      pending.append(buf, static_cast<size_t>(got));
    }
  }
};

absl::StatusOr<PeerProcess> StartPeer(const std::string& self, const std::string& target, int64_t messages) {
  int in_fds[2], out_fds[2];
  if (pipe2(in_fds, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  if (pipe2(out_fds, O_CLOEXEC) != 0) {
    close(in_fds[0]);
    close(in_fds[1]);
    return absl::InternalError("pipe failed");
  }
  std::vector<std::string> args = {self, "--oneway_peer_sender=" + target,
                                   absl::StrCat("--oneway_peer_messages=", messages)};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_fds[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_fds[1], STDOUT_FILENO);
  PeerProcess peer;
  const int spawned = posix_spawn(&peer.pid, self.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in_fds[0]);
  close(out_fds[1]);
  if (spawned != 0) {
    close(in_fds[1]);
    close(out_fds[0]);
    return absl::InternalError(absl::StrCat("could not start the sender ", self));
  }
  peer.to_child = in_fds[1];
  peer.from_child = out_fds[0];
  return peer;
}

// Waits for every sender that was started; kills those still running when
// `kill_first`. Returns the first sender's failure, if any.
absl::Status ReapPeers(std::vector<PeerProcess>& peers, bool kill_first) {
  absl::Status result;
  for (PeerProcess& peer : peers) {
    if (peer.to_child >= 0) close(peer.to_child);
    if (peer.from_child >= 0) close(peer.from_child);
    if (kill_first) kill(peer.pid, SIGKILL);
    int status = 0;
    waitpid(peer.pid, &status, 0);
    if (!kill_first && result.ok() && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
      result = absl::InternalError(absl::StrCat("remote-oneway-peers: sender process ", peer.pid, " failed"));
    }
  }
  return result;
}

absl::StatusOr<std::vector<Measurement>> OnewayPeers(const Sizes& sizes, std::vector<PeerProcess>& peers) {
  const int count = sizes.oneway_peers;
  const int64_t per_peer = sizes.oneway_peer_messages;
  if (count < 1 || per_peer < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--oneway_peers and --oneway_peer_messages must be positive, got ", count, " and ", per_peer));
  }
  const std::string self = SelfExecutable();
  if (self.empty()) return absl::InternalError("cannot find my own executable");

  ActorSystem sys({.workers = sizes.workers, .name = "receiver"});
  Node node(sys, Options("receiver", nullptr));
  if (absl::Status s = node.ready(); !s.ok()) return s;
  absl::StatusOr<std::string> address = node.Listen("127.0.0.1:0");
  if (!address.ok()) return address.status();
  for (int i = 0; i < count; ++i) {
    const std::string name = absl::StrCat("counter-", i);
    if (absl::Status s = node.Publish(name, sys.Spawn<CountActor>()); !s.ok()) return s;
    absl::StatusOr<PeerProcess> peer = StartPeer(self, absl::StrCat(*address, "/", name), per_peer);
    if (!peer.ok()) return peer.status();
    peers.push_back(std::move(*peer));
  }
  const absl::Time deadline = absl::Now() + kRemoteIoTimeout;
  for (PeerProcess& peer : peers) {
    absl::StatusOr<std::string> line = peer.ReadLine(deadline);
    if (!line.ok()) return line.status();
    if (*line != "ready") return absl::InternalError(absl::StrCat("remote-oneway-peers: a sender said '", *line, "'"));
  }
  for (PeerProcess& peer : peers) {
    if (write(peer.to_child, "go\n", 3) != 3) return absl::InternalError("remote-oneway-peers: cannot start a sender");
  }
  int64_t first_start = INT64_MAX, last_end = 0;
  const absl::Time done_deadline = absl::Now() + kRemoteIoTimeout;
  for (PeerProcess& peer : peers) {
    absl::StatusOr<std::string> line = peer.ReadLine(done_deadline);
    if (!line.ok()) return line.status();
    std::vector<std::string> f = absl::StrSplit(*line, ' ');
    int64_t start = 0, end = 0;
    if (f.size() != 3 || f[0] != "done" || !absl::SimpleAtoi(f[1], &start) || !absl::SimpleAtoi(f[2], &end)) {
      return absl::InternalError(absl::StrCat("remote-oneway-peers: a sender said '", *line, "'"));
    }
    first_start = std::min(first_start, start);
    last_end = std::max(last_end, end);
  }
  const double seconds = static_cast<double>(last_end - first_start) / 1e9;
  return OnewayMeasurements(per_peer * count, seconds);
}

}  // namespace

absl::StatusOr<std::vector<Measurement>> TroupeRemoteOnewayPeers(const Sizes& sizes) {
  std::vector<PeerProcess> peers;
  absl::StatusOr<std::vector<Measurement>> result = OnewayPeers(sizes, peers);
  absl::Status reaped = ReapPeers(peers, !result.ok());
  if (result.ok() && !reaped.ok()) return reaped;
  return result;
}

int RunOnewayPeerSender(const std::string& target, int64_t messages) {
  const size_t slash = target.rfind('/');
  if (slash == std::string::npos || messages < 1) {
    std::fprintf(stderr, "--oneway_peer_sender wants host:port/name and positive --oneway_peer_messages\n");
    return 2;
  }
  const std::string name = target.substr(slash + 1);
  ActorSystem sys({.workers = 1, .name = "sender"});
  Node node(sys, Options(absl::StrCat("sender-", name).c_str(), nullptr));
  absl::StatusOr<Ref<CountActor>> counter =
      node.ready().ok() ? node.Lookup<CountActor>(target.substr(0, slash), name).Wait(kRemoteIoTimeout)
                        : absl::StatusOr<Ref<CountActor>>(node.ready());
  if (!counter.ok()) {
    std::fprintf(stderr, "sender %s: %s\n", name.c_str(), counter.status().ToString().c_str());
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  std::string go;
  if (!std::getline(std::cin, go) || go != "go") return 1;
  const int64_t start = MonotonicNanos();
  absl::Status sent = SendOneway(*counter, messages);
  const int64_t end = MonotonicNanos();
  if (!sent.ok()) {
    std::fprintf(stderr, "sender %s: %s\n", name.c_str(), sent.ToString().c_str());
    return 1;
  }
  std::printf("done %lld %lld\n", static_cast<long long>(start), static_cast<long long>(end));
  std::fflush(stdout);
  return 0;
}

absl::StatusOr<std::vector<Measurement>> TroupeRemoteRtt(const Sizes& sizes) { return RemoteRtt(sizes, false); }
absl::StatusOr<std::vector<Measurement>> TroupeRemoteOneway(const Sizes& sizes) { return RemoteOneway(sizes, false); }
absl::StatusOr<std::vector<Measurement>> TroupeRemoteRttTls(const Sizes& sizes) { return RemoteRtt(sizes, true); }
absl::StatusOr<std::vector<Measurement>> TroupeRemoteOnewayTls(const Sizes& sizes) {
  return RemoteOneway(sizes, true);
}

}  // namespace troupe::bench
