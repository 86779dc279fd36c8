// Executor: what runs Runnables. The actor layer sees only this interface,
// so the same actors run on the work-stealing pool (scheduler/worker_pool.h)
// or step by step on the testkit's manual executor (scheduler/manual_executor.h).
//
// Who may call what: Schedule from any thread; Yield only from inside the
// Run() of the Runnable being yielded; IsOwnThread from any thread; Shutdown
// from a thread that is not one of the executor's own.
//
// No Runnable is ever dropped: one is either run, refused (Schedule or
// Yield returns false and the caller keeps it), or handed back by Shutdown.

#ifndef TROUPE_SCHEDULER_EXECUTOR_H_
#define TROUPE_SCHEDULER_EXECUTOR_H_

#include <vector>

#include "scheduler/runnable.h"

namespace troupe {

class Executor {
 public:
  virtual ~Executor() = default;

  // Runs `r` once, soon. From a thread of this executor it runs next on the
  // same thread (a message's receiver runs right after its sender: a
  // request/reply pair stays on one core); from elsewhere it is injected.
  // Returns false, leaving `r` with the caller, once Shutdown has begun and
  // `r` can no longer be taken (see the implementations for which threads).
  [[nodiscard]] virtual bool Schedule(Runnable* r) noexcept = 0;

  // `r`, which is running, has more work but used up its turn: run it again
  // after the work already queued here (fairness between actors). Returns
  // false like Schedule.
  [[nodiscard]] virtual bool Yield(Runnable* r) noexcept = 0;

  // True if the calling thread is one of the executor's own: one that
  // Shutdown would join, so Shutdown (and the executor's destructor) must
  // not run on it.
  virtual bool IsOwnThread() const noexcept = 0;

  // Stops the executor's threads and joins them, letting each finish the
  // Runnable it is running. From then on Schedule and Yield refuse. Returns
  // the Runnables that were accepted but never run, which belong to the
  // caller again. Idempotent: a later call returns nothing.
  virtual std::vector<Runnable*> Shutdown() = 0;
};

}  // namespace troupe

#endif  // TROUPE_SCHEDULER_EXECUTOR_H_
