#include "net/fuzz/node_seeds.h"

#include <string>
#include <string_view>
#include <utility>

#include "capnp/any.h"
#include "net/fuzz/node_fuzz_messages.troupe.h"
#include "net/fuzz/node_target.h"
#include "net/fuzz/seeds.h"
#include "net/handshake.h"
#include "net/wire/codec.h"
#include "net/wire/envelope.capnp.h"
#include "net/wire/troupe.capnp.h"

namespace troupe::net::fuzz {
namespace {

constexpr size_t kCounter = 0, kMute = 1, kTiny = 2;  // kTestActors

kj::ArrayPtr<const kj::byte> Data(std::string_view s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

template <class M>
void Encode(capnp::AnyPointer::Builder slot, const M& message) {
  WireWriter writer(slot, nullptr);  // no Refs in these values
  WireTraits<M>::Encode(message, writer);
}

// A send to test actor `k` of this incarnation (tokens, see node_target.h).
template <class M>
Bytes SendTo(size_t k, uint64_t request_id, const M& message) {
  return OneFrame([&](wire::Frame::Builder f) {
    wire::Envelope::Builder e = f.initSend();
    e.setTarget(TokenActor(k));
    e.setTargetIncarnation(kTokenIncarnation);
    e.setRequestId(request_id);
    e.setTypeId(WireTraits<M>::kTypeId);
    Encode(e.initPayload(), message);
  });
}

void FillAddress(wire::ActorAddress::Builder a, std::string_view node, uint64_t incarnation, uint64_t actor,
                 std::string_view address) {
  a.setNode(std::string(node));
  a.setIncarnation(incarnation);
  a.setActor(actor);
  a.setAddress(std::string(address));
}

// A Post whose author is this node's counter and whose replyTo is an actor
// of a node this one never met: both Ref paths of RefTable::Decode.
Bytes PostWithRefs(uint64_t request_id) {
  return OneFrame([&](wire::Frame::Builder f) {
    wire::Envelope::Builder e = f.initSend();
    e.setTarget(TokenActor(kCounter));
    e.setTargetIncarnation(kTokenIncarnation);
    e.setRequestId(request_id);
    e.setTypeId(WireTraits<fuzzmsg::Post>::kTypeId);
    Encode(e.initPayload(), fuzzmsg::Post{.seq = 3,
                                          .mood = fuzzmsg::Mood::kLoud,
                                          .at = {.x = 1, .y = -1},
                                          .path = {{.x = 2, .y = 3}, {.x = 4, .y = 5}},
                                          .author = {},
                                          .reply_to = {},
                                          .grid = {{1, 2}, {}, {3}}});
    // The Refs, written as addresses: pointer slots 2 (author) and 3
    // (replyTo) of Post, in field order.
    capnp::List<capnp::AnyPointer>::Builder pointers =
        e.getPayload().getAs<capnp::AnyStruct>().getPointerSection();
    FillAddress(pointers[2].initAs<wire::ActorAddress>(), kNodeName, kTokenIncarnation, TokenActor(kCounter), "");
    FillAddress(pointers[3].initAs<wire::ActorAddress>(), "elsewhere", 77, 5, "127.0.0.1:9");
  });
}

Bytes Lookup(uint64_t request_id, std::string_view name, std::string_view type) {
  return OneFrame([&](wire::Frame::Builder f) {
    wire::Lookup::Builder l = f.initLookup();
    l.setRequestId(request_id);
    l.setName(std::string(name));
    l.setActorType(std::string(type));
  });
}

Bytes Spawn(uint64_t request_id, std::string_view type, uint64_t args_type, const fuzzmsg::CounterArgs* args) {
  return OneFrame([&](wire::Frame::Builder f) {
    wire::Spawn::Builder s = f.initSpawn();
    s.setRequestId(request_id);
    s.setActorType(std::string(type));
    s.setArgsTypeId(args_type);
    if (args != nullptr) Encode(s.initArgs(), *args);
  });
}

Bytes Watch(uint64_t actor, uint64_t incarnation) {
  return OneFrame([&](wire::Frame::Builder f) {
    wire::Watch::Builder w = f.initWatch();
    w.setActor(actor);
    w.setIncarnation(incarnation);
  });
}

Bytes Stop(uint64_t target) {
  return OneFrame([&](wire::Frame::Builder f) {
    wire::Stop::Builder s = f.initStop();
    s.setTarget(target);
    s.setTargetIncarnation(kTokenIncarnation);
    s.setCode(1);
    s.setMessage("stopped by the fuzzer");
  });
}

// A connector's hello as the fuzz node expects it, but for `change`.
template <class Change>
Bytes RawHello(Change&& change) {
  return OneFrame([&](wire::Frame::Builder f) {
    wire::Hello::Builder h = f.initHello();
    h.setMinVersion(kMinProtocolVersion);
    h.setMaxVersion(kMaxProtocolVersion);
    h.setNode("raw-peer");
    h.setIncarnation(1);
    h.setAddress("");
    h.setChallenge(Data(std::string(kChallengeBytes, 'c')));
    h.setHeartbeatIntervalMs(3600000);  // node_target.cc's settings
    h.setHeartbeatTimeoutMs(7200000);
    h.setMaxFrameBytes(1 << 20);
    change(h);
  });
}
Bytes RawHello() {
  return RawHello([](wire::Hello::Builder) {});
}

Bytes Mode(uint8_t mode, std::initializer_list<Bytes> frames) {
  Bytes out{mode};
  const Bytes rest = Concat(frames);
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

}  // namespace

std::vector<NodeSeed> MakeNodeSeeds() {
  std::vector<NodeSeed> seeds;
  auto auth = [&](std::string name, std::initializer_list<Bytes> frames, size_t replies, size_t downs = 0,
                  bool closes = false) {
    seeds.push_back(NodeSeed{"auth-" + name, Mode(kModeAuthenticated, frames), closes, replies, downs});
  };
  auto raw = [&](std::string name, std::initializer_list<Bytes> frames, bool closes) {
    seeds.push_back(NodeSeed{"raw-" + name, Mode(kModeRaw, frames), closes, 0, 0});
  };
  const Bytes heartbeat = OneFrame([](wire::Frame::Builder f) { f.setHeartbeat(); });
  const fuzzmsg::CounterArgs args{.start = 40};

  // --- After the handshake: traffic.
  auth("tell-add", {SendTo(kCounter, 0, fuzzmsg::Add{.by = 2})}, 0);
  auth("ask-get", {SendTo(kCounter, 0, fuzzmsg::Add{.by = 2}), SendTo(kCounter, 7, fuzzmsg::Get{})}, 1);
  auth("ask-echo",
       {SendTo(kCounter, 8, fuzzmsg::Echo{.text = "hi", .tags = {"a", "b"}, .blob = std::string("\0\1\2", 3)})}, 1);
  auth("ask-post-refs", {PostWithRefs(9)}, 1);
  // Refused alone, each answered with an error: a type the target does not
  // accept, an actor that is not there, an earlier incarnation, a payload
  // that does not decode as its type.
  auth("ask-refused-type", {SendTo(kMute, 10, fuzzmsg::Add{.by = 1}), SendTo(kCounter, 11, fuzzmsg::CounterArgs{})},
       2);
  auth("ask-no-such-actor", {OneFrame([](wire::Frame::Builder f) {
         wire::Envelope::Builder e = f.initSend();
         e.setTarget(999999);
         e.setTargetIncarnation(kTokenIncarnation);
         e.setRequestId(12);
         e.setTypeId(WireTraits<fuzzmsg::Get>::kTypeId);
       })},
       1);
  auth("ask-earlier-incarnation", {OneFrame([](wire::Frame::Builder f) {
         wire::Envelope::Builder e = f.initSend();
         e.setTarget(TokenActor(kCounter));
         e.setTargetIncarnation(12345);
         e.setRequestId(13);
         e.setTypeId(WireTraits<fuzzmsg::Get>::kTypeId);
       })},
       1);
  auth("ask-undecodable", {OneFrame([](wire::Frame::Builder f) {
         wire::Envelope::Builder e = f.initSend();
         e.setTarget(TokenActor(kCounter));
         e.setTargetIncarnation(kTokenIncarnation);
         e.setRequestId(14);
         e.setTypeId(WireTraits<fuzzmsg::Echo>::kTypeId);
         capnp::List<capnp::Text>::Builder list = e.initPayload().initAs<capnp::List<capnp::Text>>(1);
         list.set(0, "not an Echo");
       })},
       1);
  // A mailbox of 2: some tells are dropped, the ask is answered either way.
  auth("tiny-burst",
       {SendTo(kTiny, 0, fuzzmsg::Add{.by = 1}), SendTo(kTiny, 0, fuzzmsg::Add{.by = 2}),
        SendTo(kTiny, 0, fuzzmsg::Add{.by = 3}), SendTo(kTiny, 0, fuzzmsg::Add{.by = 4}),
        SendTo(kTiny, 15, fuzzmsg::Get{})},
       1);
  auth("lookups",
       {Lookup(16, "counter", kSpawnCounter), Lookup(17, "nobody", ""), Lookup(18, "mute", kSpawnCounter),
        Lookup(0, "tiny", "")},
       4);
  auth("spawns",
       {Spawn(19, kSpawnCounter, WireTraits<fuzzmsg::CounterArgs>::kTypeId, &args), Spawn(20, kSpawnMute, 0, nullptr),
        Spawn(21, kSpawnCounter, 0, nullptr), Spawn(22, "troupe::Nothing", 0, nullptr)},
       4);
  // A watch of an actor that is not there is answered at once; of one
  // that is, when it stops (here: never during the input).
  auth("watches", {Watch(TokenActor(kCounter), kTokenIncarnation), Watch(4242, kTokenIncarnation),
                   Watch(TokenActor(kMute), 99)},
       0, 2);
  // Stopped by a frame and by a message: down for the watcher, restarted
  // by the harness before the next input.
  auth("stop-watched", {Watch(TokenActor(kTiny), kTokenIncarnation), Stop(TokenActor(kTiny)), Stop(31337)}, 0);
  auth("quit", {SendTo(kCounter, 0, fuzzmsg::Quit{}), SendTo(kCounter, 23, fuzzmsg::Get{})}, 1);
  auth("replies-and-downs-for-nothing", {OneFrame([](wire::Frame::Builder f) {
                                           wire::Reply::Builder r = f.initReply();
                                           r.setRequestId(77);
                                           r.setTypeId(WireTraits<int64_t>::kTypeId);
                                         }),
                                         OneFrame([](wire::Frame::Builder f) {
                                           wire::Reply::Builder r = f.initReply();
                                           r.setRequestId(78);
                                           r.setCode(5);
                                           r.setMessage("not found");
                                           r.setRefusedBy("x");
                                         }),
                                         OneFrame([](wire::Frame::Builder f) {
                                           wire::Down::Builder d = f.initDown();
                                           d.setActor(5);
                                           d.setCode(14);
                                         }),
                                         heartbeat},
       0);
  auth("leave-then-lookup",
       {OneFrame([](wire::Frame::Builder f) { f.setLeave("bye"); }), Lookup(24, "counter", ""),
        Watch(4243, kTokenIncarnation)},
       1);
  // Frames that close the connection: handshake frames after it, an
  // unknown kind, an oversized length.
  auth("hello-after-handshake", {Lookup(25, "counter", ""), RawHello()}, 1, 0, true);
  auth("yield-after-handshake", {OneFrame([](wire::Frame::Builder f) { f.setYield("no"); })}, 0, 0, true);
  {
    Bytes unknown = heartbeat;
    unknown[4 + 8 + 8] = 200;  // the union discriminant: prefix, table, root pointer
    auth("unknown-kind", {unknown}, 0, 0, true);
  }
  {
    Bytes oversized;
    AppendPrefix(oversized, (1u << 20) + 8);
    oversized.resize(64, 0);
    auth("oversized", {heartbeat, oversized}, 0, 0, true);
  }

  // --- Before it: a connector without the secret.
  raw("hello-wrong-proof", {RawHello(), OneFrame([](wire::Frame::Builder f) { f.setProof(Data(std::string(32, 'p'))); })},
      true);
  raw("hello-only", {RawHello()}, false);
  raw("hello-heartbeats-differ", {RawHello([](wire::Hello::Builder h) { h.setHeartbeatIntervalMs(1000); })}, true);
  raw("hello-no-common-version", {RawHello([](wire::Hello::Builder h) {
        h.setMinVersion(3);
        h.setMaxVersion(5);
      })},
      true);
  raw("hello-protocol-1", {RawHello([](wire::Hello::Builder h) {
        h.setMinVersion(1);
        h.setMaxVersion(0);
      })},
      true);
  raw("hello-own-name", {RawHello([](wire::Hello::Builder h) { h.setNode(std::string(kNodeName)); })}, true);
  raw("hello-short-challenge", {RawHello([](wire::Hello::Builder h) { h.setChallenge(Data("short")); })}, true);
  raw("hello-twice", {RawHello(), RawHello()}, true);
  raw("hello-then-yield", {RawHello(), OneFrame([](wire::Frame::Builder f) { f.setYield("mine"); })}, true);
  raw("send-first", {SendTo(kCounter, 1, fuzzmsg::Get{})}, true);
  raw("proof-first", {OneFrame([](wire::Frame::Builder f) { f.setProof(Data(std::string(32, 'p'))); })}, true);
  raw("refused", {OneFrame([](wire::Frame::Builder f) { f.setRefused("go away"); })}, true);
  {
    Bytes oversized;
    AppendPrefix(oversized, static_cast<uint32_t>(kHandshakeFrameBytes) + 8);
    oversized.resize(64, 0);
    raw("oversized-before-handshake", {oversized}, true);
  }
  return seeds;
}

}  // namespace troupe::net::fuzz
