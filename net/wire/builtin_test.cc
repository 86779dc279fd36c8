// The built-in reply types on the wire: round trips, and the layouts of
// builtin.capnp as capnpc-c++ reads and writes them.

#include <bit>
#include <cstdint>
#include <limits>
#include <string>

#include "actors/wire.h"
#include "capnp/message.h"
#include "capnp/serialize.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/wire/builtin.capnp.h"
#include "net/wire/codec.h"

namespace troupe {
namespace {

using ::testing::HasSubstr;
namespace builtin = ::troupe::wire::builtin;

template <class T>
kj::Array<capnp::word> Encode(const T& value) {
  capnp::MallocMessageBuilder message;
  WireWriter out(message.getRoot<capnp::AnyPointer>(), nullptr);
  WireTraits<T>::Encode(value, out);
  EXPECT_TRUE(out.status().ok()) << out.status();
  return capnp::messageToFlatArray(message);
}

template <class T>
absl::StatusOr<T> Decode(kj::ArrayPtr<const capnp::word> words) {
  capnp::FlatArrayMessageReader message(words);
  WireReader in(message.getRoot<capnp::AnyPointer>(), nullptr);
  return WireTraits<T>::Decode(in);
}

template <class T>
T RoundTrip(const T& value) {
  absl::StatusOr<T> back = Decode<T>(Encode(value));
  EXPECT_TRUE(back.ok()) << back.status();
  return back.value_or(T{});
}

TEST(Builtin, TypeIdsAreTheStructIdsOfBuiltinCapnp) {
  EXPECT_EQ(WireTraits<bool>::kTypeId, capnp::typeId<builtin::BoolValue>());
  EXPECT_EQ(WireTraits<int32_t>::kTypeId, capnp::typeId<builtin::Int32Value>());
  EXPECT_EQ(WireTraits<int64_t>::kTypeId, capnp::typeId<builtin::Int64Value>());
  EXPECT_EQ(WireTraits<uint32_t>::kTypeId, capnp::typeId<builtin::UInt32Value>());
  EXPECT_EQ(WireTraits<uint64_t>::kTypeId, capnp::typeId<builtin::UInt64Value>());
  EXPECT_EQ(WireTraits<double>::kTypeId, capnp::typeId<builtin::Float64Value>());
  EXPECT_EQ(WireTraits<std::string>::kTypeId, capnp::typeId<builtin::TextValue>());
  EXPECT_EQ(kVoidWireTypeId, capnp::typeId<builtin::VoidValue>());
}

TEST(Builtin, ValuesRoundTrip) {
  EXPECT_TRUE(RoundTrip(true));
  EXPECT_FALSE(RoundTrip(false));
  EXPECT_EQ(RoundTrip(std::numeric_limits<int32_t>::min()), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(RoundTrip(int64_t{-5}), -5);
  EXPECT_EQ(RoundTrip(std::numeric_limits<uint32_t>::max()), std::numeric_limits<uint32_t>::max());
  EXPECT_EQ(RoundTrip(std::numeric_limits<uint64_t>::max()), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(RoundTrip(-0.5), -0.5);
  const double nan = std::bit_cast<double>(uint64_t{0x7ff8000000000042});
  EXPECT_EQ(std::bit_cast<uint64_t>(RoundTrip(nan)), std::bit_cast<uint64_t>(nan));
  EXPECT_EQ(RoundTrip(std::string()), "");
  EXPECT_EQ(RoundTrip(std::string("with\0nul", 8)), std::string("with\0nul", 8));
}

TEST(Builtin, CapnpReadsWhatTroupeWrites) {
  {
    kj::Array<capnp::word> words = Encode(int64_t{-77});
    capnp::FlatArrayMessageReader r(words);
    EXPECT_EQ(r.getRoot<builtin::Int64Value>().getValue(), -77);
  }
  {
    kj::Array<capnp::word> words = Encode(true);
    capnp::FlatArrayMessageReader r(words);
    EXPECT_TRUE(r.getRoot<builtin::BoolValue>().getValue());
  }
  {
    kj::Array<capnp::word> words = Encode(2.5);
    capnp::FlatArrayMessageReader r(words);
    EXPECT_EQ(r.getRoot<builtin::Float64Value>().getValue(), 2.5);
  }
  {
    kj::Array<capnp::word> words = Encode(std::string("text"));
    capnp::FlatArrayMessageReader r(words);
    EXPECT_EQ(r.getRoot<builtin::TextValue>().getValue(), "text");
  }
}

TEST(Builtin, TroupeReadsWhatCapnpWrites) {
  capnp::MallocMessageBuilder a;
  a.initRoot<builtin::UInt32Value>().setValue(123456789);
  EXPECT_EQ(*Decode<uint32_t>(capnp::messageToFlatArray(a)), 123456789u);
  capnp::MallocMessageBuilder b;
  b.initRoot<builtin::Int32Value>().setValue(-9);
  EXPECT_EQ(*Decode<int32_t>(capnp::messageToFlatArray(b)), -9);
  capnp::MallocMessageBuilder c;
  c.initRoot<builtin::TextValue>().setValue("hi");
  EXPECT_EQ(*Decode<std::string>(capnp::messageToFlatArray(c)), "hi");
  capnp::MallocMessageBuilder d;
  d.initRoot<builtin::UInt64Value>().setValue(1);
  EXPECT_EQ(*Decode<uint64_t>(capnp::messageToFlatArray(d)), 1u);
}

TEST(Builtin, AnEmptyStructReadsAsZero) {
  capnp::MallocMessageBuilder message;
  message.initRoot<builtin::VoidValue>();
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  EXPECT_EQ(*Decode<int64_t>(words), 0);
  EXPECT_FALSE(*Decode<bool>(words));
  EXPECT_EQ(*Decode<std::string>(words), "");
}

TEST(Builtin, MalformedInputIsInvalidArgument) {
  capnp::MallocMessageBuilder message;
  message.getRoot<capnp::AnyPointer>().initAs<capnp::List<int64_t>>(1);
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  absl::StatusOr<int64_t> i = Decode<int64_t>(words);
  EXPECT_EQ(i.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(i.status().message(), HasSubstr("troupe.Int64"));

  capnp::MallocMessageBuilder text;
  text.getRoot<capnp::AnyPointer>().initAsAnyStruct(0, 1).getPointerSection()[0].initAsAnyStruct(1, 0);
  absl::StatusOr<std::string> s = Decode<std::string>(capnp::messageToFlatArray(text));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("troupe.Text"));
}

}  // namespace
}  // namespace troupe
