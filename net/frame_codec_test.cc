// MessageFrameWriter writes Cap'n Proto's standard serialization itself:
// the bytes must be the library's own, for one segment and for several (an
// even and an odd count, whose segment tables differ by a padding word).

#include "net/frame_codec.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "capnp/message.h"
#include "capnp/serialize.h"
#include "gtest/gtest.h"
#include "net/wire/envelope.capnp.h"

namespace troupe::net {
namespace {

// A builder whose segments hold `words` each, filled with a refusal of
// `text_bytes` bytes: bigger texts spill into more segments.
struct Built {
  Built(unsigned words, size_t text_bytes) : builder(words, capnp::AllocationStrategy::FIXED_SIZE) {
    builder.initRoot<wire::Frame>().setRefused(std::string(text_bytes, 'r'));
  }
  capnp::MallocMessageBuilder builder;
};

std::vector<uint8_t> Written(capnp::MessageBuilder& builder) {
  MessageFrameWriter writer(builder);
  std::vector<uint8_t> bytes(writer.payload_size(), 0xAA);
  writer.Write(bytes.data());
  return bytes;
}

std::vector<uint8_t> Library(capnp::MessageBuilder& builder) {
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(builder);
  const kj::ArrayPtr<const kj::byte> bytes = flat.asBytes();
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

TEST(MessageFrameWriter, WritesTheLibrarysBytesForOneSegment) {
  Built one(1024, 40);
  ASSERT_EQ(one.builder.getSegmentsForOutput().size(), 1u);
  EXPECT_EQ(Written(one.builder), Library(one.builder));
}

TEST(MessageFrameWriter, WritesTheLibrarysBytesForAnEvenAndAnOddNumberOfSegments) {
  // Each field of 200 bytes is too big for a 16-word segment: one more
  // segment per field set.
  std::vector<size_t> parities;
  for (int fields = 1; fields <= 4; ++fields) {
    capnp::MallocMessageBuilder builder(16, capnp::AllocationStrategy::FIXED_SIZE);
    wire::Hello::Builder hello = builder.initRoot<wire::Frame>().initHello();
    const std::string big(200, 'h');
    hello.setNode(big);
    if (fields >= 2) hello.setAddress(big);
    if (fields >= 3) hello.setChallenge(kj::StringPtr(big.c_str()).asBytes());
    if (fields >= 4) hello.setProofV1(kj::StringPtr(big.c_str()).asBytes());
    const size_t segments = builder.getSegmentsForOutput().size();
    ASSERT_GT(segments, 1u) << fields;
    parities.push_back(segments % 2);
    EXPECT_EQ(Written(builder), Library(builder)) << segments << " segments";
  }
  EXPECT_NE(std::count(parities.begin(), parities.end(), 0), 0) << "no even segment count was written";
  EXPECT_NE(std::count(parities.begin(), parities.end(), 1), 0) << "no odd segment count was written";
}

TEST(MessageFrameWriter, AFrameLargerThanTheScratchSegmentReadsBack) {
  const std::string text(20000, 'x');  // more than the 8 KiB scratch segment
  absl::StatusOr<OutFrame> frame = BuildFrame([&](wire::Frame::Builder f) {
    f.setRefused(text);
    return absl::OkStatus();
  });
  ASSERT_TRUE(frame.ok()) << frame.status();
  std::string got;
  absl::Status read = ReadFrame(absl::MakeConstSpan(frame->payload(), frame->payload_size()), capnp::ReaderOptions(), [&](wire::Frame::Reader r) {
    got = r.getRefused().cStr();
    return absl::OkStatus();
  });
  ASSERT_TRUE(read.ok()) << read;
  EXPECT_EQ(got, text);
}

}  // namespace
}  // namespace troupe::net
