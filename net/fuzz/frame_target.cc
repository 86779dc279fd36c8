#include "net/fuzz/frame_target.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

#include "capnp/any.h"
#include "kj/exception.h"
#include "net/frame_codec.h"
#include "net/handshake.h"
#include "net/io/frame.h"
#include "net/wire/troupe.capnp.h"

namespace troupe::net::fuzz {
namespace {

// How deep WalkAny follows struct pointers inside a payload. Cap'n Proto's
// nesting limit (64) bounds the message; this bounds the fuzzer's work per
// level of tries.
constexpr int kMaxPayloadDepth = 6;

// The secret CheckProof is given: any proof in a fuzzed hello is wrong, but
// the check runs over it as the node's does.

void Mix(uint64_t& digest, uint64_t value) { digest = (digest ^ value) * 0x100000001b3u; }

// Byte by byte, so every byte is loaded (and checked by AddressSanitizer).
void MixBytes(uint64_t& digest, const kj::byte* bytes, size_t size) {
  for (size_t i = 0; i < size; ++i) Mix(digest, bytes[i]);
  Mix(digest, size);
}

void MixText(uint64_t& digest, capnp::Text::Reader text) {
  MixBytes(digest, reinterpret_cast<const kj::byte*>(text.begin()), text.size());
  // Cap'n Proto checked the terminator when it made the reader; read it.
  Mix(digest, static_cast<uint8_t>(text.cStr()[text.size()]));
}

void MixData(uint64_t& digest, capnp::Data::Reader data) { MixBytes(digest, data.begin(), data.size()); }

std::string_view View(capnp::Text::Reader text) { return {text.cStr(), text.size()}; }
std::string_view View(capnp::Data::Reader data) {
  return {reinterpret_cast<const char*>(data.begin()), data.size()};
}

// Runs `read`; a kj::Exception (Cap'n Proto refusing the bytes) counts as
// a failed try, mixed into the digest, and is not passed on.
template <class Read>
void Try(uint64_t& digest, Read&& read) {
  const bool failed = kj::runCatchingExceptions(std::forward<Read>(read)) != nullptr;
  Mix(digest, failed ? 0xfa11 : 0x0c);
}

void WalkAny(capnp::AnyPointer::Reader any, int depth, uint64_t& digest);

void WalkStruct(capnp::AnyStruct::Reader s, int depth, uint64_t& digest) {
  const kj::ArrayPtr<const kj::byte> data = s.getDataSection();
  MixBytes(digest, data.begin(), data.size());
  const capnp::List<capnp::AnyPointer>::Reader pointers = s.getPointerSection();
  Mix(digest, pointers.size());
  if (depth >= kMaxPayloadDepth) return;
  for (capnp::AnyPointer::Reader p : pointers) WalkAny(p, depth + 1, digest);
}

void WalkAddress(wire::ActorAddress::Reader address, uint64_t& digest) {
  MixText(digest, address.getNode());
  Mix(digest, address.getIncarnation());
  Mix(digest, address.getActor());
  MixText(digest, address.getAddress());
}

// Tries `any` as each thing a receiving actor's decoder might take it for.
void WalkAny(capnp::AnyPointer::Reader any, int depth, uint64_t& digest) {
  Try(digest, [&] {
    Mix(digest, any.isNull());
    Mix(digest, static_cast<uint64_t>(any.getPointerType()));
  });
  Try(digest, [&] { WalkStruct(any.getAs<capnp::AnyStruct>(), depth, digest); });
  Try(digest, [&] {
    for (capnp::Text::Reader text : any.getAs<capnp::List<capnp::Text>>()) MixText(digest, text);
  });
  Try(digest, [&] { WalkAddress(any.getAs<wire::ActorAddress>(), digest); });
  Try(digest, [&] { MixText(digest, any.getAs<capnp::Text>()); });
  Try(digest, [&] {
    const capnp::AnyList::Reader list = any.getAs<capnp::AnyList>();
    Mix(digest, static_cast<uint64_t>(list.getElementSize()));
    Mix(digest, list.size());
    if (depth >= kMaxPayloadDepth) return;
    // As a list of structs (any list may be read as one; a list of
    // zero-sized elements counts against the traversal limit per element).
    for (wire::ActorAddress::Reader element : any.getAs<capnp::List<wire::ActorAddress>>()) {
      WalkStruct(capnp::AnyStruct::Reader(element), depth + 1, digest);
    }
  });
}

void WalkHello(wire::Hello::Reader hello, uint64_t& digest) {
  Mix(digest, hello.getMinVersion());
  Mix(digest, hello.getMaxVersion());
  Mix(digest, hello.hasNode());
  MixText(digest, hello.getNode());
  Mix(digest, hello.getIncarnation());
  MixText(digest, hello.getAddress());
  MixData(digest, hello.getChallenge());
  Mix(digest, hello.getHeartbeatIntervalMs());
  Mix(digest, hello.getHeartbeatTimeoutMs());
  Mix(digest, hello.getMaxFrameBytes());
  Mix(digest, hello.hasProofV1());
  MixData(digest, hello.getProofV1());
  // The node's own checks of a hello, on the same fields.
  Mix(digest, static_cast<uint64_t>(CheckHello(View(hello.getNode()), View(hello.getChallenge())).code()));
  Mix(digest, static_cast<uint64_t>(ChooseVersion(hello.getMinVersion(), hello.getMaxVersion()).status().code()));
  Mix(digest, static_cast<uint64_t>(
                  CheckHeartbeats(absl::Seconds(1), absl::Seconds(5), hello.getHeartbeatIntervalMs(),
                                  hello.getHeartbeatTimeoutMs())
                      .code()));
}

[[noreturn]] void Violation(const char* what) {
  std::fprintf(stderr, "frame_target: invariant broken: %s\n", what);
  std::abort();
}

// A generator for chunk sizes: splitmix64.
uint64_t Next(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

// Copies `bytes` to `offset` (0..7) bytes past an 8-byte boundary.
class Placed {
 public:
  Placed(absl::Span<const uint8_t> bytes, size_t offset)
      : words_(new uint64_t[(bytes.size() + offset + 7) / 8 + 1]),
        start_(reinterpret_cast<uint8_t*>(words_.get()) + offset),
        size_(bytes.size()) {
    if (!bytes.empty()) std::memcpy(start_, bytes.data(), bytes.size());
  }
  absl::Span<const uint8_t> span() const { return {start_, size_}; }

 private:
  std::unique_ptr<uint64_t[]> words_;
  uint8_t* start_;
  size_t size_;
};

}  // namespace

capnp::ReaderOptions NodeReaderOptions(size_t payload_bytes) {
  capnp::ReaderOptions o;
  o.traversalLimitInWords = payload_bytes / sizeof(capnp::word) * 2 + 64;
  o.nestingLimit = 64;
  return o;
}

uint64_t HashBytes(absl::Span<const uint8_t> bytes, uint64_t seed) {
  uint64_t h = seed;
  for (uint8_t b : bytes) h = (h ^ b) * 0x100000001b3u;
  return h;
}

absl::Status WalkFrame(wire::Frame::Reader frame, uint64_t& digest) {
  const wire::Frame::Which which = frame.which();
  Mix(digest, static_cast<uint64_t>(which));
  switch (which) {
    case wire::Frame::HELLO:
      WalkHello(frame.getHello(), digest);
      return absl::OkStatus();
    case wire::Frame::PROOF:
      MixData(digest, frame.getProof());
      return absl::OkStatus();
    case wire::Frame::REFUSED:
      MixText(digest, frame.getRefused());
      return absl::OkStatus();
    case wire::Frame::SEND: {
      const wire::Envelope::Reader e = frame.getSend();
      Mix(digest, e.getTarget());
      Mix(digest, e.getTargetIncarnation());
      Mix(digest, e.getRequestId());
      Mix(digest, e.getTypeId());
      Mix(digest, e.hasPayload());
      WalkAny(e.getPayload(), 0, digest);
      return absl::OkStatus();
    }
    case wire::Frame::REPLY: {
      const wire::Reply::Reader r = frame.getReply();
      Mix(digest, r.getRequestId());
      Mix(digest, r.getCode());
      MixText(digest, r.getMessage());
      Mix(digest, r.getTypeId());
      Mix(digest, r.hasPayload());
      WalkAny(r.getPayload(), 0, digest);
      MixText(digest, r.getRefusedBy());
      Mix(digest, r.getRefusedAcceptsSome());
      return absl::OkStatus();
    }
    case wire::Frame::HEARTBEAT:
      frame.getHeartbeat();
      return absl::OkStatus();
    case wire::Frame::LOOKUP: {
      const wire::Lookup::Reader l = frame.getLookup();
      Mix(digest, l.getRequestId());
      MixText(digest, l.getName());
      MixText(digest, l.getActorType());
      return absl::OkStatus();
    }
    case wire::Frame::SPAWN: {
      const wire::Spawn::Reader s = frame.getSpawn();
      Mix(digest, s.getRequestId());
      MixText(digest, s.getActorType());
      Mix(digest, s.getArgsTypeId());
      Mix(digest, s.hasArgs());
      WalkAny(s.getArgs(), 0, digest);
      return absl::OkStatus();
    }
    case wire::Frame::STOP: {
      const wire::Stop::Reader s = frame.getStop();
      Mix(digest, s.getTarget());
      Mix(digest, s.getCode());
      MixText(digest, s.getMessage());
      Mix(digest, s.getTargetIncarnation());
      return absl::OkStatus();
    }
    case wire::Frame::WATCH: {
      const wire::Watch::Reader w = frame.getWatch();
      Mix(digest, w.getActor());
      Mix(digest, w.getIncarnation());
      return absl::OkStatus();
    }
    case wire::Frame::LINK:
    case wire::Frame::UNLINK: {
      const wire::Link::Reader l = which == wire::Frame::LINK ? frame.getLink() : frame.getUnlink();
      Mix(digest, l.getActor());
      Mix(digest, l.getIncarnation());
      Mix(digest, l.hasFrom());
      if (l.hasFrom()) WalkAddress(l.getFrom(), digest);
      return absl::OkStatus();
    }
    case wire::Frame::LEAVE:
      MixText(digest, frame.getLeave());
      return absl::OkStatus();
    case wire::Frame::YIELD:
      MixText(digest, frame.getYield());
      return absl::OkStatus();
    case wire::Frame::DOWN: {
      const wire::Down::Reader d = frame.getDown();
      Mix(digest, d.getActor());
      Mix(digest, d.getCode());
      MixText(digest, d.getMessage());
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError("unknown frame kind");
}

StreamResult RunFrameStream(absl::Span<const uint8_t> input, Split split, const StreamResult* replay) {
  StreamResult result;
  FrameDecoder decoder(kFuzzMaxPayloadBytes);
  auto on_frame = [&](absl::Span<const uint8_t> payload) -> absl::Status {
    // The decoder's promises, whatever the input.
    if (reinterpret_cast<uintptr_t>(payload.data()) % 8 != 0) Violation("a payload is not 8-byte aligned");
    if (payload.size() > kFuzzMaxPayloadBytes) Violation("a payload is over the decoder's limit");
    const size_t index = result.payload_sizes.size();
    result.payload_sizes.push_back(payload.size());
    result.payload_hashes.push_back(HashBytes(payload));
    absl::Status status;
    if (replay != nullptr) {
      // The same bytes read the same way: take the first run's status.
      if (index >= replay->frame_statuses.size()) {
        status = absl::InternalError("more frames than in the first run");
      } else {
        status = replay->frame_statuses[index];
      }
    } else {
      status = ReadFrame(payload, NodeReaderOptions(payload.size()), [&](wire::Frame::Reader frame) {
        absl::Status walked = WalkFrame(frame, result.digest);
        const auto which = static_cast<uint32_t>(frame.which());
        if (walked.ok() && which < 32) result.kinds |= uint32_t{1} << which;
        return walked;
      });
    }
    result.frame_statuses.push_back(status);
    return status;
  };

  auto feed = [&](absl::Span<const uint8_t> bytes) {
    if (!result.status.ok()) return;
    result.status = decoder.Feed(bytes, on_frame);
  };

  switch (split) {
    case Split::kWholeAligned:
      // The prefix is 4 bytes, so the first payload starts at offset 8.
      feed(Placed(input, 4).span());
      break;
    case Split::kWholeMisaligned:
      feed(Placed(input, 0).span());
      break;
    case Split::kBytes:
      for (size_t i = 0; i < input.size() && result.status.ok(); ++i) feed(input.subspan(i, 1));
      break;
    case Split::kChunks: {
      uint64_t state = HashBytes(input);
      size_t at = 0;
      while (at < input.size() && result.status.ok()) {
        const uint64_t r = Next(state);
        // Mostly short reads, some long ones, as a socket gives them.
        size_t size;
        switch (r % 4) {
          case 0: size = 1 + (r >> 8) % 8; break;
          case 1: size = 1 + (r >> 8) % 64; break;
          case 2: size = 1 + (r >> 8) % 512; break;
          default: size = 1 + (r >> 8) % 8192; break;
        }
        size = std::min(size, input.size() - at);
        feed(Placed(input.subspan(at, size), (r >> 40) % 8).span());
        at += size;
      }
      break;
    }
  }
  result.mid_frame = decoder.mid_frame();
  if (result.frame_statuses.size() != decoder.frames()) Violation("the decoder's frame count is off");
  return result;
}

}  // namespace troupe::net::fuzz
