// Test helpers for generated codecs: encode a value into a message's words
// and decode it back, and a RefCodec that stands in for a Node.

#ifndef TROUPE_NET_CODEGEN_TEST_SUPPORT_H_
#define TROUPE_NET_CODEGEN_TEST_SUPPORT_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "actors/actor.h"
#include "actors/ref.h"
#include "actors/wire.h"
#include "capnp/message.h"
#include "capnp/serialize.h"
#include "net/codegen/testdata/all_types.troupe.h"
#include "net/wire/codec.h"

namespace troupe::codegen_test {

// The actor type Post.room names with $Troupe.actor.
struct Room : Actor<Room> {
  void On(const Empty&) {}
};

// Addresses are "test-node" and the actor's id; Decode finds the Ref of an
// id it encoded, and remembers the actor types it was asked for.
class FakeRefCodec : public RefCodec {
 public:
  absl::Status Encode(const ActorRef& ref, wire::ActorAddress::Builder out) override {
    if (!encode_error.ok()) return encode_error;
    out.setNode("test-node");
    out.setActor(ref.id());
    known_[ref.id()] = ref;
    return absl::OkStatus();
  }

  absl::StatusOr<ActorRef> Decode(wire::ActorAddress::Reader in, std::string_view actor_type) override {
    requested_types.emplace_back(actor_type);
    if (!decode_error.ok()) return decode_error;
    auto it = known_.find(in.getActor());
    if (it == known_.end()) return absl::NotFoundError("no such actor");
    return it->second;
  }

  // Makes `ref` decodable without encoding it first.
  void Add(const ActorRef& ref) { known_[ref.id()] = ref; }

  std::vector<std::string> requested_types;
  absl::Status encode_error;
  absl::Status decode_error;

 private:
  absl::flat_hash_map<uint64_t, ActorRef> known_;
};

// The words of a one-segment message whose root is `value`, or the
// writer's error.
template <class T>
absl::StatusOr<kj::Array<capnp::word>> EncodeToWords(const T& value, RefCodec* refs = nullptr) {
  capnp::MallocMessageBuilder message;
  WireWriter out(message.getRoot<capnp::AnyPointer>(), refs);
  WireTraits<T>::Encode(value, out);
  if (!out.status().ok()) return out.status();
  return capnp::messageToFlatArray(message);
}

template <class T>
absl::StatusOr<T> DecodeWords(kj::ArrayPtr<const capnp::word> words, RefCodec* refs = nullptr,
                              capnp::ReaderOptions options = capnp::ReaderOptions()) {
  capnp::FlatArrayMessageReader message(words, options);
  WireReader in(message.getRoot<capnp::AnyPointer>(), refs);
  return WireTraits<T>::Decode(in);
}

template <class T>
absl::StatusOr<T> RoundTrip(const T& value, RefCodec* refs = nullptr) {
  absl::StatusOr<kj::Array<capnp::word>> words = EncodeToWords(value, refs);
  if (!words.ok()) return words.status();
  return DecodeWords<T>(*words, refs);
}

// A Post with every field set to something other than its default.
inline Post FullPost() {
  Post p;
  p.text = "hello";
  p.blob = std::string("\0\x01\xff", 3);
  p.seq = -42;
  p.color = Color::kDarkBlue;
  p.values = {1, -2, 1ll << 40};
  p.inner = {.note = "inner", .shade = common::Shade::kDark};
  p.tags = {"a", "", "ccc"};
  p.matrix = {{1, 2}, {}, {3}};
  p.items = {{.note = "x"}, {.note = "y", .shade = common::Shade::kDark}};
  p.text_grid = {{"p", "q"}, {}, {"r"}};
  p.item_groups = {{{.note = "g1"}}, {}, {{.note = "g2"}, {.note = "g3"}}};
  p.blobs = {"b1", std::string("\0", 1)};
  p.colors = {Color::kGreen, Color::kRed, Color::kDarkBlue};
  p.flags = {true, false, true, true, false, false, false, false, true};
  p.where = {.x = 7, .y = 0};
  p.scalars = {.flag = true,
               .i8 = -8,
               .i16 = -16,
               .i32 = -32,
               .i64 = -64,
               .u8 = 8,
               .u16 = 16,
               .u32 = 32,
               .u64 = 64,
               .f32 = 3.5f,
               .f64 = -6.25,
               .color = Color::kGreen,
               .other_flag = true};
  p.ratios = {0.5, -1e300};
  p.kind = Post::Kind::kUrgent;
  p.points = {{.x = 1, .y = 2}, {}};
  p.user_id = ~uint64_t{0};
  return p;
}

}  // namespace troupe::codegen_test

#endif  // TROUPE_NET_CODEGEN_TEST_SUPPORT_H_
