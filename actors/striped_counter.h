// StripedCounter: a statistics counter that many threads bump often — the
// actors spawned and stopped — without all of them writing one cache line.
// Each thread adds to one of kStripes padded slots (threads are dealt slots
// in turn as they first use one); a read sums the slots.
//
// A read is not a snapshot of one instant: it is exact only once the adds
// it should see happen-before it. Adds are release and reads acquire, so a
// reader that sees an add also sees everything that happened before it —
// read a "stopped" counter before its "spawned" one and the difference
// never goes below zero.

#ifndef TROUPE_ACTORS_STRIPED_COUNTER_H_
#define TROUPE_ACTORS_STRIPED_COUNTER_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace troupe::internal {

class StripedCounter {
 public:
  static constexpr size_t kStripes = 16;

  void Add(uint64_t n = 1) noexcept { slots_[ThisThreadsSlot()].value.fetch_add(n, std::memory_order_release); }

  uint64_t Sum() const noexcept {
    uint64_t sum = 0;
    for (const Slot& s : slots_) sum += s.value.load(std::memory_order_acquire);
    return sum;
  }

 private:
  struct alignas(64) Slot {
    std::atomic<uint64_t> value{0};
  };

  static size_t ThisThreadsSlot() noexcept {
    // Relaxed: the slot only spreads threads out; any value is correct.
    static std::atomic<size_t> next{0};
    thread_local const size_t slot = next.fetch_add(1, std::memory_order_relaxed) % kStripes;
    return slot;
  }

  std::array<Slot, kStripes> slots_;
};

}  // namespace troupe::internal

#endif  // TROUPE_ACTORS_STRIPED_COUNTER_H_
