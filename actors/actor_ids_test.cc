// Actor ids: unique within one system for its lifetime, also when systems
// come and go on one thread (the testkit runs actors on the test's thread,
// so every system there takes child ids on the same thread).

#include <vector>

#include "absl/container/flat_hash_set.h"
#include "actors/actor.h"
#include "actors/testkit/test_system.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

struct SpawnChildren {
  int count;
};
struct Leaf : Actor<Leaf> {};
struct Spawner : Actor<Spawner> {
  // Child ids come from the per-thread id blocks (top-level ids do not).
  std::vector<ActorId> On(const SpawnChildren& s) {
    std::vector<ActorId> ids;
    for (int i = 0; i < s.count; ++i) ids.push_back(Spawn<Leaf>().id());
    return ids;
  }
};

TEST(ActorIds, ChildIdsNeverRepeatWithinASystemWhileSystemsComeAndGoOnOneThread) {
  constexpr int kSystems = 50;
  // More than one id block per system, so each system's own blocks reach
  // the ids a block left over by an earlier system would hand out.
  constexpr int kChildren = 300;
  for (int round = 0; round < kSystems; ++round) {
    testkit::TestSystem sys;
    Future<std::vector<ActorId>> ids = sys.Spawn<Spawner>().Ask(SpawnChildren{.count = kChildren});
    sys.RunUntilIdle();
    Result<std::vector<ActorId>> got = ids.Take();
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), static_cast<size_t>(kChildren));
    const absl::flat_hash_set<ActorId> unique(got->begin(), got->end());
    EXPECT_EQ(unique.size(), got->size()) << "system " << round << " handed out an id twice";
    EXPECT_FALSE(unique.contains(0));
  }
}

}  // namespace
}  // namespace troupe
