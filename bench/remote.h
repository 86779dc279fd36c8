// The suite's remote workloads: two endpoints talking over a loopback TCP
// connection, measured on four systems.
//
//   remote-rtt     A requester sends a small request (a 16-byte payload: a
//                  sequence number and a value) and waits for its reply (the
//                  same 16 bytes back) before sending the next:
//                  kRemoteRttWarmup round trips, then
//                  Sizes::remote_rtt_samples timed ones, each timed on its
//                  own with a steady clock. Every reply must match its
//                  request. Metrics: RttMeasurements (p50, p99 in us).
//   remote-oneway  A sender sends Sizes::remote_oneway_messages one-way
//                  messages (16-byte payload: sequence numbers 0..n-1 and a
//                  value) as fast as it can; the receiver counts them and,
//                  after the last, answers "done" with its count and the sum
//                  of the sequence numbers. Timed from the first send to the
//                  done's arrival; CheckOneway checks the count and the sum.
//                  Metrics: OnewayMeasurements (throughput in msg/s, time).
//
// The systems, each in the usual fresh child process of the suite:
//   floor   bench/remote_floor.cc: blocking sockets with TCP_NODELAY, a
//           4-byte length prefix and the payload, two threads of one
//           process, each pinned to a core of its own. What a framed
//           request/response (and a framed stream) costs on this machine
//           with nothing above the sockets; no actors.
//   caf     bench/caf_remote.cc: CAF 0.17's io module (the middleman and
//           BASP), two actor systems of one process: one publishes the
//           echo or counting actor, the other reaches it via remote_actor.
//   troupe  bench/troupe_remote.cc, with troupe::Node (net/node.h) in
//           shared-secret mode: plaintext links.
//   troupe-tls
//           the same code with both nodes on TLS 1.3 (NodeOptions::tls),
//           each with its own certificate from one CA made in memory when
//           the workload starts (//net/io:tls_test_pki); the cluster secret
//           stays, so TLS is the only difference. The suite prints these
//           figures as the rows remote-rtt-tls and remote-oneway-tls.
//
// Targets (bench/suite.cc, Target, TlsTarget and Baseline): troupe's
// remote-rtt p50 at most 1.3x the floor's; troupe's remote-oneway
// throughput at least 20x CAF's. With TLS, against troupe's plaintext
// figures of the same run: the rtt p50 at most 1.2x, the one-way
// throughput at least 1/1.5 of plaintext's.
//
// Every workload binds 127.0.0.1 port 0 (an ephemeral port) and hands the
// port to its peer inside the process; every wait is bounded by
// kRemoteIoTimeout.

#ifndef TROUPE_BENCH_REMOTE_H_
#define TROUPE_BENCH_REMOTE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bench/workload.h"

namespace troupe::bench {

// Bytes of the payload of one request, reply or one-way message.
inline constexpr int kRemotePayloadBytes = 16;
// Untimed round trips before remote-rtt's samples.
inline constexpr int64_t kRemoteRttWarmup = 1000;
// The longest any single wait of a remote workload may take (a reply, a
// read, the peer's start or exit) before the workload fails.
inline constexpr absl::Duration kRemoteIoTimeout = absl::Seconds(30);

// The value field of request or message `seq`: not a constant, so a reply
// built from the wrong request does not match by accident.
inline int64_t RemotePayloadValue(int64_t seq) {
  return static_cast<int64_t>(static_cast<uint64_t>(seq) * 0x9E3779B97F4A7C15ull);
}

// 0 + 1 + ... + (n - 1): the sum of the sequence numbers of n messages,
// modulo 2^64.
inline uint64_t RemoteSequenceSum(int64_t n) {
  const uint64_t u = static_cast<uint64_t>(n);
  return u % 2 == 0 ? (u / 2) * (u - 1) : u * ((u - 1) / 2);
}

// remote-rtt's metrics from the timed round trips (microseconds); sorts them.
inline std::vector<Measurement> RttMeasurements(std::vector<double>& micros) {
  return {{"p50", Percentile(micros, 0.50), "us", false}, {"p99", Percentile(micros, 0.99), "us", false}};
}

// remote-oneway's metrics: `messages` delivered in `seconds`.
inline std::vector<Measurement> OnewayMeasurements(int64_t messages, double seconds) {
  return {{"throughput", static_cast<double>(messages) / seconds, "msg/s", true}, {"time", seconds, "s", false}};
}

// OK if the receiver's done carried the count and sequence-number sum of
// `messages` messages.
inline absl::Status CheckOneway(int64_t messages, int64_t count, uint64_t sum) {
  if (count == messages && sum == RemoteSequenceSum(messages)) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("remote-oneway: the receiver counted ", count, " messages summing to ", sum,
                                          ", expected ", messages, " summing to ", RemoteSequenceSum(messages)));
}

// The raw TCP floor (bench/remote_floor.cc).
absl::StatusOr<std::vector<Measurement>> FloorRemoteRtt(const Sizes& sizes);
absl::StatusOr<std::vector<Measurement>> FloorRemoteOneway(const Sizes& sizes);

// CAF 0.17's io module (bench/caf_remote.cc).
absl::StatusOr<std::vector<Measurement>> CafRemoteRtt(const Sizes& sizes);
absl::StatusOr<std::vector<Measurement>> CafRemoteOneway(const Sizes& sizes);

// troupe::Node (bench/troupe_remote.cc): plaintext, and over TLS.
absl::StatusOr<std::vector<Measurement>> TroupeRemoteRtt(const Sizes& sizes);
absl::StatusOr<std::vector<Measurement>> TroupeRemoteOneway(const Sizes& sizes);
absl::StatusOr<std::vector<Measurement>> TroupeRemoteRttTls(const Sizes& sizes);
absl::StatusOr<std::vector<Measurement>> TroupeRemoteOnewayTls(const Sizes& sizes);

// remote-oneway-peers, a cost curve of --scale: Sizes::oneway_peers sender
// processes, each sending Sizes::oneway_peer_messages one-way messages to a
// counter of its own on this process's node. Metrics: OnewayMeasurements
// over all senders' messages.
absl::StatusOr<std::vector<Measurement>> TroupeRemoteOnewayPeers(const Sizes& sizes);
// The body of one sender process (the suite's --oneway_peer_sender): looks
// up `target` ("host:port/name"), prints "ready", waits for "go" on stdin,
// sends `messages`, prints "done <start> <end>" (monotonic nanoseconds).
// Returns the process's exit code.
int RunOnewayPeerSender(const std::string& target, int64_t messages);

}  // namespace troupe::bench

#endif  // TROUPE_BENCH_REMOTE_H_
