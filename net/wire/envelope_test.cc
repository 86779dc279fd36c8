// Round trips of the wire envelope through its generated Cap'n Proto code.

#include "net/wire/envelope.capnp.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <concurrentqueue/concurrentqueue.h>
#include <kj/exception.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace troupe::wire {
namespace {

using Frame = kj::Array<capnp::word>;

struct Decoded {
  std::string target_node;
  uint64_t target_actor = 0;
  uint64_t request_id = 0;
  uint64_t type_id = 0;
  uint64_t payload_actor = 0;
};

Frame Encode(uint64_t actor, uint64_t request_id, uint64_t payload_actor) {
  capnp::MallocMessageBuilder message;
  Envelope::Builder envelope = message.initRoot<Envelope>();
  ActorAddress::Builder target = envelope.initTarget();
  target.setNode("127.0.0.1:7000");
  target.setIncarnation(7);
  target.setActor(actor);
  envelope.setRequestId(request_id);
  envelope.setTypeId(capnp::typeId<ActorAddress>());
  envelope.getPayload().initAs<ActorAddress>().setActor(payload_actor);
  return capnp::messageToFlatArray(message);
}

absl::StatusOr<Decoded> Decode(kj::ArrayPtr<const capnp::word> frame) {
  Decoded out;
  kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(frame);
    Envelope::Reader envelope = reader.getRoot<Envelope>();
    out.target_node = envelope.getTarget().getNode().cStr();
    out.target_actor = envelope.getTarget().getActor();
    out.request_id = envelope.getRequestId();
    out.type_id = envelope.getTypeId();
    out.payload_actor = envelope.getPayload().getAs<ActorAddress>().getActor();
  });
  KJ_IF_MAYBE(e, error) {
    return absl::InvalidArgumentError(absl::StrCat("bad envelope: ", e->getDescription().cStr()));
  }
  return out;
}

TEST(Envelope, RoundTripsEveryField) {
  Frame frame = Encode(/*actor=*/42, /*request_id=*/9, /*payload_actor=*/1234);
  absl::StatusOr<Decoded> decoded = Decode(frame);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->target_node, "127.0.0.1:7000");
  EXPECT_EQ(decoded->target_actor, 42u);
  EXPECT_EQ(decoded->request_id, 9u);
  EXPECT_EQ(decoded->type_id, capnp::typeId<ActorAddress>());
  EXPECT_EQ(decoded->payload_actor, 1234u);
}

TEST(Envelope, TruncatedFrameIsAClearError) {
  Frame frame = Encode(1, 2, 3);
  ASSERT_GT(frame.size(), 2u);
  absl::StatusOr<Decoded> decoded = Decode(frame.slice(0, frame.size() - 2));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(decoded.status().message().find("bad envelope"), std::string::npos);
}

// Frames encoded on several threads and passed through one moodycamel queue,
// as a connection's outbound queue will carry them, arrive intact and in
// order per producer.
TEST(Envelope, FramesFromManyProducersArriveIntactAndInOrder) {
  constexpr int kProducers = 4;
  constexpr uint64_t kPerProducer = 2000;
  moodycamel::ConcurrentQueue<Frame> queue(/*capacity=*/64);

  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&queue, p] {
      moodycamel::ProducerToken token(queue);
      for (uint64_t i = 1; i <= kPerProducer; ++i) {
        ASSERT_TRUE(queue.enqueue(token, Encode(p, i, p * kPerProducer + i)));
      }
    });
  }

  std::vector<uint64_t> last(kProducers, 0);
  uint64_t received = 0;
  Frame frame;
  while (received < kProducers * kPerProducer) {
    if (!queue.try_dequeue(frame)) {
      std::this_thread::yield();
      continue;
    }
    absl::StatusOr<Decoded> decoded = Decode(frame);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    const uint64_t p = decoded->target_actor;
    ASSERT_LT(p, static_cast<uint64_t>(kProducers));
    EXPECT_EQ(decoded->request_id, last[p] + 1) << "producer " << p;
    EXPECT_EQ(decoded->payload_actor, p * kPerProducer + decoded->request_id);
    last[p] = decoded->request_id;
    ++received;
  }
  for (std::thread& t : producers) t.join();
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(last[p], kPerProducer);
}

}  // namespace
}  // namespace troupe::wire
