// TestSystem: an ActorSystem that runs step by step on the test's thread,
// with virtual time. Actors under test are the real ones; only the executor
// and the clock differ, so protocol logic is tested with no threads, no
// sleeps and no timing.
//
//   troupe::testkit::TestSystem sys;
//   auto c = sys.Spawn<Counter>();
//   c.Tell(Add{.by = 2});
//   troupe::Future<int64_t> v = c.Ask(Get{});
//   sys.RunUntilIdle();                   // runs every actor until none has work
//   EXPECT_EQ(*v.Take(), 2);              // Take: never blocks
//
//   c.Ask(Get{}, absl::Seconds(5));       // deadlines run on virtual time:
//   sys.AdvanceBy(absl::Seconds(5));      // fires due timers, then runs until idle
//
// Who may call what: the test's thread drives it (RunUntilIdle, AdvanceBy);
// sends may come from any thread, they are queued. Future::Wait would block
// the only thread that can run actors: use Take after RunUntilIdle instead.
// Blocking jobs still run on the real blocking pool.

#ifndef TROUPE_ACTORS_TESTKIT_TEST_SYSTEM_H_
#define TROUPE_ACTORS_TESTKIT_TEST_SYSTEM_H_

#include <cstddef>
#include <memory>
#include <utility>

#include "absl/time/time.h"
#include "actors/actor_system.h"
#include "scheduler/manual_executor.h"
#include "scheduler/timer_service.h"

namespace troupe::testkit {

class TestSystem : public ActorSystem {
 public:
  explicit TestSystem(ActorSystemOptions options = {})
      : TestSystem(std::move(options), new ManualExecutor(), std::make_shared<ManualTimerService>()) {}

  // Stops every actor, running them as they stop, then shuts down.
  ~TestSystem() { ShutdownAndRun().IgnoreError(); }

  // Runs actor turns until no actor has work. Returns the turns run.
  size_t RunUntilIdle() { return executor_->RunUntilIdle(); }
  // Runs a single actor turn; false if none was due.
  bool RunOne() { return executor_->RunOne(); }
  // Actor turns waiting to run.
  size_t queued() const { return executor_->queued(); }

  // The runtime underneath, for tests that inspect timers or counters.
  internal::SystemCore& core_for_test() const { return core(); }

  // Moves virtual time forward, firing due timers in deadline order, then
  // runs until idle.
  void AdvanceBy(absl::Duration d) {
    timers_->AdvanceBy(d);
    RunUntilIdle();
  }

  // ActorSystem::Shutdown waits for actors to stop, which here happens only
  // when the test runs them: this asks them to stop, runs them, then shuts
  // down. Pending asks end with Cancelled.
  absl::Status ShutdownAndRun() {
    core().BeginShutdown();
    RunUntilIdle();
    if (core().live_top_level() > 0) {
      // Stopping in order did not finish (an actor waits for something
      // that never comes): stop the rest immediately, as Shutdown would.
      core().StopAllNow();
      RunUntilIdle();
    }
    return Shutdown(absl::ZeroDuration());
  }

 private:
  TestSystem(ActorSystemOptions options, ManualExecutor* executor, std::shared_ptr<ManualTimerService> timers)
      : ActorSystem(std::move(options), std::unique_ptr<Executor>(executor), timers),
        executor_(executor),
        timers_(std::move(timers)) {}

  ManualExecutor* executor_;  // owned by the system
  std::shared_ptr<ManualTimerService> timers_;
};

}  // namespace troupe::testkit

#endif  // TROUPE_ACTORS_TESTKIT_TEST_SYSTEM_H_
