#include "net/io/frame.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"

namespace troupe::net {

OutFrame OutFrame::WithPayload(size_t payload_bytes) {
  OutFrame frame;
  if (payload_bytes > kMaxFramePayloadBytes) payload_bytes = kMaxFramePayloadBytes;
  // One word for the prefix (in its upper half), then the payload's words.
  const size_t words = 1 + (payload_bytes + 7) / 8;
  frame.buffer_.reset(new uint64_t[words]);
  frame.payload_size_ = payload_bytes;
  WriteFramePrefix(reinterpret_cast<uint8_t*>(frame.buffer_.get()) + kPrefixOffset, payload_bytes);
  return frame;
}

OutFrame FrameWriter::TakeOutFrame() {
  OutFrame frame = OutFrame::WithPayload(payload_size());
  Write(frame.payload());
  return frame;
}

OutFrame OutFrame::Copy(absl::Span<const uint8_t> payload) {
  OutFrame frame = WithPayload(payload.size());
  if (!payload.empty()) std::memcpy(frame.payload(), payload.data(), frame.payload_size());
  return frame;
}

absl::Status FrameDecoder::OversizedError(uint64_t length, size_t limit) {
  return absl::ResourceExhaustedError(
      absl::StrCat("frame of ", length, " bytes exceeds the limit of ", limit, " bytes"));
}

absl::Status FrameDecoder::Refuse(uint64_t length) {
  broken_ = true;
  broken_length_ = length;
  broken_limit_ = max_payload_bytes_;
  // Nothing is being received any more (see mid_frame).
  prefix_have_ = 0;
  length_ = 0;
  payload_have_ = 0;
  return OversizedError(length, broken_limit_);
}

void FrameDecoder::Grow(size_t bytes) {
  const size_t words = (bytes + 7) / 8;
  if (words <= storage_words_) return;
  // At least double, so a frame arriving in many pieces (or a run of growing
  // frames) costs few allocations and copies, but never past the larger of
  // this frame's length and the storage kept between frames: storage follows
  // the bytes received, not the announced length.
  const size_t cap = std::max((length_ + 7) / 8, kKeepStorageBytes / 8);
  const size_t grown = std::max(words, std::min(storage_words_ * 2, cap));
  std::unique_ptr<uint64_t[]> storage(new uint64_t[grown]);
  if (payload_have_ > 0) std::memcpy(storage.get(), storage_.get(), payload_have_);
  storage_ = std::move(storage);
  storage_words_ = grown;
}

void FrameDecoder::ReleaseIfLarge() {
  if (storage_words_ * 8 > kKeepStorageBytes) {
    storage_.reset();
    storage_words_ = 0;
  }
}

}  // namespace troupe::net
