// What a node does with the bytes of one accepted connection, as one
// function the node fuzzer and its corpus test call: the node's real Link
// (the handshake, net/link.cc) and dispatch (net/dispatch.cc), on a
// connection that is not a socket.
//
// One ActorSystem and one internal::NodeState ("fuzz-node") live for the
// whole process (made on the first call, never destroyed: libFuzzer calls
// the entry point millions of times and exits without returning). Each
// input is one connection the node accepted (NodeState::AcceptLink), from
// a source address of its own. A FakeConnection stands in for the reactor's:
// it captures what the node sends, records Close and the frame limit. The
// harness cuts the input into frames with a FrameDecoder at the limit the
// connection has at that moment, as the reactor does, hands each to the
// Link's OnFrame, and ends with OnClosed.
//
// The input's first byte chooses the mode (bit 0):
//   0  raw: the frames go to the Link from the start — a connector that
//      does not know the cluster secret (hello, proof, anything);
//   1  authenticated: the harness first plays a correct connector (protocol
//      2 hello with this node's heartbeat settings, the node's hello read
//      back, the proof over the transcript, the node's proof checked), then
//      the frames go to NodeState::HandleFrame as traffic. In this mode each
//      8-byte-aligned word of a payload equal to a token (kTokenBase | k) is
//      replaced first: k = 0 by the node's incarnation, k = 1.. by the id of
//      test actor k (kTestActors), so inputs stay valid across processes,
//      whose incarnations and actor ids differ.
//
// Test actors (published under their names, exported at startup, restarted
// once stopped): "counter" (a Counter, accepting every message of
// node_fuzz_messages.capnp), "mute" (accepts nothing from other nodes),
// "tiny" (a Counter-like actor with a mailbox of 2). Spawnable: Counter
// (args CounterArgs) and Mute (no args); what an input spawns is stopped
// after it.
//
// Invariants, checked after each frame and at the end of each input; a
// violation prints what broke and aborts (a finding). See docs/fuzzing.md.
//
// Who may call what: one thread at a time (it plays the connection's I/O
// thread); the node's worker and timer threads run alongside.

#ifndef TROUPE_NET_FUZZ_NODE_TARGET_H_
#define TROUPE_NET_FUZZ_NODE_TARGET_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/types/span.h"

namespace troupe::net::fuzz {

inline constexpr uint8_t kModeRaw = 0;
inline constexpr uint8_t kModeAuthenticated = 1;

// Word tokens of authenticated inputs (see above).
inline constexpr uint64_t kTokenBase = 0x7472'6f75'7065'0000u;  // "troupe" then the selector
inline constexpr uint64_t kTokenIncarnation = kTokenBase | 0;
inline constexpr uint64_t TokenActor(size_t k) { return kTokenBase | (k + 1); }

// The node's name, and the published test actors in token order.
inline constexpr std::string_view kNodeName = "fuzz-node";
inline constexpr std::string_view kTestActors[] = {"counter", "mute", "tiny"};
// TypeName of the spawnable actors (what a spawn frame names).
inline constexpr std::string_view kSpawnCounter = "troupe::net::fuzz::Counter";
inline constexpr std::string_view kSpawnMute = "troupe::net::fuzz::Mute";

// What one input did, for the corpus test.
struct NodeRunResult {
  bool authenticated = false;  // mode 1 and the harness's handshake completed
  size_t frames_fed = 0;       // OnFrame calls with the input's frames
  bool closed_by_node = false; // the node (not the harness) closed the connection
  bool oversized = false;      // a length over the frame limit ended it (the reactor closes)
  size_t replies = 0;          // reply frames the node sent for the input's frames
  size_t downs = 0;            // down frames
};

// Runs one input (see above); aborts on a broken invariant.
NodeRunResult RunNodeInput(absl::Span<const uint8_t> input);

}  // namespace troupe::net::fuzz

#endif  // TROUPE_NET_FUZZ_NODE_TARGET_H_
