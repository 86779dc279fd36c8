// Generated Decode functions against input they must not trust: pointers of
// the wrong kind, out of bounds, too deep, too much to traverse. Each one is
// InvalidArgument naming the message type, never a crash (run under ASan).

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "capnp/message.h"
#include "capnp/schema.h"
#include "capnp/serialize.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/codegen/test_support.h"
#include "net/codegen/testdata/all_types.troupe.h"
#include "net/codegen/testdata/all_types_cxx.capnp.h"

namespace troupe::codegen_test {
namespace {

using ::testing::HasSubstr;

// The pointer slot of a field of Post, from capnp's schema of the same file.
unsigned Slot(const char* field) {
  return capnp::Schema::from<codegen_cxx::Post>().getFieldByName(field).getProto().getSlot().getOffset();
}

// A message whose root is a Post-sized struct with nothing set; `fill`
// puts something into its pointer section.
template <class Fill>
kj::Array<capnp::word> PostWith(Fill fill) {
  capnp::MallocMessageBuilder message;
  capnp::AnyStruct::Builder root = message.getRoot<capnp::AnyPointer>().initAsAnyStruct(
      codegen::WireStruct<Post>::kDataWords, codegen::WireStruct<Post>::kPointers);
  capnp::List<capnp::AnyPointer>::Builder pointers = root.getPointerSection();
  fill(pointers);
  return capnp::messageToFlatArray(message);
}

// One segment of raw little-endian words, with its segment table.
kj::Array<capnp::word> RawMessage(std::initializer_list<uint64_t> segment) {
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(segment.size() + 1);
  const uint64_t table = uint64_t{segment.size()} << 32;  // one segment of this many words
  std::memcpy(words.asBytes().begin(), &table, 8);
  std::memcpy(words.asBytes().begin() + 8, segment.begin(), 8 * segment.size());
  return words;
}

void ExpectInvalid(const absl::StatusOr<Post>& decoded) {
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << decoded.status();
  EXPECT_THAT(decoded.status().message(), HasSubstr("troupe.codegen_test.Post"));
}

TEST(Malformed, StructWhereTextIsExpected) {
  kj::Array<capnp::word> words = PostWith([](auto p) { p[Slot("text")].initAsAnyStruct(1, 0); });
  ExpectInvalid(DecodeWords<Post>(words));
}

TEST(Malformed, TextWithoutItsTerminator) {
  kj::Array<capnp::word> words = PostWith([](auto p) {
    const kj::byte bytes[] = {'a', 'b', 'c'};
    p[Slot("text")].template setAs<capnp::Data>(capnp::Data::Reader(bytes, 3));
  });
  ExpectInvalid(DecodeWords<Post>(words));
}

TEST(Malformed, StructWhereAListIsExpected) {
  ExpectInvalid(DecodeWords<Post>(PostWith([](auto p) { p[Slot("values")].initAsAnyStruct(1, 0); })));
  ExpectInvalid(DecodeWords<Post>(PostWith([](auto p) { p[Slot("items")].initAsAnyStruct(1, 0); })));
  ExpectInvalid(DecodeWords<Post>(PostWith([](auto p) { p[Slot("tags")].initAsAnyStruct(0, 1); })));
}

TEST(Malformed, ListWhereAStructIsExpected) {
  ExpectInvalid(DecodeWords<Post>(PostWith([](auto p) { p[Slot("inner")].template initAs<capnp::List<int64_t>>(2); })));
}

TEST(Malformed, ListOfTheWrongElementKind) {
  // Bits where structs are expected.
  ExpectInvalid(DecodeWords<Post>(PostWith([](auto p) { p[Slot("items")].template initAs<capnp::List<bool>>(9); })));
  // Data where pointers are expected.
  ExpectInvalid(DecodeWords<Post>(PostWith([](auto p) { p[Slot("tags")].template initAs<capnp::List<int64_t>>(3); })));
  // Pointers where 8-byte scalars are expected.
  ExpectInvalid(
      DecodeWords<Post>(PostWith([](auto p) { p[Slot("values")].template initAs<capnp::List<capnp::Text>>(3); })));
  // An element of a list of lists that is a struct.
  ExpectInvalid(DecodeWords<Post>(PostWith([](auto p) {
    auto rows = p[Slot("matrix")].initAsAnyList(capnp::ElementSize::POINTER, 2).template as<capnp::List<capnp::AnyPointer>>();
    rows[1].initAsAnyStruct(1, 0);
  })));
}

TEST(Malformed, ListWhereAnActorAddressIsExpected) {
  FakeRefCodec refs;
  ExpectInvalid(
      DecodeWords<Post>(PostWith([](auto p) { p[Slot("room")].template initAs<capnp::List<int64_t>>(1); }), &refs));
  EXPECT_TRUE(refs.requested_types.empty());
}

TEST(Malformed, PointerOutOfBounds) {
  // Root: a struct of no data and one pointer (Post's text), which points
  // 1000 words past the end of the segment.
  const uint64_t root = uint64_t{1} << 48;
  const uint64_t text = 1 | (uint64_t{1000} << 2) | (uint64_t{2} << 32) | (uint64_t{5} << 35);
  ExpectInvalid(DecodeWords<Post>(RawMessage({root, text})));
}

TEST(Malformed, RootOutOfBounds) {
  const uint64_t root = (uint64_t{100} << 2) | (uint64_t{1} << 32);
  ExpectInvalid(DecodeWords<Post>(RawMessage({root})));
}

// A root struct of no data and pointers up to Post's `field`, which holds
// `list` (a list pointer, offset 0) followed by `content`.
kj::Array<capnp::word> RawPostWithList(const char* field, uint64_t list, std::initializer_list<uint64_t> content) {
  const unsigned slot = Slot(field);
  std::vector<uint64_t> segment;
  segment.push_back(uint64_t{slot + 1} << 48);
  segment.resize(1 + slot, 0);  // null pointers before it
  segment.push_back(list);
  segment.insert(segment.end(), content.begin(), content.end());
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(segment.size() + 1);
  const uint64_t table = uint64_t{segment.size()} << 32;
  std::memcpy(words.asBytes().begin(), &table, 8);
  std::memcpy(words.asBytes().begin() + 8, segment.data(), 8 * segment.size());
  return words;
}

TEST(Malformed, ListLongerThanTheSegment) {
  // 1000 Inner structs (inline composite, 2 words each): 2000 words of
  // content in a segment that has one.
  const uint64_t items = 1 | (uint64_t{7} << 32) | (uint64_t{2000} << 35);
  const uint64_t tag = (uint64_t{1000} << 2) | (uint64_t{1} << 32) | (uint64_t{1} << 48);
  ExpectInvalid(DecodeWords<Post>(RawPostWithList("items", items, {tag})));
}

TEST(Malformed, EmptyStructsCountAgainstTheTraversalLimit) {
  // A list header claiming a million zero-size Inner structs: no bytes on
  // the wire, but capnp charges each element one word, so a limit near the
  // message's size bounds what Decode allocates.
  const uint64_t items = 1 | (uint64_t{7} << 32);  // inline composite, 0 words
  const uint64_t tag = uint64_t{1000000} << 2;     // element count; 0 data words, 0 pointers
  kj::Array<capnp::word> words = RawPostWithList("items", items, {tag});
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 1000;
  ExpectInvalid(DecodeWords<Post>(words, nullptr, options));
  // Within the limit, each element is an Inner at its defaults.
  absl::StatusOr<Post> decoded = DecodeWords<Post>(words);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->items.size(), 1000000u);
  EXPECT_EQ(decoded->items[999999], Post::Inner{});
}

Tree Deep(int depth) {
  Tree t{.label = "leaf", .children = {}};
  for (int i = 0; i < depth; ++i) t = Tree{.label = "node", .children = {t}};
  return t;
}

TEST(Malformed, NestingDeeperThanTheReadersLimit) {
  absl::StatusOr<kj::Array<capnp::word>> words = EncodeToWords(Deep(20));
  ASSERT_TRUE(words.ok());
  capnp::ReaderOptions options;
  options.nestingLimit = 8;
  absl::StatusOr<Tree> decoded = DecodeWords<Tree>(*words, nullptr, options);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(decoded.status().message(), HasSubstr("troupe.codegen_test.Tree"));
  // Within the default limit it decodes.
  EXPECT_EQ(*DecodeWords<Tree>(*words), Deep(20));
}

TEST(Malformed, MoreThanTheTraversalLimit) {
  Post post;
  post.values.assign(10000, 7);
  absl::StatusOr<kj::Array<capnp::word>> words = EncodeToWords(post);
  ASSERT_TRUE(words.ok());
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 1000;
  ExpectInvalid(DecodeWords<Post>(*words, nullptr, options));
}

}  // namespace
}  // namespace troupe::codegen_test
