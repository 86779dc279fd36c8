// Generated codecs against Cap'n Proto's own: bytes troupe writes read
// correctly through capnpc-c++'s readers of the same schema, and bytes
// capnpc-c++'s builders write decode into the same troupe structs. The
// capnpc-c++ classes live in troupe::codegen_cxx (a copy of the schema with
// only the namespace changed; see cxx_schema_copies in BUILD).

#include <cstdint>
#include <string>
#include <vector>

#include "actors/testkit/test_system.h"
#include "capnp/message.h"
#include "capnp/serialize.h"
#include "gtest/gtest.h"
#include "kj/string.h"
#include "net/codegen/test_support.h"
#include "net/codegen/testdata/all_types.troupe.h"
#include "net/codegen/testdata/all_types_cxx.capnp.h"

namespace troupe::codegen_test {
namespace {

namespace cxx = ::troupe::codegen_cxx;

capnp::Text::Reader T(const std::string& s) { return capnp::Text::Reader(s.c_str(), s.size()); }
capnp::Data::Reader D(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
template <class E>
auto Cast(E e) {
  return static_cast<uint16_t>(e);
}

void FillInner(cxx::Post::Inner::Builder b, const Post::Inner& v) {
  b.setNote(T(v.note));
  b.setShade(static_cast<cxx::common::Shade>(Cast(v.shade)));
}

void FillPoint(cxx::common::Point::Builder b, const common::Point& v) {
  b.setX(v.x);
  b.setY(v.y);
}

void FillAddress(wire::ActorAddress::Builder b, const ActorRef& ref) {
  b.setNode("test-node");
  b.setActor(ref.id());
}

// What capnpc-c++'s builder writes for `p`, field by field.
void FillCxxPost(cxx::Post::Builder b, const Post& p) {
  b.setText(T(p.text));
  b.setBlob(D(p.blob));
  b.setSeq(p.seq);
  b.setColor(static_cast<cxx::Color>(Cast(p.color)));
  auto values = b.initValues(p.values.size());
  for (size_t i = 0; i < p.values.size(); ++i) values.set(i, p.values[i]);
  FillInner(b.initInner(), p.inner);
  if (p.room) FillAddress(b.initRoom(), p.room);
  if (p.anyone) FillAddress(b.initAnyone(), p.anyone);
  auto tags = b.initTags(p.tags.size());
  for (size_t i = 0; i < p.tags.size(); ++i) tags.set(i, T(p.tags[i]));
  auto matrix = b.initMatrix(p.matrix.size());
  for (size_t i = 0; i < p.matrix.size(); ++i) {
    auto row = matrix.init(i, p.matrix[i].size());
    for (size_t j = 0; j < p.matrix[i].size(); ++j) row.set(j, p.matrix[i][j]);
  }
  auto items = b.initItems(p.items.size());
  for (size_t i = 0; i < p.items.size(); ++i) FillInner(items[i], p.items[i]);
  auto grid = b.initTextGrid(p.text_grid.size());
  for (size_t i = 0; i < p.text_grid.size(); ++i) {
    auto row = grid.init(i, p.text_grid[i].size());
    for (size_t j = 0; j < p.text_grid[i].size(); ++j) row.set(j, T(p.text_grid[i][j]));
  }
  auto groups = b.initItemGroups(p.item_groups.size());
  for (size_t i = 0; i < p.item_groups.size(); ++i) {
    auto group = groups.init(i, p.item_groups[i].size());
    for (size_t j = 0; j < p.item_groups[i].size(); ++j) FillInner(group[j], p.item_groups[i][j]);
  }
  auto blobs = b.initBlobs(p.blobs.size());
  for (size_t i = 0; i < p.blobs.size(); ++i) blobs.set(i, D(p.blobs[i]));
  auto colors = b.initColors(p.colors.size());
  for (size_t i = 0; i < p.colors.size(); ++i) colors.set(i, static_cast<cxx::Color>(Cast(p.colors[i])));
  auto flags = b.initFlags(p.flags.size());
  for (size_t i = 0; i < p.flags.size(); ++i) flags.set(i, p.flags[i]);
  FillPoint(b.initWhere(), p.where);
  cxx::Scalars::Builder s = b.initScalars();
  s.setFlag(p.scalars.flag);
  s.setI8(p.scalars.i8);
  s.setI16(p.scalars.i16);
  s.setI32(p.scalars.i32);
  s.setI64(p.scalars.i64);
  s.setU8(p.scalars.u8);
  s.setU16(p.scalars.u16);
  s.setU32(p.scalars.u32);
  s.setU64(p.scalars.u64);
  s.setF32(p.scalars.f32);
  s.setF64(p.scalars.f64);
  s.setColor(static_cast<cxx::Color>(Cast(p.scalars.color)));
  s.setOtherFlag(p.scalars.other_flag);
  auto ratios = b.initRatios(p.ratios.size());
  for (size_t i = 0; i < p.ratios.size(); ++i) ratios.set(i, p.ratios[i]);
  b.setKind(static_cast<cxx::Post::Kind>(Cast(p.kind)));
  auto points = b.initPoints(p.points.size());
  for (size_t i = 0; i < p.points.size(); ++i) FillPoint(points[i], p.points[i]);
  b.setUserID(p.user_id);
}

class Interop : public ::testing::Test {
 protected:
  Interop() {
    post_ = FullPost();
    post_.room = sys_.Spawn<Room>();
    post_.anyone = sys_.Spawn<Room>();
    refs_.Add(post_.room);
    refs_.Add(post_.anyone);
  }

  testkit::TestSystem sys_;
  FakeRefCodec refs_;
  Post post_;
};

TEST_F(Interop, StructIdsAreCapnpsTypeIds) {
  EXPECT_EQ(WireTraits<Post>::kTypeId, capnp::typeId<cxx::Post>());
  EXPECT_EQ(WireTraits<Post::Inner>::kTypeId, capnp::typeId<cxx::Post::Inner>());
  EXPECT_EQ(WireTraits<Defaults>::kTypeId, capnp::typeId<cxx::Defaults>());
  EXPECT_EQ(WireTraits<common::Point>::kTypeId, capnp::typeId<cxx::common::Point>());
}

TEST_F(Interop, CapnpReadsWhatTroupeWrites) {
  absl::StatusOr<kj::Array<capnp::word>> words = EncodeToWords(post_, &refs_);
  ASSERT_TRUE(words.ok()) << words.status();
  capnp::FlatArrayMessageReader ours(*words);
  cxx::Post::Reader r = ours.getRoot<cxx::Post>();

  capnp::MallocMessageBuilder theirs;
  FillCxxPost(theirs.initRoot<cxx::Post>(), post_);
  // Every field, as capnp prints it.
  EXPECT_EQ(kj::str(r), kj::str(theirs.getRoot<cxx::Post>().asReader()));

  // A few by hand, so a failure reads plainly.
  EXPECT_EQ(r.getText(), "hello");
  EXPECT_EQ(r.getSeq(), -42);
  EXPECT_EQ(r.getColor(), cxx::Color::DARK_BLUE);
  EXPECT_EQ(r.getValues()[2], int64_t{1} << 40);
  EXPECT_EQ(r.getInner().getShade(), cxx::common::Shade::DARK);
  EXPECT_EQ(r.getRoom().getActor(), post_.room.id());
  EXPECT_EQ(r.getItemGroups()[2][1].getNote(), "g3");
  EXPECT_EQ(r.getMatrix()[2][0], 3);
  EXPECT_TRUE(r.getFlags()[8]);
  EXPECT_EQ(r.getScalars().getU64(), 64u);
  EXPECT_TRUE(r.getScalars().getOtherFlag());
  EXPECT_EQ(r.getKind(), cxx::Post::Kind::URGENT);
  EXPECT_EQ(r.getUserID(), ~uint64_t{0});
}

TEST_F(Interop, TroupeReadsWhatCapnpWrites) {
  capnp::MallocMessageBuilder theirs;
  FillCxxPost(theirs.initRoot<cxx::Post>(), post_);
  kj::Array<capnp::word> words = capnp::messageToFlatArray(theirs);
  absl::StatusOr<Post> back = DecodeWords<Post>(words, &refs_);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, post_);
}

TEST_F(Interop, CapnpSeesTheSchemaDefaultsInADefaultStruct) {
  absl::StatusOr<kj::Array<capnp::word>> words = EncodeToWords(Defaults{});
  ASSERT_TRUE(words.ok());
  capnp::FlatArrayMessageReader ours(*words);
  cxx::Defaults::Reader r = ours.getRoot<cxx::Defaults>();
  capnp::MallocMessageBuilder theirs;
  cxx::Defaults::Builder b = theirs.initRoot<cxx::Defaults>();
  // Troupe writes the non-empty pointer defaults out; a capnp builder does
  // when its getters are called.
  b.getText();
  b.getBlob();
  b.getInts();
  b.getNames();
  b.getPoint();
  b.getPoints();
  b.getColors();
  b.getMatrix();
  EXPECT_EQ(std::string(kj::str(r).cStr()), std::string(kj::str(b.asReader()).cStr()));
  EXPECT_TRUE(r.getFlag());
  EXPECT_EQ(r.getI8(), -128);
  EXPECT_EQ(r.getU64(), ~uint64_t{0});
  EXPECT_EQ(r.getF64(), -2.25e-300);
  EXPECT_EQ(r.getColor(), cxx::Color::DARK_BLUE);
  EXPECT_EQ(r.getText(), "hello \"world\"?\n");
  EXPECT_EQ(r.getInts().size(), 3u);
  EXPECT_EQ(r.getPoint().getY(), 4);
  EXPECT_EQ(r.getPoints()[0].getY(), -1);
}

TEST_F(Interop, TroupeSeesTheSchemaDefaultsInADefaultStruct) {
  capnp::MallocMessageBuilder theirs;
  theirs.initRoot<cxx::Defaults>();
  kj::Array<capnp::word> words = capnp::messageToFlatArray(theirs);
  EXPECT_EQ(*DecodeWords<Defaults>(words), Defaults{});
}

TEST_F(Interop, EmptyValuesAgainstNonEmptyDefaultsCrossBothWays) {
  Defaults d;
  d.text = "";
  d.ints = {};
  d.i8 = 0;
  d.point = common::Point{.x = 0, .y = 0};
  absl::StatusOr<kj::Array<capnp::word>> words = EncodeToWords(d);
  ASSERT_TRUE(words.ok());
  capnp::FlatArrayMessageReader ours(*words);
  cxx::Defaults::Reader r = ours.getRoot<cxx::Defaults>();
  EXPECT_EQ(r.getText(), "");
  EXPECT_EQ(r.getInts().size(), 0u);
  EXPECT_EQ(r.getI8(), 0);
  EXPECT_EQ(r.getPoint().getX(), 0);
  EXPECT_EQ(r.getPoint().getY(), 0);

  capnp::MallocMessageBuilder theirs;
  cxx::Defaults::Builder b = theirs.initRoot<cxx::Defaults>();
  b.setText("");
  b.initInts(0);
  b.setI8(0);
  b.initPoint().setY(0);
  kj::Array<capnp::word> their_words = capnp::messageToFlatArray(theirs);
  EXPECT_EQ(*DecodeWords<Defaults>(their_words), d);
}

}  // namespace
}  // namespace troupe::codegen_test
