#include "scheduler/timer_wheel.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace troupe {
namespace {

using Expired = TimerWheel::Expired;

const absl::Time kStart = absl::FromUnixSeconds(1'000'000'000);

// Counts its own destruction (moved-from copies do not count).
class DestructionCounter {
 public:
  explicit DestructionCounter(int* destroyed) : destroyed_(destroyed) {}
  DestructionCounter(DestructionCounter&& other) noexcept
      : destroyed_(std::exchange(other.destroyed_, nullptr)) {}
  DestructionCounter& operator=(DestructionCounter&&) = delete;
  ~DestructionCounter() {
    if (destroyed_ != nullptr) ++*destroyed_;
  }

 private:
  int* destroyed_;
};

std::vector<uint64_t> Keys(const std::vector<Expired>& expired) {
  std::vector<uint64_t> keys;
  for (const Expired& e : expired) keys.push_back(e.key);
  return keys;
}

std::vector<uint64_t> AdvanceKeys(TimerWheel& wheel, absl::Time now) {
  std::vector<Expired> out;
  wheel.Advance(now, out);
  return Keys(out);
}

TEST(TimerWheel, FiresInDeadlineOrder) {
  TimerWheel wheel(kStart);
  const int offsets_ms[] = {50, 3, 700, 1, 90'000, 20, 4'000'000, 64, 63};
  for (int ms : offsets_ms) {
    wheel.Insert(kStart + absl::Milliseconds(ms), ms, nullptr);
  }
  EXPECT_EQ(wheel.size(), 9u);
  std::vector<Expired> out;
  wheel.Advance(kStart + absl::Hours(2), out);
  EXPECT_EQ(Keys(out), (std::vector<uint64_t>{1, 3, 20, 50, 63, 64, 700,
                                              90'000, 4'000'000}));
  for (const Expired& e : out) {
    EXPECT_EQ(e.deadline, kStart + absl::Milliseconds(e.key));
  }
  EXPECT_TRUE(wheel.empty());
}

TEST(TimerWheel, EntriesWithTheSameDeadlineFireInInsertionOrder) {
  TimerWheel wheel(kStart);
  const absl::Time deadline = kStart + absl::Seconds(3);
  for (uint64_t key = 0; key < 100; ++key) {
    wheel.Insert(deadline, 99 - key, nullptr);
  }
  std::vector<uint64_t> expected;
  for (uint64_t key = 0; key < 100; ++key) expected.push_back(99 - key);
  EXPECT_EQ(AdvanceKeys(wheel, deadline), expected);
}

TEST(TimerWheel, DeadlinesWithinOneTickFireInExactOrder) {
  TimerWheel wheel(kStart);  // 1 ms ticks
  wheel.Insert(kStart + absl::Microseconds(1700), 17, nullptr);
  wheel.Insert(kStart + absl::Microseconds(1100), 11, nullptr);
  wheel.Insert(kStart + absl::Microseconds(1999), 19, nullptr);
  EXPECT_EQ(AdvanceKeys(wheel, kStart + absl::Milliseconds(2)),
            (std::vector<uint64_t>{11, 17, 19}));
}

TEST(TimerWheel, AdvanceCollectsOnlyEntriesDueByThatTime) {
  TimerWheel wheel(kStart);
  wheel.Insert(kStart + absl::Microseconds(1500), 1, nullptr);
  wheel.Insert(kStart + absl::Microseconds(1800), 2, nullptr);
  EXPECT_TRUE(AdvanceKeys(wheel, kStart + absl::Microseconds(1200)).empty());
  EXPECT_TRUE(AdvanceKeys(wheel, kStart + absl::Microseconds(1499)).empty());
  EXPECT_EQ(AdvanceKeys(wheel, kStart + absl::Microseconds(1500)),
            (std::vector<uint64_t>{1}));
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_EQ(AdvanceKeys(wheel, kStart + absl::Microseconds(1800)),
            (std::vector<uint64_t>{2}));
  EXPECT_TRUE(wheel.empty());
}

TEST(TimerWheel, CallbacksComeBackUnrunAndRunnableOnce) {
  TimerWheel wheel(kStart);
  int ran = 0;
  wheel.Insert(kStart + absl::Milliseconds(5), 1, [&ran]() { ++ran; });
  std::vector<Expired> out;
  wheel.Advance(kStart + absl::Milliseconds(5), out);
  EXPECT_EQ(ran, 0);
  ASSERT_EQ(out.size(), 1u);
  std::move(out[0].callback)();
  EXPECT_EQ(ran, 1);
}

TEST(TimerWheel, CancelledEntryNeverFiresAndItsCallbackIsHandedBack) {
  TimerWheel wheel(kStart);
  int destroyed = 0;
  bool ran = false;
  TimerWheel::Entry* doomed = wheel.Insert(
      kStart + absl::Milliseconds(10), 1,
      [counter = DestructionCounter(&destroyed), &ran]() { ran = true; });
  wheel.Insert(kStart + absl::Milliseconds(10), 2, nullptr);
  TimerWheel::Callback callback = wheel.Cancel(doomed);
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_EQ(destroyed, 0);  // handed back, not destroyed by the wheel
  callback = nullptr;
  EXPECT_EQ(destroyed, 1);
  EXPECT_EQ(AdvanceKeys(wheel, kStart + absl::Seconds(1)),
            (std::vector<uint64_t>{2}));
  EXPECT_FALSE(ran);
}

TEST(TimerWheel, CancellingTheLastEntryOfEachKindEmptiesTheWheel) {
  TimerWheel wheel(kStart);
  std::vector<TimerWheel::Entry*> entries;
  // One per level, one in the overflow list, one at infinity.
  for (int level = 0; level <= TimerWheel::kLevels; ++level) {
    const int64_t ticks = int64_t{1} << (TimerWheel::kBitsPerLevel * level);
    entries.push_back(wheel.Insert(kStart + absl::Milliseconds(ticks + 1),
                                   level, nullptr));
  }
  entries.push_back(wheel.Insert(absl::InfiniteFuture(), 99, nullptr));
  for (TimerWheel::Entry* entry : entries) wheel.Cancel(entry);
  EXPECT_TRUE(wheel.empty());
  EXPECT_EQ(wheel.NextWakeup(), std::nullopt);
  EXPECT_EQ(wheel.NextDeadline(), std::nullopt);
  EXPECT_TRUE(AdvanceKeys(wheel, absl::InfiniteFuture()).empty());
}

TEST(TimerWheel, DeadlinesInThePastAreDueAtTheNextAdvance) {
  TimerWheel wheel(kStart);
  const absl::Time now = kStart + absl::Seconds(10);
  EXPECT_TRUE(AdvanceKeys(wheel, now).empty());
  wheel.Insert(now - absl::Milliseconds(5), 1, nullptr);
  wheel.Insert(absl::InfinitePast(), 2, nullptr);
  wheel.Insert(kStart - absl::Hours(1), 3, nullptr);
  wheel.Insert(now + absl::Microseconds(1), 4, nullptr);
  EXPECT_EQ(wheel.NextDeadline(), absl::InfinitePast());
  EXPECT_EQ(AdvanceKeys(wheel, now), (std::vector<uint64_t>{2, 3, 1}));
  EXPECT_EQ(AdvanceKeys(wheel, now + absl::Microseconds(1)),
            (std::vector<uint64_t>{4}));
}

TEST(TimerWheel, TimeNeverGoesBackButLateInsertionsStillFire) {
  TimerWheel wheel(kStart);
  EXPECT_TRUE(AdvanceKeys(wheel, kStart + absl::Seconds(5)).empty());
  wheel.Insert(kStart + absl::Seconds(1), 1, nullptr);
  // Advancing to an earlier time than before still collects what is due.
  EXPECT_EQ(AdvanceKeys(wheel, kStart + absl::Seconds(2)),
            (std::vector<uint64_t>{1}));
}

TEST(TimerWheel, FarDeadlinesCascadeThroughEveryLevelAndFireOnTime) {
  TimerWheel wheel(kStart);
  std::vector<absl::Time> deadlines;
  // Around each level boundary (64^k ticks), up to past the wheel's range
  // (64^6 ms ~ 795 days) into the overflow list, up to ~150 years.
  for (int k = 0; k <= TimerWheel::kLevels + 1; ++k) {
    const int64_t ticks = int64_t{1} << (TimerWheel::kBitsPerLevel * k);
    for (int64_t delta : {-1, 0, 1, 7}) {
      if (ticks + delta <= 0) continue;
      deadlines.push_back(kStart + absl::Milliseconds(ticks + delta) -
                          absl::Microseconds(300));
    }
  }
  deadlines.push_back(kStart + absl::Hours(24 * 365 * 300));
  std::sort(deadlines.begin(), deadlines.end());
  for (size_t i = 0; i < deadlines.size(); ++i) {
    wheel.Insert(deadlines[i], i, nullptr);
  }
  wheel.Insert(absl::InfiniteFuture(), 1000, nullptr);

  for (size_t i = 0; i < deadlines.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(wheel.NextDeadline(), deadlines[i]);
    std::optional<absl::Time> wakeup = wheel.NextWakeup();
    ASSERT_TRUE(wakeup.has_value());
    EXPECT_LE(*wakeup, deadlines[i] + absl::Milliseconds(1));
    EXPECT_TRUE(AdvanceKeys(wheel, deadlines[i] - absl::Nanoseconds(1)).empty());
    EXPECT_EQ(AdvanceKeys(wheel, deadlines[i]), (std::vector<uint64_t>{i}));
  }
  EXPECT_EQ(wheel.size(), 1u);
  EXPECT_EQ(wheel.NextDeadline(), absl::InfiniteFuture());
  EXPECT_TRUE(AdvanceKeys(wheel, kStart + absl::Hours(24 * 365 * 10'000))
                  .empty());
  EXPECT_EQ(AdvanceKeys(wheel, absl::InfiniteFuture()),
            (std::vector<uint64_t>{1000}));
}

// A driver that only ever sleeps until NextWakeup() (as RealTimerService
// does) sees every entry within one tick after its deadline, and wakes a
// number of times that depends on the entries, not on the time spanned.
TEST(TimerWheel, FollowingNextWakeupFiresEveryEntryWithinATickAndSkipsIdleTime) {
  TimerWheel wheel(kStart);
  std::mt19937_64 rng(7);
  std::vector<absl::Time> deadlines;
  for (int i = 0; i < 200; ++i) {
    // Log-uniform from 1 us to ~9 years: every level and the overflow list.
    const double exponent = std::uniform_real_distribution<double>(0, 48)(rng);
    deadlines.push_back(kStart + absl::Microseconds(static_cast<int64_t>(
                                     std::exp2(exponent))));
    wheel.Insert(deadlines.back(), i, nullptr);
  }
  int wakeups = 0;
  size_t fired = 0;
  while (std::optional<absl::Time> wakeup = wheel.NextWakeup()) {
    ++wakeups;
    std::vector<Expired> out;
    wheel.Advance(*wakeup, out);
    for (const Expired& e : out) {
      EXPECT_LE(e.deadline, *wakeup);
      EXPECT_LT(*wakeup - e.deadline, absl::Milliseconds(1));
      EXPECT_EQ(e.deadline, deadlines[e.key]);
    }
    fired += out.size();
    ASSERT_LT(wakeups, 200 * (TimerWheel::kLevels + 2));
  }
  EXPECT_EQ(fired, deadlines.size());
}

TEST(TimerWheel, CoarserResolutionStillFiresAtExactDeadlines) {
  TimerWheel wheel(kStart, absl::Milliseconds(10));
  wheel.Insert(kStart + absl::Milliseconds(17), 17, nullptr);
  wheel.Insert(kStart + absl::Milliseconds(3), 3, nullptr);
  wheel.Insert(kStart + absl::Milliseconds(12), 12, nullptr);
  EXPECT_EQ(wheel.NextWakeup(), kStart + absl::Milliseconds(10));
  EXPECT_EQ(wheel.NextDeadline(), kStart + absl::Milliseconds(3));
  EXPECT_EQ(AdvanceKeys(wheel, kStart + absl::Milliseconds(12)),
            (std::vector<uint64_t>{3, 12}));
  EXPECT_EQ(AdvanceKeys(wheel, kStart + absl::Milliseconds(20)),
            (std::vector<uint64_t>{17}));
}

TEST(TimerWheel, DestroyingTheWheelDestroysPendingCallbacksWithoutRunningThem) {
  int destroyed = 0;
  int ran = 0;
  {
    TimerWheel wheel(kStart);
    for (int i = 0; i < 10; ++i) {
      wheel.Insert(kStart + absl::Hours(i * 1000), i,
                   [counter = DestructionCounter(&destroyed), &ran]() {
                     ++ran;
                   });
    }
  }
  EXPECT_EQ(destroyed, 10);
  EXPECT_EQ(ran, 0);
}

TEST(TimerWheel, TakeAllEmptiesTheWheelAndHandsBackEveryCallback) {
  TimerWheel wheel(kStart);
  int destroyed = 0;
  for (int i = 0; i < 10; ++i) {
    wheel.Insert(kStart + absl::Hours(i * 1000), i,
                 [counter = DestructionCounter(&destroyed)]() {});
  }
  std::vector<Expired> all;
  wheel.TakeAll(all);
  EXPECT_EQ(all.size(), 10u);
  EXPECT_TRUE(wheel.empty());
  EXPECT_EQ(wheel.NextWakeup(), std::nullopt);
  EXPECT_EQ(destroyed, 0);
  all.clear();
  EXPECT_EQ(destroyed, 10);
}

TEST(TimerWheel, AMillionPendingEntriesInsertCancelAndFire) {
  constexpr int kCount = 1'000'000;
  TimerWheel wheel(kStart);
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int64_t> offset_us(0, int64_t{3600} * 1'000'000);
  std::vector<TimerWheel::Entry*> entries;
  entries.reserve(kCount);
  for (int i = 0; i < kCount; ++i) {
    entries.push_back(wheel.Insert(kStart + absl::Microseconds(offset_us(rng)),
                                   i, nullptr));
  }
  EXPECT_EQ(wheel.size(), static_cast<size_t>(kCount));
  // Cancel every odd one, in a shuffled order.
  std::vector<int> odd;
  for (int i = 1; i < kCount; i += 2) odd.push_back(i);
  std::shuffle(odd.begin(), odd.end(), rng);
  for (int i : odd) wheel.Cancel(entries[i]);
  EXPECT_EQ(wheel.size(), static_cast<size_t>(kCount / 2));

  std::vector<Expired> out;
  wheel.Advance(kStart + absl::Hours(2), out);
  ASSERT_EQ(out.size(), static_cast<size_t>(kCount / 2));
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_EQ(out[i].key % 2, 0u);
    if (i > 0) {
      ASSERT_LE(out[i - 1].deadline, out[i].deadline);
    }
  }
  EXPECT_TRUE(wheel.empty());
}

// Random inserts, cancels and advances (forwards, and sometimes backwards),
// compared with a sorted map of (deadline, insertion order).
TEST(TimerWheel, MatchesASimpleModelUnderRandomOperations) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937_64 rng(seed);
    TimerWheel wheel(kStart);
    std::map<std::pair<absl::Time, uint64_t>, TimerWheel::Entry*> model;
    absl::Time now = kStart;
    uint64_t next_key = 0;
    for (int step = 0; step < 3000; ++step) {
      const int op = std::uniform_int_distribution<int>(0, 9)(rng);
      if (op < 5) {
        // Log-uniform up to ~9 years (every level and the overflow list);
        // one in five in the past.
        const int scale = std::uniform_int_distribution<int>(0, 58)(rng);
        int64_t offset_ns = static_cast<int64_t>(
            std::uniform_real_distribution<double>(0, 1)(rng) *
            std::exp2(scale));
        if (op == 0) offset_ns = -offset_ns;
        const absl::Time deadline = now + absl::Nanoseconds(offset_ns);
        const uint64_t key = next_key++;
        model[{deadline, key}] = wheel.Insert(deadline, key, nullptr);
      } else if (op < 7 && !model.empty()) {
        auto it = model.begin();
        std::advance(it, std::uniform_int_distribution<size_t>(
                             0, model.size() - 1)(rng));
        wheel.Cancel(it->second);
        model.erase(it);
      } else {
        const int scale = std::uniform_int_distribution<int>(0, 58)(rng);
        absl::Time to = now + absl::Nanoseconds(static_cast<int64_t>(
                                  std::exp2(scale)));
        if (op == 9) to = now - absl::Milliseconds(1);  // an earlier time
        std::vector<uint64_t> expected;
        while (!model.empty() && model.begin()->first.first <= to) {
          expected.push_back(model.begin()->first.second);
          model.erase(model.begin());
        }
        ASSERT_EQ(AdvanceKeys(wheel, to), expected) << "step " << step;
        now = std::max(now, to);
      }
      ASSERT_EQ(wheel.size(), model.size());
      if (model.empty()) {
        ASSERT_EQ(wheel.NextDeadline(), std::nullopt);
      } else {
        ASSERT_EQ(wheel.NextDeadline(), model.begin()->first.first);
      }
    }
  }
}

}  // namespace
}  // namespace troupe
