// The node handshake: protocol version, node identity, and proof of the
// shared cluster secret by HMAC challenge-response. The secret itself never
// crosses the wire.
//
//   connector                                   acceptor
//   Hello{version, name, incarnation, address, challenge_c}  ->
//        <-  Hello{version, name, incarnation, address, challenge_a,
//                  proof = Mac("accept", challenge_c, acceptor name+incarnation)}
//   Proof{Mac("connect", challenge_a, connector name+incarnation)}  ->
//
// Either side that finds a wrong version, a wrong proof or a bad hello sends
// `refused` with the reason, logs it and closes. The roles in the MAC keep a
// proof from being reflected back; the fresh challenges keep it from being
// replayed. See docs/protocol.md for the threat model (no encryption yet).
//
// Who may call what: pure functions, any thread.

#ifndef TROUPE_NET_HANDSHAKE_H_
#define TROUPE_NET_HANDSHAKE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace troupe::net {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr size_t kChallengeBytes = 32;
inline constexpr size_t kMacBytes = 32;

enum class Role { kAccept, kConnect };

// 32 bytes from the operating system's random source.
std::string NewChallenge();

// HMAC-SHA256(secret, role || challenge || node || incarnation).
std::string HandshakeMac(std::string_view secret, Role role, std::string_view challenge, std::string_view node,
                         uint64_t incarnation);

// Constant-time check of `proof` against the expected MAC. PermissionDenied
// ("wrong cluster secret") when it does not match.
absl::Status CheckProof(std::string_view secret, Role role, std::string_view challenge, std::string_view node,
                        uint64_t incarnation, std::string_view proof);

// Checks a peer's hello fields; InvalidArgument / FailedPrecondition naming
// what is wrong.
absl::Status CheckHello(uint32_t version, std::string_view node, std::string_view challenge);

}  // namespace troupe::net

#endif  // TROUPE_NET_HANDSHAKE_H_
