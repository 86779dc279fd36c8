// What the code written by capnpc-troupe calls: the raw Cap'n Proto struct
// layout of a message, field by field, through capnp's public API
// (AnyStruct, AnyPointer, List). Not for hand-written code: use
// WireTraits<T>::Encode / Decode (actors/wire.h).
//
// Layout, as Cap'n Proto defines it and as the plugin reads it from the
// schema: a struct is a data section of `kDataWords` 64-bit words and a
// pointer section of `kPointers` pointers. A scalar field sits at an offset
// counted in units of its own size (bools in bits), little-endian, stored
// XOR its schema default, so an all-zero section means "every field has its
// default". Text, Data, lists, nested structs and actor addresses are
// pointers.
//
// Decoding trusts nothing: a data or pointer section shorter than the
// schema says (an older writer) leaves the missing fields at their
// defaults; every pointer is followed through capnp's checked readers,
// which throw kj::Exception on anything malformed (out of bounds, wrong
// kind, traversal or nesting limit). DecodeRoot turns that exception into
// InvalidArgument. A null pointer leaves the field at its default; a
// generated struct's members start at their schema defaults.
//
// Encoding never skips a field that differs from its default. Empty Text,
// Data and lists are left null (which reads back as empty) unless the field
// has a non-empty default, in which case an empty value is written
// explicitly.
//
// Who may call what: any thread, one message per WireWriter / WireReader.

#ifndef TROUPE_NET_CODEGEN_RUNTIME_H_
#define TROUPE_NET_CODEGEN_RUNTIME_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "actors/actor_box.h"
#include "actors/ref.h"
#include "actors/wire.h"
#include "capnp/any.h"
#include "capnp/blob.h"
#include "capnp/list.h"
#include "kj/common.h"
#include "kj/exception.h"
#include "net/wire/codec.h"

namespace troupe::codegen {

// Specialized by generated code for every message struct T:
//
//   static constexpr uint16_t kDataWords;   // size of the data section
//   static constexpr uint16_t kPointers;    // size of the pointer section
//   static void Write(const T&, capnp::AnyStruct::Builder, WireWriter&);
//   static absl::Status Read(capnp::AnyStruct::Reader, WireReader&, T&);
//
// Read fills a T whose members hold their defaults; it returns an error
// only for what capnp cannot see (an actor address the RefCodec refuses)
// and throws kj::Exception for malformed input.
template <class T>
struct WireStruct;

// ---------------------------------------------------------------------------
// Scalars in the data section.

// The unsigned integer a scalar is stored as.
template <class T>
using BitsOf = std::conditional_t<
    sizeof(T) == 1, uint8_t,
    std::conditional_t<sizeof(T) == 2, uint16_t, std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;

template <class T>
constexpr BitsOf<T> ToBits(T value) noexcept {
  if constexpr (std::is_enum_v<T>) {
    static_assert(std::is_same_v<std::underlying_type_t<T>, uint16_t>, "wire enums are 16 bits");
    return static_cast<uint16_t>(value);
  } else {
    return std::bit_cast<BitsOf<T>>(value);
  }
}

template <class T>
constexpr T FromBits(BitsOf<T> bits) noexcept {
  if constexpr (std::is_enum_v<T>) {
    return static_cast<T>(bits);
  } else {
    return std::bit_cast<T>(bits);
  }
}

// Cap'n Proto is little-endian on the wire.
template <class U>
constexpr U ToLittleEndian(U bits) noexcept {
  if constexpr (std::endian::native == std::endian::little || sizeof(U) == 1) {
    return bits;
  } else if constexpr (sizeof(U) == 2) {
    return __builtin_bswap16(bits);
  } else if constexpr (sizeof(U) == 4) {
    return __builtin_bswap32(bits);
  } else {
    return __builtin_bswap64(bits);
  }
}

template <class U>
inline void StoreLittleEndian(kj::byte* at, U bits) noexcept {
  bits = ToLittleEndian(bits);
  std::memcpy(at, &bits, sizeof(U));
}

template <class U>
inline U LoadLittleEndian(const kj::byte* at) noexcept {
  U bits;
  std::memcpy(&bits, at, sizeof(U));
  return ToLittleEndian(bits);
}

// `index` counts units of sizeof(T). The section was allocated with the
// schema's size, so the offset is in range.
template <class T>
inline void PutScalar(kj::ArrayPtr<kj::byte> data, size_t index, T value, BitsOf<T> default_bits) noexcept {
  StoreLittleEndian<BitsOf<T>>(data.begin() + index * sizeof(T), ToBits(value) ^ default_bits);
}

// Leaves `out` alone (at its default) when the section is too short.
template <class T>
inline void GetScalar(kj::ArrayPtr<const kj::byte> data, size_t index, BitsOf<T> default_bits, T& out) noexcept {
  if ((index + 1) * sizeof(T) > data.size()) return;
  out = FromBits<T>(LoadLittleEndian<BitsOf<T>>(data.begin() + index * sizeof(T)) ^ default_bits);
}

// `bit` counts bits from the start of the section.
inline void PutBool(kj::ArrayPtr<kj::byte> data, size_t bit, bool value, bool default_value) noexcept {
  const kj::byte mask = static_cast<kj::byte>(1u << (bit % 8));
  kj::byte& b = data[bit / 8];
  b = (value != default_value) ? static_cast<kj::byte>(b | mask) : static_cast<kj::byte>(b & ~mask);
}

inline void GetBool(kj::ArrayPtr<const kj::byte> data, size_t bit, bool default_value, bool& out) noexcept {
  if (bit / 8 >= data.size()) return;
  out = (((data[bit / 8] >> (bit % 8)) & 1u) != 0) != default_value;
}

// ---------------------------------------------------------------------------
// Pointer codecs: how one pointer-typed value is written into, and read
// from, a pointer slot. Each has `using Value`, `Write(slot, value, out)`
// and `Read(slot, in, value)`. kHasDefault: the field has a default other
// than empty, so an empty value must be written rather than left null, and
// a null slot must leave the default alone; without one, null reads as
// empty through capnp's readers and needs no check of its own.

inline capnp::Text::Reader AsText(const std::string& s) noexcept { return capnp::Text::Reader(s.c_str(), s.size()); }

inline capnp::Data::Reader AsData(const std::string& s) noexcept {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

template <bool kHasDefault = false>
struct TextCodec {
  using Value = std::string;
  static void Write(capnp::AnyPointer::Builder slot, const std::string& value, WireWriter&) {
    if (kHasDefault || !value.empty()) slot.setAs<capnp::Text>(AsText(value));
  }
  static absl::Status Read(capnp::AnyPointer::Reader slot, WireReader&, std::string& value) {
    if (kHasDefault && slot.isNull()) return absl::OkStatus();
    capnp::Text::Reader text = slot.getAs<capnp::Text>();
    value.assign(text.begin(), text.size());
    return absl::OkStatus();
  }
};

// Data is carried in a std::string too: bytes, no terminator, any content.
template <bool kHasDefault = false>
struct DataCodec {
  using Value = std::string;
  static void Write(capnp::AnyPointer::Builder slot, const std::string& value, WireWriter&) {
    if (kHasDefault || !value.empty()) slot.setAs<capnp::Data>(AsData(value));
  }
  static absl::Status Read(capnp::AnyPointer::Reader slot, WireReader&, std::string& value) {
    if (kHasDefault && slot.isNull()) return absl::OkStatus();
    capnp::Data::Reader data = slot.getAs<capnp::Data>();
    value.assign(reinterpret_cast<const char*>(data.begin()), data.size());
    return absl::OkStatus();
  }
};

// kReset: the field has a default of its own (not T{}), which a non-null
// struct on the wire replaces entirely. Without one, a null slot reads as an
// empty struct, which leaves every member at its default.
template <class T, bool kReset = false>
struct StructCodec {
  using Value = T;
  static void Write(capnp::AnyPointer::Builder slot, const T& value, WireWriter& out) {
    WireStruct<T>::Write(value, slot.initAsAnyStruct(WireStruct<T>::kDataWords, WireStruct<T>::kPointers), out);
  }
  static absl::Status Read(capnp::AnyPointer::Reader slot, WireReader& in, T& value) {
    if constexpr (kReset) {
      if (slot.isNull()) return absl::OkStatus();
      value = T{};
    }
    return WireStruct<T>::Read(slot.getAs<capnp::AnyStruct>(), in, value);
  }
};

// The capnp list element a scalar is stored as (enums as UInt16).
template <class T>
using WireScalar = std::conditional_t<std::is_enum_v<T>, uint16_t, T>;

// List(Bool), List(Int*), List(UInt*), List(Float*), List(Enum).
template <class T, bool kHasDefault = false>
struct ScalarListCodec {
  using Value = std::vector<T>;
  using Wire = WireScalar<T>;
  static void Write(capnp::AnyPointer::Builder slot, const std::vector<T>& value, WireWriter&) {
    if (!kHasDefault && value.empty()) return;
    auto list = slot.initAs<capnp::List<Wire>>(static_cast<unsigned>(value.size()));
    for (unsigned i = 0; i < list.size(); ++i) list.set(i, static_cast<Wire>(value[i]));
  }
  static absl::Status Read(capnp::AnyPointer::Reader slot, WireReader&, std::vector<T>& value) {
    if (kHasDefault && slot.isNull()) return absl::OkStatus();
    auto list = slot.getAs<capnp::List<Wire>>();
    value.clear();
    value.reserve(list.size());
    for (unsigned i = 0; i < list.size(); ++i) value.push_back(static_cast<T>(list[i]));
    return absl::OkStatus();
  }
};

// A list pointer read as a list of structs, checked as capnp's own readers
// check it: any element size but bits (a list of data or of pointers reads
// as structs of one field, which is how capnp lets a List(T) grow into a
// List(Struct)). Throws kj::Exception for a pointer that is not a list.
absl::StatusOr<capnp::List<capnp::AnyStruct>::Reader> ReadStructList(capnp::AnyPointer::Reader slot);

// A list pointer read as a list of pointers: a pointer list, or a struct
// list whose elements' first pointers are read (the same upgrade). A null
// pointer reads as an empty list.
class PointerListReader {
 public:
  static absl::StatusOr<PointerListReader> Read(capnp::AnyPointer::Reader slot);
  unsigned size() const { return size_; }
  capnp::AnyPointer::Reader operator[](unsigned i) const;

 private:
  bool structs_ = false;
  unsigned size_ = 0;
  capnp::List<capnp::AnyPointer>::Reader pointers_;
  capnp::List<capnp::AnyStruct>::Reader structs_list_;
};

// List(Struct): the structs inline, one after the other.
template <class T, bool kHasDefault = false>
struct StructListCodec {
  using Value = std::vector<T>;
  static void Write(capnp::AnyPointer::Builder slot, const std::vector<T>& value, WireWriter& out) {
    if (!kHasDefault && value.empty()) return;
    auto list = slot.initAsListOfAnyStruct(WireStruct<T>::kDataWords, WireStruct<T>::kPointers,
                                           static_cast<unsigned>(value.size()));
    for (unsigned i = 0; i < list.size(); ++i) WireStruct<T>::Write(value[i], list[i], out);
  }
  static absl::Status Read(capnp::AnyPointer::Reader slot, WireReader& in, std::vector<T>& value) {
    if (kHasDefault && slot.isNull()) return absl::OkStatus();
    absl::StatusOr<capnp::List<capnp::AnyStruct>::Reader> list = ReadStructList(slot);
    if (ABSL_PREDICT_FALSE(!list.ok())) return list.status();
    value.clear();
    value.resize(list->size());
    for (unsigned i = 0; i < list->size(); ++i) {
      absl::Status status = WireStruct<T>::Read((*list)[i], in, value[i]);
      if (ABSL_PREDICT_FALSE(!status.ok())) return status;
    }
    return absl::OkStatus();
  }
};

// A list of pointers (List(Text), List(Data), List(List(...))), each
// element written by `Element`, another codec.
template <class Element, bool kHasDefault = false>
struct ListCodec {
  using Value = std::vector<typename Element::Value>;
  static void Write(capnp::AnyPointer::Builder slot, const Value& value, WireWriter& out) {
    if (!kHasDefault && value.empty()) return;
    auto list = slot.initAsAnyList(capnp::ElementSize::POINTER, static_cast<unsigned>(value.size()))
                    .as<capnp::List<capnp::AnyPointer>>();
    for (unsigned i = 0; i < list.size(); ++i) Element::Write(list[i], value[i], out);
  }
  static absl::Status Read(capnp::AnyPointer::Reader slot, WireReader& in, Value& value) {
    if (kHasDefault && slot.isNull()) return absl::OkStatus();
    absl::StatusOr<PointerListReader> list = PointerListReader::Read(slot);
    if (ABSL_PREDICT_FALSE(!list.ok())) return list.status();
    value.clear();
    value.resize(list->size());
    for (unsigned i = 0; i < list->size(); ++i) {
      absl::Status status = Element::Read((*list)[i], in, value[i]);
      if (ABSL_PREDICT_FALSE(!status.ok())) return status;
    }
    return absl::OkStatus();
  }
};

// A Troupe.ActorAddress field: Ref<A>, or ActorRef for A = void. The
// RefCodec of the writer / reader turns it into an address and back.
template <class A>
struct ActorRefCodec {
  using Value = std::conditional_t<std::is_void_v<A>, ActorRef, Ref<A>>;
  static void Write(capnp::AnyPointer::Builder slot, const Value& value, WireWriter& out) {
    if (value) out.EncodeRef(value, slot);
  }
  static absl::Status Read(capnp::AnyPointer::Reader slot, WireReader& in, Value& value) {
    if (slot.isNull()) return absl::OkStatus();
    if constexpr (std::is_void_v<A>) {
      absl::StatusOr<ActorRef> ref = in.DecodeRef(slot, std::string_view());
      if (ABSL_PREDICT_FALSE(!ref.ok())) return ref.status();
      value = *std::move(ref);
    } else {
      absl::StatusOr<ActorRef> ref = in.DecodeRef(slot, internal::TypeName<A>());
      if (ABSL_PREDICT_FALSE(!ref.ok())) return ref.status();
      value = Ref<A>::UncheckedCast(*std::move(ref));
    }
    return absl::OkStatus();
  }
};

// ---------------------------------------------------------------------------
// Errors and the root of a message.

// `status` from field `field` of the struct being read: "field: ...".
absl::Status FieldError(const absl::Status& status, std::string_view field);

// A kj::Exception from capnp while reading or writing message type `name`.
absl::Status MalformedError(std::string_view what, std::string_view name, const kj::Exception& e);

template <class T>
void EncodeRoot(const T& value, WireWriter& out) {
  try {
    WireStruct<T>::Write(value, out.payload().initAsAnyStruct(WireStruct<T>::kDataWords, WireStruct<T>::kPointers),
                         out);
  } catch (const kj::Exception& e) {
    out.Fail(MalformedError("cannot encode", WireTraits<T>::kName, e));
  }
}

template <class T>
absl::StatusOr<T> DecodeRoot(WireReader& in) {
  T value;
  try {
    absl::Status status = WireStruct<T>::Read(in.payload().getAs<capnp::AnyStruct>(), in, value);
    if (ABSL_PREDICT_FALSE(!status.ok())) {
      constexpr std::string_view kName = WireTraits<T>::kName;
      return absl::Status(status.code(),
                          absl::StrCat("decoding ", absl::string_view(kName.data(), kName.size()), ": ", status.message()));
    }
  } catch (const kj::Exception& e) {
    return MalformedError("malformed", WireTraits<T>::kName, e);
  }
  return value;
}

}  // namespace troupe::codegen

#endif  // TROUPE_NET_CODEGEN_RUNTIME_H_
