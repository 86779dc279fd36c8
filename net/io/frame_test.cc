#include "net/io/frame.h"

#include <cstdint>
#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "gtest/gtest.h"

namespace troupe::net {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes Payload(size_t size, uint8_t seed) {
  Bytes b(size);
  for (size_t i = 0; i < size; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

void AppendFrame(Bytes& stream, const Bytes& payload) {
  const OutFrame frame = OutFrame::Copy(payload);
  const absl::Span<const uint8_t> bytes = frame.bytes();
  stream.insert(stream.end(), bytes.begin(), bytes.end());
}

// Collects payloads and checks each is 8-byte aligned.
struct Collector {
  std::vector<Bytes> frames;
  int misaligned = 0;
  void operator()(absl::Span<const uint8_t> payload) {
    if (reinterpret_cast<uintptr_t>(payload.data()) % 8 != 0) ++misaligned;
    frames.emplace_back(payload.begin(), payload.end());
  }
};

// Copies `bytes` to `offset` bytes past an 8-byte boundary, so the decoder
// sees input at every alignment.
struct Shifted {
  std::vector<uint64_t> words;
  absl::Span<const uint8_t> span;
  Shifted(absl::Span<const uint8_t> bytes, size_t offset) : words((bytes.size() + offset + 7) / 8 + 1) {
    uint8_t* base = reinterpret_cast<uint8_t*>(words.data()) + offset;
    if (!bytes.empty()) std::memcpy(base, bytes.data(), bytes.size());
    span = absl::Span<const uint8_t>(base, bytes.size());
  }
};

TEST(OutFrame, WritesALittleEndianPrefixAndAlignsThePayload) {
  OutFrame frame = OutFrame::WithPayload(0x010203);
  ASSERT_FALSE(frame.empty());
  EXPECT_EQ(frame.payload_size(), 0x010203u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(frame.payload()) % 8, 0u);
  const absl::Span<const uint8_t> bytes = frame.bytes();
  ASSERT_EQ(bytes.size(), kFramePrefixBytes + 0x010203);
  EXPECT_EQ(bytes[0], 0x03);
  EXPECT_EQ(bytes[1], 0x02);
  EXPECT_EQ(bytes[2], 0x01);
  EXPECT_EQ(bytes[3], 0x00);
  EXPECT_EQ(bytes.data() + kFramePrefixBytes, frame.payload());
}

TEST(OutFrame, DefaultConstructedFrameIsEmptyAndHasNoBytes) {
  OutFrame frame;
  EXPECT_TRUE(frame.empty());
  EXPECT_TRUE(frame.bytes().empty());
  EXPECT_EQ(frame.payload(), nullptr);
}

TEST(OutFrame, ZeroPayloadFrameIsJustThePrefix) {
  OutFrame frame = OutFrame::WithPayload(0);
  EXPECT_FALSE(frame.empty());
  EXPECT_EQ(frame.bytes().size(), kFramePrefixBytes);
  for (uint8_t b : frame.bytes()) EXPECT_EQ(b, 0);
}

TEST(FrameDecoder, FramesSplitAtEveryByteBoundaryComeOutWholeAndInOrder) {
  const std::vector<Bytes> payloads = {Payload(0, 1),  Payload(1, 2),  Payload(7, 3),   Payload(8, 4),
                                       Payload(13, 5), Payload(64, 6), Payload(300, 7), Payload(0, 8)};
  Bytes stream;
  for (const Bytes& p : payloads) AppendFrame(stream, p);

  for (size_t split = 0; split <= stream.size(); ++split) {
    FrameDecoder decoder(1024);
    Collector out;
    const absl::Span<const uint8_t> all(stream);
    ASSERT_TRUE(decoder.Feed(all.subspan(0, split), out).ok());
    ASSERT_TRUE(decoder.Feed(all.subspan(split), out).ok());
    ASSERT_EQ(out.frames, payloads) << "split at " << split;
    EXPECT_EQ(out.misaligned, 0);
    EXPECT_FALSE(decoder.mid_frame());
  }
}

TEST(FrameDecoder, ByteByByteFeedingYieldsTheSameFramesAndReportsMidFrame) {
  const std::vector<Bytes> payloads = {Payload(5, 1), Payload(0, 2), Payload(17, 3)};
  Bytes stream;
  for (const Bytes& p : payloads) AppendFrame(stream, p);
  FrameDecoder decoder(1024);
  Collector out;
  for (size_t i = 0; i < stream.size(); ++i) {
    ASSERT_TRUE(decoder.Feed(absl::Span<const uint8_t>(&stream[i], 1), out).ok());
    // After a byte, the decoder is mid-frame unless that byte ended a frame.
    const bool ended = i + 1 == 9 || i + 1 == 13 || i + 1 == stream.size();
    EXPECT_EQ(decoder.mid_frame(), !ended) << "after byte " << i;
  }
  EXPECT_EQ(out.frames, payloads);
  EXPECT_EQ(out.misaligned, 0);
  EXPECT_EQ(decoder.frames(), 3u);
}

TEST(FrameDecoder, ManyFramesInOneFeedAtEveryInputAlignment) {
  std::vector<Bytes> payloads;
  Bytes stream;
  for (int i = 0; i < 1000; ++i) {
    payloads.push_back(Payload(static_cast<size_t>(i % 37), static_cast<uint8_t>(i)));
    AppendFrame(stream, payloads.back());
  }
  for (size_t offset = 0; offset < 8; ++offset) {
    const Shifted input(stream, offset);
    FrameDecoder decoder(1024);
    Collector out;
    ASSERT_TRUE(decoder.Feed(input.span, out).ok());
    EXPECT_EQ(out.frames, payloads) << "input offset " << offset;
    EXPECT_EQ(out.misaligned, 0) << "input offset " << offset;
  }
}

TEST(FrameDecoder, AlignedWholeFrameIsHandedOutInPlace) {
  Bytes stream;
  AppendFrame(stream, Payload(16, 9));
  // The prefix at offset 4 puts the payload on an 8-byte boundary.
  const Shifted input(stream, 4);
  FrameDecoder decoder(1024);
  const uint8_t* seen = nullptr;
  ASSERT_TRUE(decoder.Feed(input.span, [&](absl::Span<const uint8_t> p) { seen = p.data(); }).ok());
  EXPECT_EQ(seen, input.span.data() + kFramePrefixBytes);
  EXPECT_EQ(decoder.storage_bytes(), 0u);
}

TEST(FrameDecoder, EmptyFrameIsAValidEmptyPayload) {
  Bytes stream;
  AppendFrame(stream, {});
  FrameDecoder decoder(16);
  int calls = 0;
  ASSERT_TRUE(decoder
                  .Feed(stream,
                        [&](absl::Span<const uint8_t> p) {
                          ++calls;
                          EXPECT_TRUE(p.empty());
                        })
                  .ok());
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(decoder.mid_frame());
}

TEST(FrameDecoder, OversizedLengthIsRefusedFromThePrefixAloneBeforeAllocating) {
  // Only the 4 prefix bytes: the refusal must not wait for the payload.
  const uint8_t prefix[] = {0x01, 0x04, 0x00, 0x00};  // 1025 > 1024
  for (size_t split = 0; split <= 4; ++split) {
    FrameDecoder decoder(1024);
    int calls = 0;
    auto count = [&](absl::Span<const uint8_t>) { ++calls; };
    const absl::Span<const uint8_t> all(prefix);
    absl::Status first = decoder.Feed(all.subspan(0, split), count);
    absl::Status second = decoder.Feed(all.subspan(split), count);
    const absl::Status& s = split == 4 ? first : second;
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << "split at " << split;
    EXPECT_NE(s.message().find("1025"), std::string::npos) << s;
    EXPECT_EQ(decoder.storage_bytes(), 0u);
    EXPECT_EQ(calls, 0);
    // The decoder stays broken.
    EXPECT_EQ(decoder.Feed(all, count).code(), absl::StatusCode::kResourceExhausted);
  }
}

TEST(FrameDecoder, LargestLengthAPrefixCanHoldIsRefusedWithoutAllocating) {
  const uint8_t prefix[] = {0xff, 0xff, 0xff, 0xff};
  FrameDecoder decoder(size_t{16} << 20);
  absl::Status s = decoder.Feed(prefix, [](absl::Span<const uint8_t>) {});
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(decoder.storage_bytes(), 0u);
}

TEST(FrameDecoder, FramesBeforeAnOversizedOneAreStillDelivered) {
  Bytes stream;
  AppendFrame(stream, Payload(3, 1));
  AppendFrame(stream, Payload(100, 2));
  FrameDecoder decoder(50);
  Collector out;
  EXPECT_EQ(decoder.Feed(stream, out).code(), absl::StatusCode::kResourceExhausted);
  ASSERT_EQ(out.frames.size(), 1u);
  EXPECT_EQ(out.frames[0], Payload(3, 1));
}

TEST(FrameDecoder, ErrorFromOnFrameStopsTheFeed) {
  Bytes stream;
  for (int i = 0; i < 5; ++i) AppendFrame(stream, Payload(4, static_cast<uint8_t>(i)));
  FrameDecoder decoder(64);
  int calls = 0;
  absl::Status s = decoder.Feed(stream, [&](absl::Span<const uint8_t>) -> absl::Status {
    return ++calls == 2 ? absl::CancelledError("stop") : absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, 2);
}

TEST(FrameDecoder, StorageOfALargeFrameIsFreedOnceYielded) {
  Bytes stream;
  AppendFrame(stream, Payload(size_t{1} << 20, 3));
  FrameDecoder decoder(size_t{2} << 20);
  size_t seen = 0;
  const absl::Span<const uint8_t> all(stream);
  // Fed in two pieces, so the payload is collected in the decoder's storage.
  ASSERT_TRUE(decoder.Feed(all.subspan(0, 1000), [&](absl::Span<const uint8_t> p) { seen = p.size(); }).ok());
  EXPECT_GT(decoder.storage_bytes(), 0u);
  ASSERT_TRUE(decoder.Feed(all.subspan(1000), [&](absl::Span<const uint8_t> p) { seen = p.size(); }).ok());
  EXPECT_EQ(seen, size_t{1} << 20);
  EXPECT_EQ(decoder.storage_bytes(), 0u);
}

// A peer announcing 16 MiB and sending 10 bytes must not cost 16 MiB.
TEST(FrameDecoder, AnnouncedLengthIsNotAllocatedBeforeItsBytesArrive) {
  const uint8_t prefix[] = {0x00, 0x00, 0x00, 0x01};  // 16 MiB
  FrameDecoder decoder(size_t{16} << 20);
  int calls = 0;
  auto count = [&](absl::Span<const uint8_t>) { ++calls; };
  ASSERT_TRUE(decoder.Feed(prefix, count).ok());
  ASSERT_TRUE(decoder.Feed(Payload(10, 1), count).ok());
  EXPECT_TRUE(decoder.mid_frame());
  EXPECT_LT(decoder.storage_bytes(), size_t{128} << 10);
  EXPECT_EQ(calls, 0);
}

// Fed 16 KiB at a time, a 4 MiB frame's storage stays within about twice
// what has arrived, and the payload comes out intact.
TEST(FrameDecoder, StorageGrowsWithTheBytesReceived) {
  constexpr size_t kSize = size_t{4} << 20;
  constexpr size_t kPiece = size_t{16} << 10;
  Bytes stream;
  AppendFrame(stream, Payload(kSize, 5));
  FrameDecoder decoder(kSize);
  Collector out;
  const absl::Span<const uint8_t> all(stream);
  size_t most = 0;
  for (size_t fed = 0; fed < all.size(); fed += kPiece) {
    ASSERT_TRUE(decoder.Feed(all.subspan(fed, kPiece), out).ok());
    const size_t received = std::min(fed + kPiece, all.size());
    if (out.frames.empty()) {
      EXPECT_LE(decoder.storage_bytes(), std::max(size_t{64} << 10, 2 * received)) << "after " << received;
      most = std::max(most, decoder.storage_bytes());
    }
  }
  ASSERT_EQ(out.frames.size(), 1u);
  EXPECT_EQ(out.frames[0], Payload(kSize, 5));
  EXPECT_EQ(out.misaligned, 0);
  EXPECT_GE(most, kSize);
  EXPECT_EQ(decoder.storage_bytes(), 0u);
}

// Frames of random sizes (empty to 300 KiB) fed in pieces of random sizes
// at random alignments come out identical, in order, aligned.
TEST(FrameDecoder, PiecesOfRandomSizesYieldIdenticalPayloads) {
  std::mt19937_64 random(20240611);
  std::vector<Bytes> payloads;
  Bytes stream;
  for (int i = 0; i < 200; ++i) {
    const size_t size = i % 4 == 0 ? random() % (300 << 10) : random() % 600;
    payloads.push_back(Payload(size, static_cast<uint8_t>(i)));
    AppendFrame(stream, payloads.back());
  }
  FrameDecoder decoder(size_t{1} << 20);
  Collector out;
  const absl::Span<const uint8_t> all(stream);
  for (size_t fed = 0; fed < all.size();) {
    const size_t piece = std::min(all.size() - fed, 1 + static_cast<size_t>(random() % (100 << 10)));
    const Shifted shifted(all.subspan(fed, piece), random() % 8);
    ASSERT_TRUE(decoder.Feed(shifted.span, out).ok());
    fed += piece;
  }
  EXPECT_EQ(out.frames, payloads);
  EXPECT_EQ(out.misaligned, 0);
  EXPECT_FALSE(decoder.mid_frame());
  EXPECT_LE(decoder.storage_bytes(), size_t{64} << 10);
}

// Refused in the fast path (whole prefix in one feed) or the slow path
// (prefix split), the decoder reports no frame in progress.
TEST(FrameDecoder, MidFrameIsFalseOnceAnOversizedLengthIsRefused) {
  const uint8_t prefix[] = {0x01, 0x04, 0x00, 0x00};  // 1025 > 1024
  for (size_t split = 0; split <= 4; ++split) {
    FrameDecoder decoder(1024);
    const absl::Span<const uint8_t> all(prefix);
    auto ignore = [](absl::Span<const uint8_t>) {};
    const absl::Status first = decoder.Feed(all.subspan(0, split), ignore);
    const absl::Status second = decoder.Feed(all.subspan(split), ignore);
    EXPECT_EQ((split == 4 ? first : second).code(), absl::StatusCode::kResourceExhausted) << "split at " << split;
    EXPECT_FALSE(decoder.mid_frame()) << "split at " << split;
  }
}

// The limit changed from on_frame applies to the next frame of the same feed.
TEST(FrameDecoder, RaisedLimitAcceptsTheNextLargerFrame) {
  Bytes stream;
  AppendFrame(stream, Payload(8, 1));
  AppendFrame(stream, Payload(5000, 2));
  FrameDecoder decoder(16);
  std::vector<Bytes> frames;
  ASSERT_TRUE(decoder
                  .Feed(stream,
                        [&](absl::Span<const uint8_t> p) {
                          frames.emplace_back(p.begin(), p.end());
                          decoder.set_max_payload_bytes(8192);
                        })
                  .ok());
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[1], Payload(5000, 2));
  EXPECT_EQ(decoder.max_payload_bytes(), 8192u);
}

TEST(FrameDecoder, LoweredLimitRefusesTheNextLargeFrame) {
  Bytes stream;
  AppendFrame(stream, Payload(100, 1));
  AppendFrame(stream, Payload(100, 2));
  FrameDecoder decoder(1024);
  int calls = 0;
  const absl::Status s = decoder.Feed(stream, [&](absl::Span<const uint8_t>) {
    ++calls;
    decoder.set_max_payload_bytes(64);
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("limit of 64 bytes"), std::string::npos) << s;
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(decoder.mid_frame());
  // Still broken, still naming the limit it was refused under.
  decoder.set_max_payload_bytes(1024);
  const absl::Status again = decoder.Feed(stream, [](absl::Span<const uint8_t>) {});
  EXPECT_NE(again.message().find("limit of 64 bytes"), std::string::npos) << again;
}

}  // namespace
}  // namespace troupe::net
