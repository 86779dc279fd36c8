// Round trips through generated codecs: every field type, schema defaults,
// Refs through a RefCodec, older and newer versions of a struct.

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "actors/testkit/test_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/codegen/test_support.h"
#include "net/codegen/testdata/all_types.troupe.h"

namespace troupe::codegen_test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(GeneratedTraits, NameTypesAfterTheSchema) {
  static_assert(WireType<Post>);
  static_assert(WireType<Post::Inner>);
  static_assert(std::is_same_v<Post::Inner, Post_Inner>);
  EXPECT_EQ(WireTraits<Post>::kName, "troupe.codegen_test.Post");
  EXPECT_EQ(WireTraits<Post::Inner>::kName, "troupe.codegen_test.Post.Inner");
  EXPECT_EQ(WireTraits<common::Point>::kName, "troupe.codegen_test.common.Point");
  EXPECT_NE(WireTraits<Post>::kTypeId, WireTraits<Post::Inner>::kTypeId);
}

TEST(GeneratedStructs, StartAtTheSchemaDefaults) {
  Defaults d;
  EXPECT_TRUE(d.flag);
  EXPECT_EQ(d.i8, -128);
  EXPECT_EQ(d.i32, std::numeric_limits<int32_t>::min());
  EXPECT_EQ(d.i64, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(d.u64, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(d.f32, 1.5f);
  EXPECT_EQ(d.f64, -2.25e-300);
  EXPECT_TRUE(std::isinf(d.inf));
  EXPECT_EQ(d.color, Color::kDarkBlue);
  EXPECT_EQ(d.shade, common::Shade::kDark);
  EXPECT_EQ(d.text, "hello \"world\"?\n");
  EXPECT_EQ(d.blob, std::string("\0\x01\xfe", 3));
  EXPECT_THAT(d.ints, ElementsAre(1, -2, 3));
  EXPECT_THAT(d.names, ElementsAre("a", "b"));
  EXPECT_EQ(d.point, (common::Point{.x = 3, .y = 4}));
  EXPECT_THAT(d.points, ElementsAre(common::Point{.x = 1, .y = -1}, common::Point{.x = 0, .y = 2}));
  EXPECT_THAT(d.colors, ElementsAre(Color::kGreen, Color::kRed));
  EXPECT_EQ(d.matrix, (std::vector<std::vector<uint8_t>>{{1, 2}, {}, {3}}));
  EXPECT_EQ(d.empty_text, "");
  EXPECT_EQ(common::Point{}.y, -1);
}

TEST(RoundTrip, DefaultValuedStructComesBackEqual) {
  EXPECT_EQ(*RoundTrip(Post{}), Post{});
  EXPECT_EQ(*RoundTrip(Defaults{}), Defaults{});
  EXPECT_EQ(*RoundTrip(Scalars{}), Scalars{});
  EXPECT_EQ(*RoundTrip(Empty{}), Empty{});
}

TEST(RoundTrip, EveryFieldSetComesBackEqual) {
  const Post post = FullPost();
  absl::StatusOr<Post> back = RoundTrip(post);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, post);
}

TEST(RoundTrip, ValuesOtherThanTheDefaultsComeBackEqual) {
  Defaults d;
  d.flag = false;
  d.i8 = 0;
  d.i16 = 1;
  d.i32 = 0;
  d.i64 = 5;
  d.u8 = 0;
  d.u16 = 1;
  d.u32 = 0;
  d.u64 = 0;
  d.f32 = 0;
  d.f64 = 0;
  d.inf = -0.0;
  d.color = Color::kRed;
  d.shade = common::Shade::kLight;
  d.text = "";  // empty, against a non-empty default
  d.blob = "";
  d.ints = {};
  d.names = {"z"};
  d.point = common::Point{};
  d.points = {};
  d.colors = {};
  d.matrix = {{}};
  d.empty_text = "now set";
  absl::StatusOr<Defaults> back = RoundTrip(d);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, d);
  EXPECT_TRUE(std::signbit(back->inf));
}

TEST(RoundTrip, FieldsAtTheirDefaultsAreStoredAsZeros) {
  absl::StatusOr<kj::Array<capnp::word>> words = EncodeToWords(Defaults{});
  ASSERT_TRUE(words.ok());
  capnp::FlatArrayMessageReader message(*words);
  kj::ArrayPtr<const kj::byte> data = message.getRoot<capnp::AnyStruct>().getDataSection();
  ASSERT_EQ(data.size(), 8u * codegen::WireStruct<Defaults>::kDataWords);
  for (kj::byte b : data) EXPECT_EQ(b, 0);
}

TEST(RoundTrip, NanKeepsItsBits) {
  Scalars s;
  s.f64 = std::bit_cast<double>(uint64_t{0x7ff8000000000123});
  s.f32 = -std::numeric_limits<float>::quiet_NaN();
  absl::StatusOr<Scalars> back = RoundTrip(s);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::bit_cast<uint64_t>(back->f64), std::bit_cast<uint64_t>(s.f64));
  EXPECT_EQ(std::bit_cast<uint32_t>(back->f32), std::bit_cast<uint32_t>(s.f32));
}

TEST(RoundTrip, RecursiveStructThroughAList) {
  Tree a1{.label = "a1", .children = {}};
  Tree a{.label = "a", .children = {a1}};
  Tree b{.label = "b", .children = {}};
  Tree t{.label = "root", .children = {a, b}};
  EXPECT_EQ(*RoundTrip(t), t);
}

TEST(RoundTrip, KeywordFieldsGetATrailingUnderscore) {
  Keywords k{.class_ = 3, .new_ = "n"};
  EXPECT_EQ(*RoundTrip(k), k);
}

TEST(RoundTrip, UnknownEnumerantFromANewerWriterIsKept) {
  Scalars s;
  s.color = static_cast<Color>(77);
  EXPECT_EQ(RoundTrip(s)->color, static_cast<Color>(77));
}

TEST(Versions, OlderWriterLeavesNewFieldsAtTheirDefaults) {
  absl::StatusOr<kj::Array<capnp::word>> words = EncodeToWords(Older{.a = 1, .b = "x"});
  ASSERT_TRUE(words.ok());
  absl::StatusOr<Newer> newer = DecodeWords<Newer>(*words);
  ASSERT_TRUE(newer.ok()) << newer.status();
  EXPECT_EQ(*newer, (Newer{.a = 1, .b = "x"}));
  EXPECT_EQ(newer->c, 42);
  EXPECT_EQ(newer->d, "d");
  EXPECT_TRUE(newer->e);
  EXPECT_THAT(newer->f, ElementsAre(7));
  EXPECT_EQ(newer->g, (common::Point{.x = 5}));
}

TEST(Versions, OlderReaderIgnoresNewFields) {
  Newer n{.a = 9, .b = "y", .c = 1, .d = "", .e = false, .f = {}, .g = {}};
  absl::StatusOr<kj::Array<capnp::word>> words = EncodeToWords(n);
  ASSERT_TRUE(words.ok());
  EXPECT_EQ(*DecodeWords<Older>(*words), (Older{.a = 9, .b = "y"}));
  EXPECT_EQ(*DecodeWords<Newer>(*words), n);
}

TEST(Versions, NullRootDecodesAsTheDefaultStruct) {
  capnp::MallocMessageBuilder message;
  message.getRoot<capnp::AnyPointer>();  // left null
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  EXPECT_EQ(*DecodeWords<Defaults>(words), Defaults{});
}

class RefsInMessages : public ::testing::Test {
 protected:
  testkit::TestSystem sys_;
  FakeRefCodec refs_;
};

TEST_F(RefsInMessages, TypedAndUntypedRefsComeBackAsTheSameActors) {
  Post post = FullPost();
  post.room = sys_.Spawn<Room>();
  post.anyone = sys_.Spawn<Room>();
  absl::StatusOr<Post> back = RoundTrip(post, &refs_);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, post);
  EXPECT_EQ(back->room.id(), post.room.id());
  // The typed field asks for its declared actor type, the untyped for none.
  EXPECT_THAT(refs_.requested_types, ElementsAre("troupe::codegen_test::Room", ""));
}

TEST_F(RefsInMessages, EmptyRefsTravelAsNullWithoutTheRefCodec) {
  Post post;
  absl::StatusOr<kj::Array<capnp::word>> words = EncodeToWords(post, &refs_);
  ASSERT_TRUE(words.ok());
  EXPECT_EQ(*DecodeWords<Post>(*words, &refs_), post);
  EXPECT_TRUE(refs_.requested_types.empty());
}

TEST_F(RefsInMessages, ARefWithoutARefCodecFailsToEncode) {
  Post post;
  post.anyone = sys_.Spawn<Room>();
  absl::StatusOr<kj::Array<capnp::word>> words = EncodeToWords(post, nullptr);
  EXPECT_EQ(words.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(words.status().message(), HasSubstr("a Ref inside a message needs a troupe::Node to travel"));
}

TEST_F(RefsInMessages, AnAddressWithoutARefCodecFailsToDecode) {
  Post post;
  post.room = sys_.Spawn<Room>();
  absl::StatusOr<kj::Array<capnp::word>> words = EncodeToWords(post, &refs_);
  ASSERT_TRUE(words.ok());
  absl::StatusOr<Post> back = DecodeWords<Post>(*words, nullptr);
  EXPECT_EQ(back.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(back.status().message(), HasSubstr("decoding troupe.codegen_test.Post: room: "));
}

TEST_F(RefsInMessages, TheRefCodecsErrorsComeThroughWithTheFieldPath) {
  Post post;
  post.item_groups = {{{.note = "n"}}};
  post.anyone = sys_.Spawn<Room>();
  refs_.encode_error = absl::UnavailableError("node gone");
  EXPECT_EQ(EncodeToWords(post, &refs_).status(), absl::UnavailableError("node gone"));

  refs_.encode_error = absl::OkStatus();
  absl::StatusOr<kj::Array<capnp::word>> words = EncodeToWords(post, &refs_);
  ASSERT_TRUE(words.ok());
  refs_.decode_error = absl::InvalidArgumentError("actor 5 is not a troupe::codegen_test::Room");
  absl::StatusOr<Post> back = DecodeWords<Post>(*words, &refs_);
  EXPECT_EQ(back.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(back.status().message(),
            "decoding troupe.codegen_test.Post: anyone: actor 5 is not a troupe::codegen_test::Room");
}

}  // namespace
}  // namespace troupe::codegen_test
