#include "scheduler/timer_wheel.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstdint>
#include <limits>
#include <utility>

namespace troupe {
namespace {

constexpr uint64_t kSlotMask = TimerWheel::kSlotsPerLevel - 1;
// Ticks covered by all the levels together; farther ticks overflow.
constexpr int kRangeBits = TimerWheel::kBitsPerLevel * TimerWheel::kLevels;
constexpr uint64_t kRangeMask = (uint64_t{1} << kRangeBits) - 1;
// Ticks are kept within int64_t so that TimeOfTick can multiply safely.
constexpr uint64_t kMaxTick = std::numeric_limits<int64_t>::max();
// Entry::location of entries in the overflow list.
constexpr uint16_t kOverflowLocation =
    TimerWheel::kLevels * TimerWheel::kSlotsPerLevel;

}  // namespace

class TimerWheel::Entry {
 public:
  Entry(absl::Time deadline, uint64_t key, uint64_t seq, Callback callback)
      : deadline_(deadline),
        key_(key),
        seq_(seq),
        callback_(std::move(callback)) {}

 private:
  friend class TimerWheel;

  // Neighbours in the slot list; prev_ is null for the head of the list.
  Entry* prev_ = nullptr;
  Entry* next_ = nullptr;
  absl::Time deadline_;
  uint64_t tick_ = 0;  // deadline rounded up to a tick, clamped to elapsed_
  uint64_t key_;
  uint64_t seq_;            // insertion order, breaks ties between deadlines
  uint16_t location_ = 0;   // level * kSlotsPerLevel + slot, or overflow
  Callback callback_;
};

TimerWheel::TimerWheel(absl::Time start, absl::Duration resolution)
    : start_(start), resolution_(resolution) {
  assert(resolution > absl::ZeroDuration());
}

TimerWheel::~TimerWheel() {
  std::vector<Expired> all;
  TakeAll(all);
}

uint64_t TimerWheel::TickAtOrAfter(absl::Time t) const {
  if (t <= start_) return 0;
  if (t == absl::InfiniteFuture()) return kMaxTick;
  absl::Duration rem;
  // Saturates at INT64_MAX for spans too long to count in ticks.
  int64_t ticks = absl::IDivDuration(t - start_, resolution_, &rem);
  if (rem > absl::ZeroDuration() &&
      ticks < std::numeric_limits<int64_t>::max()) {
    ++ticks;
  }
  return static_cast<uint64_t>(ticks);
}

absl::Time TimerWheel::TimeOfTick(uint64_t tick) const {
  // Duration * int64_t saturates to InfiniteDuration().
  return start_ + resolution_ * static_cast<int64_t>(std::min(tick, kMaxTick));
}

TimerWheel::Entry** TimerWheel::Head(int location) {
  if (location == kOverflowLocation) return &overflow_;
  return &levels_[location / kSlotsPerLevel].slots[location % kSlotsPerLevel];
}

void TimerWheel::Place(Entry* entry) {
  entry->tick_ = std::max(entry->tick_, elapsed_);
  const uint64_t differing = entry->tick_ ^ elapsed_;
  Entry** head;
  if ((differing >> kRangeBits) != 0) {
    entry->location_ = kOverflowLocation;
    head = &overflow_;
    overflow_block_ = std::min(overflow_block_, entry->tick_ & ~kRangeMask);
  } else {
    const int level =
        differing == 0 ? 0 : (63 - std::countl_zero(differing)) / kBitsPerLevel;
    const int slot =
        static_cast<int>((entry->tick_ >> (level * kBitsPerLevel)) & kSlotMask);
    entry->location_ = static_cast<uint16_t>(level * kSlotsPerLevel + slot);
    head = &levels_[level].slots[slot];
    levels_[level].occupied |= uint64_t{1} << slot;
  }
  entry->prev_ = nullptr;
  entry->next_ = *head;
  if (*head != nullptr) (*head)->prev_ = entry;
  *head = entry;
}

void TimerWheel::Unlink(Entry* entry) {
  Entry** head = Head(entry->location_);
  if (entry->prev_ != nullptr) {
    entry->prev_->next_ = entry->next_;
  } else {
    *head = entry->next_;
  }
  if (entry->next_ != nullptr) entry->next_->prev_ = entry->prev_;
  entry->prev_ = entry->next_ = nullptr;
  if (*head == nullptr) {
    if (entry->location_ == kOverflowLocation) {
      overflow_block_ = UINT64_MAX;
    } else {
      levels_[entry->location_ / kSlotsPerLevel].occupied &=
          ~(uint64_t{1} << (entry->location_ % kSlotsPerLevel));
    }
  }
}

TimerWheel::Entry* TimerWheel::DetachSlot(int level, int slot) {
  Entry* first = levels_[level].slots[slot];
  levels_[level].slots[slot] = nullptr;
  levels_[level].occupied &= ~(uint64_t{1} << slot);
  return first;
}

bool TimerWheel::FindNextSlot(NextSlot& next) const {
  for (int level = 0; level < kLevels; ++level) {
    const uint64_t occupied = levels_[level].occupied;
    if (occupied == 0) continue;
    const int shift = level * kBitsPerLevel;
    const int current = static_cast<int>((elapsed_ >> shift) & kSlotMask);
    // Placement puts entries at or after elapsed_'s own slot, and Advance
    // cascades a slot when elapsed_ enters it, so nothing is behind it.
    const uint64_t ahead = occupied & (~uint64_t{0} << current);
    assert(ahead != 0);
    const int slot = std::countr_zero(ahead != 0 ? ahead : occupied);
    const uint64_t block_mask =
        (uint64_t{1} << (shift + kBitsPerLevel)) - 1;  // shift + 6 <= 36
    const uint64_t tick =
        (elapsed_ & ~block_mask) + (static_cast<uint64_t>(slot) << shift);
    next = NextSlot{level, slot, std::max(tick, elapsed_)};
    return true;
  }
  if (overflow_ != nullptr) {
    next = NextSlot{kLevels, 0, std::max(overflow_block_, elapsed_)};
    return true;
  }
  return false;
}

void TimerWheel::ProcessOverflow() {
  // Every level is empty here (the levels come first in FindNextSlot), so
  // elapsed_ may sit at the start of the overflow's earliest block.
  Entry* entry = overflow_;
  overflow_ = nullptr;
  overflow_block_ = UINT64_MAX;
  while (entry != nullptr) {
    Entry* following = entry->next_;
    Place(entry);  // into a level if now in range, else back to overflow
    entry = following;
  }
}

TimerWheel::Entry* TimerWheel::Insert(absl::Time deadline, uint64_t key,
                                      Callback callback) {
  auto* entry = new Entry(deadline, key, next_seq_++, std::move(callback));
  entry->tick_ = TickAtOrAfter(deadline);
  Place(entry);
  ++size_;
  return entry;
}

TimerWheel::Callback TimerWheel::Cancel(Entry* entry) {
  Unlink(entry);
  --size_;
  Callback callback = std::move(entry->callback_);
  delete entry;
  return callback;
}

void TimerWheel::Advance(absl::Time now, std::vector<Expired>& out) {
  // The tick `now` falls in. Entries of earlier ticks are all due; entries
  // of this tick are due if their exact deadline is <= now.
  const uint64_t target = std::max(TickAtOrAfter(now), elapsed_);
  std::vector<Entry*>& due = scratch_;
  due.clear();
  NextSlot next;
  while (FindNextSlot(next) && next.tick <= target) {
    elapsed_ = next.tick;
    if (next.level == kLevels) {
      ProcessOverflow();
    } else if (next.level > 0) {
      // Cascade: relative to the slot's first tick, every entry of the slot
      // belongs to a lower level.
      Entry* entry = DetachSlot(next.level, next.slot);
      while (entry != nullptr) {
        Entry* following = entry->next_;
        Place(entry);
        entry = following;
      }
    } else if (next.tick < target) {
      for (Entry* entry = DetachSlot(0, next.slot); entry != nullptr;
           entry = entry->next_) {
        due.push_back(entry);
      }
    } else {
      // The last, partial tick. Entries left here stay in elapsed_'s slot.
      Entry* entry = levels_[0].slots[next.slot];
      while (entry != nullptr) {
        Entry* following = entry->next_;
        if (entry->deadline_ <= now) {
          Unlink(entry);
          due.push_back(entry);
        }
        entry = following;
      }
      break;
    }
  }
  // Nothing is pending at or before target beyond what stayed in its slot,
  // so jumping there skips no slot that would need cascading.
  elapsed_ = target;
  AppendSorted(due, out);
}

void TimerWheel::AppendSorted(std::vector<Entry*>& due,
                              std::vector<Expired>& out) {
  std::sort(due.begin(), due.end(), [](const Entry* a, const Entry* b) {
    if (a->deadline_ != b->deadline_) return a->deadline_ < b->deadline_;
    return a->seq_ < b->seq_;
  });
  out.reserve(out.size() + due.size());
  for (Entry* entry : due) {
    out.push_back(
        Expired{entry->deadline_, entry->key_, std::move(entry->callback_)});
    delete entry;
  }
  size_ -= due.size();
  due.clear();
}

std::optional<absl::Time> TimerWheel::NextWakeup() const {
  NextSlot next;
  if (!FindNextSlot(next)) return std::nullopt;
  return TimeOfTick(next.tick);
}

std::optional<absl::Time> TimerWheel::NextDeadline() const {
  NextSlot next;
  if (!FindNextSlot(next)) return std::nullopt;
  // The levels hold disjoint, increasing ranges of ticks, so the earliest
  // deadline is in the earliest non-empty slot (or, with every level empty,
  // somewhere in the overflow list).
  const Entry* entry = next.level == kLevels
                           ? overflow_
                           : levels_[next.level].slots[next.slot];
  absl::Time earliest = absl::InfiniteFuture();
  for (; entry != nullptr; entry = entry->next_) {
    earliest = std::min(earliest, entry->deadline_);
  }
  return earliest;
}

void TimerWheel::TakeAll(std::vector<Expired>& out) {
  out.reserve(out.size() + size_);
  auto take_list = [&out](Entry* entry) {
    while (entry != nullptr) {
      Entry* following = entry->next_;
      out.push_back(
          Expired{entry->deadline_, entry->key_, std::move(entry->callback_)});
      delete entry;
      entry = following;
    }
  };
  for (int level = 0; level < kLevels; ++level) {
    while (levels_[level].occupied != 0) {
      take_list(DetachSlot(level, std::countr_zero(levels_[level].occupied)));
    }
  }
  take_list(overflow_);
  overflow_ = nullptr;
  overflow_block_ = UINT64_MAX;
  size_ = 0;
}

}  // namespace troupe
