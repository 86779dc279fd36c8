// What an idle actor costs the runtime, not counting the user's state.

#include <malloc.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "actors/actor.h"
#include "actors/testkit/test_system.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

struct Idle : Actor<Idle> {
  void On(int) {}
};

// glibc keeps one size word in front of every chunk it hands out.
constexpr size_t kMallocHeader = sizeof(size_t);

TEST(ActorMemory, AnIdleActorsAllocationIsUnder128Bytes) {
  testkit::TestSystem sys;
  Ref<Idle> idle = sys.Spawn<Idle>();
  // The actor is one allocation: the cell with the (stateless) user object.
  const size_t bytes = malloc_usable_size(idle.cell()) + kMallocHeader;
  std::printf("one idle actor: sizeof(ActorCell) = %zu, allocation = %zu bytes\n", sizeof(internal::ActorCell),
              bytes);
  EXPECT_LT(bytes, 128u);
}

size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// Everything an idle actor costs, as the process sees it: the allocation,
// allocator overhead, and its entry in the system's list of top-level actors.
TEST(ActorMemory, ResidentBytesPerIdleActorStayUnder128) {
  constexpr int kActors = 200000;
  testkit::TestSystem sys;
  std::vector<Ref<Idle>> refs;
  refs.reserve(kActors);  // the test's own vector is not the runtime's cost
  const size_t before = ResidentBytes();
  for (int i = 0; i < kActors; ++i) refs.push_back(sys.Spawn<Idle>());
  const size_t after = ResidentBytes();
  const double per_actor = static_cast<double>(after - before) / kActors;
  std::printf("%d idle actors: %.1f resident bytes each\n", kActors, per_actor);
  EXPECT_LT(per_actor, 128.0);
}

}  // namespace
}  // namespace troupe
