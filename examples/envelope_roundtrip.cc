// Encodes messages in troupe's wire envelope, decodes them again, checks every
// field, and prints the rate. The smallest program that exercises the whole
// toolchain: Abseil flags and time, a Cap'n Proto schema compiled by the
// Bazel macro, and the Cap'n Proto runtime.
//
//   ./tools/bazel run -c opt //examples:envelope_roundtrip -- --count=1000000

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstdint>
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "net/wire/envelope.capnp.h"

ABSL_FLAG(int64_t, count, 200000, "how many envelopes to encode and decode");

namespace {

using troupe::wire::ActorAddress;
using troupe::wire::Envelope;

kj::Array<capnp::word> Encode(uint64_t i) {
  capnp::MallocMessageBuilder message;
  Envelope::Builder envelope = message.initRoot<Envelope>();
  envelope.initTarget().setActor(i);
  envelope.setRequestId(i + 1);
  envelope.setTypeId(capnp::typeId<ActorAddress>());
  envelope.getPayload().initAs<ActorAddress>().setActor(i * 3);
  return capnp::messageToFlatArray(message);
}

bool DecodesTo(kj::ArrayPtr<const capnp::word> frame, uint64_t i) {
  capnp::FlatArrayMessageReader reader(frame);
  Envelope::Reader envelope = reader.getRoot<Envelope>();
  return envelope.getTarget().getActor() == i && envelope.getRequestId() == i + 1 &&
         envelope.getTypeId() == capnp::typeId<ActorAddress>() &&
         envelope.getPayload().getAs<ActorAddress>().getActor() == i * 3;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int64_t count = absl::GetFlag(FLAGS_count);
  if (count <= 0) {
    std::fprintf(stderr, "--count must be positive, got %lld\n", static_cast<long long>(count));
    return 2;
  }

  const absl::Time start = absl::Now();
  uint64_t bytes = 0;
  for (int64_t i = 0; i < count; ++i) {
    kj::Array<capnp::word> frame = Encode(static_cast<uint64_t>(i));
    bytes += frame.asBytes().size();
    if (!DecodesTo(frame, static_cast<uint64_t>(i))) {
      std::fprintf(stderr, "envelope %lld did not decode to what was encoded\n",
                   static_cast<long long>(i));
      return 1;
    }
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);

  std::printf("round-tripped %lld envelopes (%.1f bytes each) in %.3f s: %.2f M envelopes/s\n",
              static_cast<long long>(count), static_cast<double>(bytes) / count, seconds,
              count / seconds / 1e6);
  return 0;
}
