#include "net/io/frame.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace troupe::net {

OutFrame OutFrame::WithPayload(size_t payload_bytes) {
  OutFrame frame;
  if (payload_bytes > kMaxFramePayloadBytes) payload_bytes = kMaxFramePayloadBytes;
  // One word for the prefix (in its upper half), then the payload's words.
  const size_t words = 1 + (payload_bytes + 7) / 8;
  frame.buffer_.reset(new uint64_t[words]);
  frame.payload_size_ = payload_bytes;
  uint8_t* prefix = reinterpret_cast<uint8_t*>(frame.buffer_.get()) + kPrefixOffset;
  const auto n = static_cast<uint32_t>(payload_bytes);
  prefix[0] = static_cast<uint8_t>(n);
  prefix[1] = static_cast<uint8_t>(n >> 8);
  prefix[2] = static_cast<uint8_t>(n >> 16);
  prefix[3] = static_cast<uint8_t>(n >> 24);
  return frame;
}

OutFrame OutFrame::Copy(absl::Span<const uint8_t> payload) {
  OutFrame frame = WithPayload(payload.size());
  if (!payload.empty()) std::memcpy(frame.payload(), payload.data(), frame.payload_size());
  return frame;
}

absl::Status FrameDecoder::OversizedError(uint64_t length) const {
  return absl::ResourceExhaustedError(
      absl::StrCat("frame of ", length, " bytes exceeds the limit of ", max_payload_bytes_, " bytes"));
}

void FrameDecoder::Reserve() {
  const size_t words = (length_ + 7) / 8;
  if (words <= storage_words_) return;
  // Grow to at least double, so a run of growing frames costs few allocations,
  // but never past what this frame needs when it is large.
  size_t grown = std::max(words, std::min(storage_words_ * 2, kKeepStorageBytes / 8));
  storage_.reset(new uint64_t[grown]);
  storage_words_ = grown;
}

void FrameDecoder::ReleaseIfLarge() {
  if (storage_words_ * 8 > kKeepStorageBytes) {
    storage_.reset();
    storage_words_ = 0;
  }
}

}  // namespace troupe::net
