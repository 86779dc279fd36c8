// Timer services: run a short callback at (or soon after) a deadline.
//
// A TimerService is what the runtime uses for every timeout: ask deadlines,
// delayed sends, periodic ticks. Callbacks are meant to be short (push a
// message, complete a promise); they run on the service's own thread for
// RealTimerService and on the thread calling AdvanceBy/AdvanceTo for
// ManualTimerService, never inside Schedule().
//
// Two implementations share one core (timer_internal::WheelTimerService):
// a TimerWheel (timer_wheel.h) holding the callbacks, a map from TimerId to
// wheel entry so that Cancel is O(1) and eager (a cancelled timer's memory
// is freed at once), and one std::mutex guarding both.
//
//   - RealTimerService: absl::Now() as the clock and one thread for all
//     timers. The thread sleeps on a std::condition_variable until the next
//     wheel wakeup, or until Schedule inserts an earlier deadline, and with
//     nothing pending it waits without a timeout (no CPU). A callback runs
//     no earlier than its deadline, typically within one resolution (1 ms)
//     after it.
//   - ManualTimerService: virtual time for deterministic tests. Nothing
//     fires until AdvanceBy/AdvanceTo, which run due callbacks in deadline
//     order on the calling thread, with Now() equal to each callback's
//     deadline while it runs.
//
// Threading: Now, Schedule, SchedulePeriodic, Cancel, Pending, IsPending,
// IsOwnThread and Shutdown may be called from any thread, including from
// inside a callback.
//
// Locking: the mutex is never held while a callback runs or while a callback
// is destroyed, so callbacks may call Schedule/Cancel on their own service,
// and a callback's destructor may complete futures whose continuations do
// the same. std::mutex rather than absl::Mutex because Abseil is an
// uninstrumented system library here and TSan must see the locking.
//
// Ordering: callbacks of one service run one at a time, in deadline order
// (ties in the order they were scheduled). A callback that returns
// happens-before the next callback of the same service starts. Schedule()
// happens-before its callback runs (both go through the mutex). Cancel()
// returning true for a one-shot timer happens-after the callback's
// destruction (for a periodic series, see Cancel).
//
// Lifetime: a service must outlive every call made on it; its destructor
// calls Shutdown(). Shutdown destroys every pending callback without
// running it, outside the lock, so that promises owned by callbacks are
// broken rather than leaked. After Shutdown, Schedule destroys the callback
// it is given and returns an empty TimerId.
//
// Callbacks must not throw: the service runs them in a noexcept context.

#ifndef TROUPE_SCHEDULER_TIMER_SERVICE_H_
#define TROUPE_SCHEDULER_TIMER_SERVICE_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "scheduler/timer_wheel.h"

namespace troupe {

// Names one scheduled timer (or one periodic series) of one service. Ids
// are never reused by a service; 0 means "no timer".
struct TimerId {
  uint64_t value = 0;

  explicit operator bool() const { return value != 0; }
  friend bool operator==(TimerId a, TimerId b) = default;
  template <typename H>
  friend H AbslHashValue(H h, TimerId id) {
    return H::combine(std::move(h), id.value);
  }
};

class TimerService {
 public:
  using Callback = absl::AnyInvocable<void() &&>;
  using PeriodicCallback = absl::AnyInvocable<void()>;

  virtual ~TimerService() = default;

  // The service's clock.
  virtual absl::Time Now() const = 0;

  // Runs `fn` once, no earlier than `deadline`. A deadline in the past is
  // due at once; fn still runs on the timer's thread, never inside this
  // call. Returns an empty id (and destroys fn) after Shutdown().
  virtual TimerId Schedule(absl::Time deadline, Callback fn) = 0;

  // Runs `fn` every `interval`, first at Now() + interval, until the series
  // is cancelled or the service shuts down. One id names the whole series.
  // Each next run is due one interval after the previous deadline; runs
  // missed because the service fell behind are skipped, not bunched up. An
  // interval shorter than the wheel's resolution is raised to it.
  virtual TimerId SchedulePeriodic(absl::Duration interval,
                                   PeriodicCallback fn) = 0;

  // One-shot timer: returns true if fn will not run and has already been
  // destroyed; false if it has run, is running, or `id` is unknown.
  // Periodic series: returns true if no run of the series starts after
  // Cancel returns; fn has then been destroyed, unless a run is in progress
  // (for instance Cancel was called from fn itself), in which case fn is
  // destroyed on the timer thread right after that run. false if the series
  // was already cancelled or `id` is unknown.
  virtual bool Cancel(TimerId id) = 0;

  // Timers waiting for their deadline; an armed periodic series counts once.
  virtual size_t Pending() const = 0;

  // True while `id` may still run: a one-shot timer before its callback
  // starts, a periodic series until it is cancelled.
  virtual bool IsPending(TimerId id) const = 0;

  // Stops the service: destroys every pending callback without running it
  // (outside the lock). Idempotent. See the implementations for threads.
  virtual void Shutdown() = 0;

  // True if the calling thread is the service's own timer thread, the one
  // its callbacks run on and its destructor joins: the destructor must not
  // run there.
  virtual bool IsOwnThread() const noexcept = 0;
};

namespace timer_internal {

// The code the two services share: the wheel, the id map, the mutex, and
// the loop body that takes due callbacks out under the lock and runs them
// outside it. Not for use outside timer_service.{h,cc}.
class WheelTimerService : public TimerService {
 public:
  TimerId Schedule(absl::Time deadline, Callback fn) final;
  TimerId SchedulePeriodic(absl::Duration interval,
                           PeriodicCallback fn) final;
  bool Cancel(TimerId id) final;
  size_t Pending() const final;
  bool IsPending(TimerId id) const final;
  void Shutdown() override;

 protected:
  // A timer taken out of the wheel, to be run without the lock.
  struct Due {
    absl::Time deadline;
    uint64_t id = 0;
    bool is_periodic = false;
    Callback once;              // a one-shot timer's callback
    PeriodicCallback periodic;  // a series' callback, out of periodic_ while
                                // it runs
  };

  WheelTimerService(absl::Time start, absl::Duration resolution);
  ~WheelTimerService() override;

  // The clock, read with mu_ held.
  virtual absl::Time NowLocked() const = 0;
  // Called with mu_ held after an entry with `deadline` joins the wheel, and
  // with InfinitePast() at Shutdown. RealTimerService wakes its thread.
  virtual void OnEarlierWorkLocked(absl::Time deadline) = 0;

  // Moves every timer with deadline <= now out of the wheel into `due`, in
  // deadline order. Requires mu_.
  void TakeDueLocked(absl::Time now, std::vector<Due>& due);
  // Runs `due` with mu_ released (`lock` holds mu_ on entry and on return),
  // then re-arms the periodic series among them. Clears `due`.
  void RunDue(std::unique_lock<std::mutex>& lock, std::vector<Due>& due);

  mutable std::mutex mu_;
  TimerWheel wheel_;   // guarded by mu_
  bool shut_down_ = false;  // guarded by mu_

 private:
  struct Periodic {
    // Empty while a run is in progress (the series is then in periodic_
    // but not in pending_).
    PeriodicCallback fn;
    absl::Duration interval;
    bool cancelled = false;  // cancelled while a run was in progress
  };

  uint64_t next_id_ = 1;  // guarded by mu_
  // Every timer in the wheel, by id. Guarded by mu_.
  absl::flat_hash_map<uint64_t, TimerWheel::Entry*> pending_;
  // Periodic series, armed or running, by id. Guarded by mu_.
  absl::flat_hash_map<uint64_t, Periodic> periodic_;
  std::vector<TimerWheel::Expired> expired_;  // scratch, guarded by mu_
};

}  // namespace timer_internal

// Real time, one thread for all timers.
//
// Threads: the constructor starts the timer thread; callbacks run on it.
// Shutdown() stops and joins it, waiting for a callback in progress; called
// from a callback, Shutdown() does not wait and the destructor joins
// instead. The destructor must not run on the timer thread (IsOwnThread
// tells; the actor layer hands such a destruction to another thread).
class RealTimerService final : public timer_internal::WheelTimerService {
 public:
  // `resolution` is the wheel's tick: callbacks run up to about one
  // resolution after their deadline. The timer thread is named
  // `thread_name`, cut to its first 15 bytes (the kernel's limit).
  explicit RealTimerService(
      absl::Duration resolution = absl::Milliseconds(1),
      std::string thread_name = "troupe-timer");
  ~RealTimerService() override;

  absl::Time Now() const override { return absl::Now(); }
  void Shutdown() override;
  bool IsOwnThread() const noexcept override;

 private:
  absl::Time NowLocked() const override { return absl::Now(); }
  void OnEarlierWorkLocked(absl::Time deadline) override;
  void Loop();

  std::condition_variable wake_;
  // When the timer thread will wake by itself: InfiniteFuture() while it
  // waits with nothing pending, InfinitePast() while it is awake (no need to
  // notify it). Guarded by mu_.
  absl::Time wake_at_ = absl::InfinitePast();
  std::mutex join_mu_;  // serializes joining thread_ (Shutdown, destructor)
  const std::string thread_name_;  // already cut to 15 bytes
  std::thread thread_;  // last: starts after everything above exists
};

// Virtual time for deterministic tests. Time moves only when the owner
// calls AdvanceBy/AdvanceTo, which run the due callbacks on the calling
// thread.
//
// Threads: Schedule/Cancel/Now/Pending from any thread. AdvanceBy,
// AdvanceTo and NextDeadline from one thread at a time, not from inside a
// callback. Shutdown() from any thread; a callback running in AdvanceTo at
// that moment finishes, and nothing runs after it. It has no thread of its
// own (IsOwnThread is false); it must outlive the AdvanceTo calls made on
// it, callbacks included.
class ManualTimerService final : public timer_internal::WheelTimerService {
 public:
  // Where virtual time starts by default: 2001-09-09T01:46:40Z
  // (1'000'000'000 s after the Unix epoch), so tests print stable times.
  static absl::Time Epoch() { return absl::FromUnixSeconds(1'000'000'000); }

  explicit ManualTimerService(
      absl::Time start = Epoch(),
      absl::Duration resolution = absl::Milliseconds(1));
  ~ManualTimerService() override;

  absl::Time Now() const override;
  bool IsOwnThread() const noexcept override { return false; }

  // Moves virtual time forward, running every callback due by then in
  // deadline order; Now() equals each callback's deadline while it runs
  // (or the current time, for one scheduled in the past). Timers scheduled
  // by those callbacks run in the same call if they are due by then. Ends
  // with Now() == max(Now(), t). AdvanceBy(absl::ZeroDuration()) runs what
  // is already due.
  void AdvanceTo(absl::Time t);
  void AdvanceBy(absl::Duration d);

  // The earliest pending deadline, exact; nullopt when nothing is pending.
  std::optional<absl::Time> NextDeadline() const;

 private:
  absl::Time NowLocked() const override { return now_; }
  void OnEarlierWorkLocked(absl::Time) override {}

  absl::Time now_;  // guarded by mu_
};

}  // namespace troupe

#endif  // TROUPE_SCHEDULER_TIMER_SERVICE_H_
