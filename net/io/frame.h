// OutFrame and FrameDecoder: the length-prefixed framing of troupe's wire.
//
// A frame is a 4-byte little-endian payload length followed by the payload
// (a Cap'n Proto message, see net/wire/envelope.capnp). Nothing else: no
// magic, no checksum (TCP has one), no version (the node handshake has one).
//
// OutFrame is one heap buffer holding prefix and payload, filled by the sender
// and handed to Connection::Send, which takes it by value (move-only). The
// payload starts 8-byte aligned, so a Cap'n Proto message can be written into
// it word by word.
//
// FrameDecoder takes bytes as they arrive, in pieces of any size, and yields
// each complete payload, 8-byte aligned: a payload that lies whole and aligned
// in the fed bytes is handed out in place; otherwise it is copied into the
// decoder's own storage first. A length over the decoder's limit is refused
// (ResourceExhausted) when its 4 bytes are in, before anything is allocated
// for it. A zero length is a valid, empty payload; what it means is up to the
// layer above. The decoder keeps at most one frame's bytes.
//
// Memory: storage follows the bytes that have arrived, not the length the
// prefix announces, so a peer that announces 16 MiB and sends 10 bytes costs
// one first chunk (min(length, 64 KiB)), not 16 MiB. The storage doubles as
// the payload's bytes come in, capped at the length: at most about twice the
// bytes received (plus the copy while growing), and each byte is copied O(1)
// times on average. Storage up to 64 KiB is kept for the next frame; larger
// storage is freed once its frame has been yielded.
//
// Who may call what: neither class is thread-safe. An OutFrame is filled by
// one thread and then moved into Send; a FrameDecoder belongs to one
// connection and is fed on its I/O thread.

#ifndef TROUPE_NET_IO_FRAME_H_
#define TROUPE_NET_IO_FRAME_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace troupe::net {

inline constexpr size_t kFramePrefixBytes = 4;
// The largest payload a 4-byte prefix can describe.
inline constexpr size_t kMaxFramePayloadBytes = 0xffffffffu;

class OutFrame {
 public:
  // Empty: no buffer. Send refuses it (InvalidArgument).
  OutFrame() = default;
  OutFrame(OutFrame&&) noexcept = default;
  OutFrame& operator=(OutFrame&&) noexcept = default;
  OutFrame(const OutFrame&) = delete;
  OutFrame& operator=(const OutFrame&) = delete;

  // A frame with room for `payload_bytes` (at most kMaxFramePayloadBytes);
  // the prefix is written, the payload is left for the caller to fill.
  static OutFrame WithPayload(size_t payload_bytes);
  // A frame holding a copy of `payload`.
  static OutFrame Copy(absl::Span<const uint8_t> payload);

  // 8-byte aligned; nullptr for an empty OutFrame.
  uint8_t* payload() { return buffer_ ? payload_start() : nullptr; }
  const uint8_t* payload() const { return buffer_ ? payload_start() : nullptr; }
  size_t payload_size() const { return payload_size_; }
  // Prefix and payload, as written to the socket; empty for an empty OutFrame.
  absl::Span<const uint8_t> bytes() const {
    if (!buffer_) return {};
    return {reinterpret_cast<const uint8_t*>(buffer_.get()) + kPrefixOffset, kFramePrefixBytes + payload_size_};
  }
  bool empty() const { return !buffer_; }

 private:
  // The buffer is uint64_t words: the prefix sits in bytes 4..7 of the first
  // word, so the payload starts on the second word, 8-byte aligned.
  static constexpr size_t kPrefixOffset = 8 - kFramePrefixBytes;

  uint8_t* payload_start() const { return reinterpret_cast<uint8_t*>(buffer_.get()) + 8; }

  std::unique_ptr<uint64_t[]> buffer_;
  size_t payload_size_ = 0;
};

// Writes the 4-byte little-endian prefix of a payload of `payload_bytes`.
inline void WriteFramePrefix(uint8_t* out, size_t payload_bytes) {
  const auto n = static_cast<uint32_t>(payload_bytes);
  out[0] = static_cast<uint8_t>(n);
  out[1] = static_cast<uint8_t>(n >> 8);
  out[2] = static_cast<uint8_t>(n >> 16);
  out[3] = static_cast<uint8_t>(n >> 24);
}

// A frame that can be written in place: its payload's size, and a Write
// that puts exactly that many bytes wherever it is told (no alignment
// promised). Connection::SendInPlace takes one, so that a small frame is
// written straight into the connection's outbound batch with no buffer of
// its own; a path that keeps the frame by itself takes it as an OutFrame
// (TakeOutFrame, once). Used on the sending thread during the call only.
class FrameWriter {
 public:
  virtual size_t payload_size() const = 0;
  virtual void Write(uint8_t* payload) const = 0;
  // By default a new OutFrame, written with Write.
  virtual OutFrame TakeOutFrame();

 protected:
  ~FrameWriter() = default;
};

// An OutFrame as a FrameWriter: Write copies it, TakeOutFrame moves it out.
class OutFrameWriter final : public FrameWriter {
 public:
  explicit OutFrameWriter(OutFrame& frame) : frame_(frame) {}
  size_t payload_size() const override { return frame_.payload_size(); }
  void Write(uint8_t* payload) const override {
    if (frame_.payload_size() != 0) std::memcpy(payload, frame_.payload(), frame_.payload_size());
  }
  OutFrame TakeOutFrame() override { return std::move(frame_); }

 private:
  OutFrame& frame_;
};

class FrameDecoder {
 public:
  explicit FrameDecoder(size_t max_payload_bytes) : max_payload_bytes_(max_payload_bytes) {}
  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  // Feeds bytes; calls on_frame(absl::Span<const uint8_t> payload) per
  // complete frame, in order. The payload is valid only during the call.
  // on_frame returns void or absl::Status; a non-OK status stops the feed
  // and is returned (the rest of `bytes` is not consumed; the caller is
  // expected to drop the connection). Returns ResourceExhausted for a length
  // over the limit; the decoder is then unusable (every later Feed returns
  // the same error).
  template <class OnFrame>
  absl::Status Feed(absl::Span<const uint8_t> bytes, OnFrame&& on_frame);

  // Changes the limit for frames whose length prefix is not yet complete
  // (from on_frame, it applies to the next frame of the same Feed). A frame
  // already being collected keeps the limit it was accepted under.
  void set_max_payload_bytes(size_t bytes) { max_payload_bytes_ = bytes; }
  size_t max_payload_bytes() const { return max_payload_bytes_; }

  // True while a frame is partly received, its prefix included (for the
  // frame timeout). False once the decoder has refused a length: nothing
  // more is being received.
  bool mid_frame() const { return prefix_have_ > 0; }
  // Complete frames yielded so far.
  uint64_t frames() const { return frames_; }
  // Bytes of storage held for partial frames (for tests and stats).
  size_t storage_bytes() const { return storage_words_ * 8; }

 private:
  // Payloads up to this size reuse storage between frames; a bigger one's
  // storage is freed once it has been yielded, so one large frame does not
  // pin its size for the connection's lifetime. Also the first chunk of a
  // large frame's storage.
  static constexpr size_t kKeepStorageBytes = size_t{64} << 10;

  static absl::Status OversizedError(uint64_t length, size_t limit);
  // Refuses `length`: the decoder is broken from here on.
  absl::Status Refuse(uint64_t length);
  // Makes sure storage holds at least `bytes` of the current frame's payload
  // (bytes <= length_), keeping the payload_have_ bytes already collected.
  void Grow(size_t bytes);
  void ReleaseIfLarge();

  template <class OnFrame>
  static absl::Status Call(OnFrame& on_frame, absl::Span<const uint8_t> payload) {
    if constexpr (std::is_void_v<std::invoke_result_t<OnFrame&, absl::Span<const uint8_t>>>) {
      on_frame(payload);
      return absl::OkStatus();
    } else {
      return on_frame(payload);
    }
  }

  size_t max_payload_bytes_;
  // The current frame: prefix bytes received so far (0..4; 0 = between
  // frames), its length once the prefix is complete, payload bytes received.
  uint8_t prefix_[kFramePrefixBytes] = {};
  size_t prefix_have_ = 0;
  size_t length_ = 0;
  size_t payload_have_ = 0;
  // Set by Refuse, with the length and the limit it was refused under.
  bool broken_ = false;
  uint64_t broken_length_ = 0;
  size_t broken_limit_ = 0;
  uint64_t frames_ = 0;
  std::unique_ptr<uint64_t[]> storage_;
  size_t storage_words_ = 0;
};

template <class OnFrame>
absl::Status FrameDecoder::Feed(absl::Span<const uint8_t> bytes, OnFrame&& on_frame) {
  if (broken_) return OversizedError(broken_length_, broken_limit_);
  const uint8_t* p = bytes.data();
  const uint8_t* const end = p + bytes.size();
  while (p != end) {
    if (prefix_have_ < kFramePrefixBytes) {
      // Fast path: a whole frame, aligned, inside the fed bytes; no copy.
      if (prefix_have_ == 0 && static_cast<size_t>(end - p) >= kFramePrefixBytes) {
        const uint64_t length = uint64_t{p[0]} | uint64_t{p[1]} << 8 | uint64_t{p[2]} << 16 | uint64_t{p[3]} << 24;
        if (length > max_payload_bytes_) return Refuse(length);
        const uint8_t* payload = p + kFramePrefixBytes;
        if (static_cast<uint64_t>(end - payload) >= length && reinterpret_cast<uintptr_t>(payload) % 8 == 0) {
          p = payload + length;
          ++frames_;
          absl::Status s = Call(on_frame, absl::Span<const uint8_t>(payload, length));
          if (!s.ok()) return s;
          continue;
        }
      }
      // Slow path: collect the prefix byte by byte, then the payload.
      while (prefix_have_ < kFramePrefixBytes && p != end) prefix_[prefix_have_++] = *p++;
      if (prefix_have_ < kFramePrefixBytes) break;
      const uint64_t length = uint64_t{prefix_[0]} | uint64_t{prefix_[1]} << 8 | uint64_t{prefix_[2]} << 16 |
                              uint64_t{prefix_[3]} << 24;
      if (length > max_payload_bytes_) return Refuse(length);
      length_ = static_cast<size_t>(length);
      payload_have_ = 0;
      Grow(std::min(length_, kKeepStorageBytes));
    }
    const size_t take = std::min(length_ - payload_have_, static_cast<size_t>(end - p));
    if (take > 0) {
      if (payload_have_ + take > storage_words_ * 8) Grow(payload_have_ + take);
      std::memcpy(reinterpret_cast<uint8_t*>(storage_.get()) + payload_have_, p, take);
      payload_have_ += take;
      p += take;
    }
    if (payload_have_ == length_) {
      prefix_have_ = 0;
      ++frames_;
      absl::Status s = Call(on_frame, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(storage_.get()), length_));
      ReleaseIfLarge();
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace troupe::net

#endif  // TROUPE_NET_IO_FRAME_H_
