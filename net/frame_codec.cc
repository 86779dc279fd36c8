#include "net/frame_codec.h"

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

void MessageFrameWriter::Write(uint8_t* payload) const {
  kj::ArrayOutputStream stream(kj::arrayPtr(reinterpret_cast<kj::byte*>(payload), bytes_));
  capnp::writeMessage(stream, builder_);
}

}  // namespace troupe::net
