// Bad input from the network, each case from a raw socket against a
// listening node: the connection is closed (or, for an unknown target, the
// message dropped and counted), the node counts it, and another node's
// connection and the actors carry on.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "actors/actor.h"
#include "actors/actor_system.h"
#include "capnp/message.h"
#include "capnp/serialize.h"
#include "gtest/gtest.h"
#include "net/handshake.h"
#include "net/raw_peer_test_util.h"
#include "net/node.h"
#include "net/testdata/node_test_messages.troupe.h"
#include "net/wire/envelope.capnp.h"

namespace troupe::nettest {

struct Target : Actor<Target> {
  using Remote = Accepts<Add, Get>;
  void On(const Add& m) { n += m.by; }
  int64_t On(const Get&) { return n; }
  int64_t n = 0;
};

namespace {

constexpr char kSecret[] = "bad-input-secret";
const absl::Duration kWait = absl::Seconds(20);
constexpr uint32_t kHeartbeatIntervalMs = kRawHeartbeatIntervalMs;
constexpr uint32_t kHeartbeatTimeoutMs = kRawHeartbeatTimeoutMs;

class BadInput : public ::testing::Test {
 protected:
  BadInput() : a_sys_({.workers = 1, .name = "a"}), b_sys_({.workers = 1, .name = "b"}) {
    NodeOptions o;
    o.name = "a";
    o.cluster_secret = kSecret;
    o.handshake_timeout = absl::Milliseconds(300);
    o.frame_timeout = absl::Milliseconds(300);
    o.max_frame_bytes = 1 << 20;
    // Before any raw peer connects: see KeyOf.
    (void)KeyOf(kSecret);
    (void)KeyOf("wrong");
    o.heartbeat_interval = absl::Milliseconds(kHeartbeatIntervalMs);
    o.heartbeat_timeout = absl::Milliseconds(kHeartbeatTimeoutMs);
    a_ = std::make_unique<Node>(a_sys_, o);
    address_ = a_->Listen("127.0.0.1:0").value();
    target_ = a_sys_.Spawn<Target>();
    EXPECT_TRUE(a_->Publish("target", target_).ok());
    NodeOptions ob;
    ob.name = "b";
    ob.cluster_secret = kSecret;
    ob.heartbeat_interval = o.heartbeat_interval;  // the same settings: the handshake checks
    ob.heartbeat_timeout = o.heartbeat_timeout;
    b_ = std::make_unique<Node>(b_sys_, ob);
    // A healthy connection, open before the bad one and checked after it.
    healthy_ = b_->Lookup<Target>(address_, "target").Wait(kWait).value();
    healthy_.Tell(Add{.by = 1});
  }
  ~BadInput() override {
    b_.reset();
    a_.reset();
  }

  // The healthy connection and the target are undisturbed.
  void ExpectOthersUndisturbed() {
    EXPECT_EQ(healthy_.Ask(Get{}, kWait).Wait(kWait).value(), 1);
    EXPECT_EQ(b_->stats().connections, 1u);
  }

  // A send frame to `actor` of a's incarnation (or `incarnation`) with
  // `type_id` and an Add payload.
  void BuildSend(capnp::MallocMessageBuilder& m, uint64_t actor, uint64_t request_id, uint64_t type_id,
                 uint64_t incarnation = 0) {
    wire::Envelope::Builder e = m.initRoot<wire::Frame>().initSend();
    e.setTarget(actor);
    e.setTargetIncarnation(incarnation != 0 ? incarnation : a_->incarnation());
    e.setRequestId(request_id);
    e.setTypeId(type_id);
    e.initPayload().initAsAnyStruct(1, 0);
  }

  ActorSystem a_sys_, b_sys_;
  std::unique_ptr<Node> a_, b_;
  std::string address_;
  Ref<Target> target_, healthy_;
};

TEST_F(BadInput, GarbageBytesCloseTheConnection) {
  RawPeer raw(address_);
  raw.SendBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n");  // "GET " is a 542 MB length
  EXPECT_TRUE(raw.WaitClosed());
  ExpectOthersUndisturbed();
  EXPECT_GE(a_->stats().handshakes_failed, 1u);
}

TEST_F(BadInput, AFrameThatIsNotCapnProtoClosesTheConnection) {
  RawPeer raw(address_);
  raw.SendPayload(std::string(64, '\x7f'));
  EXPECT_TRUE(raw.WaitClosed());
  ExpectOthersUndisturbed();
  EXPECT_GE(a_->stats().handshakes_failed, 1u);
}

TEST_F(BadInput, AnOversizedLengthPrefixClosesTheConnectionBeforeAllocating) {
  RawPeer raw(address_);
  raw.SendBytes(std::string("\xff\xff\xff\x7f", 4));  // 2 GiB
  EXPECT_TRUE(raw.WaitClosed());
  ExpectOthersUndisturbed();
}

TEST_F(BadInput, ATruncatedFrameIsClosedByTheFrameTimeout) {
  RawPeer raw(address_);
  raw.SendBytes(std::string("\x64\x00\x00\x00", 4) + std::string(10, '\0'));  // 100 announced, 10 sent
  EXPECT_TRUE(raw.WaitClosed());
  ExpectOthersUndisturbed();
}

TEST_F(BadInput, APeerThatConnectsAndSendsNothingIsClosedByTheHandshakeDeadline) {
  RawPeer raw(address_);
  EXPECT_TRUE(raw.WaitClosed());
  ExpectOthersUndisturbed();
  EXPECT_GE(a_->stats().handshakes_failed, 1u);
}

TEST_F(BadInput, APeerTricklingOneByteAtATimeIsClosed) {
  RawPeer raw(address_);
  std::string frame(4, '\0');
  frame[0] = 64;
  frame += std::string(64, '\0');
  bool closed = false;
  // One byte per 50 ms wait: the frame would take 3.4 s, the frame timeout
  // is 300 ms. Bounded by the frame's length.
  for (size_t i = 0; i < frame.size() && !closed; ++i) {
    raw.SendBytes(frame.substr(i, 1));
    closed = !raw.StillOpen(absl::Milliseconds(50));
  }
  EXPECT_TRUE(closed || raw.WaitClosed());
  ExpectOthersUndisturbed();
}

TEST_F(BadInput, AWrongSecretIsRefusedWithTheReason) {
  RawPeer raw(address_);
  EXPECT_NE(raw.Handshake("wrong").find("wrong cluster secret"), std::string::npos);
  EXPECT_TRUE(raw.WaitClosed());
  ExpectOthersUndisturbed();
  EXPECT_GE(a_->stats().handshakes_failed, 1u);
}

TEST_F(BadInput, MalformedCapnProtoPointersCloseTheConnection) {
  RawPeer raw(address_);
  ASSERT_EQ(raw.Handshake(kSecret), "");
  // One segment of two words whose root struct pointer points 1000 words
  // past its end.
  std::string payload(24, '\0');
  const uint32_t table[2] = {0, 2};
  std::memcpy(payload.data(), table, sizeof(table));
  const uint64_t root = (uint64_t{1000} << 2) | (uint64_t{1} << 32);
  std::memcpy(payload.data() + 8, &root, sizeof(root));
  raw.SendPayload(payload);
  EXPECT_TRUE(raw.WaitClosed());
  ExpectOthersUndisturbed();
  EXPECT_GE(a_->stats().bad_frames, 1u);
}

TEST_F(BadInput, AnUnknownTypeIdIsRefusedAloneAndAnAskForItSaysWhichActorRefusedIt) {
  RawPeer raw(address_);
  ASSERT_EQ(raw.Handshake(kSecret), "");
  {
    capnp::MallocMessageBuilder m;
    BuildSend(m, target_.id(), 0, 0x1234);
    raw.SendFrame(m);
  }
  capnp::MallocMessageBuilder m;
  BuildSend(m, target_.id(), 78, 0x1234);
  raw.SendFrame(m);
  std::optional<std::string> reply = raw.ReadReply();
  ASSERT_TRUE(reply.has_value());
  RawPeer::Read(*reply, [&](wire::Frame::Reader f) {
    EXPECT_EQ(f.getReply().getRequestId(), 78u);
    EXPECT_EQ(f.getReply().getCode(), static_cast<uint32_t>(absl::StatusCode::kInvalidArgument));
    EXPECT_EQ(std::string(f.getReply().getRefusedBy().cStr()), "troupe::nettest::Target");
    EXPECT_TRUE(f.getReply().getRefusedAcceptsSome());
    EXPECT_NE(std::string(f.getReply().getMessage().cStr()).find("does not accept messages of type id 4660"),
              std::string::npos)
        << f.getReply().getMessage().cStr();
  });
  EXPECT_EQ(a_->stats().unknown_types, 2u);
  EXPECT_EQ(a_->stats().bad_frames, 0u);
  EXPECT_TRUE(raw.StillOpen(absl::Milliseconds(100)));
  ExpectOthersUndisturbed();
}

TEST_F(BadInput, AMessageForAnEarlierIncarnationIsNeverDeliveredAndAnAskSaysTheNodeRestarted) {
  RawPeer raw(address_);
  ASSERT_EQ(raw.Handshake(kSecret), "");
  const uint64_t earlier = a_->incarnation() - (uint64_t{1} << 20);
  {
    capnp::MallocMessageBuilder m;
    BuildSend(m, target_.id(), 0, WireTraits<Add>::kTypeId, earlier);
    raw.SendFrame(m);
  }
  capnp::MallocMessageBuilder m;
  BuildSend(m, target_.id(), 79, WireTraits<Get>::kTypeId, earlier);
  raw.SendFrame(m);
  std::optional<std::string> reply = raw.ReadReply();
  ASSERT_TRUE(reply.has_value());
  RawPeer::Read(*reply, [&](wire::Frame::Reader f) {
    EXPECT_EQ(f.getReply().getRequestId(), 79u);
    EXPECT_EQ(f.getReply().getCode(), static_cast<uint32_t>(absl::StatusCode::kUnavailable));
    EXPECT_NE(std::string(f.getReply().getMessage().cStr()).find("which has restarted"), std::string::npos)
        << f.getReply().getMessage().cStr();
  });
  EXPECT_EQ(a_->stats().stale_incarnation, 2u);
  EXPECT_TRUE(raw.StillOpen(absl::Milliseconds(100)));
  ExpectOthersUndisturbed();  // the Add through the earlier incarnation did not land: still 1
}

TEST_F(BadInput, TheNodeProvesNothingBeforeTheConnectorHasProvenItself) {
  RawPeer raw(address_);
  capnp::MallocMessageBuilder m;
  wire::Hello::Builder hello = m.initRoot<wire::Frame>().initHello();
  hello.setMinVersion(net::kMinProtocolVersion);
  hello.setMaxVersion(net::kMaxProtocolVersion);
  hello.setNode("stranger");
  hello.setIncarnation(1);
  const std::string challenge = net::NewChallenge();
  hello.setChallenge(RawPeer::Bytes(challenge));
  hello.setHeartbeatIntervalMs(kHeartbeatIntervalMs);
  hello.setHeartbeatTimeoutMs(kHeartbeatTimeoutMs);
  raw.SendFrame(m);
  std::optional<std::string> theirs = raw.ReadPayload();
  ASSERT_TRUE(theirs.has_value());
  RawPeer::Read(*theirs, [&](wire::Frame::Reader f) {
    ASSERT_EQ(f.which(), wire::Frame::HELLO);
    EXPECT_FALSE(f.getHello().hasProofV1());
    EXPECT_EQ(f.getHello().getMinVersion(), f.getHello().getMaxVersion());  // the version chosen
  });
  // Nothing more comes until the connector proves itself; a wrong proof is
  // refused and answered with no proof of the node's.
  EXPECT_FALSE(raw.ReadPayload(absl::Milliseconds(100)).has_value());
  capnp::MallocMessageBuilder p;
  p.initRoot<wire::Frame>().setProof(RawPeer::Bytes(std::string(net::kMacBytes, 'x')));
  raw.SendFrame(p);
  std::optional<std::string> answer = raw.ReadPayload();
  ASSERT_TRUE(answer.has_value());
  RawPeer::Read(*answer, [&](wire::Frame::Reader f) {
    ASSERT_EQ(f.which(), wire::Frame::REFUSED);
    EXPECT_NE(std::string(f.getRefused().cStr()).find("wrong cluster secret"), std::string::npos);
  });
  EXPECT_TRUE(raw.WaitClosed());
  ExpectOthersUndisturbed();
}

TEST_F(BadInput, TooManyUnauthenticatedConnectionsFromOneAddressCloseTheOldestFirst) {
  // A node of its own, whose handshake deadline outlasts the test.
  ActorSystem c_sys({.workers = 1, .name = "c"});
  NodeOptions o;
  o.name = "c";
  o.cluster_secret = kSecret;
  o.heartbeat_interval = absl::Milliseconds(kHeartbeatIntervalMs);
  o.heartbeat_timeout = absl::Milliseconds(kHeartbeatTimeoutMs);
  o.max_unauthenticated_per_source = 8;
  Node c(c_sys, o);
  const std::string c_address = c.Listen("127.0.0.1:0").value();
  std::vector<std::unique_ptr<RawPeer>> raws;
  for (int i = 0; i < 12; ++i) {
    raws.push_back(std::make_unique<RawPeer>(c_address));
    // Each is admitted before the next connects: the first answer to a
    // hello says the node has taken it.
    capnp::MallocMessageBuilder m;
    wire::Hello::Builder hello = m.initRoot<wire::Frame>().initHello();
    hello.setMinVersion(net::kMinProtocolVersion);
    hello.setMaxVersion(net::kMaxProtocolVersion);
    hello.setNode("stranger");
    hello.setChallenge(RawPeer::Bytes(net::NewChallenge()));
    hello.setHeartbeatIntervalMs(kHeartbeatIntervalMs);
    hello.setHeartbeatTimeoutMs(kHeartbeatTimeoutMs);
    raws.back()->SendFrame(m);
    ASSERT_TRUE(raws.back()->ReadPayload().has_value()) << i;
  }
  // 8 from one address at most: the 4 oldest are closed, the rest are not.
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(raws[i]->WaitClosed()) << i;
  for (int i = 4; i < 12; ++i) EXPECT_TRUE(raws[i]->StillOpen(absl::Milliseconds(10))) << i;
  EXPECT_EQ(c.stats().unauthenticated_closed, 4u);
  ExpectOthersUndisturbed();
}

TEST_F(BadInput, AnUnknownTargetIsDroppedAndCountedAndAnAskForItIsNotFound) {
  RawPeer raw(address_);
  ASSERT_EQ(raw.Handshake(kSecret), "");
  {
    capnp::MallocMessageBuilder m;
    BuildSend(m, 987654321, 0, WireTraits<Add>::kTypeId);
    raw.SendFrame(m);
  }
  capnp::MallocMessageBuilder m;
  BuildSend(m, 987654321, 77, WireTraits<Get>::kTypeId);
  raw.SendFrame(m);
  std::optional<std::string> reply = raw.ReadReply();
  ASSERT_TRUE(reply.has_value());
  RawPeer::Read(*reply, [&](wire::Frame::Reader f) {
    EXPECT_EQ(f.getReply().getRequestId(), 77u);
    EXPECT_EQ(f.getReply().getCode(), static_cast<uint32_t>(absl::StatusCode::kNotFound));
  });
  EXPECT_EQ(a_->stats().unknown_targets, 2u);
  EXPECT_TRUE(raw.StillOpen(absl::Milliseconds(100)));
  ExpectOthersUndisturbed();
}

TEST_F(BadInput, AnAuthenticatedPeerThatFallsSilentIsClosedByTheHeartbeatTimeout) {
  RawPeer raw(address_);
  ASSERT_EQ(raw.Handshake(kSecret), "");
  // The node's heartbeats keep coming; the raw peer sends none.
  EXPECT_TRUE(raw.WaitClosed());
  ExpectOthersUndisturbed();
  EXPECT_GE(a_->stats().bad_frames, 1u);
}

TEST_F(BadInput, AFrameBeforeTheHandshakeClosesTheConnection) {
  RawPeer raw(address_);
  capnp::MallocMessageBuilder m;
  BuildSend(m, target_.id(), 0, WireTraits<Add>::kTypeId);
  raw.SendFrame(m);
  EXPECT_TRUE(raw.WaitClosed());
  ExpectOthersUndisturbed();
  EXPECT_GE(a_->stats().handshakes_failed, 1u);
}

}  // namespace
}  // namespace troupe::nettest
