#include "scheduler/run_queue.h"

#include <cstdint>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/runnable.h"

namespace troupe::internal {

// Drives a steal one step at a time, so tests can act between its claim and
// its finish without threads or timing.
class RunQueueTestPeer {
 public:
  // Step 1: claims up to `max_n` items; returns how many, and the first index.
  static uint32_t Claim(RunQueue& q, uint32_t max_n, uint32_t* first) {
    return q.ClaimHalf(max_n, first);
  }
  static Runnable* ClaimedItem(RunQueue& q, uint32_t index) {
    return q.Slot(index).load(std::memory_order_relaxed);
  }
  // Step 3: ends the steal.
  static void Finish(RunQueue& q) { q.FinishSteal(); }
};

namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

class Item final : public Runnable {
 public:
  void Run() noexcept override { ++runs; }
  int runs = 0;
};

// A pool of distinct items, addressed by number in expectations.
class Items {
 public:
  explicit Items(size_t n) : items_(n) {}
  Runnable* operator[](size_t i) { return &items_[i]; }
  // The items first .. first + n - 1, in order.
  std::vector<Runnable*> Range(size_t first, size_t n) {
    std::vector<Runnable*> out;
    for (size_t i = first; i < first + n; ++i) out.push_back(&items_[i]);
    return out;
  }

 private:
  std::vector<Item> items_;
};

// Records every call of the overflow callback.
struct OverflowSink {
  void operator()(Runnable* const* items, size_t n) {
    calls.emplace_back(items, items + n);
  }
  std::vector<std::vector<Runnable*>> calls;
};

std::vector<Runnable*> PopAll(RunQueue& q) {
  std::vector<Runnable*> out;
  // Bounded: a queue never holds more than its capacity.
  for (uint32_t i = 0; i <= q.capacity(); ++i) {
    Runnable* r = q.Pop();
    if (r == nullptr) break;
    out.push_back(r);
  }
  return out;
}

void PushAll(RunQueue& q, const std::vector<Runnable*>& items,
             OverflowSink& sink) {
  for (Runnable* r : items) q.Push(r, sink);
}

TEST(RunQueue, NewQueueIsEmpty) {
  RunQueue q(8);
  EXPECT_EQ(q.capacity(), 8u);
  EXPECT_EQ(q.SizeApprox(), 0u);
  EXPECT_TRUE(q.EmptyApprox());
  EXPECT_EQ(q.Pop(), nullptr);
}

TEST(RunQueue, DefaultCapacityIs256) {
  RunQueue q;
  EXPECT_EQ(q.capacity(), 256u);
}

TEST(RunQueue, PopReturnsItemsInPushOrder) {
  Items items(8);
  RunQueue q(8);
  OverflowSink sink;
  PushAll(q, items.Range(0, 5), sink);
  EXPECT_EQ(q.SizeApprox(), 5u);
  EXPECT_THAT(PopAll(q), ElementsAreArray(items.Range(0, 5)));
  EXPECT_THAT(sink.calls, IsEmpty());
  EXPECT_TRUE(q.EmptyApprox());
}

TEST(RunQueue, PushAndPopInterleavedAcrossManyLapsKeepFifoOrder) {
  Items items(100);
  RunQueue q(4);
  OverflowSink sink;
  std::vector<Runnable*> popped;
  // Keeps one or two items queued while the indexes go round the ring 25
  // times.
  for (size_t i = 0; i < 100; ++i) {
    q.Push(items[i], sink);
    if (i % 2 == 1) {
      popped.push_back(q.Pop());
      popped.push_back(q.Pop());
    }
  }
  for (Runnable* r : PopAll(q)) popped.push_back(r);
  EXPECT_THAT(popped, ElementsAreArray(items.Range(0, 100)));
  EXPECT_THAT(sink.calls, IsEmpty());
}

TEST(RunQueue, PushToFullQueueOverflowsOldestHalfPlusTheNewItem) {
  Items items(9);
  RunQueue q(8);
  OverflowSink sink;
  PushAll(q, items.Range(0, 8), sink);
  EXPECT_THAT(sink.calls, IsEmpty());
  EXPECT_EQ(q.SizeApprox(), 8u);

  q.Push(items[8], sink);
  ASSERT_EQ(sink.calls.size(), 1u);
  EXPECT_THAT(sink.calls[0],
              ElementsAre(items[0], items[1], items[2], items[3], items[8]));
  EXPECT_EQ(q.SizeApprox(), 4u);
  EXPECT_THAT(PopAll(q), ElementsAreArray(items.Range(4, 4)));
}

TEST(RunQueue, QueueAcceptsPushesAgainAfterOverflow) {
  Items items(13);
  RunQueue q(8);
  OverflowSink sink;
  PushAll(q, items.Range(0, 13), sink);  // The 9th push overflows.
  ASSERT_EQ(sink.calls.size(), 1u);
  EXPECT_EQ(sink.calls[0].size(), 5u);
  EXPECT_THAT(PopAll(q),
              ElementsAre(items[4], items[5], items[6], items[7], items[9],
                          items[10], items[11], items[12]));
}

TEST(RunQueue, SmallestQueueOverflowsOneItemPlusTheNewOne) {
  Items items(3);
  RunQueue q(2);
  OverflowSink sink;
  PushAll(q, items.Range(0, 3), sink);
  ASSERT_EQ(sink.calls.size(), 1u);
  EXPECT_THAT(sink.calls[0], ElementsAre(items[0], items[2]));
  EXPECT_THAT(PopAll(q), ElementsAre(items[1]));
}

TEST(RunQueue, StealTakesHalfRoundedUpAndReturnsTheOldest) {
  Items items(5);
  RunQueue src(8);
  RunQueue dst(8);
  OverflowSink sink;
  PushAll(src, items.Range(0, 5), sink);

  // ceil(5 / 2) = 3: item 0 to run now, items 1 and 2 into dst.
  EXPECT_EQ(src.StealInto(dst), items[0]);
  EXPECT_EQ(dst.SizeApprox(), 2u);
  EXPECT_EQ(src.SizeApprox(), 2u);
  EXPECT_THAT(PopAll(dst), ElementsAre(items[1], items[2]));
  EXPECT_THAT(PopAll(src), ElementsAre(items[3], items[4]));
}

TEST(RunQueue, StealOfAFullQueueTakesExactlyHalf) {
  Items items(8);
  RunQueue src(8);
  RunQueue dst(8);
  OverflowSink sink;
  PushAll(src, items.Range(0, 8), sink);
  EXPECT_EQ(src.StealInto(dst), items[0]);
  EXPECT_THAT(PopAll(dst), ElementsAre(items[1], items[2], items[3]));
  EXPECT_THAT(PopAll(src), ElementsAreArray(items.Range(4, 4)));
}

TEST(RunQueue, StealOfTheOnlyItemReturnsItAndLeavesTheDestinationEmpty) {
  Items items(1);
  RunQueue src(4);
  RunQueue dst(4);
  OverflowSink sink;
  src.Push(items[0], sink);
  EXPECT_EQ(src.StealInto(dst), items[0]);
  EXPECT_TRUE(src.EmptyApprox());
  EXPECT_TRUE(dst.EmptyApprox());
  EXPECT_EQ(dst.Pop(), nullptr);
}

TEST(RunQueue, StealFromEmptyQueueReturnsNull) {
  RunQueue src(4);
  RunQueue dst(4);
  EXPECT_EQ(src.StealInto(dst), nullptr);
  EXPECT_TRUE(dst.EmptyApprox());
}

TEST(RunQueue, StealAppendsBehindItemsAlreadyInTheDestination) {
  Items items(6);
  RunQueue src(8);
  RunQueue dst(8);
  OverflowSink sink;
  PushAll(dst, items.Range(0, 2), sink);
  PushAll(src, items.Range(2, 4), sink);
  EXPECT_EQ(src.StealInto(dst), items[2]);
  EXPECT_THAT(PopAll(dst), ElementsAre(items[0], items[1], items[3]));
}

TEST(RunQueue, StealTakesOnlyWhatFitsInTheDestination) {
  Items items(11);
  RunQueue src(8);
  RunQueue dst(4);
  OverflowSink sink;
  PushAll(dst, items.Range(0, 3), sink);  // Room for one more.
  PushAll(src, items.Range(3, 8), sink);
  // Half of src would be 4; one fits in dst, one is returned.
  EXPECT_EQ(src.StealInto(dst), items[3]);
  EXPECT_EQ(src.SizeApprox(), 6u);
  EXPECT_THAT(PopAll(dst), ElementsAre(items[0], items[1], items[2], items[4]));
  EXPECT_THAT(sink.calls, IsEmpty());
}

TEST(RunQueue, StealIntoAFullDestinationStillReturnsOneItem) {
  Items items(6);
  RunQueue src(4);
  RunQueue dst(2);
  OverflowSink sink;
  PushAll(dst, items.Range(0, 2), sink);
  PushAll(src, items.Range(2, 4), sink);
  EXPECT_EQ(src.StealInto(dst), items[2]);
  EXPECT_THAT(PopAll(dst), ElementsAre(items[0], items[1]));
  EXPECT_THAT(PopAll(src), ElementsAre(items[3], items[4], items[5]));
}

TEST(RunQueue, IndexesWrapAroundNearUint32Max) {
  constexpr uint32_t kMax = std::numeric_limits<uint32_t>::max();
  Items items(40);
  RunQueue q(8, RunQueue::StartIndexForTesting{.index = kMax - 2});
  RunQueue dst(8, RunQueue::StartIndexForTesting{.index = kMax});
  OverflowSink sink;

  // Fill across the wrap: indexes kMax-2 .. 5.
  PushAll(q, items.Range(0, 8), sink);
  EXPECT_EQ(q.SizeApprox(), 8u);
  EXPECT_THAT(sink.calls, IsEmpty());
  // Overflow claims indexes kMax-2 .. 1, crossing zero.
  q.Push(items[8], sink);
  ASSERT_EQ(sink.calls.size(), 1u);
  EXPECT_THAT(sink.calls[0],
              ElementsAre(items[0], items[1], items[2], items[3], items[8]));
  EXPECT_EQ(q.SizeApprox(), 4u);

  // A steal into a destination whose own indexes wrap.
  PushAll(q, items.Range(9, 4), sink);  // 8 queued: items 4-7, 9-12.
  EXPECT_EQ(q.StealInto(dst), items[4]);
  EXPECT_EQ(dst.SizeApprox(), 3u);
  EXPECT_THAT(PopAll(dst), ElementsAre(items[5], items[6], items[7]));

  // Many more laps with both queues past the wrap.
  std::vector<Runnable*> popped;
  for (size_t i = 13; i < 40; ++i) {
    q.Push(items[i], sink);
    popped.push_back(q.Pop());
  }
  for (Runnable* r : PopAll(q)) popped.push_back(r);
  std::vector<Runnable*> expected = items.Range(9, 31);
  EXPECT_THAT(popped, ElementsAreArray(expected));
  EXPECT_EQ(sink.calls.size(), 1u);
  EXPECT_TRUE(q.EmptyApprox());
}

TEST(RunQueue, SizeIsExactAcrossTheWrapWhenQuiescent) {
  constexpr uint32_t kMax = std::numeric_limits<uint32_t>::max();
  Items items(4);
  RunQueue q(4, RunQueue::StartIndexForTesting{.index = kMax});
  OverflowSink sink;
  for (uint32_t n = 1; n <= 4; ++n) {
    q.Push(items[n - 1], sink);
    EXPECT_EQ(q.SizeApprox(), n);
  }
  for (uint32_t n = 4; n >= 1; --n) {
    EXPECT_EQ(q.SizeApprox(), n);
    EXPECT_NE(q.Pop(), nullptr);
  }
  EXPECT_TRUE(q.EmptyApprox());
}

TEST(RunQueue, SecondStealWhileOneIsInProgressReturnsNull) {
  Items items(4);
  RunQueue src(4);
  RunQueue dst(4);
  OverflowSink sink;
  PushAll(src, items.Range(0, 4), sink);

  uint32_t first = 0;
  ASSERT_EQ(RunQueueTestPeer::Claim(src, 4, &first), 2u);
  EXPECT_EQ(src.StealInto(dst), nullptr);
  EXPECT_TRUE(dst.EmptyApprox());
  RunQueueTestPeer::Finish(src);

  EXPECT_EQ(src.StealInto(dst), items[2]);  // Half of the two left.
}

TEST(RunQueue, PopDuringAStealSkipsTheClaimedItems) {
  Items items(4);
  RunQueue src(4);
  OverflowSink sink;
  PushAll(src, items.Range(0, 4), sink);

  uint32_t first = 0;
  ASSERT_EQ(RunQueueTestPeer::Claim(src, 4, &first), 2u);
  EXPECT_EQ(RunQueueTestPeer::ClaimedItem(src, first), items[0]);
  EXPECT_EQ(RunQueueTestPeer::ClaimedItem(src, first + 1), items[1]);
  EXPECT_EQ(src.SizeApprox(), 2u);
  EXPECT_EQ(src.Pop(), items[2]);
  RunQueueTestPeer::Finish(src);  // Catches up with the pop.
  EXPECT_EQ(src.Pop(), items[3]);
  EXPECT_EQ(src.Pop(), nullptr);

  // All four slots are free again: four pushes fit without overflow.
  PushAll(src, items.Range(0, 4), sink);
  EXPECT_THAT(sink.calls, IsEmpty());
}

TEST(RunQueue, PushToFullQueueDuringAStealOverflowsOnlyTheNewItem) {
  Items items(8);
  RunQueue src(4);
  OverflowSink sink;
  PushAll(src, items.Range(0, 4), sink);

  // A stealer has claimed items 0 and 1 but not copied them yet: their slots
  // are still in use, so the ring is full and half cannot be taken.
  uint32_t first = 0;
  ASSERT_EQ(RunQueueTestPeer::Claim(src, 4, &first), 2u);
  src.Push(items[4], sink);
  ASSERT_EQ(sink.calls.size(), 1u);
  EXPECT_THAT(sink.calls[0], ElementsAre(items[4]));
  // The claimed items stay with the stealer, the rest with the owner.
  EXPECT_EQ(RunQueueTestPeer::ClaimedItem(src, first), items[0]);
  EXPECT_EQ(RunQueueTestPeer::ClaimedItem(src, first + 1), items[1]);
  EXPECT_EQ(src.SizeApprox(), 2u);

  // Popping during the steal frees nothing until the steal finishes.
  EXPECT_EQ(src.Pop(), items[2]);
  src.Push(items[5], sink);
  ASSERT_EQ(sink.calls.size(), 2u);
  EXPECT_THAT(sink.calls[1], ElementsAre(items[5]));

  RunQueueTestPeer::Finish(src);
  // Three slots free now (items 0-2 are gone): pushes are stored again.
  PushAll(src, items.Range(6, 2), sink);
  EXPECT_EQ(sink.calls.size(), 2u);
  EXPECT_THAT(PopAll(src), ElementsAre(items[3], items[6], items[7]));
}

TEST(RunQueue, OverflowAfterAStealFinishesTakesHalfAgain) {
  Items items(8);
  RunQueue src(4);
  RunQueue dst(4);
  OverflowSink sink;
  PushAll(src, items.Range(0, 4), sink);
  EXPECT_EQ(src.StealInto(dst), items[0]);  // Takes 0 and 1.
  PushAll(src, items.Range(4, 3), sink);    // Full again: 2 3 4 5, then 6.
  ASSERT_EQ(sink.calls.size(), 1u);
  EXPECT_THAT(sink.calls[0], ElementsAre(items[2], items[3], items[6]));
  EXPECT_THAT(PopAll(src), ElementsAre(items[4], items[5]));
  EXPECT_THAT(PopAll(dst), ElementsAre(items[1]));
}

TEST(RunQueueDeathTest, RejectsACapacityThatIsNotAPowerOfTwo) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(RunQueue(6), "power of two");
  EXPECT_DEATH(RunQueue(1), "power of two");
  EXPECT_DEATH(RunQueue(0), "power of two");
}

}  // namespace
}  // namespace troupe::internal
