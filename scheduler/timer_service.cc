#include "scheduler/timer_service.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

namespace troupe {
namespace timer_internal {
namespace {

// Runs a one-shot callback and destroys it. noexcept: a throwing timer
// callback is a bug, and terminating here names it.
void RunOnce(TimerService::Callback& fn) noexcept {
  if (fn) std::move(fn)();
  fn = nullptr;
}

void RunPeriodic(TimerService::PeriodicCallback& fn) noexcept {
  if (fn) fn();
}

}  // namespace

WheelTimerService::WheelTimerService(absl::Time start,
                                     absl::Duration resolution)
    : wheel_(start, resolution) {}

WheelTimerService::~WheelTimerService() = default;

TimerId WheelTimerService::Schedule(absl::Time deadline, Callback fn) {
  std::unique_lock<std::mutex> lock(mu_);
  if (shut_down_) {
    lock.unlock();
    fn = nullptr;  // destroyed outside the lock
    return TimerId{};
  }
  const uint64_t id = next_id_++;
  pending_.emplace(id, wheel_.Insert(deadline, id, std::move(fn)));
  OnEarlierWorkLocked(deadline);
  return TimerId{id};
}

TimerId WheelTimerService::SchedulePeriodic(absl::Duration interval,
                                            PeriodicCallback fn) {
  std::unique_lock<std::mutex> lock(mu_);
  if (shut_down_) {
    lock.unlock();
    fn = nullptr;
    return TimerId{};
  }
  interval = std::max(interval, wheel_.resolution());
  const uint64_t id = next_id_++;
  const absl::Time first = NowLocked() + interval;
  periodic_.emplace(id, Periodic{std::move(fn), interval});
  // The wheel entry carries no callback: the series' callback lives in
  // periodic_ so that it survives each run.
  pending_.emplace(id, wheel_.Insert(first, id, nullptr));
  OnEarlierWorkLocked(first);
  return TimerId{id};
}

bool WheelTimerService::Cancel(TimerId id) {
  Callback once;
  PeriodicCallback periodic;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = pending_.find(id.value); it != pending_.end()) {
      once = wheel_.Cancel(it->second);
      pending_.erase(it);
      if (auto p = periodic_.find(id.value); p != periodic_.end()) {
        periodic = std::move(p->second.fn);
        periodic_.erase(p);
      }
    } else {
      // Not in the wheel: either unknown, or a series whose run is in
      // progress; RunDue sees the flag and ends the series.
      auto p = periodic_.find(id.value);
      if (p == periodic_.end() || p->second.cancelled) return false;
      p->second.cancelled = true;
      return true;
    }
  }
  // `once` and `periodic` are destroyed here, after the unlock.
  return true;
}

size_t WheelTimerService::Pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return wheel_.size();
}

bool WheelTimerService::IsPending(TimerId id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.contains(id.value) || periodic_.contains(id.value);
}

void WheelTimerService::Shutdown() {
  std::vector<TimerWheel::Expired> dropped;
  std::vector<PeriodicCallback> dropped_periodic;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
    wheel_.TakeAll(dropped);
    pending_.clear();
    for (auto& [id, series] : periodic_) {
      // A series that is running has no fn here; RunDue drops it afterwards.
      if (series.fn) dropped_periodic.push_back(std::move(series.fn));
    }
    periodic_.clear();
    OnEarlierWorkLocked(absl::InfinitePast());
  }
  // The callbacks are destroyed here, unrun, without the lock: a callback's
  // destructor may break a promise whose continuation calls back into us.
}

void WheelTimerService::TakeDueLocked(absl::Time now, std::vector<Due>& due) {
  expired_.clear();
  wheel_.Advance(now, expired_);
  for (TimerWheel::Expired& expired : expired_) {
    pending_.erase(expired.key);
    Due& d = due.emplace_back();
    d.deadline = expired.deadline;
    d.id = expired.key;
    auto series =
        periodic_.empty() ? periodic_.end() : periodic_.find(expired.key);
    if (series != periodic_.end()) {
      d.is_periodic = true;
      d.periodic = std::move(series->second.fn);
    } else {
      d.once = std::move(expired.callback);
    }
  }
  expired_.clear();
}

void WheelTimerService::RunDue(std::unique_lock<std::mutex>& lock,
                               std::vector<Due>& due) {
  lock.unlock();
  bool any_periodic = false;
  for (Due& d : due) {
    if (d.is_periodic) {
      RunPeriodic(d.periodic);
      any_periodic = true;
    } else {
      RunOnce(d.once);
    }
  }
  lock.lock();
  if (!any_periodic) {
    due.clear();  // holds nothing but moved-from callbacks
    return;
  }
  std::vector<PeriodicCallback> dropped;
  const absl::Time now = NowLocked();
  for (Due& d : due) {
    if (!d.is_periodic) continue;
    auto it = periodic_.find(d.id);
    if (shut_down_ || it == periodic_.end() || it->second.cancelled) {
      if (it != periodic_.end()) periodic_.erase(it);
      dropped.push_back(std::move(d.periodic));
      continue;
    }
    Periodic& series = it->second;
    absl::Time next = d.deadline + series.interval;
    if (next <= now) {
      // Behind schedule: skip the runs that were missed, keep the phase.
      absl::Duration rem;
      const int64_t missed =
          absl::IDivDuration(now - d.deadline, series.interval, &rem);
      next = d.deadline + series.interval * (missed + 1);
    }
    series.fn = std::move(d.periodic);
    pending_.emplace(d.id, wheel_.Insert(next, d.id, nullptr));
    OnEarlierWorkLocked(next);
  }
  due.clear();
  if (!dropped.empty()) {
    lock.unlock();
    dropped.clear();
    lock.lock();
  }
}

}  // namespace timer_internal

// RealTimerService ---------------------------------------------------------

namespace {

// The service whose timer thread this is, or null on any other thread. Set
// once by the timer thread as it starts; read only by the thread itself.
thread_local const RealTimerService* current_service = nullptr;

}  // namespace

RealTimerService::RealTimerService(absl::Duration resolution, std::string thread_name)
    : WheelTimerService(absl::Now(), resolution),
      thread_name_(thread_name.substr(0, 15)),
      thread_([this] { Loop(); }) {}

RealTimerService::~RealTimerService() {
  Shutdown();
  std::lock_guard<std::mutex> join_lock(join_mu_);
  if (thread_.joinable()) thread_.join();
}

void RealTimerService::Shutdown() {
  WheelTimerService::Shutdown();
  std::lock_guard<std::mutex> join_lock(join_mu_);
  // From a callback, the thread cannot join itself; the destructor will.
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) {
    thread_.join();
  }
}

void RealTimerService::OnEarlierWorkLocked(absl::Time deadline) {
  // Only a thread asleep past `deadline` needs waking. An awake thread
  // (wake_at_ == InfinitePast()) looks at the wheel again before sleeping.
  if (deadline < wake_at_) {
    wake_at_ = absl::InfinitePast();
    wake_.notify_one();
  }
}

bool RealTimerService::IsOwnThread() const noexcept { return current_service == this; }

void RealTimerService::Loop() {
  current_service = this;
  pthread_setname_np(pthread_self(), thread_name_.c_str());
  std::vector<Due> due;
  std::unique_lock<std::mutex> lock(mu_);
  while (!shut_down_) {
    TakeDueLocked(absl::Now(), due);
    if (!due.empty()) {
      RunDue(lock, due);
      continue;
    }
    const std::optional<absl::Time> next = wheel_.NextWakeup();
    if (!next.has_value()) {
      wake_at_ = absl::InfiniteFuture();
      wake_.wait(lock);  // parked: only Schedule or Shutdown wakes us
    } else {
      wake_at_ = *next;
      // Capped so that a far deadline never becomes a chrono time_point
      // that overflows inside the wait; waking early is harmless.
      const absl::Time until = std::min(*next, absl::Now() + absl::Hours(1));
      wake_.wait_until(lock, absl::ToChronoTime(until));
    }
    wake_at_ = absl::InfinitePast();
  }
}

// ManualTimerService -------------------------------------------------------

ManualTimerService::ManualTimerService(absl::Time start,
                                       absl::Duration resolution)
    : WheelTimerService(start, resolution), now_(start) {}

ManualTimerService::~ManualTimerService() { Shutdown(); }

absl::Time ManualTimerService::Now() const {
  std::lock_guard<std::mutex> lock(mu_);
  return now_;
}

void ManualTimerService::AdvanceTo(absl::Time t) {
  std::vector<Due> due;
  std::unique_lock<std::mutex> lock(mu_);
  // One deadline at a time, so that timers scheduled by a callback run in
  // their place in deadline order within this same call.
  while (!shut_down_) {
    const std::optional<absl::Time> next = wheel_.NextDeadline();
    if (!next.has_value() || *next > t) break;
    now_ = std::max(now_, *next);
    TakeDueLocked(*next, due);
    RunDue(lock, due);
  }
  now_ = std::max(now_, t);
}

void ManualTimerService::AdvanceBy(absl::Duration d) {
  AdvanceTo(Now() + d);
}

std::optional<absl::Time> ManualTimerService::NextDeadline() const {
  std::lock_guard<std::mutex> lock(mu_);
  return wheel_.NextDeadline();
}

}  // namespace troupe
