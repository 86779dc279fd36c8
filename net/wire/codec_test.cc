// WireWriter::EncodeRef and WireReader::DecodeRef: empty Refs are null
// pointers, anything else goes through the RefCodec, and without one a Ref
// cannot travel.

#include "net/wire/codec.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "actors/actor.h"
#include "actors/testkit/test_system.h"
#include "capnp/message.h"
#include "gtest/gtest.h"
#include "kj/exception.h"
#include "net/wire/troupe.capnp.h"

namespace troupe {
namespace {

struct Ping {};
struct Target : Actor<Target> {
  void On(const Ping&) {}
};

class RecordingRefCodec : public RefCodec {
 public:
  absl::Status Encode(const ActorRef& ref, wire::ActorAddress::Builder out) override {
    encoded.push_back(ref.id());
    out.setNode("node-a");
    out.setIncarnation(3);
    out.setActor(ref.id());
    return encode_status;
  }
  absl::StatusOr<ActorRef> Decode(wire::ActorAddress::Reader in, std::string_view actor_type) override {
    decoded.emplace_back(std::string(in.getNode().cStr()) + "/" + std::to_string(in.getActor()) + "/" +
                         std::string(actor_type));
    return answer;
  }

  std::vector<uint64_t> encoded;
  std::vector<std::string> decoded;
  absl::Status encode_status;
  ActorRef answer;
};

class CodecTest : public ::testing::Test {
 protected:
  testkit::TestSystem sys_;
  RecordingRefCodec refs_;
  // Behind a pointer: a message builder's destructor may throw, which a
  // fixture's may not.
  std::unique_ptr<capnp::MallocMessageBuilder> message_ = std::make_unique<capnp::MallocMessageBuilder>();
  capnp::AnyPointer::Builder slot_ = message_->getRoot<capnp::AnyPointer>();
};

TEST_F(CodecTest, AnEmptyRefIsANullPointerAndNeedsNoRefCodec) {
  WireWriter out(slot_, nullptr);
  out.EncodeRef(ActorRef(), slot_);
  EXPECT_TRUE(out.status().ok());
  EXPECT_TRUE(slot_.isNull());

  WireReader in(slot_.asReader(), nullptr);
  absl::StatusOr<ActorRef> ref = in.DecodeRef(slot_.asReader(), "troupe::Target");
  ASSERT_TRUE(ref.ok());
  EXPECT_FALSE(*ref);
}

TEST_F(CodecTest, ARefIsTheAddressTheRefCodecWrites) {
  Ref<Target> target = sys_.Spawn<Target>();
  WireWriter out(slot_, &refs_);
  out.EncodeRef(target, slot_);
  EXPECT_TRUE(out.status().ok());
  wire::ActorAddress::Reader address = slot_.asReader().getAs<wire::ActorAddress>();
  EXPECT_EQ(address.getNode(), "node-a");
  EXPECT_EQ(address.getIncarnation(), 3u);
  EXPECT_EQ(address.getActor(), target.id());
}

TEST_F(CodecTest, AnAddressIsDecodedByTheRefCodecWithTheDeclaredType) {
  Ref<Target> target = sys_.Spawn<Target>();
  WireWriter out(slot_, &refs_);
  out.EncodeRef(target, slot_);
  refs_.answer = target;
  WireReader in(slot_.asReader(), &refs_);
  absl::StatusOr<ActorRef> ref = in.DecodeRef(slot_.asReader(), "troupe::Target");
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(*ref, target);
  ASSERT_EQ(refs_.decoded.size(), 1u);
  EXPECT_EQ(refs_.decoded[0], "node-a/" + std::to_string(target.id()) + "/troupe::Target");
}

TEST_F(CodecTest, WithoutARefCodecARefCannotTravel) {
  Ref<Target> target = sys_.Spawn<Target>();
  WireWriter out(slot_, nullptr);
  out.EncodeRef(target, slot_);
  EXPECT_EQ(out.status(), absl::FailedPreconditionError("a Ref inside a message needs a troupe::Node to travel"));

  WireWriter with_codec(slot_, &refs_);
  with_codec.EncodeRef(target, slot_);
  WireReader in(slot_.asReader(), nullptr);
  EXPECT_EQ(in.DecodeRef(slot_.asReader(), "").status(),
            absl::FailedPreconditionError("a Ref inside a message needs a troupe::Node to travel"));
}

TEST_F(CodecTest, TheWriterKeepsTheFirstError) {
  Ref<Target> target = sys_.Spawn<Target>();
  refs_.encode_status = absl::UnavailableError("first");
  WireWriter out(slot_, &refs_);
  out.EncodeRef(target, slot_);
  refs_.encode_status = absl::InternalError("second");
  capnp::MallocMessageBuilder other;
  out.EncodeRef(target, other.getRoot<capnp::AnyPointer>());
  out.Fail(absl::InternalError("third"));
  EXPECT_EQ(out.status(), absl::UnavailableError("first"));
}

TEST_F(CodecTest, AnAddressSlotHoldingAListThrowsForTheGeneratedDecodeToCatch) {
  slot_.initAs<capnp::List<int64_t>>(2);
  WireReader in(slot_.asReader(), &refs_);
  EXPECT_THROW((void)in.DecodeRef(slot_.asReader(), ""), kj::Exception);
  EXPECT_TRUE(refs_.decoded.empty());
}

}  // namespace
}  // namespace troupe
