// libFuzzer's entry point of the node fuzzer: one input is one connection
// the node accepted; its first byte chooses raw or authenticated, the rest
// are length-prefixed frames (see node_target.h). A crash, a sanitizer
// report, a leak or a broken invariant (reported, then abort) is a finding.
//
// Built like frame_fuzzer (net/fuzz/BUILD): with libFuzzer under
// --config=fuzz, with replay_main.cc otherwise, and in the corpus test.

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"
#include "net/fuzz/node_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  troupe::net::fuzz::RunNodeInput(absl::Span<const uint8_t>(data, size));
  return 0;
}
