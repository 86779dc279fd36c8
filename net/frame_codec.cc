#include "net/frame_codec.h"

#include <bit>
#include <cstring>

namespace troupe::net {
namespace {

constexpr size_t kScratchWords = 1024;

struct ThreadScratch {
  capnp::word words[kScratchWords] = {};
  bool in_use = false;
};

ThreadScratch& Scratch() {
  thread_local ThreadScratch scratch;
  return scratch;
}

}  // namespace

ScratchSegment::ScratchSegment() {
  ThreadScratch& s = Scratch();
  if (!s.in_use) {
    s.in_use = true;
    owned_ = true;
    words_ = kj::arrayPtr(s.words, kScratchWords);
  }
}

ScratchSegment::~ScratchSegment() {
  // The builder, destroyed before this, has zeroed what it used.
  if (owned_) Scratch().in_use = false;
}

// The segment table: the segment count minus one, each segment's size in
// words (32-bit little-endian), padded to a whole word.
size_t SegmentTableBytes(size_t segments) { return ((segments + 2) & ~size_t{1}) * sizeof(uint32_t); }

MessageFrameWriter::MessageFrameWriter(capnp::MessageBuilder& builder) : segments_(builder.getSegmentsForOutput()) {
  bytes_ = SegmentTableBytes(segments_.size());
  for (const kj::ArrayPtr<const capnp::word>& segment : segments_) bytes_ += segment.size() * sizeof(capnp::word);
}

void MessageFrameWriter::Write(uint8_t* payload) const {
  static_assert(std::endian::native == std::endian::little, "the segment table is written in host order");
  const size_t count = segments_.size();
  const size_t table_bytes = SegmentTableBytes(count);
  uint32_t entry = static_cast<uint32_t>(count - 1);
  std::memcpy(payload, &entry, sizeof(entry));
  for (size_t i = 0; i < count; ++i) {
    entry = static_cast<uint32_t>(segments_[i].size());
    std::memcpy(payload + (i + 1) * sizeof(uint32_t), &entry, sizeof(entry));
  }
  if (count % 2 == 0) std::memset(payload + (count + 1) * sizeof(uint32_t), 0, sizeof(uint32_t));
  uint8_t* at = payload + table_bytes;
  for (const kj::ArrayPtr<const capnp::word>& segment : segments_) {
    std::memcpy(at, segment.begin(), segment.size() * sizeof(capnp::word));
    at += segment.size() * sizeof(capnp::word);
  }
}

}  // namespace troupe::net
