#include "mailbox/message_cache.h"

#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "mailbox/message.h"

namespace troupe::internal {
namespace {

TEST(MessageCache, FreedBlocksAreReusedWithinTheirSizeClass) {
  MessageDepot depot;
  MessageCache cache(&depot);
  void* a = cache.Allocate(30);  // the class of 40-byte blocks
  ASSERT_NE(a, nullptr);
  std::memset(a, 0xab, MessageCache::BlockBytes(MessageCache::ClassOf(30)));  // all of it is usable
  ASSERT_TRUE(cache.Free(a, 30));
  EXPECT_EQ(cache.Allocate(33), a);  // same class: the same block comes back
  void* b = cache.Allocate(64);       // another class: not that block
  EXPECT_NE(b, a);
  ASSERT_TRUE(cache.Free(a, 33));
  ASSERT_TRUE(cache.Free(b, 64));
}

TEST(MessageCache, BlocksAboveTheLargestClassAreLeftToTheSystemAllocator) {
  MessageDepot depot;
  MessageCache cache(&depot);
  const size_t too_big = MessageCache::kLargestBlock + 1;
  EXPECT_EQ(cache.Allocate(too_big), nullptr);
  int local = 0;
  EXPECT_FALSE(cache.Free(&local, too_big));
}

TEST(MessageCache, SurplusMovesThroughTheDepotToAnotherCache) {
  MessageDepot depot;
  std::set<void*> freed;
  {
    MessageCache receiver(&depot);
    std::vector<void*> blocks;
    for (uint32_t i = 0; i < 4 * MessageCache::kBatch; ++i) blocks.push_back(::operator new(32));
    for (void* b : blocks) {
      freed.insert(b);
      ASSERT_TRUE(receiver.Free(b, 32));
    }
  }  // the receiver's remaining blocks go to the depot too
  MessageCache sender(&depot);
  size_t reused = 0;
  std::vector<void*> taken;
  for (uint32_t i = 0; i < 4 * MessageCache::kBatch; ++i) {
    void* b = sender.Allocate(32);
    reused += freed.count(b);
    taken.push_back(b);
  }
  EXPECT_EQ(reused, 4 * MessageCache::kBatch);
  for (void* b : taken) sender.Free(b, 32);
}

struct Payload final : Message {
  explicit Payload(int v) : Message(Kind::kUser), value(v) {}
  void Deliver(void*) override { delete this; }
  bool Bounce(const absl::Status&) noexcept override {
    delete this;
    return true;
  }
  int value;
  char padding[40];
};

// Messages made on one cached thread and freed on another (cached or not),
// as senders and receivers do: nothing is lost or corrupted. Under TSan this
// also checks that batches cross threads only through the depot's mutex.
TEST(MessageCache, MessagesCrossThreadsBetweenCachesAndTheSystemAllocator) {
  MessageDepot depot;
  constexpr int kRounds = 50;
  constexpr int kPerRound = 2000;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<Payload*> made(kPerRound);
    std::thread producer([&] {
      MessageCache cache(&depot);
      ScopedMessageCache use(&cache);
      for (int i = 0; i < kPerRound; ++i) made[i] = new Payload(i);
    });
    producer.join();
    std::thread consumer([&] {
      MessageCache cache(&depot);
      ScopedMessageCache use(round % 2 == 0 ? &cache : nullptr);
      for (int i = 0; i < kPerRound; ++i) {
        ASSERT_EQ(made[i]->value, i);
        made[i]->Deliver(nullptr);
      }
    });
    consumer.join();
  }
}

}  // namespace
}  // namespace troupe::internal
