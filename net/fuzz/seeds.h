// The seed corpus of the frame fuzzer, made from the schema: one valid
// stream per frame kind (and a whole handshake-then-traffic stream, and a
// message in many segments); known-bad streams (truncated, oversized
// length, not whole words, garbage, a bad segment table, a pointer out of
// bounds, a far pointer to no segment, an unknown frame kind); and
// well-formed frames with hostile payloads (a pointer cycle, a pointer out
// of bounds, a list amplification).
//
// `make_seeds` writes them into net/fuzz/corpus/ (see docs/fuzzing.md);
// the corpus test also runs them from memory, so the current schema's
// frames are always checked even when the files were written by an older
// one.
//
// Who may call what: any thread.

#ifndef TROUPE_NET_FUZZ_SEEDS_H_
#define TROUPE_NET_FUZZ_SEEDS_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "capnp/message.h"
#include "capnp/serialize.h"
#include "net/wire/envelope.capnp.h"

namespace troupe::net::fuzz {

struct Seed {
  // The file name: "valid-..." for streams a node accepts whole;
  // "hostile-..." for well-formed frames whose AnyPointer payload is
  // malformed (the frame reads, the payload's decoding fails); "bad-..." for
  // streams it refuses or that end inside a frame.
  std::string name;
  // Length-prefixed frames, as on the socket.
  std::vector<uint8_t> bytes;
  // How RunFrameStream ends on these bytes.
  absl::StatusCode expected = absl::StatusCode::kOk;
  // For streams that end inside a frame.
  bool expect_mid_frame = false;
};

std::vector<Seed> MakeSeeds();

// For the seed makers (also node_seeds.cc): frames as on the socket.
using Bytes = std::vector<uint8_t>;

// A 4-byte little-endian length prefix.
inline void AppendPrefix(Bytes& out, uint32_t length) {
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<uint8_t>(length >> shift));
}

// One frame: the prefix, then the message `fill(wire::Frame::Builder)`
// writes, in the standard serialization.
template <class Fill>
Bytes OneFrame(Fill&& fill, uint32_t first_segment_words = capnp::SUGGESTED_FIRST_SEGMENT_WORDS,
               capnp::AllocationStrategy strategy = capnp::SUGGESTED_ALLOCATION_STRATEGY) {
  capnp::MallocMessageBuilder builder(first_segment_words, strategy);
  fill(builder.initRoot<wire::Frame>());
  const kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  const kj::ArrayPtr<const kj::byte> bytes = words.asBytes();
  Bytes out;
  AppendPrefix(out, static_cast<uint32_t>(bytes.size()));
  out.insert(out.end(), bytes.begin(), bytes.end());
  return out;
}

inline Bytes Concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace troupe::net::fuzz

#endif  // TROUPE_NET_FUZZ_SEEDS_H_
