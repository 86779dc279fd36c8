// Futex: block a thread on a 32-bit atomic until another thread changes it.
//
// The cheapest way for a thread to sleep until a word changes: no mutex, no
// allocation, and a wake that finds no waiter costs one syscall or, with a
// waiter bit kept by the caller, nothing. Linux only.
//
// Memory ordering: the futex calls order nothing themselves. Callers publish
// with a release store or RMW on the word before FutexWake and read it with an
// acquire load after FutexWait returns; spurious wake-ups happen, so callers
// re-check the word in a loop.

#ifndef TROUPE_SCHEDULER_FUTEX_H_
#define TROUPE_SCHEDULER_FUTEX_H_

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdint>

#include "absl/time/time.h"

namespace troupe::internal {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "futex needs a plain 32-bit word");

// Sleeps while *word == expected, for at most `timeout` (infinite by default).
// Returns at once if the word differs; may return spuriously.
inline void FutexWait(std::atomic<uint32_t>* word, uint32_t expected,
                      absl::Duration timeout = absl::InfiniteDuration()) noexcept {
  timespec ts;
  timespec* tsp = nullptr;
  if (timeout != absl::InfiniteDuration()) {
    if (timeout <= absl::ZeroDuration()) return;
    ts = absl::ToTimespec(timeout);
    tsp = &ts;
  }
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, tsp,
          nullptr, 0);
}

// Wakes up to `count` threads sleeping in FutexWait on `word`.
inline void FutexWake(std::atomic<uint32_t>* word, int count = INT_MAX) noexcept {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, count, nullptr,
          nullptr, 0);
}

}  // namespace troupe::internal

#endif  // TROUPE_SCHEDULER_FUTEX_H_
