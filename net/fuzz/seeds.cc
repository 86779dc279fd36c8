#include "net/fuzz/seeds.h"

#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>

#include "capnp/message.h"
#include "capnp/serialize.h"
#include "net/wire/envelope.capnp.h"
#include "net/wire/troupe.capnp.h"

namespace troupe::net::fuzz {
namespace {

kj::ArrayPtr<const kj::byte> Pattern(size_t size, uint8_t seed) {
  static thread_local kj::byte buffer[256];
  for (size_t i = 0; i < size && i < sizeof(buffer); ++i) buffer[i] = static_cast<kj::byte>(seed + i * 13);
  return kj::arrayPtr(buffer, size < sizeof(buffer) ? size : sizeof(buffer));
}

void FillAddress(wire::ActorAddress::Builder a, std::string_view node, uint64_t actor) {
  a.setNode(std::string(node));
  a.setIncarnation(0x0123456789abcdefu);
  a.setActor(actor);
  a.setAddress("127.0.0.1:7100");
}

// A connector's hello (a version range) or an acceptor's (one version).
void FillHello(wire::Frame::Builder f, bool acceptor) {
  wire::Hello::Builder h = f.initHello();
  h.setMinVersion(2);
  h.setMaxVersion(acceptor ? 2 : 3);
  h.setNode(acceptor ? "beta" : "alpha");
  h.setIncarnation(acceptor ? 42 : 7);
  h.setAddress(acceptor ? "127.0.0.1:7101" : "");
  h.setChallenge(Pattern(32, acceptor ? 0x51 : 0x17));
  h.setHeartbeatIntervalMs(1000);
  h.setHeartbeatTimeoutMs(5000);
  h.setMaxFrameBytes(16 << 20);
}

// A tell carrying an ActorAddress (a Ref in a message).
void FillSend(wire::Frame::Builder f) {
  wire::Envelope::Builder e = f.initSend();
  e.setTarget(17);
  e.setRequestId(0);
  e.setTypeId(capnp::typeId<wire::ActorAddress>());
  FillAddress(e.getPayload().initAs<wire::ActorAddress>(), "alpha", 99);
}

// An ask whose payload nests: an envelope carrying a lookup, and a list.
void FillNestedAsk(wire::Frame::Builder f) {
  wire::Envelope::Builder e = f.initSend();
  e.setTarget(18);
  e.setRequestId(1001);
  e.setTypeId(capnp::typeId<wire::Envelope>());
  wire::Envelope::Builder inner = e.getPayload().initAs<wire::Envelope>();
  inner.setTarget(3);
  wire::Lookup::Builder l = inner.getPayload().initAs<wire::Lookup>();
  l.setRequestId(5);
  l.setName("deep");
  l.setActorType("chat::Room");
}

void FillTextList(wire::Frame::Builder f) {
  wire::Envelope::Builder e = f.initSend();
  e.setTarget(19);
  e.setTypeId(1);
  capnp::List<capnp::Text>::Builder list = e.getPayload().initAs<capnp::List<capnp::Text>>(3);
  list.set(0, "one");
  list.set(1, "");
  list.set(2, "three three three");
}

void FillReply(wire::Frame::Builder f) {
  wire::Reply::Builder r = f.initReply();
  r.setRequestId(1001);
  r.setCode(0);
  r.setTypeId(capnp::typeId<wire::ActorAddress>());
  FillAddress(r.getPayload().initAs<wire::ActorAddress>(), "beta", 5);
}

void FillErrorReply(wire::Frame::Builder f) {
  wire::Reply::Builder r = f.initReply();
  r.setRequestId(1002);
  r.setCode(5);  // NotFound
  r.setMessage("no actor is published as 'nobody'");
}

void FillLookup(wire::Frame::Builder f) {
  wire::Lookup::Builder l = f.initLookup();
  l.setRequestId(1003);
  l.setName("room");
  l.setActorType("chat::Room");
}

void FillSpawn(wire::Frame::Builder f) {
  wire::Spawn::Builder s = f.initSpawn();
  s.setRequestId(1004);
  s.setActorType("chat::Room");
  s.setArgsTypeId(capnp::typeId<wire::ActorAddress>());
  FillAddress(s.getArgs().initAs<wire::ActorAddress>(), "alpha", 1);
}

void FillStop(wire::Frame::Builder f) {
  wire::Stop::Builder s = f.initStop();
  s.setTarget(17);
  s.setCode(1);  // Cancelled
  s.setMessage("stopped by alpha");
}

void FillDown(wire::Frame::Builder f) {
  wire::Down::Builder d = f.initDown();
  d.setActor(17);
  d.setCode(0);
  d.setMessage("");
}

// Cap'n Proto pointer words (see the encoding spec).
uint64_t StructPointer(int32_t offset, uint16_t data_words, uint16_t pointers) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(offset) << 2)) |
         (uint64_t{data_words} | uint64_t{pointers} << 16) << 32;
}
uint64_t ListPointer(int32_t offset, uint8_t element_size, uint32_t count) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(offset) << 2) | 1) |
         (uint64_t{element_size} | uint64_t{count} << 3) << 32;
}
uint64_t FarPointer(uint32_t offset, uint32_t segment) {
  return (uint64_t{offset} << 3 | 2) | uint64_t{segment} << 32;
}

// The frame of FillSend with the envelope's payload pointer replaced by
// `make(word)`, where `word` is the pointer's index in the segment. The
// envelope (3 data words, 1 pointer) ends with that pointer, and the
// ActorAddress (2 data words, 2 pointers) follows it, so the pointer is the
// one word of the segment that reads "struct, offset 0, 2 + 2 words". If
// the schema's layout moves, these seeds must be rethought: abort.
template <class Make>
Bytes SendWithPayloadPointer(Make&& make) {
  Bytes frame = OneFrame([](wire::Frame::Builder f) { FillSend(f); });
  constexpr size_t kSegmentStart = 4 + 8;  // prefix, one-segment table
  const uint64_t wanted = StructPointer(0, 2, 2);
  size_t found = 0;
  size_t matches = 0;
  for (size_t at = kSegmentStart; at + 8 <= frame.size(); at += 8) {
    uint64_t word;
    std::memcpy(&word, &frame[at], 8);
    if (word == wanted) {
      found = at;
      ++matches;
    }
  }
  if (matches != 1) std::abort();
  const uint64_t pointer = make(static_cast<int32_t>((found - kSegmentStart) / 8));
  std::memcpy(&frame[found], &pointer, 8);
  return frame;
}

}  // namespace

std::vector<Seed> MakeSeeds() {
  using absl::StatusCode;
  std::vector<Seed> seeds;
  auto add = [&](std::string name, Bytes bytes, StatusCode expected = StatusCode::kOk, bool mid_frame = false) {
    seeds.push_back(Seed{std::move(name), std::move(bytes), expected, mid_frame});
  };

  const Bytes hello = OneFrame([](wire::Frame::Builder f) { FillHello(f, false); });
  const Bytes hello_proof = OneFrame([](wire::Frame::Builder f) { FillHello(f, true); });
  const Bytes proof = OneFrame([](wire::Frame::Builder f) { f.setProof(Pattern(32, 0x33)); });
  const Bytes send = OneFrame([](wire::Frame::Builder f) { FillSend(f); });
  const Bytes reply = OneFrame([](wire::Frame::Builder f) { FillReply(f); });
  const Bytes heartbeat = OneFrame([](wire::Frame::Builder f) { f.setHeartbeat(); });

  add("valid-hello", hello);
  add("valid-hello-proof", hello_proof);
  add("valid-proof", proof);
  add("valid-refused", OneFrame([](wire::Frame::Builder f) { f.setRefused("wrong cluster secret"); }));
  add("valid-send", send);
  add("valid-send-nested-ask", OneFrame([](wire::Frame::Builder f) { FillNestedAsk(f); }));
  add("valid-send-text-list", OneFrame([](wire::Frame::Builder f) { FillTextList(f); }));
  add("valid-reply", reply);
  add("valid-reply-error", OneFrame([](wire::Frame::Builder f) { FillErrorReply(f); }));
  add("valid-heartbeat", heartbeat);
  add("valid-lookup", OneFrame([](wire::Frame::Builder f) { FillLookup(f); }));
  add("valid-spawn", OneFrame([](wire::Frame::Builder f) { FillSpawn(f); }));
  add("valid-stop", OneFrame([](wire::Frame::Builder f) { FillStop(f); }));
  add("valid-watch", OneFrame([](wire::Frame::Builder f) { 
    wire::Watch::Builder w = f.initWatch();
    w.setActor(17);
    w.setIncarnation(9);
  }));
  add("valid-down", OneFrame([](wire::Frame::Builder f) { FillDown(f); }));
  // A connection's life: the handshake, then traffic, in one stream.
  add("valid-stream", Concat({hello_proof, proof, send, heartbeat, reply}));
  // Every object in its own segment: far pointers and landing pads.
  add("valid-many-segments",
      OneFrame([](wire::Frame::Builder f) { FillSpawn(f); }, 1, capnp::AllocationStrategy::FIXED_SIZE));

  // Ends inside a frame: no error, the decoder waits for the rest.
  add("bad-truncated", Bytes(send.begin(), send.end() - 5), StatusCode::kOk, /*mid_frame=*/true);
  add("bad-truncated-prefix", Bytes(send.begin(), send.begin() + 3), StatusCode::kOk, /*mid_frame=*/true);
  // Lengths over the fuzzer's 1 MiB limit, refused before the payload.
  {
    Bytes b;
    AppendPrefix(b, (1u << 20) + 8);
    b.resize(64, 0);
    add("bad-oversized", std::move(b), StatusCode::kResourceExhausted);
  }
  add("bad-oversized-max", Concat({hello, Bytes{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}}),
      StatusCode::kResourceExhausted);
  {
    Bytes b;
    AppendPrefix(b, 5);
    b.insert(b.end(), {1, 2, 3, 4, 5});
    add("bad-not-words", std::move(b), StatusCode::kInvalidArgument);
  }
  add("bad-empty-payload", Bytes{0, 0, 0, 0}, StatusCode::kInvalidArgument);
  {
    // Words of garbage behind a valid length.
    Bytes b;
    AppendPrefix(b, 48);
    uint64_t x = 0x243f6a8885a308d3u;
    for (int i = 0; i < 48; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      b.push_back(static_cast<uint8_t>(x));
    }
    add("bad-garbage", std::move(b), StatusCode::kInvalidArgument);
  }
  {
    // A segment table claiming 2^31 segments.
    Bytes b;
    AppendPrefix(b, 16);
    b.insert(b.end(), {0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
    add("bad-segment-table", std::move(b), StatusCode::kInvalidArgument);
  }
  {
    // The root pointer points 1000 words past its one-word segment.
    Bytes b;
    AppendPrefix(b, 24);
    const uint64_t words[3] = {uint64_t{2} << 32, StructPointer(1000, 1, 1), 0};
    const auto* p = reinterpret_cast<const uint8_t*>(words);
    b.insert(b.end(), p, p + sizeof(words));
    add("bad-oob-pointer", std::move(b), StatusCode::kInvalidArgument);
  }
  // Hostile payloads inside a well-formed envelope: the frame reads fine
  // (the walk catches the payload's errors per try, as a receiving actor's
  // decoder returns them).
  // The payload points back at its own envelope, which starts 3 words
  // before the pointer: a cycle, cut by the walk's depth and Cap'n Proto's
  // limits.
  add("hostile-payload-cycle", SendWithPayloadPointer([](int32_t) { return StructPointer(-4, 3, 1); }));
  add("hostile-payload-oob", SendWithPayloadPointer([](int32_t) { return StructPointer(1 << 20, 2, 2); }));
  // 2^29 - 1 void elements in no space: the traversal limit refuses them as
  // a list of structs.
  add("hostile-payload-amplified-list",
      SendWithPayloadPointer([](int32_t) { return ListPointer(0, 0, (1u << 29) - 1); }));
  // A far pointer to a segment the message does not have, in the payload
  // slot: Cap'n Proto follows it already to tell whether the slot is null
  // (hasPayload), so the frame itself is refused.
  add("bad-payload-far-pointer", SendWithPayloadPointer([](int32_t) { return FarPointer(0, 7); }),
      StatusCode::kInvalidArgument);
  {
    // A Frame whose union discriminant is no known kind.
    Bytes b = heartbeat;
    const size_t discriminant = 4 + 8 + 8;  // prefix, table, root pointer
    b[discriminant] = 200;
    b[discriminant + 1] = 0;
    add("bad-unknown-kind", std::move(b), StatusCode::kInvalidArgument);
  }
  return seeds;
}

}  // namespace troupe::net::fuzz
