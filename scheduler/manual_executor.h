// ManualExecutor: runs Runnables on the thread that asks it to, one at a
// time, in FIFO order. The deterministic executor of troupe's testkit: with
// it, a test sends messages, calls RunUntilIdle, and inspects the result, with
// no threads and no timing.
//
// Who may call what: Schedule and Yield from any thread (a test may send from
// helper threads; the queue is locked). RunOne and RunUntilIdle from one
// thread at a time — the test's.
//
// Shutdown hands back what is still queued, and Schedule and Yield refuse
// from then on. It has no threads of its own: IsOwnThread is always false,
// and it may be destroyed anywhere.

#ifndef TROUPE_SCHEDULER_MANUAL_EXECUTOR_H_
#define TROUPE_SCHEDULER_MANUAL_EXECUTOR_H_

#include <cstddef>
#include <deque>
#include <mutex>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "scheduler/executor.h"

namespace troupe {

class ManualExecutor final : public Executor {
 public:
  bool Schedule(Runnable* r) noexcept override { return Push(r); }
  bool Yield(Runnable* r) noexcept override { return Push(r); }
  bool IsOwnThread() const noexcept override { return false; }
  std::vector<Runnable*> Shutdown() override {
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
    std::vector<Runnable*> unrun(queue_.begin(), queue_.end());
    queue_.clear();
    return unrun;
  }

  // Runs the oldest queued Runnable. False if none was queued.
  bool RunOne() {
    Runnable* r;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) return false;
      r = queue_.front();
      queue_.pop_front();
    }
    r->Run();
    return true;
  }

  // Runs until nothing is queued, at most `max_steps` turns (a guard against
  // actors that message each other forever). Returns the turns run.
  size_t RunUntilIdle(size_t max_steps = 10'000'000) {
    size_t steps = 0;
    while (steps < max_steps && RunOne()) ++steps;
    return steps;
  }

  size_t queued() const {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size();
  }

 private:
  bool Push(Runnable* r) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return false;
    queue_.push_back(r);
    return true;
  }

  mutable std::mutex mu_;
  std::deque<Runnable*> queue_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace troupe

#endif  // TROUPE_SCHEDULER_MANUAL_EXECUTOR_H_
