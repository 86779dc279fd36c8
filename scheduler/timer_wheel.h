// TimerWheel: a hierarchical timing wheel holding callbacks keyed by deadline.
//
// It is the bookkeeping under troupe's timer services (timer_service.h): it
// stores entries, says when the next one is due, and hands back the entries
// that are due when time moves forward. It has no clock, no thread and no
// lock of its own; time moves only when the owner calls Advance().
//
// Threading: none. A TimerWheel is used by one thread at a time; the timer
// services call every method with their mutex held. Callbacks are never run
// by the wheel: Advance() and Cancel() move them out so that the owner can
// run or destroy them after releasing its lock.
//
// Time. Deadlines are absl::Time. Internally the wheel counts ticks of a
// fixed `resolution` from a `start` time; a deadline belongs to the first
// tick boundary at or after it (tick = ceil((deadline - start) / resolution)),
// so an entry's tick is never earlier than its deadline. The exact deadline
// is kept too: Advance(now) returns exactly the entries whose deadline is
// <= now, sorted by deadline and, for equal deadlines, by insertion order.
//
// Layout. There are kLevels levels of kSlotsPerLevel (64) slots. Level L
// slot s covers 64^L ticks. Where an entry goes depends on the highest bit
// in which its tick differs from `elapsed_` (the tick the wheel has reached):
// level 0 holds the ticks of elapsed's current 64-tick block, level 1 the
// other 64-tick blocks of its current 4096-tick block, and so on. Ticks more
// than 64^kLevels away (about 795 days at 1 ms) go to an overflow list. The
// levels therefore cover disjoint, increasing ranges of time: everything in
// level 0 is due before everything in level 1, and so on.
//
// Each slot is an intrusive doubly linked list, so Insert and Cancel are
// O(1); each level keeps a 64-bit mask of its non-empty slots, so finding the
// next non-empty slot costs a few bit operations per level. Advance() jumps
// straight from one non-empty slot to the next; an empty stretch of time
// costs nothing. When time reaches a non-empty slot of level L > 0, its
// entries are redistributed ("cascaded") to lower levels; an entry moves at
// most kLevels times over its life. When time reaches the block of an
// overflow entry, the overflow list is scanned once and the entries that are
// now in range move into the levels.
//
// Memory: one heap-allocated entry per pending timer (about 100 bytes with
// the callback's inline storage), freed when it fires or is cancelled, plus
// a fixed ~3 KB for the slot heads.
//
// Lifetime: an Entry* returned by Insert() stays valid until the entry is
// returned by Advance() or TakeAll(), or passed to Cancel(); after that the
// pointer must not be used. Destroying the wheel destroys every pending
// callback without running it.

#ifndef TROUPE_SCHEDULER_TIMER_WHEEL_H_
#define TROUPE_SCHEDULER_TIMER_WHEEL_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"

namespace troupe {

class TimerWheel {
 public:
  using Callback = absl::AnyInvocable<void() &&>;

  // One pending timer. Opaque outside timer_wheel.cc; owned by the wheel.
  class Entry;

  // An entry that has come due, handed back by Advance() or TakeAll().
  struct Expired {
    absl::Time deadline;
    uint64_t key = 0;  // the key given to Insert()
    Callback callback;
  };

  static constexpr int kBitsPerLevel = 6;
  static constexpr int kSlotsPerLevel = 1 << kBitsPerLevel;
  static constexpr int kLevels = 6;

  // `resolution` must be positive. Deadlines at or before `start` belong to
  // tick 0.
  explicit TimerWheel(absl::Time start,
                      absl::Duration resolution = absl::Milliseconds(1));
  ~TimerWheel();

  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Adds a timer. `key` is the caller's name for it, returned with the entry
  // when it expires. A deadline that has already been passed by Advance()
  // (or InfinitePast()) is due at the next Advance(). InfiniteFuture() is
  // due only when the wheel is advanced to InfiniteFuture(). O(1).
  Entry* Insert(absl::Time deadline, uint64_t key, Callback callback);

  // Removes a pending entry and returns its callback, unrun, for the caller
  // to destroy (outside any lock it holds). `entry` must be pending. O(1).
  Callback Cancel(Entry* entry);

  // Moves time forward to `now` and appends every entry with deadline <= now
  // to `out`, in deadline order, ties in insertion order. Time never goes
  // back: advancing to an earlier time than before only collects entries
  // inserted with deadlines <= now since. Cost: O(levels) per non-empty slot
  // reached, O(1) per entry moved or collected, plus sorting what is due.
  void Advance(absl::Time now, std::vector<Expired>& out);

  // When a driver should next call Advance(): the tick boundary of the
  // earliest non-empty slot (or overflow block). Advancing to it always makes
  // progress: it collects that slot's entries or, for a slot above level 0,
  // cascades them to lower levels (then the next answer is later). Sleeping
  // until it delays no entry past its deadline rounded up to the resolution.
  // An entry inserted with a deadline at or before the last Advance() time
  // is not covered: it is due at once, so a driver advances at once.
  // nullopt when the wheel is empty. O(kLevels).
  std::optional<absl::Time> NextWakeup() const;

  // The exact earliest pending deadline, or nullopt when empty. Scans the
  // earliest non-empty slot, so it costs O(entries in that slot); meant for
  // virtual-time drivers, not for hot paths.
  std::optional<absl::Time> NextDeadline() const;

  // Removes every pending entry and appends it to `out`, in no particular
  // order, with callbacks unrun.
  void TakeAll(std::vector<Expired>& out);

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  absl::Time start() const { return start_; }
  absl::Duration resolution() const { return resolution_; }

 private:
  // Where the next thing to do is: a slot of a level, or the overflow list.
  struct NextSlot {
    int level;  // kLevels for the overflow list
    int slot;
    uint64_t tick;  // first tick covered by that slot (>= elapsed_)
  };

  struct Level {
    uint64_t occupied = 0;  // bit s set iff slots[s] is non-empty
    Entry* slots[kSlotsPerLevel] = {};
  };

  uint64_t TickAtOrAfter(absl::Time t) const;
  absl::Time TimeOfTick(uint64_t tick) const;
  bool FindNextSlot(NextSlot& next) const;
  Entry** Head(int location);
  void Place(Entry* entry);
  void Unlink(Entry* entry);
  Entry* DetachSlot(int level, int slot);
  void ProcessOverflow();
  void AppendSorted(std::vector<Entry*>& due, std::vector<Expired>& out);

  const absl::Time start_;
  const absl::Duration resolution_;
  // Every entry with a tick < elapsed_ has been collected. Entries of tick
  // elapsed_ itself may remain (when Advance stopped inside that tick).
  uint64_t elapsed_ = 0;
  Level levels_[kLevels];
  Entry* overflow_ = nullptr;
  // A lower bound on the first tick of the earliest block (of 64^kLevels
  // ticks) holding an overflow entry. Cancel may leave it stale; the next
  // ProcessOverflow recomputes it.
  uint64_t overflow_block_ = UINT64_MAX;
  size_t size_ = 0;
  uint64_t next_seq_ = 0;
  std::vector<Entry*> scratch_;  // reused by Advance to avoid reallocating
};

}  // namespace troupe

#endif  // TROUPE_SCHEDULER_TIMER_WHEEL_H_
