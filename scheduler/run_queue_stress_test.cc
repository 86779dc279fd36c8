// Stress test of RunQueue: one owner pushes and pops while stealers, each with
// a queue of its own, steal from it and from one another. Capacities are tiny
// so the full-queue overflow, overflow during a steal, steals into a queue
// that is itself being stolen from, and index wrap-around all happen many
// times. Every item must run exactly once. Meant to run under --config=tsan:
// items carry a plain payload the owner writes before Push and the runner
// reads, so a missing happens-before edge is reported.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <latch>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/run_queue.h"
#include "scheduler/runnable.h"

namespace troupe::internal {
namespace {

constexpr size_t kItems = 200'000;
constexpr uint32_t kCapacity = 8;
constexpr int kStealers = 3;
// A run normally takes a few seconds under TSan; this bounds a lost item.
constexpr auto kTimeLimit = std::chrono::seconds(20);
// Bounds every worker loop in count as well as in time.
constexpr uint64_t kMaxIterations = uint64_t{1} << 32;

class Item final : public Runnable {
 public:
  void Run() noexcept override {
    ++runs;  // Plain: a second, concurrent run is a race TSan reports.
    seen_payload = payload;
    done->fetch_add(1, std::memory_order_relaxed);
  }

  uint64_t payload = 0;  // Written by the owner just before Push.
  uint64_t seen_payload = 0;
  int runs = 0;
  std::atomic<size_t>* done = nullptr;
};

// The pool's global injection queue, reduced to what the test needs.
class Injection {
 public:
  void Add(Runnable* const* items, size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    items_.insert(items_.end(), items, items + n);
    (n == 1 ? single_overflows_ : batch_overflows_)++;
  }
  Runnable* Take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (items_.empty()) return nullptr;
    Runnable* r = items_.back();
    items_.pop_back();
    return r;
  }
  size_t single_overflows() {
    std::lock_guard<std::mutex> lock(mu_);
    return single_overflows_;
  }
  size_t batch_overflows() {
    std::lock_guard<std::mutex> lock(mu_);
    return batch_overflows_;
  }

 private:
  std::mutex mu_;
  std::vector<Runnable*> items_;
  size_t single_overflows_ = 0;
  size_t batch_overflows_ = 0;
};

struct Counters {
  std::atomic<size_t> steals{0};
  std::atomic<size_t> failed_steals{0};
  std::atomic<size_t> run_by_stealers{0};
};

// Runs work until every item has run or the time limit passes: own queue
// first, then a steal (from `victims`, chosen at random), then the injection
// queue. Returns how many items this call ran.
size_t Work(RunQueue& own, const std::vector<RunQueue*>& victims,
            Injection& injection, const std::atomic<size_t>& done,
            std::chrono::steady_clock::time_point deadline, uint32_t seed,
            Counters& counters) {
  std::minstd_rand rng(seed);
  size_t ran = 0;
  uint32_t idle = 0;
  for (uint64_t i = 0; i < kMaxIterations; ++i) {
    if (done.load(std::memory_order_relaxed) == kItems) break;
    if (i % 64 == 0 && std::chrono::steady_clock::now() > deadline) break;
    Runnable* r = own.Pop();
    if (r == nullptr) {
      r = victims[rng() % victims.size()]->StealInto(own);
      (r != nullptr ? counters.steals : counters.failed_steals)
          .fetch_add(1, std::memory_order_relaxed);
    }
    if (r == nullptr) r = injection.Take();
    if (r != nullptr) {
      r->Run();
      ++ran;
      idle = 0;
    } else if (++idle % 32 == 0) {
      // Nothing to do for a while: let another thread have the core. Not
      // synchronization; spinning a little first means that, with more
      // threads than free cores, threads are also preempted at arbitrary
      // points rather than only here, which is what exposes races.
      std::this_thread::yield();
    }
  }
  return ran;
}

void RunScenario(uint32_t start_index) {
  std::vector<Item> items(kItems);
  std::atomic<size_t> done{0};
  for (Item& item : items) item.done = &done;

  const RunQueue::StartIndexForTesting start{.index = start_index};
  RunQueue owner_queue(kCapacity, start);
  std::vector<std::unique_ptr<RunQueue>> stealer_queues;
  for (int s = 0; s < kStealers; ++s) {
    stealer_queues.push_back(std::make_unique<RunQueue>(kCapacity, start));
  }
  Injection injection;
  Counters counters;
  auto overflow = [&injection](Runnable* const* batch, size_t n) {
    injection.Add(batch, n);
  };
  const auto deadline = std::chrono::steady_clock::now() + kTimeLimit;
  std::latch start_line(kStealers + 1);

  std::vector<std::thread> threads;
  for (int s = 0; s < kStealers; ++s) {
    threads.emplace_back([&, s] {
      // Mostly the owner, sometimes another stealer, whose queue may be
      // receiving a steal of its own at the same time.
      std::vector<RunQueue*> victims = {&owner_queue, &owner_queue,
                                        &owner_queue};
      victims.push_back(stealer_queues[(s + 1) % kStealers].get());
      start_line.arrive_and_wait();
      counters.run_by_stealers.fetch_add(
          Work(*stealer_queues[s], victims, injection, done, deadline,
               /*seed=*/100 + s, counters),
          std::memory_order_relaxed);
    });
  }

  // The owner: pushes every item, popping 0, 1 or 2 after each push (one on
  // average) so the queue keeps filling up while the stealers drain it.
  threads.emplace_back([&] {
    std::minstd_rand rng(7);
    start_line.arrive_and_wait();
    for (size_t i = 0; i < kItems; ++i) {
      if (i % 64 == 0 && std::chrono::steady_clock::now() > deadline) return;
      // With more threads than cores, lets the stealers in while the owner
      // is mid-stream rather than only after it is done. Not synchronization.
      if (i % 128 == 127) std::this_thread::yield();
      items[i].payload = i + 1;
      owner_queue.Push(&items[i], overflow);
      const uint32_t dice = rng() % 8;
      const int pops = dice < 4 ? 1 : dice < 6 ? 0 : 2;
      for (int p = 0; p < pops; ++p) {
        if (Runnable* r = owner_queue.Pop()) r->Run();
      }
    }
    std::vector<RunQueue*> victims;
    for (auto& q : stealer_queues) victims.push_back(q.get());
    Work(owner_queue, victims, injection, done, deadline, /*seed=*/99,
         counters);
  });
  for (std::thread& t : threads) t.join();

  ASSERT_EQ(done.load(), kItems) << "items lost, or the time limit passed";
  size_t wrong = 0;
  for (size_t i = 0; i < kItems; ++i) {
    if (items[i].runs != 1 || items[i].seen_payload != i + 1) {
      if (++wrong <= 10) {
        ADD_FAILURE() << "item " << i << " ran " << items[i].runs
                      << " times, saw payload " << items[i].seen_payload;
      }
    }
  }
  EXPECT_EQ(wrong, 0u);
  EXPECT_TRUE(owner_queue.EmptyApprox());
  for (auto& q : stealer_queues) EXPECT_TRUE(q->EmptyApprox());
  EXPECT_EQ(injection.Take(), nullptr);

  // How often the interesting paths ran; they depend on timing, so they are
  // reported rather than asserted (the unit tests drive each one directly).
  std::printf(
      "run by stealers %zu of %zu, steals %zu (failed %zu), overflows of "
      "half %zu, overflows during a steal %zu\n",
      counters.run_by_stealers.load(), kItems, counters.steals.load(),
      counters.failed_steals.load(), injection.batch_overflows(),
      injection.single_overflows());
}

TEST(RunQueueStress, EveryItemRunsExactlyOnce) { RunScenario(0); }

TEST(RunQueueStress, EveryItemRunsExactlyOnceWhileIndexesWrap) {
  RunScenario(std::numeric_limits<uint32_t>::max() - 1000);
}

}  // namespace
}  // namespace troupe::internal
