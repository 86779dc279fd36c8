// What a node does with bytes from a socket, as one function the fuzzer and
// the corpus test call: split the bytes into frames with a FrameDecoder,
// read each payload as a Cap'n Proto Frame with the node's reader limits,
// and read every field of whichever variant it is.
//
// RunFrameStream feeds `input` to a fresh FrameDecoder in chunks chosen by
// `split` (see Split), exactly as the reactor feeds a connection's reads.
// Each complete payload goes through net::ReadFrame with NodeReaderOptions
// and then WalkFrame, which touches every field of every variant (texts and
// data byte by byte, so AddressSanitizer sees every read); an AnyPointer
// (an envelope's or reply's payload, a spawn's args) is tried as a struct
// (recursively, a few levels), as a list of text and as an ActorAddress,
// each try on its own, as a typed decoder of the receiving actor would. The
// first error stops the stream, as it closes the node's connection.
//
// The result records what came out (how many frames, a digest of each
// payload, which kinds, the final status), so the fuzzer can check that
// every way of splitting the same bytes gives the same frames.
//
// Who may call what: pure functions, any thread.

#ifndef TROUPE_NET_FUZZ_FRAME_TARGET_H_
#define TROUPE_NET_FUZZ_FRAME_TARGET_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "capnp/message.h"
#include "net/wire/envelope.capnp.h"

namespace troupe::net::fuzz {

// The decoder's limit in the fuzzer: small, so oversized lengths are found
// quickly and one input never allocates much. The node's default is 16 MiB
// (NodeOptions::max_frame_bytes); the code path is the same.
inline constexpr size_t kFuzzMaxPayloadBytes = size_t{1} << 20;

// The node's Cap'n Proto limits for a payload of `payload_bytes`: the same
// formula as NodeState::reader_options (net/node.cc) with the default
// NodeOptions::nesting_limit (64). Kept in step by hand; the node is not
// linked into the fuzzer, which needs none of its threads.
capnp::ReaderOptions NodeReaderOptions(size_t payload_bytes);

// How RunFrameStream cuts the input into Feed calls.
enum class Split {
  // One Feed, the first payload 8-byte aligned in it: the decoder's no-copy
  // path.
  kWholeAligned,
  // One Feed, the first payload misaligned: the copying path.
  kWholeMisaligned,
  // One byte per Feed.
  kBytes,
  // Chunk sizes and alignments from a generator seeded by the input's hash.
  kChunks,
};
inline constexpr Split kAllSplits[] = {Split::kWholeAligned, Split::kWholeMisaligned, Split::kBytes, Split::kChunks};

struct StreamResult {
  // The first error (from the decoder or from reading a frame), or OK.
  absl::Status status;
  // Per payload the decoder yielded, in order: its size and a hash of its
  // bytes, and the status of reading it (only the last may be non-OK).
  std::vector<uint64_t> payload_sizes;
  std::vector<uint64_t> payload_hashes;
  std::vector<absl::Status> frame_statuses;
  // A bit per wire::Frame::Which read without error (1 << which).
  uint32_t kinds = 0;
  // Whether the decoder held part of a frame when the input ended.
  bool mid_frame = false;
  // A digest of everything WalkFrame read, so nothing is optimized away.
  uint64_t digest = 0;
};

// Feeds `input` to a fresh FrameDecoder(kFuzzMaxPayloadBytes) as `split`
// says and reads every payload. With `replay` (an earlier run over the same
// input), payloads are not read again: frame i gets replay's status i, so
// only the decoder runs. Aborts if the decoder breaks a promise (a payload
// misaligned or over the limit, a wrong frame count).
StreamResult RunFrameStream(absl::Span<const uint8_t> input, Split split, const StreamResult* replay = nullptr);

// Reads every field of `frame`, mixing what it reads into `digest`. Cap'n
// Proto errors in the frame's own fields propagate (kj::Exception; ReadFrame
// turns them into a status); errors inside AnyPointer payloads are caught
// per try. An unknown union member is InvalidArgument.
absl::Status WalkFrame(wire::Frame::Reader frame, uint64_t& digest);

// FNV-1a of `bytes`.
uint64_t HashBytes(absl::Span<const uint8_t> bytes, uint64_t seed = 0xcbf29ce484222325u);

}  // namespace troupe::net::fuzz

#endif  // TROUPE_NET_FUZZ_FRAME_TARGET_H_
