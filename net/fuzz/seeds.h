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
#include <string>
#include <vector>

#include "absl/status/status.h"

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

}  // namespace troupe::net::fuzz

#endif  // TROUPE_NET_FUZZ_SEEDS_H_
