#include "scheduler/run_queue.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace troupe::internal {
namespace {

uint32_t CheckedCapacity(uint32_t capacity) {
  const bool power_of_two = capacity != 0 && (capacity & (capacity - 1)) == 0;
  if (!power_of_two || capacity < 2 || capacity > RunQueue::kMaxCapacity) {
    std::fprintf(stderr,
                 "troupe: RunQueue capacity %u must be a power of two in "
                 "[2, 2^31]\n",
                 capacity);
    std::abort();
  }
  return capacity;
}

}  // namespace

RunQueue::RunQueue(uint32_t capacity) : RunQueue(capacity, {.index = 0}) {}

RunQueue::RunQueue(uint32_t capacity, StartIndexForTesting start)
    : capacity_(CheckedCapacity(capacity)),
      mask_(capacity - 1),
      slots_(new std::atomic<Runnable*>[capacity]),
      overflow_batch_(new Runnable*[capacity / 2 + 1]),
      head_(Pack(start.index, start.index)),
      tail_(start.index) {
  for (uint32_t i = 0; i < capacity_; ++i) {
    slots_[i].store(nullptr, std::memory_order_relaxed);
  }
}

Runnable* RunQueue::StealInto(RunQueue& dst) noexcept {
  assert(&dst != this);
  // Relaxed: the calling thread owns dst and is the only writer of its tail_.
  const uint32_t dst_tail = dst.tail_.load(std::memory_order_relaxed);
  // Acquire: pairs with the release CAS in FinishSteal() of a thread that
  // stole from dst, so its reads of dst's slots happen before we overwrite
  // them. A stale `steal` only underestimates the room.
  const uint32_t dst_steal = StealOf(dst.head_.load(std::memory_order_acquire));
  const uint32_t dst_room = dst.capacity_ - (dst_tail - dst_steal);

  uint32_t first = 0;
  // The first item claimed is returned rather than stored, hence room + 1.
  const uint32_t n = ClaimHalf(dst_room + 1, &first);
  if (n == 0) return nullptr;

  // Relaxed loads: ClaimHalf() loaded tail_ with acquire after the owner's
  // release store that published these slots. Relaxed stores into dst: they
  // are published by the release store of dst.tail_ below.
  Runnable* const run_now = Slot(first).load(std::memory_order_relaxed);
  for (uint32_t i = 1; i < n; ++i) {
    Runnable* const r = Slot(first + i).load(std::memory_order_relaxed);
    dst.Slot(dst_tail + i - 1).store(r, std::memory_order_relaxed);
  }
  // Done reading this queue's slots: give them back before publishing into
  // dst, which keeps the window that blocks other stealers short.
  FinishSteal();
  if (n > 1) {
    // Release: pairs with the acquire load of dst.tail_ in ClaimHalf() of a
    // thread stealing from dst.
    dst.tail_.store(dst_tail + n - 1, std::memory_order_release);
  }
  return run_now;
}

uint32_t RunQueue::ClaimHalf(uint32_t max_n, uint32_t* first) noexcept {
  // Acquire: pairs with the release CAS on head_ in Pop(), OverflowHalf() and
  // FinishSteal(), so the tail_ loaded below is at least the one the owner
  // had stored when it moved `real` to the value we see: tail - real is then
  // a true count, never a wrapped negative one.
  uint64_t head = head_.load(std::memory_order_acquire);
  for (;;) {
    const uint32_t steal = StealOf(head);
    const uint32_t real = RealOf(head);
    if (steal != real) return 0;  // Another steal is in progress.
    // Acquire: pairs with the release stores of tail_ in Push() and
    // StealInto(), making the slots below it readable.
    const uint32_t tail = tail_.load(std::memory_order_acquire);
    const uint32_t size = tail - real;
    const uint32_t n = std::min(size - size / 2, max_n);
    if (n == 0) return 0;
    // Acquire on failure, for the same reason as the load above: we
    // recompute from the new value. Acquire on success only because GCC
    // rejects a success order weaker than the failure order; success means
    // head_ still holds the value we acquired, so it adds nothing. Not
    // release: the claim frees no slot (`steal` does not move).
    if (head_.compare_exchange_weak(head, Pack(steal, real + n),
                                    std::memory_order_acquire,
                                    std::memory_order_acquire)) {
      *first = real;
      return n;
    }
  }
}

void RunQueue::FinishSteal() noexcept {
  // Relaxed: a stale value only makes the CAS fail. Between our claim and now
  // only the owner's Pop() can change head_, and only its `real` half.
  uint64_t head = head_.load(std::memory_order_relaxed);
  for (;;) {
    assert(StealOf(head) != RealOf(head));
    const uint32_t real = RealOf(head);
    // Success is release: pairs with the acquire loads of head_ in Push()
    // and in StealInto() when the owner steals into this queue, so our reads
    // of the claimed slots happen before the owner reuses them. Failure is
    // relaxed as above.
    if (head_.compare_exchange_weak(head, Pack(real, real),
                                    std::memory_order_release,
                                    std::memory_order_relaxed)) {
      return;
    }
  }
}

}  // namespace troupe::internal
