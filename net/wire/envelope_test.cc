// Round trips of the node frames through their generated Cap'n Proto code,
// and the reader's refusal of bytes that are not a frame.

#include "net/wire/envelope.capnp.h"
#include "net/wire/troupe.capnp.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace troupe::wire {
namespace {

kj::Array<capnp::word> EncodeSend(uint64_t target, uint64_t request_id, uint64_t payload_actor) {
  capnp::MallocMessageBuilder message;
  Envelope::Builder envelope = message.initRoot<Frame>().initSend();
  envelope.setTarget(target);
  envelope.setRequestId(request_id);
  envelope.setTypeId(capnp::typeId<ActorAddress>());
  ActorAddress::Builder address = envelope.initPayload().initAs<ActorAddress>();
  address.setNode("b");
  address.setActor(payload_actor);
  return capnp::messageToFlatArray(message);
}

TEST(Envelope, SendFrameRoundTripsTargetRequestTypeAndPayload) {
  kj::Array<capnp::word> bytes = EncodeSend(42, 7, 99);
  capnp::FlatArrayMessageReader reader(bytes);
  Frame::Reader frame = reader.getRoot<Frame>();
  ASSERT_EQ(frame.which(), Frame::SEND);
  Envelope::Reader envelope = frame.getSend();
  EXPECT_EQ(envelope.getTarget(), 42u);
  EXPECT_EQ(envelope.getRequestId(), 7u);
  EXPECT_EQ(envelope.getTypeId(), capnp::typeId<ActorAddress>());
  ActorAddress::Reader address = envelope.getPayload().getAs<ActorAddress>();
  EXPECT_EQ(std::string(address.getNode().cStr()), "b");
  EXPECT_EQ(address.getActor(), 99u);
}

TEST(Envelope, GarbageIsRefusedWithAnExceptionNotACrash) {
  kj::Array<capnp::word> garbage = kj::heapArray<capnp::word>(4);
  for (int i = 0; i < 4; ++i) {
    uint64_t v = 0xFFFFFFFF00000000ull + static_cast<uint64_t>(i);
    std::memcpy(garbage.asBytes().begin() + i * sizeof(v), &v, sizeof(v));
  }
  kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(garbage);
    (void)reader.getRoot<Frame>().which();
  });
  EXPECT_TRUE(error != nullptr);
}

}  // namespace
}  // namespace troupe::wire
