// The WireTraits of the built-in reply types declared in actors/wire.h,
// against the layouts of net/wire/builtin.capnp: each is a struct with one
// field `value` at offset 0 (a one-word data section for scalars, one
// pointer for Text). Written by hand with the same runtime as generated
// codecs (net/codegen/runtime.h).

#include <cstdint>
#include <string>

#include "actors/wire.h"
#include "capnp/any.h"
#include "kj/exception.h"
#include "net/codegen/runtime.h"
#include "net/wire/codec.h"

namespace troupe {
namespace {

template <class T>
void EncodeScalar(T value, WireWriter& out) {
  try {
    capnp::AnyStruct::Builder s = out.payload().initAsAnyStruct(1, 0);
    if constexpr (std::is_same_v<T, bool>) {
      codegen::PutBool(s.getDataSection(), 0, value, false);
    } else {
      codegen::PutScalar<T>(s.getDataSection(), 0, value, 0);
    }
  } catch (const kj::Exception& e) {
    out.Fail(codegen::MalformedError("cannot encode", WireTraits<T>::kName, e));
  }
}

template <class T>
absl::StatusOr<T> DecodeScalar(WireReader& in) {
  T value{};
  try {
    const kj::ArrayPtr<const kj::byte> data = in.payload().getAs<capnp::AnyStruct>().getDataSection();
    if constexpr (std::is_same_v<T, bool>) {
      codegen::GetBool(data, 0, false, value);
    } else {
      codegen::GetScalar<T>(data, 0, 0, value);
    }
  } catch (const kj::Exception& e) {
    return codegen::MalformedError("malformed", WireTraits<T>::kName, e);
  }
  return value;
}

}  // namespace

#define TROUPE_BUILTIN_SCALAR(T)                                                                 \
  void WireTraits<T>::Encode(const T& value, WireWriter& out) { EncodeScalar<T>(value, out); } \
  absl::StatusOr<T> WireTraits<T>::Decode(WireReader& in) { return DecodeScalar<T>(in); }
TROUPE_BUILTIN_SCALAR(bool)
TROUPE_BUILTIN_SCALAR(int32_t)
TROUPE_BUILTIN_SCALAR(int64_t)
TROUPE_BUILTIN_SCALAR(uint32_t)
TROUPE_BUILTIN_SCALAR(uint64_t)
TROUPE_BUILTIN_SCALAR(double)
#undef TROUPE_BUILTIN_SCALAR

void WireTraits<std::string>::Encode(const std::string& value, WireWriter& out) {
  try {
    capnp::AnyStruct::Builder s = out.payload().initAsAnyStruct(0, 1);
    codegen::TextCodec<>::Write(s.getPointerSection()[0], value, out);
  } catch (const kj::Exception& e) {
    out.Fail(codegen::MalformedError("cannot encode", WireTraits<std::string>::kName, e));
  }
}

absl::StatusOr<std::string> WireTraits<std::string>::Decode(WireReader& in) {
  std::string value;
  try {
    capnp::List<capnp::AnyPointer>::Reader pointers = in.payload().getAs<capnp::AnyStruct>().getPointerSection();
    if (pointers.size() > 0) {
      absl::Status status = codegen::TextCodec<>::Read(pointers[0], in, value);
      if (!status.ok()) return status;
    }
  } catch (const kj::Exception& e) {
    return codegen::MalformedError("malformed", WireTraits<std::string>::kName, e);
  }
  return value;
}

}  // namespace troupe
