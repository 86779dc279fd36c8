// The node handshake (protocol 2): version negotiation, node identity, the
// exchange of the settings both ends must agree on, and mutual proof of the
// cluster key by HMAC over the whole transcript. The key never crosses the
// wire, and nothing derived from it reaches a peer that has not proven
// itself first.
//
//   connector                                        acceptor
//   hello_c {versions min..max, name, incarnation, address,
//            heartbeat interval/timeout, max frame, challenge_c}  ->
//        <-  hello_a {version chosen, name, incarnation, address,
//                     heartbeat interval/timeout, max frame, challenge_a}
//   proof_c = Mac(key, kConnect, transcript)  ->
//        (acceptor checks proof_c; only then:)
//        <-  proof_a = Mac(key, kAccept, transcript)
//
// transcript = SHA-256 of hello_c's frame bytes, then SHA-256 of hello_a's:
// the MACs cover everything both hellos carry (versions offered and chosen,
// both names, incarnations, advertised addresses, heartbeat settings, both
// challenges). The role label keeps a proof from being reflected; the fresh
// challenges keep it from being replayed.
//
// Over TLS (net/io/tls.h) the transcript also covers a value exported from
// the TLS session, equal at the two ends of one TLS connection and unlike
// any other's: a handshake relayed from one TLS connection into another
// fails its proof. Each end also checks that the name in the other's hello
// is one its certificate names (Link), so a member cannot pass for
// another. Without a cluster secret the key is the stretch of the empty
// secret: the proofs then bind the handshake to the channel, and the
// certificates authenticate.
//
// The key: ClusterKey stretches the configured secret with PBKDF2-HMAC-
// SHA256 (OpenSSL), kKeyIterations rounds over a fixed salt, once per Node.
// A recorded handshake therefore costs an attacker that many HMACs per
// guess of the secret. See docs/protocol.md.
//
// Who may call what: pure functions, any thread.

#ifndef TROUPE_NET_HANDSHAKE_H_
#define TROUPE_NET_HANDSHAKE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace troupe::net {

// The protocol versions this build speaks.
inline constexpr uint32_t kMinProtocolVersion = 2;
inline constexpr uint32_t kMaxProtocolVersion = 2;
inline constexpr size_t kChallengeBytes = 32;
inline constexpr size_t kMacBytes = 32;
inline constexpr size_t kKeyBytes = 32;
inline constexpr int kKeyIterations = 100000;
// The largest frame either side accepts before the handshake completes:
// hellos, proofs and refusals are far smaller.
inline constexpr size_t kHandshakeFrameBytes = 4096;

enum class Role { kAccept, kConnect };

// 32 bytes from the operating system's random source.
std::string NewChallenge();

// PBKDF2-HMAC-SHA256(secret, salt "troupe cluster key 2", kKeyIterations),
// kKeyBytes long.
std::string ClusterKey(std::string_view secret);

// SHA-256(hello_c) || SHA-256(hello_a), then, over TLS, SHA-256 of the
// channel binding (the TLS exporter value, TlsPeer::exporter): what both
// proofs cover.
std::string Transcript(std::string_view connector_hello, std::string_view acceptor_hello,
                       std::string_view channel_binding = "");

// HMAC-SHA256(key, role label || transcript).
std::string HandshakeMac(std::string_view key, Role role, std::string_view transcript);

// Constant-time check of `proof`. PermissionDenied ("wrong cluster secret")
// naming `peer` when it does not match.
absl::Status CheckProof(std::string_view key, Role role, std::string_view transcript, std::string_view peer,
                        std::string_view proof);

// The version both speak: the highest in both ranges. A peer of protocol 1
// offers [v, 0]: read as [v, v]. FailedPrecondition naming both ranges if
// they do not meet.
absl::StatusOr<uint32_t> ChooseVersion(uint32_t peer_min, uint32_t peer_max);

// Checks a peer's name and challenge: InvalidArgument naming what is wrong.
// Names are 1 to 255 printable ASCII characters without spaces.
absl::Status CheckHello(std::string_view node, std::string_view challenge);

// FailedPrecondition naming both values unless the peer's heartbeat
// settings equal this node's.
absl::Status CheckHeartbeats(absl::Duration interval, absl::Duration timeout, uint32_t peer_interval_ms,
                             uint32_t peer_timeout_ms);

// Text from a peer made safe for a log line: bytes outside printable ASCII
// become '?', and more than `max_bytes` are cut, with "..." appended.
std::string Sanitize(std::string_view text, size_t max_bytes = 160);

}  // namespace troupe::net

#endif  // TROUPE_NET_HANDSHAKE_H_
