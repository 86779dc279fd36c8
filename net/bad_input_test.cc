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
constexpr uint32_t kHeartbeatIntervalMs = 100;
constexpr uint32_t kHeartbeatTimeoutMs = 600;

// The stretched key of `secret`, computed once per secret: PBKDF2 takes a
// good part of the node's 300 ms handshake deadline under the sanitizers,
// and the deadline runs from the connect.
const std::string& KeyOf(const std::string& secret) {
  static std::mutex mu;
  static std::map<std::string, std::string> keys;
  std::lock_guard<std::mutex> lock(mu);
  auto [it, inserted] = keys.try_emplace(secret);
  if (inserted) it->second = net::ClusterKey(secret);
  return it->second;
}

// A TCP client speaking (or not speaking) the node protocol by hand.
class RawPeer {
 public:
  explicit RawPeer(const std::string& address) {
    std::pair<std::string, std::string> hp = absl::StrSplit(address, absl::MaxSplits(':', 1));
    int port = 0;
    EXPECT_TRUE(absl::SimpleAtoi(hp.second, &port));
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, hp.first.c_str(), &sa.sin_addr);
    EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0) << strerror(errno);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  ~RawPeer() { close(fd_); }

  void SendBytes(std::string_view bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;  // the node may already have closed: that is what tests check
      done += static_cast<size_t>(n);
    }
  }

  void SendFrame(capnp::MessageBuilder& message) { SendPayload(Serialize(message)); }

  void SendPayload(const std::string& payload) {
    std::string frame(4, '\0');
    const uint32_t n = static_cast<uint32_t>(payload.size());
    for (int i = 0; i < 4; ++i) frame[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
    SendBytes(frame + payload);
  }

  // The next frame's payload, or nullopt on close or after `timeout`.
  std::optional<std::string> ReadPayload(absl::Duration timeout = kWait) {
    std::string prefix;
    if (!ReadExactly(4, timeout, prefix)) return std::nullopt;
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n |= static_cast<uint32_t>(static_cast<uint8_t>(prefix[i])) << (8 * i);
    std::string payload;
    if (!ReadExactly(n, timeout, payload)) return std::nullopt;
    return payload;
  }

  // The next reply frame's payload, skipping heartbeats (bounded).
  std::optional<std::string> ReadReply() {
    for (int i = 0; i < 100; ++i) {
      std::optional<std::string> payload = ReadPayload();
      if (!payload) return payload;
      bool is_reply = false;
      Read(*payload, [&](wire::Frame::Reader f) { is_reply = f.which() == wire::Frame::REPLY; });
      if (is_reply) return payload;
    }
    return std::nullopt;
  }

  // Waits (bounded) for the node to close the connection; frames it sends
  // first are skipped.
  bool WaitClosed(absl::Duration timeout = kWait) {
    const absl::Time deadline = absl::Now() + timeout;
    char buf[4096];
    while (absl::Now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now())) + 1) <= 0) continue;
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return true;
    }
    return false;
  }

  // True if the connection is still open after a round trip's worth of
  // waiting for anything.
  bool StillOpen(absl::Duration wait) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(wait))) == 0) return true;
    char c;
    return recv(fd_, &c, 1, MSG_PEEK) > 0;
  }

  // The connector's side of the handshake (protocol 2), with the
  // heartbeat settings of the node under test. Returns the `refused` text
  // if the node refused, or "" once authenticated.
  std::string Handshake(const std::string& secret, const std::string& name = "raw") {
    const std::string& key = KeyOf(secret);
    const std::string challenge = net::NewChallenge();
    std::string mine;
    {
      capnp::MallocMessageBuilder m;
      wire::Hello::Builder hello = m.initRoot<wire::Frame>().initHello();
      hello.setMinVersion(net::kMinProtocolVersion);
      hello.setMaxVersion(net::kMaxProtocolVersion);
      hello.setNode(name);
      hello.setIncarnation(1);
      hello.setChallenge(Bytes(challenge));
      hello.setHeartbeatIntervalMs(kHeartbeatIntervalMs);
      hello.setHeartbeatTimeoutMs(kHeartbeatTimeoutMs);
      hello.setMaxFrameBytes(1 << 20);
      mine = Serialize(m);
      SendPayload(mine);
    }
    std::optional<std::string> theirs = ReadPayload();
    if (!theirs) return "closed";
    std::string refused;
    Read(*theirs, [&](wire::Frame::Reader f) {
      if (f.which() == wire::Frame::REFUSED) refused = f.getRefused().cStr();
    });
    if (!refused.empty()) return refused;
    capnp::MallocMessageBuilder m;
    const std::string transcript = net::Transcript(mine, *theirs);
    m.initRoot<wire::Frame>().setProof(Bytes(net::HandshakeMac(key, net::Role::kConnect, transcript)));
    SendFrame(m);
    std::optional<std::string> next = ReadPayload(absl::Seconds(5));
    if (!next) return "closed";
    Read(*next, [&](wire::Frame::Reader f) {
      if (f.which() == wire::Frame::REFUSED) refused = f.getRefused().cStr();
      if (f.which() == wire::Frame::PROOF) {
        const std::string proof(reinterpret_cast<const char*>(f.getProof().begin()), f.getProof().size());
        if (!net::CheckProof(key, net::Role::kAccept, transcript, "node", proof).ok()) {
          refused = "the node's proof is wrong";
        }
      }
    });
    return refused;
  }

  static std::string Serialize(capnp::MessageBuilder& message) {
    kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
    return std::string(reinterpret_cast<const char*>(words.begin()), words.size() * sizeof(capnp::word));
  }

  template <class Fn>
  static void Read(const std::string& payload, Fn&& fn) {
    kj::Array<capnp::word> words = kj::heapArray<capnp::word>(payload.size() / sizeof(capnp::word));
    std::memcpy(words.begin(), payload.data(), payload.size());
    capnp::FlatArrayMessageReader reader(words);
    fn(reader.getRoot<wire::Frame>());
  }

  static kj::ArrayPtr<const kj::byte> Bytes(const std::string& s) {
    return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
  }

 private:
  bool ReadExactly(size_t n, absl::Duration timeout, std::string& out) {
    const absl::Time deadline = absl::Now() + timeout;
    out.resize(n);
    size_t done = 0;
    while (done < n) {
      if (absl::Now() >= deadline) return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now())) + 1) <= 0) continue;
      ssize_t got = recv(fd_, out.data() + done, n - done, 0);
      if (got <= 0) return false;
      done += static_cast<size_t>(got);
    }
    return true;
  }

  int fd_ = -1;
};

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
