// RunQueue is the local run queue of one worker of the work-stealing pool: a
// fixed-capacity ring of Runnable pointers that its owning worker pushes to and
// pops from (FIFO) without locks, and that other workers steal half of when
// they run dry. When the ring is full, the owner moves half of it, plus the
// item it was pushing, to a caller-supplied overflow sink (the pool's global
// injection queue), so a push never blocks and never fails.
//
// Who may call what:
//   - The owner (the one thread that owns the queue, normally its worker):
//     Push(), Pop(). Calling them from two threads at once is undefined.
//   - Any thread that owns some other RunQueue `dst`: StealInto(dst). Steals
//     from one queue are serialized by the queue itself: while one steal is
//     in progress, a second one returns nullptr at once instead of waiting.
//   - Any thread: SizeApprox(), EmptyApprox(), capacity().
//
// Lifetime: the queue never owns the Runnables it holds (see runnable.h).
// Destroying a non-empty queue drops the pointers without touching them; the
// pool drains its queues before it destroys them. The queue must outlive every
// concurrent call on it.
//
// Layout: `tail_` is the index of the next slot the owner writes. `head_`
// packs two u32 indexes into one 64-bit atomic word, so both change in one
// CAS:
//   - `real` (low half): the next item to hand out. Pop(), an overflow and a
//     steal's claim advance it.
//   - `steal` (high half): the first slot still being read by a stealer. It
//     equals `real` except while a steal is in progress, when the stealer has
//     claimed [steal, real) but not yet copied those items out.
// The items in the queue are [real, tail); the slots in use are [steal, tail),
// so the owner may push while tail - steal < capacity. All indexes are u32
// counters that run freely and wrap modulo 2^32; a slot is `index & mask_`.
// Differences such as `tail - real` are exact as long as they are at most the
// capacity, which is why the capacity is at most 2^31.
//
// A steal has three steps: (1) one CAS on head_ moves `real` forward by n,
// leaving `steal` behind, which claims n items and marks the steal in
// progress; (2) the stealer copies the n items into its own queue; (3) one CAS
// sets `steal` to `real` again, which gives the n slots back to the owner.
// The owner's Pop() runs freely during a steal (it only moves `real`). Its
// overflow needs `steal == real`: if a steal is in progress when the ring is
// full, Push() hands just the new item to the overflow sink rather than wait
// for a thread that may have been preempted.
//
// Memory ordering:
// Slots are std::atomic<Runnable*> accessed with relaxed loads and stores:
// each slot access is ordered by the index it is guarded by. (a) Publishing:
// the owner writes a slot, then stores `tail_` with release; a stealer loads
// `tail_` with acquire before reading the slots below it, so it reads the
// pointer (and everything the pushing thread did to the Runnable before
// Push). (b) Reuse: a stealer reads its claimed slots, then gives them back
// with a release CAS on head_ (step 3); the owner loads head_ with acquire
// before it writes slots (in Push(), and in StealInto() when this queue is the
// destination), so the stealer's reads happen before the overwrite. (c) Consistent snapshots: every
// CAS by the owner that moves `real` (Pop, overflow) is release, and a
// stealer loads head_ with acquire before loading `tail_`; so a stealer that
// sees some `real` also sees a `tail_` at least that far, and `tail - real`
// never wraps to a huge count. No standalone fences are used, so TSan checks
// all of it.

#ifndef TROUPE_SCHEDULER_RUN_QUEUE_H_
#define TROUPE_SCHEDULER_RUN_QUEUE_H_

#include <atomic>
#include <cassert>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "scheduler/runnable.h"

namespace troupe::internal {

class alignas(64) RunQueue {
 public:
  static constexpr uint32_t kDefaultCapacity = 256;
  // The largest capacity for which u32 index differences stay exact.
  static constexpr uint32_t kMaxCapacity = uint32_t{1} << 31;

  // Test-only: the value both indexes start at, so tests can start near
  // UINT32_MAX and cross the u32 wrap-around within a few pushes.
  struct StartIndexForTesting {
    uint32_t index;
  };

  // `capacity` must be a power of two in [2, kMaxCapacity]; otherwise the
  // constructor prints why and aborts (it is a programming error).
  explicit RunQueue(uint32_t capacity = kDefaultCapacity);
  RunQueue(uint32_t capacity, StartIndexForTesting start);

  RunQueue(const RunQueue&) = delete;
  RunQueue& operator=(const RunQueue&) = delete;

  // Owner only. Appends `r` (not null). If the ring is full, calls
  // `overflow(Runnable* const* items, size_t n)` exactly once instead of
  // storing `r`, with either
  //   - the oldest capacity()/2 items of the queue, in FIFO order, followed
  //     by `r` (n = capacity()/2 + 1), which leaves the queue half full; or
  //   - `r` alone (n = 1) if a steal from this queue is in progress, since
  //     the slots the stealer is reading cannot be reused yet.
  // `items` is valid only during the call. `overflow` runs on the owner's
  // thread, must not throw, and must not call back into this queue.
  template <class Overflow>
    requires std::invocable<Overflow&, Runnable* const*, size_t>
  void Push(Runnable* r, Overflow&& overflow) noexcept;

  // Owner only. Removes and returns the oldest item, or nullptr if the queue
  // is empty. Never waits for a stealer.
  Runnable* Pop() noexcept;

  // Called by the owner of `dst` (any thread but this queue's owner, and
  // `dst` must not be this queue). Moves half of this queue's items, rounded
  // up and oldest first, out of this queue: returns the oldest of them for
  // the caller to run at once and appends the others to `dst` in order. If
  // `dst` has too little room, takes only as many as fit plus the returned
  // one. Returns nullptr, taking nothing, if this queue is empty or another
  // steal from it is in progress.
  Runnable* StealInto(RunQueue& dst) noexcept;

  // Any thread. The number of items not yet handed out, from two separate
  // loads: exact when the queue is quiescent, otherwise a value in
  // [0, capacity()] that was true at some recent moment or close to it.
  uint32_t SizeApprox() const noexcept;
  bool EmptyApprox() const noexcept { return SizeApprox() == 0; }

  uint32_t capacity() const noexcept { return capacity_; }

 private:
  friend class RunQueueTestPeer;  // drives a steal step by step in tests

  static constexpr uint64_t Pack(uint32_t steal, uint32_t real) noexcept {
    return (uint64_t{steal} << 32) | real;
  }
  static constexpr uint32_t StealOf(uint64_t head) noexcept {
    return static_cast<uint32_t>(head >> 32);
  }
  static constexpr uint32_t RealOf(uint64_t head) noexcept {
    return static_cast<uint32_t>(head);
  }

  // Push() when the ring is full and no steal is in progress (`head` has
  // steal == real == tail - capacity_). Claims the oldest half with one CAS
  // and hands it, plus `r`, to `overflow`. Returns false, having changed
  // nothing, if a stealer changed head_ first.
  template <class Overflow>
  bool OverflowHalf(uint64_t head, uint32_t tail, Runnable* r,
                    Overflow& overflow) noexcept;

  // Step 1 of a steal: claims up to min(ceil(size / 2), max_n) items, sets
  // `*first` to the index of the first one and returns how many (0 when the
  // queue is empty or another steal is in progress; then nothing changed).
  uint32_t ClaimHalf(uint32_t max_n, uint32_t* first) noexcept;
  // Step 3 of a steal: marks it finished, giving the claimed slots back.
  void FinishSteal() noexcept;

  std::atomic<Runnable*>& Slot(uint32_t index) const noexcept {
    return slots_[index & mask_];
  }

  const uint32_t capacity_;
  const uint32_t mask_;  // capacity_ - 1
  const std::unique_ptr<std::atomic<Runnable*>[]> slots_;
  // Owner only: where OverflowHalf gathers the items it hands to the sink,
  // capacity_ / 2 + 1 entries, so Push() never allocates.
  const std::unique_ptr<Runnable*[]> overflow_batch_;

  // Pack(steal, real); see the layout above. Written by the owner (Pop,
  // overflow: CAS moving `real`, and `steal` along with it when no steal is
  // in progress) and by stealers (claim: CAS moving `real`; finish: CAS
  // setting `steal` to `real`). Read by both and by SizeApprox().
  std::atomic<uint64_t> head_;
  // Written only by the owner (Push, and StealInto when this queue is the
  // destination). Read by the owner (relaxed: its own writes), by stealers
  // and by SizeApprox().
  std::atomic<uint32_t> tail_;

  static_assert(std::atomic<uint64_t>::is_always_lock_free);
  static_assert(std::atomic<Runnable*>::is_always_lock_free);
};

template <class Overflow>
  requires std::invocable<Overflow&, Runnable* const*, size_t>
void RunQueue::Push(Runnable* r, Overflow&& overflow) noexcept {
  assert(r != nullptr);
  // Relaxed: only this thread writes tail_.
  const uint32_t tail = tail_.load(std::memory_order_relaxed);
  for (;;) {
    // Acquire: pairs with the release CAS in FinishSteal(), so a stealer's
    // reads of the slots it gave back happen before we overwrite them.
    const uint64_t head = head_.load(std::memory_order_acquire);
    const uint32_t steal = StealOf(head);
    if (tail - steal < capacity_) {
      // Relaxed: published by the release store of tail_ just below.
      Slot(tail).store(r, std::memory_order_relaxed);
      // Release: pairs with the acquire load of tail_ in ClaimHalf(), which
      // then reads this slot and sees everything done to `r` before Push.
      tail_.store(tail + 1, std::memory_order_release);
      return;
    }
    if (steal != RealOf(head)) {
      // Full, and a stealer is still reading [steal, real): those slots are
      // not free, and taking half would need steal == real. Do not wait for
      // it (it may be preempted); hand `r` alone to the sink.
      overflow(&r, size_t{1});
      return;
    }
    if (OverflowHalf(head, tail, r, overflow)) return;
    // A stealer claimed items between our load and our CAS: space may now be
    // free, or a steal is in progress. Look again. Each retry follows a
    // successful claim by a stealer, so this loop makes progress.
  }
}

template <class Overflow>
bool RunQueue::OverflowHalf(uint64_t head, [[maybe_unused]] uint32_t tail, Runnable* r,
                            Overflow& overflow) noexcept {
  const uint32_t half = capacity_ / 2;
  const uint32_t real = RealOf(head);
  assert(tail - real == capacity_);
  // Success is release: pairs with the acquire loads of head_ in ClaimHalf(),
  // so a stealer that sees the new `real` also sees tail_ (stored before this
  // CAS) at or past it. Failure is relaxed: Push() reloads head_ with acquire.
  if (!head_.compare_exchange_strong(head, Pack(real + half, real + half),
                                     std::memory_order_release,
                                     std::memory_order_relaxed)) {
    return false;
  }
  // The claimed slots stay ours until we push again: no stealer reads below
  // the new `real`. Relaxed: this thread wrote them (Push or StealInto into
  // this queue).
  for (uint32_t i = 0; i < half; ++i) {
    overflow_batch_[i] = Slot(real + i).load(std::memory_order_relaxed);
  }
  overflow_batch_[half] = r;
  overflow(static_cast<Runnable* const*>(overflow_batch_.get()),
           size_t{half} + 1);
  return true;
}

inline Runnable* RunQueue::Pop() noexcept {
  // Relaxed: only this thread writes tail_.
  const uint32_t tail = tail_.load(std::memory_order_relaxed);
  // Relaxed: we read no slot a stealer touched, and a stale value only makes
  // the CAS below fail and reload.
  uint64_t head = head_.load(std::memory_order_relaxed);
  for (;;) {
    const uint32_t steal = StealOf(head);
    const uint32_t real = RealOf(head);
    if (real == tail) return nullptr;
    // Outside a steal both halves move together; during one, only `real`
    // moves, and the stealer's FinishSteal() catches `steal` up.
    const uint64_t next =
        steal == real ? Pack(real + 1, real + 1) : Pack(steal, real + 1);
    // Success is release: pairs with the acquire loads of head_ in
    // ClaimHalf(), so a stealer that sees the new `real` also sees a tail_ at
    // or past it. Failure is relaxed for the same reason as the load above.
    if (head_.compare_exchange_weak(head, next, std::memory_order_release,
                                    std::memory_order_relaxed)) {
      // Relaxed: this thread wrote the slot, and it stays ours until we push
      // over it.
      return Slot(real).load(std::memory_order_relaxed);
    }
  }
}

inline uint32_t RunQueue::SizeApprox() const noexcept {
  // Relaxed: the result is a hint; no memory is read on the strength of it.
  // head_ is loaded first, so a tail_ from before a newer `real` is possible
  // only on another thread; such a negative difference reads as empty, and
  // one from a later tail_ is capped at the capacity.
  const uint32_t real = RealOf(head_.load(std::memory_order_relaxed));
  const uint32_t tail = tail_.load(std::memory_order_relaxed);
  const auto size = static_cast<int32_t>(tail - real);
  if (size <= 0) return 0;
  return static_cast<uint32_t>(size) < capacity_ ? static_cast<uint32_t>(size)
                                                 : capacity_;
}

}  // namespace troupe::internal

#endif  // TROUPE_SCHEDULER_RUN_QUEUE_H_
