// The node fuzzer's entry point over its seed corpus, in the ordinary test
// run (and under --config=asan / --config=tsan): every checked-in input
// goes through LLVMFuzzerTestOneInput, which aborts on a broken invariant;
// the seeds made from the current schemas (node_seeds.h) must also end as
// they promise: authenticated or not, closed or not, with the replies and
// downs due.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/types/span.h"
#include "gtest/gtest.h"
#include "net/fuzz/corpus_files.h"
#include "net/fuzz/node_seeds.h"
#include "net/fuzz/node_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace troupe::net::fuzz {
namespace {

// Relative to the test's working directory, the workspace's runfiles.
constexpr char kCorpusDir[] = "net/fuzz/node_corpus";

std::vector<CorpusFile> CheckedInCorpus() { return ReadCorpus(kCorpusDir); }

TEST(NodeFuzzerCorpus, EveryCheckedInInputRunsThroughTheEntryPoint) {
  const std::vector<CorpusFile> corpus = CheckedInCorpus();
  ASSERT_GE(corpus.size(), MakeNodeSeeds().size()) << "run //net/fuzz:make_seeds (docs/fuzzing.md)";
  for (const CorpusFile& input : corpus) {
    SCOPED_TRACE(input.name);
    LLVMFuzzerTestOneInput(input.bytes.data(), input.bytes.size());
  }
}

TEST(NodeFuzzerCorpus, EveryGeneratedSeedIsCheckedIn) {
  const std::vector<CorpusFile> corpus = CheckedInCorpus();
  for (const NodeSeed& seed : MakeNodeSeeds()) {
    auto it = std::find_if(corpus.begin(), corpus.end(), [&](const CorpusFile& i) { return i.name == seed.name; });
    ASSERT_NE(it, corpus.end()) << seed.name << " is missing from " << kCorpusDir
                                << "; run //net/fuzz:make_seeds (docs/fuzzing.md)";
    EXPECT_EQ(it->bytes, seed.bytes) << seed.name << " differs from the current schema's; run //net/fuzz:make_seeds";
  }
}

TEST(NodeFuzzerCorpus, SeedsEndAsTheyPromise) {
  for (const NodeSeed& seed : MakeNodeSeeds()) {
    SCOPED_TRACE(seed.name);
    const NodeRunResult r = RunNodeInput(seed.bytes);
    const bool auth = absl::StartsWith(seed.name, "auth-");
    EXPECT_EQ(r.authenticated, auth);
    EXPECT_TRUE(r.frames_fed >= 1 || r.oversized);
    EXPECT_EQ(r.closed_by_node || r.oversized, seed.closes);
    EXPECT_EQ(r.replies, seed.replies);
    // Downs of watched actors that stop come later, if before the end.
    EXPECT_GE(r.downs, seed.downs);
  }
}

TEST(NodeFuzzerCorpus, EachSeedTwiceInARowEndsTheSame) {
  // The harness restores what an input changed (stopped test actors, the
  // peer it made): the next input finds the same node.
  for (const NodeSeed& seed : MakeNodeSeeds()) {
    SCOPED_TRACE(seed.name);
    const NodeRunResult first = RunNodeInput(seed.bytes);
    const NodeRunResult second = RunNodeInput(seed.bytes);
    EXPECT_EQ(first.replies, second.replies);
    EXPECT_EQ(first.frames_fed, second.frames_fed);
    EXPECT_EQ(first.closed_by_node, second.closed_by_node);
  }
}

}  // namespace
}  // namespace troupe::net::fuzz
