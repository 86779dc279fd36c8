// The frame fuzzer's entry point over its seed corpus, in the ordinary test
// run (and under --config=asan / --config=tsan): every checked-in input
// goes through LLVMFuzzerTestOneInput, which aborts on a finding; the
// named seeds must also end as their names say; and the seeds made from the
// current schema (seeds.h) are checked the same way from memory.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/types/span.h"
#include "gtest/gtest.h"
#include "net/fuzz/corpus_files.h"
#include "net/fuzz/frame_target.h"
#include "net/fuzz/seeds.h"
#include "net/wire/envelope.capnp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace troupe::net::fuzz {
namespace {

// Relative to the test's working directory, the workspace's runfiles.
constexpr char kCorpusDir[] = "net/fuzz/corpus";

std::vector<CorpusFile> CheckedInCorpus() { return ReadCorpus(kCorpusDir); }

// What a file's name promises (see Seed::name); other names (inputs the
// fuzzer found) promise only that nothing crashes.
void ExpectAsNamed(const std::string& name, const StreamResult& r) {
  SCOPED_TRACE(name);
  if (absl::StartsWith(name, "valid-") || absl::StartsWith(name, "hostile-")) {
    EXPECT_TRUE(r.status.ok()) << r.status;
    EXPECT_FALSE(r.mid_frame);
    EXPECT_GE(r.payload_sizes.size(), 1u);
  } else if (absl::StartsWith(name, "bad-")) {
    EXPECT_TRUE(!r.status.ok() || r.mid_frame) << "a bad input was accepted whole";
  }
}

TEST(FrameFuzzerCorpus, EveryCheckedInInputRunsThroughTheEntryPoint) {
  const std::vector<CorpusFile> corpus = CheckedInCorpus();
  ASSERT_GE(corpus.size(), MakeSeeds().size()) << "run //net/fuzz:make_seeds (docs/fuzzing.md)";
  for (const CorpusFile& input : corpus) {
    LLVMFuzzerTestOneInput(input.bytes.data(), input.bytes.size());
    ExpectAsNamed(input.name, RunFrameStream(input.bytes, Split::kWholeAligned));
  }
}

TEST(FrameFuzzerCorpus, EveryGeneratedSeedIsCheckedIn) {
  const std::vector<CorpusFile> corpus = CheckedInCorpus();
  for (const Seed& seed : MakeSeeds()) {
    EXPECT_TRUE(std::any_of(corpus.begin(), corpus.end(), [&](const CorpusFile& i) { return i.name == seed.name; }))
        << seed.name << " is missing from " << kCorpusDir << "; run //net/fuzz:make_seeds (docs/fuzzing.md)";
  }
}

TEST(FrameFuzzerCorpus, ValidSeedsCoverEveryFrameKind) {
  uint32_t kinds = 0;
  for (const CorpusFile& input : CheckedInCorpus()) {
    if (absl::StartsWith(input.name, "valid-")) kinds |= RunFrameStream(input.bytes, Split::kWholeAligned).kinds;
  }
  for (uint32_t which = wire::Frame::HELLO; which <= wire::Frame::DOWN; ++which) {
    EXPECT_TRUE(kinds & (uint32_t{1} << which)) << "no valid seed holds a frame of kind " << which;
  }
}

TEST(FrameFuzzerCorpus, SeedsOfTheCurrentSchemaEndAsExpected) {
  for (const Seed& seed : MakeSeeds()) {
    SCOPED_TRACE(seed.name);
    LLVMFuzzerTestOneInput(seed.bytes.data(), seed.bytes.size());
    for (Split split : kAllSplits) {
      const StreamResult r = RunFrameStream(seed.bytes, split);
      EXPECT_EQ(r.status.code(), seed.expected) << r.status;
      if (r.status.ok()) {
        EXPECT_EQ(r.mid_frame, seed.expect_mid_frame);
      }
      for (size_t i = 0; i + 1 < r.frame_statuses.size(); ++i) EXPECT_TRUE(r.frame_statuses[i].ok());
    }
    ExpectAsNamed(seed.name, RunFrameStream(seed.bytes, Split::kChunks));
  }
}

TEST(FrameFuzzerCorpus, EverySplitYieldsTheSamePayloads) {
  for (const Seed& seed : MakeSeeds()) {
    SCOPED_TRACE(seed.name);
    const StreamResult first = RunFrameStream(seed.bytes, Split::kWholeAligned);
    for (Split split : kAllSplits) {
      const StreamResult r = RunFrameStream(seed.bytes, split);
      EXPECT_EQ(r.payload_hashes, first.payload_hashes);
      EXPECT_EQ(r.digest, first.digest) << "the walk read something else";
    }
  }
}

}  // namespace
}  // namespace troupe::net::fuzz
