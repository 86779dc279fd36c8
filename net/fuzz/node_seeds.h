// The seed corpus of the node fuzzer (node_target.h), made from the
// schemas: "auth-..." inputs are traffic after the harness's handshake (a
// tell, asks of each kind of answer, lookups, spawns, watches, stops, a
// leave, replies and downs for nothing, and frames that must close the
// connection); "raw-..." inputs are what a connector without the secret
// can send (hellos the checks refuse, a wrong proof, frames out of order,
// an oversized handshake frame).
//
// `make_seeds` writes them into net/fuzz/node_corpus/ (docs/fuzzing.md);
// the node corpus test also runs them from memory and checks the outcome
// each promises.
//
// Who may call what: any thread.

#ifndef TROUPE_NET_FUZZ_NODE_SEEDS_H_
#define TROUPE_NET_FUZZ_NODE_SEEDS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace troupe::net::fuzz {

struct NodeSeed {
  std::string name;
  // The mode byte, then length-prefixed frames.
  std::vector<uint8_t> bytes;
  // Whether the connection ends closed by the node or for an oversized
  // length (not by the end of the input).
  bool closes = false;
  // Reply frames the node sends for the input's asks (all synchronous or
  // from actors that always answer), and down frames sent at once.
  size_t replies = 0;
  size_t downs = 0;
};

std::vector<NodeSeed> MakeNodeSeeds();

}  // namespace troupe::net::fuzz

#endif  // TROUPE_NET_FUZZ_NODE_SEEDS_H_
