// InlineTurn (actors/system_core.h): the first actor made runnable while a
// scope is open on a thread outside the pool runs its turn on that thread,
// when the scope closes; every other actor goes to the workers as usual.

#include <atomic>
#include <thread>

#include "actors/actor.h"
#include "actors/actor_system.h"
#include "actors/system_core.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

struct Note {};
struct WhereRan {};

struct Recorder : Actor<Recorder> {
  void On(const Note&) { ran_on = std::this_thread::get_id(); }
  std::thread::id On(const WhereRan&) { return ran_on; }
  std::thread::id ran_on;
};

TEST(InlineTurn, TheFirstActorMadeRunnableRunsOnTheScopesThreadWhenItCloses) {
  ActorSystem sys({.workers = 1});
  Ref<Recorder> first = sys.Spawn<Recorder>();
  Ref<Recorder> second = sys.Spawn<Recorder>();
  // Both idle (their start turns done) before the scope opens.
  ASSERT_TRUE(first.Ask(WhereRan{}).Wait(absl::Seconds(10)).ok());
  ASSERT_TRUE(second.Ask(WhereRan{}).Wait(absl::Seconds(10)).ok());
  {
    internal::InlineTurn turn(sys.core());
    first.Tell(Note{});
    second.Tell(Note{});
  }
  EXPECT_EQ(first.Ask(WhereRan{}).Wait(absl::Seconds(10)).value(), std::this_thread::get_id());
  const std::thread::id worker = second.Ask(WhereRan{}).Wait(absl::Seconds(10)).value();
  EXPECT_NE(worker, std::this_thread::get_id());
  EXPECT_NE(worker, std::thread::id());
}

TEST(InlineTurn, AnActorOfAnotherSystemIsNotTaken) {
  ActorSystem a({.workers = 1}), b({.workers = 1});
  Ref<Recorder> of_b = b.Spawn<Recorder>();
  ASSERT_TRUE(of_b.Ask(WhereRan{}).Wait(absl::Seconds(10)).ok());
  {
    internal::InlineTurn turn(a.core());
    of_b.Tell(Note{});
  }
  const std::thread::id ran = of_b.Ask(WhereRan{}).Wait(absl::Seconds(10)).value();
  EXPECT_NE(ran, std::this_thread::get_id());
}

}  // namespace
}  // namespace troupe
