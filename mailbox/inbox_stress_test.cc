// Many producers against one consumer that blocks and is rescheduled, the way
// an actor runs: checks per-producer FIFO, exactly-once scheduling, no loss.

#include <atomic>
#include <latch>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "mailbox/inbox.h"

namespace troupe {
namespace {

struct Item final : Message {
  Item(int p, int s) : Message(Kind::kUser), producer(p), seq(s) {}
  void Deliver(void*) override { delete this; }
  bool Bounce(const absl::Status&) noexcept override {
    delete this;
    return true;
  }
  int producer;
  int seq;
};

TEST(InboxStress, ProducersRacingABlockingConsumerLoseNothingAndKeepOrder) {
  constexpr int kProducers = 3;
  constexpr int kPerProducer = 100000;
  Inbox inbox;
  // Incremented by the producer that got kScheduleNow, decremented by the
  // consumer when it goes idle: must never exceed 1.
  std::atomic<int> scheduled{0};
  std::atomic<int> max_scheduled{0};
  // The "run queue": a count of pending schedules, one consumer thread.
  std::atomic<int> wakeups{0};

  std::latch start(kProducers + 1);
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      start.arrive_and_wait();
      for (int s = 0; s < kPerProducer; ++s) {
        if (inbox.Push(new Item(p, s)) == Inbox::PushResult::kScheduleNow) {
          int now = scheduled.fetch_add(1, std::memory_order_relaxed) + 1;
          int seen = max_scheduled.load(std::memory_order_relaxed);
          while (now > seen && !max_scheduled.compare_exchange_weak(seen, now)) {
          }
          wakeups.fetch_add(1, std::memory_order_release);
          wakeups.notify_one();
        }
      }
    });
  }

  std::vector<int> next(kProducers, 0);
  int received = 0;
  start.arrive_and_wait();
  while (received < kProducers * kPerProducer) {
    // Wait to be "scheduled", as a worker would pick the actor up.
    int w = wakeups.load(std::memory_order_acquire);
    while (w == 0) {
      wakeups.wait(0, std::memory_order_acquire);
      w = wakeups.load(std::memory_order_acquire);
    }
    wakeups.fetch_sub(1, std::memory_order_acq_rel);
    // One turn: a batch of at most 64, then block or go again.
    for (;;) {
      for (int batch = 0; batch < 64; ++batch) {
        Message* m = inbox.Pop();
        if (m == nullptr) break;
        auto* item = static_cast<Item*>(m);
        ASSERT_EQ(item->seq, next[item->producer]) << "producer " << item->producer;
        ++next[item->producer];
        ++received;
        delete item;
      }
      if (inbox.HasMessages()) continue;
      scheduled.fetch_sub(1, std::memory_order_relaxed);
      if (inbox.TryBlock()) break;
      scheduled.fetch_add(1, std::memory_order_relaxed);
    }
  }
  for (std::thread& t : producers) t.join();
  EXPECT_EQ(received, kProducers * kPerProducer);
  EXPECT_EQ(max_scheduled.load(), 1);
  EXPECT_EQ(inbox.Pop(), nullptr);
}

TEST(InboxStress, CloseRacingProducersBouncesEveryLatePushAndKeepsTheRest) {
  constexpr int kProducers = 3;
  constexpr int kPerProducer = 50000;
  Inbox inbox(/*scheduled=*/true);
  std::atomic<int> refused{0};
  std::latch start(kProducers + 1);
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      start.arrive_and_wait();
      for (int s = 0; s < kPerProducer; ++s) {
        auto* item = new Item(p, s);
        if (inbox.Push(item) == Inbox::PushResult::kClosed) {
          delete item;
          refused.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  start.arrive_and_wait();
  int consumed = 0;
  while (consumed < kPerProducer) {
    if (Message* m = inbox.Pop()) {
      delete m;
      ++consumed;
    }
  }
  MessageList rest = inbox.Close();
  for (std::thread& t : producers) t.join();
  int left = 0;
  while (Message* m = rest.PopFront()) {
    delete m;
    ++left;
  }
  EXPECT_EQ(consumed + left + refused.load(), kProducers * kPerProducer);
}

}  // namespace
}  // namespace troupe
