#include "scheduler/timer_service.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

// Only a failing test ever waits this long.
constexpr std::chrono::seconds kSafetyTimeout(60);

// Counts its own destruction (moved-from copies do not count).
class DestructionCounter {
 public:
  explicit DestructionCounter(std::atomic<int>* destroyed)
      : destroyed_(destroyed) {}
  DestructionCounter(DestructionCounter&& other) noexcept
      : destroyed_(std::exchange(other.destroyed_, nullptr)) {}
  DestructionCounter& operator=(DestructionCounter&&) = delete;
  ~DestructionCounter() {
    if (destroyed_ != nullptr) destroyed_->fetch_add(1);
  }

 private:
  std::atomic<int>* destroyed_;
};

// Fulfils a promise when destroyed, so a test can wait for a callback's
// destruction without sleeping.
class SignalOnDestruction {
 public:
  explicit SignalOnDestruction(std::promise<void> promise)
      : promise_(std::make_unique<std::promise<void>>(std::move(promise))) {}
  SignalOnDestruction(SignalOnDestruction&&) noexcept = default;
  SignalOnDestruction& operator=(SignalOnDestruction&&) = delete;
  ~SignalOnDestruction() {
    if (promise_ != nullptr) promise_->set_value();
  }

 private:
  std::unique_ptr<std::promise<void>> promise_;
};

template <typename T>
bool Ready(std::future<T>& future) {
  return future.wait_for(kSafetyTimeout) == std::future_status::ready;
}

// --- ManualTimerService ---------------------------------------------------

TEST(ManualTimerService, StartsAtItsEpochAndStaysThereUntilAdvanced) {
  ManualTimerService timers;
  EXPECT_EQ(timers.Now(), ManualTimerService::Epoch());
  EXPECT_EQ(timers.NextDeadline(), std::nullopt);
  timers.AdvanceBy(absl::Seconds(3));
  EXPECT_EQ(timers.Now(), ManualTimerService::Epoch() + absl::Seconds(3));
  timers.AdvanceTo(ManualTimerService::Epoch());  // never backwards
  EXPECT_EQ(timers.Now(), ManualTimerService::Epoch() + absl::Seconds(3));
}

TEST(ManualTimerService, FiresInDeadlineOrderWithNowAtEachDeadline) {
  ManualTimerService timers;
  const absl::Time t0 = timers.Now();
  std::vector<std::pair<int, absl::Time>> fired;
  for (int ms : {30, 10, 20, 10, 5}) {
    timers.Schedule(t0 + absl::Milliseconds(ms), [&, ms]() {
      fired.emplace_back(ms, timers.Now());
    });
  }
  EXPECT_EQ(timers.Pending(), 5u);
  EXPECT_EQ(timers.NextDeadline(), t0 + absl::Milliseconds(5));
  timers.AdvanceBy(absl::Seconds(1));
  ASSERT_EQ(fired.size(), 5u);
  const int expected[] = {5, 10, 10, 20, 30};
  for (size_t i = 0; i < fired.size(); ++i) {
    EXPECT_EQ(fired[i].first, expected[i]);
    EXPECT_EQ(fired[i].second, t0 + absl::Milliseconds(expected[i]));
  }
  EXPECT_EQ(timers.Pending(), 0u);
  EXPECT_EQ(timers.Now(), t0 + absl::Seconds(1));
}

TEST(ManualTimerService, NothingFiresBeforeItsDeadline) {
  ManualTimerService timers;
  const absl::Time deadline = timers.Now() + absl::Microseconds(1500);
  bool ran = false;
  timers.Schedule(deadline, [&]() { ran = true; });
  timers.AdvanceTo(deadline - absl::Nanoseconds(1));
  EXPECT_FALSE(ran);
  timers.AdvanceTo(deadline);
  EXPECT_TRUE(ran);
}

TEST(ManualTimerService, PastDeadlineFiresAtTheNextAdvanceNeverInsideSchedule) {
  ManualTimerService timers;
  timers.AdvanceBy(absl::Seconds(10));
  const absl::Time now = timers.Now();
  absl::Time seen;
  bool ran = false;
  timers.Schedule(now - absl::Seconds(5), [&]() {
    ran = true;
    seen = timers.Now();
  });
  EXPECT_FALSE(ran);
  EXPECT_EQ(timers.NextDeadline(), now - absl::Seconds(5));
  timers.AdvanceBy(absl::ZeroDuration());
  EXPECT_TRUE(ran);
  EXPECT_EQ(seen, now);  // virtual time does not go back for it
}

TEST(ManualTimerService, CancelBeforeFiringDestroysTheCallbackAndReturnsTrue) {
  ManualTimerService timers;
  std::atomic<int> destroyed{0};
  bool ran = false;
  TimerId id = timers.Schedule(
      timers.Now() + absl::Seconds(1),
      [counter = DestructionCounter(&destroyed), &ran]() { ran = true; });
  ASSERT_TRUE(id);
  EXPECT_TRUE(timers.Cancel(id));
  EXPECT_EQ(destroyed.load(), 1);
  EXPECT_EQ(timers.Pending(), 0u);
  EXPECT_FALSE(timers.Cancel(id));
  timers.AdvanceBy(absl::Seconds(2));
  EXPECT_FALSE(ran);
}

TEST(ManualTimerService, CancelAfterFiringOrOfAnUnknownIdReturnsFalse) {
  ManualTimerService timers;
  std::atomic<int> destroyed{0};
  TimerId id = timers.Schedule(timers.Now() + absl::Seconds(1),
                               [counter = DestructionCounter(&destroyed)]() {
                               });
  timers.AdvanceBy(absl::Seconds(1));
  EXPECT_EQ(destroyed.load(), 1);  // destroyed right after running
  EXPECT_FALSE(timers.Cancel(id));
  EXPECT_FALSE(timers.Cancel(TimerId{}));
  EXPECT_FALSE(timers.Cancel(TimerId{12345}));
}

TEST(ManualTimerService, CancellingItselfFromItsCallbackReturnsFalse) {
  ManualTimerService timers;
  TimerId id;
  std::optional<bool> cancelled;
  id = timers.Schedule(timers.Now() + absl::Seconds(1),
                       [&]() { cancelled = timers.Cancel(id); });
  timers.AdvanceBy(absl::Seconds(1));
  EXPECT_EQ(cancelled, false);
}

TEST(ManualTimerService, CallbacksScheduleTimersThatFireInOrderInTheSameAdvance) {
  ManualTimerService timers;
  const absl::Time t0 = timers.Now();
  std::vector<std::pair<std::string, absl::Time>> fired;
  auto record = [&](std::string name) {
    fired.emplace_back(std::move(name), timers.Now());
  };
  timers.Schedule(t0 + absl::Milliseconds(12), [&]() { record("b"); });
  timers.Schedule(t0 + absl::Milliseconds(10), [&]() {
    record("a");
    // Before, between and after the timers already pending.
    timers.Schedule(timers.Now() + absl::Milliseconds(1),
                    [&]() { record("a+1"); });
    timers.Schedule(timers.Now() + absl::Milliseconds(5),
                    [&]() { record("a+5"); });
    timers.Schedule(timers.Now(), [&]() { record("a+0"); });
  });
  timers.AdvanceTo(t0 + absl::Milliseconds(14));
  const std::vector<std::pair<std::string, absl::Time>> expected = {
      {"a", t0 + absl::Milliseconds(10)},
      {"a+0", t0 + absl::Milliseconds(10)},
      {"a+1", t0 + absl::Milliseconds(11)},
      {"b", t0 + absl::Milliseconds(12)},
  };
  EXPECT_EQ(fired, expected);
  EXPECT_EQ(timers.Pending(), 1u);
  timers.AdvanceTo(t0 + absl::Milliseconds(15));
  ASSERT_EQ(fired.size(), 5u);
  EXPECT_EQ(fired.back().first, "a+5");
}

TEST(ManualTimerService, CallbackMayCancelALaterTimer) {
  ManualTimerService timers;
  std::atomic<int> destroyed{0};
  bool later_ran = false;
  TimerId later = timers.Schedule(
      timers.Now() + absl::Seconds(2),
      [counter = DestructionCounter(&destroyed), &later_ran]() {
        later_ran = true;
      });
  std::optional<bool> cancelled;
  timers.Schedule(timers.Now() + absl::Seconds(1),
                  [&]() { cancelled = timers.Cancel(later); });
  timers.AdvanceBy(absl::Seconds(5));
  EXPECT_EQ(cancelled, true);
  EXPECT_FALSE(later_ran);
  EXPECT_EQ(destroyed.load(), 1);
}

TEST(ManualTimerService, PeriodicTimerRunsOncePerInterval) {
  ManualTimerService timers;
  const absl::Time t0 = timers.Now();
  std::vector<absl::Time> runs;
  TimerId id = timers.SchedulePeriodic(
      absl::Seconds(1), [&] { runs.push_back(timers.Now()); });
  EXPECT_EQ(timers.Pending(), 1u);
  timers.AdvanceBy(absl::Milliseconds(999));
  EXPECT_TRUE(runs.empty());
  timers.AdvanceBy(absl::Milliseconds(9001));  // to t0 + 10 s
  ASSERT_EQ(runs.size(), 10u);
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i], t0 + absl::Seconds(static_cast<int64_t>(i) + 1));
  }
  EXPECT_EQ(timers.Pending(), 1u);
  EXPECT_EQ(timers.NextDeadline(), t0 + absl::Seconds(11));
  EXPECT_TRUE(timers.Cancel(id));
  EXPECT_EQ(timers.Pending(), 0u);
  timers.AdvanceBy(absl::Seconds(10));
  EXPECT_EQ(runs.size(), 10u);
}

TEST(ManualTimerService, CancelStopsAPeriodicSeriesAndDestroysItsCallback) {
  ManualTimerService timers;
  std::atomic<int> destroyed{0};
  int runs = 0;
  TimerId id = timers.SchedulePeriodic(
      absl::Milliseconds(10),
      [counter = DestructionCounter(&destroyed), &runs] { ++runs; });
  timers.AdvanceBy(absl::Milliseconds(35));
  EXPECT_EQ(runs, 3);
  EXPECT_TRUE(timers.Cancel(id));
  EXPECT_EQ(destroyed.load(), 1);
  EXPECT_FALSE(timers.Cancel(id));
  timers.AdvanceBy(absl::Seconds(1));
  EXPECT_EQ(runs, 3);
}

TEST(ManualTimerService, PeriodicTimerCancelledFromItsOwnCallbackStops) {
  ManualTimerService timers;
  std::atomic<int> destroyed{0};
  int runs = 0;
  TimerId id;
  std::vector<bool> cancel_results;
  id = timers.SchedulePeriodic(
      absl::Milliseconds(10),
      [counter = DestructionCounter(&destroyed), &runs, &id, &timers,
       &cancel_results] {
        if (++runs == 3) {
          cancel_results.push_back(timers.Cancel(id));
          cancel_results.push_back(timers.Cancel(id));
        }
      });
  timers.AdvanceBy(absl::Seconds(1));
  EXPECT_EQ(runs, 3);
  EXPECT_EQ(cancel_results, (std::vector<bool>{true, false}));
  EXPECT_EQ(destroyed.load(), 1);  // right after the run that cancelled it
  EXPECT_EQ(timers.Pending(), 0u);
}

TEST(ManualTimerService, PeriodicIntervalShorterThanTheResolutionIsRaised) {
  ManualTimerService timers;
  int runs = 0;
  timers.SchedulePeriodic(absl::ZeroDuration(), [&runs] { ++runs; });
  timers.AdvanceBy(absl::Milliseconds(10));  // must terminate
  EXPECT_EQ(runs, 10);
}

TEST(ManualTimerService, ShutdownDestroysPendingCallbacksWithoutRunningThem) {
  ManualTimerService timers;
  std::atomic<int> destroyed{0};
  std::atomic<int> ran{0};
  for (int i = 0; i < 10; ++i) {
    timers.Schedule(timers.Now() + absl::Seconds(i + 1),
                    [counter = DestructionCounter(&destroyed), &ran]() {
                      ++ran;
                    });
  }
  timers.SchedulePeriodic(
      absl::Seconds(1),
      [counter = DestructionCounter(&destroyed), &ran] { ++ran; });
  timers.Shutdown();
  EXPECT_EQ(destroyed.load(), 11);
  EXPECT_EQ(timers.Pending(), 0u);
  timers.AdvanceBy(absl::Hours(1));
  EXPECT_EQ(ran.load(), 0);
  timers.Shutdown();  // idempotent
}

TEST(ManualTimerService, ScheduleAfterShutdownDestroysTheCallbackAndReturnsNoId) {
  ManualTimerService timers;
  timers.Shutdown();
  std::atomic<int> destroyed{0};
  TimerId id = timers.Schedule(timers.Now(),
                               [counter = DestructionCounter(&destroyed)]() {
                               });
  EXPECT_FALSE(id);
  TimerId series = timers.SchedulePeriodic(
      absl::Seconds(1), [counter = DestructionCounter(&destroyed)] {});
  EXPECT_FALSE(series);
  EXPECT_EQ(destroyed.load(), 2);
}

TEST(ManualTimerService, FarDeadlinesFireAtTheirExactTime) {
  ManualTimerService timers;
  const absl::Time t0 = timers.Now();
  const absl::Time in_400_days = t0 + absl::Hours(24 * 400);
  const absl::Time in_1000_days = in_400_days + absl::Hours(24 * 600);
  const absl::Time in_a_century = t0 + absl::Hours(24 * 36525) +
                                  absl::Nanoseconds(7);
  std::vector<absl::Time> seen;
  for (absl::Time t : {in_a_century, in_1000_days, in_400_days}) {
    timers.Schedule(t, [&]() { seen.push_back(timers.Now()); });
  }
  EXPECT_EQ(timers.NextDeadline(), in_400_days);
  timers.AdvanceTo(*timers.NextDeadline());
  EXPECT_EQ(timers.NextDeadline(), in_1000_days);
  timers.AdvanceTo(in_a_century - absl::Nanoseconds(1));
  EXPECT_EQ(seen.size(), 2u);
  timers.AdvanceTo(in_a_century);
  EXPECT_EQ(seen, (std::vector<absl::Time>{in_400_days, in_1000_days,
                                            in_a_century}));
}

TEST(ManualTimerService, AMillionPendingTimersAreScheduledAndCancelled) {
  constexpr int kCount = 1'000'000;
  ManualTimerService timers;
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int64_t> offset_ms(1, 3'600'000);
  std::vector<TimerId> ids;
  ids.reserve(kCount);
  int ran = 0;
  for (int i = 0; i < kCount; ++i) {
    ids.push_back(timers.Schedule(
        timers.Now() + absl::Milliseconds(offset_ms(rng)),
        [&ran]() { ++ran; }));
  }
  EXPECT_EQ(timers.Pending(), static_cast<size_t>(kCount));
  std::shuffle(ids.begin(), ids.end(), rng);
  for (size_t i = 0; i + 1000 < ids.size(); ++i) {
    ASSERT_TRUE(timers.Cancel(ids[i]));
  }
  EXPECT_EQ(timers.Pending(), 1000u);
  timers.AdvanceBy(absl::Hours(1));
  EXPECT_EQ(ran, 1000);
  EXPECT_EQ(timers.Pending(), 0u);
}

// --- RealTimerService -----------------------------------------------------

TEST(RealTimerService, FiresNoEarlierThanTheDeadlineAndInDeadlineOrder) {
  std::mutex mu;
  std::vector<std::pair<int, absl::Time>> fired;  // guarded by mu
  std::promise<void> last_fired;
  std::future<void> done = last_fired.get_future();
  // Declared after what its callbacks use, so its thread is joined first.
  RealTimerService timers;
  const absl::Time t0 = timers.Now();
  const std::vector<int> offsets_ms = {20, 1, 10, 5, 3};
  for (int ms : offsets_ms) {
    const absl::Time deadline = t0 + absl::Milliseconds(ms);
    timers.Schedule(deadline, [&, ms, deadline]() {
      const absl::Time now = absl::Now();
      EXPECT_GE(now, deadline);
      std::lock_guard<std::mutex> lock(mu);
      fired.emplace_back(ms, now);
      if (ms == 20) last_fired.set_value();
    });
  }
  ASSERT_TRUE(Ready(done));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(fired.size(), 5u);
  const int expected[] = {1, 3, 5, 10, 20};
  for (size_t i = 0; i < fired.size(); ++i) {
    EXPECT_EQ(fired[i].first, expected[i]);
  }
}

TEST(RealTimerService, PastDeadlineFiresOnTheTimerThreadNotInsideSchedule) {
  std::promise<std::thread::id> ran_on;
  std::future<std::thread::id> thread = ran_on.get_future();
  RealTimerService timers;
  timers.Schedule(absl::InfinitePast(), [&]() {
    ran_on.set_value(std::this_thread::get_id());
  });
  ASSERT_TRUE(Ready(thread));
  EXPECT_NE(thread.get(), std::this_thread::get_id());
}

TEST(RealTimerService, IsOwnThreadOnlyOnItsNamedTimerThread) {
  RealTimerService timers(absl::Milliseconds(1), "a-timer-thread-named-at-length");
  RealTimerService other;
  ManualTimerService manual;
  struct Seen {
    bool own, other, manual;
    std::string name;
  };
  std::promise<Seen> seen;
  std::future<Seen> result = seen.get_future();
  timers.Schedule(absl::InfinitePast(), [&]() {
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof(name));
    seen.set_value({timers.IsOwnThread(), other.IsOwnThread(), manual.IsOwnThread(), name});
  });
  ASSERT_TRUE(Ready(result));
  const Seen s = result.get();
  EXPECT_TRUE(s.own);
  EXPECT_FALSE(s.other);
  EXPECT_FALSE(s.manual);
  EXPECT_EQ(s.name, "a-timer-thread-");  // cut to the kernel's 15 bytes
  EXPECT_FALSE(timers.IsOwnThread());
}

TEST(RealTimerService, EarlierDeadlineWakesTheSleepingThread) {
  std::atomic<int> destroyed{0};
  std::promise<void> fired;
  std::future<void> done = fired.get_future();
  RealTimerService timers;
  TimerId far = timers.Schedule(timers.Now() + absl::Hours(1),
                                [counter = DestructionCounter(&destroyed)]() {
                                });
  timers.Schedule(timers.Now() + absl::Milliseconds(2),
                  [&]() { fired.set_value(); });
  ASSERT_TRUE(Ready(done));  // would take an hour without the wakeup
  EXPECT_EQ(timers.Pending(), 1u);
  EXPECT_TRUE(timers.Cancel(far));
  EXPECT_EQ(destroyed.load(), 1);
}

TEST(RealTimerService, CancelBeforeTheDeadlineDestroysTheCallbackWithoutRunningIt) {
  std::atomic<int> destroyed{0};
  std::atomic<bool> ran{false};
  RealTimerService timers;
  TimerId id = timers.Schedule(
      timers.Now() + absl::Seconds(30),
      [counter = DestructionCounter(&destroyed), &ran]() { ran = true; });
  EXPECT_TRUE(timers.Cancel(id));
  EXPECT_EQ(destroyed.load(), 1);
  EXPECT_FALSE(ran.load());
  EXPECT_EQ(timers.Pending(), 0u);
  EXPECT_FALSE(timers.Cancel(id));
}

TEST(RealTimerService, CallbacksMayScheduleAndCancelTimers) {
  std::promise<void> second_fired;
  std::future<void> done = second_fired.get_future();
  std::atomic<bool> cancelled_ran{false};
  std::atomic<bool> cancel_result{false};
  RealTimerService timers;
  timers.Schedule(timers.Now(), [&]() {
    TimerId doomed = timers.Schedule(timers.Now() + absl::Milliseconds(3),
                                     [&]() { cancelled_ran = true; });
    cancel_result = timers.Cancel(doomed);
    timers.Schedule(timers.Now() + absl::Milliseconds(5),
                    [&]() { second_fired.set_value(); });
  });
  ASSERT_TRUE(Ready(done));
  EXPECT_TRUE(cancel_result.load());
  EXPECT_FALSE(cancelled_ran.load());
}

TEST(RealTimerService, PeriodicTimerCancelledFromItsOwnCallbackStopsAndIsDestroyed) {
  std::promise<void> destroyed;
  std::future<void> gone = destroyed.get_future();
  std::atomic<int> runs{0};
  std::atomic<uint64_t> id_value{0};
  std::atomic<int> cancels_returning_true{0};
  std::promise<void> later;
  std::future<void> later_done = later.get_future();
  RealTimerService timers;
  const TimerId id = timers.SchedulePeriodic(
      absl::Milliseconds(1),
      [signal = SignalOnDestruction(std::move(destroyed)), &runs, &id_value,
       &timers, &cancels_returning_true] {
        // The id is published after SchedulePeriodic returns; keep running
        // until it is visible, then stop the series from inside.
        ++runs;
        const uint64_t value = id_value.load();
        if (value != 0 && timers.Cancel(TimerId{value})) {
          ++cancels_returning_true;
        }
      });
  id_value = id.value;
  ASSERT_TRUE(Ready(gone));  // destroyed on the timer thread after its run
  const int runs_at_destruction = runs.load();
  EXPECT_GE(runs_at_destruction, 1);
  EXPECT_EQ(cancels_returning_true.load(), 1);
  EXPECT_EQ(timers.Pending(), 0u);
  EXPECT_FALSE(timers.Cancel(id));
  // A one-shot scheduled now, 5 ms out, runs after any further run of the
  // series would have; none happens.
  timers.Schedule(timers.Now() + absl::Milliseconds(5),
                  [&]() { later.set_value(); });
  ASSERT_TRUE(Ready(later_done));
  EXPECT_EQ(runs.load(), runs_at_destruction);
}

TEST(RealTimerService, CancellingAPeriodicSeriesFromAnotherThreadStopsIt) {
  std::promise<void> destroyed;
  std::future<void> gone = destroyed.get_future();
  std::promise<void> third_run;
  std::future<void> ran_thrice = third_run.get_future();
  std::atomic<int> runs{0};
  std::promise<void> later;
  std::future<void> later_done = later.get_future();
  RealTimerService timers;
  const TimerId id = timers.SchedulePeriodic(
      absl::Milliseconds(1),
      [signal = SignalOnDestruction(std::move(destroyed)), &runs, &third_run] {
        if (++runs == 3) third_run.set_value();
      });
  ASSERT_TRUE(Ready(ran_thrice));
  // The series is armed or in the middle of a run; either way it stops.
  EXPECT_TRUE(timers.Cancel(id));
  ASSERT_TRUE(Ready(gone));
  const int runs_at_destruction = runs.load();
  EXPECT_FALSE(timers.Cancel(id));
  timers.Schedule(timers.Now() + absl::Milliseconds(5),
                  [&]() { later.set_value(); });
  ASSERT_TRUE(Ready(later_done));
  EXPECT_EQ(runs.load(), runs_at_destruction);
}

TEST(RealTimerService, ShutdownBreaksPromisesOwnedByPendingCallbacks) {
  RealTimerService timers;
  std::atomic<int> destroyed{0};
  std::vector<std::future<int>> futures;
  for (int i = 0; i < 5; ++i) {
    std::promise<int> promise;
    futures.push_back(promise.get_future());
    timers.Schedule(timers.Now() + absl::Hours(i + 1),
                    [promise = std::move(promise),
                     counter = DestructionCounter(&destroyed)]() mutable {
                      promise.set_value(1);
                    });
  }
  timers.SchedulePeriodic(absl::Hours(1),
                          [counter = DestructionCounter(&destroyed)] {});
  timers.Shutdown();
  EXPECT_EQ(destroyed.load(), 6);
  EXPECT_EQ(timers.Pending(), 0u);
  for (std::future<int>& future : futures) {
    ASSERT_EQ(future.wait_for(std::chrono::seconds(0)),
              std::future_status::ready);
    EXPECT_THROW(future.get(), std::future_error);
  }
  EXPECT_FALSE(timers.Schedule(timers.Now(), [] {}));
}

TEST(RealTimerService, ShutdownFromInsideACallbackDoesNotDeadlock) {
  std::atomic<int> destroyed{0};
  std::promise<void> returned;
  std::future<void> done = returned.get_future();
  {
    RealTimerService timers;
    timers.Schedule(timers.Now() + absl::Hours(1),
                    [counter = DestructionCounter(&destroyed)]() {});
    timers.Schedule(timers.Now(), [&]() {
      timers.Shutdown();
      returned.set_value();
    });
    ASSERT_TRUE(Ready(done));
    EXPECT_EQ(destroyed.load(), 1);
  }  // the destructor joins the timer thread
}

// Several threads schedule and cancel at once. Every timer ends exactly one
// way: Cancel returned true and it never runs, or it runs exactly once.
TEST(RealTimerService, ConcurrentScheduleAndCancelFromSeveralThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 1500;
  constexpr int kTotal = kThreads * kPerThread;
  std::vector<std::atomic<int>> runs(kTotal);
  std::vector<std::atomic<bool>> cancelled(kTotal);
  std::mutex mu;
  std::condition_variable all_ran;
  int ran = 0;  // guarded by mu
  RealTimerService timers;

  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::uniform_int_distribution<int> delay_us(0, 3000);
      std::vector<std::pair<TimerId, int>> mine;
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        const int index = t * kPerThread + i;
        const absl::Time deadline =
            absl::Now() + absl::Microseconds(delay_us(rng));
        TimerId id = timers.Schedule(deadline, [&, index, deadline]() {
          EXPECT_GE(absl::Now(), deadline);
          runs[index].fetch_add(1);
          std::lock_guard<std::mutex> lock(mu);
          ++ran;
          all_ran.notify_all();
        });
        mine.emplace_back(id, index);
        if (rng() % 2 == 0) {
          // Cancel one of ours at random: pending, running or done.
          const auto& [victim, victim_index] = mine[rng() % mine.size()];
          if (timers.Cancel(victim)) cancelled[victim_index] = true;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  int expected_runs = 0;
  for (int i = 0; i < kTotal; ++i) {
    if (!cancelled[i].load()) ++expected_runs;
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(all_ran.wait_for(lock, kSafetyTimeout,
                                 [&] { return ran == expected_runs; }));
  }
  for (int i = 0; i < kTotal; ++i) {
    ASSERT_EQ(runs[i].load(), cancelled[i].load() ? 0 : 1) << "timer " << i;
  }
  EXPECT_EQ(timers.Pending(), 0u);
}

}  // namespace
}  // namespace troupe
