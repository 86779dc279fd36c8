// Executor: what runs Runnables. The actor layer sees only this interface,
// so the same actors run on the work-stealing pool (scheduler/worker_pool.h)
// or step by step on the testkit's manual executor (scheduler/manual_executor.h).
//
// Who may call what: Schedule from any thread; Yield only from inside the
// Run() of the Runnable being yielded; Shutdown from a thread that is not
// one of the executor's own.

#ifndef TROUPE_SCHEDULER_EXECUTOR_H_
#define TROUPE_SCHEDULER_EXECUTOR_H_

#include "scheduler/runnable.h"

namespace troupe {

class Executor {
 public:
  virtual ~Executor() = default;

  // Runs `r` once, soon. From a thread of this executor it runs next on the
  // same thread (a message's receiver runs right after its sender: a
  // request/reply pair stays on one core); from elsewhere it is injected.
  virtual void Schedule(Runnable* r) noexcept = 0;

  // `r`, which is running, has more work but used up its turn: run it again
  // after the work already queued here (fairness between actors).
  virtual void Yield(Runnable* r) noexcept = 0;

  // Stops the executor's threads and joins them. Runnables still queued are
  // not run. Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace troupe

#endif  // TROUPE_SCHEDULER_EXECUTOR_H_
