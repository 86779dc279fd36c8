// codec_bench: nanoseconds per Encode and per Decode of generated message
// codecs, the way a node runs them per message.
//
//  - encode: a MallocMessageBuilder over a reused, zeroed first segment
//    (capnp's advice for many small messages; its destructor zeroes what was
//    used), a WireWriter on its root, WireTraits<T>::Encode.
//  - decode: a FlatArrayMessageReader over the encoded words (it reads the
//    segment table), a WireReader on its root, WireTraits<T>::Decode into a
//    fresh T.
//  - the same loops without the Encode / Decode call, to show what the
//    builder and reader cost by themselves.
//
// For a small struct (Ping: Int64, Text of 15 bytes, Bool) and a large one
// (Post of all_types.capnp with every field set, no Refs). Median of --reps
// runs of --iterations each. Every run checks its result and exits 1 with a
// "FAILED" line if it is wrong; nothing asserts a speed.
//
//   ./tools/bazel run -c opt //net/codegen:codec_bench [-- --iterations=N --reps=N]

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "capnp/message.h"
#include "capnp/serialize.h"
#include "net/codegen/test_support.h"
#include "net/codegen/testdata/all_types.troupe.h"
#include "net/wire/codec.h"

ABSL_FLAG(int, iterations, 2000000, "operations per timed run");
ABSL_FLAG(int, reps, 7, "timed runs; the median is printed");
ABSL_FLAG(std::string, only, "", "run only this message (Ping or Post)");

namespace troupe::codegen_test {
namespace {

// Keeps the compiler from dropping a computation whose result is unused.
template <class T>
void Keep(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

[[noreturn]] void Fail(const char* what) {
  std::printf("FAILED: %s\n", what);
  std::exit(1);
}

// Median ns per iteration of `body` over --reps runs.
double Measure(const std::function<void(int)>& body) {
  const int iterations = absl::GetFlag(FLAGS_iterations);
  std::vector<double> ns;
  for (int rep = 0; rep < absl::GetFlag(FLAGS_reps); ++rep) {
    const auto start = std::chrono::steady_clock::now();
    body(iterations);
    const auto end = std::chrono::steady_clock::now();
    ns.push_back(std::chrono::duration<double, std::nano>(end - start).count() / iterations);
  }
  std::sort(ns.begin(), ns.end());
  return ns[ns.size() / 2];
}

template <class T>
void Run(const char* name, const T& value) {
  // Encode.
  std::vector<capnp::word> scratch(1024, capnp::word());
  kj::ArrayPtr<capnp::word> first(scratch.data(), scratch.size());
  const double builder_only = Measure([&](int n) {
    for (int i = 0; i < n; ++i) {
      capnp::MallocMessageBuilder message(first);
      WireWriter out(message.getRoot<capnp::AnyPointer>(), nullptr);
      Keep(out);
    }
  });
  const double encode = Measure([&](int n) {
    for (int i = 0; i < n; ++i) {
      capnp::MallocMessageBuilder message(first);
      WireWriter out(message.getRoot<capnp::AnyPointer>(), nullptr);
      WireTraits<T>::Encode(value, out);
      Keep(scratch[1]);
    }
  });

  // Decode.
  absl::StatusOr<kj::Array<capnp::word>> words = EncodeToWords(value);
  if (!words.ok()) Fail("encode");
  if (*DecodeWords<T>(*words) != value) Fail("round trip");
  const double reader_only = Measure([&](int n) {
    for (int i = 0; i < n; ++i) {
      capnp::FlatArrayMessageReader message(*words);
      WireReader in(message.getRoot<capnp::AnyPointer>(), nullptr);
      Keep(in);
    }
  });
  const double decode = Measure([&](int n) {
    for (int i = 0; i < n; ++i) {
      capnp::FlatArrayMessageReader message(*words);
      WireReader in(message.getRoot<capnp::AnyPointer>(), nullptr);
      absl::StatusOr<T> v = WireTraits<T>::Decode(in);
      Keep(v);
    }
  });
  {
    capnp::FlatArrayMessageReader message(*words);
    WireReader in(message.getRoot<capnp::AnyPointer>(), nullptr);
    if (*WireTraits<T>::Decode(in) != value) Fail("decode");
  }
  std::printf("%-6s %5zu bytes  encode %7.1f ns (builder alone %5.1f)  decode %7.1f ns (reader alone %5.1f)\n", name,
              words->size() * sizeof(capnp::word), encode, builder_only, decode, reader_only);
}

}  // namespace
}  // namespace troupe::codegen_test

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using namespace troupe::codegen_test;
  const std::string only = absl::GetFlag(FLAGS_only);
  if (only.empty() || only == "Ping") Run("Ping", Ping{.seq = 123456789, .sender = "node-a/actor-17", .urgent = true});
  if (only.empty() || only == "Post") Run("Post", FullPost());
  return 0;
}
