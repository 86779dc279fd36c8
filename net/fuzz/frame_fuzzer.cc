// libFuzzer's entry point: arbitrary bytes, as a node receives them from a
// socket (see frame_target.h for what is done with them).
//
// Each input runs once with the decoder's no-copy path and every frame read
// and walked; then three more times split differently (misaligned, a byte
// per Feed, chunks of sizes derived from the input), the decoder alone, and
// each run must yield the same payloads and end the same way. A crash, a
// sanitizer report, a leak or a mismatch between the runs (reported, then
// abort) is a finding; errors in the input must come back as statuses.
//
// Built three ways (net/fuzz/BUILD): with clang and -fsanitize=fuzzer under
// --config=fuzz (the fuzzer); with any compiler and replay_main.cc (a
// program that runs files through this function); and in the corpus test.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/types/span.h"
#include "net/fuzz/frame_target.h"

namespace troupe::net::fuzz {
namespace {

const char* SplitName(Split split) {
  switch (split) {
    case Split::kWholeAligned: return "whole, aligned";
    case Split::kWholeMisaligned: return "whole, misaligned";
    case Split::kBytes: return "byte by byte";
    case Split::kChunks: return "chunks";
  }
  return "?";
}

[[noreturn]] void Mismatch(Split split, const char* what, const StreamResult& first, const StreamResult& other) {
  std::fprintf(stderr,
               "frame_fuzzer: split '%s' differs from '%s' in %s\n"
               "  first: %zu frames, status %s, mid_frame %d\n"
               "  this:  %zu frames, status %s, mid_frame %d\n",
               SplitName(split), SplitName(Split::kWholeAligned), what, first.payload_sizes.size(),
               first.status.ToString().c_str(), first.mid_frame, other.payload_sizes.size(),
               other.status.ToString().c_str(), other.mid_frame);
  std::abort();
}

void CheckSame(Split split, const StreamResult& first, const StreamResult& other) {
  if (other.payload_sizes != first.payload_sizes) Mismatch(split, "payload sizes", first, other);
  if (other.payload_hashes != first.payload_hashes) Mismatch(split, "payload bytes", first, other);
  if (other.status != first.status) Mismatch(split, "the final status", first, other);
  // After an error the decoder is unusable and mid_frame() means nothing (a
  // refused length leaves it true on the copying path, false on the no-copy
  // one); the connection closes without asking.
  if (first.status.ok() && other.mid_frame != first.mid_frame) {
    Mismatch(split, "whether a frame is left partial", first, other);
  }
}

}  // namespace
}  // namespace troupe::net::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fuzz = troupe::net::fuzz;
  const absl::Span<const uint8_t> input(data, size);
  const fuzz::StreamResult first = fuzz::RunFrameStream(input, fuzz::Split::kWholeAligned);
  for (fuzz::Split split : fuzz::kAllSplits) {
    if (split == fuzz::Split::kWholeAligned) continue;
    fuzz::CheckSame(split, first, fuzz::RunFrameStream(input, split, &first));
  }
  return 0;
}
